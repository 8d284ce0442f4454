"""``session()``: the running IPython session's azmm_magic state, for code in a notebook.

A notebook cell that needs what the ``%%azure_vision`` cells use (the resolved settings, the client with the
session's cache, the usage ledger) asks :func:`session` instead of reaching into IPython's magics registry::

    from azmm_magic import session
    settings = session().settings          # what the next cell would use, and where each value came from
    client = session().client()            # a VisionClient sharing the session's cache and ledger
"""

from __future__ import annotations

from typing import Any

from azmm_magic.core.settings import Settings
from azmm_magic.frontends.shell import session_magics


class NotebookSession:
    """A view of one IPython session's azmm_magic state (the ``AzureVision`` magics of that shell).

    Every property is read when asked, so it follows later ``%config`` lines, ``%azure_vision login`` and
    ``%azure_vision emulator``.
    """

    def __init__(self, magics: Any) -> None:
        self._magics = magics

    @property
    def settings(self) -> Settings:
        """The resolved settings the next ``%%azure_vision`` cell uses: ``%config``, ``%azure_vision login``, the
        environment (``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_CHAT_DEPLOYMENT_NAME``, ...) and defaults, in that
        order. ``settings.sources`` says where each value came from."""
        settings: Settings = self._magics.session_settings()
        return settings

    def client(self) -> Any:
        """The session's :class:`~azmm_magic.VisionClient` for the current settings (it shares the session's
        answer cache and usage ledger, so a question asked here and in a cell is asked once)."""
        return self._magics.client()

    @property
    def ledger(self) -> Any:
        """The session's :class:`~azmm_magic.UsageLedger` (what ``%azure_vision usage`` shows)."""
        return self._magics.ledger

    @property
    def answer_cache(self) -> Any:
        """The answer cache the current ``cache`` setting names (memory, or a SQLite file)."""
        return self._magics.answer_cache

    @property
    def emulator_url(self) -> str | None:
        """The URL of the emulator ``%azure_vision emulator`` started in this session, or None."""
        emulator = self._magics.emulator
        return None if emulator is None else str(emulator.url)

    @property
    def uses_emulator(self) -> bool:
        """Whether the current settings point at the emulator this session started."""
        url = self.emulator_url
        return url is not None and self.settings.endpoint == url

    def __repr__(self) -> str:
        s = self.settings
        where = "the local emulator" if self.uses_emulator else (s.endpoint_host or "no endpoint")
        return f"NotebookSession({where}, deployment={s.deployment!r}, cache={s.cache!r})"


def session(shell: Any = None) -> NotebookSession:
    """The azmm_magic state of ``shell`` (default: the running IPython), loading the extension if needed."""
    magics, _ = session_magics(shell, outside="session() needs a running IPython or Jupyter kernel; in a script, "
                                              "build a VisionClient(...) instead.")
    return NotebookSession(magics)


__all__ = ["NotebookSession", "session"]
