//! Simulated system resources.

use crate::protocols::system::SystemPowerPlatform;
use crate::sim::SimPlatform;

/// Simulated system state.
#[derive(Debug, Default)]
pub struct SimSystem {}

impl SimSystem {
    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION).
    pub fn reset_agent(&mut self, agent: u32) {
        let _ = agent;
    }
}

impl SystemPowerPlatform for SimPlatform {}
