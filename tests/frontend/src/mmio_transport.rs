//! Transport B: virtio-mmio version 2 as a register block in the arena's
//! transport page, with trapped accesses.
//!
//! A register write stores the value into the page, records the access in
//! the syndrome word and traps (rings the doorbell); the device reads the
//! value from the page through `GuestMemory` and calls
//! `MmioTransport::write`. A read traps first; the device stores
//! `MmioTransport::read`'s value into the page and the driver loads it from
//! there. This models a hypervisor trapping MMIO (or a register block in
//! shared memory with a doorbell).
//!
//! `Transport` methods map onto the registers the way a virtio-mmio v2
//! driver uses them (virtio v1.2 §4.2.3), with one deliberate difference:
//! `queue_unset` does not spin until `QueueReady` reads 0 (the device keeps
//! a running queue unless `VIRTIO_F_RING_RESET` lets `QueueReset` take it),
//! which `virtio-drivers`' own mmio transport would do forever when a
//! driver is dropped.

use core::cell::Cell;
use core::ptr::NonNull;
use std::sync::Arc;

use virtio_backend::VirtioDevice;
use virtio_backend::mmio::{MAGIC, reg};
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{Error, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::loopback::{Loopback, page};

/// The driver's end of a trapped virtio-mmio register block.
pub struct MmioRegTransport<D: VirtioDevice, const NQ: usize> {
    link: Arc<Loopback<D, NQ>>,
    page: NonNull<u8>,
    /// `queue_unset` calls where `QueueReady` did not read back 0.
    unset_refused: Cell<u32>,
}

impl<D: VirtioDevice, const NQ: usize> MmioRegTransport<D, NQ> {
    /// A driver end for `link`; probes `MagicValue` and `Version` as a
    /// virtio-mmio driver does.
    pub fn new(link: Arc<Loopback<D, NQ>>) -> Self {
        let page = link.arena().host(link.page_offset());
        let t = MmioRegTransport {
            link,
            page,
            unset_refused: Cell::new(0),
        };
        assert_eq!(t.read32(reg::MAGIC_VALUE), MAGIC, "MagicValue");
        assert_eq!(t.read32(reg::VERSION), 2, "Version");
        t
    }

    fn syndrome(&self, offset: u32, width: u8, write: bool) {
        let mut s = [0u8; 8];
        s[..4].copy_from_slice(&offset.to_le_bytes());
        s[4] = width;
        s[5] = u8::from(write);
        for (i, b) in s.iter().enumerate() {
            // SAFETY: the syndrome lies inside the transport page, which
            // lives as long as `link` holds the arena; volatile because the
            // device reads it.
            unsafe {
                self.page
                    .as_ptr()
                    .add(page::SYNDROME + i)
                    .write_volatile(*b)
            };
        }
    }

    fn check(offset: u32, width: u8) -> usize {
        let n = usize::from(width);
        assert!(matches!(n, 1 | 2 | 4) && offset as usize + n <= page::MMIO_END);
        n
    }

    /// A trapped register write of `width` bytes.
    pub fn write_reg(&self, offset: u32, width: u8, value: u32) {
        let n = Self::check(offset, width);
        for (i, b) in value.to_le_bytes()[..n].iter().enumerate() {
            // SAFETY: `offset + n <= MMIO_END`, inside the transport page;
            // volatile because the device reads it.
            unsafe {
                self.page
                    .as_ptr()
                    .add(offset as usize + i)
                    .write_volatile(*b)
            };
        }
        self.syndrome(offset, width, true);
        self.link.ring();
    }

    /// A trapped register read of `width` bytes.
    pub fn read_reg(&self, offset: u32, width: u8) -> u32 {
        let n = Self::check(offset, width);
        self.syndrome(offset, width, false);
        self.link.ring();
        let mut v = [0u8; 4];
        for (i, b) in v[..n].iter_mut().enumerate() {
            // SAFETY: as in `write_reg`, for reads.
            *b = unsafe { self.page.as_ptr().add(offset as usize + i).read_volatile() };
        }
        u32::from_le_bytes(v)
    }

    fn read32(&self, offset: u32) -> u32 {
        self.read_reg(offset, 4)
    }

    fn write32(&self, offset: u32, value: u32) {
        self.write_reg(offset, 4, value)
    }

    /// `queue_unset` calls in which the device kept the queue enabled.
    pub fn unset_refused(&self) -> u32 {
        self.unset_refused.get()
    }

    /// Bytes of configuration space the register block can show.
    fn config_window() -> usize {
        page::MMIO_END - reg::CONFIG as usize
    }

    /// Splits a config access into naturally sized register accesses.
    fn config_chunks(offset: usize, len: usize) -> impl Iterator<Item = (usize, u8)> {
        let mut at = 0;
        core::iter::from_fn(move || {
            if at >= len {
                return None;
            }
            let left = len - at;
            let o = offset + at;
            let w = if left >= 4 && o.is_multiple_of(4) {
                4
            } else if left >= 2 && o.is_multiple_of(2) {
                2
            } else {
                1
            };
            let r = (at, w as u8);
            at += w;
            Some(r)
        })
    }
}

impl<D: VirtioDevice, const NQ: usize> Transport for MmioRegTransport<D, NQ> {
    fn device_type(&self) -> DeviceType {
        let id = self.read32(reg::DEVICE_ID);
        DeviceType::try_from(id)
            .unwrap_or_else(|_| panic!("device id {id:#x} has no virtio-drivers DeviceType"))
    }

    fn read_device_features(&mut self) -> u64 {
        self.write32(reg::DEVICE_FEATURES_SEL, 1);
        let hi = self.read32(reg::DEVICE_FEATURES);
        self.write32(reg::DEVICE_FEATURES_SEL, 0);
        let lo = self.read32(reg::DEVICE_FEATURES);
        u64::from(hi) << 32 | u64::from(lo)
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.write32(reg::DRIVER_FEATURES_SEL, 0);
        self.write32(reg::DRIVER_FEATURES, driver_features as u32);
        self.write32(reg::DRIVER_FEATURES_SEL, 1);
        self.write32(reg::DRIVER_FEATURES, (driver_features >> 32) as u32);
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.write32(reg::QUEUE_SEL, u32::from(queue));
        self.read32(reg::QUEUE_NUM_MAX)
    }

    fn notify(&mut self, queue: u16) {
        if self.link.threaded() {
            // A posted write: the device thread serves it while the driver
            // goes on.
            self.link.post_kick(queue);
            return;
        }
        self.write32(reg::QUEUE_NOTIFY, u32::from(queue));
    }

    fn get_status(&self) -> DeviceStatus {
        DeviceStatus::from_bits_retain(self.read32(reg::STATUS))
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.write32(reg::STATUS, status.bits());
    }

    fn set_guest_page_size(&mut self, _guest_page_size: u32) {
        // Legacy (version 1) register only.
    }

    fn requires_legacy_layout(&self) -> bool {
        false
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.write32(reg::QUEUE_SEL, u32::from(queue));
        self.write32(reg::QUEUE_NUM, size);
        self.write32(reg::QUEUE_DESC_LOW, descriptors as u32);
        self.write32(reg::QUEUE_DESC_HIGH, (descriptors >> 32) as u32);
        self.write32(reg::QUEUE_DRIVER_LOW, driver_area as u32);
        self.write32(reg::QUEUE_DRIVER_HIGH, (driver_area >> 32) as u32);
        self.write32(reg::QUEUE_DEVICE_LOW, device_area as u32);
        self.write32(reg::QUEUE_DEVICE_HIGH, (device_area >> 32) as u32);
        self.write32(reg::QUEUE_READY, 1);
    }

    fn queue_unset(&mut self, queue: u16) {
        self.write32(reg::QUEUE_SEL, u32::from(queue));
        self.write32(reg::QUEUE_READY, 0);
        // Read QueueReady back until it is 0. The virtio-drivers mmio
        // transport spins here; the device core refuses QueueReady = 0 after
        // DRIVER_OK, so spinning would hang. With VIRTIO_F_RING_RESET the
        // queue can be taken back through QueueReset instead; without it,
        // record the refusal (the queue goes away at the next device reset).
        if self.read32(reg::QUEUE_READY) != 0 {
            self.write32(reg::QUEUE_RESET, 1);
            if self.read32(reg::QUEUE_READY) != 0 {
                self.unset_refused.set(self.unset_refused.get() + 1);
                return;
            }
        }
        self.write32(reg::QUEUE_NUM, 0);
        for r in [
            reg::QUEUE_DESC_LOW,
            reg::QUEUE_DESC_HIGH,
            reg::QUEUE_DRIVER_LOW,
            reg::QUEUE_DRIVER_HIGH,
            reg::QUEUE_DEVICE_LOW,
            reg::QUEUE_DEVICE_HIGH,
        ] {
            self.write32(r, 0);
        }
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.write32(reg::QUEUE_SEL, u32::from(queue));
        self.read32(reg::QUEUE_READY) != 0
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        let status = self.read32(reg::INTERRUPT_STATUS);
        if status != 0 {
            self.write32(reg::INTERRUPT_ACK, status);
        }
        InterruptStatus::from_bits_truncate(status)
    }

    fn read_config_generation(&self) -> u32 {
        self.read32(reg::CONFIG_GENERATION)
    }

    fn read_config_space<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T, Error> {
        let mut v = T::new_zeroed();
        let bytes = v.as_mut_bytes();
        if offset + bytes.len() > Self::config_window() {
            return Err(Error::ConfigSpaceTooSmall);
        }
        for (at, w) in Self::config_chunks(offset, bytes.len()) {
            let x = self.read_reg(reg::CONFIG + (offset + at) as u32, w);
            bytes[at..at + usize::from(w)].copy_from_slice(&x.to_le_bytes()[..usize::from(w)]);
        }
        Ok(v)
    }

    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> Result<(), Error> {
        let bytes = value.as_bytes();
        if offset + bytes.len() > Self::config_window() {
            return Err(Error::ConfigSpaceTooSmall);
        }
        for (at, w) in Self::config_chunks(offset, bytes.len()) {
            let mut v = [0u8; 4];
            v[..usize::from(w)].copy_from_slice(&bytes[at..at + usize::from(w)]);
            self.write_reg(reg::CONFIG + (offset + at) as u32, w, u32::from_le_bytes(v));
        }
        Ok(())
    }
}
