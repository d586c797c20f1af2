//! Start-up, the static device and the service loop (see the crate doc).

use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use aarch64_rt::{InitialPagetable, entry};
use platform_qemu_virt::Print;
use platform_qemu_virt::console::Pl011Console;
use platform_qemu_virt::cpu::{self, Mpidr};
use platform_qemu_virt::firmware::{GicCore, SgiDoorbell};
use platform_qemu_virt::gic::{self, Distributor};
use scmi_server::Server;
use spin::mutex::SpinMutex;
use transport_shmem::{Figures, ShmemDevice, serve_forever};
use virtio_backend::amp::Geometry;
use virtio_backend::msg::Revision;
use virtio_backend::{Coherent, FixedWindow};
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

/// The memory map the initial page table covers (1 GiB blocks): devices in
/// the first GiB, RAM and the window in the second. The manifest must fit.
const fn in_gib(base: Option<u64>, size: u64, gib: u64) -> bool {
    match base {
        Some(b) => b >= gib << 30 && b + size <= (gib + 1) << 30,
        None => true,
    }
}
const _: () = assert!(
    in_gib(device_regions::UART.base, device_regions::UART.size, 0)
        && in_gib(device_regions::GICD.base, device_regions::GICD.size, 0)
        && in_gib(device_regions::GICR.base, device_regions::GICR.size, 0)
        && in_gib(Some(WINDOW.0), WINDOW.1, 1)
        && shmem_device0::DOORBELL_IN < 16
        && shmem_device0::DOORBELL_OUT < 16,
    "the manifest's regions fit the page table and its doorbells are SGIs"
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

/// Boot stack of core 0, in 4 KiB pages (the test pair measures the
/// deepest use: about 4 KiB).
const STACK_PAGES: usize = 2;

aarch64_rt::initial_pagetable!(
    InitialPagetable(platform_qemu_virt::paging::identity_map()),
    platform_qemu_virt::paging::MAIR.0
);

// No exception is expected (IRQs stay masked): each handler says which
// one came and stops (`aarch64-rt`'s defaults would panic).
platform_qemu_virt::fatal_exceptions!(fatal);

/// An unexpected exception: reported on the console, then [`stop`].
fn fatal(what: &str) -> ! {
    console().str("scmi-fw: unexpected ").str(what).str("\n");
    stop(102)
}

/// Ends the image: the test pair ends QEMU with `code` (semihosting); the
/// product image stops here, IRQs masked, until reset (no debugger to
/// return to on a board).
fn stop(code: i32) -> ! {
    #[cfg(feature = "frontend")]
    platform_qemu_virt::exit(code);
    #[cfg(not(feature = "frontend"))]
    {
        let _ = code;
        cpu::mask_irq();
        loop {
            cpu::wfi();
        }
    }
}

entry!(main, STACK_PAGES);

/// Bounds of core 0's boot stack, from `aarch64-rt`'s `image.ld`.
#[cfg(feature = "frontend")]
mod symbols {
    unsafe extern "C" {
        pub static boot_stack_begin: u8;
        pub static boot_stack_end: u8;
    }
}

/// The deepest core 0's stack has been (stack painting at boot), and its
/// size, in bytes. The test pair measures it; the product does not paint.
#[cfg(feature = "frontend")]
pub fn stack_depth() -> (usize, usize) {
    let bottom = &raw const symbols::boot_stack_begin as usize;
    let top = &raw const symbols::boot_stack_end as usize;
    // SAFETY: core 0's boot stack, painted in `main`, mapped.
    (
        unsafe { platform_qemu_virt::stack::depth(bottom, top) },
        top - bottom,
    )
}

fn console() -> Pl011Console<'static> {
    // SAFETY: the manifest's UART is a PL011 identity-mapped as device
    // memory (the first GiB); core 0 is its only user (the front-end
    // prints through semihosting).
    unsafe {
        Pl011Console::from_base(NonNull::new(UART_BASE as *mut _).unwrap_or(NonNull::dangling()))
    }
}

/// Brings up this core's GIC interface with `sgis` and `ppis` enabled.
pub fn gic_up(sgis: &[u8], ppis: &[u32]) -> Result<(), gic::Error> {
    let gicr = NonNull::new(GICR_BASE as *mut _).ok_or(gic::Error::NoRedistributor(0))?;
    // SAFETY: the manifest's GICR frames, identity-mapped as device
    // memory; each core touches only its own frame after the search.
    unsafe { gic::this_core_up(gicr, sgis, ppis) }
}

fn main(_x0: u64, _x1: u64, _x2: u64, _x3: u64) -> ! {
    #[cfg(feature = "frontend")]
    // SAFETY: `main` runs on core 0's boot stack, which starts at
    // `boot_stack_begin` and nothing else uses.
    unsafe {
        platform_qemu_virt::stack::paint(&raw const symbols::boot_stack_begin as usize)
    };
    let mut out = console();
    out.str("scmi-fw: QEMU virt, EL")
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
        // SAFETY: the manifest's GIC distributor, identity-mapped as device
        // memory; set up once, here, before any other core runs.
        unsafe { Distributor::new(gicd) }.init();
    }
    if gic_up(&[DOORBELL_IN], &[TIMER_PPI]).is_err() {
        out.str("scmi-fw: no GIC redistributor for this core\n");
        stop(1);
    }
    // SAFETY: the manifest's shared window, identity-mapped as normal
    // memory and shared with the driver only; the device reaches it only
    // through this bounds-checked window.
    let Some(mem) = NonNull::new(WINDOW.0 as usize as *mut u8)
        .and_then(|p| unsafe { FixedWindow::new(p, WINDOW.1 as usize, 0, Coherent) })
    else {
        out.str("scmi-fw: the shared window does not fit\n");
        stop(1);
    };
    let geometry = Geometry {
        elements: shmem_device0::ELEMENTS,
        element_size: shmem_device0::ELEMENT_SIZE,
    };
    if DEVICE
        .lock()
        .publish(&mem, CHANNEL.0, CHANNEL.1, geometry)
        .is_err()
    {
        out.str("scmi-fw: the channel does not fit the window\n");
        stop(1);
    }
    #[cfg(feature = "frontend")]
    crate::frontend::start();
    serve(&mem)
}

/// The loop (see the crate doc): `transport-shmem`'s, on this core's GIC
/// and virtual timer, ringing core 1.
fn serve(mem: &FixedWindow<'_>) -> ! {
    let mut dev = DEVICE.lock();
    let mut bell = SgiDoorbell {
        sgi: DOORBELL_OUT,
        target: cpu::core_mpidr(1).unwrap_or(Mpidr(1)),
    };
    serve_forever(
        &mut dev,
        mem,
        &mut bell,
        &mut GicCore::start(TICK_MS),
        &FIGURES,
    )
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
        .dec(FIGURES.kicks.load(Ordering::Relaxed))
        .str(" kicks, ")
        .dec(FIGURES.dropped.load(Ordering::Relaxed))
        .str(" dropped)\n");
    stop(101)
}
