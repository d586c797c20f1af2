//! The `GuestMemory` seam: the only way device code touches driver memory.
//!
//! Every address and length a driver supplies is an allegation. Each access
//! is checked in full before a byte moves: the range must not wrap around the
//! 64-bit address space, must lie entirely inside memory the device was given,
//! and ring-index accesses must be naturally aligned. A failed check returns a
//! [`MemoryError`] and touches nothing.
//!
//! Two implementations cover the deployments:
//!
//! * [`FixedWindow`]: one contiguous window. Driver addresses are offsets
//!   from a base (AMP shared memory, ivshmem, Xen static shared memory) or
//!   intermediate physical addresses starting at a base.
//! * [`RegionTable`]: a small, fixed-capacity table of regions (the
//!   vhost-user memory table, FF-A shared areas addressed as
//!   `area_id << 48 | offset`). Plain reads and writes may cross from one
//!   region into a directly adjacent one; ring-index accesses may not.
//!
//! Ring indices are read with acquire and written with release ordering
//! (virtio v1.2 §2.7.13.3 and §2.7.8: descriptors and ring entries must be
//! visible before the index that publishes them). Where the peer is not
//! cache-coherent (a Cortex-R safety island, say), a [`CacheMaintenance`]
//! implementation invalidates before the device reads and cleans after it
//! writes.

use core::marker::PhantomData;
use core::ptr::NonNull;

/// Why an access to driver memory was refused. Nothing was read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryError {
    /// `addr + len` does not fit in 64 bits.
    Wraps {
        /// Start of the refused range.
        addr: u64,
        /// Length of the refused range.
        len: u64,
    },
    /// Some byte of the range lies outside the memory the device may access.
    OutOfRange {
        /// Start of the refused range.
        addr: u64,
        /// Length of the refused range.
        len: u64,
    },
    /// The address is not aligned as the access requires.
    Misaligned {
        /// The refused address.
        addr: u64,
        /// The alignment the access needed.
        align: u64,
    },
}

impl core::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MemoryError::Wraps { addr, len } => {
                write!(f, "{len} bytes at {addr:#x} wrap around the address space")
            }
            MemoryError::OutOfRange { addr, len } => {
                write!(
                    f,
                    "{len} bytes at {addr:#x} are outside the driver memory the device may access"
                )
            }
            MemoryError::Misaligned { addr, align } => {
                write!(f, "address {addr:#x} is not {align}-byte aligned")
            }
        }
    }
}

/// Driver memory as the device sees it.
///
/// Implementations check every range in full on every call and never touch
/// memory outside the ranges they were given. All multi-byte values in virtio
/// structures are little-endian; the index accessors convert.
pub trait GuestMemory {
    /// Copies `buf.len()` bytes starting at driver address `addr` into `buf`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError>;

    /// Copies `data` to driver address `addr`.
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), MemoryError>;

    /// Loads a little-endian `u16` ring index or flags word with acquire
    /// ordering. `addr` must be 2-byte aligned.
    fn load_u16_acquire(&self, addr: u64) -> Result<u16, MemoryError>;

    /// Stores a little-endian `u16` ring index or flags word with release
    /// ordering. `addr` must be 2-byte aligned.
    fn store_u16_release(&self, addr: u64, value: u16) -> Result<(), MemoryError>;

    /// Checks, without touching memory, that `[addr, addr + len)` could be
    /// accessed and that `addr` is a multiple of `align` (a power of two).
    fn check_range(&self, addr: u64, len: u64, align: u64) -> Result<(), MemoryError>;
}

impl<T: GuestMemory + ?Sized> GuestMemory for &T {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        (**self).read(addr, buf)
    }
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        (**self).write(addr, data)
    }
    fn load_u16_acquire(&self, addr: u64) -> Result<u16, MemoryError> {
        (**self).load_u16_acquire(addr)
    }
    fn store_u16_release(&self, addr: u64, value: u16) -> Result<(), MemoryError> {
        (**self).store_u16_release(addr, value)
    }
    fn check_range(&self, addr: u64, len: u64, align: u64) -> Result<(), MemoryError> {
        (**self).check_range(addr, len, align)
    }
}

