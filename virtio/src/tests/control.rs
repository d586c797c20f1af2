//! The device state machine and the virtio-mmio register adapter.

use super::Arena;
use crate::control::{ControlError, DeviceCore};
use crate::device::{Interrupts, VirtioDevice};
use crate::memory::GuestMemory;
use crate::mmio::{self, MmioTransport, reg};
use crate::mock::MockSplitQueue;
use crate::queue::{Queue, QueueError};
use crate::spec::features::{EVENT_IDX, INDIRECT_DESC, RING_RESET, VERSION_1};
use crate::spec::status::{ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, NEEDS_RESET};

/// An echo device: copies each request into its reply, uppercased; queue 1
/// exists but is never processed. Config space: 8 bytes, byte 4..8 writable.
#[derive(Default)]
pub(crate) struct Echo {
    pub config: [u8; 8],
    pub resets: u32,
    pub activated: Option<u64>,
    pub refuse_features: bool,
}

impl VirtioDevice for Echo {
    fn device_id(&self) -> u32 {
        0x1234
    }
    fn device_features(&self) -> u64 {
        VERSION_1 | INDIRECT_DESC | EVENT_IDX | RING_RESET | 1 << 3
    }
    fn max_queue_size(&self, index: u16) -> u16 {
        match index {
            0 => 16,
            1 => 8,
            _ => 0,
        }
    }
    fn config_size(&self) -> u32 {
        8
    }
    fn read_config(&self, offset: u32, data: &mut [u8]) {
        let o = offset as usize;
        data.copy_from_slice(&self.config[o..o + data.len()]);
    }
    fn write_config(&mut self, offset: u32, data: &[u8]) -> bool {
        if offset < 4 {
            return false;
        }
        let o = offset as usize;
        self.config[o..o + data.len()].copy_from_slice(data);
        true
    }
    fn accept_features(&mut self, _features: u64) -> bool {
        !self.refuse_features
    }
    fn activate(&mut self, features: u64) {
        self.activated = Some(features);
    }
    fn process_queue<M: GuestMemory, const H: usize>(
        &mut self,
        index: u16,
        queues: &mut [Queue<H>],
        mem: &M,
    ) -> Result<(), QueueError> {
        let q = &mut queues[usize::from(index)];
        loop {
            loop {
                let c = match q.pop_descriptor_chain(mem) {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) if !e.needs_reset() => continue,
                    Err(e) => return Err(e),
                };
                let mut buf = [0u8; 256];
                let n = c.reader(mem).read(&mut buf).unwrap_or(0);
                buf[..n].make_ascii_uppercase();
                let mut w = c.writer(mem);
                let _ = w.write(&buf[..n]);
                let written = w.written();
                q.add_used(mem, c, written)?;
            }
            if !q.enable_notification(mem)? {
                return Ok(());
            }
        }
    }
    fn reset(&mut self) {
        self.resets += 1;
    }
}

const RING: u64 = 0x1000;

