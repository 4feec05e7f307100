# shellcheck shell=bash
# Sourced by .ci/clients.sh and .ci/browser.sh: the hub binary under test,
# waiting for it to be healthy, and stopping it with SIGTERM. Expects ROOT
# (the checkout) and, for the failure paths, a `hub_log` function.

# Sets BIN (an absolute path): $SPA_HUB_BIN when given, else the binary of a
# fresh `cargo build --release` (honours CARGO_TARGET_DIR).
hub_binary() {
    if [ -n "${SPA_HUB_BIN:-}" ]; then
        BIN=$SPA_HUB_BIN
    else
        echo "== cargo build --release"
        cargo build --release --locked
        BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/spa-hub
    fi
    [ -x "$BIN" ] || { echo "FAIL: no hub binary at $BIN"; exit 1; }
    BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
}

# Waits up to 30 s for the hub (pid $1) to pass a health check: the command
# given after the pid, which exits 0 once /healthz answers 200.
wait_healthy() {
    local pid=$1
    shift
    for _ in $(seq 1 150); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "FAIL: the hub exited before it was healthy"
            hub_log
            exit 1
        fi
        if "$@" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "FAIL: /healthz not 200 within 30 s"
    hub_log
    exit 1
}

# Sends SIGTERM to the hub (pid $1) if it still runs and reaps it, with a
# SIGKILL after 10 s. Sets HUB_RC to its exit status (137 when it had to be
# killed).
stop_hub() {
    local pid=$1 exited=
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { exited=1; break; }
        sleep 0.1
    done
    if [ -z "$exited" ]; then
        echo "FAIL: the hub did not exit within 10 s of SIGTERM"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # HUB_RC is read by the sourcing script.
    # shellcheck disable=SC2034
    {
        HUB_RC=0
        wait "$pid" || HUB_RC=$?
    }
}

# Makes TMP (a fresh directory named after $1) and, on exit, kills a hub
# still running (HUB_PID), runs `extra_cleanup` when the script defines
# one, and removes TMP.
hub_workdir() {
    TMP=$(mktemp -d -t "$1.XXXXXX")
    HUB_PID=
    trap hub_cleanup EXIT
    trap 'exit 130' INT TERM
}

# shellcheck disable=SC2317 # called by the EXIT trap
hub_cleanup() {
    if [ -n "$HUB_PID" ] && kill -0 "$HUB_PID" 2>/dev/null; then
        kill -KILL "$HUB_PID" 2>/dev/null || true
        wait "$HUB_PID" 2>/dev/null || true
    fi
    if declare -F extra_cleanup >/dev/null; then extra_cleanup; fi
    rm -rf "$TMP"
}
