//! One small bad manifest per rejection class: each is `minimal.dts` broken
//! in one place, and the error must name the file, the node and the
//! problem.

use std::path::PathBuf;

const MINIMAL: &str = include_str!("minimal.dts");
/// A firmware manifest: memory and device regions, a load address and a
/// virtio-msg device.
const FIRMWARE: &str = include_str!("firmware.dts");

/// Writes `template` with `from` replaced by `to` and loads it.
fn load_in(
    template: &str,
    case: &str,
    from: &str,
    to: &str,
) -> (PathBuf, Result<manifest::Manifest, manifest::Error>) {
    assert!(template.contains(from), "{case}: template lacks {from:?}");
    let dir = std::env::temp_dir().join(format!("manifest-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{case}.dts"));
    std::fs::write(&path, template.replacen(from, to, 1)).unwrap();
    let r = manifest::load(&path);
    (path, r)
}

/// Writes `MINIMAL` with `from` replaced by `to` and loads it.
fn load_with(
    case: &str,
    from: &str,
    to: &str,
) -> (PathBuf, Result<manifest::Manifest, manifest::Error>) {
    load_in(MINIMAL, case, from, to)
}

/// Asserts the manifest is refused at `node` with `snippet` in the message,
/// and that the printed error names the file and the node.
fn refused(case: &str, from: &str, to: &str, node: &str, snippet: &str) {
    let (path, r) = load_with(case, from, to);
    let e = r.expect_err(case);
    assert_eq!(e.file, path.display().to_string(), "{case}");
    assert_eq!(e.node, node, "{case}: {e}");
    assert!(e.message.contains(snippet), "{case}: {e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}: {node}: ", path.display())),
        "{case}: {shown}"
    );
}

/// Asserts `template` broken by replacing `from` with `to` is refused at
/// `node` with exactly `message`, and that the printed error names the
/// file and the node.
fn refused_exactly(template: &str, case: &str, from: &str, to: &str, node: &str, message: &str) {
    let (path, r) = load_in(template, case, from, to);
    let e = r.expect_err(case);
    assert_eq!(e.file, path.display().to_string(), "{case}");
    assert_eq!(
        (e.node.as_str(), e.message.as_str()),
        (node, message),
        "{case}"
    );
    assert_eq!(
        e.to_string(),
        format!("{}: {node}: {message}", path.display()),
        "{case}"
    );
}

/// [`refused_exactly`] on the firmware template.
fn firmware_refused(case: &str, from: &str, to: &str, node: &str, message: &str) {
    refused_exactly(FIRMWARE, case, from, to, node, message);
}

#[test]
fn the_template_itself_is_accepted() {
    let (_, r) = load_with("ok", "vendor", "vendor");
    let m = r.unwrap();
    assert_eq!(m.scmi.clocks.len(), 2);
    assert_eq!(m.scmi.agents[0].protocols, 0b1011_0000);
    assert_eq!(m.scmi.devices[0].resources, vec![(0x14, 0), (0x14, 1)]);
}

#[test]
fn unknown_property() {
    refused(
        "unknown-property",
        "\t\t\t\tdefault-on;",
        "\t\t\t\tdefault-on;\n\t\t\t\tcolour = \"blue\";",
        "/scmi/clocks/clock@0",
        "unknown property \"colour\"",
    );
}

#[test]
fn unknown_node() {
    refused(
        "unknown-node",
        "\t\tclocks {",
        "\t\tgpios {\n\t\t};\n\n\t\tclocks {",
        "/scmi",
        "unknown node \"gpios\"",
    );
}

#[test]
fn wrong_size() {
    // A 64-bit rate written as one 32-bit cell.
    refused(
        "wrong-size",
        "default-rate = /bits/ 64 <24000000>;",
        "default-rate = <24000000>;",
        "/scmi/clocks/clock@0",
        "property \"default-rate\": expected 64-bit values",
    );
}

