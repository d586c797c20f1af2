//! Per-queue reset (`VIRTIO_F_RING_RESET`, virtio v1.2 §2.6.1), which
//! `virtio-drivers`' device drivers never negotiate: a raw
//! `virtio_drivers::queue::VirtQueue` over our transports, reset with
//! RESET_VQUEUE (virtio-msg) or `QueueReset` (virtio-mmio) and set up again
//! while the device stays live.

mod common;

use common::{BlkLink, blk_link, pattern};
use frontend_tests::arena::{Arena, ArenaHal, POISON};
use frontend_tests::blk::{BlkOptions, Completion, SECTOR, req};
use frontend_tests::loopback::{Kind, Mode};
use frontend_tests::transport::AnyTransport;
use virtio_backend::spec::features;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::{DeviceStatus, Transport};

type Queue = VirtQueue<ArenaHal, 16>;
type Raw = AnyTransport<frontend_tests::blk::RamDisk, 1>;

both_transports!(per_queue_reset);

/// Brings the device up by hand with `VIRTIO_F_RING_RESET` negotiated and
/// queue 0 set up.
fn bring_up(link: &BlkLink) -> (Raw, Queue) {
    let mut t = AnyTransport::new(link);
    let ack = DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER;
    t.set_status(DeviceStatus::empty());
    t.set_status(ack);
    let want = features::VERSION_1 | features::RING_RESET;
    assert_eq!(t.read_device_features() & want, want);
    t.write_driver_features(want);
    t.set_status(ack | DeviceStatus::FEATURES_OK);
    assert!(t.get_status().contains(DeviceStatus::FEATURES_OK));
    let q = Queue::new(&mut t, 0, false, false).expect("queue 0");
    t.finish_init();
    (t, q)
}

/// A block request header.
fn header(ty: u32, sector: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&ty.to_le_bytes());
    h[8..].copy_from_slice(&sector.to_le_bytes());
    h
}

/// One GET_ID request through the raw queue; returns the id.
fn get_id(q: &mut Queue, t: &mut Raw) -> Vec<u8> {
    let hdr = header(req::GET_ID, 0);
    let mut id = [0xffu8; 20];
    let mut status = [0xffu8; 1];
    let used = q
        .add_notify_wait_pop(&[&hdr], &mut [&mut id, &mut status], t)
        .expect("GET_ID");
    assert_eq!(used, 21, "id and status written");
    assert_eq!(status[0], 0, "VIRTIO_BLK_S_OK");
    let n = id.iter().position(|&b| b == 0).unwrap_or(20);
    id[..n].to_vec()
}

/// The driver resets queue 0 on a running device and sets it up again on
/// fresh rings; the device serves the new rings from index 0 and ignores
/// kicks in between.
fn per_queue_reset(kind: Kind) {
    let arena = Arena::new();
    let opts = BlkOptions {
        ring_reset: true,
        ..BlkOptions::default()
    };
    let link = blk_link(&arena, kind, Mode::Inline, opts);
    let (mut t, mut q) = bring_up(&link);
    for _ in 0..3 {
        assert_eq!(get_id(&mut q, &mut t), b"ramdisk-frontend");
    }
    let first = link.side().core().queues()[0].addresses();
    assert_eq!(link.ring_view(0).unwrap().used_idx, 3);

    t.queue_unset(0);
    assert!(!t.queue_used(0), "the queue was taken back");
    assert_eq!(link.side().core().queue_info(0).size, 0);
    assert!(link.status() & virtio_backend::spec::status::DRIVER_OK != 0);
    let chains = link.with_device(|d| d.stats().chains);
    t.notify(0);
    assert_eq!(
        link.with_device(|d| d.stats().chains),
        chains,
        "kick ignored"
    );
    drop(q);

    let mut q = Queue::new(&mut t, 0, false, false).expect("queue 0 again");
    assert!(t.queue_used(0));
    assert_ne!(link.side().core().queues()[0].addresses(), first);
    assert_eq!(get_id(&mut q, &mut t), b"ramdisk-frontend");
    let v = link.ring_view(0).unwrap();
    assert_eq!((v.avail_idx, v.used_idx), (1, 1), "fresh ring state");
    let s = link.with_device(|d| d.stats());
    assert_eq!((s.get_ids, s.completions, s.resets), (4, 4, 1));
    // virtio-mmio: QueueReady = 0 is refused on a running device, then
    // QueueReset takes the queue.
    let refused = link.stats().refused;
    match kind {
        Kind::Msg => assert!(refused.is_empty(), "{refused:?}"),
        Kind::Mmio => assert_eq!(refused.len(), 1, "{refused:?}"),
    }
}

/// Reads 8 bytes at a driver address from the arena.
fn read_u64(link: &BlkLink, addr: u64) -> u64 {
    let mut b = [0u8; 8];
    link.arena().read(link.arena().offset_of(addr), &mut b);
    u64::from_le_bytes(b)
}

/// A device that holds a popped chain (deferred completion, as any real
/// block back-end does) is told when the driver resets the queue
/// (`VirtioDevice::reset_queue`), so after RESET_VQUEUE has been answered
/// (the driver may now reuse its buffers, §2.6.1) the held request's data
/// never lands in the driver's buffer.
#[test]
fn device_writes_driver_buffer_after_queue_reset() {
    let arena = Arena::new();
    let opts = BlkOptions {
        ring_reset: true,
        completion: Completion::DeferredFifo,
        ..BlkOptions::default()
    };
    let link = blk_link(&arena, Kind::Msg, Mode::Inline, opts);
    let seed = pattern(1, 0, 1);
    link.side().device_mut().contents_mut()[..SECTOR].copy_from_slice(&seed);
    let (mut t, mut q) = bring_up(&link);

    let hdr = header(req::IN, 0);
    let mut data = [0u8; SECTOR];
    let mut status = [0u8; 1];
    // SAFETY: the buffers outlive `q`; the queue is reset and dropped
    // without popping, so virtio-drivers never touches them again.
    let head = unsafe { q.add(&[&hdr], &mut [&mut data, &mut status]) }.unwrap();
    t.notify(0);
    assert_eq!(
        link.with_device(|d| d.in_flight()),
        1,
        "the device holds it"
    );

    // The data buffer's driver address: descriptor head + 1 (direct chain).
    let (desc, _, _) = link.side().core().queues()[0].addresses();
    let data_addr = read_u64(&link, desc + 16 * (u64::from(head) + 1));
    let at = link.arena().offset_of(data_addr);
    let mut before = [0u8; SECTOR];
    link.arena().read(at, &mut before);
    assert_eq!(before, [POISON; SECTOR], "the device has not written yet");

    t.queue_unset(0); // RESET_VQUEUE, accepted and answered.
    assert!(!t.queue_used(0));
    link.poll(); // The device completes what it holds.

    let mut after = [0u8; SECTOR];
    link.arena().read(at, &mut after);
    // The device dropped the chain when told of the reset: nothing was
    // completed late and nothing was written.
    assert_eq!(link.with_device(|d| d.stats().stale_chains), 0);
    assert_eq!(link.with_device(|d| d.in_flight()), 0);
    assert_eq!(link.with_device(|d| d.stats().dropped_by_reset), 1);
    assert!(
        after == before,
        "the device wrote into a buffer of a queue the driver had already reset \
         (it now holds sector 0: {})",
        after == seed[..]
    );
}
