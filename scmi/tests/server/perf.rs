//! Tests of the perf protocol against the simulated platform.

extern crate std;
use std::vec::Vec;

use super::{call, event, words};
use platform_host_vhost_user as builtin;
use scmi_server::protocols::perf::PerfDomain;

static DOMAINS: &[PerfDomain] = builtin::TABLES.perf.domains;
static BOOT: &[u32] = builtin::TABLES.perf.boot;
use scmi_server::config::{AgentConfig, Config, DeviceConfig};
use scmi_server::header::{MsgType, Status};
use scmi_server::protocols::base;
use scmi_server::protocols::perf::*;
use scmi_server::server::Server;

const P: u8 = ID;

/// Domain ids in the simulation.
const LITTLE: u32 = 0;
const BIG: u32 = 1;
const GPU: u32 = 2;
const NPU: u32 = 3;
const BUS: u32 = 4;
const DISPLAY: u32 = 5;
const DSP: u32 = 6;
const VIDEO: u32 = 7;

/// Agent 1 sees everything but the "dsp" device; agent 2 sees the "dsp"
/// device but not the "gpu" device; agent 3 has no perf protocol.
static CFG: Config = Config {
    vendor: "rust-scmi",
    sub_vendor: "sim",
    implementation_version: 1,
    agents: &[
        AgentConfig {
            name: "linux",
            trusted: true,
            protocols: 0xff,
            devices: 0b01,
        },
        AgentConfig {
            name: "rtos",
            trusted: false,
            protocols: 0xff,
            devices: 0b10,
        },
        AgentConfig {
            name: "no-perf",
            trusted: false,
            protocols: 0xff & !(1 << 3),
            devices: 0,
        },
    ],
    devices: &[
        DeviceConfig {
            name: "gpu",
            resources: &[(0x13, GPU)],
        },
        DeviceConfig {
            name: "dsp",
            resources: &[(0x13, DSP)],
        },
    ],
};

type S = Server<builtin::Platform, 3, 16>;

fn server() -> S {
    Server::new(&CFG, builtin::PLATFORM)
}

fn st(s: Status) -> i32 {
    s.code()
}

fn level_get(s: &mut S, agent: u32, d: u32) -> u32 {
    let (status, v) = call(s, agent, P, LEVEL_GET, &[d], 4);
    assert_eq!(status, 0);
    words(&v)[0]
}

fn limits_get(s: &mut S, agent: u32, d: u32) -> (u32, u32) {
    let (status, v) = call(s, agent, P, LIMITS_GET, &[d], 128);
    assert_eq!(status, 0);
    assert_eq!(v.len(), 8);
    let w = words(&v);
    (w[0], w[1])
}

fn level_set(s: &mut S, agent: u32, d: u32, level: u32) -> i32 {
    call(s, agent, P, LEVEL_SET, &[d, level], 0).0
}

fn limits_set(s: &mut S, agent: u32, d: u32, max: u32, min: u32) -> i32 {
    call(s, agent, P, LIMITS_SET, &[d, max, min], 0).0
}

fn dom(d: u32) -> &'static PerfDomain {
    &DOMAINS[d as usize]
}

/// One DESCRIBE_LEVELS entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    value: u32,
    power: u32,
    attrs: u32,
    khz: u32,
    index: u32,
}

/// Reads every level of `d` the way Linux's iterator does, with `rx`
/// bytes of payload per reply; returns the entries and the per-reply
/// counts.
fn describe_all(s: &mut S, agent: u32, d: u32, rx: usize) -> (Vec<Entry>, Vec<usize>) {
    let mut all = Vec::new();
    let mut parts = Vec::new();
    let mut total = None;
    loop {
        let (status, v) = call(s, agent, P, DESCRIBE_LEVELS, &[d, all.len() as u32], rx);
        assert_eq!(status, 0);
        let head = words(&v[..4])[0];
        let (returned, remaining) = ((head & 0xfff) as usize, (head >> 16) as usize);
        assert_eq!(head & 0xf000, 0, "reserved bits");
        assert_eq!(v.len(), 4 + 20 * returned, "exactly the announced entries");
        assert!(v.len() <= rx);
        // Exact remaining counts: returned + remaining is the total.
        let t = *total.get_or_insert(all.len() + returned + remaining);
        assert_eq!(all.len() + returned + remaining, t);
        for e in words(&v[4..]).chunks(5) {
            all.push(Entry {
                value: e[0],
                power: e[1],
                attrs: e[2],
                khz: e[3],
                index: e[4],
            });
        }
        parts.push(returned);
        if returned == 0 || remaining == 0 {
            break;
        }
    }
    (all, parts)
}

