//! The hypercalls and argument structures used, as Xen's public headers
//! (`xen.h`, `event_channel.h`, `grant_table.h`, `sched.h`) define them
//! for arm64 guests: AAPCS64 layout, little-endian.

/// An event channel port.
pub type Port = u32;
/// A domain id.
pub type DomId = u16;
/// A grant reference.
pub type GrantRef = u32;

/// `__HYPERVISOR_memory_op`.
pub const HYPERVISOR_MEMORY_OP: u64 = 12;
/// `__HYPERVISOR_console_io`.
pub const HYPERVISOR_CONSOLE_IO: u64 = 18;
/// `__HYPERVISOR_grant_table_op`.
pub const HYPERVISOR_GRANT_TABLE_OP: u64 = 20;
/// `__HYPERVISOR_sched_op`.
pub const HYPERVISOR_SCHED_OP: u64 = 29;
/// `__HYPERVISOR_event_channel_op`.
pub const HYPERVISOR_EVENT_CHANNEL_OP: u64 = 32;
/// `__HYPERVISOR_vcpu_op`.
pub const HYPERVISOR_VCPU_OP: u64 = 24;
/// `VCPUOP_register_runstate_memory_area` (one of the two vCPU operations
/// Xen on Arm allows a guest).
pub const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u64 = 5;

/// `XENMEM_add_to_physmap`.
pub const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
/// `XENMAPSPACE_shared_info`.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// `DOMID_SELF`.
pub const DOMID_SELF: DomId = 0x7ff0;
/// Offset of `evtchn_pending` in `struct shared_info` on arm64 (one
/// `vcpu_info` of 48 bytes before it).
pub const SHARED_INFO_EVTCHN_PENDING: usize = 48;

/// `CONSOLEIO_write`.
pub const CONSOLEIO_WRITE: u64 = 0;
/// `EVTCHNOP_send`.
pub const EVTCHNOP_SEND: u64 = 4;
/// `SCHEDOP_poll`.
pub const SCHEDOP_POLL: u64 = 3;
/// `GNTTABOP_map_grant_ref`.
pub const GNTTABOP_MAP_GRANT_REF: u64 = 0;
/// `GNTTABOP_unmap_grant_ref`.
pub const GNTTABOP_UNMAP_GRANT_REF: u64 = 1;

/// `GNTMAP_host_map`: map at `host_addr` (guest-physical on Arm).
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
/// `GNTMAP_readonly`.
pub const GNTMAP_READONLY: u32 = 1 << 2;

/// Grant-table entry flags (version 1, `grant_entry_v1`): access
/// permitted.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// Read-only access.
pub const GTF_READONLY: u16 = 1 << 2;
/// Set by Xen while the grantee has the page mapped (`GTF_reading`).
pub const GTF_READING: u16 = 1 << 3;
/// Set by Xen while the grantee has the page mapped writable
/// (`GTF_writing`).
pub const GTF_WRITING: u16 = 1 << 4;

/// `struct evtchn_send`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EvtchnSend {
    /// The local port.
    pub port: Port,
}

/// `struct sched_poll`: `XEN_GUEST_HANDLE(evtchn_port_t) ports;
/// unsigned int nr_ports; uint64_t timeout;` (the handle is 8 bytes on
/// Arm).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SchedPoll {
    /// Address of the ports.
    pub ports: u64,
    /// How many.
    pub nr_ports: u32,
    /// Padding to the next 8-byte field.
    pub _pad: u32,
    /// Absolute system time to give up at (ns), 0 for never.
    pub timeout: u64,
}

/// `struct gnttab_map_grant_ref`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct GnttabMapGrantRef {
    /// Where to map (IN).
    pub host_addr: u64,
    /// `GNTMAP_*` (IN).
    pub flags: u32,
    /// The grant (IN).
    pub gref: GrantRef,
    /// The granting domain (IN).
    pub dom: DomId,
    /// `GNTST_*` (OUT).
    pub status: i16,
    /// The mapping's handle (OUT).
    pub handle: u32,
    /// The bus address (OUT).
    pub dev_bus_addr: u64,
}

