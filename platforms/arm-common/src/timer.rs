//! The generic timer: the counter, its frequency, the virtual timer as a
//! periodic tick, and tick arithmetic.
//!
//! "Since boot" means since the counter started: QEMU starts it at 0 when
//! the machine is reset; on hardware, firmware before us may have run.

use core::time::Duration;

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

/// Time since the counter started, as a `Duration` (for deadlines).
pub fn duration(ticks: u64, frequency: u64) -> Duration {
    if frequency == 0 {
        return Duration::ZERO;
    }
    let nanos = (ticks % frequency) as u128 * 1_000_000_000 / frequency as u128;
    // nanos < 1e9: the cast cannot truncate.
    Duration::new(ticks / frequency, nanos as u32)
}

#[cfg(target_arch = "aarch64")]
mod arch {
    use aarch64_cpu::registers::{
        CNTFRQ_EL0, CNTV_CTL_EL0, CNTV_TVAL_EL0, CNTVCT_EL0, Readable, Writeable,
    };

    /// The counter now (`CNTVCT_EL0`). An ISB first, so the read is not
    /// hoisted above earlier instructions.
    pub fn counter() -> u64 {
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        CNTVCT_EL0.get()
    }

    /// The counter frequency in Hz, as firmware (or QEMU) programmed it.
    pub fn frequency() -> u64 {
        CNTFRQ_EL0.get() & 0xffff_ffff
    }

    /// Arms the virtual timer to fire `ticks` from now (its interrupt, PPI
    /// 27, stays pending until the timer is armed again or stopped).
    pub fn arm_after(ticks: u32) {
        CNTV_TVAL_EL0.set(u64::from(ticks));
        CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    }

    /// Whether the virtual timer has fired (its condition is met).
    pub fn fired() -> bool {
        CNTV_CTL_EL0.is_set(CNTV_CTL_EL0::ISTATUS)
    }
}

#[cfg(target_arch = "arm")]
mod arch {
    use aarch32_cpu::register::{CntPct, Cntfrq, CntvCtl, CntvTval};

    /// The counter now (`CNTPCT`: the Cortex-R52's counter as EL1 reads
    /// it; under QEMU `-icount shift=4` one tick per instruction). An ISB
    /// first, so the read is not hoisted above earlier instructions.
    pub fn counter() -> u64 {
        aarch32_cpu::asm::isb();
        CntPct::read().0
    }

    /// The counter frequency in Hz, as firmware (or QEMU) programmed it.
    pub fn frequency() -> u64 {
        Cntfrq::read().0.into()
    }

    /// Arms the virtual timer to fire `ticks` from now (its interrupt, PPI
    /// 27, stays pending until the timer is armed again or stopped). The
    /// virtual timer, not the EL1 physical one: EL1 reaches it whatever EL2
    /// left in CNTHCTL.
    pub fn arm_after(ticks: u32) {
        CntvTval::write(CntvTval(ticks));
        CntvCtl::write(
            CntvCtl::new_with_raw_value(0)
                .with_enable(true)
                .with_imask(false),
        );
    }

    /// Whether the virtual timer has fired (its condition is met).
    pub fn fired() -> bool {
        CntvCtl::read().istatus()
    }
}

#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
pub use arch::*;

/// Time since the counter started.
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
pub fn since_boot() -> Duration {
    duration(counter(), frequency())
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
        assert_eq!(
            duration(62_500_000 + 62_500, 62_500_000),
            Duration::from_millis(1001)
        );
        assert_eq!(duration(5, 0), Duration::ZERO);
    }
}
