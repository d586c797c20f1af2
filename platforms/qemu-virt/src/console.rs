//! The console: [`Pl011Console`], a PL011 UART as a [`Print`] sink
//! (`platform-arm-common`'s writer without `core::fmt`).

use core::ptr::NonNull;

use arm_pl011_uart::{PL011Registers, Uart, UniqueMmioPointer};
pub use platform_arm_common::console::{Print, report_panic};

/// A console on a PL011 UART: polled, blocking while the transmit FIFO is
/// full. The UART is used as QEMU (or firmware before us) left it: no
/// baud-rate or line set-up.
pub struct Pl011Console<'a> {
    uart: Uart<'a>,
}

impl<'a> Pl011Console<'a> {
    /// Wraps a UART driver.
    pub fn new(uart: Uart<'a>) -> Self {
        Pl011Console { uart }
    }

    /// A console on the PL011 whose registers start at `base`.
    ///
    /// # Safety
    ///
    /// `base` is the physical (identity-mapped) address of a PL011's
    /// registers, mapped as device memory for `'a`, and nothing else
    /// (another console, another core) accesses those registers meanwhile.
    pub unsafe fn from_base(base: NonNull<PL011Registers>) -> Self {
        // SAFETY: the caller's contract: `base` is a mapped PL011 register
        // block that nothing else aliases for `'a`.
        let regs = unsafe { UniqueMmioPointer::new(base) };
        Pl011Console::new(Uart::new(regs))
    }
}

impl Print for Pl011Console<'_> {
    fn write_bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            while self.uart.is_tx_fifo_full() {
                core::hint::spin_loop();
            }
            self.uart.write_word(byte);
        }
    }
}

/// For debug builds that want `write!`; release images should use
/// [`Print`], which keeps `core::fmt` out of the image.
impl core::fmt::Write for Pl011Console<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}
