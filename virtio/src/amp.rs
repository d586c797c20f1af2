//! virtio-msg over shared memory: the AMP layout (`vmamp_shmem`, 2026) that
//! Linux's virtio-msg AMP bus drives, both halves, and the device side of
//! that bus.
//!
//! One region of memory both sides reach holds a 64-byte layout header, a
//! queue head per side and an array of fixed-size elements per side; each
//! element carries one virtio-msg message. The device owns the layout and
//! initialises it ([`Channel::publish`]); the driver validates what it finds
//! ([`Channel::attach`]). Each side writes only its own queue head (magic,
//! status, its producer index `tail` into its own elements and its consumer
//! index `head` into the peer's) and its own elements; the other side only
//! reads them. Single producer, single consumer per direction, with 16-bit
//! acquire loads and release stores and nothing else: no read-modify-write
//! atomics, which the cores of an AMP system (the Cortex-R52 pair of an
//! MPS3 AN536, say) may not share.
//!
//! Everything goes through [`GuestMemory`] with addresses relative to the
//! window the region is in, so every access is range-checked, and cache
//! maintenance for a peer that is not coherent comes from the window's
//! [`CacheMaintenance`](crate::CacheMaintenance). The layout [`Channel::publish`] writes
//! puts the header, each queue head and each element array on cache lines
//! of their own (64 bytes), so cleaning one side's data never writes over
//! the other's.
//!
//! A peer that writes garbage (a bad magic, a state or index out of range,
//! a message whose size field lies) gets an error and a channel that stays
//! usable: the channel marks the peer dead ([`Link::PeerDead`]) and waits
//! for it to start over. Nothing here can loop without bound.
//!
//! The AMP bus ([`AmpBus`]) runs over a device-side channel: it answers the
//! bus messages (GET_DEVICES in the field order the bus speaks, PING),
//! hands transport messages to the [`service`] step as a [`Mailbox`],
//! sends EVENT_DEVICE, and turns the step's notifications into EVENT_USED
//! and EVENT_CONFIG messages before the doorbell ([`AmpNotifier`]).
//!
//! Sources: Linux `include/uapi/linux/virtio_msg_amp_shmem.h` and
//! `drivers/virtio/virtio_msg_amp{,_shmem}.{c,h}` (openamp-staging tree,
//! 2026); checks cite the layout field they protect.

use core::cell::RefCell;

use crate::bus::{self, BusEvent, BusRequest, BusResponse, EVENT_BIT, GetDevicesOrder};
use crate::memory::{GuestMemory, MemoryError};
use crate::msg::{self, EncodeError, HEADER_SIZE, Header, Revision, TYPE_BUS};
use crate::service::{Doorbell, Mailbox, Notification, Notifier};
use crate::wire::{Rd, Short, Wr};

/// Layout magic, written last by the device: "LO" (layout OK).
pub const LAYOUT_MAGIC: u16 = 0x4C4F;
/// Queue head magic: "QO" (queue OK).
pub const QUEUE_MAGIC: u16 = 0x514F;
/// Size of the layout header, and its `length` field.
pub const LAYOUT_SIZE: u64 = 64;
/// Layout version this module speaks.
pub const VERSION: u16 = 1;
/// Layout feature: notification words carry a mask word.
pub const FEAT_MASKED_NOTIF: u16 = 1;
/// Elements Linux reads whole: its receive copies 64 bytes, so elements
/// must be at least that large.
pub const MIN_ELEMENT: u16 = 64;
/// Cache line the layout [`Channel::publish`] writes aligns to.
const LINE: u64 = 64;

/// Queue head states (`status` bits [4:0]).
pub mod state {
    /// Set up, waiting for the peer.
    pub const INIT: u16 = 0;
    /// Indices zeroed, waiting for the peer to leave INIT.
    pub const READY: u16 = 1;
    /// Messages flow.
    pub const RUN: u16 = 2;
    /// The side stopped on purpose.
    pub const SHUTDOWN: u16 = 3;
    /// The side declared its peer dead and waits for it to start over.
    pub const PEER_DEAD: u16 = 4;
    /// The state bits.
    pub const MASK: u16 = 0x1f;
    /// Status flag: the side is being debugged (timeouts off).
    pub const DEBUGGABLE: u16 = 0x8000;
}

/// The layout header as it lies in memory (`struct vmamp_shmem_layout`),
/// little-endian, 64 bytes: the magic at offset 0.
#[derive(Debug, Default)]
struct LayoutHeader {
    magic: u16,
    length: u16,
    version: u16,
    features: u16,
    num_notif: u8,
    vq_notif_per_device: u8,
    elements: u16,
    element_size: u16,
    reserved: u16,
    dev_notif: u64,
    dev_qh: u64,
    dev_elems: u64,
    drv_notif: u64,
    drv_qh: u64,
    drv_elems: u64,
}

impl LayoutHeader {
    fn parse(h: &[u8]) -> Result<LayoutHeader, Short> {
        let mut r = Rd(h);
        Ok(LayoutHeader {
            magic: r.u16()?,
            length: r.u16()?,
            version: r.u16()?,
            features: r.u16()?,
            num_notif: r.u8()?,
            vq_notif_per_device: r.u8()?,
            elements: r.u16()?,
            element_size: r.u16()?,
            reserved: r.u16()?,
            dev_notif: r.u64()?,
            dev_qh: r.u64()?,
            dev_elems: r.u64()?,
            drv_notif: r.u64()?,
            drv_qh: r.u64()?,
            drv_elems: r.u64()?,
        })
    }

