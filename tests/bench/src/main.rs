//! Instruction-count benchmarks of the `virtio-backend` device core against
//! rust-vmm's `virtio-queue`, measured with valgrind's callgrind.
//!
//! # `virtqueue`: instructions per request
//!
//! ```text
//! cargo run --release -p bench -- virtqueue [--requests N]
//! ```
//!
//! Measures the device-side instructions (callgrind `Ir`) one request costs
//! on a split virtqueue of 256 entries with only `VERSION_1` negotiated: pop
//! a chain of two descriptors (16 device-readable bytes, 32 device-writable
//! bytes), read the 16 bytes, write 32 bytes, `add_used` with length 32. The
//! same work runs on the same ring, in the same host memory, through
//!
//! * our `virtio-backend` (`pop_descriptor_chain`, `reader`, `writer`,
//!   `add_used`),
//! * `virtio-queue` 0.18 walking the two descriptors and copying with
//!   vm-memory's `read_slice`/`write_slice` (the baseline for the goal), and
//! * `virtio-queue` 0.18 through its `Reader`/`Writer` (for reference).
//!
//! The binary checks that `valgrind` exists, then re-runs itself under
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect=...`
//! once per implementation. Each worker first runs every implementation on
//! the same ring and refuses to measure unless they leave identical used
//! rings, response bytes and memory images; then it runs the measured
//! requests (default 102 400, in batches of 128 chains published by the
//! driver outside the measured code). Only the `#[inline(never)]` device
//! batch function of the implementation (and its callees) is counted; the
//! figure is its total `Ir` divided by the requests that function served
//! (the measured ones plus the few hundred of the cross-check, which runs the
//! same function).
//!
//! The table reports instructions per request, the ratio to the
//! `virtio-queue` baseline, and the goal (ours at most 0.5x of it) as PASS
//! or MISS. The exit status is 0 either way; it is non-zero only when the
//! measurement itself failed. Callgrind's output files stay in
//! `target/release/callgrind/` for `callgrind_annotate --inclusive=yes`.
//!
//! # `scmi`: instructions per SCMI round trip
//!
//! ```text
//! cargo run --release -p bench -- scmi [--iterations N]
//! ```
//!
//! Measures SENSOR_READING_GET and CLOCK_RATE_SET round trips through the
//! virtio-scmi device (`DeviceCore` → `VirtioScmi` → `Server` over the
//! simulated platform), laid out on the cmdq the way Linux does (see the
//! `scmi` module), on a split ring with a two-descriptor chain and on a
//! packed ring with an indirect table and EVENT_IDX (what Linux negotiates
//! with this device). Each command and ring is counted three ways, one
//! callgrind run each (default 100 000 round trips): the whole round trip
//! with the mock driver, the kick alone (the device side), and
//! `Server::handle` alone on the same request (once per command: it does
//! not depend on the ring). The table prints Ir per round trip for each, and the
//! differences: device − server is the virtqueue and virtio-scmi glue,
//! round trip − device the driver side. Figures only; no goal, no peer.

mod scmi;
mod virtqueue;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use virtqueue::Impl;

