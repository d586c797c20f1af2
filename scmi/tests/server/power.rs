//! Tests of the power domain protocol against the simulated platform.

extern crate std;
use std::vec::Vec;

use super::{call, event, words};
use platform_host_vhost_user as builtin;

static DOMAINS: &[PowerDomain] = builtin::TABLES.power.domains;
static BOOT: &[u32] = builtin::TABLES.power.boot;
use scmi_server::config::{AgentConfig, Config, DeviceConfig};
use scmi_server::header::{MsgType, Status};
use scmi_server::protocols::base;
use scmi_server::protocols::power::*;
use scmi_server::server::Server;

const P: u8 = ID;

/// Agent 1 sees everything; agent 2 does not see the "media" device
/// (domains 3 and 5) until it is granted.
static VIS: Config = Config {
    vendor: "rust-scmi",
    sub_vendor: "sim",
    implementation_version: 1,
    agents: &[
        AgentConfig {
            name: "linux",
            trusted: true,
            protocols: 0xff,
            devices: 0b1,
        },
        AgentConfig {
            name: "rtos",
            trusted: false,
            protocols: 0xff,
            devices: 0,
        },
        AgentConfig {
            name: "no-power",
            trusted: false,
            protocols: 0xff & !0b10,
            devices: 0,
        },
    ],
    devices: &[DeviceConfig {
        name: "media",
        resources: &[(0x11, 3), (0x11, 5)],
    }],
};

type S = Server<builtin::Platform, 3, 8>;

fn server() -> S {
    Server::new(&VIS, builtin::PLATFORM)
}

fn st(s: Status) -> i32 {
    s.code()
}

fn get(s: &mut S, agent: u32, d: u32) -> u32 {
    let (status, v) = call(s, agent, P, STATE_GET, &[d], 4);
    assert_eq!(status, 0);
    words(&v)[0]
}

fn set(s: &mut S, agent: u32, flags: u32, d: u32, state: u32) -> i32 {
    call(s, agent, P, STATE_SET, &[flags, d, state], 0).0
}

#[test]
fn version_and_protocol_attributes() {
    let mut s = server();
    let (status, v) = call(&mut s, 1, P, 0x0, &[], 4);
    assert_eq!((status, words(&v)), (0, std::vec![0x0003_0001]));
    // SCMI v3.2 §4.3.2.3: domains in [15:0], no statistics region. Linux
    // reads 16 bytes.
    let (status, v) = call(&mut s, 1, P, 0x1, &[], 16);
    assert_eq!(status, 0);
    assert_eq!(words(&v), [DOMAINS.len() as u32, 0, 0, 0]);
    // The agent without the power protocol does not get it at all.
    assert_eq!(call(&mut s, 3, P, 0x1, &[], 16).0, st(Status::NotSupported));
    // The protocol is listed by Base.
    let (status, v) = call(&mut s, 1, 0x10, base::DISCOVER_LIST_PROTOCOLS, &[0], 128);
    assert_eq!(status, 0);
    let n = words(&v)[0] as usize;
    assert!(v[4..4 + n].contains(&P));
}

#[test]
fn message_attributes_follow_the_p2a_channel() {
    let mut s = server();
    for m in [0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x8, 0x10] {
        let (status, v) = call(&mut s, 1, P, 0x2, &[m], 4);
        assert_eq!((status, words(&v)), (0, std::vec![0]), "message {m:#x}");
    }
    // Without a P2A channel the notify commands are not supported.
    for m in [STATE_NOTIFY, STATE_CHANGE_REQUESTED_NOTIFY] {
        let r = call(&mut s, 1, P, 0x2, &[u32::from(m)], 4).0;
        assert_eq!(r, st(Status::NotSupported));
    }
    s.set_p2a(1, true);
    for m in [STATE_NOTIFY, STATE_CHANGE_REQUESTED_NOTIFY] {
        assert_eq!(call(&mut s, 1, P, 0x2, &[u32::from(m)], 4).0, 0);
    }
    for m in [0x9, 0xf, 0x11, 0x40, 0x100, u32::MAX] {
        let r = call(&mut s, 1, P, 0x2, &[m], 4).0;
        assert_eq!(r, st(Status::NotFound), "message {m:#x}");
    }
    // Unknown commands sent directly.
    for m in [0x9, 0xA, 0x3f, 0xff] {
        assert_eq!(
            call(&mut s, 1, P, m, &[0, 0, 0], 16).0,
            st(Status::NotFound)
        );
    }
}

