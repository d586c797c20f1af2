//! A minimal virtio-scmi driver for split rings, written for this image:
//! just enough of what Linux does to bring the device up through its
//! [`DeviceCore`](virtio_backend::DeviceCore) and send one SCMI command at a
//! time. It reaches driver memory through the same [`GuestMemory`] window as
//! the device (the window *is* the memory both sides share).
//!
//! Layout of the window (driver addresses are offsets, `guest_base` 0):
//!
//! | offset   | what                                             |
//! |----------|--------------------------------------------------|
//! | `0x0000` | cmdq descriptor table ([`CMDQ_SIZE`] entries)     |
//! | `0x1000` | cmdq available ring                              |
//! | `0x2000` | cmdq used ring                                   |
//! | `0x3000` | eventq descriptor table ([`EVENTQ_SIZE`] entries) |
//! | `0x4000` | eventq available ring                            |
//! | `0x5000` | eventq used ring                                 |
//! | `0x8000` | the request buffer (4 + tx bytes, readable)      |
//! | `0x9000` | the reply buffer (8 + rx bytes, writable)        |
//! | `0xa000` | eventq buffers, [`EVENT_BUFFER`] bytes apart      |

use core::sync::atomic::{Ordering, fence};

use scmi_server::{Header, MAX_MESSAGE, MAX_PAYLOAD};
use virtio_backend::spec::{desc, features, status};
use virtio_backend::{ControlError, GuestMemory, Interrupts, MemoryError};
use virtio_scmi::{CMDQ, EVENTQ, F_P2A_CHANNELS};

use crate::Device;

/// Bytes of driver memory the window covers.
pub const WINDOW_LEN: usize = 64 * 1024;
/// Entries of the cmdq the driver configures (the device allows 128).
pub const CMDQ_SIZE: u16 = 16;
/// Entries of the eventq the driver configures (the device allows 64).
pub const EVENTQ_SIZE: u16 = 8;
/// Eventq buffers the driver keeps posted.
pub const EVENT_BUFFERS: u16 = 4;
/// Distance between eventq buffers; each offers [`MAX_MESSAGE`] bytes.
pub const EVENT_BUFFER: u64 = 0x100;
/// Most argument words a request of this image carries.
pub const MAX_ARGS: usize = 4;

const CMDQ_DESC: u64 = 0x0000;
const CMDQ_AVAIL: u64 = 0x1000;
const CMDQ_USED: u64 = 0x2000;
const EVENTQ_DESC: u64 = 0x3000;
const EVENTQ_AVAIL: u64 = 0x4000;
const EVENTQ_USED: u64 = 0x5000;
const RINGS_END: u64 = 0x6000;
const REQUEST: u64 = 0x8000;
const REPLY: u64 = 0x9000;
const EVENTS: u64 = 0xa000;

const _: () = assert!(EVENTS + EVENT_BUFFER * EVENT_BUFFERS as u64 <= WINDOW_LEN as u64);
const _: () = assert!(EVENT_BUFFERS <= EVENTQ_SIZE && MAX_MESSAGE as u64 <= EVENT_BUFFER);

/// The features this driver accepts: a non-legacy device with a P2A
/// channel (an eventq). No ring extras: descriptors are direct, no
/// `EVENT_IDX`, split rings.
pub const DRIVER_FEATURES: u64 = features::VERSION_1 | F_P2A_CHANNELS;

/// Why the driver gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The device refused a control-plane step.
    Control(&'static str, ControlError),
    /// The window refused an access (a layout bug of this driver).
    Memory(MemoryError),
    /// The device does not offer a feature the driver needs.
    FeaturesMissing(u64),
    /// The device did not complete the chain on the kick.
    NoReply,
    /// The device completed another chain than the one made available.
    WrongChain {
        /// Head the driver made available.
        expected: u16,
        /// Id the used ring returned.
        got: u32,
    },
    /// The device completed more than one chain for one kick.
    ExtraCompletions(u16),
}

impl core::fmt::Display for Fault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Fault::Control(step, e) => write!(f, "{step}: {e}"),
            Fault::Memory(e) => write!(f, "window access: {e}"),
            Fault::FeaturesMissing(bits) => write!(f, "features {bits:#x} not offered"),
            Fault::NoReply => f.write_str("the cmdq chain was not completed"),
            Fault::WrongChain { expected, got } => {
                write!(f, "used id {got}, expected head {expected}")
            }
            Fault::ExtraCompletions(n) => write!(f, "{n} chains completed for one kick"),
        }
    }
}

impl From<MemoryError> for Fault {
    fn from(e: MemoryError) -> Self {
        Fault::Memory(e)
    }
}

/// One SCMI command as the driver sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    /// Protocol id.
    pub protocol: u8,
    /// Message id.
    pub msg: u8,
    /// Argument words (at most [`MAX_ARGS`]).
    pub args: &'a [u32],
    /// Reply payload bytes offered after header and status (at most
    /// [`MAX_PAYLOAD`]).
    pub rx: u32,
}

