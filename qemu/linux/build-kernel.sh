#!/usr/bin/env bash
# Build a minimal arm64 Linux Image for the virtio-SCMI guest tests.
#
# Usage: qemu/linux/build-kernel.sh [--force]
#
# Source: Debian's linux-source-6.12 (scripts/setup-host.sh linux installs it),
# extracted once to $CACHE/linux-source-6.12. Built out of tree in
# $CACHE/linux/build from `allnoconfig` + qemu/linux/scmi.config.
# Result: $CACHE/linux/Image (and $CACHE/linux/config, the final .config).
# Skipped entirely when $CACHE/linux/Image exists and its stamp matches the
# sha256 of the fragment and the linux-source package version.
#
# Environment: VSCMI_CACHE (default $REPO/target/qemu-cache),
#              VSCMI_KCONFIG (default qemu/linux/scmi.config),
#              JOBS (default nproc).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${VSCMI_CACHE:-$REPO/target/qemu-cache}"
FRAGMENT="${VSCMI_KCONFIG:-$REPO/qemu/linux/scmi.config}"
SRC_PKG=linux-source-6.12
TARBALL="/usr/src/$SRC_PKG.tar.xz"
SRC="$CACHE/$SRC_PKG"
OUT="$CACHE/linux"
BUILD="$OUT/build"
IMAGE="$OUT/Image"
STAMP="$OUT/Image.stamp"
JOBS="${JOBS:-$(nproc)}"

log() { printf 'build-kernel: %s\n' "$*"; }
die() { printf 'build-kernel: ERROR: %s\n' "$*" >&2; exit 1; }

FORCE=0
case "${1:-}" in
    "") ;;
    --force) FORCE=1 ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

[ -f "$FRAGMENT" ] || die "config fragment not found: $FRAGMENT"
[ -f "$TARBALL" ] || die "$TARBALL missing: run scripts/setup-host.sh linux"
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 \
    || die "aarch64-linux-gnu-gcc missing: run scripts/setup-host.sh linux"
for tool in make gcc bc bison flex xz; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool missing: run scripts/setup-host.sh linux"
done

PKG_VERSION="$(dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null)" \
    || die "package $SRC_PKG not installed: run scripts/setup-host.sh linux"
FRAG_SHA="$(sha256sum "$FRAGMENT" | cut -d' ' -f1)"
WANT_STAMP="fragment-sha256=$FRAG_SHA $SRC_PKG=$PKG_VERSION"

if [ "$FORCE" -eq 0 ] && [ -f "$IMAGE" ] && [ -f "$STAMP" ] \
    && [ "$(cat "$STAMP")" = "$WANT_STAMP" ]; then
    log "up to date ($SRC_PKG $PKG_VERSION, fragment ${FRAG_SHA:0:12})"
    log "Image: $IMAGE"
    exit 0
fi

START=$(date +%s)
mkdir -p "$OUT"
BUILD_LOG="$OUT/build.log"
: >"$BUILD_LOG"
run() {
    if ! "$@" >>"$BUILD_LOG" 2>&1; then
        tail -n 40 "$BUILD_LOG" >&2
        die "failed: $* (full log: $BUILD_LOG)"
    fi
}

# 1. Extract the source once per package version.
SRC_STAMP="$SRC/.vscmi-extracted"
if [ -f "$SRC_STAMP" ] && [ "$(cat "$SRC_STAMP")" = "$PKG_VERSION" ]; then
    log "source present: $SRC ($PKG_VERSION)"
else
    log "extracting $TARBALL -> $SRC"
    tmp="$(mktemp -d "$CACHE/.extract.XXXXXX")"
    run tar -C "$tmp" -xJf "$TARBALL"
    [ -d "$tmp/$SRC_PKG" ] || die "$TARBALL has no top-level $SRC_PKG/ directory"
    printf '%s\n' "$PKG_VERSION" >"$tmp/$SRC_PKG/.vscmi-extracted"
    rm -rf "$SRC" "$BUILD"
    mv "$tmp/$SRC_PKG" "$SRC"
    rm -rf "$tmp"
fi

MAKE=(make -C "$SRC" O="$BUILD" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
mkdir -p "$BUILD"

# 2. Configure: allnoconfig with the fragment forced in, then olddefconfig.
log "configuring: allnoconfig + $(basename "$FRAGMENT")"
run "${MAKE[@]}" KCONFIG_ALLCONFIG="$FRAGMENT" allnoconfig
run "${MAKE[@]}" olddefconfig

# 3. Verify every CONFIG_X=y of the fragment made it (dependencies can drop them).
missing=()
while IFS= read -r line; do
    grep -qxF "$line" "$BUILD/.config" || missing+=("${line%=y}")
done < <(grep -E '^CONFIG_[A-Za-z0-9_]+=y[[:space:]]*$' "$FRAGMENT" | sed 's/[[:space:]]*$//')
if [ "${#missing[@]}" -gt 0 ]; then
    for sym in "${missing[@]}"; do
        printf 'build-kernel:   wanted %s=y, got: %s\n' "$sym" \
            "$(grep -E "^(# )?${sym}[= ]" "$BUILD/.config" || echo 'absent (a dependency is not met)')" >&2
    done
    die "${#missing[@]} option(s) of $(basename "$FRAGMENT") not =y in $BUILD/.config: ${missing[*]}"
fi
if grep -qx 'CONFIG_MODULES=y' "$BUILD/.config"; then
    die "CONFIG_MODULES=y in $BUILD/.config; the guest kernel must have no modules"
fi
log "config verified: $(grep -cE '^CONFIG_[A-Za-z0-9_]+=y[[:space:]]*$' "$FRAGMENT") fragment options are =y"

# 4. Build.
log "building Image with -j$JOBS (log: $BUILD_LOG)"
run "${MAKE[@]}" -j"$JOBS" Image
cp "$BUILD/arch/arm64/boot/Image" "$IMAGE.tmp"
mv "$IMAGE.tmp" "$IMAGE"
cp "$BUILD/.config" "$OUT/config"
printf '%s\n' "$WANT_STAMP" >"$STAMP"

END=$(date +%s)
log "built $(cat "$BUILD/include/config/kernel.release" 2>/dev/null || echo '?') in $((END - START))s"
log "Image: $IMAGE"
