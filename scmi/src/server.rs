//! The transport-agnostic entry: one request in, one response out, plus a
//! bounded outbox of notifications and delayed responses.

use crate::config::{Config, protocol_bit};
use crate::context::{AgentState, Cx, EventSink, NOTIFY_KINDS, agent_count};
use crate::header::{Header, HeaderError, MAX_MESSAGE, MAX_REQUEST, MsgType, Status};
use crate::platform::Platform;
use crate::protocols::{self, Protocol, base, clock, perf, power, reset, sensor, system, voltage};
use crate::wire::{Args, Reply, copy_prefix};

/// One queued platform-to-agent message.
#[derive(Debug, Clone, Copy)]
struct Event {
    agent: u8,
    len: u8,
    bytes: [u8; MAX_MESSAGE],
}

/// A bounded FIFO of notifications and delayed responses.
#[derive(Debug)]
pub struct Outbox<const N: usize> {
    slots: [Event; N],
    head: usize,
    count: usize,
    /// Most messages one agent may have waiting, so an agent that never
    /// drains its channel cannot starve the others.
    per_agent: usize,
    /// Notifications dropped because the outbox (or the agent's share of
    /// it) was full.
    pub dropped: u32,
}

impl<const N: usize> Outbox<N> {
    const EMPTY: Event = Event {
        agent: 0,
        len: 0,
        bytes: [0; MAX_MESSAGE],
    };

    const fn new(agents: usize) -> Self {
        let share = match N.checked_div(agents) {
            Some(s) => s,
            None => N,
        };
        Outbox {
            slots: [Self::EMPTY; N],
            head: 0,
            count: 0,
            per_agent: if share == 0 { 1 } else { share },
            dropped: 0,
        }
    }

    fn count_for(&self, agent: u32) -> usize {
        (0..self.count)
            .filter(|&i| u32::from(self.slots[(self.head + i) % N].agent) == agent)
            .count()
    }

    /// Free slots.
    pub fn free(&self) -> usize {
        N - self.count
    }

    /// Slots `agent` may still fill.
    pub fn free_for(&self, agent: u32) -> usize {
        self.free()
            .min(self.per_agent.saturating_sub(self.count_for(agent)))
    }

    /// Messages queued.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn push(&mut self, agent: u32, header: Header, body: &[u8]) -> Result<(), Status> {
        if self.free_for(agent) == 0 || body.len() + 4 > MAX_MESSAGE {
            return Err(Status::Busy);
        }
        let mut e = Event {
            agent: agent as u8,
            len: (body.len() + 4) as u8,
            bytes: [0; MAX_MESSAGE],
        };
        // `body.len() + 4 <= MAX_MESSAGE` (checked above): both copies are
        // whole.
        if let Some((head, rest)) = e.bytes.split_first_chunk_mut::<4>() {
            *head = header.encode().to_le_bytes();
            copy_prefix(rest, body);
        }
        self.slots[(self.head + self.count) % N] = e;
        self.count += 1;
        Ok(())
    }

    /// Removes the oldest message for `agent` that fits in `buf`, copying
    /// it there; returns its length.
    fn pop_for(&mut self, agent: u32, buf: &mut [u8]) -> Option<usize> {
        let pos =
            (0..self.count).find(|&i| u32::from(self.slots[(self.head + i) % N].agent) == agent)?;
        let e = self.slots[(self.head + pos) % N];
        let len = usize::from(e.len);
        if len > buf.len() {
            return None;
        }
        // `len <= MAX_MESSAGE` (set by `push`): the `?` never returns.
        copy_prefix(buf.get_mut(..len)?, e.bytes.get(..len)?);
        // Close the gap, keeping order.
        for i in pos..self.count - 1 {
            self.slots[(self.head + i) % N] = self.slots[(self.head + i + 1) % N];
        }
        self.count -= 1;
        Some(len)
    }

    fn clear_agent(&mut self, agent: u32) {
        let mut buf = [0u8; MAX_MESSAGE];
        while self.pop_for(agent, &mut buf).is_some() {}
    }
}

impl<const N: usize> EventSink for Outbox<N> {
    fn queue(&mut self, agent: u32, header: Header, body: &[u8]) -> Result<(), Status> {
        let r = self.push(agent, header, body);
        if r.is_err() && header.msg_type == MsgType::Notification {
            self.dropped = self.dropped.saturating_add(1);
        }
        r
    }
    fn free_for(&self, agent: u32) -> usize {
        Outbox::free_for(self, agent)
    }
    fn clear_agent(&mut self, agent: u32) {
        Outbox::clear_agent(self, agent);
    }
}

/// The protocols the server serves besides Base, ascending by id. Adding
/// a protocol is one entry here, its handler module in [`crate::protocols`]
/// and its platform trait in [`crate::platform`].
struct Table<P, const A: usize>(core::marker::PhantomData<P>);

impl<P: Platform, const A: usize> Table<P, A> {
    const ALL: &'static [Protocol<P, A>] = &[
        power::protocol(),
        system::protocol(),
        perf::protocol(),
        clock::protocol(),
        sensor::protocol(),
        reset::protocol(),
        voltage::protocol(),
    ];
}

