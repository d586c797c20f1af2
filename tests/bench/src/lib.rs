//! Shared, non-generic helpers of the callgrind benchmarks: valgrind
//! check, running a worker under callgrind and reading its total, and
//! command-line parsing.
//!
//! Each benchmark is its own binary (`bench` for the virtqueue comparison,
//! `bench-scmi` for SCMI round trips; see the `bench` binary's docs for why).
//! This library must not instantiate any generic code of `virtio-backend`
//! (nor of `vm-memory` or `virtio-queue`): with one codegen unit per crate,
//! what else instantiates the measured generics decides how LLVM inlines
//! them, so each binary has to contain only the code it measures. Nothing
//! here depends on those crates.

#![forbid(unsafe_code)]

/// Command-line arguments.
pub mod args {
    /// Parses the optional `FLAG N` of a benchmark's command line; `default`
    /// when `args` is empty. `N` must be a positive integer.
    pub fn parse_count(args: &[String], flag: &str, default: u64) -> Result<u64, String> {
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

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn request_count_argument() {
            let p = |a: &[&str]| {
                let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
                parse_count(&a, "--requests", 102_400)
            };
            assert_eq!(p(&[]), Ok(102_400));
            assert_eq!(p(&["--requests", "500"]), Ok(500));
            assert!(p(&["--requests", "0"]).is_err());
            assert!(p(&["--requests", "x"]).is_err());
            assert!(p(&["--requests"]).is_err());
            assert!(p(&["--iterations", "5"]).is_err());
        }
    }
}

/// Running workers under callgrind.
pub mod callgrind {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// First argument that puts a benchmark binary in worker mode: it then
    /// runs the measured code instead of measuring it.
    pub const WORKER: &str = "__worker";

    /// The iteration count of a worker invoked as `__worker BENCH N`
    /// (`args` after [`WORKER`]).
    pub fn worker_count(args: &[String], bench: &str) -> Result<u64, String> {
        let [b, n] = args else {
            return Err(format!("worker: bad arguments {args:?}"));
        };
        if b != bench {
            return Err(format!("worker: unknown bench {b:?}"));
        }
        n.parse().map_err(|_| format!("bad count {n:?}"))
    }

    /// The `main` of a callgrind benchmark binary `name`: as a worker
    /// (first argument [`WORKER`]) runs `worker` on the rest; otherwise
    /// `measure` with `--iterations N` (default `iterations`). Errors and
    /// the usage go to stderr with a failing status.
    pub fn main(
        name: &str,
        iterations: u64,
        worker: fn(&[String]) -> Result<(), String>,
        measure: fn(u64) -> Result<(), String>,
    ) -> std::process::ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let result = match args.first().map(String::as_str) {
            Some(WORKER) => worker(&args[1..]),
            _ => crate::args::parse_count(&args, "--iterations", iterations).and_then(measure),
        };
        match result {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                eprintln!("usage: {name} [--iterations N]");
                std::process::ExitCode::FAILURE
            }
        }
    }

    /// Extracts the total of the first event (`Ir`) from a callgrind output
    /// file: the `totals:` line, or failing that the `summary:` line.
    pub fn parse_callgrind_total(text: &str) -> Result<u64, String> {
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

    /// Checks that `valgrind` can be run; returns its version line.
    pub fn check_valgrind() -> Result<String, String> {
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
    pub fn callgrind_run(
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

    /// Checks valgrind; returns its version, the running binary (which the
    /// workers re-run) and the directory for callgrind's output files
    /// (`callgrind/` next to the binary).
    pub fn callgrind_setup() -> Result<(String, PathBuf, PathBuf), String> {
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
    }
}
