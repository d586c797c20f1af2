//! Shared pieces of the virtio-backend fuzz targets: the driver-memory
//! arena (seen through a `FixedWindow` or a two-region `RegionTable`), a
//! `GuestMemory` wrapper that records what the device touched, a tiny
//! driver that writes rings without ever panicking, a small test device,
//! and the seed encoder.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::ptr::NonNull;

use virtio_backend::spec::desc::{AVAIL, INDIRECT, NEXT, USED, WRITE};
use virtio_backend::spec::features::{
    EVENT_IDX, INDIRECT_DESC, RING_PACKED, RING_RESET, VERSION_1,
};
use virtio_backend::spec::status::{ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK};
use virtio_backend::{
    Coherent, DeviceCore, FixedWindow, GuestMemory, MemoryError, Queue, QueueError, RegionTable,
    VirtioDevice,
};

pub mod seed;

/// Size of every target's arena of driver memory. Small, so that the
/// per-operation snapshot comparisons stay cheap and random offsets land
/// in it often.
pub const ARENA_SIZE: usize = 0x4000;

/// Driver address of the first arena byte. Not 0, so that small
/// addresses are out of range.
pub const ARENA_BASE: u64 = 0x1_0000;

/// A zeroed, 16-aligned arena of driver memory.
///
/// The bytes are only ever touched through the views [`Arena::views`]
/// returns (their contract forbids Rust references to the bytes while they
/// live), so the harness reads its snapshots through the window too.
pub struct Arena {
    buf: Box<[u128]>,
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena {
    /// A zeroed arena.
    pub fn new() -> Self {
        Arena {
            buf: vec![0u128; ARENA_SIZE / 16].into_boxed_slice(),
        }
    }

    /// The views through which device and driver see the arena.
    pub fn views(&mut self) -> Views<'_> {
        let p = NonNull::new(self.buf.as_mut_ptr().cast::<u8>()).expect("boxed slice");
        // SAFETY: `buf` is `ARENA_SIZE` bytes, valid for reads and writes,
        // and stays borrowed mutably (so untouched by any other path) for
        // the views' whole lifetime. The views only copy bytes in and out
        // with volatile accesses and atomics, so several of them may alias.
        let window = unsafe { FixedWindow::new(p, ARENA_SIZE, ARENA_BASE, Coherent) }
            .expect("base is 16-aligned and does not wrap");
        let mut v = Views {
            window,
            regions: RegionTable::new(Coherent),
            ptr: p,
            upper_mapped: false,
            _arena: PhantomData,
        };
        v.map(0);
        v.map(1);
        v
    }
}

/// Half the arena: the two regions of [`Views::regions`].
pub const HALF: usize = ARENA_SIZE / 2;

/// Both views of one arena.
pub struct Views<'a> {
    /// The whole arena as one window.
    pub window: FixedWindow<'a>,
    /// The arena as two adjacent regions of [`HALF`] bytes; the upper one
    /// can be withdrawn and restored.
    pub regions: RegionTable<'a, 2>,
    ptr: NonNull<u8>,
    upper_mapped: bool,
    _arena: PhantomData<&'a mut Arena>,
}

impl Views<'_> {
    fn map(&mut self, half: usize) {
        let guest = ARENA_BASE + (half * HALF) as u64;
        // SAFETY: the half lies inside the arena, which `Arena::views`
        // guarantees valid (and otherwise untouched) for `'a`.
        let r = unsafe { self.regions.add(guest, self.ptr.add(half * HALF), HALF) };
        if r.is_ok() && half == 1 {
            self.upper_mapped = true;
        }
    }

    /// Withdraws the upper half of the arena from the region table.
    pub fn unmap_upper(&mut self) {
        self.regions.remove(ARENA_BASE + HALF as u64);
        self.upper_mapped = false;
    }

    /// Restores the upper half.
    pub fn remap_upper(&mut self) {
        if !self.upper_mapped {
            self.map(1);
        }
    }

    /// Whether the upper half is currently in the region table.
    pub fn upper_mapped(&self) -> bool {
        self.upper_mapped
    }

    /// Copies the whole arena out.
    pub fn snapshot(&self, out: &mut Vec<u8>) {
        out.resize(ARENA_SIZE, 0);
        self.window.read(ARENA_BASE, out).expect("whole window");
    }
}

