#!/usr/bin/env bash
# Keeps the lower bounds in pyproject.toml true: installs the package with every direct dependency (dev extra
# included) at the LOWEST version its bound allows (uv's --resolution lowest-direct; indirect dependencies
# resolve as usual), on the lowest supported Python (3.11; LOWEST_PYTHON to change it), in a throwaway
# environment, and runs a core subset of the suite there: one or more test files for each direct dependency.
# .ci/run calls it after the README's test command (which installs uv with the dev extra).
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${UV:-.venv/bin/uv}"
export UV_PYTHON_DOWNLOADS=never   # use an installed Python; never download one
ENV_DIR="$(mktemp -d "${TMPDIR:-/tmp}/azmm-lowest.XXXXXX")"
trap 'rm -rf "$ENV_DIR"' EXIT
"$UV" venv -q --python "${LOWEST_PYTHON:-3.11}" "$ENV_DIR/venv"
VIRTUAL_ENV="$ENV_DIR/venv" "$UV" pip install -q --resolution lowest-direct -e ".[dev]"
echo "lowest-direct environment:" \
  "$(VIRTUAL_ENV="$ENV_DIR/venv" "$UV" pip list 2>/dev/null | grep -E -i '^(openai|azure-identity|pillow|numpy|matplotlib|ipython|nbconvert|nbclient|ipykernel|starlette|uvicorn) ' | tr -s ' ' | paste -sd, -)"
# openai + azure-identity: client, secrets, faults; pillow/numpy/matplotlib: images, bad inputs; ipython: magic;
# starlette/uvicorn: emulator; ipywidgets/anywidget: widgets; jsonschema: structured; tqdm: batch;
# markdown-it-py: display; nbclient/nbconvert/ipykernel/nbformat: a notebook executed (secrets) and the demo HTML;
# jupytext: the notebooks built from their text sources
"$ENV_DIR/venv/bin/python" -m pytest -q -p no:cacheprovider \
  tests/test_client.py tests/test_secrets.py tests/test_faults.py tests/test_images.py tests/test_bad_inputs.py \
  tests/test_magic.py tests/test_emulator_strict.py tests/test_widgets.py tests/test_structured.py \
  tests/test_batch.py tests/test_display.py \
  tests/test_demo_html.py::test_exported_html_references_no_cdn tests/test_notebook_sources.py tests/test_bounds.py \
  tests/test_long_session.py::test_executing_a_notebook_leaves_no_event_loop_and_no_open_socket
