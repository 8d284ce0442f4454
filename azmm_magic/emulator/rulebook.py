"""What every request rule shares (:mod:`.validation`'s and :mod:`.model_rules`'): the ``Context`` a rule reads
besides the body, the rule type, and two small helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .models import ModelProfile

__all__ = ["Context", "Rule", "is_set", "quoted"]


@dataclass(frozen=True)
class Context:
    """What the rules may look at besides the body."""

    profile: ModelProfile
    api_version: str | None  # None on the v1 routes
    features: frozenset[str]


Rule = Callable[[Mapping[str, Any], Context], None]


def is_set(body: Mapping[str, Any], key: str) -> bool:
    """Whether ``key`` is in the body with a value (JSON null counts as absent, as the service reads it)."""
    return body.get(key) is not None


def quoted(values: Iterable[Any]) -> str:
    """``'a', 'b', and 'c'`` (OpenAI's list of supported values; None left out)."""
    shown = [f"'{v}'" for v in values if v is not None]
    return ", ".join(shown[:-1]) + (", and " if len(shown) > 2 else " and ") + shown[-1] if len(shown) > 1 else shown[0]
