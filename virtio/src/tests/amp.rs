//! The AMP shared-memory channel: layout, handshake, both directions,
//! a hostile peer, and the AMP bus in front of the service step.

use std::vec::Vec;

use super::Arena;
use super::control::Echo;
use crate::amp::{
    AmpBus, BusState, Channel, ChannelError, Geometry, LAYOUT_MAGIC, Layout, Link, LinkEvent,
    QUEUE_MAGIC, state,
};
use crate::bus::{BusRequest, BusResponse, GetDevicesOrder, device_state};
use crate::control::DeviceCore;
use crate::memory::GuestMemory;
use crate::mock::MockSplitQueue;
use crate::msg::{Request, Response, Revision};
use crate::service::{self, Bound, Doorbell, Wake};
use crate::spec::features::VERSION_1;
use crate::spec::status::{ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK};

const BASE: u64 = 0x1000;
const G: Geometry = Geometry {
    elements: 8,
    element_size: 64,
};

/// Both halves, up and running.
fn linked<M: GuestMemory>(m: &M) -> (Channel, Channel) {
    let len = G.region_size();
    let mut dev = Channel::publish(m, BASE, len, G).unwrap();
    let mut drv = Channel::attach(m, BASE, len).unwrap();
    assert_eq!(dev.poll_link(m), Ok(LinkEvent::None), "driver still INIT");
    assert_eq!(drv.poll_link(m), Ok(LinkEvent::Up), "device was READY");
    assert_eq!(dev.poll_link(m), Ok(LinkEvent::Up));
    (dev, drv)
}

fn frame(dev_num: u16, token: u16) -> Vec<u8> {
    let mut f = [0u8; 64];
    let n = Request::GetDeviceStatus
        .encode(dev_num, token, &mut f)
        .unwrap();
    f[..n].to_vec()
}

#[test]
fn the_published_layout_is_what_the_driver_validates() {
    let mut arena = Arena::new(0x8000, 0);
    let m = arena.window();
    let len = G.region_size();
    assert_eq!(
        Channel::attach(&m, BASE, len).err(),
        Some(ChannelError::NotPublished)
    );
    let dev = Channel::publish(&m, BASE, len, G).unwrap();
    assert_eq!(m.load_u16_acquire(BASE).unwrap(), LAYOUT_MAGIC);
    let l = Layout::read(&m, BASE, len).unwrap();
    assert_eq!(l, dev.layout());
    assert_eq!(l, Layout::for_geometry(G));
    // Each part on a cache line of its own.
    for at in [l.dev_qh, l.drv_qh, l.dev_elems, l.drv_elems] {
        assert_eq!(at % 64, 0);
    }
    // The device's queue head is up: INIT with the magic.
    assert_eq!(m.load_u16_acquire(BASE + l.dev_qh).unwrap(), QUEUE_MAGIC);
    assert_eq!(
        m.load_u16_acquire(BASE + l.dev_qh + 2).unwrap(),
        state::INIT
    );
    // Too small a region, and geometries Linux cannot use, are refused.
    assert!(matches!(
        Channel::publish(&m, BASE, len - 1, G),
        Err(ChannelError::TooSmall { .. })
    ));
    for bad in [
        Geometry {
            elements: 1,
            element_size: 64,
        },
        Geometry {
            elements: 4,
            element_size: 32,
        },
        Geometry {
            elements: 4,
            element_size: 96,
        },
    ] {
        assert!(Channel::publish(&m, BASE, len, bad).is_err(), "{bad:?}");
    }
}

