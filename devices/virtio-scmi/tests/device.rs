//! The virtio-scmi device driven through `virtio_backend::DeviceCore` by the
//! driver-side mock rings, split and packed, the way Linux 6.12's
//! `transports/virtio.c` drives it, and the ways it does not.

extern crate std;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;
use std::vec::Vec;

use virtio_backend::mock::{Buf, MockPackedQueue, MockSplitQueue};
use virtio_backend::spec::features::{EVENT_IDX, INDIRECT_DESC, RING_PACKED, VERSION_1};
use virtio_backend::spec::ring::AVAIL_F_NO_INTERRUPT;
use virtio_backend::spec::status::{ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK};
use virtio_backend::{ControlError, DeviceCore, GuestMemory, Interrupts, MemoryError};

use platform_host_vhost_user as builtin;
use scmi_server::config::{AgentConfig, Config};
use scmi_server::context::NotifyKind;
use scmi_server::header::{Header, MsgType, Status};
use scmi_server::protocols::base;
use scmi_server::{Handled, MAX_MESSAGE, Server};
use virtio_scmi::{
    Backend, CMDQ, DEVICE_ID, EVENTQ, F_P2A_CHANNELS, F_SHARED_MEMORY, Options, VirtioScmi,
};

static CFG: Config = Config {
    vendor: "rust-scmi",
    sub_vendor: "virtio",
    implementation_version: 0x0001_0002,
    agents: &[
        AgentConfig {
            name: "linux-guest",
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

fn server() -> Srv {
    Server::new(&CFG, builtin::PLATFORM)
}

// ---- driver memory without unsafe code ----

/// Driver memory: a byte vector at driver address 0, every access checked
/// like the real seams do.
struct Mem(RefCell<Vec<u8>>);

impl Mem {
    fn new(len: usize) -> Self {
        Mem(RefCell::new(std::vec![0; len]))
    }

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

    fn bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = std::vec![0; len];
        self.read(addr, &mut v).unwrap();
        v
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

// ---- driver side ----

enum Ring<'m> {
    Split(MockSplitQueue<'m, Mem>),
    Packed(std::boxed::Box<MockPackedQueue<'m, Mem>>),
}

impl Ring<'_> {
    fn new(mem: &Mem, base: u64, size: u16, packed: bool) -> Ring<'_> {
        if packed {
            Ring::Packed(std::boxed::Box::new(MockPackedQueue::new(mem, base, size)))
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
    fn add(&mut self, bufs: &[Buf]) -> u16 {
        match self {
            Ring::Split(q) => q.add_chain(bufs),
            Ring::Packed(q) => q.add_chain(bufs),
        }
    }
    fn add_indirect(&mut self, table: u64, bufs: &[Buf]) -> u16 {
        match self {
            Ring::Split(q) => {
                let head = q.write_indirect(table, bufs);
                q.publish(head);
                head
            }
            Ring::Packed(q) => q.add_indirect(table, bufs),
        }
    }
    fn pop_used(&mut self) -> Option<(u16, u32)> {
        match self {
            Ring::Split(q) => q.pop_used().map(|(id, len)| (id as u16, len)),
            Ring::Packed(q) => q.pop_used(),
        }
    }
    /// Takes every used buffer, then asks for an interrupt at the next one
    /// (Linux's `virtqueue_enable_cb`: with EVENT_IDX, `used_event` moves
    /// to the driver's position).
    fn drain(&mut self) -> Vec<(u16, u32)> {
        let v: Vec<_> = std::iter::from_fn(|| self.pop_used()).collect();
        if let Ring::Split(q) = self {
            q.set_used_event(q.used_idx());
        }
        v
    }
    fn split(&self) -> &MockSplitQueue<'_, Mem> {
        match self {
            Ring::Split(q) => q,
            Ring::Packed(_) => panic!("not a split ring"),
        }
    }
}

/// How a driver lays a request and its response buffer out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One readable descriptor, one writable: what Linux does without
    /// INDIRECT_DESC.
    Two,
    /// Header and payload in separate readable descriptors.
    Three,
    /// The request cut at odd places (inside the header) over three
    /// descriptors, the response over three: six elements, more than the
    /// queue captures, so the readers walk the ring.
    Many,
    /// One indirect descriptor holding two entries: what Linux does with
    /// INDIRECT_DESC.
    Indirect,
    /// The `Many` layout inside an indirect table.
    IndirectMany,
}

const LAYOUTS: [Layout; 5] = [
    Layout::Two,
    Layout::Three,
    Layout::Many,
    Layout::Indirect,
    Layout::IndirectMany,
];

/// A posted request: its id and its writable buffers.
struct Posted {
    id: u16,
    out: Vec<(u64, u32)>,
}

const CMDQ_RING: u64 = 0x1000;
const EVENTQ_RING: u64 = 0x8000;
const DATA: u64 = 0x10000;

struct Rig<'m, B: Backend> {
    mem: &'m Mem,
    core: DeviceCore<VirtioScmi<B>, 2>,
    cmdq: Ring<'m>,
    eventq: Option<Ring<'m>>,
    next: u64,
}

/// Brings a device up the way Linux does: features, queues, DRIVER_OK.
/// `accept` are the driver's features; the eventq is set up when it has
/// `F_P2A_CHANNELS`.
fn rig<B: Backend>(
    mem: &Mem,
    backend: B,
    agent: u32,
    opts: Options,
    accept: u64,
    cmdq_size: u16,
) -> Rig<'_, B> {
    let packed = accept & RING_PACKED != 0;
    let mut core = DeviceCore::<_, 2>::new(VirtioScmi::with_options(backend, agent, opts));
    assert_eq!(core.info().device_id, DEVICE_ID);
    core.set_status(ACKNOWLEDGE).unwrap();
    core.set_status(ACKNOWLEDGE | DRIVER).unwrap();
    core.set_driver_feature_block(0, accept as u32).unwrap();
    core.set_driver_feature_block(1, (accept >> 32) as u32)
        .unwrap();
    core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK).unwrap();
    let cmdq = Ring::new(mem, CMDQ_RING, cmdq_size, packed);
    let (d, a, u) = cmdq.addresses();
    core.set_vqueue(mem, CMDQ, cmdq_size, d, a, u).unwrap();
    let eventq = (accept & F_P2A_CHANNELS != 0).then(|| {
        let q = Ring::new(mem, EVENTQ_RING, 16, packed);
        let (d, a, u) = q.addresses();
        core.set_vqueue(mem, EVENTQ, 16, d, a, u).unwrap();
        q
    });
    core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
        .unwrap();
    Rig {
        mem,
        core,
        cmdq,
        eventq,
        next: DATA,
    }
}

