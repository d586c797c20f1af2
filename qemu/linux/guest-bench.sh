#!/usr/bin/env bash
# Benchmark: SCMI sensor reads from a Linux guest's user space, our daemon
# against rust-vmm's vhost-device-scmi, in the same run.
#
# Usage: qemu/linux/guest-bench.sh [N]        (N reads per series, default 10000)
#
# For each back-end: start it, boot the test guest (same kernel, same DT
# layout apart from the SCMI node), and in the guest run N
# SENSOR_READING_GET requests back to back with qemu/linux/guest/vscmi-guest.c
# (no fork per request):
#   raw   through the SCMI raw-mode debugfs file (write request, read reply):
#         the same Linux path for both back-ends;
#   hwmon open/read/close of an scmi-hwmon *_input file (our daemon only:
#         vhost-device-scmi's fake sensor is an accelerometer, a unit hwmon
#         does not show). scmi-hwmon does not cache: each read() is one
#         SENSOR_READING_GET (scmi_hwmon_read -> reading_get).
# Measured:
#   back-end CPU time per request: the daemon's CPU time (sum of
#     /proc/PID/task/*/schedstat run times, in ns) sampled while the guest
#     idles before and after the series (the guest prints bench-ready, waits
#     3 s, runs, prints its result, waits 3 s), divided by N;
#   guest latency per read: the guest's CLOCK_MONOTONIC around each request
#     (TCG guest time, so the absolute figure includes QEMU's emulation).
# Prints both figures per back-end and the ratio ours / vhost-device-scmi
# (the goal is <= 0.3). Figures only: nothing here passes or fails on speed.
#
# Environment: VSCMI_DAEMON (our daemon, "{sock}" for the socket; required
# for the "ours" series, skipped with a note when unset), VSCMI_PEER (the peer
# command, default: vhost-device-scmi with one fake sensor), VSCMI_CACHE,
# VSCMI_WORK (default target/guest-bench), BOOT_TIMEOUT.
set -euo pipefail
LOG_TAG=guest-bench
export VSCMI_WORK="${VSCMI_WORK:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/guest-bench}"
# shellcheck source=qemu/linux/guest-lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/guest-lib.sh"

N="${1:-10000}"
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -gt 0 ] || die "N must be a positive number"
need_host_tools
mkdir -p "$WORK"
guest_kernel
guest_tool

if [ -z "${VSCMI_PEER:-}" ]; then
    b=$(vdscmi_bin) || die "vhost-device-scmi not found: scripts/setup-host.sh vhost-device-scmi"
    VSCMI_PEER="$b --socket-path {sock} -d fake,name=accel0"
fi

# Sample the daemon's CPU time when the guest says bench-ready (it then
# idles 3 s before starting) and when it prints bench-result (it idles 3 s
# after).
CPU0="" CPU1=""
sample_start() { CPU0=$(cpu_ns "$DAEMON_PID"); }
sample_end() { CPU1=$(cpu_ns "$DAEMON_PID"); }

