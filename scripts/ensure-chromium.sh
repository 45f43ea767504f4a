#!/usr/bin/env bash
# Make sure Debian's Chromium is installed: the web-console tests drive it through Playwright
# (never `playwright install`, which downloads a browser from outside the distribution).
set -euo pipefail

CHROMIUM=${GSF_CHROMIUM:-/usr/bin/chromium}

if [ -x "$CHROMIUM" ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "gsf: no Chromium at $CHROMIUM, and this script cannot install one (needs root and apt-get)." >&2
  echo "gsf: install Debian's chromium (sudo apt-get install chromium), or set GSF_CHROMIUM to a" >&2
  echo "gsf: Chromium binary; only the web-console tests (tests/web) need it." >&2
  exit 1
fi

echo "gsf: installing Chromium for the web-console tests (apt-get install chromium)..."
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null

if [ ! -x "$CHROMIUM" ]; then
  echo "gsf: apt-get installed chromium but $CHROMIUM is missing; set GSF_CHROMIUM to its path." >&2
  exit 1
fi
