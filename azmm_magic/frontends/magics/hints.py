"""The magic's own hint for an error: how to fix it in a notebook, worded from ``error.settings`` and
``error.remedy`` (messages below the frontends speak Python: keyword arguments and environment variables).

Written once, here; the magic appends it wherever it turns an :class:`~azmm_magic.core.errors.AzureVisionError`
into IPython's ``UsageError``.
"""

from __future__ import annotations

from IPython.core.error import UsageError

from azmm_magic.core.errors import AzureVisionError, Remedy
from azmm_magic.core.settings import SCHEMA, example_value
from azmm_magic.display.untrusted import label

LOGIN = "%azure_vision login"

#: What to do in a notebook for each remedy (see :data:`azmm_magic.core.errors.REMEDIES`).
REMEDY_HINTS: dict[Remedy, str] = {
    "retry": "re-run the cell",
    "credentials": LOGIN,
    "emulator": "%azure_vision emulator",
    "record": "%azure_vision cache import FILE, or %config AzureVision.cache = 'sqlite'",
    "each": "add --each to ask about each image in its own request",
}


def setting_hint(name: str) -> str:
    """How to set one setting in a notebook: its cell option (when it has one) or ``%config``; the API key is
    never typed into a cell: ``%azure_vision login``."""
    info = SCHEMA.get(name)
    if info is None:
        return ""
    if not info.trait:
        return LOGIN
    config = f"%config AzureVision.{name} = {example_value(info)}"
    if not info.option:
        return config
    if info.type is bool:  # a flag such as --no-stream
        return f"{info.option} or {config}"
    word = "|".join(info.choices) if info.choices else info.metavar or ("N" if info.type is int else "X")
    return f"{info.option} {word} or {config}"


def magic_hint(error: BaseException) -> str:
    """``In this notebook: ...`` for an error that carries ``settings``/``remedy``; "" when it carries neither."""
    parts = [setting_hint(name) for name in getattr(error, "settings", ())]
    remedy = getattr(error, "remedy", None)
    if remedy in REMEDY_HINTS:
        parts.append(REMEDY_HINTS[remedy])
    parts = list(dict.fromkeys(p for p in parts if p))
    return f"In this notebook: {'; or '.join(parts)}." if parts else ""


def usage_error(error: AzureVisionError) -> UsageError:
    """The ``UsageError`` the magic raises for ``error``: its message, then the notebook hint (one line, without
    control characters or URL query strings: it may quote a server)."""
    hint = magic_hint(error)
    return UsageError(label(f"{error} {hint}" if hint else str(error)))
