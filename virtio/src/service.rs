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
//! 2. hands each transport message ([`Message`]) to its device's control
//!    plane ([`msg::handle`]) and leaves the response in the message;
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
use crate::device::{Interrupts, VirtioDevice};
use crate::memory::GuestMemory;
use crate::msg;

/// One notification to the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notification {
    /// Queue `n` has used buffers (virtio v1.2 §2.7.10 / §2.8.10).
    Used(u16),
    /// The configuration changed, or the device set `DEVICE_NEEDS_RESET`
    /// (`needs_reset`, virtio v1.2 §2.1.2).
    Config {
        /// The device needs a reset.
        needs_reset: bool,
    },
}

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
    dev_num: u16,
    pending: Interrupts,
}

impl<'a, D, M, N, const NQ: usize, const H: usize> Bound<'a, D, M, N, NQ, H>
where
    D: VirtioDevice,
    M: GuestMemory,
    N: Notifier,
{
    /// Binds `core` to `mem` and `notifier`; `dev_num` is its device number
    /// on a virtio-msg bus (messages for other numbers are dropped).
    pub fn new(core: &'a mut DeviceCore<D, NQ, H>, mem: &'a M, notifier: N, dev_num: u16) -> Self {
        Bound {
            core,
            mem,
            notifier,
            dev_num,
            pending: Interrupts::default(),
        }
    }

    /// Notifications asked for and not yet delivered.
    pub fn pending(&self) -> Interrupts {
        self.pending
    }

    /// The core.
    pub fn core(&mut self) -> &mut DeviceCore<D, NQ, H> {
        self.core
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
        let h = msg::handle(self.core, self.mem, self.dev_num, request, response);
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

/// A virtio-msg transport message for device `device`; the step writes its
/// response into `response` and says what it did in `handled`.
#[derive(Debug)]
pub struct Message<'a> {
    /// Index of the device.
    pub device: usize,
    /// The message as received.
    pub request: &'a [u8],
    /// Room for the response (the bus's frame size).
    pub response: &'a mut [u8],
    /// Filled in by [`step`]; `None` if `device` is not in the slice.
    pub handled: Option<msg::Handled>,
}

/// What woke the transport.
#[derive(Debug, Default)]
pub struct Wake<'w, 'a> {
    /// The clock, when time is to pass (a timer fired, or time is brought
    /// up to date before requests are served).
    pub now_ms: Option<u64>,
    /// Transport messages, in arrival order.
    pub messages: &'w mut [Message<'a>],
    /// Queue kicks, in arrival order (kicks of one queue may be merged by
    /// the transport; serving a queue drains it).
    pub kicks: &'w [Kick],
}

/// What one [`step`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Messages handed to a device.
    pub messages: usize,
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
pub fn step(devices: &mut [&mut dyn Endpoint], wake: Wake<'_, '_>) -> Report {
    let mut r = Report::default();
    if let Some(now) = wake.now_ms {
        for d in devices.iter_mut() {
            d.advance(now);
        }
    }
    for m in wake.messages.iter_mut() {
        match devices.get_mut(m.device) {
            Some(d) => {
                m.handled = Some(d.message(m.request, m.response));
                r.messages += 1;
            }
            None => r.unknown_device += 1,
        }
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
