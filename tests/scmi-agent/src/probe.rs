//! The command sequence Linux 6.12 sends when it probes an SCMI platform,
//! reproduced over a [`ScmiAgent`], and the replies parsed the way Linux
//! parses them, only stricter.
//!
//! Mirrored, in `drivers/firmware/arm_scmi/` of Linux 6.12:
//!
//! * `base.c`: `scmi_base_protocol_init` (`version_get`,
//!   `scmi_base_attributes_get`, `scmi_base_vendor_id_get` twice,
//!   `scmi_base_implementation_version_get`,
//!   `scmi_base_implementation_list_get` and its loop and length check,
//!   `scmi_base_discover_agent_get` for ids `0..num_agents`);
//! * `power.c`: `scmi_power_protocol_init`, `scmi_power_attributes_get`,
//!   `scmi_power_domain_attributes_get`;
//! * `system.c`: `scmi_system_protocol_init`;
//! * `perf.c`: `scmi_perf_protocol_init`, `scmi_perf_attributes_get`,
//!   `scmi_perf_domain_attributes_get`, `scmi_perf_describe_levels_get`
//!   (`iter_perf_levels_*`);
//! * `clock.c`: `scmi_clock_protocol_init`,
//!   `scmi_clock_protocol_attributes_get`, `scmi_clock_attributes_get`,
//!   `scmi_clock_possible_parents`, `scmi_clock_get_permissions`,
//!   `scmi_clock_describe_rates_get` (`iter_clk_*`);
//! * `sensors.c`: `scmi_sensors_protocol_init`, `scmi_sensor_attributes_get`,
//!   `scmi_sensor_description_get` (`iter_sens_descr_*`),
//!   `scmi_sensor_update_intervals`, `scmi_sensor_axis_description`,
//!   `scmi_sensor_axis_extended_names_get`;
//! * `reset.c`: `scmi_reset_protocol_init`, `scmi_reset_attributes_get`,
//!   `scmi_reset_domain_attributes_get`;
//! * `voltage.c`: `scmi_voltage_protocol_init`,
//!   `scmi_voltage_descriptors_get`, `scmi_voltage_levels_get`;
//! * `driver.c`: `scmi_iterator_run` (loop while returned and remaining,
//!   "No. of resources can't exceed"), `scmi_common_extended_name_get`
//!   (rx 68), `scmi_protocol_msg_check` (rx 0 = 128), `version_get` (rx 4).
//!
//! Stricter than Linux: where Linux would warn and carry on (a malformed
//! protocol list, a failed extended name, a payload shorter than the items
//! it announces) the probe records a complaint in [`Probe::complaints`];
//! fixed-size replies must be exactly as long as Linux's `rx_size`, and
//! multi-part replies exactly as long as the items they announce.

use virtio_drivers::transport::Transport;

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use virtio_drivers::Hal;

use crate::agent::{MAX_MSG, Reply, ScmiAgent, le_words};

/// Base protocol facts.
#[derive(Debug, Clone, Default)]
pub struct BaseInfo {
    /// PROTOCOL_VERSION.
    pub version: u32,
    /// Protocols the platform implements (ATTRIBUTES).
    pub num_protocols: u8,
    /// Agents (ATTRIBUTES).
    pub num_agents: u8,
    /// DISCOVER_VENDOR.
    pub vendor: String,
    /// DISCOVER_SUB_VENDOR.
    pub sub_vendor: String,
    /// DISCOVER_IMPLEMENTATION_VERSION.
    pub impl_version: u32,
    /// DISCOVER_LIST_PROTOCOLS, in order.
    pub protocols: Vec<u8>,
    /// DISCOVER_AGENT: `(id, name)` for ids `0..num_agents`.
    pub agents: Vec<(u32, String)>,
}

/// A named resource with its attribute word.
#[derive(Debug, Clone, Default)]
pub struct Named {
    /// Attribute word (flags).
    pub attrs: u32,
    /// Name (extended if fetched).
    pub name: String,
}

/// A performance domain.
#[derive(Debug, Clone, Default)]
pub struct PerfDomain {
    /// Flags and name.
    pub info: Named,
    /// `rate_limit_us`.
    pub rate_limit: u32,
    /// `sustained_freq_khz`.
    pub sustained_freq: u32,
    /// `sustained_perf_level`.
    pub sustained_level: u32,
    /// OPPs: `(perf, power, latency_us, indicative_freq, level_index)`.
    pub levels: Vec<[u32; 5]>,
}

