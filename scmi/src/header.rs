//! The 32-bit SCMI message header (SCMI v3.2 §4.1.1) and status codes
//! (§4.1.4).

/// Largest SCMI message the server builds: header, status and the 128
/// payload bytes Linux's virtio transport allows (`VIRTIO_SCMI_MAX_PDU_SIZE`).
pub const MAX_MESSAGE: usize = 136;

/// Largest request payload (after the header) an agent may send: Linux's
/// `VIRTIO_SCMI_MAX_MSG_SIZE`, the same 128 bytes.
pub const MAX_PAYLOAD: usize = 128;

/// Largest request: header and [`MAX_PAYLOAD`] bytes.
pub const MAX_REQUEST: usize = 4 + MAX_PAYLOAD;

/// Message types (header bits [9:8]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    /// A command; its synchronous response uses the same type.
    Command = 0,
    /// A delayed response to an asynchronous command.
    DelayedResponse = 2,
    /// A notification.
    Notification = 3,
}

/// A decoded message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message (or notification) id, bits [7:0].
    pub msg_id: u8,
    /// Message type, bits [9:8].
    pub msg_type: MsgType,
    /// Protocol id, bits [17:10].
    pub protocol: u8,
    /// Token chosen by the agent, bits [27:18].
    pub token: u16,
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Type 1 is reserved; agents only send commands (type 0).
    NotACommand,
    /// Bits [31:28] are reserved and must be zero.
    ReservedBits,
}

impl core::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            HeaderError::NotACommand => "not a command (message type 1 or above)",
            HeaderError::ReservedBits => "reserved header bits [31:28] set",
        })
    }
}

impl Header {
    /// A command header.
    pub const fn command(protocol: u8, msg_id: u8, token: u16) -> Self {
        Header {
            msg_id,
            msg_type: MsgType::Command,
            protocol,
            token: token & 0x3ff,
        }
    }

    /// Decodes the header of a message an agent sent. Only commands are
    /// valid from an agent (§4.1.1).
    pub fn decode_command(word: u32) -> Result<Self, HeaderError> {
        if word >> 28 != 0 {
            return Err(HeaderError::ReservedBits);
        }
        if (word >> 8) & 3 != 0 {
            return Err(HeaderError::NotACommand);
        }
        Ok(Self::decode_fields(word, MsgType::Command))
    }

    /// Decodes any header (for agents and tests reading what the platform
    /// sent); `None` for the reserved type 1 or reserved bits set.
    pub fn decode(word: u32) -> Option<Self> {
        if word >> 28 != 0 {
            return None;
        }
        let t = match (word >> 8) & 3 {
            0 => MsgType::Command,
            2 => MsgType::DelayedResponse,
            3 => MsgType::Notification,
            _ => return None,
        };
        Some(Self::decode_fields(word, t))
    }

    fn decode_fields(word: u32, msg_type: MsgType) -> Self {
        Header {
            msg_id: word as u8,
            msg_type,
            protocol: (word >> 10) as u8,
            token: ((word >> 18) & 0x3ff) as u16,
        }
    }

    /// The 32-bit encoding.
    pub const fn encode(&self) -> u32 {
        self.msg_id as u32
            | (self.msg_type as u32) << 8
            | (self.protocol as u32) << 10
            | ((self.token & 0x3ff) as u32) << 18
    }

    /// The same header with another type (responses echo the command's
    /// header, delayed responses change only the type).
    pub const fn with_type(self, msg_type: MsgType) -> Self {
        Header { msg_type, ..self }
    }
}

/// SCMI status codes (§4.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    /// Success.
    Success = 0,
    /// Command or feature not supported.
    NotSupported = -1,
    /// Invalid parameters (reserved bits set, bad flags or values).
    InvalidParameters = -2,
    /// The caller may not do this.
    Denied = -3,
    /// Resource or message id not found (or invisible to the caller).
    NotFound = -4,
    /// Value out of range.
    OutOfRange = -5,
    /// Too many pending operations.
    Busy = -6,
    /// Transport error.
    CommsError = -7,
    /// Anything else.
    GenericError = -8,
    /// Hardware fault.
    HardwareError = -9,
    /// Malformed message (payload too short).
    ProtocolError = -10,
    /// Resource in use by the platform.
    InUse = -11,
}

impl Status {
    /// The name the SCMI specification gives the status (§4.1.4).
    pub const fn name(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::NotSupported => "NOT_SUPPORTED",
            Status::InvalidParameters => "INVALID_PARAMETERS",
            Status::Denied => "DENIED",
            Status::NotFound => "NOT_FOUND",
            Status::OutOfRange => "OUT_OF_RANGE",
            Status::Busy => "BUSY",
            Status::CommsError => "COMMS_ERROR",
            Status::GenericError => "GENERIC_ERROR",
            Status::HardwareError => "HARDWARE_ERROR",
            Status::ProtocolError => "PROTOCOL_ERROR",
            Status::InUse => "IN_USE",
        }
    }
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl Status {
    /// The wire value.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The status for a wire value, if it is one.
    pub fn from_code(code: i32) -> Option<Self> {
        use Status::*;
        Some(match code {
            0 => Success,
            -1 => NotSupported,
            -2 => InvalidParameters,
            -3 => Denied,
            -4 => NotFound,
            -5 => OutOfRange,
            -6 => Busy,
            -7 => CommsError,
            -8 => GenericError,
            -9 => HardwareError,
            -10 => ProtocolError,
            -11 => InUse,
            _ => return None,
        })
    }
}

impl Header {
    /// The fields of a header word that cannot be served (reserved bits, not
    /// a command, a request too long), echoed as a command header (type 0,
    /// token kept) so the agent can match the error reply.
    pub(crate) fn echo(word: u32) -> Header {
        Header {
            msg_id: word as u8,
            msg_type: MsgType::Command,
            protocol: (word >> 10) as u8,
            token: ((word >> 18) & 0x3ff) as u16,
        }
    }
}
