//! Linker scripts for the bare-metal images; nothing on the host.
//!
//! * `aarch64-unknown-none`: `aarch64-rt`'s `image.ld` (sections, boot
//!   stack) and `aarch64-virt.ld` (where the image lives in QEMU virt RAM).
//! * `armv8r-none-eabihf`: `aarch32-rt`'s `link.x`, which includes a
//!   `memory.x`; ours is `armv8r-an536.x` (the MPS3-AN536 memory map and the
//!   stack sizes), copied to `OUT_DIR` under that name.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=aarch64-virt.ld");
    println!("cargo::rerun-if-changed=armv8r-an536.x");
    if os != "none" {
        return;
    }
    match arch.as_str() {
        "aarch64" => {
            println!("cargo::rustc-link-search={}", dir.display());
            println!("cargo::rustc-link-arg-bins=-Timage.ld");
            println!("cargo::rustc-link-arg-bins=-Taarch64-virt.ld");
        }
        "arm" => {
            std::fs::copy(dir.join("armv8r-an536.x"), out.join("memory.x"))
                .expect("OUT_DIR is writable");
            println!("cargo::rustc-link-search={}", out.display());
            println!("cargo::rustc-link-arg-bins=-Tlink.x");
        }
        other => panic!("static-device: no bare-metal image for target_arch {other}"),
    }
}
