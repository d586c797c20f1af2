//! The hostile-ring table: one test per malformed shape. Each asserts the
//! specific error, and then either that the bad buffer came back to the
//! driver with used length 0 and the queue still serves a good chain, or
//! that the error is fatal (`needs_reset`).

use super::{ALL_RING_FEATURES, Arena};
use crate::chain::{CAPTURED, ChainError};
use crate::memory::{FixedWindow, GuestMemory, MemoryError};
use crate::mock::{MockPackedQueue, MockSplitQueue};
use crate::queue::{Queue, QueueError};
use crate::spec::desc::{AVAIL, INDIRECT, NEXT, USED, WRITE};
use crate::spec::features::{INDIRECT_DESC, RING_PACKED, VERSION_1};

const RING: u64 = 0x1000;
const DATA: u64 = 0x8000;
const TABLE: u64 = 0x6000;
const SIZE: u16 = 8;
/// Descriptor index the follow-up good chain uses.
const SPARE: u16 = SIZE - 1;

fn split_queue<'m, M: GuestMemory>(m: &'m M, features: u64) -> (Queue, MockSplitQueue<'m, M>) {
    let drv = MockSplitQueue::new(m, RING, SIZE);
    let (d, a, u) = drv.addresses();
    let mut q = Queue::new(SIZE);
    q.set_desc_table_address(d);
    q.set_avail_ring_address(a);
    q.set_used_ring_address(u);
    q.enable(m, features).unwrap();
    (q, drv)
}

fn put(m: &impl GuestMemory, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&addr.to_le_bytes());
    b[8..12].copy_from_slice(&len.to_le_bytes());
    b[12..14].copy_from_slice(&flags.to_le_bytes());
    b[14..].copy_from_slice(&next.to_le_bytes());
    m.write(at, &b).unwrap();
}

