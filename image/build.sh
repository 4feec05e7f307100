#!/usr/bin/env bash
# Builds the flashable SD-card image of spa-hub for the Raspberry Pi boards
# that Debian's own arm64 kernel boots (Pi 3, 4, 400, CM4, Zero 2 W):
#
#   OUTDIR/spa-hub-<version>-arm64.img.xz  and  .img.xz.sha256
#
# Usage (as root, on a Debian machine; no Docker, loop mounts, vfat or binfmt
# needed):
#
#   image/build.sh [OUTDIR]                  # default OUTDIR: image/build/out
#
# Environment (all optional):
#   SPA_IMAGE_DEB=path.deb        use this arm64 package instead of building it
#   SPA_IMAGE_SUITE=trixie        Debian suite (trixie = Debian 13, stable)
#   SPA_IMAGE_MIRROR=http://deb.debian.org/debian
#   SPA_IMAGE_SECURITY_MIRROR=http://deb.debian.org/debian-security
#   SPA_IMAGE_WORK=OUTDIR/work    this build's own scratch directory (about
#                                 5 GB, sparse); one build at a time uses it
#   SPA_IMAGE_KEEP_WORK=1         keep the scratch files afterwards
#   SPA_IMAGE_STAGE2_TIMEOUT=5400 seconds allowed for stage 2 under qemu
#   CARGO_TARGET_DIR              default OUTDIR/work/target (kept, so the
#                                 next build into OUTDIR is incremental)
#
# Everything a build writes is under OUTDIR (or SPA_IMAGE_WORK): builds into
# different OUTDIRs, from one checkout or several, never share a file; a
# second build into the same OUTDIR while one runs stops at once (a lock on
# the work directory).
#
# How (see image/README.md and ../shared/notes/image-build.md):
#   1. the arm64 .deb with cargo-deb (cross-compiled, Debian's gcc as linker);
#   2. stage 1 on the host: debootstrap --foreign (downloads and unpacks
#      arm64 packages; nothing runs), plus the files under image/overlay;
#   3. file systems without mounting: mke2fs -d (ext4, RASPIROOT) and
#      mkfs.vfat -C (FAT32, RASPIFIRM);
#   4. stage 2 in qemu-system-aarch64 -M virt with Debian's arm64 kernel and a
#      tiny busybox initramfs: image/stage2.sh (debootstrap --second-stage,
#      security updates, the package, configuration, initramfs and the
#      raspi-firmware hook that fills the boot partition);
#   5. e2fsck, zerofree, shrink, MBR with sfdisk, dd both file systems into one image,
#      xz and sha256sum.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
OUT=$(mkdir -p "${1:-$HERE/build/out}" && cd "${1:-$HERE/build/out}" && pwd)
SUITE=${SPA_IMAGE_SUITE:-trixie}
MIRROR=${SPA_IMAGE_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SPA_IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
WORK=$(mkdir -p "${SPA_IMAGE_WORK:-$OUT/work}" && cd "${SPA_IMAGE_WORK:-$OUT/work}" && pwd)
STAGE2_TIMEOUT=${SPA_IMAGE_STAGE2_TIMEOUT:-5400}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WORK/target}
TARGET=aarch64-unknown-linux-gnu

# Partition layout (512-byte sectors): FAT at 4 MiB, 256 MiB; ext4 right after.
BOOT_START=8192
BOOT_SECTORS=524288
ROOT_START=$((BOOT_START + BOOT_SECTORS))
# Free space left in the root file system after shrinking it (the card's
# first boot grows it to the whole card anyway).
ROOT_HEADROOM_MIB=256

