//! Raw SCMI messages over a Unix stream socket (`std`): the host mode of
//! the SCMI server, for agents that are processes on the same machine.
//!
//! Every message in either direction is a frame: its length as a
//! little-endian `u32`, then the message (header and payload). One
//! connection is one agent. The agent sends commands; the server answers
//! each with exactly one frame, then writes the notifications and delayed
//! responses waiting for that agent (the header type tells them apart:
//! 0 response, 2 delayed response, 3 notification; SCMI v3.2 §4.1.1).
//! Events that arise while the agent is silent (another agent's command,
//! time passing on the platform) are written within one poll interval.
//!
//! Framing errors, mirroring what the virtio-scmi device does with odd
//! buffers:
//!
//! * a frame of 0 to 3 bytes holds no header: answered with an empty frame
//!   (length 0), the connection stays up;
//! * 133 to 136 bytes (more than 128 payload bytes, Linux's
//!   `VIRTIO_SCMI_MAX_MSG_SIZE`): answered PROTOCOL_ERROR with the header
//!   echoed;
//! * a length above 136 ([`MAX_FRAME`]): the stream cannot be trusted any
//!   more; the connection is closed;
//! * end of stream inside a frame: the connection is closed.
//!
//! The connection has a P2A channel (the stream itself) for as long as it
//! is open; when it closes the agent's subscriptions and waiting events are
//! dropped and its id is free for the next connection.
//!
//! # What it refuses to know about
//!
//! virtio (agents here are processes, not drivers), the platform behind
//! the server, and where the configuration comes from.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use scmi_server::{Backend, Handled, MAX_MESSAGE, Platform, Server};

/// Largest frame (message) accepted or sent: header, status and 128 payload
/// bytes.
pub const MAX_FRAME: usize = MAX_MESSAGE;

/// How connections get their agent id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agents {
    /// Each connection gets the lowest id not in use; a connection when all
    /// are in use is closed at once.
    PerConnection,
    /// Every connection is this agent; only one at a time (a second one is
    /// closed at once).
    Fixed(u32),
}

/// Host options.
#[derive(Debug, Clone, Copy)]
pub struct HostOptions {
    /// Agent id assignment.
    pub agents: Agents,
    /// How often an idle connection looks for events to write.
    pub poll: Duration,
    /// How often time passes on the platform ([`Server::tick`]); `None`
    /// never.
    pub tick: Option<Duration>,
    /// A connection whose peer does not take a frame within this time is
    /// closed.
    pub write_timeout: Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            agents: Agents::PerConnection,
            poll: Duration::from_millis(20),
            tick: Some(Duration::from_millis(100)),
            write_timeout: Duration::from_secs(5),
        }
    }
}

struct State<P, const A: usize, const E: usize> {
    server: Server<P, A, E>,
    /// Agents with an open connection (index = id - 1).
    busy: [bool; A],
    last_tick: Option<Instant>,
}

struct Shared<P, const A: usize, const E: usize> {
    state: Mutex<State<P, A, E>>,
    opts: HostOptions,
    start: Instant,
}

/// A server shared by the connections of one socket.
pub struct Host<P, const A: usize, const E: usize> {
    shared: Arc<Shared<P, A, E>>,
}

impl<P, const A: usize, const E: usize> Clone for Host<P, A, E> {
    fn clone(&self) -> Self {
        Host {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Writes one frame.
pub fn write_frame<W: Write>(w: &mut W, msg: &[u8]) -> io::Result<()> {
    let len = u32::try_from(msg.len()).map_err(|_| io::Error::from(ErrorKind::InvalidInput))?;
    let mut frame = Vec::with_capacity(4 + msg.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(msg);
    w.write_all(&frame)
}

/// Reads one frame of at most [`MAX_FRAME`] bytes; `None` at a clean end of
/// stream (before a length). A truncated frame is
/// [`ErrorKind::UnexpectedEof`], a longer one [`ErrorKind::InvalidData`].
pub fn read_frame<R: Read>(r: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("frame of {len} bytes (at most {MAX_FRAME})"),
        ));
    }
    let mut msg = vec![0u8; len];
    r.read_exact(&mut msg)?;
    Ok(Some(msg))
}

/// Releases the agent id (and forgets the agent's driver state) when a
/// connection ends, however it ends.
struct Claim<'h, P: Platform, const A: usize, const E: usize> {
    host: &'h Host<P, A, E>,
    agent: u32,
}

