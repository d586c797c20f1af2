//! The device on a thread of its own: the driver adds buffers while the
//! device pops and completes them, kicks are posted (the driver does not
//! wait for them), and the notification-suppression protocol has to hold
//! under real concurrency.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Blk, BlkLink, blk_link, disk_bytes, disk_stats, open_blk, pattern};
use frontend_tests::arena::Arena;
use frontend_tests::blk::{BlkOptions, Completion, RaceWindow, SECTOR};
use frontend_tests::loopback::{Kind, Mode};
use virtio_backend::spec::features;
use virtio_drivers::device::blk::{BlkReq, BlkResp, RespStatus};

both_transports!(
    polling_device_thread,
    kick_only_device_thread,
    kick_only_device_thread_event_idx,
    buffer_added_while_kicks_suppressed,
);

const SECTORS: usize = 4096;

/// Waits (with a deadline) until the used ring has an entry; returns its
/// token.
fn wait_used(blk: &mut Blk, what: &str) -> u16 {
    let start = Instant::now();
    loop {
        if let Some(t) = blk.peek_used() {
            return t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: the device never completed it (lost kick?)"
        );
        std::thread::yield_now();
    }
}

/// A device thread that also polls the queues: blocking traffic, then
/// requests in flight that only the device thread can complete (deferred
/// completions are done by the core's poll, which the test never calls).
fn polling_device_thread(kind: Kind) {
    let arena = Arena::new();
    let opts = BlkOptions {
        sectors: SECTORS as u64,
        indirect: true,
        event_idx: true,
        ..BlkOptions::default()
    };
    let link = blk_link(&arena, kind, Mode::Threaded, opts);
    let device = link.spawn();
    let mut blk = open_blk(&link);
    assert_eq!(
        link.driver_features() & (features::INDIRECT_DESC | features::EVENT_IDX),
        features::INDIRECT_DESC | features::EVENT_IDX
    );

    // Blocking: 400 writes of 1..=8 sectors, then read all back.
    let data = pattern(0x7e, 0, SECTORS);
    let mut requests = 0u64;
    let mut extents = Vec::new();
    let mut sector = 0;
    for i in 0..400usize {
        let n = i % 8 + 1;
        if sector + n > SECTORS {
            sector = 0;
        }
        blk.write_blocks(sector, &data[sector * SECTOR..(sector + n) * SECTOR])
            .unwrap();
        extents.push((sector, n));
        sector += n + 3;
        requests += 1;
    }
    for &(s, n) in &extents {
        let mut back = vec![0u8; n * SECTOR];
        blk.read_blocks(s, &mut back).unwrap();
        assert!(back == data[s * SECTOR..(s + n) * SECTOR], "sector {s}");
        requests += 1;
    }

    // In flight: 16 reads held by the device until its own poll.
    link.side()
        .device_mut()
        .set_completion(Completion::DeferredFifo);
    let mut reqs: [BlkReq; 16] = Default::default();
    let mut resps: [BlkResp; 16] = Default::default();
    let mut bufs = vec![[0u8; SECTOR]; 16];
    let mut tokens = Vec::new();
    for i in 0..16 {
        // SAFETY: the buffers stay alive and untouched until completed below.
        let t =
            unsafe { blk.read_blocks_nb(extents[i].0, &mut reqs[i], &mut bufs[i], &mut resps[i]) };
        tokens.push(t.unwrap());
    }
    for _ in 0..16 {
        let t = wait_used(&mut blk, "deferred read");
        let i = tokens.iter().position(|&x| x == t).expect("known token");
        // SAFETY: the buffers given to `read_blocks_nb` for this token.
        unsafe { blk.complete_read_blocks(t, &reqs[i], &mut bufs[i], &mut resps[i]) }.unwrap();
        let s = extents[i].0;
        assert!(bufs[i] == data[s * SECTOR..(s + 1) * SECTOR], "sector {s}");
    }
    requests += 16;
    drop(blk);
    device.join();

    let s = disk_stats(&link);
    assert_eq!((s.chains, s.completions), (requests, requests));
    assert_eq!(s.indirect_chains, requests);
    assert_eq!(s.io_errors, 0);
    let l = link.stats();
    assert!(l.kicks[0] <= requests, "{} kicks", l.kicks[0]);
    assert!(l.doorbells > 0);
    assert_eq!(arena.hal_stats().outstanding, 0);
}

fn kick_only_device_thread(kind: Kind) {
    kick_only(kind, false);
}

fn kick_only_device_thread_event_idx(kind: Kind) {
    kick_only(kind, true);
}

