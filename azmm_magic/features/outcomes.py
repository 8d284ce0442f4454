"""The outcome of one batch item: a :class:`VisionResult`, or a :class:`BatchFailure` with its one-line error."""

from __future__ import annotations

from dataclasses import dataclass

from azmm_magic.core.errors import AzureVisionError
from azmm_magic.core.result import VisionResult


@dataclass(frozen=True)
class BatchFailure:
    """One item that got no answer. ``error`` is the one-line message; ``kind`` the exception class name or a
    Batch API state (``expired``, ``cancelled``, ``failed``); ``status``/``code`` as the service gave them;
    ``attempts`` how many times its request was sent (None: never sent, or not known). Test an outcome with
    ``isinstance(outcome, BatchFailure)``."""

    index: int
    source: str
    error: str
    kind: str = "ServiceError"
    status: int | None = None
    code: str | None = None
    attempts: int | None = None

    def __str__(self) -> str:
        return f"FAILED {self.source}: {self.error}"


Outcome = VisionResult | BatchFailure


def item_source(outcome: Outcome) -> str:
    """The source label of an outcome (file path, ``<PIL.Image 64x48>``, ...)."""
    if isinstance(outcome, BatchFailure):
        return outcome.source
    return outcome.images[0].source if outcome.images else outcome.prompt


def item_status(outcome: Outcome) -> str:
    """``ok``, ``cached``, or the failure's kind for expired/cancelled items, else ``failed``."""
    if isinstance(outcome, BatchFailure):
        return outcome.kind if outcome.kind in ("expired", "cancelled") else "failed"
    return "cached" if outcome.cached else "ok"


def failure_of(index: int, label: str, error: BaseException) -> BatchFailure:
    """The failure record of item ``index`` for ``error`` (our one-line message, or the exception's first line)."""
    if isinstance(error, AzureVisionError):
        return BatchFailure(index, label, str(error), type(error).__name__, getattr(error, "status", None),
                            getattr(error, "code", None), getattr(error, "attempts", None))
    text = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    return BatchFailure(index, label, f"{type(error).__name__}: {text}" if text else type(error).__name__,
                        type(error).__name__)


__all__ = ["BatchFailure", "Outcome", "failure_of", "item_source", "item_status"]
