//! The `scmi` benchmark: instructions per SCMI round trip through the
//! virtio-scmi device on the host.
//!
//! The driver does what Linux 6.12's `transports/virtio.c` does for one
//! command: one device-readable buffer (header and parameters), one
//! device-writable buffer of 8 + 128 bytes, a kick, then it takes the used
//! buffer and checks the status. One command in flight at a time; cmdq of
//! 128 entries, `VIRTIO_SCMI_F_P2A_CHANNELS` negotiated and an eventq with
//! 16 posted buffers. Two ring setups ([`Setup`]):
//!
//! * split ring, `VERSION_1` only: the two buffers as a two-descriptor
//!   chain;
//! * what Linux's virtio core negotiates against this device's default
//!   offer: packed ring, `VIRTIO_F_INDIRECT_DESC` and `VIRTIO_F_EVENT_IDX`;
//!   Linux then puts the two buffers in an indirect table.
//!
//! Two commands, each measured three ways (one callgrind run each, only the
//! named `#[inline(never)]` function and its callees counted):
//!
//! * round trip ([`bench_scmi_round_trip`]): driver post, kick
//!   (`DeviceCore::queue_notify`), driver takes the used buffer and checks
//!   the reply;
//! * device ([`bench_scmi_device_kick`]): the kick alone, i.e. everything
//!   the device side does for the request (pop, read, serve, write,
//!   `add_used`, eventq check, notification decision);
//! * server ([`bench_scmi_server_handle`]): `Server::handle` alone on the
//!   same request bytes with the same 136-byte response space, on a server
//!   in the same state.
//!
//! device − server is the virtqueue and virtio-scmi glue; round trip −
//! device is the (mock) driver.

use virtio_backend::mock::{Buf, MockPackedQueue, MockSplitQueue};
use virtio_backend::spec::features::{EVENT_IDX, INDIRECT_DESC, RING_PACKED, VERSION_1};
use virtio_backend::spec::status::{ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK};
use virtio_backend::{DeviceCore, FixedWindow, GuestMemory as _, Interrupts};

use platform_host_vhost_user as builtin;
use scmi_server::config::{AgentConfig, Config};
use scmi_server::header::{Header, Status};
use scmi_server::protocols::{clock, sensor};
use scmi_server::{Handled, MAX_MESSAGE, Server};
use virtio_scmi::{CMDQ, EVENTQ, F_P2A_CHANNELS, VirtioScmi};

use crate::memory::Memory;

/// cmdq size (the device's default maximum, which Linux takes).
pub const CMDQ_SIZE: u16 = 128;
/// eventq size.
pub const EVENTQ_SIZE: u16 = 16;
/// Device-writable bytes per command: header, status and 128 bytes.
pub const RX_LEN: u32 = 8 + 128;
/// Round trips run (and checked) before the measured ones, through the
/// same functions.
pub const CHECK_ITERATIONS: u64 = 1000;

const CMDQ_RING: u64 = 0x1000;
const EVENTQ_RING: u64 = 0x4000;
const REQ_BUF: u64 = 0x8000;
const RESP_BUF: u64 = 0x8100;
const TABLE: u64 = 0x8200;
const EVENT_BUFS: u64 = 0x9000;

const _: () =
    assert!(CMDQ_RING + MockSplitQueue::<'_, FixedWindow<'_>>::footprint(CMDQ_SIZE) <= EVENTQ_RING);
const _: () =
    assert!(EVENTQ_RING + MockSplitQueue::<'_, FixedWindow<'_>>::footprint(EVENTQ_SIZE) <= REQ_BUF);
const _: () = assert!(REQ_BUF + 132 <= RESP_BUF);
const _: () = assert!(RESP_BUF + RX_LEN as u64 <= TABLE);
const _: () = assert!(TABLE + 32 <= EVENT_BUFS);
const _: () = assert!(
    CMDQ_RING + MockPackedQueue::<'_, FixedWindow<'_>>::footprint(CMDQ_SIZE) <= EVENTQ_RING
);

static CFG: Config = Config {
    vendor: "bench",
    sub_vendor: "virtio-scmi",
    implementation_version: 1,
    agents: &[AgentConfig {
        name: "linux",
        trusted: true,
        protocols: u32::MAX,
        devices: u32::MAX,
    }],
    devices: &[],
};

/// The agent the device serves.
const AGENT: u32 = 1;

