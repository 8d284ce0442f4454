"""Warm up in the background: what the first request needs, imported and built before it is asked for.

A fresh kernel's first ``%%azure_vision`` cell used to pay for importing the ``openai`` SDK (httpx, pydantic),
Pillow and our own request path, and for building the SDK client and its SSL context: over a second, against
tens of milliseconds for the same cell afterwards. The frontends (``%load_ext``, ``%azure_vision emulator``,
``VisionPanel``) call :func:`start` once they are set up; it returns at once and a daemon thread then

1. imports the modules of the request path (ours, ``openai``, Pillow and its JPEG/PNG codecs, and any
   ``modules`` the frontend names, e.g. the display layer);
2. builds the shared SSL context and runs a tiny image through Pillow's encoder and decoder;
3. calls the frontend's ``build()`` (e.g. the session's client for the resolved settings) and, when the
   settings are complete, builds its sync SDK client: a client object only, nothing is sent.

It never prints, never sends a request and never raises: a step that fails is recorded in
:attr:`WarmUp.errors` and skipped, and the first real call meets the same problem itself and reports it as
usual. The first call waits (:func:`wait`) only for what is still running. The ``warmup`` setting
(``AZMM_WARMUP=0``) turns it off.

Import locks: a module being imported by the warm-up thread is locked by Python's import system until it is
done; a main-thread import of the same module waits for it (never a deadlock: the warm-up holds no other lock
the main thread could hold, and imports the packages from their top, in the order the request path does).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from azmm_magic.core.settings import Settings

#: What the first request imports, in the order the request path imports it (top-level packages first).
MODULES: tuple[str, ...] = (
    "azmm_magic.features.client",
    "azmm_magic.features.pipeline",
    "azmm_magic.service.send",
    "azmm_magic.core.images",
    "openai",
    "openai.types.chat",
    "openai.resources.chat.completions",  # the client's ``.chat`` resource imports these on first access
    "jiter",  # the SDK parses answers with it (imported on the first answer)
    "encodings.idna",  # the first connection encodes the host name
    "PIL.Image",
    "PIL.JpegImagePlugin",
    "PIL.PngImagePlugin",
    "azmm_magic.features.rows",  # the cell parser asks whether an image source is a DataFrame
)


class WarmUp:
    """One background warm-up: a daemon thread running ``steps`` in order. ``errors`` holds what failed
    (``(step name, exception)``); ``timings`` the seconds each step took."""

    def __init__(self, steps: Sequence[tuple[str, Callable[[], object]]]) -> None:
        self.steps = tuple(steps)
        self.errors: list[tuple[str, BaseException]] = []
        self.timings: dict[str, float] = {}
        self._done = threading.Event()
        self._hurry = threading.Event()
        self.skipped: list[str] = []
        self._thread = threading.Thread(target=self._run, name="azmm-warmup", daemon=True)

    def start(self) -> WarmUp:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for name, step in self.steps:
                if self._hurry.is_set() and not name.startswith(NEEDED):
                    self.skipped.append(name)  # the first call, waiting now, does this itself if it needs it
                    continue
                started = time.perf_counter()
                try:
                    step()
                except BaseException as e:  # noqa: BLE001 - deferred: the first real call meets it itself
                    self.errors.append((name, e))
                self.timings[name] = time.perf_counter() - started
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def hurry(self) -> None:
        """A call is waiting: finish the step under way and the imports and client it needs, skip the rest (the
        steps that only do ahead of time what a first request does: it would wait for them, then do its own)."""
        self._hurry.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the warm-up has finished (at most ``timeout`` seconds); True when it has. Returns at once
        when called from the warm-up thread itself."""
        if threading.current_thread() is self._thread:
            return self.done
        return self._done.wait(timeout)


_LOCK = threading.Lock()
_STARTED: list[WarmUp] = []


#: The steps a waiting first call still needs from the warm-up (:meth:`WarmUp.hurry`): its imports (a module being
#: imported is locked until it is done anyway) and the session's SDK client (kept and used by that call).
NEEDED = ("import ", "sdk client")


def import_step(name: str) -> Callable[[], object]:
    return lambda: importlib.import_module(name)


def _ssl_context() -> None:
    from azmm_magic.service.sdk import fresh_async_http_client

    fresh_async_http_client()  # builds the shared SSL context; the client itself holds no connection yet


def _image_codecs() -> None:
    import io

    from PIL import Image

    from azmm_magic.core.photos import register_heif

    register_heif()  # the image path registers HEIC/AVIF support the first time it opens Pillow
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (120, 80, 40)).save(buffer, "JPEG", quality=85)
    with Image.open(io.BytesIO(buffer.getvalue())) as img:
        img.draft("RGB", (16, 12))
        img.convert("RGB").resize((8, 6), Image.Resampling.LANCZOS).save(io.BytesIO(), "PNG")


def _sdk_types() -> None:
    """Parse a canned completion once: pydantic builds the validators of the SDK's answer types on first use."""
    from openai.types.chat import ChatCompletion

    ChatCompletion.model_validate({
        "id": "warm-up", "object": "chat.completion", "created": 0, "model": "warm-up",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    })


