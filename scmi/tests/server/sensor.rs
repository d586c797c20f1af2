//! Tests of the sensor protocol against the simulated platform.

extern crate std;
use std::string::String;
use std::vec::Vec;

use super::{call, words};
use platform_host_vhost_user as builtin;
use platform_host_vhost_user::ids::sensor as ids;
use platform_sim::sensor::timestamp_at;

static SENSORS: &[SensorDesc] = builtin::TABLES.sensor.sensors;
const COUNT: usize = builtin::TABLES.sensor.sensors.len();
use scmi_server::config::{AgentConfig, Config, DeviceConfig};
use scmi_server::header::{Header, MsgType, Status};
use scmi_server::protocols::base;
use scmi_server::protocols::sensor::{self as proto, Interval, Intervals, Round, SensorDesc};
use scmi_server::server::Server;

const P: u8 = proto::ID;

/// Agent 1 ("linux", trusted) owns the "gpu" device: gpu_temp and the
/// accelerometer. Agent 2 ("rtos") cannot see them.
static CONFIG: Config = Config {
    vendor: "rust-scmi",
    sub_vendor: "sim",
    implementation_version: 1,
    agents: &[
        AgentConfig {
            name: "linux",
            trusted: true,
            protocols: 0xff,
            devices: 0b1,
        },
        AgentConfig {
            name: "rtos",
            trusted: false,
            protocols: 0xff,
            devices: 0b0,
        },
    ],
    devices: &[DeviceConfig {
        name: "gpu",
        resources: &[(0x15, ids::GPU_TEMP), (0x15, ids::ACCELEROMETER)],
    }],
};

fn server() -> Server<builtin::Platform, 2, 8> {
    Server::new(&CONFIG, builtin::PLATFORM)
}

const NOT_FOUND: i32 = Status::NotFound.code();
const NOT_SUPPORTED: i32 = Status::NotSupported.code();
const INVALID: i32 = Status::InvalidParameters.code();
const PROTOCOL_ERROR: i32 = Status::ProtocolError.code();
const GENERIC_ERROR: i32 = Status::GenericError.code();

fn w(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap())
}

fn i64_at(b: &[u8], off: usize) -> i64 {
    i64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).expect("NUL-terminated");
    String::from_utf8(b[..end].to_vec()).unwrap()
}

/// A signed 64-bit value as the two argument words.
fn lohi(v: i64) -> [u32; 2] {
    [v as u32, (v >> 32) as u32]
}

/// The next platform-to-agent message: header and body.
fn event<const A: usize, const E: usize>(
    s: &mut Server<builtin::Platform, A, E>,
    agent: u32,
) -> Option<(Header, Vec<u8>)> {
    let mut buf = [0u8; scmi_server::MAX_MESSAGE];
    let n = s.next_event(agent, &mut buf)?;
    let h = Header::decode(u32::from_le_bytes(buf[..4].try_into().unwrap())).unwrap();
    Some((h, buf[4..n].to_vec()))
}

/// Descriptor size by the rule of Linux 6.12 sensors.c: 28, +4 power with
/// extended attributes, +20 resolution and range only without axes.
fn linux_desc_size(low: u32, high: u32) -> usize {
    let axes = if high & 1 << 8 != 0 {
        (high >> 16) & 0x3f
    } else {
        0
    };
    match (low & 1 << 8 != 0, axes) {
        (false, _) => 28,
        (true, 0) => 52,
        (true, _) => 32,
    }
}

fn table_desc_size(d: &SensorDesc) -> usize {
    28 + if d.ext.is_some() {
        if d.axes.is_empty() { 24 } else { 4 }
    } else {
        0
    }
}

/// sensor_config word for SENSOR_CONFIG_SET.
fn cfg(secs: u16, exp: i8, round: u32, ts: bool, enable: bool) -> u32 {
    Interval::new(secs, exp).config_bits() | round << 9 | u32::from(ts) << 1 | u32::from(enable)
}

const ROUND_DOWN: u32 = 0;
const ROUND_UP: u32 = 1;
const ROUND_AUTO: u32 = 2;

#[test]
fn the_simulated_platform_is_rich_enough() {
    const { assert!(COUNT >= 16) };
    let mut names: Vec<&str> = SENSORS.iter().map(|d| d.name).collect();
    assert!(
        names
            .iter()
            .all(|n| !n.is_empty() && n.len() <= proto::MAX_NAME)
    );
    assert!(names.iter().filter(|n| n.len() > 15).count() >= 3);
    names.sort();
    names.dedup();
    assert_eq!(names.len(), COUNT, "unique names");
    for (class, _) in [(2, "°C"), (5, "V"), (6, "A"), (7, "W"), (8, "J")] {
        assert!(SENSORS.iter().any(|d| d.class == class));
    }
    assert!(SENSORS.iter().any(|d| d.axes.len() == 3 && d.class == 0x59));
    for d in SENSORS {
        // Every reading fits a delayed response / update notification.
        assert!(d.readings() <= 7, "{}", d.name);
        assert!(usize::from(d.trip_points) <= platform_sim::sensor::MAX_TRIPS);
        if d.update_notify {
            assert!(d.intervals.any(), "{} updates need an interval", d.name);
        }
    }
    // Everything starts enabled (hwmon never enables a sensor).
    let mut s = server();
    for id in 0..COUNT as u32 {
        let (st, v) = call(&mut s, 1, P, proto::CONFIG_GET, &[id], 4);
        assert_eq!(st, 0);
        assert_eq!(w(&v, 0) & 1, 1, "sensor {id} enabled");
    }
}

#[test]
fn version_attributes_and_statistics_region() {
    let mut s = server();
    let (st, v) = call(&mut s, 1, P, 0x0, &[], 4);
    assert_eq!((st, words(&v)), (0, std::vec![0x0003_0001]));
    // §4.7.2.3 without a P2A channel: no async reads can complete.
    let (st, v) = call(&mut s, 1, P, 0x1, &[], 128);
    assert_eq!((st, words(&v)), (0, std::vec![COUNT as u32, 0, 0, 0]));
    s.set_p2a(1, true);
    s.platform.sensor.stats_region = (0x1_2345_6780, 0x100);
    let (st, v) = call(&mut s, 1, P, 0x1, &[], 16);
    assert_eq!(st, 0);
    assert_eq!(words(&v), [4 << 16 | COUNT as u32, 0x2345_6780, 0x1, 0x100]);
    // Counts are platform totals, the same for an agent that sees less.
    let (_, v) = call(&mut s, 2, P, 0x1, &[], 16);
    assert_eq!(w(&v, 0) & 0xffff, COUNT as u32);
    // A buffer too small for the fixed reply.
    assert_eq!(call(&mut s, 1, P, 0x1, &[], 12).0, GENERIC_ERROR);
}

#[test]
fn message_attributes_tell_the_truth() {
    let mut s = server();
    let implemented = [
        0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xA, 0xB, 0xC, 0xD, 0x10,
    ];
    for p2a in [false, true] {
        s.set_p2a(1, p2a);
        for id in 0..=0x100u32 {
            let (st, v) = call(&mut s, 1, P, 0x2, &[id], 4);
            let want = if !implemented.contains(&id) {
                NOT_FOUND
            } else if (id == 0x4 || id == 0xB) && !p2a {
                NOT_SUPPORTED
            } else {
                0
            };
            assert_eq!(st, want, "message {id:#x}, p2a {p2a}");
            if st == 0 {
                assert_eq!(words(&v), [0]);
            }
        }
    }
    // Unknown commands sent directly.
    for id in [0x0E, 0x0F, 0x11, 0x3F, 0xFF] {
        assert_eq!(call(&mut s, 1, P, id, &[0, 0], 128).0, NOT_FOUND);
    }
    // NEGOTIATE: Linux 6.12 sends 3.0 when it sees a newer minor.
    assert_eq!(call(&mut s, 1, P, 0x10, &[0x3_0000], 0).0, 0);
    assert_eq!(call(&mut s, 1, P, 0x10, &[0x3_0001], 0).0, 0);
    assert_eq!(call(&mut s, 1, P, 0x10, &[0x3_0002], 0).0, NOT_SUPPORTED);
    assert_eq!(call(&mut s, 1, P, 0x10, &[0x2_0000], 0).0, NOT_SUPPORTED);
}

