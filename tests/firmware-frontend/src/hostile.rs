//! A hostile front-end: garbage where the device expects messages, rings
//! it cannot use, and a queue head that lies. After each attack the
//! device must still answer, and where the virtio specification says so
//! (§2.1.2: a ring it cannot trust) it must report `DEVICE_NEEDS_RESET`;
//! at the end a well-behaved driver probes it again from scratch and finds
//! nothing of the attacks left.

use core::fmt::Write;

use scmi_agent::agent::{AgentOptions, ScmiAgent};
use scmi_agent::amp_driver::{AmpDriver, FRAME, Link};
use scmi_agent::probe::Prober;
use scmi_agent::tour::Outcome;
use virtio_backend::GuestMemory;
use virtio_backend::amp::Layout;
use virtio_backend::msg::{FeatureBlocks, Request, Response, Revision, vqueue};
use virtio_drivers::PAGE_SIZE;
use virtio_drivers::transport::{DeviceStatus, InterruptStatus, Transport};

use virtio_drivers::{BufferDirection, Hal};

use crate::{Checks, Clock, QUEUE, TIMEOUT};

/// `VIRTIO_F_VERSION_1`.
const VERSION_1: u64 = 1 << 32;
/// `DEVICE_NEEDS_RESET` (virtio v1.2 §2.1).
const NEEDS_RESET: u32 = 64;

/// A small deterministic generator (xorshift32): the same garbage every
/// run, so the output can be compared with a golden file.
struct Garbage(u32);

impl Garbage {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(4) {
            let w = self.next().to_le_bytes();
            c.copy_from_slice(&w[..c.len()]);
        }
    }
}

fn connect<M: GuestMemory, L: Link>(mem: M, channel: (u64, u64), link: L) -> AmpDriver<M, L> {
    match AmpDriver::connect(mem, channel.0, channel.1, link, Revision::V2, TIMEOUT) {
        Ok(d) => d,
        Err(e) => panic!("the device did not come up: {e:?}"),
    }
}

/// The device still answers a well-formed request (GET_DEVICE_INFO: the
/// SCMI device), whatever else it answered meanwhile.
fn alive<M: GuestMemory, L: Link>(d: &AmpDriver<M, L>) -> bool {
    let token = d.fresh_token();
    let mut f = [0u8; FRAME];
    let Ok(n) = Request::GetDeviceInfo.encode(d.dev_num(), token, &mut f) else {
        return false;
    };
    let (r, _) = d.call_expecting(&f[..n], token);
    matches!(
        Response::decode(&r, Revision::V2),
        Ok((_, Response::DeviceInfo { device_id: 32, .. }))
    )
}

