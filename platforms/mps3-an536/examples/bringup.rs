//! Bring-up of the MPS3-AN536's two Cortex-R52 cores: both enter the ELF
//! entry; core 0 runs `aarch32-rt`'s start-up and says hello on its UART,
//! releases core 1 from the park routine, and the two cores exchange SGIs
//! with IRQs masked (WFI, then acknowledge through `ICC_IAR1`): SGI 1 from
//! core 0 to core 1, SGI 2 back. Core 0 then prints the elapsed timer
//! ticks and exits 0 through semihosting. Each core prints on its own UART
//! (QEMU's first and second serial port).
//!
//! ```text
//! cargo +nightly build -p platform-mps3-an536 --example bringup --target armv8r-none-eabihf \
//!     -Zbuild-std=core --release --target-dir target/armv8r
//! qemu-system-arm -M mps3-an536 -smp 2 -nographic -semihosting \
//!     -serial mon:stdio -serial file:/tmp/core1.txt \
//!     -kernel target/armv8r/armv8r-none-eabihf/release/examples/bringup
//! ```
//!
//! The addresses below are the AN536's (QEMU hw/arm/mps3r.c); in an image
//! they come from the manifest. No `core::fmt`: the console is `Print`.

#![cfg_attr(target_os = "none", no_std, no_main)]

