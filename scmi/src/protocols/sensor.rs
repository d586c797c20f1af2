//! Sensor management protocol 3.1 (id 0x15; SCMI v3.2 §4.7).
//!
//! Mirrors what `drivers/firmware/arm_scmi/sensors.c` of Linux 6.12 sends
//! and parses (its supported version is 0x30001, the version served here):
//!
//! * descriptors are packed exactly as that driver walks them: 28 bytes,
//!   plus 4 (`sensor_power`) with extended attributes, plus 20 more
//!   (resolution and range) only when the sensor also has no axes
//!   (`iter_sens_descr_process_response`); sensor id == index;
//! * multi-part replies fill exactly the space the agent gave and count
//!   what remains exactly (the Linux iterator trusts `num_returned`);
//! * SENSOR_AXIS_DESCRIPTION_GET failing aborts the whole protocol in
//!   Linux, so, like SENSOR_DESCRIPTION_GET, it describes every sensor to
//!   every agent; all other per-sensor commands are subject to visibility;
//! * async reads, trip-point and continuous-update notifications exist only
//!   for an agent with a P2A channel; without one their capability bits are
//!   cleared in the descriptors and the commands answer NOT_SUPPORTED.
//!
//! Time: [`Server::tick`](crate::Server::tick) calls this protocol's `tick`,
//! which lets the platform move its sensors
//! ([`SensorPlatform::sensor_advance`]) and turns the events it reports into
//! SENSOR_TRIP_POINT_EVENT and SENSOR_UPDATE notifications.

use core::num::NonZeroU128;

use crate::context::{Cx, NotifyKind};
use crate::header::MAX_MESSAGE;
use crate::header::Status;
use crate::protocols::{
    NEGOTIATE_PROTOCOL_VERSION, PROTOCOL_ATTRIBUTES, PROTOCOL_MESSAGE_ATTRIBUTES, PROTOCOL_VERSION,
    Protocol,
};
use crate::wire::{Args, Reply};

/// Protocol id.
pub const ID: u8 = 0x15;
/// Version implemented: 3.1.
pub const VERSION: u32 = 0x0003_0001;

/// SENSOR_DESCRIPTION_GET.
pub const DESCRIPTION_GET: u8 = 0x3;
/// SENSOR_TRIP_POINT_NOTIFY.
pub const TRIP_POINT_NOTIFY: u8 = 0x4;
/// SENSOR_TRIP_POINT_CONFIG.
pub const TRIP_POINT_CONFIG: u8 = 0x5;
/// SENSOR_READING_GET (and its delayed response SENSOR_READING_COMPLETE).
pub const READING_GET: u8 = 0x6;
/// SENSOR_AXIS_DESCRIPTION_GET.
pub const AXIS_DESCRIPTION_GET: u8 = 0x7;
/// SENSOR_LIST_UPDATE_INTERVALS.
pub const LIST_UPDATE_INTERVALS: u8 = 0x8;
/// SENSOR_CONFIG_GET.
pub const CONFIG_GET: u8 = 0x9;
/// SENSOR_CONFIG_SET.
pub const CONFIG_SET: u8 = 0xA;
/// SENSOR_CONTINUOUS_UPDATE_NOTIFY.
pub const CONTINUOUS_UPDATE_NOTIFY: u8 = 0xB;
/// SENSOR_NAME_GET.
pub const NAME_GET: u8 = 0xC;
/// SENSOR_AXIS_NAME_GET.
pub const AXIS_NAME_GET: u8 = 0xD;

/// Notification SENSOR_TRIP_POINT_EVENT.
pub const TRIP_POINT_EVENT: u8 = 0x0;
/// Notification SENSOR_UPDATE.
pub const SENSOR_UPDATE: u8 = 0x1;

/// Most readings one sensor reports (one per axis). A synchronous reply
/// of [`MAX_MESSAGE`] bytes holds 8 readings of 16 bytes; a delayed
/// response or an update notification 7.
pub const MAX_READINGS: usize = (MAX_MESSAGE - 8) / 16;

/// Most axes a sensor may declare (6-bit field, §4.7.2.5).
pub const MAX_AXES: usize = 63;

/// Longest name (extended names, NUL excluded; §4.7.2.14).
pub const MAX_NAME: usize = 63;

/// Short names carry at most this many characters; longer names set the
/// extended-name bit and are served by SENSOR_NAME_GET.
const SHORT_NAME: usize = 15;

