//! The device state machine: status, features, configuration space and
//! per-queue setup (virtio v1.2 §2.1–§2.6, §3.1).
//!
//! Its operations are the virtio-msg transport messages (GET_DEVICE_INFO,
//! GET_DEVICE_FEATURES, SET_DRIVER_FEATURES, GET/SET_CONFIG,
//! GET/SET_DEVICE_STATUS, GET/SET/RESET_VQUEUE, EVENT_AVAIL); the
//! [`msg`](crate::msg) codec and the [`mmio`](crate::mmio) register file are
//! thin adapters onto it.

use crate::device::{Interrupts, VirtioDevice};
use crate::memory::GuestMemory;
use crate::queue::{DEFAULT_HELD, Queue, QueueConfigError};
use crate::spec::features;
use crate::spec::status::{ACKNOWLEDGE, DRIVER, DRIVER_OK, FAILED, FEATURES_OK, NEEDS_RESET};

/// Number of 32-bit feature blocks the core reports (bits 0–63).
pub const FEATURE_BLOCKS: u32 = 2;

/// Why a control-plane request was refused. State is unchanged unless the
/// variant says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlError {
    /// No queue with that index.
    NoSuchQueue,
    /// The request is not allowed in the current device status (virtio
    /// v1.2 §3.1.1 fixes the order of initialization).
    WrongState,
    /// The driver tried to clear a status bit without resetting (virtio
    /// v1.2 §2.1.1).
    StatusBitCleared,
    /// A status bit was set before the bits that must precede it, or the
    /// driver set a bit it may not set (virtio v1.2 §3.1.1).
    StatusOrder,
    /// `FEATURES_OK` was refused: the driver accepted features the device
    /// did not offer, did not accept `VIRTIO_F_VERSION_1`, or the device
    /// refused the combination (virtio v1.2 §2.2.2). The other status bits
    /// written were applied; `FEATURES_OK` reads back clear.
    FeaturesRefused,
    /// The queue configuration is invalid; the queue stays disabled.
    Queue(QueueConfigError),
    /// Queue reset needs `VIRTIO_F_RING_RESET` (virtio v1.2 §2.6.1).
    RingResetNotNegotiated,
    /// Configuration access outside the configuration space.
    ConfigRange,
    /// The device refused a configuration write.
    ConfigReadOnly,
    /// A configuration write based on a generation that is not the current
    /// one (virtio-msg RFC3 SET_CONFIG; virtio v1.2 §2.5).
    StaleGeneration,
}

impl core::fmt::Display for ControlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ControlError::NoSuchQueue => f.write_str("no such queue"),
            ControlError::WrongState => f.write_str("not allowed in the current device status"),
            ControlError::StatusBitCleared => {
                f.write_str("a status bit was cleared without a reset")
            }
            ControlError::StatusOrder => f.write_str("status bits set out of order"),
            ControlError::FeaturesRefused => f.write_str("FEATURES_OK refused"),
            ControlError::Queue(e) => write!(f, "queue configuration refused: {e}"),
            ControlError::RingResetNotNegotiated => {
                f.write_str("queue reset without VIRTIO_F_RING_RESET")
            }
            ControlError::ConfigRange => f.write_str("outside the configuration space"),
            ControlError::ConfigReadOnly => f.write_str("configuration write refused"),
            ControlError::StaleGeneration => {
                f.write_str("configuration write based on an old generation")
            }
        }
    }
}

/// Device identity and geometry (virtio-msg GET_DEVICE_INFO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Virtio device id.
    pub device_id: u32,
    /// Vendor id.
    pub vendor_id: u32,
    /// Number of 32-bit feature blocks.
    pub num_feature_blocks: u32,
    /// Configuration space size in bytes.
    pub config_size: u32,
    /// Number of virtqueues.
    pub max_virtqueues: u32,
}

/// State of one queue (virtio-msg GET_VQUEUE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueInfo {
    /// Device maximum; 0 if the queue does not exist.
    pub max_size: u16,
    /// Configured size (0 while the queue is not enabled).
    pub size: u16,
    /// Whether the queue is enabled.
    pub enabled: bool,
    /// Descriptor area address (0 while not enabled).
    pub desc: u64,
    /// Driver area address (0 while not enabled).
    pub driver: u64,
    /// Device area address (0 while not enabled).
    pub device: u64,
}

