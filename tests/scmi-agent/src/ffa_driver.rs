//! The driver half of virtio-msg on the FF-A bus (Arm DEN0153), as a
//! normal-world endpoint does it: [`FfaChannel`], an [`Exchange`], and
//! [`FfaDriver`], the `virtio_drivers` transport over it.
//!
//! [`FfaDriver::connect`] does what Arm's Linux proof of concept does when
//! it binds to a virtio-msg device partition: FFA_VERSION, FFA_ID_GET and
//! FFA_RXTX_MAP for itself; the bus VERSION (probe, then echo);
//! FFA_MEM_SHARE of the memory its rings and buffers live in and AREA_SHARE
//! of the handle, so that bus addresses are `area_id << 48 | offset`;
//! EVENT_CONFIGURE (polling, or an FF-A notification it bound); and
//! GET_DEVICES. Every message then goes in FFA_MSG_SEND_DIRECT_REQ2 to the
//! partition, addressed to the virtio-msg device UUID, and its response
//! comes back in DIRECT_RESP2; events are fetched with EVENT_POLL.
//!
//! The conduit is a type parameter (`smccc::Smc` on hardware, an SPMC
//! double in host tests), so the same code runs in both. Test code: it
//! panics on anything unexpected, saying what it saw.

use core::cell::Cell;
use core::marker::PhantomData;

use arm_ffa::interface_args::{
    DirectMsg2Args, RxTxAddr, SuccessArgs, VersionFlags, VersionQueryType,
};
use arm_ffa::memory_management::{
    Cacheability, ConstituentMemRegion, DataAccessPerm, MemAccessPerm, MemRegionAttributes,
    MemTransactionDesc, MemType, Shareability,
};
use arm_ffa::notification::{NotificationBindFlags, NotificationGetFlags};
use arm_ffa::{FfaError, Interface};
use smccc::Call;
use virtio_backend::GuestMemory;
use virtio_backend::bus::{
    AreaAttrs, BusRequest, BusResponse, EventMethod, FFA_MAX_MSG_SIZE, GetDevicesOrder,
    VersionRequest, VersionResponse, result,
};
use virtio_backend::msg::{Response, Revision, TYPE_BUS, TYPE_RESPONSE};

use crate::msg_driver::{Exchange, MAX_FRAME, MsgDriver};

pub use transport_ffa::DEVICE_UUID;

/// The FF-A version the driver speaks: the partition's.
use transport_ffa::FFA_VERSION;

/// One virtio-msg device on the FF-A bus as a `virtio_drivers` transport.
pub type FfaDriver<C, M = virtio_backend::FixedWindow<'static>> = MsgDriver<FfaChannel<C, M>>;

/// The driver's RX and TX buffers (one page each) and where they are.
pub struct Mailboxes<M> {
    /// RX, at offsets `0..4096`.
    pub rx: M,
    /// TX, at offsets `0..4096`.
    pub tx: M,
    /// Addresses for FFA_RXTX_MAP.
    pub rx_address: u64,
    /// Addresses for FFA_RXTX_MAP.
    pub tx_address: u64,
}

/// What the driver shares and how it wants events.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// The partition's endpoint id.
    pub partition: u16,
    /// The memory shared: its physical address and pages. The driver's
    /// bus addresses are `area_id << 48 | offset` into it.
    pub memory: (u64, u32),
    /// The area id it is shared as.
    pub area_id: u16,
    /// How the device tells the driver about events.
    pub events: Events,
}

/// How events reach the driver (EVENT_CONFIGURE); it always fetches them
/// with EVENT_POLL as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Events {
    /// The driver only polls.
    Poll,
    /// An FF-A notification with this bit (bound first) says "poll".
    Notification(u8),
    /// The events come as indirect messages into the driver's RX buffer.
    Indirect,
}

/// Why [`FfaDriver::connect`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    /// An FF-A call failed: its function id and error.
    Call(u32, FfaError),
    /// The bus VERSION was refused.
    BusVersion,
    /// AREA_SHARE answered this result.
    AreaShare(u16),
    /// EVENT_CONFIGURE was refused.
    Events,
    /// GET_DEVICES listed no device.
    NoDevices,
}

/// The driver's end of the FF-A bus, for one virtio-msg device.
pub struct FfaChannel<C, M> {
    bufs: Mailboxes<M>,
    own: u16,
    partition: u16,
    token: Cell<u16>,
    events: Events,
    dev_num: Cell<u16>,
    /// FF-A notifications seen (each one a hint to poll).
    notified: Cell<usize>,
    /// Direct requests sent.
    requests: Cell<u64>,
    /// The memory handle of the shared area.
    handle: Cell<u64>,
    conduit: PhantomData<C>,
}

