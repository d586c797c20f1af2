//! Descriptor chains: validation, element walks, and reader/writer helpers
//! that copy across descriptor boundaries.
//!
//! The walk done when a chain is popped checks every descriptor and proves
//! the chain well-formed at that moment. Chains of up to [`CAPTURED`]
//! elements (every chain Linux's virtio-scmi, -blk or -net drivers build)
//! are captured then: the readers and writers use the captured copy, so a
//! driver rewriting descriptors after handing them over changes nothing the
//! device sees. Longer chains are walked again from the ring on each use,
//! every walk re-applying every check; if the driver rewrote them, the walk
//! fails with a [`ChainError`] instead of trusting stale conclusions. Either
//! way each buffer access is range-checked again by the
//! [`GuestMemory`] seam, and nothing a driver writes can make a walk read
//! outside the memory it was given, loop, or run longer than the queue size.

use crate::memory::{GuestMemory, MemoryError};
use crate::spec::desc::{INDIRECT, NEXT, WRITE};

/// Size of a descriptor, split or packed (virtio v1.2 §2.7.5, §2.8.13).
pub(crate) const DESC_SIZE: u64 = 16;

/// Chains with at most this many elements are captured when popped.
pub const CAPTURED: usize = 4;

/// Why a descriptor chain is malformed. One variant per shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// A `next` field points past the descriptor table (split ring, virtio
    /// v1.2 §2.7.5) or past the indirect table it lives in (§2.7.5.3).
    NextOutOfRange {
        /// The offending `next` value.
        next: u16,
    },
    /// The chain visits more descriptors than the queue size (direct) or
    /// than the indirect table holds: a loop or an over-long chain
    /// (§2.7.5.3.1, §2.8.17).
    TooLong,
    /// `VIRTQ_DESC_F_INDIRECT` without `VIRTIO_F_INDIRECT_DESC` negotiated
    /// (§2.7.5.3.1, §2.8.19).
    IndirectNotNegotiated,
    /// `VIRTQ_DESC_F_INDIRECT` and `VIRTQ_DESC_F_NEXT` on one descriptor
    /// (§2.7.5.3.1).
    IndirectWithNext,
    /// An indirect table refers to another indirect table (§2.7.5.3.1).
    NestedIndirect,
    /// Packed ring: an indirect descriptor inside a `NEXT`-linked list
    /// (§2.8.19).
    IndirectInList,
    /// The indirect table is empty or its length is not a multiple of 16
    /// bytes (§2.7.5.3, §2.8.7).
    IndirectTableSize {
        /// The table's byte length.
        len: u32,
    },
    /// The indirect table holds more descriptors than the queue size; a
    /// chain may not be longer than the queue (§2.7.5.3.1).
    IndirectTableTooLarge {
        /// Number of descriptors in the table.
        entries: u32,
    },
    /// A device-readable descriptor follows a device-writable one
    /// (§2.7.4.2, §2.8.17).
    ReadableAfterWritable,
    /// The buffer lengths add up to 2^32 bytes or more (§2.7.5.2).
    TotalLengthOverflow,
    /// A buffer or an indirect table is not inside driver memory the
    /// device may access.
    Memory(MemoryError),
    /// The walk disagrees with the chain as validated when it was popped:
    /// the driver changed descriptors it had handed to the device.
    Changed,
    /// The list's descriptors are kept by the queue that popped it (a
    /// packed-ring list of more than [`CAPTURED`] descriptors): read and
    /// write it through [`Queue::reader`](crate::Queue::reader) and
    /// [`Queue::writer`](crate::Queue::writer) of that queue, and not
    /// after the queue was reset.
    HeldByQueue,
    /// Packed ring: the queue's store of held lists has no room for this
    /// list's descriptors. An honest driver cannot cause this when the
    /// queue size is at most the store's capacity: it only reuses a slot
    /// once the device has returned the list that occupied it, so the
    /// lists the device holds never add up to more than the queue size.
    HeldListsFull {
        /// Descriptors in the list.
        needed: u16,
        /// Free entries in the store.
        free: usize,
    },
    /// The chain has fewer readable (or writable) bytes than the access
    /// needs. Not a malformation: the buffers are just too small.
    Short {
        /// Bytes the access needed.
        needed: usize,
        /// Bytes the chain had left.
        available: usize,
    },
}

