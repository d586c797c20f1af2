//! The second core's side of a firmware test pair: which run QEMU asked
//! for, the run, the device's figures, and the verdict as an exit code.

use core::fmt::Write;
use core::sync::atomic::Ordering;

use scmi_agent::agent::{AgentOptions, ScmiAgent};
use scmi_agent::amp_driver::{AmpDriver, Link};
use scmi_agent::tour::Outcome;
use transport_shmem::Figures;
use virtio_backend::FixedWindow;
use virtio_backend::msg::Revision;

use crate::{Clock, QUEUE, TIMEOUT, WindowHal};

/// Round trips a [`Mode::Measure`] run times.
pub const ROUND_TRIPS: u64 = 200;

/// What the front-end does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The tour (discovery, every protocol, events, a burst).
    Tour,
    /// The hostile driver.
    Hostile,
    /// The tour, then [`ROUND_TRIPS`] timed SENSOR_READING_GET round trips.
    Measure,
}

impl Mode {
    /// The mode a command-line word names (`tour` for anything else).
    pub fn from_word(w: Option<&str>) -> Mode {
        match w {
            Some("hostile") => Mode::Hostile,
            Some("measure") => Mode::Measure,
            _ => Mode::Tour,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Tour => "tour",
            Mode::Hostile => "hostile",
            Mode::Measure => "measure",
        }
    }
}

/// What the image tells the front-end about the device's side.
pub struct Device<'a> {
    /// The loop's figures.
    pub figures: &'a Figures,
    /// The deepest the device's stack has been, and its size, in bytes.
    pub stack: fn() -> (usize, usize),
}

/// Runs `mode` against the device whose channel lies at `channel` of
/// `view`, writes the report to `out`, and returns the exit status: 0 when
/// every check passed.
pub fn run<L: Link + Copy, W: Write>(
    mode: Mode,
    view: &'static FixedWindow<'static>,
    channel: (u64, u64),
    link: L,
    clock: Clock,
    device: Device<'_>,
    mut out: W,
) -> i32 {
    let _ = writeln!(out, "front-end: core 1, {} run", mode.name());
    let o = match mode {
        Mode::Hostile => {
            crate::hostile::run::<WindowHal, _, _, _>(view, channel, link, link, clock, &mut out)
        }
        _ => crate::run::<WindowHal, _, _, _>(view, channel, link, clock, &mut out),
    };
    let o = if mode == Mode::Measure {
        measure(view, channel, link, clock, &device, &mut out, o)
    } else {
        o
    };
    let (depth, size) = (device.stack)();
    let _ = writeln!(out, "device: deepest stack {depth} bytes of {size}");
    let _ = writeln!(
        out,
        "result: {} checks passed, {} failed",
        o.passed, o.failed
    );
    i32::from(o.failed != 0)
}

/// Times [`ROUND_TRIPS`] SENSOR_READING_GET round trips on a fresh agent:
/// the device's counter ticks spent serving them (under QEMU's
/// `-icount shift=4` the generic counter ticks once per instruction).
fn measure<L: Link + Copy, W: Write>(
    view: &'static FixedWindow<'static>,
    channel: (u64, u64),
    link: L,
    clock: Clock,
    device: &Device<'_>,
    out: &mut W,
    mut o: Outcome,
) -> Outcome {
    let Ok(d) = AmpDriver::connect(view, channel.0, channel.1, link, Revision::V2, TIMEOUT) else {
        let _ = writeln!(out, "FAIL: measure: the device did not come back");
        o.failed += 1;
        return o;
    };
    let opts = AgentOptions {
        patience: TIMEOUT,
        now: clock.now,
        idle: clock.idle,
        ..AgentOptions::default()
    };
    let mut a: ScmiAgent<_, WindowHal, QUEUE, QUEUE> = ScmiAgent::new(d, opts);
    let f = device.figures;
    let ticks0 = f.serve_ticks.load(Ordering::Relaxed);
    let serves0 = f.busy_serves.load(Ordering::Relaxed);
    let mut ok = 0;
    for _ in 0..ROUND_TRIPS {
        ok += u64::from(a.callw(0x15, 0x6, &[0, 0], 0).status == 0);
    }
    let ticks = f.serve_ticks.load(Ordering::Relaxed) - ticks0;
    let serves = f.busy_serves.load(Ordering::Relaxed) - serves0;
    if ok == ROUND_TRIPS {
        o.passed += 1;
    } else {
        o.failed += 1;
        let _ = writeln!(
            out,
            "FAIL: measure: {ok} of {ROUND_TRIPS} readings succeeded"
        );
    }
    let _ = writeln!(
        out,
        "measure: {ROUND_TRIPS} SENSOR_READING_GET round trips, {serves} device wake-ups, {} counter ticks per round trip on the device",
        ticks / ROUND_TRIPS
    );
    o
}

/// The front-end's console on bare metal: the host's standard output,
/// through semihosting.
#[cfg(target_os = "none")]
pub struct Semihosting(Option<semihosting::io::Stdout>);

#[cfg(target_os = "none")]
impl Semihosting {
    /// Opens it (output is dropped without a debugger).
    pub fn open() -> Self {
        Semihosting(semihosting::io::stdout().ok())
    }
}

#[cfg(target_os = "none")]
impl Write for Semihosting {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        use semihosting::io::Write as _;
        match &mut self.0 {
            Some(o) => o.write_all(s.as_bytes()).map_err(|_| core::fmt::Error),
            None => Ok(()),
        }
    }
}

/// The run the semihosting command line asks for: its second word (QEMU:
/// `-semihosting-config enable=on,arg=<image>,arg=hostile`).
#[cfg(target_os = "none")]
pub fn mode_from_semihosting() -> Mode {
    let Ok(args) = semihosting::experimental::env::args::<128>() else {
        return Mode::Tour;
    };
    Mode::from_word((&args).nth(1).and_then(Result::ok))
}

/// The whole front-end of a test pair, on bare metal: takes the shared
/// `window` (base, size), the channel at its start, DMA pages for the
/// rings after it and the heap in the rest; reads the run from the
/// semihosting command line, runs it against the device (rung by `ring`),
/// reports through semihosting and returns the exit status.
///
/// # Safety
///
/// `window` is the manifest's shared window, mapped read-write as normal
/// memory on this core, shared with the device only, and this is called
/// once.
#[cfg(target_os = "none")]
pub unsafe fn main(
    window: (u64, u64),
    channel: (u64, u64),
    ring: fn(),
    clock: Clock,
    device: Device<'_>,
) -> i32 {
    let channel_end = channel.0.saturating_add(channel.1) as usize;
    let dma = channel_end..channel_end + DMA_BYTES;
    let heap = dma.end..window.1 as usize;
    // SAFETY: the caller's contract; the device reaches only the channel
    // and what the driver gives it.
    let view = unsafe { crate::install(window.0 as usize, window.1 as usize, dma, heap) };
    run(
        mode_from_semihosting(),
        view,
        channel,
        crate::CoreLink { ring, clock },
        clock,
        device,
        Semihosting::open(),
    )
}

/// Bytes of DMA pages after the channel (the rings of a few sessions:
/// [`Mode::Hostile`] and [`Mode::Measure`] set queues up more than once).
pub const DMA_BYTES: usize = 0xf000;