/// What a v2 SET_VQUEUE asks for ([`DeviceCore::update_vqueue`]): the
/// fields to change (`None`: keep) and what to do with the queue's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VqueueUpdate {
    /// New size.
    pub size: Option<u16>,
    /// New descriptor area address.
    pub desc: Option<u64>,
    /// New driver area address.
    pub driver: Option<u64>,
    /// New device area address.
    pub device: Option<u64>,
    /// The state operation.
    pub state: VqueueState,
}

/// The state operation of a v2 SET_VQUEUE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VqueueState {
    /// Keep the queue disabled (only for a disabled queue).
    KeepDisabled,
    /// Enable the queue once the fields are applied.
    Enable,
    /// Keep the state as it is.
    Keep,
}

/// A virtio device with its control plane and `NQ` queues.
///
/// `H` is each queue's store of held packed lists, in descriptors
/// ([`Queue`]). A device that offers `VIRTIO_F_RING_PACKED` needs it as
/// large as its largest queue; with `H = 0` the queues carry no store and
/// the core never offers `VIRTIO_F_RING_PACKED`, whatever the device type
/// says (a packed list longer than [`CAPTURED`](crate::CAPTURED)
/// descriptors could not be served).
#[derive(Debug)]
pub struct DeviceCore<D, const NQ: usize, const H: usize = DEFAULT_HELD> {
    device: D,
    status: u8,
    driver_features: u64,
    config_generation: u32,
    queues: [Queue<H>; NQ],
}

impl<D, const NQ: usize, const H: usize> DeviceCore<D, NQ, H> {
    const QUEUES_FIT: () = assert!(NQ <= 64, "Interrupts has 64 queue bits");

    /// Wraps `device` with `queues` in reset state, queue `n` at index
    /// `n`; their maximum sizes must be the device's
    /// ([`VirtioDevice::max_queue_size`]). `const`, so that a whole device
    /// can be built into a `static` at compile time (device types offer a
    /// constructor that gets the sizes right, e.g. `VirtioScmi::into_core`).
    pub const fn with_queues(device: D, queues: [Queue<H>; NQ]) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::QUEUES_FIT;
        DeviceCore {
            device,
            status: 0,
            driver_features: 0,
            config_generation: 0,
            queues,
        }
    }
}

impl<D: VirtioDevice, const NQ: usize, const H: usize> DeviceCore<D, NQ, H> {
    /// Wraps `device`; queue `n` gets the device's maximum size for `n`.
    pub fn new(device: D) -> Self {
        let queues = core::array::from_fn(|i| Queue::with_store(device.max_queue_size(i as u16)));
        Self::with_queues(device, queues)
    }

    /// The device type.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device type, mutably (for device-side events such as a config
    /// change; follow with [`DeviceCore::config_changed`]).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The queues.
    pub fn queues(&self) -> &[Queue<H>; NQ] {
        &self.queues
    }

    /// The queues and the device, for transports that drive processing
    /// themselves (vhost-user).
    pub fn parts_mut(&mut self) -> (&mut D, &mut [Queue<H>; NQ]) {
        (&mut self.device, &mut self.queues)
    }

    /// GET_DEVICE_INFO.
    pub fn info(&self) -> DeviceInfo {
        DeviceInfo {
            device_id: self.device.device_id(),
            vendor_id: self.device.vendor_id(),
            num_feature_blocks: FEATURE_BLOCKS,
            config_size: self.device.config_size(),
            max_virtqueues: NQ as u32,
        }
    }

    /// Features the device offers: the device type's, without
    /// `VIRTIO_F_RING_PACKED` when the queues hold no store (`H = 0`).
    pub fn device_features(&self) -> u64 {
        let no_store = if H == 0 { features::RING_PACKED } else { 0 };
        self.device.device_features() & !no_store
    }

    /// GET_DEVICE_FEATURES for one 32-bit block (0 beyond bit 63).
    pub fn device_feature_block(&self, block: u32) -> u32 {
        match block {
            0 => self.device_features() as u32,
            1 => (self.device_features() >> 32) as u32,
            _ => 0,
        }
    }