#[test]
fn flag_with_a_value() {
    refused(
        "flag-value",
        "\t\t\t\tdefault-on;",
        "\t\t\t\tdefault-on = <1>;",
        "/scmi/clocks/clock@0",
        "is a flag and takes no value",
    );
}

#[test]
fn missing_required_property() {
    refused(
        "missing-property",
        "\t\t\t\tunit = <2>;\n",
        "",
        "/scmi/sensors/sensor@0",
        "missing required property \"unit\"",
    );
}

#[test]
fn ids_with_a_gap() {
    refused(
        "id-gap",
        "clock@1 {\n\t\t\t\treg = <1>;",
        "clock@2 {\n\t\t\t\treg = <2>;",
        "/scmi/clocks/clock@2",
        "expected 1, found 2",
    );
}

#[test]
fn reg_and_unit_address_disagree() {
    refused(
        "reg-mismatch",
        "clock@1 {\n\t\t\t\treg = <1>;",
        "clock@1 {\n\t\t\t\treg = <0>;",
        "/scmi/clocks/clock@1",
        "does not match the unit address",
    );
}

#[test]
fn duplicate_name() {
    refused(
        "duplicate-name",
        "label = \"bus\";",
        "label = \"ref\";",
        "/scmi/clocks/clock@1",
        "duplicate name \"ref\"",
    );
}

#[test]
fn rate_outside_the_clock_rates() {
    refused(
        "rate-outside",
        "default-rate = /bits/ 64 <100000000>;",
        "default-rate = /bits/ 64 <125000000>;",
        "/scmi/clocks/clock@1",
        "125000000 Hz is not one of the clock's rates",
    );
}

#[test]
fn rates_not_ascending() {
    refused(
        "rates-order",
        "rates = /bits/ 64 <24000000>;",
        "rates = /bits/ 64 <48000000 24000000>;",
        "/scmi/clocks/clock@0",
        "ascend",
    );
}

#[test]
fn parent_that_is_no_clock() {
    refused(
        "bad-parent",
        "parents = <0>;",
        "parents = <7>;",
        "/scmi/clocks/clock@1",
        "<7> is not another clock",
    );
}

#[test]
fn voltage_default_outside_the_levels() {
    refused(
        "voltage-default",
        "default-level = <900000>;",
        "default-level = <850000>;",
        "/scmi/voltage-domains/domain@0",
        "850000 µV is not one of the domain's levels",
    );
}

#[test]
fn reference_to_a_missing_device() {
    refused(
        "missing-device",
        "devices = <0>;",
        "devices = <0 3>;",
        "/scmi/agents/agent@1",
        "<3> names no device",
    );
}

#[test]
fn reference_to_a_missing_resource() {
    refused(
        "missing-resource",
        "clock-ids = <0 1>;",
        "clock-ids = <0 1 2>;",
        "/scmi/devices/device@0",
        "<2> names no resource",
    );
}

#[test]
fn reference_to_a_missing_agent() {
    refused(
        "missing-agent",
        "agent = <1>;",
        "agent = <2>;",
        "/virtio/device@0",
        "<2> names no agent",
    );
}

#[test]
fn protocol_the_server_does_not_implement() {
    refused(
        "unknown-protocol",
        "protocols = <0x14 0x15 0x17>;",
        "protocols = <0x14 0x18>;",
        "/scmi/agents/agent@1",
        "0x18 is not a protocol this server implements",
    );
}

#[test]
fn more_agents_than_supported() {
    let mut extra = String::new();
    for i in 2..=9 {
        extra.push_str(&format!(
            "\t\t\tagent@{i} {{\n\t\t\t\treg = <{i}>;\n\t\t\t\tlabel = \"a{i}\";\n\t\t\t}};\n"
        ));
    }
    refused(
        "too-many-agents",
        "\t\t\t\tdevices = <0>;\n\t\t\t};\n",
        &format!("\t\t\t\tdevices = <0>;\n\t\t\t}};\n{extra}"),
        "/scmi/agents",
        "9 agent entries, the server supports at most 8",
    );
}