/// Cache maintenance around device accesses, for peers that are not
/// cache-coherent with the device's CPU.
///
/// Addresses are the device's own virtual addresses of the bytes about to be
/// read or just written. Implementations must round to cache lines in a way
/// that cannot discard the device's own dirty data (clean+invalidate partial
/// lines).
pub trait CacheMaintenance {
    /// Called before the device reads `[va, va + len)`: make the peer's
    /// writes visible (invalidate).
    fn before_read(&self, va: usize, len: usize);
    /// Called after the device wrote `[va, va + len)`: make the writes
    /// visible to the peer (clean).
    fn after_write(&self, va: usize, len: usize);
}

/// The peer shares the device's cache coherency domain: nothing to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Coherent;

impl CacheMaintenance for Coherent {
    #[inline(always)]
    fn before_read(&self, _va: usize, _len: usize) {}
    #[inline(always)]
    fn after_write(&self, _va: usize, _len: usize) {}
}

/// Host and driver addresses of a region agree modulo this many bytes.
pub const HOST_ALIGN: u64 = 8;

/// Whether `host` and `guest_base` agree modulo [`HOST_ALIGN`].
fn congruent(host: NonNull<u8>, guest_base: u64) -> bool {
    (host.as_ptr() as usize as u64 ^ guest_base) & (HOST_ALIGN - 1) == 0
}

/// Checks `addr..addr+len` for wrap-around and alignment; returns the end.
#[inline(always)]
fn check_shape(addr: u64, len: u64, align: u64) -> Result<u64, MemoryError> {
    let end = addr
        .checked_add(len)
        .ok_or(MemoryError::Wraps { addr, len })?;
    if align > 1 && addr & (align - 1) != 0 {
        return Err(MemoryError::Misaligned { addr, align });
    }
    Ok(end)
}

/// One contiguous window of driver memory.
///
/// Driver address `guest_base + n` is byte `n` of the window. With
/// `guest_base == 0` driver addresses are offsets into the shared memory.
pub struct FixedWindow<'a, C: CacheMaintenance = Coherent> {
    host: NonNull<u8>,
    len: u64,
    guest_base: u64,
    cache: C,
    _memory: PhantomData<&'a [core::cell::UnsafeCell<u8>]>,
}

// SAFETY: the window only hands out copies of bytes and performs atomic
// index accesses; the memory is shared with another agent by construction, so
// sharing the window between threads adds no new hazard.
unsafe impl<C: CacheMaintenance + Sync> Sync for FixedWindow<'_, C> {}
// SAFETY: as above; the window holds no thread-bound state.
unsafe impl<C: CacheMaintenance + Send> Send for FixedWindow<'_, C> {}

impl<C: CacheMaintenance> core::fmt::Debug for FixedWindow<'_, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FixedWindow")
            .field("host", &self.host)
            .field("len", &self.len)
            .field("guest_base", &self.guest_base)
            .finish()
    }
}

impl<'a, C: CacheMaintenance> FixedWindow<'a, C> {
    /// Creates a window of `len` bytes at host address `host`, which the
    /// driver addresses as `guest_base..guest_base + len`.
    ///
    /// Returns `None` if the driver-side range would wrap around, or if
    /// `host` and `guest_base` differ modulo [`HOST_ALIGN`]: a driver
    /// address the ring rules make aligned (virtio v1.2 §2.7) must be just
    /// as aligned in the host, where the device accesses it atomically.
    ///
    /// # Safety
    ///
    /// For the whole lifetime `'a`, `host..host + len` must be valid for
    /// reads and writes, and no Rust reference to any of its bytes may exist.
    /// Other agents (the driver, other CPUs) may access the memory
    /// concurrently; the window only uses volatile copies and atomics on it.
    pub unsafe fn new(host: NonNull<u8>, len: usize, guest_base: u64, cache: C) -> Option<Self> {
        let len = len as u64;
        guest_base.checked_add(len)?;
        if !congruent(host, guest_base) {
            return None;
        }
        Some(Self {
            host,
            len,
            guest_base,
            cache,
            _memory: PhantomData,
        })
    }

