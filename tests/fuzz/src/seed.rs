//! Writes values in the byte format `arbitrary` 1.x decodes them from, so
//! the targets can be seeded with hand-written deep scenarios.
//!
//! The format, for the shapes the targets use (and nothing else: no
//! slices, strings or length-prefixed collections):
//!
//! * integers: little-endian, their own width; `bool`: one byte, bit 0;
//! * `Option<T>`: a `bool`, then `T` if set;
//! * `Vec<T>`: for each element a `true` byte then the element, then a
//!   `false` byte (also how the last field "takes the rest");
//! * structs: fields in order; derived enums: a `u32` `v` choosing variant
//!   `(v * count) >> 32`, then the variant's fields.
//!
//! Every seed is decoded again and compared with the value it came from
//! (see [`encode`]), so a change in `arbitrary`'s format fails loudly
//! instead of producing useless seeds.

use arbitrary::{Arbitrary, Unstructured};

/// A value that can be written in `arbitrary`'s format.
pub trait Enc {
    /// Appends the encoding of `self`.
    fn enc(&self, out: &mut Vec<u8>);
}

macro_rules! ints {
    ($($t:ty),*) => {$(
        impl Enc for $t {
            fn enc(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
ints!(u8, u16, u32, u64);

impl Enc for bool {
    fn enc(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl<T: Enc> Enc for Option<T> {
    fn enc(&self, out: &mut Vec<u8>) {
        match self {
            None => false.enc(out),
            Some(x) => {
                true.enc(out);
                x.enc(out);
            }
        }
    }
}

impl<T: Enc> Enc for Vec<T> {
    fn enc(&self, out: &mut Vec<u8>) {
        for x in self {
            true.enc(out);
            x.enc(out);
        }
        false.enc(out);
    }
}

impl<A: Enc, B: Enc> Enc for (A, B) {
    fn enc(&self, out: &mut Vec<u8>) {
        self.0.enc(out);
        self.1.enc(out);
    }
}

impl<A: Enc, B: Enc, C: Enc> Enc for (A, B, C) {
    fn enc(&self, out: &mut Vec<u8>) {
        self.0.enc(out);
        self.1.enc(out);
        self.2.enc(out);
    }
}

/// Implements [`Enc`] for a struct by encoding the named fields in order
/// (which must be the declaration order).
#[macro_export]
macro_rules! enc_struct {
    ($t:ty { $($f:ident),* $(,)? }) => {
        impl $crate::seed::Enc for $t {
            fn enc(&self, out: &mut Vec<u8>) {
                $( $crate::seed::Enc::enc(&self.$f, out); )*
            }
        }
    };
}

/// Writes the discriminant choosing variant `k` of an enum of `n`.
pub fn variant(out: &mut Vec<u8>, k: u32, n: u32) {
    assert!(k < n);
    // Smallest v with (v * n) >> 32 == k.
    let v = ((u64::from(k) << 32).div_ceil(u64::from(n))) as u32;
    debug_assert_eq!((u64::from(v) * u64::from(n)) >> 32, u64::from(k));
    v.enc(out);
}

/// Encodes `value` and checks that the fuzz entry point
/// (`arbitrary_take_rest`) decodes exactly it back.
pub fn encode<T>(value: &T) -> Vec<u8>
where
    T: Enc + for<'a> Arbitrary<'a> + PartialEq + core::fmt::Debug,
{
    let mut out = Vec::new();
    value.enc(&mut out);
    let back = T::arbitrary_take_rest(Unstructured::new(&out)).expect("seed decodes");
    assert_eq!(&back, value, "seed encoder disagrees with arbitrary");
    out
}
