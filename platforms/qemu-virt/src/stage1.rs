//! A stage-1 identity map that grows and shrinks at run time, with its
//! translation tables from a fixed pool: for a secure partition, which
//! maps its own image at boot and then the normal-world memory it
//! retrieves, non-secure, one range at a time.
//!
//! The tables are `aarch64-paging`'s, for the EL1&0 regime, lower VA
//! range, root at level 1 (39-bit addresses, as `aarch64-rt`'s initial
//! page table). Virtual addresses equal the (intermediate) physical
//! addresses the SPMC gave us. The pool is sized by the image; a mapping
//! that might need more tables than are free is refused before any is
//! touched, so the pool never runs dry in the middle of a change.

use core::ptr::NonNull;

use aarch64_paging::descriptor::{El1Attributes, PhysicalAddress};
use aarch64_paging::paging::{Constraints, El1And0, MemoryRegion, PageTable, Translation, VaRange};
use aarch64_paging::{MapError, Mapping};

/// Why a range was not mapped (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The range wraps around the address space.
    Wraps,
    /// The pool might not hold the tables the range needs.
    NoTables,
    /// The range overlaps the image.
    OverImage,
    /// `aarch64-paging` refused it (beyond the address range, or over a
    /// live mapping).
    Tables(MapError),
}

use crate::paging::NORMAL_MEMORY;

/// One translation table.
pub type Table = PageTable<El1Attributes>;

/// Normal-world memory: normal write-back, inner shareable, non-secure,
/// never executable (FF-A §10.10.4.1: an SP maps memory it retrieved from
/// the normal world with NS set).
pub const NON_SECURE_DATA: El1Attributes = NORMAL_MEMORY
    .union(El1Attributes::NS)
    .union(El1Attributes::UXN)
    .union(El1Attributes::PXN);

/// Bytes one level-2 entry covers: ranges that cross such a boundary need
/// a table on each side.
const L2_SPAN: u64 = 2 << 20;
/// Bytes one level-1 entry covers.
const L1_SPAN: u64 = 1 << 30;

/// The pool of tables, handed out zeroed and taken back.
pub struct TablePool<const N: usize> {
    tables: NonNull<[Table; N]>,
    used: [bool; N],
    exhausted: fn() -> !,
}

impl<const N: usize> TablePool<N> {
    /// The pool over `tables`, all free. `exhausted` is called should a
    /// table be asked for when none is free (it cannot return: the map
    /// would be half changed). [`Stage1`] refuses changes that might need
    /// more tables than are free, so it is not reached through it.
    ///
    /// # Safety
    ///
    /// `tables` is valid for reads and writes for the rest of the program,
    /// mapped at its own address, and nothing else uses it.
    pub unsafe fn new(tables: NonNull<[Table; N]>, exhausted: fn() -> !) -> Self {
        TablePool {
            tables,
            used: [false; N],
            exhausted,
        }
    }

    /// Tables not handed out.
    pub fn free(&self) -> usize {
        self.used.iter().filter(|u| !**u).count()
    }
}

impl<const N: usize> Translation<El1Attributes> for TablePool<N> {
    fn allocate_table(&mut self) -> (NonNull<Table>, PhysicalAddress) {
        let Some(i) = self.used.iter().position(|u| !*u) else {
            (self.exhausted)()
        };
        self.used[i] = true;
        // SAFETY: `i < N`: table `i` of the pool, in bounds.
        let t = unsafe { self.tables.cast::<Table>().add(i) };
        // SAFETY: `t` is table `i` of the pool, which the pool owns and
        // nobody else references while it is free; a zeroed table is
        // empty.
        unsafe { t.write(Table::EMPTY) };
        (t, PhysicalAddress(t.as_ptr() as usize))
    }

    unsafe fn deallocate_table(&mut self, table: NonNull<Table>) {
        let base = self.tables.cast::<Table>().as_ptr() as usize;
        let i = (table.as_ptr() as usize).wrapping_sub(base) / size_of::<Table>();
        if let Some(u) = self.used.get_mut(i) {
            *u = false;
        }
    }

    fn physical_to_virtual(&self, pa: PhysicalAddress) -> NonNull<Table> {
        // Identity: the tables lie in the image, mapped at their address;
        // the pointer is the pool's own, at the table's index.
        let base = self.tables.cast::<Table>();
        let i = pa.0.wrapping_sub(base.as_ptr() as usize) / size_of::<Table>();
        if i < N {
            // SAFETY: `i < N`: table `i` of the pool, in bounds.
            unsafe { base.add(i) }
        } else {
            NonNull::dangling()
        }
    }
}

/// The partition's stage-1 map.
pub struct Stage1<const N: usize> {
    mapping: Mapping<TablePool<N>, El1And0>,
    image: (u64, u64),
}

/// Tables a new mapping of `base..base + len` may need at most: one
/// level-2 table per GiB it touches, one level-3 table per 2 MiB.
pub fn tables_needed(base: u64, len: u64) -> usize {
    if len == 0 {
        return 0;
    }
    let last = base.saturating_add(len - 1);
    let count = |span: u64| (last / span - base / span + 1) as usize;
    count(L1_SPAN) + count(L2_SPAN)
}

impl<const N: usize> Stage1<N> {
    /// An empty map over `pool`. `image` is the image's own range
    /// (base, size), which nothing else may be mapped over.
    pub fn new(pool: TablePool<N>, image: (u64, u64)) -> Self {
        Stage1 {
            mapping: Mapping::with_asid_and_va_range(pool, 0, 1, El1And0, VaRange::Lower),
            image,
        }
    }

