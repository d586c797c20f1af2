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
pub(crate) fn check(
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
    /// The built-in SoC.
    pub const DEFAULT: Tables = Tables {
        power: power::DEFAULT,
        system: Some(&system::SYSTEM),
        perf: perf::DEFAULT,
        clock: clock::DEFAULT,
        sensor: sensor::DEFAULT,
        reset: reset::DEFAULT,
        voltage: voltage::DEFAULT,
    };
}

/// The built-in configuration: two agents that may use every
/// protocol and see every resource; the first is trusted.
pub static DEFAULT_CONFIG: scmi_server::Config = scmi_server::Config {
    vendor: "rust-scmi",
    sub_vendor: "host",
    implementation_version: 0x0001_0000,
    agents: &[
        scmi_server::AgentConfig {
            name: "agent-1",
            trusted: true,
            protocols: u32::MAX,
            devices: u32::MAX,
        },
        scmi_server::AgentConfig {
            name: "agent-2",
            trusted: false,
            protocols: u32::MAX,
            devices: u32::MAX,
        },
    ],
    devices: &[],
};

/// The simulated platform.
#[derive(Debug, Default)]
pub struct SimPlatform {
    /// power resources.
    pub power: power::SimPower,
    /// system resources.
    pub system: system::SimSystem,
    /// perf resources.
    pub perf: perf::SimPerf,
    /// clock resources.
    pub clock: clock::SimClocks,
    /// sensor resources.
    pub sensor: sensor::SimSensors,
    /// reset resources.
    pub reset: reset::SimResets,
    /// voltage resources.
    pub voltage: voltage::SimVoltages,
}

impl SimPlatform {
    /// A simulated platform serving `tables`; `Err` if a table holds more
    /// resources than the simulation has state for, or is inconsistent.
    pub fn new(tables: &Tables) -> Result<Self, TableError> {
        Ok(SimPlatform {
            power: power::SimPower::new(tables.power)?,
            system: system::SimSystem::new(tables.system),
            perf: perf::SimPerf::new(tables.perf)?,
            clock: clock::SimClocks::new(tables.clock)?,
            sensor: sensor::SimSensors::new(tables.sensor)?,
            reset: reset::SimResets::new(tables.reset)?,
            voltage: voltage::SimVoltages::new(tables.voltage)?,
        })
    }
}

impl Platform for SimPlatform {
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

    #[test]
    fn default_tables_fit_and_match_default() {
        let p = SimPlatform::new(&Tables::DEFAULT).unwrap();
        let d = SimPlatform::default();
        assert_eq!(p.clock.descs().len(), d.clock.descs().len());
        assert_eq!(p.clock.descs().len(), clock::CLOCK_COUNT);
    }

    #[test]
    fn oversized_and_mismatched_tables_are_refused() {
        static MANY: [scmi_server::protocols::reset::ResetDesc; reset::MAX_RESETS + 1] =
            [reset::RESETS[0]; reset::MAX_RESETS + 1];
        let mut t = Tables::DEFAULT;
        t.reset = reset::ResetTable { resets: &MANY };
        assert_eq!(
            SimPlatform::new(&t).err(),
            Some(TableError::TooMany {
                kind: "reset",
                count: reset::MAX_RESETS + 1,
                max: reset::MAX_RESETS
            })
        );
        let mut t = Tables::DEFAULT;
        t.clock.init = &clock::CLOCK_INIT[..3];
        assert_eq!(
            SimPlatform::new(&t).err(),
            Some(TableError::Mismatch { kind: "clock" })
        );
    }
}
