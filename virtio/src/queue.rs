//! The device side of one virtqueue, split or packed, behind one API.
//!
//! The driver configures a queue through the transport (size, three area
//! addresses, enable); [`Queue::enable`] validates that configuration against
//! the negotiated features and driver memory. The device then
//!
//! 1. pops chains with [`Queue::pop_descriptor_chain`],
//! 2. reads and writes them through [`Queue::reader`] and [`Queue::writer`]
//!    (or [`DescriptorChain::reader`] and [`DescriptorChain::writer`] for
//!    every chain but the long packed lists the queue holds),
//! 3. returns them with [`Queue::add_used`], and
//! 4. asks [`Queue::needs_notification`] whether the driver wants a
//!    used-buffer notification. The queue decides; the integrator notifies.
//!
//! Malformed chains are completed by the queue itself with used length 0, so
//! the driver gets every buffer back, and reported as
//! [`QueueError::InvalidChain`]. Errors that leave the ring itself
//! untrustworthy are fatal ([`QueueError::needs_reset`]); the device must then
//! set `DEVICE_NEEDS_RESET` (virtio v1.2 §2.1.2).

use core::sync::atomic::{Ordering, fence};

use crate::chain::{
    self, CAPTURED, ChainError, DESC_SIZE, DescriptorChain, HeldCell, HeldRef, Origin, RawDesc,
    Reader, Writer,
};
use crate::memory::{GuestMemory, MemoryError};
use crate::spec::desc::{AVAIL, NEXT, USED, WRITE};
use crate::spec::features;
use crate::spec::ring::{
    AVAIL_F_NO_INTERRUPT, EVENT_FLAGS_DESC, EVENT_FLAGS_DISABLE, EVENT_FLAGS_ENABLE,
    USED_F_NO_NOTIFY,
};

/// Largest packed queue (virtio v1.2 §2.8: up to 2^15 entries).
pub const MAX_PACKED_SIZE: u16 = 1 << 15;

/// Descriptors a [`Queue`] can keep for the long packed lists it holds,
/// unless chosen otherwise with [`Queue::with_store`]. 16 bytes each.
pub const DEFAULT_HELD: usize = 256;

/// Why the driver's queue configuration was refused by [`Queue::enable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueConfigError {
    /// The queue size is zero.
    SizeZero,
    /// The queue size exceeds the device's maximum for this queue.
    SizeTooLarge {
        /// Size the driver asked for.
        size: u16,
        /// The device's maximum.
        max: u16,
    },
    /// Split queues must have a power-of-two size (virtio v1.2 §2.7).
    SizeNotPowerOfTwo {
        /// Size the driver asked for.
        size: u16,
    },
    /// An area is not aligned as virtio v1.2 §2.7 / §2.8.10.1 requires.
    Misaligned {
        /// Which area.
        area: Area,
        /// Its address.
        addr: u64,
    },
    /// An area is not inside driver memory the device may access.
    OutOfRange {
        /// Which area.
        area: Area,
        /// The memory check that failed.
        error: MemoryError,
    },
}

impl core::fmt::Display for QueueConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            QueueConfigError::SizeZero => f.write_str("queue size 0"),
            QueueConfigError::SizeTooLarge { size, max } => {
                write!(f, "queue size {size} is above the device's maximum {max}")
            }
            QueueConfigError::SizeNotPowerOfTwo { size } => {
                write!(f, "split queue size {size} is not a power of two")
            }
            QueueConfigError::Misaligned { area, addr } => {
                write!(f, "{area} at {addr:#x} is misaligned")
            }
            QueueConfigError::OutOfRange { area, error } => write!(f, "{area}: {error}"),
        }
    }
}

/// The three areas of a virtqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Descriptor table (split) or descriptor ring (packed).
    Descriptors,
    /// Available ring (split) or driver event suppression (packed).
    Driver,
    /// Used ring (split) or device event suppression (packed).
    Device,
}

impl core::fmt::Display for Area {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Area::Descriptors => "descriptor area",
            Area::Driver => "driver area",
            Area::Device => "device area",
        })
    }
}

