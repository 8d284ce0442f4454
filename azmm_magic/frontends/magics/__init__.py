"""The IPython frontend: ``%%azure_vision`` (ask about images) and ``%azure_vision SUBCOMMAND`` (config, cache,
emulator, login, logout, help, chat, usage, panel, jobs).

:class:`AzureVision` holds the session (settings as traits, clients, caches, ledger, conversations, emulator)
and dispatches: the cell to :mod:`~azmm_magic.frontends.magics.ask`, each line subcommand to its own module
through :data:`SUBCOMMANDS`. Settings are traits derived from the one settings schema
(:mod:`~azmm_magic.frontends.magics.config`), so ``%config AzureVision.deployment = "gpt-4o"`` works; there is
deliberately no ``api_key`` trait (a key typed into a cell is saved with the notebook). Errors become
``UsageError`` with the magic's hint (:mod:`~azmm_magic.frontends.magics.hints`).
"""

from __future__ import annotations

import difflib
import re
import threading
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from azmm_magic.core.errors import AzureVisionError, ConfigError
from azmm_magic.core.settings import SCHEMA, Secret, Settings
from azmm_magic.frontends.command import split_line
from azmm_magic.frontends.magics.ask import CellMagic
from azmm_magic.frontends.magics.cache import CACHE
from azmm_magic.frontends.magics.chat import CHAT
from azmm_magic.frontends.magics.config import CONFIG, setting_traits
from azmm_magic.frontends.magics.emulator import EMULATOR, shutdown_emulator, warm_emulator
from azmm_magic.frontends.magics.help import HELP, help_text
from azmm_magic.frontends.magics.hints import usage_error
from azmm_magic.frontends.magics.jobs import JOBS
from azmm_magic.frontends.magics.login import LOGIN, LOGOUT
from azmm_magic.frontends.magics.notebook import NotebookSession, session
from azmm_magic.frontends.magics.panel import PANEL
from azmm_magic.frontends.magics.subcommand import Subcommand
from azmm_magic.frontends.magics.usage import USAGE

#: Modules the first cell needs beyond the request path, imported by the background warm-up.
WARMUP_MODULES = ("azmm_magic.features.chat", "azmm_magic.store.cache", "azmm_magic.store.ledger", "azmm_magic.display",
                  "azmm_magic.display.stream", "azmm_magic.features.outcomes")

#: ``%azure_vision NAME ...`` -> its subcommand, in help order.
SUBCOMMANDS: dict[str, Subcommand] = {
    sub.name: sub for sub in (CONFIG, CACHE, CHAT, USAGE, EMULATOR, JOBS, LOGIN, LOGOUT, PANEL, HELP)
}

#: The settings as configurable traits, one per setting of the schema (``%config AzureVision.<name>``).
SettingTraits: Any = type("AzureVisionSettings", (Magics,), setting_traits())


