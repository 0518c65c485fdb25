#!/bin/sh
# Builds the image with podman on a host without a container registry (the project's CI): the local base
# image of scripts/podman_base_image.sh, the settings of deploy/containers.conf, and this host's pip sources
# (its pip config, local wheel directories and CA bundle) lent to the build read-only, so the build installs
# the same pinned wheels as `make`. Elsewhere `docker build -t proptrade .` needs none of this.
#   scripts/podman_build.sh [IMAGE]     (default IMAGE: localhost/proptrade:latest; needs root)
#
# The builder stage is tagged too (IMAGE-builder): podman keeps a stage's layers as build cache only while an
# image holds them, and an untagged stage is the first thing a clean-up of dangling images removes, so the tag
# is what lets the next build reuse the installed dependencies. Both builds read one copy of the context (the
# paths .dockerignore lets in), so that an edit made while they run cannot give them different sources. A
# rebuild removes the images it replaced (the previous IMAGE and IMAGE-builder, unless a tag or a container
# still holds them): the store does not grow by a gigabyte each time. Builds from one checkout take turns
# (flock on this script): two at once would race on the base image and the tags.
set -eu
here="$(cd "$(dirname "$0")/.." && pwd)"
image="${1:-localhost/proptrade:latest}"
builder="$image-builder"
base="${BASE_IMAGE:-localhost/proptrade-base:bookworm}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/deploy/containers.conf}"
exec 9<"$here/scripts/podman_build.sh"
flock 9

image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

"$here/scripts/podman_base_image.sh" "$base"

context="$(mktemp -d /var/tmp/proptrade-context.XXXXXX)"
trap 'rm -rf "$context"' EXIT
cp "$here/Dockerfile" "$here/.dockerignore" "$context/"
sed -n 's/^!//p' "$here/.dockerignore" | while read -r path; do
    mkdir -p "$context/$(dirname "$path")"
    cp -a "$here/$path" "$context/$path"
done

set -- --format docker --network host --build-arg "BASE_IMAGE=$base"
for dir in /opt/wheels /opt/pypi /opt/pypi-more /etc/xdg/pip; do
    if [ -d "$dir" ]; then set -- "$@" -v "$dir:$dir:ro"; fi
done
if [ -f /etc/pip.conf ]; then set -- "$@" -v /etc/pip.conf:/etc/pip.conf:ro; fi
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    set -- "$@" --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt
fi
replaced="$(image_id "$builder") $(image_id "$image")"
podman build "$@" --target builder -t "$builder" "$context"
podman build "$@" -t "$image" "$context"
kept="$(image_id "$builder") $(image_id "$image")"
for old in $replaced; do
    case " $kept " in *" $old "*) continue ;; esac
    if [ "$(podman image inspect --format '{{len .RepoTags}}' "$old" 2>/dev/null)" = 0 ]; then
        podman rmi "$old" >/dev/null 2>&1 || echo "kept the replaced image $old: a container uses it"
    fi
done
echo "$image built"
