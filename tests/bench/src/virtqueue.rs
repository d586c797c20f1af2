//! The `virtqueue` benchmark: one request loop, three device-side
//! implementations, one ring.
//!
//! Per request the device pops a two-descriptor chain (16 device-readable
//! bytes, then 32 device-writable bytes), reads the 16 bytes, writes a
//! 32-byte response computed from them, and returns the chain with used
//! length 32. Split ring, 256 entries, `VERSION_1` only (no `EVENT_IDX`, no
//! indirect descriptors), no notifications.
//!
//! # One memory, two views
//!
//! A single anonymous mapping made by vm-memory ([`GuestMemoryMmap`], one
//! region at guest address 0) is also wrapped as our [`FixedWindow`] over the
//! very same host bytes with guest base 0. Both implementations therefore see
//! identical guest addresses *and* identical host addresses, alignment and
//! page layout; neither gets a friendlier memory map. The driver side is our
//! `MockSplitQueue` writing through the window, so the rings and buffers each
//! implementation is handed are byte-for-byte the same.
//!
//! # What is measured
//!
//! Only the device side: each implementation's batch loop is one
//! `#[inline(never)]` function with a distinctive name
//! ([`bench_ours_device_batch`], [`bench_vq_device_batch`],
//! [`bench_vqrw_device_batch`]) that pops until the ring is empty. The
//! driver refills 128 chains per batch (256 descriptors: the whole table) and
//! checks every completion outside those functions.

use virtio_backend::mock::MockSplitQueue;
use virtio_backend::spec::features;
use virtio_backend::{
    ChainError, FixedWindow, GuestMemory as _, Queue, QueueConfigError, QueueError,
};
use virtio_queue::{Queue as VqQueue, QueueT as _};
use vm_memory::{Bytes as _, GuestAddress, GuestMemoryMmap};

use crate::memory::{MEM_SIZE, Memory};

/// Queue size of the benchmarked ring.
pub const QUEUE_SIZE: u16 = 256;
/// Chains per driver refill: two descriptors each fill the table exactly.
pub const BATCH: u16 = QUEUE_SIZE / 2;
/// Device-readable bytes per request.
pub const REQ_LEN: usize = 16;
/// Device-writable bytes per request (and the used length).
pub const RESP_LEN: usize = 32;
/// Requests in the pre-measurement cross-check: several full batches and a
/// partial one.
pub const CHECK_REQUESTS: u64 = 4 * BATCH as u64 + 37;

/// Guest address of the ring (virtio-queue treats an available ring at
/// address 0 as "not configured", so the ring does not start at 0).
const RING_BASE: u64 = 0x1000;
/// Guest address of request buffer `i` is `REQ_BASE + 16 * i`.
const REQ_BASE: u64 = 0x1_0000;
/// Guest address of response buffer `i` is `RESP_BASE + 32 * i`.
const RESP_BASE: u64 = 0x2_0000;

const _: () =
    assert!(RING_BASE + MockSplitQueue::<'_, FixedWindow<'_>>::footprint(QUEUE_SIZE) <= REQ_BASE);
const _: () = assert!(REQ_BASE + (BATCH as u64) * REQ_LEN as u64 <= RESP_BASE);
const _: () = assert!(RESP_BASE + (BATCH as u64) * RESP_LEN as u64 <= MEM_SIZE as u64);

/// A device-side implementation under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// This project's `virtio-backend`: `pop_descriptor_chain`, `reader`,
    /// `writer`, `add_used`.
    Ours,
    /// rust-vmm `virtio-queue` 0.18, leanest correct use: walk the chain's
    /// two descriptors and copy with `read_slice`/`write_slice`.
    VirtioQueue,
    /// rust-vmm `virtio-queue` 0.18 through its own `Reader`/`Writer`, the
    /// API that matches ours in generality (copies across descriptors).
    VirtioQueueRw,
}

impl Impl {
    /// Every implementation, ours first.
    pub const ALL: [Impl; 3] = [Impl::Ours, Impl::VirtioQueue, Impl::VirtioQueueRw];

