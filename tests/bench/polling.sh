#!/usr/bin/env bash
# The long-polling figures of #18 in one sitting, beside the WebSocket ones
# and the floor (../shared/bench-floor), one server at a time on 127.0.0.1:
#   1. 280 monitors at 20 events/s over WebSocket, then over long-polling
#      only (delivery p99, server CPU under load);
#   2. 10,000 monitors that open on long-polling and upgrade (all upgraded,
#      memory per connection after the upgrade), then 10,000 on WebSocket,
#      then the floor's 10,000;
#   3. 500 monitors at 20 events/s, floor then hub (WebSocket).
#
#   tests/bench/polling.sh [quick]     (quick: 2,000 connections, 10 s runs)
#
# Needs a release build of spa-hub and FLOOR_BIN (see hub-vs-floor.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
HUB=${SPA_HUB_BIN:-${CARGO_TARGET_DIR:-target}/release/spa-hub}
FLOOR=${FLOOR_BIN:-../shared/bench-floor/target/release/bench-floor}
[ -x "$HUB" ] || { echo "build spa-hub first: cargo build --release"; exit 1; }
[ -x "$FLOOR" ] || { echo "build the floor (see tests/bench/hub-vs-floor.sh)"; exit 1; }
N=10000; RATE_S=30
if [ "${1:-}" = quick ]; then N=2000; RATE_S=10; fi
TOKEN=bench-admin-token-0000
PORT=5311
data=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

# One load generator on one address: the per-token, per-address and HTTP
# pool limits are lifted for it (a polling monitor holds two HTTP
# connections).
start() { # which
    if [ "$1" = hub ]; then
        rm -rf "${data:?}"/*
        SPA_LISTEN=127.0.0.1:$PORT SPA_DATA_DIR=$data SPA_ADMIN_TOKEN=$TOKEN SPA_LOG=warn \
        SPA_LIGHTS=sim SPA_MAX_CONNECTIONS=$((N + 100)) \
        SPA_MAX_CONNECTIONS_PER_TOKEN=100000 SPA_MAX_PENDING_PER_ADDRESS=100000 \
        SPA_MAX_HTTP_CONNECTIONS=100000 "$HUB" serve >"$data.log" 2>&1 &
    else
        "$FLOOR" 127.0.0.1:$PORT >/dev/null 2>&1 &
    fi
    pid=$!
    for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0; sleep 0.1; done
    echo "server did not start"; exit 1
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; sleep 1; }
bench() { # label args...
    local label=$1; shift
    "$HUB" bench hub --url ws://127.0.0.1:$PORT --token $TOKEN --server-pid "$pid" --label "$label" "$@"
}

for transport in websocket polling; do
    echo; echo "##### hub: 280 monitors over $transport, 20 events/s for ${RATE_S} s"
    start hub; bench "hub 280 $transport" --monitors 280 --rate 20 --duration $RATE_S --transport $transport; stop
done
echo; echo "##### hub: $N monitors, long-polling then the upgrade, 10 s idle"
start hub; bench "hub $N upgrade" --monitors $N --rate 0 --duration 0 --idle 10 --connect-parallel 200 --transport upgrade; stop
echo; echo "##### hub: $N monitors over WebSocket, 10 s idle"
start hub; bench "hub $N websocket" --monitors $N --rate 0 --duration 0 --idle 10 --connect-parallel 200; stop
echo; echo "##### floor: $N monitors over WebSocket, 10 s idle"
start floor; bench "floor $N" --monitors $N --rate 0 --duration 0 --idle 10 --connect-parallel 200 --monitor-token x; stop
for which in floor hub; do
    extra=(); [ $which = floor ] && extra=(--monitor-token x)
    echo; echo "##### $which: 500 monitors, 20 events/s for ${RATE_S} s"
    start $which; bench "$which 500 20/s" --monitors 500 --rate 20 --duration $RATE_S "${extra[@]}"; stop
done