#[test]
fn more_trip_points_than_supported() {
    refused(
        "too-many-trips",
        "\t\t\t\tunit = <2>;",
        "\t\t\t\tunit = <2>;\n\t\t\t\ttrip-points = <5>;",
        "/scmi/sensors/sensor@0",
        "the server keeps at most 4",
    );
}

#[test]
fn agent_name_too_long_for_its_16_byte_field() {
    refused(
        "agent-name",
        "label = \"ospm\";",
        "label = \"ospm-linux-guest0\";",
        "/scmi/agents/agent@1",
        "holds at most 15",
    );
}

#[test]
fn resource_name_too_long_for_its_64_byte_field() {
    let long = "x".repeat(64);
    refused(
        "clock-name",
        "label = \"bus\";",
        &format!("label = \"{long}\";"),
        "/scmi/clocks/clock@1",
        "has 64 characters; the SCMI field holds at most 63",
    );
}

#[test]
fn vendor_too_long() {
    refused(
        "vendor",
        "vendor = \"test\";",
        "vendor = \"a-very-long-vendor\";",
        "/scmi",
        "16-byte SCMI field",
    );
}

#[test]
fn inconsistent_transport_properties() {
    refused(
        "mmio-without-base",
        "\t\t\tmmio-base = /bits/ 64 <0x9000000>;\n",
        "",
        "/virtio/device@0",
        "\"mmio-base\" (virtio-mmio needs one)",
    );
    refused(
        "queue-not-power-of-two",
        "queue-sizes = <64>;",
        "queue-sizes = <100>;",
        "/virtio/device@0",
        "100 is not a power of two",
    );
}

#[test]
fn ffa_properties_out_of_range() {
    refused(
        "exception-level",
        "exception-level = <2>;",
        "exception-level = <3>;",
        "/",
        "property \"exception-level\"",
    );
    refused(
        "compatible",
        "arm,ffa-manifest-1.1",
        "arm,ffa-manifest-2.0",
        "/",
        "is not \"arm,ffa-manifest-1.0\"",
    );
}

#[test]
fn source_that_does_not_compile_names_the_file() {
    let (path, r) = load_with("syntax", "vendor = \"test\";", "vendor = \"test\"");
    let e = r.unwrap_err();
    assert_eq!(e.file, path.display().to_string());
    assert_eq!(e.node, "");
    assert!(e.message.starts_with("dtc: "), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}: dtc:", path.display()))
    );
}

#[test]
fn a_blob_that_is_not_a_device_tree_is_refused() {
    let e = manifest::parse_dtb(b"not a device tree", "junk.dtb").unwrap_err();
    assert_eq!(e.file, "junk.dtb");
    assert!(
        e.message.contains("not a valid flattened device tree"),
        "{e}"
    );
}

#[test]
fn the_firmware_template_itself_is_accepted() {
    let (_, r) = load_in(FIRMWARE, "fw-ok", "vendor", "vendor");
    let m = r.unwrap();
    assert_eq!(m.virtio[0].channel, Some((0x1000, 0x1000)));
    assert_eq!(m.virtio[0].channel_geometry, Some((16, 64)));
    let timer = &m.partition.device_regions[2];
    assert!(timer.system_registers);
    assert_eq!((timer.base_address, timer.pages_count), (None, 0));
}

const DEV: &str = "/virtio/device@0";

#[test]
fn a_message_channel_only_on_virtio_msg() {
    refused_exactly(
        MINIMAL,
        "channel-on-mmio",
        "\t\t\tmmio-base = /bits/ 64 <0x9000000>;\n",
        "\t\t\tmmio-base = /bits/ 64 <0x9000000>;\n\t\t\tchannel = /bits/ 64 <0x0 0x1000>;\n",
        DEV,
        "property \"channel\": only virtio-msg devices have a message channel",
    );
    refused_exactly(
        MINIMAL,
        "geometry-on-mmio",
        "\t\t\tmmio-base = /bits/ 64 <0x9000000>;\n",
        "\t\t\tmmio-base = /bits/ 64 <0x9000000>;\n\t\t\tchannel-geometry = <16 64>;\n",
        DEV,
        "property \"channel-geometry\": only virtio-msg devices have a message channel",
    );
}

