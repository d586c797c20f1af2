//! The `scmi-vhost-user` binary as an operator runs it: bad arguments are
//! refused with a usage message, a front-end can connect, disconnect and
//! connect again, and SIGTERM removes the socket and exits 0.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vhost::VhostBackend;
use vhost::vhost_user::Frontend;

const BIN: &str = env!("CARGO_BIN_EXE_scmi-vhost-user");

fn socket(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "scmi-vhost-user-{name}-{}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// Waits (bounded) until the daemon listens on `path`.
fn wait_for_socket(path: &Path, child: &mut Child) {
    let t = Instant::now();
    while !path.exists() {
        assert!(child.try_wait().unwrap().is_none(), "daemon exited early");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no socket after 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with a pid this test spawned; no memory is passed.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    for args in [
        &[][..],
        &["--socket-path"][..],
        &["--socket-path", "/tmp/x", "--agent", "zero"][..],
        &["--what"][..],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error:") && err.contains("usage:"), "{err}");
    }
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("vhost-user-scmi"));
}

#[test]
fn agent_out_of_range_and_non_socket_path_fail() {
    let p = socket("range");
    let out = Command::new(BIN)
        .args(["--socket-path", p.to_str().unwrap(), "--agent", "9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--agent 9"));
    assert!(!p.exists());
    std::fs::write(&p, b"not a socket").unwrap();
    let out = Command::new(BIN)
        .args(["--socket-path", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a socket"));
    assert_eq!(std::fs::read(&p).unwrap(), b"not a socket", "left alone");
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn serves_successive_front_ends_and_stops_on_sigterm() {
    let p = socket("sigterm");
    let mut child = Command::new(BIN)
        .args(["--socket-path", p.to_str().unwrap(), "--tick-ms", "10"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_socket(&p, &mut child);
    for _ in 0..3 {
        let fe = Frontend::connect(&p, 2).unwrap();
        fe.set_owner().unwrap();
        let f = fe.get_features().unwrap();
        assert_ne!(f & (1 << 32), 0, "VIRTIO_F_VERSION_1 offered");
        assert_ne!(f & 1, 0, "VIRTIO_SCMI_F_P2A_CHANNELS offered");
        drop(fe);
    }
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit status {:?}", out.status);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(log.matches("front-end connected").count(), 3, "{log}");
    // The last disconnect may race the signal: the loop looks at the stop
    // descriptor first.
    assert!(log.matches("front-end disconnected").count() >= 2, "{log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(!p.exists(), "socket removed on shutdown");
}
