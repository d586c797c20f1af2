//! Linker scripts for the bring-up example on `aarch64-unknown-none`:
//! `aarch64-rt`'s `image.ld` (sections, boot stack) and `qemu-virt.ld`
//! (where the image lives in QEMU `virt` RAM). Nothing for the library and
//! nothing on the host.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=qemu-virt.ld");
    if os == "none" && arch == "aarch64" {
        println!("cargo::rustc-link-search={}", dir.display());
        println!("cargo::rustc-link-arg-examples=-Timage.ld");
        println!("cargo::rustc-link-arg-examples=-Tqemu-virt.ld");
    }
}
