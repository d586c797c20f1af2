//! Tests of the reset protocol against the simulated platform.

extern crate std;
use std::collections::BTreeSet;
use std::vec::Vec;

use super::{call, event, words};
use platform_host_vhost_user as builtin;
use platform_sim::reset::ResetEvent;

static RESETS: &[ResetDesc] = builtin::TABLES.reset.resets;
const RESET_COUNT: usize = builtin::TABLES.reset.resets.len();
/// The manifest's implementation-defined reset 1 (a warm reset).
const IMPL_WARM: u32 = 1;
/// The manifest's implementation-defined reset 2 (a PCIe hot reset).
const IMPL_HOT: u32 = 2;
use scmi_server::config::{AgentConfig, Config, DeviceConfig};
use scmi_server::header::{MsgType, Status};
use scmi_server::protocols::base;
use scmi_server::protocols::reset::*;
use scmi_server::server::Server;

const ALL: u32 = 0xff;
const UART0: u32 = 0;
const I2C0: u32 = 1;
const GPU: u32 = 2;
const USB: u32 = 3;
const PCIE: u32 = 4;
const ETH: u32 = 6;
const SDMMC: u32 = 8;

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
            name: "io",
            resources: &[(ID, UART0), (ID, SDMMC)],
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
    let (st, w) = cmd(s, agent, msg, args, 128);
    if msg == RESET || msg == RESET_NOTIFY {
        assert!(w.is_empty(), "status only");
    }
    st
}

fn reset(s: &mut S, agent: u32, dom: u32, flags: u32, state: u32) -> i32 {
    status(s, agent, RESET, &[dom, flags, state])
}

const OK: i32 = 0;
const NOT_SUPPORTED: i32 = Status::NotSupported.code();
const INVALID: i32 = Status::InvalidParameters.code();
const NOT_FOUND: i32 = Status::NotFound.code();
const BUSY: i32 = Status::Busy.code();
const GENERIC: i32 = Status::GenericError.code();
const PROTOCOL: i32 = Status::ProtocolError.code();

fn name_of(bytes: &[u32]) -> std::string::String {
    let b: Vec<u8> = bytes.iter().flat_map(|w| w.to_le_bytes()).collect();
    let end = b.iter().position(|&c| c == 0).expect("NUL-terminated");
    std::string::String::from_utf8(b[..end].to_vec()).unwrap()
}

fn cycles(s: &S, dom: u32) -> u32 {
    s.platform.reset.domain(dom).unwrap().cycles
}

#[test]
fn version_attributes_and_messages() {
    let mut s = server();
    assert_eq!(cmd(&mut s, 1, 0x0, &[], 4), (OK, std::vec![0x0003_0001]));
    assert_eq!(
        cmd(&mut s, 1, 0x1, &[], 4),
        (OK, std::vec![RESET_COUNT as u32])
    );
    const { assert!(RESET_COUNT >= 8) };
    for id in [0u32, 1, 2, 3, 4, 6, 0x10] {
        assert_eq!(cmd(&mut s, 1, 0x2, &[id], 4), (OK, std::vec![0]), "id {id}");
    }
    // RESET_NOTIFY needs a P2A channel.
    assert_eq!(cmd(&mut s, 1, 0x2, &[5], 4).0, NOT_SUPPORTED);
    for id in [7u32, 0xf, 0x11, 0x100] {
        assert_eq!(cmd(&mut s, 1, 0x2, &[id], 4).0, NOT_FOUND);
    }
    s.set_p2a(1, true);
    assert_eq!(cmd(&mut s, 1, 0x2, &[5], 4), (OK, std::vec![0]));
    assert_eq!(status(&mut s, 1, 0x7, &[0, 0, 0]), NOT_FOUND);
    assert_eq!(status(&mut s, 1, 0xff, &[]), NOT_FOUND);
    // Linux 6.12 supports 3.1; a 3.0 agent may negotiate.
    assert_eq!(status(&mut s, 1, 0x10, &[0x0003_0000]), OK);
    assert_eq!(status(&mut s, 1, 0x10, &[0x0003_0002]), NOT_SUPPORTED);
    assert_eq!(status(&mut s, 1, 0x10, &[0x0002_0000]), NOT_SUPPORTED);
}

