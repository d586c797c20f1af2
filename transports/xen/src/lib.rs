//! The Xen transport: virtio-msg between two DomUs.
//!
//! # What it is for
//!
//! The device runs in one Xen guest and the driver in another. The driver
//! shares memory the way Linux's `xen,grant-dma` does: every address it
//! puts in a virtqueue is `1 << 63 | gref << 12 | offset`, a page it
//! granted to the device's domain. This crate reaches that memory behind
//! the core's `GuestMemory` seam ([`grant::GrantMemory`]): each page is
//! mapped (`GNTTABOP_map_grant_ref`) the first time the device touches
//! it and kept in a fixed set of slots, least recently used first out.
//!
//! Why mapping and not `GNTTABOP_copy`: the device reads a request in many
//! small accesses (ring indices, descriptors, the buffers), each of which
//! would be a hypercall with copying; a mapping costs one hypercall the
//! first time and none after, and the cache keeps the few pages a queue
//! uses (its rings and the driver's buffer pool) mapped.
//!
//! The messages travel on the library's shared-memory channel
//! (`transport-shmem`) in the first page the driver grants; each side
//! rings the other over a static inter-domain event channel, and the
//! device waits in `SCHEDOP_poll` ([`bus::XenDevice`]).
//!
//! # What it refuses to know about
//!
//! Where the slots lie in our physical address space and how a mapped page
//! is reached (the platform's [`grant::GrantMapper`]: it owns the `unsafe`),
//! where the shared info page and the runstate area are ([`bus::Guest`]),
//! the hypercall instruction (`platform-xen`), the domains, ports and
//! grants (the image's manifest), and the device type.

#![no_std]
#![forbid(unsafe_code)]

pub mod bus;
pub mod grant;
