#!/usr/bin/env bash
# The SCMI back-end as an FF-A secure partition (Hafnium, S-EL1, QEMU virt).
#
#   scripts/ffa.sh package   build the partition (--profile firmware) and its
#                            SP package: target/ffa/scmi-sp.pkg (SPKG v2: the
#                            manifests/qemu-virt-sp.dts blob at 0x1000, the raw
#                            image at 0x4000), then read it back and check it
#                            against the manifest and the image
#   scripts/ffa.sh test      package, and check the image: no allocator, no
#                            function of ours that can reach a panic unless
#                            partition/panic-allowlist.txt names it; then
#                            the stand-in run
#   scripts/ffa.sh standin   the unchanged SP package (S-EL1, CPU 0) and
#                            front-end (NS-EL1, CPU 1) in QEMU virt
#                            (secure=on) with tests/spmc-el3, a stand-in
#                            SPMC at EL3, in place of TF-A + Hafnium: the
#                            tour, judged by the front-end's verdict and
#                            compared with partition/golden/ffa-standin.txt
#                            (BLESS=1 rewrites it)
#   scripts/ffa.sh figures   sizes, lines of FF-A glue, and the device's
#                            instructions per SCMI round trip over the FF-A
#                            path (callgrind, through the SPMC double)
#   scripts/ffa.sh hafnium TFA_BUILD HAFNIUM_BIN [QEMU ARGS...]
#                            the partition under a real SPMC: TF-A (built
#                            by you: PLAT=qemu SPD=spmd SPMD_SPM_AT_SEL2=1,
#                            its bl1/bl2/bl31 and tools/fiptool in TFA_BUILD)
#                            and Hafnium (secure_qemu_aarch64, HAFNIUM_BIN)
#                            with our package as the SP and our front-end
#                            (tests/ffa-frontend) as BL33 in a new FIP; boots
#                            QEMU and judges by the front-end's verdict;
#                            MEASURE=1 with QEMU ARGS -icount shift=4: the
#                            partition's measuring build, instructions per
#                            message served and its deepest stack
#
# Hafnium and TF-A are not in the package registries: CI checks the
# partition's transport and the driver through the scripted SPMC double
# (cargo test: tests/ffa-double, tests/frontend/tests/ffa.rs), and the two
# images themselves against the stand-in SPMC (`standin`); `hafnium` needs
# your own builds of both (nothing of theirs is in this repository).
#
# Needs what scripts/setup-host.sh rust tools installs.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
OUT="$REPO/target/ffa"
MANIFEST=manifests/qemu-virt-sp.dts
ELF="$REPO/target/aarch64-unknown-none/firmware/scmi-sp-qemu-virt"
mkdir -p "$OUT"

die() { printf 'ffa: FAILED: %s\n' "$*" >&2; exit 1; }

# llvm-objcopy of the toolchain's llvm-tools component.
objcopy_tool() {
    local sysroot host
    sysroot=$(rustc --print sysroot)
    host=$(rustc -vV | sed -n 's/^host: //p')
    echo "$sysroot/lib/rustlib/$host/bin/llvm-objcopy"
}

# package [FEATURES]: the partition built with FEATURES (none: the product).
cmd_package() {
    cargo build -q --locked -p scmi-sp-qemu-virt --target aarch64-unknown-none --profile firmware \
        ${1:+--features "$1"}
    cp "$ELF" "$OUT/scmi-sp.elf"
    "$(objcopy_tool)" -O binary "$OUT/scmi-sp.elf" "$OUT/scmi-sp.bin"
    cargo run -q --locked -p manifest --bin manifest-tool -- spkg "$MANIFEST" "$OUT/scmi-sp.bin" "$OUT/scmi-sp.pkg"
    cargo run -q --locked -p manifest --bin manifest-tool -- spkg-check "$OUT/scmi-sp.pkg" "$MANIFEST" "$OUT/scmi-sp.bin"
}

