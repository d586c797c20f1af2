//! Tests of the system power protocol against the simulated platform.

extern crate std;
use std::vec::Vec;

use super::{call, event, words};
use platform_host_vhost_user as builtin;
use platform_sim::system::SysRequest;

const SYSTEM: SystemPower = match builtin::TABLES.system {
    Some(s) => *s,
    None => panic!("the built-in SoC has system power"),
};
use scmi_server::config::{AgentConfig, Config, DeviceConfig};
use scmi_server::header::{MsgType, Status};
use scmi_server::protocols::base;
use scmi_server::protocols::system::*;
use scmi_server::server::Server;

const P: u8 = ID;

/// Agent 1 ("linux") and 2 ("mgmt") may act on the system; agent 3 may use
/// the protocol but is denied the "system" device.
static CFG: Config = Config {
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
            name: "mgmt",
            trusted: false,
            protocols: 0xff,
            devices: 0b1,
        },
        AgentConfig {
            name: "guest",
            trusted: false,
            protocols: 0xff,
            devices: 0,
        },
    ],
    devices: &[DeviceConfig {
        name: "system",
        resources: &[(0x12, 0)],
    }],
};

type S = Server<builtin::Platform, 3, 8>;

fn server() -> S {
    Server::new(&CFG, builtin::PLATFORM)
}

fn st(s: Status) -> i32 {
    s.code()
}

fn set(s: &mut S, agent: u32, flags: u32, state: u32) -> i32 {
    call(s, agent, P, STATE_SET, &[flags, state], 0).0
}

fn get(s: &mut S, agent: u32) -> u32 {
    let (status, v) = call(s, agent, P, STATE_GET, &[], 4);
    assert_eq!(status, 0);
    words(&v)[0]
}

fn subscribe(s: &mut S, agent: u32, on: bool) -> i32 {
    call(s, agent, P, STATE_NOTIFY, &[u32::from(on)], 0).0
}

#[test]
fn version_attributes_and_message_attributes() {
    let mut s = server();
    let (status, v) = call(&mut s, 1, P, 0x0, &[], 4);
    assert_eq!((status, words(&v)), (0, std::vec![0x0002_0001]));
    // SCMI v3.2 §4.4.2.3: all attribute bits reserved.
    let (status, v) = call(&mut s, 1, P, 0x1, &[], 4);
    assert_eq!((status, words(&v)), (0, std::vec![0]));
    // §4.4.2.4: SET carries warm reset [31] and suspend [30].
    let (status, v) = call(&mut s, 1, P, 0x2, &[3], 4);
    assert_eq!(status, 0);
    let expect = u32::from(SYSTEM.warm_reset) << 31 | u32::from(SYSTEM.suspend) << 30;
    assert_eq!(words(&v), [expect]);
    assert_eq!(expect, 0xC000_0000);
    for m in [0x0, 0x1, 0x2, 0x4, 0x10] {
        assert_eq!(call(&mut s, 1, P, 0x2, &[m], 4), (0, std::vec![0; 4]));
    }
    // NOTIFY without a P2A channel: NOT_SUPPORTED (what Linux probes).
    assert_eq!(call(&mut s, 1, P, 0x2, &[5], 4).0, st(Status::NotSupported));
    s.set_p2a(1, true);
    assert_eq!(call(&mut s, 1, P, 0x2, &[5], 4), (0, std::vec![0; 4]));
    for m in [0x6, 0x7, 0xf, 0x11, 0x300] {
        assert_eq!(
            call(&mut s, 1, P, 0x2, &[m], 4).0,
            st(Status::NotFound),
            "message {m:#x}"
        );
    }
    for m in [0x6, 0x20, 0xff] {
        assert_eq!(call(&mut s, 1, P, m, &[0, 0], 4).0, st(Status::NotFound));
    }
}

