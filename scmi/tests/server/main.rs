//! Host tests of the server core and the Base protocol.

extern crate std;
use std::vec::Vec;

use platform_host_vhost_user as builtin;
use scmi_server::config::{AgentConfig, Config, DeviceConfig};
use scmi_server::header::{Header, MsgType, Status};
use scmi_server::protocols::base;
use scmi_server::server::{Handled, Server};

const ALL: u32 = 0xff;

static CONFIG: Config = Config {
    vendor: "rust-scmi",
    sub_vendor: "sim",
    implementation_version: 0x0001_0000,
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
            devices: 0b10,
        },
    ],
    devices: &[
        DeviceConfig {
            name: "cpu",
            resources: &[(0x14, 0)],
        },
        DeviceConfig {
            name: "gpu",
            resources: &[(0x14, 1)],
        },
    ],
};

fn server() -> Server<builtin::Platform, 2, 8> {
    Server::new(&CONFIG, builtin::PLATFORM)
}

/// Sends a command; returns (status, payload after the status).
pub(crate) fn call<P: scmi_server::Platform, const A: usize, const E: usize>(
    s: &mut Server<P, A, E>,
    agent: u32,
    protocol: u8,
    msg: u8,
    args: &[u32],
    rx: usize,
) -> (i32, Vec<u8>) {
    let mut req = Vec::new();
    let h = Header::command(protocol, msg, 0x155);
    req.extend_from_slice(&h.encode().to_le_bytes());
    for a in args {
        req.extend_from_slice(&a.to_le_bytes());
    }
    let mut resp = std::vec![0xAAu8; 8 + rx];
    let Handled::Response(n) = s.handle(agent, &req, &mut resp) else {
        panic!("malformed");
    };
    assert!(n >= 8 && n <= resp.len());
    assert_eq!(resp[..4], h.encode().to_le_bytes(), "header echoed");
    let status = i32::from_le_bytes(resp[4..8].try_into().unwrap());
    if status != 0 {
        assert_eq!(n, 8, "an error reply is exactly the status");
    }
    (status, resp[8..n].to_vec())
}