/// Publishes a bad split chain written by `build` (head 0), checks the
/// error and the completion, then proves the queue still works.
fn split_recoverable(
    features: u64,
    build: impl FnOnce(&FixedWindow<'_>, &MockSplitQueue<'_, FixedWindow<'_>>),
    want: ChainError,
) {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = split_queue(&m, features);
    build(&m, &drv);
    drv.publish(0);
    assert_eq!(
        q.pop_descriptor_chain(&m),
        Err(QueueError::InvalidChain { id: 0, error: want })
    );
    assert_eq!(q.pop_descriptor_chain(&m), Ok(None));
    assert_eq!(
        drv.pop_used(),
        Some((0, 0)),
        "the bad buffer is returned with length 0"
    );
    assert!(q.needs_notification(&m).unwrap(), "and the driver is told");
    // A good chain afterwards is served normally.
    drv.write_desc(SPARE, DATA, 4, WRITE, 0);
    drv.publish(SPARE);
    let c = q
        .pop_descriptor_chain(&m)
        .unwrap()
        .expect("queue still usable");
    c.writer(&m).write_all(&[1, 2, 3, 4]).unwrap();
    q.add_used(&m, c, 4).unwrap();
    assert_eq!(drv.pop_used(), Some((u32::from(SPARE), 4)));
}

#[test]
fn split_next_out_of_range() {
    split_recoverable(
        ALL_RING_FEATURES,
        |_, d| d.write_desc(0, DATA, 4, NEXT, SIZE),
        ChainError::NextOutOfRange { next: SIZE },
    );
}

#[test]
fn split_loop() {
    split_recoverable(
        ALL_RING_FEATURES,
        |_, d| {
            d.write_desc(0, DATA, 4, NEXT, 1);
            d.write_desc(1, DATA, 4, NEXT, 0);
        },
        ChainError::TooLong,
    );
}

#[test]
fn split_self_loop() {
    split_recoverable(
        ALL_RING_FEATURES,
        |_, d| d.write_desc(0, DATA, 4, NEXT, 0),
        ChainError::TooLong,
    );
}

#[test]
fn split_readable_after_writable() {
    split_recoverable(
        ALL_RING_FEATURES,
        |_, d| {
            d.write_desc(0, DATA, 4, WRITE | NEXT, 1);
            d.write_desc(1, DATA, 4, 0, 0);
        },
        ChainError::ReadableAfterWritable,
    );
}

#[test]
fn split_buffer_out_of_range() {
    split_recoverable(
        ALL_RING_FEATURES,
        |_, d| d.write_desc(0, 0xfff0, 0x20, 0, 0),
        ChainError::Memory(MemoryError::OutOfRange {
            addr: 0xfff0,
            len: 0x20,
        }),
    );
}

#[test]
fn split_buffer_wraps_address_space() {
    split_recoverable(
        ALL_RING_FEATURES,
        |_, d| d.write_desc(0, u64::MAX - 1, 4, 0, 0),
        ChainError::Memory(MemoryError::Wraps {
            addr: u64::MAX - 1,
            len: 4,
        }),
    );
}

#[test]
fn split_indirect_not_negotiated() {
    split_recoverable(
        VERSION_1,
        |m, d| {
            put(m, TABLE, DATA, 4, 0, 0);
            d.write_desc(0, TABLE, 16, INDIRECT, 0);
        },
        ChainError::IndirectNotNegotiated,
    );
}

#[test]
fn split_indirect_with_next() {
    split_recoverable(
        ALL_RING_FEATURES,
        |m, d| {
            put(m, TABLE, DATA, 4, 0, 0);
            d.write_desc(0, TABLE, 16, INDIRECT | NEXT, 1);
            d.write_desc(1, DATA, 4, WRITE, 0);
        },
        ChainError::IndirectWithNext,
    );
}

#[test]
fn split_nested_indirect() {
    split_recoverable(
        ALL_RING_FEATURES,
        |m, d| {
            put(m, TABLE, TABLE + 0x100, 16, INDIRECT, 0);
            put(m, TABLE + 0x100, DATA, 4, 0, 0);
            d.write_desc(0, TABLE, 16, INDIRECT, 0);
        },
        ChainError::NestedIndirect,
    );
}

#[test]
fn split_indirect_table_empty() {
    split_recoverable(
        ALL_RING_FEATURES,
        |_, d| d.write_desc(0, TABLE, 0, INDIRECT, 0),
        ChainError::IndirectTableSize { len: 0 },
    );
}

#[test]
fn split_indirect_table_not_multiple_of_16() {
    split_recoverable(
        ALL_RING_FEATURES,
        |_, d| d.write_desc(0, TABLE, 20, INDIRECT, 0),
        ChainError::IndirectTableSize { len: 20 },
    );
}

#[test]
fn split_indirect_table_larger_than_queue() {
    split_recoverable(
        ALL_RING_FEATURES,
        |_, d| d.write_desc(0, TABLE, 16 * (u32::from(SIZE) + 1), INDIRECT, 0),
        ChainError::IndirectTableTooLarge {
            entries: u32::from(SIZE) + 1,
        },
    );
}

#[test]
fn split_indirect_table_out_of_range() {
    split_recoverable(
        ALL_RING_FEATURES,
        |_, d| d.write_desc(0, 0xfff0, 32, INDIRECT, 0),
        ChainError::Memory(MemoryError::OutOfRange {
            addr: 0xfff0,
            len: 32,
        }),
    );
}

#[test]
fn split_indirect_next_out_of_range() {
    split_recoverable(
        ALL_RING_FEATURES,
        |m, d| {
            put(m, TABLE, DATA, 4, NEXT, 2); // table has 2 entries
            put(m, TABLE + 16, DATA, 4, WRITE, 0);
            d.write_desc(0, TABLE, 32, INDIRECT, 0);
        },
        ChainError::NextOutOfRange { next: 2 },
    );
}

#[test]
fn split_indirect_loop() {
    split_recoverable(
        ALL_RING_FEATURES,
        |m, d| {
            put(m, TABLE, DATA, 4, NEXT, 1);
            put(m, TABLE + 16, DATA, 4, NEXT, 0);
            d.write_desc(0, TABLE, 32, INDIRECT, 0);
        },
        ChainError::TooLong,
    );
}

/// A memory view that claims a huge range exists (for length accounting
/// without 4 GiB of RAM); reads and writes there fail.
struct Sparse<'a>(&'a FixedWindow<'a>);
const HUGE: u64 = 0x1_0000_0000;
impl GuestMemory for Sparse<'_> {
    fn read(&self, a: u64, b: &mut [u8]) -> Result<(), MemoryError> {
        self.0.read(a, b)
    }
    fn write(&self, a: u64, d: &[u8]) -> Result<(), MemoryError> {
        self.0.write(a, d)
    }
    fn load_u16_acquire(&self, a: u64) -> Result<u16, MemoryError> {
        self.0.load_u16_acquire(a)
    }
    fn store_u16_release(&self, a: u64, v: u16) -> Result<(), MemoryError> {
        self.0.store_u16_release(a, v)
    }
    fn check_range(&self, a: u64, l: u64, al: u64) -> Result<(), MemoryError> {
        if a >= HUGE && a.checked_add(l).is_some_and(|e| e <= 4 * HUGE) {
            return Ok(());
        }
        self.0.check_range(a, l, al)
    }
}

