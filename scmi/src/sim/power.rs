//! Simulated power resources.

use crate::protocols::power::PowerPlatform;
use crate::sim::SimPlatform;

/// Simulated power state.
#[derive(Debug, Default)]
pub struct SimPower {}

impl SimPower {
    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION).
    pub fn reset_agent(&mut self, agent: u32) {
        let _ = agent;
    }
}

impl PowerPlatform for SimPlatform {}
