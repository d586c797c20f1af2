//! The driver half of virtio-msg over the shared-memory channel
//! (`virtio_backend::amp`), as a `virtio_drivers` [`Transport`].
//!
//! [`AmpDriver::connect`] does what Linux's virtio-msg AMP bus does when
//! it binds: it waits for the device to publish the layout (magic "LO"),
//! attaches, runs the queue-head handshake until both sides are in RUN,
//! and asks the bus for its devices (GET_DEVICES {0, 32}). Every
//! `Transport` call is then one request message, a ring of the device's
//! doorbell, and the one response to it, checked for token, message id
//! and device number. EVENT_USED and EVENT_CONFIG met on the way become
//! interrupt bits for [`Transport::ack_interrupt`]; `notify` sends
//! EVENT_AVAIL, which gets no response.
//!
//! How the doorbell rings, how the driver waits and what time it is are
//! the [`Link`]'s: a function call or thread on the host, an SGI and WFE
//! on a second core.

use core::cell::{Cell, RefCell};
use core::time::Duration;

use virtio_backend::GuestMemory;
use virtio_backend::amp::{Channel, ChannelError, Link as LinkState};
use virtio_backend::bus::{BusRequest, BusResponse, GetDevicesOrder};
use virtio_backend::msg::{
    FeatureBlocks, Header, Request, Response, Revision, TYPE_BUS, TYPE_RESPONSE, VQUEUE_ENABLED,
    vqueue,
};
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{Error, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Bytes of one message buffer (the channel's element size).
pub const FRAME: usize = 64;

/// What connects the driver to the device besides the shared memory.
pub trait Link {
    /// Rings the device's doorbell.
    fn ring(&self);
    /// Waits a little for the device (for its doorbell, or yields).
    fn idle(&self);
    /// Time since a fixed point, for the deadlines.
    fn now(&self) -> Duration;
}

/// Why [`AmpDriver::connect`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    /// No valid layout appeared in time.
    NoLayout(ChannelError),
    /// The handshake did not reach RUN in time, or failed.
    Handshake(Option<ChannelError>),
    /// GET_DEVICES got no usable answer.
    NoDevices,
}

/// The driver's end of one virtio-msg device on the channel.
pub struct AmpDriver<M: GuestMemory, L: Link> {
    inner: RefCell<Inner<M>>,
    link: L,
    rev: Revision,
    dev_num: u16,
    timeout: Duration,
    /// Responses nobody asked for are counted, not fatal.
    lenient: Cell<bool>,
    /// Responses nobody asked for, seen while lenient.
    stray: Cell<usize>,
}

struct Inner<M> {
    channel: Channel,
    mem: M,
    token: u16,
    /// Events not yet collected by `ack_interrupt`: (used buffer, config).
    events: (bool, bool),
}

/// Whether `f` is an event (the device's own message, not a response).
fn is_event(f: &[u8]) -> bool {
    f.len() >= 2 && f[1] & 0x40 != 0 && f[0] & TYPE_RESPONSE == 0
}

impl<M: GuestMemory, L: Link> AmpDriver<M, L> {
    /// Binds to the channel the device publishes at `base..base + len` in
    /// `mem`, speaking `rev`; the device is the first GET_DEVICES lists.
    /// Waits at most `timeout` for each step.
    pub fn connect(
        mem: M,
        base: u64,
        len: u64,
        link: L,
        rev: Revision,
        timeout: Duration,
    ) -> Result<Self, ConnectError> {
        let start = link.now();
        let channel = loop {
            match Channel::attach(&mem, base, len) {
                Ok(c) => break c,
                Err(e) if link.now().saturating_sub(start) >= timeout => {
                    return Err(ConnectError::NoLayout(e));
                }
                Err(_) => link.idle(),
            }
        };
        let mut inner = Inner {
            channel,
            mem,
            token: 0,
            events: (false, false),
        };
        let start = link.now();
        let mut rung = None;
        while inner.channel.link() != LinkState::Run {
            if let Err(e) = inner.channel.poll_link(&inner.mem) {
                return Err(ConnectError::Handshake(Some(e)));
            }
            // Ring when our queue head changed: the device has something
            // to see. Not on every look: a doorbell storm only slows it.
            let now_at = Some(inner.channel.link());
            if now_at != rung {
                link.ring();
                rung = now_at;
            }
            if link.now().saturating_sub(start) >= timeout {
                return Err(ConnectError::Handshake(None));
            }
            link.idle();
        }
        let mut me = AmpDriver {
            inner: RefCell::new(inner),
            link,
            rev,
            dev_num: 0,
            timeout,
            lenient: Cell::new(false),
            stray: Cell::new(0),
        };
        me.dev_num = me.list_devices().ok_or(ConnectError::NoDevices)?;
        Ok(me)
    }

    /// The device number driven.
    pub fn dev_num(&self) -> u16 {
        self.dev_num
    }

    /// The link.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// GET_DEVICES {0, 32}: the first device listed.
    fn list_devices(&self) -> Option<u16> {
        let mut f = [0u8; FRAME];
        let token = self.next_token();
        let n = BusRequest::GetDevices {
            offset: 0,
            count: 32,
        }
        .encode(0, token, &mut f)
        .ok()?;
        let r = self.call(&f[..n]);
        let order = match self.rev {
            Revision::Rfc3 => GetDevicesOrder::Rfc3,
            Revision::V2 => GetDevicesOrder::V2,
        };
        match BusResponse::decode(&r, order) {
            Ok((h, BusResponse::Devices(l))) if h.token == token => {
                (l.offset()..l.offset().saturating_add(l.count())).find(|d| l.contains(*d))
            }
            _ => None,
        }
    }

    fn next_token(&self) -> u16 {
        let mut i = self.inner.borrow_mut();
        i.token = i.token.wrapping_add(1);
        i.token
    }

    /// Puts `frame` in the channel and rings the device once; while the
    /// channel is full, reads what the device sent (which frees its side)
    /// and waits.
    pub fn send(&self, frame: &[u8]) {
        let start = self.link.now();
        let mut rung = false;
        loop {
            {
                let mut i = self.inner.borrow_mut();
                let Inner { channel, mem, .. } = &mut *i;
                match channel.send(&*mem, frame) {
                    Ok(()) => {
                        drop(i);
                        self.link.ring();
                        return;
                    }
                    Err(ChannelError::Full) => {}
                    Err(e) => panic!("the channel refused a message: {e}"),
                }
            }
            // The device answers what it can; our reading frees its side.
            while let Some(f) = self.next_response() {
                if !self.lenient.get() {
                    panic!("a response nobody asked for: {:02x?}", &f[..]);
                }
                self.stray.set(self.stray.get() + 1);
            }
            if !rung {
                self.link.ring();
                rung = true;
            }
            self.link.idle();
            assert!(
                self.link.now().saturating_sub(start) < self.timeout,
                "the channel stayed full"
            );
        }
    }

    /// Takes messages from the device until one that is not an event
    /// (returned); events are recorded on the way. `None` when the queue
    /// is empty.
    fn next_response(&self) -> Option<[u8; FRAME]> {
        let mut i = self.inner.borrow_mut();
        loop {
            let mut f = [0u8; FRAME];
            let Inner { channel, mem, .. } = &mut *i;
            let n = match channel.recv(&*mem, &mut f) {
                Ok(Some(n)) => n,
                Ok(None) => return None,
                Err(e) => panic!("the device's queue: {e}"),
            };
            if !is_event(&f[..n]) {
                return Some(f);
            }
            if f[0] & TYPE_BUS != 0 {
                continue; // EVENT_DEVICE: no interrupt
            }
            match Response::decode(&f[..n], Revision::V2) {
                Ok((h, Response::EventUsed { .. })) if h.dev_num == self.dev_num => {
                    i.events.0 = true
                }
                Ok((h, Response::EventConfig { .. })) if h.dev_num == self.dev_num => {
                    i.events.1 = true
                }
                other => panic!("event {other:?}"),
            }
        }
    }

    /// Takes every message waiting from the device: events are recorded;
    /// a response is returned (two are a device bug).
    fn drain(&self) -> Option<[u8; FRAME]> {
        let found = self.next_response()?;
        if let Some(f) = self.next_response() {
            panic!("two responses for one request: {f:02x?}");
        }
        Some(found)
    }

    /// Sends `frame` and waits for the response carrying `token`, skipping
    /// other responses: for a driver that sent messages which may or may
    /// not be answered (garbage). Returns the response and how many others
    /// were skipped.
    pub fn call_expecting(&self, frame: &[u8], token: u16) -> ([u8; FRAME], usize) {
        self.send(frame);
        let start = self.link.now();
        let mut skipped = 0;
        loop {
            while let Some(f) = self.next_response() {
                if u16::from_le_bytes([f[4], f[5]]) == token {
                    return (f, skipped);
                }
                skipped += 1;
                self.stray.set(self.stray.get() + 1);
            }
            assert!(
                self.link.now().saturating_sub(start) < self.timeout,
                "no response to {frame:02x?}"
            );
            self.link.idle();
        }
    }

    /// Lenient: responses nobody asked for (to garbage a hostile driver
    /// sent) are counted ([`stray`](Self::stray)) instead of failing.
    pub fn set_lenient(&self, on: bool) {
        self.lenient.set(on);
    }

    /// Responses nobody asked for, seen while lenient or skipped by
    /// [`call_expecting`](Self::call_expecting).
    pub fn stray(&self) -> usize {
        self.stray.get()
    }

    /// A token no request in flight uses.
    pub fn fresh_token(&self) -> u16 {
        self.next_token()
    }

    /// Sends `frame` and waits for the one response to it.
    pub fn call(&self, frame: &[u8]) -> [u8; FRAME] {
        self.send(frame);
        let start = self.link.now();
        loop {
            if let Some(f) = self.drain() {
                return f;
            }
            assert!(
                self.link.now().saturating_sub(start) < self.timeout,
                "no response to {frame:02x?}"
            );
            self.link.idle();
        }
    }

    /// Sends `req`, checks that exactly its response came, and hands the
    /// decoded response to `f`.
    fn exchange<R>(&self, req: Request<'_>, f: impl FnOnce(&Response<'_>) -> R) -> R {
        let token = self.next_token();
        let mut frame = [0u8; FRAME];
        let n = req
            .encode(self.dev_num, token, &mut frame)
            .expect("request fits the frame");
        let resp = self.call(&frame[..n]);
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

impl<M: GuestMemory, L: Link> Transport for AmpDriver<M, L> {
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
        let mut f = [0u8; FRAME];
        let n = Request::EventAvail {
            vq_index: u32::from(queue),
            next_offset: 0,
        }
        .encode(self.dev_num, 0, &mut f)
        .expect("fits");
        self.send(&f[..n]);
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
        if let Some(f) = self.drain() {
            panic!("a response nobody asked for: {f:02x?}");
        }
        let (used, config) = core::mem::take(&mut self.inner.borrow_mut().events);
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
