//! A stand-in SPMC at EL3 for QEMU `virt` with `secure=on`: the smallest
//! piece of TF-A + Hafnium that lets the unchanged secure partition
//! (`partition/qemu-virt-sp`, its SP package) and the unchanged
//! normal-world front-end (`tests/ffa-frontend`, the BL33) run against
//! each other in the test command, where neither TF-A nor Hafnium can be
//! built (they are in no package registry).
//!
//! What it does, as BL2, the SPMD and the SPMC would:
//!
//! * copies the SP package from where QEMU's loader put it (normal-world
//!   DRAM) to the partition's load address in secure RAM and writes the
//!   FF-A boot-information blob over the package header, its one FDT
//!   descriptor naming the manifest (FF-A §5.4);
//! * runs the partition at S-EL1 on CPU 0 (MMU off, x0 = the blob) and the
//!   front-end at NS-EL1 on CPU 1;
//! * serves the FF-A calls both make (SMC traps to EL3): versions, ids,
//!   RX/TX buffers, DIRECT_REQ2 from the normal world delivered to the
//!   partition's FFA_MSG_WAIT and its DIRECT_RESP2 returned, memory shares
//!   retrieved into the partition's RX buffer (FF-A 1.2 descriptors, the
//!   memory marked non-secure), relinquish and reclaim, console output.
//!
//! It checks what it must to work (the descriptors decode, handles exist,
//! buffers are mapped, RX ownership) and stops the run on a broken rule;
//! the rule-by-rule checking is the host double's (`tests/ffa-double`).
//! Not modelled: indirect messages, notifications (answered, not
//! delivered), more than one partition or share receiver.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod image;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod spmc;

/// The host build has nothing to run: the image is bare-metal only.
#[cfg(not(target_os = "none"))]
fn main() {}
