#!/usr/bin/env bash
# Smoke test of the spa-hub SD-card image: boots it under
# `qemu-system-aarch64 -M virt` (Debian's arm64 kernel and initrd, taken out
# of the image's FAT with mtools, the command line from its cmdline.txt),
# forwards 127.0.0.1:PORT to the guest's port 5000, waits for /healthz, then
# checks in the guest, over the serial console (root login, as a person at
# the console would), that:
#   - spa-hub.service is active, with its watchdog (WatchdogUSec);
#   - the admin token was made on this first boot (mode 0600, owner spa-hub)
#     and shown on the console; /etc/machine-id was made; the root file
#     system grew to the (enlarged) disk; avahi advertises the hub; SSH is off;
#   - the gpiochip backend drives the virt machine's PL061 GPIO lines: a room
#     created through the hub (Socket.IO, admin token) with light channel 1
#     shows green, then amber after room.set_status cleaning, read back from
#     the kernel (debugfs gpio) and from /healthz.
# Then it powers the guest off and exits non-zero if anything failed.
#
# The virt machine is not a Raspberry Pi: the image's env file says
# SPA_LIGHTS=gpiochip, which looks for the Pi's GPIO controller by label. For
# the smoke boot only, a copy of the image gets a oneshot unit that finds the
# PL061 chip by its label before spa-hub starts and appends SPA_GPIOCHIP and
# SPA_LIGHT_CHANNELS="1=0,1,2" to the env file (line 3 is the virt machine's
# power button).
#
# Usage (as root): image/smoke.sh [IMAGE.img.xz|IMAGE.img]
#   default: the newest image/build/out/spa-hub-*-arm64.img.xz
# Environment: SPA_SMOKE_PORT (default: a free port), SPA_SMOKE_TIMEOUT
# (seconds to wait for /healthz, default 600), SPA_SMOKE_WORK (scratch
# directory, default a new /tmp/spa-hub-smoke.*), SPA_SMOKE_KEEP=1 (keep it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=${1:-$(ls -t "$HERE"/build/out/spa-hub-*-arm64.img.xz 2>/dev/null | head -n1 || true)}
[ -n "$IMAGE" ] && [ -f "$IMAGE" ] || { echo "smoke.sh: no image (give its path, or run image/build.sh)" >&2; exit 2; }
TIMEOUT=${SPA_SMOKE_TIMEOUT:-600}
[ "$(id -u)" = 0 ] || { echo "smoke.sh: run as root (for apt-get)" >&2; exit 2; }

passes=0; fails=0
ok()   { echo "ok   $*"; passes=$((passes + 1)); }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

# --- host tools ----------------------------------------------------------------
need=()
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
command -v mcopy >/dev/null || need+=(mtools)
[ -x /usr/sbin/debugfs ] || command -v debugfs >/dev/null || need+=(e2fsprogs)
command -v sfdisk >/dev/null || [ -x /usr/sbin/sfdisk ] || need+=(fdisk)
command -v xz >/dev/null || need+=(xz-utils)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
    echo "== apt-get install ${need[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH=$PATH:/usr/sbin:/sbin
helper() { python3 "$HERE/smoke_helper.py" "$@"; }

W=${SPA_SMOKE_WORK:-$(mktemp -d /tmp/spa-hub-smoke.XXXXXX)}
mkdir -p "$W"
qpid=
cleanup() {
    local rc=$?
    if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then kill "$qpid" 2>/dev/null || true; fi
    if [ "${SPA_SMOKE_KEEP:-0}" = 1 ]; then echo "work directory kept: $W"; else rm -rf "$W"; fi
    exit "$rc"
}
trap cleanup EXIT

# --- a scratch copy of the image, 1 GiB larger (the first boot grows into it)
echo "== image $IMAGE"
case "$IMAGE" in
    *.xz)
        if [ -f "$IMAGE.sha256" ]; then
            (cd "$(dirname "$IMAGE")" && sha256sum --quiet -c "$(basename "$IMAGE").sha256") \
                && ok "sha256 of $(basename "$IMAGE")" || fail "sha256 of $(basename "$IMAGE")"
        fi
        xz -dc "$IMAGE" | dd of="$W/pi.img" bs=4M conv=sparse status=none ;;
    *) cp --sparse=always "$IMAGE" "$W/pi.img" ;;
esac
img_bytes=$(stat -c %s "$W/pi.img")
truncate -s +1G "$W/pi.img"
sfdisk -d "$W/pi.img" > "$W/layout.txt"
part_start() { sed -n "s|^$W/pi.img$1 : start= *\([0-9]*\),.*|\1|p" "$W/layout.txt"; }
boot_off=$(( $(part_start 1) * 512 ))
root_off=$(( $(part_start 2) * 512 ))
root_sectors=$(sed -n "s|^$W/pi.img2 : .*size= *\([0-9]*\),.*|\1|p" "$W/layout.txt")
echo "raw image $img_bytes bytes; boot partition at $boot_off, root at $root_off ($((root_sectors / 2048)) MiB)"

