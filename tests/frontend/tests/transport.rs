//! The `Transport` implementations driven by hand, below `virtio-drivers`'
//! device drivers: feature negotiation, configuration space, queue setup
//! checks, and the virtio-msg channel when the driver falls behind.

mod common;

use common::{blk_link, open_blk, pattern};
use frontend_tests::arena::{Arena, GUEST_BASE, PAGE};
use frontend_tests::blk::{self, BlkOptions, SECTOR};
use frontend_tests::loopback::{self, Kind, Mode};
use frontend_tests::transport::AnyTransport;
use virtio_backend::spec::features;
use virtio_backend::{Area, ControlError, QueueConfigError};
use virtio_drivers::Error;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};

both_transports!(feature_negotiation, config_space, queue_setup_checks);

fn ack_driver() -> DeviceStatus {
    DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER
}

/// FEATURES_OK is refused for features the device did not offer and for a
/// driver without `VIRTIO_F_VERSION_1`, accepted otherwise, and the
/// features are frozen once it is set (virtio v1.2 §2.2.2, §3.1.1).
fn feature_negotiation(kind: Kind) {
    let arena = Arena::new();
    let opts = BlkOptions {
        indirect: true,
        ..BlkOptions::default()
    };
    let link = blk_link(&arena, kind, Mode::Inline, opts);
    let mut t = AnyTransport::new(&link);
    assert_eq!(t.device_type(), DeviceType::Block);
    t.set_status(DeviceStatus::empty());
    t.set_status(ack_driver());
    let offered = t.read_device_features();
    assert_eq!(
        offered,
        link.with_device(virtio_backend::VirtioDevice::device_features)
    );
    assert_ne!(offered & features::INDIRECT_DESC, 0);
    assert_eq!(offered & blk::feature::RO, 0);

    // Not offered: refused.
    t.write_driver_features(features::VERSION_1 | blk::feature::RO);
    t.set_status(ack_driver() | DeviceStatus::FEATURES_OK);
    assert_eq!(t.get_status(), ack_driver(), "FEATURES_OK reads back clear");
    // No VERSION_1: refused.
    t.set_status(DeviceStatus::empty());
    t.set_status(ack_driver());
    t.write_driver_features(features::INDIRECT_DESC);
    t.set_status(ack_driver() | DeviceStatus::FEATURES_OK);
    assert_eq!(t.get_status(), ack_driver());
    // A subset of the offer with VERSION_1: accepted, then frozen.
    t.set_status(DeviceStatus::empty());
    t.set_status(ack_driver());
    let want = features::VERSION_1 | features::INDIRECT_DESC;
    t.write_driver_features(want);
    t.set_status(ack_driver() | DeviceStatus::FEATURES_OK);
    assert_eq!(t.get_status(), ack_driver() | DeviceStatus::FEATURES_OK);
    t.write_driver_features(offered);
    assert_eq!(
        link.driver_features(),
        want,
        "features frozen after FEATURES_OK"
    );

    let refused: Vec<ControlError> = link.stats().refused.iter().map(|r| r.1).collect();
    let mut expected = vec![ControlError::FeaturesRefused; 2];
    // The frozen write is refused per feature block written.
    let frozen = match kind {
        Kind::Msg => 1,
        Kind::Mmio => 2,
    };
    expected.extend(vec![ControlError::WrongState; frozen]);
    assert_eq!(refused, expected);
}

/// Configuration space through each transport: capacity and `blk_size`,
/// reads past the end, refused writes, the generation counter, and no
/// configuration notification before `DRIVER_OK`.
fn config_space(kind: Kind) {
    let arena = Arena::new();
    let opts = BlkOptions {
        sectors: 0x1_2345,
        ..BlkOptions::default()
    };
    let link = blk_link(&arena, kind, Mode::Inline, opts);
    let mut t = AnyTransport::new(&link);
    t.set_status(DeviceStatus::empty());
    t.set_status(ack_driver());
    assert_eq!(t.read_config_space::<u64>(0), Ok(0x1_2345));
    assert_eq!(t.read_config_space::<u32>(0), Ok(0x1_2345));
    assert_eq!(t.read_config_space::<u32>(4), Ok(0));
    assert_eq!(t.read_config_space::<u32>(20), Ok(SECTOR as u32));
    let past = t.read_config_space::<u32>(blk::CONFIG_SIZE as usize);
    match kind {
        // GET_CONFIG is refused and answered with no bytes.
        Kind::Msg => assert_eq!(past, Err(Error::ConfigSpaceTooSmall)),
        // A register read past the configuration space reads 0.
        Kind::Mmio => assert_eq!(past, Ok(0)),
    }

    let write = t.write_config_space::<u32>(0, 7);
    match kind {
        Kind::Msg => assert_eq!(write, Err(Error::Unsupported), "SET_CONFIG length 0"),
        // A register write cannot report a refusal.
        Kind::Mmio => assert_eq!(write, Ok(())),
    }
    assert_eq!(t.read_config_space::<u64>(0), Ok(0x1_2345), "read-only");
    assert!(
        link.stats()
            .refused
            .iter()
            .any(|r| r.1 == ControlError::ConfigReadOnly)
    );

    let g = t.read_config_generation();
    link.change_config(|d| d.resize(64));
    assert_eq!(t.read_config_generation(), g + 1);
    assert_eq!(t.read_config_space::<u64>(0), Ok(64));
    assert_eq!(
        link.stats().config_irqs,
        0,
        "no notification before DRIVER_OK"
    );
    assert_eq!(t.ack_interrupt().bits(), 0);
}