    fn write(&self, out: &mut [u8]) -> Result<(), EncodeError> {
        let mut w = Wr::new(out);
        for v in [self.magic, self.length, self.version, self.features] {
            w.u16(v)?;
        }
        w.u8(self.num_notif)?;
        w.u8(self.vq_notif_per_device)?;
        for v in [self.elements, self.element_size, self.reserved] {
            w.u16(v)?;
        }
        let offsets = [
            self.dev_notif,
            self.dev_qh,
            self.dev_elems,
            self.drv_notif,
            self.drv_qh,
            self.drv_elems,
        ];
        offsets.into_iter().try_for_each(|v| w.u64(v))
    }
}

// Queue head fields.
const Q_MAGIC: u64 = 0;
const Q_STATUS: u64 = 2;
const Q_TAIL: u64 = 4;
const Q_HEAD: u64 = 6;
const QH_SIZE: u64 = 8;

/// Why a layout or a channel operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelError {
    /// The device has not published the layout yet (magic not "LO"):
    /// retry later.
    NotPublished,
    /// The layout header is malformed: which field.
    Layout(&'static str),
    /// The region is too small for the layout.
    TooSmall {
        /// Bytes the layout needs.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The peer's queue head holds something no honest peer writes: the
    /// peer was marked dead.
    PeerCorrupt(&'static str),
    /// The link is not running: no message can be sent or received.
    NotRunning,
    /// The peer has not consumed enough: no free element.
    Full,
    /// The message is larger than an element.
    TooLarge {
        /// Bytes in the message.
        len: usize,
        /// Bytes per element.
        element_size: u16,
    },
    /// An element's message is malformed (its size field lies); it was
    /// consumed and dropped.
    Malformed,
    /// The region is not inside the memory the window reaches.
    Memory(MemoryError),
}

impl core::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ChannelError::NotPublished => f.write_str("the layout is not published yet"),
            ChannelError::Layout(what) => write!(f, "layout header: bad {what}"),
            ChannelError::TooSmall { needed, available } => {
                write!(
                    f,
                    "the layout needs {needed} bytes, the region has {available}"
                )
            }
            ChannelError::PeerCorrupt(what) => write!(f, "the peer's queue head: bad {what}"),
            ChannelError::NotRunning => f.write_str("the link is not running"),
            ChannelError::Full => f.write_str("no free element"),
            ChannelError::TooLarge { len, element_size } => {
                write!(
                    f,
                    "a {len}-byte message does not fit {element_size}-byte elements"
                )
            }
            ChannelError::Malformed => f.write_str("a malformed message was dropped"),
            ChannelError::Memory(e) => write!(f, "shared memory: {e}"),
        }
    }
}

impl From<MemoryError> for ChannelError {
    fn from(e: MemoryError) -> Self {
        ChannelError::Memory(e)
    }
}

/// The shape of the two queues: element count and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Elements per direction (at least 2: one stays free).
    pub elements: u16,
    /// Bytes per element (at least [`MIN_ELEMENT`], a multiple of 64).
    pub element_size: u16,
}

impl Geometry {
    /// The element shape every layout needs (`vmamp_shmem_init`): two
    /// elements at least (one always stays free), each at least
    /// [`MIN_ELEMENT`] bytes.
    fn check(&self) -> Result<(), ChannelError> {
        if self.elements < 2 {
            return Err(ChannelError::Layout("num_queue_elements"));
        }
        if self.element_size < MIN_ELEMENT {
            return Err(ChannelError::Layout("size_queue_elements"));
        }
        Ok(())
    }

    /// Bytes the layout [`Channel::publish`] writes needs: header, two
    /// queue heads and two element arrays, each on lines of its own.
    pub const fn region_size(&self) -> u64 {
        4 * LINE + 2 * self.elements as u64 * self.element_size as u64
    }
}

/// Where everything is, relative to the layout (as the header announces
/// it), and the queue shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Elements per direction.
    pub elements: u16,
    /// Bytes per element.
    pub element_size: u16,
    /// The device's queue head.
    pub dev_qh: u64,
    /// The driver's queue head.
    pub drv_qh: u64,
    /// The device-to-driver elements.
    pub dev_elems: u64,
    /// The driver-to-device elements.
    pub drv_elems: u64,
}

impl Layout {
    /// The layout [`Channel::publish`] writes for `g`: header, device
    /// queue head, driver queue head, then the two element arrays, each
    /// starting on a 64-byte line.
    pub const fn for_geometry(g: Geometry) -> Layout {
        let array = g.elements as u64 * g.element_size as u64;
        Layout {
            elements: g.elements,
            element_size: g.element_size,
            dev_qh: LINE,
            drv_qh: 2 * LINE,
            dev_elems: 4 * LINE,
            drv_elems: 4 * LINE + array,
        }
    }