# --- kernel, initrd and command line from the boot partition ---------------
mcopy -i "$W/pi.img@@$boot_off" ::config.txt ::cmdline.txt "$W/"
kernel=$(sed -n 's/^kernel=//p' "$W/config.txt")
initrd=$(sed -n 's/^initramfs //p' "$W/config.txt")
mcopy -i "$W/pi.img@@$boot_off" "::$kernel" "::$initrd" "$W/"
check "boot partition: config.txt names $kernel and $initrd, both there" test -s "$W/$kernel" -a -s "$W/$initrd"
check "boot partition: Pi firmware (start4.elf, bootcode.bin) and device trees" \
    bash -c "mdir -b -i '$W/pi.img@@$boot_off' :: | grep -q start4.elf && mdir -b -i '$W/pi.img@@$boot_off' :: | grep -q bootcode.bin && mdir -b -i '$W/pi.img@@$boot_off' :: | grep -q bcm2711-rpi-4-b.dtb && mdir -b -i '$W/pi.img@@$boot_off' :: | grep -q bcm2837-rpi-3-b.dtb"
# The Pi's command line, with the Pi's consoles replaced by the virt UART.
append="$(sed -e 's/console=[^ ]*//g' "$W/cmdline.txt" | tr -s ' ') console=ttyAMA0,115200 panic=-1"
echo "cmdline.txt: $(cat "$W/cmdline.txt")"
check "cmdline.txt mounts the root by label" grep -q 'root=LABEL=RASPIROOT' "$W/cmdline.txt"

# --- smoke-only unit: the PL061 found by label, wired as light channel 1 ----
cat > "$W/spa-smoke-gpiochip" <<'EOF'
#!/bin/sh
# smoke test only: the virt machine's PL061 as the lights' GPIO chip.
set -eu
line=$(gpiodetect | grep -m1 pl061)
chip=/dev/${line%% *}
echo "smoke: PL061 is $chip ($line)"
if ! grep -q '^SPA_GPIOCHIP=' /etc/spa-hub/spa-hub.env; then
    printf '\n# smoke test (qemu -M virt): the PL061, lines 0-2 as channel 1\nSPA_GPIOCHIP=%s\nSPA_LIGHT_CHANNELS="1=0,1,2"\n' "$chip" >> /etc/spa-hub/spa-hub.env
fi
EOF
cat > "$W/spa-smoke-gpiochip.service" <<'EOF'
[Unit]
Description=smoke test: use the virt machine's PL061 GPIO chip for the lights
After=systemd-udevd.service
Before=spa-hub.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/spa-smoke-gpiochip
EOF
dev="$W/pi.img?offset=$root_off"
e2fsck -fn "$dev" > /dev/null 2>&1 && ok "root file system of the image is clean (e2fsck -fn)" || fail "root file system of the image is clean (e2fsck -fn)"
debugfs -w -f - "$dev" > "$W/debugfs.log" 2>&1 <<EOF
write $W/spa-smoke-gpiochip /usr/local/sbin/spa-smoke-gpiochip
set_inode_field /usr/local/sbin/spa-smoke-gpiochip mode 0100755
write $W/spa-smoke-gpiochip.service /etc/systemd/system/spa-smoke-gpiochip.service
set_inode_field /etc/systemd/system/spa-smoke-gpiochip.service mode 0100644
mkdir /etc/systemd/system/spa-hub.service.wants
symlink /etc/systemd/system/spa-hub.service.wants/spa-smoke-gpiochip.service /etc/systemd/system/spa-smoke-gpiochip.service
EOF
debugfs -R 'stat /etc/systemd/system/spa-hub.service.wants/spa-smoke-gpiochip.service' "$dev" 2>/dev/null | grep -q 'Type: symlink' \
    || { cat "$W/debugfs.log"; echo "smoke.sh: could not add the smoke unit"; exit 1; }

