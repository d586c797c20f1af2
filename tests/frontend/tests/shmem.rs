//! The hypervisor-less shared-memory transport (`transport-shmem`) on the
//! host: the device behind [`ShmemDevice`], the driver half of the channel
//! (`scmi_agent::amp_driver`) with the SCMI agent on `virtio-drivers`, and
//! the tour the bare-metal front-ends run on a second core. The doorbell is
//! a function call that serves the device; time is a counter the driver
//! moves on while it waits.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use frontend_tests::arena::{Arena, ArenaHal, GUEST_BASE, TRANSPORT_PAGE};
use platform_host_vhost_user as builtin;
use scmi_agent::agent::{AgentOptions, ScmiAgent};
use scmi_agent::amp_driver::{AmpDriver, Link};
use scmi_server::Server;
use transport_shmem::{MAX_STEPS_PER_SERVE, ShmemDevice};
use virtio_backend::amp::Geometry;
use virtio_backend::msg::Revision;
use virtio_backend::service::Doorbell;
use virtio_scmi::VirtioScmi;

type Srv = Server<builtin::Platform, 4, 32>;
type Dev = ShmemDevice<VirtioScmi<Srv>, 2, 0>;
/// The device and its view of the arena, shared with the doorbell.
type Served = Rc<RefCell<(Dev, frontend_tests::arena::DeviceMemory)>>;

const GEOMETRY: Geometry = Geometry {
    elements: 16,
    element_size: 64,
};

thread_local! {
    /// Simulated time, in milliseconds.
    static NOW_MS: Cell<u64> = const { Cell::new(0) };
    /// The device, for the doorbell.
    static DEVICE: RefCell<Option<Served>> =
        const { RefCell::new(None) };
}

fn now() -> Duration {
    Duration::from_millis(NOW_MS.with(Cell::get))
}

/// The device's doorbell to the driver: counted.
struct Bell<'a>(&'a Cell<u32>);

