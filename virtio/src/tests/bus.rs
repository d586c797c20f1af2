//! Bus messages: codec round trips and byte layouts, malformed input, and
//! the FF-A bus state machine against a recording host.

use std::collections::VecDeque;
use std::vec::Vec;

use crate::bus::{
    AreaAttrs, BUS_VERSION_1_0, BusEvent, BusRequest, BusResponse, DecodeError, DeviceList,
    DropCause, ErrorCause, EventMethod, FFA_MAX_MSG_SIZE, FfaBus, FfaBusConfig, FfaBusHost,
    GetDevicesOrder, Handled, HostCall, HostStatus, MemoryType, Outcome, Polled, RESPONSE_BUF_MIN,
    ShareKind, Shareability, SharedArea, VersionInfo, VersionRequest, VersionResponse, bus_address,
    device_state, feature, id, is_event_frame, result, split_bus_address,
};
use crate::msg::{self, EncodeError};

const FFA_1_2: u32 = 0x0001_0002;
const FFA_1_1: u32 = 0x0001_0001;

fn round_trip_request(r: BusRequest) {
    let mut buf = [0u8; 64];
    let n = r.encode(0, 0x1234, &mut buf).unwrap();
    let (h, back) = BusRequest::decode(&buf[..n]).unwrap();
    assert_eq!(
        (h.msg_type, h.dev_num, h.token, usize::from(h.msg_size)),
        (2, 0, 0x1234, n)
    );
    assert_eq!(back, r);
    // One byte short of the encoding fails cleanly.
    assert_eq!(
        r.encode(0, 1, &mut buf[..n - 1]),
        Err(EncodeError::BufferTooSmall)
    );
}

fn round_trip_response(r: BusResponse<'_>, order: GetDevicesOrder) {
    let mut buf = [0u8; 64];
    let n = r.encode(3, 9, &mut buf).unwrap();
    let (h, back) = BusResponse::decode(&buf[..n], order).unwrap();
    assert_eq!((h.msg_type, h.dev_num, h.token), (3, 3, 9));
    assert_eq!(back, r);
    assert_eq!(
        r.encode(0, 1, &mut buf[..n - 1]),
        Err(EncodeError::BufferTooSmall)
    );
}

#[test]
fn requests_round_trip() {
    for r in [
        BusRequest::GetDevices {
            offset: 8,
            count: 32,
        },
        BusRequest::Ping { data: 0xdead_beef },
        BusRequest::Version(VersionRequest::OpTee {
            bus_version: BUS_VERSION_1_0,
            transport_revision: 1,
        }),
        BusRequest::Version(VersionRequest::Poc {
            bus_version: 0,
            transport_revision: 0,
            ffa_version: FFA_1_2,
        }),
        BusRequest::Version(VersionRequest::Qualcomm(VersionInfo {
            bus_version: BUS_VERSION_1_0,
            transport_revision: 1,
            transport_features: 0,
            bus_features: feature::DIRECT_RX | feature::NOTIF_TX,
            max_areas: 0xff,
        })),
        BusRequest::AreaShare {
            area_id: 1,
            mem_handle: 0x1122_3344_5566_7788,
            mem_tag: 9,
            page_count: 4,
            attrs: 0x6f4,
        },
        BusRequest::AreaUnshare { area_id: 0xffff },
        BusRequest::Reset,
        BusRequest::EventPoll,
        BusRequest::EventConfigure {
            method: 1,
            notif_id: 63,
        },
        BusRequest::FifoConfigure {
            mem_handle: 7,
            page_count: 2,
            driver_notif_id: 5,
        },
    ] {
        round_trip_request(r);
    }
}

#[test]
fn responses_round_trip() {
    let bits = [0x81u8, 0x01, 0x00];
    for order in [GetDevicesOrder::Rfc3, GetDevicesOrder::V2] {
        let list = DeviceList::new(order, 16, 17, 40, &bits).unwrap();
        round_trip_response(BusResponse::Devices(list), order);
        let empty = DeviceList::new(order, 0, 0, 0, &[]).unwrap();
        round_trip_response(BusResponse::Devices(empty), order);
    }
    for r in [
        BusResponse::Ping { data: 1 },
        BusResponse::Version(VersionResponse::Poc {
            bus_version: BUS_VERSION_1_0,
            transport_revision: 1,
            ffa_version: FFA_1_2,
            transport_features: 0,
            bus_features: feature::DIRECT_RX,
            max_areas: 4,
        }),
        BusResponse::Version(VersionResponse::OpTee(VersionInfo::default())),
        BusResponse::AreaShare {
            area_id: 3,
            result: result::BUSY,
        },
        BusResponse::AreaUnshare {
            area_id: 3,
            result: result::ERROR,
        },
        BusResponse::Reset {
            result: result::SUCCESS,
        },
        BusResponse::EventPoll,
        BusResponse::EventConfigure { result: 1 },
        BusResponse::FifoConfigure {
            result: 1,
            device_notif_id: 0,
        },
        BusResponse::Error {
            original_msg_id: 0x81,
        },
    ] {
        round_trip_response(r, GetDevicesOrder::V2);
    }
}

#[test]
fn events_round_trip() {
    for e in [
        BusEvent::Device {
            dev_num: 3,
            state: device_state::REMOVED,
        },
        BusEvent::AreaRelease { area_id: 2 },
    ] {
        let mut buf = [0u8; 16];
        let n = e.encode(0, 0, &mut buf).unwrap();
        let (h, back) = BusEvent::decode(&buf[..n]).unwrap();
        assert_eq!((h.msg_type, h.token), (2, 0));
        assert_eq!(back, e);
        assert!(is_event_frame(&buf[..n]));
    }
}