# sizes: "text rodata data bss stack" of the partition.
sizes() {
    size -A "$OUT/scmi-sp.elf" | awk '
        $1 == ".text" || $1 == ".init" {t += $2}
        $1 == ".rodata" {r += $2}
        $1 == ".data" {d += $2}
        $1 == ".bss" {b += $2}
        $1 == ".stack" {s += $2}
        END {print t + 0, r + 0, d + 0, b + 0, s + 0}'
}

cmd_test() {
    cmd_package
    local n
    n=$(nm -C "$OUT/scmi-sp.elf" | grep -Ec '__rust_alloc|__rg_alloc|__rust_no_alloc_shim' || true)
    [ "$n" -eq 0 ] || die "the partition links an allocator"
    local panics
    panics=$(scripts/panic-sites.sh --check sp "$OUT/scmi-sp.elf") || die "sp: panic sites"
    read -r t r d b s <<<"$(sizes)"
    printf 'sp image: text %d, rodata %d, data %d, bss %d, stacks %d; heap 0; %s\n' \
        "$t" "$r" "$d" "$b" "$s" "${panics#sp: }"
    cmd_standin
    echo "ffa: ok"
}

# The report without what changes with the code or the clock.
comparable() { grep -Ev '^(measure: |reading: )' "$1"; }

cmd_standin() {
    [ -f "$OUT/scmi-sp.pkg" ] || cmd_package >/dev/null
    cargo build -q --locked --release -p ffa-frontend --target aarch64-unknown-none
    cargo build -q --locked --release -p spmc-el3 --target aarch64-unknown-none-softfloat
    local log="$OUT/standin.log" status=0
    # CPU 0: the partition at S-EL1; CPU 1: the front-end at NS-EL1; the
    # package staged in DRAM for the stand-in to load, as BL2 would.
    timeout 120 qemu-system-aarch64 -M virt,secure=on,gic-version=3 -cpu cortex-a57 -smp 2 -m 1G \
        -display none -monitor none -serial stdio -semihosting-config enable=on,target=native \
        -kernel "$REPO/target/aarch64-unknown-none-softfloat/release/spmc-el3" \
        -device loader,file="$REPO/target/aarch64-unknown-none/release/ffa-frontend" \
        -device loader,file="$OUT/scmi-sp.pkg",addr=0x48000000,force-raw=on \
        </dev/null >"$log" 2>&1 || status=$?
    tail -n 1 "$log"
    [ "$status" -eq 0 ] && grep -q '^result: [0-9]* checks passed, 0 failed$' "$log" || {
        cat "$log"
        die "stand-in run: QEMU exited with $status"
    }
    local golden="$REPO/partition/golden/ffa-standin.txt"
    if [ "${BLESS:-0}" = 1 ]; then
        comparable "$log" >"$golden"
        echo "blessed $golden"
    else
        [ -f "$golden" ] || die "$golden missing (BLESS=1 $0 standin writes it)"
        diff -u "$golden" <(comparable "$log") || die "stand-in run: output differs from $golden (BLESS=1 to accept)"
    fi
}

# Non-comment, non-blank lines of Rust under $1, each file up to its unit
# tests (`#[cfg(test)]`).
glue_lines() {
    find "$1" -name '*.rs' -print0 | xargs -0 awk '
        FNR == 1 {skip = 0}
        /#\[cfg\(test\)\]/ {skip = 1}
        skip {next}
        { sub(/^[ \t]+/, "") }
        $0 == "" || /^\/\// {next}
        {n++}
        END {print n + 0}'
}

