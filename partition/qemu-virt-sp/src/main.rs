//! The SCMI back-end as an FF-A secure partition for QEMU `virt` (S-EL1,
//! AArch64) under TF-A and the Hafnium SPMC.
//!
//! Everything it knows comes from `manifests/qemu-virt-sp.dts`, turned into
//! static Rust at build time ([`generated`]): the SCMI resources, the
//! virtio device's queues and how many areas a driver may share, the load
//! address, whether notifications and indirect messages are allowed. The
//! same manifest, as a blob, is packaged with the image (`manifest-tool
//! spkg`) and handed back by the SPMC at boot; the partition checks that
//! it is the one it was built from.
//!
//! The image is thin: start-up (its own stage-1 map, the boot
//! information), the device, and `transport-ffa`'s FFA_MSG_WAIT loop.
//! Nothing here takes interrupts: the SPMC runs the partition when a
//! message is for it. Output goes through FFA_CONSOLE_LOG.

#![cfg_attr(target_os = "none", no_std, no_main)]

/// The manifest, as static Rust (`build.rs`).
#[allow(dead_code, missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/manifest.rs"));
    include!(concat!(env!("OUT_DIR"), "/blob.rs"));
}

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod image;

/// The host build has nothing to run: the image is bare-metal only.
#[cfg(not(target_os = "none"))]
fn main() {}
