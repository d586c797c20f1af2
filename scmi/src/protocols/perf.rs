//! Performance domain protocol 4.0 (id 0x13; SCMI v3.2 §4.5): domains and
//! their levels, limits, the current level, change notifications and
//! extended names.
//!
//! Mirrors `drivers/firmware/arm_scmi/perf.c` of Linux 6.12 (supported
//! version 0x40000):
//! - DESCRIBE_LEVELS entries are always five words in 4.0, six of them fit
//!   Linux's 128-byte replies, and Linux takes at most 32 levels per domain
//!   ([`MAX_LEVELS`]) with unique values;
//! - a domain in level indexing mode (attribute bit 25) exchanges level
//!   *indexes* in LIMITS_SET/GET, LEVEL_SET/GET and both notifications;
//!   Linux maps them through the `level_index` of each described level;
//! - fast channels are never offered: over virtio the guest would map an
//!   address the server gave it. No domain sets bit 27, no message sets the
//!   fast-channel bit, and DESCRIBE_FASTCHANNEL answers NOT_SUPPORTED.
//!
//! Only one agent may set a domain's level (§4.5.3.5 bit 30): the
//! lowest-numbered agent that can see the domain. Limits may be set by
//! every agent that sees the domain; the platform combines them.

use crate::context::{Cx, NotifyKind};
use crate::header::Status;
use crate::protocols::{PROTOCOL_ATTRIBUTES, Protocol};
use crate::wire::{Args, Reply};

/// Protocol id.
pub const ID: u8 = 0x13;
/// Version implemented: 4.0.
pub const VERSION: u32 = 0x0004_0000;

/// PERFORMANCE_DOMAIN_ATTRIBUTES (§4.5.3.5).
pub const DOMAIN_ATTRIBUTES: u8 = 0x3;
/// PERFORMANCE_DESCRIBE_LEVELS (§4.5.3.6).
pub const DESCRIBE_LEVELS: u8 = 0x4;
/// PERFORMANCE_LIMITS_SET (§4.5.3.7).
pub const LIMITS_SET: u8 = 0x5;
/// PERFORMANCE_LIMITS_GET (§4.5.3.8).
pub const LIMITS_GET: u8 = 0x6;
/// PERFORMANCE_LEVEL_SET (§4.5.3.9).
pub const LEVEL_SET: u8 = 0x7;
/// PERFORMANCE_LEVEL_GET (§4.5.3.10).
pub const LEVEL_GET: u8 = 0x8;
/// PERFORMANCE_NOTIFY_LIMITS (§4.5.3.11).
pub const NOTIFY_LIMITS: u8 = 0x9;
/// PERFORMANCE_NOTIFY_LEVEL (§4.5.3.12).
pub const NOTIFY_LEVEL: u8 = 0xA;
/// PERFORMANCE_DESCRIBE_FASTCHANNEL (§4.5.3.13).
pub const DESCRIBE_FASTCHANNEL: u8 = 0xB;
/// PERFORMANCE_DOMAIN_NAME_GET (§4.5.3.14).
pub const DOMAIN_NAME_GET: u8 = 0xC;

/// Notification PERFORMANCE_LIMITS_CHANGED (§4.5.4.1).
pub const LIMITS_CHANGED: u8 = 0x0;
/// Notification PERFORMANCE_LEVEL_CHANGED (§4.5.4.2).
pub const LEVEL_CHANGED: u8 = 0x1;

/// Most levels a domain may describe: Linux 6.12 `MAX_OPPS` (perf.c),
/// beyond which its iterator aborts the whole domain.
pub const MAX_LEVELS: usize = 32;

/// The `level_index` of a domain's lowest level; the others follow in
/// ascending order. Indexes start at 1 because PERFORMANCE_LIMITS_SET reads
/// 0 as "leave this limit unchanged" (§4.5.3.7): a 0-based lowest index
/// could never be set as a limit.
pub const INDEX_BASE: u32 = 1;