#[test]
fn domain_attributes_and_names() {
    let mut s = server();
    let mut names = Vec::new();
    for p2a in [false, true] {
        s.set_p2a(1, p2a);
        for (i, d) in DOMAINS.iter().enumerate() {
            let (status, v) = call(&mut s, 1, P, DOMAIN_ATTRIBUTES, &[i as u32], 20);
            assert_eq!(status, 0);
            assert_eq!(v.len(), 20, "flags + name[16]");
            let flags = words(&v[..4])[0];
            assert_eq!(flags & (1 << 29) != 0, d.sync_set);
            assert_eq!(flags & (1 << 31) != 0, p2a && d.notify_changed);
            assert_eq!(flags & (1 << 30) != 0, p2a && d.async_set);
            assert_eq!(flags & (1 << 28) != 0, p2a && d.notify_requested);
            assert_eq!(flags & (1 << 27) != 0, d.name.len() > 15);
            assert_eq!(flags & 0x07ff_ffff, 0, "reserved bits");
            // Short name: first 15 characters, NUL-terminated.
            let short = &d.name[..d.name.len().min(15)];
            assert_eq!(&v[4..4 + short.len()], short.as_bytes());
            assert!(v[4 + short.len()..].iter().all(|&b| b == 0));
            // Extended name.
            let (status, n) = call(&mut s, 1, P, DOMAIN_NAME_GET, &[i as u32], 68);
            if d.name.len() > 15 {
                assert_eq!(status, 0);
                assert_eq!(n.len(), 68);
                assert_eq!(words(&n[..4]), [0], "flags");
                assert_eq!(&n[4..4 + d.name.len()], d.name.as_bytes());
                assert_eq!(n[4 + d.name.len()], 0);
            } else {
                assert_eq!(status, st(Status::NotSupported));
            }
            if !p2a {
                names.push(d.name);
            }
        }
    }
    // Simulation requirements: ≥ 8 domains, unique non-empty names, some
    // long ones.
    assert!(names.len() >= 8);
    assert!(names.iter().all(|n| !n.is_empty() && n.len() < 64));
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    assert!(names.iter().filter(|n| n.len() > 15).count() >= 2);
    // Errors.
    let n = DOMAINS.len() as u32;
    for id in [n, n + 1, 0x1_0000, u32::MAX] {
        assert_eq!(
            call(&mut s, 1, P, DOMAIN_ATTRIBUTES, &[id], 20).0,
            st(Status::NotFound)
        );
        assert_eq!(
            call(&mut s, 1, P, DOMAIN_NAME_GET, &[id], 68).0,
            st(Status::NotFound)
        );
    }
    assert_eq!(
        call(&mut s, 1, P, DOMAIN_ATTRIBUTES, &[], 20).0,
        st(Status::ProtocolError)
    );
    assert_eq!(
        call(&mut s, 1, P, DOMAIN_NAME_GET, &[], 68).0,
        st(Status::ProtocolError)
    );
    // A reply that does not fit the agent's buffer is an error.
    assert_eq!(
        call(&mut s, 1, P, DOMAIN_ATTRIBUTES, &[0], 19).0,
        st(Status::GenericError)
    );
}

#[test]
fn synchronous_set_reads_back_exactly() {
    let mut s = server();
    for (i, &boot) in BOOT.iter().enumerate() {
        assert_eq!(get(&mut s, 1, i as u32), boot);
    }
    // What scmi_pm_domain does: SET(flags 0, d, state), then GET, which
    // must return exactly the state set.
    for d in 0..DOMAINS.len() as u32 {
        for state in [OFF, ON, OFF] {
            assert_eq!(set(&mut s, 1, 0, d, state), 0);
            assert_eq!(get(&mut s, 1, d), state);
            assert_eq!(s.platform.power.state(d), Some(state));
        }
    }
    assert_eq!(s.platform.power.vote(1, 0), Some(OFF));
    assert_eq!(s.platform.power.vote(2, 0), None);
}

