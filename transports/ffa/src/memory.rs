//! Driver memory: areas retrieved from FF-A shares, mapped through the
//! board, reached through the region table; and the rest of what the FF-A
//! bus codec asks of its host.
//!
//! AREA_SHARE names an FF-A memory handle: the SP retrieves it
//! (`FFA_MEM_RETRIEVE_REQ`, FF-A §10.4), copies the response out of its RX
//! buffer and gives the buffer back (`FFA_RX_RELEASE`), checks that the
//! memory is the normal world's and as large as announced, and maps each
//! constituent non-secure through the [`Board`] at bus addresses
//! `area_id << 48 | offset`. Nothing else is ever in the region table, so
//! the device cannot touch memory outside a retrieved area. AREA_UNSHARE
//! and RESET give the memory back (`FFA_MEM_RELINQUISH`, FF-A §10.5)
//! after unmapping it; an area a live queue still uses puts the device
//! into DEVICE_NEEDS_RESET first.

use core::marker::PhantomData;

use arm_ffa::Interface;
use arm_ffa::memory_management::{
    DataAccessPerm, Handle, InstuctionAccessPerm, MemAccessPerm, MemRegionAttributes,
    MemRegionSecurity, MemRelinquishDesc, MemTransactionDesc, MemTransactionFlags,
};
use smccc::Call;
use virtio_backend::bus::{
    AREA_OFFSET_MASK, EventMethod, FFA_PAGE_SIZE, FfaBusHost, HostStatus, SharedArea, bus_address,
};
use virtio_backend::{DeviceCore, GuestMemory, RegionTable, VirtioDevice};

use crate::{Buffers, Events, Options, call, call_ok};

/// Largest retrieve response the SP takes (one fragment, read out of RX):
/// room for 20 constituents. A larger one is relinquished and refused.
pub const MAX_RETRIEVE_RESPONSE: usize = 448;

/// What the transport needs of the board: mapping retrieved memory, and
/// the time.
pub trait Board<'a, const R: usize> {
    /// Maps `pages` 4 KiB pages of normal-world memory at physical address
    /// `pa` (non-secure, normal memory, never executable; writable when
    /// `writable`) and adds them to `mem` as driver addresses
    /// `bus..bus + pages * 4096`. `false` if it could not (no room in the
    /// translation tables or the table, an address it refuses): then
    /// nothing was added.
    fn map(
        &mut self,
        mem: &mut RegionTable<'a, R>,
        bus: u64,
        pa: u64,
        pages: u32,
        writable: bool,
    ) -> bool;
    /// Removes what [`map`](Self::map) added for `bus` from `mem` and
    /// unmaps it.
    fn unmap(&mut self, mem: &mut RegionTable<'a, R>, bus: u64, pa: u64, pages: u32);
    /// Milliseconds since boot.
    fn now_ms(&self) -> u64;
}

/// The FF-A bus codec's host, for the duration of one bus frame.
pub(crate) struct Host<'h, 'a, C, D, B, const NQ: usize, const H: usize, const R: usize> {
    pub(crate) core: &'h mut DeviceCore<D, NQ, H>,
    pub(crate) mem: &'h mut RegionTable<'a, R>,
    pub(crate) board: &'h mut B,
    pub(crate) bufs: &'h Buffers<'a>,
    pub(crate) events: &'h mut Events,
    pub(crate) maps: &'h mut [Option<Mapping>; R],
    pub(crate) opts: Options,
    pub(crate) id: u16,
    /// The endpoint that sent the frame: the sharer of its areas.
    pub(crate) driver: u16,
    pub(crate) conduit: PhantomData<C>,
}

/// One constituent of a retrieved area, as mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub(crate) bus: u64,
    pub(crate) pa: u64,
    pub(crate) pages: u32,
}

