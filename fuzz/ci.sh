#!/usr/bin/env bash
# Short, bounded runs of every fuzz target (called by .ci/run; docs/fuzzing.md has the long
# runs and their figures).
#
# * builds every target once with plain cargo and libFuzzer's coverage instrumentation —
#   the flags `cargo fuzz build --sanitizer none --debug-assertions` passes (sancov with
#   inline 8-bit counters, PC table, compare tracing and stack depth; `--cfg fuzzing`) — so
#   CI needs neither cargo-fuzz nor a nightly toolchain (RUSTC_BOOTSTRAP=1 lets stable rustc
#   accept the flags). The flags go through RUSTFLAGS with an explicit `--target`, so build
#   scripts and proc macros are built without them, as cargo-fuzz does;
# * FUZZ_PROFILE picks the cargo profile: `dev` (default here: unoptimised, debug assertions
#   and overflow checks; the whole tree builds in ~5 min instead of ~8 on two cores, and a
#   target runs ~15× slower — fine for a smoke run) or `release` (optimised with debug
#   assertions, as the long runs in docs/fuzzing.md);
# * runs each target for FUZZ_SECONDS (default 20) from its committed seeds in
#   fuzz/corpus/<target>/ (new inputs go to the git-ignored fuzz/work/<target>/);
# * fails when any target finds a crash (panic, timeout, out of memory); the input is kept in
#   fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
PROFILE=${FUZZ_PROFILE:-dev}
TARGETS=(template_parse jsonpath rule_compile convert_bytes querydata_decode)
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never
HOST=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cllvm-args=-sanitizer-coverage-stack-depth \
-Cdebug-assertions -Coverflow-checks -Ccodegen-units=16"
case "$PROFILE" in
    dev) DIR=debug ;;
    release) DIR=release ;;
    *) echo "error: FUZZ_PROFILE must be dev or release, not '$PROFILE'" >&2; exit 2 ;;
esac
BIN="fuzz/target/$HOST/$DIR"

echo "--- building ${#TARGETS[@]} targets (profile $PROFILE, target $HOST)"
timeout 2400 cargo build --manifest-path fuzz/Cargo.toml --profile "$PROFILE" \
    --target "$HOST" --bins

ran=0
crashes=0
failed=()
for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
    echo "--- $t: ${SECONDS_PER_TARGET}s"
    log=$(mktemp)
    status=0
    timeout $((SECONDS_PER_TARGET + 300)) "$BIN/$t" \
        -artifact_prefix="fuzz/artifacts/$t/" \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=30 -rss_limit_mb=4096 \
        -print_final_stats=1 "fuzz/work/$t" "fuzz/corpus/$t" >"$log" 2>&1 || status=$?
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$log" || true
    ran=$((ran + 1))
    if [ "$status" -ne 0 ]; then
        crashes=$((crashes + 1))
        failed+=("$t")
        echo "!!! $t failed (exit $status); the end of its log:"
        tail -n 60 "$log"
    fi
    rm -f "$log"
done

echo "fuzz: $ran targets ran, $crashes crashes"
if [ "$crashes" -ne 0 ]; then
    echo "error: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
