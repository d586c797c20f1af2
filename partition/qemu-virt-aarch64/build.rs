//! Builds the image's configuration from `manifests/qemu-virt-aarch64.dts`
//! (needs `dtc`): see `manifest::build::aarch64_image`.

fn main() {
    manifest::build::aarch64_image(
        "../../manifests/qemu-virt-aarch64.dts",
        &["../../manifests/qemu-virt-scmi.dtsi"],
    );
}
