//! Tests of the clock protocol against the simulated platform.

extern crate std;
use std::collections::BTreeSet;
use std::vec::Vec;

use super::{call, event, words};
use platform_host_vhost_user as builtin;
use platform_sim::clock::EXT_SPREAD_SPECTRUM;

static CLOCKS: &[ClockDesc] = builtin::TABLES.clock.clocks;
const CLOCK_COUNT: usize = builtin::TABLES.clock.clocks.len();
use scmi_server::config::{AgentConfig, Config, DeviceConfig};
use scmi_server::header::{MsgType, Status};
use scmi_server::protocols::base;
use scmi_server::protocols::clock::*;
use scmi_server::server::Server;

const ALL: u32 = 0xff;
const CPU0: u32 = 9;
const CPU1: u32 = 10;
const GPU: u32 = 11;
const OSC24: u32 = 0;
const PLL_CPU: u32 = 3;
const PLL_SYS: u32 = 4;
const PLL_DDR: u32 = 6;
const PLL_VIDEO: u32 = 7;
const UART0: u32 = 16;
const UART1: u32 = 17;
const I2C0: u32 = 18;
const SPI0: u32 = 20;
const I2S: u32 = 27;
const SYSTICK: u32 = 29;
const CLKOUT: u32 = 33;

/// Agent 1 sees everything; agent 2 sees the CPU device but not the GPU.
static CONFIG: Config = Config {
    vendor: "rust-scmi",
    sub_vendor: "sim",
    implementation_version: 1,
    agents: &[
        AgentConfig {
            name: "linux",
            trusted: true,
            protocols: ALL,
            devices: 0b11,
        },
        AgentConfig {
            name: "rtos",
            trusted: false,
            protocols: ALL,
            devices: 0b01,
        },
    ],
    devices: &[
        DeviceConfig {
            name: "cpu",
            resources: &[(ID, CPU0), (ID, CPU1)],
        },
        DeviceConfig {
            name: "gpu",
            resources: &[(ID, GPU)],
        },
    ],
};

type S = Server<builtin::Platform, 2, 8>;

fn server() -> S {
    Server::new(&CONFIG, builtin::PLATFORM)
}

fn p2a_server() -> S {
    let mut s = server();
    s.set_p2a(1, true);
    s.set_p2a(2, true);
    s
}

/// Sends a clock command; returns (status, payload words).
fn cmd(s: &mut S, agent: u32, msg: u8, args: &[u32], rx: usize) -> (i32, Vec<u32>) {
    let (st, p) = call(s, agent, ID, msg, args, rx);
    (st, words(&p))
}

fn status(s: &mut S, agent: u32, msg: u8, args: &[u32]) -> i32 {
    cmd(s, agent, msg, args, 128).0
}

const OK: i32 = 0;
const NOT_SUPPORTED: i32 = Status::NotSupported.code();
const INVALID: i32 = Status::InvalidParameters.code();
const DENIED: i32 = Status::Denied.code();
const NOT_FOUND: i32 = Status::NotFound.code();
const OUT_OF_RANGE: i32 = Status::OutOfRange.code();
const BUSY: i32 = Status::Busy.code();
const GENERIC: i32 = Status::GenericError.code();
const PROTOCOL: i32 = Status::ProtocolError.code();

fn rate_get(s: &mut S, agent: u32, c: u32) -> u64 {
    let (st, w) = cmd(s, agent, CLOCK_RATE_GET, &[c], 8);
    assert_eq!(st, OK);
    assert_eq!(w.len(), 2);
    u64::from(w[0]) | u64::from(w[1]) << 32
}

fn rate_set(s: &mut S, agent: u32, flags: u32, c: u32, rate: u64) -> i32 {
    status(
        s,
        agent,
        CLOCK_RATE_SET,
        &[flags, c, rate as u32, (rate >> 32) as u32],
    )
}

fn enabled(s: &mut S, agent: u32, c: u32) -> bool {
    let (st, w) = cmd(s, agent, CLOCK_CONFIG_GET, &[c, 0], 128);
    assert_eq!(st, OK);
    assert_eq!(w.len(), 3);
    assert_eq!(w[0], 0, "attributes reserved");
    assert_eq!(w[1] & !1, 0, "config [31:1] reserved");
    let (st, a) = cmd(s, agent, CLOCK_ATTRIBUTES, &[c], 24);
    assert_eq!(st, OK);
    assert_eq!(
        a[0] & 1,
        w[1],
        "CLOCK_ATTRIBUTES [0] agrees with CONFIG_GET"
    );
    w[1] == 1
}

/// Reads a clock's rates like Linux's iterator does, with `rx` bytes of
/// reply payload, checking every reply's counts and length.
fn describe_all(s: &mut S, agent: u32, c: u32, rx: usize) -> (bool, Vec<u64>) {
    let mut rates = Vec::new();
    let mut total = None;
    loop {
        let (st, w) = cmd(s, agent, CLOCK_DESCRIBE_RATES, &[c, rates.len() as u32], rx);
        assert_eq!(st, OK, "clock {c} index {}", rates.len());
        let flags = w[0];
        let returned = (flags & 0xfff) as usize;
        let remaining = (flags >> 16) as usize;
        assert_eq!(flags & 0xe000, 0, "reserved bits");
        assert_eq!(w.len(), 1 + 2 * returned, "exactly the returned rates");
        assert!(4 + 8 * returned <= rx, "fits the agent's buffer");
        if flags & 1 << 12 != 0 {
            assert_eq!((returned, remaining), (3, 0), "a triplet is 3/0");
            assert!(rates.is_empty());
            let r: Vec<u64> = w[1..]
                .chunks(2)
                .map(|p| u64::from(p[0]) | u64::from(p[1]) << 32)
                .collect();
            return (true, r);
        }
        assert!(returned > 0);
        let t = *total.get_or_insert(rates.len() + returned + remaining);
        assert_eq!(rates.len() + returned + remaining, t, "remaining is exact");
        // Entries beyond what fits would have been sent in this reply.
        assert!(
            remaining == 0 || 4 + 8 * (returned + 1) > rx,
            "reply is full"
        );
        for p in w[1..].chunks(2) {
            rates.push(u64::from(p[0]) | u64::from(p[1]) << 32);
        }
        if remaining == 0 {
            return (false, rates);
        }
    }
}

fn parents_all(s: &mut S, agent: u32, c: u32, rx: usize) -> Vec<u32> {
    let mut parents = Vec::new();
    let mut total = None;
    loop {
        let (st, w) = cmd(
            s,
            agent,
            CLOCK_POSSIBLE_PARENTS_GET,
            &[c, parents.len() as u32],
            rx,
        );
        assert_eq!(st, OK);
        let returned = (w[0] & 0xff) as usize;
        let remaining = (w[0] >> 24) as usize;
        assert_eq!(w[0] & 0x00ff_ff00, 0, "reserved bits");
        assert_eq!(w.len(), 1 + returned);
        assert!(returned > 0);
        assert!(
            remaining == 0 || 4 + 4 * (returned + 1) > rx,
            "reply is full"
        );
        let t = *total.get_or_insert(parents.len() + returned + remaining);
        assert_eq!(parents.len() + returned + remaining, t);
        parents.extend_from_slice(&w[1..]);
        if remaining == 0 {
            return parents;
        }
    }
}

