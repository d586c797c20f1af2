//! `virtio-drivers`' `VirtIOBlk` against our RAM disk, device inline on the
//! driver's thread, over virtio-msg and over virtio-mmio.

mod common;

use common::{Blk, BlkLink, blk_link, disk_bytes, disk_stats, open_blk, pattern};
use frontend_tests::arena::Arena;
use frontend_tests::blk::{BlkOptions, Completion, SECTOR};
use frontend_tests::loopback::{Kind, Mode};
use frontend_tests::transport::AnyTransport;
use virtio_backend::ControlError;
use virtio_backend::mmio::reg;
use virtio_backend::msg::id;
use virtio_backend::spec::{features, status};
use virtio_drivers::Error;
use virtio_drivers::device::blk::{BlkReq, BlkResp, RespStatus};
use virtio_drivers::transport::{DeviceStatus, InterruptStatus, Transport};

both_transports!(
    write_read_whole_disk,
    event_idx_negotiated,
    event_idx_not_negotiated,
    indirect_descriptors,
    direct_descriptors_only,
    many_in_flight_out_of_order,
    other_requests_and_errors,
    read_only_disk,
    config_change_interrupt,
    reset_and_reinit,
    reset_drops_in_flight_requests,
    needs_reset_after_ring_corruption,
);

/// Writes every sector of a 1 MiB disk in requests of 1 to 8 sectors, reads
/// it back in requests of 16 down to 1 sectors, and checks the data on both
/// sides and every counter.
fn write_read_whole_disk(kind: Kind) {
    const SECTORS: usize = 2048;
    let arena = Arena::new();
    let opts = BlkOptions {
        sectors: SECTORS as u64,
        ..BlkOptions::default()
    };
    let link = blk_link(&arena, kind, Mode::Inline, opts);
    let mut blk = open_blk(&link);
    assert_eq!(blk.capacity(), SECTORS as u64);

    let data = pattern(0x5eed, 0, SECTORS);
    let (mut sector, mut size, mut writes) = (0, 1, 0u64);
    while sector < SECTORS {
        let n = usize::min(size, SECTORS - sector);
        blk.write_blocks(sector, &data[sector * SECTOR..(sector + n) * SECTOR])
            .expect("write");
        sector += n;
        size = size % 8 + 1;
        writes += 1;
    }
    assert!(
        link.with_device(|d| d.contents() == &data[..]),
        "the device's disk differs from what the driver wrote"
    );

    let mut back = vec![0u8; data.len()];
    let (mut sector, mut size, mut reads) = (0, 16, 0u64);
    while sector < SECTORS {
        let n = usize::min(size, SECTORS - sector);
        blk.read_blocks(sector, &mut back[sector * SECTOR..(sector + n) * SECTOR])
            .expect("read");
        sector += n;
        size = if size == 1 { 16 } else { size - 1 };
        reads += 1;
    }
    assert_same(&back, &data, 0);

    let s = disk_stats(&link);
    let total = writes + reads;
    assert_eq!((s.writes, s.reads), (writes, reads));
    assert_eq!(s.bytes_from_driver, (SECTORS * SECTOR) as u64);
    assert_eq!(s.bytes_to_driver, (SECTORS * SECTOR) as u64);
    assert_eq!((s.chains, s.completions), (total, total));
    assert_eq!(s.io_errors + s.invalid_chains + s.unsupported, 0);
    // Not offered, so never used: every chain is header, data, status.
    assert_eq!(link.driver_features() & features::INDIRECT_DESC, 0);
    assert_eq!(s.indirect_chains, 0);
    assert_eq!((s.elements, s.max_elements), (3 * total, 3));

    let l = link.stats();
    assert_eq!(l.kicks[0], total, "inline device: every request is kicked");
    assert_eq!(l.used_irqs[0], total, "no suppression asked for");
    assert!(l.refused.is_empty(), "refused: {:?}", l.refused);
    let h = arena.hal_stats();
    assert_eq!(h.outstanding, 0, "bounce buffers leaked");
    assert_eq!(h.shares, h.unshares);
    assert_eq!(h.shares, 3 * total);
}

/// Compares two buffers sector by sector, naming the first bad sector.
fn assert_same(got: &[u8], want: &[u8], first_sector: usize) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.chunks(SECTOR).zip(want.chunks(SECTOR)).enumerate() {
        assert!(g == w, "sector {} differs", first_sector + i);
    }
}