/// First argument that puts the binary in worker mode.
const WORKER: &str = "__worker";
/// Default number of measured requests: 800 full batches.
const DEFAULT_REQUESTS: u64 = 800 * virtqueue::BATCH as u64;
/// Default number of measured SCMI round trips per command and part.
const DEFAULT_ITERATIONS: u64 = 100_000;
/// The goal for ours / virtio-queue.
const GOAL_RATIO: f64 = 0.5;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("virtqueue") => {
            parse_count(&args[1..], "--requests", DEFAULT_REQUESTS).and_then(measure_virtqueue)
        }
        Some("scmi") => {
            parse_count(&args[1..], "--iterations", DEFAULT_ITERATIONS).and_then(measure_scmi)
        }
        Some(WORKER) => worker(&args[1..]),
        _ => {
            eprintln!("usage: bench virtqueue [--requests N] | bench scmi [--iterations N]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the optional `FLAG N` after a benchmark name.
fn parse_count(args: &[String], flag: &str, default: u64) -> Result<u64, String> {
    match args {
        [] => Ok(default),
        [f, n] if f == flag => n
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{flag} wants a positive integer, got {n:?}")),
        _ => Err(format!(
            "unexpected arguments {args:?}; expected [{flag} N]"
        )),
    }
}

/// Worker mode: `__worker virtqueue <impl> <requests>` cross-checks every
/// implementation, then runs the measured requests through one;
/// `__worker scmi <command> <setup> <part> <iterations>` runs checked
/// round trips counting one part.
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
        let mem = virtqueue::Memory::new()?;
        scmi::run(&mem, command, setup, part, iterations)?;
        println!("cross-check=ok");
        println!("counted-requests={}", iterations + scmi::CHECK_ITERATIONS);
        return Ok(());
    }
    let [bench, imp, requests] = args else {
        return Err(format!("worker: bad arguments {args:?}"));
    };
    if bench != "virtqueue" {
        return Err(format!("worker: unknown benchmark {bench:?}"));
    }
    let imp =
        Impl::from_name(imp).ok_or_else(|| format!("worker: unknown implementation {imp:?}"))?;
    let requests: u64 = requests
        .parse()
        .map_err(|_| format!("worker: bad request count {requests:?}"))?;
    let mem = virtqueue::Memory::new()?;
    virtqueue::cross_check(&mem)?;
    println!("cross-check=ok");
    virtqueue::run(&mem, imp, requests, None)?;
    // The cross-check ran this implementation's measured function too, so
    // callgrind counted its requests as well.
    println!("counted-requests={}", requests + virtqueue::CHECK_REQUESTS);
    Ok(())
}

/// Extracts the total of the first event (`Ir`) from a callgrind output
/// file: the `totals:` line, or failing that the `summary:` line.
fn parse_callgrind_total(text: &str) -> Result<u64, String> {
    let events = text
        .lines()
        .find_map(|l| l.strip_prefix("events:"))
        .ok_or("no `events:` line")?;
    if events.split_whitespace().next() != Some("Ir") {
        return Err(format!("first event is not Ir: {events:?}"));
    }
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .or_else(|| text.lines().find_map(|l| l.strip_prefix("summary:")))
        .ok_or("no `totals:` or `summary:` line")?;
    let first = line.split_whitespace().next().ok_or("empty totals line")?;
    first
        .parse()
        .map_err(|_| format!("bad totals value {first:?}"))
}

fn check_valgrind() -> Result<String, String> {
    match Command::new("valgrind").arg("--version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(out) => Err(format!(
            "`valgrind --version` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!(
            "valgrind is needed to count instructions but could not be run ({e}); \
             install it (e.g. `apt-get install valgrind`) and make sure it is on PATH"
        )),
    }
}

/// Runs one worker (`worker_args` after [`WORKER`]) under callgrind;
/// returns the instructions counted inside `measured_fn` (and its callees)
/// and the number of requests the worker says went through it. `what`
/// names the run in errors.
fn callgrind_run(
    exe: &Path,
    out: &Path,
    measured_fn: &str,
    worker_args: &[String],
    what: &str,
) -> Result<(u64, u64), String> {
    let _ = std::fs::remove_file(out);
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect=*{measured_fn}*"))
        .arg(exe)
        .arg(WORKER)
        .args(worker_args)
        .output()
        .map_err(|e| format!("starting valgrind: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "{what} worker failed under callgrind ({}):\n{stdout}{stderr}",
            output.status
        ));
    }
    let counted = stdout
        .lines()
        .find_map(|l| l.strip_prefix("counted-requests="))
        .and_then(|n| n.parse::<u64>().ok());
    let counted = match counted {
        Some(n) if stdout.lines().any(|l| l == "cross-check=ok") => n,
        _ => {
            return Err(format!(
                "{what} worker did not report a checked, complete run:\n{stdout}"
            ));
        }
    };
    let text =
        std::fs::read_to_string(out).map_err(|e| format!("reading {}: {e}", out.display()))?;
    let total = parse_callgrind_total(&text).map_err(|e| format!("{}: {e}", out.display()))?;
    if total == 0 {
        return Err(format!(
            "{}: no instructions collected; the toggle pattern `*{measured_fn}*` matched no function",
            out.display()
        ));
    }
    Ok((total, counted))
}