    /// Short name used on the worker command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Ours => "ours",
            Impl::VirtioQueue => "virtio-queue",
            Impl::VirtioQueueRw => "virtio-queue-rw",
        }
    }

    /// Parses [`Impl::name`].
    pub fn from_name(s: &str) -> Option<Impl> {
        Impl::ALL.into_iter().find(|i| i.name() == s)
    }

    /// What the results table calls it.
    pub fn label(self) -> &'static str {
        match self {
            Impl::Ours => "virtio-backend (ours)",
            Impl::VirtioQueue => "virtio-queue 0.18, descriptor walk",
            Impl::VirtioQueueRw => "virtio-queue 0.18, Reader/Writer",
        }
    }

    /// The name of the measured function, as it appears (mangled or
    /// demangled) in the symbol; callgrind's `--toggle-collect` pattern is
    /// `*<this>*`.
    pub fn measured_fn(self) -> &'static str {
        match self {
            Impl::Ours => "bench_ours_device_batch",
            Impl::VirtioQueue => "bench_vq_device_batch",
            Impl::VirtioQueueRw => "bench_vqrw_device_batch",
        }
    }
}

/// Why the device side failed. Only built on error paths.
#[derive(Debug)]
pub enum DeviceError {
    /// Our queue reported an error.
    Queue(QueueError),
    /// Our reader or writer reported an error.
    Chain(ChainError),
    /// virtio-queue reported an error.
    VirtioQueue(virtio_queue::Error),
    /// vm-memory refused an access.
    GuestMemory(vm_memory::GuestMemoryError),
    /// virtio-queue's `Reader`/`Writer` failed.
    Io(std::io::Error),
    /// The chain did not have the expected shape.
    Layout(&'static str),
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceError::Queue(e) => write!(f, "virtio-backend queue: {e:?}"),
            DeviceError::Chain(e) => write!(f, "virtio-backend chain: {e:?}"),
            DeviceError::VirtioQueue(e) => write!(f, "virtio-queue: {e}"),
            DeviceError::GuestMemory(e) => write!(f, "vm-memory: {e}"),
            DeviceError::Io(e) => write!(f, "virtio-queue reader/writer: {e}"),
            DeviceError::Layout(what) => write!(f, "unexpected chain layout: {what}"),
        }
    }
}

/// A copy of the whole region.
fn snapshot(mem: &Memory) -> Vec<u8> {
    let mut v = vec![0u8; MEM_SIZE];
    mem.window().read(0, &mut v).expect("inside the region");
    v
}

/// The request the driver puts in the `seq`-th chain.
fn request_payload(seq: u64) -> [u8; REQ_LEN] {
    let mut b = [0u8; REQ_LEN];
    b[..8].copy_from_slice(&seq.to_le_bytes());
    b[8..].copy_from_slice(&(!seq).rotate_left(13).to_le_bytes());
    b
}

/// The device's response to a request: the same trivial computation for
/// every implementation, so the written bytes prove the read happened.
#[inline(always)]
fn respond(req: &[u8; REQ_LEN]) -> [u8; RESP_LEN] {
    let mut r = [0u8; RESP_LEN];
    r[..REQ_LEN].copy_from_slice(req);
    for i in 0..REQ_LEN {
        r[REQ_LEN + i] = req[REQ_LEN - 1 - i] ^ 0xa5;
    }
    r
}

fn req_addr(slot: u16) -> u64 {
    REQ_BASE + u64::from(slot) * REQ_LEN as u64
}

fn resp_addr(slot: u16) -> u64 {
    RESP_BASE + u64::from(slot) * RESP_LEN as u64
}

/// One completed request as the driver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// `used.ring[].id`.
    pub id: u32,
    /// `used.ring[].len`.
    pub len: u32,
    /// The response buffer's contents after completion.
    pub response: [u8; RESP_LEN],
}

/// The driver: publishes batches and checks completions. Never measured.
struct Driver<'m> {
    mem: &'m FixedWindow<'m>,
    ring: MockSplitQueue<'m, FixedWindow<'m>>,
    seq: u64,
    heads: [u16; BATCH as usize],
    first_seq: u64,
}

impl<'m> Driver<'m> {
    fn new(mem: &'m FixedWindow<'m>) -> Self {
        Driver {
            mem,
            ring: MockSplitQueue::new(mem, RING_BASE, QUEUE_SIZE),
            seq: 0,
            heads: [0; BATCH as usize],
            first_seq: 0,
        }
    }

    /// Publishes `n` chains, each with a fresh request and a zeroed
    /// response buffer.
    fn refill(&mut self, n: u16) {
        self.first_seq = self.seq;
        for slot in 0..n {
            self.mem
                .write(req_addr(slot), &request_payload(self.seq))
                .expect("request buffer inside memory");
            self.mem
                .write(resp_addr(slot), &[0u8; RESP_LEN])
                .expect("response buffer inside memory");
            self.heads[usize::from(slot)] = self.ring.add_chain(&[
                (req_addr(slot), REQ_LEN as u32, false),
                (resp_addr(slot), RESP_LEN as u32, true),
            ]);
            self.seq += 1;
        }
    }

