//! The partition message header of indirect messages (`FFA_MSG_SEND2`).
//!
//! FF-A v1.2 (DEN0077A), "Partition message header" (indirect messaging
//! chapter), as Hafnium's `struct ffa_partition_rxtx_header` lays it out:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0  | 4  | flags (reserved, SBZ) |
//! | 4  | 4  | reserved (SBZ) |
//! | 8  | 4  | offset of the payload from the start of the buffer |
//! | 12 | 2  | **receiver** endpoint id (bits [15:0] of the word at 12) |
//! | 14 | 2  | **sender** endpoint id (bits [31:16] of the word at 12) |
//! | 16 | 4  | payload size |
//! | 20 | 4  | reserved (SBZ), v1.2+ |
//! | 24 | 16 | UUID of the protocol, v1.2+ (four little-endian words, as in registers) |
//!
//! The header is 0x28 (40) bytes in v1.2+ and 0x18 (24) bytes in v1.1; the
//! payload offset must be at least the header size of the sender's version.
//! `arm-ffa` 0.5 has no type for this header, so it is encoded here; the UUID
//! words use `arm_ffa::UuidHelper`.

use arm_ffa::UuidHelper;
use uuid::Uuid;

/// Header size for FF-A v1.2 and later callers.
pub const HEADER_SIZE: usize = 0x28;
/// Header size for FF-A v1.1 callers.
pub const HEADER_SIZE_V1_1: usize = 0x18;

/// A decoded partition message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgHeader {
    /// Flags word (SBZ).
    pub flags: u32,
    /// Reserved word at offset 4 (SBZ).
    pub reserved_1: u32,
    /// Payload offset from the start of the buffer.
    pub offset: u32,
    /// Receiver endpoint id (offset 12).
    pub receiver: u16,
    /// Sender endpoint id (offset 14).
    pub sender: u16,
    /// Payload size in bytes.
    pub size: u32,
    /// Reserved word at offset 20 (SBZ, v1.2+).
    pub reserved_2: u32,
    /// Protocol UUID (v1.2+); nil when unspecified.
    pub uuid: Uuid,
}

fn word(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

impl MsgHeader {
    /// A v1.2 header for `size` payload bytes placed right after the header.
    pub fn new(sender: u16, receiver: u16, size: u32, uuid: Uuid) -> Self {
        Self {
            flags: 0,
            reserved_1: 0,
            offset: HEADER_SIZE as u32,
            receiver,
            sender,
            size,
            reserved_2: 0,
            uuid,
        }
    }

    /// Decodes the 40-byte v1.2 header from the start of `buf`.
    pub fn read(buf: &[u8]) -> Option<Self> {
        if buf.len() < HEADER_SIZE {
            return None;
        }
        Some(Self {
            flags: word(buf, 0),
            reserved_1: word(buf, 4),
            offset: word(buf, 8),
            receiver: u16::from_le_bytes([buf[12], buf[13]]),
            sender: u16::from_le_bytes([buf[14], buf[15]]),
            size: word(buf, 16),
            reserved_2: word(buf, 20),
            uuid: UuidHelper::from_u32_regs([
                word(buf, 24),
                word(buf, 28),
                word(buf, 32),
                word(buf, 36),
            ]),
        })
    }

    /// Encodes the 40-byte v1.2 header into the start of `buf`.
    pub fn write(&self, buf: &mut [u8]) {
        buf[0..4].copy_from_slice(&self.flags.to_le_bytes());
        buf[4..8].copy_from_slice(&self.reserved_1.to_le_bytes());
        buf[8..12].copy_from_slice(&self.offset.to_le_bytes());
        buf[12..14].copy_from_slice(&self.receiver.to_le_bytes());
        buf[14..16].copy_from_slice(&self.sender.to_le_bytes());
        buf[16..20].copy_from_slice(&self.size.to_le_bytes());
        buf[20..24].copy_from_slice(&self.reserved_2.to_le_bytes());
        for (i, w) in UuidHelper::to_u32_regs(self.uuid).iter().enumerate() {
            buf[24 + 4 * i..28 + 4 * i].copy_from_slice(&w.to_le_bytes());
        }
    }
}
