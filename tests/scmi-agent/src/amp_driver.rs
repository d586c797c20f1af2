//! The driver half of virtio-msg over the shared-memory channel
//! (`virtio_backend::amp`): [`AmpChannel`], an [`Exchange`], and
//! [`AmpDriver`], the `virtio_drivers` transport over it.
//!
//! [`AmpDriver::connect`] does what Linux's virtio-msg AMP bus does when
//! it binds: it waits for the device to publish the layout (magic "LO"),
//! attaches, runs the queue-head handshake until both sides are in RUN,
//! and asks the bus for its devices (GET_DEVICES {0, 32}). Every
//! `Transport` call is then one request message, a ring of the device's
//! doorbell, and the one response to it, checked for token, message id
//! and device number ([`MsgDriver`]). EVENT_USED and EVENT_CONFIG met on
//! the way become interrupt bits; `notify` sends EVENT_AVAIL, which gets
//! no response.
//!
//! How the doorbell rings, how the driver waits and what time it is are
//! the [`Link`]'s: a function call or thread on the host, an SGI and WFE
//! on a second core.

use core::cell::{Cell, RefCell};
use core::time::Duration;

use virtio_backend::GuestMemory;
use virtio_backend::amp::{Channel, ChannelError, Link as LinkState};
use virtio_backend::bus::{BusRequest, BusResponse, GetDevicesOrder};
use virtio_backend::msg::{Response, Revision, TYPE_BUS, TYPE_RESPONSE};

use crate::msg_driver::{Exchange, MAX_FRAME, MsgDriver};

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

/// One virtio-msg device on the channel as a `virtio_drivers` transport.
pub type AmpDriver<M, L> = MsgDriver<AmpChannel<M, L>>;

/// The driver's end of the channel, for one virtio-msg device.
pub struct AmpChannel<M: GuestMemory, L: Link> {
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

impl<M: GuestMemory, L: Link> MsgDriver<AmpChannel<M, L>> {
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
        let mut me = AmpChannel {
            inner: RefCell::new(inner),
            link,
            rev,
            dev_num: 0,
            timeout,
            lenient: Cell::new(false),
            stray: Cell::new(0),
        };
        me.dev_num = me.list_devices().ok_or(ConnectError::NoDevices)?;
        let dev_num = me.dev_num;
        Ok(MsgDriver::new(me, rev, dev_num))
    }
}

impl<M: GuestMemory, L: Link> AmpChannel<M, L> {
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
}

impl<M: GuestMemory, L: Link> Exchange for AmpChannel<M, L> {
    fn next_token(&self) -> u16 {
        AmpChannel::next_token(self)
    }

    fn call(&self, frame: &[u8]) -> [u8; MAX_FRAME] {
        let r = AmpChannel::call(self, frame);
        let mut out = [0u8; MAX_FRAME];
        out[..FRAME].copy_from_slice(&r);
        out
    }

    fn send(&self, frame: &[u8]) {
        AmpChannel::send(self, frame);
    }

    fn take_events(&self) -> (bool, bool) {
        if let Some(f) = self.drain() {
            panic!("a response nobody asked for: {f:02x?}");
        }
        core::mem::take(&mut self.inner.borrow_mut().events)
    }
}
