//! A RAM-disk virtio-blk device (virtio v1.2 §5.2) built on
//! [`VirtioDevice`], for `virtio-drivers`' `VirtIOBlk` to drive.
//!
//! It serves `VIRTIO_BLK_T_IN`, `OUT`, `FLUSH` and `GET_ID` on one request
//! queue, reports its capacity in configuration space, and counts what it
//! saw: request types and bytes, chain shapes (how many elements, whether
//! the head descriptor was `VIRTQ_DESC_F_INDIRECT`), how many chains were in
//! flight at once, and how many completion batches the core had to decide a
//! notification for.
//!
//! Completions are either immediate (in the kick that delivered the chain)
//! or deferred: chains are kept until time passes on the device (the disk
//! "finishes its work", [`VirtioDevice::advance`]) and completed at the
//! poll that follows, in arrival order or in reverse, so many requests are
//! in flight at once and the used ring is out of order. Every service step
//! polls the device; only the passing of time makes it finish.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use virtio_backend::spec::{desc, features};
use virtio_backend::{DescriptorChain, GuestMemory, Queue, QueueError, VirtioDevice, Writer};

/// virtio device id of a block device.
pub const DEVICE_ID: u32 = 2;
/// Sector size: offsets in requests are in these units (§5.2.6).
pub const SECTOR: usize = 512;
/// The request queue.
pub const REQUEST_QUEUE: u16 = 0;
/// Device-specific configuration space size exposed (through `opt_io_size`,
/// the fields `virtio-drivers` declares).
pub const CONFIG_SIZE: u32 = 32;

/// Block feature bits (§5.2.3).
pub mod feature {
    /// Device is read-only.
    pub const RO: u64 = 1 << 5;
    /// Block size in `blk_size`.
    pub const BLK_SIZE: u64 = 1 << 6;
    /// Cache flush command.
    pub const FLUSH: u64 = 1 << 9;
}

/// Request types (§5.2.6).
pub mod req {
    /// Read.
    pub const IN: u32 = 0;
    /// Write.
    pub const OUT: u32 = 1;
    /// Flush.
    pub const FLUSH: u32 = 4;
    /// Device id string.
    pub const GET_ID: u32 = 8;
}

/// Request status byte values (§5.2.6).
pub mod status {
    /// Success.
    pub const OK: u8 = 0;
    /// Device or driver error.
    pub const IOERR: u8 = 1;
    /// Request unsupported.
    pub const UNSUPP: u8 = 2;
}

/// When requests are completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// In the kick that delivered them.
    Immediate,
    /// When the core is polled, oldest first.
    DeferredFifo,
    /// When the core is polled, newest first (an out-of-order used ring).
    DeferredReverse,
}

/// How the disk is built and what it offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlkOptions {
    /// Capacity in sectors.
    pub sectors: u64,
    /// Offer `VIRTIO_F_INDIRECT_DESC`.
    pub indirect: bool,
    /// Offer `VIRTIO_F_EVENT_IDX`.
    pub event_idx: bool,
    /// Offer `VIRTIO_BLK_F_RO` and refuse writes.
    pub read_only: bool,
    /// Offer `VIRTIO_BLK_F_FLUSH`.
    pub flush: bool,
    /// Largest queue size.
    pub queue_size: u16,
    /// When requests are completed.
    pub completion: Completion,
    /// Offer `VIRTIO_F_RING_RESET` (per-queue reset).
    pub ring_reset: bool,
}

/// A rendezvous that holds a device thread inside the window between
/// "the ring is empty" and "kicks are enabled again" until the driver has
/// added a buffer there.
///
/// A buffer added in that window is not kicked (the driver sees kicks
/// suppressed); the device only finds it by re-checking the ring after
/// re-enabling kicks (`Queue::enable_notification`'s answer). The
/// rendezvous makes that race happen every time instead of by luck.
#[derive(Debug, Default)]
pub struct RaceWindow {
    state: AtomicU8,
    held: AtomicU64,
}

impl RaceWindow {
    const IDLE: u8 = 0;
    const ARMED: u8 = 1;
    const OPEN: u8 = 2;
    const ADDED: u8 = 3;
    const LIMIT: Duration = Duration::from_secs(5);

    /// Driver: hold the device in its next window.
    pub fn arm(&self) {
        self.state.store(Self::ARMED, Ordering::SeqCst);
    }

