//! The `wake-floor` binary: what the kernel charges a process for being
//! woken by one eventfd write and answering with one eventfd write, with no
//! work in between, measured on this machine.
//!
//! ```text
//! cargo run --release -p bench --bin wake-floor [-- ROUNDS] [--pressure-kib KIB]
//! ```
//!
//! ROUNDS defaults to 20000, KIB to 0.
//!
//! # Why
//!
//! The Linux SCMI driver has one request in flight at a time, so a
//! vhost-user back-end serving it sleeps between requests: per request it is
//! woken by the kick eventfd (QEMU's write), returns from `epoll_wait`, and
//! notifies the guest by writing the call eventfd. That sleep, wakeup and
//! notification cost kernel CPU time that no work saved in the back-end's
//! own code can remove. This program measures that cost between two plain
//! processes, so the back-end figures of `qemu/linux/guest-bench.sh` can be
//! read against it: the `one-cpu` figure below is a lower bound for the CPU
//! time per request of any back-end that sleeps between requests.
//!
//! # What
//!
//! Two eventfds, kick and call. A forked responder process serves, one
//! shape per fork:
//!
//! * `epoll-et+write`: kick registered `EPOLLIN | EPOLLET` in an epoll set
//!   (an edge-triggered eventfd reports every write, so its counter need not
//!   be read); loop { `epoll_wait(-1)`; write 1 to call }. The two system
//!   calls our daemon `scmi-vhost-user` makes per request.
//! * `epoll+read+write`: kick registered level-triggered; loop
//!   { `epoll_wait(-1)`; read kick; write 1 to call }. The three system calls
//!   of rust-vmm's vhost-user-backend loop (vhost-device-scmi).
//!
//! Each shape runs in two placements, a fresh fork each:
//!
//! * `one-cpu`: both pinned to the CPU the requester was on: no
//!   inter-processor wakeups, the smallest cost the kernel's path allows
//!   (the floor).
//! * `any-cpu`: neither process pinned; the scheduler places them as it
//!   places QEMU and a back-end. With idle CPUs around, the two usually run
//!   on different CPUs and every wakeup is an inter-processor interrupt to
//!   an idle CPU, which is expensive in a virtual machine. Here both sides
//!   sleep, so the other CPU is idle at every wakeup; a back-end whose peer
//!   keeps its CPU busy can cost less than this figure, so it is context,
//!   not a bound.
//!
//! The requester (this process) runs 1000 warm-up rounds, then ROUNDS rounds
//! of { write 1 to kick; blocking read of call }. The responder's CPU time is
//! the first field of `/proc/PID/schedstat` (run time in ns, as
//! `guest-bench.sh` samples the daemons), read before and after the measured
//! rounds once the responder is asleep in `epoll_wait` (state `S` in
//! `/proc/PID/stat`, so the kernel has accounted its last run). One line per
//! shape and placement:
//!
//! ```text
//! wake-floor: epoll-et+write     one-cpu  20000 rounds  responder CPU 3170 ns/round  round trip 6338 ns
//! ```
//!
//! With `--pressure-kib KIB`, the requester writes one byte in every 64-byte
//! line of a KIB KiB buffer before each kick: other work between requests,
//! as a guest and its emulator do between two SCMI calls, so the responder
//! meets caches and TLBs that others have used (this host's L2 is 512 KiB
//! per core; 1024 KiB is enough to leave it cold). The line then says
//! `pressure KIB KiB` after the rounds; the touching is the requester's
//! time, not the responder's, so it is not in the responder's figure, but it
//! is in the round trip.
//!
//! The round trip is the requester's wall-clock time per round (both sides'
//! system calls, wakeups and context switches). Figures only; nothing passes
//! or fails. Exit status 2 on a bad argument, 1
//! when a system call fails (the error is printed).

