//! The secure-partition package Hafnium loads: a header, the partition
//! manifest as a device-tree blob, and the raw image.
//!
//! Layout (header version 2, every field a little-endian `u32`):
//!
//! | offset | field | here |
//! |---|---|---|
//! | 0 | `magic` | `0x474B5053` ("SPKG") |
//! | 4 | `version` | 2 |
//! | 8 | `pm_offset` | 0x1000: the page before it holds the header, and version 2 gives the bytes before the manifest to boot information |
//! | 12 | `pm_size` | the blob's size |
//! | 16 | `img_offset` | 0x4000, or the first page after the manifest if it is larger |
//! | 20 | `img_size` | the image's size |
//!
//! Offsets are page (4 KiB) aligned; the manifest lies before the image,
//! the two do not overlap, and both lie inside the package. [`parse`]
//! checks every one of these rules, so a package built by [`build`] (or
//! any other tool) can be read back and compared with its manifest.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// "SPKG", little-endian.
pub const MAGIC: u32 = 0x474B_5053;
/// The header version written and accepted.
pub const VERSION: u32 = 2;
/// Bytes of the header.
pub const HEADER_SIZE: usize = 24;
/// Alignment of the manifest and the image.
pub const PAGE: u32 = 0x1000;
/// Where the manifest goes (Hafnium's default).
pub const PM_OFFSET: u32 = 0x1000;
/// Where the image goes unless the manifest is larger (Hafnium's default).
pub const IMG_OFFSET: u32 = 0x4000;

/// The package header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: u32,
    /// [`VERSION`].
    pub version: u32,
    /// Offset of the manifest blob.
    pub pm_offset: u32,
    /// Size of the manifest blob.
    pub pm_size: u32,
    /// Offset of the image.
    pub img_offset: u32,
    /// Size of the image.
    pub img_size: u32,
}

impl Header {
    /// The 24 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        let fields = [
            self.magic,
            self.version,
            self.pm_offset,
            self.pm_size,
            self.img_offset,
            self.img_size,
        ];
        for (out, f) in b.chunks_exact_mut(4).zip(fields) {
            out.copy_from_slice(&f.to_le_bytes());
        }
        b
    }

    /// Reads the header at the start of `b`.
    pub fn from_bytes(b: &[u8]) -> Result<Header, Error> {
        let word = |i: usize| {
            b.get(4 * i..4 * i + 4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .ok_or(Error::TooShort(b.len()))
        };
        Ok(Header {
            magic: word(0)?,
            version: word(1)?,
            pm_offset: word(2)?,
            pm_size: word(3)?,
            img_offset: word(4)?,
            img_size: word(5)?,
        })
    }
}