fn name_of(bytes: &[u32]) -> std::string::String {
    let b: Vec<u8> = bytes.iter().flat_map(|w| w.to_le_bytes()).collect();
    let end = b.iter().position(|&c| c == 0).expect("NUL-terminated");
    std::string::String::from_utf8(b[..end].to_vec()).unwrap()
}

#[test]
fn version_and_protocol_attributes() {
    let mut s = server();
    assert_eq!(cmd(&mut s, 1, 0x0, &[], 4), (OK, std::vec![0x0003_0000]));
    // §4.6.2.3: no async without a P2A channel, the platform's clock count.
    assert_eq!(
        cmd(&mut s, 1, 0x1, &[], 4),
        (OK, std::vec![CLOCK_COUNT as u32])
    );
    assert_eq!(cmd(&mut s, 2, 0x1, &[], 4).1, [CLOCK_COUNT as u32]);
    s.set_p2a(1, true);
    assert_eq!(
        cmd(&mut s, 1, 0x1, &[], 4).1,
        [MAX_ASYNC << 16 | CLOCK_COUNT as u32]
    );
    // Linux uses async rate sets only when max_async_req >= 2.
    const { assert!(MAX_ASYNC >= 2 && MAX_ASYNC <= 0xff) };
    // A reply buffer too small for the attributes word.
    assert_eq!(cmd(&mut s, 1, 0x1, &[], 0).0, GENERIC);
}

#[test]
fn message_attributes_tell_the_truth() {
    let mut s = server();
    for id in 0u32..=0x10 {
        let st = cmd(&mut s, 1, 0x2, &[id], 4);
        if id == 0x9 || id == 0xA {
            // Notify commands need a P2A channel.
            assert_eq!(st.0, NOT_SUPPORTED, "id {id:#x}");
        } else {
            assert_eq!(st, (OK, std::vec![0]), "id {id:#x}");
        }
    }
    for id in [0x11u32, 0x20, 0x3f, 0xff, 0x100, u32::MAX] {
        assert_eq!(cmd(&mut s, 1, 0x2, &[id], 4).0, NOT_FOUND, "id {id:#x}");
    }
    s.set_p2a(1, true);
    assert_eq!(cmd(&mut s, 1, 0x2, &[0x9], 4), (OK, std::vec![0]));
    assert_eq!(cmd(&mut s, 1, 0x2, &[0xA], 4), (OK, std::vec![0]));
    // Unknown ids sent directly.
    for id in [0x11u8, 0x1f, 0x80, 0xff] {
        assert_eq!(status(&mut s, 1, id, &[0, 0, 0, 0]), NOT_FOUND);
    }
    assert_eq!(cmd(&mut s, 1, 0x2, &[], 4).0, PROTOCOL);
}

#[test]
fn negotiate_only_3_0() {
    let mut s = server();
    assert_eq!(status(&mut s, 1, 0x10, &[0x0003_0000]), OK);
    assert_eq!(status(&mut s, 1, 0x10, &[0x0003_0001]), NOT_SUPPORTED);
    assert_eq!(status(&mut s, 1, 0x10, &[0x0002_0000]), NOT_SUPPORTED);
}

#[test]
fn simulated_tree_fits_linux() {
    const { assert!(CLOCK_COUNT >= 16) };
    let mut names = BTreeSet::new();
    let mut long = 0;
    for (id, d) in CLOCKS.iter().enumerate() {
        assert!(!d.name.is_empty() && d.name.len() < 64 && d.name.is_ascii());
        assert!(names.insert(d.name), "duplicate name {}", d.name);
        long += usize::from(d.name.len() > 15);
        match d.rates {
            Rates::List(r) => {
                // Linux 6.12: SCMI_MAX_NUM_RATES = 16.
                assert!(!r.is_empty() && r.len() <= 16, "{}", d.name);
                assert!(r.windows(2).all(|w| w[0] < w[1]), "{} ascending", d.name);
            }
            Rates::Range { min, max, step } => {
                assert!(
                    min < max && step > 0 && (max - min) % step == 0,
                    "{}",
                    d.name
                );
            }
        }
        // Parents are existing clocks with lower ids (no loops).
        assert!(d.parents.len() <= 255);
        assert!(d.parents.iter().all(|&p| (p as usize) < id), "{}", d.name);
        let mut seen = BTreeSet::new();
        assert!(d.parents.iter().all(|p| seen.insert(*p)));
    }
    assert!(long >= 3);
    // Defaults are consistent with the descriptions.
    let sim = builtin::PLATFORM;
    for (id, d) in CLOCKS.iter().enumerate() {
        let id = id as u32;
        assert!(d.rates.contains(sim.clock.rate(id).unwrap()), "{}", d.name);
        if !d.parents.is_empty() {
            assert!(d.parents.contains(&sim.clock.parent(id).unwrap()));
        }
    }
}

#[test]
fn clock_attributes_for_every_clock() {
    let mut s = server();
    let mut names = BTreeSet::new();
    for (id, d) in CLOCKS.iter().enumerate() {
        let id = id as u32;
        // Linux's rx_size for CLOCK_ATTRIBUTES is 24.
        let (st, w) = cmd(&mut s, 1, CLOCK_ATTRIBUTES, &[id], 24);
        assert_eq!(st, OK);
        assert_eq!(w.len(), 6, "attributes, name[16], latency");
        let a = w[0];
        let short = name_of(&w[1..5]);
        assert!(!short.is_empty() && short.len() <= 15);
        assert!(d.name.starts_with(short.as_str()));
        assert_eq!(a >> 29 & 1 == 1, d.name.len() > 15, "ext name bit");
        if a & 1 << 29 == 0 {
            assert_eq!(short, d.name);
            assert!(names.insert(short));
        } else {
            let (st, n) = cmd(&mut s, 1, CLOCK_NAME_GET, &[id], 68);
            assert_eq!(st, OK);
            assert_eq!(n.len(), 17, "flags, name[64]");
            assert_eq!(n[0], 0);
            let full = name_of(&n[1..]);
            assert_eq!(full, d.name);
            assert!(names.insert(full));
        }
        // No P2A channel: no notification bits.
        assert_eq!(a >> 30, 0);
        assert_eq!(a >> 28 & 1 == 1, !d.parents.is_empty(), "parents bit");
        assert_eq!(a >> 27 & 1 == 1, !d.ext_config.is_empty(), "ext config bit");
        assert_eq!(
            a >> 1 & 1 == 1,
            d.permissions != perm::ALL,
            "restricted bit"
        );
        assert_eq!(a & 0x07ff_fffc, 0, "reserved bits");
        assert_eq!(w[5], d.enable_latency_us);
        assert_eq!(a & 1 == 1, s.platform.clock.enabled(id).unwrap());
    }
    assert_eq!(names.len(), CLOCK_COUNT, "unique names");

    // With a P2A channel the notification bits follow the clock.
    s.set_p2a(1, true);
    for (id, d) in CLOCKS.iter().enumerate() {
        let a = cmd(&mut s, 1, CLOCK_ATTRIBUTES, &[id as u32], 24).1[0];
        let both = if d.rate_notify { 3 } else { 0 };
        assert_eq!(a >> 30, both, "{}", d.name);
    }

    assert_eq!(
        status(&mut s, 1, CLOCK_ATTRIBUTES, &[CLOCK_COUNT as u32]),
        NOT_FOUND
    );
    assert_eq!(status(&mut s, 1, CLOCK_ATTRIBUTES, &[u32::MAX]), NOT_FOUND);
    assert_eq!(status(&mut s, 1, CLOCK_ATTRIBUTES, &[]), PROTOCOL);
    // 24 bytes do not fit in 20.
    assert_eq!(cmd(&mut s, 1, CLOCK_ATTRIBUTES, &[0], 20).0, GENERIC);
}