#[test]
fn version_and_protocol_attributes() {
    let mut s = server();
    let (status, v) = call(&mut s, 1, P, 0x0, &[], 4);
    assert_eq!((status, words(&v)), (0, std::vec![0x0004_0000]));
    // SCMI v3.2 §4.5.3.3: [17:16] power unit (mW), [15:0] domains, no
    // statistics.
    let (status, v) = call(&mut s, 1, P, 0x1, &[], 16);
    assert_eq!(status, 0);
    assert_eq!(
        words(&v),
        [POWER_MILLIWATT << 16 | DOMAINS.len() as u32, 0, 0, 0]
    );
    // Counts are platform totals, also for an agent that sees fewer.
    let (_, v2) = call(&mut s, 2, P, 0x1, &[], 16);
    assert_eq!(v2, v);
    assert_eq!(call(&mut s, 3, P, 0x1, &[], 16).0, st(Status::NotSupported));
    let (status, v) = call(&mut s, 1, 0x10, base::DISCOVER_LIST_PROTOCOLS, &[0], 128);
    assert_eq!(status, 0);
    let n = words(&v)[0] as usize;
    assert!(v[4..4 + n].contains(&P));
}

#[test]
fn message_attributes_never_offer_fast_channels() {
    let mut s = server();
    for p2a in [false, true] {
        s.set_p2a(1, p2a);
        for m in [0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0xB, 0xC, 0x10] {
            let (status, v) = call(&mut s, 1, P, 0x2, &[m], 4);
            assert_eq!((status, words(&v)), (0, std::vec![0]), "message {m:#x}");
        }
        for m in [NOTIFY_LIMITS, NOTIFY_LEVEL] {
            let (status, v) = call(&mut s, 1, P, 0x2, &[u32::from(m)], 4);
            if p2a {
                assert_eq!((status, words(&v)), (0, std::vec![0]));
            } else {
                assert_eq!(status, st(Status::NotSupported));
            }
        }
        for m in [0xD, 0xF, 0x11, 0x40, u32::MAX] {
            assert_eq!(call(&mut s, 1, P, 0x2, &[m], 4).0, st(Status::NotFound));
        }
    }
    for m in [0xD, 0x3f, 0xff] {
        assert_eq!(
            call(&mut s, 1, P, m, &[0, 0, 0], 16).0,
            st(Status::NotFound)
        );
    }
}

#[test]
fn simulated_domains_fit_linux() {
    // Linux 6.12 perf.c: at most 32 levels, unique values (duplicates are
    // dropped), unique indicative frequencies in indexing mode; sustained
    // level among the levels; unique non-empty names, some long.
    assert!(DOMAINS.len() >= 8);
    let mut names: Vec<&str> = DOMAINS.iter().map(|d| d.name).collect();
    assert!(names.iter().all(|n| !n.is_empty() && n.len() < 64));
    assert!(names.iter().filter(|n| n.len() > 15).count() >= 2);
    names.sort();
    names.dedup();
    assert_eq!(names.len(), DOMAINS.len());
    for (i, d) in DOMAINS.iter().enumerate() {
        assert!(!d.levels.is_empty() && d.levels.len() <= MAX_LEVELS);
        assert!(d.levels.windows(2).all(|w| w[0].value < w[1].value));
        assert!(
            d.levels
                .windows(2)
                .all(|w| w[0].indicative_khz < w[1].indicative_khz)
        );
        assert!(d.levels[0].value > 0);
        assert!(d.levels.iter().any(|l| l.value == d.sustained_level));
        assert_eq!(BOOT[i], d.sustained_level);
        // Linux's multiplier must be a whole number in value mode.
        if !d.level_indexing {
            assert_eq!(
                u64::from(d.sustained_khz) * 1000 % u64::from(d.sustained_level),
                0
            );
        }
    }
    assert!(DOMAINS.iter().any(|d| d.levels.len() == MAX_LEVELS));
    assert!(DOMAINS.iter().any(|d| d.level_indexing));
}

