//! Bring-up of the two-core QEMU `virt` board (GICv3, Cortex-A57, EL1):
//! core 0 says hello, starts core 1 with PSCI `CPU_ON`, and the two cores
//! exchange SGIs with IRQs masked (WFI, then acknowledge through
//! `ICC_IAR1_EL1`): SGI 1 from core 0 to core 1, SGI 2 back. Core 0 then
//! prints the elapsed timer ticks and exits 0 through semihosting.
//!
//! ```text
//! cargo build -p platform-qemu-virt --example bringup --target aarch64-unknown-none --release
//! qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a57 -smp 2 -m 128M \
//!     -nographic -semihosting -kernel target/aarch64-unknown-none/release/examples/bringup
//! ```
//!
//! The addresses below are QEMU `virt`'s (hw/arm/virt.c); in an image they
//! come from the manifest. No `core::fmt`: the console is `Print`.

#![cfg_attr(target_os = "none", no_std, no_main)]

/// On the host there is nothing to bring up.
#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
fn main() {}

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod image {
    use core::panic::PanicInfo;
    use core::ptr::NonNull;
    use core::sync::atomic::{AtomicBool, Ordering};

    use aarch64_rt::{ExceptionHandlers, InitialPagetable, entry, exception_handlers};
    use platform_qemu_virt::console::Pl011Console;
    use platform_qemu_virt::cpu::{self, Mpidr};
    use platform_qemu_virt::gic::{self, Distributor, Gicd, GicrSgi, IntId, Redistributor};
    use platform_qemu_virt::psci::{self, Stack};
    use platform_qemu_virt::{Print, exit, timer};
    use spin::mutex::SpinMutex;

    /// PL011 UART0.
    const UART_BASE: usize = 0x0900_0000;
    /// GICv3 distributor.
    const GICD_BASE: usize = 0x0800_0000;
    /// GICv3 redistributor frames (one per core, contiguous).
    const GICR_BASE: usize = 0x080a_0000;
    /// The SGI core 0 sends to core 1, and the answer.
    const PING: u8 = 1;
    const PONG: u8 = 2;
    const PING_ID: IntId = IntId::sgi(PING as u32);
    const PONG_ID: IntId = IntId::sgi(PONG as u32);
    /// How long core 0 waits for core 1 before failing.
    const TIMEOUT_MS: u64 = 5000;

    aarch64_rt::initial_pagetable!(
        InitialPagetable(platform_qemu_virt::paging::identity_map()),
        platform_qemu_virt::paging::MAIR.0
    );

    /// Every exception is unexpected (IRQs stay masked): the defaults panic.
    struct Exceptions;

    impl ExceptionHandlers for Exceptions {}

    exception_handlers!(Exceptions);

    entry!(main, 8);

    /// The one UART, shared by both cores.
    static CONSOLE: SpinMutex<Option<Pl011Console<'static>>> = SpinMutex::new(None);

    /// Core 1's stack (aarch64-rt's `start_core` puts the closure at its top).
    static mut CORE1_STACK: Stack<4> = Stack::new();

    /// Set by core 1 once it can take SGI `PING`.
    static CORE1_READY: AtomicBool = AtomicBool::new(false);

    /// Prints through the shared console.
    fn with_console(f: impl FnOnce(&mut Pl011Console<'static>)) {
        if let Some(console) = CONSOLE.lock().as_mut() {
            f(console);
        }
    }

    fn fail(what: &str) -> ! {
        with_console(|c| {
            c.str("bringup: FAILED: ").str(what).str("\n");
        });
        exit(1)
    }

    fn main(_x0: u64, _x1: u64, _x2: u64, _x3: u64) -> ! {
        let start = timer::counter();
        // SAFETY: UART0 of QEMU virt, device memory in the initial page table;
        // only this console (behind CONSOLE's lock) touches it.
        let uart = unsafe { Pl011Console::from_base(NonNull::new(UART_BASE as *mut _).unwrap()) };
        *CONSOLE.lock() = Some(uart);
        let me = cpu::mpidr();
        with_console(|c| {
            c.str("core ")
                .dec(cpu::core_index_of(me) as u64)
                .str(": hello from EL")
                .dec(cpu::current_el().into())
                .str(", MPIDR ")
                .hex(me.0)
                .str(", timer ")
                .dec(timer::frequency())
                .str(" Hz\n");
        });

        // SAFETY: QEMU virt's GICD and GICR frames, device memory; the
        // distributor is only ever touched here, on core 0, and each core
        // writes only its own redistributor frame.
        let (mut gicd, gicr) = unsafe {
            (
                Distributor::new(NonNull::new(GICD_BASE as *mut Gicd).unwrap()),
                Redistributor::for_core(NonNull::new(GICR_BASE as *mut GicrSgi).unwrap(), me),
            )
        };
        gicd.init();
        let Ok(mut gicr) = gicr else {
            fail("core 0: no redistributor")
        };
        if gicr.init().and_then(|()| gicr.enable_sgi(PONG)).is_err() {
            fail("core 0: redistributor set-up");
        }
        gic::init_cpu_interface();

        let Some(core1) = cpu::core_mpidr(1) else {
            fail("core 1 MPIDR")
        };
        // SAFETY: CORE1_STACK is used by nothing but core 1, which is started
        // once; it lies in RAM, normal cacheable memory in both cores' tables.
        let started =
            unsafe { psci::start_core(core1, &raw mut CORE1_STACK, move || secondary(me)) };
        if started.is_err() {
            fail("PSCI CPU_ON");
        }
        with_console(|c| {
            c.str("core 0: started core 1 (CPU_ON)\n");
        });

        let deadline = timer::ms_to_ticks(TIMEOUT_MS, timer::frequency());
        while !CORE1_READY.load(Ordering::Acquire) {
            if timer::counter().wrapping_sub(start) > deadline {
                fail("core 1 not ready");
            }
            core::hint::spin_loop();
        }
        if gic::send_sgi(PING, core1).is_err() {
            fail("core 0: send SGI");
        }
        let id = gic::wait_for_interrupt();
        gic::end_of_interrupt(id);
        if id != PONG_ID {
            fail("core 0: unexpected interrupt");
        }
        let elapsed = timer::counter().wrapping_sub(start);
        with_console(|c| {
            c.str("core 0: got SGI ")
                .dec(PONG.into())
                .str(" from core 1; elapsed ")
                .dec(elapsed)
                .str(" ticks (")
                .dec(timer::ticks_to_ms(elapsed, timer::frequency()))
                .str(" ms)\nbringup: ok\n");
        });
        exit(0)
    }

    /// Core 1: take SGI `PING` with IRQs masked, answer with `PONG`.
    fn secondary(core0: Mpidr) {
        let me = cpu::mpidr();
        // SAFETY: QEMU virt's GICR frames; this core writes only its own.
        let gicr = unsafe {
            Redistributor::for_core(NonNull::new(GICR_BASE as *mut GicrSgi).unwrap(), me)
        };
        let Ok(mut gicr) = gicr else {
            fail("core 1: no redistributor")
        };
        if gicr.init().and_then(|()| gicr.enable_sgi(PING)).is_err() {
            fail("core 1: redistributor set-up");
        }
        gic::init_cpu_interface();
        with_console(|c| {
            c.str("core ")
                .dec(cpu::core_index_of(me) as u64)
                .str(": up at EL")
                .dec(cpu::current_el().into())
                .str(", IRQs masked: ")
                .str(if cpu::irq_masked() { "yes" } else { "no" })
                .str(", waiting for SGI ")
                .dec(PING.into())
                .str("\n");
        });
        CORE1_READY.store(true, Ordering::Release);
        let id = gic::wait_for_interrupt();
        gic::end_of_interrupt(id);
        if id != PING_ID {
            fail("core 1: unexpected interrupt");
        }
        with_console(|c| {
            c.str("core 1: got SGI ")
                .dec(PING.into())
                .str(", answering\n");
        });
        if gic::send_sgi(PONG, core0).is_err() {
            fail("core 1: send SGI");
        }
        loop {
            cpu::wfi();
        }
    }

    /// Reports where it panicked (no `core::fmt`: the message is not printed)
    /// and exits with status 101.
    #[panic_handler]
    fn panic(info: &PanicInfo<'_>) -> ! {
        // Not through the lock: the panicking core may hold it.
        // SAFETY: a last-gasp write to UART0; the other core may be printing
        // too, which at worst interleaves characters.
        let mut uart =
            unsafe { Pl011Console::from_base(NonNull::new(UART_BASE as *mut _).unwrap()) };
        uart.str("PANIC");
        if let Some(at) = info.location() {
            uart.str(" at ")
                .str(at.file())
                .str(":")
                .dec(at.line().into());
        }
        uart.str("\n");
        exit(101)
    }
}
