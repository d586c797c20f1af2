//! The identity map a QEMU `virt` image boots with (`aarch64-rt`'s initial
//! page table, installed before any Rust code runs): level-1 blocks of
//! 1 GiB, the first (flash, GIC, UART, ...) as Device-nGnRE and never
//! executable, the second (where `virt`'s RAM starts) as normal
//! write-back, inner-shareable memory, so that the cores are coherent and
//! unaligned and exclusive accesses work there.

use aarch64_paging::descriptor::El1Attributes;
use aarch64_paging::mair::{Mair, MairAttribute, NormalMemory};

/// Device-nGnRE, never executable.
pub const DEVICE_MEMORY: El1Attributes = El1Attributes::VALID
    .union(El1Attributes::ATTRIBUTE_INDEX_0)
    .union(El1Attributes::ACCESSED)
    .union(El1Attributes::UXN)
    .union(El1Attributes::PXN);

/// Normal write-back memory, inner shareable.
pub const NORMAL_MEMORY: El1Attributes = El1Attributes::VALID
    .union(El1Attributes::ATTRIBUTE_INDEX_1)
    .union(El1Attributes::INNER_SHAREABLE)
    .union(El1Attributes::ACCESSED)
    .union(El1Attributes::NON_GLOBAL);

/// Attribute index 0: Device-nGnRE; 1: normal, write-back.
pub const MAIR: Mair = Mair::EMPTY
    .with_attribute(0, MairAttribute::DEVICE_NGNRE)
    .with_attribute(
        1,
        MairAttribute::normal(
            NormalMemory::WriteBackNonTransientReadWriteAllocate,
            NormalMemory::WriteBackNonTransientReadWriteAllocate,
        ),
    );

/// The level-1 table: GiB 0 device memory, GiB 1 normal memory, the rest
/// unmapped.
pub const fn identity_map() -> [usize; 512] {
    let mut table = [0; 512];
    table[0] = DEVICE_MEMORY.bits();
    table[1] = NORMAL_MEMORY.bits() | 0x4000_0000;
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks() {
        let t = identity_map();
        // Valid block descriptors (bits 1:0 = 0b01) at the GiB boundaries.
        assert_eq!(t[0] & 3, 1);
        assert_eq!(t[1] & 3, 1);
        assert_eq!(t[1] & 0xffff_c000_0000, 0x4000_0000);
        assert!(t[2..].iter().all(|&d| d == 0));
    }
}
