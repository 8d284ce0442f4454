"""Performance of a single %%azure_vision call: run every benchmark and print one table.

    python benchmarks/run.py            # the figures in the README (a few minutes)
    python benchmarks/run.py --quick    # small sizes and few repetitions (what the test suite runs)
    python benchmarks/run.py --only cache,prepare

Each benchmark is a module ``bench_<name>.py`` with ``run(ctx) -> (rows, notes)``. The emulator runs in a
separate process, so its CPU time is not charged to the code being measured. Figures compared with each other
(the magic vs the raw SDK) are measured in the same run, interleaved.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import tempfile
import time
from pathlib import Path

from common import Context, Row, emulator

BENCHMARKS = ("load", "first", "cache", "overhead", "prepare", "stream")


def table(rows: list[Row]) -> str:
    lines = ["| benchmark | measured | goal | met |", "|---|---|---|---|"]
    for row in rows:
        met = "—" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(f"| {row.name} | {row.measured} | {row.goal} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions (a smoke run)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {BENCHMARKS}")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    rows: list[Row] = []
    notes: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="azmm-bench-") as tmp, emulator() as url:
        ctx = Context(quick=args.quick, tmp=Path(tmp), url=url)
        for name in names:
            print(f"running {name}...", file=sys.stderr, flush=True)
            module = importlib.import_module(f"bench_{name}")
            more_rows, more_notes = module.run(ctx)
            rows += more_rows
            notes += more_notes
    import PIL
    import openai

    mode = "quick mode" if args.quick else "full run"
    print(
        f"azmm_magic benchmarks ({mode}; Python {platform.python_version()}, openai {openai.__version__}, "
        f"Pillow {PIL.__version__}, {platform.machine()}, {_cpus()} CPUs, load average {_load()}; "
        f"{time.perf_counter() - started:.0f} s)\n"
    )
    print(table(rows))
    print()
    for note in notes:
        print(f"- {note}")
    return 0


def _load() -> str:
    import os

    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
