//! The `bench-ffa` binary: the device's instructions per SCMI round trip
//! over the FF-A path, measured with valgrind's callgrind.
//!
//! The partition (`transport-ffa` over the virtio-scmi device) runs on a
//! thread behind the scripted SPMC double (`ffa-double`); the normal-world
//! driver (`scmi_agent::ffa_driver` with the SCMI agent) on another. A
//! SENSOR_READING_GET round trip is: the driver posts the request on the
//! cmdq and sends EVENT_AVAIL (a DIRECT_REQ2); the partition serves the
//! chain; the driver fetches EVENT_USED with EVENT_POLL and polls once
//! more to find the queue empty (two more DIRECT_REQ2). Counted: every
//! instruction in `FfaDevice::dispatch` and what it calls (the bus and
//! transport messages, the chain, the SCMI handler, the reply, the event
//! queue), not the SPMC double nor the driver. Simulated time stands still,
//! so the sensors' simulation does not catch up inside the count. Also
//! printed: FF-A calls per round trip. Figures only; no goal, no peer.
//!
//! ```text
//! cargo run --release -p bench --bin bench-ffa [-- --iterations N]
//! ```

use std::process::ExitCode;

use bench::callgrind::{WORKER, callgrind_run, callgrind_setup};
use ffa_double::{Config, Role, Spmc};
use frontend_tests::arena::ArenaHal;
use frontend_tests::ffa::{connect, now, start_partition};
use scmi_agent::agent::{AgentOptions, ScmiAgent};
use transport_ffa::Options;

/// Default number of measured round trips.
const DEFAULT_ITERATIONS: u64 = 2_000;
/// Round trips before the measured ones (warm-up, also counted).
const WARM_UP: u64 = 16;
/// SCMI sensor protocol, SENSOR_READING_GET.
const SENSOR: (u8, u8) = (0x15, 0x06);

fn main() -> ExitCode {
    bench::callgrind::main("bench-ffa", DEFAULT_ITERATIONS, worker, measure)
}

/// Worker mode: `__worker ffa <iterations>`.
fn worker(args: &[String]) -> Result<(), String> {
    let n = bench::callgrind::worker_count(args, "ffa")?;
    let spmc = Spmc::new(Config::default());
    start_partition(
        &spmc,
        Options {
            notifications: false,
            indirect: false,
        },
    );
    let (_arena, driver) = connect(&spmc, scmi_agent::ffa_driver::Events::Poll);
    let opts = AgentOptions {
        patience: std::time::Duration::from_secs(5),
        now,
        // Time stands still: what is counted is the round trip, not the
        // simulated sensors catching up with a clock moved by waiting.
        idle: std::hint::spin_loop,
        ..AgentOptions::default()
    };
    let mut agent: ScmiAgent<_, ArenaHal, 16, 16> = ScmiAgent::new(driver, opts);
    let before = direct_requests(&spmc);
    for i in 0..n + WARM_UP {
        // Sensor 0, synchronous.
        let token = agent.post(SENSOR.0, SENSOR.1, &[0, 0, 0, 0, 0, 0, 0, 0], 16);
        agent.kick();
        let r = agent.reply(token);
        if r.status != 0 {
            return Err(format!("round trip {i}: status {}", r.status));
        }
    }
    let calls = direct_requests(&spmc) - before;
    spmc.shutdown();
    let v = spmc.violations();
    if !v.is_empty() {
        return Err(format!("the SPMC double saw broken rules: {v:?}"));
    }
    println!("cross-check=ok");
    println!("counted-requests={}", n + WARM_UP);
    println!("direct-requests={calls}");
    Ok(())
}

fn direct_requests(spmc: &Spmc) -> u64 {
    spmc.log()
        .iter()
        .filter(|c| c.who == Role::Nwd && c.fid() == 0xc400_008d)
        .count() as u64
}

fn measure(iterations: u64) -> Result<(), String> {
    let (version, exe, out_dir) = callgrind_setup()?;
    let out = out_dir.join("ffa-sensor.out");
    let args = ["ffa".to_string(), iterations.to_string()];
    let (total, counted) = callgrind_run(&exe, &out, "FfaDevice*dispatch", &args, "ffa")?;
    // The call count comes from a plain run (no callgrind needed).
    let plain = std::process::Command::new(&exe)
        .arg(WORKER)
        .args(&args)
        .output()
        .map_err(|e| format!("running the worker: {e}"))?;
    let stdout = String::from_utf8_lossy(&plain.stdout);
    let calls: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("direct-requests="))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no call count from the worker:\n{stdout}"))?;
    println!(
        "  SENSOR_READING_GET, split ring, driver polling (EVENT_POLL): {:.1} Ir per round trip \
         in the partition (FfaDevice::dispatch and callees), {:.2} FF-A direct requests per \
         round trip; {counted} round trips, {version}",
        total as f64 / counted as f64,
        calls / counted as f64
    );
    println!("  callgrind output: {}", out.display());
    Ok(())
}
