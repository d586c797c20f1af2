//! A scripted FF-A SPMC double for host tests.
//!
//! What it is for: running FF-A code written for a secure partition (SP) and
//! for a normal-world (NWd) driver in one test process, each on its own
//! thread, with every call checked against the FF-A rules an SPMC enforces.
//! It models a Hafnium-like SPMC (FF-A v1.3) that knows exactly one SP (id
//! 0x8001 by default) and one NWd endpoint (id 0x0001, an OS driver without
//! a hypervisor). Code under test reaches it through [`SpConduit`] and
//! [`NwdConduit`], which implement [`smccc::Call`] like `smccc::Smc` does on
//! hardware. Every call is decoded with `arm-ffa` 0.5 (registers and memory
//! descriptors); every broken rule is recorded in [`Spmc::violations`] and
//! answered with the FF-A error the specification prescribes, so a test can
//! assert both "the exchange worked" and "nobody broke a rule".
//!
//! What it refuses to know about: more partitions or VMs, vCPUs beyond one
//! per endpoint, a hypervisor, FFA_RUN/FFA_YIELD scheduling, interrupts
//! (managed exit, SRI: the double plays the NWd scheduler itself), per-vCPU
//! notifications, notifications from the NWd to the SP, FFA_MEM_LEND /
//! FFA_MEM_DONATE, fragmented memory transactions, memory descriptors passed
//! in a buffer other than TX, the 32-bit FFA_RXTX_MAP, more than one page
//! per RX/TX buffer, FFA_PARTITION_INFO_GET, and the legacy DIRECT_REQ/RESP
//! (v1.0) interfaces. Those calls are recorded as unsupported and answered
//! NOT_SUPPORTED.
//!
//! Contract on addresses: this is a host double, so "physical addresses" are
//! host pointers. The addresses a caller maps with FFA_RXTX_MAP must be its
//! own page-aligned pages that stay valid while mapped (a leaked allocation or
//! a static, see [`leak_pages`]); the double reads and writes them directly.
//! Memory a NWd shares must come from [`Spmc::nwd_memory`].
//!
//! Specification references: "FF-A v1.2" is Arm DEN0077A v1.2 (section
//! titles are those of the ABI described), "FF-A MM" is the FF-A memory
//! management protocol chapters of the same release.

pub mod layout;
pub mod msg;

use std::alloc::{Layout, alloc_zeroed};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arm_ffa::interface_args::{
    ConsoleLogChars, Feature, MsgWaitFlags, RxTxAddr, SuccessArgs, SuccessArgsFeatures,
    SuccessArgsIdGet, TargetInfo,
};
use arm_ffa::memory_management::{
    Cacheability, ConstituentMemRegion, DataAccessPerm, Handle, InstuctionAccessPerm,
    MemAccessPerm, MemRegionAttributes, MemRegionSecurity, MemRelinquishDesc, MemTransactionDesc,
    MemTransactionFlags, MemType, Shareability, SuccessArgsMemOp,
};
use arm_ffa::notification::SuccessArgsNotificationGet;
use arm_ffa::{FfaError, FuncId, Interface, Version, VersionOut};
use uuid::Uuid;

pub use arm_ffa;

/// The FF-A page size (4 KiB) that buffer and page counts refer to.
pub const PAGE_SIZE: usize = 4096;
/// The version the double implements.
pub const SPMC_VERSION: Version = Version(1, 3);
/// The virtio-msg FF-A device UUID (Arm DEN0153), the default SP UUID.
pub const VIRTIO_MSG_DEVICE_UUID: Uuid = uuid::uuid!("c66028b5-2498-4aa1-9de7-77da6122abf0");
/// Framework notification bit "RX buffer full" (FF-A v1.2, "Framework
/// notifications"): bit 0 of the SPM (w6) or hypervisor (w7) bitmap of
/// FFA_NOTIFICATION_GET.
pub const FRAMEWORK_RX_BUFFER_FULL: u32 = 1;

/// Configuration of the double.
#[derive(Debug, Clone)]
pub struct Config {
    /// The SP's endpoint id (0x8001).
    pub sp_id: u16,
    /// The normal-world endpoint id (1).
    pub nwd_id: u16,
    /// The SPMC's id (0x8000).
    pub spmc_id: u16,
    /// The version the double answers FFA_VERSION with (1.3).
    pub version: (u16, u16),
    /// The UUID the SP serves (the virtio-msg FF-A device UUID).
    pub sp_uuid: Uuid,
    /// How long any blocking wait may last before the double records a
    /// "timeout" violation and gives up (10 s).
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sp_id: 0x8001,
            nwd_id: 0x0001,
            spmc_id: 0x8000,
            version: (1, 3),
            sp_uuid: VIRTIO_MSG_DEVICE_UUID,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Which endpoint made a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The secure partition.
    Sp,
    /// The normal-world endpoint.
    Nwd,
}

/// Life cycle of the SP as the SPMC sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpState {
    /// Spawned, has not yet called FFA_MSG_WAIT for the first time.
    Booting,
    /// Blocked in FFA_MSG_WAIT (or after FFA_MSG_SEND_DIRECT_RESP2).
    Waiting,
    /// Handling a message.
    Running,
    /// Called FFA_ERROR with this error code.
    Aborted(i32),
    /// Its thread ended (entry returned, panicked, or shut down).
    Exited,
}

/// One call made to the double, in completion order.
#[derive(Debug, Clone)]
pub struct Call {
    /// Who called.
    pub who: Role,
    /// x0..x17 as passed (a 32-bit call has x8.. zero).
    pub regs: [u64; 18],
    /// The decoded request, or why it could not be decoded.
    pub request: Result<Interface, String>,
    /// x0..x17 returned.
    pub result: [u64; 18],
}

impl Call {
    /// The function id of the request.
    pub fn fid(&self) -> u32 {
        self.regs[0] as u32
    }
}

/// A memory share as the SPMC tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareInfo {
    /// The handle the SPMC allocated.
    pub handle: u64,
    /// The sender's tag.
    pub tag: u64,
    /// (address, page count) of each constituent.
    pub constituents: Vec<(u64, u32)>,
    /// The SP has retrieved it and not relinquished it since.
    pub retrieved: bool,
    /// How many times the SP retrieved it.
    pub retrieve_count: u32,
    /// How many times the SP relinquished it.
    pub relinquish_count: u32,
}

/// Page-aligned, zeroed memory that is never freed; its "physical address" is
/// its host address.
#[derive(Debug, Clone, Copy)]
pub struct Pages {
    addr: usize,
    pages: usize,
}

/// Normal-world memory from [`Spmc::nwd_memory`].
pub type NwdPages = Pages;

impl Pages {
    /// The address (host pointer) of the first page.
    pub fn addr(&self) -> u64 {
        self.addr as u64
    }
    /// Number of 4 KiB pages.
    pub fn pages(&self) -> usize {
        self.pages
    }
    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.pages * PAGE_SIZE
    }
    /// Never empty (at least one page).
    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }
    /// Copies `data` to `offset`.
    pub fn write(&self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.len(), "write out of bounds");
        // SAFETY: the allocation is leaked (never freed) and `offset + len` is
        // in bounds; concurrent access by the other endpoint is a protocol
        // error of the test, which at worst reads torn bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                (self.addr as *mut u8).add(offset),
                data.len(),
            )
        }
    }
    /// Copies `len` bytes from `offset`.
    pub fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        read_mem(self.addr as u64 + offset as u64, len, self.len() - offset)
    }
}

/// Leaks `pages` zeroed, page-aligned pages (for RX/TX buffers of test code).
pub fn leak_pages(pages: usize) -> Pages {
    assert!(pages > 0);
    let layout = Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).expect("layout");
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { alloc_zeroed(layout) };
    assert!(!ptr.is_null(), "out of memory");
    Pages {
        addr: ptr as usize,
        pages,
    }
}

fn read_mem(addr: u64, len: usize, limit: usize) -> Vec<u8> {
    assert!(len <= limit, "read out of bounds");
    let mut v = vec![0u8; len];
    // SAFETY: `addr` is either a leaked `Pages` allocation or a buffer the
    // caller mapped with FFA_RXTX_MAP and promised to keep valid (crate
    // contract); `len` stays within it.
    unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, v.as_mut_ptr(), len) };
    v
}

fn write_mem(addr: u64, data: &[u8]) {
    // SAFETY: `addr` is an RX buffer the caller mapped with FFA_RXTX_MAP and
    // promised to keep valid (crate contract); `data` is at most one page,
    // the size of the mapping.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
}

/// Private unwind payload that ends an SP thread quietly.
struct SpExit;

#[derive(Debug, Default)]
struct Ep {
    version: Option<Version>,
    /// Some call other than FFA_VERSION succeeded since negotiation.
    used: bool,
    /// (rx, tx) host addresses.
    rxtx: Option<(u64, u64)>,
    /// The caller owns its RX buffer (the SPMC wrote into it).
    rx_owned: bool,
}

