//! Data-cache maintenance by address to the Point of Coherency, for
//! memory shared with a peer outside our cache coherency (the other
//! Cortex-R52, the application cores, a DMA master).
//!
//! [`line_ops`] turns a byte range into the per-line operations (the
//! rounding, host-tested); [`PocMaintenance`] executes them with the
//! CP15 operations `DCIMVAC`, `DCCMVAC`, `DCCIMVAC` and ends with a DSB.
//!
//! Rounding rules:
//!
//! * after a write (clean): every line the range touches is cleaned;
//!   cleaning never loses data.
//! * before a read (invalidate): lines wholly inside the range are
//!   invalidated; a line the range covers only partly (at either end) is
//!   cleaned *and* invalidated, since the bytes outside the range may be
//!   ours and dirty — invalidating alone would discard them.
//! * a range that would run past the top of the address space stops at
//!   its top; an empty range, or a line size that is not a power of two,
//!   is no operation.

use virtio_backend::CacheMaintenance;

/// A maintenance operation on one cache line, by address to PoC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOp {
    /// Write the line back if dirty (`DCCMVAC`).
    Clean,
    /// Discard the line (`DCIMVAC`).
    Invalidate,
    /// Write back if dirty, then discard (`DCCIMVAC`).
    CleanInvalidate,
}

/// Why the maintenance is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Before reading what the peer wrote: invalidate.
    BeforeRead,
    /// After writing what the peer will read: clean.
    AfterWrite,
}

/// The line operations for `[va, va + len)`, in address order: an iterator
/// of `(line address, operation)`.
pub fn line_ops(va: usize, len: usize, line: usize, direction: Direction) -> LineOps {
    if len == 0 || !line.is_power_of_two() {
        return LineOps::EMPTY;
    }
    let mask = line - 1;
    let last_byte = va.saturating_add(len - 1);
    LineOps {
        next: Some(va & !mask),
        first: va & !mask,
        last: last_byte & !mask,
        line,
        head_partial: va & mask != 0,
        tail_partial: last_byte & mask != mask,
        direction,
    }
}

/// Iterator returned by [`line_ops`].
#[derive(Debug, Clone)]
pub struct LineOps {
    next: Option<usize>,
    first: usize,
    last: usize,
    line: usize,
    head_partial: bool,
    tail_partial: bool,
    direction: Direction,
}

impl LineOps {
    const EMPTY: LineOps = LineOps {
        next: None,
        first: 0,
        last: 0,
        line: 1,
        head_partial: false,
        tail_partial: false,
        direction: Direction::AfterWrite,
    };
}

impl Iterator for LineOps {
    type Item = (usize, LineOp);

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.next?;
        self.next = if at >= self.last {
            None
        } else {
            at.checked_add(self.line)
        };
        let op = match self.direction {
            Direction::AfterWrite => LineOp::Clean,
            Direction::BeforeRead
                if (at == self.first && self.head_partial)
                    || (at == self.last && self.tail_partial) =>
            {
                LineOp::CleanInvalidate
            }
            Direction::BeforeRead => LineOp::Invalidate,
        };
        Some((at, op))
    }
}

/// Cache maintenance to the Point of Coherency for a non-coherent peer.
#[derive(Debug, Clone, Copy)]
pub struct PocMaintenance {
    line: usize,
}

impl PocMaintenance {
    /// Maintenance with an explicit data-cache line size (a power of two;
    /// anything else makes every operation a no-op).
    pub const fn with_line(line: usize) -> Self {
        PocMaintenance { line }
    }

    /// Maintenance with this core's smallest data-cache line
    /// (`CTR.DminLine`; 64 bytes on the Cortex-R52).
    #[cfg(target_arch = "arm")]
    pub fn detect() -> Self {
        let ctr = aarch32_cpu::register::Ctr::read().0;
        Self::with_line(line_from_ctr(ctr))
    }

    /// The line size in use.
    pub const fn line(&self) -> usize {
        self.line
    }

    /// Applies the operations for `[va, va + len)` and waits for them (DSB).
    fn run(&self, va: usize, len: usize, direction: Direction) {
        for (at, op) in line_ops(va, len, self.line, direction) {
            execute(at, op);
        }
        #[cfg(target_arch = "arm")]
        aarch32_cpu::asm::dsb();
    }
}

/// The smallest data-cache line in bytes from a CTR value: `4 << DminLine`
/// (bits 19:16, in words).
pub const fn line_from_ctr(ctr: u32) -> usize {
    4 << ((ctr >> 16) & 0xf)
}