#[test]
fn split_total_length_over_4g() {
    let mut arena = Arena::new(0x10000, 0);
    let w = arena.window();
    let m = Sparse(&w);
    let (mut q, mut drv) = split_queue(&m, ALL_RING_FEATURES);
    drv.write_desc(0, HUGE, 0x8000_0000, NEXT, 1);
    drv.write_desc(1, HUGE, 0x8000_0000, 0, 0);
    drv.publish(0);
    assert_eq!(
        q.pop_descriptor_chain(&m),
        Err(QueueError::InvalidChain {
            id: 0,
            error: ChainError::TotalLengthOverflow
        })
    );
    assert_eq!(drv.pop_used(), Some((0, 0)));
    // Exactly 2^32 - 1 is allowed.
    drv.write_desc(2, HUGE, 0x8000_0000, NEXT, 3);
    drv.write_desc(3, HUGE, 0x7fff_ffff, 0, 0);
    drv.publish(2);
    let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert_eq!(c.readable_len(), u32::MAX);
}

#[test]
fn split_head_out_of_range_is_fatal() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = split_queue(&m, ALL_RING_FEATURES);
    drv.publish(SIZE);
    let e = q.pop_descriptor_chain(&m).unwrap_err();
    assert_eq!(e, QueueError::HeadOutOfRange { head: SIZE });
    assert!(e.needs_reset());
    assert_eq!(drv.used_idx(), 0);
}

#[test]
fn split_avail_index_too_far_ahead_is_fatal() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, drv) = split_queue(&m, ALL_RING_FEATURES);
    drv.set_avail_idx(SIZE + 1);
    let e = q.pop_descriptor_chain(&m).unwrap_err();
    assert_eq!(
        e,
        QueueError::AvailIndexTooFarAhead {
            avail_idx: SIZE + 1,
            next_avail: 0
        }
    );
    assert!(e.needs_reset());
    // Exactly the queue size ahead is legal.
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = split_queue(&m, ALL_RING_FEATURES);
    for i in 0..SIZE {
        drv.write_desc(i, DATA, 4, 0, 0);
        drv.publish(i);
    }
    for _ in 0..SIZE {
        assert!(q.pop_descriptor_chain(&m).unwrap().is_some());
    }
}

#[test]
fn ring_memory_withdrawn_is_fatal() {
    use crate::memory::RegionTable;
    use core::ptr::NonNull;
    let mut buf = vec![0u128; 0x1000];
    let mut t: RegionTable<'_, 2> = RegionTable::new(crate::Coherent);
    // SAFETY: `buf` outlives the table and is only used through it.
    unsafe {
        t.add(0, NonNull::new(buf.as_mut_ptr().cast()).unwrap(), 0x10000)
            .unwrap();
    }
    let (mut q, mut drv) = {
        let drv = MockSplitQueue::new(&t, RING, SIZE);
        let (d, a, u) = drv.addresses();
        let mut q = Queue::new(SIZE);
        q.set_desc_table_address(d);
        q.set_avail_ring_address(a);
        q.set_used_ring_address(u);
        q.enable(&t, ALL_RING_FEATURES).unwrap();
        (q, drv)
    };
    drv.add_chain(&[(DATA, 4, true)]);
    t.remove(0);
    let e = q.pop_descriptor_chain(&t).unwrap_err();
    assert!(matches!(
        e,
        QueueError::Ring(MemoryError::OutOfRange { .. })
    ));
    assert!(e.needs_reset());
}