/// Walks SENSOR_DESCRIPTION_GET as Linux does, checking every field and
/// that each page is as full as the agent's buffer allows.
fn walk_descriptions(
    s: &mut Server<builtin::Platform, 2, 8>,
    agent: u32,
    rx: usize,
) -> Vec<(u32, u32)> {
    let mut attrs = Vec::new();
    let mut index = 0u32;
    let mut pages = 0;
    loop {
        let (st, v) = call(s, agent, P, proto::DESCRIPTION_GET, &[index], rx);
        assert_eq!(st, 0, "index {index}");
        pages += 1;
        let flags = w(&v, 0);
        let (returned, remaining) = (flags & 0xfff, flags >> 16);
        assert_eq!(flags >> 12 & 0xf, 0, "reserved bits");
        assert!(returned > 0);
        assert_eq!(
            index + returned + remaining,
            COUNT as u32,
            "exact remaining"
        );
        let mut off = 4;
        for k in 0..returned {
            let d = &v[off..];
            let id = w(d, 0);
            assert_eq!(id, index + k, "id == index");
            let (low, high) = (w(d, 1), w(d, 2));
            let t = &SENSORS[id as usize];
            assert_eq!(cstr(&d[12..28]), &t.name[..t.name.len().min(15)]);
            let size = linux_desc_size(low, high);
            assert_eq!(size, table_desc_size(t));
            if let Some(e) = t.ext {
                assert_eq!(w(d, 7), e.power_uw);
                if t.axes.is_empty() {
                    assert_eq!(w(d, 8), (e.range.resolution_exp as u32 & 0x1f) << 27 | 1);
                    assert_eq!(i64_at(d, 36), e.range.min);
                    assert_eq!(i64_at(d, 44), e.range.max);
                }
            }
            attrs.push((low, high));
            off += size;
        }
        assert_eq!(off, v.len(), "nothing after the last descriptor");
        assert!(v.len() <= rx);
        index += returned;
        if remaining == 0 {
            break;
        }
        // The page is full: the next descriptor would not have fitted.
        assert!(off + table_desc_size(&SENSORS[index as usize]) > rx);
    }
    assert!(pages > 1 || rx > 700);
    attrs
}

#[test]
fn descriptions_pack_like_linux_and_fill_the_buffer() {
    let mut s = server();
    for p2a in [false, true] {
        s.set_p2a(1, p2a);
        let attrs = walk_descriptions(&mut s, 1, 128);
        assert_eq!(attrs.len(), COUNT);
        let async_bit = u32::from(p2a) << 31;
        let update_bit = u32::from(p2a) << 30;
        // cpu_little_temp: 2 trip points, ext attrs, timestamps in µs
        // (exp -6), updates only with P2A; m°C (scale -3), class 2.
        assert_eq!(attrs[0].0, update_bit | (0x1a << 10) | 1 << 9 | 1 << 8 | 2);
        assert_eq!(attrs[0].1, 0x1d << 11 | 0x02);
        // Long name: extended-name bit.
        assert_eq!(attrs[1].0 & 1 << 29, 1 << 29);
        assert_eq!(attrs[0].0 & 1 << 29, 0);
        // ddr_temp: async only with P2A.
        assert_eq!(attrs[ids::DDR_TEMP as usize].0 & 1 << 31, async_bit);
        assert_eq!(attrs[ids::GPU_TEMP as usize].0, 2, "just 2 trip points");
        // The accelerometer: 3 axes, multi-axis bit, m/s² (0x59), and a
        // 32-byte descriptor (power only).
        let (lo, hi) = attrs[ids::ACCELEROMETER as usize];
        assert_eq!(hi, 3 << 16 | 0x1d << 11 | 1 << 8 | 0x59);
        assert_eq!(lo & (1 << 31 | 1 << 8), async_bit | 1 << 8);
        assert_eq!(linux_desc_size(lo, hi), 32);
        // 7-axis sensor.
        assert_eq!(attrs[ids::CPU_CORE_TEMPERATURES as usize].1 >> 16 & 0x3f, 7);
        // A positive scale (kHz).
        assert_eq!(attrs[ids::REF_CLOCK_MONITOR as usize].1, 3 << 11 | 0x14);
    }
    // Other buffer sizes: always full pages, never an overflow.
    for rx in [56, 60, 80, 100, 124, 200, 400, 1000] {
        walk_descriptions(&mut s, 1, rx);
    }
}

#[test]
fn descriptions_with_any_buffer_size() {
    let mut s = server();
    for rx in 0..=300usize {
        for index in [0u32, 3, 15, 19] {
            let (st, v) = call(&mut s, 1, P, proto::DESCRIPTION_GET, &[index], rx);
            // Greedy fit computed independently.
            let mut room = rx.saturating_sub(4);
            let mut n = 0;
            for d in &SENSORS[index as usize..] {
                if table_desc_size(d) > room || rx < 4 {
                    break;
                }
                room -= table_desc_size(d);
                n += 1;
            }
            if n == 0 {
                assert_eq!(st, GENERIC_ERROR, "rx {rx} index {index}");
                continue;
            }
            assert_eq!(st, 0);
            assert!(v.len() <= rx);
            assert_eq!(
                w(&v, 0),
                ((COUNT - index as usize - n) as u32) << 16 | n as u32
            );
        }
    }
    assert_eq!(
        call(&mut s, 1, P, proto::DESCRIPTION_GET, &[COUNT as u32], 128).0,
        INVALID
    );
    assert_eq!(
        call(&mut s, 1, P, proto::DESCRIPTION_GET, &[u32::MAX], 128).0,
        INVALID
    );
    assert_eq!(
        call(&mut s, 1, P, proto::DESCRIPTION_GET, &[], 128).0,
        PROTOCOL_ERROR
    );
    // Agent 2 is described every sensor too (ids stay contiguous).
    assert_eq!(walk_descriptions(&mut s, 2, 128).len(), COUNT);
}

#[test]
fn extended_names() {
    let mut s = server();
    for (id, d) in SENSORS.iter().enumerate() {
        let (st, v) = call(&mut s, 1, P, proto::NAME_GET, &[id as u32], 128);
        if d.name.len() > 15 {
            assert_eq!(st, 0);
            assert_eq!(v.len(), 68);
            assert_eq!(w(&v, 0), 0, "flags");
            assert_eq!(cstr(&v[4..]), d.name);
        } else {
            assert_eq!(st, NOT_SUPPORTED, "{}: short name", d.name);
        }
    }
    let (_, v) = call(
        &mut s,
        1,
        P,
        proto::NAME_GET,
        &[ids::CPU_BIG_CLUSTER_TEMPERATURE],
        68,
    );
    assert_eq!(cstr(&v[4..]), "cpu_big_cluster_temperature");
    assert_eq!(
        call(
            &mut s,
            1,
            P,
            proto::NAME_GET,
            &[ids::CPU_BIG_CLUSTER_TEMPERATURE],
            67
        )
        .0,
        GENERIC_ERROR
    );
    assert_eq!(
        call(&mut s, 1, P, proto::NAME_GET, &[COUNT as u32], 128).0,
        NOT_FOUND
    );
    assert_eq!(
        call(&mut s, 1, P, proto::NAME_GET, &[], 128).0,
        PROTOCOL_ERROR
    );
}

