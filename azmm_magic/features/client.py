"""`VisionClient`: build a vision chat request, send it with the official ``openai`` SDK, return a `VisionResult`.

No IPython here: the magic and the panel are thin frontends over this module, and it is useful on its own::

    from azmm_magic import VisionClient
    client = VisionClient(endpoint="https://RESOURCE.openai.azure.com/", deployment="gpt-4o")
    print(client.ask("What is in this picture?", images=["cat.jpg"]).text)

Three URL styles: classic Azure (``/openai/deployments/{deployment}/chat/completions?api-version=``), Azure's
``/openai/v1/`` API, and any OpenAI-compatible base URL. Three auth modes: API key, Microsoft Entra ID (a bearer
token provider the SDK calls on every request; azure-identity caches and refreshes the token), and none.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azmm_magic.store.cache import Cache, MemoryCache, ReplayMissError, cache_key, open_cache
from azmm_magic.core.settings import ENTRA_SCOPE, Settings
from azmm_magic.core.errors import (
    AuthError,
    AzureVisionError,
    BadRequestError,
    ConfigError,
    ConnectionFailedError,
    ContentFilterError,
    DeploymentNotFoundError,
    IncompleteAnswerError,
    RateLimitError,
    ServiceError,
    ServiceTimeoutError,
)
from azmm_magic.store.ledger import UsageLedger
from azmm_magic.core.result import Usage, VisionResult

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.batch import BatchResult
    from azmm_magic.features.batch_api import BatchJob
    from azmm_magic.core.images import PreparedImage

TokenProvider = Callable[[], str]
_TOKEN_PARAMS = ("max_completion_tokens", "max_tokens")
# (endpoint host, deployment) -> the output-token parameter that deployment accepted; shared by all clients
_TOKEN_PARAM_MEMORY: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class VisionRequest:
    """Everything that decides an answer. ``images`` are prepared already (hashes known)."""

    prompt: str
    images: tuple[PreparedImage, ...] = ()
    deployment: str = ""
    detail: str = "auto"
    max_tokens: int = 2048
    temperature: float | None = None
    system: str | None = None
    history: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    response: Any = field(default=None, compare=False)  # a structured.ResponseSpec: how to parse the answer

    def user_content(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = [{"type": "text", "text": self.prompt}]
        parts.extend(image.content_part(self.detail) for image in self.images)  # type: ignore[arg-type]
        return parts

    def messages(self) -> list[dict[str, Any]]:
        """The ``messages`` list as sent on the wire (images as data URLs or URLs)."""
        out: list[dict[str, Any]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        out.extend(dict(m) for m in self.history)
        out.append({"role": "user", "content": self.user_content()})
        return out

    def cache_payload(self, endpoint_host: str, api_style: str) -> dict[str, Any]:
        """What the cache key is computed from: images by content hash, never by bytes; no secret."""
        user = [{"type": "text", "text": self.prompt}] + [
            {"type": "image", "sha256": i.sha256, "detail": self.detail} for i in self.images
        ]
        return {
            "v": 1,
            "endpoint": endpoint_host,
            "style": api_style,
            "deployment": self.deployment,
            "system": self.system,
            "history": [dict(m) for m in self.history],
            "user": user,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "extra": dict(self.extra),
        }

    def estimate_prompt_tokens(self, rule: str = "gpt-4o") -> int:
        """Rough input-token estimate: text at ~4 characters per token plus each image's billed tokens."""
        chars = len(self.prompt) + len(self.system or "")
        chars += sum(len(str(m.get("content", ""))) for m in self.history)
        text_tokens = (chars + 3) // 4 + 4 * (len(self.history) + 1 + bool(self.system))
        return text_tokens + sum(i.estimate_tokens(self.detail, rule) for i in self.images)  # type: ignore[arg-type]

    def preview(self) -> dict[str, Any]:
        """The request body with data URLs shortened: what ``--dry-run`` shows."""

        def shorten(part: dict[str, Any]) -> dict[str, Any]:
            if part.get("type") == "image_url":
                url = part["image_url"]["url"]
                if url.startswith("data:"):
                    head = url.split(",", 1)[0]
                    url = f"{head},<{(len(url) - len(head) - 1):,} base64 chars>"
                return {"type": "image_url", "image_url": {**part["image_url"], "url": url}}
            return part

        messages = []
        for m in self.messages():
            content = m["content"]
            if isinstance(content, list):
                content = [shorten(p) for p in content]
            messages.append({**m, "content": content})
        body: dict[str, Any] = {"model": self.deployment, "messages": messages, "max_tokens": self.max_tokens}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        body.update(self.extra)
        return body


