//! Start-up, the device and the loop (see the crate doc).

use core::ptr::NonNull;

use aarch64_paging::descriptor::El1Attributes;
use aarch64_rt::{InitialPagetable, entry};
use arm_ffa::FfaError;
use platform_qemu_virt::Print;
use platform_qemu_virt::paging::{MAIR, NORMAL_MEMORY};
use platform_qemu_virt::stage1::{Stage1, Table, TablePool};
use platform_qemu_virt::timer;
use scmi_server::Server;
use smccc::Smc;
use spin::mutex::SpinMutex;
use transport_ffa::{Board, Buffers, FfaDevice, Options, PAGE, abort, boot, console_log};
use virtio_backend::{Coherent, FixedWindow, RegionTable};
use virtio_scmi::{DEFAULT_RING_FEATURES, VirtioScmi};

use crate::generated::{
    CONFIG, LOAD_ADDRESS, MANIFEST_FNV1A, MANIFEST_LEN, MESSAGING_METHOD, NOTIFICATION_SUPPORT,
    PACKAGE_BUDGET, PLATFORM, Platform, ffa_device0,
};

/// Where the package lies (the manifest's `load-address`).
const PACKAGE: u64 = match LOAD_ADDRESS {
    Some(a) => a,
    None => panic!("the manifest needs a load-address"),
};
/// The package's header and manifest pages, before the image: where the
/// SPMC leaves the boot information and the manifest it names.
const BOOT_AREA: u64 = manifest::IMG_OFFSET as u64;
/// Driver memory mapped at a time: constituents of retrieved shares.
const REGIONS: usize = 16;
/// Translation tables for the stage-1 map.
const TABLES: usize = 16;
/// The boot stack, in 4 KiB pages.
const STACK_PAGES: usize = 4;

mod manifest {
    /// `manifest-tool spkg` puts the image here (Hafnium's default).
    pub const IMG_OFFSET: u32 = 0x4000;
}

/// The SCMI server: the manifest's one agent, eight queued messages.
type ScmiServer = Server<Platform, 1, 8>;
/// The device core: virtio-scmi, two queues, no packed rings.
type Core = virtio_backend::DeviceCore<VirtioScmi<ScmiServer>, 2, 0>;
/// The partition: virtio-scmi over the FF-A bus, no packed rings.
type Device = FfaDevice<
    'static,
    Smc,
    VirtioScmi<ScmiServer>,
    SpBoard,
    2,
    0,
    { ffa_device0::MAX_AREAS },
    REGIONS,
>;

/// The virtio-scmi device, built at compile time: its state (the SCMI
/// server's included) stays off the stack.
static CORE: SpinMutex<Core> = SpinMutex::new(
    VirtioScmi::with_options(
        Server::new(&CONFIG, PLATFORM),
        ffa_device0::AGENT,
        virtio_scmi::Options {
            p2a: ffa_device0::P2A,
            ring_features: DEFAULT_RING_FEATURES,
            cmdq_size: ffa_device0::CMDQ_SIZE,
            eventq_size: ffa_device0::EVENTQ_SIZE,
        },
    )
    .into_core(),
);

/// A page the SPMC and we share: RX or TX.
#[repr(C, align(4096))]
struct Page([u8; PAGE]);

static mut RX: Page = Page([0; PAGE]);
static mut TX: Page = Page([0; PAGE]);
static mut POOL: [Table; TABLES] = [Table::EMPTY; TABLES];

// The boot map: GiB 0 (where the secure DRAM and the package are) as
// normal memory, until `main` installs the partition's own map.
aarch64_rt::initial_pagetable!(
    InitialPagetable({
        let mut t = [0; 512];
        t[0] = NORMAL_MEMORY.bits();
        t
    }),
    MAIR.0
);

entry!(main, STACK_PAGES);

/// Output through FFA_CONSOLE_LOG.
struct Console;

impl Print for Console {
    fn write_bytes(&mut self, bytes: &[u8]) {
        console_log::<Smc>(bytes);
    }
}

/// The board for `transport-ffa`: retrieved memory into the stage-1 map
/// and the region table; time from the generic counter.
struct SpBoard {
    stage1: Stage1<TABLES>,
}

