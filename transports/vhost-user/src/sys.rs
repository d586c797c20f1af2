//! The few OS calls the back-end makes besides mapping memory: socket
//! queries the `vhost` crate does not offer (`MSG_PEEK`, `FIONREAD`,
//! `SIOCOUTQ`), `fcntl`, eventfd reads and writes, and the loop's epoll set
//! and timer (`vmm-sys-util`'s, with the retries and modes the loop needs).
//! Each wrapper is safe to call.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

pub use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
pub use vmm_sys_util::timerfd::TimerFd;

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

/// Watches `fd` in the epoll set `ep` for input, reported with `token`.
/// Edge-triggered (`edge`): one event per change, which for an eventfd is
/// every write (eventfd(2) wakes its waiters on each write), so its counter
/// need not be read; level-triggered otherwise: reported while readable.
pub fn watch(ep: &Epoll, fd: RawFd, token: u64, edge: bool) -> io::Result<()> {
    let mut events = EventSet::IN;
    events.set(EventSet::EDGE_TRIGGERED, edge);
    ep.ctl(ControlOperation::Add, fd, EpollEvent::new(events, token))
}

/// Stops watching `fd`. Must happen before `fd` is closed when another
/// process holds the same open file (a front-end's eventfd): epoll drops a
/// registration by itself only when the open file goes away.
pub fn unwatch(ep: &Epoll, fd: RawFd) -> io::Result<()> {
    ep.ctl(ControlOperation::Delete, fd, EpollEvent::default())
}

/// Waits until at least one event is ready or `timeout` passes (`None`:
/// no limit), retrying on EINTR; returns how many of `events` were filled.
pub fn wait(ep: &Epoll, timeout: Option<Duration>, events: &mut [EpollEvent]) -> io::Result<usize> {
    let ms = timeout.map_or(-1, |t| {
        i32::try_from(t.as_millis().max(1)).unwrap_or(i32::MAX)
    });
    loop {
        match ep.wait(ms, events) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// A non-blocking monotonic timer firing every `period` (the first time
/// after one period): readable while expirations are pending.
pub fn periodic_timer(period: Duration) -> io::Result<TimerFd> {
    let mut t = TimerFd::new()?;
    set_nonblocking(&t)?;
    // A zero period would disarm the timer; a nanosecond is the least.
    let p = period.max(Duration::from_nanos(1));
    t.reset(p, Some(p))?;
    Ok(t)
}

/// Reads a timer's pending expirations (0 when none are pending).
pub fn timer_expirations(t: &mut TimerFd) -> u64 {
    t.wait().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{FromRawFd, IntoRawFd};
    use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

    fn ready(ep: &Epoll, within: Duration) -> Vec<u64> {
        let mut evs = [EpollEvent::default(); 4];
        let n = wait(ep, Some(within), &mut evs).unwrap();
        evs[..n].iter().map(EpollEvent::data).collect()
    }

    fn eventfd() -> File {
        let e = EventFd::new(EFD_NONBLOCK).unwrap();
        // SAFETY: `into_raw_fd` hands over sole ownership of the descriptor.
        unsafe { File::from_raw_fd(e.into_raw_fd()) }
    }

    #[test]
    fn edge_triggered_eventfd_reports_every_write_without_reads() {
        let ep = Epoll::new().unwrap();
        let e = eventfd();
        watch(&ep, e.as_raw_fd(), 7, true).unwrap();
        assert!(ready(&ep, Duration::from_millis(10)).is_empty());
        for _ in 0..3 {
            signal_eventfd(&e).unwrap();
            assert_eq!(ready(&ep, Duration::from_secs(1)), vec![7]);
            // Not read: edge-triggered, so no event until the next write.
            assert!(ready(&ep, Duration::from_millis(10)).is_empty());
        }
        // The counter kept every write.
        assert!(drain_eventfd(&e));
        unwatch(&ep, e.as_raw_fd()).unwrap();
        signal_eventfd(&e).unwrap();
        assert!(ready(&ep, Duration::from_millis(10)).is_empty());
    }

    #[test]
    fn level_triggered_descriptor_is_reported_until_read() {
        let ep = Epoll::new().unwrap();
        let e = eventfd();
        watch(&ep, e.as_raw_fd(), 3, false).unwrap();
        signal_eventfd(&e).unwrap();
        assert_eq!(ready(&ep, Duration::from_secs(1)), vec![3]);
        assert_eq!(ready(&ep, Duration::from_secs(1)), vec![3]);
        assert!(drain_eventfd(&e));
        assert!(ready(&ep, Duration::from_millis(10)).is_empty());
    }

    #[test]
    fn periodic_timer_fires_repeatedly() {
        let mut t = periodic_timer(Duration::from_millis(5)).unwrap();
        let ep = Epoll::new().unwrap();
        watch(&ep, t.as_raw_fd(), 1, false).unwrap();
        for _ in 0..2 {
            assert_eq!(ready(&ep, Duration::from_secs(2)), vec![1]);
            assert!(timer_expirations(&mut t) >= 1);
        }
        assert_eq!(
            timer_expirations(&mut t),
            0,
            "nothing pending right after a read"
        );
    }
}
