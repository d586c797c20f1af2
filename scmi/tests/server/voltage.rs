//! Tests of the voltage protocol against the simulated platform.

extern crate std;
use std::collections::BTreeSet;
use std::vec::Vec;

use super::{call, event, words};
use platform_host_vhost_user as builtin;
use platform_sim::voltage::{MODE_ON_PFM, MODE_RETENTION};

static VOLTAGES: &[VoltageDesc] = builtin::TABLES.voltage.domains;
const VOLTAGE_COUNT: usize = builtin::TABLES.voltage.domains.len();
use scmi_server::config::{AgentConfig, Config, DeviceConfig};
use scmi_server::header::{MsgType, Status};
use scmi_server::protocols::base;
use scmi_server::protocols::voltage::*;
use scmi_server::server::Server;

const ALL: u32 = 0xff;
const CPU: u32 = 0;
const GPU: u32 = 1;
const SOC: u32 = 2;
const DDR: u32 = 3;
const SDIO: u32 = 5;
const NPU: u32 = 6;
const ANALOG: u32 = 7;
const VBB_N: u32 = 8;
const VBB_P: u32 = 9;

/// Agent 1 sees everything; agent 2 lacks the "gpu" device.
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
            name: "storage",
            resources: &[(ID, SDIO)],
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

fn cmd(s: &mut S, agent: u32, msg: u8, args: &[u32], rx: usize) -> (i32, Vec<u32>) {
    let (st, p) = call(s, agent, ID, msg, args, rx);
    (st, words(&p))
}

fn status(s: &mut S, agent: u32, msg: u8, args: &[u32]) -> i32 {
    cmd(s, agent, msg, args, 128).0
}

fn level(s: &mut S, agent: u32, d: u32) -> i32 {
    let (st, w) = cmd(s, agent, VOLTAGE_LEVEL_GET, &[d], 128);
    assert_eq!(st, OK);
    assert_eq!(w.len(), 1);
    w[0] as i32
}

fn set_level(s: &mut S, agent: u32, d: u32, flags: u32, uv: i32) -> i32 {
    let (st, w) = cmd(s, agent, VOLTAGE_LEVEL_SET, &[d, flags, uv as u32], 128);
    assert!(w.is_empty(), "status only");
    st
}

fn config(s: &mut S, agent: u32, d: u32) -> u32 {
    let (st, w) = cmd(s, agent, VOLTAGE_CONFIG_GET, &[d], 128);
    assert_eq!(st, OK);
    assert_eq!(w.len(), 1);
    w[0]
}

const OK: i32 = 0;
const NOT_SUPPORTED: i32 = Status::NotSupported.code();
const INVALID: i32 = Status::InvalidParameters.code();
const NOT_FOUND: i32 = Status::NotFound.code();
const OUT_OF_RANGE: i32 = Status::OutOfRange.code();
const BUSY: i32 = Status::Busy.code();
const GENERIC: i32 = Status::GenericError.code();
const PROTOCOL: i32 = Status::ProtocolError.code();

fn name_of(bytes: &[u32]) -> std::string::String {
    let b: Vec<u8> = bytes.iter().flat_map(|w| w.to_le_bytes()).collect();
    let end = b.iter().position(|&c| c == 0).expect("NUL-terminated");
    std::string::String::from_utf8(b[..end].to_vec()).unwrap()
}

/// Reads a domain's levels like Linux's iterator, checking every reply.
fn describe_all(s: &mut S, agent: u32, d: u32, rx: usize) -> (bool, Vec<i32>) {
    let mut levels = Vec::new();
    let mut total = None;
    loop {
        let (st, w) = cmd(
            s,
            agent,
            VOLTAGE_DESCRIBE_LEVELS,
            &[d, levels.len() as u32],
            rx,
        );
        assert_eq!(st, OK);
        let returned = (w[0] & 0xfff) as usize;
        let remaining = (w[0] >> 16) as usize;
        assert_eq!(w[0] & 0xe000, 0, "reserved bits");
        assert_eq!(w.len(), 1 + returned);
        assert!(4 + 4 * returned <= rx);
        let vals = w[1..].iter().map(|&v| v as i32);
        if w[0] & 1 << 12 != 0 {
            assert_eq!((returned, remaining), (3, 0));
            assert!(levels.is_empty());
            return (true, vals.collect());
        }
        assert!(returned > 0);
        let t = *total.get_or_insert(levels.len() + returned + remaining);
        assert!(t > 0, "Linux rejects 0 levels");
        assert_eq!(levels.len() + returned + remaining, t, "remaining is exact");
        assert!(
            remaining == 0 || 4 + 4 * (returned + 1) > rx,
            "reply is full"
        );
        levels.extend(vals);
        if remaining == 0 {
            return (false, levels);
        }
    }
}

