#!/usr/bin/env bash
# Builds a Debian bookworm base image from Debian's packages, for machines that cannot pull
# from an image registry: debootstrap a minimal root filesystem, then `docker import` it.
# The application image (BASE_IMAGE) and the offline Redis and PostgreSQL images
# (deploy/compose.offline.yml) start from it.
#
#   deploy/offline/build-base-image.sh [IMAGE]      # default diandian/debian:bookworm
#
# Needs root and debootstrap (apt-get install debootstrap). Does nothing when the image exists.
set -euo pipefail

IMAGE="${1:-diandian/debian:bookworm}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "[base-image] $IMAGE exists"
    exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "[base-image] debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 1
fi

rootfs="$(mktemp -d "${TMPDIR:-/tmp}/diandian-rootfs.XXXXXX")"
chmod 755 "$rootfs"   # it becomes the image's /: mktemp's 0700 would lock out every other user
trap 'rm -rf "$rootfs"' EXIT

echo "[base-image] debootstrap $SUITE from $MIRROR"
debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || {
    tail -20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"

# Security and point-release updates too, as the official images have them.
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES
# Like the official Debian images: no recommends, no caches kept in layers.
cat >"$rootfs/etc/apt/apt.conf.d/90diandian" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    - "$IMAGE" >/dev/null
echo "[base-image] built $IMAGE"
