#!/usr/bin/env bash
# Install azmm_magic with its test dependencies into .venv, and Debian's Chromium for the browser tests.
# The README's test command (and .ci/run) is: bash scripts/install-test-deps.sh && .venv/bin/python -m pytest
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
bash scripts/install-browser.sh
