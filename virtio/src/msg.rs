//! virtio-msg, transport revision 1: the wire codec and the device-side
//! handler that maps messages onto the [`DeviceCore`] state machine.
//!
//! Every message starts with an 8-byte little-endian header: `type`
//! (bit 0 response, bit 1 bus message), `msg_id`, `dev_num`, `token`,
//! `msg_size` (header included). Transport messages 0x02–0x0C are requests
//! the device answers; ids with bit 6 set (0x40 EVENT_CONFIG, 0x41
//! EVENT_AVAIL, 0x42 EVENT_USED) are events and get no answer. A message
//! that is malformed, addressed to another device, or unknown is dropped:
//! the handler returns no response.
//!
//! Two revisions of the payloads are in use, chosen per bus ([`Revision`]):
//! the RFC3 layouts (November 2025; what Linux's virtio-msg AMP bus and
//! OP-TEE's back-end speak) and the v2 layouts of the proposal's second
//! revision (2026; what Arm's Linux/QEMU proof of concept v2 speaks on the
//! FF-A bus). The header, the message ids and most payloads are the same;
//! GET_DEVICE_INFO, GET_VQUEUE/SET_VQUEUE, GET_SHM and SET_CONFIG differ,
//! each difference noted where it is encoded or applied. Neither revision
//! has an ERROR transport message: what cannot be served is dropped.

use crate::control::{ControlError, DeviceCore, VqueueState, VqueueUpdate};
use crate::device::{Interrupts, Notification, VirtioDevice};
use crate::memory::GuestMemory;
use crate::wire::{Rd, Short, encode_frame};

/// Header size in bytes.
pub const HEADER_SIZE: usize = 8;
/// The smallest frame a v2 bus must carry (GET_DEVICE_INFO's response).
pub const MIN_FRAME: usize = 52;

/// Which payload layouts a bus speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revision {
    /// The RFC3 layouts: GET_DEVICE_INFO with `num_feature_bits` and 16-bit
    /// admin queue fields and no UUID, GET/SET_VQUEUE without flags
    /// (SET_VQUEUE configures and enables), GET_SHM with 32-bit fields, and
    /// SET_CONFIG refused on a stale generation.
    Rfc3,
    /// The v2 layouts: GET_DEVICE_INFO with the device UUID and feature
    /// *blocks*, GET/SET_VQUEUE flags (state operations, ignore bits, no-op
    /// on an invalid update), GET_SHM with 64-bit fields, and SET_CONFIG
    /// generation ignored (no `STRICT_CONFIG_GENERATION`).
    V2,
}

impl Revision {
    /// The smallest frame a bus of this revision must carry: the largest
    /// fixed-size message (RFC3: GET/SET_VQUEUE, 48 bytes; v2:
    /// GET_DEVICE_INFO's response, 52).
    pub const fn min_frame(self) -> usize {
        match self {
            Revision::Rfc3 => 48,
            Revision::V2 => MIN_FRAME,
        }
    }
}

/// `type` bit: this is a response.
pub const TYPE_RESPONSE: u8 = 1 << 0;
/// `type` bit: this is a bus message, not a transport message.
pub const TYPE_BUS: u8 = 1 << 1;

/// Transport message ids.
pub mod id {
    /// Device identity and geometry.
    pub const GET_DEVICE_INFO: u8 = 0x02;
    /// Read feature blocks.
    pub const GET_DEVICE_FEATURES: u8 = 0x03;
    /// Write accepted feature blocks.
    pub const SET_DRIVER_FEATURES: u8 = 0x04;
    /// Read configuration space.
    pub const GET_CONFIG: u8 = 0x05;
    /// Write configuration space.
    pub const SET_CONFIG: u8 = 0x06;
    /// Read the status byte.
    pub const GET_DEVICE_STATUS: u8 = 0x07;
    /// Write the status byte (0 resets).
    pub const SET_DEVICE_STATUS: u8 = 0x08;
    /// Read one queue's state.
    pub const GET_VQUEUE: u8 = 0x09;
    /// Configure and enable one queue.
    pub const SET_VQUEUE: u8 = 0x0a;
    /// Reset one queue.
    pub const RESET_VQUEUE: u8 = 0x0b;
    /// Read a shared memory region's location.
    pub const GET_SHM: u8 = 0x0c;
    /// Device to driver: configuration or status changed.
    pub const EVENT_CONFIG: u8 = 0x40;
    /// Driver to device: a queue has new buffers.
    pub const EVENT_AVAIL: u8 = 0x41;
    /// Device to driver: a queue has used buffers.
    pub const EVENT_USED: u8 = 0x42;
}

/// Most feature blocks one GET_DEVICE_FEATURES may ask for.
pub const MAX_FEATURE_BLOCKS: usize = 8;

/// `SET_VQUEUE.flags` / `GET_VQUEUE.flags`: the queue is enabled.
pub const VQUEUE_ENABLED: u32 = 1;