    /// Driver: waits until the device is held in its window; `false` after
    /// a few seconds without.
    pub fn wait_open(&self) -> bool {
        let start = Instant::now();
        while self.state.load(Ordering::SeqCst) != Self::OPEN {
            if start.elapsed() > Self::LIMIT {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    /// Driver: the buffer is in the ring; let the device go on.
    pub fn added(&self) {
        self.state.store(Self::ADDED, Ordering::SeqCst);
    }

    /// Times the device was held.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    /// Device: if armed, waits (bounded) for the driver to add a buffer.
    fn hold(&self) {
        if self
            .state
            .compare_exchange(Self::ARMED, Self::OPEN, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        self.held.fetch_add(1, Ordering::SeqCst);
        let start = Instant::now();
        while self.state.load(Ordering::SeqCst) != Self::ADDED && start.elapsed() < Self::LIMIT {
            std::thread::yield_now();
        }
        self.state.store(Self::IDLE, Ordering::SeqCst);
    }
}

impl Default for BlkOptions {
    fn default() -> Self {
        BlkOptions {
            sectors: 2048,
            indirect: false,
            event_idx: false,
            read_only: false,
            flush: true,
            queue_size: 64,
            completion: Completion::Immediate,
            ring_reset: false,
        }
    }
}

/// What the device observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlkStats {
    /// Chains popped.
    pub chains: u64,
    /// Chains whose head descriptor carried `VIRTQ_DESC_F_INDIRECT`.
    pub indirect_chains: u64,
    /// Buffer elements over all chains (for indirect chains, the entries
    /// of the indirect table).
    pub elements: u64,
    /// Most elements in one chain.
    pub max_elements: u32,
    /// `IN` requests.
    pub reads: u64,
    /// `OUT` requests.
    pub writes: u64,
    /// `FLUSH` requests.
    pub flushes: u64,
    /// `GET_ID` requests.
    pub get_ids: u64,
    /// Requests answered `UNSUPP`.
    pub unsupported: u64,
    /// Requests answered `IOERR`.
    pub io_errors: u64,
    /// Data bytes the device wrote into driver buffers (reads).
    pub bytes_to_driver: u64,
    /// Data bytes the device took from driver buffers (writes).
    pub bytes_from_driver: u64,
    /// Chains returned with `add_used`.
    pub completions: u64,
    /// Calls (kick or poll) that returned at least one chain: each is one
    /// notification decision of the core.
    pub batches: u64,
    /// Most chains held (popped, not yet returned) at once.
    pub max_in_flight: u64,
    /// Malformed chains the queue completed by itself.
    pub invalid_chains: u64,
    /// Chains discarded because the driver reset the device.
    pub dropped_by_reset: u64,
    /// Held chains the queue refused to take back because it was reset
    /// (per-queue reset) after they were popped (`StaleChain`, or
    /// `NotReady` while it is disabled).
    pub stale_chains: u64,
    /// Device resets.
    pub resets: u64,
    /// `DRIVER_OK` seen.
    pub activations: u64,
    /// Features accepted at the last `DRIVER_OK`.
    pub features: u64,
}

/// A RAM disk behind virtio-blk.
#[derive(Debug)]
pub struct RamDisk {
    opts: BlkOptions,
    disk: Vec<u8>,
    id: [u8; 20],
    held: VecDeque<DescriptorChain>,
    /// Time passed since the held chains arrived: they are due.
    due: bool,
    window: Option<Arc<RaceWindow>>,
    stats: BlkStats,
}

impl RamDisk {
    /// A zeroed disk.
    pub fn new(opts: BlkOptions) -> Self {
        let mut id = [0u8; 20];
        let name = b"ramdisk-frontend";
        id[..name.len()].copy_from_slice(name);
        RamDisk {
            opts,
            disk: vec![0; disk_bytes(opts.sectors)],
            id,
            held: VecDeque::new(),
            due: false,
            window: None,
            stats: BlkStats::default(),
        }
    }

    /// What the device observed.
    pub fn stats(&self) -> BlkStats {
        self.stats
    }

    /// The options it was built with (capacity as currently set).
    pub fn options(&self) -> BlkOptions {
        self.opts
    }

    /// The disk contents.
    pub fn contents(&self) -> &[u8] {
        &self.disk
    }

    /// The disk contents, mutably (to seed data behind the driver's back).
    pub fn contents_mut(&mut self) -> &mut [u8] {
        &mut self.disk
    }

    /// Chains popped and not yet returned.
    pub fn in_flight(&self) -> usize {
        self.held.len()
    }

    /// Changes when requests are completed from now on. Chains already
    /// held are still completed by the next poll.
    pub fn set_completion(&mut self, completion: Completion) {
        self.opts.completion = completion;
    }

    /// Holds the device in its kick race window when the rendezvous is
    /// armed (for a device on its own thread).
    pub fn set_race_window(&mut self, window: Arc<RaceWindow>) {
        self.window = Some(window);
    }

    /// Sets the device id string `GET_ID` returns (at most 20 bytes).
    pub fn set_id(&mut self, id: &[u8]) {
        assert!(id.len() <= 20);
        self.id = [0; 20];
        self.id[..id.len()].copy_from_slice(id);
    }

    /// Resizes the disk (a device-side configuration change; follow with
    /// `DeviceCore::config_changed`).
    pub fn resize(&mut self, sectors: u64) {
        self.opts.sectors = sectors;
        self.disk.resize(disk_bytes(sectors), 0);
    }

    fn config_bytes(&self) -> [u8; CONFIG_SIZE as usize] {
        let mut c = [0u8; CONFIG_SIZE as usize];
        c[0..8].copy_from_slice(&self.opts.sectors.to_le_bytes());
        // size_max (8), seg_max (12): not offered (features SIZE_MAX,
        // SEG_MAX), read as 0. Geometry (16..20) likewise.
        c[20..24].copy_from_slice(&(SECTOR as u32).to_le_bytes());
        c
    }

    /// Notes a chain's shape when it is popped.
    fn observe<M: GuestMemory, const H: usize>(
        &mut self,
        q: &Queue<H>,
        chain: &DescriptorChain,
        mem: &M,
    ) {
        self.stats.chains += 1;
        if !q.is_packed() {
            // The split ring's chain id is its head index: read the head
            // descriptor's flags straight from the descriptor table.
            let (table, _, _) = q.addresses();
            let mut flags = [0u8; 2];
            let at = table + 16 * u64::from(chain.id()) + 12;
            if mem.read(at, &mut flags).is_ok() && u16::from_le_bytes(flags) & desc::INDIRECT != 0 {
                self.stats.indirect_chains += 1;
            }
        }
        let n = chain.elements(mem).filter(Result::is_ok).count() as u32;
        self.stats.elements += u64::from(n);
        self.stats.max_elements = self.stats.max_elements.max(n);
    }

    /// Serves one request; returns the used length.
    fn serve<M: GuestMemory>(&mut self, chain: &DescriptorChain, mem: &M) -> u32 {
        let mut r = chain.reader(mem);
        let mut w = chain.writer(mem);
        if w.remaining() == 0 {
            // No room for a status byte: nothing can be reported.
            self.stats.io_errors += 1;
            return 0;
        }
        let mut hdr = [0u8; 16];
        if r.read_exact(&mut hdr).is_err() {
            self.stats.io_errors += 1;
            return finish(&mut w, status::IOERR);
        }
        let ty = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let sector = u64::from_le_bytes([
            hdr[8], hdr[9], hdr[10], hdr[11], hdr[12], hdr[13], hdr[14], hdr[15],
        ]);
        let st = match ty {
            req::IN => {
                self.stats.reads += 1;
                let len = w.remaining() - 1;
                match self.range(sector, len) {
                    Some(range) => match w.write_all(&self.disk[range]) {
                        Ok(()) => {
                            self.stats.bytes_to_driver += len as u64;
                            status::OK
                        }
                        Err(_) => status::IOERR,
                    },
                    None => status::IOERR,
                }
            }
            req::OUT => {
                self.stats.writes += 1;
                let len = r.remaining();
                match self.range(sector, len) {
                    Some(_) if self.opts.read_only => status::IOERR,
                    Some(range) => match r.read_exact(&mut self.disk[range]) {
                        Ok(()) => {
                            self.stats.bytes_from_driver += len as u64;
                            status::OK
                        }
                        Err(_) => status::IOERR,
                    },
                    None => status::IOERR,
                }
            }
            req::FLUSH if self.opts.flush => {
                self.stats.flushes += 1;
                status::OK
            }
            req::GET_ID => {
                self.stats.get_ids += 1;
                let n = (w.remaining() - 1).min(self.id.len());
                match w.write_all(&self.id[..n]) {
                    Ok(()) => status::OK,
                    Err(_) => status::IOERR,
                }
            }
            _ => {
                self.stats.unsupported += 1;
                status::UNSUPP
            }
        };
        if st == status::IOERR {
            self.stats.io_errors += 1;
        }
        finish(&mut w, st)
    }

    /// The disk byte range of `len` bytes at `sector`, if the request is
    /// whole sectors inside the disk.
    fn range(&self, sector: u64, len: usize) -> Option<core::ops::Range<usize>> {
        if !len.is_multiple_of(SECTOR) {
            return None;
        }
        let start = usize::try_from(sector).ok()?.checked_mul(SECTOR)?;
        let end = start.checked_add(len)?;
        (end <= self.disk.len()).then_some(start..end)
    }

    /// Completes `chain` and counts it.
    fn complete<M: GuestMemory, const H: usize>(
        &mut self,
        q: &mut Queue<H>,
        chain: DescriptorChain,
        mem: &M,
    ) -> Result<(), QueueError> {
        let len = self.serve(&chain, mem);
        match q.add_used(mem, chain, len) {
            Ok(()) => {
                self.stats.completions += 1;
                Ok(())
            }
            // Popped before the queue was reset (and maybe set up again):
            // the driver no longer expects it.
            Err(QueueError::StaleChain | QueueError::NotReady) => {
                self.stats.stale_chains += 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// Writes zeros up to the last writable byte, then the status byte there
/// (§5.2.6: the status is the final byte of the device-writable part).
/// Returns the used length.
fn finish<M: GuestMemory>(w: &mut Writer<'_, M>, st: u8) -> u32 {
    const ZEROS: [u8; SECTOR] = [0; SECTOR];
    while w.remaining() > 1 {
        let n = (w.remaining() - 1).min(SECTOR);
        if w.write_all(&ZEROS[..n]).is_err() {
            return w.written();
        }
    }
    let _ = w.write_all(&[st]);
    w.written()
}

fn disk_bytes(sectors: u64) -> usize {
    usize::try_from(sectors)
        .ok()
        .and_then(|s| s.checked_mul(SECTOR))
        .expect("disk fits in memory")
}

impl VirtioDevice for RamDisk {
    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn device_features(&self) -> u64 {
        let o = &self.opts;
        let mut f = features::VERSION_1 | feature::BLK_SIZE;
        if o.indirect {
            f |= features::INDIRECT_DESC;
        }
        if o.event_idx {
            f |= features::EVENT_IDX;
        }
        if o.read_only {
            f |= feature::RO;
        }
        if o.flush {
            f |= feature::FLUSH;
        }
        if o.ring_reset {
            f |= features::RING_RESET;
        }
        f
    }

    fn max_queue_size(&self, index: u16) -> u16 {
        if index == REQUEST_QUEUE {
            self.opts.queue_size
        } else {
            0
        }
    }

    fn config_size(&self) -> u32 {
        CONFIG_SIZE
    }

    fn read_config(&self, offset: u32, data: &mut [u8]) {
        let c = self.config_bytes();
        let at = offset as usize;
        data.copy_from_slice(&c[at..at + data.len()]);
    }

    fn activate(&mut self, features: u64) {
        self.stats.activations += 1;
        self.stats.features = features;
    }

    fn process_queue<M: GuestMemory, const H: usize>(
        &mut self,
        index: u16,
        queues: &mut [Queue<H>],
        mem: &M,
    ) -> Result<(), QueueError> {
        if index != REQUEST_QUEUE {
            return Ok(());
        }
        let q = &mut queues[usize::from(REQUEST_QUEUE)];
        let before = self.stats.completions;
        loop {
            // Kicks are not needed while we are draining the ring (a hint;
            // with EVENT_IDX the split ring has no flag to set).
            q.disable_notification(mem)?;
            loop {
                let chain = match q.pop_descriptor_chain(mem) {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(QueueError::InvalidChain { .. }) => {
                        self.stats.invalid_chains += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                self.observe(q, &chain, mem);
                match self.opts.completion {
                    Completion::Immediate => self.complete(q, chain, mem)?,
                    Completion::DeferredFifo | Completion::DeferredReverse => {
                        self.held.push_back(chain);
                        self.stats.max_in_flight =
                            self.stats.max_in_flight.max(self.held.len() as u64);
                    }
                }
            }
            if let Some(w) = &self.window {
                w.hold();
            }
            // Re-enable kicks; if the driver added buffers meanwhile, go on.
            if !q.enable_notification(mem)? {
                break;
            }
        }
        if self.stats.completions > before {
            self.stats.batches += 1;
        }
        Ok(())
    }

    fn poll<M: GuestMemory, const H: usize>(
        &mut self,
        queues: &mut [Queue<H>],
        mem: &M,
    ) -> Result<(), QueueError> {
        if !core::mem::take(&mut self.due) || self.held.is_empty() {
            return Ok(());
        }
        let q = &mut queues[usize::from(REQUEST_QUEUE)];
        let before = self.stats.completions;
        let reverse = self.opts.completion == Completion::DeferredReverse;
        while let Some(chain) = if reverse {
            self.held.pop_back()
        } else {
            self.held.pop_front()
        } {
            self.complete(q, chain, mem)?;
        }
        if self.stats.completions > before {
            self.stats.batches += 1;
        }
        Ok(())
    }

    fn advance(&mut self, _now_ms: u64) {
        self.due = true;
    }

    fn reset(&mut self) {
        self.stats.resets += 1;
        self.stats.dropped_by_reset += self.held.len() as u64;
        self.held.clear();
    }

    fn reset_queue(&mut self, index: u16) {
        // One request queue: every held chain came from it.
        if index == 0 {
            self.stats.dropped_by_reset += self.held.len() as u64;
            self.held.clear();
        }
    }
}
