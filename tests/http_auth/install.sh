#!/usr/bin/env bash
# Installs what the `http_auth` test target needs (idempotent; a no-op when all is present):
#   * httpbin (Debian python3-httpbin, run with /usr/bin/python3): basic/bearer auth, status
#     codes, delays, redirects, gzip/deflate/brotli, byte streams;
#   * htpasswd (apache2-utils): the bcrypt hash of Prometheus' --web.config.file;
#   * openssl: throwaway CA, server and client certificates for the TLS tests;
#   * prometheus + promtool: the basic-auth CheckHealth test.
# Python's own ssl module (in /usr/bin/python3) serves the mutual-TLS upstream.
set -euo pipefail

missing=()
/usr/bin/python3 -c 'import httpbin.core, brotli' >/dev/null 2>&1 || missing+=(python3-httpbin python3-brotli)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || missing+=(prometheus)

if [ ${#missing[@]} -eq 0 ]; then
    echo "http_auth: all test servers present"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "warning: http_auth needs ${missing[*]} but this is not root; the tests will skip" >&2
    exit 0
fi

echo "http_auth: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    # The package lists may be missing or stale on a fresh machine.
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
/usr/bin/python3 -c 'import httpbin.core, brotli'
for tool in htpasswd openssl prometheus promtool; do
    command -v "$tool" >/dev/null || { echo "http_auth: $tool still missing" >&2; exit 1; }
done
echo "http_auth: installed ${missing[*]}"
