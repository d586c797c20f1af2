//! The validated configuration a manifest describes. Owned values (core and
//! `alloc` only), so firmware that reads its manifest at boot can use the
//! same types; [`crate::codegen`] turns them into static tables and
//! [`crate::Manifest::into_server_parts`] leaks them into the server's.
//!
//! Plain-data types of the SCMI server (levels, intervals, ranges, waves,
//! reset defaults) are reused as they are.

use alloc::string::String;
use alloc::vec::Vec;

pub use platform_sim::clock::ClockInit;
pub use platform_sim::sensor::Wave;
pub use platform_sim::voltage::VoltageInit;
pub use scmi_server::protocols::perf::PerfLevel;
pub use scmi_server::protocols::sensor::{Interval, Range};
pub use scmi_server::protocols::system::SystemPower;

/// A whole platform manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The file it was read from (for messages).
    pub file: String,
    /// The FF-A partition properties at the root.
    pub partition: Partition,
    /// The virtio devices the image serves.
    pub virtio: Vec<VirtioDevice>,
    /// The SCMI server and its resources.
    pub scmi: Scmi,
}

/// The FF-A partition manifest properties (TF-A "FF-A manifest binding").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Binding version of `compatible = "arm,ffa-manifest-X.Y"`: (X, Y).
    pub binding: (u32, u32),
    /// `ffa-version`: major << 16 | minor.
    pub ffa_version: u32,
    /// Whether the UUIDs and messaging methods come from a `services` node
    /// (FF-A 1.1+ binding: one child per service, `uuid` as a canonical
    /// string) rather than the root's `uuid` and `messaging-method`.
    pub services: bool,
    /// `uuid`: protocol UUIDs, four cells each.
    pub uuids: Vec<[u32; 4]>,
    /// `messaging-method`: one value for all services, or one per UUID.
    pub messaging_method: Vec<u32>,
    /// `description`.
    pub description: Option<String>,
    /// `id`: pre-allocated partition id.
    pub id: Option<u32>,
    /// `execution-ctx-count`.
    pub execution_ctx_count: u32,
    /// `exception-level`: 0 EL1, 1 S-EL0, 2 S-EL1.
    pub exception_level: u32,
    /// `execution-state`: 0 AArch64, 1 AArch32.
    pub execution_state: u32,
    /// `load-address`.
    pub load_address: Option<u64>,
    /// `entrypoint-offset`.
    pub entrypoint_offset: Option<u64>,
    /// `xlat-granule`: 0 4K, 1 16K, 2 64K.
    pub xlat_granule: Option<u32>,
    /// `boot-order`.
    pub boot_order: Option<u32>,
    /// `ns-interrupts-action`: 0 queued, 1 managed exit, 2 signaled.
    pub ns_interrupts_action: Option<u32>,
    /// `gp-register-num`: register carrying the boot information blob.
    pub gp_register_num: Option<u32>,
    /// `notification-support` (flag).
    pub notification_support: bool,
    /// Boot information the partition asks for (`boot-info` node flags,
    /// e.g. `ffa_manifest`).
    pub boot_info: Vec<String>,
    /// `memory-regions` children.
    pub memory_regions: Vec<Region>,
    /// `device-regions` children.
    pub device_regions: Vec<Region>,
}

/// One memory or device region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Node name.
    pub node: String,
    /// `description`.
    pub description: Option<String>,
    /// `base-address` (required for device regions other than
    /// system-register ones, which have none).
    pub base_address: Option<u64>,
    /// `pages-count` (0 for a system-register device, which has none).
    pub pages_count: u32,
    /// `attributes`: 1 R, 2 W, 4 X, 8 NS.
    pub attributes: u32,
    /// `interrupts`: (id, attributes) pairs (device regions only).
    pub interrupts: Vec<(u32, u32)>,
    /// `system-registers` (flag, device regions only): the device is
    /// reached through system registers (the Arm generic timer, say), not
    /// at an address.
    pub system_registers: bool,
}

