//! Clock protocol 3.0 (id 0x14; SCMI v3.2 §4.6).
//!
//! Serves the agent side that mirrors drivers/firmware/arm_scmi/clock.c of
//! Linux 6.12 (and clk-scmi.c above it):
//!
//! * PROTOCOL_ATTRIBUTES reports the platform's clock count and, only for
//!   agents with a P2A channel, a non-zero number of pending asynchronous
//!   rate changes (Linux uses asynchronous CLOCK_RATE_SET only when that
//!   number is at least 2).
//! * Rate lists are at most 16 entries (`SCMI_MAX_NUM_RATES`); longer lists
//!   abort Linux's describe-rates iterator. A range is always one triplet
//!   (returned 3, remaining 0), as `iter_clk_describe_update_state` demands.
//! * Parent ids are clock ids below the clock count (clk-scmi indexes its
//!   `hws` array with them).
//! * Rates are rounded here: clk-scmi's `determine_rate` passes any rate in
//!   `[min, max]` through.
//!
//! The platform describes its clocks with a static [`ClockDesc`] table and
//! keeps their state behind [`ClockPlatform`].

use crate::context::{Cx, NotifyKind};
use crate::header::Status;
use crate::protocols::{
    NEGOTIATE_PROTOCOL_VERSION, PROTOCOL_ATTRIBUTES, PROTOCOL_MESSAGE_ATTRIBUTES, PROTOCOL_VERSION,
    Protocol,
};
use crate::wire::{Args, Reply};

/// Protocol id.
pub const ID: u8 = 0x14;
/// Version implemented: 3.0.
pub const VERSION: u32 = 0x0003_0000;

/// CLOCK_ATTRIBUTES.
pub const CLOCK_ATTRIBUTES: u8 = 0x3;
/// CLOCK_DESCRIBE_RATES.
pub const CLOCK_DESCRIBE_RATES: u8 = 0x4;
/// CLOCK_RATE_SET (and its delayed response CLOCK_RATE_SET_COMPLETE).
pub const CLOCK_RATE_SET: u8 = 0x5;
/// CLOCK_RATE_GET.
pub const CLOCK_RATE_GET: u8 = 0x6;
/// CLOCK_CONFIG_SET.
pub const CLOCK_CONFIG_SET: u8 = 0x7;
/// CLOCK_NAME_GET.
pub const CLOCK_NAME_GET: u8 = 0x8;
/// CLOCK_RATE_NOTIFY.
pub const CLOCK_RATE_NOTIFY: u8 = 0x9;
/// CLOCK_RATE_CHANGE_REQUESTED_NOTIFY.
pub const CLOCK_RATE_CHANGE_REQUESTED_NOTIFY: u8 = 0xA;
/// CLOCK_CONFIG_GET.
pub const CLOCK_CONFIG_GET: u8 = 0xB;
/// CLOCK_POSSIBLE_PARENTS_GET.
pub const CLOCK_POSSIBLE_PARENTS_GET: u8 = 0xC;
/// CLOCK_PARENT_SET.
pub const CLOCK_PARENT_SET: u8 = 0xD;
/// CLOCK_PARENT_GET.
pub const CLOCK_PARENT_GET: u8 = 0xE;
/// CLOCK_GET_PERMISSIONS.
pub const CLOCK_GET_PERMISSIONS: u8 = 0xF;

/// Notification CLOCK_RATE_CHANGED (SCMI v3.2 §4.6, clock notifications).
pub const CLOCK_RATE_CHANGED: u8 = 0x0;
/// Notification CLOCK_RATE_CHANGE_REQUESTED (SCMI v3.2 §4.6, clock
/// notifications).
pub const CLOCK_RATE_CHANGE_REQUESTED: u8 = 0x1;

/// Pending asynchronous CLOCK_RATE_SET requests advertised to agents with a
/// P2A channel (PROTOCOL_ATTRIBUTES [23:16]). The server completes every
/// request before answering the next command, so nothing ever stays
/// pending; the outbox bounds what can be queued (BUSY otherwise).
pub const MAX_ASYNC: u32 = 8;

