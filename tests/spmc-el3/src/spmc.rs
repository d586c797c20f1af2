//! The FF-A calls of both worlds, served between them (see the crate doc).
//! Every encoding is `arm-ffa`'s; descriptors travel in the FF-A 1.2
//! layout (`transport_ffa::layout` converts for `arm-ffa`).

use core::arch::asm;

use arm_ffa::boot_info::{BootInfo, BootInfoContents, BootInfoName, BootInfoStdId, BootInfoType};
use arm_ffa::interface_args::{SuccessArgs, TargetInfo};
use arm_ffa::memory_management::{
    Cacheability, ConstituentMemRegion, DataAccessPerm, Handle, InstuctionAccessPerm,
    MemAccessPerm, MemRegionAttributes, MemRegionSecurity, MemRelinquishDesc, MemTransactionDesc,
    MemTransactionFlags, MemType, Shareability,
};
use arm_ffa::{FfaError, Interface, Version};
use spin::mutex::SpinMutex;

/// Which world a call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// The partition (S-EL1).
    Secure,
    /// The normal world (NS-EL1).
    Normal,
}

/// The version both sides speak to us; we answer 1.3, as Hafnium does.
const V: Version = Version(1, 2);
/// The partition's endpoint id (Hafnium's first SP).
const SP_ID: u16 = 0x8001;
/// The normal world's id (no hypervisor: 0).
const NWD_ID: u16 = 0;
/// Bytes of a descriptor we take out of a TX buffer.
const DESC_MAX: usize = 512;

#[derive(Clone, Copy, Default)]
struct Mailbox {
    rx: u64,
    tx: u64,
    rx_owned: bool,
}

#[derive(Clone, Copy)]
struct Share {
    handle: u64,
    tag: u64,
    constituents: [(u64, u32); 4],
    count: usize,
    retrieved: bool,
}

struct State {
    sp: Mailbox,
    nwd: Mailbox,
    /// The partition is blocked in FFA_MSG_WAIT (or after DIRECT_RESP2).
    sp_waiting: bool,
    /// A direct request for the partition.
    request: Option<[u64; 18]>,
    /// Its answer, for the normal world.
    response: Option<[u64; 18]>,
    shares: [Option<Share>; 4],
    next_handle: u64,
}

static STATE: SpinMutex<State> = SpinMutex::new(State {
    sp: Mailbox {
        rx: 0,
        tx: 0,
        rx_owned: false,
    },
    nwd: Mailbox {
        rx: 0,
        tx: 0,
        rx_owned: false,
    },
    sp_waiting: false,
    request: None,
    response: None,
    shares: [None; 4],
    // Hafnium's handles have bit 63 set.
    next_handle: 1 << 63 | 1,
});

/// Reports a broken rule or a failure and ends the run.
pub fn fail(world: World, why: &str) -> ! {
    semihosting::println!("spmc-el3: FAILED ({world:?} world): {why}");
    semihosting::process::exit(1)
}

fn events_wait() {
    // SAFETY: WFE has no memory effects.
    unsafe { asm!("wfe") };
}

fn events_send() {
    // SAFETY: DSB and SEV have no memory effects beyond ordering.
    unsafe { asm!("dsb sy", "sev") };
}

/// Copies `out.len()` bytes from physical address `addr`.
///
/// # Safety
///
/// `addr..addr + out.len()` is identity-mapped memory of one world.
unsafe fn read(addr: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        // SAFETY: the caller's contract.
        *b = unsafe { (addr as usize as *const u8).add(i).read_volatile() };
    }
}

/// Copies `data` to physical address `addr`.
///
/// # Safety
///
/// As for [`read`], and nothing else uses the range meanwhile.
unsafe fn write(addr: u64, data: &[u8]) {
    for (i, b) in data.iter().enumerate() {
        // SAFETY: the caller's contract.
        unsafe { (addr as usize as *mut u8).add(i).write_volatile(*b) };
    }
}

