//! Driver-side ring builders for tests, fuzzing and benchmarks.
//!
//! They write split and packed rings into any [`GuestMemory`] the way a
//! driver would, and also let a test write any descriptor it likes, which
//! is how the hostile-ring tests build malformed chains. No heap; panics on
//! misuse (these are test tools, not firmware).

use crate::memory::GuestMemory;
use crate::spec::desc::{AVAIL, INDIRECT, NEXT, USED, WRITE};

/// One buffer to put in a chain: address, length, device-writable.
pub type Buf = (u64, u32, bool);

fn put_desc_split<M: GuestMemory>(mem: &M, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&addr.to_le_bytes());
    b[8..12].copy_from_slice(&len.to_le_bytes());
    b[12..14].copy_from_slice(&flags.to_le_bytes());
    b[14..].copy_from_slice(&next.to_le_bytes());
    mem.write(at, &b).expect("mock: descriptor outside memory");
}

fn get_u16<M: GuestMemory>(mem: &M, at: u64) -> u16 {
    mem.load_u16_acquire(at).expect("mock: ring outside memory")
}

fn get_u32<M: GuestMemory>(mem: &M, at: u64) -> u32 {
    let mut b = [0u8; 4];
    mem.read(at, &mut b).expect("mock: ring outside memory");
    u32::from_le_bytes(b)
}

/// Rounds `x` up to a multiple of `a` (a power of two).
pub const fn align_up(x: u64, a: u64) -> u64 {
    (x + a - 1) & !(a - 1)
}

/// A split ring as a driver builds it (virtio v1.2 §2.7).
#[derive(Debug)]
pub struct MockSplitQueue<'m, M> {
    mem: &'m M,
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    next_desc: u16,
    avail_idx: u16,
    last_used: u16,
}

impl<'m, M: GuestMemory> MockSplitQueue<'m, M> {
    /// Bytes a ring of `size` entries occupies from its 16-aligned base.
    pub const fn footprint(size: u16) -> u64 {
        let n = size as u64;
        let avail_end = 16 * n + 6 + 2 * n;
        align_up(avail_end, 4) + 6 + 8 * n
    }

    /// Lays out a zeroed ring of `size` entries at `base` (16-aligned).
    pub fn new(mem: &'m M, base: u64, size: u16) -> Self {
        let n = u64::from(size);
        let desc = base;
        let avail = desc + 16 * n;
        let used = align_up(avail + 6 + 2 * n, 4);
        let zeros = [0u8; 64];
        let mut at = base;
        let end = base + Self::footprint(size);
        while at < end {
            let k = (end - at).min(64) as usize;
            mem.write(at, &zeros[..k])
                .expect("mock: ring outside memory");
            at += k as u64;
        }
        MockSplitQueue {
            mem,
            size,
            desc,
            avail,
            used,
            next_desc: 0,
            avail_idx: 0,
            last_used: 0,
        }
    }

    /// Queue size.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Descriptor table, available ring and used ring addresses.
    pub fn addresses(&self) -> (u64, u64, u64) {
        (self.desc, self.avail, self.used)
    }

    /// Writes descriptor `index` verbatim.
    pub fn write_desc(&self, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        put_desc_split(
            self.mem,
            self.desc + 16 * u64::from(index),
            addr,
            len,
            flags,
            next,
        );
    }

    /// Writes a chain into consecutive free descriptors; returns the head.
    /// Does not publish it.
    pub fn write_chain(&mut self, bufs: &[Buf]) -> u16 {
        assert!(!bufs.is_empty() && bufs.len() <= usize::from(self.size));
        let head = self.next_desc;
        for (i, &(addr, len, w)) in bufs.iter().enumerate() {
            let idx = self.next_desc;
            let next = (idx + 1) % self.size;
            let mut flags = if w { WRITE } else { 0 };
            if i + 1 < bufs.len() {
                flags |= NEXT;
            }
            self.write_desc(idx, addr, len, flags, next);
            self.next_desc = next;
        }
        head
    }

    /// Writes an indirect table at `table` holding `bufs`, and one
    /// descriptor pointing at it; returns the head. Does not publish it.
    pub fn write_indirect(&mut self, table: u64, bufs: &[Buf]) -> u16 {
        for (i, &(addr, len, w)) in bufs.iter().enumerate() {
            let mut flags = if w { WRITE } else { 0 };
            if i + 1 < bufs.len() {
                flags |= NEXT;
            }
            put_desc_split(
                self.mem,
                table + 16 * i as u64,
                addr,
                len,
                flags,
                (i + 1) as u16,
            );
        }
        let head = self.next_desc;
        self.write_desc(head, table, 16 * bufs.len() as u32, INDIRECT, 0);
        self.next_desc = (head + 1) % self.size;
        head
    }

    /// Puts `head` in the available ring and publishes it (release store
    /// of `avail.idx`).
    pub fn publish(&mut self, head: u16) {
        let slot = u64::from(self.avail_idx % self.size);
        self.mem
            .write(self.avail + 4 + 2 * slot, &head.to_le_bytes())
            .expect("mock: ring outside memory");
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.set_avail_idx(self.avail_idx);
    }