const MESSAGES: &[u8] = &[
    PROTOCOL_VERSION,
    PROTOCOL_ATTRIBUTES,
    PROTOCOL_MESSAGE_ATTRIBUTES,
    DESCRIPTION_GET,
    TRIP_POINT_NOTIFY,
    TRIP_POINT_CONFIG,
    READING_GET,
    AXIS_DESCRIPTION_GET,
    LIST_UPDATE_INTERVALS,
    CONFIG_GET,
    CONFIG_SET,
    CONTINUOUS_UPDATE_NOTIFY,
    NAME_GET,
    AXIS_NAME_GET,
    NEGOTIATE_PROTOCOL_VERSION,
];

/// An update interval: `secs` × 10^`exp` seconds (§4.7.2.7, §4.7.2.11).
/// `exp` is a 5-bit two's-complement power of ten, -16..=15.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Mantissa (16 bits).
    pub secs: u16,
    /// Power of ten, -16..=15.
    pub exp: i8,
}

/// Sign-extends a 5-bit two's-complement field.
const fn sext5(v: u32) -> i8 {
    let v = (v & 0x1f) as i8;
    if v & 0x10 != 0 { v - 32 } else { v }
}

/// 10^n for n in 0..=38.
/// 10^`n`, saturating; never zero, which the type says, so dividing by it
/// has no division-by-zero panic path.
const fn pow10(n: u32) -> NonZeroU128 {
    match 10u128.checked_pow(n) {
        Some(p) => match NonZeroU128::new(p) {
            Some(p) => p,
            None => NonZeroU128::MAX,
        },
        None => NonZeroU128::MAX,
    }
}

impl Interval {
    /// `secs` × 10^`exp` seconds; `exp` is clamped to -16..=15.
    pub const fn new(secs: u16, exp: i8) -> Self {
        let exp = if exp < -16 {
            -16
        } else if exp > 15 {
            15
        } else {
            exp
        };
        Interval { secs, exp }
    }

    /// The word SENSOR_LIST_UPDATE_INTERVALS returns: [20:5] seconds,
    /// [4:0] exponent (§4.7.2.7; Linux `SCMI_SENS_INTVL_*`).
    pub const fn list_word(self) -> u32 {
        (self.secs as u32) << 5 | (self.exp as u32 & 0x1f)
    }

    /// The bits SENSOR_CONFIG_GET/SET carry: [31:16] seconds, [15:11]
    /// exponent (§4.7.2.10; a different placement from the list word).
    pub const fn config_bits(self) -> u32 {
        (self.secs as u32) << 16 | (self.exp as u32 & 0x1f) << 11
    }

    /// The interval in a sensor_config word.
    pub const fn from_config(config: u32) -> Self {
        Interval {
            secs: (config >> 16) as u16,
            exp: sext5(config >> 11),
        }
    }

    /// The interval in units of 10^-16 s (exact for every encodable value).
    pub const fn units(self) -> u128 {
        let e = self.exp as i32 + 16;
        let e = if e < 0 {
            0
        } else if e > 31 {
            31
        } else {
            e as u32
        };
        self.secs as u128 * pow10(e).get()
    }

    /// The interval in whole milliseconds (rounded down).
    pub fn millis(self) -> u64 {
        u64::try_from(self.units() / pow10(13)).unwrap_or(u64::MAX)
    }

    /// The encoding of `units` with the smallest exponent ≥ `min_exp` that
    /// represents it exactly in 16 bits, else the closest one that fits.
    fn from_units(units: u128, min_exp: i8) -> Self {
        let lo = (i32::from(min_exp) + 16).clamp(0, 31) as u32;
        for e in lo..=31 {
            let p = pow10(e);
            if units.is_multiple_of(p.get()) && units / p <= 0xffff {
                return Interval::new((units / p) as u16, e as i8 - 16);
            }
        }
        for e in lo..=31 {
            let p = pow10(e);
            let q = (units + p.get() / 2) / p;
            if q <= 0xffff {
                return Interval::new(q as u16, e as i8 - 16);
            }
        }
        Interval::new(0xffff, 15)
    }
}

/// The update intervals a sensor supports (§4.7.2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intervals {
    /// No configurable update interval (SENSOR_LIST_UPDATE_INTERVALS
    /// answers NOT_SUPPORTED).
    None,
    /// A discrete list, ascending.
    List(&'static [Interval]),
    /// Every `low + k·step` up to `high`.
    Segment {
        /// Shortest interval.
        low: Interval,
        /// Longest interval.
        high: Interval,
        /// Granularity.
        step: Interval,
    },
}

impl Intervals {
    /// Whether there is at least one interval.
    pub fn any(&self) -> bool {
        match self {
            Intervals::None => false,
            Intervals::List(l) => !l.is_empty(),
            Intervals::Segment { .. } => true,
        }
    }

