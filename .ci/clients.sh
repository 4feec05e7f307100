#!/usr/bin/env bash
# Compatibility test of the hub with third-party Socket.IO clients: the
# official socket.io-client 4.x (Node) and python-socketio (tests/clients/),
# over long-polling with the upgrade, long-polling only and WebSocket only;
# the node client over HTTPS/WSS with the CA of `spa-hub tls init`, and its
# connection state recovery across a restart of the hub, which this script
# does when the client asks (SPA_RESTART_DIR).
#
# Installs the clients' dependencies when missing (npm ci into
# tests/clients/node_modules, a venv in tests/clients/.venv), builds the hub
# with `cargo build --release` (honours CARGO_TARGET_DIR; SPA_HUB_BIN=path
# uses a binary already built instead), starts it on a free 127.0.0.1 port
# with a temporary data directory, runs both clients against it, stops it
# with SIGTERM and checks that it exits 0.
# Usage: .ci/clients.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
CLIENTS=$ROOT/tests/clients

# --- client dependencies ---------------------------------------------------------
# npm ci leaves node_modules/.package-lock.json; reinstall when it is missing
# or older than the lock file.
if [ ! -f "$CLIENTS/node_modules/.package-lock.json" ] ||
    [ "$CLIENTS/package-lock.json" -nt "$CLIENTS/node_modules/.package-lock.json" ]; then
    echo "== npm ci --prefix tests/clients"
    npm ci --prefix "$CLIENTS" --no-audit --no-fund
fi
VENV=$CLIENTS/.venv
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$CLIENTS/requirements.txt" "$VENV/.requirements.txt"; then
    echo "== python3 -m venv tests/clients/.venv; pip install -r requirements.txt"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$CLIENTS/requirements.txt"
    cp "$CLIENTS/requirements.txt" "$VENV/.requirements.txt"
fi

# --- the hub ------------------------------------------------------------------------
# shellcheck source=.ci/hub-common.sh
. "$ROOT/.ci/hub-common.sh"
hub_binary

hub_workdir spa-clients

PY=$VENV/bin/python
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADMIN=$("$PY" -c 'import secrets; print(secrets.token_hex(24))')
URL=http://127.0.0.1:$PORT
mkdir "$TMP/data"

# HTTPS (#19): the node client speaks TLS to the hub, trusting only the CA
# that `spa-hub tls init` makes (socket.io-client with `ca` and
# rejectUnauthorized; it also checks that a client without the CA is
# refused, that plain HTTP redirects the staff pages and still serves a
# ticket page). python-socketio runs against the same data over plain HTTP:
# over TLS, 2 of 18 runs (2026-12-07) waited past the 10 s timeout for the
# ack of a refused command that the hub's log shows answered, while the
# node client never did; websocket-client reads and writes one SSL object
# from two threads, the likelier cause (not proven).
"$BIN" tls init --dir "$TMP/tls" >"$TMP/tls-init.log"
export SPA_CA=$TMP/tls/ca.pem NODE_EXTRA_CA_CERTS=$TMP/tls/ca.pem

# Starts the hub (plain, or with TLS when $1 is "tls") on $PORT; sets
# HUB_PID and URL.
start_hub() {
    local tls=()
    URL=http://127.0.0.1:$PORT
    if [ "$1" = tls ]; then
        tls=(SPA_TLS_CERT="$TMP/tls/cert.pem" SPA_TLS_KEY="$TMP/tls/key.pem")
        URL=https://127.0.0.1:$PORT
    fi
    echo "== spa-hub serve on $URL (data in $TMP/data)"
    # UTC and a one-minute booking grid: the node client books a time a
    # minute or two ahead and waits for it.
    env SPA_LISTEN=127.0.0.1:$PORT SPA_DATA_DIR=$TMP/data SPA_ADMIN_TOKEN=$ADMIN SPA_LIGHTS=sim \
        SPA_TIMEZONE=UTC SPA_BOOKING_GRID_MIN=1 "${tls[@]}" \
        "$BIN" serve 2>>"$TMP/hub.log" &
    HUB_PID=$!
    wait_healthy "$HUB_PID" "$PY" -c 'import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
sys.exit(0 if urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=1, context=ctx).status == 200 else 1)' "$URL" "$TMP/tls/ca.pem"
}

hub_log() { echo "-- hub log (last 40 lines) --"; tail -n 40 "$TMP/hub.log" || true; }

# Stops the hub with SIGTERM and counts its exit status.
stop_and_count() {
    echo "== SIGTERM to the hub"
    stop_hub "$HUB_PID"
    HUB_PID=
    if [ "$HUB_RC" -eq 0 ]; then
        echo "ok   hub exited 0 on SIGTERM"
        total_pass=$((total_pass + 1))
    else
        echo "FAIL: hub exit status $HUB_RC after SIGTERM"
        total_fail=$((total_fail + 1))
        status=1
    fi
}

# The node client asks for a restart by creating $SPA_RESTART_DIR/restart
# and waits for $SPA_RESTART_DIR/restarted (recovery across a restart).
export SPA_RESTART_DIR=$TMP/restart
mkdir "$SPA_RESTART_DIR"

# --- the clients ----------------------------------------------------------------------
export SPA_ADMIN_TOKEN=$ADMIN
status=0
tally() { tail -n 1 "$1" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p'; }
total_pass=0
total_fail=0
for client in python node; do
    if [ "$client" = python ]; then mode=plain; else mode=tls; fi
    start_hub "$mode"
    export SPA_URL=$URL
    echo "== $client client"
    out=$TMP/$client.out
    rc=0
    if [ "$client" = python ]; then
        timeout 300 "$PY" "$CLIENTS/python_client.py" 2>&1 | tee "$out" || rc=$?
    else
        (timeout 300 node "$CLIENTS/node_client.mjs" 2>&1 | tee "$out") &
        node_pid=$!
        while kill -0 "$node_pid" 2>/dev/null; do
            if [ -f "$SPA_RESTART_DIR/restart" ] && [ ! -f "$SPA_RESTART_DIR/restarted" ]; then
                echo "== restarting the hub (SIGTERM, then the same data dir)"
                stop_hub "$HUB_PID"
                [ "$HUB_RC" -eq 0 ] || echo "FAIL: hub exit status $HUB_RC on the restart"
                start_hub "$mode"
                touch "$SPA_RESTART_DIR/restarted"
            fi
            sleep 0.2
        done
        wait "$node_pid" || rc=$?
    fi
    read -r p f <<<"$(tally "$out")" || true
    if [ -z "${p:-}" ]; then
        echo "FAIL: the $client client printed no final tally (exit $rc)"
        p=0 f=1
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL: the $client client exited $rc"
        f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    [ "$rc" -eq 0 ] || status=1
    unset p f
    stop_and_count
done

[ "$status" -eq 0 ] || hub_log
echo "clients: $total_pass passed, $total_fail failed"
exit "$status"
