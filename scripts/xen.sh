#!/usr/bin/env bash
# Xen: Debian's Xen 4.17 hypervisor in dom0less mode under QEMU, two
# bare-metal DomUs of ours on it.
#
#   scripts/xen.sh smoke   DomU 1 grants a page to DomU 2 over Xen's grant
#                          table; they signal each other over the static
#                          event channel the host device tree declares;
#                          DomU 2 maps the page and answers in it; DomU 1
#                          checks and ends QEMU with its verdict. Judged by
#                          both guests' verdicts, not only QEMU's status
#                          (a Xen panic with -no-reboot exits 0).
#   scripts/xen.sh pair    the SCMI back-end DomU (the product image
#                          scmi-xen-domu, --profile firmware, from
#                          manifests/xen-domu.dts) in domain 2 serves the
#                          front-end DomU (tests/xen-pair) in domain 1 over
#                          virtio-msg on the shared-memory channel in the
#                          first page domain 1 grants it, rings and buffers
#                          reached through grants, an event channel each way:
#                          the tour, a restart (reset, pages unmapped, a
#                          fresh probe), 200 timed round trips. Judged by the
#                          front-end's verdict; the back-end must have
#                          reported the sessions the resets ended.
#   scripts/xen.sh hostile the same pair, the front-end hostile: events
#                          before anything is granted, garbage on the
#                          channel, rings and chains it cannot use, grants it
#                          cannot map; the back-end must stay up and serve a
#                          fresh probe at the end.
#   scripts/xen.sh figures the pair under -icount shift=4 (a counter tick is
#                          an instruction): instructions per round trip,
#                          hypercalls per request, image sizes, glue lines.
#
# The hypervisor comes from Debian (xen-hypervisor-4.17-arm64, the arm64
# package: this host is amd64, so the architecture is added to dpkg and the
# package downloaded and unpacked, not installed), pinned to XEN_VERSION and
# cached in ${VSCMI_CACHE:-target/qemu-cache}.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
XEN_VERSION="4.17.7+13-g2445b30a44-0+deb12u1"
CACHE="${VSCMI_CACHE:-$REPO/target/qemu-cache}/xen-$XEN_VERSION"
OUT="$REPO/target/xen"
mkdir -p "$OUT"

die() { printf 'xen: FAILED: %s\n' "$*" >&2; exit 1; }

# The machine, the same for the device-tree dump and the run.
MACHINE=(-M virt,virtualization=on,gic-version=3 -cpu cortex-a57 -smp 2 -m 2G)

fetch_xen() {
    [ -f "$CACHE/boot/xen-4.17-arm64" ] && return
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    apt-get update -qq
    local dl
    dl=$(mktemp -d)
    # apt downloads as its own user (_apt): the directory must be writable.
    chmod 1777 "$dl"
    (cd "$dl" && apt-get download -q "xen-hypervisor-4.17-arm64:arm64=$XEN_VERSION") ||
        die "xen-hypervisor-4.17-arm64 $XEN_VERSION is not in the archive any more: update XEN_VERSION"
    mkdir -p "$CACHE"
    dpkg-deb -x "$dl"/xen-hypervisor-4.17-arm64_*_arm64.deb "$CACHE"
    rm -rf "$dl"
    [ -f "$CACHE/boot/xen-4.17-arm64" ] || die "no boot/xen-4.17-arm64 in the package"
}

objcopy_tool() {
    echo "$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-objcopy"
}

# image ELF OUT: the raw image behind a 4 KiB page that starts with the
# arm64 Image header Xen 4.17 loads (it takes no ELF): a branch over the
# page (b #0x1000), text_offset 0, an image size that covers bss and
# stacks (2 MiB), flags little-endian with 4 KiB pages, the "ARM\x64" magic.
image() {
    rm -f "$OUT/raw.bin"
    "$(objcopy_tool)" -O binary "$1" "$OUT/raw.bin" || return 1
    {
        printf '\x00\x04\x00\x14\x00\x00\x00\x00'   # code0: b #0x1000, code1
        printf '\x00\x00\x00\x00\x00\x00\x00\x00'   # text_offset
        printf '\x00\x00\x20\x00\x00\x00\x00\x00'   # image_size: 2 MiB
        printf '\x02\x00\x00\x00\x00\x00\x00\x00'   # flags: LE, 4 KiB pages
        printf '\x00%.0s' $(seq 24)                  # res2..res4
        printf 'ARM\x64\x00\x00\x00\x00'             # magic, res5
    } >"$2"
    truncate -s 4096 "$2"
    cat "$OUT/raw.bin" >>"$2"
}