#[test]
fn version_attributes_and_messages() {
    let mut s = server();
    assert_eq!(cmd(&mut s, 1, 0x0, &[], 4), (OK, std::vec![0x0002_0001]));
    assert_eq!(
        cmd(&mut s, 1, 0x1, &[], 4),
        (OK, std::vec![VOLTAGE_COUNT as u32])
    );
    const { assert!(VOLTAGE_COUNT >= 8) };
    for id in (0u32..=9).chain([0x10]) {
        assert_eq!(cmd(&mut s, 1, 0x2, &[id], 4), (OK, std::vec![0]), "id {id}");
    }
    for id in [0xau32, 0xf, 0x11, 0x100, u32::MAX] {
        assert_eq!(cmd(&mut s, 1, 0x2, &[id], 4).0, NOT_FOUND);
    }
    assert_eq!(status(&mut s, 1, 0xa, &[0]), NOT_FOUND);
    assert_eq!(status(&mut s, 1, 0x3f, &[0]), NOT_FOUND);
    // Linux 6.12 supports 2.1; a 2.0 agent may negotiate.
    assert_eq!(status(&mut s, 1, 0x10, &[0x0002_0000]), OK);
    assert_eq!(status(&mut s, 1, 0x10, &[0x0002_0002]), NOT_SUPPORTED);
    assert_eq!(status(&mut s, 1, 0x10, &[0x0003_0000]), NOT_SUPPORTED);
}

#[test]
fn domain_attributes_and_names() {
    let mut s = server();
    let mut names = BTreeSet::new();
    for (id, d) in VOLTAGES.iter().enumerate() {
        let id = id as u32;
        // Linux's rx_size is 20: attributes, name[16].
        let (st, w) = cmd(&mut s, 1, VOLTAGE_DOMAIN_ATTRIBUTES, &[id], 20);
        assert_eq!(st, OK);
        assert_eq!(w.len(), 5);
        assert_eq!(w[0] >> 31, 0, "no async without P2A");
        assert_eq!(w[0] & 0x3fff_ffff, 0, "reserved");
        let short = name_of(&w[1..]);
        assert!(!short.is_empty() && d.name.starts_with(short.as_str()));
        if d.name.len() > 15 {
            assert_ne!(w[0] & 1 << 30, 0);
            let (st, n) = cmd(&mut s, 1, VOLTAGE_DOMAIN_NAME_GET, &[id], 68);
            assert_eq!(st, OK);
            assert_eq!(n[0], 0);
            assert_eq!(name_of(&n[1..]), d.name);
        } else {
            assert_eq!(w[0] & 1 << 30, 0);
            assert_eq!(short, d.name);
            assert_eq!(
                status(&mut s, 1, VOLTAGE_DOMAIN_NAME_GET, &[id]),
                NOT_SUPPORTED
            );
        }
        assert!(names.insert(d.name), "unique names");
    }
    s.set_p2a(1, true);
    for (id, d) in VOLTAGES.iter().enumerate() {
        let a = cmd(&mut s, 1, VOLTAGE_DOMAIN_ATTRIBUTES, &[id as u32], 20).1[0];
        assert_eq!(a >> 31 == 1, d.async_capable, "{}", d.name);
    }
    let n = VOLTAGE_COUNT as u32;
    assert_eq!(
        status(&mut s, 1, VOLTAGE_DOMAIN_ATTRIBUTES, &[n]),
        NOT_FOUND
    );
    assert_eq!(
        status(&mut s, 1, VOLTAGE_DOMAIN_ATTRIBUTES, &[0x1_0000]),
        NOT_FOUND
    );
    assert_eq!(status(&mut s, 1, VOLTAGE_DOMAIN_NAME_GET, &[n]), NOT_FOUND);
    assert_eq!(status(&mut s, 1, VOLTAGE_DOMAIN_ATTRIBUTES, &[]), PROTOCOL);
    assert_eq!(status(&mut s, 1, VOLTAGE_DOMAIN_NAME_GET, &[]), PROTOCOL);
    assert_eq!(
        cmd(&mut s, 1, VOLTAGE_DOMAIN_ATTRIBUTES, &[0], 16).0,
        GENERIC
    );
}