#[test]
fn captured_chain_ignores_rewrites_after_pop() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = split_queue(&m, ALL_RING_FEATURES);
    m.write(DATA, &[7; 4]).unwrap();
    drv.write_desc(0, DATA, 4, NEXT, 1);
    drv.write_desc(1, DATA + 0x100, 8, WRITE, 0);
    drv.publish(0);
    let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert!(c.is_captured());
    // The driver breaks the link, grows a buffer and points the writable
    // one elsewhere after handing the chain over: the device keeps using
    // what it validated.
    drv.write_desc(0, DATA, 4000, NEXT, 200);
    drv.write_desc(1, DATA + 0x800, 8, NEXT | WRITE, 0);
    let mut r = c.reader(&m);
    let mut b = [0u8; 16];
    assert_eq!(r.read(&mut b), Ok(4));
    assert_eq!(&b[..4], &[7; 4]);
    let mut w = c.writer(&m);
    assert_eq!(w.write(&[9; 64]), Ok(8));
    let mut back = [0u8; 8];
    m.read(DATA + 0x100, &mut back).unwrap();
    assert_eq!(back, [9; 8]);
    m.read(DATA + 0x800, &mut back).unwrap();
    assert_eq!(back, [0; 8]);
    q.add_used(&m, c, 8).unwrap();
    assert_eq!(drv.pop_used(), Some((0, 8)));
}

#[test]
fn long_chain_rewritten_after_pop_fails_cleanly() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = split_queue(&m, ALL_RING_FEATURES);
    // One element more than the device captures: it walks the ring again.
    let n = CAPTURED as u16 + 1;
    for i in 0..n {
        let last = i + 1 == n;
        let flags = if last { WRITE } else { NEXT };
        drv.write_desc(i, DATA + 0x100 * u64::from(i), 4, flags, i + 1);
    }
    drv.publish(0);
    let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert!(!c.is_captured());
    // The driver breaks the link after handing the chain over.
    drv.write_desc(0, DATA, 4, NEXT, 200);
    let mut w = c.writer(&m);
    assert_eq!(
        w.write(&[0; 4]),
        Err(ChainError::NextOutOfRange { next: 200 })
    );
    // ...or grows a buffer: the reader stops at the validated length.
    drv.write_desc(0, DATA, 4000, NEXT, 1);
    let mut r = c.reader(&m);
    let mut b = [0u8; 64];
    assert_eq!(r.read(&mut b), Ok(4 * usize::from(n - 1)));
    // ...or turns the chain into a loop: still bounded.
    drv.write_desc(n - 1, DATA, 4, NEXT | WRITE, 0);
    let mut w = c.writer(&m);
    assert!(w.write(&[0; 64]).is_err());
    // The chain can still be returned.
    q.add_used(&m, c, 0).unwrap();
    assert_eq!(drv.pop_used(), Some((0, 0)));
}

// ---- packed ----

fn packed_queue<'m, M: GuestMemory>(m: &'m M) -> (Queue, MockPackedQueue<'m, M>) {
    let drv = MockPackedQueue::new(m, RING, SIZE);
    let (d, a, u) = drv.addresses();
    let mut q = Queue::new(SIZE);
    q.set_desc_table_address(d);
    q.set_avail_ring_address(a);
    q.set_used_ring_address(u);
    q.enable(m, VERSION_1 | RING_PACKED | INDIRECT_DESC)
        .unwrap();
    (q, drv)
}

fn packed_recoverable(bufs: &[(u64, u32, bool)], extra: &[u16], want: ChainError) {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = packed_queue(&m);
    put(&m, TABLE, DATA, 4, 0, 0);
    let id = drv.add_chain_with(bufs, extra);
    assert_eq!(
        q.pop_descriptor_chain(&m),
        Err(QueueError::InvalidChain { id, error: want })
    );
    assert_eq!(drv.pop_used(), Some((id, 0)));
    let good = drv.add_chain(&[(DATA, 4, true)]);
    let c = q
        .pop_descriptor_chain(&m)
        .unwrap()
        .expect("queue still usable");
    q.add_used(&m, c, 4).unwrap();
    assert_eq!(drv.pop_used(), Some((good, 4)));
}

