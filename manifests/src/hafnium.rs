//! What TF-A and Hafnium must be told about a secure partition besides its
//! own manifest, written from it: BL2's `TB_FW_CONFIG` (which package of
//! the FIP goes where) and the SPMC's `TOS_FW_CONFIG` (Hafnium's core
//! manifest: the partition's load address and memory, the secure and
//! normal-world memory, the CPUs). Both sides read the load address and the
//! UUID from the one manifest, so they cannot disagree.
//!
//! Hafnium's rules for QEMU virt, as a local trial with TF-A v2.15 and
//! Hafnium (2026) showed them: the package lies at the SPMC manifest's
//! `load_address` (4 KiB aligned) and `entrypoint-offset` counts from the
//! package; `mem_size` covers the whole footprint (Hafnium maps
//! `[load_address, load_address + mem_size)` for the partition: image,
//! bss and stacks); the SPMC's own binary takes 2 MiB at 0x0e100000, so the
//! partitions' secure memory starts at 0x0e300000; both DTBs must fit TF-A
//! QEMU's 4 KiB config slots.

use alloc::format;
use alloc::string::String;

use crate::Manifest;

/// Where Hafnium runs on QEMU virt (TF-A's BL32 address) and its size.
pub const SPMC: (u64, u64) = (0x0e10_0000, 0x20_0000);
/// Secure DRAM for partitions, after the SPMC.
pub const SECURE_MEMORY: (u64, u64) = (0x0e30_0000, 0x00d0_0000);
/// Normal-world DRAM of `-m 1G`.
pub const NS_MEMORY: (u64, u64) = (0x4000_0000, 0x4000_0000);

/// The manifest's first UUID as a canonical string.
pub fn uuid_string(m: &Manifest) -> Option<String> {
    m.partition.uuids.first().map(crate::model::uuid_text)
}

/// BL2's `TB_FW_CONFIG`: the partition's package (selected in the FIP by
/// the manifest's UUID) is loaded at its load address.
pub fn tb_fw_config(m: &Manifest, name: &str) -> Result<String, String> {
    let load = m
        .partition
        .load_address
        .ok_or("the partition has no load-address")?;
    let uuid = uuid_string(m).ok_or("the partition has no UUID")?;
    Ok(format!(
        "/dts-v1/;\n\n/ {{\n\ttb_fw-config {{\n\t\tcompatible = \"arm,tb_fw\";\n\t}};\n\n\
         \tsecure-partitions {{\n\t\tcompatible = \"arm,sp\";\n\t\t{name} {{\n\
         \t\t\tuuid = \"{uuid}\";\n\t\t\tload-address = <{load:#x}>;\n\t\t}};\n\t}};\n}};\n"
    ))
}

/// Hafnium's core manifest (`TOS_FW_CONFIG`) for one partition of
/// `mem_size` bytes and `cpus` CPUs (listed first, then the secondaries in
/// descending order, as Hafnium wants them).
pub fn spmc_manifest(m: &Manifest, name: &str, mem_size: u64, cpus: u32) -> Result<String, String> {
    let load = m
        .partition
        .load_address
        .ok_or("the partition has no load-address")?;
    if load % 0x1000 != 0
        || load < SECURE_MEMORY.0
        || load + mem_size > SECURE_MEMORY.0 + SECURE_MEMORY.1
    {
        return Err(format!(
            "the partition at {load:#x} + {mem_size:#x} is not in the secure memory {:#x} + {:#x}",
            SECURE_MEMORY.0, SECURE_MEMORY.1
        ));
    }
    let mut cpu_nodes = String::new();
    for c in core::iter::once(0).chain((1..cpus).rev()) {
        cpu_nodes += &format!(
            "\t\tcpu@{c} {{\n\t\t\tdevice_type = \"cpu\";\n\t\t\tcompatible = \"arm,armv8\";\n\
             \t\t\treg = <0x0 {c:#x}>;\n\t\t\tenable-method = \"psci\";\n\t\t}};\n"
        );
    }
    let hi = |v: u64| v >> 32;
    let lo = |v: u64| v & 0xffff_ffff;
    Ok(format!(
        "/dts-v1/;\n\n/ {{\n\tcompatible = \"arm,ffa-core-manifest-1.0\";\n\t#address-cells = <2>;\n\t#size-cells = <2>;\n\n\
         \tattribute {{\n\t\tspmc_id = <0x8000>;\n\t\tmaj_ver = <0x1>;\n\t\tmin_ver = <0x3>;\n\t\texec_state = <0x0>;\n\
         \t\tload_address = <0x0 {spmc:#x}>;\n\t\tentrypoint = <0x0 {spmc:#x}>;\n\t\tbinary_size = <{spmc_size:#x}>;\n\t}};\n\n\
         \thypervisor {{\n\t\tcompatible = \"hafnium,hafnium\";\n\t\tvm1 {{\n\t\t\tis_ffa_partition;\n\
         \t\t\tdebug_name = \"{name}\";\n\t\t\tload_address = <{load:#x}>;\n\t\t\tvcpu_count = <{vcpus}>;\n\
         \t\t\tmem_size = <{mem_size:#x}>;\n\t\t}};\n\t}};\n\n\
         \tcpus {{\n\t\t#address-cells = <0x2>;\n\t\t#size-cells = <0x0>;\n{cpu_nodes}\t}};\n\n\
         \tmemory@0 {{\n\t\tdevice_type = \"memory\";\n\t\treg = <{:#x} {:#x} {:#x} {:#x}>;\n\t}};\n\n\
         \tmemory@1 {{\n\t\tdevice_type = \"ns-memory\";\n\t\treg = <{:#x} {:#x} {:#x} {:#x}>;\n\t}};\n}};\n",
        hi(SECURE_MEMORY.0),
        lo(SECURE_MEMORY.0),
        hi(SECURE_MEMORY.1),
        lo(SECURE_MEMORY.1),
        hi(NS_MEMORY.0),
        lo(NS_MEMORY.0),
        hi(NS_MEMORY.1),
        lo(NS_MEMORY.1),
        spmc = SPMC.0,
        spmc_size = SPMC.1,
        vcpus = m.partition.execution_ctx_count,
    ))
}
