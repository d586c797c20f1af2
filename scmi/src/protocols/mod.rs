//! The protocols: one module each, with the protocol's message ids, the
//! descriptions a platform gives of its resources, the platform trait the
//! handler serves them through, and the handler. What they share is here.
//!
//! A handler sees one command through a [`Cx`] and its platform through
//! its own trait; it knows neither the server nor the other protocols. The
//! server's table (in [`crate::server`]) lists them; Base is served apart.

use crate::context::Cx;
use crate::header::Status;
use crate::wire::{Args, Reply};

pub mod base;
pub mod clock;
pub mod perf;
pub mod power;
pub mod reset;
pub mod sensor;
pub mod system;
pub mod voltage;

/// PROTOCOL_VERSION, common to every protocol.
pub const PROTOCOL_VERSION: u8 = 0x0;
/// PROTOCOL_ATTRIBUTES, common to every protocol.
pub const PROTOCOL_ATTRIBUTES: u8 = 0x1;
/// PROTOCOL_MESSAGE_ATTRIBUTES, common to every protocol.
pub const PROTOCOL_MESSAGE_ATTRIBUTES: u8 = 0x2;
/// NEGOTIATE_PROTOCOL_VERSION, common to every protocol (SCMI v3.2).
pub const NEGOTIATE_PROTOCOL_VERSION: u8 = 0x10;

/// Handler of a protocol's own commands.
pub type Handler<P, const A: usize> =
    fn(&mut Cx<'_, P, A>, u8, &mut Args<'_>, &mut Reply<'_>) -> Result<(), Status>;

/// One protocol (other than Base, which the server handles itself because
/// it reaches into every agent's state).
pub struct Protocol<P, const A: usize> {
    /// Protocol id.
    pub id: u8,
    /// Version reported by PROTOCOL_VERSION (major << 16 | minor).
    pub version: u32,
    /// Whether the platform has any resource of this protocol.
    pub present: fn(&P) -> bool,
    /// Handles every command but the common ones.
    pub handle: Handler<P, A>,
    /// PROTOCOL_MESSAGE_ATTRIBUTES for a message id other than the common
    /// ones: its attributes, NOT_FOUND if not implemented.
    pub message_attributes: fn(&Cx<'_, P, A>, u8) -> Result<u32, Status>,
    /// Called when time passes.
    pub tick: Option<fn(&mut Cx<'_, P, A>, u64)>,
}

/// Message attributes when the message is one of `ids` (attributes 0).
pub fn implemented(ids: &[u8], id: u8) -> Result<u32, Status> {
    if ids.contains(&id) {
        Ok(0)
    } else {
        Err(Status::NotFound)
    }
}