#[test]
fn virtio_msg_needs_channel_geometry_doorbell_and_interrupt() {
    for (prop, line) in [
        ("channel", "\t\t\tchannel = /bits/ 64 <0x1000 0x1000>;\n"),
        ("channel-geometry", "\t\t\tchannel-geometry = <16 64>;\n"),
        ("doorbell", "\t\t\tdoorbell = <1>;\n"),
        ("interrupts", "\t\t\tinterrupts = <2 0x0>;\n"),
    ] {
        firmware_refused(
            &format!("fw-missing-{prop}"),
            line,
            "",
            DEV,
            &format!("missing required property \"{prop}\" (virtio-msg needs one)"),
        );
    }
}

#[test]
fn channel_must_be_aligned_non_empty_and_inside_the_window() {
    firmware_refused(
        "fw-channel-unaligned",
        "channel = /bits/ 64 <0x1000 0x1000>;",
        "channel = /bits/ 64 <0x1020 0x1000>;",
        DEV,
        "property \"channel\": offset 0x1020 is not aligned to 64 bytes",
    );
    firmware_refused(
        "fw-channel-empty",
        "channel = /bits/ 64 <0x1000 0x1000>;",
        "channel = /bits/ 64 <0x1000 0x0>;",
        DEV,
        "property \"channel\": size must be at least 1",
    );
    firmware_refused(
        "fw-channel-outside",
        "channel = /bits/ 64 <0x1000 0x1000>;",
        "channel = /bits/ 64 <0xf000 0x1040>;",
        DEV,
        "property \"channel\": 0x1040 bytes at offset 0xf000 do not fit the 0x10000-byte shared window",
    );
    firmware_refused(
        "fw-channel-wraps",
        "channel = /bits/ 64 <0x1000 0x1000>;",
        "channel = /bits/ 64 <0xffffffffffffffc0 0x1000>;",
        DEV,
        "property \"channel\": 0x1000 bytes at offset 0xffffffffffffffc0 do not fit the 0x10000-byte shared window",
    );
    firmware_refused(
        "fw-channel-shape",
        "channel = /bits/ 64 <0x1000 0x1000>;",
        "channel = /bits/ 64 <0x1000>;",
        DEV,
        "property \"channel\": expected /bits/ 64 <offset size>",
    );
}

#[test]
fn channel_geometry_must_be_a_layout_that_fits() {
    let cases = [
        (
            "fw-geometry-one",
            "<1 64>",
            "1 elements: expected 2..=32768",
        ),
        (
            "fw-geometry-many",
            "<32769 64>",
            "32769 elements: expected 2..=32768",
        ),
        (
            "fw-geometry-small",
            "<16 32>",
            "element size 32: expected a multiple of 64 in 64..=65472",
        ),
        (
            "fw-geometry-odd",
            "<16 96>",
            "element size 96: expected a multiple of 64 in 64..=65472",
        ),
        (
            "fw-geometry-large",
            "<2 65536>",
            "element size 65536: expected a multiple of 64 in 64..=65472",
        ),
        // 4 * 64 + 2 * 32 * 64 = 0x1100 > 0x1000.
        (
            "fw-geometry-too-big",
            "<32 64>",
            "32 elements of 64 bytes need 0x1100 bytes; the channel has 0x1000",
        ),
        (
            "fw-geometry-shape",
            "<16>",
            "expected <elements element-size>",
        ),
    ];
    for (case, value, message) in cases {
        firmware_refused(
            case,
            "channel-geometry = <16 64>;",
            &format!("channel-geometry = {value};"),
            DEV,
            &format!("property \"channel-geometry\": {message}"),
        );
    }
}

