//! Drives our device core with `virtio-drivers`' block and console drivers
//! over virtio-msg and virtio-mmio, and tells what happened.
//!
//! ```text
//! cargo run --release -p frontend-tests --example demo
//! ```
//!
//! Exits with status 1 if any check fails.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use frontend_tests::arena::{Arena, ArenaHal};
use frontend_tests::blk::{BlkOptions, Completion, RamDisk, SECTOR, feature as blk_feature};
use frontend_tests::console::{EchoConsole, RECEIVEQ, TRANSMITQ, feature as con_feature};
use frontend_tests::loopback::{Kind, Loopback, Mode};
use frontend_tests::transport::AnyTransport;
use virtio_backend::VirtioDevice;
use virtio_backend::spec::features;
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use virtio_drivers::device::console::VirtIOConsole;
use virtio_drivers::transport::InterruptStatus;

type Blk = VirtIOBlk<ArenaHal, AnyTransport<RamDisk, 1>>;
type Outcome = Result<(), String>;

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn main() -> ExitCode {
    println!("virtio-backend device core, driven by virtio-drivers 0.13\n");
    let mut failed = 0;
    let runs: [(&str, Kind, Mode, bool, bool); 6] = [
        (
            "virtio-msg, device inline",
            Kind::Msg,
            Mode::Inline,
            true,
            true,
        ),
        (
            "virtio-msg, device inline",
            Kind::Msg,
            Mode::Inline,
            false,
            false,
        ),
        (
            "virtio-msg, device thread",
            Kind::Msg,
            Mode::Threaded,
            true,
            true,
        ),
        (
            "virtio-mmio, device inline",
            Kind::Mmio,
            Mode::Inline,
            true,
            true,
        ),
        (
            "virtio-mmio, device inline",
            Kind::Mmio,
            Mode::Inline,
            false,
            false,
        ),
        (
            "virtio-mmio, device thread",
            Kind::Mmio,
            Mode::Threaded,
            false,
            false,
        ),
    ];
    for (name, kind, mode, indirect, event_idx) in runs {
        println!("== block, {name} ==");
        if let Err(e) = block_run(kind, mode, indirect, event_idx) {
            println!("  FAILED: {e}");
            failed += 1;
        }
        println!();
    }
    for (name, kind) in [("virtio-msg", Kind::Msg), ("virtio-mmio", Kind::Mmio)] {
        println!("== console, {name}, device thread ==");
        if let Err(e) = console_run(kind) {
            println!("  FAILED: {e}");
            failed += 1;
        }
        println!();
    }
    if failed == 0 {
        println!("all runs passed");
        ExitCode::SUCCESS
    } else {
        println!("{failed} run(s) FAILED");
        ExitCode::FAILURE
    }
}

