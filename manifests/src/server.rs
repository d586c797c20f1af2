//! Between the manifest model and the SCMI server's static tables: leaking
//! a validated manifest into `&'static` tables at daemon start, and reading
//! existing tables back into the model (to write them out as a manifest).

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use platform_sim::{self as sim, SimPlatform, Tables};
use scmi_server::config::{AgentConfig, Config, DeviceConfig};
use scmi_server::protocols::{clock, perf, power, reset, sensor, voltage};

use crate::model::*;

fn leak<T>(v: Vec<T>) -> &'static [T] {
    v.leak()
}

fn leak_str(s: &str) -> &'static str {
    String::from(s).leak()
}

impl Manifest {
    /// The server's configuration and the simulated platform's tables, as
    /// `&'static` data leaked from this manifest (meant to run once, at
    /// daemon start).
    pub fn leak_tables(&self) -> (&'static Config, Tables) {
        let s = &self.scmi;
        let config: &'static Config = Box::leak(Box::new(Config {
            vendor: leak_str(&s.vendor),
            sub_vendor: leak_str(&s.sub_vendor),
            implementation_version: s.implementation_version,
            agents: leak(
                s.agents
                    .iter()
                    .map(|a| AgentConfig {
                        name: leak_str(&a.name),
                        trusted: a.trusted,
                        protocols: a.protocols,
                        devices: a.devices,
                    })
                    .collect(),
            ),
            devices: leak(
                s.devices
                    .iter()
                    .map(|d| DeviceConfig {
                        name: leak_str(&d.name),
                        resources: leak(d.resources.clone()),
                    })
                    .collect(),
            ),
        }));
        let tables = Tables {
            power: sim::power::PowerTable {
                domains: leak(
                    s.power
                        .iter()
                        .map(|d| power::PowerDomain {
                            name: leak_str(&d.name),
                            sync_set: d.sync_set,
                            async_set: d.async_set,
                            notify_changed: d.notify_changed,
                            notify_requested: d.notify_requested,
                        })
                        .collect(),
                ),
                boot: leak(
                    s.power
                        .iter()
                        .map(|d| if d.boot_on { power::ON } else { power::OFF })
                        .collect(),
                ),
            },
            system: s.system.map(|p| &*Box::leak(Box::new(p))),
            perf: sim::perf::PerfTable {
                domains: leak(
                    s.perf
                        .iter()
                        .map(|d| perf::PerfDomain {
                            name: leak_str(&d.name),
                            levels: leak(d.levels.clone()),
                            set_limits: d.set_limits,
                            set_level: d.set_level,
                            notify_limits: d.notify_limits,
                            notify_level: d.notify_level,
                            level_indexing: d.level_indexing,
                            rate_limit_us: d.rate_limit_us,
                            sustained_khz: d.sustained_khz,
                            sustained_level: d.sustained_level,
                        })
                        .collect(),
                ),
                boot: leak(s.perf.iter().map(|d| d.boot_level).collect()),
                power_unit: s.perf_power_unit,
            },
            clock: sim::clock::ClockTable {
                clocks: leak(
                    s.clocks
                        .iter()
                        .map(|c| clock::ClockDesc {
                            name: leak_str(&c.name),
                            rates: match &c.rates {
                                Rates::List(l) => clock::Rates::List(leak(l.clone())),
                                Rates::Range { min, max, step } => clock::Rates::Range {
                                    min: *min,
                                    max: *max,
                                    step: *step,
                                },
                            },
                            parents: leak(c.parents.clone()),
                            enable_latency_us: c.enable_latency_us,
                            rate_notify: c.rate_notify,
                            ext_config: leak(c.ext_config.clone()),
                            permissions: c.permissions,
                        })
                        .collect(),
                ),
                init: leak(s.clocks.iter().map(|c| c.init).collect()),
            },
            sensor: sim::sensor::SensorTable {
                sensors: leak(s.sensors.iter().map(sensor_desc).collect()),
                waves: leak(s.sensors.iter().map(|d| leak(d.waves.clone())).collect()),
                max_async: s.sensor_max_async,
            },
            reset: sim::reset::ResetTable {
                resets: leak(
                    s.resets
                        .iter()
                        .map(|r| reset::ResetDesc {
                            name: leak_str(&r.name),
                            latency_us: r.latency_us,
                            async_capable: r.async_capable,
                            notify: r.notify,
                            impl_states: leak(r.impl_states.clone()),
                        })
                        .collect(),
                ),
            },
            voltage: sim::voltage::VoltageTable {
                domains: leak(
                    s.voltages
                        .iter()
                        .map(|v| voltage::VoltageDesc {
                            name: leak_str(&v.name),
                            levels: match &v.levels {
                                Levels::List(l) => voltage::Levels::List(leak(l.clone())),
                                Levels::Range { min, max, step } => voltage::Levels::Range {
                                    min: *min,
                                    max: *max,
                                    step: *step,
                                },
                            },
                            async_capable: v.async_capable,
                            impl_modes: v.impl_modes,
                        })
                        .collect(),
                ),
                init: leak(s.voltages.iter().map(|v| v.init).collect()),
            },
        };
        (config, tables)
    }

    /// The server's configuration and a simulated platform serving this
    /// manifest's resources. The tables are leaked (call once, at daemon
    /// start). Fails only if the simulation cannot hold the tables, which
    /// validation already rules out.
    pub fn into_server_parts(self) -> Result<(&'static Config, SimPlatform), crate::Error> {
        let (config, tables) = self.leak_tables();
        match SimPlatform::new(&tables) {
            Ok(p) => Ok((config, p)),
            Err(e) => Err(crate::Error {
                file: self.file,
                node: String::from("/scmi"),
                message: e.to_string(),
            }),
        }
    }
}

fn sensor_desc(d: &Sensor) -> sensor::SensorDesc {
    sensor::SensorDesc {
        name: leak_str(&d.name),
        class: d.class,
        scale: d.scale,
        trip_points: d.trip_points,
        async_read: d.async_read,
        update_notify: d.update_notify,
        timestamp_exp: d.timestamp_exp,
        ext: d.ext.map(|e| sensor::ExtAttrs {
            power_uw: e.power_uw,
            range: e.range,
        }),
        axes: leak(
            d.axes
                .iter()
                .map(|a| sensor::AxisDesc {
                    name: leak_str(&a.name),
                    class: a.class,
                    scale: a.scale,
                    ext: a.ext,
                })
                .collect(),
        ),
        intervals: match &d.intervals {
            Intervals::None => sensor::Intervals::None,
            Intervals::List(l) => sensor::Intervals::List(leak(l.clone())),
            Intervals::Segment { low, high, step } => sensor::Intervals::Segment {
                low: *low,
                high: *high,
                step: *step,
            },
        },
    }
}