/// Maps a fuzzer-chosen offset to a driver address: mostly inside the
/// arena, sometimes just past its end.
pub fn arena_addr(off: u16) -> u64 {
    ARENA_BASE + u64::from(off) % (ARENA_SIZE as u64 + 0x40)
}

/// Which memory implementation the device sees.
pub enum Which<'v, 'a> {
    /// The whole arena as one [`FixedWindow`].
    Window(&'v FixedWindow<'a>),
    /// The arena as a [`RegionTable`].
    Regions(&'v RegionTable<'a, 2>),
}

/// A [`GuestMemory`] that forwards to the arena and records every
/// successful write (address, length) and the number of calls made.
pub struct Tracked<'v, 'a> {
    mem: Which<'v, 'a>,
    writes: RefCell<Vec<(u64, u64)>>,
    calls: Cell<u64>,
}

impl<'v, 'a> Tracked<'v, 'a> {
    /// Wraps one of the arena views.
    pub fn new(mem: Which<'v, 'a>) -> Self {
        Tracked {
            mem,
            writes: RefCell::new(Vec::new()),
            calls: Cell::new(0),
        }
    }

    /// Returns and clears the recorded writes and the call count.
    pub fn take(&self) -> (Vec<(u64, u64)>, u64) {
        (self.writes.take(), self.calls.replace(0))
    }

    fn tick(&self) {
        self.calls.set(self.calls.get() + 1);
    }
}

/// Forwards a call to whichever view is in use.
macro_rules! fwd {
    ($self:ident, $m:ident => $e:expr) => {
        match &$self.mem {
            Which::Window($m) => $e,
            Which::Regions($m) => $e,
        }
    };
}

impl GuestMemory for Tracked<'_, '_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.tick();
        fwd!(self, m => m.read(addr, buf))
    }
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.tick();
        let r = fwd!(self, m => m.write(addr, data));
        if r.is_ok() && !data.is_empty() {
            self.writes.borrow_mut().push((addr, data.len() as u64));
        }
        r
    }
    fn load_u16_acquire(&self, addr: u64) -> Result<u16, MemoryError> {
        self.tick();
        fwd!(self, m => m.load_u16_acquire(addr))
    }
    fn store_u16_release(&self, addr: u64, value: u16) -> Result<(), MemoryError> {
        self.tick();
        let r = fwd!(self, m => m.store_u16_release(addr, value));
        if r.is_ok() {
            self.writes.borrow_mut().push((addr, 2));
        }
        r
    }
    fn check_range(&self, addr: u64, len: u64, align: u64) -> Result<(), MemoryError> {
        self.tick();
        fwd!(self, m => m.check_range(addr, len, align))
    }
}

/// Half-open byte ranges `[start, end)` of driver addresses.
#[derive(Debug, Default, Clone)]
pub struct Ranges(pub Vec<(u64, u64)>);

impl Ranges {
    /// Adds `[addr, addr + len)` (saturating at the top of the space).
    pub fn add(&mut self, addr: u64, len: u64) {
        if len > 0 {
            self.0.push((addr, addr.saturating_add(len)));
        }
    }
    /// Whether `[addr, addr + len)` is covered by the union of the ranges.
    pub fn covers(&self, addr: u64, len: u64) -> bool {
        let end = addr.saturating_add(len);
        let mut at = addr;
        // Few ranges: a fixed-point sweep is fine.
        loop {
            if at >= end {
                return true;
            }
            match self
                .0
                .iter()
                .filter(|r| r.0 <= at && at < r.1)
                .map(|r| r.1)
                .max()
            {
                Some(next) => at = next,
                None => return false,
            }
        }
    }
    /// Whether `[addr, addr + len)` meets any of the ranges.
    pub fn overlaps(&self, addr: u64, len: u64) -> bool {
        let end = addr.saturating_add(len);
        self.0.iter().any(|r| addr < r.1 && r.0 < end)
    }
}

