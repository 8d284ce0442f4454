#!/usr/bin/env bash
# Hosted runtimes: for each of tests/envs/{colab,kaggle}.txt (the runtime's Jupyter stack and every package of it
# that azmm_magic could touch, at the runtime's versions; tests/envs/refresh.py writes them):
#   1. build the runtime once (a venv of the runtime's Python with exactly those pins; cached by the file's hash
#      under ~/.cache/azmm-hosted, so CI reuses it);
#   2. check that `pip install azmm_magic` there upgrades or downgrades nothing (pip's --dry-run --report against
#      the pins: it may only add what is missing);
#   3. install it for real and the test tools under the same pins, check again that every pin still holds;
#   4. run the core subset of the suite there, the panel's browser test included (classic Notebook 6.5 on
#      Colab's stack with ipywidgets 7.7.1; JupyterLab 3.6 with ipywidgets 8.1.5 on Kaggle's).
# Usage: bash scripts/test-hosted.sh [colab] [kaggle]    (both by default). Fails, never skips, when a runtime
# cannot be built. .ci/run calls it after the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
CACHE="${AZMM_HOSTED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/azmm-hosted}"
PIP_QUIET=(-q --disable-pip-version-check)
mkdir -p "$CACHE"

# The runtime's Python X.Y: pythonX.Y on PATH, a pyenv build, else uv's find (never a download).
find_python() {
  local want="$1" candidate
  for candidate in "python$want" "$(pyenv root 2>/dev/null)/versions/$want"*/bin/"python$want" /usr/bin/"python$want"; do
    if [ -n "$candidate" ] && "$candidate" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$want'.split('.')))" 2>/dev/null; then
      command -v "$candidate" || echo "$candidate"
      return 0
    fi
  done
  UV_PYTHON_DOWNLOADS=never "$ROOT/.venv/bin/uv" python find "$want" 2>/dev/null && return 0
  return 1
}

# The core subset: the magic, the client, images, widgets and the panel (Python side), secrets (a notebook run by
# nbclient), the demo's HTML export, and the browser test of the panel in this runtime's notebook UI.
CORE_TESTS=(tests/test_magic.py tests/test_client.py tests/test_images.py tests/test_widgets.py
            tests/test_panel_surfaces.py tests/test_long_session.py tests/test_structured.py tests/test_display.py tests/test_secrets.py
            tests/test_hosted.py tests/test_demo_html.py::test_exported_html_references_no_cdn)

for name in "${@:-colab kaggle}"; do
  for one in $name; do
    spec="tests/envs/$one.txt"
    [ -f "$spec" ] || { echo "test-hosted: no $spec" >&2; exit 2; }
    want="$(sed -n 's/^# python: \([0-9]*\.[0-9]*\).*/\1/p' "$spec")"
    py="$(find_python "$want")" || { echo "test-hosted: $one needs Python $want (its runtime's); none found" >&2; exit 1; }
    key="$(cat "$spec" | sha256sum | cut -c1-16)"
    env="$CACHE/$one-$key"
    started=$SECONDS
    if [ ! -f "$env/.built" ]; then
      rm -rf "$CACHE/$one-"*  # a runtime built from an older file: keep one per runtime
      "$py" -m venv "$env"
      "$env/bin/python" -m pip install "${PIP_QUIET[@]}" --upgrade pip
      # exactly the runtime's pins; what they need beyond the file comes at any version, as on the runtime
      "$env/bin/python" -m pip install "${PIP_QUIET[@]}" -r "$spec"
      touch "$env/.built"
      echo "$one: runtime built in $((SECONDS - started)) s ($env)"
    else
      echo "$one: runtime reused ($env)"
    fi
    report="$(mktemp)"
    "$env/bin/python" -m pip install "${PIP_QUIET[@]}" --dry-run --report "$report" "$ROOT"
    "$env/bin/python" tests/envs/check.py "$spec" --report "$report"
    rm -f "$report"
    "$env/bin/python" -m pip install "${PIP_QUIET[@]}" --force-reinstall --no-deps "$ROOT"
    "$env/bin/python" -m pip install "${PIP_QUIET[@]}" "$ROOT"
    "$env/bin/python" -m pip install "${PIP_QUIET[@]}" -c "$spec" pytest pytest-timeout pytest-xdist hypothesis httpx pydantic pandas playwright
    "$env/bin/python" tests/envs/check.py "$spec" --installed
    echo "$one: ready in $((SECONDS - started)) s; running the core subset"
    # the browser test in the runtime's notebook UI: classic Notebook 6.5 for Colab's stack, JupyterLab 3.6 for Kaggle's
    front_end="$(sed -n 's/^# front end: //p' "$spec")"
    AZMM_FRONT_ENDS="$front_end" "$env/bin/python" -m pytest -q -p no:cacheprovider "${CORE_TESTS[@]}" tests/test_browser.py
    echo "$one: done in $((SECONDS - started)) s"
  done
done
