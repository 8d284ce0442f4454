"""A text progress bar for batches (tqdm): items done, with answered / cached / failed counts."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from azmm_magic.features.outcomes import Outcome, item_status


class ProgressBar:
    """``start()``, ``add(index, outcome)`` per finished item, ``close()``. ``notebook`` uses tqdm's widget bar."""

    def __init__(self, total: int, *, notebook: bool = False, stream: TextIO | None = None) -> None:
        self.total = total
        self.notebook = notebook
        self.stream = stream
        self.counts = {"ok": 0, "cached": 0, "failed": 0}
        self.bar: Any = None
        self.waiting = ""

    def start(self) -> ProgressBar:
        if self.bar is None:
            if self.notebook:
                from tqdm.auto import tqdm
            else:
                from tqdm import tqdm
            self.bar = tqdm(total=self.total, desc="azure_vision", unit="img", file=self.stream or sys.stderr,
                            dynamic_ncols=True, smoothing=0)  # rate: items over the whole run
            self.bar.set_postfix_str(self.postfix(), refresh=False)
        return self

    def postfix(self) -> str:
        c = self.counts
        waiting = f" · {self.waiting}" if self.waiting else ""
        return f"answered {c['ok']} · cached {c['cached']} · failed {c['failed']}{waiting}"

    def status(self, waiting: str) -> None:
        """Show what the batch waits for (e.g. a 429's pause) after the counts; ``""`` clears it."""
        if waiting != self.waiting:
            self.waiting = waiting
            if self.bar is not None:
                self.bar.set_postfix_str(self.postfix())

    def add(self, index: int, outcome: Outcome) -> None:
        status = item_status(outcome)
        self.counts[status if status in self.counts else "failed"] += 1
        if self.bar is not None:
            self.bar.set_postfix_str(self.postfix(), refresh=False)
            self.bar.update(1)

    def write(self, line: str) -> None:
        """Print a line above the bar (or plainly when there is no bar)."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
        else:
            print(line)

    def close(self, *, keep: bool = False) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = ["ProgressBar"]
