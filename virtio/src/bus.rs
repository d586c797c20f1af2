//! virtio-msg bus messages: the standard ones every bus carries, the FF-A
//! bus's own (Arm DEN0153), and the device side of the FF-A bus as a
//! hardware-free state machine.
//!
//! Bus messages have `type` bit 1 set and `dev_num` 0 (ERROR excepted).
//! The standard ones (virtio-msg RFC3 and v2, "Bus Messages") are
//! 0x02 GET_DEVICES, 0x03 PING and the event 0x40 EVENT_DEVICE; the FF-A
//! bus adds 0x80–0x87 and the event 0xC0 AREA_RELEASE in the
//! implementation-defined range (`msg_id` bit 7).
//!
//! * [`BusRequest`], [`BusResponse`] and [`BusEvent`] encode and decode
//!   every message in both directions, so a device and a test driver share
//!   one codec. Payload lengths are exact: a message one byte longer or
//!   shorter than its layout does not decode.
//! * [`FfaBus`] is the device role: a transport hands it every bus frame
//!   it receives and sends back what it writes; the transport's mechanics
//!   (memory retrieval, notifications, the devices) stay behind
//!   [`FfaBusHost`].
//!
//! DEN0153 itself is not public; the FF-A layouts and rules follow Arm's
//! Linux proof of concept v2 (`virtio_msg_bus_ffa_protocol.h` and the
//! device role `virtio_msg_bus_ffa_device.c`, 2026, here "PoC") and the
//! OP-TEE back-ends (`core/arch/arm/kernel/virtio_msg_ffa.c`, Linaro 2025
//! and Qualcomm 2026, here "OP-TEE"). Standard bus layouts cite the
//! virtio-msg drafts "RFC3" (Nov 2025) and "v2" (2026).

use crate::msg::{self, EncodeError, HEADER_SIZE, Header, TYPE_BUS, TYPE_RESPONSE};
use crate::wire::{Rd, Short, Wr, encode_frame};

/// Bus message ids.
pub mod id {
    /// Which device numbers are present (request/response).
    pub const GET_DEVICES: u8 = 0x02;
    /// Liveness check; the data is echoed.
    pub const PING: u8 = 0x03;
    /// Event: a device was added or removed.
    pub const EVENT_DEVICE: u8 = 0x40;
    /// FF-A: version and feature negotiation.
    pub const VERSION: u8 = 0x80;
    /// FF-A: the driver shares a memory area with the device.
    pub const AREA_SHARE: u8 = 0x81;
    /// FF-A: the driver takes a shared area back.
    pub const AREA_UNSHARE: u8 = 0x82;
    /// FF-A: reset the bus to its pre-VERSION state.
    pub const RESET: u8 = 0x83;
    /// FF-A: fetch one pending device-to-driver event.
    pub const EVENT_POLL: u8 = 0x84;
    /// FF-A: choose how events reach the driver.
    pub const EVENT_CONFIGURE: u8 = 0x85;
    /// FF-A: set up shared-memory FIFOs.
    pub const FIFO_CONFIGURE: u8 = 0x86;
    /// FF-A: the request could not be served (a response only).
    pub const ERROR: u8 = 0x87;
    /// FF-A event: the device asks the driver to release an area.
    pub const AREA_RELEASE: u8 = 0xc0;
}

/// `msg_id` bit 6: the message is an event (v2 "Common Message Format";
/// RFC3 reserves 0x40–0x7F and, by bus policy, 0xC0–0xFF for events).
pub const EVENT_BIT: u8 = 1 << 6;

/// EVENT_DEVICE `state` values (RFC3 and v2 "Bus Messages"; 3–0x7FFF
/// reserved, 0x8000–0xFFFF bus-specific).
pub mod device_state {
    /// RFC3: the device is ready.
    pub const READY: u16 = 1;
    /// v2's name for [`READY`].
    pub const ADDED: u16 = 1;
    /// The device is gone.
    pub const REMOVED: u16 = 2;
}

/// FF-A bus result codes (le16 `result` fields; PoC and OP-TEE).
pub mod result {
    /// Done.
    pub const SUCCESS: u16 = 0;
    /// Refused or failed.
    pub const ERROR: u16 = 1;
    /// Try again later.
    pub const BUSY: u16 = 2;
}

/// FF-A bus feature bits (VERSION `bus_features`; PoC protocol header).
pub mod feature {
    /// Receives direct messages.
    pub const DIRECT_RX: u32 = 1 << 0;
    /// Sends direct messages.
    pub const DIRECT_TX: u32 = 1 << 1;
    /// Receives indirect messages.
    pub const INDIRECT_RX: u32 = 1 << 2;
    /// Sends indirect messages.
    pub const INDIRECT_TX: u32 = 1 << 3;
    /// Receives FF-A notifications.
    pub const NOTIF_RX: u32 = 1 << 4;
    /// Sends FF-A notifications.
    pub const NOTIF_TX: u32 = 1 << 5;
    /// Shared-memory FIFOs.
    pub const FIFO: u32 = 1 << 6;
}

/// Largest FF-A bus frame (PoC `FFA_BUS_MAX_MSG_SIZE`; OP-TEE peers use
/// 96).
pub const FFA_MAX_MSG_SIZE: usize = 104;
/// FF-A bus version 1.0 (major in bits 31:16; OP-TEE `FFA_PROTO_VERSION`,
/// PoC `VIRTIO_MSG_FFA_BUS_VERSION_1_0`).
pub const BUS_VERSION_1_0: u32 = 0x0001_0000;
/// The virtio-msg transport revision this crate speaks.
pub const TRANSPORT_REVISION: u32 = 1;
/// FF-A memory is shared in 4 KiB pages.
pub const FFA_PAGE_SIZE: u64 = 4096;
/// Smallest `out` buffer [`FfaBus::handle`] writes to: the largest fixed
/// response, VERSION in the PoC form (8 + 22 bytes).
pub const RESPONSE_BUF_MIN: usize = HEADER_SIZE + 22;

/// Bit position of the area id in an FF-A bus address.
pub const AREA_SHIFT: u32 = 48;
/// Offset bits of an FF-A bus address.
pub const AREA_OFFSET_MASK: u64 = (1 << AREA_SHIFT) - 1;

/// The bus address of `offset` in area `area_id`: `area_id << 48 | offset`
/// (PoC and OP-TEE). `None` if the offset does not fit 48 bits.
pub const fn bus_address(area_id: u16, offset: u64) -> Option<u64> {
    if offset > AREA_OFFSET_MASK {
        return None;
    }
    Some((area_id as u64) << AREA_SHIFT | offset)
}

/// Splits a bus address into its area id and offset.
pub const fn split_bus_address(addr: u64) -> (u16, u64) {
    ((addr >> AREA_SHIFT) as u16, addr & AREA_OFFSET_MASK)
}

