//! Our virtio-scmi device (`virtio_scmi::VirtioScmi`, device
//! id 32) behind our virtio core, driven by an SCMI agent written on
//! `virtio-drivers`' `VirtQueue` ([`frontend_tests::scmi_agent`]) that
//! behaves like Linux 6.12's `drivers/firmware/arm_scmi/transports/virtio.c`
//! (`virtio_send_message`, `scmi_vio_feed_vq_rx`, `scmi_vio_complete_cb`)
//! and `msg.c` (`msg_fetch_response`, `msg_fetch_notification`), over the
//! virtio-msg loopback and the trapped virtio-mmio page.
//!
//! The discovery test replays Linux 6.12's probe
//! ([`frontend_tests::scmi_probe`], which names every function it mirrors:
//! `base.c:scmi_base_protocol_init`, `power.c:scmi_power_protocol_init`,
//! `system.c:scmi_system_protocol_init`, `perf.c:scmi_perf_protocol_init`,
//! `clock.c:scmi_clock_protocol_init`, `sensors.c:scmi_sensors_protocol_init`,
//! `reset.c:scmi_reset_protocol_init`, `voltage.c:scmi_voltage_protocol_init`
//! and `driver.c:scmi_iterator_run` / `scmi_common_extended_name_get` /
//! `scmi_protocol_msg_check`).

mod common;

use std::cell::RefCell;
use std::sync::Arc;

use frontend_tests::arena::{Arena, ArenaHal};
use frontend_tests::loopback::{Kind, Loopback, Mode};
use frontend_tests::scmi_agent::{
    AgentOptions, F_EVENT_IDX, F_INDIRECT_DESC, F_P2A_CHANNELS, MAX_PDU, ScmiAgent, msg_type,
};
use frontend_tests::scmi_probe::{Probe, Prober, Rates};
use frontend_tests::transport::AnyTransport;
use platform_host_vhost_user as builtin;
use scmi_server::Server;
use scmi_server::config::{AgentConfig, Config, DeviceConfig};
use virtio_scmi::{Options, VirtioScmi};

type Srv = Server<builtin::Platform, 4, 32>;
type Shared = &'static RefCell<Srv>;
type Dev = VirtioScmi<Shared>;
type Link = Arc<Loopback<Dev, 2>>;
type Agent = ScmiAgent<AnyTransport<Dev, 2>, ArenaHal>;

const SUCCESS: i32 = 0;
const NOT_SUPPORTED: i32 = -1;
const INVALID_PARAMETERS: i32 = -2;
const DENIED: i32 = -3;
const NOT_FOUND: i32 = -4;
const OUT_OF_RANGE: i32 = -5;
const GENERIC_ERROR: i32 = -8;
const PROTOCOL_ERROR: i32 = -10;

static ONE: Config = Config {
    vendor: "rust-scmi",
    sub_vendor: "frontend",
    implementation_version: 0x0001_0203,
    agents: &[AgentConfig {
        name: "linux",
        trusted: true,
        protocols: u32::MAX,
        devices: u32::MAX,
    }],
    devices: &[],
};

fn shared(config: &'static Config) -> Shared {
    Box::leak(Box::new(RefCell::new(Srv::new(config, builtin::PLATFORM))))
}

/// A device for `agent` of `server` over `kind`; the first link of an
/// arena takes the arena's transport page, later ones a page of their own.
fn link(arena: &Arena, kind: Kind, server: Shared, agent: u32, first: bool, opts: Options) -> Link {
    let dev = VirtioScmi::with_options(server, agent, opts);
    if first {
        Loopback::new(arena, kind, Mode::Inline, dev)
    } else {
        let page = arena.alloc_transport_page();
        Loopback::with_page(arena, page, kind, Mode::Inline, dev)
    }
}

fn agent(link: &Link, opts: AgentOptions) -> Agent {
    ScmiAgent::new(AnyTransport::new(link), opts)
}

fn words(args: &[u32]) -> Vec<u8> {
    args.iter().flat_map(|w| w.to_le_bytes()).collect()
}

both_transports!(
    discovery_as_linux_6_12,
    discovery_without_indirect_or_event_idx,
);

fn discovery_as_linux_6_12(kind: Kind) {
    discovery(kind, AgentOptions::default(), true);
}

fn discovery_without_indirect_or_event_idx(kind: Kind) {
    let opts = AgentOptions {
        indirect: false,
        event_idx: false,
        ..AgentOptions::default()
    };
    discovery(kind, opts, false);
}

fn discovery(kind: Kind, opts: AgentOptions, ring_features: bool) {
    let arena = Arena::new();
    let server = shared(&ONE);
    let l = link(&arena, kind, server, 1, true, Options::default());
    let mut a = agent(&l, opts);
    let f = a.features();
    assert_ne!(f & F_P2A_CHANNELS, 0);
    assert_eq!(f & F_INDIRECT_DESC != 0, ring_features);
    assert_eq!(f & F_EVENT_IDX != 0, ring_features);
    assert_eq!(a.stats().indirect, ring_features);
    assert_eq!(a.event_buffers_posted(), 64, "eventq pre-filled");

    let p = Prober::run(&mut a);
    eprintln!(
        "probe: {} commands, longest reply {}",
        a.transcript().len(),
        a.stats().longest_reply
    );
    check_probe(&p, a.transcript());
    let s = a.stats();
    assert!(s.longest_reply as usize <= MAX_PDU);
    assert_eq!(s.commands, s.replies, "every command answered");
    assert_eq!(s.commands as usize, a.transcript().len());
    let dev = l.with_device(|d| d.stats());
    assert_eq!(dev.requests, s.commands);
    assert_eq!(dev.replies, s.commands);
    assert_eq!(dev.unanswerable + dev.invalid_chains + dev.access_errors, 0);
    assert!(a.drain_events().is_empty(), "no notification unasked");
}

/// What Linux 6.12 would conclude from the probe, checked against the
/// simulated platform's tables, and the exact command order at the start.
fn check_probe(p: &Probe, sent: &[frontend_tests::scmi_agent::Sent]) {
    assert!(
        p.complaints.is_empty(),
        "Linux would complain: {:#?}",
        p.complaints
    );
    // Base, in scmi_base_protocol_init order.
    let head: Vec<(u8, u8, Vec<u8>, usize)> = sent
        .iter()
        .take(7)
        .map(|s| (s.protocol, s.msg_id, s.payload.clone(), s.rx_size))
        .collect();
    assert_eq!(
        head,
        vec![
            (0x10, 0x0, vec![], 4),
            (0x10, 0x1, vec![], 4),
            (0x10, 0x3, vec![], 16),
            (0x10, 0x4, vec![], 16),
            (0x10, 0x5, vec![], 4),
            (0x10, 0x6, words(&[0]), 0),
            (0x10, 0x7, words(&[0]), 20),
        ]
    );
    let b = &p.base;
    assert_eq!(b.version, 0x0002_0001);
    assert_eq!(
        (b.vendor.as_str(), b.sub_vendor.as_str()),
        ("rust-scmi", "frontend")
    );
    assert_eq!(b.impl_version, 0x0001_0203);
    assert_eq!(b.protocols, vec![0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]);
    assert_eq!(usize::from(b.num_protocols), b.protocols.len());
    assert_eq!(b.num_agents, 1);
    assert_eq!(b.agents, vec![(0, "platform".to_owned())]);
    // Versions Linux knows, none above.
    assert_eq!(
        p.versions,
        vec![
            (0x10, 0x2_0001),
            (0x11, 0x3_0001),
            (0x12, 0x2_0001),
            (0x13, 0x4_0000),
            (0x14, 0x3_0000),
            (0x15, 0x3_0001),
            (0x16, 0x3_0001),
            (0x17, 0x2_0001)
        ]
    );
    // Notify probing: every notify command exists.
    let checks: Vec<(u8, u8)> = p.msg_checks.iter().map(|&(p, m, _)| (p, m)).collect();
    assert_eq!(
        checks,
        vec![
            (0x11, 6),
            (0x12, 5),
            (0x13, 0xA),
            (0x13, 9),
            (0x14, 9),
            (0x14, 0xA),
            (0x15, 4),
            (0x15, 0xB),
            (0x16, 5)
        ]
    );
    assert!(p.msg_checks.iter().all(|c| c.2), "{:?}", p.msg_checks);

    let power = p.power.as_ref().expect("power probed");
    assert_eq!(power.len(), builtin::TABLES.power.boot.len());
    assert!(p.system);
    let perf = p.perf.as_ref().expect("perf probed");
    assert!(!perf.is_empty());
    for d in perf {
        assert!(
            !d.levels.is_empty() && d.levels.len() <= 32,
            "{}",
            d.info.name
        );
        assert!(!d.info.name.is_empty());
    }
    let (clocks, _) = p.clocks.as_ref().expect("clocks probed");
    assert_eq!(clocks.len(), builtin::TABLES.clock.clocks.len());
    let mut names: Vec<&str> = clocks.iter().map(|c| c.info.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        clocks.len(),
        "clock names are unique (clk-scmi)"
    );
    for c in clocks {
        match &c.rates {
            Rates::Discrete(r) => assert!(!r.is_empty() && r.len() <= 16, "{}", c.info.name),
            Rates::Range(lo, hi, step) => assert!(lo <= hi && *step > 0, "{}", c.info.name),
        }
        for &parent in &c.parents {
            assert!(
                (parent as usize) < clocks.len(),
                "parent id beyond num_clocks"
            );
        }
    }
    let (sensors, _) = p.sensors.as_ref().expect("sensors probed");
    assert_eq!(sensors.len(), builtin::TABLES.sensor.sensors.len());
    for (i, s) in sensors.iter().enumerate() {
        assert_eq!(s.id as usize, i, "sensor id equals its index (hwmon)");
        let axes = if s.attrh & 1 << 8 != 0 {
            (s.attrh >> 16) & 0x3f
        } else {
            0
        };
        assert_eq!(s.axes.len(), axes as usize);
    }
    let resets = p.resets.as_ref().expect("resets probed");
    assert_eq!(resets.len(), builtin::TABLES.reset.resets.len());
    let volts = p.voltages.as_ref().expect("voltages probed");
    assert!(!volts.is_empty());
    for v in volts {
        let v = v.as_ref().expect("no voltage domain skipped");
        assert!(!v.levels.is_empty());
    }
    // Extended names were asked exactly for resources flagging them.
    let ext = |proto: u8, msg: u8| {
        sent.iter()
            .filter(|s| s.protocol == proto && s.msg_id == msg)
            .count()
    };
    assert_eq!(
        ext(0x11, 0x8),
        power.iter().filter(|d| d.attrs & 1 << 27 != 0).count()
    );
    assert_eq!(
        ext(0x14, 0x8),
        clocks
            .iter()
            .filter(|c| c.info.attrs & 1 << 29 != 0)
            .count()
    );
    assert_eq!(
        ext(0x15, 0xC),
        sensors.iter().filter(|s| s.attrl & 1 << 29 != 0).count()
    );
    assert_eq!(
        ext(0x16, 0x6),
        resets.iter().filter(|d| d.0.attrs & 1 << 29 != 0).count()
    );
    // Names of 15+ characters come from NAME_GET.
    for n in power
        .iter()
        .map(|d| &d.name)
        .chain(clocks.iter().map(|c| &c.info.name))
    {
        assert!(n.len() < 64);
    }
}