/// Extended configuration type: duty cycle, in percent (clk-scmi divides
/// by 100).
pub const EXT_DUTY_CYCLE: u8 = 0x01;
/// Extended configuration type: phase, in degrees.
pub const EXT_PHASE: u8 = 0x02;

/// CLOCK_GET_PERMISSIONS bits (§4.6.2.17): what the agent may control.
pub mod perm {
    /// Enable/disable through CLOCK_CONFIG_SET.
    pub const STATE: u32 = 1 << 31;
    /// CLOCK_PARENT_SET.
    pub const PARENT: u32 = 1 << 30;
    /// CLOCK_RATE_SET.
    pub const RATE: u32 = 1 << 29;
    /// Everything allowed (an unrestricted clock).
    pub const ALL: u32 = STATE | PARENT | RATE;
}

/// The rates a clock can run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rates {
    /// Discrete rates in Hz, ascending, without duplicates. Linux 6.12
    /// accepts at most 16.
    List(&'static [u64]),
    /// Every `min + k * step` up to `max` (Hz). A zero step means any rate
    /// in `[min, max]`.
    Range {
        /// Lowest rate.
        min: u64,
        /// Highest rate.
        max: u64,
        /// Step between rates.
        step: u64,
    },
}

/// How CLOCK_RATE_SET rounds a rate the clock cannot produce exactly
/// (flags [3:2]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// The highest supported rate not above the request.
    Down,
    /// The lowest supported rate not below the request.
    Up,
    /// The supported rate nearest to the request (the lower on a tie).
    Closest,
}

impl Rates {
    /// Number of entries CLOCK_DESCRIBE_RATES describes (3 for a range).
    pub fn len(&self) -> usize {
        match self {
            Rates::List(r) => r.len(),
            Rates::Range { .. } => 3,
        }
    }

    /// Whether there is nothing to describe.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lowest and highest supported rates.
    pub fn bounds(&self) -> Option<(u64, u64)> {
        match *self {
            Rates::List(r) => Some((*r.first()?, *r.last()?)),
            Rates::Range { min, max, .. } => (min <= max).then_some((min, self.top()?)),
        }
    }

    /// The highest rate a range reaches (`max` rounded down to the step).
    fn top(&self) -> Option<u64> {
        match *self {
            Rates::List(r) => r.last().copied(),
            Rates::Range { min, max, step } => {
                let span = max.checked_sub(min)?;
                // A zero step: every rate up to max.
                Some(span.checked_div(step).map_or(max, |k| min + k * step))
            }
        }
    }

    /// Whether `rate` is exactly one of the supported rates.
    pub fn contains(&self, rate: u64) -> bool {
        self.round(rate, Round::Down) == Some(rate)
    }

    /// The supported rate `round` picks for `rate`; `None` if there is none
    /// in that direction.
    pub fn round(&self, rate: u64, round: Round) -> Option<u64> {
        let (down, up) = match *self {
            Rates::List(r) => (
                r.iter().copied().filter(|&x| x <= rate).max(),
                r.iter().copied().filter(|&x| x >= rate).min(),
            ),
            Rates::Range { min, step, .. } => {
                let top = self.top()?;
                if rate < min {
                    (None, Some(min))
                } else if rate >= top {
                    (Some(top), (rate == top).then_some(top))
                } else {
                    match (rate - min).checked_div(step) {
                        // A zero step: every rate in the range.
                        None => (Some(rate), Some(rate)),
                        Some(k) => {
                            let below = min + k * step;
                            let above = if below == rate {
                                Some(rate)
                            } else {
                                below.checked_add(step).filter(|&x| x <= top)
                            };
                            (Some(below), above)
                        }
                    }
                }
            }
        };
        match round {
            Round::Down => down,
            Round::Up => up,
            Round::Closest => match (down, up) {
                (Some(d), Some(u)) => Some(if rate - d <= u - rate { d } else { u }),
                (d, u) => d.or(u),
            },
        }
    }
}