    /// Maps `base..base + len` at its own address with `attrs`. Refused
    /// (nothing changed) when the pool might not have the tables.
    pub fn map(&mut self, base: u64, len: u64, attrs: El1Attributes) -> Result<(), Refused> {
        let end = base.checked_add(len).ok_or(Refused::Wraps)?;
        let range = MemoryRegion::new(base as usize, end as usize);
        if self.mapping.translation().free() < tables_needed(base, len) {
            return Err(Refused::NoTables);
        }
        self.mapping
            .map_range(
                &range,
                PhysicalAddress(base as usize),
                attrs,
                Constraints::empty(),
            )
            .map_err(Refused::Tables)
    }

    /// Maps normal-world memory for the driver: [`NON_SECURE_DATA`],
    /// read-only unless `writable`. Refused over the image's own range.
    pub fn map_non_secure(&mut self, base: u64, len: u64, writable: bool) -> Result<(), Refused> {
        let (ib, il) = self.image;
        if base < ib + il && ib < base.saturating_add(len) {
            return Err(Refused::OverImage);
        }
        let attrs = if writable {
            NON_SECURE_DATA
        } else {
            NON_SECURE_DATA.union(El1Attributes::READ_ONLY)
        };
        self.map(base, len, attrs)
    }

    /// Unmaps `base..base + len` (the TLB entries go with it) and gives
    /// emptied tables back to the pool.
    pub fn unmap(&mut self, base: u64, len: u64) {
        let range = MemoryRegion::new(base as usize, base.saturating_add(len) as usize);
        // Invalid entries: a valid-to-invalid change needs no
        // break-before-make.
        let _ = self.mapping.map_range(
            &range,
            PhysicalAddress(base as usize),
            El1Attributes::empty(),
            Constraints::empty(),
        );
        self.mapping.compact_subtables();
    }

    /// Tables left in the pool.
    pub fn free_tables(&self) -> usize {
        self.mapping.translation().free()
    }

    /// Starts translating with this map (`TTBR0_EL1`).
    ///
    /// # Safety
    ///
    /// The map must cover everything the image uses from now on (its
    /// code, data, stacks and the SPMC's buffers) with the attributes the
    /// image expects, and `TCR_EL1`/`MAIR_EL1` must already be set up for
    /// a level-1 root (as `aarch64-rt`'s start-up does).
    pub unsafe fn activate(&self) {
        // SAFETY: the caller's contract.
        unsafe {
            self.mapping.activate();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_needed_counts_each_gib_and_each_2mib() {
        assert_eq!(tables_needed(0x4000_0000, 0x1000), 2);
        // Crossing a 2 MiB boundary: two level-3 tables.
        assert_eq!(tables_needed(0x401f_f000, 0x2000), 3);
        // Crossing a GiB boundary.
        assert_eq!(tables_needed(0x7fff_f000, 0x2000), 4);
        assert_eq!(tables_needed(0x4000_0000, 0), 0);
        // 4 MiB at 0x0e300000: three 2 MiB blocks touched, one GiB.
        assert_eq!(tables_needed(0x0e30_0000, 0x40_0000), 4);
    }
}

#[cfg(test)]
mod pool_tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;

    fn exhausted() -> ! {
        panic!("the pool ran dry")
    }

    fn stage1() -> Stage1<8> {
        let tables: &'static mut [Table; 8] = Box::leak(Box::new([Table::EMPTY; 8]));
        // SAFETY: leaked, so valid for the rest of the test program, and
        // only this pool uses it.
        let pool = unsafe { TablePool::new(NonNull::from(tables), exhausted) };
        Stage1::new(pool, (0x0e30_0000, 0x40_0000))
    }

    #[test]
    fn mapping_and_unmapping_gives_every_table_back() {
        let mut s = stage1();
        // The root table is the pool's first.
        let root_only = s.free_tables();
        assert_eq!(root_only, 7);
        s.map_non_secure(0x4000_0000, 0x3000, true).unwrap();
        s.map_non_secure(0x4020_0000, 0x1000, false).unwrap();
        assert!(s.free_tables() < root_only);
        s.unmap(0x4000_0000, 0x3000);
        s.unmap(0x4020_0000, 0x1000);
        assert_eq!(s.free_tables(), root_only, "emptied tables went back");
        // Mapped again after that: the tables are reused.
        s.map_non_secure(0x4000_0000, 0x1000, true).unwrap();
        s.unmap(0x4000_0000, 0x1000);
        assert_eq!(s.free_tables(), root_only);
    }

    #[test]
    fn refusals_change_nothing() {
        let mut s = stage1();
        let free = s.free_tables();
        // Over the image.
        assert_eq!(
            s.map_non_secure(0x0e30_1000, 0x1000, true),
            Err(Refused::OverImage)
        );
        // More tables than the pool holds: one level-2 per GiB and one
        // level-3 per 2 MiB of four GiB boundaries' worth of ranges.
        assert_eq!(
            s.map_non_secure(0x7fe0_1000, 0x8000_0000, true),
            Err(Refused::NoTables)
        );
        assert_eq!(
            s.map_non_secure(u64::MAX - 0xfff, 0x2000, true),
            Err(Refused::Wraps)
        );
        assert_eq!(s.free_tables(), free);
    }
}