@magics_class
class AzureVision(CellMagic, SettingTraits):
    """Ask Azure OpenAI vision deployments about images. Settings: ``%config AzureVision``."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        add_input_transforms(shell)
        # the session's memory cache, conversations and usage ledger are made on first use (their modules are
        # not imported by %load_ext: the warm-up thread, or the first cell, imports them)
        self._parts: dict[str, Any] = {}
        self._stores: dict[tuple[str, str], Any] = {}  # (kind, path) -> SQLiteCache, opened once per session
        self.emulator: Any = None
        self.emulator_port = 0
        self.login_key: Secret | None = None  # `%azure_vision login`: in memory only
        self._clients: dict[Settings, Any] = {}
        #: traits a subcommand set, and which one (``%azure_vision emulator``): the config view says so while
        #: the trait still has the value it set
        self.set_by: dict[str, tuple[Any, str]] = {}
        self.noted: set[str] = set()  # notes printed once per session (see CellMagic._note_once)
        self._clients_lock = threading.RLock()  # the warm-up thread builds the first client too

    def _part(self, name: str, make: Any) -> Any:
        with self._clients_lock:
            part = self._parts.get(name)
            if part is None:
                part = self._parts[name] = make()
            return part

    @property
    def conversations(self) -> Any:
        """The ``--chat`` conversations of this session (per shell, never module state)."""
        from azmm_magic.features.chat import Conversations

        return self._part("conversations", Conversations)

    @property
    def ledger(self) -> Any:
        """The session's usage ledger (``%azure_vision usage``)."""
        from azmm_magic.store.ledger import UsageLedger

        return self._part("ledger", UsageLedger)

    def _memory_cache(self) -> Any:
        from azmm_magic.store.cache import MemoryCache

        return self._part("memory cache", MemoryCache)

    # ----- settings and clients -------------------------------------------------------------------------------
    def session_settings(self) -> Settings:
        """Settings resolved from traits (``%config``), ``%azure_vision login``, the environment and defaults."""
        traits = {name: getattr(self, name) for name in self.trait_names(config=True) if name in SCHEMA}
        labels = {name: "%config" for name in traits}
        for name, (value, label) in self.set_by.items():
            if name in traits and traits[name] == value:
                labels[name] = label
        if self.login_key:
            traits["api_key"], labels["api_key"] = self.login_key, "%azure_vision login"
        return Settings.resolve(session=traits, session_label=labels)

    def client(self, settings: Settings | None = None) -> Any:
        """The session's :class:`VisionClient` for these settings (reused, sharing the session cache)."""
        from azmm_magic.features.client import VisionClient

        settings = settings or self.session_settings()
        with self._clients_lock:
            client = self._clients.get(settings)
            if client is None:
                if len(self._clients) > 8:
                    for old in self._clients.values():
                        old.close()
                    self._clients.clear()
                client = self._clients[settings] = VisionClient(
                    settings, answer_cache=self.cache_for(settings), ledger=self.ledger
                )
        return client

    def close_clients(self) -> None:
        """Close the session's SDK connections (e.g. before the emulator they point at stops)."""
        with self._clients_lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def start_warmup(self) -> Any:
        """Import and build what the first cell needs in a background thread (the ``warmup`` setting turns it
        off): see :mod:`azmm_magic.features.warmup`. Returns the :class:`~azmm_magic.features.warmup.WarmUp`,
        or None. Never raises: a bad setting is reported by the first cell that uses it."""
        from azmm_magic.features import warmup

        try:
            settings = self.session_settings()
        except AzureVisionError:
            return None
        steps = [("emulator", warm_emulator)] if self.emulator is not None else []
        return warmup.start(settings, modules=WARMUP_MODULES, build=lambda: self.client(settings).sdk, steps=steps)

    def cache_for(self, settings: Settings) -> Any:
        """The answer cache the ``cache`` setting names: the session's memory cache, or a SQLite file (opened
        once per session, mode and path; in ``replay`` mode the client only looks answers up, while ``cache
        import`` and ``cache clear`` still write to the file)."""
        if settings.cache in ("sqlite", "replay"):
            from azmm_magic.store.cache import default_cache_path, open_cache

            path = str(settings.cache_path or default_cache_path())
            with self._clients_lock:
                store = self._stores.get((settings.cache, path))
                if store is None:
                    store = self._stores[(settings.cache, path)] = open_cache(settings.cache, path)
            return store
        return self._memory_cache()

    @property
    def answer_cache(self) -> Any:
        """The answer cache of the current settings (``%azure_vision cache`` shows and manages it)."""
        return self.cache_for(self.session_settings())

    def price_table(self) -> dict[str, Any] | None:
        """The ``prices`` trait, or None when it is empty (no cost column)."""
        return dict(self.prices) or None

    # ----- the magic --------------------------------------------------------------------------------------------
    @no_var_expand
    @line_cell_magic
    def azure_vision(self, line: str, cell: str | None = None) -> Any:
        """Ask an Azure OpenAI vision deployment about images (placeholder docstring, replaced below)."""
        try:
            if cell is None:
                return self._line(line)
            from azmm_magic.features import warmup

            # only what is still running and the cell needs (its imports, its client): the cell's own imports then
            # find every module ready, and the rest of the warm-up, which the cell does itself, is skipped
            warmup.wait(warmup.FIRST_CALL_WAIT, hurry=True)  # and not for ever
            return self._cell(line, cell)
        except AzureVisionError as e:
            raise usage_error(e) from e

    def _line(self, line: str) -> Any:
        words = split_line(line) or ["help"]
        sub = SUBCOMMANDS.get(words[0])
        if sub is None and words[0].startswith("-"):
            raise ConfigError(
                f"%azure_vision {line.strip()}: options such as {words[0]} go on a %%azure_vision cell (two %), with "
                f"the question in the cell body below the options line. %azure_vision (one %) takes a subcommand: "
                f"{', '.join(SUBCOMMANDS)}."
            )
        if sub is None and len(words) > 1:
            raise ConfigError(
                f"%azure_vision {line.strip()}: to ask a question use a %%azure_vision cell (two %): the options "
                "(-i IMAGE) on its first line, the question in the cell body below. %azure_vision (one %) takes a "
                f"subcommand: {', '.join(SUBCOMMANDS)}."
            )
        if sub is None:
            guess = difflib.get_close_matches(words[0], list(SUBCOMMANDS), n=1)
            maybe = f" (did you mean {guess[0]}?)" if guess else ""
            raise ConfigError(
                f"%azure_vision: unknown subcommand {words[0]!r}{maybe}; use one of {', '.join(SUBCOMMANDS)}, or "
                f"the %%azure_vision cell magic to ask about images."
            )
        return sub(self, words[1:])


