//! An Arm SCMI platform (server), `no_std` and without allocation.
//!
//! One request in, one response out ([`Server::handle`]), plus a bounded
//! outbox of notifications and delayed responses ([`Server::next_event`]).
//! The server knows SCMI v3.2 messages, agents and their permissions, and
//! the platform traits ([`platform`]) it serves resources from; a simulated
//! platform ([`sim`]) stands in for hardware in QEMU and in tests.
//!
//! It refuses to know about transports: no virtio, no shared-memory
//! mailboxes, no doorbells. Whoever carries the bytes tells the server which
//! agent sent them and whether that agent has a platform-to-agent channel.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "std")]
extern crate std;

pub mod config;
pub mod header;
pub mod platform;
pub mod protocols;
pub mod server;
pub mod sim;
pub mod virtio_scmi;
pub mod wire;

#[cfg(feature = "std")]
pub mod host;

pub use config::{AgentConfig, Config, DeviceConfig};
pub use header::{Header, MsgType, Status};
pub use platform::Platform;
pub use server::{Handled, MAX_MESSAGE, Server};

#[cfg(test)]
mod tests;