/// Every field the Linux driver checks, broken one at a time.
#[test]
fn a_broken_layout_is_refused_naming_the_field() {
    let mut arena = Arena::new(0x8000, 0);
    let m = arena.window();
    let len = G.region_size();
    let _dev = Channel::publish(&m, BASE, len, G).unwrap();
    let mut good = [0u8; 64];
    m.read(BASE, &mut good).unwrap();
    let cases: &[(usize, &[u8], &str)] = &[
        (2, &[63, 0], "length"),
        (4, &[2, 0], "version"),
        (6, &[2, 0], "features"),
        (14, &[1, 0], "reserved"),
        (8, &[1], "num_notif"),
        (10, &[1, 0], "num_queue_elements"),
        (12, &[32, 0], "size_queue_elements"),
        // Device queue head at 0, misaligned, overlapping the driver's (an
        // overlap is named by the later of the two regions), past the
        // region.
        (24, &[0; 8], "dev_queue_head_offset"),
        (24, &[65, 0, 0, 0, 0, 0, 0, 0], "dev_queue_head_offset"),
        (24, &[130, 0, 0, 0, 0, 0, 0, 0], "drv_queue_head_offset"),
        (56, &[0, 0, 1, 0, 0, 0, 0, 0], "drv_queue_elements_offset"),
        // Elements overlapping the header, and wrapping around.
        (32, &[8, 0, 0, 0, 0, 0, 0, 0], "dev_queue_elements_offset"),
        (32, &[0xff; 8], "dev_queue_elements_offset"),
    ];
    for &(at, bytes, field) in cases {
        m.write(BASE, &good).unwrap();
        m.write(BASE + at as u64, bytes).unwrap();
        match Layout::read(&m, BASE, len) {
            Err(ChannelError::Layout(f)) => assert!(f.starts_with(field), "{field}: {f}"),
            r => panic!("{field}: {r:?}"),
        }
    }
    m.write(BASE, &good).unwrap();
    assert!(Layout::read(&m, BASE, len).is_ok());
}

#[test]
fn handshake_then_messages_both_ways_with_wrap_and_full() {
    let mut arena = Arena::new(0x8000, 0);
    let m = arena.window();
    let (mut dev, mut drv) = linked(&m);
    assert_eq!((dev.link(), drv.link()), (Link::Run, Link::Run));
    let mut buf = [0u8; 64];
    assert_eq!(dev.recv(&m, &mut buf), Ok(None));
    // 8 elements, one always free: 7 in flight, then full.
    for round in 0..5u16 {
        for i in 0..7 {
            drv.send(&m, &frame(1, round * 7 + i)).unwrap();
        }
        assert_eq!(drv.send(&m, &frame(1, 99)), Err(ChannelError::Full));
        assert_eq!(drv.free(&m), Ok(0));
        for i in 0..7 {
            let n = dev.recv(&m, &mut buf).unwrap().unwrap();
            assert_eq!(&buf[..n], &frame(1, round * 7 + i)[..]);
        }
        assert_eq!(dev.recv(&m, &mut buf), Ok(None));
        // And back.
        dev.send(&m, &frame(2, round)).unwrap();
        let n = drv.recv(&m, &mut buf).unwrap().unwrap();
        assert_eq!(&buf[..n], &frame(2, round)[..]);
    }
    // A message larger than an element is refused before anything moves.
    assert!(matches!(
        dev.send(&m, &[0u8; 65]),
        Err(ChannelError::TooLarge { .. })
    ));
    // The element is zero past the message (Linux copies 64 bytes).
    let l = dev.layout();
    // The device sent 5 messages: the next goes into element 5.
    let slot = 5;
    dev.send(&m, &frame(3, 3)).unwrap();
    let mut raw = [0xffu8; 64];
    m.read(BASE + l.dev_elems + slot * 64, &mut raw).unwrap();
    assert!(raw[8..].iter().all(|&b| b == 0));
}

