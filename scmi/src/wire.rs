//! Little-endian argument reader and reply writer.
//!
//! Every read of a request argument is bounds-checked: a payload shorter
//! than a command needs answers PROTOCOL_ERROR (SCMI v3.2 §4.1.4). Longer
//! payloads are accepted (layouts grew between protocol versions). Every
//! write of a reply is bounded by the space the agent gave; a handler that
//! would overflow it gets an error instead of a truncated reply.

use crate::header::Status;

/// Reads the arguments of a request, in order.
#[derive(Debug)]
pub struct Args<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Args<'a> {
    /// Arguments in `payload` (the bytes after the header).
    pub fn new(payload: &'a [u8]) -> Self {
        Args {
            bytes: payload,
            at: 0,
        }
    }

    /// The next little-endian u32; PROTOCOL_ERROR if the payload is short.
    pub fn u32(&mut self) -> Result<u32, Status> {
        let b = self
            .bytes
            .get(self.at..)
            .and_then(<[u8]>::first_chunk::<4>)
            .ok_or(Status::ProtocolError)?;
        self.at += 4;
        Ok(u32::from_le_bytes(*b))
    }

    /// Two u32 words, low first, as a u64.
    pub fn u64(&mut self) -> Result<u64, Status> {
        let lo = self.u32()?;
        let hi = self.u32()?;
        Ok(u64::from(hi) << 32 | u64::from(lo))
    }

    /// The next word as a signed value.
    pub fn i32(&mut self) -> Result<i32, Status> {
        self.u32().map(|v| v as i32)
    }

    /// Bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.at..).unwrap_or_default()
    }
}

/// Copies `min(dst.len(), src.len())` bytes from the front of `src` to the
/// front of `dst`; returns how many. For callers that have proven the
/// lengths equal (or want the shorter): unlike `copy_from_slice`, whose
/// length check stays in a firmware image when it is not inlined, this
/// has no panic path.
#[inline]
pub(crate) fn copy_prefix(dst: &mut [u8], src: &[u8]) -> usize {
    let mut n = 0;
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
        n += 1;
    }
    n
}

/// Little-endian `words`, as many as fit, in an `N`-byte body (the rest
/// zero). Whole 4-byte chunks (`as_chunks_mut`), so no panic path: a
/// `chunks_exact_mut(4).zip(..)` not inlined divides by a chunk size the
/// compiler no longer sees is 4.
#[inline]
pub(crate) fn le_words<const N: usize>(words: &[u32]) -> [u8; N] {
    let mut b = [0u8; N];
    let (chunks, _) = b.as_chunks_mut::<4>();
    for (c, w) in chunks.iter_mut().zip(words) {
        *c = w.to_le_bytes();
    }
    b
}

