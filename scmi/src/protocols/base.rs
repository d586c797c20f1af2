//! Base protocol 2.1 (id 0x10; SCMI v3.2 §4.2): discovery, agents,
//! permissions. Handled by the server itself because SET_*_PERMISSIONS and
//! RESET_AGENT_CONFIGURATION reach into other agents' state.

use crate::config::{MAX_DEVICES, protocol_bit};
use crate::header::Status;
use crate::platform::Platform;
use crate::protocols::{
    NEGOTIATE_PROTOCOL_VERSION, PROTOCOL_ATTRIBUTES, PROTOCOL_MESSAGE_ATTRIBUTES, PROTOCOL_VERSION,
};
use crate::server::{NotifyKind, Server};
use crate::wire::{Args, Reply};

/// Protocol id.
pub const ID: u8 = 0x10;
/// Version implemented: 2.1.
pub const VERSION: u32 = 0x0002_0001;

/// BASE_DISCOVER_VENDOR.
pub const DISCOVER_VENDOR: u8 = 0x3;
/// BASE_DISCOVER_SUB_VENDOR.
pub const DISCOVER_SUB_VENDOR: u8 = 0x4;
/// BASE_DISCOVER_IMPLEMENTATION_VERSION.
pub const DISCOVER_IMPLEMENTATION_VERSION: u8 = 0x5;
/// BASE_DISCOVER_LIST_PROTOCOLS.
pub const DISCOVER_LIST_PROTOCOLS: u8 = 0x6;
/// BASE_DISCOVER_AGENT.
pub const DISCOVER_AGENT: u8 = 0x7;
/// BASE_NOTIFY_ERRORS.
pub const NOTIFY_ERRORS: u8 = 0x8;
/// BASE_SET_DEVICE_PERMISSIONS.
pub const SET_DEVICE_PERMISSIONS: u8 = 0x9;
/// BASE_SET_PROTOCOL_PERMISSIONS.
pub const SET_PROTOCOL_PERMISSIONS: u8 = 0xA;
/// BASE_RESET_AGENT_CONFIGURATION.
pub const RESET_AGENT_CONFIGURATION: u8 = 0xB;

const MESSAGES: &[u8] = &[
    PROTOCOL_VERSION,
    PROTOCOL_ATTRIBUTES,
    PROTOCOL_MESSAGE_ATTRIBUTES,
    DISCOVER_VENDOR,
    DISCOVER_SUB_VENDOR,
    DISCOVER_IMPLEMENTATION_VERSION,
    DISCOVER_LIST_PROTOCOLS,
    DISCOVER_AGENT,
    NOTIFY_ERRORS,
    SET_DEVICE_PERMISSIONS,
    SET_PROTOCOL_PERMISSIONS,
    RESET_AGENT_CONFIGURATION,
    NEGOTIATE_PROTOCOL_VERSION,
];

/// The platform's own name in DISCOVER_AGENT(0): it must start with
/// "platform" (§4.2.2.10).
const PLATFORM_NAME: &str = "platform";

