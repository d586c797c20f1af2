//! For the build scripts of AArch64 images (`aarch64-rt`'s `image.ld`):
//! the validated manifest becomes static Rust (`OUT_DIR/manifest.rs`: the
//! SCMI tables, the virtio device, the regions) and the image's place in
//! memory the linker script's `MEMORY` (`OUT_DIR/memory.ld`: from the
//! load address to the end of the memory region that holds it). A
//! manifest that does not validate fails the build with the file, node
//! and property.

use std::path::PathBuf;
use std::{eprintln, format, println};

fn fail(msg: impl core::fmt::Display) -> ! {
    eprintln!("{msg}");
    std::process::exit(1)
}

/// Runs in a build script: builds from `manifest` and the files it
/// includes (paths relative to the package), and links the image's
/// binaries with `image.ld` and the generated `memory.ld` for bare-metal
/// targets.
pub fn aarch64_image(manifest: &str, includes: &[&str]) {
    let var = |v: &str| {
        PathBuf::from(
            std::env::var_os(v)
                .unwrap_or_else(|| fail(format!("{v} is not set: run from a build script"))),
        )
    };
    let dir = var("CARGO_MANIFEST_DIR");
    let out = var("OUT_DIR");
    let src = dir.join(manifest);
    println!("cargo::rerun-if-changed={}", src.display());
    for i in includes {
        println!("cargo::rerun-if-changed={}", dir.join(i).display());
    }
    println!("cargo::rerun-if-changed=build.rs");
    let m = crate::load(&src).unwrap_or_else(|e| fail(e));
    let write = |name: &str, text: &str| {
        std::fs::write(out.join(name), text).unwrap_or_else(|e| fail(format!("{name}: {e}")));
    };
    write("manifest.rs", &crate::codegen::to_rust(&m));
    let Some(load) = m.partition.load_address else {
        fail(format!("{}: /: the image needs a load-address", m.file));
    };
    // The manifest checked that the load address lies in an executable
    // memory region; the image fills it from there.
    let Some((_, end)) = m
        .partition
        .memory_regions
        .iter()
        .filter_map(|r| r.span())
        .find(|(b, e)| (*b..*e).contains(&load))
    else {
        fail(format!(
            "{}: /memory-regions: no region holds the load address",
            m.file
        ));
    };
    write(
        "memory.ld",
        &format!(
            "/* Generated from {} by build.rs. */\nMEMORY\n{{\n\timage : ORIGIN = {load:#x}, LENGTH = {:#x}\n}}\n",
            src.display(),
            end - load
        ),
    );
    if std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "none") {
        println!("cargo::rustc-link-search={}", out.display());
        println!("cargo::rustc-link-arg-bins=-Timage.ld");
        println!("cargo::rustc-link-arg-bins=-Tmemory.ld");
    }
}