class VisionClient:
    """Ask a vision deployment about images.

    Settings come from keyword arguments (``endpoint=``, ``deployment=``, ``api_version=``, ``api_key=``,
    ``auth=``, ``api_style=``, ``detail=``, ``max_tokens=``, ...; see :class:`~azmm_magic.core.settings.Settings`), then
    environment variables, then defaults; or pass a resolved ``settings`` object. ``token_provider`` replaces
    the Entra ID provider (any callable returning a bearer token, called on every request). ``answer_cache``
    defaults to the cache the ``cache`` setting names (``memory``; ``sqlite``/``replay`` open ``cache_path``;
    ``off`` disables); pass a shared one to share answers. In ``replay`` mode no request is ever sent: a miss
    raises :class:`~azmm_magic.store.cache.ReplayMissError`. ``ledger`` (a :class:`~azmm_magic.store.ledger.UsageLedger`,
    default a new one) counts every call.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        answer_cache: Cache | None = None,
        token_provider: TokenProvider | None = None,
        http_client: Any = None,
        ledger: UsageLedger | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = (settings or Settings.resolve()).with_overrides(**overrides)
        self.cache: Cache | None = None if self.settings.cache == "off" else (
            answer_cache if answer_cache is not None else open_cache(self.settings.cache, self.settings.cache_path)
        )
        self.ledger = ledger if ledger is not None else UsageLedger()
        self._token_provider = token_provider
        self._http_client = http_client
        self._sdk: Any = None
        self._async_sdk: Any = None
        self._async_loop: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        s = self.settings
        return f"VisionClient(endpoint={s.endpoint!r}, deployment={s.deployment!r}, style={s.resolved_api_style!r})"

    # ----- requests --------------------------------------------------------------------------------------------
    def prepare(
        self,
        prompt: str,
        images: Iterable[object] | object = (),
        *,
        deployment: str | None = None,
        detail: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        system: str | None = None,
        history: Sequence[Mapping[str, Any]] = (),
        extra: Mapping[str, Any] | None = None,
        response_format: Any = None,
    ) -> VisionRequest:
        """Validate the options and prepare the images (decode, orient, downscale, hash). Sends nothing.

        ``response_format``: ``"json"`` (a JSON object), a pydantic model class or a JSON Schema dict (structured
        outputs, strict); the parsed answer is then in ``result.parsed``.
        """
        from azmm_magic.core.images import prepare_images
        from azmm_magic.core.structured import response_spec

        spec = response_spec(response_format)
        if spec is not None:
            extra = {**(extra or {}), "response_format": spec.response_format()}

        s = self.settings.with_overrides(
            deployment=deployment, detail=detail, max_tokens=max_tokens, temperature=temperature
        )
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigError("The prompt is empty: write the question in the cell body (or pass prompt='...').")
        prepared = prepare_images(
            images,
            detail=s.detail,
            rule=s.token_rule,
            inline_urls=s.inline_urls,
            max_bytes=s.max_image_bytes,
            max_images=s.max_images,
        )
        return VisionRequest(
            prompt=prompt,
            images=tuple(prepared),
            deployment=s.deployment or "",
            detail=s.detail,
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            system=system if system is not None else s.system_prompt,
            history=tuple(history),
            extra=dict(extra or {}),
            response=spec,
        )

    def key_for(self, request: VisionRequest) -> str:
        """The cache key of a request on this client's endpoint."""
        s = self.settings
        return cache_key(request.cache_payload(s.endpoint_host, s.resolved_api_style))

    def replay_key_for(self, request: VisionRequest) -> str:
        """The endpoint-free key replay mode looks answers up by (recorded on Azure, replayed anywhere)."""
        return cache_key(request.cache_payload("", ""))

    def _finish(self, request: VisionRequest, result: VisionResult) -> VisionResult:
        """Count the call in the ledger, then parse a structured answer (which may raise: nothing is cached)."""
        self.ledger.record(result)
        if request.response is not None:
            result = request.response.apply(result)
        return result

    def _ensure_may_send(self, request: VisionRequest) -> None:
        """Replay mode never calls the service: a miss is an error naming the prompt."""
        if self.settings.cache != "replay":
            return
        prompt = " ".join(request.prompt.split())
        prompt = prompt if len(prompt) <= 80 else prompt[:79] + "…"
        recorded = getattr(self.cache, "deployments", lambda: [])()
        hint = f" (recorded deployments: {', '.join(recorded)})" if recorded else " (the replay cache is empty)"
        raise ReplayMissError(
            f"Replay mode has no recorded answer for the prompt {prompt!r} on deployment '{request.deployment}'"
            f"{hint}. Import the recorded answers with `%azure_vision cache import FILE`, run the cells unchanged, "
            f"or set `%config AzureVision.cache = 'sqlite'` to call the service."
        )

    def ask(
        self,
        prompt: str,
        images: Iterable[object] | object = (),
        *,
        use_cache: bool = True,
        refresh: bool = False,
        on_text: Callable[[str], None] | None = None,
        **options: Any,
    ) -> VisionResult:
        """Ask about ``images`` and wait for the whole answer.

        ``options``: ``deployment``, ``detail``, ``max_tokens``, ``temperature``, ``system``. ``use_cache=False``
        skips the cache; ``refresh=True`` asks the service again and replaces the cached answer. With
        ``on_text``, the answer is streamed and each piece of text is passed to it as it arrives.
        """
        request = self.prepare(prompt, images, **options)
        return self.send(request, use_cache=use_cache, refresh=refresh, on_text=on_text)

    def stream(
        self,
        prompt: str,
        images: Iterable[object] | object = (),
        *,
        use_cache: bool = True,
        refresh: bool = False,
        **options: Any,
    ) -> Iterator[str | VisionResult]:
        """Yield the answer's text as it arrives, then the complete :class:`VisionResult` as the last item.

        A cached answer is yielded as one piece of text followed by the result.
        """
        request = self.prepare(prompt, images, **options)
        return self.send_stream(request, use_cache=use_cache, refresh=refresh)

    async def aask(
        self,
        prompt: str,
        images: Iterable[object] | object = (),
        *,
        use_cache: bool = True,
        refresh: bool = False,
        **options: Any,
    ) -> VisionResult:
        """Async :meth:`ask` on the SDK's async client (image preparation runs in a worker thread)."""
        import asyncio

        request = await asyncio.to_thread(self.prepare, prompt, images, **options)
        return await self.asend(request, use_cache=use_cache, refresh=refresh)

    # ----- sending -----------------------------------------------------------------------------------------------
    def cached(self, request: VisionRequest) -> VisionResult | None:
        """The cached answer to ``request``, or None (counts a hit or a miss)."""
        if self.cache is None:
            return None
        started = time.perf_counter()
        replay = self.settings.cache == "replay"
        entry = self.cache.get(self.replay_key_for(request) if replay else self.key_for(request))
        if entry is None:
            return None
        hit = VisionResult.from_cache(
            entry,
            images=request.images,
            prompt=request.prompt,
            endpoint_host=self.settings.endpoint_host,
            elapsed=time.perf_counter() - started,
        )
        return self._finish(request, hit)

    def _store(self, request: VisionRequest, result: VisionResult) -> None:
        if self.settings.cache == "replay":
            return
        if self.cache is not None and not result.incomplete and result.finish_reason != "content_filter":
            self.cache.put(self.key_for(request), {**result.to_cache(), "replay_key": self.replay_key_for(request)})

    def send(
        self,
        request: VisionRequest,
        *,
        use_cache: bool = True,
        refresh: bool = False,
        on_text: Callable[[str], None] | None = None,
    ) -> VisionResult:
        """Send a prepared request (or answer it from the cache) and return the result."""
        if on_text is not None:
            final: VisionResult | None = None
            for item in self.send_stream(request, use_cache=use_cache, refresh=refresh):
                if isinstance(item, str):
                    on_text(item)
                else:
                    final = item
            assert final is not None
            return final
        if use_cache and not refresh and (hit := self.cached(request)) is not None:
            return hit
        self._ensure_may_send(request)
        self.settings.require()
        started = time.perf_counter()
        completion, notices = self._with_token_param(request, lambda kw: self._sdk_client().chat.completions.create(**kw))
        result = _result_from_completion(completion, request, self.settings, time.perf_counter() - started, notices)
        result = self._finish(request, result)
        if use_cache or refresh:
            self._store(request, result)
        return result

    def send_stream(
        self, request: VisionRequest, *, use_cache: bool = True, refresh: bool = False
    ) -> Iterator[str | VisionResult]:
        """Generator behind :meth:`stream`. A cut stream raises :class:`IncompleteAnswerError` after the text
        that arrived was yielded; closing the generator early (e.g. on KeyboardInterrupt) closes the HTTP stream.
        Nothing incomplete is cached."""
        if use_cache and not refresh and (hit := self.cached(request)) is not None:
            yield hit.text
            yield hit
            return
        self._ensure_may_send(request)
        self.settings.require()
        started = time.perf_counter()
        stream, notices = self._with_token_param(
            request,
            lambda kw: self._sdk_client().chat.completions.create(
                **kw, stream=True, stream_options={"include_usage": True}
            ),
        )
        acc = _StreamAccumulator()
        try:
            for chunk in stream:
                text = acc.add(chunk)
                if text:
                    yield text
        except GeneratorExit:
            stream.close()
            raise
        except Exception as e:  # the connection dropped mid-answer, or the server sent garbage
            stream.close()
            raise IncompleteAnswerError(
                f"The answer stream from {self.settings.endpoint_host} was cut off after {len(acc.text)} characters "
                f"({_describe(e.__cause__ or e)}); the text received is shown, marked incomplete, and was not cached. Re-run to retry.",
                partial_text=acc.text,
            ) from None
        request_id = _header(getattr(stream, "response", None), "x-request-id")
        result = acc.result(request, self.settings, time.perf_counter() - started, notices, request_id)
        if result.finish_reason == "content_filter":
            raise _content_filter_from_results(result.content_filter, self.settings, where="answer")
        result = self._finish(request, result)
        if use_cache or refresh:
            self._store(request, result)
        yield result

    async def asend(self, request: VisionRequest, *, use_cache: bool = True, refresh: bool = False) -> VisionResult:
        """Async :meth:`send` (no streaming)."""
        if use_cache and not refresh and (hit := self.cached(request)) is not None:
            return hit
        self._ensure_may_send(request)
        self.settings.require()
        started = time.perf_counter()
        client = self._async_sdk_client()
        param = self._token_param(request)
        notices: list[str] = []
        while True:
            try:
                completion = await client.chat.completions.create(**self._kwargs(request, param))
                break
            except Exception as e:  # noqa: BLE001 - mapped in _switch_param
                param = self._switch_param(e, request, param, notices)
        result = _result_from_completion(completion, request, self.settings, time.perf_counter() - started, notices)
        result = self._finish(request, result)
        if use_cache or refresh:
            self._store(request, result)
        return result

    # ----- SDK plumbing ---------------------------------------------------------------------------------------
    def _token_param(self, request: VisionRequest) -> str:
        s = self.settings
        if s.token_param != "auto":
            return s.token_param
        remembered = _TOKEN_PARAM_MEMORY.get((s.endpoint_host, request.deployment))
        if remembered:
            return remembered
        return "max_tokens" if s.resolved_api_style == "openai" else "max_completion_tokens"

    def _remember_param(self, request: VisionRequest, param: str) -> str:
        _TOKEN_PARAM_MEMORY[(self.settings.endpoint_host, request.deployment)] = param
        return f"sent {param} (this deployment rejects the other)"

    def _kwargs(self, request: VisionRequest, token_param: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": request.deployment, "messages": request.messages(), token_param: request.max_tokens}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        kwargs.update(request.extra)
        return kwargs

    def _with_token_param(self, request: VisionRequest, call: Callable[[dict[str, Any]], Any]) -> tuple[Any, list[str]]:
        """Call the SDK; if the deployment rejects the output-token parameter, switch once and remember."""
        param = self._token_param(request)
        notices: list[str] = []
        while True:
            try:
                return call(self._kwargs(request, param)), notices
            except Exception as e:  # noqa: BLE001 - mapped in _switch_param
                param = self._switch_param(e, request, param, notices)

    def _switch_param(self, error: Exception, request: VisionRequest, sent: str, notices: list[str]) -> str:
        """The parameter to retry with when ``error`` says ``sent`` is not accepted (once); else raise ours."""
        other = _other_token_param(error, sent)
        if other and not notices and self.settings.token_param == "auto":
            notices.append(self._remember_param(request, other))
            return other
        raise self.map_error(error, request) from None

    def _client_kwargs(self) -> dict[str, Any]:
        s = self.settings.require()
        kwargs: dict[str, Any] = {"timeout": s.timeout, "max_retries": s.max_retries}
        if self._http_client is not None:
            kwargs["http_client"] = self._http_client
        return kwargs

    def _auth(self) -> tuple[str, Any]:
        """('key', key) | ('entra', provider) | ('none', placeholder)."""
        s = self.settings
        mode = s.resolved_auth
        if mode == "key":
            assert s.api_key is not None
            return "key", s.api_key.reveal()
        if mode == "entra":
            return "entra", self._token_provider or _entra_provider()
        if self._token_provider is not None:
            return "entra", self._token_provider
        return "none", "no-auth"  # a placeholder so the SDK never falls back to a key from the environment

    def _build(self, asynchronous: bool) -> Any:
        try:
            import openai
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise ConfigError("The 'openai' package is missing: pip install azmm_magic") from e
        s = self.settings
        kwargs = self._client_kwargs()
        mode, credential = self._auth()
        style = s.resolved_api_style
        if style == "azure":
            cls = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
            auth = {"azure_ad_token_provider": credential} if mode == "entra" else {"api_key": credential}
            return _construct(cls, azure_endpoint=s.endpoint, api_version=s.api_version, **auth, **kwargs)
        cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        base_url = (s.endpoint or "").rstrip("/") + "/"
        if asynchronous and mode == "entra":
            sync_provider = credential

            async def credential() -> str:  # noqa: F811 - async twin for the async client
                import asyncio

                return await asyncio.to_thread(sync_provider)

        return _construct(cls, base_url=base_url, api_key=credential, **kwargs)

    def _sdk_client(self) -> Any:
        with self._lock:
            if self._sdk is None:
                self._sdk = self._build(asynchronous=False)
            return self._sdk

    def _async_sdk_client(self) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            # the SDK's async connections belong to one event loop: a new loop (a second asyncio.run) gets its own
            if self._async_sdk is None or self._async_loop is not loop:
                self._async_sdk = self._build(asynchronous=True)
                self._async_loop = loop
            return self._async_sdk

    def close(self) -> None:
        """Close the SDK's HTTP connections."""
        if self._sdk is not None:
            self._sdk.close()
            self._sdk = None

    def map_error(self, error: BaseException, request: VisionRequest | None = None) -> AzureVisionError:
        """Turn an SDK exception into one of our exceptions with a message that says what to do."""
        return map_sdk_error(error, self.settings, request.deployment if request else self.settings.deployment)

    # ----- batches (azmm_magic.features.batch and azmm_magic.features.batch_api do the work) ----------------------------------------
    def batch(
        self,
        prompt: str,
        images: Iterable[object] | object,
        *,
        concurrency: int | None = None,
        use_cache: bool = True,
        refresh: bool = False,
        progress: bool = True,
        on_item: Callable[[int, Any], None] | None = None,
        **options: Any,
    ) -> BatchResult:
        """Ask the same ``prompt`` about each image separately (one request per image), concurrently.

        ``images``: paths, globs (``"photos/**/*.jpg"``), URLs or image objects; expanded first, then each image is
        prepared only when its turn comes. At most ``concurrency`` requests are in flight (default: the
        ``concurrency`` setting); on 429 every sender waits as long as the service asks and the window is halved,
        then grows back by one per round trip. Returns a :class:`~azmm_magic.features.batch.BatchResult` in input order:
        a ``VisionResult`` per answer and a ``BatchFailure`` (one-line error) per image that got none; a failed
        item never stops the others. Answers are cached as they arrive, so a re-run sends only what is missing.
        Ctrl-C raises :class:`~azmm_magic.features.batch.BatchInterrupted` (a ``KeyboardInterrupt``) whose ``result``
        holds what finished. ``progress`` shows a tqdm bar; ``on_item(index, outcome)`` is called per item.
        ``options``: ``deployment``, ``detail``, ``max_tokens``, ``temperature``, ``system``.
        """
        from azmm_magic.features.batch import run_batch

        return run_batch(self, prompt, images, concurrency=concurrency, use_cache=use_cache, refresh=refresh,
                         progress=progress, on_item=on_item, **options)

    async def abatch(
        self,
        prompt: str,
        images: Iterable[object] | object,
        *,
        concurrency: int | None = None,
        use_cache: bool = True,
        refresh: bool = False,
        progress: bool = False,
        on_item: Callable[[int, Any], None] | None = None,
        **options: Any,
    ) -> BatchResult:
        """Async :meth:`batch` on the running event loop. Cancelling it cancels the requests in flight; what
        finished before is in the cache (and was passed to ``on_item``)."""
        from azmm_magic.features.batch import abatch

        return await abatch(self, prompt, images, concurrency=concurrency, use_cache=use_cache, refresh=refresh,
                            progress=progress, on_item=on_item, **options)

    def submit_batch(
        self,
        prompt: str,
        images: Iterable[object] | object,
        *,
        deployment: str | None = None,
        manifest_dir: str | None = None,
        **options: Any,
    ) -> BatchJob:
        """Submit one request per image to the Azure OpenAI **Batch API** (a Global Batch deployment: 24 h
        target, half the price) and return a :class:`~azmm_magic.features.batch_api.BatchJob` handle at once.

        Writes the JSONL input (split at 200 MB / 100,000 lines), uploads it with purpose ``batch`` and creates
        the job(s) with ``completion_window="24h"``. ``job.wait()`` polls, ``job.results()`` downloads the output
        and error files, fills the cache and returns a ``BatchResult``. A small manifest (custom_id → source and
        cache key; no image data, no secret) is saved under ``manifest_dir`` (default ``$AZMM_BATCH_DIR`` or
        ``~/.cache/azmm_magic/batches``) so results can be fetched from another session.
        """
        from azmm_magic.features.batch_api import submit_batch

        return submit_batch(self, prompt, images, deployment=deployment, manifest_dir=manifest_dir, **options)


# ----- helpers (module level so the async path and batch code can share them) --------------------------------------
def _construct(cls: Any, **kwargs: Any) -> Any:
    """Build an SDK client; its refusals (e.g. a sync ``http_client`` given to the async client) become ours."""
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"The openai SDK refused the settings: {_describe(e)} (ask/stream need a sync http_client, aask an "
            f"async one: use one VisionClient per kind)"
        ) from None


