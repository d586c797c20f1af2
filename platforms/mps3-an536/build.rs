//! Linker script for the bring-up example on `armv8r-none-eabihf`:
//! `aarch32-rt`'s `link.x`, which includes a `memory.x`; ours is
//! `mps3-an536.x` (the MPS3-AN536 memory map, two cores' stacks, the
//! secondary park routine), copied to `OUT_DIR` under that name. Nothing
//! for the library and nothing on the host.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=mps3-an536.x");
    if os == "none" && arch == "arm" {
        // In a directory of its own, searched by the examples only: the
        // images that depend on this crate bring their own `memory.x`
        // (generated from their manifest), and a search path set here would
        // reach their link too.
        let ld = out.join("examples-ld");
        std::fs::create_dir_all(&ld).expect("OUT_DIR is writable");
        std::fs::copy(dir.join("mps3-an536.x"), ld.join("memory.x")).expect("OUT_DIR is writable");
        println!("cargo::rustc-link-arg-examples=-L{}", ld.display());
        println!("cargo::rustc-link-arg-examples=-Tlink.x");
    }
}
