//! `virtio-drivers`' `VirtIOConsole` against our echo console: two queues,
//! completions on one queue caused by a kick on the other, configuration
//! reads (console size) and writes (`emerg_wr`), over both transports, with
//! the device inline and on its own thread.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use frontend_tests::arena::{Arena, ArenaHal};
use frontend_tests::console::{EchoConsole, RECEIVEQ, TRANSMITQ};
use frontend_tests::loopback::{Kind, Loopback, Mode};
use frontend_tests::transport::AnyTransport;
use virtio_backend::spec::features;
use virtio_drivers::device::console::{Size, VirtIOConsole};

type Console = VirtIOConsole<ArenaHal, AnyTransport<EchoConsole, 2>>;
type ConsoleLink = Arc<Loopback<EchoConsole, 2>>;

both_transports!(echo_inline, echo_threaded);

fn echo_inline(kind: Kind) {
    echo(kind, Mode::Inline, false, false);
    echo(kind, Mode::Inline, true, true);
}

fn echo_threaded(kind: Kind) {
    echo(kind, Mode::Threaded, true, true);
    echo(kind, Mode::Threaded, false, false);
}

/// Receives `n` bytes, waiting (with a deadline) for the device.
fn receive(con: &mut Console, link: &ConsoleLink, n: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(n);
    let start = Instant::now();
    while got.len() < n {
        match con.recv(true).expect("recv") {
            Some(b) => got.push(b),
            None => {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "only {} of {n} bytes echoed",
                    got.len()
                );
                if link.mode() == Mode::Inline {
                    // Nothing will arrive without the driver doing more.
                    panic!("echo stalled after {} of {n} bytes", got.len());
                }
                std::thread::yield_now();
            }
        }
    }
    got
}

fn echo(kind: Kind, mode: Mode, indirect: bool, event_idx: bool) {
    let arena = Arena::new();
    let link: ConsoleLink = Loopback::new(
        &arena,
        kind,
        mode,
        EchoConsole::new(132, 43, indirect, event_idx),
    );
    let _device = (mode == Mode::Threaded).then(|| link.spawn());
    let mut con = Console::new(AnyTransport::new(&link)).expect("VirtIOConsole::new");
    let negotiated = link.driver_features();
    assert_eq!(negotiated & features::EVENT_IDX != 0, event_idx);
    assert_eq!(negotiated & features::INDIRECT_DESC != 0, indirect);

    // Configuration space, read.
    assert_eq!(
        con.size().unwrap(),
        Some(Size {
            columns: 132,
            rows: 43
        })
    );
    // Configuration space, write.
    con.emergency_write(b'!').unwrap();
    con.emergency_write(b'?').unwrap();
    assert_eq!(link.with_device(|d| d.emergency().to_vec()), b"!?");

    // Short messages: each comes straight back.
    let mut sent = Vec::new();
    for i in 0..20u8 {
        let msg: Vec<u8> = format!("line {i}: the quick brown fox\n").into_bytes();
        con.send_bytes(&msg).unwrap();
        sent.extend_from_slice(&msg);
        let back = receive(&mut con, &link, msg.len());
        assert_eq!(back, msg);
    }
    // Longer than the driver's 4 KiB receive buffer: the rest waits in the
    // device until the driver posts the buffer again (a kick on receiveq).
    let big: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    con.send_bytes(&big).unwrap();
    sent.extend_from_slice(&big);
    let back = receive(&mut con, &link, big.len());
    assert!(back == big, "long echo differs");
    assert_eq!(con.recv(false).unwrap(), None, "nothing extra");

    assert_eq!(link.with_device(|d| d.transcript().to_vec()), sent);
    let s = link.with_device(|d| d.stats());
    assert_eq!((s.tx_chains, s.tx_bytes), (21, sent.len() as u64));
    assert_eq!(s.rx_bytes, sent.len() as u64);
    assert!(s.rx_chains >= 23, "10 000 bytes need three 4 KiB buffers");
    assert!(s.max_backlog > 4096, "the long message waited for buffers");
    let l = link.stats();
    // The console never suppresses kicks (it writes neither used.flags nor
    // avail_event), so the driver kicks once per send. Inline, each kick is
    // served on its own; posted kicks may coalesce on a device thread.
    let served = l.kicks[usize::from(TRANSMITQ)];
    if mode == Mode::Inline {
        assert_eq!(served, 21, "one kick per send");
    } else {
        assert_eq!(link.posted_kicks(TRANSMITQ), 21, "one kick per send");
        assert!((1..=21).contains(&served), "{served} kicks served");
    }
    let rx_kicks = match mode {
        Mode::Inline => l.kicks[usize::from(RECEIVEQ)],
        Mode::Threaded => link.posted_kicks(RECEIVEQ),
    };
    assert!(rx_kicks >= 2, "receive buffers reposted");
    assert!(l.used_irqs[usize::from(RECEIVEQ)] >= 1);
    assert!(l.used_irqs[usize::from(TRANSMITQ)] >= 1);
    drop(con);
}