#[test]
fn doorbell_and_interrupt_are_distinct_gic_interrupts() {
    firmware_refused(
        "fw-doorbell-special",
        "doorbell = <1>;",
        "doorbell = <1023>;",
        DEV,
        "property \"doorbell\": interrupt id 1023 is not a GIC SGI, PPI or SPI (0..=1019)",
    );
    firmware_refused(
        "fw-interrupt-special",
        "interrupts = <2 0x0>;",
        "interrupts = <1020 0x0>;",
        DEV,
        "property \"interrupts\": interrupt id 1020 is not a GIC SGI, PPI or SPI (0..=1019)",
    );
    firmware_refused(
        "fw-doorbell-is-interrupt",
        "doorbell = <1>;",
        "doorbell = <2>;",
        DEV,
        "property \"interrupts\": interrupt id 2 is also the doorbell: each direction needs its own",
    );
}

#[test]
fn the_shared_window_is_readable_and_writable_memory() {
    firmware_refused(
        "fw-window-nowhere",
        "shared-window = /bits/ 64 <0x44000000 0x10000>;",
        "shared-window = /bits/ 64 <0x44008000 0x10000>;",
        DEV,
        "property \"shared-window\": [0x44008000, 0x44018000) lies inside no memory region",
    );
    firmware_refused(
        "fw-window-read-only",
        "attributes = <0xb>;",
        "attributes = <0x9>;",
        DEV,
        "property \"shared-window\": [0x44000000, 0x44010000) lies in /memory-regions/shared, \
         which is not readable and writable (attributes 0x9)",
    );
}

#[test]
fn regions_do_not_overlap() {
    firmware_refused(
        "fw-memory-overlap",
        "base-address = <0x0 0x40010000>;",
        "base-address = <0x0 0x4000f000>;",
        "/memory-regions/data",
        "property \"base-address\": [0x4000f000, 0x4001f000) overlaps /memory-regions/ram \
         [0x40000000, 0x40010000)",
    );
    firmware_refused(
        "fw-memory-device-overlap",
        "base-address = <0x0 0x44000000>;",
        "base-address = <0x0 0x08000000>;",
        "/memory-regions/shared",
        "property \"base-address\": [0x8000000, 0x8010000) overlaps /device-regions/gicd \
         [0x8000000, 0x8010000)",
    );
    firmware_refused(
        "fw-device-overlap",
        "base-address = <0x0 0x08000000>;",
        "base-address = <0x0 0x09000000>;",
        "/device-regions/gicd",
        "property \"base-address\": [0x9000000, 0x9010000) overlaps /device-regions/uart \
         [0x9000000, 0x9001000)",
    );
    firmware_refused(
        "fw-region-wraps",
        "base-address = <0x0 0x44000000>;",
        "base-address = <0xffffffff 0xfffff000>;",
        "/memory-regions/shared",
        "property \"pages-count\": 16 pages from 0xfffffffffffff000 wrap around the address space",
    );
}

#[test]
fn the_image_is_loaded_into_executable_memory() {
    firmware_refused(
        "fw-load-nowhere",
        "load-address = <0x0 0x40000000>;",
        "load-address = <0x0 0x50000000>;",
        "/",
        "property \"load-address\": 0x50000000 lies inside no memory region",
    );
    firmware_refused(
        "fw-load-not-executable",
        "load-address = <0x0 0x40000000>;",
        "load-address = <0x0 0x40010000>;",
        "/",
        "property \"load-address\": 0x40010000 lies in /memory-regions/data, which is not \
         executable (attributes 0x3)",
    );
    firmware_refused(
        "fw-entry-outside",
        "entrypoint-offset = <0x0 0x800>;",
        "entrypoint-offset = <0x0 0x10000>;",
        "/",
        "property \"entrypoint-offset\": 0x10000 from the load address leaves /memory-regions/ram",
    );
}

