//! Writes a [`Manifest`] back as device-tree source in the manifest format
//! (loading the output gives the same manifest).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use platform_sim::voltage::VoltageInit;
use scmi_server::protocols::{clock, perf, reset};

use crate::model::*;

struct Out {
    s: String,
    depth: usize,
}

impl Out {
    fn line(&mut self, text: &str) {
        for _ in 0..self.depth * usize::from(!text.is_empty()) {
            self.s.push('\t');
        }
        self.s.push_str(text);
        self.s.push('\n');
    }
    fn open(&mut self, name: &str) {
        self.line(&format!("{name} {{"));
        self.depth += 1;
    }
    fn close(&mut self) {
        self.depth -= 1;
        self.line("};");
    }
    fn prop(&mut self, name: &str, value: &str) {
        self.line(&format!("{name} = {value};"));
    }
    fn flag(&mut self, name: &str, on: bool) {
        if on {
            self.line(&format!("{name};"));
        }
    }
    fn str(&mut self, name: &str, v: &str) {
        self.prop(name, &format!("\"{v}\""));
    }
    fn u32(&mut self, name: &str, v: u32) {
        self.prop(name, &format!("<{v}>"));
    }
    fn hex(&mut self, name: &str, v: u32) {
        self.prop(name, &format!("<{v:#x}>"));
    }
    fn cells(&mut self, name: &str, v: impl IntoIterator<Item = String>) {
        let v: Vec<String> = v.into_iter().collect();
        self.prop(name, &format!("<{}>", v.join(" ")));
    }
    fn bits64(&mut self, name: &str, v: impl IntoIterator<Item = String>) {
        let v: Vec<String> = v.into_iter().collect();
        self.prop(name, &format!("/bits/ 64 <{}>", v.join(" ")));
    }
    fn addressed(&mut self) {
        self.u32("#address-cells", 1);
        self.u32("#size-cells", 0);
    }
    fn resource(&mut self, kind: &str, id: usize, name: &str) {
        self.open(&format!("{kind}@{id:x}"));
        self.u32("reg", id as u32);
        self.str("label", name);
    }
}

/// A signed number as a cell expression.
fn signed(v: i64) -> String {
    if v < 0 {
        format!("({v})")
    } else {
        format!("{v}")
    }
}

fn hex64(v: u64) -> String {
    format!("{:#x} {:#x}", (v >> 32) as u32, v as u32)
}

fn interval(i: &Interval) -> [String; 2] {
    [format!("{}", i.secs), signed(i64::from(i.exp))]
}

fn range(o: &mut Out, r: &Range) {
    o.bits64("range", [signed(r.min), signed(r.max)]);
    o.cells(
        "resolution",
        [
            format!("{}", r.resolution),
            signed(i64::from(r.resolution_exp)),
        ],
    );
}

fn wave(o: &mut Out, w: &Wave) {
    match *w {
        Wave::Tri {
            base,
            amp,
            period,
            phase,
        } => o.bits64(
            "sim-triangle",
            [
                signed(base),
                signed(amp),
                format!("{period}"),
                format!("{phase}"),
            ],
        ),
        Wave::Ramp { per_s } => o.bits64("sim-ramp", [signed(per_s)]),
        Wave::Const(v) => o.bits64("sim-constant", [signed(v)]),
    }
}

/// The manifest as device-tree source.
pub fn to_dts(m: &Manifest) -> String {
    let mut o = Out {
        s: String::from("/dts-v1/;\n\n"),
        depth: 0,
    };
    o.open("/");
    partition(&mut o, &m.partition);
    if !m.virtio.is_empty() {
        o.line("");
        o.open("virtio");
        o.addressed();
        for d in &m.virtio {
            o.open(&format!("device@{:x}", d.index));
            o.u32("reg", d.index);
            o.u32("device-id", d.device_id);
            o.str("transport", d.transport.as_str());
            o.u32("agent", d.agent);
            o.cells("queue-sizes", d.queue_sizes.iter().map(|q| format!("{q}")));
            o.flag("p2a-channels", d.p2a);
            if let Some((b, s)) = d.shared_window {
                o.bits64("shared-window", [format!("{b:#x}"), format!("{s:#x}")]);
            }
            if let Some((off, s)) = d.channel {
                o.bits64("channel", [format!("{off:#x}"), format!("{s:#x}")]);
            }
            if let Some((e, s)) = d.channel_geometry {
                o.cells("channel-geometry", [format!("{e}"), format!("{s}")]);
            }
            if let Some(b) = d.mmio_base {
                o.bits64("mmio-base", [format!("{b:#x}")]);
            }
            if let Some(b) = d.doorbell {
                o.u32("doorbell", b);
            }
            if !d.interrupts.is_empty() {
                o.cells(
                    "interrupts",
                    d.interrupts.iter().map(|(i, a)| format!("{i} {a:#x}")),
                );
            }
            if let Some(s) = &d.socket {
                o.str("socket", s);
            }
            if let Some(n) = d.max_areas {
                o.u32("max-areas", n);
            }
            if let Some(x) = d.xen {
                o.u32("xen,driver-domain", u32::from(x.driver_domain));
                o.u32("xen,event-channel", x.event_channel);
                o.u32("xen,channel-grant", x.channel_grant);
                let (b, s) = x.grant_window;
                o.bits64("xen,grant-window", [format!("{b:#x}"), format!("{s:#x}")]);
            }
            o.close();
        }
        o.close();
    }
    o.line("");
    scmi(&mut o, &m.scmi);
    o.close();
    o.s
}