/// Runs the attacks against the device whose channel lies at `channel`
/// (offset, length) of the shared memory `mem` (the driver's view, with
/// `H` its DMA memory); `fresh` is a second link for the driver that
/// starts over.
pub fn run<H: Hal, M: GuestMemory + Clone, L: Link, W: Write>(
    mem: M,
    channel: (u64, u64),
    link: L,
    fresh: L,
    clock: Clock,
    out: W,
) -> Outcome {
    let mut a = Checks {
        out,
        o: Outcome::default(),
    };
    let mut g = Garbage(0x5eed_1234);
    let mut d = connect(mem.clone(), channel, link);
    a.check(alive(&d), "the device answers before the attacks");
    d.set_lenient(true);

    // 1. Garbage messages: random bytes, random sizes, unknown message
    // ids, requests for device numbers and queues that do not exist. None
    // deserves an answer (virtio-msg has no error message); the device
    // must drop them and go on answering.
    let mut sent = 0;
    for round in 0..8u32 {
        for i in 0..8u32 {
            let mut f = [0u8; FRAME];
            g.fill(&mut f);
            match i {
                // A plausible header with a random message id.
                0 => f[..8].copy_from_slice(&[0, (round as u8) | 0x20, 0, 0, 1, 0, 8, 0]),
                // A size field that lies about the element.
                1 => f[6..8].copy_from_slice(&0xffffu16.to_le_bytes()),
                // EVENT_AVAIL for a queue that does not exist.
                2 => {
                    let n = Request::EventAvail {
                        vq_index: 99,
                        next_offset: 0,
                    }
                    .encode(d.dev_num(), 0, &mut f)
                    .unwrap_or(0);
                    f[n..].fill(0);
                }
                // A request for a device number nobody has.
                3 => {
                    let _ = Request::GetDeviceStatus.encode(7, 1, &mut f);
                }
                _ => {}
            }
            let len = match i {
                0 => 8,
                4 => 1 + (g.next() as usize % FRAME),
                _ => FRAME,
            };
            d.send(&f[..len]);
            sent += 1;
        }
        d.link().ring();
        a.check(alive(&d), "the device answers after garbage messages");
    }
    let _ = writeln!(
        a.out,
        "hostile: {sent} garbage messages sent; the device still answers ({} answered)",
        d.stray()
    );
    d.set_lenient(false);

    // 2. A ring the device cannot trust: valid queue addresses in the
    // window, but an available index far ahead of what the ring holds.
    // §2.1.2: the device sets DEVICE_NEEDS_RESET (and tells the driver
    // with a configuration change) instead of serving it.
    d.set_status(DeviceStatus::empty());
    d.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
    d.write_driver_features(VERSION_1);
    d.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK);
    let (pa, _) = H::dma_alloc(1, BufferDirection::Both);
    let size = QUEUE as u64;
    let (desc, avail, used) = (pa, pa + 16 * size, pa + PAGE_SIZE as u64 / 2);
    d.queue_set(0, QUEUE as u32, desc, avail, used);
    d.set_status(
        DeviceStatus::ACKNOWLEDGE
            | DeviceStatus::DRIVER
            | DeviceStatus::FEATURES_OK
            | DeviceStatus::DRIVER_OK,
    );
    let ring = mem.clone();
    // avail.idx (offset 2 of the available ring) far ahead of the size.
    let _ = ring.store_u16_release(avail + 2, 0x8000);
    d.notify(0);
    d.link().ring();
    let status = d.get_status().bits();
    a.check(
        status & NEEDS_RESET != 0,
        "DEVICE_NEEDS_RESET after an available index far ahead",
    );
    // The configuration change comes as an event, which may follow the
    // status response: wait for it.
    let start = (clock.now)();
    let told = loop {
        if d.ack_interrupt()
            .contains(InterruptStatus::DEVICE_CONFIGURATION_INTERRUPT)
        {
            break true;
        }
        if (clock.now)().saturating_sub(start) >= TIMEOUT {
            break false;
        }
        (clock.idle)();
    };
    a.check(told, "a configuration change tells the driver");
    let _ = writeln!(
        a.out,
        "hostile: corrupt available ring: device status {status:#x} (DEVICE_NEEDS_RESET {})",
        if status & NEEDS_RESET != 0 {
            "set"
        } else {
            "not set"
        }
    );
    // The driver echoing NEEDS_RESET back changes nothing; a reset clears it.
    d.set_status(DeviceStatus::empty());
    a.check(
        d.get_status().bits() == 0,
        "a reset clears DEVICE_NEEDS_RESET",
    );

    // 3. A SET_VQUEUE whose addresses lie outside the window, and feature
    // blocks that do not exist: refused or ignored, nothing touched.
    let bad = Request::SetVqueue {
        index: 0,
        flags: vqueue::ENABLE,
        size: QUEUE as u32,
        reserved: 0,
        desc: u64::MAX - 0xfff,
        driver: 1 << 40,
        device: 0x10_0000_0000,
    };
    let mut f = [0u8; FRAME];
    if let Ok(n) = bad.encode(d.dev_num(), 0x77, &mut f) {
        let (r, _) = d.call_expecting(&f[..n], 0x77);
        let ok = Response::decode(&r, Revision::V2).is_ok();
        a.check(ok, "SET_VQUEUE outside the window is answered");
    }
    let b = [0xffu8; 8];
    if let Some(features) = FeatureBlocks::from_le_bytes(&b) {
        let req = Request::SetDriverFeatures {
            block_index: 1000,
            features,
        };
        if let Ok(n) = req.encode(d.dev_num(), 0x78, &mut f) {
            let _ = d.call_expecting(&f[..n], 0x78);
        }
    }
    a.check(
        alive(&d),
        "the device answers after out-of-window queue addresses",
    );
    let _ = writeln!(a.out, "hostile: queue addresses outside the window refused");

    // 4. Chains the device cannot use, in a ring it can (virtio v1.2
    // §2.7.5, §2.7.6): a buffer outside the window, a descriptor that
    // chains to itself, a length of 2 GiB; then a good request. Each bad
    // chain comes back with used length 0 and the good one is answered:
    // the device answers what it can and the ring stays usable.
    let (used_len, status) = bad_chains::<H, _, _>(&mut d, &ring);
    a.check(
        used_len[..3] == [0, 0, 0],
        "unusable chains come back with used length 0",
    );
    a.check(used_len[3] == 12, "the good request after them is answered");
    a.check(
        status & NEEDS_RESET == 0,
        "bad chains alone do not need a reset",
    );
    let _ = writeln!(
        a.out,
        "hostile: bad chains: used lengths {:?}, device status {status:#x}",
        used_len
    );
    d.set_status(DeviceStatus::empty());

    // 5. Our queue head lies: a tail index beyond the element count. The
    // device must take us for corrupt (PEER_DEAD) and reset the device;
    // the driver then starts over with a fresh handshake.
    if let Ok(l) = Layout::read(&ring, channel.0, channel.1) {
        let _ = ring.store_u16_release(channel.0 + l.drv_qh + 4, 0xfff0);
    }
    d.link().ring();
    drop(d);
    let d = connect(mem.clone(), channel, fresh);
    a.check(alive(&d), "the device answers a driver that starts over");
    let _ = writeln!(
        a.out,
        "hostile: lying queue head: the device dropped the driver, a new handshake brought it back"
    );

    // 6. A well-behaved driver from scratch: the whole Linux probe, with
    // nothing of the attacks left.
    let opts = AgentOptions {
        patience: TIMEOUT,
        now: clock.now,
        idle: clock.idle,
        ..AgentOptions::default()
    };
    let mut agent: ScmiAgent<_, H, QUEUE, QUEUE> = ScmiAgent::new(d, opts);
    let p = Prober::run(&mut agent);
    a.check(p.complaints.is_empty(), "the Linux probe after the attacks");
    let _ = writeln!(
        a.out,
        "hostile: probe after the attacks: {} protocols, {} complaints",
        p.base.protocols.len(),
        p.complaints.len()
    );
    a.o
}

