//! The few raw OS calls the back-end makes besides mapping memory: `poll`,
//! `fcntl`, `eventfd` and `signalfd`. Each wrapper is safe to call.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Puts `fd` in non-blocking mode, so reading a kick eventfd that was
/// already drained returns `WouldBlock` instead of hanging the loop.
pub fn set_nonblocking(fd: &impl AsRawFd) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor we hold; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads and discards an eventfd's counter. Returns whether it was
/// signalled.
pub fn drain_eventfd(f: &File) -> bool {
    let mut buf = [0u8; 8];
    matches!((&*f).read(&mut buf), Ok(8))
}

/// Adds one to an eventfd's counter (a used-buffer notification through a
/// call fd, an error through an err fd).
pub fn signal_eventfd(f: &File) -> io::Result<()> {
    match (&*f).write(&1u64.to_ne_bytes()) {
        Ok(8) => Ok(()),
        Ok(_) => Err(io::Error::from(io::ErrorKind::WriteZero)),
        // The counter is saturated: the peer has a notification pending
        // anyway.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

/// A new non-blocking eventfd.
pub fn eventfd() -> io::Result<File> {
    // SAFETY: no pointers; the result is a fresh descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
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

/// What `poll` saw on one descriptor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ready {
    /// Data to read.
    pub readable: bool,
    /// Hang-up or error: the peer closed or the descriptor is broken.
    pub hangup: bool,
}

/// Waits until one of `fds` is readable or `timeout` passes; retries on
/// EINTR. Returns one [`Ready`] per descriptor.
pub fn poll(fds: &[RawFd], timeout: Option<Duration>) -> io::Result<Vec<Ready>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = match timeout {
        None => -1,
        Some(t) => i32::try_from(t.as_millis().max(1)).unwrap_or(i32::MAX),
    };
    loop {
        // SAFETY: `pfds` is a live, writable array of `pfds.len()` pollfds.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if n >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(pfds
        .iter()
        .map(|p| Ready {
            readable: p.revents & libc::POLLIN != 0,
            hangup: p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
        })
        .collect())
}
