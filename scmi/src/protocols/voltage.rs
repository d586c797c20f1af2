//! Voltage domain protocol 2.1 (id 0x17; SCMI v3.2 §4.9).
//!
//! Serves the agent side that mirrors drivers/firmware/arm_scmi/voltage.c
//! of Linux 6.12 (and scmi-regulator.c above it):
//!
//! * VOLTAGE_DOMAIN_ATTRIBUTES is 20 bytes: attributes ([31] async level
//!   set, [30] extended name), name[16].
//! * VOLTAGE_DESCRIBE_LEVELS: the first reply fixes the level count as
//!   returned + remaining (must be non-zero); a triplet is exactly returned
//!   3, remaining 0. Levels are signed µV; scmi-regulator skips a domain
//!   with any negative level, which is the platform's choice to make.
//! * scmi-regulator always asks for "auto" mode, so a domain advertising
//!   [31] gets asynchronous VOLTAGE_LEVEL_SET and needs
//!   VOLTAGE_LEVEL_SET_COMPLETE on the P2A channel: [31] is advertised only
//!   to agents with one.
//! * VOLTAGE_LEVEL_GET must return exactly an advertised level.
//! * VOLTAGE_CONFIG_SET gets `config & 0xF`: 0x7 architectural ON, 0x0 OFF;
//!   the regulator counts any config with `& 0x7 != 0` as enabled.
//!
//! The platform describes its domains with a static [`VoltageDesc`] table
//! and keeps their state behind [`VoltagePlatform`].

use crate::context::Cx;
use crate::header::Status;
use crate::protocols::{
    NEGOTIATE_PROTOCOL_VERSION, PROTOCOL_ATTRIBUTES, PROTOCOL_MESSAGE_ATTRIBUTES, PROTOCOL_VERSION,
    Protocol,
};
use crate::wire::{Args, Reply};

/// Protocol id.
pub const ID: u8 = 0x17;
/// Version implemented: 2.1.
pub const VERSION: u32 = 0x0002_0001;

/// VOLTAGE_DOMAIN_ATTRIBUTES.
pub const VOLTAGE_DOMAIN_ATTRIBUTES: u8 = 0x3;
/// VOLTAGE_DESCRIBE_LEVELS.
pub const VOLTAGE_DESCRIBE_LEVELS: u8 = 0x4;
/// VOLTAGE_CONFIG_SET.
pub const VOLTAGE_CONFIG_SET: u8 = 0x5;
/// VOLTAGE_CONFIG_GET.
pub const VOLTAGE_CONFIG_GET: u8 = 0x6;
/// VOLTAGE_LEVEL_SET (and its delayed response
/// VOLTAGE_LEVEL_SET_COMPLETE).
pub const VOLTAGE_LEVEL_SET: u8 = 0x7;
/// VOLTAGE_LEVEL_GET.
pub const VOLTAGE_LEVEL_GET: u8 = 0x8;
/// VOLTAGE_DOMAIN_NAME_GET.
pub const VOLTAGE_DOMAIN_NAME_GET: u8 = 0x9;

/// Architectural mode OFF (config [3] = 0, [2:0] = 0b000).
pub const MODE_OFF: u32 = 0x0;
/// Architectural mode ON (config [3] = 0, [2:0] = 0b111).
pub const MODE_ON: u32 = 0x7;
/// config [3]: implementation-defined mode (ids 0x8..=0xF).
pub const MODE_IMPL: u32 = 0x8;

/// The levels a domain supports, in µV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Levels {
    /// Discrete levels, ascending, without duplicates.
    List(&'static [i32]),
    /// Every `min + k * step` up to `max`; `step` > 0.
    Range {
        /// Lowest level.
        min: i32,
        /// Highest level.
        max: i32,
        /// Step between levels.
        step: i32,
    },
}