struct Share {
    tag: u64,
    constituents: Vec<ConstituentMemRegion>,
    data_access: DataAccessPerm,
    instr_access: InstuctionAccessPerm,
    attrs: MemRegionAttributes,
    retrieved: bool,
    retrieve_count: u32,
    relinquish_count: u32,
}

struct State {
    cfg: Config,
    nwd: Ep,
    sp: Ep,
    sp_state: SpState,
    /// Registers the SP's pending wait returns.
    sp_inbox: Option<[u64; 18]>,
    /// An indirect message arrived while the SP was not waiting: wake it
    /// with FFA_RUN at its next FFA_MSG_WAIT.
    sp_run_pending: bool,
    /// A DIRECT_REQ2 from the NWd awaits the SP's DIRECT_RESP2.
    req_outstanding: bool,
    nwd_reply: Option<[u64; 18]>,
    shares: BTreeMap<u64, Share>,
    next_handle: u64,
    nwd_bound: u64,
    nwd_pending: u64,
    nwd_fw_spm: u32,
    sp_fw_hyp: u32,
    nwd_mem: Vec<(u64, u64)>,
    violations: Vec<String>,
    log: Vec<Call>,
    console: Vec<u8>,
    shutdown: bool,
    /// The registers of the call being handled.
    cur_regs: [u64; 18],
}

/// The SPMC double; share it as `Arc<Spmc>`.
pub struct Spmc {
    state: Mutex<State>,
    cv: Condvar,
}

thread_local! {
    static BINDING: RefCell<Option<(Arc<Spmc>, Role)>> = const { RefCell::new(None) };
}

fn route(conduit: Role, regs: [u64; 18], is32: bool) -> [u64; 18] {
    let bound = BINDING.with(|b| b.borrow().clone());
    let Some((spmc, role)) = bound else {
        panic!(
            "ffa-double: {conduit:?} conduit used on a thread that is not bound to an Spmc \
             (call Spmc::enter_as_nwd on the test thread, run SP code through Spmc::spawn_sp)"
        );
    };
    assert_eq!(
        role, conduit,
        "ffa-double: thread bound as {role:?} used the {conduit:?} conduit"
    );
    spmc.call(role, regs, is32)
}

fn call32_via(role: Role, function: u32, args: [u32; 7]) -> [u32; 8] {
    let mut regs = [0u64; 18];
    regs[0] = function.into();
    for (r, a) in regs[1..8].iter_mut().zip(args) {
        *r = a.into();
    }
    let out = route(role, regs, true);
    let mut r = [0u32; 8];
    for (d, s) in r.iter_mut().zip(out) {
        *d = s as u32;
    }
    r
}

fn call64_via(role: Role, function: u32, args: [u64; 17]) -> [u64; 18] {
    let mut regs = [0u64; 18];
    regs[0] = function.into();
    regs[1..].copy_from_slice(&args);
    route(role, regs, false)
}

/// The conduit SP code uses (`smccc::Call`); the calling thread must have been
/// started by [`Spmc::spawn_sp`].
pub enum SpConduit {}

impl smccc::Call for SpConduit {
    fn call32(function: u32, args: [u32; 7]) -> [u32; 8] {
        call32_via(Role::Sp, function, args)
    }
    fn call64(function: u32, args: [u64; 17]) -> [u64; 18] {
        call64_via(Role::Sp, function, args)
    }
}

/// The conduit normal-world code uses; the calling thread must have called
/// [`Spmc::enter_as_nwd`].
pub enum NwdConduit {}

impl smccc::Call for NwdConduit {
    fn call32(function: u32, args: [u32; 7]) -> [u32; 8] {
        call32_via(Role::Nwd, function, args)
    }
    fn call64(function: u32, args: [u64; 17]) -> [u64; 18] {
        call64_via(Role::Nwd, function, args)
    }
}

/// Encodes an interface the SPMC returns.
fn enc(i: Interface) -> [u64; 18] {
    let mut r = [0u64; 18];
    i.to_regs(SPMC_VERSION, &mut r);
    r
}

fn error(code: FfaError) -> [u64; 18] {
    enc(Interface::error(code, true))
}

fn success(args: SuccessArgs) -> [u64; 18] {
    enc(Interface::Success {
        target_info: TargetInfo::default(),
        args,
    })
}

/// FFA_RUN as Hafnium resumes an SP blocked in FFA_MSG_WAIT: w0 =
/// FFA_RUN_32, w1 = the SP's id in bits [15:0] (Hafnium's
/// `ffa_msg_recv_return`; the spec's target-info encoding would put the id in
/// [31:16] and the vCPU in [15:0] — SP code should not rely on w1).
fn run_regs(sp_id: u16) -> [u64; 18] {
    enc(Interface::Run {
        target_info: TargetInfo {
            endpoint_id: 0,
            vcpu_id: sp_id,
        },
        is_32bit: true,
    })
}

fn success0() -> [u64; 18] {
    enc(Interface::success32_noargs())
}

/// Result of a blocking wait.
enum Woken {
    Msg([u64; 18]),
    Shutdown,
    Timeout,
    SpGone,
}

/// What to do after the call is logged and the lock released.
enum After {
    Return,
    EndSp,
}

impl State {
    fn ep(&mut self, role: Role) -> &mut Ep {
        match role {
            Role::Sp => &mut self.sp,
            Role::Nwd => &mut self.nwd,
        }
    }
    fn id(&self, role: Role) -> u16 {
        match role {
            Role::Sp => self.cfg.sp_id,
            Role::Nwd => self.cfg.nwd_id,
        }
    }
    /// Records a broken rule and returns the prescribed error.
    fn violation(&mut self, role: Role, what: &str, code: FfaError) -> [u64; 18] {
        self.violations
            .push(format!("{role:?}: {what} -> {code:?}"));
        error(code)
    }
    fn in_nwd_memory(&self, addr: u64, pages: u32) -> bool {
        let Some(end) = (pages as u64)
            .checked_mul(PAGE_SIZE as u64)
            .and_then(|l| addr.checked_add(l))
        else {
            return false;
        };
        self.nwd_mem.iter().any(|&(a, l)| addr >= a && end <= a + l)
    }
    fn sp_gone(&self) -> bool {
        matches!(self.sp_state, SpState::Aborted(_) | SpState::Exited)
    }
}

