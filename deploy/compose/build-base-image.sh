#!/usr/bin/env bash
# Build the compose demo's base image offline: a Debian bookworm root file system made by
# debootstrap from Debian's package mirror (no container registry), imported into Docker.
# Usage: build-base-image.sh [IMAGE_NAME]   (default pinnace-base:bookworm)
set -euo pipefail
image=${1:-pinnace-base:bookworm}
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image exists"
  exit 0
fi
command -v debootstrap >/dev/null || { apt-get update -q && apt-get install -y -q debootstrap; }
root=$(mktemp -d /var/tmp/pinnace-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
debootstrap --variant=minbase \
  --include=python3,python3-venv,iproute2,iptables,git,busybox-static,procps,util-linux,ca-certificates,kmod \
  bookworm "$root" "$mirror"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$image"
echo "built $image"
