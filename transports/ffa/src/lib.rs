//! The FF-A transport, device role: one virtio device served by a secure
//! partition over virtio-msg on the FF-A bus.
//!
//! # What it is for
//!
//! The SCMI back-end as an FF-A secure partition (SP) under an SPMC such
//! as Hafnium: a driver in the normal world sends virtio-msg frames to the
//! SP in `FFA_MSG_SEND_DIRECT_REQ2` (x4–x17, at most 104 bytes, addressed
//! to the virtio-msg device UUID) or in indirect messages
//! (`FFA_MSG_SEND2`); the SP answers in `FFA_MSG_SEND_DIRECT_RESP2` or with
//! an indirect message back. Bus messages go to the core's FF-A bus codec
//! ([`FfaBus`]); transport messages go to the device's control plane
//! through the core's service step. The driver's virtqueues and buffers lie
//! in memory it shares with `FFA_MEM_SHARE` and names in AREA_SHARE; the SP
//! retrieves it (`FFA_MEM_RETRIEVE_REQ`), maps it non-secure through the
//! [`Board`], and reaches it only through a [`RegionTable`] at bus
//! addresses `area_id << 48 | offset`. Events go back by FF-A notification,
//! by indirect message, or wait for EVENT_POLL.
//!
//! [`FfaDevice::boot`] is the start-up (FFA_VERSION, FFA_ID_GET,
//! FFA_RXTX_MAP); [`FfaDevice::run`] the `FFA_MSG_WAIT` loop. A failure at
//! boot ends with `FFA_ERROR` ([`abort`]), never a hang.
//!
//! # What it refuses to know about
//!
//! The conduit (an SMC, an HVC, a test double: the `C: smccc::Call` type
//! parameter), how memory is mapped and what time it is (the [`Board`]),
//! where the RX/TX buffers are (given as windows), and the device type
//! (any [`VirtioDevice`]). Every FF-A register layout and descriptor is
//! `arm-ffa`'s; this crate holds only the rules of the virtio-msg FF-A bus
//! and the order of the calls.
//!
//! Specifications: FF-A v1.2 (DEN0077A; "FF-A" below) and its memory
//! management chapters, the virtio-msg FF-A bus as Arm's Linux proof of
//! concept v2 implements it ("PoC"; see `virtio_backend::bus`).

#![no_std]
#![forbid(unsafe_code)]

pub mod boot;
mod events;
pub mod layout;
mod memory;

use core::marker::PhantomData;

use arm_ffa::interface_args::{
    DirectMsg2Args, MsgSend2Flags, MsgWaitFlags, RxTxAddr, SuccessArgs, VersionFlags,
    VersionQueryType,
};
use arm_ffa::notification::{NotificationGetFlags, NotificationSetFlags};
use arm_ffa::{FfaError, Interface, Version};
use smccc::Call;
use uuid::Uuid;
use virtio_backend::bus::{FFA_MAX_MSG_SIZE, FfaBus, FfaBusConfig, GetDevicesOrder, id};
use virtio_backend::msg::{HEADER_SIZE, Revision, TYPE_BUS};
use virtio_backend::service::{self, Bound, Mailbox, Wake};
use virtio_backend::{DeviceCore, FixedWindow, GuestMemory, RegionTable, VirtioDevice};

pub use events::Events;
pub use memory::{Board, MAX_RETRIEVE_RESPONSE};

/// The virtio-msg FF-A device UUID (DEN0153; PoC): the UUID the driver
/// addresses its DIRECT_REQ2 to, and the one the SP's manifest names.
pub const DEVICE_UUID: Uuid = Uuid::from_u128(0xc66028b5_2498_4aa1_9de7_77da6122abf0);

/// The FF-A version this SP speaks: 1.2, the first with DIRECT_REQ2 and
/// the 32-byte endpoint memory access descriptor (FF-A §13.2.1).
pub const FFA_VERSION: Version = Version(1, 2);

