//! Simulated performance (DVFS) domains.
//!
//! Each agent's limits are kept apart; the limits in force are their
//! intersection, and the current level is moved into them whenever they
//! change. The level remembers which agent set it, so
//! BASE_RESET_AGENT_CONFIGURATION withdraws that agent's limits and, if it
//! set the level, returns the domain to its boot level.

use crate::{SimPlatform, TableError, check};
use scmi_server::header::Status;
use scmi_server::protocols::perf::{PerfDomain, PerfPlatform};

/// Agents the simulation keeps limits for (ids 1..=8).
pub const AGENTS: usize = 8;

/// Most performance domains the simulation holds state for.
pub const MAX_PERF_DOMAINS: usize = 32;

/// The performance domains of a simulated platform.
#[derive(Debug, Clone, Copy)]
pub struct PerfTable {
    /// Descriptions (ids are indexes).
    pub domains: &'static [PerfDomain],
    /// Level value of each domain at boot.
    pub boot: &'static [u32],
    /// Unit of the levels' power costs
    /// ([`POWER_MILLIWATT`](scmi_server::protocols::perf::POWER_MILLIWATT), ...).
    pub power_unit: u32,
}

/// One agent's limits on one domain; 0 = no bound requested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Limits {
    max: u32,
    min: u32,
}

impl Limits {
    const NONE: Limits = Limits { max: 0, min: 0 };
}

/// Simulated performance state for up to `N` domains.
#[derive(Debug)]
pub struct SimPerf<const N: usize = MAX_PERF_DOMAINS> {
    table: PerfTable,
    level: [u32; N],
    /// Agent that set the level last (0: nobody since boot).
    level_by: [u32; N],
    limits: [[Limits; AGENTS]; N],
}

impl<const N: usize> SimPerf<N> {
    /// Simulated domains described by `table`; `Err` if it has more than
    /// `N` domains or its two slices differ in length.
    pub const fn new(table: PerfTable) -> Result<Self, TableError> {
        if let Err(e) = check(
            table.domains.len(),
            table.boot.len(),
            N,
            "performance domain",
        ) {
            return Err(e);
        }
        let mut level = [0; N];
        let mut i = 0;
        while i < table.boot.len() {
            level[i] = table.boot[i];
            i += 1;
        }
        Ok(SimPerf {
            table,
            level,
            level_by: [0; N],
            limits: [[Limits::NONE; AGENTS]; N],
        })
    }

    fn count(&self) -> usize {
        self.table.domains.len()
    }
}

impl<const N: usize> SimPerf<N> {
    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION): its
    /// limits are withdrawn and a level it set returns to the boot level,
    /// within the limits other agents keep.
    pub fn reset_agent(&mut self, agent: u32) {
        let Some(a) = slot(agent) else {
            return;
        };
        let table = self.table;
        let state = self
            .limits
            .iter_mut()
            .zip(self.level.iter_mut())
            .zip(self.level_by.iter_mut());
        for ((desc, boot), ((limits, level), by)) in table.domains.iter().zip(table.boot).zip(state)
        {
            if let Some(mine) = limits.get_mut(a) {
                *mine = Limits::default();
            }
            if *by == agent {
                *level = *boot;
                *by = 0;
            }
            let (max, min) = effective(desc, limits);
            if let Some(l) = clamp(desc, *level, max, min) {
                *level = l;
            }
        }
    }

    /// Current level value of `domain`.
    pub fn level(&self, domain: u32) -> Option<u32> {
        self.level
            .get(..self.count())
            .unwrap_or_default()
            .get(domain as usize)
            .copied()
    }

    /// Limits in force on `domain`: `(max, min)` level values.
    pub fn limits(&self, domain: u32) -> Option<(u32, u32)> {
        let d = domain as usize;
        Some(effective(self.table.domains.get(d)?, self.limits.get(d)?))
    }

    /// The agent that set `domain`'s level last (0 if none).
    pub fn level_set_by(&self, domain: u32) -> Option<u32> {
        self.level_by
            .get(..self.count())
            .unwrap_or_default()
            .get(domain as usize)
            .copied()
    }
}

