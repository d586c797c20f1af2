//! A virtio-scmi front-end (an SCMI *agent*) built on `virtio-drivers`'
//! public [`VirtQueue`] API, since `virtio-drivers` has no SCMI driver.
//!
//! It behaves like Linux 6.12's `drivers/firmware/arm_scmi/transports/virtio.c`
//! and `arm_scmi/msg.c`:
//!
//! * features: `VIRTIO_F_VERSION_1` is required, `VIRTIO_SCMI_F_P2A_CHANNELS`
//!   accepted when offered (`virtio.c:features`), plus whatever ring
//!   features the test allows (`INDIRECT_DESC`, `EVENT_IDX`; never
//!   `RING_PACKED`, which `VirtQueue` does not implement);
//! * `DRIVER_OK` is set before any buffer is posted (`scmi_vio_probe`), then
//!   the eventq is filled with device-writable buffers of 4 + 128 bytes
//!   (`scmi_vio_feed_vq_rx`), each re-posted once its message has been
//!   taken (`scmi_finalize_message`);
//! * one command = one driver-readable buffer of `4 + tx_len` bytes and one
//!   device-writable buffer of exactly `8 + rx_len` bytes, `rx_len` being
//!   the expected reply size or 128 when 0 was asked
//!   (`virtio_send_message`, `driver.c:xfer_get_init`); with
//!   `INDIRECT_DESC` negotiated `VirtQueue` puts both in one indirect
//!   table, as Linux's `virtqueue_add` does;
//! * at most half the cmdq ring in flight (`scmi_vio_probe`: `max_msg =
//!   vring_size / 2`);
//! * tokens are 10 bits, handed out monotonically and skipping those in
//!   flight (`driver.c:scmi_xfer_token_set`); replies are matched by the
//!   token **in the header the device wrote** (`scmi_xfer_command_acquire`),
//!   never by which descriptor came back;
//! * a reply is read as `msg_fetch_response` does: status from bytes 4..8,
//!   payload length `min(rx_len, used_len - 8)`; a notification as
//!   `msg_fetch_notification`: payload `min(128, used_len - 4)`; a delayed
//!   response with `rx_len` reset to 128 first.
//!
//! Unlike Linux it also records the raw used length and reply bytes, so
//! tests can check what Linux would not (exact lengths, error replies of
//! exactly the status word). It also records every command it sent, in
//! order ([`ScmiAgent::transcript`]).
//!
//! With the device inline (the doorbell calls it) a command is answered by
//! the time `notify` returns; a reply that is not there then is a device bug
//! and panics instead of spinning forever. With the device on a thread of
//! its own, [`AgentOptions::patience`] says how long to wait for a reply
//! (Linux waits `max_rx_timeout_ms`) before the test fails.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};
use core::time::Duration;

use virtio_drivers::Hal;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::{DeviceStatus, Transport};

/// `VIRTIO_F_VERSION_1`.
pub const F_VERSION_1: u64 = 1 << 32;
/// `VIRTIO_F_INDIRECT_DESC`.
pub const F_INDIRECT_DESC: u64 = 1 << 28;
/// `VIRTIO_F_EVENT_IDX`.
pub const F_EVENT_IDX: u64 = 1 << 29;
/// `VIRTIO_SCMI_F_P2A_CHANNELS`.
pub const F_P2A_CHANNELS: u64 = 1 << 0;
/// `VIRTIO_SCMI_MAX_MSG_SIZE`: payload bytes after header (and status).
pub const MAX_MSG: usize = 128;
/// `VIRTIO_SCMI_MAX_PDU_SIZE`: header, status and payload.
pub const MAX_PDU: usize = MAX_MSG + 8;

/// SCMI message types (header bits 9:8).
pub mod msg_type {
    /// Command and its synchronous reply.
    pub const COMMAND: u8 = 0;
    /// Delayed response.
    pub const DELAYED: u8 = 2;
    /// Notification.
    pub const NOTIFICATION: u8 = 3;
}

/// An SCMI header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hdr {
    /// Message id.
    pub msg_id: u8,
    /// Type (see [`msg_type`]).
    pub msg_type: u8,
    /// Protocol id.
    pub protocol: u8,
    /// Token.
    pub token: u16,
}

