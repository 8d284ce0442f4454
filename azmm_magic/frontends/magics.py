"""The IPython frontend: ``%%azure_vision`` (ask) and ``%azure_vision`` (config, cache, emulator, login, help).

Thin by design: parse (:mod:`azmm_magic.frontends.command`), call :class:`~azmm_magic.features.client.VisionClient`, display.
Settings are traits of :class:`AzureVision`, so ``%config AzureVision.deployment = "gpt-4o"`` works; there is
deliberately no ``api_key`` trait (a key typed into a cell is saved with the notebook).
"""

from __future__ import annotations

import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bool, Dict, Enum, Float, Int, Unicode

from azmm_magic.store.cache import MemoryCache, SQLiteCache, default_cache_path, export_jsonl, import_jsonl, open_cache
from azmm_magic.features.chat import Conversations, start_turn
from azmm_magic.store.ledger import UsageLedger, UsageView
from azmm_magic.frontends.command import build_parser, parse_cell, split_line
from azmm_magic.core.settings import OPTIONS, Secret, Settings
from azmm_magic.display.render import Bundle
from azmm_magic.core.errors import AzureVisionError, ConfigError, ImageInputError, IncompleteAnswerError

_SUBCOMMANDS = ("config", "cache", "emulator", "login", "logout", "help", "chat", "usage", "panel", "jobs")


def _opt(name: str) -> str:
    env = ", ".join(OPTIONS[name].env)
    return f"{OPTIONS[name].help} Environment: {env}. Unset (None) = environment, then default."


def _is_kernel(shell: Any) -> bool:
    return getattr(shell, "kernel", None) is not None


