//! The device side of both transports and the doorbell that connects the
//! driver to it.
//!
//! A [`Loopback`] owns one device (a [`DeviceCore`] behind the virtio-msg
//! handler, or a [`MmioTransport`] register file) and the device's view of
//! the arena. The driver-side transports ([`crate::msg_transport`],
//! [`crate::mmio_transport`]) put a message or a trapped register access in
//! the arena's transport page and call [`Loopback::ring`]; the device takes
//! everything it needs from the arena through [`GuestMemory`].
//!
//! The device runs either inline (the doorbell calls it on the driver's
//! thread) or on its own thread ([`Loopback::serve`], [`Loopback::spawn`]):
//! the doorbell is then an atomic counter the device thread watches, with
//! release/acquire ordering publishing the transport page in both
//! directions. Queue kicks are posted there ([`Loopback::post_kick`], like
//! an ioeventfd: the driver does not wait, and kicks posted before the
//! device looked are served once), so the driver adds buffers while the
//! device drains the ring. The device thread can also poll the queues
//! between kicks ([`Loopback::set_polling`]).
//!
//! Notifications to the driver are EVENT_USED / EVENT_CONFIG frames in an
//! event ring in the transport page (virtio-msg) or the `InterruptStatus`
//! word (virtio-mmio). The event ring never overwrites a frame the driver
//! has not consumed: when it is full, events are coalesced into sticky
//! per-kind flags the driver collects with the ring.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use virtio_backend::mmio::{MmioTransport, reg};
use virtio_backend::msg::{self, DecodeError};
use virtio_backend::{ControlError, DeviceCore, GuestMemory, Interrupts, VirtioDevice};

use crate::arena::{Arena, ArenaMem, DeviceMemory, TRANSPORT_PAGE};

/// Which transport the device is served over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// virtio-msg revision 1 through mailboxes in the transport page.
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

/// virtio-msg bus frame size (>= `msg::MIN_FRAME`).
pub const FRAME: usize = 64;
/// Device number of the one device on the loopback bus.
pub const DEV_NUM: u16 = 3;

/// Transport-page layout, as offsets inside the page.
pub mod page {
    /// virtio-msg: request mailbox (one frame).
    pub const REQUEST: usize = 0x000;
    /// virtio-msg: response mailbox (one frame).
    pub const RESPONSE: usize = 0x040;
    /// virtio-msg: event ring producer index (`u16`, release-stored by the
    /// device after it wrote the slot).
    pub const EVENT_PRODUCER: usize = 0x080;
    /// virtio-msg: event ring consumer index (`u16`, release-stored by the
    /// driver after it read the slots). The device never overwrites a slot
    /// the driver has not consumed.
    pub const EVENT_CONSUMER: usize = 0x082;
    /// virtio-msg: set to 1 by the device when an EVENT_USED found the ring
    /// full (`u16`); the driver clears it. Coalesced, never lost.
    pub const OVERFLOW_USED: usize = 0x084;
    /// virtio-msg: as [`OVERFLOW_USED`], for EVENT_CONFIG.
    pub const OVERFLOW_CONFIG: usize = 0x086;
    /// virtio-msg: event ring, [`EVENT_SLOTS`] slots of [`EVENT_SLOT`] bytes.
    pub const EVENT_RING: usize = 0x100;
    /// Slots in the event ring.
    pub const EVENT_SLOTS: usize = 32;
    /// Bytes per event slot.
    pub const EVENT_SLOT: usize = 32;
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
    /// Queue kicks served (EVENT_AVAIL / QueueNotify, by doorbell or
    /// posted) per queue.
    pub kicks: Vec<u64>,
    /// Used-buffer notifications the core asked for, per queue: one per
    /// core call (kick, poll) whose answer had the queue's bit set.
    pub used_irqs: Vec<u64>,
    /// Configuration-change notifications the core asked for.
    pub config_irqs: u64,
    /// Notifications delivered: virtio-msg event frames written to the event
    /// ring, or virtio-mmio `InterruptStatus` updates (one per core answer
    /// or merged answer that needed any).
    pub delivered: u64,
    /// virtio-msg events coalesced into an overflow flag because the driver
    /// had not consumed the event ring.
    pub coalesced: u64,
    /// Control-plane refusals: (message id or register offset, error).
    pub refused: Vec<(u32, ControlError)>,
    /// virtio-msg messages the handler dropped.
    pub dropped: Vec<DecodeError>,
}

enum Front<D: VirtioDevice, const NQ: usize> {
    Msg(DeviceCore<D, NQ>),
    Mmio(MmioTransport<D, NQ>),
}