    /// The supported interval for a request, rounded as asked (§4.7.2.11:
    /// [10] auto = closest, else [9] up or down). A request beyond the
    /// supported range gets the nearest end.
    pub fn choose(&self, want: Interval, round: Round) -> Option<Interval> {
        let r = want.units();
        let (down, up) = match *self {
            Intervals::None => return None,
            Intervals::List(l) => {
                let down = l
                    .iter()
                    .filter(|i| i.units() <= r)
                    .max_by_key(|i| i.units());
                let up = l
                    .iter()
                    .filter(|i| i.units() >= r)
                    .min_by_key(|i| i.units());
                (down.copied(), up.copied())
            }
            Intervals::Segment { low, high, step } => {
                let (l, h, s) = (low.units(), high.units(), step.units());
                let fine = low.exp.min(step.exp);
                let at = |k: u128| {
                    let v = l.saturating_add(k.saturating_mul(s));
                    if v >= h {
                        high
                    } else {
                        Interval::from_units(v, fine)
                    }
                };
                let down = if r < l {
                    None
                } else if r >= h {
                    Some(high)
                } else {
                    // A zero step allows only the two ends.
                    Some((r - l).checked_div(s).map_or(low, at))
                };
                let up = if r <= l {
                    Some(low)
                } else if r > h {
                    None
                } else {
                    Some(match (r - l).checked_div(s) {
                        None => high,
                        Some(q) if q.saturating_mul(s) == r - l => at(q),
                        Some(q) => at(q.saturating_add(1)),
                    })
                };
                (down, up)
            }
        };
        match round {
            Round::Down => down.or(up),
            Round::Up => up.or(down),
            Round::Auto => match (down, up) {
                (Some(d), Some(u)) => {
                    if r.abs_diff(d.units()) <= u.units().abs_diff(r) {
                        Some(d)
                    } else {
                        Some(u)
                    }
                }
                (d, u) => d.or(u),
            },
        }
    }
}

/// How SENSOR_CONFIG_SET rounds an update interval the sensor lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// The next shorter supported interval.
    Down,
    /// The next longer supported interval.
    Up,
    /// The closest supported interval.
    Auto,
}

/// Resolution and range of a scalar sensor or of one axis (§4.7.2.5,
/// §4.7.2.6 extended attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Resolution mantissa (27 bits).
    pub resolution: u32,
    /// Resolution power of ten (5-bit signed).
    pub resolution_exp: i8,
    /// Smallest value the sensor reports.
    pub min: i64,
    /// Largest value the sensor reports.
    pub max: i64,
}

impl Range {
    fn resolution_word(&self) -> u32 {
        (self.resolution_exp as u32 & 0x1f) << 27 | self.resolution & 0x07ff_ffff
    }
}

/// Extended attributes of a sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtAttrs {
    /// Power drawn while active, µW.
    pub power_uw: u32,
    /// Resolution and range; only described for sensors without axes
    /// (axes carry their own).
    pub range: Range,
}

/// One axis of a multi-axis sensor (§4.7.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisDesc {
    /// Name (≤ 63 characters; more than 15 sets the extended-name bit).
    pub name: &'static str,
    /// Unit / type code (DMTF DSP0249, Linux `enum scmi_sensor_class`).
    pub class: u8,
    /// Power of ten applied to values (5-bit signed).
    pub scale: i8,
    /// Extended attributes (48-byte descriptor instead of 28).
    pub ext: Option<Range>,
}

/// A sensor, as SENSOR_DESCRIPTION_GET describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SensorDesc {
    /// Name (≤ 63 characters; more than 15 sets the extended-name bit).
    pub name: &'static str,
    /// Unit / type code: 2 °C, 5 V, 6 A, 7 W, 8 J, 0x13 RPM, 0x57 rad/s,
    /// 0x59 m/s² …
    pub class: u8,
    /// Power of ten applied to values (5-bit signed).
    pub scale: i8,
    /// Number of configurable trip points.
    pub trip_points: u8,
    /// Whether SENSOR_READING_GET may be asynchronous.
    pub async_read: bool,
    /// Whether SENSOR_CONTINUOUS_UPDATE_NOTIFY is supported (needs
    /// [`SensorDesc::intervals`]).
    pub update_notify: bool,
    /// `Some(exp)`: readings may carry timestamps in 10^exp seconds.
    pub timestamp_exp: Option<i8>,
    /// Extended attributes.
    pub ext: Option<ExtAttrs>,
    /// Axes; empty for a scalar sensor.
    pub axes: &'static [AxisDesc],
    /// Supported update intervals.
    pub intervals: Intervals,
}

