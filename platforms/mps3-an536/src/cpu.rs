//! This core: its identity (MPIDR), waiting (`wfi`, `wfe`, `sev`), IRQ
//! masking (CPSR.I) and the exception level it runs at.

/// A Multiprocessor Affinity Register value (AArch32 `MPIDR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mpidr(pub u32);

impl Mpidr {
    /// The affinity fields Aff2..Aff0 (bits 23:0); the flag bits (M, U,
    /// MT) cleared. GICR_TYPER reports this value.
    pub const AFFINITY_MASK: u32 = 0x00ff_ffff;

    /// The affinity fields only.
    pub const fn affinity(self) -> u32 {
        self.0 & Self::AFFINITY_MASK
    }

    /// Affinity level 0: the core within the cluster (0 or 1 on the AN536).
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

    /// The core index `aarch32-rt` uses for this core's stacks: Aff0.
    pub const fn core_index(self) -> usize {
        self.aff0() as usize
    }

    /// The MPIDR (affinity only) of core `index` of the AN536's cluster:
    /// `None` above 255.
    pub const fn of_core_index(index: usize) -> Option<Self> {
        if index > 0xff {
            None
        } else {
            Some(Mpidr(index as u32))
        }
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

/// This core's MPIDR.
#[cfg(target_arch = "arm")]
pub fn mpidr() -> Mpidr {
    Mpidr(aarch32_cpu::register::Mpidr::read().0)
}

/// This core's index ([`Mpidr::core_index`]).
#[cfg(target_arch = "arm")]
pub fn core_index() -> usize {
    mpidr().core_index()
}

/// The current program status register.
#[cfg(target_arch = "arm")]
fn cpsr() -> u32 {
    let cpsr: u32;
    // SAFETY: reads CPSR into a register; no memory, no flags changed.
    unsafe {
        core::arch::asm!("mrs {}, cpsr", out(reg) cpsr, options(nomem, nostack, preserves_flags));
    }
    cpsr
}

/// The exception level this code runs at (0 to 2).
#[cfg(target_arch = "arm")]
pub fn current_el() -> u8 {
    el_of_mode(cpsr()).unwrap_or(1)
}

/// Waits for an interrupt (also wakes with IRQs masked: a pending IRQ
/// ends WFI whatever CPSR.I says).
#[cfg(target_arch = "arm")]
pub fn wfi() {
    aarch32_cpu::asm::wfi();
}

/// Waits for an event (`sev` from another core, or an interrupt).
#[cfg(target_arch = "arm")]
pub fn wfe() {
    aarch32_cpu::asm::wfe();
}

/// Signals an event to all cores (wakes their `wfe`).
#[cfg(target_arch = "arm")]
pub fn sev() {
    aarch32_cpu::asm::sev();
}

/// Masks IRQs on this core (CPSR.I = 1).
#[cfg(target_arch = "arm")]
pub fn mask_irq() {
    aarch32_cpu::asm::irq_disable();
}

/// Unmasks IRQs on this core (CPSR.I = 0). An IRQ then enters the vector
/// table's IRQ handler: install one first.
///
/// # Safety
///
/// Not inside an interrupt-masking critical section (`aarch32-cpu`'s
/// contract for `irq_enable`).
#[cfg(target_arch = "arm")]
pub unsafe fn unmask_irq() {
    // SAFETY: the caller's contract.
    unsafe { aarch32_cpu::asm::irq_enable() }
}

/// Whether IRQs are masked on this core.
#[cfg(target_arch = "arm")]
pub fn irq_masked() -> bool {
    cpsr() & (1 << 7) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        // Cortex-R52 core 1: M (bit 31) set, Aff0 = 1.
        let m = Mpidr(0x8000_0001);
        assert_eq!((m.aff0(), m.aff1(), m.aff2()), (1, 0, 0));
        assert_eq!(m.affinity(), 1);
        assert_eq!(m.core_index(), 1);
        assert_eq!(Mpidr(0xc003_0201).affinity(), 0x03_0201);
        assert_eq!(Mpidr::of_core_index(1), Some(Mpidr(1)));
        assert_eq!(Mpidr::of_core_index(256), None);
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