/// Rates of a clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rates {
    /// Discrete rates, as listed.
    Discrete(Vec<u64>),
    /// `(min, max, step)`.
    Range(u64, u64, u64),
}

/// A clock.
#[derive(Debug, Clone)]
pub struct Clock {
    /// Attributes and name.
    pub info: Named,
    /// `clock_enable_latency`.
    pub latency: u32,
    /// Possible parents (v3, attribute bit 28).
    pub parents: Vec<u32>,
    /// CLOCK_GET_PERMISSIONS (attribute bit 1).
    pub permissions: Option<u32>,
    /// DESCRIBE_RATES.
    pub rates: Rates,
}

/// A sensor axis.
#[derive(Debug, Clone, Default)]
pub struct Axis {
    /// `id`.
    pub id: u32,
    /// `attributes_low`.
    pub attrl: u32,
    /// `attributes_high`.
    pub attrh: u32,
    /// Name.
    pub name: String,
}

/// A sensor.
#[derive(Debug, Clone, Default)]
pub struct Sensor {
    /// `id` (must equal the index).
    pub id: u32,
    /// `attributes_low`.
    pub attrl: u32,
    /// `attributes_high`.
    pub attrh: u32,
    /// Name.
    pub name: String,
    /// Update intervals; `segmented` if a triplet.
    pub intervals: Vec<u32>,
    /// Whether the intervals are a triplet.
    pub segmented: bool,
    /// Axes.
    pub axes: Vec<Axis>,
}

/// A voltage domain.
#[derive(Debug, Clone, Default)]
pub struct VoltDomain {
    /// Attributes and name.
    pub info: Named,
    /// Levels (µV); a triplet when `segmented`.
    pub levels: Vec<i32>,
    /// Whether the levels are a triplet.
    pub segmented: bool,
}

/// Everything the probe learned, per protocol (`None` when the protocol
/// was not in the Base list).
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// Base.
    pub base: BaseInfo,
    /// Protocol versions, by protocol id.
    pub versions: Vec<(u8, u32)>,
    /// Notification commands PROTOCOL_MESSAGE_ATTRIBUTES said exist:
    /// `(protocol, message id, supported)`.
    pub msg_checks: Vec<(u8, u8, bool)>,
    /// Power domains.
    pub power: Option<Vec<Named>>,
    /// System power: probed.
    pub system: bool,
    /// Performance domains.
    pub perf: Option<Vec<PerfDomain>>,
    /// Clocks and `max_async_req`.
    pub clocks: Option<(Vec<Clock>, u8)>,
    /// Sensors and `max_requests`.
    pub sensors: Option<(Vec<Sensor>, u8)>,
    /// Reset domains: attributes, name, latency.
    pub resets: Option<Vec<(Named, u32)>>,
    /// Voltage domains (`None` for a domain Linux skipped).
    pub voltages: Option<Vec<Option<VoltDomain>>>,
    /// What Linux would have warned about or failed on.
    pub complaints: Vec<String>,
}

/// A NUL-terminated string from `b` (Linux `strscpy`).
pub fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

/// Runs the probe.
pub struct Prober<'a, T: Transport, H: Hal, const CQ: usize, const EQ: usize> {
    a: &'a mut ScmiAgent<T, H, CQ, EQ>,
    p: Probe,
}

impl<'a, T: Transport, H: Hal, const CQ: usize, const EQ: usize> Prober<'a, T, H, CQ, EQ> {
    /// Probes the platform behind `agent` as Linux 6.12 does at boot:
    /// Base, then every listed protocol in list order.
    pub fn run(agent: &'a mut ScmiAgent<T, H, CQ, EQ>) -> Probe {
        let mut me = Prober {
            a: agent,
            p: Probe::default(),
        };
        me.base();
        for id in me.p.base.protocols.clone() {
            match id {
                0x11 => me.power(),
                0x12 => me.system(),
                0x13 => me.perf(),
                0x14 => me.clock(),
                0x15 => me.sensor(),
                0x16 => me.reset(),
                0x17 => me.voltage(),
                _ => {}
            }
        }
        me.p
    }

    fn complain(&mut self, what: String) {
        self.p.complaints.push(what);
    }

