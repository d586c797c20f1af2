//! Board support for the Arm MPS3-AN536: two Cortex-R52 cores (Armv8-R
//! AArch32), a GICv3, CMSDK APB UARTs, the generic timer.
//!
//! What it is for: the pieces a Cortex-R52 firmware image needs below the
//! SCMI/virtio core, the same shape as `platform-qemu-virt`:
//!
//! * [`console`]: a CMSDK APB UART ([`console::CmsdkUart`], a typed
//!   `safe-mmio` register block) as a [`Print`] sink (no `core::fmt`).
//!   Each core has its own UART at the same address, so each core owns
//!   its console.
//! * [`cpu`]: how the AN536 numbers its cores (Aff0), over
//!   `platform-arm-common`'s MPIDR, waits and masks.
//! * [`gic`], [`timer`], `firmware`: `platform-arm-common`'s GICv3 (from
//!   AArch32), generic timer (`CNTPCT`, the virtual timer as the tick),
//!   and the firmware loop's processor and SGI doorbell, re-exported.
//! * [`start`]: running the second core under `aarch32-rt`.
//! * [`cache`]: [`cache::PocMaintenance`], the
//!   [`virtio_backend::CacheMaintenance`] of a peer outside our cache
//!   coherency: clean/invalidate by MVA to the Point of Coherency.
//! * `exit`: semihosting exit with a status.
//!
//! # Two cores and `aarch32-rt` 0.5
//!
//! QEMU (and the board) starts both cores at the ELF entry. `aarch32-rt`'s
//! reset code takes the core id from MPIDR bits 7:0 and handles a second
//! core itself, through link-time hooks:
//!
//! * stacks: `link.x` reserves `_num_cores` copies of every mode's stack
//!   (HYP, UND, SVC, ABT, IRQ, FIQ, SYS) and core N's stack pointers are
//!   `_<mode>_stack_high_end - N * _<mode>_stack_size`. With the default
//!   `_num_cores = 1` core 1's stacks would lie *below* the region, on top
//!   of the next mode's stack of core 0 — so the image's `memory.x` must
//!   say `PROVIDE(_num_cores = 2)`.
//! * start-up order: only core 0 initialises `.data`/`.bss` (and zeroes
//!   the stacks); every other core calls `_asm_secondary_core_park`
//!   (after setting up its HYP stack, before touching any other memory),
//!   then sets up its own stacks and calls `kmain_secondary`. The default
//!   park spins forever. This crate provides the park routine
//!   ([`start`]): it waits (WFE) until core 0 calls
//!   [`start::release_secondary_cores`] after its start-up, so core 1
//!   never runs while core 0 rewrites `.bss` or the stacks. The image's
//!   `memory.x` must say `EXTERN(_asm_secondary_core_park)` so the linker
//!   takes this one, and the image defines
//!   `#[unsafe(no_mangle)] extern "C" fn kmain_secondary()`.
//!
//! No custom `_start` is needed.
//!
//! # Memory between the cores
//!
//! The Cortex-R52's L1 caches are not coherent between the cores, and the
//! AN536 cannot do exclusive accesses (LDREX/STREX) between the cores in
//! RAM. With the MPU and caches off, as `aarch32-rt` leaves them, plain
//! loads and stores with barriers are coherent; with caches on, shared
//! memory needs [`cache::PocMaintenance`] or a non-cacheable MPU region.
//! Flags between cores must be single loads/stores (atomic `load`/`store`,
//! never `swap`/`fetch_*`).
//!
//! What it refuses to know about: where anything is (UART, GIC, memory —
//! the caller passes base addresses, from the image's manifest; only
//! `examples/bringup.rs` writes QEMU's addresses down), SCMI, virtio and
//! transports. It sets up no MPU, installs no exception handler and
//! allocates nothing. Hardware access is compiled for `target_arch = "arm"`
//! only; on the host the logic (writer, cache-line rounding, MPIDR and SGI
//! target decoding, tick arithmetic) builds and is unit-tested.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod cache;
pub mod console;
pub mod cpu;
pub mod start;

pub use console::Print;
/// The firmware loop's processor and SGI doorbell (`platform-arm-common`).
#[cfg(target_arch = "arm")]
pub use platform_arm_common::firmware;
/// GICv3 (`platform-arm-common`).
pub use platform_arm_common::gic;
/// Stack painting (`platform-arm-common`).
pub use platform_arm_common::stack;
/// The generic timer (`platform-arm-common`).
pub use platform_arm_common::timer;

/// Ends the program under a debugger or emulator with `code` as the exit
/// status (semihosting `SYS_EXIT_EXTENDED`; QEMU needs `-semihosting`).
#[cfg(all(target_arch = "arm", target_os = "none"))]
pub fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}