#[test]
fn a_hostile_peer_is_marked_dead_and_may_start_over() {
    let mut arena = Arena::new(0x8000, 0);
    let m = arena.window();
    let (mut dev, mut drv) = linked(&m);
    let l = dev.layout();
    let drv_qh = BASE + l.drv_qh;
    let mut buf = [0u8; 64];
    // A tail beyond the element count.
    m.store_u16_release(drv_qh + 4, 8).unwrap();
    assert_eq!(
        dev.recv(&m, &mut buf),
        Err(ChannelError::PeerCorrupt("tail"))
    );
    assert_eq!(dev.link(), Link::PeerDead);
    assert_eq!(
        m.load_u16_acquire(BASE + l.dev_qh + 2).unwrap(),
        state::PEER_DEAD
    );
    assert_eq!(dev.recv(&m, &mut buf), Err(ChannelError::NotRunning));
    // The loss is reported once, by the next poll, however it was seen.
    assert_eq!(dev.poll_link(&m), Ok(LinkEvent::PeerLost));
    assert_eq!(dev.poll_link(&m), Ok(LinkEvent::None), "still dead");
    // The driver starts over: INIT, then the handshake runs again.
    drv.restart(&m).unwrap();
    assert_eq!(dev.poll_link(&m), Ok(LinkEvent::None));
    assert_eq!(dev.link(), Link::Ready);
    assert_eq!(drv.poll_link(&m), Ok(LinkEvent::Up));
    assert_eq!(dev.poll_link(&m), Ok(LinkEvent::Up));
    // A message whose size field lies is consumed and dropped; the next
    // one is fine.
    let mut bad = frame(1, 1);
    bad[6] = 200;
    drv.send(&m, &bad).unwrap();
    drv.send(&m, &frame(1, 2)).unwrap();
    assert_eq!(dev.recv(&m, &mut buf), Err(ChannelError::Malformed));
    let n = dev.recv(&m, &mut buf).unwrap().unwrap();
    assert_eq!(&buf[..n], &frame(1, 2)[..]);
    // A queue head whose magic is gone: dead again.
    m.store_u16_release(drv_qh, 0xdead).unwrap();
    assert_eq!(dev.poll_link(&m), Ok(LinkEvent::PeerLost));
    assert_eq!(dev.link(), Link::PeerDead);
    // A state no side may write: dead too.
    drv.restart(&m).unwrap();
    dev.poll_link(&m).unwrap();
    drv.poll_link(&m).unwrap();
    dev.poll_link(&m).unwrap();
    assert_eq!(dev.link(), Link::Run);
    m.store_u16_release(drv_qh + 2, 9).unwrap();
    assert_eq!(dev.poll_link(&m), Ok(LinkEvent::PeerLost));
    assert_eq!(dev.link(), Link::PeerDead);
}

#[test]
fn a_driver_that_shuts_down_is_lost_and_the_next_one_links() {
    let mut arena = Arena::new(0x8000, 0);
    let m = arena.window();
    let (mut dev, mut drv) = linked(&m);
    drv.send(&m, &frame(0, 1)).unwrap();
    drv.shutdown(&m).unwrap();
    assert_eq!(dev.poll_link(&m), Ok(LinkEvent::PeerLost));
    assert_eq!(dev.link(), Link::WaitPeer);
    assert_eq!(
        m.load_u16_acquire(BASE + dev.layout().dev_qh + 2).unwrap(),
        state::INIT
    );
    // A new driver: nothing of the old one's message survives.
    let mut drv = Channel::attach(&m, BASE, G.region_size()).unwrap();
    dev.poll_link(&m).unwrap();
    drv.poll_link(&m).unwrap();
    dev.poll_link(&m).unwrap();
    assert_eq!((dev.link(), drv.link()), (Link::Run, Link::Run));
    let mut buf = [0u8; 64];
    assert_eq!(dev.recv(&m, &mut buf), Ok(None));
}

