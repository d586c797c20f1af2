//! Driver memory reached through grants: addresses, the mapping cache, and
//! the `GuestMemory` seam over it.

use core::cell::RefCell;

use platform_xen::{DomId, GrantRef, XenError};
use virtio_backend::{FixedWindow, GuestMemory, MemoryError};

/// Bit 63 marks a grant address (Linux `xen,grant-dma`:
/// `XEN_GRANT_DMA_ADDR_OFF`).
pub const GRANT_BIT: u64 = 1 << 63;
/// Grant pages are 4 KiB.
pub const PAGE: u64 = 4096;

/// The driver address of `offset` in the page granted as `gref`.
pub const fn grant_address(gref: GrantRef, offset: u64) -> u64 {
    GRANT_BIT | (gref as u64) << 12 | (offset & (PAGE - 1))
}

/// The grant and offset of a driver address; `None` if bit 63 is clear or
/// the grant reference does not fit 32 bits.
pub fn split(addr: u64) -> Option<(GrantRef, u64)> {
    if addr & GRANT_BIT == 0 {
        return None;
    }
    let gref = GrantRef::try_from((addr & !GRANT_BIT) >> 12).ok()?;
    Some((gref, addr & (PAGE - 1)))
}

/// Whether `addr..addr + len` touches more than one page.
fn spans_pages(addr: u64, len: u64) -> bool {
    len > PAGE - (addr & (PAGE - 1))
}

/// One mapped grant page, as the platform reached it.
pub struct Mapped<'a> {
    /// The page, at offsets `0..PAGE`.
    pub page: FixedWindow<'a>,
    /// What the platform needs to unmap it (the slot, the handle).
    pub token: u64,
}

/// How the platform maps a granted page into one of its slots and gives
/// the page back; it owns the physical window and the `unsafe`.
pub trait GrantMapper<'a> {
    /// Maps page `gref` of domain `dom` (read-only unless `writable`) into
    /// slot `slot`.
    fn map(
        &mut self,
        slot: usize,
        dom: DomId,
        gref: GrantRef,
        writable: bool,
    ) -> Result<Mapped<'a>, XenError>;
    /// Unmaps what [`map`](Self::map) mapped.
    fn unmap(&mut self, mapped: Mapped<'a>) -> Result<(), XenError>;
}

struct Slot<'a> {
    gref: GrantRef,
    mapped: Mapped<'a>,
    used: u64,
}

struct Cache<'a, M, const SLOTS: usize> {
    mapper: M,
    slots: [Option<Slot<'a>>; SLOTS],
    clock: u64,
    maps: u64,
    unmaps: u64,
    accesses: u64,
}

/// Figures of the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrantStats {
    /// Pages mapped (each a hypercall).
    pub maps: u64,
    /// Pages unmapped (evicted or released).
    pub unmaps: u64,
    /// Pages mapped now.
    pub mapped: usize,
    /// Accesses to a granted page (each piece of a read or write, each
    /// ring index): what `GNTTABOP_copy` would have made hypercalls of.
    pub accesses: u64,
}

/// Memory of domain `dom` reached through its grants, at most `SLOTS`
/// pages mapped at a time. Every page is mapped writable (virtio buffers
/// are read and written through the same grants).
///
/// An access is checked whole (every page mappable) before a byte moves.
/// A range of more pages than `SLOTS` is refused: the slots could not hold
/// it at once, and a driver must not make one check cost more than `SLOTS`
/// map hypercalls (a descriptor claiming 2 GiB). `SLOTS` should exceed the
/// pages one access spans (a descriptor table, a 136-byte SCMI buffer: two
/// at most), or a page the granter revokes between the check and the copy
/// can leave a write half done.
pub struct GrantMemory<'a, M, const SLOTS: usize> {
    dom: DomId,
    cache: RefCell<Cache<'a, M, SLOTS>>,
}