started=$(date +%s)
phase_started=$started
say() { printf '\n== %s\n' "$*"; }
phase() {
    local now; now=$(date +%s)
    printf '   (%s: %d s)\n' "$1" $((now - phase_started))
    phase_started=$now
}
die() { echo "build.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and mke2fs -d must keep file owners)"

# One build per work directory: held until this script (and the qemu it
# starts, which inherits the descriptor) has exited.
exec 9> "$WORK/.lock"
flock -n 9 || die "another build is using $WORK (give this one another OUTDIR or SPA_IMAGE_WORK)"
echo "output $OUT, work directory $WORK, CARGO_TARGET_DIR $CARGO_TARGET_DIR"

# --- host tools --------------------------------------------------------------
say "host tools"
apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "$@" >/dev/null
}
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have debootstrap || need+=(debootstrap)
have qemu-system-aarch64 || need+=(qemu-system-arm)
have mkfs.vfat || need+=(dosfstools)
have mcopy || need+=(mtools)
have mke2fs || need+=(e2fsprogs)
have sfdisk || need+=(fdisk)
have xz || need+=(xz-utils)
have cpio || need+=(cpio)
have depmod || need+=(kmod)
have zerofree || need+=(zerofree)
have gpgv || need+=(gpgv)
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ -z "${SPA_IMAGE_DEB:-}" ]; then
    have aarch64-linux-gnu-gcc || need+=(gcc-aarch64-linux-gnu)
    [ -e /usr/aarch64-linux-gnu/lib/libc.so ] || need+=(libc6-dev-arm64-cross)
fi
if [ "${#need[@]}" -gt 0 ]; then
    echo "apt-get install ${need[*]}"
    apt_install "${need[@]}"
fi
export PATH=$PATH:/usr/sbin:/sbin
echo "$(debootstrap --version), $(qemu-system-aarch64 --version | head -n1), $(mke2fs -V 2>&1 | head -n1)"
phase "host tools"

# --- 1. the arm64 package ----------------------------------------------------
if [ -n "${SPA_IMAGE_DEB:-}" ]; then
    DEB=$(readlink -f "$SPA_IMAGE_DEB")
    [ -f "$DEB" ] || die "SPA_IMAGE_DEB=$SPA_IMAGE_DEB does not exist"
    say "package: $DEB (given)"
else
    say "package: cargo deb --target $TARGET (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
    command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
    rm -rf "$WORK/deb"
    mkdir -p "$WORK/deb"
    (cd "$REPO" && cargo deb --locked --target "$TARGET" --output "$WORK/deb/")
    DEB=$(ls "$WORK"/deb/spa-hub_*_arm64.deb)
fi
[ "$(dpkg-deb -f "$DEB" Architecture)" = arm64 ] || die "$DEB is not an arm64 package"
PKG_VERSION=$(dpkg-deb -f "$DEB" Version)
VERSION=${PKG_VERSION%-*}
NAME=spa-hub-$VERSION-arm64
echo "package $(basename "$DEB"): $(stat -c %s "$DEB") bytes; image $NAME"
phase "package"

# --- 2. stage 1: debootstrap --foreign on the host ----------------------------
say "stage 1: debootstrap --foreign $SUITE (arm64)"
mkdir -p "$WORK"
ROOTFS=$WORK/rootfs
rm -rf "$ROOTFS" "$WORK/stage2-initramfs" "$WORK/kernel" "$WORK/busybox"
INCLUDE=(
    # boot: systemd, udev, the kernel and its initramfs, the Pi firmware
    systemd-sysv udev kmod initramfs-tools zstd busybox-static
    linux-image-arm64 raspi-firmware dosfstools
    # Wi-Fi firmware and client (Pi 3/4/Zero 2 W): off until configured
    firmware-brcm80211 wireless-regdb wpasupplicant
    # network: systemd-networkd (DHCP), resolved, time, mDNS (spa-hub.local)
    iproute2 netbase systemd-resolved systemd-timesyncd avahi-daemon libnss-mdns dbus
    ca-certificates
    # first boot: grow the root partition to the card
    cloud-guest-utils fdisk
    # SSH server, installed disabled
    openssh-server
    # the hub's time zone database; tools for the installer
    tzdata gpiod procps nano
)
debootstrap --arch=arm64 --foreign --variant=minbase \
    --components=main,non-free-firmware \
    --include="$(IFS=,; echo "${INCLUDE[*]}")" \
    "$SUITE" "$ROOTFS" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log"; die "debootstrap (stage 1) failed"; }
echo "$(ls "$ROOTFS"/var/cache/apt/archives/*.deb | wc -l) packages downloaded"

# Files of the image (units, scripts, network, avahi, presets), the package,
# and stage 2.
cp -a "$HERE/overlay/." "$ROOTFS/"
chown -R root:root "$ROOTFS/etc/systemd" "$ROOTFS/etc/avahi" "$ROOTFS/usr/local"
mkdir -p "$ROOTFS/usr/share/doc/spa-hub-image"
cp "$HERE/README.md" "$ROOTFS/usr/share/doc/spa-hub-image/README.md"
cp "$DEB" "$ROOTFS/root/"
install -m 0755 "$HERE/stage2.sh" "$ROOTFS/root/stage2.sh"
cat > "$ROOTFS/root/stage2.env" <<EOF
SUITE='$SUITE'
MIRROR='$MIRROR'
SECURITY_MIRROR='$SECURITY_MIRROR'
DEB='$(basename "$DEB")'
EOF
phase "stage 1"

