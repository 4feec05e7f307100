#!/usr/bin/env bash
# End-to-end test of the web pages in headless Chromium against a real hub
# (tests/browser/pages.test.mjs, playwright-core driving Debian's
# /usr/bin/chromium).
#
# Installs Chromium with apt when /usr/bin/chromium is missing and the test's
# npm dependencies (npm ci into tests/browser/node_modules), builds the hub
# with `cargo build --release` (honours CARGO_TARGET_DIR; SPA_HUB_BIN=path
# uses a binary already built instead), starts it on a free 127.0.0.1 port
# with a temporary data directory, simulated lights and a known admin token,
# and runs the test. The test stops the hub with SIGTERM and starts it again
# on the same port and data directory (the monitor must reconnect by itself);
# both hubs must exit 0 on SIGTERM. Screenshots of every page go to
# test-output/screenshots/ (gitignored).
# Usage: .ci/browser.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TESTS=$ROOT/tests/browser
SHOTS=$ROOT/test-output/screenshots

# --- Chromium and the test's dependencies ------------------------------------------------------
if [ ! -x /usr/bin/chromium ]; then
    echo "== apt-get install chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends chromium fonts-dejavu-core
fi
# certutil: the hub's local CA goes into Chromium's NSS store (below).
if ! command -v certutil >/dev/null; then
    echo "== apt-get install libnss3-tools"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends libnss3-tools ||
        { apt-get update && apt-get install -y --no-install-recommends libnss3-tools; }
fi
/usr/bin/chromium --version 2>/dev/null || true
if [ ! -f "$TESTS/node_modules/.package-lock.json" ] ||
    [ "$TESTS/package-lock.json" -nt "$TESTS/node_modules/.package-lock.json" ]; then
    echo "== npm ci --prefix tests/browser"
    npm ci --prefix "$TESTS" --no-audit --no-fund
fi

# --- the hub ------------------------------------------------------------------------------------
# shellcheck source=.ci/hub-common.sh
. "$ROOT/.ci/hub-common.sh"
hub_binary

hub_workdir spa-browser
HUB_PID=
stop_pidfile() {
    local pid
    pid=$(cat "$TMP/hub2.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
}
extra_cleanup() { stop_pidfile; }

PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
ADMIN=$(node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))')
URL=https://127.0.0.1:$PORT
mkdir "$TMP/data"

# HTTPS as on a staff tablet (#19): `spa-hub tls init` makes the CA and the
# certificate, and the CA is trusted the way a Linux desktop's Chromium
# trusts one (its NSS store under $HOME/.pki/nssdb, a temporary HOME here).
# Customer links stay on plain http (phones need not trust the CA).
"$BIN" tls init --dir "$TMP/tls" >"$TMP/tls-init.log"
export HOME=$TMP/home NODE_EXTRA_CA_CERTS=$TMP/tls/ca.pem
mkdir -p "$HOME/.pki/nssdb"
certutil -N -d "sql:$HOME/.pki/nssdb" --empty-password
certutil -A -d "sql:$HOME/.pki/nssdb" -t "C,," -n "spa-hub local CA" -i "$TMP/tls/ca.pem"
rm -rf "$SHOTS"
mkdir -p "$SHOTS"

# The restarted hub (started by the test) gets the same environment.
export SPA_LISTEN=127.0.0.1:$PORT SPA_DATA_DIR=$TMP/data SPA_ADMIN_TOKEN=$ADMIN SPA_LIGHTS=sim \
    SPA_LIGHT_CHANNELS="1=17,27,22 2=5,6,13" SPA_LOG_TARGET=stderr SPA_LOG=info \
    SPA_TIMEZONE=UTC TZ=UTC SPA_TLS_CERT=$TMP/tls/cert.pem SPA_TLS_KEY=$TMP/tls/key.pem

echo "== spa-hub serve on $URL (data in $TMP/data)"
env -u SPA_HUB_BIN "$BIN" serve 2>"$TMP/hub.log" &
HUB_PID=$!

hub_log() {
    echo "-- hub log (last 30 lines) --"; tail -n 30 "$TMP/hub.log" || true
    if [ -f "$TMP/hub2.log" ]; then echo "-- restarted hub log (last 30 lines) --"; tail -n 30 "$TMP/hub2.log" || true; fi
}

wait_healthy "$HUB_PID" node -e 'fetch(process.argv[1] + "/healthz").then(r => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))' "$URL"

# --- the test -------------------------------------------------------------------------------------
echo "== browser test (screenshots in test-output/screenshots/)"
out=$TMP/test.out
rc=0
SPA_URL=$URL SPA_HUB_PID=$HUB_PID SPA_HUB_BIN=$BIN SPA_SCREENSHOTS=$SHOTS \
    SPA_HUB_LOG2=$TMP/hub2.log SPA_HUB2_PIDFILE=$TMP/hub2.pid \
    timeout 600 node "$TESTS/pages.test.mjs" 2>&1 | tee "$out" || rc=$?
read -r pass fail <<<"$(tail -n 3 "$out" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*$/\1 \2/p' | tail -n 1)" || true
if [ -z "${pass:-}" ]; then
    echo "FAIL: the browser test printed no final tally (exit $rc)"
    pass=0 fail=1
elif [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
    echo "FAIL: the browser test exited $rc"
    fail=1
fi

# --- the first hub: stopped by the test (restart), or now -------------------------------------------
kill -0 "$HUB_PID" 2>/dev/null && echo "== SIGTERM to the hub"
stop_hub "$HUB_PID"
HUB_PID=
if [ "$HUB_RC" -eq 0 ]; then
    echo "ok   the first hub exited 0 on SIGTERM"
    pass=$((pass + 1))
else
    echo "FAIL: the first hub's exit status was $HUB_RC after SIGTERM"
    fail=$((fail + 1))
fi
stop_pidfile

[ "$fail" -eq 0 ] || hub_log
echo "browser: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
