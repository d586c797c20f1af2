//! From the device tree to a validated [`Manifest`]: every node and
//! property is checked against the format (README.md), unknown ones are
//! refused, and cross-references and server limits are enforced.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use platform_sim as sim;
use scmi_server::config::MAX_DEVICES;
use scmi_server::protocols::{clock, perf, power, reset, sensor, system, voltage};

use crate::model::*;
use crate::tree::{Node, Res};

/// Most agents a manifest may declare: what the simulated platform keeps
/// per-agent state for (power votes, performance limits).
pub const MAX_AGENTS: usize = if sim::power::AGENTS < sim::perf::AGENTS {
    sim::power::AGENTS
} else {
    sim::perf::AGENTS
};

/// Longest name in a 16-byte SCMI field (NUL included): vendor, sub-vendor,
/// agent names (SCMI v3.2 §4.2.2.4, §4.2.2.9).
pub const SHORT_NAME: usize = 15;
/// Longest resource name (the 64-byte extended name fields, §4.6.2.9 …).
pub const LONG_NAME: usize = 63;

/// The SCMI protocols the server implements.
pub const PROTOCOLS: [u8; 7] = [
    power::ID,
    system::ID,
    perf::ID,
    clock::ID,
    sensor::ID,
    reset::ID,
    voltage::ID,
];

/// Validates a whole tree.
pub fn manifest(root: &Node, file: &str) -> Res<Manifest> {
    root.only_children(&[
        "memory-regions",
        "device-regions",
        "boot-info",
        "services",
        "virtio",
        "scmi",
    ])?;
    let partition = partition(root)?;
    let scmi_node = match root.child("scmi") {
        Some(n) => n,
        None => return root.err("missing required node \"scmi\""),
    };
    let scmi = scmi(scmi_node)?;
    let virtio = match root.child("virtio") {
        Some(n) => virtio(n, &scmi)?,
        None => Vec::new(),
    };
    placement(root, &partition, &virtio)?;
    ffa_bus(root, &partition, &virtio)?;
    Ok(Manifest {
        file: file.to_string(),
        partition,
        virtio,
        scmi,
    })
}

// ------------------------------------------------------------------ FF-A

fn partition(n: &Node) -> Res<Partition> {
    n.only(&[
        "compatible",
        "ffa-version",
        "uuid",
        "messaging-method",
        "description",
        "id",
        "execution-ctx-count",
        "exception-level",
        "execution-state",
        "load-address",
        "entrypoint-offset",
        "xlat-granule",
        "boot-order",
        "ns-interrupts-action",
        "gp-register-num",
        "notification-support",
    ])?;
    let compat = n.required("compatible", n.string("compatible")?)?;
    let binding = match compat.as_str() {
        "arm,ffa-manifest-1.0" => (1, 0),
        "arm,ffa-manifest-1.1" => (1, 1),
        other => {
            return n.prop_err(
                "compatible",
                format_args!(
                    "\"{other}\" is not \"arm,ffa-manifest-1.0\" or \"arm,ffa-manifest-1.1\""
                ),
            );
        }
    };
    let ffa_version = n.required("ffa-version", n.u32("ffa-version")?)?;
    if ffa_version >> 16 != 1 {
        return n.prop_err(
            "ffa-version",
            format_args!("{ffa_version:#x}: major version must be 1"),
        );
    }
    let services = n.child("services");
    let (uuids, messaging_method) = match services {
        Some(s) => services_node(n, s, binding)?,
        None => root_services(n)?,
    };
    // TF-A ffa-manifest-binding: bits 0-2, 9 and 10 are defined.
    if let Some(m) = messaging_method.iter().find(|m| **m & !0x607 != 0) {
        return n.prop_err(
            "messaging-method",
            format_args!("{m:#x} sets undefined bits (defined: 0x607)"),
        );
    }
    let exception_level = n.required("exception-level", n.u32("exception-level")?)?;
    if exception_level > 2 {
        return n.prop_err("exception-level", "must be 0 (EL1), 1 (S-EL0) or 2 (S-EL1)");
    }
    let execution_state = n.required("execution-state", n.u32("execution-state")?)?;
    if execution_state > 1 {
        return n.prop_err("execution-state", "must be 0 (AArch64) or 1 (AArch32)");
    }
    let execution_ctx_count = n.required("execution-ctx-count", n.u32("execution-ctx-count")?)?;
    if execution_ctx_count == 0 {
        return n.prop_err("execution-ctx-count", "must be at least 1");
    }
    let xlat_granule = n.u32("xlat-granule")?;
    if xlat_granule.is_some_and(|g| g > 2) {
        return n.prop_err("xlat-granule", "must be 0 (4K), 1 (16K) or 2 (64K)");
    }
    let ns_interrupts_action = n.u32("ns-interrupts-action")?;
    if ns_interrupts_action.is_some_and(|a| a > 2) {
        return n.prop_err("ns-interrupts-action", "must be 0, 1 or 2");
    }
    let gp_register_num = n.u32("gp-register-num")?;
    if gp_register_num.is_some_and(|r| r > 30) {
        return n.prop_err("gp-register-num", "must name x0..x30");
    }
    let boot_order = n.u32("boot-order")?;
    if boot_order.is_some_and(|b| b > 0xffff) {
        return n.prop_err("boot-order", "must be at most 0xffff");
    }
    let boot_info = match n.child("boot-info") {
        None => Vec::new(),
        Some(b) => {
            b.only_children(&[])?;
            let compat = b.required("compatible", b.string("compatible")?)?;
            if compat != "arm,ffa-manifest-boot-info" {
                return b.prop_err("compatible", "must be \"arm,ffa-manifest-boot-info\"");
            }
            let mut names = Vec::new();
            for (p, _) in &b.props {
                match p.as_str() {
                    "compatible" => {}
                    "ffa_manifest" => {
                        b.flag(p)?;
                        names.push(p.clone());
                    }
                    other => {
                        return b.err(format!(
                            "unknown property \"{other}\" (allowed here: compatible, ffa_manifest)"
                        ));
                    }
                }
            }
            names
        }
    };
    if !boot_info.is_empty() && gp_register_num.is_none() {
        return n.err("boot-info needs \"gp-register-num\" to say where the blob's address goes");
    }
    Ok(Partition {
        binding,
        services: services.is_some(),
        ffa_version,
        uuids,
        messaging_method,
        description: n.string("description")?,
        id: n.u32("id")?,
        execution_ctx_count,
        exception_level,
        execution_state,
        load_address: n.u64("load-address")?,
        entrypoint_offset: n.u64("entrypoint-offset")?,
        xlat_granule,
        boot_order,
        ns_interrupts_action,
        gp_register_num,
        notification_support: n.flag("notification-support")?,
        boot_info,
        memory_regions: regions(n.child("memory-regions"), false)?,
        device_regions: regions(n.child("device-regions"), true)?,
    })
}