impl core::fmt::Display for ChainError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ChainError::NextOutOfRange { next } => {
                write!(f, "descriptor `next` {next} is outside its table")
            }
            ChainError::TooLong => f.write_str("the chain is longer than its table (a loop?)"),
            ChainError::IndirectNotNegotiated => {
                f.write_str("indirect descriptor without VIRTIO_F_INDIRECT_DESC")
            }
            ChainError::IndirectWithNext => f.write_str("indirect descriptor with NEXT set"),
            ChainError::NestedIndirect => f.write_str("indirect table inside an indirect table"),
            ChainError::IndirectInList => f.write_str("indirect descriptor inside a packed list"),
            ChainError::IndirectTableSize { len } => {
                write!(
                    f,
                    "indirect table of {len} bytes (not a non-zero multiple of 16)"
                )
            }
            ChainError::IndirectTableTooLarge { entries } => {
                write!(
                    f,
                    "indirect table of {entries} descriptors, more than the queue size"
                )
            }
            ChainError::ReadableAfterWritable => {
                f.write_str("device-readable descriptor after a device-writable one")
            }
            ChainError::TotalLengthOverflow => {
                f.write_str("buffer lengths add up to 4 GiB or more")
            }
            ChainError::Memory(e) => write!(f, "buffer: {e}"),
            ChainError::Changed => {
                f.write_str("the driver changed the chain after handing it over")
            }
            ChainError::HeldByQueue => {
                f.write_str("the list is held by its queue: read and write it through the queue")
            }
            ChainError::HeldListsFull { needed, free } => write!(
                f,
                "a packed list of {needed} descriptors does not fit the {free} free entries of the store"
            ),
            ChainError::Short { needed, available } => {
                write!(
                    f,
                    "the access needs {needed} bytes, the chain has {available} left"
                )
            }
        }
    }
}

impl From<MemoryError> for ChainError {
    fn from(e: MemoryError) -> Self {
        ChainError::Memory(e)
    }
}

/// One buffer element of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element {
    /// Driver address of the buffer.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// Whether the device may write the buffer (otherwise it may only read).
    pub writable: bool,
}

/// A descriptor as found in memory (split and packed share the size; the
/// last 4 bytes are `flags, next` for split and `id, flags` for packed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawDesc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    /// Split: `next`. Packed: buffer id.
    pub next_or_id: u16,
}

impl RawDesc {
    #[inline(always)]
    pub fn read<M: GuestMemory>(mem: &M, at: u64, packed: bool) -> Result<Self, MemoryError> {
        let mut b = [0u8; 16];
        mem.read(at, &mut b)?;
        // Two little-endian u64s: `addr`, then `len | w0 << 32 | w1 << 48`.
        let (lo8, hi8) = b.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
        let hi8 = hi8.first_chunk::<8>().copied().unwrap_or_default();
        let addr = u64::from_le_bytes(*lo8);
        let hi = u64::from_le_bytes(hi8);
        let len = hi as u32;
        let w0 = (hi >> 32) as u16;
        let w1 = (hi >> 48) as u16;
        Ok(if packed {
            RawDesc {
                addr,
                len,
                flags: w1,
                next_or_id: w0,
            }
        } else {
            RawDesc {
                addr,
                len,
                flags: w0,
                next_or_id: w1,
            }
        })
    }
}

/// Where a chain's descriptors are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Split ring: a descriptor table and the chain's head index.
    Split { table: u64, size: u16, head: u16 },
    /// Packed ring: the ring, the slot of the first descriptor, its wrap
    /// counter, and how many ring slots the list occupies.
    Packed {
        ring: u64,
        size: u16,
        first: u16,
        slots: u16,
    },
}

/// A chain of descriptors the driver made available, popped from a
/// [`Queue`](crate::Queue).
///
/// Return it with [`Queue::add_used`](crate::Queue::add_used); the call
/// consumes it, so a chain cannot be completed twice.
#[derive(Debug, PartialEq, Eq)]
pub struct DescriptorChain {
    pub(crate) origin: Origin,
    pub(crate) indirect_ok: bool,
    pub(crate) id: u16,
    pub(crate) readable: u32,
    pub(crate) writable: u32,
    pub(crate) epoch: u32,
    /// The validated elements, readable ones first, when the chain has at
    /// most [`CAPTURED`] of them.
    pub(crate) captured: Captured,
    /// Packed ring: the indirect table `(address, entries)` the list's only
    /// ring slot named at pop. Used descriptors of lists completed out of
    /// order may overwrite that slot (virtio v1.2 §2.8.6), so later walks
    /// start from the table, never from the ring.
    pub(crate) packed_table: Option<TableRef>,
    /// Packed ring: where the queue keeps the copy of a long direct list.
    pub(crate) held: Option<HeldRef>,
}

