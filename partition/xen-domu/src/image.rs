//! Start-up, the static device and the loop (see the crate doc).

use core::ptr::NonNull;

use aarch64_rt::{InitialPagetable, entry};
use platform_arm_common::Print;
use platform_arm_common::timer;
use platform_xen::guest::BOOT_MAP;
use platform_xen::{DomId, GrantRef, Hvc, Port, Runstate, SharedInfo, Xen, XenError, abi};
use scmi_server::Server;
use spin::mutex::SpinMutex;
use transport_shmem::ShmemDevice;
use transport_xen::bus::{Config, Guest, Session, XenDevice};
use transport_xen::grant::{GrantMapper, Mapped, PAGE};
use virtio_backend::amp::Geometry;
use virtio_backend::msg::Revision;
use virtio_backend::{Coherent, FixedWindow};
use virtio_scmi::{DEFAULT_RING_FEATURES, Options, VirtioScmi};

use crate::generated::{CONFIG, PLATFORM, Platform, xen_device0 as bus};

/// Where we map our shared info page: unpopulated guest-physical space
/// below RAM, in GiB 0 of the boot map.
const SHARED_INFO_GPA: u64 = 0x3900_0000;
/// Time passes on the SCMI platform at least this often.
const TICK_MS: u64 = 10;

const _: () = assert!(
    bus::GRANT_WINDOW.0 + bus::GRANT_WINDOW.1 <= 1 << 30
        && (SHARED_INFO_GPA + PAGE <= bus::GRANT_WINDOW.0
            || SHARED_INFO_GPA >= bus::GRANT_WINDOW.0 + bus::GRANT_WINDOW.1),
    "the grant window lies in GiB 0 of the boot map, clear of the shared info page"
);

/// The SCMI server: the manifest's one agent, eight queued messages.
pub type ScmiServer = Server<Platform, 1, 8>;
/// The device: virtio-scmi behind the shared-memory channel, no packed
/// rings (`H = 0`).
pub type Device = ShmemDevice<VirtioScmi<ScmiServer>, 2, 0>;

/// The whole device, built at compile time.
pub static DEVICE: SpinMutex<Device> = SpinMutex::new(ShmemDevice::new(
    VirtioScmi::with_options(
        Server::new(&CONFIG, PLATFORM),
        bus::AGENT,
        Options {
            p2a: bus::P2A,
            ring_features: DEFAULT_RING_FEATURES,
            cmdq_size: bus::CMDQ_SIZE,
            eventq_size: bus::EVENTQ_SIZE,
        },
    )
    .into_core(),
    Revision::V2,
));

/// Our vCPU's runstate, which Xen writes: its entry times are Xen's time.
static RUNSTATE: Runstate = Runstate::new();

aarch64_rt::initial_pagetable!(InitialPagetable(BOOT_MAP));

// No exception is expected: each handler says which one came and stops.
platform_arm_common::fatal_exceptions!(fatal);

entry!(main, 8);

/// Xen's console (CONSOLEIO_write: `(dN)` lines on Xen's UART).
struct Console;

impl Print for Console {
    fn write_bytes(&mut self, bytes: &[u8]) {
        let _ = Hvc.console_write(bytes);
    }
}

fn fatal(what: &str) -> ! {
    Console.str("scmi-xen: unexpected ").str(what).str("\n");
    stop()
}

/// Stops this vCPU for good (nothing to return to).
fn stop() -> ! {
    loop {
        // A poll on no port with no timeout blocks until Xen kills us.
        let _ = Hvc.poll(&[], 0);
    }
}

/// Maps granted pages into the manifest's window, one page a slot.
struct Slots;

impl GrantMapper<'static> for Slots {
    fn map(
        &mut self,
        slot: usize,
        dom: DomId,
        gref: GrantRef,
        writable: bool,
    ) -> Result<Mapped<'static>, XenError> {
        let bad = XenError::Errno(-22);
        if slot >= bus::SLOTS {
            return Err(bad);
        }
        let gpa = bus::GRANT_WINDOW.0 + slot as u64 * PAGE;
        let handle = Hvc.map_grant(dom, gref, gpa, writable)?;
        let p = NonNull::new(gpa as usize as *mut u8).ok_or(bad)?;
        // SAFETY: Xen just mapped the granted page at `gpa`, in the
        // manifest's window (GiB 0 of our boot map: normal memory) where
        // nothing else lives; it stays mapped until `unmap`, which takes
        // this view back first.
        let page = unsafe { FixedWindow::new(p, PAGE as usize, 0, Coherent) }.ok_or(bad)?;
        Ok(Mapped {
            page,
            token: u64::from(handle) << 32 | slot as u64,
        })
    }

    fn unmap(&mut self, mapped: Mapped<'static>) -> Result<(), XenError> {
        // `mapped` (and the view in it) is ours alone and ends here.
        let token = mapped.token;
        let gpa = bus::GRANT_WINDOW.0 + (token & 0xffff_ffff) * PAGE;
        Hvc.unmap_grant(gpa, (token >> 32) as u32)
    }
}

