#!/bin/sh
# /init of the virtio-SCMI test guest (busybox sh, arm64 Linux 6.12).
#
# It only observes and acts; the host (qemu/linux/guest-test.sh) decides
# PASS/FAIL. Every observation is one console line
#     @vscmi <kind> key=value key=value ...
# (values never contain spaces; labels and names come from the server and are
# printed as they are). The work list is /etc/vscmi/plan, one command a line,
# written by the host from the back-end's profile (qemu/linux/profiles/*.sh):
#
#   probe                      dmesg lines of the SCMI core (probe, errors)
#   hwmon ANCHOR               every scmi_sensors hwmon input, as a snapshot
#                              bracketed by two reads of ANCHOR (an attribute
#                              such as energy1: the host knows its formula)
#   hwmon_ramp ATTR SECONDS    ATTR, sleep, ATTR again, with guest uptimes
#   clk_summary                names and rates from debugfs clk_summary
#   clk_set ID RATE NAME       raw CLOCK_RATE_SET, then the rate Linux reads
#                              (debugfs clk_rate: CLOCK_RATE_GET, not cached)
#   genpd                      pm_genpd_summary (domain name, status)
#   power ID                   raw POWER_STATE_SET on/off + POWER_STATE_GET
#   reset ID COUNT             raw RESET assert/deassert/autonomous on ID and
#                              an autonomous reset of COUNT (must be NOT_FOUND)
#   regulator NAME ID UV       raw VOLTAGE_LEVEL_SET, then the regulator's
#                              sysfs microvolts (VOLTAGE_LEVEL_GET)
#   cpufreq POLICY KHZ         scmi-cpufreq: userspace governor, setspeed,
#                              cpuinfo_cur_freq (PERF_LEVEL_GET)
#   raw PROTO MSG [WORD...]    one raw command, reply printed
#   kill_wait SECONDS FILE     print "kill-now", wait, then time one read of
#                              FILE ("-": none; "hwmon:temp1": that hwmon
#                              input) and one raw BASE_PROTOCOL_VERSION
#   bench_raw N PROTO MSG [WORD...]  / bench_file N FILE
#                              benchmark loops (vscmi-guest), bracketed by
#                              bench-idle / bench-ready / bench-result with
#                              pauses so the host can sample the daemon's
#                              CPU time (idle rate, then the series)
#
# Why raw mode for some commands: Linux 6.12 offers no user-space path to
# CLOCK_RATE_SET (debugfs clk_rate is read-only: CLOCK_ALLOW_WRITE_DEBUGFS is
# not defined), POWER_STATE_SET (genpd needs a consumer device), RESET (no
# sysfs for reset lines) or VOLTAGE_LEVEL_SET (needs a regulator consumer
# driver that this kernel does not build). The raw-mode debugfs interface
# (RAW_MODE_SUPPORT + COEX) sends exactly those commands; the read-back then
# goes through the normal Linux drivers wherever one exists (clk, regulator).

PATH=/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp

say() { echo "@vscmi $*"; }
TOOL=/bin/vscmi-guest
DBG=/sys/kernel/debug
# Every file read that may reach the server is bounded: a dead back-end
# must make the test fail, never hang it.
T=${VSCMI_T:-30}
rd() { timeout "$T" cat "$1" 2>/dev/null | head -n 1; }
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

# Wait (bounded) until the SCMI core has finished probing.
wait_probe() {
    i=0
    while [ "$i" -lt 100 ]; do
        dmesg | grep -q 'SCMI Protocol v' && return 0
        dmesg | grep -qi 'scmi.*\(fail\|error\|timed out\)' && [ "$i" -gt 20 ] && return 1
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}

hwmon_dir() {
    for d in /sys/class/hwmon/hwmon*; do
        [ "$(cat "$d/name" 2>/dev/null)" = scmi_sensors ] && { echo "$d"; return 0; }
    done
    return 1
}

# resolve FILE: "hwmon:ATTR" names ATTR_input of the scmi_sensors hwmon
# device (its number is not fixed); anything else is a path.
resolve() {
    case "$1" in
        hwmon:*) d=$(hwmon_dir) && echo "$d/${1#hwmon:}_input" || echo /nonexistent ;;
        *) echo "$1" ;;
    esac
}

