# shellcheck shell=bash
# Shared by qemu/linux/guest-test.sh and qemu/linux/guest-bench.sh: build the
# guest pieces, run a vhost-user SCMI back-end, boot QEMU against it, and
# read the guest's "@vscmi" lines back. Source it; it defines functions only
# (plus HERE, REPO, CACHE, WORK defaults).
#
# Back-ends are commands with "{sock}" standing for the vhost-user socket
# path, e.g. "target/release/vhost-scmi --socket-path {sock}" or
# "vhost-device-scmi --socket-path {sock} -d fake,name=accel0".

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# Read-only caches may be shared (VSCMI_CACHE); everything this run writes
# goes under WORK.
CACHE="${VSCMI_CACHE:-$REPO/target/qemu-cache}"
WORK="${VSCMI_WORK:-$REPO/target/guest-test}"
TOOLS="${VSCMI_TOOLS:-$REPO/target/tools}"
BOOT_TIMEOUT="${BOOT_TIMEOUT:-300}"
SMP="${VSCMI_SMP:-1}"
MACHINE_ARGS=(-cpu cortex-a57 -smp "$SMP" -m 256 -nic none)
# Linux 6.12 expectations: keep the late-init clean-ups from switching off
# our clocks, domains and regulators (clk_disable_unused,
# genpd_power_off_unused, regulator_late_cleanup); loglevel 4 keeps the
# kernel's info lines off the console (the guest prints dmesg itself) so
# they do not interleave with its "@vscmi" lines.
KERNEL_CMDLINE="console=ttyAMA0 panic=-1 loglevel=4 clk_ignore_unused pd_ignore_unused regulator_ignore_unused"

log() { printf '%s: %s\n' "${LOG_TAG:-guest}" "$*"; }
die() { printf '%s: ERROR: %s\n' "${LOG_TAG:-guest}" "$*" >&2; exit 1; }

# The repo-local vhost-device-scmi (scripts/setup-host.sh vhost-device-scmi),
# else one on PATH.
vdscmi_bin() {
    if [ -x "$TOOLS/bin/vhost-device-scmi" ]; then
        echo "$TOOLS/bin/vhost-device-scmi"
    elif command -v vhost-device-scmi >/dev/null 2>&1; then
        command -v vhost-device-scmi
    else
        return 1
    fi
}

need_host_tools() {
    command -v qemu-system-aarch64 >/dev/null 2>&1 || die "qemu-system-aarch64 missing: scripts/setup-host.sh qemu"
    command -v dtc >/dev/null 2>&1 || die "dtc missing: scripts/setup-host.sh qemu"
    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || die "aarch64-linux-gnu-gcc missing: scripts/setup-host.sh linux"
}

# kernel: cached Image (build-kernel.sh rebuilds only when scmi.config changed).
guest_kernel() {
    "$HERE/build-kernel.sh" >&2
    IMAGE="$CACHE/linux/Image"
    [ -f "$IMAGE" ] || die "kernel Image missing: $IMAGE"
}

# The freestanding guest tool (no arm64 libc needed).
guest_tool() {
    local out="$WORK/rootfs/bin/vscmi-guest"
    mkdir -p "$(dirname "$out")"
    aarch64-linux-gnu-gcc -static -nostdlib -ffreestanding -fno-builtin -fno-stack-protector \
        -O2 -Wall -Wextra -Werror -o "$out" "$HERE/guest/vscmi-guest.c" \
        || die "building vscmi-guest failed"
}

# build_initramfs NAME PLAN_FILE -> $WORK/NAME.cpio.gz
build_initramfs() {
    local name=$1 plan=$2
    rm -rf "$WORK/rootfs/etc/vscmi"
    mkdir -p "$WORK/rootfs/etc/vscmi"
    cp "$plan" "$WORK/rootfs/etc/vscmi/plan"
    "$HERE/build-initramfs.sh" "$WORK/$name.cpio.gz" "$HERE/guest/init.sh" "$WORK/rootfs" >/dev/null \
        || die "build-initramfs failed"
}

# build_dtb FRAGMENT_FILE -> $WORK/guest.dtb
build_dtb() {
    "$HERE/mkdtb.sh" "$WORK/guest.dtb" "$1" "${MACHINE_ARGS[@]}" || die "mkdtb failed"
}

