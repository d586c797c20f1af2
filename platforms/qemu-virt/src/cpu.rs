//! The processor (`platform-arm-common`'s `cpu`) and how QEMU `virt`
//! numbers its cores.

pub use platform_arm_common::cpu::*;

/// The linear index QEMU `virt` gives the core with `mpidr` when it has a
/// GICv3: 16 cores per Aff1 cluster, `Aff1 * 16 + Aff0` (Aff2 and Aff3 are 0
/// there). Another numbering belongs in the image's manifest.
pub const fn core_index_of(mpidr: Mpidr) -> usize {
    mpidr.aff1() as usize * 16 + mpidr.aff0() as usize
}

/// The MPIDR (affinity only) of linear core `index` on QEMU `virt`; the
/// inverse of [`core_index_of`]. `None` above 4095 (Aff1 is one byte).
pub const fn core_mpidr(index: usize) -> Option<Mpidr> {
    if index >= 256 * 16 {
        return None;
    }
    Some(Mpidr((((index / 16) as u64) << 8) | (index % 16) as u64))
}

/// This core's linear index.
#[cfg(target_arch = "aarch64")]
pub fn core_index() -> usize {
    core_index_of(mpidr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trip() {
        assert_eq!(core_index_of(Mpidr(0x8000_0102)), 18);
        for i in [0usize, 1, 15, 16, 17, 4095] {
            assert_eq!(core_index_of(core_mpidr(i).unwrap()), i);
        }
        assert_eq!(core_mpidr(4096), None);
        assert_eq!(core_mpidr(1), Some(Mpidr(1)));
    }
}
