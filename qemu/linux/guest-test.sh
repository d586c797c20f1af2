#!/usr/bin/env bash
# The unmodified Linux 6.12 SCMI driver against a vhost-user SCMI back-end.
#
# Usage: qemu/linux/guest-test.sh [--profile NAME] [--pci] [--skip-kill] [--skip-restart]
#
# What it does:
#   1. kernel: the cached Image (qemu/linux/build-kernel.sh: all SCMI options
#      built in, raw mode + COEX); initramfs: busybox, qemu/linux/guest/init.sh
#      as /init, the freestanding tool guest/vscmi-guest.c, and a plan (the
#      profile's list of checks);
#   2. DT: QEMU's own `-M virt` DT plus the profile's SCMI node
#      (qemu/linux/mkdtb.sh), booted with -dtb;
#   3. back-end started first (its vhost-user socket), then
#        qemu-system-aarch64 -M virt -cpu cortex-a57 -m 256
#          -object memory-backend-memfd,id=mem,size=256M,share=on
#          -machine memory-backend=mem -global virtio-mmio.force-legacy=false
#          -chardev socket,id=scmi,path=SOCK -device vhost-user-scmi,chardev=scmi
#      (--pci: `-device vhost-user-scmi-pci,chardev=scmi` instead, the
#      device behind the virt machine's PCIe host bridge);
#   4. boot 1 runs the full plan; the guest prints "@vscmi" lines, this
#      script compares them with the profile's expected values and prints
#      one PASS/FAIL line per check;
#   5. robustness: boot 2 against the SAME back-end process after QEMU has
#      exited (it must serve a new front-end), then boot 3 where the
#      back-end is killed while the guest runs: the guest's SCMI calls must
#      fail within the DT's arm,max-rx-timeout-ms (2 s here), the guest
#      must still power off, and nothing may hang (every boot is bounded by
#      BOOT_TIMEOUT, every guest read by `timeout`).
#      Live reconnect is not tested: QEMU 10.0's vhost-user-scmi aborts at
#      start-up when the chardev has `reconnect-ms`, so a back-end restart
#      under a running guest cannot be set up.
#
# Profiles (qemu/linux/profiles/NAME.sh): expected values and the DT
# fragment of one back-end platform.
#   sim           our SCMI server's simulated platform of
#                 manifests/host-vhost-user.dts (DT fragment generated from
#                 it); needs VSCMI_DAEMON (our daemon)
#   sensors-only  rust-vmm's vhost-device-scmi with one fake sensor (the
#                 default when VSCMI_DAEMON is not set)
#
# Environment:
#   VSCMI_DAEMON           back-end command; "{sock}" is replaced by the
#                          socket path (default: the profile's)
#   VSCMI_PROFILE          as --profile (default: sim if VSCMI_DAEMON is set,
#                          else sensors-only)
#   VSCMI_DT_FRAGMENT_CMD  command printing the SCMI DT fragment instead of
#                          the profile's own (sim: generated from its
#                          manifest; sensors-only: qemu/linux/dt/), e.g.
#                          "manifest-tool linux-dt manifests/host-vhost-user.dts".
#                          Contract: DTS source appended to QEMU's DT, i.e.
#                          `/ { firmware { scmi { ... }; }; };`; the label
#                          scmi_dvfs on protocol@13 (#clock-cells) makes
#                          mkdtb.sh point cpu@0 at perf domain 0; the
#                          placeholder VSCMI_RX_TIMEOUT_MS is optional
#   VSCMI_SCMI_DEVICE      QEMU device (default vhost-user-scmi; --pci sets
#                          vhost-user-scmi-pci)
#   VSCMI_CACHE            kernel/busybox cache (read only here)
#   VSCMI_WORK             scratch dir (default target/guest-test)
#   BOOT_TIMEOUT           seconds per boot (default 300)
# Needs: scripts/setup-host.sh qemu linux (and vhost-device-scmi for the
# default profile).
set -euo pipefail
LOG_TAG=guest-test
# shellcheck source=qemu/linux/guest-lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/guest-lib.sh"

PROFILE="${VSCMI_PROFILE:-}"
SKIP_KILL=0
SKIP_RESTART=0
while [ "$#" -gt 0 ]; do
    case "$1" in
        --profile) PROFILE="$2"; shift 2 ;;
        --pci) export VSCMI_SCMI_DEVICE=vhost-user-scmi-pci; shift ;;
        --skip-kill) SKIP_KILL=1; shift ;;
        --skip-restart) SKIP_RESTART=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
