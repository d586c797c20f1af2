//! The device side of both transports and the doorbells that connect the
//! two sides.
//!
//! A [`Loopback`] owns one device and the device's view of the arena:
//!
//! * [`Kind::Msg`]: virtio-msg over the library's shared-memory channel
//!   (`virtio_backend::amp`, the AMP layout Linux's virtio-msg AMP bus
//!   drives) in the transport page. The device publishes the layout and
//!   serves the bus ([`AmpBus`]); the driver side ([`crate::msg_transport`])
//!   attaches to it once per link ([`Loopback::driver`]) and talks v2 (or
//!   RFC3) messages over it.
//! * [`Kind::Mmio`]: the virtio-mmio register file, with register accesses
//!   trapped through the transport page's syndrome word.
//!
//! Every time the device runs it runs the library's service step
//! ([`virtio_backend::service::step`]): the driver's messages come from the
//! channel, kicks from `QueueNotify` or posted bits, notifications go out
//! as EVENT_USED / EVENT_CONFIG messages (msg) or `InterruptStatus` bits
//! (mmio), then the driver's doorbell rings (a counter it can wait on).
//!
//! The device runs either inline (the doorbell calls it on the driver's
//! thread) or on its own thread ([`Loopback::serve`], [`Loopback::spawn`]),
//! woken by doorbells; the driver then waits for answers in the channel.
//! Counters of what the device saw are kept in [`Stats`].

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use virtio_backend::amp::{AmpBus, BusState, Channel, Geometry};
use virtio_backend::bus::GetDevicesOrder;
use virtio_backend::mmio::{MmioTransport, reg};
use virtio_backend::msg::{self, DecodeError, Revision};
use virtio_backend::service::{
    self, Bound, Doorbell, Endpoint, Kick, Mailbox, Notification, Notifier, Wake,
};
use virtio_backend::{ControlError, DeviceCore, GuestMemory, Interrupts, VirtioDevice};

use crate::arena::{Arena, ArenaMem, DeviceMemory, PAGE, TRANSPORT_PAGE};

/// Which transport the device is served over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// virtio-msg over the shared-memory channel in the transport page.
    Msg,
    /// virtio-mmio version 2 registers in the transport page, with trapped
    /// accesses.
    Mmio,
}

/// Where the device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// On the driver's thread, called from the doorbell.
    Inline,
    /// On a thread running [`Loopback::serve`]; it polls the queues
    /// between doorbells.
    Threaded,
}

/// The device number of the one device on the loopback bus.
pub const DEV_NUM: u16 = 0;

/// The channel's shape: 16 elements of 64 bytes each way (what the Linux
/// AMP bus reads), 2304 bytes of the transport page.
pub const GEOMETRY: Geometry = Geometry {
    elements: 16,
    element_size: 64,
};

/// Transport-page layout for virtio-mmio, as offsets inside the page.
pub mod page {
    /// virtio-mmio: the trap syndrome (`u32` register offset, `u8` width,
    /// `u8` 1 for a write), like the fault information a hypervisor gets.
    pub const SYNDROME: usize = 0xf00;
    /// virtio-mmio: registers and configuration space end here.
    pub const MMIO_END: usize = SYNDROME;
}

/// What the device side observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Doorbells served.
    pub doorbells: u64,
    /// Queue kicks served (EVENT_AVAIL, QueueNotify, posted) per queue.
    pub kicks: Vec<u64>,
    /// Used-buffer notifications delivered, per queue.
    pub used_irqs: Vec<u64>,
    /// Configuration-change notifications delivered.
    pub config_irqs: u64,
    /// Times the driver's doorbell was rung (once per delivery).
    pub delivered: u64,
    /// virtio-msg events the channel had no room for when they arose (sent
    /// later, never lost).
    pub coalesced: u64,
    /// Control-plane refusals: (message id or register offset, error).
    pub refused: Vec<(u32, ControlError)>,
    /// virtio-msg messages the device dropped.
    pub dropped: Vec<DecodeError>,
    /// Bus messages the AMP bus answered (GET_DEVICES, PING).
    pub bus_messages: u64,
}

