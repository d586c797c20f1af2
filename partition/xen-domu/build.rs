//! Builds the image's configuration from `manifests/xen-domu.dts` (needs
//! `dtc`): see `manifest::build::aarch64_image`.

fn main() {
    manifest::build::aarch64_image(
        "../../manifests/xen-domu.dts",
        &["../../manifests/qemu-virt-scmi.dtsi"],
    );
}