const LINUX: u64 = VERSION_1 | F_P2A_CHANNELS;

impl<B: Backend> Rig<'_, B> {
    /// Driver memory for a buffer, filled with 0xAA.
    fn alloc(&mut self, len: u32) -> u64 {
        let at = self.next;
        self.next = (self.next + u64::from(len) + 15) & !15;
        self.mem.write(at, &std::vec![0xAA; len as usize]).unwrap();
        at
    }

    /// Puts `request` and `rx` writable bytes on the cmdq in `layout`.
    fn post(&mut self, layout: Layout, request: &[u8], rx: u32) -> Posted {
        let req = self.alloc(request.len() as u32);
        self.mem.write(req, request).unwrap();
        let resp = self.alloc(rx);
        let n = request.len() as u32;
        let mut bufs: Vec<Buf> = Vec::new();
        let mut out = Vec::new();
        match layout {
            Layout::Two | Layout::Indirect => {
                bufs.push((req, n, false));
                bufs.push((resp, rx, true));
                out.push((resp, rx));
            }
            Layout::Three => {
                let h = n.min(4);
                bufs.push((req, h, false));
                bufs.push((req + u64::from(h), n - h, false));
                bufs.push((resp, rx, true));
                out.push((resp, rx));
            }
            Layout::Many | Layout::IndirectMany => {
                let a = n.min(1);
                let b = (n - a).min(2);
                bufs.push((req, a, false));
                bufs.push((req + u64::from(a), b, false));
                bufs.push((req + u64::from(a + b), n - a - b, false));
                let x = rx.min(5);
                let y = (rx - x).min(3);
                for (off, len) in [(0, x), (x, y), (x + y, rx - x - y)] {
                    bufs.push((resp + u64::from(off), len, true));
                    out.push((resp + u64::from(off), len));
                }
            }
        }
        let id = match layout {
            Layout::Indirect | Layout::IndirectMany => {
                let table = self.alloc(16 * bufs.len() as u32);
                self.cmdq.add_indirect(table, &bufs)
            }
            _ => self.cmdq.add(&bufs),
        };
        Posted { id, out }
    }

    /// Posts raw buffers on the cmdq.
    fn post_raw(&mut self, bufs: &[Buf]) -> Posted {
        let out = bufs.iter().filter(|b| b.2).map(|b| (b.0, b.1)).collect();
        Posted {
            id: self.cmdq.add(bufs),
            out,
        }
    }

    fn kick(&mut self, queue: u16) -> Interrupts {
        self.core.queue_notify(self.mem, queue)
    }

    /// The first `len` bytes the device wrote into `p`'s buffers, and
    /// whether every byte after them is untouched.
    fn reply(&self, p: &Posted, len: u32) -> (Vec<u8>, bool) {
        let mut all = Vec::new();
        for &(addr, n) in &p.out {
            all.extend(self.mem.bytes(addr, n as usize));
        }
        let len = len as usize;
        let untouched = all[len..].iter().all(|&b| b == 0xAA);
        (all[..len].to_vec(), untouched)
    }

    /// Completed cmdq buffers: id -> used length.
    fn used(&mut self) -> Vec<(u16, u32)> {
        self.cmdq.drain()
    }

    /// Sends one request and returns the reply bytes (checking the buffer
    /// came back once, with nothing written past the used length).
    fn call(&mut self, layout: Layout, request: &[u8], rx: u32) -> Vec<u8> {
        let p = self.post(layout, request, rx);
        let irq = self.kick(CMDQ);
        assert!(irq.queue(CMDQ), "{layout:?}: the driver wants to know");
        let used = self.used();
        assert_eq!(used.len(), 1, "{layout:?}: exactly one buffer back");
        assert_eq!(used[0].0, p.id);
        let (bytes, untouched) = self.reply(&p, used[0].1);
        assert!(untouched, "{layout:?}: nothing beyond the used length");
        bytes
    }

    fn post_event_buffers(&mut self, n: usize, len: u32) -> Vec<(u16, u64)> {
        (0..n)
            .map(|_| {
                let at = self.alloc(len);
                let id = self.eventq.as_mut().unwrap().add(&[(at, len, true)]);
                (id, at)
            })
            .collect()
    }

    fn events_used(&mut self) -> Vec<(u16, u32)> {
        self.eventq.as_mut().unwrap().drain()
    }

    fn device(&self) -> &VirtioScmi<B> {
        self.core.device()
    }
}