# domain X IMAGE ADDRESS PORT PEER: the /chosen node of DomU X, its kernel
# IMAGE loaded at ADDRESS, its end of the static event channel (PORT)
# bound to PEER's.
domain() {
    local x=$1 img=$2 addr=$3 port=$4 peer=$5
    cat <<EOF
		domu-$x {
			compatible = "xen,domain";
			#address-cells = <0x2>;
			#size-cells = <0x1>;
			memory = <0x0 0x20000>;
			cpus = <0x1>;
			vpl011;
			xen,enhanced = "no-xenstore";
			module@${addr#0x} {
				compatible = "multiboot,kernel", "multiboot,module";
				reg = <0x0 $addr $(printf '%#x' "$(stat -c %s "$img")")>;
			};
			evtchn_$x: evtchn@$x {
				compatible = "xen,evtchn-v1";
				xen,evtchn = <$port &evtchn_$peer>;
			};
		};
EOF
}

# boot ELF_A ELF_B LOG [QEMU ARGS...]: DomU A (domain 1) and DomU B
# (domain 2) from the two ELFs under Xen, a static event channel between
# them (A's port PORT_A, default 10; B's port PORT_B, default 11); returns
# QEMU's status (A's semihosting exit).
boot() {
    fetch_xen
    local a="$OUT/domu-a.img" b="$OUT/domu-b.img" log=$3
    image "$1" "$a" || die "no image of $1"
    image "$2" "$b" || die "no image of $2"
    shift 3
    # The host device tree: QEMU's, and /chosen for Xen: its command line
    # (xsm=dummy: the default SILO policy denies grants between DomUs) and
    # the two domains, each with a static event-channel end (compatible
    # "xen,evtchn-v1"; Xen ignores plain "xen,evtchn" without a word).
    qemu-system-aarch64 "${MACHINE[@]}" -nographic -machine dumpdtb="$OUT/virt.dtb" >/dev/null
    dtc -q -I dtb -O dts -o "$OUT/virt.dts" "$OUT/virt.dtb"
    {
        printf '/include/ "virt.dts"\n/ {\n\tchosen {\n\t\t#address-cells = <0x2>;\n\t\t#size-cells = <0x2>;\n'
        printf '\t\txen,xen-bootargs = "console=dtuart dtuart=serial0 xsm=dummy bootscrub=0 guest_loglvl=all";\n'
        domain a "$a" 0x60000000 "${PORT_A:-10}" b
        domain b "$b" 0x60400000 "${PORT_B:-11}" a
        printf '\t};\n};\n'
    } >"$OUT/host.dts"
    dtc -q -I dts -O dtb -o "$OUT/host.dtb" "$OUT/host.dts"
    local status=0
    timeout "${XEN_TIMEOUT:-120}" qemu-system-aarch64 "${MACHINE[@]}" -display none -monitor none -serial stdio -no-reboot \
        "$@" \
        -kernel "$CACHE/boot/xen-4.17-arm64" -dtb "$OUT/host.dtb" \
        -device loader,file="$a",addr=0x60000000,force-raw=on \
        -device loader,file="$b",addr=0x60400000,force-raw=on \
        </dev/null >"$log" 2>&1 || status=$?
    return "$status"
}

cmd_smoke() {
    cargo build -q --locked --release -p xen-smoke --target aarch64-unknown-none
    local log="$OUT/smoke.log" status=0
    boot "$REPO/target/aarch64-unknown-none/release/xen-smoke-a" \
        "$REPO/target/aarch64-unknown-none/release/xen-smoke-b" "$log" \
        -semihosting-config enable=on,target=native || status=$?
    grep -E 'xen-smoke|: (ok|FAIL): |spurious|no event pending' "$log" || true
    [ "$status" -eq 0 ] && grep -q 'xen-smoke A: VERDICT PASS' "$log" &&
        grep -q 'xen-smoke B: VERDICT PASS' "$log" || {
        tail -n 40 "$log"
        die "smoke: QEMU exited with $status (log: $log)"
    }
    echo "xen: smoke ok"
}

BACKEND="$REPO/target/aarch64-unknown-none/firmware/scmi-xen-domu"
FRONTEND="$REPO/target/aarch64-unknown-none/release/xen-frontend"

# Separate builds: the front-end's features (alloc) must not reach the
# product image.
build_pair() {
    cargo build -q --locked -p scmi-xen-domu --target aarch64-unknown-none --profile firmware
    cargo build -q --locked --release -p xen-pair --target aarch64-unknown-none
}

# manifest_const NAME: a constant the back-end's manifest generates.
manifest_const() {
    cargo run -q --locked -p manifest --bin manifest-tool -- rust manifests/xen-domu.dts |
        sed -n "s/^ *pub const $1: [a-z0-9]* = \([0-9]*\);/\1/p" | head -n 1
}

