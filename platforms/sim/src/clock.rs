//! Simulated clocks with parent muxes.
//!
//! Rates stick and read back, enable requests are voted per agent (a clock
//! runs while any agent wants it on; with no votes it keeps its reset
//! default), parents and extended configuration (duty cycle, phase, an OEM
//! spread-spectrum depth) read back. Every setting remembers which agent
//! made it, so BASE_RESET_AGENT_CONFIGURATION reverts exactly that agent's
//! settings to the defaults.
//!
//! Agents 1..=32 are tracked; requests from other agent ids are DENIED.
//!
//! The clocks come from a [`ClockTable`] the caller supplies (a manifest).
//! State lives in a fixed array of as many entries as the platform's
//! capacity says (at most [`MAX_CLOCKS`] by default).

use crate::{SimPlatform, TableError, check};
use scmi_server::header::Status;
use scmi_server::protocols::clock::{ClockDesc, ClockPlatform, EXT_DUTY_CYCLE, EXT_PHASE};

/// OEM extended configuration (0x80): spread-spectrum depth in per mille
/// (0 = off, at most 50).
pub const EXT_SPREAD_SPECTRUM: u8 = 0x80;

/// Most clocks a simulated platform holds state for.
pub const MAX_CLOCKS: usize = 64;

/// Reset defaults of one clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockInit {
    /// Rate at reset (one of the clock's rates).
    pub rate: u64,
    /// Whether the clock runs while no agent votes.
    pub on: bool,
    /// Parent at reset (0 for a clock without parents).
    pub parent: u32,
}

/// The clocks of a simulated platform: descriptions and reset defaults,
/// both indexed by clock id (equal lengths, at most [`MAX_CLOCKS`]).
#[derive(Debug, Clone, Copy)]
pub struct ClockTable {
    /// Descriptions served by the protocol.
    pub clocks: &'static [ClockDesc],
    /// Reset defaults.
    pub init: &'static [ClockInit],
}

/// Extended configuration slots: duty cycle, phase, spread spectrum.
const EXT_KINDS: [u8; 3] = [EXT_DUTY_CYCLE, EXT_PHASE, EXT_SPREAD_SPECTRUM];
/// Their defaults: 50 %, 0 degrees, spread spectrum off.
const EXT_DEFAULTS: [u32; 3] = [50, 0, 0];

/// Run-time state of one clock. `*_by` is the agent that made the current
/// setting (0: the reset default).
#[derive(Debug, Clone, Copy)]
struct State {
    rate: u64,
    rate_by: u32,
    /// Agents that asked for the clock on / off (bit `agent - 1`).
    on_votes: u32,
    off_votes: u32,
    parent: u32,
    parent_by: u32,
    ext: [u32; 3],
    ext_by: [u32; 3],
    /// How many times the rate actually changed.
    rate_changes: u32,
}

/// Simulated state of up to `N` clocks.
#[derive(Debug)]
pub struct SimClocks<const N: usize = MAX_CLOCKS> {
    table: ClockTable,
    state: [State; N],
}

impl<const N: usize> SimClocks<N> {
    /// Simulated clocks described by `table`; `Err` if it holds more than
    /// `N` clocks or its two slices differ in length.
    pub const fn new(table: ClockTable) -> Result<Self, TableError> {
        if let Err(e) = check(table.clocks.len(), table.init.len(), N, "clock") {
            return Err(e);
        }
        let mut state = [State {
            rate: 0,
            rate_by: 0,
            on_votes: 0,
            off_votes: 0,
            parent: 0,
            parent_by: 0,
            ext: EXT_DEFAULTS,
            ext_by: [0; 3],
            rate_changes: 0,
        }; N];
        let mut i = 0;
        while i < table.init.len() {
            state[i].rate = table.init[i].rate;
            state[i].parent = table.init[i].parent;
            i += 1;
        }
        Ok(SimClocks { table, state })
    }

    /// The clock descriptions in use.
    pub fn descs(&self) -> &'static [ClockDesc] {
        self.table.clocks
    }
}

/// Vote bit of `agent`; DENIED for ids the simulation does not track.
fn agent_bit(agent: u32) -> Result<u32, Status> {
    agent
        .checked_sub(1)
        .and_then(|s| 1u32.checked_shl(s))
        .ok_or(Status::Denied)
}

fn ext_slot(kind: u8) -> Result<usize, Status> {
    EXT_KINDS
        .iter()
        .position(|&k| k == kind)
        .ok_or(Status::InvalidParameters)
}

impl<const N: usize> SimClocks<N> {
    fn get(&self, clock: u32) -> Result<&State, Status> {
        let n = self.table.clocks.len();
        self.state
            .get(..n)
            .unwrap_or_default()
            .get(clock as usize)
            .ok_or(Status::NotFound)
    }

    fn get_mut(&mut self, clock: u32) -> Result<&mut State, Status> {
        let n = self.table.clocks.len();
        self.state
            .get_mut(..n)
            .unwrap_or_default()
            .get_mut(clock as usize)
            .ok_or(Status::NotFound)
    }

