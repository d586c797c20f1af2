//! The processor (`platform-arm-common`'s `cpu`) and how the AN536
//! numbers its two Cortex-R52s.

pub use platform_arm_common::cpu::*;

/// The core index `aarch32-rt` uses for the core with `mpidr` (its stacks):
/// Aff0.
pub const fn core_index_of(mpidr: Mpidr) -> usize {
    mpidr.aff0() as usize
}

/// The MPIDR (affinity only) of core `index` of the AN536's cluster; `None`
/// above 255.
pub const fn core_mpidr(index: usize) -> Option<Mpidr> {
    if index > 0xff {
        None
    } else {
        Some(Mpidr(index as u64))
    }
}

/// This core's index.
#[cfg(target_arch = "arm")]
pub fn core_index() -> usize {
    core_index_of(mpidr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering() {
        assert_eq!(core_index_of(Mpidr(0x8000_0001)), 1);
        assert_eq!(core_mpidr(1), Some(Mpidr(1)));
        assert_eq!(core_mpidr(256), None);
    }
}