fn regions(n: Option<&Node>, device: bool) -> Res<Vec<Region>> {
    let Some(n) = n else {
        return Ok(Vec::new());
    };
    let want = if device {
        "arm,ffa-manifest-device-regions"
    } else {
        "arm,ffa-manifest-memory-regions"
    };
    n.only(&["compatible", "#address-cells", "#size-cells"])?;
    if n.required("compatible", n.string("compatible")?)? != want {
        return n.prop_err("compatible", format_args!("must be \"{want}\""));
    }
    let mut out: Vec<Region> = Vec::new();
    for c in &n.children {
        let mut allowed = alloc::vec!["description", "base-address", "pages-count", "attributes"];
        if device {
            allowed.extend_from_slice(&["interrupts", "system-registers"]);
        }
        c.only(&allowed)?;
        c.only_children(&[])?;
        // The generated code names one constant per region after its node
        // (codegen::to_rust): the name must make an identifier no other
        // region of the same list makes.
        let Some(ident) = crate::codegen::ident(c.base_name()) else {
            return c.err(format!(
                "node name \"{}\" makes no Rust constant name (start it with a letter)",
                c.base_name()
            ));
        };
        if let Some(other) = out
            .iter()
            .find(|r| crate::codegen::region_ident(r).as_deref() == Some(ident.as_str()))
        {
            return c.err(format!(
                "node name makes the constant {ident}, as \"{}\" does: names must differ in more than case, punctuation or unit address",
                other.node
            ));
        }
        let system_registers = c.flag("system-registers")?;
        let base_address = c.u64("base-address")?;
        let pages = c.u32("pages-count")?;
        let pages_count = if system_registers {
            // A device reached through system registers (the Arm generic
            // timer: Arm ARM D11) has no address and no pages; it is
            // listed for its interrupts.
            for p in ["base-address", "pages-count"] {
                if c.has(p) {
                    return c.prop_err(
                        p,
                        "a \"system-registers\" device has no address (it is reached through system registers)",
                    );
                }
            }
            if !c.has("interrupts") {
                return c.err(
                    "missing required property \"interrupts\" (a \"system-registers\" device is listed for its interrupts)",
                );
            }
            0
        } else {
            if device && base_address.is_none() {
                return c.err("missing required property \"base-address\"");
            }
            let pages_count = c.required("pages-count", pages)?;
            if pages_count == 0 {
                return c.prop_err("pages-count", "must be at least 1");
            }
            pages_count
        };
        if base_address.is_some_and(|b| b % 4096 != 0) {
            return c.prop_err("base-address", "must be aligned to the 4 KiB granule");
        }
        if let Some(b) = base_address
            && b.checked_add(u64::from(pages_count) * 4096).is_none()
        {
            return c.prop_err(
                "pages-count",
                format_args!("{pages_count} pages from {b:#x} wrap around the address space"),
            );
        }
        let attributes = c.required("attributes", c.u32("attributes")?)?;
        if attributes & !0xf != 0 || attributes & 0x3 == 0 {
            return c.prop_err(
                "attributes",
                "must combine 1 (R), 2 (W), 4 (X), 8 (NS) and allow a read or a write",
            );
        }
        out.push(Region {
            node: c.name.clone(),
            description: c.string("description")?,
            base_address,
            pages_count,
            attributes,
            interrupts: pairs(c, "interrupts")?,
            system_registers,
        });
    }
    Ok(out)
}

/// The node of region `r` in list `list` (`memory-regions`,
/// `device-regions`), for messages.
fn region_node<'a>(root: &'a Node, list: &str, r: &Region) -> &'a Node {
    root.child(list)
        .and_then(|l| l.child(&r.node))
        .unwrap_or(root)
}

/// Whether `[base, base + size)` lies inside region `r`.
fn inside(r: &Region, base: u64, size: u64) -> bool {
    match (r.span(), base.checked_add(size)) {
        (Some((start, end)), Some(last)) => start <= base && last <= end,
        _ => false,
    }
}

/// Where things lie, once the partition declares its memory: regions do not
/// overlap, each virtio device's shared window is readable and writable
/// memory of the partition, and the image is loaded into executable
/// memory. A manifest without `memory-regions` (the vhost-user daemon, an
/// FF-A partition whose memory the SPMC assigns) is not checked.
fn placement(root: &Node, p: &Partition, virtio: &[VirtioDevice]) -> Res<()> {
    let memory = &p.memory_regions;
    if memory.is_empty() {
        return Ok(());
    }
    let hex_span = |(a, b): (u64, u64)| format!("[{a:#x}, {b:#x})");
    // Memory regions against earlier memory regions and every device
    // region; device regions against earlier device regions.
    let lists = [
        ("memory-regions", memory),
        ("device-regions", &p.device_regions),
    ];
    for (li, (list, regions)) in lists.iter().enumerate() {
        for (i, r) in regions.iter().enumerate() {
            let Some(span) = r.span() else { continue };
            let mut others: Vec<(&str, &Region)> =
                regions[..i].iter().map(|o| (*list, o)).collect();
            if li == 0 {
                others.extend(p.device_regions.iter().map(|o| ("device-regions", o)));
            }
            for (olist, o) in others {
                let Some(ospan) = o.span() else { continue };
                if span.0 < ospan.1 && ospan.0 < span.1 {
                    return region_node(root, list, r).prop_err(
                        "base-address",
                        format_args!(
                            "{} overlaps /{olist}/{} {}",
                            hex_span(span),
                            o.node,
                            hex_span(ospan)
                        ),
                    );
                }
            }
        }
    }
    // The driver and the device both read and write the shared window.
    const RW: u32 = 0x3;
    for d in virtio {
        let Some((base, size)) = d.shared_window else {
            continue;
        };
        let node = root
            .child("virtio")
            .and_then(|v| v.children.iter().find(|c| c.reg().ok() == Some(d.index)))
            .unwrap_or(root);
        let span = hex_span((base, base.saturating_add(size)));
        match memory.iter().find(|r| inside(r, base, size)) {
            None => {
                return node.prop_err(
                    "shared-window",
                    format_args!("{span} lies inside no memory region"),
                );
            }
            Some(r) if r.attributes & RW != RW => {
                return node.prop_err(
                    "shared-window",
                    format_args!(
                        "{span} lies in /memory-regions/{}, which is not readable and writable (attributes {:#x})",
                        r.node, r.attributes
                    ),
                );
            }
            Some(_) => {}
        }
    }
    // FF-A manifest binding: the image is loaded at `load-address` and
    // entered at `entrypoint-offset` from it; both must be executable.
    const X: u32 = 0x4;
    if let Some(load) = p.load_address {
        let Some(r) = memory.iter().find(|r| inside(r, load, 1)) else {
            return root.prop_err(
                "load-address",
                format_args!("{load:#x} lies inside no memory region"),
            );
        };
        if r.attributes & X == 0 {
            return root.prop_err(
                "load-address",
                format_args!(
                    "{load:#x} lies in /memory-regions/{}, which is not executable (attributes {:#x})",
                    r.node, r.attributes
                ),
            );
        }
        if let Some(off) = p.entrypoint_offset {
            let entry = load.checked_add(off);
            if !entry.is_some_and(|e| inside(r, e, 1)) {
                return root.prop_err(
                    "entrypoint-offset",
                    format_args!(
                        "{off:#x} from the load address leaves /memory-regions/{}",
                        r.node
                    ),
                );
            }
        }
    }
    Ok(())
}

/// The virtio-msg FF-A device UUID c66028b5-2498-4aa1-9de7-77da6122abf0
/// (DEN0153), as the manifest binding writes UUIDs: four words, each the
/// little-endian reading of four bytes.
pub const VIRTIO_MSG_FFA_UUID: [u32; 4] = [0xb52860c6, 0xa14a9824, 0xda77e79d, 0xf0ab2261];

/// A virtio-msg-ffa device needs a secure partition that the driver can
/// reach: the device UUID among its UUIDs, with DIRECT_REQ2 receipt (bit 9)
/// in its messaging method (FF-A manifest binding, `messaging-method`).
fn ffa_bus(root: &Node, p: &Partition, virtio: &[VirtioDevice]) -> Res<()> {
    if !virtio
        .iter()
        .any(|d| d.transport == Transport::VirtioMsgFfa)
    {
        return Ok(());
    }
    if p.exception_level == 0 {
        return root.prop_err(
            "exception-level",
            "virtio-msg-ffa devices are served by a secure partition (1 S-EL0 or 2 S-EL1)",
        );
    }
    // The SPMC (Hafnium) reads an FF-A 1.1+ partition's UUIDs and messaging
    // methods only from its `services` node.
    if p.binding >= (1, 1) && !p.services {
        return root.err(
            "a secure partition's arm,ffa-manifest-1.1 manifest lists its UUIDs and messaging methods in a \"services\" node",
        );
    }
    let Some(i) = p.uuids.iter().position(|u| *u == VIRTIO_MSG_FFA_UUID) else {
        return root.prop_err(
            "uuid",
            "virtio-msg-ffa needs the virtio-msg FF-A device UUID c66028b5-2498-4aa1-9de7-77da6122abf0 (<0xb52860c6 0xa14a9824 0xda77e79d 0xf0ab2261>)",
        );
    };
    let method = match p.messaging_method.as_slice() {
        [one] => *one,
        many => many.get(i).copied().unwrap_or(0),
    };
    if method & (1 << 9) == 0 {
        return root.prop_err(
            "messaging-method",
            format_args!("{method:#x} for the virtio-msg UUID lacks bit 9 (receives DIRECT_REQ2)"),
        );
    }
    Ok(())
}