fn encoded(f: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>) -> Vec<u8> {
    let mut buf = [0u8; 128];
    let n = f(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// Byte layouts from the PoC v2 protocol header and the OP-TEE back-ends.
#[test]
fn byte_layouts() {
    // VERSION probe, 12-byte form: {bus_version 0, transport_revision 0,
    // ffa_version 1.2}.
    let probe = BusRequest::Version(VersionRequest::Poc {
        bus_version: 0,
        transport_revision: 0,
        ffa_version: FFA_1_2,
    });
    assert_eq!(
        encoded(|b| probe.encode(0, 2, b)),
        [
            0x02, 0x80, 0, 0, 2, 0, 20, 0, //
            0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0x01, 0
        ]
    );
    // Its 22-byte answer.
    let v = BusResponse::Version(VersionResponse::Poc {
        bus_version: BUS_VERSION_1_0,
        transport_revision: 1,
        ffa_version: FFA_1_2,
        transport_features: 0,
        bus_features: feature::DIRECT_RX | feature::INDIRECT_RX,
        max_areas: 4,
    });
    assert_eq!(
        encoded(|b| v.encode(0, 2, b)),
        [
            0x03, 0x80, 0, 0, 2, 0, 30, 0, //
            0, 0, 1, 0, 1, 0, 0, 0, 0x02, 0, 0x01, 0, 0, 0, 0, 0, 0x05, 0, 0, 0, 4, 0
        ]
    );
    // 8-byte (OP-TEE) form and its 18-byte answer.
    let optee = BusRequest::Version(VersionRequest::OpTee {
        bus_version: BUS_VERSION_1_0,
        transport_revision: 1,
    });
    assert_eq!(
        encoded(|b| optee.encode(0, 5, b)),
        [0x02, 0x80, 0, 0, 5, 0, 16, 0, 0, 0, 1, 0, 1, 0, 0, 0]
    );
    let v = BusResponse::Version(VersionResponse::OpTee(VersionInfo {
        bus_version: BUS_VERSION_1_0,
        transport_revision: 1,
        transport_features: 0,
        bus_features: feature::DIRECT_RX,
        max_areas: 0xff,
    }));
    assert_eq!(
        encoded(|b| v.encode(0, 5, b)),
        [
            0x03, 0x80, 0, 0, 5, 0, 26, 0, //
            0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0xff, 0
        ]
    );
    // AREA_SHARE {area_id, mem_handle, mem_tag, page_count, attrs}.
    let share = BusRequest::AreaShare {
        area_id: 1,
        mem_handle: 0x1122_3344_5566_7788,
        mem_tag: 0x0102,
        page_count: 4,
        attrs: 0x6f4,
    };
    assert_eq!(
        encoded(|b| share.encode(0, 7, b)),
        [
            0x02, 0x81, 0, 0, 7, 0, 34, 0, //
            1, 0, //
            0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, //
            0x02, 0x01, 0, 0, 0, 0, 0, 0, //
            4, 0, 0, 0, //
            0xf4, 0x06, 0, 0
        ]
    );
    let r = BusResponse::AreaShare {
        area_id: 1,
        result: result::SUCCESS,
    };
    assert_eq!(
        encoded(|b| r.encode(0, 7, b)),
        [0x03, 0x81, 0, 0, 7, 0, 12, 0, 1, 0, 0, 0]
    );
    // GET_DEVICES {offset 0, num 32}, as the Linux AMP bus sends it.
    let g = BusRequest::GetDevices {
        offset: 0,
        count: 32,
    };
    assert_eq!(
        encoded(|b| g.encode(0, 1, b)),
        [0x02, 0x02, 0, 0, 1, 0, 12, 0, 0, 0, 32, 0]
    );
    // The response in both orders: offset 8, count 16, next_offset 32,
    // devices 8 and 17 present.
    let bits = [0x01, 0x02];
    let rfc3 =
        BusResponse::Devices(DeviceList::new(GetDevicesOrder::Rfc3, 8, 16, 32, &bits).unwrap());
    assert_eq!(
        encoded(|b| rfc3.encode(0, 1, b)),
        [
            0x03, 0x02, 0, 0, 1, 0, 16, 0, 8, 0, 16, 0, 32, 0, 0x01, 0x02
        ]
    );
    let v2 = BusResponse::Devices(DeviceList::new(GetDevicesOrder::V2, 8, 16, 32, &bits).unwrap());
    assert_eq!(
        encoded(|b| v2.encode(0, 1, b)),
        [
            0x03, 0x02, 0, 0, 1, 0, 16, 0, 8, 0, 32, 0, 16, 0, 0x01, 0x02
        ]
    );
    let bytes = encoded(|b| v2.encode(0, 1, b));
    let (_, BusResponse::Devices(d)) = BusResponse::decode(&bytes, GetDevicesOrder::V2).unwrap()
    else {
        panic!("not a device list")
    };
    assert!(d.contains(8) && d.contains(17) && !d.contains(9) && !d.contains(24));
    // ERROR carries the request's dev_num and token; msg_size 10.
    let e = BusResponse::Error {
        original_msg_id: 0x81,
    };
    assert_eq!(
        encoded(|b| e.encode(7, 0x1234, b)),
        [0x03, 0x87, 7, 0, 0x34, 0x12, 10, 0, 0x81, 0]
    );
    // EVENT_POLL request and its empty answer; EVENT_CONFIGURE.
    assert_eq!(
        encoded(|b| BusRequest::EventPoll.encode(0, 3, b)),
        [0x02, 0x84, 0, 0, 3, 0, 8, 0]
    );
    assert_eq!(
        encoded(|b| BusResponse::EventPoll.encode(0, 3, b)),
        [0x03, 0x84, 0, 0, 3, 0, 8, 0]
    );
    let c = BusRequest::EventConfigure {
        method: 1,
        notif_id: 5,
    };
    assert_eq!(
        encoded(|b| c.encode(0, 4, b)),
        [0x02, 0x85, 0, 0, 4, 0, 12, 0, 1, 0, 5, 0]
    );
    // EVENT_DEVICE and AREA_RELEASE.
    let ev = BusEvent::Device {
        dev_num: 2,
        state: device_state::ADDED,
    };
    assert_eq!(
        encoded(|b| ev.encode(0, 0, b)),
        [0x02, 0x40, 0, 0, 0, 0, 12, 0, 2, 0, 1, 0]
    );
    let ev = BusEvent::AreaRelease { area_id: 9 };
    assert_eq!(
        encoded(|b| ev.encode(0, 0, b)),
        [0x02, 0xc0, 0, 0, 0, 0, 10, 0, 9, 0]
    );
}

#[test]
fn area_attributes() {
    let a = AreaAttrs::SHARE_RW_XN_INNER_WB_NORMAL_NS;
    // PoC: 0x0004 | 0x30 | 0xC0 | 0x200 | 0x400.
    assert_eq!(a.bits(), 0x6f4);
    assert_eq!(AreaAttrs::from_bits(0x6f4), Some(a));
    let b = AreaAttrs::from_bits(0b1010_0110_1001).unwrap();
    assert_eq!(b.kind, ShareKind::Lend);
    assert!(!b.writeable && b.executable && b.driver_retention && !b.non_secure);
    assert_eq!(
        (b.shareability, b.cacheability, b.memory_type),
        (Shareability::Outer, 1, MemoryType::Normal)
    );
    // Every valid value round-trips.
    for v in 0..1u32 << 12 {
        if let Some(x) = AreaAttrs::from_bits(v) {
            assert_eq!(x.bits(), v);
        }
    }
    // Reserved encodings.
    for v in [
        1 << 12,
        0x6f7,                // type 3
        0x6f4 & !0x30 | 0x10, // shareability 1
        0x6f4 | 0x300,        // memory type 3
        0x6f4 & !0xc0,        // normal memory, cacheability 0
        0x6f4 & !0xc0 | 0x80, // normal memory, cacheability 2
    ] {
        assert_eq!(AreaAttrs::from_bits(v), None, "{v:#x}");
    }
    // Device memory keeps its two bits whatever they are.
    assert_eq!(AreaAttrs::from_bits(0x1b4).unwrap().cacheability, 2);
}

#[test]
fn bus_addresses() {
    assert_eq!(bus_address(3, 0x1000), Some(0x0003_0000_0000_1000));
    assert_eq!(bus_address(0xffff, (1 << 48) - 1), Some(u64::MAX));
    assert_eq!(bus_address(1, 1 << 48), None);
    assert_eq!(split_bus_address(0x0003_0000_0000_1000), (3, 0x1000));
}

#[test]
fn malformed_messages_are_rejected() {
    assert_eq!(
        BusRequest::decode(&[2, 3, 0, 0]),
        Err(DecodeError::Truncated)
    );
    assert_eq!(
        BusRequest::decode(&[2, 3, 0, 0, 0, 0, 7, 0]),
        Err(DecodeError::BadSize)
    );
    assert_eq!(
        BusRequest::decode(&[2, 3, 0, 0, 0, 0, 12, 0, 1]),
        Err(DecodeError::Truncated)
    );
    // Transport messages and responses are not bus requests.
    assert_eq!(
        BusRequest::decode(&[0, 2, 0, 0, 0, 0, 8, 0]),
        Err(DecodeError::NotBus)
    );
    assert_eq!(
        BusRequest::decode(&[3, 0x83, 0, 0, 0, 0, 8, 0]),
        Err(DecodeError::WrongDirection)
    );
    assert_eq!(
        BusResponse::decode(&[2, 0x83, 0, 0, 0, 0, 8, 0], GetDevicesOrder::V2),
        Err(DecodeError::WrongDirection)
    );
    assert_eq!(
        BusEvent::decode(&[3, 0x40, 0, 0, 0, 0, 12, 0, 0, 0, 1, 0]),
        Err(DecodeError::WrongDirection)
    );
    // Unknown ids, in each direction; events are not requests.
    assert_eq!(
        BusRequest::decode(&[2, 0x88, 0, 0, 0, 0, 8, 0]),
        Err(DecodeError::UnknownId(0x88))
    );
    assert_eq!(
        BusRequest::decode(&[2, 0x40, 0, 0, 0, 0, 12, 0, 0, 0, 1, 0]),
        Err(DecodeError::UnknownId(0x40))
    );
    assert_eq!(
        BusEvent::decode(&[2, 0x41, 0, 0, 0, 0, 8, 0]),
        Err(DecodeError::UnknownId(0x41))
    );
    // Payload lengths are exact: RESET with a payload, PING short, VERSION
    // of an unknown form, ERROR too long.
    assert_eq!(
        BusRequest::decode(&[2, 0x83, 0, 0, 0, 0, 9, 0, 0]),
        Err(DecodeError::BadLength)
    );
    assert_eq!(
        BusRequest::decode(&[2, 0x03, 0, 0, 0, 0, 11, 0, 1, 2, 3]),
        Err(DecodeError::BadLength)
    );
    let mut v = [0u8; 18];
    v[..8].copy_from_slice(&[2, 0x80, 0, 0, 0, 0, 18, 0]);
    assert_eq!(BusRequest::decode(&v), Err(DecodeError::BadLength));
    assert_eq!(
        BusResponse::decode(
            &[3, 0x87, 0, 0, 0, 0, 11, 0, 0x81, 0, 0],
            GetDevicesOrder::V2
        ),
        Err(DecodeError::BadLength)
    );
    // A GET_DEVICES bitmap that disagrees with its count.
    let g = [3, 2, 0, 0, 0, 0, 15, 0, 0, 0, 0, 0, 16, 0, 0xff];
    assert_eq!(
        BusResponse::decode(&g, GetDevicesOrder::V2),
        Err(DecodeError::BadLength)
    );
    assert_eq!(DeviceList::new(GetDevicesOrder::V2, 0, 9, 0, &[0]), None);
    // Bytes after msg_size are padding, not payload.
    let (_, r) = BusRequest::decode(&[2, 0x83, 0, 0, 0, 0, 8, 0, 0xee, 0xee]).unwrap();
    assert_eq!(r, BusRequest::Reset);
}

// ---------------------------------------------------------------------------
// The state machine.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Retrieve(u16),
    Relinquish(u16),
    Reset,
    NextEvent,
    Configure(EventMethod, u16),
}

/// A host that records every call and answers as told.
struct Host {
    calls: Vec<Call>,
    retrieve: HostStatus,
    relinquish: HostStatus,
    reset: HostStatus,
    accept: bool,
    events: VecDeque<Vec<u8>>,
    bitmap: Vec<u8>,
}

impl Host {
    fn new() -> Self {
        Host {
            calls: Vec::new(),
            retrieve: HostStatus::Ok,
            relinquish: HostStatus::Ok,
            reset: HostStatus::Ok,
            accept: true,
            events: VecDeque::new(),
            bitmap: std::vec![0b0000_0101],
        }
    }
}

impl FfaBusHost for Host {
    fn retrieve_area(&mut self, area: &SharedArea) -> HostStatus {
        self.calls.push(Call::Retrieve(area.area_id));
        self.retrieve
    }
    fn relinquish_area(&mut self, area: &SharedArea) -> HostStatus {
        self.calls.push(Call::Relinquish(area.area_id));
        self.relinquish
    }
    fn reset_devices(&mut self) -> HostStatus {
        self.calls.push(Call::Reset);
        self.reset
    }
    fn next_event(&mut self, out: &mut [u8]) -> Option<usize> {
        self.calls.push(Call::NextEvent);
        let e = self.events.pop_front()?;
        let n = e.len().min(out.len());
        out[..n].copy_from_slice(&e[..n]);
        Some(e.len())
    }
    fn configure_events(&mut self, method: EventMethod, notif_id: u16) -> bool {
        self.calls.push(Call::Configure(method, notif_id));
        self.accept
    }
    fn device_bitmap(&self) -> &[u8] {
        &self.bitmap
    }
}

const CONFIG: FfaBusConfig = FfaBusConfig {
    ffa_version: FFA_1_2,
    bus_features: feature::DIRECT_RX | feature::INDIRECT_RX,
    devices_order: GetDevicesOrder::V2,
};

/// A bus, a host and a driver that encodes requests with fresh tokens.
struct Rig {
    bus: FfaBus<2>,
    host: Host,
    token: u16,
    out: [u8; FFA_MAX_MSG_SIZE],
}

impl Rig {
    fn new() -> Self {
        Rig {
            bus: FfaBus::new(CONFIG),
            host: Host::new(),
            token: 1,
            out: [0; FFA_MAX_MSG_SIZE],
        }
    }

    fn raw(&mut self, frame: &[u8]) -> Handled {
        let h = self.bus.handle(frame, &mut self.out, &mut self.host);
        if let Some(n) = h.response_len {
            assert!(n <= FFA_MAX_MSG_SIZE);
            let (hdr, _) = msg::Header::decode(&self.out[..n]).unwrap();
            assert_eq!(usize::from(hdr.msg_size), n);
        }
        h
    }

    /// Sends `r` and returns the handling and the decoded answer.
    fn send(&mut self, r: BusRequest) -> (Handled, Option<BusResponse<'_>>) {
        self.send_as(0, r)
    }

    fn send_as(&mut self, dev_num: u16, r: BusRequest) -> (Handled, Option<BusResponse<'_>>) {
        self.token += 1;
        let mut req = [0u8; 64];
        let n = r.encode(dev_num, self.token, &mut req).unwrap();
        let h = self.raw(&req[..n]);
        let resp = h.response_len.map(|len| {
            let (hdr, resp) = BusResponse::decode(&self.out[..len], GetDevicesOrder::V2).unwrap();
            assert_eq!(hdr.token, self.token, "token echoed");
            if let BusResponse::Error { original_msg_id } = resp {
                assert_eq!(original_msg_id, u16::from(r.msg_id()));
                assert_eq!(hdr.dev_num, dev_num);
                assert!(matches!(h.outcome, Outcome::Error(_)));
            } else {
                assert_eq!((hdr.msg_id, hdr.dev_num), (r.msg_id(), 0));
                assert_eq!(h.outcome, Outcome::Served);
            }
            resp
        });
        (h, resp)
    }

    fn poc_version(&mut self, bus_version: u32, transport_revision: u32) -> VersionResponse {
        let r = BusRequest::Version(VersionRequest::Poc {
            bus_version,
            transport_revision,
            ffa_version: FFA_1_1,
        });
        match self.send(r).1 {
            Some(BusResponse::Version(v)) => v,
            other => panic!("VERSION answered {other:?}"),
        }
    }

    fn negotiate(&mut self) {
        self.poc_version(0, 0);
        self.poc_version(BUS_VERSION_1_0, 1);
        assert!(self.bus.is_negotiated());
    }

    fn share(&mut self, area_id: u16) -> (Handled, u16) {
        let r = BusRequest::AreaShare {
            area_id,
            mem_handle: 0x100 + u64::from(area_id),
            mem_tag: 0,
            page_count: 2,
            attrs: 0x6f4,
        };
        match self.send(r) {
            (h, Some(BusResponse::AreaShare { area_id: a, result })) => {
                assert_eq!(a, area_id);
                (h, result)
            }
            other => panic!("AREA_SHARE answered {other:?}"),
        }
    }

    fn unshare(&mut self, area_id: u16) -> u16 {
        match self.send(BusRequest::AreaUnshare { area_id }).1 {
            Some(BusResponse::AreaUnshare { result, .. }) => result,
            other => panic!("AREA_UNSHARE answered {other:?}"),
        }
    }
}

fn supported(max_areas: u16) -> VersionResponse {
    VersionResponse::Poc {
        bus_version: BUS_VERSION_1_0,
        transport_revision: 1,
        ffa_version: FFA_1_1,
        transport_features: 0,
        bus_features: CONFIG.bus_features,
        max_areas,
    }
}

const REFUSED: VersionResponse = VersionResponse::Poc {
    bus_version: 0,
    transport_revision: 0,
    ffa_version: FFA_1_1,
    transport_features: 0,
    bus_features: 0,
    max_areas: 0,
};

#[test]
fn before_version_only_version_and_reset_are_served() {
    let mut rig = Rig::new();
    let share = BusRequest::AreaShare {
        area_id: 1,
        mem_handle: 0x1122_3344_5566_7788,
        mem_tag: 0,
        page_count: 1,
        attrs: 0x6f4,
    };
    let mut req = [0u8; 64];
    let n = share.encode(0, 0x4242, &mut req).unwrap();
    let h = rig.raw(&req[..n]);
    assert_eq!(h.outcome, Outcome::Error(ErrorCause::NotNegotiated));
    assert_eq!(h.response_len, Some(10));
    assert_eq!(
        rig.out[..10],
        [0x03, 0x87, 0, 0, 0x42, 0x42, 10, 0, 0x81, 0]
    );
    for r in [
        BusRequest::Ping { data: 1 },
        BusRequest::GetDevices {
            offset: 0,
            count: 8,
        },
        BusRequest::EventPoll,
        BusRequest::EventConfigure {
            method: 0,
            notif_id: 0,
        },
        BusRequest::AreaUnshare { area_id: 1 },
        BusRequest::FifoConfigure {
            mem_handle: 1,
            page_count: 1,
            driver_notif_id: 0,
        },
    ] {
        let (h, resp) = rig.send(r);
        assert_eq!(h.outcome, Outcome::Error(ErrorCause::NotNegotiated));
        assert!(matches!(resp, Some(BusResponse::Error { .. })));
    }
    // Unknown ids too, whatever their length.
    let h = rig.raw(&[2, 0x9f, 0, 0, 9, 0, 10, 0, 1, 2]);
    assert_eq!(h.outcome, Outcome::Error(ErrorCause::NotNegotiated));
    // Events are dropped.
    let mut ev = [0u8; 16];
    let n = BusEvent::Device {
        dev_num: 0,
        state: 1,
    }
    .encode(0, 0, &mut ev)
    .unwrap();
    assert_eq!(
        rig.raw(&ev[..n]).outcome,
        Outcome::Dropped(DropCause::Event)
    );
    assert!(rig.host.calls.is_empty(), "host untouched");
    // RESET is served.
    let (h, resp) = rig.send(BusRequest::Reset);
    assert_eq!(h.outcome, Outcome::Served);
    assert_eq!(resp, Some(BusResponse::Reset { result: 0 }));
    assert!(!rig.bus.is_negotiated());
}

#[test]
fn probe_then_echo_negotiates() {
    let mut rig = Rig::new();
    // Probe {0, 0, ffa}: the supported pair, not yet negotiated; FF-A
    // version min(local 1.2, driver 1.1).
    assert_eq!(rig.poc_version(0, 0), supported(2));
    assert!(!rig.bus.is_negotiated());
    assert_eq!(
        rig.send(BusRequest::Ping { data: 5 }).0.outcome,
        Outcome::Error(ErrorCause::NotNegotiated)
    );
    // Echo: negotiated.
    assert_eq!(rig.poc_version(BUS_VERSION_1_0, 1), supported(2));
    assert!(rig.bus.is_negotiated());
    assert_eq!(
        rig.send(BusRequest::Ping { data: 5 }).1,
        Some(BusResponse::Ping { data: 5 })
    );
    // A probe now gets the negotiated pair and changes nothing; another
    // pair gets zeros and changes nothing either.
    assert_eq!(rig.poc_version(0, 0), supported(2));
    assert_eq!(rig.poc_version(BUS_VERSION_1_0 + 1, 1), REFUSED);
    assert!(rig.bus.is_negotiated());
    // A driver with a newer FF-A version gets the device's.
    let r = BusRequest::Version(VersionRequest::Poc {
        bus_version: BUS_VERSION_1_0,
        transport_revision: 1,
        ffa_version: 0x0002_0000,
    });
    assert!(matches!(
        rig.send(r).1,
        Some(BusResponse::Version(VersionResponse::Poc {
            ffa_version: FFA_1_2,
            ..
        }))
    ));
}

#[test]
fn newer_versions_get_the_supported_pair_older_ones_are_refused() {
    let mut rig = Rig::new();
    assert_eq!(rig.poc_version(0x0002_0000, 1), supported(2));
    assert_eq!(rig.poc_version(BUS_VERSION_1_0, 2), supported(2));
    assert!(!rig.bus.is_negotiated());
    // Older bus version, older revision, half a probe: all zeros.
    assert_eq!(rig.poc_version(0x0000_ffff, 1), REFUSED);
    assert_eq!(rig.poc_version(BUS_VERSION_1_0, 0), REFUSED);
    assert_eq!(rig.poc_version(0, 1), REFUSED);
    assert!(!rig.bus.is_negotiated());
    // The driver then echoes the supported pair.
    assert_eq!(rig.poc_version(BUS_VERSION_1_0, 1), supported(2));
    assert!(rig.bus.is_negotiated());
}

#[test]
fn optee_version_forms() {
    for qualcomm in [false, true] {
        let form = |bus_version, transport_revision| {
            BusRequest::Version(if qualcomm {
                VersionRequest::Qualcomm(VersionInfo {
                    bus_version,
                    transport_revision,
                    transport_features: 0,
                    bus_features: feature::DIRECT_TX,
                    max_areas: 0,
                })
            } else {
                VersionRequest::OpTee {
                    bus_version,
                    transport_revision,
                }
            })
        };
        let mut rig = Rig::new();
        // Anything but {1.0, 1}: an all-zero 18-byte payload.
        let (h, resp) = rig.send(form(0, 0));
        assert_eq!(h.response_len, Some(26));
        assert_eq!(
            resp,
            Some(BusResponse::Version(VersionResponse::OpTee(
                VersionInfo::default()
            )))
        );
        assert!(!rig.bus.is_negotiated());
        let (_, resp) = rig.send(form(BUS_VERSION_1_0, 1));
        assert_eq!(
            resp,
            Some(BusResponse::Version(VersionResponse::OpTee(VersionInfo {
                bus_version: BUS_VERSION_1_0,
                transport_revision: 1,
                transport_features: 0,
                bus_features: CONFIG.bus_features,
                max_areas: 2,
            })))
        );
        assert!(rig.bus.is_negotiated());
    }
}

#[test]
fn areas_share_unshare_and_refusals() {
    let mut rig = Rig::new();
    rig.negotiate();
    let (h, r) = rig.share(1);
    assert_eq!(r, result::SUCCESS);
    assert_eq!(
        h.host,
        HostCall::Retrieve {
            area_id: 1,
            status: HostStatus::Ok
        }
    );
    let a = *rig.bus.area(1).unwrap();
    assert_eq!(
        (a.mem_handle, a.page_count, a.attrs),
        (0x101, 2, AreaAttrs::SHARE_RW_XN_INNER_WB_NORMAL_NS)
    );
    // Translating bus addresses: inside the 8 KiB, and past it.
    let addr = bus_address(1, 0x1ff0).unwrap();
    assert_eq!(
        rig.bus.resolve(addr, 0x10).map(|(a, o)| (a.area_id, o)),
        Some((1, 0x1ff0))
    );
    assert_eq!(rig.bus.resolve(addr, 0x11), None);
    assert_eq!(rig.bus.resolve(bus_address(2, 0).unwrap(), 1), None);
    // Sharing an id again: result 1, the host is not asked.
    let calls = rig.host.calls.len();
    let (h, r) = rig.share(1);
    assert_eq!((r, h.host), (result::ERROR, HostCall::None));
    assert_eq!(rig.host.calls.len(), calls);
    // The host's own answers become the result.
    rig.host.retrieve = HostStatus::Busy;
    assert_eq!(rig.share(2).1, result::BUSY);
    rig.host.retrieve = HostStatus::Error;
    assert_eq!(rig.share(2).1, result::ERROR);
    assert!(rig.bus.area(2).is_none());
    rig.host.retrieve = HostStatus::Ok;
    assert_eq!(rig.share(2).1, result::SUCCESS);
    // The table holds two: a third is refused without asking the host.
    let calls = rig.host.calls.len();
    assert_eq!(rig.share(3).1, result::ERROR);
    assert_eq!(rig.host.calls.len(), calls);
    // Reserved attribute encodings are refused without asking the host.
    rig.unshare(2);
    let r = BusRequest::AreaShare {
        area_id: 5,
        mem_handle: 1,
        mem_tag: 0,
        page_count: 1,
        attrs: 0x6f7,
    };
    let calls = rig.host.calls.len();
    assert_eq!(
        rig.send(r).1,
        Some(BusResponse::AreaShare {
            area_id: 5,
            result: result::ERROR
        })
    );
    assert_eq!(rig.host.calls.len(), calls);
    // Unsharing an unknown id: result 1, host not asked.
    assert_eq!(rig.unshare(9), result::ERROR);
    assert_eq!(rig.host.calls.len(), calls);
    // A busy relinquish keeps the area; a successful one frees it.
    rig.host.relinquish = HostStatus::Busy;
    assert_eq!(rig.unshare(1), result::BUSY);
    assert!(rig.bus.area(1).is_some());
    rig.host.relinquish = HostStatus::Ok;
    assert_eq!(rig.unshare(1), result::SUCCESS);
    assert!(rig.bus.area(1).is_none());
    assert_eq!(rig.unshare(1), result::ERROR);
    assert_eq!(rig.bus.areas().count(), 0);
}

#[test]
fn reset_relinquishes_every_area_and_forgets_version() {
    let mut rig = Rig::new();
    rig.negotiate();
    rig.share(4);
    rig.share(7);
    rig.send(BusRequest::EventConfigure {
        method: EventMethod::Poll as u8,
        notif_id: 0,
    });
    assert_eq!(rig.bus.event_method(), Some(EventMethod::Poll));
    // A busy reset changes nothing.
    rig.host.reset = HostStatus::Busy;
    let (h, resp) = rig.send(BusRequest::Reset);
    assert_eq!(
        resp,
        Some(BusResponse::Reset {
            result: result::BUSY
        })
    );
    assert_eq!(
        h.host,
        HostCall::Reset {
            status: HostStatus::Busy,
            relinquished: 0
        }
    );
    assert!(rig.bus.is_negotiated());
    assert_eq!(rig.bus.areas().count(), 2);
    // A real one: devices reset, then each area relinquished, even when the
    // host cannot (it is the host's to retry).
    rig.host.reset = HostStatus::Ok;
    rig.host.relinquish = HostStatus::Error;
    rig.host.calls.clear();
    let (h, resp) = rig.send(BusRequest::Reset);
    assert_eq!(resp, Some(BusResponse::Reset { result: 0 }));
    assert_eq!(
        h.host,
        HostCall::Reset {
            status: HostStatus::Ok,
            relinquished: 2
        }
    );
    assert_eq!(
        rig.host.calls,
        [Call::Reset, Call::Relinquish(4), Call::Relinquish(7)]
    );
    assert_eq!(rig.bus.areas().count(), 0);
    assert_eq!(rig.bus.event_method(), None);
    // Back to pre-VERSION.
    assert!(!rig.bus.is_negotiated());
    let share = BusRequest::AreaShare {
        area_id: 4,
        mem_handle: 1,
        mem_tag: 0,
        page_count: 1,
        attrs: 0x6f4,
    };
    assert_eq!(
        rig.send(share).0.outcome,
        Outcome::Error(ErrorCause::NotNegotiated)
    );
    rig.negotiate();
    assert_eq!(rig.share(4).1, result::SUCCESS);
}

#[test]
fn event_poll_empty_and_with_events() {
    let mut rig = Rig::new();
    rig.negotiate();
    let (h, resp) = rig.send(BusRequest::EventPoll);
    assert_eq!(resp, Some(BusResponse::EventPoll));
    assert_eq!(h.response_len, Some(8));
    assert_eq!(h.host, HostCall::EventPoll(Polled::Empty));
    // A transport EVENT_USED goes out as it is.
    let mut ev = [0u8; 32];
    let n = msg::Response::EventUsed { vq_index: 1 }
        .encode(msg::Revision::V2, 3, 0, &mut ev)
        .unwrap();
    rig.host.events.push_back(ev[..n].to_vec());
    let mut req = [0u8; 8];
    BusRequest::EventPoll.encode(0, 77, &mut req).unwrap();
    let h = rig.raw(&req);
    assert_eq!(h.host, HostCall::EventPoll(Polled::Delivered));
    assert_eq!(h.response_len, Some(n));
    assert_eq!(rig.out[..n], ev[..n]);
    // So does a bus AREA_RELEASE.
    let n = BusEvent::AreaRelease { area_id: 4 }
        .encode(0, 0, &mut ev)
        .unwrap();
    rig.host.events.push_back(ev[..n].to_vec());
    let h = rig.raw(&req);
    assert_eq!((h.response_len, h.outcome), (Some(n), Outcome::Served));
    assert_eq!(
        BusEvent::decode(&rig.out[..n]).unwrap().1,
        BusEvent::AreaRelease { area_id: 4 }
    );
    // A host frame that is not an event, or does not fit, is not sent.
    let mut resp = [0u8; 16];
    let n = BusResponse::Ping { data: 1 }
        .encode(0, 0, &mut resp)
        .unwrap();
    rig.host.events.push_back(resp[..n].to_vec());
    rig.host
        .events
        .push_back(std::vec![0; FFA_MAX_MSG_SIZE + 1]);
    let mut bad = ev[..10].to_vec();
    bad[6] = 11; // msg_size disagrees with the length
    rig.host.events.push_back(bad);
    for _ in 0..3 {
        let (h, resp) = rig.send(BusRequest::EventPoll);
        assert_eq!(h.host, HostCall::EventPoll(Polled::Malformed));
        assert_eq!(resp, Some(BusResponse::EventPoll));
    }
    // EVENT_POLL carries no payload.
    let h = rig.raw(&[2, 0x84, 0, 0, 1, 0, 9, 0, 0]);
    assert_eq!(h.outcome, Outcome::Error(ErrorCause::BadLength));
}

#[test]
fn event_configure_once() {
    let mut rig = Rig::new();
    rig.negotiate();
    let conf = |method: u8| BusRequest::EventConfigure {
        method,
        notif_id: 7,
    };
    // The host refuses NOTIF: result 1, and the driver may try again.
    rig.host.accept = false;
    let (h, resp) = rig.send(conf(1));
    assert_eq!(resp, Some(BusResponse::EventConfigure { result: 1 }));
    assert_eq!(
        h.host,
        HostCall::EventConfigure {
            method: EventMethod::Notif,
            accepted: false
        }
    );
    // FIFO and undefined methods are refused without asking the host.
    rig.host.accept = true;
    let calls = rig.host.calls.len();
    assert_eq!(
        rig.send(conf(3)).1,
        Some(BusResponse::EventConfigure { result: 1 })
    );
    assert_eq!(
        rig.send(conf(9)).1,
        Some(BusResponse::EventConfigure { result: 1 })
    );
    assert_eq!(rig.host.calls.len(), calls);
    // POLL accepted.
    assert_eq!(
        rig.send(conf(0)).1,
        Some(BusResponse::EventConfigure { result: 0 })
    );
    assert_eq!(
        rig.host.calls.last(),
        Some(&Call::Configure(EventMethod::Poll, 7))
    );
    assert_eq!(rig.bus.event_method(), Some(EventMethod::Poll));
    // A second configuration: ERROR.
    let (h, resp) = rig.send(conf(1));
    assert_eq!(h.outcome, Outcome::Error(ErrorCause::AlreadyConfigured));
    assert_eq!(
        resp,
        Some(BusResponse::Error {
            original_msg_id: 0x85
        })
    );
    assert_eq!(rig.bus.event_method(), Some(EventMethod::Poll));
    // FIFO_CONFIGURE is refused.
    let r = BusRequest::FifoConfigure {
        mem_handle: 1,
        page_count: 2,
        driver_notif_id: 3,
    };
    assert_eq!(
        rig.send(r).1,
        Some(BusResponse::FifoConfigure {
            result: 1,
            device_notif_id: 0
        })
    );
}

#[test]
fn get_devices_and_ping() {
    let mut rig = Rig::new();
    rig.negotiate();
    // Devices 0, 2 and 40 present.
    rig.host.bitmap = std::vec![0b101, 0, 0, 0, 0, 1];
    let get = |offset, count| BusRequest::GetDevices { offset, count };
    let list = |r: Option<BusResponse<'_>>| match r {
        Some(BusResponse::Devices(d)) => {
            (d.offset(), d.count(), d.next_offset(), d.bitmap().to_vec())
        }
        other => panic!("GET_DEVICES answered {other:?}"),
    };
    assert_eq!(
        list(rig.send(get(0, 32)).1),
        (0, 32, 32, std::vec![5, 0, 0, 0])
    );
    assert_eq!(
        list(rig.send(get(32, 32)).1),
        (32, 32, 0, std::vec![0, 1, 0, 0])
    );
    assert_eq!(list(rig.send(get(0, 3)).1), (0, 3, 3, std::vec![5]));
    assert_eq!(list(rig.send(get(0, 0)).1), (0, 0, 0, std::vec![]));
    assert_eq!(
        list(rig.send(get(0xfff8, 8)).1),
        (0xfff8, 8, 0, std::vec![0])
    );
    // The count is limited by the frame: (104 - 8 - 6) * 8 slots.
    let (h, r) = rig.send(get(0, 0xffff));
    assert_eq!(h.response_len, Some(FFA_MAX_MSG_SIZE));
    let (_, count, next, bits) = list(r);
    assert_eq!((count, next, bits.len()), (720, 0, 90));
    // And by a smaller out buffer.
    let mut req = [0u8; 32];
    get(0, 0xffff).encode(0, 1, &mut req).unwrap();
    let mut out = [0u8; RESPONSE_BUF_MIN];
    let h = rig.bus.handle(&req, &mut out, &mut rig.host);
    assert_eq!(h.response_len, Some(RESPONSE_BUF_MIN));
    let (_, r) = BusResponse::decode(&out, GetDevicesOrder::V2).unwrap();
    assert!(matches!(r, BusResponse::Devices(d) if d.count() == 128 && d.next_offset() == 0));
    // The RFC3 order on a bus configured for it.
    let mut bus: FfaBus<1> = FfaBus::new(FfaBusConfig {
        devices_order: GetDevicesOrder::Rfc3,
        ..CONFIG
    });
    for r in [
        BusRequest::Version(VersionRequest::OpTee {
            bus_version: BUS_VERSION_1_0,
            transport_revision: 1,
        }),
        get(0, 32),
    ] {
        r.encode(0, 1, &mut req).unwrap();
        let n = r.encode(0, 1, &mut req).unwrap();
        bus.handle(&req[..n], &mut rig.out, &mut rig.host);
    }
    assert_eq!(
        rig.out[..18],
        [3, 2, 0, 0, 1, 0, 18, 0, 0, 0, 32, 0, 32, 0, 5, 0, 0, 0]
    );
    // PING echoes.
    assert_eq!(
        rig.send(BusRequest::Ping { data: 0x1234_5678 }).1,
        Some(BusResponse::Ping { data: 0x1234_5678 })
    );
}