fn request(protocol: u8, msg: u8, token: u16, args: &[u32]) -> Vec<u8> {
    let mut v = Header::command(protocol, msg, token)
        .encode()
        .to_le_bytes()
        .to_vec();
    for a in args {
        v.extend_from_slice(&a.to_le_bytes());
    }
    v
}

/// What a server in the same state answers with a response buffer of
/// `room` bytes.
fn expected(s: &mut Srv, agent: u32, req: &[u8], room: usize) -> Vec<u8> {
    let mut resp = std::vec![0u8; room];
    match s.handle(agent, req, &mut resp) {
        Handled::Response(n) => resp[..n].to_vec(),
        Handled::Malformed => Vec::new(),
    }
}

fn status(reply: &[u8]) -> i32 {
    i32::from_le_bytes(reply[4..8].try_into().unwrap())
}

fn header(reply: &[u8]) -> Header {
    Header::decode(u32::from_le_bytes(reply[..4].try_into().unwrap())).unwrap()
}

fn mem() -> Mem {
    Mem::new(4 << 20)
}

// ---- identity and features ----

#[test]
fn identity_features_and_queues() {
    let d = VirtioScmi::new(server(), 1);
    let core = DeviceCore::<_, 2>::new(d);
    let f = core.device_features();
    assert_eq!(core.info().device_id, 32);
    assert_eq!(core.info().config_size, 0, "§5.17.4: no config space");
    for bit in [
        VERSION_1,
        F_P2A_CHANNELS,
        INDIRECT_DESC,
        EVENT_IDX,
        RING_PACKED,
    ] {
        assert_ne!(f & bit, 0, "offers {bit:#x}");
    }
    assert_eq!(f & F_SHARED_MEMORY, 0, "never SHARED_MEMORY");
    assert_eq!(core.queue_info(CMDQ).max_size, 128);
    assert!(core.queue_info(EVENTQ).max_size > 0);

    // Without P2A there is no eventq and no P2A bit.
    let opts = Options {
        p2a: false,
        ring_features: 0,
        ..Options::default()
    };
    let core = DeviceCore::<_, 2>::new(VirtioScmi::with_options(server(), 1, opts));
    assert_eq!(core.device_features(), VERSION_1);
    assert_eq!(core.queue_info(EVENTQ).max_size, 0);

    // A driver accepting SHARED_MEMORY (never offered) is refused.
    let mut core = DeviceCore::<_, 2>::new(VirtioScmi::new(server(), 1));
    core.set_status(ACKNOWLEDGE | DRIVER).unwrap();
    core.set_driver_feature_block(0, (VERSION_1 | F_SHARED_MEMORY) as u32)
        .unwrap();
    core.set_driver_feature_block(1, (VERSION_1 >> 32) as u32)
        .unwrap();
    assert_eq!(
        core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK),
        Err(ControlError::FeaturesRefused)
    );
}

// ---- discovery in every layout ----

fn discovery(accept: u64) {
    let m = mem();
    let mut reference = server();
    reference.set_p2a(1, accept & F_P2A_CHANNELS != 0);
    let mut r = rig(&m, server(), 1, Options::default(), accept, 64);
    let cmds: [(u8, &[u32], u32); 8] = [
        (scmi_server::protocols::PROTOCOL_VERSION, &[], 4),
        (scmi_server::protocols::PROTOCOL_ATTRIBUTES, &[], 4),
        (base::DISCOVER_VENDOR, &[], 16),
        (base::DISCOVER_SUB_VENDOR, &[], 16),
        (base::DISCOVER_IMPLEMENTATION_VERSION, &[], 4),
        (base::DISCOVER_LIST_PROTOCOLS, &[0], 128),
        (base::DISCOVER_AGENT, &[u32::MAX], 20),
        (scmi_server::protocols::PROTOCOL_MESSAGE_ATTRIBUTES, &[6], 4),
    ];
    let mut token = 0;
    for layout in LAYOUTS {
        for &(msg, args, rx) in &cmds {
            token = (token + 7) % 1024;
            let req = request(base::ID, msg, token, args);
            let want = expected(&mut reference, 1, &req, 8 + rx as usize);
            let got = r.call(layout, &req, 8 + rx);
            assert_eq!(got, want, "{layout:?} message {msg:#x}");
            assert_eq!(header(&got).token, token);
            assert_eq!(header(&got).msg_type, MsgType::Command);
            assert_eq!(status(&got), 0, "{layout:?} message {msg:#x}");
        }
        // PROTOCOL_VERSION is 2.1, in 12 bytes.
        let got = r.call(layout, &request(base::ID, 0, 3, &[]), 12);
        assert_eq!(got.len(), 12);
        assert_eq!(got[8..], base::VERSION.to_le_bytes());
    }
    let s = r.device().stats();
    assert_eq!(s.requests, s.replies);
    assert_eq!(s.unanswerable + s.oversized + s.invalid_chains, 0);
}