# --- boot ---------------------------------------------------------------------
port=${SPA_SMOKE_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
url=http://127.0.0.1:$port
echo "== qemu-system-aarch64 -M virt, 127.0.0.1:$port -> guest:5000 (console log $W/console.log)"
echo "   -append \"$append\""
boot_started=$(date +%s)
qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 \
    -display none -monitor none -no-reboot \
    -chardev "socket,id=ser0,path=$W/serial.sock,server=on,wait=off,logfile=$W/console.log" \
    -serial chardev:ser0 \
    -kernel "$W/$kernel" -initrd "$W/$initrd" -append "$append" \
    -drive file="$W/pi.img",format=raw,if=none,id=hd0,cache=unsafe \
    -device virtio-blk-pci,drive=hd0 \
    -netdev user,id=n0,hostfwd=tcp:127.0.0.1:$port-:5000 \
    -device virtio-net-pci,netdev=n0,romfile= \
    < /dev/null > "$W/qemu.log" 2>&1 &
qpid=$!

code=000
while :; do
    code=$(curl -s -o "$W/healthz.json" -w '%{http_code}' -m 5 "$url/healthz" || true)
    [ "$code" = 200 ] && break
    kill -0 "$qpid" 2>/dev/null || { cat "$W/qemu.log"; tail -n 40 "$W/console.log"; fail "qemu exited before /healthz answered"; exit 1; }
    if [ $(( $(date +%s) - boot_started )) -ge "$TIMEOUT" ]; then
        tail -n 60 "$W/console.log"
        fail "/healthz 200 within ${TIMEOUT}s (last status $code)"
        exit 1
    fi
    sleep 3
done
boot_s=$(( $(date +%s) - boot_started ))
ok "/healthz 200 after ${boot_s}s of boot: $(cat "$W/healthz.json")"

# --- in the guest, over the serial console ---------------------------------------
sock=$W/serial.sock
g() { helper sh "$sock" "$1" --timeout 180; }
echo "== guest (serial console, root login)"
active=$(g 'systemctl is-active spa-hub' || true)
check "spa-hub.service is active ($active)" [ "$active" = active ]
wd=$(g 'systemctl show -p WatchdogUSec --value spa-hub' || true)
check "spa-hub.service watchdog: WatchdogUSec=$wd" bash -c "[ -n '$wd' ] && [ '$wd' != 0 ] && [ '$wd' != infinity ]"
g 'systemctl show -p Type -p NotifyAccess -p NRestarts -p MainPID -p User spa-hub' | sed 's/^/     /'
g 'journalctl -b -u spa-hub -o cat | grep -m1 "lights backend"' > "$W/lights-line.txt" || true
check "spa-hub uses the gpiochip backend: $(cat "$W/lights-line.txt")" grep -q 'lights backend gpiochip' "$W/lights-line.txt"
check "image env file: SPA_LIGHTS=gpiochip" bash -c "[ \"\$(python3 '$HERE/smoke_helper.py' sh '$sock' 'grep -c ^SPA_LIGHTS=gpiochip\$ /etc/spa-hub/spa-hub.env')\" = 1 ]"
token=$(g 'cat /var/lib/spa-hub/admin-token' | tr -d '\n' || true)
check "admin token made on first boot (64 hex digits)" bash -c "[[ '$token' =~ ^[0-9a-f]{64}\$ ]]"
perm=$(g 'stat -c "%U:%G %a" /var/lib/spa-hub/admin-token' || true)
check "admin token file is spa-hub:spa-hub 600 ($perm)" [ "$perm" = "spa-hub:spa-hub 600" ]
check "admin token shown on the console (login prompt)" grep -q "admin token: $token" "$W/console.log"
check "/etc/machine-id made on first boot" bash -c "[ \"\$(python3 '$HERE/smoke_helper.py' sh '$sock' 'wc -c < /etc/machine-id')\" = 33 ]"
rootsz=$(g 'df -B1M --output=size / | tail -n1' | tr -d ' ' || true)
check "root file system grew to the disk: ${rootsz} MiB (partition was $((root_sectors / 2048)) MiB, disk +1024 MiB)" \
    bash -c "[ -n '$rootsz' ] && [ '$rootsz' -gt $((root_sectors / 2048 + 512)) ]"
g 'systemctl is-active avahi-daemon systemd-networkd systemd-resolved systemd-timesyncd' | tr '\n' ' ' > "$W/active.txt" || true
check "avahi-daemon, networkd, resolved, timesyncd active: $(cat "$W/active.txt")" bash -c "! grep -qv '^active\$' <(tr ' ' '\n' < '$W/active.txt' | sed '/^\$/d')"
check "avahi publishes spa-hub.local and the _http._tcp service" \
    bash -c "python3 '$HERE/smoke_helper.py' sh '$sock' 'journalctl -b -u avahi-daemon -o cat' > '$W/avahi.txt'; grep -q 'spa-hub.local' '$W/avahi.txt' && grep -q 'spa-hub on spa-hub.*successfully established' '$W/avahi.txt'"
ssh_state=$(g 'systemctl is-enabled ssh.service; systemctl is-active ssh.service; ss -Hltn "sport = :22" | wc -l' | tr '\n' ' ' || true)
check "SSH off (enabled, active, listeners on :22: $ssh_state)" bash -c "[[ '$ssh_state' =~ ^disabled\ (inactive|unknown)\ 0 ]]"
g 'gpiodetect; gpioinfo -c "$(gpiodetect | grep -m1 pl061 | cut -d" " -f1)" | head -n 5' | sed 's/^/     /' || true

# --- lights: a room on channel 1, through the hub ----------------------------------
echo "== lights: room.create with light_channel 1, then room.set_status cleaning"
levels() {  # red amber green (lines 0 1 2 of the PL061), from the kernel
    g 'mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug; cat /sys/kernel/debug/gpio' > "$W/gpio.txt" || true
    awk '/pl061/{c=1; next} /^gpiochip/{c=0} c && /spa-hub/ {print}' "$W/gpio.txt" > "$W/gpio-lines.txt"
    local out=""
    for i in 0 1 2; do
        l=$(sed -n "$((i + 1))p" "$W/gpio-lines.txt")
        case "$l" in *" out hi"*) out="$out 1" ;; *" out lo"*) out="$out 0" ;; *) out="$out ?" ;; esac
    done
    echo "${out# }"
}
before=$(levels)
echo "     PL061 lines 0-2 before (red amber green): $before"
sed 's/^/     /' "$W/gpio-lines.txt"
check "spa-hub holds PL061 lines 0-2 as outputs" bash -c "[ \$(grep -c ' out ' '$W/gpio-lines.txt') = 3 ]"
ack=$(helper call "$url" "$token" room.create '{"name":"Smoke room","light_channel":1}' --timeout 60) || true
echo "     ack: $ack"
room_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["data"]["room"]["id"])' "$ack" 2>/dev/null || true)
check "room.create through the hub (room $room_id)" [ -n "$room_id" ]
sleep 2
available=$(levels)
echo "     room available -> PL061 lines 0-2 (red amber green): $available"
sed 's/^/     /' "$W/gpio-lines.txt"
check "available = green: kernel reads lines 0-2 as $available" [ "$available" = "0 0 1" ]
curl -s -m 5 "$url/healthz" > "$W/healthz2.json" || true
echo "     /healthz lights: $(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["lights"]))' "$W/healthz2.json" 2>/dev/null)"
ack=$(helper call "$url" "$token" room.set_status "{\"room_id\":$room_id,\"status\":\"cleaning\"}" --timeout 60) || true
echo "     ack: $ack"
sleep 2
cleaning=$(levels)
echo "     room cleaning -> PL061 lines 0-2 (red amber green): $cleaning"
check "cleaning = amber: kernel reads lines 0-2 as $cleaning" [ "$cleaning" = "0 1 0" ]
curl -s -m 5 "$url/healthz" > "$W/healthz3.json" || true
echo "     /healthz lights: $(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["lights"]))' "$W/healthz3.json" 2>/dev/null)"

