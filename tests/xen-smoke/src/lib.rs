//! What both smoke DomUs share: their memory map, console, the shared info
//! page with the pending events, and the verdict.
//!
//! The guest memory map of a dom0less DomU under Xen 4.17 on QEMU virt:
//! RAM from 0x4000_0000; unpopulated guest-physical space below it, where
//! the guests map Xen's pages ([`GRANT_TABLE_GPA`], [`SHARED_INFO_GPA`])
//! and the granted page ([`MAP_GPA`]).

#![no_std]

use platform_xen::{Port, SharedInfo, Xen, XenError};

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

/// The shared info page at [`SHARED_INFO_GPA`].
///
/// # Safety
///
/// The caller mapped it there (`XENMEM_add_to_physmap`); GiB 0 of the
/// boot map is normal memory.
pub unsafe fn shared_info() -> SharedInfo {
    let page = core::ptr::NonNull::new(SHARED_INFO_GPA as usize as *mut u8);
    // SAFETY: the caller's contract.
    unsafe { SharedInfo::at(page.unwrap_or(core::ptr::NonNull::dangling())) }
}

/// Grants `frame` to `dom` as grant `gref` with `flags` (`GTF_*`), in the
/// grant table's frame 0 at [`GRANT_TABLE_GPA`] (512 entries).
///
/// # Safety
///
/// The caller mapped that frame there (`XENMEM_add_to_physmap`) and owns
/// entry `gref` (< 512).
pub unsafe fn grant(gref: u32, dom: u16, frame: u32, flags: u16) {
    let e = grant_entry(gref);
    // SAFETY: the caller's contract. Frame and domain first, then the
    // flags behind a barrier (grant_table.h: the entry is live once the
    // flags are written).
    unsafe {
        (&raw mut (*e).domid).write_volatile(dom);
        (&raw mut (*e).frame).write_volatile(frame);
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        (&raw mut (*e).flags).write_volatile(flags);
    }
}

/// Entry `gref` of the grant table's frame 0 at [`GRANT_TABLE_GPA`].
pub fn grant_entry(gref: u32) -> *mut platform_xen::abi::GrantEntryV1 {
    (GRANT_TABLE_GPA as usize as *mut platform_xen::abi::GrantEntryV1).wrapping_add(gref as usize)
}

/// Waits (SCHEDOP_poll) until `port` is pending, then clears it; gives up
/// after 1000 polls (a peer that never signals ends the wait with an
/// error).
pub fn wait_event<X: Xen>(x: &mut X, shared: SharedInfo, port: Port) -> Result<(), XenError> {
    for _ in 0..1000 {
        if shared.take(port) {
            return Ok(());
        }
        x.poll(&[port], 0)?;
    }
    Err(XenError::Errno(-110))
}