#[test]
fn set_errors() {
    let mut s = server();
    // Reserved flag bits (§4.3.2.6).
    assert_eq!(set(&mut s, 1, 2, 0, OFF), st(Status::InvalidParameters));
    assert_eq!(
        set(&mut s, 1, 1 << 31, 0, OFF),
        st(Status::InvalidParameters)
    );
    // Reserved state bits 31, 29, 28.
    for bad in [1 << 31, 1 << 29, 1 << 28, OFF | 1 << 28] {
        assert_eq!(set(&mut s, 1, 0, 0, bad), st(Status::InvalidParameters));
    }
    // Well-formed states these domains do not have.
    for other in [1, 0x0fff_ffff, OFF | 1] {
        assert_eq!(set(&mut s, 1, 0, 0, other), st(Status::InvalidParameters));
    }
    assert_eq!(get(&mut s, 1, 0), BOOT[0], "nothing changed");
    // Unknown domain, short payloads.
    let n = DOMAINS.len() as u32;
    assert_eq!(set(&mut s, 1, 0, n, OFF), st(Status::NotFound));
    assert_eq!(set(&mut s, 1, 0, u32::MAX, OFF), st(Status::NotFound));
    assert_eq!(
        call(&mut s, 1, P, STATE_SET, &[0, 0], 0).0,
        st(Status::ProtocolError)
    );
    assert_eq!(
        call(&mut s, 1, P, STATE_GET, &[], 4).0,
        st(Status::ProtocolError)
    );
    assert_eq!(
        call(&mut s, 1, P, STATE_GET, &[n], 4).0,
        st(Status::NotFound)
    );
    // Async without a P2A channel.
    assert_eq!(set(&mut s, 1, 1, 0, OFF), st(Status::NotSupported));
    assert_eq!(get(&mut s, 1, 0), BOOT[0]);
}

#[test]
fn async_set_completes_through_the_notification() {
    let mut s = server();
    s.set_p2a(1, true);
    assert_eq!(
        call(&mut s, 1, P, STATE_NOTIFY, &[0, 1], 0).0,
        0,
        "subscribe to domain 0"
    );
    // Accepted; the reply is status only, the completion is the
    // POWER_STATE_CHANGED that follows.
    let (status, v) = call(&mut s, 1, P, STATE_SET, &[1, 0, OFF], 16);
    assert_eq!((status, v.len()), (0, 0));
    let (h, w) = event(&mut s, 1).expect("completion");
    assert_eq!(h.msg_type, MsgType::Notification);
    assert_eq!((h.protocol, h.msg_id), (P, STATE_CHANGED));
    assert_eq!(w, [1, 0, OFF]);
    assert_eq!(get(&mut s, 1, 0), OFF);
    // An async request that changes nothing still completes.
    assert_eq!(set(&mut s, 1, 1, 0, OFF), 0);
    assert_eq!(event(&mut s, 1).unwrap().1, [1, 0, OFF]);
    // A sync request that changes nothing does not notify.
    assert_eq!(set(&mut s, 1, 0, 0, OFF), 0);
    assert!(event(&mut s, 1).is_none());
    // No delayed responses in this protocol.
    assert!(!s.has_event(1));
    // Domains without async support refuse it (§4.3.2.6).
    let pcie = DOMAINS.iter().position(|d| !d.async_set).unwrap() as u32;
    assert_eq!(set(&mut s, 1, 1, pcie, OFF), st(Status::NotSupported));
    assert_eq!(set(&mut s, 1, 0, pcie, OFF), 0);
}

#[test]
fn async_set_is_busy_when_the_outbox_is_full() {
    let mut s = server();
    s.set_p2a(1, true);
    assert_eq!(call(&mut s, 1, P, STATE_NOTIFY, &[1, 1], 0).0, 0);
    // State changes fill agent 1's share of the outbox.
    let mut k = 0;
    while s.outbox().free_for(1) > 0 {
        let state = if k % 2 == 0 { OFF } else { ON };
        assert_eq!(set(&mut s, 1, 0, 1, state), 0);
        k += 1;
        assert!(k <= 8, "E = 8 bounds the outbox");
    }
    assert!(k >= 1);
    assert_eq!(set(&mut s, 1, 1, 0, OFF), st(Status::Busy));
    assert_eq!(get(&mut s, 1, 0), BOOT[0], "a refused request does nothing");
    // Draining one slot makes room again.
    assert!(event(&mut s, 1).is_some());
    assert_eq!(set(&mut s, 1, 1, 0, OFF), 0);
    assert_eq!(get(&mut s, 1, 0), OFF);
}