impl SensorDesc {
    /// Number of readings the sensor reports: one per axis, or one.
    pub fn readings(&self) -> usize {
        self.axes.len().max(1)
    }

    /// Bytes of this sensor's descriptor, by the Linux 6.12 packing rule.
    pub fn descriptor_len(&self) -> usize {
        match (self.ext, self.axes.is_empty()) {
            (None, _) => 28,
            (Some(_), false) => 32,
            (Some(_), true) => 52,
        }
    }
}

/// A sensor's configuration (§4.7.2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SensorConfig {
    /// The sensor is sampling.
    pub enabled: bool,
    /// Readings carry timestamps.
    pub timestamps: bool,
    /// Current update interval, if the sensor has one.
    pub interval: Option<Interval>,
}

impl SensorConfig {
    /// The sensor_config word of SENSOR_CONFIG_GET.
    pub fn word(&self) -> u32 {
        self.interval.map_or(0, Interval::config_bits)
            | u32::from(self.timestamps) << 1
            | u32::from(self.enabled)
    }
}

/// When a trip point fires (§4.7.2.9 event control [1:0]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TripMode {
    /// Never (default).
    Disabled,
    /// On reaching or crossing the value upward.
    Up,
    /// On crossing the value downward.
    Down,
    /// Either way.
    Both,
}

impl TripMode {
    fn from_bits(v: u32) -> Self {
        match v & 3 {
            0 => TripMode::Disabled,
            1 => TripMode::Up,
            2 => TripMode::Down,
            _ => TripMode::Both,
        }
    }

    /// Whether a crossing in that direction fires.
    pub fn fires(self, upward: bool) -> bool {
        match self {
            TripMode::Disabled => false,
            TripMode::Up => upward,
            TripMode::Down => !upward,
            TripMode::Both => true,
        }
    }
}

/// One sample of one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    /// Value in the sensor's (or axis') unit and scale.
    pub value: i64,
    /// Time of the sample in the sensor's timestamp unit.
    pub timestamp: u64,
}

/// Something the platform noticed while time passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorEvent {
    /// A trip point of `sensor` was reached or crossed.
    Trip {
        /// Sensor id.
        sensor: u32,
        /// Trip point id.
        trip: u8,
        /// Crossed upward (else downward).
        upward: bool,
    },
    /// `sensor` took a new sample at its update interval.
    Update {
        /// Sensor id.
        sensor: u32,
    },
}

/// The platform side of the sensor protocol. Defaults: no sensors.
pub trait SensorPlatform {
    /// The sensors; id = index.
    fn sensors(&self) -> &'static [SensorDesc] {
        &[]
    }

    /// Most asynchronous readings outstanding at once (PROTOCOL_ATTRIBUTES
    /// [23:16]).
    fn sensor_max_async(&self) -> u8 {
        0
    }

    /// Shared-memory sensor reading statistics: (address, length); length
    /// 0 = none (§4.7.2.3).
    fn sensor_stats_region(&self) -> (u64, u32) {
        (0, 0)
    }

    /// Samples `sensor`: one reading per axis (or one) into `out`, which
    /// holds exactly that many. HARDWARE_ERROR on a sensor fault.
    fn sensor_read(&mut self, sensor: u32, out: &mut [Reading]) -> Result<(), Status> {
        let _ = (sensor, out);
        Err(Status::NotSupported)
    }

    /// The sensor's current configuration.
    fn sensor_config(&self, sensor: u32) -> Result<SensorConfig, Status> {
        let _ = sensor;
        Err(Status::NotSupported)
    }

    /// Applies a configuration (already validated against the sensor's
    /// description) on behalf of `agent`.
    fn sensor_set_config(
        &mut self,
        agent: u32,
        sensor: u32,
        config: SensorConfig,
    ) -> Result<(), Status> {
        let _ = (agent, sensor, config);
        Err(Status::NotSupported)
    }

    /// Configures trip point `trip` (< the sensor's trip points) on behalf
    /// of `agent`.
    fn sensor_set_trip(
        &mut self,
        agent: u32,
        sensor: u32,
        trip: u8,
        mode: TripMode,
        value: i64,
    ) -> Result<(), Status> {
        let _ = (agent, sensor, trip, mode, value);
        Err(Status::NotSupported)
    }

    /// Time is now `now_ms`: sensors move, trip points and update
    /// intervals may produce events.
    fn sensor_advance(&mut self, now_ms: u64) {
        let _ = now_ms;
    }

    /// The next pending event, if any.
    fn sensor_event(&mut self) -> Option<SensorEvent> {
        None
    }
}

