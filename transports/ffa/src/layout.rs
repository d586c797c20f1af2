//! The endpoint memory access descriptor in the FF-A 1.2 layout.
//!
//! FF-A 1.2 (memory management, "Endpoint memory access descriptor") grew
//! the descriptor from 16 to 32 bytes: permissions (4), composite offset
//! (4), 16 implementation-defined bytes, 8 reserved; a caller of version
//! 1.2 or later must use it and say so in the transaction descriptor's
//! "size of each endpoint memory access descriptor" (offset 24). `arm-ffa`
//! 0.5 packs and unpacks the 16-byte (FF-A 1.1) form, so descriptors are
//! widened after packing and narrowed before unpacking; only that size,
//! the array and the offsets that point past it change (the
//! implementation-defined bytes are zero when widened, dropped when
//! narrowed).

/// Offset of the descriptor-size field in a memory transaction descriptor.
const SIZE_AT: usize = 24;
/// Offset of the descriptor count.
const COUNT_AT: usize = 28;
/// Offset of the descriptor array's offset.
const ARRAY_AT: usize = 32;
/// The FF-A 1.1 descriptor size.
const NARROW: usize = 16;
/// The FF-A 1.2 descriptor size.
pub const WIDE: usize = 32;

fn get(buf: &[u8], at: usize) -> Option<usize> {
    let b = buf.get(at..)?.first_chunk::<4>()?;
    Some(u32::from_le_bytes(*b) as usize)
}

fn put(buf: &mut [u8], at: usize, v: usize) -> Option<()> {
    *buf.get_mut(at..)?.first_chunk_mut::<4>()? = u32::try_from(v).ok()?.to_le_bytes();
    Some(())
}

/// `buf.copy_within(src..src + n, dst)` without its panic: `None`, and
/// nothing moved, unless both ranges lie inside `buf`.
fn move_within(buf: &mut [u8], src: usize, n: usize, dst: usize) -> Option<()> {
    if src.checked_add(n)? > buf.len() || dst.checked_add(n)? > buf.len() {
        return None;
    }
    let one = |buf: &mut [u8], i: usize| {
        let b = *buf.get(src + i)?;
        *buf.get_mut(dst + i)? = b;
        Some(())
    };
    // The ranges may overlap: a move up copies from the end, a move down
    // from the start, so that no byte is overwritten before it moved.
    if dst > src {
        (0..n).rev().try_for_each(|i| one(buf, i))
    } else {
        (0..n).try_for_each(|i| one(buf, i))
    }
}

/// Converts the descriptor in `buf[..len]` between access-descriptor
/// sizes `from` and `to`; its new length. `None` if it is not in the
/// `from` layout or does not fit `buf`.
fn relayout(buf: &mut [u8], len: usize, from: usize, to: usize) -> Option<usize> {
    if get(buf, SIZE_AT)? != from {
        return None;
    }
    let count = get(buf, COUNT_AT)?;
    let array = get(buf, ARRAY_AT)?;
    let old_end = array.checked_add(count.checked_mul(from)?)?;
    let new_end = array.checked_add(count.checked_mul(to)?)?;
    let new_len = len.checked_add(new_end)?.checked_sub(old_end)?;
    if old_end > len || new_len > buf.len() || count == 0 {
        return None;
    }
    // What follows the array (the composite descriptor) moves with its
    // end: first when the array grows, last when it shrinks, so that
    // nothing is overwritten before it moved.
    let tail = len - old_end;
    if to > from {
        move_within(buf, old_end, tail, new_end)?;
    }
    // Descriptor `i`: its first 8 bytes (endpoint, permissions, flags,
    // composite offset) and the 8 reserved bytes that end it in both
    // layouts, taken before its new place is written; the bytes between
    // are zero when widened, dropped when narrowed.
    let moved = |buf: &mut [u8], i: usize| {
        let old = buf.get(array + i * from..)?.get(..from)?;
        let head = *old.first_chunk::<8>()?;
        let reserved = *old.last_chunk::<8>()?;
        let new = buf.get_mut(array + i * to..)?.get_mut(..to)?;
        new.fill(0);
        *new.first_chunk_mut::<8>()? = head;
        *new.last_chunk_mut::<8>()? = reserved;
        let composite = get(new, 4)?;
        if composite != 0 {
            put(
                new,
                4,
                composite.checked_add(new_end)?.checked_sub(old_end)?,
            )?;
        }
        Some(())
    };
    // The descriptors, in the order that never overwrites one not yet moved.
    if to > from {
        (0..count).rev().try_for_each(|i| moved(buf, i))?;
    } else {
        (0..count).try_for_each(|i| moved(buf, i))?;
    }
    if to < from {
        move_within(buf, old_end, tail, new_end)?;
    }
    put(buf, SIZE_AT, to)?;
    Some(new_len)
}