/// FF-A 1.2 partition message header size (FF-A §6.3, Table 6.2: flags,
/// reserved, offset, receiver, sender, size, reserved, UUID).
pub const MSG_HEADER_SIZE: usize = 40;

/// The FF-A page size, of RX/TX buffers and shares.
pub const PAGE: usize = 4096;

/// The device number of the one device on the bus.
pub const DEV_NUM: u16 = 0;

/// Framework notification bit 0: the SPM filled our RX buffer with an
/// indirect message (FF-A §10.3.2, "RX buffer full").
const FRAMEWORK_RX_FULL: u32 = 1;

/// The SP's RX and TX buffers (FF-A §4.5, one 4 KiB page each), as the
/// transport reaches them (volatile, bounds-checked: the SPMC writes RX
/// behind our back), and the addresses they were mapped at.
pub struct Buffers<'a> {
    /// The RX buffer, at offsets `0..PAGE`.
    pub rx: FixedWindow<'a>,
    /// The TX buffer, at offsets `0..PAGE`.
    pub tx: FixedWindow<'a>,
    /// Address of RX given to FFA_RXTX_MAP.
    pub rx_address: u64,
    /// Address of TX given to FFA_RXTX_MAP.
    pub tx_address: u64,
}

/// What the partition's manifest lets it do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `notification-support`: events may go by FF-A notification.
    pub notifications: bool,
    /// `messaging-method` bit 2: indirect messages (FFA_MSG_SEND2).
    pub indirect: bool,
}

/// A failed FF-A call: which, and what it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallError {
    /// The function id called.
    pub function: u32,
    /// The error code (FFA_ERROR's w2), or NOT_SUPPORTED for an answer
    /// that is neither the expected one nor FFA_ERROR.
    pub error: FfaError,
}

/// What the loop counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Direct requests answered.
    pub direct: u64,
    /// Indirect messages received.
    pub indirect: u64,
    /// Frames dropped: not for our UUID, from an endpoint other than the
    /// bound driver, malformed.
    pub dropped: u64,
    /// Events sent by notification or indirect message.
    pub signalled: u64,
    /// Calls that failed (an FFA_ERROR where success was due).
    pub call_errors: u64,
}

/// One virtio device as an FF-A secure partition: the device core, the
/// FF-A bus (at most `AREAS` shared areas) and the driver memory retrieved
/// so far (at most `R` mapped ranges, one per constituent).
pub struct FfaDevice<
    'a,
    C,
    D,
    B,
    const NQ: usize,
    const H: usize,
    const AREAS: usize,
    const R: usize,
> {
    /// The device (in a `static` on firmware: its state is most of the
    /// memory, and stays off the stack).
    core: &'a mut DeviceCore<D, NQ, H>,
    bus: FfaBus<AREAS>,
    mem: RegionTable<'a, R>,
    board: B,
    bufs: Buffers<'a>,
    opts: Options,
    /// Our endpoint id (FFA_ID_GET).
    id: u16,
    /// The endpoint that negotiated the bus; others are not served until
    /// it resets the bus.
    driver: Option<u16>,
    events: Events,
    /// The time the device was last brought to (ms).
    last_ms: Option<u64>,
    /// The constituents of the retrieved areas, as mapped.
    maps: [Option<memory::Mapping>; R],
    stats: Stats,
    conduit: PhantomData<C>,
}