/// Where a descriptor points.
#[derive(Clone, Copy)]
enum At {
    /// The good request (BASE PROTOCOL_VERSION, 4 bytes).
    Request,
    /// Room for its reply (12 bytes).
    Reply,
    /// Anywhere.
    Addr(u64),
}

/// Descriptor flags (§2.7.5).
const NEXT: u16 = 1;
const WRITE: u16 = 2;

/// Four chains: a readable buffer outside the window, a descriptor
/// chained to itself, a 2 GiB readable buffer, and a good BASE
/// PROTOCOL_VERSION request (4 bytes out, 12 in). Returns the used length
/// of each (by head) and the device status.
fn bad_chains<H: Hal, M: GuestMemory, L: Link>(
    t: &mut AmpDriver<M, L>,
    ring: &M,
) -> ([u32; 4], u32) {
    chains::<H, _, _, 4>(
        t,
        ring,
        &[
            (At::Addr(0xffff_0000_0000), 16, 0, 0),
            (At::Request, 8, NEXT, 1),
            (At::Request, 0x8000_0000, 0, 0),
            (At::Request, 4, NEXT, 4),
            (At::Reply, 12, WRITE, 0),
        ],
        [0, 1, 2, 3],
    )
}

/// Chains whose buffers lie at `addrs` (three driver addresses the device
/// cannot reach: pages not granted, granted to someone else, read-only,
/// ...): for each, a request it cannot read, then a good request whose
/// reply it cannot write; last a good request. The used length of each
/// (the last is the good one) and the device status.
pub fn foreign_chains<H: Hal, M: GuestMemory, L: Link>(
    t: &mut AmpDriver<M, L>,
    ring: &M,
    addrs: [u64; 3],
) -> ([u32; 7], u32) {
    let mut d = [(At::Request, 0, 0, 0); 14];
    for (i, a) in addrs.into_iter().enumerate() {
        let k = 4 * i as u16;
        d[4 * i] = (At::Addr(a), 4, NEXT, k + 1);
        d[4 * i + 1] = (At::Reply, 12, WRITE, 0);
        d[4 * i + 2] = (At::Request, 4, NEXT, k + 3);
        d[4 * i + 3] = (At::Addr(a), 12, WRITE, 0);
    }
    d[12] = (At::Request, 4, NEXT, 13);
    d[13] = (At::Reply, 12, WRITE, 0);
    chains::<H, _, _, 7>(t, ring, &d, [0, 2, 4, 6, 8, 10, 12])
}