#[test]
fn initialization_sequence_and_refusals() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    assert_eq!(core.info().max_virtqueues, 2);
    // Features before DRIVER: refused.
    assert_eq!(
        core.set_driver_feature_block(0, 1),
        Err(ControlError::WrongState)
    );
    // DRIVER before ACKNOWLEDGE: refused, nothing changes.
    assert_eq!(core.set_status(DRIVER), Err(ControlError::StatusOrder));
    assert_eq!(core.status(), 0);
    core.set_status(ACKNOWLEDGE).unwrap();
    core.set_status(ACKNOWLEDGE | DRIVER).unwrap();
    // Clearing a bit without reset: refused.
    assert_eq!(core.set_status(DRIVER), Err(ControlError::StatusBitCleared));
    // Queue setup before FEATURES_OK: refused.
    assert_eq!(
        core.set_vqueue(&m, 0, 16, 0x1000, 0x2000, 0x3000),
        Err(ControlError::WrongState)
    );
    // A feature the device never offered makes FEATURES_OK fail (§2.2.2).
    core.set_driver_feature_block(0, (VERSION_1 | 1 << 5) as u32)
        .unwrap();
    core.set_driver_feature_block(1, (VERSION_1 >> 32) as u32)
        .unwrap();
    assert_eq!(
        core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK),
        Err(ControlError::FeaturesRefused)
    );
    assert_eq!(
        core.status(),
        ACKNOWLEDGE | DRIVER,
        "FEATURES_OK reads back clear"
    );
    // Without VERSION_1: refused too (no legacy interface).
    core.set_driver_feature_block(0, 1 << 3).unwrap();
    core.set_driver_feature_block(1, 0).unwrap();
    assert_eq!(
        core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK),
        Err(ControlError::FeaturesRefused)
    );
    // A valid subset is accepted.
    core.set_driver_feature_block(1, (VERSION_1 >> 32) as u32)
        .unwrap();
    core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK).unwrap();
    assert_eq!(core.driver_features(), VERSION_1 | 1 << 3);
    // Features are frozen now.
    assert_eq!(
        core.set_driver_feature_block(0, 0),
        Err(ControlError::WrongState)
    );
    // Queue 2 does not exist.
    assert_eq!(
        core.set_vqueue(&m, 2, 8, 0x1000, 0x2000, 0x3000),
        Err(ControlError::NoSuchQueue)
    );
    core.set_vqueue(&m, 0, 16, 0x1000, 0x2000, 0x3000).unwrap();
    assert!(core.queue_info(0).enabled);
    assert_eq!(core.queue_info(0).size, 16);
    core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
        .unwrap();
    assert_eq!(core.device().activated, Some(VERSION_1 | 1 << 3));
    // Reset clears everything and tells the device.
    core.set_status(0).unwrap();
    assert_eq!(core.status(), 0);
    assert!(!core.queue_info(0).enabled);
    assert_eq!(core.driver_features(), 0);
    assert_eq!(core.device().resets, 1);
}

#[test]
fn device_may_refuse_a_feature_combination() {
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo {
        refuse_features: true,
        ..Echo::default()
    });
    core.set_status(ACKNOWLEDGE | DRIVER).unwrap();
    core.set_driver_feature_block(1, (VERSION_1 >> 32) as u32)
        .unwrap();
    assert_eq!(
        core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK),
        Err(ControlError::FeaturesRefused)
    );
}

#[test]
fn config_space_range_generation_and_read_only_fields() {
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    let mut b = [0u8; 4];
    assert_eq!(core.read_config(6, &mut b), Err(ControlError::ConfigRange));
    assert_eq!(
        core.read_config(u32::MAX, &mut b),
        Err(ControlError::ConfigRange)
    );
    assert_eq!(
        core.write_config(0, &[1]),
        Err(ControlError::ConfigReadOnly)
    );
    let g = core.write_config(4, &[1, 2, 3, 4]).unwrap();
    assert_eq!(core.read_config(4, &mut b), Ok(g));
    assert_eq!(b, [1, 2, 3, 4]);
    // Not yet DRIVER_OK: generation moves, no notification.
    assert_eq!(core.config_changed(), Interrupts::default());
    assert_eq!(core.config_generation(), g + 1);
}

fn bring_up(core: &mut DeviceCore<Echo, 2>, m: &impl GuestMemory, features: u64) {
    core.set_status(ACKNOWLEDGE | DRIVER).unwrap();
    core.set_driver_feature_block(0, features as u32).unwrap();
    core.set_driver_feature_block(1, (features >> 32) as u32)
        .unwrap();
    core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK).unwrap();
    let (d, a, u) = MockSplitQueue::new(m, RING, 16).addresses();
    core.set_vqueue(m, 0, 16, d, a, u).unwrap();
    core.set_status(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
        .unwrap();
}