#[test]
fn name_get_errors() {
    let mut s = server();
    // A short name has no extended name.
    assert_eq!(status(&mut s, 1, CLOCK_NAME_GET, &[OSC24]), NOT_SUPPORTED);
    assert_eq!(
        status(&mut s, 1, CLOCK_NAME_GET, &[CLOCK_COUNT as u32]),
        NOT_FOUND
    );
    assert_eq!(status(&mut s, 1, CLOCK_NAME_GET, &[]), PROTOCOL);
    // 68 bytes needed.
    assert_eq!(cmd(&mut s, 1, CLOCK_NAME_GET, &[CPU0], 64).0, GENERIC);
}

#[test]
fn describe_rates_list_in_parts_at_the_linux_limit() {
    let mut s = server();
    // 16 rates in 128 bytes: 15 then 1 (§4.6.2.6; Linux's iterator).
    let (st, w) = cmd(&mut s, 1, CLOCK_DESCRIBE_RATES, &[CPU0, 0], 128);
    assert_eq!(st, OK);
    assert_eq!(w[0], 1 << 16 | 15);
    assert_eq!(w.len(), 1 + 30, "124 bytes: all the agent gave but 4");
    let (st, w) = cmd(&mut s, 1, CLOCK_DESCRIBE_RATES, &[CPU0, 15], 128);
    assert_eq!(st, OK);
    assert_eq!(w[0], 1);
    assert_eq!(w.len(), 3);
    assert_eq!(u64::from(w[1]) | u64::from(w[2]) << 32, 2_304_000_000);
    // Linux may ask for the last rate directly.
    let (st, w) = cmd(&mut s, 1, CLOCK_DESCRIBE_RATES, &[CPU1, 15], 128);
    assert_eq!((st, w[0]), (OK, 1));
    assert_eq!(w[1], 2_400_000_000);
    // Past the end.
    assert_eq!(
        status(&mut s, 1, CLOCK_DESCRIBE_RATES, &[CPU0, 16]),
        OUT_OF_RANGE
    );
    assert_eq!(
        status(&mut s, 1, CLOCK_DESCRIBE_RATES, &[CPU0, u32::MAX]),
        OUT_OF_RANGE
    );

    let (range, rates) = describe_all(&mut s, 1, CPU0, 128);
    assert!(!range);
    match CLOCKS[CPU0 as usize].rates {
        Rates::List(r) => assert_eq!(rates, r),
        Rates::Range { .. } => unreachable!(),
    }
    // Smaller buffers: more parts, same list, exact counts each time.
    for rx in [12, 20, 36, 60, 100, 124, 132, 200] {
        assert_eq!(describe_all(&mut s, 1, CPU0, rx).1, rates, "rx {rx}");
    }
    // Not even one rate fits.
    assert_eq!(
        cmd(&mut s, 1, CLOCK_DESCRIBE_RATES, &[CPU0, 0], 8).0,
        GENERIC
    );
    assert_eq!(
        cmd(&mut s, 1, CLOCK_DESCRIBE_RATES, &[CPU0, 0], 4).0,
        GENERIC
    );
    assert_eq!(status(&mut s, 1, CLOCK_DESCRIBE_RATES, &[CPU0]), PROTOCOL);
    assert_eq!(
        status(&mut s, 1, CLOCK_DESCRIBE_RATES, &[CLOCK_COUNT as u32, 0]),
        NOT_FOUND
    );
}

#[test]
fn describe_rates_every_clock_like_linux() {
    let mut s = server();
    for (id, d) in CLOCKS.iter().enumerate() {
        let (range, r) = describe_all(&mut s, 1, id as u32, 128);
        match d.rates {
            Rates::List(list) => {
                assert!(!range);
                assert_eq!(r, list);
                assert!(r.len() <= 16);
            }
            Rates::Range { min, max, step } => {
                assert!(range);
                assert_eq!(r, [min, max, step]);
            }
        }
    }
}

#[test]
fn describe_rates_triplet() {
    let mut s = server();
    // §4.6.2.6: [12] = 1, returned 3, remaining 0; 64-bit rates.
    let (st, w) = cmd(&mut s, 1, CLOCK_DESCRIBE_RATES, &[PLL_DDR, 0], 128);
    assert_eq!(st, OK);
    assert_eq!(w[0], 1 << 12 | 3);
    assert_eq!(w.len(), 7, "Linux's quirk check: rx_len 4 + 24");
    assert_eq!(u64::from(w[1]) | u64::from(w[2]) << 32, 2_000_000_000);
    assert_eq!(u64::from(w[3]) | u64::from(w[4]) << 32, 6_400_000_000);
    assert_eq!(w[4], 1, "upper word of 6.4 GHz");
    assert_eq!(u64::from(w[5]) | u64::from(w[6]) << 32, 100_000_000);
    assert_eq!(
        status(&mut s, 1, CLOCK_DESCRIBE_RATES, &[PLL_DDR, 1]),
        OUT_OF_RANGE
    );
    assert_eq!(
        status(&mut s, 1, CLOCK_DESCRIBE_RATES, &[PLL_DDR, 3]),
        OUT_OF_RANGE
    );
    // 28 bytes needed.
    assert_eq!(
        cmd(&mut s, 1, CLOCK_DESCRIBE_RATES, &[PLL_DDR, 0], 24).0,
        GENERIC
    );
}

