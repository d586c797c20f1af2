//! The whole virtio-scmi device: a driver (virtio-backend's mock rings)
//! puts fuzzer-chosen SCMI requests on the cmdq and kicks; the
//! `DeviceCore` hands them to `virtio_scmi::VirtioScmi`, which
//! serves them with a `Server` over the simulated platform.
//!
//! The fuzzer chooses the request bytes (any length, 0 and past the 132
//! bytes a virtio-scmi request may have included), how the driver lays each
//! request out (readable bytes split over several descriptors, writable
//! buffers of 0 to 320 bytes each, indirect or not), split or packed ring,
//! EVENT_IDX, how many requests go in flight per kick, whether eventq
//! buffers are posted and how large, agent time ticks and device resets,
//! and whether a second device (another agent, or the same one) shares the
//! server, the way `&RefCell<Server>` backends do.
//! The driver itself is well behaved (hostile rings are the `rings`
//! target's business); the one spec breach it may commit is an indirect
//! descriptor without `VIRTIO_F_INDIRECT_DESC`.
//!
//! Checked for every input:
//!
//! * nothing panics and the device never sets `DEVICE_NEEDS_RESET`;
//! * every cmdq buffer made available is used by the end of its kick,
//!   exactly once, and the driver is notified;
//! * the used length never exceeds the buffer's writable bytes, and no byte
//!   past it is written;
//! * a reply (used length > 0) is at least 8 bytes, its header echoes the
//!   request header with type 0 (SCMI v3.2 §4.1.1), a status other than
//!   SUCCESS comes with exactly 8 bytes (§4.1.4), and a request longer than
//!   132 bytes gets PROTOCOL_ERROR; a request with a header and room for
//!   8 bytes is always answered; a chain breaking the spec gets used length
//!   0 (virtio v1.2 §2.7.5.3.1);
//! * the reply is byte for byte what a reference server in the same state
//!   answers (so the scatter/gather glue loses or adds nothing);
//! * eventq used lengths fit their buffers, each event delivered is the
//!   reference server's next one, and no event waits while the driver has
//!   eventq buffers posted; every agent's outbox agrees with the
//!   reference's.

#![no_main]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use platform_host_vhost_user as builtin;
use scmi_server::MAX_REQUEST;
use scmi_server::config::{AgentConfig, Config};
use scmi_server::header::{Header, Status};
use scmi_server::protocols::{self, base, clock, sensor};
use scmi_server::{Handled, MAX_MESSAGE, Server};
use virtio_backend::mock::{Buf, MockPackedQueue, MockSplitQueue};
use virtio_backend::spec::features::{EVENT_IDX, INDIRECT_DESC, RING_PACKED, VERSION_1};
use virtio_backend::spec::status::{ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK};
use virtio_backend::{DeviceCore, GuestMemory, MemoryError};
use virtio_fuzz::seed::{Enc, encode, variant};
use virtio_fuzz::{enc_struct, maybe_write_seeds};
use virtio_scmi::{CMDQ, EVENTQ, F_P2A_CHANNELS, Options, VirtioScmi};