@magics_class
class AzureVision(Magics):
    """Ask Azure OpenAI vision deployments about images. Settings: ``%config AzureVision``."""

    endpoint = Unicode(None, allow_none=True, help=_opt("endpoint")).tag(config=True)
    deployment = Unicode(None, allow_none=True, help=_opt("deployment")).tag(config=True)
    api_version = Unicode(None, allow_none=True, help=_opt("api_version")).tag(config=True)
    auth = Enum(("auto", "key", "entra", "none"), None, allow_none=True, help=_opt("auth")).tag(config=True)
    api_style = Enum(("auto", "azure", "azure-v1", "openai"), None, allow_none=True, help=_opt("api_style")).tag(
        config=True
    )
    detail = Enum(("low", "high", "auto"), None, allow_none=True, help=_opt("detail")).tag(config=True)
    max_tokens = Int(None, allow_none=True, help=_opt("max_tokens")).tag(config=True)
    temperature = Float(None, allow_none=True, help=_opt("temperature")).tag(config=True)
    system_prompt = Unicode(None, allow_none=True, help=_opt("system_prompt")).tag(config=True)
    timeout = Float(None, allow_none=True, help=_opt("timeout")).tag(config=True)
    max_retries = Int(None, allow_none=True, help=_opt("max_retries")).tag(config=True)
    token_rule = Unicode(None, allow_none=True, help=_opt("token_rule")).tag(config=True)
    token_param = Enum(("auto", "max_tokens", "max_completion_tokens"), None, allow_none=True,
                       help=_opt("token_param")).tag(config=True)
    max_images = Int(None, allow_none=True, help=_opt("max_images")).tag(config=True)
    max_image_mb = Float(None, allow_none=True, help=_opt("max_image_mb")).tag(config=True)
    inline_urls = Bool(None, allow_none=True, help=_opt("inline_urls")).tag(config=True)
    stream = Bool(None, allow_none=True, help=_opt("stream")).tag(config=True)
    cache = Enum(("memory", "off", "sqlite", "replay"), None, allow_none=True, help=_opt("cache")).tag(config=True)
    cache_path = Unicode(None, allow_none=True, help=_opt("cache_path")).tag(config=True)
    chat_turns = Int(None, allow_none=True, help=_opt("chat_turns")).tag(config=True)
    chat_image_turns = Int(None, allow_none=True, help=_opt("chat_image_turns")).tag(config=True)
    prices = Dict(
        help="Price table for cost estimates: {deployment or '*': (input, output)} in your currency per 1M tokens, "
        "e.g. {'gpt-4o': (2.5, 10.0)}. Used by `%azure_vision usage` and --dry-run."
    ).tag(config=True)
    concurrency = Int(None, allow_none=True, help=_opt("concurrency")).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._memory_cache = MemoryCache()
        self._stores: dict[tuple[str, str], Any] = {}  # (kind, path) -> SQLiteCache, opened once per session
        self.conversations = Conversations()  # per shell, never module state
        self.ledger = UsageLedger()
        self.emulator: Any = None
        self._login_key: Secret | None = None
        self._clients: dict[Settings, Any] = {}

    # ----- settings and clients -------------------------------------------------------------------------------
    def session_settings(self) -> Settings:
        """Settings resolved from traits (``%config``), ``%azure_vision login``, the environment and defaults."""
        traits = {name: getattr(self, name) for name in self.trait_names(config=True)}
        labels = {name: "%config" for name in traits}
        if self._login_key:
            traits["api_key"], labels["api_key"] = self._login_key, "%azure_vision login"
        return Settings.resolve(session=traits, session_label=labels)

    def client(self, settings: Settings | None = None) -> Any:
        """The session's :class:`VisionClient` for these settings (reused, sharing the session cache)."""
        from azmm_magic.features.client import VisionClient

        settings = settings or self.session_settings()
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

    def cache_for(self, settings: Settings) -> Any:
        """The answer cache the ``cache`` setting names: the session's memory cache, or a SQLite file (opened
        once per session and path; ``replay`` opens the same file read-only for the client)."""
        if settings.cache in ("sqlite", "replay"):
            path = str(settings.cache_path or default_cache_path())
            store = self._stores.get((settings.cache, path))
            if store is None:
                store = self._stores[(settings.cache, path)] = open_cache(settings.cache, path)
            return store
        return self._memory_cache

    @property
    def answer_cache(self) -> Any:
        """The answer cache of the current settings (``%azure_vision cache`` shows and manages it)."""
        return self.cache_for(self.session_settings())

    def _prices(self) -> dict[str, Any] | None:
        return dict(self.prices) or None

    # ----- the magic --------------------------------------------------------------------------------------------
    @no_var_expand
    @line_cell_magic
    def azure_vision(self, line: str, cell: str | None = None) -> Any:
        """Ask an Azure OpenAI vision deployment about images (placeholder docstring, replaced below)."""
        try:
            if cell is None:
                return self._line(line)
            return self._cell(line, cell)
        except AzureVisionError as e:
            raise UsageError(str(e)) from e

    def _cell(self, line: str, cell: str) -> Any:
        ns = self.shell.user_ns if self.shell is not None else {}
        command = parse_cell(line, cell, ns)
        client = self.client()
        if command.each:
            if command.chat is not None or len(command.deployments) > 1:
                raise ConfigError("--each asks about each image on its own: drop --chat and give one --deployment.")
            return self._each(client, command, ns)
        if len(command.deployments) > 1:
            return self._compare(command, client, ns)
        turn = start_turn(self.conversations, command.chat, client.settings)
        request = _prepare(client, command, history=turn.history, **command.options())
        if command.dry_run:
            from azmm_magic.display.render import RequestPreview

            return RequestPreview(request, client.settings, self._prices())
        hit = client.cached(request) if command.use_cache and not command.refresh else None
        streaming = command.stream and client.settings.stream and hit is None and client.settings.cache != "replay"
        if hit is not None:
            result = hit
        elif not streaming:
            result = client.send(request, use_cache=False, refresh=command.use_cache)
        else:
            result = self._stream(client, request, store=command.use_cache)
        result = turn.finish(request, result)
        if command.out:
            ns[command.out] = result
        if streaming and not _is_kernel(self.shell):
            print(f"— {result.footer()}")  # the text was printed live; do not print it twice
            return None
        return result

    def _compare(self, command: Any, client: Any, ns: dict[str, Any]) -> Any:
        """``--deployment a,b``: the same request to each deployment, answers side by side."""
        from azmm_magic.features.compare import compare_request

        if command.chat is not None:
            raise ConfigError("--chat continues one conversation with one deployment; drop --chat to compare deployments.")
        names = list(dict.fromkeys(command.deployments))
        options = {**command.options(), "deployment": names[0]}
        base = _prepare(client, command, **options)
        if command.dry_run:
            from dataclasses import replace

            from azmm_magic.display.render import RequestPreview

            return [RequestPreview(replace(base, deployment=d), client.settings, self._prices()) for d in names]
        comparison = compare_request(client, base, names, use_cache=command.use_cache, refresh=command.refresh)
        if command.out:
            ns[command.out] = comparison
        return comparison

    def _stream(self, client: Any, request: Any, *, store: bool) -> Any:
        from azmm_magic.display.render import StreamView

        view = StreamView(request.images, kernel=_is_kernel(self.shell)).start()
        chunks = client.send_stream(request, use_cache=False, refresh=store)
        result = None
        try:
            for item in chunks:
                if isinstance(item, str):
                    view.add(item)
                else:
                    result = item
        except IncompleteAnswerError:
            view.close(keep=True, note="INCOMPLETE: the answer was cut off (not cached)")
            raise
        except KeyboardInterrupt:
            chunks.close()
            view.close(keep=True)
            print("Interrupted: the partial answer above was not cached.", file=sys.stderr)
            raise
        except BaseException:
            view.close()
            raise
        view.close()
        return result

    def _each(self, client: Any, command: Any, ns: dict[str, Any]) -> Any:
        """``--each``: one request per image (azmm_magic.features.batch), or a Batch API job with ``--via batch-api``."""
        from azmm_magic.features.batch import BatchInterrupted, run_batch
        from azmm_magic.display.gallery import BatchProgress

        if command.via == "batch-api":
            job = client.submit_batch(command.prompt, command.images, **command.options())
            if command.out:
                ns[command.out] = job
            return job
        if command.dry_run:
            from azmm_magic.features.batch import estimate_batch
            from azmm_magic.display.render import RequestPreview

            estimate = estimate_batch(client, command.prompt, command.images, **command.options())
            print(f"--each: {estimate.count} image(s), one request each; the first request:")
            return RequestPreview(estimate.first, client.settings)
        kernel = _is_kernel(self.shell)
        try:
            result = run_batch(client, command.prompt, command.images, concurrency=command.concurrency,
                               use_cache=command.use_cache, refresh=command.refresh,
                               view_factory=lambda labels: BatchProgress(labels, kernel=kernel),
                               **command.options())
        except BatchInterrupted as e:
            if command.out:
                ns[command.out] = e.result
            where = f" (in `{command.out}`)" if command.out else ""
            print(f"Interrupted: {e.result.summary()}{where}. Finished answers are cached: re-run the cell to send "
                  f"only the rest.", file=sys.stderr)
            raise KeyboardInterrupt from None
        if command.out:
            ns[command.out] = result
        return result

    # ----- line subcommands -------------------------------------------------------------------------------------
    def _line(self, line: str) -> Any:
        words = split_line(line)
        if not words:
            return self._help()
        sub, rest = words[0], words[1:]
        if sub not in _SUBCOMMANDS:
            raise ConfigError(
                f"%azure_vision: unknown subcommand {sub!r}; use one of {', '.join(_SUBCOMMANDS)}, or the "
                f"%%azure_vision cell magic to ask about images."
            )
        return getattr(self, f"_{sub}")(rest)

    def _help(self, rest: list[str] | None = None) -> Any:
        from IPython.display import Markdown

        return Markdown(f"```\n{self.azure_vision.__doc__}\n```")

    def _config(self, rest: list[str]) -> Any:
        from azmm_magic.display.render import table_bundle

        settings = self.session_settings()
        rows = [(name, value, source) for name, value, source in settings.describe()]
        return Bundle(table_bundle(rows, ("setting", "value", "from"), title="azmm_magic settings"))

    def _cache(self, rest: list[str]) -> Any:
        if rest[:1] in (["export"], ["import"], ["list"]):
            return self._cache_files(rest[0], rest[1:])
        if rest[:1] == ["clear"]:
            n = self.answer_cache.clear()
            print(f"Cleared {n} cached answer(s).")
            return None
        if rest and rest[0] not in ("stats", "show"):
            raise ConfigError(f"%azure_vision cache: unknown action {rest[0]!r}; use `cache` or `cache clear`.")
        from azmm_magic.display.render import table_bundle

        s = self.answer_cache.stats()
        rows = [("kind", s.kind), ("entries", str(s.entries)), ("hits", str(s.hits)), ("misses", str(s.misses))]
        if isinstance(self.answer_cache, SQLiteCache):
            rows.append(("file", str(self.answer_cache.path)))
        return Bundle(table_bundle(rows, ("cache", "value"), title="azmm_magic answer cache"))

    def _cache_files(self, action: str, rest: list[str]) -> Any:
        """``cache export FILE`` / ``cache import FILE`` (JSON lines) and ``cache list``."""
        from azmm_magic.display.render import table_bundle

        store = self.answer_cache
        if action == "list":
            import datetime

            from azmm_magic.store.cache import cache_rows

            rows = []
            for row in cache_rows(store):
                when = (datetime.datetime.fromtimestamp(row["created"]).isoformat(sep=" ", timespec="seconds")
                        if row["created"] else "")
                prompt = " ".join(str(row["prompt"]).split())
                rows.append((when, row["deployment"], row["endpoint"], prompt[:60] + ("…" if len(prompt) > 60 else ""),
                             row["key"][:12]))
            title = f"{len(rows)} cached answer(s) ({store.kind}{', ' + str(store.path) if hasattr(store, 'path') else ''})"
            return Bundle(table_bundle(rows, ("stored", "deployment", "endpoint", "prompt", "key"), title=title))
        if len(rest) != 1:
            raise ConfigError(f"%azure_vision cache {action}: give one file name, e.g. `cache {action} answers.jsonl`.")
        if action == "export":
            n = export_jsonl(store, rest[0])
            print(f"Exported {n} cached answer(s) to {rest[0]}.")
            return None
        report = import_jsonl(store, rest[0])
        print(f"{report} ({store.kind} cache)")
        return None

    def _chat(self, rest: list[str]) -> Any:
        """``chat list`` | ``chat show [NAME]`` | ``chat reset [NAME]``."""
        from azmm_magic.display.render import table_bundle

        action = rest[0] if rest else "list"
        name = rest[1] if len(rest) > 1 else None
        if action == "list":
            rows = [(n, str(len(self.conversations.get(n)))) for n in self.conversations.names()]
            return Bundle(table_bundle(rows, ("conversation", "turns"), title="Conversations in this session"))
        if action == "show":
            conv = self.conversations.find(name)
            rows = conv.rows()
            return Bundle(table_bundle(rows, ("turn", "prompt", "images", "answer", "deployment", "tokens"),
                                        title=f"Conversation '{conv.name}': {len(rows)} turn(s)"))
        if action == "reset":
            n = self.conversations.reset(name)
            print(f"Conversation '{name or 'default'}' reset ({n} turn(s) forgotten).")
            return None
        raise ConfigError(f"%azure_vision chat: unknown action {action!r}; use `chat list`, `chat show [NAME]` or `chat reset [NAME]`.")

    def _usage(self, rest: list[str]) -> Any:
        """``usage`` | ``usage --plot`` | ``usage reset``."""
        if rest == ["reset"]:
            self.ledger.reset()
            print("Usage ledger reset.")
            return None
        if rest not in ([], ["--plot"]):
            raise ConfigError("%azure_vision usage: use `usage`, `usage --plot` or `usage reset`.")
        self.ledger.prices = self._prices()
        return UsageView(self.ledger, plot=rest == ["--plot"])

    def _emulator(self, rest: list[str]) -> Any:
        action = rest[0] if rest else "start"
        if action == "stop":
            stopped = shutdown_emulator(self)
            print("Emulator stopped." if stopped else "No emulator was running.")
            return None
        if action not in ("start", "status"):
            raise ConfigError("%azure_vision emulator: use `emulator`, `emulator status` or `emulator stop`.")
        if self.emulator is None:
            if action == "status":
                print("No emulator is running; start one with `%azure_vision emulator`.")
                return None
            from azmm_magic.emulator.server import EmulatorConfig, EmulatorServer

            self.emulator = EmulatorServer(EmulatorConfig())
            self.emulator.start()
        self.endpoint = self.emulator.url
        self.auth = "none"
        self.api_style = "azure"
        if not self.deployment:
            self.deployment = "emulator"
        print(
            f"Azure OpenAI emulator (local, not a model) running at {self.emulator.url}; this session now uses it "
            f"with deployment '{self.deployment}'. `%azure_vision emulator stop` to stop."
        )
        return None

    def _jobs(self, rest: list[str]) -> Any:
        from azmm_magic.features.batch_api import jobs_command

        return jobs_command(self.client(), rest, kernel=_is_kernel(self.shell))

    def _login(self, rest: list[str]) -> Any:
        import getpass

        key = getpass.getpass("Azure OpenAI API key (kept in memory for this session only): ").strip()
        if not key:
            raise ConfigError("No key entered; nothing changed.")
        self._login_key = Secret(key)
        self.auth = self.auth if self.auth not in (None, "none") else "key"
        print("API key set for this session (not saved anywhere). `%azure_vision logout` forgets it.")
        return None

    def _logout(self, rest: list[str]) -> Any:
        self._login_key = None
        print("API key forgotten for this session.")
        return None

    def _panel(self, rest: list[str]) -> Any:
        """``%azure_vision panel``: the VisionPanel widget, on this session's client, cache and settings."""
        if rest:
            raise ConfigError("%azure_vision panel takes no arguments; the panel has its own controls.")
        from azmm_magic.frontends.panel import VisionPanel

        return VisionPanel(self)