/// A probed single-agent rig.
struct Rig {
    _arena: Arena,
    link: Link,
    a: Agent,
    p: Probe,
}

fn rig(kind: Kind, opts: AgentOptions) -> Rig {
    let arena = Arena::new();
    let server = shared(&ONE);
    let link = link(&arena, kind, server, 1, true, Options::default());
    let mut a = agent(&link, opts);
    let p = Prober::run(&mut a);
    assert!(p.complaints.is_empty(), "{:?}", p.complaints);
    Rig {
        _arena: arena,
        link,
        a,
        p,
    }
}

/// A command that must succeed with exactly `len` payload bytes (`None`:
/// any length up to 128).
fn ok(a: &mut Agent, proto: u8, msg: u8, args: &[u32], rx: usize, len: Option<usize>) -> Vec<u32> {
    let r = a.callw(proto, msg, args, rx);
    assert_eq!(r.status, SUCCESS, "{proto:#x}/{msg:#x} {args:x?}");
    if let Some(n) = len {
        assert_eq!(
            r.payload.len(),
            n,
            "{proto:#x}/{msg:#x} {args:x?} reply length"
        );
        assert_eq!(r.used_len as usize, 8 + n);
    }
    r.words()
}

/// A command that must fail with `status` (its reply exactly the status).
fn err(a: &mut Agent, proto: u8, msg: u8, args: &[u32], status: i32) {
    let r = a.callw(proto, msg, args, 0);
    assert_eq!(r.status, status, "{proto:#x}/{msg:#x} {args:x?}");
    assert_eq!(r.used_len, 8);
}

both_transports!(
    base_every_command,
    power_and_system_every_command,
    perf_every_command,
);

fn base_every_command(kind: Kind) {
    let Rig { mut a, _arena, .. } = rig(kind, AgentOptions::default());
    assert_eq!(ok(&mut a, 0x10, 0x0, &[], 4, Some(4)), [0x2_0001]);
    ok(&mut a, 0x10, 0x1, &[], 4, Some(4));
    for m in [
        0x0u32, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xA, 0xB, 0x10,
    ] {
        ok(&mut a, 0x10, 0x2, &[m], 0, Some(4));
    }
    err(&mut a, 0x10, 0x2, &[0x3f], NOT_FOUND);
    ok(&mut a, 0x10, 0x7, &[1], 20, Some(20));
    err(&mut a, 0x10, 0x7, &[9], NOT_FOUND);
    ok(&mut a, 0x10, 0x8, &[1], 0, Some(0));
    err(&mut a, 0x10, 0x8, &[2], INVALID_PARAMETERS);
    ok(&mut a, 0x10, 0x8, &[0], 0, Some(0));
    // No devices configured: nothing to permit.
    err(&mut a, 0x10, 0x9, &[1, 0, 1], NOT_FOUND);
    err(&mut a, 0x10, 0xA, &[1, 0, 0x14, 1], NOT_FOUND);
    ok(&mut a, 0x10, 0xB, &[1, 0], 0, Some(0));
    err(&mut a, 0x10, 0xB, &[7, 0], NOT_FOUND);
    ok(&mut a, 0x10, 0x10, &[0x2_0000], 0, Some(0));
    err(&mut a, 0x10, 0x10, &[0x3_0000], NOT_SUPPORTED);
    err(&mut a, 0x10, 0x3f, &[], NOT_FOUND);
    err(&mut a, 0x10, 0x7, &[], PROTOCOL_ERROR);
    // A protocol nobody implements.
    err(&mut a, 0x42, 0x0, &[], NOT_SUPPORTED);
}

fn power_and_system_every_command(kind: Kind) {
    let Rig {
        mut a, p, _arena, ..
    } = rig(kind, AgentOptions::default());
    let doms = p.power.clone().unwrap();
    ok(&mut a, 0x11, 0x1, &[], 16, Some(16));
    for (d, dom) in doms.iter().enumerate() {
        let d = d as u32;
        ok(&mut a, 0x11, 0x3, &[d], 20, Some(20));
        if dom.attrs & 1 << 27 != 0 {
            ok(&mut a, 0x11, 0x8, &[d], 68, Some(68));
        }
        // scmi_pd_power: SET then GET must read back exactly.
        if dom.attrs & 1 << 29 != 0 {
            for state in [0x4000_0000u32, 0] {
                ok(&mut a, 0x11, 0x4, &[0, d, state], 0, Some(0));
                assert_eq!(ok(&mut a, 0x11, 0x5, &[d], 4, Some(4)), [state]);
            }
        }
    }
    let n = doms.len() as u32;
    err(&mut a, 0x11, 0x3, &[n], NOT_FOUND);
    err(&mut a, 0x11, 0x5, &[n], NOT_FOUND);
    err(&mut a, 0x11, 0x4, &[0, n, 0], NOT_FOUND);
    ok(&mut a, 0x11, 0x6, &[0, 1], 0, Some(0));
    ok(&mut a, 0x11, 0x6, &[0, 0], 0, Some(0));
    ok(&mut a, 0x11, 0x7, &[0, 1], 0, Some(0));
    ok(&mut a, 0x11, 0x7, &[0, 0], 0, Some(0));
    err(&mut a, 0x11, 0x6, &[n, 1], NOT_FOUND);
    // System power.
    ok(&mut a, 0x12, 0x1, &[], 4, Some(4));
    ok(&mut a, 0x12, 0x5, &[1], 0, Some(0));
    ok(&mut a, 0x12, 0x5, &[0], 0, Some(0));
    err(&mut a, 0x12, 0x5, &[2], INVALID_PARAMETERS);
    ok(&mut a, 0x12, 0x4, &[], 4, Some(4));
    err(&mut a, 0x12, 0x3, &[0, 0x7fff_ffff], INVALID_PARAMETERS);
    ok(&mut a, 0x12, 0x3, &[1, 2], 0, Some(0));
    assert!(a.drain_events().is_empty());
}

fn perf_every_command(kind: Kind) {
    let Rig {
        mut a, p, _arena, ..
    } = rig(kind, AgentOptions::default());
    let doms = p.perf.clone().unwrap();
    ok(&mut a, 0x13, 0x1, &[], 16, Some(16));
    let mut set_one = false;
    for (d, dom) in doms.iter().enumerate() {
        let d = d as u32;
        ok(&mut a, 0x13, 0x3, &[d], 32, Some(32));
        if dom.info.attrs & 1 << 26 != 0 {
            ok(&mut a, 0x13, 0x0C, &[d], 68, Some(68));
        }
        let lim = ok(&mut a, 0x13, 0x6, &[d], 0, Some(8));
        assert!(lim[0] >= lim[1], "max >= min");
        let indexed = dom.info.attrs & 1 << 25 != 0;
        let value = |l: &[u32; 5]| if indexed { l[4] } else { l[0] };
        if dom.info.attrs & 1 << 30 != 0 && !set_one {
            set_one = true;
            let mut sorted = dom.levels.clone();
            sorted.sort_by_key(|l| l[0]);
            let lo = value(&sorted[0]);
            let hi = value(sorted.last().unwrap());
            ok(&mut a, 0x13, 0x0A, &[d, 1], 0, Some(0));
            ok(&mut a, 0x13, 0x7, &[d, lo], 0, Some(0));
            assert_eq!(ok(&mut a, 0x13, 0x8, &[d], 4, Some(4)), [lo]);
            let ev = a.drain_events();
            assert!(
                ev.iter()
                    .any(|e| e.header.msg_type == msg_type::NOTIFICATION
                        && e.header.protocol == 0x13
                        && e.header.msg_id == 1
                        && e.words()[1..] == [d, lo]),
                "PERFORMANCE_LEVEL_CHANGED {ev:?}"
            );
            assert!(
                ev.iter().all(|e| e.payload.len() == 12),
                "level events are 12 bytes"
            );
            ok(&mut a, 0x13, 0x0A, &[d, 0], 0, Some(0));
            if dom.info.attrs & 1 << 31 != 0 {
                // Narrower than the boot limits, so they change.
                let mid = value(&sorted[sorted.len() / 2]);
                ok(&mut a, 0x13, 0x9, &[d, 1], 0, Some(0));
                ok(&mut a, 0x13, 0x5, &[d, mid, lo], 0, Some(0));
                assert_eq!(ok(&mut a, 0x13, 0x6, &[d], 0, Some(8)), [mid, lo]);
                let ev = a.drain_events();
                assert!(
                    ev.iter()
                        .any(|e| e.header.msg_id == 0 && e.payload.len() == 16),
                    "PERFORMANCE_LIMITS_CHANGED {ev:?}"
                );
                ok(&mut a, 0x13, 0x9, &[d, 0], 0, Some(0));
                ok(&mut a, 0x13, 0x5, &[d, hi, lo], 0, Some(0));
                assert!(a.drain_events().is_empty(), "unsubscribed");
                err(&mut a, 0x13, 0x5, &[d, lo, hi], INVALID_PARAMETERS);
            }
            err(&mut a, 0x13, 0x7, &[d, 0x7fff_fff0], OUT_OF_RANGE);
        }
    }
    assert!(set_one, "some perf domain accepts LEVEL_SET");
    let n = doms.len() as u32;
    err(&mut a, 0x13, 0x8, &[n], NOT_FOUND);
    err(&mut a, 0x13, 0x4, &[n, 0], NOT_FOUND);
    err(&mut a, 0x13, 0x4, &[0, 1000], OUT_OF_RANGE);
    let fc = a.callw(0x13, 0xB, &[0, 0x7], 44);
    assert_ne!(fc.status, SUCCESS, "no fast channels over virtio");
}

