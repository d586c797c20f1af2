//! Start-up on both CPUs, entry into the two worlds, and the SMC trap.
//!
//! Built for `aarch64-unknown-none-softfloat`: EL3 code that never touches
//! the FP/SIMD registers, which belong to the worlds it interrupts
//! (`aarch64-rt`'s exception entry saves x0–x18 only).

use core::arch::{asm, global_asm};

use aarch64_rt::{
    ExceptionHandlers, InitialPagetable, RegisterStateRef, entry, exception_handlers,
};

use crate::spmc::{self, World};

/// Where QEMU's loader puts the SP package (normal-world DRAM).
pub const STAGING: u64 = 0x4800_0000;
/// The partition's load address (its manifest's `load-address`).
pub const PACKAGE: u64 = 0x0e30_0000;
/// The package's budget in secure RAM.
pub const PACKAGE_MAX: u64 = 4 << 20;
/// Where the BL33 is linked and entered.
pub const BL33: u64 = 0x6000_0000;

/// Block attributes: valid, normal memory (MAIR index 1), inner shareable,
/// accessed.
const NORMAL: usize = 1 | (1 << 2) | (3 << 8) | (1 << 10);
/// Non-secure (stage-1 NS bit): the normal world's DRAM as EL3 sees it.
const NS: usize = 1 << 5;

/// GiB 0 (secure RAM with this image and the package) and GiB 1 (the
/// normal world's DRAM, its RX/TX buffers and shares) as normal memory.
#[unsafe(no_mangle)]
static SPMC_PAGETABLE: InitialPagetable = InitialPagetable({
    let mut t = [0; 512];
    t[0] = NORMAL;
    t[1] = NORMAL | NS | 0x4000_0000;
    t
});

/// Set by CPU 0 once memory is ready: CPU 1 may start.
#[unsafe(no_mangle)]
static mut SECONDARY_GO: u64 = 0;

const SECONDARY_STACK_SIZE: usize = 0x4000;

#[repr(C, align(16))]
struct Stack([u8; SECONDARY_STACK_SIZE]);

#[unsafe(no_mangle)]
static mut SECONDARY_STACK: Stack = Stack([0; SECONDARY_STACK_SIZE]);

// `aarch64-rt`'s entry calls `enable_mmu` first, on every CPU QEMU starts
// at the entry point. CPU 0 turns the MMU on and returns into the entry;
// CPU 1 waits (WFE) until CPU 0 sets SECONDARY_GO, then turns its MMU on,
// takes its own stack and vector table and goes to `secondary_main`.
// Registers used: x8–x13 and x30; x0–x3 (the boot arguments) are kept.
global_asm!(
    r".macro mov_i, reg:req, imm:req",
    r"movz \reg, :abs_g3:\imm",
    r"movk \reg, :abs_g2_nc:\imm",
    r"movk \reg, :abs_g1_nc:\imm",
    r"movk \reg, :abs_g0_nc:\imm",
    r".endm",
    ".section .init, \"ax\"",
    ".global enable_mmu",
    "enable_mmu:",
    "mrs x12, mpidr_el1",
    "and x12, x12, #0xff",
    "cbz x12, 3f",
    "1:",
    "wfe",
    "adrp x13, SECONDARY_GO",
    "add x13, x13, :lo12:SECONDARY_GO",
    "ldr x12, [x13]",
    "cbz x12, 1b",
    "mov_i x8, {mair}",
    "mov_i x9, {sctlr}",
    "mov_i x10, {tcr}",
    "adrp x11, SPMC_PAGETABLE",
    "bl {enable_el3}",
    "adrp x9, SECONDARY_STACK",
    "add x9, x9, :lo12:SECONDARY_STACK",
    "mov x10, #{stack_size}",
    "add sp, x9, x10",
    "adrp x9, vector_table_el3",
    "add x9, x9, :lo12:vector_table_el3",
    "msr vbar_el3, x9",
    "isb",
    "b {secondary}",
    "3:",
    "mov_i x8, {mair}",
    "mov_i x9, {sctlr}",
    "mov_i x10, {tcr}",
    "adrp x11, SPMC_PAGETABLE",
    "b {enable_el3}",
    ".purgem mov_i",
    mair = const aarch64_rt::DEFAULT_MAIR,
    sctlr = const aarch64_rt::DEFAULT_SCTLR,
    tcr = const aarch64_rt::DEFAULT_TCR_EL3,
    stack_size = const SECONDARY_STACK_SIZE,
    enable_el3 = sym aarch64_rt::__private::__enable_mmu_el3,
    secondary = sym secondary_main,
);

