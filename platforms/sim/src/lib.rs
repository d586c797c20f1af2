//! A simulated SCMI platform: rates stick, power states read back, sensors
//! move over time, resets and voltages are observable. It implements every
//! platform trait of `scmi-server`, so the server can be run, tested and
//! shown in QEMU without hardware. Each protocol's part is in its own module.
//!
//! # What it is for
//!
//! Resources come from `&'static` tables the caller supplies ([`Tables`]):
//! generated at build time from a platform manifest, or leaked out of one
//! loaded at run time. Run-time state lives in fixed arrays sized by each
//! module's `MAX_*` constant, so nothing is allocated.
//!
//! # What it refuses to know about
//!
//! The SCMI wire format and agents' permissions (the server's), transports,
//! and where its tables come from.

#![no_std]
#![forbid(unsafe_code)]

use scmi_server::Platform;

pub mod clock;
pub mod perf;
pub mod power;
pub mod reset;
pub mod sensor;
pub mod system;
pub mod voltage;

/// Why a table cannot drive the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// More resources than the simulation holds state for.
    TooMany {
        /// Which kind of resource ("clock", "sensor", ...).
        kind: &'static str,
        /// How many the table has.
        count: usize,
        /// The most the simulation holds.
        max: usize,
    },
    /// Two slices of one table that must be parallel differ in length.
    Mismatch {
        /// Which kind of resource.
        kind: &'static str,
    },
}

impl core::fmt::Display for TableError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TableError::TooMany { kind, count, max } => {
                write!(
                    f,
                    "{count} {kind} entries, the simulation holds at most {max}"
                )
            }
            TableError::Mismatch { kind } => {
                write!(f, "{kind} table: parallel slices differ in length")
            }
        }
    }
}

/// `Ok` if `descs` and `extra` entries fit `max` and agree.
pub(crate) const fn check(
    descs: usize,
    extra: usize,
    max: usize,
    kind: &'static str,
) -> Result<(), TableError> {
    if descs != extra {
        return Err(TableError::Mismatch { kind });
    }
    if descs > max {
        return Err(TableError::TooMany {
            kind,
            count: descs,
            max,
        });
    }
    Ok(())
}

/// Every resource table of a simulated platform.
#[derive(Debug, Clone, Copy)]
pub struct Tables {
    /// Power domains.
    pub power: power::PowerTable,
    /// System power capabilities (`None`: no system power protocol).
    pub system: Option<&'static scmi_server::protocols::system::SystemPower>,
    /// Performance domains.
    pub perf: perf::PerfTable,
    /// Clocks.
    pub clock: clock::ClockTable,
    /// Sensors.
    pub sensor: sensor::SensorTable,
    /// Reset domains.
    pub reset: reset::ResetTable,
    /// Voltage domains.
    pub voltage: voltage::VoltageTable,
}

impl Tables {
    /// A platform without resources (every protocol but Base absent).
    pub const EMPTY: Tables = Tables {
        power: power::PowerTable {
            domains: &[],
            boot: &[],
        },
        system: None,
        perf: perf::PerfTable {
            domains: &[],
            boot: &[],
            power_unit: 0,
        },
        clock: clock::ClockTable {
            clocks: &[],
            init: &[],
        },
        sensor: sensor::SensorTable {
            sensors: &[],
            waves: &[],
            max_async: 0,
        },
        reset: reset::ResetTable { resets: &[] },
        voltage: voltage::VoltageTable {
            domains: &[],
            init: &[],
        },
    };

    /// Resources per kind, in the order of [`SimPlatform`]'s capacities:
    /// power, perf, clock, sensor, reset and voltage domains.
    pub const fn counts(&self) -> [usize; 6] {
        [
            self.power.domains.len(),
            self.perf.domains.len(),
            self.clock.clocks.len(),
            self.sensor.sensors.len(),
            self.reset.resets.len(),
            self.voltage.domains.len(),
        ]
    }
}

/// The simulated platform, with room for `P` power domains, `F`
/// performance domains, `C` clocks, `S` sensors, `R` reset domains and `V`
/// voltage domains. The defaults hold what any manifest may describe (a
/// platform loaded at run time); firmware built from a manifest uses the
/// manifest's own counts, so its state takes no more RAM than it needs.
#[derive(Debug)]
pub struct SimPlatform<
    const P: usize = { power::MAX_POWER_DOMAINS },
    const F: usize = { perf::MAX_PERF_DOMAINS },
    const C: usize = { clock::MAX_CLOCKS },
    const S: usize = { sensor::MAX_SENSORS },
    const R: usize = { reset::MAX_RESETS },
    const V: usize = { voltage::MAX_VOLTAGES },