#[test]
fn readings_follow_the_clock() {
    let mut s = server();
    let read = |s: &mut Server<builtin::Platform, 2, 8>, id: u32| {
        let (st, v) = call(s, 1, P, proto::READING_GET, &[id, 0], 128);
        assert_eq!(st, 0, "sensor {id}");
        v
    };
    // cpu_little_temp: 35 °C rising to 75 °C over 10 s, back over 10 s.
    let v = read(&mut s, ids::CPU_LITTLE_TEMP);
    assert_eq!(words(&v), [35_000, 0, 0, 0]);
    s.tick(5_000);
    let v = read(&mut s, ids::CPU_LITTLE_TEMP);
    assert_eq!(v.len(), 16);
    assert_eq!(i64_at(&v, 0), 55_000);
    assert_eq!(u64_at(&v, 8), 5_000_000, "µs timestamp");
    s.tick(10_000);
    assert_eq!(i64_at(&read(&mut s, ids::CPU_LITTLE_TEMP), 0), 75_000);
    s.tick(15_000);
    assert_eq!(i64_at(&read(&mut s, ids::CPU_LITTLE_TEMP), 0), 55_000);
    // Below zero: -20 °C at t = 0 of its 30 s cycle, -8 °C at 15 s + 3 s.
    s.tick(30_000);
    assert_eq!(
        i64_at(&read(&mut s, ids::OUTDOOR_PROBE_TEMPERATURE), 0),
        -20_000
    );
    s.tick(33_000);
    assert_eq!(
        i64_at(&read(&mut s, ids::OUTDOOR_PROBE_TEMPERATURE), 0),
        -8_000
    );
    // No timestamp support: 0.
    assert_eq!(u64_at(&read(&mut s, ids::GPU_TEMP), 8), 0);
    // Energy only rises: 2500 mJ per second.
    assert_eq!(i64_at(&read(&mut s, ids::SOC_ENERGY), 0), 82_500);
    assert_eq!(
        i64_at(&read(&mut s, ids::BATTERY_ENERGY_CONSUMED_TOTAL), 0),
        99
    );
    // Gyroscope timestamps in ms (exponent -3).
    assert_eq!(u64_at(&read(&mut s, ids::GYROSCOPE), 8), 33_000);
    // Multi-axis: one 16-byte reading per axis, in axis order.
    let v = read(&mut s, ids::ACCELEROMETER);
    assert_eq!(v.len(), 48);
    assert_eq!(i64_at(&v, 32), 9_807, "z is gravity");
    for k in 0..3 {
        assert_eq!(
            Some(i64_at(&v, 16 * k)),
            builtin::TABLES
                .sensor
                .value_at(ids::ACCELEROMETER, k, 33_000)
        );
        assert_eq!(u64_at(&v, 16 * k + 8), 33_000_000);
    }
    let v = read(&mut s, ids::CPU_CORE_TEMPERATURES);
    assert_eq!(v.len(), 112);
    assert_eq!(
        call(
            &mut s,
            1,
            P,
            proto::READING_GET,
            &[ids::CPU_CORE_TEMPERATURES, 0],
            111
        )
        .0,
        GENERIC_ERROR
    );
    // Every sensor, many times: readings are the model's values.
    let mut t = 33_000;
    for _ in 0..80 {
        t += 777;
        s.tick(t);
        for id in 0..COUNT as u32 {
            let v = read(&mut s, id);
            let d = &SENSORS[id as usize];
            assert_eq!(v.len(), 16 * d.readings());
            for k in 0..d.readings() {
                assert_eq!(
                    Some(i64_at(&v, 16 * k)),
                    builtin::TABLES.sensor.value_at(id, k, t)
                );
                let ts = d.timestamp_exp.map_or(0, |e| timestamp_at(e, t));
                assert_eq!(u64_at(&v, 16 * k + 8), ts);
            }
        }
    }
    // Time does not run backwards.
    s.tick(1_000);
    assert_eq!(s.platform.sensor.now_ms(), t);
}

#[test]
fn reading_errors() {
    let mut s = server();
    let r = |s: &mut Server<builtin::Platform, 2, 8>, args: &[u32]| {
        call(s, 1, P, proto::READING_GET, args, 128).0
    };
    assert_eq!(r(&mut s, &[COUNT as u32, 0]), NOT_FOUND);
    assert_eq!(r(&mut s, &[0, 2]), INVALID);
    assert_eq!(r(&mut s, &[0, 0x8000_0000]), INVALID);
    assert_eq!(r(&mut s, &[0]), PROTOCOL_ERROR);
    // Async without a P2A channel, or on a sensor without async support.
    assert_eq!(r(&mut s, &[ids::DDR_TEMP, 1]), NOT_SUPPORTED);
    s.set_p2a(1, true);
    assert_eq!(r(&mut s, &[ids::CPU_LITTLE_TEMP, 1]), NOT_SUPPORTED);
    // A hardware fault.
    s.platform.sensor.set_fault(ids::SOC_POWER, true);
    assert_eq!(
        r(&mut s, &[ids::SOC_POWER, 0]),
        Status::HardwareError.code()
    );
    s.platform.sensor.set_fault(ids::SOC_POWER, false);
    assert_eq!(r(&mut s, &[ids::SOC_POWER, 0]), 0);
    // §4.7.2.12: a disabled sensor cannot be read.
    assert_eq!(
        call(&mut s, 1, P, proto::CONFIG_SET, &[ids::SOC_POWER, 0], 0).0,
        0
    );
    assert_eq!(r(&mut s, &[ids::SOC_POWER, 0]), PROTOCOL_ERROR);
    assert_eq!(r(&mut s, &[ids::SOC_POWER, 1]), NOT_SUPPORTED);
    assert_eq!(
        call(&mut s, 1, P, proto::CONFIG_SET, &[ids::SOC_POWER, 1], 0).0,
        0
    );
    assert_eq!(r(&mut s, &[ids::SOC_POWER, 0]), 0);
}

#[test]
fn async_reads_answer_with_a_delayed_response() {
    let mut s = server();
    s.set_p2a(1, true);
    s.tick(12_345);
    let (st, v) = call(&mut s, 1, P, proto::READING_GET, &[ids::DDR_TEMP, 1], 128);
    assert_eq!((st, v.len()), (0, 0), "the immediate reply is the status");
    let (h, body) = event(&mut s, 1).expect("delayed response");
    assert_eq!(h.msg_type, MsgType::DelayedResponse);
    assert_eq!(
        (h.msg_id, h.protocol, h.token),
        (proto::READING_GET, P, 0x155)
    );
    // §4.7.3.1: status, sensor_id, readings (no timestamps on ddr_temp).
    assert_eq!(body.len(), 24);
    assert_eq!(words(&body[..8]), [0, ids::DDR_TEMP]);
    assert_eq!(
        Some(i64_at(&body, 8)),
        builtin::TABLES.sensor.value_at(ids::DDR_TEMP, 0, 12_345)
    );
    assert_eq!(u64_at(&body, 16), 0);
    assert!(event(&mut s, 1).is_none());
    // Multi-axis async read: 3 timestamped readings.
    assert_eq!(
        call(
            &mut s,
            1,
            P,
            proto::READING_GET,
            &[ids::ACCELEROMETER, 1],
            128
        )
        .0,
        0
    );
    let (_, body) = event(&mut s, 1).unwrap();
    assert_eq!(body.len(), 8 + 48);
    for k in 0..3 {
        assert_eq!(
            Some(i64_at(&body, 8 + 16 * k)),
            builtin::TABLES
                .sensor
                .value_at(ids::ACCELEROMETER, k, 12_345)
        );
        assert_eq!(u64_at(&body, 16 + 16 * k), 12_345_000);
    }
    // An async-capable sensor still reads synchronously.
    let (st, v) = call(&mut s, 1, P, proto::READING_GET, &[ids::GPU_POWER, 0], 128);
    assert_eq!((st, v.len()), (0, 16));
    assert!(event(&mut s, 1).is_none());
    // A fault is reported in the delayed response.
    s.platform.sensor.set_fault(ids::GPU_POWER, true);
    assert_eq!(
        call(&mut s, 1, P, proto::READING_GET, &[ids::GPU_POWER, 1], 128).0,
        0
    );
    let (h, body) = event(&mut s, 1).unwrap();
    assert_eq!(h.msg_type, MsgType::DelayedResponse);
    assert_eq!(words(&body), [Status::HardwareError.code() as u32]);
}