type Srv = Server<builtin::Platform>;
type Core = DeviceCore<VirtioScmi<Srv>, 2>;

/// The command measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// SENSOR_READING_GET, synchronous, of sensor 0 (a temperature).
    SensorReadingGet,
    /// CLOCK_RATE_SET, synchronous, of clock 3 (a PLL), alternating
    /// between two rates so every command changes the rate.
    ClockRateSet,
}

/// How the driver sets up the rings and lays a command out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Split ring, `VERSION_1` only, a two-descriptor chain.
    Split,
    /// Packed ring, indirect descriptors and EVENT_IDX negotiated, the two
    /// buffers in an indirect table (what Linux does with this device).
    Packed,
}

impl Setup {
    /// Both setups.
    pub const ALL: [Setup; 2] = [Setup::Split, Setup::Packed];

    /// Worker command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Setup::Split => "split",
            Setup::Packed => "packed-indirect",
        }
    }

    /// Parses [`Setup::name`].
    pub fn from_name(s: &str) -> Option<Setup> {
        Setup::ALL.into_iter().find(|x| x.name() == s)
    }

    /// What the table calls it.
    pub fn label(self) -> &'static str {
        match self {
            Setup::Split => "split, 2 descriptors",
            Setup::Packed => "packed, indirect, EVENT_IDX",
        }
    }

    fn features(self) -> u64 {
        match self {
            Setup::Split => VERSION_1 | F_P2A_CHANNELS,
            Setup::Packed => VERSION_1 | F_P2A_CHANNELS | RING_PACKED | INDIRECT_DESC | EVENT_IDX,
        }
    }
}

/// Which part of the round trip is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Driver post, kick, driver completion.
    RoundTrip,
    /// The kick: the whole device side.
    Device,
    /// `Server::handle` alone.
    Server,
}

impl Command {
    /// Both commands.
    pub const ALL: [Command; 2] = [Command::SensorReadingGet, Command::ClockRateSet];

    /// Worker command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Command::SensorReadingGet => "sensor-reading-get",
            Command::ClockRateSet => "clock-rate-set",
        }
    }

    /// Parses [`Command::name`].
    pub fn from_name(s: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Spec name.
    pub fn label(self) -> &'static str {
        match self {
            Command::SensorReadingGet => "SENSOR_READING_GET",
            Command::ClockRateSet => "CLOCK_RATE_SET",
        }
    }

    /// The `i`-th request: header with token `i % 1024`, parameters.
    fn request(self, i: u64) -> Vec<u8> {
        let token = (i % 1024) as u16;
        let (protocol, msg, args): (u8, u8, Vec<u32>) = match self {
            // sensor_id, flags (synchronous).
            Command::SensorReadingGet => (sensor::ID, sensor::READING_GET, vec![0, 0]),
            // flags (synchronous, exact rate), clock_id, rate low, high.
            Command::ClockRateSet => {
                let rate: u64 = if i.is_multiple_of(2) {
                    1_224_000_000
                } else {
                    1_200_000_000
                };
                (
                    clock::ID,
                    clock::CLOCK_RATE_SET,
                    vec![0, 3, rate as u32, (rate >> 32) as u32],
                )
            }
        };
        let mut v = Header::command(protocol, msg, token)
            .encode()
            .to_le_bytes()
            .to_vec();
        for a in args {
            v.extend_from_slice(&a.to_le_bytes());
        }
        v
    }

    /// Length of the successful reply.
    fn reply_len(self) -> u32 {
        match self {
            // One reading: value and timestamp, 2 × 64 bits (SCMI v3.2
            // §4.7.2.8).
            Command::SensorReadingGet => 8 + 16,
            Command::ClockRateSet => 8,
        }
    }
}

impl Part {
    /// Every part, in table order.
    pub const ALL: [Part; 3] = [Part::RoundTrip, Part::Device, Part::Server];

    /// Worker command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Part::RoundTrip => "round-trip",
            Part::Device => "device",
            Part::Server => "server",
        }
    }

    /// Parses [`Part::name`].
    pub fn from_name(s: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.name() == s)
    }

    /// The measured function; callgrind's toggle pattern is `*<this>*`.
    pub fn measured_fn(self) -> &'static str {
        match self {
            Part::RoundTrip => "bench_scmi_round_trip",
            Part::Device => "bench_scmi_device_kick",
            Part::Server => "bench_scmi_server_handle",
        }
    }
}

