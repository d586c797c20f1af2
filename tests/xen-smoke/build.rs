//! Links each DomU at 0x4000_1000: Xen copies the image (a 4 KiB page with
//! the arm64 Image header, then this) to the guest's RAM at 0x4000_0000.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    println!("cargo::rerun-if-changed=build.rs");
    std::fs::write(
        out.join("memory.ld"),
        "MEMORY\n{\n\timage : ORIGIN = 0x40001000, LENGTH = 0x1ff000\n}\n",
    )
    .expect("OUT_DIR is writable");
    if std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default() == "none" {
        println!("cargo::rustc-link-search={}", out.display());
        println!("cargo::rustc-link-arg-bins=-Timage.ld");
        println!("cargo::rustc-link-arg-bins=-Tmemory.ld");
    }
}