/// Copies the SP package from `staging` to `package`, writes the boot
/// information over its header (FF-A §5.4: one standard FDT descriptor,
/// the manifest) and returns the entry point (the image in the package).
pub fn load_partition(staging: u64, package: u64, max: u64) -> u64 {
    let mut h = [0u8; 24];
    // SAFETY: QEMU's loader put the package at `staging`, normal-world DRAM
    // (GiB 1, mapped).
    unsafe { read(staging, &mut h) };
    let w = |i: usize| u32::from_le_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]]);
    let (magic, version, pm_offset, pm_size, img_offset, img_size) =
        (w(0), w(1), w(2), w(3), w(4), w(5));
    let total = u64::from(img_offset) + u64::from(img_size);
    if magic != 0x474b_5053
        || version != 2
        || total > max
        || pm_offset < 0x40
        || img_offset < pm_offset + pm_size
    {
        fail(
            World::Secure,
            "no SP package (SPKG v2) at the staging address",
        );
    }
    let mut chunk = [0u8; 4096];
    let mut at = 0;
    while at < total {
        let n = (total - at).min(4096) as usize;
        // SAFETY: inside the staged package and the partition's budget of
        // secure RAM (GiB 0, mapped), which nothing runs in yet.
        unsafe {
            read(staging + at, &mut chunk[..n]);
            write(package + at, &chunk[..n]);
        }
        at += n as u64;
    }
    // SAFETY: the manifest lies in the copied package, and the header page
    // before it is ours to overwrite; the two do not overlap.
    let (manifest, blob) = unsafe {
        (
            core::slice::from_raw_parts(
                (package + u64::from(pm_offset)) as usize as *const u8,
                pm_size as usize,
            ),
            core::slice::from_raw_parts_mut(package as usize as *mut u8, pm_offset as usize),
        )
    };
    let name = c"ffa_manifest";
    let desc = BootInfo {
        name: BootInfoName::NullTermString(name),
        typ: BootInfoType::Std(BootInfoStdId::Fdt),
        contents: BootInfoContents::Address {
            content_buf: manifest,
        },
    };
    BootInfo::pack(V, &[desc], blob, Some(package as usize));
    package + u64::from(img_offset)
}

/// Waits until the partition has booted (it waits for messages).
pub fn wait_partition_ready() {
    while !STATE.lock().sp_waiting {
        events_wait();
    }
}

fn regs(i: Interface) -> [u64; 18] {
    let mut r = [0u64; 18];
    i.to_regs(V, &mut r);
    r
}

fn success(args: [u32; 6]) -> [u64; 18] {
    regs(Interface::Success {
        target_info: TargetInfo::default(),
        args: SuccessArgs::Args32(args),
    })
}

fn ok() -> [u64; 18] {
    success([0; 6])
}

fn error(e: FfaError) -> [u64; 18] {
    regs(Interface::error(e, true))
}

/// The partition waits for its next message (FFA_MSG_WAIT, or the wait
/// after DIRECT_RESP2); its RX buffer goes back to it released (FF-A
/// §13.1: MSG_WAIT releases RX).
fn next_message() -> [u64; 18] {
    {
        let mut s = STATE.lock();
        s.sp.rx_owned = false;
        s.sp_waiting = true;
    }
    events_send();
    loop {
        if let Some(r) = STATE.lock().request.take() {
            return r;
        }
        events_wait();
    }
}

/// A memory transaction descriptor from `world`'s TX buffer, in the FF-A
/// 1.1 layout for `arm-ffa`: its bytes and length.
fn descriptor(world: World, tx: u64, len: u32) -> ([u8; DESC_MAX], usize) {
    let mut d = [0u8; DESC_MAX];
    let n = len as usize;
    if tx == 0 || n > DESC_MAX {
        fail(
            world,
            "a descriptor without a TX buffer, or longer than we take",
        );
    }
    // SAFETY: the caller's TX page (mapped: FFA_RXTX_MAP), at most a page.
    unsafe { read(tx, &mut d[..n]) };
    match transport_ffa::layout::narrow(&mut d, n) {
        Some(m) => (d, m),
        None => fail(world, "a memory descriptor not in the FF-A 1.2 layout"),
    }
}