#[test]
fn system_register_devices_have_interrupts_and_no_address() {
    let timer = "\t\t\tsystem-registers;\n";
    firmware_refused(
        "fw-sysreg-with-base",
        timer,
        "\t\t\tsystem-registers;\n\t\t\tbase-address = <0x0 0x0a000000>;\n",
        "/device-regions/timer",
        "property \"base-address\": a \"system-registers\" device has no address (it is reached \
         through system registers)",
    );
    firmware_refused(
        "fw-sysreg-with-pages",
        timer,
        "\t\t\tsystem-registers;\n\t\t\tpages-count = <1>;\n",
        "/device-regions/timer",
        "property \"pages-count\": a \"system-registers\" device has no address (it is reached \
         through system registers)",
    );
    firmware_refused(
        "fw-sysreg-without-interrupts",
        "\t\t\tinterrupts = <27 0x0>;\n",
        "",
        "/device-regions/timer",
        "missing required property \"interrupts\" (a \"system-registers\" device is listed for \
         its interrupts)",
    );
    firmware_refused(
        "fw-device-without-base",
        "\t\t\tbase-address = <0x0 0x08000000>;\n",
        "",
        "/device-regions/gicd",
        "missing required property \"base-address\"",
    );
    firmware_refused(
        "fw-sysreg-memory",
        "\t\t\tattributes = <0x7>;\n",
        "\t\t\tattributes = <0x7>;\n\t\t\tsystem-registers;\n",
        "/memory-regions/ram",
        "unknown property \"system-registers\" (allowed here: description, base-address, \
         pages-count, attributes)",
    );
}

#[test]
fn region_names_make_distinct_constants() {
    firmware_refused(
        "fw-region-same-constant",
        "\t\tgicd {",
        "\t\tUART {",
        "/device-regions/UART",
        "node name makes the constant UART, as \"uart\" does: names must differ in more than \
         case, punctuation or unit address",
    );
    firmware_refused(
        "fw-region-no-constant",
        "\t\tdata {",
        "\t\t2nd-data {",
        "/memory-regions/2nd-data",
        "node name \"2nd-data\" makes no Rust constant name (start it with a letter)",
    );
}

/// The secure partition's manifest, for the FF-A bus rules.
const SP: &str = include_str!("../qemu-virt-sp.dts");

#[test]
fn virtio_msg_ffa_devices_need_a_reachable_secure_partition() {
    let sp = SP.replace(
        "/include/ \"qemu-virt-scmi.dtsi\"",
        include_str!("../qemu-virt-scmi.dtsi"),
    );
    let dev = "/virtio/device@0";
    refused_exactly(
        &sp,
        "ffa-window",
        "max-areas = <4>;",
        "max-areas = <4>; shared-window = /bits/ 64 <0x44000000 0x40000>;",
        dev,
        "property \"shared-window\": not used with virtio-msg-ffa (messages arrive in FF-A calls, memory as FF-A shares)",
    );
    refused_exactly(
        &sp,
        "ffa-areas",
        "max-areas = <4>;",
        "max-areas = <17>;",
        dev,
        "property \"max-areas\": 17 is not in 1..=16",
    );
    refused_exactly(
        &sp,
        "ffa-no-areas",
        "max-areas = <4>;",
        "",
        dev,
        "missing required property \"max-areas\" (virtio-msg-ffa needs one)",
    );
    refused_exactly(
        &sp,
        "ffa-el1",
        "exception-level = <2>;",
        "exception-level = <0>;",
        "/",
        "property \"exception-level\": virtio-msg-ffa devices are served by a secure partition (1 S-EL0 or 2 S-EL1)",
    );
    refused_exactly(
        &sp,
        "ffa-uuid",
        "uuid = <0xb52860c6",
        "uuid = <0xb52860c7",
        "/",
        "property \"uuid\": virtio-msg-ffa needs the virtio-msg FF-A device UUID c66028b5-2498-4aa1-9de7-77da6122abf0 (<0xb52860c6 0xa14a9824 0xda77e79d 0xf0ab2261>)",
    );
    refused_exactly(
        &sp,
        "ffa-req2",
        "messaging-method = <0x204>;",
        "messaging-method = <0x4>;",
        "/",
        "property \"messaging-method\": 0x4 for the virtio-msg UUID lacks bit 9 (receives DIRECT_REQ2)",
    );
    refused_exactly(
        &sp,
        "ffa-amp-areas",
        "transport = \"virtio-msg-ffa\";",
        "transport = \"virtio-msg\";",
        dev,
        "property \"max-areas\": only virtio-msg-ffa devices take FF-A shares",
    );
}

