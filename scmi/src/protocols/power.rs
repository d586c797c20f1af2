//! Power domain protocol 3.1 (id 0x11; SCMI v3.2 §4.3): domain discovery,
//! synchronous and asynchronous state changes, state-change notifications
//! and extended names.
//!
//! Mirrors `drivers/firmware/arm_scmi/power.c` of Linux 6.12 (supported
//! version 0x30001) and what its consumer `scmi_pm_domain.c` requires:
//! the generic states are exactly [`ON`] (0) and [`OFF`] (0x40000000), and
//! the state read back after a POWER_STATE_SET must be the state set.
//!
//! Asynchronous POWER_STATE_SET has no delayed response (§4.3.2.6): the
//! platform answers once the request is scheduled, and completion is
//! signalled only by POWER_STATE_CHANGED to subscribed agents. It therefore
//! needs a P2A channel, like every notification.

use crate::context::{Cx, NotifyKind};
use crate::header::Status;
use crate::protocols::{PROTOCOL_ATTRIBUTES, Protocol};
use crate::wire::{Args, Reply};

/// Protocol id.
pub const ID: u8 = 0x11;
/// Version implemented: 3.1.
pub const VERSION: u32 = 0x0003_0001;

/// POWER_DOMAIN_ATTRIBUTES (§4.3.2.5).
pub const DOMAIN_ATTRIBUTES: u8 = 0x3;
/// POWER_STATE_SET (§4.3.2.6).
pub const STATE_SET: u8 = 0x4;
/// POWER_STATE_GET (§4.3.2.7).
pub const STATE_GET: u8 = 0x5;
/// POWER_STATE_NOTIFY (§4.3.2.8).
pub const STATE_NOTIFY: u8 = 0x6;
/// POWER_STATE_CHANGE_REQUESTED_NOTIFY (§4.3.2.9).
pub const STATE_CHANGE_REQUESTED_NOTIFY: u8 = 0x7;
/// POWER_DOMAIN_NAME_GET (§4.3.2.10).
pub const DOMAIN_NAME_GET: u8 = 0x8;

/// Notification POWER_STATE_CHANGED (§4.3.3.1).
pub const STATE_CHANGED: u8 = 0x0;
/// Notification POWER_STATE_CHANGE_REQUESTED (§4.3.3.2).
pub const STATE_CHANGE_REQUESTED: u8 = 0x1;

/// The generic ON state: context preserved, state id 0 (§4.3.2.6).
pub const ON: u32 = 0;
/// The generic OFF state: context lost (bit 30), state id 0.
pub const OFF: u32 = 0x4000_0000;
/// Reserved bits of a power state: 31, 29 and 28 (§4.3.2.6).
pub const STATE_RESERVED: u32 = 0xB000_0000;

/// POWER_STATE_SET flags bit 0: asynchronous request.
const FLAG_ASYNC: u32 = 1;

/// Domain attribute bits (§4.3.2.5).
const ATTR_NOTIFY_CHANGED: u32 = 1 << 31;
const ATTR_ASYNC: u32 = 1 << 30;
const ATTR_SYNC: u32 = 1 << 29;
const ATTR_NOTIFY_REQUESTED: u32 = 1 << 28;
const ATTR_EXT_NAME: u32 = 1 << 27;

/// Longest name the 16-byte field of POWER_DOMAIN_ATTRIBUTES holds; longer
/// names are announced with the extended-name bit.
const SHORT_NAME: usize = 15;

/// One power domain, as the platform describes it. The domain id is the
/// index in [`PowerPlatform::power_domains`].
#[derive(Debug, Clone, Copy)]
pub struct PowerDomain {
    /// Unique, non-empty ASCII name (at most 63 characters); names longer
    /// than 15 characters are served by POWER_DOMAIN_NAME_GET.
    pub name: &'static str,
    /// Whether synchronous POWER_STATE_SET is supported.
    pub sync_set: bool,
    /// Whether asynchronous POWER_STATE_SET is supported (advertised only
    /// to agents with a P2A channel).
    pub async_set: bool,
    /// Whether POWER_STATE_CHANGED notifications are supported.
    pub notify_changed: bool,
    /// Whether POWER_STATE_CHANGE_REQUESTED notifications are supported.
    pub notify_requested: bool,
}

/// The platform side of the power domain protocol. The defaults describe a
/// platform without power domains.
pub trait PowerPlatform {
    /// The domains; ids are indexes and must stay stable.
    fn power_domains(&self) -> &'static [PowerDomain] {
        &[]
    }

    /// The current (aggregated) state of `domain`.
    fn power_state_get(&self, domain: u32) -> Result<u32, Status> {
        let _ = domain;
        Err(Status::NotSupported)
    }

    /// `agent` asks for `state` on `domain`. The protocol has already
    /// checked the id, the caller's visibility, the mode and the reserved
    /// bits; the platform refuses states the domain does not have with
    /// INVALID_PARAMETERS and decides how requests of several agents
    /// combine. On success the transition is complete (the simulated
    /// hardware has no latency).
    fn power_state_set(&mut self, agent: u32, domain: u32, state: u32) -> Result<(), Status> {
        let _ = (agent, domain, state);
        Err(Status::NotSupported)
    }
}

/// The table entry.
pub const fn protocol<P: PowerPlatform, const A: usize>() -> Protocol<P, A> {
    Protocol {
        id: ID,
        version: VERSION,
        present: |p| !p.power_domains().is_empty(),
        handle,
        message_attributes,
        tick: None,
    }
}

