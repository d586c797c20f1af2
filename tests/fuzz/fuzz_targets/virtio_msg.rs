//! The virtio-msg codec and handler.
//!
//! * Arbitrary bytes go through every decoder (`Header`, `Request`,
//!   `Response`); whatever decodes must encode back to no more than the
//!   original `msg_size`, decode again to the same message, and encode
//!   canonically; encoding into a buffer one byte too small must fail
//!   cleanly.
//! * A sequence of messages (raw bytes, or well-formed requests that may
//!   then be truncated or corrupted) goes to `msg::handle` over a
//!   `DeviceCore` with the echo device and a driver that puts real chains
//!   on the queues it set up. Every request addressed to the device gets a
//!   well-formed response that fits the frame and reports the core's
//!   state; nothing else is answered; messages for other devices change
//!   nothing; events encode and decode; the state machine's invariants
//!   hold after every message; used lengths never exceed what the driver
//!   made writable.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use virtio_backend::msg::{
    self, DecodeError, EncodeError, FeatureBlocks, HEADER_SIZE, Header, MAX_FEATURE_BLOCKS,
    MIN_FRAME, Request, Response, Revision, TYPE_RESPONSE, VQUEUE_ENABLED,
};
use virtio_backend::spec::features::{
    EVENT_IDX, INDIRECT_DESC, RING_PACKED, RING_RESET, VERSION_1,
};
use virtio_backend::spec::status::{ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK};
use virtio_backend::{DeviceCore, FixedWindow, GuestMemory, Interrupts};
use virtio_fuzz::seed::{Enc, encode, variant};
use virtio_fuzz::{
    ARENA_BASE, Arena, Driver, ECHO_QUEUE_MAX, EchoDevice, Layout, arena_addr, check_core,
    enc_struct, maybe_write_seeds,
};

const DEV: u16 = 7;
const MAX_MSGS: usize = 64;
const NQ: usize = 2;

#[derive(Arbitrary, Debug, PartialEq)]
pub struct Input {
    /// Decoded by every decoder.
    pub raw: Vec<u8>,
    /// The bus frame: `MIN_FRAME + frame % 200`, or with bit 7 of
    /// `small` set, `small & 0x3f` (possibly too small for any response);
    /// bit 6 of `small` picks the RFC3 layouts instead of v2.
    pub frame: u8,
    pub small: u8,
    pub msgs: Vec<Msg>,
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Msg {
    /// Bytes handed to the handler verbatim (and decoded by the codec).
    Raw(Vec<u8>),
    /// A request, encoded, then maybe damaged.
    Req {
        req: Req,
        other_dev: bool,
        token: u16,
        damage: Option<Damage>,
    },
    /// The standard bring-up: status, features, both queues, DRIVER_OK.
    BringUp { features: u8, size_log: u8 },
    /// A driver puts a chain on a queue it set up, and kicks it.
    Chain {
        queue: u8,
        bufs: Vec<(u16, u16, bool)>,
        table: Option<u16>,
        kick: bool,
    },
    /// The driver scribbles on its memory.
    Scribble { at: u16, bytes: Vec<u8> },
    /// Device-initiated work.
    Poll,
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
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Areas {
    /// The queue's own contiguous layout in the arena (zeroed first).
    Layout,
    /// Anywhere.
    Raw { desc: u64, driver: u64, device: u64 },
}

#[derive(Arbitrary, Debug, PartialEq)]
pub enum Req {
    GetDeviceInfo,
    GetDeviceFeatures {
        block_index: u32,
        num_blocks: u32,
    },
    SetDriverFeatures {
        block_index: u32,
        blocks: Vec<u32>,
    },
    GetConfig {
        offset: u32,
        length: u32,
    },
    SetConfig {
        generation: u32,
        offset: u32,
        data: Vec<u8>,
    },
    GetDeviceStatus,
    SetDeviceStatus {
        status: u32,
    },
    GetVqueue {
        index: u32,
    },
    SetVqueue {
        index: u32,
        flags: u32,
        size: u32,
        areas: Areas,
    },
    ResetVqueue {
        index: u32,
    },
    GetShm {
        shmid: u32,
    },
    EventAvail {
        vq_index: u32,
        next_offset: u32,
    },
}

enc_struct!(Input {
    raw,
    frame,
    small,
    msgs
});

impl Enc for Msg {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            Msg::Raw(b) => {
                variant(out, 0, 6);
                b.enc(out);
            }
            Msg::Req {
                req,
                other_dev,
                token,
                damage,
            } => {
                variant(out, 1, 6);
                req.enc(out);
                other_dev.enc(out);
                token.enc(out);
                damage.enc(out);
            }
            Msg::BringUp { features, size_log } => {
                variant(out, 2, 6);
                features.enc(out);
                size_log.enc(out);
            }
            Msg::Chain {
                queue,
                bufs,
                table,
                kick,
            } => {
                variant(out, 3, 6);
                queue.enc(out);
                bufs.enc(out);
                table.enc(out);
                kick.enc(out);
            }
            Msg::Scribble { at, bytes } => {
                variant(out, 4, 6);
                at.enc(out);
                bytes.enc(out);
            }
            Msg::Poll => variant(out, 5, 6),
        }
    }
}