/// The table entry.
pub const fn protocol<P: SensorPlatform, const A: usize>() -> Protocol<P, A> {
    Protocol {
        id: ID,
        version: VERSION,
        present,
        handle,
        message_attributes,
        tick: Some(tick),
    }
}

fn present<P: SensorPlatform>(p: &P) -> bool {
    !p.sensors().is_empty()
}

/// The sensor `id`, NOT_FOUND if it does not exist or the caller may not
/// see it (§4.2.2.12).
fn sensor<P: SensorPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    id: u32,
) -> Result<&'static SensorDesc, Status> {
    cx.resource(cx.platform.sensors(), id)
}

/// The sensor `id` without the visibility check (descriptions).
fn described<P: SensorPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    id: u32,
) -> Result<&'static SensorDesc, Status> {
    cx.platform
        .sensors()
        .get(id as usize)
        .ok_or(Status::NotFound)
}

fn message_attributes<P: SensorPlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    id: u8,
) -> Result<u32, Status> {
    if !MESSAGES.contains(&id) {
        return Err(Status::NotFound);
    }
    let s = cx.platform.sensors();
    match id {
        // Notifications need a P2A channel and a sensor that can raise
        // them; Linux probes both commands this way (sensors.c
        // scmi_sensor_attributes_get).
        TRIP_POINT_NOTIFY if !cx.p2a || !s.iter().any(|d| d.trip_points > 0) => {
            Err(Status::NotSupported)
        }
        CONTINUOUS_UPDATE_NOTIFY if !cx.p2a || !s.iter().any(|d| d.update_notify) => {
            Err(Status::NotSupported)
        }
        _ => Ok(0),
    }
}

fn handle<P: SensorPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    id: u8,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    match id {
        PROTOCOL_ATTRIBUTES => attributes(cx, out),
        DESCRIPTION_GET => description_get(cx, args, out),
        TRIP_POINT_NOTIFY => notify(cx, args, NotifyKind::SensorTrip),
        TRIP_POINT_CONFIG => trip_point_config(cx, args),
        READING_GET => reading_get(cx, args, out),
        AXIS_DESCRIPTION_GET => axis_description_get(cx, args, out),
        LIST_UPDATE_INTERVALS => list_update_intervals(cx, args, out),
        CONFIG_GET => {
            let s = args.u32()?;
            sensor(cx, s)?;
            let c = cx.platform.sensor_config(s)?;
            out.u32(c.word())
        }
        CONFIG_SET => config_set(cx, args),
        CONTINUOUS_UPDATE_NOTIFY => notify(cx, args, NotifyKind::SensorUpdate),
        NAME_GET => {
            // §4.7.2.14: only for sensors whose extended-name bit is set.
            let s = args.u32()?;
            let d = sensor(cx, s)?;
            if d.name.len() <= SHORT_NAME {
                return Err(Status::NotSupported);
            }
            out.u32(0)?;
            out.name::<64>(d.name)
        }
        AXIS_NAME_GET => axis_name_get(cx, args, out),
        _ => Err(Status::NotFound),
    }
}

/// §4.7.2.3: [23:16] max outstanding async reads, [15:0] sensors, then
/// the statistics region address (low, high) and length.
fn attributes<P: SensorPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let n = cx.platform.sensors().len().min(0xffff) as u32;
    // Without a P2A channel no delayed response can arrive.
    let max_async = if cx.p2a {
        u32::from(cx.platform.sensor_max_async())
    } else {
        0
    };
    let (addr, len) = cx.platform.sensor_stats_region();
    out.u32(max_async << 16 | n)?;
    out.u64(addr)?;
    out.u32(len)
}

/// Low attribute word of a sensor descriptor (§4.7.2.5), as seen by an
/// agent with or without a P2A channel.
pub fn attributes_low(d: &SensorDesc, p2a: bool) -> u32 {
    let mut a = u32::from(d.trip_points);
    if d.async_read && p2a {
        a |= 1 << 31;
    }
    if d.update_notify && d.intervals.any() && p2a {
        a |= 1 << 30;
    }
    if d.name.len() > SHORT_NAME {
        a |= 1 << 29;
    }
    if let Some(e) = d.timestamp_exp {
        a |= (e as u32 & 0x1f) << 10 | 1 << 9;
    }
    if d.ext.is_some() {
        a |= 1 << 8;
    }
    a
}

/// High attribute word of a sensor descriptor (§4.7.2.5).
pub fn attributes_high(d: &SensorDesc) -> u32 {
    let axes = d.axes.len().min(MAX_AXES) as u32;
    let multi = if axes > 0 { 1 << 8 } else { 0 };
    axes << 16 | (d.scale as u32 & 0x1f) << 11 | multi | u32::from(d.class)
}

