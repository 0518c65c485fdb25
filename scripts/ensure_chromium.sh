#!/usr/bin/env bash
# Debian's chromium for the dashboard's browser test (tests/gateway/test_dashboard.py), installed where it is
# missing and apt can: as root, or through sudo without a password. Never fails the build: without a browser
# that test skips and says why.
set -u
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get > /dev/null 2>&1; then
    echo "ensure_chromium: no apt-get here; the browser test will skip" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo > /dev/null 2>&1 && sudo -n true 2> /dev/null; then
    as_root=(sudo -n)
else
    echo "ensure_chromium: not root and no password-less sudo; the browser test will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "ensure_chromium: installing Debian's chromium" >&2
if ! { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq chromium; } > /dev/null; then
    echo "ensure_chromium: apt-get could not install chromium; the browser test will skip" >&2
fi
exit 0
