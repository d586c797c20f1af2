//! The test pair: core 1 runs the front-end (`firmware-frontend`) against
//! the device core 0 serves, prints through semihosting, and ends QEMU
//! with its verdict.
//!
//! Which front-end runs is chosen on QEMU's command line, through the
//! semihosting command line (`-semihosting-config enable=on,arg=...`):
//! `tour` (the default), `hostile`, or `measure` (the tour, then
//! [`ROUND_TRIPS`] timed SENSOR_READING_GET round trips).

use core::fmt::Write;
use core::sync::atomic::Ordering;
use core::time::Duration;

use aarch64_rt::Stack;
use firmware_frontend::{Clock, WindowHal};
use platform_qemu_virt::cpu::Mpidr;
use platform_qemu_virt::{gic, psci, timer};
use scmi_agent::amp_driver::Link;
use semihosting::io::Write as _;
use virtio_backend::FixedWindow;

use crate::image::{CHANNEL, DOORBELL_IN, DOORBELL_OUT, FIGURES, WINDOW};

/// Round trips the `measure` run times.
pub const ROUND_TRIPS: u64 = 200;

/// Core 1's stack: 64 KiB (the agent's probe and the formatting).
static mut STACK: Stack<16> = Stack::new();

/// Starts core 1 on the front-end.
pub fn start() {
    let Some(core1) = Mpidr::of_core_index(1) else {
        return;
    };
    // SAFETY: `STACK` is core 1's alone (nothing else names it) and lies in
    // the image's RAM, normal memory in both cores' page tables.
    let r = unsafe { psci::start_core(core1, &raw mut STACK, main) };
    if r.is_err() {
        let _ = writeln!(Out::open(), "front-end: CPU_ON failed");
        platform_qemu_virt::exit(1);
    }
}

/// The front-end's console: QEMU's standard output, via semihosting.
struct Out(Option<semihosting::io::Stdout>);

impl Out {
    fn open() -> Self {
        Out(semihosting::io::stdout().ok())
    }
}

impl Write for Out {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        match &mut self.0 {
            Some(o) => o.write_all(s.as_bytes()).map_err(|_| core::fmt::Error),
            None => Ok(()),
        }
    }
}

fn now() -> Duration {
    let f = timer::frequency().max(1);
    let t = timer::counter();
    Duration::new(t / f, ((t % f) * 1_000_000_000 / f) as u32)
}

fn idle() {
    for _ in 0..64 {
        core::hint::spin_loop();
    }
}

const CLOCK: Clock = Clock { now, idle };

/// The doorbell to the device: SGI to core 0.
struct ToDevice;

impl Link for ToDevice {
    fn ring(&self) {
        if let Some(core0) = Mpidr::of_core_index(0)
            && let Err(e) = gic::send_sgi(DOORBELL_IN, core0)
        {
            panic!("front-end: SGI {DOORBELL_IN} to core 0 failed: {e:?}");
        }
    }
    fn idle(&self) {
        idle();
    }
    fn now(&self) -> Duration {
        now()
    }
}

/// Which run the semihosting command line asks for: its second word
/// (QEMU: `-semihosting-config enable=on,arg=scmi-fw,arg=hostile`).
fn mode() -> &'static str {
    let Ok(args) = semihosting::experimental::env::args::<128>() else {
        return "tour";
    };
    match (&args).nth(1) {
        Some(Ok("hostile")) => "hostile",
        Some(Ok("measure")) => "measure",
        _ => "tour",
    }
}

fn main() {
    let mut out = Out::open();
    if crate::image::gic_up(&[DOORBELL_OUT], &[]).is_err() {
        let _ = writeln!(out, "front-end: no GIC redistributor for core 1");
        platform_qemu_virt::exit(1);
    }
    // The window: the channel first, then DMA pages for the rings, then
    // the heap for the agent's buffers.
    let channel_end = (CHANNEL.0 + CHANNEL.1) as usize;
    let dma = channel_end..channel_end + 0xf000;
    let heap = dma.end..WINDOW.1 as usize;
    // SAFETY: the manifest's shared window, identity-mapped as normal
    // memory on both cores; the front-end is its only user on this core,
    // and the device reaches only the channel and what the driver gives it.
    let view: &'static FixedWindow<'static> =
        unsafe { firmware_frontend::install(WINDOW.0 as usize, WINDOW.1 as usize, dma, heap) };
    let mode = mode();
    let _ = writeln!(out, "front-end: core 1, {mode} run");
    let o = match mode {
        "hostile" => firmware_frontend::hostile::run::<WindowHal, _, _, _>(
            view, CHANNEL, ToDevice, ToDevice, CLOCK, &mut out,
        ),
        _ => firmware_frontend::run::<WindowHal, _, _, _>(view, CHANNEL, ToDevice, CLOCK, &mut out),
    };
    if mode == "measure" {
        measure(&mut out, view);
    }
    let (bottom, top) = crate::image::stack_bounds();
    let _ = writeln!(
        out,
        "device: deepest stack {} bytes of {}",
        crate::image::stack_depth(),
        top - bottom
    );
    let _ = writeln!(
        out,
        "result: {} checks passed, {} failed",
        o.passed, o.failed
    );
    platform_qemu_virt::exit(if o.failed == 0 { 0 } else { 1 })
}

/// Times [`ROUND_TRIPS`] SENSOR_READING_GET round trips on a fresh agent:
/// the device's counter ticks spent serving them (under `-icount shift=4`
/// one tick per instruction).
fn measure(out: &mut Out, view: &'static FixedWindow<'static>) {
    use scmi_agent::agent::{AgentOptions, ScmiAgent};
    use scmi_agent::amp_driver::AmpDriver;
    use virtio_backend::msg::Revision;
    let Ok(d) = AmpDriver::connect(
        view,
        CHANNEL.0,
        CHANNEL.1,
        ToDevice,
        Revision::V2,
        firmware_frontend::TIMEOUT,
    ) else {
        let _ = writeln!(out, "measure: the device did not come back");
        return;
    };
    let opts = AgentOptions {
        patience: firmware_frontend::TIMEOUT,
        now,
        idle,
        ..AgentOptions::default()
    };
    let mut a: ScmiAgent<_, WindowHal, 16, 16> = ScmiAgent::new(d, opts);
    let ticks0 = FIGURES.serve_ticks.load(Ordering::Relaxed);
    let serves0 = FIGURES.busy_serves.load(Ordering::Relaxed);
    for _ in 0..ROUND_TRIPS {
        let _ = a.callw(0x15, 0x6, &[0, 0], 0);
    }
    let ticks = FIGURES.serve_ticks.load(Ordering::Relaxed) - ticks0;
    let serves = FIGURES.busy_serves.load(Ordering::Relaxed) - serves0;
    let _ = writeln!(
        out,
        "measure: {ROUND_TRIPS} SENSOR_READING_GET round trips, {serves} device wake-ups, {} counter ticks per round trip on the device",
        ticks / ROUND_TRIPS
    );
}
