//! The back-end DomU: virtio-scmi served over virtio-msg on the channel
//! the front-end's first granted page holds, every byte of the front-end's
//! memory reached through its grants.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod image {
    use core::ptr::NonNull;

    use aarch64_rt::entry;
    use platform_host_vhost_user as builtin;
    use platform_xen::{DomId, GrantRef, Hvc, Xen, XenError, abi};
    use scmi_server::Server;
    use transport_shmem::ShmemDevice;
    use transport_xen::grant::{GrantMapper, GrantMemory, Mapped, grant_address};
    use virtio_backend::amp::Geometry;
    use virtio_backend::msg::Revision;
    use virtio_backend::service::Doorbell;
    use virtio_backend::{Coherent, FixedWindow};
    use virtio_scmi::VirtioScmi;
    use xen_pair::*;
    use xen_smoke::{SHARED_INFO_GPA, pending, say};
    // The pair's crate links `alloc` for the front-end; the back-end
    // allocates nothing, but needs an allocator to link: the front-end's
    // (left empty here).
    use firmware_frontend as _;

    xen_smoke::domu_pagetable!();

    entry!(main, 8);

    type Srv = Server<builtin::Platform, 4, 32>;

    /// Maps grants into the slot pages at SLOT_GPA.
    struct Slots;

    impl GrantMapper<'static> for Slots {
        fn map(
            &mut self,
            slot: usize,
            dom: DomId,
            gref: GrantRef,
            writable: bool,
        ) -> Result<Mapped<'static>, XenError> {
            let gpa = SLOT_GPA + slot as u64 * 4096;
            let handle = Hvc.map_grant(dom, gref, gpa, writable)?;
            let p = NonNull::new(gpa as usize as *mut u8).ok_or(XenError::Errno(-22))?;
            // SAFETY: Xen just mapped the granted page at `gpa`, normal
            // memory in our stage-1 map (GiB 0); it stays there until
            // `unmap`, which takes this window back first.
            let page =
                unsafe { FixedWindow::new(p, 4096, 0, Coherent) }.ok_or(XenError::Errno(-22))?;
            Ok(Mapped {
                page,
                token: u64::from(handle) << 32 | slot as u64,
            })
        }

        fn unmap(&mut self, mapped: Mapped<'static>) -> Result<(), XenError> {
            let gpa = SLOT_GPA + (mapped.token & 0xffff_ffff) * 4096;
            Hvc.unmap_grant(gpa, (mapped.token >> 32) as u32)
        }
    }

    /// The front-end's doorbell: its end of the event channel.
    struct Evtchn;

    impl Doorbell for Evtchn {
        fn barrier(&mut self) {
            core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        }
        fn ring(&mut self) {
            let _ = Hvc.send(PORT_BACKEND);
        }
    }

    fn now_ms() -> u64 {
        platform_arm_common::timer::since_boot().as_millis() as u64
    }

    fn main(_dtb: u64, _: u64, _: u64, _: u64) -> ! {
        let x = Hvc;
        say(
            x,
            "xen-backend: DomU 2, virtio-scmi over virtio-msg on a granted page\n",
        );
        let shared = SHARED_INFO_GPA as usize as *mut u8;
        if Hvc
            .add_to_physmap(abi::XENMAPSPACE_SHARED_INFO, 0, SHARED_INFO_GPA >> 12)
            .is_err()
        {
            say(x, "xen-backend: FAIL: shared info\n");
        }
        // The bound side of a static channel starts with one event
        // pending; then the front-end's "granted" event.
        // SAFETY: the shared info page, mapped above.
        unsafe { pending(shared, PORT_BACKEND, true) };
        // SAFETY: as above.
        if unsafe { xen_smoke::wait_event(&mut Hvc, shared, PORT_BACKEND) }.is_err() {
            say(x, "xen-backend: FAIL: no grant event\n");
        }
        let mem: GrantMemory<'static, Slots, SLOTS> = GrantMemory::new(DOM_FRONTEND, Slots);
        let core = VirtioScmi::new(Srv::new(&builtin::CONFIG, builtin::PLATFORM), 1).into_core();
        let mut dev: ShmemDevice<_, 2, 0> = ShmemDevice::new(core, Revision::V2);
        let geometry = Geometry {
            elements: 16,
            element_size: 64,
        };
        if dev
            .publish(&mem, grant_address(FIRST_GREF, 0), 0x1000, geometry)
            .is_err()
        {
            say(x, "xen-backend: FAIL: the channel\n");
        }
        say(
            x,
            "xen-backend: channel published in the front-end's grant 8\n",
        );
        loop {
            // SAFETY: as above.
            unsafe { pending(shared, PORT_BACKEND, true) };
            let _ = dev.serve(&mem, &mut Evtchn, now_ms());
            for _ in 0..256 {
                core::hint::spin_loop();
            }
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        say(Hvc, "xen-backend: panic\n");
        loop {
            core::hint::spin_loop();
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