impl Spmc {
    /// A new double.
    pub fn new(cfg: Config) -> Arc<Spmc> {
        Arc::new(Spmc {
            state: Mutex::new(State {
                cfg,
                nwd: Ep::default(),
                sp: Ep::default(),
                sp_state: SpState::Booting,
                sp_inbox: None,
                sp_run_pending: false,
                req_outstanding: false,
                nwd_reply: None,
                shares: BTreeMap::new(),
                next_handle: 1,
                nwd_bound: 0,
                nwd_pending: 0,
                nwd_fw_spm: 0,
                sp_fw_hyp: 0,
                nwd_mem: Vec::new(),
                violations: Vec::new(),
                log: Vec::new(),
                console: Vec::new(),
                shutdown: false,
                cur_regs: [0; 18],
            }),
            cv: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds the current thread as the normal-world endpoint ([`NwdConduit`]).
    pub fn enter_as_nwd(self: &Arc<Self>) {
        BINDING.with(|b| *b.borrow_mut() = Some((self.clone(), Role::Nwd)));
    }

    /// Runs the SP's entry `f` on a new thread bound as the SP
    /// ([`SpConduit`]). The thread ends when `f` returns, when the SP calls
    /// FFA_ERROR, on [`Spmc::shutdown`], or on a wait timeout; a panic of `f`
    /// is recorded as a violation and propagates to `join`.
    pub fn spawn_sp(self: &Arc<Self>, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
        let me = self.clone();
        std::thread::Builder::new()
            .name("ffa-double-sp".into())
            .spawn(move || {
                BINDING.with(|b| *b.borrow_mut() = Some((me.clone(), Role::Sp)));
                let r = catch_unwind(AssertUnwindSafe(f));
                {
                    let mut st = me.lock();
                    if !matches!(st.sp_state, SpState::Aborted(_)) {
                        st.sp_state = SpState::Exited;
                    }
                    if let Err(p) = &r
                        && !p.is::<SpExit>()
                    {
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        st.violations.push(format!("Sp: SP thread panicked: {msg}"));
                    }
                    me.cv.notify_all();
                }
                BINDING.with(|b| *b.borrow_mut() = None);
                if let Err(p) = r
                    && !p.is::<SpExit>()
                {
                    resume_unwind(p);
                }
            })
            .expect("spawn SP thread")
    }

    /// Every rule broken so far, by either side.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Every call made so far, in completion order.
    pub fn log(&self) -> Vec<Call> {
        self.lock().log.clone()
    }

    /// What the SP wrote with FFA_CONSOLE_LOG.
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&self.lock().console).into_owned()
    }

    /// The SP's state.
    pub fn sp_state(&self) -> SpState {
        self.lock().sp_state
    }

    /// Waits (up to the configured timeout) until the SP leaves `Booting`;
    /// returns its state then.
    pub fn wait_sp_booted(&self) -> SpState {
        let deadline = Instant::now() + self.lock().cfg.timeout;
        let mut st = self.lock();
        while st.sp_state == SpState::Booting && Instant::now() < deadline {
            st = self
                .cv
                .wait_timeout(st, deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        st.sp_state
    }

    /// `pages` zeroed, page-aligned pages of normal-world memory the NWd may
    /// share; never freed.
    pub fn nwd_memory(&self, pages: usize) -> NwdPages {
        let p = leak_pages(pages);
        self.lock().nwd_mem.push((p.addr(), p.len() as u64));
        p
    }

    /// Declares `addr..addr + len` normal-world memory the NWd may share
    /// (memory the test allocated itself: a driver's arena, say). The
    /// caller keeps it allocated for the Spmc's life.
    pub fn add_nwd_memory(&self, addr: u64, len: u64) {
        self.lock().nwd_mem.push((addr, len));
    }

    /// Ends a blocked SP call (its thread unwinds quietly) and a blocked NWd
    /// DIRECT_REQ2 (it returns ABORTED), so tests finish.
    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.cv.notify_all();
    }

    /// All live shares.
    pub fn shares(&self) -> Vec<ShareInfo> {
        self.lock()
            .shares
            .iter()
            .map(|(&handle, s)| ShareInfo {
                handle,
                tag: s.tag,
                constituents: s
                    .constituents
                    .iter()
                    .map(|c| (c.address, c.page_cnt))
                    .collect(),
                retrieved: s.retrieved,
                retrieve_count: s.retrieve_count,
                relinquish_count: s.relinquish_count,
            })
            .collect()
    }

    /// Whether the SP holds `handle` retrieved and not relinquished.
    pub fn retrieved(&self, handle: u64) -> bool {
        self.lock().shares.get(&handle).is_some_and(|s| s.retrieved)
    }

    /// Notification bits from the SP pending for the NWd (not cleared).
    pub fn nwd_pending_notifications(&self) -> u64 {
        self.lock().nwd_pending
    }

    /// Whether the endpoint owns its RX buffer (written by the SPMC, not yet
    /// released).
    pub fn rx_owned(&self, role: Role) -> bool {
        self.lock().ep(role).rx_owned
    }

    fn call(self: &Arc<Self>, role: Role, regs: [u64; 18], is32: bool) -> [u64; 18] {
        let st = self.lock();
        let (mut st, request, result, after) = self.dispatch(st, role, regs, is32);
        st.log.push(Call {
            who: role,
            regs,
            request,
            result,
        });
        drop(st);
        self.cv.notify_all();
        match after {
            After::Return => result,
            After::EndSp => resume_unwind(Box::new(SpExit)),
        }
    }

    /// Blocks until `take` yields something, the SPMC shuts down, the SP is
    /// gone (when `until_sp_gone`), or the timeout passes.
    fn wait<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        until_sp_gone: bool,
        take: impl Fn(&mut State) -> Option<[u64; 18]>,
    ) -> (MutexGuard<'a, State>, Woken) {
        let deadline = Instant::now() + st.cfg.timeout;
        loop {
            if let Some(r) = take(&mut st) {
                return (st, Woken::Msg(r));
            }
            if st.shutdown {
                return (st, Woken::Shutdown);
            }
            if until_sp_gone && st.sp_gone() {
                return (st, Woken::SpGone);
            }
            let now = Instant::now();
            if now >= deadline {
                return (st, Woken::Timeout);
            }
            st = self
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The SP waits for its next message (FFA_MSG_WAIT or after
    /// DIRECT_RESP2).
    fn sp_wait<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        what: &str,
    ) -> (MutexGuard<'a, State>, [u64; 18], After) {
        st.sp_state = SpState::Waiting;
        if st.sp_run_pending && st.sp_inbox.is_none() {
            // See `msg_send2`: the NWd scheduler runs the SP with FFA_RUN.
            st.sp_run_pending = false;
            st.sp_inbox = Some(run_regs(st.cfg.sp_id));
        }
        self.cv.notify_all();
        let (mut st, woken) = self.wait(st, false, |s| s.sp_inbox.take());
        match woken {
            Woken::Msg(r) => {
                st.sp_state = SpState::Running;
                (st, r, After::Return)
            }
            Woken::Timeout => {
                let t = st.cfg.timeout;
                st.violations.push(format!(
                    "Sp: timeout: blocked in {what} for {t:?} with no message and no shutdown()"
                ));
                (st, error(FfaError::Aborted), After::EndSp)
            }
            Woken::Shutdown | Woken::SpGone => (st, error(FfaError::Aborted), After::EndSp),
        }
    }

    #[allow(clippy::type_complexity)]
    fn dispatch<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        role: Role,
        regs: [u64; 18],
        is32: bool,
    ) -> (
        MutexGuard<'a, State>,
        Result<Interface, String>,
        [u64; 18],
        After,
    ) {
        let fid = regs[0] as u32;
        let negotiated = st.ep(role).version;
        let decode_version = negotiated.unwrap_or(SPMC_VERSION);
        let decoded = Interface::from_regs(decode_version, &regs);
        let iface = match decoded {
            Ok(i) => i,
            Err(e) => {
                // FFA_ERROR with a code arm-ffa does not know still aborts.
                if role == Role::Sp
                    && (fid == FuncId::Error32 as u32 || fid == FuncId::Error64 as u32)
                {
                    let code = regs[2] as i32;
                    let r = self.sp_abort(&mut st, code);
                    st.violations
                        .push(format!("Sp: FFA_ERROR with unknown error code {code}"));
                    return (st, Err(e.to_string()), r.0, r.1);
                }
                let code = FfaError::from(e);
                let what = match e {
                    arm_ffa::Error::InvalidVersionForFunctionId(v, f) => format!(
                        // FF-A v1.2, FFA_VERSION: an ABI introduced after the
                        // negotiated version is not available to the caller.
                        "{f:?} needs a newer FF-A version than the negotiated {v} (FF-A v1.2, FFA_VERSION)"
                    ),
                    arm_ffa::Error::UnrecognisedFunctionId(_) => {
                        format!("unsupported call: unknown function id {fid:#x}")
                    }
                    other => format!("malformed {fid:#x}: {other}"),
                };
                let r = st.violation(role, &what, code);
                return (st, Err(e.to_string()), r, After::Return);
            }
        };

        // FF-A v1.2, "SMC Calling Convention" usage: reserved parameter
        // registers are MBZ; the callee returns INVALID_PARAMETERS. Checked by
        // re-encoding the decoded call: any bit arm-ffa does not carry was a
        // non-zero reserved bit. SMC32 calls are checked on w1..w7 only.
        let mut re = [0u64; 18];
        iface.to_regs(decode_version, &mut re);
        let n = if iface.is_32bit() {
            8
        } else {
            match iface {
                Interface::MsgSendDirectReq2 { .. }
                | Interface::MsgSendDirectResp2 { .. }
                | Interface::ConsoleLog {
                    chars: ConsoleLogChars::Chars64(_),
                }
                | Interface::Success { .. } => 18,
                // Hafnium also rejects non-zero x8..x17 of v1.2+ callers
                // (`api_extended_args_are_zero`).
                _ if decode_version >= Version(1, 2) => 18,
                _ => 8,
            }
        };
        let mbz_ok = (1..n).all(|i| {
            if iface.is_32bit() {
                regs[i] as u32 == re[i] as u32
            } else {
                regs[i] == re[i]
            }
        });
        if !mbz_ok {
            let r = st.violation(
                role,
                &format!(
                    "{fid:#x}: non-zero reserved (MBZ) register bits (FF-A v1.2, SMCCC usage)"
                ),
                FfaError::InvalidParameters,
            );
            return (st, Ok(iface), r, After::Return);
        }
        if is32 && !iface.is_32bit() {
            let r = st.violation(
                role,
                &format!("{fid:#x}: SMC64 function id issued with the SMC32 convention"),
                FfaError::NotSupported,
            );
            return (st, Ok(iface), r, After::Return);
        }

        // FF-A v1.2, FFA_VERSION: a caller negotiates its version before any
        // other FF-A call.
        if negotiated.is_none() && !matches!(iface, Interface::Version { .. }) {
            let r = st.violation(
                role,
                &format!(
                    "{fid:#x} before FFA_VERSION (FF-A v1.2, FFA_VERSION must be the first call)"
                ),
                FfaError::NotSupported,
            );
            return (st, Ok(iface), r, After::Return);
        }

        st.cur_regs = regs;
        let (st, r, after) = self.handle(st, role, iface);
        let mut st = st;
        if !matches!(iface, Interface::Version { .. })
            && Interface::from_regs(SPMC_VERSION, &r)
                .is_ok_and(|i| !matches!(i, Interface::Error { .. }))
        {
            st.ep(role).used = true;
        }
        (st, Ok(iface), r, after)
    }

    fn handle<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        role: Role,
        iface: Interface,
    ) -> (MutexGuard<'a, State>, [u64; 18], After) {
        let me = st.id(role);
        let r = match iface {
            Interface::Version {
                input_version,
                flags,
            } => self.version(&mut st, role, input_version, flags),
            Interface::IdGet => success(SuccessArgsIdGet { id: me }.into()),
            Interface::Features {
                feat_id,
                input_properties: _,
            } => features(feat_id),
            Interface::RxTxMap { addr, page_cnt } => rxtx_map(&mut st, role, addr, page_cnt),
            Interface::RxTxUnmap { id } => {
                if id != 0 {
                    // FF-A v1.2, FFA_RXTX_UNMAP: the id field is for a
                    // hypervisor unmapping a VM's buffers; MBZ otherwise.
                    st.violation(
                        role,
                        "FFA_RXTX_UNMAP with a non-zero id (FF-A v1.2, FFA_RXTX_UNMAP)",
                        FfaError::InvalidParameters,
                    )
                } else if st.ep(role).rxtx.take().is_none() {
                    // FF-A v1.2, FFA_RXTX_UNMAP: no buffer pair mapped.
                    st.violation(
                        role,
                        "FFA_RXTX_UNMAP without mapped buffers (FF-A v1.2, FFA_RXTX_UNMAP)",
                        FfaError::InvalidParameters,
                    )
                } else {
                    st.ep(role).rx_owned = false;
                    success0()
                }
            }
            Interface::RxRelease { vm_id } => {
                if vm_id != 0 {
                    // FF-A v1.2, FFA_RX_RELEASE: the VM id is a hypervisor
                    // argument, MBZ from an endpoint.
                    st.violation(
                        role,
                        "FFA_RX_RELEASE with a non-zero VM id (FF-A v1.2, FFA_RX_RELEASE)",
                        FfaError::InvalidParameters,
                    )
                } else if !st.ep(role).rx_owned {
                    // FF-A v1.2, FFA_RX_RELEASE / "RX buffer ownership": only
                    // the owner may release the buffer; DENIED otherwise.
                    st.violation(
                        role,
                        "FFA_RX_RELEASE of an RX buffer the caller does not own \
                         (FF-A v1.2, FFA_RX_RELEASE)",
                        FfaError::Denied,
                    )
                } else {
                    st.ep(role).rx_owned = false;
                    success0()
                }
            }
            Interface::ConsoleLog { chars } if role == Role::Sp => {
                let bytes = match &chars {
                    ConsoleLogChars::Chars32(c) => c.bytes().to_vec(),
                    ConsoleLogChars::Chars64(c) => c.bytes().to_vec(),
                };
                st.console.extend_from_slice(&bytes);
                success0()
            }
            Interface::MsgSend2 {
                sender_vm_id,
                flags,
            } => msg_send2(&mut st, role, sender_vm_id, flags.delay_schedule_receiver),
            Interface::NotificationGet {
                vcpu_id,
                endpoint_id,
                flags,
            } => {
                if endpoint_id != me || vcpu_id != 0 {
                    // FF-A v1.2, FFA_NOTIFICATION_GET: the receiver id is
                    // the caller's own; one vCPU here.
                    st.violation(
                        role,
                        "FFA_NOTIFICATION_GET for another endpoint or vCPU \
                         (FF-A v1.2, FFA_NOTIFICATION_GET)",
                        FfaError::InvalidParameters,
                    )
                } else {
                    let mut out = SuccessArgsNotificationGet {
                        sp_notifications: None,
                        vm_notifications: None,
                        spm_notifications: None,
                        hypervisor_notifications: None,
                    };
                    match role {
                        Role::Nwd => {
                            if flags.sp_bitmap_id {
                                out.sp_notifications = Some(std::mem::take(&mut st.nwd_pending));
                            }
                            if flags.spm_bitmap_id {
                                out.spm_notifications = Some(std::mem::take(&mut st.nwd_fw_spm));
                            }
                        }
                        Role::Sp => {
                            if flags.hyp_bitmap_id {
                                out.hypervisor_notifications =
                                    Some(std::mem::take(&mut st.sp_fw_hyp));
                            }
                        }
                    }
                    success(out.into())
                }
            }
            Interface::NotificationBind {
                sender_id,
                receiver_id,
                flags,
                bitmap,
            } if role == Role::Nwd => {
                if receiver_id != me || sender_id != st.cfg.sp_id || bitmap == 0 {
                    // FF-A v1.2, FFA_NOTIFICATION_BIND: receiver = caller,
                    // sender = a valid endpoint, a non-empty bitmap.
                    st.violation(
                        role,
                        "FFA_NOTIFICATION_BIND with bad receiver/sender/bitmap \
                         (FF-A v1.2, FFA_NOTIFICATION_BIND)",
                        FfaError::InvalidParameters,
                    )
                } else if flags.per_vcpu_notification {
                    // Hafnium v2.14+ supports global notifications only.
                    st.violation(
                        role,
                        "per-vCPU notification bind (only global notifications are supported)",
                        FfaError::InvalidParameters,
                    )
                } else {
                    st.nwd_bound |= bitmap;
                    success0()
                }
            }
            Interface::NotificationSet {
                sender_id,
                receiver_id,
                flags,
                bitmap,
            } if role == Role::Sp => {
                if sender_id != me || receiver_id != st.cfg.nwd_id || bitmap == 0 {
                    // FF-A v1.2, FFA_NOTIFICATION_SET: sender = caller.
                    st.violation(
                        role,
                        "FFA_NOTIFICATION_SET with bad sender/receiver/bitmap \
                         (FF-A v1.2, FFA_NOTIFICATION_SET)",
                        FfaError::InvalidParameters,
                    )
                } else if flags.vcpu_id.is_some() {
                    st.violation(
                        role,
                        "per-vCPU notification set (only global notifications are supported)",
                        FfaError::InvalidParameters,
                    )
                } else if bitmap & !st.nwd_bound != 0 {
                    // FF-A v1.2, FFA_NOTIFICATION_SET: DENIED when a bit is
                    // not bound to the sender by the receiver.
                    let unbound = bitmap & !st.nwd_bound;
                    st.violation(
                        role,
                        &format!(
                            "FFA_NOTIFICATION_SET of unbound bits {unbound:#x} \
                             (FF-A v1.2, FFA_NOTIFICATION_SET)"
                        ),
                        FfaError::Denied,
                    )
                } else {
                    st.nwd_pending |= bitmap;
                    success0()
                }
            }
            Interface::MemShare {
                total_len,
                frag_len,
                buf,
            } if role == Role::Nwd => mem_share(&mut st, total_len, frag_len, buf.is_some()),
            Interface::MemReclaim { handle, flags } if role == Role::Nwd => {
                match st.shares.get(&handle.0) {
                    // FF-A MM, FFA_MEM_RECLAIM: an unknown handle is
                    // INVALID_PARAMETERS.
                    None => st.violation(
                        role,
                        &format!("FFA_MEM_RECLAIM of unknown handle {:#x} (FF-A MM, FFA_MEM_RECLAIM)", handle.0),
                        FfaError::InvalidParameters,
                    ),
                    // FF-A MM, FFA_MEM_RECLAIM: DENIED while a borrower has
                    // not relinquished the region.
                    Some(s) if s.retrieved => st.violation(
                        role,
                        &format!(
                            "FFA_MEM_RECLAIM of {:#x} while the SP has not relinquished it \
                             (FF-A MM, FFA_MEM_RECLAIM)",
                            handle.0
                        ),
                        FfaError::Denied,
                    ),
                    // FF-A MM, "Memory region flags": zeroing memory that was
                    // shared (not lent/donated) is not allowed; Hafnium
                    // answers INVALID_PARAMETERS.
                    Some(_) if flags.zero_memory => st.violation(
                        role,
                        "FFA_MEM_RECLAIM asks to zero shared memory (FF-A MM, FFA_MEM_RECLAIM flags)",
                        FfaError::InvalidParameters,
                    ),
                    Some(_) => {
                        st.shares.remove(&handle.0);
                        success0()
                    }
                }
            }
            Interface::MsgSendDirectReq2 {
                src_id,
                dst_id,
                uuid,
                args: _,
            } if role == Role::Nwd => {
                return self.direct_req2(st, src_id, dst_id, uuid);
            }
            Interface::MsgWait { flags, .. } if role == Role::Sp => {
                return self.msg_wait(st, flags);
            }
            Interface::MsgSendDirectResp2 { src_id, dst_id, .. } if role == Role::Sp => {
                return self.direct_resp2(st, src_id, dst_id);
            }
            Interface::MemRetrieveReq {
                total_len,
                frag_len,
                buf,
            } if role == Role::Sp => mem_retrieve(&mut st, total_len, frag_len, buf.is_some()),
            Interface::MemRelinquish if role == Role::Sp => mem_relinquish(&mut st),
            Interface::Error { error_code, .. } if role == Role::Sp => {
                let (r, a) = self.sp_abort(&mut st, error_code.into());
                return (st, r, a);
            }
            other => st.violation(
                role,
                &format!(
                    "unsupported call {:?} from the {role:?}",
                    other.function_id()
                ),
                FfaError::NotSupported,
            ),
        };
        (st, r, After::Return)
    }

    fn version(
        &self,
        st: &mut State,
        role: Role,
        input: Version,
        flags: arm_ffa::interface_args::VersionFlags,
    ) -> [u64; 18] {
        use arm_ffa::interface_args::VersionQueryType;
        let ours = Version(st.cfg.version.0, st.cfg.version.1);
        let out = |v: VersionOut| enc(Interface::VersionOut { output_version: v });
        match flags.query_type {
            VersionQueryType::QueryNegotiated => {
                return match st.ep(role).version {
                    Some(v) => out(VersionOut::Version(v)),
                    None => out(VersionOut::NotSupported),
                };
            }
            VersionQueryType::QueryCompatibility => {
                return out(VersionOut::Version(ours));
            }
            VersionQueryType::Negotiate => {}
        }
        // FF-A v1.2, FFA_VERSION: a major version the callee does not
        // implement is NOT_SUPPORTED.
        if input.0 != ours.0 {
            st.violations.push(format!(
                "{role:?}: FFA_VERSION {input} has a major version the SPMC does not implement"
            ));
            return out(VersionOut::NotSupported);
        }
        let v = if input < ours { input } else { ours };
        let ep = st.ep(role);
        if let Some(prev) = ep.version
            && ep.used
            && prev != v
        {
            // FF-A v1.2, FFA_VERSION: the negotiated version cannot change
            // once other ABIs have been used.
            st.violations.push(format!(
                "{role:?}: FFA_VERSION renegotiation {prev} -> {v} after other calls (FF-A v1.2, FFA_VERSION)"
            ));
            return out(VersionOut::NotSupported);
        }
        ep.version = Some(v);
        out(VersionOut::Version(ours))
    }

    fn sp_abort(&self, st: &mut State, code: i32) -> ([u64; 18], After) {
        // FF-A v1.2, FFA_ERROR: an SP that cannot initialise (or gives up)
        // reports it with FFA_ERROR; the SPMC puts it in the aborted state.
        st.sp_state = SpState::Aborted(code);
        st.sp_inbox = None;
        self.cv.notify_all();
        (success0(), After::EndSp)
    }

    fn msg_wait<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        flags: MsgWaitFlags,
    ) -> (MutexGuard<'a, State>, [u64; 18], After) {
        if st.req_outstanding {
            // FF-A v1.2, FFA_MSG_WAIT / direct messaging: a partition with a
            // pending direct request must answer it with a direct response
            // first; Hafnium denies the state transition.
            let r = st.violation(
                Role::Sp,
                "FFA_MSG_WAIT while a DIRECT_REQ2 is unanswered (FF-A v1.2, FFA_MSG_WAIT)",
                FfaError::Denied,
            );
            return (st, r, After::Return);
        }
        // FF-A v1.2, FFA_MSG_WAIT: unless the "retain RX buffer ownership"
        // flag is set, the call releases the caller's RX buffer.
        if !flags.retain_rx_buffer {
            st.sp.rx_owned = false;
        }
        self.sp_wait(st, "FFA_MSG_WAIT")
    }

