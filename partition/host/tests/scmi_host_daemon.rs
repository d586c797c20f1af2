//! The `scmi-host` binary as an operator runs it: bad arguments are refused
//! with a clear error, it serves a fixed agent, a second instance refuses a
//! socket in use, and a stale socket is replaced.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use scmi_server::Header;
use transport_scmi_socket::{MAX_FRAME, read_frame, write_frame};

const BASE: u8 = 0x10;
const DISCOVER_AGENT: u8 = 0x7;

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

fn status(msg: &[u8]) -> i32 {
    i32::from_le_bytes(msg[4..8].try_into().unwrap())
}

fn call(s: &mut UnixStream, req: &[u8]) -> Vec<u8> {
    write_frame(s, req).unwrap();
    let resp = read_frame(s).unwrap().expect("a response");
    assert!(resp.len() <= MAX_FRAME);
    resp
}

fn whoami(s: &mut UnixStream) -> u32 {
    let r = call(s, &request(BASE, DISCOVER_AGENT, 9, &[u32::MAX]));
    assert_eq!(status(&r), 0);
    u32::from_le_bytes(r[8..12].try_into().unwrap())
}

#[test]
fn binary_serves_and_reports_errors() {
    let exe = env!("CARGO_BIN_EXE_scmi-host");
    // Bad arguments: a clear error and a failing exit status.
    for args in [
        &[][..],
        &["--socket"][..],
        &["--socket", "/tmp/x", "--agent", "3"][..],
        &["--socket", "/tmp/x", "--agent", "two"][..],
        &["--bogus"][..],
    ] {
        let out = Command::new(exe).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error:"), "{args:?}: {err}");
    }
    // A real run with a fixed agent.
    let path = socket_path("bin");
    let mut child = Command::new(exe)
        .args(["--socket", path.to_str().unwrap(), "--agent", "2"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        if let Ok(s) = UnixStream::connect(&path) {
            break s;
        }
        assert!(Instant::now() < deadline, "scmi-host never listened");
        std::thread::sleep(Duration::from_millis(20));
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(whoami(&mut s), 2);
    // A second instance on the same socket refuses to start.
    let out = Command::new(exe)
        .args(["--socket", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
    child.kill().unwrap();
    child.wait().unwrap();
    // The stale socket file is replaced by the next run.
    let mut child = Command::new(exe)
        .args(["--socket", path.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        if let Ok(s) = UnixStream::connect(&path) {
            break s;
        }
        assert!(Instant::now() < deadline, "scmi-host never listened again");
        std::thread::sleep(Duration::from_millis(20));
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(whoami(&mut s), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_file(&path);
}
