#!/usr/bin/env bash
# Packaging test: builds the plugin archive with `cargo xtask dist` and checks what Grafana
# would install (protocol.md §5): the zip's layout, the binary's name and mode, plugin.json,
# the binary's go-plugin handshake, and docker-compose.yaml (YAML, paths, entrypoint script;
# Docker itself is not run).
#
#   bash tests/dist/check.sh
#
# --skip-frontend is passed when frontend/package.json is absent, or when
# RESTBRIDGE_DIST_SKIP_FRONTEND=1 (a local run while the frontend's npm lock is unsettled).
# Prints one line per check and `dist: N passed, M failed`; exits 1 when a check failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
cd "$REPO" || exit 2

HANDSHAKE_TIMEOUT=10   # seconds to wait for the handshake line (Grafana waits 60)
STOP_TIMEOUT=5         # seconds to wait for an exit after SIGTERM
MAX_GLIBC=2.35         # Ubuntu 22.04, the oldest base of Grafana's -ubuntu images

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1${2:+: $2}"; }
check() { # check NAME COMMAND...: ok when the command succeeds, else its output is the detail
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    ok "$name"
    [ -z "$out" ] || printf '%s\n' "$out" | tail -n 3 | sed 's/^/       /'
  else
    fail "$name" "$(printf '%s' "$out" | tail -n 5)"
  fi
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/restbridge-dist.XXXXXX")
PLUGIN_PID=
stop_pid() { # stop_pid PID: SIGTERM, then SIGKILL after STOP_TIMEOUT; 0 when TERM sufficed
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 1
}
cleanup() {
  if [ -n "$PLUGIN_PID" ]; then stop_pid "$PLUGIN_PID"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# A python3 with PyYAML (the pyenv one, else Debian's, installing python3-yaml as root).
PY=
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import yaml' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml >/dev/null 2>&1
  /usr/bin/python3 -c 'import yaml' 2>/dev/null && PY=/usr/bin/python3
fi

PLUGIN_ID=restbridge-rest-datasource
EXECUTABLE=gpx_restbridge
VERSION=$(awk '/^\[/ { p = ($0 == "[package]") } p && $1 == "version" { gsub(/"/, "", $3); print $3; exit }' Cargo.toml)
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac
ZIP=$TARGET_DIR/$PLUGIN_ID-$VERSION.zip
case $(uname -m) in
  x86_64) HOST_BIN=${EXECUTABLE}_linux_amd64 ;;
  aarch64 | arm64) HOST_BIN=${EXECUTABLE}_linux_arm64 ;;
  *) HOST_BIN=${EXECUTABLE}_linux_$(uname -m) ;;
esac

# --- unit tests of the xtask (triple mapping, plugin.json checks, zip writer) -----------------
check "cargo test -p xtask (plugin.json, GOOS/GOARCH mapping, archive)" \
  cargo test -q -p xtask

# --- cargo xtask dist --------------------------------------------------------------------------
SKIP_FRONTEND=
if [ ! -f frontend/package.json ] || [ "${RESTBRIDGE_DIST_SKIP_FRONTEND:-}" = 1 ]; then
  SKIP_FRONTEND=--skip-frontend
fi
echo "running: cargo xtask dist${SKIP_FRONTEND:+ $SKIP_FRONTEND} (log: $WORK/dist.log)"
rm -f "$ZIP"
if cargo xtask dist $SKIP_FRONTEND >"$WORK/dist.log" 2>&1; then
  ok "cargo xtask dist${SKIP_FRONTEND:+ $SKIP_FRONTEND}"
  grep -E '^xtask: notice|^dist:|^  [^ ]|^archive:' "$WORK/dist.log" | sed 's/^/     /'
else
  fail "cargo xtask dist${SKIP_FRONTEND:+ $SKIP_FRONTEND}" "$(tail -n 20 "$WORK/dist.log")"
fi
check "archive $ZIP exists" test -s "$ZIP"

# --- archive layout ----------------------------------------------------------------------------
UNZ=$WORK/unzipped
mkdir -p "$UNZ"
check "archive unzips" unzip -q "$ZIP" -d "$UNZ"
PLUGIN_DIR=$UNZ/$PLUGIN_ID
top=$(cd "$UNZ" && ls -A)
if [ "$top" = "$PLUGIN_ID" ]; then ok "one top folder, named after the plugin id"; else fail "one top folder, named after the plugin id" "found: $top"; fi