#[derive(Arbitrary, Debug, PartialEq)]
pub struct Input {
    /// Packed ring layout on both queues.
    pub packed: bool,
    /// Negotiate `VIRTIO_F_INDIRECT_DESC`.
    pub indirect: bool,
    /// Negotiate `VIRTIO_F_EVENT_IDX`.
    pub event_idx: bool,
    /// Negotiate `VIRTIO_SCMI_F_P2A_CHANNELS` (and set up the eventq).
    pub p2a: bool,
    /// cmdq size selector.
    pub cmdq_size: u8,
    /// eventq size selector.
    pub eventq_size: u8,
    /// Agent the device serves: 1 and 2 exist, 0 and 3 do not.
    pub agent: u8,
    /// A second device, for agent `second % 4`, over the same server.
    pub second: Option<u8>,
    pub steps: Vec<Step>,
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Step {
    /// Puts the requests on device `dev`'s cmdq and kicks it (more than
    /// once if they do not fit the ring at once).
    Kick { dev: bool, requests: Vec<Request> },
    /// Posts `count` eventq buffers of `len % 321` bytes on device `dev`
    /// and kicks its eventq.
    Events { dev: bool, count: u8, len: u16 },
    /// Lets `ms` milliseconds pass on the platform, then polls the devices.
    Tick { ms: u16 },
    /// The driver of device `dev` resets it and brings it up again.
    Reset { dev: bool },
}

#[derive(Arbitrary, Debug, PartialEq)]
pub struct Request {
    pub header: Head,
    /// Parameters, as little-endian words.
    pub words: Vec<u32>,
    /// Drops `trim % 4` bytes from the end of the request.
    pub trim: u8,
    /// Sizes of the first readable descriptors; the rest of the request
    /// goes in one more.
    pub split: Vec<u8>,
    /// Writable buffers, `len % 321` bytes each.
    pub writable: Vec<u16>,
    /// Put the chain in an indirect table.
    pub indirect: bool,
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Head {
    /// No header at all.
    None,
    /// Any 32-bit word.
    Raw(u32),
    /// A command to protocol `0x10 + protocol % 8`.
    Cmd { protocol: u8, msg: u8, token: u16 },
}

enc_struct!(Input {
    packed,
    indirect,
    event_idx,
    p2a,
    cmdq_size,
    eventq_size,
    agent,
    second,
    steps
});
enc_struct!(Request {
    header,
    words,
    trim,
    split,
    writable,
    indirect
});

impl Enc for Step {
    fn enc(&self, out: &mut Vec<u8>) {
        const N: u32 = 4;
        match self {
            Step::Kick { dev, requests } => {
                variant(out, 0, N);
                dev.enc(out);
                requests.enc(out);
            }
            Step::Events { dev, count, len } => {
                variant(out, 1, N);
                dev.enc(out);
                count.enc(out);
                len.enc(out);
            }
            Step::Tick { ms } => {
                variant(out, 2, N);
                ms.enc(out);
            }
            Step::Reset { dev } => {
                variant(out, 3, N);
                dev.enc(out);
            }
        }
    }
}

impl Enc for Head {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            Head::None => variant(out, 0, 3),
            Head::Raw(w) => {
                variant(out, 1, 3);
                w.enc(out);
            }
            Head::Cmd {
                protocol,
                msg,
                token,
            } => {
                variant(out, 2, 3);
                protocol.enc(out);
                msg.enc(out);
                token.enc(out);
            }
        }
    }
}

const MAX_STEPS: usize = 64;
const MAX_REQUESTS: usize = 64;
const MAX_WORDS: usize = 40;
const MAX_PIECES: usize = 8;
const MAX_WRITABLE: u16 = 320;

// Driver memory map: device `k`'s rings and eventq buffers from
// `DEV_BASE + k * DEV_SPAN` (offsets below), then the cmdq buffers of the
// kick in progress.
const DEV_BASE: u64 = 0x1000;
const DEV_SPAN: u64 = 0x8000;
const CMDQ_RING: u64 = 0;
const EVENTQ_RING: u64 = 0x1000;
const EVENT_DATA: u64 = 0x2000;
const EVENT_SLOT: u64 = 0x140;
const CMD_DATA: u64 = DEV_BASE + 2 * DEV_SPAN;
const MEM_SIZE: usize = 0x3_0000;
/// What the driver fills buffers with before posting them.
const FILL: u8 = 0xAA;

const CMDQ_MAX: u16 = 128;
const EVENTQ_MAX: u16 = 64;