/// v2 `SET_VQUEUE.flags` fields.
pub mod vqueue {
    /// Bits [1:0]: the state operation.
    pub const STATE_MASK: u32 = 0b11;
    /// State operation 0: apply the fields, keep the queue disabled.
    pub const KEEP_DISABLED: u32 = 0;
    /// State operation 1: apply the fields, then enable the queue.
    pub const ENABLE: u32 = 1;
    /// State operation 2: apply the fields, keep the state.
    pub const KEEP: u32 = 2;
    /// Bit 2: keep the current size.
    pub const IGNORE_SIZE: u32 = 1 << 2;
    /// Bit 3: keep the current descriptor area address.
    pub const IGNORE_DESC: u32 = 1 << 3;
    /// Bit 4: keep the current driver area address.
    pub const IGNORE_DRIVER: u32 = 1 << 4;
    /// Bit 5: keep the current device area address.
    pub const IGNORE_DEVICE: u32 = 1 << 5;
    /// Bits [31:6] must be zero.
    pub const RESERVED: u32 = !0x3f;
}

/// The 8-byte message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Type bits ([`TYPE_RESPONSE`], [`TYPE_BUS`]).
    pub msg_type: u8,
    /// Message id.
    pub msg_id: u8,
    /// Device number on the bus.
    pub dev_num: u16,
    /// Request token, echoed in the response.
    pub token: u16,
    /// Total size including the header.
    pub msg_size: u16,
}

/// Why bytes could not be decoded as a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than 8 bytes, or `msg_size` says more bytes than arrived.
    Truncated,
    /// `msg_size` is smaller than the header.
    BadSize,
    /// The payload is too short for the message id.
    ShortPayload,
    /// The message id is not a transport message of this revision.
    UnknownId(u8),
    /// A bus message; the bus layer handles those.
    BusMessage,
    /// A response where a request was expected, or the other way round.
    WrongDirection,
    /// A length field disagrees with the payload.
    BadLength,
}

impl From<Short> for DecodeError {
    fn from(_: Short) -> Self {
        DecodeError::ShortPayload
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("message shorter than its header says"),
            DecodeError::BadSize => f.write_str("msg_size smaller than the header"),
            DecodeError::ShortPayload => f.write_str("payload too short for the message"),
            DecodeError::UnknownId(id) => write!(f, "unknown message id {id:#04x}"),
            DecodeError::BusMessage => f.write_str("a bus message"),
            DecodeError::WrongDirection => f.write_str("message in the wrong direction"),
            DecodeError::BadLength => f.write_str("a length field disagrees with the payload"),
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small.
    BufferTooSmall,
    /// The message does not fit the 16-bit `msg_size`.
    TooLarge,
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            EncodeError::BufferTooSmall => "the output buffer is too small",
            EncodeError::TooLarge => "the message does not fit msg_size",
        })
    }
}

impl Header {
    /// Splits `bytes` into a header and its payload (`msg_size` bounds the
    /// payload; trailing bytes beyond it are ignored).
    pub fn decode(bytes: &[u8]) -> Result<(Header, &[u8]), DecodeError> {
        let h: &[u8; HEADER_SIZE] = bytes.first_chunk().ok_or(DecodeError::Truncated)?;
        let header = Header {
            msg_type: h[0],
            msg_id: h[1],
            dev_num: u16::from_le_bytes([h[2], h[3]]),
            token: u16::from_le_bytes([h[4], h[5]]),
            msg_size: u16::from_le_bytes([h[6], h[7]]),
        };
        let size = usize::from(header.msg_size);
        if size < HEADER_SIZE {
            return Err(DecodeError::BadSize);
        }
        let payload = bytes.get(HEADER_SIZE..size).ok_or(DecodeError::Truncated)?;
        Ok((header, payload))
    }

    /// Writes the header into the first [`HEADER_SIZE`] bytes of `out`.
    pub fn encode(&self, out: &mut [u8]) -> Result<(), EncodeError> {
        let out: &mut [u8; HEADER_SIZE] =
            out.first_chunk_mut().ok_or(EncodeError::BufferTooSmall)?;
        // One array store: no slice copy whose length check could panic.
        let [d0, d1] = self.dev_num.to_le_bytes();
        let [t0, t1] = self.token.to_le_bytes();
        let [s0, s1] = self.msg_size.to_le_bytes();
        *out = [self.msg_type, self.msg_id, d0, d1, t0, t1, s0, s1];
        Ok(())
    }
}

/// A list of 32-bit feature blocks as carried on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureBlocks<'a>(&'a [u8]);

