//! The complete SCMI device in a `static`, measured.
//!
//! # What it is for
//!
//! A measurement and test image, not product firmware. It shows that the
//! whole virtio-scmi device — the built-in simulated SoC
//! (`platform-host-vhost-user`, generated from its manifest), the SCMI
//! server, the virtio-scmi device, the virtio core and its queues — is
//! built by `const` constructors into one [`static`](DEVICE) (no
//! constructor runs at run time, no heap), and measures what such firmware
//! costs:
//!
//! * the device's mutable state (RAM): [`Sizes`], with the platform's
//!   share split per protocol;
//! * where the resource descriptions live: the linker's sections, checked
//!   at run time from linker symbols ([`Sections`]) on the bare-metal
//!   images;
//! * the deepest stack of one SCMI round trip (the driver's writes, the
//!   kick, the device serving the chain, the driver reading the reply),
//!   by stack painting ([`stack`]) on the bare-metal images.
//!
//! A minimal split-ring driver ([`driver`]) brings the device up through
//! its [`DeviceCore`] and sends [`requests::REQUESTS`] (every protocol,
//! replies up to the 128-byte limit, an error path, a delayed response)
//! through a [`FixedWindow`] over a static byte array, checking every reply.
//! [`run`] is the whole workload; the binary runs it bare-metal under QEMU
//! (`aarch64-unknown-none`, `armv8r-none-eabihf`; `tests/static-device/run.sh`
//! builds and runs both) or on the host, where nothing is measured but the
//! sizes.
//!
//! # What it refuses to know about
//!
//! Real transports, interrupts, doorbells, cache maintenance, other cores,
//! time: the driver and the device share one core and one coherent window,
//! and the kick is a function call. It is not an example of how to write
//! firmware around the device either: the lock, the window and the driver
//! exist only to exercise and measure the device.

#![no_std]

pub mod driver;
pub mod requests;
pub mod stack;

use core::fmt::{self, Write};
use core::mem::size_of;
use core::ops::Range;
use core::ptr::NonNull;

use platform_host_vhost_user as builtin;
use scmi_server::protocols::clock::ClockPlatform;
use scmi_server::protocols::sensor::SensorPlatform;
use scmi_server::{Header, MAX_PAYLOAD, MsgType, Server, Status};
use spin::mutex::SpinMutex;
use virtio_backend::{Coherent, DeviceCore, FixedWindow, Interrupts, Queue};
use virtio_scmi::{Options, VirtioScmi};

use driver::{Driver, Reply, WINDOW_LEN, word};
use requests::{Payload, REQUESTS, Request};
use stack::Depth;

/// The SCMI server over the built-in SoC: two agents, eight outbox slots.
pub type ScmiServer = Server<builtin::Platform, 2, 8>;

/// The virtio-scmi device serving agent 1.
pub type Scmi = VirtioScmi<ScmiServer>;

/// The complete device: core, cmdq and eventq (without a packed-ring
/// store, `H = 0`), device, server, platform.
pub type Device = DeviceCore<Scmi, 2, 0>;

/// The complete device, built at compile time: the initializer is a
/// constant, so the image holds its boot state in `.data` and no code runs
/// to construct it.
///
/// Behind a spin lock: the same on the host (where tests may run on several
/// threads) and on the single-core bare-metal images (where it is never
/// contended and costs one byte and an atomic swap).
pub static DEVICE: SpinMutex<Device> = SpinMutex::new(
    VirtioScmi::with_options(
        Server::new(&builtin::CONFIG, builtin::PLATFORM),
        1,
        Options::DEFAULT,
    )
    .into_core(),
);

/// Round trips of one [`run`]: every request of [`REQUESTS`] twice.
pub const ROUND_TRIPS: usize = 2 * REQUESTS.len();

/// Budget for the stack of one SCMI round trip.
pub const STACK_GOAL: usize = 4096;

/// Budget for the device's mutable state with the built-in SoC.
pub const RAM_GOAL: usize = 16 * 1024;

/// The driver memory: a static byte array that the device (and the
/// driver) reach only through [`FixedWindow`]s. Never referenced: only a
/// raw pointer to it is ever taken (in [`run`]).
#[repr(C, align(4096))]
struct DriverMemory([u8; WINDOW_LEN]);

static mut DRIVER_MEMORY: DriverMemory = DriverMemory([0; WINDOW_LEN]);

