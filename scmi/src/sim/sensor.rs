//! Simulated sensor resources.

use crate::protocols::sensor::SensorPlatform;
use crate::sim::SimPlatform;

/// Simulated sensor state.
#[derive(Debug, Default)]
pub struct SimSensors {}

impl SimSensors {
    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION).
    pub fn reset_agent(&mut self, agent: u32) {
        let _ = agent;
    }
}

impl SensorPlatform for SimPlatform {}