fn write_range(out: &mut Reply<'_>, r: &Range) -> Result<(), Status> {
    out.u32(r.resolution_word())?;
    out.u64(r.min as u64)?;
    out.u64(r.max as u64)
}

/// §4.7.2.5: from `desc_index`, as many descriptors as fit; [31:16]
/// remaining, [11:0] returned.
fn description_get<P: SensorPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let index = args.u32()? as usize;
    let all = cx.platform.sensors();
    let total = all.len().min(0xffff);
    // scmi-tests m005: an index past the last sensor is invalid. Linux
    // asks for index 0 even with no sensors and needs an empty success.
    if index >= total && !(index == 0 && total == 0) {
        return Err(Status::InvalidParameters);
    }
    let mut room = out.remaining().checked_sub(4).ok_or(Status::GenericError)?;
    let mut n = 0;
    // `index <= total` (checked above).
    for d in all.get(index..total).unwrap_or_default() {
        let len = d.descriptor_len();
        if len > room || n == 0xfff {
            break;
        }
        room -= len;
        n += 1;
    }
    let remaining = total - index - n;
    if n == 0 && remaining > 0 {
        // Not even one descriptor fits: an empty page would stall the agent.
        return Err(Status::GenericError);
    }
    out.u32((remaining as u32) << 16 | n as u32)?;
    for (k, d) in all.iter().skip(index).take(n).enumerate() {
        out.u32((index + k) as u32)?;
        out.u32(attributes_low(d, cx.p2a))?;
        out.u32(attributes_high(d))?;
        out.name::<16>(d.name)?;
        if let Some(e) = &d.ext {
            out.u32(e.power_uw)?;
            // Linux 6.12 reads resolution and range only for sensors
            // without axes (sensors.c iter_sens_descr_process_response).
            if d.axes.is_empty() {
                write_range(out, &e.range)?;
            }
        }
    }
    Ok(())
}

/// SENSOR_TRIP_POINT_NOTIFY (§4.7.2.8) and SENSOR_CONTINUOUS_UPDATE_NOTIFY
/// (§4.7.2.13): sensor_id, then [0] enable, [31:1] reserved.
fn notify<P: SensorPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
    kind: NotifyKind,
) -> Result<(), Status> {
    let s = args.u32()?;
    let control = args.u32()?;
    let d = sensor(cx, s)?;
    // §4.7.2.8 / §4.7.2.13: [31:1] reserved.
    if control & !1 != 0 {
        return Err(Status::InvalidParameters);
    }
    // No P2A channel: nowhere to send notifications.
    if !cx.p2a {
        return Err(Status::NotSupported);
    }
    let capable = match kind {
        NotifyKind::SensorTrip => d.trip_points > 0,
        _ => d.update_notify && d.intervals.any(),
    };
    if !capable {
        return Err(Status::NotSupported);
    }
    cx.me()?.set_notify(kind, s, control & 1 != 0)
}

/// §4.7.2.9: event control [11:4] trip id, [1:0] mode, other bits
/// reserved; a signed 64-bit value.
fn trip_point_config<P: SensorPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
) -> Result<(), Status> {
    let s = args.u32()?;
    let control = args.u32()?;
    let value = args.u64()? as i64;
    let d = sensor(cx, s)?;
    if control & !0xff3 != 0 {
        return Err(Status::InvalidParameters);
    }
    if d.trip_points == 0 {
        return Err(Status::NotSupported);
    }
    let trip = (control >> 4) as u8;
    if trip >= d.trip_points {
        return Err(Status::InvalidParameters);
    }
    let agent = cx.agent;
    cx.platform
        .sensor_set_trip(agent, s, trip, TripMode::from_bits(control), value)
}

/// Samples `s` (already found visible) into `buf`; timestamps are cleared
/// unless supported and enabled (§4.7.2.12).
fn sample<'b, P: SensorPlatform>(
    platform: &mut P,
    s: u32,
    d: &SensorDesc,
    config: &SensorConfig,
    buf: &'b mut [Reading; MAX_READINGS],
) -> Result<&'b [Reading], Status> {
    let n = d.readings();
    let out = buf.get_mut(..n).ok_or(Status::GenericError)?;
    platform.sensor_read(s, out)?;
    if d.timestamp_exp.is_none() || !config.timestamps {
        for r in out.iter_mut() {
            r.timestamp = 0;
        }
    }
    Ok(out)
}

fn write_readings(out: &mut Reply<'_>, readings: &[Reading]) -> Result<(), Status> {
    for r in readings {
        out.u64(r.value as u64)?;
        out.u64(r.timestamp)?;
    }
    Ok(())
}

