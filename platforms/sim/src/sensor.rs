//! Simulated sensors (built in: twenty of the usual SoC kinds) whose values
//! are pure functions of the simulated time ([`value_at`]), so a test can
//! predict every reading from the times it passed to `Server::tick`.
//!
//! * Temperatures in m°C, voltages in mV (one in µV), currents in mA,
//!   powers in mW, energies in mJ and J, a 3-axis accelerometer (mm/s²), a
//!   3-axis gyroscope (mrad/s), a 7-axis per-core temperature sensor, a fan
//!   tachometer (RPM) and a clock monitor (kHz).
//! * Every sensor starts enabled (Linux's hwmon driver never enables one),
//!   with timestamps on where supported and the longest update interval.
//! * Trip points fire when a value reaches a threshold from below
//!   (upward) or falls under it from at or above it (downward), comparing
//!   the values at the previous and the current tick. Update events fire
//!   when a multiple of the sensor's update interval lies in
//!   (previous tick, current tick].
//! * Each configuration and trip point remembers the agent that set it
//!   last; [`SimSensors::reset_agent`] reverts what that agent set.

use crate::{SimPlatform, TableError, check};
use scmi_server::header::Status;
use scmi_server::protocols::sensor::{
    AxisDesc, ExtAttrs, Interval, Intervals, Range, Reading, SensorConfig, SensorDesc, SensorEvent,
    SensorPlatform, TripMode,
};

const CELSIUS: u8 = 0x02;
const VOLT: u8 = 0x05;
const AMPERE: u8 = 0x06;
const WATT: u8 = 0x07;
const JOULE: u8 = 0x08;
const RPM: u8 = 0x13;
const HERTZ: u8 = 0x14;
const RAD_PER_S: u8 = 0x57;
const M_PER_S2: u8 = 0x59;

/// Number of built-in sensors.
pub const COUNT: usize = 20;
/// Most sensors the simulation holds state for.
pub const MAX_SENSORS: usize = 64;
/// Most trip points a simulated sensor has.
pub const MAX_TRIPS: usize = 4;
/// Most asynchronous reads the built-in platform reports in
/// PROTOCOL_ATTRIBUTES.
pub const MAX_ASYNC: u8 = 4;

/// The sensors of a simulated platform: descriptions and how their values
/// move, both by sensor id.
#[derive(Debug, Clone, Copy)]
pub struct SensorTable {
    /// Descriptions (at most [`MAX_TRIPS`] trip points each).
    pub sensors: &'static [SensorDesc],
    /// One wave per reading (per axis, or one for a scalar sensor); a
    /// reading without a wave fails with HARDWARE_ERROR.
    pub waves: &'static [&'static [Wave]],
    /// Asynchronous reads reported in PROTOCOL_ATTRIBUTES.
    pub max_async: u8,
}

/// The built-in sensors.
pub const DEFAULT: SensorTable = SensorTable {
    sensors: &SENSORS,
    waves: &WAVES,
    max_async: MAX_ASYNC,
};

/// Sensor ids of note (id = index).
pub mod ids {
    /// "cpu_little_temp": m°C, 2 trip points, timestamps, updates, extended attributes.
    pub const CPU_LITTLE_TEMP: u32 = 0;
    /// "cpu_big_cluster_temperature": long name, 4 trip points.
    pub const CPU_BIG_TEMP: u32 = 1;
    /// "gpu_temp": no timestamps, no intervals, 2 trip points.
    pub const GPU_TEMP: u32 = 2;
    /// "ddr_temp": asynchronous reads.
    pub const DDR_TEMP: u32 = 3;
    /// "outdoor_probe_temperature": goes below zero.
    pub const OUTDOOR_TEMP: u32 = 4;
    /// "vdd_cpu_little": mV, no trip points.
    pub const VDD_CPU_LITTLE: u32 = 5;
    /// "vdd_gpu": µV.
    pub const VDD_GPU: u32 = 7;
    /// "cpu_little_curr": mA, segment intervals.
    pub const CPU_LITTLE_CURR: u32 = 9;
    /// "soc_power": mW.
    pub const SOC_POWER: u32 = 11;
    /// "gpu_power": asynchronous reads.
    pub const GPU_POWER: u32 = 12;
    /// "soc_energy": mJ, rising.
    pub const SOC_ENERGY: u32 = 13;
    /// "battery_energy_consumed_total": J, rising.
    pub const BATTERY_ENERGY: u32 = 14;
    /// "accelerometer": 3 axes with extended attributes, asynchronous.
    pub const ACCEL: u32 = 15;
    /// "gyroscope": 3 axes with long names.
    pub const GYRO: u32 = 16;
    /// "cpu_core_temperatures": 7 axes.
    pub const CORE_TEMPS: u32 = 17;
    /// "fan0_tach": 40 discrete update intervals.
    pub const FAN: u32 = 18;
    /// "ref_clock_monitor": no notifications, nothing configurable.
    pub const REF_CLOCK: u32 = 19;
}