both_transports!(
    clock_every_command,
    sensor_every_command,
    reset_and_voltage_every_command,
    two_agents_permissions,
    events_wait_for_eventq_buffers,
    robustness_through_the_front_end,
);

fn clock_every_command(kind: Kind) {
    let Rig {
        mut a, p, _arena, ..
    } = rig(kind, AgentOptions::default());
    let (clocks, max_async) = p.clocks.clone().unwrap();
    ok(&mut a, 0x14, 0x1, &[], 4, Some(4));
    let n = clocks.len() as u32;
    let mut rate_set = false;
    let mut parent_set = false;
    for (c, clk) in clocks.iter().enumerate() {
        let c = c as u32;
        ok(&mut a, 0x14, 0x3, &[c], 24, Some(24));
        let rate = ok(&mut a, 0x14, 0x6, &[c], 8, Some(8));
        let cfg = ok(&mut a, 0x14, 0xB, &[c, 0], 0, Some(12));
        assert!(cfg[1] & !1 == 0, "config word: only the enable bit");
        let perm = clk.permissions.unwrap_or(u32::MAX);
        if let (Rates::Discrete(list), false) = (&clk.rates, rate_set)
            && perm & 1 << 29 != 0
            && list.len() > 1
        {
            {
                rate_set = true;
                let cur = u64::from(rate[0]) | u64::from(rate[1]) << 32;
                let new = *list.iter().find(|&&r| r != cur).unwrap();
                ok(&mut a, 0x14, 0x9, &[c, 1], 0, Some(0));
                ok(&mut a, 0x14, 0xA, &[c, 1], 0, Some(0));
                ok(
                    &mut a,
                    0x14,
                    0x5,
                    &[0, c, new as u32, (new >> 32) as u32],
                    0,
                    Some(0),
                );
                assert_eq!(
                    ok(&mut a, 0x14, 0x6, &[c], 8, Some(8)),
                    [new as u32, (new >> 32) as u32]
                );
                let ev = a.drain_events();
                assert!(
                    ev.iter().any(|e| e.header.msg_id == 0
                        && e.header.msg_type == msg_type::NOTIFICATION
                        && e.payload.len() == 16
                        && e.words()[1..] == [c, new as u32, (new >> 32) as u32]),
                    "CLOCK_RATE_CHANGED {ev:?}"
                );
                ok(&mut a, 0x14, 0x9, &[c, 0], 0, Some(0));
                ok(&mut a, 0x14, 0xA, &[c, 0], 0, Some(0));
                // Async rate set: immediate reply, then the delayed
                // response with the same token (T11).
                if max_async >= 2 {
                    let t = a.post(
                        0x14,
                        0x5,
                        &words(&[1, c, cur as u32, (cur >> 32) as u32]),
                        0,
                    );
                    a.kick();
                    let r = a.reply(t);
                    assert_eq!((r.status, r.used_len), (SUCCESS, 8));
                    let ev = a.drain_events();
                    let d = ev
                        .iter()
                        .find(|e| e.header.msg_type == msg_type::DELAYED)
                        .expect("CLOCK_RATE_SET delayed response");
                    assert_eq!(
                        (d.header.token, d.header.protocol, d.header.msg_id),
                        (t, 0x14, 0x5)
                    );
                    assert_eq!(d.status, Some(SUCCESS));
                    assert_eq!(d.words(), [c, cur as u32, (cur >> 32) as u32]);
                }
            }
        }
        if perm & 1 << 31 != 0 {
            let on = cfg[1] & 1;
            ok(&mut a, 0x14, 0x7, &[c, 1 - on, 0], 0, Some(0));
            assert_eq!(ok(&mut a, 0x14, 0xB, &[c, 0], 0, Some(12))[1] & 1, 1 - on);
            ok(&mut a, 0x14, 0x7, &[c, on, 0], 0, Some(0));
        }
        if clk.info.attrs & 1 << 29 != 0 {
            ok(&mut a, 0x14, 0x8, &[c], 68, Some(68));
        }
        if clk.info.attrs & 1 << 1 != 0 {
            ok(&mut a, 0x14, 0xF, &[c], 4, Some(4));
        }
        if !clk.parents.is_empty() {
            let cur = ok(&mut a, 0x14, 0xE, &[c], 4, Some(4))[0];
            assert!(clk.parents.contains(&cur));
            if perm & 1 << 30 != 0 && !parent_set {
                parent_set = true;
                let other = *clk.parents.iter().find(|&&x| x != cur).unwrap_or(&cur);
                ok(&mut a, 0x14, 0xD, &[c, other], 0, Some(0));
                assert_eq!(ok(&mut a, 0x14, 0xE, &[c], 4, Some(4)), [other]);
                err(&mut a, 0x14, 0xD, &[c, n + 5], NOT_FOUND);
            }
        }
    }
    assert!(rate_set && parent_set);
    err(&mut a, 0x14, 0x3, &[n], NOT_FOUND);
    err(&mut a, 0x14, 0x6, &[n], NOT_FOUND);
    err(&mut a, 0x14, 0x4, &[n, 0], NOT_FOUND);
    err(&mut a, 0x14, 0x5, &[0, n, 1, 0], NOT_FOUND);
    err(&mut a, 0x14, 0x9, &[n, 1], NOT_FOUND);
}

fn sensor_every_command(kind: Kind) {
    let Rig {
        mut a, p, _arena, ..
    } = rig(kind, AgentOptions::default());
    let (sensors, _) = p.sensors.clone().unwrap();
    ok(&mut a, 0x15, 0x1, &[], 16, Some(16));
    let n = sensors.len() as u32;
    let mut did_async = false;
    let mut did_trip = false;
    for s in &sensors {
        let id = s.id;
        let axes = s.axes.len();
        let r = a.callw(0x15, 0x6, &[id, 0], 0);
        if r.status == SUCCESS {
            // One reading (value, timestamp) per axis, or one.
            assert_eq!(r.payload.len(), 16 * axes.max(1), "sensor {id}");
        }
        let cfg = ok(&mut a, 0x15, 0x9, &[id], 4, Some(4))[0];
        ok(&mut a, 0x15, 0xA, &[id, cfg | 1], 0, Some(0));
        assert_eq!(ok(&mut a, 0x15, 0x9, &[id], 4, Some(4))[0] & 1, 1);
        if s.attrl & 1 << 29 != 0 {
            ok(&mut a, 0x15, 0xC, &[id], 68, Some(68));
        }
        if axes > 0 {
            ok(&mut a, 0x15, 0x7, &[id, 0], 0, None);
            err(&mut a, 0x15, 0x7, &[id, axes as u32], INVALID_PARAMETERS);
            if s.axes.iter().any(|x| x.attrl & 1 << 9 != 0) {
                ok(&mut a, 0x15, 0xD, &[id, 0], 0, None);
            }
        }
        if !s.intervals.is_empty() {
            ok(&mut a, 0x15, 0x8, &[id, 0], 0, None);
        }
        if s.attrl & 1 << 30 != 0 {
            ok(&mut a, 0x15, 0xB, &[id, 1], 0, Some(0));
            ok(&mut a, 0x15, 0xB, &[id, 0], 0, Some(0));
        }
        if s.attrl & 1 << 31 != 0 && !did_async {
            // Async read: SUCCESS now, delayed {id, value} with the token.
            did_async = true;
            let t = a.post(0x15, 0x6, &words(&[id, 1]), 0);
            a.kick();
            let r = a.reply(t);
            assert_eq!((r.status, r.used_len), (SUCCESS, 8));
            let ev = a.drain_events();
            assert_eq!(ev.len(), 1, "{ev:?}");
            let d = &ev[0];
            assert_eq!(d.header.msg_type, msg_type::DELAYED);
            assert_eq!((d.header.token, d.header.msg_id), (t, 0x6));
            assert_eq!(d.status, Some(SUCCESS));
            assert_eq!(d.words()[0], id, "sensors.c checks the id");
        }
        if s.attrl & 0xff != 0 && !did_trip {
            did_trip = true;
            ok(&mut a, 0x15, 0x4, &[id, 1], 0, Some(0));
            ok(&mut a, 0x15, 0x5, &[id, 2, 0, 0], 0, Some(0));
            err(
                &mut a,
                0x15,
                0x5,
                &[id, 2 | 0xff << 4, 0, 0],
                INVALID_PARAMETERS,
            );
            ok(&mut a, 0x15, 0x4, &[id, 0], 0, Some(0));
        }
    }
    assert!(did_async && did_trip, "async and trip-point sensors exist");
    err(&mut a, 0x15, 0x6, &[n, 0], NOT_FOUND);
    err(&mut a, 0x15, 0x9, &[n], NOT_FOUND);
    err(&mut a, 0x15, 0x3, &[n + 1], INVALID_PARAMETERS);
    err(&mut a, 0x15, 0x4, &[n, 1], NOT_FOUND);
}