/// Non-blocking read of one sector (the caller keeps the buffers).
fn submit_read(
    blk: &mut Blk,
    sector: usize,
    req: &mut BlkReq,
    buf: &mut [u8],
    resp: &mut BlkResp,
) -> Result<u16, Error> {
    // SAFETY: every caller keeps `req`, `buf` and `resp` alive and untouched
    // until it completes the token (or drops the driver and its queue).
    unsafe { blk.read_blocks_nb(sector, req, buf, resp) }
}

/// Completes a non-blocking read.
fn complete_read(blk: &mut Blk, token: u16, req: &BlkReq, buf: &mut [u8], resp: &mut BlkResp) {
    // SAFETY: the same buffers as given to `read_blocks_nb` for `token`.
    unsafe { blk.complete_read_blocks(token, req, buf, resp) }.expect("complete read");
    assert_eq!(resp.status(), RespStatus::OK);
}

fn event_idx_negotiated(kind: Kind) {
    notification_suppression(kind, true);
}

fn event_idx_not_negotiated(kind: Kind) {
    notification_suppression(kind, false);
}

/// Used-buffer notification suppression with and without
/// `VIRTIO_F_EVENT_IDX` (virtio v1.2 §2.7.7.2, §2.7.10).
///
/// Request A completes; request B completes while the driver has not yet
/// consumed A. With event indices the driver's `used_event` still points
/// at A, so B's completion needs no notification; without them every
/// completion notifies. Then `avail.flags` suppression, which only exists
/// without event indices.
fn notification_suppression(kind: Kind, event_idx: bool) {
    let arena = Arena::new();
    let opts = BlkOptions {
        event_idx,
        ..BlkOptions::default()
    };
    let link = blk_link(&arena, kind, Mode::Inline, opts);
    let seed = pattern(9, 0, 4);
    link.side().device_mut().contents_mut()[..seed.len()].copy_from_slice(&seed);
    let mut blk = open_blk(&link);
    assert_eq!(
        link.driver_features() & features::EVENT_IDX != 0,
        event_idx,
        "negotiated features"
    );

    let irqs = || link.stats().used_irqs[0];
    let mut reqs: [BlkReq; 3] = Default::default();
    let mut bufs = [[0u8; SECTOR]; 3];
    let mut resps: [BlkResp; 3] = Default::default();
    let [ra, rb, rc] = &mut reqs;
    let [ba, bb, bc] = &mut bufs;
    let [pa, pb, pc] = &mut resps;

    let ta = submit_read(&mut blk, 0, ra, ba, pa).unwrap();
    assert_eq!(irqs(), 1, "the first completion always notifies");
    let tb = submit_read(&mut blk, 1, rb, bb, pb).unwrap();
    let v = link.ring_view(0).unwrap();
    assert_eq!(v.used_idx, 2, "both requests completed");
    if event_idx {
        assert_eq!(irqs(), 1, "B completed while used_event still named A");
        assert_eq!(v.used_event, 0, "the driver has consumed nothing yet");
        assert_eq!(
            v.avail_event, v.avail_idx,
            "the device asks for the next kick"
        );
    } else {
        assert_eq!(irqs(), 2, "without event indices every completion notifies");
        assert_eq!((v.used_event, v.avail_event), (0, 0), "event words unused");
    }
    assert_eq!(peek(&mut blk), Some(ta), "used ring in order");
    complete_read(&mut blk, ta, ra, ba, pa);
    complete_read(&mut blk, tb, rb, bb, pb);
    if event_idx {
        assert_eq!(link.ring_view(0).unwrap().used_event, 2, "driver caught up");
    }
    let tc = submit_read(&mut blk, 2, rc, bc, pc).unwrap();
    assert_eq!(irqs(), if event_idx { 2 } else { 3 });
    complete_read(&mut blk, tc, rc, bc, pc);
    for (i, b) in bufs.iter().enumerate() {
        assert_same(b, &seed[i * SECTOR..(i + 1) * SECTOR], i);
    }

    // Every completion was one decision of the core; the ones it answered
    // "no" were suppressed.
    let s = disk_stats(&link);
    assert_eq!(s.batches, 3);
    assert_eq!(s.batches - irqs(), u64::from(event_idx));

    // Interrupt delivery and acknowledgement.
    let st = blk.ack_interrupt();
    assert!(
        st.contains(InterruptStatus::QUEUE_INTERRUPT),
        "{:#x}",
        st.bits()
    );
    assert!(!st.contains(InterruptStatus::DEVICE_CONFIGURATION_INTERRUPT));
    assert_eq!(
        blk.ack_interrupt().bits(),
        InterruptStatus::empty().bits(),
        "acked"
    );

    // avail.flags: virtio-drivers only sets VIRTQ_AVAIL_F_NO_INTERRUPT
    // without event indices.
    blk.disable_interrupts();
    let before = irqs();
    let mut buf = [0u8; SECTOR];
    for _ in 0..3 {
        blk.read_blocks(3, &mut buf).unwrap();
    }
    assert_same(&buf, &seed[3 * SECTOR..], 3);
    let flags = link.ring_view(0).unwrap().avail_flags;
    if event_idx {
        assert_eq!(
            flags, 0,
            "virtio-drivers ignores set_dev_notify with EVENT_IDX"
        );
        assert_eq!(irqs(), before + 3);
    } else {
        assert_eq!(flags, 1, "VIRTQ_AVAIL_F_NO_INTERRUPT");
        assert_eq!(irqs(), before, "the device honoured NO_INTERRUPT");
        assert_eq!(blk.ack_interrupt().bits(), InterruptStatus::empty().bits());
    }
    blk.enable_interrupts();
    blk.read_blocks(3, &mut buf).unwrap();
    assert_eq!(irqs(), before + if event_idx { 4 } else { 1 });
    assert_eq!(link.ring_view(0).unwrap().avail_flags, 0);
}