/// `uuid` (groups of four cells) and `messaging-method` (one value, or one
/// per UUID) at the root (binding 1.0, and 1.1 outside secure partitions).
fn root_services(n: &Node) -> Res<(Vec<[u32; 4]>, Vec<u32>)> {
    let uuid_cells = n.required("uuid", n.u32s("uuid")?)?;
    if uuid_cells.is_empty() || uuid_cells.len() % 4 != 0 {
        return n.prop_err("uuid", "expected groups of four 32-bit cells");
    }
    let uuids: Vec<[u32; 4]> = uuid_cells
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    let messaging_method = n.required("messaging-method", n.u32s("messaging-method")?)?;
    if messaging_method.len() != 1 && messaging_method.len() != uuids.len() {
        return n.prop_err("messaging-method", "expected one value, or one per uuid");
    }
    Ok((uuids, messaging_method))
}

/// The FF-A 1.1+ `services` node: `compatible =
/// "arm,ffa-manifest-services"`, one child per service with `uuid` (a
/// canonical string) and `messaging-method` (one value).
fn services_node(root: &Node, s: &Node, binding: (u32, u32)) -> Res<(Vec<[u32; 4]>, Vec<u32>)> {
    if binding < (1, 1) {
        return s.err(
            "a \"services\" node needs compatible \"arm,ffa-manifest-1.1\" (FF-A 1.1+ binding)",
        );
    }
    for p in ["uuid", "messaging-method"] {
        if root.has(p) {
            return root.prop_err(p, "belongs to the services node, which this manifest has");
        }
    }
    s.only(&["compatible"])?;
    if s.required("compatible", s.string("compatible")?)? != "arm,ffa-manifest-services" {
        return s.prop_err("compatible", "must be \"arm,ffa-manifest-services\"");
    }
    let (mut uuids, mut methods) = (Vec::new(), Vec::new());
    for c in &s.children {
        c.only(&["uuid", "messaging-method", "description"])?;
        c.only_children(&[])?;
        let text = c.required("uuid", c.string("uuid")?)?;
        let Some(words) = crate::model::uuid_words(&text) else {
            return c.prop_err(
                "uuid",
                format_args!("\"{text}\" is not a canonical UUID (8-4-4-4-12 hex digits)"),
            );
        };
        uuids.push(words);
        methods.push(c.required("messaging-method", c.u32("messaging-method")?)?);
    }
    if uuids.is_empty() {
        return s.err("no service: at least one child with uuid and messaging-method");
    }
    Ok((uuids, methods))
}

fn pairs(n: &Node, prop: &str) -> Res<Vec<(u32, u32)>> {
    let Some(v) = n.u32s(prop)? else {
        return Ok(Vec::new());
    };
    if v.len() % 2 != 0 {
        return n.prop_err(prop, "expected <id attributes> pairs");
    }
    Ok(v.chunks_exact(2).map(|c| (c[0], c[1])).collect())
}

// ---------------------------------------------------------------- virtio

fn virtio(n: &Node, scmi: &Scmi) -> Res<Vec<VirtioDevice>> {
    n.only(&["#address-cells", "#size-cells"])?;
    n.only_children(&["device"])?;
    let mut out = Vec::new();
    for (i, c) in indexed(n)?.into_iter().enumerate() {
        c.only(&[
            "reg",
            "device-id",
            "transport",
            "agent",
            "queue-sizes",
            "p2a-channels",
            "shared-window",
            "channel",
            "channel-geometry",
            "mmio-base",
            "doorbell",
            "interrupts",
            "socket",
            "max-areas",
            "xen,driver-domain",
            "xen,event-channel",
            "xen,channel-grant",
            "xen,grant-window",
        ])?;
        c.only_children(&[])?;
        let device_id = c.required("device-id", c.u32("device-id")?)?;
        if device_id != 32 {
            return c.prop_err(
                "device-id",
                format_args!("{device_id}: only SCMI (32) is served"),
            );
        }
        let t = c.required("transport", c.string("transport")?)?;
        let transport = match t.as_str() {
            "vhost-user" => Transport::VhostUser,
            "virtio-mmio" => Transport::VirtioMmio,
            "virtio-msg" => Transport::VirtioMsg,
            "virtio-msg-ffa" => Transport::VirtioMsgFfa,
            "virtio-msg-xen" => Transport::VirtioMsgXen,
            other => {
                return c.prop_err(
                    "transport",
                    format_args!(
                        "\"{other}\" is not \"vhost-user\", \"virtio-mmio\", \"virtio-msg\", \"virtio-msg-ffa\" or \"virtio-msg-xen\""
                    ),
                );
            }
        };
        let agent = c.required("agent", c.u32("agent")?)?;
        if agent == 0 || agent as usize > scmi.agents.len() {
            return c.prop_err(
                "agent",
                format_args!(
                    "<{agent}> names no agent (agents are 1..={})",
                    scmi.agents.len()
                ),
            );
        }
        let queue_sizes = c.required("queue-sizes", c.u32s("queue-sizes")?)?;
        let p2a = c.flag("p2a-channels")?;
        // virtio-scmi: cmdq, plus eventq when P2A channels are offered.
        let want = if p2a { 2 } else { 1 };
        if queue_sizes.len() != want {
            return c.prop_err(
                "queue-sizes",
                format_args!(
                    "expected {want} sizes (cmdq{}), found {}",
                    if p2a { ", eventq" } else { "" },
                    queue_sizes.len()
                ),
            );
        }
        // virtio v1.2 §2.7: a packed ring holds at most 2^15 entries; we
        // keep split-ring sizes to powers of two as well (§2.6).
        if let Some(q) = queue_sizes
            .iter()
            .find(|q| !q.is_power_of_two() || **q > 32768)
        {
            return c.prop_err(
                "queue-sizes",
                format_args!("{q} is not a power of two in 1..=32768"),
            );
        }
        let shared_window = match c.u64s("shared-window")? {
            None => None,
            Some(v) if v.len() == 2 && v[1] > 0 && v[0].checked_add(v[1]).is_some() => {
                Some((v[0], v[1]))
            }
            Some(_) => {
                return c.prop_err(
                    "shared-window",
                    "expected /bits/ 64 <base size> with size > 0 and no wrap-around",
                );
            }
        };
        let mmio_base = c.u64("mmio-base")?;
        let socket = c.string("socket")?;
        let channel = match c.u64s("channel")? {
            None => None,
            Some(v) if v.len() == 2 => Some((v[0], v[1])),
            Some(_) => return c.prop_err("channel", "expected /bits/ 64 <offset size>"),
        };
        let channel_geometry = match c.u32s("channel-geometry")? {
            None => None,
            Some(v) if v.len() == 2 => Some((v[0], v[1])),
            Some(_) => {
                return c.prop_err("channel-geometry", "expected <elements element-size>");
            }
        };
        let doorbell = c.u32("doorbell")?;
        let interrupts = pairs(c, "interrupts")?;
        if transport != Transport::VirtioMsg {
            for p in ["channel", "channel-geometry"] {
                if c.has(p) && (p == "channel" || transport != Transport::VirtioMsgXen) {
                    return c.prop_err(p, "only virtio-msg devices have a message channel");
                }
            }
        }
        let xen = xen_bus(c, transport, channel_geometry)?;
        let max_areas = c.u32("max-areas")?;
        if transport != Transport::VirtioMsgFfa && max_areas.is_some() {
            return c.prop_err("max-areas", "only virtio-msg-ffa devices take FF-A shares");
        }
        match transport {
            Transport::VirtioMsgFfa => {
                // Everything arrives through the SPMC: messages in FF-A
                // calls, memory as FF-A shares the driver names.
                unused(
                    c,
                    &[
                        "shared-window",
                        "mmio-base",
                        "doorbell",
                        "interrupts",
                        "socket",
                        "channel",
                        "channel-geometry",
                    ],
                    "virtio-msg-ffa (messages arrive in FF-A calls, memory as FF-A shares)",
                )?;
                match max_areas {
                    Some(1..=16) => {}
                    Some(n) => {
                        return c.prop_err("max-areas", format_args!("{n} is not in 1..=16"));
                    }
                    None => {
                        return c.err(
                            "missing required property \"max-areas\" (virtio-msg-ffa needs one)",
                        );
                    }
                }
            }
            Transport::VirtioMsgXen => unused(
                c,
                &[
                    "shared-window",
                    "mmio-base",
                    "doorbell",
                    "interrupts",
                    "socket",
                ],
                "virtio-msg-xen (the driver grants the channel page and its memory; events travel on the event channel)",
            )?,
            Transport::VhostUser => unused(
                c,
                &["shared-window", "mmio-base", "doorbell", "interrupts"],
                "vhost-user (memory and kicks arrive over the socket)",
            )?,
            Transport::VirtioMmio | Transport::VirtioMsg => {
                if socket.is_some() {
                    return c.prop_err("socket", "only vhost-user devices have a socket");
                }
                if shared_window.is_none() {
                    return c.err(format!(
                        "missing required property \"shared-window\" ({t} needs one)"
                    ));
                }
                if transport == Transport::VirtioMmio && mmio_base.is_none() {
                    return c
                        .err("missing required property \"mmio-base\" (virtio-mmio needs one)");
                }
                if transport == Transport::VirtioMsg && mmio_base.is_some() {
                    return c.prop_err("mmio-base", "virtio-msg has no register block");
                }
            }
        }
        if transport == Transport::VirtioMsg {
            virtio_msg(
                c,
                shared_window,
                channel,
                channel_geometry,
                doorbell,
                &interrupts,
            )?;
        }
        out.push(VirtioDevice {
            index: i as u32,
            device_id,
            transport,
            agent,
            queue_sizes,
            p2a,
            shared_window,
            mmio_base,
            channel,
            channel_geometry,
            doorbell,
            interrupts,
            socket,
            max_areas,
            xen,
        });
    }
    Ok(out)
}

