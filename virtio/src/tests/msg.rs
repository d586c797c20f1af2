//! virtio-msg: codec round trips, malformed input, and a whole device
//! bring-up through `handle`.

use super::Arena;
use super::control::Echo;
use crate::control::{ControlError, DeviceCore};
use crate::memory::GuestMemory;
use crate::mock::MockSplitQueue;
use crate::msg::{self, DecodeError, FeatureBlocks, Request, Response, VQUEUE_ENABLED, handle, id};
use crate::spec::features::VERSION_1;
use crate::spec::status::{ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK};

fn round_trip_request(r: Request<'_>) {
    let mut buf = [0u8; 128];
    let n = r.encode(7, 0x1234, &mut buf).unwrap();
    let (h, back) = Request::decode(&buf[..n]).unwrap();
    assert_eq!(
        (h.dev_num, h.token, usize::from(h.msg_size)),
        (7, 0x1234, n)
    );
    assert_eq!(back, r);
}

#[test]
fn requests_round_trip() {
    let fb = [1u8, 0, 0, 0, 2, 0, 0, 0];
    for r in [
        Request::GetDeviceInfo,
        Request::GetDeviceFeatures {
            block_index: 0,
            num_blocks: 2,
        },
        Request::SetDriverFeatures {
            block_index: 0,
            features: FeatureBlocks::from_le_bytes(&fb).unwrap(),
        },
        Request::GetConfig {
            offset: 4,
            length: 8,
        },
        Request::SetConfig {
            generation: 3,
            offset: 1,
            data: b"xyz",
        },
        Request::GetDeviceStatus,
        Request::SetDeviceStatus { status: 15 },
        Request::GetVqueue { index: 1 },
        Request::SetVqueue {
            index: 1,
            flags: 1,
            size: 64,
            desc: 1 << 40,
            driver: 2,
            device: 3,
        },
        Request::ResetVqueue { index: 0 },
        Request::GetShm { shmid: 0 },
        Request::EventAvail {
            vq_index: 0,
            next_offset: 0x8000_0001,
        },
    ] {
        round_trip_request(r);
    }
}

#[test]
fn responses_round_trip() {
    let fb = [9u8, 0, 0, 0];
    for r in [
        Response::DeviceInfo {
            device_id: 32,
            vendor_id: 1,
            device_uuid: [7; 16],
            num_feature_blocks: 2,
            config_size: 0,
            max_virtqueues: 2,
            admin_vq_start: 0,
            admin_vq_count: 0,
        },
        Response::DeviceFeatures {
            block_index: 1,
            features: FeatureBlocks::from_le_bytes(&fb).unwrap(),
        },
        Response::Config {
            generation: 1,
            offset: 0,
            data: b"abcd",
        },
        Response::SetConfig {
            generation: 2,
            offset: 4,
            length: 4,
        },
        Response::DeviceStatus {
            msg_id: id::SET_DEVICE_STATUS,
            status: 8,
        },
        Response::Vqueue {
            index: 0,
            max_size: 64,
            cur_size: 64,
            flags: 1,
            desc: 1,
            driver: 2,
            device: 3,
        },
        Response::Shm {
            shmid: 0,
            length: 0,
            address: 0,
        },
        Response::Empty {
            msg_id: id::SET_VQUEUE,
        },
        Response::EventUsed { vq_index: 1 },
        Response::EventConfig {
            device_status: 0x4f,
            generation: 5,
        },
    ] {
        let mut buf = [0u8; 128];
        let n = r.encode(3, 9, &mut buf).unwrap();
        let (h, back) = Response::decode(&buf[..n]).unwrap();
        assert_eq!((h.dev_num, h.token), (3, 9));
        assert_eq!(back, r);
    }
}

#[test]
fn the_minimum_frame_carries_device_info() {
    let r = Response::DeviceInfo {
        device_id: 32,
        vendor_id: 0,
        device_uuid: [0; 16],
        num_feature_blocks: 2,
        config_size: 0,
        max_virtqueues: 2,
        admin_vq_start: 0,
        admin_vq_count: 0,
    };
    let mut buf = [0u8; msg::MIN_FRAME];
    assert_eq!(r.encode(0, 0, &mut buf), Ok(msg::MIN_FRAME));
    assert_eq!(
        r.encode(0, 0, &mut buf[..msg::MIN_FRAME - 1]),
        Err(msg::EncodeError::BufferTooSmall)
    );
}