/// Makes an FF-A call through `C`.
fn ffa<C: Call>(iface: &Interface) -> Result<Interface, ConnectError> {
    let fid = iface.function_id().map_or(0, |f| f as u32);
    match transport_ffa::call::<C>(iface) {
        Ok(Interface::Error { error_code, .. }) => Err(ConnectError::Call(fid, error_code)),
        Ok(i) => Ok(i),
        Err(e) => Err(ConnectError::Call(e.function, e.error)),
    }
}

/// The first two argument words of an FFA_SUCCESS.
fn success_args(i: &Interface) -> Option<(u32, u32)> {
    match i {
        Interface::Success {
            args: SuccessArgs::Args32(a),
            ..
        } => Some((a[0], a[1])),
        Interface::Success {
            args: SuccessArgs::Args64(a),
            ..
        } => Some((a[0] as u32, a[1] as u32)),
        _ => None,
    }
}

impl<C: Call, M: GuestMemory> MsgDriver<FfaChannel<C, M>> {
    /// Binds to the virtio-msg device partition (see the module doc).
    pub fn connect(bufs: Mailboxes<M>, setup: Setup) -> Result<Self, ConnectError> {
        let version = Interface::Version {
            input_version: FFA_VERSION,
            flags: VersionFlags {
                query_type: VersionQueryType::Negotiate,
            },
        };
        match ffa::<C>(&version)? {
            Interface::VersionOut {
                output_version: arm_ffa::VersionOut::Version(v),
            } if FFA_VERSION.is_compatible_to(v) => {}
            _ => return Err(ConnectError::Call(0x8400_0063, FfaError::NotSupported)),
        }
        ffa::<C>(&Interface::RxTxMap {
            addr: RxTxAddr::Addr64 {
                rx: bufs.rx_address,
                tx: bufs.tx_address,
            },
            page_cnt: 1,
        })?;
        Self::bind(bufs, setup)
    }

    /// The bus part of [`connect`](Self::connect), for an endpoint whose
    /// FF-A version is set and RX/TX buffers mapped (a driver binding
    /// again after a bus RESET): FFA_ID_GET, then VERSION, the share,
    /// AREA_SHARE, EVENT_CONFIGURE and GET_DEVICES.
    pub fn bind(bufs: Mailboxes<M>, setup: Setup) -> Result<Self, ConnectError> {
        let own = success_args(&ffa::<C>(&Interface::IdGet)?)
            .map(|a| a.0 as u16)
            .ok_or(ConnectError::Call(0x8400_0069, FfaError::NotSupported))?;
        let ch = FfaChannel {
            bufs,
            own,
            partition: setup.partition,
            token: Cell::new(0),
            events: setup.events,
            dev_num: Cell::new(0),
            notified: Cell::new(0),
            requests: Cell::new(0),
            handle: Cell::new(0),
            conduit: PhantomData,
        };
        // PoC: probe with zeros, then echo the pair the device supports.
        let ffa_version = u32::from(FFA_VERSION);
        let mut pair = (0, 0);
        for _ in 0..2 {
            let req = BusRequest::Version(VersionRequest::Poc {
                bus_version: pair.0,
                transport_revision: pair.1,
                ffa_version,
            });
            pair = ch
                .bus(&req, |r| match *r {
                    BusResponse::Version(VersionResponse::Poc {
                        bus_version,
                        transport_revision,
                        ..
                    }) if bus_version != 0 => Some((bus_version, transport_revision)),
                    _ => None,
                })
                .ok_or(ConnectError::BusVersion)?;
        }
        let handle = ch.share(setup)?;
        ch.handle.set(handle);
        let share = BusRequest::AreaShare {
            area_id: setup.area_id,
            mem_handle: handle,
            mem_tag: 0,
            page_count: setup.memory.1,
            attrs: AreaAttrs::SHARE_RW_XN_INNER_WB_NORMAL_NS.bits(),
        };
        match ch.bus(&share, |r| match *r {
            BusResponse::AreaShare { result, .. } => result,
            _ => u16::MAX,
        }) {
            result::SUCCESS => {}
            other => return Err(ConnectError::AreaShare(other)),
        }
        let (method, notif_id) = match setup.events {
            Events::Notification(bit) => {
                // FF-A §13.10.1: the receiver binds what the sender sets.
                ffa::<C>(&Interface::NotificationBind {
                    sender_id: setup.partition,
                    receiver_id: own,
                    flags: NotificationBindFlags {
                        per_vcpu_notification: false,
                    },
                    bitmap: 1 << bit,
                })?;
                (EventMethod::Notif, u16::from(bit))
            }
            Events::Indirect => (EventMethod::Indirect, 0),
            Events::Poll => (EventMethod::Poll, 0),
        };
        let configure = BusRequest::EventConfigure {
            method: method as u8,
            notif_id,
        };
        let configured = ch.bus(&configure, |r| {
            matches!(
                r,
                BusResponse::EventConfigure {
                    result: result::SUCCESS
                }
            )
        });
        if !configured {
            return Err(ConnectError::Events);
        }
        let list = BusRequest::GetDevices {
            offset: 0,
            count: 32,
        };
        let dev = ch
            .bus(&list, |r| match r {
                BusResponse::Devices(l) => {
                    (l.offset()..l.offset().saturating_add(l.count())).find(|d| l.contains(*d))
                }
                _ => None,
            })
            .ok_or(ConnectError::NoDevices)?;
        ch.dev_num.set(dev);
        Ok(MsgDriver::new(ch, Revision::V2, dev))
    }
}

