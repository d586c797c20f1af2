//! Start-up, the static device and the loop on core 0 (see the crate doc).

use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use aarch32_rt::entry;
use platform_mps3_an536::Print;
use platform_mps3_an536::cache::PocMaintenance;
use platform_mps3_an536::console::CmsdkUart;
use platform_mps3_an536::cpu::{self, Mpidr};
use platform_mps3_an536::firmware::{GicCore, SgiDoorbell};
use platform_mps3_an536::gic::{self, Distributor};
use scmi_server::Server;
use spin::mutex::SpinMutex;
use transport_shmem::{Figures, ShmemDevice, serve_forever};
use virtio_backend::FixedWindow;
use virtio_backend::amp::Geometry;
use virtio_backend::msg::Revision;
use virtio_scmi::{DEFAULT_RING_FEATURES, Options, VirtioScmi};

use crate::generated::{CONFIG, PLATFORM, Platform, device_regions, shmem_device0};

/// The shared window: (base, size), physical.
pub const WINDOW: (u64, u64) = shmem_device0::WINDOW;
/// The channel: (offset in the window, size).
pub const CHANNEL: (u64, u64) = shmem_device0::CHANNEL;
/// The SGI the driver rings the device with.
pub const DOORBELL_IN: u8 = shmem_device0::DOORBELL_IN as u8;
/// The SGI the device rings the driver with.
pub const DOORBELL_OUT: u8 = shmem_device0::DOORBELL_OUT as u8;
/// The address of a device region the image cannot run without: a
/// manifest that lacks it fails the build here.
const fn address(base: Option<u64>) -> usize {
    match base {
        Some(b) if b != 0 => b as usize,
        _ => panic!("the manifest's UART, GICD and GICR device regions need an address"),
    }
}
/// The UART, the GIC distributor and the first redistributor frame.
const UART_BASE: usize = address(device_regions::UART.base);
const GICD_BASE: usize = address(device_regions::GICD.base);
const GICR_BASE: usize = address(device_regions::GICR.base);
/// The virtual timer's PPI.
const TIMER_PPI: u32 = device_regions::TIMER.interrupts[0].0;
/// Time passes on the SCMI platform at least this often.
pub const TICK_MS: u64 = 10;
/// The UART's input clock and the console's rate.
const UART_CLOCK: u32 = 50_000_000;
const BAUD: u32 = 115_200;

const _: () = assert!(
    WINDOW.0 + WINDOW.1 <= 1 << 32
        && shmem_device0::DOORBELL_IN < 16
        && shmem_device0::DOORBELL_OUT < 16
        && TIMER_PPI == 27,
    "the window is in the 32-bit address space, the doorbells are SGIs, the tick is the virtual timer"
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
        shmem_device0::AGENT,
        Options {
            p2a: shmem_device0::P2A,
            ring_features: DEFAULT_RING_FEATURES,
            cmdq_size: shmem_device0::CMDQ_SIZE,
            eventq_size: shmem_device0::EVENTQ_SIZE,
        },
    )
    .into_core(),
    Revision::V2,
));

/// What the loop measured, for the front-end's report.
pub static FIGURES: Figures = Figures::new();

/// The console: this core's CMSDK UART (each R52 sees its own at the
/// manifest's address).
pub fn console() -> CmsdkUart<'static> {
    // SAFETY: the manifest's UART is a CMSDK APB UART, private to the core
    // that uses it (the AN536 gives each R52 its own at this address); one
    // console per core at a time.
    let mut uart =
        unsafe { CmsdkUart::new(NonNull::new(UART_BASE as *mut _).unwrap_or(NonNull::dangling())) };
    uart.enable(UART_CLOCK, BAUD);
    uart
}

