#!/usr/bin/env bash
# Builds the fuzz targets, seeds empty corpora, and fuzzes each target for
# SECONDS seconds, one after another.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]
#
# Corpora live in tests/fuzz/corpus/TARGET (kept between runs, so every
# run starts where the last one stopped); crash, timeout and OOM inputs in
# tests/fuzz/artifacts/TARGET, with the run's log beside them as last.log.
# Prints, per target, the executions, the coverage libFuzzer reported and
# the result; exits non-zero if any target crashed (or failed to build).
#
# Needs a nightly toolchain and cargo-fuzz. Non-interactive (fine with
# CI=true and no stdin). Extra libFuzzer flags can go in FUZZ_ARGS.
set -euo pipefail

usage() {
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
SECONDS_PER_TARGET=$1
shift
case $SECONDS_PER_TARGET in
'' | *[!0-9]*) usage ;;
esac
[ "$SECONDS_PER_TARGET" -ge 1 ] || usage

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE"

ALL_TARGETS=(rings virtio_msg mmio scmi_device ffa_bus amp_channel)
if [ $# -gt 0 ]; then
    TARGETS=("$@")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi
for t in "${TARGETS[@]}"; do
    case " ${ALL_TARGETS[*]} " in
    *" $t "*) ;;
    *)
        echo "unknown target '$t' (have: ${ALL_TARGETS[*]})" >&2
        exit 2
        ;;
    esac
done

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "run.sh: needs 'cargo +nightly fuzz' (rustup toolchain install nightly; cargo install cargo-fuzz)" >&2
    exit 2
fi

TRIPLE=$(rustc +nightly -vV | sed -n 's/^host: //p')
BIN_DIR="$HERE/target/$TRIPLE/release"

echo "== building ${TARGETS[*]}"
for t in "${TARGETS[@]}"; do
    cargo +nightly fuzz build --fuzz-dir "$HERE" "$t" </dev/null
done

failed=0
summary=()
for t in "${TARGETS[@]}"; do
    corpus="$HERE/corpus/$t"
    artifacts="$HERE/artifacts/$t"
    log="$artifacts/last.log"
    mkdir -p "$corpus" "$artifacts"
    if [ -z "$(ls -A "$corpus")" ]; then
        # Each target writes its hand-made seeds when asked to.
        VIRTIO_FUZZ_SEED_DIR="$corpus" "$BIN_DIR/$t" </dev/null >/dev/null 2>&1 || true
        echo "== $t: seeded $(ls -A "$corpus" | wc -l) inputs"
    fi
    echo "== fuzzing $t for ${SECONDS_PER_TARGET}s ($(ls -A "$corpus" | wc -l) inputs in corpus)"
    before=$(ls -A "$artifacts" | grep -cv '^last.log$' || true)
    rc=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    "$BIN_DIR/$t" "$corpus" \
        -max_total_time="$SECONDS_PER_TARGET" \
        -timeout=20 \
        -rss_limit_mb=4096 \
        -print_final_stats=1 \
        -artifact_prefix="$artifacts/" \
        ${FUZZ_ARGS:-} \
        </dev/null >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
    cov=$(grep -ao 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 || true)
    after=$(ls -A "$artifacts" | grep -cv '^last.log$' || true)
    if [ "$rc" -eq 0 ]; then
        result="ok"
    else
        failed=1
        if grep -aq 'SUMMARY: libFuzzer: timeout' "$log"; then
            result="TIMEOUT"
        elif grep -aq 'out-of-memory' "$log"; then
            result="OUT OF MEMORY"
        elif grep -aq 'SUMMARY: libFuzzer' "$log"; then
            result="CRASH"
        else
            result="FAILED (exit $rc)"
        fi
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        [ -z "$artifact" ] || result="$result: $artifact"
        grep -a -m1 -A2 "panicked at" "$log" | sed 's/^/    /' || true
    fi
    line=$(printf '%-11s execs %-10s %-22s %s' "$t" "${execs:-?}" "${cov:-cov: ?}" "$result")
    echo "$line"
    summary+=("$line")
    if [ "$after" -gt "$before" ] && [ "$rc" -eq 0 ]; then
        echo "    (new files in $artifacts)"
    fi
done

echo "== summary (${SECONDS_PER_TARGET}s per target; logs in artifacts/TARGET/last.log)"
printf '%s\n' "${summary[@]}"
exit "$failed"
