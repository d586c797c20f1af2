//! The firmware loop's hardware side on a GICv3 board: the
//! [`Processor`](transport_shmem::Processor) `transport-shmem`'s loop runs
//! on (IRQs masked, `WFI`, the virtual timer as the periodic tick, at most
//! [`MAX_INTERRUPTS_PER_WAKE`](transport_shmem::MAX_INTERRUPTS_PER_WAKE)
//! interrupts taken per wake-up) and the SGI that rings the driver.

use transport_shmem::{MAX_INTERRUPTS_PER_WAKE, Processor};
use virtio_backend::service::Doorbell;

use crate::cpu::{self, Mpidr};
use crate::{gic, timer};

/// This core, ticking every `tick` counter ticks.
#[derive(Debug, Clone, Copy)]
pub struct GicCore {
    tick: u32,
    frequency: u64,
}

impl GicCore {
    /// This core with a tick of `tick_ms`; arms the timer.
    pub fn start(tick_ms: u64) -> Self {
        let frequency = timer::frequency();
        let tick = u32::try_from(timer::ms_to_ticks(tick_ms, frequency)).unwrap_or(u32::MAX);
        timer::arm_after(tick);
        GicCore { tick, frequency }
    }
}

impl Processor for GicCore {
    fn mask_interrupts(&mut self) {
        cpu::mask_irq();
    }
    fn wait_for_interrupt(&mut self) {
        cpu::wfi();
    }
    fn take_interrupts(&mut self) {
        // Level-sensitive: re-armed before it is ended.
        if timer::fired() {
            timer::arm_after(self.tick);
        }
        for _ in 0..MAX_INTERRUPTS_PER_WAKE {
            let Some(id) = gic::acknowledge() else {
                break;
            };
            gic::end_of_interrupt(id);
        }
    }
    fn tick_due(&self) -> bool {
        timer::fired()
    }
    fn now_ms(&self) -> u64 {
        timer::ticks_to_ms(timer::counter(), self.frequency)
    }
    fn counter(&self) -> u64 {
        timer::counter()
    }
}

/// The driver's doorbell: SGI `sgi` to the core `target`.
#[derive(Debug, Clone, Copy)]
pub struct SgiDoorbell {
    /// The SGI.
    pub sgi: u8,
    /// The driver's core.
    pub target: Mpidr,
}

impl Doorbell for SgiDoorbell {
    fn barrier(&mut self) {
        // `send_sgi` issues the DSB the barrier contract asks for before
        // the SGI (and a window with cache maintenance completed its
        // cleans with their own DSB).
    }
    fn ring(&mut self) {
        // A refused SGI (an id above 15, a target out of range) is a
        // manifest error the image checks at compile time.
        let _ = gic::send_sgi(self.sgi, self.target);
    }
}