    /// Reads and validates the header at `base` of a region of `len`
    /// bytes, as the Linux driver does (`vmamp_shmem_init`): magic (else
    /// [`ChannelError::NotPublished`]), length, version, features, reserved
    /// field, notification words, element shape, then every region: not at
    /// offset 0, aligned, inside the layout, and no two overlapping.
    pub fn read<M: GuestMemory>(mem: &M, base: u64, len: u64) -> Result<Layout, ChannelError> {
        if len < LAYOUT_SIZE {
            return Err(ChannelError::TooSmall {
                needed: LAYOUT_SIZE,
                available: len,
            });
        }
        // The magic is read with acquire: the fields it publishes come
        // after it.
        if mem.load_u16_acquire(base)? != LAYOUT_MAGIC {
            return Err(ChannelError::NotPublished);
        }
        let mut bytes = [0u8; LAYOUT_SIZE as usize];
        mem.read(base, &mut bytes)?;
        let h = LayoutHeader::parse(&bytes).map_err(|_| ChannelError::Layout("length"))?;
        if u64::from(h.length) != LAYOUT_SIZE {
            return Err(ChannelError::Layout("length"));
        }
        if h.version != VERSION {
            return Err(ChannelError::Layout("version"));
        }
        if h.features & !FEAT_MASKED_NOTIF != 0 {
            return Err(ChannelError::Layout("features"));
        }
        if h.reserved != 0 {
            return Err(ChannelError::Layout("reserved"));
        }
        // Notification words are not used by this module; a layout that
        // announces them is refused rather than half-served.
        if h.num_notif != 0 {
            return Err(ChannelError::Layout(
                "num_notif (notification words are not supported)",
            ));
        }
        Geometry {
            elements: h.elements,
            element_size: h.element_size,
        }
        .check()?;
        let l = Layout {
            elements: h.elements,
            element_size: h.element_size,
            dev_qh: h.dev_qh,
            drv_qh: h.drv_qh,
            dev_elems: h.dev_elems,
            drv_elems: h.drv_elems,
        };
        let array = u64::from(l.elements) * u64::from(l.element_size);
        let regions = [
            (0, LAYOUT_SIZE, 1, "layout"),
            (l.dev_qh, QH_SIZE, 2, "dev_queue_head_offset"),
            (l.drv_qh, QH_SIZE, 2, "drv_queue_head_offset"),
            (l.dev_elems, array, 1, "dev_queue_elements_offset"),
            (l.drv_elems, array, 1, "drv_queue_elements_offset"),
        ];
        for (i, &(at, size, align, what)) in regions.iter().enumerate() {
            let end = at.checked_add(size).ok_or(ChannelError::Layout(what))?;
            if (i > 0 && at == 0) || at % align != 0 || end > len {
                return Err(ChannelError::Layout(what));
            }
            for &(other, osize, _, _) in &regions[..i] {
                if at < other + osize && other < end {
                    return Err(ChannelError::Layout(what));
                }
            }
        }
        Ok(l)
    }
}

/// Which half of the channel this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The device: owns the layout, sends on the device queue.
    Device,
    /// The driver: validates the layout, sends on the driver queue.
    Driver,
}

/// Where the handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Our queue head is up (INIT); waiting for the peer's.
    WaitPeer,
    /// Indices zeroed (READY); waiting for the peer to leave INIT.
    Ready,
    /// Messages flow (RUN).
    Run,
    /// The peer wrote something no honest peer writes; we show PEER_DEAD
    /// and wait for it to start over (its queue head back in INIT or
    /// READY).
    PeerDead,
    /// We stopped (SHUTDOWN).
    Shutdown,
}

/// What [`Channel::poll_link`] saw happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEvent {
    /// Nothing changed.
    None,
    /// The link came up: messages may flow.
    Up,
    /// The peer went away (it shut down, declared us dead, started over,
    /// or wrote garbage): whatever it had set up is gone, and the devices
    /// should be reset. The handshake starts again.
    PeerLost,
}

/// One half of the channel.
#[derive(Debug)]
pub struct Channel {
    base: u64,
    layout: Layout,
    role: Role,
    link: Link,
    /// Our producer index (mirrors our queue head's `tail`).
    tail: u16,
    /// Our consumer index (mirrors our queue head's `head`).
    head: u16,
    /// A send or receive found the peer corrupt and marked it dead; the
    /// next [`Channel::poll_link`] reports the loss.
    lost: bool,
}

impl Channel {
    /// Device: writes the layout for `geometry` at `base` (a region of
    /// `len` bytes), then its queue head (INIT, magic "QO"), then the
    /// layout magic "LO" last, with release ordering, so a driver that sees
    /// the magic sees everything before it.
    pub fn publish<M: GuestMemory>(
        mem: &M,
        base: u64,
        len: u64,
        geometry: Geometry,
    ) -> Result<Channel, ChannelError> {
        geometry.check()?;
        // Our own layout keeps elements on whole cache lines.
        if !geometry.element_size.is_multiple_of(64) {
            return Err(ChannelError::Layout("size_queue_elements"));
        }
        let needed = geometry.region_size();
        if len < needed {
            return Err(ChannelError::TooSmall {
                needed,
                available: len,
            });
        }
        mem.check_range(base, needed, LINE)?;
        let l = Layout::for_geometry(geometry);
        // Unpublish first (a restarted device over an old layout).
        mem.store_u16_release(base, 0)?;
        let mut h = [0u8; LAYOUT_SIZE as usize];
        // The magic stays 0 in this write; it is stored last.
        LayoutHeader {
            length: LAYOUT_SIZE as u16,
            version: VERSION,
            elements: l.elements,
            element_size: l.element_size,
            dev_qh: l.dev_qh,
            dev_elems: l.dev_elems,
            drv_qh: l.drv_qh,
            drv_elems: l.drv_elems,
            ..LayoutHeader::default()
        }
        .write(&mut h)
        .map_err(|_| ChannelError::Layout("length"))?;
        mem.write(base + 2, &h[2..])?;
        let mut c = Channel {
            base,
            layout: l,
            role: Role::Device,
            link: Link::WaitPeer,
            tail: 0,
            head: 0,
            lost: false,
        };
        c.start(mem)?;
        mem.store_u16_release(base, LAYOUT_MAGIC)?;
        Ok(c)
    }