fn reset_and_voltage_every_command(kind: Kind) {
    let Rig {
        mut a, p, _arena, ..
    } = rig(kind, AgentOptions::default());
    let resets = p.resets.clone().unwrap();
    ok(&mut a, 0x16, 0x1, &[], 4, Some(4));
    let mut did_async = false;
    for (d, (dom, _)) in resets.iter().enumerate() {
        let d = d as u32;
        ok(&mut a, 0x16, 0x3, &[d], 24, Some(24));
        if dom.attrs & 1 << 29 != 0 {
            ok(&mut a, 0x16, 0x6, &[d], 68, Some(68));
        }
        if dom.attrs & 1 << 30 != 0 {
            ok(&mut a, 0x16, 0x5, &[d, 1], 0, Some(0));
        }
        // reset-scmi: assert (0x2), deassert (0x0), reset (0x1 [+0x4]).
        ok(&mut a, 0x16, 0x4, &[d, 0x2, 0], 0, Some(0));
        ok(&mut a, 0x16, 0x4, &[d, 0x0, 0], 0, Some(0));
        if dom.attrs & 1 << 31 != 0 {
            did_async = true;
            let t = a.post(0x16, 0x4, &words(&[d, 0x5, 0]), 0);
            a.kick();
            assert_eq!(a.reply(t).status, SUCCESS);
            let ev = a.drain_events();
            let dr = ev
                .iter()
                .find(|e| e.header.msg_type == msg_type::DELAYED)
                .expect("RESET_COMPLETE");
            assert_eq!((dr.header.token, dr.status), (t, Some(SUCCESS)));
            assert_eq!(dr.words(), [d]);
        } else {
            ok(&mut a, 0x16, 0x4, &[d, 0x1, 0], 0, Some(0));
            err(&mut a, 0x16, 0x4, &[d, 0x5, 0], NOT_SUPPORTED);
        }
        if dom.attrs & 1 << 30 != 0 {
            let ev = a.drain_events();
            assert!(
                ev.iter()
                    .all(|e| e.header.msg_type != msg_type::NOTIFICATION
                        || (e.payload.len() == 12 && e.words()[1] == d)),
                "RESET_ISSUED is 12 bytes {ev:?}"
            );
            ok(&mut a, 0x16, 0x5, &[d, 0], 0, Some(0));
        }
        err(&mut a, 0x16, 0x4, &[d, 0xF8, 0], INVALID_PARAMETERS);
    }
    assert!(did_async);
    let n = resets.len() as u32;
    err(&mut a, 0x16, 0x3, &[n], NOT_FOUND);
    err(&mut a, 0x16, 0x4, &[n, 1, 0], NOT_FOUND);
    err(&mut a, 0x16, 0x5, &[n, 1], NOT_FOUND);

    let volts = p.voltages.clone().unwrap();
    ok(&mut a, 0x17, 0x1, &[], 4, Some(4));
    for (d, v) in volts.iter().enumerate() {
        let d = d as u32;
        let v = v.as_ref().unwrap();
        ok(&mut a, 0x17, 0x3, &[d], 20, Some(20));
        if v.info.attrs & 1 << 30 != 0 {
            ok(&mut a, 0x17, 0x9, &[d], 68, Some(68));
        }
        ok(&mut a, 0x17, 0x5, &[d, 0x7], 0, Some(0));
        assert_eq!(ok(&mut a, 0x17, 0x6, &[d], 0, Some(4))[0] & 0xf, 0x7);
        let level = if v.segmented {
            v.levels[0]
        } else {
            *v.levels.last().unwrap()
        };
        if v.info.attrs & 1 << 31 != 0 {
            let t = a.post(0x17, 0x7, &words(&[d, 1, level as u32]), 0);
            a.kick();
            assert_eq!(a.reply(t).status, SUCCESS);
            let ev = a.drain_events();
            assert_eq!(ev.len(), 1, "{ev:?}");
            assert_eq!((ev[0].header.token, ev[0].status), (t, Some(SUCCESS)));
            assert_eq!(ev[0].words(), [d, level as u32]);
        } else {
            ok(&mut a, 0x17, 0x7, &[d, 0, level as u32], 0, Some(0));
        }
        assert_eq!(ok(&mut a, 0x17, 0x8, &[d], 0, Some(4)), [level as u32]);
        err(&mut a, 0x17, 0x4, &[d, 10_000], OUT_OF_RANGE);
    }
    let n = volts.len() as u32;
    err(&mut a, 0x17, 0x3, &[n], NOT_FOUND);
    err(&mut a, 0x17, 0x8, &[n], NOT_FOUND);
    err(&mut a, 0x17, 0x5, &[n, 7], NOT_FOUND);
}

static TWO: Config = Config {
    vendor: "rust-scmi",
    sub_vendor: "frontend",
    implementation_version: 1,
    agents: &[
        AgentConfig {
            name: "linux",
            trusted: true,
            protocols: u32::MAX,
            devices: 0b11,
        },
        AgentConfig {
            name: "rtos",
            trusted: false,
            protocols: u32::MAX,
            devices: 0b10,
        },
    ],
    devices: &[
        DeviceConfig {
            name: "cpu",
            resources: &[(0x14, 0), (0x11, 0)],
        },
        DeviceConfig {
            name: "gpu",
            resources: &[(0x14, 1)],
        },
    ],
};

/// Two VirtioScmi devices (agents 1 and 2), each over its own transport
/// page, one server behind both.
fn two_agents_permissions(kind: Kind) {
    let arena = Arena::new();
    let server = shared(&TWO);
    let l1 = link(&arena, kind, server, 1, true, Options::default());
    let l2 = link(&arena, kind, server, 2, false, Options::default());
    let mut a1 = agent(&l1, AgentOptions::default());
    let mut a2 = agent(&l2, AgentOptions::default());
    let p2 = Prober::run(&mut a2);
    // Linux skips resources whose attributes fail: the hidden ones.
    assert_eq!(
        p2.complaints,
        ["0x11/0x3 [0] failed with -4", "0x14/0x3 [0] failed with -4"]
    );
    assert_eq!(p2.base.num_agents, 2);
    // Agent 2 cannot see clock 0 (device "cpu") nor power domain 0.
    err(&mut a2, 0x14, 0x3, &[0], NOT_FOUND);
    err(&mut a2, 0x14, 0x6, &[0], NOT_FOUND);
    err(&mut a2, 0x14, 0x5, &[0, 0, 1_000_000, 0], NOT_FOUND);
    err(&mut a2, 0x11, 0x5, &[0], NOT_FOUND);
    ok(&mut a2, 0x14, 0x6, &[1], 8, Some(8));
    ok(&mut a1, 0x14, 0x6, &[0], 8, Some(8));
    // It may not change permissions, its own or anyone's.
    err(&mut a2, 0x10, 0x9, &[2, 0, 1], DENIED);
    err(&mut a2, 0x10, 0xB, &[1, 0], DENIED);
    // The trusted agent grants device 0 to agent 2: visible at once on
    // agent 2's queues.
    ok(&mut a1, 0x10, 0x9, &[2, 0, 1], 0, Some(0));
    ok(&mut a2, 0x14, 0x3, &[0], 24, Some(24));
    ok(&mut a2, 0x11, 0x5, &[0], 4, Some(4));
    // A rate agent 2 sets on the shared clock is what agent 1 reads.
    let rate = ok(&mut a1, 0x14, 0x6, &[0], 8, Some(8));
    let notify = a1.callw(0x14, 0x9, &[0, 1], 0).status == SUCCESS;
    let p1 = Prober::run(&mut a1);
    let (clocks, _) = p1.clocks.unwrap();
    if let Rates::Discrete(list) = &clocks[0].rates {
        let cur = u64::from(rate[0]) | u64::from(rate[1]) << 32;
        if let Some(&new) = list.iter().find(|&&r| r != cur) {
            ok(
                &mut a2,
                0x14,
                0x5,
                &[0, 0, new as u32, (new >> 32) as u32],
                0,
                Some(0),
            );
            assert_eq!(
                ok(&mut a1, 0x14, 0x6, &[0], 8, Some(8)),
                [new as u32, (new >> 32) as u32]
            );
            // Agent 1 subscribed: the change reaches its eventq once its
            // device is polled; agent 2 got nothing.
            l1.poll();
            let ev = a1.drain_events();
            if notify {
                assert!(
                    ev.iter().any(|e| e.header.msg_id == 0 && e.words()[1] == 0),
                    "{ev:?}"
                );
            }
            assert!(a2.drain_events().is_empty());
        }
    }
    // And revokes it again; agent 2 is back to NOT_FOUND.
    ok(&mut a1, 0x10, 0x9, &[2, 0, 0], 0, Some(0));
    err(&mut a2, 0x14, 0x3, &[0], NOT_FOUND);
    // Protocol permission: deny clocks of device 1 to agent 2.
    ok(&mut a1, 0x10, 0xA, &[2, 1, 0x14, 0], 0, Some(0));
    err(&mut a2, 0x14, 0x6, &[1], NOT_FOUND);
    ok(&mut a1, 0x10, 0xA, &[2, 1, 0x14, 1], 0, Some(0));
    ok(&mut a2, 0x14, 0x6, &[1], 8, Some(8));
    // Each device served only its own agent.
    let (s1, s2) = (l1.with_device(|d| d.stats()), l2.with_device(|d| d.stats()));
    assert_eq!(s1.requests, a1.stats().commands);
    assert_eq!(s2.requests, a2.stats().commands);
}

/// Delayed responses wait in the server while the driver has no eventq
/// buffer and arrive, in order and with their tokens, once it posts some.
fn events_wait_for_eventq_buffers(kind: Kind) {
    let arena = Arena::new();
    let server = shared(&ONE);
    let l = link(&arena, kind, server, 1, true, Options::default());
    let mut a = agent(
        &l,
        AgentOptions {
            event_buffers: 0,
            ..AgentOptions::default()
        },
    );
    assert_eq!(a.event_buffers_posted(), 0);
    let p = Prober::run(&mut a);
    let (sensors, _) = p.sensors.unwrap();
    let s = sensors
        .iter()
        .find(|s| s.attrl & 1 << 31 != 0)
        .expect("an async sensor");
    let mut tokens = Vec::new();
    // As many async reads as the device can delay; then BUSY, not loss.
    loop {
        let t = a.post(0x15, 0x6, &words(&[s.id, 1]), 0);
        a.kick();
        let r = a.reply(t);
        if r.status != SUCCESS {
            assert_eq!(r.status, -6, "BUSY once the outbox share is full");
            break;
        }
        tokens.push(t);
        assert!(tokens.len() <= 32, "the outbox is bounded");
    }
    assert!(
        tokens.len() >= 4,
        "{} delayed responses queued",
        tokens.len()
    );
    assert!(a.drain_events().is_empty(), "no buffer, no event");
    // Two buffers: two events, oldest first.
    a.set_repost(false);
    a.post_event_buffers(2);
    let ev = a.drain_events();
    assert_eq!(
        ev.iter().map(|e| e.header.token).collect::<Vec<_>>(),
        tokens[..2]
    );
    // The rest once buffers come back.
    a.post_event_buffers(64);
    let ev2 = a.drain_events();
    let got: Vec<u16> = ev.iter().chain(&ev2).map(|e| e.header.token).collect();
    assert_eq!(got, tokens, "nothing lost, nothing reordered");
    for e in ev.iter().chain(&ev2) {
        assert_eq!(e.header.msg_type, msg_type::DELAYED);
        assert_eq!(e.status, Some(SUCCESS));
        assert_eq!(e.words()[0], s.id);
    }
    assert_eq!(l.with_device(|d| d.stats()).events_dropped, 0);
}

