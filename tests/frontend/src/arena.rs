//! The shared RAM arena both sides use, and the `virtio_drivers::Hal` over it.
//!
//! One page-aligned allocation per test, laid out as
//!
//! | arena offset            | use                                            |
//! |-------------------------|------------------------------------------------|
//! | `0x0000..0x1000`        | transport page: virtio-msg mailboxes or the virtio-mmio register block |
//! | `0x1000..DMA_END`       | `Hal::dma_alloc` pages (virtqueue rings), bump-allocated |
//! | `DMA_END..ARENA_SIZE`   | `Hal::share` bounce buffers                     |
//!
//! The device sees the arena through a [`FixedWindow`] whose driver addresses
//! start at [`GUEST_BASE`] (like an IPA window); the driver sees it through
//! raw pointers. Every byte the device touches is inside the arena: the
//! driver's own buffers (stack, heap, the indirect tables `VirtQueue` boxes)
//! are bounced in by `share` and copied back by `unshare`.
//!
//! `Hal` methods are static, so the allocator state is per thread: a test
//! installs an [`Arena`] on its thread and every `virtio-drivers` call made on
//! that thread allocates from it. Parallel tests stay isolated.

use core::cell::RefCell;
use core::ptr::NonNull;
use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};
use std::collections::BTreeMap;
use std::sync::Arc;

use virtio_backend::{Coherent, FixedWindow};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

/// Arena size in bytes.
pub const ARENA_SIZE: usize = 4 << 20;
/// Driver (guest physical) address of the arena's first byte.
pub const GUEST_BASE: u64 = 0x4000_0000;
/// Page size, as `virtio-drivers` assumes.
pub const PAGE: usize = 0x1000;
/// Arena offset of the transport page.
pub const TRANSPORT_PAGE: usize = 0;
/// End of the DMA page area (start of the bounce-buffer area).
pub const DMA_END: usize = 1 << 20;
/// First DMA page.
const DMA_START: usize = PAGE;
/// Bounce buffers are carved out at this granularity.
const BOUNCE_ALIGN: usize = 16;
/// Device-writable bounce buffers start out filled with this byte, so a byte
/// the device failed to write is visible to the driver.
pub const POISON: u8 = 0xa5;

/// The raw memory of an arena.
#[derive(Debug)]
pub struct ArenaMem {
    ptr: NonNull<u8>,
    layout: Layout,
    /// Driver address of the first byte.
    base: u64,
}

// SAFETY: the arena is plain memory shared by construction between the
// driver and the device; all accesses go through raw pointers (volatile or
// atomic on the device side) and the virtqueue protocol orders them. The
// struct holds no thread-bound state.
unsafe impl Send for ArenaMem {}
// SAFETY: as above; `&ArenaMem` only hands out raw pointers and addresses.
unsafe impl Sync for ArenaMem {}

impl ArenaMem {
    fn new(len: usize, base: u64) -> Arc<Self> {
        let layout = Layout::from_size_align(len, PAGE).expect("arena layout");
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(p).unwrap_or_else(|| handle_alloc_error(layout));
        Arc::new(ArenaMem { ptr, layout, base })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Whether the arena is empty (never).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Host pointer to the byte at arena offset `offset`.
    pub fn host(&self, offset: usize) -> NonNull<u8> {
        assert!(offset <= self.len(), "offset {offset:#x} outside the arena");
        // SAFETY: `offset <= len`, so the result is inside the allocation or
        // one past its end.
        unsafe { self.ptr.add(offset) }
    }

    /// Driver address of the byte at arena offset `offset`.
    pub fn guest(&self, offset: usize) -> u64 {
        self.base + offset as u64
    }

    /// Arena offset of driver address `addr`.
    pub fn offset_of(&self, addr: u64) -> usize {
        let off = addr
            .checked_sub(self.base)
            .expect("driver address below the arena");
        let off = usize::try_from(off).expect("driver address beyond the arena");
        assert!(
            off < self.len(),
            "driver address {addr:#x} beyond the arena"
        );
        off
    }

    /// Copies bytes out of the arena (driver-side helper for tests).
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        assert!(offset + buf.len() <= self.len());
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: in range (asserted above); volatile because the device
            // may access the arena concurrently.
            *b = unsafe { self.host(offset + i).as_ptr().read_volatile() };
        }
    }

    /// Copies bytes into the arena (driver-side helper for tests).
    pub fn write(&self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.len());
        for (i, b) in data.iter().enumerate() {
            // SAFETY: in range (asserted above); volatile because the device
            // may access the arena concurrently.
            unsafe { self.host(offset + i).as_ptr().write_volatile(*b) };
        }
    }

    /// The device's view of the arena: a window whose driver addresses start
    /// at the arena's base ([`GUEST_BASE`] unless
    /// [`Arena::with_guest_base`] chose another).
    pub fn device_memory(self: &Arc<Self>) -> DeviceMemory {
        // SAFETY: the memory stays allocated while `DeviceMemory` lives (it
        // holds an `Arc` to it, and the window cannot be moved out of it);
        // the driver side only uses raw pointers into it, never references.
        let window = unsafe { FixedWindow::new(self.ptr, self.len(), self.base, Coherent) }
            .expect("window fits the address space");
        DeviceMemory {
            window,
            _arena: Arc::clone(self),
        }
    }
}

