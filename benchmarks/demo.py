"""Where ``azmm demo``'s seconds go: kernel start-up, each cell of the notebook, kernel shut-down, HTML export.

    python benchmarks/demo.py                 # quickstart.ipynb against the local emulator, twice
    python benchmarks/demo.py --runs 3 --notebook quickstart.ipynb

Runs the same steps as :func:`azmm_magic.frontends.demo.run_demo` (a scratch copy of the notebooks, nbclient,
an IPC kernel), timed with nbclient's cell hooks; prints a Markdown table (medians of the runs) and the slowest
cells.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def one_run(notebook: str) -> dict[str, object]:
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    from azmm_magic.frontends.demo import export_html, find_notebook

    env_keep = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(("AZURE_OPENAI", "AZMM_"))}
    marks: dict[str, float] = {}
    cells: list[tuple[float, str]] = []
    started = time.perf_counter()
    try:
        source = find_notebook(notebook)
        with tempfile.TemporaryDirectory(prefix="azmm-demo-bench-") as scratch:
            for item in source.parent.iterdir():
                if item.is_file() and item.suffix in (".ipynb", ".jsonl"):
                    shutil.copy2(item, scratch)
            path = Path(scratch) / source.name
            nb = nbformat.read(path, as_version=4)
            km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(scratch, "kernel"))
            opened: dict[int, float] = {}

            def cell_start(cell: object, cell_index: int) -> None:
                marks.setdefault("first cell", time.perf_counter())
                opened[cell_index] = time.perf_counter()

            def cell_done(cell: object, cell_index: int, execute_reply: object) -> None:
                source_line = (getattr(cell, "source", "") or "").strip().splitlines()[:1]
                cells.append((time.perf_counter() - opened[cell_index], source_line[0][:70] if source_line else ""))
                marks["last cell"] = time.perf_counter()

            client = NotebookClient(nb, km=km, timeout=300, resources={"metadata": {"path": scratch}},
                                    on_cell_start=cell_start, on_cell_executed=cell_done, shutdown_kernel="immediate")
            marks["setup"] = time.perf_counter()
            try:
                client.execute()
            finally:
                if km.has_kernel:
                    km.shutdown_kernel(now=True)
            marks["executed"] = time.perf_counter()
            export_html(nb)
            marks["exported"] = time.perf_counter()
    finally:
        os.environ.update(env_keep)
    total = marks["exported"] - started
    return {
        "total": total,
        "kernel start": marks["first cell"] - marks["setup"],
        "cells": marks["last cell"] - marks["first cell"],
        "kernel shut-down": marks["executed"] - marks["last cell"],
        "html export": marks["exported"] - marks["executed"],
        "copy and set-up": marks["setup"] - started,
        "slowest": sorted(cells, reverse=True)[:5],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--notebook", default="quickstart.ipynb")
    args = parser.parse_args(argv)
    runs = [one_run(args.notebook) for _ in range(args.runs)]
    total = statistics.median(float(r["total"]) for r in runs)  # type: ignore[arg-type]
    print(f"\n`azmm demo` ({args.notebook}, local emulator): median of {args.runs} runs, load average "
          f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs\n")
    print("| part | seconds | share |")
    print("|---|---|---|")
    for part in ("kernel start", "cells", "kernel shut-down", "html export", "copy and set-up"):
        value = statistics.median(float(r[part]) for r in runs)  # type: ignore[arg-type]
        print(f"| {part} | {value:.2f} | {value / total:.0%} |")
    print(f"| **total** | **{total:.2f}** | 100% |")
    print("\nSlowest cells (last run): " + "; ".join(f"{s:.2f} s `{src}`" for s, src in runs[-1]["slowest"]))  # type: ignore[union-attr]
    return 0


if __name__ == "__main__":
    sys.exit(main())
