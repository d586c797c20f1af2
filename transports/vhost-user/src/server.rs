//! The event loop: one front-end connection at a time on a listening Unix
//! socket, its messages, the kick eventfds of its rings and a periodic
//! timer, all on one thread.
//!
//! When a connection closes (QEMU exited, or rebooted its vhost-user
//! device's socket) the device is reset and the next connection is served
//! from scratch: the daemon outlives any number of front-ends. The loop ends
//! when the `stop` descriptor becomes readable (a signalfd in the daemon, an
//! eventfd in tests).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vhost::vhost_user::{BackendReqHandler, Error};
use virtio_backend::VirtioDevice;

use crate::device::VhostUserDevice;
use crate::sys;

/// Loop options.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// How often the timer hook runs (device time, device-initiated events,
    /// rings the front-end asked to be polled).
    pub tick: Duration,
    /// The loop ends when this descriptor becomes readable.
    pub stop: Option<RawFd>,
}

/// How one connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The front-end closed the connection.
    Closed,
    /// The connection was dropped because of an error (logged).
    Failed(String),
    /// The stop descriptor became readable.
    Stop,
}

/// A device shared between the message handler and the loop.
pub type Shared<D, const NQ: usize> = Arc<Mutex<VhostUserDevice<D, NQ>>>;

fn lock<D, const NQ: usize>(dev: &Shared<D, NQ>) -> MutexGuard<'_, VhostUserDevice<D, NQ>> {
    // A poisoned lock means a panic elsewhere already; the state is still
    // the last consistent one the handler left.
    dev.lock().unwrap_or_else(|p| p.into_inner())
}

/// Errors of the handler that leave the connection usable: the request was
/// refused by the device (and acknowledged as failed with `REPLY_ACK`).
fn recoverable(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidParam
            | Error::InvalidOperation(_)
            | Error::BackendInternalError
            | Error::SocketRetry(_)
    )
}

/// Serves one connected front-end until it disconnects or `stop` fires.
/// `on_tick` runs every `opts.tick` with the device type (let time pass on
/// it), followed by [`VhostUserDevice::poll`].
pub fn serve_connection<D: VirtioDevice, const NQ: usize>(
    stream: UnixStream,
    dev: &Shared<D, NQ>,
    opts: &ServeOptions,
    on_tick: &mut dyn FnMut(&mut D),
    next_tick: &mut Instant,
) -> ConnectionEnd {
    let sock = stream.as_raw_fd();
    let mut handler = BackendReqHandler::from_stream(stream, Arc::clone(dev));
    let end = loop {
        let kicks = lock(dev).kick_fds();
        let mut fds = vec![sock];
        fds.extend(opts.stop);
        let stop_at = 1;
        let first_kick = fds.len();
        fds.extend(kicks.iter().map(|&(_, fd)| fd));
        let timeout = next_tick.saturating_duration_since(Instant::now());
        let ready = match sys::poll(&fds, Some(timeout)) {
            Ok(r) => r,
            Err(e) => break ConnectionEnd::Failed(format!("poll: {e}")),
        };
        if opts.stop.is_some() && ready[stop_at].readable {
            break ConnectionEnd::Stop;
        }
        // Kicks first: they belong to the rings as configured now, before a
        // message below may stop them.
        for (k, &(q, _)) in kicks.iter().enumerate() {
            let r = ready[first_kick + k];
            if r.readable {
                lock(dev).kick(q);
            }
        }
        let s = ready[0];
        if s.readable || s.hangup {
            match handler.handle_request() {
                Ok(()) => {}
                Err(Error::Disconnected) | Err(Error::PartialMessage) => {
                    break ConnectionEnd::Closed;
                }
                Err(e) => {
                    if let Some(f) = lock(dev).take_fatal() {
                        break ConnectionEnd::Failed(f);
                    }
                    if !recoverable(&e) {
                        break ConnectionEnd::Failed(format!("vhost-user protocol error: {e}"));
                    }
                }
            }
        }
        if Instant::now() >= *next_tick {
            *next_tick += opts.tick;
            if *next_tick < Instant::now() {
                *next_tick = Instant::now() + opts.tick;
            }
            let mut d = lock(dev);
            on_tick(d.device_mut());
            d.poll();
        }
    };
    lock(dev).disconnect();
    end
}

/// Accepts front-ends on `listener` one after the other until `stop`
/// fires. The timer hook keeps running between connections.
pub fn serve<D: VirtioDevice, const NQ: usize>(
    listener: &UnixListener,
    dev: &Shared<D, NQ>,
    opts: &ServeOptions,
    on_tick: &mut dyn FnMut(&mut D),
) -> io::Result<()> {
    let mut next_tick = Instant::now() + opts.tick;
    let mut fds = vec![listener.as_raw_fd()];
    fds.extend(opts.stop);
    loop {
        let timeout = next_tick.saturating_duration_since(Instant::now());
        let ready = sys::poll(&fds, Some(timeout))?;
        if opts.stop.is_some() && ready[1].readable {
            return Ok(());
        }
        if Instant::now() >= next_tick {
            next_tick = Instant::now() + opts.tick;
            on_tick(lock(dev).device_mut());
        }
        if !ready[0].readable {
            continue;
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // The listener may be non-blocking; the connection must not be.
        stream.set_nonblocking(false)?;
        eprintln!("vhost-user: front-end connected");
        match serve_connection(stream, dev, opts, on_tick, &mut next_tick) {
            ConnectionEnd::Closed => {
                eprintln!("vhost-user: front-end disconnected; waiting for the next one")
            }
            ConnectionEnd::Failed(e) => {
                eprintln!("vhost-user: connection dropped: {e}; waiting for the next one")
            }
            ConnectionEnd::Stop => return Ok(()),
        }
    }
}
