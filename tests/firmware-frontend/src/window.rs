//! The shared window as the front-end uses it: DMA pages for the
//! virtqueues, the heap for everything else the device must reach.

use core::ops::Range;
use core::ptr::NonNull;

use linked_list_allocator::LockedHeap;
use spin::Once;
use spin::mutex::SpinMutex;
use virtio_backend::{Coherent, FixedWindow};
use virtio_drivers::{BufferDirection, Hal, PAGE_SIZE, PhysAddr};

/// The front-end's heap: inside the window (see [`Window::install`]).
/// Bare metal only: on the host the tests keep the system allocator.
#[cfg_attr(target_os = "none", global_allocator)]
static HEAP: LockedHeap = LockedHeap::empty();

/// Where the DMA pages are: window base, window length, next free page
/// and end of the page area (offsets), and the driver address of the
/// window's first byte.
struct Pages {
    base: usize,
    len: usize,
    next: usize,
    end: usize,
    bus: u64,
}

static PAGES: SpinMutex<Pages> = SpinMutex::new(Pages {
    base: 0,
    len: 0,
    next: 0,
    end: 0,
    bus: 0,
});

/// The driver's view of the installed window.
static VIEW: Once<FixedWindow<'static>> = Once::new();

/// Takes the window at `base..base + len` for the front-end: DMA pages at
/// the offsets `dma`, the heap at `heap` (both page-aligned, inside the
/// window, apart from each other and from the channel). Returns the
/// driver's view of it: driver addresses are offsets into the window, as
/// the device's `FixedWindow` reads them.
///
/// # Safety
///
/// The window is mapped read-write on this core, shared with the device
/// and nothing else; nothing else on this core uses `dma` or `heap`;
/// called once.
pub unsafe fn install(
    base: usize,
    len: usize,
    dma: Range<usize>,
    heap: Range<usize>,
) -> &'static FixedWindow<'static> {
    // SAFETY: the caller's contract.
    unsafe { install_at(base, len, 0, dma, heap) }
}

/// As [`install`], the device addressing the window from `bus` (an FF-A
/// bus address `area_id << 48`, say) instead of 0.
///
/// # Safety
///
/// As for [`install`].
pub unsafe fn install_at(
    base: usize,
    len: usize,
    bus: u64,
    dma: Range<usize>,
    heap: Range<usize>,
) -> &'static FixedWindow<'static> {
    let fits =
        |r: &Range<usize>| r.start < r.end && r.end <= len && r.start.is_multiple_of(PAGE_SIZE);
    assert!(fits(&dma) && fits(&heap), "DMA and heap lie in the window");
    assert!(
        dma.end <= heap.start || heap.end <= dma.start,
        "DMA and heap apart"
    );
    let p = NonNull::new(base as *mut u8).expect("the window is not at 0");
    *PAGES.lock() = Pages {
        base,
        len,
        next: dma.start,
        end: dma.end,
        bus,
    };
    // SAFETY: the caller gives `heap` to the front-end alone; it is valid
    // for reads and writes for the rest of the run.
    unsafe {
        HEAP.lock().init(
            base.wrapping_add(heap.start) as *mut u8,
            heap.end - heap.start,
        )
    };
    VIEW.call_once(|| {
        // SAFETY: the caller's contract: the window stays mapped and shared
        // for the run; `FixedWindow` reaches it only through raw pointers,
        // bounds-checked.
        unsafe { FixedWindow::new(p, len, bus, Coherent) }
            .expect("the window fits the address space")
    })
}

/// `virtio_drivers::Hal` over the installed window: DMA pages from its
/// page area, and buffers shared where they lie (the heap is in the
/// window), by their offset.
#[derive(Debug)]
pub struct WindowHal;

/// The driver address of `[p, p + len)`; panics when it is not inside.
fn offset_of(p: usize, len: usize) -> PhysAddr {
    let w = PAGES.lock();
    match p.checked_sub(w.base) {
        Some(off) if off.checked_add(len).is_some_and(|end| end <= w.len) => {
            w.bus + off as PhysAddr
        }
        _ => panic!("buffer {p:#x}+{len:#x} is outside the shared window"),
    }
}

// SAFETY: `dma_alloc` hands out zeroed, page-aligned pages of the window's
// page area once each (bump allocation, never reused), so they alias
// nothing; `share` returns the device address of the buffer itself, which
// is in the window (it panics otherwise), and the caller keeps it alive
// and untouched until `unshare`.
unsafe impl Hal for WindowHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let mut w = PAGES.lock();
        let len = pages * PAGE_SIZE;
        let off = w.next;
        assert!(off + len <= w.end, "DMA page area exhausted");
        w.next += len;
        let p = (w.base + off) as *mut u8;
        // SAFETY: `off..off + len` is in the page area, handed out now for
        // the first time.
        unsafe { p.write_bytes(0, len) };
        (
            w.bus + off as PhysAddr,
            NonNull::new(p).expect("inside the window"),
        )
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        // Bump allocation: the pages live as long as the run.
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        panic!("mmio_phys_to_virt({paddr:#x}): no MMIO transport here");
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        offset_of(buffer.cast::<u8>().as_ptr() as usize, buffer.len())
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {
        // Shared in place: nothing to copy back.
    }
}
