//! `manifest-tool`: checks platform manifests and writes what is derived
//! from them.
//!
//! ```text
//! manifest-tool check FILE      validate; print a summary
//! manifest-tool linux-dt FILE   the guest's firmware/scmi node (DTS fragment)
//! manifest-tool rust FILE       static Rust tables (what build scripts generate)
//! manifest-tool dts FILE        the manifest written back in canonical form
//! ```
//!
//! Exit status 0 on success, 1 when the manifest is refused (the message
//! names the file and node), 2 on a usage error.

use std::process::ExitCode;

const USAGE: &str = "usage: manifest-tool {check|linux-dt|rust|dts} FILE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
