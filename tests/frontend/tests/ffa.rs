//! The FF-A transport (`transport-ffa`) on the host: the device as a
//! secure partition, the driver (`scmi_agent::ffa_driver`, with the SCMI
//! agent on `virtio-drivers`) as the normal world, and between them the
//! scripted SPMC double (`ffa-double`), which checks every call either
//! side makes against the FF-A rules (`frontend_tests::ffa`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ffa_double::arm_ffa::Interface;
use ffa_double::arm_ffa::memory_management::{Handle, MemReclaimFlags};
use ffa_double::{Config, NwdConduit, SpState, Spmc, invoke};
use frontend_tests::arena::ArenaHal;
use frontend_tests::ffa::{AREA, connect, idle, now, start_partition};
use scmi_agent::agent::{AgentOptions, ScmiAgent};
use scmi_agent::ffa_driver::{Events, FfaDriver};
use scmi_agent::probe::Prober;
use transport_ffa::Options;
use virtio_backend::bus::{BusRequest, BusResponse, GetDevicesOrder, result};
use virtio_backend::spec::status;
use virtio_drivers::transport::Transport;

/// The notification bit events are signalled with.
const NOTIFICATION: u8 = 5;

fn opts() -> Options {
    Options {
        notifications: true,
        indirect: true,
    }
}

fn agent(driver: FfaDriver<NwdConduit>) -> ScmiAgent<FfaDriver<NwdConduit>, ArenaHal, 16, 16> {
    let o = AgentOptions {
        patience: Duration::from_secs(5),
        now,
        idle,
        ..AgentOptions::default()
    };
    ScmiAgent::new(driver, o)
}

/// Ends the partition's thread; the double must have seen no broken rule.
fn finish(spmc: &Arc<Spmc>) {
    finish_expecting(spmc, &[]);
}

/// Ends the partition's thread; the double must have seen exactly the
/// broken rules the test broke on purpose, one per snippet, in order.
fn finish_expecting(spmc: &Arc<Spmc>, snippets: &[&str]) {
    spmc.shutdown();
    let v = spmc.violations();
    assert_eq!(v.len(), snippets.len(), "{v:?}");
    for (v, s) in v.iter().zip(snippets) {
        assert!(v.contains(s), "{v:?} is not {s:?}");
    }
}

#[test]
fn the_tour_passes_over_the_ffa_bus() {
    let spmc = Spmc::new(Config::default());
    let mapped = start_partition(&spmc, opts());
    let (_arena, driver) = connect(&spmc, Events::Notification(NOTIFICATION));
    assert_eq!(driver.dev_num(), transport_ffa::DEV_NUM);
    // The partition retrieved the arena's one constituent.
    assert_eq!(mapped.load(Ordering::Relaxed), 1);
    let shares = spmc.shares();
    assert_eq!(shares.len(), 1);
    assert!(shares[0].retrieved && shares[0].retrieve_count == 1);
    let mut agent = agent(driver);
    let out = frontend_tests::tour_passes(&mut agent, now, idle);
    print!("{out}");
    for what in [
        "CLOCK_RATE_CHANGED notification received",
        "asynchronous rate set completed by a delayed response",
        "SENSOR_UPDATE notification received",
        "burst: 8 of 8 commands in flight answered",
    ] {
        assert!(out.contains(what), "{what:?} missing from\n{out}");
    }
    assert!(
        agent.transport().notified() > 0,
        "events were signalled by FF-A notification"
    );
    finish(&spmc);
}

/// A bus request from the normal world; the response's result field.
fn bus_result(driver: &FfaDriver<NwdConduit>, req: BusRequest) -> u16 {
    use scmi_agent::msg_driver::Exchange;
    let token = driver.next_token();
    let mut f = [0u8; 104];
    let n = req.encode(0, token, &mut f).expect("fits");
    let r = driver.call(&f[..n]);
    match BusResponse::decode(&r, GetDevicesOrder::V2) {
        Ok((_, BusResponse::AreaUnshare { result, .. } | BusResponse::Reset { result })) => result,
        other => panic!("{req:?} answered with {other:?}"),
    }
}

