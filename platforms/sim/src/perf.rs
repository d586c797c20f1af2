//! Simulated performance domains; eight built-in DVFS domains (CPU clusters, GPU,
//! an accelerator and a video codec in level indexing mode, interconnect,
//! display, DSP), one of them with the 32 levels Linux accepts at most.
//!
//! Each agent's limits are kept apart; the limits in force are their
//! intersection, and the current level is moved into them whenever they
//! change. The level remembers which agent set it, so
//! BASE_RESET_AGENT_CONFIGURATION withdraws that agent's limits and, if it
//! set the level, returns the domain to its boot level.

use crate::{SimPlatform, TableError, check};
use scmi_server::header::Status;
use scmi_server::protocols::perf::{
    MAX_LEVELS, POWER_MILLIWATT, PerfDomain, PerfLevel, PerfPlatform,
};

/// Agents the simulation keeps limits for (ids 1..=8).
pub const AGENTS: usize = 8;

/// `n` evenly spaced levels whose values are kHz: power grows with the
/// frequency, latency is fixed.
const fn khz_ladder<const N: usize>(
    first_khz: u32,
    step_khz: u32,
    first_mw: u32,
    step_mw: u32,
    latency_us: u16,
) -> [PerfLevel; N] {
    let mut out = [PerfLevel {
        value: 0,
        power_cost: 0,
        latency_us: 0,
        indicative_khz: 0,
    }; N];
    let mut i = 0;
    while i < N {
        let khz = first_khz + step_khz * i as u32;
        out[i] = PerfLevel {
            value: khz,
            power_cost: first_mw + step_mw * i as u32,
            latency_us,
            indicative_khz: khz,
        };
        i += 1;
    }
    out
}

/// Abstract levels `step, 2*step, ...` with frequencies `level * khz_per`.
const fn abstract_ladder<const N: usize>(
    step: u32,
    khz_per_level: u32,
    first_mw: u32,
    step_mw: u32,
    latency_us: u16,
) -> [PerfLevel; N] {
    let mut out = [PerfLevel {
        value: 0,
        power_cost: 0,
        latency_us: 0,
        indicative_khz: 0,
    }; N];
    let mut i = 0;
    while i < N {
        let value = step * (i as u32 + 1);
        out[i] = PerfLevel {
            value,
            power_cost: first_mw + step_mw * i as u32,
            latency_us,
            indicative_khz: value * khz_per_level,
        };
        i += 1;
    }
    out
}

static CPU_LITTLE: [PerfLevel; 8] = khz_ladder(300_000, 200_000, 40, 35, 250);
static CPU_BIG: [PerfLevel; MAX_LEVELS] = khz_ladder(400_000, 100_000, 90, 45, 300);
/// Levels 100..600, 2 MHz per level unit (Linux multiplier 2_000_000).
static GPU: [PerfLevel; 6] = abstract_ladder(100, 2_000, 300, 250, 500);
static NPU: [PerfLevel; 12] = abstract_ladder(10, 5_000, 150, 120, 800);
static INTERCONNECT: [PerfLevel; 5] = khz_ladder(200_000, 200_000, 20, 15, 100);
static DISPLAY: [PerfLevel; 4] = khz_ladder(148_500, 148_500, 10, 10, 1000);
static DSP: [PerfLevel; 7] = khz_ladder(200_000, 100_000, 15, 12, 150);
static VIDEO: [PerfLevel; 9] = abstract_ladder(1, 100_000, 60, 55, 400);

/// Most performance domains the simulation holds state for.
pub const MAX_PERF_DOMAINS: usize = 32;

/// The performance domains of a simulated platform.
#[derive(Debug, Clone, Copy)]
pub struct PerfTable {
    /// Descriptions (ids are indexes).
    pub domains: &'static [PerfDomain],
    /// Level value of each domain at boot.
    pub boot: &'static [u32],
    /// Unit of the levels' power costs ([`POWER_MILLIWATT`], ...).
    pub power_unit: u32,
}

