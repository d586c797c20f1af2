//! Reset domain protocol 3.1 (id 0x16; SCMI v3.2 §4.8).
//!
//! Serves the agent side that mirrors drivers/firmware/arm_scmi/reset.c of
//! Linux 6.12 (and reset-scmi.c above it):
//!
//! * RESET_DOMAIN_ATTRIBUTES is 24 bytes: attributes, latency (0xFFFFFFFF =
//!   not reported, which Linux maps to 0), name[16].
//! * Linux sets the async flag for every autonomous reset of a domain that
//!   advertises [31], and then waits for RESET_COMPLETE on the P2A channel;
//!   so [31] is advertised only to agents with such a channel.
//! * reset_state is always 0 (architectural cold reset) from Linux; explicit
//!   assert is flags 0x2, de-assert 0x0, a full reset 0x1 (+0x4 async).
//! * RESET_ISSUED carries exactly 12 bytes: agent_id, domain_id,
//!   reset_state.
//!
//! The platform describes its domains with a static [`ResetDesc`] table and
//! performs resets behind [`ResetPlatform`].

use crate::context::{Cx, NotifyKind};
use crate::header::Status;
use crate::protocols::{
    NEGOTIATE_PROTOCOL_VERSION, PROTOCOL_ATTRIBUTES, PROTOCOL_MESSAGE_ATTRIBUTES, PROTOCOL_VERSION,
    Protocol,
};
use crate::wire::{Args, Reply};

/// Protocol id.
pub const ID: u8 = 0x16;
/// Version implemented: 3.1.
pub const VERSION: u32 = 0x0003_0001;

/// RESET_DOMAIN_ATTRIBUTES.
pub const RESET_DOMAIN_ATTRIBUTES: u8 = 0x3;
/// RESET (and its delayed response RESET_COMPLETE).
pub const RESET: u8 = 0x4;
/// RESET_NOTIFY.
pub const RESET_NOTIFY: u8 = 0x5;
/// RESET_DOMAIN_NAME_GET.
pub const RESET_DOMAIN_NAME_GET: u8 = 0x6;

/// Notification RESET_ISSUED.
pub const RESET_ISSUED: u8 = 0x0;

/// RESET flags [0]: the platform performs the whole assert/de-assert cycle.
pub const FLAG_AUTONOMOUS: u32 = 1 << 0;
/// RESET flags [1]: explicit mode, 1 = assert, 0 = de-assert.
pub const FLAG_ASSERT: u32 = 1 << 1;
/// RESET flags [2]: complete asynchronously with RESET_COMPLETE.
pub const FLAG_ASYNC: u32 = 1 << 2;

/// reset_state [31]: 1 = implementation defined, 0 = architectural.
pub const STATE_IMPL: u32 = 1 << 31;
/// The only architectural reset: cold reset, full loss of context.
pub const ARCH_COLD_RESET: u32 = 0;

/// Latency value meaning "not reported" (§4.8.2.5).
pub const LATENCY_UNKNOWN: u32 = u32::MAX;

/// One reset domain, as the platform describes it.
#[derive(Debug, Clone, Copy)]
pub struct ResetDesc {
    /// Name: non-empty, unique, up to 63 characters; names longer than 15
    /// are served through RESET_DOMAIN_NAME_GET.
    pub name: &'static str,
    /// Worst-case reset time in µs, or [`LATENCY_UNKNOWN`].
    pub latency_us: u32,
    /// Whether autonomous resets can complete asynchronously.
    pub async_capable: bool,
    /// Whether RESET_ISSUED notifications are supported.
    pub notify: bool,
    /// Implementation-defined reset ids ([30:0] of reset_state with [31]
    /// set) the domain accepts, besides the architectural cold reset.
    pub impl_states: &'static [u32],
}

/// What a RESET command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetOp {
    /// A full assert/de-assert cycle performed by the platform.
    Cycle,
    /// Hold the domain in reset.
    Assert,
    /// Release the domain.
    Deassert,
}

/// The platform side of the reset protocol. The defaults mean "no reset
/// domains".
pub trait ResetPlatform {
    /// The reset domains, indexed by domain id.
    fn resets(&self) -> &'static [ResetDesc] {
        &[]
    }

    /// Performs `op` on `domain` for `agent`; `state` is a reset_state the
    /// domain accepts.
    fn reset(&mut self, agent: u32, domain: u32, op: ResetOp, state: u32) -> Result<(), Status> {
        let _ = (agent, domain, op, state);
        Err(Status::NotSupported)
    }
}

/// The table entry.
pub const fn protocol<P: ResetPlatform, const A: usize>() -> Protocol<P, A> {
    Protocol {
        id: ID,
        version: VERSION,
        present: |p| !p.resets().is_empty(),
        handle,
        message_attributes,
        tick: None,
    }
}

/// Every message id Reset 3.1 defines (§4.8.2).
const MESSAGES: &[u8] = &[
    PROTOCOL_VERSION,
    PROTOCOL_ATTRIBUTES,
    PROTOCOL_MESSAGE_ATTRIBUTES,
    RESET_DOMAIN_ATTRIBUTES,
    RESET,
    RESET_NOTIFY,
    RESET_DOMAIN_NAME_GET,
    NEGOTIATE_PROTOCOL_VERSION,
];