#[test]
fn describe_levels_in_parts_at_the_linux_limit() {
    let mut s = server();
    // 40 levels in 128 bytes: 31 then 9 (§4.9.2.6).
    let (st, w) = cmd(&mut s, 1, VOLTAGE_DESCRIBE_LEVELS, &[NPU, 0], 128);
    assert_eq!(st, OK);
    assert_eq!(w[0], 9 << 16 | 31);
    assert_eq!(w.len(), 32, "all 128 bytes");
    assert_eq!(w[1] as i32, 550_000);
    assert_eq!(w[31] as i32, 550_000 + 30 * 12_500);
    let (st, w) = cmd(&mut s, 1, VOLTAGE_DESCRIBE_LEVELS, &[NPU, 31], 128);
    assert_eq!(st, OK);
    assert_eq!(w[0], 9);
    assert_eq!(w.len(), 10);
    assert_eq!(w[9] as i32, 1_037_500);
    assert_eq!(
        status(&mut s, 1, VOLTAGE_DESCRIBE_LEVELS, &[NPU, 40]),
        OUT_OF_RANGE
    );
    assert_eq!(
        status(&mut s, 1, VOLTAGE_DESCRIBE_LEVELS, &[NPU, u32::MAX]),
        OUT_OF_RANGE
    );
    let (seg, l) = describe_all(&mut s, 1, NPU, 128);
    assert!(!seg);
    assert_eq!(l.len(), 40);
    assert!(l.windows(2).all(|p| p[0] < p[1]), "ascending");
    for rx in [8, 12, 44, 100, 124, 132, 256] {
        assert_eq!(describe_all(&mut s, 1, NPU, rx).1, l, "rx {rx}");
    }
    assert_eq!(
        cmd(&mut s, 1, VOLTAGE_DESCRIBE_LEVELS, &[NPU, 0], 4).0,
        GENERIC
    );
    assert_eq!(status(&mut s, 1, VOLTAGE_DESCRIBE_LEVELS, &[NPU]), PROTOCOL);
    assert_eq!(
        status(
            &mut s,
            1,
            VOLTAGE_DESCRIBE_LEVELS,
            &[VOLTAGE_COUNT as u32, 0]
        ),
        NOT_FOUND
    );
}

#[test]
fn describe_levels_every_domain_signed() {
    let mut s = server();
    for (id, d) in VOLTAGES.iter().enumerate() {
        let (seg, l) = describe_all(&mut s, 1, id as u32, 128);
        match d.levels {
            Levels::List(list) => {
                assert!(!seg);
                assert_eq!(l, list);
                assert!(l.windows(2).all(|p| p[0] < p[1]), "{}", d.name);
            }
            Levels::Range { min, max, step } => {
                assert!(seg);
                assert_eq!(l, [min, max, step]);
                assert!(step > 0 && (max - min) % step == 0, "{}", d.name);
            }
        }
    }
    // Negative levels come back negative, as a list and as a triplet.
    let (_, l) = describe_all(&mut s, 1, VBB_N, 128);
    assert_eq!(l[0], -400_000);
    assert_eq!(*l.last().unwrap(), 0);
    let (st, w) = cmd(&mut s, 1, VOLTAGE_DESCRIBE_LEVELS, &[VBB_P, 0], 128);
    assert_eq!(st, OK);
    assert_eq!(w, [1 << 12 | 3, (-300_000i32) as u32, 300_000, 25_000]);
    assert_eq!(
        status(&mut s, 1, VOLTAGE_DESCRIBE_LEVELS, &[VBB_P, 1]),
        OUT_OF_RANGE
    );
    // A triplet needs 16 bytes.
    assert_eq!(
        cmd(&mut s, 1, VOLTAGE_DESCRIBE_LEVELS, &[CPU, 0], 12).0,
        GENERIC
    );
}