impl<'a> FeatureBlocks<'a> {
    /// Wraps little-endian words; `bytes.len()` must be a multiple of 4.
    pub fn from_le_bytes(bytes: &'a [u8]) -> Option<Self> {
        bytes.len().is_multiple_of(4).then_some(Self(bytes))
    }
    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }
    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Block `i`.
    pub fn get(&self, i: usize) -> Option<u32> {
        let b = self.0.get(i * 4..i * 4 + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// A transport message from the driver to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// GET_DEVICE_INFO.
    GetDeviceInfo,
    /// GET_DEVICE_FEATURES.
    GetDeviceFeatures {
        /// First block.
        block_index: u32,
        /// Number of blocks.
        num_blocks: u32,
    },
    /// SET_DRIVER_FEATURES.
    SetDriverFeatures {
        /// First block.
        block_index: u32,
        /// The blocks.
        features: FeatureBlocks<'a>,
    },
    /// GET_CONFIG.
    GetConfig {
        /// Byte offset.
        offset: u32,
        /// Byte count.
        length: u32,
    },
    /// SET_CONFIG.
    SetConfig {
        /// Generation the driver based the write on.
        generation: u32,
        /// Byte offset.
        offset: u32,
        /// The bytes.
        data: &'a [u8],
    },
    /// GET_DEVICE_STATUS.
    GetDeviceStatus,
    /// SET_DEVICE_STATUS.
    SetDeviceStatus {
        /// New status.
        status: u32,
    },
    /// GET_VQUEUE.
    GetVqueue {
        /// Queue index.
        index: u32,
    },
    /// SET_VQUEUE.
    SetVqueue {
        /// Queue index.
        index: u32,
        /// v2: state operation and ignore bits ([`vqueue`]); RFC3: reserved.
        flags: u32,
        /// Queue size.
        size: u32,
        /// Must be zero (v2: a request with it set is a no-op).
        reserved: u32,
        /// Descriptor area.
        desc: u64,
        /// Driver area.
        driver: u64,
        /// Device area.
        device: u64,
    },
    /// RESET_VQUEUE.
    ResetVqueue {
        /// Queue index.
        index: u32,
    },
    /// GET_SHM.
    GetShm {
        /// Shared memory region id.
        shmid: u32,
    },
    /// EVENT_AVAIL (no response).
    EventAvail {
        /// Queue index.
        vq_index: u32,
        /// Next offset (and wrap in bit 31 for packed rings), if
        /// `VIRTIO_F_NOTIFICATION_DATA`; else 0.
        next_offset: u32,
    },
}

impl<'a> Request<'a> {
    /// Decodes a driver-to-device transport message.
    pub fn decode(bytes: &'a [u8]) -> Result<(Header, Request<'a>), DecodeError> {
        let (h, payload) = Header::decode(bytes)?;
        if h.msg_type & TYPE_BUS != 0 {
            return Err(DecodeError::BusMessage);
        }
        if h.msg_type & TYPE_RESPONSE != 0 {
            return Err(DecodeError::WrongDirection);
        }
        let mut f = Rd(payload);
        let r = match h.msg_id {
            id::GET_DEVICE_INFO => Request::GetDeviceInfo,
            id::GET_DEVICE_FEATURES => Request::GetDeviceFeatures {
                block_index: f.u32()?,
                num_blocks: f.u32()?,
            },
            id::SET_DRIVER_FEATURES => {
                let block_index = f.u32()?;
                let num_blocks = f.u32()?;
                let n = usize::try_from(num_blocks).map_err(|_| DecodeError::BadLength)?;
                let bytes = f.bytes(n.checked_mul(4).ok_or(DecodeError::BadLength)?)?;
                Request::SetDriverFeatures {
                    block_index,
                    features: FeatureBlocks(bytes),
                }
            }
            id::GET_CONFIG => Request::GetConfig {
                offset: f.u32()?,
                length: f.u32()?,
            },
            id::SET_CONFIG => {
                let generation = f.u32()?;
                let offset = f.u32()?;
                let length = f.u32()?;
                let n = usize::try_from(length).map_err(|_| DecodeError::BadLength)?;
                Request::SetConfig {
                    generation,
                    offset,
                    data: f.bytes(n)?,
                }
            }
            id::GET_DEVICE_STATUS => Request::GetDeviceStatus,
            id::SET_DEVICE_STATUS => Request::SetDeviceStatus { status: f.u32()? },
            id::GET_VQUEUE => Request::GetVqueue { index: f.u32()? },
            id::SET_VQUEUE => {
                let index = f.u32()?;
                let flags = f.u32()?;
                let size = f.u32()?;
                let reserved = f.u32()?;
                Request::SetVqueue {
                    index,
                    flags,
                    size,
                    reserved,
                    desc: f.u64()?,
                    driver: f.u64()?,
                    device: f.u64()?,
                }
            }
            id::RESET_VQUEUE => Request::ResetVqueue { index: f.u32()? },
            id::GET_SHM => Request::GetShm { shmid: f.u32()? },
            id::EVENT_AVAIL => Request::EventAvail {
                vq_index: f.u32()?,
                next_offset: f.u32()?,
            },
            other => return Err(DecodeError::UnknownId(other)),
        };
        Ok((h, r))
    }

    /// The message id.
    pub fn msg_id(&self) -> u8 {
        match self {
            Request::GetDeviceInfo => id::GET_DEVICE_INFO,
            Request::GetDeviceFeatures { .. } => id::GET_DEVICE_FEATURES,
            Request::SetDriverFeatures { .. } => id::SET_DRIVER_FEATURES,
            Request::GetConfig { .. } => id::GET_CONFIG,
            Request::SetConfig { .. } => id::SET_CONFIG,
            Request::GetDeviceStatus => id::GET_DEVICE_STATUS,
            Request::SetDeviceStatus { .. } => id::SET_DEVICE_STATUS,
            Request::GetVqueue { .. } => id::GET_VQUEUE,
            Request::SetVqueue { .. } => id::SET_VQUEUE,
            Request::ResetVqueue { .. } => id::RESET_VQUEUE,
            Request::GetShm { .. } => id::GET_SHM,
            Request::EventAvail { .. } => id::EVENT_AVAIL,
        }
    }

    /// Encodes the message; returns its size.
    pub fn encode(&self, dev_num: u16, token: u16, out: &mut [u8]) -> Result<usize, EncodeError> {
        encode_frame(out, 0, self.msg_id(), dev_num, token, |o| match *self {
            Request::GetDeviceInfo | Request::GetDeviceStatus => Ok(()),
            Request::GetDeviceFeatures {
                block_index,
                num_blocks,
            } => {
                o.u32(block_index)?;
                o.u32(num_blocks)
            }
            Request::SetDriverFeatures {
                block_index,
                features,
            } => {
                o.u32(block_index)?;
                o.u32(features.len() as u32)?;
                o.bytes(features.as_bytes())
            }
            Request::GetConfig { offset, length } => {
                o.u32(offset)?;
                o.u32(length)
            }
            Request::SetConfig {
                generation,
                offset,
                data,
            } => {
                o.u32(generation)?;
                o.u32(offset)?;
                o.u32(u32::try_from(data.len()).map_err(|_| EncodeError::TooLarge)?)?;
                o.bytes(data)
            }
            Request::SetDeviceStatus { status } => o.u32(status),
            Request::GetVqueue { index } | Request::ResetVqueue { index } => o.u32(index),
            Request::SetVqueue {
                index,
                flags,
                size,
                reserved,
                desc,
                driver,
                device,
            } => {
                o.u32(index)?;
                o.u32(flags)?;
                o.u32(size)?;
                o.u32(reserved)?;
                o.u64(desc)?;
                o.u64(driver)?;
                o.u64(device)
            }
            Request::GetShm { shmid } => o.u32(shmid),
            Request::EventAvail {
                vq_index,
                next_offset,
            } => {
                o.u32(vq_index)?;
                o.u32(next_offset)
            }
        })
    }
}

/// A transport message from the device to the driver: a response, or an
/// event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    /// GET_DEVICE_INFO response.
    DeviceInfo {
        /// Device id.
        device_id: u32,
        /// Vendor id.
        vendor_id: u32,
        /// Device UUID.
        device_uuid: [u8; 16],
        /// Number of feature blocks.
        num_feature_blocks: u32,
        /// Config space size.
        config_size: u32,
        /// Number of virtqueues.
        max_virtqueues: u32,
        /// First admin queue.
        admin_vq_start: u32,
        /// Number of admin queues.
        admin_vq_count: u32,
    },
    /// GET_DEVICE_FEATURES response.
    DeviceFeatures {
        /// First block.
        block_index: u32,
        /// The blocks.
        features: FeatureBlocks<'a>,
    },
    /// GET_CONFIG response (`data` empty when the range was refused).
    Config {
        /// Generation the bytes belong to.
        generation: u32,
        /// Byte offset.
        offset: u32,
        /// The bytes.
        data: &'a [u8],
    },
    /// SET_CONFIG response (`length` 0 when the write was refused).
    SetConfig {
        /// Generation after the write.
        generation: u32,
        /// Byte offset.
        offset: u32,
        /// Bytes accepted.
        length: u32,
    },
    /// GET_DEVICE_STATUS or SET_DEVICE_STATUS response.
    DeviceStatus {
        /// Which of the two requests this answers.
        msg_id: u8,
        /// Status after the request.
        status: u32,
    },
    /// GET_VQUEUE response.
    Vqueue {
        /// Queue index.
        index: u32,
        /// Device maximum (0: no such queue).
        max_size: u32,
        /// Current size.
        cur_size: u32,
        /// [`VQUEUE_ENABLED`] when enabled.
        flags: u32,
        /// Descriptor area.
        desc: u64,
        /// Driver area.
        driver: u64,
        /// Device area.
        device: u64,
    },
    /// GET_SHM response.
    Shm {
        /// Region id.
        shmid: u32,
        /// Length (0: no such region).
        length: u64,
        /// Address.
        address: u64,
    },
    /// An empty response (SET_DRIVER_FEATURES, SET_VQUEUE, RESET_VQUEUE).
    Empty {
        /// Which request this answers.
        msg_id: u8,
    },
    /// EVENT_USED.
    EventUsed {
        /// Queue index.
        vq_index: u32,
    },
    /// EVENT_CONFIG.
    EventConfig {
        /// Device status.
        device_status: u32,
        /// Config generation.
        generation: u32,
    },
}

