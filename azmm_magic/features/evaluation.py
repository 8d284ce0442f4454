"""Score a batch against labels: accuracy with its confidence interval, a confusion matrix, per-class precision and
recall, the mistakes, failures apart, and what the run cost; and compare deployments or prompts on the same rows.

``batch.evaluate("label")`` (a :class:`~azmm_magic.features.batch.BatchResult` over DataFrame rows),
``client.evaluate([...], df, truth="label")`` and ``%%azure_vision -i df --each --expect label`` land here.

- **Matching** (``match=``): ``"exact"`` (the default) compares after normalising case, spacing and punctuation;
  ``"contains"`` accepts an answer that contains the label (as whole words); ``"number"`` compares the first
  number of the answer within ``tolerance``; a callable ``match(answer, truth) -> bool`` decides itself.
- **What is compared**: the answer text, or with ``field=`` a field of a structured answer (``--schema`` /
  ``--json`` / ``response_format=``; dotted for nested fields). Without ``field``, a structured answer that has a
  field named like the truth column (or only one field) is compared by that field.
- **Honest numbers**: failures (no answer) and rows without a label are counted apart, never as wrong answers;
  accuracy comes with a 95 % Wilson interval and the sample size; two evaluations of the same rows are compared
  with McNemar's exact test on the paired answers. All computed here with :mod:`math` (no scipy).
- **Cost and time** from the usage that the answers carry, priced with the ledger's price table: the cost of this
  run (cache hits are free), the cost per 1,000 images and per correct answer (as if every answer was paid for),
  the batch's wall time and the median latency of the answers that were sent.

Nothing here needs pandas except the DataFrame views (``confusion``, ``per_class``, ``mistakes``,
``to_dataframe()``), which say so in one line when it is missing.
"""

from __future__ import annotations

import math
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azmm_magic.core import views
from azmm_magic.core.errors import ConfigError
from azmm_magic.core.result import VisionResult
from azmm_magic.features.outcomes import item_status
from azmm_magic.store.ledger import cost as token_cost

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.batch import BatchResult

Z95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval
LABEL_CHARS = 40  # a wrong answer that names no class is shown by its first words
MAX_EXTRA_COLUMNS = 12  # confusion columns for answers that name no class; the rest are folded into OTHER
MAX_CLASS_SEARCH = 200  # beyond this many classes a wrong answer is not matched against every class
OTHER = "(other)"
NO_ANSWER = "(no value)"
PANDAS_HINT = 'pip install "azmm_magic[notebooks]" (or pandas)'
MATCHES = ("exact", "contains", "number")

Matcher = Callable[[Any, Any], bool]
_NUMBER = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


# ----- statistics ----------------------------------------------------------------------------------------------
def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default); ``(0.0, 1.0)`` when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs (a binomial test with p = 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    # sum of C(n, i) / 2^n for i <= k, in log space (exact for any n, no overflow)
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(k + 1)]
    top = max(logs)
    tail = math.exp(top) * sum(math.exp(v - top) for v in logs)
    return min(1.0, 2 * tail)


# ----- matching --------------------------------------------------------------------------------------------------
def normalise(value: Any) -> str:
    """Case, spacing and punctuation removed: ``" Dark-Blue. "`` → ``"dark blue"``."""
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    text = "".join(" " if unicodedata.category(ch)[0] in "PZC" else ch for ch in text)
    return " ".join(text.split())