#[test]
fn unsharing_the_rings_puts_the_device_in_needs_reset_and_gives_the_memory_back() {
    let spmc = Spmc::new(Config::default());
    let mapped = start_partition(&spmc, opts());
    let (_arena, driver) = connect(&spmc, Events::Poll);
    let mut agent = agent(driver);
    // Linux's probe: the queues are live in the area afterwards.
    let p = Prober::run(&mut agent);
    assert!(p.complaints.is_empty(), "{:?}", p.complaints);
    assert!(p.clocks.is_some(), "the probe reached the clocks");
    let handle = spmc.shares()[0].handle;
    // The normal world cannot take the memory back while it is retrieved.
    let reclaim = Interface::MemReclaim {
        handle: Handle(handle),
        flags: MemReclaimFlags::default(),
    };
    assert!(matches!(
        invoke::<NwdConduit>(ffa_double::SPMC_VERSION, reclaim),
        Ok(Interface::Error { .. })
    ));
    let driver = agent.transport();
    let r = bus_result(driver, BusRequest::AreaUnshare { area_id: AREA });
    assert_eq!(r, result::SUCCESS);
    // Relinquished and unmapped: now it can be reclaimed.
    assert_eq!(mapped.load(Ordering::Relaxed), 0);
    assert!(!spmc.retrieved(handle));
    assert!(matches!(
        invoke::<NwdConduit>(ffa_double::SPMC_VERSION, reclaim),
        Ok(Interface::Success { .. })
    ));
    // The device stopped using it: DEVICE_NEEDS_RESET, and the driver is
    // told by a configuration event.
    let s = driver.get_status();
    assert!(
        s.bits() & u32::from(status::NEEDS_RESET) != 0,
        "status {s:?} after the rings went away"
    );
    let events = agent.transport().ack_interrupt();
    assert!(
        events.contains(virtio_drivers::transport::InterruptStatus::DEVICE_CONFIGURATION_INTERRUPT)
    );
    // An unknown area is refused.
    assert_eq!(
        bus_result(agent.transport(), BusRequest::AreaUnshare { area_id: 9 }),
        result::ERROR
    );
    // The early reclaim is the one rule broken, on purpose.
    finish_expecting(&spmc, &["FFA_MEM_RECLAIM of"]);
}

#[test]
fn a_bus_reset_forgets_the_driver_and_a_new_one_binds_cleanly() {
    let spmc = Spmc::new(Config::default());
    let mapped = start_partition(&spmc, opts());
    let (arena, driver) = connect(&spmc, Events::Poll);
    let mut a = agent(driver);
    assert!(Prober::run(&mut a).complaints.is_empty());
    let first = spmc.shares()[0].handle;
    assert_eq!(
        bus_result(a.transport(), BusRequest::Reset),
        result::SUCCESS
    );
    // RESET relinquished the area: the memory is the normal world's again.
    assert_eq!(mapped.load(Ordering::Relaxed), 0);
    assert!(!spmc.retrieved(first));
    let bufs = a.into_transport().into_inner().into_mailboxes();
    // A new driver: shares again, probes again, finds a device in reset.
    let reclaim = Interface::MemReclaim {
        handle: Handle(first),
        flags: MemReclaimFlags::default(),
    };
    assert!(matches!(
        invoke::<NwdConduit>(ffa_double::SPMC_VERSION, reclaim),
        Ok(Interface::Success { .. })
    ));
    let driver =
        FfaDriver::<NwdConduit>::bind(bufs, frontend_tests::ffa::setup(&arena, Events::Poll))
            .expect("binds again");
    assert_eq!(
        driver.get_status().bits(),
        0,
        "nothing of the first driver survives"
    );
    let mut a = agent(driver);
    assert!(Prober::run(&mut a).complaints.is_empty());
    assert_eq!(mapped.load(Ordering::Relaxed), 1);
    finish(&spmc);
}

#[test]
fn a_partition_that_cannot_boot_ends_with_ffa_error() {
    let spmc = Spmc::new(Config::default());
    // RX/TX at an unaligned address: FFA_RXTX_MAP fails, the partition
    // reports it with FFA_ERROR instead of waiting for messages.
    spmc.spawn_sp(|| {
        let pages = ffa_double::leak_pages(3);
        let (rx, tx) = frontend_tests::ffa::windows(&pages, &pages);
        let core = Box::leak(Box::new(
            virtio_scmi::VirtioScmi::new(
                frontend_tests::ffa::Srv::new(
                    &platform_host_vhost_user::CONFIG,
                    platform_host_vhost_user::PLATFORM,
                ),
                1,
            )
            .into_core(),
        ));
        let bufs = transport_ffa::Buffers {
            rx,
            tx,
            rx_address: pages.addr() + 8,
            tx_address: pages.addr() + 0x2000,
        };
        let board = frontend_tests::ffa::HostBoard::default();
        let mut dev: frontend_tests::ffa::Dev =
            transport_ffa::FfaDevice::new(core, board, bufs, opts());
        match dev.boot() {
            Ok(_) => dev.run(),
            Err(e) => transport_ffa::abort::<ffa_double::SpConduit>(e.error),
        }
    });
    let st = spmc.wait_sp_booted();
    assert!(matches!(st, SpState::Aborted(_)), "{st:?}");
    spmc.shutdown();
    // The double recorded the bad RXTX_MAP (that is the point), nothing else.
    let v = spmc.violations();
    assert!(v.iter().all(|v| v.contains("RXTX_MAP")), "{v:?}");
}

