#!/usr/bin/env bash
# Build the guest device tree: QEMU's own DT for `-M virt` plus an SCMI node.
#
# Usage: qemu/linux/mkdtb.sh OUT.dtb FRAGMENT.dtsi [QEMU_ARGS...]
#
#   1. qemu-system-aarch64 -M virt,dumpdtb=base.dtb QEMU_ARGS  (the DT QEMU
#      would generate for this machine: give the same -cpu/-smp/-m as the
#      boot; -device options of virtio-mmio devices do not change it, QEMU
#      always lists all 32 virtio-mmio transports);
#   2. dtc -I dtb -O dts -> base.dts;
#   3. append FRAGMENT (DTS source: a `/ { firmware { scmi { ... }; }; };`
#      block; the placeholder VSCMI_RX_TIMEOUT_MS is replaced by
#      $VSCMI_RX_TIMEOUT_MS, default 2000);
#   4. when FRAGMENT defines the label scmi_dvfs (protocol@13 with
#      #clock-cells), give each CPU node N `clocks = <&scmi_dvfs D>` where D
#      is the N-th word of $VSCMI_CPU_PERF_DOMAINS (default: "0" for cpu@0;
#      CPUs beyond the list get none), so scmi-cpufreq probes
#      (scmi_dev_used_by_cpus);
#   5. dtc -I dts -O dtb -> OUT.dtb, and OUT.dts next to it for reading.
#
# QEMU fills /chosen (bootargs, initrd) of a -dtb at boot time as usual.
set -euo pipefail

die() { printf 'mkdtb: ERROR: %s\n' "$*" >&2; exit 1; }
[ "$#" -ge 2 ] || { echo "usage: $0 OUT.dtb FRAGMENT.dtsi [QEMU_ARGS...]" >&2; exit 2; }
OUT="$1"
FRAGMENT="$2"
shift 2
[ -f "$FRAGMENT" ] || die "fragment not found: $FRAGMENT"
for t in qemu-system-aarch64 dtc; do
    command -v "$t" >/dev/null 2>&1 || die "$t missing: run scripts/setup-host.sh qemu"
done
RX_TIMEOUT="${VSCMI_RX_TIMEOUT_MS:-2000}"
PERF_DOMAINS="${VSCMI_CPU_PERF_DOMAINS-0}"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/mkdtb.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# -M virt,dumpdtb=FILE writes the DT and exits before running anything.
qemu-system-aarch64 -M virt,dumpdtb="$TMP/base.dtb" -nographic "$@" \
    >"$TMP/qemu.log" 2>&1 </dev/null \
    || { cat "$TMP/qemu.log" >&2; die "qemu dumpdtb failed"; }
[ -s "$TMP/base.dtb" ] || die "qemu wrote no DT"
dtc -q -I dtb -O dts -o "$TMP/base.dts" "$TMP/base.dtb" || die "dtc could not decompile QEMU's DT"

{
    cat "$TMP/base.dts"
    printf '\n/* ---- appended by qemu/linux/mkdtb.sh from %s ---- */\n' "$(basename "$FRAGMENT")"
    sed "s/VSCMI_RX_TIMEOUT_MS/$RX_TIMEOUT/g" "$FRAGMENT"
    if grep -q 'scmi_dvfs:' "$FRAGMENT"; then
        n=0
        for d in $PERF_DOMAINS; do
            grep -q "cpu@$n {" "$TMP/base.dts" || break
            printf '\n&{/cpus/cpu@%s} {\n\tclocks = <&scmi_dvfs %s>;\n};\n' "$n" "$d"
            n=$((n + 1))
        done
    fi
} >"$TMP/guest.dts"

mkdir -p "$(dirname "$OUT")"
dtc -q -I dts -O dtb -o "$OUT.tmp" "$TMP/guest.dts" \
    || { nl -ba "$TMP/guest.dts" | tail -n 80 >&2; die "dtc rejected the combined DT"; }
mv "$OUT.tmp" "$OUT"
cp "$TMP/guest.dts" "${OUT%.dtb}.dts"
