//! The guest memory both benchmarks run on: one anonymous mapping made by
//! vm-memory, also seen as our `FixedWindow` over the same host bytes.
//!
//! Not in the library: `window` and `clear` instantiate `virtio-backend`'s
//! generic `FixedWindow` code, which must be compiled into each benchmark
//! binary on its own (see the `bench` binary's docs). Each binary includes
//! this file as its own module.

use std::ptr::NonNull;

use virtio_backend::{Coherent, FixedWindow, GuestMemory as _};
use vm_memory::{GuestAddress, GuestMemoryBackend as _, GuestMemoryMmap};

/// Size of the single guest memory region.
pub const MEM_SIZE: usize = 0x3_0000;

/// The one guest memory region; in the virtqueue benchmark, shared by
/// every implementation.
pub struct Memory {
    gm: GuestMemoryMmap,
    host: NonNull<u8>,
}

impl Memory {
    /// Maps `MEM_SIZE` zeroed bytes at guest address 0.
    pub fn new() -> Result<Memory, String> {
        let gm = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE)])
            .map_err(|e| format!("mapping guest memory: {e}"))?;
        let host = gm
            .get_host_address(GuestAddress(0))
            .map_err(|e| format!("host address of guest memory: {e}"))?;
        let host = NonNull::new(host).ok_or("guest memory mapped at null")?;
        Ok(Memory { gm, host })
    }

    /// The region as vm-memory sees it.
    pub fn guest_memory_mmap(&self) -> &GuestMemoryMmap {
        &self.gm
    }

    /// The same region as our [`FixedWindow`], guest base 0.
    pub fn window(&self) -> FixedWindow<'_> {
        // SAFETY: `host..host + MEM_SIZE` is the single mapping owned by
        // `self.gm`, valid for reads and writes until `self.gm` is dropped,
        // which the borrow of `self` prevents for the window's lifetime.
        // Nothing makes Rust references to those bytes: vm-memory accesses
        // them through raw pointers and volatile slices, this crate only
        // through `FixedWindow` and vm-memory's `Bytes` methods, all on one
        // thread.
        unsafe { FixedWindow::new(self.host, MEM_SIZE, 0, Coherent) }
            .expect("guest memory range cannot wrap")
    }

    /// Zeroes the whole region.
    pub fn clear(&self) {
        let zeros = [0u8; 4096];
        let w = self.window();
        for at in (0..MEM_SIZE as u64).step_by(zeros.len()) {
            w.write(at, &zeros).expect("inside the region");
        }
    }
}