impl<C: Call, M: GuestMemory> FfaChannel<C, M> {
    /// The RX/TX buffers.
    pub fn mailboxes(&self) -> &Mailboxes<M> {
        &self.bufs
    }

    /// Gives the buffers back (to bind again after a bus RESET).
    pub fn into_mailboxes(self) -> Mailboxes<M> {
        self.bufs
    }

    /// FFA_MEM_SHARE of the setup's memory with the partition (FF-A
    /// §10.3, the descriptor in TX in the FF-A 1.2 layout): the handle.
    fn share(&self, setup: Setup) -> Result<u64, ConnectError> {
        let desc = MemTransactionDesc {
            sender_id: self.own,
            mem_region_attr: MemRegionAttributes {
                mem_type: MemType::Normal {
                    cacheability: Cacheability::WriteBack,
                    shareability: Shareability::Inner,
                },
                ..Default::default()
            },
            ..Default::default()
        };
        let access = MemAccessPerm {
            endpoint_id: self.partition,
            data_access: DataAccessPerm::ReadWrite,
            ..Default::default()
        };
        let region = ConstituentMemRegion {
            address: setup.memory.0,
            page_cnt: setup.memory.1,
        };
        let mut d = [0u8; 256];
        let n = desc.pack(&[region], &[access], &mut d);
        let n = transport_ffa::layout::widen(&mut d, n).expect("the descriptor fits");
        self.bufs.tx.write(0, &d[..n]).expect("TX is mapped");
        let r = ffa::<C>(&Interface::MemShare {
            total_len: n as u32,
            frag_len: n as u32,
            buf: None,
        })?;
        let (lo, hi) =
            success_args(&r).ok_or(ConnectError::Call(0xc400_0073, FfaError::NotSupported))?;
        Ok(u64::from(lo) | u64::from(hi) << 32)
    }

    /// Sends `frame` in a direct request; the response's bytes.
    fn direct(&self, frame: &[u8]) -> [u8; MAX_FRAME] {
        self.request(frame, transport_ffa::DEVICE_UUID)
    }

    /// Sends any bytes (at most 112) in a direct request to `uuid`; the
    /// response's register bytes, all zero when nothing was answered. For
    /// hostile tests.
    pub fn request(&self, frame: &[u8], uuid: uuid::Uuid) -> [u8; MAX_FRAME] {
        self.requests.set(self.requests.get() + 1);
        let mut regs = [0u64; 14];
        for (r, b) in regs.iter_mut().zip(frame.chunks(8)) {
            let mut w = [0u8; 8];
            w[..b.len()].copy_from_slice(b);
            *r = u64::from_le_bytes(w);
        }
        let req = Interface::MsgSendDirectReq2 {
            src_id: self.own,
            dst_id: self.partition,
            uuid,
            args: DirectMsg2Args(regs),
        };
        let mut out = [0u8; MAX_FRAME];
        match ffa::<C>(&req) {
            Ok(Interface::MsgSendDirectResp2 { args, src_id, .. }) if src_id == self.partition => {
                for (o, r) in out.chunks_exact_mut(8).zip(args.0) {
                    o.copy_from_slice(&r.to_le_bytes());
                }
            }
            other => panic!("DIRECT_REQ2 {frame:02x?} answered with {other:?}"),
        }
        out
    }