    /// Driver: validates the layout the device published at `base`
    /// ([`Layout::read`]; [`ChannelError::NotPublished`] until it has),
    /// then puts up its own queue head (INIT, magic "QO").
    pub fn attach<M: GuestMemory>(mem: &M, base: u64, len: u64) -> Result<Channel, ChannelError> {
        let layout = Layout::read(mem, base, len)?;
        mem.check_range(base, len, 1)?;
        let mut c = Channel {
            base,
            layout,
            role: Role::Driver,
            link: Link::WaitPeer,
            tail: 0,
            head: 0,
            lost: false,
        };
        c.start(mem)?;
        Ok(c)
    }

    /// The layout in use.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Where the handshake stands.
    pub fn link(&self) -> Link {
        self.link
    }

    /// (our queue head, the peer's, our elements, the peer's), absolute.
    fn ends(&self) -> (u64, u64, u64, u64) {
        let l = &self.layout;
        let b = self.base;
        match self.role {
            Role::Device => (b + l.dev_qh, b + l.drv_qh, b + l.dev_elems, b + l.drv_elems),
            Role::Driver => (b + l.drv_qh, b + l.dev_qh, b + l.drv_elems, b + l.dev_elems),
        }
    }

    /// Our queue head: INIT with zeroed indices, then the magic.
    fn start<M: GuestMemory>(&mut self, mem: &M) -> Result<(), ChannelError> {
        let (mine, ..) = self.ends();
        mem.store_u16_release(mine + Q_STATUS, state::INIT)?;
        self.zero(mem)?;
        mem.store_u16_release(mine + Q_MAGIC, QUEUE_MAGIC)?;
        self.link = Link::WaitPeer;
        Ok(())
    }

    fn zero<M: GuestMemory>(&mut self, mem: &M) -> Result<(), ChannelError> {
        let (mine, ..) = self.ends();
        self.tail = 0;
        self.head = 0;
        mem.store_u16_release(mine + Q_TAIL, 0)?;
        mem.store_u16_release(mine + Q_HEAD, 0)?;
        Ok(())
    }

    fn set_state<M: GuestMemory>(&mut self, mem: &M, s: u16) -> Result<(), ChannelError> {
        let (mine, ..) = self.ends();
        mem.store_u16_release(mine + Q_STATUS, s)?;
        Ok(())
    }

    /// The peer's queue head state, or why it is not one.
    fn peer_state<M: GuestMemory>(&self, mem: &M) -> Result<Option<u16>, ChannelError> {
        let (_, peer, ..) = self.ends();
        if mem.load_u16_acquire(peer + Q_MAGIC)? != QUEUE_MAGIC {
            return Ok(None);
        }
        let s = mem.load_u16_acquire(peer + Q_STATUS)? & state::MASK;
        Ok(Some(s))
    }

    /// Moves the handshake on as far as the peer allows, without waiting
    /// (call it whenever the peer may have acted: on its doorbell, on a
    /// timer). Follows the Linux driver's sequence for both halves: wait
    /// for the peer's queue head, zero our indices and say READY, wait
    /// for the peer to leave INIT, say RUN. A peer still in RUN when we
    /// start is left over from an earlier session and must start over
    /// first (its indices are not ours). While running, a peer that shuts
    /// down, starts over or declares us dead is lost: our indices go back
    /// to zero and the handshake starts again; a peer whose queue head is
    /// garbage (seen here, or by a send or receive) is marked dead and
    /// lost.
    pub fn poll_link<M: GuestMemory>(&mut self, mem: &M) -> Result<LinkEvent, ChannelError> {
        if core::mem::take(&mut self.lost) {
            return Ok(LinkEvent::PeerLost);
        }
        let peer = self.peer_state(mem)?;
        match (self.link, peer) {
            (Link::Shutdown, _) => Ok(LinkEvent::None),
            (Link::WaitPeer, Some(s)) if s <= state::READY => {
                self.zero(mem)?;
                self.set_state(mem, state::READY)?;
                self.link = Link::Ready;
                self.poll_link(mem)
            }
            (Link::WaitPeer, _) => Ok(LinkEvent::None),
            (Link::Ready, Some(state::INIT)) => Ok(LinkEvent::None),
            (Link::Ready, Some(state::READY | state::RUN)) => {
                self.set_state(mem, state::RUN)?;
                self.link = Link::Run;
                Ok(LinkEvent::Up)
            }
            (Link::Ready, _) => {
                // The peer left during the handshake.
                self.start(mem)?;
                Ok(LinkEvent::None)
            }
            (Link::Run, Some(state::READY | state::RUN)) => Ok(LinkEvent::None),
            (Link::Run, Some(s)) if s <= state::PEER_DEAD => {
                // INIT: started over; SHUTDOWN: stopped; PEER_DEAD: it
                // gave up on us and waits for us to start over.
                self.start(mem)?;
                Ok(LinkEvent::PeerLost)
            }
            (Link::Run, _) => {
                self.mark_dead(mem)?;
                Ok(LinkEvent::PeerLost)
            }
            (Link::PeerDead, Some(s)) if s <= state::READY => {
                self.start(mem)?;
                self.poll_link(mem)
            }
            (Link::PeerDead, _) => Ok(LinkEvent::None),
        }
    }