    /// A command whose reply Linux reads with a fixed `rx_size`: checks
    /// the reply is exactly that long on success.
    fn fixed(&mut self, proto: u8, msg: u8, args: &[u32], rx: usize) -> Option<Reply> {
        let r = self.a.callw(proto, msg, args, rx);
        if r.status != 0 {
            self.complain(format!(
                "{proto:#x}/{msg:#x} {args:?} failed with {}",
                r.status
            ));
            return None;
        }
        if r.used_len as usize != 8 + rx {
            self.complain(format!(
                "{proto:#x}/{msg:#x} {args:?}: reply of {} bytes, Linux reads {}",
                r.used_len,
                8 + rx
            ));
        }
        Some(r)
    }

    /// `version_get`: fatal on error.
    fn version(&mut self, proto: u8) -> u32 {
        let r = self
            .fixed(proto, 0x0, &[], 4)
            .unwrap_or_else(|| panic!("PROTOCOL_VERSION of {proto:#x} failed: Linux gives up"));
        let v = r.word(0);
        self.p.versions.push((proto, v));
        v
    }

    /// `scmi_protocol_msg_check`: rx 0 (128), success means supported.
    fn msg_check(&mut self, proto: u8, msg: u8) -> bool {
        let r = self.a.callw(proto, 0x2, &[u32::from(msg)], 0);
        let ok = r.status == 0;
        if ok && r.payload.len() != 4 {
            self.complain(format!(
                "MESSAGE_ATTRIBUTES({proto:#x}/{msg:#x}) returned {} bytes",
                r.payload.len()
            ));
        }
        self.p.msg_checks.push((proto, msg, ok));
        ok
    }

    /// `scmi_common_extended_name_get`: rx 68, name from offset 4.
    fn extended_name(&mut self, proto: u8, msg: u8, id: u32, short: &str) -> String {
        match self.fixed(proto, msg, &[id], 68) {
            Some(r) => {
                if r.word(0) != 0 {
                    self.complain(format!("{proto:#x}/{msg:#x}: flags {:#x}", r.word(0)));
                }
                let n = cstr(&r.payload[4..]);
                if !n.starts_with(short.trim_end_matches('\0')) && short.len() == 15 {
                    self.complain(format!("extended name {n:?} does not extend {short:?}"));
                }
                n
            }
            None => short.to_owned(),
        }
    }

    fn base(&mut self) {
        let version = self.version(0x10);
        let r = self
            .fixed(0x10, 0x1, &[], 4)
            .expect("BASE PROTOCOL_ATTRIBUTES must succeed or nothing probes");
        let num_protocols = r.payload[0];
        let num_agents = r.payload[1];
        let vendor = self
            .fixed(0x10, 0x3, &[], 16)
            .map(|r| cstr(&r.payload))
            .unwrap_or_default();
        let sub_vendor = self
            .fixed(0x10, 0x4, &[], 16)
            .map(|r| cstr(&r.payload))
            .unwrap_or_default();
        let impl_version = self.fixed(0x10, 0x5, &[], 4).map_or(0, |r| r.word(0));
        // scmi_base_implementation_list_get.
        let mut protocols = Vec::new();
        loop {
            let tot = protocols.len() as u32;
            let r = self.a.callw(0x10, 0x6, &[tot], 0);
            if r.status != 0 {
                self.complain(format!(
                    "DISCOVER_LIST_PROTOCOLS({tot}) failed {}",
                    r.status
                ));
                break;
            }
            if r.payload.len() < 8 && le32(&r.payload, 0) != 0 {
                self.complain("Truncated reply".into());
                break;
            }
            let num = le32(&r.payload, 0) as usize;
            if num == 0 {
                break;
            }
            let real = r.payload.len() - 4;
            let calc = (1 + (num - 1) / 4) * 4;
            if calc != real {
                self.complain(format!("Malformed reply: {num} ids in {real} bytes"));
                if calc > real {
                    break;
                }
            }
            if num > usize::from(num_protocols) - protocols.len() {
                self.complain("No. Returned protocols > Total protocols".into());
                break;
            }
            protocols.extend_from_slice(&r.payload[4..4 + num]);
            if r.payload[4 + num..].iter().any(|&b| b != 0) {
                self.complain("protocol list padding is not zero".into());
            }
            if protocols.len() >= usize::from(num_protocols) {
                break;
            }
        }
        let mut agents = Vec::new();
        for id in 0..u32::from(num_agents) {
            if let Some(r) = self.fixed(0x10, 0x7, &[id], 20) {
                agents.push((r.word(0), cstr(&r.payload[4..])));
            }
        }
        self.p.base = BaseInfo {
            version,
            num_protocols,
            num_agents,
            vendor,
            sub_vendor,
            impl_version,
            protocols,
            agents,
        };
    }

