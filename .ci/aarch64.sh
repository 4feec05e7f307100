#!/usr/bin/env bash
# Cross-builds spa-hub for the Pi's aarch64 with plain cargo and Debian's
# cross toolchain (linker and qemu runner from .cargo/config.toml), runs the
# unit and integration tests on aarch64 under qemu-aarch64, and prints the
# size of the stripped release binary.
# Usage: .ci/aarch64.sh   (honours CARGO_TARGET_DIR; root only to apt-get)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=aarch64-unknown-linux-gnu
TARGET_DIR=${CARGO_TARGET_DIR:-target}

apt_install() {
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
pkgs=()
command -v aarch64-linux-gnu-gcc >/dev/null || pkgs+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so ] || pkgs+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || pkgs+=(qemu-user)
command -v file >/dev/null || pkgs+=(file)
if [ "${#pkgs[@]}" -gt 0 ]; then
    echo "== apt-get install ${pkgs[*]}"
    apt_install "${pkgs[@]}"
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET"
fi

echo "== $(aarch64-linux-gnu-gcc --version | head -n1)"
echo "== $(qemu-aarch64 --version | head -n1)"

# The release binary: built, checked and sized here unless
# SPA_AARCH64_RELEASE=0 (.ci/run sets it: .ci/cross.sh builds the release
# binary for aarch64 in podman and makes the same checks on it).
stripped=$(mktemp)
trap 'rm -f "$stripped"' EXIT   # replaced by cleanup below
if [ "${SPA_AARCH64_RELEASE:-1}" = 1 ]; then
    echo "== cargo build --release --target $TARGET"
    cargo build --locked --release --target "$TARGET"

    bin="$TARGET_DIR/$TARGET/release/spa-hub"
    desc=$(file -L "$bin")
    echo "$desc"
    grep -q 'ARM aarch64' <<<"$desc" || { echo "FAIL: $bin is not an aarch64 binary"; exit 1; }

    # The release profile already strips symbols; strip a copy again with the
    # target's strip to report the size that ships.
    aarch64-linux-gnu-strip -o "$stripped" "$bin"
    size=$(stat -c %s "$stripped")
    echo "aarch64 release binary: $(stat -c %s "$bin") bytes as built, $size bytes stripped ($(( (size + 524288) / 1048576 )) MiB)"

    # The binary starts on aarch64 (under qemu-aarch64 through the runner).
    echo "== spa-hub --help under qemu-aarch64"
    qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin" --help >/dev/null \
        || { echo "FAIL: the aarch64 binary does not run under qemu-aarch64"; exit 1; }
fi

# The runner runs each test binary under qemu-aarch64, but the integration
# tests spawn the aarch64 spa-hub binary themselves (with a cleared
# environment), which the kernel can only run through binfmt_misc. Register,
# for the duration of the tests, a wrapper that runs qemu-aarch64 with the
# aarch64 sysroot (newest entries match first, so this one wins over a
# system-wide qemu registration without a sysroot); undone on exit.
BINFMT=/proc/sys/fs/binfmt_misc
ENTRY=spa-hub-qemu-aarch64
wrapdir=$(mktemp -d)
binfmt_mounted_here=0
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    rm -f "$stripped"
    if [ -e "$BINFMT/$ENTRY" ]; then echo -1 > "$BINFMT/$ENTRY" || true; fi
    if [ "$binfmt_mounted_here" = 1 ]; then umount "$BINFMT" || true; fi
    rm -rf "$wrapdir"
}
trap cleanup EXIT
cat > "$wrapdir/qemu-aarch64-sysroot" <<WRAP
#!/bin/sh
exec $(command -v qemu-aarch64) -L /usr/aarch64-linux-gnu "\$@"
WRAP
chmod 755 "$wrapdir"/qemu-aarch64-sysroot "$wrapdir"
if [ ! -e "$BINFMT/register" ]; then
    mount -t binfmt_misc binfmt_misc "$BINFMT" && binfmt_mounted_here=1
fi
if [ -e "$BINFMT/$ENTRY" ]; then echo -1 > "$BINFMT/$ENTRY"; fi
# Magic and mask of an aarch64 ELF executable, as in qemu's
# scripts/qemu-binfmt-conf.sh.
magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
printf '%s' ":$ENTRY:M::$magic:$mask:$wrapdir/qemu-aarch64-sysroot:" > "$BINFMT/register"
echo "== binfmt_misc: aarch64 ELF -> qemu-aarch64 -L /usr/aarch64-linux-gnu (until exit)"

# The seeded simulations of the pure core (thousands of steps, each step
# checking every invariant) are plain integer and collection code with no
# target-specific path; they run natively in the test step and are skipped
# here, where emulation makes them the slowest part of CI.
# The unit tests and the integration suites where the platform matters run
# (--no-fail-fast): storage (sled and fdatasync on aarch64), restart
# (SIGKILL durability), hub (the network paths) and security (ring's
# aarch64 code: TLS, sealing; argon2). Suites of platform-neutral logic
# (timers, lights, money, cli) run natively in the test step: building
# each extra test binary for aarch64 costs CI about a minute;
# the load and fault suites (storm, soak, faults, malformed) measure timing
# under load and run natively in .ci/faults.sh: under emulation they test
# qemu's speed, not the hub. A hung test would hold CI until its
# limit: the whole run is bounded (timeout kills cargo and the tests, one
# process group), SPA_QEMU_TEST_TIMEOUT seconds, 30 minutes by default.
# The dependencies (argon2, sled, tokio, ...) are built optimised for this
# run: under emulation, unoptimised argon2 hashing alone takes seconds per
# login and makes the hub tests' network timeouts fire. spa-hub's own code
# stays a debug build, with its debug assertions.
limit=${SPA_QEMU_TEST_TIMEOUT:-1800}
echo "== cargo test --target $TARGET (under qemu-aarch64, at most ${limit}s)"
rc=0
timeout --kill-after=30 "$limit" \
    cargo test --locked --no-fail-fast --target "$TARGET" \
    --config 'profile.dev.package."*".opt-level = 2' \
    --lib --test storage --test restart --test hub --test security \
    -- --skip tests::simulation --skip tests::book_sim --skip tests::books_day \
    --skip tests::archive::seeded --skip tests::customers::seeded \
    --skip tests::counter_sim || rc=$?
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "FAIL: cargo test under qemu-aarch64 did not finish within ${limit}s (a test hangs?)"
fi
exit "$rc"
