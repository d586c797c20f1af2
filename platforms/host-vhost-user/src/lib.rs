//! The host (vhost-user) platform: the simulated SoC that the
//! `scmi-vhost-user` daemon serves by default and that the tests, the
//! benchmarks and the fuzz targets run against. Its SCMI configuration, its
//! resource tables and the platform's size are `static` data generated at
//! build time from `manifests/host-vhost-user.dts` by `manifest::codegen`
//! (see `build.rs`): the manifest is the only description of this SoC.
//! No heap, no file system, no parsing at run time.
//!
//! It knows nothing but what the manifest says: transports, the event loop
//! and the protocols live elsewhere.

#![no_std]
#![forbid(unsafe_code)]

/// The generated tables: `CONFIG`, `TABLES`, `Platform`, `PLATFORM`, `ids`,
/// `VIRTIO`, the partition properties.
pub mod generated {
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/manifest.rs"));
}

pub use generated::{CONFIG, PLATFORM, Platform, TABLES, VIRTIO, ids};

#[cfg(test)]
mod tests {
    use super::*;
    use scmi_server::protocols::clock::ClockPlatform;
    use scmi_server::protocols::sensor::SensorPlatform;

    #[test]
    fn the_platform_holds_exactly_the_manifest_resources() {
        let p = PLATFORM;
        assert_eq!(p.clocks().len(), 34);
        assert_eq!(p.sensors().len(), 20);
        assert_eq!(TABLES.counts(), [10, 8, 34, 20, 10, 10]);
        assert_eq!(CONFIG.agents.len(), 2);
        assert!(CONFIG.agents[0].trusted && !CONFIG.agents[1].trusted);
        // The ids are the tables' indexes, named after the labels.
        assert_eq!(
            TABLES.sensor.sensors[ids::sensor::SOC_POWER as usize].name,
            "soc_power"
        );
        assert_eq!(
            TABLES.clock.clocks[ids::clock::OSC_24M as usize].name,
            "osc_24m"
        );
        assert_eq!(
            TABLES.power.domains[ids::power::CPU_CLUSTER0 as usize].name,
            "cpu-cluster0"
        );
    }

    #[test]
    fn virtio_devices_are_described() {
        assert_eq!(VIRTIO.len(), 2);
        assert_eq!(VIRTIO[1].agent, 2);
        assert_eq!(VIRTIO[0].transport, "vhost-user");
        // QEMU 10's vhost-user-scmi sets up 1024-entry rings; the daemon
        // offers what the manifest says.
        assert!(VIRTIO.iter().all(|d| d.queue_sizes == [1024, 1024]));
        assert!(VIRTIO.iter().all(|d| d.p2a));
        assert_eq!(generated::EXCEPTION_LEVEL, 2);
    }
}