#[test]
fn discovery_in_every_layout_split() {
    discovery(LINUX | INDIRECT_DESC);
    discovery(LINUX | INDIRECT_DESC | EVENT_IDX);
}

#[test]
fn discovery_in_every_layout_packed() {
    discovery(LINUX | INDIRECT_DESC | RING_PACKED);
    discovery(LINUX | INDIRECT_DESC | RING_PACKED | EVENT_IDX);
}

#[test]
fn linux_list_protocols_reply_is_padded_and_fits() {
    // Linux: DISCOVER_LIST_PROTOCOLS with rx_size 0, i.e. a 136-byte
    // in-buffer; the list is padded to whole words (§4.2.2.8).
    let m = mem();
    let mut r = rig(&m, server(), 1, Options::default(), LINUX, 16);
    let got = r.call(
        Layout::Two,
        &request(base::ID, base::DISCOVER_LIST_PROTOCOLS, 9, &[0]),
        136,
    );
    assert_eq!(status(&got), 0);
    let n = u32::from_le_bytes(got[8..12].try_into().unwrap()) as usize;
    assert_eq!(got.len(), 12 + n.div_ceil(4) * 4);
}

// ---- malformed requests ----

fn malformed(accept: u64) {
    let m = mem();
    let mut r = rig(&m, server(), 1, Options::default(), accept, 64);
    let ver = request(base::ID, 0, 0x101, &[]);
    let mut cases: Vec<(&str, Posted, u32, Option<Status>)> = Vec::new();

    // Two bytes: no header to echo.
    let p = r.post(Layout::Two, &[0x10, 0x40], 16);
    cases.push(("too short", p, 0, None));
    // Header only, for a command that needs an argument.
    let p = r.post(
        Layout::Two,
        &request(base::ID, base::DISCOVER_AGENT, 0x202, &[]),
        28,
    );
    cases.push(("header only", p, 8, Some(Status::ProtocolError)));
    // Header only for PROTOCOL_VERSION is a whole request.
    let p = r.post(Layout::Two, &ver, 12);
    cases.push(("version", p, 12, Some(Status::Success)));
    // 129 payload bytes: one more than an SCMI message may carry.
    let mut big = request(base::ID, 0, 0x303, &[]);
    big.resize(4 + 129, 0);
    let p = r.post(Layout::Three, &big, 12);
    cases.push(("oversized", p, 8, Some(Status::ProtocolError)));
    // Far too big, over several descriptors.
    let mut huge = request(base::ID, base::DISCOVER_AGENT, 0x304, &[0]);
    huge.resize(4096, 0x55);
    let p = r.post(Layout::Many, &huge, 136);
    cases.push(("huge", p, 8, Some(Status::ProtocolError)));
    // Exactly 128 payload bytes: accepted (extra arguments are ignored).
    let mut full = request(base::ID, 0, 0x305, &[]);
    full.resize(4 + 128, 0);
    let p = r.post(Layout::Two, &full, 12);
    cases.push(("full", p, 12, Some(Status::Success)));
    // No writable buffer at all.
    let req = r.alloc(4);
    r.mem.write(req, &ver).unwrap();
    let p = r.post_raw(&[(req, 4, false)]);
    cases.push(("no writable", p, 0, None));
    // A response buffer with no request.
    let out = r.alloc(16);
    let p = r.post_raw(&[(out, 16, true)]);
    cases.push(("no readable", p, 0, None));
    // Writable space below header + status.
    let p = r.post(Layout::Two, &ver, 7);
    cases.push(("writable 7", p, 0, None));
    // Room for header and status only: the 4-byte version does not fit.
    let p = r.post(Layout::Two, &ver, 8);
    cases.push(("writable 8", p, 8, Some(Status::GenericError)));
    // Reserved header bits: refused, token echoed.
    let bad = (Header::command(base::ID, 0, 0x306).encode() | 1 << 30).to_le_bytes();
    let p = r.post(Layout::Two, &bad, 12);
    cases.push(("reserved bits", p, 8, Some(Status::ProtocolError)));
    // A huge response buffer: the reply still stops at 136 bytes.
    let p = r.post(
        Layout::Two,
        &request(base::ID, base::DISCOVER_VENDOR, 0x307, &[]),
        4096,
    );
    cases.push(("huge rx", p, 24, Some(Status::Success)));
    // Readable after writable: the queue itself completes it with 0.
    let a = r.alloc(16);
    let b = r.alloc(16);
    let p = r.post_raw(&[(a, 16, true), (b, 16, false)]);
    cases.push(("readable after writable", p, 0, None));

    // One kick serves them all, every buffer comes back once.
    let irq = r.kick(CMDQ);
    assert!(irq.queue(CMDQ));
    let used = r.used();
    assert_eq!(used.len(), cases.len(), "every buffer completed");
    for (name, p, len, st) in &cases {
        let &(_, got_len) = used
            .iter()
            .find(|(id, _)| *id == p.id)
            .unwrap_or_else(|| panic!("{name}: not completed"));
        assert_eq!(got_len, *len, "{name}: used length");
        let (bytes, untouched) = r.reply(p, got_len);
        assert!(untouched, "{name}: wrote past the used length");
        if let Some(st) = st {
            assert_eq!(status(&bytes), st.code(), "{name}");
            // The token we sent is the one echoed.
            assert_eq!(header(&bytes).msg_type, MsgType::Command, "{name}");
        }
    }
    let tok = |name: &str| {
        let (_, p, len, _) = cases.iter().find(|c| c.0 == name).unwrap();
        header(&r.reply(p, *len).0).token
    };
    assert_eq!(tok("header only"), 0x202);
    assert_eq!(tok("oversized"), 0x303);
    assert_eq!(tok("huge"), 0x304);
    assert_eq!(tok("reserved bits"), 0x306);
    let s = r.device().stats();
    assert_eq!(s.oversized, 2);
    assert_eq!(s.unanswerable, 4, "too short, no writable, no readable, 7");
    assert_eq!(s.invalid_chains, 1);
    assert_eq!(s.requests, cases.len() as u64 - 1);

    // The queue goes on working.
    let got = r.call(Layout::Two, &ver, 12);
    assert_eq!(status(&got), 0);
}

