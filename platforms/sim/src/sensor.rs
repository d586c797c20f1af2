//! Simulated sensors whose values are pure functions of the simulated time
//! ([`SensorTable::value_at`]), so a test can predict every reading from
//! the times it passed to `Server::tick`.
//!
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
    Interval, Intervals, Reading, SensorConfig, SensorDesc, SensorEvent, SensorPlatform, TripMode,
};

/// Most sensors the simulation holds state for.
pub const MAX_SENSORS: usize = 64;
/// Most trip points a simulated sensor has.
pub const MAX_TRIPS: usize = 4;
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

impl SensorTable {
    /// The value of `axis` (0 for a scalar sensor) of `sensor` at `t_ms`:
    /// what a reading taken at that simulated time returns.
    pub fn value_at(&self, sensor: u32, axis: usize, t_ms: u64) -> Option<i64> {
        wave_value(self.waves, sensor, axis, t_ms)
    }
}

fn wave_value(waves: &[&[Wave]], sensor: u32, axis: usize, t_ms: u64) -> Option<i64> {
    let w = waves.get(sensor as usize)?.get(axis)?;
    Some(eval(w, t_ms))
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
            .and_then(|d| t_ms.checked_div(d))
            .unwrap_or(0)
    }
}

/// The configuration a sensor starts with: enabled, timestamps on where
/// supported, the longest update interval.
pub const fn default_config(d: &SensorDesc) -> SensorConfig {
    let interval = match d.intervals {
        Intervals::None => None,
        Intervals::List(l) => {
            let mut longest: Option<Interval> = None;
            let mut i = 0;
            while i < l.len() {
                longest = match longest {
                    Some(m) if m.units() >= l[i].units() => Some(m),
                    _ => Some(l[i]),
                };
                i += 1;
            }
            longest
        }
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

/// Simulated state of up to `N` sensors.
#[derive(Debug)]
pub struct SimSensors<const N: usize = MAX_SENSORS> {
    table: SensorTable,
    now_ms: u64,
    state: [State; N],
    /// What PROTOCOL_ATTRIBUTES reports as the reading statistics region
    /// (address, length); none by default.
    pub stats_region: (u64, u32),
}

impl<const N: usize> SimSensors<N> {
    /// Simulated sensors described by `table`; `Err` if it has more than
    /// `N` sensors, a sensor with more than [`MAX_TRIPS`] trip points, or a
    /// wave list of another length.
    pub const fn new(table: SensorTable) -> Result<Self, TableError> {
        if let Err(e) = check(table.sensors.len(), table.waves.len(), N, "sensor") {
            return Err(e);
        }
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
        }; N];
        let mut i = 0;
        while i < table.sensors.len() {
            let d = &table.sensors[i];
            if d.trip_points as usize > MAX_TRIPS {
                return Err(TableError::TooMany {
                    kind: "sensor trip point",
                    count: d.trip_points as usize,
                    max: MAX_TRIPS,
                });
            }
            state[i].config = default_config(d);
            i += 1;
        }
        Ok(SimSensors {
            table,
            now_ms: 0,
            state,
            stats_region: (0, 0),
        })
    }
}

impl<const N: usize> SimSensors<N> {
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
        if let Some(s) = self
            .state
            .get_mut(..n)
            .unwrap_or_default()
            .get_mut(sensor as usize)
        {
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
        for (i, s) in self
            .state
            .get_mut(..n)
            .unwrap_or_default()
            .iter_mut()
            .enumerate()
        {
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

impl<const P: usize, const F: usize, const C: usize, const S: usize, const R: usize, const V: usize>
    SensorPlatform for SimPlatform<P, F, C, S, R, V>
{
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
        self.sensor
            .state
            .get(..n)
            .unwrap_or_default()
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
        let s = self
            .sensor
            .state
            .get_mut(..n)
            .unwrap_or_default()
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
        let t = self
            .sensor
            .state
            .get_mut(..n)
            .unwrap_or_default()
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