fn partition(o: &mut Out, p: &Partition) {
    o.str(
        "compatible",
        &format!("arm,ffa-manifest-{}.{}", p.binding.0, p.binding.1),
    );
    if let Some(d) = &p.description {
        o.str("description", d);
    }
    o.hex("ffa-version", p.ffa_version);
    if !p.services {
        o.cells(
            "uuid",
            p.uuids
                .iter()
                .flat_map(|u| u.iter().map(|w| format!("{w:#010x}"))),
        );
        o.cells(
            "messaging-method",
            p.messaging_method.iter().map(|m| format!("{m:#x}")),
        );
    }
    if let Some(i) = p.id {
        o.hex("id", i);
    }
    o.u32("execution-ctx-count", p.execution_ctx_count);
    o.u32("exception-level", p.exception_level);
    o.u32("execution-state", p.execution_state);
    if let Some(a) = p.load_address {
        o.prop("load-address", &format!("<{}>", hex64(a)));
    }
    if let Some(a) = p.entrypoint_offset {
        o.prop("entrypoint-offset", &format!("<{}>", hex64(a)));
    }
    if let Some(g) = p.xlat_granule {
        o.u32("xlat-granule", g);
    }
    if let Some(b) = p.boot_order {
        o.u32("boot-order", b);
    }
    if let Some(a) = p.ns_interrupts_action {
        o.u32("ns-interrupts-action", a);
    }
    if let Some(r) = p.gp_register_num {
        o.u32("gp-register-num", r);
    }
    o.flag("notification-support", p.notification_support);
    if p.services {
        o.open("services");
        o.str("compatible", "arm,ffa-manifest-services");
        for (i, (u, m)) in p.uuids.iter().zip(&p.messaging_method).enumerate() {
            o.open(&format!("service{i}"));
            o.str("uuid", &crate::model::uuid_text(u));
            o.hex("messaging-method", *m);
            o.close();
        }
        o.close();
    }
    if !p.boot_info.is_empty() {
        o.line("");
        o.open("boot-info");
        o.str("compatible", "arm,ffa-manifest-boot-info");
        for b in &p.boot_info {
            o.flag(b, true);
        }
        o.close();
    }
    for (name, regions) in [
        ("memory-regions", &p.memory_regions),
        ("device-regions", &p.device_regions),
    ] {
        if regions.is_empty() {
            continue;
        }
        o.line("");
        o.open(name);
        o.str("compatible", &format!("arm,ffa-manifest-{name}"));
        for r in regions {
            o.open(&r.node);
            if let Some(d) = &r.description {
                o.str("description", d);
            }
            if let Some(b) = r.base_address {
                o.prop("base-address", &format!("<{}>", hex64(b)));
            }
            if r.system_registers {
                o.flag("system-registers", true);
            } else {
                o.u32("pages-count", r.pages_count);
            }
            o.hex("attributes", r.attributes);
            if !r.interrupts.is_empty() {
                o.cells(
                    "interrupts",
                    r.interrupts.iter().map(|(i, a)| format!("{i} {a:#x}")),
                );
            }
            o.close();
        }
        o.close();
    }
}

const PROTOCOL_PROPS: [(u8, &str); 6] = [
    (0x11, "power-domain-ids"),
    (0x13, "perf-domain-ids"),
    (0x14, "clock-ids"),
    (0x15, "sensor-ids"),
    (0x16, "reset-domain-ids"),
    (0x17, "voltage-domain-ids"),
];