    fn power(&mut self) {
        let v = self.version(0x11);
        let r = self.fixed(0x11, 0x1, &[], 16).expect("power attributes");
        let n = le16(&r.payload, 0);
        self.msg_check(0x11, 0x6);
        let mut doms = Vec::new();
        for d in 0..u32::from(n) {
            let Some(r) = self.fixed(0x11, 0x3, &[d], 20) else {
                doms.push(Named::default());
                continue;
            };
            let attrs = r.word(0);
            let mut name = cstr(&r.payload[4..20]);
            if v >> 16 >= 3 && attrs & 1 << 27 != 0 {
                name = self.extended_name(0x11, 0x8, d, &name);
            }
            doms.push(Named { attrs, name });
        }
        self.p.power = Some(doms);
    }

    fn system(&mut self) {
        self.version(0x12);
        self.msg_check(0x12, 0x5);
        self.p.system = true;
    }

    fn perf(&mut self) {
        let v = self.version(0x13);
        let r = self.fixed(0x13, 0x1, &[], 16).expect("perf attributes");
        let n = le16(&r.payload, 0);
        self.msg_check(0x13, 0xA);
        self.msg_check(0x13, 0x9);
        let mut doms = Vec::new();
        for d in 0..u32::from(n) {
            let mut dom = PerfDomain::default();
            if let Some(r) = self.fixed(0x13, 0x3, &[d], 32) {
                let w = r.words();
                dom.info.attrs = w[0];
                dom.rate_limit = w[1] & 0xf_ffff;
                dom.sustained_freq = w[2];
                dom.sustained_level = w[3];
                dom.info.name = cstr(&r.payload[16..32]);
                if v >> 16 >= 3 && w[0] & 1 << 26 != 0 {
                    let short = dom.info.name.clone();
                    dom.info.name = self.extended_name(0x13, 0xC, d, &short);
                }
            }
            // scmi_perf_describe_levels_get: MAX_OPPS 32, 12-byte (v3) or
            // 20-byte (v4) entries.
            let item = if v >> 16 <= 3 { 12 } else { 20 };
            let mut desc_index = 0u32;
            loop {
                let r = self.a.callw(0x13, 0x4, &[d, desc_index], 0);
                if r.status != 0 {
                    self.complain(format!("DESCRIBE_LEVELS({d},{desc_index}) {}", r.status));
                    break;
                }
                let ret = u32::from(le16(&r.payload, 0));
                let rem = u32::from(le16(&r.payload, 2));
                if ret > 32 - desc_index {
                    self.complain(format!("perf {d}: No. of resources can't exceed 32"));
                    break;
                }
                if r.payload.len() != 4 + item * ret as usize {
                    self.complain(format!(
                        "perf {d}: {ret} levels in {} bytes",
                        r.payload.len()
                    ));
                }
                for i in 0..ret as usize {
                    let at = 4 + i * item;
                    let mut l = [0u32; 5];
                    l[0] = le32(&r.payload, at);
                    l[1] = le32(&r.payload, at + 4);
                    l[2] = le32(&r.payload, at + 8) & 0xffff;
                    if item == 20 {
                        l[3] = le32(&r.payload, at + 12);
                        l[4] = le32(&r.payload, at + 16);
                    }
                    dom.levels.push(l);
                }
                desc_index += ret;
                if ret == 0 || rem == 0 {
                    break;
                }
            }
            if dom.info.attrs & 1 << 27 != 0 {
                self.complain(format!("perf {d}: fast channels over virtio"));
            }
            doms.push(dom);
        }
        self.p.perf = Some(doms);
    }

