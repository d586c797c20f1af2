//! DomU B: says it is ready, waits for A's grant, maps the page
//! (GNTTABOP_map_grant_ref), checks A's pattern, answers in the page,
//! unmaps it and signals A. A ends the run.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod image {
    use aarch64_rt::entry;
    use platform_xen::abi;
    use platform_xen::{Hvc, Xen, XenError};
    use xen_smoke::*;

    xen_smoke::domu_pagetable!();

    entry!(main, 4);

    fn run(x: &mut Hvc) -> bool {
        let mut ok = true;
        ok &= check(
            *x,
            "B",
            "shared info mapped",
            x.add_to_physmap(abi::XENMAPSPACE_SHARED_INFO, 0, SHARED_INFO_GPA >> 12),
        );
        // The bound side of a static channel starts with one event
        // pending: taken now, so that A's later one is not lost in it.
        // SAFETY: the shared info page, mapped above.
        let shared = unsafe { shared_info() };
        let spurious = shared.take(PORT_B);
        say(
            *x,
            if spurious {
                "B: a spurious event was pending at start (cleared)\n"
            } else {
                "B: no event pending at start\n"
            },
        );
        ok &= check(*x, "B", "ready signalled", x.send(PORT_B));
        ok &= check(
            *x,
            "B",
            "grant signalled by A",
            wait_event(x, shared, PORT_B),
        );
        match x.map_grant(DOM_A, GREF, MAP_GPA, true) {
            Ok(handle) => {
                ok &= check(*x, "B", "A's page mapped", Ok(()));
                let page = MAP_GPA as usize as *mut u8;
                let mut got = [0u8; 16];
                // SAFETY: A's granted page, mapped at MAP_GPA (normal
                // memory in our map) until the unmap below.
                unsafe {
                    core::ptr::copy_nonoverlapping(page, got.as_mut_ptr(), 16);
                    core::ptr::copy_nonoverlapping(REPLY.as_ptr(), page.add(16), 16);
                }
                ok &= check(
                    *x,
                    "B",
                    "A's pattern read",
                    if &got == PATTERN {
                        Ok(())
                    } else {
                        Err(XenError::Errno(-5))
                    },
                );
                ok &= check(*x, "B", "page unmapped", x.unmap_grant(MAP_GPA, handle));
            }
            Err(e) => ok &= check(*x, "B", "A's page mapped", Err(e)),
        }
        ok &= check(*x, "B", "done signalled", x.send(PORT_B));
        ok
    }

    fn main(_dtb: u64, _: u64, _: u64, _: u64) -> ! {
        let mut x = Hvc;
        say(x, "xen-smoke B: DomU 2, mapping DomU 1's grant\n");
        let ok = run(&mut x);
        say(
            x,
            if ok {
                "xen-smoke B: VERDICT PASS\n"
            } else {
                "xen-smoke B: VERDICT FAIL\n"
            },
        );
        loop {
            core::hint::spin_loop();
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        say(Hvc, "xen-smoke B: panic\n");
        loop {
            core::hint::spin_loop();
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