def empty_body_transform(lines: list[str]) -> list[str]:
    """An input transformer: a ``%%azure_vision`` cell with options and no body reaches the magic (which says
    the question goes in the body) instead of IPython's "did you mean the line magic?", which fails on options."""
    if lines and lines[0].lstrip().startswith("%%azure_vision") and not "".join(lines[1:]).strip():
        return [lines[0].rstrip("\r\n") + "\n", "\n"]
    return lines


# IPython skips transforms marked so when it checks whether terminal input is complete: a terminal user typing
# the options line of a cell must still get a continuation line for the prompt, not a run.
empty_body_transform.has_side_effects = True  # type: ignore[attr-defined]

_LINE_QUESTION = re.compile(r"^(\s*)%azure_vision\s+(.*\S)\s*$")


def question_line_transform(lines: list[str]) -> list[str]:
    """An input transformer: a one-line ``%azure_vision -i x.png What is this?`` (one %, a question ending in
    ``?``) reaches the magic, which says to use a ``%%azure_vision`` cell, instead of IPython's help lookup
    (``Object `this` not found``). ``%azure_vision?`` (the magic's help) is left alone."""
    if len(lines) != 1:
        return lines
    m = _LINE_QUESTION.match(lines[0])
    if m is None or not m.group(2).endswith("?"):
        return lines
    words = m.group(2).rstrip("?").strip()
    if not words or (" " not in words and not words.startswith("-")):
        return lines
    return [f"{m.group(1)}get_ipython().run_line_magic('azure_vision', {m.group(2)!r})\n"]


def add_input_transforms(shell: Any) -> None:
    """Install :func:`empty_body_transform` and :func:`question_line_transform` on this shell (once; removed
    when the extension is unloaded)."""
    transforms = getattr(shell, "input_transformers_cleanup", None)
    if isinstance(transforms, list):
        for transform in (empty_body_transform, question_line_transform):
            if transform not in transforms:
                transforms.append(transform)


def shutdown_session_emulator(ipython: Any) -> None:
    """Unload hook: stop the emulator started by ``%azure_vision emulator`` in this shell, and remove the input
    transformers the magic installed."""
    transforms = getattr(ipython, "input_transformers_cleanup", None)
    if isinstance(transforms, list):
        for transform in (empty_body_transform, question_line_transform):
            if transform in transforms:
                transforms.remove(transform)
    magics = ipython.magics_manager.registry.get("AzureVision")
    if magics is not None:
        shutdown_emulator(magics)


AzureVision.azure_vision.__doc__ = help_text(SUBCOMMANDS.values())

__all__ = ["SUBCOMMANDS", "AzureVision", "NotebookSession", "session", "shutdown_emulator", "shutdown_session_emulator"]