    /// A bus request; its decoded response handed to `f`.
    fn bus<R>(&self, req: &BusRequest, f: impl FnOnce(&BusResponse<'_>) -> R) -> R {
        let token = self.next_token();
        let mut frame = [0u8; FFA_MAX_MSG_SIZE];
        let n = req.encode(0, token, &mut frame).expect("fits");
        let r = self.direct(&frame[..n]);
        match BusResponse::decode(&r, GetDevicesOrder::V2) {
            Ok((h, resp)) if h.token == token => f(&resp),
            other => panic!("bus request {req:?} answered with {other:?}"),
        }
    }

    /// FFA_NOTIFICATION_GET of our bits from partitions and/or the SPM
    /// framework's: w2..w7.
    fn notifications(&self, partitions: bool, framework: bool) -> [u32; 6] {
        let get = Interface::NotificationGet {
            vcpu_id: 0,
            endpoint_id: self.own,
            flags: NotificationGetFlags {
                sp_bitmap_id: partitions,
                vm_bitmap_id: false,
                spm_bitmap_id: framework,
                hyp_bitmap_id: false,
            },
        };
        match ffa::<C>(&get) {
            Ok(Interface::Success {
                args: SuccessArgs::Args32(a),
                ..
            }) => a,
            other => panic!("NOTIFICATION_GET answered with {other:?}"),
        }
    }

    /// Ends the binding: bus RESET (the device is reset and gives the area
    /// back, FFA_MEM_RELINQUISH), then FFA_MEM_RECLAIM of the memory,
    /// which succeeds only once the partition relinquished it.
    pub fn reset_and_reclaim(&self) -> Result<(), ConnectError> {
        let reset = self.bus(&BusRequest::Reset, |r| match *r {
            BusResponse::Reset { result } => result,
            _ => u16::MAX,
        });
        if reset != result::SUCCESS {
            return Err(ConnectError::AreaShare(reset));
        }
        ffa::<C>(&Interface::MemReclaim {
            handle: arm_ffa::memory_management::Handle(self.handle.get()),
            flags: Default::default(),
        })?;
        Ok(())
    }

    /// Direct requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// FF-A notifications or indirect event messages seen while polling.
    pub fn notified(&self) -> usize {
        self.notified.get()
    }
}

impl<C: Call, M: GuestMemory> Exchange for FfaChannel<C, M> {
    fn next_token(&self) -> u16 {
        let t = self.token.get().wrapping_add(1);
        self.token.set(t);
        t
    }

    fn call(&self, frame: &[u8]) -> [u8; MAX_FRAME] {
        let r = self.direct(frame);
        assert!(
            r[6] != 0 || r[7] != 0,
            "no response to {frame:02x?} (an empty DIRECT_RESP2)"
        );
        r
    }

    fn send(&self, frame: &[u8]) {
        // EVENT_AVAIL: answered with an empty DIRECT_RESP2.
        let r = self.direct(frame);
        assert!(
            r[..8].iter().all(|&b| b == 0),
            "an event got a response: {:02x?}",
            &r[..16]
        );
    }

    fn take_events(&self) -> (bool, bool) {
        let (mut used, mut config) = (false, false);
        let mut note = |f: &[u8]| match Response::decode(f, Revision::V2) {
            Ok((h, Response::EventUsed { .. })) if h.dev_num == self.dev_num.get() => used = true,
            Ok((h, Response::EventConfig { .. })) if h.dev_num == self.dev_num.get() => {
                config = true
            }
            other => panic!("an event frame that is not ours: {other:?}"),
        };
        match self.events {
            Events::Notification(_) => {
                // FF-A §13.10.4: the bits from partitions (w2/w3); any of
                // them says "poll". Cleared by reading.
                let a = self.notifications(true, false);
                if (a[0] | a[1]) != 0 {
                    self.notified.set(self.notified.get() + 1);
                }
            }
            Events::Indirect => {
                // The SPM's framework bit 0 (w6): our RX holds a message.
                while self.notifications(false, true)[4] & 1 != 0 {
                    let mut m = [0u8; 0x28 + FFA_MAX_MSG_SIZE];
                    self.bufs.rx.read(0, &mut m).expect("RX");
                    let _ = ffa::<C>(&Interface::RxRelease { vm_id: 0 });
                    let word = |o: usize| u32::from_le_bytes([m[o], m[o + 1], m[o + 2], m[o + 3]]);
                    let (offset, size) = (word(8) as usize, word(16) as usize);
                    assert!(
                        (word(12) >> 16) as u16 == self.partition && offset + size <= m.len(),
                        "an indirect message that is not the partition's: {:02x?}",
                        &m[..0x28]
                    );
                    note(&m[offset..offset + size]);
                    self.notified.set(self.notified.get() + 1);
                }
            }
            Events::Poll => {}
        }
        // Bounded: the device holds at most one event per queue and one
        // configuration event.
        for _ in 0..66 {
            let token = self.next_token();
            let mut f = [0u8; FFA_MAX_MSG_SIZE];
            let n = BusRequest::EventPoll
                .encode(0, token, &mut f)
                .expect("fits");
            let r = self.direct(&f[..n]);
            if r[0] & TYPE_BUS != 0 {
                // The empty EVENT_POLL response: nothing more.
                assert!(
                    r[0] & TYPE_RESPONSE != 0 && r[1] == virtio_backend::bus::id::EVENT_POLL,
                    "EVENT_POLL answered with {:02x?}",
                    &r[..16]
                );
                return (used, config);
            }
            note(&r);
        }
        panic!("EVENT_POLL never ran dry")
    }
}