#[test]
fn malformed_requests_are_all_completed_split() {
    malformed(LINUX);
    malformed(LINUX | EVENT_IDX);
}

#[test]
fn malformed_requests_are_all_completed_packed() {
    malformed(LINUX | RING_PACKED);
    malformed(LINUX | RING_PACKED | EVENT_IDX);
}

// ---- many in flight ----

fn in_flight(accept: u64, layout: Layout) {
    let m = mem();
    let mut r = rig(&m, server(), 2, Options::default(), accept, 128);
    for round in 0..3u16 {
        // Linux keeps up to half the ring in flight: 64 two-descriptor
        // chains fill a 128-entry ring.
        let mut posted = Vec::new();
        for i in 0..64u16 {
            let token = round * 64 + i;
            let (req, rx) = if i % 2 == 0 {
                (request(base::ID, 0, token, &[]), 12)
            } else {
                (
                    request(base::ID, base::DISCOVER_AGENT, token, &[u32::MAX]),
                    28,
                )
            };
            posted.push((token, r.post(layout, &req, rx)));
        }
        let irq = r.kick(CMDQ);
        assert!(irq.queue(CMDQ));
        let used = r.used();
        assert_eq!(used.len(), 64, "round {round}: all served in one kick");
        for (token, p) in &posted {
            let &(_, len) = used.iter().find(|u| u.0 == p.id).unwrap();
            let (bytes, untouched) = r.reply(p, len);
            assert!(untouched);
            assert_eq!(header(&bytes).token, *token);
            assert_eq!(status(&bytes), 0);
            if token % 2 == 1 {
                assert_eq!(len, 28);
                assert_eq!(bytes[8..12], 2u32.to_le_bytes(), "agent 2 asked");
                assert_eq!(&bytes[12..17], b"rtos\0");
            } else {
                assert_eq!(len, 12);
            }
        }
        // Nothing more.
        assert_eq!(r.kick(CMDQ), Interrupts::default());
    }
    assert_eq!(r.device().stats().replies, 192);
}

#[test]
fn sixty_four_requests_in_flight_split() {
    in_flight(LINUX, Layout::Two);
    in_flight(LINUX | EVENT_IDX, Layout::Two);
    in_flight(LINUX | INDIRECT_DESC | EVENT_IDX, Layout::Indirect);
}

#[test]
fn sixty_four_requests_in_flight_packed() {
    in_flight(LINUX | RING_PACKED, Layout::Two);
    in_flight(LINUX | RING_PACKED | EVENT_IDX, Layout::Two);
    in_flight(LINUX | RING_PACKED | INDIRECT_DESC, Layout::Indirect);
}

// ---- notification decisions ----