impl Enc for Damage {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            Damage::Truncate(n) => {
                variant(out, 0, 4);
                n.enc(out);
            }
            Damage::Flip { at, mask } => {
                variant(out, 1, 4);
                at.enc(out);
                mask.enc(out);
            }
            Damage::Size(s) => {
                variant(out, 2, 4);
                s.enc(out);
            }
            Damage::Type(t) => {
                variant(out, 3, 4);
                t.enc(out);
            }
        }
    }
}

impl Enc for Areas {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            Areas::Layout => variant(out, 0, 2),
            Areas::Raw {
                desc,
                driver,
                device,
            } => {
                variant(out, 1, 2);
                desc.enc(out);
                driver.enc(out);
                device.enc(out);
            }
        }
    }
}

impl Enc for Req {
    fn enc(&self, out: &mut Vec<u8>) {
        const N: u32 = 12;
        match self {
            Req::GetDeviceInfo => variant(out, 0, N),
            Req::GetDeviceFeatures {
                block_index,
                num_blocks,
            } => {
                variant(out, 1, N);
                block_index.enc(out);
                num_blocks.enc(out);
            }
            Req::SetDriverFeatures {
                block_index,
                blocks,
            } => {
                variant(out, 2, N);
                block_index.enc(out);
                blocks.enc(out);
            }
            Req::GetConfig { offset, length } => {
                variant(out, 3, N);
                offset.enc(out);
                length.enc(out);
            }
            Req::SetConfig {
                generation,
                offset,
                data,
            } => {
                variant(out, 4, N);
                generation.enc(out);
                offset.enc(out);
                data.enc(out);
            }
            Req::GetDeviceStatus => variant(out, 5, N),
            Req::SetDeviceStatus { status } => {
                variant(out, 6, N);
                status.enc(out);
            }
            Req::GetVqueue { index } => {
                variant(out, 7, N);
                index.enc(out);
            }
            Req::SetVqueue {
                index,
                flags,
                size,
                areas,
            } => {
                variant(out, 8, N);
                index.enc(out);
                flags.enc(out);
                size.enc(out);
                areas.enc(out);
            }
            Req::ResetVqueue { index } => {
                variant(out, 9, N);
                index.enc(out);
            }
            Req::GetShm { shmid } => {
                variant(out, 10, N);
                shmid.enc(out);
            }
            Req::EventAvail {
                vq_index,
                next_offset,
            } => {
                variant(out, 11, N);
                vq_index.enc(out);
                next_offset.enc(out);
            }
        }
    }
}

// ---------------------------------------------------------------------
// The codec on its own.