#[test]
fn frames_in_indirect_messages_are_answered_with_indirect_messages() {
    use ffa_double::Role;
    use ffa_double::arm_ffa::interface_args::MsgSend2Flags;
    use ffa_double::msg::{HEADER_SIZE, MsgHeader};
    use virtio_backend::GuestMemory;
    use virtio_backend::msg::{Request, Response, Revision};

    let spmc = Spmc::new(Config::default());
    start_partition(&spmc, opts());
    let (_arena, driver) = connect(&spmc, Events::Poll);
    let (nwd, sp) = (Config::default().nwd_id, Config::default().sp_id);
    // GET_DEVICE_INFO for the bound device, as an indirect message: the
    // partition message header, then the frame, in the driver's TX.
    let mut frame = [0u8; 64];
    let n = Request::GetDeviceInfo
        .encode(driver.dev_num(), 0x77, &mut frame)
        .expect("fits");
    let mut msg = [0u8; HEADER_SIZE + 64];
    MsgHeader::new(nwd, sp, n as u32, transport_ffa::DEVICE_UUID).write(&mut msg);
    msg[HEADER_SIZE..HEADER_SIZE + n].copy_from_slice(&frame[..n]);
    let bufs = driver.mailboxes();
    bufs.tx.write(0, &msg[..HEADER_SIZE + n]).expect("TX");
    let send = Interface::MsgSend2 {
        sender_vm_id: 0,
        flags: MsgSend2Flags::default(),
    };
    assert!(matches!(
        invoke::<NwdConduit>(ffa_double::SPMC_VERSION, send),
        Ok(Interface::Success { .. })
    ));
    // The answer arrives in the driver's RX, from the partition.
    let start = std::time::Instant::now();
    while !spmc.rx_owned(Role::Nwd) {
        if start.elapsed() > Duration::from_secs(5) {
            for c in spmc.log().iter().rev().take(8) {
                eprintln!("{:?} {:?} -> {:x?}", c.who, c.request, &c.result[..4]);
            }
            panic!("no indirect answer: {:?}", spmc.violations());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut rx = [0u8; 256];
    bufs.rx.read(0, &mut rx).expect("RX");
    let h = MsgHeader::read(&rx).expect("a partition message header");
    assert_eq!((h.sender, h.receiver), (sp, nwd));
    let body = &rx[h.offset as usize..(h.offset + h.size) as usize];
    match Response::decode(body, Revision::V2) {
        Ok((hdr, Response::DeviceInfo { device_id, .. })) => {
            assert_eq!((hdr.token, device_id), (0x77, 32));
        }
        other => panic!("GET_DEVICE_INFO answered with {other:?}"),
    }
    assert!(matches!(
        invoke::<NwdConduit>(ffa_double::SPMC_VERSION, Interface::RxRelease { vm_id: 0 }),
        Ok(Interface::Success { .. })
    ));
    // The direct path still works after it.
    assert_eq!(driver.get_status().bits(), 0);
    finish(&spmc);
}

#[test]
fn a_hostile_driver_on_the_ffa_bus_leaves_the_partition_serving() {
    use scmi_agent::msg_driver::Exchange;
    use virtio_backend::msg::{Request, Response, Revision};

    let spmc = Spmc::new(Config::default());
    let mapped = start_partition(&spmc, opts());
    let (arena, driver) = connect(&spmc, Events::Poll);
    let ch: &scmi_agent::ffa_driver::FfaChannel<NwdConduit, _> = &driver;
    let bus = |req: BusRequest| {
        let mut f = [0u8; 104];
        let n = req.encode(0, ch.next_token(), &mut f).expect("fits");
        ch.request(&f[..n], transport_ffa::DEVICE_UUID)
    };
    let result_of = |r: [u8; 128]| u16::from_le_bytes([r[10], r[11]]);
    // Garbage of every length, in direct requests: each is answered (an
    // empty response or a bus ERROR), none wedges the partition.
    let mut x = 0x2545_f491_u32;
    for i in 0..64 {
        let mut g = [0u8; 112];
        for b in g.iter_mut().take(i % 112 + 1) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let r = ch.request(&g[..i % 112 + 1], transport_ffa::DEVICE_UUID);
        let len = u16::from_le_bytes([r[6], r[7]]);
        assert!(len == 0 || (8..=104).contains(&len), "{i}: {r:02x?}");
    }
    // The nil UUID means the partition's default service: served.
    let mut f = [0u8; 64];
    let n = Request::GetDeviceInfo.encode(0, 1, &mut f).unwrap();
    let nil = ffa_double::arm_ffa::Uuid::nil();
    assert_eq!(
        ch.request(&f[..n], nil)[1],
        0x02,
        "GET_DEVICE_INFO answered"
    );
    // AREA_SHARE of a handle that does not exist: the retrieve fails,
    // result 1.
    let bogus = BusRequest::AreaShare {
        area_id: 2,
        mem_handle: 0xdead,
        mem_tag: 0,
        page_count: 1,
        attrs: virtio_backend::bus::AreaAttrs::SHARE_RW_XN_INNER_WB_NORMAL_NS.bits(),
    };
    assert_eq!(result_of(bus(bogus)), result::ERROR);
    // The arena's handle again, as a second area: the same memory twice
    // is refused (unsharing one would unmap it under the other), and the
    // second retrieve is given back.
    let h = spmc.shares()[0].handle;
    let twice = BusRequest::AreaShare {
        area_id: 3,
        mem_handle: h,
        mem_tag: 0,
        page_count: (frontend_tests::arena::ARENA_SIZE / 4096) as u32,
        attrs: virtio_backend::bus::AreaAttrs::SHARE_RW_XN_INNER_WB_NORMAL_NS.bits(),
    };
    assert_eq!(result_of(bus(twice)), result::ERROR);
    // Fewer pages than were shared: refused and given back.
    let short = BusRequest::AreaShare {
        area_id: 4,
        mem_handle: h,
        mem_tag: 0,
        page_count: 3,
        attrs: virtio_backend::bus::AreaAttrs::SHARE_RW_XN_INNER_WB_NORMAL_NS.bits(),
    };
    assert_eq!(result_of(bus(short)), result::ERROR);
    assert_eq!(
        mapped.load(Ordering::Relaxed),
        1,
        "only the real area is mapped"
    );
    let s = &spmc.shares()[0];
    assert_eq!(
        s.retrieve_count - s.relinquish_count,
        1,
        "every refused retrieve was relinquished"
    );
    // EVENT_CONFIGURE after events were configured: a bus ERROR.
    let again = bus(BusRequest::EventConfigure {
        method: 1,
        notif_id: 64,
    });
    assert_eq!(again[1], virtio_backend::bus::id::ERROR);
    // Still serving: the device answers and Linux's probe passes.
    let r = ch.call(&f[..n]);
    assert!(matches!(
        Response::decode(&r, Revision::V2),
        Ok((_, Response::DeviceInfo { device_id: 32, .. }))
    ));
    let mut a = agent(driver);
    assert!(Prober::run(&mut a).complaints.is_empty());
    drop(arena);
    // The bogus handle's retrieve is the one rule the double saw broken.
    finish_expecting(&spmc, &["FFA_MEM_RETRIEVE_REQ"]);
}

#[test]
fn events_go_as_indirect_messages_where_the_driver_asked_for_them() {
    let spmc = Spmc::new(Config::default());
    start_partition(&spmc, opts());
    let (_arena, driver) = connect(&spmc, Events::Indirect);
    let mut a = agent(driver);
    frontend_tests::tour_passes(&mut a, now, idle);
    assert!(
        a.transport().notified() > 0,
        "events arrived as indirect messages"
    );
    let sent = spmc
        .log()
        .iter()
        .filter(|c| c.who == ffa_double::Role::Sp && c.fid() == 0x8400_0086)
        .count();
    assert!(sent > 0, "the partition sent MSG_SEND2");
    finish(&spmc);
}
