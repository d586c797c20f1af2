#!/usr/bin/env bash
# The project's whole test command (README, .ci/run). Installs what it needs,
# idempotently, then runs every check. Fails on the first failing step and
# refuses to pass if a step ran no test.
#
#   scripts/test.sh            everything
#   FUZZ_SECONDS=60 scripts/test.sh   longer fuzz runs (default 15 s per target)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
FUZZ_SECONDS="${FUZZ_SECONDS:-15}"
# Firmware (no_std) crates: built for the bare-metal targets and checked there.
FIRMWARE_CRATES=(virtio-backend scmi-server virtio-scmi platform-sim platform-host-vhost-user)

START=$SECONDS
SUMMARY=()
step() { printf '\n=== %s\n' "$*"; STEP_START=$SECONDS; }
done_step() { SUMMARY+=("$(printf '%-44s %4ss  %s' "$1" $((SECONDS - STEP_START)) "${2:-ok}")"); }
die() { printf 'test.sh: FAILED: %s\n' "$*" >&2; exit 1; }

# checked NAME VERDICT CMD...: runs CMD, its output on the terminal and in
# $LOG; fails the run unless CMD succeeds and prints a line starting with
# VERDICT.
checked() {
    local name=$1 verdict=$2
    shift 2
    "$@" 2>&1 | tee "$LOG"
    [ "${PIPESTATUS[0]}" -eq 0 ] || die "$name"
    grep -q "^$verdict" "$LOG" || die "$name: no verdict"
}

# Counts "N passed" over all `test result:` lines of a cargo test log and
# fails when a run executed nothing or anything failed.
count_passed() {
    local log=$1 what=$2 passed failed
    passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
    failed=$(grep -Ec 'test result: FAILED' "$log" || true)
    [ "$failed" -eq 0 ] || die "$what: failing tests"
    [ "$passed" -gt 0 ] || die "$what: no test executed"
    echo "$passed"
}

step "host setup (rustup targets and components, cargo-fuzz, valgrind, dtc)"
scripts/setup-host.sh rust tools
done_step "setup"

step "cargo fmt --check"
cargo fmt --all --check
(cd tests/fuzz && cargo +nightly fmt --check)
done_step "fmt"

step "cargo clippy (host, all targets) -D warnings"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
done_step "clippy host"

step "cargo clippy (aarch64-unknown-none, thumbv8r-none-eabihf) -D warnings"
for c in "${FIRMWARE_CRATES[@]}" static-device transport-shmem transport-ffa platform-arm-common \
    platform-qemu-virt platform-xen transport-xen firmware-frontend scmi-fw-qemu-virt scmi-sp-qemu-virt \
    scmi-xen-domu; do
    cargo clippy -p "$c" --target aarch64-unknown-none --locked -- -D warnings
done
cargo clippy -p scmi-fw-qemu-virt --target aarch64-unknown-none --features frontend --locked -- -D warnings
# The FF-A normal-world front-end (BL33) alone: it links an allocator.
cargo clippy -p ffa-frontend --target aarch64-unknown-none --locked -- -D warnings
cargo clippy -p scmi-sp-qemu-virt --target aarch64-unknown-none --features measure --locked -- -D warnings
cargo clippy -p xen-smoke --target aarch64-unknown-none --locked -- -D warnings
cargo clippy -p xen-pair --target aarch64-unknown-none --locked -- -D warnings
# The stand-in SPMC runs at EL3: soft-float, it never touches FP/SIMD state.
cargo clippy -p spmc-el3 --target aarch64-unknown-none-softfloat --locked -- -D warnings
cargo clippy -p platform-qemu-virt --target aarch64-unknown-none --examples --locked -- -D warnings
# The Cortex-R52 image (Thumb-2; tier 3: nightly -Zbuild-std, own target dir).
cargo +nightly clippy -p scmi-fw-mps3-an536 --target thumbv8r-none-eabihf -Zbuild-std=core \
    --target-dir target/thumbv8r --locked -- -D warnings
cargo +nightly clippy -p scmi-fw-mps3-an536 -p platform-mps3-an536 -p platform-arm-common --target thumbv8r-none-eabihf \
    -Zbuild-std=core,alloc --features frontend --target-dir target/thumbv8r --locked -- -D warnings
cargo +nightly clippy -p platform-mps3-an536 --target thumbv8r-none-eabihf -Zbuild-std=core --examples \
    --target-dir target/thumbv8r --locked -- -D warnings
done_step "clippy bare-metal targets"

step "cargo test (workspace)"
LOG=$(mktemp)
cargo test --workspace --all-features --locked 2>&1 | tee "$LOG"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "cargo test"
n=$(count_passed "$LOG" "cargo test")
done_step "cargo test" "$n tests passed"