#[test]
fn packed_readable_after_writable() {
    packed_recoverable(
        &[(DATA, 4, true), (DATA, 4, false)],
        &[],
        ChainError::ReadableAfterWritable,
    );
}

#[test]
fn packed_indirect_with_next() {
    packed_recoverable(
        &[(TABLE, 16, false), (DATA, 4, true)],
        &[INDIRECT],
        ChainError::IndirectWithNext,
    );
}

#[test]
fn packed_indirect_inside_list() {
    packed_recoverable(
        &[(DATA, 4, false), (TABLE, 16, false)],
        &[0, INDIRECT],
        ChainError::IndirectInList,
    );
}

#[test]
fn packed_indirect_table_bad_size() {
    packed_recoverable(
        &[(TABLE, 24, false)],
        &[INDIRECT],
        ChainError::IndirectTableSize { len: 24 },
    );
}

#[test]
fn packed_buffer_out_of_range() {
    packed_recoverable(
        &[(0x20000, 4, false)],
        &[],
        ChainError::Memory(MemoryError::OutOfRange {
            addr: 0x20000,
            len: 4,
        }),
    );
}

#[test]
fn packed_flags_in_indirect_table_are_ignored() {
    // §2.8.7: in a packed indirect table only WRITE counts; NEXT and
    // INDIRECT there are reserved and ignored by the device.
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = packed_queue(&m);
    let id = drv.add_indirect(TABLE, &[(DATA, 4, false), (DATA + 0x10, 4, true)]);
    // Set reserved flags in the table entries.
    m.write(TABLE + 14, &(INDIRECT | NEXT).to_le_bytes())
        .unwrap();
    m.write(TABLE + 16 + 14, &(WRITE | INDIRECT).to_le_bytes())
        .unwrap();
    let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert_eq!((c.readable_len(), c.writable_len()), (4, 4));
    q.add_used(&m, c, 4).unwrap();
    assert_eq!(drv.pop_used(), Some((id, 4)));
}

#[test]
fn packed_list_member_not_available_is_fatal() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, drv) = packed_queue(&m);
    // Slot 0 available with NEXT; slot 1 still zero (not available).
    drv.write_desc(0, DATA, 4, 0, AVAIL | NEXT);
    let e = q.pop_descriptor_chain(&m).unwrap_err();
    assert_eq!(e, QueueError::ListNotAvailable { slot: 1 });
    assert!(e.needs_reset());
}

#[test]
fn packed_list_without_end_is_fatal() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, drv) = packed_queue(&m);
    for s in 1..SIZE {
        drv.write_desc(s, DATA, 4, 0, AVAIL | NEXT);
    }
    drv.write_desc(0, DATA, 4, 0, AVAIL | NEXT);
    let e = q.pop_descriptor_chain(&m).unwrap_err();
    assert_eq!(e, QueueError::ListUnterminated);
    assert!(e.needs_reset());
}

#[test]
fn packed_used_looking_descriptor_is_not_available() {
    // AVAIL == USED marks a used descriptor: the device must not take it.
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, drv) = packed_queue(&m);
    drv.write_desc(0, DATA, 4, 0, AVAIL | USED);
    assert_eq!(q.pop_descriptor_chain(&m), Ok(None));
}

