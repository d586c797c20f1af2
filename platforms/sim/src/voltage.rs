//! Simulated voltage domains; built in: the regulators of a small SoC, including a
//! finely stepped NPU rail with 40 discrete levels and two body-bias rails
//! with negative levels (signed µV).
//!
//! Levels and modes stick and read back. Every setting remembers which
//! agent made it, so BASE_RESET_AGENT_CONFIGURATION returns that agent's
//! settings to the reset defaults.

use crate::{SimPlatform, TableError, check};
use scmi_server::header::Status;
use scmi_server::protocols::voltage::{Levels, MODE_OFF, MODE_ON, VoltageDesc, VoltagePlatform};

/// Implementation-defined mode 0x8: retention (output parked at its
/// retention level; Linux sees it as off).
pub const MODE_RETENTION: u32 = 0x8;
/// Implementation-defined mode 0x9: on, pulse-frequency modulation (light
/// loads; Linux sees it as on).
pub const MODE_ON_PFM: u32 = 0x9;

/// Levels of the NPU rail: 550 mV to 1037.5 mV in 12.5 mV steps.
const NPU_LEVELS: [i32; 40] = {
    let mut l = [0i32; 40];
    let mut i = 0;
    while i < 40 {
        l[i] = 550_000 + 12_500 * i as i32;
        i += 1;
    }
    l
};

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

/// A built-in domain: its description and reset defaults.
#[derive(Debug, Clone, Copy)]
struct SimDomain {
    desc: VoltageDesc,
    init: VoltageInit,
}

const fn vdom(name: &'static str, levels: Levels, level: i32, on: bool) -> SimDomain {
    SimDomain {
        desc: VoltageDesc {
            name,
            levels,
            async_capable: false,
            impl_modes: 0,
        },
        init: VoltageInit {
            level,
            config: if on { MODE_ON } else { MODE_OFF },
        },
    }
}

impl SimDomain {
    const fn slow(mut self) -> Self {
        self.desc.async_capable = true;
        self
    }
    const fn modes(mut self, m: u8) -> Self {
        self.desc.impl_modes = m;
        self
    }
}

/// Number of built-in voltage domains.
pub const VOLTAGE_COUNT: usize = 10;

const DOMAINS: [SimDomain; VOLTAGE_COUNT] = [
    vdom(
        "vdd_cpu_big",
        Levels::Range {
            min: 600_000,
            max: 1_300_000,
            step: 6_250,
        },
        900_000,
        true,
    )
    .slow(),
    vdom(
        "vdd_gpu",
        Levels::Range {
            min: 550_000,
            max: 1_150_000,
            step: 12_500,
        },
        800_000,
        false,
    )
    .slow(),
    vdom(
        "vdd_soc",
        Levels::List(&[750_000, 800_000, 850_000, 900_000]),
        800_000,
        true,
    )
    .modes(0b11),
    vdom(
        "vddq_ddr",
        Levels::List(&[1_100_000, 1_200_000, 1_350_000]),
        1_100_000,
        true,
    ),
    vdom(
        "vdd_io_general",
        Levels::List(&[1_800_000, 3_300_000]),
        1_800_000,
        true,
    ),
    vdom(
        "vdd_sdcard_io_signalling",
        Levels::List(&[1_800_000, 3_300_000]),
        3_300_000,
        false,
    ),
    vdom(
        "vdd_npu_core_dynamic_scaling",
        Levels::List(&NPU_LEVELS),
        750_000,
        false,
    )
    .slow(),
    vdom(
        "vdd_analog_always_on",
        Levels::List(&[800_000]),
        800_000,
        true,
    ),
    // Body bias: reverse bias is negative.
    vdom(
        "vbb_body_bias_nmos",
        Levels::List(&[
            -400_000, -350_000, -300_000, -250_000, -200_000, -150_000, -100_000, -50_000, 0,
        ]),
        0,
        true,
    ),
    vdom(
        "vbb_body_bias_pmos",
        Levels::Range {
            min: -300_000,
            max: 300_000,
            step: 25_000,
        },
        0,
        true,
    ),
];

const fn descriptions() -> [VoltageDesc; VOLTAGE_COUNT] {
    let mut out = [DOMAINS[0].desc; VOLTAGE_COUNT];
    let mut i = 0;
    while i < VOLTAGE_COUNT {
        out[i] = DOMAINS[i].desc;
        i += 1;
    }
    out
}

const fn inits() -> [VoltageInit; VOLTAGE_COUNT] {
    let mut out = [DOMAINS[0].init; VOLTAGE_COUNT];
    let mut i = 0;
    while i < VOLTAGE_COUNT {
        out[i] = DOMAINS[i].init;
        i += 1;
    }
    out
}

/// The built-in voltage domains, by domain id.
pub static VOLTAGES: [VoltageDesc; VOLTAGE_COUNT] = descriptions();

/// Reset defaults of the built-in domains.
pub static VOLTAGE_INIT: [VoltageInit; VOLTAGE_COUNT] = inits();

/// The built-in voltage domains.
pub const DEFAULT: VoltageTable = VoltageTable {
    domains: &VOLTAGES,
    init: &VOLTAGE_INIT,
};

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

/// Simulated voltage state.
#[derive(Debug)]
pub struct SimVoltages {
    table: VoltageTable,
    state: [State; MAX_VOLTAGES],
}

impl Default for SimVoltages {
    fn default() -> Self {
        Self::build(DEFAULT)
    }
}

impl SimVoltages {
    /// Simulated voltage domains described by `table`.
    pub fn new(table: VoltageTable) -> Result<Self, TableError> {
        check(
            table.domains.len(),
            table.init.len(),
            MAX_VOLTAGES,
            "voltage domain",
        )?;
        Ok(Self::build(table))
    }

    fn build(mut table: VoltageTable) -> Self {
        let n = table.domains.len().min(table.init.len()).min(MAX_VOLTAGES);
        table.domains = table.domains.get(..n).unwrap_or(&[]);
        table.init = table.init.get(..n).unwrap_or(&[]);
        let mut state = [State {
            level: 0,
            level_by: 0,
            config: MODE_OFF,
            config_by: 0,
            level_changes: 0,
        }; MAX_VOLTAGES];
        for (s, d) in state.iter_mut().zip(table.init.iter()) {
            s.level = d.level;
            s.config = d.config;
        }
        SimVoltages { table, state }
    }
}

impl SimVoltages {
    fn get(&self, domain: u32) -> Result<&State, Status> {
        let n = self.table.domains.len();
        self.state[..n].get(domain as usize).ok_or(Status::NotFound)
    }

    fn get_mut(&mut self, domain: u32) -> Result<&mut State, Status> {
        let n = self.table.domains.len();
        self.state[..n]
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

impl VoltagePlatform for SimPlatform {
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