/// The driver's side of the cmdq (never measured except in the round
/// trip, where it is part of what a round trip costs).
pub struct Driver<'m> {
    mem: &'m FixedWindow<'m>,
    cmdq: Ring<'m>,
}

/// A driver-side ring of either layout.
enum Ring<'m> {
    Split(MockSplitQueue<'m, FixedWindow<'m>>),
    Packed(Box<MockPackedQueue<'m, FixedWindow<'m>>>),
}

impl<'m> Ring<'m> {
    fn new(mem: &'m FixedWindow<'m>, base: u64, size: u16, setup: Setup) -> Self {
        match setup {
            Setup::Split => Ring::Split(MockSplitQueue::new(mem, base, size)),
            Setup::Packed => Ring::Packed(Box::new(MockPackedQueue::new(mem, base, size))),
        }
    }

    fn addresses(&self) -> (u64, u64, u64) {
        match self {
            Ring::Split(q) => q.addresses(),
            Ring::Packed(q) => q.addresses(),
        }
    }

    /// Posts `bufs`: a chain on the split ring, an indirect table on the
    /// packed one (Linux uses one whenever it may and has two buffers).
    fn add(&mut self, bufs: &[Buf]) -> u16 {
        match self {
            Ring::Split(q) => q.add_chain(bufs),
            Ring::Packed(q) => q.add_indirect(TABLE, bufs),
        }
    }

    fn pop_used(&mut self) -> Option<(u16, u32)> {
        match self {
            Ring::Split(q) => q.pop_used().map(|(id, len)| (id as u16, len)),
            Ring::Packed(q) => q.pop_used(),
        }
    }
}

impl Driver<'_> {
    /// Writes the request and posts it with the response buffer; returns
    /// the head (split) or buffer id (packed).
    fn post(&mut self, request: &[u8]) -> u16 {
        self.mem
            .write(REQ_BUF, request)
            .expect("request buffer inside memory");
        self.cmdq.add(&[
            (REQ_BUF, request.len() as u32, false),
            (RESP_BUF, RX_LEN, true),
        ])
    }

    /// Takes the used buffer; returns `(id, used length, status)`.
    fn complete(&mut self) -> Option<(u16, u32, i32)> {
        let (id, len) = self.cmdq.pop_used()?;
        let mut st = [0u8; 4];
        self.mem.read(RESP_BUF + 4, &mut st).ok()?;
        Some((id, len, i32::from_le_bytes(st)))
    }
}

/// Measured: one whole round trip.
#[inline(never)]
pub fn bench_scmi_round_trip(
    core: &mut Core,
    driver: &mut Driver<'_>,
    request: &[u8],
) -> Option<(u16, u32, i32)> {
    let head = driver.post(request);
    let irq = core.queue_notify(driver.mem, CMDQ);
    let done = driver.complete()?;
    (irq.queue(CMDQ) && done.0 == head).then_some(done)
}

/// Measured: the kick, i.e. the device side of one command.
#[inline(never)]
pub fn bench_scmi_device_kick(core: &mut Core, mem: &FixedWindow<'_>) -> Interrupts {
    core.queue_notify(mem, CMDQ)
}

/// Measured: the SCMI server alone.
#[inline(never)]
pub fn bench_scmi_server_handle(server: &mut Srv, request: &[u8], response: &mut [u8]) -> Handled {
    server.handle(AGENT, request, response)
}

/// Brings the device up as Linux does and posts the eventq buffers.
fn bring_up<'m>(mem: &'m FixedWindow<'m>, setup: Setup) -> Result<(Core, Driver<'m>), String> {
    let device = VirtioScmi::new(Server::new(&CFG, builtin::PLATFORM), AGENT);
    let mut core = DeviceCore::new(device);
    let features = setup.features();
    let err = |what: &str, e| format!("bring-up, {what}: {e:?}");
    core.set_status(ACKNOWLEDGE | DRIVER)
        .map_err(|e| err("status", e))?;
    core.set_driver_feature_block(0, features as u32)
        .map_err(|e| err("features", e))?;
    core.set_driver_feature_block(1, (features >> 32) as u32)
        .map_err(|e| err("features", e))?;
    core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK)
        .map_err(|e| err("FEATURES_OK", e))?;
    let cmdq = Ring::new(mem, CMDQ_RING, CMDQ_SIZE, setup);
    let (d, a, u) = cmdq.addresses();
    core.set_vqueue(mem, CMDQ, CMDQ_SIZE, d, a, u)
        .map_err(|e| err("cmdq", e))?;
    let mut eventq = Ring::new(mem, EVENTQ_RING, EVENTQ_SIZE, setup);
    let (d, a, u) = eventq.addresses();
    core.set_vqueue(mem, EVENTQ, EVENTQ_SIZE, d, a, u)
        .map_err(|e| err("eventq", e))?;
    core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
        .map_err(|e| err("DRIVER_OK", e))?;
    for i in 0..u64::from(EVENTQ_SIZE) {
        let buf = [(EVENT_BUFS + i * RX_LEN as u64, RX_LEN, true)];
        match &mut eventq {
            Ring::Split(q) => q.add_chain(&buf),
            Ring::Packed(q) => q.add_chain(&buf),
        };
    }
    let _ = core.queue_notify(mem, EVENTQ);
    Ok((core, Driver { mem, cmdq }))
}