/// The SCMI server: static configuration, a platform, per-agent state and
/// the outbox. `A` agents at most; `E` queued platform-to-agent messages.
pub struct Server<P, const A: usize = 4, const E: usize = 32> {
    /// The platform behind the protocols.
    pub platform: P,
    config: &'static Config,
    agents: [AgentState; A],
    outbox: Outbox<E>,
    /// Whether each agent's transport has a P2A channel.
    p2a: [bool; A],
}

/// What [`Server::handle`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// A response of this many bytes is in the response buffer.
    Response(usize),
    /// The request was too short to hold a header, or the response buffer
    /// cannot hold a header and a status: nothing could be written.
    Malformed,
}

impl<P: Platform, const A: usize, const E: usize> Server<P, A, E> {
    /// A server for `config` over `platform`. Agents beyond `A` in the
    /// configuration are ignored.
    pub const fn new(config: &'static Config, platform: P) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::AGENT_IDS_FIT;
        let mut agents = [AgentState::new(0); A];
        let n = agent_count::<A>(config) as usize;
        let mut i = 0;
        while i < n {
            agents[i].devices = config.agents[i].devices;
            i += 1;
        }
        Server {
            platform,
            config,
            agents,
            outbox: Outbox::new(n),
            p2a: [false; A],
        }
    }

    /// Agent ids travel in a byte (queued events, the platform's owner
    /// records): at most 255 agents.
    const AGENT_IDS_FIT: () = assert!(A <= u8::MAX as usize, "at most 255 agents");

    /// Number of configured agents this server serves.
    pub fn agent_count(&self) -> u32 {
        agent_count::<A>(self.config)
    }

    /// Declares whether `agent`'s transport has a P2A channel
    /// (`VIRTIO_SCMI_F_P2A_CHANNELS` negotiated). Without one, commands
    /// that would notify or answer late return NOT_SUPPORTED.
    pub fn set_p2a(&mut self, agent: u32, p2a: bool) {
        if let Some(x) = self.p2a.get_mut((agent as usize).wrapping_sub(1)) {
            *x = p2a;
        }
    }

    /// The run-time state of `agent` (1-based): its permissions,
    /// subscriptions and negotiated versions; `None` for an agent the
    /// server does not serve.
    pub fn agent_state(&self, agent: u32) -> Option<&AgentState> {
        self.agents
            .get((agent as usize).wrapping_sub(1))
            .filter(|_| agent <= self.agent_count())
    }

    /// The outbox (for statistics).
    pub fn outbox(&self) -> &Outbox<E> {
        &self.outbox
    }

    /// Whether a notification or delayed response waits for `agent`.
    pub fn has_event(&self, agent: u32) -> bool {
        (0..self.outbox.count)
            .any(|i| u32::from(self.outbox.slots[(self.outbox.head + i) % E].agent) == agent)
    }

    /// Moves the oldest waiting message for `agent` into `buf`; returns its
    /// length. A message that does not fit stays queued.
    pub fn next_event(&mut self, agent: u32, buf: &mut [u8]) -> Option<usize> {
        self.outbox.pop_for(agent, buf)
    }

    /// Lets time pass on the platform (sensor values move, trip points fire
    /// notifications).
    pub fn tick(&mut self, now_ms: u64) {
        let mut cx = Cx {
            platform: &mut self.platform,
            config: self.config,
            agent: 1,
            agents: &mut self.agents,
            p2a: true,
            header: Header::command(0, 0, 0),
            outbox: &mut self.outbox,
        };
        for p in Table::<P, A>::ALL {
            if let Some(tick) = p.tick {
                cx.header = Header::command(p.id, 0, 0);
                tick(&mut cx, now_ms);
            }
        }
    }

    /// Serves one request from `agent` (1-based): `request` is the whole
    /// message (header and payload), `response` the space the agent gave
    /// for the answer. The response echoes the request's header (type 0,
    /// same token); an error response carries exactly the status word. A
    /// request with more payload than an SCMI message may carry
    /// ([`MAX_REQUEST`]) gets PROTOCOL_ERROR unserved (SCMI v3.2 §4.1.4).
    pub fn handle(&mut self, agent: u32, request: &[u8], response: &mut [u8]) -> Handled {
        let (Some((word, payload)), Some((head, out))) = (
            request.split_first_chunk::<4>(),
            response.split_first_chunk_mut::<8>(),
        ) else {
            return Handled::Malformed;
        };
        let word = u32::from_le_bytes(*word);
        let (header, status, len) = match Header::decode_command(word) {
            Ok(h) if request.len() <= MAX_REQUEST => {
                let (s, n) = self.dispatch(agent, h, payload, out);
                (h, s, n)
            }
            // Echo the fields we can read with type 0 so the agent can match
            // the token; the command itself is refused.
            Ok(_) | Err(HeaderError::ReservedBits | HeaderError::NotACommand) => {
                (Header::echo(word), Status::ProtocolError, 0)
            }
        };
        let [h0, h1, h2, h3] = header.encode().to_le_bytes();
        let [s0, s1, s2, s3] = status.code().to_le_bytes();
        *head = [h0, h1, h2, h3, s0, s1, s2, s3];
        Handled::Response(8 + if status == Status::Success { len } else { 0 })
    }

