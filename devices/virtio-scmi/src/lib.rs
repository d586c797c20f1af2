//! The virtio-scmi device (virtio v1.2 §5.17, device id 32): one SCMI agent
//! per device, its commands on the cmdq and its notifications and delayed
//! responses on the eventq.
//!
//! Mirrors what `drivers/firmware/arm_scmi/transports/virtio.c` and
//! `arm_scmi/msg.c` of Linux 6.12 send and expect:
//!
//! * every cmdq buffer is completed, whatever it holds (a buffer the device
//!   keeps is lost to Linux for good, and enough of them make every command
//!   fail with -EBUSY);
//! * the reply echoes the request header (same token, type 0) and never
//!   exceeds the device-writable bytes, which Linux sizes exactly to
//!   `8 + rx_size`;
//! * a request is read through the chain's [`Reader`](virtio_backend::Reader)
//!   whatever its layout: Linux sends two descriptors, or one indirect
//!   descriptor holding two entries when `VIRTIO_F_INDIRECT_DESC` is
//!   negotiated, and other drivers may split it any way they like;
//! * Linux keeps up to half the cmdq ring in flight; every available chain
//!   is served on each kick, none waits behind another;
//! * eventq buffers are filled from the server's outbox, oldest first, after
//!   the cmdq replies of the same kick were completed (a delayed response
//!   must not overtake its immediate reply).
//!
//! The device never notifies anyone: the [`DeviceCore`](virtio_backend::DeviceCore)
//! asks the queues whether the driver wants a used-buffer notification after
//! each call into the device and returns the answer as
//! [`Interrupts`](virtio_backend::Interrupts).
//!
//! Several devices (agents) may share one [`Server`](scmi_server::Server):
//! give each a `&RefCell<Server>` as its [`Backend`]. Events a command
//! queues for another agent reach that agent's eventq when its device is
//! polled ([`DeviceCore::poll`](virtio_backend::DeviceCore::poll)).
//!
//! # What it refuses to know about
//!
//! SCMI itself (the server's: this crate only carries messages between the
//! queues and a [`Backend`]), the platform, and transports: how the driver's
//! memory is reached and how kicks and notifications travel is the
//! integrator's business, through `virtio-backend`.

#![no_std]
#![forbid(unsafe_code)]

pub use scmi_server::Backend;
use scmi_server::{Handled, MAX_MESSAGE, MAX_REQUEST};
use virtio_backend::spec::features;
use virtio_backend::{DescriptorChain, DeviceCore, GuestMemory, Queue, QueueError, VirtioDevice};

/// Virtio device id of SCMI (virtio v1.2 §5.17.1).
pub const DEVICE_ID: u32 = 32;

/// `VIRTIO_SCMI_F_P2A_CHANNELS` (virtio v1.2 §5.17.3): the device has an
/// eventq for notifications and delayed responses.
pub const F_P2A_CHANNELS: u64 = 1 << 0;

/// `VIRTIO_SCMI_F_SHARED_MEMORY` (virtio v1.2 §5.17.3). Never offered: this
/// device has no statistics shared memory region, and Linux 6.12 never
/// accepts the bit anyway.
pub const F_SHARED_MEMORY: u64 = 1 << 1;

/// Index of the cmdq (virtio v1.2 §5.17.2).
pub const CMDQ: u16 = 0;

/// Index of the eventq; it exists only with [`F_P2A_CHANNELS`] (virtio
/// v1.2 §5.17.2).
pub const EVENTQ: u16 = 1;

/// Transport features offered by default: everything of the core's ring
/// features Linux's virtio core accepts and that changes nothing but the
/// ring layout.
pub const DEFAULT_RING_FEATURES: u64 =
    features::INDIRECT_DESC | features::EVENT_IDX | features::RING_PACKED;

/// Device options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Offer `VIRTIO_SCMI_F_P2A_CHANNELS` (and so an eventq).
    pub p2a: bool,
    /// Transport features to offer besides `VIRTIO_F_VERSION_1` (always
    /// offered); masked to what the core implements
    /// ([`features::SUPPORTED`]).
    pub ring_features: u64,
    /// Largest cmdq the driver may configure. Linux keeps `size / 2`
    /// commands in flight and needs a few for nested commands: at least 16.
    pub cmdq_size: u16,
    /// Largest eventq the driver may configure.
    pub eventq_size: u16,
}

impl Options {
    /// P2A channels, every ring feature Linux takes
    /// ([`DEFAULT_RING_FEATURES`]), a 128-entry cmdq and a 64-entry eventq.
    pub const DEFAULT: Options = Options {
        p2a: true,
        ring_features: DEFAULT_RING_FEATURES,
        cmdq_size: 128,
        eventq_size: 64,
    };

