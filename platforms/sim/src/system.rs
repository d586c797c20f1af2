//! Simulated system power control: every request is recorded so tests (and
//! a host program) can see what the agents asked for.
//!
//! A forceful request takes effect at once: shutdown and suspend change the
//! state, resets count and leave the system up, power-up brings it back. A
//! graceful request only becomes pending: the platform has told the OSPM
//! agents (through the notifier) and waits for them to finish; a later
//! forceful request, or the requester's agent reset, clears it.

use crate::SimPlatform;
use scmi_server::header::Status;
use scmi_server::protocols::system::{
    COLD_RESET, POWER_UP, SHUTDOWN, SUSPEND, SystemPower, SystemPowerPlatform, WARM_RESET,
};

/// Requests remembered (the oldest are forgotten first).
pub const LOG: usize = 16;

/// One SYSTEM_POWER_STATE_SET the platform accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysRequest {
    /// The requesting agent.
    pub agent: u32,
    /// The requested state.
    pub state: u32,
    /// Whether the request was graceful.
    pub graceful: bool,
}

/// Simulated system state.
#[derive(Debug)]
pub struct SimSystem {
    caps: Option<&'static SystemPower>,
    state: u32,
    log: [Option<SysRequest>; LOG],
    /// Requests ever accepted (the log holds the last [`LOG`]).
    accepted: usize,
    pending: Option<SysRequest>,
    cold_resets: u32,
    warm_resets: u32,
}

impl SimSystem {
    /// Simulated system power with capabilities `caps` (`None`: the
    /// platform has no system power protocol).
    pub const fn new(caps: Option<&'static SystemPower>) -> Self {
        SimSystem {
            caps,
            state: POWER_UP,
            log: [None; LOG],
            accepted: 0,
            pending: None,
            cold_resets: 0,
            warm_resets: 0,
        }
    }
}

impl SimSystem {
    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION): a
    /// graceful request it left pending is withdrawn. Transitions that
    /// already happened cannot be undone.
    pub fn reset_agent(&mut self, agent: u32) {
        if self.pending.is_some_and(|p| p.agent == agent) {
            self.pending = None;
        }
    }

    /// The current system state.
    pub fn state(&self) -> u32 {
        self.state
    }

    /// The graceful request waiting for OSPM, if any.
    pub fn pending(&self) -> Option<SysRequest> {
        self.pending
    }

    /// The most recent accepted request.
    pub fn last_request(&self) -> Option<SysRequest> {
        let last = self.accepted.checked_sub(1)?;
        self.log[last % LOG]
    }

    /// The remembered requests, oldest first.
    pub fn requests(&self) -> impl Iterator<Item = SysRequest> + '_ {
        let first = self.accepted.saturating_sub(LOG);
        (first..self.accepted).filter_map(move |i| self.log[i % LOG])
    }

    /// Cold and warm resets performed.
    pub fn resets(&self) -> (u32, u32) {
        (self.cold_resets, self.warm_resets)
    }

    fn record(&mut self, r: SysRequest) {
        self.log[self.accepted % LOG] = Some(r);
        self.accepted = self.accepted.wrapping_add(1);
    }
}

impl<const P: usize, const F: usize, const C: usize, const S: usize, const R: usize, const V: usize>
    SystemPowerPlatform for SimPlatform<P, F, C, S, R, V>
{
    fn system_power(&self) -> Option<&'static SystemPower> {
        self.system.caps
    }

    fn system_state_get(&self) -> Result<u32, Status> {
        Ok(self.system.state)
    }

    fn system_state_set(&mut self, agent: u32, state: u32, graceful: bool) -> Result<(), Status> {
        let s = &mut self.system;
        match state {
            SHUTDOWN | COLD_RESET | WARM_RESET | POWER_UP | SUSPEND => {}
            // No vendor-defined states here (SCMI v3.2 §4.4.2.5).
            _ => return Err(Status::NotSupported),
        }
        // Only a running system can suspend, and an off one cannot shut
        // down again.
        if (state == SUSPEND && s.state != POWER_UP) || (state == SHUTDOWN && s.state == SHUTDOWN) {
            return Err(Status::Denied);
        }
        let r = SysRequest {
            agent,
            state,
            graceful,
        };
        s.record(r);
        if graceful {
            s.pending = Some(r);
            return Ok(());
        }
        s.pending = None;
        match state {
            COLD_RESET => {
                s.cold_resets = s.cold_resets.wrapping_add(1);
                s.state = POWER_UP;
            }
            WARM_RESET => {
                s.warm_resets = s.warm_resets.wrapping_add(1);
                s.state = POWER_UP;
            }
            other => s.state = other,
        }
        Ok(())
    }
}