/// A device thread that processes a queue only when kicked, with kicks
/// posted: the driver keeps adding requests while the device drains the
/// ring. A device that asked for no kicks and then missed the driver's
/// newest buffers would leave a request uncompleted (caught by the wait's
/// deadline).
fn kick_only(kind: Kind, event_idx: bool) {
    const ROUNDS: usize = 150;
    let arena = Arena::new();
    let opts = BlkOptions {
        sectors: SECTORS as u64,
        indirect: true,
        event_idx,
        ..BlkOptions::default()
    };
    let link: BlkLink = blk_link(&arena, kind, Mode::Threaded, opts);
    link.set_polling(false);
    let device = link.spawn();
    let mut blk = open_blk(&link);

    let data = pattern(0xb0, 0, SECTORS);
    let mut reqs: [BlkReq; 16] = Default::default();
    let mut resps: [BlkResp; 16] = Default::default();
    let mut written = 0u64;
    for round in 0..ROUNDS {
        // 16 one-sector writes back to back, then wait for all of them.
        let base = (round * 16) % SECTORS;
        let mut tokens = Vec::new();
        for i in 0..16 {
            let s = base + i;
            let buf = &data[s * SECTOR..(s + 1) * SECTOR];
            // SAFETY: `data`, `reqs` and `resps` outlive the request and are
            // not touched until it is completed below.
            let t = unsafe { blk.write_blocks_nb(s, &mut reqs[i], buf, &mut resps[i]) };
            tokens.push(t.unwrap());
        }
        for _ in 0..16 {
            let t = wait_used(&mut blk, "posted write");
            let i = tokens.iter().position(|&x| x == t).expect("known token");
            let s = base + i;
            let buf = &data[s * SECTOR..(s + 1) * SECTOR];
            // SAFETY: the buffers given to `write_blocks_nb` for this token.
            unsafe { blk.complete_write_blocks(t, &reqs[i], buf, &mut resps[i]) }.unwrap();
            assert_eq!(resps[i].status(), RespStatus::OK);
            written += 1;
        }
    }
    let touched = usize::min(ROUNDS * 16, SECTORS);
    drop(blk);
    device.join();
    assert!(disk_bytes(&link, 0, touched) == data[..touched * SECTOR]);
    let s = disk_stats(&link);
    assert_eq!(s.completions, written);
    let l = link.stats();
    let posted = link.posted_kicks(0);
    assert!(posted >= 1 && posted <= written, "{posted} kicks sent");
    assert!(
        l.kicks[0] >= 1 && l.kicks[0] <= posted,
        "{} kicks served",
        l.kicks[0]
    );
    eprintln!(
        "{kind:?} event_idx={event_idx}: {written} requests, {posted} kicks sent, {} served, \
         {} notifications",
        l.kicks[0], l.used_irqs[0]
    );
}

/// The lost-wakeup race, made to happen every time. Without
/// `VIRTIO_F_EVENT_IDX` the device sets `VIRTQ_USED_F_NO_NOTIFY` while it
/// drains the ring. Request B is added after the device found the ring
/// empty but before it cleared the flag, so the driver does not kick for
/// it; the device must find B by re-checking the ring after re-enabling
/// kicks (virtio v1.2 §2.7.10). A device that did not would leave B
/// uncompleted.
fn buffer_added_while_kicks_suppressed(kind: Kind) {
    const ROUNDS: usize = 40;
    let arena = Arena::new();
    let opts = BlkOptions {
        indirect: true,
        ..BlkOptions::default()
    };
    let link = blk_link(&arena, kind, Mode::Threaded, opts);
    link.set_polling(false);
    let window = Arc::new(RaceWindow::default());
    link.side()
        .device_mut()
        .set_race_window(Arc::clone(&window));
    let device = link.spawn();
    let mut blk = open_blk(&link);
    // used.flags, read from the arena (the device holds its lock while it
    // waits in the window).
    let (_, _, used) = link.side().core().queues()[0].addresses();
    let used_flags = {
        let mem = std::sync::Arc::clone(link.arena());
        let at = mem.offset_of(used);
        move || {
            let mut b = [0u8; 2];
            mem.read(at, &mut b);
            u16::from_le_bytes(b)
        }
    };

    let data = pattern(0xcc, 0, 2 * ROUNDS);
    let mut reqs: [BlkReq; 2] = Default::default();
    let mut resps: [BlkResp; 2] = Default::default();
    for round in 0..ROUNDS {
        let (a, b) = (2 * round, 2 * round + 1);
        let buf = |s: usize| &data[s * SECTOR..(s + 1) * SECTOR];
        window.arm();
        let [ra, rb] = &mut reqs;
        let [pa, pb] = &mut resps;
        // SAFETY: `data`, `reqs` and `resps` outlive both requests and are
        // not touched until they are completed below.
        let ta = unsafe { blk.write_blocks_nb(a, ra, buf(a), pa) }.unwrap();
        assert!(
            window.wait_open(),
            "round {round}: the device never drained A"
        );
        assert_eq!(used_flags() & 1, 1, "kicks suppressed while draining");
        let sent = link.posted_kicks(0);
        // SAFETY: as above.
        let tb = unsafe { blk.write_blocks_nb(b, rb, buf(b), pb) }.unwrap();
        assert_eq!(
            link.posted_kicks(0),
            sent,
            "round {round}: B was not kicked"
        );
        window.added();
        for (t, s, r, p) in [(ta, a, &*ra, &mut *pa), (tb, b, &*rb, &mut *pb)] {
            let got = wait_used(&mut blk, "a write added while kicks were off");
            assert_eq!(got, t, "completed in order");
            // SAFETY: the buffers given to `write_blocks_nb` for `t`.
            unsafe { blk.complete_write_blocks(t, r, buf(s), p) }.unwrap();
            assert_eq!(p.status(), RespStatus::OK);
        }
    }
    drop(blk);
    device.join();
    assert_eq!(window.held(), ROUNDS as u64);
    assert!(disk_bytes(&link, 0, 2 * ROUNDS) == data, "disk contents");
    let l = link.stats();
    // Only A requests were kicked (an A may itself go unkicked if the device
    // was still finishing the previous round with kicks off).
    let posted = link.posted_kicks(0);
    assert!((1..=ROUNDS as u64).contains(&posted), "{posted} kicks sent");
    assert_eq!(disk_stats(&link).completions, 2 * ROUNDS as u64);
    assert!(l.kicks[0] <= ROUNDS as u64);
}