/// Records the barrier/ring order of the platform's doorbell.
#[derive(Default)]
struct Bell(Vec<&'static str>);

impl Doorbell for Bell {
    fn barrier(&mut self) {
        self.0.push("barrier");
    }
    fn ring(&mut self) {
        self.0.push("ring");
    }
}

fn bus_request(req: BusRequest, token: u16) -> Vec<u8> {
    let mut f = [0u8; 64];
    let n = req.encode(0, token, &mut f).unwrap();
    f[..n].to_vec()
}

#[test]
fn the_bus_answers_get_devices_in_its_order_and_ping() {
    let mut arena = Arena::new(0x8000, 0);
    let m = arena.window();
    let (dev, mut drv) = linked(&m);
    let mut bus: AmpBus<3> = AmpBus::new(dev, Revision::Rfc3, GetDevicesOrder::Rfc3);
    assert_eq!(bus.poll(&m, Bell::default()), BusState::Up);
    // What the Linux AMP bus sends first: GET_DEVICES {0, 32}.
    drv.send(
        &m,
        &bus_request(
            BusRequest::GetDevices {
                offset: 0,
                count: 32,
            },
            1,
        ),
    )
    .unwrap();
    drv.send(&m, &bus_request(BusRequest::Ping { data: 0xfeed }, 2))
        .unwrap();
    // An FF-A bus message has no place here.
    drv.send(&m, &bus_request(BusRequest::Reset, 3)).unwrap();
    let port = bus.bind(&m);
    let r = service::step(
        &mut [],
        Wake {
            mailbox: Some(&mut port.mailbox()),
            ..Wake::default()
        },
    );
    assert_eq!(r.messages, 0);
    assert_eq!(bus.stats().bus_messages, 2);
    assert_eq!(bus.stats().dropped, 1);
    let mut buf = [0u8; 64];
    let n = drv.recv(&m, &mut buf).unwrap().unwrap();
    // RFC3 order: offset, num, next_offset, bitmap (devices 0, 1, 2).
    assert_eq!(&buf[8..n], &[0, 0, 32, 0, 0, 0, 0b111, 0, 0, 0]);
    match BusResponse::decode(&buf[..n], GetDevicesOrder::Rfc3)
        .unwrap()
        .1
    {
        BusResponse::Devices(l) => assert!(l.contains(2) && !l.contains(3)),
        r => panic!("{r:?}"),
    }
    let n = drv.recv(&m, &mut buf).unwrap().unwrap();
    assert_eq!(
        BusResponse::decode(&buf[..n], GetDevicesOrder::Rfc3)
            .unwrap()
            .1,
        BusResponse::Ping { data: 0xfeed }
    );
    // EVENT_DEVICE for a device added while running.
    bus.announce(&m, 1, device_state::READY).unwrap();
    let n = drv.recv(&m, &mut buf).unwrap().unwrap();
    assert_eq!(&buf[..n], &[2, 0x40, 0, 0, 0, 0, 12, 0, 1, 0, 1, 0]);
}

fn bring_up_over_amp<M: GuestMemory>(
    drv: &mut Channel,
    m: &M,
    bus: &mut AmpBus,
    core: &mut DeviceCore<Echo, 2>,
) {
    // The driver configures the device over the channel, as Linux's
    // transport does, one request at a time.
    let (qd, qa, qu) = MockSplitQueue::new(m, 0x6000, 16).addresses();
    let mut fb = [0u8; 8];
    fb[4..].copy_from_slice(&((VERSION_1 >> 32) as u32).to_le_bytes());
    let requests = [
        Request::SetDeviceStatus {
            status: u32::from(ACKNOWLEDGE | DRIVER),
        },
        Request::SetDriverFeatures {
            block_index: 0,
            features: crate::msg::FeatureBlocks::from_le_bytes(&fb).unwrap(),
        },
        Request::SetDeviceStatus {
            status: u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK),
        },
        Request::SetVqueue {
            index: 0,
            // RFC3: a reserved word, the message enables; v2: say so.
            flags: match bus.revision() {
                Revision::Rfc3 => 0,
                Revision::V2 => crate::msg::vqueue::ENABLE,
            },
            size: 16,
            reserved: 0,
            desc: qd,
            driver: qa,
            device: qu,
        },
        Request::SetDeviceStatus {
            status: u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK),
        },
    ];
    let mut buf = [0u8; 64];
    for (t, r) in requests.iter().enumerate() {
        let n = r.encode(0, t as u16 + 1, &mut buf).unwrap();
        drv.send(m, &buf[..n]).unwrap();
        let port = bus.bind(m);
        let mut bell = Bell::default();
        let rev = port.revision();
        let mut ep = Bound::new(core, m, port.notifier(0, &mut bell)).on_bus(rev, 0);
        service::step(
            &mut [&mut ep],
            Wake {
                mailbox: Some(&mut port.mailbox()),
                ..Wake::default()
            },
        );
        let n = drv.recv(m, &mut buf).unwrap().expect("a response");
        let (h, _) = Response::decode(&buf[..n], bus.revision()).unwrap();
        assert_eq!(h.token, t as u16 + 1);
    }
    assert_eq!(core.status() & DRIVER_OK, DRIVER_OK);
}

