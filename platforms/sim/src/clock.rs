//! Simulated clocks: a small SoC clock tree of 34 clocks (oscillators,
//! PLLs, CPU/GPU/peripheral clocks with parent muxes, and a clock-output
//! observation mux that can select any other clock).
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
//! The clocks come from a [`ClockTable`] the caller supplies (a manifest);
//! [`DEFAULT`] is the built-in tree. State lives in a fixed array of
//! [`MAX_CLOCKS`] entries.

use crate::{SimPlatform, TableError, check};
use scmi_server::header::Status;
use scmi_server::protocols::clock::{
    ClockDesc, ClockPlatform, EXT_DUTY_CYCLE, EXT_PHASE, Rates, perm,
};

/// OEM extended configuration (0x80): spread-spectrum depth in per mille
/// (0 = off, at most 50).
pub const EXT_SPREAD_SPECTRUM: u8 = 0x80;

const MHZ: u64 = 1_000_000;

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

/// A clock of the built-in tree: its description and reset defaults.
#[derive(Debug, Clone, Copy)]
struct SimClock {
    desc: ClockDesc,
    init: ClockInit,
}

const fn clk(
    name: &'static str,
    rates: Rates,
    parents: &'static [u32],
    rate: u64,
    on: bool,
) -> SimClock {
    SimClock {
        desc: ClockDesc {
            name,
            rates,
            parents,
            enable_latency_us: 0,
            rate_notify: true,
            ext_config: &[],
            permissions: perm::ALL,
        },
        init: ClockInit {
            rate,
            on,
            parent: if parents.is_empty() { 0 } else { parents[0] },
        },
    }
}

const fn fixed(name: &'static str, rates: &'static [u64]) -> SimClock {
    let mut c = clk(name, Rates::List(rates), &[], rates[0], true);
    c.desc.rate_notify = false;
    c.desc.permissions = 0;
    c
}

impl SimClock {
    const fn latency(mut self, us: u32) -> Self {
        self.desc.enable_latency_us = us;
        self
    }
    const fn perms(mut self, p: u32) -> Self {
        self.desc.permissions = p;
        self
    }
    const fn ext(mut self, kinds: &'static [u8]) -> Self {
        self.desc.ext_config = kinds;
        self
    }
    const fn quiet(mut self) -> Self {
        self.desc.rate_notify = false;
        self
    }
    const fn parent(mut self, p: u32) -> Self {
        self.init.parent = p;
        self
    }
}

const CPU0_RATES: &[u64] = &[
    408 * MHZ,
    600 * MHZ,
    816 * MHZ,
    1008 * MHZ,
    1200 * MHZ,
    1296 * MHZ,
    1416 * MHZ,
    1512 * MHZ,
    1608 * MHZ,
    1704 * MHZ,
    1800 * MHZ,
    1896 * MHZ,
    1992 * MHZ,
    2016 * MHZ,
    2208 * MHZ,
    2304 * MHZ,
];
const CPU1_RATES: &[u64] = &[
    300 * MHZ,
    408 * MHZ,
    600 * MHZ,
    816 * MHZ,
    1008 * MHZ,
    1200 * MHZ,
    1416 * MHZ,
    1608 * MHZ,
    1800 * MHZ,
    1992 * MHZ,
    2112 * MHZ,
    2208 * MHZ,
    2256 * MHZ,
    2304 * MHZ,
    2352 * MHZ,
    2400 * MHZ,
];
const GPU_RATES: &[u64] = &[
    200 * MHZ,
    250 * MHZ,
    300 * MHZ,
    350 * MHZ,
    400 * MHZ,
    450 * MHZ,
    500 * MHZ,
    550 * MHZ,
    600 * MHZ,
    700 * MHZ,
    800 * MHZ,
    900 * MHZ,
];
const UART_RATES: &[u64] = &[
    1_843_200,
    3_686_400,
    7_372_800,
    14_745_600,
    24 * MHZ,
    48 * MHZ,
];
const I2C_RATES: &[u64] = &[100_000, 400_000, 1_000_000, 3_400_000];
const SDMMC_RATES: &[u64] = &[400_000, 25 * MHZ, 50 * MHZ, 100 * MHZ, 200 * MHZ];
const I2S_RATES: &[u64] = &[
    11_289_600, 12_288_000, 22_579_200, 24_576_000, 45_158_400, 49_152_000,
];
const FAST_PERIPH: &[u32] = &[5, 4];
const OBSERVABLE: &[u32] = &[
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31, 32,
];

/// Number of clocks of the built-in tree.
pub const CLOCK_COUNT: usize = 34;

