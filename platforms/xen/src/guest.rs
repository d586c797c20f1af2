//! What a bare-metal guest reads that Xen writes: the pending events in
//! the shared info page, and the runstate area, whose entry times are
//! Xen's system time — the clock `SCHEDOP_poll` timeouts count in.

use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::Port;
use crate::abi::{SHARED_INFO_EVTCHN_PENDING, VcpuRunstateInfo};

/// The level-1 table (1 GiB blocks) a bare-metal DomU of ours boots with
/// (`aarch64-rt`'s initial page table, MAIR index 1 normal memory): GiB 0,
/// the unpopulated guest-physical space below RAM where Xen's pages and
/// mapped grants go, and GiB 1, RAM from 0x4000_0000; both Normal
/// Write-Back Inner Shareable, which Xen requires of memory shared with it
/// and other domains (`arch-arm.h`). Nothing else is mapped.
pub const BOOT_MAP: [usize; 512] = {
    // Valid block, AttrIndx 1, inner shareable, accessed.
    const NORMAL: usize = 1 | (1 << 2) | (3 << 8) | (1 << 10);
    let mut t = [0; 512];
    t[0] = NORMAL;
    t[1] = NORMAL | 0x4000_0000;
    t
};

/// The shared info page, mapped: the 2-level event ABI's pending bits.
#[derive(Debug, Clone, Copy)]
pub struct SharedInfo(NonNull<u8>);

impl SharedInfo {
    /// The shared info page at `page`.
    ///
    /// # Safety
    ///
    /// `page` is this guest's shared info page (`XENMEM_add_to_physmap`
    /// with `XENMAPSPACE_shared_info`), mapped as normal memory for as long
    /// as the value is used.
    pub const unsafe fn at(page: NonNull<u8>) -> Self {
        SharedInfo(page)
    }

    fn word(&self, port: Port) -> &AtomicU64 {
        let at = SHARED_INFO_EVTCHN_PENDING + (port as usize % 4096 / 64) * 8;
        // SAFETY: `evtchn_pending` is 64 words (4096 ports) from an 8-byte
        // aligned offset inside the page (`at`'s contract); Xen sets bits
        // concurrently, so the word is only touched atomically.
        unsafe { AtomicU64::from_ptr(self.0.as_ptr().add(at).cast::<u64>()) }
    }

    /// Whether an event is pending on `port`.
    pub fn pending(&self, port: Port) -> bool {
        self.word(port).load(Ordering::SeqCst) & 1 << (port % 64) != 0
    }

    /// Clears `port`'s pending bit; whether it was set.
    pub fn take(&self, port: Port) -> bool {
        let bit = 1u64 << (port % 64);
        self.word(port).fetch_and(!bit, Ordering::SeqCst) & bit != 0
    }
}

/// One vCPU's runstate area, for `Hvc::register_runstate`: Xen rewrites it
/// each time it schedules the vCPU in.
#[repr(C, align(64))]
pub struct Runstate(UnsafeCell<VcpuRunstateInfo>);

// SAFETY: only Xen writes the area, and only while the one vCPU that
// registered it is not running; the guest reads it with volatile reads.
unsafe impl Sync for Runstate {}

impl Runstate {
    /// Not registered yet.
    pub const fn new() -> Self {
        Runstate(UnsafeCell::new(VcpuRunstateInfo {
            state: 0,
            _pad: 0,
            state_entry_time: 0,
            time: [0; 4],
        }))
    }

    /// Where Xen is to write it.
    pub fn address(&'static self) -> u64 {
        self.0.get() as u64
    }

    /// Xen's system time (ns) when the vCPU was last scheduled in; `None`
    /// before Xen wrote the area.
    pub fn entered_ns(&self) -> Option<u64> {
        // SAFETY: a live, aligned field; see the `Sync` impl. Bit 63 is
        // `XEN_RUNSTATE_UPDATE` (only with a VM assist we do not enable).
        let t = unsafe { (&raw const (*self.0.get()).state_entry_time).read_volatile() };
        Some(t & !(1 << 63)).filter(|&t| t != 0)
    }
}

impl Default for Runstate {
    fn default() -> Self {
        Self::new()
    }
}