/// One clock, as the platform describes it.
#[derive(Debug, Clone, Copy)]
pub struct ClockDesc {
    /// Name: non-empty and unique (clk-scmi registers clocks by name and
    /// skips empty ones). Up to 63 characters; names longer than 15 are
    /// served through CLOCK_NAME_GET.
    pub name: &'static str,
    /// Supported rates.
    pub rates: Rates,
    /// Possible parents (clock ids below the clock count), empty for a
    /// clock without a parent mux. At most 255.
    pub parents: &'static [u32],
    /// Worst-case enable latency in µs, 0 if not reported.
    pub enable_latency_us: u32,
    /// Whether rate notifications (changed and change-requested) are
    /// supported for this clock.
    pub rate_notify: bool,
    /// Extended configuration types supported ([`EXT_DUTY_CYCLE`],
    /// [`EXT_PHASE`], OEM types 0x80..=0xFF); empty if none.
    pub ext_config: &'static [u8],
    /// What agents may control ([`perm`] bits). Anything short of
    /// [`perm::ALL`] marks the clock restricted (CLOCK_ATTRIBUTES [1]).
    pub permissions: u32,
}

/// The platform side of the clock protocol. The defaults mean "no clocks":
/// every state method answers NOT_SUPPORTED.
pub trait ClockPlatform {
    /// The clocks, indexed by clock id.
    fn clocks(&self) -> &'static [ClockDesc] {
        &[]
    }

    /// Current rate (the rate it will run at once enabled, if disabled).
    fn clock_rate(&self, clock: u32) -> Result<u64, Status> {
        let _ = clock;
        Err(Status::NotSupported)
    }

    /// Sets the rate; `rate` is already one of the supported rates.
    fn clock_set_rate(&mut self, agent: u32, clock: u32, rate: u64) -> Result<(), Status> {
        let _ = (agent, clock, rate);
        Err(Status::NotSupported)
    }

    /// Whether the clock runs.
    fn clock_enabled(&self, clock: u32) -> Result<bool, Status> {
        let _ = clock;
        Err(Status::NotSupported)
    }

    /// `agent` asks for the clock to run or stop.
    fn clock_set_enabled(&mut self, agent: u32, clock: u32, on: bool) -> Result<(), Status> {
        let _ = (agent, clock, on);
        Err(Status::NotSupported)
    }

    /// Value of extended configuration `kind` (one the clock lists).
    fn clock_ext_config(&self, clock: u32, kind: u8) -> Result<u32, Status> {
        let _ = (clock, kind);
        Err(Status::NotSupported)
    }

    /// Sets extended configuration `kind` (one the clock lists);
    /// INVALID_PARAMETERS for a value the clock cannot take.
    fn clock_set_ext_config(
        &mut self,
        agent: u32,
        clock: u32,
        kind: u8,
        value: u32,
    ) -> Result<(), Status> {
        let _ = (agent, clock, kind, value);
        Err(Status::NotSupported)
    }

    /// Current parent (a clock id).
    fn clock_parent(&self, clock: u32) -> Result<u32, Status> {
        let _ = clock;
        Err(Status::NotSupported)
    }

    /// Selects `parent`, one of the clock's possible parents.
    fn clock_set_parent(&mut self, agent: u32, clock: u32, parent: u32) -> Result<(), Status> {
        let _ = (agent, clock, parent);
        Err(Status::NotSupported)
    }
}

/// The table entry.
pub const fn protocol<P: ClockPlatform, const A: usize>() -> Protocol<P, A> {
    Protocol {
        id: ID,
        version: VERSION,
        present: |p| !p.clocks().is_empty(),
        handle,
        message_attributes,
        tick: None,
    }
}

/// Every message id Clock 3.0 defines (§4.6.2).
const MESSAGES: &[u8] = &[
    PROTOCOL_VERSION,
    PROTOCOL_ATTRIBUTES,
    PROTOCOL_MESSAGE_ATTRIBUTES,
    CLOCK_ATTRIBUTES,
    CLOCK_DESCRIBE_RATES,
    CLOCK_RATE_SET,
    CLOCK_RATE_GET,
    CLOCK_CONFIG_SET,
    CLOCK_NAME_GET,
    CLOCK_RATE_NOTIFY,
    CLOCK_RATE_CHANGE_REQUESTED_NOTIFY,
    CLOCK_CONFIG_GET,
    CLOCK_POSSIBLE_PARENTS_GET,
    CLOCK_PARENT_SET,
    CLOCK_PARENT_GET,
    CLOCK_GET_PERMISSIONS,
    NEGOTIATE_PROTOCOL_VERSION,
];

