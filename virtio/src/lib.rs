//! The device side of virtio, for firmware and hosts alike: `no_std`, no
//! heap, no OS, no hypervisor.
//!
//! # What it is for
//!
//! A virtio *device* (back-end) library: it lets firmware or a host process
//! serve a virtio device to a driver it does not trust.
//!
//! * [`GuestMemory`] is the only path to driver memory; every address and
//!   length the driver supplies is checked in full on every access
//!   ([`FixedWindow`], [`RegionTable`]).
//! * [`Queue`] is one virtqueue, split or packed, hardened against hostile
//!   drivers: indices checked, chain walks bounded, indirect tables checked,
//!   malformed chains completed with used length 0 so the driver never
//!   waits forever, ring-level corruption reported as fatal so the device
//!   can set `DEVICE_NEEDS_RESET`.
//! * [`DescriptorChain`] gives [`Reader`]/[`Writer`] views that copy across
//!   descriptor boundaries, whatever the chain's layout.
//! * [`DeviceCore`] is the device state machine (status, features, config
//!   generation, per-queue setup); [`msg`] maps virtio-msg messages onto it
//!   and [`mmio`] maps virtio-mmio register accesses onto it.
//! * [`VirtioDevice`] is what a device type implements.
//! * [`amp`] is virtio-msg over a shared-memory channel (the AMP layout
//!   Linux's virtio-msg AMP bus drives), both halves, and the device side
//!   of that bus; [`bus`] is the codec of bus messages (the standard set
//!   and the FF-A bus).
//! * [`service`] is the step every transport runs when something woke it:
//!   time, transport messages, kicks, polling every device, then the
//!   notifications under a written barrier contract ([`service::Notifier`]).
//!
//! # What it refuses to know about
//!
//! Transports' mechanics (doorbells, interrupts, FF-A calls, eventfds, mmap),
//! operating systems, allocation, logging, and any device type's protocol.
//! The integrator tells the core "queue N was kicked" and gets back
//! [`Interrupts`]: which notifications the driver needs. The core never
//! performs one.
//!
//! # Spec
//!
//! Section numbers in comments refer to the Virtual I/O Device (VIRTIO)
//! Version 1.2 specification; virtio-msg layouts follow transport revision 1.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod amp;
pub mod bus;
mod chain;
pub mod control;
pub mod device;
#[allow(unsafe_code)]
pub mod memory;
pub mod mmio;
#[cfg(any(test, feature = "mock"))]
pub mod mock;
pub mod msg;
mod queue;
pub mod service;
pub mod spec;
#[cfg(test)]
#[allow(unsafe_code)]
mod tests;
mod wire;

pub use chain::{CAPTURED, ChainError, DescriptorChain, Element, Elements, Reader, Writer};
pub use control::{ControlError, DeviceCore, DeviceInfo, QueueInfo, VqueueState, VqueueUpdate};
pub use device::{Interrupts, VirtioDevice};
pub use memory::{
    CacheMaintenance, Coherent, FixedWindow, GuestMemory, HOST_ALIGN, MemoryError, RegionError,
    RegionTable,
};
pub use queue::{Area, DEFAULT_HELD, MAX_PACKED_SIZE, Queue, QueueConfigError, QueueError};
