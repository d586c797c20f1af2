# shellcheck shell=bash
# Profile: our SCMI server with the simulated platform of
# manifests/host-vhost-user.dts (the daemon's built-in SoC), served by our
# vhost-user daemon (VSCMI_DAEMON).
# Expected values are read off that manifest and kept here as the test's
# own oracle: /scmi sensors (names, units, scales, sim-wave formulas),
# clocks (34), power domains and their boot states, resets, voltage
# domains, perf domains (cpu-little = perf domain 0).
# Sourced by guest-test.sh (needs check, check_probe, vs, kv from there).

# The DT fragment is generated from the same manifest (manifest-tool
# linux-dt) unless VSCMI_DT_FRAGMENT_CMD names another source.
PROFILE_FRAGMENT=""
PROFILE_FRAGMENT_CMD="cargo run -q --release --locked --manifest-path $REPO/Cargo.toml -p manifest --bin manifest-tool -- linux-dt $REPO/manifests/host-vhost-user.dts"
# Base 2.1, vendor "rust-scmi" (the manifest's /scmi vendor); the
# sub-vendor names the build and is not pinned.
PROFILE_VENDOR="${VSCMI_VENDOR:-rust-scmi:}"
PROFILE_BASE_VERSION=2.1
# CONFIG_THERMAL is off in the test kernel, so scmi-hwmon cannot register
# thermal zones for the temperature sensors (-EOPNOTSUPP, harmless).
PROFILE_DMESG_ALLOW='Thermal_zone_misconfigured_for_.*err=-524'
profile_default_daemon() { die "profile sim needs VSCMI_DAEMON (our vhost-user daemon, '{sock}' for the socket)"; }

# scmi-hwmon channels of the sim sensors: temp/in/curr/power/energy only,
# numbered per type in sensor-index order (in* from 0, the others from 1).
# kind tri: base amp period phase (sim-triangle in the manifest; platforms/sim
# sensor.rs eval()); ramp: per_s.
# mul/div: hwmon scaling (drivers/hwmon/scmi-hwmon.c scmi_hwmon_scale):
# 10^(scale + 3) for C/V/A, 10^(scale + 6) for W/J.
SIM_HWMON='
temp1   cpu_little_temp               tri  35000  40000  20000 0     1       1
temp2   cpu_big_cluster_temperature   tri  40000  45000  16000 4000  1       1
temp3   gpu_temp                      tri  38000  30000  12000 0     1       1
temp4   ddr_temp                      tri  45000  10000  60000 0     1       1
temp5   outdoor_probe_temperature     tri  -20000 60000  30000 0     1       1
temp6   cpu_core_temperatures         tri  40000  20000  10000 0     1       1
in0     vdd_cpu_little                tri  750    250    8000  0     1       1
in1     vdd_cpu_big                   tri  800    300    8000  2000  1       1
in2     vdd_gpu                       tri  900000 100000 5000  0     1       1000
in3     vdd_ddr_phy_supply            tri  1100   20     4000  0     1       1
curr1   cpu_little_curr               tri  500    1500   6000  0     1       1
curr2   cpu_big_current               tri  800    3200   6000  1500  1       1
power1  soc_power                     tri  1500   6000   10000 0     1000    1
power2  gpu_power                     tri  500    4000   10000 5000  1000    1
energy1 soc_energy                    ramp 2500   0      0     0     1000    1
energy2 battery_energy_consumed_total ramp 3      0      0     0     1000000 1
'
SIM_CLOCKS="osc_24m osc_32k audio_ext_osc pll_cpu pll_sys pll_periph pll_ddr_vco pll_video
pll_audio cpu_cluster0_core cpu_cluster1_core gpu_core ddr_controller npu_accelerator_core
vpu_codec display_pixel uart0_baud uart1_baud i2c0_bus i2c1_bus spi0_serial_clock_output
sdmmc0_card_clock sdmmc1_card_clock usb3_phy_reference pcie_ref_100m eth_rgmii_tx eth_ptp_ref
audio_i2s_mclk pwm_generator_clock timer_systick watchdog crypto_engine_core camera_sensor_mclk
clkout_observation_mux"
# power.rs DOMAINS with BOOT (ON = on, OFF = off); pd_ignore_unused keeps them.
SIM_GENPD="cpu-cluster0:on cpu-cluster1:on gpu:off video-decoder-engine:off display:on
usb3-controller-subsystem:off pcie0:on audio-dsp:off camera-isp-pipeline-domain:off
always-on-sensor-hub:on"