/// A long packed list's entry in its queue's store of held lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeldRef {
    /// The store's tag for the list (unique among the lists it holds).
    pub key: u32,
    /// Number of elements.
    pub count: u16,
    /// Number of readable elements (they come first).
    pub readable: u16,
}

/// A packed ring's indirect table: address and number of entries.
///
/// 4-byte aligned (12 bytes, not 16) to keep [`DescriptorChain`], which
/// is moved on every pop, small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed(4))]
pub(crate) struct TableRef {
    pub addr: u64,
    pub entries: u32,
}

/// One descriptor as validated at pop: captured in its chain, or kept in
/// the queue's store of held lists.
///
/// 4-byte aligned (12 bytes, not 16) to keep [`DescriptorChain`], which
/// is moved on every pop, small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed(4))]
pub(crate) struct HeldCell {
    pub addr: u64,
    pub len: u32,
}

impl HeldCell {
    pub(crate) const EMPTY: HeldCell = HeldCell { addr: 0, len: 0 };
}

/// Elements captured at pop time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Captured {
    pub elems: [HeldCell; CAPTURED],
    /// Number of readable elements (they come first, §2.7.4.2).
    pub readable: u8,
    /// Number of elements; `u8::MAX` when the chain was too long to capture.
    pub count: u8,
}

impl Captured {
    pub(crate) const NONE: Captured = Captured {
        elems: [HeldCell::EMPTY; CAPTURED],
        readable: 0,
        count: u8::MAX,
    };

    fn is_complete(&self) -> bool {
        usize::from(self.count) <= CAPTURED
    }
}

impl DescriptorChain {
    /// The id the driver knows this buffer by: the head index (split ring)
    /// or the buffer id (packed ring).
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Total bytes in device-readable buffers.
    pub fn readable_len(&self) -> u32 {
        self.readable
    }

    /// Total bytes in device-writable buffers.
    pub fn writable_len(&self) -> u32 {
        self.writable
    }

    /// Walks the chain's elements in order. For a list its queue holds
    /// (see [`ChainError::HeldByQueue`]) the walk yields that error: the
    /// ring no longer describes the list.
    pub fn elements<'m, M: GuestMemory>(&self, mem: &'m M) -> Elements<'m, M> {
        let mut walk = Elements::new(mem, self.origin, self.indirect_ok);
        if self.held.is_some() {
            walk.pos = Pos::Held;
        } else if let Some(TableRef {
            addr: table,
            entries,
        }) = self.packed_table
        {
            walk.pos = Pos::Indirect {
                table,
                entries,
                at: 0,
            };
            walk.entered = Some((table, entries));
        }
        walk
    }

    /// Whether the chain's elements were captured when it was popped (see
    /// the module documentation): in the chain itself, or in its queue's
    /// store of held lists.
    pub fn is_captured(&self) -> bool {
        self.captured.is_complete() || self.held.is_some()
    }

    /// Whether the chain's descriptors are kept by its queue: then only
    /// [`Queue::reader`](crate::Queue::reader) and
    /// [`Queue::writer`](crate::Queue::writer) reach its buffers.
    pub fn is_held_by_queue(&self) -> bool {
        self.held.is_some()
    }

    /// Where a reader (`writable == false`) or writer gets its elements.
    #[inline(always)]
    fn cursor<'a, M: GuestMemory>(&'a self, mem: &'a M, writable: bool) -> Cursor<'a, M> {
        let c = &self.captured;
        let left = if writable {
            self.writable
        } else {
            self.readable
        };
        // A held list has nothing captured (`Captured::NONE`), so this
        // test comes first.
        if c.is_complete() {
            let elems = c.elems.get(..usize::from(c.count)).unwrap_or_default();
            // `split_at_checked` of an index clamped to the length never
            // fails; it leaves no panic path where `split_at` does.
            let (r, w) = elems
                .split_at_checked(usize::from(c.readable).min(elems.len()))
                .unwrap_or((elems, &[]));
            Cursor::new(mem, if writable { w } else { r }, None, false, left)
        } else if self.held.is_some() {
            Cursor::new(mem, &[], None, true, left)
        } else {
            Cursor::new(mem, &[], Some(self), false, left)
        }
    }

    /// The cursor over a held list's cells (`None`: the queue does not
    /// hold it).
    #[inline]
    fn held_cursor<'a, M: GuestMemory>(
        &self,
        mem: &'a M,
        cells: Option<&'a [HeldCell]>,
        writable: bool,
    ) -> Cursor<'a, M> {
        let left = if writable {
            self.writable
        } else {
            self.readable
        };
        match (cells, self.held) {
            (Some(cells), Some(h)) => {
                let split = usize::from(h.readable).min(cells.len());
                let (r, w) = cells.split_at_checked(split).unwrap_or((cells, &[]));
                Cursor::new(mem, if writable { w } else { r }, None, false, left)
            }
            _ => Cursor::new(mem, &[], None, true, left),
        }
    }

    /// A reader over the device-readable bytes. For a list its queue holds
    /// (see [`DescriptorChain::is_held_by_queue`]) use
    /// [`Queue::reader`](crate::Queue::reader); this one then fails with
    /// [`ChainError::HeldByQueue`].
    #[inline]
    pub fn reader<'a, M: GuestMemory>(&'a self, mem: &'a M) -> Reader<'a, M> {
        Reader {
            c: self.cursor(mem, false),
        }
    }

    /// A writer over the device-writable bytes. For a list its queue holds
    /// use [`Queue::writer`](crate::Queue::writer); this one then fails
    /// with [`ChainError::HeldByQueue`].
    #[inline]
    pub fn writer<'a, M: GuestMemory>(&'a self, mem: &'a M) -> Writer<'a, M> {
        Writer {
            c: self.cursor(mem, true),
            written: 0,
        }
    }

    /// A reader over a held list's cells as its queue keeps them.
    pub(crate) fn held_reader<'a, M: GuestMemory>(
        &'a self,
        mem: &'a M,
        cells: Option<&'a [HeldCell]>,
    ) -> Reader<'a, M> {
        Reader {
            c: self.held_cursor(mem, cells, false),
        }
    }

    /// A writer over a held list's cells as its queue keeps them.
    pub(crate) fn held_writer<'a, M: GuestMemory>(
        &'a self,
        mem: &'a M,
        cells: Option<&'a [HeldCell]>,
    ) -> Writer<'a, M> {
        Writer {
            c: self.held_cursor(mem, cells, true),
            written: 0,
        }
    }
}