fn scmi(o: &mut Out, s: &Scmi) {
    o.open("scmi");
    o.str("vendor", &s.vendor);
    o.str("sub-vendor", &s.sub_vendor);
    o.hex("implementation-version", s.implementation_version);
    if let Some(t) = s.max_rx_timeout_ms {
        o.u32("max-rx-timeout-ms", t);
    }

    o.line("");
    o.open("agents");
    o.addressed();
    for (i, a) in s.agents.iter().enumerate() {
        o.resource("agent", i + 1, &a.name);
        o.flag("trusted", a.trusted);
        if a.protocols != u32::MAX {
            o.cells(
                "protocols",
                crate::PROTOCOLS
                    .iter()
                    .filter(|p| a.protocols & scmi_server::config::protocol_bit(**p) != 0)
                    .map(|p| format!("{p:#x}")),
            );
        }
        if a.devices != u32::MAX {
            o.cells(
                "devices",
                (0..32)
                    .filter(|d| a.devices & (1 << d) != 0)
                    .map(|d| format!("{d}")),
            );
        }
        o.close();
    }
    o.close();

    if !s.devices.is_empty() {
        o.line("");
        o.open("devices");
        o.addressed();
        for (i, d) in s.devices.iter().enumerate() {
            o.resource("device", i, &d.name);
            for (id, prop) in PROTOCOL_PROPS {
                let ids: Vec<String> = d
                    .resources
                    .iter()
                    .filter(|(p, _)| *p == id)
                    .map(|(_, r)| format!("{r}"))
                    .collect();
                if !ids.is_empty() {
                    o.cells(prop, ids);
                }
            }
            o.close();
        }
        o.close();
    }

    o.line("");
    o.open("power-domains");
    o.addressed();
    for (i, d) in s.power.iter().enumerate() {
        o.resource("domain", i, &d.name);
        o.flag("sync-set", d.sync_set);
        o.flag("async-set", d.async_set);
        o.flag("notify-changed", d.notify_changed);
        o.flag("notify-requested", d.notify_requested);
        o.str("boot-state", if d.boot_on { "on" } else { "off" });
        o.close();
    }
    o.close();

    if let Some(p) = &s.system {
        o.line("");
        o.open("system-power");
        o.flag("warm-reset", p.warm_reset);
        o.flag("suspend", p.suspend);
        o.u32("graceful-timeout-ms", p.graceful_timeout_ms);
        o.close();
    }

    o.line("");
    o.open("perf-domains");
    o.addressed();
    o.str(
        "power-unit",
        match s.perf_power_unit {
            perf::POWER_MICROWATT => "microwatt",
            perf::POWER_ABSTRACT => "abstract",
            _ => "milliwatt",
        },
    );
    for (i, d) in s.perf.iter().enumerate() {
        o.resource("domain", i, &d.name);
        o.line("/* value, power cost, latency (us), indicative kHz */");
        let rows: Vec<String> = d
            .levels
            .iter()
            .map(|l| {
                format!(
                    "{} {} {} {}",
                    l.value, l.power_cost, l.latency_us, l.indicative_khz
                )
            })
            .collect();
        o.line("levels =");
        o.depth += 1;
        for (k, r) in rows.iter().enumerate() {
            let end = if k + 1 == rows.len() { ";" } else { "," };
            o.line(&format!("<{r}>{end}"));
        }
        o.depth -= 1;
        o.flag("set-limits", d.set_limits);
        o.flag("set-level", d.set_level);
        o.flag("notify-limits", d.notify_limits);
        o.flag("notify-level", d.notify_level);
        o.flag("level-indexing", d.level_indexing);
        o.u32("rate-limit-us", d.rate_limit_us);
        o.u32("sustained-khz", d.sustained_khz);
        o.u32("sustained-level", d.sustained_level);
        if d.boot_level != d.sustained_level {
            o.u32("boot-level", d.boot_level);
        }
        o.close();
    }
    o.close();

    o.line("");
    o.open("clocks");
    o.addressed();
    for (i, c) in s.clocks.iter().enumerate() {
        o.resource("clock", i, &c.name);
        match &c.rates {
            Rates::List(l) => o.bits64("rates", l.iter().map(|r| format!("{r}"))),
            Rates::Range { min, max, step } => o.bits64(
                "rate-range",
                [format!("{min}"), format!("{max}"), format!("{step}")],
            ),
        }
        o.bits64("default-rate", [format!("{}", c.init.rate)]);
        o.flag("default-on", c.init.on);
        if !c.parents.is_empty() {
            o.cells("parents", c.parents.iter().map(|p| format!("{p}")));
            if Some(&c.init.parent) != c.parents.first() {
                o.u32("default-parent", c.init.parent);
            }
        }
        if c.enable_latency_us != 0 {
            o.u32("enable-latency-us", c.enable_latency_us);
        }
        o.flag("rate-notify", c.rate_notify);
        if !c.ext_config.is_empty() {
            o.cells("ext-config", c.ext_config.iter().map(|k| format!("{k:#x}")));
        }
        if c.permissions != clock::perm::ALL {
            let mut names = Vec::new();
            for (bit, n) in [
                (clock::perm::STATE, "state"),
                (clock::perm::PARENT, "parent"),
                (clock::perm::RATE, "rate"),
            ] {
                if c.permissions & bit != 0 {
                    names.push(format!("\"{n}\""));
                }
            }
            if names.is_empty() {
                names.push(String::from("\"none\""));
            }
            o.prop("permissions", &names.join(", "));
        }
        o.close();
    }
    o.close();

    o.line("");
    o.open("sensors");
    o.addressed();
    o.u32("max-async-reads", u32::from(s.sensor_max_async));
    for (i, d) in s.sensors.iter().enumerate() {
        o.resource("sensor", i, &d.name);
        o.hex("unit", u32::from(d.class));
        o.prop("scale", &format!("<{}>", signed(i64::from(d.scale))));
        if d.trip_points != 0 {
            o.u32("trip-points", u32::from(d.trip_points));
        }
        o.flag("async-read", d.async_read);
        o.flag("update-notify", d.update_notify);
        if let Some(e) = d.timestamp_exp {
            o.prop("timestamp-exponent", &format!("<{}>", signed(i64::from(e))));
        }
        if let Some(e) = &d.ext {
            o.u32("power-microwatts", e.power_uw);
            range(o, &e.range);
        }
        match &d.intervals {
            Intervals::None => {}
            Intervals::List(l) => o.cells("update-intervals", l.iter().flat_map(interval)),
            Intervals::Segment { low, high, step } => o.cells(
                "update-interval-segment",
                [low, high, step].into_iter().flat_map(interval),
            ),
        }
        if d.axes.is_empty() {
            if let Some(w) = d.waves.first() {
                wave(o, w);
            }
        } else {
            o.addressed();
            for (k, a) in d.axes.iter().enumerate() {
                o.resource("axis", k, &a.name);
                o.hex("unit", u32::from(a.class));
                o.prop("scale", &format!("<{}>", signed(i64::from(a.scale))));
                if let Some(r) = &a.ext {
                    range(o, r);
                }
                if let Some(w) = d.waves.get(k) {
                    wave(o, w);
                }
                o.close();
            }
        }
        o.close();
    }
    o.close();

    o.line("");
    o.open("reset-domains");
    o.addressed();
    for (i, r) in s.resets.iter().enumerate() {
        o.resource("domain", i, &r.name);
        if r.latency_us != reset::LATENCY_UNKNOWN {
            o.u32("latency-us", r.latency_us);
        }
        o.flag("async", r.async_capable);
        o.flag("notify", r.notify);
        if !r.impl_states.is_empty() {
            o.cells("impl-states", r.impl_states.iter().map(|s| format!("{s}")));
        }
        o.close();
    }
    o.close();

    o.line("");
    o.open("voltage-domains");
    o.addressed();
    for (i, v) in s.voltages.iter().enumerate() {
        o.resource("domain", i, &v.name);
        match &v.levels {
            Levels::List(l) => o.cells("levels", l.iter().map(|x| signed(i64::from(*x)))),
            Levels::Range { min, max, step } => o.cells(
                "level-range",
                [min, max, step].into_iter().map(|x| signed(i64::from(*x))),
            ),
        }
        o.flag("async", v.async_capable);
        if v.impl_modes != 0 {
            o.cells(
                "impl-modes",
                (0..8u32)
                    .filter(|b| v.impl_modes & (1 << b) != 0)
                    .map(|b| format!("{:#x}", 0x8 + b)),
            );
        }
        let VoltageInit { level, config } = v.init;
        o.prop("default-level", &format!("<{}>", signed(i64::from(level))));
        if config == scmi_server::protocols::voltage::MODE_OFF {
            o.str("default-mode", "off");
        }
        o.close();
    }
    o.close();
    o.close();
}