/// The domain `id` if it exists and the caller may see it (NOT_FOUND
/// otherwise; §4.3.2.5 and §4.2.2.12).
fn domain<P: PowerPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    id: u32,
) -> Result<&'static PowerDomain, Status> {
    cx.resource(cx.platform.power_domains(), id)
}

/// Little-endian words as a notification body.
fn body<const N: usize>(words: &[u32]) -> [u8; N] {
    crate::wire::le_words(words)
}

fn handle<P: PowerPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    id: u8,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    match id {
        PROTOCOL_ATTRIBUTES => {
            // §4.3.2.3: [15:0] domains; no statistics region (address 0,
            // length 0). Linux reads all 16 bytes.
            let n = cx.platform.power_domains().len().min(0xffff) as u32;
            out.u32(n)?;
            out.u32(0)?;
            out.u32(0)?;
            out.u32(0)
        }
        DOMAIN_ATTRIBUTES => {
            let id = args.u32()?;
            let d = domain(cx, id)?;
            // §4.3.2.5: notification and async bits only where a P2A
            // channel can carry them.
            let mut attrs = 0;
            if d.sync_set {
                attrs |= ATTR_SYNC;
            }
            if cx.p2a {
                if d.notify_changed {
                    attrs |= ATTR_NOTIFY_CHANGED;
                }
                if d.async_set {
                    attrs |= ATTR_ASYNC;
                }
                if d.notify_requested {
                    attrs |= ATTR_NOTIFY_REQUESTED;
                }
            }
            if d.name.len() > SHORT_NAME {
                attrs |= ATTR_EXT_NAME;
            }
            out.u32(attrs)?;
            out.name::<16>(d.name)
        }
        STATE_SET => {
            let flags = args.u32()?;
            let id = args.u32()?;
            let state = args.u32()?;
            let d = domain(cx, id)?;
            // §4.3.2.6: reserved flag bits and reserved state bits are
            // INVALID_PARAMETERS.
            if flags & !FLAG_ASYNC != 0 || state & STATE_RESERVED != 0 {
                return Err(Status::InvalidParameters);
            }
            let asynchronous = flags & FLAG_ASYNC != 0;
            if asynchronous {
                // Completion is only observable through POWER_STATE_CHANGED,
                // so async needs a P2A channel and room to queue it.
                if !cx.p2a || !d.async_set {
                    return Err(Status::NotSupported);
                }
                if !cx.can_delay() {
                    return Err(Status::Busy);
                }
            } else if !d.sync_set {
                return Err(Status::NotSupported);
            }
            let before = cx.platform.power_state_get(id).ok();
            cx.platform.power_state_set(cx.agent, id, state)?;
            let after = cx.platform.power_state_get(id).ok();
            let agent = cx.agent;
            // §4.3.3.2: the request, then (§4.3.3.1) the change. An async
            // request always completes with POWER_STATE_CHANGED, even when
            // the domain was already in that state: it is the only
            // completion signal the caller gets.
            if d.notify_requested {
                let b = body::<12>(&[agent, id, state]);
                cx.notify_all(
                    NotifyKind::PowerStateRequested,
                    id,
                    STATE_CHANGE_REQUESTED,
                    &b,
                );
            }
            if d.notify_changed
                && (before != after || asynchronous)
                && let Some(now) = after
            {
                let b = body::<12>(&[agent, id, now]);
                cx.notify_all(NotifyKind::PowerState, id, STATE_CHANGED, &b);
            }
            Ok(())
        }
        STATE_GET => {
            let id = args.u32()?;
            domain(cx, id)?;
            let state = cx.platform.power_state_get(id)?;
            out.u32(state)
        }
        STATE_NOTIFY | STATE_CHANGE_REQUESTED_NOTIFY => {
            let id_ = args.u32()?;
            let enable = args.u32()?;
            let d = domain(cx, id_)?;
            // §4.3.2.8/9: notify_enable[31:1] reserved.
            if enable & !1 != 0 {
                return Err(Status::InvalidParameters);
            }
            let (supported, kind) = if id == STATE_NOTIFY {
                (d.notify_changed, NotifyKind::PowerState)
            } else {
                (d.notify_requested, NotifyKind::PowerStateRequested)
            };
            if !cx.p2a || !supported {
                return Err(Status::NotSupported);
            }
            cx.me()?.set_notify(kind, id_, enable & 1 != 0)
        }
        DOMAIN_NAME_GET => {
            let id = args.u32()?;
            let d = domain(cx, id)?;
            // §4.3.2.10: only for domains announcing an extended name.
            if d.name.len() <= SHORT_NAME {
                return Err(Status::NotSupported);
            }
            out.u32(0)?;
            out.name::<64>(d.name)
        }
        _ => Err(Status::NotFound),
    }
}

fn message_attributes<P: PowerPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    id: u8,
) -> Result<u32, Status> {
    match id {
        PROTOCOL_ATTRIBUTES | DOMAIN_ATTRIBUTES | STATE_SET | STATE_GET | DOMAIN_NAME_GET => Ok(0),
        // Notifications need the caller's P2A channel (Linux probes 0x6
        // before it ever subscribes).
        STATE_NOTIFY | STATE_CHANGE_REQUESTED_NOTIFY if cx.p2a => Ok(0),
        STATE_NOTIFY | STATE_CHANGE_REQUESTED_NOTIFY => Err(Status::NotSupported),
        _ => Err(Status::NotFound),
    }
}
