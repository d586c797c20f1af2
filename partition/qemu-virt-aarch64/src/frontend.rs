//! The test pair: core 1 runs the front-end (`firmware-frontend`'s
//! [`pair`](firmware_frontend::pair)) against the device core 0 serves,
//! prints through semihosting and ends QEMU with its verdict. QEMU's
//! semihosting command line picks the run: `tour` (default), `hostile` or
//! `measure`.

use aarch64_rt::Stack;
use firmware_frontend::Clock;
use firmware_frontend::pair::{self, Device};
use platform_qemu_virt::{cpu, gic, psci, timer};

use crate::image::{CHANNEL, DOORBELL_IN, DOORBELL_OUT, FIGURES, WINDOW};

/// Core 1's stack: 64 KiB (the agent's probe and the formatting).
static mut STACK: Stack<16> = Stack::new();

/// Starts core 1 on the front-end.
pub fn start() {
    let Some(core1) = cpu::core_mpidr(1) else {
        return;
    };
    // SAFETY: `STACK` is core 1's alone (nothing else names it) and lies in
    // the image's RAM, normal memory in both cores' page tables.
    if unsafe { psci::start_core(core1, &raw mut STACK, main) }.is_err() {
        panic!("front-end: CPU_ON failed");
    }
}

/// The doorbell to the device: SGI to core 0.
fn ring() {
    if let Some(core0) = cpu::core_mpidr(0)
        && let Err(e) = gic::send_sgi(DOORBELL_IN, core0)
    {
        panic!("front-end: SGI {DOORBELL_IN} to core 0 failed: {e:?}");
    }
}

fn main() {
    if crate::image::gic_up(&[DOORBELL_OUT], &[]).is_err() {
        panic!("front-end: no GIC redistributor for core 1");
    }
    let clock = Clock {
        now: timer::since_boot,
        idle: firmware_frontend::spin,
    };
    let device = Device {
        figures: &FIGURES,
        stack: crate::image::stack_depth,
    };
    // SAFETY: the manifest's shared window, identity-mapped as normal
    // memory on both cores; the front-end is its only user on this core.
    let status = unsafe { pair::main(WINDOW, CHANNEL, ring, clock, device) };
    platform_qemu_virt::exit(status)
}