/// Power unit of level power costs (PROTOCOL_ATTRIBUTES [17:16]): an
/// abstract linear scale.
pub const POWER_ABSTRACT: u32 = 0;
/// Power costs in milliwatts.
pub const POWER_MILLIWATT: u32 = 1;
/// Power costs in microwatts.
pub const POWER_MICROWATT: u32 = 2;

/// Size of one 4.0 level entry: value, power, attributes, indicative
/// frequency, level index (§4.5.3.6).
const LEVEL_ENTRY: usize = 20;

/// Domain attribute bits (§4.5.3.5).
const ATTR_SET_LIMITS: u32 = 1 << 31;
const ATTR_SET_LEVEL: u32 = 1 << 30;
const ATTR_NOTIFY_LIMITS: u32 = 1 << 29;
const ATTR_NOTIFY_LEVEL: u32 = 1 << 28;
const ATTR_EXT_NAME: u32 = 1 << 26;
const ATTR_LEVEL_INDEXING: u32 = 1 << 25;

/// Longest name the 16-byte field of PERFORMANCE_DOMAIN_ATTRIBUTES holds.
const SHORT_NAME: usize = 15;

/// One performance level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfLevel {
    /// Level value (non-zero; unique within the domain).
    pub value: u32,
    /// Power cost in the protocol's power unit; 0 = not reported.
    pub power_cost: u32,
    /// Worst-case latency to reach this level from any other, in µs.
    pub latency_us: u16,
    /// Indicative frequency in kHz (unique within a domain in level
    /// indexing mode: Linux looks levels up by it).
    pub indicative_khz: u32,
}

/// One performance domain. The domain id is the index in
/// [`PerfPlatform::perf_domains`].
#[derive(Debug, Clone, Copy)]
pub struct PerfDomain {
    /// Unique, non-empty ASCII name (at most 63 characters); names longer
    /// than 15 characters are served by PERFORMANCE_DOMAIN_NAME_GET.
    pub name: &'static str,
    /// The levels, ascending by value, at most [`MAX_LEVELS`].
    pub levels: &'static [PerfLevel],
    /// Whether agents may set limits.
    pub set_limits: bool,
    /// Whether the level may be set (by the one agent owning it).
    pub set_level: bool,
    /// Whether PERFORMANCE_LIMITS_CHANGED is supported.
    pub notify_limits: bool,
    /// Whether PERFORMANCE_LEVEL_CHANGED is supported.
    pub notify_level: bool,
    /// Level indexing mode: levels travel as indexes.
    pub level_indexing: bool,
    /// Minimum time between requests, µs (20 bits); 0 = not specified.
    pub rate_limit_us: u32,
    /// Sustained frequency, kHz.
    pub sustained_khz: u32,
    /// The level value delivering `sustained_khz`.
    pub sustained_level: u32,
}

/// The platform side of the performance protocol. The defaults describe a
/// platform without performance domains. Levels and limits cross this
/// trait as level *values*, whatever the domain's mode; the protocol
/// translates indexes.
pub trait PerfPlatform {
    /// The domains; ids are indexes and must stay stable.
    fn perf_domains(&self) -> &'static [PerfDomain] {
        &[]
    }

    /// Power unit of the level power costs ([`POWER_ABSTRACT`],
    /// [`POWER_MILLIWATT`] or [`POWER_MICROWATT`]).
    fn perf_power_unit(&self) -> u32 {
        POWER_ABSTRACT
    }

    /// The limits in force on `domain`: `(max, min)` level values.
    fn perf_limits_get(&self, domain: u32) -> Result<(u32, u32), Status> {
        let _ = domain;
        Err(Status::NotSupported)
    }

    /// `agent` sets its limits on `domain`; `None` leaves that bound of
    /// the agent's request unchanged. The protocol has checked that every
    /// given bound lies within the described levels. The platform answers
    /// INVALID_PARAMETERS if the agent's minimum would exceed its maximum,
    /// OUT_OF_RANGE if the combined limits would exclude every level, and
    /// moves the current level into the new limits.
    fn perf_limits_set(
        &mut self,
        agent: u32,
        domain: u32,
        max: Option<u32>,
        min: Option<u32>,
    ) -> Result<(), Status> {
        let _ = (agent, domain, max, min);
        Err(Status::NotSupported)
    }

    /// The current level value of `domain`.
    fn perf_level_get(&self, domain: u32) -> Result<u32, Status> {
        let _ = domain;
        Err(Status::NotSupported)
    }

    /// `agent` sets `domain` to `level`, a described level value; the
    /// platform answers OUT_OF_RANGE outside the current limits.
    fn perf_level_set(&mut self, agent: u32, domain: u32, level: u32) -> Result<(), Status> {
        let _ = (agent, domain, level);
        Err(Status::NotSupported)
    }
}

