//! Simulated reset resources.

use crate::protocols::reset::ResetPlatform;
use crate::sim::SimPlatform;

/// Simulated reset state.
#[derive(Debug, Default)]
pub struct SimResets {}

impl SimResets {
    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION).
    pub fn reset_agent(&mut self, agent: u32) {
        let _ = agent;
    }
}

impl ResetPlatform for SimPlatform {}
