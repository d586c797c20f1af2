//! Simulated reset domains. Each domain
//! counts completed reset cycles, asserts and de-asserts, remembers which
//! agents hold it in reset (the line stays asserted while any agent holds
//! it), and keeps a short log of the last operations, so resets are
//! observable from tests and from the host.
//!
//! Agents 1..=32 are tracked; requests from other agent ids are DENIED.

use crate::{SimPlatform, TableError, check};
use scmi_server::header::Status;
use scmi_server::protocols::reset::{ResetDesc, ResetOp, ResetPlatform};

/// Most reset domains the simulation holds state for.
pub const MAX_RESETS: usize = 32;

/// The reset domains of a simulated platform, by domain id.
#[derive(Debug, Clone, Copy)]
pub struct ResetTable {
    /// Descriptions.
    pub resets: &'static [ResetDesc],
}

/// One operation in a domain's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetEvent {
    /// Agent that asked (0: the platform, releasing a reset agent's hold).
    pub agent: u32,
    /// What was done.
    pub op: ResetOp,
    /// reset_state used.
    pub state: u32,
}

/// Entries kept per domain log.
pub const LOG_LEN: usize = 8;

/// Observable state of one reset domain.
#[derive(Debug, Clone, Copy)]
pub struct DomainState {
    /// Completed autonomous reset cycles.
    pub cycles: u32,
    /// Explicit asserts.
    pub asserts: u32,
    /// Explicit de-asserts.
    pub deasserts: u32,
    /// Agents holding the domain in reset (bit `agent - 1`).
    pub held: u32,
    log: [Option<ResetEvent>; LOG_LEN],
    /// Total operations ever logged.
    pub logged: u32,
}

impl DomainState {
    const NEW: DomainState = DomainState {
        cycles: 0,
        asserts: 0,
        deasserts: 0,
        held: 0,
        log: [None; LOG_LEN],
        logged: 0,
    };

    /// Whether the reset line is asserted.
    pub fn asserted(&self) -> bool {
        self.held != 0
    }

    /// The `n`-th most recent operation (0 = the latest).
    pub fn recent(&self, n: usize) -> Option<ResetEvent> {
        if n >= LOG_LEN {
            return None;
        }
        let i = (self.logged as usize).checked_sub(n + 1)?;
        self.log[i % LOG_LEN]
    }

    fn record(&mut self, e: ResetEvent) {
        self.log[self.logged as usize % LOG_LEN] = Some(e);
        self.logged = self.logged.wrapping_add(1);
    }
}

/// Simulated state of up to `N` reset domains.
#[derive(Debug)]
pub struct SimResets<const N: usize = MAX_RESETS> {
    table: ResetTable,
    domains: [DomainState; N],
}

impl<const N: usize> SimResets<N> {
    /// Simulated reset domains described by `table`; `Err` if it has more
    /// than `N` domains.
    pub const fn new(table: ResetTable) -> Result<Self, TableError> {
        let n = table.resets.len();
        if let Err(e) = check(n, n, N, "reset") {
            return Err(e);
        }
        Ok(SimResets {
            table,
            domains: [DomainState::NEW; N],
        })
    }

    /// The state of `domain`.
    pub fn domain(&self, domain: u32) -> Option<&DomainState> {
        self.domains
            .get(..self.table.resets.len())
            .unwrap_or_default()
            .get(domain as usize)
    }

    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION): the
    /// domains it holds in reset are released by the platform.
    pub fn reset_agent(&mut self, agent: u32) {
        let Some(bit) = agent.checked_sub(1).and_then(|s| 1u32.checked_shl(s)) else {
            return;
        };
        for d in self.domains.iter_mut().filter(|d| d.held & bit != 0) {
            d.held &= !bit;
            d.record(ResetEvent {
                agent: 0,
                op: ResetOp::Deassert,
                state: 0,
            });
        }
    }
}

impl<const P: usize, const F: usize, const C: usize, const S: usize, const R: usize, const V: usize>
    ResetPlatform for SimPlatform<P, F, C, S, R, V>
{
    fn resets(&self) -> &'static [ResetDesc] {
        self.reset.table.resets
    }

    fn reset(&mut self, agent: u32, domain: u32, op: ResetOp, state: u32) -> Result<(), Status> {
        let bit = agent
            .checked_sub(1)
            .and_then(|s| 1u32.checked_shl(s))
            .ok_or(Status::Denied)?;
        let n = self.reset.table.resets.len();
        let d = self
            .reset
            .domains
            .get_mut(..n)
            .unwrap_or_default()
            .get_mut(domain as usize)
            .ok_or(Status::NotFound)?;
        match op {
            // The pulse completes at once; a line another agent holds stays
            // held.
            ResetOp::Cycle => d.cycles = d.cycles.wrapping_add(1),
            ResetOp::Assert => {
                d.asserts = d.asserts.wrapping_add(1);
                d.held |= bit;
            }
            ResetOp::Deassert => {
                d.deasserts = d.deasserts.wrapping_add(1);
                d.held &= !bit;
            }
        }
        d.record(ResetEvent { agent, op, state });
        Ok(())
    }
}