#[test]
fn domain_attributes() {
    let mut s = server();
    for p2a in [false, true] {
        s.set_p2a(1, p2a);
        for (i, d) in DOMAINS.iter().enumerate() {
            let i = i as u32;
            let (status, v) = call(&mut s, 1, P, DOMAIN_ATTRIBUTES, &[i], 32);
            if i == DSP {
                assert_eq!(status, st(Status::NotFound), "agent 1 cannot see the dsp");
                continue;
            }
            assert_eq!(status, 0);
            assert_eq!(v.len(), 32, "attributes, rate limit, sustained x2, name");
            let w = words(&v[..16]);
            let f = w[0];
            assert_eq!(f & 1 << 31 != 0, d.set_limits);
            assert_eq!(f & 1 << 30 != 0, d.set_level, "agent 1 owns the level");
            assert_eq!(f & 1 << 29 != 0, p2a && d.notify_limits);
            assert_eq!(f & 1 << 28 != 0, p2a && d.notify_level);
            assert_eq!(f & 1 << 27, 0, "never fast channels over virtio");
            assert_eq!(f & 1 << 26 != 0, d.name.len() > 15);
            assert_eq!(f & 1 << 25 != 0, d.level_indexing);
            assert_eq!(f & 0x01ff_ffff, 0, "reserved");
            assert_eq!(w[1], d.rate_limit_us);
            assert_eq!((w[2], w[3]), (d.sustained_khz, d.sustained_level));
            let short = &d.name[..d.name.len().min(15)];
            assert_eq!(&v[16..16 + short.len()], short.as_bytes());
            assert!(v[16 + short.len()..].iter().all(|&b| b == 0));
            let (status, n) = call(&mut s, 1, P, DOMAIN_NAME_GET, &[i], 68);
            if d.name.len() > 15 {
                assert_eq!(status, 0);
                assert_eq!(n.len(), 68);
                assert_eq!(words(&n[..4]), [0]);
                assert_eq!(&n[4..4 + d.name.len()], d.name.as_bytes());
                assert_eq!(n[4 + d.name.len()], 0);
            } else {
                assert_eq!(status, st(Status::NotSupported));
            }
        }
    }
    let n = DOMAINS.len() as u32;
    for m in [DOMAIN_ATTRIBUTES, DOMAIN_NAME_GET, LEVEL_GET, LIMITS_GET] {
        assert_eq!(call(&mut s, 1, P, m, &[n], 68).0, st(Status::NotFound));
        assert_eq!(
            call(&mut s, 1, P, m, &[u32::MAX], 68).0,
            st(Status::NotFound)
        );
        assert_eq!(call(&mut s, 1, P, m, &[], 68).0, st(Status::ProtocolError));
    }
}

#[test]
fn describe_levels_fills_linux_sized_replies() {
    let mut s = server();
    s.set_p2a(2, true);
    for (i, d) in DOMAINS.iter().enumerate() {
        let i = i as u32;
        // Agent 1 cannot see the dsp; agent 2 cannot see the gpu.
        let agent = if i == DSP { 2 } else { 1 };
        let (levels, parts) = describe_all(&mut s, agent, i, 128);
        // (128 - 4) / 20 = 6 entries per 128-byte reply.
        assert!(parts.iter().all(|&p| p <= 6));
        assert!(parts[..parts.len() - 1].iter().all(|&p| p == 6));
        assert_eq!(levels.len(), d.levels.len());
        for (k, (e, l)) in levels.iter().zip(d.levels).enumerate() {
            assert_eq!(e.value, l.value);
            assert_eq!(e.power, l.power_cost);
            assert_eq!(e.attrs, u32::from(l.latency_us));
            assert_eq!(e.khz, l.indicative_khz);
            assert_eq!(e.index, k as u32 + INDEX_BASE);
        }
    }
    // The 32-level domain takes six replies: 6 6 6 6 6 2.
    let (levels, parts) = describe_all(&mut s, 1, BIG, 128);
    assert_eq!(levels.len(), 32);
    assert_eq!(parts, [6, 6, 6, 6, 6, 2]);
    // Smaller buffers get fewer entries per reply, never a partial one.
    for rx in [24, 43, 44, 64, 100, 136] {
        let (levels, parts) = describe_all(&mut s, 1, BIG, rx);
        assert_eq!(levels.len(), 32);
        assert!(parts.iter().all(|&p| p <= (rx - 4) / 20));
    }
    // Arbitrary starting points, as Linux may ask.
    let (status, v) = call(&mut s, 1, P, DESCRIBE_LEVELS, &[BIG, 31], 128);
    assert_eq!(status, 0);
    assert_eq!(
        words(&v),
        [
            1,
            3_500_000,
            dom(BIG).levels[31].power_cost,
            300,
            3_500_000,
            32
        ]
    );
    let (status, v) = call(&mut s, 1, P, DESCRIBE_LEVELS, &[BIG, 29], 128);
    assert_eq!(status, 0);
    assert_eq!(words(&v[..4]), [3]);
}