fn codec(bytes: &[u8], rev: Revision) {
    let header = Header::decode(bytes);
    if let Ok((h, payload)) = header {
        assert!(usize::from(h.msg_size) >= HEADER_SIZE);
        assert_eq!(payload.len(), usize::from(h.msg_size) - HEADER_SIZE);
    }
    // A message never re-encodes larger than it was.
    let room = header.map_or(0, |(h, _)| usize::from(h.msg_size));
    let mut out = vec![0u8; room];
    let mut again = vec![0u8; room];
    match Request::decode(bytes) {
        Ok((h, r)) => {
            assert_eq!(Some(h), header.ok().map(|x| x.0));
            assert_eq!(r.msg_id(), h.msg_id);
            let n = r
                .encode(h.dev_num, h.token, &mut out)
                .expect("re-encode request");
            assert!(
                n >= HEADER_SIZE && n <= usize::from(h.msg_size),
                "{n} vs {h:?}"
            );
            let (h2, r2) = Request::decode(&out[..n]).expect("re-decode request");
            assert_eq!(r2, r, "request round trip");
            assert_eq!(
                (
                    h2.msg_type,
                    h2.msg_id,
                    h2.dev_num,
                    h2.token,
                    usize::from(h2.msg_size)
                ),
                (0, h.msg_id, h.dev_num, h.token, n)
            );
            let n2 = r2.encode(h.dev_num, h.token, &mut again).unwrap();
            assert_eq!(&again[..n2], &out[..n], "request encoding not canonical");
            assert_eq!(
                r.encode(h.dev_num, h.token, &mut again[..n - 1]),
                Err(EncodeError::BufferTooSmall)
            );
        }
        Err(e) => {
            if let Err(he) = header {
                assert_eq!(e, he);
            }
        }
    }
    if let Ok((h, r)) = Response::decode(bytes, rev) {
        assert_eq!(r.msg_id(), h.msg_id);
        let n = r
            .encode(rev, h.dev_num, h.token, &mut out)
            .expect("re-encode response");
        assert!(
            n >= HEADER_SIZE && n <= usize::from(h.msg_size),
            "{n} vs {h:?}"
        );
        let (h2, r2) = Response::decode(&out[..n], rev).expect("re-decode response");
        assert_eq!(r2, r, "response round trip");
        let event = h.msg_id & 0x40 != 0;
        assert_eq!(h2.msg_type, if event { 0 } else { TYPE_RESPONSE });
        assert_eq!(
            (h2.msg_id, h2.dev_num, h2.token, usize::from(h2.msg_size)),
            (h.msg_id, h.dev_num, h.token, n)
        );
        let n2 = r2.encode(rev, h.dev_num, h.token, &mut again).unwrap();
        assert_eq!(&again[..n2], &out[..n], "response encoding not canonical");
        assert_eq!(
            r.encode(rev, h.dev_num, h.token, &mut again[..n - 1]),
            Err(EncodeError::BufferTooSmall)
        );
    }
}

// ---------------------------------------------------------------------
// The handler over a device.

struct Bus<'w, 'a> {
    mem: &'w FixedWindow<'a>,
    rev: Revision,
    core: DeviceCore<EchoDevice, NQ>,
    frame: usize,
    drivers: [Option<Driver>; NQ],
    /// Per queue: descriptors (slots) and indirect tables each posted id
    /// holds, and their totals while the device has them.
    posted: [Vec<(u16, bool)>; NQ],
    outstanding: [(usize, usize); NQ],
    /// The driver wrote over its rings or buffers, or posted more than
    /// its ring holds or two chains sharing a table: used lengths are no
    /// longer checked against what it posted.
    scribbled: bool,
}

/// The arena offset where queue `i`'s rings go.
fn ring_base(i: usize) -> u64 {
    ARENA_BASE + 0x100 + 0x1000 * i as u64
}

/// State that a message for another device must not change.
type Fingerprint = (u8, u64, u32, [u8; 8], bool, Vec<virtio_backend::QueueInfo>);

fn fingerprint(core: &DeviceCore<EchoDevice, NQ>) -> Fingerprint {
    (
        core.status(),
        core.driver_features(),
        core.config_generation(),
        core.device().config,
        core.device().active,
        (0..NQ as u16)
            .map(|i| core.queue_info(i))
            .collect::<Vec<_>>(),
    )
}

