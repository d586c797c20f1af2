//! Transport A: virtio-msg over the library's shared-memory channel
//! (`virtio_backend::amp`) in the arena's transport page, v2 layouts by
//! default (RFC3 when the link's bus speaks it).
//!
//! The link's one driver end ([`Loopback::driver`]) attached to the layout
//! the device published, ran the queue-head handshake and asked the bus for
//! its devices (GET_DEVICES), as Linux's AMP bus does. Each `Transport`
//! call sends a [`Request`] through it, rings the doorbell, and takes the
//! [`Response`] from the device's queue, checking its token, message id and
//! device number; EVENT_USED / EVENT_CONFIG met on the way (or later, by
//! `ack_interrupt`) become interrupt bits. `notify` sends EVENT_AVAIL, which
//! gets no response; with a device thread the driver does not wait for it.

use std::sync::Arc;
use std::time::Instant;

use virtio_backend::VirtioDevice;
use virtio_backend::amp::ChannelError;
use virtio_backend::bus::{BusRequest, BusResponse, GetDevicesOrder};
use virtio_backend::msg::{FeatureBlocks, Request, Response, Revision, VQUEUE_ENABLED, vqueue};
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{Error, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::loopback::{DEV_NUM, DEVICE_TIMEOUT, DriverEnd, Loopback};

/// Bytes of one message buffer (the channel's element size).
const FRAME: usize = 64;

/// Puts `frame` in the channel, ringing the device while it is full.
fn send<D: VirtioDevice, const NQ: usize>(
    link: &Loopback<D, NQ>,
    end: &mut DriverEnd,
    frame: &[u8],
) {
    let start = Instant::now();
    loop {
        match end.channel.send(&*end.mem, frame) {
            Ok(()) => return,
            Err(ChannelError::Full) => {
                // The device takes what it can answer; our reading is what
                // frees its side, so read (events) and ring.
                drain(end);
                link.ring();
            }
            Err(e) => panic!("the channel refused a message: {e}"),
        }
        assert!(start.elapsed() < DEVICE_TIMEOUT, "the channel stayed full");
    }
}

/// Takes every message waiting from the device: events are recorded in
/// `end.events`; anything else is returned (the first one found).
fn drain(end: &mut DriverEnd) -> Option<([u8; FRAME], usize)> {
    let mut found = None;
    loop {
        let mut f = [0u8; FRAME];
        let n = match end.channel.recv(&*end.mem, &mut f) {
            Ok(Some(n)) => n,
            Ok(None) => return found,
            Err(e) => panic!("the device's queue: {e}"),
        };
        if f[1] & 0x40 != 0 && f[0] & 1 == 0 {
            record_event(end, &f[..n]);
        } else if found.is_none() {
            found = Some((f, n));
        } else {
            panic!("two responses for one request: {:02x?}", &f[..n]);
        }
    }
}

fn record_event(end: &mut DriverEnd, f: &[u8]) {
    end.event_count += 1;
    if f[0] & 2 != 0 {
        // A bus event (EVENT_DEVICE): no interrupt.
        return;
    }
    let rev = Revision::V2; // events have the same layout in both
    match Response::decode(f, rev) {
        Ok((h, Response::EventUsed { .. })) => {
            assert_eq!(h.dev_num, DEV_NUM);
            end.events.0 = true;
        }
        Ok((h, Response::EventConfig { .. })) => {
            assert_eq!(h.dev_num, DEV_NUM);
            end.events.1 = true;
        }
        other => panic!("event {other:?}"),
    }
}

/// Sends `frame` and waits for the one response to it.
fn call<D: VirtioDevice, const NQ: usize>(
    link: &Loopback<D, NQ>,
    end: &mut DriverEnd,
    frame: &[u8],
) -> [u8; FRAME] {
    send(link, end, frame);
    let start = Instant::now();
    loop {
        link.ring();
        if let Some((f, _)) = drain(end) {
            return f;
        }
        assert!(
            start.elapsed() < DEVICE_TIMEOUT,
            "no response to {frame:02x?}"
        );
        std::thread::yield_now();
    }
}

/// GET_DEVICES {0, 32}, as the Linux AMP bus asks first; the loopback's
/// device must be listed.
pub fn list_devices<D: VirtioDevice, const NQ: usize>(link: &Loopback<D, NQ>, end: &mut DriverEnd) {
    let mut f = [0u8; FRAME];
    end.token = end.token.wrapping_add(1);
    let n = BusRequest::GetDevices {
        offset: 0,
        count: 32,
    }
    .encode(0, end.token, &mut f)
    .expect("fits");
    let r = call(link, end, &f[..n]);
    let order = match link.revision() {
        Revision::Rfc3 => GetDevicesOrder::Rfc3,
        Revision::V2 => GetDevicesOrder::V2,
    };
    match BusResponse::decode(&r, order) {
        Ok((h, BusResponse::Devices(l))) => {
            assert_eq!(h.token, end.token);
            assert!(l.contains(DEV_NUM), "device {DEV_NUM} not listed");
        }
        other => panic!("GET_DEVICES answered with {other:?}"),
    }
}

/// The driver's end of a virtio-msg loopback bus.
pub struct MsgTransport<D: VirtioDevice, const NQ: usize> {
    link: Arc<Loopback<D, NQ>>,
    rev: Revision,
}

impl<D: VirtioDevice, const NQ: usize> MsgTransport<D, NQ> {
    /// A driver end for `link` (the link's one channel; events still
    /// unread are this handle's).
    pub fn new(link: Arc<Loopback<D, NQ>>) -> Self {
        drop(link.driver());
        let rev = link.revision();
        MsgTransport { link, rev }
    }

    /// Sends `req` and returns the response, after checking that a
    /// response for exactly this request arrived.
    pub fn exchange(&self, req: Request<'_>) -> [u8; FRAME] {
        let mut guard = self.link.driver();
        let end = guard.as_mut().expect("attached");
        end.token = end.token.wrapping_add(1);
        let token = end.token;
        let mut frame = [0u8; FRAME];
        let n = req
            .encode(DEV_NUM, token, &mut frame)
            .expect("request fits the frame");
        let resp = call(&self.link, end, &frame[..n]);
        let (h, _) = Response::decode(&resp, self.rev)
            .unwrap_or_else(|e| panic!("no valid response to {req:?}: {e:?} ({resp:02x?})"));
        assert_eq!(h.token, token, "response token for {req:?}");
        assert_eq!(h.msg_id, req.msg_id(), "response id for {req:?}");
        assert_eq!(h.dev_num, DEV_NUM, "response device for {req:?}");
        resp
    }

    fn decode(&self, f: &[u8]) -> Response<'static> {
        let buf: &'static [u8] = Box::leak(f.to_vec().into_boxed_slice());
        Response::decode(buf, self.rev).expect("checked").1
    }

    /// Event messages consumed.
    pub fn events(&self) -> u64 {
        self.link.driver().as_ref().map_or(0, |e| e.event_count)
    }

    /// GET_DEVICE_INFO: `(device_id, vendor_id, config_size, max_virtqueues)`.
    pub fn device_info(&self) -> (u32, u32, u32, u32) {
        let f = self.exchange(Request::GetDeviceInfo);
        match self.decode(&f) {
            Response::DeviceInfo {
                device_id,
                vendor_id,
                config_size,
                max_virtqueues,
                ..
            } => (device_id, vendor_id, config_size, max_virtqueues),
            r => panic!("GET_DEVICE_INFO answered with {r:?}"),
        }
    }

    fn vqueue(&self, queue: u16) -> (u32, bool) {
        let f = self.exchange(Request::GetVqueue {
            index: u32::from(queue),
        });
        match self.decode(&f) {
            Response::Vqueue {
                index,
                max_size,
                flags,
                ..
            } => {
                assert_eq!(index, u32::from(queue));
                (max_size, flags & VQUEUE_ENABLED != 0)
            }
            r => panic!("GET_VQUEUE answered with {r:?}"),
        }
    }

    /// Reads configuration space: `(generation, bytes)`; the bytes are
    /// empty when the device refused the range.
    pub fn config(&self, offset: u32, out: &mut [u8]) -> (u32, usize) {
        let f = self.exchange(Request::GetConfig {
            offset,
            length: out.len() as u32,
        });
        match self.decode(&f) {
            Response::Config {
                generation, data, ..
            } => {
                let n = data.len();
                if n > 0 {
                    assert_eq!(n, out.len(), "GET_CONFIG returned a partial read");
                    out.copy_from_slice(data);
                }
                (generation, n)
            }
            r => panic!("GET_CONFIG answered with {r:?}"),
        }
    }

    fn status_of(&self, f: &[u8]) -> DeviceStatus {
        match self.decode(f) {
            Response::DeviceStatus { status, .. } => DeviceStatus::from_bits_retain(status),
            r => panic!("status request answered with {r:?}"),
        }
    }
}