#[test]
fn bad_frames_never_panic_and_get_the_right_answer() {
    let mut rig = Rig::new();
    rig.negotiate();
    let mut req = [0u8; 64];
    let n = BusRequest::AreaShare {
        area_id: 1,
        mem_handle: 1,
        mem_tag: 0,
        page_count: 1,
        attrs: 0x6f4,
    }
    .encode(0, 9, &mut req)
    .unwrap();
    // Every truncation: shorter than the header or than msg_size -> drop.
    for k in 0..n {
        let h = rig.raw(&req[..k]);
        assert_eq!(h.response_len, None, "{k} bytes");
        assert_eq!(h.outcome, Outcome::Dropped(DropCause::Malformed));
    }
    // A consistent but short msg_size: ERROR for the length.
    let mut short = req;
    short[6] = (n - 1) as u8;
    assert_eq!(
        rig.raw(&short[..n - 1]).outcome,
        Outcome::Error(ErrorCause::BadLength)
    );
    // Register padding after msg_size is ignored.
    assert_eq!(rig.raw(&req[..n + 20]).outcome, Outcome::Served);
    // msg_size beyond 104: dropped, even though the bytes arrived.
    let mut big = [0u8; 200];
    big[..8].copy_from_slice(&[2, 0x83, 0, 0, 1, 0, 200, 0]);
    assert_eq!(
        rig.raw(&big).outcome,
        Outcome::Dropped(DropCause::Oversized)
    );
    big[6] = 105;
    assert_eq!(
        rig.raw(&big).outcome,
        Outcome::Dropped(DropCause::Oversized)
    );
    // msg_size below the header.
    assert_eq!(
        rig.raw(&[2, 0x83, 0, 0, 1, 0, 4, 0]).outcome,
        Outcome::Dropped(DropCause::Malformed)
    );
    // dev_num != 0 on a bus request: ERROR with that dev_num and token.
    let (h, resp) = rig.send_as(5, BusRequest::Ping { data: 1 });
    assert_eq!(h.outcome, Outcome::Error(ErrorCause::DevNum));
    assert_eq!(resp, Some(BusResponse::Error { original_msg_id: 3 }));
    assert_eq!(
        rig.out[..10],
        [3, 0x87, 5, 0, rig.token as u8, 0, 10, 0, 3, 0]
    );
    // Unknown bus ids: ERROR.
    assert_eq!(
        rig.raw(&[2, 0x88, 0, 0, 1, 0, 8, 0]).outcome,
        Outcome::Error(ErrorCause::UnknownId)
    );
    assert_eq!(
        rig.raw(&[2, 0x01, 0, 0, 1, 0, 8, 0]).outcome,
        Outcome::Error(ErrorCause::UnknownId)
    );
    // Responses and events to the device: dropped.
    assert_eq!(
        rig.raw(&[3, 0x83, 0, 0, 1, 0, 10, 0, 0, 0]).outcome,
        Outcome::Dropped(DropCause::Response)
    );
    assert_eq!(
        rig.raw(&[2, 0xc0, 0, 0, 0, 0, 10, 0, 1, 0]).outcome,
        Outcome::Dropped(DropCause::Event)
    );
    // Transport messages are not the bus's, whatever their shape.
    for f in [&[0u8, 2, 0, 0, 1, 0, 8, 0][..], &[1], &[0xfc, 0xff]] {
        let h = rig.raw(f);
        assert_eq!((h.outcome, h.response_len), (Outcome::NotBus, None));
    }
    assert_eq!(rig.raw(&[]).outcome, Outcome::Dropped(DropCause::Malformed));
    // Reserved type bits are ignored.
    let mut ping = [0u8; 12];
    BusRequest::Ping { data: 2 }
        .encode(0, 3, &mut ping)
        .unwrap();
    ping[0] |= 0xf0;
    assert_eq!(rig.raw(&ping).outcome, Outcome::Served);
    // An out buffer too small for any answer.
    let mut out = [0u8; RESPONSE_BUF_MIN - 1];
    let h = rig.bus.handle(&ping, &mut out, &mut rig.host);
    assert_eq!(
        (h.outcome, h.response_len),
        (Outcome::Dropped(DropCause::OutTooSmall), None)
    );
    assert_eq!(rig.bus.areas().count(), 1);
}