/// The table entry.
pub const fn protocol<P: PerfPlatform, const A: usize>() -> Protocol<P, A> {
    Protocol {
        id: ID,
        version: VERSION,
        present: |p| !p.perf_domains().is_empty(),
        handle,
        message_attributes,
        tick: None,
    }
}

/// The domain `id` if it exists and the caller may see it (NOT_FOUND
/// otherwise; §4.5.3.5 and §4.2.2.12).
fn domain<P: PerfPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    id: u32,
) -> Result<&'static PerfDomain, Status> {
    cx.resource(cx.platform.perf_domains(), id)
}

/// The agent allowed to set `domain`'s level: the lowest-numbered agent
/// that can see it (§4.5.3.5: only one agent can set the level).
fn level_owner<P: PerfPlatform, const A: usize>(cx: &Cx<'_, P, A>, domain: u32) -> Option<u32> {
    (1..=A as u32).find(|&a| cx.visible_to(a, ID, domain))
}

/// A level from the wire: an index in level indexing mode, else a value.
/// `None` if it names no level.
fn from_wire(d: &PerfDomain, x: u32) -> Option<u32> {
    if d.level_indexing {
        let i = x.checked_sub(INDEX_BASE)?;
        d.levels.get(i as usize).map(|l| l.value)
    } else {
        Some(x)
    }
}

/// A level value for the wire (its index in level indexing mode).
fn to_wire(d: &PerfDomain, value: u32) -> Result<u32, Status> {
    if d.level_indexing {
        let i = d
            .levels
            .iter()
            .position(|l| l.value == value)
            .ok_or(Status::GenericError)?;
        Ok(i as u32 + INDEX_BASE)
    } else {
        Ok(value)
    }
}

/// Lowest and highest described level values.
fn bounds(d: &PerfDomain) -> Option<(u32, u32)> {
    Some((d.levels.first()?.value, d.levels.last()?.value))
}

/// Little-endian words as a notification body.
fn body<const N: usize>(words: &[u32]) -> [u8; N] {
    crate::wire::le_words(words)
}

/// The current `(limits, level)` of `domain`, each `None` if the platform
/// cannot tell.
type Snapshot = (Option<(u32, u32)>, Option<u32>);

fn snapshot<P: PerfPlatform, const A: usize>(cx: &Cx<'_, P, A>, id: u32) -> Snapshot {
    (
        cx.platform.perf_limits_get(id).ok(),
        cx.platform.perf_level_get(id).ok(),
    )
}

/// Notifies subscribers of what changed on `domain` between two
/// snapshots (§4.5.4.1: 16 bytes; §4.5.4.2: 12 bytes), naming the caller
/// as the agent that caused it. A value the platform reports outside the
/// described levels cannot be expressed as an index and is not notified.
fn notify_changes<P: PerfPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    id: u32,
    d: &PerfDomain,
    before: Snapshot,
    after: Snapshot,
) {
    let agent = cx.agent;
    if d.notify_limits
        && before.0 != after.0
        && let Some((max, min)) = after.0
        && let (Ok(max), Ok(min)) = (to_wire(d, max), to_wire(d, min))
    {
        let b = body::<16>(&[agent, id, max, min]);
        cx.notify_all(NotifyKind::PerfLimits, id, LIMITS_CHANGED, &b);
    }
    if d.notify_level
        && before.1 != after.1
        && let Some(level) = after.1
        && let Ok(level) = to_wire(d, level)
    {
        let b = body::<12>(&[agent, id, level]);
        cx.notify_all(NotifyKind::PerfLevel, id, LEVEL_CHANGED, &b);
    }
}