/// `struct gnttab_unmap_grant_ref`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct GnttabUnmapGrantRef {
    /// The mapping's address (IN).
    pub host_addr: u64,
    /// Its bus address, 0: ignored (IN).
    pub dev_bus_addr: u64,
    /// Its handle (IN).
    pub handle: u32,
    /// `GNTST_*` (OUT).
    pub status: i16,
}

/// `struct xen_add_to_physmap`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct XenAddToPhysmap {
    /// The domain ([`DOMID_SELF`]).
    pub domid: DomId,
    /// Pages for the gmfn_range space (else unused).
    pub size: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    /// Index into the space (the grant-table frame, 0 for shared_info).
    pub idx: u64,
    /// Guest frame number to map it at.
    pub gpfn: u64,
}

/// `struct grant_entry_v1`: what a granting domain writes in its grant
/// table (the frame and domain first, then the flags, behind a barrier).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct GrantEntryV1 {
    /// `GTF_*`.
    pub flags: u16,
    /// The domain the access is for.
    pub domid: DomId,
    /// The guest frame number granted.
    pub frame: u32,
}

/// `struct vcpu_runstate_info` (`vcpu.h`): Xen writes it at the address a
/// guest registers, whenever the vCPU is scheduled in.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct VcpuRunstateInfo {
    /// `RUNSTATE_*` (0: running).
    pub state: i32,
    /// Padding to the next 8-byte field.
    pub _pad: u32,
    /// Xen's system time (ns) when `state` was entered.
    pub state_entry_time: u64,
    /// Time spent in each state (ns).
    pub time: [u64; 4],
}

/// `struct vcpu_register_runstate_memory_area`: the guest handle (8 bytes
/// on Arm, a guest virtual address).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct VcpuRegisterRunstateMemoryArea {
    /// Where Xen writes the runstate (guest virtual).
    pub addr: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_xen_s_public_headers() {
        assert_eq!(size_of::<EvtchnSend>(), 4);
        assert_eq!(size_of::<SchedPoll>(), 24);
        assert_eq!(offset_of!(SchedPoll, nr_ports), 8);
        assert_eq!(offset_of!(SchedPoll, timeout), 16);
        assert_eq!(size_of::<GnttabMapGrantRef>(), 32);
        assert_eq!(offset_of!(GnttabMapGrantRef, flags), 8);
        assert_eq!(offset_of!(GnttabMapGrantRef, gref), 12);
        assert_eq!(offset_of!(GnttabMapGrantRef, dom), 16);
        assert_eq!(offset_of!(GnttabMapGrantRef, status), 18);
        assert_eq!(offset_of!(GnttabMapGrantRef, handle), 20);
        assert_eq!(offset_of!(GnttabMapGrantRef, dev_bus_addr), 24);
        assert_eq!(size_of::<GnttabUnmapGrantRef>(), 24);
        assert_eq!(offset_of!(GnttabUnmapGrantRef, handle), 16);
        assert_eq!(offset_of!(GnttabUnmapGrantRef, status), 20);
        assert_eq!(size_of::<GrantEntryV1>(), 8);
        assert_eq!(size_of::<XenAddToPhysmap>(), 24);
        assert_eq!(offset_of!(XenAddToPhysmap, idx), 8);
        assert_eq!(offset_of!(XenAddToPhysmap, gpfn), 16);
        assert_eq!(offset_of!(GrantEntryV1, frame), 4);
        assert_eq!(size_of::<VcpuRunstateInfo>(), 48);
        assert_eq!(offset_of!(VcpuRunstateInfo, state_entry_time), 8);
        assert_eq!(size_of::<VcpuRegisterRunstateMemoryArea>(), 8);
    }
}
