//! System power protocol 2.1 (id 0x12; SCMI v3.2 §4.4): shutdown, resets,
//! suspend and power-up of the whole system, and the notifier that tells
//! OSPM agents about such requests.
//!
//! Mirrors `drivers/firmware/arm_scmi/system.c` of Linux 6.12 (supported
//! version 0x20001): Linux probes PROTOCOL_MESSAGE_ATTRIBUTES(0x5) and, if
//! it succeeds, `scmi_power_control` subscribes with
//! SYSTEM_POWER_STATE_NOTIFY and acts on graceful requests. With a 2.x
//! version Linux accepts only a 16-byte SYSTEM_POWER_STATE_NOTIFIER payload
//! (agent, flags, state, timeout).
//!
//! The "resource" of this protocol is the system itself, id 0: a
//! configuration may put `(0x12, 0)` in a device to say which agents may
//! request state changes and subscribe.

use crate::context::{Cx, NotifyKind};
use crate::header::Status;
use crate::protocols::{PROTOCOL_ATTRIBUTES, Protocol};
use crate::wire::{Args, Reply};

/// Protocol id.
pub const ID: u8 = 0x12;
/// Version implemented: 2.1.
pub const VERSION: u32 = 0x0002_0001;

/// SYSTEM_POWER_STATE_SET (§4.4.2.5).
pub const STATE_SET: u8 = 0x3;
/// SYSTEM_POWER_STATE_GET (§4.4.2.6).
pub const STATE_GET: u8 = 0x4;
/// SYSTEM_POWER_STATE_NOTIFY (§4.4.2.7).
pub const STATE_NOTIFY: u8 = 0x5;

/// Notification SYSTEM_POWER_STATE_NOTIFIER (§4.4.3.1).
pub const STATE_NOTIFIER: u8 = 0x0;

/// System shutdown.
pub const SHUTDOWN: u32 = 0;
/// System cold reset.
pub const COLD_RESET: u32 = 1;
/// System warm reset.
pub const WARM_RESET: u32 = 2;
/// System power-up.
pub const POWER_UP: u32 = 3;
/// System suspend.
pub const SUSPEND: u32 = 4;
/// First vendor-defined state; 5..0x80000000 are reserved (§4.4.2.5).
pub const VENDOR_FIRST: u32 = 0x8000_0000;

/// SYSTEM_POWER_STATE_SET flags bit 0: graceful request.
const FLAG_GRACEFUL: u32 = 1;

/// PROTOCOL_MESSAGE_ATTRIBUTES(SYSTEM_POWER_STATE_SET) bits (§4.4.2.4).
const MSG_WARM_RESET: u32 = 1 << 31;
const MSG_SUSPEND: u32 = 1 << 30;

/// What the platform's system power control can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemPower {
    /// Whether warm reset is supported.
    pub warm_reset: bool,
    /// Whether suspend is supported.
    pub suspend: bool,
    /// Milliseconds the platform waits for OSPM after a graceful shutdown
    /// request before it forces the shutdown; 0 for none. Sent in the
    /// notifier (§4.4.3.1).
    pub graceful_timeout_ms: u32,
}

/// The platform side of the system power protocol. The defaults describe
/// a platform without system power control.
pub trait SystemPowerPlatform {
    /// The system power control, if the platform has one.
    fn system_power(&self) -> Option<&'static SystemPower> {
        None
    }

    /// The current system state (one of the state constants or a vendor
    /// state).
    fn system_state_get(&self) -> Result<u32, Status> {
        Err(Status::NotSupported)
    }

    /// `agent` requests `state`, gracefully or forcefully. The protocol
    /// has checked the flags, the reserved range and the features in
    /// [`SystemPower`]; the platform refuses what it cannot do for this
    /// agent (NOT_SUPPORTED, e.g. vendor states, or DENIED).
    fn system_state_set(&mut self, agent: u32, state: u32, graceful: bool) -> Result<(), Status> {
        let _ = (agent, state, graceful);
        Err(Status::NotSupported)
    }
}

/// The table entry.
pub const fn protocol<P: SystemPowerPlatform, const A: usize>() -> Protocol<P, A> {
    Protocol {
        id: ID,
        version: VERSION,
        present: |p| p.system_power().is_some(),
        handle,
        message_attributes,
        tick: None,
    }
}

/// The system resource id (for device permissions and notifications).
const SYSTEM: u32 = 0;

fn handle<P: SystemPowerPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    id: u8,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let desc = cx.platform.system_power().ok_or(Status::NotSupported)?;
    match id {
        // §4.4.2.3: all attribute bits reserved.
        PROTOCOL_ATTRIBUTES => out.u32(0),
        STATE_SET => {
            let flags = args.u32()?;
            let state = args.u32()?;
            // An agent denied the system resource may not act on it.
            if !cx.visible(SYSTEM) {
                return Err(Status::Denied);
            }
            // §4.4.2.5: reserved flag bits and reserved states are
            // INVALID_PARAMETERS.
            if flags & !FLAG_GRACEFUL != 0 || (SUSPEND + 1..VENDOR_FIRST).contains(&state) {
                return Err(Status::InvalidParameters);
            }
            if (state == WARM_RESET && !desc.warm_reset) || (state == SUSPEND && !desc.suspend) {
                return Err(Status::NotSupported);
            }
            // The graceful flag is ignored for power-up (§4.4.2.5).
            let graceful = flags & FLAG_GRACEFUL != 0 && state != POWER_UP;
            let agent = cx.agent;
            cx.platform.system_state_set(agent, state, graceful)?;
            // §4.4.3.1: timeout only for a graceful shutdown.
            let timeout = if graceful && state == SHUTDOWN {
                desc.graceful_timeout_ms
            } else {
                0
            };
            let b: [u8; 16] = crate::wire::le_words(&[agent, u32::from(graceful), state, timeout]);
            cx.notify_all(NotifyKind::SystemPower, SYSTEM, STATE_NOTIFIER, &b);
            Ok(())
        }
        STATE_GET => {
            let state = cx.platform.system_state_get()?;
            out.u32(state)
        }
        STATE_NOTIFY => {
            let enable = args.u32()?;
            // §4.4.2.7: notify_enable[31:1] reserved.
            if enable & !1 != 0 {
                return Err(Status::InvalidParameters);
            }
            if !cx.p2a {
                return Err(Status::NotSupported);
            }
            if !cx.visible(SYSTEM) {
                return Err(Status::Denied);
            }
            cx.me()?
                .set_notify(NotifyKind::SystemPower, SYSTEM, enable & 1 != 0)
        }
        _ => Err(Status::NotFound),
    }
}

fn message_attributes<P: SystemPowerPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    id: u8,
) -> Result<u32, Status> {
    let desc = cx.platform.system_power().ok_or(Status::NotSupported)?;
    match id {
        PROTOCOL_ATTRIBUTES | STATE_GET => Ok(0),
        // §4.4.2.4: [31] warm reset, [30] suspend.
        STATE_SET => {
            let mut a = 0;
            if desc.warm_reset {
                a |= MSG_WARM_RESET;
            }
            if desc.suspend {
                a |= MSG_SUSPEND;
            }
            Ok(a)
        }
        // §4.4.2.4: NOT_SUPPORTED when notifications are not available
        // (no P2A channel for this agent).
        STATE_NOTIFY if cx.p2a => Ok(0),
        STATE_NOTIFY => Err(Status::NotSupported),
        _ => Err(Status::NotFound),
    }
}