#[test]
fn malformed_requests_are_rejected() {
    assert_eq!(Request::decode(&[0; 7]), Err(DecodeError::Truncated));
    // msg_size smaller than the header.
    assert_eq!(
        Request::decode(&[0, 2, 0, 0, 0, 0, 4, 0]),
        Err(DecodeError::BadSize)
    );
    // msg_size larger than what arrived.
    assert_eq!(
        Request::decode(&[0, 2, 0, 0, 0, 0, 9, 0]),
        Err(DecodeError::Truncated)
    );
    // Bus messages and responses are not transport requests.
    assert_eq!(
        Request::decode(&[2, 0x80, 0, 0, 0, 0, 8, 0]),
        Err(DecodeError::BusMessage)
    );
    assert_eq!(
        Request::decode(&[1, 2, 0, 0, 0, 0, 8, 0]),
        Err(DecodeError::WrongDirection)
    );
    // Unknown id.
    assert_eq!(
        Request::decode(&[0, 0x3f, 0, 0, 0, 0, 8, 0]),
        Err(DecodeError::UnknownId(0x3f))
    );
    // Payload too short for GET_VQUEUE.
    assert_eq!(
        Request::decode(&[0, 9, 0, 0, 0, 0, 10, 0, 1, 0]),
        Err(DecodeError::ShortPayload)
    );
    // SET_DRIVER_FEATURES claiming more blocks than it carries.
    let mut b = [0u8; 20];
    b[..8].copy_from_slice(&[0, 4, 0, 0, 0, 0, 20, 0]);
    b[12..16].copy_from_slice(&3u32.to_le_bytes());
    assert_eq!(Request::decode(&b), Err(DecodeError::ShortPayload));
    // Absurd block count must not overflow.
    b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(Request::decode(&b).is_err());
}

/// A tiny virtio-msg driver over `handle`, as a bus would carry it.
struct Driver<'a, M: GuestMemory> {
    core: &'a mut DeviceCore<Echo, 2>,
    mem: &'a M,
    token: u16,
}

impl<M: GuestMemory> Driver<'_, M> {
    fn call(&mut self, r: Request<'_>, out: &mut [u8; 64]) -> Option<usize> {
        let mut req = [0u8; 64];
        self.token += 1;
        let n = r.encode(5, self.token, &mut req).unwrap();
        let h = handle(self.core, self.mem, 5, &req[..n], out);
        if let Some(len) = h.response_len {
            let (hdr, _) = Response::decode(&out[..len]).unwrap();
            assert_eq!(hdr.token, self.token, "token echoed");
            assert_eq!(hdr.msg_id, r.msg_id());
        }
        h.response_len
    }
    fn ask(&mut self, r: Request<'_>) -> Response<'static> {
        let mut out = [0u8; 64];
        let n = self.call(r, &mut out).expect("a response");
        // Copy out of the buffer for the test's convenience.
        let buf: &'static mut [u8] = Box::leak(Box::new(out));
        Response::decode(&buf[..n]).unwrap().1
    }
}

