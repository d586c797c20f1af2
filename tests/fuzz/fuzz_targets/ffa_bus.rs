//! The virtio-msg bus codec and the FF-A bus state machine (device role).
//!
//! * Raw frames go through every bus decoder; whatever decodes must
//!   re-encode to the same bytes (up to `msg_size`, with the bits a
//!   receiver ignores cleared).
//! * A sequence of frames (raw bytes, or well-formed requests that may then
//!   be truncated, padded or corrupted) goes to `FfaBus::handle` with a host
//!   whose answers (retrieve/relinquish/reset status, event-method
//!   acceptance, pending event frames, device bitmap) the fuzzer chooses.
//!
//! Checked after every frame: nothing panics; an answer is written only to
//! a bus request, fits `out` and 104 bytes, decodes, and its `msg_size` is
//! the length written; ERROR answers carry the request's msg_id, dev_num
//! and token, other answers the request's msg_id and token and dev_num 0,
//! or are a well-formed event frame for EVENT_POLL; before negotiation
//! only VERSION and RESET are served; negotiation starts only with a
//! served VERSION and ends only with a successful RESET, which empties the
//! area table; the area table changes only as the host's answers allow,
//! never holds an id twice or more than `AREAS` entries, and every area in
//! it is one the host retrieved and still holds; the host is never asked
//! to retrieve an id the bus holds or to relinquish one it does not hold.

#![no_main]

use std::collections::{BTreeSet, VecDeque};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use virtio_backend::bus::{
    BUS_VERSION_1_0, BusEvent, BusRequest, BusResponse, EventMethod, FFA_MAX_MSG_SIZE, FfaBus,
    FfaBusConfig, FfaBusHost, GetDevicesOrder, HostCall, HostStatus, Outcome, Polled,
    RESPONSE_BUF_MIN, SharedArea, TRANSPORT_REVISION, VersionInfo, VersionRequest, feature, id,
    is_event_frame,
};
use virtio_backend::msg::{self, HEADER_SIZE, Header, TYPE_BUS, TYPE_RESPONSE};
use virtio_fuzz::seed::{Enc, encode, variant};
use virtio_fuzz::{enc_struct, maybe_write_seeds};

const AREAS: usize = 3;
const MAX_STEPS: usize = 96;
const ORDER: GetDevicesOrder = GetDevicesOrder::V2;