/// A position in one direction (readable or writable) of a chain: where
/// the next elements come from and what is left of the current one.
#[derive(Debug)]
struct Cursor<'m, M> {
    mem: &'m M,
    /// Validated elements still to be used (captured or held), consumed
    /// before `walk`; in practice only one of the two is ever non-empty.
    cells: core::slice::Iter<'m, HeldCell>,
    /// A chain not captured: walked afresh, with every check, from its
    /// ring once `cells` (then empty) run out.
    walk_from: Option<&'m DescriptorChain>,
    /// That walk, once started.
    walk: Option<Elements<'m, M>>,
    /// A held list read without its queue: fails with
    /// [`ChainError::HeldByQueue`].
    unavailable: bool,
    /// Current element: address and bytes left in it.
    cur: (u64, u32),
    /// Bytes of this direction not yet consumed (as validated at pop).
    left: u32,
    done: bool,
}

impl<'m, M: GuestMemory> Cursor<'m, M> {
    #[inline(always)]
    fn new(
        mem: &'m M,
        cells: &'m [HeldCell],
        walk_from: Option<&'m DescriptorChain>,
        unavailable: bool,
        left: u32,
    ) -> Self {
        Cursor {
            mem,
            cells: cells.iter(),
            walk_from,
            walk: None,
            unavailable,
            cur: (0, 0),
            left,
            done: false,
        }
    }

    /// The current segment, moving to the next element when this one is
    /// used up; `Ok(None)` at the end.
    #[inline(always)]
    fn segment(&mut self, writable: bool) -> Result<Option<(u64, u32)>, ChainError> {
        while self.cur.1 == 0 {
            match self.cells.next() {
                Some(c) => self.cur = (c.addr, c.len),
                None => return self.segment_past_cells(writable),
            }
        }
        Ok(Some(self.cur))
    }

