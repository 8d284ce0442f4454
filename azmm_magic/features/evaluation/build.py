"""Scoring a batch: the labels (a DataFrame column or a sequence), what is compared (the text or a field), and
one :class:`~azmm_magic.features.evaluation.scores.Scored` per item."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from azmm_magic.core.errors import ConfigError
from azmm_magic.core.result import VisionResult
from azmm_magic.features.evaluation.matching import (
    ABSENT,
    Matcher,
    field_value,
    fields_of,
    first_number,
    matcher,
    missing,
    normalise,
    short,
)
from azmm_magic.features.evaluation.scores import Evaluation, Scored
from azmm_magic.features.outcomes import item_status

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.batch import BatchResult

MAX_CLASS_SEARCH = 200  # beyond this many classes a wrong answer is not matched against every class
NO_ANSWER = "(no value)"


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
    structured = [fields_of(o.parsed) for o in batch.results if o.parsed is not None]
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
    value = field_value(outcome.parsed, target) if outcome.parsed is not None else ABSENT
    if value is ABSENT or value is None:
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


def evaluate_batch(batch: BatchResult, truth: Any, *, field: str | None = None, match: str | Matcher | None = None,
                   tolerance: float = 0.0, prices: Mapping[str, Any] | None = None, name: str = "") -> Evaluation:
    """See :meth:`BatchResult.evaluate`."""
    labels = _truth_values(batch, truth)
    target = _target(batch, truth, field)
    match_name, same = matcher(match, tolerance)
    classes = sorted({str(v).strip() for v in labels if not missing(v)}, key=str)
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
            return short(answer) if number is None else f"{number:g}"
        return short(answer)

    items: list[Scored] = []
    for index, outcome in zip(batch.indices(), batch, strict=True):
        raw = labels[index]
        expected = None if missing(raw) else str(raw).strip()
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


__all__ = ["NO_ANSWER", "evaluate_batch"]