impl Hdr {
    /// Packs the header (`driver.c:pack_scmi_header`).
    pub fn pack(&self) -> u32 {
        u32::from(self.msg_id)
            | u32::from(self.msg_type & 3) << 8
            | u32::from(self.protocol) << 10
            | u32::from(self.token & 0x3ff) << 18
    }

    /// Unpacks a header word (ignoring reserved bits 31:28).
    pub fn unpack(w: u32) -> Self {
        Hdr {
            msg_id: w as u8,
            msg_type: ((w >> 8) & 3) as u8,
            protocol: (w >> 10) as u8,
            token: ((w >> 18) & 0x3ff) as u16,
        }
    }
}

/// One command the agent sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Protocol id.
    pub protocol: u8,
    /// Message id.
    pub msg_id: u8,
    /// Request payload (after the header).
    pub payload: Vec<u8>,
    /// `rx_size` as Linux passes it (0 = as much as 128).
    pub rx_size: usize,
}

/// A synchronous reply, read the way Linux reads it, plus what Linux ignores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The header the device wrote.
    pub header: Hdr,
    /// The status word (`msg_fetch_response`).
    pub status: i32,
    /// The payload as Linux sees it: `min(rx_len, used_len - 8)` bytes.
    pub payload: Vec<u8>,
    /// The used length the device reported.
    pub used_len: u32,
    /// Every byte of the device-writable buffer after completion.
    pub raw: Vec<u8>,
}

impl Reply {
    /// The payload as little-endian words (a trailing partial word is
    /// dropped).
    pub fn words(&self) -> Vec<u32> {
        le_words(&self.payload)
    }

    /// Word `i` of the payload; panics when the reply is shorter.
    pub fn word(&self, i: usize) -> u32 {
        let b = self
            .payload
            .get(4 * i..4 * i + 4)
            .unwrap_or_else(|| panic!("reply {:?} has no word {i}", self.header));
        u32::from_le_bytes(b.try_into().expect("4 bytes"))
    }
}

/// A message taken from the eventq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The header the device wrote.
    pub header: Hdr,
    /// Used length.
    pub used_len: u32,
    /// Notification: payload after the header (`min(128, used_len - 4)`).
    /// Delayed response: payload after header and status
    /// (`min(128, used_len - 8)`).
    pub payload: Vec<u8>,
    /// Delayed response: its status word.
    pub status: Option<i32>,
}

impl Event {
    /// The payload as little-endian words.
    pub fn words(&self) -> Vec<u32> {
        le_words(&self.payload)
    }
}

/// Little-endian words of `b` (a trailing partial word is dropped).
pub fn le_words(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

/// What the driver accepts of the device's offer.
#[derive(Debug, Clone, Copy)]
pub struct AgentOptions {
    /// Accept `VIRTIO_F_INDIRECT_DESC` if offered.
    pub indirect: bool,
    /// Accept `VIRTIO_F_EVENT_IDX` if offered.
    pub event_idx: bool,
    /// Accept `VIRTIO_SCMI_F_P2A_CHANNELS` if offered.
    pub p2a: bool,
    /// eventq buffers posted right after `DRIVER_OK` (Linux posts the whole
    /// ring).
    pub event_buffers: usize,
    /// Size of each eventq buffer (Linux: 4 + 128).
    pub event_buffer_len: usize,
    /// How long [`ScmiAgent::reply`] waits for a reply that has not
    /// arrived: zero for an inline device (it must be there at once), some
    /// seconds for a device on its own thread or core.
    pub patience: Duration,
    /// The time since some fixed point, for [`patience`](Self::patience):
    /// the host's clock, or a CPU's generic timer. The default reads zero,
    /// which only suits a zero patience.
    pub now: fn() -> Duration,
    /// Called between two looks for a reply that has not arrived: yield
    /// the thread, or wait for the device's doorbell.
    pub idle: fn(),
}

fn no_clock() -> Duration {
    Duration::ZERO
}

fn no_idle() {}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            indirect: true,
            event_idx: true,
            p2a: true,
            event_buffers: usize::MAX,
            event_buffer_len: 4 + MAX_MSG,
            patience: Duration::ZERO,
            now: no_clock,
            idle: no_idle,
        }
    }
}