    /// The peer is not to be trusted any more: PEER_DEAD until it starts
    /// over.
    fn mark_dead<M: GuestMemory>(&mut self, mem: &M) -> Result<(), ChannelError> {
        self.zero(mem)?;
        self.set_state(mem, state::PEER_DEAD)?;
        self.link = Link::PeerDead;
        Ok(())
    }

    /// Reports a corrupt peer: it is marked dead, and lost at the next
    /// [`Channel::poll_link`].
    fn corrupt<M: GuestMemory>(&mut self, mem: &M, what: &'static str) -> ChannelError {
        self.lost = true;
        match self.mark_dead(mem) {
            Ok(()) => ChannelError::PeerCorrupt(what),
            Err(e) => e,
        }
    }

    fn next(&self, i: u16) -> u16 {
        if i + 1 >= self.layout.elements {
            0
        } else {
            i + 1
        }
    }

    /// A peer index, checked: indices are always below the element count.
    fn peer_index<M: GuestMemory>(&mut self, mem: &M, field: u64) -> Result<u16, ChannelError> {
        let (_, peer, ..) = self.ends();
        let i = mem.load_u16_acquire(peer + field)?;
        if i >= self.layout.elements {
            return Err(self.corrupt(mem, if field == Q_TAIL { "tail" } else { "head" }));
        }
        Ok(i)
    }

    /// Free elements we may still send into, without judging the peer:
    /// `None` when the link is not running or the peer's `head` is out of
    /// range.
    pub fn room<M: GuestMemory>(&self, mem: &M) -> Option<u16> {
        if self.link != Link::Run {
            return None;
        }
        let (_, peer, ..) = self.ends();
        let head = mem.load_u16_acquire(peer + Q_HEAD).ok()?;
        (head < self.layout.elements).then(|| self.space(head))
    }

    /// Free elements when the peer's `head` (checked) is `peer_head`: one
    /// always stays unused (full when next(tail) == head). In 32 bits: up
    /// to 65535 elements.
    fn space(&self, peer_head: u16) -> u16 {
        let (h, t, n) = (
            u32::from(peer_head),
            u32::from(self.tail),
            u32::from(self.layout.elements),
        );
        // h, t < n, so h + n - t - 1 does not wrap. A layout has at least
        // two elements (`num_queue_elements`, checked by Geometry::check);
        // were it ever zero there would be no room rather than a panic.
        (h + n)
            .wrapping_sub(t + 1)
            .checked_rem(n)
            .and_then(|v| u16::try_from(v).ok())
            .unwrap_or(0)
    }

    /// Free elements we may still send into.
    pub fn free<M: GuestMemory>(&mut self, mem: &M) -> Result<u16, ChannelError> {
        if self.link != Link::Run {
            return Err(ChannelError::NotRunning);
        }
        let peer_head = self.peer_index(mem, Q_HEAD)?;
        Ok(self.space(peer_head))
    }

    /// Sends one message: copies it into our next element (zeroed up to
    /// [`MIN_ELEMENT`], the bytes Linux copies whatever the size), then
    /// publishes it by storing our `tail` with release ordering. [`ChannelError::Full`] when the peer has not
    /// consumed enough.
    pub fn send<M: GuestMemory>(&mut self, mem: &M, msg: &[u8]) -> Result<(), ChannelError> {
        let size = self.layout.element_size;
        if msg.len() > usize::from(size) {
            return Err(ChannelError::TooLarge {
                len: msg.len(),
                element_size: size,
            });
        }
        if self.free(mem)? == 0 {
            return Err(ChannelError::Full);
        }
        let (mine, _, elems, _) = self.ends();
        let at = elems + u64::from(self.tail) * u64::from(size);
        mem.write(at, msg)?;
        let pad = [0u8; MIN_ELEMENT as usize];
        if let Some(rest) = pad.get(msg.len()..) {
            mem.write(at + msg.len() as u64, rest)?;
        }
        self.tail = self.next(self.tail);
        mem.store_u16_release(mine + Q_TAIL, self.tail)?;
        Ok(())
    }

    /// Receives one message into `buf` (at least as large as an element's
    /// message can be): `Ok(None)` when the peer has sent nothing new. A
    /// message whose header is not a virtio-msg header, or whose size
    /// field lies about the element, is consumed and reported as
    /// [`ChannelError::Malformed`]; the channel goes on.
    pub fn recv<M: GuestMemory>(
        &mut self,
        mem: &M,
        buf: &mut [u8],
    ) -> Result<Option<usize>, ChannelError> {
        let got = self.peek(mem, buf)?;
        if got.is_some() {
            self.consume(mem)?;
        }
        Ok(got)
    }

