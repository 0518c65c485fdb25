#!/bin/sh
# Builds a local Debian bookworm base image with Python 3.11 for the Dockerfile's BASE_IMAGE argument, where no
# container registry is reachable: debootstrap from the Debian mirror, then `podman import`. The packages are
# what the official python:3.11-slim-bookworm image provides (the interpreter, venv, headers for the build).
#   scripts/podman_base_image.sh [IMAGE]     (default IMAGE: localhost/proptrade-base:bookworm; needs root)
set -eu
image="${1:-localhost/proptrade-base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if podman image exists "$image"; then
    echo "$image exists"
    exit 0
fi
root="$(mktemp -d /var/tmp/proptrade-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-dev,ca-certificates bookworm "$root" "$mirror"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - "$image"
echo "$image built"