impl Bus<'_, '_> {
    /// Handles one message and checks the outcome.
    fn send(&mut self, bytes: &[u8]) {
        codec(bytes, self.rev);
        let decoded = Request::decode(bytes);
        let before = fingerprint(&self.core);
        let mut resp = vec![0xccu8; self.frame];
        let out = msg::handle(&mut self.core, self.mem, self.rev, DEV, bytes, &mut resp);
        check_core(&self.core);
        let (h, req) = match decoded {
            Err(e) => {
                assert_eq!(out.response_len, None);
                assert_eq!(out.dropped, Some(e));
                assert!(out.interrupts.is_empty() && out.refused.is_none());
                assert_eq!(
                    fingerprint(&self.core),
                    before,
                    "dropped message changed state"
                );
                return;
            }
            Ok(x) => x,
        };
        if h.dev_num != DEV {
            assert_eq!(out.response_len, None);
            assert!(out.dropped.is_some());
            assert_eq!(
                fingerprint(&self.core),
                before,
                "message for another device"
            );
            return;
        }
        self.events(out.interrupts);
        if let Request::EventAvail { .. } = req {
            assert_eq!(
                (out.response_len, out.dropped),
                (None, None),
                "events get no answer"
            );
            self.check_used();
            return;
        }
        assert!(
            out.interrupts.is_empty(),
            "a request other than EVENT_AVAIL notified"
        );
        let too_many = matches!(req, Request::GetDeviceFeatures { num_blocks, .. }
            if num_blocks as usize > MAX_FEATURE_BLOCKS);
        let Some(n) = out.response_len else {
            assert!(
                too_many || self.frame < MIN_FRAME,
                "request {req:?} not answered in a {}-byte frame ({:?})",
                self.frame,
                out.dropped
            );
            if too_many {
                assert_eq!(out.dropped, Some(DecodeError::BadLength));
            }
            return;
        };
        assert!(!too_many);
        assert!(
            n <= self.frame,
            "response of {n} bytes in a {}-byte frame",
            self.frame
        );
        assert!(
            resp[n..].iter().all(|&b| b == 0xcc),
            "handler wrote past its response"
        );
        let (rh, r) = Response::decode(&resp[..n], self.rev).expect("response decodes");
        assert_eq!(
            (
                rh.msg_type,
                rh.msg_id,
                rh.dev_num,
                rh.token,
                usize::from(rh.msg_size)
            ),
            (TYPE_RESPONSE, h.msg_id, DEV, h.token, n),
            "response header"
        );
        self.check_reply(&req, &r, out.refused);
    }

