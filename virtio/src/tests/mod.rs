//! Host tests of the device core against the driver-side mock rings.

mod amp;
mod bus;
mod control;
mod hostile;
mod msg;
mod packed;
mod service;
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

/// Copies at every alignment and length around the 8-byte word size go to
/// exactly the bytes asked for (the copy loops split head, words and tail).
#[test]
fn copies_at_every_alignment_and_length() {
    use crate::memory::GuestMemory;
    let mut arena = Arena::new(64, 0x1000);
    let m = arena.window();
    for start in 0..16u64 {
        for len in 0..=40usize {
            m.write(0x1000, &[0xEE; 64]).unwrap();
            let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(7) ^ 0x5A).collect();
            m.write(0x1000 + start, &data).unwrap();
            let mut all = [0u8; 64];
            m.read(0x1000, &mut all).unwrap();
            let s = start as usize;
            assert!(all[..s].iter().all(|&b| b == 0xEE), "before {start}/{len}");
            assert_eq!(&all[s..s + len], &data[..], "data {start}/{len}");
            assert!(
                all[s + len..].iter().all(|&b| b == 0xEE),
                "after {start}/{len}"
            );
            let mut back = std::vec![0u8; len];
            m.read(0x1000 + start, &mut back).unwrap();
            assert_eq!(back, data);
        }
    }
}