/// Why a package was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the header (the length).
    TooShort(usize),
    /// Not "SPKG".
    Magic(u32),
    /// Not version 2.
    Version(u32),
    /// An offset that is not page aligned, or a manifest offset inside
    /// the header.
    Misaligned(&'static str, u32),
    /// A part that runs past the end of the package (which, where).
    OutOfBounds(&'static str, u64),
    /// The manifest runs into the image, or follows it.
    Overlap {
        /// End of the manifest.
        pm_end: u64,
        /// Start of the image.
        img_offset: u32,
    },
    /// An empty manifest or image.
    Empty(&'static str),
    /// A part larger than a `u32` can say.
    TooLarge(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooShort(n) => {
                write!(f, "{n} bytes: shorter than the {HEADER_SIZE}-byte header")
            }
            Error::Magic(m) => write!(f, "magic {m:#010x} is not \"SPKG\" ({MAGIC:#010x})"),
            Error::Version(v) => write!(f, "header version {v}: only {VERSION} is read"),
            Error::Misaligned(what, v) => {
                write!(f, "{what} {v:#x} is not page aligned past the header")
            }
            Error::OutOfBounds(what, end) => {
                write!(f, "{what} ends at {end:#x}, past the end of the package")
            }
            Error::Overlap { pm_end, img_offset } => write!(
                f,
                "the manifest ends at {pm_end:#x}, after the image starts at {img_offset:#x}"
            ),
            Error::Empty(what) => write!(f, "empty {what}"),
            Error::TooLarge(what) => write!(f, "{what} does not fit a 32-bit size"),
        }
    }
}

fn align_up(v: u64) -> u64 {
    v.div_ceil(u64::from(PAGE)) * u64::from(PAGE)
}

/// Builds a package from a manifest blob and a raw image.
pub fn build(manifest_dtb: &[u8], image: &[u8]) -> Result<Vec<u8>, Error> {
    if manifest_dtb.is_empty() {
        return Err(Error::Empty("manifest"));
    }
    if image.is_empty() {
        return Err(Error::Empty("image"));
    }
    let pm_size = u32::try_from(manifest_dtb.len()).map_err(|_| Error::TooLarge("manifest"))?;
    let img_size = u32::try_from(image.len()).map_err(|_| Error::TooLarge("image"))?;
    let pm_end = u64::from(PM_OFFSET) + u64::from(pm_size);
    let img_offset = u32::try_from(align_up(pm_end).max(u64::from(IMG_OFFSET)))
        .map_err(|_| Error::TooLarge("package"))?;
    let total = u64::from(img_offset) + u64::from(img_size);
    let total = usize::try_from(total).map_err(|_| Error::TooLarge("package"))?;
    let header = Header {
        magic: MAGIC,
        version: VERSION,
        pm_offset: PM_OFFSET,
        pm_size,
        img_offset,
        img_size,
    };
    let mut out = vec![0u8; total];
    out[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
    let pm = PM_OFFSET as usize;
    out[pm..pm + manifest_dtb.len()].copy_from_slice(manifest_dtb);
    let img = img_offset as usize;
    out[img..].copy_from_slice(image);
    Ok(out)
}

/// A package, read: its header, the manifest blob and the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package<'a> {
    /// The header.
    pub header: Header,
    /// The manifest blob.
    pub manifest: &'a [u8],
    /// The raw image.
    pub image: &'a [u8],
}

/// Reads a package, checking every rule of the layout (see the module).
pub fn parse(pkg: &[u8]) -> Result<Package<'_>, Error> {
    let h = Header::from_bytes(pkg)?;
    if h.magic != MAGIC {
        return Err(Error::Magic(h.magic));
    }
    if h.version != VERSION {
        return Err(Error::Version(h.version));
    }
    for (what, v) in [("pm_offset", h.pm_offset), ("img_offset", h.img_offset)] {
        if v % PAGE != 0 || (v as usize) < HEADER_SIZE {
            return Err(Error::Misaligned(what, v));
        }
    }
    if h.pm_size == 0 {
        return Err(Error::Empty("manifest"));
    }
    if h.img_size == 0 {
        return Err(Error::Empty("image"));
    }
    let pm_end = u64::from(h.pm_offset) + u64::from(h.pm_size);
    if pm_end > u64::from(h.img_offset) {
        return Err(Error::Overlap {
            pm_end,
            img_offset: h.img_offset,
        });
    }
    let img_end = u64::from(h.img_offset) + u64::from(h.img_size);
    let len = pkg.len() as u64;
    if pm_end > len {
        return Err(Error::OutOfBounds("manifest", pm_end));
    }
    if img_end > len {
        return Err(Error::OutOfBounds("image", img_end));
    }
    // In bounds: checked just above.
    let manifest = &pkg[h.pm_offset as usize..pm_end as usize];
    let image = &pkg[h.img_offset as usize..img_end as usize];
    Ok(Package {
        header: h,
        manifest,
        image,
    })
}

/// Checks a package against what it was built from: the blob is `dtb`
/// byte for byte, the image is `image`, and the image lies where the
/// manifest's `entrypoint-offset` enters it (Hafnium enters the partition
/// at `load-address + entrypoint-offset`, and the package is loaded at
/// `load-address`). Returns every difference, or nothing.
pub fn differences(
    p: &Package<'_>,
    dtb: &[u8],
    image: &[u8],
    entrypoint_offset: Option<u64>,
) -> Vec<alloc::string::String> {
    use alloc::format;
    let mut out = Vec::new();
    if p.manifest != dtb {
        out.push(format!(
            "the manifest blob ({} bytes) is not the manifest's ({} bytes)",
            p.manifest.len(),
            dtb.len()
        ));
    }
    if p.image != image {
        out.push(format!(
            "the image ({} bytes) is not the one given ({} bytes)",
            p.image.len(),
            image.len()
        ));
    }
    match entrypoint_offset {
        Some(e) if e == u64::from(p.header.img_offset) => {}
        Some(e) => out.push(format!(
            "entrypoint-offset {e:#x} is not the image's offset {:#x}",
            p.header.img_offset
        )),
        None => out.push("the manifest has no entrypoint-offset".into()),
    }
    out
}