    /// Driver address of the first byte of the window.
    pub fn guest_base(&self) -> u64 {
        self.guest_base
    }

    /// Size of the window in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Translates a checked range into a host pointer.
    #[inline(always)]
    fn translate(&self, addr: u64, len: u64, align: u64) -> Result<*mut u8, MemoryError> {
        // `offset <= self.len` and `len <= self.len - offset` together say
        // `guest_base <= addr` and `addr + len <= guest_base + self.len`:
        // an `addr` below the base wraps to an offset above `self.len`,
        // since `new` made `guest_base + self.len` fit in 64 bits. So the
        // range neither wraps nor leaves the window. Which error it is gets
        // worked out only on failure.
        let offset = addr.wrapping_sub(self.guest_base);
        let room = self.len.wrapping_sub(offset);
        if len > room || offset > self.len || (align > 1 && addr & (align - 1) != 0) {
            return Err(self.refusal(addr, len, align));
        }
        // In range, so the offset fits in usize (the window does).
        Ok(self.host.as_ptr().wrapping_add(offset as usize))
    }

    /// Why `translate` refused a range.
    #[cold]
    #[inline(never)]
    fn refusal(&self, addr: u64, len: u64, align: u64) -> MemoryError {
        match check_shape(addr, len, align) {
            Err(e) => e,
            Ok(_) => MemoryError::OutOfRange { addr, len },
        }
    }
}

impl<C: CacheMaintenance> GuestMemory for FixedWindow<'_, C> {
    #[inline(always)]
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let p = self.translate(addr, buf.len() as u64, 1)?;
        self.cache.before_read(p as usize, buf.len());
        // SAFETY: `translate` proved `p..p + buf.len()` lies inside the
        // window, which `new`'s contract makes valid for reads.
        unsafe { raw::copy_from(p, buf) };
        Ok(())
    }

    #[inline(always)]
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        let p = self.translate(addr, data.len() as u64, 1)?;
        // SAFETY: `translate` proved `p..p + data.len()` lies inside the
        // window, which `new`'s contract makes valid for writes.
        unsafe { raw::copy_to(p, data) };
        self.cache.after_write(p as usize, data.len());
        Ok(())
    }

    #[inline]
    fn load_u16_acquire(&self, addr: u64) -> Result<u16, MemoryError> {
        let p = self.translate(addr, 2, 2)?;
        self.cache.before_read(p as usize, 2);
        // SAFETY: in range and 2-aligned (checked by `translate`).
        Ok(unsafe { raw::load_u16_acquire(p) })
    }

    #[inline]
    fn store_u16_release(&self, addr: u64, value: u16) -> Result<(), MemoryError> {
        let p = self.translate(addr, 2, 2)?;
        // SAFETY: in range and 2-aligned (checked by `translate`).
        unsafe { raw::store_u16_release(p, value) };
        self.cache.after_write(p as usize, 2);
        Ok(())
    }

    #[inline]
    fn check_range(&self, addr: u64, len: u64, align: u64) -> Result<(), MemoryError> {
        self.translate(addr, len, align).map(|_| ())
    }
}

/// Why a region could not be added to a [`RegionTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionError {
    /// The table is full.
    TableFull,
    /// The region is empty or its driver-side range wraps around.
    InvalidRange,
    /// The region overlaps one already in the table.
    Overlap,
    /// The host and driver addresses differ modulo [`HOST_ALIGN`].
    Misaligned,
}