#[test]
fn forceful_requests_take_effect_and_are_recorded() {
    let mut s = server();
    assert_eq!(get(&mut s, 1), POWER_UP);
    // Resets leave the system up and are counted.
    assert_eq!(set(&mut s, 1, 0, COLD_RESET), 0);
    assert_eq!(set(&mut s, 2, 0, WARM_RESET), 0);
    assert_eq!(set(&mut s, 2, 0, WARM_RESET), 0);
    assert_eq!(s.platform.system.resets(), (1, 2));
    assert_eq!(get(&mut s, 1), POWER_UP);
    // Suspend, a second suspend has nothing to act on, power-up resumes.
    assert_eq!(set(&mut s, 1, 0, SUSPEND), 0);
    assert_eq!(get(&mut s, 2), SUSPEND);
    assert_eq!(set(&mut s, 1, 0, SUSPEND), st(Status::Denied));
    assert_eq!(set(&mut s, 2, 0, POWER_UP), 0);
    assert_eq!(get(&mut s, 1), POWER_UP);
    // Shutdown, once.
    assert_eq!(set(&mut s, 1, 0, SHUTDOWN), 0);
    assert_eq!(get(&mut s, 1), SHUTDOWN);
    assert_eq!(set(&mut s, 1, 0, SHUTDOWN), st(Status::Denied));
    assert_eq!(set(&mut s, 2, 0, POWER_UP), 0);
    // The log holds every accepted request, in order; refused ones are
    // not in it.
    let log: Vec<SysRequest> = s.platform.system.requests().collect();
    let expect: Vec<(u32, u32)> = std::vec![
        (1, COLD_RESET),
        (2, WARM_RESET),
        (2, WARM_RESET),
        (1, SUSPEND),
        (2, POWER_UP),
        (1, SHUTDOWN),
        (2, POWER_UP),
    ];
    assert_eq!(
        log.iter().map(|r| (r.agent, r.state)).collect::<Vec<_>>(),
        expect
    );
    assert!(log.iter().all(|r| !r.graceful));
    assert_eq!(
        s.platform.system.last_request(),
        Some(SysRequest {
            agent: 2,
            state: POWER_UP,
            graceful: false
        })
    );
    assert_eq!(s.platform.system.pending(), None);
}

#[test]
fn the_log_keeps_the_latest_requests() {
    let mut s = server();
    for _ in 0..20 {
        assert_eq!(set(&mut s, 1, 0, COLD_RESET), 0);
    }
    assert_eq!(set(&mut s, 2, 0, WARM_RESET), 0);
    let log: Vec<SysRequest> = s.platform.system.requests().collect();
    assert_eq!(log.len(), platform_sim::system::LOG);
    assert_eq!(log.last().unwrap().state, WARM_RESET);
    assert_eq!(s.platform.system.resets(), (20, 1));
}

#[test]
fn set_errors() {
    let mut s = server();
    // §4.4.2.5: reserved flags and reserved states.
    assert_eq!(set(&mut s, 1, 2, SHUTDOWN), st(Status::InvalidParameters));
    assert_eq!(
        set(&mut s, 1, 1 << 31, SHUTDOWN),
        st(Status::InvalidParameters)
    );
    for state in [5, 6, 0x1234, 0x7fff_ffff] {
        assert_eq!(set(&mut s, 1, 0, state), st(Status::InvalidParameters));
    }
    // Vendor states: none in the simulation.
    for state in [VENDOR_FIRST, u32::MAX] {
        assert_eq!(set(&mut s, 1, 0, state), st(Status::NotSupported));
    }
    // Short payload.
    assert_eq!(
        call(&mut s, 1, P, STATE_SET, &[0], 0).0,
        st(Status::ProtocolError)
    );
    assert_eq!(
        call(&mut s, 1, P, STATE_NOTIFY, &[], 0).0,
        st(Status::ProtocolError)
    );
    // Nothing was recorded, nothing changed.
    assert_eq!(s.platform.system.last_request(), None);
    assert_eq!(get(&mut s, 1), POWER_UP);
    // GET's reply needs 4 bytes.
    assert_eq!(
        call(&mut s, 1, P, STATE_GET, &[], 3).0,
        st(Status::GenericError)
    );
}

#[test]
fn notifier_payloads_are_sixteen_bytes() {
    let mut s = server();
    // Without a P2A channel there is nothing to subscribe with.
    assert_eq!(subscribe(&mut s, 1, true), st(Status::NotSupported));
    s.set_p2a(1, true);
    s.set_p2a(2, true);
    assert_eq!(
        call(&mut s, 1, P, STATE_NOTIFY, &[3], 0).0,
        st(Status::InvalidParameters)
    );
    assert_eq!(subscribe(&mut s, 1, true), 0);
    // A graceful shutdown request from the management agent: OSPM hears
    // about it (flags 1, the platform's timeout), the system stays up and
    // the request waits.
    assert_eq!(set(&mut s, 2, 1, SHUTDOWN), 0);
    let (h, w) = event(&mut s, 1).expect("notifier");
    assert_eq!(h.msg_type, MsgType::Notification);
    assert_eq!((h.protocol, h.msg_id), (P, STATE_NOTIFIER));
    assert_eq!(w, [2, 1, SHUTDOWN, SYSTEM.graceful_timeout_ms]);
    assert_ne!(SYSTEM.graceful_timeout_ms, 0);
    assert_eq!(get(&mut s, 1), POWER_UP);
    assert_eq!(
        s.platform.system.pending(),
        Some(SysRequest {
            agent: 2,
            state: SHUTDOWN,
            graceful: true
        })
    );
    assert!(event(&mut s, 2).is_none(), "agent 2 did not subscribe");
    // A graceful reboot has no timeout (§4.4.3.1).
    assert_eq!(set(&mut s, 2, 1, COLD_RESET), 0);
    assert_eq!(event(&mut s, 1).unwrap().1, [2, 1, COLD_RESET, 0]);
    // OSPM then shuts down forcefully: flags 0, no timeout; the pending
    // request is done.
    assert_eq!(set(&mut s, 1, 0, SHUTDOWN), 0);
    assert_eq!(event(&mut s, 1).unwrap().1, [1, 0, SHUTDOWN, 0]);
    assert_eq!(s.platform.system.pending(), None);
    assert_eq!(get(&mut s, 2), SHUTDOWN);
    // Graceful is ignored for power-up: no pending request, flags 0.
    assert_eq!(set(&mut s, 2, 1, POWER_UP), 0);
    assert_eq!(event(&mut s, 1).unwrap().1, [2, 0, POWER_UP, 0]);
    assert_eq!(s.platform.system.pending(), None);
    assert_eq!(get(&mut s, 1), POWER_UP);
    // Unsubscribed: silence. No delayed responses either.
    assert_eq!(subscribe(&mut s, 1, false), 0);
    assert_eq!(set(&mut s, 2, 0, WARM_RESET), 0);
    assert!(!s.has_event(1));
    assert!(!s.has_event(2));
}