/// Malformed requests through the front-end still complete their buffers.
fn robustness_through_the_front_end(kind: Kind) {
    let Rig {
        mut a,
        link: l,
        _arena,
        ..
    } = rig(kind, AgentOptions::default());
    let before = l.with_device(|d| d.stats());
    let hdr = |msg: u8, proto: u8, token: u16| {
        frontend_tests::scmi_agent::Hdr {
            msg_id: msg,
            msg_type: 0,
            protocol: proto,
            token,
        }
        .pack()
    };
    // Oversized: 4 + 200 bytes.
    let mut big = hdr(0, 0x10, 0x301).to_le_bytes().to_vec();
    big.resize(204, 0xee);
    a.post_raw(0x301, big, 136, 128);
    // Undersized: 2 bytes, no header.
    a.post_raw(0x302, vec![1, 2], 136, 128);
    // Reply buffer too small for header and status.
    a.post_raw(0x303, hdr(0, 0x10, 0x303).to_le_bytes().to_vec(), 6, 0);
    // No writable buffer at all.
    a.post_raw(0x304, hdr(0, 0x10, 0x304).to_le_bytes().to_vec(), 0, 0);
    // A success reply that does not fit: vendor (16 bytes) into 8 + 4.
    a.post_raw(0x305, hdr(3, 0x10, 0x305).to_le_bytes().to_vec(), 12, 4);
    a.kick();
    let r = a.reply(0x301);
    assert_eq!(
        (r.header.token, r.status, r.used_len),
        (0x301, PROTOCOL_ERROR, 8)
    );
    assert_eq!(a.reply(0x302).used_len, 0);
    assert_eq!(a.reply(0x303).used_len, 0);
    assert_eq!(a.reply(0x304).used_len, 0);
    let r = a.reply(0x305);
    assert_eq!(r.used_len, 8, "an error, exactly the status word");
    assert_ne!(r.status, SUCCESS);
    let after = l.with_device(|d| d.stats());
    assert_eq!(after.requests - before.requests, 5);
    assert_eq!(after.oversized - before.oversized, 1);
    // Many in flight: half the ring, all answered, each by its token.
    let n = a.max_in_flight();
    let mut toks = Vec::new();
    for i in 0..n {
        toks.push((a.post(0x14, 0x6, &words(&[i as u32 % 4]), 8), i as u32 % 4));
    }
    assert_eq!(a.in_flight(), n);
    a.kick();
    for (t, c) in toks {
        let r = a.reply(t);
        assert_eq!((r.status, r.used_len), (SUCCESS, 16), "clock {c}");
    }
    assert_eq!(a.stats().max_in_flight, n);
    assert_eq!(a.in_flight(), 0);
}

// ---------------------------------------------------------------------------
// Multi-part replies at the 128-byte limit.
//
// Linux's virtio transport gives every reply `8 + 128` writable bytes
// (`rx_size` 0 = `VIRTIO_SCMI_MAX_MSG_SIZE`), so after the status a page has
// 128 bytes: one count word and as many whole entries as fit in the other
// 124. Each walk below goes page by page as `driver.c:scmi_iterator_run`
// does (next index = entries read so far, until remaining is 0), and checks
// every page against the platform's own tables: returned is the most that
// fits, remaining is exactly what is left, the used length is exact, and the
// entries are the platform's, in order. The same walks run with a smaller
// `rx_size` too, where the page rule must follow the buffer the agent gave.
// ---------------------------------------------------------------------------

use scmi_server::protocols::clock::Rates as SimRates;
use scmi_server::protocols::sensor::Intervals as SimIntervals;
use scmi_server::protocols::voltage::Levels as SimLevels;

/// One page of a multi-part reply: the index asked for, the counts, and
/// the entries as byte strings (parsed by their own length rule).
#[derive(Debug)]
struct Page {
    start: usize,
    returned: usize,
    remaining: usize,
    entries: Vec<Vec<u8>>,
}

/// How a multi-part command is laid out on the wire.
struct Walk<'f> {
    proto: u8,
    msg: u8,
    /// The request for a page starting at `index`.
    args: &'f dyn Fn(u32) -> Vec<u32>,
    /// (returned, remaining) from the count word; checks reserved and
    /// format bits.
    count: &'f dyn Fn(u32) -> (usize, usize),
    /// Length of the entry at the start of `b` (from its own fields).
    entry_len: &'f dyn Fn(&[u8]) -> usize,
    /// Bytes `n` entries of lengths `lens` take in the reply (protocol ids
    /// are packed and padded to whole words).
    span: &'f dyn Fn(&[usize]) -> usize,
}

fn sum_span(lens: &[usize]) -> usize {
    lens.iter().sum()
}

fn count16(w: u32) -> (usize, usize) {
    assert_eq!(w & 0xf000, 0, "reserved and format bits clear: {w:#x}");
    ((w & 0xfff) as usize, (w >> 16) as usize)
}

fn count26(w: u32) -> (usize, usize) {
    assert_eq!(w & 0x03ff_ffc0, 0, "reserved bits clear: {w:#x}");
    ((w & 0x3f) as usize, (w >> 26) as usize)
}

/// Walks `w` with `rx` bytes of reply payload per page, as Linux does,
/// checking each page's framing; returns the pages.
fn walk(a: &mut Agent, w: &Walk<'_>, rx: usize) -> Vec<Page> {
    let mut pages: Vec<Page> = Vec::new();
    let mut index = 0usize;
    loop {
        let r = a.callw(w.proto, w.msg, &(w.args)(index as u32), rx);
        let what = format!("{:#x}/{:#x} index {index} rx {rx}", w.proto, w.msg);
        assert_eq!(r.status, SUCCESS, "{what}");
        let (returned, remaining) = (w.count)(r.word(0));
        let body = &r.payload[4..];
        let mut lens = Vec::new();
        let mut at = 0;
        let mut entries = Vec::new();
        for _ in 0..returned {
            let rest = body
                .get(at..)
                .unwrap_or_else(|| panic!("{what}: entries overrun the reply"));
            let n = (w.entry_len)(rest);
            let e = rest
                .get(..n)
                .unwrap_or_else(|| panic!("{what}: entry of {n} bytes cut short"));
            entries.push(e.to_vec());
            lens.push(n);
            at += n;
        }
        // Exactly the count word and the announced entries: no more, no
        // less (Linux reads past nothing and finds nothing missing).
        let span = (w.span)(&lens);
        assert_eq!(r.payload.len(), 4 + span, "{what}: payload length");
        assert_eq!(r.used_len as usize, 8 + 4 + span, "{what}: used length");
        assert!(4 + span <= rx, "{what}: page larger than the buffer");
        pages.push(Page {
            start: index,
            returned,
            remaining,
            entries,
        });
        index += returned;
        if remaining == 0 || returned == 0 {
            return pages;
        }
        assert!(pages.len() < 64, "{what}: the walk does not end");
    }
}

/// Checks a finished walk against the platform: `lens` are the lengths of
/// all `lens.len()` entries (the platform's total), `rx` the page size.
fn check_pages(w: &Walk<'_>, pages: &[Page], lens: &[usize], rx: usize) {
    let total = lens.len();
    let room = rx - 4;
    let mut read = 0;
    for (k, p) in pages.iter().enumerate() {
        let what = format!(
            "{:#x}/{:#x} page {k} (index {}) rx {rx}",
            w.proto, w.msg, p.start
        );
        assert_eq!(p.start, read, "{what}: index = entries read so far");
        assert!(p.returned > 0, "{what}: an empty page stalls Linux");
        // The most that fits: these do, one more would not (or none left).
        let end = p.start + p.returned;
        assert!((w.span)(&lens[p.start..end]) <= room, "{what}");
        if end < total {
            assert!(
                (w.span)(&lens[p.start..=end]) > room,
                "{what}: entry {end} would have fitted too"
            );
        }
        assert_eq!(p.remaining, total - end, "{what}: remaining = total - read");
        read = end;
    }
    assert_eq!(read, total, "the pages add up to the platform's total");
    assert_eq!(pages.last().map(|p| p.remaining), Some(0));
}

/// Both page sizes: Linux's 128 and a smaller buffer that forces more
/// pages.
const PAGE_SIZES: [usize; 2] = [128, 72];

