"""Shared helpers for the benchmarks: the repository on sys.path, timing statistics, test photos, the emulator
in a subprocess and an IPython shell with the extension loaded."""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # this checkout's azmm_magic, not an installed copy
    sys.path.insert(0, str(ROOT))


def child_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: this checkout first on PYTHONPATH, no Azure settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_OPENAI", "OPENAI_", "AZMM_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


@dataclass(frozen=True)
class Context:
    """What every benchmark gets: quick mode, a scratch folder, and the URL of a zero-latency emulator."""

    quick: bool
    tmp: Path
    url: str


@dataclass(frozen=True)
class Row:
    """One line of the results table. ``met`` is None when the row has no goal (a figure to report)."""

    name: str
    measured: str
    goal: str = "—"
    met: bool | None = None


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100)."""
    ordered = sorted(xs)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def print_measurements(name: str, quick: bool, rows: Sequence[tuple[str, str, str]]) -> None:
    """Print the titled Markdown table of ``(measurement, value, notes)`` rows of a standalone benchmark that runs
    the emulator in its own process (``python benchmarks/batch.py``, ``evaluate.py``)."""
    mode = "quick" if quick else "full"
    print(f"\nazmm_magic {name} benchmark ({mode}; emulator in a separate process; {os.cpu_count()} CPUs)\n")
    print("| measurement | value | notes |")
    print("|---|---|---|")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


def size(n: int) -> str:
    for unit, scale in (("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def make_photo(path: Path, width: int, height: int, *, seed: int = 0, quality: int = 90) -> Path:
    """A photo-like JPEG: smooth colour gradients and waves plus sensor-like noise (compresses like a photo)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    phase = float(rng.uniform(0, 6.28))
    r = 180 * x + 40 * np.sin(12 * y + phase) + 30
    g = 160 * y + 50 * np.cos(36 * x * y + phase) + 20
    b = 120 * (1 - x) * y + 60 * np.sin(20 * x + phase) ** 2 + 40
    pixels = np.stack([np.broadcast_to(c, (height, width)) for c in (r, g, b)], axis=-1)
    pixels = pixels + rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=quality)
    return path


@contextlib.contextmanager
def emulator(*args: str) -> Iterator[str]:
    """``python -m azmm_magic.emulator --port 0 ARGS`` in a subprocess (its CPU is not ours); yields the URL."""
    from azmm_magic.emulator.server import start_subprocess

    proc, url = start_subprocess(list(args), env=child_env())
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except Exception:  # noqa: BLE001
            proc.kill()
            proc.wait()


DEPLOYMENT = "bench"


def shell(url: str) -> Any:
    """A fresh IPython InteractiveShell (no history) with ``%load_ext azmm_magic``, pointed at ``url``."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    InteractiveShell.clear_instance()
    cfg = Config()
    cfg.HistoryManager.enabled = False
    cfg.AzureVision.endpoint = url
    cfg.AzureVision.deployment = DEPLOYMENT
    cfg.AzureVision.auth = "none"
    cfg.AzureVision.api_style = "azure"
    sh = InteractiveShell.instance(config=cfg)
    sh.run_line_magic("load_ext", "azmm_magic")
    return sh
