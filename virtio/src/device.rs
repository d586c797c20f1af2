//! What a device type implements, and what the core tells the integrator.

use crate::memory::GuestMemory;
use crate::queue::{Queue, QueueError};

/// A virtio device type (virtio v1.2 §5): its identity, features,
/// configuration space and queue processing.
///
/// The device never performs a notification and never calls an OS. The
/// integrator tells the [`DeviceCore`](crate::DeviceCore) that a queue was
/// kicked; the core calls [`VirtioDevice::process_queue`], then asks each
/// queue whether the driver needs a used-buffer notification and returns the
/// answer as [`Interrupts`].
pub trait VirtioDevice {
    /// Virtio device id (virtio v1.2 §5; 32 for SCMI).
    fn device_id(&self) -> u32;

    /// Vendor id reported to the driver.
    fn vendor_id(&self) -> u32 {
        0
    }

    /// Features offered: device-specific bits plus any subset of
    /// [`features::SUPPORTED`](crate::spec::features::SUPPORTED).
    fn device_features(&self) -> u64;

    /// Largest size of queue `index`; 0 if the queue does not exist.
    fn max_queue_size(&self, index: u16) -> u16;

    /// Size of the device-specific configuration space in bytes.
    fn config_size(&self) -> u32 {
        0
    }

    /// Reads configuration space; the core has checked that
    /// `offset + data.len() <= config_size()`.
    fn read_config(&self, offset: u32, data: &mut [u8]) {
        let _ = offset;
        data.fill(0);
    }

    /// Writes configuration space (range already checked). Returns `false`
    /// to refuse the write (read-only fields).
    fn write_config(&mut self, offset: u32, data: &[u8]) -> bool {
        let _ = (offset, data);
        false
    }

    /// Called when the driver sets `FEATURES_OK` with `features` accepted;
    /// return `false` to refuse the combination (virtio v1.2 §2.2.2).
    fn accept_features(&mut self, features: u64) -> bool {
        let _ = features;
        true
    }

    /// Called when the driver sets `DRIVER_OK`.
    fn activate(&mut self, features: u64) {
        let _ = features;
    }

    /// Queue `index` has work (the driver kicked it). Pop, process and
    /// return chains; a fatal [`QueueError`] makes the core set
    /// `DEVICE_NEEDS_RESET`.
    ///
    /// `H` is the queues' store of held packed lists ([`Queue`]); a device
    /// type serves queues of any store size.
    fn process_queue<M: GuestMemory, const H: usize>(
        &mut self,
        index: u16,
        queues: &mut [Queue<H>],
        mem: &M,
    ) -> Result<(), QueueError>;

    /// Device-initiated work (timers, completions, pending events). Called
    /// when the integrator polls the core.
    fn poll<M: GuestMemory, const H: usize>(
        &mut self,
        queues: &mut [Queue<H>],
        mem: &M,
    ) -> Result<(), QueueError> {
        let _ = (queues, mem);
        Ok(())
    }

    /// Time passed: the device's clock reads `now_ms` (milliseconds since
    /// some start). Called by the integrator's time hook (see
    /// [`service`](crate::service)); events it produces are delivered at
    /// the next [`poll`](VirtioDevice::poll). Must tolerate the same time
    /// twice, and never see it run backwards.
    fn advance(&mut self, now_ms: u64) {
        let _ = now_ms;
    }

    /// The driver reset the device: drop all per-driver state.
    fn reset(&mut self);

    /// The driver reset queue `index` alone (`VIRTIO_F_RING_RESET`, virtio
    /// v1.2 §2.6.1): drop every chain popped from it and not yet returned.
    /// Once this returns the driver may reuse those buffers, so the device
    /// must not touch them again (their `add_used` fails with `StaleChain`).
    fn reset_queue(&mut self, index: u16) {
        let _ = index;
    }
}

/// Notifications the integrator must deliver to the driver.
#[must_use = "the driver waits for these notifications"]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Interrupts {
    /// Bit `n`: queue `n` needs a used-buffer notification.
    pub used: u64,
    /// A configuration change notification is needed (config space
    /// changed, or the device set `DEVICE_NEEDS_RESET`).
    pub config: bool,
}

/// One notification to the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notification {
    /// Queue `n` has used buffers (virtio v1.2 §2.7.10 / §2.8.10).
    Used(u16),
    /// The configuration changed, or the device set `DEVICE_NEEDS_RESET`
    /// (`needs_reset`, virtio v1.2 §2.1.2); the device status and the
    /// configuration generation as they are now (what a virtio-msg
    /// EVENT_CONFIG carries).
    Config {
        /// The device needs a reset.
        needs_reset: bool,
        /// The device status byte.
        status: u8,
        /// The configuration generation.
        generation: u32,
    },
}

impl Interrupts {
    /// No notification is needed.
    pub fn is_empty(&self) -> bool {
        self.used == 0 && !self.config
    }

    /// Whether queue `index` needs a used-buffer notification.
    pub fn queue(&self, index: u16) -> bool {
        index < 64 && self.used & (1 << index) != 0
    }

    /// Both sets of notifications.
    pub fn merge(self, other: Interrupts) -> Interrupts {
        Interrupts {
            used: self.used | other.used,
            config: self.config | other.config,
        }
    }

    /// Queue indices needing a used-buffer notification, in order.
    pub fn queues(&self) -> impl Iterator<Item = u16> + '_ {
        (0..64u16).filter(move |&i| self.queue(i))
    }
}
