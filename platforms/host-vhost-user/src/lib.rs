//! The host (vhost-user) platform as firmware would see it: its SCMI
//! configuration and resource tables are `static` data generated at build
//! time from `manifests/host-vhost-user.dts` by `manifest::codegen`
//! (see `build.rs`). No heap, no file system, no parsing at run time.
//!
//! It knows nothing but what the manifest says: transports, the event loop
//! and the protocols live elsewhere.

#![no_std]
#![forbid(unsafe_code)]

/// The generated tables: `CONFIG`, `TABLES`, `VIRTIO`, the partition
/// properties.
pub mod generated {
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/manifest.rs"));
}

pub use generated::{CONFIG, TABLES, VIRTIO};

use platform_sim::{SimPlatform, TableError};

/// The simulated platform serving the manifest's resources.
pub fn platform() -> Result<SimPlatform, TableError> {
    SimPlatform::new(&TABLES)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;

    use platform_sim::DEFAULT_CONFIG;
    use platform_sim::Tables;

    use super::*;

    /// The generated tables are the built-in ones the manifest mirrors.
    #[test]
    fn generated_tables_equal_the_builtin_soc() {
        assert_eq!(format!("{CONFIG:?}"), format!("{DEFAULT_CONFIG:?}"));
        let d = Tables::DEFAULT;
        assert_eq!(format!("{:?}", TABLES.power), format!("{:?}", d.power));
        assert_eq!(format!("{:?}", TABLES.system), format!("{:?}", d.system));
        assert_eq!(format!("{:?}", TABLES.perf), format!("{:?}", d.perf));
        assert_eq!(format!("{:?}", TABLES.clock), format!("{:?}", d.clock));
        assert_eq!(format!("{:?}", TABLES.sensor), format!("{:?}", d.sensor));
        assert_eq!(format!("{:?}", TABLES.reset), format!("{:?}", d.reset));
        assert_eq!(format!("{:?}", TABLES.voltage), format!("{:?}", d.voltage));
    }

    #[test]
    fn generated_platform_builds_and_virtio_devices_are_described() {
        let p = platform().unwrap();
        assert_eq!(p.clock.descs().len(), 34);
        assert_eq!(VIRTIO.len(), 2);
        assert_eq!(VIRTIO[1].agent, 2);
        assert_eq!(VIRTIO[0].transport, "vhost-user");
        assert_eq!(VIRTIO[0].queue_sizes, &[128, 128]);
        assert_eq!(generated::EXCEPTION_LEVEL, 2);
    }
}
