//! Virtio-msg between two DomUs: the library's shared-memory channel in the
//! first page the driver grants, an inter-domain event channel each way,
//! every other byte of the driver's memory reached through its grants.
//!
//! The driver's domain grants pages and rings our port; we wake in
//! `SCHEDOP_poll` on that port (no upcall, no interrupt controller), clear
//! its pending bit, serve the channel, and ring back with `EVTCHNOP_send`.
//! The wait has a timeout so that time passes on the SCMI platform while
//! the driver is quiet (delayed responses, sensor notifications): Xen's
//! timeouts count in its system time, which [`SystemClock`] estimates.
//!
//! Events are hints, never messages: a spurious one (the bound end of a
//! static channel starts with one pending) costs one look at the channel;
//! an event before the driver granted the channel page finds nothing to
//! publish, and the next event tries again. When the driver resets the
//! device (status 0) or the channel drops it, every page of its memory is
//! unmapped: nothing of one driver's session survives into the next.

use platform_xen::{DomId, GrantRef, Port, SystemClock, Xen};
use transport_shmem::ShmemDevice;
use virtio_backend::VirtioDevice;
use virtio_backend::amp::Geometry;
use virtio_backend::service::Doorbell;

use crate::grant::{GrantMapper, GrantMemory, GrantStats, PAGE, grant_address};

/// Where the device finds its driver (the manifest's `virtio-msg-xen`
/// device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The driver's domain, whose grants we map.
    pub driver: DomId,
    /// Our end of the static event channel to it.
    pub port: Port,
    /// The grant of the page that holds the channel.
    pub channel_gref: GrantRef,
    /// The channel's queues.
    pub geometry: Geometry,
    /// Time passes on the SCMI platform at least this often (ns).
    pub tick_ns: u64,
}

/// What the loop reads of the guest it runs in, besides hypercalls.
pub trait Guest {
    /// Clears `port`'s pending bit (shared info page); whether it was set.
    fn take_event(&mut self, port: Port) -> bool;
    /// The virtual counter, in ns since the domain started.
    fn now_ns(&self) -> u64;
    /// Xen's system time when this vCPU was last scheduled in (its
    /// runstate area), if Xen has written it.
    fn entered_ns(&self) -> Option<u64>;
    /// The raw counter, for the figures.
    fn counter(&self) -> u64;
}

/// What one driver's session cost, from the channel's publication or the
/// previous reset to the reset that ended it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Session {
    /// Virtio-msg messages served (an SCMI request is one EVENT_AVAIL).
    pub messages: u64,
    /// Messages dropped (malformed, unknown, for no device).
    pub dropped: u64,
    /// Wake-ups.
    pub wakeups: u64,
    /// `SCHEDOP_poll` hypercalls.
    pub polls: u64,
    /// `EVTCHNOP_send` hypercalls.
    pub sends: u64,
    /// `GNTTABOP_map_grant_ref` hypercalls.
    pub maps: u64,
    /// `GNTTABOP_unmap_grant_ref` hypercalls.
    pub unmaps: u64,
    /// Accesses to granted pages (mapped: no hypercall; each would be a
    /// `GNTTABOP_copy` without the mapping cache).
    pub accesses: u64,
    /// Counter ticks spent serving wake-ups that found messages.
    pub serve_ticks: u64,
}

impl Session {
    /// Every hypercall the session made.
    pub fn hypercalls(&self) -> u64 {
        self.polls + self.sends + self.maps + self.unmaps
    }
}

/// Rings the driver: `EVTCHNOP_send` on our end of the channel.
struct Bell<'x, X> {
    xen: &'x mut X,
    port: Port,
    sends: &'x mut u64,
}

impl<X: Xen> Doorbell for Bell<'_, X> {
    fn barrier(&mut self) {
        // The messages and used rings before the event (Xen's send is no
        // barrier for the guest's own stores).
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    }
    fn ring(&mut self) {
        *self.sends += 1;
        let _ = self.xen.send(self.port);
    }
}

/// The device on its Xen bus: the channel device, the driver's grants,
/// the hypercalls and the guest it runs in.
pub struct XenDevice<'d, 'a, D, M, X, G, const NQ: usize, const H: usize, const SLOTS: usize> {
    dev: &'d mut ShmemDevice<D, NQ, H>,
    mem: GrantMemory<'a, M, SLOTS>,
    xen: X,
    guest: G,
    config: Config,
    clock: SystemClock,
    published: bool,
    up: bool,
    status: u8,
    next_tick_ns: u64,
    session: Session,
    at_start: GrantStats,
}

