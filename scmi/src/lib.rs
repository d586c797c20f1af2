//! An Arm SCMI platform (server), `no_std` and without allocation.
//!
//! # What it is for
//!
//! One request in, one response out ([`Server::handle`]), plus a bounded
//! outbox of notifications and delayed responses ([`Server::next_event`]).
//! The server knows SCMI v3.2 messages, agents and their permissions, and
//! the platform traits ([`platform`]) it serves resources from. A board
//! implements those traits; `platform-sim` implements them with a simulated
//! SoC for QEMU and tests.
//!
//! Layers, each using only the ones above it:
//!
//! * [`header`], [`wire`], [`config`]: the message header and status codes,
//!   the argument reader and reply writer, the static configuration;
//! * [`platform`]: one trait per protocol and the descriptions of resources;
//! * [`context`]: what a handler sees while serving one command ([`Cx`]);
//! * [`protocols`]: one handler per protocol;
//! * [`server`]: the protocol table, dispatch, agents' state, the outbox;
//! * [`backend`]: what a transport needs from the server ([`Backend`]).
//!
//! # What it refuses to know about
//!
//! Transports: no virtio, no shared-memory mailboxes, no doorbells, no
//! sockets. Whoever carries the bytes tells the server which agent sent them
//! and whether that agent has a platform-to-agent channel. Nor does it know
//! any platform's hardware or tables: they come from outside.
//!
//! [`Cx`]: context::Cx

#![no_std]
#![forbid(unsafe_code)]

pub mod backend;
pub mod config;
pub mod context;
pub mod header;
pub mod platform;
pub mod protocols;
pub mod server;
pub mod wire;

pub use backend::Backend;
pub use config::{AgentConfig, Config, DeviceConfig};
pub use header::{Header, MAX_MESSAGE, MAX_PAYLOAD, MAX_REQUEST, MsgType, Status};
pub use platform::Platform;
pub use server::{Handled, Server};
