#!/usr/bin/env bash
# System libraries the Python wheels need: open3d loads libusb-1.0 at import time.
set -euo pipefail
if ldconfig -p 2>/dev/null | grep -q "libusb-1.0.so.0"; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null
else
  echo "facetvlp needs the system library libusb-1.0-0 (for open3d)." >&2
  echo "Install it as root, e.g.: sudo apt-get install -y libusb-1.0-0   (then re-run make)" >&2
  exit 1
fi
