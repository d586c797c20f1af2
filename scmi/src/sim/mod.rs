//! A simulated platform: rates stick, power states read back, sensors move
//! over time, resets and voltages are observable. Resources come from
//! static tables; the state lives in fixed arrays. Each protocol's part is
//! in its own module.

use crate::platform::Platform;

pub mod clock;
pub mod perf;
pub mod power;
pub mod reset;
pub mod sensor;
pub mod system;
pub mod voltage;

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
