//! The daemon's back-end driven by a vhost-user front-end (the `vhost`
//! crate's `Frontend`, as QEMU would drive it): guest memory in a memfd,
//! split rings built by `virtio-backend`'s mock driver inside it, SCMI
//! requests on the cmdq, a delayed response on the eventq, kicks and calls
//! through eventfds; then a ring stop/restart on the same connection (a
//! guest reboot), a disconnect and a new front-end on the same socket.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use platform_host_vhost_user as builtin;
use platform_host_vhost_user::ids::sensor as ids;
use scmi_server::Server;
use transport_vhost_user::device::VHOST_USER_F_PROTOCOL_FEATURES;
use transport_vhost_user::{MemoryTable, RegionDesc, ServeOptions, VhostUserDevice, serve, sys};
use vhost::vhost_user::message::{
    VhostUserConfigFlags, VhostUserHeaderFlag, VhostUserProtocolFeatures,
};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_backend::GuestMemory;
use virtio_backend::mock::MockSplitQueue;
use virtio_backend::spec::features;
use virtio_scmi::{F_P2A_CHANNELS, Options, VirtioScmi};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

type Scmi = VirtioScmi<Server<builtin::Platform, 8, 32>>;

const QSIZE: u16 = 16;

/// The daemon's loop on a thread, with a clock the test sets.
struct Daemon {
    path: PathBuf,
    stop: EventFd,
    clock: Arc<AtomicU64>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Daemon {
    /// A daemon whose platform time moves on a 2 ms tick.
    fn start(name: &str) -> Daemon {
        Daemon::with_tick(name, Some(Duration::from_millis(2)))
    }

    fn with_tick(name: &str, tick: Option<Duration>) -> Daemon {
        let path =
            std::env::temp_dir().join(format!("vhost-user-{name}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let stop = EventFd::new(EFD_NONBLOCK).unwrap();
        let stop_fd = stop.as_raw_fd();
        let clock = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&clock);
        let thread = std::thread::spawn(move || {
            let server: Server<builtin::Platform, 8, 32> =
                Server::new(&builtin::CONFIG, builtin::PLATFORM);
            let opts = Options {
                p2a: true,
                ring_features: features::INDIRECT_DESC | features::EVENT_IDX,
                cmdq_size: 1024,
                eventq_size: 1024,
            };
            let dev = Arc::new(Mutex::new(VhostUserDevice::<Scmi, 2>::new(
                VirtioScmi::with_options(server, 1, opts),
            )));
            let serve_opts = ServeOptions {
                tick,
                stop: Some(stop_fd),
            };
            let mut clock = || c.load(Ordering::SeqCst);
            serve(&listener, &dev, &serve_opts, &mut clock)
        });
        Daemon {
            path,
            stop,
            clock,
            thread: Some(thread),
        }
    }

    /// Sets the platform's time and waits until a tick has applied it.
    fn set_time(&self, ms: u64) {
        self.clock.store(ms, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
    }

    fn stop(mut self) {
        self.stop.write(1).unwrap();
        let r = self.thread.take().unwrap().join().unwrap();
        assert!(r.is_ok(), "serve ended with {r:?}");
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Guest memory: a memfd the test maps too (through the crate's own
/// memory table, so the test needs no `unsafe` of its own beyond the
/// memfd).
struct Guest {
    file: File,
    region: RegionDesc,
    view: MemoryTable,
}

impl Guest {
    fn new(gpa: u64, size: u64, user_addr: u64) -> Guest {
        // SAFETY: a valid C string; the descriptor returned is owned by the
        // File below and by nothing else.
        let fd = unsafe { libc::memfd_create(c"guest-ram".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: `fd` is fresh and owned by nobody else.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(size).unwrap();
        let region = RegionDesc {
            guest_phys_addr: gpa,
            size,
            // The front-end's own virtual address: opaque to the back-end,
            // which only uses it to translate ring addresses.
            user_addr,
            mmap_offset: 0,
        };
        let view = MemoryTable::map(&[region], &[file.try_clone().unwrap()]).unwrap();
        Guest { file, region, view }
    }

    fn mem(&self) -> &impl GuestMemory {
        self.view.guest()
    }

    fn info(&self) -> VhostUserMemoryRegionInfo {
        VhostUserMemoryRegionInfo {
            guest_phys_addr: self.region.guest_phys_addr,
            memory_size: self.region.size,
            userspace_addr: self.region.user_addr,
            mmap_offset: 0,
            mmap_handle: self.file.as_raw_fd(),
        }
    }

    /// The front-end's virtual address of guest physical `gpa`.
    fn ua(&self, gpa: u64) -> u64 {
        gpa - self.region.guest_phys_addr + self.region.user_addr
    }
}

struct Ring {
    kick: EventFd,
    call: EventFd,
}

fn ring_config(g: &Guest, addrs: (u64, u64, u64)) -> VringConfigData {
    VringConfigData {
        queue_max_size: QSIZE,
        queue_size: QSIZE,
        flags: 0,
        desc_table_addr: g.ua(addrs.0),
        avail_ring_addr: g.ua(addrs.1),
        used_ring_addr: g.ua(addrs.2),
        log_addr: None,
    }
}

/// Everything QEMU's vhost_dev_start sends for one queue.
fn start_ring(fe: &mut Frontend, g: &Guest, q: usize, addrs: (u64, u64, u64), base: u16) -> Ring {
    let ring = Ring {
        kick: EventFd::new(EFD_NONBLOCK).unwrap(),
        call: EventFd::new(EFD_NONBLOCK).unwrap(),
    };
    fe.set_vring_num(q, QSIZE).unwrap();
    fe.set_vring_base(q, base).unwrap();
    fe.set_vring_addr(q, &ring_config(g, addrs)).unwrap();
    fe.set_vring_kick(q, &ring.kick).unwrap();
    fe.set_vring_call(q, &ring.call).unwrap();
    fe.set_vring_enable(q, true).unwrap();
    ring
}

/// Connects and negotiates like QEMU's vhost_user_backend_init.
fn connect(d: &Daemon) -> Frontend {
    let mut fe = Frontend::connect(&d.path, 2).unwrap();
    fe.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
    fe.set_owner().unwrap();
    let offered = fe.get_features().unwrap();
    for f in [
        features::VERSION_1,
        features::INDIRECT_DESC,
        features::EVENT_IDX,
        F_P2A_CHANNELS,
        VHOST_USER_F_PROTOCOL_FEATURES,
    ] {
        assert_ne!(offered & f, 0, "feature {f:#x} offered");
    }
    assert_eq!(
        offered & features::RING_PACKED,
        0,
        "QEMU's scmi device has no packed rings"
    );
    let pf = fe.get_protocol_features().unwrap();
    let want = VhostUserProtocolFeatures::REPLY_ACK
        | VhostUserProtocolFeatures::MQ
        | VhostUserProtocolFeatures::CONFIG
        | VhostUserProtocolFeatures::RESET_DEVICE;
    assert!(pf.contains(want), "protocol features {pf:?}");
    fe.set_protocol_features(want).unwrap();
    assert_eq!(fe.get_queue_num().unwrap(), 2);
    fe
}

fn header(protocol: u8, msg: u8, token: u16) -> u32 {
    u32::from(msg) | (u32::from(protocol) << 10) | (u32::from(token) << 18)
}

fn words(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Waits (bounded) for an eventfd to be signalled and clears it.
fn wait(e: &EventFd) {
    let ep = sys::Epoll::new().unwrap();
    sys::watch(&ep, e.as_raw_fd(), 0, false).unwrap();
    let mut ev = [sys::EpollEvent::default()];
    let n = sys::wait(&ep, Some(Duration::from_secs(5)), &mut ev).unwrap();
    assert_eq!(n, 1, "no notification within 5 s");
    e.read().unwrap();
}

const REQ: u64 = 0x4001_0000;
const RESP: u64 = 0x4001_1000;
const EVT: u64 = 0x4001_2000;

/// One SCMI command through the cmdq: request and response buffers, kick,
/// wait for the call, read the reply.
fn command(
    g: &Guest,
    q: &mut MockSplitQueue<'_, impl GuestMemory>,
    ring: &Ring,
    event_idx: bool,
    msg: &[u32],
    resp_len: u32,
) -> Vec<u32> {
    let req: Vec<u8> = msg.iter().flat_map(|w| w.to_le_bytes()).collect();
    g.mem().write(REQ, &req).unwrap();
    if event_idx {
        // virtio v1.2 §2.7.10: notify me when the used index passes the
        // one I have seen.
        q.set_used_event(q.used_idx());
    }
    q.add_chain(&[(REQ, req.len() as u32, false), (RESP, resp_len, true)]);
    ring.kick.write(1).unwrap();
    wait(&ring.call);
    let (_, len) = q.pop_used().expect("a used entry");
    let mut out = vec![0u8; len as usize];
    g.mem().read(RESP, &mut out).unwrap();
    words(&out)
}

fn i64_at(w: &[u32], i: usize) -> i64 {
    (u64::from(w[i]) | (u64::from(w[i + 1]) << 32)) as i64
}

/// Base PROTOCOL_VERSION: Base 2.1 (SCMI v3.2 §4.2.2.1).
fn base_version(
    g: &Guest,
    q: &mut MockSplitQueue<'_, impl GuestMemory>,
    r: &Ring,
    ei: bool,
    token: u16,
) {
    let h = header(0x10, 0x0, token);
    assert_eq!(command(g, q, r, ei, &[h], 8 + 4), [h, 0, 0x0002_0001]);
}

#[test]
fn serves_scmi_over_vhost_user_and_survives_reconnects() {
    let d = Daemon::start("serve");

    // ---- First front-end: no EVENT_IDX. ----
    let g = Guest::new(0x4000_0000, 1 << 20, 0x7f55_0000_0000);
    let mut fe = connect(&d);
    let negotiated = features::VERSION_1 | F_P2A_CHANNELS | VHOST_USER_F_PROTOCOL_FEATURES;
    fe.set_features(negotiated).unwrap();
    fe.set_mem_table(&[g.info()]).unwrap();
    let mut cmdq = MockSplitQueue::new(g.mem(), 0x4000_0000, QSIZE);
    let mut evq = MockSplitQueue::new(g.mem(), 0x4000_4000, QSIZE);
    let cmd = start_ring(&mut fe, &g, 0, cmdq.addresses(), 0);
    let evt = start_ring(&mut fe, &g, 1, evq.addresses(), 0);

    base_version(&g, &mut cmdq, &cmd, false, 1);

    // A synchronous sensor reading at a known platform time.
    d.set_time(12_345);
    let h = header(0x15, 0x6, 2);
    let r = command(&g, &mut cmdq, &cmd, false, &[h, ids::DDR_TEMP, 0], 8 + 16);
    assert_eq!(&r[..2], [h, 0]);
    assert_eq!(
        Some(i64_at(&r, 2)),
        builtin::TABLES.sensor.value_at(ids::DDR_TEMP, 0, 12_345)
    );

    // An asynchronous one: immediate reply, then the delayed response
    // (SCMI v3.2 §4.7.3.1) on the eventq.
    evq.add_chain(&[(EVT, 136, true)]);
    evt.kick.write(1).unwrap();
    d.set_time(20_000);
    let h = header(0x15, 0x6, 3);
    assert_eq!(
        command(&g, &mut cmdq, &cmd, false, &[h, ids::DDR_TEMP, 1], 8),
        [h, 0]
    );
    wait(&evt.call);
    let (_, len) = evq.pop_used().expect("delayed response");
    let mut ev = vec![0u8; len as usize];
    g.mem().read(EVT, &mut ev).unwrap();
    let ev = words(&ev);
    assert_eq!(
        ev[0],
        h | (2 << 8),
        "delayed response header echoes the token"
    );
    assert_eq!(&ev[1..3], [0, ids::DDR_TEMP]);
    assert_eq!(
        Some(i64_at(&ev, 3)),
        builtin::TABLES.sensor.value_at(ids::DDR_TEMP, 0, 20_000)
    );

    // ---- Guest reboot on the same connection: stop, restart at the base. ----
    assert_eq!(fe.get_vring_base(0).unwrap(), 3, "three commands consumed");
    assert_eq!(
        fe.get_vring_base(1).unwrap(),
        1,
        "one eventq buffer consumed"
    );
    // A kick while stopped is not served.
    h_unserved(&g, &mut cmdq, &cmd);
    fe.set_features(negotiated).unwrap();
    let cmd = start_ring(&mut fe, &g, 0, cmdq.addresses(), 3);
    let _evt = start_ring(&mut fe, &g, 1, evq.addresses(), 1);
    // The chain made available while stopped is served at the restart.
    wait(&cmd.call);
    let (_, len) = cmdq.pop_used().expect("served after restart");
    let mut out = vec![0u8; len as usize];
    g.mem().read(RESP, &mut out).unwrap();
    assert_eq!(words(&out), [header(0x10, 0, 4), 0, 0x0002_0001]);
    base_version(&g, &mut cmdq, &cmd, false, 5);

    // Refused requests are acknowledged as failures; the connection stays.
    let small = Guest::new(0x8000_0000, 4096, 0x7f66_0000_0000);
    let mut bad = small.info();
    bad.memory_size = 1 << 20; // larger than the file
    assert!(fe.set_mem_table(&[bad]).is_err());
    assert!(fe.set_vring_num(0, 2048).is_err());
    assert!(fe.set_vring_num(5, 16).is_err());
    base_version(&g, &mut cmdq, &cmd, false, 6);

    // ---- QEMU exits: the daemon resets and serves the next one. ----
    drop(fe);
    let g2 = Guest::new(0x4000_0000, 2 << 20, 0x7f77_0000_0000);
    let mut fe = connect(&d);
    fe.set_features(negotiated | features::EVENT_IDX).unwrap();
    fe.set_mem_table(&[g2.info()]).unwrap();
    let mut cmdq = MockSplitQueue::new(g2.mem(), 0x4010_0000, QSIZE);
    let evq = MockSplitQueue::new(g2.mem(), 0x4010_4000, QSIZE);
    let cmd = start_ring(&mut fe, &g2, 0, cmdq.addresses(), 0);
    let _evt = start_ring(&mut fe, &g2, 1, evq.addresses(), 0);
    for token in 10..20 {
        base_version(&g2, &mut cmdq, &cmd, true, token);
    }
    d.set_time(33_000);
    let h = header(0x15, 0x6, 21);
    let r = command(
        &g2,
        &mut cmdq,
        &cmd,
        true,
        &[h, ids::CPU_LITTLE_TEMP, 0],
        8 + 16,
    );
    assert_eq!(&r[..2], [h, 0]);
    assert_eq!(
        Some(i64_at(&r, 2)),
        builtin::TABLES
            .sensor
            .value_at(ids::CPU_LITTLE_TEMP, 0, 33_000)
    );
    drop(fe);

    d.stop();
}

/// Without a tick no timer runs; the platform's time is brought up to date
/// right before each kick is served, so a reading is at the time of the
/// request.
#[test]
fn without_a_tick_time_passes_when_requests_come() {
    let d = Daemon::with_tick("ondemand", None);
    let g = Guest::new(0x4000_0000, 1 << 20, 0x7f55_0000_0000);
    let mut fe = connect(&d);
    fe.set_features(features::VERSION_1 | VHOST_USER_F_PROTOCOL_FEATURES)
        .unwrap();
    fe.set_mem_table(&[g.info()]).unwrap();
    let mut cmdq = MockSplitQueue::new(g.mem(), 0x4000_0000, QSIZE);
    let cmd = start_ring(&mut fe, &g, 0, cmdq.addresses(), 0);
    for (token, ms) in [(1u16, 7_000u64), (2, 7_001), (3, 90_210)] {
        // No waiting for a tick: the request itself moves the time.
        d.clock.store(ms, Ordering::SeqCst);
        let h = header(0x15, 0x6, token);
        let r = command(&g, &mut cmdq, &cmd, false, &[h, ids::DDR_TEMP, 0], 8 + 16);
        assert_eq!(&r[..2], [h, 0]);
        assert_eq!(
            Some(i64_at(&r, 2)),
            builtin::TABLES.sensor.value_at(ids::DDR_TEMP, 0, ms),
            "at {ms} ms"
        );
    }
    drop(fe);
    d.stop();
}

/// Makes a request available and kicks while the ring is stopped: nothing
/// may be used.
fn h_unserved(g: &Guest, q: &mut MockSplitQueue<'_, impl GuestMemory>, ring: &Ring) {
    let h = header(0x10, 0, 4);
    g.mem().write(REQ, &h.to_le_bytes()).unwrap();
    let used = q.used_idx();
    q.add_chain(&[(REQ, 4, false), (RESP, 12, true)]);
    ring.kick.write(1).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(q.used_idx(), used, "a stopped ring is not served");
}

/// One vhost-user message on a raw socket (vhost-user spec, "Message
/// specification": u32 request, u32 flags with version 1, u32 size, then
/// the body); returns the reply's header words and body.
fn raw_exchange(s: &mut UnixStream, request: u32, body: &[u8]) -> ([u32; 3], Vec<u8>) {
    let mut msg = Vec::new();
    for w in [request, 1, body.len() as u32] {
        msg.extend_from_slice(&w.to_le_bytes());
    }
    msg.extend_from_slice(body);
    s.write_all(&msg).unwrap();
    let mut hdr = [0u8; 12];
    s.read_exact(&mut hdr).unwrap();
    let w = words(&hdr);
    let mut reply = vec![0u8; w[2] as usize];
    s.read_exact(&mut reply).unwrap();
    ([w[0], w[1], w[2]], reply)
}

/// virtio-scmi has no configuration space (virtio v1.2 §5.17.4): with
/// `CONFIG` negotiated, a read is answered with the zero-length payload
/// that marks a failed `GET_CONFIG`, a write is acknowledged as failed, and
/// the connection goes on (vhost-user spec, "Front-end message types").
/// The reads go over a raw socket: the `vhost` crate's own front-end waits
/// for the full payload and so cannot take the spec's error reply.
#[test]
fn config_space_is_empty_and_refusals_keep_the_connection() {
    const GET_FEATURES: u32 = 1;
    const SET_PROTOCOL_FEATURES: u32 = 16;
    const GET_QUEUE_NUM: u32 = 17;
    const GET_CONFIG: u32 = 24;
    const REPLY: u32 = 1 << 2;
    let d = Daemon::start("config");
    let mut s = UnixStream::connect(&d.path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (h, b) = raw_exchange(&mut s, GET_FEATURES, &[]);
    assert_eq!((h[0], h[1] & REPLY, b.len()), (GET_FEATURES, REPLY, 8));
    let offered = u64::from_le_bytes(b[..8].try_into().unwrap());
    assert_ne!(offered & VHOST_USER_F_PROTOCOL_FEATURES, 0);
    let pf = (VhostUserProtocolFeatures::CONFIG | VhostUserProtocolFeatures::MQ).bits();
    let mut msg = Vec::new();
    msg.extend_from_slice(&pf.to_le_bytes());
    for w in [SET_PROTOCOL_FEATURES, 1, 8] {
        s.write_all(&w.to_le_bytes()).unwrap();
    }
    s.write_all(&msg).unwrap();
    for (offset, size) in [(0u32, 4u32), (0, 1), (8, 8), (0x100, 4)] {
        let mut body = Vec::new();
        for w in [offset, size, VhostUserConfigFlags::WRITABLE.bits()] {
            body.extend_from_slice(&w.to_le_bytes());
        }
        body.resize(12 + size as usize, 0);
        let (h, b) = raw_exchange(&mut s, GET_CONFIG, &body);
        assert_eq!((h[0], h[1] & REPLY), (GET_CONFIG, REPLY));
        // The error reply: the config header alone, its size field 0.
        assert_eq!(b.len(), 12, "GET_CONFIG {size} bytes at {offset}: {b:?}");
        assert_eq!(words(&b)[..2], [offset, 0]);
    }
    let (h, b) = raw_exchange(&mut s, GET_QUEUE_NUM, &[]);
    assert_eq!((h[0], b), (GET_QUEUE_NUM, 2u64.to_le_bytes().to_vec()));
    drop(s);
    // A write, through the crate's front-end with REPLY_ACK: a failed ack,
    // and the connection goes on.
    let mut fe = connect(&d);
    assert!(
        fe.set_config(0, VhostUserConfigFlags::WRITABLE, &[1, 2, 3, 4])
            .is_err(),
        "SET_CONFIG refused"
    );
    assert_eq!(fe.get_queue_num().unwrap(), 2);
    drop(fe);
    d.stop();
}

/// A local front-end that stops in the middle of a message (here: half a
/// header, then a header whose body never comes) is dropped after
/// `MESSAGE_TIMEOUT` instead of holding the loop, and the front-end queued
/// behind it is served.
#[test]
fn front_end_stalled_mid_message_is_dropped_and_the_next_served() {
    const SET_FEATURES: u32 = 2;
    let d = Daemon::start("stall");
    let mut partial: Vec<Vec<u8>> = Vec::new();
    partial.push(
        SET_FEATURES
            .to_le_bytes()
            .iter()
            .chain(&[1, 0])
            .copied()
            .collect(),
    );
    let mut hdr = Vec::new();
    for w in [SET_FEATURES, 1, 8] {
        hdr.extend_from_slice(&w.to_le_bytes());
    }
    hdr.extend_from_slice(&[0, 0, 0]);
    partial.push(hdr);
    for bytes in partial {
        let mut s = UnixStream::connect(&d.path).unwrap();
        s.write_all(&bytes).unwrap();
        // The next front-end waits in the listener's backlog meanwhile.
        let next = std::thread::spawn({
            let path = d.path.clone();
            move || {
                let fe = Frontend::connect(&path, 2).unwrap();
                fe.get_features().unwrap()
            }
        });
        // Dropped: the daemon closes its end within the timeout (the read
        // timeout only keeps a broken daemon from hanging the test).
        s.set_read_timeout(Some(transport_vhost_user::server::MESSAGE_TIMEOUT * 10))
            .unwrap();
        // Closing a socket with unread data resets the connection.
        let mut buf = [0u8; 1];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            r => panic!("connection not closed by the daemon: {r:?}"),
        }
        let offered = next.join().unwrap();
        assert_ne!(offered & features::VERSION_1, 0);
    }
    d.stop();
}

/// A local front-end that keeps sending requests but never reads the
/// replies is dropped before the daemon's sends would block, and the
/// front-end queued behind it is served.
#[test]
fn front_end_that_reads_no_replies_is_dropped_and_the_next_served() {
    const GET_FEATURES: u32 = 1;
    let d = Daemon::start("deaf");
    let mut s = UnixStream::connect(&d.path).unwrap();
    let mut msg = Vec::new();
    for w in [GET_FEATURES, 1, 0] {
        msg.extend_from_slice(&w.to_le_bytes());
    }
    // Far more replies than any send buffer holds (each is a few hundred
    // bytes of kernel memory): without the check the daemon would block in
    // its send. Stop writing once the daemon has closed its end.
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sent = 0;
    for _ in 0..20_000 {
        if s.write_all(&msg).is_err() {
            break;
        }
        sent += 1;
    }
    assert!(sent > 100, "only {sent} requests went out");
    // The next front-end is served; a daemon stuck in a send would leave it
    // waiting forever, so wait for it on a channel with a bound.
    let (tx, rx) = std::sync::mpsc::channel();
    let path = d.path.clone();
    std::thread::spawn(move || {
        let fe = Frontend::connect(&path, 2).unwrap();
        let _ = tx.send(fe.get_features().unwrap());
    });
    let offered = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the next front-end was not served");
    assert_ne!(offered & features::VERSION_1, 0);
    drop(s);
    d.stop();
}

#[test]
fn refuses_rings_outside_guest_memory() {
    let d = Daemon::start("refuse");
    let g = Guest::new(0x4000_0000, 1 << 16, 0x7f55_0000_0000);
    let fe = connect(&d);
    fe.set_features(features::VERSION_1 | VHOST_USER_F_PROTOCOL_FEATURES)
        .unwrap();
    fe.set_mem_table(&[g.info()]).unwrap();
    let kick = EventFd::new(EFD_NONBLOCK).unwrap();
    fe.set_vring_num(0, QSIZE).unwrap();
    fe.set_vring_base(0, 0).unwrap();
    // The used ring's front-end address is in no region.
    let mut cfg = ring_config(&g, (0x4000_0000, 0x4000_0100, 0x4000_0200));
    cfg.used_ring_addr = 0x1234_0000;
    fe.set_vring_addr(0, &cfg).unwrap();
    assert!(fe.set_vring_kick(0, &kick).is_err(), "start refused");
    // In a region, but the ring runs past its end.
    let cfg = ring_config(&g, (0x4000_0000, 0x4000_0100, 0x4000_fff0));
    fe.set_vring_addr(0, &cfg).unwrap();
    assert!(fe.set_vring_kick(0, &kick).is_err(), "start refused");
    // A good one still starts.
    let cfg = ring_config(&g, (0x4000_0000, 0x4000_0100, 0x4000_0200));
    fe.set_vring_addr(0, &cfg).unwrap();
    fe.set_vring_kick(0, &kick).unwrap();
    // A misaligned descriptor table (virtio v1.2 §2.7: 16-byte alignment)
    // is a malformed message to the `vhost` crate, which sends no reply:
    // the daemon drops the connection rather than leave the front-end
    // waiting for one, and serves the next front-end.
    let cfg = ring_config(&g, (0x4000_0008, 0x4000_0200, 0x4000_0400));
    assert!(fe.set_vring_addr(1, &cfg).is_err());
    drop(fe);
    let fe = connect(&d);
    fe.set_features(features::VERSION_1 | VHOST_USER_F_PROTOCOL_FEATURES)
        .unwrap();
    drop(fe);
    d.stop();
}
