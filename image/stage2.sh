#!/bin/sh
# Stage 2 of the spa-hub SD-card image, run by build.sh inside
# `qemu-system-aarch64 -M virt` (arm64, no binfmt needed): the guest's tiny
# busybox init mounts the root file system (ext4, RASPIROOT) on /newroot and
# the boot partition (FAT, RASPIFIRM) on /newroot/boot/firmware, sets up
# slirp networking, and runs this script chrooted into /newroot.
#
# Reads /root/stage2.env (SUITE, MIRROR, SECURITY_MIRROR, DEB) written by
# build.sh. Prints "STAGE2: ..." progress lines; build.sh reads the console.
set -eu
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8 LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true
. /root/stage2.env

step() { echo "STAGE2: $* ($(date -u +%H:%M:%S))"; }
APT="apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o APT::Install-Recommends=false"

# No initramfs while packages are configured (the kernel's postinst hook
# honours INITRD=No): it is generated once, at the end, with the final
# configuration.
export INITRD=No

step "debootstrap --second-stage"
/debootstrap/debootstrap --second-stage
# debootstrap unmounts /proc and /sys when it is done; systemctl, dpkg
# triggers and update-initramfs want them.
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys

# No daemons are started in here (there is no systemd running anyway).
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d

# systemd-resolved's postinst made /etc/resolv.conf a link to its stub, which
# does not exist in here: use slirp's DNS until the end.
rm -f /etc/resolv.conf
echo "nameserver 10.0.2.3" > /etc/resolv.conf

step "apt sources: $SUITE, $SUITE-updates, $SUITE-security"
rm -f /etc/apt/sources.list
cat > /etc/apt/sources.list.d/debian.sources <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Appliance: no recommended packages pulled in by later installs either.
echo 'APT::Install-Recommends "false";' > /etc/apt/apt.conf.d/90spa-hub-image

step "apt-get update && dist-upgrade (security and point-release updates)"
$APT update
$APT dist-upgrade
# A newer kernel from the upgrade: keep only the newest one.
newest=$(ls -1 /boot/vmlinuz-* | sed 's|^/boot/vmlinuz-||' | sort -V | tail -n1)
for v in $(ls -1 /boot/vmlinuz-* | sed 's|^/boot/vmlinuz-||'); do
    [ "$v" = "$newest" ] || $APT purge "linux-image-$v"
done

step "install $(basename "$DEB")"
$APT install "/root/$(basename "$DEB")"

step "configure spa-hub"
ENV=/etc/spa-hub/spa-hub.env
# Debian's kernel has no /dev/gpiomem: the lights use the GPIO character
# device (see APPLIANCE.md). Written where the package's commented default is.
if grep -q '^#SPA_LIGHTS=auto' "$ENV"; then
    sed -i 's|^#SPA_LIGHTS=auto$|#SPA_LIGHTS=auto\n# spa-hub image (Debian kernel, no /dev/gpiomem): the GPIO character device.\nSPA_LIGHTS=gpiochip|' "$ENV"
else
    printf '\n# spa-hub image (Debian kernel, no /dev/gpiomem): the GPIO character device.\nSPA_LIGHTS=gpiochip\n' >> "$ENV"
fi
grep -qx 'SPA_LIGHTS=gpiochip' "$ENV"
# Every card makes its own admin token on its first boot
# (spa-hub-token.service): drop the one the postinst made here.
rm -f /var/lib/spa-hub/admin-token
if [ -n "$(ls -A /var/lib/spa-hub)" ]; then
    echo "STAGE2: unexpected files in /var/lib/spa-hub: $(ls -A /var/lib/spa-hub)"
    exit 1
fi

step "raspi-firmware settings"
# Root by label (the image is not tied to one card's device name); serial
# console on the GPIO header's UART (ttyS1 on Pi 3/4/Zero 2 W with Debian's
# device trees) and the HDMI console last (boot messages, emergency shell).
# CMA=0: no cma= on the command line, so the device tree's default applies on
# every board (raspi-firmware's 64M default would be written here, on a
# non-Pi, and it "might render a Pi 4 unbootable"); a headless hub needs no
# large GPU pool.
cat >> /etc/default/raspi-firmware <<'EOF'

# --- spa-hub image ---
ROOTPART="LABEL=RASPIROOT"
CONSOLES="ttyS1,115200 tty0"
CMA=0
EOF

step "users, SSH, services"
# root: no password, console login only (no SSH server runs; sshd refuses
# empty passwords). The console shows how to set one.
passwd -d root
# SSH server installed but off; each card makes its own host keys when SSH is
# first enabled (ssh.service drop-in runs ssh-keygen -A).
systemctl disable ssh.service ssh.socket 2>/dev/null || true
rm -f /etc/ssh/ssh_host_*
# systemd's ssh generator would bind sshd to AF_VSOCK/AF_UNIX sockets: off.
mkdir -p /etc/systemd/system-generators
ln -sf /dev/null /etc/systemd/system-generators/systemd-ssh-generator
systemctl enable systemd-networkd.service systemd-networkd-wait-online.service \
    systemd-resolved.service systemd-timesyncd.service avahi-daemon.service \
    spa-hub.service spa-hub-growroot.service spa-hub-token.service \
    spa-hub-console.service spa-hub-bootfs-import.service
systemctl disable wpa_supplicant.service 2>/dev/null || true
for u in spa-hub spa-hub-growroot spa-hub-token spa-hub-console avahi-daemon systemd-networkd ssh; do
    echo "STAGE2: enabled $u: $(systemctl is-enabled $u.service 2>&1 || true)"
done

step "update-initramfs (and the raspi-firmware hook: kernel, initrd, dtbs, config.txt, cmdline.txt)"
unset INITRD
update-initramfs -c -k all
ls -la /boot/firmware
grep -v '^#' /boot/firmware/config.txt | grep -v '^$' | sed 's/^/STAGE2: config.txt: /'
echo "STAGE2: cmdline.txt: $(cat /boot/firmware/cmdline.txt)"
for f in config.txt cmdline.txt bootcode.bin start4.elf fixup4.dat bcm2711-rpi-4-b.dtb bcm2837-rpi-3-b.dtb bcm2710-rpi-zero-2-w.dtb bcm2837-rpi-zero-2-w.dtb; do
    [ -e "/boot/firmware/$f" ] && echo "STAGE2: boot partition has $f"
done
kernel=$(sed -n 's/^kernel=//p' /boot/firmware/config.txt)
initrd=$(sed -n 's/^initramfs //p' /boot/firmware/config.txt)
test -s "/boot/firmware/$kernel"
test -s "/boot/firmware/$initrd"

step "clean up"
dpkg-query -W -f '${Package} ${Version}\n' > /root/packages.txt
mkdir -p /usr/share/doc/spa-hub-image
mv /root/packages.txt /usr/share/doc/spa-hub-image/packages.txt
$APT clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
rm -f /usr/sbin/policy-rc.d "/root/$(basename "$DEB")" /root/stage2.env
rm -rf /debootstrap
# First boot on the card: systemd makes a new machine id (and, with it, new
# DHCP client ids); random seed and logs from the build are not kept.
rm -f /etc/machine-id /var/lib/dbus/machine-id /var/lib/systemd/random-seed
rm -f /var/lib/systemd/credential.secret
rm -rf /var/log/journal/* /var/tmp/* /tmp/*
find /var/log -type f \( -name '*.log' -o -name 'lastlog' -o -name 'wtmp' -o -name 'btmp' \) -exec truncate -s 0 {} +
rm -f /var/cache/debconf/*-old /var/lib/dpkg/*-old
ln -sf ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
step "done"
