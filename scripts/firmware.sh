#!/usr/bin/env bash
# The firmware images and their test pairs under QEMU.
#
#   scripts/firmware.sh demo [virt|r52]   build the pair and boot it: the
#                                         front-end on core 1 discovers and
#                                         drives the SCMI firmware on core 0
#   scripts/firmware.sh test              both machines: the tour and the
#                                         hostile front-end, outputs compared
#                                         with golden files (BLESS=1 rewrites
#                                         them), sizes and panic sites checked
#   scripts/firmware.sh figures           sizes, deepest stack, device-side
#                                         instructions per SCMI round trip
#                                         (QEMU -icount) next to the host's
#                                         callgrind figure
#
# Images (one per machine, configured by manifests/<machine>.dts):
#   scmi-fw-qemu-virt    qemu-system-aarch64 -M virt,gic-version=3 -smp 2
#   scmi-fw-mps3-an536   qemu-system-arm -M mps3-an536 -smp 2 (Cortex-R52)
# The product image is built with --profile firmware and no front-end; the
# test pair with --profile firmware --features frontend (core 1 runs the
# front-end; core 0 runs the product's code, which the figures measure).
#
# Needs what scripts/setup-host.sh rust qemu tools installs.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
WORK="$REPO/target/firmware-runs"
GOLDEN="$REPO/partition/golden"
mkdir -p "$WORK"

die() { printf 'firmware: FAILED: %s\n' "$*" >&2; exit 1; }

# Goals (issue: text per image, RAM = data + bss + stacks, heap 0).
TEXT_GOAL_virt=$((48 * 1024))
TEXT_GOAL_r52=$((40 * 1024))
RAM_GOAL=$((32 * 1024))

# Both builds of an image use the firmware profile (what ships, and what
# the figures measure) and land on the same path, so the product image is
# kept aside as $WORK/MACHINE-product.elf.
built_elf() {
    case $1 in
        virt) echo "$REPO/target/aarch64-unknown-none/firmware/scmi-fw-qemu-virt" ;;
        r52) echo "$REPO/target/thumbv8r/thumbv8r-none-eabihf/firmware/scmi-fw-mps3-an536" ;;
    esac
}

product_elf() { echo "$WORK/$1-product.elf"; }

pair_elf() { echo "$WORK/$1-pair.elf"; }

# The R52 images are Thumb-2 (thumbv8r-none-eabihf: about two thirds of the
# A32 code of armv8r-none-eabihf), built with nightly -Zbuild-std in a
# target directory of their own.
r52_cargo() {
    local sub=$1
    shift
    cargo +nightly "$sub" -q --locked -p scmi-fw-mps3-an536 --target thumbv8r-none-eabihf \
        --target-dir target/thumbv8r "$@"
}

build_product() {
    case $1 in
        virt) cargo build -q --locked -p scmi-fw-qemu-virt --target aarch64-unknown-none --profile firmware ;;
        r52) r52_cargo build -Zbuild-std=core --profile firmware ;;
        *) die "unknown machine $1 (virt | r52)" ;;
    esac
    cp "$(built_elf "$1")" "$(product_elf "$1")"
}

build_pair() {
    case $1 in
        virt) cargo build -q --locked -p scmi-fw-qemu-virt --target aarch64-unknown-none --profile firmware \
                --features frontend ;;
        r52) r52_cargo build -Zbuild-std=core,alloc --profile firmware --features frontend ;;
        *) die "unknown machine $1 (virt | r52)" ;;
    esac
    cp "$(built_elf "$1")" "$(pair_elf "$1")"
}

# run MACHINE MODE [EXTRA QEMU ARGS...]: boots the pair; the front-end's
# report (semihosting) goes to $WORK/MACHINE-MODE.log, the device's console
# (core 0's UART) to $WORK/MACHINE-MODE.serial. Returns QEMU's status, which
# is the front-end's verdict (semihosting exit); a hang is killed after 60 s.
run() {
    local machine=$1 mode=$2 elf
    shift 2
    elf=$(pair_elf "$machine")
    local log="$WORK/$machine-$mode.log" serial="$WORK/$machine-$mode.serial"
    local semi="enable=on,target=native,arg=scmi-fw,arg=$mode"
    local status=0
    case $machine in
        virt)
            timeout 60 qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a57 -smp 2 -m 128M \
                -display none -monitor none -serial "file:$serial" \
                -semihosting-config "$semi" "$@" -kernel "$elf" </dev/null >"$log" 2>&1 || status=$?
            ;;
        r52)
            # Each R52 sees its own UART at the same address: core 0's is the
            # first serial port, core 1's (unused) the second.
            timeout 60 qemu-system-arm -M mps3-an536 -smp 2 \
                -display none -monitor none -serial "file:$serial" -serial null \
                -semihosting-config "$semi" "$@" -kernel "$elf" </dev/null >"$log" 2>&1 || status=$?
            ;;
    esac
    return "$status"
}

# The report without the figures that change with the code (stack depth,
# measurements): what the golden files hold.
comparable() { grep -Ev '^(device: deepest stack|measure: |reading: )' "$1"; }

check_golden() {
    local machine=$1 mode=$2 log="$WORK/$1-$2.log" golden="$GOLDEN/$1-$2.txt"
    if [ "${BLESS:-0}" = 1 ]; then
        mkdir -p "$GOLDEN"
        comparable "$log" >"$golden"
        echo "blessed $golden"
        return
    fi
    [ -f "$golden" ] || die "$golden missing (BLESS=1 $0 test writes it)"
    if ! diff -u "$golden" <(comparable "$log"); then
        die "$machine $mode: output differs from $golden (BLESS=1 to accept)"
    fi
}