#[test]
fn notifications_follow_the_driver() {
    let m = mem();
    let ver = request(base::ID, 0, 1, &[]);
    // No EVENT_IDX: the driver's NO_INTERRUPT flag suppresses the
    // interrupt, never the completion.
    let mut r = rig(&m, server(), 1, Options::default(), LINUX, 16);
    r.cmdq.split().set_avail_flags(AVAIL_F_NO_INTERRUPT);
    r.post(Layout::Two, &ver, 12);
    assert!(!r.kick(CMDQ).queue(CMDQ));
    assert_eq!(r.used().len(), 1);

    // EVENT_IDX: the device re-arms kicks at its position (avail_event),
    // and interrupts only when the driver's used_event is crossed.
    let m = mem();
    let mut r = rig(&m, server(), 1, Options::default(), LINUX | EVENT_IDX, 16);
    for _ in 0..3 {
        r.post(Layout::Two, &ver, 12);
    }
    assert!(r.kick(CMDQ).queue(CMDQ));
    assert_eq!(r.used().len(), 3);
    assert_eq!(r.cmdq.split().avail_event(), 3, "kicks re-armed");
    r.cmdq.split().set_used_event(10);
    r.post(Layout::Two, &ver, 12);
    assert!(!r.kick(CMDQ).queue(CMDQ), "used_event 10 not reached");
    assert_eq!(r.used().len(), 1);
    r.cmdq.split().set_used_event(4);
    r.post(Layout::Two, &ver, 12);
    assert!(r.kick(CMDQ).queue(CMDQ), "used_event 4 crossed");
}

// ---- P2A and the eventq ----

/// A backend that answers through a real server and, for every request
/// while the agent has a P2A channel, queues a fake delayed response
/// (type 2, same token, status SUCCESS, then the token again) in a bounded
/// outbox, as an async command would.
struct Scripted {
    server: Srv,
    outbox: VecDeque<(u32, Vec<u8>)>,
    cap: usize,
    p2a: [bool; 3],
    forgotten: u32,
}

impl Scripted {
    fn new() -> Self {
        Scripted {
            server: server(),
            outbox: VecDeque::new(),
            cap: 8,
            p2a: [false; 3],
            forgotten: 0,
        }
    }

    fn push(&mut self, agent: u32, msg: Vec<u8>) {
        if self.outbox.len() < self.cap {
            self.outbox.push_back((agent, msg));
        }
    }
}

impl Backend for Scripted {
    fn handle(&mut self, agent: u32, request: &[u8], response: &mut [u8]) -> Handled {
        let r = self.server.handle(agent, request, response);
        if let Handled::Response(n) = r
            && n >= 8
            && self.p2a[agent as usize]
        {
            let h = header(response).with_type(MsgType::DelayedResponse);
            let mut msg = h.encode().to_le_bytes().to_vec();
            msg.extend_from_slice(&0u32.to_le_bytes());
            msg.extend_from_slice(&u32::from(h.token).to_le_bytes());
            self.push(agent, msg);
        }
        r
    }
    fn has_event(&self, agent: u32) -> bool {
        self.outbox.iter().any(|e| e.0 == agent)
    }
    fn next_event(&mut self, agent: u32, buf: &mut [u8]) -> Option<usize> {
        let i = self.outbox.iter().position(|e| e.0 == agent)?;
        let n = self.outbox[i].1.len();
        buf.get_mut(..n)?.copy_from_slice(&self.outbox[i].1);
        self.outbox.remove(i);
        Some(n)
    }
    fn set_p2a(&mut self, agent: u32, p2a: bool) {
        self.p2a[agent as usize] = p2a;
        self.server.set_p2a(agent, p2a);
    }
    fn forget_driver(&mut self, agent: u32) {
        self.forgotten += 1;
        self.p2a[agent as usize] = false;
        self.outbox.retain(|e| e.0 != agent);
    }
    fn tick(&mut self, now_ms: u64) {
        self.server.tick(now_ms);
    }
}

fn delayed_token(msg: &[u8]) -> u16 {
    let h = header(msg);
    assert_eq!(h.msg_type, MsgType::DelayedResponse);
    assert_eq!(msg.len(), 12);
    assert_eq!(status(msg), 0);
    assert_eq!(msg[8..12], u32::from(h.token).to_le_bytes());
    h.token
}

fn eventq_after_reply(accept: u64) {
    let m = mem();
    let mut r = rig(&m, Scripted::new(), 1, Options::default(), accept, 16);
    assert!(r.device().p2a());
    assert!(r.device().backend().p2a[1], "set_p2a(1, true) on activate");
    // Linux posts its eventq buffers after DRIVER_OK; nothing to say yet.
    let bufs = r.post_event_buffers(4, 136);
    assert!(!r.kick(EVENTQ).queue(EVENTQ));
    assert!(r.events_used().is_empty());
    // A command: its reply on the cmdq and its delayed response on the
    // eventq, both in this kick.
    r.post(Layout::Two, &request(base::ID, 0, 0x77, &[]), 12);
    let irq = r.kick(CMDQ);
    assert!(irq.queue(CMDQ) && irq.queue(EVENTQ), "{irq:?}");
    assert_eq!(r.used().len(), 1);
    let ev = r.events_used();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0], (bufs[0].0, 12));
    assert_eq!(delayed_token(&m.bytes(bufs[0].1, 12)), 0x77);
    assert_eq!(r.device().stats().events, 1);
}

#[test]
fn eventq_carries_delayed_responses_after_the_reply() {
    eventq_after_reply(LINUX);
    eventq_after_reply(LINUX | EVENT_IDX);
    eventq_after_reply(LINUX | RING_PACKED);
    eventq_after_reply(LINUX | RING_PACKED | EVENT_IDX);
}