/// Encodes `iface` into registers (FF-A 1.2), makes the call through `C`,
/// decodes the answer (an FFA_ERROR answer is returned as it is; only an
/// answer that does not decode is an `Err`). Shared by both roles.
pub fn call<C: Call>(iface: &Interface) -> Result<Interface, CallError> {
    let mut regs = [0u64; 18];
    iface.to_regs(FFA_VERSION, &mut regs);
    // SMCCC: w0 the function id, x1–x17 its arguments.
    let [w0, args @ ..] = regs;
    let function = w0 as u32;
    let out = C::call64(function, args);
    // FF-A §13.2.1: FFA_VERSION answers with the version itself in w0,
    // not a function id.
    if matches!(iface, Interface::Version { .. }) {
        return arm_ffa::VersionOut::try_from(out[0] as u32)
            .map(|output_version| Interface::VersionOut { output_version })
            .map_err(|_| CallError {
                function,
                error: FfaError::NotSupported,
            });
    }
    Interface::from_regs(FFA_VERSION, &out).map_err(|_| CallError {
        function,
        error: FfaError::NotSupported,
    })
}

/// Makes a call that must answer FFA_SUCCESS; returns its arguments.
fn call_ok<C: Call>(iface: &Interface) -> Result<SuccessArgs, CallError> {
    let function = iface.function_id().map_or(0, |f| f as u32);
    match call::<C>(iface)? {
        Interface::Success { args, .. } => Ok(args),
        Interface::Error { error_code, .. } => Err(CallError {
            function,
            error: error_code,
        }),
        _ => Err(CallError {
            function,
            error: FfaError::NotSupported,
        }),
    }
}

/// Ends the partition's boot: FFA_ERROR with `error` (FF-A §18.2: an SP
/// that cannot initialise reports it with FFA_ERROR from its boot
/// context, and the SPMC does not run it again). Never returns: should the
/// SPMC resume us anyway, we report again.
pub fn abort<C: Call>(error: FfaError) -> ! {
    let e = Interface::error(error, true);
    loop {
        let _ = call::<C>(&e);
    }
}

/// Writes `msg` to our console (FFA_CONSOLE_LOG, FF-A §13.5; the 64-bit
/// form carries up to 128 bytes per call). Failures are ignored. Out of
/// line: `arm-ffa`'s `LogChars::push` checks stay here, in one function
/// (partition/panic-allowlist.txt).
#[inline(never)]
pub fn console_log<C: Call>(msg: &[u8]) {
    use arm_ffa::interface_args::{ConsoleLogChars, LogChars};
    for chunk in msg.chunks(128) {
        let mut chars = LogChars::<[u64; 16]>::default();
        chars.push(chunk);
        let _ = call::<C>(&Interface::ConsoleLog {
            chars: ConsoleLogChars::Chars64(chars),
        });
    }
}

/// The bytes of a direct message's x4–x17 (FF-A §15.4: 14 registers).
const DIRECT_BYTES: usize = 14 * 8;

// A frame always fits a direct message's registers.
const _: () = assert!(FFA_MAX_MSG_SIZE <= DIRECT_BYTES);

/// The bytes of a direct message's x4–x17, little-endian (PoC: a frame
/// fills the registers from x4 up).
fn regs_to_bytes(args: &[u64; 14], out: &mut [u8; DIRECT_BYTES]) {
    for (o, r) in out.as_chunks_mut::<8>().0.iter_mut().zip(args) {
        *o = r.to_le_bytes();
    }
}

/// x4–x17 of a direct message carrying `bytes` (little-endian, zero after
/// them); `None` if they do not fit (never: a frame is at most
/// [`FFA_MAX_MSG_SIZE`] bytes).
fn bytes_to_regs(bytes: &[u8]) -> Option<[u64; 14]> {
    let mut padded = [0u8; DIRECT_BYTES];
    copy_exact(padded.get_mut(..bytes.len())?, bytes)?;
    let mut regs = [0u64; 14];
    for (r, w) in regs.iter_mut().zip(padded.as_chunks::<8>().0) {
        *r = u64::from_le_bytes(*w);
    }
    Some(regs)
}

/// Copies `src` into `dst`, which must be as long: `None`, and nothing
/// copied, if it is not. Unlike `copy_from_slice`, whose length check
/// stays in the image when it is not inlined (opt-level z), this has no
/// panic path.
fn copy_exact(dst: &mut [u8], src: &[u8]) -> Option<()> {
    (dst.len() == src.len()).then(|| {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    })
}