impl core::fmt::Display for RegionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RegionError::TableFull => "the region table is full",
            RegionError::InvalidRange => "the region is empty or wraps around",
            RegionError::Overlap => "the region overlaps another one",
            RegionError::Misaligned => "host and driver addresses of the region differ modulo 8",
        })
    }
}

#[derive(Clone, Copy)]
struct Region {
    guest_base: u64,
    len: u64,
    host: NonNull<u8>,
}

/// Up to `N` non-overlapping regions of driver memory.
pub struct RegionTable<'a, const N: usize, C: CacheMaintenance = Coherent> {
    regions: [Option<Region>; N],
    cache: C,
    _memory: PhantomData<&'a [core::cell::UnsafeCell<u8>]>,
}

// SAFETY: see `FixedWindow`; the table holds only addresses and lengths.
unsafe impl<const N: usize, C: CacheMaintenance + Sync> Sync for RegionTable<'_, N, C> {}
// SAFETY: see `FixedWindow`.
unsafe impl<const N: usize, C: CacheMaintenance + Send> Send for RegionTable<'_, N, C> {}

impl<const N: usize, C: CacheMaintenance> core::fmt::Debug for RegionTable<'_, N, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut l = f.debug_list();
        for r in self.regions.iter().flatten() {
            l.entry(&(r.guest_base, r.len));
        }
        l.finish()
    }
}

impl<'a, const N: usize, C: CacheMaintenance> RegionTable<'a, N, C> {
    /// An empty table.
    pub fn new(cache: C) -> Self {
        Self {
            regions: [None; N],
            cache,
            _memory: PhantomData,
        }
    }

    /// Adds a region of `len` bytes at host address `host`, which the driver
    /// addresses as `guest_base..guest_base + len`.
    ///
    /// # Safety
    ///
    /// As for [`FixedWindow::new`]: for `'a` the host range must be valid for
    /// reads and writes and no Rust reference to it may exist.
    pub unsafe fn add(
        &mut self,
        guest_base: u64,
        host: NonNull<u8>,
        len: usize,
    ) -> Result<(), RegionError> {
        let len = len as u64;
        let end = guest_base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(RegionError::InvalidRange)?;
        if !congruent(host, guest_base) {
            return Err(RegionError::Misaligned);
        }
        for r in self.regions.iter().flatten() {
            if guest_base < r.guest_base + r.len && r.guest_base < end {
                return Err(RegionError::Overlap);
            }
        }
        let slot = self
            .regions
            .iter_mut()
            .find(|r| r.is_none())
            .ok_or(RegionError::TableFull)?;
        *slot = Some(Region {
            guest_base,
            len,
            host,
        });
        Ok(())
    }

    /// Removes the region that starts at driver address `guest_base`.
    /// Returns whether one was removed.
    pub fn remove(&mut self, guest_base: u64) -> bool {
        for r in self.regions.iter_mut() {
            if matches!(r, Some(x) if x.guest_base == guest_base) {
                *r = None;
                return true;
            }
        }
        false
    }

    /// Removes every region.
    pub fn clear(&mut self) {
        self.regions = [None; N];
    }

    /// Number of regions in the table.
    pub fn count(&self) -> usize {
        self.regions.iter().flatten().count()
    }

    /// The region containing `addr`, if any.
    #[inline]
    fn find(&self, addr: u64) -> Option<&Region> {
        self.regions
            .iter()
            .flatten()
            .find(|r| addr >= r.guest_base && addr - r.guest_base < r.len)
    }