/// Errors from queue operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The queue is not enabled.
    NotReady,
    /// A ring structure could not be accessed. Fatal.
    Ring(MemoryError),
    /// Split ring: `avail.idx` ran more than the queue size ahead of the
    /// device (virtio v1.2 §2.7.13.3: at most queue-size buffers can be
    /// available). Fatal.
    AvailIndexTooFarAhead {
        /// `avail.idx` as read.
        avail_idx: u16,
        /// The device's next available index.
        next_avail: u16,
    },
    /// Split ring: an available-ring entry names a head descriptor outside
    /// the table (virtio v1.2 §2.7.6). Fatal: there is no id to complete.
    HeadOutOfRange {
        /// The offending head index.
        head: u16,
    },
    /// Packed ring: a descriptor inside a list is not marked available
    /// (virtio v1.2 §2.8.6 requires the whole list to be). Fatal.
    ListNotAvailable {
        /// Ring slot of the descriptor.
        slot: u16,
    },
    /// Packed ring: a list runs all the way round the ring without an end
    /// (virtio v1.2 §2.8.17). Fatal: there is no buffer id to complete.
    ListUnterminated,
    /// A malformed chain. The queue already returned it to the driver with
    /// used length 0; the queue stays usable.
    InvalidChain {
        /// Head index (split) or buffer id (packed) of the chain.
        id: u16,
        /// What was wrong with it.
        error: ChainError,
    },
    /// The chain was popped before the queue was last reset or re-enabled;
    /// it was not returned.
    StaleChain,
}

impl core::fmt::Display for QueueError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            QueueError::NotReady => f.write_str("the queue is not enabled"),
            QueueError::Ring(e) => write!(f, "ring: {e}"),
            QueueError::AvailIndexTooFarAhead {
                avail_idx,
                next_avail,
            } => write!(
                f,
                "avail.idx {avail_idx} is more than the queue size ahead of {next_avail}"
            ),
            QueueError::HeadOutOfRange { head } => {
                write!(f, "available head {head} is outside the descriptor table")
            }
            QueueError::ListNotAvailable { slot } => {
                write!(
                    f,
                    "packed list runs into slot {slot}, which is not available"
                )
            }
            QueueError::ListUnterminated => f.write_str("packed list without an end"),
            QueueError::InvalidChain { id, error } => {
                write!(f, "chain {id} completed unused: {error}")
            }
            QueueError::StaleChain => {
                f.write_str("the chain was popped before the queue was reset")
            }
        }
    }
}

impl QueueError {
    /// Whether the ring is beyond repair: the device should set
    /// `DEVICE_NEEDS_RESET` and stop using the queue.
    pub fn needs_reset(&self) -> bool {
        matches!(
            self,
            QueueError::Ring(_)
                | QueueError::AvailIndexTooFarAhead { .. }
                | QueueError::HeadOutOfRange { .. }
                | QueueError::ListNotAvailable { .. }
                | QueueError::ListUnterminated
        )
    }
}

impl From<MemoryError> for QueueError {
    fn from(e: MemoryError) -> Self {
        QueueError::Ring(e)
    }
}

/// The device side of one virtqueue.
///
/// `HELD` is the capacity, in descriptors, of the queue's store of held
/// lists: a packed-ring list of more than [`CAPTURED`](crate::CAPTURED)
/// descriptors is copied there when popped, because its ring slots stop
/// describing it once the device completes later lists (virtio v1.2
/// §2.8.6) and the driver reuses them. Such lists are read and written
/// through [`Queue::reader`] and [`Queue::writer`]. With a queue size of
/// at most `HELD`, an honest driver can never fill the store; a list that
/// does not fit is completed with used length 0
/// ([`ChainError::HeldListsFull`]). Split rings never use the store.
#[derive(Debug, Clone)]
pub struct Queue<const HELD: usize = DEFAULT_HELD> {
    max_size: u16,
    size: u16,
    desc: u64,
    driver: u64,
    device: u64,
    ready: bool,

    // Fixed by `enable` from the negotiated features.
    packed: bool,
    event_idx: bool,
    indirect: bool,
    epoch: u32,

