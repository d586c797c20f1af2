//! The service step: what every transport does when something woke it,
//! written once.
//!
//! A transport learns that the driver did something (a doorbell interrupt,
//! an eventfd, an FF-A call, a message in a shared-memory channel) or that
//! time passed. It describes that as a [`Wake`] and calls [`step`] with
//! the devices it serves, each bound to its driver memory and its
//! [`Notifier`] ([`Bound`]). The step then, in this order:
//!
//! 1. lets time pass on every device ([`Wake::now_ms`],
//!    [`VirtioDevice::advance`]), so that requests see the current time;
//! 2. takes the transport messages waiting in the [`Mailbox`], one at a
//!    time, hands each to its device's control plane ([`msg::handle`]) and
//!    gives the response back to the mailbox (at most
//!    [`MAX_MESSAGES_PER_STEP`]; a driver that keeps sending cannot hold
//!    the step);
//! 3. serves each kicked queue ([`DeviceCore::queue_notify`]);
//! 4. polls every device ([`DeviceCore::poll`]): a command served for one
//!    agent may have queued an event for another that shares its server,
//!    and time may have produced events;
//! 5. delivers, device by device, the notifications steps 2–4 asked for,
//!    following the barrier contract of [`Notifier`].
//!
//! The step allocates nothing and calls no OS: the transport's own
//! mechanics stay behind [`Notifier`] and the memory behind
//! [`GuestMemory`].
//!
//! # The barrier contract
//!
//! Between "the core returned [`Interrupts`]" and "the driver's doorbell
//! rings", the driver must be able to see every byte the device wrote:
//! used-ring entries, used indices, reply buffers and notification
//! messages. The pieces:
//!
//! * every write to driver memory goes through [`GuestMemory`]; where the
//!   peer is not cache-coherent, its [`CacheMaintenance`] cleans each
//!   written range as it is written (issuing the clean, not waiting for it);
//! * [`Notifier::notify`] records each notification; a transport whose
//!   notifications are themselves writes to shared memory (an EVENT_USED
//!   frame in a channel, an interrupt-status word) writes them here,
//!   through the same memory and cache maintenance;
//! * [`Notifier::barrier`] then completes all of that: on Arm a `DSB`
//!   (after cache cleans, `DSB` waits for them to finish; before an MMIO
//!   doorbell or an SGI, it orders the memory writes before the doorbell
//!   write, which a `DMB` does not do for device memory or system
//!   registers); a transport whose doorbell is a system call (an eventfd
//!   write) gets that ordering from the call and may do nothing;
//! * [`Notifier::ring`] rings the doorbell once for everything notified.
//!
//! [`step`] calls `barrier` and `ring` once per device and step, and only
//! when there is something to notify. The order clean → barrier → ring is
//! tested with a recording double of both seams.
//!
//! [`CacheMaintenance`]: crate::CacheMaintenance

use crate::control::DeviceCore;
pub use crate::device::Notification;
use crate::device::{Interrupts, VirtioDevice};
use crate::memory::GuestMemory;
use crate::msg;

/// How a transport tells the driver, under the barrier contract of this
/// module: `notify` for each notification, then `barrier` once, then
/// `ring` once.
pub trait Notifier {
    /// Records one notification. May write driver-visible memory (an
    /// event message, a status word) through the transport's
    /// [`GuestMemory`]; must not ring the doorbell yet.
    fn notify(&mut self, n: Notification);

    /// Makes every write the device made so far visible to the driver
    /// before the doorbell that follows: waits for cache cleans and orders
    /// the writes before the doorbell write (on Arm, a `DSB`). Nothing to
    /// do where ringing is a system call.
    fn barrier(&mut self);

    /// Rings the driver's doorbell for what was notified since the last
    /// ring (an interrupt, an SGI, a mailbox, an eventfd write).
    fn ring(&mut self);
}

/// The doorbell of a transport whose notifications are messages it writes
/// itself (a shared-memory channel): the two last steps of the barrier
/// contract, as the platform does them (on Arm: `DSB`, then an SGI or a
/// mailbox register write).
pub trait Doorbell {
    /// Completes the writes before the doorbell ([`Notifier::barrier`]).
    fn barrier(&mut self);
    /// Rings the peer ([`Notifier::ring`]).
    fn ring(&mut self);
}

impl<D: Doorbell + ?Sized> Doorbell for &mut D {
    fn barrier(&mut self) {
        (**self).barrier();
    }
    fn ring(&mut self) {
        (**self).ring();
    }
}

