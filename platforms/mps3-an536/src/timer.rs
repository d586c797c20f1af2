//! The generic timer: the physical counter (`CNTPCT`), its frequency
//! (`CNTFRQ`) and tick arithmetic.
//!
//! "Since boot" means since the counter started: QEMU starts it at 0 when
//! the machine is reset; on hardware, firmware before us may have run.

/// Milliseconds in `ticks` of a counter running at `frequency` Hz, rounded
/// down; 0 if the frequency is 0 (never divides by zero, never overflows:
/// the result fits since `ticks / frequency * 1000` does for any counter
/// that has run less than 584 million years).
pub const fn ticks_to_ms(ticks: u64, frequency: u64) -> u64 {
    if frequency == 0 {
        return 0;
    }
    let seconds = ticks / frequency;
    let rest = ticks % frequency;
    // rest < frequency <= u64::MAX, so rest * 1000 fits in u128.
    let rest_ms = (rest as u128 * 1000 / frequency as u128) as u64;
    seconds.saturating_mul(1000).saturating_add(rest_ms)
}

/// Ticks in `ms` milliseconds of a counter running at `frequency` Hz,
/// saturating at `u64::MAX`.
pub const fn ms_to_ticks(ms: u64, frequency: u64) -> u64 {
    let ticks = ms as u128 * frequency as u128 / 1000;
    if ticks > u64::MAX as u128 {
        u64::MAX
    } else {
        ticks as u64
    }
}

/// The physical counter now. An ISB first, so the read is not hoisted
/// above earlier instructions.
#[cfg(target_arch = "arm")]
pub fn counter() -> u64 {
    aarch32_cpu::asm::isb();
    aarch32_cpu::register::CntPct::read().0
}

/// The counter frequency in Hz, as firmware (or QEMU) programmed it.
#[cfg(target_arch = "arm")]
pub fn frequency() -> u64 {
    aarch32_cpu::register::Cntfrq::read().0.into()
}

/// Arms the virtual timer to fire `ticks` from now (its interrupt, PPI
/// 27, stays pending until the timer is armed again or stopped). The
/// virtual timer, not the EL1 physical one: EL1 reaches it whatever EL2
/// left in CNTHCTL.
#[cfg(target_arch = "arm")]
pub fn arm_after(ticks: u32) {
    use aarch32_cpu::register::{CntvCtl, CntvTval};
    CntvTval::write(CntvTval(ticks));
    CntvCtl::write(
        CntvCtl::new_with_raw_value(0)
            .with_enable(true)
            .with_imask(false),
    );
}

/// Whether the virtual timer has fired (its condition is met).
#[cfg(target_arch = "arm")]
pub fn fired() -> bool {
    aarch32_cpu::register::CntvCtl::read().istatus()
}

/// Milliseconds since the counter started.
#[cfg(target_arch = "arm")]
pub fn millis_since_boot() -> u64 {
    ticks_to_ms(counter(), frequency())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(ticks_to_ms(0, 62_500_000), 0);
        assert_eq!(ticks_to_ms(62_500, 62_500_000), 1);
        assert_eq!(ticks_to_ms(62_499, 62_500_000), 0);
        assert_eq!(ticks_to_ms(125_000_000, 62_500_000), 2000);
        assert_eq!(ticks_to_ms(5, 0), 0);
        assert_eq!(ticks_to_ms(u64::MAX, 1), u64::MAX);
        assert_eq!(ticks_to_ms(u64::MAX, u64::MAX), 1000);
        assert_eq!(ms_to_ticks(1, 62_500_000), 62_500);
        assert_eq!(ms_to_ticks(u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(ms_to_ticks(0, 1), 0);
    }
}