/// Refuses the first of `props` the device has: not used with `transport`
/// (a transport name and why).
fn unused(c: &Node, props: &[&str], transport: &str) -> Res<()> {
    match props.iter().find(|p| c.has(p)) {
        Some(p) => c.prop_err(p, format_args!("not used with {transport}")),
        None => Ok(()),
    }
}

/// The `xen,*` properties of a virtio-msg-xen device (and none on any
/// other): the driver's domain, our end of the static event channel, the
/// grant of the channel page, and where granted pages are mapped.
fn xen_bus(c: &Node, transport: Transport, geometry: Option<(u32, u32)>) -> Res<Option<XenBus>> {
    const PROPS: [&str; 4] = [
        "xen,driver-domain",
        "xen,event-channel",
        "xen,channel-grant",
        "xen,grant-window",
    ];
    if transport != Transport::VirtioMsgXen {
        return match PROPS.iter().find(|p| c.has(p)) {
            Some(p) => c.prop_err(p, "only virtio-msg-xen devices have Xen properties"),
            None => Ok(None),
        };
    }
    for p in PROPS {
        if !c.has(p) {
            return c.err(format!(
                "missing required property \"{p}\" (virtio-msg-xen needs one)"
            ));
        }
    }
    let Some((elements, element_size)) = geometry else {
        return c.err("missing required property \"channel-geometry\" (virtio-msg-xen needs one)");
    };
    // The channel is the driver's first granted page, whole.
    channel_fits(c, elements, element_size, 4096)?;
    let domain = c.required("xen,driver-domain", c.u32("xen,driver-domain")?)?;
    // Xen's public xen.h: ids from DOMID_FIRST_RESERVED (0x7ff0) are
    // special; domain 0 is the control domain, never a dom0less DomU.
    if !(1..0x7ff0).contains(&domain) {
        return c.prop_err(
            "xen,driver-domain",
            format_args!("{domain} is not a DomU id (1..=0x7fef)"),
        );
    }
    let port = c.required("xen,event-channel", c.u32("xen,event-channel")?)?;
    // Static event channels (docs/misc/arm/device-tree/booting.txt):
    // ports below the domain's limit, 1023 by default; 0 is never valid.
    if !(1..=1023).contains(&port) {
        return c.prop_err(
            "xen,event-channel",
            format_args!("port {port} is not in 1..=1023"),
        );
    }
    let gref = c.required("xen,channel-grant", c.u32("xen,channel-grant")?)?;
    // grant_table.h: GNTTAB_NR_RESERVED_ENTRIES (8) are the toolstack's.
    if gref < 8 {
        return c.prop_err(
            "xen,channel-grant",
            format_args!("grant {gref} is reserved (0..=7)"),
        );
    }
    let window = match c.u64s("xen,grant-window")?.as_deref() {
        Some(&[base, size])
            if base.is_multiple_of(4096)
                && size.is_multiple_of(4096)
                && (2 * 4096..=256 * 4096).contains(&size)
                && base.checked_add(size).is_some() =>
        {
            (base, size)
        }
        _ => {
            return c.prop_err(
                "xen,grant-window",
                "expected /bits/ 64 <base size>: page-aligned, 2 to 256 pages (a slot per mapped page)",
            );
        }
    };
    Ok(Some(XenBus {
        driver_domain: domain as u16,
        event_channel: port,
        channel_grant: gref,
        grant_window: window,
    }))
}

/// The channel's queue geometry (vmamp_shmem) and whether it fits `size`
/// bytes.
fn channel_fits(c: &Node, elements: u32, element_size: u32, size: u64) -> Res<()> {
    // vmamp_shmem_layout.num_queue_elements: at least two (one element
    // always stays free to tell a full queue from an empty one), at most
    // 2^15 so the 16-bit free-running head and tail indices stay
    // unambiguous.
    if !(2..=0x8000).contains(&elements) {
        return c.prop_err(
            "channel-geometry",
            format_args!("{elements} elements: expected 2..=32768"),
        );
    }
    // vmamp_shmem_layout.size_queue_elements (16 bits): Linux's receive
    // copies 64 bytes, and elements stay on whole 64-byte lines.
    if element_size < 64 || !element_size.is_multiple_of(64) || element_size > 0xffc0 {
        return c.prop_err(
            "channel-geometry",
            format_args!("element size {element_size}: expected a multiple of 64 in 64..=65472"),
        );
    }
    let needed = channel_bytes(elements, element_size);
    if needed > size {
        return c.prop_err(
            "channel-geometry",
            format_args!(
                "{elements} elements of {element_size} bytes need {needed:#x} bytes; the channel has {size:#x}"
            ),
        );
    }
    Ok(())
}

/// Bytes of a `vmamp_shmem` layout as the device publishes it: the 64-byte
/// layout header, the device's and the driver's queue heads on lines of
/// their own, a spare line, then the two element arrays.
fn channel_bytes(elements: u32, element_size: u32) -> u64 {
    4 * 64 + 2 * u64::from(elements) * u64::from(element_size)
}

