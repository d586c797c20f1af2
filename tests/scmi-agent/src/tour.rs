//! The front-end's tour of an SCMI platform: discovery as Linux 6.12 does
//! it ([`crate::probe`]), then every protocol the platform lists, with a
//! success and an error path each, notifications and delayed responses on
//! the eventq, and a burst of commands in flight. It checks each answer,
//! writes what it found in terms an SCMI user recognises, and counts what
//! passed and failed.
//!
//! The platform is whatever the device serves: the tour learns resources
//! from discovery and judges answers against what discovery said and what
//! the SCMI specification (DEN0056E) requires, so the same tour runs
//! against the host's built-in platform and the firmware images'. The
//! output names no time-dependent value (sensor readings, timestamps), so
//! it can be compared with a golden file.

use alloc::vec::Vec;
use core::fmt::Write;
use core::time::Duration;

use virtio_drivers::Hal;
use virtio_drivers::transport::Transport;

use crate::agent::{Event, ScmiAgent, msg_type};
use crate::probe::{Probe, Prober, Rates};

/// SCMI status codes (DEN0056E §4.1.4).
pub mod status {
    /// SUCCESS.
    pub const SUCCESS: i32 = 0;
    /// NOT_SUPPORTED.
    pub const NOT_SUPPORTED: i32 = -1;
    /// INVALID_PARAMETERS.
    pub const INVALID_PARAMETERS: i32 = -2;
    /// NOT_FOUND.
    pub const NOT_FOUND: i32 = -4;
    /// OUT_OF_RANGE.
    pub const OUT_OF_RANGE: i32 = -5;
}
use status::*;

/// What the tour counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Checks that held.
    pub passed: u32,
    /// Checks that failed (each was written out with `FAIL`).
    pub failed: u32,
}

/// How long the tour waits for something the platform does later
/// (a delayed response, a notification).
pub struct Patience {
    /// At most this long.
    pub limit: Duration,
    /// The clock.
    pub now: fn() -> Duration,
    /// Called between two looks.
    pub idle: fn(),
}

struct Tour<'a, T: Transport, H: Hal, const CQ: usize, const EQ: usize, W: Write> {
    a: &'a mut ScmiAgent<T, H, CQ, EQ>,
    out: W,
    wait: Patience,
    o: Outcome,
}

fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The unit of a sensor's `attributes_high` (bits 7:0; DSP0249 codes,
/// SCMI §4.7.2.5).
fn unit_name(attrh: u32) -> &'static str {
    match attrh & 0xff {
        2 => "degrees C",
        5 => "V",
        6 => "A",
        7 => "W",
        8 => "J",
        0x13 => "RPM",
        0x14 => "Hz",
        0x57 => "rad/s",
        0x59 => "m/s^2",
        _ => "(other unit)",
    }
}

/// The power-of-ten scale of a sensor's `attributes_high` (bits 15:11,
/// signed).
fn scale(attrh: u32) -> i32 {
    (((attrh >> 11) & 0x1f) as i32) << 27 >> 27
}

fn protocol_name(id: u8) -> &'static str {
    match id {
        0x10 => "base",
        0x11 => "power domain",
        0x12 => "system power",
        0x13 => "performance",
        0x14 => "clock",
        0x15 => "sensor",
        0x16 => "reset domain",
        0x17 => "voltage domain",
        _ => "unknown",
    }
}

/// Runs the tour over `agent`, writing to `out`; `wait` bounds the waits
/// for delayed responses and notifications.
pub fn run<T: Transport, H: Hal, const CQ: usize, const EQ: usize, W: Write>(
    agent: &mut ScmiAgent<T, H, CQ, EQ>,
    out: W,
    wait: Patience,
) -> Outcome {
    let mut t = Tour {
        a: agent,
        out,
        wait,
        o: Outcome::default(),
    };
    let p = Prober::run(t.a);
    t.discovery(&p);
    t.errors();
    if p.power.is_some() {
        t.power(&p);
    }
    if p.system {
        t.system();
    }
    if p.perf.is_some() {
        t.perf(&p);
    }
    if p.clocks.is_some() {
        t.clock(&p);
    }
    if p.sensors.is_some() {
        t.sensor(&p);
    }
    if p.resets.is_some() {
        t.reset(&p);
    }
    if p.voltages.is_some() {
        t.voltage(&p);
    }
    t.burst();
    let s = t.a.stats();
    let _ = writeln!(
        t.out,
        "traffic: {} commands, {} replies, {} eventq messages, longest reply {} bytes (limit 136), at most {} in flight",
        s.commands, s.replies, s.events, s.longest_reply, s.max_in_flight
    );
    t.check(
        s.longest_reply <= 136,
        "replies fit Linux's 8 + 128-byte buffer",
    );
    t.o
}

