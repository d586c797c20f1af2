//! The front-end DomU's side of the Xen pair: what it grants and where it
//! rings. The back-end's side is its manifest (`manifests/xen-domu.dts`:
//! driver domain 1, channel in grant 8, event channel port 11), and
//! `scripts/xen.sh` declares the static event channel between the two
//! ports in the host device tree.

#![no_std]

/// The front-end (domain 1) grants its pool as refs `FIRST_GREF..` (the
/// back-end's `xen,channel-grant`: the channel is page 0).
pub const FIRST_GREF: u32 = 8;
/// Pages of the pool: the channel page, DMA pages, the heap.
pub const POOL_PAGES: usize = 64;
/// The front-end's end of the static event channel.
pub const PORT_FRONTEND: u32 = 10;
/// The back-end's domain id (the second `xen,domain` node).
pub const DOM_BACKEND: u16 = 2;