layout_check() {
  local f missing=
  for f in plugin.json img/logo.svg README.md CHANGELOG.md LICENSE "$HOST_BIN"; do
    [ -f "$PLUGIN_DIR/$f" ] || missing="$missing $f"
  done
  if [ -z "$SKIP_FRONTEND" ] && [ ! -f "$PLUGIN_DIR/module.js" ]; then missing="$missing module.js"; fi
  [ -z "$missing" ] || { echo "missing:$missing"; return 1; }
}
if [ -n "$SKIP_FRONTEND" ]; then FRONTEND_FILES="(no module.js: $SKIP_FRONTEND)"; else FRONTEND_FILES=module.js; fi
check "layout: plugin.json img/logo.svg README.md CHANGELOG.md LICENSE $HOST_BIN $FRONTEND_FILES" layout_check

binary_names_check() { # every binary is <executable>_<goos>_<goarch>[.exe], .exe exactly on windows
  local f name bad= n=0 is_windows is_exe
  for f in "$PLUGIN_DIR/${EXECUTABLE}"_*; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    n=$((n + 1))
    if [[ ! $name =~ ^${EXECUTABLE}_(linux|darwin|windows|freebsd|netbsd|openbsd|illumos|android)_(amd64|arm64|arm|386|riscv64|ppc64le|ppc64|s390x|loong64)(\.exe)?$ ]]; then
      bad="$bad $name"
    else
      is_windows=no is_exe=no
      [[ $name == *_windows_* ]] && is_windows=yes
      [[ $name == *.exe ]] && is_exe=yes
      [ "$is_windows" = "$is_exe" ] || bad="$bad $name"
    fi
  done
  [ "$n" -gt 0 ] || { echo "no ${EXECUTABLE}_* binary"; return 1; }
  [ -z "$bad" ] || { echo "not a Grafana binary name:$bad"; return 1; }
  echo "$n binaries"
}
check "binary names are ${EXECUTABLE}_<goos>_<goarch>[.exe] (Go spelling)" binary_names_check

modes_check() { # binaries 755 on disk after unzip and in the zip's entries, other files 644
  local f mode bad=
  while IFS= read -r f; do
    mode=$(stat -c %a "$f")
    case $(basename "$f") in
      "${EXECUTABLE}"_*) [ "$mode" = 755 ] || bad="$bad $(basename "$f")=$mode" ;;
      *) [ "$mode" = 644 ] || bad="$bad ${f#"$PLUGIN_DIR"/}=$mode" ;;
    esac
  done < <(find "$PLUGIN_DIR" -type f)
  while read -r perms name; do
    case $name in
      */) ;;
      */"${EXECUTABLE}"_*) [ "$perms" = -rwxr-xr-x ] || bad="$bad zip:$name=$perms" ;;
      *) [ "$perms" = -rw-r--r-- ] || bad="$bad zip:$name=$perms" ;;
    esac
  done < <(zipinfo "$ZIP" | awk '$1 ~ /^[-d]r/ { print $1, $NF }')
  [ -z "$bad" ] || { echo "wrong modes:$bad"; return 1; }
}
check "modes: binaries 0755, other files 0644 (unzipped and in the zip)" modes_check

check "dist/ and the archive hold the same files" diff -r dist "$PLUGIN_DIR"

