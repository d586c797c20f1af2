//! Hostile rings and API call sequences on one split or packed `Queue`.
//!
//! The input picks the ring type, EVENT_IDX and INDIRECT_DESC, the memory
//! implementation (one window, or two regions of which one can be
//! withdrawn), the queue size and layout, then a sequence of operations:
//! a driver writing well-formed chains, raw descriptors, ring indices and
//! arbitrary bytes; and a device popping, reading, writing, completing,
//! asking about notifications, resetting and re-enabling.
//!
//! Checked after every operation:
//!
//! * nothing panics, and every call does work bounded by the queue size;
//! * the device writes only where the operation may write (used ring or
//!   event area, the writable buffers of the chain it writes), judged both
//!   from the writes it made and from a snapshot of the whole arena;
//! * a popped chain agrees with an independent walk of its descriptors
//!   (validity, elements, readable and writable totals), and invalid chains
//!   are completed with used length 0;
//! * readers and writers deliver exactly the chain's bytes, in order,
//!   unless the driver rewrote the descriptors of a chain that was not
//!   captured, in which case they may fail but never exceed the totals;
//! * used entries carry the chain's id and a length clamped to its
//!   writable length; notification decisions follow the spec;
//! * fatal (`needs_reset`) ring errors are sticky while the ring is
//!   unchanged, and calls on a reset queue return errors.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use virtio_backend::spec::desc::{AVAIL, INDIRECT, NEXT, USED, WRITE};
use virtio_backend::spec::features::{EVENT_IDX, INDIRECT_DESC, RING_PACKED, VERSION_1};
use virtio_backend::spec::ring::{
    AVAIL_F_NO_INTERRUPT, EVENT_FLAGS_DESC, EVENT_FLAGS_DISABLE, EVENT_FLAGS_ENABLE,
    USED_F_NO_NOTIFY,
};
use virtio_backend::{
    CAPTURED, ChainError, DEFAULT_HELD, DescriptorChain, Element, GuestMemory, MemoryError, Queue,
    QueueError,
};
use virtio_fuzz::seed::{Enc, encode, variant};
use virtio_fuzz::{
    ARENA_BASE, ARENA_SIZE, Arena, Driver, HALF, Layout, Ranges, Tracked, Views, Which, arena_addr,
    enc_struct, maybe_write_seeds,
};

/// The queue's maximum size (split sizes are powers of two up to it).
const MAX_SIZE: u16 = 256;
/// Largest packed ring the input selects directly.
const MAX_PACKED: u16 = 128;
const MAX_OPS: usize = 256;
const MAX_OUTSTANDING: usize = 64;
const MAX_CHUNKS: usize = 16;
const MAX_BYTES: usize = 64;

#[derive(Arbitrary, Debug, PartialEq)]
pub struct Input {
    pub packed: bool,
    pub event_idx: bool,
    pub indirect: bool,
    /// Use the two-region table instead of one window.
    pub regions: bool,
    /// Split: `1 << (size % 9)`; packed: `1 + size % 128`; with bit 15
    /// set, the low 15 bits verbatim (mostly refused by `enable`).
    pub size: u16,
    pub layout: LayoutSel,
    pub ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum LayoutSel {
    /// The areas one after another, from `16 * (at % 64)` into the arena.
    Contiguous { at: u8 },
    /// Each area at an arena offset of its own (may overlap, misalign).
    Raw { desc: u16, driver: u16, device: u16 },
}

#[derive(Arbitrary, Debug, PartialEq, Clone, Copy)]
pub struct BufSpec {
    pub addr: u16,
    pub len: u16,
    pub writable: bool,
}

#[derive(Arbitrary, Debug, PartialEq, Clone, Copy)]
pub enum AddrSel {
    /// An arena offset (see `arena_addr`).
    Arena(u16),
    /// Any driver address.
    Raw(u64),
}

#[derive(Arbitrary, Debug, PartialEq, Clone, Copy)]
pub enum ChunkKind {
    Read,
    Skip,
    Exact,
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Op {
    // ---- driver ----
    /// A well-formed chain (or indirect table at an arena offset).
    AddChain {
        bufs: Vec<BufSpec>,
        table: Option<u16>,
        publish: bool,
    },
    /// Split: put `head` in the available ring and bump `avail.idx`.
    /// Packed: mark slot `head % size` available with the driver's wrap.
    Publish {
        head: u16,
    },
    /// A descriptor verbatim: `w0, w1` are `flags, next` (split) or
    /// `id, flags` (packed).
    WriteDesc {
        index: u16,
        addr: AddrSel,
        len: u32,
        w0: u16,
        w1: u16,
    },
    /// A 16-bit word at an even offset into one of the three areas
    /// (`area % 3`): indices, flags, ring entries, event words.
    WriteU16 {
        area: u8,
        off: u16,
        value: u16,
    },
    /// Arbitrary bytes anywhere in the arena.
    WriteBytes {
        at: u16,
        bytes: Vec<u8>,
    },
    /// Split: `avail.flags` and `used_event`; packed: the driver event
    /// suppression structure.
    SetEvent {
        value: u16,
        flags: u16,
    },
    /// Re-lays the ring (zeroed) and restarts the driver's counters.
    DriverReset,
    /// Withdraws / restores the upper half of the arena (region mode).
    Unmap,
    Remap,
    // ---- device ----
    Pop,
    /// Pops everything, echoing readable bytes into writable ones.
    PopAll,
    Read {
        chain: u8,
        chunks: Vec<(ChunkKind, u16)>,
    },
    Write {
        chain: u8,
        chunks: Vec<(bool, u16)>,
    },
    AddUsed {
        chain: u8,
        len: u32,
    },
    Elements {
        chain: u8,
    },
    NeedsNotification,
    EnableNotification,
    DisableNotification,
    HasAvailable,
    SetAvailBase(u16),
    Reset,
    /// Configures the queue again (same layout) and enables it.
    Enable,
    /// Setters must be ignored while the queue is enabled.
    SetWhileReady {
        value: u16,
    },
}

enc_struct!(Input {
    packed,
    event_idx,
    indirect,
    regions,
    size,
    layout,
    ops
});
enc_struct!(BufSpec {
    addr,
    len,
    writable
});

impl Enc for LayoutSel {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            LayoutSel::Contiguous { at } => {
                variant(out, 0, 2);
                at.enc(out);
            }
            LayoutSel::Raw {
                desc,
                driver,
                device,
            } => {
                variant(out, 1, 2);
                desc.enc(out);
                driver.enc(out);
                device.enc(out);
            }
        }
    }
}

impl Enc for AddrSel {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            AddrSel::Arena(o) => {
                variant(out, 0, 2);
                o.enc(out);
            }
            AddrSel::Raw(a) => {
                variant(out, 1, 2);
                a.enc(out);
            }
        }
    }
}

impl Enc for ChunkKind {
    fn enc(&self, out: &mut Vec<u8>) {
        let k = match self {
            ChunkKind::Read => 0,
            ChunkKind::Skip => 1,
            ChunkKind::Exact => 2,
        };
        variant(out, k, 3);
    }
}

const N_OPS: u32 = 23;

