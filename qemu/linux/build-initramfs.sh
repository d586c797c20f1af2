#!/usr/bin/env bash
# Build a gzip'd newc initramfs for the arm64 test guest.
#
# Usage: qemu/linux/build-initramfs.sh OUT.cpio.gz INIT_SCRIPT [EXTRA_DIR]
#
# Contents: /bin/busybox (arm64, from the busybox-static:arm64 .deb that
# `scripts/setup-host.sh linux` puts in the cache) with symlinks for its
# applets in /bin (/sbin, /usr/bin, /usr/sbin are symlinks to /bin),
# empty /dev /proc /sys /tmp /run /root, the device nodes /dev/console and
# /dev/null, INIT_SCRIPT as /init (mode 755), and EXTRA_DIR's contents copied
# over the root if given. All entries are owned by 0:0 with a fixed mtime
# (SOURCE_DATE_EPOCH, default 0): the same inputs give the same bytes.
# Tools used: dpkg-deb, GNU cpio, gzip (no root needed).
#
# The guest's /init should mount what it needs itself, e.g.
#   mount -t proc proc /proc; mount -t sysfs sys /sys
#   mount -t devtmpfs dev /dev; mount -t debugfs none /sys/kernel/debug
# (CONFIG_DEVTMPFS_MOUNT does not apply to an initramfs root).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${VSCMI_CACHE:-$REPO/target/qemu-cache}"
EPOCH="${SOURCE_DATE_EPOCH:-0}"

log() { printf 'build-initramfs: %s\n' "$*"; }
die() { printf 'build-initramfs: ERROR: %s\n' "$*" >&2; exit 1; }

if [ "$#" -lt 2 ] || [ "$#" -gt 3 ]; then
    echo "usage: $0 OUT.cpio.gz INIT_SCRIPT [EXTRA_DIR]" >&2
    exit 2
fi
OUT_ARG="$1"
INIT_SCRIPT="$2"
EXTRA_DIR="${3:-}"
[ -f "$INIT_SCRIPT" ] || die "init script not found: $INIT_SCRIPT"
[ -z "$EXTRA_DIR" ] || [ -d "$EXTRA_DIR" ] || die "extra dir not found: $EXTRA_DIR"
for tool in dpkg-deb cpio gzip; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool missing: run scripts/setup-host.sh linux"
done
mkdir -p "$(dirname "$OUT_ARG")"
OUT="$(cd "$(dirname "$OUT_ARG")" && pwd)/$(basename "$OUT_ARG")"

# Applets linked in /bin (all are in Debian's busybox-static 1.35).
APPLETS=(
    sh ash mount umount mkdir rmdir cat echo ls sleep poweroff reboot halt
    grep egrep sed awk head tail wc date find printf test '[' '[[' tr cut seq
    dmesg uname true false timeout time stat readlink basename dirname xargs
    sort uniq od hexdump xxd env kill ps mknod ln rm cp mv chmod touch nproc
    expr which dd cmp diff md5sum sha256sum usleep watch tee yes id hostname
    devmem mountpoint sync realpath
)

# --- busybox binary, extracted once per .deb --------------------------------
shopt -s nullglob
debs=("$CACHE"/busybox-static_*_arm64.deb)
shopt -u nullglob
[ "${#debs[@]}" -ge 1 ] || die "no busybox-static_*_arm64.deb in $CACHE: run scripts/setup-host.sh linux"
DEB="${debs[-1]}"
BB_DIR="$CACHE/busybox-arm64/$(basename "$DEB" .deb)"
BUSYBOX="$BB_DIR/bin/busybox"
if [ ! -x "$BUSYBOX" ]; then
    log "extracting $(basename "$DEB")"
    rm -rf "$BB_DIR.tmp"
    mkdir -p "$(dirname "$BB_DIR")"
    dpkg-deb -x "$DEB" "$BB_DIR.tmp" || die "dpkg-deb -x $DEB failed"
    [ -x "$BB_DIR.tmp/bin/busybox" ] || die "$DEB has no bin/busybox"
    rm -rf "$BB_DIR"
    mv "$BB_DIR.tmp" "$BB_DIR"
fi
# ELF e_machine (offset 18, little endian) must be 0xb7 = EM_AARCH64.
[ "$(od -An -tx1 -j18 -N2 "$BUSYBOX" | tr -d ' \n')" = b700 ] \
    || die "$BUSYBOX is not an aarch64 ELF"

# With user-mode emulation at hand, link every applet busybox has.
for q in qemu-aarch64-static qemu-aarch64; do
    if command -v "$q" >/dev/null 2>&1 && list="$("$q" "$BUSYBOX" --list 2>/dev/null)" \
        && [ -n "$list" ]; then
        mapfile -t APPLETS <<<"$list"
        break
    fi
done

# --- staging tree --------------------------------------------------------------
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/initramfs.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
umask 022
mkdir -p "$STAGE"/{bin,dev,proc,sys,tmp,run,root,etc,mnt}
ln -s bin "$STAGE/sbin"
mkdir -p "$STAGE/usr"
ln -s ../bin "$STAGE/usr/bin"
ln -s ../bin "$STAGE/usr/sbin"
chmod 1777 "$STAGE/tmp"
install -m 0755 "$BUSYBOX" "$STAGE/bin/busybox"
for a in "${APPLETS[@]}"; do
    if [ -n "$a" ] && [ "$a" != busybox ] && [ ! -e "$STAGE/bin/$a" ]; then
        ln -s busybox "$STAGE/bin/$a"
    fi
done
install -m 0755 "$INIT_SCRIPT" "$STAGE/init"
if [ -n "$EXTRA_DIR" ]; then
    cp -a --no-preserve=ownership "$EXTRA_DIR"/. "$STAGE"/
fi
find "$STAGE" -depth -exec touch -h -d "@$EPOCH" {} +

# --- newc entries for device nodes (written by hand: no root needed) -----------
# newc header: magic + 13 8-digit hex fields, then the NUL-terminated name,
# padded to 4 bytes. These go in a second cpio archive appended to the first;
# the kernel unpacks concatenated archives in order.
newc_entry() { # name mode nlink rdevmajor rdevminor ino
    local name="$1" mode="$2" nlink="$3" rmaj="$4" rmin="$5" ino="$6"
    local namesize=$((${#name} + 1))
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
        "$ino" "$mode" 0 0 "$nlink" "$EPOCH" 0 0 0 "$rmaj" "$rmin" "$namesize" 0
    printf '%s\0' "$name"
    local pad=$(((4 - (110 + namesize) % 4) % 4))
    [ "$pad" -eq 0 ] || head -c "$pad" /dev/zero
}
devnodes() {
    newc_entry dev/console $((0020000 | 0600)) 1 5 1 900001
    newc_entry dev/null $((0020000 | 0666)) 1 1 3 900002
    newc_entry 'TRAILER!!!' 0 1 0 0 0
}

# --- archive -------------------------------------------------------------------
TMP_OUT="$OUT.tmp.$$"
(
    cd "$STAGE"
    find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort \
        | cpio --quiet -o -H newc --owner=0:0 --reproducible
    devnodes
) | gzip -9 -n >"$TMP_OUT" || { rm -f "$TMP_OUT"; die "creating the archive failed"; }
mv "$TMP_OUT" "$OUT"
log "$OUT ($(stat -c %s "$OUT") bytes, ${#APPLETS[@]} applets)"
