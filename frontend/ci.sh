#!/usr/bin/env bash
# RestBridge frontend CI: installs what it needs, then typecheck, lint, unit tests (vitest),
# the module.js build (with a check of its AMD shape), and the real-browser test (Playwright
# driving Debian's headless Chromium). Idempotent; exits non-zero when any step fails; the last
# line is the summary "frontend: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")"

OUT=test-output
mkdir -p "$OUT"
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

failed_steps=()
passed=0
failed=0

step() {
  local name=$1
  shift
  echo "::: ${name}: $*"
  local t0=$SECONDS
  if "$@"; then
    echo "::: ${name}: ok ($((SECONDS - t0)) s)"
  else
    echo "::: ${name}: FAILED ($((SECONDS - t0)) s)"
    failed_steps+=("$name")
    return 1
  fi
}

# Debian's Chromium for the browser test (never a browser download).
if [ ! -x "$CHROMIUM_PATH" ]; then
  if [ "$(id -u)" = 0 ]; then
    step chromium bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null' || true
  else
    echo "::: chromium: $CHROMIUM_PATH is missing and this is not root: install Debian's chromium"
    failed_steps+=(chromium)
  fi
fi

if ! step install npm ci --no-audit --no-fund; then
  echo "frontend: 0 passed, 1 failed (npm ci failed)"
  exit 1
fi

step typecheck npm run --silent typecheck || true
step lint npm run --silent lint || true

# Unit tests; counts from vitest's JSON report.
step vitest npx vitest run --reporter=default --reporter=json --outputFile.json="$OUT/vitest.json" || true
if [ -f "$OUT/vitest.json" ]; then
  read -r p f < <(node -e 'const r=require(process.argv[1]);console.log(r.numPassedTests, r.numFailedTests + (r.numRuntimeErrorTests||0))' "$PWD/$OUT/vitest.json")
  passed=$((passed + p))
  failed=$((failed + f))
else
  failed=$((failed + 1))
fi

step build npm run --silent build || true
step check-dist node scripts/check-dist.mjs || true

# Real-browser test: node's test runner, counts from its TAP summary.
if [ -x "$CHROMIUM_PATH" ]; then
  step harness npm run --silent build:harness || true
  step browser bash -c "node --test --test-reporter=tap browser-test/editors.browser.test.mjs 2>&1 | tee $OUT/browser.tap; exit \${PIPESTATUS[0]}" || true
  bp=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$OUT/browser.tap" | tail -1)
  bf=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$OUT/browser.tap" | tail -1)
  passed=$((passed + ${bp:-0}))
  failed=$((failed + ${bf:-1}))
  ls -1 "$OUT"/*.png 2>/dev/null | sed 's/^/::: screenshot: /'
else
  failed_steps+=(browser)
  failed=$((failed + 1))
fi

if [ ${#failed_steps[@]} -gt 0 ]; then
  echo "::: failed steps: ${failed_steps[*]}"
  [ "$failed" -gt 0 ] || failed=${#failed_steps[@]}
  echo "frontend: ${passed} passed, ${failed} failed"
  exit 1
fi
echo "frontend: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