#[test]
fn every_level_read_back_is_advertised() {
    // scmi-regulator maps LEVEL_GET back to a selector: exact match needed.
    let mut s = server();
    for (id, d) in VOLTAGES.iter().enumerate() {
        let l = level(&mut s, 1, id as u32);
        assert!(d.levels.contains(l), "{} at {l}", d.name);
    }
}

#[test]
fn level_set_sticks() {
    let mut s = server();
    assert_eq!(level(&mut s, 1, CPU), 900_000);
    assert_eq!(set_level(&mut s, 1, CPU, 0, 1_000_000), OK);
    assert_eq!(level(&mut s, 1, CPU), 1_000_000);
    assert_eq!(set_level(&mut s, 1, CPU, 0, 606_250), OK);
    assert_eq!(level(&mut s, 1, CPU), 606_250);
    assert_eq!(set_level(&mut s, 1, NPU, 0, 1_037_500), OK);
    assert_eq!(level(&mut s, 1, NPU), 1_037_500);
    assert_eq!(s.platform.voltage.level(NPU), Some(1_037_500));
    // Signed µV.
    assert_eq!(set_level(&mut s, 1, VBB_N, 0, -250_000), OK);
    assert_eq!(level(&mut s, 1, VBB_N), -250_000);
    assert_eq!(set_level(&mut s, 1, VBB_P, 0, -300_000), OK);
    assert_eq!(level(&mut s, 1, VBB_P), -300_000);
    assert_eq!(set_level(&mut s, 1, VBB_P, 0, 275_000), OK);
    assert_eq!(level(&mut s, 1, VBB_P), 275_000);
    // A domain that is off keeps its level.
    assert_eq!(config(&mut s, 1, SDIO), MODE_OFF);
    assert_eq!(set_level(&mut s, 1, SDIO, 0, 1_800_000), OK);
    assert_eq!(level(&mut s, 1, SDIO), 1_800_000);
    // §4.9.2.9: levels the domain does not have, reserved flags.
    for (d, uv) in [
        (CPU, 1_000_001),
        (CPU, 593_750),
        (CPU, 1_306_250),
        (DDR, 1_000_000),
        (ANALOG, 0),
        (VBB_N, 50_000),
        (VBB_P, -310_000),
        (VBB_P, i32::MIN),
        (VBB_P, i32::MAX),
    ] {
        assert_eq!(set_level(&mut s, 1, d, 0, uv), INVALID, "{d} {uv}");
    }
    assert_eq!(set_level(&mut s, 1, CPU, 2, 900_000), INVALID);
    assert_eq!(set_level(&mut s, 1, CPU, 1 << 31, 900_000), INVALID);
    assert_eq!(level(&mut s, 1, CPU), 606_250, "unchanged by failures");
    assert_eq!(set_level(&mut s, 1, VOLTAGE_COUNT as u32, 0, 0), NOT_FOUND);
    assert_eq!(status(&mut s, 1, VOLTAGE_LEVEL_SET, &[CPU, 0]), PROTOCOL);
    assert_eq!(status(&mut s, 1, VOLTAGE_LEVEL_GET, &[]), PROTOCOL);
    assert_eq!(
        status(&mut s, 1, VOLTAGE_LEVEL_GET, &[VOLTAGE_COUNT as u32]),
        NOT_FOUND
    );
    assert_eq!(cmd(&mut s, 1, VOLTAGE_LEVEL_GET, &[CPU], 0).0, GENERIC);
    // No P2A channel: no asynchronous sets.
    assert_eq!(set_level(&mut s, 1, CPU, 1, 900_000), NOT_SUPPORTED);
    assert_eq!(level(&mut s, 1, CPU), 606_250);
}

