//! Host tests of the device core against the driver-side mock rings.

mod control;
mod hostile;
mod msg;
mod packed;
mod split;

use core::ptr::NonNull;
use std::vec::Vec;

use crate::memory::{Coherent, FixedWindow};

/// A zeroed, 16-aligned arena of driver memory seen through a
/// [`FixedWindow`] whose driver addresses start at `base`.
pub(crate) struct Arena {
    buf: Vec<u128>,
    base: u64,
}

impl Arena {
    pub fn new(bytes: usize, base: u64) -> Self {
        Arena {
            buf: std::vec![0u128; bytes.div_ceil(16)],
            base,
        }
    }

    pub fn window(&mut self) -> FixedWindow<'_> {
        let len = self.buf.len() * 16;
        let p = NonNull::new(self.buf.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: the arena outlives the window (borrowed mutably for its
        // lifetime) and is only accessed through it.
        unsafe { FixedWindow::new(p, len, self.base, Coherent) }.unwrap()
    }
}

/// Everything a test device needs: features with the core's ring features.
pub(crate) const ALL_RING_FEATURES: u64 = crate::spec::features::VERSION_1
    | crate::spec::features::INDIRECT_DESC
    | crate::spec::features::EVENT_IDX;