#[derive(Arbitrary, Debug, PartialEq)]
pub struct Input {
    /// `out` is `RESPONSE_BUF_MIN - 4 + out % 100` bytes (sometimes too
    /// small, sometimes more than a frame).
    pub out: u8,
    /// The host's answers, one byte per decision (0 once used up).
    pub answers: Vec<u8>,
    /// Device-presence bitmap.
    pub devices: Vec<u8>,
    pub steps: Vec<Step>,
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Step {
    /// Bytes handed to the bus verbatim (and decoded by the codec).
    Raw(Vec<u8>),
    /// A request, encoded, then maybe damaged.
    Req {
        req: Req,
        token: u16,
        dev_num: u8,
        damage: Option<Damage>,
    },
    /// The host gets an event for EVENT_POLL to deliver.
    Event(Ev),
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Damage {
    /// Keep only the first `n` bytes.
    Truncate(u8),
    /// XOR a byte.
    Flip { at: u8, mask: u8 },
    /// Overwrite `msg_size`.
    Size(u16),
    /// Overwrite the type byte.
    Type(u8),
    /// Zero padding after the message (register blocks).
    Pad(u8),
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Pair {
    Probe,
    Supported,
    Other(u32, u32),
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Req {
    GetDevices {
        offset: u16,
        count: u16,
    },
    Ping(u32),
    VersionPoc {
        pair: Pair,
        ffa_version: u32,
    },
    VersionOpTee {
        pair: Pair,
    },
    VersionQualcomm {
        pair: Pair,
        features: u32,
    },
    /// Area ids are taken modulo 8 so that they collide.
    AreaShare {
        area: u8,
        handle: u64,
        pages: u32,
        attrs: Option<u32>,
    },
    AreaUnshare {
        area: u8,
    },
    Reset,
    EventPoll,
    EventConfigure {
        method: u8,
        notif_id: u16,
    },
    FifoConfigure {
        handle: u64,
        pages: u16,
        notif_id: u16,
    },
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Ev {
    Used(u32),
    Config { status: u32, generation: u32 },
    Device { dev_num: u16, state: u16 },
    AreaRelease(u16),
    Raw(Vec<u8>),
}

enc_struct!(Input {
    out,
    answers,
    devices,
    steps
});

impl Enc for Step {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            Step::Raw(b) => {
                variant(out, 0, 3);
                b.enc(out);
            }
            Step::Req {
                req,
                token,
                dev_num,
                damage,
            } => {
                variant(out, 1, 3);
                req.enc(out);
                token.enc(out);
                dev_num.enc(out);
                damage.enc(out);
            }
            Step::Event(e) => {
                variant(out, 2, 3);
                e.enc(out);
            }
        }
    }
}

impl Enc for Damage {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            Damage::Truncate(n) => {
                variant(out, 0, 5);
                n.enc(out);
            }
            Damage::Flip { at, mask } => {
                variant(out, 1, 5);
                at.enc(out);
                mask.enc(out);
            }
            Damage::Size(s) => {
                variant(out, 2, 5);
                s.enc(out);
            }
            Damage::Type(t) => {
                variant(out, 3, 5);
                t.enc(out);
            }
            Damage::Pad(n) => {
                variant(out, 4, 5);
                n.enc(out);
            }
        }
    }
}

impl Enc for Pair {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            Pair::Probe => variant(out, 0, 3),
            Pair::Supported => variant(out, 1, 3),
            Pair::Other(a, b) => {
                variant(out, 2, 3);
                a.enc(out);
                b.enc(out);
            }
        }
    }
}

impl Enc for Req {
    fn enc(&self, out: &mut Vec<u8>) {
        const N: u32 = 11;
        match self {
            Req::GetDevices { offset, count } => {
                variant(out, 0, N);
                offset.enc(out);
                count.enc(out);
            }
            Req::Ping(d) => {
                variant(out, 1, N);
                d.enc(out);
            }
            Req::VersionPoc { pair, ffa_version } => {
                variant(out, 2, N);
                pair.enc(out);
                ffa_version.enc(out);
            }
            Req::VersionOpTee { pair } => {
                variant(out, 3, N);
                pair.enc(out);
            }
            Req::VersionQualcomm { pair, features } => {
                variant(out, 4, N);
                pair.enc(out);
                features.enc(out);
            }
            Req::AreaShare {
                area,
                handle,
                pages,
                attrs,
            } => {
                variant(out, 5, N);
                area.enc(out);
                handle.enc(out);
                pages.enc(out);
                attrs.enc(out);
            }
            Req::AreaUnshare { area } => {
                variant(out, 6, N);
                area.enc(out);
            }
            Req::Reset => variant(out, 7, N),
            Req::EventPoll => variant(out, 8, N),
            Req::EventConfigure { method, notif_id } => {
                variant(out, 9, N);
                method.enc(out);
                notif_id.enc(out);
            }
            Req::FifoConfigure {
                handle,
                pages,
                notif_id,
            } => {
                variant(out, 10, N);
                handle.enc(out);
                pages.enc(out);
                notif_id.enc(out);
            }
        }
    }
}

impl Enc for Ev {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            Ev::Used(q) => {
                variant(out, 0, 5);
                q.enc(out);
            }
            Ev::Config { status, generation } => {
                variant(out, 1, 5);
                status.enc(out);
                generation.enc(out);
            }
            Ev::Device { dev_num, state } => {
                variant(out, 2, 5);
                dev_num.enc(out);
                state.enc(out);
            }
            Ev::AreaRelease(a) => {
                variant(out, 3, 5);
                a.enc(out);
            }
            Ev::Raw(b) => {
                variant(out, 4, 5);
                b.enc(out);
            }
        }
    }
}

