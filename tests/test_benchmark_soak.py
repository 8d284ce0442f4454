"""benchmarks/soak.py --quick runs end to end and prints its table (the shape is checked, never the figures)."""

from __future__ import annotations

import pytest

from tests.test_benchmark_batch import quick_run

pytestmark = pytest.mark.benchmark  # deselected by default (pyproject.toml); .ci/run runs it once


def test_quick_soak_prints_the_table():
    out = quick_run("soak.py")
    lines = out.stdout.splitlines()
    header = "| checkpoint | RSS (MB) | live widgets | threads | open files | open event loops | open transports |"
    assert header in lines
    rows = [line for line in lines[lines.index(header) + 2:] if line.startswith("|")]
    assert [row.split("|")[1].strip() for row in rows] == ["start (after warm-up)", "middle", "end",
                                                           "growth, start → end"]
    assert all(len(row.split("|")) == len(header.split("|")) for row in rows)
    assert any(line.startswith("Goal: RSS growth <= 30 MB") for line in lines)
