//! Base protocol 2.1 (id 0x10; SCMI v3.2 §4.2): discovery, agents,
//! permissions. Not in the server's protocol table: it answers the common
//! commands itself, lists the protocols the server found present, and
//! SET_*_PERMISSIONS and RESET_AGENT_CONFIGURATION reach into other
//! agents' state.

use crate::config::{MAX_DEVICES, protocol_bit};
use crate::context::{Cx, NOTIFY_KINDS, NotifyKind};
use crate::header::Status;
use crate::platform::Platform;
use crate::protocols::{
    NEGOTIATE_PROTOCOL_VERSION, PROTOCOL_ATTRIBUTES, PROTOCOL_MESSAGE_ATTRIBUTES, PROTOCOL_VERSION,
};
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

/// Protocol ids of `mask` (bit `id - 0x10`, [`protocol_bit`]),
/// ascending, Base excluded.
pub fn listed(mask: u32) -> impl Iterator<Item = u8> {
    (ID + 1..0x30).filter(move |&id| mask & protocol_bit(id) != 0)
}

/// Serves one Base command for the agent of `cx`; `present` holds the
/// protocols the platform has resources for ([`protocol_bit`] mask).
pub(crate) fn handle<P: Platform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    present: u32,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let cfg = cx.config;
    let agent = cx.agent;
    let agents = cx.agent_count();
    // What this agent may use of what is there.
    let mine = cx.agent_config(agent).map_or(0, |c| c.protocols) & present;
    match cx.header.msg_id {
        PROTOCOL_VERSION => out.u32(VERSION),
        PROTOCOL_ATTRIBUTES => {
            // [15:8] agents, [7:0] protocols this agent may use (excluding
            // Base), consistent with DISCOVER_LIST_PROTOCOLS.
            let n = listed(mine).count() as u32;
            out.u32((agents & 0xff) << 8 | n)
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
            let total = listed(mine).count();
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
            for (k, p) in listed(mine).skip(skip).take(n).enumerate() {
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
                n => cx.agent_config(n).ok_or(Status::NotFound)?.name,
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
            if !cx.p2a {
                return Err(Status::NotSupported);
            }
            cx.me()?
                .set_notify(NotifyKind::BaseErrors, 0, flags & 1 != 0)
        }
        SET_DEVICE_PERMISSIONS => {
            let target = args.u32()?;
            let device = args.u32()?;
            let flags = args.u32()?;
            check_target(cx, target, device)?;
            if flags & !1 != 0 {
                return Err(Status::InvalidParameters);
            }
            let st = cx.state_of(target)?;
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
            check_target(cx, target, device)?;
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
            let st = cx.state_of(target)?;
            // check_target: device < MAX_DEVICES.
            let d = st
                .denied_protocols
                .get_mut(device as usize)
                .ok_or(Status::NotFound)?;
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
            if target == 0 || target > agents {
                return Err(Status::NotFound);
            }
            if target != agent && !cx.trusted(agent) {
                return Err(Status::Denied);
            }
            if flags & !1 != 0 {
                return Err(Status::InvalidParameters);
            }
            // Resetting its own permissions is the trusted agent's call only.
            if flags & 1 != 0 && !cx.trusted(agent) {
                return Err(Status::Denied);
            }
            reset_agent(cx, target, flags & 1 != 0)
        }
        NEGOTIATE_PROTOCOL_VERSION => {
            let v = args.u32()?;
            if v >> 16 == VERSION >> 16 && v & 0xffff <= VERSION & 0xffff {
                cx.me()?.negotiated[0] = v;
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
fn check_target<P, const A: usize>(
    cx: &Cx<'_, P, A>,
    target: u32,
    device: u32,
) -> Result<(), Status> {
    let cfg = cx.config;
    let agent = cx.agent;
    if target == 0 || target > cx.agent_count() {
        return Err(Status::NotFound);
    }
    if device as usize >= cfg.devices.len().min(MAX_DEVICES) {
        return Err(Status::NotFound);
    }
    if !cx.trusted(agent) {
        return Err(Status::Denied);
    }
    Ok(())
}

/// Agents the server serves.
/// BASE_RESET_AGENT_CONFIGURATION (§4.2.2.13): `target` forgets its
/// negotiated versions and subscriptions, its waiting messages are dropped,
/// the platform reverts its settings, and with `permissions` its access
/// returns to the configured one.
fn reset_agent<P: Platform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    target: u32,
    permissions: bool,
) -> Result<(), Status> {
    let cfg = *cx.agent_config(target).ok_or(Status::NotFound)?;
    let st = cx.state_of(target)?;
    st.negotiated = [0; 16];
    st.notify = [0; NOTIFY_KINDS];
    if permissions {
        st.devices = cfg.devices;
        st.denied_protocols = [0; MAX_DEVICES];
    }
    cx.outbox.clear_agent(target);
    cx.platform.reset_agent(target);
    Ok(())
}