impl<N: Notifier + ?Sized> Notifier for &mut N {
    fn notify(&mut self, n: Notification) {
        (**self).notify(n);
    }
    fn barrier(&mut self) {
        (**self).barrier();
    }
    fn ring(&mut self) {
        (**self).ring();
    }
}

/// One device as [`step`] sees it: object-safe, so devices of different
/// types can share a step. [`Bound`] implements it for a [`DeviceCore`].
///
/// The work methods accumulate the notifications they cause; [`deliver`]
/// hands them to the notifier.
///
/// [`deliver`]: Endpoint::deliver
pub trait Endpoint {
    /// Time passed: the clock reads `now_ms`.
    fn advance(&mut self, now_ms: u64);
    /// Serves one virtio-msg transport message; returns what the control
    /// plane did (the response is in `response`).
    fn message(&mut self, request: &[u8], response: &mut [u8]) -> msg::Handled;
    /// Queue `queue` was kicked.
    fn kick(&mut self, queue: u16);
    /// Device-initiated work.
    fn poll(&mut self);
    /// Delivers what the calls since the last delivery asked for; returns
    /// the number of notifications (0: nothing was rung).
    fn deliver(&mut self) -> usize;
}

/// A [`DeviceCore`] bound for one step to the driver memory it reaches and
/// the notifier that tells its driver.
pub struct Bound<'a, D, M, N, const NQ: usize, const H: usize> {
    core: &'a mut DeviceCore<D, NQ, H>,
    mem: &'a M,
    notifier: N,
    rev: msg::Revision,
    dev_num: u16,
    pending: Interrupts,
}

impl<'a, D, M, N, const NQ: usize, const H: usize> Bound<'a, D, M, N, NQ, H>
where
    D: VirtioDevice,
    M: GuestMemory,
    N: Notifier,
{
    /// Binds `core` to `mem` and `notifier`, as device 0 of a v2 virtio-msg
    /// bus for the messages it may get (see [`Bound::on_bus`]).
    pub fn new(core: &'a mut DeviceCore<D, NQ, H>, mem: &'a M, notifier: N) -> Self {
        Bound {
            core,
            mem,
            notifier,
            rev: msg::Revision::V2,
            dev_num: 0,
            pending: Interrupts::default(),
        }
    }

    /// The device is `dev_num` on a virtio-msg bus speaking `rev`: messages
    /// for other numbers are dropped, responses use `rev`'s layouts.
    pub fn on_bus(mut self, rev: msg::Revision, dev_num: u16) -> Self {
        self.rev = rev;
        self.dev_num = dev_num;
        self
    }

    /// Adds notifications that arose outside the step (a configuration
    /// change, [`DeviceCore::config_changed`]); the next delivery sends
    /// them.
    pub fn raise(&mut self, i: Interrupts) {
        self.pending = self.pending.merge(i);
    }
}

impl<D, M, N, const NQ: usize, const H: usize> Endpoint for Bound<'_, D, M, N, NQ, H>
where
    D: VirtioDevice,
    M: GuestMemory,
    N: Notifier,
{
    fn advance(&mut self, now_ms: u64) {
        self.core.advance(now_ms);
    }

    fn message(&mut self, request: &[u8], response: &mut [u8]) -> msg::Handled {
        let h = msg::handle(
            self.core,
            self.mem,
            self.rev,
            self.dev_num,
            request,
            response,
        );
        self.pending = self.pending.merge(h.interrupts);
        h
    }

    fn kick(&mut self, queue: u16) {
        let i = self.core.queue_notify(self.mem, queue);
        self.pending = self.pending.merge(i);
    }

    fn poll(&mut self) {
        let i = self.core.poll(self.mem);
        self.pending = self.pending.merge(i);
    }

    fn deliver(&mut self) -> usize {
        let ints = core::mem::take(&mut self.pending);
        if ints.is_empty() {
            return 0;
        }
        let mut n = 0;
        if ints.config {
            self.notifier.notify(Notification::Config {
                needs_reset: self.core.needs_reset(),
                status: self.core.status(),
                generation: self.core.config_generation(),
            });
            n += 1;
        }
        for q in ints.queues() {
            self.notifier.notify(Notification::Used(q));
            n += 1;
        }
        self.notifier.barrier();
        self.notifier.ring();
        n
    }
}

/// A queue kick: device `device` (index into the slice given to [`step`]),
/// queue `queue`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kick {
    /// Index of the device.
    pub device: usize,
    /// The kicked queue.
    pub queue: u16,
}