impl<'a, C, D, B, const NQ: usize, const H: usize, const R: usize> Host<'_, 'a, C, D, B, NQ, H, R>
where
    C: Call,
    D: VirtioDevice,
    B: Board<'a, R>,
{
    /// The constituents of the retrieve response in `resp`, if it
    /// describes `area`'s share to us and they fit `out`: the front of
    /// `out`. Out of line: `arm-ffa`'s descriptor checks stay here, in one
    /// function (partition/panic-allowlist.txt).
    #[inline(never)]
    fn constituents<'o>(
        &self,
        resp: &[u8],
        area: &SharedArea,
        out: &'o mut [Mapping; R],
    ) -> Option<&'o [Mapping]> {
        let Ok((desc, mut access, Some(ranges))) = MemTransactionDesc::unpack(resp) else {
            return None;
        };
        // FF-A §10.4.2: the response names the handle we asked for, and
        // lists us as a receiver; the SPMC marks normal-world memory
        // non-secure (FF-A §10.10.4.1): secure memory is refused.
        if desc.handle != Handle(area.mem_handle)
            || desc.mem_region_attr.security != MemRegionSecurity::NonSecure
            || !access.any(|a| a.is_ok_and(|a| a.endpoint_id == self.id))
        {
            return None;
        }
        let mut at = 0u64;
        let mut n = 0;
        for r in ranges {
            let r = r.ok()?;
            let slot = out.get_mut(n)?;
            // Page-aligned, and no more pages than AREA_SHARE announced.
            if r.address % FFA_PAGE_SIZE != 0 || r.page_cnt == 0 {
                return None;
            }
            *slot = Mapping {
                bus: bus_address(area.area_id, at)?,
                pa: r.address,
                pages: r.page_cnt,
            };
            at += u64::from(r.page_cnt) * FFA_PAGE_SIZE;
            n += 1;
        }
        let out: &'o [Mapping; R] = out;
        (at == area.size()).then(|| out.get(..n)).flatten()
    }

    /// Unmaps every constituent of area `area_id`.
    fn unmap_area(&mut self, area_id: u16) {
        for slot in self.maps.iter_mut() {
            if let Some(m) = slot.filter(|m| m.bus >> 48 == u64::from(area_id)) {
                self.board.unmap(self.mem, m.bus, m.pa, m.pages);
                *slot = None;
            }
        }
    }

    /// FFA_MEM_RELINQUISH of `handle` for us (FF-A §10.5.1): the
    /// descriptor goes in our TX buffer.
    fn relinquish(&mut self, handle: u64) -> HostStatus {
        let mut d = [0u8; 32];
        let n = MemRelinquishDesc {
            handle: Handle(handle),
            flags: 0,
        }
        .pack(&[self.id], &mut d);
        if self.bufs.tx.write(0, &d[..n]).is_err() {
            return HostStatus::Error;
        }
        match call_ok::<C>(&Interface::MemRelinquish) {
            Ok(_) => HostStatus::Ok,
            Err(_) => HostStatus::Error,
        }
    }

    /// Whether an enabled queue has a ring in `area`.
    fn in_use(&self, area: &SharedArea) -> bool {
        (0..NQ as u16).any(|q| {
            let i = self.core.queue_info(q);
            i.enabled
                && [i.desc, i.driver, i.device]
                    .iter()
                    .any(|&a| a >> 48 == u64::from(area.area_id))
        })
    }
}

impl<'a, C, D, B, const NQ: usize, const H: usize, const R: usize> FfaBusHost
    for Host<'_, 'a, C, D, B, NQ, H, R>