fn feature_names(bits: u64, device: &[(u64, &'static str)]) -> String {
    let common = [
        (features::VERSION_1, "VERSION_1"),
        (features::INDIRECT_DESC, "INDIRECT_DESC"),
        (features::EVENT_IDX, "EVENT_IDX"),
        (features::RING_PACKED, "RING_PACKED"),
        (features::RING_RESET, "RING_RESET"),
        (features::ACCESS_PLATFORM, "ACCESS_PLATFORM"),
    ];
    let mut names: Vec<&str> = Vec::new();
    let mut known = 0;
    for &(bit, name) in device.iter().chain(common.iter()) {
        known |= bit;
        if bits & bit != 0 {
            names.push(name);
        }
    }
    let mut s = names.join(" ");
    if bits & !known != 0 {
        s.push_str(&format!(" +{:#x}", bits & !known));
    }
    s
}

fn pattern(seed: u64, first: usize, sectors: usize) -> Vec<u8> {
    let mut v = vec![0u8; sectors * SECTOR];
    for (k, s) in v.chunks_mut(SECTOR).enumerate() {
        let n = (first + k) as u64;
        s[..8].copy_from_slice(&n.to_le_bytes());
        for (i, b) in s[8..].iter_mut().enumerate() {
            *b = (n as usize * 31 + i * 7 + seed as usize) as u8;
        }
    }
    v
}

fn err(e: virtio_drivers::Error) -> String {
    format!("virtio-drivers: {e}")
}

fn rate(bytes: u64, t: Duration) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    format!("{:.0} MiB/s", mib / t.as_secs_f64().max(1e-9))
}

/// One block device run: bring-up, 1 MiB written and read back, 16
/// requests in flight, GET_ID and FLUSH, a configuration change.
fn block_run(kind: Kind, mode: Mode, indirect: bool, event_idx: bool) -> Outcome {
    const SECTORS: usize = 2048;
    const CHUNK: usize = 8;
    let arena = Arena::new();
    let opts = BlkOptions {
        sectors: SECTORS as u64,
        indirect,
        event_idx,
        ..BlkOptions::default()
    };
    let link = Loopback::<_, 1>::new(&arena, kind, mode, RamDisk::new(opts));
    let device = (mode == Mode::Threaded).then(|| {
        // Kick-only: the thread processes a queue when kicked, and kicks
        // are posted, so the notification protocol runs under concurrency.
        link.set_polling(false);
        link.spawn()
    });
    let start = Instant::now();
    let mut blk: Blk = VirtIOBlk::new(AnyTransport::new(&link)).map_err(err)?;
    let bringup = start.elapsed();

    let blk_names = [
        (blk_feature::RO, "BLK_RO"),
        (blk_feature::BLK_SIZE, "BLK_SIZE"),
        (blk_feature::FLUSH, "BLK_FLUSH"),
    ];
    let offered = link.with_device(|d| d.device_features());
    let negotiated = link.driver_features();
    println!("  offered:    {}", feature_names(offered, &blk_names));
    println!("  negotiated: {}", feature_names(negotiated, &blk_names));
    check!(
        (negotiated & features::INDIRECT_DESC != 0) == indirect
            && (negotiated & features::EVENT_IDX != 0) == event_idx,
        "unexpected negotiation {negotiated:#x}"
    );
    check!(
        blk.capacity() == SECTORS as u64,
        "capacity {}",
        blk.capacity()
    );

    // 1 MiB written and read back in 4 KiB requests.
    let data = pattern(0xd0, 0, SECTORS);
    let t = Instant::now();
    for s in (0..SECTORS).step_by(CHUNK) {
        blk.write_blocks(s, &data[s * SECTOR..(s + CHUNK) * SECTOR])
            .map_err(err)?;
    }
    let wt = t.elapsed();
    check!(
        link.with_device(|d| d.contents() == &data[..]),
        "the device's disk differs from what was written"
    );
    let mut back = vec![0u8; data.len()];
    let t = Instant::now();
    for s in (0..SECTORS).step_by(CHUNK) {
        blk.read_blocks(s, &mut back[s * SECTOR..(s + CHUNK) * SECTOR])
            .map_err(err)?;
    }
    let rt = t.elapsed();
    check!(back == data, "read back differs from what was written");

    // As many requests in flight as the ring takes, completed by the
    // device's poll, newest first.
    let in_flight = in_flight_reads(&link, &mut blk, &data)?;

    // Used-buffer notification suppression the driver asks for.
    let (suppressed, how) = suppression(&link, &mut blk, event_idx, &data)?;
    if mode == Mode::Inline {
        check!(suppressed == 16, "{suppressed} suppressed, expected 16");
    }

    let mut id = [0u8; 20];
    let n = blk.device_id(&mut id).map_err(err)?;
    check!(
        &id[..n] == b"ramdisk-frontend",
        "GET_ID returned {:?}",
        &id[..n]
    );
    blk.flush().map_err(err)?;

    // A configuration change notification.
    blk.ack_interrupt();
    link.change_config(|d| d.resize(2 * SECTORS as u64));
    let got_config = wait_irq(&mut blk, InterruptStatus::DEVICE_CONFIGURATION_INTERRUPT);
    check!(got_config, "no configuration change notification");
    let elapsed = start.elapsed();
    drop(blk);
    if let Some(d) = device {
        d.join();
    }

    let s = link.with_device(|d| d.stats());
    let l = link.stats();
    let requests = s.completions;
    println!(
        "  requests:   {} ({} writes, {} reads, {} get-id, {} flush), all completed: {}",
        s.chains,
        s.writes,
        s.reads,
        s.get_ids,
        s.flushes,
        s.completions == s.chains
    );
    println!(
        "  data:       {} KiB to the device, {} KiB back, verified; write {}, read {}",
        s.bytes_from_driver / 1024,
        s.bytes_to_driver / 1024,
        rate(data.len() as u64, wt),
        rate(data.len() as u64, rt)
    );
    println!(
        "  chains:     {} indirect of {}, {:.1} elements per chain, {} in flight at most ({} ring slots)",
        s.indirect_chains,
        s.chains,
        s.elements as f64 / s.chains.max(1) as f64,
        s.max_in_flight,
        in_flight
    );
    let sent = if mode == Mode::Threaded {
        link.posted_kicks(0)
    } else {
        l.kicks[0]
    };
    println!(
        "  kicks:      {} sent by the driver for {} requests, {} served by the device",
        sent, requests, l.kicks[0]
    );
    println!(
        "  used-buffer notifications: {} decisions, {} sent, {} suppressed ({} {how})",
        s.batches,
        l.used_irqs[0],
        s.batches.saturating_sub(l.used_irqs[0]),
        suppressed
    );
    println!(
        "  transport:  {} doorbells, {} interrupts delivered{}, {} refused ({})",
        l.doorbells,
        l.delivered,
        if l.coalesced > 0 {
            format!(" ({} coalesced in a full event ring)", l.coalesced)
        } else {
            String::new()
        },
        l.refused.len(),
        l.refused
            .iter()
            .map(|&(what, e)| format!("{} {e:?}", request_name(kind, what)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  config:     capacity {} -> {} sectors, {} change notification(s)",
        SECTORS,
        2 * SECTORS,
        l.config_irqs
    );
    println!(
        "  time:       {:.2?} total ({:.2?} bring-up)",
        elapsed, bringup
    );

    check!(s.completions == s.chains, "not every chain completed");
    check!(s.io_errors == 0 && s.invalid_chains == 0, "errors: {s:?}");
    check!(
        s.indirect_chains == if indirect { s.chains } else { 0 },
        "indirect chains {} of {}",
        s.indirect_chains,
        s.chains
    );
    // Inline, the device holds every request until polled; a device thread
    // completes them while the driver is still adding more.
    check!(
        if mode == Mode::Inline {
            s.max_in_flight as usize == in_flight
        } else {
            (1..=in_flight).contains(&(s.max_in_flight as usize))
        },
        "{} in flight, {in_flight} submitted",
        s.max_in_flight
    );
    check!(
        l.used_irqs[0] <= s.batches,
        "more notifications than decisions"
    );
    check!(l.config_irqs == 1, "{} config notifications", l.config_irqs);
    check!(arena.hal_stats().outstanding == 0, "bounce buffers leaked");
    Ok(())
}

/// Sixteen completions the driver does not want to hear about: without
/// `VIRTIO_F_EVENT_IDX` it sets `VIRTQ_AVAIL_F_NO_INTERRUPT` around 16
/// reads; with it, it submits pairs of reads and consumes neither before
/// the second completes, so `used_event` still names the first. Returns how
/// many of the core's decisions in this phase were "no".
fn suppression(
    link: &std::sync::Arc<Loopback<RamDisk, 1>>,
    blk: &mut Blk,
    event_idx: bool,
    data: &[u8],
) -> Result<(u64, &'static str), String> {
    let decided_no = || {
        let s = link.with_device(|d| d.stats());
        s.batches - link.stats().used_irqs[0]
    };
    let before = decided_no();
    let how;
    if event_idx {
        how = "while the driver had not consumed the previous completion";
        for p in 0..16 {
            let mut reqs = [BlkReq::default(), BlkReq::default()];
            let mut resps = [BlkResp::default(), BlkResp::default()];
            let mut bufs = [[0u8; SECTOR]; 2];
            let [ra, rb] = &mut reqs;
            let [pa, pb] = &mut resps;
            let [ba, bb] = &mut bufs;
            // SAFETY: the buffers live until both tokens are completed
            // below and are not touched before.
            let ta = unsafe { blk.read_blocks_nb(2 * p, ra, ba, pa) }.map_err(err)?;
            // The second completion must come after the first (inline it
            // does; a device thread gets a moment).
            let start = Instant::now();
            while blk.peek_used().is_none() && start.elapsed() < Duration::from_secs(5) {
                std::thread::yield_now();
            }
            // SAFETY: as above.
            let tb = unsafe { blk.read_blocks_nb(2 * p + 1, rb, bb, pb) }.map_err(err)?;
            for (t, r, b, resp) in [
                (ta, &*ra, &mut *ba, &mut *pa),
                (tb, &*rb, &mut *bb, &mut *pb),
            ] {
                let start = Instant::now();
                while blk.peek_used() != Some(t) {
                    check!(
                        start.elapsed() < Duration::from_secs(5),
                        "read never completed"
                    );
                    std::thread::yield_now();
                }
                // SAFETY: the buffers given to `read_blocks_nb` for `t`.
                unsafe { blk.complete_read_blocks(t, r, b, resp) }.map_err(err)?;
            }
            check!(
                bufs[0][..] == data[2 * p * SECTOR..(2 * p + 1) * SECTOR]
                    && bufs[1][..] == data[(2 * p + 1) * SECTOR..(2 * p + 2) * SECTOR],
                "read of sectors {}..{} returned wrong data",
                2 * p,
                2 * p + 2
            );
        }
    } else {
        how = "with VIRTQ_AVAIL_F_NO_INTERRUPT set";
        blk.disable_interrupts();
        let mut buf = [0u8; SECTOR];
        for s in 0..16 {
            blk.read_blocks(s, &mut buf).map_err(err)?;
            check!(buf[..] == data[s * SECTOR..(s + 1) * SECTOR], "sector {s}");
        }
        blk.enable_interrupts();
    }
    Ok((decided_no() - before, how))
}

/// A refused request, by name: a virtio-msg message id or a virtio-mmio
/// register offset.
fn request_name(kind: Kind, what: u32) -> String {
    use virtio_backend::mmio::reg;
    use virtio_backend::msg::id;
    let name = match kind {
        Kind::Msg => match u8::try_from(what).unwrap_or(0) {
            id::SET_DRIVER_FEATURES => "SET_DRIVER_FEATURES",
            id::SET_CONFIG => "SET_CONFIG",
            id::SET_DEVICE_STATUS => "SET_DEVICE_STATUS",
            id::SET_VQUEUE => "SET_VQUEUE",
            id::RESET_VQUEUE => "RESET_VQUEUE",
            _ => "",
        },
        Kind::Mmio => match what {
            reg::DRIVER_FEATURES => "DriverFeatures",
            reg::QUEUE_READY => "QueueReady",
            reg::QUEUE_RESET => "QueueReset",
            reg::STATUS => "Status",
            _ => "",
        },
    };
    if name.is_empty() {
        format!("{what:#x}")
    } else {
        name.to_owned()
    }
}

/// Waits briefly for an interrupt with `bit` (the device thread may still
/// be delivering it).
fn wait_irq(blk: &mut Blk, bit: InterruptStatus) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if blk.ack_interrupt().contains(bit) {
            return true;
        }
        std::thread::yield_now();
    }
    false
}

/// Fills the ring with one-sector reads held by the device, completes them
/// with a poll, and checks the data. Returns how many were in flight.
fn in_flight_reads(
    link: &std::sync::Arc<Loopback<RamDisk, 1>>,
    blk: &mut Blk,
    data: &[u8],
) -> Result<usize, String> {
    link.side()
        .device_mut()
        .set_completion(Completion::DeferredReverse);
    let mut reqs: Vec<BlkReq> = (0..16).map(|_| BlkReq::default()).collect();
    let mut resps: Vec<BlkResp> = (0..16).map(|_| BlkResp::default()).collect();
    let mut bufs = vec![[0u8; SECTOR]; 16];
    let mut tokens = Vec::new();
    for i in 0..16 {
        // SAFETY: `reqs`, `bufs` and `resps` live until the end of this
        // function and are untouched until their token is completed below.
        match unsafe { blk.read_blocks_nb(i * 7, &mut reqs[i], &mut bufs[i], &mut resps[i]) } {
            Ok(t) => tokens.push(t),
            Err(virtio_drivers::Error::QueueFull) => break,
            Err(e) => return Err(err(e)),
        }
    }
    let n = tokens.len();
    // Inline, the device completes them when polled; a device thread polls
    // by itself.
    if link.mode() == Mode::Inline {
        link.poll();
    }
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let Some(t) = blk.peek_used() else {
            check!(
                start.elapsed() < Duration::from_secs(10),
                "in-flight reads never completed"
            );
            std::thread::yield_now();
            continue;
        };
        let i = tokens.iter().position(|&x| x == t).ok_or("unknown token")?;
        // SAFETY: the buffers given to `read_blocks_nb` for this token.
        unsafe { blk.complete_read_blocks(t, &reqs[i], &mut bufs[i], &mut resps[i]) }
            .map_err(err)?;
        let s = i * 7;
        check!(
            bufs[i][..] == data[s * SECTOR..(s + 1) * SECTOR],
            "in-flight read of sector {s} returned wrong data"
        );
        done += 1;
    }
    link.side()
        .device_mut()
        .set_completion(Completion::Immediate);
    Ok(n)
}