    /// The reply reports the state after the request.
    fn check_reply(
        &self,
        req: &Request<'_>,
        r: &Response<'_>,
        refused: Option<virtio_backend::ControlError>,
    ) {
        let core = &self.core;
        match (*req, *r) {
            (
                Request::GetDeviceInfo,
                Response::DeviceInfo {
                    device_id,
                    vendor_id,
                    num_feature_blocks,
                    config_size,
                    max_virtqueues,
                    ..
                },
            ) => {
                let i = core.info();
                assert_eq!(
                    (
                        device_id,
                        vendor_id,
                        num_feature_blocks,
                        config_size,
                        max_virtqueues
                    ),
                    (
                        i.device_id,
                        i.vendor_id,
                        i.num_feature_blocks,
                        i.config_size,
                        i.max_virtqueues
                    )
                );
            }
            (
                Request::GetDeviceFeatures {
                    block_index,
                    num_blocks,
                },
                Response::DeviceFeatures {
                    block_index: b,
                    features,
                },
            ) => {
                assert_eq!(b, block_index);
                assert_eq!(features.len(), num_blocks as usize);
                for k in 0..features.len() {
                    let want = core.device_feature_block(block_index.saturating_add(k as u32));
                    assert_eq!(features.get(k), Some(want), "feature block {k}");
                }
            }
            (Request::SetDriverFeatures { .. }, Response::Empty { .. })
            | (Request::SetVqueue { .. }, Response::Empty { .. })
            | (Request::ResetVqueue { .. }, Response::Empty { .. }) => {}
            (
                Request::GetConfig { offset, length },
                Response::Config {
                    generation,
                    offset: o,
                    data,
                },
            ) => {
                assert_eq!((generation, o), (core.config_generation(), offset));
                if refused.is_none() {
                    assert_eq!(data.len(), length as usize);
                    let o = offset as usize;
                    assert_eq!(data, &core.device().config[o..o + data.len()]);
                } else {
                    assert!(data.is_empty());
                }
            }
            (
                Request::SetConfig { offset, data, .. },
                Response::SetConfig {
                    generation,
                    offset: o,
                    length,
                },
            ) => {
                assert_eq!((generation, o), (core.config_generation(), offset));
                let want = if refused.is_none() {
                    data.len() as u32
                } else {
                    0
                };
                assert_eq!(length, want);
                if refused.is_none() {
                    let o = offset as usize;
                    assert_eq!(data, &core.device().config[o..o + data.len()]);
                }
            }
            (
                Request::GetDeviceStatus | Request::SetDeviceStatus { .. },
                Response::DeviceStatus { status, .. },
            ) => {
                assert_eq!(status, u32::from(core.status()));
                if let Request::SetDeviceStatus { status: s } = *req
                    && refused.is_none()
                {
                    // Accepted: the status is what was written, plus the
                    // device's own NEEDS_RESET.
                    assert_eq!(s & !0x40, status & !0x40, "accepted status");
                }
            }
            (
                Request::GetVqueue { index },
                Response::Vqueue {
                    index: i,
                    max_size,
                    cur_size,
                    flags,
                    desc,
                    driver,
                    device,
                },
            ) => {
                let q = core.queue_info(u16::try_from(index).unwrap_or(u16::MAX));
                assert_eq!(i, index);
                assert_eq!(
                    (max_size, cur_size, flags, desc, driver, device),
                    (
                        u32::from(q.max_size),
                        u32::from(q.size),
                        // RFC3: the word is reserved.
                        if q.enabled && self.rev == Revision::V2 {
                            VQUEUE_ENABLED
                        } else {
                            0
                        },
                        q.desc,
                        q.driver,
                        q.device
                    )
                );
            }
            (
                Request::GetShm { shmid },
                Response::Shm {
                    shmid: s, length, ..
                },
            ) => {
                assert_eq!((s, length), (shmid, 0));
            }
            (req, r) => panic!("reply {r:?} to {req:?}"),
        }
    }

    /// Notifications encode into well-formed events.
    fn events(&self, i: Interrupts) {
        assert_eq!(
            i.used >> NQ,
            0,
            "notification for a queue that does not exist"
        );
        let mut count = 0;
        msg::encode_events(&self.core, self.rev, DEV, i, |bytes| {
            count += 1;
            assert!(bytes.len() <= MIN_FRAME);
            let (h, r) = Response::decode(bytes, self.rev).expect("event decodes");
            assert_eq!(
                (h.msg_type, h.dev_num, usize::from(h.msg_size)),
                (0, DEV, bytes.len())
            );
            match r {
                Response::EventUsed { vq_index } => assert!(i.queue(vq_index as u16)),
                Response::EventConfig {
                    device_status,
                    generation,
                } => {
                    assert!(i.config);
                    assert_eq!(device_status, u32::from(self.core.status()));
                    assert_eq!(generation, self.core.config_generation());
                }
                r => panic!("event {r:?}"),
            }
        });
        assert_eq!(count, i.used.count_ones() + u32::from(i.config));
    }

    /// Used entries name chains the driver posted, with lengths within
    /// what it made writable.
    fn check_used(&mut self) {
        for (q, d) in self.drivers.iter_mut().enumerate() {
            let Some(d) = d else { continue };
            for _ in 0..2 * usize::from(d.layout.size) + 2 {
                let Some((id, len)) = d.pop_used(self.mem) else {
                    break;
                };
                if let Some(&(descs, table)) = self.posted[q].get(id as usize) {
                    let o = &mut self.outstanding[q];
                    o.0 = o.0.saturating_sub(usize::from(descs));
                    o.1 = o.1.saturating_sub(usize::from(table));
                }
                if self.scribbled {
                    continue;
                }
                assert!(id < u32::from(d.layout.size), "used id {id}");
                let w = d.writable_of[id as usize];
                assert!(
                    len <= w,
                    "used length {len} beyond the {w} writable bytes of {id}"
                );
            }
        }
    }