/// §4.7.2.12: flags [0] async, [31:1] reserved. Synchronous replies carry
/// one 16-byte reading per axis; asynchronous ones answer at once and send
/// SENSOR_READING_COMPLETE (§4.7.3.1) as a delayed response.
fn reading_get<P: SensorPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let s = args.u32()?;
    let flags = args.u32()?;
    let d = sensor(cx, s)?;
    if flags & !1 != 0 {
        return Err(Status::InvalidParameters);
    }
    let asynchronous = flags & 1 != 0;
    if asynchronous && !(cx.p2a && d.async_read) {
        return Err(Status::NotSupported);
    }
    let config = cx.platform.sensor_config(s)?;
    // §4.7.2.12: reading a disabled sensor is a PROTOCOL_ERROR.
    if !config.enabled {
        return Err(Status::ProtocolError);
    }
    let mut buf = [Reading::default(); MAX_READINGS];
    if !asynchronous {
        let readings = sample(cx.platform, s, d, &config, &mut buf)?;
        return write_readings(out, readings);
    }
    if !cx.can_delay() {
        return Err(Status::Busy);
    }
    // Room for the body after the 4-byte header the delayed response adds.
    let mut body = [0u8; MAX_MESSAGE - 4];
    let mut w = Reply::new(&mut body);
    match sample(cx.platform, s, d, &config, &mut buf) {
        Ok(readings) => {
            w.i32(Status::Success.code())?;
            w.u32(s)?;
            write_readings(&mut w, readings)?;
        }
        // The failure travels in the delayed response, status only.
        Err(e) => w.i32(e.code())?,
    }
    let len = w.len();
    // `len <= body.len()`: what `w` was given.
    cx.delayed_response(body.get(..len).ok_or(Status::GenericError)?)
}

/// §4.7.2.6: from `axis_desc_index`, as many axis descriptors as fit;
/// [31:26] remaining, [5:0] returned.
fn axis_description_get<P: SensorPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let s = args.u32()?;
    let index = args.u32()? as usize;
    // Described to every agent: Linux aborts the whole sensor protocol if
    // this fails for any sensor (sensors.c scmi_sensor_axis_description).
    let d = described(cx, s)?;
    let axes = d.axes.get(..MAX_AXES).unwrap_or(d.axes);
    if axes.is_empty() {
        return Err(Status::NotSupported);
    }
    if index >= axes.len() {
        return Err(Status::InvalidParameters);
    }
    let mut room = out.remaining().checked_sub(4).ok_or(Status::GenericError)?;
    let mut n = 0;
    for a in axes.get(index..).unwrap_or_default() {
        let len = if a.ext.is_some() { 48 } else { 28 };
        if len > room {
            break;
        }
        room -= len;
        n += 1;
    }
    if n == 0 {
        return Err(Status::GenericError);
    }
    let remaining = axes.len() - index - n;
    out.u32((remaining as u32) << 26 | n as u32)?;
    for (k, a) in axes.iter().skip(index).take(n).enumerate() {
        let mut low = 0;
        if a.name.len() > SHORT_NAME {
            low |= 1 << 9;
        }
        if a.ext.is_some() {
            low |= 1 << 8;
        }
        out.u32((index + k) as u32)?;
        out.u32(low)?;
        out.u32((a.scale as u32 & 0x1f) << 11 | u32::from(a.class))?;
        out.name::<16>(a.name)?;
        if let Some(r) = &a.ext {
            write_range(out, r)?;
        }
    }
    Ok(())
}

/// §4.7.2.15: from `axis_desc_index`, `{axis_id, name[64]}` entries for
/// every axis (so the index counts axes); same count word as
/// SENSOR_AXIS_DESCRIPTION_GET.
fn axis_name_get<P: SensorPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let s = args.u32()?;
    let index = args.u32()? as usize;
    let d = sensor(cx, s)?;
    let axes = d.axes.get(..MAX_AXES).unwrap_or(d.axes);
    if axes.is_empty() {
        return Err(Status::NotSupported);
    }
    if index >= axes.len() {
        return Err(Status::InvalidParameters);
    }
    let room = out.remaining().checked_sub(4).ok_or(Status::GenericError)?;
    let n = (room / 68).min(axes.len() - index);
    if n == 0 {
        return Err(Status::GenericError);
    }
    let remaining = axes.len() - index - n;
    out.u32((remaining as u32) << 26 | n as u32)?;
    for (k, a) in axes.iter().skip(index).take(n).enumerate() {
        out.u32((index + k) as u32)?;
        out.name::<64>(a.name)?;
    }
    Ok(())
}