/// Checks valgrind; returns its version, this binary and the directory
/// for callgrind's output files.
fn callgrind_setup() -> Result<(String, PathBuf, PathBuf), String> {
    let version = check_valgrind()?;
    let exe = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
    let out_dir: PathBuf = exe
        .parent()
        .ok_or("this binary has no parent directory")?
        .join("callgrind");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
    Ok((version, exe, out_dir))
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

fn measure_virtqueue(requests: u64) -> Result<(), String> {
    let (version, exe, out_dir) = callgrind_setup()?;

    println!(
        "virtqueue: split ring, {} entries, VERSION_1 only; per request: pop a 2-descriptor chain, \
         read {} B, write {} B, add_used({})",
        virtqueue::QUEUE_SIZE,
        virtqueue::REQ_LEN,
        virtqueue::RESP_LEN,
        virtqueue::RESP_LEN
    );
    println!(
        "{requests} measured requests per implementation, {} chains per driver refill; {version} \
         counts only the device-side batch function, divided by the requests it served \
         (the measured ones plus the {} of the pre-measurement cross-check)",
        virtqueue::BATCH,
        virtqueue::CHECK_REQUESTS
    );

    let mut results = Vec::new();
    for imp in Impl::ALL {
        let out = out_dir.join(format!("virtqueue-{}.out", imp.name()));
        let args = ["virtqueue", imp.name(), &requests.to_string()].map(String::from);
        let (total, counted) = callgrind_run(&exe, &out, imp.measured_fn(), &args, imp.name())?;
        results.push((imp, total as f64 / counted as f64));
    }
    let per_request = |which: Impl| {
        results
            .iter()
            .find(|r| r.0 == which)
            .map(|r| r.1)
            .expect("every implementation was measured")
    };
    let baseline = per_request(Impl::VirtioQueue);

    println!();
    println!(
        "{:<36} {:>12} {:>16}",
        "implementation", "Ir/request", "vs virtio-queue"
    );
    for (imp, ir) in &results {
        println!("{:<36} {:>12.1} {:>15.2}x", imp.label(), ir, ir / baseline);
    }
    let ratio = per_request(Impl::Ours) / baseline;
    println!();
    println!(
        "goal: ours / virtio-queue (descriptor walk) <= {GOAL_RATIO}x: {ratio:.2}x  {}",
        if ratio <= GOAL_RATIO { "PASS" } else { "MISS" }
    );
    println!(
        "callgrind output: {} (inspect with `callgrind_annotate --inclusive=yes <file>`)",
        out_dir.join("virtqueue-<impl>.out").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_callgrind_totals() {
        let text = "version: 1\ncreator: callgrind-3.19.0\npositions: line\nevents: Ir\n\
                    summary: 4321\n\nfn=(1) main\n5 10\ntotals: 1234\n";
        assert_eq!(parse_callgrind_total(text), Ok(1234));
        let summary_only = "events: Ir\nsummary: 99\n";
        assert_eq!(parse_callgrind_total(summary_only), Ok(99));
        assert!(parse_callgrind_total("events: Dr\ntotals: 5\n").is_err());
        assert!(parse_callgrind_total("events: Ir\n").is_err());
    }

    #[test]
    fn request_count_argument() {
        let p = |a: &[&str]| {
            let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            parse_count(&a, "--requests", DEFAULT_REQUESTS)
        };
        assert_eq!(p(&[]), Ok(DEFAULT_REQUESTS));
        assert_eq!(p(&["--requests", "500"]), Ok(500));
        assert!(p(&["--requests", "0"]).is_err());
        assert!(p(&["--iterations", "5"]).is_err());
    }
}