use std::fmt::Display;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Rounds before the measured ones: page faults, caches, CPU frequency.
const WARMUP: u64 = 1000;
/// Measured rounds when no argument is given.
const DEFAULT_ROUNDS: u64 = 20_000;
/// The value a failing responder writes to call instead of 1, so the
/// requester stops waiting and reports the failure.
const RESPONDER_FAILED: u64 = 1 << 40;
/// How long to wait for the responder to be asleep in `epoll_wait`.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// One responder loop.
#[derive(Clone, Copy)]
enum Shape {
    /// Edge-triggered epoll, no read of kick, write call.
    EpollEtWrite,
    /// Level-triggered epoll, read kick, write call.
    EpollReadWrite,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::EpollEtWrite => "epoll-et+write",
            Shape::EpollReadWrite => "epoll+read+write",
        }
    }
}

/// Where the two processes may run.
#[derive(Clone, Copy)]
enum Placement {
    /// Wherever the scheduler puts them, within the affinity this process
    /// inherited.
    AnyCpu,
    /// Both on the CPU the requester is on.
    OneCpu,
}

impl Placement {
    fn name(self) -> &'static str {
        match self {
            Placement::AnyCpu => "any-cpu",
            Placement::OneCpu => "one-cpu",
        }
    }
}

/// One measurement's figures.
struct Figures {
    /// Responder run time over the measured rounds, ns.
    responder_ns: u64,
    /// Requester wall-clock time over the measured rounds, ns.
    wall_ns: u128,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Args {
        rounds,
        pressure_kib,
    } = match parse_args(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wake-floor: {e}");
            eprintln!(
                "usage: wake-floor [ROUNDS] [--pressure-kib KIB]   (ROUNDS a positive integer, default {DEFAULT_ROUNDS}; KIB default 0)"
            );
            return ExitCode::from(2);
        }
    };
    let pressure = if pressure_kib > 0 {
        format!("  pressure {pressure_kib} KiB")
    } else {
        String::new()
    };
    let inherited = match affinity() {
        Ok(set) => set,
        Err(e) => {
            eprintln!("wake-floor: {e}");
            return ExitCode::from(1);
        }
    };
    for shape in [Shape::EpollEtWrite, Shape::EpollReadWrite] {
        for placement in [Placement::OneCpu, Placement::AnyCpu] {
            let r = place(placement).and_then(|()| measure(shape, rounds, pressure_kib));
            // The next measurement starts from the inherited affinity.
            let r = r.and_then(|f| set_affinity(&inherited).map(|()| f));
            match r {
                Ok(f) => println!(
                    "wake-floor: {:<18} {:<8} {rounds} rounds{pressure}  responder CPU {} ns/round  round trip {} ns",
                    shape.name(),
                    placement.name(),
                    f.responder_ns / rounds,
                    f.wall_ns / u128::from(rounds),
                ),
                Err(e) => {
                    eprintln!("wake-floor: {} {}: {e}", shape.name(), placement.name());
                    return ExitCode::from(1);
                }
            }
        }
    }
    ExitCode::SUCCESS
}

/// The command line.
#[derive(Debug, PartialEq)]
struct Args {
    rounds: u64,
    pressure_kib: usize,
}

/// Largest `--pressure-kib`: 1 GiB.
const MAX_PRESSURE_KIB: usize = 1 << 20;

/// `[ROUNDS] [--pressure-kib KIB]`, ROUNDS a positive integer, KIB at most
/// [`MAX_PRESSURE_KIB`].
fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        rounds: DEFAULT_ROUNDS,
        pressure_kib: 0,
    };
    let mut rounds_seen = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--pressure-kib" {
            let v = it
                .next()
                .ok_or_else(|| "--pressure-kib needs a value".to_string())?;
            a.pressure_kib = v
                .parse::<usize>()
                .ok()
                .filter(|&k| k <= MAX_PRESSURE_KIB)
                .ok_or_else(|| {
                    format!("--pressure-kib must be an integer 0..={MAX_PRESSURE_KIB}, got {v:?}")
                })?;
        } else if !rounds_seen {
            rounds_seen = true;
            a.rounds = arg
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("ROUNDS must be a positive integer, got {arg:?}"))?;
        } else {
            return Err(format!("unexpected argument {arg:?}"));
        }
    }
    Ok(a)
}

