#!/usr/bin/env bash
# Smoke test of the arm64 guest: build the kernel (cached) and a tiny
# initramfs, boot it under qemu-system-aarch64 -M virt and expect GUEST-OK.
#
# Usage: qemu/linux/smoke.sh
# Needs: scripts/setup-host.sh qemu linux
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${VSCMI_CACHE:-$REPO/target/qemu-cache}"
BOOT_TIMEOUT="${BOOT_TIMEOUT:-120}"

log() { printf 'smoke: %s\n' "$*"; }
die() { printf 'smoke: ERROR: %s\n' "$*" >&2; exit 1; }

command -v qemu-system-aarch64 >/dev/null 2>&1 \
    || die "qemu-system-aarch64 missing: run scripts/setup-host.sh qemu"

"$HERE/build-kernel.sh"
IMAGE="$CACHE/linux/Image"
[ -f "$IMAGE" ] || die "kernel Image missing: $IMAGE"

WORK="$CACHE/smoke"
mkdir -p "$WORK"
cat >"$WORK/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo GUEST-OK
echo "uname-r: $(uname -r)"
if [ -d /sys/firmware/devicetree ]; then
    echo "devicetree: present"
else
    echo "devicetree: absent"
fi
poweroff -f
EOF
"$HERE/build-initramfs.sh" "$WORK/initramfs.cpio.gz" "$WORK/init"

LOG="$WORK/console.log"
log "booting (timeout ${BOOT_TIMEOUT}s, console log: $LOG)"
start=$(date +%s.%N)
rc=0
timeout "$BOOT_TIMEOUT" qemu-system-aarch64 \
    -M virt -cpu cortex-a57 -m 256 -nographic -no-reboot -nic none \
    -kernel "$IMAGE" -initrd "$WORK/initramfs.cpio.gz" \
    -append 'console=ttyAMA0 panic=-1' </dev/null >"$LOG" 2>&1 || rc=$?
end=$(date +%s.%N)
secs="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')"

if ! grep -q '^GUEST-OK' "$LOG"; then
    tail -n 40 "$LOG" >&2
    [ "$rc" -ne 124 ] || die "guest timed out after ${BOOT_TIMEOUT}s without GUEST-OK"
    die "GUEST-OK not seen (qemu exit $rc)"
fi
[ "$rc" -eq 0 ] || die "GUEST-OK seen but qemu exited with $rc (poweroff failed?)"
grep -E '^(uname-r|devicetree):' "$LOG" | sed 's/^/smoke: guest /'
log "PASS: GUEST-OK, qemu exited in ${secs}s"
