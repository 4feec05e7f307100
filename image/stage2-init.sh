#!/bin/busybox sh
# shellcheck shell=dash
# /init of the tiny busybox initramfs that build.sh boots under
# `qemu-system-aarch64 -M virt` for stage 2: load the few modules needed
# (virtio block and net, ext4, vfat), mount the root and boot file systems,
# give the guest slirp's network, run /root/stage2.sh chrooted into the new
# root, then unmount cleanly and power off. The last console line is
# "STAGE2-RESULT rc=N".
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "init: loading modules"
while read -r m; do
    insmod "/modules/$m" || echo "init: insmod $m failed"
done < /modules/order

rc=1
finish() {
    echo "STAGE2-RESULT rc=$rc"
    sync
    poweroff -f
}

# The disks appear asynchronously.
i=0
while [ $i -lt 100 ]; do
    root=$(findfs LABEL=RASPIROOT 2>/dev/null) && boot=$(findfs LABEL=RASPIFIRM 2>/dev/null) && break
    sleep 0.2; i=$((i + 1))
done
if [ -z "${root:-}" ] || [ -z "${boot:-}" ]; then
    echo "init: RASPIROOT or RASPIFIRM not found"; finish
fi
echo "init: root $root, boot $boot"
mkdir -p /newroot
mount -t ext4 "$root" /newroot || finish
mkdir -p /newroot/boot/firmware
mount -t vfat -o umask=0022 "$boot" /newroot/boot/firmware || finish
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/run
mount -t tmpfs tmpfs /newroot/tmp

# slirp: 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3.
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2

echo "init: running stage2.sh"
chroot /newroot /bin/sh /root/stage2.sh && rc=0 || rc=$?
rm -f /newroot/root/stage2.sh

for m in tmp run dev/pts dev sys proc; do
    umount "/newroot/$m" 2>/dev/null || true
done
umount /newroot/boot/firmware || rc=90
mount -o remount,ro /newroot || rc=91
sync
umount /newroot || rc=92
finish
