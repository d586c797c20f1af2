//! The front-end DomU: grants its pool to the back-end DomU (the product
//! image, `scmi-xen-domu`), signals it, and drives the device over
//! virtio-msg on the channel in the pool's first page; the verdict ends
//! QEMU (semihosting). The run comes from the semihosting command line:
//!
//! * `tour`: the tour (discovery, every protocol, events, a burst); then
//!   the restart (the driver resets the device: the back-end must unmap
//!   every page of ours but the channel's, and a fresh probe finds a fresh
//!   device); then [`ROUND_TRIPS`] timed SENSOR_READING_GET round trips.
//! * `hostile`: events before anything is granted and a storm of them;
//!   `firmware_frontend::hostile`'s attacks over grants; chains whose
//!   buffers are grants the back-end cannot use (not granted, granted to
//!   another domain, read-only, a frame that is not ours, reserved, past
//!   the table); after each the back-end must still answer, and a fresh
//!   probe at the end finds nothing left.
//!
//! The front-end waits in `SCHEDOP_poll` on its port (with a 1 ms
//! timeout), so that under `-icount` the counter counts the instructions
//! the round trip costs on both DomUs and Xen, not our spinning.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod image {
    use core::fmt::Write;
    use core::sync::atomic::{AtomicU64, Ordering};
    use core::time::Duration;

    use aarch64_rt::entry;
    use firmware_frontend::hostile::{self, foreign_chains};
    use firmware_frontend::pair::{Mode, ROUND_TRIPS, mode_from_semihosting};
    use firmware_frontend::{Checks, Clock, CoreLink, QUEUE, TIMEOUT, WindowHal, install_at};
    use platform_arm_common::timer;
    use platform_xen::abi;
    use platform_xen::{Hvc, Runstate, SharedInfo, SystemClock, Xen};
    use scmi_agent::agent::{AgentOptions, ScmiAgent};
    use scmi_agent::amp_driver::AmpDriver;
    use scmi_agent::probe::Prober;
    use transport_xen::grant::grant_address;
    use virtio_backend::FixedWindow;
    use virtio_backend::msg::Revision;
    use virtio_drivers::transport::{DeviceStatus, Transport};
    use xen_pair::*;
    use xen_smoke::{GRANT_TABLE_GPA, SHARED_INFO_GPA};

    xen_smoke::domu_pagetable!();

    entry!(main, 16);

    const POOL_LEN: usize = POOL_PAGES * 4096;
    /// The channel: the pool's first page.
    const CHANNEL: (u64, u64) = (grant_address(FIRST_GREF, 0), 0x1000);

    #[repr(C, align(4096))]
    struct Pool([u8; POOL_LEN]);

    static mut POOL: Pool = Pool([0; POOL_LEN]);

    static RUNSTATE: Runstate = Runstate::new();
    static XEN_TIME: SystemClock = SystemClock::new();
    /// Events we sent, polls we made.
    static SENDS: AtomicU64 = AtomicU64::new(0);
    static POLLS: AtomicU64 = AtomicU64::new(0);

    /// Xen's console, for the report.
    struct Console;

    impl Write for Console {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let _ = Hvc.console_write(s.as_bytes());
            Ok(())
        }
    }

    fn shared() -> SharedInfo {
        // SAFETY: `main` mapped our shared info page there first thing.
        unsafe { xen_smoke::shared_info() }
    }

    fn ring() {
        SENDS.fetch_add(1, Ordering::Relaxed);
        let _ = Hvc.send(PORT_FRONTEND);
    }

    fn now() -> Duration {
        timer::since_boot()
    }

    /// Waits for the back-end's event, at most 1 ms (Xen's time, from the
    /// runstate), then takes it.
    fn idle() {
        let deadline = XEN_TIME.deadline(now().as_nanos() as u64 + 1_000_000);
        if !shared().pending(PORT_FRONTEND) {
            POLLS.fetch_add(1, Ordering::Relaxed);
            let _ = Hvc.poll(&[PORT_FRONTEND], deadline);
            XEN_TIME.observe(RUNSTATE.entered_ns(), now().as_nanos() as u64);
        }
        shared().take(PORT_FRONTEND);
    }

    const LINK: CoreLink = CoreLink {
        ring,
        clock: Clock { now, idle },
    };

    /// Grants `frame` to `dom` as `gref` with `flags`.
    fn grant(gref: u32, dom: u16, frame: u32, flags: u16) {
        // SAFETY: `main` mapped grant-table frame 0 first thing; its
        // entries are all ours to write.
        unsafe { xen_smoke::grant(gref, dom, frame, flags) }
    }

    /// Whether the grantee has page `gref` mapped (Xen sets
    /// `GTF_reading`/`GTF_writing` in our entry while it does).
    fn in_use(gref: u32) -> bool {
        // SAFETY: as in `grant`; Xen writes the flags concurrently.
        let f = unsafe { (&raw const (*xen_smoke::grant_entry(gref)).flags).read_volatile() };
        f & (abi::GTF_READING | abi::GTF_WRITING) != 0
    }

    fn agent<M: virtio_backend::GuestMemory>(
        d: AmpDriver<M, CoreLink>,
    ) -> ScmiAgent<AmpDriver<M, CoreLink>, WindowHal, QUEUE, QUEUE> {
        ScmiAgent::new(
            d,
            AgentOptions {
                patience: TIMEOUT,
                now,
                idle,
                ..AgentOptions::default()
            },
        )
    }

    fn connect(
        view: &'static FixedWindow<'static>,
    ) -> Option<AmpDriver<&'static FixedWindow<'static>, CoreLink>> {
        AmpDriver::connect(view, CHANNEL.0, CHANNEL.1, LINK, Revision::V2, TIMEOUT).ok()
    }

    /// Whether an SCMI notification arrives on `a`'s eventq within `limit`.
    fn notified<T: Transport>(
        a: &mut ScmiAgent<T, WindowHal, QUEUE, QUEUE>,
        limit: Duration,
    ) -> bool {
        let start = now();
        while now() - start < limit {
            if !a.drain_events().is_empty() {
                return true;
            }
            idle();
        }
        false
    }

    /// The restart: a first driver leaves sensor 0's SENSOR_UPDATE
    /// notifications on (and sees one), then resets the device; the
    /// back-end must unmap every page of ours but the channel's (which it
    /// reads at each tick), a fresh probe must find a fresh device, and
    /// none of the first driver's notifications may reach the second.
    fn restart(view: &'static FixedWindow<'static>, c: &mut Checks<&mut Console>) {
        let Some(d) = connect(view) else {
            return c.check(false, "restart: the device came back");
        };
        let mut first = agent(d);
        let on = first.callw(0x15, 0xB, &[0, 1], 0).status == 0;
        let seen = notified(&mut first, Duration::from_secs(2));
        c.check(
            on && seen,
            "restart: the first driver's SENSOR_UPDATE notifications arrive",
        );
        let mut d = first.into_transport();
        d.set_status(DeviceStatus::empty());
        let start = now();
        let held = |g: &u32| in_use(*g);
        while (FIRST_GREF + 1..FIRST_GREF + POOL_PAGES as u32).any(|g| held(&g))
            && now() - start < TIMEOUT
        {
            idle();
        }
        let still = (FIRST_GREF + 1..FIRST_GREF + POOL_PAGES as u32)
            .filter(|g| held(g))
            .count();
        c.check(still == 0, "restart: the back-end unmapped our pages");
        let status = d.get_status().bits();
        let mut a = agent(d);
        let p = Prober::run(&mut a);
        c.check(
            status == 0 && p.complaints.is_empty(),
            "restart: a fresh probe finds a fresh device",
        );
        let leaked = notified(&mut a, Duration::from_millis(500));
        c.check(
            !leaked,
            "restart: none of the first driver's notifications reach the second",
        );
        let _ = writeln!(
            c.out,
            "restart: the first driver left SENSOR_UPDATE on ({}) and reset the device",
            if seen { "one arrived" } else { "none arrived" },
        );
        let _ = writeln!(
            c.out,
            "restart: {still} pages still mapped, status {status:#x}, probe: {} protocols, {} complaints, notifications: {}",
            p.base.protocols.len(),
            p.complaints.len(),
            if leaked { "some" } else { "none" }
        );
    }

    /// [`ROUND_TRIPS`] SENSOR_READING_GET round trips, counted (under
    /// `-icount shift=4` with the Cortex-A57's 62.5 MHz counter, a tick is
    /// an instruction on whichever vCPU runs); then a reset, so the
    /// back-end reports what the session cost it.
    fn measure(view: &'static FixedWindow<'static>, c: &mut Checks<&mut Console>) {
        let Some(d) = connect(view) else {
            return c.check(false, "measure: the device came back");
        };
        let mut a = agent(d);
        let _ = a.callw(0x10, 0x0, &[], 0);
        let (sends, polls) = (SENDS.load(Ordering::Relaxed), POLLS.load(Ordering::Relaxed));
        let start = timer::counter();
        let mut ok = 0;
        for _ in 0..ROUND_TRIPS {
            ok += u64::from(a.callw(0x15, 0x6, &[0, 0], 0).status == 0);
        }
        let ticks = timer::counter().wrapping_sub(start);
        let sends = SENDS.load(Ordering::Relaxed) - sends;
        let polls = POLLS.load(Ordering::Relaxed) - polls;
        c.check(ok == ROUND_TRIPS, "measure: every reading succeeded");
        let _ = writeln!(
            c.out,
            "measure: {ROUND_TRIPS} SENSOR_READING_GET round trips, {} counter ticks per round trip (both DomUs and Xen), front-end: {}.{:02} sends and {}.{:02} polls per round trip",
            ticks / ROUND_TRIPS,
            sends / ROUND_TRIPS,
            sends % ROUND_TRIPS * 100 / ROUND_TRIPS,
            polls / ROUND_TRIPS,
            polls % ROUND_TRIPS * 100 / ROUND_TRIPS,
        );
        a.into_transport().set_status(DeviceStatus::empty());
        // Let the back-end report before the verdict ends QEMU.
        let start = now();
        while now() - start < Duration::from_millis(50) {
            idle();
        }
    }

    /// The Xen-specific attacks: buffers the back-end cannot map.
    fn foreign(view: &'static FixedWindow<'static>, c: &mut Checks<&mut Console>) {
        let first_bad = FIRST_GREF + POOL_PAGES as u32;
        // SAFETY: only the address of the pool is taken.
        let ours = ((&raw const POOL) as usize >> 12) as u32;
        // Granted to a domain that is not the back-end; read-only; a frame
        // that is not ours; (first_bad + 3) never granted.
        grant(first_bad, DOM_BACKEND + 5, ours, abi::GTF_PERMIT_ACCESS);
        grant(
            first_bad + 1,
            DOM_BACKEND,
            ours,
            abi::GTF_PERMIT_ACCESS | abi::GTF_READONLY,
        );
        grant(
            first_bad + 2,
            DOM_BACKEND,
            0x000d_ead0,
            abi::GTF_PERMIT_ACCESS,
        );
        let sets = [
            [first_bad, first_bad + 1, first_bad + 2],
            // Never granted, reserved, past the grant table.
            [first_bad + 3, 3, 0x000f_ffff],
        ];
        for (n, grefs) in sets.into_iter().enumerate() {
            let Some(mut d) = connect(view) else {
                return c.check(false, "foreign grants: the device came back");
            };
            let addrs = grefs.map(|g| grant_address(g, 0x100));
            let (lens, status) = foreign_chains::<WindowHal, _, _>(&mut d, &view, addrs);
            c.check(
                lens[..6] == [0; 6],
                "chains through unusable grants come back with used length 0",
            );
            c.check(lens[6] == 12, "the good request after them is answered");
            c.check(
                status & 64 == 0,
                "unusable grants alone do not need a reset",
            );
            let _ = writeln!(
                c.out,
                "hostile: foreign grants {grefs:?} (set {n}): used lengths {lens:?}, device status {status:#x}"
            );
            d.set_status(DeviceStatus::empty());
        }
    }

    /// Events before the channel page exists, then a storm of them; then
    /// the channel page granted read-only, and an event: the back-end
    /// cannot map it writable, so it must not publish there, and must wait
    /// for the real grant. Whether the page stayed untouched.
    fn before_grants(base: usize) -> bool {
        for _ in 0..64 {
            ring();
        }
        grant(
            FIRST_GREF,
            DOM_BACKEND,
            (base >> 12) as u32,
            abi::GTF_PERMIT_ACCESS | abi::GTF_READONLY,
        );
        ring();
        let start = now();
        while now() - start < Duration::from_millis(50) {
            idle();
        }
        // SAFETY: the pool's first word, ours; only read.
        let magic = unsafe { core::ptr::read_volatile(base as *const u64) };
        let _ = writeln!(
            Console,
            "hostile: 65 events before any grant, then the channel page read-only: {}",
            if magic == 0 {
                "nothing published, the back-end waits"
            } else {
                "PUBLISHED"
            }
        );
        magic == 0
    }

    fn main(_dtb: u64, _: u64, _: u64, _: u64) -> ! {
        let mut out = Console;
        let mode = mode_from_semihosting();
        let _ = writeln!(out, "xen-frontend: DomU 1, {} run", mode.name());
        let mut ok = Hvc
            .add_to_physmap(abi::XENMAPSPACE_GRANT_TABLE, 0, GRANT_TABLE_GPA >> 12)
            .is_ok();
        ok &= Hvc
            .add_to_physmap(abi::XENMAPSPACE_SHARED_INFO, 0, SHARED_INFO_GPA >> 12)
            .is_ok();
        ok &= Hvc.register_runstate(0, &RUNSTATE).is_ok();
        XEN_TIME.observe(RUNSTATE.entered_ns(), now().as_nanos() as u64);
        let base = (&raw mut POOL) as usize;
        // The hostile run's first attack: out of order.
        let early = if mode == Mode::Hostile {
            before_grants(base)
        } else {
            true
        };
        for i in 0..POOL_PAGES {
            grant(
                FIRST_GREF + i as u32,
                DOM_BACKEND,
                ((base + i * 4096) >> 12) as u32,
                abi::GTF_PERMIT_ACCESS,
            );
        }
        // SAFETY: the pool is ours, mapped normal memory (GiB 1), granted
        // whole to the device: the channel in page 0, DMA pages, the heap.
        let view = unsafe {
            install_at(
                base,
                POOL_LEN,
                CHANNEL.0,
                0x1000..0x11000,
                0x11000..POOL_LEN,
            )
        };
        ring();
        let _ = writeln!(
            out,
            "xen-frontend: {POOL_PAGES} pages granted as refs {FIRST_GREF}.., back-end signalled"
        );
        let o = match mode {
            Mode::Hostile => {
                let o = hostile::run::<WindowHal, _, _, _>(
                    view, CHANNEL, LINK, LINK, LINK.clock, &mut out,
                );
                let mut c = Checks { out: &mut out, o };
                for _ in 0..1000 {
                    ring();
                }
                foreign(view, &mut c);
                // A well-behaved driver from scratch after all of it.
                match connect(view) {
                    Some(d) => {
                        let p = Prober::run(&mut agent(d));
                        c.check(
                            p.complaints.is_empty(),
                            "the Linux probe after the Xen attacks",
                        );
                    }
                    None => c.check(false, "the device answers after the Xen attacks"),
                }
                c.o
            }
            _ => {
                let o = firmware_frontend::run::<WindowHal, _, _, _>(
                    view, CHANNEL, LINK, LINK.clock, &mut out,
                );
                let mut c = Checks { out: &mut out, o };
                restart(view, &mut c);
                measure(view, &mut c);
                c.o
            }
        };
        let mut o = o;
        if !early {
            o.failed += 1;
            let _ = writeln!(
                out,
                "FAIL: the back-end published its channel in a page granted read-only"
            );
        } else if mode == Mode::Hostile {
            o.passed += 1;
        }
        let pass = ok && o.failed == 0;
        if !ok {
            let _ = writeln!(
                out,
                "FAIL: the shared info page, grant table or runstate area"
            );
        }
        let _ = writeln!(
            out,
            "result: {} checks passed, {} failed",
            o.passed,
            o.failed + u32::from(!ok)
        );
        semihosting::process::exit(if pass { 0 } else { 1 })
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        let _ = writeln!(Console, "xen-frontend: panic: {info}");
        semihosting::process::exit(101)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
