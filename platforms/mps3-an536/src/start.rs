//! Running the second core under `aarch32-rt` 0.5 (see the crate
//! documentation for how `aarch32-rt` treats secondary cores).
//!
//! Core 0 runs `aarch32-rt`'s start-up (it alone initialises `.data`,
//! `.bss` and zeroes the stacks), then `kmain`. Every other core enters
//! `_asm_secondary_core_park` first: a WFE loop, touching no memory but
//! one word, until core 0 calls [`release_secondary_cores`]; then
//! `aarch32-rt` gives it its own stacks and calls the image's
//! `kmain_secondary`.
//!
//! The release flag is a word in `.bss` that must hold [`RELEASE_MAGIC`];
//! QEMU starts with zeroed RAM and core 0's start-up zeroes `.bss` before
//! `kmain`. (A warm reset that keeps RAM and restarts only some cores
//! would find the magic still there: call [`park_again`] before such a
//! reset.) The flag is written with a plain store and read with plain
//! loads: the AN536 cannot do exclusive accesses between the cores.

use core::sync::atomic::{AtomicU32, Ordering};

/// The value of the release flag that lets parked cores go on.
pub const RELEASE_MAGIC: u32 = 0x5ec0_da1a;

/// The release flag: [`RELEASE_MAGIC`] once core 0 is done with start-up.
static SECONDARY_RELEASE: AtomicU32 = AtomicU32::new(0);

/// Lets the cores parked in `_asm_secondary_core_park` continue into
/// `aarch32-rt`'s per-core start-up and `kmain_secondary`. Call from core
/// 0's `kmain`, once: `.data` and `.bss` are initialised by then, and
/// whatever core 0 stored before this call is visible to the released
/// cores (release store, DSB, SEV).
pub fn release_secondary_cores() {
    SECONDARY_RELEASE.store(RELEASE_MAGIC, Ordering::Release);
    #[cfg(target_arch = "arm")]
    {
        aarch32_cpu::asm::dsb();
        aarch32_cpu::asm::sev();
    }
}

/// Clears the release flag, so that cores reset later wait in the park
/// routine again.
pub fn park_again() {
    SECONDARY_RELEASE.store(0, Ordering::Release);
    #[cfg(target_arch = "arm")]
    aarch32_cpu::asm::dsb();
}

/// `aarch32-rt`'s park hook for secondary cores (core id in `r0`, return
/// with `bx lr`; no stack and no initialised memory yet): waits with WFE
/// until the release flag holds [`RELEASE_MAGIC`], then a DMB so that
/// every later load sees what core 0 stored before releasing.
///
/// Selected over `aarch32-rt`'s default by `EXTERN(_asm_secondary_core_park)`
/// in the image's `memory.x`.
///
/// # Safety
///
/// Only `aarch32-rt`'s reset code calls it, on a secondary core.
#[cfg(target_arch = "arm")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
#[instruction_set(arm::a32)]
pub unsafe extern "C" fn _asm_secondary_core_park() {
    core::arch::naked_asm!(
        "ldr r1, ={flag}",
        "ldr r2, ={magic}",
        "1:",
        "ldr r3, [r1]",
        "cmp r3, r2",
        "beq 2f",
        "wfe",
        "b 1b",
        "2:",
        "dmb",
        "bx lr",
        flag = sym SECONDARY_RELEASE,
        magic = const RELEASE_MAGIC,
    )
}
