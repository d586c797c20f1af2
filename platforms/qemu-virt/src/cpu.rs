//! This core: its identity (MPIDR), waiting (`wfi`, `wfe`, `sev`), IRQ
//! masking (DAIF) and the exception level it runs at.

/// A Multiprocessor Affinity Register value (`MPIDR_EL1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mpidr(pub u64);

impl Mpidr {
    /// The affinity fields Aff3..Aff0 (bits 39:32 and 23:0); the flag bits
    /// (U, MT, the RES1 bit 31) cleared. This is the value PSCI `CPU_ON`
    /// and GICR_TYPER use.
    pub const AFFINITY_MASK: u64 = 0xff_00ff_ffff;

    /// The affinity fields only (see [`AFFINITY_MASK`](Self::AFFINITY_MASK)).
    pub const fn affinity(self) -> u64 {
        self.0 & Self::AFFINITY_MASK
    }

    /// Affinity level 0 (the core within its cluster on QEMU `virt`).
    pub const fn aff0(self) -> u8 {
        self.0 as u8
    }

    /// Affinity level 1.
    pub const fn aff1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// Affinity level 2.
    pub const fn aff2(self) -> u8 {
        (self.0 >> 16) as u8
    }

    /// Affinity level 3.
    pub const fn aff3(self) -> u8 {
        (self.0 >> 32) as u8
    }

    /// The linear core index QEMU `virt` gives this MPIDR with a GICv3:
    /// 16 cores per Aff1 cluster, `Aff1 * 16 + Aff0` (Aff2/Aff3 are 0
    /// there). Another numbering belongs in the image's manifest.
    pub const fn core_index(self) -> usize {
        self.aff1() as usize * 16 + self.aff0() as usize
    }

    /// The MPIDR (affinity only) of linear core `index` on QEMU `virt`
    /// with a GICv3; the inverse of [`core_index`](Self::core_index).
    /// `None` above 4095 (Aff1 is one byte).
    pub const fn of_core_index(index: usize) -> Option<Self> {
        if index >= 256 * 16 {
            return None;
        }
        Some(Mpidr((((index / 16) as u64) << 8) | (index % 16) as u64))
    }
}

/// This core's MPIDR.
#[cfg(target_arch = "aarch64")]
pub fn mpidr() -> Mpidr {
    use aarch64_cpu::registers::{MPIDR_EL1, Readable};
    Mpidr(MPIDR_EL1.get())
}

/// This core's linear index ([`Mpidr::core_index`]).
#[cfg(target_arch = "aarch64")]
pub fn core_index() -> usize {
    mpidr().core_index()
}

/// The exception level this code runs at (0 to 3).
#[cfg(target_arch = "aarch64")]
pub fn current_el() -> u8 {
    use aarch64_cpu::registers::{CurrentEL, Readable};
    // EL is two bits: the cast cannot truncate.
    CurrentEL.read(CurrentEL::EL) as u8
}

/// Waits for an interrupt (also wakes with IRQs masked: a pending IRQ
/// ends WFI whatever PSTATE.I says).
#[cfg(target_arch = "aarch64")]
pub fn wfi() {
    aarch64_cpu::asm::wfi();
}

/// Waits for an event (`sev` from another core, or an interrupt).
#[cfg(target_arch = "aarch64")]
pub fn wfe() {
    aarch64_cpu::asm::wfe();
}

/// Signals an event to all cores (wakes their `wfe`).
#[cfg(target_arch = "aarch64")]
pub fn sev() {
    aarch64_cpu::asm::sev();
}

/// Masks IRQs on this core (DAIF.I = 1).
#[cfg(target_arch = "aarch64")]
pub fn mask_irq() {
    // SAFETY: sets PSTATE.I; touches no memory. Masking interrupts cannot
    // break an invariant of Rust code.
    unsafe {
        core::arch::asm!("msr daifset, #2", options(nomem, nostack, preserves_flags));
    }
}

/// Unmasks IRQs on this core (DAIF.I = 0). An IRQ then enters the
/// image's exception vector: install a handler first.
#[cfg(target_arch = "aarch64")]
pub fn unmask_irq() {
    // SAFETY: clears PSTATE.I; touches no memory. The IRQ that may follow
    // goes to the vector table the image installed (aarch64-rt's), which
    // is sound Rust code whatever it does.
    unsafe {
        core::arch::asm!("msr daifclr, #2", options(nomem, nostack, preserves_flags));
    }
}

/// Whether IRQs are masked on this core.
#[cfg(target_arch = "aarch64")]
pub fn irq_masked() -> bool {
    use aarch64_cpu::registers::{DAIF, Readable};
    DAIF.is_set(DAIF::I)
}

#[cfg(test)]
mod tests {
    use super::Mpidr;

    #[test]
    fn fields() {
        // A typical MPIDR_EL1: RES1 bit 31, U=0, MT=0, cluster 1, core 2.
        let m = Mpidr(0x8000_0102);
        assert_eq!((m.aff0(), m.aff1(), m.aff2(), m.aff3()), (2, 1, 0, 0));
        assert_eq!(m.affinity(), 0x102);
        assert_eq!(m.core_index(), 18);
        assert_eq!(Mpidr(0x12_8000_0000).aff3(), 0x12);
        assert_eq!(Mpidr(0x12_c000_0000).affinity(), 0x12_0000_0000);
    }

    #[test]
    fn index_round_trip() {
        for i in [0usize, 1, 15, 16, 17, 4095] {
            assert_eq!(Mpidr::of_core_index(i).unwrap().core_index(), i);
        }
        assert_eq!(Mpidr::of_core_index(4096), None);
        assert_eq!(Mpidr::of_core_index(1), Some(Mpidr(1)));
    }
}
