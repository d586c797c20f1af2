//! The console: [`CmsdkUart`], the AN536's CMSDK APB UART as a [`Print`]
//! sink (`platform-arm-common`'s writer without `core::fmt`).

use core::ptr::NonNull;

pub use platform_arm_common::console::Print;
use safe_mmio::fields::{ReadPureWrite, ReadWrite};
use safe_mmio::{UniqueMmioPointer, field, field_shared};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The CMSDK APB UART register block (Arm CoreLink SDK, as in QEMU's
/// `hw/char/cmsdk-apb-uart.c`).
#[derive(Clone, Eq, FromBytes, Immutable, IntoBytes, KnownLayout, PartialEq)]
#[repr(C, align(4))]
pub struct CmsdkUartRegisters {
    /// 0x000: DATA, the byte to send / the byte received.
    data: ReadWrite<u32>,
    /// 0x004: STATE: bit 0 TX buffer full, bit 1 RX buffer full, bits 2/3
    /// TX/RX overrun (write 1 to clear).
    state: ReadWrite<u32>,
    /// 0x008: CTRL: bit 0 TX enable, bit 1 RX enable, bits 2..6 interrupt
    /// enables.
    ctrl: ReadPureWrite<u32>,
    /// 0x00C: INTSTATUS (read) / INTCLEAR (write 1 to clear).
    intstatus: ReadPureWrite<u32>,
    /// 0x010: BAUDDIV, the APB clock divided by the baud rate (>= 16).
    bauddiv: ReadPureWrite<u32>,
}

/// STATE: the transmit buffer is full.
const STATE_TX_FULL: u32 = 1 << 0;
/// CTRL: transmitter enable.
const CTRL_TX_EN: u32 = 1 << 0;
/// CTRL: receiver enable.
const CTRL_RX_EN: u32 = 1 << 1;

/// BAUDDIV for `baud` on an APB clock of `pclk_hz`: at least 16 (the
/// UART's minimum), `None` if `baud` is 0 or the divider would be below 16.
pub const fn baud_divider(pclk_hz: u32, baud: u32) -> Option<u32> {
    if baud == 0 {
        return None;
    }
    let div = pclk_hz / baud;
    if div < 16 { None } else { Some(div) }
}

/// A polled console on a CMSDK APB UART.
pub struct CmsdkUart<'a> {
    regs: UniqueMmioPointer<'a, CmsdkUartRegisters>,
}

impl CmsdkUart<'_> {
    /// The UART whose registers start at `base`.
    ///
    /// # Safety
    ///
    /// `base` is a CMSDK APB UART's register block, accessible (MPU off, or
    /// a device region) for the returned value's life, and nothing else
    /// accesses that UART meanwhile. On the AN536 each core has a private
    /// UART at the same address: one value per core is fine.
    pub unsafe fn new(base: NonNull<CmsdkUartRegisters>) -> Self {
        // SAFETY: the caller's contract: a valid, unaliased register block.
        let regs = unsafe { UniqueMmioPointer::new(base) };
        CmsdkUart { regs }
    }

    /// Sets the baud-rate divider and enables the transmitter and the
    /// receiver (QEMU drops output while TX is disabled or BAUDDIV < 16).
    /// `false` if the divider is out of range (the UART is left as it was).
    pub fn enable(&mut self, pclk_hz: u32, baud: u32) -> bool {
        let Some(div) = baud_divider(pclk_hz, baud) else {
            return false;
        };
        field!(self.regs, bauddiv).write(div);
        field!(self.regs, ctrl).write(CTRL_TX_EN | CTRL_RX_EN);
        true
    }

    /// Whether the transmit buffer is full.
    pub fn tx_full(&mut self) -> bool {
        field!(self.regs, state).read() & STATE_TX_FULL != 0
    }

    /// Whether the transmitter is enabled.
    pub fn tx_enabled(&self) -> bool {
        field_shared!(self.regs, ctrl).read() & CTRL_TX_EN != 0
    }

    /// Sends one byte, waiting while the transmit buffer is full. Nothing
    /// is sent (and nothing waited for) while the transmitter is disabled.
    pub fn put(&mut self, byte: u8) {
        if !self.tx_enabled() {
            return;
        }
        while self.tx_full() {
            core::hint::spin_loop();
        }
        field!(self.regs, data).write(byte.into());
    }
}

impl Print for CmsdkUart<'_> {
    fn write_bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.put(byte);
        }
    }
}

/// For debug builds that want `write!`; release images should use
/// [`Print`], which keeps `core::fmt` out of the image.
impl core::fmt::Write for CmsdkUart<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn baud() {
        assert_eq!(super::baud_divider(50_000_000, 115_200), Some(434));
        assert_eq!(super::baud_divider(50_000_000, 0), None);
        assert_eq!(super::baud_divider(100, 10), None);
        assert_eq!(super::baud_divider(160, 10), Some(16));
    }
}
