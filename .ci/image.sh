#!/usr/bin/env bash
# The SD-card image: build it (image/build.sh) and boot it under
# qemu-system-aarch64 -M virt (image/smoke.sh). Takes tens of minutes on two
# cores (Debian's packages are configured under emulation), so .ci/run calls
# it only when SPA_IMAGE_TEST=1. Root, network to Debian's mirror.
# SPA_IMAGE_OUT: where the image goes (default image/build/out).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${SPA_IMAGE_OUT:-image/build/out}
started=$(date +%s)
bash image/build.sh "$out"
built=$(date +%s)
img=$(ls -t "$out"/spa-hub-*-arm64.img.xz | head -n1)
bash image/smoke.sh "$img"
echo "image: build $((built - started)) s, smoke $(( $(date +%s) - built )) s"
