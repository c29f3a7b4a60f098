#!/usr/bin/env bash
# Installs the real upstream servers of the `http_paging` test target (tests/http_paging/).
# Idempotent: every piece is skipped when it is already there (a second run takes ~0.1 s).
#
#   bash tests/http_paging/install.sh
#
# Where things go (the tests look in the same places; see servers.rs):
#   json-server 0.17.4   $RESTBRIDGE_SERVERS_DIR/json-server/node_modules/json-server/lib/cli/bin.js
#   datasette 1.0a41     $RESTBRIDGE_SERVERS_DIR/datasette-1.0a41/bin/datasette   (own venv)
#   datasette 0.65.5     $RESTBRIDGE_SERVERS_DIR/datasette-0.65.5/bin/datasette   (own venv)
#   etcd 3.4 + etcdctl   Debian packages etcd-server, etcd-client: /usr/bin/etcd, /usr/bin/etcdctl
# RESTBRIDGE_SERVERS_DIR defaults to /tmp/restbridge-servers (outside the repository, so no
# node_modules or venv is ever committed). Needs: node + npm, python3 with venv, and root for
# apt-get (without root the Debian part is skipped with a warning).
set -euo pipefail

DIR=${RESTBRIDGE_SERVERS_DIR:-/tmp/restbridge-servers}
JSON_SERVER_VERSION=0.17.4
DATASETTE_VERSIONS=(1.0a41 0.65.5)
mkdir -p "$DIR"

now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# ---- etcd (Debian) ----------------------------------------------------------------------
if command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; then
    echo "http_paging install: etcd present ($(command -v etcd))"
elif [ "$(id -u)" = 0 ]; then
    t=$(now)
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        etcd-server etcd-client >/dev/null
    echo "http_paging install: etcd-server etcd-client installed in $(took "$t")"
else
    echo "warning: http_paging install: not root, cannot apt-get install etcd-server etcd-client" >&2
fi

# ---- json-server (npm, into $DIR/json-server) ---------------------------------------------
JS="$DIR/json-server"
if [ -f "$JS/node_modules/json-server/package.json" ] &&
    grep -q "\"version\": \"$JSON_SERVER_VERSION\"" "$JS/node_modules/json-server/package.json"; then
    echo "http_paging install: json-server $JSON_SERVER_VERSION present ($JS)"
elif command -v npm >/dev/null 2>&1; then
    t=$(now)
    mkdir -p "$JS"
    [ -f "$JS/package.json" ] || echo '{"private": true}' >"$JS/package.json"
    # Quiet first; on failure run again with output so CI shows why.
    (cd "$JS" && npm install -s --no-audit --no-fund --no-save "json-server@$JSON_SERVER_VERSION" >/dev/null 2>&1) ||
        (cd "$JS" && npm install --no-audit --no-fund --no-save "json-server@$JSON_SERVER_VERSION")
    echo "http_paging install: json-server $JSON_SERVER_VERSION installed in $(took "$t")"
else
    echo "warning: http_paging install: npm not found, json-server not installed" >&2
fi

# ---- datasette (pip, one venv per version) --------------------------------------------------
PY=$(command -v python3 || true)
for v in "${DATASETTE_VERSIONS[@]}"; do
    VENV="$DIR/datasette-$v"
    if [ -x "$VENV/bin/datasette" ] && "$VENV/bin/python" -c \
        "import importlib.metadata as m, sys; sys.exit(m.version('datasette') != '$v')" 2>/dev/null; then
        echo "http_paging install: datasette $v present ($VENV)"
        continue
    fi
    if [ -z "$PY" ]; then
        echo "warning: http_paging install: python3 not found, datasette $v not installed" >&2
        continue
    fi
    t=$(now)
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "datasette==$v"
    echo "http_paging install: datasette $v installed in $(took "$t")"
done