impl<'a> Response<'a> {
    /// The message id.
    pub fn msg_id(&self) -> u8 {
        match self {
            Response::DeviceInfo { .. } => id::GET_DEVICE_INFO,
            Response::DeviceFeatures { .. } => id::GET_DEVICE_FEATURES,
            Response::Config { .. } => id::GET_CONFIG,
            Response::SetConfig { .. } => id::SET_CONFIG,
            Response::DeviceStatus { msg_id, .. } | Response::Empty { msg_id } => *msg_id,
            Response::Vqueue { .. } => id::GET_VQUEUE,
            Response::Shm { .. } => id::GET_SHM,
            Response::EventUsed { .. } => id::EVENT_USED,
            Response::EventConfig { .. } => id::EVENT_CONFIG,
        }
    }

    fn is_event(&self) -> bool {
        matches!(
            self,
            Response::EventUsed { .. } | Response::EventConfig { .. }
        )
    }

    /// Encodes the message in the layouts of `rev`; returns its size.
    /// [`EncodeError::TooLarge`] when a value does not fit an RFC3 field
    /// (a GET_SHM length or address above 32 bits, admin queue numbers
    /// above 16 bits, more than 2^27 feature blocks).
    pub fn encode(
        &self,
        rev: Revision,
        dev_num: u16,
        token: u16,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let ty = if self.is_event() { 0 } else { TYPE_RESPONSE };
        let narrow16 = |v: u32| u16::try_from(v).map_err(|_| EncodeError::TooLarge);
        let narrow32 = |v: u64| u32::try_from(v).map_err(|_| EncodeError::TooLarge);
        encode_frame(out, ty, self.msg_id(), dev_num, token, |o| match *self {
            Response::DeviceInfo {
                device_id,
                vendor_id,
                device_uuid,
                num_feature_blocks,
                config_size,
                max_virtqueues,
                admin_vq_start,
                admin_vq_count,
            } => {
                o.u32(device_id)?;
                o.u32(vendor_id)?;
                match rev {
                    // RFC3: feature *bits* (a multiple of 32), no UUID,
                    // 16-bit admin queue fields.
                    Revision::Rfc3 => {
                        let bits = num_feature_blocks
                            .checked_mul(32)
                            .ok_or(EncodeError::TooLarge)?;
                        o.u32(bits)?;
                        o.u32(config_size)?;
                        o.u32(max_virtqueues)?;
                        o.u16(narrow16(admin_vq_start)?)?;
                        o.u16(narrow16(admin_vq_count)?)
                    }
                    Revision::V2 => {
                        o.bytes(&device_uuid)?;
                        o.u32(num_feature_blocks)?;
                        o.u32(config_size)?;
                        o.u32(max_virtqueues)?;
                        o.u32(admin_vq_start)?;
                        o.u32(admin_vq_count)
                    }
                }
            }
            Response::DeviceFeatures {
                block_index,
                features,
            } => {
                o.u32(block_index)?;
                o.u32(features.len() as u32)?;
                o.bytes(features.as_bytes())
            }
            Response::Config {
                generation,
                offset,
                data,
            } => {
                o.u32(generation)?;
                o.u32(offset)?;
                o.u32(u32::try_from(data.len()).map_err(|_| EncodeError::TooLarge)?)?;
                o.bytes(data)
            }
            Response::SetConfig {
                generation,
                offset,
                length,
            } => {
                o.u32(generation)?;
                o.u32(offset)?;
                o.u32(length)
            }
            Response::DeviceStatus { status, .. } => o.u32(status),
            Response::Vqueue {
                index,
                max_size,
                cur_size,
                flags,
                desc,
                driver,
                device,
            } => {
                o.u32(index)?;
                o.u32(max_size)?;
                o.u32(cur_size)?;
                // RFC3: a reserved word, zero.
                o.u32(if rev == Revision::V2 { flags } else { 0 })?;
                o.u64(desc)?;
                o.u64(driver)?;
                o.u64(device)
            }
            Response::Shm {
                shmid,
                length,
                address,
            } => {
                o.u32(shmid)?;
                match rev {
                    // RFC3: index, length and address as three le32.
                    Revision::Rfc3 => {
                        o.u32(narrow32(length)?)?;
                        o.u32(narrow32(address)?)
                    }
                    Revision::V2 => {
                        o.u32(0)?;
                        o.u64(length)?;
                        o.u64(address)
                    }
                }
            }
            Response::Empty { .. } => Ok(()),
            Response::EventUsed { vq_index } => o.u32(vq_index),
            Response::EventConfig {
                device_status,
                generation,
            } => {
                o.u32(device_status)?;
                o.u32(generation)?;
                o.u32(0)?;
                o.u32(0)
            }
        })
    }