    /// Whether the service step has something to do: a message from the
    /// peer waits, or the link is not running (the handshake moves on
    /// only when polled). Reads one index; for the check made with
    /// interrupts masked before a device sleeps (`WFI`).
    pub fn pending<M: GuestMemory>(&self, mem: &M) -> bool {
        if self.link != Link::Run {
            return true;
        }
        // Without judging the peer: an index out of range is work too
        // (the step's receive finds it corrupt).
        let (_, peer, ..) = self.ends();
        mem.load_u16_acquire(peer + Q_TAIL)
            .ok()
            .is_none_or(|t| t != self.head)
    }

    /// Copies the next message into `buf` without consuming it
    /// ([`Channel::consume`] does); otherwise as [`Channel::recv`] (a
    /// malformed message is consumed at once).
    pub fn peek<M: GuestMemory>(
        &mut self,
        mem: &M,
        buf: &mut [u8],
    ) -> Result<Option<usize>, ChannelError> {
        if self.link != Link::Run {
            return Err(ChannelError::NotRunning);
        }
        let peer_tail = self.peer_index(mem, Q_TAIL)?;
        if peer_tail == self.head {
            return Ok(None);
        }
        let (_, _, _, elems) = self.ends();
        let size = self.layout.element_size;
        let at = elems + u64::from(self.head) * u64::from(size);
        // The header first, for `msg_size`; then the rest of the message
        // after it.
        if let Some(hdr) = buf.get_mut(..HEADER_SIZE) {
            mem.read(at, hdr)?;
            let len = usize::from(u16::from_le_bytes([hdr[6], hdr[7]]));
            if (HEADER_SIZE..=usize::from(size)).contains(&len)
                && let Some(rest) = buf.get_mut(HEADER_SIZE..len)
            {
                mem.read(at + HEADER_SIZE as u64, rest)?;
                return Ok(Some(len));
            }
        }
        self.consume(mem)?;
        Err(ChannelError::Malformed)
    }

    /// Consumes the message [`Channel::peek`] saw: stores our `head` past
    /// it with release ordering, giving the element back to the peer.
    pub fn consume<M: GuestMemory>(&mut self, mem: &M) -> Result<(), ChannelError> {
        if self.link != Link::Run {
            return Err(ChannelError::NotRunning);
        }
        if self.peer_index(mem, Q_TAIL)? == self.head {
            return Ok(());
        }
        let (mine, ..) = self.ends();
        self.head = self.next(self.head);
        mem.store_u16_release(mine + Q_HEAD, self.head)?;
        Ok(())
    }

    /// Stops: our queue head says SHUTDOWN; the peer sees us gone.
    pub fn shutdown<M: GuestMemory>(&mut self, mem: &M) -> Result<(), ChannelError> {
        self.set_state(mem, state::SHUTDOWN)?;
        self.link = Link::Shutdown;
        Ok(())
    }

    /// Starts over after [`Channel::shutdown`]: INIT, indices zero.
    pub fn restart<M: GuestMemory>(&mut self, mem: &M) -> Result<(), ChannelError> {
        self.start(mem)
    }
}

/// The device side of the virtio-msg AMP bus over a [`Channel`], with `N`
/// devices (at most [`MAX_AMP_DEVICES`]): device numbers `0..N` are the
/// devices a [`service`] step serves, in the same order.
///
/// [`service`]: crate::service
#[derive(Debug)]
pub struct AmpBus<const N: usize = 1> {
    channel: Channel,
    rev: Revision,
    order: GetDevicesOrder,
    /// Notifications the channel had no room for, per device (bit `n`:
    /// EVENT_USED of queue `n`; the config event is kept apart), sent first
    /// at the next step.
    owed_used: [u64; N],
    owed_config: [Option<(u8, u32)>; N],
    /// Bus messages answered, and frames dropped.
    stats: AmpStats,
}

/// Most devices an [`AmpBus`] serves (the Linux AMP bus takes 32).
pub const MAX_AMP_DEVICES: usize = 32;

/// What an [`AmpBus`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AmpStats {
    /// Bus messages answered (GET_DEVICES, PING).
    pub bus_messages: u64,
    /// Frames dropped: malformed, for no device, unknown bus messages,
    /// responses and events from the driver.
    pub dropped: u64,
    /// Notifications that found no room in the channel and waited (each
    /// counted once, however long it waited).
    pub events_delayed: u64,
    /// Times the driver went away (the devices were reset).
    pub peer_lost: u64,
}

/// What [`AmpBus::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusState {
    /// The link is not up: nothing to serve.
    Down,
    /// The link is up; messages may be waiting.
    Up,
    /// The driver went away: reset the devices, then poll again.
    PeerLost,
}

impl<const N: usize> AmpBus<N> {
    const FITS: () = assert!(N <= MAX_AMP_DEVICES, "the AMP bus has 32 device numbers");