impl<P: Platform, const A: usize, const E: usize> Drop for Claim<'_, P, A, E> {
    fn drop(&mut self) {
        let mut st = self.host.lock();
        st.server.forget_driver(self.agent);
        if let Some(b) = st.busy.get_mut(self.agent as usize - 1) {
            *b = false;
        }
    }
}

impl<P: Platform, const A: usize, const E: usize> Host<P, A, E> {
    /// A host serving `server`. Fails if a fixed agent id is not one the
    /// server serves.
    pub fn new(server: Server<P, A, E>, opts: HostOptions) -> io::Result<Self> {
        if let Agents::Fixed(a) = opts.agents
            && (a == 0 || a > server.agent_count())
        {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "agent {a} does not exist (agents are 1..={})",
                    server.agent_count()
                ),
            ));
        }
        Ok(Host {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    server,
                    busy: [false; A],
                    last_tick: None,
                }),
                opts,
                start: Instant::now(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<P, A, E>> {
        // A panic elsewhere cannot leave the server half-updated in a way
        // that matters more than stopping every connection would.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn claim(&self) -> io::Result<Claim<'_, P, A, E>> {
        let mut st = self.lock();
        let n = st.server.agent_count() as usize;
        let agent = match self.shared.opts.agents {
            Agents::Fixed(a) => {
                let i = (a as usize).wrapping_sub(1);
                match st.busy.get(i) {
                    Some(false) if i < n => a,
                    Some(true) => {
                        return Err(io::Error::new(
                            ErrorKind::AddrInUse,
                            format!("agent {a} already has a connection"),
                        ));
                    }
                    _ => {
                        return Err(io::Error::new(
                            ErrorKind::InvalidInput,
                            format!("agent {a} does not exist"),
                        ));
                    }
                }
            }
            Agents::PerConnection => match st.busy.iter().take(n).position(|b| !b) {
                Some(i) => i as u32 + 1,
                None => {
                    return Err(io::Error::new(
                        ErrorKind::AddrInUse,
                        format!("all {n} agents have a connection"),
                    ));
                }
            },
        };
        st.busy[agent as usize - 1] = true;
        // The stream carries notifications and delayed responses.
        st.server.set_p2a(agent, true);
        drop(st);
        Ok(Claim { host: self, agent })
    }

    /// Serves one connection until it closes; the agent id is released
    /// then. Returns why it closed if that was not a clean end of stream.
    pub fn serve_connection(&self, stream: UnixStream) -> io::Result<()> {
        let claim = match self.claim() {
            Ok(c) => c,
            Err(e) => {
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return Err(e);
            }
        };
        self.serve_claimed(claim, stream)
    }

    /// Serves a connection whose agent id is already claimed.
    fn serve_claimed(&self, claim: Claim<'_, P, A, E>, mut stream: UnixStream) -> io::Result<()> {
        let agent = claim.agent;
        stream.set_read_timeout(Some(self.shared.opts.poll))?;
        stream.set_write_timeout(Some(self.shared.opts.write_timeout))?;
        let mut pending: Vec<u8> = Vec::with_capacity(4 + MAX_FRAME + 512);
        let mut chunk = [0u8; 512];
        let r = loop {
            // Every complete frame already received.
            match self.take_frames(agent, &mut pending, &mut stream) {
                Ok(()) => {}
                Err(e) => break Err(e),
            }
            match stream.read(&mut chunk) {
                Ok(0) if pending.is_empty() => break Ok(()),
                Ok(0) => {
                    break Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!("agent {agent}: stream ended inside a frame"),
                    ));
                }
                Ok(n) => pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    // Idle: let time pass and write what waits.
                    let frames = self.events(agent, None);
                    if let Err(e) = send(&mut stream, &frames) {
                        break Err(e);
                    }
                }
                Err(e) => break Err(e),
            }
        };
        // Free the agent id before the peer can see the end of stream, so
        // a client reconnecting at once gets it back.
        drop(claim);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        r
    }

    /// Serves every complete frame at the front of `pending`.
    fn take_frames(
        &self,
        agent: u32,
        pending: &mut Vec<u8>,
        stream: &mut UnixStream,
    ) -> io::Result<()> {
        while let Some(len) = pending.get(..4) {
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if len > MAX_FRAME {
                return Err(io::Error::new(
                    ErrorKind::InvalidData,
                    format!("agent {agent}: frame of {len} bytes (at most {MAX_FRAME})"),
                ));
            }
            let Some(msg) = pending.get(4..4 + len) else {
                return Ok(());
            };
            let frames = self.events(agent, Some(msg));
            pending.drain(..4 + len);
            send(stream, &frames)?;
        }
        Ok(())
    }

    /// Under one lock: serves `request` if any, lets time pass, and takes
    /// the events waiting for `agent`. Returns the frames to write, the
    /// reply first.
    fn events(&self, agent: u32, request: Option<&[u8]>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut st = self.lock();
        if let Some(req) = request {
            let mut resp = [0u8; MAX_FRAME];
            let len = match st.server.handle(agent, req, &mut resp) {
                Handled::Response(n) => n,
                // No header: nothing to echo; an empty frame says so.
                Handled::Malformed => 0,
            };
            out.push(resp.get(..len).unwrap_or_default().to_vec());
        }
        if let Some(period) = self.shared.opts.tick {
            let now = Instant::now();
            if st.last_tick.is_none_or(|t| now.duration_since(t) >= period) {
                st.last_tick = Some(now);
                let ms = now.duration_since(self.shared.start).as_millis();
                st.server.tick(u64::try_from(ms).unwrap_or(u64::MAX));
            }
        }
        let mut buf = [0u8; MAX_FRAME];
        while let Some(n) = st.server.next_event(agent, &mut buf) {
            out.push(buf.get(..n).unwrap_or_default().to_vec());
        }
        out
    }
}