const _: () = assert!(CMDQ_RING + MockSplitQueue::<'_, Mem>::footprint(CMDQ_MAX) <= EVENTQ_RING);
const _: () = assert!(CMDQ_RING + MockPackedQueue::<'_, Mem>::footprint(CMDQ_MAX) <= EVENTQ_RING);
const _: () = assert!(EVENTQ_RING + MockSplitQueue::<'_, Mem>::footprint(EVENTQ_MAX) <= EVENT_DATA);
const _: () = assert!(EVENT_DATA + EVENT_SLOT * EVENTQ_MAX as u64 <= DEV_SPAN);
const _: () = assert!(MAX_WRITABLE as u64 <= EVENT_SLOT);

static CFG: Config = Config {
    vendor: "fuzz",
    sub_vendor: "virtio-scmi",
    implementation_version: 1,
    agents: &[
        AgentConfig {
            name: "linux",
            trusted: true,
            protocols: u32::MAX,
            devices: u32::MAX,
        },
        AgentConfig {
            name: "rtos",
            trusted: false,
            protocols: u32::MAX,
            devices: u32::MAX,
        },
    ],
    devices: &[],
};

type Srv = Server<builtin::Platform, 2, 8>;

/// Driver memory: a byte vector at driver address 0, every access checked
/// the way the real `GuestMemory` implementations check it.
struct Mem(RefCell<Vec<u8>>);

impl Mem {
    fn range(&self, addr: u64, len: u64, align: u64) -> Result<Range<usize>, MemoryError> {
        let end = addr
            .checked_add(len)
            .ok_or(MemoryError::Wraps { addr, len })?;
        if align > 1 && !addr.is_multiple_of(align) {
            return Err(MemoryError::Misaligned { addr, align });
        }
        if end > self.0.borrow().len() as u64 {
            return Err(MemoryError::OutOfRange { addr, len });
        }
        Ok(addr as usize..end as usize)
    }

    fn bytes(&self, addr: u64, len: u32) -> Vec<u8> {
        let mut v = vec![0; len as usize];
        self.read(addr, &mut v).expect("harness buffer in memory");
        v
    }

    fn fill(&self, addr: u64, len: u32) {
        self.write(addr, &vec![FILL; len as usize])
            .expect("harness buffer in memory");
    }
}

impl GuestMemory for Mem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let r = self.range(addr, buf.len() as u64, 1)?;
        buf.copy_from_slice(&self.0.borrow()[r]);
        Ok(())
    }
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        let r = self.range(addr, data.len() as u64, 1)?;
        self.0.borrow_mut()[r].copy_from_slice(data);
        Ok(())
    }
    fn load_u16_acquire(&self, addr: u64) -> Result<u16, MemoryError> {
        let r = self.range(addr, 2, 2)?;
        let b = self.0.borrow();
        Ok(u16::from_le_bytes([b[r.start], b[r.start + 1]]))
    }
    fn store_u16_release(&self, addr: u64, value: u16) -> Result<(), MemoryError> {
        let r = self.range(addr, 2, 2)?;
        self.0.borrow_mut()[r].copy_from_slice(&value.to_le_bytes());
        Ok(())
    }
    fn check_range(&self, addr: u64, len: u64, align: u64) -> Result<(), MemoryError> {
        self.range(addr, len, align).map(|_| ())
    }
}

enum Ring<'m> {
    Split(MockSplitQueue<'m, Mem>),
    Packed(Box<MockPackedQueue<'m, Mem>>),
}

impl<'m> Ring<'m> {
    fn new(mem: &'m Mem, base: u64, size: u16, packed: bool) -> Self {
        if packed {
            Ring::Packed(Box::new(MockPackedQueue::new(mem, base, size)))
        } else {
            Ring::Split(MockSplitQueue::new(mem, base, size))
        }
    }
    fn addresses(&self) -> (u64, u64, u64) {
        match self {
            Ring::Split(q) => q.addresses(),
            Ring::Packed(q) => q.addresses(),
        }
    }
    fn add(&mut self, bufs: &[Buf], table: Option<u64>) -> u16 {
        match (self, table) {
            (Ring::Split(q), None) => q.add_chain(bufs),
            (Ring::Split(q), Some(t)) => {
                let head = q.write_indirect(t, bufs);
                q.publish(head);
                head
            }
            (Ring::Packed(q), None) => q.add_chain(bufs),
            (Ring::Packed(q), Some(t)) => q.add_indirect(t, bufs),
        }
    }
    fn pop_used(&mut self) -> Option<(u16, u32)> {
        match self {
            Ring::Split(q) => q.pop_used().map(|(id, len)| {
                assert!(id < u32::from(q.size()), "used id {id} out of range");
                (id as u16, len)
            }),
            Ring::Packed(q) => q.pop_used(),
        }
    }
    /// Asks for a used-buffer notification at the next completion
    /// (split with EVENT_IDX: `used_event` = the driver's position; the
    /// packed driver area stays zero, i.e. notifications enabled).
    fn arm(&self) {
        if let Ring::Split(q) = self {
            q.set_used_event(q.used_idx());
        }
    }
}

/// A request as posted: what the harness needs to check its completion.
struct Posted {
    id: u16,
    request: Vec<u8>,
    /// The writable buffers, in chain order.
    out: Vec<(u64, u32)>,
    /// Whether the chain keeps the spec (an indirect descriptor needs the
    /// feature).
    valid: bool,
}

impl Posted {
    fn writable(&self) -> u32 {
        self.out.iter().map(|o| o.1).sum()
    }
}

/// The reply `request` earns from a server in `reference`'s state with
/// `room` writable bytes, as the device must produce it.
fn expected(reference: &mut Srv, agent: u32, request: &[u8], room: usize) -> Vec<u8> {
    let room = room.min(MAX_MESSAGE);
    if request.len() > MAX_REQUEST {
        // SCMI v3.2 §4.1.4: too long for a message; refused unserved.
        if request.len() < 4 || room < 8 {
            return Vec::new();
        }
        let word = u32::from_le_bytes(request[..4].try_into().unwrap());
        let mut r = (word & ECHO_MASK).to_le_bytes().to_vec();
        r.extend_from_slice(&Status::ProtocolError.code().to_le_bytes());
        return r;
    }
    let mut resp = vec![0u8; room];
    match reference.handle(agent, request, &mut resp) {
        Handled::Response(n) => resp[..n].to_vec(),
        Handled::Malformed => Vec::new(),
    }
}

/// Header bits a reply echoes: message id, protocol and token; type 0 and
/// the reserved bits clear (SCMI v3.2 §4.1.1).
const ECHO_MASK: u32 = 0x0fff_fcff;

/// One device (one agent) and its driver.
struct Dev<'m> {
    core: DeviceCore<VirtioScmi<&'m RefCell<Srv>>, 2>,
    agent: u32,
    /// Where its rings and eventq buffers are.
    base: u64,
    cmdq: Ring<'m>,
    eventq: Option<Ring<'m>>,
    /// Posted eventq buffers not yet used: (id, len), oldest first.
    events_out: VecDeque<(u16, u32)>,
    events_posted: u64,
    /// cmdq buffers made available so far.
    requests: u64,
}

