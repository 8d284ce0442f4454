"""Benchmark scoring a batch against labels (``BatchResult.evaluate``) next to the batch's own time.

    python benchmarks/evaluate.py            # 1,000 labelled swatches (DataFrame rows), schema with an enum
    python benchmarks/evaluate.py --quick    # 100 rows (what the test suite runs)

The emulator runs in its own process (``python -m azmm_magic.emulator``, no added latency: the batch is as fast
as it gets, so the share is an upper bound). The batch answers every row once; then ``evaluate`` is timed
(median of several runs) with what users look at next: the DataFrames (confusion, per class, mistakes) and the
two views (terminal text; the notebook HTML, which draws the confusion matrix with matplotlib). Figures are
printed, never asserted; the goal is that evaluating adds at most 5 % to the batch's own time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCHEMA = {"type": "object", "properties": {"colour": {"enum": ["red", "green", "blue"]}}, "required": ["colour"],
          "additionalProperties": False}
COLOURS = {"red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 120, 200)}


def labelled_rows(n: int):  # noqa: ANN201 - a pandas DataFrame
    """``n`` small swatches (every image differs) with a label; one label in 20 is deliberately wrong."""
    import pandas as pd
    from PIL import Image

    names = list(COLOURS)
    rows = []
    for i in range(n):
        name = names[i % 3]
        shade = tuple(max(0, c - (i // 3) % 40) for c in COLOURS[name])
        label = names[(i + 1) % 3] if i % 20 == 7 else name
        size = (32 + i % 50, 24 + i // 50)  # every image differs: no answer comes from the cache
        rows.append({"image": Image.new("RGB", size, shade), "label": label})
    return pd.DataFrame(rows)


def timed(fn, repeat: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 rows instead of 1,000")
    args = parser.parse_args(argv)
    n, repeat = (100, 3) if args.quick else (1000, 5)

    from azmm_magic import VisionClient
    from azmm_magic.core import views
    from azmm_magic.emulator.server import start_subprocess

    frame = labelled_rows(n)
    proc, url = start_subprocess([])
    try:
        client = VisionClient(endpoint=url, deployment="vision", auth="none", cache="memory",
                              ledger=None)
        started = time.perf_counter()
        batch = client.batch("Which colour is this swatch?", frame, response_format=SCHEMA, concurrency=16,
                             progress=False)
        batch_time = time.perf_counter() - started
        client.close()
    finally:
        proc.terminate()
        proc.wait(10)
    prices = {"*": (2.5, 10.0)}
    evaluation = batch.evaluate("label", prices=prices)
    score = timed(lambda: batch.evaluate("label", prices=prices), repeat)
    frames = timed(lambda: (evaluation.confusion, evaluation.per_class, evaluation.mistakes), repeat)
    plain = timed(lambda: views.plain(evaluation), repeat)
    page = timed(lambda: views.mimebundle(evaluation), repeat)
    share = score / batch_time

    rows = [
        ("rows answered (emulator, no added latency)", f"{len(batch.results)} of {n}", batch.summary()),
        ("batch wall time", f"{batch_time:.2f} s", "client.batch over DataFrame rows, schema with an enum"),
        ("evaluate('label')", f"{score * 1000:.1f} ms", f"median of {repeat}: {evaluation.headline()}"),
        ("evaluate ÷ batch", f"{100 * share:.2f} %", f"goal ≤ 5 %: {'met' if share <= 0.05 else '**not met**'}"),
        ("confusion + per_class + mistakes DataFrames", f"{frames * 1000:.1f} ms", "pandas"),
        ("terminal view", f"{plain * 1000:.1f} ms", "headline, tables, mistakes as text"),
        ("notebook view", f"{page * 1000:.1f} ms", "HTML with the confusion matrix drawn by matplotlib (PNG) "
                                                   "and the mistakes gallery"),
        ("evaluate + notebook view ÷ batch", f"{100 * (score + page) / batch_time:.2f} %", "what a notebook user waits"),
    ]
    from common import print_measurements

    print_measurements("evaluation", args.quick, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
