//! The driver half of virtio-msg, bus-independent: a `virtio_drivers`
//! [`Transport`] that turns every call into one request message and its
//! response, over an [`Exchange`] (the shared-memory channel of
//! [`amp_driver`](crate::amp_driver), the FF-A bus of
//! [`ffa_driver`](crate::ffa_driver)).
//!
//! Every response is checked for token, message id and device number;
//! `notify` sends EVENT_AVAIL, which gets no response; events the exchange
//! collected (EVENT_USED, EVENT_CONFIG) become interrupt bits for
//! [`Transport::ack_interrupt`].

use core::ops::Deref;

use virtio_backend::msg::{
    FeatureBlocks, Header, Request, Response, Revision, VQUEUE_ENABLED, vqueue,
};
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{Error, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Bytes of the largest message a driver sends or takes (the FF-A bus
/// carries 104; the AMP channel's elements are 64).
pub const MAX_FRAME: usize = 128;

/// How messages reach the device and come back: one bus's mechanics.
pub trait Exchange {
    /// A token no request in flight uses.
    fn next_token(&self) -> u16;
    /// Sends `frame` and waits for the one response to it (panics when
    /// none comes in time).
    fn call(&self, frame: &[u8]) -> [u8; MAX_FRAME];
    /// Sends `frame`, which gets no response (an event).
    fn send(&self, frame: &[u8]);
    /// The events for our device since the last call: (used buffers,
    /// configuration change). Panics on anything nobody asked for.
    fn take_events(&self) -> (bool, bool);
}

/// One virtio-msg device as a `virtio_drivers` transport, over `X`. Derefs
/// to the exchange, for what only it offers.
pub struct MsgDriver<X> {
    x: X,
    rev: Revision,
    dev_num: u16,
}

impl<X> Deref for MsgDriver<X> {
    type Target = X;
    fn deref(&self) -> &X {
        &self.x
    }
}

impl<X: Exchange> MsgDriver<X> {
    /// Device `dev_num` over `x`, in `rev`'s layouts.
    pub fn new(x: X, rev: Revision, dev_num: u16) -> Self {
        MsgDriver { x, rev, dev_num }
    }

    /// The device number driven.
    pub fn dev_num(&self) -> u16 {
        self.dev_num
    }

    /// The exchange, the driver dropped.
    pub fn into_inner(self) -> X {
        self.x
    }

    /// Sends `req`, checks that exactly its response came, and hands the
    /// decoded response to `f`.
    fn exchange<R>(&self, req: Request<'_>, f: impl FnOnce(&Response<'_>) -> R) -> R {
        let token = self.x.next_token();
        let mut frame = [0u8; MAX_FRAME];
        let n = req
            .encode(self.dev_num, token, &mut frame)
            .expect("request fits the frame");
        let resp = self.x.call(&frame[..n]);
        let (h, r): (Header, Response<'_>) = Response::decode(&resp, self.rev)
            .unwrap_or_else(|e| panic!("no valid response to {req:?}: {e:?} ({resp:02x?})"));
        assert_eq!(h.token, token, "response token for {req:?}");
        assert_eq!(h.msg_id, req.msg_id(), "response id for {req:?}");
        assert_eq!(h.dev_num, self.dev_num, "response device for {req:?}");
        f(&r)
    }

    /// GET_DEVICE_INFO: `(device_id, vendor_id, config_size, max_virtqueues)`.
    pub fn device_info(&self) -> (u32, u32, u32, u32) {
        self.exchange(Request::GetDeviceInfo, |r| match r {
            Response::DeviceInfo {
                device_id,
                vendor_id,
                config_size,
                max_virtqueues,
                ..
            } => (*device_id, *vendor_id, *config_size, *max_virtqueues),
            r => panic!("GET_DEVICE_INFO answered with {r:?}"),
        })
    }

    fn vqueue(&self, queue: u16) -> (u32, bool) {
        let index = u32::from(queue);
        self.exchange(Request::GetVqueue { index }, |r| match r {
            Response::Vqueue {
                index: i,
                max_size,
                flags,
                ..
            } if *i == index => (*max_size, flags & VQUEUE_ENABLED != 0),
            r => panic!("GET_VQUEUE({queue}) answered with {r:?}"),
        })
    }

    /// Reads configuration space into `out`: `(generation, bytes read)`;
    /// no bytes when the device refused the range.
    pub fn config(&self, offset: u32, out: &mut [u8]) -> (u32, usize) {
        let length = u32::try_from(out.len()).unwrap_or(u32::MAX);
        self.exchange(Request::GetConfig { offset, length }, |r| match r {
            Response::Config {
                generation, data, ..
            } => {
                let n = data.len();
                if n > 0 {
                    assert_eq!(n, out.len(), "GET_CONFIG returned a partial read");
                    out.copy_from_slice(data);
                }
                (*generation, n)
            }
            r => panic!("GET_CONFIG answered with {r:?}"),
        })
    }

    fn status_of(r: &Response<'_>) -> DeviceStatus {
        match r {
            Response::DeviceStatus { status, .. } => DeviceStatus::from_bits_retain(*status),
            r => panic!("status request answered with {r:?}"),
        }
    }
}

impl<X: Exchange> Transport for MsgDriver<X> {
    fn device_type(&self) -> DeviceType {
        let (id, ..) = self.device_info();
        DeviceType::try_from(id)
            .unwrap_or_else(|_| panic!("device id {id:#x} has no virtio-drivers DeviceType"))
    }

    fn read_device_features(&mut self) -> u64 {
        let req = Request::GetDeviceFeatures {
            block_index: 0,
            num_blocks: 2,
        };
        self.exchange(req, |r| match r {
            Response::DeviceFeatures {
                block_index: 0,
                features,
            } if features.len() == 2 => {
                u64::from(features.get(0).unwrap_or(0))
                    | u64::from(features.get(1).unwrap_or(0)) << 32
            }
            r => panic!("GET_DEVICE_FEATURES answered with {r:?}"),
        })
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        let b = driver_features.to_le_bytes();
        let features = FeatureBlocks::from_le_bytes(&b).expect("8 bytes");
        let req = Request::SetDriverFeatures {
            block_index: 0,
            features,
        };
        self.exchange(req, |_| ());
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.vqueue(queue).0
    }

    fn notify(&mut self, queue: u16) {
        let mut f = [0u8; MAX_FRAME];
        let n = Request::EventAvail {
            vq_index: u32::from(queue),
            next_offset: 0,
        }
        .encode(self.dev_num, 0, &mut f)
        .expect("fits");
        self.x.send(&f[..n]);
    }

    fn get_status(&self) -> DeviceStatus {
        self.exchange(Request::GetDeviceStatus, Self::status_of)
    }

    fn set_status(&mut self, status: DeviceStatus) {
        let req = Request::SetDeviceStatus {
            status: status.bits(),
        };
        self.exchange(req, |_| ());
    }

    fn set_guest_page_size(&mut self, _guest_page_size: u32) {
        // Not a virtio-msg concept (legacy virtio-mmio only).
    }

    fn requires_legacy_layout(&self) -> bool {
        false
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        let req = Request::SetVqueue {
            index: u32::from(queue),
            // v2: apply every field and enable; RFC3: a reserved word.
            flags: match self.rev {
                Revision::V2 => vqueue::ENABLE,
                Revision::Rfc3 => 0,
            },
            size,
            reserved: 0,
            desc: descriptors,
            driver: driver_area,
            device: device_area,
        };
        self.exchange(req, |_| ());
    }

    fn queue_unset(&mut self, queue: u16) {
        let req = Request::ResetVqueue {
            index: u32::from(queue),
        };
        self.exchange(req, |_| ());
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.vqueue(queue).1
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        let (used, config) = self.x.take_events();
        let mut status = InterruptStatus::empty();
        if used {
            status |= InterruptStatus::QUEUE_INTERRUPT;
        }
        if config {
            status |= InterruptStatus::DEVICE_CONFIGURATION_INTERRUPT;
        }
        status
    }

    fn read_config_generation(&self) -> u32 {
        self.config(0, &mut []).0
    }

    fn read_config_space<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T, Error> {
        let mut v = T::new_zeroed();
        let out = v.as_mut_bytes();
        let want = out.len();
        let offset = u32::try_from(offset).map_err(|_| Error::ConfigSpaceTooSmall)?;
        let (_, n) = self.config(offset, out);
        if n != want {
            return Err(Error::ConfigSpaceTooSmall);
        }
        Ok(v)
    }

    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> Result<(), Error> {
        let generation = self.read_config_generation();
        let offset = u32::try_from(offset).map_err(|_| Error::ConfigSpaceTooSmall)?;
        let data = value.as_bytes();
        let req = Request::SetConfig {
            generation,
            offset,
            data,
        };
        self.exchange(req, |r| match r {
            Response::SetConfig { length, .. } if *length as usize == data.len() => Ok(()),
            Response::SetConfig { .. } => Err(Error::Unsupported),
            r => panic!("SET_CONFIG answered with {r:?}"),
        })
    }
}