#[test]
fn notifications_reach_every_subscriber_that_sees_the_domain() {
    let mut s = server();
    s.set_p2a(1, true);
    s.set_p2a(2, true);
    // Both subscribe to domain 0 (changed and change-requested).
    for a in [1, 2] {
        assert_eq!(call(&mut s, a, P, STATE_NOTIFY, &[0, 1], 0).0, 0);
        assert_eq!(
            call(&mut s, a, P, STATE_CHANGE_REQUESTED_NOTIFY, &[0, 1], 0).0,
            0
        );
    }
    assert_eq!(set(&mut s, 2, 0, 0, OFF), 0);
    for a in [1, 2] {
        // The request first (§4.3.3.2), then the change (§4.3.3.1); both
        // name agent 2 and carry exactly 12 bytes.
        let (h, w) = event(&mut s, a).unwrap();
        assert_eq!((h.protocol, h.msg_id), (P, STATE_CHANGE_REQUESTED));
        assert_eq!(w, [2, 0, OFF]);
        let (h, w) = event(&mut s, a).unwrap();
        assert_eq!((h.protocol, h.msg_id), (P, STATE_CHANGED));
        assert_eq!(w, [2, 0, OFF]);
        assert!(event(&mut s, a).is_none());
    }
    // Unsubscribed: nothing more for agent 1; agent 2 still hears.
    assert_eq!(call(&mut s, 1, P, STATE_NOTIFY, &[0, 0], 0).0, 0);
    assert_eq!(
        call(&mut s, 1, P, STATE_CHANGE_REQUESTED_NOTIFY, &[0, 0], 0).0,
        0
    );
    assert_eq!(set(&mut s, 2, 0, 0, ON), 0);
    assert!(event(&mut s, 1).is_none());
    assert_eq!(event(&mut s, 2).unwrap().1, [2, 0, ON]);
    assert_eq!(event(&mut s, 2).unwrap().1, [2, 0, ON]);
    // Subscriptions are per domain.
    assert_eq!(set(&mut s, 2, 0, 1, OFF), 0);
    assert!(event(&mut s, 2).is_none());
}

#[test]
fn notify_command_errors() {
    let mut s = server();
    // No P2A channel: not supported.
    assert_eq!(
        call(&mut s, 1, P, STATE_NOTIFY, &[0, 1], 0).0,
        st(Status::NotSupported)
    );
    s.set_p2a(1, true);
    let no_changed = DOMAINS.iter().position(|d| !d.notify_changed).unwrap() as u32;
    let no_requested = DOMAINS.iter().position(|d| !d.notify_requested).unwrap() as u32;
    // Reserved bits, unknown domains, unsupported domains, short payload.
    assert_eq!(
        call(&mut s, 1, P, STATE_NOTIFY, &[0, 2], 0).0,
        st(Status::InvalidParameters)
    );
    assert_eq!(
        call(&mut s, 1, P, STATE_CHANGE_REQUESTED_NOTIFY, &[0, 3], 0).0,
        st(Status::InvalidParameters)
    );
    assert_eq!(
        call(&mut s, 1, P, STATE_NOTIFY, &[DOMAINS.len() as u32, 1], 0).0,
        st(Status::NotFound)
    );
    assert_eq!(
        call(&mut s, 1, P, STATE_NOTIFY, &[no_changed, 1], 0).0,
        st(Status::NotSupported)
    );
    assert_eq!(
        call(
            &mut s,
            1,
            P,
            STATE_CHANGE_REQUESTED_NOTIFY,
            &[no_requested, 1],
            0
        )
        .0,
        st(Status::NotSupported)
    );
    assert_eq!(
        call(&mut s, 1, P, STATE_NOTIFY, &[0], 0).0,
        st(Status::ProtocolError)
    );
    // The unsupported domain never notifies.
    assert_eq!(set(&mut s, 1, 0, no_changed, ON), 0);
    assert!(!s.has_event(1));
}