    fn direct_resp2<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        src: u16,
        dst: u16,
    ) -> (MutexGuard<'a, State>, [u64; 18], After) {
        if !st.req_outstanding {
            // FF-A v1.2, FFA_MSG_SEND_DIRECT_RESP2: only valid as the answer
            // to a pending DIRECT_REQ2; DENIED otherwise.
            let r = st.violation(
                Role::Sp,
                "DIRECT_RESP2 without a pending DIRECT_REQ2 (FF-A v1.2, FFA_MSG_SEND_DIRECT_RESP2)",
                FfaError::Denied,
            );
            return (st, r, After::Return);
        }
        if src != st.cfg.sp_id || dst != st.cfg.nwd_id {
            // FF-A v1.2, FFA_MSG_SEND_DIRECT_RESP2: source = caller,
            // destination = the sender of the request.
            let r = st.violation(
                Role::Sp,
                &format!(
                    "DIRECT_RESP2 {src:#x} -> {dst:#x} does not answer the request's sender \
                     (FF-A v1.2, FFA_MSG_SEND_DIRECT_RESP2)"
                ),
                FfaError::InvalidParameters,
            );
            return (st, r, After::Return);
        }
        // The registers the SP passed are what the NWd's DIRECT_REQ2 returns.
        let regs = st.cur_regs;
        st.req_outstanding = false;
        st.nwd_reply = Some(regs);
        self.sp_wait(st, "FFA_MSG_SEND_DIRECT_RESP2")
    }

    fn direct_req2<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        src: u16,
        dst: u16,
        uuid: Uuid,
    ) -> (MutexGuard<'a, State>, [u64; 18], After) {
        let role = Role::Nwd;
        let r = if src != st.cfg.nwd_id || dst != st.cfg.sp_id {
            // FF-A v1.2, FFA_MSG_SEND_DIRECT_REQ2: source = caller,
            // destination = an existing partition.
            Some(st.violation(
                role,
                &format!(
                    "DIRECT_REQ2 {src:#x} -> {dst:#x}: wrong source or unknown destination \
                     (FF-A v1.2, FFA_MSG_SEND_DIRECT_REQ2)"
                ),
                FfaError::InvalidParameters,
            ))
        } else if !uuid.is_nil() && uuid != st.cfg.sp_uuid {
            // FF-A v1.2, FFA_MSG_SEND_DIRECT_REQ2: the UUID must be one the
            // partition serves (or Nil for its default service).
            Some(st.violation(
                role,
                &format!(
                    "DIRECT_REQ2 to a UUID the SP does not serve: {uuid} \
                     (FF-A v1.2, FFA_MSG_SEND_DIRECT_REQ2)"
                ),
                FfaError::InvalidParameters,
            ))
        } else {
            match st.sp_state {
                // FF-A v1.2, "Partition runtime states": an aborted partition
                // cannot receive messages; Hafnium answers ABORTED.
                SpState::Aborted(_) | SpState::Exited => Some(error(FfaError::Aborted)),
                // FF-A v1.2, FFA_MSG_SEND_DIRECT_REQ2: BUSY if the target
                // is not in a state to receive (booting, or running).
                SpState::Booting | SpState::Running => Some(error(FfaError::Busy)),
                SpState::Waiting if st.sp_inbox.is_some() => Some(error(FfaError::Busy)),
                SpState::Waiting => None,
            }
        };
        if let Some(r) = r {
            return (st, r, After::Return);
        }
        let req = st.cur_regs;
        st.sp_inbox = Some(req);
        st.req_outstanding = true;
        st.nwd_reply = None;
        self.cv.notify_all();
        let (mut st, woken) = self.wait(st, true, |s| s.nwd_reply.take());
        let r = match woken {
            Woken::Msg(r) => r,
            Woken::Shutdown | Woken::SpGone => {
                st.req_outstanding = false;
                error(FfaError::Aborted)
            }
            Woken::Timeout => {
                st.req_outstanding = false;
                st.sp_inbox = None;
                let t = st.cfg.timeout;
                st.violation(
                    role,
                    &format!("timeout: DIRECT_REQ2 got no DIRECT_RESP2 within {t:?}"),
                    FfaError::Aborted,
                )
            }
        };
        (st, r, After::Return)
    }
}