    // Split: free-running indices. Packed: ring slots plus wrap counters.
    next_avail: u16,
    avail_wrap: bool,
    next_used: u16,
    used_wrap: bool,
    /// Split: last `avail.idx` read, so a batch costs one acquire load.
    avail_shadow: u16,
    /// Used entries (split) or ring slots (packed) since the last
    /// notification decision. 64 bits: cannot wrap in the life of a
    /// device (2^64 completions).
    pending: u64,
    /// Split with EVENT_IDX: `next_used` at the last decision, if any.
    signalled_used: Option<u16>,
    /// Packed: copies of the long direct lists the device holds.
    held: HeldLists<HELD>,
}

/// The store of held lists: the lists' cells packed at the front in pop
/// order, each list contiguous and tagged with its key.
#[derive(Clone)]
struct HeldLists<const N: usize> {
    cells: [HeldCell; N],
    /// [`HeldRef::key`] of the list each cell belongs to.
    owners: [u32; N],
    used: usize,
    next_key: u32,
}

impl<const N: usize> core::fmt::Debug for HeldLists<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HeldLists")
            .field("capacity", &N)
            .field("used", &self.used)
            .finish()
    }
}

impl<const N: usize> HeldLists<N> {
    const fn new() -> Self {
        HeldLists {
            cells: [HeldCell::EMPTY; N],
            owners: [0; N],
            used: 0,
            next_key: 0,
        }
    }

    /// Where a held list's cells start.
    fn find(&self, key: u32) -> Option<usize> {
        self.owners.get(..self.used)?.iter().position(|&o| o == key)
    }

    /// The cells of a held list, if the store holds it.
    fn cells(&self, h: HeldRef) -> Option<&[HeldCell]> {
        let start = self.find(h.key)?;
        let end = start + usize::from(h.count);
        let cells = self.cells.get(start..end)?;
        (*self.owners.get(start..end)?.last()? == h.key).then_some(cells)
    }

    /// Forgets a held list, moving the lists after it down.
    fn release(&mut self, h: HeldRef) {
        let Some(start) = self.find(h.key) else {
            return;
        };
        let end = (start + usize::from(h.count)).min(self.used);
        self.cells.copy_within(end..self.used, start);
        self.owners.copy_within(end..self.used, start);
        self.used -= end - start;
    }
}

impl Queue {
    /// A queue in reset state whose size the driver may set up to
    /// `max_size`, with the default store of held lists
    /// ([`DEFAULT_HELD`] descriptors).
    pub const fn new(max_size: u16) -> Self {
        Self::with_store(max_size)
    }
}

impl<const HELD: usize> Queue<HELD> {
    /// A queue in reset state whose size the driver may set up to
    /// `max_size`, keeping up to `HELD` descriptors of held long packed
    /// lists (see [`Queue`]).
    pub const fn with_store(max_size: u16) -> Self {
        Queue {
            max_size,
            size: max_size,
            desc: 0,
            driver: 0,
            device: 0,
            ready: false,
            packed: false,
            event_idx: false,
            indirect: false,
            epoch: 0,
            next_avail: 0,
            avail_wrap: true,
            next_used: 0,
            used_wrap: true,
            avail_shadow: 0,
            pending: 0,
            signalled_used: None,
            held: HeldLists::new(),
        }
    }

    /// The device's maximum size for this queue.
    pub fn max_size(&self) -> u16 {
        self.max_size
    }

    /// The size the driver configured (defaults to the maximum).
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Whether the queue is enabled.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Whether the queue uses the packed layout. Never without a store of
    /// held lists (`HELD = 0`, see [`Queue::enable`]); on bare metal the
    /// test says so to the compiler, which then drops the packed-ring code
    /// from the image (2.4 KiB of the QEMU virt firmware). Hosts keep the
    /// plain field test: the same result, and the code the virtqueue
    /// benchmark's figure was measured on (folding the constant there
    /// costs it about 10 instructions per request in a different layout).
    #[inline(always)]
    pub fn is_packed(&self) -> bool {
        (cfg!(not(target_os = "none")) || HELD > 0) && self.packed
    }

    /// The three area addresses: descriptors, driver area, device area.
    pub fn addresses(&self) -> (u64, u64, u64) {
        (self.desc, self.driver, self.device)
    }

    /// Sets the size (takes effect at [`Queue::enable`]). Ignored while
    /// the queue is enabled.
    pub fn set_size(&mut self, size: u16) {
        if !self.ready {
            self.size = size;
        }
    }