impl<'a, M: GrantMapper<'a>, const SLOTS: usize> GrantMemory<'a, M, SLOTS> {
    /// The memory `dom` grants, through `mapper`.
    pub fn new(dom: DomId, mapper: M) -> Self {
        GrantMemory {
            dom,
            cache: RefCell::new(Cache {
                mapper,
                slots: core::array::from_fn(|_| None),
                clock: 0,
                maps: 0,
                unmaps: 0,
                accesses: 0,
            }),
        }
    }

    /// What the cache did so far.
    pub fn stats(&self) -> GrantStats {
        // Nothing else borrows the cache while a caller can ask (an access
        // holds it only inside `with_page`).
        let Ok(c) = self.cache.try_borrow() else {
            return GrantStats::default();
        };
        GrantStats {
            maps: c.maps,
            unmaps: c.unmaps,
            mapped: c.slots.iter().flatten().count(),
            accesses: c.accesses,
        }
    }

    /// Unmaps every page (the driver went away, or reset the device:
    /// nothing of its memory stays mapped). Errors are counted, not
    /// returned: the slots are free either way.
    pub fn release_all(&self) -> usize {
        let Ok(mut c) = self.cache.try_borrow_mut() else {
            return 0;
        };
        let mut failed = 0;
        let Cache {
            mapper,
            slots,
            unmaps,
            ..
        } = &mut *c;
        for s in slots.iter_mut() {
            if let Some(slot) = s.take() {
                *unmaps += 1;
                failed += usize::from(mapper.unmap(slot.mapped).is_err());
            }
        }
        failed
    }

    /// Runs `f` on the page holding `gref`, mapping it first if needed
    /// (evicting the least recently used page when every slot is taken).
    fn with_page<R>(
        &self,
        gref: GrantRef,
        f: impl FnOnce(&FixedWindow<'a>) -> Result<R, MemoryError>,
    ) -> Result<R, MemoryError> {
        let refused = MemoryError::OutOfRange {
            addr: grant_address(gref, 0),
            len: PAGE,
        };
        // Never borrowed twice (`f` does not reach the memory again); a
        // refusal, not a panic, if it ever were.
        let mut c = self.cache.try_borrow_mut().map_err(|_| refused)?;
        c.clock += 1;
        c.accesses += 1;
        let now = c.clock;
        if let Some(i) = c
            .slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.gref == gref))
        {
            let slot = c.slots.get_mut(i).and_then(Option::as_mut).ok_or(refused)?;
            slot.used = now;
            return f(&slot.mapped.page);
        }
        // A free slot, or the least recently used one, unmapped first.
        let i = match c.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                let (i, _) = c
                    .slots
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.as_ref().map(|s| (i, s.used)))
                    .min_by_key(|&(_, used)| used)
                    .ok_or(refused)?;
                let old = c.slots.get_mut(i).and_then(Option::take).ok_or(refused)?;
                c.unmaps += 1;
                // An unmap that fails leaves the slot unusable: refuse.
                c.mapper.unmap(old.mapped).map_err(|_| refused)?;
                i
            }
        };
        let mapped = c.mapper.map(i, self.dom, gref, true).map_err(|_| refused)?;
        c.maps += 1;
        let slot = c.slots.get_mut(i).ok_or(refused)?.insert(Slot {
            gref,
            mapped,
            used: now,
        });
        f(&slot.mapped.page)
    }

    /// Calls `f(gref, offset in page, offset in the access, length)` for
    /// each page-sized piece of `addr..addr + len`, after checking the
    /// whole range is grant-addressed and does not wrap.
    fn pieces(
        addr: u64,
        len: u64,
        mut f: impl FnMut(GrantRef, u64, usize, usize) -> Result<(), MemoryError>,
    ) -> Result<(), MemoryError> {
        let end = addr
            .checked_add(len)
            .ok_or(MemoryError::Wraps { addr, len })?;
        let bad = MemoryError::OutOfRange { addr, len };
        if len > 0 && (split(addr).is_none() || split(end - 1).is_none()) {
            return Err(bad);
        }
        let mut at = addr;
        while at < end {
            let (gref, off) = split(at).ok_or(bad)?;
            let n = (PAGE - off).min(end - at);
            f(gref, off, (at - addr) as usize, n as usize)?;
            at += n;
        }
        Ok(())
    }
}

impl<'a, M: GrantMapper<'a>, const SLOTS: usize> GuestMemory for GrantMemory<'a, M, SLOTS> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        // Checked whole first: a refused range moves no byte (a range in
        // one page is checked by mapping it, in the copy itself).
        if spans_pages(addr, buf.len() as u64) {
            self.check_range(addr, buf.len() as u64, 1)?;
        }
        Self::pieces(addr, buf.len() as u64, |gref, off, at, n| {
            let part = buf.get_mut(at..at + n).ok_or(MemoryError::OutOfRange {
                addr,
                len: n as u64,
            })?;
            self.with_page(gref, |p| p.read(off, part))
        })
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        if spans_pages(addr, data.len() as u64) {
            self.check_range(addr, data.len() as u64, 1)?;
        }
        Self::pieces(addr, data.len() as u64, |gref, off, at, n| {
            let part = data.get(at..at + n).ok_or(MemoryError::OutOfRange {
                addr,
                len: n as u64,
            })?;
            self.with_page(gref, |p| p.write(off, part))
        })
    }

    fn load_u16_acquire(&self, addr: u64) -> Result<u16, MemoryError> {
        let (gref, off) = split(addr).ok_or(MemoryError::OutOfRange { addr, len: 2 })?;
        // Aligned u16s never cross a page.
        self.with_page(gref, |p| p.load_u16_acquire(off))
    }

    fn store_u16_release(&self, addr: u64, value: u16) -> Result<(), MemoryError> {
        let (gref, off) = split(addr).ok_or(MemoryError::OutOfRange { addr, len: 2 })?;
        self.with_page(gref, |p| p.store_u16_release(off, value))
    }

    fn check_range(&self, addr: u64, len: u64, align: u64) -> Result<(), MemoryError> {
        if align > 1 && !addr.is_multiple_of(align) {
            return Err(MemoryError::Misaligned { addr, align });
        }
        let first = addr / PAGE;
        let last = addr.saturating_add(len.max(1) - 1) / PAGE;
        if last - first >= SLOTS as u64 {
            return Err(MemoryError::OutOfRange { addr, len });
        }
        // Every page of the range must be mappable: the granter may not
        // have granted it (or revoked it before we mapped it).
        Self::pieces(addr, len, |gref, _, _, _| self.with_page(gref, |_| Ok(())))
    }
}