/// What came back for one command.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    /// The header the driver sent (its token is the one to see echoed).
    pub sent: u32,
    /// Used length of the cmdq chain.
    pub used_len: u32,
    /// The reply bytes (the first `used_len`, at most [`MAX_MESSAGE`]).
    pub bytes: [u8; MAX_MESSAGE],
    /// Whether the core asked for a used-buffer notification of the cmdq.
    pub notified: bool,
    /// A message the device put on the eventq during the same kick.
    pub event: Option<Event>,
}

/// One eventq message (a delayed response or a notification).
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// Used length.
    pub len: u32,
    /// The message (the first `len` bytes).
    pub bytes: [u8; MAX_MESSAGE],
}

/// Word `i` of a little-endian message.
pub fn word(bytes: &[u8], i: usize) -> Option<u32> {
    let b = bytes.get(4 * i..4 * i + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The driver's view of one split ring.
#[derive(Debug)]
struct Ring {
    desc: u64,
    avail: u64,
    used: u64,
    size: u16,
    /// Next `avail.idx` to publish.
    avail_idx: u16,
    /// `used.idx` the driver has consumed up to.
    used_idx: u16,
}

impl Ring {
    const fn new(desc: u64, avail: u64, used: u64, size: u16) -> Self {
        Ring {
            desc,
            avail,
            used,
            size,
            avail_idx: 0,
            used_idx: 0,
        }
    }

    /// Writes descriptor `i` (virtio v1.2 §2.7.5).
    fn set_desc<M: GuestMemory>(
        &self,
        mem: &M,
        i: u16,
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    ) -> Result<(), MemoryError> {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..].copy_from_slice(&next.to_le_bytes());
        mem.write(self.desc + 16 * u64::from(i), &d)
    }

    /// Puts `head` in the available ring and publishes it (§2.7.13):
    /// ring entry first, a release fence, then the index.
    fn publish<M: GuestMemory>(&mut self, mem: &M, head: u16) -> Result<(), MemoryError> {
        let slot = u64::from(self.avail_idx % self.size);
        mem.write(self.avail + 4 + 2 * slot, &head.to_le_bytes())?;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        fence(Ordering::Release);
        mem.store_u16_release(self.avail + 2, self.avail_idx)
    }

    /// How many used entries the driver has not consumed yet.
    fn pending<M: GuestMemory>(&self, mem: &M) -> Result<u16, MemoryError> {
        Ok(mem
            .load_u16_acquire(self.used + 2)?
            .wrapping_sub(self.used_idx))
    }

    /// Consumes the next used element: (id, len).
    fn take_used<M: GuestMemory>(&mut self, mem: &M) -> Result<(u32, u32), MemoryError> {
        let slot = u64::from(self.used_idx % self.size);
        let mut e = [0u8; 8];
        mem.read(self.used + 4 + 8 * slot, &mut e)?;
        self.used_idx = self.used_idx.wrapping_add(1);
        Ok((
            u32::from_le_bytes([e[0], e[1], e[2], e[3]]),
            u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
        ))
    }
}

/// The driver: both rings and the next token.
#[derive(Debug)]
pub struct Driver {
    cmdq: Ring,
    eventq: Ring,
    token: u16,
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

impl Driver {
    /// A driver that has not touched the device yet.
    pub const fn new() -> Self {
        Driver {
            cmdq: Ring::new(CMDQ_DESC, CMDQ_AVAIL, CMDQ_USED, CMDQ_SIZE),
            eventq: Ring::new(EVENTQ_DESC, EVENTQ_AVAIL, EVENTQ_USED, EVENTQ_SIZE),
            token: 1,
        }
    }

    /// Resets the device and brings it up as virtio v1.2 §3.1.1 orders:
    /// ACKNOWLEDGE, DRIVER, features, FEATURES_OK, both queues, eventq
    /// buffers, DRIVER_OK.
    pub fn bring_up<M: GuestMemory>(&mut self, dev: &mut Device, mem: &M) -> Result<(), Fault> {
        let ctl = |step, r: Result<(), ControlError>| r.map_err(|e| Fault::Control(step, e));
        *self = Driver::new();
        ctl("reset", dev.set_status(0))?;
        // Rings start zeroed (flags 0: notifications wanted; indices 0).
        let zeros = [0u8; 256];
        let mut at = 0;
        while at < RINGS_END {
            mem.write(at, &zeros)?;
            at += zeros.len() as u64;
        }
        let mut s = status::ACKNOWLEDGE;
        ctl("ACKNOWLEDGE", dev.set_status(s))?;
        s |= status::DRIVER;
        ctl("DRIVER", dev.set_status(s))?;
        let offered = dev.device_features();
        if offered & DRIVER_FEATURES != DRIVER_FEATURES {
            return Err(Fault::FeaturesMissing(DRIVER_FEATURES & !offered));
        }
        ctl(
            "features 0-31",
            dev.set_driver_feature_block(0, DRIVER_FEATURES as u32),
        )?;
        ctl(
            "features 32-63",
            dev.set_driver_feature_block(1, (DRIVER_FEATURES >> 32) as u32),
        )?;
        s |= status::FEATURES_OK;
        ctl("FEATURES_OK", dev.set_status(s))?;
        for (index, q) in [(CMDQ, &self.cmdq), (EVENTQ, &self.eventq)] {
            ctl(
                "set_vqueue",
                dev.set_vqueue(mem, index, q.size, q.desc, q.avail, q.used),
            )?;
        }
        for i in 0..EVENT_BUFFERS {
            self.post_event_buffer(mem, i)?;
        }
        s |= status::DRIVER_OK;
        ctl("DRIVER_OK", dev.set_status(s))
    }

    /// Makes eventq descriptor `i` (one writable buffer) available.
    fn post_event_buffer<M: GuestMemory>(&mut self, mem: &M, i: u16) -> Result<(), MemoryError> {
        let addr = EVENTS + EVENT_BUFFER * u64::from(i);
        self.eventq
            .set_desc(mem, i, addr, MAX_MESSAGE as u32, desc::WRITE, 0)?;
        self.eventq.publish(mem, i)
    }

    /// One SCMI round trip: [`Driver::submit`], the kick
    /// ([`DeviceCore::queue_notify`](virtio_backend::DeviceCore::queue_notify)
    /// of the cmdq), [`Driver::complete`].
    pub fn round_trip<M: GuestMemory>(
        &mut self,
        dev: &mut Device,
        mem: &M,
        cmd: &Command<'_>,
    ) -> Result<Reply, Fault> {
        let pending = self.submit(mem, cmd)?;
        let irq = dev.queue_notify(mem, CMDQ);
        self.complete(mem, pending, irq)
    }

    /// Writes the command and a two-descriptor chain (readable 4 + tx
    /// bytes, writable 8 + rx bytes) and publishes it on the cmdq; the
    /// device sees it at the next kick.
    pub fn submit<M: GuestMemory>(&mut self, mem: &M, cmd: &Command<'_>) -> Result<Pending, Fault> {
        let header = Header::command(cmd.protocol, cmd.msg, self.token).encode();
        self.token = (self.token + 1) & 0x3ff;
        let nargs = cmd.args.len().min(MAX_ARGS);
        let mut request = [0u8; 4 + 4 * MAX_ARGS];
        request[..4].copy_from_slice(&header.to_le_bytes());
        for (i, a) in cmd.args[..nargs].iter().enumerate() {
            request[4 + 4 * i..8 + 4 * i].copy_from_slice(&a.to_le_bytes());
        }
        let tx = 4 + 4 * nargs;
        mem.write(REQUEST, &request[..tx])?;
        // One chain in flight: heads 0, 2, 4, ... in turn.
        let head = (self.cmdq.avail_idx % (CMDQ_SIZE / 2)) * 2;
        let rx = cmd.rx.min(MAX_PAYLOAD as u32);
        self.cmdq
            .set_desc(mem, head, REQUEST, tx as u32, desc::NEXT, head + 1)?;
        self.cmdq
            .set_desc(mem, head + 1, REPLY, 8 + rx, desc::WRITE, 0)?;
        self.cmdq.publish(mem, head)?;
        Ok(Pending { head, header })
    }

    /// After the kick: takes the cmdq's used element, reads the reply, and
    /// takes (and re-posts) an eventq buffer the device filled. `irq` is
    /// what the kick returned.
    pub fn complete<M: GuestMemory>(
        &mut self,
        mem: &M,
        pending: Pending,
        irq: Interrupts,
    ) -> Result<Reply, Fault> {
        let Pending { head, header } = pending;
        match self.cmdq.pending(mem)? {
            0 => return Err(Fault::NoReply),
            1 => {}
            n => return Err(Fault::ExtraCompletions(n)),
        }
        let (id, used_len) = self.cmdq.take_used(mem)?;
        if id != u32::from(head) {
            return Err(Fault::WrongChain {
                expected: head,
                got: id,
            });
        }
        let mut reply = Reply {
            sent: header,
            used_len,
            bytes: [0; MAX_MESSAGE],
            notified: irq.used & (1 << CMDQ) != 0,
            event: None,
        };
        let n = (used_len as usize).min(MAX_MESSAGE);
        mem.read(REPLY, &mut reply.bytes[..n])?;
        if self.eventq.pending(mem)? > 0 {
            let (id, len) = self.eventq.take_used(mem)?;
            let mut event = Event {
                len,
                bytes: [0; MAX_MESSAGE],
            };
            let buffer = (id % u32::from(EVENT_BUFFERS)) as u16;
            let n = (len as usize).min(MAX_MESSAGE);
            mem.read(
                EVENTS + EVENT_BUFFER * u64::from(buffer),
                &mut event.bytes[..n],
            )?;
            reply.event = Some(event);
            self.post_event_buffer(mem, buffer)?;
        }
        Ok(reply)
    }
}

/// A command made available on the cmdq, waiting for the kick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    head: u16,
    header: u32,
}