# --- 3. file systems without mounting ----------------------------------------
say "file systems: mke2fs -d (ext4 RASPIROOT), mkfs.vfat -C (FAT32 RASPIFIRM)"
rm -f "$WORK/root.ext4" "$WORK/boot.vfat"
mke2fs -q -t ext4 -L RASPIROOT -d "$ROOTFS" "$WORK/root.ext4" 4G
mkfs.vfat -F 32 -n RASPIFIRM -C "$WORK/boot.vfat" $((BOOT_SECTORS / 2)) >/dev/null
phase "file systems"

# --- 4. stage 2 under qemu-system-aarch64 -M virt ------------------------------
say "stage 2: kernel and busybox initramfs for the build VM"
kdeb=$(ls "$ROOTFS"/var/cache/apt/archives/linux-image-[0-9]*_arm64.deb | sort -V | tail -n1)
mkdir -p "$WORK/kernel"
dpkg-deb -x "$kdeb" "$WORK/kernel"
KVER=$(ls "$WORK/kernel/usr/lib/modules")
VMLINUZ=$WORK/kernel/boot/vmlinuz-$KVER
mkdir -p "$WORK/kernel/lib"
mv "$WORK/kernel/usr/lib/modules" "$WORK/kernel/lib/modules"
depmod -b "$WORK/kernel" "$KVER"
INITRAMFS=$WORK/stage2-initramfs
mkdir -p "$INITRAMFS"/{bin,dev,proc,sys,newroot,modules}
bbdeb=$(ls "$ROOTFS"/var/cache/apt/archives/busybox-static_*_arm64.deb)
dpkg-deb -x "$bbdeb" "$WORK/busybox"
install -m 0755 "$WORK/busybox/usr/bin/busybox" "$INITRAMFS/bin/busybox"
install -m 0755 "$HERE/stage2-init.sh" "$INITRAMFS/init"
: > "$INITRAMFS/modules/order"
for m in virtio_pci virtio_blk virtio_net ext4 vfat nls_cp437 nls_ascii nls_utf8 nls_iso8859-1; do
    modprobe -d "$WORK/kernel" -S "$KVER" --show-depends "$m" | while read -r kind path _; do
        [ "$kind" = insmod ] || continue
        base=$(basename "$path"); base=${base%.xz}; base=${base%.zst}
        grep -qx "$base" "$INITRAMFS/modules/order" && continue
        case "$path" in
            *.xz) xz -dc "$path" > "$INITRAMFS/modules/$base" ;;
            *.zst) zstd -qdc "$path" > "$INITRAMFS/modules/$base" ;;
            *) cp "$path" "$INITRAMFS/modules/$base" ;;
        esac
        echo "$base" >> "$INITRAMFS/modules/order"
    done