    /// [`Cursor::segment`] once the validated cells are used up: the walk
    /// of a chain not captured, or the end.
    #[inline(never)]
    fn segment_past_cells(&mut self, writable: bool) -> Result<Option<(u64, u32)>, ChainError> {
        loop {
            if self.cur.1 > 0 {
                return Ok(Some(self.cur));
            }
            if self.done {
                return Ok(None);
            }
            let next = if self.unavailable {
                Err(ChainError::HeldByQueue)
            } else if self.walk_from.is_none() && self.walk.is_none() {
                Ok(None)
            } else {
                self.walk_next(writable)
            };
            match next {
                Ok(Some(e)) => self.cur = e,
                Ok(None) => {
                    self.done = true;
                    if self.left != 0 {
                        return Err(ChainError::Changed);
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
    }

    /// The next element of the walk with the wanted direction, starting
    /// the walk if need be.
    fn walk_next(&mut self, writable: bool) -> Result<Option<(u64, u32)>, ChainError> {
        if let Some(chain) = self.walk_from.take() {
            self.walk = Some(chain.elements(self.mem));
        }
        let Some(walk) = &mut self.walk else {
            return Ok(None);
        };
        loop {
            match walk.next() {
                Some(Ok(e)) if e.writable == writable => return Ok(Some((e.addr, e.len))),
                // Readable elements precede writable ones (checked by the
                // walk), so a writer skips them and a reader stops at the
                // first writable one.
                Some(Ok(_)) if writable => {}
                Some(Ok(_)) | None => return Ok(None),
                Some(Err(e)) => return Err(e),
            }
        }
    }

    /// Consumes `take` bytes of the current segment `(addr, len)`.
    #[inline(always)]
    fn consume(&mut self, addr: u64, len: u32, take: usize) {
        // `take <= len` and `take <= left`, so these cannot wrap.
        self.cur = (addr + take as u64, len - take as u32);
        self.left -= take as u32;
    }
}

#[derive(Debug, Clone, Copy)]
enum Pos {
    /// Next descriptor in the ring or table named by the origin.
    Direct {
        at: u16,
    },
    /// Next entry of an indirect table.
    Indirect {
        table: u64,
        entries: u32,
        at: u32,
    },
    /// The list is held by its queue; the ring does not describe it.
    Held,
    Done,
}

/// Iterator over the elements of a chain; every step is checked.
///
/// After the first error the iterator is finished.
#[derive(Debug)]
pub struct Elements<'m, M> {
    mem: &'m M,
    origin: Origin,
    indirect_ok: bool,
    pos: Pos,
    /// Descriptors visited so far at the current level.
    visited: u32,
    seen_writable: bool,
    total: u64,
    /// The indirect table the walk went into, if any.
    entered: Option<(u64, u32)>,
}

impl<'m, M: GuestMemory> Elements<'m, M> {
    pub(crate) fn new(mem: &'m M, origin: Origin, indirect_ok: bool) -> Self {
        let at = match origin {
            Origin::Split { head, .. } => head,
            Origin::Packed { first, .. } => first,
        };
        Elements {
            mem,
            origin,
            indirect_ok,
            pos: Pos::Direct { at },
            visited: 0,
            seen_writable: false,
            total: 0,
            entered: None,
        }
    }

    fn step(&mut self) -> Result<Option<Element>, ChainError> {
        loop {
            let (desc, in_indirect) = match self.pos {
                Pos::Done => return Ok(None),
                Pos::Held => return Err(ChainError::HeldByQueue),
                Pos::Direct { at, .. } => {
                    let (base, packed) = match self.origin {
                        Origin::Split { table, .. } => (table, false),
                        Origin::Packed { ring, .. } => (ring, true),
                    };
                    (
                        RawDesc::read(self.mem, base + u64::from(at) * DESC_SIZE, packed)?,
                        false,
                    )
                }
                Pos::Indirect { table, at, .. } => {
                    let packed = matches!(self.origin, Origin::Packed { .. });
                    (
                        RawDesc::read(self.mem, table + u64::from(at) * DESC_SIZE, packed)?,
                        true,
                    )
                }
            };
            self.visited += 1;
            let packed = matches!(self.origin, Origin::Packed { .. });

            if desc.flags & INDIRECT != 0 && !(in_indirect && packed) {
                if in_indirect {
                    // §2.7.5.3.1: one table per descriptor.
                    return Err(ChainError::NestedIndirect);
                }
                if !self.indirect_ok {
                    return Err(ChainError::IndirectNotNegotiated);
                }
                if desc.flags & NEXT != 0 {
                    return Err(ChainError::IndirectWithNext);
                }
                if packed && self.visited > 1 {
                    return Err(ChainError::IndirectInList);
                }
                if desc.len == 0 || u64::from(desc.len) % DESC_SIZE != 0 {
                    return Err(ChainError::IndirectTableSize { len: desc.len });
                }
                let entries = desc.len / DESC_SIZE as u32;
                if entries > u32::from(self.queue_size()) {
                    return Err(ChainError::IndirectTableTooLarge { entries });
                }
                self.mem.check_range(desc.addr, u64::from(desc.len), 1)?;
                self.pos = Pos::Indirect {
                    table: desc.addr,
                    entries,
                    at: 0,
                };
                self.entered = Some((desc.addr, entries));
                self.visited = 0;
                continue;
            }

            // §2.8.7: in a packed indirect table WRITE is the only valid
            // flag; NEXT is ignored and entries are used in order.
            let writable = desc.flags & WRITE != 0;
            if !writable && self.seen_writable {
                return Err(ChainError::ReadableAfterWritable);
            }
            self.seen_writable |= writable;
            self.total += u64::from(desc.len);
            if self.total > u64::from(u32::MAX) {
                return Err(ChainError::TotalLengthOverflow);
            }
            if desc.len > 0 {
                self.mem.check_range(desc.addr, u64::from(desc.len), 1)?;
            }
            self.advance(&desc)?;
            return Ok(Some(Element {
                addr: desc.addr,
                len: desc.len,
                writable,
            }));
        }
    }

    fn queue_size(&self) -> u16 {
        match self.origin {
            Origin::Split { size, .. } | Origin::Packed { size, .. } => size,
        }
    }

    /// Moves to the descriptor after `desc`, checking the link.
    fn advance(&mut self, desc: &RawDesc) -> Result<(), ChainError> {
        self.pos = match (self.pos, self.origin) {
            (Pos::Direct { .. }, Origin::Split { size, .. }) => {
                if desc.flags & NEXT == 0 {
                    Pos::Done
                } else if desc.next_or_id >= size {
                    return Err(ChainError::NextOutOfRange {
                        next: desc.next_or_id,
                    });
                } else if self.visited >= u32::from(size) {
                    return Err(ChainError::TooLong);
                } else {
                    Pos::Direct {
                        at: desc.next_or_id,
                    }
                }
            }
            (Pos::Direct { at }, Origin::Packed { size, slots, .. }) => {
                if desc.flags & NEXT == 0 {
                    if self.visited != u32::from(slots) {
                        return Err(ChainError::Changed);
                    }
                    Pos::Done
                } else if self.visited >= u32::from(slots) {
                    // The list was `slots` long when popped.
                    return Err(ChainError::Changed);
                } else {
                    // Lists wrap from the last slot to the first.
                    let next = at + 1;
                    Pos::Direct {
                        at: if next == size { 0 } else { next },
                    }
                }
            }
            (Pos::Indirect { table, entries, .. }, Origin::Split { .. }) => {
                if desc.flags & NEXT == 0 {
                    Pos::Done
                } else if u32::from(desc.next_or_id) >= entries {
                    return Err(ChainError::NextOutOfRange {
                        next: desc.next_or_id,
                    });
                } else if self.visited >= entries {
                    return Err(ChainError::TooLong);
                } else {
                    Pos::Indirect {
                        table,
                        entries,
                        at: u32::from(desc.next_or_id),
                    }
                }
            }
            (Pos::Indirect { table, entries, at }, Origin::Packed { .. }) => {
                if at + 1 >= entries {
                    Pos::Done
                } else {
                    Pos::Indirect {
                        table,
                        entries,
                        at: at + 1,
                    }
                }
            }
            (Pos::Done | Pos::Held, _) => Pos::Done,
        };
        Ok(())
    }
}

impl<M: GuestMemory> Iterator for Elements<'_, M> {
    type Item = Result<Element, ChainError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.pos = Pos::Done;
                Some(Err(e))
            }
        }
    }
}