/// How events reach the driver (EVENT_CONFIGURE `event_method`; PoC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventMethod {
    /// The driver polls with EVENT_POLL.
    Poll = 0,
    /// An FF-A notification tells the driver to poll.
    Notif = 1,
    /// Indirect messages.
    Indirect = 2,
    /// The device-to-driver FIFO.
    Fifo = 3,
}

impl EventMethod {
    /// The method numbered `v`, if defined.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Poll),
            1 => Some(Self::Notif),
            2 => Some(Self::Indirect),
            3 => Some(Self::Fifo),
            _ => None,
        }
    }
}

/// Why bytes could not be decoded as a bus message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than 8 bytes, or `msg_size` says more bytes than arrived.
    Truncated,
    /// `msg_size` is smaller than the header.
    BadSize,
    /// `type` bit 1 is clear: a transport message.
    NotBus,
    /// A response where a request or event was expected, or the other way
    /// round.
    WrongDirection,
    /// Not a message of this kind.
    UnknownId(u8),
    /// The payload length is not the message's layout.
    BadLength,
}

impl From<Short> for DecodeError {
    fn from(_: Short) -> Self {
        DecodeError::BadLength
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("message shorter than its header says"),
            DecodeError::BadSize => f.write_str("msg_size smaller than the header"),
            DecodeError::NotBus => f.write_str("not a bus message"),
            DecodeError::WrongDirection => f.write_str("message in the wrong direction"),
            DecodeError::UnknownId(id) => write!(f, "unknown bus message id {id:#04x}"),
            DecodeError::BadLength => f.write_str("payload length does not fit the message"),
        }
    }
}

impl From<msg::DecodeError> for DecodeError {
    fn from(e: msg::DecodeError) -> Self {
        match e {
            msg::DecodeError::BadSize => DecodeError::BadSize,
            _ => DecodeError::Truncated,
        }
    }
}

/// Splits a bus message into header and payload.
fn bus_header(bytes: &[u8]) -> Result<(Header, &[u8]), DecodeError> {
    let (h, payload) = Header::decode(bytes)?;
    // Header `type` bit 1: bus message (RFC3/v2 "Common Message Format";
    // bits 2..7 are ignored on receive).
    if h.msg_type & TYPE_BUS == 0 {
        return Err(DecodeError::NotBus);
    }
    Ok((h, payload))
}

/// The field order of a GET_DEVICES response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetDevicesOrder {
    /// RFC3 {offset, num, next_offset, bitmap}: the Linux AMP bus and
    /// OP-TEE.
    Rfc3,
    /// v2 {offset, next_offset, count, bitmap}: the PoC v2 FF-A bus.
    V2,
}

/// Bytes of a GET_DEVICES bitmap covering `count` device numbers.
pub const fn bitmap_len(count: u16) -> usize {
    (count as usize).div_ceil(8)
}

/// The GET_DEVICES answer, in `order`, for `count` device numbers from
/// `offset` of a bus whose devices are the set bits of `present` (bit `n`
/// of byte `n / 8`: device `n`), limited to what fits a frame of `room`
/// bytes; the bitmap is built in `buf`. `next_offset` is 0 when no device
/// follows, else the first number after the answered range (virtio-msg v2
/// "GET_DEVICES": the response count is at most the request's).
pub fn device_list<'b>(
    order: GetDevicesOrder,
    offset: u16,
    count: u16,
    room: usize,
    present: &[u8],
    buf: &'b mut [u8],
) -> DeviceList<'b> {
    let fit = room.saturating_sub(HEADER_SIZE + 6).min(buf.len()) * 8;
    let n = usize::from(count).min(fit);
    let bytes = n.div_ceil(8);
    let (bits, _) = buf.split_at_mut(bytes.min(buf.len()));
    bits.fill(0);
    let first = usize::from(offset);
    for i in 0..n {
        if bit(present, first + i)
            && let Some(b) = bits.get_mut(i / 8)
        {
            *b |= 1 << (i % 8);
        }
    }
    let end = first + n;
    let last = (present.len() * 8).min(1 << 16);
    let more = (end..last).any(|d| bit(present, d));
    let next_offset = if more {
        u16::try_from(end).unwrap_or(0)
    } else {
        0
    };
    DeviceList {
        order,
        offset,
        count: u16::try_from(n).unwrap_or(0),
        next_offset,
        bitmap: bits,
    }
}

/// Whether bit `n` of an LSB-first bitmap is set.
fn bit(bitmap: &[u8], n: usize) -> bool {
    bitmap.get(n / 8).is_some_and(|b| b & (1 << (n % 8)) != 0)
}

/// A GET_DEVICES response: which of `count` device numbers from `offset`
/// are present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceList<'a> {
    order: GetDevicesOrder,
    offset: u16,
    count: u16,
    next_offset: u16,
    bitmap: &'a [u8],
}

impl<'a> DeviceList<'a> {
    /// A list; `bitmap` must be exactly [`bitmap_len`]`(count)` bytes,
    /// bit n (LSB first) meaning device `offset + n` is present.
    pub fn new(
        order: GetDevicesOrder,
        offset: u16,
        count: u16,
        next_offset: u16,
        bitmap: &'a [u8],
    ) -> Option<Self> {
        (bitmap.len() == bitmap_len(count)).then_some(Self {
            order,
            offset,
            count,
            next_offset,
            bitmap,
        })
    }
    /// Field order on the wire.
    pub fn order(&self) -> GetDevicesOrder {
        self.order
    }
    /// First device number covered.
    pub fn offset(&self) -> u16 {
        self.offset
    }
    /// Number of device numbers covered (RFC3 `num`).
    pub fn count(&self) -> u16 {
        self.count
    }
    /// Where to ask next; 0 when nothing follows.
    pub fn next_offset(&self) -> u16 {
        self.next_offset
    }
    /// The raw bitmap.
    pub fn bitmap(&self) -> &'a [u8] {
        self.bitmap
    }
    /// Whether device `dev_num` is covered and present.
    pub fn contains(&self, dev_num: u16) -> bool {
        dev_num
            .checked_sub(self.offset)
            .is_some_and(|n| n < self.count && bit(self.bitmap, usize::from(n)))
    }
}

/// AREA_SHARE `sharing_attrs` bits 1:0: how the memory was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareKind {
    /// FFA_MEM_SHARE: both sides keep access.
    Share = 0,
    /// FFA_MEM_LEND: the driver lends exclusive access.
    Lend = 1,
    /// FFA_MEM_DONATE: ownership moves.
    Donate = 2,
}

/// AREA_SHARE `sharing_attrs` bits 5:4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shareability {
    /// Non-shareable.
    NonShareable = 0,
    /// Outer shareable.
    Outer = 2,
    /// Inner shareable.
    Inner = 3,
}

/// AREA_SHARE `sharing_attrs` bits 9:8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryType {
    /// Not specified.
    NotSpecified = 0,
    /// Device memory.
    Device = 1,
    /// Normal memory.
    Normal = 2,
}

