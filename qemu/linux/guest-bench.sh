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
#     /proc/PID/task/*/schedstat run times, in ns) sampled at three guest
#     lines: bench-idle (3 s of idling follow: the daemon's idle CPU rate,
#     e.g. its platform tick), bench-ready (1 s pause, then the series) and
#     bench-result; (series window - idle rate x window) / N;
#   guest latency per read: the guest's CLOCK_MONOTONIC around each request
#     (TCG guest time, so the absolute figure includes QEMU's emulation).
# Prints both figures per back-end and the ratio ours / vhost-device-scmi
# (the goal is <= 0.3). Figures only: nothing here passes or fails on speed.
#
# Machine floor: before the series, the wake-floor binary (tests/bench,
# src/bin/wake-floor.rs; $REPO/target/release/wake-floor, built first when
# missing) measures on this host the CPU time the kernel charges a process
# for one eventfd wakeup out of epoll_wait plus one eventfd write, with no
# work: the per-request cost of any back-end that sleeps between requests
# (the Linux SCMI driver sends one request at a time). Shapes: epoll ET +
# write (our daemon's two system calls) and epoll + read + write (rust-vmm's
# vhost-user-backend loop). Figures: both processes on one CPU with nothing
# between rounds (no cross-CPU wakeup, hot caches: the kernel's cheapest
# path); on one CPU with 1 MiB of other work between rounds (caches and TLB
# cold, as the guest and QEMU leave them between two SCMI calls); and
# unpinned (woken across CPUs, mostly idle ones: context, not a bound). The
# last lines give each against vhost-device-scmi's figure and against the
# goal, 0.3 x that figure.
#
# Placement: everything started here (wake-floor, QEMU, both daemons)
# inherits this script's CPU affinity. `taskset -c 1 qemu/linux/guest-bench.sh`
# runs the whole comparison on one CPU, where the one-CPU floors apply to
# the daemons as well; the test command runs both.
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

# wake_floor: runs the wake-floor binary twice, with nothing between
# rounds and with 1 MiB of other work between rounds (cold caches, as after
# the guest and QEMU ran); sets FLOOR_OUT.
wake_floor() {
    local bin="$REPO/target/release/wake-floor"
    if [ ! -x "$bin" ]; then
        log "building wake-floor ..."
        (cd "$REPO" && cargo build --release --locked -p bench --bin wake-floor) >&2 ||
            die "cargo build of wake-floor failed"
    fi
    FLOOR_OUT=$("$bin" 20000 && "$bin" 5000 --pressure-kib "$FLOOR_PRESSURE_KIB") || die "wake-floor failed"
    printf '%s\n' "$FLOOR_OUT" | sed "s/^/$LOG_TAG: /"
}
FLOOR_PRESSURE_KIB=1024
# floor_ns SHAPE PLACEMENT KIB: responder ns/round from FLOOR_OUT (KIB 0:
# the run without other work).
floor_ns() {
    printf '%s\n' "$FLOOR_OUT" | awk -v s="$1" -v p="$2" -v k="$3" '
        $2 == s && $3 == p {
            kib = 0; cpu = ""
            for (i = 1; i < NF; i++) {
                if ($i == "pressure") kib = $(i + 1)
                if ($i == "CPU") cpu = $(i + 1)
            }
            if (kib == k) { print cpu; exit }
        }'
}
# floor_line LABEL SHAPE: the floors of SHAPE against vhost-device-scmi's figure.
floor_line() {
    local any one cold peer=${CPU_PER_REQ[peer-raw]}
    one=$(floor_ns "$2" one-cpu 0) cold=$(floor_ns "$2" one-cpu "$FLOOR_PRESSURE_KIB")
    any=$(floor_ns "$2" any-cpu 0)
    [ -n "$any" ] && [ -n "$one" ] && [ -n "$cold" ] || die "wake-floor printed no $2 figures"
    printf '%s: machine floor (wake-floor, %s, no work): one CPU %s ns/request = %s x vhost-device-scmi'"'"'s figure; one CPU after %s KiB of other work %s ns = %s x; unpinned %s ns = %s x; goal 0.3 x = %s ns\n' \
        "$LOG_TAG" "$1" "$one" "$(ratio "$one" "$peer")" "$FLOOR_PRESSURE_KIB" "$cold" "$(ratio "$cold" "$peer")" \
        "$any" "$(ratio "$any" "$peer")" "$(awk -v p="$peer" 'BEGIN { printf "%d", 0.3 * p }')"
}
wake_floor

if [ -z "${VSCMI_PEER:-}" ]; then
    b=$(vdscmi_bin) || die "vhost-device-scmi not found: scripts/setup-host.sh vhost-device-scmi"
    VSCMI_PEER="$b --socket-path {sock} -d fake,name=accel0"
fi

# Samples of the daemon's CPU time (ns) and the host clock (ns) at the
# guest's bench-idle (3 s of idling follow), bench-ready (1 s pause, then the
# series) and bench-result lines.
sample() { printf '%s %s' "$(cpu_ns "$DAEMON_PID")" "$(date +%s%N)"; }

