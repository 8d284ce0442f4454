"""benchmarks/batch.py --quick runs end to end and prints its table (figures are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark  # deselected by default (pyproject.toml); .ci/run runs it once

ROOT = Path(__file__).resolve().parent.parent


def quick_run(script: str) -> subprocess.CompletedProcess[str]:
    """``python benchmarks/SCRIPT --quick``, checked to end well."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"], capture_output=True,
                         text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_quick_benchmark_prints_the_table():
    out = quick_run("batch.py")
    lines = out.stdout.splitlines()
    assert "| measurement | value | notes |" in lines
    text = out.stdout
    for row in ("batch wall time", "ideal bound", "plain sequential SDK loop", "achieved throughput",
                "peak RSS of the batch process"):
        assert row in text, row
    assert "**0 failed**" in text  # every rate-limited item was answered