impl<D: VirtioDevice, const NQ: usize> Transport for MsgTransport<D, NQ> {
    fn device_type(&self) -> DeviceType {
        let (id, ..) = self.device_info();
        DeviceType::try_from(id)
            .unwrap_or_else(|_| panic!("device id {id:#x} has no virtio-drivers DeviceType"))
    }

    fn read_device_features(&mut self) -> u64 {
        let f = self.exchange(Request::GetDeviceFeatures {
            block_index: 0,
            num_blocks: 2,
        });
        match self.decode(&f) {
            Response::DeviceFeatures {
                block_index,
                features,
            } => {
                assert_eq!((block_index, features.len()), (0, 2));
                u64::from(features.get(0).expect("block 0"))
                    | u64::from(features.get(1).expect("block 1")) << 32
            }
            r => panic!("GET_DEVICE_FEATURES answered with {r:?}"),
        }
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&(driver_features as u32).to_le_bytes());
        b[4..].copy_from_slice(&((driver_features >> 32) as u32).to_le_bytes());
        self.exchange(Request::SetDriverFeatures {
            block_index: 0,
            features: FeatureBlocks::from_le_bytes(&b).expect("8 bytes"),
        });
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.vqueue(queue).0
    }

    fn notify(&mut self, queue: u16) {
        let mut f = [0u8; FRAME];
        let n = Request::EventAvail {
            vq_index: u32::from(queue),
            next_offset: 0,
        }
        .encode(DEV_NUM, 0, &mut f)
        .expect("fits");
        let mut guard = self.link.driver();
        let end = guard.as_mut().expect("attached");
        send(&self.link, end, &f[..n]);
        self.link.count_posted(queue);
        // With a device thread the kick is posted: the driver goes on
        // adding buffers while the device drains the ring.
        self.link.post();
    }

    fn get_status(&self) -> DeviceStatus {
        self.status_of(&self.exchange(Request::GetDeviceStatus))
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.exchange(Request::SetDeviceStatus {
            status: status.bits(),
        });
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
        self.exchange(Request::SetVqueue {
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
        });
    }

    fn queue_unset(&mut self, queue: u16) {
        self.exchange(Request::ResetVqueue {
            index: u32::from(queue),
        });
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.vqueue(queue).1
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        let mut guard = self.link.driver();
        let end = guard.as_mut().expect("attached");
        if let Some((f, n)) = drain(end) {
            panic!("a response nobody asked for: {:02x?}", &f[..n]);
        }
        let (used, config) = core::mem::take(&mut end.events);
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
        let f = self.exchange(Request::SetConfig {
            generation,
            offset,
            data,
        });
        match self.decode(&f) {
            Response::SetConfig { length, .. } if length as usize == data.len() => Ok(()),
            Response::SetConfig { .. } => Err(Error::Unsupported),
            r => panic!("SET_CONFIG answered with {r:?}"),
        }
    }
}