    fn request(&mut self, req: &Req, dev: u16, token: u16, damage: Option<&Damage>) {
        let mut sv_layout = None;
        let mut data = Vec::new();
        let r = match req {
            Req::GetDeviceInfo => Request::GetDeviceInfo,
            Req::GetDeviceFeatures {
                block_index,
                num_blocks,
            } => Request::GetDeviceFeatures {
                block_index: *block_index,
                num_blocks: *num_blocks,
            },
            Req::SetDriverFeatures {
                block_index,
                blocks,
            } => {
                for b in blocks.iter().take(16) {
                    data.extend_from_slice(&b.to_le_bytes());
                }
                Request::SetDriverFeatures {
                    block_index: *block_index,
                    features: FeatureBlocks::from_le_bytes(&data).unwrap(),
                }
            }
            Req::GetConfig { offset, length } => Request::GetConfig {
                offset: *offset,
                length: *length,
            },
            Req::SetConfig {
                generation,
                offset,
                data: d,
            } => Request::SetConfig {
                generation: *generation,
                offset: *offset,
                data: &d[..d.len().min(300)],
            },
            Req::GetDeviceStatus => Request::GetDeviceStatus,
            Req::SetDeviceStatus { status } => Request::SetDeviceStatus { status: *status },
            Req::GetVqueue { index } => Request::GetVqueue { index: *index },
            Req::SetVqueue {
                index,
                flags,
                size,
                areas,
            } => {
                let (desc, driver, device) = match areas {
                    Areas::Layout => {
                        let i = (*index as usize).min(NQ - 1);
                        let packed = self.core.driver_features() & RING_PACKED != 0;
                        let sz = (*size as u16).clamp(1, ECHO_QUEUE_MAX[i]);
                        let l = Layout::contiguous(ring_base(i), packed, sz);
                        if self.core.queue_info(i as u16).enabled {
                            self.scribbled = true;
                        }
                        Driver::new(l).zero(self.mem);
                        sv_layout = Some((*index, l));
                        (l.desc, l.driver, l.device)
                    }
                    Areas::Raw {
                        desc,
                        driver,
                        device,
                    } => (*desc, *driver, *device),
                };
                Request::SetVqueue {
                    index: *index,
                    flags: *flags,
                    size: *size,
                    // Damage (a flipped byte) reaches the reserved word.
                    reserved: 0,
                    desc,
                    driver,
                    device,
                }
            }
            Req::ResetVqueue { index } => Request::ResetVqueue { index: *index },
            Req::GetShm { shmid } => Request::GetShm { shmid: *shmid },
            Req::EventAvail {
                vq_index,
                next_offset,
            } => Request::EventAvail {
                vq_index: *vq_index,
                next_offset: *next_offset,
            },
        };
        let mut buf = vec![0u8; 1024];
        let Ok(mut n) = r.encode(dev, token, &mut buf) else {
            return;
        };
        match damage {
            None => {}
            Some(Damage::Truncate(k)) => n = n.min(usize::from(*k)),
            Some(Damage::Flip { at, mask }) => buf[usize::from(*at) % n] ^= mask,
            Some(Damage::Size(s)) => buf[6..8].copy_from_slice(&s.to_le_bytes()),
            Some(Damage::Type(t)) => buf[0] = *t,
        }
        let was = self.enabled();
        self.send(&buf[..n]);
        if let Some((idx, l)) = sv_layout
            && let Some(i) = ((idx as usize) < NQ).then_some(idx as usize)
        {
            let q = self.core.queue_info(i as u16);
            if !was[i]
                && q.enabled
                && (q.desc, q.driver, q.device, q.size) == (l.desc, l.driver, l.device, l.size)
            {
                self.drivers[i] = Some(Driver::new(l));
                self.posted[i] = vec![(1, false); usize::from(l.size)];
                self.outstanding[i] = (0, 0);
            }
        }
    }

    fn enabled(&self) -> [bool; NQ] {
        core::array::from_fn(|i| self.core.queue_info(i as u16).enabled)
    }