fn features(feat: Feature) -> [u64; 18] {
    match feat {
        Feature::FuncId(f) => {
            let supported = matches!(
                f,
                FuncId::Error32
                    | FuncId::Success32
                    | FuncId::Version
                    | FuncId::Features
                    | FuncId::IdGet
                    | FuncId::RxTxMap64
                    | FuncId::RxTxUnmap
                    | FuncId::RxRelease
                    | FuncId::ConsoleLog32
                    | FuncId::ConsoleLog64
                    | FuncId::MsgWait32
                    | FuncId::MsgSendDirectReq64_2
                    | FuncId::MsgSendDirectResp64_2
                    | FuncId::MsgSend2
                    | FuncId::MemShare64
                    | FuncId::MemRetrieveReq64
                    | FuncId::MemRelinquish
                    | FuncId::MemReclaim
                    | FuncId::NotificationBind
                    | FuncId::NotificationSet
                    | FuncId::NotificationGet
            );
            if !supported {
                return error(FfaError::NotSupported);
            }
            // FF-A v1.2, FFA_FEATURES: for FFA_RXTX_MAP w2[1:0] = minimum
            // buffer size (0: 4 KiB); other interfaces report no properties.
            success(SuccessArgsFeatures { properties: [0, 0] }.into())
        }
        _ => error(FfaError::NotSupported),
    }
}