    /// Takes the `n` completions of the last batch, checks each against
    /// what the device must have done, and optionally records them.
    fn collect(&mut self, n: u16, mut record: Option<&mut Vec<Completion>>) -> Result<(), String> {
        for slot in 0..n {
            let seq = self.first_seq + u64::from(slot);
            let (id, len) = self
                .ring
                .pop_used()
                .ok_or_else(|| format!("request {seq}: no used entry"))?;
            let mut response = [0u8; RESP_LEN];
            self.mem
                .read(resp_addr(slot), &mut response)
                .expect("response buffer inside memory");
            let c = Completion { id, len, response };
            let want = Completion {
                id: u32::from(self.heads[usize::from(slot)]),
                len: RESP_LEN as u32,
                response: respond(&request_payload(seq)),
            };
            if c != want {
                return Err(format!(
                    "request {seq}: device completed {c:?}, expected {want:?}"
                ));
            }
            if let Some(r) = record.as_deref_mut() {
                r.push(c);
            }
        }
        if self.ring.pop_used().is_some() {
            return Err("device completed more chains than were published".into());
        }
        Ok(())
    }
}

/// Device state for one implementation.
enum Device {
    /// A split ring never uses the store of held packed lists, so it gets
    /// none.
    Ours(Queue<0>),
    Vq(VqQueue),
    VqRw(VqQueue),
}

impl Device {
    fn new(
        imp: Impl,
        addrs: (u64, u64, u64),
        window: &FixedWindow<'_>,
        gm: &GuestMemoryMmap,
    ) -> Result<Device, String> {
        let (desc, avail, used) = addrs;
        if imp == Impl::Ours {
            let mut q = Queue::<0>::with_store(QUEUE_SIZE);
            q.set_size(QUEUE_SIZE);
            q.set_desc_table_address(desc);
            q.set_avail_ring_address(avail);
            q.set_used_ring_address(used);
            q.enable(window, features::VERSION_1)
                .map_err(|e: QueueConfigError| format!("enabling our queue: {e:?}"))?;
            return Ok(Device::Ours(q));
        }
        let vq_err = |e: virtio_queue::Error| format!("configuring virtio-queue: {e}");
        let mut q = VqQueue::new(QUEUE_SIZE).map_err(vq_err)?;
        q.try_set_size(QUEUE_SIZE).map_err(vq_err)?;
        q.try_set_desc_table_address(GuestAddress(desc))
            .map_err(vq_err)?;
        q.try_set_avail_ring_address(GuestAddress(avail))
            .map_err(vq_err)?;
        q.try_set_used_ring_address(GuestAddress(used))
            .map_err(vq_err)?;
        // VERSION_1 only: no EVENT_IDX.
        q.set_event_idx(false);
        q.set_ready(true);
        if !q.is_valid(gm) {
            return Err("virtio-queue rejected the ring configuration".into());
        }
        Ok(if imp == Impl::VirtioQueue {
            Device::Vq(q)
        } else {
            Device::VqRw(q)
        })
    }

    fn batch(&mut self, window: &FixedWindow<'_>, gm: &GuestMemoryMmap) -> Result<u32, String> {
        match self {
            Device::Ours(q) => bench_ours_device_batch(q, window),
            Device::Vq(q) => bench_vq_device_batch(q, gm),
            Device::VqRw(q) => bench_vqrw_device_batch(q, gm),
        }
        .map_err(|e| format!("device side failed: {e}"))
    }
}

/// Measured: our device side, one batch (pop until the ring is empty).
#[inline(never)]
pub fn bench_ours_device_batch(
    q: &mut Queue<0>,
    mem: &FixedWindow<'_>,
) -> Result<u32, DeviceError> {
    let mut done = 0;
    while let Some(chain) = q.pop_descriptor_chain(mem).map_err(DeviceError::Queue)? {
        let mut req = [0u8; REQ_LEN];
        chain
            .reader(mem)
            .read_exact(&mut req)
            .map_err(DeviceError::Chain)?;
        let resp = respond(&req);
        let mut w = chain.writer(mem);
        w.write_all(&resp).map_err(DeviceError::Chain)?;
        let len = w.written();
        q.add_used(mem, chain, len).map_err(DeviceError::Queue)?;
        done += 1;
    }
    Ok(done)
}

