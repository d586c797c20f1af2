//! Little-endian field readers and writers for the message codecs
//! ([`crate::msg`], [`crate::bus`]) and the AMP layout header
//! ([`crate::amp`]): every read and write is bounds-checked and reports
//! running out instead of panicking.

use crate::msg::{EncodeError, HEADER_SIZE, Header};

/// A payload ran out before the field being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short;

/// Little-endian reader over a payload.
pub(crate) struct Rd<'a>(pub(crate) &'a [u8]);

impl<'a> Rd<'a> {
    pub(crate) fn take<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let (a, rest) = self.0.split_first_chunk::<N>().ok_or(Short)?;
        self.0 = rest;
        Ok(*a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, Short> {
        Ok(self.take::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, Short> {
        self.take().map(u16::from_le_bytes)
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Short> {
        self.take().map(u32::from_le_bytes)
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Short> {
        self.take().map(u64::from_le_bytes)
    }
    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Short> {
        let (b, rest) = self.0.split_at_checked(n).ok_or(Short)?;
        self.0 = rest;
        Ok(b)
    }
    /// What is left.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.0
    }
    /// `Ok` when nothing is left (a payload read exactly).
    pub(crate) fn end(&self) -> Result<(), Short> {
        self.0.is_empty().then_some(()).ok_or(Short)
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

/// Little-endian writer after a message header.
pub(crate) struct Wr<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl<'a> Wr<'a> {
    /// A writer from the start of `buf`.
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Wr { buf, at: 0 }
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        let end = self.at.checked_add(b.len()).ok_or(EncodeError::TooLarge)?;
        let dst = self
            .buf
            .get_mut(self.at..end)
            .ok_or(EncodeError::BufferTooSmall)?;
        copy_prefix(dst, b);
        self.at = end;
        Ok(())
    }
    pub(crate) fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.bytes(&[v])
    }
    pub(crate) fn u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn u64(&mut self, v: u64) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }
}

/// Encodes a header plus the payload `body` writes into `out`; returns the
/// message size (the header's `msg_size`).
pub(crate) fn encode_frame(
    out: &mut [u8],
    msg_type: u8,
    msg_id: u8,
    dev_num: u16,
    token: u16,
    body: impl FnOnce(&mut Wr<'_>) -> Result<(), EncodeError>,
) -> Result<usize, EncodeError> {
    if out.len() < HEADER_SIZE {
        return Err(EncodeError::BufferTooSmall);
    }
    let mut w = Wr {
        buf: out,
        at: HEADER_SIZE,
    };
    body(&mut w)?;
    let size = w.at;
    let msg_size = u16::try_from(size).map_err(|_| EncodeError::TooLarge)?;
    Header {
        msg_type,
        msg_id,
        dev_num,
        token,
        msg_size,
    }
    .encode(out)?;
    Ok(size)
}