def first_number(value: Any) -> float | None:
    """The first number written in ``value`` (``"about 3,5 cm"`` → 3.5), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    found = _NUMBER.search(str(value))
    return float(found.group(0).replace(",", ".")) if found else None


def matcher(match: str | Matcher | None, tolerance: float = 0.0) -> tuple[str, Matcher]:
    """``(name, match(answer, truth) -> bool)`` for a ``match=`` argument."""
    if match is None or match == "exact":
        return "exact", lambda answer, truth: normalise(answer) == normalise(truth)
    if match == "contains":
        def contains(answer: Any, truth: Any) -> bool:
            want = normalise(truth)
            return bool(want) and f" {want} " in f" {normalise(answer)} "

        return "contains", contains
    if match == "number":
        def number(answer: Any, truth: Any) -> bool:
            got, want = first_number(answer), first_number(truth)
            return got is not None and want is not None and abs(got - want) <= tolerance

        return "number", number
    if callable(match):
        return getattr(match, "__name__", "custom"), match
    raise ConfigError(f"match={match!r}: use 'exact', 'contains', 'number' or a function match(answer, truth) -> bool.")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not value.strip())


def _short(value: Any) -> str:
    flat = " ".join(str(value).split())
    return flat if len(flat) <= LABEL_CHARS else flat[: LABEL_CHARS - 1] + "…"


def _fields(parsed: Any) -> Mapping[str, Any] | None:
    dump = getattr(parsed, "model_dump", None)
    if callable(dump):
        parsed = dump()
    return parsed if isinstance(parsed, Mapping) else None


_ABSENT = object()


def field_value(parsed: Any, name: str) -> Any:
    """``parsed[name]`` (dotted: nested fields) of a structured answer (dict or pydantic model), or ``_ABSENT``."""
    value: Any = parsed
    for part in name.split("."):
        fields = _fields(value)
        if fields is None or part not in fields:
            return _ABSENT
        value = fields[part]
    return value


# ----- one scored item -------------------------------------------------------------------------------------------
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
        out = []
        for label in self.classes:
            support = sum(1 for s in self.scored if s.expected == label)
            hits = sum(1 for s in self.scored if s.expected == label and s.correct)
            called = sum(1 for s in self.scored if s.predicted == label)
            precision = hits / called if called else math.nan
            recall = hits / support if support else math.nan
            out.append((label, support, precision, recall))
        return out

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
        pd = _pandas("confusion")
        rows, columns, counts = self.confusion_counts()
        data = [[counts.get((r, c), 0) for c in columns] for r in rows]
        frame = pd.DataFrame(data, index=pd.Index(rows, name="truth"), columns=pd.Index(columns, name="predicted"))
        return frame

    @property
    def per_class(self) -> Any:
        """Precision, recall and support per class, as a DataFrame indexed by the label."""
        pd = _pandas("per_class")
        rows = self.class_rows()
        return pd.DataFrame([(p, r, s) for _, s, p, r in rows], index=pd.Index([r[0] for r in rows], name="class"),
                            columns=["precision", "recall", "support"])

    @property
    def mistakes(self) -> Any:
        """The wrong answers: the input rows (for a batch over DataFrame rows) with ``expected`` and ``answer``."""
        pd = _pandas("mistakes")
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
        pd = _pandas("to_dataframe()")
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
        ax.set_xticks(range(len(columns)), [_short(c)[:18] for c in columns], rotation=30 if len(columns) > 3 else 0,
                      ha="right" if len(columns) > 3 else "center")
        ax.set_yticks(range(len(rows)), [_short(r)[:18] for r in rows])
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


def _pandas(what: str) -> Any:
    try:
        import pandas as pd  # type: ignore[import-untyped]
    except ImportError as e:
        raise ConfigError(f"Evaluation.{what} is a DataFrame and needs pandas: {PANDAS_HINT}.") from e
    return pd


# ----- building an evaluation --------------------------------------------------------------------------------------
def _truth_values(batch: BatchResult, truth: Any) -> list[Any]:
    """The label of every input position: a column of the batch's DataFrame, or a sequence in input order."""
    if isinstance(truth, str):
        frame = batch.frame
        if frame is None:
            raise ConfigError(f"truth={truth!r} names a column, but this batch was not over DataFrame rows: give the "
                              "labels as a list in input order, or run the batch over a DataFrame.")
        if truth not in list(frame.columns):
            columns = ", ".join(map(str, frame.columns))
            raise ConfigError(f"truth={truth!r}: the DataFrame has no such column; its columns: {columns}.")
        values = frame[truth].tolist()
    else:
        tolist = getattr(truth, "tolist", None)
        try:
            values = list(tolist() if callable(tolist) else truth)
        except TypeError:
            raise ConfigError("truth= must be a column name or a sequence of labels in input order, got "
                              f"{type(truth).__name__}.") from None
    if len(values) != batch.total:
        raise ConfigError(f"truth= has {len(values)} labels for a batch of {batch.total} items: give one per item, "
                          "in input order.")
    return values


def _target(batch: BatchResult, truth: Any, field_name: str | None) -> str | None:
    """The field to compare: ``field_name``, else a structured answer's field named like the truth column, or its
    only field; None compares the answer text."""
    structured = [_fields(o.parsed) for o in batch.results if o.parsed is not None]
    if field_name is not None:
        if batch.results and not structured:
            raise ConfigError(f"field={field_name!r}: the answers are not structured; ask with a schema (--schema / "
                              "response_format=) or --json, or leave field out to compare the answer text.")
        return field_name
    first = next((s for s in structured if s is not None), None)
    if first is None:
        return None
    if isinstance(truth, str) and truth in first:
        return truth
    return next(iter(first)) if len(first) == 1 else None


def _answer_of(outcome: VisionResult, target: str | None) -> str | None:
    if target is None:
        return outcome.text
    value = field_value(outcome.parsed, target) if outcome.parsed is not None else _ABSENT
    if value is _ABSENT or value is None:
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


