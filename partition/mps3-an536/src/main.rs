//! The SCMI safety-island firmware image for the MPS3-AN536 (Cortex-R52,
//! Armv8-R AArch32, EL1).
//!
//! Everything it knows about the board and the SCMI platform comes from
//! `manifests/mps3-an536.dts`, turned into static Rust and `memory.x` at
//! build time ([`generated`], `build.rs`): the UART and GIC addresses, the
//! shared window in DDR and the channel's place in it, the doorbell SGI
//! each way, the queue sizes, the SCMI resources. The loop is
//! `transport-shmem`'s ([`transport_shmem::serve_forever`]) over this
//! core's GIC and virtual timer.
//!
//! Cache maintenance: the window is reached through a `FixedWindow` whose
//! `CacheMaintenance` hook cleans and invalidates by address to the point
//! of coherency, then `DSB` (`platform-mps3-an536`'s `PocMaintenance`).
//! Chosen over an MPU region that maps the window non-cacheable because
//! it does not depend on how the MPU is programmed (this image runs with
//! the architecture's default memory map, and a boot loader on silicon
//! may own the MPU) and costs only the lines each access touches; the
//! application side must, on silicon, either map its side non-cacheable or
//! maintain its caches too. QEMU models no caches, so the operations are
//! executed but change nothing there; the hook's calls are tested on the
//! host.
//!
//! Core 1 stays parked in the product image; with the `frontend` feature it
//! is released to run the test front-end ([`frontend`]).

#![cfg_attr(target_os = "none", no_std, no_main)]

/// The manifest, as static Rust (`build.rs`).
#[allow(dead_code, missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/manifest.rs"));
}

#[cfg(all(target_os = "none", target_arch = "arm"))]
mod image;

#[cfg(all(target_os = "none", target_arch = "arm", feature = "frontend"))]
mod frontend;

/// The host build has nothing to run: the image is bare-metal only.
#[cfg(not(target_os = "none"))]
fn main() {}
