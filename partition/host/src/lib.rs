//! What the host images share: the command-line `main`, the socket they
//! listen on and the termination signals they stop on.
//!
//! The binaries (`scmi-vhost-user`, `scmi-host`) wire a transport, the
//! virtio-scmi device where there is one, and the simulated platform
//! configured by a manifest; this crate holds nothing else.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

/// The `main` of a daemon binary: `parsed` is its command line (`Ok(None)`:
/// help was asked for), `run` serves. Help goes to stdout with exit 0; a
/// bad command line to stderr with the usage and exit 2; a failure of
/// `run` to stderr with exit 1. `name` prefixes the messages.
pub fn cli_main<A>(
    name: &str,
    usage: &str,
    parsed: Result<Option<A>, String>,
    run: impl FnOnce(A) -> Result<(), String>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    match parsed {
        Ok(None) => {
            std::println!("{usage}");
            ExitCode::SUCCESS
        }
        Ok(Some(args)) => match run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{name}: error: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("{name}: error: {e}\n\n{usage}");
            ExitCode::from(2)
        }
    }
}

/// Listens on the Unix socket `path`, replacing a stale socket file that
/// nobody listens on any more; anything else at `path` (a regular file, a
/// live socket) is an error naming the path, never silently replaced.
pub fn bind_socket(path: &std::path::Path) -> Result<UnixListener, std::string::String> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!(
                "{} exists and is not a socket; not replacing it",
                path.display()
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(format!("{} is in use by a running server", path.display()));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("cannot remove stale socket {}: {e}", path.display()))?;
    }
    UnixListener::bind(path).map_err(|e| format!("cannot listen on {}: {e}", path.display()))
}

/// Blocks SIGINT and SIGTERM for this thread (and threads it spawns later)
/// and returns a signalfd that becomes readable when one arrives. Call it
/// before spawning threads.
pub fn termination_signalfd() -> io::Result<OwnedFd> {
    // SAFETY: `set` is a local sigset_t initialised by sigemptyset before
    // use; the calls take pointers to it only for their duration.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Which signal a signalfd reported, if one is pending.
pub fn read_signal(fd: &OwnedFd) -> Option<u32> {
    // SAFETY: an all-zero signalfd_siginfo is a valid value.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: `info` is a writable buffer of exactly `size` bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&raw mut info).cast(), size) };
    (usize::try_from(n).ok() == Some(size)).then_some(info.ssi_signo)
}
