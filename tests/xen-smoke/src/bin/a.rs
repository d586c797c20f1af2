//! DomU A: grants a page to B, signals it, waits for B's answer in the
//! page, and ends the run with the verdict (semihosting exit status).

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod image {
    use aarch64_rt::entry;
    use platform_xen::abi;
    use platform_xen::{Hvc, Xen, XenError};
    use xen_smoke::*;

    xen_smoke::domu_pagetable!();

    #[repr(C, align(4096))]
    struct Page([u8; 4096]);

    static mut GRANTED: Page = Page([0; 4096]);

    entry!(main, 4);

    fn run(x: &mut Hvc) -> bool {
        let mut ok = true;
        ok &= check(
            *x,
            "A",
            "shared info mapped",
            x.add_to_physmap(abi::XENMAPSPACE_SHARED_INFO, 0, SHARED_INFO_GPA >> 12),
        );
        ok &= check(
            *x,
            "A",
            "grant table frame 0 mapped",
            x.add_to_physmap(abi::XENMAPSPACE_GRANT_TABLE, 0, GRANT_TABLE_GPA >> 12),
        );
        let page = (&raw mut GRANTED).cast::<u8>();
        // SAFETY: our own static page, not yet granted.
        unsafe { core::ptr::copy_nonoverlapping(PATTERN.as_ptr(), page, PATTERN.len()) };
        // SAFETY: grant-table frame 0, mapped just above; entry GREF is
        // ours.
        unsafe {
            grant(
                GREF,
                DOM_B,
                (page as u64 >> 12) as u32,
                abi::GTF_PERMIT_ACCESS,
            )
        };
        // SAFETY: the shared info page, mapped above.
        let shared = unsafe { shared_info() };
        // B says it is ready (its first event), then A signals the grant.
        ok &= check(
            *x,
            "A",
            "B ready (event on the static channel)",
            wait_event(x, shared, PORT_A),
        );
        ok &= check(*x, "A", "grant signalled", x.send(PORT_A));
        ok &= check(*x, "A", "B done (event)", wait_event(x, shared, PORT_A));
        let mut got = [0u8; 16];
        // SAFETY: our page; B has unmapped it (it signalled done after).
        unsafe { core::ptr::copy_nonoverlapping(page.add(16), got.as_mut_ptr(), 16) };
        ok &= check(
            *x,
            "A",
            "B's answer in the granted page",
            if &got == REPLY {
                Ok(())
            } else {
                Err(XenError::Errno(-5))
            },
        );
        ok
    }

    fn main(_dtb: u64, _: u64, _: u64, _: u64) -> ! {
        let mut x = Hvc;
        say(x, "xen-smoke A: DomU 1, granting a page to DomU 2\n");
        let ok = run(&mut x);
        say(
            x,
            if ok {
                "xen-smoke A: VERDICT PASS\n"
            } else {
                "xen-smoke A: VERDICT FAIL\n"
            },
        );
        semihosting::process::exit(if ok { 0 } else { 1 })
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        say(Hvc, "xen-smoke A: panic\n");
        semihosting::process::exit(101)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
