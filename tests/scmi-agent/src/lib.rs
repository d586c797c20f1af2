//! A virtio-scmi front-end for tests, on the host and on bare metal.
//!
//! # What it is for
//!
//! The device side of this project is tested with a driver written on a
//! third-party virtio driver library (`virtio-drivers`, rcore-os), which has
//! no SCMI driver of its own:
//!
//! * [`agent`]: an SCMI agent, a virtio-scmi driver written on
//!   `virtio-drivers`' `VirtQueue` the way Linux 6.12's
//!   `arm_scmi/transports/virtio.c` drives the device;
//! * [`probe`]: the command sequence Linux 6.12 sends when it probes an
//!   SCMI platform, with its replies parsed as Linux parses them, only
//!   stricter;
//! * [`msg_driver`]: the driver half of virtio-msg as a `virtio_drivers`
//!   `Transport`, over any bus's [`msg_driver::Exchange`];
//! * [`amp_driver`]: that exchange over the shared-memory channel
//!   (`virtio_backend::amp`), whose doorbell, waiting and clock are a
//!   [`amp_driver::Link`];
//! * [`ffa_driver`]: that exchange over the FF-A bus, as a normal-world
//!   endpoint (memory shared with FFA_MEM_SHARE, messages in direct
//!   requests, events polled), its conduit a `smccc::Call` type.
//!
//! The host tests (`tests/frontend`) and the bare-metal front-ends that run
//! on a second core next to the firmware (`tests/firmware-frontend`) are
//! built on the same code, so the firmware is probed exactly as the host
//! daemon is.
//!
//! # What it refuses to know about
//!
//! The device: everything goes over a `Transport` and the DMA memory of a
//! `virtio_drivers::Hal`. Where its memory comes from, how a doorbell rings
//! and what time it is belong to the caller.
//!
//! This is test code: it allocates (`alloc`) and panics on any deviation
//! from what it expects, with a message saying what it saw. None of that
//! reaches the device crates, which stay heap-free.

#![no_std]

extern crate alloc;

pub mod agent;
pub mod amp_driver;
pub mod ffa_driver;
pub mod msg_driver;
pub mod probe;
pub mod tour;
