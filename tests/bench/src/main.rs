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

mod virtqueue;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use virtqueue::Impl;

/// First argument that puts the binary in worker mode.
const WORKER: &str = "__worker";
/// Default number of measured requests: 800 full batches.
const DEFAULT_REQUESTS: u64 = 800 * virtqueue::BATCH as u64;
/// The goal for ours / virtio-queue.
const GOAL_RATIO: f64 = 0.5;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("virtqueue") => parse_requests(&args[1..]).and_then(measure_virtqueue),
        Some(WORKER) => worker(&args[1..]),
        _ => {
            eprintln!("usage: bench virtqueue [--requests N]");
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

fn parse_requests(args: &[String]) -> Result<u64, String> {
    match args {
        [] => Ok(DEFAULT_REQUESTS),
        [flag, n] if flag == "--requests" => n
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("--requests wants a positive integer, got {n:?}")),
        _ => Err(format!(
            "unexpected arguments {args:?}; usage: bench virtqueue [--requests N]"
        )),
    }
}

/// Worker mode: `__worker virtqueue <impl> <requests>`. Cross-checks every
/// implementation, then runs the measured requests through one.
fn worker(args: &[String]) -> Result<(), String> {
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

/// Runs one worker under callgrind; returns the instructions counted inside
/// the implementation's device batch function and the number of requests
/// that went through it.
fn callgrind_run(exe: &Path, out: &Path, imp: Impl, requests: u64) -> Result<(u64, u64), String> {
    let _ = std::fs::remove_file(out);
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect=*{}*", imp.measured_fn()))
        .arg(exe)
        .args([WORKER, "virtqueue", imp.name(), &requests.to_string()])
        .output()
        .map_err(|e| format!("starting valgrind: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "{} worker failed under callgrind ({}):\n{stdout}{stderr}",
            imp.name(),
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
                "{} worker did not report a checked, complete run:\n{stdout}",
                imp.name()
            ));
        }
    };
    let text =
        std::fs::read_to_string(out).map_err(|e| format!("reading {}: {e}", out.display()))?;
    let total = parse_callgrind_total(&text).map_err(|e| format!("{}: {e}", out.display()))?;
    if total == 0 {
        return Err(format!(
            "{}: no instructions collected; the toggle pattern `*{}*` matched no function",
            out.display(),
            imp.measured_fn()
        ));
    }
    Ok((total, counted))
}

fn measure_virtqueue(requests: u64) -> Result<(), String> {
    let version = check_valgrind()?;
    let exe = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
    let out_dir: PathBuf = exe
        .parent()
        .ok_or("this binary has no parent directory")?
        .join("callgrind");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("creating {}: {e}", out_dir.display()))?;

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
        let (total, counted) = callgrind_run(&exe, &out, imp, requests)?;
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
        assert_eq!(parse_requests(&[]), Ok(DEFAULT_REQUESTS));
        let args = ["--requests".to_string(), "500".to_string()];
        assert_eq!(parse_requests(&args), Ok(500));
        let zero = ["--requests".to_string(), "0".to_string()];
        assert!(parse_requests(&zero).is_err());
    }
}