// ---------------------------------------------------------------------------
// Property test: arbitrary bytes.

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The bytes `decoded` must re-encode to: the input up to msg_size, with
/// the bits receivers ignore (type bits 2..7, EVENT_CONFIGURE's reserved
/// byte) cleared.
fn canonical(input: &[u8], msg_size: u16, request: bool) -> Vec<u8> {
    let mut v = input[..usize::from(msg_size)].to_vec();
    v[0] &= 3;
    if request && v[1] == id::EVENT_CONFIGURE {
        v[9] = 0;
    }
    v
}

/// Decodes `input` every way; returns how many decoders accepted it.
fn check_codecs(input: &[u8]) -> [bool; 3] {
    let mut buf = [0u8; 256];
    let mut ok = [false; 3];
    if let Ok((h, r)) = BusRequest::decode(input) {
        let n = r.encode(h.dev_num, h.token, &mut buf).unwrap();
        assert_eq!(buf[..n], canonical(input, h.msg_size, true)[..], "{r:?}");
        ok[0] = true;
    }
    for order in [GetDevicesOrder::Rfc3, GetDevicesOrder::V2] {
        if let Ok((h, r)) = BusResponse::decode(input, order) {
            let n = r.encode(h.dev_num, h.token, &mut buf).unwrap();
            assert_eq!(buf[..n], canonical(input, h.msg_size, false)[..], "{r:?}");
            ok[1] = true;
        }
    }
    if let Ok((h, e)) = BusEvent::decode(input) {
        let n = e.encode(h.dev_num, h.token, &mut buf).unwrap();
        assert_eq!(buf[..n], canonical(input, h.msg_size, false)[..], "{e:?}");
        ok[2] = true;
    }
    let _ = is_event_frame(input);
    ok
}

