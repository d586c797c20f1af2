//! Packed ring: the same API as split, wrap counters, out-of-order
//! completion, indirect tables, event suppression.

use super::Arena;
use crate::GuestMemory;
use crate::mock::MockPackedQueue;
use crate::queue::Queue;
use crate::spec::features::{EVENT_IDX, INDIRECT_DESC, RING_PACKED, VERSION_1};
use crate::spec::ring::{EVENT_FLAGS_DESC, EVENT_FLAGS_DISABLE, EVENT_FLAGS_ENABLE};

const RING: u64 = 0x1000;
const DATA: u64 = 0x8000;
const PACKED: u64 = VERSION_1 | RING_PACKED | INDIRECT_DESC;

fn setup(
    m: &impl GuestMemory,
    size: u16,
    features: u64,
) -> (Queue, MockPackedQueue<'_, impl GuestMemory>) {
    let drv = MockPackedQueue::new(m, RING, size);
    let (d, a, u) = drv.addresses();
    let mut q = Queue::new(size);
    q.set_desc_table_address(d);
    q.set_avail_ring_address(a);
    q.set_used_ring_address(u);
    q.enable(m, features).unwrap();
    assert!(q.is_packed());
    (q, drv)
}

#[test]
fn packed_chain_read_write_and_used_descriptor() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 8, PACKED);
    m.write(DATA, b"hello, ").unwrap();
    m.write(DATA + 0x100, b"world").unwrap();
    let id = drv.add_chain(&[
        (DATA, 7, false),
        (DATA + 0x100, 5, false),
        (DATA + 0x200, 3, true),
        (DATA + 0x300, 30, true),
    ]);
    let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert_eq!(c.id(), id);
    assert_eq!((c.readable_len(), c.writable_len()), (12, 33));
    let mut got = [0u8; 12];
    c.reader(&m).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello, world");
    c.writer(&m).write_all(b"0123456789").unwrap();
    q.add_used(&m, c, 10).unwrap();
    assert_eq!(drv.pop_used(), Some((id, 10)));
    let mut b = [0u8; 10];
    m.read(DATA + 0x200, &mut b[..3]).unwrap();
    m.read(DATA + 0x300, &mut b[3..]).unwrap();
    assert_eq!(&b, b"0123456789");
    assert_eq!(q.pop_descriptor_chain(&m).unwrap(), None);
}

#[test]
fn packed_wraps_many_times_with_odd_size_and_lists() {
    // Packed sizes need not be powers of two (§2.8.10.1).
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 7, PACKED);
    for round in 0..500u32 {
        let n = (round % 3 + 1) as usize; // lists of 1..=3 descriptors
        let bufs: Vec<_> = (0..n)
            .map(|i| (DATA + 0x100 * i as u64, 8, i + 1 == n))
            .collect();
        let id = drv.add_chain(&bufs);
        let c = q.pop_descriptor_chain(&m).unwrap().expect("available");
        assert_eq!(c.id(), id);
        q.add_used(&m, c, round % 8).unwrap();
        assert_eq!(drv.pop_used(), Some((id, round % 8)), "round {round}");
    }
}

#[test]
fn packed_out_of_order_completion() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 8, PACKED);
    let a = drv.add_chain(&[(DATA, 4, false), (DATA + 0x40, 4, true)]);
    let b = drv.add_chain(&[(DATA + 0x100, 4, true)]);
    let c = drv.add_chain(&[
        (DATA + 0x200, 4, false),
        (DATA + 0x240, 4, false),
        (DATA + 0x280, 4, true),
    ]);
    let ca = q.pop_descriptor_chain(&m).unwrap().unwrap();
    let cb = q.pop_descriptor_chain(&m).unwrap().unwrap();
    let cc = q.pop_descriptor_chain(&m).unwrap().unwrap();
    q.add_used(&m, cc, 1).unwrap();
    q.add_used(&m, ca, 2).unwrap();
    q.add_used(&m, cb, 3).unwrap();
    assert_eq!(drv.pop_used(), Some((c, 1)));
    assert_eq!(drv.pop_used(), Some((a, 2)));
    assert_eq!(drv.pop_used(), Some((b, 3)));
    assert_eq!(drv.pop_used(), None);
    // The ring keeps working after the skips.
    let d = drv.add_chain(&[(DATA, 4, true)]);
    let cd = q.pop_descriptor_chain(&m).unwrap().unwrap();
    q.add_used(&m, cd, 4).unwrap();
    assert_eq!(drv.pop_used(), Some((d, 4)));
}

#[test]
fn packed_indirect() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 4, PACKED);
    m.write(DATA, b"indirect").unwrap();
    let id = drv.add_indirect(0x6000, &[(DATA, 8, false), (DATA + 0x100, 16, true)]);
    let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert_eq!((c.readable_len(), c.writable_len()), (8, 16));
    let mut got = [0u8; 8];
    c.reader(&m).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"indirect");
    q.add_used(&m, c, 16).unwrap();
    assert_eq!(drv.pop_used(), Some((id, 16)));
}

#[test]
fn packed_driver_event_suppression() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = setup(&m, 8, PACKED | EVENT_IDX);
    let mut step = |drv: &mut MockPackedQueue<'_, _>| {
        drv.add_chain(&[(DATA, 4, true)]);
        let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
        q.add_used(&m, c, 0).unwrap();
        drv.pop_used().unwrap();
        q.needs_notification(&m).unwrap()
    };
    drv.set_driver_event(0, EVENT_FLAGS_ENABLE);
    assert!(step(&mut drv));
    drv.set_driver_event(0, EVENT_FLAGS_DISABLE);
    assert!(!step(&mut drv));
    // Ask for an event when slot 3 (wrap 1) is used: used slots so far are
    // 0 and 1; the next step uses 2 (no), the one after uses 3 (yes).
    drv.set_driver_event(3 | 0x8000, EVENT_FLAGS_DESC);
    assert!(!step(&mut drv));
    assert!(step(&mut drv));
    assert!(!step(&mut drv));
}

#[test]
fn packed_device_event_suppression() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, drv) = setup(&m, 8, PACKED | EVENT_IDX);
    q.disable_notification(&m).unwrap();
    assert_eq!(drv.device_event().1, EVENT_FLAGS_DISABLE);
    assert!(!q.enable_notification(&m).unwrap());
    assert_eq!(drv.device_event(), (0x8000, EVENT_FLAGS_DESC));

    let mut drv = drv;
    drv.add_chain(&[(DATA, 4, true)]);
    assert!(q.enable_notification(&m).unwrap(), "work already waiting");
}
