//! Generates the static tables from the platform manifest (needs `dtc`,
//! Debian package device-tree-compiler).

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let src = dir.join("../../manifests/host-vhost-user.dts");
    println!("cargo::rerun-if-changed={}", src.display());
    let m = match manifest::load(&src) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("manifest.rs"), manifest::codegen::to_rust(&m))
        .expect("OUT_DIR is writable");
}
