//! The FF-A boot information (FF-A §5.4): where the SPMC tells the
//! partition what it was booted with, and in it the partition's own
//! manifest.

use arm_ffa::Version;
use arm_ffa::boot_info::{
    BootInfoContents, BootInfoIterator, BootInfoStdId, BootInfoType, Error as BlobError,
};

/// Why the boot information did not lead to a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootError {
    /// Not a boot-information blob `arm-ffa` reads (signature 0x0FFA,
    /// version, sizes, descriptors inside the area).
    Blob,
    /// No descriptor of type FDT with its contents at an address.
    NoManifest,
    /// The FDT descriptor's contents are not a device-tree blob of the
    /// size the descriptor says.
    NotFdt,
}

/// The partition manifest the boot-information blob at the start of
/// `area` names (the first standard FDT descriptor, FF-A §5.4.2 Table
/// 5.9), checked to be a device-tree blob (magic 0xd00dfeed, `totalsize`
/// within the descriptor's size). `area` must hold the blob and what it
/// points to: addresses in it are checked against the area's own place.
/// Out of line: `arm-ffa`'s blob checks stay here, in one function
/// (partition/panic-allowlist.txt).
#[inline(never)]
pub fn manifest(area: &[u8]) -> Result<&[u8], BootError> {
    let descriptors = match BootInfoIterator::new(crate::FFA_VERSION, area) {
        // FF-A §5.4.1: the blob carries the producer's version; any 1.x
        // from 1.1 has the same layout.
        Err(BlobError::InvalidVersion(v)) if v.0 == 1 && v >= Version(1, 1) => {
            BootInfoIterator::new(v, area)
        }
        other => other,
    }
    .map_err(|_| BootError::Blob)?;
    for d in descriptors {
        let Ok(d) = d else {
            return Err(BootError::Blob);
        };
        let (BootInfoType::Std(BootInfoStdId::Fdt), BootInfoContents::Address { content_buf }) =
            (d.typ, d.contents)
        else {
            continue;
        };
        let word = |o: usize| {
            content_buf
                .get(o..)
                .and_then(|b| b.first_chunk::<4>())
                .map(|b| u32::from_be_bytes(*b))
        };
        // Devicetree specification §5.2: magic, then totalsize, big-endian;
        // the blob within the descriptor's size (`get`: `None` past it).
        return match (word(0), word(4)) {
            (Some(0xd00d_feed), Some(size)) if size >= 40 => {
                content_buf.get(..size as usize).ok_or(BootError::NotFdt)
            }
            _ => Err(BootError::NotFdt),
        };
    }
    Err(BootError::NoManifest)
}

/// FNV-1a (64 bits) of `bytes`: how the partition recognises the manifest
/// it was built from (its build script hashes the same blob).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use arm_ffa::boot_info::{BootInfo, BootInfoName};
    use std::vec;

    /// An area holding a blob at 0 that names an FDT (`arm-ffa` packs the
    /// FDT into the blob, after the descriptors).
    fn area(fdt: &[u8], typ: BootInfoType) -> std::boxed::Box<[u8]> {
        let mut a = vec![0u8; 0x4000].into_boxed_slice();
        a[0x1000..0x1000 + fdt.len()].copy_from_slice(fdt);
        let base = a.as_ptr() as usize;
        let name = c"ffa_manifest";
        let (head, tail) = a.split_at_mut(0x1000);
        let d = BootInfo {
            name: BootInfoName::NullTermString(name),
            typ,
            contents: BootInfoContents::Address {
                content_buf: &tail[..fdt.len()],
            },
        };
        BootInfo::pack(Version(1, 2), &[d], head, Some(base));
        a
    }

    fn fdt(total: u32) -> std::vec::Vec<u8> {
        let mut f = vec![0u8; 64];
        f[0..4].copy_from_slice(&0xd00d_feedu32.to_be_bytes());
        f[4..8].copy_from_slice(&total.to_be_bytes());
        f
    }

    #[test]
    fn the_manifest_is_found_through_the_fdt_descriptor() {
        let f = fdt(64);
        let a = area(&f, BootInfoType::Std(BootInfoStdId::Fdt));
        let m = manifest(&a).expect("found");
        assert_eq!(m, &f[..]);
        let at = m.as_ptr() as usize - a.as_ptr() as usize;
        assert!(at >= 64 && at + 64 <= 0x1000, "inside the blob: {at:#x}");
        assert_eq!(fnv1a(m), fnv1a(&f));
        assert_ne!(fnv1a(m), fnv1a(&fdt(65)));
    }

    #[test]
    fn bad_blobs_are_refused() {
        // A HOB list is not a manifest.
        let a = area(&fdt(64), BootInfoType::Std(BootInfoStdId::Hob));
        assert_eq!(manifest(&a), Err(BootError::NoManifest));
        // A totalsize beyond the descriptor's size.
        let a = area(&fdt(65), BootInfoType::Std(BootInfoStdId::Fdt));
        assert_eq!(manifest(&a), Err(BootError::NotFdt));
        // No signature.
        let mut a = area(&fdt(64), BootInfoType::Std(BootInfoStdId::Fdt));
        a[0] = 0;
        assert_eq!(manifest(&a), Err(BootError::Blob));
        // The area ends before the manifest does.
        let a = area(&fdt(64), BootInfoType::Std(BootInfoStdId::Fdt));
        assert_eq!(manifest(&a[..0x50]), Err(BootError::Blob));
        // Not a device tree.
        let mut f = fdt(64);
        f[0] = 0;
        let a = area(&f, BootInfoType::Std(BootInfoStdId::Fdt));
        assert_eq!(manifest(&a), Err(BootError::NotFdt));
    }
}