    /// Features the driver wrote (negotiated once `FEATURES_OK` is set).
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// SET_DRIVER_FEATURES for one block. Allowed after `DRIVER` and before
    /// `FEATURES_OK` (virtio v1.2 §3.1.1 step 4). Bits beyond 63 must be 0.
    pub fn set_driver_feature_block(&mut self, block: u32, bits: u32) -> Result<(), ControlError> {
        if self.status & DRIVER == 0 || self.status & FEATURES_OK != 0 {
            return Err(ControlError::WrongState);
        }
        match block {
            0 => self.driver_features = (self.driver_features & !0xffff_ffff) | u64::from(bits),
            1 => {
                self.driver_features =
                    (self.driver_features & 0xffff_ffff) | (u64::from(bits) << 32)
            }
            // Unknown blocks: any bit set there is a feature we never
            // offered; remember that so FEATURES_OK fails.
            _ if bits != 0 => self.driver_features |= UNKNOWN_FEATURE,
            _ => {}
        }
        Ok(())
    }

    /// GET_DEVICE_STATUS.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// Whether the device has set `DEVICE_NEEDS_RESET`.
    pub fn needs_reset(&self) -> bool {
        self.status & NEEDS_RESET != 0
    }

    /// SET_DEVICE_STATUS. Writing 0 resets the device (virtio v1.2 §2.4).
    pub fn set_status(&mut self, value: u8) -> Result<(), ControlError> {
        if value == 0 {
            self.reset();
            return Ok(());
        }
        // DEVICE_NEEDS_RESET belongs to the device; the driver echoing it
        // back is harmless.
        let old = self.status & !NEEDS_RESET;
        let new = value & !NEEDS_RESET;
        if old & !new != 0 {
            return Err(ControlError::StatusBitCleared);
        }
        let added = new & !old;
        const KNOWN: u8 = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK | FAILED;
        if added & !KNOWN != 0 {
            // SUSPEND (needs VIRTIO_F_SUSPEND, never offered) or reserved.
            return Err(ControlError::StatusOrder);
        }
        // §3.1.1: ACKNOWLEDGE, then DRIVER, then FEATURES_OK, then DRIVER_OK.
        let order_ok = (new & DRIVER == 0 || new & ACKNOWLEDGE != 0)
            && (new & FEATURES_OK == 0 || new & DRIVER != 0)
            && (new & DRIVER_OK == 0 || new & FEATURES_OK != 0);
        if !order_ok {
            return Err(ControlError::StatusOrder);
        }
        if added & FEATURES_OK != 0 && !self.features_acceptable() {
            self.status = (self.status & NEEDS_RESET) | (new & !(FEATURES_OK | DRIVER_OK));
            return Err(ControlError::FeaturesRefused);
        }
        self.status = (self.status & NEEDS_RESET) | new;
        if added & DRIVER_OK != 0 {
            self.device.activate(self.driver_features);
        }
        Ok(())
    }

    fn features_acceptable(&mut self) -> bool {
        let offered = self.device_features();
        let f = self.driver_features;
        // §2.2.2 and §6.1: only offered features; VERSION_1 is required
        // because this core implements no legacy interface.
        f & !offered == 0 && f & features::VERSION_1 != 0 && self.device.accept_features(f)
    }

    /// Config generation (virtio v1.2 §2.5).
    pub fn config_generation(&self) -> u32 {
        self.config_generation
    }

    /// GET_CONFIG: reads `data.len()` bytes at `offset`; returns the
    /// generation the bytes belong to.
    pub fn read_config(&self, offset: u32, data: &mut [u8]) -> Result<u32, ControlError> {
        self.config_range(offset, data.len())?;
        self.device.read_config(offset, data);
        Ok(self.config_generation)
    }

    /// SET_CONFIG. Returns the generation after the write.
    pub fn write_config(&mut self, offset: u32, data: &[u8]) -> Result<u32, ControlError> {
        self.config_range(offset, data.len())?;
        if !self.device.write_config(offset, data) {
            return Err(ControlError::ConfigReadOnly);
        }
        Ok(self.config_generation)
    }

    fn config_range(&self, offset: u32, len: usize) -> Result<(), ControlError> {
        let end = u64::from(offset) + len as u64;
        if end > u64::from(self.device.config_size()) {
            return Err(ControlError::ConfigRange);
        }
        Ok(())
    }

