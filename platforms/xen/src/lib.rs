//! Xen on Arm, as a bare-metal AArch64 DomU sees it.
//!
//! # What it is for
//!
//! A virtio-msg transport between two Xen guests needs a handful of
//! hypercalls: send an event on an inter-domain channel, wait for one,
//! map or copy a page another domain granted, and print. This crate is
//! those calls and nothing else:
//!
//! * [`hypercall`]: the instruction (`hvc #0xEA1`, the number in x16, up to
//!   five arguments in x0–x4, the result in x0), one `asm!` block whose
//!   SAFETY comment names every register Xen may change;
//! * [`abi`]: the argument structures of the calls used, laid out as Xen's
//!   public headers define them (checked by size and offset);
//! * [`Xen`]: the calls as a trait, so that transport logic runs in host
//!   tests against a double; [`Hvc`] is the real one (AArch64 only);
//! * [`guest`]: what the guest reads that Xen writes — the pending bits
//!   of the shared info page, the runstate area — and [`SystemClock`],
//!   Xen's time (which `SCHEDOP_poll` timeouts count in) estimated from the
//!   runstate's entry times.
//!
//! # What it refuses to know about
//!
//! Virtio, SCMI, the transport built on it, which pages or ports a guest
//! uses (the guest's manifest and Xen's device tree say), and XenStore
//! (dom0less guests with `xen,enhanced = "no-xenstore"` have none).
//! It allocates nothing.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod abi;
pub mod guest;
pub mod hypercall;

pub use abi::{DomId, GrantRef, Port};
pub use guest::{Runstate, SharedInfo, SystemClock};

/// A hypercall's failure: Xen's negative errno (`-EINVAL` is -22, ...),
/// or, for a grant operation, its `GNTST_*` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XenError {
    /// The hypercall returned this negative value.
    Errno(i64),
    /// The grant operation's status (`GNTST_*`, negative).
    Grant(i16),
}

/// The hypercalls a virtio-msg transport between DomUs makes.
pub trait Xen {
    /// EVTCHNOP_send: raises an event on `port` (its peer's end sees it).
    fn send(&mut self, port: Port) -> Result<(), XenError>;
    /// SCHEDOP_poll: blocks until one of `ports` is pending, or
    /// `timeout_ns` (absolute system time, 0: none) passes.
    fn poll(&mut self, ports: &[Port], timeout_ns: u64) -> Result<(), XenError>;
    /// GNTTABOP_map_grant_ref: maps `(dom, gref)` at guest-physical
    /// `host_addr` (one 4 KiB page), read-only unless `writable`; the
    /// handle to unmap it with.
    fn map_grant(
        &mut self,
        dom: DomId,
        gref: GrantRef,
        host_addr: u64,
        writable: bool,
    ) -> Result<u32, XenError>;
    /// GNTTABOP_unmap_grant_ref of a mapping [`map_grant`](Self::map_grant)
    /// made.
    fn unmap_grant(&mut self, host_addr: u64, handle: u32) -> Result<(), XenError>;
    /// CONSOLEIO_write: `bytes` to Xen's console.
    fn console_write(&mut self, bytes: &[u8]) -> Result<(), XenError>;
    /// XENMEM_add_to_physmap: page `idx` of `space` (`XENMAPSPACE_*`) at
    /// our guest frame `gpfn` (the grant table's frames a granting domain
    /// writes its entries in, the shared info page with the pending
    /// events).
    fn add_to_physmap(&mut self, space: u32, idx: u64, gpfn: u64) -> Result<(), XenError>;
}

/// The real hypercalls (AArch64 guests under Xen).
#[cfg(target_arch = "aarch64")]
#[derive(Debug, Default, Clone, Copy)]
pub struct Hvc;

#[cfg(target_arch = "aarch64")]
fn check(r: i64) -> Result<i64, XenError> {
    if r < 0 {
        Err(XenError::Errno(r))
    } else {
        Ok(r)
    }
}

/// A grant operation's outcome: the hypercall's result `r`, then the
/// operation's own `GNTST_*` status.
#[cfg(target_arch = "aarch64")]
fn granted(r: i64, status: i16) -> Result<(), XenError> {
    check(r)?;
    if status != 0 {
        return Err(XenError::Grant(status));
    }
    Ok(())
}