/// Sizes in bytes of the device and its parts (`size_of`, so exactly
/// the RAM the static takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// The static: the device and its lock.
    pub total: usize,
    /// The simulated platform (resource state).
    pub platform: usize,
    /// The server without the platform (agents, outbox, configuration
    /// pointer).
    pub server: usize,
    /// The virtio-scmi device without the server (options, counters).
    pub virtio_scmi: usize,
    /// The core without the device: status, features, both queues.
    pub core: usize,
    /// One queue.
    pub queue: usize,
    /// The lock.
    pub lock: usize,
    /// The platform's parts: power, system, perf, clock, sensor, reset,
    /// voltage.
    pub platform_parts: [(&'static str, usize); 7],
}

/// `size_of` of the field `f` selects.
fn field_size<T, F>(_f: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

impl Sizes {
    /// The sizes of [`DEVICE`]'s type.
    pub fn of_device() -> Sizes {
        type P = builtin::Platform;
        Sizes {
            total: size_of::<SpinMutex<Device>>(),
            platform: size_of::<P>(),
            server: size_of::<ScmiServer>() - size_of::<P>(),
            virtio_scmi: size_of::<Scmi>() - size_of::<ScmiServer>(),
            core: size_of::<Device>() - size_of::<Scmi>(),
            queue: size_of::<Queue<0>>(),
            lock: size_of::<SpinMutex<Device>>() - size_of::<Device>(),
            platform_parts: [
                ("power", field_size(|p: &P| &p.power)),
                ("system", field_size(|p: &P| &p.system)),
                ("perf", field_size(|p: &P| &p.perf)),
                ("clock", field_size(|p: &P| &p.clock)),
                ("sensor", field_size(|p: &P| &p.sensor)),
                ("reset", field_size(|p: &P| &p.reset)),
                ("voltage", field_size(|p: &P| &p.voltage)),
            ],
        }
    }
}

/// The image's sections, from linker symbols (bare-metal images only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sections {
    /// Read-only data.
    pub rodata: Range<usize>,
    /// Initialized mutable data.
    pub data: Range<usize>,
    /// Zero-initialized mutable data.
    pub bss: Range<usize>,
    /// The stack `run` runs on.
    pub stack: Range<usize>,
}

impl Sections {
    /// The section an address lies in.
    fn of(&self, addr: usize) -> &'static str {
        if self.rodata.contains(&addr) {
            ".rodata"
        } else if self.data.contains(&addr) {
            ".data"
        } else if self.bss.contains(&addr) {
            ".bss"
        } else {
            "elsewhere"
        }
    }
}

/// How [`run`] measures stack depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackProbe {
    floor: Option<usize>,
}

impl StackProbe {
    /// No measurement (the host).
    pub const NONE: StackProbe = StackProbe { floor: None };

    /// Stack painting on the stack whose lowest address is `floor`
    /// ([`stack::measure`]).
    ///
    /// # Safety
    ///
    /// [`run`] must be called on the stack whose lowest address is `floor`,
    /// with no interrupt handler or other core using that stack while it
    /// runs.
    #[cfg(target_os = "none")]
    pub const unsafe fn painting(floor: usize) -> StackProbe {
        StackProbe { floor: Some(floor) }
    }

    /// Runs `f`, measuring its stack depth if this probe paints.
    fn run(&self, f: &mut dyn FnMut()) -> Option<Depth> {
        #[cfg(target_os = "none")]
        if let Some(floor) = self.floor {
            // SAFETY: `painting`'s contract: `floor` is the lowest address
            // of the stack this runs on, which nothing else uses meanwhile.
            return Some(unsafe { stack::measure(floor, f) });
        }
        f();
        None
    }
}

/// Where and how [`run`] runs.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Target name for the report.
    pub target: &'static str,
    /// Stack measurement.
    pub probe: StackProbe,
    /// The image's sections, where the linker tells them.
    pub sections: Option<Sections>,
}

