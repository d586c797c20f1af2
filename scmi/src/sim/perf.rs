//! Simulated perf resources.

use crate::protocols::perf::PerfPlatform;
use crate::sim::SimPlatform;

/// Simulated perf state.
#[derive(Debug, Default)]
pub struct SimPerf {}

impl SimPerf {
    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION).
    pub fn reset_agent(&mut self, agent: u32) {
        let _ = agent;
    }
}

impl PerfPlatform for SimPlatform {}