const fn ms(n: u16) -> Interval {
    Interval::new(n, -3)
}

static TEMP_INTERVALS: [Interval; 4] = [ms(10), ms(100), ms(500), Interval::new(1, 0)];
static DDR_INTERVALS: [Interval; 3] = [
    Interval::new(1, 0),
    Interval::new(2, 0),
    Interval::new(5, 0),
];
static POWER_INTERVALS: [Interval; 3] = [ms(5), ms(50), ms(200)];

const fn fan_intervals() -> [Interval; 40] {
    let mut a = [ms(0); 40];
    let mut k = 0;
    while k < 40 {
        a[k] = ms(25 * (k as u16 + 1));
        k += 1;
    }
    a
}
static FAN_INTERVALS: [Interval; 40] = fan_intervals();

const SEGMENT: Intervals = Intervals::Segment {
    low: ms(1),
    high: Interval::new(1, 0),
    step: ms(1),
};

const fn range(min: i64, max: i64) -> Range {
    Range {
        resolution: 1,
        resolution_exp: -3,
        min,
        max,
    }
}

const fn ext(power_uw: u32, min: i64, max: i64) -> Option<ExtAttrs> {
    Some(ExtAttrs {
        power_uw,
        range: range(min, max),
    })
}

const fn scalar(name: &'static str, class: u8, scale: i8) -> SensorDesc {
    SensorDesc {
        name,
        class,
        scale,
        trip_points: 0,
        async_read: false,
        update_notify: false,
        timestamp_exp: None,
        ext: None,
        axes: &[],
        intervals: Intervals::None,
    }
}

const fn axis(name: &'static str, class: u8, ext: Option<Range>) -> AxisDesc {
    AxisDesc {
        name,
        class,
        scale: -3,
        ext,
    }
}

static ACCEL_AXES: [AxisDesc; 3] = [
    axis("x", M_PER_S2, Some(range(-78_453, 78_453))),
    axis("y", M_PER_S2, Some(range(-78_453, 78_453))),
    axis("z", M_PER_S2, Some(range(-78_453, 78_453))),
];

static GYRO_AXES: [AxisDesc; 3] = [
    axis("angular_rate_about_x_axis", RAD_PER_S, None),
    axis("angular_rate_about_y_axis", RAD_PER_S, None),
    axis("angular_rate_about_z_axis", RAD_PER_S, None),
];

const CORE_RANGE: Option<Range> = Some(range(-40_000, 125_000));
static CORE_AXES: [AxisDesc; 7] = [
    axis("core0", CELSIUS, CORE_RANGE),
    axis("core1", CELSIUS, CORE_RANGE),
    axis("core2", CELSIUS, CORE_RANGE),
    axis("core3", CELSIUS, CORE_RANGE),
    axis("core4", CELSIUS, CORE_RANGE),
    axis("core5", CELSIUS, CORE_RANGE),
    axis("core6_big_core_hotspot", CELSIUS, CORE_RANGE),
];

