"""``{name}`` placeholders in a prompt, filled from variables (the cell magic) or a DataFrame row's columns.

``{name}`` (a Python identifier in single braces) becomes ``str(value)`` from the first mapping that has ``name``;
``{{text}}`` gives a literal ``{text}``; any other brace text (JSON, nested JSON ending in ``}}``, set literals,
LaTeX, a lone ``{``) is kept exactly, and so is a ``{name}`` that no mapping has (:func:`unresolved_names` lists
those, so a frontend can say so). ``str.format`` is never used: a prompt with ``{`` in it never breaks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from azmm_magic.core.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MISSING = object()


def interpolate(text: str, *sources: Mapping[str, Any] | None) -> str:
    """``text`` with each ``{name}`` replaced by ``str()`` of the first of ``sources`` (None ones skipped) that
    has ``name``, ``{{text}}`` made ``{text}``, everything else as written. A value whose ``str()`` fails is a
    one-line :class:`~azmm_magic.core.errors.ConfigError` naming the placeholder."""

    def sub(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return "{" + match.group(1) + "}"
        name = match.group(2)
        value = _lookup(name, sources)
        if value is _MISSING:
            return match.group(0)
        try:
            return str(value)
        except Exception as e:  # noqa: BLE001 - a user object whose __str__ fails
            raise ConfigError(
                f"{{{name}}} in the prompt: str({name}) failed ({type(e).__name__}); use another value or write "
                f"{{{{{name}}}}} for a literal {{{name}}}."
            ) from None

    return _PLACEHOLDER.sub(sub, text)


def unresolved_names(text: str, *sources: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The ``{name}`` placeholders of ``text`` that :func:`interpolate` leaves as written (no source has them),
    each once, in order."""
    names = (m.group(2) for m in _PLACEHOLDER.finditer(text) if m.group(2) is not None)
    return tuple(dict.fromkeys(n for n in names if _lookup(n, sources) is _MISSING))


def _lookup(name: str, sources: tuple[Mapping[str, Any] | None, ...]) -> Any:
    for source in sources:
        if source is not None and name in source:
            return source[name]
    return _MISSING


__all__ = ["interpolate", "unresolved_names"]
