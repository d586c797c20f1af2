//! Simulated voltage domains (levels in signed µV).
//!
//! Levels and modes stick and read back. Every setting remembers which
//! agent made it, so BASE_RESET_AGENT_CONFIGURATION returns that agent's
//! settings to the reset defaults.

use crate::{SimPlatform, TableError, check};
use scmi_server::header::Status;
use scmi_server::protocols::voltage::{MODE_OFF, MODE_ON, VoltageDesc, VoltagePlatform};

/// Implementation-defined mode 0x8: retention (output parked at its
/// retention level; Linux sees it as off).
pub const MODE_RETENTION: u32 = 0x8;
/// Implementation-defined mode 0x9: on, pulse-frequency modulation (light
/// loads; Linux sees it as on).
pub const MODE_ON_PFM: u32 = 0x9;

/// Most voltage domains the simulation holds state for.
pub const MAX_VOLTAGES: usize = 32;

/// Reset defaults of one voltage domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoltageInit {
    /// Level in µV (one of the domain's levels).
    pub level: i32,
    /// Mode ([`MODE_ON`], [`MODE_OFF`] or a supported
    /// implementation-defined mode).
    pub config: u32,
}

/// The voltage domains of a simulated platform: descriptions and reset
/// defaults, both by domain id.
#[derive(Debug, Clone, Copy)]
pub struct VoltageTable {
    /// Descriptions.
    pub domains: &'static [VoltageDesc],
    /// Reset defaults.
    pub init: &'static [VoltageInit],
}

/// Run-time state of one domain. `*_by` is the agent that made the
/// current setting (0: the reset default).
#[derive(Debug, Clone, Copy)]
struct State {
    level: i32,
    level_by: u32,
    config: u32,
    config_by: u32,
    level_changes: u32,
}

/// Simulated state of up to `N` voltage domains.
#[derive(Debug)]
pub struct SimVoltages<const N: usize = MAX_VOLTAGES> {
    table: VoltageTable,
    state: [State; N],
}

impl<const N: usize> SimVoltages<N> {
    /// Simulated voltage domains described by `table`; `Err` if it has
    /// more than `N` domains or its two slices differ in length.
    pub const fn new(table: VoltageTable) -> Result<Self, TableError> {
        if let Err(e) = check(table.domains.len(), table.init.len(), N, "voltage domain") {
            return Err(e);
        }
        let mut state = [State {
            level: 0,
            level_by: 0,
            config: MODE_OFF,
            config_by: 0,
            level_changes: 0,
        }; N];
        let mut i = 0;
        while i < table.init.len() {
            state[i].level = table.init[i].level;
            state[i].config = table.init[i].config;
            i += 1;
        }
        Ok(SimVoltages { table, state })
    }
}

impl<const N: usize> SimVoltages<N> {
    fn get(&self, domain: u32) -> Result<&State, Status> {
        let n = self.table.domains.len();
        self.state
            .get(..n)
            .unwrap_or_default()
            .get(domain as usize)
            .ok_or(Status::NotFound)
    }

    fn get_mut(&mut self, domain: u32) -> Result<&mut State, Status> {
        let n = self.table.domains.len();
        self.state
            .get_mut(..n)
            .unwrap_or_default()
            .get_mut(domain as usize)
            .ok_or(Status::NotFound)
    }

    /// Current level of `domain` in µV.
    pub fn level(&self, domain: u32) -> Option<i32> {
        self.get(domain).ok().map(|s| s.level)
    }

    /// Current mode of `domain`.
    pub fn config(&self, domain: u32) -> Option<u32> {
        self.get(domain).ok().map(|s| s.config)
    }

    /// Whether `domain` supplies its level (architectural ON or an
    /// implementation-defined "on" mode).
    pub fn powered(&self, domain: u32) -> Option<bool> {
        self.config(domain).map(|c| c & 0x7 != 0)
    }

    /// How many times the level of `domain` actually changed.
    pub fn level_changes(&self, domain: u32) -> Option<u32> {
        self.get(domain).ok().map(|s| s.level_changes)
    }

    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION):
    /// levels and modes it set last return to their defaults.
    pub fn reset_agent(&mut self, agent: u32) {
        if agent == 0 {
            return;
        }
        for (s, d) in self.state.iter_mut().zip(self.table.init.iter()) {
            if s.level_by == agent {
                if s.level != d.level {
                    s.level_changes = s.level_changes.wrapping_add(1);
                }
                s.level = d.level;
                s.level_by = 0;
            }
            if s.config_by == agent {
                s.config = d.config;
                s.config_by = 0;
            }
        }
    }
}

impl<const P: usize, const F: usize, const C: usize, const S: usize, const R: usize, const V: usize>
    VoltagePlatform for SimPlatform<P, F, C, S, R, V>
{
    fn voltages(&self) -> &'static [VoltageDesc] {
        self.voltage.table.domains
    }

    fn voltage_config(&self, domain: u32) -> Result<u32, Status> {
        self.voltage.get(domain).map(|s| s.config)
    }

    fn voltage_set_config(&mut self, agent: u32, domain: u32, config: u32) -> Result<(), Status> {
        let d = self
            .voltage
            .table
            .domains
            .get(domain as usize)
            .ok_or(Status::NotFound)?;
        let ok = match config {
            MODE_OFF | MODE_ON => true,
            0x8..=0xf => d.impl_modes & (1 << (config - 0x8)) != 0,
            _ => false,
        };
        if !ok {
            return Err(Status::InvalidParameters);
        }
        let s = self.voltage.get_mut(domain)?;
        s.config = config;
        s.config_by = agent;
        Ok(())
    }

    fn voltage_level(&self, domain: u32) -> Result<i32, Status> {
        self.voltage.get(domain).map(|s| s.level)
    }

    fn voltage_set_level(&mut self, agent: u32, domain: u32, level: i32) -> Result<(), Status> {
        let d = self
            .voltage
            .table
            .domains
            .get(domain as usize)
            .ok_or(Status::NotFound)?;
        if !d.levels.contains(level) {
            return Err(Status::InvalidParameters);
        }
        let s = self.voltage.get_mut(domain)?;
        if s.level != level {
            s.level_changes = s.level_changes.wrapping_add(1);
        }
        s.level = level;
        s.level_by = agent;
        Ok(())
    }
}