# run MODE LOG [QEMU ARGS...]: the pair, the front-end in MODE; checks the
# verdicts, prints the guests' lines. The back-end's end of the event
# channel is its manifest's; its driver must be the first domain.
run_pair() {
    local mode=$1 log=$2 status=0
    shift 2
    build_pair
    [ "$(manifest_const DRIVER_DOMAIN)" = 1 ] ||
        die "manifests/xen-domu.dts: xen,driver-domain must be 1 (the front-end is the first xen,domain node)"
    PORT_B=$(manifest_const EVENT_CHANNEL)
    [ -n "$PORT_B" ] || die "manifests/xen-domu.dts: no event channel"
    PORT_B=$PORT_B boot "$FRONTEND" "$BACKEND" "$log" \
        -semihosting-config "enable=on,target=native,arg=xen-frontend,arg=$mode" "$@" || status=$?
    grep -E '^\(d[12]\)' "$log" | sed 's/^(d[12]) //' || true
    [ "$status" -eq 0 ] && grep -q '^(d1) result: [0-9]* checks passed, 0 failed' "$log" || {
        tail -n 40 "$log"
        die "$mode: QEMU exited with $status (log: $log)"
    }
    grep -q '^(d2) scmi-xen: virtio-scmi' "$log" || die "$mode: the back-end did not start"
    if grep -q '^(d2) scmi-xen: \(panic\|unexpected\|FAILED\)' "$log"; then
        die "$mode: the back-end failed (log: $log)"
    fi
    grep -q '^(d2) scmi-xen: reset:' "$log" ||
        die "$mode: the back-end reported no session"
}

# The product image links no allocator and no function of ours can reach a
# panic unless partition/panic-allowlist.txt names it (machine "xen").
check_product() {
    local n
    n=$(nm -C "$BACKEND" | grep -Ec '__rust_alloc|__rg_alloc|__rust_no_alloc_shim' || true)
    [ "$n" -eq 0 ] || die "scmi-xen-domu links an allocator"
    scripts/panic-sites.sh --check xen "$BACKEND" >"$OUT/panics.txt" || die "scmi-xen-domu: panic sites"
    echo "xen: scmi-xen-domu: no allocator; $(sed 's/^xen: //' "$OUT/panics.txt")"
}

cmd_pair() {
    build_pair
    check_product
    run_pair tour "$OUT/pair.log"
    echo "xen: pair ok"
}

cmd_hostile() {
    run_pair hostile "$OUT/hostile.log"
    echo "xen: hostile ok"
}

# Non-comment, non-blank lines of the Rust files given, unit tests (from a
# `#[cfg(test)]` line on) left out.
glue_lines() {
    local f n total=0
    for f in "$@"; do
        n=$(sed '/^#\[cfg(test)\]/,$d' "$f" | grep -cvE '^\s*(//|$)')
        printf '  %-40s %5d\n' "${f#"$REPO"/}" "$n"
        total=$((total + n))
    done
    printf '  %-40s %5d\n' total "$total"
}

cmd_figures() {
    local log="$OUT/figures.log"
    run_pair tour "$log" -icount shift=4 >/dev/null
    echo "Xen pair under -icount shift=4 (Cortex-A57: the 62.5 MHz counter ticks once per instruction):"
    grep -E '^\(d1\) measure:' "$log" | sed 's/^(d1) /  /'
    # The session the measurement's reset ended: the probe and the round
    # trips (the last report).
    grep -E '^\(d2\) scmi-xen: reset:' "$log" | tail -n 1 | sed 's/^(d2) /  back-end, that session: /'
    grep -E '^\(d2\) scmi-xen: reset:' "$log" | tail -n 1 |
        sed -E 's/.*: ([0-9]+) messages, ([0-9]+) hypercalls.*\), ([0-9]+) page accesses, ([0-9]+) ticks serving.*/\1 \2 \3 \4/' |
        awk '{ printf "  back-end: %.2f hypercalls, %.1f grant-page accesses (each a GNTTABOP_copy without the mapping cache) and %d instructions serving per message\n", $2 / $1, $3 / $1, $4 / $1 }'
    echo "The device alone on the host (callgrind; fake hypercalls, the driver's arena behind grants):"
    if command -v valgrind >/dev/null 2>&1; then
        cargo run -q --release --locked -p bench --bin bench-xen | head -n 1
    else
        echo "  (valgrind not installed: scripts/setup-host.sh tools)"
    fi
    echo "Image sizes (bytes):"
    size -A "$BACKEND" | awk '$1 ~ /^\.(text|rodata|data|bss|stack)/ { printf "  scmi-xen-domu %-10s %8d\n", $1, $2 }'
    image "$BACKEND" "$OUT/scmi-xen-domu.img" || die "no image of $BACKEND"
    printf '  scmi-xen-domu image as Xen loads it: %d (the 4 KiB header page, then the raw binary)\n' \
        "$(stat -c %s "$OUT/scmi-xen-domu.img")"
    echo "Xen glue (non-comment, non-blank lines, without unit tests):"
    glue_lines "$REPO"/platforms/xen/src/*.rs "$REPO"/transports/xen/src/*.rs \
        "$REPO"/partition/xen-domu/src/*.rs
}

case "${1:-}" in
    smoke) cmd_smoke ;;
    pair) cmd_pair ;;
    hostile) cmd_hostile ;;
    figures) cmd_figures ;;
    *) sed -n '2,40p' "$0"; exit 2 ;;
esac