/// Walks a whole chain once, checking every descriptor; records its byte
/// totals in `chain` and captures its elements if there are at most
/// [`CAPTURED`]. `chain` arrives with zero totals and nothing captured.
#[inline]
pub(crate) fn validate<M: GuestMemory>(
    mem: &M,
    chain: &mut DescriptorChain,
) -> Result<(), ChainError> {
    if let Origin::Split { table, size, head } = chain.origin {
        let mut cells = [HeldCell::EMPTY; CAPTURED];
        if let Some(d) = validate_split_direct(mem, table, size, head, &mut cells)? {
            chain.readable = d.readable;
            chain.writable = d.writable;
            chain.captured = Captured {
                elems: cells,
                readable: d.readable_cells,
                count: d.count,
            };
            return Ok(());
        }
        // An indirect descriptor: start over with the general walk, which
        // applies the same checks in the same order.
    }
    let mut count = 0usize;
    let mut readable = 0u8;
    let mut walk = Elements::new(mem, chain.origin, chain.indirect_ok);
    for e in walk.by_ref() {
        let e = e?;
        // Cannot overflow: the walk caps the sum at u32::MAX.
        if e.writable {
            chain.writable += e.len;
        } else {
            chain.readable += e.len;
            // Readable elements come first; once past CAPTURED the count
            // no longer matters.
            readable = readable.saturating_add(1);
        }
        if let Some(slot) = chain.captured.elems.get_mut(count) {
            *slot = HeldCell {
                addr: e.addr,
                len: e.len,
            };
        }
        count += 1;
    }
    if count <= CAPTURED {
        // Both fit in u8: count <= CAPTURED.
        chain.captured.count = count as u8;
        chain.captured.readable = readable;
    }
    if matches!(chain.origin, Origin::Packed { .. }) {
        chain.packed_table = walk
            .entered
            .map(|(addr, entries)| TableRef { addr, entries });
    }
    Ok(())
}

