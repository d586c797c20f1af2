//! The `bench-scmi` binary: instructions per SCMI round trip through the
//! virtio-scmi device, measured with valgrind's callgrind.
//!
//! It is a binary of its own, apart from the `bench` binary's virtqueue
//! comparison, so that the generic `virtio-backend` code it instantiates
//! cannot change how the compiler inlines the code that comparison
//! measures (the `bench` binary's docs give the figures). It re-runs itself
//! under callgrind in worker mode, like `bench`.
//!
//! ```text
//! cargo run --release -p bench --bin bench-scmi [-- --iterations N]
//! ```
//!
//! Measures SENSOR_READING_GET and CLOCK_RATE_SET round trips through the
//! virtio-scmi device (`DeviceCore` → `VirtioScmi` → `Server` over the
//! simulated platform), laid out on the cmdq the way Linux does (see
//! `scmi.rs`), on a split ring with a two-descriptor chain and on a
//! packed ring with an indirect table and EVENT_IDX (what Linux negotiates
//! with this device). Each command and ring is counted three ways, one
//! callgrind run each (default 100 000 round trips): the whole round trip
//! with the mock driver, the kick alone (the device side), and
//! `Server::handle` alone on the same request (once per command: it does
//! not depend on the ring). The table prints Ir per round trip for each, and the
//! differences: device − server is the virtqueue and virtio-scmi glue,
//! round trip − device the driver side. Figures only; no goal, no peer.

#[path = "../../memory.rs"]
#[allow(
    dead_code,
    reason = "`guest_memory_mmap`, the view the virtio-queue peer uses, is not needed here"
)]
mod memory;
mod scmi;

use std::process::ExitCode;

use bench::callgrind::{callgrind_run, callgrind_setup};

/// Default number of measured SCMI round trips per command and part.
const DEFAULT_ITERATIONS: u64 = 100_000;

fn main() -> ExitCode {
    bench::callgrind::main("bench-scmi", DEFAULT_ITERATIONS, worker, measure_scmi)
}

/// Worker mode: `__worker scmi <command> <setup> <part> <iterations>` runs
/// checked round trips counting one part.
fn worker(args: &[String]) -> Result<(), String> {
    if let [bench, command, setup, part, iterations] = args
        && bench == "scmi"
    {
        let command = scmi::Command::from_name(command)
            .ok_or_else(|| format!("worker: unknown command {command:?}"))?;
        let setup = scmi::Setup::from_name(setup)
            .ok_or_else(|| format!("worker: unknown setup {setup:?}"))?;
        let part =
            scmi::Part::from_name(part).ok_or_else(|| format!("worker: unknown part {part:?}"))?;
        let iterations: u64 = iterations
            .parse()
            .map_err(|_| format!("worker: bad iteration count {iterations:?}"))?;
        let mem = memory::Memory::new()?;
        scmi::run(&mem, command, setup, part, iterations)?;
        println!("cross-check=ok");
        println!("counted-requests={}", iterations + scmi::CHECK_ITERATIONS);
        return Ok(());
    }
    Err(format!("worker: bad arguments {args:?}"))
}

fn measure_scmi(iterations: u64) -> Result<(), String> {
    let (version, exe, out_dir) = callgrind_setup()?;
    println!(
        "scmi: virtio-scmi device on the host (DeviceCore -> VirtioScmi -> Server<SimPlatform>); \
         cmdq of {} entries, P2A_CHANNELS, eventq with {} buffers posted; per round trip the \
         driver posts one readable buffer (header + parameters) and one writable buffer of {} \
         bytes (split ring: as a 2-descriptor chain; packed ring with INDIRECT_DESC and \
         EVENT_IDX, what Linux negotiates with this device: in an indirect table), kicks, \
         takes the used buffer and checks the status",
        scmi::CMDQ_SIZE,
        scmi::EVENTQ_SIZE,
        scmi::RX_LEN
    );
    println!(
        "{iterations} measured round trips per command and part (plus {} checked ones before \
         them, through the same functions, also counted); {version}; every reply is compared \
         with a reference server's",
        scmi::CHECK_ITERATIONS
    );
    let measure = |command: scmi::Command, setup: scmi::Setup, part: scmi::Part| {
        let name = format!("{}-{}-{}", command.name(), setup.name(), part.name());
        let out = out_dir.join(format!("scmi-{name}.out"));
        let args = [
            "scmi",
            command.name(),
            setup.name(),
            part.name(),
            &iterations.to_string(),
        ]
        .map(String::from);
        let (total, counted) = callgrind_run(&exe, &out, part.measured_fn(), &args, &name)?;
        Ok::<f64, String>(total as f64 / counted as f64)
    };
    let mut rows = Vec::new();
    for command in scmi::Command::ALL {
        // The server alone does not depend on the ring.
        let server = measure(command, scmi::Setup::Split, scmi::Part::Server)?;
        for setup in scmi::Setup::ALL {
            let rt = measure(command, setup, scmi::Part::RoundTrip)?;
            let dev = measure(command, setup, scmi::Part::Device)?;
            rows.push((command, setup, rt, dev, server));
        }
    }
    println!();
    println!("Ir per round trip:");
    println!(
        "{:<19} {:<28} {:>10} {:>8} {:>8} {:>14} {:>11}",
        "command", "ring", "round trip", "device", "server", "virtqueue+glue", "mock driver"
    );
    for (command, setup, rt, dev, srv) in &rows {
        println!(
            "{:<19} {:<28} {:>10.1} {:>8.1} {:>8.1} {:>14.1} {:>11.1}",
            command.label(),
            setup.label(),
            rt,
            dev,
            srv,
            dev - srv,
            rt - dev
        );
    }
    println!();
    println!(
        "round trip = driver post + kick + driver completion; device = the kick alone \
         (DeviceCore::queue_notify: pop, read, serve, write, add_used, eventq check, \
         notification decision); server = Server::handle alone; virtqueue+glue = device - server; \
         mock driver = round trip - device"
    );
    println!(
        "callgrind output: {} (inspect with `callgrind_annotate --inclusive=yes <file>`)",
        out_dir.join("scmi-<command>-<setup>-<part>.out").display()
    );
    Ok(())
}