    /// Current rate of `clock`.
    pub fn rate(&self, clock: u32) -> Option<u64> {
        self.get(clock).ok().map(|s| s.rate)
    }

    /// Whether `clock` runs: on while any agent wants it on, off while
    /// some agent wants it off and none on, else its reset default.
    pub fn enabled(&self, clock: u32) -> Option<bool> {
        let s = self.get(clock).ok()?;
        let t = self.table.init.get(clock as usize)?;
        Some(if s.on_votes != 0 {
            true
        } else if s.off_votes != 0 {
            false
        } else {
            t.on
        })
    }

    /// How many times the rate of `clock` actually changed.
    pub fn rate_changes(&self, clock: u32) -> Option<u32> {
        self.get(clock).ok().map(|s| s.rate_changes)
    }

    /// Current parent of `clock` (meaningful for clocks with parents).
    pub fn parent(&self, clock: u32) -> Option<u32> {
        self.get(clock).ok().map(|s| s.parent)
    }

    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION): its
    /// enable votes go, and rates, parents and extended settings it made
    /// last return to their defaults.
    pub fn reset_agent(&mut self, agent: u32) {
        let bit = agent_bit(agent).unwrap_or(0);
        for (s, t) in self.state.iter_mut().zip(self.table.init.iter()) {
            s.on_votes &= !bit;
            s.off_votes &= !bit;
            if s.rate_by == agent && agent != 0 {
                if s.rate != t.rate {
                    s.rate_changes = s.rate_changes.wrapping_add(1);
                }
                s.rate = t.rate;
                s.rate_by = 0;
            }
            if s.parent_by == agent && agent != 0 {
                s.parent = t.parent;
                s.parent_by = 0;
            }
            for ((v, by), def) in s.ext.iter_mut().zip(&mut s.ext_by).zip(EXT_DEFAULTS) {
                if *by == agent && agent != 0 {
                    *v = def;
                    *by = 0;
                }
            }
        }
    }
}

impl<const P: usize, const F: usize, const C: usize, const S: usize, const R: usize, const V: usize>
    ClockPlatform for SimPlatform<P, F, C, S, R, V>
{
    fn clocks(&self) -> &'static [ClockDesc] {
        self.clock.table.clocks
    }

    fn clock_rate(&self, clock: u32) -> Result<u64, Status> {
        self.clock.get(clock).map(|s| s.rate)
    }

    fn clock_set_rate(&mut self, agent: u32, clock: u32, rate: u64) -> Result<(), Status> {
        agent_bit(agent)?;
        let d = self
            .clock
            .table
            .clocks
            .get(clock as usize)
            .ok_or(Status::NotFound)?;
        if !d.rates.contains(rate) {
            return Err(Status::InvalidParameters);
        }
        let s = self.clock.get_mut(clock)?;
        if s.rate != rate {
            s.rate_changes = s.rate_changes.wrapping_add(1);
        }
        s.rate = rate;
        s.rate_by = agent;
        Ok(())
    }

    fn clock_enabled(&self, clock: u32) -> Result<bool, Status> {
        self.clock.enabled(clock).ok_or(Status::NotFound)
    }

    fn clock_set_enabled(&mut self, agent: u32, clock: u32, on: bool) -> Result<(), Status> {
        let bit = agent_bit(agent)?;
        let s = self.clock.get_mut(clock)?;
        if on {
            s.on_votes |= bit;
            s.off_votes &= !bit;
        } else {
            s.on_votes &= !bit;
            s.off_votes |= bit;
        }
        Ok(())
    }

    fn clock_ext_config(&self, clock: u32, kind: u8) -> Result<u32, Status> {
        let k = ext_slot(kind)?;
        let s = self.clock.get(clock)?;
        s.ext.get(k).copied().ok_or(Status::InvalidParameters)
    }

    fn clock_set_ext_config(
        &mut self,
        agent: u32,
        clock: u32,
        kind: u8,
        value: u32,
    ) -> Result<(), Status> {
        agent_bit(agent)?;
        let k = ext_slot(kind)?;
        let ok = match kind {
            // A 0 % or 100 % duty cycle is no clock at all.
            EXT_DUTY_CYCLE => (1..=99).contains(&value),
            EXT_PHASE => value < 360,
            _ => value <= 50,
        };
        if !ok {
            return Err(Status::InvalidParameters);
        }
        let s = self.clock.get_mut(clock)?;
        // ext_slot indexes EXT_KINDS, as long as ext and ext_by.
        match (s.ext.get_mut(k), s.ext_by.get_mut(k)) {
            (Some(v), Some(by)) => {
                *v = value;
                *by = agent;
                Ok(())
            }
            _ => Err(Status::InvalidParameters),
        }
    }

    fn clock_parent(&self, clock: u32) -> Result<u32, Status> {
        self.clock.get(clock).map(|s| s.parent)
    }

    fn clock_set_parent(&mut self, agent: u32, clock: u32, parent: u32) -> Result<(), Status> {
        agent_bit(agent)?;
        let s = self.clock.get_mut(clock)?;
        s.parent = parent;
        s.parent_by = agent;
        Ok(())
    }
}