impl Doorbell for Bell<'_> {
    fn barrier(&mut self) {}
    fn ring(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

thread_local! {
    static RINGS_TO_DRIVER: Cell<u32> = const { Cell::new(0) };
}

fn serve() {
    DEVICE.with(|d| {
        let d = d.borrow();
        let mut d = d.as_ref().expect("device installed").borrow_mut();
        let (dev, mem) = &mut *d;
        let now = NOW_MS.with(Cell::get);
        RINGS_TO_DRIVER.with(|r| {
            dev.serve(&**mem, &mut Bell(r), now);
        });
    });
}

/// Waiting moves time on by 10 ms and lets the device see it.
fn idle() {
    NOW_MS.with(|t| t.set(t.get() + 10));
    serve();
}

struct Inline;

impl Link for Inline {
    fn ring(&self) {
        serve();
    }
    fn idle(&self) {
        idle();
    }
    fn now(&self) -> Duration {
        now()
    }
}

fn install(arena: &Arena) -> Served {
    let mem = arena.mem().device_memory();
    let core = VirtioScmi::new(Srv::new(&builtin::CONFIG, builtin::PLATFORM), 1).into_core();
    let mut dev = Dev::new(core, Revision::V2);
    let base = GUEST_BASE + TRANSPORT_PAGE as u64;
    dev.publish(&*mem, base, 0x1000, GEOMETRY)
        .expect("the channel fits the page");
    let d = Rc::new(RefCell::new((dev, mem)));
    DEVICE.with(|s| *s.borrow_mut() = Some(Rc::clone(&d)));
    d
}

#[test]
fn the_tour_passes_over_the_shared_memory_transport() {
    let arena = Arena::new();
    let dev = install(&arena);
    let base = GUEST_BASE + TRANSPORT_PAGE as u64;
    // The driver's view of the window: the same memory, for the test's life.
    let view: &'static frontend_tests::arena::DeviceMemory =
        Box::leak(Box::new(arena.mem().device_memory()));
    let driver = AmpDriver::connect(
        &**view,
        base,
        0x1000,
        Inline,
        Revision::V2,
        Duration::from_secs(5),
    )
    .expect("the driver binds");
    assert_eq!(driver.dev_num(), transport_shmem::DEV_NUM);
    let opts = AgentOptions {
        patience: Duration::from_secs(5),
        now,
        idle,
        ..AgentOptions::default()
    };
    let mut agent: ScmiAgent<_, ArenaHal, 16, 16> = ScmiAgent::new(driver, opts);
    let out = frontend_tests::tour_passes(&mut agent, now, idle);
    print!("{out}");
    for what in [
        "CLOCK_RATE_CHANGED notification received",
        "asynchronous rate set completed by a delayed response",
        "SENSOR_UPDATE notification received",
        "asynchronous read completed by a delayed response",
        "burst: 8 of 8 commands in flight answered",
    ] {
        assert!(out.contains(what), "{what:?} missing from\n{out}");
    }
    let d = dev.borrow();
    assert_eq!(d.0.stats().peer_lost, 0);
    assert!(
        RINGS_TO_DRIVER.with(Cell::get) > 0,
        "the device rang the driver"
    );
}

#[test]
fn the_hostile_front_end_leaves_the_device_serving() {
    let arena = Arena::new();
    let dev = install(&arena);
    let view: &'static frontend_tests::arena::DeviceMemory =
        Box::leak(Box::new(arena.mem().device_memory()));
    let base = GUEST_BASE + TRANSPORT_PAGE as u64;
    let mut out = String::new();
    let o = firmware_frontend::hostile::run::<ArenaHal, _, _, _>(
        &**view,
        (base, 0x1000),
        Inline,
        Inline,
        firmware_frontend::Clock { now, idle },
        &mut out,
    );
    print!("{out}");
    assert_eq!(o.failed, 0, "{out}");
    let d = dev.borrow();
    let stats = d.0.stats();
    assert_eq!(
        stats.peer_lost, 1,
        "the lying queue head cost the driver its link"
    );
    assert!(stats.dropped > 0, "garbage was dropped: {stats:?}");
    assert!(out.contains("DEVICE_NEEDS_RESET set"), "{out}");
}

/// Cache maintenance that records what the device asked for, as window
/// offsets: `(true, at, len)` invalidate before a read, `(false, at, len)`
/// clean after a write.
struct RecordingCache {
    base: usize,
    log: Rc<RefCell<Vec<(bool, usize, usize)>>>,
}

impl virtio_backend::CacheMaintenance for RecordingCache {
    fn before_read(&self, va: usize, len: usize) {
        self.log.borrow_mut().push((true, va - self.base, len));
    }
    fn after_write(&self, va: usize, len: usize) {
        self.log.borrow_mut().push((false, va - self.base, len));
    }
}

type RecordedDevice = Rc<RefCell<(Dev, virtio_backend::FixedWindow<'static, RecordingCache>)>>;

/// Rings a device whose window records its cache maintenance.
struct Recorded(RecordedDevice);

impl Link for Recorded {
    fn ring(&self) {
        let mut d = self.0.borrow_mut();
        let (dev, mem) = &mut *d;
        dev.serve(&*mem, &mut Bell(&Cell::new(0)), 0);
    }
    fn idle(&self) {
        self.ring();
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// Whether some call in `log` of kind `read` covers `[at, at + len)`.
fn covered(log: &[(bool, usize, usize)], read: bool, at: usize, len: usize) -> bool {
    log.iter()
        .any(|&(r, a, l)| r == read && a <= at && at + len <= a + l)
}

/// The window's cache hook (the Cortex-R52 image cleans and invalidates by
/// address): every byte the device reads from the channel and the rings is
/// invalidated first, every byte it writes is cleaned after, and nothing
/// outside the window is asked for.
#[test]
fn the_device_maintains_the_cache_for_every_access_to_the_window() {
    let arena: &'static Arena = Box::leak(Box::new(Arena::new()));
    let log = Rc::new(RefCell::new(Vec::new()));
    let len = arena.mem().len();
    let base = arena.mem().host(0).as_ptr() as usize;
    let cache = RecordingCache {
        base,
        log: Rc::clone(&log),
    };
    // SAFETY: the arena lives for the rest of the test binary (leaked); the
    // window reaches it only through raw pointers, as the driver side does.
    let mem =
        unsafe { virtio_backend::FixedWindow::new(arena.mem().host(0), len, GUEST_BASE, cache) }
            .expect("the window fits");
    let core = VirtioScmi::new(Srv::new(&builtin::CONFIG, builtin::PLATFORM), 1).into_core();
    let mut dev = Dev::new(core, Revision::V2);
    let chan = GUEST_BASE + TRANSPORT_PAGE as u64;
    dev.publish(&mem, chan, 0x1000, GEOMETRY)
        .expect("the channel fits");
    let dev: RecordedDevice = Rc::new(RefCell::new((dev, mem)));
    let view: &'static frontend_tests::arena::DeviceMemory =
        Box::leak(Box::new(arena.mem().device_memory()));
    let driver = AmpDriver::connect(
        &**view,
        chan,
        0x1000,
        Recorded(Rc::clone(&dev)),
        Revision::V2,
        Duration::from_secs(1),
    )
    .expect("the driver binds");
    let layout = virtio_backend::amp::Layout::read(&**view, chan, 0x1000).expect("published");
    let mut agent: ScmiAgent<_, ArenaHal, 16, 16> = ScmiAgent::new(driver, AgentOptions::default());
    log.borrow_mut().clear();
    // One SCMI round trip: BASE PROTOCOL_VERSION.
    let r = agent.callw(0x10, 0x0, &[], 4);
    assert_eq!(r.status, 0);
    let log = log.borrow();
    let off = |a: u64| (a - GUEST_BASE) as usize;
    let ch = off(chan);
    // The driver's EVENT_AVAIL: its tail index, then the element, read
    // after an invalidate.
    assert!(
        covered(&log, true, ch + layout.drv_qh as usize + 4, 2),
        "{log:?}"
    );
    let slots = |at: u64| ch + at as usize..ch + at as usize + 16 * 64;
    let drv = slots(layout.drv_elems);
    assert!(
        log.iter().any(|&(r, a, l)| r && drv.contains(&a) && l >= 8),
        "{log:?}"
    );
    // The device's EVENT_USED: the element and its tail, cleaned.
    let dev_slots = slots(layout.dev_elems);
    assert!(
        log.iter()
            .any(|&(r, a, l)| !r && dev_slots.contains(&a) && l >= 8),
        "{log:?}"
    );
    assert!(
        covered(&log, false, ch + layout.dev_qh as usize + 4, 2),
        "{log:?}"
    );
    // The used ring entry and index the device wrote, cleaned; and the
    // reply bytes (at least the 8-byte header and status).
    let cleans: usize = log.iter().filter(|e| !e.0).map(|e| e.2).sum();
    assert!(cleans >= 8 + 8 + 2, "{log:?}");
    // Everything inside the window, nothing empty.
    assert!(
        log.iter().all(|&(_, a, l)| l > 0 && a + l <= len),
        "{log:?}"
    );
}

/// A driver that keeps the channel full cannot keep the device in one
/// serve: it stops after `MAX_STEPS_PER_SERVE` steps, says there is more,
/// and the next serve takes the rest.
#[test]
fn one_serve_takes_a_bounded_share_of_a_full_channel() {
    use virtio_backend::amp::{Channel, Link as ChannelLink};
    use virtio_backend::msg::Request;
    use virtio_backend::service::MAX_MESSAGES_PER_STEP;
    let arena = Arena::new();
    let mem = arena.mem().device_memory();
    let big = Geometry {
        elements: 512,
        element_size: 64,
    };
    let base = GUEST_BASE + 0x20_0000;
    let len = big.region_size();
    let core = VirtioScmi::new(Srv::new(&builtin::CONFIG, builtin::PLATFORM), 1).into_core();
    let mut dev = Dev::new(core, Revision::V2);
    dev.publish(&*mem, base, len, big).unwrap();
    let mut drv = Channel::attach(&*mem, base, len).unwrap();
    let rings = Cell::new(0);
    for _ in 0..4 {
        drv.poll_link(&*mem).unwrap();
        dev.serve(&*mem, &mut Bell(&rings), 0);
    }
    assert_eq!(drv.link(), ChannelLink::Run);
    let sent = MAX_STEPS_PER_SERVE * MAX_MESSAGES_PER_STEP + 44;
    for token in 0..sent {
        let mut f = [0u8; 64];
        let n = Request::GetDeviceStatus
            .encode(transport_shmem::DEV_NUM, token as u16, &mut f)
            .unwrap();
        drv.send(&*mem, &f[..n]).unwrap();
    }
    let first = dev.serve(&*mem, &mut Bell(&rings), 0);
    assert_eq!(first.steps, MAX_STEPS_PER_SERVE);
    assert_eq!(first.messages, MAX_STEPS_PER_SERVE * MAX_MESSAGES_PER_STEP);
    assert!(first.more && dev.pending(&*mem));
    let second = dev.serve(&*mem, &mut Bell(&rings), 0);
    assert_eq!(second.messages, 44);
    assert!(!second.more && !dev.pending(&*mem));
    // Every request got its response, in order.
    let mut f = [0u8; 64];
    for token in 0..sent {
        let n = drv.recv(&*mem, &mut f).unwrap().expect("a response");
        assert_eq!(
            u16::from_le_bytes([f[4], f[5]]),
            token as u16,
            "{:02x?}",
            &f[..n]
        );
    }
}