step "cross build: aarch64-unknown-none (stable)"
for c in "${FIRMWARE_CRATES[@]}"; do
    cargo build -p "$c" --target aarch64-unknown-none --release --locked
done
done_step "build aarch64-unknown-none"

step "cross build: armv8r-none-eabihf (nightly, -Zbuild-std=core)"
for c in "${FIRMWARE_CRATES[@]}"; do
    cargo +nightly build -p "$c" --target armv8r-none-eabihf -Zbuild-std=core \
        --release --target-dir target/armv8r
done
done_step "build armv8r-none-eabihf"

step "static device: the whole SCMI device in a static, bare-metal under QEMU (aarch64 virt, Cortex-R52 mps3-an536)"
# Needs QEMU 10 (qemu-system-aarch64 and -arm); prints the device's RAM and
# the deepest stack of one SCMI round trip (stack painting) on both targets.
scripts/setup-host.sh qemu
checked "static device" 'static-device: ok' tests/static-device/run.sh
done_step "static device (QEMU)" "$(grep -E '^stack of one round trip' "$LOG" | tr -s ' ')"

step "firmware: SCMI images for QEMU virt (AArch64) and MPS3-AN536 (Cortex-R52), front-end on core 1"
# Both machines: the tour (discovery as Linux does it, every protocol,
# notifications, delayed responses, a burst) and the hostile front-end, each
# judged by the front-end's own verdict and compared with its golden file;
# the product images must link no allocator; their sizes and panic sites are
# printed.
checked "firmware" 'firmware: ok' scripts/firmware.sh test
done_step "firmware (QEMU, 2 machines x 2 runs)" "$(grep -c '^result: .* 0 failed' "$LOG") runs passed"

step "firmware figures: sizes, stack, instructions per SCMI round trip (figures, not pass/fail)"
scripts/firmware.sh figures
done_step "firmware figures"

step "FF-A secure partition: the SP image, its package, and both images under a stand-in SPMC (QEMU)"
# Hafnium and TF-A are not in the package registries: the partition's
# transport and the normal-world driver ran through the scripted SPMC double
# in cargo test (tests/frontend/tests/ffa.rs); here the S-EL1 image is built,
# packaged (SPKG v2) and read back, its allocator and panic sites checked,
# and the unchanged package and BL33 front-end run the tour in QEMU virt
# (secure=on) against tests/spmc-el3, a stand-in SPMC at EL3 (golden output).
scripts/setup-host.sh qemu
checked "ffa" 'ffa: ok' scripts/ffa.sh test
done_step "ffa package + stand-in (QEMU)" "$(grep -E '^sp image' "$LOG" | cut -d';' -f1); $(grep -E '^result:' "$LOG" | tail -n 1)"

step "Xen: DomUs of ours under Debian's Xen 4.17 (dom0less, QEMU): the hypercalls; the SCMI back-end DomU serving a driver DomU, well-behaved and hostile"
# Against the real hypervisor: platform-xen's hypercalls (console,
# add_to_physmap, event channel send and poll, grant map and unmap); then
# the product back-end image (scmi-xen-domu, from manifests/xen-domu.dts)
# in DomU 2 serving the front-end in DomU 1 over virtio-msg on a page it
# granted, every byte of its memory through grants: the tour, a restart, a
# measurement; then a hostile front-end. Judged by the guests' own
# verdicts.
checked "xen smoke" 'xen: smoke ok' scripts/xen.sh smoke
smoke=$(grep -c ': ok: ' "$LOG")
checked "xen pair" 'xen: pair ok' scripts/xen.sh pair
pair=$(grep -E '^result:' "$LOG")
checked "xen hostile" 'xen: hostile ok' scripts/xen.sh hostile
done_step "xen (Xen 4.17, QEMU)" "smoke: $smoke checks; pair: $pair; hostile: $(grep -E '^result:' "$LOG")"

step "Xen figures: instructions per round trip, hypercalls per request, sizes, glue lines (figures, not pass/fail)"
scripts/xen.sh figures
done_step "xen figures"

step "FF-A figures: sizes, glue lines, instructions per round trip (figures, not pass/fail)"
scripts/ffa.sh figures
done_step "ffa figures"

step "miri: the crates with unsafe code (virtio-backend's memory module, the stage-1 pool, platform-xen's guest pages)"
# virtio-backend: all its unsafe lives in its memory module. The stage-1
# table pool of the FF-A partition: pointer arithmetic over a static pool.
# platform-xen: the shared info page's pending bits, read atomically through
# a raw pointer, and the runstate area. The libraries allocate nothing; only
# test helpers leak (Box::leak to hand out 'static values), so leak reports
# are noise.
counts=""
for target in "virtio-backend" "platform-qemu-virt stage1" "platform-xen"; do
    # shellcheck disable=SC2086 # package and test filter
    MIRIFLAGS="${MIRIFLAGS:-} -Zmiri-ignore-leaks" cargo +nightly miri test -p $target 2>&1 | tee "$LOG"
    [ "${PIPESTATUS[0]}" -eq 0 ] || die "miri $target"
    counts="${counts:+$counts + }$(count_passed "$LOG" "miri $target")"