/// Subscriptions are tracked for resource ids below this (one bit each in
/// [`crate::server::AgentState::notify`]).
const NOTIFY_IDS: u32 = 128;

/// Short names are 15 characters plus the NUL (§4.6.2.5).
const SHORT_NAME: usize = 15;

fn message_attributes<P: ClockPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    id: u8,
) -> Result<u32, Status> {
    if !MESSAGES.contains(&id) {
        return Err(Status::NotFound);
    }
    // Notifications travel on the P2A channel; without one the notify
    // commands exist but are not available to this agent.
    if matches!(id, CLOCK_RATE_NOTIFY | CLOCK_RATE_CHANGE_REQUESTED_NOTIFY) && !cx.p2a {
        return Err(Status::NotSupported);
    }
    Ok(0)
}

/// The clock `id` if the caller may see it (NOT_FOUND otherwise).
fn clock<P: ClockPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    id: u32,
) -> Result<&'static ClockDesc, Status> {
    cx.resource(cx.platform.clocks(), id)
}

/// Whether rate notifications can be offered for clock `id` to this agent.
fn notify_capable<P: ClockPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    d: &ClockDesc,
    id: u32,
) -> bool {
    cx.p2a && d.rate_notify && id < NOTIFY_IDS
}

fn handle<P: ClockPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    id: u8,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    match id {
        PROTOCOL_ATTRIBUTES => {
            // §4.6.2.3: [23:16] max pending async rate changes, [15:0]
            // clocks. Asynchronous requests need a P2A channel.
            let n = cx.platform.clocks().len().min(0xffff) as u32;
            let max_async = if cx.p2a { MAX_ASYNC } else { 0 };
            out.u32(max_async << 16 | n)
        }
        CLOCK_ATTRIBUTES => attributes(cx, args, out),
        CLOCK_DESCRIBE_RATES => describe_rates(cx, args, out),
        CLOCK_RATE_SET => rate_set(cx, args),
        CLOCK_RATE_GET => {
            let c = args.u32()?;
            clock(cx, c)?;
            out.u64(cx.platform.clock_rate(c)?)
        }
        CLOCK_CONFIG_SET => config_set(cx, args),
        CLOCK_CONFIG_GET => config_get(cx, args, out),
        CLOCK_NAME_GET => {
            // SCMI v3.2 §4.6.2 CLOCK_NAME_GET, the common extended-name
            // layout: flags, name[64].
            let c = args.u32()?;
            let d = clock(cx, c)?;
            if d.name.len() <= SHORT_NAME {
                return Err(Status::NotSupported);
            }
            out.u32(0)?;
            out.name::<64>(d.name)
        }
        CLOCK_RATE_NOTIFY => rate_notify(cx, args, NotifyKind::ClockRate),
        CLOCK_RATE_CHANGE_REQUESTED_NOTIFY => rate_notify(cx, args, NotifyKind::ClockRateRequested),
        CLOCK_POSSIBLE_PARENTS_GET => possible_parents(cx, args, out),
        CLOCK_PARENT_SET => {
            let c = args.u32()?;
            let parent = args.u32()?;
            let d = clock(cx, c)?;
            // §4.6.2.15.
            if d.parents.is_empty() {
                return Err(Status::NotSupported);
            }
            if d.permissions & perm::PARENT == 0 {
                return Err(Status::Denied);
            }
            if parent as usize >= cx.platform.clocks().len() {
                return Err(Status::NotFound);
            }
            if !d.parents.contains(&parent) {
                return Err(Status::InvalidParameters);
            }
            cx.platform.clock_set_parent(cx.agent, c, parent)
        }
        CLOCK_PARENT_GET => {
            let c = args.u32()?;
            let d = clock(cx, c)?;
            // §4.6.2.16.
            if d.parents.is_empty() {
                return Err(Status::NotSupported);
            }
            out.u32(cx.platform.clock_parent(c)?)
        }
        CLOCK_GET_PERMISSIONS => {
            // §4.6.2.17: [31] state, [30] parent, [29] rate control allowed.
            let c = args.u32()?;
            let d = clock(cx, c)?;
            out.u32(d.permissions & perm::ALL)
        }
        _ => Err(Status::NotFound),
    }
}