/// Runs `CHECK_ITERATIONS + iterations` commands, counting `part`. Every
/// reply is checked against a reference server fed the same commands: the
/// device's reply bytes, in the round-trip and device parts, must equal
/// what `Server::handle` answers.
pub fn run(
    mem: &Memory,
    command: Command,
    setup: Setup,
    part: Part,
    iterations: u64,
) -> Result<(), String> {
    mem.clear();
    let window = mem.window();
    let (mut core, mut driver) = bring_up(&window, setup)?;
    let mut reference: Srv = Server::new(&CFG, builtin::PLATFORM);
    reference.set_p2a(AGENT, true);
    let mut server: Srv = Server::new(&CFG, builtin::PLATFORM);
    server.set_p2a(AGENT, true);
    let mut want = [0u8; MAX_MESSAGE];
    let mut got = [0u8; MAX_MESSAGE];
    for i in 0..CHECK_ITERATIONS + iterations {
        let request = command.request(i);
        let Handled::Response(n) = reference.handle(AGENT, &request, &mut want) else {
            return Err(format!(
                "{}: reference refused the request",
                command.label()
            ));
        };
        let want = &want[..n];
        let fail = |what: &str| {
            format!(
                "{} #{i} ({}, {}): {what}",
                command.label(),
                setup.name(),
                part.name()
            )
        };
        let status = i32::from_le_bytes(want[4..8].try_into().expect("8-byte reply"));
        if status != Status::Success.code() || n as u32 != command.reply_len() {
            return Err(fail(&format!(
                "reference answered status {status}, {n} bytes"
            )));
        }
        let len = match part {
            Part::RoundTrip => {
                let (_, len, st) = bench_scmi_round_trip(&mut core, &mut driver, &request)
                    .ok_or_else(|| fail("no completion or no notification"))?;
                if st != Status::Success.code() {
                    return Err(fail(&format!("status {st}")));
                }
                len
            }
            Part::Device => {
                let head = driver.post(&request);
                let irq = bench_scmi_device_kick(&mut core, &window);
                let (id, len, st) = driver.complete().ok_or_else(|| fail("no completion"))?;
                if id != head || !irq.queue(CMDQ) || st != Status::Success.code() {
                    return Err(fail(&format!("completion {id}/{len}/{st}, irq {irq:?}")));
                }
                len
            }
            Part::Server => {
                match bench_scmi_server_handle(&mut server, &request, &mut got[..RX_LEN as usize]) {
                    Handled::Response(n) if got[..n] == *want => continue,
                    _ => return Err(fail("server alone answered differently")),
                }
            }
        };
        if len as usize != n {
            return Err(fail(&format!("used length {len}, want {n}")));
        }
        window
            .read(RESP_BUF, &mut got[..n])
            .map_err(|e| fail(&format!("{e:?}")))?;
        if got[..n] != *want {
            return Err(fail("device reply differs from the reference"));
        }
    }
    if core.needs_reset() {
        return Err("the device set DEVICE_NEEDS_RESET".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_agrees_with_the_reference() {
        let mem = Memory::new().unwrap();
        for c in Command::ALL {
            for s in Setup::ALL {
                for p in Part::ALL {
                    run(&mem, c, s, p, 3000).unwrap();
                }
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for c in Command::ALL {
            assert_eq!(Command::from_name(c.name()), Some(c));
        }
        for p in Part::ALL {
            assert_eq!(Part::from_name(p.name()), Some(p));
        }
        for s in Setup::ALL {
            assert_eq!(Setup::from_name(s.name()), Some(s));
        }
    }
}