/// Cacheability of normal memory: non-cacheable.
pub const CACHE_NON_CACHEABLE: u8 = 1;
/// Cacheability of normal memory: write-back.
pub const CACHE_WRITE_BACK: u8 = 3;

/// AREA_SHARE `sharing_attrs`, typed (PoC protocol header bit layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaAttrs {
    /// Bits 1:0 share, lend or donate.
    pub kind: ShareKind,
    /// Bit 2: the device may write.
    pub writeable: bool,
    /// Bit 3: the device may execute.
    pub executable: bool,
    /// Bits 5:4.
    pub shareability: Shareability,
    /// Bits 7:6, 0..=3: for normal memory [`CACHE_NON_CACHEABLE`] or
    /// [`CACHE_WRITE_BACK`]; otherwise passed on unchecked.
    pub cacheability: u8,
    /// Bits 9:8.
    pub memory_type: MemoryType,
    /// Bit 10: non-secure memory.
    pub non_secure: bool,
    /// Bit 11: the driver asks the device to keep the area across resets.
    pub driver_retention: bool,
}

impl AreaAttrs {
    /// The PoC driver's usual value, `SHARE_RW_XN_INNER_WB_NORMAL_NS`
    /// (0x6F4).
    pub const SHARE_RW_XN_INNER_WB_NORMAL_NS: AreaAttrs = AreaAttrs {
        kind: ShareKind::Share,
        writeable: true,
        executable: false,
        shareability: Shareability::Inner,
        cacheability: CACHE_WRITE_BACK,
        memory_type: MemoryType::Normal,
        non_secure: true,
        driver_retention: false,
    };

    /// Decodes `sharing_attrs`; `None` for reserved encodings: bits 31:12,
    /// type 3, shareability 1, memory type 3, and normal memory whose
    /// cacheability is neither 1 nor 3 (PoC bit definitions).
    pub const fn from_bits(v: u32) -> Option<AreaAttrs> {
        if v >> 12 != 0 {
            return None;
        }
        let kind = match v & 3 {
            0 => ShareKind::Share,
            1 => ShareKind::Lend,
            2 => ShareKind::Donate,
            _ => return None,
        };
        let shareability = match (v >> 4) & 3 {
            0 => Shareability::NonShareable,
            2 => Shareability::Outer,
            3 => Shareability::Inner,
            _ => return None,
        };
        let memory_type = match (v >> 8) & 3 {
            0 => MemoryType::NotSpecified,
            1 => MemoryType::Device,
            2 => MemoryType::Normal,
            _ => return None,
        };
        let cacheability = ((v >> 6) & 3) as u8;
        if matches!(memory_type, MemoryType::Normal)
            && cacheability != CACHE_NON_CACHEABLE
            && cacheability != CACHE_WRITE_BACK
        {
            return None;
        }
        Some(AreaAttrs {
            kind,
            writeable: v & 1 << 2 != 0,
            executable: v & 1 << 3 != 0,
            shareability,
            cacheability,
            memory_type,
            non_secure: v & 1 << 10 != 0,
            driver_retention: v & 1 << 11 != 0,
        })
    }

    /// Encodes `sharing_attrs`.
    pub const fn bits(&self) -> u32 {
        self.kind as u32
            | (self.writeable as u32) << 2
            | (self.executable as u32) << 3
            | (self.shareability as u32) << 4
            | ((self.cacheability & 3) as u32) << 6
            | (self.memory_type as u32) << 8
            | (self.non_secure as u32) << 10
            | (self.driver_retention as u32) << 11
    }
}

/// The 18-byte VERSION layout of the OP-TEE back-ends (their response, and
/// Qualcomm's 2026 request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VersionInfo {
    /// `proto_vers`: bus version ([`BUS_VERSION_1_0`]).
    pub bus_version: u32,
    /// `vmsg_rev`: transport revision.
    pub transport_revision: u32,
    /// `vmsg_features`: transport feature bits.
    pub transport_features: u32,
    /// `features`: [`feature`] bits.
    pub bus_features: u32,
    /// `area_max_count`.
    pub max_areas: u16,
}

/// A VERSION request in one of the three forms found in the wild; the
/// form is told apart by the payload length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRequest {
    /// 8 bytes (Linaro OP-TEE 2025): {proto_vers, vmsg_rev}.
    OpTee {
        /// Bus version.
        bus_version: u32,
        /// Transport revision.
        transport_revision: u32,
    },
    /// 12 bytes (PoC v2): {bus_version, transport_revision, ffa_version};
    /// all-zero versions probe.
    Poc {
        /// Bus version (0 probes).
        bus_version: u32,
        /// Transport revision (0 probes).
        transport_revision: u32,
        /// The driver's FF-A version.
        ffa_version: u32,
    },
    /// 18 bytes (Qualcomm OP-TEE 2026).
    Qualcomm(VersionInfo),
}

/// A VERSION response, in the layout matching the request's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionResponse {
    /// 22 bytes (PoC v2), answering [`VersionRequest::Poc`].
    Poc {
        /// Bus version (0: refused).
        bus_version: u32,
        /// Transport revision.
        transport_revision: u32,
        /// The device's FF-A version.
        ffa_version: u32,
        /// Transport feature bits.
        transport_features: u32,
        /// [`feature`] bits.
        bus_features: u32,
        /// Most areas the device accepts.
        max_areas: u16,
    },
    /// 18 bytes (OP-TEE), answering the other two forms.
    OpTee(VersionInfo),
}

impl VersionInfo {
    fn read(r: &mut Rd<'_>) -> Result<Self, DecodeError> {
        Ok(VersionInfo {
            bus_version: r.u32()?,
            transport_revision: r.u32()?,
            transport_features: r.u32()?,
            bus_features: r.u32()?,
            max_areas: r.u16()?,
        })
    }
    fn write(&self, w: &mut Wr<'_>) -> Result<(), EncodeError> {
        w.u32(self.bus_version)?;
        w.u32(self.transport_revision)?;
        w.u32(self.transport_features)?;
        w.u32(self.bus_features)?;
        w.u16(self.max_areas)
    }
}