/// CLOCK_ATTRIBUTES (§4.6.2.5): attributes, name[16], enable latency.
fn attributes<P: ClockPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let c = args.u32()?;
    let d = clock(cx, c)?;
    let mut attrs = 0u32;
    if notify_capable(cx, d, c) {
        // [31] rate changed, [30] rate change requested.
        attrs |= 1 << 31 | 1 << 30;
    }
    if d.name.len() > SHORT_NAME {
        attrs |= 1 << 29;
    }
    if !d.parents.is_empty() {
        attrs |= 1 << 28;
    }
    if !d.ext_config.is_empty() {
        attrs |= 1 << 27;
    }
    if d.permissions & perm::ALL != perm::ALL {
        // [1]: restricted, CLOCK_GET_PERMISSIONS describes how.
        attrs |= 1 << 1;
    }
    if cx.platform.clock_enabled(c)? {
        attrs |= 1;
    }
    out.u32(attrs)?;
    out.name::<16>(d.name)?;
    out.u32(d.enable_latency_us)
}

/// CLOCK_DESCRIBE_RATES (§4.6.2.6): as many rates as fit from `rate_index`,
/// or the one triplet of a range.
fn describe_rates<P: ClockPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let c = args.u32()?;
    let index = args.u32()? as usize;
    let d = clock(cx, c)?;
    match d.rates {
        Rates::Range { min, max, step } => {
            // [12] = 1: triplet, returned 3, remaining 0, in one reply.
            if index != 0 {
                return Err(Status::OutOfRange);
            }
            out.u32(1 << 12 | 3)?;
            out.u64(min)?;
            out.u64(max)?;
            out.u64(step)
        }
        Rates::List(rates) => {
            // A start at or past the last rate is OUT_OF_RANGE here.
            if index >= rates.len() {
                return Err(Status::OutOfRange);
            }
            out.list_page(rates, index, 8, |out, _, &r| out.u64(r))
        }
    }
}

/// CLOCK_RATE_SET (§4.6.2.7), with CLOCK_RATE_SET_COMPLETE (§4.6.3.1) and
/// the rate notifications.
fn rate_set<P: ClockPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
) -> Result<(), Status> {
    let flags = args.u32()?;
    let c = args.u32()?;
    let requested = args.u64()?;
    let d = clock(cx, c)?;
    // [31:4] reserved.
    if flags & !0xf != 0 {
        return Err(Status::InvalidParameters);
    }
    if d.permissions & perm::RATE == 0 {
        return Err(Status::Denied);
    }
    let asynchronous = flags & 1 != 0;
    // [1] suppresses the delayed response, and only for async requests.
    let respond_late = asynchronous && flags & 2 == 0;
    if asynchronous {
        if !cx.p2a {
            return Err(Status::NotSupported);
        }
        if respond_late && !cx.can_delay() {
            return Err(Status::Busy);
        }
    }
    // [3] = 1: closest; else [2] = 1 up, 0 down.
    let round = if flags & 8 != 0 {
        Round::Closest
    } else if flags & 4 != 0 {
        Round::Up
    } else {
        Round::Down
    };
    let rate = d
        .rates
        .round(requested, round)
        .ok_or(Status::InvalidParameters)?;
    let before = cx.platform.clock_rate(c).ok();
    cx.platform.clock_set_rate(cx.agent, c, rate)?;
    // The delayed response first: can_delay() reserved its slot, and
    // notifications must not take it.
    if respond_late {
        cx.delayed_response(&words(&[0, c, rate as u32, (rate >> 32) as u32]))?;
    }
    if d.rate_notify {
        let agent = cx.agent;
        cx.notify_all(
            NotifyKind::ClockRateRequested,
            c,
            CLOCK_RATE_CHANGE_REQUESTED,
            &words(&[agent, c, requested as u32, (requested >> 32) as u32]),
        );
        if before != Some(rate) {
            cx.notify_all(
                NotifyKind::ClockRate,
                c,
                CLOCK_RATE_CHANGED,
                &words(&[agent, c, rate as u32, (rate >> 32) as u32]),
            );
        }
    }
    Ok(())
}

