"""benchmarks/soak.py --quick runs end to end and prints its table (the shape is checked, never the figures)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_soak_prints_the_table():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--quick"], capture_output=True,
                         text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    header = "| checkpoint | RSS (MB) | live widgets | threads | open files | open event loops | open transports |"
    assert header in lines
    rows = [line for line in lines[lines.index(header) + 2:] if line.startswith("|")]
    assert [row.split("|")[1].strip() for row in rows] == ["start (after warm-up)", "middle", "end",
                                                           "growth, start → end"]
    assert all(len(row.split("|")) == len(header.split("|")) for row in rows)
    assert any(line.startswith("Goal: RSS growth <= 30 MB") for line in lines)