impl Board<'static, REGIONS> for SpBoard {
    fn map(
        &mut self,
        mem: &mut RegionTable<'static, REGIONS>,
        bus: u64,
        pa: u64,
        pages: u32,
        writable: bool,
    ) -> bool {
        let len = u64::from(pages) * PAGE as u64;
        if self.stage1.map_non_secure(pa, len, writable).is_err() {
            return false;
        }
        let added = NonNull::new(pa as usize as *mut u8).is_some_and(|host| {
            // SAFETY: `pa..pa + len` is normal-world memory the SPMC just
            // gave us (FFA_MEM_RETRIEVE_REQ) and is mapped above at its
            // own address; it stays mapped until `unmap`, which takes it
            // out of the table first. The table reaches it through raw
            // pointers only.
            unsafe { mem.add(bus, host, len as usize) }.is_ok()
        });
        if !added {
            self.stage1.unmap(pa, len);
        }
        added
    }

    fn unmap(&mut self, mem: &mut RegionTable<'static, REGIONS>, bus: u64, pa: u64, pages: u32) {
        mem.remove(bus);
        self.stage1.unmap(pa, u64::from(pages) * PAGE as u64);
    }

    fn now_ms(&self) -> u64 {
        // Whole-number arithmetic (no `Duration`, whose constructor can
        // panic): the same milliseconds, rounded down.
        timer::ticks_to_ms(timer::counter(), timer::frequency())
    }
}

/// Linker symbols of `aarch64-rt`'s `image.ld`.
mod symbols {
    unsafe extern "C" {
        pub static text_begin: u8;
        pub static text_end: u8;
        pub static rodata_begin: u8;
        pub static rodata_end: u8;
        pub static data_begin: u8;
        pub static dma_region: u8;
    }
}

/// The partition's own map: the boot area read-only, code read-only and
/// executable, read-only data, and data, bss and stacks read-write, all
/// secure; everything else unmapped until retrieved. A map that does not
/// fit ends the partition (FFA_ERROR NO_MEMORY) before it is dropped:
/// `aarch64-paging` panics when an active map is dropped, and this one
/// never is.
fn stage1() -> Stage1<TABLES> {
    let addr = |s: *const u8| s as u64;
    let Some(tables) = NonNull::new(&raw mut POOL) else {
        abort::<Smc>(FfaError::NoMemory)
    };
    // SAFETY: the pool is a static of the image (mapped at its own
    // address, read-write, by the boot map and by the map built here);
    // this is its only user.
    let pool = unsafe { TablePool::new(tables, || abort::<Smc>(FfaError::NoMemory)) };
    let mut s = Stage1::new(pool, (PACKAGE, PACKAGE_BUDGET));
    let ro = NORMAL_MEMORY.union(El1Attributes::READ_ONLY);
    let xn = El1Attributes::UXN.union(El1Attributes::PXN);
    let text = (
        addr(&raw const symbols::text_begin),
        addr(&raw const symbols::text_end),
    );
    let rodata = (
        addr(&raw const symbols::rodata_begin),
        addr(&raw const symbols::rodata_end),
    );
    let data = (
        addr(&raw const symbols::data_begin),
        addr(&raw const symbols::dma_region),
    );
    for (range, attrs) in [
        ((PACKAGE, PACKAGE + BOOT_AREA), ro.union(xn)),
        (text, ro.union(El1Attributes::UXN)),
        (rodata, ro.union(xn)),
        (data, NORMAL_MEMORY.union(xn)),
    ] {
        if range.1 > range.0 && s.map(range.0, range.1 - range.0, attrs).is_err() {
            abort::<Smc>(FfaError::NoMemory)
        }
    }
    s
}

/// The manifest the boot information at `x0` names, if it is ours.
fn check_boot_info(x0: u64) -> Result<(), FfaError> {
    // FF-A §5.4.3: the blob and what it names lie in the partition's
    // memory; ours is the package's boot area, before the image.
    if !(PACKAGE..PACKAGE + BOOT_AREA).contains(&x0) {
        return Err(FfaError::InvalidParameters);
    }
    // SAFETY: `x0..PACKAGE + BOOT_AREA` is the package's header and
    // manifest pages, mapped (normal memory, GiB 0 of the boot map) and
    // written by the SPMC before it started us; nothing writes them now.
    let area = unsafe {
        core::slice::from_raw_parts(
            x0 as usize as *const u8,
            (PACKAGE + BOOT_AREA - x0) as usize,
        )
    };
    let m = boot::manifest(area).map_err(|_| FfaError::InvalidParameters)?;
    if m.len() != MANIFEST_LEN || boot::fnv1a(m) != MANIFEST_FNV1A {
        return Err(FfaError::InvalidParameters);
    }
    Ok(())
}