    fn clock(&mut self) {
        let v = self.version(0x14);
        let r = self.fixed(0x14, 0x1, &[], 4).expect("clock attributes");
        let n = le16(&r.payload, 0);
        let max_async = r.payload[2];
        self.msg_check(0x14, 0x9);
        self.msg_check(0x14, 0xA);
        let mut clocks = Vec::new();
        for c in 0..u32::from(n) {
            let Some(r) = self.fixed(0x14, 0x3, &[c], 24) else {
                continue;
            };
            let attrs = r.word(0);
            let mut name = cstr(&r.payload[4..20]);
            let latency = if v >> 16 >= 2 { r.word(5) } else { 0 };
            let mut parents = Vec::new();
            let mut permissions = None;
            if v >> 16 >= 2 {
                if attrs & 1 << 29 != 0 {
                    name = self.extended_name(0x14, 0x8, c, &name);
                }
                if v >> 16 >= 3 {
                    if attrs & 1 << 28 != 0 {
                        parents = self.clock_parents(c);
                    }
                    if attrs & 1 << 1 != 0 {
                        permissions = self.fixed(0x14, 0xF, &[c], 4).map(|r| r.word(0));
                    }
                }
            }
            let rates = self.clock_rates(c);
            clocks.push(Clock {
                info: Named { attrs, name },
                latency,
                parents,
                permissions,
                rates,
            });
        }
        self.p.clocks = Some((clocks, max_async));
    }

    /// `scmi_clock_possible_parents`: max from the first reply.
    fn clock_parents(&mut self, c: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut max = 0u32;
        let mut desc_index = 0u32;
        loop {
            let r = self.a.callw(0x14, 0xC, &[c, desc_index], 0);
            if r.status != 0 {
                self.complain(format!("POSSIBLE_PARENTS_GET({c}) {}", r.status));
                break;
            }
            let f = r.word(0);
            let (ret, rem) = (f & 0xff, f >> 24);
            if max == 0 {
                max = ret + rem;
            }
            if ret > max - desc_index {
                self.complain(format!("clock {c}: too many parents"));
                break;
            }
            if r.payload.len() != 4 + 4 * ret as usize {
                self.complain(format!("clock {c}: {ret} parents in {}", r.payload.len()));
            }
            out.extend(r.words()[1..1 + ret as usize].iter().copied());
            desc_index += ret;
            if ret == 0 || rem == 0 {
                break;
            }
        }
        out
    }

    /// `scmi_clock_describe_rates_get`: at most 16 discrete rates, or a
    /// triplet with returned 3 and remaining 0.
    fn clock_rates(&mut self, c: u32) -> Rates {
        let mut list = Vec::new();
        let mut range = None;
        let mut desc_index = 0u32;
        loop {
            let r = self.a.callw(0x14, 0x4, &[c, desc_index], 0);
            if r.status != 0 {
                self.complain(format!("DESCRIBE_RATES({c}) {}", r.status));
                break;
            }
            let f = r.word(0);
            let (ret, rem, is_range) = (f & 0xfff, f >> 16, f & 1 << 12 != 0);
            if is_range && (ret != 3 || rem != 0) {
                self.complain(format!("clock {c}: out-of-spec range reply"));
                break;
            }
            if !is_range && ret > 16 - desc_index {
                self.complain(format!("clock {c}: No. of resources can't exceed 16"));
                break;
            }
            if r.payload.len() != 4 + 8 * ret as usize {
                self.complain(format!("clock {c}: {ret} rates in {}", r.payload.len()));
            }
            let w = r.words();
            let rates: Vec<u64> = (0..ret as usize)
                .map(|i| u64::from(w[1 + 2 * i]) | u64::from(w[2 + 2 * i]) << 32)
                .collect();
            if is_range {
                range = Some((rates[0], rates[1], rates[2]));
            } else {
                list.extend(rates);
            }
            desc_index += ret;
            if ret == 0 || rem == 0 {
                break;
            }
        }
        match range {
            Some((a, b, s)) => Rates::Range(a, b, s),
            None => Rates::Discrete(list),
        }
    }