/// Index of `agent` in the per-agent arrays.
fn slot(agent: u32) -> Option<usize> {
    let i = (agent as usize).checked_sub(1)?;
    (i < AGENTS).then_some(i)
}

/// The intersection of every agent's limits, within the described levels.
fn effective(d: &PerfDomain, limits: &[Limits; AGENTS]) -> (u32, u32) {
    let lo = d.levels.first().map_or(0, |l| l.value);
    let hi = d.levels.last().map_or(0, |l| l.value);
    limits.iter().fold((hi, lo), |(max, min), l| {
        (
            if l.max != 0 { max.min(l.max) } else { max },
            if l.min != 0 { min.max(l.min) } else { min },
        )
    })
}

/// `level` moved to the nearest described level inside `[min, max]`;
/// `None` if no level lies there.
fn clamp(d: &PerfDomain, level: u32, max: u32, min: u32) -> Option<u32> {
    let mut inside = d
        .levels
        .iter()
        .map(|l| l.value)
        .filter(|v| (min..=max).contains(v));
    let first = inside.next()?;
    if level < first {
        return Some(first);
    }
    let last = inside.next_back().unwrap_or(first);
    Some(if level > last { last } else { level })
}

impl<const P: usize, const F: usize, const C: usize, const S: usize, const R: usize, const V: usize>
    PerfPlatform for SimPlatform<P, F, C, S, R, V>
{
    fn perf_domains(&self) -> &'static [PerfDomain] {
        self.perf.table.domains
    }

    fn perf_power_unit(&self) -> u32 {
        self.perf.table.power_unit
    }

    fn perf_limits_get(&self, domain: u32) -> Result<(u32, u32), Status> {
        self.perf.limits(domain).ok_or(Status::NotFound)
    }

    fn perf_limits_set(
        &mut self,
        agent: u32,
        domain: u32,
        max: Option<u32>,
        min: Option<u32>,
    ) -> Result<(), Status> {
        let a = slot(agent).ok_or(Status::Denied)?;
        let i = domain as usize;
        let d = self.perf.table.domains.get(i).ok_or(Status::NotFound)?;
        let s = &mut self.perf;
        let mut all = *s.limits.get(i).ok_or(Status::NotFound)?;
        let mine = all.get_mut(a).ok_or(Status::Denied)?;
        if let Some(m) = max {
            mine.max = m;
        }
        if let Some(m) = min {
            mine.min = m;
        }
        // SCMI v3.2 §4.5.3.7: this agent's own range must be ordered.
        if mine.max != 0 && mine.min > mine.max {
            return Err(Status::InvalidParameters);
        }
        // Together with the other agents' limits, some level must remain.
        let (emax, emin) = effective(d, &all);
        let level = clamp(d, s.level[i], emax, emin).ok_or(Status::OutOfRange)?;
        match (s.limits.get_mut(i), s.level.get_mut(i)) {
            (Some(l), Some(v)) => {
                *l = all;
                *v = level;
                Ok(())
            }
            _ => Err(Status::NotFound),
        }
    }

    fn perf_level_get(&self, domain: u32) -> Result<u32, Status> {
        self.perf.level(domain).ok_or(Status::NotFound)
    }

    fn perf_level_set(&mut self, agent: u32, domain: u32, level: u32) -> Result<(), Status> {
        let i = domain as usize;
        let d = self.perf.table.domains.get(i).ok_or(Status::NotFound)?;
        if !d.levels.iter().any(|l| l.value == level) {
            return Err(Status::InvalidParameters);
        }
        let (max, min) = self.perf.limits(domain).ok_or(Status::NotFound)?;
        // SCMI v3.2 §4.5.3.9: outside the limits in force.
        if !(min..=max).contains(&level) {
            return Err(Status::OutOfRange);
        }
        match (self.perf.level.get_mut(i), self.perf.level_by.get_mut(i)) {
            (Some(v), Some(by)) => {
                *v = level;
                *by = agent;
                Ok(())
            }
            _ => Err(Status::NotFound),
        }
    }
}
