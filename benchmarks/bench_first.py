"""The first cell of a fresh kernel ÷ the same kind of cell afterwards: ``%load_ext``, a pause (the user reading,
typing), then a one-image cell against the emulator; the warm cell asks a new question about another photo of
the same size (no cache hit, no image memo), so the ratio is what the first call pays for being first."""

from __future__ import annotations

import json
import subprocess
import sys

from common import Context, Row, child_env, make_photo, median, ms

_CHILD = """
import json, sys, time
sys.path.insert(0, {bench!r})
from common import shell
sh = shell({url!r})
time.sleep({pause})
t = time.perf_counter()
sh.run_cell_magic("azure_vision", "-i {a} -o r", "What is in this photo?")
first = time.perf_counter() - t
t = time.perf_counter()
sh.run_cell_magic("azure_vision", "-i {b} -o r", "And in this one?")
warm = time.perf_counter() - t
print(json.dumps({{"first": first, "warm": warm}}), flush=True)
"""


def _run(ctx: Context, pause: float, a: str, b: str) -> dict[str, float]:
    from pathlib import Path

    code = _CHILD.format(bench=str(Path(__file__).resolve().parent), url=ctx.url, pause=pause, a=a, b=b)
    out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True,
                         cwd=str(ctx.tmp)).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    runs = 2 if ctx.quick else 7
    pause = 2.0
    a = str(make_photo(ctx.tmp / "first-a.jpg", 1024, 768, seed=11))
    b = str(make_photo(ctx.tmp / "first-b.jpg", 1024, 768, seed=12))
    _run(ctx, 0.0, a, b)  # the emulator's own first request (its imports) is not the client's
    rows = []
    for wait in (pause, 0.0):
        got = [_run(ctx, wait, a, b) for _ in range(runs)]
        first, warm = median([g["first"] for g in got]), median([g["warm"] for g in got])
        ratio = first / warm
        goal = "≤ 2×" if wait else "—"
        rows.append(Row(
            f"first cell ÷ warm cell, fresh process, `%load_ext` + {wait:g} s pause + one-image cell",
            f"{ratio:.1f}× (medians {ms(first)} vs {ms(warm)})", goal, ratio <= 2.0 if wait else None,
        ))
    return rows, [f"First-cell rows: median of {runs} fresh processes each."]
