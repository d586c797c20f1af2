//! Converting memory transaction descriptors between the FF-A v1.1 and the
//! FF-A v1.2 endpoint memory access descriptor layouts.
//!
//! FF-A v1.2 (memory management protocol, table "Endpoint memory access
//! descriptor") grew that descriptor from 16 to 32 bytes: permissions (4),
//! composite offset (4), 16 bytes of implementation-defined information, 8
//! reserved bytes. A v1.2+ caller MUST use 32 bytes and announce it in the
//! transaction descriptor's "size of each endpoint memory access descriptor"
//! field (offset 24); Hafnium checks the size against the caller's version.
//!
//! `arm-ffa` 0.5's [`arm_ffa::memory_management::MemTransactionDesc`] packs
//! and unpacks only the 16-byte (v1.1) form. Rather than decode descriptors by
//! hand, the double converts a 32-byte-form descriptor to the 16-byte form and
//! lets `arm-ffa` decode it, and converts `arm-ffa`'s packed 16-byte output
//! to the 32-byte form before placing it in an RX buffer. Only the sizes and
//! the offsets that depend on them change; the implementation-defined bytes
//! are dropped when narrowing and zero when widening.
//!
//! Supported shape (the one every FF-A implementation produces): the endpoint
//! memory access descriptor array starts at a 16-byte aligned offset, every
//! descriptor names the same composite memory region descriptor (or none:
//! offset 0, as in a retrieve request), and that composite descriptor is
//! followed by its constituents.

use std::fmt;

/// Size of the memory transaction descriptor header (FF-A v1.1+).
pub const TRANSACTION_HEADER_SIZE: usize = 48;
/// Endpoint memory access descriptor size in FF-A v1.0/v1.1.
pub const ACCESS_DESC_SIZE_V1_1: u32 = 16;
/// Endpoint memory access descriptor size in FF-A v1.2 and later.
pub const ACCESS_DESC_SIZE_V1_2: u32 = 32;

/// Why a descriptor could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError(pub &'static str);

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

