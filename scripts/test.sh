#!/usr/bin/env bash
# Install azmm_magic with its test dependencies into .venv (and Chromium for the browser tests), then run
# the whole test suite. Extra arguments go to pytest, e.g. `bash scripts/test.sh -k magic`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
bash scripts/install-browser.sh
exec .venv/bin/python -m pytest "$@"