impl Enc for Op {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            Op::AddChain {
                bufs,
                table,
                publish,
            } => {
                variant(out, 0, N_OPS);
                bufs.enc(out);
                table.enc(out);
                publish.enc(out);
            }
            Op::Publish { head } => {
                variant(out, 1, N_OPS);
                head.enc(out);
            }
            Op::WriteDesc {
                index,
                addr,
                len,
                w0,
                w1,
            } => {
                variant(out, 2, N_OPS);
                index.enc(out);
                addr.enc(out);
                len.enc(out);
                w0.enc(out);
                w1.enc(out);
            }
            Op::WriteU16 { area, off, value } => {
                variant(out, 3, N_OPS);
                area.enc(out);
                off.enc(out);
                value.enc(out);
            }
            Op::WriteBytes { at, bytes } => {
                variant(out, 4, N_OPS);
                at.enc(out);
                bytes.enc(out);
            }
            Op::SetEvent { value, flags } => {
                variant(out, 5, N_OPS);
                value.enc(out);
                flags.enc(out);
            }
            Op::DriverReset => variant(out, 6, N_OPS),
            Op::Unmap => variant(out, 7, N_OPS),
            Op::Remap => variant(out, 8, N_OPS),
            Op::Pop => variant(out, 9, N_OPS),
            Op::PopAll => variant(out, 10, N_OPS),
            Op::Read { chain, chunks } => {
                variant(out, 11, N_OPS);
                chain.enc(out);
                chunks.enc(out);
            }
            Op::Write { chain, chunks } => {
                variant(out, 12, N_OPS);
                chain.enc(out);
                chunks.enc(out);
            }
            Op::AddUsed { chain, len } => {
                variant(out, 13, N_OPS);
                chain.enc(out);
                len.enc(out);
            }
            Op::Elements { chain } => {
                variant(out, 14, N_OPS);
                chain.enc(out);
            }
            Op::NeedsNotification => variant(out, 15, N_OPS),
            Op::EnableNotification => variant(out, 16, N_OPS),
            Op::DisableNotification => variant(out, 17, N_OPS),
            Op::HasAvailable => variant(out, 18, N_OPS),
            Op::SetAvailBase(b) => {
                variant(out, 19, N_OPS);
                b.enc(out);
            }
            Op::Reset => variant(out, 20, N_OPS),
            Op::Enable => variant(out, 21, N_OPS),
            Op::SetWhileReady { value } => {
                variant(out, 22, N_OPS);
                value.enc(out);
            }
        }
    }
}

// ---------------------------------------------------------------------
// Reference model of descriptor chains (an independent walk).

#[derive(Debug, Clone, Copy)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    /// Split: next. Packed: id.
    other: u16,
}

fn read_desc<M: GuestMemory>(mem: &M, at: u64, packed: bool) -> Option<Desc> {
    let mut b = [0u8; 16];
    mem.read(at, &mut b).ok()?;
    let addr = u64::from_le_bytes(b[..8].try_into().unwrap());
    let len = u32::from_le_bytes(b[8..12].try_into().unwrap());
    let w0 = u16::from_le_bytes([b[12], b[13]]);
    let w1 = u16::from_le_bytes([b[14], b[15]]);
    Some(if packed {
        Desc {
            addr,
            len,
            flags: w1,
            other: w0,
        }
    } else {
        Desc {
            addr,
            len,
            flags: w0,
            other: w1,
        }
    })
}

/// What the reference walk found: the elements, and the descriptor bytes
/// it read (ring or table slots, and indirect tables, kept apart).
#[derive(Debug, Default)]
struct Walk {
    elems: Vec<Element>,
    slots: Ranges,
    tables: Ranges,
}

impl Walk {
    fn push<M: GuestMemory>(
        &mut self,
        mem: &M,
        d: &Desc,
        seen_w: &mut bool,
        total: &mut u64,
    ) -> Option<()> {
        let writable = d.flags & WRITE != 0;
        if !writable && *seen_w {
            return None;
        }
        *seen_w |= writable;
        *total += u64::from(d.len);
        if *total > u64::from(u32::MAX) {
            return None;
        }
        if d.len > 0 {
            mem.check_range(d.addr, u64::from(d.len), 1).ok()?;
        }
        self.elems.push(Element {
            addr: d.addr,
            len: d.len,
            writable,
        });
        Some(())
    }

    /// Checks an indirect descriptor; returns the number of entries.
    fn table<M: GuestMemory>(&mut self, mem: &M, d: &Desc, size: u16, ok: bool) -> Option<u32> {
        if !ok || d.flags & NEXT != 0 || d.len == 0 || !d.len.is_multiple_of(16) {
            return None;
        }
        let entries = d.len / 16;
        if entries > u32::from(size) {
            return None;
        }
        mem.check_range(d.addr, u64::from(d.len), 1).ok()?;
        self.tables.add(d.addr, u64::from(d.len));
        Some(entries)
    }
}

/// Split ring chain from `head` (virtio v1.2 §2.7.5, §2.7.5.3).
fn walk_split<M: GuestMemory>(
    mem: &M,
    table: u64,
    size: u16,
    head: u16,
    indirect: bool,
) -> Option<Walk> {
    let mut w = Walk::default();
    let (mut seen_w, mut total) = (false, 0u64);
    let mut at = head;
    let mut visited = 0u32;
    loop {
        let a = table + 16 * u64::from(at);
        w.slots.add(a, 16);
        let d = read_desc(mem, a, false)?;
        visited += 1;
        if d.flags & INDIRECT != 0 {
            let entries = w.table(mem, &d, size, indirect)?;
            let mut i = 0u32;
            let mut v = 0u32;
            loop {
                let e = read_desc(mem, d.addr + 16 * u64::from(i), false)?;
                v += 1;
                if e.flags & INDIRECT != 0 {
                    return None;
                }
                w.push(mem, &e, &mut seen_w, &mut total)?;
                if e.flags & NEXT == 0 {
                    return Some(w);
                }
                if u32::from(e.other) >= entries || v >= entries {
                    return None;
                }
                i = u32::from(e.other);
            }
        }
        w.push(mem, &d, &mut seen_w, &mut total)?;
        if d.flags & NEXT == 0 {
            return Some(w);
        }
        if d.other >= size || visited >= u32::from(size) {
            return None;
        }
        at = d.other;
    }
}

/// Packed ring list of `slots` descriptors from `first` (§2.8.6, §2.8.7).
fn walk_packed<M: GuestMemory>(
    mem: &M,
    ring: u64,
    size: u16,
    first: u16,
    slots: u16,
    indirect: bool,
) -> Option<Walk> {
    let mut w = Walk::default();
    let (mut seen_w, mut total) = (false, 0u64);
    let mut slot = first;
    for k in 0..slots {
        let a = ring + 16 * u64::from(slot);
        w.slots.add(a, 16);
        let d = read_desc(mem, a, true)?;
        if d.flags & INDIRECT != 0 {
            // Only a list's sole descriptor may be indirect.
            if k > 0 {
                return None;
            }
            let entries = w.table(mem, &d, size, indirect)?;
            for i in 0..entries {
                // WRITE is the only flag that counts in a packed table.
                let e = read_desc(mem, d.addr + 16 * u64::from(i), true)?;
                w.push(mem, &e, &mut seen_w, &mut total)?;
            }
            return (slots == 1).then_some(w);
        }
        w.push(mem, &d, &mut seen_w, &mut total)?;
        if d.flags & NEXT == 0 {
            return (k + 1 == slots).then_some(w);
        }
        slot = if slot + 1 == size { 0 } else { slot + 1 };
    }
    None
}

/// The arena as it was before an operation (the harness's shadow copy),
/// with the bounds the device's memory had: the reference walks run on
/// it, so writes the operation made (used entries) cannot disturb them.
struct Pre<'s> {
    bytes: &'s [u8],
    limit: u64,
}