#[test]
fn describe_levels_errors() {
    let mut s = server();
    let n = dom(LITTLE).levels.len() as u32;
    // Reaching the end exactly describes nothing; past it is OUT_OF_RANGE.
    let (status, v) = call(&mut s, 1, P, DESCRIBE_LEVELS, &[LITTLE, n], 128);
    assert_eq!((status, words(&v)), (0, std::vec![0]));
    for skip in [n + 1, u32::MAX] {
        assert_eq!(
            call(&mut s, 1, P, DESCRIBE_LEVELS, &[LITTLE, skip], 128).0,
            st(Status::OutOfRange)
        );
    }
    // A buffer that cannot hold one entry.
    assert_eq!(
        call(&mut s, 1, P, DESCRIBE_LEVELS, &[LITTLE, 0], 23).0,
        st(Status::GenericError)
    );
    assert_eq!(
        call(
            &mut s,
            1,
            P,
            DESCRIBE_LEVELS,
            &[DOMAINS.len() as u32, 0],
            128
        )
        .0,
        st(Status::NotFound)
    );
    assert_eq!(
        call(&mut s, 1, P, DESCRIBE_LEVELS, &[LITTLE], 128).0,
        st(Status::ProtocolError)
    );
}

#[test]
fn level_set_and_get_in_value_mode() {
    let mut s = server();
    assert_eq!(level_get(&mut s, 1, LITTLE), 1_500_000);
    // What scmi-cpufreq sends: a described level value.
    for l in dom(LITTLE).levels {
        assert_eq!(level_set(&mut s, 1, LITTLE, l.value), 0);
        assert_eq!(level_get(&mut s, 1, LITTLE), l.value);
        assert_eq!(s.platform.perf.level(LITTLE), Some(l.value));
    }
    assert_eq!(s.platform.perf.level_set_by(LITTLE), Some(1));
    // Abstract levels on the gpu.
    assert_eq!(level_set(&mut s, 1, GPU, 600), 0);
    assert_eq!(level_get(&mut s, 1, GPU), 600);
    // Between two levels: not a level. Outside: out of range.
    assert_eq!(
        level_set(&mut s, 1, LITTLE, 600_000),
        st(Status::InvalidParameters)
    );
    for bad in [0, 299_999, 1_700_001, u32::MAX] {
        assert_eq!(level_set(&mut s, 1, LITTLE, bad), st(Status::OutOfRange));
    }
    assert_eq!(level_get(&mut s, 1, LITTLE), 1_700_000, "unchanged");
    // A domain whose level nobody may set.
    assert_eq!(level_set(&mut s, 1, BUS, 400_000), st(Status::Denied));
    assert_eq!(level_get(&mut s, 1, BUS), BOOT[BUS as usize]);
    // Errors.
    assert_eq!(
        level_set(&mut s, 1, DOMAINS.len() as u32, 1),
        st(Status::NotFound)
    );
    assert_eq!(
        call(&mut s, 1, P, LEVEL_SET, &[LITTLE], 0).0,
        st(Status::ProtocolError)
    );
}