def _entra_provider() -> TokenProvider:
    try:
        from azure.identity import DefaultAzureCredential, get_bearer_token_provider
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ConfigError("Entra ID needs the 'azure-identity' package: pip install azure-identity") from e
    return get_bearer_token_provider(DefaultAzureCredential(), ENTRA_SCOPE)


def _header(response: Any, name: str) -> str | None:
    headers = getattr(response, "headers", None)
    return headers.get(name) if headers is not None else None


def _retry_after(response: Any) -> float | None:
    """Seconds a 429/503 asks to wait: ``retry-after-ms`` first, then ``retry-after`` (seconds), else None."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = _header(response, name)
        try:
            value = float(raw) * scale if raw is not None else None
        except ValueError:
            value = None
        if value is not None and value >= 0:
            return value
    return None


def _describe(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _retries(n: int) -> str:
    return "1 retry" if n == 1 else f"{n} retries"


def _retryable(status: int | None) -> bool:
    """The statuses the openai SDK retries (so "after N retries" is true)."""
    return status in (408, 409, 429) or (status is not None and status >= 500)


def _dropped(cause: BaseException | None) -> bool:
    """Whether a transport error means the server closed the connection (not: could not connect)."""
    names = {cls.__name__ for cls in type(cause).__mro__} if cause is not None else set()
    # by name: the SDK's transport is httpx or a fork of it (httpx2), with the same exception names
    return bool(names & {"RemoteProtocolError", "ReadError"}) and "ConnectError" not in names


def _other_token_param(error: BaseException, sent: str) -> str | None:
    """When a 400 says the output-token parameter we sent is not accepted, the one to send instead."""
    if getattr(error, "status_code", None) != 400:
        return None
    body = getattr(error, "body", None)
    param = body.get("param") if isinstance(body, dict) else None
    message = str(body.get("message", "")) if isinstance(body, dict) else str(error)
    if param == sent or re.search(rf"\b{sent}\b", message):
        return next(p for p in _TOKEN_PARAMS if p != sent)
    return None


def _filtered_categories(results: Any) -> tuple[str, ...]:
    """Names of categories Azure marked filtered (or detected, for jailbreak/protected material)."""
    found: list[str] = []
    if isinstance(results, list):  # prompt_filter_results
        for item in results:
            found.extend(_filtered_categories((item or {}).get("content_filter_results")))
        return tuple(dict.fromkeys(found))
    if not isinstance(results, dict):
        return ()
    for name, value in results.items():
        if isinstance(value, dict) and (value.get("filtered") or value.get("detected")):
            severity = value.get("severity")
            found.append(f"{name} ({severity})" if severity and severity != "safe" else name)
    return tuple(found)


def _content_filter_from_results(results: Any, settings: Settings, *, where: str) -> ContentFilterError:
    categories = _filtered_categories(results)
    named = ", ".join(categories) if categories else "no category reported"
    return ContentFilterError(
        f"Azure's content filter blocked the {where} (categories: {named}). Rephrase the prompt or use other "
        f"images; filter settings are per deployment in the Azure AI Foundry portal.",
        categories=categories,
        status=400 if where == "prompt" else 200,
        code="content_filter",
    )


def map_sdk_error(error: BaseException, settings: Settings, deployment: str | None) -> AzureVisionError:
    """The one place where SDK exceptions become ours (used by every path: sync, async, stream, batch)."""
    if isinstance(error, AzureVisionError):
        return error
    try:
        import openai
    except ImportError:  # pragma: no cover
        return ServiceError(_describe(error))
    host = settings.endpoint_host or "the endpoint"
    status = getattr(error, "status_code", None)
    request_id = getattr(error, "request_id", None)
    body = getattr(error, "body", None)
    body = body if isinstance(body, dict) else {}
    code = getattr(error, "code", None) or body.get("code")
    message = str(body.get("message") or getattr(error, "message", "") or _describe(error)).strip()
    message = message.splitlines()[0][:300] if message else ""
    rid = f" (request id {request_id})" if request_id else ""
    common = {"status": status, "code": code, "request_id": request_id}
    if isinstance(error, openai.APITimeoutError):
        return ServiceTimeoutError(
            f"No answer from {host} within {settings.timeout:g} s (tried {_times(settings.max_retries + 1)}). "
            f"Try again, or raise the limit: %config AzureVision.timeout = {int(settings.timeout * 2)}",
            **common,
        )
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error.__context__
        reason = _describe(cause) if cause else "connection failed"
        if _dropped(cause):  # the server was reached but closed the connection before the answer was complete
            return ConnectionFailedError(
                f"{host} dropped the connection before the answer was complete ({reason.rstrip('.')}; tried "
                f"{_times(settings.max_retries + 1)}). This is usually temporary: re-run the cell.",
                **common,
            )
        return ConnectionFailedError(
            f"Cannot reach {settings.endpoint} ({reason}). Check AZURE_OPENAI_ENDPOINT and your network, "
            f"or run `%azure_vision emulator` to use the local emulator.",
            **common,
        )
    if isinstance(error, openai.AuthenticationError):
        how = (
            "sign in again (az login) or check the credential DefaultAzureCredential picks up"
            if settings.resolved_auth == "entra"
            else "check AZURE_OPENAI_API_KEY (or run `%azure_vision login`) and that the key belongs to this resource"
        )
        return AuthError(f"{host} rejected the credentials (401): {how}{rid}.", **common)
    if isinstance(error, openai.PermissionDeniedError):
        return AuthError(
            f"{host} denied access (403): {message or 'permission denied'}. With Entra ID your identity needs the "
            f"'Cognitive Services OpenAI User' role on the resource{rid}.",
            **common,
        )
    if isinstance(error, openai.NotFoundError):
        style = settings.resolved_api_style
        hint = (
            "Check the deployment name in the Azure AI Foundry portal (a new deployment can take ~5 minutes), "
            "or set AZURE_OPENAI_DEPLOYMENT / pass --deployment NAME"
        )
        if style != "azure":
            hint += f"; the URL style is '{style}' (%config AzureVision.api_style)"
        return DeploymentNotFoundError(
            f"Deployment '{deployment}' was not found at {settings.endpoint} (404). {hint}{rid}.", **common
        )
    if isinstance(error, openai.RateLimitError):
        response = getattr(error, "response", None)
        wait = _retry_after(response)
        wait_text = f"; the service asked to wait {wait:.3g} s" if wait is not None else ""
        return RateLimitError(
            f"Deployment '{deployment}' is rate limited (429) after {_retries(settings.max_retries)}{wait_text}. "
            f"Wait and re-run, send fewer/smaller images, or raise the deployment's quota{rid}.",
            retry_after=wait,
            **common,
        )
    if isinstance(error, openai.BadRequestError):
        if code == "content_filter" or body.get("code") == "content_filter":
            inner = body.get("innererror") or {}
            err = _content_filter_from_results(inner.get("content_filter_result"), settings, where="prompt")
            err.request_id = request_id
            return err
        if re.search(r"api[- ]?version", message, re.IGNORECASE):
            return BadRequestError(
                f"{host} does not accept api-version '{settings.api_version}' (400: {message.rstrip('.')}). Set a "
                f"version this resource supports: OPENAI_API_VERSION or %config AzureVision.api_version = "
                f"'2024-10-21'{rid}.",
                **common,
            )
        return BadRequestError(f"The service rejected the request (400): {message}{rid}", **common)
    if isinstance(error, openai.APIStatusError):
        retried = f" after {_retries(settings.max_retries)}" if settings.max_retries and _retryable(status) else ""
        return ServiceError(
            f"{host} answered {status}{retried}: {(message or 'server error').rstrip('.!')}. This is usually "
            f"temporary: re-run the cell{rid}.",
            **common,
        )
    if isinstance(error, openai.OpenAIError):
        return ConfigError(f"The openai SDK refused the settings: {_describe(error)}")
    return ServiceError(f"Unexpected error talking to {host}: {type(error).__name__}: {_describe(error)}")


def _result_from_completion(
    completion: Any, request: VisionRequest, settings: Settings, elapsed: float, notices: Sequence[str]
) -> VisionResult:
    choice = completion.choices[0] if completion.choices else None
    if choice is None:
        raise ServiceError(f"{settings.endpoint_host} answered without any choice; re-run the cell.")
    extra = getattr(choice, "model_extra", None) or {}
    filter_results = extra.get("content_filter_results") or {}
    if choice.finish_reason == "content_filter":
        raise _content_filter_from_results(filter_results, settings, where="answer")
    message = choice.message
    text = message.content or getattr(message, "refusal", None) or ""
    return VisionResult(
        text=text,
        images=request.images,
        usage=Usage.from_sdk(completion.usage),
        deployment=request.deployment,
        model=getattr(completion, "model", "") or "",
        finish_reason=choice.finish_reason,
        elapsed=elapsed,
        request_id=getattr(completion, "_request_id", None),
        prompt=request.prompt,
        endpoint_host=settings.endpoint_host,
        content_filter=filter_results,
        notices=tuple(notices),
    )


class _StreamAccumulator:
    """Collects streamed chunks into text, finish_reason, usage and filter results."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.model = ""
        self.filters: dict[str, Any] = {}

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, chunk: Any) -> str:
        self.model = getattr(chunk, "model", "") or self.model
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        out = ""
        for choice in chunk.choices or ():
            delta = choice.delta
            piece = (getattr(delta, "content", None) or "") if delta is not None else ""
            if piece:
                self.parts.append(piece)
                out += piece
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
            results = (getattr(choice, "model_extra", None) or {}).get("content_filter_results")
            if results:
                self.filters = results
        return out

    def result(
        self, request: VisionRequest, settings: Settings, elapsed: float, notices: Sequence[str], request_id: str | None
    ) -> VisionResult:
        incomplete = self.finish_reason is None
        if incomplete:
            raise IncompleteAnswerError(
                f"The answer stream from {settings.endpoint_host} ended without a finish reason after "
                f"{len(self.text)} characters; the text received was not cached. Re-run to retry.",
                partial_text=self.text,
            )
        return VisionResult(
            text=self.text,
            images=request.images,
            usage=Usage.from_sdk(self.usage),
            deployment=request.deployment,
            model=self.model,
            finish_reason=self.finish_reason,
            elapsed=elapsed,
            request_id=request_id,
            prompt=request.prompt,
            endpoint_host=settings.endpoint_host,
            content_filter=self.filters,
            notices=tuple(notices),
        )


__all__ = ["VisionClient", "VisionRequest", "map_sdk_error"]
