//! `manifest-tool`: checks platform manifests and writes what is derived
//! from them.
//!
//! ```text
//! manifest-tool check FILE      validate; print a summary
//! manifest-tool linux-dt FILE   the guest's firmware/scmi node (DTS fragment)
//! manifest-tool rust FILE       static Rust tables (what build scripts generate)
//! manifest-tool dts FILE        the manifest written back in canonical form
//! manifest-tool spkg FILE IMAGE OUT
//!                               the secure-partition package Hafnium loads:
//!                               the SPKG header, FILE's blob, the raw IMAGE
//! manifest-tool hafnium FILE OUTDIR
//!                               TF-A's TB_FW_CONFIG and Hafnium's core
//!                               manifest for the partition (DTS) and its
//!                               UUID, in OUTDIR
//! manifest-tool spkg-check PKG [FILE IMAGE]
//!                               read a package back: its header, and its
//!                               manifest validated; with FILE and IMAGE,
//!                               also that it holds exactly FILE's blob and
//!                               IMAGE, the image where FILE's
//!                               entrypoint-offset enters it
//! ```
//!
//! Exit status 0 on success, 1 when the manifest is refused (the message
//! names the file and node), 2 on a usage error.

use std::process::ExitCode;

const USAGE: &str = "usage: manifest-tool {check|linux-dt|rust|dts} FILE\n       \
                     manifest-tool spkg FILE IMAGE OUT\n       manifest-tool spkg-check PKG [FILE IMAGE]";

/// `spkg FILE IMAGE OUT`: validates the manifest, then packs its blob and
/// the image.
fn spkg(file: &str, image: &str, out: &str) -> ExitCode {
    if let Err(e) = manifest::load(file) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    let dtb = if file.ends_with(".dtb") {
        std::fs::read(file).map_err(|e| format!("{file}: {e}"))
    } else {
        manifest::compile(std::path::Path::new(file)).map_err(|e| e.to_string())
    };
    let result = dtb.and_then(|dtb| {
        let img = std::fs::read(image).map_err(|e| format!("{image}: {e}"))?;
        let pkg = manifest::spkg::build(&dtb, &img).map_err(|e| format!("{image}: {e}"))?;
        std::fs::write(out, &pkg).map_err(|e| format!("{out}: {e}"))?;
        Ok(pkg.len())
    });
    match result {
        Ok(n) => {
            println!("{out}: {n} bytes");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `spkg-check PKG [FILE IMAGE]`: the header, and the embedded manifest
/// validated; with FILE and IMAGE, compared with them.
fn spkg_check(pkg: &str, against: Option<(&str, &str)>) -> ExitCode {
    let bytes = match std::fs::read(pkg) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{pkg}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let p = match manifest::spkg::parse(&bytes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{pkg}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let h = p.header;
    println!(
        "{pkg}: SPKG v{}, manifest {:#x}+{:#x}, image {:#x}+{:#x}",
        h.version, h.pm_offset, h.pm_size, h.img_offset, h.img_size
    );
    match manifest::parse_dtb(p.manifest, &format!("{pkg} (manifest)")) {
        Ok(m) => {
            if let Some((file, image)) = against {
                let dtb = if file.ends_with(".dtb") {
                    std::fs::read(file).map_err(|e| format!("{file}: {e}"))
                } else {
                    manifest::compile(std::path::Path::new(file)).map_err(|e| e.to_string())
                };
                let img = std::fs::read(image).map_err(|e| format!("{image}: {e}"));
                let (dtb, img) = match (dtb, img) {
                    (Ok(d), Ok(i)) => (d, i),
                    (Err(e), _) | (_, Err(e)) => {
                        eprintln!("{e}");
                        return ExitCode::FAILURE;
                    }
                };
                let diffs =
                    manifest::spkg::differences(&p, &dtb, &img, m.partition.entrypoint_offset);
                if !diffs.is_empty() {
                    for d in diffs {
                        eprintln!("{pkg}: {d}");
                    }
                    return ExitCode::FAILURE;
                }
                println!("{pkg}: holds {file} and {image}, entered at the image");
            }
            println!(
                "manifest: ok: {} ({} virtio devices)",
                m.partition
                    .description
                    .as_deref()
                    .unwrap_or("(no description)"),
                m.virtio.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `hafnium FILE OUTDIR`: `tb_fw_config.dts` and `spmc_manifest.dts`.
fn hafnium(file: &str, dir: &str) -> ExitCode {
    let m = match manifest::load(file) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // The package's budget on QEMU virt: 4 MiB, all of it the partition's.
    let mem = 4 << 20;
    let files = manifest::hafnium::tb_fw_config(&m, "scmi_sp")
        .and_then(|tb| Ok((tb, manifest::hafnium::spmc_manifest(&m, "scmi-sp", mem, 2)?)));
    let result = files.and_then(|(tb, spmc)| {
        let dir = std::path::Path::new(dir);
        std::fs::write(dir.join("tb_fw_config.dts"), tb).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("spmc_manifest.dts"), spmc).map_err(|e| e.to_string())?;
        let uuid = manifest::hafnium::uuid_string(&m).unwrap_or_default();
        std::fs::write(dir.join("uuid"), uuid + "\n").map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{file}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [c, f, d] if c == "hafnium" => return hafnium(f, d),
        [c, f, i, o] if c == "spkg" => return spkg(f, i, o),
        [c, p] if c == "spkg-check" => return spkg_check(p, None),
        [c, p, f, i] if c == "spkg-check" => return spkg_check(p, Some((f, i))),
        _ => {}
    }
    let (cmd, file) = match args.as_slice() {
        [c, f] => (c.as_str(), f.as_str()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !["check", "linux-dt", "rust", "dts"].contains(&cmd) {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let m = match manifest::load(file) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match cmd {
        "check" => {
            let s = &m.scmi;
            println!(
                "{file}: ok: {} agents, {} devices, {} virtio devices, {} clocks, {} sensors, \
                 {} power, {} perf, {} reset, {} voltage domains",
                s.agents.len(),
                s.devices.len(),
                m.virtio.len(),
                s.clocks.len(),
                s.sensors.len(),
                s.power.len(),
                s.perf.len(),
                s.resets.len(),
                s.voltages.len()
            );
        }
        "linux-dt" => print!("{}", manifest::linux_dt_fragment(&m)),
        "rust" => print!("{}", manifest::codegen::to_rust(&m)),
        _ => print!("{}", manifest::dts::to_dts(&m)),
    }
    ExitCode::SUCCESS
}