struct Harness<'m> {
    mem: &'m Mem,
    server: &'m RefCell<Srv>,
    /// Fed the same requests, ticks and resets as the devices' server.
    reference: Srv,
    features: u64,
    cmdq_size: u16,
    eventq_size: u16,
    devs: Vec<Dev<'m>>,
    now_ms: u64,
}

impl<'m> Harness<'m> {
    fn add_device(&mut self, agent: u32) {
        let opts = Options {
            p2a: true,
            cmdq_size: CMDQ_MAX,
            eventq_size: EVENTQ_MAX,
            ..Options::default()
        };
        let base = DEV_BASE + DEV_SPAN * self.devs.len() as u64;
        self.devs.push(Dev {
            core: DeviceCore::new(VirtioScmi::with_options(self.server, agent, opts)),
            agent,
            base,
            cmdq: Ring::new(self.mem, base + CMDQ_RING, self.cmdq_size, self.packed()),
            eventq: None,
            events_out: VecDeque::new(),
            events_posted: 0,
            requests: 0,
        });
        self.bring_up(self.devs.len() - 1);
    }

    fn bring_up(&mut self, d: usize) {
        let packed = self.packed();
        let (mem, features) = (self.mem, self.features);
        let dev = &mut self.devs[d];
        let core = &mut dev.core;
        core.set_status(ACKNOWLEDGE).unwrap();
        core.set_status(ACKNOWLEDGE | DRIVER).unwrap();
        core.set_driver_feature_block(0, features as u32).unwrap();
        core.set_driver_feature_block(1, (features >> 32) as u32)
            .unwrap();
        core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK).unwrap();
        dev.cmdq = Ring::new(mem, dev.base + CMDQ_RING, self.cmdq_size, packed);
        let (a, b, c) = dev.cmdq.addresses();
        core.set_vqueue(mem, CMDQ, self.cmdq_size, a, b, c).unwrap();
        let eventq_size = self.eventq_size;
        dev.eventq = (features & F_P2A_CHANNELS != 0).then(|| {
            let q = Ring::new(mem, dev.base + EVENTQ_RING, eventq_size, packed);
            let (a, b, c) = q.addresses();
            core.set_vqueue(mem, EVENTQ, eventq_size, a, b, c).unwrap();
            q
        });
        dev.events_out.clear();
        dev.events_posted = 0;
        core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
            .unwrap();
        self.reference
            .set_p2a(dev.agent, features & F_P2A_CHANNELS != 0);
        dev.cmdq.arm();
    }

    fn packed(&self) -> bool {
        self.features & RING_PACKED != 0
    }

    fn dev(&self, sel: bool) -> usize {
        usize::from(sel) % self.devs.len()
    }

    /// Lays `r` out as the fuzzer asked, within what the ring can take.
    fn layout(&self, r: &Request) -> (Vec<u8>, Vec<u32>, Vec<u32>, bool) {
        let mut bytes = Vec::new();
        match r.header {
            Head::None => {}
            Head::Raw(w) => bytes.extend_from_slice(&w.to_le_bytes()),
            Head::Cmd {
                protocol,
                msg,
                token,
            } => {
                let h = Header::command(0x10 + protocol % 8, msg, token);
                bytes.extend_from_slice(&h.encode().to_le_bytes());
            }
        }
        for w in r.words.iter().take(MAX_WORDS) {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        let trim = usize::from(r.trim % 4).min(bytes.len());
        bytes.truncate(bytes.len() - trim);

        let mut readable = Vec::new();
        let mut left = bytes.len() as u32;
        for &s in r.split.iter().take(MAX_PIECES) {
            let s = u32::from(s).min(left);
            readable.push(s);
            left -= s;
        }
        if left > 0 || readable.is_empty() && !bytes.is_empty() {
            readable.push(left);
        }
        let mut writable: Vec<u32> = r
            .writable
            .iter()
            .take(MAX_PIECES)
            .map(|&w| u32::from(w % (MAX_WRITABLE + 1)))
            .collect();
        if readable.is_empty() && writable.is_empty() {
            writable.push(0);
        }
        // A chain may not be longer than the queue (virtio v1.2 §2.7.5.3.1,
        // §2.8.17): merge the pieces when it would be.
        if readable.len() + writable.len() > usize::from(self.cmdq_size) {
            for v in [&mut readable, &mut writable] {
                if !v.is_empty() {
                    let total = v.iter().sum();
                    *v = vec![total];
                }
            }
        }
        (bytes, readable, writable, r.indirect)
    }

    fn kick_batch(&mut self, d: usize, requests: &[Request]) {
        let mut posted = Vec::new();
        let mut slots = 0usize;
        let mut next = CMD_DATA;
        for r in requests.iter().take(MAX_REQUESTS) {
            let (bytes, readable, writable, indirect) = self.layout(r);
            let n = readable.len() + writable.len();
            let need = if indirect { 1 } else { n };
            let room = bytes.len() as u64 + writable.iter().map(|&w| u64::from(w)).sum::<u64>();
            let mem_need = room + 16 * n as u64 + 32 * (n as u64 + 2);
            if slots + need > usize::from(self.cmdq_size) || next + mem_need > MEM_SIZE as u64 {
                self.kick(d, std::mem::take(&mut posted));
                slots = 0;
                next = CMD_DATA;
            }
            slots += need;
            let mut bufs: Vec<Buf> = Vec::new();
            self.mem.write(next, &bytes).unwrap();
            for &len in &readable {
                bufs.push((next, len, false));
                next += u64::from(len);
            }
            next = (next + 15) & !15;
            let mut out = Vec::new();
            for &len in &writable {
                self.mem.fill(next, len);
                bufs.push((next, len, true));
                out.push((next, len));
                // A gap, so a write past a buffer shows.
                next = (next + u64::from(len) + 16) & !15;
            }
            let table = indirect.then(|| {
                let t = next;
                next += 16 * n as u64;
                t
            });
            let id = self.devs[d].cmdq.add(&bufs, table);
            posted.push(Posted {
                id,
                request: bytes,
                out,
                valid: !indirect || self.features & INDIRECT_DESC != 0,
            });
        }
        self.kick(d, posted);
    }

    fn kick(&mut self, d: usize, posted: Vec<Posted>) {
        if posted.is_empty() {
            return;
        }
        let dev = &mut self.devs[d];
        let irq = dev.core.queue_notify(self.mem, CMDQ);
        assert!(!dev.core.needs_reset(), "device set NEEDS_RESET");
        dev.requests += posted.len() as u64;
        let mut used = Vec::new();
        while let Some(u) = dev.cmdq.pop_used() {
            used.push(u);
        }
        dev.cmdq.arm();
        assert_eq!(
            used.len(),
            posted.len(),
            "every buffer made available is used by the end of the kick: {used:?}"
        );
        assert!(irq.queue(CMDQ), "the driver is told about its buffers");
        let stats = dev.core.device().stats();
        assert_eq!(
            stats.requests + stats.invalid_chains,
            dev.requests,
            "device counters"
        );
        // The device serves chains in ring order, so the reference does.
        let agent = dev.agent;
        for (p, &(id, len)) in posted.iter().zip(&used) {
            assert_eq!(id, p.id, "buffers are used in the order they came");
            self.check_reply(agent, p, len);
        }
        self.check_events(d);
    }

    fn check_reply(&mut self, agent: u32, p: &Posted, len: u32) {
        let room = p.writable();
        assert!(len <= room, "used length {len} > writable {room}");
        let mut all = Vec::new();
        for &(at, n) in &p.out {
            all.extend(self.mem.bytes(at, n));
        }
        let (reply, rest) = all.split_at(len as usize);
        assert!(
            rest.iter().all(|&b| b == FILL),
            "bytes past the used length were written"
        );
        if !p.valid {
            assert_eq!(len, 0, "a chain breaking the spec is returned empty");
            return;
        }
        let req = &p.request;
        if req.len() >= 4 && room >= 8 {
            assert!(len >= 8, "a request with a header and room is answered");
        }
        if len > 0 {
            assert!(len >= 8, "reply of {len} bytes");
            let word = u32::from_le_bytes(req[..4].try_into().unwrap());
            let echo = u32::from_le_bytes(reply[..4].try_into().unwrap());
            assert_eq!(echo, word & ECHO_MASK, "reply header echoes the request");
            let status = i32::from_le_bytes(reply[4..8].try_into().unwrap());
            if status != Status::Success.code() {
                assert_eq!(len, 8, "an error reply is header and status");
            }
            if req.len() > MAX_REQUEST {
                assert_eq!(status, Status::ProtocolError.code(), "oversized request");
            }
            assert!(len as usize <= MAX_MESSAGE);
        }
        let want = expected(&mut self.reference, agent, req, room as usize);
        assert_eq!(reply, &want[..], "reply differs from the reference server");
    }

    fn post_events(&mut self, d: usize, count: u8, len: u16) {
        let eventq_size = self.eventq_size;
        let dev = &mut self.devs[d];
        let Some(q) = dev.eventq.as_mut() else {
            return;
        };
        let len = u32::from(len % (MAX_WRITABLE + 1));
        let free = usize::from(eventq_size) - dev.events_out.len();
        let count = usize::from(count).min(free);
        if count == 0 {
            return;
        }
        for _ in 0..count {
            let slot = dev.events_posted % u64::from(eventq_size);
            let at = dev.base + EVENT_DATA + EVENT_SLOT * slot;
            self.mem.fill(at, len);
            let id = q.add(&[(at, len, true)], None);
            dev.events_out.push_back((id, len));
            dev.events_posted += 1;
        }
        let _ = dev.core.queue_notify(self.mem, EVENTQ);
        assert!(!dev.core.needs_reset(), "device set NEEDS_RESET");
        self.check_events(d);
    }

    fn tick(&mut self, ms: u16) {
        self.now_ms += u64::from(ms);
        self.server.borrow_mut().tick(self.now_ms);
        self.reference.tick(self.now_ms);
        for d in 0..self.devs.len() {
            let _ = self.devs[d].core.poll(self.mem);
            assert!(!self.devs[d].core.needs_reset(), "device set NEEDS_RESET");
            self.check_events(d);
        }
    }

    /// Takes device `d`'s used eventq buffers and checks them against the
    /// reference; the device just ran, so nothing of its agent may wait
    /// while it has buffers.
    fn check_events(&mut self, d: usize) {
        let eventq_size = u64::from(self.eventq_size);
        let dev = &mut self.devs[d];
        let Some(q) = dev.eventq.as_mut() else {
            return;
        };
        while let Some((id, len)) = q.pop_used() {
            let (want_id, room) = dev
                .events_out
                .pop_front()
                .expect("an eventq buffer used that was never posted");
            assert_eq!(id, want_id, "eventq buffers are used in order");
            assert!(len <= room, "eventq used length {len} > buffer {room}");
            let slot = (dev.events_posted - dev.events_out.len() as u64 - 1) % eventq_size;
            let got = self
                .mem
                .bytes(dev.base + EVENT_DATA + EVENT_SLOT * slot, room);
            assert!(
                got[len as usize..].iter().all(|&b| b == FILL),
                "eventq bytes past the used length were written"
            );
            let mut msg = [0u8; MAX_MESSAGE];
            let n = self
                .reference
                .next_event(dev.agent, &mut msg)
                .expect("the device delivered an event the reference does not have");
            if n as u32 <= room {
                assert_eq!(&got[..len as usize], &msg[..n], "event differs");
                assert!(n >= 4);
                let word = u32::from_le_bytes(msg[..4].try_into().unwrap());
                assert!(
                    matches!((word >> 8) & 3, 2 | 3),
                    "event is a delayed response or notification"
                );
            } else {
                assert_eq!(len, 0, "an event too large for its buffer is dropped");
            }
        }
        let server = self.server.borrow();
        if !dev.events_out.is_empty() {
            assert!(
                !server.has_event(dev.agent),
                "an event waits while eventq buffers are posted"
            );
        }
        for agent in 0..4 {
            assert_eq!(
                server.has_event(agent),
                self.reference.has_event(agent),
                "outbox of agent {agent} differs from the reference"
            );
        }
    }

    fn reset(&mut self, d: usize) {
        self.devs[d].core.set_status(0).unwrap();
        self.reference.forget_agent(self.devs[d].agent);
        self.bring_up(d);
    }
}