/// The device: its core behind one transport, and what it observed.
pub struct DeviceSide<D: VirtioDevice, const NQ: usize> {
    front: Front<D, NQ>,
    /// What the device observed.
    pub stats: Stats,
    /// virtio-msg event ring producer index.
    events_produced: u16,
    /// Whether [`Loopback::serve`] polls the queues between doorbells.
    pub polling: bool,
    /// Arena offset of this device's transport page.
    page_offset: usize,
}

impl<D: VirtioDevice, const NQ: usize> DeviceSide<D, NQ> {
    /// The state machine.
    pub fn core(&self) -> &DeviceCore<D, NQ> {
        match &self.front {
            Front::Msg(c) => c,
            Front::Mmio(t) => t.core(),
        }
    }

    /// The state machine, mutably.
    pub fn core_mut(&mut self) -> &mut DeviceCore<D, NQ> {
        match &mut self.front {
            Front::Msg(c) => c,
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

    /// Records one answer of the core.
    fn count(&mut self, i: Interrupts) {
        for q in i.queues() {
            self.stats.used_irqs[usize::from(q)] += 1;
        }
        self.stats.config_irqs += u64::from(i.config);
    }

    /// Delivers notifications to the driver: EVENT_USED / EVENT_CONFIG
    /// messages into the event ring, or the mmio `InterruptStatus` word.
    /// The caller has counted them.
    pub fn deliver(&mut self, mem: &DeviceMemory, i: Interrupts) {
        if i.is_empty() {
            return;
        }
        match &mut self.front {
            Front::Msg(core) => {
                let base = transport_page(mem, self.page_offset);
                let produced = &mut self.events_produced;
                let stats = &mut self.stats;
                msg::encode_events(core, DEV_NUM, i, |frame| {
                    let consumer = mem
                        .load_u16_acquire(base + page::EVENT_CONSUMER as u64)
                        .expect("event consumer inside the arena");
                    if usize::from(produced.wrapping_sub(consumer)) >= page::EVENT_SLOTS {
                        // Ring full: coalesce into the sticky flag of the
                        // event's kind instead of overwriting a slot the
                        // driver has not read.
                        let flag = if frame[1] == msg::id::EVENT_CONFIG {
                            page::OVERFLOW_CONFIG
                        } else {
                            page::OVERFLOW_USED
                        };
                        mem.store_u16_release(base + flag as u64, 1)
                            .expect("overflow flag inside the arena");
                        stats.coalesced += 1;
                        return;
                    }
                    let slot = usize::from(*produced) % page::EVENT_SLOTS;
                    let mut buf = [0u8; page::EVENT_SLOT];
                    buf[..frame.len()].copy_from_slice(frame);
                    mem.write(
                        base + (page::EVENT_RING + slot * page::EVENT_SLOT) as u64,
                        &buf,
                    )
                    .expect("event ring inside the arena");
                    *produced = produced.wrapping_add(1);
                    // Release: the slot is written before the index that
                    // publishes it.
                    mem.store_u16_release(base + page::EVENT_PRODUCER as u64, *produced)
                        .expect("event producer inside the arena");
                    stats.delivered += 1;
                });
            }
            Front::Mmio(t) => {
                t.raise(i);
                self.stats.delivered += 1;
            }
        }
    }

    /// Device-initiated work (the core's `poll`), and, in polling mode, every
    /// queue processed as if kicked. Delivers the notifications (merged);
    /// returns whether there were any.
    pub fn poll(&mut self, mem: &DeviceMemory) -> bool {
        let mut all = self.core_mut().poll(&**mem);
        self.count(all);
        if self.polling {
            for q in 0..NQ as u16 {
                let i = self.core_mut().queue_notify(&**mem, q);
                self.count(i);
                all = all.merge(i);
            }
        }
        self.deliver(mem, all);
        !all.is_empty()
    }

    /// Serves a posted queue kick (threaded mode): an EVENT_AVAIL message
    /// the bus delivered, or a `QueueNotify` write that completed without
    /// the driver waiting for it.
    fn posted_kick(&mut self, mem: &DeviceMemory, queue: u16) {
        if let Some(k) = self.stats.kicks.get_mut(usize::from(queue)) {
            *k += 1;
        }
        let i = match &mut self.front {
            Front::Msg(core) => {
                let mut req = [0u8; FRAME];
                msg::Request::EventAvail {
                    vq_index: u32::from(queue),
                    next_offset: 0,
                }
                .encode(DEV_NUM, 0, &mut req)
                .expect("EVENT_AVAIL fits a frame");
                let mut resp = [0u8; FRAME];
                let h = msg::handle(core, &**mem, DEV_NUM, &req, &mut resp);
                assert_eq!(h.response_len, None, "EVENT_AVAIL must not be answered");
                if let Some(e) = h.dropped {
                    self.stats.dropped.push(e);
                }
                h.interrupts
            }
            Front::Mmio(t) => {
                let out = t.write(&**mem, reg::QUEUE_NOTIFY, 4, u32::from(queue));
                if let Some(e) = out.refused {
                    self.stats.refused.push((reg::QUEUE_NOTIFY, e));
                }
                out.interrupts
            }
        };
        self.count(i);
        self.deliver(mem, i);
    }

    /// Serves one doorbell: the message or trapped access is in the
    /// transport page.
    fn doorbell(&mut self, mem: &DeviceMemory) {
        self.stats.doorbells += 1;
        let base = transport_page(mem, self.page_offset);
        match &mut self.front {
            Front::Msg(core) => {
                let mut req = [0u8; FRAME];
                mem.read(base + page::REQUEST as u64, &mut req)
                    .expect("request mailbox inside the arena");
                let mut resp = [0u8; FRAME];
                let h = msg::handle(core, &**mem, DEV_NUM, &req, &mut resp);
                let id = u32::from(req[1]);
                if let Some(e) = h.refused {
                    self.stats.refused.push((id, e));
                }
                if let Some(e) = h.dropped {
                    self.stats.dropped.push(e);
                }
                if id == u32::from(msg::id::EVENT_AVAIL) {
                    let q = u32::from_le_bytes([req[8], req[9], req[10], req[11]]) as usize;
                    if let Some(k) = self.stats.kicks.get_mut(q) {
                        *k += 1;
                    }
                }
                if let Some(n) = h.response_len {
                    mem.write(base + page::RESPONSE as u64, &resp[..n])
                        .expect("response mailbox inside the arena");
                }
                self.count(h.interrupts);
                self.deliver(mem, h.interrupts);
            }
            Front::Mmio(t) => {
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
                if write {
                    let mut v = [0u8; 4];
                    mem.read(at, &mut v[..n])
                        .expect("register inside the arena");
                    let value = u32::from_le_bytes(v);
                    let out = t.write(&**mem, offset, width, value);
                    if let Some(e) = out.refused {
                        self.stats.refused.push((offset, e));
                    }
                    if offset == reg::QUEUE_NOTIFY
                        && let Some(k) = self.stats.kicks.get_mut((value & 0xffff) as usize)
                    {
                        *k += 1;
                    }
                    // `write` already folded the notifications into
                    // InterruptStatus; just count them.
                    self.count(out.interrupts);
                    if !out.interrupts.is_empty() {
                        self.stats.delivered += 1;
                    }
                } else {
                    let value = t.read(offset, width);
                    mem.write(at, &value.to_le_bytes()[..n])
                        .expect("register inside the arena");
                }
            }
        }
    }
}

fn transport_page(mem: &DeviceMemory, page_offset: usize) -> u64 {
    mem.guest_base() + page_offset as u64
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

/// One device served over one transport, shared by the driver-side
/// transport handles and the test.
pub struct Loopback<D: VirtioDevice, const NQ: usize> {
    kind: Kind,
    mode: Mode,
    side: Mutex<DeviceSide<D, NQ>>,
    mem: DeviceMemory,
    arena: Arc<ArenaMem>,
    rung: AtomicU64,
    done: AtomicU64,
    /// Posted kicks (threaded mode): bit `n` for queue `n`.
    posted: AtomicU64,
    /// Kicks the driver posted per queue (before coalescing).
    posted_count: Vec<AtomicU64>,
    stop: AtomicBool,
    /// The thread running [`Loopback::serve`], woken by doorbells and
    /// posted kicks when it parks for lack of work.
    device_thread: OnceLock<std::thread::Thread>,
}

/// How long a driver waits for a threaded device before the test fails.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(20);

/// Idle rounds a device thread spins (yielding) before it starts parking
/// between rounds.
const SPIN_ROUNDS: u32 = 2000;
/// Longest park of an idle device thread.
const PARK_TIMEOUT: Duration = Duration::from_micros(200);

impl<D: VirtioDevice, const NQ: usize> Loopback<D, NQ> {
    /// Serves `device` over `kind` from `arena`, with the arena's transport
    /// page.
    pub fn new(arena: &Arena, kind: Kind, mode: Mode, device: D) -> Arc<Self> {
        Self::with_page(arena, TRANSPORT_PAGE, kind, mode, device)
    }

    /// Serves `device` over `kind` from `arena`, with its transport page at
    /// arena offset `page_offset` (a page from
    /// [`Arena::alloc_transport_page`], so that several devices share one
    /// arena).
    pub fn with_page(
        arena: &Arena,
        page_offset: usize,
        kind: Kind,
        mode: Mode,
        device: D,
    ) -> Arc<Self> {
        assert!(
            page_offset.is_multiple_of(crate::arena::PAGE)
                && page_offset + crate::arena::PAGE <= arena.mem().len(),
            "transport page {page_offset:#x} is not a page of the arena"
        );
        let front = match kind {
            Kind::Msg => Front::Msg(DeviceCore::new(device)),
            Kind::Mmio => Front::Mmio(MmioTransport::new(device)),
        };
        let mem = arena.mem().device_memory();
        Arc::new(Loopback {
            kind,
            mode,
            side: Mutex::new(DeviceSide {
                front,
                stats: Stats {
                    kicks: vec![0; NQ],
                    used_irqs: vec![0; NQ],
                    ..Stats::default()
                },
                events_produced: 0,
                polling: mode == Mode::Threaded,
                page_offset,
            }),
            mem,
            arena: Arc::clone(arena.mem()),
            rung: AtomicU64::new(0),
            done: AtomicU64::new(0),
            posted: AtomicU64::new(0),
            posted_count: (0..NQ).map(|_| AtomicU64::new(0)).collect(),
            stop: AtomicBool::new(false),
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
        self.side().stats.clone()
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

    /// Lets the device do device-initiated work now (complete deferred
    /// requests, say) and deliver the resulting notifications.
    pub fn poll(&self) -> bool {
        let mut side = self.side();
        side.poll(&self.mem)
    }

    /// The device changes its configuration: runs `change` on the device,
    /// then bumps the generation and notifies the driver.
    pub fn change_config(&self, change: impl FnOnce(&mut D)) {
        let mut side = self.side();
        change(side.device_mut());
        let i = side.core_mut().config_changed();
        side.count(i);
        side.deliver(&self.mem, i);
    }

    /// The driver rings the doorbell: the transport page holds a message or
    /// a trapped access. Returns once the device has served it.
    pub fn ring(&self) {
        match self.mode {
            Mode::Inline => {
                let mut side = self.side();
                side.doorbell(&self.mem);
            }
            Mode::Threaded => {
                // Release: the transport page contents happen-before the
                // device's acquire of the counter.
                let n = self.rung.fetch_add(1, Ordering::Release) + 1;
                self.wake();
                let start = Instant::now();
                // Acquire: the device's answer in the transport page
                // happens-before our reading it.
                while self.done.load(Ordering::Acquire) != n {
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

    /// The driver kicks queue `queue` without waiting for the device
    /// ([`Mode::Threaded`] only): like a write to an ioeventfd or to a
    /// doorbell register, the kick is posted and the device thread serves it
    /// through the transport (an EVENT_AVAIL message, a `QueueNotify` write)
    /// while the driver goes on adding buffers.
    pub fn post_kick(&self, queue: u16) {
        assert_eq!(
            self.mode,
            Mode::Threaded,
            "posted kicks need a device thread"
        );
        assert!(queue < 64);
        // Release: the ring updates before the kick happen-before the
        // device's acquire of the bit.
        self.posted.fetch_or(1 << queue, Ordering::Release);
        if let Some(c) = self.posted_count.get(usize::from(queue)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.wake();
    }

    /// Wakes the device thread if it parked.
    fn wake(&self) {
        if let Some(t) = self.device_thread.get() {
            t.unpark();
        }
    }

    /// Kicks the driver posted for queue `queue` ([`Mode::Threaded`]).
    /// Kicks posted before the device thread looked are served once, as
    /// with an eventfd, so [`Stats::kicks`] may count fewer.
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
        let mut served = 0u64;
        let mut idle = 0u32;
        loop {
            let rung = self.rung.load(Ordering::Acquire);
            if rung != served {
                assert_eq!(rung, served + 1, "one doorbell at a time");
                self.side().doorbell(&self.mem);
                served = rung;
                self.done.store(rung, Ordering::Release);
                idle = 0;
                continue;
            }
            let kicked = self.posted.swap(0, Ordering::Acquire);
            if kicked != 0 {
                let mut side = self.side();
                for q in (0..64u16).filter(|&q| kicked & (1 << q) != 0) {
                    side.posted_kick(&self.mem, q);
                }
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