/// The built-in domains (ids are indexes).
pub static DOMAINS: [PerfDomain; 8] = [
    PerfDomain {
        name: "cpu-little",
        levels: &CPU_LITTLE,
        set_limits: true,
        set_level: true,
        notify_limits: true,
        notify_level: true,
        level_indexing: false,
        rate_limit_us: 1000,
        sustained_khz: 1_500_000,
        sustained_level: 1_500_000,
    },
    PerfDomain {
        name: "cpu-big",
        levels: &CPU_BIG,
        set_limits: true,
        set_level: true,
        notify_limits: true,
        notify_level: true,
        level_indexing: false,
        rate_limit_us: 1000,
        sustained_khz: 3_000_000,
        sustained_level: 3_000_000,
    },
    PerfDomain {
        name: "gpu-shader-core-cluster",
        levels: &GPU,
        set_limits: true,
        set_level: true,
        notify_limits: true,
        notify_level: true,
        level_indexing: false,
        rate_limit_us: 2000,
        sustained_khz: 800_000,
        sustained_level: 400,
    },
    PerfDomain {
        name: "neural-processing-unit",
        levels: &NPU,
        set_limits: true,
        set_level: true,
        notify_limits: true,
        notify_level: true,
        level_indexing: true,
        rate_limit_us: 5000,
        sustained_khz: 500_000,
        sustained_level: 100,
    },
    PerfDomain {
        name: "memory-interconnect",
        levels: &INTERCONNECT,
        set_limits: true,
        set_level: false,
        notify_limits: true,
        notify_level: true,
        level_indexing: false,
        rate_limit_us: 0,
        sustained_khz: 800_000,
        sustained_level: 800_000,
    },
    PerfDomain {
        name: "display",
        levels: &DISPLAY,
        set_limits: false,
        set_level: true,
        notify_limits: false,
        notify_level: false,
        level_indexing: false,
        rate_limit_us: 0,
        sustained_khz: 594_000,
        sustained_level: 594_000,
    },
    PerfDomain {
        name: "audio-dsp",
        levels: &DSP,
        set_limits: true,
        set_level: true,
        notify_limits: false,
        notify_level: true,
        level_indexing: false,
        rate_limit_us: 500,
        sustained_khz: 800_000,
        sustained_level: 800_000,
    },
    PerfDomain {
        name: "video-codec-performance",
        levels: &VIDEO,
        set_limits: true,
        set_level: true,
        notify_limits: true,
        notify_level: false,
        level_indexing: true,
        rate_limit_us: 0,
        sustained_khz: 700_000,
        sustained_level: 7,
    },
];

const N: usize = DOMAINS.len();

/// Level of each domain before any agent asks for anything: its
/// sustained level.
const fn boot_levels() -> [u32; N] {
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = DOMAINS[i].sustained_level;
        i += 1;
    }
    out
}

/// Boot level of every built-in domain.
pub const BOOT: [u32; N] = boot_levels();

static BOOT_TABLE: [u32; N] = BOOT;

/// The built-in performance domains.
pub const DEFAULT: PerfTable = PerfTable {
    domains: &DOMAINS,
    boot: &BOOT_TABLE,
    power_unit: POWER_MILLIWATT,
};

/// One agent's limits on one domain; 0 = no bound requested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Limits {
    max: u32,
    min: u32,
}

/// Simulated performance state.
#[derive(Debug)]
pub struct SimPerf {
    table: PerfTable,
    level: [u32; MAX_PERF_DOMAINS],
    /// Agent that set the level last (0: nobody since boot).
    level_by: [u32; MAX_PERF_DOMAINS],
    limits: [[Limits; AGENTS]; MAX_PERF_DOMAINS],
}

impl Default for SimPerf {
    fn default() -> Self {
        Self::build(DEFAULT)
    }
}

impl SimPerf {
    /// Simulated domains described by `table`.
    pub fn new(table: PerfTable) -> Result<Self, TableError> {
        check(
            table.domains.len(),
            table.boot.len(),
            MAX_PERF_DOMAINS,
            "performance domain",
        )?;
        Ok(Self::build(table))
    }

    fn build(mut table: PerfTable) -> Self {
        let n = table
            .domains
            .len()
            .min(table.boot.len())
            .min(MAX_PERF_DOMAINS);
        table.domains = table.domains.get(..n).unwrap_or(&[]);
        table.boot = table.boot.get(..n).unwrap_or(&[]);
        let mut level = [0; MAX_PERF_DOMAINS];
        for (l, b) in level.iter_mut().zip(table.boot) {
            *l = *b;
        }
        SimPerf {
            table,
            level,
            level_by: [0; MAX_PERF_DOMAINS],
            limits: [[Limits::default(); AGENTS]; MAX_PERF_DOMAINS],
        }
    }

    fn count(&self) -> usize {
        self.table.domains.len()
    }
}

impl SimPerf {
    /// Reverts what `agent` changed (BASE_RESET_AGENT_CONFIGURATION): its
    /// limits are withdrawn and a level it set returns to the boot level,
    /// within the limits other agents keep.
    pub fn reset_agent(&mut self, agent: u32) {
        let Some(a) = slot(agent) else {
            return;
        };
        let table = self.table;
        for (d, (desc, boot)) in table.domains.iter().zip(table.boot).enumerate() {
            self.limits[d][a] = Limits::default();
            if self.level_by[d] == agent {
                self.level[d] = *boot;
                self.level_by[d] = 0;
            }
            let (max, min) = effective(desc, &self.limits[d]);
            if let Some(l) = clamp(desc, self.level[d], max, min) {
                self.level[d] = l;
            }
        }
    }

    /// Current level value of `domain`.
    pub fn level(&self, domain: u32) -> Option<u32> {
        self.level[..self.count()].get(domain as usize).copied()
    }

    /// Limits in force on `domain`: `(max, min)` level values.
    pub fn limits(&self, domain: u32) -> Option<(u32, u32)> {
        let d = domain as usize;
        Some(effective(self.table.domains.get(d)?, self.limits.get(d)?))
    }

    /// The agent that set `domain`'s level last (0 if none).
    pub fn level_set_by(&self, domain: u32) -> Option<u32> {
        self.level_by[..self.count()].get(domain as usize).copied()
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

impl PerfPlatform for SimPlatform {
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
        let mine = &mut all[a];
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
        s.limits[i] = all;
        s.level[i] = level;
        Ok(())
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
        self.perf.level[i] = level;
        self.perf.level_by[i] = agent;
        Ok(())
    }
}
