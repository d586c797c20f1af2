//! The `bench` binary: instruction counts of the `virtio-backend` device
//! core against rust-vmm's `virtio-queue`, measured with valgrind's
//! callgrind. The SCMI round-trip benchmark is the separate binary
//! `bench-scmi` (`src/bin/bench-scmi/`).
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
//! # Why two binaries
//!
//! The release profile compiles each crate as one codegen unit, and the
//! measured code is mostly generic `virtio-backend` code (`Queue`, the
//! chain `Reader`/`Writer`, `FixedWindow`) instantiated in the binary that
//! calls it. LLVM's inlining decisions for those instantiations depend on
//! every caller in the unit, so unrelated code sharing them changes what
//! is measured. When the SCMI benchmark lived in this binary it
//! instantiated the same functions (e.g. `Reader`/`Writer` over
//! `FixedWindow`), and ours measured 661.8 Ir/request against
//! virtio-queue's 1110.2 (0.60x); the same tree with the SCMI worker
//! stubbed out measured 550.8 (0.496x). So each workload is its own
//! binary: this one holds only the virtqueue comparison (ours and the
//! virtio-queue peer, measured under the same conditions), `bench-scmi`
//! only the SCMI round trips. The shared helpers in the `bench` library
//! (valgrind check, callgrind runner and parser, argument parsing) are
//! non-generic and touch none of the measured crates; the guest memory
//! arena (`src/memory.rs`), which does instantiate `FixedWindow` code, is
//! compiled into each binary as its own module.
//!
//! `bench scmi`, the old command, stops with a message naming the new one.

#[path = "memory.rs"]
mod memory;
mod virtqueue;

use std::process::ExitCode;

use bench::args::parse_count;
use bench::callgrind::{WORKER, callgrind_run, callgrind_setup};
use virtqueue::Impl;

/// Default number of measured requests: 800 full batches.
const DEFAULT_REQUESTS: u64 = 800 * virtqueue::BATCH as u64;
/// The goal for ours / virtio-queue.
const GOAL_RATIO: f64 = 0.5;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("virtqueue") => {
            parse_count(&args[1..], "--requests", DEFAULT_REQUESTS).and_then(measure_virtqueue)
        }
        Some("scmi") => {
            eprintln!(
                "error: the scmi benchmark is its own binary now; run\n    \
                 cargo run --release -p bench --bin bench-scmi [-- --iterations N]"
            );
            return ExitCode::from(2);
        }
        Some(WORKER) => worker(&args[1..]),
        _ => {
            eprintln!(
                "usage: bench virtqueue [--requests N]\n\
                 (SCMI round trips: cargo run --release -p bench --bin bench-scmi)"
            );
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

/// Worker mode: `__worker virtqueue <impl> <requests>` cross-checks every
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
    let mem = memory::Memory::new()?;
    virtqueue::cross_check(&mem)?;
    println!("cross-check=ok");
    virtqueue::run(&mem, imp, requests, None)?;
    // The cross-check ran this implementation's measured function too, so
    // callgrind counted its requests as well.
    println!("counted-requests={}", requests + virtqueue::CHECK_REQUESTS);
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