/// A bus request, driver to device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusRequest {
    /// GET_DEVICES {le16 offset, le16 count}.
    GetDevices {
        /// First device number asked about.
        offset: u16,
        /// How many (RFC3 `num`).
        count: u16,
    },
    /// PING {le32 data}.
    Ping {
        /// Echoed.
        data: u32,
    },
    /// VERSION.
    Version(VersionRequest),
    /// AREA_SHARE (26 bytes).
    AreaShare {
        /// Area id (bits 63:48 of bus addresses).
        area_id: u16,
        /// FF-A memory handle.
        mem_handle: u64,
        /// FF-A memory tag.
        mem_tag: u64,
        /// Pages of [`FFA_PAGE_SIZE`].
        page_count: u32,
        /// `sharing_attrs` as sent ([`AreaAttrs::from_bits`]).
        attrs: u32,
    },
    /// AREA_UNSHARE {le16 area_id}.
    AreaUnshare {
        /// Area id.
        area_id: u16,
    },
    /// RESET (no payload).
    Reset,
    /// EVENT_POLL (no payload).
    EventPoll,
    /// EVENT_CONFIGURE {u8 event_method, u8 reserved, le16 notif_id}; the
    /// reserved byte is ignored on receive and written as 0.
    EventConfigure {
        /// [`EventMethod`] number, as sent.
        method: u8,
        /// FF-A notification id for [`EventMethod::Notif`].
        notif_id: u16,
    },
    /// FIFO_CONFIGURE {le64 mem_handle, le16 page_count, le16
    /// driver_notif_id}.
    FifoConfigure {
        /// FF-A memory handle of the FIFO region.
        mem_handle: u64,
        /// Pages in the region.
        page_count: u16,
        /// The driver's notification id.
        driver_notif_id: u16,
    },
}

impl BusRequest {
    /// The message id.
    pub fn msg_id(&self) -> u8 {
        match self {
            BusRequest::GetDevices { .. } => id::GET_DEVICES,
            BusRequest::Ping { .. } => id::PING,
            BusRequest::Version(_) => id::VERSION,
            BusRequest::AreaShare { .. } => id::AREA_SHARE,
            BusRequest::AreaUnshare { .. } => id::AREA_UNSHARE,
            BusRequest::Reset => id::RESET,
            BusRequest::EventPoll => id::EVENT_POLL,
            BusRequest::EventConfigure { .. } => id::EVENT_CONFIGURE,
            BusRequest::FifoConfigure { .. } => id::FIFO_CONFIGURE,
        }
    }

    /// Decodes a bus request (any `dev_num`; the bus checks it).
    pub fn decode(bytes: &[u8]) -> Result<(Header, BusRequest), DecodeError> {
        let (h, payload) = bus_header(bytes)?;
        if h.msg_type & TYPE_RESPONSE != 0 {
            return Err(DecodeError::WrongDirection);
        }
        Ok((h, Self::parse(h.msg_id, payload)?))
    }

    /// Decodes the payload of request `msg_id`.
    fn parse(msg_id: u8, payload: &[u8]) -> Result<BusRequest, DecodeError> {
        let mut r = Rd(payload);
        let req = match msg_id {
            id::GET_DEVICES => BusRequest::GetDevices {
                offset: r.u16()?,
                count: r.u16()?,
            },
            id::PING => BusRequest::Ping { data: r.u32()? },
            // The form is the payload length: 8 Linaro OP-TEE, 12 PoC v2,
            // 18 Qualcomm OP-TEE.
            id::VERSION => BusRequest::Version(match payload.len() {
                8 => VersionRequest::OpTee {
                    bus_version: r.u32()?,
                    transport_revision: r.u32()?,
                },
                12 => VersionRequest::Poc {
                    bus_version: r.u32()?,
                    transport_revision: r.u32()?,
                    ffa_version: r.u32()?,
                },
                18 => VersionRequest::Qualcomm(VersionInfo::read(&mut r)?),
                _ => return Err(DecodeError::BadLength),
            }),
            id::AREA_SHARE => BusRequest::AreaShare {
                area_id: r.u16()?,
                mem_handle: r.u64()?,
                mem_tag: r.u64()?,
                page_count: r.u32()?,
                attrs: r.u32()?,
            },
            id::AREA_UNSHARE => BusRequest::AreaUnshare { area_id: r.u16()? },
            id::RESET => BusRequest::Reset,
            id::EVENT_POLL => BusRequest::EventPoll,
            id::EVENT_CONFIGURE => {
                let method = r.u8()?;
                let _reserved = r.u8()?;
                BusRequest::EventConfigure {
                    method,
                    notif_id: r.u16()?,
                }
            }
            id::FIFO_CONFIGURE => BusRequest::FifoConfigure {
                mem_handle: r.u64()?,
                page_count: r.u16()?,
                driver_notif_id: r.u16()?,
            },
            other => return Err(DecodeError::UnknownId(other)),
        };
        r.end()?;
        Ok(req)
    }

    /// Encodes the request (bus requests use `dev_num` 0); returns its
    /// size.
    pub fn encode(&self, dev_num: u16, token: u16, out: &mut [u8]) -> Result<usize, EncodeError> {
        encode_frame(
            out,
            TYPE_BUS,
            self.msg_id(),
            dev_num,
            token,
            |w| match *self {
                BusRequest::GetDevices { offset, count } => {
                    w.u16(offset)?;
                    w.u16(count)
                }
                BusRequest::Ping { data } => w.u32(data),
                BusRequest::Version(VersionRequest::OpTee {
                    bus_version,
                    transport_revision,
                }) => {
                    w.u32(bus_version)?;
                    w.u32(transport_revision)
                }
                BusRequest::Version(VersionRequest::Poc {
                    bus_version,
                    transport_revision,
                    ffa_version,
                }) => {
                    w.u32(bus_version)?;
                    w.u32(transport_revision)?;
                    w.u32(ffa_version)
                }
                BusRequest::Version(VersionRequest::Qualcomm(v)) => v.write(w),
                BusRequest::AreaShare {
                    area_id,
                    mem_handle,
                    mem_tag,
                    page_count,
                    attrs,
                } => {
                    w.u16(area_id)?;
                    w.u64(mem_handle)?;
                    w.u64(mem_tag)?;
                    w.u32(page_count)?;
                    w.u32(attrs)
                }
                BusRequest::AreaUnshare { area_id } => w.u16(area_id),
                BusRequest::Reset | BusRequest::EventPoll => Ok(()),
                BusRequest::EventConfigure { method, notif_id } => {
                    w.u8(method)?;
                    w.u8(0)?;
                    w.u16(notif_id)
                }
                BusRequest::FifoConfigure {
                    mem_handle,
                    page_count,
                    driver_notif_id,
                } => {
                    w.u64(mem_handle)?;
                    w.u16(page_count)?;
                    w.u16(driver_notif_id)
                }
            },
        )
    }
}