fn run(input: &Input) {
    let mut features = VERSION_1;
    if input.packed {
        features |= RING_PACKED;
    }
    if input.indirect {
        features |= INDIRECT_DESC;
    }
    if input.event_idx {
        features |= EVENT_IDX;
    }
    if input.p2a {
        features |= F_P2A_CHANNELS;
    }
    let (cmdq_size, eventq_size) = if input.packed {
        (
            2 + u16::from(input.cmdq_size) % (CMDQ_MAX - 1),
            1 + u16::from(input.eventq_size) % EVENTQ_MAX,
        )
    } else {
        (2 << (input.cmdq_size % 7), 1 << (input.eventq_size % 7))
    };
    let mem = Mem(RefCell::new(vec![0; MEM_SIZE]));
    let server = RefCell::new(Server::new(&CFG, builtin::PLATFORM));
    let mut h = Harness {
        mem: &mem,
        server: &server,
        reference: Server::new(&CFG, builtin::PLATFORM),
        features,
        cmdq_size,
        eventq_size,
        devs: Vec::new(),
        now_ms: 0,
    };
    h.add_device(u32::from(input.agent % 4));
    if let Some(a) = input.second {
        h.add_device(u32::from(a % 4));
    }
    for step in input.steps.iter().take(MAX_STEPS) {
        match step {
            Step::Kick { dev, requests } => h.kick_batch(h.dev(*dev), requests),
            Step::Events { dev, count, len } => h.post_events(h.dev(*dev), *count, *len),
            Step::Tick { ms } => h.tick(*ms),
            Step::Reset { dev } => h.reset(h.dev(*dev)),
        }
    }
}