/// Where a queue's three areas are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Packed ring layout.
    pub packed: bool,
    /// Queue size.
    pub size: u16,
    /// Descriptor table or ring.
    pub desc: u64,
    /// Available ring or driver event suppression area.
    pub driver: u64,
    /// Used ring or device event suppression area.
    pub device: u64,
}

impl Layout {
    /// The areas packed one after the other from `base` (16-aligned), as a
    /// driver lays them out.
    pub fn contiguous(base: u64, packed: bool, size: u16) -> Layout {
        let n = u64::from(size);
        let desc = base;
        let driver = desc + 16 * n;
        let device = if packed {
            driver + 4
        } else {
            (driver + 6 + 2 * n).next_multiple_of(4)
        };
        Layout {
            packed,
            size,
            desc,
            driver,
            device,
        }
    }

    /// One past the last byte of the three areas, for a contiguous layout.
    pub fn end(&self) -> u64 {
        let n = u64::from(self.size);
        if self.packed {
            self.device + 4
        } else {
            self.device + 6 + 8 * n
        }
    }

    /// Bytes of the driver area (split: flags, idx, ring, used_event).
    pub fn driver_len(&self) -> u64 {
        if self.packed {
            4
        } else {
            6 + 2 * u64::from(self.size)
        }
    }

    /// Bytes of the device area (split: flags, idx, ring, avail_event).
    pub fn device_len(&self) -> u64 {
        if self.packed {
            4
        } else {
            6 + 8 * u64::from(self.size)
        }
    }
}

/// One buffer of a chain as the driver posts it.
pub type Buf = (u64, u32, bool);

fn desc_bytes(addr: u64, len: u32, w0: u16, w1: u16) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&addr.to_le_bytes());
    b[8..12].copy_from_slice(&len.to_le_bytes());
    b[12..14].copy_from_slice(&w0.to_le_bytes());
    b[14..].copy_from_slice(&w1.to_le_bytes());
    b
}

/// A driver's view of one ring: writes descriptors and publishes them the
/// way a well-behaved driver would, ignoring memory errors (the harness
/// never panics on its own writes).
#[derive(Debug, Clone)]
pub struct Driver {
    /// Where the ring is.
    pub layout: Layout,
    /// Split: next free descriptor. Packed: next slot to make available.
    pub next: u16,
    /// Split: the driver's `avail.idx`.
    pub avail_idx: u16,
    /// Packed: the driver's wrap counter.
    pub wrap: bool,
    /// Packed: the next buffer id.
    pub next_id: u16,
    /// Split: used entries taken. Packed: next used slot.
    pub used_next: u16,
    /// Packed: the driver's used wrap counter.
    pub used_wrap: bool,
    /// Packed: ring slots each buffer id occupies, to skip on completion.
    pub slots_of: Vec<u16>,
    /// Writable bytes posted under each id (head or buffer id).
    pub writable_of: Vec<u32>,
}

impl Driver {
    /// A driver for a fresh ring (indices 0, wrap counter 1).
    pub fn new(layout: Layout) -> Self {
        let n = usize::from(layout.size.max(1));
        Driver {
            layout,
            next: 0,
            avail_idx: 0,
            wrap: true,
            next_id: 0,
            used_next: 0,
            used_wrap: true,
            slots_of: vec![1; n],
            writable_of: vec![0; n],
        }
    }

    /// Zeroes the three areas, as a driver does before enabling a queue.
    pub fn zero<M: GuestMemory>(&self, mem: &M) {
        let l = &self.layout;
        for (at, len) in [
            (l.desc, 16 * u64::from(l.size)),
            (l.driver, l.driver_len()),
            (l.device, l.device_len()),
        ] {
            let zeros = [0u8; 256];
            let mut off = 0;
            while off < len {
                let k = (len - off).min(256);
                let _ = mem.write(at + off, &zeros[..k as usize]);
                off += k;
            }
        }
    }

