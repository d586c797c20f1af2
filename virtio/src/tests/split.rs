//! Split ring: chains of every shape, readers and writers across
//! descriptor boundaries, used ring contents, notification decisions.

use super::{ALL_RING_FEATURES, Arena};
use crate::GuestMemory;
use crate::mock::MockSplitQueue;
use crate::queue::Queue;
use crate::spec::features::{EVENT_IDX, INDIRECT_DESC, VERSION_1};
use crate::spec::ring::{AVAIL_F_NO_INTERRUPT, USED_F_NO_NOTIFY};

const RING: u64 = 0x1000;
const DATA: u64 = 0x8000;

fn setup(
    m: &impl GuestMemory,
    size: u16,
    features: u64,
) -> (Queue, MockSplitQueue<'_, impl GuestMemory>) {
    let drv = MockSplitQueue::new(m, RING, size);
    let (d, a, u) = drv.addresses();
    let mut q = Queue::new(size);
    q.set_desc_table_address(d);
    q.set_avail_ring_address(a);
    q.set_used_ring_address(u);
    q.enable(m, features).unwrap();
    (q, drv)
}

#[test]
fn chains_of_any_shape_read_and_write_across_boundaries() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 16, ALL_RING_FEATURES);
    // Request bytes 0..40 spread over 3 readable descriptors of odd sizes,
    // reply space spread over 3 writable ones (one empty).
    let req: Vec<u8> = (0..40).collect();
    m.write(DATA, &req[..7]).unwrap();
    m.write(DATA + 0x100, &req[7..8]).unwrap();
    m.write(DATA + 0x200, &req[8..]).unwrap();
    let head = drv.add_chain(&[
        (DATA, 7, false),
        (DATA + 0x100, 1, false),
        (DATA + 0x200, 32, false),
        (DATA + 0x300, 5, true),
        (DATA + 0x400, 0, true),
        (DATA + 0x500, 64, true),
    ]);
    let chain = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert_eq!(chain.id(), head);
    assert_eq!(chain.readable_len(), 40);
    assert_eq!(chain.writable_len(), 69);

    let mut r = chain.reader(&m);
    let mut got = [0u8; 40];
    let mut small = [0u8; 3];
    assert_eq!(r.read(&mut small).unwrap(), 3);
    got[..3].copy_from_slice(&small);
    r.read_exact(&mut got[3..]).unwrap();
    assert_eq!(&got[..], &req[..]);
    assert_eq!(r.remaining(), 0);
    assert_eq!(r.read(&mut small).unwrap(), 0, "end of the readable part");

    let mut w = chain.writer(&m);
    let reply: Vec<u8> = (100..150).collect();
    w.write_all(&reply).unwrap();
    assert_eq!(w.written(), 50);
    assert_eq!(w.remaining(), 19);
    let mut back = [0u8; 50];
    m.read(DATA + 0x300, &mut back[..5]).unwrap();
    m.read(DATA + 0x500, &mut back[5..]).unwrap();
    assert_eq!(&back[..], &reply[..]);
    let written = w.written();
    q.add_used(&m, chain, written).unwrap();
    assert_eq!(drv.pop_used(), Some((u32::from(head), 50)));
}

#[test]
fn write_all_refuses_before_writing_when_short() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 4, ALL_RING_FEATURES);
    drv.add_chain(&[(DATA, 4, false), (DATA + 0x100, 8, true)]);
    let chain = q.pop_descriptor_chain(&m).unwrap().unwrap();
    let mut w = chain.writer(&m);
    assert_eq!(
        w.write_all(&[1; 9]),
        Err(crate::ChainError::Short {
            needed: 9,
            available: 8
        })
    );
    assert_eq!(w.written(), 0);
    let mut r = chain.reader(&m);
    let mut b = [0u8; 5];
    assert_eq!(
        r.read_exact(&mut b),
        Err(crate::ChainError::Short {
            needed: 5,
            available: 4
        })
    );
}

#[test]
fn used_length_is_clamped_to_writable_space() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 4, ALL_RING_FEATURES);
    drv.add_chain(&[(DATA, 4, false), (DATA + 0x100, 8, true)]);
    let chain = q.pop_descriptor_chain(&m).unwrap().unwrap();
    q.add_used(&m, chain, 1000).unwrap();
    assert_eq!(drv.pop_used(), Some((0, 8)));
}