fn rxtx_map(st: &mut State, role: Role, addr: RxTxAddr, pages: u32) -> [u64; 18] {
    let RxTxAddr::Addr64 { rx, tx } = addr else {
        return st.violation(
            role,
            "unsupported call: 32-bit FFA_RXTX_MAP (the double models the SMC64 form)",
            FfaError::NotSupported,
        );
    };
    if pages != 1 {
        // FF-A v1.2, FFA_RXTX_MAP: the page count must be one the SPMC
        // supports (FFA_FEATURES); the double supports exactly one page.
        return st.violation(
            role,
            &format!("FFA_RXTX_MAP with {pages} pages (FF-A v1.2, FFA_RXTX_MAP)"),
            FfaError::InvalidParameters,
        );
    }
    if rx == 0 || tx == 0 || rx % PAGE_SIZE as u64 != 0 || tx % PAGE_SIZE as u64 != 0 || rx == tx {
        // FF-A v1.2, FFA_RXTX_MAP: buffers are distinct, non-null and
        // aligned to the minimum buffer size.
        return st.violation(
            role,
            &format!("FFA_RXTX_MAP rx {rx:#x} tx {tx:#x}: null, unaligned or identical (FF-A v1.2, FFA_RXTX_MAP)"),
            FfaError::InvalidParameters,
        );
    }
    if st.ep(role).rxtx.is_some() {
        // FF-A v1.2, FFA_RXTX_MAP: a buffer pair is already mapped: DENIED.
        return st.violation(
            role,
            "FFA_RXTX_MAP while a buffer pair is mapped (FF-A v1.2, FFA_RXTX_MAP)",
            FfaError::Denied,
        );
    }
    let ep = st.ep(role);
    ep.rxtx = Some((rx, tx));
    ep.rx_owned = false;
    success0()
}

fn msg_send2(st: &mut State, role: Role, sender_vm_id: u16, delay_sri: bool) -> [u64; 18] {
    let (my_ver, tx) = {
        let ep = st.ep(role);
        (
            ep.version.unwrap_or(SPMC_VERSION),
            ep.rxtx.map(|(_, tx)| tx),
        )
    };
    if sender_vm_id != 0 {
        // FF-A v1.2, FFA_MSG_SEND2: the sender VM id is for a hypervisor
        // forwarding a message; MBZ from an endpoint.
        return st.violation(
            role,
            "FFA_MSG_SEND2 with a sender VM id (FF-A v1.2, FFA_MSG_SEND2)",
            FfaError::InvalidParameters,
        );
    }
    if role == Role::Nwd && delay_sri {
        // FF-A v1.2, FFA_MSG_SEND2: the delay-SRI flag is for SPs only.
        return st.violation(
            role,
            "FFA_MSG_SEND2 from the NWd with flags set (FF-A v1.2, FFA_MSG_SEND2)",
            FfaError::InvalidParameters,
        );
    }
    let Some(tx) = tx else {
        // FF-A v1.2, FFA_MSG_SEND2: the message is read from the caller's
        // TX buffer; without one Hafnium answers DENIED.
        return st.violation(
            role,
            "FFA_MSG_SEND2 without a mapped TX buffer (FF-A v1.2, FFA_MSG_SEND2)",
            FfaError::Denied,
        );
    };
    let raw = read_mem(tx, PAGE_SIZE, PAGE_SIZE);
    let hdr = msg::MsgHeader::read(&raw).expect("one page holds a header");
    let me = st.id(role);
    let peer_role = match role {
        Role::Sp => Role::Nwd,
        Role::Nwd => Role::Sp,
    };
    let peer = st.id(peer_role);
    let min_off = if my_ver >= Version(1, 2) {
        msg::HEADER_SIZE
    } else {
        msg::HEADER_SIZE_V1_1
    };
    // FF-A v1.2, "Partition message header": sender = caller, receiver = a
    // different, existing endpoint; payload offset at least the header size
    // of the caller's version; offset + size within the buffer; reserved
    // fields SBZ (Hafnium does not check those; the double does).
    let problem = if hdr.sender != me {
        Some(format!(
            "header sender {:#x} is not the caller {me:#x}",
            hdr.sender
        ))
    } else if hdr.receiver != peer {
        Some(format!(
            "header receiver {:#x} is not {peer:#x}",
            hdr.receiver
        ))
    } else if (hdr.offset as usize) < min_off {
        Some(format!(
            "payload offset {:#x} overlaps the {min_off:#x}-byte header",
            hdr.offset
        ))
    } else if hdr.offset as u64 + hdr.size as u64 > PAGE_SIZE as u64 {
        Some(format!(
            "offset {:#x} + size {:#x} exceeds the buffer",
            hdr.offset, hdr.size
        ))
    } else if hdr.flags != 0 || hdr.reserved_1 != 0 || hdr.reserved_2 != 0 {
        Some("reserved header fields are not zero".to_string())
    } else {
        None
    };
    if let Some(p) = problem {
        return st.violation(
            role,
            &format!("FFA_MSG_SEND2: {p} (FF-A v1.2, Partition message header)"),
            FfaError::InvalidParameters,
        );
    }
    let (rx, owned) = {
        let ep = st.ep(peer_role);
        (ep.rxtx.map(|(rx, _)| rx), ep.rx_owned)
    };
    let Some(rx) = rx else {
        // Hafnium: a receiver without an RX buffer is "busy".
        return error(FfaError::Busy);
    };
    if owned {
        // FF-A v1.2, FFA_MSG_SEND2: BUSY when the receiver's RX buffer is
        // not available (the receiver still owns it). Not a violation.
        return error(FfaError::Busy);
    }
    let total = (hdr.offset + hdr.size) as usize;
    let mut msg = raw[..total].to_vec();
    // FF-A v1.3, section 4.10 (as Hafnium implements it): the unused tail of
    // the RX buffer is zeroed.
    msg.resize(PAGE_SIZE, 0);
    write_mem(rx, &msg);
    st.ep(peer_role).rx_owned = true;
    match peer_role {
        Role::Sp => {
            // Hafnium (api_ffa_msg_send2): a message from a VM sets the
            // hypervisor framework notification "RX buffer full" of the SP
            // and pends the schedule receiver interrupt to the NWd; the NWd
            // scheduler then runs the SP with FFA_RUN, which its blocked
            // FFA_MSG_WAIT returns. The double plays that scheduler: the SP
            // is woken with FFA_RUN at once (or at its next FFA_MSG_WAIT).
            st.sp_fw_hyp |= FRAMEWORK_RX_BUFFER_FULL;
            st.sp_run_pending = true;
            if st.sp_state == SpState::Waiting && st.sp_inbox.is_none() {
                st.sp_run_pending = false;
                st.sp_inbox = Some(run_regs(st.cfg.sp_id));
            }
        }
        Role::Nwd => {
            // Hafnium: a message from an SP sets the SPM framework
            // notification "RX buffer full" of the receiving VM (and the
            // SRI, which the double does not model: the NWd polls
            // FFA_NOTIFICATION_GET).
            st.nwd_fw_spm |= FRAMEWORK_RX_BUFFER_FULL;
        }
    }
    success0()
}

fn expected_access_size(v: Version) -> u32 {
    if v >= Version(1, 2) {
        layout::ACCESS_DESC_SIZE_V1_2
    } else {
        layout::ACCESS_DESC_SIZE_V1_1
    }
}

/// Reads and decodes the memory transaction descriptor in `role`'s TX
/// buffer; `Err` carries the error registers already recorded.
#[allow(clippy::type_complexity)]
fn read_tx_desc(
    st: &mut State,
    role: Role,
    what: &str,
    total_len: u32,
    frag_len: u32,
    has_buf: bool,
) -> Result<
    (
        MemTransactionDesc,
        Vec<MemAccessPerm>,
        Option<Vec<ConstituentMemRegion>>,
        [u8; 48],
    ),
    Box<[u64; 18]>,
