#!/usr/bin/env bash
# The static-device images: builds both (release), runs each bare-metal
# under QEMU, and prints the two summaries side by side with the images'
# section sizes. Fails unless both QEMU runs exit 0 (every SCMI check
# passed) and print "ok:". Goal lines (stack, device RAM, resource
# descriptions in .rodata) are figures: a FAIL there is shown, not fatal.
#
#   tests/static-device/run.sh            both targets
#   tests/static-device/run.sh aarch64    one of them (aarch64 | armv8r)
#
# Needs (scripts/setup-host.sh rust qemu): rustup target aarch64-unknown-none,
# a nightly toolchain with rust-src, qemu-system-aarch64 and qemu-system-arm
# (QEMU 9 or later for mps3-an536), and binutils' `size` and `nm` (any
# binutils reads both targets' ELF headers and symbol tables).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
WORK="$REPO/target/static-device"
mkdir -p "$WORK"

die() { printf 'static-device: FAILED: %s\n' "$*" >&2; exit 1; }

for tool in cargo qemu-system-aarch64 qemu-system-arm size nm timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (scripts/setup-host.sh rust qemu)"
done

TARGETS=("$@")
[ "${#TARGETS[@]}" -gt 0 ] || TARGETS=(aarch64 armv8r)

build_and_run() {
    local which=$1 elf log status
    case "$which" in
        aarch64)
            cargo build -q --locked -p static-device --target aarch64-unknown-none --release
            elf="$REPO/target/aarch64-unknown-none/release/static-device"
            set -- qemu-system-aarch64 -M virt -cpu cortex-a53 -m 128M -nographic \
                -semihosting -kernel "$elf"
            ;;
        armv8r)
            cargo +nightly build -q --locked -p static-device --target armv8r-none-eabihf \
                -Zbuild-std=core --release --target-dir target/armv8r
            elf="$REPO/target/armv8r/armv8r-none-eabihf/release/static-device"
            set -- qemu-system-arm -M mps3-an536 -nographic -semihosting -kernel "$elf"
            ;;
        *) die "unknown target $which (aarch64 | armv8r)" ;;
    esac
    log="$WORK/$which.log"
    printf '=== %s: %s\n' "$which" "$*"
    status=0
    timeout 60 "$@" </dev/null >"$log" 2>&1 || status=$?
    cat "$log"
    [ "$status" -eq 0 ] || die "$which: QEMU exited with status $status"
    grep -q '^ok: ' "$log" || die "$which: no 'ok:' line in the summary"
    # The resource tables are read-only data: the generated tables' clock and
    # sensor descriptions (promoted constants, `*.TABLES.*`/`*.PLATFORM.*`
    # in their symbol names) and CONFIG must sit in .rodata. nm's 'r'/'R'.
    printf -- '--- %s: sections (size -A)\n' "$which"
    size -A "$elf" | awk '$1 ~ /^\.(init|vector_table|text|rodata|got|data|bss|uninit|stack|stacks)$/ {printf "%-14s %8d\n", $1, $2}'
    local config
    config=$(nm -C "$elf" | awk '$3 ~ /platform_host_vhost_user::generated::CONFIG$/ {print $2}')
    [ -n "$config" ] || die "$which: CONFIG not found in the symbol table"
    case "$config" in
        r|R) printf 'CONFIG: .rodata (nm %s)\n' "$config" ;;
        *) printf 'CONFIG: NOT in .rodata (nm %s)\n' "$config" ;;
    esac
    local dev
    dev=$(nm -C -S "$elf" | awk '$4 == "static_device::DEVICE" {print $2, $3}')
    [ -n "$dev" ] || die "$which: DEVICE not found in the symbol table"
    printf 'DEVICE: %d bytes (nm %s)\n' "$((16#${dev% *}))" "${dev#* }"
}

# "value" of the first line of LOG matching the sed -E expression.
pick() { sed -nE "$2" "$WORK/$1.log" | head -n 1; }

# The summary rows of one log, one value per line.
summary_rows() {
    local t=$1
    pick "$t" 's/^device: ([0-9]+) bytes.*/\1/p'
    pick "$t" 's/^device: .*\(platform ([0-9]+), server ([0-9]+), virtio-scmi ([0-9]+), core\+queues ([0-9]+); lock ([0-9]+)\)/\1 \/ \2 \/ \3 \/ \4 \/ \5/p'
    pick "$t" 's/^sections: \.rodata ([0-9]+) bytes, \.data ([0-9]+) bytes, \.bss ([0-9]+) bytes.*/\1 \/ \2 \/ \3/p'
    pick "$t" 's/^stack: max ([0-9]+) bytes \(request ([^)]*\)?)\).*/\1 (\2)/p'
    pick "$t" 's/.*the kick alone \(device\): max ([0-9]+) bytes \(request (.*)\)$/\1 (\2)/p'
    pick "$t" 's/^ok: ([0-9]+) round trips.*/\1/p'
    pick "$t" 's/^stack <= [0-9]+: (.*)/\1/p'
    pick "$t" 's/^device RAM <= [0-9]+: (.*)/\1/p'
    pick "$t" 's/^resource descriptions in \.rodata: (.*)/\1/p'
}

for t in "${TARGETS[@]}"; do
    build_and_run "$t"
    echo
done

# The two summaries side by side.
if [ "${#TARGETS[@]}" -eq 2 ]; then
    printf '=== summary\n'
    paste -d '\t' \
        <(printf '%s\n' "" "device (static) bytes" "  platform/server/virtio-scmi/core+queues/lock" \
            ".rodata/.data/.bss bytes" "stack of one round trip, max" "  of it the kick (device), max" \
            "round trips ok" "stack <= 4096" "device RAM <= 16384" "descriptions in .rodata") \
        <(echo "${TARGETS[0]}"; summary_rows "${TARGETS[0]}") \
        <(echo "${TARGETS[1]}"; summary_rows "${TARGETS[1]}") |
        awk -F '\t' '{printf "%-46s %-34s %s\n", $1, $2, $3}'
fi
echo "static-device: ok"