/// A command in flight.
struct Pending {
    token: u16,
    request: Vec<u8>,
    response: Vec<u8>,
    /// Linux's `rx.len` for this command.
    rx_len: usize,
}

/// Counters of what the agent did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Commands sent.
    pub commands: u64,
    /// Replies received on the cmdq.
    pub replies: u64,
    /// Kicks of the cmdq.
    pub cmdq_kicks: u64,
    /// Kicks of the eventq.
    pub eventq_kicks: u64,
    /// Most commands in flight at once.
    pub max_in_flight: usize,
    /// Messages taken from the eventq.
    pub events: u64,
    /// Longest used length seen on the cmdq.
    pub longest_reply: u32,
    /// Commands sent as an indirect table (one descriptor).
    pub indirect: bool,
}

/// A virtio-scmi driver over transport `T`, its DMA memory from `H`, a
/// cmdq of `CQ` entries and an eventq of `EQ`.
pub struct ScmiAgent<T: Transport, H: Hal, const CQ: usize = 128, const EQ: usize = 64> {
    transport: T,
    cmdq: VirtQueue<H, CQ>,
    eventq: Option<VirtQueue<H, EQ>>,
    features: u64,
    opts: AgentOptions,
    /// Next token to try (`transfer_id`).
    transfer_id: u32,
    /// In flight, by descriptor head.
    in_flight: BTreeMap<u16, Pending>,
    /// Replies received but not yet claimed, by SCMI token.
    done: BTreeMap<u16, Reply>,
    /// Posted eventq buffers, by descriptor head.
    event_bufs: BTreeMap<u16, Vec<u8>>,
    /// Events taken but not yet claimed, oldest first.
    events: VecDeque<Event>,
    transcript: Vec<Sent>,
    stats: AgentStats,
}

impl<T: Transport, H: Hal, const CQ: usize, const EQ: usize> ScmiAgent<T, H, CQ, EQ> {
    /// Probes the device the way `scmi_vio_probe` does: features,
    /// `FEATURES_OK` read back, queues, `DRIVER_OK`; then fills the eventq
    /// (`virtio_chan_setup` for the rx channel).
    pub fn new(mut transport: T, opts: AgentOptions) -> Self {
        transport.set_status(DeviceStatus::empty());
        transport.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
        let offered = transport.read_device_features();
        assert!(
            offered & F_VERSION_1 != 0,
            "Linux refuses a device without VERSION_1 (scmi_vio_validate)"
        );
        let mut want = F_VERSION_1;
        if opts.p2a {
            want |= F_P2A_CHANNELS;
        }
        if opts.indirect {
            want |= F_INDIRECT_DESC;
        }
        if opts.event_idx {
            want |= F_EVENT_IDX;
        }
        let features = offered & want;
        transport.write_driver_features(features);
        transport.set_status(
            DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK,
        );
        assert!(
            transport.get_status().contains(DeviceStatus::FEATURES_OK),
            "the device refused features {features:#x}"
        );
        let indirect = features & F_INDIRECT_DESC != 0;
        let event_idx = features & F_EVENT_IDX != 0;
        let cmdq = VirtQueue::new(&mut transport, 0, indirect, event_idx).expect("cmdq");
        let eventq = (features & F_P2A_CHANNELS != 0)
            .then(|| VirtQueue::new(&mut transport, 1, indirect, event_idx).expect("eventq"));
        transport.set_status(
            DeviceStatus::ACKNOWLEDGE
                | DeviceStatus::DRIVER
                | DeviceStatus::FEATURES_OK
                | DeviceStatus::DRIVER_OK,
        );
        let mut a = ScmiAgent {
            transport,
            cmdq,
            eventq,
            features,
            opts,
            transfer_id: 0,
            in_flight: BTreeMap::new(),
            done: BTreeMap::new(),
            event_bufs: BTreeMap::new(),
            events: VecDeque::new(),
            transcript: Vec::new(),
            stats: AgentStats {
                indirect,
                ..AgentStats::default()
            },
        };
        if a.eventq.is_some() {
            a.post_event_buffers(opts.event_buffers.min(EQ));
        }
        a
    }

