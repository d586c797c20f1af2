//! The SCMI back-end as a Xen DomU (AArch64, EL1).
//!
//! Everything it knows about its bus and the SCMI platform comes from
//! `manifests/xen-domu.dts`, turned into static Rust at build time
//! ([`generated`]): the driver's domain, our end of the static event
//! channel, the grant of the channel page, the window where granted pages
//! are mapped, the queue sizes, the SCMI resources. The image is thin:
//! start-up (the shared info page, the runstate area), the device in a
//! `static`, and `transport-xen`'s loop, which waits in `SCHEDOP_poll` and
//! serves virtio-msg on the channel the driver grants.
//!
//! Xen 4.17 loads a raw arm64 Image, not an ELF: `scripts/xen.sh` puts the
//! binary behind a page holding the Image header.

#![cfg_attr(target_os = "none", no_std, no_main)]

/// The manifest, as static Rust (`build.rs`).
#[allow(dead_code, missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/manifest.rs"));
}

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod image;

/// The host build has nothing to run: the image is bare-metal only.
#[cfg(not(target_os = "none"))]
fn main() {}
