//! The Xen transport on the host (the harness of `tests/xen.rs` and
//! `bench-xen`): the device on its Xen bus
//! (`transport_xen::bus::XenDevice`), the channel in the driver's first
//! granted page, every byte of the driver's memory — the channel page, the
//! rings, the buffers — reached through grants, as between two DomUs. The
//! driver (`scmi_agent::amp_driver`) addresses its arena as Linux's
//! `xen,grant-dma` does: page `n` is grant `FIRST_GREF + n`,
//! `1 << 63 | gref << 12 | offset`. The fake mapper hands the device the
//! arena's own pages, as Xen's mapping would, and only those the driver has
//! granted so far; the fake hypercalls count themselves and record the
//! poll timeouts.

use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::rc::Rc;
use std::time::Duration;

use crate::arena::{Arena, ArenaHal};
use platform_host_vhost_user as builtin;
use platform_xen::{DomId, GrantRef, Port, Xen, XenError};
use scmi_agent::agent::{AgentOptions, ScmiAgent};
use scmi_agent::amp_driver::{AmpDriver, Link};
use scmi_server::Server;
use transport_shmem::ShmemDevice;
use transport_xen::bus::{Config, Guest, Session, XenDevice};
use transport_xen::grant::{GrantMapper, Mapped, grant_address};
use virtio_backend::amp::Geometry;
use virtio_backend::msg::Revision;
use virtio_backend::{Coherent, FixedWindow};
use virtio_scmi::VirtioScmi;

/// The SCMI server of the built-in platform.
pub type Srv = Server<builtin::Platform, 4, 32>;
/// The device behind the channel.
pub type Dev = ShmemDevice<VirtioScmi<Srv>, 2, 0>;

/// Grant refs 0–7 are reserved: the driver's pages start at 8.
pub const FIRST_GREF: GrantRef = 8;
/// The driver's domain.
pub const DRIVER: DomId = 2;
/// Slots the device keeps mapped.
pub const SLOTS: usize = 16;

const GEOMETRY: Geometry = Geometry {
    elements: 16,
    element_size: 64,
};

