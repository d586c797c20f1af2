//! AArch64 start-up on QEMU `virt` at EL1 (`aarch64-rt`): a 64 KiB boot
//! stack, and an identity map set up before any Rust code runs, so that RAM
//! is normal cacheable memory (with the MMU off every access would be
//! Device memory, where unaligned accesses and exclusives fault).

use aarch64_rt::{ExceptionHandlers, InitialPagetable, entry, exception_handlers};
use static_device::Sections;

/// Boot stack, in 4 KiB pages: room for the 16 KiB painted below the stack
/// pointer of each measurement and for the report's formatting.
const STACK_PAGES: usize = 16;

aarch64_rt::initial_pagetable!(
    InitialPagetable(platform_qemu_virt::paging::identity_map()),
    platform_qemu_virt::paging::MAIR.0
);

/// Every exception is unexpected: the default handlers panic.
struct Exceptions;

impl ExceptionHandlers for Exceptions {}

exception_handlers!(Exceptions);

entry!(main, STACK_PAGES);

/// Section bounds from `aarch64-rt`'s `image.ld`.
mod symbols {
    unsafe extern "C" {
        pub static rodata_begin: u8;
        pub static rodata_end: u8;
        pub static data_begin: u8;
        pub static data_end: u8;
        pub static bss_begin: u8;
        pub static bss_end: u8;
        pub static boot_stack_begin: u8;
        pub static boot_stack_end: u8;
    }
}

fn main(_x0: u64, _x1: u64, _x2: u64, _x3: u64) -> ! {
    use symbols::*;
    let sections = Sections {
        rodata: &raw const rodata_begin as usize..&raw const rodata_end as usize,
        data: &raw const data_begin as usize..&raw const data_end as usize,
        bss: &raw const bss_begin as usize..&raw const bss_end as usize,
        stack: &raw const boot_stack_begin as usize..&raw const boot_stack_end as usize,
    };
    // SAFETY: `main` runs on the boot stack `entry!` reserved, between
    // `boot_stack_begin` and `boot_stack_end`; this image starts no other
    // core and enables no interrupt, so nothing else uses that stack.
    unsafe {
        crate::bare::run_and_exit(
            "aarch64-unknown-none (QEMU virt, Cortex-A53, EL1)",
            sections,
        )
    }
}
