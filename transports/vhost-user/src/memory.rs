//! The vhost-user memory table: the front-end's guest memory regions mapped
//! into this process, seen by the device core as a [`RegionTable`].
//!
//! `VHOST_USER_SET_MEM_TABLE` (vhost-user spec, "Front-end message types")
//! sends up to eight regions, each a file descriptor (a memfd, a hugetlbfs
//! file) with the guest physical address, size, the front-end's own virtual
//! address of the region and the offset of the region in the file. This
//! module maps each file, checks it before mapping, and offers two things:
//!
//! * [`MemoryTable::guest`]: the `GuestMemory` of the mapped regions,
//!   addressed by guest physical address, which is what the device core and
//!   its queues use; every driver address is range-checked there;
//! * [`MemoryTable::user_to_guest`]: translation of the front-end's virtual
//!   addresses (ring addresses in `VHOST_USER_SET_VRING_ADDR`) to guest
//!   physical addresses.
//!
//! Everything `unsafe` in this crate lives here: `mmap`, `munmap`, `fstat`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

use virtio_backend::{Coherent, RegionError, RegionTable};

/// Most regions one `SET_MEM_TABLE` may carry (vhost-user spec:
/// `VHOST_MEMORY_BASELINE_NREGIONS`).
pub const MAX_REGIONS: usize = 8;

/// The [`GuestMemory`](virtio_backend::GuestMemory) of a mapped table.
pub type GuestRegions = RegionTable<'static, MAX_REGIONS, Coherent>;

/// One region as the front-end describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionDesc {
    /// Guest physical address of the first byte.
    pub guest_phys_addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// The front-end's virtual address of the first byte.
    pub user_addr: u64,
    /// Offset of the first byte in the file.
    pub mmap_offset: u64,
}

/// Why a memory table was refused. Nothing stays mapped.
#[derive(Debug)]
pub enum MemoryTableError {
    /// More regions than [`MAX_REGIONS`], or a file count that does not
    /// match the region count.
    Count {
        /// Regions described.
        regions: usize,
        /// Files passed.
        files: usize,
    },
    /// A region is empty, wraps around, or does not fit this process's
    /// address space.
    InvalidRange(RegionDesc),
    /// The file is smaller than `mmap_offset + size`: touching the mapping
    /// past its end would raise SIGBUS.
    FileTooSmall {
        /// The region.
        region: RegionDesc,
        /// The file's size.
        file_size: u64,
    },
    /// `fstat` or `mmap` failed.
    Os(RegionDesc, std::io::Error),
    /// Two regions overlap in guest physical or front-end virtual space, or
    /// a region's host and guest addresses disagree in alignment.
    Table(RegionDesc, RegionError),
}

impl std::fmt::Display for MemoryTableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemoryTableError::Count { regions, files } => write!(
                f,
                "{regions} regions with {files} file descriptors (at most {MAX_REGIONS}, one each)"
            ),
            MemoryTableError::InvalidRange(r) => write!(f, "invalid region {r:x?}"),
            MemoryTableError::FileTooSmall { region, file_size } => write!(
                f,
                "region {region:x?} reaches past the end of its file ({file_size} bytes)"
            ),
            MemoryTableError::Os(r, e) => write!(f, "cannot map region {r:x?}: {e}"),
            MemoryTableError::Table(r, e) => write!(f, "region {r:x?} refused: {e}"),
        }
    }
}

impl std::error::Error for MemoryTableError {}