/// FF-A 1.1 (as `arm-ffa` packs it) to FF-A 1.2: the new length.
pub fn widen(buf: &mut [u8], len: usize) -> Option<usize> {
    relayout(buf, len, NARROW, WIDE)
}

/// FF-A 1.2 (as the SPMC writes it) to FF-A 1.1, for `arm-ffa` to unpack:
/// the new length.
pub fn narrow(buf: &mut [u8], len: usize) -> Option<usize> {
    relayout(buf, len, WIDE, NARROW)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arm_ffa::memory_management::{
        ConstituentMemRegion, DataAccessPerm, Handle, MemAccessPerm, MemTransactionDesc,
    };

    fn packed() -> ([u8; 256], usize) {
        let desc = MemTransactionDesc {
            sender_id: 1,
            handle: Handle(0x8000_0000_0000_0007),
            tag: 9,
            ..Default::default()
        };
        let access = [
            MemAccessPerm {
                endpoint_id: 0x8001,
                data_access: DataAccessPerm::ReadWrite,
                ..Default::default()
            },
            MemAccessPerm {
                endpoint_id: 0x8002,
                data_access: DataAccessPerm::ReadOnly,
                ..Default::default()
            },
        ];
        let regions = [
            ConstituentMemRegion {
                address: 0x4000_0000,
                page_cnt: 2,
            },
            ConstituentMemRegion {
                address: 0x4010_0000,
                page_cnt: 1,
            },
        ];
        let mut b = [0u8; 256];
        let n = desc.pack(&regions, &access, &mut b);
        (b, n)
    }

    #[test]
    fn widening_then_narrowing_gives_the_same_bytes() {
        let (orig, n) = packed();
        let mut b = orig;
        let w = widen(&mut b, n).expect("widens");
        assert_eq!(w, n + 2 * 16);
        assert_eq!(get(&b, SIZE_AT), Some(WIDE));
        // Each wide descriptor: its endpoint, then 16 zero bytes of
        // implementation-defined information, then the composite offset
        // moved by the 32 bytes the array grew.
        for i in 0..2 {
            let d = 48 + i * WIDE;
            assert_eq!(&b[d..d + 2], &orig[48 + i * 16..48 + i * 16 + 2]);
            assert!(b[d + 8..d + 24].iter().all(|&x| x == 0));
            assert_eq!(get(&b, d + 4), get(&orig, 48 + i * 16 + 4).map(|c| c + 32));
        }
        // The composite descriptor and constituents moved whole.
        assert_eq!(&b[48 + 64..w], &orig[48 + 32..n]);
        let m = narrow(&mut b, w).expect("narrows");
        assert_eq!(m, n);
        assert_eq!(&b[..n], &orig[..n]);
        // arm-ffa reads the narrowed form back.
        let (d, _, c) = MemTransactionDesc::unpack(&b[..m]).expect("unpacks");
        assert_eq!(d.handle, Handle(0x8000_0000_0000_0007));
        assert_eq!(c.expect("constituents").count(), 2);
    }

    #[test]
    fn moves_within_overlap_either_way() {
        let mut b: [u8; 8] = core::array::from_fn(|i| i as u8);
        assert_eq!(move_within(&mut b, 1, 4, 3), Some(()));
        assert_eq!(b, [0, 1, 2, 1, 2, 3, 4, 7]);
        let mut b: [u8; 8] = core::array::from_fn(|i| i as u8);
        assert_eq!(move_within(&mut b, 3, 4, 1), Some(()));
        assert_eq!(b, [0, 3, 4, 5, 6, 5, 6, 7]);
        // Either range past the end: refused, nothing moved.
        let mut b: [u8; 8] = core::array::from_fn(|i| i as u8);
        assert_eq!(move_within(&mut b, 1, 4, 5), None);
        assert_eq!(move_within(&mut b, 5, 4, 0), None);
        assert_eq!(move_within(&mut b, usize::MAX, 2, 0), None);
        assert_eq!(b, core::array::from_fn(|i| i as u8));
    }

    #[test]
    fn wrong_layouts_and_short_buffers_are_refused() {
        let (mut b, n) = packed();
        assert_eq!(narrow(&mut b, n), None, "already narrow");
        let w = widen(&mut b, n).expect("widens");
        assert_eq!(widen(&mut b, w), None, "already wide");
        let (mut b, n) = packed();
        assert_eq!(widen(&mut b[..n + 8], n), None, "no room to grow");
        assert_eq!(widen(&mut b, 60), None, "truncated array");
    }
}
