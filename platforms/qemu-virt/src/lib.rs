//! Board support for QEMU `virt` on AArch64 (`-M virt,gic-version=3`).
//!
//! What it is for: the pieces a firmware image on QEMU `virt` needs below
//! the SCMI/virtio core, each a thin layer over the ecosystem crate that
//! does the real work:
//!
//! * [`console`]: a PL011 console (`arm-pl011-uart`) as a [`Print`] sink
//!   (no `core::fmt`; a `core::fmt::Write` impl exists for debugging).
//! * [`paging`]: the identity map an image boots with (device memory,
//!   then normal memory, in 1 GiB blocks) and its MAIR.
//! * [`stage1`]: a stage-1 identity map that grows and shrinks at run
//!   time, tables from a fixed pool (`aarch64-paging`): a secure
//!   partition's own map, with the normal-world memory it retrieved
//!   mapped non-secure.
//! * [`cpu`]: how `virt` numbers its cores (`Aff1 * 16 + Aff0`), over
//!   `platform-arm-common`'s MPIDR, waits and masks.
//! * [`gic`], [`timer`], `firmware`: `platform-arm-common`'s GICv3 (SGIs
//!   and PPIs polled with IRQs masked), generic timer, and the firmware
//!   loop's processor and SGI doorbell, re-exported.
//! * `psci`: starting another core with PSCI `CPU_ON` through
//!   `aarch64-rt`'s `start_core` (HVC at EL1, SMC at EL2, chosen at run
//!   time), and `exit` through semihosting.
//!
//! What it refuses to know about: where anything is. Base addresses (UART,
//! GIC distributor and redistributors), MPIDRs of other cores and the
//! memory map come from the caller (the image, from its manifest); only
//! `examples/bringup.rs` writes QEMU's addresses down. It also knows
//! nothing of SCMI, virtio, FF-A or transports, builds no page table on its
//! own (the image boots with `aarch64-rt`'s `initial-pagetable`, and a
//! partition asks [`stage1`] for each range), installs no exception
//! handler and allocates nothing.
//!
//! Hardware access is compiled for `target_arch = "aarch64"` only (PSCI and
//! semihosting for `target_os = "none"` only); on the host the crate
//! offers the logic — the writer, MPIDR and SGI target decoding, tick
//! arithmetic — which its unit tests exercise.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod console;
pub mod cpu;
pub mod paging;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod psci;
pub mod stage1;

pub use console::Print;
/// The firmware loop's processor and SGI doorbell (`platform-arm-common`).
#[cfg(target_arch = "aarch64")]
pub use platform_arm_common::firmware;
/// GICv3 (`platform-arm-common`).
pub use platform_arm_common::gic;
/// Stack painting (`platform-arm-common`).
pub use platform_arm_common::stack;
/// The generic timer (`platform-arm-common`).
pub use platform_arm_common::timer;

/// Ends the program under a debugger or emulator with `code` as the exit
/// status (semihosting `SYS_EXIT_EXTENDED`; QEMU needs `-semihosting`).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

/// Installs exception handlers for an image that expects none
/// (`platform_arm_common::fatal_exceptions`, re-exported for the images of
/// this board).
pub use platform_arm_common::fatal_exceptions;