#[test]
fn domain_attributes_and_names() {
    let mut s = server();
    let mut names = BTreeSet::new();
    for (id, d) in RESETS.iter().enumerate() {
        let id = id as u32;
        // Linux's rx_size is 24: attributes, latency, name[16].
        let (st, w) = cmd(&mut s, 1, RESET_DOMAIN_ATTRIBUTES, &[id], 24);
        assert_eq!(st, OK);
        assert_eq!(w.len(), 6);
        assert_eq!(w[0] >> 30, 0, "no async or notify bits without P2A");
        assert_eq!(w[0] & 0x1fff_ffff, 0, "reserved");
        assert_eq!(w[1], d.latency_us);
        let short = name_of(&w[2..]);
        assert!(!short.is_empty() && d.name.starts_with(short.as_str()));
        if d.name.len() > 15 {
            assert_ne!(w[0] & 1 << 29, 0);
            assert_eq!(short.len(), 15);
            let (st, n) = cmd(&mut s, 1, RESET_DOMAIN_NAME_GET, &[id], 68);
            assert_eq!(st, OK);
            assert_eq!(n[0], 0);
            assert_eq!(name_of(&n[1..]), d.name);
        } else {
            assert_eq!(w[0] & 1 << 29, 0);
            assert_eq!(short, d.name);
            assert_eq!(
                status(&mut s, 1, RESET_DOMAIN_NAME_GET, &[id]),
                NOT_SUPPORTED
            );
        }
        assert!(names.insert(d.name));
    }
    // "not reported" latency.
    assert_eq!(
        cmd(&mut s, 1, RESET_DOMAIN_ATTRIBUTES, &[PCIE], 24).1[1],
        u32::MAX
    );
    s.set_p2a(1, true);
    for (id, d) in RESETS.iter().enumerate() {
        let a = cmd(&mut s, 1, RESET_DOMAIN_ATTRIBUTES, &[id as u32], 24).1[0];
        assert_eq!(a >> 31 == 1, d.async_capable, "{}", d.name);
        assert_eq!(a >> 30 & 1 == 1, d.notify, "{}", d.name);
    }
    let n = RESET_COUNT as u32;
    assert_eq!(status(&mut s, 1, RESET_DOMAIN_ATTRIBUTES, &[n]), NOT_FOUND);
    assert_eq!(status(&mut s, 1, RESET_DOMAIN_NAME_GET, &[n]), NOT_FOUND);
    assert_eq!(status(&mut s, 1, RESET_DOMAIN_ATTRIBUTES, &[]), PROTOCOL);
    assert_eq!(status(&mut s, 1, RESET_DOMAIN_NAME_GET, &[]), PROTOCOL);
    assert_eq!(cmd(&mut s, 1, RESET_DOMAIN_ATTRIBUTES, &[0], 20).0, GENERIC);
    assert_eq!(cmd(&mut s, 1, RESET_DOMAIN_NAME_GET, &[USB], 64).0, GENERIC);
}

#[test]
fn autonomous_reset_is_counted_and_logged() {
    let mut s = server();
    assert_eq!(cycles(&s, UART0), 0);
    // Linux's reset(): flags 0x1, architectural cold reset.
    assert_eq!(
        reset(&mut s, 1, UART0, FLAG_AUTONOMOUS, ARCH_COLD_RESET),
        OK
    );
    assert_eq!(
        reset(&mut s, 2, UART0, FLAG_AUTONOMOUS, ARCH_COLD_RESET),
        OK
    );
    let d = s.platform.reset.domain(UART0).unwrap();
    assert_eq!((d.cycles, d.asserts, d.deasserts, d.logged), (2, 0, 0, 2));
    assert!(!d.asserted());
    assert_eq!(
        d.recent(0),
        Some(ResetEvent {
            agent: 2,
            op: ResetOp::Cycle,
            state: 0
        })
    );
    assert_eq!(d.recent(1).unwrap().agent, 1);
    assert_eq!(d.recent(2), None);
    // Other domains untouched.
    assert_eq!(cycles(&s, I2C0), 0);
    // An implementation-defined reset the domain supports.
    assert_eq!(
        reset(&mut s, 1, PCIE, FLAG_AUTONOMOUS, STATE_IMPL | IMPL_HOT),
        OK
    );
    let d = s.platform.reset.domain(PCIE).unwrap();
    assert_eq!(d.recent(0).unwrap().state, STATE_IMPL | IMPL_HOT);
    // The log keeps the most recent operations.
    for _ in 0..20 {
        assert_eq!(reset(&mut s, 1, I2C0, FLAG_AUTONOMOUS, 0), OK);
    }
    let d = s.platform.reset.domain(I2C0).unwrap();
    assert_eq!((d.cycles, d.logged), (20, 20));
    assert!(d.recent(7).is_some() && d.recent(8).is_none());
}