    /// Writes `bufs` (or an indirect table at `table` holding them) and
    /// makes the chain available if `publish`. Returns the head index
    /// (split) or buffer id (packed).
    pub fn add_chain<M: GuestMemory>(
        &mut self,
        mem: &M,
        bufs: &[Buf],
        table: Option<u64>,
        publish: bool,
    ) -> u16 {
        let id = if self.layout.packed {
            let first = self.next;
            let id = self.add_packed(mem, bufs, table);
            let used = (self.next + self.layout.size - first) % self.layout.size.max(1);
            if let Some(s) = self.slots_of.get_mut(usize::from(id)) {
                *s = if used == 0 { self.layout.size } else { used };
            }
            id
        } else {
            let head = self.add_split(mem, bufs, table);
            if publish {
                self.publish(mem, head);
            }
            head
        };
        let writable = bufs
            .iter()
            .filter(|b| b.2)
            .fold(0u32, |a, b| a.saturating_add(b.1));
        if let Some(w) = self.writable_of.get_mut(usize::from(id)) {
            *w = writable;
        }
        id
    }

    /// Takes the next used entry, `(id, len)`, if the device published one.
    pub fn pop_used<M: GuestMemory>(&mut self, mem: &M) -> Option<(u32, u32)> {
        let l = self.layout;
        let size = l.size.max(1);
        let mut b = [0u8; 8];
        if l.packed {
            let at = l.desc + 16 * u64::from(self.used_next);
            let flags = mem.load_u16_acquire(at + 14).ok()?;
            if (flags & AVAIL != 0) != self.used_wrap || (flags & USED != 0) != self.used_wrap {
                return None;
            }
            mem.read(at + 8, &mut b[..6]).ok()?;
            let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let id = u16::from_le_bytes([b[4], b[5]]);
            let skip = self
                .slots_of
                .get(usize::from(id))
                .copied()
                .unwrap_or(1)
                .max(1);
            let next = u32::from(self.used_next) + u32::from(skip);
            if next >= u32::from(size) {
                self.used_next = (next - u32::from(size)) as u16;
                self.used_wrap = !self.used_wrap;
            } else {
                self.used_next = next as u16;
            }
            Some((u32::from(id), len))
        } else {
            let idx = mem.load_u16_acquire(l.device + 2).ok()?;
            if idx == self.used_next {
                return None;
            }
            let slot = u64::from(self.used_next % size);
            mem.read(l.device + 4 + 8 * slot, &mut b).ok()?;
            self.used_next = self.used_next.wrapping_add(1);
            Some((
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            ))
        }
    }

    fn add_split<M: GuestMemory>(&mut self, mem: &M, bufs: &[Buf], table: Option<u64>) -> u16 {
        let size = self.layout.size.max(1);
        let head = self.next % size;
        let put = |at: u64, i: usize, n: usize, next: u16, &(addr, len, w): &Buf| {
            let mut flags = if w { WRITE } else { 0 };
            if i + 1 < n {
                flags |= NEXT;
            }
            let _ = mem.write(at, &desc_bytes(addr, len, flags, next));
        };
        match table {
            Some(t) => {
                for (i, b) in bufs.iter().enumerate() {
                    put(t + 16 * i as u64, i, bufs.len(), (i + 1) as u16, b);
                }
                let len = (16 * bufs.len()) as u32;
                let at = self.layout.desc + 16 * u64::from(head);
                let _ = mem.write(at, &desc_bytes(t, len, INDIRECT, 0));
                self.next = (head + 1) % size;
            }
            None => {
                let mut idx = head;
                for (i, b) in bufs.iter().enumerate() {
                    let next = (idx + 1) % size;
                    put(
                        self.layout.desc + 16 * u64::from(idx),
                        i,
                        bufs.len(),
                        next,
                        b,
                    );
                    idx = next;
                }
                self.next = idx;
            }
        }
        head
    }

    /// Split: puts `head` in the available ring and bumps `avail.idx`.
    pub fn publish<M: GuestMemory>(&mut self, mem: &M, head: u16) {
        let size = self.layout.size.max(1);
        let slot = u64::from(self.avail_idx % size);
        let _ = mem.write(self.layout.driver + 4 + 2 * slot, &head.to_le_bytes());
        self.avail_idx = self.avail_idx.wrapping_add(1);
        let _ = mem.store_u16_release(self.layout.driver + 2, self.avail_idx);
    }

