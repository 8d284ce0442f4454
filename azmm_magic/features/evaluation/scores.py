"""An :class:`Evaluation`: a batch's answers scored against labels, one :class:`Scored` per item, with the
counts, the confusion matrix, per-class precision and recall, cost and time, and its DataFrame views."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azmm_magic.core import views
from azmm_magic.core.errors import ConfigError
from azmm_magic.core.result import VisionResult
from azmm_magic.features.evaluation.matching import short
from azmm_magic.features.evaluation.stats import wilson
from azmm_magic.store.ledger import cost as token_cost

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.batch import BatchResult

MAX_EXTRA_COLUMNS = 12  # confusion columns for answers that name no class; the rest are folded into OTHER
OTHER = "(other)"
PANDAS_HINT = 'pip install "azmm_magic[notebooks]" (or pandas)'


@dataclass(frozen=True)
class Scored:
    """One row of an evaluation: its input position ``index``, DataFrame ``row`` label (or None), ``source``, the
    ``expected`` label, the ``answer`` compared (None for a failure), the class it counts as (``predicted``),
    ``correct`` (None when the row got no answer or has no label) and ``status`` (ok / cached / failed /
    unlabelled)."""

    index: int
    row: Any
    source: str
    expected: str | None
    answer: str | None
    predicted: str | None
    correct: bool | None
    status: str
    error: str | None = None
    outcome: Any = field(default=None, compare=False, repr=False)


class Evaluation:
    """A batch scored against labels. Build it with :meth:`BatchResult.evaluate`.

    ``accuracy`` (of the answered, labelled rows), ``interval`` (95 % Wilson), ``n`` (their number), ``correct``,
    ``failures`` (rows that got no answer: counted apart), ``unlabelled``, ``classes`` (the labels, sorted),
    ``confusion`` (a DataFrame: rows = truth, columns = predicted), ``per_class`` (precision / recall / support),
    ``mistakes`` (the input rows with the answer and the expected label), ``cost`` (this run), ``cost_per_1000``,
    ``cost_per_correct``, ``elapsed`` (the batch's wall time), ``median_latency``, ``to_dataframe()`` and
    ``plot()`` (the confusion matrix as a matplotlib Figure). Renders as a headline, a per-class table, the
    confusion matrix and a gallery of mistakes.
    """

    def __init__(self, batch: BatchResult, items: Sequence[Scored], *, name: str = "", target: str = "answer",
                 match: str = "exact", prices: Mapping[str, Any] | None = None) -> None:
        self.batch = batch
        self.items = list(items)
        self.name = name
        self.target = target
        self.match = match
        self.prices = prices

    # ----- counts -----------------------------------------------------------------------------------------------
    @property
    def scored(self) -> list[Scored]:
        """The answered rows that have a label (what accuracy is computed on)."""
        return [s for s in self.items if s.correct is not None]

    @property
    def n(self) -> int:
        return len(self.scored)

    @property
    def correct(self) -> int:
        return sum(1 for s in self.items if s.correct)

    @property
    def accuracy(self) -> float:
        """Correct answers over answered, labelled rows (NaN when there are none)."""
        return self.correct / self.n if self.n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        """The 95 % Wilson confidence interval of :attr:`accuracy`."""
        return wilson(self.correct, self.n)

    @property
    def failures(self) -> list[Scored]:
        """Rows that got no answer (an error, expiry, ...): not counted as wrong."""
        return [s for s in self.items if s.status not in ("ok", "cached", "unlabelled")]

    @property
    def unlabelled(self) -> list[Scored]:
        """Rows whose label is empty: not scored."""
        return [s for s in self.items if s.status == "unlabelled"]

    @property
    def mistake_items(self) -> list[Scored]:
        """The wrong answers, in input order."""
        return [s for s in self.items if s.correct is False]

    @property
    def classes(self) -> list[str]:
        """The labels of the scored rows, sorted."""
        return sorted({s.expected for s in self.scored if s.expected is not None}, key=str)

    def confusion_counts(self) -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
        """``(rows, columns, {(truth, predicted): count})`` of the scored rows. Columns are the classes, then the
        answers that name no class (most frequent first, at most :data:`MAX_EXTRA_COLUMNS`, the rest as
        ``(other)``)."""
        rows = self.classes
        known = set(rows)
        extra = Counter(s.predicted for s in self.scored if s.predicted not in known)
        keep = [label for label, _ in extra.most_common(MAX_EXTRA_COLUMNS)]
        columns = rows + [str(label) for label in keep]
        counts: Counter[tuple[str, str]] = Counter()
        for s in self.scored:
            predicted = s.predicted if s.predicted in known or s.predicted in keep else OTHER
            counts[(str(s.expected), str(predicted))] += 1
        if any(p == OTHER for _, p in counts):
            columns.append(OTHER)
        return rows, columns, dict(counts)

    def class_rows(self) -> list[tuple[str, int, float, float]]:
        """Per class: ``(label, support, precision, recall)`` (NaN when undefined)."""
        scored = self.scored
        support = Counter(s.expected for s in scored)
        hits = Counter(s.expected for s in scored if s.correct)
        called = Counter(s.predicted for s in scored)
        return [(label, support[label], hits[label] / called[label] if called[label] else math.nan,
                 hits[label] / support[label] if support[label] else math.nan) for label in self.classes]

    # ----- cost and time -----------------------------------------------------------------------------------------
    def _item_cost(self, s: Scored) -> float | None:
        o = s.outcome
        if not isinstance(o, VisionResult):
            return None
        return token_cost(self.prices, o.deployment, o.usage.prompt_tokens, o.usage.completion_tokens)

    def _answered(self) -> list[Scored]:
        return [s for s in self.items if isinstance(s.outcome, VisionResult)]

    @property
    def cost(self) -> float | None:
        """Estimated cost of this run (answers from the cache cost nothing); None without prices."""
        if not self.prices:
            return None
        costs = [self._item_cost(s) for s in self._answered() if not s.outcome.cached]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)

    def _full_cost(self) -> float | None:
        costs = [self._item_cost(s) for s in self._answered()]
        if not costs or any(c is None for c in costs):
            return None
        return sum(c for c in costs if c is not None)

    @property
    def cost_per_1000(self) -> float | None:
        """Estimated cost of 1,000 images like these (as if every answer was paid for); None without prices."""
        full, answered = self._full_cost(), len(self._answered())
        return None if full is None or not answered else full / answered * 1000

    @property
    def cost_per_correct(self) -> float | None:
        """Estimated cost per correct answer (every answer paid for); None without prices or correct answers."""
        full = self._full_cost()
        return None if full is None or not self.correct else full / self.correct

    @property
    def tokens_per_image(self) -> float | None:
        """Mean input + output tokens per answered image."""
        answered = self._answered()
        if not answered:
            return None
        return sum(s.outcome.usage.prompt_tokens + s.outcome.usage.completion_tokens for s in answered) / len(answered)

    @property
    def elapsed(self) -> float:
        """The batch's wall time in seconds."""
        return self.batch.elapsed

    @property
    def median_latency(self) -> float | None:
        """Median seconds of the answers that were sent (None when every answer came from the cache)."""
        times = [s.outcome.elapsed for s in self._answered() if not s.outcome.cached]
        return statistics.median(times) if times else None

    @property
    def cached(self) -> int:
        return sum(1 for s in self._answered() if s.outcome.cached)

    # ----- text ----------------------------------------------------------------------------------------------------
    def headline(self) -> str:
        """``27/30 correct: accuracy 90.0 % (95 % CI 74.4–96.5 %), n = 30 · 0 failed``."""
        if not self.n:
            head = "no answered, labelled rows to score"
        else:
            low, high = self.interval
            head = (f"{self.correct}/{self.n} correct: accuracy {100 * self.accuracy:.1f} % "
                    f"(95 % CI {100 * low:.1f}–{100 * high:.1f} %), n = {self.n}")
        parts = [head, f"{len(self.failures)} failed (not scored)"]
        if self.unlabelled:
            parts.append(f"{len(self.unlabelled)} without a label")
        return " · ".join(parts)

    def run_line(self) -> str:
        """What the run took: wall time, cache hits, median latency, cost."""
        parts = [f"{self.elapsed:.1f} s"]
        if self.cached:
            parts.append(f"{self.cached} from the cache")
        latency = self.median_latency
        if latency is not None:
            parts.append(f"median latency {latency:.2f} s")
        if self.cost is not None:
            parts.append(f"est. cost {self.cost:.4f}")
        if self.cost_per_1000 is not None:
            parts.append(f"{self.cost_per_1000:.2f} per 1,000 images")
        elif self.tokens_per_image is not None:
            parts.append(f"{self.tokens_per_image:,.0f} tokens per image (no prices: no cost)")
        return " · ".join(parts)

    def describe(self) -> str:
        """What was compared and how: ``field colour, exact match``."""
        what = "answer text" if self.target == "answer" else f"field {self.target}"
        return f"{what}, {self.match} match"

    def __repr__(self) -> str:
        return views.plain(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)

    # ----- DataFrames ------------------------------------------------------------------------------------------------
    @property
    def confusion(self) -> Any:
        """The confusion matrix as a DataFrame: rows = truth, columns = predicted (see :meth:`confusion_counts`)."""
        pd = pandas_module("confusion")
        rows, columns, counts = self.confusion_counts()
        data = [[counts.get((r, c), 0) for c in columns] for r in rows]
        frame = pd.DataFrame(data, index=pd.Index(rows, name="truth"), columns=pd.Index(columns, name="predicted"))
        return frame

    @property
    def per_class(self) -> Any:
        """Precision, recall and support per class, as a DataFrame indexed by the label."""
        pd = pandas_module("per_class")
        rows = self.class_rows()
        return pd.DataFrame([(p, r, s) for _, s, p, r in rows], index=pd.Index([r[0] for r in rows], name="class"),
                            columns=["precision", "recall", "support"])

    @property
    def mistakes(self) -> Any:
        """The wrong answers: the input rows (for a batch over DataFrame rows) with ``expected`` and ``answer``."""
        pd = pandas_module("mistakes")
        wrong = self.mistake_items
        extra = pd.DataFrame({"expected": [s.expected for s in wrong], "answer": [s.answer for s in wrong]})
        frame = self.batch.frame
        if frame is None:
            extra.insert(0, "source", [s.source for s in wrong])
            extra.index = pd.Index([s.index for s in wrong], name="index")
            return extra
        out = frame.iloc[[s.index for s in wrong]].copy()
        taken = {str(c) for c in out.columns}
        for name in ("expected", "answer"):
            out[name if name not in taken else f"eval_{name}"] = extra[name].tolist()
        return out

    def to_dataframe(self) -> Any:
        """One row per item: source, expected, answer, predicted, correct, status, error, tokens, cost, seconds
        (indexed by the DataFrame row label for a batch over rows, else the input position)."""
        pd = pandas_module("to_dataframe()")
        records = []
        for s in self.items:
            o = s.outcome
            answered = isinstance(o, VisionResult)
            records.append({
                "source": s.source, "expected": s.expected, "answer": s.answer, "predicted": s.predicted,
                "correct": s.correct, "status": s.status, "error": s.error,
                "deployment": o.deployment if answered else None,
                "prompt_tokens": o.usage.prompt_tokens if answered else None,
                "completion_tokens": o.usage.completion_tokens if answered else None,
                "cost": self._item_cost(s) if answered else None,
                "elapsed": o.elapsed if answered else None,
            })
        labels = [s.row if s.row is not None else s.index for s in self.items]
        return pd.DataFrame.from_records(records, index=pd.Index(labels, name="row" if self.batch.frame is not None
                                                                 else "index"))

    def plot(self) -> Any:
        """The confusion matrix as a matplotlib Figure (counts in the cells; no pyplot state)."""
        from matplotlib.figure import Figure

        rows, columns, counts = self.confusion_counts()
        width = max(3.6, 0.62 * len(columns) + 2.2)
        height = max(2.8, 0.5 * len(rows) + 1.8)
        fig = Figure(figsize=(width, height), layout="constrained")
        ax = fig.add_subplot()
        data = [[counts.get((r, c), 0) for c in columns] for r in rows] or [[0]]
        top = max(max(line) for line in data) or 1
        ax.imshow(data, cmap="Blues", vmin=0, vmax=top, aspect="auto")
        ax.set_xticks(range(len(columns)), [short(c)[:18] for c in columns], rotation=30 if len(columns) > 3 else 0,
                      ha="right" if len(columns) > 3 else "center")
        ax.set_yticks(range(len(rows)), [short(r)[:18] for r in rows])
        ax.set_xlabel("predicted")
        ax.set_ylabel("truth")
        for y, line in enumerate(data if rows else []):
            for x, value in enumerate(line):
                if value:
                    colour = "white" if value > top * 0.55 else "black"
                    weight = "bold" if x < len(rows) and x != y else "normal"
                    ax.text(x, y, str(value), ha="center", va="center", color=colour, fontweight=weight)
        for x in range(len(columns)):  # frame the off-diagonal (wrong) cells that have answers
            for y in range(len(rows)):
                if x != y and counts.get((rows[y], columns[x]), 0):
                    ax.add_patch(_rectangle(x, y))
        title = f"{self.name}: " if self.name else ""
        ax.set_title(f"{title}confusion matrix (n = {self.n})", fontsize=10)
        return fig


def _rectangle(x: int, y: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="#c83232", linewidth=2)


def pandas_module(what: str) -> Any:
    try:
        import pandas as pd  # type: ignore[import-untyped]
    except ImportError as e:
        raise ConfigError(f"Evaluation.{what} is a DataFrame and needs pandas: {PANDAS_HINT}.") from e
    return pd


__all__ = ["Evaluation", "MAX_EXTRA_COLUMNS", "OTHER", "PANDAS_HINT", "Scored", "pandas_module"]