#[test]
fn rate_set_rounds_and_sticks() {
    let mut s = server();
    assert_eq!(rate_get(&mut s, 1, CPU0), 1_200_000_000);
    // Discrete: [3:2] = 0 down, 1 up, 2 (or 3) closest.
    assert_eq!(rate_set(&mut s, 1, 0b0000, CPU0, 1_100_000_000), OK);
    assert_eq!(rate_get(&mut s, 1, CPU0), 1_008_000_000);
    assert_eq!(rate_set(&mut s, 1, 0b0100, CPU0, 1_100_000_000), OK);
    assert_eq!(rate_get(&mut s, 1, CPU0), 1_200_000_000);
    assert_eq!(rate_set(&mut s, 1, 0b1000, CPU0, 1_100_000_000), OK);
    assert_eq!(rate_get(&mut s, 1, CPU0), 1_008_000_000);
    assert_eq!(rate_set(&mut s, 1, 0b1100, CPU0, 1_150_000_000), OK);
    assert_eq!(rate_get(&mut s, 1, CPU0), 1_200_000_000);
    // Exact rates stay exact whatever the rounding.
    for f in [0b0000, 0b0100, 0b1000] {
        assert_eq!(rate_set(&mut s, 1, f, CPU0, 816_000_000), OK);
        assert_eq!(rate_get(&mut s, 1, CPU0), 816_000_000);
    }
    // Nothing below the lowest rate / above the highest in that direction.
    assert_eq!(rate_set(&mut s, 1, 0, CPU0, 1), INVALID);
    assert_eq!(rate_set(&mut s, 1, 0b0100, CPU0, 3_000_000_000), INVALID);
    assert_eq!(
        rate_get(&mut s, 1, CPU0),
        816_000_000,
        "unchanged by failures"
    );
    // Rounding toward the list from outside it.
    assert_eq!(rate_set(&mut s, 1, 0b0100, CPU0, 1), OK);
    assert_eq!(rate_get(&mut s, 1, CPU0), 408_000_000);
    assert_eq!(rate_set(&mut s, 1, 0, CPU0, u64::MAX), OK);
    assert_eq!(rate_get(&mut s, 1, CPU0), 2_304_000_000);

    // Range: 192 MHz + k * 24 MHz up to 2.4 GHz.
    assert_eq!(rate_set(&mut s, 1, 0, PLL_CPU, 1_000_000_001), OK);
    assert_eq!(rate_get(&mut s, 1, PLL_CPU), 984_000_000);
    assert_eq!(rate_set(&mut s, 1, 0b0100, PLL_CPU, 1_000_000_001), OK);
    assert_eq!(rate_get(&mut s, 1, PLL_CPU), 1_008_000_000);
    assert_eq!(rate_set(&mut s, 1, 0b1000, PLL_CPU, 990_000_000), OK);
    assert_eq!(rate_get(&mut s, 1, PLL_CPU), 984_000_000);
    assert_eq!(rate_set(&mut s, 1, 0b1000, PLL_CPU, 10_000_000_000), OK);
    assert_eq!(rate_get(&mut s, 1, PLL_CPU), 2_400_000_000);
    assert_eq!(rate_set(&mut s, 1, 0, PLL_CPU, 100_000_000), INVALID);
    assert_eq!(rate_set(&mut s, 1, 0b0100, PLL_CPU, 2_400_000_001), INVALID);

    // Rates above 4 GHz use the upper word.
    assert_eq!(rate_get(&mut s, 1, PLL_DDR), 4_800_000_000);
    assert_eq!(rate_set(&mut s, 1, 0, PLL_DDR, 6_400_000_000), OK);
    assert_eq!(rate_get(&mut s, 1, PLL_DDR), 6_400_000_000);
    assert_eq!(s.platform.clock.rate(PLL_DDR), Some(6_400_000_000));
    // A fine-stepped range.
    assert_eq!(rate_set(&mut s, 1, 0b1000, PLL_VIDEO, 297_000_400), OK);
    assert_eq!(rate_get(&mut s, 1, PLL_VIDEO), 297_000_000);
}

#[test]
fn rate_set_errors() {
    let mut s = server();
    // §4.6.2.7: reserved flags, permissions, unknown clocks, short payloads.
    assert_eq!(rate_set(&mut s, 1, 1 << 4, CPU0, 816_000_000), INVALID);
    assert_eq!(rate_set(&mut s, 1, 1 << 31, CPU0, 816_000_000), INVALID);
    assert_eq!(rate_set(&mut s, 1, 0, OSC24, 24_000_000), DENIED);
    assert_eq!(rate_set(&mut s, 1, 0, PLL_SYS, 400_000_000), DENIED);
    assert_eq!(rate_get(&mut s, 1, PLL_SYS), 800_000_000);
    assert_eq!(rate_set(&mut s, 1, 0, CLOCK_COUNT as u32, 1), NOT_FOUND);
    assert_eq!(status(&mut s, 1, CLOCK_RATE_SET, &[0, CPU0, 1]), PROTOCOL);
    assert_eq!(status(&mut s, 1, CLOCK_RATE_GET, &[]), PROTOCOL);
    assert_eq!(
        status(&mut s, 1, CLOCK_RATE_GET, &[CLOCK_COUNT as u32]),
        NOT_FOUND
    );
    // No P2A channel: no asynchronous rate changes.
    assert_eq!(rate_set(&mut s, 1, 1, CPU0, 816_000_000), NOT_SUPPORTED);
    assert_eq!(rate_set(&mut s, 1, 3, CPU0, 816_000_000), NOT_SUPPORTED);
    assert_eq!(rate_get(&mut s, 1, CPU0), 1_200_000_000);
    // Bit 1 alone is ignored: a synchronous set.
    assert_eq!(rate_set(&mut s, 1, 2, CPU0, 816_000_000), OK);
    assert_eq!(rate_get(&mut s, 1, CPU0), 816_000_000);
    assert!(!s.has_event(1));
    // 8 bytes do not fit in 4.
    assert_eq!(cmd(&mut s, 1, CLOCK_RATE_GET, &[CPU0], 4).0, GENERIC);
}

#[test]
fn async_rate_set_answers_late() {
    let mut s = p2a_server();
    assert_eq!(
        call(&mut s, 1, ID, CLOCK_RATE_SET, &[1, CPU0, 600_000_000, 0], 0),
        (OK, std::vec![])
    );
    // §4.6.3.1 CLOCK_RATE_SET_COMPLETE: same id and token, type 2.
    let (h, w) = event(&mut s, 1).expect("delayed response");
    assert_eq!(h.msg_type, MsgType::DelayedResponse);
    assert_eq!((h.protocol, h.msg_id, h.token), (ID, CLOCK_RATE_SET, 0x155));
    assert_eq!(w, [0, CPU0, 600_000_000, 0]);
    assert!(event(&mut s, 1).is_none());
    assert_eq!(rate_get(&mut s, 1, CPU0), 600_000_000);
    // The rate actually set, after rounding, above 4 GHz.
    assert_eq!(rate_set(&mut s, 1, 0b0101, PLL_DDR, 4_250_000_001), OK);
    let (_, w) = event(&mut s, 1).unwrap();
    assert_eq!(w, [0, PLL_DDR, (4_300_000_000u64 & 0xffff_ffff) as u32, 1]);
    // [1]: no delayed response wanted.
    assert_eq!(rate_set(&mut s, 1, 0b11, CPU0, 408_000_000), OK);
    assert!(event(&mut s, 1).is_none());
    assert_eq!(rate_get(&mut s, 1, CPU0), 408_000_000);
    // A refused async request queues nothing.
    assert_eq!(rate_set(&mut s, 1, 1, OSC24, 24_000_000), DENIED);
    assert_eq!(rate_set(&mut s, 1, 1, CPU0, 1), INVALID);
    assert!(!s.has_event(1));
    // The other agent's delayed responses are its own.
    assert_eq!(rate_set(&mut s, 2, 1, CPU1, 600_000_000), OK);
    assert!(!s.has_event(1));
    assert_eq!(event(&mut s, 2).unwrap().1, [0, CPU1, 600_000_000, 0]);
}