enum Front<D: VirtioDevice, const NQ: usize> {
    Msg {
        core: DeviceCore<D, NQ>,
        bus: AmpBus,
    },
    Mmio(MmioTransport<D, NQ>),
}

/// The device: its core behind one transport, and what it observed.
pub struct DeviceSide<D: VirtioDevice, const NQ: usize> {
    front: Front<D, NQ>,
    /// What the device observed (a cell: the step's wrappers share it).
    stats: RefCell<Stats>,
    /// Whether [`Loopback::serve`] polls the queues between doorbells.
    pub polling: bool,
    /// Arena offset of this device's transport page.
    page_offset: usize,
    rev: Revision,
}

/// The driver's doorbell: a counter the driver may wait on.
struct DriverBell<'a> {
    rung: &'a AtomicU64,
    stats: &'a RefCell<Stats>,
}

impl Doorbell for DriverBell<'_> {
    fn barrier(&mut self) {
        // The other side reads the channel with acquire loads; a release
        // fence orders every write before the ring below.
        fence(Ordering::Release);
    }
    fn ring(&mut self) {
        self.rung.fetch_add(1, Ordering::Release);
        self.stats.borrow_mut().delivered += 1;
    }
}

/// A notifier that counts what passes on its way to the real one.
struct Counting<'s, N> {
    inner: N,
    stats: &'s RefCell<Stats>,
}

impl<N: Notifier> Notifier for Counting<'_, N> {
    fn notify(&mut self, n: Notification) {
        let mut s = self.stats.borrow_mut();
        match n {
            Notification::Used(q) => {
                if let Some(c) = s.used_irqs.get_mut(usize::from(q)) {
                    *c += 1;
                }
            }
            Notification::Config { .. } => s.config_irqs += 1,
        }
        drop(s);
        self.inner.notify(n);
    }
    fn barrier(&mut self) {
        self.inner.barrier();
    }
    fn ring(&mut self) {
        self.inner.ring();
    }
}

/// virtio-mmio's notifier: notifications become `InterruptStatus` bits,
/// raised once the step is over.
struct Collect<'a> {
    ints: &'a mut Interrupts,
}

impl Notifier for Collect<'_> {
    fn notify(&mut self, n: Notification) {
        match n {
            Notification::Used(q) if q < 64 => self.ints.used |= 1 << q,
            Notification::Used(_) => {}
            Notification::Config { .. } => self.ints.config = true,
        }
    }
    fn barrier(&mut self) {}
    fn ring(&mut self) {}
}

/// An endpoint that records what the control plane refused and dropped,
/// and the kicks it saw, on their way to the real one.
struct Observed<'s, E> {
    inner: E,
    stats: &'s RefCell<Stats>,
    /// Whether kicks are the driver's (counted) or polling's (not).
    count_kicks: bool,
}

impl<E: Endpoint> Endpoint for Observed<'_, E> {
    fn advance(&mut self, now_ms: u64) {
        self.inner.advance(now_ms);
    }
    fn message(&mut self, request: &[u8], response: &mut [u8]) -> msg::Handled {
        let h = self.inner.message(request, response);
        let id = request.get(1).copied().unwrap_or(0);
        let mut s = self.stats.borrow_mut();
        if let Some(e) = h.refused {
            s.refused.push((u32::from(id), e));
        }
        if let Some(e) = h.dropped {
            s.dropped.push(e);
        }
        if id == msg::id::EVENT_AVAIL && h.dropped.is_none() {
            let q = request
                .get(8..12)
                .map_or(u32::MAX, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            if let Some(k) = s.kicks.get_mut(q as usize) {
                *k += 1;
            }
        }
        h
    }
    fn kick(&mut self, queue: u16) {
        if self.count_kicks
            && let Some(k) = self.stats.borrow_mut().kicks.get_mut(usize::from(queue))
        {
            *k += 1;
        }
        self.inner.kick(queue);
    }
    fn poll(&mut self) {
        self.inner.poll();
    }
    fn deliver(&mut self) -> usize {
        self.inner.deliver()
    }
}