done
done_step "miri virtio-backend, stage1, platform-xen" "$counts tests passed"

step "demo: virtio-drivers front-end against our device core"
cargo run --release --locked -p frontend-tests --example demo
done_step "demo"

step "benchmark: instructions per request (figures, not a pass/fail test)"
cargo run --release --locked -p bench -- virtqueue
done_step "bench virtqueue"

step "benchmark: instructions per SCMI round trip (figures, not a pass/fail test)"
cargo run --release --locked -p bench --bin bench-scmi
done_step "bench scmi"

step "fuzz: ${FUZZ_SECONDS}s per target"
tests/fuzz/run.sh "$FUZZ_SECONDS"
done_step "fuzz smoke"

step "guest test: unmodified Linux 6.12 SCMI driver over vhost-user (QEMU, arm64)"
# Installs QEMU 10, the kernel toolchain/source and rust-vmm's
# vhost-device-scmi (the peer); the kernel Image is built once and cached in
# ${VSCMI_CACHE:-target/qemu-cache}.
scripts/setup-host.sh qemu linux vhost-device-scmi
# The harness against the peer (Base + one fake sensor): checks the harness
# itself and the robustness path with a back-end we did not write.
qemu/linux/guest-test.sh --profile sensors-only 2>&1 | tee "$LOG"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "guest test (vhost-device-scmi)"
peer=$(grep -Eo '^[0-9]+ passed, 0 failed' "$LOG" | cut -d' ' -f1)
msg="peer: $peer checks"
# Our daemon, configured from the platform manifest; the guest's SCMI node
# is generated from the same file, so both sides agree by construction.
cargo build --release --locked -p partition-host --bin scmi-vhost-user
cargo build --release --locked -p manifest --bin manifest-tool
MANIFEST="$REPO/manifests/host-vhost-user.dts"
VSCMI_DT_FRAGMENT_CMD="$REPO/target/release/manifest-tool linux-dt $MANIFEST" \
    VSCMI_DAEMON="$REPO/target/release/scmi-vhost-user --manifest $MANIFEST --socket-path {sock}" \
    qemu/linux/guest-test.sh --profile sim 2>&1 | tee "$LOG"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "guest test (scmi-vhost-user)"
ours=$(grep -Eo '^[0-9]+ passed, 0 failed' "$LOG" | cut -d' ' -f1)
[ -n "$ours" ] && [ "$ours" -gt 0 ] || die "guest test (scmi-vhost-user): no check ran"
msg="$msg, ours: $ours checks"
# The same over virtio-pci (`-device vhost-user-scmi-pci`): one boot with the
# full plan; robustness was covered above on virtio-mmio.
VSCMI_DT_FRAGMENT_CMD="$REPO/target/release/manifest-tool linux-dt $MANIFEST" \
    VSCMI_DAEMON="$REPO/target/release/scmi-vhost-user --manifest $MANIFEST --socket-path {sock}" \
    qemu/linux/guest-test.sh --profile sim --pci --skip-kill --skip-restart 2>&1 | tee "$LOG"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "guest test (scmi-vhost-user, virtio-pci)"
pci=$(grep -Eo '^[0-9]+ passed, 0 failed' "$LOG" | cut -d' ' -f1)
[ -n "$pci" ] && [ "$pci" -gt 0 ] || die "guest test (virtio-pci): no check ran"
msg="$msg, ours over PCI: $pci checks"
done_step "guest test" "$msg"

step "benchmark: guest sensor reads, scmi-vhost-user vs vhost-device-scmi (figures)"
VSCMI_DAEMON="$REPO/target/release/scmi-vhost-user --manifest $MANIFEST --socket-path {sock}" \
    qemu/linux/guest-bench.sh 10000
# The same on one CPU (QEMU, both daemons and wake-floor share it): no
# cross-CPU wakeups, the placement where the one-CPU floors apply.
last_cpu=$(($(nproc) - 1))
VSCMI_WORK="$REPO/target/guest-bench-cpu$last_cpu" \
    VSCMI_DAEMON="$REPO/target/release/scmi-vhost-user --manifest $MANIFEST --socket-path {sock}" \
    taskset -c "$last_cpu" qemu/linux/guest-bench.sh 10000
done_step "bench guest" "unpinned, then on CPU $last_cpu only"

rm -f "$LOG"
printf '\n=== summary (%ss)\n' $((SECONDS - START))
printf '%s\n' "${SUMMARY[@]}"
echo "ALL CHECKS PASSED"