/// On the host there is nothing to bring up.
#[cfg(not(all(target_arch = "arm", target_os = "none")))]
fn main() {}

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod image {
    use core::panic::PanicInfo;
    use core::ptr::NonNull;
    use core::sync::atomic::{AtomicBool, Ordering};

    use aarch32_rt::entry;
    use platform_mps3_an536::console::{CmsdkUart, CmsdkUartRegisters};
    use platform_mps3_an536::cpu::{self, Mpidr};
    use platform_mps3_an536::gic::{self, Distributor, Gicd, GicrSgi, IntId, Redistributor};
    use platform_mps3_an536::{Print, exit, start, timer};

    /// Each core's private CMSDK UART (same address, one device per core).
    const UART_BASE: usize = 0xe7c0_0000;
    /// The UARTs' APB clock (50 MHz) and the baud rate.
    const UART_CLOCK: u32 = 50_000_000;
    const BAUD: u32 = 115_200;
    /// GICv3 distributor (PERIPHBASE) and redistributors (+1 MiB).
    const GICD_BASE: usize = 0xf000_0000;
    const GICR_BASE: usize = 0xf010_0000;
    /// The SGI core 0 sends to core 1, and the answer.
    const PING: u8 = 1;
    const PONG: u8 = 2;
    const PING_ID: IntId = IntId::sgi(PING as u32);
    const PONG_ID: IntId = IntId::sgi(PONG as u32);
    /// How long core 0 waits for core 1 before failing.
    const TIMEOUT_MS: u64 = 5000;

    /// Set by core 1 once it can take SGI `PING` (a plain store: no
    /// exclusives between the AN536's cores).
    static CORE1_READY: AtomicBool = AtomicBool::new(false);

    /// This core's UART.
    fn console() -> CmsdkUart<'static> {
        // SAFETY: the AN536 core-private UART; each core creates its
        // console once (and the panic handler a last one), so the two
        // never write at the same time on one core.
        let mut uart =
            unsafe { CmsdkUart::new(NonNull::new(UART_BASE as *mut CmsdkUartRegisters).unwrap()) };
        uart.enable(UART_CLOCK, BAUD);
        uart
    }

    fn fail(out: &mut CmsdkUart<'_>, what: &str) -> ! {
        out.str("bringup: FAILED: ").str(what).str("\n");
        exit(1)
    }

    /// This core's redistributor, set up, with SGI `sgi` enabled; then
    /// this core's CPU interface.
    fn gic_this_core(out: &mut CmsdkUart<'_>, me: Mpidr, sgi: u8) {
        // SAFETY: the AN536's GICR frames, accessible with the MPU off;
        // each core writes only its own frame.
        let gicr = unsafe {
            Redistributor::for_core(NonNull::new(GICR_BASE as *mut GicrSgi).unwrap(), me)
        };
        let Ok(mut gicr) = gicr else {
            fail(out, "no redistributor")
        };
        if gicr.init().and_then(|()| gicr.enable_sgi(sgi)).is_err() {
            fail(out, "redistributor set-up");
        }
        gic::init_cpu_interface();
    }

    #[entry]
    fn main() -> ! {
        let start = timer::counter();
        let mut out = console();
        let me = cpu::mpidr();
        out.str("core ")
            .dec(cpu::core_index_of(me) as u64)
            .str(": hello from EL")
            .dec(cpu::current_el().into())
            .str(", MPIDR ")
            .hex(me.0)
            .str(", timer ")
            .dec(timer::frequency())
            .str(" Hz\n");

        // SAFETY: the AN536's GICD, accessible with the MPU off; only core
        // 0 touches it, here.
        let mut gicd = unsafe { Distributor::new(NonNull::new(GICD_BASE as *mut Gicd).unwrap()) };
        gicd.init();
        gic_this_core(&mut out, me, PONG);

        start::release_secondary_cores();
        out.str("core 0: released core 1\n");

        let deadline = timer::ms_to_ticks(TIMEOUT_MS, timer::frequency());
        while !CORE1_READY.load(Ordering::Acquire) {
            if timer::counter().wrapping_sub(start) > deadline {
                fail(&mut out, "core 1 not ready");
            }
            core::hint::spin_loop();
        }
        let Some(core1) = cpu::core_mpidr(1) else {
            fail(&mut out, "core 1 MPIDR")
        };
        if gic::send_sgi(PING, core1).is_err() {
            fail(&mut out, "core 0: send SGI");
        }
        let id = gic::wait_for_interrupt();
        gic::end_of_interrupt(id);
        if id != PONG_ID {
            fail(&mut out, "core 0: unexpected interrupt");
        }
        let elapsed = timer::counter().wrapping_sub(start);
        out.str("core 0: got SGI ")
            .dec(PONG.into())
            .str(" from core 1; elapsed ")
            .dec(elapsed)
            .str(" ticks (")
            .dec(timer::ticks_to_ms(elapsed, timer::frequency()))
            .str(" ms)\nbringup: ok\n");
        exit(0)
    }

    /// Core 1, on its own stacks (`_num_cores = 2`), after core 0 released
    /// it: take SGI `PING` with IRQs masked, answer with `PONG`.
    #[unsafe(no_mangle)]
    extern "C" fn kmain_secondary() {
        let mut out = console();
        let me = cpu::mpidr();
        let core0 = Mpidr(0);
        gic_this_core(&mut out, me, PING);
        out.str("core ")
            .dec(cpu::core_index_of(me) as u64)
            .str(": up at EL")
            .dec(cpu::current_el().into())
            .str(", IRQs masked: ")
            .str(if cpu::irq_masked() { "yes" } else { "no" })
            .str(", waiting for SGI ")
            .dec(PING.into())
            .str("\n");
        CORE1_READY.store(true, Ordering::Release);
        let id = gic::wait_for_interrupt();
        gic::end_of_interrupt(id);
        if id != PING_ID {
            fail(&mut out, "core 1: unexpected interrupt");
        }
        out.str("core 1: got SGI ")
            .dec(PING.into())
            .str(", answering\n");
        if gic::send_sgi(PONG, core0).is_err() {
            fail(&mut out, "core 1: send SGI");
        }
        loop {
            cpu::wfi();
        }
    }

    /// Reports where it panicked (no `core::fmt`: the message is not
    /// printed) on this core's UART and exits with status 101.
    #[panic_handler]
    fn panic(info: &PanicInfo<'_>) -> ! {
        let mut out = console();
        out.str("PANIC");
        if let Some(at) = info.location() {
            out.str(" at ")
                .str(at.file())
                .str(":")
                .dec(at.line().into());
        }
        out.str("\n");
        exit(101)
    }
}