    /// Sets the descriptor area address. Ignored while enabled.
    pub fn set_desc_table_address(&mut self, addr: u64) {
        if !self.ready {
            self.desc = addr;
        }
    }

    /// Sets the driver area (available ring) address. Ignored while enabled.
    pub fn set_avail_ring_address(&mut self, addr: u64) {
        if !self.ready {
            self.driver = addr;
        }
    }

    /// Sets the device area (used ring) address. Ignored while enabled.
    pub fn set_used_ring_address(&mut self, addr: u64) {
        if !self.ready {
            self.device = addr;
        }
    }

    /// Validates the configuration and enables the queue for the given
    /// negotiated features. Ring state starts from zero (virtio v1.2 §2.7,
    /// §2.8.1: indices at 0, wrap counters at 1).
    pub fn enable<M: GuestMemory>(
        &mut self,
        mem: &M,
        negotiated: u64,
    ) -> Result<(), QueueConfigError> {
        // Packed rings need the store of held lists (see `is_packed`).
        let packed = HELD > 0 && negotiated & features::RING_PACKED != 0;
        let size = self.size;
        if size == 0 {
            return Err(QueueConfigError::SizeZero);
        }
        if size > self.max_size || (packed && size > MAX_PACKED_SIZE) {
            return Err(QueueConfigError::SizeTooLarge {
                size,
                max: self.max_size,
            });
        }
        if !packed && !size.is_power_of_two() {
            return Err(QueueConfigError::SizeNotPowerOfTwo { size });
        }
        let n = u64::from(size);
        // (area, address, length, alignment): virtio v1.2 §2.7 table for
        // split rings, §2.8.10.1 table for packed rings.
        let areas = if packed {
            [
                (Area::Descriptors, self.desc, 16 * n, 16),
                (Area::Driver, self.driver, 4, 4),
                (Area::Device, self.device, 4, 4),
            ]
        } else {
            [
                (Area::Descriptors, self.desc, 16 * n, 16),
                (Area::Driver, self.driver, 6 + 2 * n, 2),
                (Area::Device, self.device, 6 + 8 * n, 4),
            ]
        };
        for (area, addr, len, align) in areas {
            // is_multiple_of, not %: no division-by-zero panic path even
            // where the compiler loses sight of the constant alignments.
            if !addr.is_multiple_of(align) {
                return Err(QueueConfigError::Misaligned { area, addr });
            }
            mem.check_range(addr, len, align)
                .map_err(|error| QueueConfigError::OutOfRange { area, error })?;
        }
        self.packed = packed;
        self.event_idx = negotiated & features::EVENT_IDX != 0;
        self.indirect = negotiated & features::INDIRECT_DESC != 0;
        self.reset_ring_state();
        self.ready = true;
        Ok(())
    }

    /// Returns the queue to reset state (virtio v1.2 §2.6.1): disabled,
    /// configuration cleared, size back to the maximum. Chains popped before
    /// this can no longer be returned.
    pub fn reset(&mut self) {
        self.size = self.max_size;
        self.desc = 0;
        self.driver = 0;
        self.device = 0;
        self.ready = false;
        self.packed = false;
        self.event_idx = false;
        self.indirect = false;
        self.reset_ring_state();
    }

    fn reset_ring_state(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.next_avail = 0;
        self.avail_wrap = true;
        self.next_used = 0;
        self.used_wrap = true;
        self.avail_shadow = 0;
        self.pending = 0;
        self.signalled_used = None;
        // Chains popped before now are stale; their keys are not reused
        // (the key counter runs on).
        self.held.used = 0;
    }

    /// The device's position in the available ring, as vhost-user's
    /// `GET_VRING_BASE` reports it: the split ring's next available index,
    /// or the packed ring's next slot with the wrap counter in bit 15.
    pub fn avail_base(&self) -> u16 {
        if self.is_packed() {
            self.next_avail | (u16::from(self.avail_wrap) << 15)
        } else {
            self.next_avail
        }
    }