#[test]
fn a_device_served_over_the_bus_gets_event_used_before_the_doorbell() {
    let mut arena = Arena::new(0x8000, 0);
    let m = arena.window();
    let (dev, mut drv) = linked(&m);
    let mut bus: AmpBus = AmpBus::new(dev, Revision::Rfc3, GetDevicesOrder::Rfc3);
    bus.poll(&m, Bell::default());
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    bring_up_over_amp(&mut drv, &m, &mut bus, &mut core);
    // A request on the ring, and EVENT_AVAIL over the channel.
    let mut q = MockSplitQueue::new(&m, 0x6000, 16);
    m.write(0x7000, b"amp").unwrap();
    q.add_chain(&[(0x7000, 3, false), (0x7100, 3, true)]);
    let mut buf = [0u8; 64];
    let n = Request::EventAvail {
        vq_index: 0,
        next_offset: 0,
    }
    .encode(0, 0, &mut buf)
    .unwrap();
    drv.send(&m, &buf[..n]).unwrap();
    let mut bell = Bell::default();
    {
        let port = bus.bind(&m);
        let mut ep =
            Bound::new(&mut core, &m, port.notifier(0, &mut bell)).on_bus(Revision::Rfc3, 0);
        let r = service::step(
            &mut [&mut ep],
            Wake {
                mailbox: Some(&mut port.mailbox()),
                ..Wake::default()
            },
        );
        assert_eq!((r.messages, r.notifications, r.rings), (1, 1, 1));
    }
    assert_eq!(bell.0, ["barrier", "ring"]);
    // The event is in the channel, the reply in the buffer.
    let n = drv.recv(&m, &mut buf).unwrap().unwrap();
    assert_eq!(
        Response::decode(&buf[..n], Revision::Rfc3).unwrap().1,
        Response::EventUsed { vq_index: 0 }
    );
    assert_eq!(q.pop_used(), Some((0, 3)));
    let mut out = [0u8; 3];
    m.read(0x7100, &mut out).unwrap();
    assert_eq!(&out, b"AMP");
}

#[test]
fn events_wait_for_room_and_none_is_lost() {
    let mut arena = Arena::new(0x8000, 0);
    let m = arena.window();
    let (dev, mut drv) = linked(&m);
    let mut bus: AmpBus = AmpBus::new(dev, Revision::V2, GetDevicesOrder::V2);
    bus.poll(&m, Bell::default());
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    bring_up_over_amp(&mut drv, &m, &mut bus, &mut core);
    let mut q = MockSplitQueue::new(&m, 0x6000, 16);
    // The driver does not read: fill the device's queue with pings.
    let mut buf = [0u8; 64];
    let mut sent = 0;
    loop {
        drv.send(&m, &bus_request(BusRequest::Ping { data: sent }, 1))
            .unwrap();
        service::step(
            &mut [],
            Wake {
                mailbox: Some(&mut bus.bind(&m).mailbox()),
                ..Wake::default()
            },
        );
        sent += 1;
        if bus.channel().room(&m) == Some(0) {
            break;
        }
        assert!(sent < 16);
    }
    // A completion now cannot be announced: it is owed.
    q.add_chain(&[(0x7000, 1, false), (0x7100, 1, true)]);
    let mut bell = Bell::default();
    {
        let port = bus.bind(&m);
        let mut ep = Bound::new(&mut core, &m, port.notifier(0, &mut bell));
        service::step(
            &mut [&mut ep],
            Wake {
                kicks: &[service::Kick {
                    device: 0,
                    queue: 0,
                }],
                ..Wake::default()
            },
        );
    }
    assert_eq!(bus.stats().events_delayed, 1);
    // The driver reads everything; the next poll sends what was owed.
    let mut got = 0;
    while let Ok(Some(_)) = drv.recv(&m, &mut buf) {
        got += 1;
    }
    assert_eq!(got, sent);
    let mut flush = Bell::default();
    assert_eq!(bus.poll(&m, &mut flush), BusState::Up);
    let n = drv.recv(&m, &mut buf).unwrap().unwrap();
    assert_eq!(
        Response::decode(&buf[..n], Revision::V2).unwrap().1,
        Response::EventUsed { vq_index: 0 }
    );
    // What was owed went out with a doorbell of its own.
    assert_eq!(flush.0, ["barrier", "ring"]);
    assert_eq!(drv.recv(&m, &mut buf), Ok(None));
    let mut idle = Bell::default();
    bus.poll(&m, &mut idle);
    assert!(idle.0.is_empty(), "nothing owed, nothing rung");
}