/// Brings up this core's GIC interface with `sgis` and `ppis` enabled.
pub fn gic_up(sgis: &[u8], ppis: &[u32]) -> Result<(), gic::Error> {
    let gicr = NonNull::new(GICR_BASE as *mut _).ok_or(gic::Error::NoRedistributor(0))?;
    // SAFETY: the manifest's GICR frames (device memory in the default
    // memory map); each core touches only its own frame after the search.
    unsafe { gic::this_core_up(gicr, sgis, ppis) }
}

#[entry]
fn main() -> ! {
    #[cfg(feature = "frontend")]
    crate::frontend::paint_stack();
    let mut out = console();
    out.str("scmi-fw: MPS3-AN536 Cortex-R52, EL")
        .dec(u64::from(cpu::current_el()))
        .str(", virtio-scmi for agent ")
        .dec(u64::from(shmem_device0::AGENT))
        .str(" over virtio-msg, window ")
        .hex(WINDOW.0)
        .str("+")
        .hex(WINDOW.1)
        .str(", doorbell SGI ")
        .dec(u64::from(DOORBELL_IN))
        .str(", interrupt SGI ")
        .dec(u64::from(DOORBELL_OUT))
        .str("\n");
    if let Some(gicd) = NonNull::new(GICD_BASE as *mut _) {
        // SAFETY: the manifest's GIC distributor; set up once, here, while
        // core 1 is still parked.
        unsafe { Distributor::new(gicd) }.init();
    }
    if gic_up(&[DOORBELL_IN], &[TIMER_PPI]).is_err() {
        out.str("scmi-fw: no GIC redistributor for this core\n");
        stop(1);
    }
    let cache = PocMaintenance::detect();
    // SAFETY: the manifest's shared window in DDR, shared with the driver
    // only; the device reaches it only through this bounds-checked window,
    // with the cache hook around every access.
    let Some(mem) = NonNull::new(WINDOW.0 as usize as *mut u8)
        .and_then(|p| unsafe { FixedWindow::new(p, WINDOW.1 as usize, 0, cache) })
    else {
        out.str("scmi-fw: the shared window does not fit\n");
        stop(1);
    };
    let geometry = Geometry {
        elements: shmem_device0::ELEMENTS,
        element_size: shmem_device0::ELEMENT_SIZE,
    };
    let mut dev = DEVICE.lock();
    if dev.publish(&mem, CHANNEL.0, CHANNEL.1, geometry).is_err() {
        out.str("scmi-fw: the channel does not fit the window\n");
        stop(1);
    }
    #[cfg(feature = "frontend")]
    platform_mps3_an536::start::release_secondary_cores();
    let mut bell = SgiDoorbell {
        sgi: DOORBELL_OUT,
        target: cpu::core_mpidr(1).unwrap_or(Mpidr(1)),
    };
    serve_forever(
        &mut dev,
        &mem,
        &mut bell,
        &mut GicCore::start(TICK_MS),
        &FIGURES,
    )
}

/// Ends the image: the test pair ends QEMU with `code` (semihosting); the
/// product image stops here, IRQs masked, until reset (no debugger to
/// return to on a board).
fn stop(code: i32) -> ! {
    #[cfg(feature = "frontend")]
    platform_mps3_an536::exit(code);
    #[cfg(not(feature = "frontend"))]
    {
        let _ = code;
        cpu::mask_irq();
        loop {
            cpu::wfi();
        }
    }
}

/// Prints where the image panicked (no `core::fmt`: the location only) and
/// fails the run.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut out = console();
    out.str("scmi-fw: panic");
    if let Some(l) = info.location() {
        out.str(" at ")
            .str(l.file())
            .str(":")
            .dec(u64::from(l.line()));
    }
    out.str(" (device: ")
        .dec(FIGURES.wakeups.load(Ordering::Relaxed))
        .str(" wake-ups, ")
        .dec(FIGURES.messages.load(Ordering::Relaxed))
        .str(" messages, ")
        .dec(FIGURES.dropped.load(Ordering::Relaxed))
        .str(" dropped)\n");
    stop(101)
}
