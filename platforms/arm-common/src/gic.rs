//! GICv3 (`arm-gic`): the distributor (set up once), this core's
//! redistributor (found by MPIDR), the CPU interface, SGIs between cores,
//! and polled acknowledge/end of interrupt that works with IRQs masked.
//!
//! Everything is Group 1 for the current security state: QEMU `virt`
//! without `secure=on` and the Cortex-R52's GIC have a single security
//! state. The CPU interface is reached through the `ICC_*_EL1` system
//! registers on AArch64 and the AArch32 `ICC_*` (CP15) ones on the R52.
//!
//! Polling with IRQs masked: enable the SGI, then
//! `loop { if let Some(id) = acknowledge() { ...; end_of_interrupt(id); break } wfi() }`.
//! A pending IRQ wakes `wfi` even with the I bit set, and `ICC_IAR1`
//! returns it; no exception handler is involved.

use core::ptr::NonNull;

pub use arm_gic::IntId;
use arm_gic::UniqueMmioPointer;
pub use arm_gic::gicv3::registers::{Gicd, GicrSgi};
use arm_gic::gicv3::{GicDistributor, GicError, GicRedistributor, GicRedistributorIterator};

use crate::cpu::Mpidr;

/// Priority given to the SGIs this module enables (the middle of the
/// Group 1 range; the CPU interface's mask lets everything through).
pub const SGI_PRIORITY: u8 = 0x80;

/// Why a GIC operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// SGI numbers are 0 to 15.
    InvalidSgi(u8),
    /// The target's Aff0 is above 15: an SGI target list covers Aff0 0..15
    /// (range selector 0), the only range `arm-gic` sends to.
    TargetOutOfRange(u64),
    /// No redistributor in the frames at the given base reports this MPIDR.
    NoRedistributor(u64),
    /// Private peripheral interrupts are INTIDs 16 to 31.
    InvalidPpi(u32),
    /// `arm-gic` refused (unsupported redistributor frame layout, ...).
    Gic(GicError),
}

impl From<GicError> for Error {
    fn from(e: GicError) -> Self {
        Error::Gic(e)
    }
}

/// The 16 SGI ids, built at compile time (`IntId::sgi` asserts its
/// argument; a table lookup has no panic path).
const SGI_IDS: [IntId; 16] = {
    let mut ids = [IntId::sgi(0); 16];
    let mut i = 0;
    while i < 16 {
        ids[i] = IntId::sgi(i as u32);
        i += 1;
    }
    ids
};

/// The interrupt id of SGI `sgi`, or [`Error::InvalidSgi`].
pub fn sgi_id(sgi: u8) -> Result<IntId, Error> {
    SGI_IDS
        .get(usize::from(sgi))
        .copied()
        .ok_or(Error::InvalidSgi(sgi))
}

/// The SGI target fields addressing exactly the core with `mpidr`:
/// `(aff3, aff2, aff1, target_list)`.
pub const fn sgi_target(mpidr: Mpidr) -> Result<(u8, u8, u8, u16), Error> {
    let aff0 = mpidr.aff0();
    if aff0 >= 16 {
        return Err(Error::TargetOutOfRange(mpidr.affinity()));
    }
    Ok((mpidr.aff3(), mpidr.aff2(), mpidr.aff1(), 1 << aff0))
}

/// The GIC distributor. Set it up once, on one core, before any core
/// uses its redistributor.
pub struct Distributor<'a> {
    gicd: GicDistributor<'a>,
}

impl Distributor<'_> {
    /// The distributor whose registers start at `base`.
    ///
    /// # Safety
    ///
    /// `base` is the GICD register frame, mapped as device memory, and
    /// nothing else (another `Distributor`, another core) accesses it while
    /// this value lives.
    pub unsafe fn new(base: NonNull<Gicd>) -> Self {
        // SAFETY: the caller's contract: a mapped GICD frame, not aliased.
        let regs = unsafe { UniqueMmioPointer::new(base) };
        Distributor {
            gicd: GicDistributor::new(regs),
        }
    }

    /// Default configuration (`arm-gic`): affinity routing on, Group 1
    /// enabled, every SPI Group 1, level-triggered, disabled, at the
    /// default priority.
    pub fn init(&mut self) {
        self.gicd.configure_default_settings();
    }
}