    /// Splits a checked range into pieces that each lie in one region and
    /// calls `f(host pointer, offset into the range, piece length)` on each.
    /// Checks the whole range before calling `f` at all.
    fn for_each_piece(
        &self,
        addr: u64,
        len: u64,
        mut f: impl FnMut(*mut u8, usize, usize),
    ) -> Result<(), MemoryError> {
        check_shape(addr, len, 1)?;
        // First pass: prove every byte is covered.
        let mut cur = addr;
        let mut left = len;
        while left > 0 {
            let r = self
                .find(cur)
                .ok_or(MemoryError::OutOfRange { addr, len })?;
            let take = left.min(r.len - (cur - r.guest_base));
            cur += take;
            left -= take;
        }
        // Second pass: move the bytes.
        let mut cur = addr;
        let mut left = len;
        while left > 0 {
            let Some(r) = self.find(cur) else { break };
            let off = cur - r.guest_base;
            let take = left.min(r.len - off);
            f(
                r.host.as_ptr().wrapping_add(off as usize),
                (cur - addr) as usize,
                take as usize,
            );
            cur += take;
            left -= take;
        }
        Ok(())
    }

    /// Translates a range that must lie inside one region.
    fn translate_single(&self, addr: u64, len: u64, align: u64) -> Result<*mut u8, MemoryError> {
        let end = check_shape(addr, len, align)?;
        let r = self
            .find(addr)
            .ok_or(MemoryError::OutOfRange { addr, len })?;
        if end - r.guest_base > r.len {
            return Err(MemoryError::OutOfRange { addr, len });
        }
        Ok(r.host.as_ptr().wrapping_add((addr - r.guest_base) as usize))
    }
}

impl<const N: usize, C: CacheMaintenance> GuestMemory for RegionTable<'_, N, C> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.for_each_piece(addr, buf.len() as u64, |p, at, n| {
            self.cache.before_read(p as usize, n);
            // The pieces partition `0..buf.len()`: always `Some`.
            if let Some(dst) = buf.get_mut(at..at + n) {
                // SAFETY: `for_each_piece` only yields pieces inside a
                // region, which `add`'s contract makes valid for reads.
                unsafe { raw::copy_from(p, dst) };
            }
        })
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.for_each_piece(addr, data.len() as u64, |p, at, n| {
            // The pieces partition `0..data.len()`: always `Some`.
            if let Some(src) = data.get(at..at + n) {
                // SAFETY: as in `read`, for writes.
                unsafe { raw::copy_to(p, src) };
                self.cache.after_write(p as usize, n);
            }
        })
    }

    fn load_u16_acquire(&self, addr: u64) -> Result<u16, MemoryError> {
        let p = self.translate_single(addr, 2, 2)?;
        self.cache.before_read(p as usize, 2);
        // SAFETY: inside one region and 2-aligned.
        Ok(unsafe { raw::load_u16_acquire(p) })
    }

    fn store_u16_release(&self, addr: u64, value: u16) -> Result<(), MemoryError> {
        let p = self.translate_single(addr, 2, 2)?;
        // SAFETY: inside one region and 2-aligned.
        unsafe { raw::store_u16_release(p, value) };
        self.cache.after_write(p as usize, 2);
        Ok(())
    }

    fn check_range(&self, addr: u64, len: u64, align: u64) -> Result<(), MemoryError> {
        check_shape(addr, len, align)?;
        self.for_each_piece(addr, len, |_, _, _| {})
    }
}

/// The raw accesses. Everything `unsafe` in this crate is in this module.
mod raw {
    use core::sync::atomic::{AtomicU16, Ordering};