/// The tree. Parents always have lower ids than their children.
const TREE: [SimClock; CLOCK_COUNT] = [
    // 0-2: oscillators. The two crystals are platform-owned.
    fixed("osc_24m", &[24 * MHZ]),
    fixed("osc_32k", &[32_768]),
    clk(
        "audio_ext_osc",
        Rates::List(&[22_579_200, 24_576_000]),
        &[],
        24_576_000,
        false,
    )
    .latency(2000),
    // 3-8: PLLs.
    clk(
        "pll_cpu",
        Rates::Range {
            min: 192 * MHZ,
            max: 2400 * MHZ,
            step: 24 * MHZ,
        },
        &[],
        1200 * MHZ,
        true,
    )
    .latency(100),
    // The system PLL feeds the interconnect: no agent may touch it.
    clk(
        "pll_sys",
        Rates::Range {
            min: 24 * MHZ,
            max: 1200 * MHZ,
            step: 8 * MHZ,
        },
        &[],
        800 * MHZ,
        true,
    )
    .perms(0)
    .quiet(),
    clk(
        "pll_periph",
        Rates::Range {
            min: 100 * MHZ,
            max: 1000 * MHZ,
            step: 50 * MHZ,
        },
        &[],
        600 * MHZ,
        true,
    )
    .latency(100),
    // Above 4 GHz: exercises the upper rate word.
    clk(
        "pll_ddr_vco",
        Rates::Range {
            min: 2000 * MHZ,
            max: 6400 * MHZ,
            step: 100 * MHZ,
        },
        &[],
        4800 * MHZ,
        true,
    )
    .perms(perm::RATE)
    .latency(150),
    clk(
        "pll_video",
        Rates::Range {
            min: 25 * MHZ,
            max: 1188 * MHZ,
            step: 1000,
        },
        &[],
        594 * MHZ,
        false,
    )
    .latency(100)
    .ext(&[EXT_SPREAD_SPECTRUM]),
    clk(
        "pll_audio",
        Rates::List(&[451_584_000, 491_520_000]),
        &[2, 0],
        491_520_000,
        false,
    )
    .latency(100),
    // 9-15: compute and media.
    clk(
        "cpu_cluster0_core",
        Rates::List(CPU0_RATES),
        &[3, 4, 0],
        1200 * MHZ,
        true,
    ),
    clk(
        "cpu_cluster1_core",
        Rates::List(CPU1_RATES),
        &[3, 4, 0],
        1008 * MHZ,
        true,
    ),
    clk(
        "gpu_core",
        Rates::List(GPU_RATES),
        &[5, 4, 7],
        500 * MHZ,
        false,
    )
    .latency(20),
    // The DDR controller may be retuned but never gated or re-parented.
    clk(
        "ddr_controller",
        Rates::List(&[400 * MHZ, 533 * MHZ, 800 * MHZ, 1066 * MHZ, 1600 * MHZ]),
        &[],
        1066 * MHZ,
        true,
    )
    .perms(perm::RATE),
    clk(
        "npu_accelerator_core",
        Rates::List(&[
            100 * MHZ,
            200 * MHZ,
            300 * MHZ,
            400 * MHZ,
            500 * MHZ,
            600 * MHZ,
            800 * MHZ,
            1000 * MHZ,
        ]),
        FAST_PERIPH,
        400 * MHZ,
        false,
    )
    .latency(50),
    clk(
        "vpu_codec",
        Rates::Range {
            min: 100 * MHZ,
            max: 800 * MHZ,
            step: 25 * MHZ,
        },
        &[5, 7],
        400 * MHZ,
        false,
    ),
    clk(
        "display_pixel",
        Rates::Range {
            min: 25_175_000,
            max: 594 * MHZ,
            step: 125,
        },
        &[7, 5],
        148_500_000,
        false,
    )
    .ext(&[EXT_PHASE]),
    // 16-32: peripherals.
    clk(
        "uart0_baud",
        Rates::List(UART_RATES),
        &[0, 5],
        24 * MHZ,
        false,
    )
    .quiet(),
    clk(
        "uart1_baud",
        Rates::List(UART_RATES),
        &[0, 5],
        24 * MHZ,
        false,
    )
    .quiet(),
    clk("i2c0_bus", Rates::List(I2C_RATES), &[], 400_000, false).quiet(),
    clk("i2c1_bus", Rates::List(I2C_RATES), &[], 100_000, false).quiet(),
    clk(
        "spi0_serial_clock_output",
        Rates::Range {
            min: MHZ,
            max: 100 * MHZ,
            step: MHZ,
        },
        &[],
        50 * MHZ,
        false,
    )
    .ext(&[EXT_PHASE]),
    clk(
        "sdmmc0_card_clock",
        Rates::List(SDMMC_RATES),
        FAST_PERIPH,
        400_000,
        false,
    )
    .ext(&[EXT_PHASE]),
    clk(
        "sdmmc1_card_clock",
        Rates::List(SDMMC_RATES),
        FAST_PERIPH,
        400_000,
        false,
    )
    .ext(&[EXT_PHASE]),
    clk(
        "usb3_phy_reference",
        Rates::List(&[24 * MHZ, 100 * MHZ]),
        &[],
        24 * MHZ,
        false,
    )
    .latency(500),
    // A fixed reference the agent may only gate.
    clk(
        "pcie_ref_100m",
        Rates::List(&[100 * MHZ]),
        &[],
        100 * MHZ,
        false,
    )
    .perms(perm::STATE)
    .quiet()
    .latency(300),
    clk(
        "eth_rgmii_tx",
        Rates::List(&[2_500_000, 25 * MHZ, 125 * MHZ]),
        &[],
        125 * MHZ,
        false,
    )
    .ext(&[EXT_PHASE]),
    clk(
        "eth_ptp_ref",
        Rates::Range {
            min: 50 * MHZ,
            max: 200 * MHZ,
            step: MHZ,
        },
        &[],
        125 * MHZ,
        false,
    ),
    clk(
        "audio_i2s_mclk",
        Rates::List(I2S_RATES),
        &[8, 2],
        12_288_000,
        false,
    )
    .ext(&[EXT_DUTY_CYCLE, EXT_PHASE]),
    clk(
        "pwm_generator_clock",
        Rates::Range {
            min: 1000,
            max: 100 * MHZ,
            step: 1000,
        },
        &[],
        MHZ,
        false,
    )
    .ext(&[EXT_DUTY_CYCLE]),
    // The system tick may be retuned and gated, but its source is fixed.
    clk(
        "timer_systick",
        Rates::List(&[32_768, MHZ, 24 * MHZ]),
        &[1, 0],
        24 * MHZ,
        true,
    )
    .perms(perm::STATE | perm::RATE)
    .parent(0),
    fixed("watchdog", &[32_768]),
    clk(
        "crypto_engine_core",
        Rates::List(&[200 * MHZ, 400 * MHZ, 600 * MHZ]),
        &[],
        400 * MHZ,
        false,
    ),
    clk(
        "camera_sensor_mclk",
        Rates::List(&[6 * MHZ, 12 * MHZ, 19_200_000, 24 * MHZ, 27 * MHZ]),
        &[0, 5, 7],
        24 * MHZ,
        false,
    ),
    // 33: the clock-output pad can observe any other clock.
    clk(
        "clkout_observation_mux",
        Rates::Range {
            min: 1000,
            max: 200 * MHZ,
            step: 1000,
        },
        OBSERVABLE,
        24 * MHZ,
        false,
    )
    .quiet(),
];