/// Fills the device's queue with answers the driver does not read.
fn fill_device_queue<M: GuestMemory>(m: &M, bus: &mut AmpBus, drv: &mut Channel) -> u32 {
    let mut sent = 0;
    while bus.channel().room(m) != Some(0) {
        drv.send(m, &bus_request(BusRequest::Ping { data: sent }, 1))
            .unwrap();
        service::step(
            &mut [],
            Wake {
                mailbox: Some(&mut bus.bind(m).mailbox()),
                ..Wake::default()
            },
        );
        sent += 1;
        assert!(sent < 16);
    }
    sent
}

/// A configuration event that had to wait is settled by a newer one that
/// found room: the driver's last word is the newest status, never the
/// older one sent late.
#[test]
fn an_owed_config_event_is_superseded_by_a_newer_one() {
    let mut arena = Arena::new(0x8000, 0);
    let m = arena.window();
    let (dev, mut drv) = linked(&m);
    let mut bus: AmpBus = AmpBus::new(dev, Revision::V2, GetDevicesOrder::V2);
    bus.poll(&m, Bell::default());
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    bring_up_over_amp(&mut drv, &m, &mut bus, &mut core);
    let config_step = |bus: &mut AmpBus, core: &mut DeviceCore<Echo, 2>| {
        let port = bus.bind(&m);
        let mut ep = Bound::new(core, &m, port.notifier(0, Bell::default()));
        ep.raise(crate::Interrupts {
            used: 0,
            config: true,
        });
        service::step(&mut [&mut ep], Wake::default());
    };
    let sent = fill_device_queue(&m, &mut bus, &mut drv);
    let generation = |core: &DeviceCore<Echo, 2>| core.config_generation();
    let old = generation(&core);
    config_step(&mut bus, &mut core);
    assert_eq!(bus.stats().events_delayed, 1, "owed");
    // The configuration changes again; the driver has read one answer, so
    // the new event finds room.
    let _ = core.config_changed(); // raised by the step below
    let new = generation(&core);
    assert_ne!(old, new);
    let mut buf = [0u8; 64];
    drv.recv(&m, &mut buf).unwrap().unwrap();
    config_step(&mut bus, &mut core);
    for _ in 1..sent {
        drv.recv(&m, &mut buf).unwrap().unwrap();
    }
    let n = drv.recv(&m, &mut buf).unwrap().unwrap();
    match Response::decode(&buf[..n], Revision::V2).unwrap().1 {
        Response::EventConfig { generation, .. } => assert_eq!(generation, new),
        r => panic!("{r:?}"),
    }
    // Nothing older follows.
    bus.poll(&m, Bell::default());
    assert_eq!(drv.recv(&m, &mut buf), Ok(None));
}

/// A peer found corrupt while messages are taken (not by the handshake)
/// is lost all the same: the bus reports it, so the devices are reset
/// before a new driver comes.
#[test]
fn a_corrupt_index_seen_by_the_mailbox_loses_the_driver() {
    let mut arena = Arena::new(0x8000, 0);
    let m = arena.window();
    let (dev, mut drv) = linked(&m);
    let mut bus: AmpBus = AmpBus::new(dev, Revision::V2, GetDevicesOrder::V2);
    assert_eq!(bus.poll(&m, Bell::default()), BusState::Up);
    let drv_qh = BASE + bus.channel().layout().drv_qh;
    m.store_u16_release(drv_qh + 4, 200).unwrap();
    service::step(
        &mut [],
        Wake {
            mailbox: Some(&mut bus.bind(&m).mailbox()),
            ..Wake::default()
        },
    );
    assert_eq!(bus.channel().link(), Link::PeerDead);
    assert_eq!(bus.poll(&m, Bell::default()), BusState::PeerLost);
    assert_eq!(bus.stats().peer_lost, 1);
    // The driver starts over and the bus comes back up.
    drv.restart(&m).unwrap();
    bus.poll(&m, Bell::default());
    drv.poll_link(&m).unwrap();
    assert_eq!(bus.poll(&m, Bell::default()), BusState::Up);
}