cmd_figures() {
    cmd_package >/dev/null
    read -r t r d b s <<<"$(sizes)"
    printf '%-6s %8s %8s %6s %6s %8s\n' image text rodata data bss stacks
    printf '%-6s %8d %8d %6d %6d %8d\n' sp "$t" "$r" "$d" "$b" "$s"
    printf '  (bss: %d bytes of stage-1 translation tables, 8 KiB of RX/TX buffers)\n' 65536
    printf '\nlines of FF-A glue (non-comment, non-blank, without unit tests):\n'
    for f in transports/ffa/src/*.rs; do
        printf '  %-36s %5d\n' "$f" "$(glue_lines "$f")"
    done
    printf '  %-36s %5d\n' "transports/ffa (all)" "$(glue_lines transports/ffa/src)"
    printf '  %-36s %5d\n' "partition/qemu-virt-sp/src" "$(glue_lines partition/qemu-virt-sp/src)"
    printf '\ndevice-side instructions per SENSOR_READING_GET round trip over the FF-A path\n'
    printf '(callgrind; the partition behind the SPMC double, the driver polling):\n'
    if command -v valgrind >/dev/null 2>&1; then
        cargo run -q --release --locked -p bench --bin bench-ffa
    else
        echo "  (valgrind not installed: scripts/setup-host.sh tools)"
    fi
}

cmd_hafnium() {
    local tfa=${1:-} hf=${2:-}
    [ -f "$tfa/bl1.bin" ] && [ -x "$tfa/tools/fiptool/fiptool" ] && [ -f "$hf" ] ||
        die "usage: scripts/ffa.sh hafnium TFA_BUILD_DIR HAFNIUM_BIN (TF-A's bl1.bin, bl2.bin, bl31.bin, tools/fiptool/fiptool)"
    shift 2
    # MEASURE=1: the partition's measuring build (its console reports the
    # ticks it spends per message and its deepest stack).
    cmd_package "$([ "${MEASURE:-0}" = 1 ] && echo measure)"
    cargo build -q --locked --release -p ffa-frontend --target aarch64-unknown-none
    "$(objcopy_tool)" -O binary "$REPO/target/aarch64-unknown-none/release/ffa-frontend" "$OUT/bl33.bin"
    cargo run -q --locked -p manifest --bin manifest-tool -- hafnium "$MANIFEST" "$OUT"
    local f
    for f in tb_fw_config spmc_manifest; do
        dtc -q -I dts -O dtb -o "$OUT/$f.dtb" "$OUT/$f.dts"
        [ "$(stat -c %s "$OUT/$f.dtb")" -le 4096 ] || die "$f.dtb exceeds TF-A QEMU's 4 KiB slot"
    done
    "$tfa/tools/fiptool/fiptool" create --tb-fw "$tfa/bl2.bin" --soc-fw "$tfa/bl31.bin" \
        --tos-fw "$hf" --nt-fw "$OUT/bl33.bin" --tb-fw-config "$OUT/tb_fw_config.dtb" \
        --tos-fw-config "$OUT/spmc_manifest.dtb" \
        --blob "uuid=$(cat "$OUT/uuid"),file=$OUT/scmi-sp.pkg" "$OUT/fip.bin" >/dev/null
    # TF-A's QEMU flash: BL1, and the FIP at 256 KiB.
    cp "$tfa/bl1.bin" "$OUT/flash.bin"
    dd if="$OUT/fip.bin" of="$OUT/flash.bin" bs=64k seek=4 conv=notrunc status=none
    local status=0
    # MTE and PAuth: what a Hafnium built for -cpu max expects of the CPU.
    timeout 300 qemu-system-aarch64 -M virt,secure=on,virtualization=on,gic-version=3,mte=on \
        -cpu max,pauth-impdef=on -smp 2 -m 1G -display none -monitor none -serial stdio \
        -semihosting-config enable=on,target=native -bios "$OUT/flash.bin" "$@" \
        </dev/null >"$OUT/hafnium.log" 2>&1 || status=$?
    grep -E '^\[8001|^ffa-frontend|^virtio-msg|^measure|^restart|^result' "$OUT/hafnium.log" || true
    [ "$status" -eq 0 ] && grep -q '^result: [0-9]* checks passed, 0 failed$' "$OUT/hafnium.log" ||
        die "under Hafnium: QEMU exited with $status (log: $OUT/hafnium.log)"
    echo "ffa: hafnium ok"
}

case "${1:-}" in
    package) cmd_package ;;
    standin) cmd_standin ;;
    hafnium) shift; cmd_hafnium "$@" ;;
    test) cmd_test ;;
    figures) cmd_figures ;;
    *) sed -n '2,42p' "$0"; exit 2 ;;
esac