    /// Negotiated features.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// Whether there is an eventq.
    pub fn has_eventq(&self) -> bool {
        self.eventq.is_some()
    }

    /// The transport, the agent dropped (its queues with it).
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// The transport.
    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Counters.
    pub fn stats(&self) -> AgentStats {
        self.stats
    }

    /// Commands sent so far, in order.
    pub fn transcript(&self) -> &[Sent] {
        &self.transcript
    }

    /// Forgets the transcript.
    pub fn clear_transcript(&mut self) {
        self.transcript.clear();
    }

    /// Linux's `max_msg` for the tx channel.
    pub fn max_in_flight(&self) -> usize {
        CQ / 2
    }

    /// Commands in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Next free token (`scmi_xfer_token_set`).
    fn next_token(&mut self) -> u16 {
        for _ in 0..1024 {
            let t = (self.transfer_id & 0x3ff) as u16;
            self.transfer_id = self.transfer_id.wrapping_add(1);
            if !self.in_flight.values().any(|p| p.token == t) && !self.done.contains_key(&t) {
                return t;
            }
        }
        panic!("no free token");
    }

    /// Queues one command without kicking: `4 + payload` readable bytes and
    /// `8 + (rx_size or 128)` writable ones. Returns its token.
    pub fn post(&mut self, protocol: u8, msg_id: u8, payload: &[u8], rx_size: usize) -> u16 {
        assert!(
            payload.len() <= MAX_MSG && rx_size <= MAX_MSG,
            "xfer_get_init returns -ERANGE"
        );
        let token = self.next_token();
        let h = Hdr {
            msg_id,
            msg_type: msg_type::COMMAND,
            protocol,
            token,
        };
        let mut request = h.pack().to_le_bytes().to_vec();
        request.extend_from_slice(payload);
        let rx_len = if rx_size == 0 { MAX_MSG } else { rx_size };
        self.transcript.push(Sent {
            protocol,
            msg_id,
            payload: payload.to_vec(),
            rx_size,
        });
        self.post_raw(token, request, 8 + rx_len, rx_len);
        token
    }

    /// Queues arbitrary bytes as a command (for malformed requests):
    /// `request` readable, `response_len` writable (none when 0). `token`
    /// is what a reply would carry; `rx_len` Linux's `rx.len`.
    pub fn post_raw(&mut self, token: u16, request: Vec<u8>, response_len: usize, rx_len: usize) {
        assert!(
            self.in_flight.len() < self.max_in_flight(),
            "Linux keeps at most half the cmdq in flight"
        );
        let mut response = vec![0u8; response_len];
        let head = {
            let inputs: Vec<&[u8]> = if request.is_empty() {
                vec![]
            } else {
                vec![&request[..]]
            };
            let mut outputs: Vec<&mut [u8]> = if response.is_empty() {
                vec![]
            } else {
                vec![&mut response[..]]
            };
            // SAFETY: the buffers are moved into `in_flight` (their heap
            // storage does not move) and neither read nor written until
            // `pop_used` returns them in `reap`.
            unsafe { self.cmdq.add(&inputs, &mut outputs) }.expect("cmdq add")
        };
        self.stats.commands += 1;
        self.in_flight.insert(
            head,
            Pending {
                token,
                request,
                response,
                rx_len,
            },
        );
        self.stats.max_in_flight = self.stats.max_in_flight.max(self.in_flight.len());
    }

    /// Notifies the cmdq if the device asked for it, then takes every used
    /// buffer.
    pub fn kick(&mut self) {
        // virtio v1.2 §2.7.10.1: the driver reads avail_event only after
        // its avail idx store is visible. `VirtQueue::should_notify` loads
        // it with Acquire right after a Release store, which may be
        // reordered before the store (store-load), so a kick can be lost
        // against a device that re-armed meanwhile (Linux puts a full
        // barrier here, `virtqueue_kick_prepare`).
        fence(Ordering::SeqCst);
        if self.cmdq.should_notify() {
            self.stats.cmdq_kicks += 1;
            self.transport.notify(0);
        }
        let _ = self.transport.ack_interrupt();
        self.reap();
        self.take_events();
    }