# --- SSH switched on the documented way: files on the boot partition ---------
echo "== SSH through the boot partition (ssh + authorized_keys, spa-hub-bootfs-import)"
g 'touch /boot/firmware/ssh; echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDxeS6Tq3b5wY1s5bBrm2H0mVQ8G2JbqK4yX0c9cJg8h smoke@test" > /boot/firmware/authorized_keys; systemctl start spa-hub-bootfs-import.service; for i in $(seq 90); do systemctl is-active -q ssh.service && break; sleep 1; done' > /dev/null || true
ssh_on=$(g 'systemctl is-enabled ssh.service; systemctl is-active ssh.service; ss -Hltn "sport = :22" | wc -l; ls /etc/ssh/ssh_host_ed25519_key; grep -c smoke@test /root/.ssh/authorized_keys; ls /boot/firmware/ssh /boot/firmware/authorized_keys 2>/dev/null | wc -l' | tr '\n' ' ' || true)
check "SSH on after the boot-partition files (enabled, active, listeners, host key, key, files left: $ssh_on)" \
    bash -c "[[ '$ssh_on' =~ ^enabled\ active\ [1-9][0-9]*\ /etc/ssh/ssh_host_ed25519_key\ 1\ 0 ]]"

# --- power off ---------------------------------------------------------------------
echo "== poweroff"
helper sh "$sock" 'systemctl --no-block poweroff' --timeout 60 > /dev/null || true
for _ in $(seq 1 120); do kill -0 "$qpid" 2>/dev/null || break; sleep 1; done
if kill -0 "$qpid" 2>/dev/null; then
    fail "guest powered off within 120 s"
    kill "$qpid" 2>/dev/null || true
else
    ok "guest powered off"
    qpid=
    e2fsck -fn "$dev" > "$W/e2fsck-after.log" 2>&1 && ok "root file system clean after poweroff" || fail "root file system clean after poweroff"
fi

echo "boot to /healthz: ${boot_s}s; lights (red amber green) available: $available, cleaning: $cleaning; watchdog: $wd"
echo "smoke: $passes passed, $fails failed"
[ "$fails" = 0 ]
