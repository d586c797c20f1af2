#!/usr/bin/env bash
# Host setup for the virtio-SCMI backend: Rust toolchain bits, QEMU 10 (from
# bookworm-backports) and the tools to build a minimal arm64 Linux guest.
#
# Usage: scripts/setup-host.sh {rust|tools|qemu|linux|vhost-device-scmi|all}...
#
# Idempotent and non-interactive (CI=true, no stdin). Every step checks first
# and does nothing when already done. Artefacts that are downloaded go to
# ${VSCMI_CACHE:-$REPO/target/qemu-cache}.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${VSCMI_CACHE:-$REPO/target/qemu-cache}"
DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources
BACKPORTS_SOURCES=/etc/apt/sources.list.d/bookworm-backports.sources
export DEBIAN_FRONTEND=noninteractive

log() { printf 'setup-host: %s\n' "$*"; }
die() { printf 'setup-host: ERROR: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
else
    SUDO=()
fi
need_root() {
    if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
        die "root privileges needed ($*) but not root and sudo is not available"
    fi
}
as_root() { need_root "$*"; "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "$@"; }

# Verbose output of apt/dpkg/cargo goes to a log that is shown only on failure.
STEP_LOG="$(mktemp "${TMPDIR:-/tmp}/setup-host.XXXXXX")"
trap 'rm -f "$STEP_LOG"' EXIT
quiet() {
    if ! "$@" >"$STEP_LOG" 2>&1; then
        tail -n 40 "$STEP_LOG" >&2
        return 1
    fi
}

APT_UPDATED=0
apt_update() {
    log "apt-get update"
    quiet as_root apt-get -o Dpkg::Use-Pty=0 -qq update || die "apt-get update failed"
    APT_UPDATED=1
}
apt_get() { quiet as_root apt-get -o Dpkg::Use-Pty=0 -qq "$@"; }

# pkg_installed NAME[:ARCH] -> 0 when dpkg has it fully installed.
pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

# apt_install [-t RELEASE] PKG... : install the missing ones (one apt-get update
# first if none happened in this run and something is missing).
apt_install() {
    local release=() missing=() p
    if [ "${1:-}" = -t ]; then release=(-t "$2"); shift 2; fi
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "packages present: $*"
        return 0
    fi
    [ "$APT_UPDATED" -eq 1 ] || apt_update
    log "apt-get install ${release[*]:+${release[*]} }${missing[*]}"
    apt_get install -y --no-install-recommends "${release[@]}" "${missing[@]}" \
        || die "apt-get install ${missing[*]} failed"
}

# ---------------------------------------------------------------- backports
# Writes a deb822 bookworm-backports entry using the URIs and Signed-By of the
# first stanza of debian.sources whose Suites include "bookworm".
ensure_backports() {
    [ -r "$DEBIAN_SOURCES" ] || die "$DEBIAN_SOURCES not found; cannot derive the Debian mirror"
    local parsed uris signed
    parsed="$(awk '
        function flush() {
            if (!done && is_bookworm && uris != "") { print uris; print signed; done = 1 }
            uris = ""; signed = ""; is_bookworm = 0
        }
        /^[[:space:]]*$/ { flush(); next }
        /^[[:space:]]*#/ { next }
        /^URIs:/      { sub(/^URIs:[[:space:]]*/, ""); uris = $0; next }
        /^Signed-By:/ { sub(/^Signed-By:[[:space:]]*/, ""); signed = $0; next }
        /^Suites:/    { n = split($0, s, /[[:space:]]+/); for (i = 2; i <= n; i++) if (s[i] == "bookworm") is_bookworm = 1; next }
        END { flush() }
    ' "$DEBIAN_SOURCES")"
    uris="$(sed -n 1p <<<"$parsed")"
    signed="$(sed -n 2p <<<"$parsed")"
    [ -n "$uris" ] || die "no stanza with Suites: bookworm in $DEBIAN_SOURCES"
    local want
    want="Types: deb
URIs: $uris
Suites: bookworm-backports
Components: main"
    if [ -n "$signed" ]; then want="$want
Signed-By: $signed"; fi
    if [ -f "$BACKPORTS_SOURCES" ] && [ "$(cat "$BACKPORTS_SOURCES")" = "$want" ]; then
        log "bookworm-backports source present"
    else
        log "writing $BACKPORTS_SOURCES"
        printf '%s\n' "$want" | as_root tee "$BACKPORTS_SOURCES" >/dev/null
        apt_update
    fi
    # The entry may predate this run without its lists ever being fetched.
    if ! grep -q 'bookworm-backports' <<<"$(apt-cache policy 2>/dev/null)"; then
        [ "$APT_UPDATED" -eq 1 ] || apt_update
        grep -q 'bookworm-backports' <<<"$(apt-cache policy 2>/dev/null)" \
            || die "bookworm-backports not visible to apt after update"
    fi
}

# --------------------------------------------------------------------- rust
do_rust() {
    command -v rustup >/dev/null 2>&1 || die "rustup not found in PATH"
    rustup toolchain list | grep -q '^nightly' \
        || die "no nightly toolchain in rustup (this script does not install toolchains)"
    local installed_targets
    installed_targets="$(rustup target list --installed)"
    # aarch64-unknown-none-softfloat: code at EL3 (tests/spmc-el3), which
    # must not touch the FP/SIMD registers of the worlds it serves.
    local t
    for t in aarch64-unknown-none aarch64-unknown-none-softfloat; do
        if grep -qx "$t" <<<"$installed_targets"; then
            log "rust target $t present"
        else
            log "rustup target add $t"
            quiet rustup target add "$t" || die "rustup target add $t failed"
        fi
    done
    local comp
    local nightly_comps stable_comps
    nightly_comps="$(rustup component list --installed --toolchain nightly)"
    for comp in rust-src miri; do
        if grep -q "^${comp}\(-\|$\)" <<<"$nightly_comps"; then
            log "nightly component $comp present"
        else
            log "rustup component add $comp --toolchain nightly"
            quiet rustup component add "$comp" --toolchain nightly || die "rustup component add $comp failed"
        fi
    done
    stable_comps="$(rustup component list --installed)"
    # llvm-tools: llvm-objdump for scripts/panic-sites.sh (both Arm ELFs).
    for comp in clippy rustfmt llvm-tools; do
        if grep -q "^${comp}\(-\|$\)" <<<"$stable_comps"; then
            log "component $comp present"
        else
            log "rustup component add $comp"
            quiet rustup component add "$comp" || die "rustup component add $comp failed"
        fi
    done
    if cargo fuzz --version >/dev/null 2>&1; then
        log "cargo-fuzz present ($(cargo fuzz --version 2>/dev/null))"
    else
        log "cargo install --locked cargo-fuzz"
        quiet cargo install --locked cargo-fuzz || die "cargo install cargo-fuzz failed"
    fi
}

# -------------------------------------------------------------------- tools
# Host tools the test command needs besides Rust: callgrind for the
# instruction-count benchmarks, dtc for the platform manifests (manifests/).
do_tools() {
    apt_install valgrind device-tree-compiler
}

# --------------------------------------------------------------------- qemu
do_qemu() {
    ensure_backports
    apt_install -t bookworm-backports qemu-system-arm
    # ipxe-qemu (a Recommends, skipped by --no-install-recommends) holds the
    # efi-virtio.rom that -M virt loads for its default NIC.
    apt_install valgrind device-tree-compiler ipxe-qemu

    local v devices machines
    v="$(qemu-system-aarch64 --version)" || die "qemu-system-aarch64 does not run"
    v="${v%%$'\n'*}"
    [[ "$v" =~ version\ 10\. ]] || die "qemu-system-aarch64 is not 10.x: $v"
    devices="$(qemu-system-aarch64 -device help 2>&1)" || die "qemu-system-aarch64 -device help failed"
    grep -q '"vhost-user-scmi"' <<<"$devices" \
        || die "qemu-system-aarch64 lacks the vhost-user-scmi device"
    grep -q '"vhost-user-scmi-pci"' <<<"$devices" \
        || die "qemu-system-aarch64 lacks the vhost-user-scmi-pci device"
    machines="$(qemu-system-arm -M help 2>&1)" || die "qemu-system-arm -M help failed"
    grep -q '^mps3-an536 ' <<<"$machines" \
        || die "qemu-system-arm lacks the mps3-an536 machine"
    log "qemu ok: $v (vhost-user-scmi, mps3-an536)"
}

# -------------------------------------------------------------------- linux
do_linux() {
    ensure_backports
    apt_install -t bookworm-backports linux-source-6.12
    apt_install make gcc libc6-dev gcc-aarch64-linux-gnu bc bison flex libelf-dev libssl-dev cpio xz-utils kmod rsync
    [ -f /usr/src/linux-source-6.12.tar.xz ] \
        || die "/usr/src/linux-source-6.12.tar.xz missing after installing linux-source-6.12"

    mkdir -p "$CACHE"
    if compgen -G "$CACHE/busybox-static_*_arm64.deb" >/dev/null; then
        log "busybox-static:arm64 .deb present in $CACHE"
        return 0
    fi
    if dpkg --print-foreign-architectures | grep -qx arm64; then
        log "dpkg architecture arm64 present"
    else
        log "dpkg --add-architecture arm64"
        as_root dpkg --add-architecture arm64
        apt_update
    fi
    log "apt-get download busybox-static:arm64 -> $CACHE"
    local tmp
    tmp="$(mktemp -d "$CACHE/.dl.XXXXXX")"
    # apt-get download drops privileges to _apt; let it write the directory.
    chmod 0777 "$tmp"
    if ! (cd "$tmp" && quiet apt-get -o Dpkg::Use-Pty=0 -qq download busybox-static:arm64); then
        if [ "$APT_UPDATED" -eq 0 ]; then
            apt_update
            (cd "$tmp" && quiet apt-get -o Dpkg::Use-Pty=0 -qq download busybox-static:arm64) \
                || { rm -rf "$tmp"; die "apt-get download busybox-static:arm64 failed"; }
        else
            rm -rf "$tmp"; die "apt-get download busybox-static:arm64 failed"
        fi
    fi
    mv "$tmp"/busybox-static_*_arm64.deb "$CACHE"/
    rm -rf "$tmp"
}

# --------------------------------------------------------- vhost-device-scmi
# rust-vmm's vhost-user SCMI back-end (sensors only), the peer the guest test
# and benchmark compare against. Installed repo-locally into $TOOLS/bin with
# cargo (locked dependencies); skipped when that version is already there.
VDSCMI_VERSION=0.4.0
TOOLS="${VSCMI_TOOLS:-$REPO/target/tools}"
do_vhost_device_scmi() {
    local bin="$TOOLS/bin/vhost-device-scmi" have
    have="$("$bin" --version 2>/dev/null || true)"
    if [ "$have" = "vhost-device-scmi $VDSCMI_VERSION" ]; then
        log "vhost-device-scmi $VDSCMI_VERSION present in $TOOLS/bin"
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found in PATH"
    log "cargo install --locked vhost-device-scmi@$VDSCMI_VERSION --root $TOOLS (a few minutes)"
    quiet cargo install --locked "vhost-device-scmi@$VDSCMI_VERSION" --root "$TOOLS" \
        --target-dir "$REPO/target/cargo-install" \
        || die "cargo install vhost-device-scmi failed"
    [ -x "$bin" ] || die "vhost-device-scmi not in $TOOLS/bin after cargo install"
}

usage() { echo "usage: $0 {rust|tools|qemu|linux|vhost-device-scmi|all}..." >&2; exit 2; }

[ "$#" -ge 1 ] || usage
for cmd in "$@"; do
    case "$cmd" in
        rust) do_rust ;;
        tools) do_tools ;;
        qemu) do_qemu ;;
        linux) do_linux ;;
        vhost-device-scmi) do_vhost_device_scmi ;;
        all) do_rust; do_tools; do_qemu; do_linux; do_vhost_device_scmi ;;
        -h|--help) usage ;;
        *) echo "setup-host: unknown subcommand: $cmd" >&2; usage ;;
    esac
done
log "done: $*"