/// Out-of-order completion on a packed ring: the used descriptor for a
/// later list lands in the ring slot of a long indirect list the device
/// still holds (virtio v1.2 §2.8.6). The held list must still read and
/// write its own buffers, and never the driver's descriptor table.
#[test]
fn packed_long_indirect_list_survives_out_of_order_completion() {
    const TABLE: u64 = DATA + 0x2000;
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = packed_queue(&m);
    let n = CAPTURED as u64 + 1;
    let bufs: std::vec::Vec<(u64, u32, bool)> =
        (0..n).map(|i| (DATA + 0x100 * i, 0x40, i >= 2)).collect();
    m.write(DATA, &[5; 0x40]).unwrap();
    m.write(DATA + 0x100, &[5; 0x40]).unwrap();
    drv.add_indirect(TABLE, &bufs);
    drv.add_chain(&[(DATA + 0x1000, 0x10, true)]);
    let a = q.pop_descriptor_chain(&m).unwrap().unwrap();
    let b = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert!(!a.is_captured());
    let mut table_before = [0u8; 0x60];
    m.read(TABLE, &mut table_before).unwrap();
    // B completes first: its used descriptor overwrites A's ring slot.
    q.add_used(&m, b, 0x10).unwrap();
    let mut r = a.reader(&m);
    let mut got = [0u8; 0x80];
    r.read_exact(&mut got).unwrap();
    assert_eq!(got, [5; 0x80]);
    let mut w = a.writer(&m);
    w.write_all(&[0xEE; 0xC0]).unwrap();
    let mut table_after = [0u8; 0x60];
    m.read(TABLE, &mut table_after).unwrap();
    assert_eq!(
        table_before, table_after,
        "the descriptor table is untouched"
    );
    let mut back = [0u8; 0x40];
    m.read(DATA + 0x400, &mut back).unwrap();
    assert_eq!(back, [0xEE; 0x40]);
    q.add_used(&m, a, 0xC0).unwrap();
}

/// A direct packed list of more than `CAPTURED` buffers, held while a
/// later list completes out of order. An honest driver does exactly this
/// (virtio v1.2 §2.8.6: the device may write used descriptors into slots
/// of buffers it still holds): queue of 8, list A of 5 buffers, list B of
/// 1; B completes first, its used descriptor lands in A's first slot. A
/// must still read and write its own buffers.
#[test]
fn packed_long_direct_list_survives_out_of_order_completion() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = packed_queue(&m);
    let n = CAPTURED as u64 + 1;
    let bufs: std::vec::Vec<(u64, u32, bool)> =
        (0..n).map(|i| (DATA + 0x100 * i, 0x40, i >= 2)).collect();
    m.write(DATA, &[5; 0x40]).unwrap();
    m.write(DATA + 0x100, &[6; 0x40]).unwrap();
    let ida = drv.add_chain(&bufs);
    let idb = drv.add_chain(&[(DATA + 0x1000, 0x10, true)]);
    let a = q.pop_descriptor_chain(&m).unwrap().unwrap();
    let b = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert_eq!((a.readable_len(), a.writable_len()), (0x80, 0xC0));
    // B completes first: its used descriptor overwrites A's first slot.
    q.add_used(&m, b, 0x10).unwrap();
    assert_eq!(drv.pop_used(), Some((idb, 0x10)));
    let mut got = [0u8; 0x80];
    q.reader(&a, &m).read_exact(&mut got).unwrap();
    assert_eq!(got[..0x40], [5; 0x40]);
    assert_eq!(got[0x40..], [6; 0x40]);
    q.writer(&a, &m).write_all(&[0xEE; 0xC0]).unwrap();
    for i in 2..n {
        let mut back = [0u8; 0x40];
        m.read(DATA + 0x100 * i, &mut back).unwrap();
        assert_eq!(back, [0xEE; 0x40], "buffer {i}");
    }
    q.add_used(&m, a, 0xC0).unwrap();
    assert_eq!(drv.pop_used(), Some((ida, 0xC0)));
}

