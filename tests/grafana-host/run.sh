#!/usr/bin/env bash
# Runs the RestBridge plugin binary through the Grafana plugin-host stand-in
# (../shared/tools/grafana-host, beside the repository) against the built-in demo API.
#
#   tests/grafana-host/run.sh target/debug/gpx_restbridge
#
# Exit status: 0 every case passed (or ../shared is missing: skipped with a notice),
# 1 a case failed, 2 usage / the demo API did not start. See README.md beside this script.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CASES_DIR=$HERE/cases
TOOL_DIR=$(dirname "$REPO")/shared/tools/grafana-host
PLUGIN_ID=restbridge-rest-datasource
DEMO_START_TIMEOUT=10   # seconds to wait for the demo API's first stdout line
CASE_TIMEOUT=180        # seconds per grafana_host.py run (its own RPC timeouts are 30 s)

# Extra runs per case file: flag sets separated by '|' ('' = a run without flags).
# Case files not listed here run once without flags.
declare -A RUNS=(
  [demo-all.json]="|--request-json|--check-sigint"
  [alert.json]="--alert"
)

if [ $# -ne 1 ]; then
  echo "usage: $0 PATH/TO/gpx_restbridge" >&2
  exit 2
fi
case $1 in
  /*) BIN=$1 ;;
  *) BIN=$PWD/$1 ;;
esac
if [ ! -f "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "grafana-host: plugin binary '$1' not found or not executable (build it first)" >&2
  exit 2
fi

if [ ! -f "$TOOL_DIR/grafana_host.py" ] || [ ! -x "$TOOL_DIR/setup.sh" ]; then
  echo "skipping: ../shared/tools/grafana-host not found"
  exit 0
fi

"$TOOL_DIR/setup.sh"   # idempotent; a stamp check once the venv exists

WORK=$(mktemp -d "${TMPDIR:-/tmp}/restbridge-grafana-host.XXXXXX")
DEMO_PID=

stop_demo() {
  local pid=$DEMO_PID i
  [ -n "$pid" ] || return 0
  DEMO_PID=
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do          # up to 5 s
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "grafana-host: demo API (pid $pid) ignored SIGTERM for 5 s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  stop_demo
  exec 3<&- 2>/dev/null || true
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the demo API -------------------------------------------------------------------------
# Its stdout goes through a FIFO we keep open on fd 3, so `read -t` can wait for the first
# line with a deadline; $! is the binary itself (the background subshell execs it).
mkfifo "$WORK/demo.stdout"
"$BIN" demo --serve >"$WORK/demo.stdout" 2>"$WORK/demo.stderr" &
DEMO_PID=$!
exec 3<"$WORK/demo.stdout"   # returns once the child has opened the FIFO for writing
first_line=
if ! IFS= read -r -t "$DEMO_START_TIMEOUT" first_line <&3; then
  echo "grafana-host: '$BIN demo --serve' printed no first line (it exited, or ${DEMO_START_TIMEOUT} s passed)" >&2
  sed 's/^/  demo stderr: /' "$WORK/demo.stderr" >&2 || true
  exit 2
fi
case $first_line in
  RESTBRIDGE_DEMO_URL=http://127.0.0.1:*) ;;
  *)
    echo "grafana-host: unexpected first line from '$BIN demo --serve': $first_line" >&2
    exit 2
    ;;
esac
export RESTBRIDGE_DEMO_URL=${first_line#RESTBRIDGE_DEMO_URL=}
echo "grafana-host: demo API at $RESTBRIDGE_DEMO_URL (pid $DEMO_PID); plugin $BIN"

# --- the cases ------------------------------------------------------------------------------
TIMEOUT=()
if command -v timeout >/dev/null 2>&1; then
  TIMEOUT=(timeout -k 5 "$CASE_TIMEOUT")
fi

passed=0
failed=0
shopt -s nullglob
case_files=("$CASES_DIR"/*.json)
if [ ${#case_files[@]} -eq 0 ]; then
  echo "grafana-host: no case files in $CASES_DIR" >&2
  exit 2
fi

for case_file in "${case_files[@]}"; do
  name=$(basename "$case_file")
  IFS='|' read -r -a flag_sets <<<"${RUNS[$name]-}"
  [ ${#flag_sets[@]} -gt 0 ] || flag_sets=("")
  for flags in "${flag_sets[@]}"; do
    read -r -a flag_args <<<"$flags"
    label="$name${flags:+ $flags}"
    log=$WORK/run.log
    rc=0
    ${TIMEOUT[@]+"${TIMEOUT[@]}"} python3 "$TOOL_DIR/grafana_host.py" --plugin "$BIN" \
      --plugin-id "$PLUGIN_ID" --case "$case_file" ${flag_args[@]+"${flag_args[@]}"} \
      >"$log" 2>&1 3<&- || rc=$?
    last=$(tail -n 1 "$log")
    [ -n "$last" ] || last="FAIL: grafana_host.py printed nothing (exit status $rc)"
    extra=
    if [ "$rc" -eq 0 ] && [[ " $flags " == *" --check-sigint "* ]] \
      && ! grep -q '^sigint   plugin ignored SIGINT' "$log"; then
      rc=1
      extra=" [run.sh: the plugin did not ignore SIGINT: $(grep '^sigint' "$log" || echo 'no sigint line')]"
    fi
    if [ "$rc" -eq 0 ]; then
      passed=$((passed + 1))
      echo "[$label] $last"
    else
      failed=$((failed + 1))
      echo "----- grafana_host.py output for $label (exit status $rc) -----"
      cat "$log"
      echo "-----"
      echo "[$label] $last$extra"
    fi
  done
done

stop_demo
echo "grafana-host: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