#[test]
fn async_level_set_answers_late() {
    let mut s = p2a_server();
    assert_eq!(set_level(&mut s, 1, CPU, 1, 1_100_000), OK);
    assert_eq!(level(&mut s, 1, CPU), 1_100_000);
    // VOLTAGE_LEVEL_SET_COMPLETE: status, domain_id, level.
    let (h, w) = event(&mut s, 1).expect("delayed response");
    assert_eq!(h.msg_type, MsgType::DelayedResponse);
    assert_eq!(
        (h.protocol, h.msg_id, h.token),
        (ID, VOLTAGE_LEVEL_SET, 0x155)
    );
    assert_eq!(w, [0, CPU, 1_100_000]);
    assert!(event(&mut s, 1).is_none());
    // A domain without async support.
    assert_eq!(set_level(&mut s, 1, DDR, 1, 1_200_000), NOT_SUPPORTED);
    assert_eq!(level(&mut s, 1, DDR), 1_100_000);
    // A refused async request queues nothing.
    assert_eq!(set_level(&mut s, 1, CPU, 1, 1), INVALID);
    assert!(!s.has_event(1));
    // Outbox (agent 1's share of it) full: BUSY, nothing set.
    let share = s.outbox().free_for(1) as i32;
    for i in 0..share {
        assert_eq!(set_level(&mut s, 1, NPU, 1, 550_000 + 12_500 * i), OK);
    }
    assert_eq!(s.outbox().free_for(1), 0);
    assert_eq!(set_level(&mut s, 1, NPU, 1, 1_000_000), BUSY);
    assert_eq!(level(&mut s, 1, NPU), 550_000 + 12_500 * (share - 1));
    // Synchronous sets do not need the outbox.
    assert_eq!(set_level(&mut s, 1, NPU, 0, 1_000_000), OK);
    for i in 0..share {
        let (h, w) = event(&mut s, 1).unwrap();
        assert_eq!(h.msg_type, MsgType::DelayedResponse);
        assert_eq!(w, [0, NPU, (550_000 + 12_500 * i) as u32]);
    }
    assert!(event(&mut s, 1).is_none());
}

#[test]
fn config_set_and_get() {
    let mut s = server();
    assert_eq!(config(&mut s, 1, CPU), MODE_ON);
    assert_eq!(config(&mut s, 1, GPU), MODE_OFF);
    assert_eq!(status(&mut s, 1, VOLTAGE_CONFIG_SET, &[GPU, MODE_ON]), OK);
    assert_eq!(config(&mut s, 1, GPU), MODE_ON);
    assert_eq!(s.platform.voltage.powered(GPU), Some(true));
    assert_eq!(status(&mut s, 1, VOLTAGE_CONFIG_SET, &[GPU, MODE_OFF]), OK);
    assert_eq!(config(&mut s, 1, GPU), MODE_OFF);
    assert_eq!(s.platform.voltage.powered(GPU), Some(false));
    // Implementation-defined modes where the domain has them.
    assert_eq!(
        status(&mut s, 1, VOLTAGE_CONFIG_SET, &[SOC, MODE_ON_PFM]),
        OK
    );
    assert_eq!(config(&mut s, 1, SOC), MODE_ON_PFM);
    assert_ne!(config(&mut s, 1, SOC) & 0x7, 0, "Linux: enabled");
    assert_eq!(
        status(&mut s, 1, VOLTAGE_CONFIG_SET, &[SOC, MODE_RETENTION]),
        OK
    );
    assert_eq!(config(&mut s, 1, SOC) & 0x7, 0, "Linux: disabled");
    assert_eq!(status(&mut s, 1, VOLTAGE_CONFIG_SET, &[SOC, 0xa]), INVALID);
    assert_eq!(
        status(&mut s, 1, VOLTAGE_CONFIG_SET, &[GPU, MODE_ON_PFM]),
        INVALID
    );
    // §4.9.2.7: reserved architectural ids and reserved bits.
    for c in [1u32, 2, 3, 4, 5, 6, 0x10, 0x17, 1 << 31] {
        assert_eq!(
            status(&mut s, 1, VOLTAGE_CONFIG_SET, &[GPU, c]),
            INVALID,
            "{c:#x}"
        );
    }
    assert_eq!(config(&mut s, 1, GPU), MODE_OFF);
    assert_eq!(
        status(&mut s, 1, VOLTAGE_CONFIG_SET, &[VOLTAGE_COUNT as u32, 7]),
        NOT_FOUND
    );
    assert_eq!(status(&mut s, 1, VOLTAGE_CONFIG_SET, &[GPU]), PROTOCOL);
    assert_eq!(
        status(&mut s, 1, VOLTAGE_CONFIG_GET, &[VOLTAGE_COUNT as u32]),
        NOT_FOUND
    );
    assert_eq!(status(&mut s, 1, VOLTAGE_CONFIG_GET, &[]), PROTOCOL);
    assert_eq!(cmd(&mut s, 1, VOLTAGE_CONFIG_GET, &[GPU], 0).0, GENERIC);
}