#[test]
fn bring_up_over_messages() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    let mut d = Driver {
        core: &mut core,
        mem: &m,
        token: 0,
    };
    match d.ask(Request::GetDeviceInfo) {
        Response::DeviceInfo {
            device_id,
            max_virtqueues,
            num_feature_blocks,
            config_size,
            ..
        } => {
            assert_eq!(
                (device_id, max_virtqueues, num_feature_blocks, config_size),
                (0x1234, 2, 2, 8)
            );
        }
        r => panic!("{r:?}"),
    }
    d.ask(Request::SetDeviceStatus {
        status: u32::from(ACKNOWLEDGE | DRIVER),
    });
    let f = match d.ask(Request::GetDeviceFeatures {
        block_index: 0,
        num_blocks: 2,
    }) {
        Response::DeviceFeatures { features, .. } => {
            u64::from(features.get(0).unwrap()) | u64::from(features.get(1).unwrap()) << 32
        }
        r => panic!("{r:?}"),
    };
    assert_ne!(f & VERSION_1, 0);
    let mut fb = [0u8; 8];
    fb[..4].copy_from_slice(&0u32.to_le_bytes());
    fb[4..].copy_from_slice(&((VERSION_1 >> 32) as u32).to_le_bytes());
    d.ask(Request::SetDriverFeatures {
        block_index: 0,
        features: FeatureBlocks::from_le_bytes(&fb).unwrap(),
    });
    let st = d.ask(Request::SetDeviceStatus {
        status: u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK),
    });
    assert_eq!(
        st,
        Response::DeviceStatus {
            msg_id: id::SET_DEVICE_STATUS,
            status: u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK)
        }
    );
    // Queue 0 is inactive before setup, as Linux checks.
    match d.ask(Request::GetVqueue { index: 0 }) {
        Response::Vqueue {
            max_size,
            cur_size,
            flags,
            desc,
            ..
        } => assert_eq!((max_size, cur_size, flags, desc), (16, 0, 0, 0)),
        r => panic!("{r:?}"),
    }
    let (qd, qa, qu) = MockSplitQueue::new(&m, 0x1000, 16).addresses();
    d.ask(Request::SetVqueue {
        index: 0,
        flags: VQUEUE_ENABLED,
        size: 16,
        desc: qd,
        driver: qa,
        device: qu,
    });
    match d.ask(Request::GetVqueue { index: 0 }) {
        Response::Vqueue {
            cur_size,
            flags,
            desc,
            driver,
            device,
            ..
        } => {
            assert_eq!(
                (cur_size, flags, desc, driver, device),
                (16, VQUEUE_ENABLED, qd, qa, qu)
            )
        }
        r => panic!("{r:?}"),
    }
    // A queue that does not exist reports max_size 0.
    match d.ask(Request::GetVqueue { index: 9 }) {
        Response::Vqueue { max_size, .. } => assert_eq!(max_size, 0),
        r => panic!("{r:?}"),
    }
    d.ask(Request::SetDeviceStatus {
        status: u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK),
    });

    // Traffic: EVENT_AVAIL gets no response but produces an EVENT_USED.
    let mut drv = MockSplitQueue::new(&m, 0x1000, 16);
    m.write(0x8000, b"msg").unwrap();
    drv.add_chain(&[(0x8000, 3, false), (0x8100, 3, true)]);
    let mut req = [0u8; 64];
    let n = Request::EventAvail {
        vq_index: 0,
        next_offset: 0,
    }
    .encode(5, 0, &mut req)
    .unwrap();
    let mut out = [0u8; 64];
    let h = handle(d.core, &m, 5, &req[..n], &mut out);
    assert_eq!(h.response_len, None);
    assert_eq!(h.interrupts.used, 1);
    let mut events = Vec::new();
    msg::encode_events(d.core, 5, h.interrupts, |e| {
        match Response::decode(e).unwrap().1 {
            Response::EventUsed { vq_index } => events.push(vq_index),
            r => panic!("{r:?}"),
        }
    });
    assert_eq!(events, [0]);
    assert_eq!(drv.pop_used(), Some((0, 3)));

    // Config reads: in range, out of range (length 0 = refused).
    match d.ask(Request::GetConfig {
        offset: 0,
        length: 8,
    }) {
        Response::Config { data, .. } => assert_eq!(data.len(), 8),
        r => panic!("{r:?}"),
    }
    match d.ask(Request::GetConfig {
        offset: 6,
        length: 4,
    }) {
        Response::Config { data, .. } => assert!(data.is_empty()),
        r => panic!("{r:?}"),
    }
    match d.ask(Request::SetConfig {
        generation: 0,
        offset: 0,
        data: &[1],
    }) {
        Response::SetConfig { length, .. } => assert_eq!(length, 0, "read-only field"),
        r => panic!("{r:?}"),
    }
}

#[test]
fn messages_for_other_devices_and_events_are_not_answered() {
    let mut arena = Arena::new(0x1000, 0);
    let m = arena.window();
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    let mut req = [0u8; 16];
    let n = Request::GetDeviceInfo.encode(6, 1, &mut req).unwrap();
    let mut out = [0u8; 64];
    let h = handle(&mut core, &m, 5, &req[..n], &mut out);
    assert_eq!(h.response_len, None);
    assert!(h.dropped.is_some());
    // Status value beyond a byte: refused, status unchanged, still answered.
    let n = Request::SetDeviceStatus { status: 0x100 }
        .encode(5, 1, &mut req)
        .unwrap();
    let h = handle(&mut core, &m, 5, &req[..n], &mut out);
    assert_eq!(h.refused, Some(ControlError::StatusOrder));
    assert!(h.response_len.is_some());
}
