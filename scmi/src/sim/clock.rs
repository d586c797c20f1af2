//! Simulated clock resources.

use crate::protocols::clock::ClockPlatform;
use crate::sim::SimPlatform;

/// Simulated clock state.
#[derive(Debug, Default)]
pub struct SimClocks {}

impl SimClocks {
    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION).
    pub fn reset_agent(&mut self, agent: u32) {
        let _ = agent;
    }
}

impl ClockPlatform for SimPlatform {}