/// What one run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Round trips whose reply passed every check (two per request).
    pub ok: usize,
    /// Round trips (or set-up steps) that failed.
    pub failed: usize,
    /// The deepest round trip: its depth and request.
    pub deepest: Option<(Depth, &'static str)>,
    /// The deepest kick alone (the device's share of a round trip): its
    /// depth and request.
    pub deepest_device: Option<(Depth, &'static str)>,
    /// The device's sizes.
    pub sizes: Sizes,
    /// Whether the resource descriptions were found in `.rodata` (`None`
    /// where the sections are unknown).
    pub tables_in_rodata: Option<bool>,
}

impl Report {
    /// Every SCMI check passed (goals aside: they are figures).
    pub fn passed(&self) -> bool {
        self.failed == 0 && self.ok == ROUND_TRIPS
    }

    /// Whether the stack goal was met (`None`: not measured).
    pub fn stack_goal(&self) -> Option<bool> {
        self.deepest
            .map(|(d, _)| d.bytes <= STACK_GOAL && !d.saturated())
    }

    /// Whether the RAM goal was met.
    pub fn ram_goal(&self) -> bool {
        self.sizes.total <= RAM_GOAL
    }
}

/// Why a reply was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    Driver(driver::Fault),
    UsedLength(u32),
    Header { sent: u32, got: u32 },
    Status { expected: Status, got: i32 },
    Payload { expected: Payload, got: u32 },
    FirstWord { expected: u32, got: Option<u32> },
    NotNotified,
    NoDelayedResponse,
    DelayedResponse { header: u32, len: u32 },
    UnexpectedEvent(u32),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Driver(e) => write!(f, "driver: {e}"),
            Problem::UsedLength(n) => write!(f, "used length {n}"),
            Problem::Header { sent, got } => {
                write!(f, "header {got:#010x}, sent {sent:#010x}")
            }
            Problem::Status { expected, got } => match Status::from_code(*got) {
                Some(s) => write!(f, "status {s}, expected {expected}"),
                None => write!(f, "status {got}, expected {expected}"),
            },
            Problem::Payload { expected, got } => {
                write!(f, "{got} payload bytes, expected {expected:?}")
            }
            Problem::FirstWord { expected, got } => match got {
                Some(got) => write!(f, "first word {got:#x}, expected {expected:#x}"),
                None => write!(f, "no first word, expected {expected:#x}"),
            },
            Problem::NotNotified => f.write_str("no used-buffer notification requested"),
            Problem::NoDelayedResponse => f.write_str("no delayed response on the eventq"),
            Problem::DelayedResponse { header, len } => {
                write!(
                    f,
                    "wrong delayed response: header {header:#010x}, {len} bytes"
                )
            }
            Problem::UnexpectedEvent(h) => write!(f, "unexpected eventq message {h:#010x}"),
        }
    }
}

/// Checks one reply against its request; returns the status.
fn check(req: &Request, reply: &Reply) -> Result<Status, Problem> {
    let rx = req.command.rx.min(MAX_PAYLOAD as u32);
    let len = reply.used_len;
    if len < 8 || len > 8 + rx {
        return Err(Problem::UsedLength(len));
    }
    let bytes = &reply.bytes[..len as usize];
    let header = word(bytes, 0).unwrap_or(0);
    if header != reply.sent {
        return Err(Problem::Header {
            sent: reply.sent,
            got: header,
        });
    }
    let code = word(bytes, 1).unwrap_or(0) as i32;
    if code != req.status.code() {
        return Err(Problem::Status {
            expected: req.status,
            got: code,
        });
    }
    let payload = len - 8;
    let fits = match (req.status, req.payload) {
        (Status::Success, Payload::Exact(n)) => payload == n,
        (Status::Success, Payload::FullPage(entry)) => payload <= rx && payload + entry > rx,
        _ => payload == 0,
    };
    if !fits {
        return Err(Problem::Payload {
            expected: req.payload,
            got: payload,
        });
    }
    if let Some(expected) = req.first_word {
        let got = word(bytes, 2);
        if got != Some(expected) {
            return Err(Problem::FirstWord { expected, got });
        }
    }
    if !reply.notified {
        return Err(Problem::NotNotified);
    }
    match (req.delayed, &reply.event) {
        (None, None) => {}
        (None, Some(e)) => return Err(Problem::UnexpectedEvent(word(&e.bytes, 0).unwrap_or(0))),
        (Some(_), None) => return Err(Problem::NoDelayedResponse),
        (Some(words), Some(e)) => {
            let h = word(&e.bytes, 0).unwrap_or(0);
            let sent = Header::decode(reply.sent);
            let expected_header = sent.map(|s| s.with_type(MsgType::DelayedResponse).encode());
            let body_ok = e.len as usize == 4 + 4 * words.len()
                && words
                    .iter()
                    .enumerate()
                    .all(|(i, w)| word(&e.bytes, 1 + i) == Some(*w));
            if expected_header != Some(h) || !body_ok {
                return Err(Problem::DelayedResponse {
                    header: h,
                    len: e.len,
                });
            }
        }
    }
    Ok(req.status)
}