/// One core's redistributor (SGI and PPI configuration, wake state).
pub struct Redistributor<'a> {
    gicr: GicRedistributor<'a>,
}

impl Redistributor<'_> {
    /// The redistributor of the core with `mpidr`, searched in the
    /// contiguous redistributor frames starting at `base` (GICR_TYPER's
    /// affinity is compared; the frame size, GICv3 or GICv4, is detected).
    ///
    /// # Safety
    ///
    /// `base` is the first redistributor frame, the frames up to the one
    /// marked Last are mapped as device memory, and while the returned
    /// value lives nothing else writes the matching frame. Other cores may
    /// search the same frames concurrently: the search only reads the
    /// identification registers (GICR_TYPER, GICR_PIDR2), which are read-only.
    pub unsafe fn for_core(base: NonNull<GicrSgi>, mpidr: Mpidr) -> Result<Self, Error> {
        // SAFETY: the caller's contract: mapped frames up to the Last one;
        // the search reads only read-only registers of the other frames.
        let frames = unsafe { GicRedistributorIterator::new(base) }?;
        for gicr in frames {
            if gicr.typer().core_mpidr() == mpidr.affinity() {
                return Ok(Redistributor { gicr });
            }
        }
        Err(Error::NoRedistributor(mpidr.affinity()))
    }

    /// Marks the core awake (if it is not yet) and applies `arm-gic`'s
    /// default configuration: every SGI and PPI Group 1, disabled, at the
    /// default priority.
    pub fn init(&mut self) -> Result<(), Error> {
        match self.gicr.mark_core_awake() {
            Ok(()) | Err(GicError::AlreadyAwake) => {}
            Err(e) => return Err(e.into()),
        }
        self.gicr.configure_default_settings();
        Ok(())
    }

    /// Enables SGI `sgi` on this redistributor's core at [`SGI_PRIORITY`].
    pub fn enable_sgi(&mut self, sgi: u8) -> Result<(), Error> {
        let id = sgi_id(sgi)?;
        self.gicr.set_interrupt_priority(id, SGI_PRIORITY)?;
        self.gicr.enable_interrupt(id, true)?;
        self.gicr.wait_for_pending_write();
        Ok(())
    }

    /// Enables private peripheral interrupt `intid` (16..=31, e.g. the
    /// generic timer's) on this redistributor's core, level-sensitive, at
    /// [`SGI_PRIORITY`].
    pub fn enable_ppi(&mut self, intid: u32) -> Result<(), Error> {
        if !(16..32).contains(&intid) {
            return Err(Error::InvalidPpi(intid));
        }
        let id = IntId::ppi(intid - 16);
        self.gicr.set_interrupt_priority(id, SGI_PRIORITY)?;
        self.gicr.enable_interrupt(id, true)?;
        self.gicr.wait_for_pending_write();
        Ok(())
    }

    /// Disables SGI `sgi` on this redistributor's core.
    pub fn disable_sgi(&mut self, sgi: u8) -> Result<(), Error> {
        let id = sgi_id(sgi)?;
        self.gicr.enable_interrupt(id, false)?;
        self.gicr.wait_for_pending_write();
        Ok(())
    }
}

#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
pub use cpu_interface::*;

/// Brings this core's GIC interface up: its redistributor (searched from
/// `gicr`) woken with `sgis` and `ppis` enabled, then the CPU interface.
/// The distributor must be set up already (on one core).
///
/// # Safety
///
/// As [`Redistributor::for_core`]: `gicr` is the first redistributor frame,
/// mapped as device memory, and nothing else writes this core's frame.
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
pub unsafe fn this_core_up(gicr: NonNull<GicrSgi>, sgis: &[u8], ppis: &[u32]) -> Result<(), Error> {
    // SAFETY: the caller's contract.
    let mut r = unsafe { Redistributor::for_core(gicr, crate::cpu::mpidr()) }?;
    r.init()?;
    for &s in sgis {
        r.enable_sgi(s)?;
    }
    for &p in ppis {
        r.enable_ppi(p)?;
    }
    init_cpu_interface();
    Ok(())
}