#[test]
fn level_indexing_mode_speaks_indexes() {
    let mut s = server();
    let d = dom(NPU);
    assert!(d.level_indexing);
    let pos = d
        .levels
        .iter()
        .position(|l| l.value == d.sustained_level)
        .unwrap() as u32;
    // The boot level, as an index.
    assert_eq!(level_get(&mut s, 1, NPU), pos + INDEX_BASE);
    // Index 1 is the lowest level.
    assert_eq!(level_set(&mut s, 1, NPU, INDEX_BASE), 0);
    assert_eq!(level_get(&mut s, 1, NPU), INDEX_BASE);
    assert_eq!(s.platform.perf.level(NPU), Some(d.levels[0].value));
    let top = d.levels.len() as u32 - 1 + INDEX_BASE;
    assert_eq!(level_set(&mut s, 1, NPU, top), 0);
    assert_eq!(
        s.platform.perf.level(NPU),
        Some(d.levels.last().unwrap().value)
    );
    // Indexes naming no level.
    for bad in [0, top + 1, u32::MAX] {
        assert_eq!(level_set(&mut s, 1, NPU, bad), st(Status::OutOfRange));
    }
    // Limits are indexes too.
    assert_eq!(limits_get(&mut s, 1, NPU), (top, INDEX_BASE));
    assert_eq!(limits_set(&mut s, 1, NPU, 5, 2), 0);
    assert_eq!(limits_get(&mut s, 1, NPU), (5, 2));
    assert_eq!(
        s.platform.perf.limits(NPU),
        Some((d.levels[4].value, d.levels[1].value))
    );
    // The level was above the new maximum: it moved down to it.
    assert_eq!(level_get(&mut s, 1, NPU), 5);
    assert_eq!(
        limits_set(&mut s, 1, NPU, top + 1, 0),
        st(Status::OutOfRange)
    );
    assert_eq!(level_set(&mut s, 1, NPU, 6), st(Status::OutOfRange));
    assert_eq!(level_set(&mut s, 1, NPU, 2), 0);
    // The lowest index can be a limit (indexes start at 1, and 0 keeps).
    assert_eq!(limits_set(&mut s, 1, NPU, 0, INDEX_BASE), 0);
    assert_eq!(limits_get(&mut s, 1, NPU), (5, INDEX_BASE));
}

#[test]
fn limits_set_get_and_clamp_the_level() {
    let mut s = server();
    let d = dom(BIG);
    let (lo, hi) = (d.levels[0].value, d.levels[31].value);
    assert_eq!(limits_get(&mut s, 1, BIG), (hi, lo));
    assert_eq!(level_get(&mut s, 1, BIG), 3_000_000);
    // Lowering the maximum below the current level moves the level.
    assert_eq!(limits_set(&mut s, 1, BIG, 2_000_000, 1_000_000), 0);
    assert_eq!(limits_get(&mut s, 1, BIG), (2_000_000, 1_000_000));
    assert_eq!(level_get(&mut s, 1, BIG), 2_000_000);
    // Outside the limits the level cannot go.
    assert_eq!(level_set(&mut s, 1, BIG, 2_100_000), st(Status::OutOfRange));
    assert_eq!(level_set(&mut s, 1, BIG, 900_000), st(Status::OutOfRange));
    assert_eq!(level_set(&mut s, 1, BIG, 1_000_000), 0);
    // 0 leaves a bound unchanged (§4.5.3.7).
    assert_eq!(limits_set(&mut s, 1, BIG, 0, 1_500_000), 0);
    assert_eq!(limits_get(&mut s, 1, BIG), (2_000_000, 1_500_000));
    assert_eq!(
        level_get(&mut s, 1, BIG),
        1_500_000,
        "raised to the minimum"
    );
    assert_eq!(limits_set(&mut s, 1, BIG, hi, 0), 0);
    assert_eq!(limits_get(&mut s, 1, BIG), (hi, 1_500_000));
    // Limits need not be level values in value mode: a maximum between
    // two levels caps at the level below it.
    assert_eq!(limits_set(&mut s, 1, BIG, 2_450_000, 0), 0);
    assert_eq!(level_set(&mut s, 1, BIG, 2_400_000), 0);
    assert_eq!(level_set(&mut s, 1, BIG, 2_500_000), st(Status::OutOfRange));
    // Errors (§4.5.3.7).
    assert_eq!(limits_set(&mut s, 1, BIG, 0, 0), st(Status::OutOfRange));
    assert_eq!(
        limits_set(&mut s, 1, BIG, hi + 1, 0),
        st(Status::OutOfRange)
    );
    assert_eq!(
        limits_set(&mut s, 1, BIG, 0, lo - 1),
        st(Status::OutOfRange)
    );
    assert_eq!(
        limits_set(&mut s, 1, BIG, 1_000_000, 2_000_000),
        st(Status::InvalidParameters)
    );
    // Only a new minimum above the agent's maximum.
    assert_eq!(
        limits_set(&mut s, 1, BIG, 0, 2_500_000),
        st(Status::InvalidParameters)
    );
    // A range holding no level at all.
    assert_eq!(
        limits_set(&mut s, 1, BIG, 2_450_000, 2_420_000),
        st(Status::OutOfRange)
    );
    assert_eq!(
        limits_get(&mut s, 1, BIG),
        (2_450_000, 1_500_000),
        "unchanged"
    );
    // The display's limits are fixed.
    assert_eq!(
        limits_set(&mut s, 1, DISPLAY, 297_000, 0),
        st(Status::Denied)
    );
    assert_eq!(
        call(&mut s, 1, P, LIMITS_SET, &[BIG, 0], 0).0,
        st(Status::ProtocolError)
    );
    assert_eq!(
        limits_set(&mut s, 1, DOMAINS.len() as u32, 1, 1),
        st(Status::NotFound)
    );
}