    /// Largest size of queue `index`; 0 if the queue does not exist (the
    /// eventq without P2A channels).
    pub const fn queue_size(&self, index: u16) -> u16 {
        match index {
            CMDQ => self.cmdq_size,
            EVENTQ if self.p2a => self.eventq_size,
            _ => 0,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options::DEFAULT
    }
}

/// What the device did, for diagnostics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// cmdq buffers served (every one of them was completed).
    pub requests: u64,
    /// Requests answered with a reply (success or error status).
    pub replies: u64,
    /// Requests completed with used length 0: no header to echo, or fewer
    /// than 8 writable bytes.
    pub unanswerable: u64,
    /// Requests with more than [`MAX_PAYLOAD`](scmi_server::MAX_PAYLOAD) payload bytes (answered
    /// PROTOCOL_ERROR when possible).
    pub oversized: u64,
    /// Malformed chains the queue completed with used length 0 itself.
    pub invalid_chains: u64,
    /// Chains whose buffers could not be read or written after all.
    pub access_errors: u64,
    /// Messages delivered on the eventq.
    pub events: u64,
    /// Messages dropped because the eventq buffer could not hold them.
    pub events_dropped: u64,
}

impl Stats {
    /// Nothing happened yet.
    pub const ZERO: Stats = Stats {
        requests: 0,
        replies: 0,
        unanswerable: 0,
        oversized: 0,
        invalid_chains: 0,
        access_errors: 0,
        events: 0,
        events_dropped: 0,
    };
}

/// The virtio-scmi device for one agent over a [`Backend`] (a
/// [`Server`](scmi_server::Server)).
#[derive(Debug)]
pub struct VirtioScmi<B> {
    backend: B,
    agent: u32,
    opts: Options,
    /// `VIRTIO_SCMI_F_P2A_CHANNELS` negotiated and the driver running.
    p2a: bool,
    stats: Stats,
}

impl<B: Backend> VirtioScmi<B> {
    /// A device serving `agent` (1-based, as in the server's configuration)
    /// with default [`Options`].
    pub const fn new(backend: B, agent: u32) -> Self {
        Self::with_options(backend, agent, Options::DEFAULT)
    }

    /// A device serving `agent` with `opts`.
    pub const fn with_options(backend: B, agent: u32, opts: Options) -> Self {
        VirtioScmi {
            backend,
            agent,
            opts,
            p2a: false,
            stats: Stats::ZERO,
        }
    }

    /// The device with its virtio core: the cmdq and, with P2A channels,
    /// the eventq, sized as the options say, each keeping a store of `H`
    /// descriptors for long packed lists (0: the device is never offered
    /// packed rings). `const`, so a complete device can live in a `static`.
    pub const fn into_core<const H: usize>(self) -> DeviceCore<Self, 2, H> {
        let queues = [
            Queue::with_store(self.opts.queue_size(CMDQ)),
            Queue::with_store(self.opts.queue_size(EVENTQ)),
        ];
        DeviceCore::with_queues(self, queues)
    }

