//! The `bench-xen` binary: the device's instructions and hypercalls per
//! SCMI round trip over the Xen bus, measured with valgrind's callgrind.
//!
//! The device (`transport-xen`'s `XenDevice` over the virtio-scmi device)
//! takes its turns inline on the driver's thread (`frontend_tests::xen`):
//! the driver's event sets the device's pending bit and the device takes a
//! turn. All of the driver's memory is reached through grants (the fake
//! mapper hands out the arena's pages, as Xen's mapping would); the
//! hypercalls are fakes that count themselves. A SENSOR_READING_GET round
//! trip is: the driver posts the request on the cmdq and sends EVENT_AVAIL
//! on the channel, rings; the device serves the chain and answers with
//! EVENT_USED, rings back. Counted: every instruction in
//! `XenDevice::turn` and what it calls (the channel, the grant cache, the
//! chain, the SCMI handler, the reply), not the driver. Simulated time
//! stands still. Figures only; no goal, no peer.
//!
//! ```text
//! cargo run --release -p bench --bin bench-xen [-- --iterations N]
//! ```

use std::process::ExitCode;

use bench::callgrind::{WORKER, callgrind_run, callgrind_setup};
use frontend_tests::arena::ARENA_SIZE;
use frontend_tests::xen::{agent, connect, install, turn, with_bus};

/// Default number of measured round trips.
const DEFAULT_ITERATIONS: u64 = 2_000;
/// Round trips before the measured ones (warm-up, also counted).
const WARM_UP: u64 = 16;
/// SCMI sensor protocol, SENSOR_READING_GET.
const SENSOR: (u8, u8) = (0x15, 0x06);

fn main() -> ExitCode {
    bench::callgrind::main("bench-xen", DEFAULT_ITERATIONS, worker, measure)
}

/// Worker mode: `__worker xen <iterations>`.
fn worker(args: &[String]) -> Result<(), String> {
    let n = bench::callgrind::worker_count(args, "xen")?;
    let s = install();
    s.granted.set((ARENA_SIZE / 4096) as u32);
    s.calls.pending.set(true);
    turn();
    let mut agent = agent(connect(&s));
    let (sends, polls) = (s.calls.sends.get(), s.calls.polls.get());
    let stats = with_bus(|b| b.memory().stats());
    for i in 0..n + WARM_UP {
        // Sensor 0, synchronous.
        let token = agent.post(SENSOR.0, SENSOR.1, &[0, 0, 0, 0, 0, 0, 0, 0], 16);
        agent.kick();
        let r = agent.reply(token);
        if r.status != 0 {
            return Err(format!("round trip {i}: status {}", r.status));
        }
    }
    let after = with_bus(|b| b.memory().stats());
    let rt = (n + WARM_UP) as f64;
    println!("cross-check=ok");
    println!("counted-requests={}", n + WARM_UP);
    println!(
        "per-round-trip=sends {:.2} polls {:.2} maps {:.2} unmaps {:.2} accesses {:.1}",
        (s.calls.sends.get() - sends) as f64 / rt,
        (s.calls.polls.get() - polls) as f64 / rt,
        (after.maps - stats.maps) as f64 / rt,
        (after.unmaps - stats.unmaps) as f64 / rt,
        (after.accesses - stats.accesses) as f64 / rt,
    );
    Ok(())
}

fn measure(iterations: u64) -> Result<(), String> {
    let (version, exe, out_dir) = callgrind_setup()?;
    let out = out_dir.join("xen-sensor.out");
    let args = ["xen".to_string(), iterations.to_string()];
    let (total, counted) = callgrind_run(&exe, &out, "XenDevice*turn", &args, "xen")?;
    // The hypercall counts come from a plain run (no callgrind needed).
    let plain = std::process::Command::new(&exe)
        .arg(WORKER)
        .args(&args)
        .output()
        .map_err(|e| format!("running the worker: {e}"))?;
    let stdout = String::from_utf8_lossy(&plain.stdout);
    let per = stdout
        .lines()
        .find_map(|l| l.strip_prefix("per-round-trip="))
        .ok_or_else(|| format!("no hypercall counts from the worker:\n{stdout}"))?;
    println!(
        "  SENSOR_READING_GET, split ring, the driver ringing: {:.1} Ir per round trip in the \
         device (XenDevice::turn and callees); per round trip: {per} (the driver rings once); \
         {counted} round trips, {version}",
        total as f64 / counted as f64,
    );
    println!("  callgrind output: {}", out.display());
    Ok(())
}