impl Levels {
    /// Whether `level` is exactly one of the supported levels.
    pub fn contains(&self, level: i32) -> bool {
        match *self {
            Levels::List(l) => l.contains(&level),
            Levels::Range { min, max, step } => {
                let (lv, lo, hi, st) = (
                    i64::from(level),
                    i64::from(min),
                    i64::from(max),
                    i64::from(step),
                );
                st > 0 && lo <= lv && lv <= hi && (lv - lo) % st == 0
            }
        }
    }
}

/// One voltage domain, as the platform describes it.
#[derive(Debug, Clone, Copy)]
pub struct VoltageDesc {
    /// Name: non-empty, unique, up to 63 characters; names longer than 15
    /// are served through VOLTAGE_DOMAIN_NAME_GET.
    pub name: &'static str,
    /// Supported levels.
    pub levels: Levels,
    /// Whether VOLTAGE_LEVEL_SET may complete asynchronously.
    pub async_capable: bool,
    /// Implementation-defined modes supported: bit `n` = mode `0x8 + n`.
    pub impl_modes: u8,
}

/// The platform side of the voltage protocol. The defaults mean "no
/// voltage domains".
pub trait VoltagePlatform {
    /// The voltage domains, indexed by domain id.
    fn voltages(&self) -> &'static [VoltageDesc] {
        &[]
    }

    /// Current mode (config [3:0]).
    fn voltage_config(&self, domain: u32) -> Result<u32, Status> {
        let _ = domain;
        Err(Status::NotSupported)
    }

    /// Sets the mode; `config` is ON, OFF or a supported
    /// implementation-defined mode.
    fn voltage_set_config(&mut self, agent: u32, domain: u32, config: u32) -> Result<(), Status> {
        let _ = (agent, domain, config);
        Err(Status::NotSupported)
    }

    /// Current level in µV (the level it will have once on, if off).
    fn voltage_level(&self, domain: u32) -> Result<i32, Status> {
        let _ = domain;
        Err(Status::NotSupported)
    }

    /// Sets the level; `level` is one of the supported levels.
    fn voltage_set_level(&mut self, agent: u32, domain: u32, level: i32) -> Result<(), Status> {
        let _ = (agent, domain, level);
        Err(Status::NotSupported)
    }
}

/// The table entry.
pub const fn protocol<P: VoltagePlatform, const A: usize>() -> Protocol<P, A> {
    Protocol {
        id: ID,
        version: VERSION,
        present: |p| !p.voltages().is_empty(),
        handle,
        message_attributes,
        tick: None,
    }
}

/// Every message id Voltage 2.1 defines (§4.9.2).
const MESSAGES: &[u8] = &[
    PROTOCOL_VERSION,
    PROTOCOL_ATTRIBUTES,
    PROTOCOL_MESSAGE_ATTRIBUTES,
    VOLTAGE_DOMAIN_ATTRIBUTES,
    VOLTAGE_DESCRIBE_LEVELS,
    VOLTAGE_CONFIG_SET,
    VOLTAGE_CONFIG_GET,
    VOLTAGE_LEVEL_SET,
    VOLTAGE_LEVEL_GET,
    VOLTAGE_DOMAIN_NAME_GET,
    NEGOTIATE_PROTOCOL_VERSION,
];

/// Short names are 15 characters plus the NUL.
const SHORT_NAME: usize = 15;

fn message_attributes<P: VoltagePlatform, const A: usize>(
    _cx: &Cx<'_, P, A>,
    id: u8,
) -> Result<u32, Status> {
    crate::protocols::implemented(MESSAGES, id)
}

/// The domain `id` if the caller may see it (NOT_FOUND otherwise).
fn domain<P: VoltagePlatform, const A: usize>(
    cx: &Cx<'_, P, A>,
    id: u32,
) -> Result<&'static VoltageDesc, Status> {
    cx.resource(cx.platform.voltages(), id)
}

