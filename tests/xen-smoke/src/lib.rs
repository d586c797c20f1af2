//! What both smoke DomUs share: their memory map, console, the shared info
//! page with the pending events, and the verdict.
//!
//! The guest memory map of a dom0less DomU under Xen 4.17 on QEMU virt:
//! RAM from 0x4000_0000; unpopulated guest-physical space below it, where
//! the guests map Xen's pages ([`GRANT_TABLE_GPA`], [`SHARED_INFO_GPA`])
//! and the granted page ([`MAP_GPA`]).

#![no_std]

use platform_xen::{Port, Xen, XenError};

/// Where the granting DomU maps its grant table's frame 0.
pub const GRANT_TABLE_GPA: u64 = 0x3800_0000;
/// Where each DomU maps its shared info page.
pub const SHARED_INFO_GPA: u64 = 0x3900_0000;
/// Where the mapping DomU maps the granted page.
pub const MAP_GPA: u64 = 0x3900_1000;
/// The grant reference A uses (0-7 are reserved).
pub const GREF: u32 = 8;
/// A's end of the static event channel (host device tree).
pub const PORT_A: Port = 10;
/// B's end.
pub const PORT_B: Port = 11;
/// A's domain id (the first `xen,domain` node).
pub const DOM_A: u16 = 1;
/// B's.
pub const DOM_B: u16 = 2;
/// What A writes in the granted page, and B's answer.
pub const PATTERN: &[u8; 16] = b"granted by DomU1";
/// B's answer.
pub const REPLY: &[u8; 16] = b"mapped by DomU 2";

/// The stage-1 map every DomU of ours boots with
/// ([`platform_xen::guest::BOOT_MAP`]).
#[macro_export]
macro_rules! domu_pagetable {
    () => {
        aarch64_rt::initial_pagetable!(aarch64_rt::InitialPagetable(platform_xen::guest::BOOT_MAP));
    };
}

/// Prints through CONSOLEIO_write.
pub fn say<X: Xen + Copy>(mut x: X, s: &str) {
    let _ = x.console_write(s.as_bytes());
}

/// Reports a check: `name` and whether it held.
pub fn check<X: Xen + Copy>(x: X, who: &str, name: &str, r: Result<(), XenError>) -> bool {
    say(x, who);
    say(x, if r.is_ok() { ": ok: " } else { ": FAIL: " });
    say(x, name);
    say(x, "\n");
    r.is_ok()
}

/// The pending-event bit of `port` in the shared info page at `shared`
/// (`evtchn_pending`, arm64 layout): whether set; cleared if `clear`.
///
/// # Safety
///
/// `shared` is the shared info page, mapped (Xen owns it and sets bits
/// concurrently: accessed atomically).
pub unsafe fn pending(shared: *mut u8, port: Port, clear: bool) -> bool {
    use core::sync::atomic::{AtomicU64, Ordering};
    let word = platform_xen::abi::SHARED_INFO_EVTCHN_PENDING + (port as usize / 64) * 8;
    // SAFETY: inside the shared info page, 8-byte aligned; the caller's
    // contract.
    let w = unsafe { AtomicU64::from_ptr(shared.add(word).cast::<u64>()) };
    let bit = 1u64 << (port % 64);
    if clear {
        w.fetch_and(!bit, Ordering::SeqCst) & bit != 0
    } else {
        w.load(Ordering::SeqCst) & bit != 0
    }
}

/// Waits (SCHEDOP_poll) until `port` is pending, then clears it.
///
/// # Safety
///
/// As for [`pending`].
pub unsafe fn wait_event<X: Xen>(x: &mut X, shared: *mut u8, port: Port) -> Result<(), XenError> {
    // Bounded: a peer that never signals ends the wait with an error.
    for _ in 0..1000 {
        // SAFETY: the caller's contract.
        if unsafe { pending(shared, port, true) } {
            return Ok(());
        }
        x.poll(&[port], 0)?;
    }
    Err(XenError::Errno(-110))
}