/// One line operation by address (to PoC).
#[cfg(target_arch = "arm")]
fn execute(at: usize, op: LineOp) {
    use aarch32_cpu::cache;
    // usize is 32 bits on this target: the cast is lossless.
    let at = at as u32;
    match op {
        LineOp::Clean => cache::clean_data_cache_line_to_poc(at),
        LineOp::Invalidate => cache::invalidate_data_cache_line_to_poc(at),
        LineOp::CleanInvalidate => cache::clean_and_invalidate_data_cache_line_to_poc(at),
    }
}

/// On the host there is no cache to maintain.
#[cfg(not(target_arch = "arm"))]
fn execute(_at: usize, _op: LineOp) {}

impl CacheMaintenance for PocMaintenance {
    fn before_read(&self, va: usize, len: usize) {
        self.run(va, len, Direction::BeforeRead);
    }

    fn after_write(&self, va: usize, len: usize) {
        self.run(va, len, Direction::AfterWrite);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{AfterWrite, BeforeRead};
    use LineOp::{Clean, CleanInvalidate, Invalidate};

    fn ops(va: usize, len: usize, dir: Direction) -> Vec<(usize, LineOp)> {
        line_ops(va, len, 64, dir).collect()
    }

    #[test]
    fn aligned_range_invalidates_whole_lines() {
        assert_eq!(
            ops(0x1000, 128, BeforeRead),
            [(0x1000, Invalidate), (0x1040, Invalidate)]
        );
        assert_eq!(ops(0x1000, 64, BeforeRead), [(0x1000, Invalidate)]);
    }

    #[test]
    fn partial_ends_are_cleaned_and_invalidated() {
        assert_eq!(
            ops(0x1010, 0xa0, BeforeRead),
            [
                (0x1000, CleanInvalidate),
                (0x1040, Invalidate),
                (0x1080, CleanInvalidate)
            ]
        );
        // Aligned start, ragged end.
        assert_eq!(
            ops(0x1000, 65, BeforeRead),
            [(0x1000, Invalidate), (0x1040, CleanInvalidate)]
        );
        // Ragged start, aligned end.
        assert_eq!(ops(0x103f, 1, BeforeRead), [(0x1000, CleanInvalidate)]);
        assert_eq!(
            ops(0x1020, 0x60, BeforeRead),
            [(0x1000, CleanInvalidate), (0x1040, Invalidate)]
        );
    }

    #[test]
    fn inside_one_line() {
        assert_eq!(ops(0x1004, 8, BeforeRead), [(0x1000, CleanInvalidate)]);
        assert_eq!(ops(0x1004, 8, AfterWrite), [(0x1000, Clean)]);
    }

    #[test]
    fn clean_covers_every_touched_line() {
        assert_eq!(
            ops(0x1010, 0xa0, AfterWrite),
            [(0x1000, Clean), (0x1040, Clean), (0x1080, Clean)]
        );
        assert_eq!(ops(0x1000, 64, AfterWrite), [(0x1000, Clean)]);
    }

    #[test]
    fn empty_and_bad_line_sizes() {
        assert!(ops(0x1000, 0, BeforeRead).is_empty());
        assert!(line_ops(0x1000, 64, 0, BeforeRead).next().is_none());
        assert!(line_ops(0x1000, 64, 48, AfterWrite).next().is_none());
    }

    #[test]
    fn top_of_address_space() {
        let top = usize::MAX - 63;
        assert_eq!(ops(top, 64, BeforeRead), [(top, Invalidate)]);
        // Runs past the end: stops at the top line (its head is partial).
        assert_eq!(ops(top + 32, 1000, BeforeRead), [(top, CleanInvalidate)]);
        assert_eq!(ops(usize::MAX, 1, AfterWrite), [(top, Clean)]);
        assert_eq!(
            ops(top - 64, usize::MAX, BeforeRead),
            [(top - 64, Invalidate), (top, Invalidate)]
        );
    }

    #[test]
    fn ctr_line_size() {
        // Cortex-R52: DminLine = 4 (16 words).
        assert_eq!(line_from_ctr(0x8444_c004), 64);
        assert_eq!(line_from_ctr(0), 4);
    }

    #[test]
    fn maintenance_on_host_is_a_no_op() {
        let m = PocMaintenance::with_line(64);
        m.before_read(0x1000, 100);
        m.after_write(0x1000, 100);
        assert_eq!(m.line(), 64);
    }
}
