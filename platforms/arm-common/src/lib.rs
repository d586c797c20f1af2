//! What the two Arm boards share (QEMU `virt` on AArch64, the MPS3-AN536's
//! Cortex-R52 on AArch32): GICv3 SGIs and PPIs polled with IRQs masked
//! ([`gic`], over `arm-gic`), MPIDR affinity fields and the processor's
//! waits, masks and barriers ([`cpu`]), the generic timer ([`timer`]), a
//! console writer without `core::fmt` ([`console`]), stack painting
//! ([`stack`]), and the firmware loop's hardware side on top of them
//! ([`firmware`]).
//!
//! What it refuses to know about: where anything is (base addresses come
//! from the caller, the image's manifest), how a board numbers its cores,
//! its UART, how it starts its other cores, and its caches: the board
//! crates (`platform-qemu-virt`, `platform-mps3-an536`) add those. It
//! knows nothing of SCMI or virtio beyond the two traits the loop needs.
//!
//! Hardware access is compiled for `target_arch = "aarch64"` or `"arm"`
//! only; on the host the logic (the writer, MPIDR and SGI target decoding,
//! tick arithmetic) builds and its unit tests run.

#![cfg_attr(not(test), no_std)]

pub mod console;
pub mod cpu;
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
pub mod firmware;
pub mod gic;
pub mod stack;
pub mod timer;

pub use console::Print;

/// Installs exception handlers for an image that expects no exception
/// (IRQs stay masked; a fault is a bug): each of `aarch64-rt`'s handlers
/// calls `$fatal` with the exception's name (`fn(&str) -> !`: report it
/// and end the run). The image must depend on `aarch64-rt` with its
/// `exceptions` feature (AArch64 images only).
#[macro_export]
macro_rules! fatal_exceptions {
    ($fatal:path) => {
        struct FatalExceptions;

        impl aarch64_rt::ExceptionHandlers for FatalExceptions {
            extern "C" fn sync_current(_: aarch64_rt::RegisterStateRef) {
                $fatal("synchronous exception")
            }
            extern "C" fn irq_current(_: aarch64_rt::RegisterStateRef) {
                $fatal("IRQ")
            }
            extern "C" fn fiq_current(_: aarch64_rt::RegisterStateRef) {
                $fatal("FIQ")
            }
            extern "C" fn serror_current(_: aarch64_rt::RegisterStateRef) {
                $fatal("SError")
            }
            extern "C" fn sync_lower(_: aarch64_rt::RegisterStateRef) {
                $fatal("synchronous exception from a lower EL")
            }
            extern "C" fn irq_lower(_: aarch64_rt::RegisterStateRef) {
                $fatal("IRQ from a lower EL")
            }
            extern "C" fn fiq_lower(_: aarch64_rt::RegisterStateRef) {
                $fatal("FIQ from a lower EL")
            }
            extern "C" fn serror_lower(_: aarch64_rt::RegisterStateRef) {
                $fatal("SError from a lower EL")
            }
        }

        aarch64_rt::exception_handlers!(FatalExceptions);
    };
}
