//! One small bad manifest per rejection class: each is `minimal.dts` broken
//! in one place, and the error must name the file, the node and the
//! problem.

use std::path::PathBuf;

const MINIMAL: &str = include_str!("minimal.dts");

/// Writes `MINIMAL` with `from` replaced by `to` and loads it.
fn load_with(
    case: &str,
    from: &str,
    to: &str,
) -> (PathBuf, Result<manifest::Manifest, manifest::Error>) {
    assert!(MINIMAL.contains(from), "{case}: template lacks {from:?}");
    let dir = std::env::temp_dir().join(format!("manifest-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{case}.dts"));
    std::fs::write(&path, MINIMAL.replacen(from, to, 1)).unwrap();
    let r = manifest::load(&path);
    (path, r)
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