/// This process's CPU affinity (inherited by the forked responder).
fn affinity() -> Result<libc::cpu_set_t, String> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live, writable cpu_set_t of the size passed.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } < 0 {
        return Err(os_err("sched_getaffinity"));
    }
    Ok(set)
}

/// Sets this process's CPU affinity to `set`.
fn set_affinity(set: &libc::cpu_set_t) -> Result<(), String> {
    // SAFETY: `set` is a live cpu_set_t of the size passed, only read.
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), set) } < 0 {
        return Err(os_err("sched_setaffinity"));
    }
    Ok(())
}

/// Applies `placement` to this process (and so to the responder it forks
/// next).
fn place(placement: Placement) -> Result<(), String> {
    match placement {
        Placement::AnyCpu => Ok(()),
        Placement::OneCpu => {
            // SAFETY: sched_getcpu takes no arguments; negative is an error.
            let cpu = unsafe { libc::sched_getcpu() };
            let cpu = usize::try_from(cpu).map_err(|_| os_err("sched_getcpu"))?;
            // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            // SAFETY: CPU_SET checks `cpu` against the set's size and writes
            // only inside `set`.
            unsafe { libc::CPU_SET(cpu, &mut set) };
            set_affinity(&set)
        }
    }
}

/// An error naming what failed, with the OS error.
fn os_err(what: impl Display) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

/// A new blocking eventfd.
fn eventfd() -> Result<OwnedFd, String> {
    // SAFETY: eventfd takes no pointers; a negative result is an error.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(os_err("eventfd"));
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Writes `value` to the eventfd `fd`.
fn write_u64(fd: RawFd, value: u64) -> io::Result<()> {
    let buf = value.to_ne_bytes();
    // SAFETY: `buf` is 8 live, readable bytes for the duration of the call.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n == 8 {
        Ok(())
    } else if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Err(io::Error::other(format!("short eventfd write ({n} bytes)")))
    }
}

/// Reads the eventfd `fd`'s counter (blocking while it is zero).
fn read_u64(fd: RawFd) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is 8 live, writable bytes for the duration of the call.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n == 8 {
        Ok(u64::from_ne_bytes(buf))
    } else if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Err(io::Error::other(format!("short eventfd read ({n} bytes)")))
    }
}

/// Forks a responder of `shape`, runs the rounds against it, then kills and
/// reaps it.
fn measure(shape: Shape, rounds: u64, pressure_kib: usize) -> Result<Figures, String> {
    let kick = eventfd()?;
    let call = eventfd()?;
    // SAFETY: this process is single-threaded, so the child may run any
    // code; it only makes system calls and leaves through `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os_err("fork"));
    }
    if pid == 0 {
        responder(shape, kick.as_raw_fd(), call.as_raw_fd());
    }
    let result = requester(
        pid,
        rounds,
        pressure_kib,
        kick.as_raw_fd(),
        call.as_raw_fd(),
    );
    // SAFETY: `pid` is our child, not yet reaped; kill and waitpid take no
    // pointers besides the null status.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    result
}

/// The requester: warm-up, then the measured rounds between two samples of
/// the responder's run time. Before each kick it writes one byte per 64-byte
/// line of a `pressure_kib` KiB buffer.
fn requester(
    pid: libc::pid_t,
    rounds: u64,
    pressure_kib: usize,
    kick: RawFd,
    call: RawFd,
) -> Result<Figures, String> {
    let mut other_work = vec![0u8; pressure_kib * 1024];
    let mut round = |i: u64| -> Result<(), String> {
        for b in other_work.iter_mut().step_by(64) {
            *b = b.wrapping_add(1);
        }
        std::hint::black_box(&mut other_work);
        write_u64(kick, 1).map_err(|e| format!("write kick (round {i}): {e}"))?;
        match read_u64(call) {
            Ok(1) => Ok(()),
            Ok(RESPONDER_FAILED) => Err(format!("the responder failed (round {i})")),
            Ok(v) => Err(format!("call counter {v}, expected 1 (round {i})")),
            Err(e) => Err(format!("read call (round {i}): {e}")),
        }
    };
    for i in 0..WARMUP {
        round(i)?;
    }
    let cpu0 = responder_cpu_ns(pid)?;
    let t0 = Instant::now();
    for i in 0..rounds {
        round(WARMUP + i)?;
    }
    let wall_ns = t0.elapsed().as_nanos();
    let cpu1 = responder_cpu_ns(pid)?;
    Ok(Figures {
        responder_ns: cpu1.saturating_sub(cpu0),
        wall_ns,
    })
}