#[test]
fn indirect_chain_with_direct_prefix() {
    // §2.7.5.3.2: zero or more direct descriptors, then one indirect.
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, drv) = setup(&m, 8, ALL_RING_FEATURES);
    m.write(DATA, b"abcd").unwrap();
    m.write(DATA + 0x100, b"efgh").unwrap();
    // Indirect table at 0x6000: one readable, one writable.
    let t = 0x6000u64;
    let put = |at: u64, addr: u64, len: u32, flags: u16, next: u16| {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..].copy_from_slice(&next.to_le_bytes());
        m.write(at, &b).unwrap();
    };
    put(t, DATA + 0x100, 4, 1, 1);
    put(t + 16, DATA + 0x200, 16, 2, 0);
    drv.write_desc(0, DATA, 4, 1, 1); // NEXT
    drv.write_desc(1, t, 32, 4, 0); // INDIRECT
    let mut drv = drv;
    drv.publish(0);
    let chain = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert_eq!((chain.readable_len(), chain.writable_len()), (8, 16));
    let mut got = [0u8; 8];
    chain.reader(&m).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"abcdefgh");
    chain.writer(&m).write_all(b"0123456789abcdef").unwrap();
    q.add_used(&m, chain, 16).unwrap();
    assert_eq!(drv.pop_used(), Some((0, 16)));
}

#[test]
fn many_in_flight_completed_out_of_order() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 8, ALL_RING_FEATURES);
    let mut heads = Vec::new();
    for i in 0..4u64 {
        heads.push(drv.add_chain(&[
            (DATA + i * 0x100, 4, false),
            (DATA + i * 0x100 + 0x80, 4, true),
        ]));
    }
    let mut chains = Vec::new();
    while let Some(c) = q.pop_descriptor_chain(&m).unwrap() {
        chains.push(c);
    }
    assert_eq!(chains.len(), 4);
    // Complete in reverse.
    while let Some(c) = chains.pop() {
        q.add_used(&m, c, 4).unwrap();
    }
    let done: Vec<u32> = core::iter::from_fn(|| drv.pop_used().map(|x| x.0)).collect();
    let want: Vec<u32> = heads.iter().rev().map(|&h| u32::from(h)).collect();
    assert_eq!(done, want);
}

#[test]
fn indices_wrap_past_u16() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 2, ALL_RING_FEATURES);
    // Resume just below the wrap point, as vhost-user's SET_VRING_BASE does.
    drv.resume_at(65_500);
    q.set_avail_base(65_500);
    for i in 0..100u32 {
        drv.add_chain(&[(DATA, 4, true)]);
        let c = q.pop_descriptor_chain(&m).unwrap().expect("chain");
        q.add_used(&m, c, i % 5).unwrap();
        assert_eq!(drv.pop_used().map(|x| x.1), Some(i % 5));
    }
    assert_eq!(drv.used_idx(), 64, "65_500 + 100 wrapped past 65_535");
}

#[test]
fn flag_based_suppression() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 4, VERSION_1 | INDIRECT_DESC);
    drv.add_chain(&[(DATA, 4, true)]);
    let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert!(!q.needs_notification(&m).unwrap(), "nothing used yet");
    q.add_used(&m, c, 0).unwrap();
    assert!(q.needs_notification(&m).unwrap());
    assert!(!q.needs_notification(&m).unwrap(), "already decided");

    drv.set_avail_flags(AVAIL_F_NO_INTERRUPT);
    drv.add_chain(&[(DATA, 4, true)]);
    let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
    q.add_used(&m, c, 0).unwrap();
    assert!(!q.needs_notification(&m).unwrap(), "driver suppressed");

    // Device side: disable/enable write used.flags.
    q.disable_notification(&m).unwrap();
    assert_eq!(drv.used_flags(), USED_F_NO_NOTIFY);
    assert!(!q.enable_notification(&m).unwrap());
    assert_eq!(drv.used_flags(), 0);
    drv.add_chain(&[(DATA, 4, true)]);
    assert!(q.enable_notification(&m).unwrap(), "work already waiting");
}