/// Subscriptions are tracked for domain ids below this.
const NOTIFY_IDS: u32 = 128;

/// Short names are 15 characters plus the NUL.
const SHORT_NAME: usize = 15;

fn message_attributes<P: ResetPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    id: u8,
) -> Result<u32, Status> {
    if !MESSAGES.contains(&id) {
        return Err(Status::NotFound);
    }
    // RESET_NOTIFY exists, but without a P2A channel it is not available.
    if id == RESET_NOTIFY && !cx.p2a {
        return Err(Status::NotSupported);
    }
    Ok(0)
}

/// The domain `id` if the caller may see it (NOT_FOUND otherwise).
fn domain<P: ResetPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    id: u32,
) -> Result<&'static ResetDesc, Status> {
    cx.resource(cx.platform.resets(), id)
}

fn notify_capable<P: ResetPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    d: &ResetDesc,
    id: u32,
) -> bool {
    cx.p2a && d.notify && id < NOTIFY_IDS
}

fn handle<P: ResetPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    id: u8,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    match id {
        // [31:16] reserved, [15:0] number of domains.
        PROTOCOL_ATTRIBUTES => out.u32(cx.platform.resets().len().min(0xffff) as u32),
        RESET_DOMAIN_ATTRIBUTES => {
            // §4.8.2.5: attributes, latency, name[16].
            let dom = args.u32()?;
            let d = domain(cx, dom)?;
            let mut attrs = 0u32;
            if d.async_capable && cx.p2a {
                attrs |= 1 << 31;
            }
            if notify_capable(cx, d, dom) {
                attrs |= 1 << 30;
            }
            if d.name.len() > SHORT_NAME {
                attrs |= 1 << 29;
            }
            out.u32(attrs)?;
            out.u32(d.latency_us)?;
            out.name::<16>(d.name)
        }
        RESET => reset(cx, args),
        RESET_NOTIFY => {
            let dom = args.u32()?;
            let enable = args.u32()?;
            let d = domain(cx, dom)?;
            if enable & !1 != 0 {
                return Err(Status::InvalidParameters);
            }
            if !notify_capable(cx, d, dom) {
                return Err(Status::NotSupported);
            }
            cx.me()?
                .set_notify(NotifyKind::ResetIssued, dom, enable & 1 != 0)
        }
        RESET_DOMAIN_NAME_GET => {
            // Common extended-name layout: flags, name[64].
            let dom = args.u32()?;
            let d = domain(cx, dom)?;
            if d.name.len() <= SHORT_NAME {
                return Err(Status::NotSupported);
            }
            out.u32(0)?;
            out.name::<64>(d.name)
        }
        _ => Err(Status::NotFound),
    }
}

/// RESET (§4.8.2.6), with RESET_COMPLETE and RESET_ISSUED.
fn reset<P: ResetPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
) -> Result<(), Status> {
    let dom = args.u32()?;
    let flags = args.u32()?;
    let state = args.u32()?;
    let d = domain(cx, dom)?;
    // [31:3] reserved.
    if flags & !(FLAG_AUTONOMOUS | FLAG_ASSERT | FLAG_ASYNC) != 0 {
        return Err(Status::InvalidParameters);
    }
    // reset_state: [31] = 0 architectural, where only id 0 (cold reset)
    // is defined; [31] = 1 an implementation-defined id of this domain.
    let valid_state = if state & STATE_IMPL == 0 {
        state == ARCH_COLD_RESET
    } else {
        d.impl_states.contains(&(state & !STATE_IMPL))
    };
    if !valid_state {
        return Err(Status::InvalidParameters);
    }
    let op = if flags & FLAG_AUTONOMOUS != 0 {
        ResetOp::Cycle
    } else if flags & FLAG_ASSERT != 0 {
        ResetOp::Assert
    } else {
        ResetOp::Deassert
    };
    // [2] only means something with [0]: an explicit assert or de-assert
    // completes synchronously whatever [2] says.
    let asynchronous = op == ResetOp::Cycle && flags & FLAG_ASYNC != 0;
    if asynchronous {
        if !d.async_capable || !cx.p2a {
            return Err(Status::NotSupported);
        }
        if !cx.can_delay() {
            return Err(Status::Busy);
        }
    }
    cx.platform.reset(cx.agent, dom, op, state)?;
    if asynchronous {
        // RESET_COMPLETE: status, domain_id.
        let body: [u8; 8] = crate::wire::le_words(&[0, dom]);
        cx.delayed_response(&body)?;
    }
    // A de-assert releases the domain; it does not reset it.
    if op != ResetOp::Deassert && d.notify {
        let body: [u8; 12] = crate::wire::le_words(&[cx.agent, dom, state]);
        cx.notify_all(NotifyKind::ResetIssued, dom, RESET_ISSUED, &body);
    }
    Ok(())
}