    /// Takes every used cmdq buffer; replies are filed by the token in the
    /// header the device wrote (`scmi_vio_complete_cb`).
    fn reap(&mut self) {
        while let Some(head) = self.cmdq.peek_used() {
            let mut p = self
                .in_flight
                .remove(&head)
                .unwrap_or_else(|| panic!("device returned descriptor {head} never posted"));
            let used = {
                let inputs: Vec<&[u8]> = if p.request.is_empty() {
                    vec![]
                } else {
                    vec![&p.request[..]]
                };
                let mut outputs: Vec<&mut [u8]> = if p.response.is_empty() {
                    vec![]
                } else {
                    vec![&mut p.response[..]]
                };
                // SAFETY: the same buffers `post_raw` added for `head`.
                unsafe { self.cmdq.pop_used(head, &inputs, &mut outputs) }.expect("pop_used")
            };
            self.stats.replies += 1;
            self.stats.longest_reply = self.stats.longest_reply.max(used);
            assert!(
                used as usize <= p.response.len(),
                "used length {used} exceeds the {} writable bytes",
                p.response.len()
            );
            let raw = p.response;
            let word = |at: usize| {
                raw.get(at..at + 4)
                    .map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4")))
            };
            // The header and status are read whatever used_len says
            // (msg.c:msg_fetch_response); a zero-length completion leaves the
            // buffer as posted (zeroes here), so the token is recovered from
            // the request instead.
            let header = if used >= 4 {
                Hdr::unpack(word(0))
            } else {
                Hdr {
                    token: p.token,
                    ..Hdr::unpack(word(0))
                }
            };
            let status = word(4) as i32;
            let n = p.rx_len.min((used as usize).saturating_sub(8));
            let payload = raw.get(8..8 + n).map(<[u8]>::to_vec).unwrap_or_default();
            let token = if used >= 4 { header.token } else { p.token };
            assert!(
                self.done
                    .insert(
                        token,
                        Reply {
                            header,
                            status,
                            payload,
                            used_len: used,
                            raw,
                        }
                    )
                    .is_none(),
                "two replies for token {token}"
            );
        }
    }

    /// The reply for `token`, which must have arrived (or arrive within
    /// [`AgentOptions::patience`]).
    pub fn reply(&mut self, token: u16) -> Reply {
        let start = (self.opts.now)();
        loop {
            self.reap();
            if let Some(r) = self.done.remove(&token) {
                return r;
            }
            assert!(
                (self.opts.now)().saturating_sub(start) < self.opts.patience,
                "no reply for token {token} within {:?}",
                self.opts.patience
            );
            (self.opts.idle)();
        }
    }

    /// Whether a reply for `token` has arrived.
    pub fn has_reply(&mut self, token: u16) -> bool {
        self.reap();
        self.done.contains_key(&token)
    }

    /// Sends one command and returns its reply (`do_xfer`), checking what
    /// Linux relies on: the header is echoed with type 0, the reply fits
    /// `8 + 128`, and an error reply is exactly the status word.
    pub fn call(&mut self, protocol: u8, msg_id: u8, payload: &[u8], rx_size: usize) -> Reply {
        let token = self.post(protocol, msg_id, payload, rx_size);
        self.kick();
        let r = self.reply(token);
        assert_eq!(
            r.header,
            Hdr {
                msg_id,
                msg_type: msg_type::COMMAND,
                protocol,
                token
            },
            "reply header echoes the command"
        );
        assert!(r.used_len as usize <= MAX_PDU, "reply longer than 8 + 128");
        assert!(
            r.used_len >= 8,
            "reply without status ({} bytes)",
            r.used_len
        );
        if r.status != 0 {
            assert_eq!(r.used_len, 8, "an error reply is exactly the status word");
        }
        r
    }

