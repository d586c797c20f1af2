//! virtio-msg: codec round trips, malformed input, and a whole device
//! bring-up through `handle`.

use super::Arena;
use super::control::Echo;
use crate::control::{ControlError, DeviceCore};
use crate::memory::GuestMemory;
use crate::mock::MockSplitQueue;
use crate::msg::{
    self, DecodeError, FeatureBlocks, Request, Response, Revision, VQUEUE_ENABLED, handle, id,
    vqueue,
};
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
            reserved: 0,
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
        for rev in [Revision::V2, Revision::Rfc3] {
            let mut buf = [0u8; 128];
            let n = r.encode(rev, 3, 9, &mut buf).unwrap();
            let (h, back) = Response::decode(&buf[..n], rev).unwrap();
            assert_eq!((h.dev_num, h.token), (3, 9));
            // RFC3 has no UUID and no GET_VQUEUE flags: they read as zero.
            let mut expected = r;
            if rev == Revision::Rfc3 {
                match &mut expected {
                    Response::DeviceInfo { device_uuid, .. } => *device_uuid = [0; 16],
                    Response::Vqueue { flags, .. } => *flags = 0,
                    _ => {}
                }
            }
            assert_eq!(back, expected, "{rev:?}");
        }
    }
}

/// The payloads that differ between the revisions, byte by byte (virtio-msg
/// RFC3 and v2, "GET_DEVICE_INFO", "GET_VQUEUE", "GET_SHM").
#[test]
fn rfc3_and_v2_layouts_byte_by_byte() {
    let info = Response::DeviceInfo {
        device_id: 32,
        vendor_id: 0x5543_4d49,
        device_uuid: [0xab; 16],
        num_feature_blocks: 2,
        config_size: 0,
        max_virtqueues: 2,
        admin_vq_start: 0,
        admin_vq_count: 0,
    };
    let mut buf = [0u8; 64];
    // RFC3: 24 bytes: device id, vendor, 64 feature *bits*, config size,
    // queues, le16 admin start and count.
    let n = info.encode(Revision::Rfc3, 1, 2, &mut buf).unwrap();
    assert_eq!(n, 8 + 24);
    assert_eq!(&buf[..8], &[1, 2, 1, 0, 2, 0, 32, 0]);
    assert_eq!(
        &buf[8..n],
        &[
            32, 0, 0, 0, 0x49, 0x4d, 0x43, 0x55, 64, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0
        ]
    );
    // v2: 44 bytes with the UUID and feature *blocks*.
    let n = info.encode(Revision::V2, 1, 2, &mut buf).unwrap();
    assert_eq!(n, 8 + 44);
    assert_eq!(&buf[16..32], &[0xab; 16]);
    assert_eq!(&buf[32..36], &2u32.to_le_bytes());
    // GET_SHM: RFC3 three le32 (12 bytes), v2 le32 id, reserved, le64, le64.
    let shm = Response::Shm {
        shmid: 3,
        length: 0x1000,
        address: 0x8000,
    };
    let n = shm.encode(Revision::Rfc3, 0, 0, &mut buf).unwrap();
    assert_eq!(&buf[8..n], &[3, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x80, 0, 0]);
    let n = shm.encode(Revision::V2, 0, 0, &mut buf).unwrap();
    assert_eq!(n, 8 + 24);
    assert_eq!(&buf[8..16], &[3, 0, 0, 0, 0, 0, 0, 0]);
    // A region beyond 32 bits cannot be described in RFC3.
    let big = Response::Shm {
        shmid: 0,
        length: 1 << 32,
        address: 0,
    };
    assert_eq!(
        big.encode(Revision::Rfc3, 0, 0, &mut buf),
        Err(msg::EncodeError::TooLarge)
    );
    // GET_VQUEUE: the word at 12 is reserved (zero) in RFC3, flags in v2.
    let vq = Response::Vqueue {
        index: 0,
        max_size: 64,
        cur_size: 64,
        flags: VQUEUE_ENABLED,
        desc: 0,
        driver: 0,
        device: 0,
    };
    vq.encode(Revision::Rfc3, 0, 0, &mut buf).unwrap();
    assert_eq!(&buf[20..24], &[0; 4]);
    vq.encode(Revision::V2, 0, 0, &mut buf).unwrap();
    assert_eq!(&buf[20..24], &[1, 0, 0, 0]);
    // An RFC3 feature-bit count that is no multiple of 32 is malformed.
    info.encode(Revision::Rfc3, 0, 0, &mut buf).unwrap();
    buf[16] = 65;
    assert_eq!(
        Response::decode(&buf[..32], Revision::Rfc3),
        Err(DecodeError::BadLength)
    );
    assert_eq!(Revision::Rfc3.min_frame(), 48);
    assert_eq!(Revision::V2.min_frame(), msg::MIN_FRAME);
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
    assert_eq!(r.encode(Revision::V2, 0, 0, &mut buf), Ok(msg::MIN_FRAME));
    assert_eq!(
        r.encode(Revision::V2, 0, 0, &mut buf[..msg::MIN_FRAME - 1]),
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
    rev: Revision,
    token: u16,
}

impl<M: GuestMemory> Driver<'_, M> {
    fn call(&mut self, r: Request<'_>, out: &mut [u8; 64]) -> Option<usize> {
        self.handled(r, out).response_len
    }
    fn handled(&mut self, r: Request<'_>, out: &mut [u8; 64]) -> msg::Handled {
        let mut req = [0u8; 64];
        self.token += 1;
        let n = r.encode(5, self.token, &mut req).unwrap();
        let h = handle(self.core, self.mem, self.rev, 5, &req[..n], out);
        if let Some(len) = h.response_len {
            let (hdr, _) = Response::decode(&out[..len], self.rev).unwrap();
            assert_eq!(hdr.token, self.token, "token echoed");
            assert_eq!(hdr.msg_id, r.msg_id());
        }
        h
    }
    fn ask(&mut self, r: Request<'_>) -> Response<'static> {
        let mut out = [0u8; 64];
        let n = self.call(r, &mut out).expect("a response");
        // Copy out of the buffer for the test's convenience.
        let buf: &'static mut [u8] = Box::leak(Box::new(out));
        Response::decode(&buf[..n], self.rev).unwrap().1
    }
}

#[test]
fn bring_up_over_messages_in_both_revisions() {
    for rev in [Revision::V2, Revision::Rfc3] {
        bring_up_over_messages(rev);
    }
}

fn bring_up_over_messages(rev: Revision) {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    let mut d = Driver {
        core: &mut core,
        mem: &m,
        rev,
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
        // RFC3: a reserved word the message ignores (it always enables).
        flags: if rev == Revision::V2 {
            VQUEUE_ENABLED
        } else {
            0
        },
        size: 16,
        reserved: 0,
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
            let flags_want = if rev == Revision::V2 {
                VQUEUE_ENABLED
            } else {
                0
            };
            assert_eq!(
                (cur_size, flags, desc, driver, device),
                (16, flags_want, qd, qa, qu)
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
    let h = handle(d.core, &m, rev, 5, &req[..n], &mut out);
    assert_eq!(h.response_len, None);
    assert_eq!(h.interrupts.used, 1);
    let mut events = Vec::new();
    msg::encode_events(d.core, rev, 5, h.interrupts, |e| {
        match Response::decode(e, rev).unwrap().1 {
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
    let h = handle(&mut core, &m, Revision::V2, 5, &req[..n], &mut out);
    assert_eq!(h.response_len, None);
    assert!(h.dropped.is_some());
    // Status value beyond a byte: refused, status unchanged, still answered.
    let n = Request::SetDeviceStatus { status: 0x100 }
        .encode(5, 1, &mut req)
        .unwrap();
    let h = handle(&mut core, &m, Revision::V2, 5, &req[..n], &mut out);
    assert_eq!(h.refused, Some(ControlError::StatusOrder));
    assert!(h.response_len.is_some());
}

/// Brings a device to FEATURES_OK over messages of `rev`.
fn to_features_ok<'a, M: GuestMemory>(
    core: &'a mut DeviceCore<Echo, 2>,
    mem: &'a M,
    rev: Revision,
) -> Driver<'a, M> {
    let mut d = Driver {
        core,
        mem,
        rev,
        token: 0,
    };
    d.ask(Request::SetDeviceStatus {
        status: u32::from(ACKNOWLEDGE | DRIVER),
    });
    let mut fb = [0u8; 8];
    fb[4..].copy_from_slice(&((VERSION_1 >> 32) as u32).to_le_bytes());
    d.ask(Request::SetDriverFeatures {
        block_index: 0,
        features: FeatureBlocks::from_le_bytes(&fb).unwrap(),
    });
    d.ask(Request::SetDeviceStatus {
        status: u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK),
    });
    d
}

fn vqueue_state<M: GuestMemory>(d: &mut Driver<'_, M>) -> (u32, u32, u64) {
    match d.ask(Request::GetVqueue { index: 0 }) {
        Response::Vqueue {
            cur_size,
            flags,
            desc,
            ..
        } => (cur_size, flags, desc),
        r => panic!("{r:?}"),
    }
}

/// v2 SET_VQUEUE: fields staged on a disabled queue, then enabled with the
/// ignore bits; every invalid update is a no-op that still gets its normal
/// empty reply (virtio-msg v2, "SET_VQUEUE").
#[test]
fn v2_set_vqueue_stages_enables_and_ignores_invalid_updates() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    let mut d = to_features_ok(&mut core, &m, Revision::V2);
    let (qd, qa, qu) = MockSplitQueue::new(&m, 0x1000, 16).addresses();
    let set = |flags: u32, reserved: u32, desc: u64| Request::SetVqueue {
        index: 0,
        flags,
        size: 16,
        reserved,
        desc,
        driver: qa,
        device: qu,
    };
    let mut out = [0u8; 64];
    // Reserved flag bits, a reserved word, state operation 3: no-ops,
    // answered.
    for r in [
        set(vqueue::ENABLE | 1 << 6, 0, qd),
        set(vqueue::ENABLE, 1, qd),
        set(3, 0, qd),
    ] {
        let h = d.handled(r, &mut out);
        assert!(h.response_len.is_some() && h.refused.is_some(), "{r:?}");
        assert_eq!(vqueue_state(&mut d), (0, 0, 0));
    }
    // Stage the fields, keep the queue disabled.
    let h = d.handled(set(vqueue::KEEP_DISABLED, 0, qd), &mut out);
    assert_eq!(h.refused, None);
    assert_eq!(vqueue_state(&mut d), (0, 0, 0), "disabled reads as unset");
    // Enable with every field ignored: the staged ones are used.
    let all =
        vqueue::IGNORE_SIZE | vqueue::IGNORE_DESC | vqueue::IGNORE_DRIVER | vqueue::IGNORE_DEVICE;
    let h = d.handled(set(vqueue::ENABLE | all, 0, 0xdead_0000), &mut out);
    assert_eq!(h.refused, None);
    assert_eq!(vqueue_state(&mut d), (16, VQUEUE_ENABLED, qd));
    // An enabled queue cannot change or be disabled: no-op, answered.
    for r in [
        set(vqueue::KEEP, 0, qd + 0x100),
        set(vqueue::KEEP_DISABLED | all, 0, qd),
    ] {
        let h = d.handled(r, &mut out);
        assert!(h.response_len.is_some() && h.refused.is_some(), "{r:?}");
        assert_eq!(vqueue_state(&mut d), (16, VQUEUE_ENABLED, qd));
    }
    // Enabling it again with nothing to change is fine.
    let h = d.handled(set(vqueue::ENABLE | all, 0, 0), &mut out);
    assert_eq!(h.refused, None);
}

/// A v2 enable that fails its checks leaves the staged fields as they were.
#[test]
fn v2_failed_enable_restores_the_fields() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
    let mut d = to_features_ok(&mut core, &m, Revision::V2);
    let (qd, qa, qu) = MockSplitQueue::new(&m, 0x1000, 16).addresses();
    let mut out = [0u8; 64];
    let staged = Request::SetVqueue {
        index: 0,
        flags: vqueue::KEEP_DISABLED,
        size: 16,
        reserved: 0,
        desc: qd,
        driver: qa,
        device: qu,
    };
    assert_eq!(d.handled(staged, &mut out).refused, None);
    // Enable with a descriptor area outside memory: refused.
    let bad = Request::SetVqueue {
        index: 0,
        flags: vqueue::ENABLE | vqueue::IGNORE_SIZE | vqueue::IGNORE_DRIVER | vqueue::IGNORE_DEVICE,
        size: 0,
        reserved: 0,
        desc: 0x10_0000_0000,
        driver: 0,
        device: 0,
    };
    assert!(d.handled(bad, &mut out).refused.is_some());
    // The staged descriptor address is back: enabling it alone works (the
    // ignored size word is not judged, whatever it holds).
    let all =
        vqueue::IGNORE_SIZE | vqueue::IGNORE_DESC | vqueue::IGNORE_DRIVER | vqueue::IGNORE_DEVICE;
    let ok = Request::SetVqueue {
        index: 0,
        flags: vqueue::ENABLE | all,
        size: u32::MAX,
        reserved: 0,
        desc: 0,
        driver: 0,
        device: 0,
    };
    assert_eq!(d.handled(ok, &mut out).refused, None);
    assert_eq!(vqueue_state(&mut d), (16, VQUEUE_ENABLED, qd));
}

/// SET_CONFIG: RFC3 refuses a write based on another generation; v2
/// without STRICT_CONFIG_GENERATION ignores the generation (the driver
/// sends 0).
#[test]
fn set_config_generation_rules_per_revision() {
    let mut arena = Arena::new(0x10000, 0);
    let m = arena.window();
    for rev in [Revision::Rfc3, Revision::V2] {
        let mut core: DeviceCore<Echo, 2> = DeviceCore::new(Echo::default());
        let _ = core.config_changed();
        let g = core.config_generation();
        assert_ne!(g, 0);
        let mut d = Driver {
            core: &mut core,
            mem: &m,
            rev,
            token: 0,
        };
        let write = |generation| Request::SetConfig {
            generation,
            offset: 4,
            data: &[7, 7],
        };
        let length = |r| match r {
            Response::SetConfig { length, .. } => length,
            r => panic!("{r:?}"),
        };
        let stale = length(d.ask(write(0)));
        let current = length(d.ask(write(g)));
        match rev {
            Revision::Rfc3 => assert_eq!((stale, current), (0, 2)),
            Revision::V2 => assert_eq!((stale, current), (2, 2)),
        }
    }
}