impl<'d, 'a, D, M, X, G, const NQ: usize, const H: usize, const SLOTS: usize>
    XenDevice<'d, 'a, D, M, X, G, NQ, H, SLOTS>
where
    D: VirtioDevice,
    M: GrantMapper<'a>,
    X: Xen,
    G: Guest,
{
    /// The device `dev`, serving `config.driver` through `mapper`'s slots.
    pub fn new(
        dev: &'d mut ShmemDevice<D, NQ, H>,
        mapper: M,
        xen: X,
        guest: G,
        config: Config,
    ) -> Self {
        XenDevice {
            dev,
            mem: GrantMemory::new(config.driver, mapper),
            xen,
            guest,
            config,
            clock: SystemClock::new(),
            published: false,
            up: false,
            status: 0,
            next_tick_ns: 0,
            session: Session::default(),
            at_start: GrantStats::default(),
        }
    }

    /// The driver's memory as the device reaches it.
    pub fn memory(&self) -> &GrantMemory<'a, M, SLOTS> {
        &self.mem
    }

    /// Whether the channel is published in the driver's page.
    pub fn published(&self) -> bool {
        self.published
    }

    /// One turn: waits on the event channel unless work is waiting (a
    /// message on a running link, the tick due), then publishes the
    /// channel (until the driver has granted its page) or serves it.
    /// Returns the session that ended when the driver reset the device in
    /// this turn.
    ///
    /// While the link is down the handshake moves only when the channel is
    /// looked at: at the driver's events and at each tick, never in a
    /// busy loop waiting for a driver that may not come.
    ///
    /// Never inlined: `bench-xen` counts the instructions inside it.
    #[inline(never)]
    pub fn turn(&mut self) -> Option<Session> {
        let port = self.config.port;
        let work = self.published
            && (self.up && self.dev.pending(&self.mem) || self.guest.now_ns() >= self.next_tick_ns);
        if !work {
            // Before the channel exists only the driver's event can change
            // anything: no timeout then.
            let timeout = if self.published {
                self.clock.deadline(self.next_tick_ns)
            } else {
                0
            };
            self.session.polls += 1;
            let _ = self.xen.poll(&[port], timeout);
            self.clock
                .observe(self.guest.entered_ns(), self.guest.now_ns());
        }
        // Cleared before the channel is looked at: an event that comes
        // after this finds the pending bit set and ends the next poll.
        self.guest.take_event(port);
        self.session.wakeups += 1;
        if !self.published {
            let at = grant_address(self.config.channel_gref, 0);
            self.published = self
                .dev
                .publish(&self.mem, at, PAGE, self.config.geometry)
                .is_ok();
            return None;
        }
        let now = self.guest.now_ns();
        if now >= self.next_tick_ns {
            self.next_tick_ns = now.saturating_add(self.config.tick_ns);
        }
        let start = self.guest.counter();
        let mut bell = Bell {
            xen: &mut self.xen,
            port,
            sends: &mut self.session.sends,
        };
        let served = self.dev.serve(&self.mem, &mut bell, now / 1_000_000);
        self.up = served.up;
        let s = &mut self.session;
        s.messages += served.messages as u64;
        s.dropped += served.dropped as u64;
        if served.messages > 0 {
            s.serve_ticks += self.guest.counter().wrapping_sub(start);
        }
        let status = core::mem::replace(&mut self.status, self.dev.status());
        (served.reset || status != 0 && self.status == 0).then(|| self.end_session())
    }

    /// The driver is gone or reset the device: none of its pages stays
    /// mapped; the session's figures.
    fn end_session(&mut self) -> Session {
        self.mem.release_all();
        let now = self.mem.stats();
        let mut s = core::mem::take(&mut self.session);
        s.maps = now.maps - self.at_start.maps;
        s.unmaps = now.unmaps - self.at_start.unmaps;
        s.accesses = now.accesses - self.at_start.accesses;
        self.at_start = now;
        s
    }

    /// Turns forever, handing each ended session to `report`.
    pub fn run(&mut self, mut report: impl FnMut(&Session)) -> ! {
        loop {
            if let Some(s) = self.turn() {
                report(&s);
            }
        }
    }
}