/// The bytes a decoded message must re-encode to.
fn canonical(input: &[u8], h: &Header, request: bool) -> Vec<u8> {
    let mut v = input[..usize::from(h.msg_size)].to_vec();
    // Type bits 2..7 are ignored on receive; so is EVENT_CONFIGURE's
    // reserved byte.
    v[0] &= TYPE_BUS | TYPE_RESPONSE;
    if request && h.msg_id == id::EVENT_CONFIGURE {
        v[HEADER_SIZE + 1] = 0;
    }
    v
}

fn codec(input: &[u8]) {
    let mut buf = [0u8; 1024];
    if let Ok((h, r)) = BusRequest::decode(input) {
        let n = r.encode(h.dev_num, h.token, &mut buf).unwrap();
        assert_eq!(buf[..n], canonical(input, &h, true)[..], "{r:?}");
        assert!(r.encode(h.dev_num, h.token, &mut buf[..n - 1]).is_err());
    }
    for order in [GetDevicesOrder::Rfc3, GetDevicesOrder::V2] {
        if let Ok((h, r)) = BusResponse::decode(input, order) {
            let n = r.encode(h.dev_num, h.token, &mut buf).unwrap();
            assert_eq!(buf[..n], canonical(input, &h, false)[..], "{r:?}");
            assert!(r.encode(h.dev_num, h.token, &mut buf[..n - 1]).is_err());
        }
    }
    if let Ok((h, e)) = BusEvent::decode(input) {
        let n = e.encode(h.dev_num, h.token, &mut buf).unwrap();
        assert_eq!(buf[..n], canonical(input, &h, false)[..], "{e:?}");
    }
    let _ = is_event_frame(input);
}

/// A host whose every answer the fuzzer picks, and which keeps track of
/// the areas it holds.
struct Host {
    answers: Vec<u8>,
    at: usize,
    events: VecDeque<Vec<u8>>,
    bitmap: Vec<u8>,
    held: BTreeSet<u16>,
}