do_probe() {
    dmesg | grep -i 'scmi' | while IFS= read -r line; do
        say "dmesg $(echo "$line" | sed 's/^\[[^]]*\] *//' | tr ' ' '_')"
    done
    # Where the SCMI virtio device (device id 32) sits: its sysfs path names
    # the transport (virtio-mmio platform device or a PCI function).
    for d in /sys/bus/virtio/devices/*; do
        [ "$(cat "$d/device" 2>/dev/null)" = 0x0020 ] && say "scmi-virtio path=$(readlink -f "$d")"
    done
    say "probe-done"
}

do_hwmon() {
    anchor=$1
    d=$(hwmon_dir) || { say "hwmon dir=none"; return; }
    attrs=""
    for f in "$d"/*_input; do attrs="$attrs $(basename "$f" _input)"; done
    # One process reads anchor, every input, anchor again (milliseconds),
    # retried until the anchor did not move: then all values are of one
    # instant of the server's time.
    try=1
    while [ "$try" -le 20 ]; do
        set -- "$d/${anchor}_input"
        for a in $attrs; do set -- "$@" "$d/${a}_input"; done
        vals=$(timeout "$T" $TOOL read-files "$@" "$d/${anchor}_input")
        a0=$(echo "$vals" | head -n 1)
        a1=$(echo "$vals" | tail -n 1)
        [ "$a0" = "$a1" ] && break
        try=$((try + 1))
    done
    say "hwmon-snapshot anchor=$anchor a0=${a0:-error} a1=${a1:-error} tries=$try"
    k=2
    for a in $attrs; do
        v=$(echo "$vals" | sed -n "${k}p")
        l=$(cat "$d/${a}_label" 2>/dev/null | tr ' ' '_')
        say "hwmon attr=$a label=${l:-none} value=${v:-error}"
        k=$((k + 1))
    done
}

do_hwmon_ramp() {
    d=$(hwmon_dir) || { say "hwmon-ramp dir=none"; return; }
    t0=$(uptime_ms); v0=$(rd "$d/$1_input")
    sleep "$2"
    t1=$(uptime_ms); v1=$(rd "$d/$1_input")
    say "hwmon-ramp attr=$1 v0=${v0:-error} v1=${v1:-error} dt_ms=$((t1 - t0))"
}

do_clk_summary() {
    # Columns: name enable prepare protect rate accuracy phase duty [hw-enable]
    timeout "$T" cat "$DBG/clk/clk_summary" 2>/dev/null | awk 'NR > 3 && NF >= 5 { print "@vscmi clk name=" $1 " rate=" $5 }'
    say "clk-summary-done"
}

do_clk_set() {
    id=$1 rate=$2 name=$3
    lo=$((rate & 0xffffffff)) hi=$((rate >> 32))
    before=$(rd "$DBG/clk/$name/clk_rate")
    set=$(timeout "$T" $TOOL raw 0x14 0x5 0 "$id" "$lo" "$hi" | sed 's/ .*//')
    after=$(rd "$DBG/clk/$name/clk_rate")
    get=$(timeout "$T" $TOOL raw 0x14 0x6 "$id" | sed 's/.*words=//')
    say "clk-set id=$id name=$name want=$rate before=${before:-error} set_${set:-status=none} after=${after:-error} raw_get=${get:-none}"
}

do_genpd() {
    timeout "$T" cat "$DBG/pm_genpd/pm_genpd_summary" 2>/dev/null \
        | awk 'NF >= 2 && $2 ~ /^(on|off)/ && $1 != "domain" { print "@vscmi genpd name=" $1 " status=" $2 }'
    say "genpd-done"
}

# state word after "words="
word0() { sed -n 's/.*words=\(0x[0-9a-f]*\).*/\1/p'; }
status_of() { sed -n 's/^status=\([-0-9a-z]*\).*/\1/p'; }

do_power() {
    id=$1
    g0=$(timeout "$T" $TOOL raw 0x11 0x5 "$id" | word0)
    s_on=$(timeout "$T" $TOOL raw 0x11 0x4 0 "$id" 0 | status_of)
    g_on=$(timeout "$T" $TOOL raw 0x11 0x5 "$id" | word0)
    s_off=$(timeout "$T" $TOOL raw 0x11 0x4 0 "$id" 0x40000000 | status_of)
    g_off=$(timeout "$T" $TOOL raw 0x11 0x5 "$id" | word0)
    say "power id=$id initial=${g0:-none} set_on=${s_on:-none} state_on=${g_on:-none} set_off=${s_off:-none} state_off=${g_off:-none}"
}