declare -A CPU_PER_REQ RAW_PER_REQ LAT_PER_REQ
# series NAME PROFILE DAEMON_CMD KIND ARGS...: one boot, one series.
series() {
    local name=$1 profile=$2 cmd=$3 kind=$4
    shift 4
    # shellcheck source=/dev/null
    source "$HERE/profiles/$profile.sh"
    build_dtb "$(fragment_file)"
    {
        # The peer starts its sensors disabled; enabling is harmless for ours.
        [ "$profile" != sensors-only ] || echo "raw 0x15 0xa 0 1"
        echo "bench_$kind $N $*"
    } >"$WORK/plan.$name"
    build_initramfs "$name" "$WORK/plan.$name"
    start_daemon "$cmd" "$name"
    local console="$WORK/$name.console.log"
    log "series $name: $N x $kind ($*) ..."
    boot_bench "$WORK/$name.cpio.gz" "$console"
    stop_daemon "$DAEMON_PID"
    local res
    res=$(vs "$console" bench-result | head -n 1)
    if [ -z "$res" ] || [ -z "$S_IDLE" ] || [ -z "$S_READY" ] || [ -z "$S_END" ]; then
        tail -n 20 "$console" >&2
        die "series $name: no result (qemu exit $BOOT_RC)"
    fi
    local n ok ns c0 t0 c1 t1 c2 t2 idle_rate
    n=$(kv "$res" n) ok=$(kv "$res" ok) ns=$(kv "$res" ns)
    [ "$ok" = "$n" ] || die "series $name: only $ok of $n requests succeeded ($res)"
    read -r c0 t0 <<<"$S_IDLE"; read -r c1 t1 <<<"$S_READY"; read -r c2 t2 <<<"$S_END"
    # Idle CPU (timers, polling) in ns per host second, subtracted from the
    # series window so the figure is the cost of the requests alone.
    idle_rate=$(( (c1 - c0) * 1000000000 / (t1 - t0 > 0 ? t1 - t0 : 1) ))
    RAW_PER_REQ[$name]=$(( (c2 - c1) / n ))
    CPU_PER_REQ[$name]=$(( (c2 - c1 - idle_rate * (t2 - t1) / 1000000000) / n ))
    LAT_PER_REQ[$name]=$(( ns / n ))
    printf '%s: %-11s %6d reads  back-end CPU %6d ns/req (%d before subtracting idle %d us/s)  guest latency %6d ns/read (min %d, max %d, %d over 10 ms)\n' \
        "$LOG_TAG" "$name" "$n" "${CPU_PER_REQ[$name]}" "${RAW_PER_REQ[$name]}" "$((idle_rate / 1000))" \
        "${LAT_PER_REQ[$name]}" "$(kv "$res" min_ns)" "$(kv "$res" max_ns)" "$(kv "$res" slow)"
}

# boot_bench INITRD CONSOLE: like boot_guest, sampling S_IDLE, S_READY and
# S_END at the guest's bench-idle, bench-ready and bench-result lines.
boot_bench() {
    local initrd=$1 console=$2 qpid
    S_IDLE="" S_READY="" S_END=""
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
        if [ -z "$S_IDLE" ] && grep -q '@vscmi bench-idle' "$console"; then S_IDLE=$(sample); fi
        if [ -z "$S_READY" ] && grep -q '@vscmi bench-ready' "$console"; then S_READY=$(sample); fi
        if [ -z "$S_END" ] && grep -q '@vscmi bench-result' "$console"; then S_END=$(sample); fi
        sleep 0.05
    done
    BOOT_RC=0
    wait "$qpid" || BOOT_RC=$?
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

trap 'stop_daemon' EXIT
read -r -a PEER_RAW <<<"$(source "$HERE/profiles/sensors-only.sh"; profile_bench_raw)"
series peer-raw sensors-only "$VSCMI_PEER" raw "${PEER_RAW[@]}"
if [ -n "${VSCMI_DAEMON:-}" ]; then
    read -r -a OUR_RAW <<<"$(source "$HERE/profiles/sim.sh"; profile_bench_raw)"
    series ours-raw sim "$VSCMI_DAEMON" raw "${OUR_RAW[@]}"
    series ours-hwmon sim "$VSCMI_DAEMON" file "$(source "$HERE/profiles/sim.sh"; profile_bench_file)"
    printf '%s: ratio ours/vhost-device-scmi, raw SENSOR_READING_GET: back-end CPU %s (goal <= 0.3), guest latency %s\n' \
        "$LOG_TAG" "$(ratio "${CPU_PER_REQ[ours-raw]}" "${CPU_PER_REQ[peer-raw]}")" \
        "$(ratio "${LAT_PER_REQ[ours-raw]}" "${LAT_PER_REQ[peer-raw]}")"
else
    log "VSCMI_DAEMON not set: only the vhost-device-scmi series ran"
fi
floor_line "epoll ET + write" epoll-et+write
floor_line "epoll + read + write" epoll+read+write