#[test]
fn async_rate_set_busy_when_the_outbox_is_full() {
    let mut s = p2a_server();
    assert_eq!(status(&mut s, 1, CLOCK_RATE_NOTIFY, &[CPU1, 1]), OK);
    assert_eq!(
        status(&mut s, 1, CLOCK_RATE_CHANGE_REQUESTED_NOTIFY, &[CPU1, 1]),
        OK
    );
    // Each change queues two notifications, until agent 1's share of the
    // outbox is full.
    let share = s.outbox().free_for(1);
    assert!(share > 0 && share < s.outbox().free());
    for r in [600u64, 816].iter().cycle().take(share.div_ceil(2)) {
        assert_eq!(rate_set(&mut s, 1, 0, CPU1, r * 1_000_000), OK);
    }
    assert_eq!(s.outbox().free_for(1), 0);
    assert_eq!(rate_set(&mut s, 1, 1, CPU0, 600_000_000), BUSY);
    assert_eq!(
        rate_get(&mut s, 1, CPU0),
        1_200_000_000,
        "refused, not applied"
    );
    // Without a delayed response nothing needs a slot.
    assert_eq!(rate_set(&mut s, 1, 0b11, CPU0, 600_000_000), OK);
    assert_eq!(rate_get(&mut s, 1, CPU0), 600_000_000);
    // The other agent's share is its own.
    assert_eq!(rate_set(&mut s, 2, 1, CPU0, 408_000_000), OK);
    assert_eq!(event(&mut s, 2).unwrap().1, [0, CPU0, 408_000_000, 0]);
    // Once drained, async works again.
    while event(&mut s, 1).is_some() {}
    assert_eq!(rate_set(&mut s, 1, 1, CPU0, 816_000_000), OK);
    assert_eq!(
        event(&mut s, 1).unwrap().0.msg_type,
        MsgType::DelayedResponse
    );
}

#[test]
fn rate_notifications() {
    let mut s = p2a_server();
    // Agent 1 watches cluster 0; agent 2 changes it.
    assert_eq!(status(&mut s, 1, CLOCK_RATE_NOTIFY, &[CPU0, 1]), OK);
    assert_eq!(
        status(&mut s, 1, CLOCK_RATE_CHANGE_REQUESTED_NOTIFY, &[CPU0, 1]),
        OK
    );
    assert_eq!(rate_set(&mut s, 2, 0b0100, CPU0, 1_300_000_000), OK);
    assert!(!s.has_event(2), "agent 2 did not subscribe");
    let (h, w) = event(&mut s, 1).unwrap();
    assert_eq!(h.msg_type, MsgType::Notification);
    assert_eq!((h.protocol, h.msg_id), (ID, CLOCK_RATE_CHANGE_REQUESTED));
    assert_eq!(w, [2, CPU0, 1_300_000_000, 0], "the requested rate");
    let (h, w) = event(&mut s, 1).unwrap();
    assert_eq!(
        (h.msg_type, h.msg_id),
        (MsgType::Notification, CLOCK_RATE_CHANGED)
    );
    assert_eq!(w, [2, CPU0, 1_416_000_000, 0], "the rate set, 16 bytes");
    assert!(event(&mut s, 1).is_none());
    // The same rate again: requested, but nothing changed.
    assert_eq!(rate_set(&mut s, 2, 0, CPU0, 1_416_000_000), OK);
    assert_eq!(
        event(&mut s, 1).unwrap().0.msg_id,
        CLOCK_RATE_CHANGE_REQUESTED
    );
    assert!(event(&mut s, 1).is_none());
    // Only subscribed clocks notify.
    assert_eq!(rate_set(&mut s, 2, 0, CPU1, 600_000_000), OK);
    assert!(event(&mut s, 1).is_none());
    // Unsubscribe one kind.
    assert_eq!(
        status(&mut s, 1, CLOCK_RATE_CHANGE_REQUESTED_NOTIFY, &[CPU0, 0]),
        OK
    );
    assert_eq!(rate_set(&mut s, 1, 0, CPU0, 600_000_000), OK);
    let (h, w) = event(&mut s, 1).unwrap();
    assert_eq!(h.msg_id, CLOCK_RATE_CHANGED);
    assert_eq!(w, [1, CPU0, 600_000_000, 0], "the caller's own change");
    assert!(event(&mut s, 1).is_none());
    // Async: the delayed response comes before the notifications.
    assert_eq!(rate_set(&mut s, 1, 1, CPU0, 816_000_000), OK);
    assert_eq!(
        event(&mut s, 1).unwrap().0.msg_type,
        MsgType::DelayedResponse
    );
    assert_eq!(event(&mut s, 1).unwrap().0.msg_id, CLOCK_RATE_CHANGED);
    assert!(event(&mut s, 1).is_none());

    // Errors (§4.6.2): reserved bits, clocks without notifications, unknown
    // clocks, short payloads.
    assert_eq!(status(&mut s, 1, CLOCK_RATE_NOTIFY, &[CPU0, 2]), INVALID);
    assert_eq!(
        status(&mut s, 1, CLOCK_RATE_NOTIFY, &[UART0, 1]),
        NOT_SUPPORTED
    );
    assert_eq!(
        status(&mut s, 1, CLOCK_RATE_CHANGE_REQUESTED_NOTIFY, &[OSC24, 1]),
        NOT_SUPPORTED
    );
    assert_eq!(
        status(&mut s, 1, CLOCK_RATE_NOTIFY, &[CLOCK_COUNT as u32, 1]),
        NOT_FOUND
    );
    assert_eq!(status(&mut s, 1, CLOCK_RATE_NOTIFY, &[CPU0]), PROTOCOL);
}

#[test]
fn notifications_need_a_p2a_channel() {
    let mut s = server();
    assert_eq!(
        status(&mut s, 1, CLOCK_RATE_NOTIFY, &[CPU0, 1]),
        NOT_SUPPORTED
    );
    assert_eq!(
        status(&mut s, 1, CLOCK_RATE_CHANGE_REQUESTED_NOTIFY, &[CPU0, 1]),
        NOT_SUPPORTED
    );
    assert_eq!(rate_set(&mut s, 1, 0, CPU0, 600_000_000), OK);
    assert!(!s.has_event(1));
    let a = cmd(&mut s, 1, CLOCK_ATTRIBUTES, &[CPU0], 24).1[0];
    assert_eq!(a >> 30, 0);
}