    /// Decodes a device-to-driver message in the layouts of `rev` (used by
    /// front-ends and tests).
    pub fn decode(bytes: &'a [u8], rev: Revision) -> Result<(Header, Response<'a>), DecodeError> {
        let (h, payload) = Header::decode(bytes)?;
        if h.msg_type & TYPE_BUS != 0 {
            return Err(DecodeError::BusMessage);
        }
        let event = h.msg_id & 0x40 != 0;
        if event == (h.msg_type & TYPE_RESPONSE != 0) {
            return Err(DecodeError::WrongDirection);
        }
        let mut f = Rd(payload);
        let r = match h.msg_id {
            id::GET_DEVICE_INFO => {
                let device_id = f.u32()?;
                let vendor_id = f.u32()?;
                match rev {
                    Revision::Rfc3 => {
                        let bits = f.u32()?;
                        if bits % 32 != 0 {
                            return Err(DecodeError::BadLength);
                        }
                        Response::DeviceInfo {
                            device_id,
                            vendor_id,
                            device_uuid: [0; 16],
                            num_feature_blocks: bits / 32,
                            config_size: f.u32()?,
                            max_virtqueues: f.u32()?,
                            admin_vq_start: u32::from(f.u16()?),
                            admin_vq_count: u32::from(f.u16()?),
                        }
                    }
                    Revision::V2 => {
                        let device_uuid: [u8; 16] = f.take()?;
                        Response::DeviceInfo {
                            device_id,
                            vendor_id,
                            device_uuid,
                            num_feature_blocks: f.u32()?,
                            config_size: f.u32()?,
                            max_virtqueues: f.u32()?,
                            admin_vq_start: f.u32()?,
                            admin_vq_count: f.u32()?,
                        }
                    }
                }
            }
            id::GET_DEVICE_FEATURES => {
                let block_index = f.u32()?;
                let n = f.u32()? as usize;
                let bytes = f.bytes(n.checked_mul(4).ok_or(DecodeError::BadLength)?)?;
                Response::DeviceFeatures {
                    block_index,
                    features: FeatureBlocks(bytes),
                }
            }
            id::GET_CONFIG => {
                let generation = f.u32()?;
                let offset = f.u32()?;
                let n = f.u32()? as usize;
                Response::Config {
                    generation,
                    offset,
                    data: f.bytes(n)?,
                }
            }
            id::SET_CONFIG => Response::SetConfig {
                generation: f.u32()?,
                offset: f.u32()?,
                length: f.u32()?,
            },
            id::GET_DEVICE_STATUS | id::SET_DEVICE_STATUS => Response::DeviceStatus {
                msg_id: h.msg_id,
                status: f.u32()?,
            },
            id::GET_VQUEUE => Response::Vqueue {
                index: f.u32()?,
                max_size: f.u32()?,
                cur_size: f.u32()?,
                flags: f.u32()?,
                desc: f.u64()?,
                driver: f.u64()?,
                device: f.u64()?,
            },
            id::GET_SHM => {
                let shmid = f.u32()?;
                match rev {
                    Revision::Rfc3 => Response::Shm {
                        shmid,
                        length: u64::from(f.u32()?),
                        address: u64::from(f.u32()?),
                    },
                    Revision::V2 => {
                        let _reserved = f.u32()?;
                        Response::Shm {
                            shmid,
                            length: f.u64()?,
                            address: f.u64()?,
                        }
                    }
                }
            }
            id::SET_DRIVER_FEATURES | id::SET_VQUEUE | id::RESET_VQUEUE => {
                Response::Empty { msg_id: h.msg_id }
            }
            id::EVENT_USED => Response::EventUsed { vq_index: f.u32()? },
            id::EVENT_CONFIG => {
                let device_status = f.u32()?;
                let generation = f.u32()?;
                let _offset = f.u32()?;
                let length = f.u32()?;
                if length as usize != f.rest().len() {
                    return Err(DecodeError::BadLength);
                }
                Response::EventConfig {
                    device_status,
                    generation,
                }
            }
            other => return Err(DecodeError::UnknownId(other)),
        };
        Ok((h, r))
    }
}

