//! The secure-partition package: built from a shipped manifest and an
//! image, read back field by field and compared with the manifest; every
//! layout rule refused on its own.

use std::path::PathBuf;

use manifest::spkg::{self, Error, HEADER_SIZE, Header, IMG_OFFSET, MAGIC, PM_OFFSET, VERSION};

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// A stand-in image: bytes that show where they came from.
fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_package_reads_back_as_its_manifest_and_image() {
    let path = shipped("host-vhost-user.dts");
    let dtb = manifest::compile(&path).unwrap();
    let img = image(0x2345);
    let pkg = spkg::build(&dtb, &img).unwrap();
    let p = spkg::parse(&pkg).unwrap();
    // The image at 0x4000, or on the first page after a larger manifest.
    let img_offset = (PM_OFFSET as usize + dtb.len())
        .next_multiple_of(0x1000)
        .max(IMG_OFFSET as usize);
    assert_eq!(
        p.header,
        Header {
            magic: MAGIC,
            version: VERSION,
            pm_offset: PM_OFFSET,
            pm_size: dtb.len() as u32,
            img_offset: img_offset as u32,
            img_size: img.len() as u32,
        }
    );
    // The bytes: "SPKG" little-endian first, version 2 next.
    assert_eq!(&pkg[..8], b"SPKG\x02\0\0\0");
    assert_eq!(p.manifest, &dtb[..]);
    assert_eq!(p.image, &img[..]);
    assert_eq!(pkg.len(), img_offset + img.len());
    // The embedded blob is the manifest: every field as loaded from source.
    let embedded = manifest::parse_dtb(p.manifest, "package").unwrap();
    let direct = manifest::load(&path).unwrap();
    assert_eq!(embedded.partition, direct.partition);
    assert_eq!(embedded.virtio, direct.virtio);
    assert_eq!(embedded.scmi, direct.scmi);
}

#[test]
fn a_manifest_larger_than_the_gap_moves_the_image_to_the_next_page() {
    let dtb = vec![0xd0u8; 0x3001];
    let pkg = spkg::build(&dtb, &image(16)).unwrap();
    let h = spkg::parse(&pkg).unwrap().header;
    assert_eq!(h.img_offset, 0x5000);
    assert_eq!(h.img_offset % 0x1000, 0);
}

fn with(mut f: impl FnMut(&mut Header)) -> Vec<u8> {
    let mut pkg = spkg::build(&[1, 2, 3, 4], &image(64)).unwrap();
    let mut h = Header::from_bytes(&pkg).unwrap();
    f(&mut h);
    pkg[..HEADER_SIZE].copy_from_slice(&h.to_bytes());
    pkg
}

#[test]
fn every_layout_rule_is_checked() {
    assert_eq!(spkg::parse(&[0u8; 10]), Err(Error::TooShort(10)));
    assert_eq!(
        spkg::parse(&with(|h| h.magic = 0x1234)),
        Err(Error::Magic(0x1234))
    );
    assert_eq!(
        spkg::parse(&with(|h| h.version = 1)),
        Err(Error::Version(1))
    );
    assert_eq!(
        spkg::parse(&with(|h| h.pm_offset = 0x1004)),
        Err(Error::Misaligned("pm_offset", 0x1004))
    );
    assert_eq!(
        spkg::parse(&with(|h| h.pm_offset = 0)),
        Err(Error::Misaligned("pm_offset", 0))
    );
    assert_eq!(
        spkg::parse(&with(|h| h.img_offset = 0x4010)),
        Err(Error::Misaligned("img_offset", 0x4010))
    );
    assert_eq!(
        spkg::parse(&with(|h| h.pm_size = 0x3001)),
        Err(Error::Overlap {
            pm_end: 0x4001,
            img_offset: 0x4000
        })
    );
    assert_eq!(
        spkg::parse(&with(|h| h.img_size = 65)),
        Err(Error::OutOfBounds("image", 0x4041))
    );
    assert_eq!(
        spkg::parse(&with(|h| h.img_offset = 0x1000)),
        Err(Error::Overlap {
            pm_end: 0x1004,
            img_offset: 0x1000
        })
    );
    assert_eq!(
        spkg::parse(&with(|h| h.pm_size = 0)),
        Err(Error::Empty("manifest"))
    );
    // Sizes that would wrap 32 bits are out of bounds, not wrapped.
    assert_eq!(
        spkg::parse(&with(|h| h.img_size = u32::MAX)),
        Err(Error::OutOfBounds("image", 0x4000 + u64::from(u32::MAX)))
    );
    assert_eq!(spkg::build(&[], &[1]), Err(Error::Empty("manifest")));
    assert_eq!(spkg::build(&[1], &[]), Err(Error::Empty("image")));
    // Every refusal explains itself.
    assert!(
        Error::Magic(1).to_string().contains("SPKG"),
        "{}",
        Error::Magic(1)
    );
}