impl Drop for ArenaMem {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// The device's view of the arena. Dereferences to the [`FixedWindow`] the
/// device core is given.
#[derive(Debug)]
pub struct DeviceMemory {
    // Declared first so it is dropped before the memory it points into.
    window: FixedWindow<'static>,
    _arena: Arc<ArenaMem>,
}

impl core::ops::Deref for DeviceMemory {
    type Target = FixedWindow<'static>;
    fn deref(&self) -> &Self::Target {
        &self.window
    }
}

/// Counters of the `Hal`'s work on one thread's arena.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HalStats {
    /// Pages handed out by `dma_alloc`.
    pub dma_pages: usize,
    /// `share` calls.
    pub shares: u64,
    /// `unshare` calls.
    pub unshares: u64,
    /// Bounce buffers currently live.
    pub outstanding: usize,
    /// Most bounce buffers live at once.
    pub peak_outstanding: usize,
}

struct HalState {
    mem: Arc<ArenaMem>,
    dma_next: usize,
    /// Live bounce buffers: 16-aligned start offset -> reserved length.
    bounces: BTreeMap<usize, usize>,
    stats: HalStats,
}

impl HalState {
    /// First fit in the bounce area. Buffers whose length is not a multiple
    /// of 16 start at a varying odd offset inside their slot, so the device
    /// sees unaligned buffers too.
    fn bounce_alloc(&mut self, len: usize) -> usize {
        let skew = if len.is_multiple_of(BOUNCE_ALIGN) {
            0
        } else {
            (self.stats.shares as usize % 5) * 3
        };
        let need = (len + skew)
            .next_multiple_of(BOUNCE_ALIGN)
            .max(BOUNCE_ALIGN);
        let mut cursor = DMA_END;
        for (&start, &l) in &self.bounces {
            if start - cursor >= need {
                break;
            }
            cursor = start + l;
        }
        assert!(
            cursor + need <= self.mem.len(),
            "bounce area exhausted ({} buffers live)",
            self.bounces.len()
        );
        self.bounces.insert(cursor, need);
        self.stats.outstanding = self.bounces.len();
        self.stats.peak_outstanding = self.stats.peak_outstanding.max(self.stats.outstanding);
        cursor + skew
    }

    fn bounce_free(&mut self, offset: usize) {
        let start = offset - offset % BOUNCE_ALIGN;
        assert!(
            self.bounces.remove(&start).is_some(),
            "unshare of {offset:#x}, which is not a live bounce buffer"
        );
        self.stats.outstanding = self.bounces.len();
    }
}

thread_local! {
    static HAL: RefCell<Option<HalState>> = const { RefCell::new(None) };
}

fn with_hal<R>(f: impl FnOnce(&mut HalState) -> R) -> R {
    HAL.with(|h| {
        let mut h = h.borrow_mut();
        f(h.as_mut()
            .expect("no Arena installed on this thread: create one before using virtio-drivers"))
    })
}

/// A test's arena, installed as the `Hal`'s memory on the creating thread
/// until dropped.
#[derive(Debug)]
pub struct Arena {
    mem: Arc<ArenaMem>,
}