/// Writes `bytes` at offset `at` of `buf`; `None` if they do not fit.
fn put<const N: usize>(buf: &mut [u8], at: usize, bytes: [u8; N]) -> Option<()> {
    *buf.get_mut(at..)?.first_chunk_mut::<N>()? = bytes;
    Some(())
}

/// An indirect message from `sender` to `receiver` carrying `payload`,
/// written to `msg`: the bytes to send, or `None` if the payload does not
/// fit (more than [`FFA_MAX_MSG_SIZE`] bytes: refused, never cut).
fn indirect_message<'m>(
    msg: &'m mut [u8; MSG_HEADER_SIZE + FFA_MAX_MSG_SIZE],
    sender: u16,
    receiver: u16,
    payload: &[u8],
) -> Option<&'m [u8]> {
    let len = MSG_HEADER_SIZE.checked_add(payload.len())?;
    // FF-A §6.3, Table 6.2: flags and reserved (zero), the payload's
    // offset, the receiver and sender ids, the payload's size, reserved,
    // the UUID; the payload after the header.
    put(msg, 8, (MSG_HEADER_SIZE as u32).to_le_bytes())?;
    put(msg, 12, receiver.to_le_bytes())?;
    put(msg, 14, sender.to_le_bytes())?;
    put(msg, 16, u32::try_from(payload.len()).ok()?.to_le_bytes())?;
    put(msg, 24, *DEVICE_UUID.as_bytes())?;
    copy_exact(msg.get_mut(MSG_HEADER_SIZE..len)?, payload)?;
    msg.get(..len)
}

/// The mailbox of one frame: the step takes it, its answer is kept.
struct OneFrame<'f> {
    frame: Option<&'f [u8]>,
    answer: &'f mut [u8; FFA_MAX_MSG_SIZE],
    len: Option<usize>,
}

impl Mailbox for OneFrame<'_> {
    fn next(&mut self, buf: &mut [u8]) -> Option<(usize, usize)> {
        let f = self.frame.take()?;
        copy_exact(buf.get_mut(..f.len())?, f)?;
        Some((0, f.len()))
    }
    fn reply(&mut self, _device: usize, response: &[u8]) {
        // The step answers in at most `frame_size()` bytes; a longer
        // response (never) would go unanswered, not cut.
        self.len = self
            .answer
            .get_mut(..response.len())
            .and_then(|a| copy_exact(a, response))
            .map(|()| response.len());
    }
    fn frame_size(&self) -> usize {
        FFA_MAX_MSG_SIZE
    }
}

impl<'a, C, D, B, const NQ: usize, const H: usize, const AREAS: usize, const R: usize>
    FfaDevice<'a, C, D, B, NQ, H, AREAS, R>