/// A reply payload as little-endian words.
pub(crate) fn words(b: &[u8]) -> Vec<u32> {
    assert_eq!(b.len() % 4, 0, "replies are whole words");
    b.chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn header_round_trip_and_reserved_bits() {
    let h = Header::command(0x14, 0x5, 0x3ff);
    assert_eq!(Header::decode_command(h.encode()), Ok(h));
    assert!(Header::decode_command(h.encode() | 1 << 28).is_err());
    assert!(Header::decode_command(h.encode() | 1 << 8).is_err());
    let d = h.with_type(MsgType::DelayedResponse);
    assert_eq!(Header::decode(d.encode()), Some(d));
}

/// BASE_DISCOVER_LIST_PROTOCOLS (§4.2.2.8) pages by the buffer it is
/// given: four ids a word; a buffer with room for the count but no id
/// while ids remain is GENERIC_ERROR, never an empty page that would stall
/// the agent; once all are skipped the empty list is fine.
#[test]
fn list_protocols_pages_and_never_returns_an_empty_page_early() {
    let mut s = server();
    let total = s.protocols_of(1).count();
    assert!(total > 4);
    let (status, v) = call(&mut s, 1, 0x10, base::DISCOVER_LIST_PROTOCOLS, &[0], 8);
    assert_eq!((status, words(&v)[0]), (0, 4));
    assert_eq!(
        call(&mut s, 1, 0x10, base::DISCOVER_LIST_PROTOCOLS, &[0], 4),
        (Status::GenericError.code(), Vec::new())
    );
    let skip = total as u32;
    assert_eq!(
        call(&mut s, 1, 0x10, base::DISCOVER_LIST_PROTOCOLS, &[skip], 4),
        (0, words_le(&[0]))
    );
}

#[test]
fn base_discovery() {
    let mut s = server();
    assert_eq!(
        call(&mut s, 1, 0x10, 0, &[], 4),
        (0, words_le(&[base::VERSION]))
    );
    let (st, v) = call(&mut s, 1, 0x10, base::DISCOVER_VENDOR, &[], 16);
    assert_eq!(st, 0);
    assert_eq!(&v[..10], b"rust-scmi\0");
    assert_eq!(v.len(), 16);
    // Agent discovery: self, the platform, another, a missing one.
    let (st, v) = call(&mut s, 2, 0x10, base::DISCOVER_AGENT, &[u32::MAX], 20);
    assert_eq!(st, 0);
    assert_eq!(words(&v[..4]), [2]);
    assert_eq!(&v[4..9], b"rtos\0");
    let (_, v) = call(&mut s, 2, 0x10, base::DISCOVER_AGENT, &[0], 20);
    assert!(v[4..].starts_with(b"platform"));
    assert_eq!(
        call(&mut s, 1, 0x10, base::DISCOVER_AGENT, &[3], 20).0,
        Status::NotFound.code()
    );
    // Unknown message ids and protocols.
    assert_eq!(
        call(&mut s, 1, 0x10, 0x2, &[0x30], 4).0,
        Status::NotFound.code()
    );
    assert_eq!(call(&mut s, 1, 0x10, 0x2, &[0x6], 4), (0, std::vec![0; 4]));
    assert_eq!(
        call(&mut s, 1, 0x10, 0x3f, &[], 4).0,
        Status::NotFound.code()
    );
    assert_eq!(
        call(&mut s, 1, 0x42, 0x0, &[], 4).0,
        Status::NotSupported.code()
    );
    // Short payload.
    assert_eq!(
        call(&mut s, 1, 0x10, base::DISCOVER_AGENT, &[], 20).0,
        Status::ProtocolError.code()
    );
}

fn words_le(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn permissions_only_from_trusted_agents() {
    let mut s = server();
    // The untrusted agent may not change anyone's permissions.
    let deny = call(&mut s, 2, 0x10, base::SET_DEVICE_PERMISSIONS, &[1, 0, 0], 0).0;
    assert_eq!(deny, Status::Denied.code());
    // The trusted one may; bad device or agent is NOT_FOUND, bad flags
    // INVALID_PARAMETERS.
    assert_eq!(
        call(&mut s, 1, 0x10, base::SET_DEVICE_PERMISSIONS, &[2, 0, 1], 0).0,
        0
    );
    assert_eq!(
        call(&mut s, 1, 0x10, base::SET_DEVICE_PERMISSIONS, &[2, 9, 1], 0).0,
        Status::NotFound.code()
    );
    assert_eq!(
        call(&mut s, 1, 0x10, base::SET_DEVICE_PERMISSIONS, &[7, 0, 1], 0).0,
        Status::NotFound.code()
    );
    assert_eq!(
        call(&mut s, 1, 0x10, base::SET_DEVICE_PERMISSIONS, &[2, 0, 3], 0).0,
        Status::InvalidParameters.code()
    );
    assert_eq!(
        call(
            &mut s,
            1,
            0x10,
            base::SET_PROTOCOL_PERMISSIONS,
            &[2, 0, 0x10, 0],
            0
        )
        .0,
        Status::Denied.code()
    );
    // Resetting another agent needs trust; resetting oneself does not.
    assert_eq!(
        call(&mut s, 2, 0x10, base::RESET_AGENT_CONFIGURATION, &[1, 0], 0).0,
        Status::Denied.code()
    );
    assert_eq!(
        call(&mut s, 2, 0x10, base::RESET_AGENT_CONFIGURATION, &[2, 0], 0).0,
        0
    );
}

#[test]
fn notify_errors_needs_a_p2a_channel() {
    let mut s = server();
    assert_eq!(
        call(&mut s, 1, 0x10, base::NOTIFY_ERRORS, &[1], 0).0,
        Status::NotSupported.code()
    );
    s.set_p2a(1, true);
    assert_eq!(call(&mut s, 1, 0x10, base::NOTIFY_ERRORS, &[1], 0).0, 0);
    assert_eq!(
        call(&mut s, 1, 0x10, base::NOTIFY_ERRORS, &[2], 0).0,
        Status::InvalidParameters.code()
    );
}

#[test]
fn negotiate_accepts_same_major_lower_minor() {
    let mut s = server();
    assert_eq!(call(&mut s, 1, 0x10, 0x10, &[0x2_0000], 0).0, 0);
    assert_eq!(
        call(&mut s, 1, 0x10, 0x10, &[0x2_0002], 0).0,
        Status::NotSupported.code()
    );
    assert_eq!(
        call(&mut s, 1, 0x10, 0x10, &[0x1_0000], 0).0,
        Status::NotSupported.code()
    );
}

#[test]
fn malformed_requests_still_get_answers() {
    let mut s = server();
    let mut resp = [0u8; 16];
    assert_eq!(s.handle(1, &[1, 2], &mut resp), Handled::Malformed);
    // Reserved header bits: PROTOCOL_ERROR, token echoed, type 0.
    let h = Header::command(0x10, 0, 0x2a).encode() | 1 << 29;
    assert_eq!(
        s.handle(1, &h.to_le_bytes(), &mut resp),
        Handled::Response(8)
    );
    let back = Header::decode(u32::from_le_bytes(resp[..4].try_into().unwrap())).unwrap();
    assert_eq!(back.token, 0x2a);
    assert_eq!(back.msg_type, MsgType::Command);
    assert_eq!(
        i32::from_le_bytes(resp[4..8].try_into().unwrap()),
        Status::ProtocolError.code()
    );
    // A reply that does not fit the agent's buffer is an error, not a
    // truncated success.
    assert_eq!(
        call(&mut s, 1, 0x10, base::DISCOVER_VENDOR, &[], 8).0,
        Status::GenericError.code()
    );
    // An unknown agent.
    assert_eq!(call(&mut s, 3, 0x10, 0, &[], 4).0, Status::Denied.code());
}

/// The next queued message for `agent`: its header and payload words.
pub(crate) fn event<P: scmi_server::Platform, const A: usize, const E: usize>(
    s: &mut Server<P, A, E>,
    agent: u32,
) -> Option<(Header, Vec<u32>)> {
    let mut buf = [0u8; scmi_server::MAX_MESSAGE];
    let n = s.next_event(agent, &mut buf)?;
    let h = Header::decode(u32::from_le_bytes(buf[..4].try_into().unwrap())).unwrap();
    Some((h, words(&buf[4..n])))
}

/// Sends 20 000 deterministic pseudo-random `protocol` commands from
/// agents 0..=3 to `s`; every answer must be well-formed (checked by
/// [`call`]).
pub(crate) fn arbitrary_requests<P: scmi_server::Platform, const A: usize, const E: usize>(
    s: &mut Server<P, A, E>,
    protocol: u8,
) {
    // A deterministic xorshift stream of messages: any id, 0-4 argument
    // words biased towards meaningful values, any reply size, any agent,
    // P2A toggling. Every answer must be well-formed (checked by `call`).
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut buf = [0u8; scmi_server::MAX_MESSAGE];
    for _ in 0..20_000 {
        let r = next();
        let agent = (r % 4) as u32;
        let msg = ((r >> 8) % 0x14) as u8;
        let n = ((r >> 16) % 5) as usize;
        let rx = ((r >> 24) % 140) as usize;
        let args: Vec<u32> = (0..n)
            .map(|_| {
                let v = next();
                match v % 4 {
                    0 => (v >> 8) as u32 % 16,
                    1 => (v >> 8) as u32 % 0x10_0000,
                    2 => 0x4000_0000 | ((v >> 8) as u32 % 4),
                    _ => (v >> 8) as u32,
                }
            })
            .collect();
        if r >> 60 == 0 {
            s.set_p2a(1 + (r >> 40) as u32 % 3, (r >> 50) & 1 == 0);
        }
        if agent == 0 || rx < 8 {
            // The server refuses agent 0 and needs room for the status.
            let mut req = Header::command(protocol, msg, 1)
                .encode()
                .to_le_bytes()
                .to_vec();
            args.iter()
                .for_each(|a| req.extend_from_slice(&a.to_le_bytes()));
            let mut resp = std::vec![0u8; rx];
            let _ = s.handle(agent, &req, &mut resp);
            continue;
        }
        let _ = call(s, agent, protocol, msg, &args, rx);
        while s.next_event(1 + (r >> 32) as u32 % 3, &mut buf).is_some() && r & 1 == 0 {}
    }
}

mod clock;
mod perf;
mod power;
mod reset;
mod sensor;
mod system;
mod voltage;