#[test]
fn async_reads_are_refused_when_the_outbox_is_full() {
    let mut s: Server<builtin::Platform, 2, 4> = Server::new(&CONFIG, builtin::PLATFORM);
    s.set_p2a(1, true);
    s.set_p2a(2, true);
    let read = |s: &mut Server<builtin::Platform, 2, 4>, agent: u32, id: u32| {
        call(s, agent, P, proto::READING_GET, &[id, 1], 128).0
    };
    // Agent 1 never drains: after its share of the outbox, BUSY.
    let mut accepted = 0;
    while read(&mut s, 1, ids::GPU_POWER) == 0 {
        accepted += 1;
        assert!(accepted < 8, "the outbox is bounded");
    }
    assert!(accepted >= 1);
    assert_eq!(read(&mut s, 1, ids::GPU_POWER), Status::Busy.code());
    // Every accepted request has its delayed response; none was lost.
    assert!(event(&mut s, 1).is_some());
    assert_eq!(read(&mut s, 1, ids::GPU_POWER), 0);
    for _ in 0..accepted {
        let (h, body) = event(&mut s, 1).unwrap();
        assert_eq!(h.msg_type, MsgType::DelayedResponse);
        assert_eq!(words(&body[..8]), [0, ids::GPU_POWER]);
    }
    assert!(event(&mut s, 1).is_none());
    // Agent 2 reads asynchronously too.
    assert_eq!(read(&mut s, 2, ids::DDR_TEMP), 0);
    assert_eq!(words(&event(&mut s, 2).unwrap().1[..8]), [0, ids::DDR_TEMP]);
}

#[test]
fn axis_descriptions() {
    let mut s = server();
    // Accelerometer: 48-byte descriptors (extended attributes): 2 fit.
    let (st, v) = call(
        &mut s,
        1,
        P,
        proto::AXIS_DESCRIPTION_GET,
        &[ids::ACCELEROMETER, 0],
        128,
    );
    assert_eq!(st, 0);
    assert_eq!(w(&v, 0), 1 << 26 | 2);
    assert_eq!(v.len(), 4 + 2 * 48);
    for k in 0..2 {
        let d = &v[4 + 48 * k..];
        assert_eq!(w(d, 0), k as u32);
        assert_eq!(w(d, 1), 1 << 8, "extended attributes, short name");
        assert_eq!(w(d, 2), 0x1d << 11 | 0x59);
        assert_eq!(cstr(&d[12..28]), ["x", "y"][k]);
        assert_eq!(w(d, 7), 0x1d << 27 | 1, "resolution 1e-3");
        assert_eq!(i64_at(d, 32), -78_453);
        assert_eq!(i64_at(d, 40), 78_453);
    }
    let (st, v) = call(
        &mut s,
        1,
        P,
        proto::AXIS_DESCRIPTION_GET,
        &[ids::ACCELEROMETER, 2],
        128,
    );
    assert_eq!((st, w(&v, 0), v.len()), (0, 1, 52));
    assert_eq!(w(&v, 1), 2);
    // Gyroscope: 28-byte descriptors, long names flagged [9].
    let (st, v) = call(
        &mut s,
        1,
        P,
        proto::AXIS_DESCRIPTION_GET,
        &[ids::GYROSCOPE, 0],
        128,
    );
    assert_eq!((st, w(&v, 0), v.len()), (0, 3, 4 + 3 * 28));
    assert_eq!(w(&v, 2), 1 << 9);
    assert_eq!(cstr(&v[16..32]), "angular_rate_ab");
    // Seven axes walked at the Linux size: 2 + 2 + 2 + 1.
    let mut index = 0;
    let mut remaining_seen = Vec::new();
    loop {
        let (st, v) = call(
            &mut s,
            1,
            P,
            proto::AXIS_DESCRIPTION_GET,
            &[ids::CPU_CORE_TEMPERATURES, index],
            128,
        );
        assert_eq!(st, 0);
        let (n, rem) = (w(&v, 0) & 0x3f, w(&v, 0) >> 26);
        assert_eq!(w(&v, 0) >> 6 & 0xfffff, 0);
        assert_eq!(v.len(), 4 + 48 * n as usize);
        assert_eq!(index + n + rem, 7);
        remaining_seen.push(rem);
        index += n;
        if rem == 0 {
            break;
        }
    }
    assert_eq!(remaining_seen, [5, 3, 1, 0]);
    // Errors.
    let e = |s: &mut Server<builtin::Platform, 2, 8>, args: &[u32], rx| {
        call(s, 1, P, proto::AXIS_DESCRIPTION_GET, args, rx).0
    };
    assert_eq!(e(&mut s, &[ids::CPU_LITTLE_TEMP, 0], 128), NOT_SUPPORTED);
    assert_eq!(e(&mut s, &[ids::ACCELEROMETER, 3], 128), INVALID);
    assert_eq!(e(&mut s, &[COUNT as u32, 0], 128), NOT_FOUND);
    assert_eq!(e(&mut s, &[ids::GYROSCOPE, 0], 31), GENERIC_ERROR);
    assert_eq!(e(&mut s, &[ids::GYROSCOPE, 0], 32), 0);
    assert_eq!(e(&mut s, &[ids::ACCELEROMETER, 0], 51), GENERIC_ERROR);
    assert_eq!(e(&mut s, &[ids::ACCELEROMETER], 128), PROTOCOL_ERROR);
    // Described to an agent that cannot otherwise use the sensor: Linux
    // aborts the whole protocol if this fails.
    assert_eq!(
        call(
            &mut s,
            2,
            P,
            proto::AXIS_DESCRIPTION_GET,
            &[ids::ACCELEROMETER, 0],
            128
        )
        .0,
        0
    );
}

#[test]
fn axis_names() {
    let mut s = server();
    // One 68-byte entry per 128-byte reply.
    for k in 0..3u32 {
        let (st, v) = call(
            &mut s,
            1,
            P,
            proto::AXIS_NAME_GET,
            &[ids::GYROSCOPE, k],
            128,
        );
        assert_eq!(st, 0);
        assert_eq!(w(&v, 0), (2 - k) << 26 | 1);
        assert_eq!(v.len(), 72);
        assert_eq!(w(&v, 1), k);
        assert_eq!(
            cstr(&v[8..]),
            SENSORS[ids::GYROSCOPE as usize].axes[k as usize].name
        );
    }
    // A bigger buffer takes two.
    let (st, v) = call(
        &mut s,
        1,
        P,
        proto::AXIS_NAME_GET,
        &[ids::GYROSCOPE, 0],
        200,
    );
    assert_eq!((st, w(&v, 0), v.len()), (0, 1 << 26 | 2, 140));
    assert_eq!(cstr(&v[76..]), "angular_rate_about_y_axis");
    let (_, v) = call(
        &mut s,
        1,
        P,
        proto::AXIS_NAME_GET,
        &[ids::CPU_CORE_TEMPERATURES, 6],
        128,
    );
    assert_eq!(
        (w(&v, 0), cstr(&v[8..])),
        (1, "core6_big_core_hotspot".into())
    );
    let e = |s: &mut Server<builtin::Platform, 2, 8>, a: u32, args: &[u32], rx| {
        call(s, a, P, proto::AXIS_NAME_GET, args, rx).0
    };
    assert_eq!(e(&mut s, 1, &[ids::GYROSCOPE, 0], 71), GENERIC_ERROR);
    assert_eq!(e(&mut s, 1, &[ids::GYROSCOPE, 3], 128), INVALID);
    assert_eq!(e(&mut s, 1, &[ids::SOC_POWER, 0], 128), NOT_SUPPORTED);
    assert_eq!(e(&mut s, 1, &[COUNT as u32, 0], 128), NOT_FOUND);
    assert_eq!(e(&mut s, 2, &[ids::ACCELEROMETER, 0], 128), NOT_FOUND);
    assert_eq!(e(&mut s, 1, &[ids::ACCELEROMETER, 0], 128), 0);
}

