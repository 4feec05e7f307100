#!/usr/bin/env bash
# `cross build` for the Pi (aarch64), for real, on a machine with no container
# engine and no reachable container registry (the route of
# ../shared/notes/cross-podman.md, the README's "Building for the Pi"):
#
#   1. apt: podman runc debootstrap uidmap slirp4netns fuse-overlayfs (and
#      qemu-user, the aarch64 C library and `file` for the checks);
#   2. cargo install cross, pinned (CROSS_VERSION below);
#   3. the pinned Rust toolchain with the aarch64 target (TOOLCHAIN below),
#      in a rustup home of this run's own;
#   4. a base image without a registry: debootstrap --variant=minbase bookworm
#      from the Debian mirror apt uses (/etc/apt/sources.list*), imported with
#      `podman import` as localhost/debian:bookworm;
#   5. the build image from image/cross/Containerfile, named as cross.toml's
#      `image =` says;
#   6. `cross +TOOLCHAIN build --locked --release --target aarch64-unknown-linux-gnu`
#      with a target directory of its own;
#   7. checks: `file` says ELF 64-bit ARM aarch64, stripped; the size is at
#      most SPA_CROSS_MAX_BYTES; `qemu-aarch64 -L /usr/aarch64-linux-gnu
#      spa-hub --version` prints this version; and the host's Rust toolchains
#      (`rustup toolchain list`, `rustc --version`) are what they were.
#
# THE TRAP: cross 0.2.5 cannot parse rustup 1.29's `rustup toolchain list`
# (the default's line ends in "(active, default)"), decides the toolchain is
# missing and runs `rustup toolchain add stable`, which upgrades the machine's
# stable toolchain in place; every cross command does this, `cross --version`
# included. So cross is only ever called as `cross +1.95.0` with
# CROSS_CUSTOM_TOOLCHAIN=1 (else it adds rust-src), and with the pinned
# toolchain installed in a rustup home of this run (RUSTUP_HOME, step 3; on
# these machines the host's "1.95.0" is a link to its stable toolchain). The
# script fails if the host's toolchains changed.
#
# Podman is configured through files of this run only (CONTAINERS_CONF,
# CONTAINERS_STORAGE_CONF; nothing in /etc is edited): runc instead of crun
# (crun cannot raise RLIMIT_NOFILE here and refuses the hybrid cgroup
# layout), explicit ulimits, cgroupfs, the host network (no CNI/netavark, no
# firewall rules), and images, containers and state under the work directory.
#
# Usage: .ci/cross.sh   (as root, on Debian; network to the Debian mirror and
# to crates.io). Environment, all optional:
#   SPA_CROSS_WORK=target/cross-ci   work directory: podman's storage and
#                                    state, the rustup home with the pinned
#                                    toolchain, the target directory, logs
#   SPA_CROSS_MAX_BYTES=20971520     largest acceptable binary (20 MiB)
#   SPA_CROSS_TIMEOUT=1800           seconds allowed for `cross build`
#   SPA_CROSS_MIRROR=URL             Debian mirror for debootstrap (default:
#                                    the one apt uses)
# A second run in the same work directory reuses both images (podman's layer
# cache); a fresh clone (CI) makes everything.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
export PATH=$PATH:/usr/sbin:/sbin
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

TARGET=aarch64-unknown-linux-gnu
CROSS_VERSION=0.2.5     # newest on crates.io; see THE TRAP above
TOOLCHAIN=1.95.0        # installed explicitly; never `stable`
HOST_TRIPLE=x86_64-unknown-linux-gnu
SUITE=bookworm          # the base image's Debian (must match the Containerfile's FROM)
BASE_IMAGE=localhost/debian:$SUITE
CONTAINERFILE=image/cross/Containerfile
WORK=$(mkdir -p "${SPA_CROSS_WORK:-target/cross-ci}" && cd "${SPA_CROSS_WORK:-target/cross-ci}" && pwd)
MAX_BYTES=${SPA_CROSS_MAX_BYTES:-20971520}
CROSS_TIMEOUT=${SPA_CROSS_TIMEOUT:-1800}

die() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (apt-get, debootstrap, podman)"
trap 'echo "FAIL: .ci/cross.sh line $LINENO: $BASH_COMMAND (exit $?)" >&2' ERR

# The build image's name, from cross.toml's `image =` line of the aarch64
# target (one name for cross and for `podman build`).
IMAGE=$(awk -v t="[target.$TARGET]" '
    /^\[/ { in_t = ($0 == t) }
    in_t && /^image *=/ { sub(/^image *= *"/, ""); sub(/".*$/, ""); print; exit }' cross.toml)
[ -n "$IMAGE" ] || die "cross.toml has no image = line under [target.$TARGET]"
grep -qx "FROM $BASE_IMAGE" "$CONTAINERFILE" || die "$CONTAINERFILE is not FROM $BASE_IMAGE"

started=$(date +%s)
phase_started=$started
timings=()
phase() {
    local now; now=$(date +%s)
    timings+=("$(printf '  %-34s %5d s' "$1" $((now - phase_started)))")
    printf '   (%s: %d s)\n' "$1" $((now - phase_started))
    phase_started=$now
}
say() { printf '\n== %s\n' "$*"; }

# --- the host's Rust toolchains, before -----------------------------------------
# What must not change: `rustup toolchain list`, `rustc --version` (with the
# commit), the default toolchain's components, rustup's record of the
# channel manifests it installed (changed by any update, even one that ends
# with the same version), and rustup itself.
HOST_RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
host_toolchains() {
    echo "$(rustup --version 2>/dev/null); $(sha256sum < "$(command -v rustup)" | cut -c1-16)"
    RUSTUP_HOME=$HOST_RUSTUP_HOME rustup toolchain list
    RUSTUP_HOME=$HOST_RUSTUP_HOME rustc --version
    RUSTUP_HOME=$HOST_RUSTUP_HOME rustc -vV | grep -E '^commit-hash:'
    echo "components: $(RUSTUP_HOME=$HOST_RUSTUP_HOME rustup component list --installed | tr '\n' ' ')"
    (cd "$HOST_RUSTUP_HOME/update-hashes" 2>/dev/null && grep -H . -- * || true) | sed 's/^/update-hash /'
}
host_before=$(host_toolchains)
say "host toolchains before"
echo "$host_before"

# --- 1. apt ------------------------------------------------------------------
say "apt-get install podman runc debootstrap uidmap slirp4netns fuse-overlayfs, qemu-user"
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have podman || need+=(podman)
have runc || need+=(runc)
have debootstrap || need+=(debootstrap)
have newuidmap || need+=(uidmap)
have slirp4netns || need+=(slirp4netns)
have fuse-overlayfs || need+=(fuse-overlayfs)
have qemu-aarch64 || need+=(qemu-user)
# qemu-aarch64 -L /usr/aarch64-linux-gnu runs the binary with Debian's
# aarch64 C library and libgcc_s (the binary needs both).
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || need+=(libc6-arm64-cross)
[ -e /usr/aarch64-linux-gnu/lib/libgcc_s.so.1 ] || need+=(libgcc-s1-arm64-cross)
have file || need+=(file)
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ "${#need[@]}" -gt 0 ]; then
    echo "apt-get install ${need[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${need[@]}" >/dev/null
else
    echo "all installed"
fi
echo "$(podman --version), $(runc --version | head -n1), debootstrap $(dpkg-query -W -f='${Version}' debootstrap), $(qemu-aarch64 --version | head -n1)"
phase "apt"

# --- 2. cross, pinned -----------------------------------------------------------
# (Not `cross --version` to see what is installed: every cross 0.2.5 command,
# --version included, runs the toolchain check of THE TRAP.)
say "cargo install cross --version $CROSS_VERSION --locked"
if cargo install --list | grep -qx "cross v$CROSS_VERSION:"; then
    echo "cross $CROSS_VERSION already installed"
else
    cargo install cross --version "$CROSS_VERSION" --locked
fi
phase "cargo install cross"

# --- 3. the pinned toolchain, in a rustup home of its own ------------------------
# On these machines ~/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu is a
# symbolic link to the stable toolchain: installing the pinned toolchain or a
# target there changes stable itself, under whatever else is compiling. So
# the pinned toolchain lives in this run's own RUSTUP_HOME (the default there,
# so that cargo and rustc resolve to it), and cross never sees the host's
# rustup home: whatever cross 0.2.5 asks rustup to do, it can only re-sync a
# pinned release in this directory.
# A new rustup home would let rustup update itself (the one binary in
# ~/.cargo/bin, shared with the host) whenever it installs a toolchain, as
# cross's `rustup toolchain add` does: off, before anything else.
export RUSTUP_HOME=$WORK/rustup
mkdir -p "$RUSTUP_HOME"
rustup set auto-self-update disable
say "rustup toolchain install $TOOLCHAIN -t $TARGET (RUSTUP_HOME=$RUSTUP_HOME)"
rustup toolchain install "$TOOLCHAIN" --profile minimal --no-self-update -t "$TARGET" 2>&1 | tail -n 2
rustup default "$TOOLCHAIN" >/dev/null
rustup target list --installed | grep -qx "$TARGET" \
    || die "the $TARGET target is not installed for $TOOLCHAIN"
echo "$(rustc --version); $(rustup toolchain list | tr '\n' ' ')"
phase "rustup toolchain $TOOLCHAIN"

# --- podman, configured for this run only ---------------------------------------
P=$WORK/podman
mkdir -p "$P/storage" "$P/run" "$P/tmp" "$P/networks"
cat > "$WORK/containers.conf" <<EOF
# podman's settings for .ci/cross.sh (CONTAINERS_CONF); /etc is not touched.
[containers]
# crun/runc cannot raise RLIMIT_NOFILE here (no CAP_SYS_RESOURCE in the VM):
# ask for exactly the host's limit.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
# The host's network: no CNI/netavark bridge, no firewall rules.
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$P/events.log"
tmp_dir = "$P/tmp"

[network]
network_config_dir = "$P/networks"
EOF
# overlay where the kernel has it (a copy per layer, vfs, is much slower).
driver=overlay
grep -qw overlay /proc/filesystems || driver=vfs
cat > "$WORK/storage.conf" <<EOF
# podman's image storage for .ci/cross.sh (CONTAINERS_STORAGE_CONF).
[storage]
driver = "$driver"
graphroot = "$P/storage"
runroot = "$P/run"
EOF
export CONTAINERS_CONF=$WORK/containers.conf
export CONTAINERS_STORAGE_CONF=$WORK/storage.conf
ulimit -n 20000 2>/dev/null || true
podman info --format '{{.Store.GraphDriverName}} storage in {{.Store.GraphRoot}}, runtime {{.Host.OCIRuntime.Name}}, cgroups {{.Host.CgroupManager}} {{.Host.CgroupsVersion}}'

# --- 4. the base image: debootstrap, podman import ---------------------------------
# The Debian mirror apt uses: the URI of the first `deb` entry for the suite
# (deb822 .sources files or one-line .list files).
debian_mirror() {
    local suite=$1 f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        awk -v s="$suite" 'BEGIN { RS = ""; FS = "\n" }
            { uri = ""; ok = 0; deb = 0
              for (i = 1; i <= NF; i++) {
                  if ($i ~ /^URIs:/) { n = split($i, u, /[ \t]+/); uri = u[2] }
                  if ($i ~ /^Suites:/) { n = split($i, a, /[ \t]+/); for (j = 2; j <= n; j++) if (a[j] == s) ok = 1 }
                  if ($i ~ /^Types:/) { n = split($i, a, /[ \t]+/); for (j = 2; j <= n; j++) if (a[j] == "deb") deb = 1 }
              }
              if (ok && deb && uri != "") { print uri; exit } }' "$f"
    done
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | sed -E 's/\[[^]]*\]//' | awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }' \
        || true   # (no sources.list at all is fine)
}
say "base image $BASE_IMAGE"
if podman image exists "$BASE_IMAGE"; then
    echo "reused from $P/storage"
