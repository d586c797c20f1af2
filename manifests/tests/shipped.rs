//! The shipped manifests: the host one loads, has the expected resources,
//! equals what the build-time generator made of it, serves requests, and
//! survives a round trip through the DTS writer; the firmware ones (QEMU
//! virt, MPS3 AN536) load with the placement, window, channel and
//! interrupts their images are built from, and round-trip too.

use std::path::PathBuf;

use manifest::model::{Levels, Manifest, Rates, Region, Transport, Wave};
use platform_sim::SimPlatform;
use scmi_server::server::{Handled, Server};

fn shipped() -> PathBuf {
    shipped_file("host-vhost-user.dts")
}

fn shipped_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}

#[test]
fn shipped_manifest_loads_with_expected_counts_and_values() {
    let m = manifest::load(shipped()).unwrap();
    let s = &m.scmi;
    assert_eq!(m.partition.binding, (1, 0));
    assert_eq!(m.partition.exception_level, 2);
    assert_eq!(m.virtio.len(), 2);
    assert!(
        m.virtio
            .iter()
            .all(|d| d.transport == Transport::VhostUser && d.p2a)
    );
    assert_eq!(
        (s.vendor.as_str(), s.sub_vendor.as_str()),
        ("rust-scmi", "host")
    );
    assert_eq!(s.agents.len(), 2);
    assert!(s.agents[0].trusted && !s.agents[1].trusted);
    assert_eq!(
        (s.clocks.len(), s.sensors.len(), s.power.len()),
        (34, 20, 10)
    );
    assert_eq!(
        (s.perf.len(), s.resets.len(), s.voltages.len()),
        (8, 10, 10)
    );
    // Names longer than the 16-byte fields exist in every kind.
    assert!(s.clocks.iter().any(|c| c.name.len() >= 16));
    assert!(s.sensors.iter().any(|c| c.name.len() >= 16));
    assert!(s.power.iter().any(|c| c.name.len() >= 16));
    assert!(s.perf.iter().any(|c| c.name.len() >= 16));
    assert!(s.resets.iter().any(|c| c.name.len() >= 16));
    assert!(s.voltages.iter().any(|c| c.name.len() >= 16));
    // A few values that exercise the encodings: a rate above 4 GHz, a
    // negative wave, negative voltage levels, 32 perf levels, 7 axes.
    let ddr = &s.clocks[6];
    assert_eq!(ddr.name, "pll_ddr_vco");
    assert_eq!(
        ddr.rates,
        Rates::Range {
            min: 2_000_000_000,
            max: 6_400_000_000,
            step: 100_000_000
        }
    );
    assert_eq!(ddr.init.rate, 4_800_000_000);
    assert_eq!(
        s.sensors[4].waves,
        vec![Wave::Tri {
            base: -20_000,
            amp: 60_000,
            period: 30_000,
            phase: 0
        }]
    );
    assert_eq!(s.sensors[4].scale, -3);
    assert_eq!(s.sensors[17].axes.len(), 7);
    assert_eq!(s.perf[1].levels.len(), 32);
    assert_eq!(
        s.voltages[8].levels.bounds(),
        Some((-400_000, 0)),
        "{:?}",
        s.voltages[8].levels
    );
    assert!(matches!(
        s.voltages[9].levels,
        Levels::Range { min: -300_000, .. }
    ));
}

/// What the run-time loader builds from the shipped manifest equals what
/// the build-time generator compiled into the host platform crate from the
/// same file: the daemon with `--manifest` and without it serve the same SoC.
#[test]
fn loaded_tables_equal_the_generated_ones() {
    let m = manifest::load(shipped()).unwrap();
    let (config, tables) = m.leak_tables();
    let g = &platform_host_vhost_user::TABLES;
    assert_eq!(
        format!("{config:?}"),
        format!("{:?}", platform_host_vhost_user::CONFIG)
    );
    assert_eq!(format!("{:?}", tables.power), format!("{:?}", g.power));
    assert_eq!(format!("{:?}", tables.system), format!("{:?}", g.system));
    assert_eq!(format!("{:?}", tables.perf), format!("{:?}", g.perf));
    assert_eq!(format!("{:?}", tables.clock), format!("{:?}", g.clock));
    assert_eq!(format!("{:?}", tables.sensor), format!("{:?}", g.sensor));
    assert_eq!(format!("{:?}", tables.reset), format!("{:?}", g.reset));
    assert_eq!(format!("{:?}", tables.voltage), format!("{:?}", g.voltage));
}

/// PROTOCOL_ATTRIBUTES of `protocol` as agent 1 sees it.
fn attributes(server: &mut Server<SimPlatform>, protocol: u8) -> u32 {
    let header = (u32::from(protocol) << 10) | 0x1;
    let mut resp = [0u8; 136];
    let Handled::Response(n) = server.handle(1, &header.to_le_bytes(), &mut resp) else {
        panic!("malformed");
    };
    assert!(n >= 12);
    assert_eq!(&resp[4..8], &[0; 4], "status");
    u32::from_le_bytes([resp[8], resp[9], resp[10], resp[11]])
}