#[test]
fn update_interval_lists() {
    let mut s = server();
    // 40 discrete intervals: 31 fit in 128 bytes, then 9.
    let (st, v) = call(
        &mut s,
        1,
        P,
        proto::LIST_UPDATE_INTERVALS,
        &[ids::FAN0_TACH, 0],
        128,
    );
    assert_eq!(st, 0);
    assert_eq!(w(&v, 0), 9 << 16 | 31);
    assert_eq!(v.len(), 128);
    for k in 0..31 {
        assert_eq!(
            w(&v, 1 + k),
            (25 * (k as u32 + 1)) << 5 | 0x1d,
            "{k} × 25 ms"
        );
    }
    let (st, v) = call(
        &mut s,
        1,
        P,
        proto::LIST_UPDATE_INTERVALS,
        &[ids::FAN0_TACH, 31],
        128,
    );
    assert_eq!((st, w(&v, 0), v.len()), (0, 9, 40));
    assert_eq!(w(&v, 9), 1000 << 5 | 0x1d);
    // Every size and start: exact counts, never past the buffer.
    for rx in 0..=200usize {
        for index in [0u32, 1, 17, 39] {
            let (st, v) = call(
                &mut s,
                1,
                P,
                proto::LIST_UPDATE_INTERVALS,
                &[ids::FAN0_TACH, index],
                rx,
            );
            let n = (rx.saturating_sub(4) / 4).min(40 - index as usize);
            if rx < 4 || n == 0 {
                assert_eq!(st, GENERIC_ERROR);
                continue;
            }
            assert_eq!(st, 0);
            assert_eq!(
                w(&v, 0),
                ((40 - index as usize - n) as u32) << 16 | n as u32
            );
            assert_eq!(v.len(), 4 + 4 * n);
        }
    }
    // A segment: {low, high, step} with [12] set, 3 returned, 0 remaining.
    let (st, v) = call(
        &mut s,
        1,
        P,
        proto::LIST_UPDATE_INTERVALS,
        &[ids::ACCELEROMETER, 0],
        128,
    );
    assert_eq!(st, 0);
    assert_eq!(
        words(&v),
        [1 << 12 | 3, 1 << 5 | 0x1d, 1 << 5, 1 << 5 | 0x1d]
    );
    let e = |s: &mut Server<builtin::Platform, 2, 8>, args: &[u32]| {
        call(s, 1, P, proto::LIST_UPDATE_INTERVALS, args, 128).0
    };
    assert_eq!(e(&mut s, &[ids::ACCELEROMETER, 1]), INVALID);
    assert_eq!(e(&mut s, &[ids::FAN0_TACH, 40]), INVALID);
    assert_eq!(e(&mut s, &[ids::GPU_TEMP, 0]), NOT_SUPPORTED);
    assert_eq!(e(&mut s, &[COUNT as u32, 0]), NOT_FOUND);
    assert_eq!(e(&mut s, &[ids::FAN0_TACH]), PROTOCOL_ERROR);
}

fn config_of(s: &mut Server<builtin::Platform, 2, 8>, agent: u32, id: u32) -> u32 {
    let (st, v) = call(s, agent, P, proto::CONFIG_GET, &[id], 4);
    assert_eq!(st, 0);
    assert_eq!(v.len(), 4);
    w(&v, 0)
}

fn set_config(s: &mut Server<builtin::Platform, 2, 8>, agent: u32, id: u32, word: u32) -> i32 {
    call(s, agent, P, proto::CONFIG_SET, &[id, word], 0).0
}

#[test]
fn config_get_and_set_with_rounding() {
    let mut s = server();
    // Defaults: enabled, timestamps where supported, the longest interval.
    assert_eq!(config_of(&mut s, 1, ids::CPU_LITTLE_TEMP), 1 << 16 | 0b11);
    assert_eq!(config_of(&mut s, 1, ids::GPU_TEMP), 0b01);
    assert_eq!(
        config_of(&mut s, 1, ids::FAN0_TACH),
        1000 << 16 | 0x1d << 11 | 0b01
    );
    assert_eq!(config_of(&mut s, 1, ids::ACCELEROMETER), 1 << 16 | 0b11);
    let t = ids::CPU_LITTLE_TEMP;
    // The list is 10, 100, 500 ms and 1 s. 300 ms rounded each way.
    let cases = [
        (300, -3, ROUND_UP, Interval::new(500, -3)),
        (300, -3, ROUND_DOWN, Interval::new(100, -3)),
        (300, -3, ROUND_AUTO, Interval::new(100, -3)),
        (350, -3, ROUND_AUTO, Interval::new(500, -3)),
        (3, -1, ROUND_AUTO, Interval::new(100, -3)),
        // Beyond either end: the nearest end.
        (5, 0, ROUND_UP, Interval::new(1, 0)),
        (1, -3, ROUND_DOWN, Interval::new(10, -3)),
        // Exactly supported, written another way.
        (1000, -3, ROUND_DOWN, Interval::new(1, 0)),
        // Round bit [10] wins over [9].
        (350, -3, ROUND_AUTO | ROUND_UP, Interval::new(500, -3)),
    ];
    for (secs, exp, round, want) in cases {
        assert_eq!(
            set_config(&mut s, 1, t, cfg(secs, exp, round, true, true)),
            0
        );
        assert_eq!(
            config_of(&mut s, 1, t),
            want.config_bits() | 0b11,
            "{secs}e{exp}"
        );
    }
    // Segment 1 ms..1 s by 1 ms.
    let a = ids::ACCELEROMETER;
    let cases = [
        (2500, -6, ROUND_UP, Interval::new(3, -3)),
        (2500, -6, ROUND_DOWN, Interval::new(2, -3)),
        (2500, -6, ROUND_AUTO, Interval::new(2, -3)),
        (2600, -6, ROUND_AUTO, Interval::new(3, -3)),
        (5, -4, ROUND_DOWN, Interval::new(1, -3)),
        (2, 0, ROUND_UP, Interval::new(1, 0)),
        (250, -3, ROUND_UP, Interval::new(250, -3)),
    ];
    for (secs, exp, round, want) in cases {
        assert_eq!(
            set_config(&mut s, 1, a, cfg(secs, exp, round, true, true)),
            0
        );
        assert_eq!(
            config_of(&mut s, 1, a),
            want.config_bits() | 0b11,
            "{secs}e{exp}"
        );
    }
    // A zero interval field leaves the interval alone; timestamps off.
    assert_eq!(set_config(&mut s, 1, a, 0b01), 0);
    assert_eq!(
        config_of(&mut s, 1, a),
        Interval::new(250, -3).config_bits() | 0b01
    );
    let (_, v) = call(&mut s, 1, P, proto::READING_GET, &[a, 0], 128);
    assert_eq!(u64_at(&v, 8), 0, "timestamps disabled");
    // Errors.
    assert_eq!(
        set_config(&mut s, 1, ids::GPU_TEMP, 0b11),
        NOT_SUPPORTED,
        "no timestamps"
    );
    assert_eq!(
        set_config(&mut s, 1, ids::GPU_TEMP, cfg(1, 0, 0, false, true)),
        NOT_SUPPORTED
    );
    for reserved in [1 << 2, 1 << 5, 1 << 8] {
        assert_eq!(set_config(&mut s, 1, t, 1 | reserved), INVALID);
    }
    assert_eq!(set_config(&mut s, 1, COUNT as u32, 1), NOT_FOUND);
    assert_eq!(
        call(&mut s, 1, P, proto::CONFIG_SET, &[t], 0).0,
        PROTOCOL_ERROR
    );
    assert_eq!(
        call(&mut s, 1, P, proto::CONFIG_GET, &[COUNT as u32], 4).0,
        NOT_FOUND
    );
    assert_eq!(
        call(&mut s, 1, P, proto::CONFIG_GET, &[], 4).0,
        PROTOCOL_ERROR
    );
    // Disable and enable.
    assert_eq!(set_config(&mut s, 1, ids::VDD_CPU_LITTLE, 0), 0);
    assert_eq!(config_of(&mut s, 1, ids::VDD_CPU_LITTLE), 0);
    // BASE_RESET_AGENT_CONFIGURATION reverts what the agent set.
    assert_eq!(
        call(&mut s, 1, 0x10, base::RESET_AGENT_CONFIGURATION, &[1, 0], 0).0,
        0
    );
    assert_eq!(config_of(&mut s, 1, ids::VDD_CPU_LITTLE), 1);
    assert_eq!(config_of(&mut s, 1, a), 1 << 16 | 0b11);
    assert_eq!(config_of(&mut s, 1, t), 1 << 16 | 0b11);
}