fn handle<P: PerfPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    id: u8,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    match id {
        PROTOCOL_ATTRIBUTES => {
            // §4.5.3.3: [17:16] power unit, [15:0] domains; no statistics.
            let n = cx.platform.perf_domains().len().min(0xffff) as u32;
            let unit = cx.platform.perf_power_unit() & 3;
            out.u32(unit << 16 | n)?;
            out.u32(0)?;
            out.u32(0)?;
            out.u32(0)
        }
        DOMAIN_ATTRIBUTES => {
            let id = args.u32()?;
            let d = domain(cx, id)?;
            let mut attrs = 0;
            if d.set_limits {
                attrs |= ATTR_SET_LIMITS;
            }
            if d.set_level && level_owner(cx, id) == Some(cx.agent) {
                attrs |= ATTR_SET_LEVEL;
            }
            // Notification bits only where a P2A channel can carry them;
            // bit 27 (fast channels) never.
            if cx.p2a && d.notify_limits {
                attrs |= ATTR_NOTIFY_LIMITS;
            }
            if cx.p2a && d.notify_level {
                attrs |= ATTR_NOTIFY_LEVEL;
            }
            if d.name.len() > SHORT_NAME {
                attrs |= ATTR_EXT_NAME;
            }
            if d.level_indexing {
                attrs |= ATTR_LEVEL_INDEXING;
            }
            out.u32(attrs)?;
            out.u32(d.rate_limit_us & 0xf_ffff)?;
            out.u32(d.sustained_khz)?;
            out.u32(d.sustained_level)?;
            out.name::<16>(d.name)
        }
        DESCRIBE_LEVELS => {
            let id = args.u32()?;
            let skip = args.u32()? as usize;
            let d = domain(cx, id)?;
            // §4.5.3.6: level_index is a skip count; past the end is
            // OUT_OF_RANGE (reaching the end exactly returns nothing).
            // Entries are 20 bytes.
            out.list_page(d.levels, skip, LEVEL_ENTRY, |out, k, l| {
                out.u32(l.value)?;
                out.u32(l.power_cost)?;
                out.u32(u32::from(l.latency_us))?;
                out.u32(l.indicative_khz)?;
                out.u32(k as u32 + INDEX_BASE)
            })
        }
        LIMITS_SET => {
            let id = args.u32()?;
            let max = args.u32()?;
            let min = args.u32()?;
            let d = domain(cx, id)?;
            // §4.5.3.7: DENIED unless attribute bit 31 is set.
            if !d.set_limits {
                return Err(Status::Denied);
            }
            // Both zero: nothing to set, OUT_OF_RANGE.
            if max == 0 && min == 0 {
                return Err(Status::OutOfRange);
            }
            let (lo, hi) = bounds(d).ok_or(Status::OutOfRange)?;
            // 0 keeps the bound; others must name a level (index mode) or
            // lie within the described levels (value mode).
            let resolve = |x: u32| -> Result<Option<u32>, Status> {
                if x == 0 {
                    return Ok(None);
                }
                match from_wire(d, x) {
                    Some(v) if (lo..=hi).contains(&v) => Ok(Some(v)),
                    _ => Err(Status::OutOfRange),
                }
            };
            let (max, min) = (resolve(max)?, resolve(min)?);
            if let (Some(a), Some(b)) = (max, min)
                && b > a
            {
                return Err(Status::InvalidParameters);
            }
            let before = snapshot(cx, id);
            cx.platform.perf_limits_set(cx.agent, id, max, min)?;
            let after = snapshot(cx, id);
            notify_changes(cx, id, d, before, after);
            Ok(())
        }
        LIMITS_GET => {
            let id = args.u32()?;
            let d = domain(cx, id)?;
            let (max, min) = cx.platform.perf_limits_get(id)?;
            out.u32(to_wire(d, max)?)?;
            out.u32(to_wire(d, min)?)
        }
        LEVEL_SET => {
            let id = args.u32()?;
            let level = args.u32()?;
            let d = domain(cx, id)?;
            // §4.5.3.9: DENIED unless this caller may set the level.
            if !d.set_level || level_owner(cx, id) != Some(cx.agent) {
                return Err(Status::Denied);
            }
            let value = match from_wire(d, level) {
                Some(v) if d.levels.iter().any(|l| l.value == v) => v,
                // An index naming no level, or a value outside the
                // described ones, is out of range; a value between two
                // levels is not a level at all.
                None => return Err(Status::OutOfRange),
                Some(v) => match bounds(d) {
                    Some((lo, hi)) if (lo..=hi).contains(&v) => {
                        return Err(Status::InvalidParameters);
                    }
                    _ => return Err(Status::OutOfRange),
                },
            };
            let before = snapshot(cx, id);
            cx.platform.perf_level_set(cx.agent, id, value)?;
            let after = snapshot(cx, id);
            notify_changes(cx, id, d, before, after);
            Ok(())
        }
        LEVEL_GET => {
            let id = args.u32()?;
            let d = domain(cx, id)?;
            let level = cx.platform.perf_level_get(id)?;
            out.u32(to_wire(d, level)?)
        }
        NOTIFY_LIMITS | NOTIFY_LEVEL => {
            let dom = args.u32()?;
            let enable = args.u32()?;
            let d = domain(cx, dom)?;
            // §4.5.3.11/12: notify_enable[31:1] reserved.
            if enable & !1 != 0 {
                return Err(Status::InvalidParameters);
            }
            let (supported, kind) = if id == NOTIFY_LIMITS {
                (d.notify_limits, NotifyKind::PerfLimits)
            } else {
                (d.notify_level, NotifyKind::PerfLevel)
            };
            if !cx.p2a || !supported {
                return Err(Status::NotSupported);
            }
            cx.me()?.set_notify(kind, dom, enable & 1 != 0)
        }
        DESCRIBE_FASTCHANNEL => {
            let dom = args.u32()?;
            let msg = args.u32()?;
            domain(cx, dom)?;
            // §4.5.3.13: only LIMITS_SET/GET and LEVEL_SET/GET can have a
            // fast channel; no domain has one here.
            if !(u32::from(LIMITS_SET)..=u32::from(LEVEL_GET)).contains(&msg) {
                return Err(Status::NotFound);
            }
            Err(Status::NotSupported)
        }
        DOMAIN_NAME_GET => {
            let id = args.u32()?;
            let d = domain(cx, id)?;
            // §4.5.3.14: only for domains announcing an extended name.
            if d.name.len() <= SHORT_NAME {
                return Err(Status::NotSupported);
            }
            out.u32(0)?;
            out.name::<64>(d.name)
        }
        _ => Err(Status::NotFound),
    }
}

fn message_attributes<P: PerfPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    id: u8,
) -> Result<u32, Status> {
    match id {
        // §4.5.3.4: bit 0 (fast channel) stays clear for every message.
        PROTOCOL_ATTRIBUTES | DOMAIN_ATTRIBUTES | DESCRIBE_LEVELS | LIMITS_SET | LIMITS_GET
        | LEVEL_SET | LEVEL_GET | DESCRIBE_FASTCHANNEL | DOMAIN_NAME_GET => Ok(0),
        // Notifications need the caller's P2A channel (Linux probes 0xA and
        // 0x9 at init).
        NOTIFY_LIMITS | NOTIFY_LEVEL if cx.p2a => Ok(0),
        NOTIFY_LIMITS | NOTIFY_LEVEL => Err(Status::NotSupported),
        _ => Err(Status::NotFound),
    }
}