/// A request the way Linux lays it out: one readable buffer (header and
/// parameters), one writable buffer of 8 + `rx` bytes.
fn linux(protocol: u8, msg: u8, token: u16, args: &[u32], rx: u16, indirect: bool) -> Request {
    Request {
        header: Head::Cmd {
            protocol: protocol - 0x10,
            msg,
            token,
        },
        words: args.to_vec(),
        trim: 0,
        split: vec![],
        writable: vec![8 + rx],
        indirect,
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let discovery = |indirect: bool| {
        let mut v = vec![
            linux(base::ID, protocols::PROTOCOL_VERSION, 1, &[], 4, indirect),
            linux(
                base::ID,
                protocols::PROTOCOL_ATTRIBUTES,
                2,
                &[],
                4,
                indirect,
            ),
            linux(base::ID, base::DISCOVER_VENDOR, 3, &[], 16, indirect),
            linux(base::ID, base::DISCOVER_SUB_VENDOR, 4, &[], 16, indirect),
            linux(
                base::ID,
                base::DISCOVER_IMPLEMENTATION_VERSION,
                5,
                &[],
                4,
                indirect,
            ),
            linux(
                base::ID,
                base::DISCOVER_LIST_PROTOCOLS,
                6,
                &[0],
                128,
                indirect,
            ),
            linux(base::ID, base::DISCOVER_AGENT, 7, &[u32::MAX], 20, indirect),
            linux(
                base::ID,
                protocols::PROTOCOL_MESSAGE_ATTRIBUTES,
                8,
                &[u32::from(base::NOTIFY_ERRORS)],
                4,
                indirect,
            ),
        ];
        for (i, p) in (0x11..=0x17).enumerate() {
            let t = 16 + 2 * i as u16;
            v.push(linux(p, protocols::PROTOCOL_VERSION, t, &[], 4, indirect));
            v.push(linux(
                p,
                protocols::PROTOCOL_ATTRIBUTES,
                t + 1,
                &[],
                128,
                indirect,
            ));
        }
        v
    };
    let devices = |indirect: bool| {
        vec![
            linux(sensor::ID, sensor::DESCRIPTION_GET, 40, &[0], 128, indirect),
            linux(sensor::ID, sensor::READING_GET, 41, &[0, 0], 128, indirect),
            // Trip point 0 of sensor 0 at 1 °C, both directions, then
            // enable its notifications.
            linux(
                sensor::ID,
                sensor::TRIP_POINT_CONFIG,
                42,
                &[0, 3, 1000, 0],
                0,
                indirect,
            ),
            linux(
                sensor::ID,
                sensor::TRIP_POINT_NOTIFY,
                43,
                &[0, 1],
                0,
                indirect,
            ),
            linux(
                clock::ID,
                clock::CLOCK_DESCRIBE_RATES,
                44,
                &[3, 0],
                128,
                indirect,
            ),
            linux(
                clock::ID,
                clock::CLOCK_RATE_NOTIFY,
                45,
                &[3, 1],
                0,
                indirect,
            ),
            linux(
                clock::ID,
                clock::CLOCK_RATE_SET,
                46,
                &[0, 3, 1_224_000_000, 0],
                0,
                indirect,
            ),
            // Asynchronous rate set: a delayed response follows.
            linux(
                clock::ID,
                clock::CLOCK_RATE_SET,
                47,
                &[1, 3, 1_200_000_000, 0],
                0,
                indirect,
            ),
            linux(clock::ID, clock::CLOCK_RATE_GET, 48, &[3], 8, indirect),
        ]
    };
    let odd = || {
        vec![
            // No header, a header cut short, an oversized request, a
            // reserved type, no room for the reply, a reply over many
            // small buffers and the request over many small descriptors.
            Request {
                header: Head::None,
                words: vec![],
                trim: 0,
                split: vec![],
                writable: vec![136],
                indirect: false,
            },
            Request {
                header: Head::Raw(0x10),
                words: vec![],
                trim: 1,
                split: vec![],
                writable: vec![136],
                indirect: false,
            },
            Request {
                header: Head::Cmd {
                    protocol: 0,
                    msg: 0,
                    token: 9,
                },
                words: vec![7; 33],
                trim: 0,
                split: vec![],
                writable: vec![136],
                indirect: false,
            },
            Request {
                header: Head::Raw(0x100 | 0x10 << 10),
                words: vec![],
                trim: 0,
                split: vec![],
                writable: vec![136],
                indirect: false,
            },
            Request {
                header: Head::Cmd {
                    protocol: 0,
                    msg: 0,
                    token: 10,
                },
                words: vec![],
                trim: 0,
                split: vec![],
                writable: vec![7],
                indirect: false,
            },
            Request {
                header: Head::Cmd {
                    protocol: 0,
                    msg: base::DISCOVER_LIST_PROTOCOLS,
                    token: 11,
                },
                words: vec![0],
                trim: 0,
                split: vec![1, 2, 0, 3],
                writable: vec![3, 0, 5, 9, 200],
                indirect: false,
            },
        ]
    };
    let kick = |requests| Step::Kick {
        dev: false,
        requests,
    };
    let mut out = Vec::new();
    for packed in [false, true] {
        for indirect in [false, true] {
            let mut steps = vec![
                Step::Events {
                    dev: false,
                    count: 8,
                    len: 136,
                },
                kick(discovery(indirect)),
                kick(devices(indirect)),
                Step::Tick { ms: 1000 },
                kick(odd()),
                Step::Tick { ms: 60_000 },
            ];
            if indirect {
                steps.push(Step::Reset { dev: false });
                steps.push(kick(discovery(false)));
            }
            out.push(Input {
                packed,
                indirect,
                event_idx: indirect,
                p2a: true,
                cmdq_size: if packed { 62 } else { 5 },
                eventq_size: if packed { 15 } else { 4 },
                agent: 1,
                second: None,
                steps,
            });
        }
    }
    // Linux without P2A, a tiny ring, the untrusted agent.
    out.push(Input {
        packed: false,
        indirect: false,
        event_idx: false,
        p2a: false,
        cmdq_size: 0,
        eventq_size: 0,
        agent: 2,
        second: None,
        steps: vec![kick(discovery(false)), kick(devices(false))],
    });
    // Two devices over one server: the second agent subscribes to rate
    // changes of clock 3, the first changes the rate, the second's eventq
    // gets the notification when it posts buffers; then the first resets.
    out.push(Input {
        packed: false,
        indirect: true,
        event_idx: true,
        p2a: true,
        cmdq_size: 4,
        eventq_size: 3,
        agent: 1,
        second: Some(2),
        steps: vec![
            Step::Events {
                dev: false,
                count: 4,
                len: 136,
            },
            Step::Kick {
                dev: true,
                requests: vec![linux(
                    clock::ID,
                    clock::CLOCK_RATE_NOTIFY,
                    1,
                    &[3, 1],
                    0,
                    true,
                )],
            },
            kick(devices(true)),
            Step::Tick { ms: 10 },
            Step::Events {
                dev: true,
                count: 4,
                len: 136,
            },
            Step::Reset { dev: false },
            kick(devices(false)),
        ],
    });
    out.iter().map(encode).collect()
}

fuzz_target!(
    init: maybe_write_seeds("scmi_device", seeds),
    |input: Input| run(&input)
);