do_reset() {
    id=$1 count=$2
    a=$(timeout "$T" $TOOL raw 0x16 0x4 "$id" 2 0 | status_of)
    d=$(timeout "$T" $TOOL raw 0x16 0x4 "$id" 0 0 | status_of)
    r=$(timeout "$T" $TOOL raw 0x16 0x4 "$id" 1 0 | status_of)
    bad=$(timeout "$T" $TOOL raw 0x16 0x4 "$count" 1 0 | status_of)
    say "reset id=$id assert=${a:-none} deassert=${d:-none} autonomous=${r:-none} out_of_range=${bad:-none}"
}

do_regulator() {
    name=$1 id=$2 uv=$3 r=""
    for x in /sys/class/regulator/regulator.*; do
        [ "$(cat "$x/name" 2>/dev/null)" = "$name" ] && r=$x
    done
    [ -n "$r" ] || { say "regulator name=$name found=0"; return; }
    before=$(rd "$r/microvolts")
    set=$(timeout "$T" $TOOL raw 0x17 0x7 "$id" 0 "$uv" | status_of)
    after=$(rd "$r/microvolts")
    get=$(timeout "$T" $TOOL raw 0x17 0x8 "$id" | word0)
    say "regulator name=$name found=1 id=$id want=$uv before=${before:-error} set=${set:-none} after=${after:-error} raw_get=${get:-none}"
}

do_cpufreq() {
    p=/sys/devices/system/cpu/cpufreq/policy$1
    khz=$2
    [ -d "$p" ] || { say "cpufreq policy=$1 present=0"; return; }
    drv=$(cat "$p/scaling_driver" 2>/dev/null)
    avail=$(cat "$p/scaling_available_frequencies" 2>/dev/null | tr -s ' ' ',' | sed 's/,$//')
    boost=$(cat "$p/scaling_boost_frequencies" 2>/dev/null | tr -s ' ' ',' | sed 's/,$//')
    before=$(rd "$p/cpuinfo_cur_freq")
    echo userspace >"$p/scaling_governor" 2>/dev/null
    gov=$(cat "$p/scaling_governor" 2>/dev/null)
    echo "$khz" >"$p/scaling_setspeed" 2>/dev/null
    after=$(rd "$p/cpuinfo_cur_freq")
    say "cpufreq policy=$1 present=1 driver=${drv:-none} governor=${gov:-none} available=${avail:-none} boost=${boost:-none} before=${before:-error} want=$khz after=${after:-error}"
}

do_raw() {
    out=$(timeout "$T" $TOOL raw "$@")
    say "raw args=$(echo "$*" | tr ' ' ',') $out"
}

do_kill_wait() {
    say "kill-now"
    sleep "$1"
    t0=$(uptime_ms)
    f=$(resolve "$2")
    if [ "$f" = - ]; then
        v=skipped
    else
        v=$(timeout "$T" cat "$f" 2>&1 | head -n 1 | tr ' ' '_')
    fi
    t1=$(uptime_ms)
    raw=$(timeout 6 $TOOL raw 0x10 0x0 | tr ' ' '_')
    t2=$(uptime_ms)
    say "after-kill read=${v:-empty} read_ms=$((t1 - t0)) raw=${raw:-none} raw_ms=$((t2 - t1))"
}

do_bench() {
    # idle window (the host measures the back-end's idle CPU rate), then a
    # pause, then the series; the host samples at each line.
    say "bench-idle"
    sleep 3
    say "bench-ready"
    sleep 1
    out=$(timeout 3000 $TOOL "$@")
    say "bench-result what=$1 $out"
    sleep 3
    say "bench-done"
}

say "boot uptime_ms=$(uptime_ms) kernel=$(uname -r)"
if wait_probe; then say "scmi-probed"; else say "scmi-not-probed"; fi

while read -r cmd args; do
    case "$cmd" in
        ''|'#'*) continue ;;
        probe) do_probe ;;
        hwmon) do_hwmon $args ;;
        hwmon_ramp) do_hwmon_ramp $args ;;
        clk_summary) do_clk_summary ;;
        clk_set) do_clk_set $args ;;
        genpd) do_genpd ;;
        power) do_power $args ;;
        reset) do_reset $args ;;
        regulator) do_regulator $args ;;
        cpufreq) do_cpufreq $args ;;
        raw) do_raw $args ;;
        kill_wait) do_kill_wait $args ;;
        bench_raw) do_bench bench-raw $args ;;
        bench_file) set -- $args; do_bench bench-file "$1" "$(resolve "$2")" ;;
        *) say "unknown-command $cmd" ;;
    esac
done </etc/vscmi/plan

say "done uptime_ms=$(uptime_ms)"
poweroff -f