/// Queue setup through each transport: the device refuses a size that is
/// not a power of two, a size above its maximum, misaligned or foreign ring
/// addresses, and accepts a good one.
fn queue_setup_checks(kind: Kind) {
    let arena = Arena::new();
    let link = blk_link(&arena, kind, Mode::Inline, BlkOptions::default());
    let mut t = AnyTransport::new(&link);
    t.set_status(DeviceStatus::empty());
    t.set_status(ack_driver());
    t.write_driver_features(features::VERSION_1);
    t.set_status(ack_driver() | DeviceStatus::FEATURES_OK);
    assert_eq!(t.max_queue_size(0), 64);
    assert_eq!(t.max_queue_size(1), 0, "no queue 1");

    // Rings in the arena's DMA area (nothing else uses it in this test).
    let base = GUEST_BASE + 4 * PAGE as u64;
    let (desc, avail, used) = (base, base + 0x400, base + PAGE as u64);
    let tries: [(u32, u64, u64, u64, QueueConfigError); 4] = [
        (
            12,
            desc,
            avail,
            used,
            QueueConfigError::SizeNotPowerOfTwo { size: 12 },
        ),
        (
            128,
            desc,
            avail,
            used,
            QueueConfigError::SizeTooLarge { size: 128, max: 64 },
        ),
        (
            16,
            desc + 8,
            avail,
            used,
            QueueConfigError::Misaligned {
                area: Area::Descriptors,
                addr: desc + 8,
            },
        ),
        (
            16,
            desc,
            avail,
            0x1000,
            QueueConfigError::OutOfRange {
                area: Area::Device,
                error: virtio_backend::MemoryError::OutOfRange {
                    addr: 0x1000,
                    len: 6 + 8 * 16,
                },
            },
        ),
    ];
    for (size, d, a, u, err) in tries {
        t.queue_set(0, size, d, a, u);
        assert!(
            !t.queue_used(0),
            "size {size} at {d:#x}/{a:#x}/{u:#x} refused"
        );
        assert_eq!(
            link.stats().refused.last().map(|r| r.1),
            Some(ControlError::Queue(err))
        );
    }
    t.queue_set(0, 16, desc, avail, used);
    assert!(t.queue_used(0));
    assert_eq!(link.side().core().queue_info(0).size, 16);
    assert_eq!(link.stats().refused.len(), 4);
}

/// The channel carries 15 messages each way (16 elements, one always
/// free). A driver that never acknowledges interrupts finds 15 EVENT_USED
/// messages; the bus holds back the rest (coalesced per queue, never lost
/// and never written over unread ones) and sends what it owes as soon as
/// there is room. Kicks keep flowing meanwhile: EVENT_AVAIL needs no
/// answer, so the device takes it even when its own queue is full.
#[test]
fn msg_channel_holds_events_the_driver_does_not_read() {
    let _w = frontend_tests::Watchdog::new("msg_channel", std::time::Duration::from_secs(60));
    let arena = Arena::new();
    let link = blk_link(&arena, Kind::Msg, Mode::Inline, BlkOptions::default());
    let mut blk = open_blk(&link);
    let before = link.stats();
    let data = pattern(3, 0, 1);
    for i in 0..40 {
        blk.write_blocks(i, &data).unwrap();
    }
    let s = link.stats();
    let slots = u64::from(loopback::GEOMETRY.elements) - 1;
    assert_eq!(s.used_irqs[0] - before.used_irqs[0], 40);
    assert_eq!(s.delivered - before.delivered, 40, "one doorbell each");
    assert_eq!(
        s.coalesced - before.coalesced,
        40 - slots,
        "held back for lack of room"
    );
    assert_eq!(
        blk.ack_interrupt().bits(),
        InterruptStatus::QUEUE_INTERRUPT.bits()
    );
    assert_eq!(blk.ack_interrupt().bits(), 0, "channel drained");
    blk.write_blocks(40, &data).unwrap();
    let after = link.stats();
    assert_eq!(
        (
            after.delivered - s.delivered,
            after.coalesced - before.coalesced
        ),
        (2, 40 - slots),
        "the owed event with a doorbell of its own, then the new one; nothing more held back"
    );
    assert_eq!(
        blk.ack_interrupt().bits(),
        InterruptStatus::QUEUE_INTERRUPT.bits(),
        "the owed event and the new one"
    );
}

/// The same driver over a bus that speaks the RFC3 layouts (what Linux's
/// AMP bus speaks): GET_DEVICES in RFC3 order, SET_VQUEUE without flags,
/// GET_DEVICE_INFO with feature bits; a disk written and read back.
#[test]
fn rfc3_bus_carries_the_same_driver() {
    let _w = frontend_tests::Watchdog::new("rfc3", std::time::Duration::from_secs(60));
    let arena = Arena::new();
    let link = frontend_tests::loopback::Loopback::with_revision(
        &arena,
        frontend_tests::arena::TRANSPORT_PAGE,
        Kind::Msg,
        Mode::Inline,
        blk::RamDisk::new(BlkOptions::default()),
        virtio_backend::msg::Revision::Rfc3,
    );
    let mut blk = open_blk(&link);
    let data = pattern(5, 0, 4);
    blk.write_blocks(0, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    blk.read_blocks(0, &mut back).unwrap();
    assert!(back == data);
    let s = link.stats();
    assert!(s.refused.is_empty(), "{:?}", s.refused);
    assert_eq!(s.bus_messages, 1, "GET_DEVICES");
}
