"""Soak: one long session in one process, and what it leaves behind.

    python benchmarks/soak.py           # 1,000 cells, 200 panel questions, 50 asyncio.run(aask), 20 batches
    python benchmarks/soak.py --quick   # small counts (what the test suite runs; figures not checked)

One IPython shell with the extension loaded runs cells (images, cache hits, streamed and whole answers,
``--chat``), a panel answers questions about uploads that are then removed, ``asyncio.run(client.aask(...))``
runs again and again, and batches run (one of them interrupted, as Ctrl-C does). A warm-up round of each first
fills what is bounded (the panel's history, the memo of prepared images, the answer cache), then the work runs in
two equal halves. At the start (after the warm-up), the middle and the end it prints the process's resident
memory, live widgets, threads, open files, open event loops and open transports. The goal: from start to end,
RSS grows by at most 30 MB and nothing else grows. The emulator runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import DEPLOYMENT, emulator, make_photo, shell

RSS_GOAL_MB = 30.0


@dataclass(frozen=True)
class Counts:
    """Scale of one run (the half of each count runs between two checkpoints)."""

    cells: int
    panel: int
    aask: int
    batches: int
    batch_size: int
    photos: int


FULL = Counts(cells=1000, panel=200, aask=50, batches=20, batch_size=8, photos=60)
QUICK = Counts(cells=40, panel=12, aask=4, batches=4, batch_size=4, photos=8)


def rss_mb() -> float:
    """Resident memory of this process, in MB (Linux /proc; ``resource``'s peak elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_files() -> int:
    for where in ("/proc/self/fd", "/dev/fd"):
        with contextlib.suppress(OSError):
            return len(os.listdir(where))
    return -1


def open_loops_and_transports() -> tuple[int, int]:
    """Event loops not closed, and transports not closing, among the objects alive. ``type(obj)``, not
    ``isinstance``: that reads ``__class__``, which makes lazy proxies (the openai SDK's) import their module."""
    loops = transports = 0
    for obj in gc.get_objects():
        kind = type(obj)
        try:
            if issubclass(kind, asyncio.AbstractEventLoop):
                loops += not obj.is_closed()
            elif issubclass(kind, asyncio.BaseTransport):
                transports += not obj.is_closing()
        except Exception:  # noqa: BLE001 - an object half torn down
            continue
    return loops, transports


def checkpoint(name: str) -> dict[str, Any]:
    from azmm_magic.frontends.panel.compat import live_widget_count

    gc.collect()
    rss, widgets, threads, files = rss_mb(), live_widget_count(), threading.active_count(), open_files()
    loops, transports = open_loops_and_transports()
    return {"checkpoint": name, "rss": rss, "widgets": widgets, "threads": threads, "files": files, "loops": loops,
            "transports": transports}


class Session:
    """The shell, the panel, a Python-API client and the photos one soak uses."""

    def __init__(self, url: str, tmp: Path, counts: Counts) -> None:
        from azmm_magic import VisionClient

        self.sh = shell(url)
        self.sh.run_line_magic("config", "AzureVision.chat_image_turns = 3")  # the deployment takes 10 images
        self.ns = self.sh.user_ns
        self.counts = counts
        self.photos = [make_photo(tmp / f"p{i:03d}.jpg", 320 + i % 7, 240, seed=i) for i in range(counts.photos)]
        self.uploads = [p.read_bytes() for p in self.photos[:8]]
        self.folder = tmp / "batch"
        self.folder.mkdir()
        for i in range(counts.batch_size):
            make_photo(self.folder / f"b{i:02d}.jpg", 200, 150, seed=100 + i)
        self.panel = self.sh.run_line_magic("azure_vision", "panel")
        self.client = VisionClient(endpoint=url, deployment=DEPLOYMENT, auth="none", api_style="azure")
        self.cell_no = self.question_no = self.run_no = 0

    def cells(self, n: int) -> None:
        """Cells of five kinds: a new image, a cache hit, a streamed and a whole answer, a ``--chat`` turn."""
        for _ in range(n):
            i = self.cell_no
            self.cell_no += 1
            photo = self.photos[i % len(self.photos)]
            kind = i % 5
            if kind == 0:
                self.sh.run_cell_magic("azure_vision", f"-i {photo}", f"Describe photo {i}")
            elif kind == 1:
                self.sh.run_cell_magic("azure_vision", f"-i {self.photos[0]}", "The same question again")
            elif kind == 2:
                self.sh.run_cell_magic("azure_vision", f"-i {photo} --no-cache", f"Streamed {i}")
            elif kind == 3:
                self.sh.run_cell_magic("azure_vision", f"-i {photo} --no-stream --no-cache", f"Whole {i}")
            else:
                self.sh.run_cell_magic("azure_vision", f"-i {photo} --chat lab", f"Chat turn {i}")

    def questions(self, n: int) -> None:
        """Panel questions: two uploads chosen, Send, then both removed."""
        panel = self.panel
        for _ in range(n):
            i = self.question_no
            self.question_no += 1
            for k in range(2):
                panel.add_images(self.uploads[(i + k) % len(self.uploads)], label=f"upload{i}-{k}.jpg")
            panel.prompt.value = f"Panel question {i}"
            panel.send_button.click()
            if not panel.wait(120):
                raise RuntimeError("a panel question did not finish in 120 s")
            while panel.images:
                panel.remove_image(0)

    def async_asks(self, n: int) -> None:
        for _ in range(n):
            self.run_no += 1
            asyncio.run(self.client.aask(f"Async {self.run_no}", [self.photos[self.run_no % len(self.photos)]],
                                         use_cache=False))

    def batches(self, n: int, *, interrupt_one: bool) -> None:
        from azmm_magic.features.batch import BatchInterrupted

        for b in range(n):
            seen: list[int] = []

            def on_item(index: int, outcome: Any, stop: bool = interrupt_one and b == 0, seen: list[int] = seen) -> None:
                seen.append(index)
                if stop and len(seen) == 2:
                    raise KeyboardInterrupt  # what Ctrl-C does while the batch runs

            try:
                self.client.batch(f"Batch {self.run_no}-{b}", str(self.folder / "*.jpg"), use_cache=False,
                                  progress=False, on_item=on_item, concurrency=4)
            except BatchInterrupted:
                pass

    def half(self, fraction: float, *, interrupt_one: bool = False) -> None:
        c = self.counts
        self.cells(max(1, round(c.cells * fraction)))
        self.questions(max(1, round(c.panel * fraction)))
        self.async_asks(max(1, round(c.aask * fraction)))
        self.batches(max(1, round(c.batches * fraction)), interrupt_one=interrupt_one)


def growth(first: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    return {key: last[key] - first[key] for key in ("rss", "widgets", "threads", "files", "loops", "transports")}


def table(rows: list[dict[str, Any]], grown: dict[str, Any]) -> str:
    lines = ["| checkpoint | RSS (MB) | live widgets | threads | open files | open event loops | open transports |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['checkpoint']} | {r['rss']:.1f} | {r['widgets']} | {r['threads']} | {r['files']} | "
                     f"{r['loops']} | {r['transports']} |")
    lines.append(f"| growth, start → end | {grown['rss']:+.1f} | {grown['widgets']:+d} | {grown['threads']:+d} | "
                 f"{grown['files']:+d} | {grown['loops']:+d} | {grown['transports']:+d} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run; figures not checked)")
    args = parser.parse_args(argv)
    counts = QUICK if args.quick else FULL
    started = time.perf_counter()
    sink = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="azmm-soak-") as scratch, emulator() as url:
        tmp = Path(scratch)
        cwd = os.getcwd()
        os.chdir(tmp)  # a session cache or uploads saved by the session stay in the scratch folder
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                session = Session(url, tmp, counts)
                # warm-up: fill the panel's history, the memo, the cache; start each kind of work once
                from azmm_magic.frontends.panel.history import HISTORY_LIMIT

                session.cells(min(counts.cells, 2 * counts.photos))
                session.questions(min(counts.panel, HISTORY_LIMIT + 5))
                session.async_asks(2)
                session.batches(1, interrupt_one=False)
                sink.seek(0)
                sink.truncate()
            rows = [checkpoint("start (after warm-up)")]
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                session.half(0.5, interrupt_one=True)
                sink.seek(0)
                sink.truncate()
            rows.append(checkpoint("middle"))
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                session.half(0.5)
                sink.seek(0)
                sink.truncate()
            rows.append(checkpoint("end"))
        finally:
            os.chdir(cwd)
    grown = growth(rows[0], rows[-1])
    met = grown["rss"] <= RSS_GOAL_MB and all(grown[k] <= 0 for k in ("widgets", "threads", "files", "loops",
                                                                       "transports"))
    c = counts
    print(f"# Soak{' (quick)' if args.quick else ''}: {c.cells} cells, {c.panel} panel questions, {c.aask} "
          f"asyncio.run(aask), {c.batches} batches of {c.batch_size} (one interrupted), after a warm-up\n")
    print(table(rows, grown))
    print(f"\nGoal: RSS growth <= {RSS_GOAL_MB:g} MB and no more widgets, threads, files, loops or transports: "
          f"{'met' if met else 'NOT met'}. Python {sys.version.split()[0]}, {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