/// The built-in sensors, id = index.
pub static SENSORS: [SensorDesc; COUNT] = [
    SensorDesc {
        trip_points: 2,
        update_notify: true,
        timestamp_exp: Some(-6),
        ext: ext(120, -40_000, 125_000),
        intervals: Intervals::List(&TEMP_INTERVALS),
        ..scalar("cpu_little_temp", CELSIUS, -3)
    },
    SensorDesc {
        trip_points: 4,
        update_notify: true,
        timestamp_exp: Some(-6),
        ext: ext(120, -40_000, 125_000),
        intervals: Intervals::List(&TEMP_INTERVALS),
        ..scalar("cpu_big_cluster_temperature", CELSIUS, -3)
    },
    SensorDesc {
        trip_points: 2,
        ..scalar("gpu_temp", CELSIUS, -3)
    },
    SensorDesc {
        trip_points: 1,
        async_read: true,
        ext: ext(80, -40_000, 125_000),
        intervals: Intervals::List(&DDR_INTERVALS),
        ..scalar("ddr_temp", CELSIUS, -3)
    },
    SensorDesc {
        trip_points: 2,
        update_notify: true,
        timestamp_exp: Some(-6),
        ext: ext(40, -50_000, 85_000),
        intervals: Intervals::List(&TEMP_INTERVALS),
        ..scalar("outdoor_probe_temperature", CELSIUS, -3)
    },
    SensorDesc {
        ext: ext(10, 0, 1_200),
        ..scalar("vdd_cpu_little", VOLT, -3)
    },
    SensorDesc {
        trip_points: 1,
        ..scalar("vdd_cpu_big", VOLT, -3)
    },
    scalar("vdd_gpu", VOLT, -6),
    scalar("vdd_ddr_phy_supply", VOLT, -3),
    SensorDesc {
        trip_points: 1,
        update_notify: true,
        timestamp_exp: Some(-6),
        intervals: SEGMENT,
        ..scalar("cpu_little_curr", AMPERE, -3)
    },
    scalar("cpu_big_current", AMPERE, -3),
    SensorDesc {
        trip_points: 2,
        update_notify: true,
        timestamp_exp: Some(-6),
        ext: ext(15, 0, 20_000),
        intervals: Intervals::List(&POWER_INTERVALS),
        ..scalar("soc_power", WATT, -3)
    },
    SensorDesc {
        async_read: true,
        ..scalar("gpu_power", WATT, -3)
    },
    SensorDesc {
        update_notify: true,
        timestamp_exp: Some(-6),
        intervals: Intervals::List(&POWER_INTERVALS),
        ..scalar("soc_energy", JOULE, -3)
    },
    scalar("battery_energy_consumed_total", JOULE, 0),
    SensorDesc {
        async_read: true,
        update_notify: true,
        timestamp_exp: Some(-6),
        // Power only: Linux reads no scalar range for sensors with axes.
        ext: ext(350, 0, 0),
        axes: &ACCEL_AXES,
        intervals: SEGMENT,
        ..scalar("accelerometer", M_PER_S2, -3)
    },
    SensorDesc {
        update_notify: true,
        timestamp_exp: Some(-3),
        axes: &GYRO_AXES,
        intervals: SEGMENT,
        ..scalar("gyroscope", RAD_PER_S, -3)
    },
    SensorDesc {
        timestamp_exp: Some(-6),
        axes: &CORE_AXES,
        intervals: Intervals::List(&TEMP_INTERVALS),
        ..scalar("cpu_core_temperatures", CELSIUS, -3)
    },
    SensorDesc {
        trip_points: 2,
        update_notify: true,
        intervals: Intervals::List(&FAN_INTERVALS),
        ..scalar("fan0_tach", RPM, 0)
    },
    scalar("ref_clock_monitor", HERTZ, 3),
];

/// How a simulated value moves with time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wave {
    /// From `base` up to `base + amp` and back, linearly, every `period`
    /// ms, shifted by `phase` ms.
    Tri {
        /// Lowest value.
        base: i64,
        /// Rise above `base` at the peak.
        amp: i64,
        /// Period in ms (at least 2 is used).
        period: u64,
        /// Shift in ms.
        phase: u64,
    },
    /// `per_s` units per second from 0.
    Ramp {
        /// Rise per second.
        per_s: i64,
    },
    /// Fixed.
    Const(i64),
}

const fn tri(base: i64, amp: i64, period: u64, phase: u64) -> Wave {
    Wave::Tri {
        base,
        amp,
        period,
        phase,
    }
}