fn peek(blk: &mut Blk) -> Option<u16> {
    blk.peek_used()
}

/// With `VIRTIO_F_INDIRECT_DESC` offered, `virtio-drivers` puts every
/// multi-buffer request in an indirect table. Proven twice: the device sees
/// `VIRTQ_DESC_F_INDIRECT` on every head descriptor, and all 16 descriptors
/// of the 16-entry queue hold a request at once, which only works if each
/// request takes one descriptor.
fn indirect_descriptors(kind: Kind) {
    let arena = Arena::new();
    let opts = BlkOptions {
        indirect: true,
        completion: Completion::DeferredFifo,
        ..BlkOptions::default()
    };
    let link = blk_link(&arena, kind, Mode::Inline, opts);
    let seed = pattern(17, 0, 64);
    link.side().device_mut().contents_mut()[..seed.len()].copy_from_slice(&seed);
    let mut blk = open_blk(&link);
    assert_ne!(link.driver_features() & features::INDIRECT_DESC, 0);

    let mut reqs: [BlkReq; 17] = Default::default();
    let mut bufs = vec![[0u8; 2 * SECTOR]; 17];
    let mut resps: [BlkResp; 17] = Default::default();
    let mut tokens = Vec::new();
    for i in 0..16 {
        let t = submit_read(&mut blk, 4 * i, &mut reqs[i], &mut bufs[i], &mut resps[i])
            .unwrap_or_else(|e| panic!("request {i}: {e:?}"));
        tokens.push(t);
    }
    assert_eq!(
        submit_read(&mut blk, 0, &mut reqs[16], &mut bufs[16], &mut resps[16]),
        Err(Error::QueueFull),
        "the ring is full after 16"
    );
    assert_eq!(link.with_device(|d| d.in_flight()), 16);
    assert!(
        peek(&mut blk).is_none(),
        "nothing completed before the poll"
    );
    link.poll();
    for (i, &t) in tokens.iter().enumerate() {
        assert_eq!(peek(&mut blk), Some(t), "FIFO completion");
        let (r, p) = (&reqs[i], &mut resps[i]);
        complete_read(&mut blk, t, r, &mut bufs[i], p);
        assert_same(&bufs[i], &seed[4 * i * SECTOR..(4 * i + 2) * SECTOR], 4 * i);
    }

    // Blocking requests of every kind: all indirect too.
    link.side()
        .device_mut()
        .set_completion(Completion::Immediate);
    let data = pattern(18, 100, 8);
    blk.write_blocks(100, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    blk.read_blocks(100, &mut back).unwrap();
    assert_same(&back, &data, 100);
    let mut id = [0u8; 20];
    assert_eq!(blk.device_id(&mut id).unwrap(), 16);
    blk.flush().unwrap();

    let s = disk_stats(&link);
    assert_eq!(s.chains, 20);
    assert_eq!(
        s.indirect_chains, 20,
        "every chain came as an indirect table"
    );
    assert_eq!(s.max_in_flight, 16);
    // FLUSH is header + status, the others header + data + status.
    assert_eq!((s.elements, s.max_elements), (19 * 3 + 2, 3));
    assert_eq!(s.completions, 20);
}

/// Without `VIRTIO_F_INDIRECT_DESC` every request takes three descriptors
/// of the 16: five fit in the ring, the sixth is refused by the driver, and
/// the device sees no indirect descriptor.
fn direct_descriptors_only(kind: Kind) {
    let arena = Arena::new();
    let opts = BlkOptions {
        indirect: false,
        completion: Completion::DeferredFifo,
        ..BlkOptions::default()
    };
    let link = blk_link(&arena, kind, Mode::Inline, opts);
    let seed = pattern(21, 0, 8);
    link.side().device_mut().contents_mut()[..seed.len()].copy_from_slice(&seed);
    let mut blk = open_blk(&link);
    assert_eq!(link.driver_features() & features::INDIRECT_DESC, 0);

    let mut reqs: [BlkReq; 6] = Default::default();
    let mut bufs = [[0u8; SECTOR]; 6];
    let mut resps: [BlkResp; 6] = Default::default();
    let mut tokens = Vec::new();
    for i in 0..5 {
        tokens.push(submit_read(&mut blk, i, &mut reqs[i], &mut bufs[i], &mut resps[i]).unwrap());
    }
    assert_eq!(
        submit_read(&mut blk, 5, &mut reqs[5], &mut bufs[5], &mut resps[5]),
        Err(Error::QueueFull)
    );
    assert_eq!(link.with_device(|d| d.in_flight()), 5);
    link.poll();
    for (i, &t) in tokens.iter().enumerate() {
        complete_read(&mut blk, t, &reqs[i], &mut bufs[i], &mut resps[i]);
        assert_same(&bufs[i], &seed[i * SECTOR..(i + 1) * SECTOR], i);
    }
    let s = disk_stats(&link);
    assert_eq!((s.chains, s.indirect_chains), (5, 0));
    assert_eq!((s.elements, s.max_in_flight), (15, 5));
}

/// Sixteen writes in flight completed newest first, then sixteen reads in
/// flight completed newest first: the driver must follow the used ring's
/// order (by token), and every byte must land where it belongs.
fn many_in_flight_out_of_order(kind: Kind) {
    let arena = Arena::new();
    let opts = BlkOptions {
        indirect: true,
        event_idx: true,
        completion: Completion::DeferredReverse,
        ..BlkOptions::default()
    };
    let link = blk_link(&arena, kind, Mode::Inline, opts);
    let mut blk = open_blk(&link);
    // Requests of 1 to 4 sectors, spread over the disk.
    let layout: Vec<(usize, usize)> = (0..16).map(|i| (37 * i + 5, i % 4 + 1)).collect();
    let data: Vec<Vec<u8>> = layout.iter().map(|&(s, n)| pattern(33, s, n)).collect();

    let mut reqs: [BlkReq; 16] = Default::default();
    let mut resps: [BlkResp; 16] = Default::default();
    let mut tokens = Vec::new();
    for i in 0..16 {
        // SAFETY: `reqs`, `data` and `resps` outlive the request and are not
        // touched until `complete_write_blocks` below.
        let t = unsafe { blk.write_blocks_nb(layout[i].0, &mut reqs[i], &data[i], &mut resps[i]) };
        tokens.push(t.unwrap());
    }
    assert_eq!(link.with_device(|d| d.in_flight()), 16);
    link.poll();
    let mut order = Vec::new();
    while let Some(t) = peek(&mut blk) {
        let i = tokens.iter().position(|&x| x == t).expect("known token");
        // SAFETY: the buffers given to `write_blocks_nb` for this token.
        unsafe { blk.complete_write_blocks(t, &reqs[i], &data[i], &mut resps[i]) }.unwrap();
        order.push(i);
    }
    assert_eq!(order, (0..16).rev().collect::<Vec<_>>(), "newest first");
    for (i, &(s, n)) in layout.iter().enumerate() {
        assert_same(&disk_bytes(&link, s, n), &data[i], s);
    }

    let mut bufs: Vec<Vec<u8>> = layout.iter().map(|&(_, n)| vec![0; n * SECTOR]).collect();
    tokens.clear();
    for i in 0..16 {
        let (s, _) = layout[i];
        tokens.push(submit_read(&mut blk, s, &mut reqs[i], &mut bufs[i], &mut resps[i]).unwrap());
    }
    link.poll();
    order.clear();
    while let Some(t) = peek(&mut blk) {
        let i = tokens.iter().position(|&x| x == t).expect("known token");
        complete_read(&mut blk, t, &reqs[i], &mut bufs[i], &mut resps[i]);
        order.push(i);
    }
    assert_eq!(order, (0..16).rev().collect::<Vec<_>>());
    for (i, &(s, _)) in layout.iter().enumerate() {
        assert_same(&bufs[i], &data[i], s);
    }

    let s = disk_stats(&link);
    assert_eq!((s.chains, s.completions, s.max_in_flight), (32, 32, 16));
    assert_eq!(s.indirect_chains, 32);
    assert_eq!(s.batches, 2, "each poll completed one batch");
    let l = link.stats();
    assert_eq!(l.used_irqs[0], 2, "one notification per batch of 16");
    assert_eq!(l.kicks[0], 32);
    assert_eq!(arena.hal_stats().outstanding, 0);
}

/// GET_ID, FLUSH, requests outside the disk (IOERR) and recovery after them.
fn other_requests_and_errors(kind: Kind) {
    let arena = Arena::new();
    let link = blk_link(&arena, kind, Mode::Inline, BlkOptions::default());
    link.side().device_mut().set_id(b"frontend-disk-0001");
    let mut blk = open_blk(&link);
    let cap = blk.capacity() as usize;

    let mut id = [0xffu8; 20];
    let n = blk.device_id(&mut id).unwrap();
    assert_eq!(&id[..n], b"frontend-disk-0001");
    assert_eq!(&id[n..], &[0, 0], "the rest of the id is zero-filled");
    blk.flush().unwrap();

    let mut buf = vec![0u8; 2 * SECTOR];
    assert_eq!(
        blk.read_blocks(cap, &mut buf[..SECTOR]),
        Err(Error::IoError)
    );
    assert_eq!(blk.read_blocks(cap - 1, &mut buf), Err(Error::IoError));
    assert_eq!(buf, vec![0; 2 * SECTOR], "a failed read returns zeros");
    let data = pattern(44, cap - 1, 2);
    assert_eq!(blk.write_blocks(cap - 1, &data), Err(Error::IoError));
    assert_eq!(
        disk_bytes(&link, cap - 1, 1),
        vec![0; SECTOR],
        "nothing written"
    );

    blk.write_blocks(cap - 1, &data[..SECTOR]).unwrap();
    blk.read_blocks(cap - 1, &mut buf[..SECTOR]).unwrap();
    assert_same(&buf[..SECTOR], &data[..SECTOR], cap - 1);

    let s = disk_stats(&link);
    assert_eq!((s.get_ids, s.flushes, s.io_errors), (1, 1, 3));
    assert_eq!((s.reads, s.writes), (3, 2));
    assert_eq!(s.completions, 7);
}

/// `VIRTIO_BLK_F_RO`: the driver sees a read-only disk, writes fail with
/// IOERR and change nothing; FLUSH not offered, so the driver sends none.
fn read_only_disk(kind: Kind) {
    let arena = Arena::new();
    let opts = BlkOptions {
        read_only: true,
        flush: false,
        ..BlkOptions::default()
    };
    let link = blk_link(&arena, kind, Mode::Inline, opts);
    let seed = pattern(5, 0, 4);
    link.side().device_mut().contents_mut()[..seed.len()].copy_from_slice(&seed);
    let mut blk = open_blk(&link);
    assert!(blk.readonly());
    assert_eq!(
        blk.write_blocks(0, &pattern(6, 0, 4)),
        Err(Error::IoError),
        "a read-only disk refuses writes"
    );
    assert_same(&disk_bytes(&link, 0, 4), &seed, 0);
    let mut back = vec![0u8; seed.len()];
    blk.read_blocks(0, &mut back).unwrap();
    assert_same(&back, &seed, 0);
    blk.flush().unwrap();
    let s = disk_stats(&link);
    assert_eq!((s.writes, s.reads, s.flushes, s.chains), (1, 1, 0, 2));
    assert_eq!(s.bytes_from_driver, 0);
}

/// The device resizes the disk: the driver gets a configuration change
/// notification (EVENT_CONFIG / `InterruptStatus` bit 1), the generation
/// moves, and a re-initialised driver reads the new capacity.
fn config_change_interrupt(kind: Kind) {
    let arena = Arena::new();
    let link = blk_link(&arena, kind, Mode::Inline, BlkOptions::default());
    let mut blk = open_blk(&link);
    assert_eq!(blk.capacity(), 2048);
    let data = pattern(71, 10, 1);
    blk.write_blocks(10, &data).unwrap();
    assert_eq!(
        blk.ack_interrupt().bits(),
        InterruptStatus::QUEUE_INTERRUPT.bits()
    );

    let generation = link.side().core().config_generation();
    link.change_config(|d| d.resize(4096));
    assert_eq!(link.side().core().config_generation(), generation + 1);
    assert_eq!(link.stats().config_irqs, 1);
    assert_eq!(
        blk.ack_interrupt().bits(),
        InterruptStatus::DEVICE_CONFIGURATION_INTERRUPT.bits()
    );
    assert_eq!(blk.ack_interrupt().bits(), InterruptStatus::empty().bits());
    assert_eq!(blk.capacity(), 2048, "VirtIOBlk caches the capacity");
    // The device already serves the new sectors.
    let far = pattern(72, 4000, 2);
    blk.write_blocks(4000, &far).unwrap();
    drop(blk);

    let mut blk = open_blk(&link);
    assert_eq!(blk.capacity(), 4096, "re-read after the change");
    let mut back = vec![0u8; far.len()];
    blk.read_blocks(4000, &mut back).unwrap();
    assert_same(&back, &far, 4000);
    blk.read_blocks(10, &mut back[..SECTOR]).unwrap();
    assert_same(&back[..SECTOR], &data, 10);
    assert_eq!(link.stats().config_irqs, 1);
}

/// Queue addresses of queue 0 as the device holds them.
fn queue_addresses(link: &BlkLink) -> (u64, u64, u64) {
    link.side().core().queues()[0].addresses()
}

/// The driver goes away and comes back: a full reset (status 0) and
/// re-initialisation on fresh rings; the disk keeps its data.
fn reset_and_reinit(kind: Kind) {
    let arena = Arena::new();
    let link = blk_link(&arena, kind, Mode::Inline, BlkOptions::default());
    let mut blk = open_blk(&link);
    let data = pattern(81, 0, 64);
    blk.write_blocks(0, &data).unwrap();
    let first = queue_addresses(&link);
    drop(blk);

    // VirtIOBlk's drop asks for the queue back (queue_unset). Without
    // VIRTIO_F_RING_RESET the device keeps it until the next reset.
    let refused = link.stats().refused;
    let expected = match kind {
        Kind::Msg => (
            u32::from(id::RESET_VQUEUE),
            ControlError::RingResetNotNegotiated,
        ),
        Kind::Mmio => (reg::QUEUE_READY, ControlError::WrongState),
    };
    let mut want = vec![expected];
    if kind == Kind::Mmio {
        // ... and then QueueReset, which needs VIRTIO_F_RING_RESET.
        want.push((reg::QUEUE_RESET, ControlError::RingResetNotNegotiated));
    }
    assert_eq!(refused, want);
    assert_ne!(link.status() & status::DRIVER_OK, 0);

    let mut blk = open_blk(&link);
    let second = queue_addresses(&link);
    assert_ne!(first, second, "fresh rings");
    let s = disk_stats(&link);
    assert_eq!((s.resets, s.activations), (2, 2), "one reset per init");
    let mut back = vec![0u8; data.len()];
    blk.read_blocks(0, &mut back).unwrap();
    assert_same(&back, &data, 0);
    let v = link.ring_view(0).unwrap();
    assert_eq!(
        (v.avail_idx, v.used_idx),
        (1, 1),
        "ring state restarted at 0"
    );
}

/// A reset while requests are in flight: the device drops them without
/// touching the driver's buffers or the disk, and the next driver works.
fn reset_drops_in_flight_requests(kind: Kind) {
    let arena = Arena::new();
    let opts = BlkOptions {
        indirect: true,
        completion: Completion::DeferredFifo,
        ..BlkOptions::default()
    };
    let link = blk_link(&arena, kind, Mode::Inline, opts);
    let mut blk = open_blk(&link);
    let data = pattern(91, 0, 4);
    let mut reqs: [BlkReq; 4] = Default::default();
    let mut resps: [BlkResp; 4] = Default::default();
    for (i, r) in reqs.iter_mut().enumerate() {
        // SAFETY: the driver is dropped with these requests in flight; the
        // buffers outlive it and the device never completes them, so
        // nothing writes them after this scope.
        unsafe { blk.write_blocks_nb(i, r, &data[i * SECTOR..(i + 1) * SECTOR], &mut resps[i]) }
            .unwrap();
    }
    assert_eq!(link.with_device(|d| d.in_flight()), 4);
    drop(blk);
    let outstanding = arena.hal_stats().outstanding;
    assert_eq!(outstanding, 4 * 3 + 4, "buffers and tables of 4 requests");

    link.side()
        .device_mut()
        .set_completion(Completion::Immediate);
    let mut blk = open_blk(&link);
    let s = disk_stats(&link);
    assert_eq!((s.dropped_by_reset, s.completions), (4, 0));
    assert_eq!(link.with_device(|d| d.in_flight()), 0);
    link.poll();
    assert_eq!(
        disk_stats(&link).completions,
        0,
        "nothing completes after reset"
    );
    assert_eq!(
        disk_bytes(&link, 0, 4),
        vec![0; 4 * SECTOR],
        "no write landed"
    );
    for r in &resps {
        assert_eq!(r.status(), RespStatus::NOT_READY, "driver memory untouched");
    }

    blk.write_blocks(0, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    blk.read_blocks(0, &mut back).unwrap();
    assert_same(&back, &data, 0);
    assert_eq!(arena.hal_stats().outstanding, outstanding, "no new leaks");
}

/// A driver that corrupts its available ring (a head index beyond the
/// queue) makes the device set `DEVICE_NEEDS_RESET` and send a
/// configuration change notification; it then ignores the queue until the
/// driver resets it, after which everything works again.
fn needs_reset_after_ring_corruption(kind: Kind) {
    let arena = Arena::new();
    let link = blk_link(&arena, kind, Mode::Inline, BlkOptions::default());
    let mut blk = open_blk(&link);
    let data = pattern(101, 0, 1);
    blk.write_blocks(0, &data).unwrap();
    assert_eq!(
        blk.ack_interrupt().bits(),
        InterruptStatus::QUEUE_INTERRUPT.bits()
    );

    // Publish head 999 in a 16-entry ring, as a buggy driver would.
    let (_, avail, _) = queue_addresses(&link);
    let mem = link.arena();
    let at = mem.offset_of(avail);
    let mut idx = [0u8; 2];
    mem.read(at + 2, &mut idx);
    let idx = u16::from_le_bytes(idx);
    mem.write(at + 4 + 2 * usize::from(idx % 16), &999u16.to_le_bytes());
    mem.write(at + 2, &idx.wrapping_add(1).to_le_bytes());
    // Kick through a second driver end on the same device.
    let mut other = AnyTransport::new(&link);
    other.notify(0);

    assert_ne!(link.status() & status::NEEDS_RESET, 0);
    assert_eq!(link.stats().config_irqs, 1);
    assert_eq!(
        blk.ack_interrupt().bits(),
        InterruptStatus::DEVICE_CONFIGURATION_INTERRUPT.bits()
    );
    assert!(
        other
            .get_status()
            .contains(DeviceStatus::DEVICE_NEEDS_RESET)
    );
    let chains = disk_stats(&link).chains;
    other.notify(0);
    assert_eq!(
        disk_stats(&link).chains,
        chains,
        "a broken device ignores kicks"
    );
    drop(other);
    drop(blk);

    let mut blk = open_blk(&link);
    assert_eq!(link.status() & status::NEEDS_RESET, 0, "reset cleared it");
    let mut back = vec![0u8; SECTOR];
    blk.read_blocks(0, &mut back).unwrap();
    assert_same(&back, &data, 0);
}