impl<D: VirtioDevice, const NQ: usize> DeviceSide<D, NQ> {
    /// The state machine.
    pub fn core(&self) -> &DeviceCore<D, NQ> {
        match &self.front {
            Front::Msg { core, .. } => core,
            Front::Mmio(t) => t.core(),
        }
    }

    /// The state machine, mutably.
    pub fn core_mut(&mut self) -> &mut DeviceCore<D, NQ> {
        match &mut self.front {
            Front::Msg { core, .. } => core,
            Front::Mmio(t) => t.core_mut(),
        }
    }

    /// The device type.
    pub fn device(&self) -> &D {
        self.core().device()
    }

    /// The device type, mutably.
    pub fn device_mut(&mut self) -> &mut D {
        self.core_mut().device_mut()
    }

    /// What the device observed.
    pub fn stats(&self) -> Stats {
        self.stats.borrow().clone()
    }

    /// One service step: the channel's messages (msg), `kicks`, polling,
    /// then delivery; `raise` are notifications that arose outside the
    /// step (a configuration change); with `now_ms` time passes first.
    /// Repeats while the channel holds more than one step takes. `kicks`
    /// are the driver's (counted) or polling's (not).
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        mem: &DeviceMemory,
        rung: &AtomicU64,
        kicks: &[Kick],
        raise: Interrupts,
        now_ms: Option<u64>,
        count_kicks: bool,
    ) {
        let stats = &self.stats;
        match &mut self.front {
            Front::Msg { core, bus } => {
                let bell = || DriverBell { rung, stats };
                if bus.poll(&**mem, bell()) == BusState::PeerLost {
                    // The driver went away: nothing it set up survives.
                    core.reset();
                    bus.poll(&**mem, bell());
                }
                let rev = self.rev;
                let (mut kicks, mut raise, mut now_ms) = (kicks, raise, now_ms);
                loop {
                    let port = bus.bind(&**mem);
                    let notifier = Counting {
                        inner: port.notifier(DEV_NUM, bell()),
                        stats,
                    };
                    let mut bound = Bound::new(core, &**mem, notifier).on_bus(rev, DEV_NUM);
                    bound.raise(raise);
                    let mut ep = Observed {
                        inner: bound,
                        stats,
                        count_kicks,
                    };
                    let mut mailbox = port.mailbox();
                    let r = service::step(
                        &mut [&mut ep],
                        Wake {
                            mailbox: Some(&mut mailbox as &mut dyn Mailbox),
                            kicks,
                            now_ms,
                        },
                    );
                    (kicks, raise, now_ms) = (&[], Interrupts::default(), None);
                    if !r.more {
                        break;
                    }
                }
                let b = bus.stats();
                let mut s = stats.borrow_mut();
                s.coalesced = b.events_delayed;
                s.bus_messages = b.bus_messages;
            }
            Front::Mmio(t) => {
                let mut ints = Interrupts::default();
                let notifier = Counting {
                    inner: Collect { ints: &mut ints },
                    stats,
                };
                let mut bound = Bound::new(t.core_mut(), &**mem, notifier);
                bound.raise(raise);
                let mut ep = Observed {
                    inner: bound,
                    stats,
                    count_kicks,
                };
                service::step(
                    &mut [&mut ep],
                    Wake {
                        kicks,
                        now_ms,
                        ..Wake::default()
                    },
                );
                if !ints.is_empty() {
                    t.raise(ints);
                    DriverBell { rung, stats }.ring();
                }
            }
        }
    }

    /// Serves one doorbell: messages in the channel (msg), or the trapped
    /// register access in the transport page (mmio).
    fn doorbell(&mut self, mem: &DeviceMemory, rung: &AtomicU64) {
        self.stats.borrow_mut().doorbells += 1;
        if let Front::Mmio(_) = self.front {
            self.trap(mem, rung);
        } else {
            self.step(mem, rung, &[], Interrupts::default(), None, true);
        }
    }

    /// A trapped virtio-mmio register access.
    fn trap(&mut self, mem: &DeviceMemory, rung: &AtomicU64) {
        let base = mem.guest_base() + self.page_offset as u64;
        let Front::Mmio(t) = &mut self.front else {
            return;
        };
        let mut syn = [0u8; 8];
        mem.read(base + page::SYNDROME as u64, &mut syn)
            .expect("syndrome inside the arena");
        let offset = u32::from_le_bytes([syn[0], syn[1], syn[2], syn[3]]);
        let width = syn[4];
        let write = syn[5] != 0;
        let n = usize::from(width);
        assert!(
            matches!(n, 1 | 2 | 4) && offset as usize + n <= page::MMIO_END,
            "bad trapped access: offset {offset:#x} width {width}"
        );
        let at = base + u64::from(offset);
        if !write {
            let value = t.read(offset, width);
            mem.write(at, &value.to_le_bytes()[..n])
                .expect("register inside the arena");
            return;
        }
        let mut v = [0u8; 4];
        mem.read(at, &mut v[..n])
            .expect("register inside the arena");
        let value = u32::from_le_bytes(v);
        if offset == reg::QUEUE_NOTIFY && width == 4 {
            // The notify register is a kick, as a hypervisor's ioeventfd
            // makes it: served by a service step like every other kick.
            let kick = [Kick {
                device: 0,
                queue: (value & 0xffff) as u16,
            }];
            self.step(mem, rung, &kick, Interrupts::default(), None, true);
            return;
        }
        let out = t.write(&**mem, offset, width, value);
        let mut s = self.stats.borrow_mut();
        if let Some(e) = out.refused {
            s.refused.push((offset, e));
        }
        // `write` folded the notifications into InterruptStatus already.
        for q in out.interrupts.queues() {
            if let Some(c) = s.used_irqs.get_mut(usize::from(q)) {
                *c += 1;
            }
        }
        s.config_irqs += u64::from(out.interrupts.config);
        drop(s);
        if !out.interrupts.is_empty() {
            DriverBell {
                rung,
                stats: &self.stats,
            }
            .ring();
        }
    }
}