/// How the built-in sensors' values move, by sensor id.
pub static WAVES: [&[Wave]; COUNT] = [
    &[tri(35_000, 40_000, 20_000, 0)],
    &[tri(40_000, 45_000, 16_000, 4_000)],
    &[tri(38_000, 30_000, 12_000, 0)],
    &[tri(45_000, 10_000, 60_000, 0)],
    &[tri(-20_000, 60_000, 30_000, 0)],
    &[tri(750, 250, 8_000, 0)],
    &[tri(800, 300, 8_000, 2_000)],
    &[tri(900_000, 100_000, 5_000, 0)],
    &[tri(1_100, 20, 4_000, 0)],
    &[tri(500, 1_500, 6_000, 0)],
    &[tri(800, 3_200, 6_000, 1_500)],
    &[tri(1_500, 6_000, 10_000, 0)],
    &[tri(500, 4_000, 10_000, 5_000)],
    &[Wave::Ramp { per_s: 2_500 }],
    &[Wave::Ramp { per_s: 3 }],
    &[
        tri(-2_000, 4_000, 3_000, 0),
        tri(-1_000, 2_000, 5_000, 0),
        Wave::Const(9_807),
    ],
    &[
        tri(-500, 1_000, 2_000, 0),
        tri(-250, 500, 4_000, 1_000),
        Wave::Const(0),
    ],
    &[
        tri(40_000, 20_000, 10_000, 0),
        tri(40_000, 20_000, 10_000, 1_000),
        tri(40_000, 20_000, 10_000, 2_000),
        tri(40_000, 20_000, 10_000, 3_000),
        tri(45_000, 25_000, 10_000, 4_000),
        tri(45_000, 25_000, 10_000, 5_000),
        tri(50_000, 40_000, 10_000, 6_000),
    ],
    &[tri(1_200, 3_000, 15_000, 0)],
    &[Wave::Const(24_000)],
];