# --- plugin.json in the archive ----------------------------------------------------------------
plugin_json_check() {
  "${PY:-python3}" - "$PLUGIN_DIR" "$VERSION" "$PLUGIN_ID" "$EXECUTABLE" <<'PYEOF'
import json, os, re, sys
d, version, pid, exe = sys.argv[1:5]
p = json.load(open(os.path.join(d, "plugin.json")))
problems = []
def need(cond, msg):
    if not cond:
        problems.append(msg)
need(p.get("id") == pid, f"id {p.get('id')!r} != {pid!r}")
need(re.fullmatch(r"[0-9a-z]+-([0-9a-z]+-)?(app|panel|datasource)", p.get("id", "")), "id fails the catalogue regex")
need(p.get("type") == "datasource", "type != datasource")
for flag in ("backend", "alerting", "metrics", "annotations"):
    need(p.get(flag) is True, f"{flag} is not true")
need(p.get("executable") == exe, f"executable {p.get('executable')!r} != {exe!r}")
info = p.get("info", {})
need(info.get("version") == version, f"info.version {info.get('version')!r} != Cargo.toml {version!r}")
need(re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?", info.get("version", "")), "info.version is not semver")
need(re.fullmatch(r"\d{4}-\d{2}-\d{2}", info.get("updated", "")), "info.updated is not YYYY-MM-DD")
need(isinstance(info.get("keywords"), list), "info.keywords is not a list")
for size in ("small", "large"):
    logo = info.get("logos", {}).get(size, "")
    need(logo and os.path.isfile(os.path.join(d, logo)), f"info.logos.{size} {logo!r} is not in the archive")
dep = p.get("dependencies", {}).get("grafanaDependency", "")
need(re.fullmatch(r"(>=|>|\^|~|=)?\d+(\.\d+){0,2}(\S*)(\s+\S+)*", dep or ""), f"grafanaDependency {dep!r}")
for m in problems:
    print(m)
sys.exit(1 if problems else 0)
PYEOF
}
check "plugin.json: id, type, backend/alerting/metrics/annotations, executable, logos, version $VERSION (= Cargo.toml), grafanaDependency" plugin_json_check

glibc_check() {
  command -v objdump >/dev/null 2>&1 || { echo "objdump not installed: not checked"; return 0; }
  local need
  need=$(objdump -T "$PLUGIN_DIR/$HOST_BIN" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
  echo "needs glibc $need"
  [ "$(printf '%s\n%s\n' "$need" "$MAX_GLIBC" | sort -V | tail -n 1)" = "$MAX_GLIBC" ]
}
check "$HOST_BIN needs glibc <= $MAX_GLIBC (runs in Grafana's -ubuntu images)" glibc_check

# --- the archived binary completes the go-plugin handshake -------------------------------------
handshake_check() {
  local bin=$PLUGIN_DIR/$HOST_BIN out=$WORK/handshake.out line= i addr
  local re='^1\|2\|(tcp|unix)\|([^|]+)\|grpc$'
  : >"$out"
  env grafana_plugin_type=datasource PLUGIN_PROTOCOL_VERSIONS=2 PLUGIN_MIN_PORT=10000 \
    PLUGIN_MAX_PORT=25000 "$bin" >"$out" 2>"$WORK/handshake.err" &
  PLUGIN_PID=$!
  echo "$PLUGIN_PID" >"$WORK/plugin.pid"   # check runs this in a subshell
  for ((i = 0; i < HANDSHAKE_TIMEOUT * 10; i++)); do
    line=$(head -n 1 "$out" 2>/dev/null)
    [[ $line =~ $re ]] && break
    kill -0 "$PLUGIN_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ ! $line =~ $re ]]; then
    echo "first stdout line: '$line' (stderr: $(tail -c 300 "$WORK/handshake.err"))"
    return 1
  fi
  addr=${BASH_REMATCH[2]}
  echo "handshake: $line"
  if [ "${BASH_REMATCH[1]}" = unix ]; then
    # The default on Linux, as go-plugin's Go servers: a socket file that exists.
    if [ ! -S "$addr" ]; then
      echo "no unix socket at $addr"
      return 1
    fi
  elif [[ ! $addr =~ ^127\.0\.0\.1:([0-9]+)$ ]] ||
    ! (exec 3<>"/dev/tcp/127.0.0.1/${BASH_REMATCH[1]}") 2>/dev/null; then
    echo "nothing listens on $addr"
    return 1
  fi
}
check "archived $HOST_BIN prints 1|2|unix|PATH|grpc (or tcp) within ${HANDSHAKE_TIMEOUT}s and listens" handshake_check
PLUGIN_PID=$(cat "$WORK/plugin.pid" 2>/dev/null)
if [ -n "$PLUGIN_PID" ]; then
  pid=$PLUGIN_PID
  PLUGIN_PID=
  check "plugin (pid $pid) exits on SIGTERM within ${STOP_TIMEOUT}s" stop_pid "$pid"
fi

# --- docker-compose.yaml -------------------------------------------------------------------------
if [ -z "$PY" ]; then
  fail "docker-compose.yaml" "no python3 with PyYAML (apt-get install python3-yaml)"
else
  compose_check() {
    "$PY" - "$REPO" "$PLUGIN_ID" "$WORK/entrypoint.sh" <<'PYEOF'
import glob, os, re, sys, yaml
repo, pid, script_out = sys.argv[1:4]
problems = []
def need(cond, msg):
    if not cond:
        problems.append(msg)
doc = yaml.safe_load(open(os.path.join(repo, "docker-compose.yaml")))
g = (doc.get("services") or {}).get("grafana") or {}
need(g, "no services.grafana")
need(str(g.get("image", "")).endswith("-ubuntu"), "grafana image is not an -ubuntu (glibc) variant")
env = g.get("environment") or {}
if isinstance(env, list):
    env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
allowed = [s.strip() for s in str(env.get("GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS", "")).split(",")]
need(pid in allowed, "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS does not list " + pid)
mounts = {}
for v in g.get("volumes") or []:
    parts = v.split(":")
    mounts[parts[1]] = parts[0]
plugin_target = "/var/lib/grafana/plugins/" + pid
need(mounts.get(plugin_target) == "./dist", f"./dist is not mounted at {plugin_target}")
need(mounts.get("/etc/grafana/provisioning/datasources") == "./config-examples",
     "./config-examples is not mounted at /etc/grafana/provisioning/datasources")
for src in mounts.values():
    if src.startswith("."):
        need(os.path.isdir(os.path.join(repo, src)), f"mounted path {src} does not exist")
# Every variable the provisioning files read from Grafana's environment is set.
for f in sorted(glob.glob(os.path.join(repo, "config-examples", "*.yaml"))):
    for line in open(f):
        line = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        for m in re.finditer(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)", line.replace("$$", "")):
            need(m.group(1) in env, f"{os.path.basename(f)} uses ${m.group(1)}, not set for grafana")
# Grafana refuses to start on duplicate names/uids or more than one default datasource.
names, uids, defaults = [], [], 0
for f in sorted(glob.glob(os.path.join(repo, "config-examples", "*.y*ml"))):
    prov = yaml.safe_load(open(f)) or {}
    need(prov.get("apiVersion") == 1, f"{os.path.basename(f)}: apiVersion is not 1")
    for ds in prov.get("datasources") or []:
        names.append(ds.get("name"))
        uids.append(ds.get("uid"))
        defaults += bool(ds.get("isDefault"))
for label, values in (("name", names), ("uid", uids)):
    dup = sorted({v for v in values if values.count(v) > 1}, key=str)
    need(not dup, f"provisioned datasources share a {label}: {dup}")
need(defaults <= 1, f"{defaults} provisioned datasources are isDefault")
for name, svc in (doc.get("services") or {}).items():
    need(isinstance(svc, dict) and svc.get("image"), f"service {name} has no image")
for dep in g.get("depends_on") or []:
    need(dep in doc["services"], f"grafana depends on unknown service {dep}")
# The entrypoint script: Compose interpolates `$X`/`${X}`; a literal `$` must be written `$$`.
ep = g.get("entrypoint") or []
need(isinstance(ep, list) and len(ep) >= 3 and ep[1] == "-c", "entrypoint is not [shell, -c, script, ...]")
if isinstance(ep, list) and len(ep) >= 3:
    script = ep[2]
    lone = re.findall(r"(?<!\$)\$(?!\$)[{A-Za-z_(]", script.replace("$$", ""))
    need(not lone, f"entrypoint script has Compose interpolations: {lone}")
    need("exec /run.sh" in script, "entrypoint does not exec Grafana's /run.sh")
    with open(script_out, "w") as out:
        out.write(script.replace("$$", "$"))
for m in problems:
    print(m)
sys.exit(1 if problems else 0)
PYEOF
  }
  check "docker-compose.yaml: YAML, unsigned allow-list, dist/ and config-examples/ mounts, provisioning (env vars, unique names/uids), entrypoint escaping" compose_check

  if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    check "docker compose config" docker compose -f docker-compose.yaml config -q
  else
    echo "note: docker compose is not installed; 'docker compose config' not run (Docker is never started here)"
  fi

  # Run the entrypoint script as the container would, with the unzipped plugin folder in place
  # of the mount and a stand-in for Grafana's /run.sh that fetches the demo API and stops it.
  entrypoint_check() {
    local script=$WORK/entrypoint.sh fake=$WORK/run.sh
    [ -s "$script" ] || { echo "no entrypoint script extracted"; return 1; }
    cat >"$fake" <<'SHEOF'
#!/bin/sh
# Stand-in for Grafana's /run.sh: the demo URL must be exported and answer.
echo "run.sh: RESTBRIDGE_DEMO_URL=${RESTBRIDGE_DEMO_URL:-}"
status=1
if [ -n "${RESTBRIDGE_DEMO_URL:-}" ] && curl -fsS --max-time 5 "$RESTBRIDGE_DEMO_URL/services" | grep -q '{'; then
  echo "run.sh: demo API answers"
  status=0
fi
for pid in $(ps -o pid=,args= --ppid $$ | awk '/demo --serve/ { print $1 }'); do
  kill "$pid"
done
exit $status
SHEOF
    chmod +x "$fake"
    sed -i -e "s#/var/lib/grafana/plugins/$PLUGIN_ID#$PLUGIN_DIR#g" -e "s#exec /run.sh#exec $fake#" "$script"
    # Output to a file, not to check's pipe, which a stray demo process would keep open.
    if env -u RESTBRIDGE_DEMO_URL TMPDIR="$WORK" timeout 30 sh -c "$(cat "$script")" \
      grafana-entrypoint >"$WORK/entrypoint.log" 2>&1; then
      cat "$WORK/entrypoint.log"
    else
      cat "$WORK/entrypoint.log"
      return 1
    fi
  }
  check "docker-compose entrypoint starts the demo API from the archive and exports RESTBRIDGE_DEMO_URL" entrypoint_check
fi

echo "dist: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