/// A bus response, device to driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusResponse<'a> {
    /// GET_DEVICES.
    Devices(DeviceList<'a>),
    /// PING.
    Ping {
        /// The request's data.
        data: u32,
    },
    /// VERSION.
    Version(VersionResponse),
    /// AREA_SHARE {le16 area_id, le16 result}.
    AreaShare {
        /// The request's area id.
        area_id: u16,
        /// A [`result`] code.
        result: u16,
    },
    /// AREA_UNSHARE {le16 area_id, le16 result}.
    AreaUnshare {
        /// The request's area id.
        area_id: u16,
        /// A [`result`] code.
        result: u16,
    },
    /// RESET {le16 result}.
    Reset {
        /// A [`result`] code.
        result: u16,
    },
    /// The empty EVENT_POLL answer (no payload): no event pending.
    EventPoll,
    /// EVENT_CONFIGURE {le16 result}.
    EventConfigure {
        /// A [`result`] code.
        result: u16,
    },
    /// FIFO_CONFIGURE {le16 result, le16 device_notif_id}.
    FifoConfigure {
        /// A [`result`] code.
        result: u16,
        /// The device's notification id.
        device_notif_id: u16,
    },
    /// ERROR {le16 original msg_id}; carries the failed request's
    /// `dev_num` and token.
    Error {
        /// The id of the request that failed.
        original_msg_id: u16,
    },
}

impl<'a> BusResponse<'a> {
    /// The message id.
    pub fn msg_id(&self) -> u8 {
        match self {
            BusResponse::Devices(_) => id::GET_DEVICES,
            BusResponse::Ping { .. } => id::PING,
            BusResponse::Version(_) => id::VERSION,
            BusResponse::AreaShare { .. } => id::AREA_SHARE,
            BusResponse::AreaUnshare { .. } => id::AREA_UNSHARE,
            BusResponse::Reset { .. } => id::RESET,
            BusResponse::EventPoll => id::EVENT_POLL,
            BusResponse::EventConfigure { .. } => id::EVENT_CONFIGURE,
            BusResponse::FifoConfigure { .. } => id::FIFO_CONFIGURE,
            BusResponse::Error { .. } => id::ERROR,
        }
    }

    /// Decodes a bus response; `order` is the bus's GET_DEVICES layout.
    pub fn decode(
        bytes: &'a [u8],
        order: GetDevicesOrder,
    ) -> Result<(Header, BusResponse<'a>), DecodeError> {
        let (h, payload) = bus_header(bytes)?;
        if h.msg_type & TYPE_RESPONSE == 0 {
            return Err(DecodeError::WrongDirection);
        }
        let mut r = Rd(payload);
        let resp = match h.msg_id {
            id::GET_DEVICES => {
                let offset = r.u16()?;
                // RFC3 {offset, num, next_offset}; v2 {offset,
                // next_offset, count} ("Bus Messages" in each draft).
                let (count, next_offset) = match order {
                    GetDevicesOrder::Rfc3 => (r.u16()?, r.u16()?),
                    GetDevicesOrder::V2 => {
                        let next = r.u16()?;
                        (r.u16()?, next)
                    }
                };
                let bitmap = r.bytes(bitmap_len(count))?;
                BusResponse::Devices(DeviceList {
                    order,
                    offset,
                    count,
                    next_offset,
                    bitmap,
                })
            }
            id::PING => BusResponse::Ping { data: r.u32()? },
            // 22 bytes PoC v2, 18 bytes OP-TEE.
            id::VERSION => BusResponse::Version(match payload.len() {
                22 => VersionResponse::Poc {
                    bus_version: r.u32()?,
                    transport_revision: r.u32()?,
                    ffa_version: r.u32()?,
                    transport_features: r.u32()?,
                    bus_features: r.u32()?,
                    max_areas: r.u16()?,
                },
                18 => VersionResponse::OpTee(VersionInfo::read(&mut r)?),
                _ => return Err(DecodeError::BadLength),
            }),
            id::AREA_SHARE => BusResponse::AreaShare {
                area_id: r.u16()?,
                result: r.u16()?,
            },
            id::AREA_UNSHARE => BusResponse::AreaUnshare {
                area_id: r.u16()?,
                result: r.u16()?,
            },
            id::RESET => BusResponse::Reset { result: r.u16()? },
            id::EVENT_POLL => BusResponse::EventPoll,
            id::EVENT_CONFIGURE => BusResponse::EventConfigure { result: r.u16()? },
            id::FIFO_CONFIGURE => BusResponse::FifoConfigure {
                result: r.u16()?,
                device_notif_id: r.u16()?,
            },
            // PoC: ERROR's msg_size must be exactly 8 + 2.
            id::ERROR => BusResponse::Error {
                original_msg_id: r.u16()?,
            },
            other => return Err(DecodeError::UnknownId(other)),
        };
        r.end()?;
        Ok((h, resp))
    }

    /// Encodes the response (`dev_num` 0 except for ERROR); returns its
    /// size.
    pub fn encode(&self, dev_num: u16, token: u16, out: &mut [u8]) -> Result<usize, EncodeError> {
        let ty = TYPE_BUS | TYPE_RESPONSE;
        encode_frame(out, ty, self.msg_id(), dev_num, token, |w| match *self {
            BusResponse::Devices(d) => {
                w.u16(d.offset)?;
                match d.order {
                    GetDevicesOrder::Rfc3 => {
                        w.u16(d.count)?;
                        w.u16(d.next_offset)?;
                    }
                    GetDevicesOrder::V2 => {
                        w.u16(d.next_offset)?;
                        w.u16(d.count)?;
                    }
                }
                w.bytes(d.bitmap)
            }
            BusResponse::Ping { data } => w.u32(data),
            BusResponse::Version(VersionResponse::Poc {
                bus_version,
                transport_revision,
                ffa_version,
                transport_features,
                bus_features,
                max_areas,
            }) => {
                w.u32(bus_version)?;
                w.u32(transport_revision)?;
                w.u32(ffa_version)?;
                w.u32(transport_features)?;
                w.u32(bus_features)?;
                w.u16(max_areas)
            }
            BusResponse::Version(VersionResponse::OpTee(v)) => v.write(w),
            BusResponse::AreaShare { area_id, result }
            | BusResponse::AreaUnshare { area_id, result } => {
                w.u16(area_id)?;
                w.u16(result)
            }
            BusResponse::Reset { result } | BusResponse::EventConfigure { result } => w.u16(result),
            BusResponse::EventPoll => Ok(()),
            BusResponse::FifoConfigure {
                result,
                device_notif_id,
            } => {
                w.u16(result)?;
                w.u16(device_notif_id)
            }
            BusResponse::Error { original_msg_id } => w.u16(original_msg_id),
        })
    }
}

/// A bus event, device to driver (no response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusEvent {
    /// EVENT_DEVICE {le16 dev_num, le16 state}.
    Device {
        /// The device concerned.
        dev_num: u16,
        /// A [`device_state`] value.
        state: u16,
    },
    /// FF-A AREA_RELEASE {le16 area_id}.
    AreaRelease {
        /// The area the device asks the driver to take back.
        area_id: u16,
    },
}

impl BusEvent {
    /// The message id.
    pub fn msg_id(&self) -> u8 {
        match self {
            BusEvent::Device { .. } => id::EVENT_DEVICE,
            BusEvent::AreaRelease { .. } => id::AREA_RELEASE,
        }
    }