impl Pre<'_> {
    fn at(&self, addr: u64, len: u64) -> Result<usize, MemoryError> {
        let end = addr
            .checked_add(len)
            .ok_or(MemoryError::Wraps { addr, len })?;
        if addr < ARENA_BASE || end - ARENA_BASE > self.limit {
            return Err(MemoryError::OutOfRange { addr, len });
        }
        Ok((addr - ARENA_BASE) as usize)
    }
}

impl GuestMemory for Pre<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let o = self.at(addr, buf.len() as u64)?;
        buf.copy_from_slice(&self.bytes[o..o + buf.len()]);
        Ok(())
    }
    fn write(&self, addr: u64, _data: &[u8]) -> Result<(), MemoryError> {
        Err(MemoryError::OutOfRange { addr, len: 0 })
    }
    fn load_u16_acquire(&self, addr: u64) -> Result<u16, MemoryError> {
        let mut b = [0u8; 2];
        self.read(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    fn store_u16_release(&self, addr: u64, _value: u16) -> Result<(), MemoryError> {
        Err(MemoryError::OutOfRange { addr, len: 0 })
    }
    fn check_range(&self, addr: u64, len: u64, _align: u64) -> Result<(), MemoryError> {
        self.at(addr, len).map(|_| ())
    }
}

// ---------------------------------------------------------------------
// Harness state.

/// A chain the device holds.
struct Held {
    chain: DescriptorChain,
    /// Popped before the last reset or enable.
    stale: bool,
    walk: Walk,
    /// Something other than the queue's own used-ring writes (the driver,
    /// a data write, a withdrawn region, an overlapping area) may have
    /// changed the descriptors since the pop: readers and writers of a
    /// chain that was not captured may then fail.
    foreign: bool,
    /// The writable buffers overlap each other (content not checkable).
    aliased: bool,
}

impl Held {
    fn strict(&self) -> bool {
        !self.stale && (self.chain.is_captured() || !self.foreign)
    }
    fn readable(&self) -> impl Iterator<Item = &Element> {
        self.walk.elems.iter().filter(|e| !e.writable)
    }
    fn writable(&self) -> impl Iterator<Item = &Element> {
        self.walk.elems.iter().filter(|e| e.writable)
    }
}

struct Model {
    ready: bool,
    /// Split: free-running used index. Packed: used slot.
    next_used: u16,
    used_wrap: bool,
    /// Used entries (split) or slots (packed) since the last decision.
    pending: u32,
    /// Split EVENT_IDX: used index at the last decision.
    signalled: Option<u16>,
    /// Packed: used position at the last decision.
    last_pos: (u16, bool),
    /// The notification model is exact (not after a jump of the used
    /// position on a packed ring, or after a fatal error).
    exact: bool,
    /// A fatal error happened: used-entry checks are off.
    broken: bool,
}

impl Model {
    fn new(ready: bool) -> Self {
        Model {
            ready,
            next_used: 0,
            used_wrap: true,
            pending: 0,
            signalled: None,
            last_pos: (0, true),
            exact: true,
            broken: false,
        }
    }
}

struct Harness<'v, 'a> {
    views: &'v mut Views<'a>,
    regions: bool,
    features: u64,
    layout: Layout,
    /// The size written to the queue (may be one `enable` refuses).
    size: u16,
    q: Queue,
    m: Model,
    held: Vec<Held>,
    driver: Driver,
    shadow: Vec<u8>,
    scratch: Vec<u8>,
}

/// The device's memory for one operation (borrows only the views, so the
/// queue can be borrowed mutably beside it).
macro_rules! mem {
    ($h:expr) => {
        Tracked::new(which(&*$h.views, $h.regions))
    };
}

fn which<'v, 'a>(views: &'v Views<'a>, regions: bool) -> Which<'v, 'a> {
    if regions {
        Which::Regions(&views.regions)
    } else {
        Which::Window(&views.window)
    }
}

/// Where one operation may write.
#[derive(Default)]
struct Allow {
    ranges: Ranges,
    /// Packed used descriptors: bytes 8..16 of any slot of this ring.
    packed_used: Option<(u64, u16)>,
}

impl Allow {
    fn permits(&self, addr: u64, len: u64) -> bool {
        if let Some((ring, size)) = self.packed_used
            && addr >= ring
        {
            let off = addr - ring;
            if off + len <= 16 * u64::from(size) && off % 16 >= 8 && off % 16 + len <= 16 {
                return true;
            }
        }
        self.ranges.covers(addr, len)
    }
}

/// `need_event` of virtio v1.2 §2.7.7.2, written out independently:
/// notify iff `event` is one of `old, old + 1, ..., new - 1` (mod 2^16).
fn in_window(event: u16, new: u16, old: u16) -> bool {
    event.wrapping_sub(old) < new.wrapping_sub(old)
}

impl<'a> Harness<'_, 'a> {
    /// Bytes of the arena the device can reach now.
    fn limit(&self) -> u64 {
        if self.regions && !self.views.upper_mapped() {
            HALF as u64
        } else {
            ARENA_SIZE as u64
        }
    }

    /// Whether the device sees all of the arena.
    fn whole(&self) -> bool {
        self.limit() == ARENA_SIZE as u64
    }

    fn n(&self) -> u64 {
        u64::from(self.layout.size)
    }

    fn read_u16(&self, at: u64) -> Option<u16> {
        self.views.window.load_u16_acquire(at).ok()
    }

    /// Bound on memory calls for one queue call.
    fn bound(&self) -> u64 {
        16 * u64::from(self.size.max(1)) + 64
    }

    fn used_allow(&self) -> Allow {
        let mut a = Allow::default();
        if self.layout.packed {
            a.packed_used = Some((self.layout.desc, self.layout.size));
        } else {
            a.ranges.add(self.layout.device + 2, 2 + 8 * self.n());
        }
        a
    }

    /// Checks the writes of one device operation against `allow`, both as
    /// recorded and as seen in the arena, then marks the chains whose
    /// descriptors the writes may have changed. `used` says the writes
    /// were the queue's own used-ring writes.
    fn settle(&mut self, writes: &[(u64, u64)], allow: &Allow, used: bool, what: &str) {
        for &(a, l) in writes {
            assert!(
                allow.permits(a, l),
                "{what}: device wrote {l} bytes at {a:#x} outside where it may"
            );
        }
        // Memory only changes through writes (the raw copies behind them
        // are what the snapshot double-checks), so skip it otherwise.
        if writes.is_empty() {
            return;
        }
        self.views.snapshot(&mut self.scratch);
        if self.scratch != self.shadow {
            for (i, (x, y)) in self.shadow.iter().zip(&self.scratch).enumerate() {
                if x != y {
                    let a = ARENA_BASE + i as u64;
                    assert!(
                        allow.permits(a, 1),
                        "{what}: arena byte {a:#x} changed outside where the device may write"
                    );
                    assert!(
                        writes.iter().any(|&(w, l)| a >= w && a - w < l),
                        "{what}: arena byte {a:#x} changed without a recorded write"
                    );
                }
            }
            std::mem::swap(&mut self.scratch, &mut self.shadow);
        }
        let packed = self.layout.packed;
        for h in &mut self.held {
            for &(a, l) in writes {
                let slots = h.walk.slots.overlaps(a, l);
                let tables = h.walk.tables.overlaps(a, l);
                // A packed ring's used descriptors go into ring slots, also
                // those of lists the device still holds (out-of-order
                // completion, virtio v1.2 §2.8.6): the queue must cope with
                // its own writes, so they never excuse a failing reader.
                let legit = used && packed && !tables;
                if (slots || tables) && !legit {
                    h.foreign = true;
                }
            }
        }
    }

    /// After a driver write: refresh the shadow, mark touched chains.
    fn driver_wrote(&mut self, writes: &[(u64, u64)]) {
        for h in &mut self.held {
            if writes
                .iter()
                .any(|&(a, l)| h.walk.slots.overlaps(a, l) || h.walk.tables.overlaps(a, l))
            {
                h.foreign = true;
            }
        }
        if !writes.is_empty() {
            self.views.snapshot(&mut self.shadow);
        }
    }

    fn pick(&self, i: u8) -> Option<usize> {
        (!self.held.is_empty()).then(|| usize::from(i) % self.held.len())
    }

    fn configure(&mut self) {
        let l = self.layout;
        self.q.set_size(self.size);
        self.q.set_desc_table_address(l.desc);
        self.q.set_avail_ring_address(l.driver);
        self.q.set_used_ring_address(l.device);
    }

    fn enable(&mut self) {
        let was_ready = self.q.ready();
        self.configure();
        let mem = mem!(self);
        let r = self.q.enable(&mem, self.features);
        let (writes, calls) = mem.take();
        drop(mem);
        assert!(calls <= 8, "enable: {calls} memory calls");
        self.settle(&writes, &Allow::default(), false, "enable");
        if was_ready && self.whole() {
            assert!(
                r.is_ok(),
                "re-enable of an enabled queue with its own config"
            );
        }
        if r.is_ok() {
            let l = self.layout;
            assert!(self.q.ready());
            assert_eq!(self.q.addresses(), (l.desc, l.driver, l.device));
            assert_eq!(self.q.is_packed(), l.packed);
            assert_eq!(self.q.avail_base(), if l.packed { 0x8000 } else { 0 });
            for h in &mut self.held {
                h.stale = true;
            }
            self.m = Model::new(true);
        } else {
            assert_eq!(self.q.ready(), was_ready);
        }
    }

    /// Checks the used entry the last completion wrote, and advances the
    /// model's used position.
    fn check_used_entry(&mut self, id: u16, len: u32, slots: u16) {
        let l = self.layout;
        if self.m.broken {
            // Positions are unknown after a fatal error; the count of
            // completions since the last decision is still exact.
            self.m.pending += if l.packed { u32::from(slots) } else { 1 };
            return;
        }
        if l.packed {
            let at = l.desc + 16 * u64::from(self.m.next_used);
            let mut b = [0u8; 8];
            self.views.window.read(at + 8, &mut b).unwrap();
            let got_len = u32::from_le_bytes(b[..4].try_into().unwrap());
            let got_id = u16::from_le_bytes([b[4], b[5]]);
            let flags = u16::from_le_bytes([b[6], b[7]]);
            assert_eq!((got_id, got_len), (id, len), "packed used descriptor");
            let mut want = if self.m.used_wrap { AVAIL | USED } else { 0 };
            if len > 0 {
                want |= WRITE;
            }
            assert_eq!(flags, want, "packed used flags");
            let next = u32::from(self.m.next_used) + u32::from(slots);
            if next >= u32::from(l.size) {
                self.m.next_used = (next - u32::from(l.size)) as u16;
                self.m.used_wrap = !self.m.used_wrap;
            } else {
                self.m.next_used = next as u16;
            }
            self.m.pending += u32::from(slots);
        } else {
            let slot = u64::from(self.m.next_used % l.size);
            let at = l.device + 4 + 8 * slot;
            let mut b = [0u8; 8];
            self.views.window.read(at, &mut b).unwrap();
            let got_id = u32::from_le_bytes(b[..4].try_into().unwrap());
            let got_len = u32::from_le_bytes(b[4..].try_into().unwrap());
            assert_eq!(
                (got_id, got_len),
                (u32::from(id), len),
                "split used element"
            );
            self.m.next_used = self.m.next_used.wrapping_add(1);
            assert_eq!(
                self.read_u16(l.device + 2),
                Some(self.m.next_used),
                "used.idx"
            );
            self.m.pending += 1;
        }
    }

    /// Whether the device sees buffers available, per the ring in memory.
    fn avail_now(&self) -> Option<bool> {
        let base = self.q.avail_base();
        if self.layout.packed {
            let slot = base & 0x7fff;
            let wrap = base & 0x8000 != 0;
            let flags = self.read_u16(self.layout.desc + 16 * u64::from(slot) + 14)?;
            Some((flags & AVAIL != 0) == wrap && (flags & USED != 0) != wrap)
        } else {
            Some(self.read_u16(self.layout.driver + 2)? != base)
        }
    }

    /// Pops one chain and checks everything about it. Returns whether a
    /// chain was popped.
    fn pop(&mut self) -> bool {
        let before = self.q.avail_base();
        let mem = mem!(self);
        let r = self.q.pop_descriptor_chain(&mem);
        let (writes, calls) = mem.take();
        drop(mem);
        assert!(calls <= self.bound(), "pop: {calls} memory calls");
        let after = self.q.avail_base();
        let l = self.layout;
        let size = self.size.max(1);
        // Ring slots (packed) the pop consumed.
        let slots = if l.packed {
            let (s0, s1) = (before & 0x7fff, after & 0x7fff);
            let d = (s1 + size - s0) % size;
            if d == 0 && before != after { size } else { d }
        } else {
            0
        };
        let indirect = self.features & INDIRECT_DESC != 0;
        // The reference walk of whatever was popped, on the memory the
        // pop saw.
        let head = match &r {
            Ok(Some(c)) => Some(c.id()),
            Err(QueueError::InvalidChain { id, .. }) => Some(*id),
            _ => None,
        };
        let walk = head.and_then(|head| {
            let pre = Pre {
                bytes: &self.shadow,
                limit: self.limit(),
            };
            if l.packed {
                walk_packed(&pre, l.desc, l.size, before & 0x7fff, slots, indirect)
            } else {
                walk_split(&pre, l.desc, l.size, head, indirect)
            }
        });
        let last_id = (l.packed && slots > 0).then(|| {
            let last = (u32::from(before & 0x7fff) + u32::from(slots) - 1) % u32::from(size);
            let at = (l.desc + 16 * u64::from(last) + 12 - ARENA_BASE) as usize;
            u16::from_le_bytes([self.shadow[at], self.shadow[at + 1]])
        });
        let allow = if matches!(r, Err(QueueError::InvalidChain { .. })) {
            self.used_allow()
        } else {
            Allow::default()
        };
        self.settle(&writes, &allow, true, "pop");
        match r {
            Err(QueueError::NotReady) => {
                assert!(!self.m.ready);
                false
            }
            Ok(None) => {
                assert_eq!(before, after);
                assert_eq!(
                    self.avail_now(),
                    Some(false),
                    "Ok(None) with buffers available"
                );
                false
            }
            Ok(Some(c)) => {
                assert!(self.m.ready);
                if l.packed {
                    assert!(slots > 0);
                    // The id comes from the last descriptor of the list.
                    assert_eq!(Some(c.id()), last_id, "packed buffer id");
                } else {
                    assert_eq!(after, before.wrapping_add(1));
                    assert!(c.id() < l.size);
                }
                let walk = walk
                    .unwrap_or_else(|| panic!("popped a chain the reference walk refuses: {c:?}"));
                // Long direct packed lists are copied into the queue's
                // store; the ring no longer describes them, so their
                // elements are checked through the queue's readers and
                // writers instead.
                let long_direct =
                    l.packed && walk.tables.0.is_empty() && walk.elems.len() > CAPTURED;
                assert_eq!(c.is_held_by_queue(), long_direct, "held by the queue");
                if long_direct {
                    assert_eq!(
                        c.elements(&self.views.window).next(),
                        Some(Err(ChainError::HeldByQueue))
                    );
                } else {
                    let lib: Vec<Element> = c
                        .elements(&self.views.window)
                        .collect::<Result<_, _>>()
                        .expect("fresh chain walks");
                    assert_eq!(lib, walk.elems, "elements disagree with the reference walk");
                }
                let sum = |w: bool| -> u64 {
                    walk.elems
                        .iter()
                        .filter(|e| e.writable == w)
                        .map(|e| u64::from(e.len))
                        .sum()
                };
                assert_eq!(u64::from(c.readable_len()), sum(false), "readable_len");
                assert_eq!(u64::from(c.writable_len()), sum(true), "writable_len");
                assert_eq!(c.is_captured(), walk.elems.len() <= CAPTURED || long_direct);
                let mut held = Held {
                    chain: c,
                    stale: false,
                    walk,
                    foreign: false,
                    aliased: false,
                };
                let ws: Vec<Element> = held.writable().copied().collect();
                for (i, e) in ws.iter().enumerate() {
                    let (a, n) = (e.addr, u64::from(e.len));
                    if held.walk.slots.overlaps(a, n) || held.walk.tables.overlaps(a, n) {
                        // Writing the chain's data may rewrite the chain.
                        held.foreign = true;
                    }
                    if ws[i + 1..].iter().any(|f| {
                        a < f.addr.saturating_add(u64::from(f.len)) && f.addr < a.saturating_add(n)
                    }) {
                        held.aliased = true;
                    }
                }
                if self.held.len() >= MAX_OUTSTANDING {
                    let old = self.held.swap_remove(0);
                    self.complete(old, u32::MAX);
                }
                self.held.push(held);
                true
            }
            Err(QueueError::InvalidChain { id, error }) => {
                assert!(self.m.ready);
                assert!(!matches!(
                    error,
                    ChainError::Short { .. } | ChainError::Changed
                ));
                if l.packed {
                    assert!(slots > 0);
                    assert_eq!(Some(id), last_id, "packed buffer id");
                } else {
                    assert_eq!(after, before.wrapping_add(1));
                }
                if let ChainError::HeldListsFull { needed, free } = error {
                    // Only when the lists the queue holds leave no room.
                    let walk = walk.expect("HeldListsFull for a chain the walk refuses");
                    assert!(l.packed && walk.tables.0.is_empty());
                    assert_eq!(usize::from(needed), walk.elems.len());
                    assert!(walk.elems.len() > CAPTURED);
                    let held: usize = self
                        .held
                        .iter()
                        .filter(|h| !h.stale && h.chain.is_held_by_queue())
                        .map(|h| h.walk.elems.len())
                        .sum();
                    assert_eq!(free, DEFAULT_HELD - held, "free entries in the store");
                    assert!(usize::from(needed) > free);
                } else {
                    assert!(
                        walk.is_none(),
                        "InvalidChain {error:?} for a chain the reference walk accepts"
                    );
                }
                self.check_used_entry(id, 0, slots.max(1));
                false
            }
            Err(e) => {
                assert!(e.needs_reset(), "unexpected pop error {e:?}");
                if !matches!(e, QueueError::Ring(_)) {
                    // Sticky while nothing changes.
                    let mem = mem!(self);
                    let again = self.q.pop_descriptor_chain(&mem);
                    let (writes, _) = mem.take();
                    drop(mem);
                    self.settle(&writes, &Allow::default(), true, "pop again");
                    assert_eq!(again.err(), Some(e), "fatal pop error not sticky");
                    assert_eq!(self.q.avail_base(), before);
                }
                self.m.broken = true;
                self.m.exact = false;
                false
            }
        }
    }

    /// Whether the three areas overlap (a hostile layout).
    fn overlapping_areas(&self) -> bool {
        let l = self.layout;
        let a = [
            (l.desc, 16 * self.n()),
            (l.driver, l.driver_len()),
            (l.device, l.device_len()),
        ];
        (0..3).any(|i| (i + 1..3).any(|j| a[i].0 < a[j].0 + a[j].1 && a[j].0 < a[i].0 + a[i].1))
    }

    fn complete(&mut self, h: Held, len: u32) {
        let mem = mem!(self);
        let id = h.chain.id();
        let writable = h.chain.writable_len();
        let slots = h.walk.slots.0.len() as u16;
        let r = self.q.add_used(&mem, h.chain, len);
        let (writes, calls) = mem.take();
        drop(mem);
        assert!(calls <= 4, "add_used: {calls} memory calls");
        self.settle(&writes, &self.used_allow(), true, "add_used");
        match r {
            Ok(()) => {
                assert!(!h.stale && self.m.ready, "stale chain completed");
                self.check_used_entry(id, len.min(writable), slots);
            }
            Err(QueueError::NotReady) => assert!(!self.m.ready),
            Err(QueueError::StaleChain) => assert!(h.stale && self.m.ready),
            Err(e) => {
                assert!(e.needs_reset() && self.regions, "add_used: {e:?}");
                self.m.broken = true;
                self.m.exact = false;
            }
        }
    }

    fn read(&mut self, i: usize, chunks: &[(ChunkKind, u16)]) {
        let h = &self.held[i];
        let strict = h.strict() && self.whole();
        // The bytes the reader must deliver (as far as the chunks reach).
        let mut expect = Vec::new();
        if strict {
            for e in h.readable() {
                let at = expect.len();
                if at >= MAX_CHUNKS * 4096 {
                    break;
                }
                if e.len == 0 {
                    continue;
                }
                expect.resize(at + e.len as usize, 0);
                self.views
                    .window
                    .read(e.addr, &mut expect[at..])
                    .expect("validated buffer");
            }
        }
        let total = h.chain.readable_len() as usize;
        let mem = mem!(self);
        let mut r = self.q.reader(&h.chain, &mem);
        assert_eq!(r.remaining(), total);
        let mut pos = 0usize;
        let mut buf = [0u8; 4096];
        for &(kind, n) in chunks.iter().take(MAX_CHUNKS) {
            let n = usize::from(n) % (buf.len() + 1);
            let rem = r.remaining();
            let res = match kind {
                ChunkKind::Read => r.read(&mut buf[..n]),
                ChunkKind::Skip => r.skip(n),
                ChunkKind::Exact => r.read_exact(&mut buf[..n]).map(|()| n),
            };
            match res {
                Ok(k) => {
                    assert!(k <= n && k <= rem, "reader gave {k} of {n} with {rem} left");
                    assert_eq!(r.remaining(), rem - k);
                    if strict {
                        assert_eq!(k, n.min(rem), "strict reader short");
                        if kind != ChunkKind::Skip {
                            assert_eq!(&buf[..k], &expect[pos..pos + k], "reader bytes");
                        }
                    }
                    pos += k;
                }
                Err(ChainError::Short { needed, available }) if kind == ChunkKind::Exact => {
                    assert_eq!((needed, available), (n, rem));
                    assert!(n > rem || !strict);
                    if strict {
                        assert_eq!(r.remaining(), 0);
                        assert_eq!(&buf[..rem], &expect[pos..pos + rem], "read_exact bytes");
                    }
                    pos += rem - r.remaining();
                }
                Err(e) => {
                    assert!(!strict, "strict reader failed: {e:?}");
                    break;
                }
            }
            assert!(pos <= total);
        }
        let (writes, calls) = mem.take();
        drop(mem);
        assert!(
            calls <= self.bound() + 4 * MAX_CHUNKS as u64,
            "reader: {calls} memory calls"
        );
        self.settle(&writes, &Allow::default(), false, "reader");
    }

    fn write(&mut self, i: usize, chunks: &[(bool, u16)]) {
        let h = &self.held[i];
        let strict = h.strict() && self.whole();
        let mut allow = Allow::default();
        for e in h.writable() {
            allow.ranges.add(e.addr, u64::from(e.len));
        }
        if !strict {
            // The chain may have changed: it may also write where a walk
            // of it now leads.
            for e in h.chain.elements(&self.views.window).map_while(Result::ok) {
                if e.writable {
                    allow.ranges.add(e.addr, u64::from(e.len));
                }
            }
        }
        let total = h.chain.writable_len() as usize;
        let mem = mem!(self);
        let mut w = self.q.writer(&h.chain, &mem);
        assert_eq!((w.remaining(), w.written()), (total, 0));
        let mut data = [0u8; 4096];
        let mut pos = 0usize;
        for &(all, n) in chunks.iter().take(MAX_CHUNKS) {
            let n = usize::from(n) % (data.len() + 1);
            for (j, b) in data[..n].iter_mut().enumerate() {
                *b = pattern(pos + j);
            }
            let rem = w.remaining();
            let res = if all {
                w.write_all(&data[..n]).map(|()| n)
            } else {
                w.write(&data[..n])
            };
            match res {
                Ok(k) => {
                    assert!(k <= n && k <= rem);
                    if strict {
                        assert_eq!(k, n.min(rem), "strict writer short");
                    }
                    pos += k;
                }
                Err(ChainError::Short { needed, available }) if all && n > rem => {
                    assert_eq!((needed, available), (n, rem));
                    assert_eq!(w.remaining(), rem, "write_all refused but wrote");
                }
                Err(e) => {
                    assert!(!strict, "strict writer failed: {e:?}");
                    pos = w.written() as usize;
                    break;
                }
            }
            assert_eq!(w.written() as usize, pos);
            assert_eq!(w.remaining(), total - pos);
        }
        let (writes, calls) = mem.take();
        drop(mem);
        assert!(
            calls <= self.bound() + 4 * MAX_CHUNKS as u64,
            "writer: {calls} memory calls"
        );
        self.settle(&writes, &allow, false, "writer");
        // The bytes landed in order across the writable buffers.
        let h = &self.held[i];
        if strict && !h.aliased {
            let mut at = 0usize;
            for e in h.writable() {
                if at >= pos {
                    break;
                }
                let k = (e.len as usize).min(pos - at);
                if k == 0 {
                    continue;
                }
                let mut got = vec![0u8; k];
                self.views.window.read(e.addr, &mut got).unwrap();
                for (j, &b) in got.iter().enumerate() {
                    assert_eq!(b, pattern(at + j), "writer byte {}", at + j);
                }
                at += k;
            }
        }
    }

    fn needs_notification(&mut self) {
        let mem = mem!(self);
        let r = self.q.needs_notification(&mem);
        let (writes, calls) = mem.take();
        drop(mem);
        assert!(calls <= 4);
        self.settle(&writes, &Allow::default(), false, "needs_notification");
        let got = match r {
            Err(QueueError::NotReady) => {
                assert!(!self.m.ready);
                return;
            }
            Err(e) => {
                assert!(e.needs_reset() && self.regions, "needs_notification: {e:?}");
                self.m.exact = false;
                self.m.pending = 0;
                return;
            }
            Ok(b) => b,
        };
        let pending = std::mem::take(&mut self.m.pending);
        if pending == 0 {
            assert!(!got, "notification with nothing used");
            return;
        }
        let pos = (self.m.next_used, self.m.used_wrap);
        let last = std::mem::replace(&mut self.m.last_pos, pos);
        let l = self.layout;
        let event_idx = self.features & EVENT_IDX != 0;
        if !self.m.exact || self.m.broken {
            self.m.exact = !self.m.broken;
            if !l.packed && event_idx {
                self.m.signalled = Some(self.m.next_used);
            }
            return;
        }
        let want = if l.packed {
            let off_wrap = self.read_u16(l.driver).unwrap();
            let flags = self.read_u16(l.driver + 2).unwrap() & 3;
            match flags {
                EVENT_FLAGS_DISABLE => Some(false),
                EVENT_FLAGS_DESC if event_idx => {
                    let (es, ew) = (off_wrap & 0x7fff, off_wrap & 0x8000 != 0);
                    if pending >= u32::from(l.size) {
                        Some(true)
                    } else {
                        // Walk the slots used since the last decision.
                        let (mut s, mut w) = last;
                        let mut hit = false;
                        for _ in 0..pending {
                            hit |= (s, w) == (es, ew);
                            s += 1;
                            if s == l.size {
                                s = 0;
                                w = !w;
                            }
                        }
                        assert_eq!((s, w), pos, "packed used position model");
                        // An offset past the ring is the driver's mistake.
                        (es < l.size).then_some(hit)
                    }
                }
                _ => Some(true),
            }
        } else if event_idx {
            let used_event = self.read_u16(l.driver + 4 + 2 * self.n()).unwrap();
            let new = self.m.next_used;
            Some(match self.m.signalled.replace(new) {
                None => true,
                Some(old) => in_window(used_event, new, old),
            })
        } else {
            let flags = self.read_u16(l.driver).unwrap();
            Some(flags & AVAIL_F_NO_INTERRUPT == 0)
        };
        if let Some(want) = want {
            assert_eq!(got, want, "notification decision (pending {pending})");
        }
    }

    fn notification(&mut self, enable: bool) {
        let l = self.layout;
        let n = self.n();
        let event_idx = self.features & EVENT_IDX != 0;
        let mut allow = Allow::default();
        if l.packed {
            allow.ranges.add(l.device, 4);
        } else if event_idx && enable {
            allow.ranges.add(l.device + 4 + 8 * n, 2);
        } else if !event_idx {
            allow.ranges.add(l.device, 2);
        }
        let mem = mem!(self);
        let r = if enable {
            self.q.enable_notification(&mem)
        } else {
            self.q.disable_notification(&mem).map(|()| false)
        };
        let (writes, calls) = mem.take();
        drop(mem);
        assert!(calls <= 6);
        self.settle(&writes, &allow, false, "notification");
        let got = match r {
            Err(QueueError::NotReady) => {
                assert!(!self.m.ready);
                return;
            }
            Err(e) => {
                assert!(e.needs_reset() && self.regions, "notification: {e:?}");
                return;
            }
            Ok(b) => b,
        };
        if self.overlapping_areas() {
            return;
        }
        let base = self.q.avail_base();
        if enable {
            assert_eq!(Some(got), self.avail_now(), "enable_notification's answer");
            if l.packed {
                let flags = self.read_u16(l.device + 2);
                if event_idx {
                    assert_eq!(flags, Some(EVENT_FLAGS_DESC));
                    assert_eq!(self.read_u16(l.device), Some(base));
                } else {
                    assert_eq!(flags, Some(EVENT_FLAGS_ENABLE));
                }
            } else if event_idx {
                assert_eq!(
                    self.read_u16(l.device + 4 + 8 * n),
                    Some(base),
                    "avail_event"
                );
            } else {
                assert_eq!(self.read_u16(l.device), Some(0), "used.flags");
            }
        } else if l.packed {
            assert_eq!(self.read_u16(l.device + 2), Some(EVENT_FLAGS_DISABLE));
        } else if !event_idx {
            assert_eq!(self.read_u16(l.device), Some(USED_F_NO_NOTIFY));
        }
    }

    fn has_available(&mut self) {
        let mem = mem!(self);
        let r = self.q.has_available(&mem);
        let (writes, calls) = mem.take();
        drop(mem);
        assert!(calls <= 2);
        self.settle(&writes, &Allow::default(), false, "has_available");
        match r {
            Ok(b) => assert_eq!(Some(b), self.avail_now(), "has_available"),
            Err(QueueError::NotReady) => assert!(!self.m.ready),
            Err(e) => assert!(e.needs_reset() && self.regions, "has_available: {e:?}"),
        }
    }

    fn set_avail_base(&mut self, base: u16) {
        let before = self.q.avail_base();
        self.q.set_avail_base(base);
        for h in &mut self.held {
            // Used entries now go where the device was told; chains it
            // still holds may be overwritten (integrator misuse).
            h.foreign = true;
        }
        let l = self.layout;
        // The layout is fixed by `enable`: a queue never enabled (or reset
        // since) is a split one.
        if self.q.is_packed() {
            if base & 0x7fff < l.size {
                assert_eq!(self.q.avail_base(), base);
                self.m.next_used = base & 0x7fff;
                self.m.used_wrap = base & 0x8000 != 0;
                self.m.exact = false;
            } else {
                assert_eq!(self.q.avail_base(), before);
            }
        } else {
            assert_eq!(self.q.avail_base(), base);
            self.m.next_used = base;
            self.m.signalled = None;
        }
    }

    /// Pops everything available, echoing readable bytes into writable
    /// ones, as a device's queue handler does.
    fn pop_all(&mut self) {
        let budget = 2 * usize::from(self.size.max(1)) + 4;
        for _ in 0..budget {
            let before = self.held.len();
            if !self.pop() {
                if self.m.broken || !self.m.ready || self.avail_now() != Some(true) {
                    return;
                }
                continue;
            }
            if self.held.len() <= before {
                continue;
            }
            let i = self.held.len() - 1;
            let rl = (self.held[i].chain.readable_len() as usize).min(4096) as u16;
            let wl = (self.held[i].chain.writable_len() as usize).min(4096) as u16;
            self.read(i, &[(ChunkKind::Read, rl)]);
            let n = wl.min(rl.max(1));
            self.write(i, &[(false, n)]);
            let h = self.held.swap_remove(i);
            self.complete(h, u32::from(n));
        }
    }

    fn driver_op(&mut self, f: impl FnOnce(&Tracked<'_, 'a>, &mut Driver, &Layout)) {
        let mem = mem!(self);
        let mut driver = self.driver.clone();
        f(&mem, &mut driver, &self.layout);
        let (w, _) = mem.take();
        drop(mem);
        self.driver = driver;
        self.driver_wrote(&w);
    }

    fn op(&mut self, op: &Op) {
        let l = self.layout;
        let size = l.size.max(1);
        let n = self.n();
        match op {
            Op::AddChain {
                bufs,
                table,
                publish,
            } => {
                let mut b: Vec<_> = bufs
                    .iter()
                    .take(usize::from(size))
                    .map(|b| (arena_addr(b.addr), u32::from(b.len), b.writable))
                    .collect();
                if b.is_empty() {
                    b.push((ARENA_BASE + 0x3000, 16, true));
                }
                let table = table.map(|t| arena_addr(t & !0xf));
                self.driver_op(|m, d, _| {
                    d.add_chain(m, &b, table, *publish);
                });
            }
            Op::Publish { head } => {
                let at = l.desc + 16 * u64::from(head % size) + 14;
                let flags = self.read_u16(at).unwrap_or(0) & !(AVAIL | USED);
                self.driver_op(|m, d, l| {
                    if l.packed {
                        let bits = if d.wrap { AVAIL } else { USED };
                        let _ = m.store_u16_release(at, flags | bits);
                    } else {
                        d.publish(m, *head);
                    }
                });
            }
            Op::WriteDesc {
                index,
                addr,
                len,
                w0,
                w1,
            } => {
                let a = match *addr {
                    AddrSel::Arena(o) => arena_addr(o),
                    AddrSel::Raw(a) => a,
                };
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&a.to_le_bytes());
                b[8..12].copy_from_slice(&len.to_le_bytes());
                b[12..14].copy_from_slice(&w0.to_le_bytes());
                b[14..].copy_from_slice(&w1.to_le_bytes());
                self.driver_op(|m, _, l| {
                    let _ = m.write(l.desc + 16 * u64::from(index % size), &b);
                });
            }
            Op::WriteU16 { area, off, value } => {
                let (base, len) = match area % 3 {
                    0 => (l.desc, 16 * n),
                    1 => (l.driver, l.driver_len()),
                    _ => (l.device, l.device_len()),
                };
                let at = (base + u64::from(*off) % len.max(2)) & !1;
                self.driver_op(|m, _, _| {
                    let _ = m.store_u16_release(at, *value);
                });
            }
            Op::WriteBytes { at, bytes } => {
                let k = bytes.len().min(MAX_BYTES);
                self.driver_op(|m, _, _| {
                    let _ = m.write(arena_addr(*at), &bytes[..k]);
                });
            }
            Op::SetEvent { value, flags } => self.driver_op(|m, _, l| {
                if l.packed {
                    let _ = m.store_u16_release(l.driver, *value);
                    let _ = m.store_u16_release(l.driver + 2, *flags);
                } else {
                    let _ = m.store_u16_release(l.driver, *flags);
                    let _ = m.store_u16_release(l.driver + 4 + 2 * n, *value);
                }
            }),
            Op::DriverReset => self.driver_op(|m, d, l| {
                *d = Driver::new(*l);
                d.zero(m);
            }),
            Op::Unmap => {
                if self.regions {
                    self.views.unmap_upper();
                    for h in &mut self.held {
                        h.foreign = true;
                    }
                }
            }
            Op::Remap => self.views.remap_upper(),
            Op::Pop => {
                self.pop();
            }
            Op::PopAll => self.pop_all(),
            Op::Read { chain, chunks } => {
                if let Some(i) = self.pick(*chain) {
                    self.read(i, chunks);
                }
            }
            Op::Write { chain, chunks } => {
                if let Some(i) = self.pick(*chain) {
                    self.write(i, chunks);
                }
            }
            Op::AddUsed { chain, len } => {
                if let Some(i) = self.pick(*chain) {
                    let h = self.held.swap_remove(i);
                    self.complete(h, *len);
                }
            }
            Op::Elements { chain } => {
                if let Some(i) = self.pick(*chain) {
                    let h = &self.held[i];
                    let exact =
                        h.strict() && !h.chain.is_captured() && self.limit() == ARENA_SIZE as u64;
                    let mem = mem!(self);
                    let mut got = Vec::new();
                    let mut failed = false;
                    for e in h.chain.elements(&mem) {
                        match e {
                            Ok(e) => got.push(e),
                            Err(_) => failed = true,
                        }
                        assert!(
                            got.len() <= 2 * usize::from(size) + 1,
                            "element walk too long"
                        );
                    }
                    if exact {
                        assert!(!failed, "re-walk of an unchanged chain failed");
                        assert_eq!(got, h.walk.elems, "re-walk of an unchanged chain");
                    }
                    let (writes, calls) = mem.take();
                    drop(mem);
                    assert!(calls <= self.bound());
                    self.settle(&writes, &Allow::default(), false, "elements");
                }
            }
            Op::NeedsNotification => self.needs_notification(),
            Op::EnableNotification => self.notification(true),
            Op::DisableNotification => self.notification(false),
            Op::HasAvailable => self.has_available(),
            Op::SetAvailBase(b) => self.set_avail_base(*b),
            Op::Reset => {
                self.q.reset();
                assert!(!self.q.ready());
                assert_eq!(self.q.size(), MAX_SIZE);
                assert_eq!(self.q.addresses(), (0, 0, 0));
                for h in &mut self.held {
                    h.stale = true;
                }
                self.m = Model::new(false);
            }
            Op::Enable => self.enable(),
            Op::SetWhileReady { value } => {
                if self.q.ready() {
                    let before = (self.q.size(), self.q.addresses());
                    let v = u64::from(*value);
                    self.q.set_size(*value);
                    self.q.set_desc_table_address(v);
                    self.q.set_avail_ring_address(v);
                    self.q.set_used_ring_address(v);
                    assert_eq!((self.q.size(), self.q.addresses()), before);
                }
            }
        }
    }
}