/// Walks a long packed list once, checking every descriptor, and copies
/// its elements into `free` (the free part of the queue's store; the
/// caller tags them with `key`). Records the byte totals in `chain` and where the copy is;
/// returns the number of cells used. `chain` arrives with zero totals.
pub(crate) fn validate_held<M: GuestMemory>(
    mem: &M,
    chain: &mut DescriptorChain,
    free: &mut [HeldCell],
    key: u32,
) -> Result<u16, ChainError> {
    let slots = match chain.origin {
        Origin::Packed { slots, .. } => slots,
        Origin::Split { .. } => return Err(ChainError::HeldByQueue),
    };
    // A direct list has one descriptor per slot; the walk checks that.
    if usize::from(slots) > free.len() {
        return Err(ChainError::HeldListsFull {
            needed: slots,
            free: free.len(),
        });
    }
    let mut count = 0u16;
    let mut readable = 0u16;
    let mut walk = Elements::new(mem, chain.origin, chain.indirect_ok);
    for e in walk.by_ref() {
        let e = e?;
        let Some(cell) = free.get_mut(usize::from(count)) else {
            // More elements than slots: the walk refuses that first.
            return Err(ChainError::Changed);
        };
        *cell = HeldCell {
            addr: e.addr,
            len: e.len,
        };
        count += 1;
        // Cannot overflow: the walk caps the sum at u32::MAX.
        if e.writable {
            chain.writable += e.len;
        } else {
            chain.readable += e.len;
            readable += 1;
        }
    }
    if walk.entered.is_some() {
        // An indirect descriptor in a multi-slot list is refused by the
        // walk (§2.8.19); never hold a table walk.
        return Err(ChainError::IndirectInList);
    }
    chain.held = Some(HeldRef {
        key,
        count,
        readable,
    });
    Ok(count)
}

/// What [`validate_split_direct`] found out about a chain, besides the
/// cells it captured.
#[derive(Clone, Copy)]
pub(crate) struct Direct {
    /// Total bytes in readable and in writable buffers.
    pub readable: u32,
    pub writable: u32,
    /// [`Captured::readable`] and [`Captured::count`].
    pub readable_cells: u8,
    pub count: u8,
}

/// The common case of [`validate`]: a split-ring chain without indirect
/// descriptors, walked with exactly the checks (and check order) of
/// [`Elements`]. Captures the first [`CAPTURED`] elements in `cells`;
/// the result's `count` is `u8::MAX` when there were more. Returns
/// `Ok(None)` when it meets an indirect descriptor.
#[inline(always)]
pub(crate) fn validate_split_direct<M: GuestMemory>(
    mem: &M,
    table: u64,
    size: u16,
    head: u16,
    cells: &mut [HeldCell; CAPTURED],
) -> Result<Option<Direct>, ChainError> {
    let mut at = head;
    let mut total = 0u64;
    let mut writable_total = 0u64;
    let mut seen_writable = false;
    let mut count = 0usize;
    let mut readable_cells = 0usize;
    loop {
        let desc = RawDesc::read(mem, table + u64::from(at) * DESC_SIZE, false)?;
        // Descriptors visited so far, this one included.
        count += 1;
        if desc.flags & INDIRECT != 0 {
            return Ok(None);
        }
        let writable = desc.flags & WRITE != 0;
        // §2.7.4.2: device-writable descriptors come after readable ones.
        if !writable && seen_writable {
            return Err(ChainError::ReadableAfterWritable);
        }
        seen_writable |= writable;
        total += u64::from(desc.len);
        if total > u64::from(u32::MAX) {
            return Err(ChainError::TotalLengthOverflow);
        }
        if desc.len > 0 {
            mem.check_range(desc.addr, u64::from(desc.len), 1)?;
        }
        if writable {
            writable_total += u64::from(desc.len);
        } else {
            readable_cells += 1;
        }
        if let Some(slot) = cells.get_mut(count - 1) {
            *slot = HeldCell {
                addr: desc.addr,
                len: desc.len,
            };
        }
        if desc.flags & NEXT == 0 {
            break;
        }
        // §2.7.5.3.1: `next` must name a descriptor of the table, and a
        // chain cannot be longer than the table (a loop otherwise).
        if desc.next_or_id >= size {
            return Err(ChainError::NextOutOfRange {
                next: desc.next_or_id,
            });
        }
        if count >= usize::from(size) {
            return Err(ChainError::TooLong);
        }
        at = desc.next_or_id;
    }
    // Both totals are at most `total`, checked to fit in u32 above.
    let (readable_cells, count) = if count <= CAPTURED {
        // Both fit in u8: `readable_cells <= count <= CAPTURED`.
        (readable_cells as u8, count as u8)
    } else {
        (0, u8::MAX)
    };
    Ok(Some(Direct {
        readable: (total - writable_total) as u32,
        writable: writable_total as u32,
        readable_cells,
        count,
    }))
}

