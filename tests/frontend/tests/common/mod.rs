//! Helpers shared by the integration tests.

// Each test crate uses a different subset.
#![allow(dead_code)]

use std::sync::Arc;

use frontend_tests::arena::{Arena, ArenaHal};
use frontend_tests::blk::{BlkOptions, RamDisk, SECTOR};
use frontend_tests::loopback::{Kind, Loopback, Mode};
use frontend_tests::transport::AnyTransport;
use virtio_drivers::device::blk::VirtIOBlk;

/// The block driver over either transport.
pub type Blk = VirtIOBlk<ArenaHal, AnyTransport<RamDisk, 1>>;
/// The device side of a RAM disk.
pub type BlkLink = Arc<Loopback<RamDisk, 1>>;

/// A RAM disk served inline over `kind`.
pub fn blk_link(arena: &Arena, kind: Kind, mode: Mode, opts: BlkOptions) -> BlkLink {
    Loopback::new(arena, kind, mode, RamDisk::new(opts))
}

/// `virtio-drivers`' block driver brought up over `link`.
pub fn open_blk(link: &BlkLink) -> Blk {
    VirtIOBlk::new(AnyTransport::new(link)).expect("VirtIOBlk::new")
}

/// Deterministic contents for `sectors` sectors starting at `first`: each
/// sector starts with its own number and `seed`, so a misplaced or stale
/// sector cannot pass for the right one.
pub fn pattern(seed: u64, first: usize, sectors: usize) -> Vec<u8> {
    let mut v = vec![0u8; sectors * SECTOR];
    for (k, s) in v.chunks_mut(SECTOR).enumerate() {
        let n = (first + k) as u64;
        s[..8].copy_from_slice(&n.to_le_bytes());
        s[8..16].copy_from_slice(&seed.to_le_bytes());
        for (i, b) in s[16..].iter_mut().enumerate() {
            *b = (n as usize * 31 + i * 7 + seed as usize * 13) as u8;
        }
    }
    v
}

/// Device-side counters of a RAM disk link.
pub fn disk_stats(link: &BlkLink) -> frontend_tests::blk::BlkStats {
    link.with_device(|d| d.stats())
}

/// The device's copy of `sectors` sectors at `first`.
pub fn disk_bytes(link: &BlkLink, first: usize, sectors: usize) -> Vec<u8> {
    link.with_device(|d| d.contents()[first * SECTOR..(first + sectors) * SECTOR].to_vec())
}

/// Generates `<name>::msg` and `<name>::mmio` tests calling `name(kind)`,
/// each under a watchdog.
#[macro_export]
macro_rules! both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use frontend_tests::loopback::Kind;
            use frontend_tests::Watchdog;
            use std::time::Duration;

            #[test]
            fn msg() {
                let _w = Watchdog::new(concat!(stringify!($name), "::msg"), Duration::from_secs(120));
                super::$name(Kind::Msg);
            }

            #[test]
            fn mmio() {
                let _w = Watchdog::new(concat!(stringify!($name), "::mmio"), Duration::from_secs(120));
                super::$name(Kind::Mmio);
            }
        }
    )*};
}