fn clamp64(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn eval(w: &Wave, t: u64) -> i64 {
    match *w {
        Wave::Tri {
            base,
            amp,
            period,
            phase,
        } => {
            let period = period.max(2);
            let half = period / 2;
            let at = ((u128::from(t) + u128::from(phase)) % u128::from(period)) as u64;
            let x = if at < half { at } else { period - at };
            clamp64(i128::from(base) + i128::from(amp) * i128::from(x) / i128::from(half))
        }
        Wave::Ramp { per_s } => clamp64(i128::from(per_s) * i128::from(t) / 1000),
        Wave::Const(v) => v,
    }
}

/// The value of `axis` (0 for a scalar sensor) of built-in `sensor` at
/// `t_ms`.
pub fn value_at(sensor: u32, axis: usize, t_ms: u64) -> Option<i64> {
    wave_value(&WAVES, sensor, axis, t_ms)
}

fn wave_value(waves: &[&[Wave]], sensor: u32, axis: usize, t_ms: u64) -> Option<i64> {
    let w = waves.get(sensor as usize)?.get(axis)?;
    Some(eval(w, t_ms))
}

impl Wave {
    /// The value at `t_ms`.
    pub fn at(&self, t_ms: u64) -> i64 {
        eval(self, t_ms)
    }
}

/// A timestamp of `t_ms` in units of 10^`exp` seconds.
pub fn timestamp_at(exp: i8, t_ms: u64) -> u64 {
    let shift = -3 - i32::from(exp);
    if shift >= 0 {
        10u64
            .checked_pow(shift as u32)
            .and_then(|m| t_ms.checked_mul(m))
            .unwrap_or(u64::MAX)
    } else {
        10u64
            .checked_pow(shift.unsigned_abs())
            .map_or(0, |d| t_ms / d)
    }
}

/// The configuration a sensor starts with: enabled, timestamps on where
/// supported, the longest update interval.
pub fn default_config(d: &SensorDesc) -> SensorConfig {
    let interval = match d.intervals {
        Intervals::None => None,
        Intervals::List(l) => l.iter().max_by_key(|i| i.units()).copied(),
        Intervals::Segment { high, .. } => Some(high),
    };
    SensorConfig {
        enabled: true,
        timestamps: d.timestamp_exp.is_some(),
        interval,
    }
}

#[derive(Debug, Clone, Copy)]
struct Trip {
    mode: TripMode,
    value: i64,
    /// Agent that set it last, 0 = never set.
    owner: u8,
    /// Bit 0: an upward crossing waits to be reported; bit 1: downward.
    pending: u8,
}

const TRIP_OFF: Trip = Trip {
    mode: TripMode::Disabled,
    value: 0,
    owner: 0,
    pending: 0,
};

#[derive(Debug, Clone, Copy)]
struct State {
    config: SensorConfig,
    /// Agent that set the configuration last, 0 = default.
    owner: u8,
    trips: [Trip; MAX_TRIPS],
    update_pending: bool,
    fault: bool,
}

/// Simulated sensor state.
#[derive(Debug)]
pub struct SimSensors {
    table: SensorTable,
    now_ms: u64,
    state: [State; MAX_SENSORS],
    /// What PROTOCOL_ATTRIBUTES reports as the reading statistics region
    /// (address, length); none by default.
    pub stats_region: (u64, u32),
}

impl Default for SimSensors {
    fn default() -> Self {
        Self::build(DEFAULT)
    }
}

impl SimSensors {
    /// Simulated sensors described by `table`; `Err` if it has more than
    /// [`MAX_SENSORS`] sensors, a sensor with more than [`MAX_TRIPS`] trip
    /// points, or a wave list of another length.
    pub fn new(table: SensorTable) -> Result<Self, TableError> {
        check(
            table.sensors.len(),
            table.waves.len(),
            MAX_SENSORS,
            "sensor",
        )?;
        if let Some(d) = table
            .sensors
            .iter()
            .find(|d| usize::from(d.trip_points) > MAX_TRIPS)
        {
            return Err(TableError::TooMany {
                kind: "sensor trip point",
                count: usize::from(d.trip_points),
                max: MAX_TRIPS,
            });
        }
        Ok(Self::build(table))
    }

    fn build(mut table: SensorTable) -> Self {
        let n = table.sensors.len().min(table.waves.len()).min(MAX_SENSORS);
        table.sensors = table.sensors.get(..n).unwrap_or(&[]);
        table.waves = table.waves.get(..n).unwrap_or(&[]);
        let mut state = [State {
            config: SensorConfig {
                enabled: true,
                timestamps: false,
                interval: None,
            },
            owner: 0,
            trips: [TRIP_OFF; MAX_TRIPS],
            update_pending: false,
            fault: false,
        }; MAX_SENSORS];
        for (s, d) in state.iter_mut().zip(table.sensors.iter()) {
            s.config = default_config(d);
        }
        SimSensors {
            table,
            now_ms: 0,
            state,
            stats_region: (0, 0),
        }
    }
}

impl SimSensors {
    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION).
    pub fn reset_agent(&mut self, agent: u32) {
        for (s, d) in self.state.iter_mut().zip(self.table.sensors.iter()) {
            if u32::from(s.owner) == agent {
                s.config = default_config(d);
                s.owner = 0;
            }
            for t in s.trips.iter_mut() {
                if u32::from(t.owner) == agent {
                    *t = TRIP_OFF;
                }
            }
        }
    }

    /// The simulated time of the last tick.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Makes `sensor` fail its reads with HARDWARE_ERROR (or heals it).
    pub fn set_fault(&mut self, sensor: u32, fault: bool) {
        let n = self.table.sensors.len();
        if let Some(s) = self.state[..n].get_mut(sensor as usize) {
            s.fault = fault;
        }
    }

    fn advance(&mut self, now_ms: u64) {
        // Time never runs backwards.
        let (t0, t1) = (self.now_ms, now_ms.max(self.now_ms));
        let waves = self.table.waves;
        for (i, (s, d)) in self
            .state
            .iter_mut()
            .zip(self.table.sensors.iter())
            .enumerate()
        {
            if !s.config.enabled || s.fault {
                continue;
            }
            let (Some(old), Some(new)) = (
                wave_value(waves, i as u32, 0, t0),
                wave_value(waves, i as u32, 0, t1),
            ) else {
                continue;
            };
            for t in s.trips.iter_mut().take(usize::from(d.trip_points)) {
                if old < t.value && new >= t.value && t.mode.fires(true) {
                    t.pending |= 1;
                }
                if old >= t.value && new < t.value && t.mode.fires(false) {
                    t.pending |= 2;
                }
            }
            if let (true, Some(iv)) = (d.update_notify, s.config.interval) {
                let every = iv.millis().max(1);
                if t1 / every > t0 / every {
                    s.update_pending = true;
                }
            }
        }
        self.now_ms = t1;
    }

    fn next_event(&mut self) -> Option<SensorEvent> {
        let n = self.table.sensors.len();
        for (i, s) in self.state[..n].iter_mut().enumerate() {
            for (k, t) in s.trips.iter_mut().enumerate() {
                if t.pending != 0 {
                    let upward = t.pending & 1 != 0;
                    t.pending &= if upward { !1 } else { !2 };
                    return Some(SensorEvent::Trip {
                        sensor: i as u32,
                        trip: k as u8,
                        upward,
                    });
                }
            }
            if s.update_pending {
                s.update_pending = false;
                return Some(SensorEvent::Update { sensor: i as u32 });
            }
        }
        None
    }

    fn read(&self, sensor: u32, out: &mut [Reading]) -> Result<(), Status> {
        let i = sensor as usize;
        let (s, d) = self
            .state
            .get(i)
            .zip(self.table.sensors.get(i))
            .ok_or(Status::NotFound)?;
        if s.fault {
            return Err(Status::HardwareError);
        }
        if !s.config.enabled {
            return Err(Status::ProtocolError);
        }
        if out.len() != d.readings() {
            return Err(Status::InvalidParameters);
        }
        let ts = match (d.timestamp_exp, s.config.timestamps) {
            (Some(e), true) => timestamp_at(e, self.now_ms),
            _ => 0,
        };
        for (k, r) in out.iter_mut().enumerate() {
            *r = Reading {
                value: wave_value(self.table.waves, sensor, k, self.now_ms)
                    .ok_or(Status::HardwareError)?,
                timestamp: ts,
            };
        }
        Ok(())
    }
}