    /// The device changed its configuration space: bump the generation and
    /// tell the driver (virtio v1.2 §2.5.1, §3.2.1).
    pub fn config_changed(&mut self) -> Interrupts {
        self.config_generation = self.config_generation.wrapping_add(1);
        Interrupts {
            used: 0,
            config: self.status & DRIVER_OK != 0,
        }
    }

    /// GET_VQUEUE.
    pub fn queue_info(&self, index: u16) -> QueueInfo {
        match self.queues.get(usize::from(index)) {
            Some(q) if q.max_size() > 0 => {
                let (desc, driver, device) = if q.ready() { q.addresses() } else { (0, 0, 0) };
                QueueInfo {
                    max_size: q.max_size(),
                    size: if q.ready() { q.size() } else { 0 },
                    enabled: q.ready(),
                    desc,
                    driver,
                    device,
                }
            }
            _ => QueueInfo {
                max_size: 0,
                size: 0,
                enabled: false,
                desc: 0,
                driver: 0,
                device: 0,
            },
        }
    }

    /// SET_VQUEUE with the enable flag: configures and enables a queue.
    /// Allowed once `FEATURES_OK` is set, before `DRIVER_OK` or, with
    /// `VIRTIO_F_RING_RESET`, for a queue in reset state (virtio v1.2
    /// §2.6.1.2 re-enable); an enabled queue is refused, and a failed
    /// enable leaves the queue as it was ([`DeviceCore::update_vqueue`]
    /// with every field and [`VqueueState::Enable`]).
    pub fn set_vqueue<M: GuestMemory>(
        &mut self,
        mem: &M,
        index: u16,
        size: u16,
        desc: u64,
        driver: u64,
        device: u64,
    ) -> Result<(), ControlError> {
        self.update_vqueue(
            mem,
            index,
            VqueueUpdate {
                size: Some(size),
                desc: Some(desc),
                driver: Some(driver),
                device: Some(device),
                state: VqueueState::Enable,
            },
        )
    }

    /// SET_VQUEUE as virtio-msg v2 defines it: apply `update`'s fields,
    /// then its state operation, all or nothing. Refused (state unchanged)
    /// when the queue is enabled and the update changes a field or asks to
    /// keep it disabled, outside the setup phase (`FEATURES_OK` without
    /// `DRIVER_OK`, or a queue in reset with `VIRTIO_F_RING_RESET`), and
    /// when enabling fails its checks (the fields then return to what they
    /// were).
    pub fn update_vqueue<M: GuestMemory>(
        &mut self,
        mem: &M,
        index: u16,
        update: VqueueUpdate,
    ) -> Result<(), ControlError> {
        let negotiated = self.driver_features;
        let status = self.status;
        let q = self.queue_mut(index)?;
        let fields = update.size.is_some()
            || update.desc.is_some()
            || update.driver.is_some()
            || update.device.is_some();
        if q.ready() {
            // An enabled queue cannot change, nor be disabled here (only
            // RESET_VQUEUE does that).
            return match (fields, update.state) {
                (false, VqueueState::Enable | VqueueState::Keep) => Ok(()),
                _ => Err(ControlError::WrongState),
            };
        }
        let setup_phase = status & FEATURES_OK != 0 && status & DRIVER_OK == 0;
        let reenable = status & DRIVER_OK != 0 && negotiated & features::RING_RESET != 0;
        if status & NEEDS_RESET != 0 || !(setup_phase || reenable) {
            return Err(ControlError::WrongState);
        }
        let before = (q.size(), q.addresses());
        if let Some(v) = update.size {
            q.set_size(v);
        }
        let (desc, driver, device) = before.1;
        q.set_desc_table_address(update.desc.unwrap_or(desc));
        q.set_avail_ring_address(update.driver.unwrap_or(driver));
        q.set_used_ring_address(update.device.unwrap_or(device));
        if update.state != VqueueState::Enable {
            return Ok(());
        }
        q.enable(mem, negotiated).map_err(|e| {
            let (size, (desc, driver, device)) = before;
            q.set_size(size);
            q.set_desc_table_address(desc);
            q.set_avail_ring_address(driver);
            q.set_used_ring_address(device);
            ControlError::Queue(e)
        })
    }