else
    host_suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    mirror=${SPA_CROSS_MIRROR:-$(debian_mirror "$SUITE" | sed -n 1p)}
    [ -n "$mirror" ] || mirror=$(debian_mirror "$host_suite" | sed -n 1p)
    [ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list*; set SPA_CROSS_MIRROR"
    echo "debootstrap --variant=minbase $SUITE from $mirror"
    rootfs=$WORK/rootfs
    rm -rf "$rootfs"
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" > "$WORK/debootstrap.log" 2>&1 \
        || { tail -n 30 "$WORK/debootstrap.log"; die "debootstrap failed (log: $WORK/debootstrap.log)"; }
    rm -f "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" --numeric-owner -c . \
        | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
fi
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$BASE_IMAGE"
phase "base image (debootstrap)"

# --- 5. the build image --------------------------------------------------------
say "build image $IMAGE from $CONTAINERFILE"
podman build --pull=never --network=host --quiet -t "$IMAGE" \
    -f "$CONTAINERFILE" "$(dirname "$CONTAINERFILE")" >/dev/null
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$IMAGE"
phase "build image (podman build)"

# --- 6. cross build -----------------------------------------------------------
# /usr/local/bin/docker exists on these machines without a daemon, and cross
# would pick it first: CROSS_CONTAINER_ENGINE=podman.
export CROSS_CONTAINER_ENGINE=podman
export CROSS_CUSTOM_TOOLCHAIN=1
export CROSS_CONFIG=$REPO/cross.toml
export CARGO_TARGET_DIR=$WORK/target
say "cross +$TOOLCHAIN build --locked --release --target $TARGET (CARGO_TARGET_DIR=$CARGO_TARGET_DIR, at most ${CROSS_TIMEOUT}s)"
rc=0
timeout --kill-after=30 "$CROSS_TIMEOUT" \
    cross +"$TOOLCHAIN" build --locked --release --target "$TARGET" || rc=$?
[ "$rc" = 0 ] || die "cross build failed (exit $rc)"
phase "cross build"

# --- 7. the binary and the host ------------------------------------------------
bin=$CARGO_TARGET_DIR/$TARGET/release/spa-hub
say "checks: $bin"
desc=$(file -L "$bin")
echo "$desc"
grep -q 'ELF 64-bit LSB .*ARM aarch64' <<<"$desc" || die "not an ELF 64-bit aarch64 binary"
grep -q ', stripped' <<<"$desc" || die "not stripped"
size=$(stat -c %s "$bin")
echo "size: $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }') MiB; limit $MAX_BYTES)"
[ "$size" -le "$MAX_BYTES" ] || die "the binary is larger than $MAX_BYTES bytes"
echo "newest glibc symbol version needed: $(grep -aoE 'GLIBC_2\.[0-9]+' "$bin" | sort -uV | tail -n1)"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
out=$(qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin" --version)
echo "qemu-aarch64 -L /usr/aarch64-linux-gnu spa-hub --version: $out"
[ "$out" = "spa-hub $version" ] || die "expected \"spa-hub $version\""

say "host toolchains after"
host_after=$(host_toolchains)
echo "$host_after"
[ "$host_after" = "$host_before" ] || { diff <(echo "$host_before") <(echo "$host_after") || true
                                        die "the host's Rust toolchains changed"; }
echo "unchanged"
phase "checks"

say "cross: done in $(( $(date +%s) - started )) s"
printf '%s\n' "${timings[@]}"