impl SensorPlatform for SimPlatform {
    fn sensors(&self) -> &'static [SensorDesc] {
        self.sensor.table.sensors
    }

    fn sensor_max_async(&self) -> u8 {
        self.sensor.table.max_async
    }

    fn sensor_stats_region(&self) -> (u64, u32) {
        self.sensor.stats_region
    }

    fn sensor_read(&mut self, sensor: u32, out: &mut [Reading]) -> Result<(), Status> {
        self.sensor.read(sensor, out)
    }

    fn sensor_config(&self, sensor: u32) -> Result<SensorConfig, Status> {
        let n = self.sensor.table.sensors.len();
        self.sensor.state[..n]
            .get(sensor as usize)
            .map(|s| s.config)
            .ok_or(Status::NotFound)
    }

    fn sensor_set_config(
        &mut self,
        agent: u32,
        sensor: u32,
        config: SensorConfig,
    ) -> Result<(), Status> {
        let n = self.sensor.table.sensors.len();
        let s = self.sensor.state[..n]
            .get_mut(sensor as usize)
            .ok_or(Status::NotFound)?;
        s.config = config;
        s.owner = agent as u8;
        Ok(())
    }

    fn sensor_set_trip(
        &mut self,
        agent: u32,
        sensor: u32,
        trip: u8,
        mode: TripMode,
        value: i64,
    ) -> Result<(), Status> {
        let n = self.sensor.table.sensors.len();
        let t = self.sensor.state[..n]
            .get_mut(sensor as usize)
            .ok_or(Status::NotFound)?
            .trips
            .get_mut(usize::from(trip))
            .ok_or(Status::InvalidParameters)?;
        *t = Trip {
            mode,
            value,
            owner: agent as u8,
            pending: 0,
        };
        Ok(())
    }

    fn sensor_advance(&mut self, now_ms: u64) {
        self.sensor.advance(now_ms);
    }

    fn sensor_event(&mut self) -> Option<SensorEvent> {
        self.sensor.next_event()
    }
}