    /// The bus over a device-side `channel`, speaking `rev` and answering
    /// GET_DEVICES in `order` (the Linux AMP bus: RFC3 and RFC3).
    pub const fn new(channel: Channel, rev: Revision, order: GetDevicesOrder) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::FITS;
        AmpBus {
            channel,
            rev,
            order,
            owed_used: [0; N],
            owed_config: [None; N],
            stats: AmpStats {
                bus_messages: 0,
                dropped: 0,
                events_delayed: 0,
                peer_lost: 0,
            },
        }
    }

    const DEVICES: u16 = N as u16;

    /// GET_DEVICES bitmap: device numbers `0..N` are present.
    const PRESENT: [u8; MAX_AMP_DEVICES / 8] = {
        let mut p = [0u8; MAX_AMP_DEVICES / 8];
        let mut d = 0;
        while d < N {
            p[d / 8] |= 1 << (d % 8);
            d += 1;
        }
        p
    };

    /// The channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// What the bus did.
    pub fn stats(&self) -> AmpStats {
        self.stats
    }

    /// The revision the bus speaks.
    pub fn revision(&self) -> Revision {
        self.rev
    }

    /// Moves the handshake on and sends the events still owed (until the
    /// channel is full again), then rings `doorbell` if it sent any. A
    /// driver that went away forfeits what was owed.
    pub fn poll<M: GuestMemory, B: Doorbell>(&mut self, mem: &M, mut doorbell: B) -> BusState {
        match self.channel.poll_link(mem) {
            Ok(LinkEvent::PeerLost) => {
                self.owed_used = [0; N];
                self.owed_config = [None; N];
                self.stats.peer_lost += 1;
                return BusState::PeerLost;
            }
            Ok(_) => {}
            Err(_) => return BusState::Down,
        }
        if self.channel.link() != Link::Run {
            return BusState::Down;
        }
        let mut sent = false;
        'flush: for dev in 0..N {
            let config = self.owed_config[dev].map(|(status, generation)| Notification::Config {
                needs_reset: false,
                status,
                generation,
            });
            let mut used = self.owed_used[dev];
            let queues = core::iter::from_fn(|| {
                let q = u16::try_from(used.trailing_zeros())
                    .ok()
                    .filter(|&q| q < 64)?;
                used &= used - 1;
                Some(Notification::Used(q))
            });
            for n in config.into_iter().chain(queues) {
                if !self.event(mem, dev as u16, n, true) {
                    break 'flush;
                }
                sent = true;
            }
        }
        if sent {
            doorbell.barrier();
            doorbell.ring();
        }
        BusState::Up
    }

    /// Sends EVENT_DEVICE for `dev_num` (`bus::device_state::READY` or
    /// `REMOVED`), as for a device added or removed while the link runs.
    pub fn announce<M: GuestMemory>(
        &mut self,
        mem: &M,
        dev_num: u16,
        state: u16,
    ) -> Result<(), ChannelError> {
        let mut f = [0u8; 16];
        let n = BusEvent::Device { dev_num, state }
            .encode(0, 0, &mut f)
            .map_err(|_| ChannelError::Malformed)?;
        let frame = f.get(..n).ok_or(ChannelError::Malformed)?;
        self.channel.send(mem, frame)
    }

    /// Sends one device-to-driver event, or owes it when there is no room
    /// (`retry`: it was owed already, and is not counted again); returns
    /// whether it was sent. A sent event settles what was owed for the
    /// same queue or the device's configuration: the driver sees the
    /// newest.
    fn event<M: GuestMemory>(&mut self, mem: &M, dev: u16, n: Notification, retry: bool) -> bool {
        let mut f = [0u8; 32];
        let sent = msg::event(n)
            .encode(self.rev, dev, 0, &mut f)
            .map_err(|_| ChannelError::Malformed)
            .and_then(|len| f.get(..len).ok_or(ChannelError::Malformed))
            .and_then(|frame| self.channel.send(mem, frame))
            .is_ok();
        let d = usize::from(dev);
        if d >= N {
            return sent;
        }
        self.stats.events_delayed += u64::from(!sent && !retry);
        match n {
            Notification::Used(q) if q < 64 => {
                let bit = 1u64 << q;
                self.owed_used[d] = if sent {
                    self.owed_used[d] & !bit
                } else {
                    self.owed_used[d] | bit
                };
            }
            Notification::Used(_) => {}
            Notification::Config {
                status, generation, ..
            } => self.owed_config[d] = (!sent).then_some((status, generation)),
        }
        sent
    }

    /// Answers one bus message; drops what is not a request.
    fn bus_message<M: GuestMemory>(&mut self, mem: &M, frame: &[u8]) {
        let Ok((h, req)) = BusRequest::decode(frame) else {
            self.stats.dropped += 1;
            return;
        };
        let mut bits = [0u8; MAX_AMP_DEVICES / 8];
        let room = usize::from(self.channel.layout.element_size);
        let reply = match req {
            BusRequest::GetDevices { offset, count } => BusResponse::Devices(bus::device_list(
                self.order,
                offset,
                count,
                room,
                &Self::PRESENT,
                &mut bits,
            )),
            BusRequest::Ping { data } => BusResponse::Ping { data },
            // The FF-A bus's messages do not exist on the AMP bus.
            _ => {
                self.stats.dropped += 1;
                return;
            }
        };
        let mut out = [0u8; 64];
        if let Ok(n) = reply.encode(0, h.token, &mut out) {
            self.stats.bus_messages += 1;
            // No room: the driver, which waits for this answer, has not
            // drained the queue; it times out and asks again.
            if let Some(msg) = out.get(..n) {
                let _ = self.channel.send(mem, msg);
            }
        }
    }

    /// The bus as the step's [`Mailbox`] over `mem`, and the notifiers of
    /// its devices: bind them, run one [`service::step`], and drop them.
    ///
    /// [`service::step`]: crate::service::step
    pub fn bind<'a, M: GuestMemory>(&'a mut self, mem: &'a M) -> AmpPort<'a, M, N> {
        AmpPort {
            rev: self.rev,
            frame_size: usize::from(self.channel.layout.element_size),
            bus: RefCell::new(self),
            mem,
        }
    }
}

