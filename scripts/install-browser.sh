#!/usr/bin/env bash
# Installs the browser the browser tests drive.
# - With apt-get (Debian, Ubuntu; CI here): Debian's Chromium and ChromeDriver (tests use /usr/bin/chromium).
# - Without apt-get (macOS, Fedora, ...): Playwright's own Chromium (`python -m playwright install chromium`,
#   with the Python of .venv or $AZMM_PYTHON); the tests use it when /usr/bin/chromium is absent.
# Idempotent: does nothing when Debian's Chromium is already there. Fails (does not skip) when neither works.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  PY="${AZMM_PYTHON:-.venv/bin/python}"
  echo "install-browser: apt-get not found; installing Playwright's own Chromium ($PY -m playwright install chromium)" >&2
  exec "$PY" -m playwright install chromium
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