/// The echo console: 20 short lines and one 10 000-byte message through
/// transmitq and back through receiveq, a size read and emergency writes.
fn console_run(kind: Kind) -> Outcome {
    let arena = Arena::new();
    let link = Loopback::<_, 2>::new(
        &arena,
        kind,
        Mode::Threaded,
        EchoConsole::new(80, 25, true, true),
    );
    let device = link.spawn();
    let start = Instant::now();
    let mut con: VirtIOConsole<ArenaHal, _> =
        VirtIOConsole::new(AnyTransport::new(&link)).map_err(err)?;
    let names = [
        (con_feature::SIZE, "CONSOLE_SIZE"),
        (con_feature::EMERG_WRITE, "CONSOLE_EMERG_WRITE"),
    ];
    println!(
        "  negotiated: {}",
        feature_names(link.driver_features(), &names)
    );
    let size = con.size().map_err(err)?.ok_or("no console size")?;
    check!(
        (size.columns, size.rows) == (80, 25),
        "size {}x{}",
        size.columns,
        size.rows
    );
    for c in b"SOS" {
        con.emergency_write(*c).map_err(err)?;
    }
    let mut sent = Vec::new();
    for i in 0..20 {
        let line = format!("echo line {i}\n").into_bytes();
        con.send_bytes(&line).map_err(err)?;
        sent.extend_from_slice(&line);
    }
    let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    con.send_bytes(&big).map_err(err)?;
    sent.extend_from_slice(&big);
    let mut got = Vec::new();
    let t = Instant::now();
    while got.len() < sent.len() {
        match con.recv(true).map_err(err)? {
            Some(b) => got.push(b),
            None => {
                check!(
                    t.elapsed() < Duration::from_secs(10),
                    "echo stalled at {} of {} bytes",
                    got.len(),
                    sent.len()
                );
                std::thread::yield_now();
            }
        }
    }
    let elapsed = start.elapsed();
    drop(con);
    device.join();
    let s = link.with_device(|d| d.stats());
    let emergency = link.with_device(|d| d.emergency().to_vec());
    let l = link.stats();
    println!(
        "  console {}x{}, emergency writes {:?}",
        size.columns,
        size.rows,
        String::from_utf8_lossy(&emergency)
    );
    println!(
        "  echoed {} bytes in {} transmit and {} receive buffers, up to {} bytes waiting for a buffer",
        s.rx_bytes, s.tx_chains, s.rx_chains, s.max_backlog
    );
    println!(
        "  kicks sent/served: transmitq {}/{}, receiveq {}/{}; notifications: transmitq {}, receiveq {}",
        link.posted_kicks(TRANSMITQ),
        l.kicks[usize::from(TRANSMITQ)],
        link.posted_kicks(RECEIVEQ),
        l.kicks[usize::from(RECEIVEQ)],
        l.used_irqs[usize::from(TRANSMITQ)],
        l.used_irqs[usize::from(RECEIVEQ)]
    );
    println!("  time: {elapsed:.2?}");
    check!(got == sent, "echo differs from what was sent");
    check!(
        link.with_device(|d| d.transcript() == &sent[..]),
        "device transcript differs"
    );
    check!(emergency == b"SOS", "emergency writes {emergency:?}");
    Ok(())
}
