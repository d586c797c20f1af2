//! What the server needs from the platform: one trait per protocol, with
//! resources described in static tables. [`crate::sim`] implements them
//! all for QEMU and tests.

use crate::protocols::{clock, perf, power, reset, sensor, system, voltage};

/// A whole platform.
pub trait Platform:
    'static
    + power::PowerPlatform
    + system::SystemPowerPlatform
    + perf::PerfPlatform
    + clock::ClockPlatform
    + sensor::SensorPlatform
    + reset::ResetPlatform
    + voltage::VoltagePlatform
{
    /// BASE_RESET_AGENT_CONFIGURATION: revert every setting `agent` made.
    fn reset_agent(&mut self, agent: u32) {
        let _ = agent;
    }
}
