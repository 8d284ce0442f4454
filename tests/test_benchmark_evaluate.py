"""benchmarks/evaluate.py --quick runs end to end and prints its table (figures are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark  # deselected by default (pyproject.toml); .ci/run runs it once

ROOT = Path(__file__).resolve().parent.parent


def test_quick_evaluation_benchmark_prints_the_table():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "evaluate.py"), "--quick"], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "| measurement | value | notes |" in text.splitlines()
    for row in ("batch wall time", "evaluate('label')", "evaluate ÷ batch", "notebook view"):
        assert f"| {row} |" in text, row
    assert "95/100 correct" in text and "| 100 of 100 |" in text  # every row answered; 1 label in 20 is wrong
