//! The normal-world front-end over FF-A: the BL33 TF-A starts on QEMU
//! `virt` next to the Hafnium SPMC, bare-metal AArch64 at NS-EL1.
//!
//! It does what an operating system's virtio-msg FF-A bus driver does
//! (`scmi_agent::ffa_driver`): FFA_VERSION, FFA_ID_GET, FFA_RXTX_MAP;
//! FFA_MEM_SHARE of the memory its rings, buffers and heap live in
//! ([`POOL`], shared as area 1: bus addresses `1 << 48 | offset`); the bus
//! VERSION, AREA_SHARE, EVENT_CONFIGURE and GET_DEVICES; then the SCMI tour
//! (`scmi_agent::tour`: discovery as Linux 6.12 does it and every protocol)
//! through `virtio-drivers`, every message in a DIRECT_REQ2 to the
//! partition and events fetched with EVENT_POLL. It prints what it found
//! and the verdict on UART0 and ends QEMU with the verdict as the
//! semihosting exit status (QEMU needs `-semihosting-config enable=on`).
//!
//! TF-A enters BL33 at EL2 when the CPU has it (`virtualization=on`, which
//! Hafnium at S-EL2 needs); [`enable_mmu`] then drops to EL1 before it
//! turns the MMU on, so the front-end always runs at NS-EL1. The conduit is
//! SMC. The partition is the first SP Hafnium loads (endpoint 0x8001).

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod image;

/// The host build has nothing to run: the image is bare-metal only.
#[cfg(not(target_os = "none"))]
fn main() {}