/// Xen's system time as the guest can know it: `SCHEDOP_poll` takes an
/// absolute timeout in Xen's time (ns since Xen booted), which no Arm
/// guest can read directly; the guest's virtual counter runs at the same
/// rate from another origin. Each runstate entry time, read after the
/// vCPU was scheduled in, is a moment no later than the counter's reading
/// taken after it, so `entered - counter` bounds the offset from below;
/// the largest bound seen is kept. Deadlines are then never late, at worst
/// early by the scheduling delay of the best observation (a poll that
/// returns early only serves once more).
#[derive(Debug)]
pub struct SystemClock {
    /// Largest `entered - counter_ns` seen; `i64::MIN`: none yet.
    offset: AtomicI64,
}

impl SystemClock {
    /// No observation yet.
    pub const fn new() -> Self {
        SystemClock {
            offset: AtomicI64::new(i64::MIN),
        }
    }

    /// Learns from one observation: `entered_ns` (the runstate's entry
    /// time, if any) read before `counter_ns` (the virtual counter in ns).
    pub fn observe(&self, entered_ns: Option<u64>, counter_ns: u64) {
        if let Some(e) = entered_ns {
            let d = (i128::from(e) - i128::from(counter_ns))
                .clamp(i128::from(i64::MIN + 1), i128::from(i64::MAX)) as i64;
            self.offset.fetch_max(d, Ordering::Relaxed);
        }
    }

    /// The `SCHEDOP_poll` timeout for the counter reading `at_ns`: Xen's
    /// time then, or 1 (long past: the poll returns at once) before any
    /// observation. Never 0, which means "no timeout".
    pub fn deadline(&self, at_ns: u64) -> u64 {
        let o = self.offset.load(Ordering::Relaxed);
        if o == i64::MIN {
            return 1;
        }
        (i128::from(at_ns) + i128::from(o)).clamp(1, i128::from(u64::MAX)) as u64
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_bits_are_taken_once_and_only_their_own() {
        let page: [AtomicU64; 512] = core::array::from_fn(|_| AtomicU64::new(0));
        let base = NonNull::new(page.as_ptr().cast_mut().cast::<u8>()).unwrap();
        // SAFETY: a page-sized, aligned buffer of atomics standing in for
        // the page (Xen's side: the stores below).
        let s = unsafe { SharedInfo::at(base) };
        page[SHARED_INFO_EVTCHN_PENDING / 8].store(1 << 11 | 1 << 10, Ordering::SeqCst);
        page[SHARED_INFO_EVTCHN_PENDING / 8 + 1].store(1 << 1, Ordering::SeqCst);
        assert!(s.pending(11));
        assert!(s.take(11));
        assert!(!s.take(11));
        assert!(!s.pending(11));
        assert!(s.pending(10), "its neighbour stays pending");
        assert!(s.take(65), "port 65 is bit 1 of word 1");
        assert!(!s.pending(12));
    }

    #[test]
    fn the_clock_keeps_the_best_lower_bound_and_never_says_never() {
        let c = SystemClock::new();
        assert_eq!(c.deadline(5_000), 1, "no observation: at once");
        c.observe(None, 100);
        assert_eq!(c.deadline(5_000), 1);
        // Scheduled in at Xen time 1_000_300, counter read 300 ns later
        // shows 1_000: offset at least 999_000.
        c.observe(Some(1_000_300), 1_300);
        assert_eq!(c.deadline(10_000), 1_009_000);
        // A worse bound (read long after being scheduled in) is ignored.
        c.observe(Some(1_000_300), 50_000);
        assert_eq!(c.deadline(10_000), 1_009_000);
        // A better one is kept.
        c.observe(Some(2_000_000), 1_000);
        assert_eq!(c.deadline(10_000), 2_009_000);
        // A counter ahead of Xen's time cannot produce 0 ("no timeout").
        let d = SystemClock::new();
        d.observe(Some(1), 1_000_000);
        assert_eq!(d.deadline(0), 1);
    }

    #[test]
    fn runstate_reads_nothing_before_xen_writes() {
        static R: Runstate = Runstate::new();
        assert_eq!(R.entered_ns(), None);
        assert_ne!(R.address(), 0);
        assert_eq!(R.address() % 64, 0);
    }
}