profile_plan_full() {
    cat <<'PLAN'
probe
hwmon energy1
hwmon_ramp energy1 2
clk_summary
# pll_periph (id 5): range 100..1000 MHz step 50 MHz, boot 600 MHz
clk_set 5 750000000 pll_periph
genpd
# gpu (id 2) boots off
power 2
# uart0 (id 0); 10 domains, so id 10 is out of range
reset 0 10
# vdd_soc (id 2): levels 750/800/850/900 mV, boot 800 mV
regulator vdd_soc 2 850000
# cpu@0 -> perf domain 0 (cpu-little): 300..1700 MHz step 200, boot 1500
cpufreq 0 700000
PLAN
}
profile_plan_restart() { printf 'probe\nhwmon energy1\nclk_summary\n'; }
profile_plan_kill() { printf 'probe\nkill_wait 3 hwmon:temp1\n'; }
# bench: SENSOR_READING_GET of gpu_temp (id 2: sync, scalar, no timestamp).
profile_bench_raw() { echo "0x15 0x6 2 0"; }
profile_bench_file() { echo "hwmon:temp3"; }

# check_hwmon LOG: labels, bounds, and the exact value at the snapshot's time.
# The daemon's sensor time t (ms) follows from soc_energy (energy1 =
# floor(2.5 t) * 1000 uJ); when energy1 read the same before and after the
# snapshot, every value in it was taken at that t and must equal the wave
# formula exactly.
check_hwmon() {
    local log=$1 snap lines
    snap=$(vs "$log" hwmon-snapshot | head -n 1)
    lines=$(vs "$log" hwmon)
    local res
    res=$(awk -v a0="$(kv "$snap" a0)" -v a1="$(kv "$snap" a1)" -v table="$SIM_HWMON" '
        function tri(t, base, amp, period, phase,   half, at, x) {
            if (period < 2) period = 2
            half = int(period / 2); at = (t + phase) % period
            x = (at < half) ? at : period - at
            return base + int(amp * x / half)
        }
        function fl(x) { return (x >= 0) ? int(x) : -int(-x) }
        BEGIN {
            n = split(table, rows, "\n")
            for (i = 1; i <= n; i++) {
                if (split(rows[i], f, " ") < 9) continue
                a = f[1]; order[++cnt] = a
                label[a] = f[2]; kind[a] = f[3]; base[a] = f[4]; amp[a] = f[5]
                per[a] = f[6]; ph[a] = f[7]; mul[a] = f[8]; dv[a] = f[9]
            }
            stable = (a0 != "" && a0 == a1 && a0 ~ /^[0-9]+$/)
            if (stable) {
                k = a0 / 1000; t = int((2 * k + 4) / 5)
                if (int(5 * t / 2) != k) { stable = 0; badanchor = 1 }
            }
        }
        {
            for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            got[v["attr"]] = v["value"]; glabel[v["attr"]] = v["label"]
        }
        END {
            bad = ""; exact = 0
            for (i = 1; i <= cnt; i++) {
                a = order[i]
                if (!(a in got)) { bad = bad " " a ":missing"; continue }
                if (glabel[a] != label[a]) bad = bad " " a ":label=" glabel[a]
                val = got[a]
                if (val !~ /^-?[0-9]+$/) { bad = bad " " a ":value=" val; continue }
                if (kind[a] == "tri") {
                    lo = base[a]; hi = base[a] + amp[a]
                    if (lo > hi) { x = lo; lo = hi; hi = x }
                    lo = fl(lo * mul[a] / dv[a]); hi = fl(hi * mul[a] / dv[a])
                    if (val + 0 < lo || val + 0 > hi) bad = bad " " a "=" val ":outside[" lo "," hi "]"
                    if (stable) {
                        want = fl(tri(t, base[a], amp[a], per[a], ph[a]) * mul[a] / dv[a])
                        if (val + 0 != want) bad = bad " " a "=" val ":want" want "@t=" t
                        else exact++
                    }
                } else if (stable) {
                    want = int(base[a] * t / 1000) * mul[a]
                    if (val + 0 != want) bad = bad " " a "=" val ":want" want "@t=" t
                    else exact++
                }
            }
            for (a in got) if (!(a in label)) bad = bad " extra:" a
            printf "%s|%d|%s|%s\n", (bad == "" ? 1 : 0), exact, (stable ? t : "unstable"), bad
        }' <<<"$lines")
    local ok exact t bad
    IFS='|' read -r ok exact t bad <<<"$res"
    check "hwmon: 16 channels, labels, bounds" "$(grep -q 'outside\|missing\|label=\|extra\|value=' <<<"$bad" || echo 1)" \
        "$(wc -l <<<"$lines") inputs$(grep -o '[^ ]*\(outside\|missing\|label=\|extra\|value=\)[^ ]*' <<<"$bad" | head -n 4 | tr '\n' ' ' | sed 's/^/; /')"
    check "hwmon: exact values at sensor time" "$([ "$ok" = 1 ] && [ "$t" != unstable ] && echo 1)" \
        "t=${t}ms (from energy1), $exact/16 equal to the wave formula$([ -z "$bad" ] || echo ";$bad" | cut -c1-200)"
}

profile_check_full() {
    local log=$1 line
    check_probe "$log" "$PROFILE_VENDOR"
    check_hwmon "$log"

    line=$(vs "$log" hwmon-ramp | head -n 1)
    local v0 v1 dt rate
    v0=$(kv "$line" v0) v1=$(kv "$line" v1) dt=$(kv "$line" dt_ms)
    rate=$(awk -v a="$v0" -v b="$v1" -v d="$dt" 'BEGIN { if (d > 0 && a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/) printf "%d", (b - a) / d; else print -1 }')
    # soc_energy grows 2.5 J/s = 2500 uJ/ms; ticks and guest timing blur it.
    check "hwmon: energy ramp 2500 uJ/ms" "$([ "$rate" -ge 2000 ] && [ "$rate" -le 3000 ] && echo 1)" \
        "$v0 -> $v1 uJ in ${dt} ms = $rate uJ/ms"

    local names missing=() c
    names=" $(vs "$log" clk | sed -n 's/^name=\([^ ]*\).*/\1/p' | tr '\n' ' ') "
    for c in $SIM_CLOCKS; do [[ "$names" == *" $c "* ]] || missing+=("$c"); done
    local r24 r32
    r24=$(vs "$log" clk | sed -n 's/^name=osc_24m rate=//p' | head -n 1)
    r32=$(vs "$log" clk | sed -n 's/^name=osc_32k rate=//p' | head -n 1)
    check "clocks in clk_summary" "$([ "${#missing[@]}" -eq 0 ] && [ "$r24" = 24000000 ] && [ "$r32" = 32768 ] && echo 1)" \
        "$(( $(wc -w <<<"$SIM_CLOCKS") - ${#missing[@]} ))/34 present${missing[*]:+, missing: ${missing[*]}}; osc_24m=$r24 osc_32k=$r32"

    line=$(vs "$log" clk-set | head -n 1)
    local raw_rate=none w
    w=$(kv "$line" raw_get)
    if [[ "$w" =~ ^(0x[0-9a-f]{8}),(0x[0-9a-f]{8})$ ]]; then
        raw_rate=$(( BASH_REMATCH[1] + (BASH_REMATCH[2] << 32) ))
    fi
    check "clock rate set sticks" \
        "$([ "$(kv "$line" set_status)" = 0 ] && [ "$(kv "$line" before)" = 600000000 ] && [ "$(kv "$line" after)" = 750000000 ] && [ "$raw_rate" = 750000000 ] && echo 1)" \
        "pll_periph raw CLOCK_RATE_SET 750 MHz: status=$(kv "$line" set_status), Linux clk_rate $(kv "$line" before) -> $(kv "$line" after), CLOCK_RATE_GET=$raw_rate"

    local want got bad=()
    for want in $SIM_GENPD; do
        got=$(vs "$log" genpd | sed -n "s/^name=${want%%:*} status=//p" | head -n 1)
        [[ "$got" == "${want#*:}"* ]] || bad+=("${want%%:*}=${got:-absent}")
    done
    check "power domains (pm_genpd_summary)" "$([ "${#bad[@]}" -eq 0 ] && echo 1)" \
        "10 genpds with boot states${bad[*]:+; wrong: ${bad[*]}}"

    line=$(vs "$log" power | head -n 1)
    check "power domain on/off (raw)" \
        "$([ "$(kv "$line" initial)" = 0x40000000 ] && [ "$(kv "$line" set_on)" = 0 ] && [ "$(kv "$line" state_on)" = 0x00000000 ] && [ "$(kv "$line" set_off)" = 0 ] && [ "$(kv "$line" state_off)" = 0x40000000 ] && echo 1)" \
        "gpu: $(kv "$line" initial) -> set on ($(kv "$line" set_on)) $(kv "$line" state_on) -> set off ($(kv "$line" set_off)) $(kv "$line" state_off)"

    line=$(vs "$log" reset | head -n 1)
    check "reset line toggles (raw)" \
        "$([ "$(kv "$line" assert)" = 0 ] && [ "$(kv "$line" deassert)" = 0 ] && [ "$(kv "$line" autonomous)" = 0 ] && [ "$(kv "$line" out_of_range)" = -4 ] && echo 1)" \
        "uart0 assert=$(kv "$line" assert) deassert=$(kv "$line" deassert) autonomous=$(kv "$line" autonomous); id 10: $(kv "$line" out_of_range) (want -4 NOT_FOUND)"

    local nreg
    nreg=$(vs "$log" dmesg | grep -c '^scmi-regulator.*Regulator_.*_registered_for_domain' || true)
    check "regulators registered" "$([ "$nreg" -eq 8 ] && echo 1)" \
        "$nreg of 8 (voltage domains 8 and 9 have negative levels: no DT node)"

    line=$(vs "$log" regulator | head -n 1)
    check "regulator voltage set + read back" \
        "$([ "$(kv "$line" found)" = 1 ] && [ "$(kv "$line" before)" = 800000 ] && [ "$(kv "$line" set)" = 0 ] && [ "$(kv "$line" after)" = 850000 ] && [ "$(kv "$line" raw_get)" = 0x000cf850 ] && echo 1)" \
        "vdd_soc: sysfs microvolts $(kv "$line" before) -> raw LEVEL_SET 850000 ($(kv "$line" set)) -> sysfs $(kv "$line" after), LEVEL_GET $(kv "$line" raw_get) (want 0x000cf850 = 850000)"

    line=$(vs "$log" cpufreq | head -n 1)
    check "cpufreq through SCMI perf" \
        "$([ "$(kv "$line" driver)" = scmi ] && [ "$(kv "$line" available)" = 300000,500000,700000,900000,1100000,1300000,1500000 ] && [ "$(kv "$line" boost)" = 1700000 ] && [ "$(kv "$line" before)" = 1500000 ] && [ "$(kv "$line" after)" = 700000 ] && echo 1)" \
        "driver=$(kv "$line" driver) freqs=$(kv "$line" available) boost=$(kv "$line" boost); cur $(kv "$line" before) -> setspeed 700000 -> $(kv "$line" after) kHz"
}

profile_check_restart() {
    local log=$1 names c absent=0
    check_probe "$log" "$PROFILE_VENDOR"
    check_hwmon "$log"
    names=" $(vs "$log" clk | sed -n 's/^name=\([^ ]*\).*/\1/p' | tr '\n' ' ') "
    for c in $SIM_CLOCKS; do [[ "$names" == *" $c "* ]] || absent=$((absent + 1)); done
    check "clocks in clk_summary" "$([ "$absent" -eq 0 ] && echo 1)" "$((34 - absent))/34 present"
}