/// Runs the whole workload once and prints the report to `out`: brings
/// the static device up, sends every request of [`REQUESTS`] through the
/// window, checks each reply, measures (where `env.probe` paints) each
/// round trip's stack, and prints sizes, placement and the goal checks.
///
/// Holds [`DEVICE`]'s lock for the whole run, so runs on several threads
/// (host tests) take turns.
pub fn run(out: &mut dyn Write, env: &Environment) -> Report {
    let sizes = Sizes::of_device();
    let mut report = Report {
        ok: 0,
        failed: 0,
        deepest: None,
        deepest_device: None,
        sizes,
        tables_in_rodata: None,
    };
    let mut dev = DEVICE.lock();
    let memory = NonNull::new(&raw mut DRIVER_MEMORY).map(NonNull::cast::<u8>);
    // SAFETY: `DRIVER_MEMORY` is a static, valid for reads and writes for
    // the whole program; no reference to it is ever created (only this raw
    // pointer), so every access goes through windows created here, with
    // volatile copies and atomics. One run at a time holds `DEVICE`'s lock,
    // so this window is the only one in use.
    let window = memory.and_then(|m| unsafe { FixedWindow::new(m, WINDOW_LEN, 0, Coherent) });
    let _ = writeln!(out, "static-device on {}", env.target);
    let Some(window) = window else {
        let _ = writeln!(out, "FAILED: the window could not be created");
        report.failed += 1;
        return report;
    };
    // The counters run on across device resets: this run's are the change.
    let before = dev.device().stats();
    let mut drv = Driver::new();
    if let Err(e) = drv.bring_up(&mut dev, &window) {
        let _ = writeln!(out, "FAILED: bring-up: {e}");
        report.failed += 1;
        return report;
    }
    for (i, req) in REQUESTS.iter().enumerate() {
        let _ = write!(out, "  [{:2}] {:<38}", i + 1, req.name);
        // Twice: measured whole (the driver's writes, the kick, reading the
        // reply), then with only the kick measured (the device's share).
        // Every request of the list may be repeated.
        let mut depths = (None, None);
        for whole in [true, false] {
            let mut result = None;
            let depth = if whole {
                env.probe.run(&mut || {
                    result = Some(drv.round_trip(&mut dev, &window, &req.command));
                })
            } else {
                match drv.submit(&window, &req.command) {
                    Ok(pending) => {
                        let mut irq = Interrupts::default();
                        let depth = env.probe.run(&mut || {
                            irq = dev.queue_notify(&window, virtio_scmi::CMDQ);
                        });
                        result = Some(drv.complete(&window, pending, irq));
                        depth
                    }
                    Err(e) => {
                        result = Some(Err(e));
                        None
                    }
                }
            };
            let verdict = match result {
                Some(Ok(reply)) => check(req, &reply).map(|s| (s, reply.used_len)),
                Some(Err(e)) => Err(Problem::Driver(e)),
                None => Err(Problem::Driver(driver::Fault::NoReply)),
            };
            match verdict {
                Ok((status, used)) => {
                    report.ok += 1;
                    if whole {
                        let _ = write!(out, " {:<14} used {:3}", status.name(), used);
                    }
                }
                Err(p) => {
                    report.failed += 1;
                    let pass = if whole { "" } else { " (repeated)" };
                    let _ = write!(out, " FAILED{pass}: {p}");
                }
            }
            if let Some(d) = depth {
                let deepest = if whole {
                    depths.0 = Some(d);
                    &mut report.deepest
                } else {
                    depths.1 = Some(d);
                    &mut report.deepest_device
                };
                if deepest.is_none_or(|(m, _)| d.bytes > m.bytes) {
                    *deepest = Some((d, req.name));
                }
            }
        }
        if let (Some(d), Some(k)) = depths {
            let mark = |d: Depth| if d.saturated() { "+" } else { "" };
            let _ = write!(
                out,
                "  stack {:5}{} (kick {:5}{})",
                d.bytes,
                mark(d),
                k.bytes,
                mark(k)
            );
        }
        let _ = writeln!(out);
    }
    let now = dev.device().stats();
    let errors = (now.unanswerable - before.unanswerable)
        + (now.oversized - before.oversized)
        + (now.invalid_chains - before.invalid_chains)
        + (now.access_errors - before.access_errors)
        + (now.events_dropped - before.events_dropped);
    let replies = now.replies - before.replies;
    let _ = writeln!(
        out,
        "device stats: {} requests, {} replies, {} events, {} errors",
        now.requests - before.requests,
        replies,
        now.events - before.events,
        errors
    );
    if errors != 0 || replies != ROUND_TRIPS as u64 {
        report.failed += 1;
    }
    if dev.needs_reset() {
        let _ = writeln!(out, "FAILED: the device set DEVICE_NEEDS_RESET");
        report.failed += 1;
    }

    let s = &report.sizes;
    let _ = writeln!(
        out,
        "device: {} bytes (platform {}, server {}, virtio-scmi {}, core+queues {}; lock {})",
        s.total, s.platform, s.server, s.virtio_scmi, s.core, s.lock
    );
    let _ = write!(out, "platform:");
    for (i, (name, n)) in s.platform_parts.iter().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        let _ = write!(out, "{sep}{name} {n}");
    }
    let _ = writeln!(out, "; one queue {}", s.queue);
    let _ = writeln!(
        out,
        "window: {} bytes of driver memory, guest_base {:#x} (cmdq {} entries, eventq {} entries, {} event buffers)",
        window.len(),
        window.guest_base(),
        driver::CMDQ_SIZE,
        driver::EVENTQ_SIZE,
        driver::EVENT_BUFFERS,
    );
    if let Some(sec) = &env.sections {
        let platform = &dev.device().backend().platform;
        let places = [
            ("CONFIG", &raw const builtin::CONFIG as usize),
            ("clock descriptions", platform.clocks().as_ptr() as usize),
            ("sensor descriptions", platform.sensors().as_ptr() as usize),
            ("DEVICE", &raw const DEVICE as usize),
            ("driver window", &raw const DRIVER_MEMORY as usize),
        ];
        let len = |r: &Range<usize>| r.end - r.start;
        let _ = writeln!(
            out,
            "sections: .rodata {} bytes, .data {} bytes, .bss {} bytes (.data+.bss {}, of which driver window {}); stack {} bytes",
            len(&sec.rodata),
            len(&sec.data),
            len(&sec.bss),
            len(&sec.data) + len(&sec.bss),
            WINDOW_LEN,
            len(&sec.stack),
        );
        let _ = write!(out, "placement:");
        for (i, (name, addr)) in places.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let _ = write!(out, "{sep}{name} {} ({addr:#x})", sec.of(*addr));
        }
        let _ = writeln!(out);
        report.tables_in_rodata = Some(places[..3].iter().all(|(_, a)| sec.of(*a) == ".rodata"));
    }
    drop(dev);

    let saturated = |d: Depth| {
        if d.saturated() {
            " (saturated: at least that much)"
        } else {
            ""
        }
    };
    match (report.deepest, report.deepest_device) {
        (Some((d, name)), Some((k, kname))) => {
            let _ = writeln!(
                out,
                "stack: max {} bytes (request {name}){}; the kick alone (device): max {} bytes (request {kname}){}",
                d.bytes,
                saturated(d),
                k.bytes,
                saturated(k),
            );
        }
        _ => {
            let _ = writeln!(out, "stack: not measured on this target");
        }
    }
    if report.passed() {
        let _ = writeln!(
            out,
            "ok: {} round trips ({} requests, each sent twice)",
            report.ok,
            REQUESTS.len()
        );
    } else {
        let _ = writeln!(
            out,
            "FAILED: {} checks failed, {} of {} round trips ok",
            report.failed, report.ok, ROUND_TRIPS
        );
    }
    let _ = match report.stack_goal() {
        Some(met) => writeln!(out, "stack <= {STACK_GOAL}: {}", pass(met)),
        None => writeln!(out, "stack <= {STACK_GOAL}: not measured"),
    };
    let _ = writeln!(out, "device RAM <= {RAM_GOAL}: {}", pass(report.ram_goal()));
    if let Some(met) = report.tables_in_rodata {
        let _ = writeln!(out, "resource descriptions in .rodata: {}", pass(met));
    }
    report
}

fn pass(met: bool) -> &'static str {
    if met { "PASS" } else { "FAIL" }
}