/// As above, and the driver then reuses the slots B's completion freed:
/// its next list wraps round into A's first slots. A's descriptors are
/// gone from the ring; A must still reach exactly its own buffers, and the
/// new list is served too.
#[test]
fn packed_long_direct_list_survives_slot_reuse_by_the_driver() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let (mut q, mut drv) = packed_queue(&m);
    let a_bufs: std::vec::Vec<(u64, u32, bool)> =
        (0..5).map(|i| (DATA + 0x100 * i, 0x40, i >= 2)).collect();
    m.write(DATA, &[5; 0x40]).unwrap();
    m.write(DATA + 0x100, &[6; 0x40]).unwrap();
    let ida = drv.add_chain(&a_bufs);
    let idb = drv.add_chain(&[(DATA + 0x1000, 0x10, true)]);
    let a = q.pop_descriptor_chain(&m).unwrap().unwrap();
    let b = q.pop_descriptor_chain(&m).unwrap().unwrap();
    q.add_used(&m, b, 0).unwrap();
    assert_eq!(drv.pop_used(), Some((idb, 0)));
    // Slots 6, 7 and 0: slot 0 was A's first descriptor.
    m.write(DATA + 0x2000, &[7; 0x20]).unwrap();
    let idc = drv.add_chain(&[
        (DATA + 0x2000, 0x20, false),
        (DATA + 0x2100, 0x20, true),
        (DATA + 0x2200, 0x20, true),
    ]);
    let c = q.pop_descriptor_chain(&m).unwrap().unwrap();
    let mut got = [0u8; 0x80];
    q.reader(&a, &m).read_exact(&mut got).unwrap();
    assert_eq!(got[..0x40], [5; 0x40]);
    assert_eq!(got[0x40..], [6; 0x40]);
    q.writer(&a, &m).write_all(&[0xEE; 0xC0]).unwrap();
    let mut cin = [0u8; 0x20];
    q.reader(&c, &m).read_exact(&mut cin).unwrap();
    assert_eq!(cin, [7; 0x20]);
    q.writer(&c, &m).write_all(&[0xCC; 0x40]).unwrap();
    for (at, want) in [
        (DATA + 0x200, 0xEE),
        (DATA + 0x300, 0xEE),
        (DATA + 0x400, 0xEE),
        (DATA + 0x2100, 0xCC),
        (DATA + 0x2200, 0xCC),
    ] {
        let mut back = [0u8; 0x20];
        m.read(at, &mut back).unwrap();
        assert_eq!(back, [want; 0x20], "buffer at {at:#x}");
    }
    q.add_used(&m, c, 0x40).unwrap();
    q.add_used(&m, a, 0xC0).unwrap();
    assert_eq!(drv.pop_used(), Some((idc, 0x40)));
    assert_eq!(drv.pop_used(), Some((ida, 0xC0)));
}

/// The store of held lists is bounded: a long list that does not fit is
/// completed with used length 0 and the queue goes on; returning a held
/// list frees its room. A held list read without its queue, or after a
/// reset, fails instead of reading the ring.
#[test]
fn packed_held_lists_store_is_bounded() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let drv = MockPackedQueue::new(&m, RING, SIZE);
    let (d, a, u) = drv.addresses();
    let mut drv = drv;
    let mut q = Queue::<5>::with_store(SIZE);
    q.set_desc_table_address(d);
    q.set_avail_ring_address(a);
    q.set_used_ring_address(u);
    q.enable(&m, VERSION_1 | RING_PACKED).unwrap();
    let five: std::vec::Vec<(u64, u32, bool)> =
        (0..5).map(|i| (DATA + 0x100 * i, 0x10, true)).collect();
    let ida = drv.add_chain(&five);
    let a = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert!(a.is_held_by_queue() && a.is_captured());
    assert_eq!(
        a.reader(&m).read(&mut [0u8; 4]),
        Err(ChainError::HeldByQueue)
    );
    assert_eq!(a.elements(&m).next(), Some(Err(ChainError::HeldByQueue)));
    let idb = drv.add_chain(&five[..3]);
    let idc = drv.add_chain(&five);
    let b = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert!(!b.is_held_by_queue());
    assert_eq!(
        q.pop_descriptor_chain(&m),
        Err(QueueError::InvalidChain {
            id: idc,
            error: ChainError::HeldListsFull { needed: 5, free: 0 }
        })
    );
    assert_eq!(drv.pop_used(), Some((idc, 0)));
    q.writer(&a, &m).write_all(&[1; 0x50]).unwrap();
    q.add_used(&m, a, 0x50).unwrap();
    q.add_used(&m, b, 0).unwrap();
    assert_eq!(drv.pop_used(), Some((ida, 0x50)));
    assert_eq!(drv.pop_used(), Some((idb, 0)));
    // Room again.
    let idd = drv.add_chain(&five);
    let dd = q.pop_descriptor_chain(&m).unwrap().unwrap();
    assert_eq!(dd.id(), idd);
    // After a reset the queue no longer holds it.
    q.reset();
    assert_eq!(
        q.writer(&dd, &m).write(&[1; 4]),
        Err(ChainError::HeldByQueue)
    );
}
