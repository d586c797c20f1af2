//! The test pair: core 1 (released from `aarch32-rt`'s park by core 0)
//! runs the front-end (`firmware-frontend`'s
//! [`pair`](firmware_frontend::pair)) against the device core 0 serves,
//! prints through semihosting and ends QEMU with its verdict. QEMU's
//! semihosting command line picks the run: `tour` (default), `hostile` or
//! `measure`.

use firmware_frontend::Clock;
use firmware_frontend::pair::{self, Device};
use platform_mps3_an536::{cpu, gic, timer};

use crate::image::{CHANNEL, DOORBELL_IN, DOORBELL_OUT, FIGURES, WINDOW};

/// Bounds of the SYS-mode stacks (`aarch32-rt`'s `link.x`): core 0 has the
/// top copy.
mod symbols {
    unsafe extern "C" {
        pub static _sys_stack_high_end: u8;
        pub static _sys_stack_size: u8;
    }
}

/// Core 0's SYS stack: (bottom, top).
fn core0_stack() -> (usize, usize) {
    let top = &raw const symbols::_sys_stack_high_end as usize;
    let size = &raw const symbols::_sys_stack_size as usize;
    (top - size, top)
}

/// Paints core 0's stack at boot (`main`, before anything deep).
pub fn paint_stack() {
    // SAFETY: called from core 0's `main`, which runs on the SYS stack
    // whose bottom `core0_stack` names, used by nothing else.
    unsafe { platform_mps3_an536::stack::paint(core0_stack().0) }
}

/// The deepest core 0's stack has been, and its size.
fn stack_depth() -> (usize, usize) {
    let (bottom, top) = core0_stack();
    // SAFETY: core 0's painted SYS stack, mapped.
    (
        unsafe { platform_mps3_an536::stack::depth(bottom, top) },
        top - bottom,
    )
}

/// The doorbell to the device: SGI to core 0.
fn ring() {
    if let Some(core0) = cpu::core_mpidr(0)
        && let Err(e) = gic::send_sgi(DOORBELL_IN, core0)
    {
        panic!("front-end: SGI {DOORBELL_IN} to core 0 failed: {e:?}");
    }
}

/// Core 1's entry from `aarch32-rt` once released.
#[unsafe(no_mangle)]
extern "C" fn kmain_secondary() {
    if crate::image::gic_up(&[DOORBELL_OUT], &[]).is_err() {
        panic!("front-end: no GIC redistributor for core 1");
    }
    let clock = Clock {
        now: timer::since_boot,
        idle: firmware_frontend::spin,
    };
    let device = Device {
        figures: &FIGURES,
        stack: stack_depth,
    };
    // SAFETY: the manifest's shared window in DDR; the front-end is its
    // only user on this core.
    let status = unsafe { pair::main(WINDOW, CHANNEL, ring, clock, device) };
    platform_mps3_an536::exit(status)
}