/// Writes a reply payload (after the header and status words) into the
/// space the agent gave.
#[derive(Debug)]
pub struct Reply<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Reply<'a> {
    /// A writer over `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Reply { buf, len: 0 }
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    /// Sizes one page of a multi-part reply: of `left` entries of `entry`
    /// bytes each, after a `header` of counts, how many fit in the space
    /// left (at most `max_returned`), and how many then remain. GENERIC_ERROR
    /// when entries are left but not one fits (an empty page would stall
    /// the agent) or the remaining count exceeds its field.
    pub fn page(
        &self,
        left: usize,
        header: usize,
        entry: usize,
        max_returned: usize,
        max_remaining: usize,
    ) -> Result<(usize, u32), Status> {
        let fit = self.remaining().saturating_sub(header) / entry.max(1);
        let n = left.min(fit).min(max_returned);
        if n == 0 && left > 0 {
            return Err(Status::GenericError);
        }
        let remaining = left - n;
        if remaining > max_remaining {
            return Err(Status::GenericError);
        }
        Ok((n, remaining as u32))
    }

    /// One page of a list in the layout CLOCK_DESCRIBE_RATES (SCMI v3.2
    /// §4.6.2.6), PERFORMANCE_DESCRIBE_LEVELS (§4.5.3.6) and
    /// VOLTAGE_DESCRIBE_LEVELS (§4.9.2.6) share: one count word ([31:16]
    /// remaining, [11:0] returned), then as many `entry`-byte items from
    /// `skip` on as fit, each written by `put` (given the item's index).
    /// `skip` past the end is OUT_OF_RANGE; `skip` equal to the length
    /// returns an empty page.
    pub fn list_page<T>(
        &mut self,
        items: &[T],
        skip: usize,
        entry: usize,
        mut put: impl FnMut(&mut Self, usize, &T) -> Result<(), Status>,
    ) -> Result<(), Status> {
        let left = items.len().checked_sub(skip).ok_or(Status::OutOfRange)?;
        let (n, remaining) = self.page(left, 4, entry, 0xfff, 0xffff)?;
        self.u32(remaining << 16 | n as u32)?;
        for (k, item) in items.iter().enumerate().skip(skip).take(n) {
            put(self, k, item)?;
        }
        Ok(())
    }

    /// Appends raw bytes; GENERIC_ERROR if they do not fit (the agent's
    /// buffer is too small for a fixed-size reply).
    pub fn bytes(&mut self, data: &[u8]) -> Result<(), Status> {
        let end = self
            .len
            .checked_add(data.len())
            .ok_or(Status::GenericError)?;
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(Status::GenericError)?;
        copy_prefix(dst, data);
        self.len = end;
        Ok(())
    }

    /// Appends a little-endian u32.
    pub fn u32(&mut self, v: u32) -> Result<(), Status> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a signed word.
    pub fn i32(&mut self, v: i32) -> Result<(), Status> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a u64 as two words, low first.
    pub fn u64(&mut self, v: u64) -> Result<(), Status> {
        self.u32(v as u32)?;
        self.u32((v >> 32) as u32)
    }

    /// Appends `name` NUL-padded to `N` bytes, truncated to `N - 1`
    /// characters so it stays NUL-terminated.
    pub fn name<const N: usize>(&mut self, name: &str) -> Result<(), Status> {
        let mut b = [0u8; N];
        let n = N.saturating_sub(1);
        copy_prefix(b.get_mut(..n).unwrap_or_default(), name.as_bytes());
        self.bytes(&b)
    }

    /// Overwrites the word at byte offset `at` (already written).
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        let Some(end) = at.checked_add(4).filter(|&end| end <= self.len) else {
            return;
        };
        if let Some(w) = self.buf.get_mut(at..end) {
            copy_prefix(w, &v.to_le_bytes());
        }
    }

    /// Forgets everything written (for error replies).
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_u32_near_usize_max_is_ignored() {
        let mut buf = [0u8; 8];
        let mut r = Reply::new(&mut buf);
        r.u32(1).unwrap();
        r.u32(2).unwrap();
        // Latent bug: `at + 4` wrapped (release) or overflowed (debug), and
        // the wrapped end passed the `<= len` check: a panic either way.
        r.patch_u32(usize::MAX - 1, 7);
        r.patch_u32(5, 7);
        assert_eq!(buf, [1, 0, 0, 0, 2, 0, 0, 0]);
        let mut r = Reply::new(&mut buf);
        r.u32(1).unwrap();
        r.u32(2).unwrap();
        r.patch_u32(4, 9);
        assert_eq!(buf, [1, 0, 0, 0, 9, 0, 0, 0]);
    }

    #[test]
    fn name_is_truncated_and_nul_terminated() {
        let mut buf = [0xffu8; 16];
        let mut r = Reply::new(&mut buf);
        r.name::<4>("abcdef").unwrap();
        r.name::<4>("ab").unwrap();
        assert_eq!(r.len(), 8);
        assert_eq!(&buf[..8], b"abc\0ab\0\0");
    }

    #[test]
    fn le_words_fills_what_fits() {
        assert_eq!(le_words::<8>(&[1, 2, 3]), [1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(le_words::<6>(&[1, 2]), [1, 0, 0, 0, 0, 0]);
        assert_eq!(le_words::<8>(&[0x0403_0201]), [1, 2, 3, 4, 0, 0, 0, 0]);
    }

    #[test]
    fn copy_prefix_copies_the_shorter() {
        let mut d = [0u8; 3];
        assert_eq!(copy_prefix(&mut d, &[1, 2, 3, 4]), 3);
        assert_eq!(d, [1, 2, 3]);
        assert_eq!(copy_prefix(&mut d, &[9]), 1);
        assert_eq!(d, [9, 2, 3]);
    }
}
