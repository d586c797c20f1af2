//! Simulated power domains that are either ON or OFF.
//!
//! Every agent's last request per domain is kept (a vote). A domain is ON
//! while any agent votes ON, OFF while every voting agent votes OFF, and in
//! its boot state while nobody votes; so a domain two agents share stays
//! powered until both release it, and BASE_RESET_AGENT_CONFIGURATION
//! withdraws exactly that agent's votes.

use crate::{SimPlatform, TableError, check};
use scmi_server::header::Status;
use scmi_server::protocols::power::{OFF, ON, PowerDomain, PowerPlatform};

/// Agents the simulation keeps votes for (ids 1..=8).
pub const AGENTS: usize = 8;

/// No request from this agent.
const NO_VOTE: u32 = u32::MAX;

/// Most power domains the simulation holds state for.
pub const MAX_POWER_DOMAINS: usize = 32;

/// The power domains of a simulated platform and their boot states (ON or
/// OFF), both indexed by domain id.
#[derive(Debug, Clone, Copy)]
pub struct PowerTable {
    /// Descriptions.
    pub domains: &'static [PowerDomain],
    /// State of each domain before any agent asks for anything.
    pub boot: &'static [u32],
}

/// Simulated power state for up to `N` domains.
#[derive(Debug)]
pub struct SimPower<const N: usize = MAX_POWER_DOMAINS> {
    table: PowerTable,
    votes: [[u32; AGENTS]; N],
}

impl<const N: usize> SimPower<N> {
    /// Simulated domains described by `table`; `Err` if it has more than
    /// `N` domains or its two slices differ in length.
    pub const fn new(table: PowerTable) -> Result<Self, TableError> {
        if let Err(e) = check(table.domains.len(), table.boot.len(), N, "power domain") {
            return Err(e);
        }
        Ok(SimPower {
            table,
            votes: [[NO_VOTE; AGENTS]; N],
        })
    }

    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION): its
    /// votes are withdrawn.
    pub fn reset_agent(&mut self, agent: u32) {
        if let Some(i) = slot(agent) {
            for d in &mut self.votes {
                d[i] = NO_VOTE;
            }
        }
    }

    /// The effective state of `domain`.
    pub fn state(&self, domain: u32) -> Option<u32> {
        let boot = *self.table.boot.get(domain as usize)?;
        let votes = self.votes.get(domain as usize)?;
        Some(if votes.contains(&ON) {
            ON
        } else if votes.contains(&OFF) {
            OFF
        } else {
            boot
        })
    }

    /// What `agent` last asked for on `domain`, if anything.
    pub fn vote(&self, agent: u32, domain: u32) -> Option<u32> {
        self.table.domains.get(domain as usize)?;
        let v = *self.votes.get(domain as usize)?.get(slot(agent)?)?;
        (v != NO_VOTE).then_some(v)
    }
}

/// Index of `agent` in the vote arrays.
fn slot(agent: u32) -> Option<usize> {
    let i = (agent as usize).checked_sub(1)?;
    (i < AGENTS).then_some(i)
}

impl<const P: usize, const F: usize, const C: usize, const S: usize, const R: usize, const V: usize>
    PowerPlatform for SimPlatform<P, F, C, S, R, V>
{
    fn power_domains(&self) -> &'static [PowerDomain] {
        self.power.table.domains
    }

    fn power_state_get(&self, domain: u32) -> Result<u32, Status> {
        self.power.state(domain).ok_or(Status::NotFound)
    }

    fn power_state_set(&mut self, agent: u32, domain: u32, state: u32) -> Result<(), Status> {
        // Only the two generic states exist here (what Linux's
        // scmi_pm_domain uses); other well-formed states are invalid for
        // these domains (SCMI v3.2 §4.3.2.6).
        if state != ON && state != OFF {
            return Err(Status::InvalidParameters);
        }
        // An agent the simulation cannot record may not vote.
        let i = slot(agent).ok_or(Status::Denied)?;
        self.power
            .table
            .domains
            .get(domain as usize)
            .ok_or(Status::NotFound)?;
        let d = self
            .power
            .votes
            .get_mut(domain as usize)
            .ok_or(Status::NotFound)?;
        *d.get_mut(i).ok_or(Status::Denied)? = state;
        Ok(())
    }
}
