//! The shipped host manifest: it loads, has the expected resources, equals
//! what the build-time generator made of it, serves requests, and survives a round trip
//! through the DTS writer.

use std::path::PathBuf;

use manifest::model::{Levels, Rates, Transport, Wave};
use platform_sim::SimPlatform;
use scmi_server::server::{Handled, Server};

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("host-vhost-user.dts")
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
    let m = manifest::load(shipped()).unwrap();
    let dir = std::env::temp_dir().join(format!("manifest-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rt.dts");
    std::fs::write(&path, manifest::dts::to_dts(&m)).unwrap();
    let mut again = manifest::load(&path).unwrap();
    again.file = m.file.clone();
    assert_eq!(again, m);
    std::fs::remove_dir_all(&dir).unwrap();
}
