//! A Linux vhost-user back-end for the `virtio-backend` device core
//! (`std`), for any virtio device type the core serves. The
//! `scmi-vhost-user` daemon (crate `partition-host`) serves the virtio-scmi
//! device with it to QEMU guests through `-device vhost-user-scmi` /
//! `vhost-user-scmi-pci`.
//!
//! # What it is for
//!
//! QEMU (the vhost-user *front-end*) runs the virtio transport for the
//! guest and hands the back-end the guest's memory (file descriptors of
//! shared memory), the ring addresses and one eventfd per ring direction.
//! This crate plugs those into the device core through its seams:
//!
//! * [`memory`]: the memory table is `mmap`ed and becomes a
//!   [`RegionTable`](virtio_backend::RegionTable), the [`GuestMemory`]
//!   through which every driver address is range-checked; ring addresses
//!   (front-end virtual addresses) are translated to guest physical ones.
//! * [`device`]: the vhost-user messages (parsed by the `vhost` crate) mapped
//!   onto [`DeviceCore`](virtio_backend::DeviceCore) and its
//!   [`Queue`](virtio_backend::Queue)s; kicks in, [`Interrupts`] out as call
//!   eventfd writes.
//! * [`server`]: the single-threaded loop over the socket, the kick eventfds
//!   and a timer, that survives front-end disconnects.
//!
//! # What it refuses to know about
//!
//! Ring layouts and descriptor walking (the core does them), any device
//! type's protocol (SCMI lives in `scmi-server` and `virtio-scmi`), the
//! manifest, the wire encoding of
//! vhost-user messages (the `vhost` crate), and migration: dirty logging,
//! inflight tracking, postcopy and device state transfer are not offered.
//!
//! # Spec
//!
//! "Vhost-user Protocol" in QEMU's interop documentation; virtio sections
//! refer to Virtual I/O Device (VIRTIO) Version 1.2.
//!
//! [`GuestMemory`]: virtio_backend::GuestMemory
//! [`Interrupts`]: virtio_backend::Interrupts

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod device;
pub mod memory;
pub mod server;
pub mod sys;

pub use device::VhostUserDevice;
pub use memory::{MemoryTable, MemoryTableError, RegionDesc};
pub use server::{ConnectionEnd, ServeOptions, serve, serve_connection};