impl Kick {
    /// The kicks of `device`'s queues whose bits are set in `mask` (bit
    /// `n`: queue `n`), in queue order, as many as `out` holds.
    pub fn from_mask(device: usize, mask: u64, out: &mut [Kick]) -> &[Kick] {
        let mut bits = mask;
        let mut n = 0;
        for k in out.iter_mut() {
            let Ok(queue) = u16::try_from(bits.trailing_zeros()) else {
                break;
            };
            if queue >= 64 {
                break;
            }
            bits &= bits - 1;
            *k = Kick { device, queue };
            n += 1;
        }
        &out[..n]
    }
}

/// Where a transport's incoming virtio-msg transport messages wait, and
/// where their responses go (a shared-memory channel, an FF-A message, a
/// mailbox register block). Bus messages are the transport's own business:
/// `next` hands out transport messages only.
pub trait Mailbox {
    /// Moves the next transport message into `buf`; returns the index of
    /// the device it is for (into the slice given to [`step`]) and its
    /// length. `None` when no message waits.
    fn next(&mut self, buf: &mut [u8]) -> Option<(usize, usize)>;
    /// The response to the message `next` returned last.
    fn reply(&mut self, device: usize, response: &[u8]);
    /// The largest message the transport carries (responses are cut to
    /// fit; GET_CONFIG answers no more than fits).
    fn frame_size(&self) -> usize {
        MAX_FRAME
    }
}

/// The largest message the step handles: a 256-byte payload and the
/// header (virtio-msg v2 recommends buses carry no more).
pub const MAX_FRAME: usize = 264;

/// Most messages one [`step`] takes from the mailbox.
pub const MAX_MESSAGES_PER_STEP: usize = 64;

/// What woke the transport.
#[derive(Default)]
pub struct Wake<'w> {
    /// The clock, when time is to pass (a timer fired, or time is brought
    /// up to date before requests are served).
    pub now_ms: Option<u64>,
    /// Where transport messages wait, if the transport carries any.
    pub mailbox: Option<&'w mut dyn Mailbox>,
    /// Queue kicks, in arrival order (kicks of one queue may be merged by
    /// the transport; serving a queue drains it).
    pub kicks: &'w [Kick],
}

/// What one [`step`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Messages handed to a device.
    pub messages: usize,
    /// Messages dropped (malformed, for another device number, unknown):
    /// they got no response, as virtio-msg has no error message.
    pub dropped: usize,
    /// The step took [`MAX_MESSAGES_PER_STEP`] messages and stopped; more
    /// may wait: step again.
    pub more: bool,
    /// Kicks served.
    pub kicks: usize,
    /// Kicks and messages for a device index outside the slice (ignored).
    pub unknown_device: usize,
    /// Notifications delivered.
    pub notifications: usize,
    /// Devices whose doorbell was rung.
    pub rings: usize,
}

/// Serves what woke the transport, then delivers the notifications (see
/// the module documentation for the order).
pub fn step(devices: &mut [&mut dyn Endpoint], wake: Wake<'_>) -> Report {
    let mut r = Report::default();
    if let Some(now) = wake.now_ms {
        for d in devices.iter_mut() {
            d.advance(now);
        }
    }
    if let Some(mailbox) = wake.mailbox {
        let mut request = [0u8; MAX_FRAME];
        let mut response = [0u8; MAX_FRAME];
        let room = mailbox.frame_size().min(MAX_FRAME);
        let mut taken = 0;
        while taken < MAX_MESSAGES_PER_STEP {
            let Some((device, len)) = mailbox.next(&mut request) else {
                break;
            };
            taken += 1;
            let (Some(d), Some(req)) = (devices.get_mut(device), request.get(..len)) else {
                r.unknown_device += 1;
                continue;
            };
            let out = &mut response[..room];
            let h = d.message(req, out);
            r.messages += 1;
            match h.response_len.and_then(|n| out.get(..n)) {
                Some(resp) => mailbox.reply(device, resp),
                None => r.dropped += usize::from(h.dropped.is_some()),
            }
        }
        // The mailbox may hold more: the transport steps again.
        r.more = taken == MAX_MESSAGES_PER_STEP;
    }
    for k in wake.kicks {
        match devices.get_mut(k.device) {
            Some(d) => {
                d.kick(k.queue);
                r.kicks += 1;
            }
            None => r.unknown_device += 1,
        }
    }
    for d in devices.iter_mut() {
        d.poll();
    }
    for d in devices.iter_mut() {
        let n = d.deliver();
        r.notifications += n;
        r.rings += usize::from(n > 0);
    }
    r
}