> {
    if has_buf {
        // FF-A MM, "Buffer" arguments: the descriptor in a separate buffer is
        // optional; Hafnium supports only the TX buffer: INVALID_PARAMETERS.
        return Err(Box::new(st.violation(
            role,
            &format!("{what} with the descriptor outside the TX buffer (not supported by Hafnium)"),
            FfaError::InvalidParameters,
        )));
    }
    if total_len != frag_len {
        // Hafnium rejects fragmented retrieve requests; the double does not
        // model fragments for shares either.
        return Err(Box::new(st.violation(
            role,
            &format!("{what}: fragmented transaction (total {total_len} != fragment {frag_len}) not modelled"),
            FfaError::InvalidParameters,
        )));
    }
    let (ver, tx) = {
        let ep = st.ep(role);
        (
            ep.version.unwrap_or(SPMC_VERSION),
            ep.rxtx.map(|(_, tx)| tx),
        )
    };
    let Some(tx) = tx else {
        // FF-A MM: the descriptor is read from the TX buffer; none mapped.
        return Err(Box::new(st.violation(
            role,
            &format!("{what} without a mapped TX buffer (FF-A MM, Transaction descriptor in TX)"),
            FfaError::Denied,
        )));
    };
    if total_len as usize > PAGE_SIZE || (total_len as usize) < layout::TRANSACTION_HEADER_SIZE {
        // FF-A MM: the length must cover a descriptor and fit the buffer.
        return Err(Box::new(st.violation(
            role,
            &format!("{what}: length {total_len} does not fit the TX buffer"),
            FfaError::InvalidParameters,
        )));
    }
    let raw = read_mem(tx, total_len as usize, PAGE_SIZE);
    let size = layout::access_desc_size(&raw).unwrap_or(0);
    let want = expected_access_size(ver);
    if size != want {
        // FF-A MM v1.2, "Endpoint memory access descriptor" / memory
        // transaction descriptor field "size of each endpoint memory access
        // descriptor": 32 bytes for a v1.2+ caller, 16 for v1.1 (Hafnium
        // checks the size against the caller's version).
        return Err(Box::new(st.violation(
            role,
            &format!(
                "{what}: endpoint memory access descriptor size {size}, caller's version {ver} \
                 requires {want} (FF-A MM v1.2, Endpoint memory access descriptor)"
            ),
            FfaError::InvalidParameters,
        )));
    }
    let mut header = [0u8; 48];
    header.copy_from_slice(&raw[..48]);
    if header[36..48].iter().any(|&b| b != 0) {
        // FF-A MM, "Memory transaction descriptor": reserved fields MBZ.
        return Err(Box::new(st.violation(
            role,
            &format!("{what}: reserved transaction descriptor fields are not zero (FF-A MM)"),
            FfaError::InvalidParameters,
        )));
    }
    let narrow = match layout::to_v1_1(&raw) {
        Ok(n) => n,
        Err(e) => {
            return Err(Box::new(st.violation(
                role,
                &format!(
                    "{what}: malformed descriptor: {e} (FF-A MM, Memory transaction descriptor)"
                ),
                FfaError::InvalidParameters,
            )));
        }
    };
    let decoded = MemTransactionDesc::unpack(&narrow).and_then(|(d, acc, cons)| {
        let acc = acc.collect::<Result<Vec<_>, _>>()?;
        let cons = match cons {
            Some(c) => Some(c.collect::<Result<Vec<_>, _>>()?),
            None => None,
        };
        Ok((d, acc, cons))
    });
    match decoded {
        Ok((d, acc, cons)) => Ok((d, acc, cons, header)),
        Err(e) => Err(Box::new(st.violation(
            role,
            &format!("{what}: malformed descriptor: {e} (FF-A MM, Memory transaction descriptor)"),
            FfaError::InvalidParameters,
        ))),
    }
}

fn normal_wb_inner() -> MemType {
    MemType::Normal {
        cacheability: Cacheability::WriteBack,
        shareability: Shareability::Inner,
    }
}

fn mem_share(st: &mut State, total_len: u32, frag_len: u32, has_buf: bool) -> [u64; 18] {
    let role = Role::Nwd;
    let what = "FFA_MEM_SHARE";
    let (d, acc, cons, _) = match read_tx_desc(st, role, what, total_len, frag_len, has_buf) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let sp = st.cfg.sp_id;
    let nwd = st.cfg.nwd_id;
    let type_bits = d.flags.0 & (0b11 << 3);
    // FF-A MM, "Memory transaction descriptor" and "Memory region
    // attributes"/"flags" usage for FFA_MEM_SHARE; each answered
    // INVALID_PARAMETERS as Hafnium's sanity checks do.
    let problem = if d.sender_id != nwd {
        Some(format!("sender {:#x} is not the caller", d.sender_id))
    } else if d.handle.0 != 0 {
        Some("handle must be 0 from the sender (the SPMC allocates it)".into())
    } else if d.flags.0 & !(MemTransactionFlags::MEM_SHARE_MASK | (0b11 << 3)) != 0 {
        Some(format!(
            "flags {:#x} has bits not valid for a share",
            d.flags.0
        ))
    } else if d.flags.0 & MemTransactionFlags::ZERO_MEMORY != 0 {
        Some("zero-memory flag is not allowed when sharing".into())
    } else if type_bits != 0 && type_bits != MemTransactionFlags::TYPE_SHARE {
        Some("transaction type in flags is not 'share'".into())
    } else if d.mem_region_attr.security != MemRegionSecurity::Secure {
        Some("NS bit set by the sender (only the SPMC sets it, in a retrieve response)".into())
    } else if d.mem_region_attr.mem_type != normal_wb_inner() {
        Some(format!(
            "memory type {:?}: the SP expects Normal write-back inner-shareable",
            d.mem_region_attr.mem_type
        ))
    } else if acc.len() != 1 || acc[0].endpoint_id != sp {
        Some("exactly one receiver, the SP, is modelled".into())
    } else if acc[0].data_access != DataAccessPerm::ReadWrite {
        Some(format!("data access {:?}, RW expected", acc[0].data_access))
    } else if acc[0].instr_access == InstuctionAccessPerm::Executable {
        // FF-A MM, "Memory access permissions descriptor": for a share the
        // sender must not specify executable access (Not specified or NX).
        Some("instruction access 'executable' is not allowed for a share".into())
    } else if acc[0].flags != 0 {
        Some(format!(
            "memory access flags {:#x}: MBZ in a share",
            acc[0].flags
        ))
    } else {
        None
    };
    if let Some(p) = problem {
        return st.violation(
            role,
            &format!("{what}: {p} (FF-A MM, FFA_MEM_SHARE descriptor usage)"),
            FfaError::InvalidParameters,
        );
    }
    let Some(cons) = cons.filter(|c| !c.is_empty()) else {
        return st.violation(
            role,
            &format!("{what}: no composite memory region / constituents (FF-A MM)"),
            FfaError::InvalidParameters,
        );
    };
    for c in &cons {
        if c.address % PAGE_SIZE as u64 != 0 || c.page_cnt == 0 {
            // FF-A MM, "Constituent memory region descriptor": 4K-aligned
            // address, non-zero page count.
            return st.violation(
                role,
                &format!(
                    "{what}: constituent {:#x}+{} pages is unaligned or empty (FF-A MM)",
                    c.address, c.page_cnt
                ),
                FfaError::InvalidParameters,
            );
        }
        if !st.in_nwd_memory(c.address, c.page_cnt) {
            // FF-A MM: the sender must own the memory it shares; Hafnium
            // answers DENIED when the pages are not the sender's.
            return st.violation(
                role,
                &format!(
                    "{what}: constituent {:#x}+{} pages is not normal-world memory from nwd_memory()",
                    c.address, c.page_cnt
                ),
                FfaError::Denied,
            );
        }
        let overlaps = st.shares.values().flat_map(|s| &s.constituents).any(|o| {
            let (a0, a1) = (c.address, c.address + c.page_cnt as u64 * PAGE_SIZE as u64);
            let (b0, b1) = (o.address, o.address + o.page_cnt as u64 * PAGE_SIZE as u64);
            a0 < b1 && b0 < a1
        });
        if overlaps {
            // FF-A MM: memory already in a transaction is no longer in the
            // sender's exclusive state: DENIED.
            return st.violation(
                role,
                &format!(
                    "{what}: constituent {:#x} is already shared (FF-A MM)",
                    c.address
                ),
                FfaError::Denied,
            );
        }
    }
    // Hafnium's SPMC sets bit 63 in handles it allocates.
    let handle = (1u64 << 63) | st.next_handle;
    st.next_handle += 1;
    st.shares.insert(
        handle,
        Share {
            tag: d.tag,
            constituents: cons,
            data_access: acc[0].data_access,
            instr_access: acc[0].instr_access,
            attrs: d.mem_region_attr,
            retrieved: false,
            retrieve_count: 0,
            relinquish_count: 0,
        },
    );
    success(
        SuccessArgsMemOp {
            handle: Handle(handle),
        }
        .into(),
    )
}

