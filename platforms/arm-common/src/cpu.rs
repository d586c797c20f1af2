//! The processor: MPIDR affinity fields, waiting for interrupts and
//! events, IRQ masking, barriers and the exception level, for AArch64 and
//! AArch32 (Armv8-R) alike. How cores are numbered is the board's.

/// A Multiprocessor Affinity Register value (`MPIDR_EL1`, or the AArch32
/// `MPIDR` widened: it has no Aff3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mpidr(pub u64);

impl Mpidr {
    /// The affinity fields Aff3..Aff0 (bits 39:32 and 23:0); the flag bits
    /// (U, MT, the RES1/M bit 31) cleared. This is the value PSCI `CPU_ON`
    /// and GICR_TYPER use.
    pub const AFFINITY_MASK: u64 = 0xff_00ff_ffff;

    /// The affinity fields only (see [`AFFINITY_MASK`](Self::AFFINITY_MASK)).
    pub const fn affinity(self) -> u64 {
        self.0 & Self::AFFINITY_MASK
    }

    /// Affinity level 0 (the core within its cluster).
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

    /// Affinity level 3 (0 on AArch32).
    pub const fn aff3(self) -> u8 {
        (self.0 >> 32) as u8
    }
}

/// The exception level of AArch32 processor mode `mode` (CPSR bits 4:0):
/// User is EL0, Hyp is EL2, the other privileged modes are EL1 (Armv8-R
/// has no EL3). `None` for an encoding that is not a mode.
pub const fn el_of_mode(mode: u32) -> Option<u8> {
    match mode & 0x1f {
        0b10000 => Some(0),
        0b11010 => Some(2),
        0b10001 | 0b10010 | 0b10011 | 0b10111 | 0b11011 | 0b11111 => Some(1),
        _ => None,
    }
}

#[cfg(target_arch = "aarch64")]
mod arch {
    use super::Mpidr;
    use aarch64_cpu::registers::{CurrentEL, DAIF, MPIDR_EL1, Readable};

    /// This core's MPIDR.
    pub fn mpidr() -> Mpidr {
        Mpidr(MPIDR_EL1.get())
    }

    /// The exception level this code runs at (0 to 3).
    pub fn current_el() -> u8 {
        // EL is two bits: the cast cannot truncate.
        CurrentEL.read(CurrentEL::EL) as u8
    }

    /// Waits for an interrupt (also wakes with IRQs masked: a pending IRQ
    /// ends WFI whatever PSTATE.I says).
    pub fn wfi() {
        aarch64_cpu::asm::wfi();
    }

    /// Waits for an event (`sev` from another core, or an interrupt).
    pub fn wfe() {
        aarch64_cpu::asm::wfe();
    }

    /// Signals an event to all cores (wakes their `wfe`).
    pub fn sev() {
        aarch64_cpu::asm::sev();
    }

    /// Masks IRQs on this core (PSTATE.I = 1).
    pub fn mask_irq() {
        // SAFETY: sets PSTATE.I; touches no memory. Masking interrupts
        // cannot break an invariant of Rust code.
        unsafe {
            core::arch::asm!("msr daifset, #2", options(nomem, nostack, preserves_flags));
        }
    }

    /// Whether IRQs are masked on this core.
    pub fn irq_masked() -> bool {
        DAIF.is_set(DAIF::I)
    }

    /// Data synchronization barrier, inner shareable: the stores before it
    /// are complete for the other cores (before a doorbell).
    pub fn dsb() {
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISH);
    }

    /// Instruction synchronization barrier.
    pub fn isb() {
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }
}

#[cfg(target_arch = "arm")]
mod arch {
    use super::{Mpidr, el_of_mode};

    /// This core's MPIDR.
    pub fn mpidr() -> Mpidr {
        Mpidr(u64::from(aarch32_cpu::register::Mpidr::read().0))
    }

    /// The current program status register.
    fn cpsr() -> u32 {
        let cpsr: u32;
        // SAFETY: reads CPSR into a register; no memory, no flags changed.
        unsafe {
            core::arch::asm!("mrs {}, cpsr", out(reg) cpsr, options(nomem, nostack, preserves_flags));
        }
        cpsr
    }

    /// The exception level this code runs at (0 to 2).
    pub fn current_el() -> u8 {
        el_of_mode(cpsr()).unwrap_or(1)
    }

    /// Waits for an interrupt (also wakes with IRQs masked: a pending IRQ
    /// ends WFI whatever CPSR.I says).
    pub fn wfi() {
        aarch32_cpu::asm::wfi();
    }

    /// Waits for an event (`sev` from another core, or an interrupt).
    pub fn wfe() {
        aarch32_cpu::asm::wfe();
    }

    /// Signals an event to all cores (wakes their `wfe`).
    pub fn sev() {
        aarch32_cpu::asm::sev();
    }

    /// Masks IRQs on this core (CPSR.I = 1).
    pub fn mask_irq() {
        aarch32_cpu::asm::irq_disable();
    }

    /// Whether IRQs are masked on this core.
    pub fn irq_masked() -> bool {
        cpsr() & (1 << 7) != 0
    }

    /// Data synchronization barrier: the stores before it are complete
    /// for the other cores (before a doorbell).
    pub fn dsb() {
        aarch32_cpu::asm::dsb();
    }

    /// Instruction synchronization barrier.
    pub fn isb() {
        aarch32_cpu::asm::isb();
    }
}

#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
pub use arch::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        // A typical MPIDR_EL1: RES1 bit 31, U=0, MT=0, cluster 1, core 2.
        let m = Mpidr(0x8000_0102);
        assert_eq!((m.aff0(), m.aff1(), m.aff2(), m.aff3()), (2, 1, 0, 0));
        assert_eq!(m.affinity(), 0x102);
        assert_eq!(Mpidr(0x12_8000_0000).aff3(), 0x12);
        assert_eq!(Mpidr(0x12_c000_0000).affinity(), 0x12_0000_0000);
        // A Cortex-R52's (AArch32, widened): M set, Aff0 = 1.
        assert_eq!(Mpidr(0x8000_0001).affinity(), 1);
        assert_eq!(Mpidr(0xc003_0201).affinity(), 0x03_0201);
    }

    #[test]
    fn modes() {
        assert_eq!(el_of_mode(0x1f), Some(1)); // System
        assert_eq!(el_of_mode(0x1a), Some(2)); // Hyp
        assert_eq!(el_of_mode(0x10), Some(0)); // User
        assert_eq!(el_of_mode(0x600001d3), Some(1)); // SVC, flags set
        assert_eq!(el_of_mode(0x00), None);
    }
}
