#!/usr/bin/env bash
# Builds the amd64 Debian package with cargo-deb, inspects it (dpkg-deb -I,
# dpkg -c), installs it on this machine with dpkg -i, checks the user, the
# directories, the admin token, the conffile and the unit
# (systemd-analyze verify), reinstalls it as an upgrade (data and token kept),
# removes it (data kept) and purges it (data gone). It leaves the machine as
# it found it: the package purged, and the spa-hub user and gpio group deleted
# again if this script created them.
#
# Why not `dpkg --root=DIR`: dpkg runs the maintainer scripts chrooted into
# DIR, which then needs a whole Debian system (sh, adduser, systemd-sysusers);
# installing on this machine tests the real scripts instead. PID 1 here is
# not systemd: the generated snippets skip starting the service and only
# record its enablement.
#
# Usage: .ci/deb.sh   (as root; honours CARGO_TARGET_DIR)
# Refuses to run when spa-hub is already installed, unless SPA_DEB_FORCE=1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
PKG=spa-hub
DATA_DIR=/var/lib/spa-hub
CONF_DIR=/etc/spa-hub

[ "$(id -u)" = 0 ] || { echo "FAIL: run as root (dpkg -i)"; exit 1; }

apt_install() {
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
pkgs=()
command -v dpkg-shlibdeps >/dev/null || pkgs+=(dpkg-dev)     # cargo-deb's $auto depends
command -v systemd-analyze >/dev/null || pkgs+=(systemd)
command -v deb-systemd-helper >/dev/null || pkgs+=(init-system-helpers)
command -v adduser >/dev/null || pkgs+=(adduser)
if [ "${#pkgs[@]}" -gt 0 ]; then
    echo "== apt-get install ${pkgs[*]}"
    apt_install "${pkgs[@]}"
fi

# cargo-deb 3.x (sysusers support): the one on PATH if it is 3 or newer, else
# installed into .ci/tools of this clone.
cargo_deb_major() { cargo-deb --version 2>/dev/null | sed -n 's/^cargo-deb \([0-9]*\)\..*/\1/p'; }
if ! command -v cargo-deb >/dev/null || [ "$(cargo_deb_major)" -lt 3 ] 2>/dev/null; then
    export PATH="$REPO/.ci/tools/bin:$PATH"
    if ! command -v cargo-deb >/dev/null || [ "$(cargo_deb_major)" -lt 3 ]; then
        echo "== cargo install cargo-deb --locked --root .ci/tools"
        cargo install cargo-deb --locked --root "$REPO/.ci/tools"
    fi
fi
echo "== $(cargo-deb --version)"

fails=0
passes=0
ok()   { echo "ok: $*"; passes=$((passes + 1)); }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { # description command...
    local what=$1; shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

if dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null | grep -qv '^not-installed$'; then
    if [ "${SPA_DEB_FORCE:-}" != 1 ]; then
        echo "FAIL: $PKG is already installed here; this test would purge it (SPA_DEB_FORCE=1 to go on)"
        exit 1
    fi
fi
user_existed=0; getent passwd spa-hub >/dev/null && user_existed=1
ugroup_existed=0; getent group spa-hub >/dev/null && ugroup_existed=1
gpio_existed=0; getent group gpio >/dev/null && gpio_existed=1

work=$(mktemp -d)
cleanup() {
    local rc=$?
    if dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null | grep -qv '^not-installed$'; then
        echo "== cleanup: dpkg --purge $PKG"
        dpkg --purge "$PKG" >/dev/null 2>&1 || true
    fi
    [ "$user_existed" = 1 ] || ! getent passwd spa-hub >/dev/null || userdel spa-hub || true
    [ "$ugroup_existed" = 1 ] || ! getent group spa-hub >/dev/null || groupdel spa-hub || true
    [ "$gpio_existed" = 1 ] || ! getent group gpio >/dev/null || groupdel gpio || true
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

# --- build ----------------------------------------------------------------
# cargo builds first, so that cargo-deb's own output (checked for warnings:
# missing files, duplicate assets, units not found) is not mixed with rustc's.
echo "== cargo build --release"
cargo build --locked --release
echo "== cargo deb --no-build"
cargo deb --locked --no-build --output "$work/" 2>&1 | tee "$work/cargo-deb.log"
deb=$(ls "$work"/*.deb)
echo "package: $(basename "$deb"), $(stat -c %s "$deb") bytes"
if grep -qi 'warning' "$work/cargo-deb.log"; then
    fail "cargo deb printed warnings (see above)"
else
    ok "cargo deb without warnings"
fi

# --- dpkg-deb -I: control fields and maintainer scripts --------------------
dpkg-deb -I "$deb" | tee "$work/info.txt"
field() { dpkg-deb -f "$deb" "$1"; }
check "Package: spa-hub"       [ "$(field Package)" = spa-hub ]
check "Architecture: amd64"    [ "$(field Architecture)" = "$(dpkg --print-architecture)" ]
check "Depends on libc6"       grep -q 'libc6' <<<"$(field Depends)"
check "Depends on systemd-sysusers" grep -q 'systemd | systemd-standalone-sysusers | systemd-sysusers' <<<"$(field Depends)"
check "Section: net, Priority: optional" [ "$(field Section)/$(field Priority)" = net/optional ]
dpkg-deb -e "$deb" "$work/control"
check "conffiles lists /etc/spa-hub/spa-hub.env" grep -qx /etc/spa-hub/spa-hub.env "$work/control/conffiles"
for s in postinst prerm postrm; do
    check "$s exists and is executable" test -x "$work/control/$s"
    check "$s has no #DEBHELPER# token left" bash -c "! grep -q '#DEBHELPER#' '$work/control/$s'"
done
check "postinst runs systemd-sysusers spa-hub.conf" grep -q 'systemd-sysusers.*spa-hub.conf' "$work/control/postinst"
check "postinst enables the unit" grep -q 'deb-systemd-helper enable spa-hub.service' "$work/control/postinst"
check "postinst restarts the unit on upgrade" grep -q 'deb-systemd-invoke' "$work/control/postinst"
check "postrm deletes the data on purge" grep -q 'rm -rf /var/lib/spa-hub' "$work/control/postrm"
# The generated snippets (which start the service) come after the user, the
# directories and the token are made, i.e. where the token line was.
first_snippet=$(grep -n -m1 '^# Automatically added by cargo-deb' "$work/control/postinst" | cut -d: -f1)
# shellcheck disable=SC2016 # a literal $1
own_code=$(grep -n -m1 -F 'case "$1" in' "$work/control/postinst" | cut -d: -f1)
ordered() { [ -n "$first_snippet" ] && [ -n "$own_code" ] && [ "$own_code" -lt "$first_snippet" ]; }
check "postinst: own code (line $own_code) before the snippets (line $first_snippet)" ordered
for s in postinst postrm prerm; do
    check "$s parses (sh -n)" sh -n "$work/control/$s"
done

# --- dpkg -c: the files ---------------------------------------------------
dpkg -c "$deb" | tee "$work/contents.txt"
has() { grep -Eq " \./$1\$" "$work/contents.txt"; }
check "binary /usr/bin/spa-hub"  has 'usr/bin/spa-hub'
check "unit spa-hub.service"     has '(usr/)?lib/systemd/system/spa-hub\.service'
check "conffile /etc/spa-hub/spa-hub.env" has 'etc/spa-hub/spa-hub\.env'
check "sysusers /usr/lib/sysusers.d/spa-hub.conf" has 'usr/lib/sysusers\.d/spa-hub\.conf'
check "udev rule /usr/lib/udev/rules.d/60-spa-hub-gpio.rules" has 'usr/lib/udev/rules\.d/60-spa-hub-gpio\.rules'
check "README in /usr/share/doc/spa-hub" has 'usr/share/doc/spa-hub/README\.md'
check "binary mode 0755" grep -Eq '^-rwxr-xr-x .* \./usr/bin/spa-hub$' "$work/contents.txt"

# --- install ----------------------------------------------------------------
echo "== dpkg -i"
dpkg -i --force-confold "$deb" 2>&1 | tee "$work/install.log"
check "installed" [ "$(dpkg-query -W -f='${db:Status-Status}' "$PKG")" = installed ]
check "maintainer scripts printed no errors" bash -c "! grep -Eiq 'not found|error|warning' '$work/install.log'"
check "postinst printed where the admin token is" grep -q "admin token generated in $DATA_DIR/admin-token" "$work/install.log"
check "user spa-hub exists" getent passwd spa-hub
check "user spa-hub has no login shell" grep -Eq '^spa-hub:.*:(/usr/sbin/nologin|/sbin/nologin|/bin/false)$' /etc/passwd
check "group gpio exists" getent group gpio
check "spa-hub is in group gpio" bash -c "id -nG spa-hub | tr ' ' '\n' | grep -qx gpio"
statof() { stat -c '%U:%G %a' "$1"; }
check "$DATA_DIR is spa-hub:spa-hub 700" [ "$(statof $DATA_DIR)" = "spa-hub:spa-hub 700" ]
check "admin-token is spa-hub:spa-hub 600" [ "$(statof $DATA_DIR/admin-token)" = "spa-hub:spa-hub 600" ]
check "admin-token holds 64 hex digits" grep -Eqx '[0-9a-f]{64}' "$DATA_DIR/admin-token"
check "$CONF_DIR is root:spa-hub 750" [ "$(statof $CONF_DIR)" = "root:spa-hub 750" ]
check "spa-hub.env is root:spa-hub 640" [ "$(statof $CONF_DIR/spa-hub.env)" = "root:spa-hub 640" ]
check "dpkg records the conffile" grep -q '/etc/spa-hub/spa-hub.env' <<<"$(dpkg-query -W -f='${Conffiles}' "$PKG")"
unit=$(dpkg -L "$PKG" | grep -E '/systemd/system/spa-hub\.service$' | head -n1)
check "unit installed ($unit)" test -f "$unit"
verify_out=$(systemd-analyze verify "$unit" 2>&1) && verify_rc=0 || verify_rc=$?
echo "$verify_out"
check "systemd-analyze verify $unit" [ "$verify_rc" = 0 ]
check "unit enabled (multi-user.target.wants)" test -L /etc/systemd/system/multi-user.target.wants/spa-hub.service
check "sysusers file installed" test -f /usr/lib/sysusers.d/spa-hub.conf
check "udev rule installed" test -f /usr/lib/udev/rules.d/60-spa-hub-gpio.rules
check "binary runs (spa-hub --help)" /usr/bin/spa-hub --help

# The daemon accepts the installed configuration, as the service user, with
# the token file the postinst wrote (only once the binary has `check`).
if /usr/bin/spa-hub --help 2>&1 | grep -qw check; then
    echo "== spa-hub check (as spa-hub)"
    # As the unit runs it: user spa-hub with group gpio, LimitNOFILE=16384,
    # SPA_DATA_DIR from Environment=.
    if prlimit --nofile=16384:16384 \
        setpriv --reuid=spa-hub --regid=spa-hub --init-groups \
        env SPA_DATA_DIR="$DATA_DIR" /usr/bin/spa-hub check --env-file "$CONF_DIR/spa-hub.env" \
        > "$work/check.txt" 2>&1; then
        sed 's/^\(admin token: \)[0-9a-f]\{8\}[0-9a-f]*/\1<redacted>/' "$work/check.txt"
        ok "spa-hub check as spa-hub"
        check "spa-hub check shows the token the postinst wrote" \
            grep -qF "admin token: $(cat "$DATA_DIR/admin-token")" "$work/check.txt"
    else
        cat "$work/check.txt"; fail "spa-hub check as spa-hub"
    fi
else
    echo "skip: spa-hub check (the binary has no check subcommand yet)"
fi

# --- upgrade (reinstall): data, token and local edits kept -----------------
token_sum=$(sha256sum "$DATA_DIR/admin-token")
echo "marker" > "$DATA_DIR/upgrade-marker"; chown spa-hub:spa-hub "$DATA_DIR/upgrade-marker"
echo "SPA_LOG=debug" >> "$CONF_DIR/spa-hub.env"
echo "== dpkg -i (again: upgrade path)"
dpkg -i --force-confold "$deb" 2>&1 | tee "$work/upgrade.log"
check "upgrade: maintainer scripts printed no errors" bash -c "! grep -Eiq 'not found|error|warning' '$work/upgrade.log'"
check "upgrade keeps the admin token" [ "$(sha256sum "$DATA_DIR/admin-token")" = "$token_sum" ]
check "upgrade keeps the data" test -f "$DATA_DIR/upgrade-marker"
check "upgrade keeps local edits of the conffile" grep -qx 'SPA_LOG=debug' "$CONF_DIR/spa-hub.env"
check "upgrade does not print a new token" bash -c "! grep -q 'admin token generated' '$work/upgrade.log'"

# --- remove: data and configuration kept ------------------------------------
echo "== dpkg --remove"
dpkg --remove "$PKG" 2>&1 | tee "$work/remove.log"
check "remove: maintainer scripts printed no errors" bash -c "! grep -Eiq 'not found|error|warning' '$work/remove.log'"
check "remove deletes the binary" test ! -e /usr/bin/spa-hub
check "remove keeps the data" test -f "$DATA_DIR/admin-token"
check "remove keeps the configuration" test -f "$CONF_DIR/spa-hub.env"

# --- purge: data and configuration gone -------------------------------------
echo "== dpkg --purge"
dpkg --purge "$PKG" 2>&1 | tee "$work/purge.log"
check "purge: maintainer scripts printed no errors" bash -c "! grep -Eiq 'not found|error|warning' '$work/purge.log'"
check "purge deletes $DATA_DIR" test ! -e "$DATA_DIR"
check "purge deletes $CONF_DIR" test ! -e "$CONF_DIR"
check "purge removes the enablement" test ! -e /etc/systemd/system/multi-user.target.wants/spa-hub.service
check "package gone" bash -c "! dpkg-query -W -f='\${db:Status-Status}' $PKG 2>/dev/null | grep -qv '^not-installed\$'"

echo "deb: $passes passed, $fails failed"
[ "$fails" = 0 ]
