//! Builds the image's configuration from `manifests/mps3-an536.dts` (needs
//! `dtc`): the validated manifest becomes static Rust
//! (`OUT_DIR/manifest.rs`) and `aarch32-rt`'s `memory.x`: the executable
//! memory region the load address lies in holds the vectors, code and
//! read-only data; the manifest's `ram` region holds data, bss and the
//! stacks of both cores. A manifest that does not validate fails the
//! build with the file, node and property.

use std::path::PathBuf;

fn fail(msg: String) -> ! {
    eprintln!("{msg}");
    std::process::exit(1)
}

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let src = dir.join("../../manifests/mps3-an536.dts");
    println!("cargo::rerun-if-changed={}", src.display());
    println!("cargo::rerun-if-changed=build.rs");
    let m = manifest::load(&src).unwrap_or_else(|e| fail(e.to_string()));
    std::fs::write(out.join("manifest.rs"), manifest::codegen::to_rust(&m))
        .expect("OUT_DIR is writable");
    let p = &m.partition;
    let Some(load) = p.load_address else {
        fail(format!("{}: /: the image needs a load-address", m.file))
    };
    let span = |name: &str| {
        p.memory_regions
            .iter()
            .find(|r| r.node == name || r.node.starts_with(&format!("{name}@")))
            .and_then(|r| r.span())
            .unwrap_or_else(|| {
                fail(format!(
                    "{}: /memory-regions: no \"{name}\" region with an address",
                    m.file
                ))
            })
    };
    let code = p
        .memory_regions
        .iter()
        .filter_map(|r| r.span())
        .find(|(b, e)| (*b..*e).contains(&load))
        .unwrap_or_else(|| {
            fail(format!(
                "{}: /memory-regions: no region holds the load address",
                m.file
            ))
        });
    let ram = span("ram");
    // Core 1 sets its HYP stack pointer before it parks, so its copy of the
    // stacks is reserved even in the product image, where it never leaves
    // the park (the test pair runs the front-end there).
    let frontend = std::env::var_os("CARGO_FEATURE_FRONTEND").is_some();
    std::fs::write(
        out.join("memory.x"),
        format!(
            "/* Generated from {} by build.rs. */
MEMORY {{
    CODE_REGION : ORIGIN = {load:#x}, LENGTH = {:#x}
    RAM_REGION : ORIGIN = {:#x}, LENGTH = {:#x}
}}
REGION_ALIAS(\"VECTORS\", CODE_REGION);
REGION_ALIAS(\"CODE\", CODE_REGION);
REGION_ALIAS(\"DATA\", RAM_REGION);
REGION_ALIAS(\"STACKS\", RAM_REGION);
/* {cores}: aarch32-rt gives core N the N-th copy of every stack. */
PROVIDE(_num_cores = {num_cores});
PROVIDE(_sys_stack_size = 8K);
PROVIDE(_und_stack_size = 1K);
PROVIDE(_svc_stack_size = 1K);
PROVIDE(_abt_stack_size = 1K);
PROVIDE(_hyp_stack_size = 1K);
PROVIDE(_irq_stack_size = 64);
PROVIDE(_fiq_stack_size = 64);
PROVIDE(_stack_alignment = 16);
/* Core 1 waits in platform-mps3-an536's park routine until released. */
EXTERN(_asm_secondary_core_park);
",
            src.display(),
            code.1 - load,
            ram.0,
            ram.1 - ram.0,
            cores = if frontend {
                "Both R52s run (the test pair)"
            } else {
                "Core 1 parks in the product image (after setting its HYP stack)"
            },
            num_cores = 2,
        ),
    )
    .expect("OUT_DIR is writable");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "none" {
        println!("cargo::rustc-link-search={}", out.display());
        println!("cargo::rustc-link-arg-bins=-Tlink.x");
    }
}