#[test]
fn explicit_assert_holds_until_every_holder_releases() {
    let mut s = server();
    // assert(): 0x2, deassert(): 0x0.
    assert_eq!(reset(&mut s, 1, SDMMC, FLAG_ASSERT, 0), OK);
    assert!(s.platform.reset.domain(SDMMC).unwrap().asserted());
    assert_eq!(reset(&mut s, 2, SDMMC, FLAG_ASSERT, 0), OK);
    assert_eq!(reset(&mut s, 1, SDMMC, 0, 0), OK);
    let d = s.platform.reset.domain(SDMMC).unwrap();
    assert!(d.asserted(), "agent 2 still holds it");
    assert_eq!(d.held, 0b10);
    // An autonomous pulse does not release a held line.
    assert_eq!(reset(&mut s, 1, SDMMC, FLAG_AUTONOMOUS, 0), OK);
    assert!(s.platform.reset.domain(SDMMC).unwrap().asserted());
    assert_eq!(reset(&mut s, 2, SDMMC, 0, 0), OK);
    let d = s.platform.reset.domain(SDMMC).unwrap();
    assert!(!d.asserted());
    assert_eq!((d.asserts, d.deasserts, d.cycles), (2, 2, 1));
    // [2] without [0] is ignored: explicit operations complete at once.
    assert_eq!(reset(&mut s, 1, SDMMC, FLAG_ASSERT | FLAG_ASYNC, 0), OK);
    assert!(s.platform.reset.domain(SDMMC).unwrap().asserted());
    assert!(!s.has_event(1));
}

#[test]
fn reset_errors() {
    let mut s = server();
    // §4.8.2.6: reserved flags (scmi-tests uses 0xF8), reserved
    // architectural ids, implementation-defined ids the domain lacks.
    assert_eq!(reset(&mut s, 1, UART0, 0xf8 | FLAG_AUTONOMOUS, 0), INVALID);
    assert_eq!(reset(&mut s, 1, UART0, 1 << 31, 0), INVALID);
    assert_eq!(reset(&mut s, 1, UART0, FLAG_AUTONOMOUS, 0xff), INVALID);
    assert_eq!(reset(&mut s, 1, UART0, FLAG_AUTONOMOUS, 1), INVALID);
    assert_eq!(
        reset(&mut s, 1, UART0, FLAG_AUTONOMOUS, STATE_IMPL | IMPL_WARM),
        INVALID
    );
    assert_eq!(
        reset(&mut s, 1, GPU, FLAG_AUTONOMOUS, STATE_IMPL | IMPL_HOT),
        INVALID
    );
    assert_eq!(
        reset(&mut s, 1, GPU, FLAG_AUTONOMOUS, STATE_IMPL | IMPL_WARM),
        OK
    );
    assert_eq!(
        reset(&mut s, 1, RESET_COUNT as u32, FLAG_AUTONOMOUS, 0),
        NOT_FOUND
    );
    assert_eq!(reset(&mut s, 1, u32::MAX, FLAG_AUTONOMOUS, 0), NOT_FOUND);
    assert_eq!(
        status(&mut s, 1, RESET, &[UART0, FLAG_AUTONOMOUS]),
        PROTOCOL
    );
    assert_eq!(cycles(&s, UART0), 0, "nothing refused was done");
    // No P2A channel: no asynchronous resets, even where supported.
    assert_eq!(
        reset(&mut s, 1, GPU, FLAG_AUTONOMOUS | FLAG_ASYNC, 0),
        NOT_SUPPORTED
    );
    assert_eq!(cycles(&s, GPU), 1);
}