/// A driver still running from before the device started over never saw
/// the device's INIT: the device waits for it to start over instead of
/// running on indices that are not its own.
#[test]
fn a_device_that_starts_over_waits_for_a_driver_left_running() {
    let mut arena = Arena::new(0x8000, 0);
    let m = arena.window();
    let (mut dev, mut drv) = linked(&m);
    let mut buf = [0u8; 64];
    for t in 0..3 {
        drv.send(&m, &frame(0, t)).unwrap();
        dev.recv(&m, &mut buf).unwrap().unwrap();
    }
    dev.send(&m, &frame(0, 7)).unwrap();
    drv.recv(&m, &mut buf).unwrap().unwrap();
    // The device starts over (a reboot) before the driver looks.
    let mut dev = Channel::publish(&m, BASE, G.region_size(), G).unwrap();
    assert_eq!(dev.poll_link(&m), Ok(LinkEvent::None));
    assert_eq!(dev.link(), Link::WaitPeer, "a RUN peer is stale");
    // The driver sees the device's INIT, loses it and starts over.
    assert_eq!(drv.poll_link(&m), Ok(LinkEvent::PeerLost));
    dev.poll_link(&m).unwrap();
    assert_eq!(drv.poll_link(&m), Ok(LinkEvent::Up));
    assert_eq!(dev.poll_link(&m), Ok(LinkEvent::Up));
    // Both count from zero: what is sent now is what arrives.
    drv.send(&m, &frame(0, 40)).unwrap();
    let n = dev.recv(&m, &mut buf).unwrap().unwrap();
    assert_eq!(&buf[..n], &frame(0, 40)[..]);
    assert_eq!(dev.recv(&m, &mut buf), Ok(None));
    dev.send(&m, &frame(0, 41)).unwrap();
    let n = drv.recv(&m, &mut buf).unwrap().unwrap();
    assert_eq!(&buf[..n], &frame(0, 41)[..]);
}

/// Free space is counted in 32 bits: with the most elements the layout
/// allows (65535), the peer's index plus the element count leaves 16 bits
/// as soon as it is 1; nothing overflows nor miscounts.
#[test]
fn free_space_of_the_largest_queue() {
    let g = Geometry {
        elements: u16::MAX,
        element_size: 64,
    };
    let len = g.region_size();
    let mut arena = Arena::new(0x1000 + len as usize, 0);
    let m = arena.window();
    let mut dev = Channel::publish(&m, BASE, len, g).unwrap();
    let mut drv = Channel::attach(&m, BASE, len).unwrap();
    dev.poll_link(&m).unwrap();
    drv.poll_link(&m).unwrap();
    dev.poll_link(&m).unwrap();
    assert_eq!(drv.free(&m), Ok(u16::MAX - 1));
    let mut buf = [0u8; 64];
    drv.send(&m, &frame(0, 1)).unwrap();
    dev.recv(&m, &mut buf).unwrap().unwrap();
    assert_eq!(drv.free(&m), Ok(u16::MAX - 1));
    for t in 0..3 {
        drv.send(&m, &frame(0, t)).unwrap();
    }
    assert_eq!(drv.free(&m), Ok(u16::MAX - 4));
    assert_eq!(dev.room(&m), Some(u16::MAX - 1));
}

#[test]
fn pending_says_whether_the_device_has_work_before_it_sleeps() {
    let mut arena = Arena::new(0x8000, 0);
    let m = arena.window();
    let len = G.region_size();
    let mut dev = Channel::publish(&m, BASE, len, G).unwrap();
    // The handshake moves on only when polled: work.
    assert!(dev.pending(&m));
    let mut drv = Channel::attach(&m, BASE, len).unwrap();
    dev.poll_link(&m).unwrap();
    drv.poll_link(&m).unwrap();
    dev.poll_link(&m).unwrap();
    assert_eq!(dev.link(), Link::Run);
    assert!(!dev.pending(&m), "nothing sent yet");
    drv.send(&m, &frame(0, 1)).unwrap();
    assert!(dev.pending(&m), "a message waits");
    let mut buf = [0u8; 64];
    assert!(dev.recv(&m, &mut buf).unwrap().is_some());
    assert!(!dev.pending(&m), "taken");
    // A driver tail out of range is work: the receive judges it.
    let l = dev.layout();
    m.store_u16_release(BASE + l.drv_qh + 4, G.elements)
        .unwrap();
    assert!(dev.pending(&m));
    assert!(dev.recv(&m, &mut buf).is_err());
}