/// An [`AmpBus`] bound to its memory for one step: the [`Mailbox`] of the
/// step ([`AmpPort::mailbox`]) and the [`Notifier`] of each device
/// ([`AmpPort::notifier`]) share it.
///
/// The bus is borrowed only inside one [`Mailbox`] or [`Notifier`] call,
/// never across calls, and none of those calls another; the port is not
/// `Sync`. A borrow therefore always succeeds. It is still taken with
/// `try_borrow_mut` (no panic path in firmware, DESIGN.md): were it ever
/// refused, the call does nothing (no message, no reply, no event).
/// What does not change while bound (the revision, the element size) is
/// copied out at [`AmpBus::bind`] and needs no borrow.
pub struct AmpPort<'a, M, const N: usize> {
    bus: RefCell<&'a mut AmpBus<N>>,
    mem: &'a M,
    rev: Revision,
    frame_size: usize,
}

impl<'a, M: GuestMemory, const N: usize> AmpPort<'a, M, N> {
    /// The revision the bus speaks (for [`Bound::on_bus`]).
    ///
    /// [`Bound::on_bus`]: crate::service::Bound::on_bus
    pub fn revision(&self) -> Revision {
        self.rev
    }

    /// The step's mailbox.
    pub fn mailbox(&self) -> AmpMailbox<'_, 'a, M, N> {
        AmpMailbox { port: self }
    }

    /// The notifier of device `dev_num`; `doorbell` rings the driver.
    pub fn notifier<D: Doorbell>(&self, dev_num: u16, doorbell: D) -> AmpNotifier<'_, 'a, M, D, N> {
        AmpNotifier {
            port: self,
            dev_num,
            doorbell,
            pending: false,
        }
    }
}

/// [`Mailbox`] over an [`AmpBus`]: takes messages off the channel, answers
/// bus messages itself and hands transport messages on (device number =
/// index of the device in the step).
pub struct AmpMailbox<'p, 'a, M, const N: usize> {
    port: &'p AmpPort<'a, M, N>,
}

impl<M: GuestMemory, const N: usize> Mailbox for AmpMailbox<'_, '_, M, N> {
    fn next(&mut self, buf: &mut [u8]) -> Option<(usize, usize)> {
        let mut bus = self.port.bus.try_borrow_mut().ok()?;
        let mem = self.port.mem;
        // Bounded: at most one pass over the queue's elements.
        for _ in 0..bus.channel.layout.elements {
            let len = match bus.channel.peek(mem, buf) {
                Ok(Some(len)) => len,
                Ok(None) => return None,
                Err(ChannelError::Malformed) => {
                    bus.stats.dropped += 1;
                    continue;
                }
                Err(_) => return None,
            };
            // peek returns at most buf.len() (a longer message is Malformed).
            let frame = buf.get(..len)?;
            let Ok((h, _)) = Header::decode(frame) else {
                bus.stats.dropped += 1;
                bus.channel.consume(mem).ok()?;
                continue;
            };
            // A request is taken only when its answer has room; events
            // (EVENT_AVAIL) get no answer and are always taken, so kicks
            // flow while the driver leaves our messages unread.
            let event = h.msg_id & EVENT_BIT != 0;
            if !event && !matches!(bus.channel.free(mem), Ok(f) if f > 0) {
                return None;
            }
            bus.channel.consume(mem).ok()?;
            if h.msg_type & TYPE_BUS != 0 {
                bus.bus_message(mem, frame);
                continue;
            }
            if h.dev_num >= AmpBus::<N>::DEVICES {
                bus.stats.dropped += 1;
                continue;
            }
            return Some((usize::from(h.dev_num), len));
        }
        None
    }

    fn reply(&mut self, _device: usize, response: &[u8]) {
        // Never refused (see AmpPort).
        if let Ok(mut bus) = self.port.bus.try_borrow_mut() {
            // Room was checked before the request was taken.
            let _ = bus.channel.send(self.port.mem, response);
        }
    }

    fn frame_size(&self) -> usize {
        self.port.frame_size
    }
}

/// [`Notifier`] of one device on an [`AmpBus`]: each notification becomes
/// an EVENT_USED or EVENT_CONFIG message in the channel (owed for later
/// when the channel is full); the barrier and the doorbell are the
/// platform's [`Doorbell`].
pub struct AmpNotifier<'p, 'a, M, D, const N: usize> {
    port: &'p AmpPort<'a, M, N>,
    dev_num: u16,
    doorbell: D,
    pending: bool,
}

impl<M: GuestMemory, D: Doorbell, const N: usize> Notifier for AmpNotifier<'_, '_, M, D, N> {
    fn notify(&mut self, n: Notification) {
        // Never refused (see AmpPort).
        let Ok(mut bus) = self.port.bus.try_borrow_mut() else {
            return;
        };
        bus.event(self.port.mem, self.dev_num, n, false);
        // Rung even when the event waits for room: the driver then has
        // unread messages, and the doorbell tells it to read them.
        self.pending = true;
    }

    fn barrier(&mut self) {
        if self.pending {
            self.doorbell.barrier();
        }
    }

    fn ring(&mut self) {
        if core::mem::take(&mut self.pending) {
            self.doorbell.ring();
        }
    }
}