#[test]
fn a_refused_request_notifies_nobody() {
    let mut s = server();
    s.set_p2a(1, true);
    assert_eq!(subscribe(&mut s, 1, true), 0);
    assert_eq!(set(&mut s, 2, 0, 9), st(Status::InvalidParameters));
    assert_eq!(set(&mut s, 2, 0, VENDOR_FIRST), st(Status::NotSupported));
    assert!(!s.has_event(1));
}

#[test]
fn agents_denied_the_system_cannot_act_on_it() {
    let mut s = server();
    for a in 1..=3 {
        s.set_p2a(a, true);
    }
    assert_eq!(subscribe(&mut s, 1, true), 0);
    // Agent 3 may read the state but neither request nor subscribe.
    assert_eq!(get(&mut s, 3), POWER_UP);
    assert_eq!(set(&mut s, 3, 0, SHUTDOWN), st(Status::Denied));
    assert_eq!(set(&mut s, 3, 1, COLD_RESET), st(Status::Denied));
    assert_eq!(subscribe(&mut s, 3, true), st(Status::Denied));
    assert_eq!(get(&mut s, 1), POWER_UP);
    assert_eq!(s.platform.system.last_request(), None);
    assert!(!s.has_event(1));
    // Granted the device, it may; revoked, a subscription it made stops
    // delivering.
    assert_eq!(
        call(&mut s, 1, 0x10, base::SET_DEVICE_PERMISSIONS, &[3, 0, 1], 0).0,
        0
    );
    assert_eq!(subscribe(&mut s, 3, true), 0);
    assert_eq!(set(&mut s, 1, 0, WARM_RESET), 0);
    assert_eq!(event(&mut s, 3).unwrap().1, [1, 0, WARM_RESET, 0]);
    assert_eq!(event(&mut s, 1).unwrap().1, [1, 0, WARM_RESET, 0]);
    assert_eq!(
        call(&mut s, 1, 0x10, base::SET_DEVICE_PERMISSIONS, &[3, 0, 0], 0).0,
        0
    );
    assert_eq!(set(&mut s, 1, 0, WARM_RESET), 0);
    assert!(event(&mut s, 3).is_none());
    assert!(event(&mut s, 1).is_some());
}

#[test]
fn agent_reset_withdraws_its_pending_request_and_subscription() {
    let mut s = server();
    s.set_p2a(1, true);
    assert_eq!(subscribe(&mut s, 1, true), 0);
    assert_eq!(set(&mut s, 2, 1, SHUTDOWN), 0);
    assert!(s.platform.system.pending().is_some());
    // Resetting agent 1 does not touch agent 2's request.
    assert_eq!(
        call(&mut s, 1, 0x10, base::RESET_AGENT_CONFIGURATION, &[1, 0], 0).0,
        0
    );
    assert!(s.platform.system.pending().is_some());
    assert!(!s.has_event(1), "queued notifications are dropped too");
    assert_eq!(
        call(&mut s, 2, 0x10, base::RESET_AGENT_CONFIGURATION, &[2, 0], 0).0,
        0
    );
    assert_eq!(s.platform.system.pending(), None);
    // Agent 1's subscription went with its reset.
    assert_eq!(set(&mut s, 2, 0, WARM_RESET), 0);
    assert!(!s.has_event(1));
}

#[test]
fn arbitrary_requests_never_panic() {
    super::arbitrary_requests(&mut server(), P);
}