/// CLOCK_CONFIG_SET, 3.0 layout (§4.6.2.9): clock_id, attributes,
/// extended_config_val.
fn config_set<P: ClockPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
) -> Result<(), Status> {
    let c = args.u32()?;
    let attrs = args.u32()?;
    let kind = (attrs >> 16) as u8;
    let state = attrs & 3;
    // The value word only matters with an extended type; a Clock 2.x agent
    // that never negotiated sends 8 bytes, which is accepted then.
    let value = if kind != 0 { args.u32()? } else { 0 };
    let d = clock(cx, c)?;
    // [31:24] and [15:2] reserved; state 2 reserved; state 3 ("unchanged")
    // only with an extended type.
    if attrs & 0xff00_fffc != 0 || state == 2 || (state == 3 && kind == 0) {
        return Err(Status::InvalidParameters);
    }
    if kind != 0 {
        check_ext(d, kind)?;
    }
    let change_state = state < 2;
    if change_state && d.permissions & perm::STATE == 0 {
        return Err(Status::Denied);
    }
    if kind != 0 {
        cx.platform.clock_set_ext_config(cx.agent, c, kind, value)?;
    }
    if change_state {
        cx.platform.clock_set_enabled(cx.agent, c, state == 1)?;
    }
    Ok(())
}

/// NOT_SUPPORTED without extended configuration, INVALID_PARAMETERS for a
/// type the clock does not have.
fn check_ext(d: &ClockDesc, kind: u8) -> Result<(), Status> {
    if d.ext_config.is_empty() {
        Err(Status::NotSupported)
    } else if d.ext_config.contains(&kind) {
        Ok(())
    } else {
        Err(Status::InvalidParameters)
    }
}

/// CLOCK_CONFIG_GET (§4.6.2.10): attributes (0), config ([0] enabled),
/// extended_config_val.
fn config_get<P: ClockPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let c = args.u32()?;
    let flags = args.u32()?;
    let d = clock(cx, c)?;
    if flags & !0xff != 0 {
        return Err(Status::InvalidParameters);
    }
    let kind = flags as u8;
    let value = if kind == 0 {
        0
    } else {
        check_ext(d, kind)?;
        cx.platform.clock_ext_config(c, kind)?
    };
    let on = cx.platform.clock_enabled(c)?;
    out.u32(0)?;
    out.u32(u32::from(on))?;
    out.u32(value)
}

/// CLOCK_RATE_NOTIFY / CLOCK_RATE_CHANGE_REQUESTED_NOTIFY (SCMI v3.2 §4.6.2):
/// clock_id, notify_enable [0].
fn rate_notify<P: ClockPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
    kind: NotifyKind,
) -> Result<(), Status> {
    let c = args.u32()?;
    let enable = args.u32()?;
    let d = clock(cx, c)?;
    if enable & !1 != 0 {
        return Err(Status::InvalidParameters);
    }
    if !notify_capable(cx, d, c) {
        return Err(Status::NotSupported);
    }
    cx.me()?.set_notify(kind, c, enable & 1 != 0)
}

/// CLOCK_POSSIBLE_PARENTS_GET (§4.6.2.14): [31:24] remaining, [7:0]
/// returned, then the clock ids.
fn possible_parents<P: ClockPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let c = args.u32()?;
    let skip = args.u32()? as usize;
    let d = clock(cx, c)?;
    if d.parents.is_empty() {
        return Err(Status::NotSupported);
    }
    let left = d
        .parents
        .len()
        .checked_sub(skip)
        .filter(|&n| n > 0)
        .ok_or(Status::OutOfRange)?;
    let (n, remaining) = out.page(left, 4, 4, 0xff, 0xff)?;
    out.u32(remaining << 24 | n as u32)?;
    for &p in d.parents.get(skip..skip + n).ok_or(Status::GenericError)? {
        out.u32(p)?;
    }
    Ok(())
}

/// Little-endian bytes of four words (notification and delayed-response
/// bodies).
fn words(w: &[u32; 4]) -> [u8; 16] {
    crate::wire::le_words(w)
}