/// A split ring's index and suppression words as the device sees them in
/// the arena (virtio v1.2 §2.7.6, §2.7.8, §2.7.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingView {
    /// Queue size.
    pub size: u16,
    /// `avail.flags` (bit 0: the driver wants no used-buffer notifications).
    pub avail_flags: u16,
    /// `avail.idx`.
    pub avail_idx: u16,
    /// `used_event` (written by the driver with `VIRTIO_F_EVENT_IDX`).
    pub used_event: u16,
    /// `used.flags` (bit 0: the device wants no kicks).
    pub used_flags: u16,
    /// `used.idx`.
    pub used_idx: u16,
    /// `avail_event` (written by the device with `VIRTIO_F_EVENT_IDX`).
    pub avail_event: u16,
}

/// The driver's end of the shared-memory channel (one per link, however
/// many driver-side transport handles use it).
pub struct DriverEnd {
    /// The channel, driver half.
    pub channel: Channel,
    /// The driver's view of the arena.
    pub mem: DeviceMemory,
    /// The last token used.
    pub token: u16,
    /// Events received and not yet collected by `ack_interrupt`:
    /// (used-buffer, configuration).
    pub events: (bool, bool),
    /// Event messages received.
    pub event_count: u64,
}

/// One device served over one transport, shared by the driver-side
/// transport handles and the test.
pub struct Loopback<D: VirtioDevice, const NQ: usize> {
    kind: Kind,
    mode: Mode,
    side: Mutex<DeviceSide<D, NQ>>,
    mem: DeviceMemory,
    arena: Arc<ArenaMem>,
    /// Doorbells rung by the driver / served by the device (threaded).
    rung: AtomicU64,
    done: AtomicU64,
    /// Rings of the driver's doorbell (the device notified it).
    irq: AtomicU64,
    /// The device's clock in milliseconds, handed to it at each
    /// [`Loopback::poll`].
    clock: AtomicU64,
    /// Posted kicks (threaded mmio): bit `n` for queue `n`.
    posted: AtomicU64,
    /// Kicks the driver posted per queue (before coalescing).
    posted_count: Vec<AtomicU64>,
    stop: AtomicBool,
    driver: Mutex<Option<DriverEnd>>,
    /// The thread running [`Loopback::serve`], woken by doorbells and
    /// posted kicks when it parks for lack of work.
    device_thread: OnceLock<std::thread::Thread>,
}