    /// Decodes a bus event.
    pub fn decode(bytes: &[u8]) -> Result<(Header, BusEvent), DecodeError> {
        let (h, payload) = bus_header(bytes)?;
        // v2: events use type bit 0 = 0 and are never responses.
        if h.msg_type & TYPE_RESPONSE != 0 {
            return Err(DecodeError::WrongDirection);
        }
        let mut r = Rd(payload);
        let ev = match h.msg_id {
            id::EVENT_DEVICE => BusEvent::Device {
                dev_num: r.u16()?,
                state: r.u16()?,
            },
            id::AREA_RELEASE => BusEvent::AreaRelease { area_id: r.u16()? },
            other => return Err(DecodeError::UnknownId(other)),
        };
        r.end()?;
        Ok((h, ev))
    }

    /// Encodes the event (events use `dev_num` 0 and token 0); returns its
    /// size.
    pub fn encode(&self, dev_num: u16, token: u16, out: &mut [u8]) -> Result<usize, EncodeError> {
        encode_frame(
            out,
            TYPE_BUS,
            self.msg_id(),
            dev_num,
            token,
            |w| match *self {
                BusEvent::Device { dev_num, state } => {
                    w.u16(dev_num)?;
                    w.u16(state)
                }
                BusEvent::AreaRelease { area_id } => w.u16(area_id),
            },
        )
    }
}

// ---------------------------------------------------------------------------
// The FF-A bus, device role.

/// An area the driver shared with the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedArea {
    /// Area id (bits 63:48 of bus addresses).
    pub area_id: u16,
    /// FF-A memory handle.
    pub mem_handle: u64,
    /// FF-A memory tag.
    pub mem_tag: u64,
    /// Pages of [`FFA_PAGE_SIZE`].
    pub page_count: u32,
    /// Sharing attributes.
    pub attrs: AreaAttrs,
}

impl SharedArea {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        u64::from(self.page_count) * FFA_PAGE_SIZE
    }
}

/// What the host made of a request it was asked to carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStatus {
    /// Done ([`result::SUCCESS`]).
    Ok,
    /// Failed ([`result::ERROR`]).
    Error,
    /// Not now ([`result::BUSY`]).
    Busy,
}

impl HostStatus {
    /// The [`result`] code.
    pub const fn result(self) -> u16 {
        match self {
            HostStatus::Ok => result::SUCCESS,
            HostStatus::Error => result::ERROR,
            HostStatus::Busy => result::BUSY,
        }
    }
}

/// What the FF-A transport does for [`FfaBus`].
pub trait FfaBusHost {
    /// Retrieves the memory of a newly shared area (FFA_MEM_RETRIEVE_REQ
    /// with its handle and tag). Only called for an id not already shared.
    fn retrieve_area(&mut self, area: &SharedArea) -> HostStatus;
    /// Gives an area back (FFA_MEM_RELINQUISH). On AREA_UNSHARE anything
    /// but [`HostStatus::Ok`] keeps the area shared; on RESET the bus
    /// forgets the area whatever the answer.
    fn relinquish_area(&mut self, area: &SharedArea) -> HostStatus;
    /// Resets every device on the bus (RESET), before the areas are
    /// relinquished. Anything but [`HostStatus::Ok`] leaves the bus as it
    /// was and is the RESET's result.
    fn reset_devices(&mut self) -> HostStatus;
    /// Writes the oldest pending device-to-driver event frame (a transport
    /// EVENT_USED/EVENT_CONFIG or a bus event) into `out` and returns its
    /// length, for EVENT_POLL; `None` when nothing is pending.
    fn next_event(&mut self, out: &mut [u8]) -> Option<usize>;
    /// Whether events can go to the driver by `method` (with FF-A
    /// notification `notif_id` for [`EventMethod::Notif`]); `true` commits
    /// to it.
    fn configure_events(&mut self, method: EventMethod, notif_id: u16) -> bool;
    /// Which device numbers are present: bit n (LSB first) of the bitmap
    /// is device n; bits past its end are absent.
    fn device_bitmap(&self) -> &[u8];
}

/// The device's side of the negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FfaBusConfig {
    /// The device's FF-A version (major << 16 | minor).
    pub ffa_version: u32,
    /// [`feature`] bits offered in VERSION.
    pub bus_features: u32,
    /// GET_DEVICES response layout (the PoC FF-A bus uses v2).
    pub devices_order: GetDevicesOrder,
}

/// What [`FfaBus::handle`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    /// Bytes written to `out`, or `None` when nothing is to be sent.
    pub response_len: Option<usize>,
    /// The verdict.
    pub outcome: Outcome,
    /// What the host was asked to do.
    pub host: HostCall,
}

/// How a frame was dealt with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with the request's own response (or, for EVENT_POLL, a
    /// pending event).
    Served,
    /// Answered with an ERROR frame.
    Error(ErrorCause),
    /// Not answered.
    Dropped(DropCause),
    /// A transport message (`type` bit 1 clear): not the bus's.
    NotBus,
}

/// Why a request was answered with ERROR (PoC device role,
/// `send_error_locked`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCause {
    /// A bus request with `dev_num` != 0.
    DevNum,
    /// Neither VERSION nor RESET, before VERSION completed.
    NotNegotiated,
    /// Not a bus request id.
    UnknownId,
    /// Wrong payload length for the id.
    BadLength,
    /// EVENT_CONFIGURE after events were configured.
    AlreadyConfigured,
}

/// Why a frame got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropCause {
    /// Shorter than a header, or `msg_size` below 8 or beyond the frame.
    Malformed,
    /// `msg_size` above [`FFA_MAX_MSG_SIZE`].
    Oversized,
    /// A response: the device role sends no bus requests.
    Response,
    /// An event: none go from driver to device on this bus.
    Event,
    /// `out` is shorter than [`RESPONSE_BUF_MIN`].
    OutTooSmall,
}

/// The host call a frame caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCall {
    /// None.
    None,
    /// [`FfaBusHost::retrieve_area`].
    Retrieve {
        /// Area id.
        area_id: u16,
        /// The host's answer.
        status: HostStatus,
    },
    /// [`FfaBusHost::relinquish_area`] for AREA_UNSHARE.
    Relinquish {
        /// Area id.
        area_id: u16,
        /// The host's answer.
        status: HostStatus,
    },
    /// [`FfaBusHost::reset_devices`], then `relinquished` areas given back.
    Reset {
        /// The host's answer.
        status: HostStatus,
        /// Areas relinquished.
        relinquished: usize,
    },
    /// [`FfaBusHost::next_event`].
    EventPoll(Polled),
    /// [`FfaBusHost::configure_events`].
    EventConfigure {
        /// The method.
        method: EventMethod,
        /// The host's answer.
        accepted: bool,
    },
}

/// What EVENT_POLL found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// Nothing pending: the empty response was sent.
    Empty,
    /// The host's event frame was sent.
    Delivered,
    /// The host's frame was not a well-formed event that fits: it was
    /// discarded and the empty response sent.
    Malformed,
}

