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

use crate::device::{KICK_TOKEN, VhostUserDevice};
use crate::sys;

/// Loop options.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// How often the timer hook runs (device time, device-initiated events,
    /// rings the front-end asked to be polled). `None`: no timer at all, so
    /// nothing runs while the front-end is idle; the hook runs instead right
    /// before the kicks of each wakeup are served (time passes on demand)
    /// and rings without a kick eventfd are not polled.
    pub tick: Option<Duration>,
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

/// How long a front-end may take to send the rest of a message it has
/// begun. The loop reads a message only once all of it has arrived, so a
/// front-end that stops mid-message holds the rings for at most this long;
/// then its connection is dropped and the next front-end is served. QEMU
/// writes each message in one go.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(1);

/// vhost-user message header: request, flags, size of the body (vhost-user
/// spec, "Message specification"), all u32 in the host's byte order.
const HEADER_LEN: usize = 12;

/// Waits, at most [`MESSAGE_TIMEOUT`], until the whole message that has
/// begun on `sock` can be read: its header and as many bytes as the header
/// announces. `Ok(true)`: read it; also at end of stream and when the
/// header is unusable, which the `vhost` crate's reader reports. `Ok(false)`:
/// nothing is waiting after all (do not read: it would block). `Err` says
/// how much arrived.
fn whole_message(sock: RawFd) -> Result<bool, String> {
    // The replies are written with blocking sends (the `vhost` crate retries
    // a send that would block), so a front-end that stops reading them would
    // stop the loop once the socket's send buffer is full. Refuse to read
    // more from it well before: half the buffer is hundreds of replies.
    let (unread, sndbuf) = sys::send_backlog(sock).map_err(|e| format!("socket: {e}"))?;
    if unread > sndbuf / 2 {
        return Err(format!(
            "the front-end does not read its replies ({unread} bytes unread, send buffer {sndbuf})"
        ));
    }
    let deadline = Instant::now() + MESSAGE_TIMEOUT;
    loop {
        let mut hdr = [0u8; HEADER_LEN];
        let peeked = match sys::peek(sock, &mut hdr) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(format!("socket: {e}")),
        };
        let avail = sys::bytes_available(sock).map_err(|e| format!("socket: {e}"))?;
        let need = if peeked == HEADER_LEN {
            let size = u32::from_ne_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]) as usize;
            HEADER_LEN.saturating_add(size)
        } else if avail >= HEADER_LEN {
            // The header is split over separately sent pieces; the crate's
            // reader gathers them.
            return Ok(true);
        } else {
            HEADER_LEN
        };
        // A body larger than the socket could ever hold is refused by the
        // reader (over vhost-user's message limit), not waited for.
        if avail >= need || need > MAX_BODY_WAIT {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the front-end stopped mid-message: {avail} of {need} bytes after {MESSAGE_TIMEOUT:?}"
            ));
        }
        // The socket stays readable while part of a message waits, so
        // readiness cannot say when the rest comes: look again shortly.
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Bodies up to this size are waited for in full; vhost-user's largest
/// message (a memory table of 8 regions) is far below it.
const MAX_BODY_WAIT: usize = 64 * 1024;

/// Epoll tokens besides the kick eventfds ([`KICK_TOKEN`] and up).
const SOCKET: u64 = 0;
const STOP: u64 = 1;
const TIMER: u64 = 2;
const LISTENER: u64 = 3;

/// What the loop waits on: one epoll set with the stop descriptor, a
/// periodic timer for the tick and, while a front-end is connected, its
/// socket and the kick eventfds (registered by the device as the messages
/// set them, [`VhostUserDevice::watch_kicks`]). Nothing is rebuilt, read
/// or allocated per wakeup but what fired.
struct Waiter {
    epoll: Arc<sys::Epoll>,
    /// The periodic tick; `None`: the hook runs before kicks instead.
    timer: Option<sys::TimerFd>,
}

impl Waiter {
    fn new(opts: &ServeOptions) -> io::Result<Waiter> {
        let epoll = sys::Epoll::new()?;
        let timer = match opts.tick {
            Some(period) => {
                let t = sys::periodic_timer(period)?;
                sys::watch(&epoll, t.as_raw_fd(), TIMER, false)?;
                Some(t)
            }
            None => None,
        };
        if let Some(stop) = opts.stop {
            sys::watch(&epoll, stop, STOP, false)?;
        }
        Ok(Waiter {
            epoll: Arc::new(epoll),
            timer,
        })
    }

    /// Whether a tick is due (consumes the timer's expirations: ticks
    /// missed while busy are not made up, the next one is a period later).
    fn tick_due(&mut self) -> bool {
        self.timer
            .as_mut()
            .is_some_and(|t| sys::timer_expirations(t) > 0)
    }

