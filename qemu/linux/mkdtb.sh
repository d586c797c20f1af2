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
#   3. append FRAGMENT: DTS source, either root blocks (`/ { firmware {
#      scmi { ... }; }; };`) or the nodes for the root (`firmware { ... };`,
#      what `manifest-tool linux-dt` prints), wrapped in `/ { };` then; the
#      placeholder VSCMI_RX_TIMEOUT_MS is replaced by $VSCMI_RX_TIMEOUT_MS
#      (default 2000);
#   4. when protocol@13 has a label in FRAGMENT, point each CPU node N at
#      perf domain D, the N-th word of $VSCMI_CPU_PERF_DOMAINS (default "0":
#      cpu@0 -> domain 0; CPUs beyond the list get none): `clocks = <&L D>`
#      for #clock-cells, `power-domains = <&L D>; power-domain-names =
#      "perf"` for #power-domain-cells, so scmi-cpufreq probes
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

sed "s/VSCMI_RX_TIMEOUT_MS/$RX_TIMEOUT/g" "$FRAGMENT" >"$TMP/fragment.dtsi"
# The perf provider: the label on protocol@13 and whether it is a clock
# provider (#clock-cells: CPU `clocks`) or a power-domain provider
# (#power-domain-cells: CPU `power-domains` + `power-domain-names = "perf"`).
# Both are what scmi-cpufreq looks for (scmi_dev_used_by_cpus).
read -r PERF_LABEL PERF_KIND < <(awk '
    match($0, /[A-Za-z_][A-Za-z0-9_]*:[ \t]*protocol@13[ \t]*\{/) {
        split(substr($0, RSTART, RLENGTH), a, ":"); label = a[1]; inside = 1; next
    }
    inside && /#clock-cells/ { kind = "clock" }
    inside && /#power-domain-cells/ { kind = "pd" }
    inside && /\};/ { inside = 0 }
    END { if (label != "" && kind != "") print label, kind }
' "$TMP/fragment.dtsi") || true

{
    cat "$TMP/base.dts"
    printf '\n/* ---- appended by qemu/linux/mkdtb.sh from %s ---- */\n' "$(basename "$FRAGMENT")"
    # A fragment is either whole root blocks (`/ { ... };`) or the nodes to
    # put under the root (the manifest tool's `firmware { ... };`).
    if grep -Eq '^[[:space:]]*/[[:space:]]*\{' "$TMP/fragment.dtsi"; then
        cat "$TMP/fragment.dtsi"
    else
        printf '/ {\n'
        cat "$TMP/fragment.dtsi"
        printf '};\n'
    fi
    if [ -n "${PERF_LABEL:-}" ]; then
        n=0
        for d in $PERF_DOMAINS; do
            grep -q "cpu@$n {" "$TMP/base.dts" || break
            if [ "$PERF_KIND" = clock ]; then
                printf '\n&{/cpus/cpu@%s} {\n\tclocks = <&%s %s>;\n};\n' "$n" "$PERF_LABEL" "$d"
            else
                printf '\n&{/cpus/cpu@%s} {\n\tpower-domains = <&%s %s>;\n\tpower-domain-names = "perf";\n};\n' \
                    "$n" "$PERF_LABEL" "$d"
            fi
            n=$((n + 1))
        done
    fi
} >"$TMP/guest.dts"

mkdir -p "$(dirname "$OUT")"
dtc -q -I dts -O dtb -o "$OUT.tmp" "$TMP/guest.dts" \
    || { nl -ba "$TMP/guest.dts" | tail -n 80 >&2; die "dtc rejected the combined DT"; }
mv "$OUT.tmp" "$OUT"
cp "$TMP/guest.dts" "${OUT%.dtb}.dts"