done
echo "kernel $KVER; initramfs modules: $(tr '\n' ' ' < "$INITRAMFS/modules/order")"
(cd "$INITRAMFS" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/stage2-initrd.gz"

say "stage 2: qemu-system-aarch64 -M virt (TCG, at most ${STAGE2_TIMEOUT}s)"
log=$WORK/stage2-console.log
: > "$log"
timeout --kill-after=30 "$STAGE2_TIMEOUT" qemu-system-aarch64 \
    -M virt -cpu cortex-a72 -smp 2 -m 2048 \
    -display none -monitor none -serial stdio -no-reboot \
    -kernel "$VMLINUZ" -initrd "$WORK/stage2-initrd.gz" \
    -append "console=ttyAMA0 panic=-1 loglevel=4" \
    -drive file="$WORK/root.ext4",format=raw,if=none,id=root,cache=unsafe \
    -device virtio-blk-pci,drive=root \
    -drive file="$WORK/boot.vfat",format=raw,if=none,id=boot,cache=unsafe \
    -device virtio-blk-pci,drive=boot \
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= \
    < /dev/null > "$log" 2>&1 &
qpid=$!
tail -n +1 -f --pid="$qpid" "$log" 2>/dev/null | grep --line-buffered -E '^(STAGE2|init:)' || true
wait "$qpid" || true
grep -q '^STAGE2-RESULT rc=0' "$log" || {
    tail -n 60 "$log"
    die "stage 2 failed (console log: $log)"
}
phase "stage 2"

# --- 5. assemble --------------------------------------------------------------
say "assemble: e2fsck, shrink, partition table, dd, xz"
rc=0; e2fsck -fy "$WORK/root.ext4" > "$WORK/e2fsck.log" 2>&1 || rc=$?
[ "$rc" -le 1 ] || { cat "$WORK/e2fsck.log"; die "e2fsck found errors it could not fix ($rc)"; }
fsck.vfat -n "$WORK/boot.vfat" > "$WORK/fsck.vfat.log" 2>&1 || { cat "$WORK/fsck.vfat.log"; die "the FAT has errors"; }
debugfs -R 'cat /usr/share/doc/spa-hub-image/packages.txt' "$WORK/root.ext4" > "$WORK/packages.txt" 2>/dev/null
# Free blocks still hold what stage 2 deleted (the downloaded packages, the
# old kernel): zero them, so that they compress to nothing.
zerofree "$WORK/root.ext4"
resize2fs -M "$WORK/root.ext4" > /dev/null 2>&1
bs=$(dumpe2fs -h "$WORK/root.ext4" 2>/dev/null | sed -n 's/^Block size: *//p')
blocks=$(dumpe2fs -h "$WORK/root.ext4" 2>/dev/null | sed -n 's/^Block count: *//p')
blocks=$(( (blocks + ROOT_HEADROOM_MIB * 1048576 / bs + 255) / 256 * 256 ))   # whole MiB
resize2fs "$WORK/root.ext4" "$blocks" > /dev/null 2>&1
truncate -s $((blocks * bs)) "$WORK/root.ext4"
e2fsck -fn "$WORK/root.ext4" > /dev/null 2>&1 || die "e2fsck after resize2fs failed"
ROOT_SECTORS=$((blocks * bs / 512))
IMG=$WORK/$NAME.img
rm -f "$IMG"
truncate -s $(( (ROOT_START + ROOT_SECTORS) * 512 )) "$IMG"
sfdisk --quiet "$IMG" <<EOF
label: dos
label-id: 0x53504148
unit: sectors

start=$BOOT_START, size=$BOOT_SECTORS, type=c, bootable
start=$ROOT_START, size=$ROOT_SECTORS, type=83
EOF
dd if="$WORK/boot.vfat" of="$IMG" bs=1M seek=$((BOOT_START / 2048)) conv=notrunc,sparse status=none
dd if="$WORK/root.ext4" of="$IMG" bs=1M seek=$((ROOT_START / 2048)) conv=notrunc,sparse status=none
sfdisk -l "$IMG"
rm -f "$OUT/$NAME.img.xz" "$OUT/$NAME.img.xz.sha256"
xz -T0 -6 -c "$IMG" > "$OUT/$NAME.img.xz.part"
mv "$OUT/$NAME.img.xz.part" "$OUT/$NAME.img.xz"
(cd "$OUT" && sha256sum "$NAME.img.xz" > "$NAME.img.xz.sha256")
cp "$WORK/packages.txt" "$OUT/$NAME.packages.txt"
phase "assemble"

say "done in $(( $(date +%s) - started )) s"
raw=$(stat -c %s "$IMG")
xzs=$(stat -c %s "$OUT/$NAME.img.xz")
echo "suite:   Debian $SUITE ($(grep -E '^(base-files|linux-image-arm64|raspi-firmware|systemd|spa-hub) ' "$WORK/packages.txt" | tr '\n' ';'))"
echo "package: $(basename "$DEB") $(stat -c %s "$DEB") bytes"
echo "image:   $raw bytes raw ($((raw / 1048576)) MiB), $xzs bytes xz ($((xzs / 1048576)) MiB)"
echo "output:  $OUT/$NAME.img.xz"
cat "$OUT/$NAME.img.xz.sha256"
if [ "${SPA_IMAGE_KEEP_WORK:-0}" != 1 ]; then
    rm -rf "$ROOTFS" "$WORK/root.ext4" "$WORK/boot.vfat" "$IMG" "$WORK/kernel" \
        "$WORK/busybox" "$INITRAMFS" "$WORK/stage2-initrd.gz"
fi
