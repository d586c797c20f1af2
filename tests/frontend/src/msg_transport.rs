//! Transport A: virtio-msg over the library's shared-memory channel
//! (`virtio_backend::amp`) in the arena's transport page, v2 layouts by
//! default (RFC3 when the link's bus speaks it).
//!
//! The link's one driver end ([`Loopback::driver`]) attached to the layout
//! the device published, ran the queue-head handshake and asked the bus for
//! its devices (GET_DEVICES), as Linux's AMP bus does. The transport is
//! `scmi_agent`'s bus-independent [`MsgDriver`] over [`LoopbackExchange`]:
//! each request goes through the driver end, rings the doorbell, and its
//! response is taken from the device's queue; EVENT_USED / EVENT_CONFIG met
//! on the way (or later, by `ack_interrupt`) become interrupt bits.
//! EVENT_AVAIL gets no response; with a device thread the driver does not
//! wait for it.

use std::sync::Arc;
use std::time::Instant;

use scmi_agent::msg_driver::{Exchange, MAX_FRAME, MsgDriver};
use virtio_backend::VirtioDevice;
use virtio_backend::amp::ChannelError;
use virtio_backend::bus::{BusRequest, BusResponse, GetDevicesOrder};
use virtio_backend::msg::{Request, Response, Revision};

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

/// The driver's end of a virtio-msg loopback bus, as `MsgDriver`'s
/// exchange.
pub struct LoopbackExchange<D: VirtioDevice, const NQ: usize> {
    link: Arc<Loopback<D, NQ>>,
}

/// Transport A: the virtio-msg driver over the loopback.
pub type MsgTransport<D, const NQ: usize> = MsgDriver<LoopbackExchange<D, NQ>>;

/// A driver for `link` (the link's one channel; events still unread are
/// this handle's).
pub fn msg_transport<D: VirtioDevice, const NQ: usize>(
    link: Arc<Loopback<D, NQ>>,
) -> MsgTransport<D, NQ> {
    drop(link.driver());
    let rev = link.revision();
    MsgDriver::new(LoopbackExchange { link }, rev, DEV_NUM)
}

impl<D: VirtioDevice, const NQ: usize> LoopbackExchange<D, NQ> {
    fn end<R>(&self, f: impl FnOnce(&mut DriverEnd) -> R) -> R {
        f(self.link.driver().as_mut().expect("attached"))
    }

    /// Event messages consumed.
    pub fn events(&self) -> u64 {
        self.link.driver().as_ref().map_or(0, |e| e.event_count)
    }
}

impl<D: VirtioDevice, const NQ: usize> Exchange for LoopbackExchange<D, NQ> {
    fn next_token(&self) -> u16 {
        self.end(|end| {
            end.token = end.token.wrapping_add(1);
            end.token
        })
    }

    fn call(&self, frame: &[u8]) -> [u8; MAX_FRAME] {
        let f = self.end(|end| call(&self.link, end, frame));
        let mut out = [0u8; MAX_FRAME];
        out[..FRAME].copy_from_slice(&f);
        out
    }

    /// The driver sends one event: EVENT_AVAIL.
    fn send(&self, frame: &[u8]) {
        let queue = match Request::decode(frame) {
            Ok((_, Request::EventAvail { vq_index, .. })) => vq_index as u16,
            other => panic!("an event other than EVENT_AVAIL: {other:?}"),
        };
        self.end(|end| send(&self.link, end, frame));
        self.link.count_posted(queue);
        // With a device thread the kick is posted: the driver goes on
        // adding buffers while the device drains the ring.
        self.link.post();
    }

    fn take_events(&self) -> (bool, bool) {
        self.end(|end| {
            if let Some((f, n)) = drain(end) {
                panic!("a response nobody asked for: {:02x?}", &f[..n]);
            }
            core::mem::take(&mut end.events)
        })
    }
}