/// One `mmap` of a region's file; unmapped on drop.
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base..base + len` is exactly what one successful `mmap`
        // returned, and it is unmapped only here, once. No reference into it
        // exists: the region table that used it is dropped first (field
        // order of `MemoryTable`) and only ever made volatile copies.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// The mapped memory table of one front-end.
#[derive(Debug)]
pub struct MemoryTable {
    // Declared before `maps`: dropped while the mappings still exist.
    table: GuestRegions,
    regions: Vec<RegionDesc>,
    /// Per region: whether its file can no longer shrink.
    shrink_sealed: Vec<bool>,
    maps: Vec<Mapping>,
}

// SAFETY: the mappings are plain shared memory owned by this value; the
// table only performs volatile copies and atomic index accesses on them, so
// moving the owner to another thread adds no hazard.
unsafe impl Send for MemoryTable {}

/// Size of a page, for rounding `mmap` offsets.
fn page_size() -> u64 {
    // SAFETY: `sysconf` has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Whether `file` carries the memfd seal against shrinking (`F_SEAL_SHRINK`,
/// memfd_create(2)). QEMU's `memory-backend-memfd` seals its memory by
/// default. Files that cannot carry seals (hugetlbfs, tmpfs paths) answer
/// no.
fn shrink_sealed(file: &File) -> bool {
    // SAFETY: F_GET_SEALS on a descriptor we hold; no memory is passed.
    let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & libc::F_SEAL_SHRINK != 0
}

/// Size of the file behind `file` in bytes.
fn file_size(file: &File) -> std::io::Result<u64> {
    // `File::metadata` is `fstat`; for memfd and hugetlbfs files the size is
    // what was allocated with `ftruncate`.
    Ok(file.metadata()?.len())
}

impl MemoryTable {
    /// Maps `regions`, region `i` from `files[i]`.
    pub fn map(regions: &[RegionDesc], files: &[File]) -> Result<MemoryTable, MemoryTableError> {
        if regions.len() > MAX_REGIONS || regions.len() != files.len() {
            return Err(MemoryTableError::Count {
                regions: regions.len(),
                files: files.len(),
            });
        }
        let mut out = MemoryTable {
            table: RegionTable::new(Coherent),
            regions: Vec::with_capacity(regions.len()),
            shrink_sealed: Vec::with_capacity(regions.len()),
            maps: Vec::with_capacity(regions.len()),
        };
        let page = page_size();
        for (r, file) in regions.iter().zip(files) {
            let end_ok = r.guest_phys_addr.checked_add(r.size).is_some()
                && r.user_addr.checked_add(r.size).is_some();
            let file_end = r.mmap_offset.checked_add(r.size);
            let (Some(file_end), true, true) = (file_end, end_ok, r.size > 0) else {
                return Err(MemoryTableError::InvalidRange(*r));
            };
            // Overlap in the front-end's address space would make
            // `user_to_guest` ambiguous (vhost-user spec: regions do not
            // overlap); the table checks guest physical overlap.
            if out
                .regions
                .iter()
                .any(|o| r.user_addr < o.user_addr + o.size && o.user_addr < r.user_addr + r.size)
            {
                return Err(MemoryTableError::Table(*r, RegionError::Overlap));
            }
            let fsize = file_size(file).map_err(|e| MemoryTableError::Os(*r, e))?;
            if fsize < file_end {
                return Err(MemoryTableError::FileTooSmall {
                    region: *r,
                    file_size: fsize,
                });
            }
            // mmap wants a page-aligned offset: map from the page holding
            // the first byte.
            let lead = r.mmap_offset % page;
            let aligned = r.mmap_offset - lead;
            let len = r
                .size
                .checked_add(lead)
                .and_then(|l| usize::try_from(l).ok())
                .ok_or(MemoryTableError::InvalidRange(*r))?;
            let off =
                libc::off_t::try_from(aligned).map_err(|_| MemoryTableError::InvalidRange(*r))?;
            // SAFETY: a fresh shared mapping chosen by the kernel
            // (address NULL): it cannot alias anything of ours. The file is
            // at least `mmap_offset + size` bytes long (checked above).
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    off,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(MemoryTableError::Os(*r, std::io::Error::last_os_error()));
            }
            let Some(base) = NonNull::new(p.cast::<u8>()) else {
                return Err(MemoryTableError::InvalidRange(*r));
            };
            out.maps.push(Mapping { base, len });
            // `lead < page <= len`, inside the mapping.
            let host = base.as_ptr().wrapping_add(lead as usize);
            let host = NonNull::new(host).ok_or(MemoryTableError::InvalidRange(*r))?;
            // SAFETY: `host..host + size` lies in the mapping just pushed,
            // which lives as long as `out` and outlives `out.table` (field
            // order). No Rust reference to the mapping exists; the table
            // only makes volatile copies and atomic accesses.
            unsafe { out.table.add(r.guest_phys_addr, host, len - lead as usize) }
                .map_err(|e| MemoryTableError::Table(*r, e))?;
            out.regions.push(*r);
            out.shrink_sealed.push(shrink_sealed(file));
        }
        Ok(out)
    }

    /// Driver memory by guest physical address, for the device core.
    pub fn guest(&self) -> &GuestRegions {
        &self.table
    }

    /// The regions as the front-end described them.
    pub fn regions(&self) -> &[RegionDesc] {
        &self.regions
    }

    /// The regions whose files the front-end could still shrink after
    /// handing them over: a truncation under a mapping turns the next access
    /// to the lost pages into SIGBUS, which ends the daemon. The table
    /// cannot prevent it; the caller can say so.
    pub fn unsealed(&self) -> impl Iterator<Item = &RegionDesc> {
        self.regions
            .iter()
            .zip(&self.shrink_sealed)
            .filter(|(_, sealed)| !**sealed)
            .map(|(r, _)| r)
    }

    /// Translates a front-end virtual address to a guest physical address
    /// (vhost-user spec: ring addresses in `SET_VRING_ADDR` are the
    /// front-end's virtual addresses). `None` when no region holds it.
    /// Only the first byte is checked here; the queue checks whole ring
    /// areas through [`MemoryTable::guest`].
    pub fn user_to_guest(&self, user_addr: u64) -> Option<u64> {
        self.regions
            .iter()
            .find(|r| user_addr >= r.user_addr && user_addr - r.user_addr < r.size)
            .map(|r| r.guest_phys_addr + (user_addr - r.user_addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtio_backend::GuestMemory;

    /// A memfd of `len` bytes.
    fn memfd(len: u64) -> File {
        let name = c"vhost-user-test";
        // SAFETY: a valid C string; the new descriptor is owned by the File.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        f.set_len(len).unwrap();
        f
    }

    fn region(gpa: u64, size: u64, ua: u64, off: u64) -> RegionDesc {
        RegionDesc {
            guest_phys_addr: gpa,
            size,
            user_addr: ua,
            mmap_offset: off,
        }
    }

    #[test]
    fn reports_regions_whose_files_can_still_shrink() {
        let name = c"vhost-user-sealed";
        // SAFETY: a valid C string; the new descriptor is owned by the File.
        let fd = unsafe {
            libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let sealed = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        sealed.set_len(0x1000).unwrap();
        // SAFETY: F_ADD_SEALS on a descriptor we own; no memory is passed.
        let r = unsafe {
            libc::fcntl(
                sealed.as_raw_fd(),
                libc::F_ADD_SEALS,
                libc::F_SEAL_SHRINK | libc::F_SEAL_GROW,
            )
        };
        assert_eq!(r, 0, "F_ADD_SEALS: {}", std::io::Error::last_os_error());
        let plain = memfd(0x1000);
        let t = MemoryTable::map(
            &[
                region(0, 0x1000, 0x10_0000, 0),
                region(0x1000, 0x1000, 0x20_0000, 0),
            ],
            &[sealed, plain],
        )
        .unwrap();
        let unsealed: Vec<u64> = t.unsealed().map(|r| r.guest_phys_addr).collect();
        assert_eq!(unsealed, [0x1000]);
    }

    #[test]
    fn maps_regions_and_translates() {
        let f = memfd(0x3000);
        let g = f.try_clone().unwrap();
        let t = MemoryTable::map(
            &[
                region(0x4000_0000, 0x1000, 0x7f00_0000_0000, 0),
                // Second region from the same file at an offset that is not
                // page aligned.
                region(0x8000_0000, 0x1000, 0x7f00_1000_0000, 0x1008),
            ],
            &[f, g],
        )
        .unwrap();
        let m = t.guest();
        m.write(0x4000_0ff0, b"hello").unwrap();
        m.write(0x8000_0000, b"world").unwrap();
        let mut buf = [0u8; 5];
        m.read(0x4000_0ff0, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        assert_eq!(t.user_to_guest(0x7f00_1000_0010), Some(0x8000_0010));
        assert_eq!(t.user_to_guest(0x7f00_0000_0fff), Some(0x4000_0fff));
        assert_eq!(t.user_to_guest(0x7f00_0000_1000), None);
        assert!(
            m.read(0x8000_0ffc, &mut buf).is_err(),
            "past the region end"
        );
    }

    #[test]
    fn second_region_sees_the_file_at_its_offset() {
        let f = memfd(0x2000);
        let g = f.try_clone().unwrap();
        let t = MemoryTable::map(
            &[
                region(0, 0x2000, 0x1000_0000, 0),
                region(0x10_0000, 0x100, 0x2000_0000, 0x1008),
            ],
            &[f, g],
        )
        .unwrap();
        let m = t.guest();
        m.write(0x1008, b"shared").unwrap();
        let mut buf = [0u8; 6];
        m.read(0x10_0000, &mut buf).unwrap();
        assert_eq!(&buf, b"shared");
    }

    #[test]
    fn refuses_bad_tables() {
        let small = memfd(0x1000);
        assert!(matches!(
            MemoryTable::map(&[region(0, 0x2000, 0x1000, 0)], &[small]),
            Err(MemoryTableError::FileTooSmall { .. })
        ));
        let f = memfd(0x1000);
        assert!(matches!(
            MemoryTable::map(&[region(0, 0, 0x1000, 0)], &[f]),
            Err(MemoryTableError::InvalidRange(_))
        ));
        let f = memfd(0x1000);
        assert!(matches!(
            MemoryTable::map(&[region(u64::MAX - 10, 0x100, 0x1000, 0)], &[f]),
            Err(MemoryTableError::InvalidRange(_))
        ));
        let f = memfd(0x1000);
        assert!(matches!(
            MemoryTable::map(&[region(0, 0x100, 0, 0), region(0x100, 0x100, 0, 0)], &[f]),
            Err(MemoryTableError::Count { .. })
        ));
        let (f, g) = (memfd(0x1000), memfd(0x1000));
        assert!(matches!(
            MemoryTable::map(
                &[
                    region(0, 0x1000, 0x1000, 0),
                    region(0x800, 0x1000, 0x9000, 0)
                ],
                &[f, g]
            ),
            Err(MemoryTableError::Table(_, RegionError::Overlap))
        ));
        let (f, g) = (memfd(0x1000), memfd(0x1000));
        assert!(matches!(
            MemoryTable::map(
                &[
                    region(0, 0x1000, 0x1000, 0),
                    region(0x8000, 0x1000, 0x1800, 0)
                ],
                &[f, g]
            ),
            Err(MemoryTableError::Table(_, RegionError::Overlap))
        ));
    }
}