    /// Volatile copy out of shared memory: each byte is read exactly once,
    /// so a driver changing the memory concurrently cannot make the device
    /// see two different values for one field. Every access is naturally
    /// aligned and as wide as the position allows, up to a `u64` (a
    /// volatile `[u8; 8]` would be split into bytes): a byte, a `u16` and
    /// a `u32` as needed to reach 8-byte alignment, whole `u64`s, then a
    /// `u32`, a `u16` and a byte as needed for the tail. A range too short
    /// to reach 8-byte alignment is copied byte by byte.
    ///
    /// # Safety
    ///
    /// `src..src + dst.len()` must be valid for reads.
    // Inlined into every access on hosts (the benchmarks' speed); out of
    // line on bare metal, where one copy loop instead of one per call site
    // keeps firmware text small (about 4.5 KiB of the QEMU virt image).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline(never))]
    pub(super) unsafe fn copy_from(src: *const u8, dst: &mut [u8]) {
        let len = dst.len();
        let dist = (src as usize).wrapping_neg() & 7;
        if dist > len {
            for (at, d) in dst.iter_mut().enumerate() {
                // SAFETY: `at < len`, inside the caller's range.
                *d = unsafe { src.add(at).read_volatile() };
            }
            return;
        }
        let mut at = 0usize;
        macro_rules! step {
            ($t:ty, $n:literal) => {{
                // Every caller below has checked `at + $n <= len`; taking
                // the chunk through `get` proves it here without a panic
                // path (the `else` is unreachable).
                let Some(d) = dst.get_mut(at..).and_then(|d| d.first_chunk_mut::<$n>()) else {
                    return;
                };
                // SAFETY: `d` is `dst[at..at + $n]`, so `at + $n <= len`
                // (inside the caller's range); every caller below has
                // checked that `src + at` is aligned to `$n`.
                let v = unsafe { src.add(at).cast::<$t>().read_volatile() };
                *d = v.to_ne_bytes();
                at += $n;
            }};
        }
        // `dist <= len`: after these, `src + at` is 8-aligned.
        if dist != 0 {
            if dist & 3 != 0 {
                if dist & 1 != 0 {
                    step!(u8, 1);
                }
                if dist & 2 != 0 {
                    step!(u16, 2);
                }
            }
            if dist & 4 != 0 {
                step!(u32, 4);
            }
        }
        while at + 16 <= len {
            step!(u64, 8);
            step!(u64, 8);
        }
        // Most copies end here; the tail is checked only when there is one.
        if at < len {
            if at + 8 <= len {
                step!(u64, 8);
            }
            if at + 4 <= len {
                step!(u32, 4);
            }
            if at + 2 <= len {
                step!(u16, 2);
            }
            if let Some(d) = dst.get_mut(at) {
                // SAFETY: `at < len`, inside the caller's range.
                *d = unsafe { src.add(at).read_volatile() };
            }
        }
    }

    /// Volatile copy into shared memory with the accesses of [`copy_from`].
    ///
    /// # Safety
    ///
    /// `dst..dst + src.len()` must be valid for writes.
    // Inlined into every access on hosts (the benchmarks' speed); out of
    // line on bare metal, where one copy loop instead of one per call site
    // keeps firmware text small (about 4.5 KiB of the QEMU virt image).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline(never))]
    pub(super) unsafe fn copy_to(dst: *mut u8, src: &[u8]) {
        let len = src.len();
        let dist = (dst as usize).wrapping_neg() & 7;
        if dist > len {
            for (at, &b) in src.iter().enumerate() {
                // SAFETY: `at < len`, inside the caller's range.
                unsafe { dst.add(at).write_volatile(b) };
            }
            return;
        }
        let mut at = 0usize;
        macro_rules! step {
            ($t:ty, $n:literal) => {{
                // As in `copy_from`: the `else` is unreachable.
                let Some(v) = src.get(at..).and_then(|s| s.first_chunk::<$n>()) else {
                    return;
                };
                // SAFETY: `v` is `src[at..at + $n]`, so `at + $n <= len`
                // (inside the caller's range); every caller below has
                // checked that `dst + at` is aligned to `$n`.
                unsafe {
                    dst.add(at)
                        .cast::<$t>()
                        .write_volatile(<$t>::from_ne_bytes(*v))
                };
                at += $n;
            }};
        }
        if dist != 0 {
            if dist & 3 != 0 {
                if dist & 1 != 0 {
                    step!(u8, 1);
                }
                if dist & 2 != 0 {
                    step!(u16, 2);
                }
            }
            if dist & 4 != 0 {
                step!(u32, 4);
            }
        }
        while at + 16 <= len {
            step!(u64, 8);
            step!(u64, 8);
        }
        if at < len {
            if at + 8 <= len {
                step!(u64, 8);
            }
            if at + 4 <= len {
                step!(u32, 4);
            }
            if at + 2 <= len {
                step!(u16, 2);
            }
            if let Some(&b) = src.get(at) {
                // SAFETY: `at < len`, inside the caller's range.
                unsafe { dst.add(at).write_volatile(b) };
            }
        }
    }