#[test]
fn notifications_carry_exact_payloads() {
    let mut s = server();
    // Without a P2A channel.
    assert_eq!(
        call(&mut s, 1, P, NOTIFY_LEVEL, &[LITTLE, 1], 0).0,
        st(Status::NotSupported)
    );
    s.set_p2a(1, true);
    for m in [NOTIFY_LIMITS, NOTIFY_LEVEL] {
        assert_eq!(call(&mut s, 1, P, m, &[LITTLE, 1], 0).0, 0);
        assert_eq!(call(&mut s, 1, P, m, &[NPU, 1], 0).0, 0);
        assert_eq!(
            call(&mut s, 1, P, m, &[LITTLE, 2], 0).0,
            st(Status::InvalidParameters)
        );
        assert_eq!(
            call(&mut s, 1, P, m, &[DOMAINS.len() as u32, 1], 0).0,
            st(Status::NotFound)
        );
        assert_eq!(
            call(&mut s, 1, P, m, &[DISPLAY, 1], 0).0,
            st(Status::NotSupported)
        );
        assert_eq!(
            call(&mut s, 1, P, m, &[LITTLE], 0).0,
            st(Status::ProtocolError)
        );
    }
    // A level change: 12 bytes, agent, domain, level.
    assert_eq!(level_set(&mut s, 1, LITTLE, 900_000), 0);
    let (h, w) = event(&mut s, 1).unwrap();
    assert_eq!(h.msg_type, MsgType::Notification);
    assert_eq!((h.protocol, h.msg_id), (P, LEVEL_CHANGED));
    assert_eq!(w, [1, LITTLE, 900_000]);
    assert!(event(&mut s, 1).is_none());
    // Setting the same level again changes nothing.
    assert_eq!(level_set(&mut s, 1, LITTLE, 900_000), 0);
    assert!(event(&mut s, 1).is_none());
    // Limits that move the level: limits first (16 bytes), then level.
    assert_eq!(limits_set(&mut s, 1, LITTLE, 700_000, 0), 0);
    let (h, w) = event(&mut s, 1).unwrap();
    assert_eq!((h.protocol, h.msg_id), (P, LIMITS_CHANGED));
    assert_eq!(w, [1, LITTLE, 700_000, 300_000]);
    let (h, w) = event(&mut s, 1).unwrap();
    assert_eq!(h.msg_id, LEVEL_CHANGED);
    assert_eq!(w, [1, LITTLE, 700_000]);
    // Indexing mode: indexes in both notifications.
    assert_eq!(limits_set(&mut s, 1, NPU, 3, 0), 0);
    assert_eq!(event(&mut s, 1).unwrap().1, [1, NPU, 3, INDEX_BASE]);
    assert_eq!(event(&mut s, 1).unwrap().1, [1, NPU, 3]);
    // Unsubscribe from the level only.
    assert_eq!(call(&mut s, 1, P, NOTIFY_LEVEL, &[LITTLE, 0], 0).0, 0);
    assert_eq!(limits_set(&mut s, 1, LITTLE, 500_000, 0), 0);
    assert_eq!(event(&mut s, 1).unwrap().1, [1, LITTLE, 500_000, 300_000]);
    assert!(event(&mut s, 1).is_none());
    // Domains whose notifications are off never notify.
    assert_eq!(level_set(&mut s, 1, DISPLAY, 297_000), 0);
    assert!(!s.has_event(1));
}