/// Measured: virtio-queue, walking the chain's descriptors directly.
#[inline(never)]
pub fn bench_vq_device_batch(q: &mut VqQueue, mem: &GuestMemoryMmap) -> Result<u32, DeviceError> {
    let mut done = 0;
    while let Some(mut chain) = q.pop_descriptor_chain(mem) {
        let head = chain.head_index();
        let rd = chain
            .next()
            .filter(|d| !d.is_write_only() && d.len() as usize >= REQ_LEN)
            .ok_or(DeviceError::Layout("no readable request descriptor"))?;
        let mut req = [0u8; REQ_LEN];
        mem.read_slice(&mut req, rd.addr())
            .map_err(DeviceError::GuestMemory)?;
        let resp = respond(&req);
        let wd = chain
            .next()
            .filter(|d| d.is_write_only() && d.len() as usize >= RESP_LEN)
            .ok_or(DeviceError::Layout("no writable response descriptor"))?;
        mem.write_slice(&resp, wd.addr())
            .map_err(DeviceError::GuestMemory)?;
        q.add_used(mem, head, RESP_LEN as u32)
            .map_err(DeviceError::VirtioQueue)?;
        done += 1;
    }
    Ok(done)
}

/// Measured: virtio-queue through its `Reader`/`Writer`.
#[inline(never)]
pub fn bench_vqrw_device_batch(q: &mut VqQueue, mem: &GuestMemoryMmap) -> Result<u32, DeviceError> {
    use std::io::{Read as _, Write as _};
    let mut done = 0;
    while let Some(chain) = q.pop_descriptor_chain(mem) {
        let head = chain.head_index();
        let mut reader = chain
            .clone()
            .reader(mem)
            .map_err(DeviceError::VirtioQueue)?;
        let mut writer = chain.writer(mem).map_err(DeviceError::VirtioQueue)?;
        let mut req = [0u8; REQ_LEN];
        reader.read_exact(&mut req).map_err(DeviceError::Io)?;
        writer.write_all(&respond(&req)).map_err(DeviceError::Io)?;
        let len = writer.bytes_written() as u32;
        q.add_used(mem, head, len)
            .map_err(DeviceError::VirtioQueue)?;
        done += 1;
    }
    Ok(done)
}

/// Runs `requests` requests through `imp` on a freshly zeroed `mem`,
/// checking every completion; records them if asked.
pub fn run(
    mem: &Memory,
    imp: Impl,
    requests: u64,
    mut record: Option<&mut Vec<Completion>>,
) -> Result<(), String> {
    mem.clear();
    let window = mem.window();
    let gm = mem.guest_memory_mmap();
    let mut driver = Driver::new(&window);
    let mut device = Device::new(imp, driver.ring.addresses(), &window, gm)?;
    let mut left = requests;
    while left > 0 {
        let n = left.min(u64::from(BATCH)) as u16;
        driver.refill(n);
        let done = device.batch(&window, gm)?;
        if done != u32::from(n) {
            return Err(format!(
                "{}: device completed {done} of {n} published chains",
                imp.name()
            ));
        }
        driver.collect(n, record.as_deref_mut())?;
        left -= u64::from(n);
    }
    Ok(())
}

/// Runs [`CHECK_REQUESTS`] requests through every implementation on the
/// same memory and fails unless all produce the same used-ring entries, the
/// same response bytes, and the same memory image afterwards.
pub fn cross_check(mem: &Memory) -> Result<(), String> {
    let mut reference: Option<(Impl, Vec<Completion>, Vec<u8>)> = None;
    for imp in Impl::ALL {
        let mut completions = Vec::new();
        run(mem, imp, CHECK_REQUESTS, Some(&mut completions))
            .map_err(|e| format!("cross-check, {}: {e}", imp.name()))?;
        if completions.len() as u64 != CHECK_REQUESTS {
            return Err(format!(
                "cross-check, {}: {} completions",
                imp.name(),
                completions.len()
            ));
        }
        let image = snapshot(mem);
        match &reference {
            None => reference = Some((imp, completions, image)),
            Some((first, c0, m0)) => {
                if *c0 != completions {
                    return Err(format!(
                        "cross-check: {} and {} completed differently",
                        first.name(),
                        imp.name()
                    ));
                }
                if let Some(at) = m0.iter().zip(&image).position(|(a, b)| a != b) {
                    return Err(format!(
                        "cross-check: {} and {} left different memory (first difference at guest address {at:#x})",
                        first.name(),
                        imp.name()
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implementations_agree() {
        let mem = Memory::new().unwrap();
        cross_check(&mem).unwrap();
    }

    #[test]
    fn long_run_crosses_index_wrap() {
        let mem = Memory::new().unwrap();
        for imp in Impl::ALL {
            run(&mem, imp, 70_000, None).unwrap();
        }
    }

    #[test]
    fn names_round_trip() {
        for imp in Impl::ALL {
            assert_eq!(Impl::from_name(imp.name()), Some(imp));
        }
    }
}