    /// # Safety
    ///
    /// `p` must be valid for reads of 2 bytes and 2-byte aligned.
    #[inline(always)]
    pub(super) unsafe fn load_u16_acquire(p: *const u8) -> u16 {
        // SAFETY: valid and aligned per the contract; `AtomicU16` has the
        // size and alignment of `u16`, and all accesses the device makes to
        // ring indices go through atomics.
        let a = unsafe { AtomicU16::from_ptr(p.cast_mut().cast::<u16>()) };
        u16::from_le(a.load(Ordering::Acquire))
    }

    /// # Safety
    ///
    /// `p` must be valid for writes of 2 bytes and 2-byte aligned.
    #[inline(always)]
    pub(super) unsafe fn store_u16_release(p: *mut u8, value: u16) {
        // SAFETY: as in `load_u16_acquire`.
        let a = unsafe { AtomicU16::from_ptr(p.cast::<u16>()) };
        a.store(value.to_le(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test memory with the alignment real shared memory has.
    #[repr(align(16))]
    struct Aligned<const N: usize>([u8; N]);

    fn window(buf: &mut [u8], base: u64) -> FixedWindow<'_> {
        let p = NonNull::new(buf.as_mut_ptr()).unwrap();
        // SAFETY: `buf` outlives the window and is only accessed through it.
        unsafe { FixedWindow::new(p, buf.len(), base, Coherent) }.unwrap()
    }

    #[test]
    fn fixed_window_checks_every_range() {
        let mut a = Aligned([0u8; 64]);
        let buf = &mut a.0;
        let w = window(buf, 0x1000);
        w.write(0x1000, &[1, 2, 3]).unwrap();
        let mut out = [0u8; 3];
        w.read(0x1000, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3]);
        // Exactly the last byte is fine, one past is not.
        w.write(0x103f, &[9]).unwrap();
        assert_eq!(
            w.write(0x103f, &[9, 9]),
            Err(MemoryError::OutOfRange {
                addr: 0x103f,
                len: 2
            })
        );
        // Below the base.
        assert!(matches!(
            w.read(0xfff, &mut out),
            Err(MemoryError::OutOfRange { .. })
        ));
        // Wrap-around is its own error.
        assert_eq!(
            w.read(u64::MAX - 1, &mut out),
            Err(MemoryError::Wraps {
                addr: u64::MAX - 1,
                len: 3
            })
        );
        // Alignment for indices.
        assert_eq!(
            w.load_u16_acquire(0x1001),
            Err(MemoryError::Misaligned {
                addr: 0x1001,
                align: 2
            })
        );
        w.store_u16_release(0x1010, 0xbeef).unwrap();
        assert_eq!(w.load_u16_acquire(0x1010), Ok(0xbeef));
        assert_eq!(&buf[0x10..0x12], &[0xef, 0xbe], "indices are little-endian");
    }

    #[test]
    fn copies_at_every_alignment_and_length_touch_exactly_their_bytes() {
        for start in 0..16u64 {
            for len in 0..40usize {
                let mut a = Aligned([0xeeu8; 64]);
                let w = window(&mut a.0, 0);
                let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(7) ^ 0x5a).collect();
                w.write(start, &data).unwrap();
                let mut back = vec![0u8; len];
                w.read(start, &mut back).unwrap();
                assert_eq!(back, data, "start {start}, len {len}");
                let mut all = [0u8; 64];
                w.read(0, &mut all).unwrap();
                let end = start as usize + len;
                assert!(all[..start as usize].iter().all(|&b| b == 0xee));
                assert!(all[end..].iter().all(|&b| b == 0xee));
            }
        }
    }