#[test]
fn event_idx_suppression() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 8, VERSION_1 | EVENT_IDX);
    // Driver wants an interrupt only when used.idx passes 2 (used_event=2
    // means: notify when the entry at index 2 is written).
    drv.set_used_event(2);
    for _ in 0..4 {
        drv.add_chain(&[(DATA, 4, true)]);
    }
    let mut notified = Vec::new();
    for _ in 0..4 {
        let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
        q.add_used(&m, c, 0).unwrap();
        notified.push(q.needs_notification(&m).unwrap());
    }
    // The first decision always notifies (no previous signal); afterwards
    // only the step that moves used.idx from 2 to 3 crosses used_event.
    assert_eq!(notified, [true, false, true, false]);

    // enable_notification publishes avail_event = next available index.
    assert!(!q.enable_notification(&m).unwrap());
    assert_eq!(drv.avail_event(), 4);
    // Avail-side disable is a no-op with EVENT_IDX.
    q.disable_notification(&m).unwrap();
    assert_eq!(drv.used_flags(), 0);
}

#[test]
fn event_idx_batch_crossing() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 8, VERSION_1 | EVENT_IDX);
    drv.add_chain(&[(DATA, 4, true)]);
    let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
    q.add_used(&m, c, 0).unwrap();
    assert!(q.needs_notification(&m).unwrap());
    // Batch of three completions in one decision; used_event inside the
    // batch window [1, 4) must trigger.
    drv.set_used_event(2);
    for _ in 0..3 {
        drv.add_chain(&[(DATA, 4, true)]);
    }
    for _ in 0..3 {
        let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
        q.add_used(&m, c, 0).unwrap();
    }
    assert!(q.needs_notification(&m).unwrap());
    // used_event behind the window: no notification.
    drv.set_used_event(1);
    drv.add_chain(&[(DATA, 4, true)]);
    let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
    q.add_used(&m, c, 0).unwrap();
    assert!(!q.needs_notification(&m).unwrap());
}

#[test]
fn queue_reset_makes_popped_chains_stale() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 4, ALL_RING_FEATURES);
    drv.add_chain(&[(DATA, 4, true)]);
    let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
    let (d, a, u) = drv.addresses();
    q.reset();
    assert!(!q.ready());
    assert_eq!(q.pop_descriptor_chain(&m), Err(crate::QueueError::NotReady));
    q.set_desc_table_address(d);
    q.set_avail_ring_address(a);
    q.set_used_ring_address(u);
    q.enable(&m, ALL_RING_FEATURES).unwrap();
    assert_eq!(q.add_used(&m, c, 0), Err(crate::QueueError::StaleChain));
    assert_eq!(drv.used_idx(), 0, "nothing written for the stale chain");
}

#[test]
fn enable_checks_size_alignment_and_range() {
    use crate::queue::{Area, QueueConfigError};
    let mut arena = Arena::new(0x4000, 0);
    let m = arena.window();
    let mut q = Queue::new(256);
    q.set_size(0);
    assert_eq!(q.enable(&m, VERSION_1), Err(QueueConfigError::SizeZero));
    q.set_size(512);
    assert_eq!(
        q.enable(&m, VERSION_1),
        Err(QueueConfigError::SizeTooLarge {
            size: 512,
            max: 256
        })
    );
    q.set_size(100);
    assert_eq!(
        q.enable(&m, VERSION_1),
        Err(QueueConfigError::SizeNotPowerOfTwo { size: 100 })
    );
    q.set_size(16);
    q.set_desc_table_address(0x1008);
    assert_eq!(
        q.enable(&m, VERSION_1),
        Err(QueueConfigError::Misaligned {
            area: Area::Descriptors,
            addr: 0x1008
        })
    );
    q.set_desc_table_address(0x1000);
    q.set_avail_ring_address(0x2001);
    assert!(matches!(
        q.enable(&m, VERSION_1),
        Err(QueueConfigError::Misaligned {
            area: Area::Driver,
            ..
        })
    ));
    q.set_avail_ring_address(0x2000);
    q.set_used_ring_address(0x3ffc);
    assert!(matches!(
        q.enable(&m, VERSION_1),
        Err(QueueConfigError::OutOfRange {
            area: Area::Device,
            ..
        })
    ));
    q.set_used_ring_address(0x3000);
    q.enable(&m, VERSION_1).unwrap();
    assert!(q.ready());
}