def evaluate_batch(batch: BatchResult, truth: Any, *, field: str | None = None, match: str | Matcher | None = None,
                   tolerance: float = 0.0, prices: Mapping[str, Any] | None = None, name: str = "") -> Evaluation:
    """See :meth:`BatchResult.evaluate`."""
    labels = _truth_values(batch, truth)
    target = _target(batch, truth, field)
    match_name, same = matcher(match, tolerance)
    classes = sorted({str(v).strip() for v in labels if not _missing(v)}, key=str)
    by_key = {normalise(c): c for c in classes}

    def predicted(answer: str | None, expected: str, correct: bool) -> str:
        if correct:
            return expected
        if answer is None:
            return NO_ANSWER
        if match_name == "exact":
            found = by_key.get(normalise(answer))
            if found is not None:
                return found
        elif len(classes) <= MAX_CLASS_SEARCH:
            hits = [c for c in classes if same(answer, c)]
            if len(hits) == 1:
                return hits[0]
        if match_name == "number":
            number = first_number(answer)
            return _short(answer) if number is None else f"{number:g}"
        return _short(answer)

    items: list[Scored] = []
    for index, outcome in zip(batch.indices(), batch, strict=True):
        raw = labels[index]
        expected = None if _missing(raw) else str(raw).strip()
        row, source = batch.row_of(index), batch.source_of(index)
        if not isinstance(outcome, VisionResult):
            items.append(Scored(index, row, source, expected, None, None, None, item_status(outcome),
                                outcome.error, outcome))
            continue
        answer = _answer_of(outcome, target)
        if expected is None:
            items.append(Scored(index, row, source, None, answer, None, None, "unlabelled", None, outcome))
            continue
        try:
            correct = answer is not None and bool(same(answer, raw if callable(match) else expected))
        except Exception as e:  # noqa: BLE001 - a user's match function failing is reported, in one line
            raise ConfigError(f"match= raised {type(e).__name__} on row {row if row is not None else index!r}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")) from None
        items.append(Scored(index, row, source, expected, answer, predicted(answer, expected, correct), correct,
                            item_status(outcome), None, outcome))
    return Evaluation(batch, items, name=name, target=target or "answer", match=match_name,
                      prices=prices if prices is not None else getattr(batch, "prices", None))


# ----- several evaluations of the same rows ------------------------------------------------------------------------
@dataclass(frozen=True)
class Paired:
    """McNemar's test of two evaluations on the rows both answered: ``only_first`` right only in the first,
    ``only_second`` right only in the second, ``pairs`` rows compared, ``p`` the two-sided exact p-value."""

    first: str
    second: str
    pairs: int
    only_first: int
    only_second: int
    p: float

    def sentence(self) -> str:
        """The test in one sentence, with what it means."""
        if not self.pairs:
            return f"{self.first} vs {self.second}: no row answered by both, nothing to compare."
        verdict = ("is more than chance (p < 0.05)" if self.p < 0.05
                   else "could be chance (p ≥ 0.05; more rows would tell)")
        return (f"{self.first} vs {self.second}: on {self.pairs} rows both answered, {self.only_first} right only "
                f"with {self.first}, {self.only_second} right only with {self.second}; McNemar exact p = "
                f"{self.p:.3g}: the difference {verdict}.")


def paired(a: Evaluation, b: Evaluation) -> Paired:
    """McNemar's exact test on the rows both evaluations scored (matched by input position)."""
    right_a = {s.index: bool(s.correct) for s in a.scored}
    right_b = {s.index: bool(s.correct) for s in b.scored}
    both = sorted(set(right_a) & set(right_b))
    only_a = sum(1 for i in both if right_a[i] and not right_b[i])
    only_b = sum(1 for i in both if right_b[i] and not right_a[i])
    return Paired(a.name or "first", b.name or "second", len(both), only_a, only_b, mcnemar_p(only_a, only_b))


