//! `manifest-tool`: checks platform manifests and writes what is derived
//! from them.
//!
//! ```text
//! manifest-tool check FILE      validate; print a summary
//! manifest-tool linux-dt FILE   the guest's firmware/scmi node (DTS fragment)
//! manifest-tool rust FILE       static Rust tables (what build scripts generate)
//! manifest-tool dts FILE        the manifest written back in canonical form
//! manifest-tool builtin         the built-in simulated SoC as a manifest
//! ```
//!
//! Exit status 0 on success, 1 when the manifest is refused (the message
//! names the file and node), 2 on a usage error.

use std::process::ExitCode;

use manifest::model::{Manifest, Partition, Scmi, Transport, VirtioDevice};
use platform_sim::DEFAULT_CONFIG;
use platform_sim::Tables;

const USAGE: &str = "usage: manifest-tool {check|linux-dt|rust|dts} FILE | manifest-tool builtin";

/// The built-in simulated SoC with the host (vhost-user) platform's
/// partition header and one vhost-user device per agent.
fn builtin() -> Manifest {
    let scmi = Scmi::from_server(&DEFAULT_CONFIG, &Tables::DEFAULT);
    let virtio = (1..=scmi.agents.len() as u32)
        .map(|agent| VirtioDevice {
            index: agent - 1,
            device_id: 32,
            transport: Transport::VhostUser,
            agent,
            queue_sizes: vec![128, 128],
            p2a: true,
            shared_window: None,
            mmio_base: None,
            doorbell: None,
            interrupts: Vec::new(),
            socket: None,
        })
        .collect();
    Manifest {
        file: String::from("builtin"),
        partition: Partition {
            binding: (1, 0),
            ffa_version: 0x0001_0002,
            // The virtio-msg FF-A bus device UUID.
            uuids: vec![[0xc66028b5, 0x24984aa1, 0x9de777da, 0x6122abf0]],
            messaging_method: vec![0x201],
            description: Some(String::from("virtio-scmi host daemon (vhost-user)")),
            id: None,
            execution_ctx_count: 1,
            exception_level: 2,
            execution_state: 0,
            load_address: None,
            entrypoint_offset: None,
            xlat_granule: None,
            boot_order: None,
            ns_interrupts_action: None,
            gp_register_num: None,
            notification_support: false,
            boot_info: Vec::new(),
            memory_regions: Vec::new(),
            device_regions: Vec::new(),
        },
        virtio,
        scmi,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, file) = match args.as_slice() {
        [c] if c == "builtin" => {
            print!("{}", manifest::dts::to_dts(&builtin()));
            return ExitCode::SUCCESS;
        }
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