/// The device side of the FF-A virtio-msg bus, for at most `AREAS` shared
/// areas at a time.
///
/// Until VERSION completes only VERSION and RESET are served; any other
/// request gets ERROR and events are dropped. FIFO_CONFIGURE is always
/// refused (result 1, device notification id 0): this crate does not
/// implement the FIFO transfer, so event method FIFO is refused too.
#[derive(Debug)]
pub struct FfaBus<const AREAS: usize> {
    config: FfaBusConfig,
    negotiated: bool,
    events: Option<EventMethod>,
    areas: [Option<SharedArea>; AREAS],
}

impl<const AREAS: usize> FfaBus<AREAS> {
    /// A bus in its pre-VERSION state.
    pub const fn new(config: FfaBusConfig) -> Self {
        Self {
            config,
            negotiated: false,
            events: None,
            areas: [None; AREAS],
        }
    }

    /// Whether VERSION has completed.
    pub fn is_negotiated(&self) -> bool {
        self.negotiated
    }

    /// The configured event method, if any.
    pub fn event_method(&self) -> Option<EventMethod> {
        self.events
    }

    /// The shared areas.
    pub fn areas(&self) -> impl Iterator<Item = &SharedArea> {
        self.areas.iter().flatten()
    }

    /// The area `area_id`, if shared.
    pub fn area(&self, area_id: u16) -> Option<&SharedArea> {
        self.areas().find(|a| a.area_id == area_id)
    }

    /// The area holding bus addresses `addr..addr + len` and the offset of
    /// `addr` in it, if that whole range lies in one shared area.
    pub fn resolve(&self, addr: u64, len: u64) -> Option<(&SharedArea, u64)> {
        let (area_id, offset) = split_bus_address(addr);
        let a = self.area(area_id)?;
        (offset.checked_add(len)? <= a.size()).then_some((a, offset))
    }

    /// `max_areas` as advertised in VERSION.
    fn max_areas() -> u16 {
        u16::try_from(AREAS).unwrap_or(u16::MAX)
    }

    /// Handles one bus frame received from the driver; writes the answer,
    /// if any, to `out` (at most [`FFA_MAX_MSG_SIZE`] bytes of it are used).
    /// Bytes after `msg_size` (register padding) are ignored.
    pub fn handle(&mut self, frame: &[u8], out: &mut [u8], host: &mut impl FfaBusHost) -> Handled {
        let drop = |cause| Handled {
            response_len: None,
            outcome: Outcome::Dropped(cause),
            host: HostCall::None,
        };
        let Some(&ty) = frame.first() else {
            return drop(DropCause::Malformed);
        };
        // `type` bit 1 clear: a transport message, for the transport.
        if ty & TYPE_BUS == 0 {
            return Handled {
                response_len: None,
                outcome: Outcome::NotBus,
                host: HostCall::None,
            };
        }
        // PoC inbound validation: msg_size 8..=104 and within the frame.
        let Ok((h, payload)) = Header::decode(frame) else {
            return drop(DropCause::Malformed);
        };
        if usize::from(h.msg_size) > FFA_MAX_MSG_SIZE {
            return drop(DropCause::Oversized);
        }
        if h.msg_type & TYPE_RESPONSE != 0 {
            return drop(DropCause::Response);
        }
        // RFC3/v2: events never elicit a response; PoC: inbound events
        // are dropped (before VERSION by rule, after it none are defined
        // from driver to device).
        if h.msg_id & EVENT_BIT != 0 {
            return drop(DropCause::Event);
        }
        if out.len() < RESPONSE_BUF_MIN {
            return drop(DropCause::OutTooSmall);
        }
        // RFC3/v2 header: bus messages MUST use dev_num 0 (PoC inbound
        // validation). Answered with ERROR, which may carry the dev_num.
        if h.dev_num != 0 {
            return error(out, &h, ErrorCause::DevNum);
        }
        // PoC `classify_preneg_msg`: before VERSION completes only VERSION
        // and RESET are served; other requests get ERROR.
        if !self.negotiated && h.msg_id != id::VERSION && h.msg_id != id::RESET {
            return error(out, &h, ErrorCause::NotNegotiated);
        }
        // PoC: wrong request length or unknown bus id -> ERROR.
        let req = match BusRequest::parse(h.msg_id, payload) {
            Ok(r) => r,
            Err(DecodeError::UnknownId(_)) => return error(out, &h, ErrorCause::UnknownId),
            Err(_) => return error(out, &h, ErrorCause::BadLength),
        };
        let mut call = HostCall::None;
        let mut bitmap = [0u8; FFA_MAX_MSG_SIZE - HEADER_SIZE - 6];
        let reply = match req {
            BusRequest::GetDevices { offset, count } => {
                let room = out.len().min(FFA_MAX_MSG_SIZE);
                let order = self.config.devices_order;
                let list = device_list(
                    order,
                    offset,
                    count,
                    room,
                    host.device_bitmap(),
                    &mut bitmap,
                );
                BusResponse::Devices(list)
            }
            BusRequest::Ping { data } => BusResponse::Ping { data },
            BusRequest::Version(v) => BusResponse::Version(self.version(v)),
            BusRequest::AreaShare {
                area_id,
                mem_handle,
                mem_tag,
                page_count,
                attrs,
            } => {
                let result = match AreaAttrs::from_bits(attrs) {
                    // Reserved attribute encodings: refused, host not asked.
                    None => result::ERROR,
                    Some(attrs) => {
                        let area = SharedArea {
                            area_id,
                            mem_handle,
                            mem_tag,
                            page_count,
                            attrs,
                        };
                        self.share(area, host, &mut call)
                    }
                };
                BusResponse::AreaShare { area_id, result }
            }
            BusRequest::AreaUnshare { area_id } => {
                let result = self.unshare(area_id, host, &mut call);
                BusResponse::AreaUnshare { area_id, result }
            }
            BusRequest::Reset => {
                let status = host.reset_devices();
                let mut relinquished = 0;
                // PoC RESET: tear down the areas and the event method and
                // go back to the pre-VERSION state.
                if status == HostStatus::Ok {
                    for slot in &mut self.areas {
                        if let Some(a) = slot.take() {
                            host.relinquish_area(&a);
                            relinquished += 1;
                        }
                    }
                    self.negotiated = false;
                    self.events = None;
                }
                call = HostCall::Reset {
                    status,
                    relinquished,
                };
                BusResponse::Reset {
                    result: status.result(),
                }
            }
            BusRequest::EventPoll => {
                // PoC driver: the answer is one pending event frame as it
                // is, or the empty EVENT_POLL response.
                let room = out.len().min(FFA_MAX_MSG_SIZE);
                // `room` <= out.len(): `get_mut` always gives the window
                // (`get`, not indexing: no panic path in a firmware image).
                let polled = match out.get_mut(..room).and_then(|w| host.next_event(w)) {
                    None => Polled::Empty,
                    Some(n) if n <= room && out.get(..n).is_some_and(is_event_frame) => {
                        return Handled {
                            response_len: Some(n),
                            outcome: Outcome::Served,
                            host: HostCall::EventPoll(Polled::Delivered),
                        };
                    }
                    Some(_) => Polled::Malformed,
                };
                call = HostCall::EventPoll(polled);
                BusResponse::EventPoll
            }
            BusRequest::EventConfigure { method, notif_id } => {
                // PoC: EVENT_CONFIGURE when already configured -> ERROR.
                if self.events.is_some() {
                    return error(out, &h, ErrorCause::AlreadyConfigured);
                }
                let accepted = match EventMethod::from_u8(method) {
                    // No FIFO transfer here (see FIFO_CONFIGURE).
                    None | Some(EventMethod::Fifo) => false,
                    Some(m) => {
                        let ok = host.configure_events(m, notif_id);
                        call = HostCall::EventConfigure {
                            method: m,
                            accepted: ok,
                        };
                        if ok {
                            self.events = Some(m);
                        }
                        ok
                    }
                };
                BusResponse::EventConfigure {
                    result: if accepted {
                        result::SUCCESS
                    } else {
                        result::ERROR
                    },
                }
            }
            // FIFO transfer is not implemented: refused (result 1).
            BusRequest::FifoConfigure { .. } => BusResponse::FifoConfigure {
                result: result::ERROR,
                device_notif_id: 0,
            },
        };
        match reply.encode(0, h.token, out) {
            Ok(n) => Handled {
                response_len: Some(n),
                outcome: Outcome::Served,
                host: call,
            },
            // Not reached: `out` holds RESPONSE_BUF_MIN and GET_DEVICES is
            // sized to it.
            Err(_) => Handled {
                response_len: None,
                outcome: Outcome::Dropped(DropCause::OutTooSmall),
                host: call,
            },
        }
    }