    /// Writes and publishes a chain; returns its head.
    pub fn add_chain(&mut self, bufs: &[Buf]) -> u16 {
        let head = self.write_chain(bufs);
        self.publish(head);
        head
    }

    /// Resumes a ring whose indices both stand at `idx` (as after a
    /// migration or reconnect): sets the driver's counters, `avail.idx` and
    /// `used.idx`.
    pub fn resume_at(&mut self, idx: u16) {
        self.avail_idx = idx;
        self.last_used = idx;
        self.set_avail_idx(idx);
        self.mem
            .store_u16_release(self.used + 2, idx)
            .expect("mock: ring outside memory");
    }

    /// Writes `avail.idx` verbatim (the driver's own count is unchanged).
    pub fn set_avail_idx(&self, idx: u16) {
        self.mem
            .store_u16_release(self.avail + 2, idx)
            .expect("mock: ring outside memory");
    }

    /// Writes `avail.ring[slot]` verbatim.
    pub fn set_avail_entry(&self, slot: u16, head: u16) {
        self.mem
            .write(self.avail + 4 + 2 * u64::from(slot), &head.to_le_bytes())
            .expect("mock: ring outside memory");
    }

    /// Writes `avail.flags`.
    pub fn set_avail_flags(&self, flags: u16) {
        self.mem
            .store_u16_release(self.avail, flags)
            .expect("mock: ring outside memory");
    }

    /// Writes `used_event` (EVENT_IDX).
    pub fn set_used_event(&self, v: u16) {
        self.mem
            .store_u16_release(self.avail + 4 + 2 * u64::from(self.size), v)
            .expect("mock: ring outside memory");
    }

    /// `used.idx` as the device last published it.
    pub fn used_idx(&self) -> u16 {
        get_u16(self.mem, self.used + 2)
    }

    /// `used.flags`.
    pub fn used_flags(&self) -> u16 {
        get_u16(self.mem, self.used)
    }

    /// `avail_event` (EVENT_IDX).
    pub fn avail_event(&self) -> u16 {
        get_u16(self.mem, self.used + 4 + 8 * u64::from(self.size))
    }

    /// Takes the next used element: `(id, len)`.
    pub fn pop_used(&mut self) -> Option<(u32, u32)> {
        if self.used_idx() == self.last_used {
            return None;
        }
        let slot = u64::from(self.last_used % self.size);
        let at = self.used + 4 + 8 * slot;
        let id = get_u32(self.mem, at);
        let len = get_u32(self.mem, at + 4);
        self.last_used = self.last_used.wrapping_add(1);
        Some((id, len))
    }
}

/// A packed ring as a driver builds it (virtio v1.2 §2.8).
#[derive(Debug)]
pub struct MockPackedQueue<'m, M> {
    mem: &'m M,
    size: u16,
    desc: u64,
    driver: u64,
    device: u64,
    next_avail: u16,
    avail_wrap: bool,
    next_used: u16,
    used_wrap: bool,
    next_id: u16,
    /// Ring slots used by each buffer id, to skip on completion (§2.8.6).
    slots_of: [u16; MAX_IDS],
}

/// Most buffer ids (and so the largest ring) [`MockPackedQueue`] tracks.
pub const MAX_IDS: usize = 1024;

impl<'m, M: GuestMemory> MockPackedQueue<'m, M> {
    /// Bytes a ring of `size` entries occupies (descriptors plus both event
    /// suppression structures).
    pub const fn footprint(size: u16) -> u64 {
        16 * size as u64 + 8
    }

    /// Lays out a zeroed ring at `base` (16-aligned).
    pub fn new(mem: &'m M, base: u64, size: u16) -> Self {
        assert!(usize::from(size) <= MAX_IDS);
        let desc = base;
        let driver = desc + 16 * u64::from(size);
        let device = driver + 4;
        let zeros = [0u8; 64];
        let mut at = base;
        let end = base + Self::footprint(size);
        while at < end {
            let k = (end - at).min(64) as usize;
            mem.write(at, &zeros[..k])
                .expect("mock: ring outside memory");
            at += k as u64;
        }
        MockPackedQueue {
            mem,
            size,
            desc,
            driver,
            device,
            next_avail: 0,
            avail_wrap: true,
            next_used: 0,
            used_wrap: true,
            next_id: 0,
            slots_of: [0; MAX_IDS],
        }
    }

    /// Descriptor ring, driver area and device area addresses.
    pub fn addresses(&self) -> (u64, u64, u64) {
        (self.desc, self.driver, self.device)
    }

    fn avail_flags(&self, wrap: bool) -> u16 {
        if wrap { AVAIL } else { USED }
    }

    /// Writes a descriptor verbatim; `flags` written last with release.
    pub fn write_desc(&self, slot: u16, addr: u64, len: u32, id: u16, flags: u16) {
        let at = self.desc + 16 * u64::from(slot);
        let mut b = [0u8; 14];
        b[..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&id.to_le_bytes());
        self.mem.write(at, &b).expect("mock: ring outside memory");
        self.mem
            .store_u16_release(at + 14, flags)
            .expect("mock: ring outside memory");
    }

