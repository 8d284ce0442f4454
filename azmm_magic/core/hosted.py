"""Hosted notebooks: Google Colab's Secrets panel (the key icon in Colab's left bar) as a settings source.

On Colab, a secret named like one of the service's environment variables (``AZURE_OPENAI_ENDPOINT``,
``AZURE_OPENAI_API_KEY``, ``AZURE_OPENAI_DEPLOYMENT``, ``OPENAI_API_VERSION``, ...) is used when that variable is
not set, and the settings say where the value came from (``Colab secret AZURE_OPENAI_API_KEY``). The secrets are
read once per process, through ``google.colab.userdata`` (Colab asks the user to grant the notebook access the
first time); a secret that is missing or not granted is simply not used. Values are never printed or logged.
Elsewhere (no ``google.colab`` imported) nothing happens.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Mapping

_lock = threading.Lock()
#: each secret asked of Colab so far: its value, or None when it is not set or not granted
_asked: dict[str, str | None] = {}


def in_colab() -> bool:
    """True inside a Google Colab runtime (its ``google.colab`` package is imported by the runtime itself)."""
    return "google.colab" in sys.modules


def colab_secrets(names: Iterable[str], *, refresh: bool = False) -> Mapping[str, str]:
    """The Colab secrets among ``names`` (environment-variable names) that are set and granted to this notebook.
    Each name is asked of Colab once per process (``refresh``: ask again, e.g. after adding a secret). Empty
    outside Colab."""
    if not in_colab():
        return {}
    with _lock:
        if refresh:
            _asked.clear()
        missing = [name for name in names if name not in _asked]
        if missing:
            _asked.update(_ask(missing))
        return {name: value for name in names if (value := _asked.get(name)) is not None}


def _ask(names: list[str]) -> dict[str, str | None]:
    try:
        from google.colab import userdata  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - an older Colab without the Secrets panel: no secrets
        return dict.fromkeys(names)
    found: dict[str, str | None] = {}
    for name in names:
        try:
            value = userdata.get(name)
        except Exception:  # noqa: BLE001 - not set, not granted to this notebook, or timed out: not used
            value = None
        found[name] = value.strip() if isinstance(value, str) and value.strip() else None
    return found


__all__ = ["colab_secrets", "in_colab"]