/// Serves one Base command for `agent`.
pub(crate) fn handle<P: Platform, const A: usize, const E: usize>(
    s: &mut Server<P, A, E>,
    agent: u32,
    id: u8,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let cfg = s.config();
    match id {
        PROTOCOL_VERSION => out.u32(VERSION),
        PROTOCOL_ATTRIBUTES => {
            // [15:8] agents, [7:0] protocols this agent may use (excluding
            // Base), consistent with DISCOVER_LIST_PROTOCOLS.
            let n = s.protocols_of(agent).count() as u32;
            out.u32((s.agent_count() & 0xff) << 8 | n)
        }
        PROTOCOL_MESSAGE_ATTRIBUTES => {
            let m = args.u32()?;
            match u8::try_from(m) {
                Ok(m) if MESSAGES.contains(&m) => out.u32(0),
                _ => Err(Status::NotFound),
            }
        }
        DISCOVER_VENDOR => out.name::<16>(cfg.vendor),
        DISCOVER_SUB_VENDOR => out.name::<16>(cfg.sub_vendor),
        DISCOVER_IMPLEMENTATION_VERSION => out.u32(cfg.implementation_version),
        DISCOVER_LIST_PROTOCOLS => {
            let skip = args.u32()? as usize;
            let total = s.protocols_of(agent).count();
            if skip > total {
                return Err(Status::InvalidParameters);
            }
            // Fill what fits: 4 bytes for the count, one byte per id, the
            // list padded to whole words (§4.2.2.8).
            let room = out.remaining().saturating_sub(4) / 4 * 4;
            let n = (total - skip).min(room);
            // Not one id fits while some remain: an empty page would stall
            // the agent (GENERIC_ERROR, as `Reply::page` does for every
            // other multi-part reply).
            if n == 0 && skip < total {
                return Err(Status::GenericError);
            }
            out.u32(n as u32)?;
            let mut word = [0u8; 4];
            for (k, p) in s.protocols_of(agent).skip(skip).take(n).enumerate() {
                word[k % 4] = p;
                if k % 4 == 3 {
                    out.bytes(&word)?;
                    word = [0; 4];
                }
            }
            if !n.is_multiple_of(4) {
                out.bytes(&word)?;
            }
            Ok(())
        }
        DISCOVER_AGENT => {
            let want = args.u32()?;
            let id = if want == u32::MAX { agent } else { want };
            let name = match id {
                0 => PLATFORM_NAME,
                n if n <= s.agent_count() => cfg.agents[n as usize - 1].name,
                _ => return Err(Status::NotFound),
            };
            out.u32(id)?;
            out.name::<16>(name)
        }
        NOTIFY_ERRORS => {
            let flags = args.u32()?;
            if flags & !1 != 0 {
                return Err(Status::InvalidParameters);
            }
            // Errors are reported to the agent that caused them, over its
            // P2A channel; without one there is nowhere to send them.
            if !s.has_p2a(agent) {
                return Err(Status::NotSupported);
            }
            s.agent_state(agent)
                .set_notify(NotifyKind::BaseErrors, 0, flags & 1 != 0)
        }
        SET_DEVICE_PERMISSIONS => {
            let target = args.u32()?;
            let device = args.u32()?;
            let flags = args.u32()?;
            check_target(s, agent, target, device)?;
            if flags & !1 != 0 {
                return Err(Status::InvalidParameters);
            }
            let st = s.agent_state(target);
            if flags & 1 != 0 {
                st.devices |= 1 << device;
            } else {
                st.devices &= !(1 << device);
            }
            Ok(())
        }
        SET_PROTOCOL_PERMISSIONS => {
            let target = args.u32()?;
            let device = args.u32()?;
            let command = args.u32()?;
            let flags = args.u32()?;
            check_target(s, agent, target, device)?;
            if flags & !1 != 0 || command & !0xff != 0 {
                return Err(Status::InvalidParameters);
            }
            let protocol = command as u8;
            if protocol == ID {
                // Base access cannot be removed (SCP-firmware: DENIED).
                return Err(Status::Denied);
            }
            if protocol_bit(protocol) == 0 {
                return Err(Status::NotFound);
            }
            let st = s.agent_state(target);
            let d = &mut st.denied_protocols[device as usize];
            if flags & 1 != 0 {
                *d &= !protocol_bit(protocol);
            } else {
                *d |= protocol_bit(protocol);
            }
            Ok(())
        }
        RESET_AGENT_CONFIGURATION => {
            let target = args.u32()?;
            let flags = args.u32()?;
            if target == 0 || target > s.agent_count() {
                return Err(Status::NotFound);
            }
            if target != agent && !cfg.agents[agent as usize - 1].trusted {
                return Err(Status::Denied);
            }
            if flags & !1 != 0 {
                return Err(Status::InvalidParameters);
            }
            // Resetting its own permissions is the trusted agent's call only.
            if flags & 1 != 0 && !cfg.agents[agent as usize - 1].trusted {
                return Err(Status::Denied);
            }
            s.reset_agent(target, flags & 1 != 0);
            Ok(())
        }
        NEGOTIATE_PROTOCOL_VERSION => {
            let v = args.u32()?;
            if v >> 16 == VERSION >> 16 && v & 0xffff <= VERSION & 0xffff {
                s.agent_state(agent).negotiated[0] = v;
                Ok(())
            } else {
                Err(Status::NotSupported)
            }
        }
        _ => Err(Status::NotFound),
    }
}

/// Permission changes: only a trusted agent, on an existing agent and
/// device (§4.2.2.12).
fn check_target<P: Platform, const A: usize, const E: usize>(
    s: &Server<P, A, E>,
    agent: u32,
    target: u32,
    device: u32,
) -> Result<(), Status> {
    let cfg = s.config();
    if target == 0 || target > s.agent_count() {
        return Err(Status::NotFound);
    }
    if device as usize >= cfg.devices.len().min(MAX_DEVICES) {
        return Err(Status::NotFound);
    }
    if !cfg.agents[agent as usize - 1].trusted {
        return Err(Status::Denied);
    }
    Ok(())
}
