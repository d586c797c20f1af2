//! The hypervisor-less shared-memory transport.
//!
//! # What it is for
//!
//! Two processors share a window of memory and can interrupt each other
//! (an SGI through the GIC between cores of one machine; a mailbox such as
//! an MHU on silicon). The device serves one virtio device over virtio-msg
//! on the library's shared-memory channel (`virtio_backend::amp`, the
//! `vmamp_shmem` layout) at a fixed place in the window; the driver's
//! virtqueues and buffers lie in the same window and are addressed by
//! their offset in it ([`FixedWindow`](virtio_backend::FixedWindow) with a
//! guest base of 0). Where the peer is not cache-coherent the window's
//! [`CacheMaintenance`](virtio_backend::CacheMaintenance) hook cleans and
//! invalidates around every access.
//!
//! [`ShmemDevice`] is what a firmware image's loop calls:
//! [`pending`](ShmemDevice::pending) with interrupts masked before it
//! sleeps, and [`serve`](ShmemDevice::serve) when it wakes (doorbell,
//! timer, or work found); [`serve_forever`] is that loop, over a
//! [`Processor`] the board provides. Everything else — the handshake, the bus
//! messages, the order of messages, kicks, time and notifications, the
//! barrier before the doorbell — is the core's (`virtio_backend::service`).
//!
//! # What it refuses to know about
//!
//! Which interrupt controller, mailbox or cache a board has (the
//! [`Doorbell`] and the window's cache hook are the caller's), where the
//! window is (the manifest's, given to the image at build time), and the
//! device type (any [`VirtioDevice`]).

#![no_std]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use virtio_backend::amp::{AmpBus, AmpStats, BusState, Channel, ChannelError, Geometry};
use virtio_backend::bus::GetDevicesOrder;
use virtio_backend::msg::Revision;
use virtio_backend::service::{self, Bound, Doorbell, Mailbox, Report, Wake};
use virtio_backend::{DeviceCore, GuestMemory, VirtioDevice};

/// The device number of the one device on the channel.
pub const DEV_NUM: u16 = 0;

/// Most service steps one [`ShmemDevice::serve`] takes (each takes at most
/// `virtio_backend::service::MAX_MESSAGES_PER_STEP` messages).
pub const MAX_STEPS_PER_SERVE: usize = 4;

/// One virtio device behind the shared-memory channel.
pub struct ShmemDevice<D, const NQ: usize, const H: usize> {
    core: DeviceCore<D, NQ, H>,
    rev: Revision,
    /// The bus, once the channel is published.
    bus: Option<AmpBus<1>>,
    /// The time last given to the core: the same time again is not given
    /// (time has not moved; the SCMI platform would only redo its
    /// simulation to find nothing changed).
    last_ms: Option<u64>,
}

/// What one [`ShmemDevice::serve`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    /// The service steps' reports, summed.
    pub messages: usize,
    /// Messages dropped (malformed, unknown, for no device).
    pub dropped: usize,
    /// Kicks served.
    pub kicks: usize,
    /// Notifications delivered.
    pub notifications: usize,
    /// Steps taken (more than one when the channel held more than one
    /// step takes).
    pub steps: usize,
    /// The driver went away (or started over) and the device was reset.
    pub reset: bool,
    /// The link runs.
    pub up: bool,
    /// The serve stopped after [`MAX_STEPS_PER_SERVE`] steps with messages
    /// still waiting: serve again (after taking interrupts and letting time
    /// pass), so that a driver that keeps the channel full cannot keep the
    /// device in one serve forever.
    pub more: bool,
}

impl Served {
    fn add(&mut self, r: Report) {
        self.messages += r.messages;
        self.dropped += r.dropped;
        self.kicks += r.kicks;
        self.notifications += r.notifications;
        self.steps += 1;
    }
}

impl<D: VirtioDevice, const NQ: usize, const H: usize> ShmemDevice<D, NQ, H> {
    /// The device, speaking `rev` once its channel is published (a
    /// `const` constructor: firmware keeps this in a `static`).
    pub const fn new(core: DeviceCore<D, NQ, H>, rev: Revision) -> Self {
        ShmemDevice {
            core,
            rev,
            bus: None,
            last_ms: None,
        }
    }

    /// Publishes the channel layout at `base..base + len` of `mem` and
    /// starts the handshake; the driver attaches once the layout magic is
    /// there. Publishing again starts over: the device is reset and a
    /// driver attached to the earlier layout must attach again.
    pub fn publish<M: GuestMemory>(
        &mut self,
        mem: &M,
        base: u64,
        len: u64,
        geometry: Geometry,
    ) -> Result<(), ChannelError> {
        let channel = Channel::publish(mem, base, len, geometry)?;
        let order = match self.rev {
            // The Linux AMP bus reads GET_DEVICES in RFC3 order.
            Revision::Rfc3 => GetDevicesOrder::Rfc3,
            Revision::V2 => GetDevicesOrder::V2,
        };
        self.bus = Some(AmpBus::new(channel, self.rev, order));
        self.core.reset();
        Ok(())
    }

    /// The device status the driver last set (virtio v1.2 §2.1); 0 after a
    /// reset.
    pub fn status(&self) -> u8 {
        self.core.status()
    }

    /// What the bus did so far.
    pub fn stats(&self) -> AmpStats {
        self.bus.as_ref().map(AmpBus::stats).unwrap_or_default()
    }

    /// Whether [`serve`](Self::serve) has work: a message waits, or the
    /// handshake is under way. Called with interrupts masked just before
    /// the loop sleeps, so that a doorbell after the check still wakes it.
    pub fn pending<M: GuestMemory>(&self, mem: &M) -> bool {
        self.bus.as_ref().is_some_and(|b| b.channel().pending(mem))
    }

