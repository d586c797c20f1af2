//! Console output without `core::fmt`: [`Print`] writes strings, decimal
//! and hexadecimal integers to any byte sink; [`CmsdkUart`] is the sink for
//! the AN536's CMSDK APB UARTs.
//!
//! `Print` is the same as `platform-qemu-virt`'s (the two board crates do
//! not depend on each other).

use core::ptr::NonNull;

use safe_mmio::fields::{ReadPureWrite, ReadWrite};
use safe_mmio::{UniqueMmioPointer, field, field_shared};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A byte sink with integer printing that does not use `core::fmt`.
///
/// Implementors provide [`write_bytes`](Print::write_bytes); the other
/// methods chain: `out.str("ticks ").dec(42).str("\n");`.
pub trait Print {
    /// Writes `bytes` as they are.
    fn write_bytes(&mut self, bytes: &[u8]);

    /// Writes a string.
    fn str(&mut self, s: &str) -> &mut Self {
        self.write_bytes(s.as_bytes());
        self
    }

    /// Writes `value` in decimal.
    fn dec(&mut self, value: u64) -> &mut Self {
        let mut buf = [0u8; 20];
        let digits = decimal(value, &mut buf);
        self.write_bytes(digits);
        self
    }

    /// Writes `value` in decimal with a leading `-` if negative.
    fn signed(&mut self, value: i64) -> &mut Self {
        if value < 0 {
            self.write_bytes(b"-");
        }
        self.dec(value.unsigned_abs())
    }

    /// Writes `value` in hexadecimal with a `0x` prefix and no leading
    /// zeros (`0x0` for zero).
    fn hex(&mut self, value: u64) -> &mut Self {
        let mut buf = [0u8; 18];
        let digits = hexadecimal(value, &mut buf);
        self.write_bytes(digits);
        self
    }
}

/// The decimal digits of `value`, written at the end of `buf`.
fn decimal(mut value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    for slot in buf.iter_mut().rev() {
        // `value % 10 < 10`: the cast cannot truncate.
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
        start = start.saturating_sub(1);
        if value == 0 {
            break;
        }
    }
    buf.get(start..).unwrap_or_default()
}

/// `0x` and the hexadecimal digits of `value`, written at the end of `buf`.
fn hexadecimal(mut value: u64, buf: &mut [u8; 18]) -> &[u8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut start = buf.len();
    for slot in buf.iter_mut().rev() {
        *slot = DIGITS[(value & 0xf) as usize];
        value >>= 4;
        start = start.saturating_sub(1);
        if value == 0 {
            break;
        }
    }
    // At most 16 digits were written, so `start >= 2`.
    start = start.saturating_sub(2);
    if let Some(prefix) = buf.get_mut(start..start.saturating_add(2)) {
        prefix.copy_from_slice(b"0x");
    }
    buf.get(start..).unwrap_or_default()
}

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
    use super::Print;

    struct Buf(Vec<u8>);

    impl Print for Buf {
        fn write_bytes(&mut self, bytes: &[u8]) {
            self.0.extend_from_slice(bytes);
        }
    }

    fn out(f: impl FnOnce(&mut Buf)) -> String {
        let mut buf = Buf(Vec::new());
        f(&mut buf);
        String::from_utf8(buf.0).unwrap()
    }

    #[test]
    fn decimal() {
        assert_eq!(
            out(|b| {
                b.dec(0);
            }),
            "0"
        );
        assert_eq!(
            out(|b| {
                b.dec(7);
            }),
            "7"
        );
        assert_eq!(
            out(|b| {
                b.dec(10);
            }),
            "10"
        );
        assert_eq!(
            out(|b| {
                b.dec(1234567890);
            }),
            "1234567890"
        );
        assert_eq!(
            out(|b| {
                b.dec(u64::MAX);
            }),
            u64::MAX.to_string()
        );
    }

    #[test]
    fn signed() {
        assert_eq!(
            out(|b| {
                b.signed(-5);
            }),
            "-5"
        );
        assert_eq!(
            out(|b| {
                b.signed(0);
            }),
            "0"
        );
        assert_eq!(
            out(|b| {
                b.signed(i64::MIN);
            }),
            i64::MIN.to_string()
        );
        assert_eq!(
            out(|b| {
                b.signed(i64::MAX);
            }),
            i64::MAX.to_string()
        );
    }

    #[test]
    fn hexadecimal() {
        assert_eq!(
            out(|b| {
                b.hex(0);
            }),
            "0x0"
        );
        assert_eq!(
            out(|b| {
                b.hex(0xf);
            }),
            "0xf"
        );
        assert_eq!(
            out(|b| {
                b.hex(0x10);
            }),
            "0x10"
        );
        assert_eq!(
            out(|b| {
                b.hex(0x4008_0000);
            }),
            "0x40080000"
        );
        assert_eq!(
            out(|b| {
                b.hex(u64::MAX);
            }),
            "0xffffffffffffffff"
        );
    }

    #[test]
    fn baud() {
        assert_eq!(super::baud_divider(50_000_000, 115_200), Some(434));
        assert_eq!(super::baud_divider(50_000_000, 0), None);
        assert_eq!(super::baud_divider(100, 10), None);
        assert_eq!(super::baud_divider(160, 10), Some(16));
    }

    #[test]
    fn register_offsets() {
        assert_eq!(core::mem::size_of::<super::CmsdkUartRegisters>(), 0x14);
    }

    #[test]
    fn chains() {
        let s = out(|b| {
            b.str("core ").dec(1).str(" at ").hex(0x80).str("\n");
        });
        assert_eq!(s, "core 1 at 0x80\n");
    }
}
