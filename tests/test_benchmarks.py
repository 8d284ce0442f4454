"""The benchmarks run once in quick mode so they cannot rot. No timing is asserted (figures vary by machine):
only that the command completes and prints every row of its table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark  # deselected by default (pyproject.toml); .ci/run runs it once

REPO = Path(__file__).resolve().parents[1]

ROWS = [
    "`%load_ext azmm_magic`, fresh process",
    "modules imported by `%load_ext`",
    "first cell ÷ warm cell, fresh process, `%load_ext` + 2 s pause",
    "first cell ÷ warm cell, fresh process, `%load_ext` + 0 s pause",
    "cache-hit re-run of a one-image cell",
    "magic ÷ raw SDK, 1024×768 JPEG, new prompt each call",
    "magic ÷ raw SDK, 1024×768 JPEG, image prepared afresh each call",
    "phone photo, prepared afresh each call",
    "emulator request check, 3 images + a tool",
    "JPEG (q90), detail=high",
    "JPEG (q90), detail=low",
    "stream: display updates reaching the frontend",
    "stream: a flood",
    "stream: last token → final display",
]


def test_benchmarks_quick_run_prints_every_row(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_OPENAI", "AZMM_"))}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("| ") and not line.startswith("| benchmark")]
    assert len(table) == len(ROWS), done.stdout
    for name, line in zip(ROWS, table):
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert name in cells[0], (name, line)
        assert len(cells) == 4 and cells[1], line  # a measured figure on every row
        assert cells[3] in ("yes", "**no**", "—"), line
