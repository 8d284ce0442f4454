"""DataFrame rows as batch items: one request per row, the prompt filled in from the row's columns.

``client.batch("Is this a {label}?", df, column="path")`` and ``%%azure_vision -i df --each`` land here (through
:func:`azmm_magic.features.batch.plan_batch`):

- **The image column** is the one column whose values are all images: paths or URLs of images, PDFs or videos,
  bytes, PIL images, numpy arrays (``column=`` chooses one; a column named like ``image``/``path``/``file``/``url``
  wins when several qualify).
- **The prompt** is filled per row by :func:`azmm_magic.core.prompts.interpolate`: ``{name}`` becomes
  ``str(row[name])`` when the DataFrame has a column ``name`` (columns win over notebook variables), else the
  notebook variable ``name`` when a namespace is given (the magic passes its own), else it is left as written.
- **The result** keeps the input rows: :meth:`~azmm_magic.features.batch.BatchResult.to_dataframe` returns them
  (same index, all input columns) with the answer columns added.

pandas is never imported here: a DataFrame is recognised only when pandas is already imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azmm_magic.core.errors import ConfigError, ImageInputError
from azmm_magic.core.images import MAX_SOURCES, expand_sources, is_dataframe, leaf_label, looks_like_image
from azmm_magic.core.prompts import interpolate

_MEDIA_SUFFIXES = (
    ".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif", ".ico",
    ".pdf", ".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi",
)
_PREFERRED = ("image", "images", "img", "path", "file", "filename", "url", "photo", "picture", "src", "source")
_SAMPLE = 50  # values looked at per column to decide whether it holds images


@dataclass(frozen=True)
class Rows:
    """A DataFrame to ask about row by row: ``column`` names the image column (found when None); ``namespace``
    fills ``{name}`` placeholders that are not columns (the magic passes the notebook's variables)."""

    frame: Any
    column: str | None = None
    namespace: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class RowItem:
    """One row to ask about: its index label, the image value, the leaves it expands to and the filled prompt."""

    row: Any
    label: str
    leaves: tuple[Any, ...]
    prompt: str


def as_rows(images: object, column: str | None = None) -> Rows | None:
    """``images`` as :class:`Rows` when it is a DataFrame (or already Rows, alone or as the only item of a list or
    tuple); None otherwise."""
    if isinstance(images, (list, tuple)) and len(images) == 1 and (isinstance(images[0], Rows) or is_dataframe(images[0])):
        images = images[0]
    if isinstance(images, Rows):
        return Rows(images.frame, column or images.column, images.namespace) if column else images
    if is_dataframe(images):
        return Rows(images, column)
    if column is not None:
        raise ConfigError(f"column={column!r} chooses the image column of a pandas DataFrame; the images given are not one")
    return None


def _is_image_value(value: object) -> bool:
    if isinstance(value, str):
        text = value.strip().lower()
        return text.startswith(("http://", "https://", "data:image/")) or text.split("#", 1)[0].endswith(_MEDIA_SUFFIXES)
    if isinstance(value, os.PathLike):
        return True
    return looks_like_image(value)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def image_column(frame: Any, column: str | None = None) -> str:
    """The column of ``frame`` that holds the images (``column`` if given: it must exist)."""
    columns = [str(c) for c in frame.columns]
    twice = sorted({c for c in columns if columns.count(c) > 1}) if len(set(columns)) < len(columns) else []
    if twice:
        raise ConfigError(
            f"the DataFrame has duplicate column names ({', '.join(twice[:5])}), as concat/merge can leave; rename "
            "them (df.columns = [...]) or keep the first of each (df.loc[:, ~df.columns.duplicated()])"
        )
    if column is not None:
        if column not in list(frame.columns):
            raise ConfigError(f"column={column!r}: the DataFrame has no such column; its columns: {', '.join(columns)}")
        return column
    candidates = []
    for name in frame.columns:
        values = [v for v in frame[name].head(_SAMPLE).tolist() if not _is_missing(v)]
        if values and all(_is_image_value(v) for v in values):
            candidates.append(name)
    if not candidates:
        raise ConfigError(
            "no column of the DataFrame holds images (image/PDF/video paths, URLs, bytes, PIL images or arrays); "
            f"its columns: {', '.join(columns) or '(none)'}; choose one with column="
        )
    if len(candidates) > 1:
        preferred = [c for c in candidates if str(c).lower() in _PREFERRED]
        if len(preferred) == 1:
            return preferred[0]
        raise ConfigError(
            f"several columns of the DataFrame hold images ({', '.join(map(str, candidates))}); choose one with column="
        )
    return candidates[0]


def row_items(rows: Rows, template: str) -> list[RowItem]:
    """One :class:`RowItem` per row of ``rows.frame``, in order (sources expanded, nothing decoded)."""
    frame = rows.frame
    if len(frame) > MAX_SOURCES:  # checked before any row is looked at
        raise ConfigError(f"the DataFrame has {len(frame):,} rows, over the {MAX_SOURCES:,} one batch takes; "
                          "ask about a slice at a time (df.iloc[:50000], then the rest)")
    column = image_column(frame, rows.column)
    names = [str(c) for c in frame.columns]
    items = []
    for position, (index, values) in enumerate(zip(frame.index, frame.itertuples(index=False, name=None), strict=True)):
        record = dict(zip(names, values, strict=True))
        value = record[str(column)]
        where = f"row {index!r} (column {str(column)!r})"
        if _is_missing(value):
            raise ImageInputError(f"{where} has no image")
        try:
            leaves = tuple(expand_sources(value))
        except ImageInputError as e:
            raise ImageInputError(f"{where}: {e}", settings=e.settings) from None
        if isinstance(value, (str, os.PathLike)):
            label = str(value)
        else:
            label = leaf_label(leaves[0]) if len(leaves) == 1 else f"<row {position}>"
        items.append(RowItem(index, label, leaves, interpolate(template, record, rows.namespace)))
    if not items:
        raise ConfigError("the DataFrame has no rows: nothing to ask about")
    return items


def _fields(parsed: Any) -> dict[str, Any]:
    """A structured answer as columns: a pydantic model's fields, a dict's keys, else one ``parsed`` column."""
    if parsed is None:
        return {}
    dump = getattr(parsed, "model_dump", None)
    if callable(dump):
        parsed = dump()
    return dict(parsed) if isinstance(parsed, Mapping) else {"parsed": parsed}


#: The columns every batch table has (``BatchResult.to_dataframe()``, over a folder or over DataFrame rows), in
#: this order; a structured answer's fields come right after ``answer``.
ANSWER_COLUMNS = ("source", "status", "answer", "error", "cached", "prompt_tokens", "completion_tokens",
                  "finish_reason", "deployment", "elapsed")


def answer_record(outcome: Any, source: str | None) -> dict[str, Any]:
    """One item's :data:`ANSWER_COLUMNS` (and its structured fields) from a ``VisionResult``, a ``BatchFailure``
    or None (an item not run, after an interrupt: empty cells)."""
    from azmm_magic.core.result import VisionResult
    from azmm_magic.features.outcomes import item_status

    record: dict[str, Any] = dict.fromkeys(ANSWER_COLUMNS)
    record["source"] = source
    if outcome is None:
        return record
    record["status"] = item_status(outcome)
    if isinstance(outcome, VisionResult):
        fields = _fields(outcome.parsed)
        head = {"source": source, "status": record["status"], "answer": outcome.text, **fields}
        record = {**head, **{k: v for k, v in record.items() if k not in head}}
        record.update(error=None, cached=outcome.cached, prompt_tokens=outcome.usage.prompt_tokens,
                      completion_tokens=outcome.usage.completion_tokens, finish_reason=outcome.finish_reason,
                      deployment=outcome.deployment, elapsed=outcome.elapsed)
    else:
        record.update(error=outcome.error, cached=False)
    return record


def answer_table(outcomes: Mapping[int, Any], sources: Mapping[int, str]) -> Any:
    """The table of a batch over a folder, a glob or a list: one row per item (indexed by its position) with the
    :data:`ANSWER_COLUMNS`, the same columns :func:`answer_columns` adds to a DataFrame's rows."""
    import pandas as pd  # type: ignore[import-untyped]

    positions = sorted(outcomes)
    records = [answer_record(outcomes[i], sources.get(i)) for i in positions]
    return pd.DataFrame.from_records(records, index=positions, columns=_column_order(records) or list(ANSWER_COLUMNS))


def _column_order(records: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for r in records for k in r))


def answer_columns(frame: Any, outcomes: Mapping[int, Any], sources: Mapping[int, str] | None = None) -> Any:
    """A copy of ``frame`` (same index, all columns) with each row's :data:`ANSWER_COLUMNS` added; ``outcomes``
    maps row positions to a ``VisionResult`` or a ``BatchFailure`` (rows without one get empty cells)."""
    sources = sources or {}
    records = [answer_record(outcomes.get(p), sources.get(p)) for p in range(len(frame))]
    out = frame.copy()
    taken = {str(c) for c in out.columns}
    for name in _column_order(records):
        target = name if name not in taken else f"answer_{name}"
        out[target] = [r.get(name) for r in records]
    return out


__all__ = ["ANSWER_COLUMNS", "RowItem", "answer_columns", "answer_record", "answer_table", "Rows", "as_rows",
           "image_column", "is_dataframe", "row_items"]