> {
    /// power resources.
    pub power: power::SimPower<P>,
    /// system resources.
    pub system: system::SimSystem,
    /// perf resources.
    pub perf: perf::SimPerf<F>,
    /// clock resources.
    pub clock: clock::SimClocks<C>,
    /// sensor resources.
    pub sensor: sensor::SimSensors<S>,
    /// reset resources.
    pub reset: reset::SimResets<R>,
    /// voltage resources.
    pub voltage: voltage::SimVoltages<V>,
}

/// `?` for the const constructors, where the operator is not available.
macro_rules! const_try {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Err(e),
        }
    };
}

impl<const P: usize, const F: usize, const C: usize, const S: usize, const R: usize, const V: usize>
    SimPlatform<P, F, C, S, R, V>
{
    /// A simulated platform serving `tables`; `Err` if a table holds more
    /// resources than this platform has room for, or is inconsistent.
    /// `const`, so a platform can be built into a `static` at compile time.
    pub const fn new(tables: &Tables) -> Result<Self, TableError> {
        Ok(SimPlatform {
            power: const_try!(power::SimPower::new(tables.power)),
            system: system::SimSystem::new(tables.system),
            perf: const_try!(perf::SimPerf::new(tables.perf)),
            clock: const_try!(clock::SimClocks::new(tables.clock)),
            sensor: const_try!(sensor::SimSensors::new(tables.sensor)),
            reset: const_try!(reset::SimResets::new(tables.reset)),
            voltage: const_try!(voltage::SimVoltages::new(tables.voltage)),
        })
    }
}

impl<const P: usize, const F: usize, const C: usize, const S: usize, const R: usize, const V: usize>
    Platform for SimPlatform<P, F, C, S, R, V>
{
    fn reset_agent(&mut self, agent: u32) {
        self.power.reset_agent(agent);
        self.system.reset_agent(agent);
        self.perf.reset_agent(agent);
        self.clock.reset_agent(agent);
        self.sensor.reset_agent(agent);
        self.reset.reset_agent(agent);
        self.voltage.reset_agent(agent);
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;
    use scmi_server::protocols::reset::ResetDesc;

    const LINE: ResetDesc = ResetDesc {
        name: "line",
        latency_us: 0,
        async_capable: false,
        notify: false,
        impl_states: &[],
    };

    #[test]
    fn tables_fit_exactly_sized_platforms_and_no_smaller() {
        static TWO: [ResetDesc; 2] = [LINE; 2];
        let mut t = Tables::EMPTY;
        t.reset = reset::ResetTable { resets: &TWO };
        assert_eq!(t.counts(), [0, 0, 0, 0, 2, 0]);
        let p = SimPlatform::<0, 0, 0, 0, 2, 0>::new(&t).unwrap();
        assert!(p.reset.domain(1).is_some() && p.reset.domain(2).is_none());
        assert_eq!(
            SimPlatform::<0, 0, 0, 0, 1, 0>::new(&t).err(),
            Some(TableError::TooMany {
                kind: "reset",
                count: 2,
                max: 1
            })
        );
    }

    #[test]
    fn oversized_and_mismatched_tables_are_refused() {
        static MANY: [ResetDesc; reset::MAX_RESETS + 1] = [LINE; reset::MAX_RESETS + 1];
        let mut t = Tables::EMPTY;
        t.reset = reset::ResetTable { resets: &MANY };
        let full: Result<SimPlatform, _> = SimPlatform::new(&t);
        assert_eq!(
            full.err(),
            Some(TableError::TooMany {
                kind: "reset",
                count: reset::MAX_RESETS + 1,
                max: reset::MAX_RESETS
            })
        );
        static INIT: [clock::ClockInit; 1] = [clock::ClockInit {
            rate: 1,
            on: true,
            parent: 0,
        }];
        let mut t = Tables::EMPTY;
        t.clock.init = &INIT;
        let full: Result<SimPlatform, _> = SimPlatform::new(&t);
        assert_eq!(full.err(), Some(TableError::Mismatch { kind: "clock" }));
    }
}
