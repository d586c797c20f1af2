# shellcheck shell=bash
# Profile: a back-end serving only Base and Sensor, i.e. rust-vmm's
# vhost-device-scmi with one fake device (3-axis accelerometer, m/s^2; each
# SENSOR_READING_GET returns value v, v+100, v+200 for the axes, with v
# counting up by one per read; vendor "rust-vmm", no sub-vendor).
# Used to develop and cross-check the harness, and as the bench peer.
# The accelerometer's unit is not one hwmon knows, so every check here goes
# through the raw-mode interface.
# Sourced by guest-test.sh (needs check, vs, kv from there).

PROFILE_FRAGMENT="$HERE/dt/sensors-only.dtsi"
PROFILE_FRAGMENT_CMD=""
PROFILE_BASE_VERSION=2.0
# Its only sensor is an accelerometer, which scmi-hwmon cannot show: with
# no channel its probe fails with -EINVAL.
PROFILE_DMESG_ALLOW='scmi-hwmon.*probe_with_driver_scmi-hwmon_failed_with_error_-22'
profile_default_daemon() {
    local b
    b=$(vdscmi_bin) || die "vhost-device-scmi not found: scripts/setup-host.sh vhost-device-scmi"
    echo "$b --socket-path {sock} -d fake,name=accel0"
}

profile_plan_full() {
    cat <<'PLAN'
probe
# SENSOR PROTOCOL_ATTRIBUTES: number of sensors in bits [15:0]
raw 0x15 0x1
# vhost-device-scmi starts its sensors disabled (READING_GET answers
# INVALID_PARAMETERS); Linux never enables a sensor, so SENSOR_CONFIG_SET
# (enable bit 0) first.
raw 0x15 0xa 0 1
# SENSOR_READING_GET (sensor 0, sync), twice
raw 0x15 0x6 0 0
raw 0x15 0x6 0 0
# SENSOR_DESCRIPTION_GET from index 0
raw 0x15 0x3 0
PLAN
}
profile_plan_restart() { profile_plan_full; }
profile_plan_kill() { printf 'probe\nraw 0x15 0xa 0 1\nkill_wait 3 -\n'; }
# bench: SENSOR_READING_GET of sensor 0 through raw mode.
profile_bench_raw() { echo "0x15 0x6 0 0"; }
profile_bench_file() { :; }

profile_check_full() {
    local log=$1 line n r1 r2 v1 v2 w
    check_probe "$log" "rust-vmm:"
    line=$(vs "$log" raw | grep '^args=0x15,0x1 ' | head -n 1)
    n=$(( $(kv "$line" words | cut -d, -f1) & 0xffff ))
    check "sensor count" "$([ "$(kv "$line" status)" = 0 ] && [ "$n" -eq 1 ] && echo 1)" "status=$(kv "$line" status) sensors=$n (want 1)"
    mapfile -t r < <(vs "$log" raw | grep '^args=0x15,0x6,0,0 ')
    r1=${r[0]:-}; r2=${r[1]:-}
    w=$(kv "$r1" words)
    v1=$(( $(cut -d, -f1 <<<"$w") )); v2=$(( $(kv "$r2" words | cut -d, -f1) ))
    local a1 a2
    a1=$(( $(cut -d, -f5 <<<"$w") )); a2=$(( $(cut -d, -f9 <<<"$w") ))
    check "sensor reading (raw READING_GET)" \
        "$([ "$(kv "$r1" status)" = 0 ] && [ "$(kv "$r1" len)" = 48 ] && [ $((v2)) -eq $((v1 + 1)) ] && [ "$a1" -eq $((v1 + 100)) ] && [ "$a2" -eq $((v1 + 200)) ] && echo 1)" \
        "len=$(kv "$r1" len) x=$v1 y=$a1 z=$a2, next x=$v2 (want 3 axes v,v+100,v+200, then v+1)"
}
profile_check_restart() { profile_check_full "$1"; }
