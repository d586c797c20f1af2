//! Stack painting: how deep a stack has been. At boot the unused part of a
//! core's stack (below the live frames) is filled with a pattern; later the
//! lowest word that no longer holds it marks the deepest use.

/// The pattern (one machine word).
const PAINT: usize = 0x5CA1_AB1E_5CA1_AB1E_u64 as usize;

/// Fills `bottom..` up to 256 bytes below the current stack pointer with
/// the pattern. Call it early, from the top of the stack.
///
/// # Safety
///
/// `bottom` is the lowest address of the stack this runs on, word aligned,
/// and nothing else uses that stack.
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
#[inline(never)]
pub unsafe fn paint(bottom: usize) {
    let sp: usize;
    // SAFETY: reads the stack pointer into a register; no memory access.
    unsafe { core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack)) };
    let word = core::mem::size_of::<usize>();
    let top = sp.saturating_sub(256) & !(word - 1);
    let mut p = bottom;
    while p < top {
        // SAFETY: `bottom..top` is the unused part of this stack (the
        // caller's contract), below the live frames; volatile, so the
        // stores are not elided.
        unsafe { (p as *mut usize).write_volatile(PAINT) };
        p += word;
    }
}

/// The deepest the stack `bottom..top` has been since [`paint`], in bytes.
///
/// # Safety
///
/// `bottom..top` is a painted stack, mapped and word aligned. Its core may
/// still run on it: a racy read only makes the figure conservative.
pub unsafe fn depth(bottom: usize, top: usize) -> usize {
    let word = core::mem::size_of::<usize>();
    let mut p = bottom;
    // SAFETY: the caller's contract: words of a mapped stack area.
    while p < top && unsafe { (p as *const usize).read_volatile() } == PAINT {
        p += word;
    }
    top - p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_finds_the_lowest_unpainted_word() {
        let mut stack = [PAINT; 64];
        let word = core::mem::size_of::<usize>();
        for w in &mut stack[40..] {
            *w = 7;
        }
        let bounds = |s: &[usize]| {
            let bottom = s.as_ptr() as usize;
            (bottom, bottom + core::mem::size_of_val(s))
        };
        let (bottom, top) = bounds(&stack);
        // SAFETY: a live array, read only.
        assert_eq!(unsafe { depth(bottom, top) }, 24 * word);
        stack[40] = PAINT;
        stack[3] = 0;
        let (bottom, top) = bounds(core::hint::black_box(&stack));
        // SAFETY: as above.
        assert_eq!(unsafe { depth(bottom, top) }, 61 * word);
    }
}