#[cfg(target_arch = "aarch64")]
impl Hvc {
    /// VCPUOP_register_runstate_memory_area: Xen writes vCPU `vcpu`'s
    /// runstate into `area` from now on (at once, and whenever it schedules
    /// the vCPU in).
    ///
    /// `area`'s address is taken as a guest virtual address, translated
    /// with the guest's stage-1 map at each write: the guest keeps it
    /// mapped (an identity map does) for as long as it runs.
    pub fn register_runstate(
        &mut self,
        vcpu: u32,
        area: &'static Runstate,
    ) -> Result<(), XenError> {
        let mut op = abi::VcpuRegisterRunstateMemoryArea {
            addr: area.address(),
        };
        // SAFETY: `op` is live for the call; the area it names is a
        // `static` that only Xen writes (see `Runstate`).
        let r = unsafe {
            hypercall::call(
                abi::HYPERVISOR_VCPU_OP,
                [
                    abi::VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA,
                    u64::from(vcpu),
                    (&raw mut op) as u64,
                    0,
                    0,
                ],
            )
        };
        check(r).map(|_| ())
    }
}

#[cfg(target_arch = "aarch64")]
impl Xen for Hvc {
    fn send(&mut self, port: Port) -> Result<(), XenError> {
        let mut op = abi::EvtchnSend { port };
        // SAFETY: `op` is a live EVTCHNOP_send argument Xen reads.
        let r = unsafe {
            hypercall::call(
                abi::HYPERVISOR_EVENT_CHANNEL_OP,
                [abi::EVTCHNOP_SEND, (&raw mut op) as u64, 0, 0, 0],
            )
        };
        check(r).map(|_| ())
    }

    fn poll(&mut self, ports: &[Port], timeout_ns: u64) -> Result<(), XenError> {
        let mut op = abi::SchedPoll {
            ports: ports.as_ptr() as u64,
            nr_ports: ports.len() as u32,
            _pad: 0,
            timeout: timeout_ns,
        };
        // SAFETY: `op` and the ports it points to are live for the call;
        // Xen only reads them.
        let r = unsafe {
            hypercall::call(
                abi::HYPERVISOR_SCHED_OP,
                [abi::SCHEDOP_POLL, (&raw mut op) as u64, 0, 0, 0],
            )
        };
        check(r).map(|_| ())
    }

    fn map_grant(
        &mut self,
        dom: DomId,
        gref: GrantRef,
        host_addr: u64,
        writable: bool,
    ) -> Result<u32, XenError> {
        let mut op = abi::GnttabMapGrantRef {
            host_addr,
            flags: abi::GNTMAP_HOST_MAP | if writable { 0 } else { abi::GNTMAP_READONLY },
            gref,
            dom,
            status: 0,
            handle: 0,
            dev_bus_addr: 0,
        };
        // SAFETY: one live GNTTABOP_map_grant_ref argument; Xen writes its
        // status, handle and bus address, and maps the page at
        // `host_addr` in our physmap (a hole the caller keeps for it).
        let r = unsafe {
            hypercall::call(
                abi::HYPERVISOR_GRANT_TABLE_OP,
                [abi::GNTTABOP_MAP_GRANT_REF, (&raw mut op) as u64, 1, 0, 0],
            )
        };
        granted(r, op.status)?;
        Ok(op.handle)
    }

    fn unmap_grant(&mut self, host_addr: u64, handle: u32) -> Result<(), XenError> {
        let mut op = abi::GnttabUnmapGrantRef {
            host_addr,
            dev_bus_addr: 0,
            handle,
            status: 0,
        };
        // SAFETY: one live GNTTABOP_unmap_grant_ref argument.
        let r = unsafe {
            hypercall::call(
                abi::HYPERVISOR_GRANT_TABLE_OP,
                [abi::GNTTABOP_UNMAP_GRANT_REF, (&raw mut op) as u64, 1, 0, 0],
            )
        };
        granted(r, op.status)
    }

    fn add_to_physmap(&mut self, space: u32, idx: u64, gpfn: u64) -> Result<(), XenError> {
        let mut op = abi::XenAddToPhysmap {
            domid: abi::DOMID_SELF,
            size: 0,
            space,
            idx,
            gpfn,
        };
        // SAFETY: one live argument Xen reads; it maps the page at `gpfn`
        // in our physmap, a hole the caller keeps for it.
        let r = unsafe {
            hypercall::call(
                abi::HYPERVISOR_MEMORY_OP,
                [abi::XENMEM_ADD_TO_PHYSMAP, (&raw mut op) as u64, 0, 0, 0],
            )
        };
        check(r).map(|_| ())
    }

    fn console_write(&mut self, bytes: &[u8]) -> Result<(), XenError> {
        // SAFETY: Xen reads `bytes.len()` bytes at `bytes`, live for the
        // call.
        let r = unsafe {
            hypercall::call(
                abi::HYPERVISOR_CONSOLE_IO,
                [
                    abi::CONSOLEIO_WRITE,
                    bytes.len() as u64,
                    bytes.as_ptr() as u64,
                    0,
                    0,
                ],
            )
        };
        check(r).map(|_| ())
    }
}