/// §4.7.2.7: discrete intervals from `index`, or the {low, high, step}
/// triplet with [12] set (Linux requires exactly 3 returned, 0 remaining).
fn list_update_intervals<P: SensorPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let s = args.u32()?;
    let index = args.u32()? as usize;
    let d = sensor(cx, s)?;
    match d.intervals {
        Intervals::List(l) if !l.is_empty() => {
            let total = l.len().min(0xffff);
            if index >= total {
                return Err(Status::InvalidParameters);
            }
            let room = out.remaining().checked_sub(4).ok_or(Status::GenericError)?;
            let n = (room / 4).min(total - index).min(0xfff);
            if n == 0 {
                return Err(Status::GenericError);
            }
            let remaining = total - index - n;
            out.u32((remaining as u32) << 16 | n as u32)?;
            for i in l.iter().skip(index).take(n) {
                out.u32(i.list_word())?;
            }
            Ok(())
        }
        Intervals::Segment { low, high, step } => {
            if index != 0 {
                return Err(Status::InvalidParameters);
            }
            out.u32(1 << 12 | 3)?;
            out.u32(low.list_word())?;
            out.u32(high.list_word())?;
            out.u32(step.list_word())
        }
        _ => Err(Status::NotSupported),
    }
}

/// §4.7.2.11: [31:16] interval seconds and [15:11] exponent (all zero =
/// unchanged), [10] auto rounding, [9] round up, [8:2] reserved, [1]
/// timestamps, [0] enable.
fn config_set<P: SensorPlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
) -> Result<(), Status> {
    let s = args.u32()?;
    let word = args.u32()?;
    let d = sensor(cx, s)?;
    if word & 0x1fc != 0 {
        return Err(Status::InvalidParameters);
    }
    let mut config = cx.platform.sensor_config(s)?;
    let timestamps = word & 2 != 0;
    if timestamps && d.timestamp_exp.is_none() {
        return Err(Status::NotSupported);
    }
    if word >> 11 != 0 {
        let round = if word & 1 << 10 != 0 {
            Round::Auto
        } else if word & 1 << 9 != 0 {
            Round::Up
        } else {
            Round::Down
        };
        let chosen = d
            .intervals
            .choose(Interval::from_config(word), round)
            .ok_or(Status::NotSupported)?;
        config.interval = Some(chosen);
    }
    config.timestamps = timestamps;
    config.enabled = word & 1 != 0;
    let agent = cx.agent;
    cx.platform.sensor_set_config(agent, s, config)
}

/// Time passes: the platform moves its sensors, then every event it
/// reports becomes a notification to the agents subscribed to it.
fn tick<P: SensorPlatform, const A: usize>(cx: &mut Cx<'_, P, A>, now_ms: u64) {
    cx.platform.sensor_advance(now_ms);
    // Bounded: a platform that never runs dry cannot hang the server.
    for _ in 0..4096 {
        let Some(ev) = cx.platform.sensor_event() else {
            break;
        };
        match ev {
            SensorEvent::Trip {
                sensor,
                trip,
                upward,
            } => {
                // §4.7.4.1: agent_id (0 = the platform), sensor_id,
                // trip_point_desc ([16] upward, [7:0] trip id).
                let desc = u32::from(upward) << 16 | u32::from(trip);
                let body: [u8; 12] = crate::wire::le_words(&[0, sensor, desc]);
                cx.notify_all(NotifyKind::SensorTrip, sensor, TRIP_POINT_EVENT, &body);
            }
            SensorEvent::Update { sensor } => {
                if !cx
                    .agents
                    .iter()
                    .any(|a| a.subscribed(NotifyKind::SensorUpdate, sensor))
                {
                    continue;
                }
                let Some(d) = cx.platform.sensors().get(sensor as usize) else {
                    continue;
                };
                let Ok(config) = cx.platform.sensor_config(sensor) else {
                    continue;
                };
                let mut buf = [Reading::default(); MAX_READINGS];
                let Ok(readings) = sample(cx.platform, sensor, d, &config, &mut buf) else {
                    continue;
                };
                // §4.7.4.2: agent_id, sensor_id, then the readings.
                let mut body = [0u8; MAX_MESSAGE - 4];
                let mut w = Reply::new(&mut body);
                let ok = w.u32(0).is_ok()
                    && w.u32(sensor).is_ok()
                    && write_readings(&mut w, readings).is_ok();
                let len = w.len();
                // `len <= body.len()`: what `w` was given.
                if let Some(body) = body.get(..len).filter(|_| ok) {
                    cx.notify_all(NotifyKind::SensorUpdate, sensor, SENSOR_UPDATE, body);
                }
            }
        }
    }
}