/// How long a driver waits for a threaded device before the test fails.
pub const DEVICE_TIMEOUT: Duration = Duration::from_secs(20);

/// Idle rounds a device thread spins (yielding) before it starts parking
/// between rounds.
const SPIN_ROUNDS: u32 = 2000;
/// Longest park of an idle device thread.
const PARK_TIMEOUT: Duration = Duration::from_micros(200);

impl<D: VirtioDevice, const NQ: usize> Loopback<D, NQ> {
    /// Serves `device` over `kind` from `arena`, with the arena's transport
    /// page, on a v2 bus.
    pub fn new(arena: &Arena, kind: Kind, mode: Mode, device: D) -> Arc<Self> {
        Self::with_page(arena, TRANSPORT_PAGE, kind, mode, device)
    }

    /// As [`Loopback::new`], with the transport page at arena offset
    /// `page_offset` (a page from [`Arena::alloc_transport_page`], so that
    /// several devices share one arena).
    pub fn with_page(
        arena: &Arena,
        page_offset: usize,
        kind: Kind,
        mode: Mode,
        device: D,
    ) -> Arc<Self> {
        Self::with_revision(arena, page_offset, kind, mode, device, Revision::V2)
    }

    /// As [`Loopback::with_page`], on a virtio-msg bus speaking `rev` (the
    /// Linux AMP bus speaks RFC3; the tests' front-end speaks either).
    pub fn with_revision(
        arena: &Arena,
        page_offset: usize,
        kind: Kind,
        mode: Mode,
        device: D,
        rev: Revision,
    ) -> Arc<Self> {
        assert!(
            page_offset.is_multiple_of(PAGE) && page_offset + PAGE <= arena.mem().len(),
            "transport page {page_offset:#x} is not a page of the arena"
        );
        let mem = arena.mem().device_memory();
        let front = match kind {
            Kind::Msg => {
                let base = mem.guest_base() + page_offset as u64;
                let channel = Channel::publish(&*mem, base, PAGE as u64, GEOMETRY)
                    .expect("the channel fits the transport page");
                let order = match rev {
                    Revision::Rfc3 => GetDevicesOrder::Rfc3,
                    Revision::V2 => GetDevicesOrder::V2,
                };
                Front::Msg {
                    core: DeviceCore::new(device),
                    bus: AmpBus::new(channel, rev, order),
                }
            }
            Kind::Mmio => Front::Mmio(MmioTransport::new(device)),
        };
        Arc::new(Loopback {
            kind,
            mode,
            side: Mutex::new(DeviceSide {
                front,
                stats: RefCell::new(Stats {
                    kicks: vec![0; NQ],
                    used_irqs: vec![0; NQ],
                    ..Stats::default()
                }),
                polling: mode == Mode::Threaded,
                page_offset,
                rev,
            }),
            mem,
            arena: Arc::clone(arena.mem()),
            rung: AtomicU64::new(0),
            done: AtomicU64::new(0),
            irq: AtomicU64::new(0),
            clock: AtomicU64::new(0),
            posted: AtomicU64::new(0),
            posted_count: (0..NQ).map(|_| AtomicU64::new(0)).collect(),
            stop: AtomicBool::new(false),
            driver: Mutex::new(None),
            device_thread: OnceLock::new(),
        })
    }