    /// Whether the hook runs before kicks rather than on a timer.
    fn on_demand(&self) -> bool {
        self.timer.is_none()
    }
}

/// The time hook: the platform clock in milliseconds, read when time is to
/// pass (every `ServeOptions::tick`, or before each wakeup's kicks without
/// a tick) and handed to the devices ([`VirtioDevice::advance`]).
pub type Clock<'a> = &'a mut dyn FnMut() -> u64;

/// Serves one connected front-end until it disconnects or `stop` fires.
/// Every wakeup is one service step of the device
/// ([`VhostUserDevice::wake`]): its kicks, and the clock when a tick is
/// due (every `opts.tick`; without a tick, before the kicks of each
/// wakeup).
pub fn serve_connection<D: VirtioDevice, const NQ: usize>(
    stream: UnixStream,
    dev: &Shared<D, NQ>,
    opts: &ServeOptions,
    clock: Clock<'_>,
) -> ConnectionEnd {
    match Waiter::new(opts) {
        Ok(mut w) => connection(stream, dev, clock, &mut w),
        Err(e) => ConnectionEnd::Failed(format!("epoll: {e}")),
    }
}

fn connection<D: VirtioDevice, const NQ: usize>(
    stream: UnixStream,
    dev: &Shared<D, NQ>,
    clock: Clock<'_>,
    w: &mut Waiter,
) -> ConnectionEnd {
    let sock = stream.as_raw_fd();
    if let Err(e) = sys::watch(&w.epoll, sock, SOCKET, false) {
        return ConnectionEnd::Failed(format!("epoll: {e}"));
    }
    lock(dev).watch_kicks(Some(Arc::clone(&w.epoll)));
    let mut handler = BackendReqHandler::from_stream(stream, Arc::clone(dev));
    let mut events = [sys::EpollEvent::default(); 8];
    let end = loop {
        let n = match sys::wait(&w.epoll, None, &mut events) {
            Ok(n) => n,
            Err(e) => break ConnectionEnd::Failed(format!("epoll: {e}")),
        };
        let ready = &events[..n];
        if ready.iter().any(|e| e.data() == STOP) {
            break ConnectionEnd::Stop;
        }
        // Kicks first: they belong to the rings as configured now, before a
        // message below may stop them. Edge-triggered: not read (the device
        // knows).
        let (mut message, mut tick, mut kicked) = (false, false, 0u64);
        for e in ready {
            match e.data() {
                SOCKET => message = true,
                TIMER => tick = true,
                k => {
                    if let Some(q) = k.checked_sub(KICK_TOKEN).filter(|&q| q < 64) {
                        kicked |= 1 << q;
                    }
                }
            }
        }
        if kicked != 0 {
            // Without a timer, time is brought up to date with the kicks.
            let now = w.on_demand().then(&mut *clock);
            lock(dev).wake(kicked, now);
        }
        if message {
            match whole_message(sock) {
                Ok(true) => {}
                Ok(false) => message = false,
                Err(e) => break ConnectionEnd::Failed(e),
            }
        }
        if message {
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
        if tick && w.tick_due() {
            let now = clock();
            lock(dev).wake(0, Some(now));
        }
    };
    {
        let mut d = lock(dev);
        d.disconnect();
        d.watch_kicks(None);
    }
    let _ = sys::unwatch(&w.epoll, sock);
    end
}

/// Accepts front-ends on `listener` one after the other until `stop`
/// fires. Time keeps passing between connections.
pub fn serve<D: VirtioDevice, const NQ: usize>(
    listener: &UnixListener,
    dev: &Shared<D, NQ>,
    opts: &ServeOptions,
    clock: Clock<'_>,
) -> io::Result<()> {
    let mut w = Waiter::new(opts)?;
    let lfd = listener.as_raw_fd();
    sys::watch(&w.epoll, lfd, LISTENER, false)?;
    let mut events = [sys::EpollEvent::default(); 4];
    loop {
        let n = sys::wait(&w.epoll, None, &mut events)?;
        let ready = &events[..n];
        if ready.iter().any(|e| e.data() == STOP) {
            return Ok(());
        }
        if ready.iter().any(|e| e.data() == TIMER) && w.tick_due() {
            let now = clock();
            lock(dev).wake(0, Some(now));
        }
        if !ready.iter().any(|e| e.data() == LISTENER) {
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
        // One front-end at a time: the next one waits in the backlog.
        sys::unwatch(&w.epoll, lfd)?;
        let end = connection(stream, dev, &mut *clock, &mut w);
        sys::watch(&w.epoll, lfd, LISTENER, false)?;
        match end {
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
