//! The FF-A harness: the device as a secure partition on a thread of its
//! own, behind the scripted SPMC double (`ffa-double`), and the driver
//! (`scmi_agent::ffa_driver`) as the normal world on the calling thread.
//!
//! The driver's rings and bounce buffers live in an [`Arena`] it shares
//! with FFA_MEM_SHARE and names as area [`AREA`] (bus addresses
//! `AREA << 48 | offset`); the partition retrieves it and reaches it
//! through its region table only. Time is a counter the driver moves on
//! while it waits ([`idle`]) and the partition reads at each message.

use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ffa_double::{Config, NwdConduit, Pages, SpConduit, SpState, Spmc, leak_pages};
use platform_host_vhost_user as builtin;
use scmi_agent::ffa_driver::{Events, FfaDriver, Mailboxes, Setup};
use scmi_server::Server;
use transport_ffa::{Board, Buffers, FfaDevice, Options};
use virtio_backend::{Coherent, FixedWindow, RegionTable};
use virtio_scmi::VirtioScmi;

use crate::arena::{ARENA_SIZE, Arena};

/// The server: the built-in platform, four agents.
pub type Srv = Server<builtin::Platform, 4, 32>;
/// The partition: four areas, sixteen mapped ranges.
pub type Dev = FfaDevice<'static, SpConduit, VirtioScmi<Srv>, HostBoard, 2, 0, 4, 16>;

/// The area the driver shares its arena as.
pub const AREA: u16 = 1;

/// Simulated time in milliseconds.
static CLOCK: AtomicU64 = AtomicU64::new(0);

/// The simulated time.
pub fn now() -> Duration {
    Duration::from_millis(CLOCK.load(Ordering::Relaxed))
}

/// Waiting moves time on by 10 ms.
pub fn idle() {
    CLOCK.fetch_add(10, Ordering::Relaxed);
}

/// The partition's board on the host: "mapping" normal-world memory is
/// adding it to the region table at its own (host) address. Counts the
/// ranges mapped.
#[derive(Default)]
pub struct HostBoard {
    mapped: Arc<AtomicU64>,
}

impl Board<'static, 16> for HostBoard {
    fn map(
        &mut self,
        mem: &mut RegionTable<'static, 16>,
        bus: u64,
        pa: u64,
        pages: u32,
        _writable: bool,
    ) -> bool {
        let Some(host) = NonNull::new(pa as usize as *mut u8) else {
            return false;
        };
        // SAFETY: `pa` is the host address of normal-world memory the test
        // keeps allocated (an arena, declared to the double); the double
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

/// RX and TX windows over a page pair.
pub fn windows(rx: &Pages, tx: &Pages) -> (FixedWindow<'static>, FixedWindow<'static>) {
    let w = |p: &Pages| {
        let ptr = NonNull::new(p.addr() as usize as *mut u8).expect("leaked pages");
        // SAFETY: leaked, page-aligned, never freed; only the SPMC double
        // and this window touch it, through raw pointers.
        unsafe { FixedWindow::new(ptr, 4096, 0, Coherent) }.expect("fits")
    };
    (w(rx), w(tx))
}

/// Starts the partition on its own thread and waits for it to boot;
/// returns the count of ranges it has mapped.
pub fn start_partition(spmc: &Arc<Spmc>, opts: Options) -> Arc<AtomicU64> {
    let mapped = Arc::new(AtomicU64::new(0));
    let m = Arc::clone(&mapped);
    spmc.spawn_sp(move || {
        let (rx_pages, tx_pages) = (leak_pages(1), leak_pages(1));
        let (rx, tx) = windows(&rx_pages, &tx_pages);
        let core = Box::leak(Box::new(
            VirtioScmi::new(Srv::new(&builtin::CONFIG, builtin::PLATFORM), 1).into_core(),
        ));
        let bufs = Buffers {
            rx,
            tx,
            rx_address: rx_pages.addr(),
            tx_address: tx_pages.addr(),
        };
        let mut dev: Dev = FfaDevice::new(core, HostBoard { mapped: m }, bufs, opts);
        match dev.boot() {
            Ok(_) => dev.run(),
            Err(e) => transport_ffa::abort::<SpConduit>(e.error),
        }
    });
    assert_eq!(
        spmc.wait_sp_booted(),
        SpState::Waiting,
        "the partition boots"
    );
    mapped
}

/// The normal world on this thread: a fresh arena at bus address
/// `AREA << 48`, declared to the double, and its RX/TX pages.
pub fn normal_world(spmc: &Arc<Spmc>) -> (Arena, Mailboxes<FixedWindow<'static>>) {
    spmc.enter_as_nwd();
    let arena = Arena::with_guest_base(u64::from(AREA) << 48);
    spmc.add_nwd_memory(arena_base(&arena), ARENA_SIZE as u64);
    let (rx_pages, tx_pages) = (leak_pages(1), leak_pages(1));
    let (rx, tx) = windows(&rx_pages, &tx_pages);
    let bufs = Mailboxes {
        rx,
        tx,
        rx_address: rx_pages.addr(),
        tx_address: tx_pages.addr(),
    };
    (arena, bufs)
}

/// The host address of an arena's first byte: its "physical" address.
pub fn arena_base(arena: &Arena) -> u64 {
    arena.mem().host(0).as_ptr() as u64
}

/// The setup that shares the whole arena as [`AREA`].
pub fn setup(arena: &Arena, events: Events) -> Setup {
    Setup {
        partition: Config::default().sp_id,
        memory: (arena_base(arena), (ARENA_SIZE / 4096) as u32),
        area_id: AREA,
        events,
    }
}

/// [`normal_world`] and the driver bound (it keeps the RX/TX buffers).
pub fn connect(spmc: &Arc<Spmc>, events: Events) -> (Arena, FfaDriver<NwdConduit>) {
    let (arena, bufs) = normal_world(spmc);
    let driver =
        FfaDriver::<NwdConduit>::connect(bufs, setup(&arena, events)).expect("the driver binds");
    (arena, driver)
}