/// The message channel, doorbell and interrupt a virtio-msg device needs
/// to be reached over shared memory (the virtio-msg AMP bus: Linux
/// `include/uapi/linux/virtio_msg_amp_shmem.h`, `struct vmamp_shmem_layout`;
/// this workspace's `virtio/src/amp.rs`).
fn virtio_msg(
    c: &Node,
    window: Option<(u64, u64)>,
    channel: Option<(u64, u64)>,
    geometry: Option<(u32, u32)>,
    doorbell: Option<u32>,
    interrupts: &[(u32, u32)],
) -> Res<()> {
    let (_, window_size) = c.required("shared-window", window)?;
    let Some((offset, size)) = channel else {
        return c.err("missing required property \"channel\" (virtio-msg needs one)");
    };
    let Some((elements, element_size)) = geometry else {
        return c.err("missing required property \"channel-geometry\" (virtio-msg needs one)");
    };
    let Some(doorbell) = doorbell else {
        return c.err("missing required property \"doorbell\" (virtio-msg needs one)");
    };
    let Some(&(interrupt, _)) = interrupts.first() else {
        return c.err("missing required property \"interrupts\" (virtio-msg needs one)");
    };
    if size == 0 {
        return c.prop_err("channel", "size must be at least 1");
    }
    // The layout keeps its header, queue heads and element arrays on
    // 64-byte lines of their own (vmamp_shmem: offsets are line-aligned),
    // which holds only when the channel itself starts on a line.
    if offset % 64 != 0 {
        return c.prop_err(
            "channel",
            format_args!("offset {offset:#x} is not aligned to 64 bytes"),
        );
    }
    if offset.checked_add(size).is_none_or(|end| end > window_size) {
        return c.prop_err(
            "channel",
            format_args!(
                "{size:#x} bytes at offset {offset:#x} do not fit the {window_size:#x}-byte shared window"
            ),
        );
    }
    channel_fits(c, elements, element_size, size)?;
    // GIC INTIDs 1020..=1023 are special (Arm IHI 0069 §2.2) and LPIs
    // (8192 and up) cannot be raised as a doorbell: both ends are SGIs,
    // PPIs or SPIs.
    for (p, id) in [("doorbell", doorbell), ("interrupts", interrupt)] {
        if id >= 1020 {
            return c.prop_err(
                p,
                format_args!("interrupt id {id} is not a GIC SGI, PPI or SPI (0..=1019)"),
            );
        }
    }
    if doorbell == interrupt {
        return c.prop_err(
            "interrupts",
            format_args!(
                "interrupt id {interrupt} is also the doorbell: each direction needs its own"
            ),
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ SCMI

/// Children of `n` sorted by `reg`, which must be 0..N (or 1..=N for
/// agents) without gaps or duplicates: SCMI ids are dense indexes.
fn indexed_from(n: &Node, first: u32) -> Res<Vec<&Node>> {
    let mut by_id: Vec<(u32, &Node)> = Vec::new();
    for c in &n.children {
        let id = c.reg()?;
        if let Some((_, other)) = by_id.iter().find(|(i, _)| *i == id) {
            return c.prop_err(
                "reg",
                format_args!("duplicate id {id} (also {})", other.path),
            );
        }
        by_id.push((id, c));
    }
    by_id.sort_by_key(|(i, _)| *i);
    for (k, (id, c)) in by_id.iter().enumerate() {
        let want = first + k as u32;
        if *id != want {
            return c.prop_err(
                "reg",
                format_args!(
                    "ids must run {first}, {}, ... without gaps; expected {want}, found {id}",
                    first + 1
                ),
            );
        }
    }
    Ok(by_id.into_iter().map(|(_, c)| c).collect())
}

fn indexed(n: &Node) -> Res<Vec<&Node>> {
    indexed_from(n, 0)
}

fn container<'a>(scmi: &'a Node, name: &str, child: &str, extra: &[&str]) -> Res<Vec<&'a Node>> {
    let Some(n) = scmi.child(name) else {
        return Ok(Vec::new());
    };
    let mut allowed = alloc::vec!["#address-cells", "#size-cells"];
    allowed.extend_from_slice(extra);
    n.only(&allowed)?;
    n.only_children(&[child])?;
    indexed(n)
}

fn check_count(n: &Node, kind: &str, count: usize, max: usize) -> Res<()> {
    if count > max {
        return n.err(format!(
            "{count} {kind} entries, the server supports at most {max}"
        ));
    }
    Ok(())
}

fn res_name(n: &Node, max: usize, seen: &mut BTreeSet<String>) -> Res<String> {
    let s = n.required("label", n.string("label")?)?;
    if s.is_empty() {
        return n.prop_err("label", "must not be empty");
    }
    if s.len() > max {
        return n.prop_err(
            "label",
            format_args!(
                "\"{s}\" has {} characters; the SCMI field holds at most {max}",
                s.len()
            ),
        );
    }
    if !seen.insert(s.clone()) {
        return n.prop_err("label", format_args!("duplicate name \"{s}\""));
    }
    Ok(s)
}

fn short_string(n: &Node, prop: &str) -> Res<String> {
    let s = n.required(prop, n.string(prop)?)?;
    if s.len() > SHORT_NAME {
        return n.prop_err(
            prop,
            format_args!(
                "\"{s}\" has {} characters; the 16-byte SCMI field holds at most {SHORT_NAME}",
                s.len()
            ),
        );
    }
    Ok(s)
}

fn u8_of(n: &Node, prop: &str, v: u32) -> Res<u8> {
    match u8::try_from(v) {
        Ok(v) => Ok(v),
        Err(_) => n.prop_err(prop, format_args!("{v} does not fit 8 bits")),
    }
}

/// A power-of-ten exponent in the 5-bit signed fields (-16..=15).
fn exp5(n: &Node, prop: &str, v: i32) -> Res<i8> {
    if !(-16..=15).contains(&v) {
        return n.prop_err(prop, format_args!("{v} is outside -16..=15"));
    }
    Ok(v as i8)
}

fn scmi(n: &Node) -> Res<Scmi> {
    n.only(&[
        "vendor",
        "sub-vendor",
        "implementation-version",
        "max-rx-timeout-ms",
    ])?;
    n.only_children(&[
        "agents",
        "devices",
        "power-domains",
        "system-power",
        "perf-domains",
        "clocks",
        "sensors",
        "reset-domains",
        "voltage-domains",
    ])?;
    let vendor = short_string(n, "vendor")?;
    let sub_vendor = short_string(n, "sub-vendor")?;
    let implementation_version =
        n.required("implementation-version", n.u32("implementation-version")?)?;

    let power = power_domains(n)?;
    let system = system_power(n)?;
    let (perf, perf_power_unit) = perf_domains(n)?;
    let clocks = clocks(n)?;
    let (sensors, sensor_max_async) = sensors(n)?;
    let resets = resets(n)?;
    let voltages = voltages(n)?;

    let counts = [
        (power::ID, power.len()),
        (perf::ID, perf.len()),
        (clock::ID, clocks.len()),
        (sensor::ID, sensors.len()),
        (reset::ID, resets.len()),
        (voltage::ID, voltages.len()),
    ];
    let devices = devices(n, &counts)?;
    let agents = agents(n, devices.len())?;
    let max_rx_timeout_ms = n.u32("max-rx-timeout-ms")?;
    if max_rx_timeout_ms == Some(0) {
        return n.prop_err("max-rx-timeout-ms", "must be at least 1");
    }
    Ok(Scmi {
        vendor,
        sub_vendor,
        implementation_version,
        max_rx_timeout_ms,
        agents,
        devices,
        power,
        system,
        perf,
        perf_power_unit,
        clocks,
        sensors,
        sensor_max_async,
        resets,
        voltages,
    })
}

fn agents(scmi: &Node, device_count: usize) -> Res<Vec<Agent>> {
    let Some(n) = scmi.child("agents") else {
        return scmi.err("missing required node \"agents\"");
    };
    n.only(&["#address-cells", "#size-cells"])?;
    n.only_children(&["agent"])?;
    let nodes = indexed_from(n, 1)?;
    if nodes.is_empty() {
        return n.err("at least one agent is required");
    }
    check_count(n, "agent", nodes.len(), MAX_AGENTS)?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in nodes {
        c.only(&["reg", "label", "trusted", "protocols", "devices"])?;
        c.only_children(&[])?;
        let name = res_name(c, SHORT_NAME, &mut seen)?;
        let protocols = match c.u32s("protocols")? {
            None => u32::MAX,
            Some(list) => {
                let mut m = 0;
                for p in list {
                    if !PROTOCOLS.iter().any(|&x| u32::from(x) == p) {
                        return c.prop_err(
                            "protocols",
                            format_args!(
                                "{p:#x} is not a protocol this server implements (0x11..=0x17)"
                            ),
                        );
                    }
                    m |= scmi_server::config::protocol_bit(p as u8);
                }
                m
            }
        };
        let devices = match c.u32s("devices")? {
            None => u32::MAX,
            Some(list) => {
                let mut m = 0u32;
                for d in list {
                    if d as usize >= device_count {
                        return c.prop_err(
                            "devices",
                            format_args!("<{d}> names no device ({device_count} declared)"),
                        );
                    }
                    m |= 1 << d;
                }
                m
            }
        };
        out.push(Agent {
            name,
            trusted: c.flag("trusted")?,
            protocols,
            devices,
        });
    }
    Ok(out)
}

const DEVICE_PROPS: [(&str, u8); 6] = [
    ("power-domain-ids", power::ID),
    ("perf-domain-ids", perf::ID),
    ("clock-ids", clock::ID),
    ("sensor-ids", sensor::ID),
    ("reset-domain-ids", reset::ID),
    ("voltage-domain-ids", voltage::ID),
];

fn devices(scmi: &Node, counts: &[(u8, usize)]) -> Res<Vec<Device>> {
    let nodes = container(scmi, "devices", "device", &[])?;
    if let Some(n) = scmi.child("devices") {
        check_count(n, "device", nodes.len(), MAX_DEVICES)?;
    }
    let mut seen = BTreeSet::new();
    let mut owner: Vec<((u8, u32), String)> = Vec::new();
    let mut out = Vec::new();
    for c in nodes {
        let mut allowed = alloc::vec!["reg", "label"];
        allowed.extend(DEVICE_PROPS.iter().map(|(p, _)| *p));
        c.only(&allowed)?;
        c.only_children(&[])?;
        let name = res_name(c, LONG_NAME, &mut seen)?;
        let mut resources = Vec::new();
        for (prop, id) in DEVICE_PROPS {
            let count = counts.iter().find(|(p, _)| *p == id).map_or(0, |(_, n)| *n);
            for r in c.u32s(prop)?.unwrap_or_default() {
                if r as usize >= count {
                    return c.prop_err(
                        prop,
                        format_args!("<{r}> names no resource ({count} declared)"),
                    );
                }
                if let Some((_, other)) = owner.iter().find(|(k, _)| *k == (id, r)) {
                    return c.prop_err(prop, format_args!("<{r}> already belongs to {other}"));
                }
                owner.push(((id, r), c.path.clone()));
                resources.push((id, r));
            }
        }
        out.push(Device { name, resources });
    }
    Ok(out)
}

fn power_domains(scmi: &Node) -> Res<Vec<PowerDomain>> {
    let nodes = container(scmi, "power-domains", "domain", &[])?;
    if let Some(n) = scmi.child("power-domains") {
        check_count(
            n,
            "power domain",
            nodes.len(),
            sim::power::MAX_POWER_DOMAINS,
        )?;
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in nodes {
        c.only(&[
            "reg",
            "label",
            "sync-set",
            "async-set",
            "notify-changed",
            "notify-requested",
            "boot-state",
        ])?;
        c.only_children(&[])?;
        let boot = c.required("boot-state", c.string("boot-state")?)?;
        let boot_on = match boot.as_str() {
            "on" => true,
            "off" => false,
            other => {
                return c.prop_err(
                    "boot-state",
                    format_args!("\"{other}\" is not \"on\" or \"off\""),
                );
            }
        };
        let d = PowerDomain {
            name: res_name(c, LONG_NAME, &mut seen)?,
            sync_set: c.flag("sync-set")?,
            async_set: c.flag("async-set")?,
            notify_changed: c.flag("notify-changed")?,
            notify_requested: c.flag("notify-requested")?,
            boot_on,
        };
        out.push(d);
    }
    Ok(out)
}

fn system_power(scmi: &Node) -> Res<Option<SystemPower>> {
    let Some(n) = scmi.child("system-power") else {
        return Ok(None);
    };
    n.only(&["warm-reset", "suspend", "graceful-timeout-ms"])?;
    n.only_children(&[])?;
    Ok(Some(SystemPower {
        warm_reset: n.flag("warm-reset")?,
        suspend: n.flag("suspend")?,
        graceful_timeout_ms: n.u32("graceful-timeout-ms")?.unwrap_or(0),
    }))
}

fn perf_domains(scmi: &Node) -> Res<(Vec<PerfDomain>, u32)> {
    let nodes = container(scmi, "perf-domains", "domain", &["power-unit"])?;
    let unit = match scmi.child("perf-domains") {
        None => perf::POWER_MILLIWATT,
        Some(n) => {
            check_count(
                n,
                "performance domain",
                nodes.len(),
                sim::perf::MAX_PERF_DOMAINS,
            )?;
            match n.string("power-unit")?.as_deref() {
                None | Some("milliwatt") => perf::POWER_MILLIWATT,
                Some("microwatt") => perf::POWER_MICROWATT,
                Some("abstract") => perf::POWER_ABSTRACT,
                Some(other) => {
                    return n.prop_err(
                        "power-unit",
                        format_args!(
                            "\"{other}\" is not \"milliwatt\", \"microwatt\" or \"abstract\""
                        ),
                    );
                }
            }
        }
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in nodes {
        c.only(&[
            "reg",
            "label",
            "levels",
            "set-limits",
            "set-level",
            "notify-limits",
            "notify-level",
            "level-indexing",
            "rate-limit-us",
            "sustained-khz",
            "sustained-level",
            "boot-level",
        ])?;
        c.only_children(&[])?;
        let name = res_name(c, LONG_NAME, &mut seen)?;
        let cells = c.required("levels", c.u32s("levels")?)?;
        if cells.is_empty() || cells.len() % 4 != 0 {
            return c.prop_err(
                "levels",
                "expected <value power-cost latency-us indicative-khz> groups",
            );
        }
        let mut levels = Vec::new();
        for q in cells.chunks_exact(4) {
            let Ok(latency_us) = u16::try_from(q[2]) else {
                return c.prop_err(
                    "levels",
                    format_args!("latency {} does not fit 16 bits", q[2]),
                );
            };
            levels.push(PerfLevel {
                value: q[0],
                power_cost: q[1],
                latency_us,
                indicative_khz: q[3],
            });
        }
        if levels.len() > perf::MAX_LEVELS {
            return c.prop_err(
                "levels",
                format_args!(
                    "{} levels, Linux and the server take at most {}",
                    levels.len(),
                    perf::MAX_LEVELS
                ),
            );
        }
        if levels.iter().any(|l| l.value == 0) {
            return c.prop_err("levels", "a level value must not be 0");
        }
        if levels.windows(2).any(|w| w[0].value >= w[1].value) {
            return c.prop_err("levels", "values must ascend without duplicates");
        }
        let level_indexing = c.flag("level-indexing")?;
        if level_indexing {
            let mut khz: Vec<u32> = levels.iter().map(|l| l.indicative_khz).collect();
            khz.sort_unstable();
            if khz.windows(2).any(|w| w[0] == w[1]) || khz.contains(&0) {
                return c.prop_err(
                    "levels",
                    "level indexing needs distinct, non-zero indicative frequencies",
                );
            }
        }
        let rate_limit_us = c.u32("rate-limit-us")?.unwrap_or(0);
        if rate_limit_us >= 1 << 20 {
            return c.prop_err("rate-limit-us", "does not fit 20 bits");
        }
        let sustained_level = c.required("sustained-level", c.u32("sustained-level")?)?;
        if !levels.iter().any(|l| l.value == sustained_level) {
            return c.prop_err(
                "sustained-level",
                format_args!("{sustained_level} is not one of the levels"),
            );
        }
        let boot_level = c.u32("boot-level")?.unwrap_or(sustained_level);
        if !levels.iter().any(|l| l.value == boot_level) {
            return c.prop_err(
                "boot-level",
                format_args!("{boot_level} is not one of the levels"),
            );
        }
        out.push(PerfDomain {
            name,
            levels,
            set_limits: c.flag("set-limits")?,
            set_level: c.flag("set-level")?,
            notify_limits: c.flag("notify-limits")?,
            notify_level: c.flag("notify-level")?,
            level_indexing,
            rate_limit_us,
            sustained_khz: c.required("sustained-khz", c.u32("sustained-khz")?)?,
            sustained_level,
            boot_level,
        });
    }
    Ok((out, unit))
}

/// Extended configuration types the simulation keeps state for.
const EXT_KINDS: [u8; 3] = [
    clock::EXT_DUTY_CYCLE,
    clock::EXT_PHASE,
    sim::clock::EXT_SPREAD_SPECTRUM,
];

fn clocks(scmi: &Node) -> Res<Vec<Clock>> {
    let nodes = container(scmi, "clocks", "clock", &[])?;
    if let Some(n) = scmi.child("clocks") {
        check_count(n, "clock", nodes.len(), sim::clock::MAX_CLOCKS)?;
    }
    let count = nodes.len();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (id, c) in nodes.into_iter().enumerate() {
        c.only(&[
            "reg",
            "label",
            "rates",
            "rate-range",
            "parents",
            "enable-latency-us",
            "rate-notify",
            "ext-config",
            "permissions",
            "default-rate",
            "default-parent",
            "default-on",
        ])?;
        c.only_children(&[])?;
        let name = res_name(c, LONG_NAME, &mut seen)?;
        let rates = match (c.u64s("rates")?, c.u64s("rate-range")?) {
            (Some(list), None) => {
                if list.is_empty() || list.len() > 16 {
                    return c.prop_err(
                        "rates",
                        format_args!("{} rates; 1..=16 are allowed (Linux takes 16)", list.len()),
                    );
                }
                if list.contains(&0) || list.windows(2).any(|w| w[0] >= w[1]) {
                    return c.prop_err("rates", "must be non-zero and ascend without duplicates");
                }
                Rates::List(list)
            }
            (None, Some(r)) => {
                if r.len() != 3 || r[0] == 0 || r[0] > r[1] {
                    return c.prop_err(
                        "rate-range",
                        "expected /bits/ 64 <min max step> with 0 < min <= max",
                    );
                }
                Rates::Range {
                    min: r[0],
                    max: r[1],
                    step: r[2],
                }
            }
            (Some(_), Some(_)) => return c.err("give \"rates\" or \"rate-range\", not both"),
            (None, None) => return c.err("missing required property \"rates\" or \"rate-range\""),
        };
        let rate = c.required("default-rate", c.u64("default-rate")?)?;
        let known = match &rates {
            Rates::List(l) => l.contains(&rate),
            Rates::Range { min, max, step } => clock::Rates::Range {
                min: *min,
                max: *max,
                step: *step,
            }
            .contains(rate),
        };
        if !known {
            return c.prop_err(
                "default-rate",
                format_args!("{rate} Hz is not one of the clock's rates"),
            );
        }
        let parents = c.u32s("parents")?.unwrap_or_default();
        if parents.len() > 255 {
            return c.prop_err("parents", "at most 255 parents");
        }
        for &p in &parents {
            if p as usize >= count || p as usize == id {
                return c.prop_err(
                    "parents",
                    format_args!("<{p}> is not another clock (clocks are 0..{count})"),
                );
            }
        }
        let mut sorted = parents.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return c.prop_err("parents", "duplicate parent");
        }
        let parent = match c.u32("default-parent")? {
            Some(p) if parents.contains(&p) => p,
            Some(p) => {
                return c.prop_err(
                    "default-parent",
                    format_args!("<{p}> is not in \"parents\""),
                );
            }
            None => parents.first().copied().unwrap_or(0),
        };
        let mut ext_config = Vec::new();
        for k in c.u32s("ext-config")?.unwrap_or_default() {
            let k = u8_of(c, "ext-config", k)?;
            if !EXT_KINDS.contains(&k) {
                return c.prop_err(
                    "ext-config",
                    format_args!("{k:#x} is not a supported type (1 duty cycle, 2 phase, 0x80 spread spectrum)"),
                );
            }
            if ext_config.contains(&k) {
                return c.prop_err("ext-config", format_args!("duplicate type {k:#x}"));
            }
            ext_config.push(k);
        }
        let permissions = match c.strings("permissions")? {
            None => clock::perm::ALL,
            Some(list) => {
                let mut m = 0;
                for p in &list {
                    m |= match p.as_str() {
                        "state" => clock::perm::STATE,
                        "parent" => clock::perm::PARENT,
                        "rate" => clock::perm::RATE,
                        "none" if list.len() == 1 => 0,
                        other => {
                            return c.prop_err(
                                "permissions",
                                format_args!(
                                    "\"{other}\": expected \"state\", \"parent\", \"rate\", or \"none\" alone"
                                ),
                            );
                        }
                    };
                }
                m
            }
        };
        out.push(Clock {
            name,
            rates,
            parents,
            enable_latency_us: c.u32("enable-latency-us")?.unwrap_or(0),
            rate_notify: c.flag("rate-notify")?,
            ext_config,
            permissions,
            init: ClockInit {
                rate,
                on: c.flag("default-on")?,
                parent,
            },
        });
    }
    Ok(out)
}

fn range(n: &Node, required: bool) -> Res<Option<Range>> {
    let r = n.u64s("range")?;
    let res = n.u32s("resolution")?;
    match (r, res) {
        (None, None) if !required => Ok(None),
        (Some(r), Some(res)) => {
            if r.len() != 2 || (r[0] as i64) > (r[1] as i64) {
                return n.prop_err(
                    "range",
                    "expected /bits/ 64 <min max> (signed) with min <= max",
                );
            }
            if res.len() != 2 || res[0] >= 1 << 27 {
                return n.prop_err(
                    "resolution",
                    "expected <mantissa exponent> with a 27-bit mantissa",
                );
            }
            Ok(Some(Range {
                resolution: res[0],
                resolution_exp: exp5(n, "resolution", res[1] as i32)?,
                min: r[0] as i64,
                max: r[1] as i64,
            }))
        }
        (None, _) => n.err("missing required property \"range\" (it goes with \"resolution\")"),
        (_, None) => n.err("missing required property \"resolution\" (it goes with \"range\")"),
    }
}

fn wave(n: &Node) -> Res<Wave> {
    let tri = n.u64s("sim-triangle")?;
    let ramp = n.u64s("sim-ramp")?;
    let constant = n.u64s("sim-constant")?;
    let given = [tri.is_some(), ramp.is_some(), constant.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return n.err("give at most one of \"sim-triangle\", \"sim-ramp\", \"sim-constant\"");
    }
    if let Some(t) = tri {
        if t.len() != 4 {
            return n.prop_err(
                "sim-triangle",
                "expected /bits/ 64 <base amplitude period-ms phase-ms>",
            );
        }
        return Ok(Wave::Tri {
            base: t[0] as i64,
            amp: t[1] as i64,
            period: t[2],
            phase: t[3],
        });
    }
    if let Some(r) = ramp {
        if r.len() != 1 {
            return n.prop_err("sim-ramp", "expected /bits/ 64 <units-per-second>");
        }
        return Ok(Wave::Ramp { per_s: r[0] as i64 });
    }
    match constant {
        Some(v) if v.len() == 1 => Ok(Wave::Const(v[0] as i64)),
        Some(_) => n.prop_err("sim-constant", "expected /bits/ 64 <value>"),
        None => Ok(Wave::Const(0)),
    }
}

fn interval(n: &Node, prop: &str, secs: u32, exp: u32) -> Res<Interval> {
    let Ok(secs) = u16::try_from(secs) else {
        return n.prop_err(prop, format_args!("{secs} does not fit 16 bits"));
    };
    Ok(Interval::new(secs, exp5(n, prop, exp as i32)?))
}

fn sensors(scmi: &Node) -> Res<(Vec<Sensor>, u8)> {
    let nodes = container(scmi, "sensors", "sensor", &["max-async-reads"])?;
    let max_async = match scmi.child("sensors") {
        None => 0,
        Some(n) => {
            check_count(n, "sensor", nodes.len(), sim::sensor::MAX_SENSORS)?;
            let v = n.u32("max-async-reads")?.unwrap_or(0);
            u8_of(n, "max-async-reads", v)?
        }
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in nodes {
        c.only(&[
            "reg",
            "label",
            "unit",
            "scale",
            "trip-points",
            "async-read",
            "update-notify",
            "timestamp-exponent",
            "power-microwatts",
            "range",
            "resolution",
            "update-intervals",
            "update-interval-segment",
            "sim-triangle",
            "sim-ramp",
            "sim-constant",
            "#address-cells",
            "#size-cells",
        ])?;
        c.only_children(&["axis"])?;
        let name = res_name(c, LONG_NAME, &mut seen)?;
        let unit = c.required("unit", c.u32("unit")?)?;
        let class = u8_of(c, "unit", unit)?;
        let scale = exp5(c, "scale", c.s32("scale")?.unwrap_or(0))?;
        let trips = c.u32("trip-points")?.unwrap_or(0);
        if trips as usize > sim::sensor::MAX_TRIPS {
            return c.prop_err(
                "trip-points",
                format_args!(
                    "{trips}; the server keeps at most {}",
                    sim::sensor::MAX_TRIPS
                ),
            );
        }
        let timestamp_exp = match c.s32("timestamp-exponent")? {
            None => None,
            Some(e) => Some(exp5(c, "timestamp-exponent", e)?),
        };
        let ext = match c.u32("power-microwatts")? {
            None => {
                if c.has("range") || c.has("resolution") {
                    return c.err("\"range\" and \"resolution\" need \"power-microwatts\" (extended attributes)");
                }
                None
            }
            Some(power_uw) => Some(SensorExt {
                power_uw,
                range: range(c, true)?.unwrap_or(Range {
                    resolution: 0,
                    resolution_exp: 0,
                    min: 0,
                    max: 0,
                }),
            }),
        };
        let intervals = match (
            c.u32s("update-intervals")?,
            c.u32s("update-interval-segment")?,
        ) {
            (None, None) => Intervals::None,
            (Some(l), None) => {
                if l.is_empty() || l.len() % 2 != 0 {
                    return c.prop_err("update-intervals", "expected <seconds exponent> pairs");
                }
                let mut v = Vec::new();
                for p in l.chunks_exact(2) {
                    v.push(interval(c, "update-intervals", p[0], p[1])?);
                }
                if v.windows(2).any(|w| w[0].units() >= w[1].units()) {
                    return c.prop_err("update-intervals", "must ascend without duplicates");
                }
                Intervals::List(v)
            }
            (None, Some(s)) => {
                if s.len() != 6 {
                    return c.prop_err(
                        "update-interval-segment",
                        "expected <low-s low-exp high-s high-exp step-s step-exp>",
                    );
                }
                let p = "update-interval-segment";
                let low = interval(c, p, s[0], s[1])?;
                let high = interval(c, p, s[2], s[3])?;
                let step = interval(c, p, s[4], s[5])?;
                if low.units() > high.units() {
                    return c.prop_err(p, "low is above high");
                }
                Intervals::Segment { low, high, step }
            }
            (Some(_), Some(_)) => {
                return c.err("give \"update-intervals\" or \"update-interval-segment\", not both");
            }
        };
        let update_notify = c.flag("update-notify")?;
        if update_notify && intervals == Intervals::None {
            return c.prop_err("update-notify", "needs update intervals");
        }
        let axis_nodes = if c.children.is_empty() {
            Vec::new()
        } else {
            indexed(c)?
        };
        let mut axes = Vec::new();
        let mut waves = Vec::new();
        let mut axis_names = BTreeSet::new();
        for a in &axis_nodes {
            a.only(&[
                "reg",
                "label",
                "unit",
                "scale",
                "range",
                "resolution",
                "sim-triangle",
                "sim-ramp",
                "sim-constant",
            ])?;
            a.only_children(&[])?;
            let unit = a.required("unit", a.u32("unit")?)?;
            axes.push(Axis {
                name: res_name(a, LONG_NAME, &mut axis_names)?,
                class: u8_of(a, "unit", unit)?,
                scale: exp5(a, "scale", a.s32("scale")?.unwrap_or(0))?,
                ext: range(a, false)?,
            });
            waves.push(wave(a)?);
        }
        if axes.is_empty() {
            waves.push(wave(c)?);
        } else {
            for p in ["sim-triangle", "sim-ramp", "sim-constant"] {
                if c.has(p) {
                    return c
                        .prop_err(p, "a sensor with axes simulates each axis in its axis node");
                }
            }
            if axes.len() > sensor::MAX_READINGS {
                return c.err(format!(
                    "{} axes; one reading reply holds at most {}",
                    axes.len(),
                    sensor::MAX_READINGS
                ));
            }
        }
        out.push(Sensor {
            name,
            class,
            scale,
            trip_points: trips as u8,
            async_read: c.flag("async-read")?,
            update_notify,
            timestamp_exp,
            ext,
            axes,
            intervals,
            waves,
        });
    }
    Ok((out, max_async))
}

fn resets(scmi: &Node) -> Res<Vec<Reset>> {
    let nodes = container(scmi, "reset-domains", "domain", &[])?;
    if let Some(n) = scmi.child("reset-domains") {
        check_count(n, "reset domain", nodes.len(), sim::reset::MAX_RESETS)?;
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in nodes {
        c.only(&[
            "reg",
            "label",
            "latency-us",
            "async",
            "notify",
            "impl-states",
        ])?;
        c.only_children(&[])?;
        let name = res_name(c, LONG_NAME, &mut seen)?;
        let impl_states = c.u32s("impl-states")?.unwrap_or_default();
        if let Some(s) = impl_states.iter().find(|s| **s >= 1 << 31) {
            return c.prop_err("impl-states", format_args!("{s:#x} does not fit 31 bits"));
        }
        out.push(Reset {
            name,
            latency_us: c.u32("latency-us")?.unwrap_or(reset::LATENCY_UNKNOWN),
            async_capable: c.flag("async")?,
            notify: c.flag("notify")?,
            impl_states,
        });
    }
    Ok(out)
}

fn voltages(scmi: &Node) -> Res<Vec<Voltage>> {
    let nodes = container(scmi, "voltage-domains", "domain", &[])?;
    if let Some(n) = scmi.child("voltage-domains") {
        check_count(n, "voltage domain", nodes.len(), sim::voltage::MAX_VOLTAGES)?;
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in nodes {
        c.only(&[
            "reg",
            "label",
            "levels",
            "level-range",
            "async",
            "impl-modes",
            "default-level",
            "default-mode",
        ])?;
        c.only_children(&[])?;
        let name = res_name(c, LONG_NAME, &mut seen)?;
        let levels = match (c.u32s("levels")?, c.u32s("level-range")?) {
            (Some(l), None) => {
                let l: Vec<i32> = l.into_iter().map(|v| v as i32).collect();
                if l.is_empty() || l.windows(2).any(|w| w[0] >= w[1]) {
                    return c.prop_err(
                        "levels",
                        "must be non-empty and ascend without duplicates (signed µV)",
                    );
                }
                Levels::List(l)
            }
            (None, Some(r)) => {
                let r: Vec<i32> = r.into_iter().map(|v| v as i32).collect();
                if r.len() != 3 || r[0] > r[1] || r[2] <= 0 {
                    return c.prop_err(
                        "level-range",
                        "expected <min max step> with min <= max, step > 0",
                    );
                }
                Levels::Range {
                    min: r[0],
                    max: r[1],
                    step: r[2],
                }
            }
            (Some(_), Some(_)) => return c.err("give \"levels\" or \"level-range\", not both"),
            (None, None) => {
                return c.err("missing required property \"levels\" or \"level-range\"");
            }
        };
        let mut impl_modes = 0u8;
        for m in c.u32s("impl-modes")?.unwrap_or_default() {
            if !(0x8..=0xf).contains(&m) {
                return c.prop_err(
                    "impl-modes",
                    format_args!("{m:#x} is not an implementation-defined mode (0x8..=0xf)"),
                );
            }
            impl_modes |= 1 << (m - 0x8);
        }
        let level = c.required("default-level", c.s32("default-level")?)?;
        if !levels.contains(level) {
            return c.prop_err(
                "default-level",
                format_args!("{level} µV is not one of the domain's levels"),
            );
        }
        let config = match c.string("default-mode")?.as_deref() {
            None | Some("on") => voltage::MODE_ON,
            Some("off") => voltage::MODE_OFF,
            Some(other) => {
                return c.prop_err(
                    "default-mode",
                    format_args!("\"{other}\" is not \"on\" or \"off\""),
                );
            }
        };
        out.push(Voltage {
            name,
            levels,
            async_capable: c.flag("async")?,
            impl_modes,
            init: VoltageInit { level, config },
        });
    }
    Ok(out)
}
