//! Host mode: a real Unix socket, real round trips, malformed frames.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use platform_host_vhost_user as builtin;
use scmi_server::{Header, MsgType, Server, Status};
use transport_scmi_socket::{Agents, Host, HostOptions, MAX_FRAME, read_frame, write_frame};

const BASE: u8 = 0x10;
const DISCOVER_VENDOR: u8 = 0x3;
const DISCOVER_AGENT: u8 = 0x7;
const NOTIFY_ERRORS: u8 = 0x8;

fn socket_path(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!(
        "scmi-host-test-{}-{tag}-{n}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// Starts a host on a fresh socket in a thread; returns its path.
fn start(agents: Agents) -> PathBuf {
    let path = socket_path("t");
    let listener = UnixListener::bind(&path).unwrap();
    let server: Server<builtin::Platform, 2, 16> = Server::new(&builtin::CONFIG, builtin::PLATFORM);
    let opts = HostOptions {
        agents,
        poll: Duration::from_millis(5),
        ..HostOptions::default()
    };
    let host = Host::new(server, opts).unwrap();
    std::thread::spawn(move || host.serve(&listener));
    path
}

fn connect(path: &PathBuf) -> UnixStream {
    let s = UnixStream::connect(path).unwrap();
    // A server that never answers fails the test instead of hanging it.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn request(protocol: u8, msg: u8, token: u16, args: &[u32]) -> Vec<u8> {
    let mut v = Header::command(protocol, msg, token)
        .encode()
        .to_le_bytes()
        .to_vec();
    for a in args {
        v.extend_from_slice(&a.to_le_bytes());
    }
    v
}

fn header(msg: &[u8]) -> Header {
    Header::decode(u32::from_le_bytes(msg[..4].try_into().unwrap())).unwrap()
}

fn status(msg: &[u8]) -> i32 {
    i32::from_le_bytes(msg[4..8].try_into().unwrap())
}

/// One request, one response frame.
fn call(s: &mut UnixStream, req: &[u8]) -> Vec<u8> {
    write_frame(s, req).unwrap();
    let resp = read_frame(s).unwrap().expect("a response");
    assert!(resp.len() <= MAX_FRAME);
    resp
}

/// Which agent this connection is.
fn whoami(s: &mut UnixStream) -> u32 {
    let r = call(s, &request(BASE, DISCOVER_AGENT, 9, &[u32::MAX]));
    assert_eq!(status(&r), 0);
    u32::from_le_bytes(r[8..12].try_into().unwrap())
}

/// Whether the server closed the connection (end of stream or reset)
/// within the read timeout.
fn closed(s: &mut UnixStream) -> bool {
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn round_trips() {
    let path = start(Agents::PerConnection);
    let mut s = connect(&path);
    let r = call(&mut s, &request(BASE, 0, 0x3ff, &[]));
    assert_eq!(r.len(), 12);
    let h = header(&r);
    assert_eq!(
        (h.token, h.msg_type, h.protocol, h.msg_id),
        (0x3ff, MsgType::Command, BASE, 0)
    );
    assert_eq!(status(&r), 0);
    assert_eq!(r[8..12], 0x0002_0001u32.to_le_bytes());
    let r = call(&mut s, &request(BASE, DISCOVER_VENDOR, 1, &[]));
    assert_eq!(r.len(), 24);
    assert_eq!(&r[8..18], b"rust-scmi\0");
    // The connection has a P2A channel: NOTIFY_ERRORS is accepted.
    let r = call(&mut s, &request(BASE, NOTIFY_ERRORS, 2, &[1]));
    assert_eq!(status(&r), 0);
    // Errors carry exactly the status.
    let r = call(&mut s, &request(BASE, DISCOVER_AGENT, 3, &[7]));
    assert_eq!(r.len(), 8);
    assert_eq!(status(&r), Status::NotFound.code());
    // Many requests written at once are answered in order.
    let mut batch = Vec::new();
    for t in 0..50u16 {
        let req = request(BASE, 0, t, &[]);
        batch.extend_from_slice(&(req.len() as u32).to_le_bytes());
        batch.extend_from_slice(&req);
    }
    s.write_all(&batch).unwrap();
    for t in 0..50u16 {
        let r = read_frame(&mut s).unwrap().unwrap();
        assert_eq!(header(&r).token, t);
    }
}

#[test]
fn malformed_frames_are_answered_or_closed() {
    let path = start(Agents::PerConnection);
    let mut s = connect(&path);
    // Length 0 and 1..3: no header, an empty frame back; still usable.
    for len in 0..4 {
        let r = call(&mut s, &[0x10; 3][..len]);
        assert!(r.is_empty(), "length {len}");
    }
    // 129..=132 payload bytes, all within a frame of at most 136:
    // PROTOCOL_ERROR for more than 128 payload bytes, token echoed.
    for len in [132, 133, 136] {
        let mut req = request(BASE, 0, 0x55, &[]);
        req.resize(len, 0);
        let r = call(&mut s, &req);
        assert_eq!(header(&r).token, 0x55);
        if len <= 132 {
            assert_eq!(status(&r), 0, "length {len}");
        } else {
            assert_eq!(r.len(), 8);
            assert_eq!(status(&r), Status::ProtocolError.code(), "length {len}");
        }
    }
    // Reserved header bits.
    let bad = (Header::command(BASE, 0, 0x66).encode() | 1 << 31).to_le_bytes();
    let r = call(&mut s, &bad);
    assert_eq!((r.len(), status(&r)), (8, Status::ProtocolError.code()));
    assert_eq!(whoami(&mut s), 1);

    // A length above 136: the connection is closed, not left hanging.
    s.write_all(&1000u32.to_le_bytes()).unwrap();
    let _ = s.write_all(&[0u8; 16]);
    assert!(closed(&mut s));
    // A huge length: the same.
    let mut s = connect(&path);
    s.write_all(&u32::MAX.to_le_bytes()).unwrap();
    assert!(closed(&mut s));

    // Truncated: a frame announced as 8 bytes, 3 sent, then end of stream.
    let mut s = connect(&path);
    s.write_all(&8u32.to_le_bytes()).unwrap();
    s.write_all(&[1, 2, 3]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed(&mut s));
    // Truncated inside the length.
    let mut s = connect(&path);
    s.write_all(&[4, 0]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed(&mut s));

    // A frame split into single bytes is still one request.
    let mut s = connect(&path);
    let req = request(BASE, 0, 0x77, &[]);
    let mut frame = (req.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&req);
    for b in frame {
        s.write_all(&[b]).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let r = read_frame(&mut s).unwrap().unwrap();
    assert_eq!(header(&r).token, 0x77);

    // The server survived all of it.
    let mut s2 = connect(&path);
    assert_eq!(status(&call(&mut s2, &request(BASE, 0, 1, &[]))), 0);
}

#[test]
fn one_agent_per_connection() {
    let path = start(Agents::PerConnection);
    let mut a = connect(&path);
    let mut b = connect(&path);
    assert_eq!(whoami(&mut a), 1);
    assert_eq!(whoami(&mut b), 2);
    // Both agents are taken: a third connection is closed at once.
    let mut c = connect(&path);
    let _ = write_frame(&mut c, &request(BASE, 0, 1, &[]));
    assert!(closed(&mut c));
    // The untrusted agent may not reset the other; the trusted one may.
    let r = call(&mut b, &request(BASE, 0xB, 1, &[1, 0]));
    assert_eq!(status(&r), Status::Denied.code());
    let r = call(&mut a, &request(BASE, 0xB, 1, &[2, 0]));
    assert_eq!(status(&r), 0);
    // Closing a connection frees its id.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = connect(&path);
        if write_frame(&mut c, &request(BASE, DISCOVER_AGENT, 2, &[u32::MAX])).is_ok()
            && let Ok(Some(r)) = read_frame(&mut c)
        {
            assert_eq!(r[8..12], 1u32.to_le_bytes());
            break;
        }
        assert!(Instant::now() < deadline, "agent 1 never freed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn fixed_agent_from_options() {
    let path = start(Agents::Fixed(2));
    let mut a = connect(&path);
    assert_eq!(whoami(&mut a), 2);
    // One connection per fixed agent.
    let mut b = connect(&path);
    let _ = write_frame(&mut b, &request(BASE, 0, 1, &[]));
    assert!(closed(&mut b));
    // A fixed agent the configuration lacks is refused up front.
    let server: Server<builtin::Platform, 2, 16> = Server::new(&builtin::CONFIG, builtin::PLATFORM);
    let opts = HostOptions {
        agents: Agents::Fixed(3),
        ..HostOptions::default()
    };
    assert!(Host::new(server, opts).is_err());
}