    fn avail_flags(&self) -> u16 {
        if self.wrap { AVAIL } else { USED }
    }

    fn bump(&mut self) {
        self.next += 1;
        if self.next >= self.layout.size {
            self.next = 0;
            self.wrap = !self.wrap;
        }
    }

    fn add_packed<M: GuestMemory>(&mut self, mem: &M, bufs: &[Buf], table: Option<u64>) -> u16 {
        let size = self.layout.size.max(1);
        let id = self.next_id;
        self.next_id = (self.next_id + 1) % size;
        let ring = self.layout.desc;
        let slot_at = |slot: u16| ring + 16 * u64::from(slot);
        let first = self.next % size;
        let first_flags;
        match table {
            Some(t) => {
                for (i, &(addr, len, w)) in bufs.iter().enumerate() {
                    let f = if w { WRITE } else { 0 };
                    let _ = mem.write(t + 16 * i as u64, &desc_bytes(addr, len, 0, f));
                }
                let len = (16 * bufs.len()) as u32;
                let _ = mem.write(slot_at(first), &desc_bytes(t, len, id, 0)[..14]);
                first_flags = self.avail_flags() | INDIRECT;
                self.bump();
            }
            None => {
                let mut ff = 0;
                for (i, &(addr, len, w)) in bufs.iter().enumerate() {
                    let mut flags = self.avail_flags();
                    if w {
                        flags |= WRITE;
                    }
                    if i + 1 < bufs.len() {
                        flags |= NEXT;
                    }
                    let at = slot_at(self.next % size);
                    let _ = mem.write(at, &desc_bytes(addr, len, id, 0)[..14]);
                    if i == 0 {
                        // §2.8.6: the first descriptor is made available last.
                        ff = flags;
                    } else {
                        let _ = mem.store_u16_release(at + 14, flags);
                    }
                    self.bump();
                }
                first_flags = ff;
            }
        }
        let _ = mem.store_u16_release(slot_at(first) + 14, first_flags);
        id
    }
}

/// Invariants of the device state machine that hold after any sequence
/// of control-plane requests (virtio v1.2 §2.1, §3.1.1), checked by the
/// msg and mmio targets after every step.
pub fn check_core<const NQ: usize>(core: &DeviceCore<EchoDevice, NQ>) {
    let status = core.status();
    let f = core.driver_features();
    if status & DRIVER_OK != 0 {
        assert_ne!(
            status & FEATURES_OK,
            0,
            "DRIVER_OK without FEATURES_OK: {status:#x}"
        );
    }
    if status & FEATURES_OK != 0 {
        assert_ne!(
            status & DRIVER,
            0,
            "FEATURES_OK without DRIVER: {status:#x}"
        );
        assert_eq!(
            f & !ECHO_FEATURES,
            0,
            "FEATURES_OK with unoffered features {f:#x}"
        );
        assert_ne!(f & VERSION_1, 0, "FEATURES_OK without VERSION_1");
    }
    if status & DRIVER != 0 {
        assert_ne!(
            status & ACKNOWLEDGE,
            0,
            "DRIVER without ACKNOWLEDGE: {status:#x}"
        );
    }
    assert_eq!(
        core.device().active,
        status & DRIVER_OK != 0,
        "activated iff DRIVER_OK (status {status:#x})"
    );
    if status == 0 {
        assert_eq!(f, 0, "reset device keeps driver features");
    }
    for i in 0..=NQ as u16 {
        let q = core.queue_info(i);
        let max = ECHO_QUEUE_MAX.get(usize::from(i)).copied().unwrap_or(0);
        assert_eq!(q.max_size, max, "queue {i} max");
        if q.enabled {
            assert_ne!(
                status & FEATURES_OK,
                0,
                "queue {i} enabled before FEATURES_OK"
            );
            assert!(q.size > 0 && q.size <= max, "queue {i} size {}", q.size);
            assert_eq!(q.desc % 16, 0, "queue {i} descriptor alignment");
        } else {
            assert_eq!((q.size, q.desc, q.driver, q.device), (0, 0, 0, 0));
        }
    }
}