#[test]
fn reset_reverts_only_the_agents_own_settings() {
    let mut s = server();
    let t = ids::CPU_LITTLE_TEMP;
    assert_eq!(set_config(&mut s, 2, t, cfg(10, -3, 0, true, true)), 0);
    assert_eq!(set_config(&mut s, 1, ids::SOC_POWER, 0), 0);
    // Resetting agent 1 leaves agent 2's setting.
    assert_eq!(
        call(&mut s, 1, 0x10, base::RESET_AGENT_CONFIGURATION, &[1, 0], 0).0,
        0
    );
    assert_eq!(
        config_of(&mut s, 1, t),
        Interval::new(10, -3).config_bits() | 0b11
    );
    assert_eq!(config_of(&mut s, 1, ids::SOC_POWER) & 1, 1);
    assert_eq!(
        call(&mut s, 1, 0x10, base::RESET_AGENT_CONFIGURATION, &[2, 0], 0).0,
        0
    );
    assert_eq!(config_of(&mut s, 1, t), 1 << 16 | 0b11);
}

fn trip(
    s: &mut Server<builtin::Platform, 2, 8>,
    agent: u32,
    id: u32,
    tp: u32,
    mode: u32,
    v: i64,
) -> i32 {
    let [lo, hi] = lohi(v);
    call(
        s,
        agent,
        P,
        proto::TRIP_POINT_CONFIG,
        &[id, tp << 4 | mode, lo, hi],
        0,
    )
    .0
}

fn expect_trip(s: &mut Server<builtin::Platform, 2, 8>, agent: u32, id: u32, tp: u32, up: bool) {
    let (h, body) = event(s, agent).expect("trip point event");
    assert_eq!(h.msg_type, MsgType::Notification);
    assert_eq!((h.protocol, h.msg_id), (P, proto::TRIP_POINT_EVENT));
    // §4.7.4.1: exactly 12 bytes (Linux checks the size).
    assert_eq!(words(&body), [0, id, u32::from(up) << 16 | tp]);
}

#[test]
fn trip_points_fire_on_crossings() {
    let mut s = server();
    s.set_p2a(1, true);
    s.set_p2a(2, true);
    let t = ids::CPU_LITTLE_TEMP; // 35 °C + 4 m°C per ms for 10 s, then down.
    assert_eq!(trip(&mut s, 1, t, 0, 3, 50_000), 0);
    assert_eq!(trip(&mut s, 1, t, 1, 1, 60_000), 0);
    assert_eq!(
        call(&mut s, 1, P, proto::TRIP_POINT_NOTIFY, &[t, 1], 0).0,
        0
    );
    s.tick(2_000); // 43 °C
    assert!(event(&mut s, 1).is_none());
    s.tick(3_750); // exactly 50 °C: reached counts as upward.
    expect_trip(&mut s, 1, t, 0, true);
    assert!(event(&mut s, 1).is_none());
    s.tick(4_000); // 51 °C: already above.
    assert!(event(&mut s, 1).is_none());
    s.tick(10_000); // 75 °C: trip 1 upward.
    expect_trip(&mut s, 1, t, 1, true);
    s.tick(17_000); // 47 °C: trip 0 downward; trip 1 is upward only.
    expect_trip(&mut s, 1, t, 0, false);
    assert!(event(&mut s, 1).is_none());
    assert!(event(&mut s, 2).is_none(), "agent 2 did not subscribe");
    // Both agents subscribed: both told.
    assert_eq!(
        call(&mut s, 2, P, proto::TRIP_POINT_NOTIFY, &[t, 1], 0).0,
        0
    );
    s.tick(24_000); // 51 °C again.
    expect_trip(&mut s, 1, t, 0, true);
    expect_trip(&mut s, 2, t, 0, true);
    // Unsubscribed: silence.
    assert_eq!(
        call(&mut s, 1, P, proto::TRIP_POINT_NOTIFY, &[t, 0], 0).0,
        0
    );
    s.tick(37_000); // 47 °C.
    assert!(event(&mut s, 1).is_none());
    expect_trip(&mut s, 2, t, 0, false);
    // Negative thresholds: outdoor probe from -20 °C upward.
    let o = ids::OUTDOOR_PROBE_TEMPERATURE;
    s.tick(60_000); // -20 °C
    assert_eq!(trip(&mut s, 1, o, 1, 1, -10_000), 0);
    assert_eq!(
        call(&mut s, 1, P, proto::TRIP_POINT_NOTIFY, &[o, 1], 0).0,
        0
    );
    s.tick(62_000); // -12 °C
    assert!(event(&mut s, 1).is_none());
    s.tick(63_000); // -8 °C
    expect_trip(&mut s, 1, o, 1, true);
    // A disabled sensor does not sample, so it does not trip.
    assert_eq!(set_config(&mut s, 1, o, 0), 0);
    s.tick(89_000); // outdoor would be at +16 °C; cpu_little_temp at 71 °C.
    assert!(event(&mut s, 1).is_none());
    expect_trip(&mut s, 2, t, 0, true);
    expect_trip(&mut s, 2, t, 1, true);
    // Reconfiguring replaces the single setting of a trip point.
    assert_eq!(trip(&mut s, 1, t, 0, 0, 50_000), 0);
    assert_eq!(
        call(&mut s, 1, P, proto::TRIP_POINT_NOTIFY, &[t, 1], 0).0,
        0
    );
    s.tick(100_000);
    assert!(event(&mut s, 1).is_none());
    assert!(event(&mut s, 2).is_none());
}

