//! The FF-A transport (`transport-ffa`) on the host: the device as a
//! secure partition on one thread, the driver (`scmi_agent::ffa_driver`,
//! with the SCMI agent on `virtio-drivers`) as the normal world on
//! another, and between them the scripted SPMC double (`ffa-double`),
//! which checks every call either side makes against the FF-A rules.
//!
//! The driver's rings and bounce buffers live in one arena it shares with
//! FFA_MEM_SHARE and names as area 1 (bus addresses `1 << 48 | offset`);
//! the partition retrieves it and reaches it through its region table only.

use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ffa_double::{Config, NwdConduit, Pages, SpConduit, SpState, Spmc, leak_pages};
use frontend_tests::arena::{ARENA_SIZE, Arena, ArenaHal};
use platform_host_vhost_user as builtin;
use scmi_agent::agent::{AgentOptions, ScmiAgent};
use scmi_agent::ffa_driver::{FfaDriver, Mailboxes, Setup};
use scmi_agent::tour::{self, Patience};
use scmi_server::Server;
use transport_ffa::{Board, Buffers, FfaDevice, Options};
use virtio_backend::{Coherent, FixedWindow, RegionTable};
use virtio_scmi::VirtioScmi;

type Srv = Server<builtin::Platform, 4, 32>;
/// Four areas, sixteen mapped ranges.
type Dev = FfaDevice<'static, SpConduit, VirtioScmi<Srv>, HostBoard, 2, 0, 4, 16>;

/// The area the driver shares its arena as.
const AREA: u16 = 1;
/// The notification bit events are signalled with.
const NOTIFICATION: u8 = 5;

/// Simulated time in milliseconds, moved on by the driver while it waits
/// and read by the partition at each message.
static CLOCK: AtomicU64 = AtomicU64::new(0);

fn now() -> Duration {
    Duration::from_millis(CLOCK.load(Ordering::Relaxed))
}

fn idle() {
    CLOCK.fetch_add(10, Ordering::Relaxed);
}

/// The partition's board on the host: "mapping" normal-world memory is
/// adding it to the region table at its own (host) address.
struct HostBoard {
    mapped: Arc<AtomicU64>,
}

impl Board<'static, 16> for HostBoard {
    fn map(
        &mut self,
        mem: &mut RegionTable<'static, 16>,
        bus: u64,
        pa: u64,
        pages: u32,
        _w: bool,
    ) -> bool {
        let Some(host) = NonNull::new(pa as usize as *mut u8) else {
            return false;
        };
        // SAFETY: `pa` is the host address of normal-world memory the test
        // keeps allocated (the arena, declared to the double); the double
        // handed it out in a retrieve response for a share of it.
        let ok = unsafe { mem.add(bus, host, pages as usize * 4096) }.is_ok();
        self.mapped.fetch_add(u64::from(ok), Ordering::Relaxed);
        ok
    }

    fn unmap(&mut self, mem: &mut RegionTable<'static, 16>, bus: u64, _pa: u64, _pages: u32) {
        mem.remove(bus);
        self.mapped.fetch_sub(1, Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        CLOCK.load(Ordering::Relaxed)
    }
}

/// A page pair as windows, and their addresses.
fn windows(rx: &Pages, tx: &Pages) -> (FixedWindow<'static>, FixedWindow<'static>) {
    let w = |p: &Pages| {
        let ptr = NonNull::new(p.addr() as usize as *mut u8).expect("leaked pages");
        // SAFETY: leaked, page-aligned, never freed; only the SPMC double
        // and this window touch it, through raw pointers.
        unsafe { FixedWindow::new(ptr, 4096, 0, Coherent) }.expect("fits")
    };
    (w(rx), w(tx))
}