_CANNED_CHUNKS = (
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
)
_CANNED_ANSWER = {
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def _offline_round_trip(settings: Settings) -> Callable[[], object]:
    """One streamed and one whole answer through an SDK client of the same kind as the session's, over an
    in-process transport that answers canned completions (nothing leaves the process, no credential is used):
    the SDK builds what it builds on its first request (the request transform's type hints, the answer types'
    validators, the stream decoder) and our request path prepares a tiny image."""

    def step() -> object:
        import json

        import openai

        try:
            import httpx2 as httpx_module  # the SDK's HTTP library in recent openai versions
        except ImportError:  # pragma: no cover - older openai versions use httpx
            import httpx as httpx_module  # type: ignore[no-redef]
        from PIL import Image

        from azmm_magic.core.request import build_request

        head = {"id": "warm-up", "created": 0, "model": "warm-up"}

        def answer(request: Any) -> Any:
            if json.loads(request.content).get("stream"):
                events = b"".join(
                    b"data: " + json.dumps({**head, "object": "chat.completion.chunk", **c}).encode() + b"\n\n"
                    for c in _CANNED_CHUNKS
                ) + b"data: [DONE]\n\n"
                return httpx_module.Response(200, headers={"content-type": "text/event-stream"}, content=events)
            return httpx_module.Response(200, json={**head, "object": "chat.completion", **_CANNED_ANSWER})

        http = httpx_module.Client(transport=httpx_module.MockTransport(answer))
        common: dict[str, Any] = {"api_key": "warm-up", "http_client": http, "max_retries": 0}
        if settings.resolved_api_style == "azure":
            sdk: Any = openai.AzureOpenAI(azure_endpoint="https://warm-up.invalid", api_version=settings.api_version,
                                          **common)
        else:
            sdk = openai.OpenAI(base_url="https://warm-up.invalid/v1/", **common)
        try:
            warm_settings = settings.with_overrides(deployment=settings.deployment or "warm-up")
            request = build_request(warm_settings, "warm-up", [Image.new("RGB", (32, 24), (120, 80, 40))],
                                    stream=True)
            for _ in sdk.chat.completions.create(**request.body()):
                pass
            return sdk.chat.completions.create(**request.with_(stream=False).body())
        finally:
            sdk.close()

    return step


def _sdk_step(build: Callable[[], Any], settings: Settings) -> Callable[[], object]:
    def step() -> object:
        sdk = build()
        if sdk is None:
            return None
        try:
            settings.require()
        except Exception:  # noqa: BLE001 - incomplete settings: nothing to build yet (not an error here)
            return None
        chat = getattr(sdk, "chat_sync", None)
        client = chat() if chat is not None else sdk.sync()
        return client.chat.completions  # the SDK builds its resource objects (and imports them) on first access

    return step


def start(
    settings: Settings | None = None,
    *,
    modules: Sequence[str] = (),
    build: Callable[[], Any] | None = None,
    steps: Sequence[tuple[str, Callable[[], object]]] = (),
) -> WarmUp | None:
    """Start warming up in a daemon thread and return at once (None when the ``warmup`` setting is off).

    ``modules``: more modules to import (after :data:`MODULES`). ``build()``: run in the thread after the
    imports; it returns an object with a ``sync()`` method (an ``SdkClients``) whose client is built when
    ``settings`` are complete. ``steps``: more ``(name, callable)`` steps, run last (e.g. the in-process
    emulator's own first-request work). Nothing is printed or sent; nothing raised reaches the caller."""
    try:
        settings = settings if settings is not None else Settings.resolve()
    except Exception:  # noqa: BLE001 - a bad setting is reported by the first real call, not here
        return None
    if not settings.warmup:
        return None
    todo: list[tuple[str, Callable[[], object]]] = [(f"import {m}", import_step(m)) for m in (*MODULES, *modules)]
    todo += [("ssl context", _ssl_context), ("image codecs", _image_codecs), ("sdk types", _sdk_types)]
    if build is not None:
        todo.append(("sdk client", _sdk_step(build, settings)))
    todo.append(("sdk round trip", _offline_round_trip(settings)))
    todo += steps
    warm = WarmUp(todo)
    with _LOCK:
        _STARTED[:] = [w for w in _STARTED if not w.done]
        _STARTED.append(warm)
    return warm.start()


#: how long the first cell waits for a warm-up still running before it goes on without it (its own imports then
#: wait only for the module being imported, never for a step that hangs, e.g. a slow credential lookup)
FIRST_CALL_WAIT = 15.0


def wait(timeout: float | None = None, *, hurry: bool = False) -> bool:
    """Wait for every warm-up still running (the first real call does this before its own imports); True when
    none is left running. Returns at once when nothing was started or the warm-up is off. ``hurry``: the caller
    is a first call (a notebook's Run All reaches it at once): the warm-ups skip the steps it does itself."""
    with _LOCK:
        running = [w for w in _STARTED if not w.done]
    if hurry:
        for warm in running:
            warm.hurry()
    deadline = None if timeout is None else time.monotonic() + timeout
    for warm in running:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not warm.wait(left):
            return False
    return True


def running() -> list[WarmUp]:
    """The warm-ups started and not finished yet."""
    with _LOCK:
        return [w for w in _STARTED if not w.done]


__all__ = ["FIRST_CALL_WAIT", "MODULES", "NEEDED", "WarmUp", "running", "start", "wait"]
