//! The front-end on the other core.
//!
//! # What it is for
//!
//! A firmware image serves SCMI over virtio-msg on the shared-memory
//! channel; something must drive it the way an operating system on the
//! application cores would. This crate is that driver, bare-metal, for the
//! second core of the same QEMU machine: the SCMI agent on
//! `virtio-drivers` (crate `scmi-agent`) over the driver half of the
//! channel, running the [tour](scmi_agent::tour) (discovery as Linux 6.12
//! does it, every protocol, notifications, delayed responses, a burst in
//! flight), and a [hostile](hostile) front-end that writes garbage into
//! the channel and the queues.
//!
//! Everything the device sees lies in the shared window the manifest
//! names: the channel at its place, the virtqueues in DMA pages after it,
//! and the agent's heap (its request and reply buffers, indirect tables)
//! in the rest, so [`WindowHal::share`] hands out window offsets without
//! copying. Driver addresses are offsets into the window, as the device's
//! `FixedWindow` reads them.
//!
//! # What it refuses to know about
//!
//! The board: the doorbell to the device, waiting and the clock are the
//! image's ([`scmi_agent::amp_driver::Link`], [`Clock`]); where the window
//! is comes from the image's manifest. It is test code: it allocates (from
//! a heap in the window) and panics on anything unexpected; the image's
//! panic handler reports it and fails the run.

#![no_std]

extern crate alloc;

pub mod hostile;
pub mod pair;
mod window;

use core::fmt::Write;
use core::time::Duration;

use scmi_agent::agent::{AgentOptions, ScmiAgent};
use scmi_agent::amp_driver::{AmpDriver, Link};
use scmi_agent::tour::{self, Outcome, Patience};
use virtio_backend::GuestMemory;
use virtio_backend::msg::Revision;
use virtio_drivers::Hal;
use virtio_drivers::transport::Transport;

pub use window::{WindowHal, install, install_at};

/// The clock and the idle hook of the core the front-end runs on.
#[derive(Clone, Copy)]
pub struct Clock {
    /// Time since boot.
    pub now: fn() -> Duration,
    /// Waits a little (for an interrupt, or a few cycles).
    pub idle: fn(),
}

/// Waits a little: a few cycles' spin (the front-end polls the rings).
pub fn spin() {
    for _ in 0..64 {
        core::hint::spin_loop();
    }
}

/// The link of a front-end on another core: the doorbell is a function (an
/// SGI to the device's core), the clock and idle hook are the core's.
#[derive(Clone, Copy)]
pub struct CoreLink {
    /// Rings the device.
    pub ring: fn(),
    /// The core's clock and idle hook.
    pub clock: Clock,
}

impl Link for CoreLink {
    fn ring(&self) {
        (self.ring)();
    }
    fn idle(&self) {
        (self.clock.idle)();
    }
    fn now(&self) -> Duration {
        (self.clock.now)()
    }
}

/// Checks counted into an [`Outcome`]; a failed one is reported on `out`.
pub struct Checks<W: Write> {
    /// Where failures are reported.
    pub out: W,
    /// The count so far.
    pub o: Outcome,
}

impl<W: Write> Checks<W> {
    /// Counts one check; reports it on `out` if it failed.
    pub fn check(&mut self, ok: bool, what: &str) {
        if ok {
            self.o.passed += 1;
        } else {
            self.o.failed += 1;
            let _ = writeln!(self.out, "FAIL: {what}");
        }
    }
}

/// How long the front-end waits for the device before it fails the run.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Entries of the cmdq and eventq the front-end sets up (the device
/// offers what its manifest says; the driver takes at most this).
pub const QUEUE: usize = 16;

/// Runs the tour over the device whose channel lies at `channel` (offset,
/// length) of the shared memory `mem` (the driver's view, with `H` its DMA
/// memory), writing what it found to `out`. Panics when the device does
/// not come up.
pub fn run<H: Hal, M: GuestMemory, L: Link, W: Write>(
    mem: M,
    channel: (u64, u64),
    link: L,
    clock: Clock,
    mut out: W,
) -> Outcome {
    let (base, len) = channel;
    let driver = match AmpDriver::connect(mem, base, len, link, Revision::V2, TIMEOUT) {
        Ok(d) => d,
        Err(e) => panic!("the device did not come up: {e:?}"),
    };
    let (device_id, ..) = driver.device_info();
    let _ = writeln!(
        out,
        "virtio-msg: channel up, device {} is virtio device {device_id} (SCMI)",
        driver.dev_num()
    );
    tour_over::<_, H, _>(driver, clock, out).0
}

/// Runs the tour over `transport` (any bus, bound), as [`run`] does; the
/// verdict and the agent, for more.
pub fn tour_over<T: Transport, H: Hal, W: Write>(
    transport: T,
    clock: Clock,
    mut out: W,
) -> (Outcome, ScmiAgent<T, H, QUEUE, QUEUE>) {
    let opts = AgentOptions {
        patience: TIMEOUT,
        now: clock.now,
        idle: clock.idle,
        ..AgentOptions::default()
    };
    let mut agent: ScmiAgent<_, H, QUEUE, QUEUE> = ScmiAgent::new(transport, opts);
    let _ = writeln!(
        out,
        "virtio-scmi: features {:#x}, eventq {}",
        agent.features(),
        if agent.has_eventq() { "on" } else { "off" }
    );
    let o = tour::run(
        &mut agent,
        &mut out,
        Patience {
            limit: TIMEOUT,
            now: clock.now,
            idle: clock.idle,
        },
    );
    (o, agent)
}