fn mem_retrieve(st: &mut State, total_len: u32, frag_len: u32, has_buf: bool) -> [u64; 18] {
    let role = Role::Sp;
    let what = "FFA_MEM_RETRIEVE_REQ";
    let sp = st.cfg.sp_id;
    let nwd = st.cfg.nwd_id;
    let Some((rx, _)) = st.sp.rxtx else {
        return st.violation(
            role,
            &format!("{what} without mapped RX/TX buffers (FF-A MM, FFA_MEM_RETRIEVE_REQ)"),
            FfaError::Denied,
        );
    };
    if st.sp.rx_owned {
        // FF-A MM, FFA_MEM_RETRIEVE_REQ: the response goes to the caller's
        // RX buffer, which must be free; Hafnium answers BUSY.
        return st.violation(
            role,
            &format!(
                "{what} while the SP still owns its RX buffer (FF-A MM, FFA_MEM_RETRIEVE_REQ; \
                 FF-A v1.2, RX buffer ownership)"
            ),
            FfaError::Busy,
        );
    }
    let (d, acc, _cons, _) = match read_tx_desc(st, role, what, total_len, frag_len, has_buf) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some(share) = st.shares.get(&d.handle.0) else {
        // FF-A MM, FFA_MEM_RETRIEVE_REQ: unknown handle: INVALID_PARAMETERS.
        return st.violation(
            role,
            &format!(
                "{what}: unknown handle {:#x} (FF-A MM, FFA_MEM_RETRIEVE_REQ)",
                d.handle.0
            ),
            FfaError::InvalidParameters,
        );
    };
    // FF-A MM, "Memory retrieve request" usage: tag and sender must match
    // the transaction; the receiver must be the caller; requested
    // permissions must not exceed what the sender granted.
    let problem = if d.tag != share.tag {
        Some((
            format!(
                "tag {:#x} does not match the share's {:#x}",
                d.tag, share.tag
            ),
            FfaError::InvalidParameters,
        ))
    } else if d.sender_id != nwd {
        Some((
            format!(
                "sender {:#x} is not the share's sender {nwd:#x}",
                d.sender_id
            ),
            FfaError::InvalidParameters,
        ))
    } else if acc.len() != 1 || acc[0].endpoint_id != sp {
        Some((
            "the receiver list must be exactly the caller".to_string(),
            FfaError::InvalidParameters,
        ))
    } else if acc[0].data_access == DataAccessPerm::ReadWrite
        && share.data_access != DataAccessPerm::ReadWrite
    {
        Some((
            "requests more data access than granted".into(),
            FfaError::Denied,
        ))
    } else if acc[0].instr_access == InstuctionAccessPerm::Executable {
        Some((
            "requests executable access to shared memory".into(),
            FfaError::Denied,
        ))
    } else if d.flags.0 & MemTransactionFlags::ZERO_MEMORY != 0 {
        // Hafnium: "Borrower needs memory cleared" without the sender's flag.
        Some((
            "asks to zero memory the sender did not ask to zero".into(),
            FfaError::Denied,
        ))
    } else if d.mem_region_attr.mem_type != MemType::NotSpecified
        && d.mem_region_attr.mem_type != share.attrs.mem_type
    {
        Some((
            "requests memory attributes other than the share's".into(),
            FfaError::Denied,
        ))
    } else {
        None
    };
    if let Some((p, code)) = problem {
        return st.violation(
            role,
            &format!("{what}: {p} (FF-A MM, FFA_MEM_RETRIEVE_REQ)"),
            code,
        );
    }
    let share = st.shares.get_mut(&d.handle.0).expect("checked");
    // The retrieve response: the SPMC marks normal-world memory
    // non-secure (FF-A MM, "Memory region attributes", NS bit set by the
    // SPMC in FFA_MEM_RETRIEVE_RESP to an SP).
    let resp = MemTransactionDesc {
        sender_id: nwd,
        mem_region_attr: MemRegionAttributes {
            security: MemRegionSecurity::NonSecure,
            mem_type: share.attrs.mem_type,
        },
        flags: MemTransactionFlags(MemTransactionFlags::TYPE_SHARE),
        handle: d.handle,
        tag: share.tag,
    };
    let perm = MemAccessPerm {
        endpoint_id: sp,
        instr_access: if share.instr_access == InstuctionAccessPerm::NotSpecified {
            InstuctionAccessPerm::NotExecutable
        } else {
            share.instr_access
        },
        data_access: DataAccessPerm::ReadWrite,
        flags: 0,
    };
    let mut buf = vec![0u8; PAGE_SIZE];
    let n = resp.pack(&share.constituents, &[perm], &mut buf);
    let ver = st.sp.version.unwrap_or(SPMC_VERSION);
    let out = match layout::relayout(&buf[..n], expected_access_size(ver)) {
        Ok(o) => o,
        Err(e) => panic!("ffa-double: cannot lay out a retrieve response: {e}"),
    };
    if out.len() > PAGE_SIZE {
        return st.violation(
            role,
            &format!("{what}: response does not fit one page (fragmentation not modelled)"),
            FfaError::NoMemory,
        );
    }
    let share = st.shares.get_mut(&d.handle.0).expect("checked");
    share.retrieved = true;
    share.retrieve_count += 1;
    let mut page = out.clone();
    page.resize(PAGE_SIZE, 0);
    write_mem(rx, &page);
    st.sp.rx_owned = true;
    enc(Interface::MemRetrieveResp {
        total_len: out.len() as u32,
        frag_len: out.len() as u32,
    })
}

fn mem_relinquish(st: &mut State) -> [u64; 18] {
    let role = Role::Sp;
    let sp = st.cfg.sp_id;
    let Some((_, tx)) = st.sp.rxtx else {
        return st.violation(
            role,
            "FFA_MEM_RELINQUISH without a mapped TX buffer (FF-A MM, FFA_MEM_RELINQUISH)",
            FfaError::Denied,
        );
    };
    let raw = read_mem(tx, PAGE_SIZE, PAGE_SIZE);
    let (desc, eps) = match MemRelinquishDesc::unpack(&raw) {
        Ok((d, e)) => (d, e.collect::<Vec<u16>>()),
        Err(e) => {
            return st.violation(
                role,
                &format!("FFA_MEM_RELINQUISH: malformed descriptor: {e} (FF-A MM, Memory relinquish descriptor)"),
                FfaError::InvalidParameters,
            );
        }
    };
    let problem = if eps != [sp] {
        // FF-A MM, "Memory relinquish descriptor": the endpoint list is the
        // caller (one endpoint, no hypervisor relinquishing on its behalf).
        Some(format!(
            "endpoints {eps:x?} must be exactly the caller {sp:#x}"
        ))
    } else if desc.flags & !0b11 != 0 {
        // FF-A MM, relinquish flags: bit 0 zero-after, bit 1 time slicing;
        // the rest MBZ.
        Some(format!("flags {:#x} has reserved bits set", desc.flags))
    } else if desc.flags & 1 != 0 {
        // Hafnium: "Memory which was shared can't be cleared".
        Some("zero-memory flag on shared memory".into())
    } else {
        None
    };
    if let Some(p) = problem {
        return st.violation(
            role,
            &format!("FFA_MEM_RELINQUISH: {p} (FF-A MM, FFA_MEM_RELINQUISH)"),
            FfaError::InvalidParameters,
        );
    }
    match st.shares.get_mut(&desc.handle.0) {
        Some(s) if s.retrieved => {
            s.retrieved = false;
            s.relinquish_count += 1;
            success0()
        }
        // FF-A MM, FFA_MEM_RELINQUISH: the caller must have retrieved the
        // region; Hafnium answers INVALID_PARAMETERS otherwise.
        Some(_) => st.violation(
            role,
            &format!(
                "FFA_MEM_RELINQUISH of {:#x} which the SP has not retrieved (FF-A MM, FFA_MEM_RELINQUISH)",
                desc.handle.0
            ),
            FfaError::InvalidParameters,
        ),
        None => st.violation(
            role,
            &format!(
                "FFA_MEM_RELINQUISH of unknown handle {:#x} (FF-A MM, FFA_MEM_RELINQUISH)",
                desc.handle.0
            ),
            FfaError::InvalidParameters,
        ),
    }
}

/// Makes one FF-A call through conduit `C` (always `call64`, as x0..x17 may
/// come back even for a 32-bit function id), encoding the request and decoding the reply with
/// `arm-ffa` at `version`. FFA_VERSION's reply decodes as
/// [`Interface::VersionOut`].
pub fn invoke<C: smccc::Call>(
    version: Version,
    call: Interface,
) -> Result<Interface, arm_ffa::Error> {
    let mut regs = [0u64; 18];
    call.to_regs(version, &mut regs);
    // Always the SMC64 register file: an SP's FFA_MSG_WAIT (a 32-bit
    // function id) may be answered with a DIRECT_REQ2 in x0..x17.
    let mut a = [0u64; 17];
    a.copy_from_slice(&regs[1..]);
    let out = C::call64(regs[0] as u32, a);
    if matches!(call, Interface::Version { .. }) {
        return Ok(Interface::VersionOut {
            output_version: VersionOut::try_from(out[0] as u32)?,
        });
    }
    Interface::from_regs(version, &out)
}