#[test]
fn config_set_enables_and_reads_back() {
    let mut s = server();
    assert!(!enabled(&mut s, 1, GPU));
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[GPU, 1, 0]), OK);
    assert!(enabled(&mut s, 1, GPU));
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[GPU, 0, 0]), OK);
    assert!(!enabled(&mut s, 1, GPU));
    // A default-on clock goes off and comes back.
    assert!(enabled(&mut s, 1, CPU1));
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[CPU1, 0, 0]), OK);
    assert!(!enabled(&mut s, 1, CPU1));
    // The rate survives gating.
    assert_eq!(rate_set(&mut s, 1, 0, CPU1, 600_000_000), OK);
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[CPU1, 1, 0]), OK);
    assert_eq!(rate_get(&mut s, 1, CPU1), 600_000_000);

    // Requests are voted: on while any agent wants it on.
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[UART0, 1, 0]), OK);
    assert_eq!(status(&mut s, 2, CLOCK_CONFIG_SET, &[UART0, 0, 0]), OK);
    assert!(enabled(&mut s, 2, UART0));
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[UART0, 0, 0]), OK);
    assert!(!enabled(&mut s, 2, UART0));

    // Clock 2.x's 8-byte layout still works without an extended type.
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[I2C0, 1]), OK);
    assert!(enabled(&mut s, 1, I2C0));
}

#[test]
fn config_set_errors() {
    let mut s = server();
    // §4.6.2.9: state 2 reserved, 3 only with an extended type, reserved
    // bits.
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[GPU, 2, 0]), INVALID);
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[GPU, 3, 0]), INVALID);
    assert_eq!(
        status(&mut s, 1, CLOCK_CONFIG_SET, &[GPU, 1 << 2 | 1, 0]),
        INVALID
    );
    assert_eq!(
        status(&mut s, 1, CLOCK_CONFIG_SET, &[GPU, 1 << 24 | 1, 0]),
        INVALID
    );
    assert!(!enabled(&mut s, 1, GPU));
    // Restricted state control.
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[OSC24, 0, 0]), DENIED);
    assert!(enabled(&mut s, 1, OSC24));
    assert_eq!(
        status(&mut s, 1, CLOCK_CONFIG_SET, &[PLL_DDR, 0, 0]),
        DENIED
    );
    // Extended types on a clock without extended configuration.
    assert_eq!(
        status(
            &mut s,
            1,
            CLOCK_CONFIG_SET,
            &[GPU, u32::from(EXT_DUTY_CYCLE) << 16 | 3, 40]
        ),
        NOT_SUPPORTED
    );
    // A type the clock does not have.
    assert_eq!(
        status(
            &mut s,
            1,
            CLOCK_CONFIG_SET,
            &[SPI0, u32::from(EXT_DUTY_CYCLE) << 16 | 3, 40]
        ),
        INVALID
    );
    assert_eq!(
        status(&mut s, 1, CLOCK_CONFIG_SET, &[CLOCK_COUNT as u32, 1, 0]),
        NOT_FOUND
    );
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[GPU]), PROTOCOL);
    // The value word is needed with an extended type.
    assert_eq!(
        status(
            &mut s,
            1,
            CLOCK_CONFIG_SET,
            &[I2S, u32::from(EXT_DUTY_CYCLE) << 16 | 3]
        ),
        PROTOCOL
    );
    // CONFIG_GET.
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_GET, &[GPU, 1 << 8]), INVALID);
    assert_eq!(
        status(&mut s, 1, CLOCK_CONFIG_GET, &[GPU, 1]),
        NOT_SUPPORTED
    );
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_GET, &[SPI0, 1]), INVALID);
    assert_eq!(
        status(&mut s, 1, CLOCK_CONFIG_GET, &[CLOCK_COUNT as u32, 0]),
        NOT_FOUND
    );
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_GET, &[GPU]), PROTOCOL);
    assert_eq!(cmd(&mut s, 1, CLOCK_CONFIG_GET, &[GPU, 0], 8).0, GENERIC);
}

#[test]
fn extended_configuration() {
    let mut s = server();
    let duty = u32::from(EXT_DUTY_CYCLE) << 16;
    let phase = u32::from(EXT_PHASE) << 16;
    // clk-scmi probes the duty cycle at registration.
    assert_eq!(
        cmd(&mut s, 1, CLOCK_CONFIG_GET, &[I2S, 1], 128),
        (OK, std::vec![0, 0, 50])
    );
    // State 3: extended value only, state unchanged.
    assert_eq!(
        status(&mut s, 1, CLOCK_CONFIG_SET, &[I2S, duty | 3, 40]),
        OK
    );
    assert_eq!(
        cmd(&mut s, 1, CLOCK_CONFIG_GET, &[I2S, 1], 128).1,
        [0, 0, 40]
    );
    // Enable and set the phase in one command.
    assert_eq!(
        status(&mut s, 1, CLOCK_CONFIG_SET, &[I2S, phase | 1, 90]),
        OK
    );
    assert_eq!(
        cmd(&mut s, 1, CLOCK_CONFIG_GET, &[I2S, 2], 128).1,
        [0, 1, 90]
    );
    assert_eq!(
        cmd(&mut s, 1, CLOCK_CONFIG_GET, &[I2S, 1], 128).1,
        [0, 1, 40]
    );
    // Type 0: the value word is 0.
    assert_eq!(
        cmd(&mut s, 1, CLOCK_CONFIG_GET, &[I2S, 0], 128).1,
        [0, 1, 0]
    );
    // Values the hardware cannot take.
    for v in [0, 100, 101, u32::MAX] {
        assert_eq!(
            status(&mut s, 1, CLOCK_CONFIG_SET, &[I2S, duty | 3, v]),
            INVALID
        );
    }
    assert_eq!(
        status(&mut s, 1, CLOCK_CONFIG_SET, &[I2S, phase | 3, 360]),
        INVALID
    );
    assert_eq!(
        cmd(&mut s, 1, CLOCK_CONFIG_GET, &[I2S, 1], 128).1,
        [0, 1, 40]
    );
    // An OEM type (0x80: spread spectrum on the video PLL).
    let oem = u32::from(EXT_SPREAD_SPECTRUM) << 16;
    assert_eq!(
        status(&mut s, 1, CLOCK_CONFIG_SET, &[PLL_VIDEO, oem | 3, 20]),
        OK
    );
    assert_eq!(
        cmd(
            &mut s,
            1,
            CLOCK_CONFIG_GET,
            &[PLL_VIDEO, u32::from(EXT_SPREAD_SPECTRUM)],
            128
        )
        .1,
        [0, 0, 20]
    );
    // The video PLL has no duty cycle: clk-scmi then offers no duty ops.
    assert_eq!(
        status(&mut s, 1, CLOCK_CONFIG_GET, &[PLL_VIDEO, 1]),
        INVALID
    );
    // CLOCK_ATTRIBUTES [27] advertises extended configuration.
    let a = cmd(&mut s, 1, CLOCK_ATTRIBUTES, &[I2S], 24).1[0];
    assert_ne!(a & 1 << 27, 0);
    // The enable state is still a vote of its own.
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[I2S, 0, 0]), OK);
    assert_eq!(
        cmd(&mut s, 1, CLOCK_CONFIG_GET, &[I2S, 2], 128).1,
        [0, 0, 90]
    );
}