    /// VERSION, in the layout matching the request's form.
    fn version(&mut self, req: VersionRequest) -> VersionResponse {
        let ours = (BUS_VERSION_1_0, TRANSPORT_REVISION);
        match req {
            VersionRequest::Poc {
                bus_version,
                transport_revision,
                ffa_version,
            } => {
                let pair = (bus_version, transport_revision);
                // PoC `handle_version`: the echo of the supported pair
                // completes negotiation; a probe {0, 0} and (before
                // negotiation) a newer pair get the supported pair; an
                // older pair, or after negotiation any other pair, gets
                // zeros.
                let answer = if pair == ours {
                    self.negotiated = true;
                    ours
                } else if pair == (0, 0) || (!self.negotiated && pair > ours) {
                    ours
                } else {
                    (0, 0)
                };
                // PoC: ffa_version = min(local, request); a request
                // without one gets the local version.
                let ffa = match ffa_version {
                    0 => self.config.ffa_version,
                    v => v.min(self.config.ffa_version),
                };
                // PoC: bus_features and max_areas only with a version.
                let on = answer.0 != 0;
                VersionResponse::Poc {
                    bus_version: answer.0,
                    transport_revision: answer.1,
                    ffa_version: ffa,
                    transport_features: 0,
                    bus_features: if on { self.config.bus_features } else { 0 },
                    max_areas: if on { Self::max_areas() } else { 0 },
                }
            }
            VersionRequest::OpTee {
                bus_version,
                transport_revision,
            }
            | VersionRequest::Qualcomm(VersionInfo {
                bus_version,
                transport_revision,
                ..
            }) => {
                // OP-TEE: proto_vers must be 0x00010000 and vmsg_rev 1,
                // else an all-zero payload; no probe step.
                if (bus_version, transport_revision) == ours {
                    self.negotiated = true;
                    VersionResponse::OpTee(VersionInfo {
                        bus_version: ours.0,
                        transport_revision: ours.1,
                        transport_features: 0,
                        bus_features: self.config.bus_features,
                        max_areas: Self::max_areas(),
                    })
                } else {
                    VersionResponse::OpTee(VersionInfo::default())
                }
            }
        }
    }

    /// AREA_SHARE: a [`result`] code.
    fn share(&mut self, area: SharedArea, host: &mut impl FfaBusHost, call: &mut HostCall) -> u16 {
        // An id already shared, or no room in the table: result 1 without
        // asking the host.
        if self.area(area.area_id).is_some() {
            return result::ERROR;
        }
        let Some(slot) = self.areas.iter_mut().find(|s| s.is_none()) else {
            return result::ERROR;
        };
        let status = host.retrieve_area(&area);
        *call = HostCall::Retrieve {
            area_id: area.area_id,
            status,
        };
        if status == HostStatus::Ok {
            *slot = Some(area);
        }
        status.result()
    }

    /// AREA_UNSHARE: a [`result`] code.
    fn unshare(&mut self, area_id: u16, host: &mut impl FfaBusHost, call: &mut HostCall) -> u16 {
        // Unknown id: result 1.
        let Some((slot, area)) = self
            .areas
            .iter_mut()
            .find_map(|s| s.filter(|a| a.area_id == area_id).map(|a| (s, a)))
        else {
            return result::ERROR;
        };
        let status = host.relinquish_area(&area);
        *call = HostCall::Relinquish { area_id, status };
        if status == HostStatus::Ok {
            *slot = None;
        }
        status.result()
    }
}

/// Writes the ERROR answer to request `h` (PoC `send_error_locked`: type
/// bus|response, msg_id 0x87, the request's dev_num and token, payload
/// le16 original msg_id, msg_size 10).
fn error(out: &mut [u8], h: &Header, cause: ErrorCause) -> Handled {
    let e = BusResponse::Error {
        original_msg_id: u16::from(h.msg_id),
    };
    let (response_len, outcome) = match e.encode(h.dev_num, h.token, out) {
        Ok(n) => (Some(n), Outcome::Error(cause)),
        Err(_) => (None, Outcome::Dropped(DropCause::OutTooSmall)),
    };
    Handled {
        response_len,
        outcome,
        host: HostCall::None,
    }
}

/// Whether `f` is exactly one well-formed device-to-driver event: a bus
/// event with `dev_num` 0, or a transport EVENT_USED / EVENT_CONFIG.
pub fn is_event_frame(f: &[u8]) -> bool {
    let Ok((h, _)) = Header::decode(f) else {
        return false;
    };
    if usize::from(h.msg_size) != f.len() {
        return false;
    }
    if h.msg_type & TYPE_BUS != 0 {
        h.dev_num == 0 && BusEvent::decode(f).is_ok()
    } else {
        matches!(
            // Events have the same layout in both revisions.
            msg::Response::decode(f, msg::Revision::V2),
            Ok((
                _,
                msg::Response::EventUsed { .. } | msg::Response::EventConfig { .. }
            ))
        )
    }
}