#[test]
fn server_parts_serve_the_manifest_resources() {
    let m = manifest::load(shipped()).unwrap();
    let (config, platform) = m.into_server_parts().unwrap();
    let mut server: Server<SimPlatform> = Server::new(config, platform);
    assert_eq!(server.agent_count(), 2);
    assert_eq!(attributes(&mut server, 0x14) & 0xffff, 34, "clocks");
    assert_eq!(attributes(&mut server, 0x15) & 0xffff, 20, "sensors");
    assert_eq!(attributes(&mut server, 0x11) & 0xffff, 10, "power domains");
    assert_eq!(attributes(&mut server, 0x13) & 0xffff, 8, "perf domains");
    assert_eq!(attributes(&mut server, 0x16) & 0xffff, 10, "reset domains");
    assert_eq!(
        attributes(&mut server, 0x17) & 0xffff,
        10,
        "voltage domains"
    );
    assert_eq!(server.platform.clock.rate(6), Some(4_800_000_000));
}

#[test]
fn a_smaller_manifest_drives_a_smaller_platform() {
    let dir = std::env::temp_dir().join(format!("manifest-small-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("small.dts");
    std::fs::write(&path, include_str!("minimal.dts")).unwrap();
    let m = manifest::load(&path).unwrap();
    let (config, platform) = m.into_server_parts().unwrap();
    let mut server: Server<SimPlatform> = Server::new(config, platform);
    assert_eq!(attributes(&mut server, 0x14) & 0xffff, 2, "clocks");
    assert_eq!(attributes(&mut server, 0x15) & 0xffff, 1, "sensors");
    assert_eq!(server.platform.clock.rate(1), Some(100_000_000));
    assert_eq!(server.platform.clock.rate(2), None);
    assert_eq!(server.platform.voltage.level(0), Some(900_000));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_dts_writer_round_trips() {
    for (i, name) in [
        "host-vhost-user.dts",
        "qemu-virt-aarch64.dts",
        "mps3-an536.dts",
        "qemu-virt-sp.dts",
        "xen-domu.dts",
    ]
    .into_iter()
    .enumerate()
    {
        let m = manifest::load(shipped_file(name)).unwrap();
        let dir = std::env::temp_dir().join(format!("manifest-rt-{}-{i}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rt.dts");
        std::fs::write(&path, manifest::dts::to_dts(&m)).unwrap();
        let mut again = manifest::load(&path).unwrap();
        again.file = m.file.clone();
        assert_eq!(again, m, "{name}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The region called `node` in `list`.
fn region<'a>(list: &'a [Region], node: &str) -> &'a Region {
    list.iter()
        .find(|r| r.node == node)
        .unwrap_or_else(|| panic!("no region {node}"))
}

/// (base, bytes, attributes, interrupts) of a region.
fn shape(r: &Region) -> (Option<u64>, u64, u32, &[(u32, u32)]) {
    (r.base_address, r.size(), r.attributes, &r.interrupts)
}

/// What both firmware manifests share: one virtio-msg SCMI device for
/// agent 1 with an eventq, a 256 KiB window whose first 4 KiB hold a
/// channel of 16 × 64-byte elements a direction, SGI 1 in and SGI 2 out;
/// a generic timer on its PPIs; at least one resource of every protocol.
fn firmware_common(m: &Manifest, window: u64) {
    assert_eq!(m.virtio.len(), 1);
    let d = &m.virtio[0];
    assert_eq!(
        (d.device_id, d.transport, d.agent, d.p2a),
        (32, Transport::VirtioMsg, 1, true)
    );
    assert_eq!(d.queue_sizes, [16, 16]);
    assert_eq!(d.shared_window, Some((window, 0x40000)));
    assert_eq!(d.channel, Some((0, 0x1000)));
    assert_eq!(d.channel_geometry, Some((16, 64)));
    assert_eq!(
        (d.doorbell, d.interrupts.as_slice()),
        (Some(1), &[(2, 0)][..])
    );
    let p = &m.partition;
    assert_eq!(shape(region(&p.memory_regions, "shared")).0, Some(window));
    let timer = region(&p.device_regions, "timer");
    assert!(timer.system_registers);
    assert_eq!(shape(timer), (None, 0, 0x3, &[(27, 0), (30, 0)][..]));
    assert_eq!(
        (p.load_address.is_some(), p.entrypoint_offset),
        (true, Some(0))
    );
    let s = &m.scmi;
    assert_eq!(s.agents.len(), 1);
    assert!(s.system.is_some());
    assert!(
        [s.power.len(), s.perf.len(), s.clocks.len(), s.sensors.len()]
            .iter()
            .chain([s.resets.len(), s.voltages.len()].iter())
            .all(|n| *n >= 1)
    );
    assert!(s.clocks.iter().any(|c| matches!(c.rates, Rates::List(_))));
    assert!(
        s.clocks
            .iter()
            .any(|c| matches!(c.rates, Rates::Range { .. }))
    );
    assert!(s.clocks.iter().any(|c| c.rate_notify));
    assert!(s.sensors.iter().any(|c| c.update_notify));
    assert!(s.sensors.iter().any(|c| c.async_read));
    // The generated firmware items.
    let rust = manifest::codegen::to_rust(m);
    for item in [
        "pub const VIRTIO: &[VirtioDevice] = ",
        "channel: Some((0x0, 0x1000)), channel_geometry: Some((16, 64)), doorbell: Some(1), interrupts: &[(2, 0x0)]",
        "pub const ENTRYPOINT_OFFSET: Option<u64> = Some(0x0);",
        "pub const TIMER: super::Region = super::Region { base: None, size: 0x0, attributes: 0x3, interrupts: &[(27, 0x0), (30, 0x0)] };",
    ] {
        assert!(rust.contains(item), "{item}\n{rust}");
    }
}

#[test]
fn qemu_virt_manifest_describes_the_aarch64_image() {
    let m = manifest::load(shipped_file("qemu-virt-aarch64.dts")).unwrap();
    firmware_common(&m, 0x4400_0000);
    let p = &m.partition;
    assert_eq!((p.exception_level, p.execution_state), (0, 0));
    assert_eq!(p.load_address, Some(0x4008_0000));
    let mem = &p.memory_regions;
    assert_eq!(mem.len(), 2);
    assert_eq!(
        shape(region(mem, "ram")),
        (Some(0x4008_0000), 0x80_0000, 0x7, &[][..])
    );
    assert_eq!(
        shape(region(mem, "shared")),
        (Some(0x4400_0000), 0x4_0000, 0xb, &[][..])
    );
    let dev = &p.device_regions;
    assert_eq!(dev.len(), 4);
    assert_eq!(
        shape(region(dev, "uart")),
        (Some(0x0900_0000), 0x1000, 0x3, &[(33, 0)][..])
    );
    assert_eq!(shape(region(dev, "gicd")).0, Some(0x0800_0000));
    assert_eq!(shape(region(dev, "gicd")).1, 0x1_0000);
    assert_eq!(shape(region(dev, "gicr")).0, Some(0x080a_0000));
    assert_eq!(shape(region(dev, "gicr")).1, 2 * 0x2_0000);
    let rust = manifest::codegen::to_rust(&m);
    for item in [
        "pub const LOAD_ADDRESS: Option<u64> = Some(0x40080000);",
        "pub const UART: super::Region = super::Region { base: Some(0x9000000), size: 0x1000, attributes: 0x3, interrupts: &[(33, 0x0)] };",
    ] {
        assert!(rust.contains(item), "{item}\n{rust}");
    }
}

#[test]
fn mps3_an536_manifest_describes_the_cortex_r52_image() {
    let m = manifest::load(shipped_file("mps3-an536.dts")).unwrap();
    firmware_common(&m, 0x2000_0000);
    let p = &m.partition;
    assert_eq!((p.exception_level, p.execution_state), (0, 1));
    // QEMU hw/arm/mps3r.c: QSPI 8 MiB at 0x0800_0000 (read-only), BRAM
    // 512 KiB at 0x1000_0000, DDR from 0x2000_0000.
    assert_eq!(p.load_address, Some(0x0800_0000));
    let mem = &p.memory_regions;
    assert_eq!(mem.len(), 3);
    assert_eq!(
        shape(region(mem, "code")),
        (Some(0x0800_0000), 0x80_0000, 0x5, &[][..])
    );
    assert_eq!(
        shape(region(mem, "ram")),
        (Some(0x1000_0000), 0x8_0000, 0x3, &[][..])
    );
    assert_eq!(
        shape(region(mem, "shared")),
        (Some(0x2000_0000), 0x4_0000, 0x3, &[][..])
    );
    let dev = &p.device_regions;
    assert_eq!(dev.len(), 4);
    assert_eq!(
        shape(region(dev, "uart")),
        (Some(0xe7c0_0000), 0x1000, 0x3, &[(18, 0)][..])
    );
    assert_eq!(shape(region(dev, "gicd")).0, Some(0xf000_0000));
    assert_eq!(shape(region(dev, "gicr")).0, Some(0xf010_0000));
    assert_eq!(shape(region(dev, "gicr")).1, 2 * 0x2_0000);
}

/// Firmware wires its shared-memory device from plain generated constants.
#[test]
fn virtio_msg_devices_are_generated_as_constants() {
    let m = manifest::load(shipped_file("qemu-virt-aarch64.dts")).unwrap();
    let rust = manifest::codegen::to_rust(&m);
    for line in [
        "pub mod shmem_device0 {",
        "pub const WINDOW: (u64, u64) = (0x44000000, 0x40000);",
        "pub const CHANNEL: (u64, u64) = (0x0, 0x1000);",
        "pub const ELEMENTS: u16 = 16;",
        "pub const DOORBELL_IN: u32 = 1;",
        "pub const DOORBELL_OUT: u32 = 2;",
        "pub const EVENTQ_SIZE: u16 = 16;",
    ] {
        assert!(rust.contains(line), "{line:?} missing");
    }
    // The host manifest has no virtio-msg device: nothing of the kind.
    let host = manifest::load(shipped_file("host-vhost-user.dts")).unwrap();
    assert!(!manifest::codegen::to_rust(&host).contains("shmem_device"));
}

#[test]
fn qemu_virt_sp_manifest_describes_the_secure_partition() {
    let m = manifest::load(shipped_file("qemu-virt-sp.dts")).unwrap();
    let p = &m.partition;
    // FF-A manifest binding: S-EL1, AArch64, one context, the package at
    // 0x0e300000 with the image where `manifest-tool spkg` puts it.
    assert_eq!(
        (p.exception_level, p.execution_state, p.execution_ctx_count),
        (2, 0, 1)
    );
    assert_eq!(p.load_address, Some(0x0e30_0000));
    assert_eq!(
        p.entrypoint_offset,
        Some(u64::from(manifest::spkg::IMG_OFFSET))
    );
    assert_eq!(p.ffa_version, 0x1_0002);
    // The virtio-msg FF-A device UUID, DIRECT_REQ2 receipt and indirect
    // messages; notifications; the boot information in x0.
    assert_eq!(p.uuids, [manifest::VIRTIO_MSG_FFA_UUID]);
    assert_eq!(p.messaging_method, [0x204]);
    assert!(p.notification_support);
    assert_eq!(p.gp_register_num, Some(0));
    assert_eq!(p.boot_info, ["ffa_manifest"]);
    // No regions: the SPMC maps the package, the SP what it retrieves.
    assert!(p.memory_regions.is_empty() && p.device_regions.is_empty());
    let d = &m.virtio[0];
    assert_eq!(
        (d.transport, d.agent, d.p2a, d.max_areas),
        (Transport::VirtioMsgFfa, 1, true, Some(4))
    );
    assert_eq!(d.queue_sizes, [16, 16]);
    assert_eq!((d.shared_window, d.doorbell), (None, None));
    // The SCMI resources are the virt firmware's (one included file).
    let fw = manifest::load(shipped_file("qemu-virt-aarch64.dts")).unwrap();
    assert_eq!(m.scmi, fw.scmi);
}

#[test]
fn xen_domu_manifest_describes_the_back_end_domu() {
    let m = manifest::load(shipped_file("xen-domu.dts")).unwrap();
    let p = &m.partition;
    // EL1, AArch64, one vCPU, linked after the Image header page at the
    // guest's RAM base.
    assert_eq!(
        (p.exception_level, p.execution_state, p.execution_ctx_count),
        (0, 0, 1)
    );
    assert_eq!(p.load_address, Some(0x4000_1000));
    let d = &m.virtio[0];
    assert_eq!(
        (d.transport, d.agent, d.p2a),
        (Transport::VirtioMsgXen, 1, true)
    );
    assert_eq!(d.channel_geometry, Some((16, 64)));
    assert_eq!((d.shared_window, d.channel, d.doorbell), (None, None, None));
    let x = d.xen.expect("the Xen bus");
    assert_eq!(
        (x.driver_domain, x.event_channel, x.channel_grant),
        (1, 11, 8)
    );
    assert_eq!(x.grant_window, (0x3910_0000, 0x1_0000));
    // Generated for the image: the bus, wired.
    let rust = manifest::codegen::to_rust(&m);
    for line in [
        "pub mod xen_device0 {",
        "pub const DRIVER_DOMAIN: u16 = 1;",
        "pub const EVENT_CHANNEL: u32 = 11;",
        "pub const CHANNEL_GRANT: u32 = 8;",
        "pub const GRANT_WINDOW: (u64, u64) = (0x39100000, 0x10000);",
        "pub const SLOTS: usize = 16;",
        "pub const ELEMENTS: u16 = 16;",
    ] {
        assert!(rust.contains(line), "{line} in\n{rust}");
    }
    // The SCMI resources are the virt firmware's (one included file).
    let fw = manifest::load(shipped_file("qemu-virt-aarch64.dts")).unwrap();
    assert_eq!(m.scmi, fw.scmi);
}
