//! The AMP shared-memory channel's device half, and the AMP bus in front of
//! a device core, against a hostile driver half.
//!
//! The device publishes the layout in the arena and serves the echo device
//! over the bus through the service step. The driver side is an honest
//! driver half (which attaches, links, sends and receives) *and* a hostile
//! one that writes whatever it likes anywhere in the shared region: the
//! layout header, both queue heads, both element arrays. The fuzzer
//! interleaves them with device steps.
//!
//! Checked after every device step: nothing panics or hangs (every loop in
//! the channel and the bus is bounded); inside the shared region the bus
//! writes only the device's own queue head and its own elements (the
//! layout header only when it publishes; the device core writes rings and
//! buffers wherever the driver put them, which is not checked here); every message an honest driver takes from the
//! device's queue, while the hostile side has not written there, is a
//! well-formed message; the device's link is in a state it can leave.

#![no_main]

use std::cell::Cell;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use virtio_backend::amp::{AmpBus, Channel, Geometry, Layout, Link};
use virtio_backend::bus::GetDevicesOrder;
use virtio_backend::msg::{HEADER_SIZE, Header, Revision};
use virtio_backend::service::{self, Bound, Doorbell, Kick, Wake};
use virtio_backend::{DeviceCore, GuestMemory};
use virtio_fuzz::seed::{Enc, encode, variant};
use virtio_fuzz::{
    ARENA_BASE, Arena, EchoDevice, Tracked, Which, check_core, enc_struct, maybe_write_seeds,
};

/// The shared region: the start of the arena.
const REGION: u64 = ARENA_BASE;
const GEOMETRY: Geometry = Geometry {
    elements: 8,
    element_size: 64,
};
const MAX_OPS: usize = 128;

#[derive(Arbitrary, Debug, PartialEq)]
pub struct Input {
    /// RFC3 layouts instead of v2.
    pub rfc3: bool,
    pub ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, PartialEq, Clone)]
pub enum Op {
    /// The honest driver sends a message with a correct header: `kind`
    /// picks type bits, then msg_id, dev_num, token, payload.
    Send {
        bus: bool,
        msg_id: u8,
        dev_num: u8,
        token: u16,
        payload: Vec<u8>,
    },
    /// The honest driver sends raw bytes.
    SendRaw(Vec<u8>),
    /// The hostile side writes bytes at an offset of the region.
    Poke {
        at: u16,
        bytes: Vec<u8>,
    },
    /// The hostile side writes one 16-bit word of a queue head (`which`
    /// even: the driver's, odd: the device's; `field` 0..4).
    PokeHead {
        which: u8,
        field: u8,
        value: u16,
    },
    /// The device runs: the bus moves the link on, then a service step
    /// takes messages (and a kick of `kick`'s queue, if any).
    Step {
        kick: Option<u8>,
    },
    /// The honest driver takes what the device sent.
    Recv,
    /// The honest driver moves its handshake on.
    DriverLink,
    /// The honest driver starts over, or shuts down.
    DriverRestart,
    DriverShutdown,
    /// A new honest driver attaches (the layout may be garbage by now).
    Reattach,
}

enc_struct!(Input { rfc3, ops });

impl Enc for Op {
    fn enc(&self, out: &mut Vec<u8>) {
        const N: u32 = 10;
        match self {
            Op::Send {
                bus,
                msg_id,
                dev_num,
                token,
                payload,
            } => {
                variant(out, 0, N);
                bus.enc(out);
                msg_id.enc(out);
                dev_num.enc(out);
                token.enc(out);
                payload.enc(out);
            }
            Op::SendRaw(b) => {
                variant(out, 1, N);
                b.enc(out);
            }
            Op::Poke { at, bytes } => {
                variant(out, 2, N);
                at.enc(out);
                bytes.enc(out);
            }
            Op::PokeHead {
                which,
                field,
                value,
            } => {
                variant(out, 3, N);
                which.enc(out);
                field.enc(out);
                value.enc(out);
            }
            Op::Step { kick } => {
                variant(out, 4, N);
                kick.enc(out);
            }
            Op::Recv => variant(out, 5, N),
            Op::DriverLink => variant(out, 6, N),
            Op::DriverRestart => variant(out, 7, N),
            Op::DriverShutdown => variant(out, 8, N),
            Op::Reattach => variant(out, 9, N),
        }
    }
}