    fn sensor(&mut self) {
        let v = self.version(0x15);
        let r = self.fixed(0x15, 0x1, &[], 16).expect("sensor attributes");
        let n = u32::from(le16(&r.payload, 0));
        let max_requests = r.payload[2];
        self.msg_check(0x15, 0x4);
        self.msg_check(0x15, 0xB);
        let mut sensors = Vec::new();
        let mut desc_index = 0u32;
        loop {
            let r = self.a.callw(0x15, 0x3, &[desc_index], 0);
            assert_eq!(
                r.status, 0,
                "SENSOR_DESCRIPTION_GET failed: Linux drops the sensor protocol"
            );
            let ret = u32::from(le16(&r.payload, 0));
            let rem = u32::from(le16(&r.payload, 2));
            assert!(
                ret <= n - desc_index,
                "No. of resources can't exceed {n}: Linux drops the sensor protocol"
            );
            let mut at = 4usize;
            for _ in 0..ret {
                let p = &r.payload;
                assert!(at + 28 <= p.len(), "descriptor beyond the reply");
                let mut s = Sensor {
                    id: le32(p, at),
                    attrl: le32(p, at + 4),
                    attrh: le32(p, at + 8),
                    name: cstr(&p[at + 12..at + 28]),
                    ..Sensor::default()
                };
                let num_axis = if s.attrh & 1 << 8 != 0 {
                    ((s.attrh >> 16) & 0x3f).min(63)
                } else {
                    0
                };
                let mut dsize = 28;
                if s.attrl & 1 << 8 != 0 {
                    dsize += 4;
                    if num_axis == 0 {
                        dsize += 20;
                    }
                }
                assert!(at + dsize <= p.len(), "descriptor beyond the reply");
                if v != 0x10000 {
                    self.sensor_intervals(&mut s);
                }
                if v >> 16 >= 3 && s.attrl & 1 << 29 != 0 {
                    let short = s.name.clone();
                    s.name = self.extended_name(0x15, 0xC, s.id, &short);
                }
                if num_axis > 0 {
                    self.sensor_axes(&mut s, num_axis, v);
                }
                sensors.push(s);
                at += dsize;
            }
            if at != r.payload.len() {
                self.complain(format!(
                    "SENSOR_DESCRIPTION_GET({desc_index}): {ret} descriptors take {at} of {} bytes",
                    r.payload.len()
                ));
            }
            desc_index += ret;
            if ret == 0 || rem == 0 {
                break;
            }
        }
        self.p.sensors = Some((sensors, max_requests));
    }

    /// `scmi_sensor_update_intervals` (optional, errors ignored).
    fn sensor_intervals(&mut self, s: &mut Sensor) {
        let mut max = 0u32;
        let mut desc_index = 0u32;
        loop {
            let r = self.a.callw(0x15, 0x8, &[s.id, desc_index], 0);
            if r.status != 0 {
                return;
            }
            let f = r.word(0);
            let (ret, rem, seg) = (f & 0xfff, f >> 16, f & 1 << 12 != 0);
            if max == 0 {
                s.segmented = seg;
                if seg && (rem != 0 || ret != 3) {
                    self.complain(format!("sensor {}: invalid segmented interval", s.id));
                    return;
                }
                max = ret + rem;
            }
            if ret > max - desc_index {
                self.complain(format!("sensor {}: too many intervals", s.id));
                return;
            }
            if r.payload.len() != 4 + 4 * ret as usize {
                self.complain(format!(
                    "sensor {}: {ret} intervals in {}",
                    s.id,
                    r.payload.len()
                ));
            }
            s.intervals
                .extend(r.words()[1..1 + ret as usize].iter().copied());
            desc_index += ret;
            if ret == 0 || rem == 0 {
                break;
            }
        }
    }