#[test]
fn manifest_tool_packs_and_checks() {
    let dir = std::env::temp_dir().join(format!("spkg-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("image.bin");
    std::fs::write(&img, image(100)).unwrap();
    let out = dir.join("sp.pkg");
    let tool = env!("CARGO_BIN_EXE_manifest-tool");
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(tool)
            .args(args)
            .output()
            .unwrap()
    };
    let manifest = shipped("qemu-virt-aarch64.dts");
    let o = run(&[
        "spkg".as_ref(),
        manifest.as_os_str(),
        img.as_os_str(),
        out.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&["spkg-check".as_ref(), out.as_os_str()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("SPKG v2, manifest 0x1000+"), "{stdout}");
    assert!(stdout.contains("image 0x4000+0x64"), "{stdout}");
    assert!(
        stdout.contains("manifest: ok: virtio-scmi firmware, QEMU virt"),
        "{stdout}"
    );
    // A truncated package is refused with the reason.
    let bytes = std::fs::read(&out).unwrap();
    std::fs::write(&out, &bytes[..bytes.len() - 1]).unwrap();
    let o = run(&["spkg-check".as_ref(), out.as_os_str()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("past the end of the package"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_partition_package_is_checked_against_its_manifest_and_image() {
    let path = shipped("qemu-virt-sp.dts");
    let m = manifest::load(&path).unwrap();
    let dtb = manifest::compile(&path).unwrap();
    let img = image(0x1234);
    let pkg = spkg::build(&dtb, &img).unwrap();
    let p = spkg::parse(&pkg).unwrap();
    let entry = m.partition.entrypoint_offset;
    assert_eq!(
        spkg::differences(&p, &dtb, &img, entry),
        Vec::<String>::new()
    );
    // Each difference is named.
    let other = image(0x1235);
    let d = spkg::differences(&p, &dtb, &other, entry);
    assert_eq!(d.len(), 1);
    assert!(d[0].contains("image (4660 bytes) is not the one given (4661 bytes)"));
    let d = spkg::differences(&p, &dtb[1..], &img, Some(0x5000));
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[1].contains("entrypoint-offset 0x5000 is not the image's offset 0x4000"));
}

#[test]
fn hafnium_and_tf_a_are_told_the_manifest_s_load_address_and_uuid() {
    let m = manifest::load(shipped("qemu-virt-sp.dts")).unwrap();
    assert_eq!(
        manifest::hafnium::uuid_string(&m).as_deref(),
        Some("c66028b5-2498-4aa1-9de7-77da6122abf0")
    );
    let tb = manifest::hafnium::tb_fw_config(&m, "scmi_sp").unwrap();
    assert!(
        tb.contains("uuid = \"c66028b5-2498-4aa1-9de7-77da6122abf0\";"),
        "{tb}"
    );
    assert!(tb.contains("load-address = <0xe300000>;"), "{tb}");
    let spmc = manifest::hafnium::spmc_manifest(&m, "scmi-sp", 4 << 20, 2).unwrap();
    assert!(spmc.contains("load_address = <0xe300000>;"), "{spmc}");
    assert!(spmc.contains("mem_size = <0x400000>;"), "{spmc}");
    assert!(spmc.contains("vcpu_count = <1>;"), "{spmc}");
    // Hafnium wants cpu@0 first, then the secondaries in descending order.
    let c0 = spmc.find("cpu@0").unwrap();
    let c1 = spmc.find("cpu@1").unwrap();
    assert!(c0 < c1);
    // Both compile, and fit TF-A QEMU's 4 KiB config slots.
    let dir = std::env::temp_dir().join(format!("hafnium-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [("tb.dts", &tb), ("spmc.dts", &spmc)] {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let dtb = std::process::Command::new("dtc")
            .args(["-q", "-I", "dts", "-O", "dtb"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            dtb.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&dtb.stderr)
        );
        assert!(
            dtb.stdout.len() <= 4096,
            "{name}: {} bytes",
            dtb.stdout.len()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    // A partition outside the secure memory is refused.
    assert!(manifest::hafnium::spmc_manifest(&m, "x", 0x0100_0000, 2).is_err());
}
