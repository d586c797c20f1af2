//! Start-up and the run (see the crate doc).

use core::arch::naked_asm;
use core::fmt::Write;
use core::ptr::NonNull;

use aarch64_rt::entry;
use firmware_frontend::{Clock, QUEUE, TIMEOUT, WindowHal, install_at, spin, tour_over};
use platform_qemu_virt::console::Pl011Console;
use platform_qemu_virt::paging::{MAIR, identity_map};
use platform_qemu_virt::{Print, cpu, timer};
use scmi_agent::agent::{AgentOptions, ScmiAgent};
use scmi_agent::ffa_driver::{Events, FfaDriver, Mailboxes, Setup};
use scmi_agent::probe::Prober;
use smccc::Smc;
use virtio_backend::{Coherent, FixedWindow};
use virtio_drivers::transport::Transport;

/// UART0 (PL011) of QEMU virt.
const UART: usize = 0x0900_0000;
/// The virtio-msg device partition: the first SP Hafnium loads.
const PARTITION: u16 = 0x8001;
/// The area id the pool is shared as.
const AREA: u16 = 1;
/// The shared pool: DMA pages (virtqueues) first, the heap after.
const POOL_LEN: usize = 512 << 10;
const DMA_LEN: usize = 64 << 10;
/// The boot stack, in 4 KiB pages.
const STACK_PAGES: usize = 16;
/// SENSOR_READING_GET round trips measured after the tour.
const ROUND_TRIPS: u64 = 200;

#[repr(C, align(4096))]
struct Pool([u8; POOL_LEN]);

#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// What the partition reaches: shared whole with FFA_MEM_SHARE.
static mut POOL: Pool = Pool([0; POOL_LEN]);
static mut RX: Page = Page([0; 4096]);
static mut TX: Page = Page([0; 4096]);

/// The identity map the front-end runs with: GiB 0 device memory (the
/// UART), GiB 1 normal memory (the image, its pool, RX and TX).
#[repr(C, align(4096))]
struct Table([usize; 512]);

#[unsafe(no_mangle)]
static FRONTEND_PAGETABLE: Table = Table(identity_map());

/// TCR_EL1: 4 KiB granule, 39-bit addresses (T0SZ 25, a level-1 root as
/// [`identity_map`]), write-back inner-shareable walks, TTBR1 walks off;
/// IPS is copied from ID_AA64MMFR0_EL1 at run time.
const TCR_EL1: u64 = 25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23);
/// SCTLR_EL1 bits set: M (MMU), C (data cache), I (instruction cache).
const SCTLR_ON: u64 = (1 << 0) | (1 << 2) | (1 << 12);

/// Called by `aarch64-rt`'s entry before anything else (x0–x3 hold the
/// boot arguments, x30 the return address; only x9–x11 are used here).
///
/// At EL2 (TF-A's BL33 entry on a CPU with EL2): EL1 is made AArch64
/// (HCR_EL2.RW) with the physical counter and timer open to it
/// (CNTHCTL_EL2.EL1PCTEN/EL1PCEN) and no virtual offset, then `eret` to
/// EL1h with interrupts masked, at the label below. At EL1: MAIR, TCR and
/// TTBR0 for [`FRONTEND_PAGETABLE`], stale TLB entries invalidated, MMU
/// and caches on.
///
/// # Safety
///
/// Called once, from `aarch64-rt`'s entry, with the MMU off.
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn enable_mmu() {
    naked_asm!(
        "mrs x9, CurrentEL",
        "cmp x9, #(2 << 2)",
        "b.ne 1f",
        "mov x9, #(1 << 31)",
        "msr hcr_el2, x9",
        "mov x9, #3",
        "msr cnthctl_el2, x9",
        "msr cntvoff_el2, xzr",
        "mov x9, #0x3c5",
        "msr spsr_el2, x9",
        "adr x9, 1f",
        "msr elr_el2, x9",
        "isb",
        "eret",
        "1:",
        "ldr x9, ={mair}",
        "msr mair_el1, x9",
        "adrp x9, FRONTEND_PAGETABLE",
        "add x9, x9, :lo12:FRONTEND_PAGETABLE",
        "msr ttbr0_el1, x9",
        "ldr x10, ={tcr}",
        "mrs x11, id_aa64mmfr0_el1",
        "bfi x10, x11, #32, #3",
        "msr tcr_el1, x10",
        "isb",
        "tlbi vmalle1",
        "ic iallu",
        "dsb nsh",
        "isb",
        "mrs x9, sctlr_el1",
        "ldr x10, ={sctlr}",
        "orr x9, x9, x10",
        "msr sctlr_el1, x9",
        "isb",
        "ret",
        mair = const MAIR.0,
        tcr = const TCR_EL1,
        sctlr = const SCTLR_ON,
    )
}

entry!(main, STACK_PAGES);

fn console() -> Pl011Console<'static> {
    // SAFETY: UART0, identity-mapped as device memory (GiB 0); this image
    // is its only user in the normal world.
    unsafe { Pl011Console::from_base(NonNull::new(UART as *mut _).unwrap_or(NonNull::dangling())) }
}

fn now() -> core::time::Duration {
    timer::since_boot()
}

/// A window over one of the RX/TX pages.
fn page(p: *mut Page) -> Option<FixedWindow<'static>> {
    // SAFETY: a static page of this image, mapped as normal memory; only
    // the SPMC (while this core is in a call) and this window touch it,
    // through raw pointers.
    NonNull::new(p.cast::<u8>()).and_then(|p| unsafe { FixedWindow::new(p, 4096, 0, Coherent) })
}