# sizes MACHINE: "text rodata data bss stack" of the product image.
sizes() {
    local elf
    elf=$(product_elf "$1")
    size -A "$elf" | awk '
        $1 == ".text" || $1 == ".init" || $1 == ".vector_table" {t += $2}
        $1 == ".rodata" {r += $2}
        $1 == ".data" {d += $2}
        $1 == ".bss" {b += $2}
        $1 == ".stack" || $1 == ".stacks" || $1 == ".uninit" {s += $2}
        END {print t + 0, r + 0, d + 0, b + 0, s + 0}'
}

heap_symbols() { nm -C "$(product_elf "$1")" | grep -Ec '__rust_alloc|__rg_alloc|__rust_no_alloc_shim' || true; }

# check_panics MACHINE: every function of ours that can reach a panic in the
# product image must be in partition/panic-allowlist.txt with its reason.
check_panics() {
    scripts/panic-sites.sh --check "$1" "$(product_elf "$1")" || die "$1: panic sites"
}

cmd_demo() {
    local machine=${1:-virt}
    # A fresh machine: the Rust targets, dtc (the manifests) and QEMU 10.
    scripts/setup-host.sh rust tools qemu >/dev/null
    printf '=== building the %s pair (device on core 0, front-end on core 1)\n' "$machine"
    build_pair "$machine"
    local status=0
    run "$machine" tour || status=$?
    printf '=== the device (core 0 console)\n'
    cat "$WORK/$machine-tour.serial"
    printf '=== the front-end (core 1, over virtio-msg on the shared-memory channel)\n'
    cat "$WORK/$machine-tour.log"
    [ "$status" -eq 0 ] || die "$machine: the front-end's verdict is $status"
}

cmd_test() {
    for m in virt r52; do
        build_product "$m"
        build_pair "$m"
        for mode in tour hostile; do
            local status=0
            run "$m" "$mode" || status=$?
            tail -n 1 "$WORK/$m-$mode.log"
            [ "$status" -eq 0 ] || {
                cat "$WORK/$m-$mode.log" "$WORK/$m-$mode.serial"
                die "$m $mode: QEMU exited with $status"
            }
            grep -q '^result: [0-9]* checks passed, 0 failed$' "$WORK/$m-$mode.log" ||
                die "$m $mode: no passing verdict"
            check_golden "$m" "$mode"
        done
        local n
        n=$(heap_symbols "$m")
        [ "$n" -eq 0 ] || die "$m: the product image links an allocator"
        read -r t r d b s <<<"$(sizes "$m")"
        printf '%s product image: text %d, rodata %d, data %d, bss %d, stacks %d; heap 0\n' "$m" "$t" "$r" "$d" "$b" "$s"
        check_panics "$m"
    done
    echo "firmware: ok"
}

# Counter ticks per round trip from a measure run under -icount shift=4
# (one tick of the 62.5 MHz generic counter per instruction).
instructions() {
    local status=0
    run "$1" measure -icount shift=4 || status=$?
    [ "$status" -eq 0 ] || die "$1 measure: QEMU exited with $status"
    sed -nE 's/^measure: .*, ([0-9]+) counter ticks per round trip on the device$/\1/p' "$WORK/$1-measure.log"
}

cmd_figures() {
    local m t r d b s ram goal depth ins
    printf '%-8s %8s %8s %6s %6s %8s %10s %10s %12s\n' image text rodata data bss stacks "RAM" "deepest" "insn/rt"
    for m in virt r52; do
        build_product "$m"
        build_pair "$m"
        read -r t r d b s <<<"$(sizes "$m")"
        ram=$((d + b + s))
        run "$m" tour || die "$m tour failed"
        depth=$(sed -nE 's/^device: deepest stack ([0-9]+) bytes.*/\1/p' "$WORK/$m-tour.log")
        ins=$(instructions "$m")
        printf '%-8s %8d %8d %6d %6d %8d %10d %10s %12s\n' "$m" "$t" "$r" "$d" "$b" "$s" "$ram" "$depth" "$ins"
        goal=TEXT_GOAL_$m
        printf '  goals: text <= %d: %s; RAM (data + bss + stacks) <= %d: %s; heap 0: %s\n' \
            "${!goal}" "$([ "$t" -le "${!goal}" ] && echo PASS || echo "FAIL ($t)")" \
            "$RAM_GOAL" "$([ "$ram" -le "$RAM_GOAL" ] && echo PASS || echo "FAIL ($ram)")" \
            "$([ "$(heap_symbols "$m")" -eq 0 ] && echo PASS || echo FAIL)"
    done
    printf '\ninsn/rt: device-side instructions per SENSOR_READING_GET round trip, counted on the\n'
    printf 'target (generic counter under QEMU -icount shift=4, one tick per instruction): the\n'
    printf 'wake-up, the channel message, the chain, the SCMI handler, the reply and the doorbell.\n'
    printf 'The host figure (callgrind, the device core alone, no transport):\n'
    if command -v valgrind >/dev/null 2>&1; then
        cargo run -q --release --locked -p bench --bin bench-scmi 2>/dev/null | grep -E '^command|SENSOR_READING_GET' | head -n 3
    else
        echo "  (valgrind not installed: scripts/setup-host.sh tools)"
    fi
}

case "${1:-}" in
    demo) shift; cmd_demo "$@" ;;
    test) cmd_test ;;
    figures) cmd_figures ;;
    *) sed -n '2,21p' "$0"; exit 2 ;;
esac