/// The secure partition's manifest in the FF-A 1.1 binding: its UUID and
/// messaging method in a `services` node, as Hafnium reads 1.1 manifests.
fn sp_with_services() -> String {
    SP.replace(
        "/include/ \"qemu-virt-scmi.dtsi\"",
        include_str!("../qemu-virt-scmi.dtsi"),
    )
    .replace("arm,ffa-manifest-1.0", "arm,ffa-manifest-1.1")
    .replace(
        "\tuuid = <0xb52860c6 0xa14a9824 0xda77e79d 0xf0ab2261>;\n",
        "",
    )
    .replace("\tmessaging-method = <0x204>;\n", "")
    .replace(
        "\tboot-info {",
        "\tservices {\n\t\tcompatible = \"arm,ffa-manifest-services\";\n\t\tvirtio-msg {\n\t\t\tuuid = \"c66028b5-2498-4aa1-9de7-77da6122abf0\";\n\t\t\tmessaging-method = <0x204>;\n\t\t};\n\t};\n\n\tboot-info {",
    )
}

#[test]
fn ffa_1_1_services_nodes_name_the_partition_s_uuids() {
    let sp = sp_with_services();
    let (_, r) = load_in(&sp, "services-ok", "max-areas = <4>;", "max-areas = <4>;");
    let m = r.expect("the services form loads");
    let dir = std::env::temp_dir().join(format!("manifest-sp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("sp.dts");
    std::fs::write(
        &plain,
        SP.replace(
            "/include/ \"qemu-virt-scmi.dtsi\"",
            include_str!("../qemu-virt-scmi.dtsi"),
        ),
    )
    .unwrap();
    let one = manifest::load(&plain).unwrap();
    // The same UUID and method as the 1.0 form's root properties.
    assert!(m.partition.services && !one.partition.services);
    assert_eq!(m.partition.uuids, one.partition.uuids);
    assert_eq!(m.partition.messaging_method, one.partition.messaging_method);
    assert_eq!(m.partition.binding, (1, 1));
    // Written back, it keeps the services form and reads the same.
    let rt = dir.join("rt.dts");
    std::fs::write(&rt, manifest::dts::to_dts(&m)).unwrap();
    let again = manifest::load(&rt).unwrap();
    assert_eq!(again.partition, m.partition);
    let _ = std::fs::remove_dir_all(&dir);
    // Refused: a services node in a 1.0 manifest, root uuid beside one, a
    // secure 1.1 partition without one, a UUID that is not canonical.
    let plain_sp = SP.replace(
        "/include/ \"qemu-virt-scmi.dtsi\"",
        include_str!("../qemu-virt-scmi.dtsi"),
    );
    refused_exactly(
        &sp,
        "services-1.0",
        "arm,ffa-manifest-1.1",
        "arm,ffa-manifest-1.0",
        "/services",
        "a \"services\" node needs compatible \"arm,ffa-manifest-1.1\" (FF-A 1.1+ binding)",
    );
    refused_exactly(
        &sp,
        "services-and-root",
        "\tnotification-support;",
        "\tnotification-support;\n\tuuid = <0xb52860c6 0xa14a9824 0xda77e79d 0xf0ab2261>;",
        "/",
        "property \"uuid\": belongs to the services node, which this manifest has",
    );
    refused_exactly(
        &plain_sp,
        "sp-1.1-no-services",
        "arm,ffa-manifest-1.0",
        "arm,ffa-manifest-1.1",
        "/",
        "a secure partition's arm,ffa-manifest-1.1 manifest lists its UUIDs and messaging methods in a \"services\" node",
    );
    refused_exactly(
        &sp,
        "services-uuid",
        "uuid = \"c66028b5-2498-4aa1-9de7-77da6122abf0\";",
        "uuid = \"c66028b5-2498-4aa1-9de7-77da6122abf\";",
        "/services/virtio-msg",
        "property \"uuid\": \"c66028b5-2498-4aa1-9de7-77da6122abf\" is not a canonical UUID (8-4-4-4-12 hex digits)",
    );
}

/// The Xen DomU's manifest, for the Xen bus rules.
const XEN: &str = include_str!("../xen-domu.dts");

#[test]
fn virtio_msg_xen_devices_need_a_driver_domain_a_port_a_grant_and_a_window() {
    let xen = XEN.replace(
        "/include/ \"qemu-virt-scmi.dtsi\"",
        include_str!("../qemu-virt-scmi.dtsi"),
    );
    let dev = "/virtio/device@0";
    let cases: [(&str, &str, &str, &str); 10] = [
        (
            "xen-dom0",
            "xen,driver-domain = <1>;",
            "xen,driver-domain = <0>;",
            "property \"xen,driver-domain\": 0 is not a DomU id (1..=0x7fef)",
        ),
        (
            "xen-domid-reserved",
            "xen,driver-domain = <1>;",
            "xen,driver-domain = <0x7ff0>;",
            "property \"xen,driver-domain\": 32752 is not a DomU id (1..=0x7fef)",
        ),
        (
            "xen-port",
            "xen,event-channel = <11>;",
            "xen,event-channel = <1024>;",
            "property \"xen,event-channel\": port 1024 is not in 1..=1023",
        ),
        (
            "xen-grant-reserved",
            "xen,channel-grant = <8>;",
            "xen,channel-grant = <7>;",
            "property \"xen,channel-grant\": grant 7 is reserved (0..=7)",
        ),
        (
            "xen-window-unaligned",
            "<0x39100000 0x10000>",
            "<0x39100800 0x10000>",
            "property \"xen,grant-window\": expected /bits/ 64 <base size>: page-aligned, 2 to 256 pages (a slot per mapped page)",
        ),
        (
            "xen-window-one-slot",
            "<0x39100000 0x10000>",
            "<0x39100000 0x1000>",
            "property \"xen,grant-window\": expected /bits/ 64 <base size>: page-aligned, 2 to 256 pages (a slot per mapped page)",
        ),
        (
            "xen-no-port",
            "xen,event-channel = <11>;",
            "",
            "missing required property \"xen,event-channel\" (virtio-msg-xen needs one)",
        ),
        (
            "xen-channel-too-big",
            "channel-geometry = <16 64>;",
            "channel-geometry = <32 64>;",
            "property \"channel-geometry\": 32 elements of 64 bytes need 0x1100 bytes; the channel has 0x1000",
        ),
        (
            "xen-doorbell",
            "xen,channel-grant = <8>;",
            "xen,channel-grant = <8>; doorbell = <1>;",
            "property \"doorbell\": not used with virtio-msg-xen (the driver grants the channel page and its memory; events travel on the event channel)",
        ),
        (
            "xen-window-on-msg",
            "transport = \"virtio-msg-xen\";",
            "transport = \"virtio-msg\";",
            "property \"xen,driver-domain\": only virtio-msg-xen devices have Xen properties",
        ),
    ];
    for (case, from, to, message) in cases {
        refused_exactly(&xen, case, from, to, dev, message);
    }
}