fn main(_x0: u64, _x1: u64, _x2: u64, _x3: u64) -> ! {
    let mut out = console();
    out.str("ffa-frontend: normal world, EL")
        .dec(u64::from(cpu::current_el()))
        .str(", driving the virtio-msg device partition ")
        .hex(u64::from(PARTITION))
        .str(" over the FF-A bus\n");
    let base = (&raw mut POOL) as usize;
    // SAFETY: the pool is this image's, mapped read-write (GiB 1), and
    // given whole to the front-end's DMA pages and heap here, once; the
    // partition reaches it only after the share below.
    unsafe {
        install_at(
            base,
            POOL_LEN,
            u64::from(AREA) << 48,
            0..DMA_LEN,
            DMA_LEN..POOL_LEN,
        )
    };
    let (Some(rx), Some(tx)) = (page(&raw mut RX), page(&raw mut TX)) else {
        fail("the RX/TX pages do not fit")
    };
    let bufs = Mailboxes {
        rx,
        tx,
        rx_address: (&raw const RX) as u64,
        tx_address: (&raw const TX) as u64,
    };
    let setup = Setup {
        partition: PARTITION,
        memory: (base as u64, (POOL_LEN / 4096) as u32),
        area_id: AREA,
        events: Events::Poll,
    };
    let driver = match FfaDriver::<Smc>::connect(bufs, setup) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(out, "ffa-frontend: the partition did not bind: {e:?}");
            fail("no device")
        }
    };
    let _ = writeln!(
        out,
        "virtio-msg: bound over the FF-A bus, device {}, pool shared as area {AREA}",
        driver.dev_num()
    );
    let clock = Clock { now, idle: spin };
    let (mut o, mut agent) = tour_over::<_, WindowHal, _>(driver, clock, &mut out);
    // The cost of the whole FF-A path: instructions per SENSOR_READING_GET
    // round trip on this core (counter ticks under QEMU `-icount shift=4`):
    // the driver, the world switches through EL3, the SPMC and the
    // partition.
    let sent = agent.transport().requests();
    let start = timer::counter();
    let mut ok = 0;
    for _ in 0..ROUND_TRIPS {
        ok += u64::from(agent.callw(0x15, 0x6, &[0, 0], 0).status == 0);
    }
    // Under `-icount shift=4` an instruction takes 16 ns: 62.5 MHz of
    // counter frequency make one tick each (`-cpu max` counts at 1 GHz).
    let insn = |ticks: u64| ticks * 62_500_000 / timer::frequency().max(1);
    let ticks = timer::counter().wrapping_sub(start);
    let sent = agent.transport().requests() - sent;
    if ok == ROUND_TRIPS {
        o.passed += 1;
    } else {
        o.failed += 1;
        let _ = writeln!(
            out,
            "FAIL: measure: {ok} of {ROUND_TRIPS} readings succeeded"
        );
    }
    let _ = writeln!(
        out,
        "measure: {ROUND_TRIPS} SENSOR_READING_GET round trips, {} instructions per round trip on this core (under -icount shift=4), {}.{:02} DIRECT_REQ2 each",
        insn(ticks) / ROUND_TRIPS,
        sent / ROUND_TRIPS,
        sent % ROUND_TRIPS * 100 / ROUND_TRIPS
    );
    // The floor: a direct request the partition drops at once (an empty
    // frame), through the same SPMC and world switches.
    let start = timer::counter();
    for _ in 0..ROUND_TRIPS {
        let _ = agent
            .transport()
            .request(&[0; 8], scmi_agent::ffa_driver::DEVICE_UUID);
    }
    let floor = insn(timer::counter().wrapping_sub(start)) / ROUND_TRIPS;
    let _ = writeln!(
        out,
        "measure: {floor} instructions per empty DIRECT_REQ2 round trip (the SPMC's and EL3's share)"
    );
    // The device restarts cleanly: the driver resets the bus (the partition
    // relinquishes and unmaps the area), takes its memory back, shares it
    // anew and binds again; Linux's probe finds a fresh device.
    let channel = agent.into_transport().into_inner();
    let again = channel
        .reset_and_reclaim()
        .map(|()| channel.into_mailboxes())
        .and_then(|b| FfaDriver::<Smc>::bind(b, setup));
    match again {
        Ok(d) => {
            let status = d.get_status().bits();
            let opts = AgentOptions {
                patience: TIMEOUT,
                now,
                idle: spin,
                ..AgentOptions::default()
            };
            let mut a: ScmiAgent<_, WindowHal, QUEUE, QUEUE> = ScmiAgent::new(d, opts);
            let p = Prober::run(&mut a);
            if status == 0 && p.complaints.is_empty() {
                o.passed += 1;
                let _ = writeln!(
                    out,
                    "restart: area relinquished and reclaimed, shared again, device found reset and probed"
                );
            } else {
                o.failed += 1;
                let _ = writeln!(
                    out,
                    "FAIL: restart: status {status:#x} after the reset, probe complaints {:?}",
                    p.complaints
                );
            }
        }
        Err(e) => {
            o.failed += 1;
            let _ = writeln!(out, "FAIL: restart: {e:?}");
        }
    }
    let _ = writeln!(
        out,
        "result: {} checks passed, {} failed",
        o.passed, o.failed
    );
    platform_qemu_virt::exit(if o.failed == 0 { 0 } else { 1 })
}

fn fail(why: &str) -> ! {
    console().str("ffa-frontend: FAILED: ").str(why).str("\n");
    platform_qemu_virt::exit(1)
}

// No exception is expected: each handler says which one came and fails
// the run.
platform_qemu_virt::fatal_exceptions!(fail);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(console(), "ffa-frontend: panic: {info}");
    platform_qemu_virt::exit(101)
}