#[test]
fn kick_processes_and_reports_notifications() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    // Kicks before DRIVER_OK consume nothing (§2.1.2).
    assert_eq!(core.queue_notify(&m, 0), Interrupts::default());
    bring_up(&mut core, &m, VERSION_1);
    let mut drv = MockSplitQueue::new(&m, RING, 16);
    m.write(0x8000, b"ping").unwrap();
    drv.add_chain(&[(0x8000, 4, false), (0x8100, 4, true)]);
    let i = core.queue_notify(&m, 0);
    assert_eq!(
        i,
        Interrupts {
            used: 1,
            config: false
        }
    );
    assert_eq!(drv.pop_used(), Some((0, 4)));
    let mut b = [0u8; 4];
    m.read(0x8100, &mut b).unwrap();
    assert_eq!(&b, b"PING");
    // A kick for a queue that is not enabled, or does not exist: nothing.
    assert!(core.queue_notify(&m, 1).is_empty());
    assert!(core.queue_notify(&m, 40).is_empty());
}

#[test]
fn fatal_ring_error_sets_needs_reset_and_notifies_config() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    bring_up(&mut core, &m, VERSION_1);
    let drv = MockSplitQueue::new(&m, RING, 16);
    drv.set_avail_entry(0, 99);
    drv.set_avail_idx(1);
    let i = core.queue_notify(&m, 0);
    assert!(i.config);
    assert_ne!(core.status() & NEEDS_RESET, 0);
    // The device stops consuming until reset.
    assert!(core.queue_notify(&m, 0).is_empty());
    // The driver may echo NEEDS_RESET back harmlessly; reset clears it.
    core.set_status(0).unwrap();
    assert_eq!(core.status(), 0);
}

#[test]
fn queue_reset_needs_ring_reset_and_allows_reenable() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    bring_up(&mut core, &m, VERSION_1);
    assert_eq!(
        core.reset_vqueue(0),
        Err(ControlError::RingResetNotNegotiated)
    );
    core.set_status(0).unwrap();
    bring_up(&mut core, &m, VERSION_1 | RING_RESET);
    // Enabled queues cannot be reconfigured...
    assert_eq!(
        core.set_vqueue(&m, 0, 16, 0x1000, 0x2000, 0x3000),
        Err(ControlError::WrongState)
    );
    // ...until reset (§2.6.1).
    core.reset_vqueue(0).unwrap();
    assert!(!core.queue_info(0).enabled);
    let (d, a, u) = MockSplitQueue::new(&m, RING, 8).addresses();
    core.set_vqueue(&m, 0, 8, d, a, u).unwrap();
    assert_eq!(core.queue_info(0).size, 8);
}

// ---- virtio-mmio ----

fn w(t: &mut MmioTransport<Echo, 2>, m: &impl GuestMemory, off: u32, v: u32) -> mmio::WriteOutcome {
    t.write(m, off, 4, v)
}