fn entries(pages: &[Page]) -> Vec<Vec<u8>> {
    pages.iter().flat_map(|p| p.entries.clone()).collect()
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

both_transports!(
    paging_clock_rates,
    paging_perf_levels,
    paging_sensor_descriptions_and_axes,
    paging_protocols_voltages_intervals,
);

/// CLOCK_DESCRIBE_RATES (§4.6.2.6) over every list-form clock, 8-byte
/// rates: 15 a page at 128 bytes. Past the last rate: OUT_OF_RANGE.
fn paging_clock_rates(kind: Kind) {
    let Rig { mut a, _arena, .. } = rig(kind, AgentOptions::default());
    let clocks = builtin::TABLES.clock.clocks;
    let biggest = clocks
        .iter()
        .filter_map(|c| match c.rates {
            SimRates::List(l) => Some(l.len()),
            SimRates::Range { .. } => None,
        })
        .max()
        .unwrap();
    assert!(biggest > 15, "some clock needs two pages at 128 bytes");
    for (c, d) in clocks.iter().enumerate() {
        let SimRates::List(list) = d.rates else {
            continue;
        };
        let c = c as u32;
        let w = Walk {
            proto: 0x14,
            msg: 0x4,
            args: &|i| vec![c, i],
            count: &count16,
            entry_len: &|_| 8,
            span: &sum_span,
        };
        for rx in PAGE_SIZES {
            let pages = walk(&mut a, &w, rx);
            check_pages(&w, &pages, &vec![8; list.len()], rx);
            let got: Vec<u64> = entries(&pages)
                .iter()
                .map(|e| u64::from(le32(e, 0)) | u64::from(le32(e, 4)) << 32)
                .collect();
            assert_eq!(got, list, "clock {c}: the platform's rates, ascending");
            if rx == 128 && list.len() == biggest {
                assert_eq!(pages.iter().map(|p| p.returned).collect::<Vec<_>>()[0], 15);
            }
        }
        // clk-scmi's lazy enumeration asks for the last rate directly.
        let n = list.len() as u32;
        let last = ok(&mut a, 0x14, 0x4, &[c, n - 1], 0, Some(12));
        assert_eq!(last[0], 1, "one returned, none remaining");
        assert_eq!(
            u64::from(last[1]) | u64::from(last[2]) << 32,
            list[list.len() - 1]
        );
        err(&mut a, 0x14, 0x4, &[c, n], OUT_OF_RANGE);
        err(&mut a, 0x14, 0x4, &[c, n + 7], OUT_OF_RANGE);
    }
}

/// PERFORMANCE_DESCRIBE_LEVELS (§4.5.3.6), 20-byte v4 entries: 6 a page at
/// 128 bytes. `level_index` is a skip count: skipping all of them returns
/// an empty list; skipping more is OUT_OF_RANGE.
fn paging_perf_levels(kind: Kind) {
    let Rig { mut a, _arena, .. } = rig(kind, AgentOptions::default());
    let doms = builtin::TABLES.perf.domains;
    assert!(doms.iter().any(|d| d.levels.len() > 2 * 6), "several pages");
    for (d, dom) in doms.iter().enumerate() {
        let d = d as u32;
        let w = Walk {
            proto: 0x13,
            msg: 0x4,
            args: &|i| vec![d, i],
            count: &count16,
            entry_len: &|_| 20,
            span: &sum_span,
        };
        for rx in PAGE_SIZES {
            let pages = walk(&mut a, &w, rx);
            check_pages(&w, &pages, &vec![20; dom.levels.len()], rx);
            if rx == 128 {
                for p in &pages[..pages.len() - 1] {
                    assert_eq!(p.returned, 6, "(128 - 4) / 20 per page");
                }
            }
            for (k, (e, l)) in entries(&pages).iter().zip(dom.levels).enumerate() {
                assert_eq!(
                    [le32(e, 0), le32(e, 4), le32(e, 8), le32(e, 12), le32(e, 16)],
                    [
                        l.value,
                        l.power_cost,
                        u32::from(l.latency_us),
                        l.indicative_khz,
                        k as u32 + scmi_server::protocols::perf::INDEX_BASE
                    ],
                    "domain {d} level {k}"
                );
            }
        }
        let n = dom.levels.len() as u32;
        assert_eq!(ok(&mut a, 0x13, 0x4, &[d, n], 0, Some(4)), [0]);
        err(&mut a, 0x13, 0x4, &[d, n + 1], OUT_OF_RANGE);
        err(&mut a, 0x13, 0x4, &[d, u32::MAX], OUT_OF_RANGE);
    }
}

/// Length of a sensor descriptor, from its attribute words as Linux 6.12
/// reads them (`iter_sens_descr_process_response`): 28 bytes, plus the
/// power word when low[8] says extended attributes, plus resolution and
/// range (20 bytes) for those without axes.
fn sensor_desc_len(e: &[u8]) -> usize {
    let (low, high) = (le32(e, 4), le32(e, 8));
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

/// SENSOR_DESCRIPTION_GET (§4.7.2.5) over the 20 sensors (descriptors of
/// 28, 32 and 52 bytes packed back to back), SENSOR_AXIS_DESCRIPTION_GET
/// (§4.7.2.6; 28 or 48 bytes) and SENSOR_AXIS_NAME_GET (68 bytes) over
/// every sensor with axes. Past the end: INVALID_PARAMETERS.
fn paging_sensor_descriptions_and_axes(kind: Kind) {
    let Rig { mut a, _arena, .. } = rig(kind, AgentOptions::default());
    let sensors = builtin::TABLES.sensor.sensors;
    let w = Walk {
        proto: 0x15,
        msg: 0x3,
        args: &|i| vec![i],
        count: &count16,
        entry_len: &sensor_desc_len,
        span: &sum_span,
    };
    for rx in PAGE_SIZES {
        let pages = walk(&mut a, &w, rx);
        let all = entries(&pages);
        let lens: Vec<usize> = all.iter().map(|e| e.len()).collect();
        check_pages(&w, &pages, &lens, rx);
        assert_eq!(all.len(), sensors.len());
        for (i, (e, s)) in all.iter().zip(sensors).enumerate() {
            assert_eq!(le32(e, 0), i as u32, "sensor ids in order");
            let short: String = s.name.chars().take(15).collect();
            assert_eq!(frontend_tests::scmi_probe::cstr(&e[12..28]), short);
            let axes = ((le32(e, 8) >> 16) & 0x3f) as usize;
            assert_eq!(axes, s.axes.len(), "sensor {i}");
        }
        if rx == 128 {
            assert!(pages.len() >= 5, "20 sensors take several pages");
        }
    }
    let n = sensors.len() as u32;
    err(&mut a, 0x15, 0x3, &[n], INVALID_PARAMETERS);
    err(&mut a, 0x15, 0x3, &[n + 3], INVALID_PARAMETERS);

    let mut multi_page_axes = false;
    for (id, s) in sensors.iter().enumerate() {
        let id = id as u32;
        if s.axes.is_empty() {
            err(&mut a, 0x15, 0x7, &[id, 0], NOT_SUPPORTED);
            continue;
        }
        let w = Walk {
            proto: 0x15,
            msg: 0x7,
            args: &|i| vec![id, i],
            count: &count26,
            entry_len: &|e| if le32(e, 4) & 1 << 8 != 0 { 48 } else { 28 },
            span: &sum_span,
        };
        let names = Walk {
            proto: 0x15,
            msg: 0xD,
            args: &|i| vec![id, i],
            count: &count26,
            entry_len: &|_| 68,
            span: &sum_span,
        };
        for rx in PAGE_SIZES {
            let pages = walk(&mut a, &w, rx);
            multi_page_axes |= rx == 128 && pages.len() > 1;
            let all = entries(&pages);
            let lens: Vec<usize> = all.iter().map(|e| e.len()).collect();
            check_pages(&w, &pages, &lens, rx);
            for (k, (e, x)) in all.iter().zip(s.axes).enumerate() {
                assert_eq!(le32(e, 0), k as u32);
                assert_eq!(e.len(), if x.ext.is_some() { 48 } else { 28 });
                let short: String = x.name.chars().take(15).collect();
                assert_eq!(frontend_tests::scmi_probe::cstr(&e[12..28]), short);
            }
            let pages = walk(&mut a, &names, rx);
            check_pages(&names, &pages, &vec![68; s.axes.len()], rx);
            for (k, (e, x)) in entries(&pages).iter().zip(s.axes).enumerate() {
                assert_eq!(le32(e, 0), k as u32);
                assert_eq!(frontend_tests::scmi_probe::cstr(&e[4..]), x.name);
            }
        }
        let n = s.axes.len() as u32;
        err(&mut a, 0x15, 0x7, &[id, n], INVALID_PARAMETERS);
        err(&mut a, 0x15, 0xD, &[id, n], INVALID_PARAMETERS);
    }
    assert!(multi_page_axes, "some sensor's axes take several pages");
}

/// BASE_DISCOVER_LIST_PROTOCOLS (§4.2.2.8; ids packed four to a word),
/// VOLTAGE_DESCRIBE_LEVELS (§4.9.2.6; 4-byte levels: 31 a page) and
/// SENSOR_LIST_UPDATE_INTERVALS (§4.7.2.7; 4-byte words: 31 a page).
fn paging_protocols_voltages_intervals(kind: Kind) {
    let Rig {
        mut a, p, _arena, ..
    } = rig(kind, AgentOptions::default());
    // Protocols: all fit at 128 bytes; 8 and 12 bytes force pages of 4
    // and 8 ids.
    let want = p.base.protocols.clone();
    let w = Walk {
        proto: 0x10,
        msg: 0x6,
        args: &|i| vec![i],
        count: &|w| (w as usize, usize::MAX),
        entry_len: &|_| 1,
        span: &|l| l.len().div_ceil(4) * 4,
    };
    for rx in [128, 12, 8] {
        // The count word carries no remaining count: Linux stops when it
        // has num_protocols (PROTOCOL_ATTRIBUTES).
        let mut got = Vec::new();
        let mut index = 0;
        while got.len() < want.len() {
            let r = a.callw(0x10, 0x6, &(w.args)(index), rx);
            assert_eq!(r.status, SUCCESS);
            let n = r.word(0) as usize;
            let fit = (rx - 4) / 4 * 4;
            assert_eq!(n, (want.len() - got.len()).min(fit), "skip {index} rx {rx}");
            assert_eq!(r.used_len as usize, 8 + 4 + n.div_ceil(4) * 4);
            let ids = &r.payload[4..];
            got.extend_from_slice(&ids[..n]);
            assert!(ids[n..].iter().all(|&b| b == 0), "padding is zero");
            index += n as u32;
        }
        assert_eq!(got, want, "rx {rx}");
    }
    // A buffer with room for the count but not one id while ids remain:
    // an empty page would stall the agent, so GENERIC_ERROR, as for every
    // other multi-part command (clock rates shown).
    assert_eq!(a.callw(0x10, 0x6, &[0], 4).status, GENERIC_ERROR);
    assert_eq!(a.callw(0x14, 0x4, &[0, 0], 4).status, GENERIC_ERROR);
    let n = want.len() as u32;
    // skip == total: nothing left, an empty list (SCP); beyond: invalid.
    assert_eq!(ok(&mut a, 0x10, 0x6, &[n], 0, Some(4)), [0]);
    err(&mut a, 0x10, 0x6, &[n + 1], INVALID_PARAMETERS);

    // Voltage levels, every list-form domain.
    let volts = builtin::TABLES.voltage.domains;
    let mut pages_seen = 0;
    for (d, v) in volts.iter().enumerate() {
        let SimLevels::List(list) = v.levels else {
            continue;
        };
        let d = d as u32;
        let w = Walk {
            proto: 0x17,
            msg: 0x4,
            args: &|i| vec![d, i],
            count: &count16,
            entry_len: &|_| 4,
            span: &sum_span,
        };
        for rx in PAGE_SIZES {
            let pages = walk(&mut a, &w, rx);
            check_pages(&w, &pages, &vec![4; list.len()], rx);
            if rx == 128 {
                pages_seen = pages_seen.max(pages.len());
            }
            let got: Vec<i32> = entries(&pages).iter().map(|e| le32(e, 0) as i32).collect();
            assert_eq!(got, list, "domain {d}");
        }
        let n = list.len() as u32;
        err(&mut a, 0x17, 0x4, &[d, n], OUT_OF_RANGE);
        err(&mut a, 0x17, 0x4, &[d, n + 9], OUT_OF_RANGE);
    }
    assert!(pages_seen >= 2, "the 40-level rail takes two pages");

    // Update intervals, every sensor with a discrete list.
    let sensors = builtin::TABLES.sensor.sensors;
    let mut pages_seen = 0;
    for (id, s) in sensors.iter().enumerate() {
        let id = id as u32;
        let SimIntervals::List(list) = s.intervals else {
            continue;
        };
        let w = Walk {
            proto: 0x15,
            msg: 0x8,
            args: &|i| vec![id, i],
            count: &count16,
            entry_len: &|_| 4,
            span: &sum_span,
        };
        for rx in PAGE_SIZES {
            let pages = walk(&mut a, &w, rx);
            check_pages(&w, &pages, &vec![4; list.len()], rx);
            if rx == 128 {
                pages_seen = pages_seen.max(pages.len());
            }
            let got: Vec<u32> = entries(&pages).iter().map(|e| le32(e, 0)).collect();
            let want: Vec<u32> = list.iter().map(|i| i.list_word()).collect();
            assert_eq!(got, want, "sensor {id}");
        }
        let n = list.len() as u32;
        err(&mut a, 0x15, 0x8, &[id, n], INVALID_PARAMETERS);
        err(&mut a, 0x15, 0x8, &[id, n + 1], INVALID_PARAMETERS);
    }
    assert!(pages_seen >= 2, "the fan's 40 intervals take two pages");
}

// ---------------------------------------------------------------------------
// Sensor notifications on the eventq as simulated time passes.
// ---------------------------------------------------------------------------

static PAIR: Config = Config {
    vendor: "rust-scmi",
    sub_vendor: "frontend",
    implementation_version: 1,
    agents: &[
        AgentConfig {
            name: "linux",
            trusted: true,
            protocols: u32::MAX,
            devices: u32::MAX,
        },
        AgentConfig {
            name: "rtos",
            trusted: true,
            protocols: u32::MAX,
            devices: u32::MAX,
        },
    ],
    devices: &[],
};

both_transports!(sensor_notifications_on_the_eventq);

/// Lets the platform's time reach `now_ms` (`Server::tick`) and lets both
/// devices move what that queued onto their eventqs.
fn tick(server: Shared, links: &[&Link], now_ms: u64) {
    server.borrow_mut().tick(now_ms);
    for l in links {
        l.poll();
    }
}

/// A notification (type 3) of the sensor protocol with `msg_id`.
fn sensor_note(e: &frontend_tests::scmi_agent::Event, msg_id: u8) -> bool {
    e.header.msg_type == msg_type::NOTIFICATION
        && e.header.protocol == 0x15
        && e.header.msg_id == msg_id
}

/// SENSOR_TRIP_POINT_NOTIFY + SENSOR_TRIP_POINT_CONFIG (§4.7.2.8-9) then
/// time passes on the simulated platform: SENSOR_TRIP_POINT_EVENT
/// (§4.7.4.1) reaches the subscribed agent's eventq at the crossing, in
/// the direction crossed, and nobody else's; SENSOR_UPDATE (§4.7.4.2)
/// arrives once per update interval to the agent that asked for it, with
/// the reading the platform's model gives for that time.
fn sensor_notifications_on_the_eventq(kind: Kind) {
    use platform_host_vhost_user::ids::sensor as ids;
    use platform_sim::sensor::timestamp_at;
    let arena = Arena::new();
    let server = shared(&PAIR);
    let l1 = link(&arena, kind, server, 1, true, Options::default());
    let l2 = link(&arena, kind, server, 2, false, Options::default());
    let mut a1 = agent(&l1, AgentOptions::default());
    let mut a2 = agent(&l2, AgentOptions::default());
    let s = ids::CPU_LITTLE_TEMP;
    let v = |t: u64| builtin::TABLES.sensor.value_at(s, 0, t).unwrap();
    // The model: a triangle from 35 °C (t = 0) up to 75 °C (t = 10 s).
    assert!(v(0) < 50_000 && v(4_000) >= 50_000, "crosses 50 °C by 4 s");

    // Agent 1 watches sensor s: trip 1 upward at 50 °C. Agent 2 watches
    // another sensor only.
    ok(&mut a1, 0x15, 0x4, &[s, 1], 0, Some(0));
    ok(&mut a1, 0x15, 0x5, &[s, 1 << 4 | 1, 50_000, 0], 0, Some(0));
    ok(&mut a2, 0x15, 0x4, &[ids::GPU_TEMP, 1], 0, Some(0));
    assert!(a1.drain_events().is_empty() && a2.drain_events().is_empty());

    tick(server, &[&l1, &l2], 2_000);
    assert!(v(2_000) < 50_000);
    assert!(a1.drain_events().is_empty(), "not crossed yet");
    tick(server, &[&l1, &l2], 4_000);
    let ev = a1.drain_events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(sensor_note(&ev[0], 0x0), "{ev:?}");
    assert_eq!(ev[0].used_len, 16, "header + 12 bytes");
    // agent_id 0: the platform caused it; trip 1, [16] upward.
    assert_eq!(ev[0].words(), [0, s, 1 << 16 | 1]);
    assert!(
        a2.drain_events().is_empty(),
        "agent 2 did not subscribe to s"
    );
    // No new crossing, no new event.
    tick(server, &[&l1, &l2], 4_500);
    assert!(a1.drain_events().is_empty());

    // Trip 0 downward at 60 °C: crossed on the way down (t = 16 s).
    ok(&mut a1, 0x15, 0x5, &[s, 2, 60_000, 0], 0, Some(0));
    tick(server, &[&l1, &l2], 9_000);
    assert!(v(9_000) >= 60_000);
    assert!(
        a1.drain_events().is_empty(),
        "upward crossing of a downward trip"
    );
    tick(server, &[&l1, &l2], 16_000);
    assert!(v(16_000) < 60_000);
    let ev = a1.drain_events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(sensor_note(&ev[0], 0x0));
    assert_eq!(ev[0].words(), [0, s, 0], "trip 0, [16] clear: downward");
    // A negative threshold travels as a signed 64-bit value.
    ok(
        &mut a1,
        0x15,
        0x5,
        &[
            ids::OUTDOOR_PROBE_TEMPERATURE,
            3,
            (-5_000i64) as u32,
            ((-5_000i64) >> 32) as u32,
        ],
        0,
        Some(0),
    );

    // Unsubscribed: the next upward crossing of trip 1 (t = 25 s) is silent.
    ok(&mut a1, 0x15, 0x4, &[s, 0], 0, Some(0));
    tick(server, &[&l1, &l2], 25_000);
    assert!(v(19_000) < 50_000 && v(25_000) >= 50_000);
    let quiet: Vec<_> = a1
        .drain_events()
        .into_iter()
        .filter(|e| e.words().get(1) == Some(&s))
        .collect();
    assert!(quiet.is_empty(), "unsubscribed {quiet:?}");
    assert!(a2.drain_events().is_empty());

    // Continuous updates (§4.7.2.13) for agent 2: one SENSOR_UPDATE per
    // interval (the default is the longest, 1 s) with the reading at that
    // time, timestamped in µs.
    ok(&mut a2, 0x15, 0xB, &[s, 1], 0, Some(0));
    tick(server, &[&l1, &l2], 25_500);
    assert!(a2.drain_events().is_empty(), "no interval boundary yet");
    for t in [26_000u64, 27_000] {
        tick(server, &[&l1, &l2], t);
        let ev = a2.drain_events();
        assert_eq!(ev.len(), 1, "t = {t}: {ev:?}");
        assert!(sensor_note(&ev[0], 0x1));
        assert_eq!(ev[0].used_len, 4 + 8 + 16);
        let value = v(t) as u64;
        let ts = timestamp_at(-6, t);
        assert_eq!(
            ev[0].words(),
            [
                0,
                s,
                value as u32,
                (value >> 32) as u32,
                ts as u32,
                (ts >> 32) as u32
            ],
            "t = {t}"
        );
        assert!(a1.drain_events().is_empty(), "agent 1 asked for no updates");
    }
    ok(&mut a2, 0x15, 0xB, &[s, 0], 0, Some(0));
    tick(server, &[&l1, &l2], 30_000);
    assert!(a2.drain_events().is_empty(), "updates off");
    // Not every sensor can notify.
    err(&mut a1, 0x15, 0x4, &[ids::VDD_CPU_LITTLE, 1], NOT_SUPPORTED);
    err(
        &mut a1,
        0x15,
        0xB,
        &[ids::REF_CLOCK_MONITOR, 1],
        NOT_SUPPORTED,
    );
    err(&mut a1, 0x15, 0x4, &[s, 3], INVALID_PARAMETERS);
    for l in [&l1, &l2] {
        assert_eq!(l.with_device(|d| d.stats()).events_dropped, 0);
    }
}

// ---------------------------------------------------------------------------
// The command layout in ring memory.
// ---------------------------------------------------------------------------

both_transports!(command_layout_in_the_ring);

/// One split-ring descriptor (virtio v1.2 §2.7.5) read from the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;

fn read_desc(mem: &frontend_tests::arena::ArenaMem, table: u64, i: u16) -> Desc {
    let mut b = [0u8; 16];
    mem.read(mem.offset_of(table + 16 * u64::from(i)), &mut b);
    Desc {
        addr: u64::from_le_bytes(b[..8].try_into().unwrap()),
        len: u32::from_le_bytes(b[8..12].try_into().unwrap()),
        flags: u16::from_le_bytes(b[12..14].try_into().unwrap()),
        next: u16::from_le_bytes(b[14..].try_into().unwrap()),
    }
}

/// The head descriptor of the chain the driver made available last on
/// the cmdq, and the cmdq's descriptor table address.
fn last_avail_head(l: &Link) -> (u64, Desc) {
    let (desc, avail, _) = l.side().core().queues()[0].addresses();
    let v = l.ring_view(0).expect("cmdq ready");
    let mem = l.arena();
    let slot = u64::from(v.avail_idx.wrapping_sub(1) % v.size);
    let mut b = [0u8; 2];
    mem.read(mem.offset_of(avail + 4 + 2 * slot), &mut b);
    (desc, read_desc(mem, desc, u16::from_le_bytes(b)))
}

/// With `VIRTIO_F_INDIRECT_DESC` a command goes as Linux's
/// `virtqueue_add_split` sends it: one ring descriptor with only the
/// INDIRECT flag, pointing at a table of two entries, the request
/// (readable, `4 + tx` bytes, chained) then the reply buffer (writable,
/// `8 + rx` bytes, last). Without it, the same two buffers as a chain of
/// two ring descriptors.
fn command_layout_in_the_ring(kind: Kind) {
    for indirect in [true, false] {
        let opts = AgentOptions {
            indirect,
            ..AgentOptions::default()
        };
        let Rig {
            mut a,
            link: l,
            _arena,
            ..
        } = rig(kind, opts);
        assert_eq!(l.driver_features() & F_INDIRECT_DESC != 0, indirect);
        let mem = Arc::clone(l.arena());
        // (protocol, message, payload words, rx_size): a fixed-size reply,
        // a variable one (rx 0 = 128) and the longest request Linux sends.
        let cases: [(u8, u8, Vec<u32>, usize); 3] = [
            (0x14, 0x6, vec![2], 8),
            (0x15, 0x3, vec![0], 0),
            (0x15, 0x5, vec![0, 1 << 4 | 1, 50_000, 0], 0),
        ];
        for (proto, msg, args, rx) in cases {
            let payload = words(&args);
            let t = a.post(proto, msg, &payload, rx);
            let tx_len = 4 + payload.len() as u32;
            let rx_len = 8 + if rx == 0 { 128 } else { rx } as u32;
            let (table, head) = last_avail_head(&l);
            let (req, resp) = if indirect {
                assert_eq!(head.flags, DESC_F_INDIRECT, "only INDIRECT: {head:?}");
                assert_eq!(head.len, 32, "a table of two 16-byte entries");
                let e0 = read_desc(&mem, head.addr, 0);
                let e1 = read_desc(&mem, head.addr, 1);
                assert_eq!((e0.flags, e0.next), (DESC_F_NEXT, 1), "{e0:?}");
                assert_eq!(e1.flags, DESC_F_WRITE, "{e1:?}");
                (e0, e1)
            } else {
                assert_eq!(head.flags, DESC_F_NEXT, "{head:?}");
                let e1 = read_desc(&mem, table, head.next);
                assert_eq!(e1.flags, DESC_F_WRITE, "{e1:?}");
                (head, e1)
            };
            assert_eq!((req.len, resp.len), (tx_len, rx_len));
            // The readable entry holds the header and the payload.
            let mut got = vec![0u8; tx_len as usize];
            mem.read(mem.offset_of(req.addr), &mut got);
            let hdr = frontend_tests::scmi_agent::Hdr {
                msg_id: msg,
                msg_type: msg_type::COMMAND,
                protocol: proto,
                token: t,
            };
            assert_eq!(got[..4], hdr.pack().to_le_bytes());
            assert_eq!(got[4..], payload[..]);
            // And the device answers it like any other command.
            a.kick();
            let r = a.reply(t);
            assert_eq!((r.header, r.status), (hdr, SUCCESS));
            assert!(r.used_len <= rx_len);
        }
        let s = l.with_device(|d| d.stats());
        assert_eq!(s.invalid_chains + s.access_errors + s.unanswerable, 0);
    }
}

// ---------------------------------------------------------------------------
// The device on a thread of its own.
// ---------------------------------------------------------------------------

/// The device owns its server (one agent): it must be `Send` to run on the
/// device thread.
type OwnDev = VirtioScmi<Srv>;
type OwnAgent = ScmiAgent<AnyTransport<OwnDev, 2>, ArenaHal>;

both_transports!(threaded_device_64_in_flight);

/// How long the agent waits for a reply from the device thread.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Rounds of 64 commands in flight: more than 1024 commands, so the 10-bit
/// tokens wrap.
const ROUNDS: usize = 18;

/// Sends one round: 64 commands, alternately a synchronous sensor read and
/// a synchronous clock rate set, all posted before the first kick (the
/// device thread may start on them while the driver is still adding), then
/// collects every reply by the token in its header, last posted first.
/// `last` gets the rate each clock must have afterwards.
fn one_round(a: &mut OwnAgent, round: usize, clocks: &[(u32, Vec<u64>)], last: &mut [u64]) {
    let sensors = builtin::TABLES.sensor.sensors;
    let n = a.max_in_flight();
    assert_eq!(n, 64, "Linux keeps half the 128-entry cmdq in flight");
    let mut sent = Vec::new();
    for i in 0..n {
        let k = round * n + i;
        let (proto, msg, args, expect_len) = if i % 2 == 0 {
            let s = (k / 2 % sensors.len()) as u32;
            let readings = sensors[s as usize].readings();
            (0x15u8, 0x6u8, vec![s, 0], 16 * readings)
        } else {
            let j = k / 2 % clocks.len();
            let (c, list) = &clocks[j];
            let rate = list[(k / 2 + round) % list.len()];
            last[j] = rate;
            (0x14, 0x5, vec![0, *c, rate as u32, (rate >> 32) as u32], 0)
        };
        let t = a.post(proto, msg, &words(&args), 0);
        sent.push((t, proto, msg, args, expect_len));
    }
    assert_eq!(a.in_flight(), n, "64 commands in flight");
    a.kick();
    for (t, proto, msg, args, len) in sent.into_iter().rev() {
        let r = a.reply(t);
        let hdr = frontend_tests::scmi_agent::Hdr {
            msg_id: msg,
            msg_type: msg_type::COMMAND,
            protocol: proto,
            token: t,
        };
        assert_eq!(r.header, hdr, "the reply for token {t} is its command's");
        assert_eq!(r.status, SUCCESS, "{proto:#x}/{msg:#x} {args:?}");
        assert_eq!(r.used_len as usize, 8 + len, "{proto:#x}/{msg:#x}");
        if proto == 0x15 {
            // Time stands still at 0: every reading is the model's value at
            // t = 0 (timestamp 0).
            let s = args[0];
            for (axis, q) in r.payload.chunks_exact(16).enumerate() {
                let v = i64::from_le_bytes(q[..8].try_into().unwrap());
                assert_eq!(
                    Some(v),
                    builtin::TABLES.sensor.value_at(s, axis, 0),
                    "sensor {s} axis {axis}"
                );
                assert_eq!(q[8..], [0; 8]);
            }
        }
    }
    assert_eq!(a.in_flight(), 0);
}

/// The clocks agent 1 may set to several listed rates (from the probe).
fn settable_clocks(p: &Probe) -> Vec<(u32, Vec<u64>)> {
    let (clocks, _) = p.clocks.as_ref().expect("clocks probed");
    clocks
        .iter()
        .enumerate()
        .filter_map(|(c, clk)| match &clk.rates {
            Rates::Discrete(l)
                if l.len() > 1 && clk.permissions.unwrap_or(u32::MAX) & 1 << 29 != 0 =>
            {
                Some((c as u32, l.clone()))
            }
            _ => None,
        })
        .take(6)
        .collect()
}

fn check_rates(a: &mut OwnAgent, clocks: &[(u32, Vec<u64>)], last: &[u64]) {
    for ((c, _), &rate) in clocks.iter().zip(last) {
        let r = a.callw(0x14, 0x6, &[*c], 8);
        assert_eq!(r.status, SUCCESS);
        assert_eq!(
            r.words(),
            [rate as u32, (rate >> 32) as u32],
            "clock {c} has the rate set last"
        );
    }
}

/// The device serves its cmdq from its own thread (polling between posted
/// kicks, as a vhost-user back-end would) while the agent on the test
/// thread keeps 64 commands in flight, round after round; every reply
/// carries its own command's header and the right answer. Then the driver
/// resets the device and probes again from scratch: discovery is whole,
/// and platform state (clock rates) survived the driver's reset.
fn threaded_device_64_in_flight(kind: Kind) {
    use virtio_drivers::transport::{DeviceStatus, Transport};
    let arena = Arena::new();
    let dev: OwnDev = VirtioScmi::new(Srv::new(&ONE, builtin::PLATFORM), 1);
    let l = Loopback::new(&arena, kind, Mode::Threaded, dev);
    let device = l.spawn();
    let opts = AgentOptions {
        patience: PATIENCE,
        now: frontend_tests::host_clock,
        idle: std::thread::yield_now,
        ..AgentOptions::default()
    };
    let mut a: OwnAgent = ScmiAgent::new(AnyTransport::new(&l), opts);
    let p = Prober::run(&mut a);
    assert!(p.complaints.is_empty(), "{:?}", p.complaints);
    let clocks = settable_clocks(&p);
    assert!(clocks.len() >= 2, "{clocks:?}");
    let mut last = vec![0u64; clocks.len()];
    for round in 0..ROUNDS {
        one_round(&mut a, round, &clocks, &mut last);
        check_rates(&mut a, &clocks, &last);
    }
    let s = a.stats();
    assert_eq!(s.commands, s.replies);
    assert!(
        s.commands > 1024,
        "tokens wrapped ({} commands)",
        s.commands
    );
    assert_eq!(s.max_in_flight, 64);
    let first_commands = s.commands;

    // Reset (status 0) and probe again on fresh rings.
    a.transport().set_status(DeviceStatus::empty());
    assert_eq!(l.status(), 0);
    drop(a);
    let mut a: OwnAgent = ScmiAgent::new(AnyTransport::new(&l), opts);
    let p2 = Prober::run(&mut a);
    assert!(p2.complaints.is_empty(), "{:?}", p2.complaints);
    assert_eq!(p2.base.protocols, p.base.protocols);
    assert_eq!(settable_clocks(&p2), clocks);
    check_rates(&mut a, &clocks, &last);
    one_round(&mut a, ROUNDS, &clocks, &mut last);
    check_rates(&mut a, &clocks, &last);
    let d = l.with_device(|d| d.stats());
    assert_eq!(d.requests, first_commands + a.stats().commands);
    assert_eq!(d.requests, d.replies, "every command answered");
    assert_eq!(d.unanswerable + d.invalid_chains + d.access_errors, 0);
    device.join();
}
