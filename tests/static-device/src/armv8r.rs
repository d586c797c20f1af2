//! Armv8-R AArch32 start-up on QEMU `mps3-an536` (`aarch32-rt`): the
//! Cortex-R52 starts in EL2, `aarch32-rt` sets up the stacks and enters
//! `main` in EL1 system mode on the SYS stack (64 KiB, `armv8r-an536.x`).
//! The MPU stays off (the architecture's default memory map); under QEMU
//! the unaligned accesses of the copies and the lock's exclusive accesses
//! work there (real hardware may want an MPU region for the BRAM).

use aarch32_rt::entry;
use static_device::Sections;

/// Section and stack bounds from `aarch32-rt`'s `link.x`.
mod symbols {
    unsafe extern "C" {
        pub static __srodata: u8;
        pub static __erodata: u8;
        pub static __sdata: u8;
        pub static __edata: u8;
        pub static __sbss: u8;
        pub static __ebss: u8;
        pub static _sys_stack_low_end: u8;
        pub static _sys_stack_high_end: u8;
    }
}

#[entry]
fn main() -> ! {
    use symbols::*;
    let sections = Sections {
        rodata: &raw const __srodata as usize..&raw const __erodata as usize,
        data: &raw const __sdata as usize..&raw const __edata as usize,
        bss: &raw const __sbss as usize..&raw const __ebss as usize,
        stack: &raw const _sys_stack_low_end as usize..&raw const _sys_stack_high_end as usize,
    };
    // SAFETY: `main` runs in system mode on the SYS stack, between
    // `_sys_stack_low_end` and `_sys_stack_high_end`; this image starts no
    // other core and leaves IRQ and FIQ masked, so nothing else uses it.
    unsafe {
        crate::bare::run_and_exit("armv8r-none-eabihf (QEMU mps3-an536, Cortex-R52)", sections)
    }
}