def _name_the_input(message: str, command: Any) -> str:
    """Prefix an image error with the ``-i`` argument it came from, unless the message already quotes that
    path/URL (a variable holding a bad array or object is otherwise only described by its type)."""
    pairs = list(zip(command.image_labels, command.images))
    culprit = pairs[0] if len(pairs) == 1 else None
    if culprit is None:
        from azmm_magic.core.images import prepare_image

        for label, source in pairs:
            try:
                prepare_image(source)
            except ImageInputError:
                culprit = (label, source)
                break
            except Exception:  # noqa: BLE001 - only used to find the culprit; the original error is raised
                continue
    if culprit is None or (isinstance(culprit[1], str) and culprit[1] in message):
        return message
    return f"-i {culprit[0]}: {message}"


def _prepare(client: Any, command: Any, **options: Any) -> Any:
    """``client.prepare`` for a parsed cell; image errors name the ``-i`` argument they came from."""
    try:
        return client.prepare(command.prompt, command.images, **options)
    except ImageInputError as e:
        raise ImageInputError(_name_the_input(str(e), command)) from None


def shutdown_emulator(magics: AzureVision) -> bool:
    """Stop the session's emulator (if any) and forget the settings that pointed at it."""
    if magics.emulator is None:
        return False
    url = magics.emulator.url
    magics.emulator.stop()
    magics.emulator = None
    if magics.endpoint == url:
        magics.endpoint = None
        magics.auth = None
        magics.api_style = None
    return True


