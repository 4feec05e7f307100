#!/usr/bin/env bash
# Checks the systemd side of the package, without installing anything of the
# project: the unit passes `systemd-analyze verify`, its
# `systemd-analyze security --offline=true` exposure is at most 2.0, it keeps
# the settings the appliance relies on, and the sysusers file parses.
# Usage: .ci/systemd-check.sh   (from anywhere; needs root only to apt-get)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
UNIT=systemd/spa-hub.service
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}

apt_install() {
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v systemd-analyze >/dev/null || apt_install systemd

echo "== systemd $(systemd-analyze --version | head -n1)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- the settings the appliance relies on ---------------------------------
missing=0
for want in \
    'Type=notify' 'NotifyAccess=main' 'WatchdogSec=30' \
    'EnvironmentFile=/etc/spa-hub/spa-hub.env' \
    'Environment=SPA_DATA_DIR=/var/lib/spa-hub' \
    'StateDirectory=spa-hub' 'StateDirectoryMode=0700' \
    'User=spa-hub' 'Group=spa-hub' 'SupplementaryGroups=gpio' \
    'LimitNOFILE=16384' 'Restart=on-failure' 'RestartPreventExitStatus=78' \
    'ExecStart=/usr/bin/spa-hub serve' \
    'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' 'NoNewPrivileges=yes' \
    'DevicePolicy=closed' 'DeviceAllow=/dev/gpiomem rw' 'DeviceAllow=char-gpiochip rw' \
    'SystemCallFilter=@system-service' \
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
    'ProtectClock=yes' 'CapabilityBoundingSet='; do
    if ! grep -qxF "$want" "$UNIT"; then
        echo "FAIL: $UNIT lacks the line: $want"; missing=1
    fi
done
for unwanted in '^PrivateDevices=yes' '^ProcSubset=pid' '^RestrictAddressFamilies=.*AF_NETLINK'; do
    if grep -Eq "$unwanted" "$UNIT"; then
        echo "FAIL: $UNIT has $unwanted (see the comments in the unit)"; missing=1
    fi
done
[ "$missing" = 0 ] || exit 1
echo "ok: required settings present"

# --- systemd-analyze verify -----------------------------------------------
# verify wants ExecStart= to exist: check a copy whose ExecStart runs an
# existing binary (the built one if there is one), same arguments.
bin=/bin/true
for b in "${CARGO_TARGET_DIR:-target}/release/spa-hub" "${CARGO_TARGET_DIR:-target}/debug/spa-hub" /usr/bin/spa-hub; do
    if [ -x "$b" ]; then bin=$(readlink -f "$b"); break; fi
done
sed "s#^ExecStart=/usr/bin/spa-hub #ExecStart=$bin #" "$UNIT" > "$work/spa-hub.service"
if ! out=$(systemd-analyze verify "$work/spa-hub.service" 2>&1); then
    echo "$out"; echo "FAIL: systemd-analyze verify (ExecStart -> $bin)"; exit 1
fi
if printf '%s\n' "$out" | grep -q 'spa-hub'; then
    echo "$out"; echo "FAIL: systemd-analyze verify printed warnings for the unit"; exit 1
fi
echo "ok: systemd-analyze verify $UNIT (ExecStart -> $bin)"

# --- systemd-analyze security ---------------------------------------------
systemd-analyze security --offline=true --no-pager "$UNIT" > "$work/security.txt" 2>&1 || true
grep -v '^✓' "$work/security.txt" || true
score=$(sed -n 's/.*Overall exposure level for spa-hub.service: \([0-9.]*\).*/\1/p' "$work/security.txt")
if [ -z "$score" ]; then
    cat "$work/security.txt"; echo "FAIL: no exposure score in the output"; exit 1
fi
echo "exposure: $score (limit $MAX_EXPOSURE)"
if ! awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s + 0 <= m + 0) }'; then
    echo "FAIL: systemd-analyze security exposure $score > $MAX_EXPOSURE"; exit 1
fi
echo "ok: systemd-analyze security exposure $score <= $MAX_EXPOSURE"

# --- sysusers file (dry run in an empty root) ------------------------------
if command -v systemd-sysusers >/dev/null; then
    mkdir -p "$work/root/etc" "$work/root/usr/lib/sysusers.d"
    cp systemd/spa-hub.sysusers "$work/root/usr/lib/sysusers.d/spa-hub.conf"
    out=$(systemd-sysusers --root="$work/root" --dry-run spa-hub.conf 2>&1)
    for want in "Creating group 'gpio'" "Creating user 'spa-hub'"; do
        printf '%s\n' "$out" | grep -qF "$want" || { echo "$out"; echo "FAIL: sysusers: no $want"; exit 1; }
    done
    echo "ok: systemd/spa-hub.sysusers creates group gpio and user spa-hub"
fi

# --- udev rule: the two device patterns, group gpio, mode 0660 -------------
for pat in 'KERNEL=="gpiochip\[0-9\]\*"' 'KERNEL=="gpiomem\*"'; do
    grep -E "^$pat, GROUP=\"gpio\", MODE=\"0660\"$" systemd/60-spa-hub-gpio.rules >/dev/null \
        || { echo "FAIL: udev rule for $pat"; exit 1; }
done
echo "ok: systemd/60-spa-hub-gpio.rules"

echo "systemd-check: 5 passed, 0 failed"