/// One FF-A call from `world` with registers `x`: the registers to return.
pub fn smc(world: World, x: [u64; 18]) -> [u64; 18] {
    let Ok(call) = Interface::from_regs(V, &x) else {
        return error(FfaError::NotSupported);
    };
    match (world, call) {
        // FF-A §13.2.1: the answer is the version itself.
        (_, Interface::Version { .. }) => {
            let mut r = [0u64; 18];
            r[0] = u64::from(u32::from(Version(1, 3)));
            r
        }
        (World::Secure, Interface::IdGet) => success([u32::from(SP_ID), 0, 0, 0, 0, 0]),
        (World::Normal, Interface::IdGet) => success([u32::from(NWD_ID), 0, 0, 0, 0, 0]),
        (
            w,
            Interface::RxTxMap {
                addr: arm_ffa::interface_args::RxTxAddr::Addr64 { rx, tx },
                page_cnt: 1,
            },
        ) => {
            let mut s = STATE.lock();
            let m = if w == World::Secure {
                &mut s.sp
            } else {
                &mut s.nwd
            };
            m.rx = rx;
            m.tx = tx;
            ok()
        }
        (w, Interface::RxRelease { vm_id: 0 }) => {
            let mut s = STATE.lock();
            let m = if w == World::Secure {
                &mut s.sp
            } else {
                &mut s.nwd
            };
            if !m.rx_owned {
                fail(w, "FFA_RX_RELEASE of an RX buffer the caller does not own");
            }
            m.rx_owned = false;
            ok()
        }
        (World::Secure, Interface::ConsoleLog { chars }) => {
            let b = match &chars {
                arm_ffa::interface_args::ConsoleLogChars::Chars64(c) => c.bytes(),
                arm_ffa::interface_args::ConsoleLogChars::Chars32(c) => c.bytes(),
            };
            semihosting::print!("{}", core::str::from_utf8(b).unwrap_or("?"));
            ok()
        }
        (World::Secure, Interface::MsgWait { .. }) => next_message(),
        (World::Secure, Interface::MsgSendDirectResp2 { dst_id, .. }) => {
            {
                let mut s = STATE.lock();
                if dst_id != NWD_ID || s.response.is_some() {
                    fail(World::Secure, "a DIRECT_RESP2 nobody asked for");
                }
                s.response = Some(x);
            }
            next_message()
        }
        (World::Normal, Interface::MsgSendDirectReq2 { dst_id, .. }) => {
            if dst_id != SP_ID {
                return error(FfaError::InvalidParameters);
            }
            loop {
                {
                    let mut s = STATE.lock();
                    if s.sp_waiting && s.request.is_none() {
                        s.sp_waiting = false;
                        s.request = Some(x);
                        break;
                    }
                }
                events_wait();
            }
            events_send();
            loop {
                if let Some(r) = STATE.lock().response.take() {
                    return r;
                }
                events_wait();
            }
        }
        (
            World::Normal,
            Interface::MemShare {
                total_len,
                frag_len,
                buf: None,
            },
        ) => {
            let tx = STATE.lock().nwd.tx;
            if total_len != frag_len {
                fail(World::Normal, "a fragmented FFA_MEM_SHARE");
            }
            let (d, n) = descriptor(World::Normal, tx, total_len);
            let Ok((desc, _, Some(ranges))) = MemTransactionDesc::unpack(&d[..n]) else {
                fail(
                    World::Normal,
                    "an FFA_MEM_SHARE descriptor that does not decode",
                );
            };
            let mut share = Share {
                handle: 0,
                tag: desc.tag,
                constituents: [(0, 0); 4],
                count: 0,
                retrieved: false,
            };
            for r in ranges {
                let Some((Ok(r), slot)) = Some(r).zip(share.constituents.get_mut(share.count))
                else {
                    fail(World::Normal, "more constituents than we keep");
                };
                *slot = (r.address, r.page_cnt);
                share.count += 1;
            }
            let mut s = STATE.lock();
            share.handle = s.next_handle;
            s.next_handle += 1;
            let Some(free) = s.shares.iter_mut().find(|x| x.is_none()) else {
                return error(FfaError::NoMemory);
            };
            *free = Some(share);
            success([share.handle as u32, (share.handle >> 32) as u32, 0, 0, 0, 0])
        }
        (
            World::Secure,
            Interface::MemRetrieveReq {
                total_len,
                frag_len,
                buf: None,
            },
        ) => {
            let (tx, rx, owned) = {
                let s = STATE.lock();
                (s.sp.tx, s.sp.rx, s.sp.rx_owned)
            };
            if owned || rx == 0 || total_len != frag_len {
                fail(
                    World::Secure,
                    "a retrieve with the RX buffer busy or unmapped, or fragmented",
                );
            }
            let (d, n) = descriptor(World::Secure, tx, total_len);
            let Ok((req, _, _)) = MemTransactionDesc::unpack(&d[..n]) else {
                fail(World::Secure, "a retrieve request that does not decode");
            };
            let mut s = STATE.lock();
            let Some(share) = s
                .shares
                .iter_mut()
                .flatten()
                .find(|x| x.handle == req.handle.0 && x.tag == req.tag)
            else {
                return error(FfaError::InvalidParameters);
            };
            share.retrieved = true;
            let resp = MemTransactionDesc {
                sender_id: NWD_ID,
                mem_region_attr: MemRegionAttributes {
                    security: MemRegionSecurity::NonSecure,
                    mem_type: MemType::Normal {
                        cacheability: Cacheability::WriteBack,
                        shareability: Shareability::Inner,
                    },
                },
                flags: MemTransactionFlags(MemTransactionFlags::TYPE_SHARE),
                handle: Handle(share.handle),
                tag: share.tag,
            };
            let access = MemAccessPerm {
                endpoint_id: SP_ID,
                instr_access: InstuctionAccessPerm::NotExecutable,
                data_access: DataAccessPerm::ReadWrite,
                flags: 0,
            };
            let mut regions = [ConstituentMemRegion::default(); 4];
            for (r, &(address, page_cnt)) in regions.iter_mut().zip(&share.constituents) {
                *r = ConstituentMemRegion { address, page_cnt };
            }
            let mut out = [0u8; DESC_MAX];
            let n = resp.pack(&regions[..share.count], &[access], &mut out);
            let Some(n) = transport_ffa::layout::widen(&mut out, n) else {
                fail(World::Secure, "the retrieve response does not fit");
            };
            // SAFETY: the partition's RX page (FFA_RXTX_MAP), which it does
            // not own now: ours to write.
            unsafe { write(rx, &out[..n]) };
            s.sp.rx_owned = true;
            regs(Interface::MemRetrieveResp {
                total_len: n as u32,
                frag_len: n as u32,
            })
        }
        (World::Secure, Interface::MemRelinquish) => {
            let tx = STATE.lock().sp.tx;
            let mut d = [0u8; 64];
            // SAFETY: the partition's TX page.
            unsafe { read(tx, &mut d) };
            let Ok((rel, _)) = MemRelinquishDesc::unpack(&d) else {
                fail(
                    World::Secure,
                    "a relinquish descriptor that does not decode",
                );
            };
            let mut s = STATE.lock();
            match s
                .shares
                .iter_mut()
                .flatten()
                .find(|x| x.handle == rel.handle.0)
            {
                Some(share) if share.retrieved => {
                    share.retrieved = false;
                    ok()
                }
                _ => error(FfaError::InvalidParameters),
            }
        }
        (World::Normal, Interface::MemReclaim { handle, .. }) => {
            let mut s = STATE.lock();
            match s
                .shares
                .iter_mut()
                .find(|x| x.is_some_and(|x| x.handle == handle.0))
            {
                Some(slot) if slot.is_some_and(|x| x.retrieved) => error(FfaError::Denied),
                Some(slot) => {
                    *slot = None;
                    ok()
                }
                None => error(FfaError::InvalidParameters),
            }
        }
        // Notifications are answered, not delivered: the front-end polls.
        (
            _,
            Interface::NotificationBind { .. }
            | Interface::NotificationSet { .. }
            | Interface::NotificationGet { .. },
        ) => ok(),
        (World::Secure, Interface::Error { error_code, .. }) => {
            semihosting::println!("spmc-el3: the partition ended with FFA_ERROR {error_code:?}");
            fail(World::Secure, "the partition did not boot")
        }
        (w, other) => {
            semihosting::println!("spmc-el3: {w:?} world: not served: {other:?}");
            error(FfaError::NotSupported)
        }
    }
}
