#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (no browser download);
# a CJK font makes their screenshots of the Chinese pages readable.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -i wenquanyi >/dev/null; then
  exit 0
fi
echo "installing Chromium and a CJK font (apt-get) for the browser tests"
as_root=""
[ "$(id -u)" -eq 0 ] || as_root="sudo"
$as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null