/// What [`handle`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    /// Bytes of response written to the response buffer, or `None` when the
    /// message gets no response (events, dropped messages).
    pub response_len: Option<usize>,
    /// Why the message was dropped, if it was.
    pub dropped: Option<DecodeError>,
    /// What the control plane refused, if anything (the response, if any,
    /// still reflects the resulting state).
    pub refused: Option<ControlError>,
    /// Notifications to send to the driver (as EVENT_USED / EVENT_CONFIG).
    pub interrupts: Interrupts,
}

/// Handles one driver-to-device message for the device numbered `dev_num`
/// on a bus of revision `rev`.
///
/// Writes the response into `response` (whose length is the bus's frame
/// size); GET_CONFIG replies are limited to what fits.
pub fn handle<D: VirtioDevice, const NQ: usize, const H: usize, M: GuestMemory>(
    core: &mut DeviceCore<D, NQ, H>,
    mem: &M,
    rev: Revision,
    dev_num: u16,
    request: &[u8],
    response: &mut [u8],
) -> Handled {
    let mut out = Handled {
        response_len: None,
        dropped: None,
        refused: None,
        interrupts: Interrupts::default(),
    };
    let (h, req) = match Request::decode(request) {
        Ok(x) => x,
        Err(e) => {
            out.dropped = Some(e);
            return out;
        }
    };
    if h.dev_num != dev_num {
        out.dropped = Some(DecodeError::UnknownId(h.msg_id));
        return out;
    }
    let mut feature_bytes = [0u8; 4 * MAX_FEATURE_BLOCKS];
    let mut config = [0u8; 256];
    let reply = match req {
        Request::GetDeviceInfo => {
            let i = core.info();
            Response::DeviceInfo {
                device_id: i.device_id,
                vendor_id: i.vendor_id,
                device_uuid: [0; 16],
                num_feature_blocks: i.num_feature_blocks,
                config_size: i.config_size,
                max_virtqueues: i.max_virtqueues,
                admin_vq_start: 0,
                admin_vq_count: 0,
            }
        }
        Request::GetDeviceFeatures {
            block_index,
            num_blocks,
        } => {
            // Blocks beyond the core's two read as zero; a request for
            // more than fits a frame is malformed.
            let n = num_blocks.min(MAX_FEATURE_BLOCKS as u32) as usize;
            if num_blocks as usize != n {
                out.dropped = Some(DecodeError::BadLength);
                return out;
            }
            let (blocks, _) = feature_bytes.as_chunks_mut::<4>();
            for (i, b) in blocks.iter_mut().take(n).enumerate() {
                *b = core
                    .device_feature_block(block_index.saturating_add(i as u32))
                    .to_le_bytes();
            }
            // `n <= MAX_FEATURE_BLOCKS`: the prefix is always there.
            Response::DeviceFeatures {
                block_index,
                features: FeatureBlocks(feature_bytes.get(..n * 4).unwrap_or_default()),
            }
        }
        Request::SetDriverFeatures {
            block_index,
            features,
        } => {
            for i in 0..features.len() {
                let bits = features.get(i).unwrap_or(0);
                let block = block_index.saturating_add(i as u32);
                if let Err(e) = core.set_driver_feature_block(block, bits) {
                    out.refused = Some(e);
                    break;
                }
            }
            Response::Empty { msg_id: h.msg_id }
        }
        Request::GetConfig { offset, length } => {
            // Room for the reply: header + generation, offset, length.
            let room = response
                .len()
                .saturating_sub(HEADER_SIZE + 12)
                .min(config.len());
            let n = length as usize;
            // `room <= config.len()`: `get_mut` fails exactly when `n > room`
            // would not already have.
            let data: &[u8] = match config.get_mut(..n) {
                Some(buf) if n <= room => match core.read_config(offset, buf) {
                    Ok(_) => buf,
                    Err(e) => {
                        out.refused = Some(e);
                        &[]
                    }
                },
                _ => {
                    out.refused = Some(ControlError::ConfigRange);
                    &[]
                }
            };
            Response::Config {
                generation: core.config_generation(),
                offset,
                data,
            }
        }
        Request::SetConfig {
            generation,
            offset,
            data,
        } => {
            // RFC3: a write based on a stale generation is rejected. v2
            // without STRICT_CONFIG_GENERATION (never offered): the driver
            // sends 0 and the device must not reject for it.
            let stale = rev == Revision::Rfc3 && generation != core.config_generation();
            let written = if stale {
                Err(ControlError::StaleGeneration)
            } else {
                core.write_config(offset, data)
            };
            let length = match written {
                Ok(_) => data.len() as u32,
                Err(e) => {
                    out.refused = Some(e);
                    0
                }
            };
            Response::SetConfig {
                generation: core.config_generation(),
                offset,
                length,
            }
        }
        Request::GetDeviceStatus => Response::DeviceStatus {
            msg_id: h.msg_id,
            status: u32::from(core.status()),
        },
        Request::SetDeviceStatus { status } => {
            match u8::try_from(status) {
                Ok(s) => {
                    if let Err(e) = core.set_status(s) {
                        out.refused = Some(e);
                    }
                }
                Err(_) => out.refused = Some(ControlError::StatusOrder),
            }
            Response::DeviceStatus {
                msg_id: h.msg_id,
                status: u32::from(core.status()),
            }
        }
        Request::GetVqueue { index } => {
            let q = u16::try_from(index)
                .map(|i| core.queue_info(i))
                .unwrap_or_else(|_| core.queue_info(u16::MAX));
            Response::Vqueue {
                index,
                max_size: u32::from(q.max_size),
                cur_size: u32::from(q.size),
                flags: if q.enabled { VQUEUE_ENABLED } else { 0 },
                desc: q.desc,
                driver: q.driver,
                device: q.device,
            }
        }
        Request::SetVqueue {
            index,
            flags,
            size,
            reserved,
            desc,
            driver,
            device,
        } => {
            let r = match u16::try_from(index) {
                Err(_) => Err(ControlError::NoSuchQueue),
                // RFC3: the message configures and enables the queue; the
                // words at 4 and 12 are reserved.
                Ok(i) if rev == Revision::Rfc3 => u16::try_from(size)
                    .map_err(|_| size_too_large())
                    .and_then(|s| core.set_vqueue(mem, i, s, desc, driver, device)),
                Ok(i) => vqueue_update(flags, reserved, size, desc, driver, device)
                    .and_then(|u| core.update_vqueue(mem, i, u)),
            };
            out.refused = r.err();
            Response::Empty { msg_id: h.msg_id }
        }
        Request::ResetVqueue { index } => {
            let r = u16::try_from(index)
                .map_err(|_| ControlError::NoSuchQueue)
                .and_then(|i| core.reset_vqueue(i));
            out.refused = r.err();
            Response::Empty { msg_id: h.msg_id }
        }
        Request::GetShm { shmid } => Response::Shm {
            shmid,
            length: 0,
            address: 0,
        },
        Request::EventAvail { vq_index, .. } => {
            if let Ok(i) = u16::try_from(vq_index) {
                out.interrupts = core.queue_notify(mem, i);
            }
            return out;
        }
    };
    match reply.encode(rev, dev_num, h.token, response) {
        Ok(n) => out.response_len = Some(n),
        Err(_) => out.dropped = Some(DecodeError::BadLength),
    }
    out
}