impl Host {
    fn byte(&mut self) -> u8 {
        let b = self.answers.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn status(&mut self) -> HostStatus {
        match self.byte() % 4 {
            0 | 3 => HostStatus::Ok,
            1 => HostStatus::Error,
            _ => HostStatus::Busy,
        }
    }
}

impl FfaBusHost for Host {
    fn retrieve_area(&mut self, area: &SharedArea) -> HostStatus {
        let s = self.status();
        if s == HostStatus::Ok {
            self.held.insert(area.area_id);
        }
        s
    }
    fn relinquish_area(&mut self, area: &SharedArea) -> HostStatus {
        assert!(
            self.held.contains(&area.area_id),
            "relinquish of area {} the host does not hold",
            area.area_id
        );
        let s = self.status();
        if s == HostStatus::Ok {
            self.held.remove(&area.area_id);
        }
        s
    }
    fn reset_devices(&mut self) -> HostStatus {
        self.status()
    }
    fn next_event(&mut self, out: &mut [u8]) -> Option<usize> {
        let e = self.events.pop_front()?;
        let n = e.len().min(out.len());
        out[..n].copy_from_slice(&e[..n]);
        // Sometimes claim more than was written.
        Some(if self.byte() == 0xff {
            e.len() + 1
        } else {
            e.len()
        })
    }
    fn configure_events(&mut self, _method: EventMethod, _notif_id: u16) -> bool {
        self.byte() & 1 == 0
    }
    fn device_bitmap(&self) -> &[u8] {
        &self.bitmap
    }
}

fn pair(p: &Pair) -> (u32, u32) {
    match p {
        Pair::Probe => (0, 0),
        Pair::Supported => (BUS_VERSION_1_0, TRANSPORT_REVISION),
        Pair::Other(a, b) => (*a, *b),
    }
}

fn request(r: &Req) -> BusRequest {
    match r {
        Req::GetDevices { offset, count } => BusRequest::GetDevices {
            offset: *offset,
            count: *count,
        },
        Req::Ping(d) => BusRequest::Ping { data: *d },
        Req::VersionPoc {
            pair: p,
            ffa_version,
        } => {
            let (bus_version, transport_revision) = pair(p);
            BusRequest::Version(VersionRequest::Poc {
                bus_version,
                transport_revision,
                ffa_version: *ffa_version,
            })
        }
        Req::VersionOpTee { pair: p } => {
            let (bus_version, transport_revision) = pair(p);
            BusRequest::Version(VersionRequest::OpTee {
                bus_version,
                transport_revision,
            })
        }
        Req::VersionQualcomm { pair: p, features } => {
            let (bus_version, transport_revision) = pair(p);
            BusRequest::Version(VersionRequest::Qualcomm(VersionInfo {
                bus_version,
                transport_revision,
                transport_features: 0,
                bus_features: *features,
                max_areas: 0xff,
            }))
        }
        Req::AreaShare {
            area,
            handle,
            pages,
            attrs,
        } => BusRequest::AreaShare {
            area_id: u16::from(area % 8),
            mem_handle: *handle,
            mem_tag: 0,
            page_count: *pages,
            attrs: attrs.unwrap_or(0x6f4),
        },
        Req::AreaUnshare { area } => BusRequest::AreaUnshare {
            area_id: u16::from(area % 8),
        },
        Req::Reset => BusRequest::Reset,
        Req::EventPoll => BusRequest::EventPoll,
        Req::EventConfigure { method, notif_id } => BusRequest::EventConfigure {
            method: method % 5,
            notif_id: *notif_id,
        },
        Req::FifoConfigure {
            handle,
            pages,
            notif_id,
        } => BusRequest::FifoConfigure {
            mem_handle: *handle,
            page_count: *pages,
            driver_notif_id: *notif_id,
        },
    }
}

fn event(e: &Ev) -> Vec<u8> {
    let mut b = [0u8; 64];
    let n = match e {
        Ev::Used(q) => {
            msg::Response::EventUsed { vq_index: *q }.encode(msg::Revision::V2, 1, 0, &mut b)
        }
        Ev::Config { status, generation } => msg::Response::EventConfig {
            device_status: *status,
            generation: *generation,
        }
        .encode(msg::Revision::V2, 1, 0, &mut b),
        Ev::Device { dev_num, state } => BusEvent::Device {
            dev_num: *dev_num,
            state: *state,
        }
        .encode(0, 0, &mut b),
        Ev::AreaRelease(a) => BusEvent::AreaRelease { area_id: *a }.encode(0, 0, &mut b),
        Ev::Raw(r) => return r[..r.len().min(200)].to_vec(),
    };
    b[..n.unwrap()].to_vec()
}

fn ids(bus: &FfaBus<AREAS>) -> Vec<u16> {
    bus.areas().map(|a| a.area_id).collect()
}

/// One frame through the bus, and every check on the result.
fn step(bus: &mut FfaBus<AREAS>, host: &mut Host, frame: &[u8], out: &mut [u8]) {
    codec(frame);
    let was = bus.is_negotiated();
    let before = ids(bus);
    let h = bus.handle(frame, out, host);
    let after = ids(bus);

    // Nothing but a bus request is answered.
    let req = Header::decode(frame).ok().map(|(h, _)| h);
    if frame.first().is_some_and(|t| t & TYPE_BUS == 0) {
        assert_eq!(h.outcome, Outcome::NotBus);
    }
    match h.response_len {
        None => assert!(matches!(h.outcome, Outcome::Dropped(_) | Outcome::NotBus)),
        Some(n) => {
            let req = req.expect("answer to an undecodable frame");
            assert!(usize::from(req.msg_size) <= FFA_MAX_MSG_SIZE);
            assert_eq!(req.msg_type & (TYPE_BUS | TYPE_RESPONSE), TYPE_BUS);
            assert_eq!(req.msg_id & 0x40, 0, "answered an event");
            assert!(n <= out.len() && n <= FFA_MAX_MSG_SIZE, "{n} bytes");
            let resp = &out[..n];
            let (rh, _) = Header::decode(resp).expect("answer decodes");
            assert_eq!(usize::from(rh.msg_size), n);
            if h.host == HostCall::EventPoll(Polled::Delivered) {
                assert_eq!(req.msg_id, id::EVENT_POLL);
                assert!(is_event_frame(resp));
            } else {
                let (rh, r) = BusResponse::decode(resp, ORDER).expect("answer decodes");
                assert_eq!(rh.token, req.token, "token echoed");
                match (h.outcome, r) {
                    (Outcome::Error(_), BusResponse::Error { original_msg_id }) => {
                        assert_eq!(original_msg_id, u16::from(req.msg_id));
                        assert_eq!(rh.dev_num, req.dev_num);
                    }
                    (Outcome::Served, r) => {
                        assert!(!matches!(r, BusResponse::Error { .. }));
                        assert_eq!((rh.msg_id, rh.dev_num), (req.msg_id, 0));
                    }
                    other => panic!("outcome/answer mismatch: {other:?}"),
                }
            }
            if h.outcome == Outcome::Served {
                assert_eq!(req.dev_num, 0);
                assert!(
                    was || matches!(req.msg_id, id::VERSION | id::RESET),
                    "msg {:#x} served before negotiation",
                    req.msg_id
                );
            }
        }
    }

    // Negotiation starts with a served VERSION, ends with a good RESET.
    let reset_ok = matches!(
        h.host,
        HostCall::Reset {
            status: HostStatus::Ok,
            ..
        }
    );
    if bus.is_negotiated() != was {
        assert_eq!(h.outcome, Outcome::Served);
        let id = req.map(|r| r.msg_id);
        if was {
            assert!(reset_ok && id == Some(id::RESET));
        } else {
            assert_eq!(id, Some(id::VERSION));
        }
    }
    if !bus.is_negotiated() {
        assert!(after.is_empty() && bus.event_method().is_none());
    }

    // The area table follows the host's answers.
    let mut expect = before.clone();
    match h.host {
        HostCall::Retrieve { area_id, status } => {
            assert!(!before.contains(&area_id), "retrieve of a held id");
            if status == HostStatus::Ok {
                expect.push(area_id);
            }
        }
        HostCall::Relinquish { area_id, status } => {
            assert!(before.contains(&area_id));
            if status == HostStatus::Ok {
                expect.retain(|&a| a != area_id);
            }
        }
        HostCall::Reset {
            status,
            relinquished,
        } => {
            if status == HostStatus::Ok {
                assert_eq!(relinquished, before.len());
                expect.clear();
            } else {
                assert_eq!(relinquished, 0);
            }
        }
        _ => {}
    }
    let (mut e, mut a) = (expect, after.clone());
    e.sort_unstable();
    a.sort_unstable();
    assert_eq!(a, e, "area table");
    a.dedup();
    assert_eq!(a.len(), after.len(), "duplicate area ids");
    assert!(after.len() <= AREAS);
    assert!(after.iter().all(|id| host.held.contains(id)));
}

fn run(input: &Input) {
    let mut bus: FfaBus<AREAS> = FfaBus::new(FfaBusConfig {
        ffa_version: 0x0001_0002,
        bus_features: feature::DIRECT_RX | feature::INDIRECT_RX,
        devices_order: ORDER,
    });
    let mut host = Host {
        answers: input.answers.clone(),
        at: 0,
        events: VecDeque::new(),
        bitmap: input.devices.iter().copied().take(64).collect(),
        held: BTreeSet::new(),
    };
    let mut out = vec![0u8; RESPONSE_BUF_MIN - 4 + usize::from(input.out % 100)];
    for s in input.steps.iter().take(MAX_STEPS) {
        match s {
            Step::Raw(b) => step(&mut bus, &mut host, &b[..b.len().min(256)], &mut out),
            Step::Req {
                req,
                token,
                dev_num,
                damage,
            } => {
                let mut buf = vec![0u8; 256];
                let r = request(req);
                let mut n = r.encode(u16::from(*dev_num), *token, &mut buf).unwrap();
                match damage {
                    None => {}
                    Some(Damage::Truncate(k)) => n = n.min(usize::from(*k)),
                    Some(Damage::Flip { at, mask }) => buf[usize::from(*at) % n] ^= mask,
                    Some(Damage::Size(s)) => buf[6..8].copy_from_slice(&s.to_le_bytes()),
                    Some(Damage::Type(t)) => buf[0] = *t,
                    Some(Damage::Pad(p)) => n += usize::from(*p % 128),
                }
                step(&mut bus, &mut host, &buf[..n], &mut out);
            }
            Step::Event(e) => host.events.push_back(event(e)),
        }
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let req = |req: Req| Step::Req {
        req,
        token: 2,
        dev_num: 0,
        damage: None,
    };
    let negotiate = [
        req(Req::VersionPoc {
            pair: Pair::Probe,
            ffa_version: 0x0001_0001,
        }),
        req(Req::VersionPoc {
            pair: Pair::Supported,
            ffa_version: 0x0001_0001,
        }),
    ];
    let mut out = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    steps.push(req(Req::AreaShare {
        area: 1,
        handle: 0x10,
        pages: 4,
        attrs: None,
    }));
    steps.extend(negotiate);
    steps.extend([
        req(Req::GetDevices {
            offset: 0,
            count: 32,
        }),
        req(Req::Ping(7)),
        req(Req::AreaShare {
            area: 1,
            handle: 0x10,
            pages: 4,
            attrs: None,
        }),
        req(Req::AreaShare {
            area: 1,
            handle: 0x10,
            pages: 4,
            attrs: None,
        }),
        req(Req::AreaShare {
            area: 2,
            handle: 0x20,
            pages: 1,
            attrs: Some(0x6f7),
        }),
        req(Req::AreaShare {
            area: 3,
            handle: 0x30,
            pages: 1,
            attrs: None,
        }),
        req(Req::EventConfigure {
            method: 1,
            notif_id: 3,
        }),
        req(Req::EventConfigure {
            method: 0,
            notif_id: 0,
        }),
        Step::Event(Ev::Used(0)),
        Step::Event(Ev::AreaRelease(1)),
        Step::Event(Ev::Raw(vec![2, 0x40, 0, 0, 0, 0, 12, 0, 1, 0, 1, 0])),
        req(Req::EventPoll),
        req(Req::EventPoll),
        req(Req::EventPoll),
        req(Req::EventPoll),
        req(Req::AreaUnshare { area: 3 }),
        req(Req::AreaUnshare { area: 5 }),
        req(Req::FifoConfigure {
            handle: 1,
            pages: 2,
            notif_id: 4,
        }),
        Step::Req {
            req: Req::Ping(1),
            token: 9,
            dev_num: 3,
            damage: None,
        },
        Step::Req {
            req: Req::AreaShare {
                area: 4,
                handle: 1,
                pages: 1,
                attrs: None,
            },
            token: 5,
            dev_num: 0,
            damage: Some(Damage::Pad(40)),
        },
        req(Req::Reset),
        req(Req::Ping(1)),
    ]);
    out.push(Input {
        out: 80,
        answers: vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        devices: vec![0b101],
        steps,
    });
    out.push(Input {
        out: 0,
        answers: vec![],
        devices: vec![0xff; 4],
        steps: vec![
            req(Req::VersionOpTee {
                pair: Pair::Supported,
            }),
            req(Req::GetDevices {
                offset: 0,
                count: 0xffff,
            }),
            req(Req::VersionQualcomm {
                pair: Pair::Other(BUS_VERSION_1_0, 2),
                features: 0x21,
            }),
            req(Req::VersionPoc {
                pair: Pair::Other(0x0002_0000, 1),
                ffa_version: 0,
            }),
            Step::Raw(vec![2, 0x83, 0, 0, 1, 0, 8, 0]),
        ],
    });
    out.iter().map(encode).collect()
}

fuzz_target!(
    init: maybe_write_seeds("ffa_bus", seeds),
    |input: Input| run(&input)
);