impl Region {
    /// Size in bytes: `pages-count` 4 KiB pages.
    pub fn size(&self) -> u64 {
        u64::from(self.pages_count) * 4096
    }

    /// `[base, end)` when the region has an address (`None` for regions
    /// without `base-address`).
    pub fn span(&self) -> Option<(u64, u64)> {
        let base = self.base_address?;
        Some((base, base.checked_add(self.size())?))
    }
}

/// How a virtio device reaches its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A vhost-user back-end process (memory arrives by SET_MEM_TABLE).
    VhostUser,
    /// Virtio-mmio registers emulated over a shared window.
    VirtioMmio,
    /// Virtio-msg messages on the shared-memory (AMP) bus.
    VirtioMsg,
    /// Virtio-msg messages on the FF-A bus (Arm DEN0153): the partition is
    /// an FF-A secure partition, driver memory arrives as FF-A shares.
    VirtioMsgFfa,
    /// Virtio-msg between two Xen DomUs: the shared-memory channel in a
    /// page the driver's domain grants, a static event channel each way,
    /// driver memory reached through its grants.
    VirtioMsgXen,
}

impl Transport {
    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::VhostUser => "vhost-user",
            Transport::VirtioMmio => "virtio-mmio",
            Transport::VirtioMsg => "virtio-msg",
            Transport::VirtioMsgFfa => "virtio-msg-ffa",
            Transport::VirtioMsgXen => "virtio-msg-xen",
        }
    }
}

/// One virtio device (`/virtio/device@N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtioDevice {
    /// `reg`: device index.
    pub index: u32,
    /// `device-id`: virtio device id (32 = SCMI).
    pub device_id: u32,
    /// `transport`.
    pub transport: Transport,
    /// `agent`: the SCMI agent this device's driver is.
    pub agent: u32,
    /// `queue-sizes`: most descriptors per queue (cmdq, eventq).
    pub queue_sizes: Vec<u32>,
    /// `p2a-channels` (flag): offer `VIRTIO_SCMI_F_P2A_CHANNELS`.
    pub p2a: bool,
    /// `shared-window`: (base, size) of the memory the driver shares.
    pub shared_window: Option<(u64, u64)>,
    /// `channel` (virtio-msg): (offset into the shared window, size) of the
    /// shared-memory message channel (the virtio-msg AMP `vmamp_shmem`
    /// layout).
    pub channel: Option<(u64, u64)>,
    /// `channel-geometry` (virtio-msg): (elements per direction, bytes per
    /// element) of the message channel's two queues.
    pub channel_geometry: Option<(u32, u32)>,
    /// `mmio-base`: address of the virtio-mmio register block.
    pub mmio_base: Option<u64>,
    /// `doorbell`: driver-to-device notification (interrupt or
    /// notification id, transport-defined).
    pub doorbell: Option<u32>,
    /// `interrupts`: device-to-driver (id, attributes) pairs.
    pub interrupts: Vec<(u32, u32)>,
    /// `socket`: vhost-user socket path.
    pub socket: Option<String>,
    /// `max-areas` (virtio-msg-ffa): most memory areas the driver may
    /// share at a time.
    pub max_areas: Option<u32>,
    /// The `xen,*` properties (virtio-msg-xen).
    pub xen: Option<XenBus>,
}

/// Where a virtio-msg-xen device finds its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XenBus {
    /// `xen,driver-domain`: the domain that grants its memory.
    pub driver_domain: u16,
    /// `xen,event-channel`: our end of the static event channel to it.
    pub event_channel: u32,
    /// `xen,channel-grant`: the grant of the page holding the channel.
    pub channel_grant: u32,
    /// `xen,grant-window`: (base, size) of the unpopulated guest-physical
    /// space where granted pages are mapped, one 4 KiB slot each.
    pub grant_window: (u64, u64),
}