#[test]
fn trip_point_errors_and_permissions() {
    let mut s = server();
    let t = ids::CPU_LITTLE_TEMP;
    // Without a P2A channel there are no notifications.
    assert_eq!(
        call(&mut s, 1, P, proto::TRIP_POINT_NOTIFY, &[t, 1], 0).0,
        NOT_SUPPORTED
    );
    s.set_p2a(1, true);
    s.set_p2a(2, true);
    let n = |s: &mut Server<builtin::Platform, 2, 8>, a: u32, args: &[u32]| {
        call(s, a, P, proto::TRIP_POINT_NOTIFY, args, 0).0
    };
    assert_eq!(n(&mut s, 1, &[t, 2]), INVALID);
    assert_eq!(
        n(&mut s, 1, &[ids::VDD_CPU_LITTLE, 1]),
        NOT_SUPPORTED,
        "no trip points"
    );
    assert_eq!(n(&mut s, 1, &[COUNT as u32, 1]), NOT_FOUND);
    assert_eq!(n(&mut s, 1, &[t]), PROTOCOL_ERROR);
    assert_eq!(n(&mut s, 2, &[ids::GPU_TEMP, 1]), NOT_FOUND, "invisible");
    assert_eq!(n(&mut s, 1, &[ids::GPU_TEMP, 1]), 0);
    // Config errors.
    assert_eq!(
        trip(&mut s, 1, t, 2, 3, 0),
        INVALID,
        "only trip points 0 and 1"
    );
    assert_eq!(
        trip(&mut s, 1, ids::CPU_BIG_CLUSTER_TEMPERATURE, 3, 3, 0),
        0,
        "4 trip points"
    );
    assert_eq!(trip(&mut s, 1, ids::VDD_CPU_LITTLE, 0, 3, 0), NOT_SUPPORTED);
    assert_eq!(trip(&mut s, 1, COUNT as u32, 0, 3, 0), NOT_FOUND);
    assert_eq!(trip(&mut s, 2, ids::GPU_TEMP, 0, 3, 0), NOT_FOUND);
    for reserved in [1 << 2, 1 << 3, 1 << 12, 1 << 31] {
        assert_eq!(
            call(
                &mut s,
                1,
                P,
                proto::TRIP_POINT_CONFIG,
                &[t, reserved | 1, 0, 0],
                0
            )
            .0,
            INVALID
        );
    }
    assert_eq!(
        call(&mut s, 1, P, proto::TRIP_POINT_CONFIG, &[t, 1, 0], 0).0,
        PROTOCOL_ERROR
    );
    // Agent 1's trip point on the gpu sensor never reaches agent 2.
    assert_eq!(trip(&mut s, 1, ids::GPU_TEMP, 0, 3, 50_000), 0);
    s.tick(6_000); // gpu_temp 38 °C -> 53 °C
    let (_, body) = event(&mut s, 1).expect("agent 1 is told");
    assert_eq!(words(&body), [0, ids::GPU_TEMP, 1 << 16]);
    assert!(event(&mut s, 2).is_none());
    // Resetting agent 1 drops its subscriptions and its trip points.
    assert_eq!(
        call(&mut s, 1, 0x10, base::RESET_AGENT_CONFIGURATION, &[1, 0], 0).0,
        0
    );
    assert_eq!(n(&mut s, 1, &[ids::GPU_TEMP, 1]), 0);
    s.tick(12_000); // back down to 38 °C: the trip point is gone.
    assert!(event(&mut s, 1).is_none());
}

#[test]
fn continuous_updates_at_the_update_interval() {
    let mut s = server();
    let a = ids::ACCELEROMETER;
    assert_eq!(
        call(&mut s, 1, P, proto::CONTINUOUS_UPDATE_NOTIFY, &[a, 1], 0).0,
        NOT_SUPPORTED
    );
    s.set_p2a(1, true);
    s.set_p2a(2, true);
    assert_eq!(set_config(&mut s, 1, a, cfg(100, -3, 0, true, true)), 0);
    assert_eq!(
        call(&mut s, 1, P, proto::CONTINUOUS_UPDATE_NOTIFY, &[a, 1], 0).0,
        0
    );
    s.tick(50);
    assert!(event(&mut s, 1).is_none());
    for t in [100u64, 350] {
        s.tick(t);
        let (h, body) = event(&mut s, 1).expect("update");
        assert_eq!(h.msg_type, MsgType::Notification);
        assert_eq!((h.protocol, h.msg_id), (P, proto::SENSOR_UPDATE));
        // §4.7.4.2: agent_id, sensor_id, 3 readings.
        assert_eq!(body.len(), 8 + 48);
        assert_eq!(words(&body[..8]), [0, a]);
        for k in 0..3 {
            assert_eq!(
                Some(i64_at(&body, 8 + 16 * k)),
                builtin::TABLES.sensor.value_at(a, k, t)
            );
            assert_eq!(u64_at(&body, 16 + 16 * k), t * 1000);
        }
        // Several intervals between ticks make one update.
        assert!(event(&mut s, 1).is_none());
    }
    s.tick(399);
    assert!(event(&mut s, 1).is_none());
    // A scalar sensor: one reading.
    let c = ids::CPU_LITTLE_CURR;
    assert_eq!(set_config(&mut s, 1, c, cfg(20, -3, 0, true, true)), 0);
    assert_eq!(
        call(&mut s, 1, P, proto::CONTINUOUS_UPDATE_NOTIFY, &[c, 1], 0).0,
        0
    );
    s.tick(400); // both the accelerometer (100 ms) and the current (20 ms).
    let (_, b1) = event(&mut s, 1).unwrap();
    let (_, b2) = event(&mut s, 1).unwrap();
    assert_eq!(w(&b1, 1), c);
    assert_eq!(b1.len(), 24);
    assert_eq!(
        Some(i64_at(&b1, 8)),
        builtin::TABLES.sensor.value_at(c, 0, 400)
    );
    assert_eq!(w(&b2, 1), a);
    // Agent 2 subscribed to nothing; it also cannot see the accelerometer.
    assert!(event(&mut s, 2).is_none());
    assert_eq!(
        call(&mut s, 2, P, proto::CONTINUOUS_UPDATE_NOTIFY, &[a, 1], 0).0,
        NOT_FOUND
    );
    // Disabled or unsubscribed: no updates.
    assert_eq!(set_config(&mut s, 1, a, 0), 0);
    assert_eq!(
        call(&mut s, 1, P, proto::CONTINUOUS_UPDATE_NOTIFY, &[c, 0], 0).0,
        0
    );
    s.tick(1_000);
    assert!(event(&mut s, 1).is_none());
    // Errors.
    let n = |s: &mut Server<builtin::Platform, 2, 8>, args: &[u32]| {
        call(s, 1, P, proto::CONTINUOUS_UPDATE_NOTIFY, args, 0).0
    };
    assert_eq!(n(&mut s, &[ids::GPU_TEMP, 1]), NOT_SUPPORTED);
    assert_eq!(n(&mut s, &[ids::CPU_CORE_TEMPERATURES, 1]), NOT_SUPPORTED);
    assert_eq!(n(&mut s, &[a, 3]), INVALID);
    assert_eq!(n(&mut s, &[COUNT as u32, 1]), NOT_FOUND);
    assert_eq!(n(&mut s, &[a]), PROTOCOL_ERROR);
}

#[test]
fn agents_cannot_touch_sensors_they_cannot_see() {
    let mut s = server();
    let g = ids::GPU_TEMP;
    for (msg, args) in [
        (proto::READING_GET, &[g, 0][..]),
        (proto::CONFIG_GET, &[g][..]),
        (proto::CONFIG_SET, &[g, 1][..]),
        (proto::TRIP_POINT_CONFIG, &[g, 1, 0, 0][..]),
        (proto::LIST_UPDATE_INTERVALS, &[ids::ACCELEROMETER, 0][..]),
        (proto::NAME_GET, &[g][..]),
        (proto::READING_GET, &[ids::ACCELEROMETER, 0][..]),
    ] {
        assert_eq!(
            call(&mut s, 2, P, msg, args, 128).0,
            NOT_FOUND,
            "message {msg:#x}"
        );
    }
    // Agent 1 changes its sensor; agent 2 sees neither the change nor the
    // sensor, and its own sensors are unaffected.
    assert_eq!(set_config(&mut s, 1, g, 0), 0);
    assert_eq!(
        call(&mut s, 2, P, proto::READING_GET, &[ids::SOC_POWER, 0], 128).0,
        0
    );
    // The trusted agent grants the device: now agent 2 sees the sensor.
    assert_eq!(
        call(&mut s, 1, 0x10, base::SET_DEVICE_PERMISSIONS, &[2, 0, 1], 0).0,
        0
    );
    assert_eq!(config_of(&mut s, 2, g), 0, "disabled by agent 1");
    assert_eq!(set_config(&mut s, 2, g, 1), 0);
    assert_eq!(call(&mut s, 2, P, proto::READING_GET, &[g, 0], 128).0, 0);
    // Denying the sensor protocol on the device hides it again.
    assert_eq!(
        call(
            &mut s,
            1,
            0x10,
            base::SET_PROTOCOL_PERMISSIONS,
            &[2, 0, P as u32, 0],
            0
        )
        .0,
        0
    );
    assert_eq!(
        call(&mut s, 2, P, proto::READING_GET, &[g, 0], 128).0,
        NOT_FOUND
    );
}

