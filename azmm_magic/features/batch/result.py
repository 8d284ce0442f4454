"""What a batch gives back: :class:`BatchResult` (every outcome, in input order), :class:`BatchStats` (what the
run did) and :class:`BatchInterrupted` (Ctrl-C, holding what finished)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from azmm_magic.core import views
from azmm_magic.core.errors import ConfigError
from azmm_magic.core.result import VisionResult
from azmm_magic.features.outcomes import BatchFailure, Outcome, item_source, item_status

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.evaluation import Evaluation


@dataclass
class BatchStats:
    """What a run did, for benchmarks and the footer: requests sent, 429s met, window changes, peak in flight."""

    sent: int = 0
    throttled: int = 0
    retried: int = 0
    decreases: int = 0
    peak_in_flight: int = 0
    final_window: int = 0
    paced: int = 0  # sends that waited for the service's budget (headers or the tpm setting)
    prepare_workers: int = 0
    prepare_processes: bool = False
    waiting: str = ""  # what the batch is waiting for now, e.g. "rate limited (429): retrying in 3 s (1 of 30)"



class BatchResult(Sequence[Outcome]):
    """The outcome of a batch, in input order: a :class:`VisionResult` per answered image and a
    :class:`BatchFailure` per image that got none.

    ``results`` (answers only), ``failures``, ``sources``, ``to_records()`` (list of dicts), ``to_dataframe()``
    (needs pandas). ``interrupted`` is True when the run was stopped early: then it holds what finished, and
    ``total`` says how many items the run had. ``elapsed`` is the wall time in seconds.

    To keep memory bounded, each result's ``images`` hold at most a small thumbnail in ``data`` (none for an
    image read from a file when no gallery showed it: its thumbnail is made from the file when the result is
    shown); ``width``, ``height`` and ``sha256`` still describe the image that was sent.
    """

    def __init__(self, outcomes: Iterable[Outcome] = (), *, total: int | None = None, prompt: str = "") -> None:
        self._by_index: dict[int, Outcome] = {}
        self._sources: dict[int, str] = {}
        self._lock = threading.Lock()
        self.prompt = prompt
        self.interrupted = False
        self.elapsed = 0.0
        self.notices: list[str] = []
        self.stats: BatchStats | None = None
        self.frame: Any = None  # the input DataFrame of a batch over its rows
        self.rows: list[Any] | None = None  # each item's row index label (a batch over DataFrame rows)
        self.prompts: list[str] | None = None  # each item's prompt, when it differs per item
        self.prices: Any = None  # the client ledger's price table when the batch ran (for evaluate's cost)
        for i, outcome in enumerate(outcomes):
            self.put(i, outcome)
        self.total = total if total is not None else len(self._by_index)

    # filled while the batch runs (from one thread at a time, under a lock)
    def put(self, index: int, outcome: Outcome, source: str | None = None) -> None:
        """Record the outcome of item ``index`` (``source`` defaults to the outcome's own label)."""
        with self._lock:
            self._by_index[index] = outcome
            self._sources[index] = source if source is not None else item_source(outcome)

    def source_of(self, index: int) -> str:
        """The source label of the item at input position ``index``."""
        with self._lock:
            return self._sources.get(index) or item_source(self._by_index[index])

    def row_of(self, index: int) -> Any:
        """The DataFrame row index label of item ``index`` (None for a batch that is not over rows)."""
        return self.rows[index] if self.rows is not None and index < len(self.rows) else None

    def prompt_of(self, index: int) -> str:
        """The prompt item ``index`` was asked (filled in from its row for a batch over DataFrame rows)."""
        return self.prompts[index] if self.prompts is not None and index < len(self.prompts) else self.prompt

    def _items(self) -> list[Outcome]:
        with self._lock:
            return [self._by_index[i] for i in sorted(self._by_index)]

    def indices(self) -> list[int]:
        """Input positions of the items held (all of ``range(total)`` unless interrupted)."""
        with self._lock:
            return sorted(self._by_index)

    def __len__(self) -> int:
        return len(self._by_index)

    @overload
    def __getitem__(self, i: int) -> Outcome: ...

    @overload
    def __getitem__(self, i: slice) -> list[Outcome]: ...

    def __getitem__(self, i: int | slice) -> Outcome | list[Outcome]:
        return self._items()[i]

    def __iter__(self) -> Iterator[Outcome]:
        return iter(self._items())

    @property
    def results(self) -> list[VisionResult]:
        """The answers (fresh and cached), in input order."""
        return [o for o in self._items() if isinstance(o, VisionResult)]

    @property
    def failures(self) -> list[BatchFailure]:
        """The items that got no answer, in input order."""
        return [o for o in self._items() if isinstance(o, BatchFailure)]

    @property
    def sources(self) -> list[str]:
        """The source label (path, URL, ``<PIL.Image ...>``) of each item held, in input order."""
        return [self.source_of(i) for i in self.indices()]

    @property
    def missing(self) -> int:
        """Items of the run that have no outcome (only after an interrupt)."""
        return max(0, self.total - len(self))

    def counts(self) -> dict[str, int]:
        """``{"ok": n, "cached": n, "failed": n, "missing": n}`` (expired/cancelled count as failed)."""
        out = {"ok": 0, "cached": 0, "failed": 0}
        for o in self._items():
            status = item_status(o)
            out[status if status in out else "failed"] += 1
        out["missing"] = self.missing
        return out

    def summary(self) -> str:
        """One line: ``200 images · 150 answered · 48 cached · 2 failed · 12.3 s``."""
        c = self.counts()
        parts = [f"{self.total} image{'s' if self.total != 1 else ''}", f"{c['ok']} answered", f"{c['cached']} cached",
                 f"{c['failed']} failed"]
        if c["missing"]:
            parts.append(f"{c['missing']} not run (interrupted: re-run to send only those)")
        if self.elapsed:
            parts.append(f"{self.elapsed:.1f} s")
        return " · ".join(parts + self.notices)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per item: index, source, status, text, error, finish_reason, tokens, elapsed, deployment..."""
        records = []
        with self._lock:
            pairs = sorted(self._by_index.items())
        for index, o in pairs:
            record: dict[str, Any] = {"index": index, "source": self.source_of(index), "status": item_status(o)}
            if isinstance(o, BatchFailure):
                record.update(text=None, error=o.error, error_kind=o.kind, finish_reason=None, prompt_tokens=None,
                              completion_tokens=None, elapsed=None, deployment=None, request_id=None, cached=False)
            else:
                record.update(
                    text=o.text, error=None, error_kind=None, finish_reason=o.finish_reason,
                    prompt_tokens=o.usage.prompt_tokens, completion_tokens=o.usage.completion_tokens,
                    elapsed=o.elapsed, deployment=o.deployment, request_id=o.request_id, cached=o.cached,
                )
                record.update(_record_extra(o))
            records.append(record)
        return records

    def to_dataframe(self) -> Any:
        """A pandas DataFrame of :meth:`to_records` (pandas is an optional dependency).

        One schema for every batch: ``source``, ``status``, ``answer``, the structured answer's fields as columns
        (``--schema`` / ``response_format=``), ``error``, ``cached``, ``prompt_tokens``, ``completion_tokens``,
        ``finish_reason``, ``deployment`` and ``elapsed`` (:data:`~azmm_magic.features.rows.ANSWER_COLUMNS`). Over a
        folder, a glob or a list: one row per item, indexed by its position. Over DataFrame rows: the input rows
        (same index, all input columns) with those columns added (an item not run, after an interrupt, has empty
        cells; a name that is already an input column gets an ``answer_`` prefix).
        """
        try:
            import pandas  # type: ignore[import-untyped]  # noqa: F401
        except ImportError as e:
            raise ConfigError("to_dataframe() needs pandas: pip install pandas (or use to_records()).") from e
        from azmm_magic.features.rows import answer_columns, answer_table

        outcomes = dict(zip(self.indices(), self, strict=True))
        sources = {i: self.source_of(i) for i in outcomes}
        if self.frame is None:
            return answer_table(outcomes, sources)
        return answer_columns(self.frame, outcomes, sources)

    def evaluate(self, truth: Any, *, field: str | None = None, match: Any = None, tolerance: float = 0.0,
                 prices: Any = None, name: str = "") -> Evaluation:
        """Score the answers against labels: an :class:`~azmm_magic.features.evaluation.Evaluation` (accuracy with
        a 95 % Wilson interval, confusion matrix, per-class precision/recall, mistakes, failures apart, cost).

        ``truth``: a column of the input DataFrame (by name), or a sequence of labels in input order. ``field``: a
        field of a structured answer to compare (``--schema``/``--json``; dotted for nested), else the answer text
        (or the structured answer's field named like the truth column). ``match``: ``"exact"`` after normalising
        case, spacing and punctuation (default), ``"contains"``, ``"number"`` (within ``tolerance``) or a function
        ``match(answer, truth) -> bool``. ``prices`` (per 1M tokens, as for the usage ledger) defaults to the
        client's ledger prices.
        """
        from azmm_magic.features.evaluation import evaluate_batch

        return evaluate_batch(self, truth, field=field, match=match, tolerance=tolerance, prices=prices, name=name)

    # ----- display ---------------------------------------------------------------------------------------------
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(views.plain(self))

    def __repr__(self) -> str:
        return f"BatchResult({self.summary()})"


def _record_extra(result: VisionResult) -> dict[str, Any]:
    """The parsed structured answer (``parsed``) of a result, when it has one."""
    return {"parsed": result.parsed} if result.parsed is not None else {}


class BatchInterrupted(KeyboardInterrupt):
    """Raised by :meth:`VisionClient.batch` on Ctrl-C / a kernel interrupt. ``result`` is the partial
    :class:`BatchResult` (everything that finished is also in the cache: re-running sends only the rest)."""

    def __init__(self, result: BatchResult) -> None:
        super().__init__(f"batch interrupted: {result.summary()}")
        self.result = result


__all__ = ["BatchInterrupted", "BatchResult", "BatchStats"]