/// The responder's run time in ns, once it is asleep (in `epoll_wait`: it
/// makes no other blocking call), so its last run has been accounted.
fn responder_cpu_ns(pid: libc::pid_t) -> Result<u64, String> {
    let stat = format!("/proc/{pid}/stat");
    let start = Instant::now();
    loop {
        let s = std::fs::read_to_string(&stat).map_err(|e| format!("{stat}: {e}"))?;
        // The state follows the command name, which is in parentheses.
        let state = s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .ok_or_else(|| format!("{stat}: unexpected contents {s:?}"))?;
        if state == "S" {
            break;
        }
        if start.elapsed() > SETTLE_TIMEOUT {
            return Err(format!(
                "responder not asleep after {SETTLE_TIMEOUT:?} (state {state})"
            ));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    let path = format!("/proc/{pid}/schedstat");
    let s = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    s.split_whitespace()
        .next()
        .and_then(|f| f.parse::<u64>().ok())
        .ok_or_else(|| format!("{path}: unexpected contents {s:?}"))
}

/// The forked responder: serves kicks until killed. On a failing system
/// call it prints the error, tells the requester (call counter
/// [`RESPONDER_FAILED`]) and exits.
fn responder(shape: Shape, kick: RawFd, call: RawFd) -> ! {
    let err = serve(shape, kick, call);
    eprintln!("wake-floor: responder {}: {err}", shape.name());
    let _ = write_u64(call, RESPONDER_FAILED);
    // SAFETY: _exit takes no pointers; it ends the child without running the
    // parent's exit handlers a second time.
    unsafe { libc::_exit(1) }
}

/// The responder loop of `shape`; returns only on an error.
fn serve(shape: Shape, kick: RawFd, call: RawFd) -> String {
    // SAFETY: epoll_create1 takes no pointers; a negative result is an error.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return os_err("epoll_create1");
    }
    let edge = match shape {
        Shape::EpollEtWrite => libc::EPOLLET as u32,
        Shape::EpollReadWrite => 0,
    };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32 | edge,
        u64: 0,
    };
    // SAFETY: `ev` is a live epoll_event for the duration of the call.
    if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, kick, &mut ev) } < 0 {
        return os_err("epoll_ctl");
    }
    let mut out = libc::epoll_event { events: 0, u64: 0 };
    loop {
        // SAFETY: `out` is one live, writable epoll_event, and maxevents is 1.
        let n = unsafe { libc::epoll_wait(ep, &mut out, 1, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return format!("epoll_wait: {e}");
        }
        if let Shape::EpollReadWrite = shape
            && let Err(e) = read_u64(kick)
        {
            return format!("read kick: {e}");
        }
        if let Err(e) = write_u64(call, 1) {
            return format!("write call: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Args, DEFAULT_ROUNDS, parse_args};

    fn parse(a: &[&str]) -> Result<Args, String> {
        parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments() {
        let a = |rounds, pressure_kib| {
            Ok(Args {
                rounds,
                pressure_kib,
            })
        };
        assert_eq!(parse(&[]), a(DEFAULT_ROUNDS, 0));
        assert_eq!(parse(&["500"]), a(500, 0));
        assert_eq!(parse(&["500", "--pressure-kib", "1024"]), a(500, 1024));
        assert_eq!(parse(&["--pressure-kib", "64", "7"]), a(7, 64));
        assert!(parse(&["0"]).is_err());
        assert!(parse(&["-3"]).is_err());
        assert!(parse(&["x"]).is_err());
        assert!(parse(&["1", "2"]).is_err());
        assert!(parse(&["--pressure-kib"]).is_err());
        assert!(parse(&["--pressure-kib", "-1"]).is_err());
        assert!(parse(&["--pressure-kib", "1048577"]).is_err());
    }
}