/// This DomU: its shared info page, its runstate, its counter.
struct DomU(SharedInfo);

impl Guest for DomU {
    fn take_event(&mut self, port: Port) -> bool {
        self.0.take(port)
    }
    fn now_ns(&self) -> u64 {
        // Whole-number arithmetic (no `Duration`, whose constructor can
        // panic): ns = ticks * 10^9 / frequency, in 128 bits.
        let hz = u128::from(timer::frequency().max(1));
        (u128::from(timer::counter()) * 1_000_000_000 / hz) as u64
    }
    fn entered_ns(&self) -> Option<u64> {
        RUNSTATE.entered_ns()
    }
    fn counter(&self) -> u64 {
        timer::counter()
    }
}

/// One driver's session ended: what it cost.
fn report(s: &Session) {
    Console
        .str("scmi-xen: reset: ")
        .dec(s.messages)
        .str(" messages, ")
        .dec(s.hypercalls())
        .str(" hypercalls (")
        .dec(s.polls)
        .str(" poll, ")
        .dec(s.sends)
        .str(" send, ")
        .dec(s.maps)
        .str(" map, ")
        .dec(s.unmaps)
        .str(" unmap), ")
        .dec(s.accesses)
        .str(" page accesses, ")
        .dec(s.serve_ticks)
        .str(" ticks serving, ")
        .dec(s.dropped)
        .str(" dropped; pages unmapped\n");
}

fn main(_: u64, _: u64, _: u64, _: u64) -> ! {
    let mut out = Console;
    out.str("scmi-xen: virtio-scmi for agent ")
        .dec(u64::from(bus::AGENT))
        .str(" over virtio-msg, driver domain ")
        .dec(u64::from(bus::DRIVER_DOMAIN))
        .str(", channel in its grant ")
        .dec(u64::from(bus::CHANNEL_GRANT))
        .str(", event channel port ")
        .dec(u64::from(bus::EVENT_CHANNEL))
        .str(", ")
        .dec(bus::SLOTS as u64)
        .str(" grant slots at ")
        .hex(bus::GRANT_WINDOW.0)
        .str("\n");
    if Hvc
        .add_to_physmap(abi::XENMAPSPACE_SHARED_INFO, 0, SHARED_INFO_GPA >> 12)
        .is_err()
    {
        out.str("scmi-xen: FAILED: no shared info page\n");
        stop();
    }
    // Without the runstate the loop still works, polling at every turn
    // instead of sleeping until the tick.
    if Hvc.register_runstate(0, &RUNSTATE).is_err() {
        out.str("scmi-xen: no runstate area: ticks are polled\n");
    }
    // SAFETY: Xen mapped our shared info page there just now (GiB 0 of the
    // boot map, normal memory); nothing else uses that page.
    let shared = unsafe {
        SharedInfo::at(
            NonNull::new(SHARED_INFO_GPA as usize as *mut u8).unwrap_or(NonNull::dangling()),
        )
    };
    let config = Config {
        driver: bus::DRIVER_DOMAIN,
        port: bus::EVENT_CHANNEL,
        channel_gref: bus::CHANNEL_GRANT,
        geometry: Geometry {
            elements: bus::ELEMENTS,
            element_size: bus::ELEMENT_SIZE,
        },
        tick_ns: TICK_MS * 1_000_000,
    };
    let mut dev = DEVICE.lock();
    let mut xen: XenDevice<'_, '_, _, _, _, _, 2, 0, { bus::SLOTS }> =
        XenDevice::new(&mut dev, Slots, Hvc, DomU(shared), config);
    xen.run(report)
}

/// Prints where the image panicked (no `core::fmt`) and stops.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    platform_arm_common::console::report_panic(&mut Console, "scmi-xen", info);
    stop()
}