#[test]
fn agents_cannot_touch_domains_they_cannot_see() {
    let mut s = server();
    s.set_p2a(1, true);
    s.set_p2a(2, true);
    // Domain 3 belongs to "media", which agent 2 may not access.
    assert_eq!(call(&mut s, 1, P, STATE_NOTIFY, &[3, 1], 0).0, 0);
    for (m, args) in [
        (DOMAIN_ATTRIBUTES, &[3u32][..]),
        (STATE_GET, &[3]),
        (STATE_SET, &[0, 3, ON]),
        (STATE_NOTIFY, &[3, 1]),
        (STATE_CHANGE_REQUESTED_NOTIFY, &[3, 1]),
        (DOMAIN_NAME_GET, &[3]),
    ] {
        assert_eq!(
            call(&mut s, 2, P, m, args, 68).0,
            st(Status::NotFound),
            "message {m:#x}"
        );
    }
    assert_eq!(get(&mut s, 1, 3), BOOT[3], "agent 2's SET did nothing");
    // Counts are platform totals for every agent (ids stay stable).
    let (_, v) = call(&mut s, 2, P, 0x1, &[], 16);
    assert_eq!(words(&v)[0], DOMAINS.len() as u32);
    // Agent 2 subscribes to everything it can see; agent 1's change on
    // domain 3 does not reach it, but on domain 0 it does.
    for d in [0, 1] {
        assert_eq!(call(&mut s, 2, P, STATE_NOTIFY, &[d, 1], 0).0, 0);
    }
    assert_eq!(set(&mut s, 1, 0, 3, ON), 0);
    assert!(event(&mut s, 2).is_none());
    assert_eq!(event(&mut s, 1).unwrap().1, [1, 3, ON]);
    // Once granted, agent 2 sees the domain.
    assert_eq!(
        call(&mut s, 1, 0x10, base::SET_DEVICE_PERMISSIONS, &[2, 0, 1], 0).0,
        0
    );
    assert_eq!(get(&mut s, 2, 3), ON);
    assert_eq!(call(&mut s, 2, P, STATE_NOTIFY, &[3, 1], 0).0, 0);
    assert_eq!(set(&mut s, 1, 0, 3, OFF), 0);
    assert_eq!(event(&mut s, 2).unwrap().1, [1, 3, OFF]);
    assert_eq!(event(&mut s, 1).unwrap().1, [1, 3, OFF]);
    // Revoked again: its subscription no longer delivers.
    assert_eq!(
        call(&mut s, 1, 0x10, base::SET_DEVICE_PERMISSIONS, &[2, 0, 0], 0).0,
        0
    );
    assert_eq!(set(&mut s, 1, 0, 3, ON), 0);
    assert!(event(&mut s, 2).is_none());
}

#[test]
fn shared_domains_aggregate_and_agent_reset_reverts() {
    let mut s = server();
    // Domain 2 boots OFF. Both agents turn it on; it stays on until both
    // release it.
    assert_eq!(BOOT[2], OFF);
    assert_eq!(set(&mut s, 1, 0, 2, ON), 0);
    assert_eq!(set(&mut s, 2, 0, 2, ON), 0);
    assert_eq!(set(&mut s, 1, 0, 2, OFF), 0);
    assert_eq!(get(&mut s, 1, 2), ON, "agent 2 still needs it");
    // Agent 2 resets itself: its vote is withdrawn, agent 1's OFF rules.
    assert_eq!(
        call(&mut s, 2, 0x10, base::RESET_AGENT_CONFIGURATION, &[2, 0], 0).0,
        0
    );
    assert_eq!(get(&mut s, 1, 2), OFF);
    assert_eq!(s.platform.power.vote(2, 2), None);
    // Agent 1's reset returns every domain it touched to its boot state.
    assert_eq!(set(&mut s, 1, 0, 0, OFF), 0);
    assert_eq!(set(&mut s, 1, 0, 2, ON), 0);
    assert_eq!(
        call(&mut s, 1, 0x10, base::RESET_AGENT_CONFIGURATION, &[1, 0], 0).0,
        0
    );
    for (d, &boot) in BOOT.iter().enumerate() {
        assert_eq!(get(&mut s, 1, d as u32), boot);
    }
}

#[test]
fn agent_reset_clears_power_subscriptions() {
    let mut s = server();
    s.set_p2a(1, true);
    assert_eq!(call(&mut s, 1, P, STATE_NOTIFY, &[0, 1], 0).0, 0);
    assert_eq!(
        call(&mut s, 1, 0x10, base::RESET_AGENT_CONFIGURATION, &[1, 0], 0).0,
        0
    );
    assert_eq!(set(&mut s, 1, 0, 0, OFF), 0);
    assert!(event(&mut s, 1).is_none());
}

#[test]
fn arbitrary_requests_never_panic() {
    super::arbitrary_requests(&mut server(), P);
}