declare -A CPU_PER_REQ LAT_PER_REQ
# series NAME PROFILE DAEMON_CMD KIND ARGS...: one boot, one series.
series() {
    local name=$1 profile=$2 cmd=$3 kind=$4
    shift 4
    # shellcheck source=/dev/null
    source "$HERE/profiles/$profile.sh"
    build_dtb "$(fragment_file "$PROFILE_FRAGMENT")"
    {
        # The peer starts its sensors disabled; enabling is harmless for ours.
        [ "$profile" != sensors-only ] || echo "raw 0x15 0xa 0 1"
        echo "bench_$kind $N $*"
    } >"$WORK/plan.$name"
    build_initramfs "$name" "$WORK/plan.$name"
    start_daemon "$cmd" "$name"
    local console="$WORK/$name.console.log"
    CPU0="" CPU1=""
    log "series $name: $N x $kind ($*) ..."
    boot_bench "$WORK/$name.cpio.gz" "$console"
    stop_daemon "$DAEMON_PID"
    local res
    res=$(vs "$console" bench-result | head -n 1)
    if [ -z "$res" ] || [ -z "$CPU0" ] || [ -z "$CPU1" ]; then
        tail -n 20 "$console" >&2
        die "series $name: no result (qemu exit $BOOT_RC)"
    fi
    local n ok ns
    n=$(kv "$res" n) ok=$(kv "$res" ok) ns=$(kv "$res" ns)
    [ "$ok" = "$n" ] || die "series $name: only $ok of $n requests succeeded ($res)"
    CPU_PER_REQ[$name]=$(( (CPU1 - CPU0) / n ))
    LAT_PER_REQ[$name]=$(( ns / n ))
    printf '%s: %-14s %6d reads  back-end CPU %7d ns/req  guest latency %7d ns/read (min %d, max %d ns)\n' \
        "$LOG_TAG" "$name" "$n" "${CPU_PER_REQ[$name]}" "${LAT_PER_REQ[$name]}" \
        "$(kv "$res" min_ns)" "$(kv "$res" max_ns)"
}

# boot_bench INITRD CONSOLE: like boot_guest, with the two sampling points.
boot_bench() {
    local initrd=$1 console=$2 started=0 ended=0 qpid
    : >"$console"
    timeout "$BOOT_TIMEOUT" qemu-system-aarch64 -M virt "${MACHINE_ARGS[@]}" \
        -nographic -no-reboot \
        -object memory-backend-memfd,id=mem,size=256M,share=on -machine memory-backend=mem \
        -global virtio-mmio.force-legacy=false \
        -chardev socket,id=scmi,path="$SOCK" \
        -device vhost-user-scmi,chardev=scmi \
        -kernel "$IMAGE" -initrd "$initrd" -dtb "$WORK/guest.dtb" \
        -append "$KERNEL_CMDLINE" </dev/null >"$console" 2>&1 &
    qpid=$!
    while kill -0 "$qpid" 2>/dev/null; do
        if [ "$started" -eq 0 ] && grep -q '@vscmi bench-ready' "$console"; then
            sample_start; started=1
        fi
        if [ "$ended" -eq 0 ] && grep -q '@vscmi bench-result' "$console"; then
            sample_end; ended=1
        fi
        sleep 0.05
    done
    BOOT_RC=0
    wait "$qpid" || BOOT_RC=$?
}

trap 'stop_daemon' EXIT
read -r -a PEER_RAW <<<"$(source "$HERE/profiles/sensors-only.sh"; profile_bench_raw)"
series peer-raw sensors-only "$VSCMI_PEER" raw "${PEER_RAW[@]}"
if [ -n "${VSCMI_DAEMON:-}" ]; then
    read -r -a OUR_RAW <<<"$(source "$HERE/profiles/sim.sh"; profile_bench_raw)"
    series ours-raw sim "$VSCMI_DAEMON" raw "${OUR_RAW[@]}"
    series ours-hwmon sim "$VSCMI_DAEMON" file "$(source "$HERE/profiles/sim.sh"; profile_bench_file)"
    printf '%s: ratio ours/vhost-device-scmi (raw READING_GET): back-end CPU %s, guest latency %s (goal: CPU <= 0.3)\n' \
        "$LOG_TAG" \
        "$(awk -v a="${CPU_PER_REQ[ours-raw]}" -v b="${CPU_PER_REQ[peer-raw]}" 'BEGIN { printf b > 0 ? "%.2f" : "n/a", a / (b > 0 ? b : 1) }')" \
        "$(awk -v a="${LAT_PER_REQ[ours-raw]}" -v b="${LAT_PER_REQ[peer-raw]}" 'BEGIN { printf b > 0 ? "%.2f" : "n/a", a / (b > 0 ? b : 1) }')"
else
    log "VSCMI_DAEMON not set: only the vhost-device-scmi series ran"
fi