impl<P: Platform + Send, const A: usize, const E: usize> Host<P, A, E> {
    /// Accepts connections forever, each served on its own thread. Returns
    /// only if accepting fails in a way that will not get better.
    pub fn serve(&self, listener: &UnixListener) -> io::Result<()> {
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    // Claim the agent id here, in accept order, so the n-th
                    // connection is agent n whatever the threads do.
                    let agent = match self.claim() {
                        Ok(c) => {
                            let a = c.agent;
                            core::mem::forget(c);
                            a
                        }
                        Err(e) => {
                            let _ = stream.shutdown(std::net::Shutdown::Both);
                            eprintln!("scmi-socket: connection refused: {e}");
                            continue;
                        }
                    };
                    let host = self.clone();
                    thread::Builder::new()
                        .name(String::from("scmi-conn"))
                        .spawn(move || {
                            let claim = Claim { host: &host, agent };
                            if let Err(e) = host.serve_claimed(claim, stream) {
                                eprintln!("scmi-socket: connection closed: {e}");
                            }
                        })?;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Out of descriptors and the like: back off, keep going.
                Err(e) if is_transient(&e) => {
                    eprintln!("scmi-socket: accept: {e}");
                    thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn send(stream: &mut UnixStream, frames: &[Vec<u8>]) -> io::Result<()> {
    for f in frames {
        write_frame(stream, f)?;
    }
    Ok(())
}

fn is_transient(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED.
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12 | 103))
        || e.kind() == ErrorKind::ConnectionAborted
}