where
    C: Call,
    D: VirtioDevice,
    B: Board<'a, R>,
{
    fn retrieve_area(&mut self, area: &SharedArea) -> HostStatus {
        // Areas must fit the 48 offset bits of a bus address.
        if area.page_count == 0 || area.size() > AREA_OFFSET_MASK + 1 {
            return HostStatus::Error;
        }
        // FF-A §10.4.1, Table 10.20: the retrieve request names the sender,
        // the handle, the tag and the transaction type (share); one
        // receiver, us, with the data access the driver granted and the
        // instruction access left unspecified (a share's retriever may not
        // ask for more); no memory attributes (the sender's stand).
        let req = MemTransactionDesc {
            sender_id: self.driver,
            mem_region_attr: MemRegionAttributes::default(),
            flags: MemTransactionFlags(MemTransactionFlags::TYPE_SHARE),
            handle: Handle(area.mem_handle),
            tag: area.mem_tag,
        };
        let access = MemAccessPerm {
            endpoint_id: self.id,
            instr_access: InstuctionAccessPerm::NotSpecified,
            data_access: if area.attrs.writeable {
                DataAccessPerm::ReadWrite
            } else {
                DataAccessPerm::ReadOnly
            },
            flags: 0,
        };
        let mut d = [0u8; 128];
        let packed = req.pack(&[], &[access], &mut d);
        // A retrieve request names no constituents (FF-A §10.4.1: the
        // composite offset is 0), and goes in the FF-A 1.2 layout.
        let Some(request) = d
            .get_mut(48 + 4..48 + 8)
            .map(|c| c.fill(0))
            .and_then(|()| crate::layout::widen(&mut d, 48 + 16))
            .filter(|_| packed >= 48 + 16)
            .and_then(|n| d.get(..n))
        else {
            return HostStatus::Error;
        };
        if self.bufs.tx.write(0, request).is_err() {
            return HostStatus::Error;
        }
        let retrieve = Interface::MemRetrieveReq {
            total_len: request.len() as u32,
            frag_len: request.len() as u32,
            buf: None,
        };
        let total = match call::<C>(&retrieve) {
            Ok(Interface::MemRetrieveResp {
                total_len,
                frag_len,
            }) if total_len == frag_len => total_len as usize,
            // Fragmented (we take one fragment): retrieved all the same,
            // so given back at once.
            Ok(Interface::MemRetrieveResp { .. }) => {
                let _ = call::<C>(&Interface::RxRelease { vm_id: 0 });
                self.relinquish(area.mem_handle);
                return HostStatus::Error;
            }
            _ => return HostStatus::Error,
        };
        let mut resp = [0u8; MAX_RETRIEVE_RESPONSE];
        // A response larger than `resp` (`get_mut`: `None`) is refused.
        let read = resp
            .get_mut(..total)
            .is_some_and(|r| self.bufs.rx.read(0, r).is_ok());
        // FF-A §10.4.2: the response is ours in RX until we release it.
        let _ = call::<C>(&Interface::RxRelease { vm_id: 0 });
        // arm-ffa reads the FF-A 1.1 layout.
        let narrowed = if read {
            crate::layout::narrow(&mut resp, total)
        } else {
            None
        };
        let mut found = [Mapping {
            bus: 0,
            pa: 0,
            pages: 0,
        }; R];
        let found = narrowed
            .and_then(|len| resp.get(..len))
            .and_then(|r| self.constituents(r, area, &mut found));
        let mut mapped = found.is_some();
        for m in found.unwrap_or_default() {
            // The same memory in two areas (or twice in one) is refused:
            // unsharing one would unmap it under the other.
            let end = |x: &Mapping| x.pa.saturating_add(u64::from(x.pages) * FFA_PAGE_SIZE);
            if self
                .maps
                .iter()
                .flatten()
                .any(|x| m.pa < end(x) && x.pa < end(m))
            {
                mapped = false;
                break;
            }
            let free = self.maps.iter_mut().find(|s| s.is_none());
            let Some(free) = free.filter(|_| {
                self.board
                    .map(self.mem, m.bus, m.pa, m.pages, area.attrs.writeable)
            }) else {
                mapped = false;
                break;
            };
            *free = Some(*m);
        }
        if mapped {
            return HostStatus::Ok;
        }
        // Not usable: unmapped again and given back.
        self.unmap_area(area.area_id);
        self.relinquish(area.mem_handle);
        HostStatus::Error
    }

    fn relinquish_area(&mut self, area: &SharedArea) -> HostStatus {
        // An area a live queue uses is going: the device cannot go on
        // (virtio v1.2 §2.1.2, DEVICE_NEEDS_RESET), and tells the driver.
        if self.in_use(area) {
            let i = self.core.set_needs_reset();
            if i.config {
                use virtio_backend::service::{Notification, Notifier};
                self.events.notify(Notification::Config {
                    needs_reset: true,
                    status: self.core.status(),
                    generation: self.core.config_generation(),
                });
            }
        }
        // FF-A §10.5.1: relinquish first; only then is the mapping ours to
        // drop (we are single-threaded: nothing touches it in between).
        let status = self.relinquish(area.mem_handle);
        if status == HostStatus::Ok {
            self.unmap_area(area.area_id);
        }
        status
    }

    fn reset_devices(&mut self) -> HostStatus {
        self.core.reset();
        self.events.clear();
        HostStatus::Ok
    }

    fn next_event(&mut self, out: &mut [u8]) -> Option<usize> {
        self.events.take(out)
    }

    fn configure_events(&mut self, method: EventMethod, notif_id: u16) -> bool {
        let allowed = match method {
            EventMethod::Notif => self.opts.notifications,
            EventMethod::Indirect => self.opts.indirect,
            _ => true,
        };
        allowed && self.events.configure(method, notif_id)
    }

    fn device_bitmap(&self) -> &[u8] {
        // Device 0, the only one.
        &[1]
    }
}