#[test]
fn async_reset_completes_with_a_delayed_response() {
    let mut s = p2a_server();
    // Linux's reset() on an async domain: 0x5, then waits for RESET_COMPLETE.
    assert_eq!(
        call(
            &mut s,
            1,
            ID,
            RESET,
            &[GPU, FLAG_AUTONOMOUS | FLAG_ASYNC, 0],
            0
        ),
        (OK, std::vec![])
    );
    assert_eq!(cycles(&s, GPU), 1);
    let (h, w) = event(&mut s, 1).expect("RESET_COMPLETE");
    assert_eq!(h.msg_type, MsgType::DelayedResponse);
    assert_eq!((h.protocol, h.msg_id, h.token), (ID, RESET, 0x155));
    assert_eq!(w, [0, GPU], "status, domain_id");
    assert!(event(&mut s, 1).is_none());
    // A domain without async support.
    assert_eq!(
        reset(&mut s, 1, UART0, FLAG_AUTONOMOUS | FLAG_ASYNC, 0),
        NOT_SUPPORTED
    );
    assert_eq!(cycles(&s, UART0), 0);
    // Outbox (agent 1's share of it) full: BUSY, and nothing done.
    let share = s.outbox().free_for(1);
    for _ in 0..share {
        assert_eq!(reset(&mut s, 1, USB, FLAG_AUTONOMOUS | FLAG_ASYNC, 0), OK);
    }
    assert_eq!(s.outbox().free_for(1), 0);
    assert_eq!(reset(&mut s, 1, USB, FLAG_AUTONOMOUS | FLAG_ASYNC, 0), BUSY);
    assert_eq!(cycles(&s, USB), share as u32);
    // Synchronous resets still work.
    assert_eq!(reset(&mut s, 1, USB, FLAG_AUTONOMOUS, 0), OK);
    assert_eq!(cycles(&s, USB), share as u32 + 1);
    for _ in 0..share {
        let (h, w) = event(&mut s, 1).unwrap();
        assert_eq!((h.msg_type, w[1]), (MsgType::DelayedResponse, USB));
    }
    assert!(event(&mut s, 1).is_none());
}

#[test]
fn reset_issued_notifications() {
    let mut s = p2a_server();
    assert_eq!(status(&mut s, 1, RESET_NOTIFY, &[SDMMC, 1]), OK);
    // Agent 2 resets the domain; agent 1 hears about it (12 bytes).
    assert_eq!(reset(&mut s, 2, SDMMC, FLAG_AUTONOMOUS, 0), OK);
    assert!(!s.has_event(2));
    let (h, w) = event(&mut s, 1).unwrap();
    assert_eq!(h.msg_type, MsgType::Notification);
    assert_eq!((h.protocol, h.msg_id), (ID, RESET_ISSUED));
    assert_eq!(w, [2, SDMMC, 0]);
    // Asserting resets too; de-asserting does not.
    assert_eq!(reset(&mut s, 2, SDMMC, FLAG_ASSERT, 0), OK);
    assert_eq!(event(&mut s, 1).unwrap().1, [2, SDMMC, 0]);
    assert_eq!(reset(&mut s, 2, SDMMC, 0, 0), OK);
    assert!(event(&mut s, 1).is_none());
    // Other domains are not subscribed.
    assert_eq!(reset(&mut s, 2, UART0, FLAG_AUTONOMOUS, 0), OK);
    assert!(event(&mut s, 1).is_none());
    // Async: the delayed response first, then the notification; the
    // implementation-defined state is reported.
    assert_eq!(status(&mut s, 1, RESET_NOTIFY, &[PCIE, 1]), OK);
    assert_eq!(
        reset(
            &mut s,
            1,
            PCIE,
            FLAG_AUTONOMOUS | FLAG_ASYNC,
            STATE_IMPL | IMPL_WARM
        ),
        OK
    );
    assert_eq!(
        event(&mut s, 1).unwrap().0.msg_type,
        MsgType::DelayedResponse
    );
    let (h, w) = event(&mut s, 1).unwrap();
    assert_eq!(h.msg_type, MsgType::Notification);
    assert_eq!(w, [1, PCIE, STATE_IMPL | IMPL_WARM]);
    // Unsubscribe.
    assert_eq!(status(&mut s, 1, RESET_NOTIFY, &[SDMMC, 0]), OK);
    assert_eq!(reset(&mut s, 2, SDMMC, FLAG_AUTONOMOUS, 0), OK);
    assert!(event(&mut s, 1).is_none());
    // Errors: reserved bits, a domain without notifications, unknown
    // domain, short payload.
    assert_eq!(status(&mut s, 1, RESET_NOTIFY, &[SDMMC, 3]), INVALID);
    assert_eq!(status(&mut s, 1, RESET_NOTIFY, &[ETH, 1]), NOT_SUPPORTED);
    assert_eq!(
        status(&mut s, 1, RESET_NOTIFY, &[RESET_COUNT as u32, 1]),
        NOT_FOUND
    );
    assert_eq!(status(&mut s, 1, RESET_NOTIFY, &[SDMMC]), PROTOCOL);
    // Without a P2A channel.
    s.set_p2a(1, false);
    assert_eq!(status(&mut s, 1, RESET_NOTIFY, &[SDMMC, 1]), NOT_SUPPORTED);
}