/// A queue size word that does not fit the 16 bits of a virtqueue size.
fn size_too_large() -> ControlError {
    ControlError::Queue(crate::QueueConfigError::SizeTooLarge {
        size: u16::MAX,
        max: 0,
    })
}

/// A v2 SET_VQUEUE's fields as an update (virtio-msg v2, SET_VQUEUE):
/// reserved flag bits, the reserved state operation or a reserved word make
/// the request a no-op ([`ControlError::WrongState`]; it is still answered
/// normally), and a size that does not fit 16 bits is refused unless it is
/// ignored.
fn vqueue_update(
    flags: u32,
    reserved: u32,
    size: u32,
    desc: u64,
    driver: u64,
    device: u64,
) -> Result<VqueueUpdate, ControlError> {
    if flags & vqueue::RESERVED != 0 || reserved != 0 {
        return Err(ControlError::WrongState);
    }
    let state = match flags & vqueue::STATE_MASK {
        vqueue::KEEP_DISABLED => VqueueState::KeepDisabled,
        vqueue::ENABLE => VqueueState::Enable,
        vqueue::KEEP => VqueueState::Keep,
        _ => return Err(ControlError::WrongState),
    };
    let take = |bit: u32| flags & bit == 0;
    let size = match take(vqueue::IGNORE_SIZE) {
        true => Some(u16::try_from(size).map_err(|_| size_too_large())?),
        false => None,
    };
    Ok(VqueueUpdate {
        size,
        desc: take(vqueue::IGNORE_DESC).then_some(desc),
        driver: take(vqueue::IGNORE_DRIVER).then_some(driver),
        device: take(vqueue::IGNORE_DEVICE).then_some(device),
        state,
    })
}