class EvaluationTable(list[Evaluation]):
    """Several evaluations of the same rows (deployments, prompts, detail levels) side by side: accuracy with its
    interval, cost per 1,000 images and per correct answer, median latency, failures; and McNemar's test of each
    against the first (:meth:`tests`). ``evaluation["name"]`` picks one by name; ``to_dataframe()`` the table."""

    HEADERS = ("variant", "accuracy", "95 % CI", "n", "failed", "cost / 1,000 images", "cost / correct",
               "tokens / image", "median latency", "cached")

    def __init__(self, evaluations: Iterable[Evaluation] = ()) -> None:
        super().__init__(evaluations)

    def by_name(self, name: str) -> Evaluation:
        """The evaluation called ``name``."""
        for evaluation in self:
            if evaluation.name == name:
                return evaluation
        raise KeyError(name)

    def tests(self) -> list[Paired]:
        """McNemar's test of every evaluation against the first."""
        return [paired(self[0], other) for other in self[1:]] if len(self) > 1 else []

    def rows(self) -> list[tuple[str, ...]]:
        """The table as strings (one row per evaluation)."""

        def money(value: float | None, digits: int) -> str:
            return "—" if value is None else f"{value:.{digits}f}"

        out: list[tuple[str, ...]] = []
        for e in self:
            low, high = e.interval
            accuracy = "—" if not e.n else f"{100 * e.accuracy:.1f} % ({e.correct}/{e.n})"
            latency = e.median_latency
            out.append((e.name, accuracy, "—" if not e.n else f"{100 * low:.0f}–{100 * high:.0f} %", str(e.n),
                        str(len(e.failures)), money(e.cost_per_1000, 2), money(e.cost_per_correct, 4),
                        "—" if e.tokens_per_image is None else f"{e.tokens_per_image:,.0f}",
                        "— (cached)" if latency is None else f"{latency:.2f} s", str(e.cached)))
        return out

    def to_dataframe(self) -> Any:
        """The table as a DataFrame (numbers, not strings), one row per evaluation."""
        pd = _pandas("EvaluationTable.to_dataframe()")
        return pd.DataFrame.from_records([{
            "variant": e.name, "accuracy": e.accuracy, "ci_low": e.interval[0], "ci_high": e.interval[1], "n": e.n,
            "correct": e.correct, "failed": len(e.failures), "cost_per_1000": e.cost_per_1000,
            "cost_per_correct": e.cost_per_correct, "tokens_per_image": e.tokens_per_image,
            "median_latency": e.median_latency, "cached": e.cached, "cost": e.cost,
        } for e in self]).set_index("variant")

    def __repr__(self) -> str:
        return views.plain(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)


def _variant_name(variant: Mapping[str, Any], number: int, differing: Sequence[str]) -> str:
    if variant.get("name"):
        return str(variant["name"])
    parts = []
    for key in differing:
        value = variant.get(key)
        if key == "prompt" and value is not None:
            parts.append(f"prompt {number}")
        elif key == "response_format" and value is not None:
            parts.append(getattr(value, "__name__", "schema"))
        elif value is not None:
            parts.append(str(value) if key == "deployment" else f"{key}={value}")
    return ", ".join(parts) or f"variant {number}"


def evaluate_variants(run: Callable[..., BatchResult], variants: Sequence[str | Mapping[str, Any]], images: Any, *,
                      truth: Any, prompt: str | None = None, field: str | None = None,
                      match: str | Matcher | None = None, tolerance: float = 0.0,
                      prices: Mapping[str, Any] | None = None, **options: Any) -> EvaluationTable:
    """Run ``run(prompt, images, **options)`` (a batch) once per variant and score each against ``truth``.

    A variant is a prompt (a string) or a dict of what differs: ``prompt``, ``deployment``, ``detail``,
    ``system``, ``response_format``, ``field``, ``name``... over the shared ``options``."""
    if isinstance(variants, str | Mapping) or not variants:
        raise ConfigError("evaluate() takes a list of variants: prompts, or dicts such as "
                          "{'deployment': 'gpt-4o-mini'}; e.g. client.evaluate(['Name the colour.'], df, truth='label').")
    specs: list[dict[str, Any]] = [{"prompt": v} if isinstance(v, str) else dict(v) for v in variants]
    for spec in specs:
        if not isinstance(spec.get("prompt", prompt), str) or not spec.get("prompt", prompt):
            raise ConfigError("evaluate(): every variant needs a prompt: give prompt='...' or a 'prompt' in the variant.")
    keys = sorted({k for spec in specs for k in spec if k != "name"})
    differing = [k for k in keys if len({repr(spec.get(k, options.get(k))) for spec in specs}) > 1]
    table = EvaluationTable()
    names: set[str] = set()
    for number, spec in enumerate(specs, start=1):
        name = _variant_name(spec, number, differing)
        if name in names:
            name = f"{name} ({number})"
        names.add(name)
        chosen = {**options, **{k: v for k, v in spec.items() if k not in ("name", "prompt", "field", "match")}}
        batch = run(spec.get("prompt", prompt), images, **chosen)
        table.append(batch.evaluate(truth, field=spec.get("field", field), match=spec.get("match", match),
                                    tolerance=tolerance, prices=prices, name=name))
    return table


__all__ = ["Evaluation", "EvaluationTable", "MATCHES", "Paired", "Scored", "evaluate_batch", "evaluate_variants",
           "field_value", "first_number", "matcher", "mcnemar_p", "normalise", "paired", "wilson"]
