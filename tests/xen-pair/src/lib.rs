//! What the Xen pair's two DomUs agree on (issue 13, in progress; these
//! become the manifest's): the grants, the event channel ports, where the
//! device maps granted pages.

#![no_std]

/// The front-end (domain 1) grants its pool as refs `FIRST_GREF..`.
pub const FIRST_GREF: u32 = 8;
/// Pages of the pool: the channel page, DMA pages, the heap.
pub const POOL_PAGES: usize = 64;
/// The front-end's end of the static event channel.
pub const PORT_FRONTEND: u32 = 10;
/// The back-end's end.
pub const PORT_BACKEND: u32 = 11;
/// The front-end's domain id (first `xen,domain` node).
pub const DOM_FRONTEND: u16 = 1;
/// The back-end's.
pub const DOM_BACKEND: u16 = 2;
/// Where the back-end maps granted pages: `SLOTS` pages from here, in the
/// unpopulated guest-physical space below RAM.
pub const SLOT_GPA: u64 = 0x3910_0000;
/// Pages the back-end keeps mapped.
pub const SLOTS: usize = 16;