# fragment_file -> path of the fragment to use: the output of
# $VSCMI_DT_FRAGMENT_CMD when set (e.g. "manifest-tool linux-dt FILE"), else
# of the profile's $PROFILE_FRAGMENT_CMD when it has one, else the profile's
# file $PROFILE_FRAGMENT.
fragment_file() {
    local cmd=${VSCMI_DT_FRAGMENT_CMD:-${PROFILE_FRAGMENT_CMD:-}}
    if [ -n "$cmd" ]; then
        bash -c "$cmd" >"$WORK/fragment.dtsi" || die "DT fragment command failed: $cmd"
        echo "$WORK/fragment.dtsi"
    else
        echo "$PROFILE_FRAGMENT"
    fi
}

# start_daemon CMD TAG: sets DAEMON_PID, SOCK; waits (bounded) for the socket.
start_daemon() {
    local cmd=$1 tag=$2 i
    SOCK="$WORK/$tag.sock"
    rm -f "$SOCK"
    cmd="${cmd//\{sock\}/$SOCK}"
    log "back-end $tag: $cmd"
    # exec: the PID we keep is the daemon itself (for kill and /proc/PID/stat).
    # Output goes through a pipe, not straight to the file: vhost-device-scmi
    # 0.4's fake device hands fd 1 to epoll as its notification fd, which
    # fails (EPERM) when fd 1 is a regular file.
    bash -c "exec $cmd" > >(cat >"$WORK/$tag.daemon.log") 2>&1 </dev/null &
    DAEMON_PID=$!
    # Not a job of this shell: no "Killed" report when a test kills it
    # (bash still reaps it).
    disown "$DAEMON_PID"
    for i in $(seq 1 300); do
        [ -S "$SOCK" ] && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || { tail -n 20 "$WORK/$tag.daemon.log" >&2; die "back-end $tag exited at start"; }
        sleep 0.1
    done
    die "back-end $tag made no socket $SOCK in 30 s"
}

stop_daemon() {
    local pid=${1:-${DAEMON_PID:-}}
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
}

# boot_guest INITRD CONSOLE_LOG [WATCH_LINE ACTION]: boots QEMU against
# $SOCK, bounded by BOOT_TIMEOUT. When WATCH_LINE appears on the console,
# runs ACTION (a function name) once. Sets BOOT_RC (124 = timed out) and
# BOOT_SECS.
boot_guest() {
    local initrd=$1 console=$2 watch=${3:-} action=${4:-} fired=0 qpid start
    : >"$console"
    start=$(date +%s.%N)
    timeout "$BOOT_TIMEOUT" qemu-system-aarch64 -M virt "${MACHINE_ARGS[@]}" \
        -nographic -no-reboot \
        -object memory-backend-memfd,id=mem,size=256M,share=on -machine memory-backend=mem \
        -global virtio-mmio.force-legacy=false \
        -chardev socket,id=scmi,path="$SOCK" \
        -device "${VSCMI_SCMI_DEVICE:-vhost-user-scmi}",chardev=scmi \
        -kernel "$IMAGE" -initrd "$initrd" -dtb "$WORK/guest.dtb" \
        -append "$KERNEL_CMDLINE" </dev/null >"$console" 2>&1 &
    qpid=$!
    while kill -0 "$qpid" 2>/dev/null; do
        if [ -n "$watch" ] && [ "$fired" -eq 0 ] && grep -q "$watch" "$console"; then
            fired=1
            "$action"
        fi
        sleep 0.1
    done
    BOOT_RC=0
    wait "$qpid" || BOOT_RC=$?
    BOOT_SECS="$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
}

# vs LOG KIND: the guest's "@vscmi KIND ..." lines, prefix and CR removed.
vs() { tr -d '\r' <"$1" | sed -n "s/^.*@vscmi $2\( \|\$\)//p"; }
# kv LINE KEY: value of key=value in LINE (empty when absent).
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -n 1; }

# CPU time of a process in ns, all its threads: the sum of the first field
# of /proc/PID/task/*/schedstat (ns on CPU); falls back to utime+stime of
# /proc/PID/stat (clock ticks) when schedstat is missing.
cpu_ns() {
    local pid=$1 sum=0 f v
    for f in /proc/"$pid"/task/*/schedstat; do
        [ -r "$f" ] || continue
        read -r v _ <"$f" || continue
        sum=$((sum + v))
    done
    if [ "$sum" -eq 0 ] && [ -r "/proc/$pid/stat" ]; then
        local hz ticks
        hz=$(getconf CLK_TCK)
        ticks=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
        sum=$((ticks * 1000000000 / hz))
    fi
    echo "$sum"
}