    /// Serves what waits: moves the handshake on (a lost driver resets the
    /// device: nothing it set up survives), then steps the core until the
    /// channel is drained or [`MAX_STEPS_PER_SERVE`] steps were taken
    /// ([`Served::more`]), time passing to `now_ms` first (if it moved).
    /// Notifications go out as event messages followed by one ring of
    /// `bell` per step.
    pub fn serve<M: GuestMemory, B: Doorbell>(
        &mut self,
        mem: &M,
        bell: &mut B,
        now_ms: u64,
    ) -> Served {
        let mut out = Served::default();
        let Some(bus) = self.bus.as_mut() else {
            return out;
        };
        let mut state = bus.poll(mem, &mut *bell);
        if state == BusState::PeerLost {
            self.core.reset();
            out.reset = true;
            state = bus.poll(mem, &mut *bell);
        }
        out.up = state == BusState::Up;
        let rev = self.rev;
        let mut now = (self.last_ms != Some(now_ms)).then_some(now_ms);
        self.last_ms = Some(now_ms);
        loop {
            let port = bus.bind(mem);
            let notifier = port.notifier(DEV_NUM, &mut *bell);
            let mut bound = Bound::new(&mut self.core, mem, notifier).on_bus(rev, DEV_NUM);
            let mut mailbox = port.mailbox();
            let r = service::step(
                &mut [&mut bound],
                Wake {
                    now_ms: now.take(),
                    mailbox: out.up.then_some(&mut mailbox as &mut dyn Mailbox),
                    kicks: &[],
                },
            );
            out.add(r);
            if !r.more {
                return out;
            }
            if out.steps >= MAX_STEPS_PER_SERVE {
                out.more = true;
                return out;
            }
        }
    }
}

/// What the loop needs of the processor it runs on: interrupts, sleep and
/// time. Board crates implement it over their GIC and timer; the loop
/// itself ([`serve_forever`]) is the same on every board.
pub trait Processor {
    /// Masks interrupts (they are never unmasked: the loop polls).
    fn mask_interrupts(&mut self);
    /// Sleeps until an interrupt is pending (`WFI`; a masked interrupt
    /// that is already pending ends it at once).
    fn wait_for_interrupt(&mut self);
    /// Re-arms the periodic tick if it fired, then acknowledges and ends
    /// the pending interrupts, at most [`MAX_INTERRUPTS_PER_WAKE`] (a
    /// level-sensitive tick must be re-armed before it is ended, or it
    /// stays pending; a driver ringing in a tight loop must not keep the
    /// device acknowledging doorbells instead of serving them).
    fn take_interrupts(&mut self);
    /// Whether the periodic tick is due (time must pass on the platform).
    fn tick_due(&self) -> bool;
    /// Milliseconds since boot.
    fn now_ms(&self) -> u64;
    /// A free-running cycle or tick counter, for the figures.
    fn counter(&self) -> u64;
}

/// Most interrupts [`Processor::take_interrupts`] takes per wake-up: the
/// doorbells it leaves pending only end the next sleep at once.
pub const MAX_INTERRUPTS_PER_WAKE: usize = 16;

/// What [`serve_forever`] measured: atomics, so another core (a test
/// front-end) may read them while the loop runs.
#[derive(Debug, Default)]
pub struct Figures {
    /// Counter ticks spent serving wake-ups that found messages.
    pub serve_ticks: AtomicU64,
    /// Wake-ups that found messages.
    pub busy_serves: AtomicU64,
    /// Messages served.
    pub messages: AtomicU64,
    /// Wake-ups.
    pub wakeups: AtomicU64,
    /// Messages dropped (malformed, unknown, for no device).
    pub dropped: AtomicU64,
    /// Queue kicks served.
    pub kicks: AtomicU64,
}

impl Figures {
    /// Zero.
    pub const fn new() -> Self {
        Figures {
            serve_ticks: AtomicU64::new(0),
            busy_serves: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            wakeups: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            kicks: AtomicU64::new(0),
        }
    }
}

/// The firmware loop: with interrupts masked, check for work (a message
/// in the channel, the tick due); none: sleep (`WFI`: a doorbell that came
/// after the check is pending and ends the sleep at once); take the
/// interrupts; serve a bounded share ([`ShmemDevice::serve`]), which rings the
/// driver's doorbell through `bell`. Never returns.
pub fn serve_forever<D, M, B, P, const NQ: usize, const H: usize>(
    dev: &mut ShmemDevice<D, NQ, H>,
    mem: &M,
    bell: &mut B,
    cpu: &mut P,
    figures: &Figures,
) -> !
where
    D: VirtioDevice,
    M: GuestMemory,
    B: Doorbell,
    P: Processor,
{
    cpu.mask_interrupts();
    loop {
        if !dev.pending(mem) && !cpu.tick_due() {
            cpu.wait_for_interrupt();
        }
        cpu.take_interrupts();
        figures.wakeups.fetch_add(1, Ordering::Relaxed);
        let start = cpu.counter();
        let served = dev.serve(mem, bell, cpu.now_ms());
        figures
            .dropped
            .fetch_add(served.dropped as u64, Ordering::Relaxed);
        figures
            .kicks
            .fetch_add(served.kicks as u64, Ordering::Relaxed);
        if served.messages > 0 {
            let spent = cpu.counter().wrapping_sub(start);
            figures.serve_ticks.fetch_add(spent, Ordering::Relaxed);
            figures.busy_serves.fetch_add(1, Ordering::Relaxed);
            figures
                .messages
                .fetch_add(served.messages as u64, Ordering::Relaxed);
        }
    }
}