fn u32_at(buf: &[u8], off: usize) -> Result<u32, LayoutError> {
    buf.get(off..off + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(LayoutError("descriptor truncated"))
}

fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// The "size of each endpoint memory access descriptor" field of a memory
/// transaction descriptor.
pub fn access_desc_size(buf: &[u8]) -> Result<u32, LayoutError> {
    u32_at(buf, 24)
}

/// Re-lays out a memory transaction descriptor so that its endpoint memory
/// access descriptors are `to_size` bytes (16 or 32), whatever they were.
pub fn relayout(buf: &[u8], to_size: u32) -> Result<Vec<u8>, LayoutError> {
    if buf.len() < TRANSACTION_HEADER_SIZE {
        return Err(LayoutError("shorter than a memory transaction descriptor"));
    }
    if to_size != ACCESS_DESC_SIZE_V1_1 && to_size != ACCESS_DESC_SIZE_V1_2 {
        return Err(LayoutError("target descriptor size must be 16 or 32"));
    }
    let from_size = access_desc_size(buf)?;
    if from_size != ACCESS_DESC_SIZE_V1_1 && from_size != ACCESS_DESC_SIZE_V1_2 {
        return Err(LayoutError(
            "endpoint memory access descriptor size is neither 16 nor 32",
        ));
    }
    let count = u32_at(buf, 28)? as usize;
    let array_off = u32_at(buf, 32)? as usize;
    if count == 0 {
        return Err(LayoutError("no endpoint memory access descriptor"));
    }
    if !array_off.is_multiple_of(16) || array_off < TRANSACTION_HEADER_SIZE {
        return Err(LayoutError(
            "endpoint memory access descriptor array offset not 16-byte aligned after the header",
        ));
    }
    let from = from_size as usize;
    let to = to_size as usize;
    let array_end = count
        .checked_mul(from)
        .and_then(|n| n.checked_add(array_off))
        .ok_or(LayoutError("descriptor count overflows"))?;
    if array_end > buf.len() {
        return Err(LayoutError("endpoint memory access descriptors truncated"));
    }
    let mut composite = None;
    for i in 0..count {
        let c = u32_at(buf, array_off + i * from + 4)? as usize;
        match composite {
            None => composite = Some(c),
            Some(prev) if prev != c => {
                return Err(LayoutError(
                    "receivers name different composite descriptors (not modelled)",
                ));
            }
            _ => {}
        }
    }
    let composite = composite.unwrap_or(0);
    let new_array_off = TRANSACTION_HEADER_SIZE;
    let new_composite = (new_array_off + count * to).next_multiple_of(8);
    let composite_bytes: &[u8] = if composite == 0 {
        &[]
    } else {
        let ranges = u32_at(buf, composite + 4)? as usize;
        let len = ranges
            .checked_mul(16)
            .and_then(|n| n.checked_add(16))
            .ok_or(LayoutError("address range count overflows"))?;
        buf.get(composite..composite + len)
            .ok_or(LayoutError("composite memory region descriptor truncated"))?
    };
    let mut out = vec![0u8; new_composite + composite_bytes.len()];
    out[..TRANSACTION_HEADER_SIZE].copy_from_slice(&buf[..TRANSACTION_HEADER_SIZE]);
    put_u32(&mut out, 24, to_size);
    put_u32(&mut out, 32, new_array_off as u32);
    for i in 0..count {
        let src = &buf[array_off + i * from..array_off + (i + 1) * from];
        let dst_off = new_array_off + i * to;
        // Permissions descriptor (endpoint id, permissions, flags).
        out[dst_off..dst_off + 4].copy_from_slice(&src[..4]);
        let c = if composite == 0 {
            0
        } else {
            new_composite as u32
        };
        put_u32(&mut out, dst_off + 4, c);
        // The trailing reserved u64 is carried over so that a non-zero MBZ
        // field stays visible to whoever checks it.
        out[dst_off + to - 8..dst_off + to].copy_from_slice(&src[from - 8..]);
    }
    out[new_composite..].copy_from_slice(composite_bytes);
    Ok(out)
}

/// Converts to the FF-A v1.1 (16-byte access descriptor) layout `arm-ffa`
/// 0.5 understands.
pub fn to_v1_1(buf: &[u8]) -> Result<Vec<u8>, LayoutError> {
    relayout(buf, ACCESS_DESC_SIZE_V1_1)
}

/// Converts to the FF-A v1.2 (32-byte access descriptor) layout.
pub fn to_v1_2(buf: &[u8]) -> Result<Vec<u8>, LayoutError> {
    relayout(buf, ACCESS_DESC_SIZE_V1_2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arm_ffa::memory_management::{
        ConstituentMemRegion, DataAccessPerm, Handle, InstuctionAccessPerm, MemAccessPerm,
        MemTransactionDesc,
    };

    #[test]
    fn widen_and_narrow_round_trip() {
        let d = MemTransactionDesc {
            sender_id: 1,
            handle: Handle(0x8000_0000_0000_0007),
            tag: 9,
            ..Default::default()
        };
        let perm = MemAccessPerm {
            endpoint_id: 0x8001,
            instr_access: InstuctionAccessPerm::NotExecutable,
            data_access: DataAccessPerm::ReadWrite,
            flags: 0,
        };
        let cons = [
            ConstituentMemRegion {
                address: 0x4000_0000,
                page_cnt: 2,
            },
            ConstituentMemRegion {
                address: 0x5000_0000,
                page_cnt: 1,
            },
        ];
        let mut buf = [0u8; 512];
        let n = d.pack(&cons, &[perm], &mut buf);
        let narrow = &buf[..n];
        let wide = to_v1_2(narrow).unwrap();
        assert_eq!(access_desc_size(&wide).unwrap(), 32);
        assert_eq!(wide.len(), narrow.len() + 16);
        // Composite offset of the single receiver: header + one 32-byte desc.
        assert_eq!(u32_at(&wide, 48 + 4).unwrap(), 80);
        // Total page count and range count at the composite.
        assert_eq!(u32_at(&wide, 80).unwrap(), 3);
        assert_eq!(u32_at(&wide, 84).unwrap(), 2);
        assert_eq!(to_v1_1(&wide).unwrap(), narrow);
        let again = to_v1_1(&wide).unwrap();
        let (back, _, c) = MemTransactionDesc::unpack(&again).unwrap();
        assert_eq!(back, d);
        assert_eq!(c.unwrap().count(), 2);
    }

    #[test]
    fn rejects_odd_sizes_and_truncation() {
        let mut buf = [0u8; 512];
        let n = MemTransactionDesc::default().pack(&[], &[MemAccessPerm::default()], &mut buf);
        let mut bad = buf[..n].to_vec();
        bad[24] = 24;
        assert!(to_v1_1(&bad).is_err());
        assert!(to_v1_2(&buf[..40]).is_err());
        let wide = to_v1_2(&buf[..n]).unwrap();
        assert!(to_v1_1(&wide[..60]).is_err());
    }
}