    /// Restores the device's position in both rings (vhost-user
    /// `SET_VRING_BASE` after a reconnect or migration): used entries are
    /// assumed to have caught up with available ones.
    pub fn set_avail_base(&mut self, base: u16) {
        if self.is_packed() {
            let slot = base & 0x7fff;
            let wrap = base & 0x8000 != 0;
            if slot < self.size {
                self.next_avail = slot;
                self.avail_wrap = wrap;
                self.next_used = slot;
                self.used_wrap = wrap;
            }
        } else {
            self.next_avail = base;
            self.avail_shadow = base;
            self.next_used = base;
        }
        self.signalled_used = None;
    }

    /// Whether the driver has made buffers available that the device has
    /// not popped yet.
    pub fn has_available<M: GuestMemory>(&mut self, mem: &M) -> Result<bool, QueueError> {
        self.check_ready()?;
        if self.is_packed() {
            let flags = mem.load_u16_acquire(self.slot_addr(self.next_avail) + 14)?;
            Ok(self.is_avail(flags, self.avail_wrap))
        } else {
            let avail = mem.load_u16_acquire(self.driver + 2)?;
            self.avail_shadow = avail;
            Ok(avail != self.next_avail)
        }
    }

    /// Pops the next available chain, validated.
    ///
    /// `Ok(None)` when the driver has made nothing more available. A
    /// malformed chain is completed with used length 0 and reported as
    /// [`QueueError::InvalidChain`]; call again for the next one.
    #[inline]
    pub fn pop_descriptor_chain<M: GuestMemory>(
        &mut self,
        mem: &M,
    ) -> Result<Option<DescriptorChain>, QueueError> {
        self.check_ready()?;
        if !self.is_packed() {
            // The common case, a split-ring chain without indirect
            // descriptors, built in one go.
            let Some((origin, head)) = self.split_next(mem)? else {
                return Ok(None);
            };
            let mut cells = [HeldCell::EMPTY; CAPTURED];
            return match chain::validate_split_direct(mem, self.desc, self.size, head, &mut cells) {
                Ok(Some(d)) => Ok(Some(DescriptorChain {
                    origin,
                    indirect_ok: self.indirect,
                    id: head,
                    readable: d.readable,
                    writable: d.writable,
                    epoch: self.epoch,
                    captured: chain::Captured {
                        elems: cells,
                        readable: d.readable_cells,
                        count: d.count,
                    },
                    packed_table: None,
                    held: None,
                })),
                Ok(None) => self.pop_general(mem, origin, head),
                Err(error) => {
                    self.complete(mem, head, self.epoch, None, None, 0)?;
                    Err(QueueError::InvalidChain { id: head, error })
                }
            };
        }
        let Some((origin, id)) = self.packed_next(mem)? else {
            return Ok(None);
        };
        self.pop_general(mem, origin, id)
    }

    /// The rest of [`Queue::pop_descriptor_chain`]: a chain located but not
    /// yet validated (packed, or split with an indirect descriptor).
    #[inline(never)]
    fn pop_general<M: GuestMemory>(
        &mut self,
        mem: &M,
        origin: Origin,
        id: u16,
    ) -> Result<Option<DescriptorChain>, QueueError> {
        let mut chain = DescriptorChain {
            origin,
            indirect_ok: self.indirect,
            id,
            readable: 0,
            writable: 0,
            epoch: self.epoch,
            captured: chain::Captured::NONE,
            packed_table: None,
            held: None,
        };
        let checked = match origin {
            // A direct list too long to capture in the chain: its ring
            // slots will not keep describing it (see `Queue`), so copy it.
            Origin::Packed { slots, .. } if usize::from(slots) > CAPTURED => {
                self.hold(mem, &mut chain)
            }
            _ => chain::validate(mem, &mut chain),
        };
        match checked {
            Ok(()) => Ok(Some(chain)),
            Err(error) => {
                self.add_used(mem, chain, 0)?;
                Err(QueueError::InvalidChain { id, error })
            }
        }
    }

    /// Validates a long packed list into the store of held lists.
    fn hold<M: GuestMemory>(
        &mut self,
        mem: &M,
        chain: &mut DescriptorChain,
    ) -> Result<(), ChainError> {
        let key = self.held.next_key;
        let used = self.held.used;
        let free = self.held.cells.get_mut(used..).unwrap_or_default();
        let n = chain::validate_held(mem, chain, free, key)?;
        let end = used + usize::from(n);
        if let Some(owners) = self.held.owners.get_mut(used..end) {
            owners.fill(key);
        }
        self.held.used = end;
        self.held.next_key = key.wrapping_add(1);
        Ok(())
    }