/// Runs the Linux 6.12 sensors.c initialisation: VERSION, ATTRIBUTES,
/// the two MESSAGE_ATTRIBUTES probes, then the description iterator with
/// its nested interval, name and axis iterators. Returns the names.
fn linux_init(s: &mut Server<builtin::Platform, 2, 8>, agent: u32) -> Vec<String> {
    assert_eq!(call(s, agent, P, 0x0, &[], 128).0, 0);
    let (st, v) = call(s, agent, P, 0x1, &[], 16);
    assert_eq!(st, 0);
    let num = (w(&v, 0) & 0xffff) as usize;
    let update_cmd = call(
        s,
        agent,
        P,
        0x2,
        &[proto::CONTINUOUS_UPDATE_NOTIFY as u32],
        4,
    )
    .0 == 0;
    let _trip_cmd = call(s, agent, P, 0x2, &[proto::TRIP_POINT_NOTIFY as u32], 4).0 == 0;
    let mut names = Vec::new();
    let mut index = 0usize;
    loop {
        let (st, v) = call(s, agent, P, proto::DESCRIPTION_GET, &[index as u32], 128);
        assert_eq!(st, 0, "fatal for Linux");
        let returned = usize::from(u16::from_le_bytes([v[0], v[1]]));
        let remaining = usize::from(u16::from_le_bytes([v[2], v[3]]));
        assert!(returned <= num - index, "No. of resources can't exceed");
        let mut off = 4;
        for _ in 0..returned {
            let d = &v[off..];
            let (id, low, high) = (w(d, 0), w(d, 1), w(d, 2));
            let mut name = cstr(&d[12..28]);
            // Intervals: optional, but a segment must be 3 + 0.
            let (st, iv) = call(s, agent, P, proto::LIST_UPDATE_INTERVALS, &[id, 0], 128);
            if st == 0 && w(&iv, 0) & 1 << 12 != 0 {
                assert_eq!(w(&iv, 0) & 0xfff, 3);
                assert_eq!(w(&iv, 0) >> 16, 0);
            }
            if low & 1 << 29 != 0 {
                let (st, n) = call(s, agent, P, proto::NAME_GET, &[id], 68);
                if st == 0 {
                    name = cstr(&n[4..]);
                }
            }
            let axes = if high & 1 << 8 != 0 {
                (high >> 16) & 0x3f
            } else {
                0
            };
            if update_cmd && low & 1 << 30 != 0 {
                assert!(SENSORS[id as usize].update_notify);
            }
            if axes > 0 {
                let mut ai = 0;
                let mut ext_names = false;
                loop {
                    let (st, a) = call(s, agent, P, proto::AXIS_DESCRIPTION_GET, &[id, ai], 128);
                    assert_eq!(st, 0, "fatal for Linux");
                    let (n, rem) = (w(&a, 0) & 0x3f, w(&a, 0) >> 26);
                    assert!(n <= axes - ai);
                    let mut aoff = 4;
                    for _ in 0..n {
                        let alow = w(&a[aoff..], 1);
                        ext_names |= alow & 1 << 9 != 0;
                        aoff += if alow & 1 << 8 != 0 { 48 } else { 28 };
                    }
                    assert_eq!(aoff, a.len());
                    ai += n;
                    if n == 0 || rem == 0 {
                        break;
                    }
                }
                assert_eq!(ai, axes);
                if ext_names {
                    let mut ai = 0;
                    loop {
                        let (st, a) = call(s, agent, P, proto::AXIS_NAME_GET, &[id, ai], 128);
                        if st != 0 {
                            break;
                        }
                        let (n, rem) = (w(&a, 0) & 0x3f, w(&a, 0) >> 26);
                        assert!(w(&a, 1) < axes);
                        ai += n;
                        if n == 0 || rem == 0 {
                            break;
                        }
                    }
                }
            }
            names.push(name);
            off += linux_desc_size(low, high);
        }
        index += returned;
        if returned == 0 || remaining == 0 {
            break;
        }
    }
    assert_eq!(index, num);
    names
}

#[test]
fn linux_initialisation_succeeds() {
    for p2a in [false, true] {
        let mut s = server();
        s.set_p2a(1, p2a);
        s.set_p2a(2, p2a);
        let names = linux_init(&mut s, 1);
        let want: Vec<String> = SENSORS.iter().map(|d| d.name.into()).collect();
        assert_eq!(names, want);
        // The agent that sees fewer sensors still initialises; it keeps the
        // short names of sensors it cannot see.
        let names = linux_init(&mut s, 2);
        assert_eq!(names.len(), COUNT);
    }
}

#[test]
fn segment_rounding_represents_exactly() {
    let seg = Intervals::Segment {
        low: Interval::new(5, -3),
        high: Interval::new(65, 0),
        step: Interval::new(5, -3),
    };
    // 65 s in 5 ms steps: 13 000 steps; values above 65 535 units need a
    // coarser exponent.
    let v = seg.choose(Interval::new(6_001, -2), Round::Up).unwrap();
    assert_eq!(v.units(), Interval::new(60_010, -3).units());
    let v = seg.choose(Interval::new(64_999, -3), Round::Up).unwrap();
    assert_eq!(v.units(), Interval::new(65, 0).units());
    let v = seg.choose(Interval::new(64_997, -3), Round::Down).unwrap();
    assert_eq!(v, Interval::new(64_995, -3));
    assert_eq!(Intervals::None.choose(Interval::new(1, 0), Round::Up), None);
    assert_eq!(
        Interval::from_config(Interval::new(7, -16).config_bits()),
        Interval::new(7, -16)
    );
    assert_eq!(Interval::new(1, 15).millis(), 1_000_000_000_000_000_000);
}

#[test]
fn garbage_never_panics() {
    let mut s: Server<builtin::Platform, 2, 4> = Server::new(&CONFIG, builtin::PLATFORM);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut now = 0;
    for i in 0..40_000u32 {
        let msg = (next() % 0x14) as u8;
        let nargs = (next() % 5) as usize;
        let args: Vec<u32> = (0..nargs)
            .map(|_| match next() % 4 {
                0 => (next() % 24) as u32,
                1 => (next() % 4) as u32,
                2 => next() as u32,
                _ => (next() as u32) & 0xffff_0fff,
            })
            .collect();
        let rx = (next() % 140) as usize;
        let agent = 1 + (next() % 2) as u32;
        if i % 97 == 0 {
            s.set_p2a(agent, next() % 2 == 0);
        }
        let (st, v) = call(&mut s, agent, P, msg, &args, rx);
        assert!(v.len() <= rx);
        assert!(Status::from_code(st).is_some());
        if i % 13 == 0 {
            now += next() % 3_000;
            s.tick(now);
        }
        while event(&mut s, agent).is_some() {}
    }
}