#[test]
fn describe_fastchannel_is_not_supported() {
    let mut s = server();
    s.set_p2a(1, true);
    for m in [LIMITS_SET, LIMITS_GET, LEVEL_SET, LEVEL_GET] {
        assert_eq!(
            call(
                &mut s,
                1,
                P,
                DESCRIBE_FASTCHANNEL,
                &[LITTLE, u32::from(m)],
                44
            )
            .0,
            st(Status::NotSupported)
        );
    }
    for m in [0, 3, 4, 9, 0xB, 0x100] {
        assert_eq!(
            call(&mut s, 1, P, DESCRIBE_FASTCHANNEL, &[LITTLE, m], 44).0,
            st(Status::NotFound)
        );
    }
    assert_eq!(
        call(
            &mut s,
            1,
            P,
            DESCRIBE_FASTCHANNEL,
            &[DOMAINS.len() as u32, 7],
            44
        )
        .0,
        st(Status::NotFound)
    );
    assert_eq!(
        call(&mut s, 1, P, DESCRIBE_FASTCHANNEL, &[LITTLE], 44).0,
        st(Status::ProtocolError)
    );
}

#[test]
fn visibility_and_the_single_level_owner() {
    let mut s = server();
    s.set_p2a(1, true);
    s.set_p2a(2, true);
    // Agent 2 cannot see the gpu: every command on it is NOT_FOUND.
    for (m, args) in [
        (DOMAIN_ATTRIBUTES, &[GPU][..]),
        (DESCRIBE_LEVELS, &[GPU, 0]),
        (LIMITS_SET, &[GPU, 600, 0]),
        (LIMITS_GET, &[GPU]),
        (LEVEL_SET, &[GPU, 600]),
        (LEVEL_GET, &[GPU]),
        (NOTIFY_LIMITS, &[GPU, 1]),
        (NOTIFY_LEVEL, &[GPU, 1]),
        (DESCRIBE_FASTCHANNEL, &[GPU, 7]),
        (DOMAIN_NAME_GET, &[GPU]),
    ] {
        assert_eq!(
            call(&mut s, 2, P, m, args, 128).0,
            st(Status::NotFound),
            "message {m:#x}"
        );
    }
    assert_eq!(level_get(&mut s, 1, GPU), BOOT[GPU as usize]);
    assert_eq!(limits_get(&mut s, 1, GPU), (600, 100));
    // Agent 1 and 2 both see the little cluster; only agent 1 (the lowest
    // id) owns its level.
    let (_, v) = call(&mut s, 2, P, DOMAIN_ATTRIBUTES, &[LITTLE], 32);
    assert_eq!(words(&v[..4])[0] & 1 << 30, 0);
    assert_eq!(level_set(&mut s, 2, LITTLE, 500_000), st(Status::Denied));
    // The dsp is agent 2's alone: it owns its level.
    let (_, v) = call(&mut s, 2, P, DOMAIN_ATTRIBUTES, &[DSP], 32);
    assert_ne!(words(&v[..4])[0] & 1 << 30, 0);
    assert_eq!(level_set(&mut s, 2, DSP, 500_000), 0);
    assert_eq!(level_get(&mut s, 2, DSP), 500_000);
    assert_eq!(
        call(&mut s, 1, P, LEVEL_GET, &[DSP], 4).0,
        st(Status::NotFound)
    );
    // Changes on the gpu never reach agent 2, even subscribed elsewhere.
    assert_eq!(call(&mut s, 2, P, NOTIFY_LEVEL, &[LITTLE, 1], 0).0, 0);
    assert_eq!(call(&mut s, 1, P, NOTIFY_LEVEL, &[GPU, 1], 0).0, 0);
    assert_eq!(level_set(&mut s, 1, GPU, 200), 0);
    assert!(event(&mut s, 2).is_none());
    assert_eq!(event(&mut s, 1).unwrap().1, [1, GPU, 200]);
    // Granting agent 2 the gpu makes it visible, but agent 1 still owns
    // the level; revoking agent 1's access hands the level to agent 2.
    assert_eq!(
        call(&mut s, 1, 0x10, base::SET_DEVICE_PERMISSIONS, &[2, 0, 1], 0).0,
        0
    );
    assert_eq!(level_get(&mut s, 2, GPU), 200);
    assert_eq!(level_set(&mut s, 2, GPU, 300), st(Status::Denied));
    assert_eq!(
        call(&mut s, 1, 0x10, base::SET_DEVICE_PERMISSIONS, &[1, 0, 0], 0).0,
        0
    );
    assert_eq!(level_set(&mut s, 2, GPU, 300), 0);
    assert_eq!(level_get(&mut s, 2, GPU), 300);
    // Agent 1's old subscription no longer delivers.
    assert!(event(&mut s, 1).is_none());
}