    /// A reader over the device-readable bytes of `chain`, a chain this
    /// queue popped. Works for every chain, including the long packed
    /// lists the queue holds ([`DescriptorChain::is_held_by_queue`]);
    /// for those, after a reset of the queue, it fails with
    /// [`ChainError::HeldByQueue`].
    #[inline]
    pub fn reader<'a, M: GuestMemory>(
        &'a self,
        chain: &'a DescriptorChain,
        mem: &'a M,
    ) -> Reader<'a, M> {
        match chain.held {
            None => chain.reader(mem),
            Some(h) => chain.held_reader(mem, self.held_cells(chain, h)),
        }
    }

    /// A writer over the device-writable bytes of `chain`, a chain this
    /// queue popped (see [`Queue::reader`]).
    #[inline]
    pub fn writer<'a, M: GuestMemory>(
        &'a self,
        chain: &'a DescriptorChain,
        mem: &'a M,
    ) -> Writer<'a, M> {
        match chain.held {
            None => chain.writer(mem),
            Some(h) => chain.held_writer(mem, self.held_cells(chain, h)),
        }
    }

    fn held_cells(&self, chain: &DescriptorChain, h: HeldRef) -> Option<&[HeldCell]> {
        if chain.epoch != self.epoch || !self.ready {
            return None;
        }
        self.held.cells(h)
    }

    /// Returns a chain to the driver with `len` bytes written (clamped to
    /// the chain's writable length, virtio v1.2 §2.7.8.1).
    #[inline(always)]
    pub fn add_used<M: GuestMemory>(
        &mut self,
        mem: &M,
        chain: DescriptorChain,
        len: u32,
    ) -> Result<(), QueueError> {
        // Only these few fields matter here: taking them out (instead of
        // moving the whole chain into a call) keeps completion cheap.
        let slots = match chain.origin {
            Origin::Packed { slots, .. } => Some(slots),
            Origin::Split { .. } => None,
        };
        self.complete(
            mem,
            chain.id,
            chain.epoch,
            chain.held,
            slots,
            len.min(chain.writable),
        )
    }

    /// [`Queue::add_used`] on a chain's identifying fields; `len` already
    /// clamped. `slots` is `Some` for a packed-ring chain.
    #[inline(always)]
    fn complete<M: GuestMemory>(
        &mut self,
        mem: &M,
        id: u16,
        epoch: u32,
        held: Option<HeldRef>,
        slots: Option<u16>,
        len: u32,
    ) -> Result<(), QueueError> {
        self.check_ready()?;
        if epoch != self.epoch {
            return Err(QueueError::StaleChain);
        }
        if let Some(h) = held {
            self.held.release(h);
        }
        match (self.is_packed(), slots) {
            (false, None) => self.split_add_used(mem, id, len),
            (true, Some(slots)) => self.packed_add_used(mem, id, len, slots),
            // A chain of the other layout: popped before a re-enable.
            _ => Err(QueueError::StaleChain),
        }
    }

    /// Decides whether the driver wants a used-buffer notification for what
    /// was added since the last decision (virtio v1.2 §2.7.7.2 split,
    /// §2.8.10 packed). The caller performs the notification.
    pub fn needs_notification<M: GuestMemory>(&mut self, mem: &M) -> Result<bool, QueueError> {
        self.check_ready()?;
        if self.pending == 0 {
            return Ok(false);
        }
        // The used index (or used descriptor) stores must be visible before
        // we read the driver's suppression state, which the driver writes
        // before re-checking the used ring: a store-load barrier on both
        // sides.
        fence(Ordering::SeqCst);
        let pending = core::mem::take(&mut self.pending);
        if self.is_packed() {
            self.packed_needs_notification(mem, pending)
        } else {
            self.split_needs_notification(mem)
        }
    }

    /// Asks the driver for available-buffer notifications (virtio v1.2
    /// §2.7.10, §2.8.10) and returns whether buffers are already available,
    /// in which case the device should keep processing instead of waiting.
    pub fn enable_notification<M: GuestMemory>(&mut self, mem: &M) -> Result<bool, QueueError> {
        self.check_ready()?;
        if self.is_packed() {
            if self.event_idx {
                let off_wrap = self.next_avail | (u16::from(self.avail_wrap) << 15);
                mem.store_u16_release(self.device, off_wrap)?;
                mem.store_u16_release(self.device + 2, EVENT_FLAGS_DESC)?;
            } else {
                mem.store_u16_release(self.device + 2, EVENT_FLAGS_ENABLE)?;
            }
        } else if self.event_idx {
            // avail_event lives after the used ring entries.
            let at = self.device + 4 + 8 * u64::from(self.size);
            mem.store_u16_release(at, self.next_avail)?;
        } else {
            mem.store_u16_release(self.device, 0)?;
        }
        fence(Ordering::SeqCst);
        self.has_available(mem)
    }

    /// Tells the driver it need not notify (a hint; virtio v1.2 §2.7.10).
    pub fn disable_notification<M: GuestMemory>(&mut self, mem: &M) -> Result<(), QueueError> {
        self.check_ready()?;
        if self.is_packed() {
            mem.store_u16_release(self.device + 2, EVENT_FLAGS_DISABLE)?;
        } else if !self.event_idx {
            mem.store_u16_release(self.device, USED_F_NO_NOTIFY)?;
        }
        Ok(())
    }

    #[inline(always)]
    fn check_ready(&self) -> Result<(), QueueError> {
        if self.ready {
            Ok(())
        } else {
            Err(QueueError::NotReady)
        }
    }

    // ---- split ring (virtio v1.2 §2.7) ----

    #[inline]
    fn split_next<M: GuestMemory>(&mut self, mem: &M) -> Result<Option<(Origin, u16)>, QueueError> {
        if self.avail_shadow == self.next_avail {
            self.avail_shadow = mem.load_u16_acquire(self.driver + 2)?;
            if self.avail_shadow == self.next_avail {
                return Ok(None);
            }
        }
        let ahead = self.avail_shadow.wrapping_sub(self.next_avail);
        if ahead > self.size {
            return Err(QueueError::AvailIndexTooFarAhead {
                avail_idx: self.avail_shadow,
                next_avail: self.next_avail,
            });
        }
        let slot = u64::from(self.next_avail & (self.size - 1));
        // The entry is 2-aligned because the ring is (§2.7.6); an acquire
        // load costs nothing more than a plain one on the targets we serve.
        let head = mem.load_u16_acquire(self.driver + 4 + 2 * slot)?;
        if head >= self.size {
            return Err(QueueError::HeadOutOfRange { head });
        }
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(Some((
            Origin::Split {
                table: self.desc,
                size: self.size,
                head,
            },
            head,
        )))
    }

    #[inline(always)]
    fn split_add_used<M: GuestMemory>(
        &mut self,
        mem: &M,
        id: u16,
        len: u32,
    ) -> Result<(), QueueError> {
        let slot = u64::from(self.next_used & (self.size - 1));
        // The element `{ le32 id, le32 len }` as one little-endian u64.
        let elem = u64::from(id) | (u64::from(len) << 32);
        mem.write(self.device + 4 + 8 * slot, &elem.to_le_bytes())?;
        self.next_used = self.next_used.wrapping_add(1);
        // §2.7.8.1: the entry must be visible before the index.
        mem.store_u16_release(self.device + 2, self.next_used)?;
        self.pending = self.pending.wrapping_add(1);
        Ok(())
    }

    fn split_needs_notification<M: GuestMemory>(&mut self, mem: &M) -> Result<bool, QueueError> {
        if !self.event_idx {
            let flags = mem.load_u16_acquire(self.driver)?;
            return Ok(flags & AVAIL_F_NO_INTERRUPT == 0);
        }
        // used_event lives after the available ring entries.
        let used_event = mem.load_u16_acquire(self.driver + 4 + 2 * u64::from(self.size))?;
        let new = self.next_used;
        let old = self.signalled_used.replace(new);
        Ok(match old {
            None => true,
            Some(old) => need_event(used_event, new, old),
        })
    }

    // ---- packed ring (virtio v1.2 §2.8) ----

    #[inline(always)]
    fn slot_addr(&self, slot: u16) -> u64 {
        self.desc + u64::from(slot) * DESC_SIZE
    }

    /// §2.8.1: available when AVAIL matches the wrap counter and USED does not.
    #[inline(always)]
    fn is_avail(&self, flags: u16, wrap: bool) -> bool {
        (flags & AVAIL != 0) == wrap && (flags & USED != 0) != wrap
    }

    fn packed_next<M: GuestMemory>(
        &mut self,
        mem: &M,
    ) -> Result<Option<(Origin, u16)>, QueueError> {
        let first = self.next_avail;
        let flags = mem.load_u16_acquire(self.slot_addr(first) + 14)?;
        if !self.is_avail(flags, self.avail_wrap) {
            return Ok(None);
        }
        // Find the list's extent: the id is in its last descriptor (§2.8.6).
        let mut slot = first;
        let mut wrap = self.avail_wrap;
        let mut count: u16 = 0;
        let last = loop {
            let d = RawDesc::read(mem, self.slot_addr(slot), true)?;
            if count > 0 && !self.is_avail(d.flags, wrap) {
                return Err(QueueError::ListNotAvailable { slot });
            }
            count += 1;
            slot += 1;
            if slot == self.size {
                slot = 0;
                wrap = !wrap;
            }
            if d.flags & NEXT == 0 {
                break d;
            }
            if count == self.size {
                return Err(QueueError::ListUnterminated);
            }
        };
        self.next_avail = slot;
        self.avail_wrap = wrap;
        Ok(Some((
            Origin::Packed {
                ring: self.desc,
                size: self.size,
                first,
                slots: count,
            },
            last.next_or_id,
        )))
    }

    #[inline(never)]
    fn packed_add_used<M: GuestMemory>(
        &mut self,
        mem: &M,
        id: u16,
        len: u32,
        slots: u16,
    ) -> Result<(), QueueError> {
        let at = self.slot_addr(self.next_used);
        let mut b = [0u8; 6];
        b[..4].copy_from_slice(&len.to_le_bytes());
        b[4..].copy_from_slice(&id.to_le_bytes());
        mem.write(at + 8, &b)?;
        // §2.8.1: a used descriptor has AVAIL and USED both equal to the
        // device wrap counter; §2.8.3: WRITE says whether data was written.
        let mut flags = if self.used_wrap { AVAIL | USED } else { 0 };
        if len > 0 {
            flags |= WRITE;
        }
        mem.store_u16_release(at + 14, flags)?;
        // §2.8.6: skip forward by the list's length.
        let next = u32::from(self.next_used) + u32::from(slots);
        if next >= u32::from(self.size) {
            self.next_used = (next - u32::from(self.size)) as u16;
            self.used_wrap = !self.used_wrap;
        } else {
            self.next_used = next as u16;
        }
        self.pending = self.pending.wrapping_add(u64::from(slots));
        Ok(())
    }

    fn packed_needs_notification<M: GuestMemory>(
        &mut self,
        mem: &M,
        pending: u64,
    ) -> Result<bool, QueueError> {
        let off_wrap = mem.load_u16_acquire(self.driver)?;
        let flags = mem.load_u16_acquire(self.driver + 2)? & 0x3;
        Ok(match flags {
            EVENT_FLAGS_DISABLE => false,
            EVENT_FLAGS_DESC if self.event_idx => {
                if pending >= u64::from(self.size) {
                    return Ok(true);
                }
                let new = self.next_used;
                let old = new.wrapping_sub(pending as u16);
                let mut event = off_wrap & 0x7fff;
                if (off_wrap & 0x8000 != 0) != self.used_wrap {
                    event = event.wrapping_sub(self.size);
                }
                need_event(event, new, old)
            }
            // ENABLE, DESC without EVENT_IDX, and the reserved value: notify.
            _ => true,
        })
    }
}

/// The event-index test of virtio v1.2 §2.7.7.2 / §2.7.10: notify when
/// `event` lies in `[old, new)`, modulo 2^16.
#[inline(always)]
fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

#[cfg(test)]
mod tests {
    use super::need_event;

    #[test]
    fn need_event_window() {
        assert!(need_event(5, 6, 5));
        assert!(!need_event(6, 6, 5));
        assert!(need_event(0xffff, 1, 0xfffe), "window wraps");
        assert!(!need_event(3, 3, 3), "nothing new");
    }
}