const fn descriptions() -> [ClockDesc; CLOCK_COUNT] {
    let mut out = [TREE[0].desc; CLOCK_COUNT];
    let mut i = 0;
    while i < CLOCK_COUNT {
        out[i] = TREE[i].desc;
        i += 1;
    }
    out
}

const fn inits() -> [ClockInit; CLOCK_COUNT] {
    let mut out = [TREE[0].init; CLOCK_COUNT];
    let mut i = 0;
    while i < CLOCK_COUNT {
        out[i] = TREE[i].init;
        i += 1;
    }
    out
}

/// The built-in clock descriptions, by clock id.
pub static CLOCKS: [ClockDesc; CLOCK_COUNT] = descriptions();

/// The built-in reset defaults, by clock id.
pub static CLOCK_INIT: [ClockInit; CLOCK_COUNT] = inits();

/// The built-in clock tree.
pub const DEFAULT: ClockTable = ClockTable {
    clocks: &CLOCKS,
    init: &CLOCK_INIT,
};

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

/// Simulated clock state.
#[derive(Debug)]
pub struct SimClocks {
    table: ClockTable,
    state: [State; MAX_CLOCKS],
}

impl Default for SimClocks {
    fn default() -> Self {
        Self::build(DEFAULT)
    }
}

impl SimClocks {
    /// Simulated clocks described by `table`; `Err` if it holds more than
    /// [`MAX_CLOCKS`] clocks or its two slices differ in length.
    pub fn new(table: ClockTable) -> Result<Self, TableError> {
        check(table.clocks.len(), table.init.len(), MAX_CLOCKS, "clock")?;
        Ok(Self::build(table))
    }

    /// The table, cut to what the state can hold.
    fn build(mut table: ClockTable) -> Self {
        let n = table.clocks.len().min(table.init.len()).min(MAX_CLOCKS);
        table.clocks = table.clocks.get(..n).unwrap_or(&[]);
        table.init = table.init.get(..n).unwrap_or(&[]);
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
        }; MAX_CLOCKS];
        for (s, t) in state.iter_mut().zip(table.init.iter()) {
            s.rate = t.rate;
            s.parent = t.parent;
        }
        SimClocks { table, state }
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

impl SimClocks {
    fn get(&self, clock: u32) -> Result<&State, Status> {
        let n = self.table.clocks.len();
        self.state[..n].get(clock as usize).ok_or(Status::NotFound)
    }

    fn get_mut(&mut self, clock: u32) -> Result<&mut State, Status> {
        let n = self.table.clocks.len();
        self.state[..n]
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

impl ClockPlatform for SimPlatform {
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
        self.clock.get(clock).map(|s| s.ext[k])
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
        s.ext[k] = value;
        s.ext_by[k] = agent;
        Ok(())
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