    /// [`call`](Self::call) with little-endian word arguments.
    pub fn callw(&mut self, protocol: u8, msg_id: u8, args: &[u32], rx_size: usize) -> Reply {
        let p: Vec<u8> = args.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.call(protocol, msg_id, &p, rx_size)
    }

    /// Posts `n` eventq buffers and notifies the eventq if asked to.
    pub fn post_event_buffers(&mut self, n: usize) {
        let len = self.opts.event_buffer_len;
        let Some(q) = self.eventq.as_mut() else {
            panic!("no eventq");
        };
        for _ in 0..n {
            let mut buf = vec![0u8; len];
            // SAFETY: the buffer is moved into `event_bufs` and not touched
            // until `pop_used` returns it in `take_events`.
            let head = unsafe { q.add(&[], &mut [&mut buf[..]]) }.expect("eventq add");
            self.event_bufs.insert(head, buf);
        }
        // As in `kick`: the avail idx store before the avail_event load.
        fence(Ordering::SeqCst);
        if q.should_notify() {
            self.stats.eventq_kicks += 1;
            self.transport.notify(1);
        }
        let _ = self.transport.ack_interrupt();
        self.reap();
        self.take_events();
    }

    /// eventq buffers the device holds.
    pub fn event_buffers_posted(&self) -> usize {
        self.event_bufs.len()
    }

    /// Size of eventq buffers posted from now on.
    pub fn set_event_buffer_len(&mut self, len: usize) {
        self.opts.event_buffer_len = len;
    }

    /// Takes used eventq buffers; re-posts one buffer per message taken
    /// when `repost` is on (Linux re-posts after processing).
    fn take_events(&mut self) {
        let mut taken = 0;
        if let Some(q) = self.eventq.as_mut() {
            while let Some(head) = q.peek_used() {
                let mut buf = self
                    .event_bufs
                    .remove(&head)
                    .unwrap_or_else(|| panic!("eventq returned descriptor {head} never posted"));
                // SAFETY: the buffer `post_event_buffers` added for `head`.
                let used =
                    unsafe { q.pop_used(head, &[], &mut [&mut buf[..]]) }.expect("eventq pop");
                assert!(used as usize <= buf.len(), "event overran its buffer");
                taken += 1;
                if used < 4 {
                    // Nothing to dispatch (Linux would read stale bytes).
                    self.events.push_back(Event {
                        header: Hdr::unpack(0),
                        used_len: used,
                        payload: vec![],
                        status: None,
                    });
                    continue;
                }
                let header = Hdr::unpack(u32::from_le_bytes(buf[..4].try_into().expect("4")));
                let ev = match header.msg_type {
                    msg_type::NOTIFICATION => Event {
                        header,
                        used_len: used,
                        payload: buf[4..4 + MAX_MSG.min(used as usize - 4)].to_vec(),
                        status: None,
                    },
                    _ => {
                        let status = buf
                            .get(4..8)
                            .map(|b| i32::from_le_bytes(b.try_into().expect("4")));
                        let n = MAX_MSG.min((used as usize).saturating_sub(8));
                        Event {
                            header,
                            used_len: used,
                            payload: buf.get(8..8 + n).map(<[u8]>::to_vec).unwrap_or_default(),
                            status,
                        }
                    }
                };
                self.stats.events += 1;
                self.events.push_back(ev);
            }
        }
        if taken > 0 && self.opts.event_buffers > 0 {
            // scmi_finalize_message: each buffer goes back to the device.
            self.post_event_buffers(taken);
        }
    }

    /// Lets the driver look at its queues (an interrupt arrived or a poll
    /// is due).
    pub fn service(&mut self) {
        let _ = self.transport.ack_interrupt();
        self.reap();
        self.take_events();
    }

    /// Events taken so far and not yet claimed, oldest first.
    pub fn drain_events(&mut self) -> Vec<Event> {
        self.service();
        self.events.drain(..).collect()
    }

    /// Turns automatic re-posting of eventq buffers on or off (off: the
    /// driver gives the device no further buffers until
    /// [`post_event_buffers`](Self::post_event_buffers)).
    pub fn set_repost(&mut self, on: bool) {
        self.opts.event_buffers = usize::from(on);
    }
}
