//! The SCMI requests of one run: every protocol the built-in SoC serves,
//! replies up to the 128-byte limit, one error path and one delayed
//! response. Argument layouts follow SCMI v3.2 (the server's tests in
//! `scmi/tests/server/` show the same encodings).

use platform_host_vhost_user::ids;
use scmi_server::Status;
use scmi_server::protocols::{
    PROTOCOL_ATTRIBUTES, PROTOCOL_VERSION, base, clock, perf, power, reset, sensor, system, voltage,
};

use crate::driver::Command;

/// What the reply payload (after header and status) must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Exactly this many bytes.
    Exact(u32),
    /// At least this many bytes: a page filled until the next entry would
    /// not fit the 128 bytes the driver offered.
    FullPage(u32),
}

/// One request and what its reply must be.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// Protocol and message, for the report.
    pub name: &'static str,
    /// The command.
    pub command: Command<'static>,
    /// Expected status.
    pub status: Status,
    /// Expected payload size (only checked on success; an error reply is
    /// exactly header and status).
    pub payload: Payload,
    /// Expected first payload word, where it is fixed.
    pub first_word: Option<u32>,
    /// Expected delayed response on the eventq: its payload words.
    pub delayed: Option<&'static [u32]>,
}

/// A command with `rx` reply payload bytes.
const fn cmd(protocol: u8, msg: u8, args: &'static [u32], rx: u32) -> Command<'static> {
    Command {
        protocol,
        msg,
        args,
        rx,
    }
}

/// A request answered with SUCCESS and `payload`.
const fn ok(name: &'static str, command: Command<'static>, payload: Payload) -> Request {
    Request {
        name,
        command,
        status: Status::Success,
        payload,
        first_word: None,
        delayed: None,
    }
}

/// `r` whose first payload word must be `w`.
const fn first(r: Request, w: u32) -> Request {
    Request {
        first_word: Some(w),
        ..r
    }
}

/// The largest reply payload the driver offers (Linux's limit).
pub const RX: u32 = 128;

const GPU_CORE_RATE: u64 = 600_000_000;

/// Every request of a run, in order (state-changing ones before the reads
/// that check them).
pub static REQUESTS: &[Request] = &[
    // Base (0x10).
    first(
        ok(
            "base PROTOCOL_VERSION",
            cmd(base::ID, PROTOCOL_VERSION, &[], 4),
            Payload::Exact(4),
        ),
        base::VERSION,
    ),
    ok(
        "base PROTOCOL_ATTRIBUTES",
        cmd(base::ID, PROTOCOL_ATTRIBUTES, &[], 4),
        Payload::Exact(4),
    ),
    ok(
        "base DISCOVER_LIST_PROTOCOLS",
        cmd(base::ID, base::DISCOVER_LIST_PROTOCOLS, &[0], RX),
        // The count, then seven protocol ids packed four to a word.
        Payload::Exact(12),
    ),
    first(
        ok(
            "base DISCOVER_AGENT",
            cmd(base::ID, base::DISCOVER_AGENT, &[u32::MAX], 20),
            Payload::Exact(20),
        ),
        1,
    ),
    Request {
        status: Status::NotFound,
        ..ok(
            "base unknown message 0x3f",
            cmd(base::ID, 0x3f, &[], RX),
            Payload::Exact(0),
        )
    },
    Request {
        status: Status::NotSupported,
        ..ok(
            "unknown protocol 0x42",
            cmd(0x42, PROTOCOL_VERSION, &[], RX),
            Payload::Exact(0),
        )
    },
    // Power domains (0x11).
    first(
        ok(
            "power PROTOCOL_VERSION",
            cmd(power::ID, PROTOCOL_VERSION, &[], 4),
            Payload::Exact(4),
        ),
        power::VERSION,
    ),
    ok(
        "power DOMAIN_ATTRIBUTES",
        cmd(power::ID, power::DOMAIN_ATTRIBUTES, &[ids::power::GPU], RX),
        Payload::Exact(20),
    ),
    ok(
        "power STATE_SET (sync, on)",
        cmd(
            power::ID,
            power::STATE_SET,
            &[0, ids::power::GPU, power::ON],
            RX,
        ),
        Payload::Exact(0),
    ),
    first(
        ok(
            "power STATE_GET",
            cmd(power::ID, power::STATE_GET, &[ids::power::GPU], RX),
            Payload::Exact(4),
        ),
        power::ON,
    ),
    // System power (0x12).
    first(
        ok(
            "system PROTOCOL_VERSION",
            cmd(system::ID, PROTOCOL_VERSION, &[], 4),
            Payload::Exact(4),
        ),
        system::VERSION,
    ),
    // Performance domains (0x13).
    first(
        ok(
            "perf PROTOCOL_VERSION",
            cmd(perf::ID, PROTOCOL_VERSION, &[], 4),
            Payload::Exact(4),
        ),
        perf::VERSION,
    ),
    ok(
        "perf DESCRIBE_LEVELS (full page)",
        cmd(
            perf::ID,
            perf::DESCRIBE_LEVELS,
            &[ids::perf::CPU_BIG, 0],
            RX,
        ),
        Payload::FullPage(20),
    ),
    ok(
        "perf LEVEL_GET",
        cmd(perf::ID, perf::LEVEL_GET, &[ids::perf::CPU_LITTLE], RX),
        Payload::Exact(4),
    ),
    // Clocks (0x14).
    first(
        ok(
            "clock PROTOCOL_VERSION",
            cmd(clock::ID, PROTOCOL_VERSION, &[], 4),
            Payload::Exact(4),
        ),
        clock::VERSION,
    ),
    ok(
        "clock DESCRIBE_RATES (full page)",
        cmd(
            clock::ID,
            clock::CLOCK_DESCRIBE_RATES,
            &[ids::clock::CPU_CLUSTER0_CORE, 0],
            RX,
        ),
        Payload::FullPage(8),
    ),
    ok(
        "clock RATE_SET (sync)",
        cmd(
            clock::ID,
            clock::CLOCK_RATE_SET,
            &[
                0,
                ids::clock::GPU_CORE,
                GPU_CORE_RATE as u32,
                (GPU_CORE_RATE >> 32) as u32,
            ],
            RX,
        ),
        Payload::Exact(0),
    ),
    first(
        ok(
            "clock RATE_GET",
            cmd(
                clock::ID,
                clock::CLOCK_RATE_GET,
                &[ids::clock::GPU_CORE],
                RX,
            ),
            Payload::Exact(8),
        ),
        GPU_CORE_RATE as u32,
    ),
    // Sensors (0x15).
    first(
        ok(
            "sensor PROTOCOL_VERSION",
            cmd(sensor::ID, PROTOCOL_VERSION, &[], 4),
            Payload::Exact(4),
        ),
        sensor::VERSION,
    ),
    ok(
        "sensor DESCRIPTION_GET (full page)",
        cmd(sensor::ID, sensor::DESCRIPTION_GET, &[0], RX),
        Payload::FullPage(52),
    ),
    ok(
        "sensor READING_GET (sync)",
        cmd(
            sensor::ID,
            sensor::READING_GET,
            &[ids::sensor::SOC_POWER, 0],
            RX,
        ),
        Payload::Exact(16),
    ),
    // Reset domains (0x16).
    first(
        ok(
            "reset PROTOCOL_VERSION",
            cmd(reset::ID, PROTOCOL_VERSION, &[], 4),
            Payload::Exact(4),
        ),
        reset::VERSION,
    ),
    ok(
        "reset DOMAIN_ATTRIBUTES",
        cmd(
            reset::ID,
            reset::RESET_DOMAIN_ATTRIBUTES,
            &[ids::reset::GPU],
            RX,
        ),
        Payload::Exact(24),
    ),
    ok(
        "reset RESET (sync, autonomous)",
        cmd(
            reset::ID,
            reset::RESET,
            &[ids::reset::UART0, reset::FLAG_AUTONOMOUS, 0],
            RX,
        ),
        Payload::Exact(0),
    ),
    Request {
        delayed: Some(&[0, ids::reset::GPU]),
        ..ok(
            "reset RESET (async, delayed response)",
            cmd(
                reset::ID,
                reset::RESET,
                &[
                    ids::reset::GPU,
                    reset::FLAG_AUTONOMOUS | reset::FLAG_ASYNC,
                    0,
                ],
                RX,
            ),
            Payload::Exact(0),
        )
    },
    // Voltage domains (0x17).
    first(
        ok(
            "voltage PROTOCOL_VERSION",
            cmd(voltage::ID, PROTOCOL_VERSION, &[], 4),
            Payload::Exact(4),
        ),
        voltage::VERSION,
    ),
    ok(
        "voltage DESCRIBE_LEVELS (full page)",
        cmd(
            voltage::ID,
            voltage::VOLTAGE_DESCRIBE_LEVELS,
            &[ids::voltage::VDD_NPU_CORE_DYNAMIC_SCALING, 0],
            RX,
        ),
        Payload::FullPage(4),
    ),
    ok(
        "voltage LEVEL_GET",
        cmd(
            voltage::ID,
            voltage::VOLTAGE_LEVEL_GET,
            &[ids::voltage::VDD_CPU_BIG],
            RX,
        ),
        Payload::Exact(4),
    ),
];
