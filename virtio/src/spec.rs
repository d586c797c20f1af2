//! Constants from the virtio specification, taken from the `virtio-spec`
//! crate and narrowed to the plain integers the device core works with.

use virtio_spec as vs;

const fn feature(f: vs::F) -> u64 {
    f.bits().to_ne() as u64
}

/// Transport feature bits (virtio v1.2 §6).
pub mod features {
    use super::{feature, vs};

    /// Indirect descriptors (§2.7.5.3, §2.8.7).
    pub const INDIRECT_DESC: u64 = feature(vs::F::INDIRECT_DESC);
    /// `used_event`/`avail_event` notification suppression (§2.7.7, §2.7.10).
    pub const EVENT_IDX: u64 = feature(vs::F::EVENT_IDX);
    /// Non-legacy device (§6.1).
    pub const VERSION_1: u64 = feature(vs::F::VERSION_1);
    /// Device needs a platform-specific translation of driver addresses.
    pub const ACCESS_PLATFORM: u64 = feature(vs::F::ACCESS_PLATFORM);
    /// Packed virtqueue layout (§2.8).
    pub const RING_PACKED: u64 = feature(vs::F::RING_PACKED);
    /// Per-queue reset (§2.6.1).
    pub const RING_RESET: u64 = feature(vs::F::RING_RESET);

    /// Transport features this crate implements. A device may offer any
    /// subset of them in addition to its own device-specific bits.
    pub const SUPPORTED: u64 =
        INDIRECT_DESC | EVENT_IDX | VERSION_1 | ACCESS_PLATFORM | RING_PACKED | RING_RESET;
}

/// Device status bits (virtio v1.2 §2.1).
pub mod status {
    use super::vs::DeviceStatus as S;

    /// The driver found the device.
    pub const ACKNOWLEDGE: u8 = S::ACKNOWLEDGE.bits();
    /// The driver knows how to drive the device.
    pub const DRIVER: u8 = S::DRIVER.bits();
    /// The driver is set up and ready to drive the device.
    pub const DRIVER_OK: u8 = S::DRIVER_OK.bits();
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u8 = S::FEATURES_OK.bits();
    /// The device hit an error it cannot recover from without a reset.
    pub const NEEDS_RESET: u8 = S::DEVICE_NEEDS_RESET.bits();
    /// The driver gave up on the device.
    pub const FAILED: u8 = S::FAILED.bits();
}

/// Descriptor flags (virtio v1.2 §2.7.5 and §2.8.13).
pub mod desc {
    use super::vs::virtq::DescF;

    /// The chain continues with another descriptor.
    pub const NEXT: u16 = DescF::NEXT.bits().to_ne();
    /// The buffer is device-writable.
    pub const WRITE: u16 = DescF::WRITE.bits().to_ne();
    /// The buffer holds a table of descriptors.
    pub const INDIRECT: u16 = DescF::INDIRECT.bits().to_ne();
    /// Packed ring: available flag.
    pub const AVAIL: u16 = DescF::AVAIL.bits().to_ne();
    /// Packed ring: used flag.
    pub const USED: u16 = DescF::USED.bits().to_ne();
}

/// Split ring flag words (virtio v1.2 §2.7.6, §2.7.8).
pub mod ring {
    use super::vs::virtq::{AvailF, UsedF};

    /// `avail.flags`: the driver asks for no used-buffer notifications.
    pub const AVAIL_F_NO_INTERRUPT: u16 = AvailF::NO_INTERRUPT.bits().to_ne();
    /// `used.flags`: the device asks for no available-buffer notifications.
    pub const USED_F_NO_NOTIFY: u16 = UsedF::NO_NOTIFY.bits().to_ne();

    /// Packed event suppression: notifications enabled (§2.8.10).
    pub const EVENT_FLAGS_ENABLE: u16 = 0;
    /// Packed event suppression: notifications disabled.
    pub const EVENT_FLAGS_DISABLE: u16 = 1;
    /// Packed event suppression: notify at a given descriptor (needs
    /// `VIRTIO_F_EVENT_IDX`).
    pub const EVENT_FLAGS_DESC: u16 = 2;
}