/// The device's doorbell to the driver: counted.
struct Bell<'a>(&'a Cell<u64>);

impl Doorbell for Bell<'_> {
    fn barrier(&mut self) {}
    fn ring(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Builds a message with a header that tells the truth about its size.
fn message(bus: bool, msg_id: u8, dev_num: u8, token: u16, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(64 - HEADER_SIZE)];
    let mut f = vec![if bus { 2 } else { 0 }, msg_id];
    f.extend_from_slice(&u16::from(dev_num % 4).to_le_bytes());
    f.extend_from_slice(&token.to_le_bytes());
    f.extend_from_slice(&((HEADER_SIZE + payload.len()) as u16).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

fn run(input: &Input) {
    let rev = if input.rfc3 {
        Revision::Rfc3
    } else {
        Revision::V2
    };
    let order = if input.rfc3 {
        GetDevicesOrder::Rfc3
    } else {
        GetDevicesOrder::V2
    };
    let mut arena = Arena::new();
    let views = arena.views();
    let drv_mem = &views.window;
    // The bus's writes and the core's (rings and buffers, wherever the
    // driver put them) are tracked apart: only the bus's are checked.
    let dev_mem = Tracked::new(Which::Window(&views.window));
    let core_mem = &views.window;
    let len = GEOMETRY.region_size();
    let channel = Channel::publish(&dev_mem, REGION, len, GEOMETRY).expect("publish");
    dev_mem.take();
    let layout = Layout::for_geometry(GEOMETRY);
    let own = [
        (REGION + layout.dev_qh, 8),
        (
            REGION + layout.dev_elems,
            u64::from(GEOMETRY.elements) * u64::from(GEOMETRY.element_size),
        ),
    ];
    let mut bus: AmpBus = AmpBus::new(channel, rev, order);
    let mut core: DeviceCore<EchoDevice, 2> = DeviceCore::new(EchoDevice::default());
    let rung = Cell::new(0u64);
    let mut driver = Channel::attach(drv_mem, REGION, len).ok();
    // The hostile side wrote into what the device sends: what the honest
    // driver reads from there proves nothing.
    let mut scribbled = false;
    let mut buf = [0u8; 64];
    for op in input.ops.iter().take(MAX_OPS) {
        match op {
            Op::Send {
                bus: b,
                msg_id,
                dev_num,
                token,
                payload,
            } => {
                if let Some(d) = driver.as_mut() {
                    let _ = d.send(drv_mem, &message(*b, *msg_id, *dev_num, *token, payload));
                }
            }
            Op::SendRaw(bytes) => {
                if let Some(d) = driver.as_mut() {
                    let _ = d.send(drv_mem, &bytes[..bytes.len().min(64)]);
                }
            }
            Op::Poke { at, bytes } => {
                let at = u64::from(*at) % len;
                let n = bytes.len().min((len - at) as usize);
                let _ = drv_mem.write(REGION + at, &bytes[..n]);
                let end = at + n as u64;
                scribbled |= own
                    .iter()
                    .any(|&(s, l)| REGION + at < s + l && s < REGION + end);
            }
            Op::PokeHead {
                which,
                field,
                value,
            } => {
                let qh = if which % 2 == 0 {
                    layout.drv_qh
                } else {
                    scribbled = true;
                    layout.dev_qh
                };
                let _ = drv_mem.store_u16_release(REGION + qh + 2 * u64::from(field % 4), *value);
            }
            Op::Step { kick } => {
                if bus.poll(&dev_mem, Bell(&rung)) == virtio_backend::amp::BusState::PeerLost {
                    core.reset();
                }
                let kicks: Vec<Kick> = kick
                    .iter()
                    .map(|q| Kick {
                        device: 0,
                        queue: u16::from(q % 3),
                    })
                    .collect();
                let port = bus.bind(&dev_mem);
                let mut ep =
                    Bound::new(&mut core, core_mem, port.notifier(0, Bell(&rung))).on_bus(rev, 0);
                let mut mailbox = port.mailbox();
                service::step(
                    &mut [&mut ep],
                    Wake {
                        mailbox: Some(&mut mailbox),
                        kicks: &kicks,
                        now_ms: None,
                    },
                );
                check_core(&core);
                let (writes, _) = dev_mem.take();
                for (at, n) in writes {
                    if at < REGION + len && REGION < at + n {
                        assert!(
                            own.iter().any(|&(s, l)| s <= at && at + n <= s + l),
                            "the device wrote {n} bytes at {at:#x}, outside its own part"
                        );
                    }
                }
                let link = bus.channel().link();
                assert!(matches!(
                    link,
                    Link::WaitPeer | Link::Ready | Link::Run | Link::PeerDead
                ));
            }
            Op::Recv => {
                if let Some(d) = driver.as_mut() {
                    for _ in 0..GEOMETRY.elements {
                        match d.recv(drv_mem, &mut buf) {
                            Ok(Some(n)) if !scribbled => {
                                let (h, _) = Header::decode(&buf[..n])
                                    .expect("the device sends well-formed messages");
                                assert_eq!(usize::from(h.msg_size), n);
                                assert_eq!(h.msg_type & !3, 0);
                            }
                            Ok(Some(_)) => {}
                            _ => break,
                        }
                    }
                }
            }
            Op::DriverLink => {
                if let Some(d) = driver.as_mut() {
                    let _ = d.poll_link(drv_mem);
                }
            }
            Op::DriverRestart => {
                if let Some(d) = driver.as_mut() {
                    let _ = d.restart(drv_mem);
                }
            }
            Op::DriverShutdown => {
                if let Some(d) = driver.as_mut() {
                    let _ = d.shutdown(drv_mem);
                }
            }
            Op::Reattach => driver = Channel::attach(drv_mem, REGION, len).ok(),
        }
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let step = || Op::Step { kick: None };
    let send = |msg_id: u8, token: u16, payload: &[u8]| Op::Send {
        bus: false,
        msg_id,
        dev_num: 0,
        token,
        payload: payload.to_vec(),
    };
    let le = |v: u32| v.to_le_bytes().to_vec();
    let link = vec![step(), Op::DriverLink, step()];
    let mut bring_up = link.clone();
    bring_up.extend([
        // GET_DEVICES {0, 32} as Linux sends it, then the device's info.
        Op::Send {
            bus: true,
            msg_id: 2,
            dev_num: 0,
            token: 1,
            payload: vec![0, 0, 32, 0],
        },
        send(0x02, 2, &[]),
        send(0x08, 3, &le(3)),
        send(0x08, 4, &le(11)),
        step(),
        Op::Recv,
    ]);
    let mut hostile = bring_up.clone();
    hostile.extend([
        Op::PokeHead {
            which: 0,
            field: 2,
            value: 40,
        },
        step(),
        Op::DriverRestart,
        step(),
        Op::DriverLink,
        step(),
        Op::Poke {
            at: 0,
            bytes: vec![0xff; 8],
        },
        Op::Reattach,
        step(),
    ]);
    let mut shutdown = bring_up.clone();
    shutdown.extend([
        Op::DriverShutdown,
        step(),
        Op::Reattach,
        Op::DriverLink,
        step(),
    ]);
    [link, bring_up, hostile, shutdown]
        .into_iter()
        .flat_map(|ops| {
            [false, true].map(|rfc3| {
                encode(&Input {
                    rfc3,
                    ops: ops.clone(),
                })
            })
        })
        .collect()
}

fuzz_target!(
    init: maybe_write_seeds("amp_channel", seeds),
    |input: Input| run(&input)
);