    /// Forgets the drivers of queues the device no longer has enabled.
    fn track_queues(&mut self) {
        for (i, e) in self.enabled().into_iter().enumerate() {
            if !e {
                self.drivers[i] = None;
            }
        }
    }

    fn bring_up(&mut self, features: u8, size_log: u8) {
        let mut f = VERSION_1;
        if features & 1 != 0 {
            f |= RING_PACKED;
        }
        if features & 2 != 0 {
            f |= EVENT_IDX;
        }
        if features & 4 != 0 {
            f |= INDIRECT_DESC;
        }
        if features & 8 != 0 {
            f |= RING_RESET;
        }
        let st = |s: u8| Req::SetDeviceStatus {
            status: u32::from(s),
        };
        self.request(&st(0), DEV, 1, None);
        self.request(&st(ACKNOWLEDGE), DEV, 2, None);
        self.request(&st(ACKNOWLEDGE | DRIVER), DEV, 3, None);
        self.request(
            &Req::SetDriverFeatures {
                block_index: 0,
                blocks: vec![f as u32, (f >> 32) as u32],
            },
            DEV,
            4,
            None,
        );
        self.request(&st(ACKNOWLEDGE | DRIVER | FEATURES_OK), DEV, 5, None);
        for i in 0..NQ as u32 {
            let size = 1u32 << (size_log % 7);
            self.request(
                &Req::SetVqueue {
                    index: i,
                    flags: VQUEUE_ENABLED,
                    size: size.min(u32::from(ECHO_QUEUE_MAX[i as usize])),
                    areas: Areas::Layout,
                },
                DEV,
                6 + i as u16,
                None,
            );
        }
        self.request(
            &st(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK),
            DEV,
            9,
            None,
        );
        assert_eq!(
            self.core.status(),
            ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK
        );
        assert!(self.drivers.iter().all(Option::is_some));
    }

    fn chain(&mut self, queue: u8, bufs: &[(u16, u16, bool)], table: Option<u16>, kick: bool) {
        let i = usize::from(queue) % NQ;
        let Some(d) = self.drivers[i].as_mut() else {
            return;
        };
        let size = usize::from(d.layout.size);
        let mut b: Vec<_> = bufs
            .iter()
            .take(size)
            .map(|&(a, l, w)| {
                (
                    ARENA_BASE + 0x2000 + u64::from(a) % 0x1400,
                    u32::from(l % 0x400),
                    w,
                )
            })
            .collect();
        if b.is_empty() {
            b.push((ARENA_BASE + 0x3000, 64, true));
        }
        let table = table.map(|t| ARENA_BASE + 0x3800 + u64::from(t) % 0x40 * 16);
        let id = d.add_chain(self.mem, &b, table, true);
        let descs = if d.layout.packed {
            d.slots_of[usize::from(id)]
        } else if table.is_some() {
            1
        } else {
            b.len() as u16
        };
        self.posted[i][usize::from(id)] = (descs, table.is_some());
        let o = &mut self.outstanding[i];
        o.0 += usize::from(descs);
        o.1 += usize::from(table.is_some());
        if o.0 > size || o.1 > 1 {
            // The driver reused descriptors (or a table) the device has
            // not returned: what it posted is not what the device sees.
            self.scribbled = true;
        }
        if kick {
            self.request(
                &Req::EventAvail {
                    vq_index: i as u32,
                    next_offset: 0,
                },
                DEV,
                0x100,
                None,
            );
        }
    }

    fn run(&mut self, m: &Msg) {
        self.step(m);
        self.track_queues();
    }

    fn step(&mut self, m: &Msg) {
        match m {
            Msg::Raw(b) => self.send(&b[..b.len().min(1024)]),
            Msg::Req {
                req,
                other_dev,
                token,
                damage,
            } => {
                let dev = if *other_dev { DEV ^ 1 } else { DEV };
                self.request(req, dev, *token, damage.as_ref());
            }
            Msg::BringUp { features, size_log } => self.bring_up(*features, *size_log),
            Msg::Chain {
                queue,
                bufs,
                table,
                kick,
            } => self.chain(*queue, bufs, *table, *kick),
            Msg::Scribble { at, bytes } => {
                self.scribbled = true;
                let _ = self
                    .mem
                    .write(arena_addr(*at), &bytes[..bytes.len().min(64)]);
            }
            Msg::Poll => {
                let i = self.core.poll(self.mem);
                self.events(i);
                check_core(&self.core);
            }
        }
    }
}

