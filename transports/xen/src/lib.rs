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
//! # What it refuses to know about
//!
//! Where the slots lie in our physical address space and how a mapped page
//! is reached (the platform's [`grant::GrantMapper`]: it owns the `unsafe`),
//! the hypercall instruction (`platform-xen`), and the device type.
//!
//! Status: the memory seam is done and tested; the channel, the event
//! channels and the images are issue 13's remaining work.

#![no_std]
#![forbid(unsafe_code)]

pub mod grant;