#[test]
fn agents_see_only_their_domains() {
    let mut s = p2a_server();
    let probes: [(u8, &[u32]); 7] = [
        (VOLTAGE_DOMAIN_ATTRIBUTES, &[GPU]),
        (VOLTAGE_DESCRIBE_LEVELS, &[GPU, 0]),
        (VOLTAGE_CONFIG_SET, &[GPU, MODE_ON]),
        (VOLTAGE_CONFIG_GET, &[GPU]),
        (VOLTAGE_LEVEL_SET, &[GPU, 0, 600_000]),
        (VOLTAGE_LEVEL_GET, &[GPU]),
        (VOLTAGE_DOMAIN_NAME_GET, &[GPU]),
    ];
    for (msg, args) in probes {
        assert_eq!(status(&mut s, 2, msg, args), NOT_FOUND, "msg {msg}");
    }
    assert_eq!(
        s.platform.voltage.level(GPU),
        Some(800_000),
        "agent 2 changed nothing"
    );
    assert_eq!(s.platform.voltage.config(GPU), Some(MODE_OFF));
    assert!(!s.has_event(2));
    assert_eq!(set_level(&mut s, 1, GPU, 0, 600_000), OK);
    assert_eq!(level(&mut s, 1, GPU), 600_000);
    assert_eq!(cmd(&mut s, 2, 0x1, &[], 4).1, [VOLTAGE_COUNT as u32]);
    // Losing a device hides its domains.
    assert_eq!(config(&mut s, 2, SDIO), MODE_OFF);
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
    assert_eq!(status(&mut s, 2, VOLTAGE_CONFIG_GET, &[SDIO]), NOT_FOUND);
    assert_eq!(status(&mut s, 1, VOLTAGE_CONFIG_GET, &[SDIO]), OK);
}

#[test]
fn reset_agent_reverts_only_that_agents_settings() {
    let mut s = server();
    assert_eq!(set_level(&mut s, 2, CPU, 0, 1_200_000), OK);
    assert_eq!(
        status(&mut s, 2, VOLTAGE_CONFIG_SET, &[SOC, MODE_RETENTION]),
        OK
    );
    assert_eq!(set_level(&mut s, 1, NPU, 0, 600_000), OK);
    assert_eq!(status(&mut s, 1, VOLTAGE_CONFIG_SET, &[NPU, MODE_ON]), OK);
    // Agent 1 overrides one of agent 2's settings.
    assert_eq!(set_level(&mut s, 2, DDR, 0, 1_350_000), OK);
    assert_eq!(set_level(&mut s, 1, DDR, 0, 1_200_000), OK);
    let changes = s.platform.voltage.level_changes(CPU).unwrap();
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
    assert_eq!(level(&mut s, 1, CPU), 900_000);
    assert_eq!(s.platform.voltage.level_changes(CPU), Some(changes + 1));
    assert_eq!(config(&mut s, 1, SOC), MODE_ON);
    assert_eq!(level(&mut s, 1, NPU), 600_000);
    assert_eq!(config(&mut s, 1, NPU), MODE_ON);
    assert_eq!(level(&mut s, 1, DDR), 1_200_000);
}

#[test]
fn arbitrary_requests_never_panic() {
    let mut s = p2a_server();
    let mut x: u64 = 0x5eed_1234_abcd_9876;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let msg = (next() % 0x12) as u8;
        let n = (next() % 5) as usize;
        let args: Vec<u32> = (0..n)
            .map(|_| match next() % 4 {
                0 => (next() % 12) as u32,
                1 => (next() % 45) as u32,
                2 => (550_000 + 12_500 * (next() % 40)) as u32,
                _ => next() as u32,
            })
            .collect();
        let rx = [0usize, 4, 8, 12, 16, 20, 64, 68, 128][(next() % 9) as usize];
        let agent = 1 + (next() % 2) as u32;
        let (st, p) = call(&mut s, agent, ID, msg, &args, rx);
        assert!((-11..=0).contains(&st));
        assert!(p.len() <= rx);
        while event(&mut s, agent).is_some() {}
    }
}