    /// The transport.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Where the device runs.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The revision the virtio-msg bus speaks.
    pub fn revision(&self) -> Revision {
        self.side().rev
    }

    /// Arena offset of this link's transport page.
    pub fn page_offset(&self) -> usize {
        self.side().page_offset
    }

    /// The arena (driver-side view).
    pub fn arena(&self) -> &Arc<ArenaMem> {
        &self.arena
    }

    /// The device's view of the arena.
    pub fn device_memory(&self) -> &DeviceMemory {
        &self.mem
    }

    /// The device side, locked. Do not hold it across driver calls.
    pub fn side(&self) -> MutexGuard<'_, DeviceSide<D, NQ>> {
        self.side.lock().expect("device side poisoned")
    }

    /// What the device observed so far.
    pub fn stats(&self) -> Stats {
        self.side().stats()
    }

    /// Runs `f` on the device type (to read its counters, say).
    pub fn with_device<R>(&self, f: impl FnOnce(&D) -> R) -> R {
        f(self.side().device())
    }

    /// Features the driver accepted (negotiated once `FEATURES_OK` is set).
    pub fn driver_features(&self) -> u64 {
        self.side().core().driver_features()
    }

    /// Device status byte.
    pub fn status(&self) -> u8 {
        self.side().core().status()
    }

    /// Sets the clock the device gets at the next [`Loopback::poll`].
    pub fn set_clock(&self, ms: u64) {
        self.clock.store(ms, Ordering::Relaxed);
    }

    /// Times the device rang the driver's doorbell.
    pub fn interrupts(&self) -> u64 {
        self.irq.load(Ordering::Acquire)
    }

    /// Queue `index`'s ring words as the device sees them; `None` while the
    /// queue is not enabled (or is packed).
    pub fn ring_view(&self, index: u16) -> Option<RingView> {
        let side = self.side();
        let q = side.core().queues().get(usize::from(index))?;
        if !q.ready() || q.is_packed() {
            return None;
        }
        let (_, avail, used) = q.addresses();
        let n = u64::from(q.size());
        let m = &self.mem;
        let w = |at: u64| m.load_u16_acquire(at).expect("ring inside the arena");
        Some(RingView {
            size: q.size(),
            avail_flags: w(avail),
            avail_idx: w(avail + 2),
            used_event: w(avail + 4 + 2 * n),
            used_flags: w(used),
            used_idx: w(used + 2),
            avail_event: w(used + 4 + 8 * n),
        })
    }

    /// A tick of the harness: time passes on the device (to the link's
    /// clock, [`Loopback::set_clock`], which stays put unless a test moves
    /// it), the device does its device-initiated work (deferred requests
    /// complete, events go out) and the notifications are delivered; in
    /// polling mode every queue is processed as if kicked. Returns whether
    /// anything was delivered.
    pub fn poll(&self) -> bool {
        let mut side = self.side();
        let before = side.stats.borrow().delivered;
        let mut kicks = [Kick::default(); NQ];
        let all = if side.polling { u64::MAX } else { 0 };
        let now = self.clock.load(Ordering::Relaxed);
        side.step(
            &self.mem,
            &self.irq,
            Kick::from_mask(0, all, &mut kicks),
            Interrupts::default(),
            Some(now),
            false,
        );
        let after = side.stats.borrow().delivered;
        after != before
    }

    /// The device changes its configuration: runs `change` on the device,
    /// then bumps the generation and notifies the driver.
    pub fn change_config(&self, change: impl FnOnce(&mut D)) {
        let mut side = self.side();
        change(side.device_mut());
        let i = side.core_mut().config_changed();
        side.step(&self.mem, &self.irq, &[], i, None, true);
    }

    /// The driver end of the channel (attached, linked, devices listed on
    /// first use; [`Kind::Msg`] only).
    pub fn driver(&self) -> MutexGuard<'_, Option<DriverEnd>> {
        assert_eq!(self.kind, Kind::Msg, "only virtio-msg has a channel");
        let mut d = self.driver.lock().expect("driver end poisoned");
        if d.is_none() {
            *d = Some(self.attach_driver());
        }
        d
    }

    /// Attaches the driver half and brings the link up, as the Linux AMP
    /// bus does: validate the layout, the queue head handshake, then
    /// GET_DEVICES {0, 32}.
    fn attach_driver(&self) -> DriverEnd {
        let mem = self.arena.device_memory();
        let base = mem.guest_base() + self.page_offset() as u64;
        let mut channel =
            Channel::attach(&*mem, base, PAGE as u64).expect("the device published the layout");
        let start = Instant::now();
        while channel.link() != virtio_backend::amp::Link::Run {
            channel.poll_link(&*mem).expect("handshake");
            self.ring();
            assert!(start.elapsed() < DEVICE_TIMEOUT, "the link never came up");
        }
        let mut end = DriverEnd {
            channel,
            mem,
            token: 0,
            events: (false, false),
            event_count: 0,
        };
        crate::msg_transport::list_devices(self, &mut end);
        end
    }

    /// The driver rings the doorbell: the transport page holds a trapped
    /// access, or the channel holds messages. Returns once the device has
    /// served it.
    pub fn ring(&self) {
        match self.mode {
            Mode::Inline => {
                let mut side = self.side();
                side.doorbell(&self.mem, &self.irq);
            }
            Mode::Threaded => {
                let n = self.rung.fetch_add(1, Ordering::Release) + 1;
                self.wake();
                let start = Instant::now();
                while self.done.load(Ordering::Acquire) < n {
                    assert!(
                        start.elapsed() < DEVICE_TIMEOUT,
                        "device thread did not answer doorbell {n}"
                    );
                    std::hint::spin_loop();
                    std::thread::yield_now();
                }
            }
        }
    }

    /// The driver rings the doorbell without waiting for the device
    /// (threaded): the device serves it when it gets to it. Inline, the
    /// same as [`Loopback::ring`].
    pub fn post(&self) {
        match self.mode {
            Mode::Inline => self.ring(),
            Mode::Threaded => {
                self.rung.fetch_add(1, Ordering::Release);
                self.wake();
            }
        }
    }

    /// The driver kicks queue `queue` without waiting for the device
    /// ([`Mode::Threaded`], virtio-mmio): like a write to an ioeventfd, the
    /// kick is posted and the device thread serves it while the driver
    /// goes on adding buffers. (virtio-msg posts EVENT_AVAIL messages in
    /// the channel instead.)
    pub fn post_kick(&self, queue: u16) {
        assert_eq!(
            self.mode,
            Mode::Threaded,
            "posted kicks need a device thread"
        );
        assert!(queue < 64);
        self.posted.fetch_or(1 << queue, Ordering::Release);
        self.count_posted(queue);
        self.wake();
    }

    /// Counts a kick the driver posted (by message or bit).
    pub fn count_posted(&self, queue: u16) {
        if let Some(c) = self.posted_count.get(usize::from(queue)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Wakes the device thread if it parked.
    fn wake(&self) {
        if let Some(t) = self.device_thread.get() {
            t.unpark();
        }
    }

    /// Kicks the driver posted for queue `queue` ([`Mode::Threaded`]).
    /// Kicks posted before the device thread looked may be served once,
    /// so [`Stats::kicks`] may count fewer.
    pub fn posted_kicks(&self, queue: u16) -> u64 {
        self.posted_count
            .get(usize::from(queue))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Whether a device thread is serving doorbells asynchronously.
    pub fn threaded(&self) -> bool {
        self.mode == Mode::Threaded
    }

    /// Whether the device thread processes queues between kicks.
    pub fn set_polling(&self, polling: bool) {
        self.side().polling = polling;
    }

    /// The device thread's loop (for [`Mode::Threaded`]): serves doorbells
    /// and posted kicks, polls the device (and, when polling, the queues) in
    /// between, returns after [`Loopback::stop`].
    ///
    /// A panic on the device thread aborts the process: the driver may be
    /// spinning on a used ring inside `virtio-drivers` where no timeout can
    /// reach it, and a hung test is worse than a failed one.
    pub fn serve(&self) {
        assert_eq!(self.mode, Mode::Threaded, "serve() needs Mode::Threaded");
        let _abort = AbortOnPanic;
        assert!(
            self.device_thread.set(std::thread::current()).is_ok(),
            "serve() runs on one thread only"
        );
        let mut idle = 0u32;
        loop {
            let rung = self.rung.load(Ordering::Acquire);
            if rung != self.done.load(Ordering::Relaxed) {
                self.side().doorbell(&self.mem, &self.irq);
                self.done.store(rung, Ordering::Release);
                idle = 0;
                continue;
            }
            let kicked = self.posted.swap(0, Ordering::Acquire);
            if kicked != 0 {
                let mut kicks = [Kick::default(); NQ];
                self.side().step(
                    &self.mem,
                    &self.irq,
                    Kick::from_mask(0, kicked, &mut kicks),
                    Interrupts::default(),
                    None,
                    true,
                );
                idle = 0;
                continue;
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            if self.poll() {
                idle = 0;
            } else {
                idle = idle.saturating_add(1);
            }
            if idle < SPIN_ROUNDS {
                std::thread::yield_now();
            } else {
                // Doorbells and kicks unpark us; the timeout keeps polling
                // (and deferred completions) going.
                std::thread::park_timeout(PARK_TIMEOUT);
            }
        }
    }

    /// Tells [`Loopback::serve`] to return.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake();
    }
}

impl<D: VirtioDevice + Send + 'static, const NQ: usize> Loopback<D, NQ> {
    /// Runs [`Loopback::serve`] on a new thread (for [`Mode::Threaded`]).
    /// The thread stops when the returned handle is dropped.
    pub fn spawn(self: &Arc<Self>) -> DeviceThread {
        assert_eq!(self.mode, Mode::Threaded, "spawn() needs Mode::Threaded");
        let link = Arc::clone(self);
        let handle = std::thread::Builder::new()
            .name("virtio-device".into())
            .spawn(move || link.serve())
            .expect("spawn the device thread");
        let link = Arc::clone(self);
        DeviceThread {
            stop: Box::new(move || link.stop()),
            handle: Some(handle),
        }
    }
}

/// A device thread started by [`Loopback::spawn`]; dropping it stops and
/// joins the thread.
pub struct DeviceThread {
    stop: Box<dyn Fn() + Send>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl DeviceThread {
    /// Stops the device thread and waits for it.
    pub fn join(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        (self.stop)();
        if let Some(h) = self.handle.take() {
            // The thread aborts the process rather than panic, so a join
            // error cannot happen; ignore it rather than double-panic.
            let _ = h.join();
        }
    }
}

impl Drop for DeviceThread {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl core::fmt::Debug for DeviceThread {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceThread")
            .field("running", &self.handle.is_some())
            .finish()
    }
}

/// Aborts the process if dropped while the thread is panicking.
struct AbortOnPanic;

impl Drop for AbortOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the device thread panicked; aborting so the driver cannot hang");
            std::process::abort();
        }
    }
}