/// Maps grant `FIRST_GREF + n` to page `n` of the arena, for the first
/// `granted` pages; counts maps.
pub struct ArenaGrants {
    base: NonNull<u8>,
    granted: Rc<Cell<u32>>,
    maps: Rc<Cell<u64>>,
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
            .filter(|n| *n < self.granted.get())
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

/// The device's end: what it polled for, what it sent.
#[derive(Default)]
pub struct Calls {
    /// Polls made.
    pub polls: Cell<u64>,
    /// Their timeouts.
    pub timeouts: RefCell<Vec<u64>>,
    /// Events sent.
    pub sends: Cell<u64>,
    /// The device's pending bit.
    pub pending: Cell<bool>,
}

/// The hypercalls, against [`Calls`]: a poll returns at once (the test is
/// single-threaded: the driver runs between turns).
pub struct FakeXen(Rc<Calls>);

impl Xen for FakeXen {
    fn send(&mut self, port: Port) -> Result<(), XenError> {
        assert_eq!(port, PORT);
        self.0.sends.set(self.0.sends.get() + 1);
        Ok(())
    }
    fn poll(&mut self, ports: &[Port], timeout_ns: u64) -> Result<(), XenError> {
        assert_eq!(ports, [PORT]);
        self.0.polls.set(self.0.polls.get() + 1);
        self.0.timeouts.borrow_mut().push(timeout_ns);
        Ok(())
    }
    fn map_grant(&mut self, _: DomId, _: GrantRef, _: u64, _: bool) -> Result<u32, XenError> {
        unreachable!("the mapper maps")
    }
    fn unmap_grant(&mut self, _: u64, _: u32) -> Result<(), XenError> {
        unreachable!("the mapper unmaps")
    }
    fn console_write(&mut self, _: &[u8]) -> Result<(), XenError> {
        Ok(())
    }
    fn add_to_physmap(&mut self, _: u32, _: u64, _: u64) -> Result<(), XenError> {
        Ok(())
    }
}

/// Xen's system time runs this far ahead of the guest's counter.
pub const XEN_OFFSET_NS: u64 = 7_000_000_000;

/// The guest: its pending bit is [`Calls::pending`], its clock the test's.
pub struct FakeGuest(Rc<Calls>);

impl Guest for FakeGuest {
    fn take_event(&mut self, port: Port) -> bool {
        assert_eq!(port, PORT);
        self.0.pending.replace(false)
    }
    fn now_ns(&self) -> u64 {
        NOW_MS.with(Cell::get) * 1_000_000
    }
    fn entered_ns(&self) -> Option<u64> {
        Some(self.now_ns() + XEN_OFFSET_NS)
    }
    fn counter(&self) -> u64 {
        self.now_ns()
    }
}

/// Our end of the event channel.
pub const PORT: Port = 11;

/// The device on its Xen bus, as the harness drives it.
pub type Bus =
    XenDevice<'static, 'static, VirtioScmi<Srv>, ArenaGrants, FakeXen, FakeGuest, 2, 0, SLOTS>;

/// Sessions the device ended (driver resets), in order.
pub fn ended() -> Vec<Session> {
    ENDED.with(|e| e.borrow().clone())
}

/// Moves the test's clock to `ms`.
pub fn set_now_ms(ms: u64) {
    NOW_MS.with(|t| t.set(ms));
}

thread_local! {
    static NOW_MS: Cell<u64> = const { Cell::new(0) };
    static DEVICE: RefCell<Option<Bus>> = const { RefCell::new(None) };
    static ENDED: RefCell<Vec<Session>> = const { RefCell::new(Vec::new()) };
}

/// The test's clock.
pub fn now() -> Duration {
    Duration::from_millis(NOW_MS.with(Cell::get))
}

/// One turn of the device's loop.
pub fn turn() {
    DEVICE.with(|d| {
        let ended = d.borrow_mut().as_mut().expect("device installed").turn();
        ENDED.with(|e| e.borrow_mut().extend(ended));
    });
}

/// Runs `f` on the installed device.
pub fn with_bus<R>(f: impl FnOnce(&mut Bus) -> R) -> R {
    DEVICE.with(|d| f(d.borrow_mut().as_mut().expect("device installed")))
}

/// Time passes (10 ms) and the device takes a turn.
pub fn idle() {
    NOW_MS.with(|t| t.set(t.get() + 10));
    turn();
}

/// The driver's link: its event sets our pending bit, and the device then
/// takes a turn (as its vCPU would, woken).
pub struct Inline(Rc<Calls>);

impl Link for Inline {
    fn ring(&self) {
        self.0.pending.set(true);
        turn();
    }
    fn idle(&self) {
        idle();
    }
    fn now(&self) -> Duration {
        now()
    }
}

/// The driver's side: the device, its grants and hypercalls.
pub struct Setup {
    /// The driver's memory.
    pub arena: Arena,
    /// The device's hypercalls.
    pub calls: Rc<Calls>,
    /// Pages the driver has granted so far.
    pub granted: Rc<Cell<u32>>,
    /// Pages the device mapped.
    pub maps: Rc<Cell<u64>>,
}

/// The device on its bus, nothing granted yet.
pub fn install() -> Setup {
    let base = grant_address(FIRST_GREF, 0);
    let arena = Arena::with_guest_base(base);
    let maps = Rc::new(Cell::new(0));
    let granted = Rc::new(Cell::new(0));
    let calls = Rc::new(Calls::default());
    let grants = ArenaGrants {
        base: arena.mem().host(0),
        granted: Rc::clone(&granted),
        maps: Rc::clone(&maps),
    };
    let core = VirtioScmi::new(Srv::new(&builtin::CONFIG, builtin::PLATFORM), 1).into_core();
    let dev: &'static mut Dev = Box::leak(Box::new(Dev::new(core, Revision::V2)));
    let config = Config {
        driver: DRIVER,
        port: PORT,
        channel_gref: FIRST_GREF,
        geometry: GEOMETRY,
        tick_ns: 10_000_000,
    };
    let bus = XenDevice::new(
        dev,
        grants,
        FakeXen(Rc::clone(&calls)),
        FakeGuest(Rc::clone(&calls)),
        config,
    );
    DEVICE.with(|d| *d.borrow_mut() = Some(bus));
    NOW_MS.with(|t| t.set(0));
    ENDED.with(|e| e.borrow_mut().clear());
    Setup {
        arena,
        calls,
        granted,
        maps,
    }
}

/// The driver's view of its arena.
pub type Driver = AmpDriver<&'static FixedWindow<'static>, Inline>;

/// The driver, bound to the device over the channel in grant [`FIRST_GREF`].
pub fn connect(s: &Setup) -> Driver {
    let view: &'static crate::arena::DeviceMemory =
        Box::leak(Box::new(s.arena.mem().device_memory()));
    AmpDriver::connect(
        &**view,
        grant_address(FIRST_GREF, 0),
        0x1000,
        Inline(Rc::clone(&s.calls)),
        Revision::V2,
        Duration::from_secs(5),
    )
    .expect("the driver binds")
}

/// An SCMI agent over `d`.
pub fn agent(d: Driver) -> ScmiAgent<Driver, ArenaHal, 16, 16> {
    let opts = AgentOptions {
        patience: Duration::from_secs(5),
        now,
        idle,
        ..AgentOptions::default()
    };
    ScmiAgent::new(d, opts)
}