fn run(input: &Input) {
    let rev = if input.small & 0x40 != 0 {
        Revision::Rfc3
    } else {
        Revision::V2
    };
    for k in 0..input.raw.len().min(4) {
        codec(&input.raw[k..], rev);
    }
    let frame = if input.small & 0x80 != 0 {
        usize::from(input.small & 0x3f)
    } else {
        MIN_FRAME + usize::from(input.frame % 200)
    };
    let mut arena = Arena::new();
    let views = arena.views();
    let mut bus = Bus {
        mem: &views.window,
        rev,
        core: DeviceCore::new(EchoDevice::default()),
        frame,
        drivers: [None, None],
        posted: [Vec::new(), Vec::new()],
        outstanding: [(0, 0); NQ],
        scribbled: false,
    };
    check_core(&bus.core);
    for m in input.msgs.iter().take(MAX_MSGS) {
        bus.run(m);
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let req = |req: Req| Msg::Req {
        req,
        other_dev: false,
        token: 0x55,
        damage: None,
    };
    let chain = |queue: u8, kick: bool| Msg::Chain {
        queue,
        bufs: vec![(0, 5, false), (0x100, 16, true)],
        table: None,
        kick,
    };
    let mut raw = Vec::new();
    let mut b = [0u8; 64];
    let n = Request::SetVqueue {
        index: 1,
        flags: 1,
        size: 8,
        reserved: 0,
        desc: 0x1000,
        driver: 0x2000,
        device: 0x3000,
    }
    .encode(DEV, 2, &mut b)
    .unwrap();
    raw.extend_from_slice(&b[..n]);
    let mut out = Vec::new();
    for features in [0u8, 0x0f, 0x06, 0x09] {
        out.push(Input {
            raw: raw.clone(),
            frame: 0,
            small: 0,
            msgs: vec![
                req(Req::GetDeviceInfo),
                Msg::BringUp {
                    features,
                    size_log: 3,
                },
                chain(0, true),
                chain(1, false),
                Msg::Chain {
                    queue: 1,
                    bufs: vec![(0, 3, false), (0x10, 3, false), (0x200, 64, true)],
                    table: Some(2),
                    kick: true,
                },
                req(Req::GetVqueue { index: 0 }),
                req(Req::GetConfig {
                    offset: 2,
                    length: 6,
                }),
                req(Req::SetConfig {
                    generation: 0,
                    offset: 4,
                    data: vec![1, 2, 3, 4],
                }),
                req(Req::GetDeviceFeatures {
                    block_index: 0,
                    num_blocks: 3,
                }),
                req(Req::ResetVqueue { index: 1 }),
                req(Req::SetVqueue {
                    index: 1,
                    flags: 1,
                    size: 4,
                    areas: Areas::Layout,
                }),
                chain(1, true),
                Msg::Scribble {
                    at: 0x100,
                    bytes: vec![0xff; 8],
                },
                req(Req::EventAvail {
                    vq_index: 0,
                    next_offset: 0,
                }),
                Msg::Poll,
                req(Req::GetShm { shmid: 0 }),
                Msg::Req {
                    req: Req::GetDeviceStatus,
                    other_dev: true,
                    token: 1,
                    damage: Some(Damage::Truncate(5)),
                },
                req(Req::SetDeviceStatus { status: 0 }),
            ],
        });
    }
    out.push(Input {
        raw: Vec::new(),
        frame: 0,
        small: 0x80 | 20,
        msgs: vec![
            req(Req::GetDeviceInfo),
            req(Req::GetVqueue { index: 0 }),
            req(Req::SetDeviceStatus { status: 1 }),
            Msg::Raw(raw),
        ],
    });
    out.iter().map(encode).collect()
}

fuzz_target!(
    init: maybe_write_seeds("virtio_msg", seeds),
    |input: Input| run(&input)
);