    /// Disables a queue during setup (virtio-mmio `QueueReady = 0` before
    /// `DRIVER_OK`). After `DRIVER_OK` only [`DeviceCore::reset_vqueue`]
    /// may take a queue away.
    pub fn disable_vqueue(&mut self, index: u16) -> Result<(), ControlError> {
        let status = self.status;
        let q = self.queue_mut(index)?;
        if status & DRIVER_OK != 0 && q.ready() {
            return Err(ControlError::WrongState);
        }
        q.reset();
        Ok(())
    }

    /// RESET_VQUEUE (virtio v1.2 §2.6.1.1): needs `VIRTIO_F_RING_RESET`.
    pub fn reset_vqueue(&mut self, index: u16) -> Result<(), ControlError> {
        if self.status & FEATURES_OK == 0 || self.driver_features & features::RING_RESET == 0 {
            return Err(ControlError::RingResetNotNegotiated);
        }
        self.queue_mut(index)?.reset();
        // §2.6.1: the driver may reuse the queue's buffers as soon as the
        // reset is acknowledged; the device type drops what it holds first.
        self.device.reset_queue(index);
        Ok(())
    }

    fn queue_mut(&mut self, index: u16) -> Result<&mut Queue<H>, ControlError> {
        self.queues
            .get_mut(usize::from(index))
            .filter(|q| q.max_size() > 0)
            .ok_or(ControlError::NoSuchQueue)
    }

    /// EVENT_AVAIL / a queue kick: queue `index` has work.
    ///
    /// Ignored before `DRIVER_OK`, after `DEVICE_NEEDS_RESET`, and for
    /// queues that do not exist or are not enabled (virtio v1.2 §2.1.2: no
    /// buffers are consumed before `DRIVER_OK`).
    pub fn queue_notify<M: GuestMemory>(&mut self, mem: &M, index: u16) -> Interrupts {
        if !self.running()
            || !self
                .queues
                .get(usize::from(index))
                .is_some_and(Queue::ready)
        {
            return Interrupts::default();
        }
        let r = self.device.process_queue(index, &mut self.queues, mem);
        self.after_processing(mem, r)
    }

    /// Time passed: the device's clock reads `now_ms`
    /// ([`VirtioDevice::advance`]), whatever the device status. Events it
    /// produces reach the driver at the next [`DeviceCore::poll`].
    pub fn advance(&mut self, now_ms: u64) {
        self.device.advance(now_ms);
    }

    /// Lets the device do device-initiated work (pending events, timers).
    pub fn poll<M: GuestMemory>(&mut self, mem: &M) -> Interrupts {
        if !self.running() {
            return Interrupts::default();
        }
        let r = self.device.poll(&mut self.queues, mem);
        self.after_processing(mem, r)
    }

    fn running(&self) -> bool {
        self.status & DRIVER_OK != 0 && self.status & NEEDS_RESET == 0
    }

    fn after_processing<M: GuestMemory>(
        &mut self,
        mem: &M,
        r: Result<(), crate::QueueError>,
    ) -> Interrupts {
        let mut out = Interrupts::default();
        if let Err(e) = r
            && e.needs_reset()
        {
            return self.set_needs_reset();
        }
        for (i, q) in self.queues.iter_mut().enumerate() {
            if !q.ready() {
                continue;
            }
            match q.needs_notification(mem) {
                Ok(true) => out.used |= 1 << i,
                Ok(false) => {}
                Err(e) if e.needs_reset() => return self.set_needs_reset(),
                Err(_) => {}
            }
        }
        out
    }

    /// Sets `DEVICE_NEEDS_RESET`; the driver gets a configuration change
    /// notification if it had set `DRIVER_OK` (virtio v1.2 §2.1.2).
    pub fn set_needs_reset(&mut self) -> Interrupts {
        self.status |= NEEDS_RESET;
        Interrupts {
            used: 0,
            config: self.status & DRIVER_OK != 0,
        }
    }

    /// Device reset (virtio v1.2 §2.4): status, features and queues return
    /// to their initial state and the device forgets the driver.
    pub fn reset(&mut self) {
        self.status = 0;
        self.driver_features = 0;
        for q in self.queues.iter_mut() {
            q.reset();
        }
        self.device.reset();
    }
}

/// Marker for an accepted feature bit above 63, which the core never offers.
const UNKNOWN_FEATURE: u64 = 1 << 63;

const _: () = assert!(
    features::SUPPORTED & UNKNOWN_FEATURE == 0,
    "bit 63 must stay unused so it can flag unknown feature blocks"
);