fn main(x0: u64, _x1: u64, _x2: u64, _x3: u64) -> ! {
    #[cfg(feature = "measure")]
    measure::paint();
    let mut out = Console;
    if let Err(e) = check_boot_info(x0) {
        out.str("scmi-sp: the boot information does not lead to this partition's manifest\n");
        abort::<Smc>(e)
    }
    let stage1 = stage1();
    // SAFETY: the map covers the image (code, data, bss, stacks, the
    // RX/TX pages and the pool, all inside `data`) and the boot area with
    // the attributes they had in the boot map, minus write and execute
    // where they are not needed; TCR and MAIR are `aarch64-rt`'s.
    unsafe { stage1.activate() };
    // SAFETY: RX and TX are ours alone from here on (the SPMC writes RX
    // only while we are in a call); the windows reach them through raw
    // pointers only.
    let bufs = unsafe {
        let rx = NonNull::new((&raw mut RX).cast::<u8>())
            .map(|p| FixedWindow::new(p, PAGE, 0, Coherent));
        let tx = NonNull::new((&raw mut TX).cast::<u8>())
            .map(|p| FixedWindow::new(p, PAGE, 0, Coherent));
        match (rx.flatten(), tx.flatten()) {
            (Some(rx), Some(tx)) => Buffers {
                rx,
                tx,
                rx_address: (&raw const RX) as u64,
                tx_address: (&raw const TX) as u64,
            },
            _ => abort::<Smc>(FfaError::NoMemory),
        }
    };
    let indirect = MESSAGING_METHOD.first().is_some_and(|m| m & (1 << 2) != 0);
    // The device is this loop's for good: the guard is never released.
    let core = spin::mutex::SpinMutexGuard::leak(CORE.lock());
    let mut dev: Device = FfaDevice::new(
        core,
        SpBoard { stage1 },
        bufs,
        Options {
            notifications: NOTIFICATION_SUPPORT,
            indirect,
        },
    );
    match dev.boot() {
        Ok(id) => {
            out.str("scmi-sp: virtio-scmi over virtio-msg on the FF-A bus, endpoint ")
                .hex(u64::from(id))
                .str(", agent ")
                .dec(u64::from(ffa_device0::AGENT))
                .str(", up to ")
                .dec(ffa_device0::MAX_AREAS as u64)
                .str(" shared areas\n");
        }
        Err(e) => {
            out.str("scmi-sp: boot call ")
                .hex(u64::from(e.function))
                .str(" failed\n");
            abort::<Smc>(e.error)
        }
    }
    #[cfg(not(feature = "measure"))]
    dev.run();
    #[cfg(feature = "measure")]
    measure::run(&mut dev)
}

/// The measuring loop (feature `measure`).
#[cfg(feature = "measure")]
mod measure {
    use super::{Console, Device};
    use platform_qemu_virt::{Print, stack, timer};

    /// Messages between two reports.
    const MEASURE_EVERY: u64 = 600;

    mod symbols {
        unsafe extern "C" {
            pub static boot_stack_begin: u8;
            pub static boot_stack_end: u8;
        }
    }

    /// Paints the unused part of the stack (called first thing).
    pub fn paint() {
        // SAFETY: the boot stack starts at `boot_stack_begin` and this code
        // runs on it, below its top; nothing else uses it.
        unsafe { stack::paint(&raw const symbols::boot_stack_begin as usize) };
    }

    pub fn run(dev: &mut Device) -> ! {
        let (mut ticks, mut messages) = (0u64, 0u64);
        dev.run_with(move |dev, got| {
            let start = timer::counter();
            let next = dev.dispatch(got);
            ticks += timer::counter().wrapping_sub(start);
            messages += 1;
            if messages % MEASURE_EVERY == 0 {
                let bottom = &raw const symbols::boot_stack_begin as usize;
                let top = &raw const symbols::boot_stack_end as usize;
                // SAFETY: the boot stack, painted at boot, mapped.
                let depth = unsafe { stack::depth(bottom, top) };
                // Under `-icount shift=4` an instruction takes 16 ns:
                // 62.5 MHz of counter frequency make one tick each.
                let per_message = ticks * 62_500_000 / timer::frequency().max(1) / messages;
                Console
                    .str("scmi-sp: measure: ")
                    .dec(messages)
                    .str(" messages, ")
                    .dec(per_message)
                    .str(" instructions per message served (under -icount shift=4), deepest stack ")
                    .dec(depth as u64)
                    .str(" of ")
                    .dec((top - bottom) as u64)
                    .str(" bytes\n");
            }
            next
        })
    }
}

/// An exception (none is expected): says which one came and ends the
/// partition with FFA_ERROR.
fn fatal(what: &str) -> ! {
    Console.str("scmi-sp: unexpected ").str(what).str("\n");
    abort::<Smc>(FfaError::Aborted)
}

platform_qemu_virt::fatal_exceptions!(fatal);

/// Says where it panicked (no `core::fmt`: the location only) and ends
/// the partition with FFA_ERROR.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    platform_qemu_virt::console::report_panic(&mut Console, "scmi-sp", info);
    abort::<Smc>(FfaError::Aborted)
}