    fn dispatch(
        &mut self,
        agent: u32,
        h: Header,
        payload: &[u8],
        out: &mut [u8],
    ) -> (Status, usize) {
        if agent == 0 || agent > self.agent_count() {
            return (Status::Denied, 0);
        }
        let mut reply = Reply::new(out);
        let mut args = Args::new(payload);
        let p2a = self.p2a[agent as usize - 1];
        let r = if h.protocol == base::ID {
            let present = self.present();
            let mut cx = Cx {
                platform: &mut self.platform,
                config: self.config,
                agent,
                agents: &mut self.agents,
                p2a,
                header: h,
                outbox: &mut self.outbox,
            };
            base::handle(&mut cx, present, &mut args, &mut reply)
        } else {
            let allowed = self
                .config
                .agents
                .get((agent as usize).wrapping_sub(1))
                .is_some_and(|c| c.protocols & protocol_bit(h.protocol) != 0);
            match Table::<P, A>::ALL.iter().find(|p| p.id == h.protocol) {
                Some(p) if allowed && (p.present)(&self.platform) => {
                    let mut cx = Cx {
                        platform: &mut self.platform,
                        config: self.config,
                        agent,
                        agents: &mut self.agents,
                        p2a,
                        header: h,
                        outbox: &mut self.outbox,
                    };
                    common(p, &mut cx, &mut args, &mut reply)
                }
                // §4.1.4 / SCP: an unknown or inaccessible protocol is not
                // supported.
                _ => Err(Status::NotSupported),
            }
        };
        match r {
            Ok(()) => (Status::Success, reply.len()),
            Err(s) => (s, 0),
        }
    }

    /// Protocols the platform has resources for: bit `id - 0x10`
    /// ([`protocol_bit`]), Base excluded.
    pub fn present(&self) -> u32 {
        Table::<P, A>::ALL
            .iter()
            .filter(|p| (p.present)(&self.platform))
            .fold(0, |m, p| m | protocol_bit(p.id))
    }

    /// Protocols `agent` may use, ascending, excluding Base (what
    /// BASE_DISCOVER_LIST_PROTOCOLS lists).
    pub fn protocols_of(&self, agent: u32) -> impl Iterator<Item = u8> + use<P, A, E> {
        let mask = self
            .config
            .agents
            .get((agent as usize).wrapping_sub(1))
            .map_or(0, |c| c.protocols);
        base::listed(mask & self.present())
    }

    /// Forgets what `agent`'s driver set up on its channel (its transport
    /// was reset): the P2A channel, notification subscriptions, negotiated
    /// versions and waiting events. Platform settings and permissions stay.
    pub fn forget_agent(&mut self, agent: u32) {
        self.set_p2a(agent, false);
        if agent >= 1 && agent <= self.agent_count() {
            let st = &mut self.agents[agent as usize - 1];
            st.notify = [0; NOTIFY_KINDS];
            st.negotiated = [0; 16];
        }
        self.outbox.clear_agent(agent);
    }
}

/// Commands every protocol shares (SCMI v3.2 §4.x.2.1-2 and
/// NEGOTIATE_PROTOCOL_VERSION), then the protocol's own handler.
fn common<P: Platform, const A: usize>(
    p: &Protocol<P, A>,
    cx: &mut Cx<'_, P, A>,
    args: &mut Args<'_>,
    out: &mut Reply<'_>,
) -> Result<(), Status> {
    match cx.header.msg_id {
        protocols::PROTOCOL_VERSION => out.u32(p.version),
        protocols::PROTOCOL_MESSAGE_ATTRIBUTES => {
            let id = args.u32()?;
            let id = u8::try_from(id).map_err(|_| Status::NotFound)?;
            if id == protocols::NEGOTIATE_PROTOCOL_VERSION
                || id == protocols::PROTOCOL_VERSION
                || id == protocols::PROTOCOL_MESSAGE_ATTRIBUTES
            {
                return out.u32(0);
            }
            let attrs = (p.message_attributes)(cx, id)?;
            out.u32(attrs)
        }
        protocols::NEGOTIATE_PROTOCOL_VERSION => {
            let v = args.u32()?;
            // Same major, minor not above ours (layouts are compatible
            // within a major).
            if v >> 16 == p.version >> 16 && v & 0xffff <= p.version & 0xffff {
                // negotiated[] holds the standard protocols 0x10..=0x1f;
                // another id cannot be recorded: NOT_SUPPORTED.
                let slot = usize::from(p.id)
                    .checked_sub(0x10)
                    .and_then(|i| cx.me().ok()?.negotiated.get_mut(i))
                    .ok_or(Status::NotSupported)?;
                *slot = v;
                Ok(())
            } else {
                Err(Status::NotSupported)
            }
        }
        id => (p.handle)(cx, id, args, out),
    }
}