#[test]
fn agents_see_only_their_domains() {
    let mut s = p2a_server();
    let probes: [(u8, &[u32]); 4] = [
        (RESET_DOMAIN_ATTRIBUTES, &[GPU]),
        (RESET, &[GPU, FLAG_AUTONOMOUS, 0]),
        (RESET_NOTIFY, &[GPU, 1]),
        (RESET_DOMAIN_NAME_GET, &[GPU]),
    ];
    for (msg, args) in probes {
        assert_eq!(status(&mut s, 2, msg, args), NOT_FOUND, "msg {msg}");
    }
    assert_eq!(cycles(&s, GPU), 0, "agent 2 could not reset the GPU");
    assert_eq!(status(&mut s, 1, RESET_DOMAIN_ATTRIBUTES, &[GPU]), OK);
    assert_eq!(reset(&mut s, 1, GPU, FLAG_AUTONOMOUS, 0), OK);
    assert_eq!(cycles(&s, GPU), 1);
    assert_eq!(cmd(&mut s, 2, 0x1, &[], 4).1, [RESET_COUNT as u32]);
    // Agent 2 subscribed to a domain it then loses: no more notifications.
    assert_eq!(status(&mut s, 2, RESET_NOTIFY, &[SDMMC, 1]), OK);
    assert_eq!(reset(&mut s, 1, SDMMC, FLAG_AUTONOMOUS, 0), OK);
    assert_eq!(event(&mut s, 2).unwrap().1, [1, SDMMC, 0]);
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
    assert_eq!(reset(&mut s, 1, SDMMC, FLAG_AUTONOMOUS, 0), OK);
    assert!(!s.has_event(2));
    assert_eq!(reset(&mut s, 2, SDMMC, FLAG_AUTONOMOUS, 0), NOT_FOUND);
}

#[test]
fn reset_agent_releases_its_holds() {
    let mut s = server();
    assert_eq!(reset(&mut s, 2, UART0, FLAG_ASSERT, 0), OK);
    assert_eq!(reset(&mut s, 2, I2C0, FLAG_ASSERT, 0), OK);
    assert_eq!(reset(&mut s, 1, I2C0, FLAG_ASSERT, 0), OK);
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
    let d = s.platform.reset.domain(UART0).unwrap();
    assert!(!d.asserted());
    assert_eq!(
        d.recent(0),
        Some(ResetEvent {
            agent: 0,
            op: ResetOp::Deassert,
            state: 0
        }),
        "released by the platform"
    );
    // Agent 1's hold stays.
    let d = s.platform.reset.domain(I2C0).unwrap();
    assert!(d.asserted());
    assert_eq!(d.held, 0b01);
}

#[test]
fn arbitrary_requests_never_panic() {
    let mut s = p2a_server();
    let mut x: u64 = 0x0bad_cafe_dead_beef;
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
                1 => (next() % 8) as u32,
                2 => (next() as u32) & 0x8000_0003,
                _ => next() as u32,
            })
            .collect();
        let rx = [0usize, 4, 8, 20, 24, 64, 68, 128][(next() % 8) as usize];
        let agent = 1 + (next() % 2) as u32;
        let (st, p) = call(&mut s, agent, ID, msg, &args, rx);
        assert!((-11..=0).contains(&st));
        assert!(p.len() <= rx);
        while event(&mut s, agent).is_some() {}
    }
}
