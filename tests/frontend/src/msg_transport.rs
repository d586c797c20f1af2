//! Transport A: virtio-msg (transport revision 1) over mailboxes in the
//! arena's transport page.
//!
//! Each `Transport` call encodes a [`Request`] into the request mailbox,
//! clears the response mailbox's header, rings the doorbell, and decodes the
//! [`Response`] the device left in the response mailbox, checking its token,
//! message id and device number. `notify` sends EVENT_AVAIL, which gets no
//! response. EVENT_USED / EVENT_CONFIG arrive in the event ring and are
//! reported by `ack_interrupt`.

use core::cell::Cell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use virtio_backend::VirtioDevice;
use virtio_backend::msg::{self, FeatureBlocks, Request, Response, VQUEUE_ENABLED};
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{Error, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::loopback::{DEV_NUM, FRAME, Loopback, page};

/// The driver's end of a virtio-msg loopback bus.
pub struct MsgTransport<D: VirtioDevice, const NQ: usize> {
    link: Arc<Loopback<D, NQ>>,
    page: NonNull<u8>,
    token: Cell<u16>,
    events_consumed: Cell<u16>,
    /// Overflow flags found set (coalesced events).
    events_overflowed: Cell<u64>,
    /// Event frames consumed.
    events: Cell<u64>,
}

impl<D: VirtioDevice, const NQ: usize> MsgTransport<D, NQ> {
    /// A driver end for `link`. It takes over the event ring where the
    /// previous driver end (if any) left it: events still unread are its.
    pub fn new(link: Arc<Loopback<D, NQ>>) -> Self {
        let page = link.arena().host(link.page_offset());
        let t = MsgTransport {
            link,
            page,
            token: Cell::new(0),
            events_consumed: Cell::new(0),
            events_overflowed: Cell::new(0),
            events: Cell::new(0),
        };
        let consumed = u16::from_le(t.index(page::EVENT_CONSUMER).load(Ordering::Acquire));
        t.events_consumed.set(consumed);
        t
    }

    fn put(&self, offset: usize, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            // SAFETY: `offset + i` is inside the transport page (callers pass
            // mailbox offsets and frame-sized data), which lives as long as
            // `link` holds the arena; volatile because the device reads it.
            unsafe { self.page.as_ptr().add(offset + i).write_volatile(*b) };
        }
    }

    fn get(&self, offset: usize, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: as in `put`, for reads.
            *b = unsafe { self.page.as_ptr().add(offset + i).read_volatile() };
        }
    }

    /// Sends `req` and returns the response frame, after checking that a
    /// response for exactly this request arrived.
    pub fn exchange(&self, req: Request<'_>) -> [u8; FRAME] {
        let token = self.token.get().wrapping_add(1);
        self.token.set(token);
        let mut frame = [0u8; FRAME];
        req.encode(DEV_NUM, token, &mut frame)
            .expect("request fits the frame");
        self.put(page::REQUEST, &frame);
        self.put(page::RESPONSE, &[0; msg::HEADER_SIZE]);
        self.link.ring();
        let mut resp = [0u8; FRAME];
        self.get(page::RESPONSE, &mut resp);
        let (h, _) = Response::decode(&resp)
            .unwrap_or_else(|e| panic!("no valid response to {req:?}: {e:?} ({resp:02x?})"));
        assert_eq!(h.token, token, "response token for {req:?}");
        assert_eq!(h.msg_id, req.msg_id(), "response id for {req:?}");
        assert_eq!(h.dev_num, DEV_NUM, "response device for {req:?}");
        resp
    }

    /// Sends a message that gets no response (EVENT_AVAIL) and checks that
    /// none came.
    fn post(&self, req: Request<'_>) {
        let mut frame = [0u8; FRAME];
        req.encode(DEV_NUM, 0, &mut frame)
            .expect("event fits the frame");
        self.put(page::REQUEST, &frame);
        self.put(page::RESPONSE, &[0; msg::HEADER_SIZE]);
        self.link.ring();
        let mut h = [0u8; msg::HEADER_SIZE];
        self.get(page::RESPONSE, &mut h);
        assert_eq!(h, [0; msg::HEADER_SIZE], "{req:?} must not be answered");
    }

    /// GET_DEVICE_INFO: `(device_id, vendor_id, config_size, max_virtqueues)`.
    pub fn device_info(&self) -> (u32, u32, u32, u32) {
        let f = self.exchange(Request::GetDeviceInfo);
        match Response::decode(&f).expect("checked").1 {
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
        match Response::decode(&f).expect("checked").1 {
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
        match Response::decode(&f).expect("checked").1 {
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

    fn status_of(f: &[u8]) -> DeviceStatus {
        match Response::decode(f).expect("checked").1 {
            Response::DeviceStatus { status, .. } => DeviceStatus::from_bits_retain(status),
            r => panic!("status request answered with {r:?}"),
        }
    }

    /// Overflow flags the driver found set: events the device coalesced
    /// because the event ring was full.
    pub fn events_overflowed(&self) -> u64 {
        self.events_overflowed.get()
    }

    /// Event frames the driver consumed from the event ring.
    pub fn events(&self) -> u64 {
        self.events.get()
    }

    /// An atomic view of a `u16` index or flag word in the transport page.
    fn index(&self, offset: usize) -> &AtomicU16 {
        assert!(offset.is_multiple_of(2) && offset + 2 <= page::EVENT_RING);
        // SAFETY: `offset` is 2-aligned and inside the transport page (the
        // page is page-aligned), which lives as long as `self.link` holds the
        // arena. Both sides access these words only atomically (the device
        // through `GuestMemory`'s acquire/release `u16` accessors), so an
        // `AtomicU16` view of them is sound.
        unsafe { AtomicU16::from_ptr(self.page.as_ptr().add(offset).cast::<u16>()) }
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
        match Response::decode(&f).expect("checked").1 {
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
        if self.link.threaded() {
            // The bus carries EVENT_AVAIL asynchronously.
            self.link.post_kick(queue);
            return;
        }
        self.post(Request::EventAvail {
            vq_index: u32::from(queue),
            next_offset: 0,
        });
    }

    fn get_status(&self) -> DeviceStatus {
        Self::status_of(&self.exchange(Request::GetDeviceStatus))
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
            flags: VQUEUE_ENABLED,
            size,
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
        let produced = u16::from_le(self.index(page::EVENT_PRODUCER).load(Ordering::Acquire));
        let mut consumed = self.events_consumed.get();
        assert!(
            usize::from(produced.wrapping_sub(consumed)) <= page::EVENT_SLOTS,
            "the device overran the event ring (produced {produced}, consumed {consumed})"
        );
        let mut status = InterruptStatus::empty();
        while consumed != produced {
            let slot = usize::from(consumed) % page::EVENT_SLOTS;
            let mut frame = [0u8; page::EVENT_SLOT];
            self.get(page::EVENT_RING + slot * page::EVENT_SLOT, &mut frame);
            match Response::decode(&frame) {
                Ok((h, Response::EventUsed { vq_index })) => {
                    assert_eq!(h.dev_num, DEV_NUM);
                    assert!((vq_index as usize) < NQ, "EVENT_USED for queue {vq_index}");
                    status |= InterruptStatus::QUEUE_INTERRUPT;
                }
                Ok((h, Response::EventConfig { .. })) => {
                    assert_eq!(h.dev_num, DEV_NUM);
                    status |= InterruptStatus::DEVICE_CONFIGURATION_INTERRUPT;
                }
                other => panic!("event ring slot {slot} holds {other:?}"),
            }
            consumed = consumed.wrapping_add(1);
            self.events.set(self.events.get() + 1);
        }
        self.events_consumed.set(consumed);
        // Release: the slots were read before the device may reuse them.
        self.index(page::EVENT_CONSUMER)
            .store(consumed.to_le(), Ordering::Release);
        // Events that found the ring full were coalesced into sticky flags.
        // Clearing a flag before acting on it is safe: an event raced in
        // between is covered by the work the caller does next.
        for (flag, bit) in [
            (page::OVERFLOW_USED, InterruptStatus::QUEUE_INTERRUPT),
            (
                page::OVERFLOW_CONFIG,
                InterruptStatus::DEVICE_CONFIGURATION_INTERRUPT,
            ),
        ] {
            let f = self.index(flag);
            if f.load(Ordering::Acquire) != 0 {
                f.store(0, Ordering::Release);
                status |= bit;
                self.events_overflowed.set(self.events_overflowed.get() + 1);
            }
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
        match Response::decode(&f).expect("checked").1 {
            Response::SetConfig { length, .. } if length as usize == data.len() => Ok(()),
            Response::SetConfig { .. } => Err(Error::Unsupported),
            r => panic!("SET_CONFIG answered with {r:?}"),
        }
    }
}