fn run(input: &Input) {
    let packed = input.packed;
    let size = if input.size & 0x8000 != 0 {
        input.size & 0x7fff
    } else if packed {
        1 + input.size % MAX_PACKED
    } else {
        1 << (input.size % 9)
    };
    let mut layout = match input.layout {
        LayoutSel::Contiguous { at } => {
            Layout::contiguous(ARENA_BASE + 16 * u64::from(at % 64), packed, size)
        }
        LayoutSel::Raw {
            desc,
            driver,
            device,
        } => Layout {
            packed,
            size,
            desc: arena_addr(desc),
            driver: arena_addr(driver),
            device: arena_addr(device),
        },
    };
    // The areas of a ring `enable` refuses still get used by driver ops;
    // keep their arithmetic in range.
    layout.size = layout.size.clamp(1, MAX_SIZE);
    let mut features = VERSION_1;
    if packed {
        features |= RING_PACKED;
    }
    if input.event_idx {
        features |= EVENT_IDX;
    }
    if input.indirect {
        features |= INDIRECT_DESC;
    }
    let mut arena = Arena::new();
    let mut views = arena.views();
    let mut shadow = Vec::new();
    views.snapshot(&mut shadow);
    let mut h = Harness {
        views: &mut views,
        regions: input.regions,
        features,
        layout,
        size,
        q: Queue::new(MAX_SIZE),
        m: Model::new(false),
        held: Vec::new(),
        driver: Driver::new(layout),
        shadow,
        scratch: Vec::new(),
    };
    assert!(!h.q.ready());
    h.enable();
    for op in input.ops.iter().take(MAX_OPS) {
        h.op(op);
        if !h.q.ready() {
            // Every queue call on a disabled queue is an error.
            let mem = mem!(h);
            assert_eq!(
                h.q.pop_descriptor_chain(&mem).err(),
                Some(QueueError::NotReady)
            );
            assert_eq!(
                h.q.needs_notification(&mem).err(),
                Some(QueueError::NotReady)
            );
            assert_eq!(h.q.has_available(&mem).err(), Some(QueueError::NotReady));
            assert_eq!(
                h.q.disable_notification(&mem).err(),
                Some(QueueError::NotReady)
            );
            let (w, _) = mem.take();
            assert!(w.is_empty());
        }
    }
    // Return everything; stale chains must be refused.
    while let Some(held) = h.held.pop() {
        h.complete(held, 0);
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let buf = |addr: u16, len: u16, writable: bool| BufSpec {
        addr,
        len,
        writable,
    };
    let chain = |bufs: Vec<BufSpec>, table: Option<u16>| Op::AddChain {
        bufs,
        table,
        publish: true,
    };
    let rw = || {
        vec![
            Op::Read {
                chain: 0,
                chunks: vec![
                    (ChunkKind::Read, 3),
                    (ChunkKind::Skip, 2),
                    (ChunkKind::Exact, 100),
                ],
            },
            Op::Write {
                chain: 0,
                chunks: vec![(false, 5), (true, 7), (false, 4000)],
            },
        ]
    };
    let long: Vec<BufSpec> = (0..6)
        .map(|i| buf(0x2000 + 0x40 * i, 0x30, i >= 3))
        .collect();
    let mut out = Vec::new();
    for packed in [false, true] {
        for (event_idx, indirect) in [(false, false), (true, true)] {
            let mut ops = vec![chain(
                vec![buf(0x2000, 16, false), buf(0x2100, 32, true)],
                None,
            )];
            ops.extend(rw());
            ops.extend([
                Op::AddUsed { chain: 0, len: 99 },
                Op::NeedsNotification,
                chain(long.clone(), None),
                chain(
                    vec![buf(0x2800, 8, false), buf(0x2900, 64, true)],
                    Some(0x3800),
                ),
                Op::Pop,
                Op::Pop,
                Op::AddUsed { chain: 1, len: 8 },
            ]);
            ops.extend(rw());
            ops.extend([
                Op::Elements { chain: 0 },
                Op::AddUsed { chain: 0, len: 1 },
                Op::SetEvent { value: 2, flags: 2 },
                Op::EnableNotification,
                Op::NeedsNotification,
                Op::WriteDesc {
                    index: 1,
                    addr: AddrSel::Arena(0x2000),
                    len: 16,
                    w0: NEXT,
                    w1: 1,
                },
                Op::Publish { head: 1 },
                Op::Pop,
                Op::DisableNotification,
                Op::HasAvailable,
                Op::PopAll,
                Op::Reset,
                Op::Enable,
                Op::DriverReset,
                chain(vec![buf(0x2000, 4, true)], None),
                Op::PopAll,
                Op::SetAvailBase(3),
                Op::WriteU16 {
                    area: 1,
                    off: 2,
                    value: 0x40,
                },
                Op::Pop,
            ]);
            out.push(Input {
                packed,
                event_idx,
                indirect,
                regions: indirect,
                size: 7,
                layout: LayoutSel::Contiguous { at: 1 },
                ops,
            });
        }
    }
    // Packed, out-of-order completion: a list of more than CAPTURED
    // descriptors is still held when a later one's used descriptor goes
    // into the ring slot where the held list starts.
    for (long, table) in [(long.clone(), None), (long.clone(), Some(0x3800))] {
        out.push(Input {
            packed: true,
            event_idx: false,
            indirect: true,
            regions: false,
            size: 7,
            layout: LayoutSel::Contiguous { at: 1 },
            ops: vec![
                chain(long, table),
                chain(vec![buf(0x2800, 8, false), buf(0x2900, 64, true)], None),
                Op::Pop,
                Op::Pop,
                Op::AddUsed { chain: 1, len: 64 },
                Op::Write {
                    chain: 0,
                    chunks: vec![(false, 200)],
                },
                Op::Read {
                    chain: 0,
                    chunks: vec![(ChunkKind::Read, 200)],
                },
            ],
        });
    }
    out.push(Input {
        packed: false,
        event_idx: true,
        indirect: true,
        regions: true,
        size: 0x8000 | 7,
        layout: LayoutSel::Raw {
            desc: 0,
            driver: 0x1000,
            device: 0x1003,
        },
        ops: vec![Op::Pop, Op::Enable, Op::Unmap, Op::PopAll, Op::Remap],
    });
    out.iter().map(encode).collect()
}

fuzz_target!(
    init: maybe_write_seeds("rings", seeds),
    |input: Input| run(&input)
);

/// The bytes writers write: position-dependent, so misplaced bytes show.
fn pattern(p: usize) -> u8 {
    (p as u8).wrapping_mul(31) ^ 0xa5 ^ (p >> 8) as u8
}