fn events_wait(accept: u64) {
    let m = mem();
    let mut r = rig(&m, Scripted::new(), 1, Options::default(), accept, 16);
    for t in 1..=3 {
        r.post(Layout::Two, &request(base::ID, 0, t, &[]), 12);
    }
    // No eventq buffer yet: the events wait in the outbox.
    let irq = r.kick(CMDQ);
    assert!(irq.queue(CMDQ));
    assert!(!irq.queue(EVENTQ));
    assert_eq!(r.used().len(), 3);
    assert_eq!(r.device().backend().outbox.len(), 3);
    // Two buffers: the two oldest, in order.
    let b = r.post_event_buffers(2, 136);
    assert!(r.kick(EVENTQ).queue(EVENTQ));
    let ev = r.events_used();
    assert_eq!(ev.len(), 2);
    assert_eq!(delayed_token(&m.bytes(b[0].1, 12)), 1);
    assert_eq!(delayed_token(&m.bytes(b[1].1, 12)), 2);
    if accept & EVENT_IDX != 0 && accept & RING_PACKED == 0 {
        let q = r.eventq.as_ref().unwrap().split();
        assert_eq!(q.avail_event(), 2, "asks for a kick at the next buffer");
    }
    // The last one when the driver posts another buffer.
    let b = r.post_event_buffers(1, 136);
    assert!(r.kick(EVENTQ).queue(EVENTQ));
    assert_eq!(r.events_used().len(), 1);
    assert_eq!(delayed_token(&m.bytes(b[0].1, 12)), 3);
    assert!(r.device().backend().outbox.is_empty());
    // Spare buffers stay with the device until there is something to say.
    r.post_event_buffers(2, 136);
    assert!(!r.kick(EVENTQ).queue(EVENTQ));
    assert!(r.events_used().is_empty());
}

#[test]
fn events_wait_for_eventq_buffers() {
    events_wait(LINUX);
    events_wait(LINUX | EVENT_IDX);
    events_wait(LINUX | RING_PACKED);
    events_wait(LINUX | RING_PACKED | EVENT_IDX);
}

#[test]
fn poll_delivers_events_that_arise_elsewhere() {
    let m = mem();
    let mut r = rig(&m, Scripted::new(), 2, Options::default(), LINUX, 16);
    let b = r.post_event_buffers(2, 136);
    assert!(r.kick(EVENTQ).is_empty());
    // A notification for agent 2 (as another agent's command would cause),
    // and one for agent 1 that this device must not take.
    let note = Header {
        msg_id: 0,
        msg_type: MsgType::Notification,
        protocol: 0x11,
        token: 0,
    };
    let mut msg = note.encode().to_le_bytes().to_vec();
    msg.extend_from_slice(&[1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0x40]);
    r.core.device_mut().backend_mut().push(1, msg.clone());
    r.core.device_mut().backend_mut().push(2, msg.clone());
    let irq = r.core.poll(&m);
    assert!(irq.queue(EVENTQ));
    assert_eq!(r.events_used(), [(b[0].0, 16)]);
    assert_eq!(m.bytes(b[0].1, 16), msg);
    assert_eq!(r.device().backend().outbox.len(), 1, "agent 1's stays");
    assert!(r.core.poll(&m).is_empty());
}

#[test]
fn an_event_too_big_for_the_buffer_is_dropped() {
    let m = mem();
    let mut r = rig(&m, Scripted::new(), 1, Options::default(), LINUX, 16);
    let small = r.post_event_buffers(1, 8);
    let good = r.post_event_buffers(1, 136);
    r.post(Layout::Two, &request(base::ID, 0, 1, &[]), 12);
    r.post(Layout::Two, &request(base::ID, 0, 2, &[]), 12);
    let irq = r.kick(CMDQ);
    assert!(irq.queue(EVENTQ));
    let ev = r.events_used();
    assert_eq!(ev, [(small[0].0, 0), (good[0].0, 12)]);
    assert_eq!(m.bytes(small[0].1, 8), [0xAA; 8], "nothing written");
    assert_eq!(delayed_token(&m.bytes(good[0].1, 12)), 2);
    let s = r.device().stats();
    assert_eq!((s.events, s.events_dropped), (1, 1));
}

#[test]
fn without_p2a_there_is_no_eventq_and_no_notify() {
    let m = mem();
    // The driver does not take P2A: the server hears so, Base refuses
    // NOTIFY_ERRORS, and nothing is queued for the agent.
    let mut r = rig(&m, server(), 1, Options::default(), VERSION_1, 16);
    assert!(!r.device().p2a());
    assert!(r.eventq.is_none());
    let got = r.call(
        Layout::Two,
        &request(base::ID, base::NOTIFY_ERRORS, 1, &[1]),
        8,
    );
    assert_eq!(status(&got), Status::NotSupported.code());

    // With P2A the same command succeeds.
    let m = mem();
    let mut r = rig(&m, server(), 1, Options::default(), LINUX, 16);
    let got = r.call(
        Layout::Two,
        &request(base::ID, base::NOTIFY_ERRORS, 1, &[1]),
        8,
    );
    assert_eq!(status(&got), 0);
    assert!(
        r.core
            .device_mut()
            .backend_mut()
            .agent_state(1)
            .unwrap()
            .subscribed(NotifyKind::BaseErrors, 0)
    );
    // A device reset forgets the driver: no P2A, no subscriptions.
    r.core.set_status(0).unwrap();
    assert!(!r.device().p2a());
    let s = r.core.device_mut().backend_mut();
    assert!(
        !s.agent_state(1)
            .unwrap()
            .subscribed(NotifyKind::BaseErrors, 0)
    );
    let mut resp = [0u8; 16];
    let req = request(base::ID, base::NOTIFY_ERRORS, 2, &[1]);
    assert_eq!(s.handle(1, &req, &mut resp), Handled::Response(8));
    assert_eq!(status(&resp), Status::NotSupported.code());
}

