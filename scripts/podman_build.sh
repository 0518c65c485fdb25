#!/bin/sh
# Builds the image with podman on a host without a container registry (the project's CI): the local base
# image of scripts/podman_base_image.sh, the settings of deploy/containers.conf, and this host's pip sources
# (its pip config, local wheel directories and CA bundle) lent to the build read-only, so the build installs
# the same pinned wheels as `make`. Elsewhere `docker build -t proptrade .` needs none of this.
#   scripts/podman_build.sh [IMAGE]     (default IMAGE: localhost/proptrade:latest; needs root)
set -eu
here="$(cd "$(dirname "$0")/.." && pwd)"
image="${1:-localhost/proptrade:latest}"
base="${BASE_IMAGE:-localhost/proptrade-base:bookworm}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/deploy/containers.conf}"
"$here/scripts/podman_base_image.sh" "$base"
set -- --format docker --network host --build-arg "BASE_IMAGE=$base" -t "$image"
for dir in /opt/wheels /opt/pypi /opt/pypi-more /etc/xdg/pip; do
    if [ -d "$dir" ]; then set -- "$@" -v "$dir:$dir:ro"; fi
done
if [ -f /etc/pip.conf ]; then set -- "$@" -v /etc/pip.conf:/etc/pip.conf:ro; fi
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    set -- "$@" --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt
fi
podman build "$@" "$here"