where
    C: Call,
    D: VirtioDevice,
    B: Board<'a, R>,
{
    /// The partition, before [`boot`](Self::boot).
    pub fn new(
        core: &'a mut DeviceCore<D, NQ, H>,
        board: B,
        bufs: Buffers<'a>,
        opts: Options,
    ) -> Self {
        let mut features = virtio_backend::bus::feature::DIRECT_RX;
        if opts.indirect {
            features |= virtio_backend::bus::feature::INDIRECT_RX
                | virtio_backend::bus::feature::INDIRECT_TX;
        }
        if opts.notifications {
            features |= virtio_backend::bus::feature::NOTIF_TX;
        }
        FfaDevice {
            core,
            bus: FfaBus::new(FfaBusConfig {
                ffa_version: u32::from(FFA_VERSION),
                bus_features: features,
                devices_order: GetDevicesOrder::V2,
            }),
            mem: RegionTable::new(virtio_backend::Coherent),
            board,
            bufs,
            opts,
            id: 0,
            driver: None,
            events: Events::default(),
            last_ms: None,
            maps: [None; R],
            stats: Stats::default(),
            conduit: PhantomData,
        }
    }

    /// Boot (FF-A §18): FFA_VERSION (1.2 asked; an SPMC of major version 1
    /// and at least 1.2 answers), FFA_ID_GET, FFA_RXTX_MAP of our buffers.
    /// Returns our endpoint id.
    pub fn boot(&mut self) -> Result<u16, CallError> {
        let version = Interface::Version {
            input_version: FFA_VERSION,
            flags: VersionFlags {
                query_type: VersionQueryType::Negotiate,
            },
        };
        let fid = arm_ffa::FuncId::Version as u32;
        match call::<C>(&version)? {
            // FF-A §13.2.1: the answer is the SPMC's version; compatible
            // when the major matches and its minor is at least ours.
            Interface::VersionOut {
                output_version: arm_ffa::VersionOut::Version(v),
            } if FFA_VERSION.is_compatible_to(v) => {}
            _ => {
                return Err(CallError {
                    function: fid,
                    error: FfaError::NotSupported,
                });
            }
        }
        let args = call_ok::<C>(&Interface::IdGet)?;
        self.id = match args {
            SuccessArgs::Args32(a) => a[0] as u16,
            SuccessArgs::Args64(a) => a[0] as u16,
        };
        call_ok::<C>(&Interface::RxTxMap {
            addr: RxTxAddr::Addr64 {
                rx: self.bufs.rx_address,
                tx: self.bufs.tx_address,
            },
            page_cnt: 1,
        })?;
        Ok(self.id)
    }

    /// Our endpoint id (after [`boot`](Self::boot)).
    pub fn id(&self) -> u16 {
        self.id
    }

    /// What the loop counted.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The device core.
    pub fn core(&self) -> &DeviceCore<D, NQ, H> {
        self.core
    }

    /// The FFA_MSG_WAIT loop (FF-A §13.1): waits, serves what the SPMC
    /// delivered, answers (DIRECT_RESP2, which also waits), forever.
    pub fn run(&mut self) -> ! {
        self.run_with(|dev, next| dev.dispatch(next))
    }

    /// [`run`](Self::run) with `serve` in place of
    /// [`dispatch`](Self::dispatch) (which it calls): for an image that
    /// measures what serving costs.
    pub fn run_with(&mut self, mut serve: impl FnMut(&mut Self, Interface) -> Interface) -> ! {
        let wait = Interface::MsgWait {
            flags: MsgWaitFlags::default(),
            is_32bit: true,
        };
        let mut next = wait;
        loop {
            next = match call::<C>(&next) {
                Ok(got) => serve(self, got),
                Err(_) => {
                    self.stats.call_errors += 1;
                    wait
                }
            };
        }
    }

    /// Serves one thing the SPMC delivered; returns the call to make next
    /// (the answer to a direct request, or FFA_MSG_WAIT). Out of line: one
    /// call per message, and the device's whole share of a round trip, as
    /// the benchmarks count it.
    #[inline(never)]
    pub fn dispatch(&mut self, got: Interface) -> Interface {
        let wait = Interface::MsgWait {
            flags: MsgWaitFlags::default(),
            is_32bit: true,
        };
        match got {
            Interface::MsgSendDirectReq2 {
                src_id,
                dst_id,
                uuid,
                args,
            } => {
                self.stats.direct += 1;
                let mut bytes = [0u8; DIRECT_BYTES];
                regs_to_bytes(&args.0, &mut bytes);
                let mut answer = [0u8; FFA_MAX_MSG_SIZE];
                // FF-A §15.4: a request for a UUID we do not implement
                // (the nil UUID means the partition's default) is answered
                // empty, never left waiting.
                let reply = if uuid == DEVICE_UUID || uuid.is_nil() {
                    self.frame(src_id, &bytes, &mut answer)
                } else {
                    self.stats.dropped += 1;
                    None
                };
                let resp = reply.and_then(bytes_to_regs).unwrap_or_default();
                self.signal(src_id);
                // FF-A §15.4: the response goes back to the requester.
                Interface::MsgSendDirectResp2 {
                    src_id: dst_id,
                    dst_id: src_id,
                    args: DirectMsg2Args(resp),
                }
            }
            // An indirect message: the SPM set our RX-buffer-full framework
            // notification and ran us (FF-A §10.3.2, §15.3).
            Interface::Run { .. } | Interface::Interrupt { .. } | Interface::Success { .. } => {
                self.indirect();
                wait
            }
            _ => wait,
        }
    }

    /// Reads and serves the indirect message in RX, if the framework says
    /// one is there; answers with an indirect message to its sender.
    fn indirect(&mut self) {
        let get = Interface::NotificationGet {
            vcpu_id: 0,
            endpoint_id: self.id,
            flags: NotificationGetFlags {
                sp_bitmap_id: false,
                vm_bitmap_id: false,
                spm_bitmap_id: true,
                hyp_bitmap_id: true,
            },
        };
        let framework = match call_ok::<C>(&get) {
            // FF-A §13.10.4: w6 carries the SPM framework bitmap, w7 the
            // hypervisor's; an SPMC sets RX-full in the one of the sender's
            // side (Hafnium: w7 for a message from a VM).
            Ok(SuccessArgs::Args32(a)) => a[4] | a[5],
            _ => 0,
        };
        if framework & FRAMEWORK_RX_FULL == 0 || !self.opts.indirect {
            return;
        }
        let mut msg = [0u8; MSG_HEADER_SIZE + FFA_MAX_MSG_SIZE];
        let ok = self.bufs.rx.read(0, &mut msg).is_ok();
        // Our copy is taken: the buffer goes back at once (FF-A §13.3.2).
        self.release_rx();
        let word = |o: usize| u32::from_le_bytes([msg[o], msg[o + 1], msg[o + 2], msg[o + 3]]);
        let (offset, size) = (word(8) as usize, word(16) as usize);
        let (receiver, sender) = (word(12) as u16, (word(12) >> 16) as u16);
        // FF-A §6.3: the payload lies after the header, inside the buffer
        // (`get`: `None` past its end).
        let frame = offset
            .checked_add(size)
            .filter(|_| ok && offset >= MSG_HEADER_SIZE)
            .filter(|_| receiver == self.id && size <= FFA_MAX_MSG_SIZE)
            .and_then(|end| msg.get(offset..end));
        self.stats.indirect += 1;
        let Some(frame) = frame else {
            self.stats.dropped += 1;
            return;
        };
        let mut answer = [0u8; FFA_MAX_MSG_SIZE];
        if let Some(reply) = self.frame(sender, frame, &mut answer) {
            self.send_indirect(sender, reply);
        }
        self.signal(sender);
    }

    /// FFA_RX_RELEASE (FF-A §13.3.2): the VM id is 0 but for a
    /// hypervisor releasing a VM's buffer.
    fn release_rx(&mut self) {
        let _ = call::<C>(&Interface::RxRelease { vm_id: 0 });
    }

    /// Sends `frame` to `to` by FFA_MSG_SEND2 (FF-A §15.3): header and
    /// payload in our TX buffer. Whether it went (the driver's RX buffer
    /// may be busy; a frame longer than [`FFA_MAX_MSG_SIZE`], never sent
    /// here, is refused).
    fn send_indirect(&mut self, to: u16, frame: &[u8]) -> bool {
        let mut msg = [0u8; MSG_HEADER_SIZE + FFA_MAX_MSG_SIZE];
        let Some(bytes) = indirect_message(&mut msg, self.id, to, frame) else {
            return false;
        };
        if self.bufs.tx.write(0, bytes).is_err() {
            return false;
        }
        // FF-A §13.4.1: the sender VM id is a hypervisor's, forwarding
        // for a VM; a partition passes 0 (the header names the sender).
        let send = Interface::MsgSend2 {
            sender_vm_id: 0,
            flags: MsgSend2Flags::default(),
        };
        call_ok::<C>(&send).is_ok()
    }

    /// Serves one frame from endpoint `src`; the answer, if any: the front
    /// of `answer`.
    fn frame<'f>(
        &mut self,
        src: u16,
        frame: &[u8],
        answer: &'f mut [u8; FFA_MAX_MSG_SIZE],
    ) -> Option<&'f [u8]> {
        if self.driver.is_some_and(|d| d != src) {
            self.stats.dropped += 1;
            return None;
        }
        let now = self.board.now_ms();
        let bus_frame = frame.first().is_some_and(|t| t & TYPE_BUS != 0);
        if bus_frame {
            // Time passes first, so that EVENT_POLL sees what is due.
            if frame.get(1) == Some(&id::EVENT_POLL) {
                self.step(now, None);
            }
            let Self {
                bus,
                core,
                mem,
                board,
                bufs,
                events,
                maps,
                opts,
                id,
                ..
            } = self;
            let mut host = memory::Host::<C, D, B, NQ, H, R> {
                core,
                mem,
                board,
                bufs,
                events,
                maps,
                opts: *opts,
                id: *id,
                driver: src,
                conduit: PhantomData,
            };
            let h = bus.handle(frame, answer, &mut host);
            // The endpoint that completed VERSION is the driver until the
            // bus is reset (PoC: one driver per bus).
            self.driver = self.bus.is_negotiated().then_some(src);
            return self.answered(answer, h.response_len);
        }
        // PoC: before VERSION completes only bus VERSION and RESET are
        // served; transport messages are dropped.
        if !self.bus.is_negotiated() || frame.len() < HEADER_SIZE {
            self.stats.dropped += 1;
            return None;
        }
        let mut one = OneFrame {
            frame: Some(frame),
            answer: &mut *answer,
            len: None,
        };
        self.step(now, Some(&mut one));
        let len = one.len;
        self.answered(answer, len)
    }

    /// The first `len` bytes of `answer`, the answer to a frame; an answer
    /// said to be longer than the buffer (never) is dropped, not cut.
    fn answered<'f>(
        &mut self,
        answer: &'f [u8; FFA_MAX_MSG_SIZE],
        len: Option<usize>,
    ) -> Option<&'f [u8]> {
        let reply = answer.get(..len?);
        if reply.is_none() {
            self.stats.dropped += 1;
        }
        reply
    }

    /// One service step: time to `now`, the frame in `mailbox` if any, the
    /// device's own work; notifications become pending events.
    fn step(&mut self, now: u64, mailbox: Option<&mut OneFrame<'_>>) {
        // Time passes only when it moved: messages within one millisecond
        // do not make the platform catch up again.
        let now_ms = (self.last_ms != Some(now)).then_some(now);
        self.last_ms = Some(now);
        let mut bound =
            Bound::new(self.core, &self.mem, &mut self.events).on_bus(Revision::V2, DEV_NUM);
        service::step(
            &mut [&mut bound],
            Wake {
                now_ms,
                mailbox: mailbox.map(|m| m as &mut dyn Mailbox),
                kicks: &[],
            },
        );
    }

    /// Tells the driver about new events the way it configured: an FF-A
    /// notification, or the events themselves as indirect messages; with
    /// neither, they wait for EVENT_POLL.
    fn signal(&mut self, driver: u16) {
        if !self.events.take_fresh() {
            return;
        }
        match self.events.method() {
            Some(events::Method::Notif(bit)) => {
                // FF-A §13.10.3: sender = us, receiver = the driver, which
                // bound `bit` to us (global notification: no vCPU).
                let set = Interface::NotificationSet {
                    sender_id: self.id,
                    receiver_id: driver,
                    flags: NotificationSetFlags {
                        delay_schedule_receiver: false,
                        vcpu_id: None,
                    },
                    bitmap: 1 << bit,
                };
                match call_ok::<C>(&set) {
                    Ok(_) => self.stats.signalled += 1,
                    Err(_) => self.stats.call_errors += 1,
                }
            }
            Some(events::Method::Indirect) => {
                let mut f = [0u8; FFA_MAX_MSG_SIZE];
                // Bounded by the events pending; one left behind when the
                // driver's RX buffer is busy waits for EVENT_POLL.
                while let Some(n) = self.events.peek(&mut f) {
                    // An event longer than `f` (never: `peek` encodes into
                    // it) waits for EVENT_POLL like one not sent.
                    let Some(event) = f.get(..n) else {
                        break;
                    };
                    if !self.send_indirect(driver, event) {
                        break;
                    }
                    self.events.pop();
                    self.stats.signalled += 1;
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_message_bytes_round_trip_and_pad_with_zeros() {
        let regs: [u64; 14] = core::array::from_fn(|i| 0x0101_0101_0101_0101 * i as u64);
        let mut bytes = [0u8; DIRECT_BYTES];
        regs_to_bytes(&regs, &mut bytes);
        assert_eq!(bytes_to_regs(&bytes), Some(regs));
        // A short frame: its bytes from x4 up, zero after them.
        let r = bytes_to_regs(&[1, 2, 3, 4, 5, 6, 7, 8, 9]).expect("fits");
        assert_eq!(r[0], 0x0807_0605_0403_0201);
        assert_eq!(r[1], 9);
        assert!(r[2..].iter().all(|&x| x == 0));
        // More than the registers hold: refused, not cut.
        assert_eq!(bytes_to_regs(&[0; DIRECT_BYTES + 1]), None);
    }

    #[test]
    fn indirect_messages_carry_the_header_and_refuse_long_payloads() {
        let mut msg = [0u8; MSG_HEADER_SIZE + FFA_MAX_MSG_SIZE];
        let m = indirect_message(&mut msg, 0x8001, 0x0002, &[0xaa; 10]).expect("fits");
        assert_eq!(m.len(), MSG_HEADER_SIZE + 10);
        let word = |o: usize| u32::from_le_bytes([m[o], m[o + 1], m[o + 2], m[o + 3]]);
        assert_eq!(word(0), 0, "flags");
        assert_eq!(word(8) as usize, MSG_HEADER_SIZE, "payload offset");
        assert_eq!(word(12), 0x8001_0002, "sender and receiver");
        assert_eq!(word(16), 10, "payload size");
        assert_eq!(&m[24..40], DEVICE_UUID.as_bytes());
        assert!(m[MSG_HEADER_SIZE..].iter().all(|&b| b == 0xaa));
        let mut msg = [0u8; MSG_HEADER_SIZE + FFA_MAX_MSG_SIZE];
        assert!(indirect_message(&mut msg, 1, 2, &[0; FFA_MAX_MSG_SIZE]).is_some());
        assert_eq!(
            indirect_message(&mut msg, 1, 2, &[0; FFA_MAX_MSG_SIZE + 1]),
            None
        );
    }

    #[test]
    fn copies_need_equal_lengths() {
        let mut d = [0u8; 4];
        assert_eq!(copy_exact(&mut d, &[1, 2, 3]), None);
        assert_eq!(d, [0; 4], "nothing copied");
        assert_eq!(copy_exact(&mut d, &[1, 2, 3, 4]), Some(()));
        assert_eq!(d, [1, 2, 3, 4]);
        assert_eq!(put(&mut d, 2, [9, 9]), Some(()));
        assert_eq!(put(&mut d, 3, [9, 9]), None);
        assert_eq!(put(&mut d, 9, [9]), None);
        assert_eq!(d, [1, 2, 9, 9]);
    }
}
