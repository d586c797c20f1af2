//! The front-end DomU: grants its pool to the back-end, signals it, and
//! runs the SCMI tour over virtio-msg on the channel in the pool's first
//! page; the verdict ends QEMU (semihosting).

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod image {
    use core::fmt::Write;

    use aarch64_rt::entry;
    use firmware_frontend::{Clock, CoreLink, WindowHal, install_at, spin};
    use platform_xen::abi::{self, GrantEntryV1};
    use platform_xen::{Hvc, Xen};
    use transport_xen::grant::grant_address;
    use xen_pair::*;
    use xen_smoke::{GRANT_TABLE_GPA, SHARED_INFO_GPA, say};

    xen_smoke::domu_pagetable!();

    entry!(main, 16);

    const POOL_LEN: usize = POOL_PAGES * 4096;

    #[repr(C, align(4096))]
    struct Pool([u8; POOL_LEN]);

    static mut POOL: Pool = Pool([0; POOL_LEN]);

    /// Xen's console, for the tour's report.
    struct Console;

    impl Write for Console {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            say(Hvc, s);
            Ok(())
        }
    }

    fn ring() {
        let _ = Hvc.send(PORT_FRONTEND);
    }

    fn now() -> core::time::Duration {
        platform_arm_common::timer::since_boot()
    }

    fn main(_dtb: u64, _: u64, _: u64, _: u64) -> ! {
        let mut out = Console;
        let _ = writeln!(out, "xen-frontend: DomU 1, granting its pool to DomU 2");
        let mut ok = Hvc
            .add_to_physmap(abi::XENMAPSPACE_GRANT_TABLE, 0, GRANT_TABLE_GPA >> 12)
            .is_ok();
        ok &= Hvc
            .add_to_physmap(abi::XENMAPSPACE_SHARED_INFO, 0, SHARED_INFO_GPA >> 12)
            .is_ok();
        let base = (&raw mut POOL) as usize;
        for i in 0..POOL_PAGES {
            let e = (GRANT_TABLE_GPA as usize as *mut GrantEntryV1)
                .wrapping_add(FIRST_GREF as usize + i);
            // SAFETY: grant-table frame 0 (mapped above; 512 entries), our
            // entries; frame and domain, then the flags behind a barrier.
            unsafe {
                (&raw mut (*e).domid).write_volatile(DOM_BACKEND);
                (&raw mut (*e).frame).write_volatile(((base + i * 4096) >> 12) as u32);
                core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
                (&raw mut (*e).flags).write_volatile(abi::GTF_PERMIT_ACCESS);
            }
        }
        // SAFETY: the pool is ours, mapped normal memory (GiB 1), granted
        // whole to the device: the channel in page 0, DMA pages, the heap.
        let view = unsafe {
            install_at(
                base,
                POOL_LEN,
                grant_address(FIRST_GREF, 0),
                0x1000..0x11000,
                0x11000..POOL_LEN,
            )
        };
        ok &= Hvc.send(PORT_FRONTEND).is_ok();
        let _ = writeln!(
            out,
            "xen-frontend: {POOL_PAGES} pages granted as refs {FIRST_GREF}.., back-end signalled"
        );
        let link = CoreLink {
            ring,
            clock: Clock { now, idle: spin },
        };
        let o = firmware_frontend::run::<WindowHal, _, _, _>(
            view,
            (grant_address(FIRST_GREF, 0), 0x1000),
            link,
            link.clock,
            &mut out,
        );
        let pass = ok && o.failed == 0;
        let _ = writeln!(
            out,
            "result: {} checks passed, {} failed",
            o.passed, o.failed
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