/// Starts the partition on its own thread; returns the count of mapped
/// ranges it keeps.
fn start_partition(spmc: &Arc<Spmc>, opts: Options) -> Arc<AtomicU64> {
    let mapped = Arc::new(AtomicU64::new(0));
    let m = Arc::clone(&mapped);
    spmc.spawn_sp(move || {
        let (rx_pages, tx_pages) = (leak_pages(1), leak_pages(1));
        let (rx, tx) = windows(&rx_pages, &tx_pages);
        let core = VirtioScmi::new(Srv::new(&builtin::CONFIG, builtin::PLATFORM), 1).into_core();
        let bufs = Buffers {
            rx,
            tx,
            rx_address: rx_pages.addr(),
            tx_address: tx_pages.addr(),
        };
        let mut dev: Dev = FfaDevice::new(core, HostBoard { mapped: m }, bufs, opts);
        match dev.boot() {
            Ok(_) => dev.run(),
            Err(e) => {
                eprintln!("partition boot failed: {e:?}");
                transport_ffa::abort::<SpConduit>(e.error)
            }
        }
    });
    assert_eq!(
        spmc.wait_sp_booted(),
        SpState::Waiting,
        "the partition boots"
    );
    mapped
}

/// The normal world: an arena at bus address `AREA << 48`, declared to the
/// double, and the driver bound over the FF-A bus.
fn connect(spmc: &Arc<Spmc>, notification: Option<u8>) -> (Arena, FfaDriver<NwdConduit>) {
    spmc.enter_as_nwd();
    let arena = Arena::with_guest_base(u64::from(AREA) << 48);
    let base = arena.mem().host(0).as_ptr() as u64;
    spmc.add_nwd_memory(base, ARENA_SIZE as u64);
    let (rx_pages, tx_pages) = (leak_pages(1), leak_pages(1));
    let (rx, tx) = windows(&rx_pages, &tx_pages);
    let bufs = Mailboxes {
        rx,
        tx,
        rx_address: rx_pages.addr(),
        tx_address: tx_pages.addr(),
    };
    let setup = Setup {
        partition: Config::default().sp_id,
        memory: (base, (ARENA_SIZE / 4096) as u32),
        area_id: AREA,
        notification,
    };
    let driver = FfaDriver::<NwdConduit>::connect(&bufs, setup).expect("the driver binds");
    (arena, driver)
}

fn opts() -> Options {
    Options {
        notifications: true,
        indirect: true,
    }
}

#[test]
fn the_tour_passes_over_the_ffa_bus() {
    let spmc = Spmc::new(Config::default());
    let mapped = start_partition(&spmc, opts());
    let (_arena, driver) = connect(&spmc, Some(NOTIFICATION));
    assert_eq!(driver.dev_num(), transport_ffa::DEV_NUM);
    // The partition retrieved the arena's one constituent.
    assert_eq!(mapped.load(Ordering::Relaxed), 1);
    let shares = spmc.shares();
    assert_eq!(shares.len(), 1);
    assert!(shares[0].retrieved && shares[0].retrieve_count == 1);
    let agent_opts = AgentOptions {
        patience: Duration::from_secs(5),
        now,
        idle,
        ..AgentOptions::default()
    };
    let mut agent: ScmiAgent<_, ArenaHal, 16, 16> = ScmiAgent::new(driver, agent_opts);
    let mut out = String::new();
    let o = tour::run(
        &mut agent,
        &mut out,
        Patience {
            limit: Duration::from_secs(10),
            now,
            idle,
        },
    );
    print!("{out}");
    assert_eq!(o.failed, 0, "{out}");
    assert!(o.passed > 40, "{o:?}");
    for what in [
        "CLOCK_RATE_CHANGED notification received",
        "asynchronous rate set completed by a delayed response",
        "SENSOR_UPDATE notification received",
        "burst: 8 of 8 commands in flight answered",
    ] {
        assert!(out.contains(what), "{what:?} missing from\n{out}");
    }
    assert!(
        agent.transport().notified() > 0,
        "events were signalled by FF-A notification"
    );
    spmc.shutdown();
    assert_eq!(spmc.violations(), Vec::<String>::new());
    assert!(
        spmc.console().is_empty() || !spmc.console().contains("panic"),
        "{}",
        spmc.console()
    );
}