/// The SCMI server (`/scmi`).
#[derive(Debug, Clone, PartialEq)]
pub struct Scmi {
    /// `vendor` (≤ 15 characters).
    pub vendor: String,
    /// `sub-vendor` (≤ 15 characters).
    pub sub_vendor: String,
    /// `implementation-version`.
    pub implementation_version: u32,
    /// `max-rx-timeout-ms`: the longest a response may take; the guest's
    /// `arm,max-rx-timeout-ms`.
    pub max_rx_timeout_ms: Option<u32>,
    /// Agents, ids 1..=N.
    pub agents: Vec<Agent>,
    /// Devices (resource groups), ids 0..N.
    pub devices: Vec<Device>,
    /// Power domains.
    pub power: Vec<PowerDomain>,
    /// System power (`None`: protocol absent).
    pub system: Option<SystemPower>,
    /// Performance domains.
    pub perf: Vec<PerfDomain>,
    /// Power unit of performance level costs (0 abstract, 1 mW, 2 µW).
    pub perf_power_unit: u32,
    /// Clocks.
    pub clocks: Vec<Clock>,
    /// Sensors.
    pub sensors: Vec<Sensor>,
    /// Asynchronous sensor reads the platform takes at once.
    pub sensor_max_async: u8,
    /// Reset domains.
    pub resets: Vec<Reset>,
    /// Voltage domains.
    pub voltages: Vec<Voltage>,
}

/// One agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Name (≤ 15 characters).
    pub name: String,
    /// May change permissions.
    pub trusted: bool,
    /// Protocol mask (bit `id - 0x10`).
    pub protocols: u32,
    /// Device mask (bit = device id).
    pub devices: u32,
}

/// One device: a named group of resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Name.
    pub name: String,
    /// `(protocol id, resource id)` pairs.
    pub resources: Vec<(u8, u32)>,
}

/// One power domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerDomain {
    /// Name.
    pub name: String,
    /// Synchronous STATE_SET.
    pub sync_set: bool,
    /// Asynchronous STATE_SET.
    pub async_set: bool,
    /// POWER_STATE_CHANGED notifications.
    pub notify_changed: bool,
    /// POWER_STATE_CHANGE_REQUESTED notifications.
    pub notify_requested: bool,
    /// On at boot.
    pub boot_on: bool,
}

/// One performance domain.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfDomain {
    /// Name.
    pub name: String,
    /// Levels, ascending.
    pub levels: Vec<PerfLevel>,
    /// Agents may set limits.
    pub set_limits: bool,
    /// The level may be set.
    pub set_level: bool,
    /// Limit notifications.
    pub notify_limits: bool,
    /// Level notifications.
    pub notify_level: bool,
    /// Level indexing mode.
    pub level_indexing: bool,
    /// Minimum µs between requests.
    pub rate_limit_us: u32,
    /// Sustained frequency, kHz.
    pub sustained_khz: u32,
    /// Level delivering it.
    pub sustained_level: u32,
    /// Level at boot.
    pub boot_level: u32,
}

/// Rates of a clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rates {
    /// Discrete rates, ascending.
    List(Vec<u64>),
    /// `min + k * step` up to `max`.
    Range {
        /// Lowest.
        min: u64,
        /// Highest.
        max: u64,
        /// Step (0: any).
        step: u64,
    },
}

/// One clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    /// Name.
    pub name: String,
    /// Rates.
    pub rates: Rates,
    /// Possible parents.
    pub parents: Vec<u32>,
    /// Enable latency, µs.
    pub enable_latency_us: u32,
    /// Rate notifications.
    pub rate_notify: bool,
    /// Extended configuration types.
    pub ext_config: Vec<u8>,
    /// CLOCK_GET_PERMISSIONS bits.
    pub permissions: u32,
    /// Reset defaults.
    pub init: ClockInit,
}