#[test]
fn possible_parents_in_parts_at_the_linux_limit() {
    let mut s = server();
    // 33 parents in 128 bytes: 31 then 2 (§4.6.2.14).
    let (st, w) = cmd(&mut s, 1, CLOCK_POSSIBLE_PARENTS_GET, &[CLKOUT, 0], 128);
    assert_eq!(st, OK);
    assert_eq!(w[0], 2 << 24 | 31);
    assert_eq!(w.len(), 32, "all 128 bytes");
    assert_eq!(w[1..], (0..31).collect::<Vec<u32>>()[..]);
    let (st, w) = cmd(&mut s, 1, CLOCK_POSSIBLE_PARENTS_GET, &[CLKOUT, 31], 128);
    assert_eq!(st, OK);
    assert_eq!(w, [2, 31, 32]);
    assert_eq!(
        status(&mut s, 1, CLOCK_POSSIBLE_PARENTS_GET, &[CLKOUT, 33]),
        OUT_OF_RANGE
    );
    for rx in [8, 12, 40, 124, 128, 256] {
        let p = parents_all(&mut s, 1, CLKOUT, rx);
        assert_eq!(p, (0..33).collect::<Vec<u32>>(), "rx {rx}");
    }
    // Every clock with parents: ids below the clock count, as listed.
    for (id, d) in CLOCKS.iter().enumerate() {
        if d.parents.is_empty() {
            assert_eq!(
                status(&mut s, 1, CLOCK_POSSIBLE_PARENTS_GET, &[id as u32, 0]),
                NOT_SUPPORTED
            );
        } else {
            let p = parents_all(&mut s, 1, id as u32, 128);
            assert_eq!(p, d.parents);
            assert!(p.iter().all(|&x| (x as usize) < CLOCK_COUNT));
        }
    }
    assert_eq!(
        cmd(&mut s, 1, CLOCK_POSSIBLE_PARENTS_GET, &[CLKOUT, 0], 4).0,
        GENERIC
    );
    assert_eq!(
        status(&mut s, 1, CLOCK_POSSIBLE_PARENTS_GET, &[CLKOUT]),
        PROTOCOL
    );
    assert_eq!(
        status(
            &mut s,
            1,
            CLOCK_POSSIBLE_PARENTS_GET,
            &[CLOCK_COUNT as u32, 0]
        ),
        NOT_FOUND
    );
}

#[test]
fn parent_set_and_get() {
    let mut s = server();
    assert_eq!(
        cmd(&mut s, 1, CLOCK_PARENT_GET, &[CPU0], 4),
        (OK, std::vec![PLL_CPU])
    );
    let before = rate_get(&mut s, 1, CPU0);
    assert_eq!(status(&mut s, 1, CLOCK_PARENT_SET, &[CPU0, PLL_SYS]), OK);
    assert_eq!(cmd(&mut s, 1, CLOCK_PARENT_GET, &[CPU0], 4).1, [PLL_SYS]);
    assert_eq!(
        rate_get(&mut s, 1, CPU0),
        before,
        "§4.6.2.15: the rate is kept"
    );
    assert_eq!(status(&mut s, 1, CLOCK_PARENT_SET, &[CLKOUT, CPU0]), OK);
    assert_eq!(cmd(&mut s, 1, CLOCK_PARENT_GET, &[CLKOUT], 4).1, [CPU0]);
    // Not a possible parent; no such clock; no parent mux; restricted.
    assert_eq!(status(&mut s, 1, CLOCK_PARENT_SET, &[CPU0, GPU]), INVALID);
    assert_eq!(status(&mut s, 1, CLOCK_PARENT_SET, &[CPU0, CPU0]), INVALID);
    assert_eq!(
        status(&mut s, 1, CLOCK_PARENT_SET, &[CPU0, CLOCK_COUNT as u32]),
        NOT_FOUND
    );
    assert_eq!(
        status(&mut s, 1, CLOCK_PARENT_SET, &[CPU0, u32::MAX]),
        NOT_FOUND
    );
    assert_eq!(
        status(&mut s, 1, CLOCK_PARENT_SET, &[PLL_CPU, OSC24]),
        NOT_SUPPORTED
    );
    assert_eq!(status(&mut s, 1, CLOCK_PARENT_SET, &[SYSTICK, 1]), DENIED);
    assert_eq!(cmd(&mut s, 1, CLOCK_PARENT_GET, &[SYSTICK], 4).1, [OSC24]);
    assert_eq!(cmd(&mut s, 1, CLOCK_PARENT_GET, &[CPU0], 4).1, [PLL_SYS]);
    assert_eq!(
        status(&mut s, 1, CLOCK_PARENT_GET, &[PLL_CPU]),
        NOT_SUPPORTED
    );
    assert_eq!(
        status(&mut s, 1, CLOCK_PARENT_GET, &[CLOCK_COUNT as u32]),
        NOT_FOUND
    );
    assert_eq!(status(&mut s, 1, CLOCK_PARENT_SET, &[CPU0]), PROTOCOL);
    assert_eq!(status(&mut s, 1, CLOCK_PARENT_GET, &[]), PROTOCOL);
}

#[test]
fn permissions_describe_restrictions() {
    let mut s = server();
    for (id, d) in CLOCKS.iter().enumerate() {
        let (st, w) = cmd(&mut s, 1, CLOCK_GET_PERMISSIONS, &[id as u32], 4);
        assert_eq!(st, OK);
        assert_eq!(w, [d.permissions]);
        assert_eq!(w[0] & 0x1fff_ffff, 0, "reserved bits");
    }
    assert_eq!(cmd(&mut s, 1, CLOCK_GET_PERMISSIONS, &[OSC24], 4).1, [0]);
    assert_eq!(
        cmd(&mut s, 1, CLOCK_GET_PERMISSIONS, &[SYSTICK], 4).1,
        [perm::STATE | perm::RATE]
    );
    assert_eq!(
        cmd(&mut s, 1, CLOCK_GET_PERMISSIONS, &[CPU0], 4).1,
        [perm::ALL]
    );
    assert_eq!(
        status(&mut s, 1, CLOCK_GET_PERMISSIONS, &[CLOCK_COUNT as u32]),
        NOT_FOUND
    );
    assert_eq!(status(&mut s, 1, CLOCK_GET_PERMISSIONS, &[]), PROTOCOL);
}

