//! The SCMI firmware image for QEMU `virt` (AArch64, EL1, GICv3).
//!
//! Everything it knows about the machine and the SCMI platform comes from
//! `manifests/qemu-virt-aarch64.dts`, turned into static Rust at build time
//! ([`generated`]): the UART and GIC addresses, the shared window and the
//! channel's place in it, the doorbell SGI each way, the queue sizes, the
//! SCMI resources. The image is thin: start-up, the device in a `static`,
//! and the loop
//!
//! 1. with IRQs masked (always: nothing here takes exceptions), check for
//!    work: a message waiting in the channel, or the timer due;
//! 2. none: `WFI` (a doorbell that arrived after the check is pending and
//!    ends it at once), then acknowledge what is pending at the GIC;
//! 3. serve through the core's service step (`transport-shmem`), which
//!    writes the answers and notifications and rings the driver's SGI.
//!
//! A periodic timer (every [`TICK_MS`]) lets time pass on the simulated
//! SCMI platform while the driver is quiet: delayed responses and sensor
//! notifications are due then.
//!
//! With the `frontend` feature, core 1 runs the test front-end
//! ([`frontend`]); without it the image is the product and core 1 is never
//! started.

#![cfg_attr(target_os = "none", no_std, no_main)]

/// The manifest, as static Rust (`build.rs`).
#[allow(dead_code, missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/manifest.rs"));
}

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod image;

#[cfg(all(target_os = "none", target_arch = "aarch64", feature = "frontend"))]
mod frontend;

/// The host build has nothing to run: the image is bare-metal only.
#[cfg(not(target_os = "none"))]
fn main() {}
