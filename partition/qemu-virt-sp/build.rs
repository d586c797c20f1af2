//! Builds the partition's configuration from `manifests/qemu-virt-sp.dts`
//! (needs `dtc`): the validated manifest becomes static Rust
//! (`OUT_DIR/manifest.rs`), the blob's size and FNV-1a hash
//! (`OUT_DIR/blob.rs`: at boot the partition checks that the manifest the
//! SPMC hands it is this one), and the image's place the linker script's
//! `MEMORY` (`OUT_DIR/memory.ld`): the package lies at `load-address`, the
//! image at `entrypoint-offset` into it (where `manifest-tool spkg` puts
//! it), and the package takes at most [`PACKAGE_BUDGET`] bytes.

use std::path::PathBuf;

/// Bytes of secure memory one partition package may take (Hafnium on QEMU
/// virt with TF-A: at most 4 MiB per package).
const PACKAGE_BUDGET: u64 = 4 << 20;

fn fail(msg: String) -> ! {
    eprintln!("{msg}");
    std::process::exit(1)
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let src = dir.join("../../manifests/qemu-virt-sp.dts");
    println!("cargo::rerun-if-changed={}", src.display());
    println!(
        "cargo::rerun-if-changed={}",
        dir.join("../../manifests/qemu-virt-scmi.dtsi").display()
    );
    println!("cargo::rerun-if-changed=build.rs");
    let dtb = manifest::compile(&src).unwrap_or_else(|e| fail(e.to_string()));
    let m = manifest::parse_dtb(&dtb, &src.display().to_string())
        .unwrap_or_else(|e| fail(e.to_string()));
    std::fs::write(out.join("manifest.rs"), manifest::codegen::to_rust(&m))
        .expect("OUT_DIR is writable");
    std::fs::write(
        out.join("blob.rs"),
        format!(
            "/// Bytes of the manifest blob.\npub const MANIFEST_LEN: usize = {};\n/// Its FNV-1a hash.\npub const MANIFEST_FNV1A: u64 = {:#x};\n/// Bytes the package may take.\npub const PACKAGE_BUDGET: u64 = {PACKAGE_BUDGET:#x};\n",
            dtb.len(),
            fnv1a(&dtb)
        ),
    )
    .expect("OUT_DIR is writable");
    let (Some(load), Some(entry)) = (m.partition.load_address, m.partition.entrypoint_offset)
    else {
        fail(format!(
            "{}: /: a partition needs load-address and entrypoint-offset",
            m.file
        ));
    };
    if entry != u64::from(manifest::spkg::IMG_OFFSET) || entry >= PACKAGE_BUDGET {
        fail(format!(
            "{}: /: entrypoint-offset must be {:#x}, where the package puts the image",
            m.file,
            manifest::spkg::IMG_OFFSET
        ));
    }
    std::fs::write(
        out.join("memory.ld"),
        format!(
            "/* Generated from {} by build.rs. */\nMEMORY\n{{\n\timage : ORIGIN = {:#x}, LENGTH = {:#x}\n}}\n",
            src.display(),
            load + entry,
            PACKAGE_BUDGET - entry
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