    /// `scmi_sensor_axis_description` then, if any axis says so,
    /// `scmi_sensor_axis_extended_names_get`.
    fn sensor_axes(&mut self, s: &mut Sensor, num_axis: u32, v: u32) {
        let mut desc_index = 0u32;
        let mut any_ext = false;
        loop {
            let r = self.a.callw(0x15, 0x7, &[s.id, desc_index], 0);
            assert_eq!(
                r.status, 0,
                "AXIS_DESCRIPTION_GET failure is fatal in Linux"
            );
            let f = r.word(0);
            let (ret, rem) = (f & 0x3f, f >> 26);
            assert!(ret <= num_axis - desc_index, "too many axes");
            let p = &r.payload;
            let mut at = 4;
            for _ in 0..ret {
                let a = Axis {
                    id: le32(p, at),
                    attrl: le32(p, at + 4),
                    attrh: le32(p, at + 8),
                    name: cstr(&p[at + 12..at + 28]),
                };
                any_ext |= a.attrl & 1 << 9 != 0;
                at += if a.attrl & 1 << 8 != 0 { 48 } else { 28 };
                s.axes.push(a);
            }
            if at != p.len() {
                self.complain(format!(
                    "sensor {}: axes take {at} of {} bytes",
                    s.id,
                    p.len()
                ));
            }
            desc_index += ret;
            if ret == 0 || rem == 0 {
                break;
            }
        }
        if v >> 16 >= 3 && any_ext {
            let mut desc_index = 0u32;
            loop {
                let r = self.a.callw(0x15, 0xD, &[s.id, desc_index], 0);
                if r.status != 0 {
                    self.complain(format!("AXIS_NAME_GET({}) {}", s.id, r.status));
                    break;
                }
                let f = r.word(0);
                let (ret, rem) = (f & 0x3f, f >> 26);
                if ret > num_axis - desc_index {
                    self.complain("too many axis names".into());
                    break;
                }
                if r.payload.len() != 4 + 68 * ret as usize {
                    self.complain(format!("{ret} axis names in {}", r.payload.len()));
                }
                for i in 0..ret as usize {
                    let at = 4 + 68 * i;
                    let id = le32(&r.payload, at);
                    match s.axes.get_mut(id as usize) {
                        Some(a) => a.name = cstr(&r.payload[at + 4..at + 68]),
                        None => self.complain(format!("axis id {id} out of range")),
                    }
                }
                desc_index += ret;
                if ret == 0 || rem == 0 {
                    break;
                }
            }
        }
    }

    fn reset(&mut self) {
        let v = self.version(0x16);
        let r = self.fixed(0x16, 0x1, &[], 4).expect("reset attributes");
        let n = r.word(0) & 0xffff;
        self.msg_check(0x16, 0x5);
        let mut doms = Vec::new();
        for d in 0..n {
            let Some(r) = self.fixed(0x16, 0x3, &[d], 24) else {
                doms.push((Named::default(), 0));
                continue;
            };
            let attrs = r.word(0);
            let latency = r.word(1);
            let mut name = cstr(&r.payload[8..24]);
            if v >> 16 >= 3 && attrs & 1 << 29 != 0 {
                name = self.extended_name(0x16, 0x6, d, &name);
            }
            doms.push((Named { attrs, name }, latency));
        }
        self.p.resets = Some(doms);
    }

    fn voltage(&mut self) {
        let v = self.version(0x17);
        let r = self.fixed(0x17, 0x1, &[], 4).expect("voltage attributes");
        let n = r.word(0) & 0xffff;
        let mut doms = Vec::new();
        for d in 0..n {
            let Some(r) = self.fixed(0x17, 0x3, &[d], 20) else {
                doms.push(None);
                continue;
            };
            let attrs = r.word(0);
            let mut name = cstr(&r.payload[4..20]);
            if v >> 16 >= 2 && attrs & 1 << 30 != 0 {
                name = self.extended_name(0x17, 0x9, d, &name);
            }
            let mut dom = VoltDomain {
                info: Named { attrs, name },
                ..VoltDomain::default()
            };
            let mut max = 0u32;
            let mut desc_index = 0u32;
            loop {
                let r = self.a.callw(0x17, 0x4, &[d, desc_index], 0);
                if r.status != 0 {
                    self.complain(format!("VOLTAGE_DESCRIBE_LEVELS({d}) {}", r.status));
                    dom.levels.clear();
                    break;
                }
                let f = r.word(0);
                let (ret, rem, seg) = (f & 0xfff, f >> 16, f & 1 << 12 != 0);
                if max == 0 {
                    max = ret + rem;
                    dom.segmented = seg;
                    if max == 0 || (seg && (ret != 3 || rem != 0)) {
                        self.complain(format!("voltage {d}: bad level count"));
                        break;
                    }
                }
                if ret > max - desc_index {
                    self.complain(format!("voltage {d}: too many levels"));
                    break;
                }
                if r.payload.len() != 4 + 4 * ret as usize {
                    self.complain(format!("voltage {d}: {ret} levels in {}", r.payload.len()));
                }
                dom.levels.extend(
                    le_words(&r.payload[4..])
                        .iter()
                        .take(ret as usize)
                        .map(|&x| x as i32),
                );
                desc_index += ret;
                if ret == 0 || rem == 0 {
                    break;
                }
            }
            doms.push(Some(dom));
        }
        self.p.voltages = Some(doms);
    }
}

/// Largest payload any reply may carry.
pub const REPLY_LIMIT: usize = MAX_MSG;
