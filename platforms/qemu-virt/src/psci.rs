//! Starting another core with PSCI `CPU_ON` (`smccc`), through
//! `aarch64-rt`'s `start_core`: the new core enters `aarch64-rt`'s
//! `secondary_entry`, which turns its MMU and caches on with the image's
//! initial page table, sets the stack pointer to the top of the stack
//! given here and calls the closure.
//!
//! The conduit follows the exception level this image runs at: HVC at EL1
//! (the PSCI implementation is the hypervisor, or QEMU's built-in one),
//! SMC at EL2 (firmware at EL3, or QEMU with `virtualization=on`).

pub use aarch64_rt::Stack;
pub use smccc::psci::Error;
use smccc::{Hvc, Smc};

use crate::cpu::{Mpidr, current_el};

/// The PSCI conduit for code at exception level `el`: `true` for SMC.
pub const fn uses_smc(el: u8) -> bool {
    el >= 2
}

/// Starts the core with `target` at `entry`, on `stack`.
///
/// `entry` must not return (`aarch64-rt` panics if it does).
///
/// # Safety
///
/// `stack` is reserved for the started core for as long as it runs: no
/// other code uses it, it stays valid, and it is mapped with the same
/// attributes in this core's page table and in the initial page table
/// the started core enables (normal cacheable memory).
pub unsafe fn start_core<F, const N: usize>(
    target: Mpidr,
    stack: *mut Stack<N>,
    entry: F,
) -> Result<(), Error>
where
    F: FnOnce() + Send + 'static,
{
    if uses_smc(current_el()) {
        // SAFETY: the caller's contract on `stack`.
        unsafe { aarch64_rt::start_core::<Smc, F, N>(target.affinity(), stack, entry) }
    } else {
        // SAFETY: the caller's contract on `stack`.
        unsafe { aarch64_rt::start_core::<Hvc, F, N>(target.affinity(), stack, entry) }
    }
}
