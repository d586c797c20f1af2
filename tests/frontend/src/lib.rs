//! Host tests that drive our device core with a third-party front-end.
//!
//! # What it is for
//!
//! `virtio-backend` is the device side of virtio. Its own unit tests build
//! rings with its own mock driver, which shares its authors' reading of the
//! specification. This crate puts a driver written by other people, the
//! `virtio-drivers` crate (rcore-os), in front of it instead: its
//! `VirtIOBlk` and `VirtIOConsole` negotiate features, lay out split rings,
//! use indirect descriptors and event indices, and move real data through
//! our [`DeviceCore`](virtio_backend::DeviceCore) over our own transports.
//!
//! * [`arena`]: one page-aligned block of host RAM shared by both sides,
//!   and the `virtio_drivers::Hal` over it. The device sees it only through
//!   a bounds-checked [`FixedWindow`](virtio_backend::FixedWindow); the
//!   driver's own buffers are bounced into it, so the device never touches
//!   memory outside it.
//! * [`ffa`]: the device as an FF-A secure partition behind the scripted
//!   SPMC double, and the normal-world driver bound to it.
//! * [`xen`]: the device on its Xen bus (`transport-xen`), the driver's
//!   arena behind grants, fake hypercalls.
//! * [`loopback`]: the device side. A core behind the virtio-msg handler
//!   (mailboxes and an event ring in the arena's transport page) or behind
//!   the virtio-mmio register file (a trapped register page), a doorbell,
//!   and counters of what the device saw. The device runs inline on the
//!   driver's thread or on a thread of its own.
//! * [`msg_transport`], [`mmio_transport`], [`transport`]: the driver
//!   side, `virtio_drivers::transport::Transport` over each transport and
//!   an enum over both.
//! * [`scmi_agent`], [`scmi_probe`]: an SCMI agent (a virtio-scmi driver
//!   written on `virtio-drivers`' `VirtQueue`, which has none) and the
//!   probe sequence Linux 6.12 runs through it, from crate `scmi-agent`
//!   (no_std, shared with the bare-metal front-ends).
//! * [`blk`], [`console`]: device types implemented with
//!   [`VirtioDevice`](virtio_backend::VirtioDevice): a RAM disk and an echo
//!   console, counting what they observe (request types and bytes, indirect
//!   chains, requests in flight, completion batches).
//!
//! The integration tests (`tests/`) and the `demo` example are built from
//! these pieces.
//!
//! # What it refuses to know about
//!
//! The device core's internals: everything goes through `virtio-backend`'s
//! public API, exactly as firmware would use it (the device types may read
//! the descriptor table through `GuestMemory` to observe chain layouts,
//! nothing more). Real hardware, hypervisors, interrupts and FF-A: the
//! doorbell is a function call or an atomic counter, an interrupt is a
//! message in the event ring or a bit in `InterruptStatus`. And
//! `virtio-drivers`' internals: only its public driver API is used, and its
//! quirks are recorded where they show (see
//! [`mmio_transport`] on `queue_unset`).
//!
//! This crate is test code: it allocates, spawns threads and panics freely.
//! None of that reaches `virtio-backend`, which stays `no_std` and heap-free.

pub mod arena;
pub mod blk;
pub mod console;
pub mod ffa;
pub mod loopback;
pub mod mmio_transport;
pub mod msg_transport;
pub mod transport;
pub mod xen;

/// The SCMI agent (crate `scmi-agent`), where the host tests name it.
pub use ::scmi_agent::agent as scmi_agent;
/// The Linux 6.12 probe (crate `scmi-agent`).
pub use ::scmi_agent::probe as scmi_probe;

use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Time since the first call: the clock [`scmi_agent::AgentOptions::now`]
/// wants on the host.
pub fn host_clock() -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// Aborts the process if not dropped within a time limit.
///
/// `virtio-drivers` waits for completions by spinning on the used ring
/// (`add_notify_wait_pop`), where no timeout can reach. A device bug that
/// loses a request would hang `cargo test`; with a watchdog it fails it.
#[derive(Debug)]
pub struct Watchdog {
    _armed: mpsc::Sender<()>,
}

impl Watchdog {
    /// Arms a watchdog named `what` for `limit`.
    pub fn new(what: &str, limit: Duration) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        let what = what.to_owned();
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                    eprintln!("watchdog: {what} still running after {limit:?}; aborting");
                    std::process::abort();
                }
            })
            .expect("spawn the watchdog");
        Watchdog { _armed: tx }
    }
}

/// Runs the SCMI tour over `agent` with 10 s of patience on the given
/// clock, checks that it passed (no failure, more than 40 checks) and
/// returns its report.
pub fn tour_passes<T, H, const CQ: usize, const EQ: usize>(
    agent: &mut ::scmi_agent::agent::ScmiAgent<T, H, CQ, EQ>,
    now: fn() -> Duration,
    idle: fn(),
) -> String
where
    T: virtio_drivers::transport::Transport,
    H: virtio_drivers::Hal,
{
    let mut out = String::new();
    let o = ::scmi_agent::tour::run(
        agent,
        &mut out,
        ::scmi_agent::tour::Patience {
            limit: Duration::from_secs(10),
            now,
            idle,
        },
    );
    assert_eq!(o.failed, 0, "{out}");
    assert!(o.passed > 40, "{o:?}\n{out}");
    out
}
