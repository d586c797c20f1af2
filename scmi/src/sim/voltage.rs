//! Simulated voltage resources.

use crate::protocols::voltage::VoltagePlatform;
use crate::sim::SimPlatform;

/// Simulated voltage state.
#[derive(Debug, Default)]
pub struct SimVoltages {}

impl SimVoltages {
    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION).
    pub fn reset_agent(&mut self, agent: u32) {
        let _ = agent;
    }
}

impl VoltagePlatform for SimPlatform {}