#[test]
fn reset_drops_waiting_events_and_p2a() {
    let m = mem();
    let mut r = rig(&m, Scripted::new(), 1, Options::default(), LINUX, 16);
    r.post(Layout::Two, &request(base::ID, 0, 1, &[]), 12);
    let _ = r.kick(CMDQ);
    assert_eq!(r.device().backend().outbox.len(), 1);
    r.core.set_status(0).unwrap();
    let b = r.device().backend();
    assert_eq!(b.forgotten, 1);
    assert!(!b.p2a[1]);
    assert!(b.outbox.is_empty());
    assert!(!r.device().p2a());
}

#[test]
fn p2a_offer_can_be_withdrawn() {
    let m = mem();
    let opts = Options {
        p2a: false,
        ..Options::default()
    };
    // The driver cannot accept what was not offered.
    let mut core = DeviceCore::<_, 2>::new(VirtioScmi::with_options(server(), 1, opts));
    core.set_status(ACKNOWLEDGE | DRIVER).unwrap();
    core.set_driver_feature_block(0, LINUX as u32).unwrap();
    core.set_driver_feature_block(1, (LINUX >> 32) as u32)
        .unwrap();
    assert_eq!(
        core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK),
        Err(ControlError::FeaturesRefused)
    );
    // Without it the cmdq alone works.
    let mut r = rig(&m, server(), 1, opts, VERSION_1, 16);
    let got = r.call(Layout::Two, &request(base::ID, 0, 5, &[]), 12);
    assert_eq!(status(&got), 0);
    assert_eq!(r.core.queue_info(EVENTQ).max_size, 0);
}

// ---- agents ----

#[test]
fn each_device_is_one_agent_of_a_shared_server() {
    let shared = RefCell::new(server());
    let m1 = mem();
    let m2 = mem();
    let m3 = mem();
    let mut a = rig(&m1, &shared, 1, Options::default(), LINUX, 16);
    let mut b = rig(&m2, &shared, 2, Options::default(), LINUX, 16);
    let mut ghost = rig(&m3, &shared, 3, Options::default(), LINUX, 16);
    let who = request(base::ID, base::DISCOVER_AGENT, 4, &[u32::MAX]);
    let got = a.call(Layout::Two, &who, 28);
    assert_eq!(got[8..12], 1u32.to_le_bytes());
    assert_eq!(&got[12..24], b"linux-guest\0");
    let got = b.call(Layout::Two, &who, 28);
    assert_eq!(got[8..12], 2u32.to_le_bytes());
    assert_eq!(&got[12..17], b"rtos\0");
    // An agent the configuration does not have is denied everything.
    let got = ghost.call(Layout::Two, &who, 28);
    assert_eq!(status(&got), Status::Denied.code());
    // The untrusted agent may not change permissions; the trusted one may.
    let set = request(base::ID, base::RESET_AGENT_CONFIGURATION, 5, &[1, 0]);
    assert_eq!(status(&b.call(Layout::Two, &set, 8)), Status::Denied.code());
    assert_eq!(status(&a.call(Layout::Two, &set, 8)), 0);
    // Resetting one device forgets only its agent.
    let sub = request(base::ID, base::NOTIFY_ERRORS, 6, &[1]);
    assert_eq!(status(&a.call(Layout::Two, &sub, 8)), 0);
    assert_eq!(status(&b.call(Layout::Two, &sub, 8)), 0);
    b.core.set_status(0).unwrap();
    let s = shared.borrow_mut();
    assert!(
        s.agent_state(1)
            .unwrap()
            .subscribed(NotifyKind::BaseErrors, 0)
    );
    assert!(
        !s.agent_state(2)
            .unwrap()
            .subscribed(NotifyKind::BaseErrors, 0)
    );
}

#[test]
fn reply_never_exceeds_the_largest_message() {
    // Whatever the writable space, the response buffer handed to the
    // server is at most 136 bytes: LIST_PROTOCOLS fills at most that.
    let m = mem();
    let mut reference = server();
    reference.set_p2a(1, true);
    let mut r = rig(&m, server(), 1, Options::default(), LINUX, 16);
    let req = request(base::ID, base::DISCOVER_LIST_PROTOCOLS, 8, &[0]);
    let want = expected(&mut reference, 1, &req, MAX_MESSAGE);
    let got = r.call(Layout::Many, &req, 1000);
    assert_eq!(got, want);
    assert!(got.len() <= MAX_MESSAGE);
}