/// Sets the device up with a cmdq of [`QUEUE`] entries in a page of its
/// own, writes `descs` (where, length, flags, next) and makes `heads`
/// available; waits for them all to be used. The used length of each (by
/// head, in `heads`' order) and the device status.
fn chains<H: Hal, M: GuestMemory, L: Link, const N: usize>(
    t: &mut AmpDriver<M, L>,
    ring: &M,
    descs: &[(At, u32, u16, u16)],
    heads: [u16; N],
) -> ([u32; N], u32) {
    t.set_status(DeviceStatus::empty());
    t.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
    t.write_driver_features(VERSION_1);
    t.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK);
    let (pa, _) = H::dma_alloc(1, BufferDirection::Both);
    let q = QUEUE as u64;
    let (desc, avail, used) = (pa, pa + 16 * q, pa + 1024);
    let (request, reply) = (pa + 3072, pa + 3200);
    t.queue_set(0, QUEUE as u32, desc, avail, used);
    t.set_status(
        DeviceStatus::ACKNOWLEDGE
            | DeviceStatus::DRIVER
            | DeviceStatus::FEATURES_OK
            | DeviceStatus::DRIVER_OK,
    );
    for (i, &(at, len, flags, next)) in descs.iter().enumerate() {
        let addr = match at {
            At::Request => request,
            At::Reply => reply,
            At::Addr(a) => a,
        };
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..].copy_from_slice(&next.to_le_bytes());
        let _ = ring.write(desc + 16 * i as u64, &b);
    }
    // BASE PROTOCOL_VERSION, token 5: header only.
    let _ = ring.write(request, &(5u32 << 18 | 0x10 << 10).to_le_bytes());
    for (slot, head) in heads.iter().enumerate() {
        let _ = ring.write(avail + 4 + 2 * slot as u64, &head.to_le_bytes());
    }
    let _ = ring.store_u16_release(avail + 2, N as u16);
    t.notify(0);
    // Wait for every used entry.
    let start = t.link().now();
    while ring.load_u16_acquire(used + 2).unwrap_or(0) < N as u16
        && t.link().now().saturating_sub(start) < TIMEOUT
    {
        t.link().idle();
    }
    let mut lens = [u32::MAX; N];
    for i in 0..N as u64 {
        let mut e = [0u8; 8];
        if ring.read(used + 4 + 8 * i, &mut e).is_ok() {
            let id = u32::from_le_bytes([e[0], e[1], e[2], e[3]]) as u16;
            let len = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            if let Some(k) = heads.iter().position(|&h| h == id) {
                lens[k] = len;
            }
        }
    }
    let status = t.get_status().bits();
    (lens, status)
}