impl<T: Transport, H: Hal, const CQ: usize, const EQ: usize, W: Write> Tour<'_, T, H, CQ, EQ, W> {
    fn check(&mut self, ok: bool, what: &str) -> bool {
        if ok {
            self.o.passed += 1;
        } else {
            self.o.failed += 1;
            let _ = writeln!(self.out, "FAIL: {what}");
        }
        ok
    }

    /// One command; checks its status is `want`, returns the payload words.
    fn expect(&mut self, proto: u8, msg: u8, args: &[u32], want: i32) -> Vec<u32> {
        let r = self.a.callw(proto, msg, args, 0);
        let ok = r.status == want;
        if !ok {
            let _ = writeln!(
                self.out,
                "FAIL: {} ({proto:#x}) message {msg:#x} {args:x?}: status {} (expected {want})",
                protocol_name(proto),
                r.status
            );
            self.o.failed += 1;
        } else {
            self.o.passed += 1;
        }
        r.words()
    }

    /// Waits for an eventq message `pick` accepts; the others stay
    /// unclaimed for later waits.
    fn event(&mut self, what: &str, pick: impl Fn(&Event) -> bool) -> Option<Event> {
        let start = (self.wait.now)();
        let mut seen: Vec<Event> = Vec::new();
        let found = loop {
            seen.extend(self.a.drain_events());
            if let Some(i) = seen.iter().position(&pick) {
                break Some(seen.remove(i));
            }
            if (self.wait.now)().saturating_sub(start) >= self.wait.limit {
                break None;
            }
            (self.wait.idle)();
        };
        self.check(found.is_some(), what);
        found
    }

    fn discovery(&mut self, p: &Probe) {
        let b = &p.base;
        let _ = writeln!(
            self.out,
            "platform: vendor \"{}\", sub-vendor \"{}\", implementation {:#x}, {} agent(s)",
            b.vendor, b.sub_vendor, b.impl_version, b.num_agents
        );
        for (proto, v) in &p.versions {
            let _ = writeln!(
                self.out,
                "protocol {proto:#x} {}: version {}.{}",
                protocol_name(*proto),
                v >> 16,
                v & 0xffff
            );
        }
        if let Some(d) = &p.power {
            let _ = write!(self.out, "power domains:");
            for n in d {
                let _ = write!(self.out, " {}", n.name);
            }
            let _ = writeln!(self.out);
        }
        if let Some(d) = &p.perf {
            for x in d {
                let _ = writeln!(
                    self.out,
                    "performance domain {}: {} levels, sustained {} kHz",
                    x.info.name,
                    x.levels.len(),
                    x.sustained_freq
                );
            }
        }
        if let Some((c, max_async)) = &p.clocks {
            for x in c {
                let _ = match &x.rates {
                    Rates::Discrete(r) => writeln!(
                        self.out,
                        "clock {}: {} rates, {} Hz to {} Hz",
                        x.info.name,
                        r.len(),
                        r.first().copied().unwrap_or(0),
                        r.last().copied().unwrap_or(0)
                    ),
                    Rates::Range(lo, hi, step) => writeln!(
                        self.out,
                        "clock {}: {lo} Hz to {hi} Hz in steps of {step} Hz",
                        x.info.name
                    ),
                };
            }
            let _ = writeln!(
                self.out,
                "clocks: at most {max_async} asynchronous requests"
            );
        }
        if let Some((s, _)) = &p.sensors {
            for x in s {
                let _ = writeln!(
                    self.out,
                    "sensor {}: {}, scale 10^{}, {} axes{}{}",
                    x.name,
                    unit_name(x.attrh),
                    scale(x.attrh),
                    x.axes.len(),
                    if x.attrl & 1 << 31 != 0 {
                        ", async read"
                    } else {
                        ""
                    },
                    if x.attrl & 1 << 30 != 0 {
                        ", update notifications"
                    } else {
                        ""
                    }
                );
            }
        }
        if let Some(r) = &p.resets {
            let _ = write!(self.out, "reset domains:");
            for (n, _) in r {
                let _ = write!(self.out, " {}", n.name);
            }
            let _ = writeln!(self.out);
        }
        if let Some(v) = &p.voltages {
            let _ = write!(self.out, "voltage domains:");
            for d in v.iter().flatten() {
                let _ = write!(self.out, " {}", d.info.name);
            }
            let _ = writeln!(self.out);
        }
        for c in &p.complaints {
            let _ = writeln!(self.out, "FAIL: probe: {c}");
        }
        self.check(
            p.complaints.is_empty(),
            "the Linux 6.12 probe found nothing to complain about",
        );
        let listed = u8::try_from(p.base.protocols.len()).unwrap_or(0);
        self.check(listed == p.base.num_protocols, "every protocol is listed");
    }

    /// What every platform must refuse.
    fn errors(&mut self) {
        // §4.1.4: a protocol the platform does not implement.
        self.expect(0x99, 0x0, &[], NOT_SUPPORTED);
        // A message id the Base protocol does not have: NOT_FOUND, as the
        // Arm SCMI compliance suite and SCP-firmware have it.
        self.expect(0x10, 0x3f, &[], NOT_FOUND);
        // §4.2.2.4: PROTOCOL_MESSAGE_ATTRIBUTES of a message that does
        // not exist.
        self.expect(0x10, 0x2, &[0x3f], NOT_FOUND);
        let _ = writeln!(
            self.out,
            "errors: unknown protocol, message and message id refused"
        );
    }

    fn power(&mut self, p: &Probe) {
        let n = p.power.as_ref().map_or(0, Vec::len) as u32;
        // POWER_STATE_GET (§4.3.2.8) of each domain, and of one past the end.
        for d in 0..n {
            self.expect(0x11, 0x5, &[d], SUCCESS);
        }
        self.expect(0x11, 0x5, &[n], NOT_FOUND);
        self.expect(0x11, 0x3, &[n], NOT_FOUND);
        let _ = writeln!(self.out, "power: {n} domain states read");
    }

    fn system(&mut self) {
        // SYSTEM_POWER_STATE_NOTIFY (§4.4.2.6): on, then off.
        self.expect(0x12, 0x5, &[1], SUCCESS);
        self.expect(0x12, 0x5, &[0], SUCCESS);
        self.expect(0x12, 0x5, &[2], INVALID_PARAMETERS);
        let _ = writeln!(self.out, "system power: notifications switched on and off");
    }

    fn perf(&mut self, p: &Probe) {
        let doms = p.perf.clone().unwrap_or_default();
        let n = doms.len() as u32;
        if let Some(d) = doms.first() {
            // PERFORMANCE_LEVEL_SET / _GET (§4.5.3.9-10) to the top level.
            if let Some(top) = d.levels.iter().map(|l| l[0]).max() {
                let before = self.expect(0x13, 0x8, &[0], SUCCESS);
                self.expect(0x13, 0x7, &[0, top], SUCCESS);
                let now = self.expect(0x13, 0x8, &[0], SUCCESS);
                self.check(now.first() == Some(&top), "performance level reads back");
                if let Some(&b) = before.first() {
                    self.expect(0x13, 0x7, &[0, b], SUCCESS);
                }
                let _ = writeln!(
                    self.out,
                    "performance: domain {} set to level {top} and back",
                    d.info.name
                );
            }
        }
        self.expect(0x13, 0x8, &[n], NOT_FOUND);
    }

    fn clock(&mut self, p: &Probe) {
        let (clocks, max_async) = p.clocks.clone().unwrap_or_default();
        let n = clocks.len() as u32;
        self.expect(0x14, 0x3, &[n], NOT_FOUND);
        self.expect(0x14, 0x6, &[n], NOT_FOUND);
        // A list longer than one reply: CLOCK_DESCRIBE_RATES (§4.6.2.6)
        // answers as many rates as fit Linux's 128-byte reply payload and
        // says how many remain.
        if let Some((c, x)) = clocks
            .iter()
            .enumerate()
            .find(|(_, x)| matches!(&x.rates, Rates::Discrete(l) if l.len() >= 16))
        {
            let r = self.a.callw(0x14, 0x4, &[c as u32, 0], 0);
            let flags = r.words().first().copied().unwrap_or(0);
            let (returned, remaining) = (flags & 0xfff, flags >> 16);
            let bytes = r.payload.len();
            self.check(
                r.status == SUCCESS
                    && bytes <= 128
                    && bytes + 8 > 128
                    && remaining > 0
                    && bytes == 4 + 8 * returned as usize,
                "a long rate list is split at the 128-byte limit",
            );
            let _ = writeln!(
                self.out,
                "clock {}: DESCRIBE_RATES returns {returned} rates in {bytes} bytes, {remaining} remaining (reply payload limit 128)",
                x.info.name
            );
        }
        // The first clock with discrete rates: set another rate, with
        // CLOCK_RATE_CHANGED notifications on if the clock has them.
        let Some((c, list)) = clocks.iter().enumerate().find_map(|(i, c)| match &c.rates {
            Rates::Discrete(l) if l.len() > 1 => Some((i as u32, l.clone())),
            _ => None,
        }) else {
            return;
        };
        let name = clocks[c as usize].info.name.clone();
        let cur = self.expect(0x14, 0x6, &[c], SUCCESS);
        let cur = u64::from(cur.first().copied().unwrap_or(0))
            | u64::from(cur.get(1).copied().unwrap_or(0)) << 32;
        let Some(&new) = list.iter().find(|&&r| r != cur) else {
            return;
        };
        let notify = self.a.callw(0x14, 0x9, &[c, 1], 0).status == SUCCESS;
        self.expect(0x14, 0x5, &[0, c, new as u32, (new >> 32) as u32], SUCCESS);
        let now = self.expect(0x14, 0x6, &[c], SUCCESS);
        self.check(
            now == [new as u32, (new >> 32) as u32],
            "the clock runs at the rate set",
        );
        let _ = writeln!(self.out, "clock {name}: rate set from {cur} Hz to {new} Hz");
        if notify {
            let e = self.event("CLOCK_RATE_CHANGED notification", |e| {
                e.header.msg_type == msg_type::NOTIFICATION
                    && e.header.protocol == 0x14
                    && e.header.msg_id == 0x0
            });
            if let Some(e) = e {
                let w = e.words();
                self.check(
                    w.get(1..4) == Some(&[c, new as u32, (new >> 32) as u32][..]),
                    "the notification names the clock and its new rate",
                );
                let _ = writeln!(
                    self.out,
                    "clock {name}: CLOCK_RATE_CHANGED notification received"
                );
            }
            self.expect(0x14, 0x9, &[c, 0], SUCCESS);
        }
        // A rate the clock does not have (§4.6.2.7).
        let r = self.a.callw(0x14, 0x5, &[0, c, 1, 0], 0);
        self.check(r.status != SUCCESS, "an unsupported rate is refused");
        // Asynchronous CLOCK_RATE_SET: an immediate reply, then the delayed
        // response with the same token (§4.6.2.7, §4.1.1).
        if max_async >= 1 {
            let t = self.a.post(
                0x14,
                0x5,
                &words(&[1, c, cur as u32, (cur >> 32) as u32]),
                0,
            );
            self.a.kick();
            let r = self.a.reply(t);
            self.check(r.status == SUCCESS, "the asynchronous rate set is accepted");
            let e = self.event("CLOCK_RATE_SET delayed response", |e| {
                e.header.msg_type == msg_type::DELAYED && e.header.token == t
            });
            if let Some(e) = e {
                self.check(
                    e.status == Some(SUCCESS)
                        && e.header.protocol == 0x14
                        && e.header.msg_id == 0x5
                        && e.words() == [c, cur as u32, (cur >> 32) as u32],
                    "the delayed response carries the clock and its rate",
                );
                let _ = writeln!(
                    self.out,
                    "clock {name}: asynchronous rate set completed by a delayed response"
                );
            }
        }
    }

    fn sensor(&mut self, p: &Probe) {
        let (sensors, _) = p.sensors.clone().unwrap_or_default();
        let n = sensors.len() as u32;
        for s in &sensors {
            // SENSOR_READING_GET (§4.7.2.12), synchronous: the value is
            // the first 64-bit word of the reply, in units of 10^scale.
            let w = self.expect(0x15, 0x6, &[s.id, 0], SUCCESS);
            if let [lo, hi, ..] = w[..] {
                let v = i64::from(lo) | i64::from(hi) << 32;
                // Time-dependent: the golden files leave `reading:` out.
                let _ = writeln!(
                    self.out,
                    "reading: sensor {} = {v} x 10^{} {}",
                    s.name,
                    scale(s.attrh),
                    unit_name(s.attrh)
                );
            }
        }
        self.expect(0x15, 0x6, &[n, 0], NOT_FOUND);
        let _ = writeln!(self.out, "sensors: {n} read");
        if let Some(s) = sensors.iter().find(|s| s.attrl & 1 << 31 != 0) {
            let t = self.a.post(0x15, 0x6, &words(&[s.id, 1]), 0);
            self.a.kick();
            let r = self.a.reply(t);
            self.check(r.status == SUCCESS, "the asynchronous read is accepted");
            if let Some(e) = self.event("SENSOR_READING_GET delayed response", |e| {
                e.header.msg_type == msg_type::DELAYED && e.header.token == t
            }) {
                self.check(
                    e.status == Some(SUCCESS) && e.words().first() == Some(&s.id),
                    "the delayed response names the sensor",
                );
                let _ = writeln!(
                    self.out,
                    "sensor {}: asynchronous read completed by a delayed response",
                    s.name
                );
            }
        }
        if let Some(s) = sensors.iter().find(|s| s.attrl & 1 << 30 != 0) {
            // SENSOR_CONTINUOUS_UPDATE_NOTIFY (§4.7.2.14), then one
            // SENSOR_UPDATE (§4.7.4.2) as time passes on the platform.
            self.expect(0x15, 0xB, &[s.id, 1], SUCCESS);
            if let Some(e) = self.event("SENSOR_UPDATE notification", |e| {
                e.header.msg_type == msg_type::NOTIFICATION
                    && e.header.protocol == 0x15
                    && e.header.msg_id == 0x1
            }) {
                self.check(
                    e.words().get(1) == Some(&s.id),
                    "the update names the sensor",
                );
                let _ = writeln!(
                    self.out,
                    "sensor {}: SENSOR_UPDATE notification received",
                    s.name
                );
            }
            self.expect(0x15, 0xB, &[s.id, 0], SUCCESS);
            // Updates still in flight are not errors; forget them.
            let _ = self.a.drain_events();
        }
    }

    fn reset(&mut self, p: &Probe) {
        let doms = p.resets.clone().unwrap_or_default();
        let n = doms.len() as u32;
        self.expect(0x16, 0x3, &[n], NOT_FOUND);
        self.expect(0x16, 0x4, &[n, 0, 0], NOT_FOUND);
        // An asynchronous autonomous RESET (§4.8.2.5) where the domain
        // supports it (attribute bit 31): a delayed RESET_COMPLETE.
        if let Some((d, (named, _))) = doms
            .iter()
            .enumerate()
            .find(|(_, (x, _))| x.attrs & 1 << 31 != 0)
        {
            let d = d as u32;
            let t = self.a.post(0x16, 0x4, &words(&[d, 1 << 2 | 1, 0]), 0);
            self.a.kick();
            let r = self.a.reply(t);
            self.check(r.status == SUCCESS, "the asynchronous reset is accepted");
            if let Some(e) = self.event("RESET delayed response", |e| {
                e.header.msg_type == msg_type::DELAYED && e.header.token == t
            }) {
                self.check(
                    e.status == Some(SUCCESS) && e.words().first() == Some(&d),
                    "the delayed response names the domain",
                );
                let _ = writeln!(
                    self.out,
                    "reset domain {}: asynchronous reset completed",
                    named.name
                );
            }
        }
    }

    fn voltage(&mut self, p: &Probe) {
        let doms = p.voltages.clone().unwrap_or_default();
        let n = doms.len() as u32;
        for d in 0..n {
            // VOLTAGE_LEVEL_GET (§4.9.2.9).
            self.expect(0x17, 0x8, &[d], SUCCESS);
        }
        self.expect(0x17, 0x8, &[n], NOT_FOUND);
        let _ = writeln!(self.out, "voltage: {n} domain levels read");
    }

    /// As many commands in flight as Linux allows (half the cmdq), one
    /// kick, every reply.
    fn burst(&mut self) {
        let n = self.a.max_in_flight();
        let tokens: Vec<u16> = (0..n).map(|_| self.a.post(0x10, 0x0, &[], 4)).collect();
        self.a.kick();
        let mut ok = 0;
        for t in tokens {
            let r = self.a.reply(t);
            ok += usize::from(r.status == SUCCESS && r.header.token == t);
        }
        self.check(ok == n, "every command of the burst is answered");
        let _ = writeln!(self.out, "burst: {ok} of {n} commands in flight answered");
    }
}