    /// Makes a list of buffers available; returns its buffer id. Extra
    /// flag bits in `extra_flags[i]` are ORed into descriptor `i` (for
    /// hostile tests; pass `&[]` normally).
    pub fn add_chain_with(&mut self, bufs: &[Buf], extra_flags: &[u16]) -> u16 {
        assert!(!bufs.is_empty() && bufs.len() <= usize::from(self.size));
        let id = self.next_id;
        self.next_id = (self.next_id + 1) % self.size;
        let first = self.next_avail;
        let mut first_flags = 0;
        for (i, &(addr, len, w)) in bufs.iter().enumerate() {
            let mut flags =
                self.avail_flags(self.avail_wrap) | extra_flags.get(i).copied().unwrap_or(0);
            if w {
                flags |= WRITE;
            }
            if i + 1 < bufs.len() {
                flags |= NEXT;
            }
            if i == 0 {
                // §2.8.6: the first descriptor is made available last.
                first_flags = flags;
                let at = self.desc + 16 * u64::from(first);
                let mut b = [0u8; 14];
                b[..8].copy_from_slice(&addr.to_le_bytes());
                b[8..12].copy_from_slice(&len.to_le_bytes());
                b[12..14].copy_from_slice(&id.to_le_bytes());
                self.mem.write(at, &b).expect("mock: ring outside memory");
            } else {
                self.write_desc(self.next_avail, addr, len, id, flags);
            }
            self.next_avail += 1;
            if self.next_avail == self.size {
                self.next_avail = 0;
                self.avail_wrap = !self.avail_wrap;
            }
        }
        self.mem
            .store_u16_release(self.desc + 16 * u64::from(first) + 14, first_flags)
            .expect("mock: ring outside memory");
        self.slots_of[usize::from(id)] = bufs.len() as u16;
        id
    }

    /// Makes a list of buffers available; returns its buffer id.
    pub fn add_chain(&mut self, bufs: &[Buf]) -> u16 {
        self.add_chain_with(bufs, &[])
    }

    /// Writes an indirect table at `table` and makes one descriptor
    /// pointing at it available; returns the buffer id.
    pub fn add_indirect(&mut self, table: u64, bufs: &[Buf]) -> u16 {
        for (i, &(addr, len, w)) in bufs.iter().enumerate() {
            let at = table + 16 * i as u64;
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&addr.to_le_bytes());
            b[8..12].copy_from_slice(&len.to_le_bytes());
            b[14..].copy_from_slice(&(if w { WRITE } else { 0 }).to_le_bytes());
            self.mem.write(at, &b).expect("mock: table outside memory");
        }
        let id = self.next_id;
        self.next_id = (self.next_id + 1) % self.size;
        let flags = self.avail_flags(self.avail_wrap) | INDIRECT;
        self.write_desc(self.next_avail, table, 16 * bufs.len() as u32, id, flags);
        self.next_avail += 1;
        if self.next_avail == self.size {
            self.next_avail = 0;
            self.avail_wrap = !self.avail_wrap;
        }
        self.slots_of[usize::from(id)] = 1;
        id
    }

    /// Writes the driver event suppression structure.
    pub fn set_driver_event(&self, off_wrap: u16, flags: u16) {
        self.mem
            .store_u16_release(self.driver, off_wrap)
            .expect("mock: ring outside memory");
        self.mem
            .store_u16_release(self.driver + 2, flags)
            .expect("mock: ring outside memory");
    }

    /// The device event suppression structure: `(off_wrap, flags)`.
    pub fn device_event(&self) -> (u16, u16) {
        (
            get_u16(self.mem, self.device),
            get_u16(self.mem, self.device + 2),
        )
    }

    /// The driver's next slot and wrap counter (for event offsets).
    pub fn next_avail(&self) -> (u16, bool) {
        (self.next_avail, self.avail_wrap)
    }

    /// Takes the next used descriptor: `(id, len)`.
    pub fn pop_used(&mut self) -> Option<(u16, u32)> {
        let at = self.desc + 16 * u64::from(self.next_used);
        let flags = get_u16(self.mem, at + 14);
        let used = flags & USED != 0;
        let avail = flags & AVAIL != 0;
        if used != self.used_wrap || avail != self.used_wrap {
            return None;
        }
        let len = get_u32(self.mem, at + 8);
        let id = get_u16(self.mem, at + 12);
        let skip = self
            .slots_of
            .get(usize::from(id))
            .copied()
            .unwrap_or(1)
            .max(1);
        let next = u32::from(self.next_used) + u32::from(skip);
        if next >= u32::from(self.size) {
            self.next_used = (next - u32::from(self.size)) as u16;
            self.used_wrap = !self.used_wrap;
        } else {
            self.next_used = next as u16;
        }
        Some((id, len))
    }
}
