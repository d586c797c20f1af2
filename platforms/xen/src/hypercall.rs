//! The Xen hypercall instruction on AArch64.
//!
//! Xen's public `arch-arm.h`, "Hypercall Calling Convention": `hvc` with
//! the immediate `XEN_HYPERCALL_TAG` (0xEA1); the hypercall number in x16;
//! up to five arguments in x0–x4; the result in x0. Xen may change x16 and
//! every argument register a hypercall takes (a debug Xen poisons them on
//! purpose), and it reads and writes the memory argument pointers name.

/// The `hvc` immediate Xen takes as a hypercall.
pub const XEN_HYPERCALL_TAG: u16 = 0xea1;

/// Makes hypercall `op` with `args` (x0–x4); returns x0.
///
/// # Safety
///
/// `op` and `args` must be a valid hypercall for this guest, and every
/// pointer among `args` must point to memory that is valid, for as long
/// as the call takes, for what Xen does with it (it may read and write
/// it).
#[cfg(target_arch = "aarch64")]
pub unsafe fn call(op: u64, args: [u64; 5]) -> i64 {
    let r: u64;
    // SAFETY: the caller's contract for the memory the arguments name.
    // Registers: x0 in, result out; x1–x4 in and treated as clobbered
    // (Xen may change every argument register, whichever of them this call
    // uses); x16 in (the number) and clobbered. No other register changes.
    // No `nomem`: Xen reads and writes the argument structures, so the
    // compiler must not keep them in registers across the call.
    unsafe {
        core::arch::asm!(
            "hvc #0xea1",
            inlateout("x0") args[0] => r,
            inlateout("x1") args[1] => _,
            inlateout("x2") args[2] => _,
            inlateout("x3") args[3] => _,
            inlateout("x4") args[4] => _,
            inlateout("x16") op => _,
            options(nostack),
        );
    }
    r as i64
}
