"""When an answer counts as right: ``match="exact"`` (after normalising case, spacing and punctuation),
``"contains"``, ``"number"`` (within a tolerance) or a function; and reading a field of a structured answer."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from azmm_magic.core.errors import ConfigError

LABEL_CHARS = 40  # a wrong answer that names no class is shown by its first words
MATCHES = ("exact", "contains", "number")

Matcher = Callable[[Any, Any], bool]
_NUMBER = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


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


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not value.strip())


def short(value: Any) -> str:
    flat = " ".join(str(value).split())
    return flat if len(flat) <= LABEL_CHARS else flat[: LABEL_CHARS - 1] + "…"


def fields_of(parsed: Any) -> Mapping[str, Any] | None:
    dump = getattr(parsed, "model_dump", None)
    if callable(dump):
        parsed = dump()
    return parsed if isinstance(parsed, Mapping) else None


ABSENT = object()


def field_value(parsed: Any, name: str) -> Any:
    """``parsed[name]`` (dotted: nested fields) of a structured answer (dict or pydantic model), or ``ABSENT``."""
    value: Any = parsed
    for part in name.split("."):
        fields = fields_of(value)
        if fields is None or part not in fields:
            return ABSENT
        value = fields[part]
    return value


__all__ = ["ABSENT", "LABEL_CHARS", "MATCHES", "Matcher", "field_value", "fields_of", "first_number", "matcher",
           "missing", "normalise", "short"]
