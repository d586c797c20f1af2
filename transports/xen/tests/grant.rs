//! The grant memory seam against a fake mapper: the "driver" grants pages
//! of its own, and mapping one hands the device a window over that very
//! page, as Xen's mapping does.

use std::collections::HashMap;
use std::ptr::NonNull;

use platform_xen::{DomId, GrantRef, XenError};
use transport_xen::grant::{GrantMapper, GrantMemory, Mapped, grant_address, split};
use virtio_backend::{Coherent, FixedWindow, GuestMemory, MemoryError};

const DRIVER: DomId = 2;

/// The driver's granted pages, and what the device's mapper did.
struct Fake {
    pages: HashMap<GrantRef, Box<[u8; 4096]>>,
    mapped: Vec<(usize, GrantRef)>,
    log: Vec<String>,
}

impl Fake {
    fn new(grefs: &[GrantRef]) -> Self {
        Fake {
            pages: grefs.iter().map(|&g| (g, Box::new([0u8; 4096]))).collect(),
            mapped: Vec::new(),
            log: Vec::new(),
        }
    }
}

impl GrantMapper<'static> for &mut Fake {
    fn map(
        &mut self,
        slot: usize,
        dom: DomId,
        gref: GrantRef,
        writable: bool,
    ) -> Result<Mapped<'static>, XenError> {
        self.log.push(format!("map {gref} slot {slot}"));
        assert!(writable && dom == DRIVER);
        assert!(
            self.mapped.iter().all(|&(s, _)| s != slot),
            "slot {slot} mapped twice"
        );
        // GNTST_bad_gntref (-4) for a page never granted.
        let page = self.pages.get_mut(&gref).ok_or(XenError::Grant(-4))?;
        let p = NonNull::new(page.as_mut_ptr()).expect("boxed");
        // SAFETY: the page is boxed and lives as long as the test (the
        // fake outlives the memory); the test reaches it only through raw
        // pointers while mapped, like a granting domain.
        let page = unsafe { FixedWindow::new(p, 4096, 0, Coherent) }.expect("fits");
        self.mapped.push((slot, gref));
        Ok(Mapped {
            page,
            token: slot as u64,
        })
    }

    fn unmap(&mut self, mapped: Mapped<'static>) -> Result<(), XenError> {
        let slot = mapped.token as usize;
        let i = self
            .mapped
            .iter()
            .position(|&(s, _)| s == slot)
            .expect("unmap of a slot that is mapped");
        let (_, gref) = self.mapped.remove(i);
        self.log.push(format!("unmap {gref} slot {slot}"));
        Ok(())
    }
}

#[test]
fn addresses_are_linux_grant_dma_addresses() {
    assert_eq!(grant_address(9, 0x10), 1 << 63 | 9 << 12 | 0x10);
    assert_eq!(split(grant_address(9, 0xfff)), Some((9, 0xfff)));
    assert_eq!(split(0x4000_0000), None, "bit 63 clear: not a grant");
    assert_eq!(split(1 << 63 | 1 << 44 << 12), None, "gref beyond 32 bits");
}

#[test]
fn pages_are_mapped_once_and_reads_cross_them() {
    let mut fake = Fake::new(&[8, 9]);
    // The driver's data, before the device maps anything.
    fake.pages.get_mut(&8).unwrap()[4090..].copy_from_slice(b"abcdef");
    fake.pages.get_mut(&9).unwrap()[..4].copy_from_slice(b"ghij");
    {
        let mem: GrantMemory<'_, _, 4> = GrantMemory::new(DRIVER, &mut fake);
        let mut buf = [0u8; 10];
        mem.read(grant_address(8, 4090), &mut buf).unwrap();
        assert_eq!(&buf, b"abcdefghij", "a read across two granted pages");
        mem.write(grant_address(9, 2), b"XY").unwrap();
        mem.store_u16_release(grant_address(8, 0), 0x1234).unwrap();
        assert_eq!(mem.load_u16_acquire(grant_address(8, 0)).unwrap(), 0x1234);
        let s = mem.stats();
        assert_eq!(
            (s.maps, s.unmaps, s.mapped),
            (2, 0, 2),
            "each page mapped once"
        );
        assert_eq!(mem.release_all(), 0);
    }
    assert_eq!(
        &fake.pages[&9][..4],
        b"ghXY",
        "writes reached the granted page"
    );
    assert_eq!(&fake.pages[&8][..2], &[0x34, 0x12]);
    assert!(fake.mapped.is_empty(), "nothing stays mapped");
}

#[test]
fn the_least_recently_used_page_is_evicted() {
    let mut fake = Fake::new(&[8, 9, 10]);
    {
        let mem: GrantMemory<'_, _, 2> = GrantMemory::new(DRIVER, &mut fake);
        let mut b = [0u8; 1];
        mem.read(grant_address(8, 0), &mut b).unwrap();
        mem.read(grant_address(9, 0), &mut b).unwrap();
        mem.read(grant_address(8, 1), &mut b).unwrap(); // 8 is now the newest
        mem.read(grant_address(10, 0), &mut b).unwrap(); // evicts 9
        mem.read(grant_address(8, 2), &mut b).unwrap(); // still mapped
        let s = mem.stats();
        assert_eq!((s.maps, s.unmaps, s.mapped), (3, 1, 2));
    }
    assert!(
        fake.log.contains(&"unmap 9 slot 1".to_string()),
        "{:?}",
        fake.log
    );
    assert!(
        fake.log.contains(&"map 10 slot 1".to_string()),
        "{:?}",
        fake.log
    );
}

#[test]
fn ungranted_and_malformed_addresses_are_refused_before_any_byte_moves() {
    let mut fake = Fake::new(&[8]);
    {
        let mem: GrantMemory<'_, _, 2> = GrantMemory::new(DRIVER, &mut fake);
        // Page 8 then page 9, which was never granted: nothing is written.
        let e = mem.write(grant_address(8, 4094), b"abcd").unwrap_err();
        assert!(matches!(e, MemoryError::OutOfRange { .. }), "{e:?}");
        // A plain physical address is not driver memory here.
        assert!(mem.read(0x4000_0000, &mut [0u8; 4]).is_err());
        // Wrapping and misaligned ring accesses.
        assert!(matches!(
            mem.read(u64::MAX - 1, &mut [0u8; 4]),
            Err(MemoryError::Wraps { .. })
        ));
        assert!(matches!(
            mem.check_range(grant_address(8, 1), 2, 2),
            Err(MemoryError::Misaligned { .. })
        ));
    }
    assert_eq!(
        &fake.pages[&8][4094..],
        &[0, 0],
        "the refused write moved nothing"
    );
}

#[test]
fn a_range_the_slots_cannot_hold_is_refused_without_a_map() {
    let grefs: Vec<GrantRef> = (8..40).collect();
    let mut fake = Fake::new(&grefs);
    {
        let mem: GrantMemory<'_, _, 4> = GrantMemory::new(DRIVER, &mut fake);
        // Four pages fit four slots; five do not; nor does a descriptor
        // claiming 2 GiB, however many pages the driver granted.
        assert!(mem.check_range(grant_address(8, 0), 4 * 4096, 1).is_ok());
        let maps = mem.stats().maps;
        for len in [4 * 4096 + 1, 0x8000_0000] {
            assert!(matches!(
                mem.check_range(grant_address(8, 0), len, 1),
                Err(MemoryError::OutOfRange { .. })
            ));
        }
        assert!(
            mem.read(grant_address(9, 0), &mut vec![0u8; 5 * 4096])
                .is_err()
        );
        assert_eq!(mem.stats().maps, maps, "no map for a refused range");
    }
}
