#!/usr/bin/env bash
# Short, bounded runs of every fuzz target (called by .ci/run; docs/fuzzing.md has the long
# runs and their figures).
#
# * installs cargo-fuzz from crates.io when missing (bounded in time);
# * builds every target once, on the machine's stable toolchain: cargo-fuzz wants nightly,
#   RUSTC_BOOTSTRAP=1 lets stable rustc accept its flags, and `--sanitizer none` needs no
#   sanitizer runtime (the project has no `unsafe`; libFuzzer's coverage guidance and Rust's
#   own checks — debug assertions, overflow checks — are what find the bugs here);
# * runs each target for FUZZ_SECONDS (default 20) from its committed seeds in
#   fuzz/corpus/<target>/ (new inputs go to the git-ignored fuzz/work/<target>/);
# * fails when any target finds a crash (panic, timeout, out of memory); the input is kept in
#   fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
TARGETS=(template_parse jsonpath rule_compile convert_bytes querydata_decode)
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never
# The same flags for build and run, so `run` does not rebuild.
FLAGS=(--sanitizer none --debug-assertions --codegen-units 16)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "--- installing cargo-fuzz (crates.io)"
    timeout 1800 cargo install cargo-fuzz --locked --quiet
fi
cargo fuzz --version

echo "--- building ${#TARGETS[@]} targets"
timeout 2400 cargo fuzz build "${FLAGS[@]}"

ran=0
crashes=0
failed=()
for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/work/$t"
    echo "--- $t: ${SECONDS_PER_TARGET}s"
    log=$(mktemp)
    status=0
    timeout $((SECONDS_PER_TARGET + 300)) cargo fuzz run "${FLAGS[@]}" "$t" \
        "fuzz/work/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=30 -rss_limit_mb=4096 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
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