impl Arena {
    /// Allocates a zeroed arena and installs it on this thread.
    ///
    /// Panics if this thread already has one.
    pub fn new() -> Self {
        Self::with_guest_base(GUEST_BASE)
    }

    /// As [`new`](Self::new), the driver addressing the arena from `base`
    /// (an FF-A bus address `area_id << 48`, say).
    pub fn with_guest_base(base: u64) -> Self {
        let mem = ArenaMem::new(ARENA_SIZE, base);
        HAL.with(|h| {
            let mut h = h.borrow_mut();
            assert!(h.is_none(), "an Arena is already installed on this thread");
            *h = Some(HalState {
                mem: Arc::clone(&mem),
                dma_next: DMA_START,
                bounces: BTreeMap::new(),
                stats: HalStats::default(),
            });
        });
        Arena { mem }
    }

    /// The memory.
    pub fn mem(&self) -> &Arc<ArenaMem> {
        &self.mem
    }

    /// Reserves one zeroed page of the DMA area as the transport page of a
    /// further device ([`Loopback::with_page`](crate::loopback::Loopback::with_page));
    /// returns its arena offset.
    pub fn alloc_transport_page(&self) -> usize {
        let (paddr, _) = <ArenaHal as Hal>::dma_alloc(1, BufferDirection::Both);
        self.mem.offset_of(paddr)
    }

    /// The `Hal`'s counters for this thread's arena.
    pub fn hal_stats(&self) -> HalStats {
        with_hal(|s| s.stats)
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        HAL.with(|h| *h.borrow_mut() = None);
    }
}

/// `virtio_drivers::Hal` over the current thread's [`Arena`].
#[derive(Debug)]
pub struct ArenaHal;

// SAFETY: `dma_alloc` returns page-aligned, zeroed pages inside the arena that
// are handed out once (bump allocation, never reused while the arena lives),
// so they alias nothing else; `share` returns the driver address of a bounce
// buffer reserved exclusively for that buffer until `unshare`.
unsafe impl Hal for ArenaHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        with_hal(|s| {
            let off = s.dma_next;
            let len = pages * PAGE;
            assert!(off + len <= DMA_END, "DMA page area exhausted");
            s.dma_next += len;
            s.stats.dma_pages += pages;
            let p = s.mem.host(off);
            // SAFETY: `off..off + len` is inside the arena's DMA area and was
            // never handed out before.
            unsafe { p.as_ptr().write_bytes(0, len) };
            (s.mem.guest(off), p)
        })
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        // Bump allocation: pages are reclaimed with the arena. The arena may
        // already be gone (a driver dropped after its test's Arena): fine.
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        panic!("mmio_phys_to_virt({paddr:#x}): only the PCI transport needs it");
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let len = buffer.len();
        with_hal(|s| {
            s.stats.shares += 1;
            let off = s.bounce_alloc(len);
            let dst = s.mem.host(off).as_ptr();
            match direction {
                BufferDirection::DriverToDevice | BufferDirection::Both => {
                    // SAFETY: the caller guarantees `buffer` is valid for
                    // reads of `len` bytes; `dst..dst + len` is a bounce slot
                    // reserved for it alone; they cannot overlap (the buffer
                    // is not in the bounce area's reserved slot).
                    unsafe {
                        core::ptr::copy_nonoverlapping(buffer.cast::<u8>().as_ptr(), dst, len)
                    };
                }
                BufferDirection::DeviceToDriver => {
                    // SAFETY: `dst..dst + len` is the reserved bounce slot.
                    unsafe { dst.write_bytes(POISON, len) };
                }
            }
            s.mem.guest(off)
        })
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let len = buffer.len();
        with_hal(|s| {
            s.stats.unshares += 1;
            let off = s.mem.offset_of(paddr);
            if matches!(
                direction,
                BufferDirection::DeviceToDriver | BufferDirection::Both
            ) {
                let src = s.mem.host(off).as_ptr();
                // SAFETY: `src..src + len` is the bounce slot `share` reserved
                // for this buffer (same `paddr`, same length); the caller
                // guarantees `buffer` is valid for writes and not accessed
                // concurrently.
                unsafe { core::ptr::copy_nonoverlapping(src, buffer.cast::<u8>().as_ptr(), len) };
            }
            s.bounce_free(off);
        })
    }
}