#[test]
fn mmio_register_file() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let mut t: MmioTransport<Echo, 2> = MmioTransport::new(Echo::default());
    assert_eq!(t.read(reg::MAGIC_VALUE, 4), mmio::MAGIC);
    assert_eq!(t.read(reg::VERSION, 4), 2);
    assert_eq!(t.read(reg::DEVICE_ID, 4), 0x1234);
    // Sub-word access to a register reads 0 (§4.2.2.2 needs 32-bit).
    assert_eq!(t.read(reg::MAGIC_VALUE, 2), 0);
    let _ = w(&mut t, &m, reg::STATUS, u32::from(ACKNOWLEDGE | DRIVER));
    let _ = w(&mut t, &m, reg::DEVICE_FEATURES_SEL, 1);
    assert_eq!(
        t.read(reg::DEVICE_FEATURES, 4),
        (t.core().device_features() >> 32) as u32
    );
    let _ = w(&mut t, &m, reg::DRIVER_FEATURES_SEL, 1);
    let _ = w(&mut t, &m, reg::DRIVER_FEATURES, (VERSION_1 >> 32) as u32);
    let _ = w(
        &mut t,
        &m,
        reg::STATUS,
        u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK),
    );
    assert_eq!(
        t.read(reg::STATUS, 4),
        u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK)
    );
    // Queue 1 max 8, queue 5 absent.
    let _ = w(&mut t, &m, reg::QUEUE_SEL, 5);
    assert_eq!(t.read(reg::QUEUE_NUM_MAX, 4), 0);
    assert_eq!(
        w(&mut t, &m, reg::QUEUE_READY, 1).refused,
        Some(ControlError::NoSuchQueue)
    );
    let _ = w(&mut t, &m, reg::QUEUE_SEL, 0);
    assert_eq!(t.read(reg::QUEUE_NUM_MAX, 4), 16);
    let (d, a, u) = MockSplitQueue::new(&m, RING, 16).addresses();
    let _ = w(&mut t, &m, reg::QUEUE_NUM, 16);
    let _ = w(&mut t, &m, reg::QUEUE_DESC_LOW, d as u32);
    let _ = w(&mut t, &m, reg::QUEUE_DESC_HIGH, 0);
    let _ = w(&mut t, &m, reg::QUEUE_DRIVER_LOW, a as u32);
    let _ = w(&mut t, &m, reg::QUEUE_DEVICE_LOW, 0x3); // misaligned
    assert!(matches!(
        w(&mut t, &m, reg::QUEUE_READY, 1).refused,
        Some(ControlError::Queue(_))
    ));
    assert_eq!(t.read(reg::QUEUE_READY, 4), 0);
    let _ = w(&mut t, &m, reg::QUEUE_DEVICE_LOW, u as u32);
    assert_eq!(w(&mut t, &m, reg::QUEUE_READY, 1).refused, None);
    assert_eq!(t.read(reg::QUEUE_READY, 4), 1);
    let _ = w(
        &mut t,
        &m,
        reg::STATUS,
        u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK),
    );

    let mut drv = MockSplitQueue::new(&m, RING, 16);
    // (re-lay the ring: MockSplitQueue::new zeroes it, which is what a
    // driver does before enabling; the queue has not been used yet.)
    m.write(0x8000, b"abc").unwrap();
    drv.add_chain(&[(0x8000, 3, false), (0x8100, 3, true)]);
    let out = w(&mut t, &m, reg::QUEUE_NOTIFY, 0);
    assert!(out.raise_irq());
    assert_eq!(t.read(reg::INTERRUPT_STATUS, 4), mmio::INT_USED_BUFFER);
    let _ = w(&mut t, &m, reg::INTERRUPT_ACK, mmio::INT_USED_BUFFER);
    assert_eq!(t.interrupt_status(), 0);
    assert_eq!(drv.pop_used(), Some((0, 3)));

    // Config space: byte, half and word accesses; out of range reads 0.
    let _ = t.write(&m, reg::CONFIG + 4, 2, 0xbeef);
    assert_eq!(t.read(reg::CONFIG + 4, 2), 0xbeef);
    assert_eq!(t.read(reg::CONFIG + 4, 1), 0xef);
    assert_eq!(t.read(reg::CONFIG + 6, 4), 0);
    // No shared memory regions.
    assert_eq!(t.read(reg::SHM_LEN_LOW, 4), u32::MAX);

    // Reset through the register.
    let _ = w(&mut t, &m, reg::STATUS, 0);
    assert_eq!(t.read(reg::STATUS, 4), 0);
    assert_eq!(t.read(reg::QUEUE_READY, 4), 0);
}

/// Errors a user meets read as sentences that carry their values.
#[test]
fn errors_display_what_was_wrong_and_where() {
    use crate::{Area, ChainError, MemoryError, QueueConfigError};
    extern crate std;
    use std::string::ToString;
    let e = ControlError::Queue(QueueConfigError::OutOfRange {
        area: Area::Device,
        error: MemoryError::OutOfRange {
            addr: 0x1000,
            len: 6,
        },
    });
    let s = e.to_string();
    assert!(
        s.contains("device area") && s.contains("0x1000") && s.contains("6 bytes"),
        "{s}"
    );
    let s = QueueError::InvalidChain {
        id: 7,
        error: ChainError::NextOutOfRange { next: 99 },
    }
    .to_string();
    assert!(s.contains("chain 7") && s.contains("99"), "{s}");
    let s = QueueConfigError::SizeTooLarge {
        size: 300,
        max: 256,
    }
    .to_string();
    assert!(s.contains("300") && s.contains("256"), "{s}");
}