/// Reads the device-readable part of a chain as one byte stream.
#[derive(Debug)]
pub struct Reader<'m, M> {
    c: Cursor<'m, M>,
}

impl<M: GuestMemory> Reader<'_, M> {
    /// Readable bytes not yet consumed.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.c.left as usize
    }

    /// Reads up to `buf.len()` bytes; returns how many were read (0 at the
    /// end of the readable part).
    #[inline]
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, ChainError> {
        let mut n = 0;
        while n < buf.len() {
            let Some((addr, len)) = self.c.segment(false)? else {
                break;
            };
            // Never beyond what was validated at pop, even if the driver
            // has since grown a buffer.
            let take = (buf.len() - n).min(len as usize).min(self.c.left as usize);
            if take == 0 {
                break;
            }
            // `take <= buf.len() - n`: the `else` is unreachable.
            let Some(dst) = buf.get_mut(n..).and_then(|b| b.get_mut(..take)) else {
                break;
            };
            self.c.mem.read(addr, dst)?;
            self.c.consume(addr, len, take);
            n += take;
        }
        Ok(n)
    }

    /// Fills `buf` completely or fails with [`ChainError::Short`], having
    /// consumed what was there.
    #[inline]
    pub fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ChainError> {
        let available = self.remaining();
        let n = self.read(buf)?;
        if n < buf.len() {
            return Err(ChainError::Short {
                needed: buf.len(),
                available,
            });
        }
        Ok(())
    }

    /// Skips up to `count` bytes; returns how many were skipped.
    pub fn skip(&mut self, count: usize) -> Result<usize, ChainError> {
        let mut n = 0;
        while n < count {
            let Some((addr, len)) = self.c.segment(false)? else {
                break;
            };
            let take = (count - n).min(len as usize).min(self.c.left as usize);
            if take == 0 {
                break;
            }
            self.c.consume(addr, len, take);
            n += take;
        }
        Ok(n)
    }
}

/// Writes the device-writable part of a chain as one byte stream.
#[derive(Debug)]
pub struct Writer<'m, M> {
    c: Cursor<'m, M>,
    written: u32,
}

impl<M: GuestMemory> Writer<'_, M> {
    /// Writable bytes not yet written.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.c.left as usize
    }

    /// Bytes written so far: the used length to report.
    #[inline]
    pub fn written(&self) -> u32 {
        self.written
    }

    /// Writes as much of `data` as fits; returns how many bytes were written.
    #[inline]
    pub fn write(&mut self, data: &[u8]) -> Result<usize, ChainError> {
        let mut n = 0;
        while n < data.len() {
            let Some((addr, len)) = self.c.segment(true)? else {
                break;
            };
            let take = (data.len() - n).min(len as usize).min(self.c.left as usize);
            if take == 0 {
                break;
            }
            // `take <= data.len() - n`: the `else` is unreachable.
            let Some(src) = data.get(n..).and_then(|d| d.get(..take)) else {
                break;
            };
            self.c.mem.write(addr, src)?;
            self.c.consume(addr, len, take);
            self.written += take as u32;
            n += take;
        }
        Ok(n)
    }

    /// Writes all of `data` or fails with [`ChainError::Short`] before
    /// writing anything.
    #[inline]
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), ChainError> {
        if data.len() > self.remaining() {
            return Err(ChainError::Short {
                needed: data.len(),
                available: self.remaining(),
            });
        }
        let n = self.write(data)?;
        if n < data.len() {
            return Err(ChainError::Changed);
        }
        Ok(())
    }
}