    #[test]
    fn fixed_window_refuses_wrapping_construction() {
        let mut a = Aligned([0u8; 16]);
        let p = NonNull::new(a.0.as_mut_ptr()).unwrap();
        // SAFETY: not used.
        assert!(unsafe { FixedWindow::new(p, 16, u64::MAX - 4, Coherent) }.is_none());
        // SAFETY: not used.
        assert!(unsafe { FixedWindow::new(p, 16, 0x1002, Coherent) }.is_none());
        // SAFETY: not used.
        assert!(unsafe { FixedWindow::new(p.add(2), 8, 0x1002, Coherent) }.is_some());
    }

    #[test]
    fn zero_length_access_at_end_is_in_range() {
        let mut a = Aligned([0u8; 16]);
        let w = window(&mut a.0, 0);
        assert_eq!(w.read(16, &mut []), Ok(()));
        assert!(w.read(17, &mut []).is_err());
    }

    #[test]
    fn region_table_spans_adjacent_regions_only() {
        let (mut a, mut b, mut c) = (Aligned([0u8; 32]), Aligned([0u8; 32]), Aligned([0u8; 32]));
        let (a, b, c) = (&mut a.0, &mut b.0, &mut c.0);
        let mut t: RegionTable<'_, 4> = RegionTable::new(Coherent);
        // SAFETY: the buffers outlive the table and are only used through it.
        unsafe {
            t.add(0x1000, NonNull::new(a.as_mut_ptr()).unwrap(), 32)
                .unwrap();
            t.add(0x1020, NonNull::new(b.as_mut_ptr()).unwrap(), 32)
                .unwrap();
            // A gap between 0x1040 and 0x2000.
            t.add(0x2000, NonNull::new(c.as_mut_ptr()).unwrap(), 32)
                .unwrap();
            assert_eq!(
                t.add(0x1010, NonNull::new(c.as_mut_ptr()).unwrap(), 8),
                Err(RegionError::Overlap)
            );
            assert_eq!(
                t.add(u64::MAX, NonNull::new(c.as_mut_ptr()).unwrap(), 8),
                Err(RegionError::InvalidRange)
            );
            assert_eq!(
                t.add(0x3001, NonNull::new(c.as_mut_ptr()).unwrap(), 8),
                Err(RegionError::Misaligned)
            );
        }
        let data: std::vec::Vec<u8> = (0..16).collect();
        t.write(0x1018, &data).unwrap();
        let mut out = [0u8; 16];
        t.read(0x1018, &mut out).unwrap();
        assert_eq!(&out[..], &data[..]);
        // Crossing into the gap fails and writes nothing.
        assert!(t.write(0x1038, &[0xaa; 16]).is_err());
        // An index may not straddle regions (it cannot here: aligned), but
        // it must lie in one.
        assert!(t.load_u16_acquire(0x1040).is_err());
        assert_eq!(t.count(), 3);
        assert!(t.remove(0x2000));
        assert!(t.read(0x2000, &mut out).is_err());
        assert_eq!(&a[0x18..0x20], &data[..8]);
        assert_eq!(&b[0..8], &data[8..]);
        assert_eq!(&b[0x18..0x20], &[0; 8], "a refused write moves nothing");
    }

    #[test]
    fn region_table_full() {
        let mut a = Aligned([0u8; 8]);
        let mut t: RegionTable<'_, 1> = RegionTable::new(Coherent);
        let p = NonNull::new(a.0.as_mut_ptr()).unwrap();
        // SAFETY: `a` outlives the table.
        unsafe {
            t.add(0, p, 4).unwrap();
            assert_eq!(t.add(4, p.add(4), 4), Err(RegionError::TableFull));
        }
    }
}
