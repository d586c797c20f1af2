//! Console output without `core::fmt`: [`Print`] writes strings, decimal
//! and hexadecimal integers to any byte sink (a board's UART).

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

/// Writes `who: panic at FILE:LINE` and a newline to `out` (the location
/// only: no `core::fmt` in the image).
pub fn report_panic<P: Print>(out: &mut P, who: &str, info: &core::panic::PanicInfo<'_>) {
    out.str(who).str(": panic");
    if let Some(l) = info.location() {
        out.str(" at ")
            .str(l.file())
            .str(":")
            .dec(u64::from(l.line()));
    }
    out.str("\n");
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
    fn chains() {
        let s = out(|b| {
            b.str("core ").dec(1).str(" at ").hex(0x80).str("\n");
        });
        assert_eq!(s, "core 1 at 0x80\n");
    }
}