entry!(main, 8);

/// SCR_EL3: lower ELs are AArch64 (RW).
const SCR_RW: u64 = 1 << 10;
/// SCR_EL3: the lower ELs are non-secure (NS).
const SCR_NS: u64 = 1;
/// SCTLR_EL1 at reset: RES1 bits, MMU and caches off.
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;
/// SPSR for EL1h with D, A, I and F masked.
const SPSR_EL1H: u64 = 0x3c5;

/// Drops to EL1 of the world `scr` selects at `pc` with `x0` = `arg`.
fn enter(scr: u64, pc: u64, arg: u64) -> ! {
    // SAFETY: EL3 hands this CPU to a lower EL for good: the lower EL's
    // system state is reset (SCTLR_EL1), FP/SIMD is not trapped (CPTR_EL3
    // 0), and it comes back only through the SMC vector.
    unsafe {
        asm!(
            "msr scr_el3, {scr}",
            "msr sctlr_el1, {sctlr}",
            "msr cptr_el3, xzr",
            "msr spsr_el3, {spsr}",
            "msr elr_el3, {pc}",
            "isb",
            "mov x1, xzr",
            "mov x2, xzr",
            "mov x3, xzr",
            "eret",
            scr = in(reg) scr,
            sctlr = in(reg) SCTLR_EL1_RESET,
            spsr = in(reg) SPSR_EL1H,
            pc = in(reg) pc,
            in("x0") arg,
            options(noreturn)
        )
    }
}

fn main(_: u64, _: u64, _: u64, _: u64) -> ! {
    let entry = spmc::load_partition(STAGING, PACKAGE, PACKAGE_MAX);
    // SAFETY: a word only CPU 1 reads, after CPU 0 wrote it (QEMU models
    // no caches; CPU 1 reads it with its MMU off).
    unsafe { (&raw mut SECONDARY_GO).write_volatile(1) };
    // SAFETY: SEV has no memory effects.
    unsafe { asm!("dsb sy", "sev") };
    enter(SCR_RW, entry, PACKAGE)
}

extern "C" fn secondary_main() -> ! {
    spmc::wait_partition_ready();
    enter(SCR_RW | SCR_NS, BL33, 0)
}

/// The world the trapping CPU came from (SCR_EL3.NS).
fn world() -> World {
    let scr: u64;
    // SAFETY: reading SCR_EL3 at EL3 has no side effect.
    unsafe { asm!("mrs {}, scr_el3", out(reg) scr) };
    if scr & SCR_NS != 0 {
        World::Normal
    } else {
        World::Secure
    }
}

struct Handlers;

impl ExceptionHandlers for Handlers {
    extern "C" fn sync_lower(mut r: RegisterStateRef) {
        let esr: u64;
        // SAFETY: reading ESR_EL3 at EL3 has no side effect.
        unsafe { asm!("mrs {}, esr_el3", out(reg) esr) };
        // ESR EC 0x17: SMC from AArch64.
        if esr >> 26 != 0x17 {
            spmc::fail(world(), "an exception other than SMC reached EL3");
        }
        // SAFETY: only x0–x17, the SMC's result registers, change; the
        // caller expects them to.
        let regs = unsafe { r.get_mut() };
        let mut x = [0u64; 18];
        x.copy_from_slice(&regs.registers[..18]);
        let out = spmc::smc(world(), x);
        regs.registers[..18].copy_from_slice(&out);
    }
}

exception_handlers!(Handlers);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    semihosting::println!("spmc-el3: panic: {info}");
    semihosting::process::exit(102)
}
