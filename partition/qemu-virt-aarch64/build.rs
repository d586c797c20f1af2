//! Builds the image's configuration from `manifests/qemu-virt-aarch64.dts`
//! (needs `dtc`): the validated manifest becomes static Rust
//! (`OUT_DIR/manifest.rs`: the SCMI tables, the virtio device, the
//! regions) and the image's place in memory becomes the linker script's
//! `MEMORY` (`OUT_DIR/memory.ld`, the `ram` region the load address lies
//! in), which `aarch64-rt`'s `image.ld` fills. A manifest that does not
//! validate fails the build with the file, node and property.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let src = dir.join("../../manifests/qemu-virt-aarch64.dts");
    println!("cargo::rerun-if-changed={}", src.display());
    println!(
        "cargo::rerun-if-changed={}",
        dir.join("../../manifests/qemu-virt-scmi.dtsi").display()
    );
    println!("cargo::rerun-if-changed=build.rs");
    let m = match manifest::load(&src) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    std::fs::write(out.join("manifest.rs"), manifest::codegen::to_rust(&m))
        .expect("OUT_DIR is writable");
    let Some(load) = m.partition.load_address else {
        eprintln!("{}: /: the image needs a load-address", m.file);
        std::process::exit(1);
    };
    // The manifest checked that the load address lies in an executable
    // memory region; the image fills it from there.
    let Some(ram) = m
        .partition
        .memory_regions
        .iter()
        .find(|r| r.span().is_some_and(|(b, e)| (b..e).contains(&load)))
    else {
        eprintln!(
            "{}: /memory-regions: no region holds the load address",
            m.file
        );
        std::process::exit(1);
    };
    let (_, end) = ram.span().expect("checked above");
    std::fs::write(
        out.join("memory.ld"),
        format!(
            "/* Generated from {} by build.rs. */\nMEMORY\n{{\n\timage : ORIGIN = {load:#x}, LENGTH = {:#x}\n}}\n",
            src.display(),
            end - load
        ),
    )
    .expect("OUT_DIR is writable");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "none" {
        println!("cargo::rustc-link-search={}", out.display());
        println!("cargo::rustc-link-arg-bins=-Timage.ld");
        println!("cargo::rustc-link-arg-bins=-Tmemory.ld");
    }
}