done
if [ -z "$PROFILE" ]; then
    if [ -n "${VSCMI_DAEMON:-}" ]; then PROFILE=sim; else PROFILE=sensors-only; fi
fi
[ -f "$HERE/profiles/$PROFILE.sh" ] || die "no profile $PROFILE in $HERE/profiles"

RESULTS=()
FAILED=0
# check NAME OK DETAIL: OK is "1" for a pass, anything else is a failure.
check() {
    local name=$1 ok=$2 detail=$3 verdict=PASS
    if [ "$ok" != 1 ]; then verdict=FAIL; FAILED=$((FAILED + 1)); fi
    RESULTS+=("$(printf '%-4s %-34s %s' "$verdict" "$name" "$detail")")
    printf '%s: %-4s %-34s %s\n' "$LOG_TAG" "$verdict" "$name" "$detail"
}

# check_probe LOG VENDOR_PREFIX: the SCMI core probed ("SCMI Protocol vX.Y
# 'vendor:subvendor' Firmware version 0x..", base.c) with that vendor.
check_probe() {
    local log=$1 want=$2 line
    line=$(vs "$log" dmesg | grep -E 'SCMI_Protocol_v[0-9]+\.[0-9]+_' | head -n 1 || true)
    local shown=${line//_/ }
    shown=${shown#*scmi: }
    local ver=${PROFILE_BASE_VERSION:-[0-9]+\.[0-9]+}
    check "SCMI probe" "$([ -n "$line" ] && grep -Eq "SCMI Protocol v$ver '$want" <<<"$shown" && echo 1)" \
        "${shown:-no 'SCMI Protocol' line in dmesg} (want v${PROFILE_BASE_VERSION:-X.Y} '$want...')"
}

# check_dmesg_clean LOG: no SCMI error lines in dmesg ("failed", "error",
# "timed out", "malformed"), apart from the profile's PROFILE_DMESG_ALLOW
# (an extended regex for known, explained lines).
check_dmesg_clean() {
    local bad
    bad=$(vs "$1" dmesg | grep -Ei 'fail|error|timed_out|malformed|invalid' \
        | grep -Ev "${PROFILE_DMESG_ALLOW:-^\$}" || true)
    check "dmesg: no SCMI errors" "$([ -z "$bad" ] && echo 1)" \
        "$([ -z "$bad" ] && echo "none${PROFILE_DMESG_ALLOW:+ (allowed: $PROFILE_DMESG_ALLOW)}" || head -n 3 <<<"$bad" | tr '\n' ' ')"
}

# shellcheck source=/dev/null
source "$HERE/profiles/$PROFILE.sh"

need_host_tools
mkdir -p "$WORK"
DAEMON_CMD="${VSCMI_DAEMON:-$(profile_default_daemon)}"
log "profile $PROFILE, work dir $WORK"

guest_kernel
guest_tool
build_dtb "$(fragment_file)"
profile_plan_full >"$WORK/plan.full"
build_initramfs full "$WORK/plan.full"
if [ "$SKIP_RESTART" -eq 0 ]; then
    profile_plan_restart >"$WORK/plan.restart"
    build_initramfs restart "$WORK/plan.restart"
fi
if [ "$SKIP_KILL" -eq 0 ]; then
    profile_plan_kill >"$WORK/plan.kill"
    build_initramfs kill "$WORK/plan.kill"
fi

# boot_checked NAME: boot NAME.cpio.gz, require "@vscmi done" and a clean exit.
boot_checked() {
    local name=$1 console="$WORK/$1.console.log"
    log "boot '$name' (timeout ${BOOT_TIMEOUT}s, console: $console)"
    boot_guest "$WORK/$name.cpio.gz" "$console" "${2:-}" "${3:-}"
    local done_line
    done_line=$(vs "$console" "done" | head -n 1)
    check "boot $name completes" "$([ "$BOOT_RC" -eq 0 ] && [ -n "$done_line" ] && echo 1)" \
        "qemu exit $BOOT_RC after ${BOOT_SECS}s$([ -n "$done_line" ] || echo ', no @vscmi done')"
    if [ -z "$done_line" ]; then tail -n 30 "$console" | sed 's/^/  console| /' >&2; fi
    local probed
    probed=$(tr -d '\r' <"$console" | grep -o '@vscmi scmi-[a-z-]*' | head -n 1)
    check "boot $name: SCMI probed" "$([ "$probed" = '@vscmi scmi-probed' ] && echo 1)" "${probed:-no probe report}"
}

trap 'stop_daemon' EXIT
start_daemon "$DAEMON_CMD" main
MAIN_PID=$DAEMON_PID

boot_checked full
# The transport the SCMI device came on: a PCI function with --pci, else a
# virtio-mmio platform device (the guest prints the device's sysfs path).
scmi_path=$(vs "$WORK/full.console.log" scmi-virtio | head -n 1)
if [ "${VSCMI_SCMI_DEVICE:-}" = vhost-user-scmi-pci ]; then
    want_bus='/pci[0-9a-f]{4}:'
else
    want_bus='virtio_mmio|\.virtio'
fi
check "SCMI device on ${VSCMI_SCMI_DEVICE:-vhost-user-scmi}" \
    "$(grep -Eq "$want_bus" <<<"$scmi_path" && echo 1)" "${scmi_path:-no SCMI virtio device in sysfs}"
check_dmesg_clean "$WORK/full.console.log"
profile_check_full "$WORK/full.console.log"

if [ "$SKIP_RESTART" -eq 0 ]; then
    check "back-end survives QEMU exit" "$(kill -0 "$MAIN_PID" 2>/dev/null && echo 1)" "pid $MAIN_PID $(kill -0 "$MAIN_PID" 2>/dev/null && echo alive || echo gone)"
    if kill -0 "$MAIN_PID" 2>/dev/null; then
        boot_checked restart
        profile_check_restart "$WORK/restart.console.log"
    fi
fi

if [ "$SKIP_KILL" -eq 0 ]; then
    # A fresh back-end, so this does not depend on the restart result.
    stop_daemon "$MAIN_PID"
    start_daemon "$DAEMON_CMD" kill
    KILLED_AT=""
    kill_backend() {
        kill -9 "$DAEMON_PID" 2>/dev/null || true
        KILLED_AT=$(date +%s.%N)
        sleep 0.2
    }
    boot_checked kill "@vscmi kill-now" kill_backend
    line=$(vs "$WORK/kill.console.log" after-kill | head -n 1)
    check "back-end killed mid-run" "$([ -n "$KILLED_AT" ] && ! kill -0 "$DAEMON_PID" 2>/dev/null && echo 1)" \
        "$([ -n "$KILLED_AT" ] && echo "SIGKILL on @vscmi kill-now" || echo "kill-now never seen")"
    read_v=$(kv "$line" read) read_ms=$(kv "$line" read_ms) raw=$(kv "$line" raw) raw_ms=$(kv "$line" raw_ms)
    # A Linux-driver read (hwmon) must fail with ETIMEDOUT after about
    # arm,max-rx-timeout-ms; a raw-mode read has no timeout of its own (the
    # reply never comes), so only the guest's `timeout` ends it: no reply.
    # The DT's arm,max-rx-timeout-ms as the kernel took it; one read may
    # wait it out twice (seen: hwmon read = two timed-out transfers).
    rx_ms=$(vs "$WORK/kill.console.log" dmesg | sed -n 's/.*SCMI_max-rx-timeout:_\([0-9]*\)ms.*/\1/p' | head -n 1)
    bound=$(( 3 * ${rx_ms:-2000} + 3000 ))
    if [ "$read_v" != skipped ]; then
        check "dead back-end: driver read times out" \
            "$(grep -qi 'timed_out\|Timer_expired\|error' <<<"$read_v" && [ "${read_ms:-999999}" -lt "$bound" ] && echo 1)" \
            "read=$read_v after ${read_ms}ms (want an error; max-rx-timeout ${rx_ms:-?} ms, bound $bound ms)"
    fi
    check "dead back-end: raw command gets no reply" \
        "$(! grep -q 'status=0' <<<"$raw" && [ "${raw_ms:-99999}" -lt 30000 ] && echo 1)" \
        "raw=$raw after ${raw_ms}ms"
fi

printf '\n%s: summary (profile %s, back-end: %s)\n' "$LOG_TAG" "$PROFILE" "$DAEMON_CMD"
printf '  %s\n' "${RESULTS[@]}"
total=${#RESULTS[@]}
printf '%s passed, %s failed\n' $((total - FAILED)) "$FAILED"
[ "$FAILED" -eq 0 ]