/// Writes seed inputs for a target into `dir` when `VIRTIO_FUZZ_SEED_DIR`
/// is set, then exits. Called from each target's `init` block, so
/// `run.sh` can seed an empty corpus with the very binary it fuzzes.
pub fn maybe_write_seeds(name: &str, seeds: impl FnOnce() -> Vec<Vec<u8>>) {
    let Some(dir) = std::env::var_os("VIRTIO_FUZZ_SEED_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("seed dir");
    for (i, s) in seeds().iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{name}-{i:02}")), s).expect("write seed");
    }
    std::process::exit(0);
}

/// The device both control-plane targets drive: two queues, 8 bytes of
/// configuration space (bytes 4..8 writable), and echo processing (each
/// request's readable bytes are copied, uppercased, into its writable part).
#[derive(Debug, Default)]
pub struct EchoDevice {
    /// Configuration space.
    pub config: [u8; 8],
    /// Whether `activate` has been called since the last reset.
    pub active: bool,
}

/// Device id of [`EchoDevice`].
pub const ECHO_DEVICE_ID: u32 = 0x7f00;
/// Vendor id of [`EchoDevice`].
pub const ECHO_VENDOR_ID: u32 = 0x1af4;
/// Features [`EchoDevice`] offers.
pub const ECHO_FEATURES: u64 =
    VERSION_1 | INDIRECT_DESC | EVENT_IDX | RING_PACKED | RING_RESET | 1 << 2;

/// Largest size of each of the test device's queues.
pub const ECHO_QUEUE_MAX: [u16; 2] = [64, 8];

/// Upper bound on chains one `process_queue` call handles (device policy,
/// so a driver that keeps refilling the ring cannot monopolise the device).
pub const ECHO_BUDGET: u32 = 1024;

impl VirtioDevice for EchoDevice {
    fn device_id(&self) -> u32 {
        ECHO_DEVICE_ID
    }
    fn vendor_id(&self) -> u32 {
        ECHO_VENDOR_ID
    }
    fn device_features(&self) -> u64 {
        ECHO_FEATURES
    }
    fn max_queue_size(&self, index: u16) -> u16 {
        ECHO_QUEUE_MAX.get(usize::from(index)).copied().unwrap_or(0)
    }
    fn config_size(&self) -> u32 {
        8
    }
    fn read_config(&self, offset: u32, data: &mut [u8]) {
        let o = offset as usize;
        data.copy_from_slice(&self.config[o..o + data.len()]);
    }
    fn write_config(&mut self, offset: u32, data: &[u8]) -> bool {
        if offset < 4 {
            return false;
        }
        let o = offset as usize;
        self.config[o..o + data.len()].copy_from_slice(data);
        true
    }
    fn activate(&mut self, _features: u64) {
        self.active = true;
    }
    fn process_queue<M: GuestMemory, const H: usize>(
        &mut self,
        index: u16,
        queues: &mut [Queue<H>],
        mem: &M,
    ) -> Result<(), QueueError> {
        let q = &mut queues[usize::from(index)];
        let mut budget = ECHO_BUDGET;
        loop {
            loop {
                if budget == 0 {
                    return Ok(());
                }
                budget -= 1;
                let c = match q.pop_descriptor_chain(mem) {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) if e.needs_reset() => return Err(e),
                    Err(_) => continue,
                };
                let mut buf = [0u8; 512];
                let n = q.reader(&c, mem).read(&mut buf).unwrap_or(0);
                buf[..n].make_ascii_uppercase();
                let mut w = q.writer(&c, mem);
                let _ = w.write(&buf[..n]);
                let written = w.written();
                q.add_used(mem, c, written)?;
            }
            if !q.enable_notification(mem)? {
                return Ok(());
            }
        }
    }
    fn reset(&mut self) {
        self.active = false;
    }
}