#[test]
fn limits_of_several_agents_intersect_and_reset_reverts() {
    let mut s = server();
    s.set_p2a(1, true);
    assert_eq!(call(&mut s, 1, P, NOTIFY_LIMITS, &[LITTLE, 1], 0).0, 0);
    assert_eq!(limits_set(&mut s, 1, LITTLE, 1_500_000, 500_000), 0);
    assert_eq!(event(&mut s, 1).unwrap().1, [1, LITTLE, 1_500_000, 500_000]);
    // Agent 2's limits narrow the range; the notification names agent 2.
    assert_eq!(limits_set(&mut s, 2, LITTLE, 1_100_000, 300_000), 0);
    assert_eq!(limits_get(&mut s, 2, LITTLE), (1_100_000, 500_000));
    assert_eq!(event(&mut s, 1).unwrap().1, [2, LITTLE, 1_100_000, 500_000]);
    assert_eq!(level_get(&mut s, 1, LITTLE), 1_100_000, "clamped");
    // Limits that would leave no level with agent 1's are refused.
    assert_eq!(
        limits_set(&mut s, 2, LITTLE, 300_000, 0),
        st(Status::OutOfRange)
    );
    assert_eq!(limits_get(&mut s, 1, LITTLE), (1_100_000, 500_000));
    // Agent 2 resets itself: only agent 1's limits remain. The level it
    // did not set stays where the limits moved it.
    assert_eq!(
        call(&mut s, 2, 0x10, base::RESET_AGENT_CONFIGURATION, &[2, 0], 0).0,
        0
    );
    assert_eq!(limits_get(&mut s, 1, LITTLE), (1_500_000, 500_000));
    assert_eq!(level_get(&mut s, 1, LITTLE), 1_100_000);
    // Agent 1 sets the level, then resets: boot level and full range.
    assert_eq!(level_set(&mut s, 1, LITTLE, 700_000), 0);
    assert_eq!(
        call(&mut s, 1, 0x10, base::RESET_AGENT_CONFIGURATION, &[1, 0], 0).0,
        0
    );
    let d = dom(LITTLE);
    assert_eq!(
        limits_get(&mut s, 1, LITTLE),
        (d.levels.last().unwrap().value, d.levels[0].value)
    );
    assert_eq!(level_get(&mut s, 1, LITTLE), BOOT[LITTLE as usize]);
    assert_eq!(s.platform.perf.level_set_by(LITTLE), Some(0));
    // Its subscriptions went too.
    assert_eq!(limits_set(&mut s, 1, LITTLE, 900_000, 0), 0);
    assert!(event(&mut s, 1).is_none());
}

#[test]
fn agent_reset_keeps_the_level_inside_remaining_limits() {
    let mut s = server();
    // Agent 2 caps the video codec; agent 1 (the owner) set a level
    // inside. When agent 1 resets, the boot level (7) lies above agent
    // 2's cap, so it lands on the cap.
    assert_eq!(limits_set(&mut s, 2, VIDEO, 5, 0), 0);
    assert_eq!(level_set(&mut s, 1, VIDEO, 3), 0);
    assert_eq!(
        call(&mut s, 1, 0x10, base::RESET_AGENT_CONFIGURATION, &[1, 0], 0).0,
        0
    );
    assert_eq!(level_get(&mut s, 2, VIDEO), 5);
    assert_eq!(limits_get(&mut s, 2, VIDEO), (5, INDEX_BASE));
}

#[test]
fn arbitrary_requests_never_panic() {
    super::arbitrary_requests(&mut server(), P);
}
