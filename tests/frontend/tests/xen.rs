//! The Xen transport's memory on the host (issue 13, in progress): the
//! device behind the shared-memory channel (`transport-shmem`'s
//! `ShmemDevice`), every byte of the driver's memory — the channel page,
//! the rings, the buffers — reached through grants
//! (`transport_xen::grant::GrantMemory`), as between two DomUs. The driver
//! (`scmi_agent::amp_driver`) addresses its arena as Linux's
//! `xen,grant-dma` does: page `n` is grant `FIRST_GREF + n`,
//! `1 << 63 | gref << 12 | offset`. The fake mapper hands the device the
//! arena's own pages, as Xen's mapping would.

use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::time::Duration;

use frontend_tests::arena::{ARENA_SIZE, Arena, ArenaHal};
use platform_host_vhost_user as builtin;
use platform_xen::{DomId, GrantRef, XenError};
use scmi_agent::agent::{AgentOptions, ScmiAgent};
use scmi_agent::amp_driver::{AmpDriver, Link};
use scmi_agent::tour::{self, Patience};
use scmi_server::Server;
use transport_shmem::ShmemDevice;
use transport_xen::grant::{GrantMapper, GrantMemory, Mapped, grant_address};
use virtio_backend::amp::Geometry;
use virtio_backend::msg::Revision;
use virtio_backend::service::Doorbell;
use virtio_backend::{Coherent, FixedWindow};
use virtio_scmi::VirtioScmi;

type Srv = Server<builtin::Platform, 4, 32>;
type Dev = ShmemDevice<VirtioScmi<Srv>, 2, 0>;

/// Grant refs 0–7 are reserved: the driver's pages start at 8.
const FIRST_GREF: GrantRef = 8;
/// The driver's domain.
const DRIVER: DomId = 2;
/// Slots the device keeps mapped.
const SLOTS: usize = 16;

const GEOMETRY: Geometry = Geometry {
    elements: 16,
    element_size: 64,
};

/// Maps grant `FIRST_GREF + n` to page `n` of the arena; counts maps.
struct ArenaGrants {
    base: NonNull<u8>,
    pages: u32,
    maps: std::rc::Rc<Cell<u64>>,
}

impl GrantMapper<'static> for ArenaGrants {
    fn map(
        &mut self,
        slot: usize,
        dom: DomId,
        gref: GrantRef,
        _writable: bool,
    ) -> Result<Mapped<'static>, XenError> {
        assert_eq!(dom, DRIVER);
        let n = gref
            .checked_sub(FIRST_GREF)
            .filter(|n| *n < self.pages)
            .ok_or(XenError::Grant(-4))?;
        self.maps.set(self.maps.get() + 1);
        // SAFETY: page `n` of the arena, which the test keeps alive for
        // the device's life; both sides reach it through raw pointers.
        let page = unsafe { FixedWindow::new(self.base.add(n as usize * 4096), 4096, 0, Coherent) }
            .expect("fits");
        Ok(Mapped {
            page,
            token: slot as u64,
        })
    }

    fn unmap(&mut self, _mapped: Mapped<'static>) -> Result<(), XenError> {
        Ok(())
    }
}

type Mem = GrantMemory<'static, ArenaGrants, SLOTS>;

thread_local! {
    static NOW_MS: Cell<u64> = const { Cell::new(0) };
    static DEVICE: RefCell<Option<(Dev, &'static Mem)>> = const { RefCell::new(None) };
}

/// The event channel to the driver (the driver polls here).
struct Evtchn;

impl Doorbell for Evtchn {
    fn barrier(&mut self) {}
    fn ring(&mut self) {}
}

fn now() -> Duration {
    Duration::from_millis(NOW_MS.with(Cell::get))
}

fn serve() {
    DEVICE.with(|d| {
        let mut d = d.borrow_mut();
        let (dev, mem) = d.as_mut().expect("device installed");
        dev.serve(*mem, &mut Evtchn, NOW_MS.with(Cell::get));
    });
}

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

#[test]
fn the_tour_passes_with_all_driver_memory_behind_grants() {
    let base = grant_address(FIRST_GREF, 0);
    let arena = Arena::with_guest_base(base);
    let maps = std::rc::Rc::new(Cell::new(0));
    let grants = ArenaGrants {
        base: arena.mem().host(0),
        pages: (ARENA_SIZE / 4096) as u32,
        maps: std::rc::Rc::clone(&maps),
    };
    let mem: &'static Mem = Box::leak(Box::new(GrantMemory::new(DRIVER, grants)));
    let core = VirtioScmi::new(Srv::new(&builtin::CONFIG, builtin::PLATFORM), 1).into_core();
    let mut dev = Dev::new(core, Revision::V2);
    // The channel in the first granted page.
    dev.publish(mem, base, 0x1000, GEOMETRY)
        .expect("the channel fits the page");
    DEVICE.with(|d| *d.borrow_mut() = Some((dev, mem)));
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
    let opts = AgentOptions {
        patience: Duration::from_secs(5),
        now,
        idle,
        ..AgentOptions::default()
    };
    let mut agent: ScmiAgent<_, ArenaHal, 16, 16> = ScmiAgent::new(driver, opts);
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
    assert_eq!(o.failed, 0, "{out}");
    assert!(o.passed > 40, "{o:?}");
    // Every access went through grants; the cache kept the working set:
    // far fewer maps than accesses, and no more pages than slots.
    let s = mem.stats();
    assert!(s.maps > 0 && s.mapped <= SLOTS, "{s:?}");
    assert_eq!(s.maps, maps.get());
    println!(
        "grant maps over the tour: {} ({} evicted)",
        s.maps, s.unmaps
    );
}
