//! The few raw OS calls the back-end makes besides mapping memory: `epoll`,
//! `poll`, `fcntl`, `eventfd`, `timerfd` and `signalfd`. Each wrapper is safe
//! to call.

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

/// Copies up to `buf.len()` bytes waiting on the socket `fd` into `buf`
/// without consuming them (`MSG_PEEK`) and without blocking. Returns 0 at
/// end of stream and `WouldBlock` when nothing is waiting. File descriptors
/// attached to the data stay attached for the real read.
pub fn peek(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is live and writable for `buf.len()` bytes for the
        // duration of the call.
        let n = unsafe {
            libc::recv(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if let Ok(n) = usize::try_from(n) {
            return Ok(n);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// How many bytes wait to be read on the socket `fd` (`FIONREAD`).
pub fn bytes_available(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is live
    // and writable for the duration of the call.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &raw mut n) } < 0 {
        return Err(io::Error::last_os_error());
    }
    usize::try_from(n).map_err(|_| io::Error::other("FIONREAD returned a negative count"))
}

/// How many bytes this end has sent on the socket `fd` that the peer has
/// not read yet, as the kernel charges them (`SIOCOUTQ`), and the socket's
/// send buffer size (`SO_SNDBUF`): a send blocks when the first reaches the
/// second.
pub fn send_backlog(fd: RawFd) -> io::Result<(usize, usize)> {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one c_int through the pointer,
    // which is live and writable for the duration of the call.
    if unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &raw mut queued) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: SO_SNDBUF writes one c_int and its length through the
    // pointers, both live and writable for the duration of the call.
    if unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&raw mut buf).cast(),
            &raw mut len,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok((
        usize::try_from(queued).unwrap_or(0),
        usize::try_from(buf).unwrap_or(0),
    ))
}

/// An epoll instance: the loop's set of descriptors, registered once and
/// waited on without rebuilding anything per wakeup.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

/// One event [`Epoll::wait`] reported: the registration's token and what
/// happened.
pub type Event = libc::epoll_event;

impl Epoll {
    /// A new, empty set.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: no pointers; the result is a fresh descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    /// Watches `fd` for input, reported with `token`; see [`epoll_add`].
    pub fn add(&self, fd: RawFd, token: u64, edge: bool) -> io::Result<()> {
        epoll_add(self.fd.as_raw_fd(), fd, token, edge)
    }

    /// Stops watching `fd`; see [`epoll_delete`].
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        epoll_delete(self.fd.as_raw_fd(), fd)
    }

    /// Waits until at least one event is ready (retrying on EINTR) and
    /// returns how many of `events` were filled.
    pub fn wait(&self, events: &mut [Event]) -> io::Result<usize> {
        let max = i32::try_from(events.len()).unwrap_or(i32::MAX);
        loop {
            // SAFETY: `events` is a live, writable array of at least `max`
            // epoll_events.
            let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, -1) };
            if let Ok(n) = usize::try_from(n) {
                return Ok(n);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl AsRawFd for Epoll {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn epoll_ctl(ep: RawFd, op: i32, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `ev` is a live epoll_event for the duration of the call; bad
    // descriptors are reported as errors.
    if unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Adds `fd` to the epoll set `ep`, watched for input and reported with
/// `token`. Edge-triggered (`edge`): one event per change, which for an
/// eventfd is every write (eventfd(2) wakes its waiters on each write), so
/// its counter need not be read; level-triggered otherwise: reported while
/// readable.
pub fn epoll_add(ep: RawFd, fd: RawFd, token: u64, edge: bool) -> io::Result<()> {
    let et = if edge { libc::EPOLLET as u32 } else { 0 };
    epoll_ctl(
        ep,
        libc::EPOLL_CTL_ADD,
        fd,
        libc::EPOLLIN as u32 | et,
        token,
    )
}

/// Removes `fd` from the epoll set `ep`. Must happen before `fd` is closed
/// when another process holds the same open file (a front-end's eventfd):
/// epoll drops a registration by itself only when the open file goes away.
pub fn epoll_delete(ep: RawFd, fd: RawFd) -> io::Result<()> {
    epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, 0, 0)
}

/// An empty event, to size [`Epoll::wait`]'s buffer.
pub const NO_EVENT: Event = libc::epoll_event { events: 0, u64: 0 };

/// A non-blocking monotonic timer firing every `period` (the first time
/// after one period): readable while expirations are pending.
pub fn periodic_timer(period: Duration) -> io::Result<File> {
    // SAFETY: no pointers; the result is a fresh descriptor or -1.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    let f = unsafe { File::from_raw_fd(fd) };
    // A zero period would disarm the timer; a nanosecond is the least.
    let p = period.max(Duration::from_nanos(1));
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(p.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(p.subsec_nanos() as i32),
    };
    let spec = libc::itimerspec {
        it_interval: ts,
        it_value: ts,
    };
    // SAFETY: `spec` is a valid itimerspec for the duration of the call;
    // no old value is asked for.
    if unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(f)
}

/// Reads a timer's pending expirations (0 when none are pending).
pub fn timer_expirations(f: &File) -> u64 {
    let mut buf = [0u8; 8];
    match (&*f).read(&mut buf) {
        Ok(8) => u64::from_ne_bytes(buf),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(ep: &Epoll, within: Duration) -> Vec<u64> {
        // A bounded wait for the test: poll(2) on the epoll descriptor.
        if !poll(&[ep.as_raw_fd()], Some(within)).unwrap()[0].readable {
            return Vec::new();
        }
        let mut evs = [NO_EVENT; 4];
        let n = ep.wait(&mut evs).unwrap();
        evs[..n].iter().map(|e| e.u64).collect()
    }

    #[test]
    fn edge_triggered_eventfd_reports_every_write_without_reads() {
        let ep = Epoll::new().unwrap();
        let e = eventfd().unwrap();
        ep.add(e.as_raw_fd(), 7, true).unwrap();
        assert!(ready(&ep, Duration::from_millis(10)).is_empty());
        for _ in 0..3 {
            signal_eventfd(&e).unwrap();
            assert_eq!(ready(&ep, Duration::from_secs(1)), vec![7]);
            // Not read: edge-triggered, so no event until the next write.
            assert!(ready(&ep, Duration::from_millis(10)).is_empty());
        }
        // The counter kept every write.
        assert!(drain_eventfd(&e));
        ep.delete(e.as_raw_fd()).unwrap();
        signal_eventfd(&e).unwrap();
        assert!(ready(&ep, Duration::from_millis(10)).is_empty());
    }

    #[test]
    fn level_triggered_descriptor_is_reported_until_read() {
        let ep = Epoll::new().unwrap();
        let e = eventfd().unwrap();
        ep.add(e.as_raw_fd(), 3, false).unwrap();
        signal_eventfd(&e).unwrap();
        assert_eq!(ready(&ep, Duration::from_secs(1)), vec![3]);
        assert_eq!(ready(&ep, Duration::from_secs(1)), vec![3]);
        assert!(drain_eventfd(&e));
        assert!(ready(&ep, Duration::from_millis(10)).is_empty());
    }

    #[test]
    fn periodic_timer_fires_repeatedly() {
        let t = periodic_timer(Duration::from_millis(5)).unwrap();
        let ep = Epoll::new().unwrap();
        ep.add(t.as_raw_fd(), 1, false).unwrap();
        for _ in 0..2 {
            assert_eq!(ready(&ep, Duration::from_secs(2)), vec![1]);
            assert!(timer_expirations(&t) >= 1);
        }
        assert_eq!(
            timer_expirations(&t),
            0,
            "nothing pending right after a read"
        );
    }
}