/// The event that carries notification `n`: EVENT_USED, or EVENT_CONFIG
/// with the status and generation.
pub fn event(n: Notification) -> Response<'static> {
    match n {
        Notification::Used(q) => Response::EventUsed {
            vq_index: u32::from(q),
        },
        Notification::Config {
            status, generation, ..
        } => Response::EventConfig {
            device_status: u32::from(status),
            generation,
        },
    }
}

/// Encodes the EVENT_USED / EVENT_CONFIG messages for `interrupts`, one at
/// a time: calls `send` with each encoded message.
pub fn encode_events<D: VirtioDevice, const NQ: usize, const H: usize>(
    core: &DeviceCore<D, NQ, H>,
    rev: Revision,
    dev_num: u16,
    interrupts: Interrupts,
    mut send: impl FnMut(&[u8]),
) {
    let config = interrupts.config.then(|| Notification::Config {
        needs_reset: core.needs_reset(),
        status: core.status(),
        generation: core.config_generation(),
    });
    let used = interrupts.queues().map(Notification::Used);
    let mut buf = [0u8; 32];
    for n in config.into_iter().chain(used) {
        let len = event(n).encode(rev, dev_num, 0, &mut buf);
        if let Some(m) = len.ok().and_then(|len| buf.get(..len)) {
            send(m);
        }
    }
}