#[test]
fn agents_see_only_their_clocks() {
    let mut s = p2a_server();
    // Agent 2 lacks the "gpu" device: the GPU clock does not exist for it.
    let probes: [(u8, &[u32]); 12] = [
        (CLOCK_ATTRIBUTES, &[GPU]),
        (CLOCK_DESCRIBE_RATES, &[GPU, 0]),
        (CLOCK_RATE_SET, &[0, GPU, 300_000_000, 0]),
        (CLOCK_RATE_GET, &[GPU]),
        (CLOCK_CONFIG_SET, &[GPU, 1, 0]),
        (CLOCK_CONFIG_GET, &[GPU, 0]),
        (CLOCK_RATE_NOTIFY, &[GPU, 1]),
        (CLOCK_RATE_CHANGE_REQUESTED_NOTIFY, &[GPU, 1]),
        (CLOCK_POSSIBLE_PARENTS_GET, &[GPU, 0]),
        (CLOCK_PARENT_SET, &[GPU, PLL_SYS]),
        (CLOCK_PARENT_GET, &[GPU]),
        (CLOCK_GET_PERMISSIONS, &[GPU]),
    ];
    for (msg, args) in probes {
        assert_eq!(status(&mut s, 2, msg, args), NOT_FOUND, "msg {msg:#x}");
        assert_ne!(status(&mut s, 1, msg, args), NOT_FOUND, "msg {msg:#x}");
    }
    // Nothing agent 2 tried changed the clock; agent 1's changes stuck.
    assert_eq!(rate_get(&mut s, 1, GPU), 300_000_000);
    assert_eq!(cmd(&mut s, 1, CLOCK_PARENT_GET, &[GPU], 4).1, [PLL_SYS]);
    // The count stays the platform's (ids are stable for Linux).
    assert_eq!(
        cmd(&mut s, 2, 0x1, &[], 4).1[0] & 0xffff,
        CLOCK_COUNT as u32
    );
    // Unowned clocks are shared.
    assert_eq!(rate_set(&mut s, 2, 0, UART0, 48_000_000), OK);
    assert_eq!(rate_get(&mut s, 1, UART0), 48_000_000);

    // Revoking a device silences notifications about its clocks.
    while event(&mut s, 1).is_some() {}
    assert_eq!(status(&mut s, 2, CLOCK_RATE_NOTIFY, &[CPU0, 1]), OK);
    assert_eq!(rate_set(&mut s, 1, 0, CPU0, 600_000_000), OK);
    assert_eq!(event(&mut s, 2).unwrap().1, [1, CPU0, 600_000_000, 0]);
    let rev = call(
        &mut s,
        1,
        base::ID,
        base::SET_DEVICE_PERMISSIONS,
        &[2, 0, 0],
        0,
    )
    .0;
    assert_eq!(rev, OK);
    assert_eq!(rate_set(&mut s, 1, 0, CPU0, 816_000_000), OK);
    assert!(!s.has_event(2));
    assert_eq!(status(&mut s, 2, CLOCK_RATE_GET, &[CPU0]), NOT_FOUND);
}

#[test]
fn reset_agent_reverts_only_that_agents_settings() {
    let mut s = server();
    let duty = u32::from(EXT_DUTY_CYCLE) << 16;
    // Agent 2's settings.
    assert_eq!(rate_set(&mut s, 2, 0, UART0, 48_000_000), OK);
    assert_eq!(status(&mut s, 2, CLOCK_CONFIG_SET, &[UART0, 1, 0]), OK);
    assert_eq!(status(&mut s, 2, CLOCK_PARENT_SET, &[UART0, 5]), OK);
    assert_eq!(
        status(&mut s, 2, CLOCK_CONFIG_SET, &[I2S, duty | 3, 30]),
        OK
    );
    assert_eq!(status(&mut s, 2, CLOCK_CONFIG_SET, &[CPU1, 0, 0]), OK);
    // Agent 1's.
    assert_eq!(rate_set(&mut s, 1, 0, CPU0, 600_000_000), OK);
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[GPU, 1, 0]), OK);
    assert_eq!(status(&mut s, 1, CLOCK_CONFIG_SET, &[I2C0, 1, 0]), OK);
    let changes = s.platform.clock.rate_changes(UART0).unwrap();
    assert_eq!(changes, 1);

    let r = call(
        &mut s,
        2,
        base::ID,
        base::RESET_AGENT_CONFIGURATION,
        &[2, 0],
        0,
    )
    .0;
    assert_eq!(r, OK);
    assert_eq!(rate_get(&mut s, 1, UART0), 24_000_000);
    assert_eq!(s.platform.clock.rate_changes(UART0), Some(2));
    assert!(!enabled(&mut s, 1, UART0));
    assert_eq!(cmd(&mut s, 1, CLOCK_PARENT_GET, &[UART0], 4).1, [OSC24]);
    assert_eq!(cmd(&mut s, 1, CLOCK_CONFIG_GET, &[I2S, 1], 128).1[2], 50);
    assert!(enabled(&mut s, 1, CPU1), "default-on again");
    assert_eq!(rate_get(&mut s, 1, CPU0), 600_000_000);
    assert!(enabled(&mut s, 1, GPU));
    assert!(enabled(&mut s, 1, I2C0));

    // A later setting by another agent is not reverted.
    assert_eq!(rate_set(&mut s, 2, 0, UART1, 48_000_000), OK);
    assert_eq!(rate_set(&mut s, 1, 0, UART1, 14_745_600), OK);
    let r = call(
        &mut s,
        1,
        base::ID,
        base::RESET_AGENT_CONFIGURATION,
        &[2, 0],
        0,
    )
    .0;
    assert_eq!(r, OK);
    assert_eq!(rate_get(&mut s, 1, UART1), 14_745_600);
}

#[test]
fn arbitrary_requests_never_panic() {
    let mut s = p2a_server();
    let mut x: u64 = 0x1234_5678_9abc_def0;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let known: Vec<i32> = (-11..=0).collect();
    for _ in 0..20_000 {
        let msg = (next() % 0x14) as u8;
        let n = (next() % 6) as usize;
        let args: Vec<u32> = (0..n)
            .map(|_| match next() % 4 {
                0 => (next() % 40) as u32,
                1 => (next() % 16) as u32,
                2 => (next() as u32) & 0x00ff_000f,
                _ => next() as u32,
            })
            .collect();
        let rx = [0usize, 4, 8, 16, 24, 28, 64, 68, 128][(next() % 9) as usize];
        let agent = 1 + (next() % 2) as u32;
        let (st, p) = call(&mut s, agent, ID, msg, &args, rx);
        assert!(known.contains(&st), "status {st}");
        assert!(p.len() <= rx);
        while event(&mut s, agent).is_some() {}
    }
}