/// The CPU interface (system registers) of the running core.
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
mod cpu_interface {
    use arm_gic::InterruptGroup;
    use arm_gic::gicv3::{GicCpuInterface, SgiTarget, SgiTargetGroup};
    #[cfg(target_arch = "arm")]
    use arm_sysregs::aarch32::{accessors::write_icc_ctlr, registers::IccCtlr};
    #[cfg(target_arch = "aarch64")]
    use arm_sysregs::el1::{accessors::write_icc_ctlr_el1, registers::IccCtlrEl1};

    use super::{Error, IntId, sgi_id, sgi_target};
    use crate::cpu::Mpidr;

    /// Sets up this core's CPU interface: system-register access on,
    /// EOImode 0 (a write to EOIR also deactivates), no priority masking,
    /// Group 1 enabled. Call after this core's [`Redistributor::init`](super::Redistributor::init).
    pub fn init_cpu_interface() {
        GicCpuInterface::enable_system_register_el1();
        #[cfg(target_arch = "aarch64")]
        write_icc_ctlr_el1(IccCtlrEl1::empty());
        #[cfg(target_arch = "arm")]
        write_icc_ctlr(IccCtlr::empty());
        GicCpuInterface::set_priority_mask(0xff);
        GicCpuInterface::enable_group1(true);
    }

    /// Sends Group 1 SGI `sgi` to the core with `target`. A DSB first, so
    /// the target sees every store made before the call once it takes the
    /// SGI.
    pub fn send_sgi(sgi: u8, target: Mpidr) -> Result<(), Error> {
        let id = sgi_id(sgi)?;
        let (affinity3, affinity2, affinity1, target_list) = sgi_target(target)?;
        crate::cpu::dsb();
        GicCpuInterface::send_sgi(
            id,
            SgiTarget::List {
                affinity3,
                affinity2,
                affinity1,
                target_list,
            },
            SgiTargetGroup::CurrentGroup1,
        )?;
        crate::cpu::isb();
        Ok(())
    }

    /// Acknowledges the highest-priority pending Group 1 interrupt (reads
    /// `ICC_IAR1_EL1`); `None` if none is pending. Works with IRQs masked.
    pub fn acknowledge() -> Option<IntId> {
        GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1)
    }

    /// Ends (and, with EOImode 0, deactivates) an acknowledged interrupt.
    pub fn end_of_interrupt(id: IntId) {
        GicCpuInterface::end_interrupt(id, InterruptGroup::Group1);
    }

    /// Waits (`wfi`) until a Group 1 interrupt is pending, acknowledges it
    /// and returns its id; the caller ends it. Meant for IRQs masked.
    pub fn wait_for_interrupt() -> IntId {
        loop {
            if let Some(id) = acknowledge() {
                return id;
            }
            crate::cpu::wfi();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgi_ids() {
        assert_eq!(sgi_id(0), Ok(IntId::sgi(0)));
        assert_eq!(sgi_id(15), Ok(IntId::sgi(15)));
        assert_eq!(sgi_id(16), Err(Error::InvalidSgi(16)));
    }

    #[test]
    fn targets() {
        assert_eq!(sgi_target(Mpidr(0x8000_0001)), Ok((0, 0, 0, 0b10)));
        assert_eq!(sgi_target(Mpidr(0x0102_030f)), Ok((0, 2, 3, 1 << 15)));
        assert_eq!(sgi_target(Mpidr(0x7_0000_0000)), Ok((7, 0, 0, 1)));
        assert_eq!(sgi_target(Mpidr(0x10)), Err(Error::TargetOutOfRange(0x10)));
    }
}