fn handle<P: VoltagePlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    id: u8,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    match id {
        // [31:16] reserved, [15:0] number of domains.
        PROTOCOL_ATTRIBUTES => out.u32(cx.platform.voltages().len().min(0xffff) as u32),
        VOLTAGE_DOMAIN_ATTRIBUTES => {
            // §4.9.2.5: attributes, name[16].
            let dom = args.u32()?;
            let d = domain(cx, dom)?;
            let mut attrs = 0u32;
            if d.async_capable && cx.p2a {
                attrs |= 1 << 31;
            }
            if d.name.len() > SHORT_NAME {
                attrs |= 1 << 30;
            }
            out.u32(attrs)?;
            out.name::<16>(d.name)
        }
        VOLTAGE_DESCRIBE_LEVELS => describe_levels(cx, args, out),
        VOLTAGE_CONFIG_SET => {
            // §4.9.2.7: [31:4] reserved; [3] = 0 architectural (0 OFF,
            // 7 ON, others reserved), [3] = 1 implementation defined.
            let dom = args.u32()?;
            let config = args.u32()?;
            let d = domain(cx, dom)?;
            let valid = match config {
                MODE_OFF | MODE_ON => true,
                0x8..=0xf => d.impl_modes & (1 << (config - MODE_IMPL)) != 0,
                _ => false,
            };
            if !valid {
                return Err(Status::InvalidParameters);
            }
            cx.platform.voltage_set_config(cx.agent, dom, config)
        }
        VOLTAGE_CONFIG_GET => {
            let dom = args.u32()?;
            domain(cx, dom)?;
            out.u32(cx.platform.voltage_config(dom)? & 0xf)
        }
        VOLTAGE_LEVEL_SET => level_set(cx, args),
        VOLTAGE_LEVEL_GET => {
            let dom = args.u32()?;
            domain(cx, dom)?;
            out.i32(cx.platform.voltage_level(dom)?)
        }
        VOLTAGE_DOMAIN_NAME_GET => {
            // Common extended-name layout: flags, name[64].
            let dom = args.u32()?;
            let d = domain(cx, dom)?;
            if d.name.len() <= SHORT_NAME {
                return Err(Status::NotSupported);
            }
            out.u32(0)?;
            out.name::<64>(d.name)
        }
        _ => Err(Status::NotFound),
    }
}

/// VOLTAGE_DESCRIBE_LEVELS (§4.9.2.6): [31:16] remaining, [12] triplet,
/// [11:0] returned, then the levels.
fn describe_levels<P: VoltagePlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    let dom = args.u32()?;
    let index = args.u32()? as usize;
    let d = domain(cx, dom)?;
    match d.levels {
        Levels::Range { min, max, step } => {
            if index != 0 {
                return Err(Status::OutOfRange);
            }
            out.u32(1 << 12 | 3)?;
            out.i32(min)?;
            out.i32(max)?;
            out.i32(step)
        }
        Levels::List(levels) => {
            // A start at or past the last level is OUT_OF_RANGE here.
            if index >= levels.len() {
                return Err(Status::OutOfRange);
            }
            out.list_page(levels, index, 4, |out, _, &l| out.i32(l))
        }
    }
}

/// VOLTAGE_LEVEL_SET (§4.9.2.9), with VOLTAGE_LEVEL_SET_COMPLETE.
fn level_set<P: VoltagePlatform, const A: usize>(
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
) -> Result<(), Status> {
    let dom = args.u32()?;
    let flags = args.u32()?;
    let level = args.i32()?;
    let d = domain(cx, dom)?;
    // [31:1] reserved.
    if flags & !1 != 0 {
        return Err(Status::InvalidParameters);
    }
    let asynchronous = flags & 1 != 0;
    if asynchronous {
        if !d.async_capable || !cx.p2a {
            return Err(Status::NotSupported);
        }
        if !cx.can_delay() {
            return Err(Status::Busy);
        }
    }
    if !d.levels.contains(level) {
        return Err(Status::InvalidParameters);
    }
    cx.platform.voltage_set_level(cx.agent, dom, level)?;
    if asynchronous {
        // VOLTAGE_LEVEL_SET_COMPLETE: status, domain_id, level set.
        // The level's two's-complement bits (an SCMI int32).
        let body: [u8; 12] = crate::wire::le_words(&[0, dom, level as u32]);
        cx.delayed_response(&body)?;
    }
    Ok(())
}