#[test]
fn arbitrary_bytes_decode_and_reencode() {
    // Each id with the payload lengths its messages have (any direction).
    const SHAPES: [(u8, &[usize]); 14] = [
        (id::GET_DEVICES, &[4, 6, 7, 8, 10]),
        (id::PING, &[4]),
        (id::EVENT_DEVICE, &[4]),
        (id::VERSION, &[8, 12, 18, 22]),
        (id::AREA_SHARE, &[26, 4]),
        (id::AREA_UNSHARE, &[2, 4]),
        (id::RESET, &[0, 2]),
        (id::EVENT_POLL, &[0]),
        (id::EVENT_CONFIGURE, &[4, 2]),
        (id::FIFO_CONFIGURE, &[12, 4]),
        (id::ERROR, &[2]),
        (id::AREA_RELEASE, &[2]),
        (0x01, &[0, 4]),
        (0x88, &[0, 4]),
    ];
    let cases = if cfg!(miri) { 400 } else { 5000 };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut bus: FfaBus<3> = FfaBus::new(CONFIG);
    let mut host = Host::new();
    let mut out = [0u8; FFA_MAX_MSG_SIZE];
    let mut served = 0;
    let mut decoded = [0; 3];
    for _ in 0..cases {
        // Random bytes, usually shaped like a bus message so the decoders
        // get past the header: a known id, a payload length a message with
        // that id has (or one off), a matching msg_size, dev_num 0,
        // sometimes padding after it.
        let shaped = rng.below(8) != 0;
        let (msg_id, lens) = SHAPES[rng.below(SHAPES.len() as u64) as usize];
        let payload = if shaped {
            let l = lens[rng.below(lens.len() as u64) as usize];
            match rng.below(8) {
                0 => l + 1,
                1 => l.saturating_sub(1),
                _ => l,
            }
        } else {
            rng.below(40) as usize
        };
        let mut f: Vec<u8> = (0..8 + payload + rng.below(3) as usize)
            .map(|_| rng.next() as u8)
            .collect();
        if shaped {
            f[0] = match rng.below(4) {
                0 => rng.next() as u8,
                1 => 3,
                _ => 2,
            };
            f[1] = msg_id;
            if rng.below(4) != 0 {
                f[2] = 0;
                f[3] = 0;
            }
            let size = (8 + payload) as u16;
            f[6..8].copy_from_slice(&size.to_le_bytes());
            if f[1] == id::GET_DEVICES && payload >= 6 {
                // A count whose bitmap fills the rest, in either order.
                let count = ((payload - 6) * 8) as u16;
                let at = if rng.below(2) == 0 { 10 } else { 12 };
                f[at..at + 2].copy_from_slice(&count.to_le_bytes());
            }
            if f[1] == id::AREA_SHARE && payload == 26 && rng.below(2) == 0 {
                f[30..34].copy_from_slice(&0x6f4u32.to_le_bytes());
            }
        }
        for (d, ok) in decoded.iter_mut().zip(check_codecs(&f)) {
            *d += usize::from(ok);
        }
        // The same bytes to the state machine, which must never panic and
        // only ever write well-formed answers.
        let was = bus.is_negotiated();
        let h = bus.handle(&f, &mut out, &mut host);
        if let Some(n) = h.response_len {
            assert!(n <= out.len());
            let (rh, resp) = BusResponse::decode(&out[..n], GetDevicesOrder::V2).unwrap();
            assert_eq!(usize::from(rh.msg_size), n);
            assert_eq!(rh.token, u16::from_le_bytes([f[4], f[5]]));
            if let BusResponse::Error { original_msg_id } = resp {
                assert_eq!(original_msg_id, u16::from(f[1]));
            } else {
                assert!(was || matches!(f[1], id::VERSION | id::RESET));
                served += 1;
            }
        }
        if rng.below(20) == 0 {
            // Negotiate now and then so the rest of the machine is reached.
            let mut v = [0u8; 20];
            BusRequest::Version(VersionRequest::Poc {
                bus_version: BUS_VERSION_1_0,
                transport_revision: 1,
                ffa_version: FFA_1_2,
            })
            .encode(0, 1, &mut v)
            .unwrap();
            bus.handle(&v, &mut out, &mut host);
        }
    }
    // Enough of each kind got deep enough to mean something.
    assert!(served > cases / 20, "only {served} served");
    assert!(
        decoded.iter().all(|&d| d > cases / 50),
        "decoded {decoded:?}"
    );
}