    /// The agent this device serves.
    pub fn agent(&self) -> u32 {
        self.agent
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably (to let time pass on the server, say; follow
    /// with [`DeviceCore::poll`](virtio_backend::DeviceCore::poll) so new
    /// events reach the eventq).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether the running driver negotiated a P2A channel.
    pub fn p2a(&self) -> bool {
        self.p2a
    }

    /// Serves every chain the driver made available on the cmdq, then
    /// re-arms kicks; goes on while the driver keeps adding chains.
    fn serve_cmdq<M: GuestMemory, const H: usize>(
        &mut self,
        q: &mut Queue<H>,
        mem: &M,
    ) -> Result<(), QueueError> {
        loop {
            // A hint: no kicks needed while the ring is being drained.
            q.disable_notification(mem)?;
            loop {
                let chain = match q.pop_descriptor_chain(mem) {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    // Already completed with used length 0 by the queue.
                    Err(QueueError::InvalidChain { .. }) => {
                        self.stats.invalid_chains += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let used = self.serve_request(q, &chain, mem);
                q.add_used(mem, chain, used)?;
            }
            // virtio v1.2 §2.7.10 / §2.8.10: re-enable, then look again so
            // a chain added in between is not left waiting for a kick.
            if !q.enable_notification(mem)? {
                return Ok(());
            }
        }
    }

    /// Serves one cmdq chain; returns the used length.
    fn serve_request<M: GuestMemory, const H: usize>(
        &mut self,
        q: &Queue<H>,
        chain: &DescriptorChain,
        mem: &M,
    ) -> u32 {
        self.stats.requests += 1;
        let readable = chain.readable_len() as usize;
        // One byte more than a request may hold: the server refuses what
        // is longer.
        let mut buf = [0u8; MAX_REQUEST + 1];
        // Clamped to the length: `get_mut` never fails (no panic path).
        let request = buf
            .get_mut(..readable.min(MAX_REQUEST + 1))
            .unwrap_or_default();
        if q.reader(chain, mem).read_exact(request).is_err() {
            self.stats.access_errors += 1;
            return 0;
        }
        // The reply never exceeds the writable bytes (Linux sizes them
        // exactly to 8 + rx_size) nor the largest SCMI message.
        let room = (chain.writable_len() as usize).min(MAX_MESSAGE);
        let mut response = [0u8; MAX_MESSAGE];
        let response = response.get_mut(..room).unwrap_or_default();
        self.stats.oversized += u64::from(readable > MAX_REQUEST);
        let len = match self.backend.handle(self.agent, request, response) {
            Handled::Response(len) => len,
            // No header to echo, or no room for header and status.
            Handled::Malformed => {
                self.stats.unanswerable += 1;
                return 0;
            }
        };
        let Some(reply) = response.get(..len) else {
            self.stats.access_errors += 1;
            return 0;
        };
        let mut w = q.writer(chain, mem);
        if w.write_all(reply).is_err() {
            self.stats.access_errors += 1;
        } else {
            self.stats.replies += 1;
        }
        w.written()
    }

    /// Moves waiting events into the eventq buffers the driver posted, one
    /// message per buffer, oldest first (virtio v1.2 §5.17.6.3). Events stay
    /// in the server's outbox while there is no buffer.
    fn serve_eventq<M: GuestMemory, const H: usize>(
        &mut self,
        queues: &mut [Queue<H>],
        mem: &M,
    ) -> Result<(), QueueError> {
        if !self.p2a {
            return Ok(());
        }
        let Some(q) = queues.get_mut(usize::from(EVENTQ)) else {
            return Ok(());
        };
        if !q.ready() {
            return Ok(());
        }
        let mut rearmed = false;
        while self.backend.has_event(self.agent) {
            let chain = match q.pop_descriptor_chain(mem) {
                Ok(Some(c)) => c,
                Ok(None) => {
                    // Out of buffers with events waiting: ask for a kick when
                    // the driver posts more (with EVENT_IDX this moves
                    // avail_event), and look once more in case it already
                    // did.
                    if !rearmed && q.enable_notification(mem)? {
                        rearmed = true;
                        continue;
                    }
                    return Ok(());
                }
                Err(QueueError::InvalidChain { .. }) => {
                    self.stats.invalid_chains += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let used = self.fill_event(q, &chain, mem);
            q.add_used(mem, chain, used)?;
        }
        Ok(())
    }

    /// Puts the oldest waiting message into `chain`; returns the used
    /// length. A message the buffer cannot hold is dropped and the buffer
    /// returned empty: a driver posting eventq buffers smaller than the
    /// largest message breaks virtio v1.2 §5.17.6.2, and keeping the message
    /// would hold an outbox slot other agents need.
    fn fill_event<M: GuestMemory, const H: usize>(
        &mut self,
        q: &Queue<H>,
        chain: &DescriptorChain,
        mem: &M,
    ) -> u32 {
        let mut msg = [0u8; MAX_MESSAGE];
        let Some(len) = self.backend.next_event(self.agent, &mut msg) else {
            return 0;
        };
        let Some(msg) = msg.get(..len) else {
            return 0;
        };
        if len > chain.writable_len() as usize {
            self.stats.events_dropped += 1;
            return 0;
        }
        let mut w = q.writer(chain, mem);
        if w.write_all(msg).is_err() {
            self.stats.access_errors += 1;
        } else {
            self.stats.events += 1;
        }
        w.written()
    }
}

impl<B: Backend> VirtioDevice for VirtioScmi<B> {
    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn device_features(&self) -> u64 {
        let mut f = features::VERSION_1 | (self.opts.ring_features & features::SUPPORTED);
        if self.opts.p2a {
            f |= F_P2A_CHANNELS;
        }
        f
    }

    fn max_queue_size(&self, index: u16) -> u16 {
        self.opts.queue_size(index)
    }

    // virtio v1.2 §5.17.4: no device configuration space.

    fn activate(&mut self, features: u64) {
        self.p2a = features & F_P2A_CHANNELS != 0;
        self.backend.set_p2a(self.agent, self.p2a);
    }

    fn process_queue<M: GuestMemory, const H: usize>(
        &mut self,
        index: u16,
        queues: &mut [Queue<H>],
        mem: &M,
    ) -> Result<(), QueueError> {
        if index == CMDQ
            && let Some(q) = queues.get_mut(usize::from(CMDQ))
        {
            self.serve_cmdq(q, mem)?;
        }
        // After the cmdq replies of this kick (a delayed response must not
        // overtake its immediate reply), and whenever the driver posted
        // eventq buffers.
        self.serve_eventq(queues, mem)
    }

    fn poll<M: GuestMemory, const H: usize>(
        &mut self,
        queues: &mut [Queue<H>],
        mem: &M,
    ) -> Result<(), QueueError> {
        self.serve_eventq(queues, mem)
    }

    fn advance(&mut self, now_ms: u64) {
        self.backend.tick(now_ms);
    }

    fn reset(&mut self) {
        self.p2a = false;
        self.backend.forget_driver(self.agent);
    }
}