def shutdown_session_emulator(ipython: Any) -> None:
    """Unload hook: stop the emulator started by ``%azure_vision emulator`` in this shell."""
    magics = ipython.magics_manager.registry.get("AzureVision")
    if magics is not None:
        shutdown_emulator(magics)


_DOC = """Ask an Azure OpenAI vision deployment about images.

Cell magic: the body is the prompt, the options name the images::

    %%azure_vision -i photos/cat.jpg -i {{chart_fig}} --detail high -o answer
    What is in these two images? Compare them in three bullet points.

``{{name}}`` in the prompt is replaced by the value of ``name`` when it is defined; ``{{{{name}}}}`` gives a literal
``{{name}}``; any other brace text (JSON, nested JSON...) is sent exactly as written. Answers stream while the model writes, are cached for
the session (re-running a cell is instant and makes no request), and the cell's value is a ``VisionResult``.

{options}

Line magic subcommands::

    %azure_vision config          show the resolved settings and where each came from (secrets masked)
    %azure_vision cache [clear]   hits / misses / entries of the answer cache, or clear it
    %azure_vision cache list      the cached answers: when, deployment, endpoint, prompt
    %azure_vision cache export FILE | cache import FILE
                                  move answers as JSON lines (record on Azure, replay anywhere)
    %azure_vision chat list | chat show [NAME] | chat reset [NAME]
                                  the conversations continued with --chat [NAME]
    %azure_vision usage [--plot | reset]
                                  calls, tokens, cache hits, seconds (and cost, with the prices trait) per deployment
    %azure_vision emulator [stop|status]
                                  start the local Azure-compatible emulator and point this session at it
    %azure_vision jobs [wait|results|cancel|status ID...] [--interval S]
                                  Azure OpenAI Batch API jobs (from --via batch-api): list, poll, fetch results
    %azure_vision login | logout  type an API key (getpass; kept in memory only) / forget it
    %azure_vision panel           a panel to ask about images without writing code (same session and cache)
    %azure_vision help            this text

Settings: ``%config AzureVision`` lists them; e.g. ``%config AzureVision.deployment = "gpt-4o"``. The endpoint,
key and API version also come from AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and OPENAI_API_VERSION. Keys are
never accepted on the magic line.

Conversations: ``--chat [NAME]`` sends the earlier turns of NAME again (at most ``chat_turns``; only the newest
``chat_image_turns`` keep their images). Structured answers: ``--json`` or ``--schema NAME`` (a pydantic model class
or JSON Schema dict); the parsed value is ``result.parsed``. Persistent cache: ``%config AzureVision.cache = "sqlite"``
(file: ``cache_path`` / AZMM_CACHE_PATH); ``"replay"`` answers only from the file and never calls the service.
Compare deployments: ``--deployment a,b`` (``-o`` gets a dict of results).
"""

AzureVision.azure_vision.__doc__ = _DOC.format(options=build_parser().format_help())
