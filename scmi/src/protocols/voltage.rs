//! Voltage protocol (id 0x17). Not implemented yet: absent from every agent's
//! protocol list.

use crate::header::Status;
use crate::platform::Platform;
use crate::protocols::Protocol;
use crate::server::Cx;
use crate::wire::{Args, Reply};

/// Protocol id.
pub const ID: u8 = 0x17;
/// Version implemented.
pub const VERSION: u32 = 0x00020001;

/// The platform side of this protocol.
pub trait VoltagePlatform {}

/// The table entry.
pub const fn protocol<P: Platform, const A: usize>() -> Protocol<P, A> {
    Protocol {
        id: ID,
        version: VERSION,
        present: |_| false,
        handle,
        message_attributes,
        tick: None,
    }
}

fn handle<P: Platform, const A: usize>(
    _cx: &mut Cx<'_, P, A>,
    _id: u8,
    _args: &mut Args<'_>,
    _out: &mut Reply<'_>,
) -> Result<(), Status> {
    Err(Status::NotFound)
}

fn message_attributes<P: Platform, const A: usize>(
    _cx: &Cx<'_, P, A>,
    _id: u8,
) -> Result<u32, Status> {
    Err(Status::NotFound)
}