/// Update intervals of a sensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intervals {
    /// None.
    None,
    /// Discrete.
    List(Vec<Interval>),
    /// Segment.
    Segment {
        /// Shortest.
        low: Interval,
        /// Longest.
        high: Interval,
        /// Step.
        step: Interval,
    },
}

/// Extended attributes of a sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SensorExt {
    /// Power, µW.
    pub power_uw: u32,
    /// Resolution and range.
    pub range: Range,
}

/// One axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    /// Name.
    pub name: String,
    /// Type / unit code.
    pub class: u8,
    /// Power of ten.
    pub scale: i8,
    /// Resolution and range.
    pub ext: Option<Range>,
}

/// One sensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sensor {
    /// Name.
    pub name: String,
    /// Type / unit code.
    pub class: u8,
    /// Power of ten.
    pub scale: i8,
    /// Trip points.
    pub trip_points: u8,
    /// Asynchronous reads.
    pub async_read: bool,
    /// Continuous update notifications.
    pub update_notify: bool,
    /// Timestamp exponent.
    pub timestamp_exp: Option<i8>,
    /// Extended attributes.
    pub ext: Option<SensorExt>,
    /// Axes.
    pub axes: Vec<Axis>,
    /// Update intervals.
    pub intervals: Intervals,
    /// Simulated value per reading.
    pub waves: Vec<Wave>,
}

/// One reset domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    /// Name.
    pub name: String,
    /// Latency, µs (`u32::MAX`: unknown).
    pub latency_us: u32,
    /// Asynchronous resets.
    pub async_capable: bool,
    /// RESET_ISSUED notifications.
    pub notify: bool,
    /// Implementation-defined reset ids.
    pub impl_states: Vec<u32>,
}

/// Levels of a voltage domain, µV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Levels {
    /// Discrete, ascending.
    List(Vec<i32>),
    /// Segment.
    Range {
        /// Lowest.
        min: i32,
        /// Highest.
        max: i32,
        /// Step (> 0).
        step: i32,
    },
}

impl Levels {
    /// Whether `v` is a supported level.
    pub fn contains(&self, v: i32) -> bool {
        match self {
            Levels::List(l) => l.contains(&v),
            Levels::Range { min, max, step } => {
                *step > 0
                    && (*min..=*max).contains(&v)
                    && (i64::from(v) - i64::from(*min)) % i64::from(*step) == 0
            }
        }
    }

    /// Lowest and highest level.
    pub fn bounds(&self) -> Option<(i32, i32)> {
        match self {
            Levels::List(l) => Some((*l.first()?, *l.last()?)),
            Levels::Range { min, max, .. } => Some((*min, *max)),
        }
    }
}

/// One voltage domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voltage {
    /// Name.
    pub name: String,
    /// Levels.
    pub levels: Levels,
    /// Asynchronous level set.
    pub async_capable: bool,
    /// Implementation-defined modes, bit n = mode 0x8 + n.
    pub impl_modes: u8,
    /// Reset defaults.
    pub init: VoltageInit,
}

/// A UUID in the manifest's four-word form (each word the little-endian
/// reading of four of its bytes) written canonically, as `services` nodes
/// and TF-A's configuration spell it.
pub fn uuid_text(words: &[u32; 4]) -> String {
    let mut b = [0u8; 16];
    for (i, w) in words.iter().enumerate() {
        b[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    let hex = |r: core::ops::Range<usize>| {
        b[r].iter()
            .map(|x| alloc::format!("{x:02x}"))
            .collect::<String>()
    };
    alloc::format!(
        "{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

/// The four-word form of a canonical UUID string (8-4-4-4-12 hex digits).
pub fn uuid_words(text: &str) -> Option<[u32; 4]> {
    let groups: Vec<&str> = text.split('-').collect();
    if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
        return None;
    }
    let hex: String = groups.concat();
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let mut w = [0u32; 4];
    for (i, word) in w.iter_mut().enumerate() {
        *word = u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    }
    Some(w)
}
