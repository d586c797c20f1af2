//! The Linux guest's view of the server: the `firmware { scmi { ... } }`
//! node of its device tree (Linux `Documentation/devicetree/bindings/
//! firmware/arm,scmi.yaml`, transport `arm,scmi-virtio`).

use alloc::string::String;
use core::fmt::Write;

use crate::model::{Levels, Manifest};

/// The DTS text of the guest's `firmware` node for `m`: compatible
/// `arm,scmi-virtio` (no phandle to the virtio device: Linux takes the one
/// SCMI virtio device it finds), `arm,max-rx-timeout-ms` when the manifest
/// gives one, a `protocol@XX` node for every protocol with resources, with
/// the provider cells Linux's drivers look for, and one `regulator@N` per
/// voltage domain (`regulator-name`, `-min-microvolt`, `-max-microvolt`;
/// `regulator-boot-on` when the domain starts on).
///
/// Voltage domains with negative levels are left out: Linux's
/// scmi-regulator refuses them. The labels (`scmi_clk:` …) let the rest of
/// the guest tree refer to the providers when both are compiled together.
pub fn linux_dt_fragment(m: &Manifest) -> String {
    let s = &m.scmi;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "/* Generated from {} by manifest::linux_dt_fragment. */",
        m.file
    );
    o.push_str("firmware {\n\tscmi {\n");
    o.push_str("\t\tcompatible = \"arm,scmi-virtio\";\n");
    o.push_str("\t\t#address-cells = <1>;\n\t\t#size-cells = <0>;\n");
    if let Some(t) = s.max_rx_timeout_ms {
        let _ = writeln!(o, "\t\tarm,max-rx-timeout-ms = <{t}>;");
    }
    let simple = |o: &mut String, label: &str, id: u8, cells: Option<&str>| {
        let _ = writeln!(
            o,
            "\n\t\t{label}: protocol@{id:x} {{\n\t\t\treg = <{id:#x}>;"
        );
        if let Some(c) = cells {
            let _ = writeln!(o, "\t\t\t{c} = <1>;");
        }
        o.push_str("\t\t};\n");
    };
    if !s.power.is_empty() {
        simple(&mut o, "scmi_power", 0x11, Some("#power-domain-cells"));
    }
    if s.system.is_some() {
        simple(&mut o, "scmi_system", 0x12, None);
    }
    if !s.perf.is_empty() {
        simple(&mut o, "scmi_perf", 0x13, Some("#power-domain-cells"));
    }
    if !s.clocks.is_empty() {
        simple(&mut o, "scmi_clk", 0x14, Some("#clock-cells"));
    }
    if !s.sensors.is_empty() {
        simple(&mut o, "scmi_sensors", 0x15, Some("#thermal-sensor-cells"));
    }
    if !s.resets.is_empty() {
        simple(&mut o, "scmi_reset", 0x16, Some("#reset-cells"));
    }
    if !s.voltages.is_empty() {
        o.push_str("\n\t\tscmi_voltage: protocol@17 {\n\t\t\treg = <0x17>;\n");
        o.push_str(
            "\n\t\t\tregulators {\n\t\t\t\t#address-cells = <1>;\n\t\t\t\t#size-cells = <0>;\n",
        );
        for (i, v) in s.voltages.iter().enumerate() {
            let Some((lo, _)) = v.levels.bounds() else {
                continue;
            };
            let hi = match &v.levels {
                Levels::List(l) => l.last().copied().unwrap_or(lo),
                // The highest level the steps reach.
                Levels::Range { min, max, step } => {
                    let k = (i64::from(*max) - i64::from(*min)) / i64::from((*step).max(1));
                    (i64::from(*min) + k * i64::from(*step)) as i32
                }
            };
            if lo < 0 {
                let _ = writeln!(
                    o,
                    "\t\t\t\t/* {} (domain {i}) has negative levels: Linux refuses it. */",
                    v.name
                );
                continue;
            }
            let _ = writeln!(o, "\n\t\t\t\tregulator@{i:x} {{");
            let _ = writeln!(o, "\t\t\t\t\treg = <{i:#x}>;");
            let _ = writeln!(o, "\t\t\t\t\tregulator-name = \"{}\";", v.name);
            let _ = writeln!(o, "\t\t\t\t\tregulator-min-microvolt = <{lo}>;");
            let _ = writeln!(o, "\t\t\t\t\tregulator-max-microvolt = <{hi}>;");
            if v.init.config != scmi_server::protocols::voltage::MODE_OFF {
                o.push_str("\t\t\t\t\tregulator-boot-on;\n");
            }
            o.push_str("\t\t\t\t};\n");
        }
        o.push_str("\t\t\t};\n\t\t};\n");
    }
    o.push_str("\t};\n};\n");
    o
}
