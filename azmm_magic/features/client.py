"""`VisionClient`: the Python API. Build a request, answer it through the one pipeline, return a `VisionResult`.

No IPython here: the magic and the panel are thin frontends over this module, and it is useful on its own::

    from azmm_magic import VisionClient
    client = VisionClient(endpoint="https://RESOURCE.openai.azure.com/", deployment="gpt-4o")
    print(client.ask("What is in this picture?", images=["cat.jpg"]).text)

URL styles and auth: :mod:`azmm_magic.service.sdk`. Cache policy, usage and sending:
:class:`~azmm_magic.features.pipeline.Pipeline`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from azmm_magic.core.errors import AzureVisionError, ConfigError
from azmm_magic.core.request import VisionRequest, build_request
from azmm_magic.core.result import VisionResult
from azmm_magic.core.settings import Settings
from azmm_magic.core.structured import response_spec
from azmm_magic.features.pipeline import CachePolicy, Pipeline
from azmm_magic.service.errors import map_sdk_error
from azmm_magic.service.sdk import SdkClients, TokenProvider
from azmm_magic.service.send import token_param_for
from azmm_magic.store.cache import Cache, open_cache
from azmm_magic.store.ledger import UsageLedger

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.batch import BatchResult
    from azmm_magic.features.batch_api import BatchJob
    from azmm_magic.features.evaluation import EvaluationTable


class VisionClient:
    """Ask a vision deployment about images.

    Settings come from keyword arguments (``endpoint=``, ``deployment=``, ``api_version=``, ``api_key=``,
    ``auth=``, ``api_style=``, ``detail=``, ``max_tokens=``, ...; see :class:`~azmm_magic.core.settings.Settings`),
    then environment variables, then defaults; or pass a resolved ``settings`` object. ``token_provider`` replaces
    the Entra ID provider (any callable returning a bearer token, called on every request). ``answer_cache``
    defaults to the cache the ``cache`` setting names (``memory``; ``sqlite``/``replay`` open ``cache_path``;
    ``off`` disables); pass a shared one to share answers. In ``replay`` mode no request is ever sent: a miss
    raises :class:`~azmm_magic.store.cache.ReplayMissError`. ``ledger`` (a
    :class:`~azmm_magic.store.ledger.UsageLedger`, default a new one) counts every call.
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
        self.sdk = SdkClients(self.settings, token_provider=token_provider, http_client=http_client)
        self.pipeline = Pipeline(self.settings, self.cache, self.ledger, self.sdk)

    def __repr__(self) -> str:
        s = self.settings
        return f"VisionClient(endpoint={s.endpoint!r}, deployment={s.deployment!r}, style={s.resolved_api_style!r})"

    def derive(self, *, http_client: Any = None, **overrides: Any) -> VisionClient:
        """A client with some settings changed that shares this one's cache, ledger and credentials."""
        return VisionClient(self.settings.with_overrides(**overrides), answer_cache=self.cache, ledger=self.ledger,
                            token_provider=self.sdk.token_provider, http_client=http_client or self.sdk.http_client)

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
        stream: bool = False,
    ) -> VisionRequest:
        """Check the options, prepare the images (decode, orient, downscale, hash) and build the request with the
        exact body it will be sent with (``request.body()``; ``stream=True`` for a streamed answer). Sends nothing.

        ``response_format``: ``"json"`` (a JSON object), a pydantic model class or a JSON Schema dict (structured
        outputs, strict); the parsed answer is then in ``result.parsed``.
        """
        s = self.settings.with_overrides(
            deployment=deployment, detail=detail, max_tokens=max_tokens, temperature=temperature
        )
        return build_request(
            s, prompt, images, system=system, history=history, extra=extra, response=response_spec(response_format),
            token_param=token_param_for(s, s.deployment or ""), stream=stream,
        )

    def retarget(self, request: VisionRequest, deployment: str) -> VisionRequest:
        """The same request for another deployment (with the output-token parameter that deployment takes)."""
        return request.with_(deployment=deployment, token_param=token_param_for(self.settings, deployment))

    def key_for(self, request: VisionRequest) -> str:
        """The cache key of a request on this client's endpoint."""
        return self.pipeline.key(request)

    def replay_key_for(self, request: VisionRequest) -> str:
        """The endpoint-free key replay mode looks answers up by (recorded on Azure, replayed anywhere)."""
        return self.pipeline.replay_key(request)

    def policy(self, *, use_cache: bool = True, refresh: bool = False) -> CachePolicy:
        """The cache policy for these flags (``replay`` whenever the cache setting is replay)."""
        return self.pipeline.policy(use_cache=use_cache, refresh=refresh)

    # ----- asking ------------------------------------------------------------------------------------------------
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

        ``options``: ``deployment``, ``detail``, ``max_tokens``, ``temperature``, ``system``, ``response_format``.
        ``use_cache=False`` skips the cache; ``refresh=True`` asks the service again and replaces the cached
        answer. With ``on_text``, the answer is streamed and each piece of text is passed to it as it arrives.
        """
        request = self.prepare(prompt, images, stream=on_text is not None, **options)
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
        request = self.prepare(prompt, images, stream=True, **options)
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
        request = await asyncio.to_thread(self.prepare, prompt, images, **options)
        return await self.asend(request, use_cache=use_cache, refresh=refresh)

    # ----- sending prepared requests -------------------------------------------------------------------------------
    def cached(self, request: VisionRequest) -> VisionResult | None:
        """The cached (or, in replay mode, recorded) answer to ``request``, or None. Sends nothing."""
        return self.pipeline.lookup(request, self.policy())

    def send(
        self,
        request: VisionRequest,
        *,
        use_cache: bool = True,
        refresh: bool = False,
        on_text: Callable[[str], None] | None = None,
    ) -> VisionResult:
        """Answer a prepared request from the cache or the service. It is streamed when ``request.stream`` (or
        ``on_text`` is given); each piece of text then goes to ``on_text``."""
        if on_text is not None and not request.stream:
            request = request.with_(stream=True)
        return self.pipeline.run(request, self.policy(use_cache=use_cache, refresh=refresh), on_text=on_text)

    def send_stream(
        self, request: VisionRequest, *, use_cache: bool = True, refresh: bool = False
    ) -> Iterator[str | VisionResult]:
        """Generator behind :meth:`stream`. A cut stream raises :class:`IncompleteAnswerError` after the text
        that arrived was yielded; closing the generator early (e.g. on KeyboardInterrupt) closes the HTTP stream.
        Nothing incomplete is cached."""
        request = request if request.stream else request.with_(stream=True)
        return self.pipeline.stream(request, self.policy(use_cache=use_cache, refresh=refresh))

    async def asend(self, request: VisionRequest, *, use_cache: bool = True, refresh: bool = False) -> VisionResult:
        """Async :meth:`send` (no streaming)."""
        request = request.with_(stream=False) if request.stream else request
        return await self.pipeline.arun(request, self.policy(use_cache=use_cache, refresh=refresh))

    # ----- the SDK -------------------------------------------------------------------------------------------------
    def sdk_client(self) -> Any:
        """The ``openai`` SDK client these settings build (for the Files and Batches APIs)."""
        return self.sdk.sync()

    def map_error(self, error: BaseException, request: VisionRequest | None = None) -> AzureVisionError:
        """Turn an SDK exception into one of our exceptions with a message that says what to do."""
        return map_sdk_error(error, self.settings, request.deployment if request else self.settings.deployment)

    def close(self) -> None:
        """Close the SDK's HTTP connections."""
        self.sdk.close()

    async def aclose(self) -> None:
        """Close the async SDK client's HTTP connections."""
        await self.sdk.aclose()

    # ----- batches (azmm_magic.features.batch and .batch_api do the work) ------------------------------------------
    @overload
    def batch(self, prompt: str, images: Iterable[object] | object, *, progress: bool = ...,
              via: Literal["requests"] | None = ..., **options: Any) -> BatchResult: ...

    @overload
    def batch(self, prompt: str, images: Iterable[object] | object, *, progress: bool = ...,
              via: Literal["batch-api"], **options: Any) -> BatchJob: ...

    def batch(self, prompt: str, images: Iterable[object] | object, *, progress: bool = True,
              via: str | None = None, **options: Any) -> BatchResult | BatchJob:
        """Ask the same ``prompt`` about each image separately (one request per image), concurrently.

        ``images``: paths, globs (``"photos/**/*.jpg"``), URLs or image objects; expanded first, then each image is
        prepared only when its turn comes. Returns a :class:`~azmm_magic.features.batch.BatchResult` in input
        order: a ``VisionResult`` per answer and a ``BatchFailure`` (one-line error) per image that got none; a
        failed item never stops the others. Answers are cached as they arrive, so a re-run sends only what is
        missing; identical images in flight are sent once. Ctrl-C raises
        :class:`~azmm_magic.features.batch.BatchInterrupted` (a ``KeyboardInterrupt``) whose ``result`` holds what
        finished. ``progress`` shows a tqdm bar.

        ``options``: ``concurrency`` (most requests in flight; default the ``concurrency`` setting; on 429 every
        sender waits as long as the service asks and the window is halved, then grows back), ``use_cache``,
        ``refresh``, ``on_item(index, outcome)`` (called per finished item), and the request options
        ``deployment``, ``detail``, ``max_tokens``, ``temperature``, ``system``, ``response_format``.

        ``via="batch-api"`` sends the same requests through the Azure OpenAI **Batch API** instead (a Global Batch
        ``deployment``: 24 h target, half the price) and returns the :class:`~azmm_magic.features.batch_api.BatchJob`
        handle at once (``job.wait()``, then ``job.results()``: the same ``BatchResult``); it also takes
        ``max_file_lines`` / ``max_file_bytes`` (where input files are split) and ``manifest_dir`` (see
        :meth:`submit_batch`). ``progress`` then shows the images being prepared and uploaded.
        """
        if via == "batch-api":
            from azmm_magic.features.batch_api import submit_batch

            return submit_batch(self, prompt, images, progress=progress, **options)
        if via not in (None, "requests"):
            raise ConfigError(f"via must be 'requests' or 'batch-api', got {via!r}.")
        from azmm_magic.features.batch import run_batch

        return run_batch(self, prompt, images, progress=progress, **options)

    async def abatch(self, prompt: str, images: Iterable[object] | object, *, progress: bool = False,
                     **options: Any) -> BatchResult:
        """Async :meth:`batch` on the running event loop (same ``options``). Cancelling it cancels the requests
        in flight; what finished before is in the cache (and was passed to ``on_item``)."""
        from azmm_magic.features.batch import abatch

        return await abatch(self, prompt, images, progress=progress, **options)

    def evaluate(self, variants: Sequence[str | Mapping[str, Any]], images: Any, *, truth: Any,
                 prompt: str | None = None, field: str | None = None, match: Any = None, tolerance: float = 0.0,
                 prices: Mapping[str, Any] | None = None, progress: bool = False, **options: Any) -> EvaluationTable:
        """Run a batch per variant on the same rows and score each against ``truth``: an
        :class:`~azmm_magic.features.evaluation.EvaluationTable` (accuracy with its interval, cost per 1,000
        images and per correct answer, median latency, failures; McNemar's test of each against the first).

        ``variants``: prompts (strings) or dicts of what differs (``prompt``, ``deployment``, ``detail``,
        ``system``, ``response_format``, ``field``, ``name``)::

            client.evaluate([{"deployment": "gpt-4o"}, {"deployment": "gpt-4o-mini"}], df,
                            prompt="Which colour is the swatch?", truth="label", response_format=Swatch)
            client.evaluate(["Name the colour.", "Which colour dominates? One word."], df, truth="label")

        ``truth``, ``field``, ``match``, ``tolerance``: as for
        :meth:`~azmm_magic.features.batch.BatchResult.evaluate`; ``prices`` (per 1M tokens) defaults to the
        ledger's; other ``options`` go to :meth:`batch`. The cache makes a re-run of the same rows free.
        """
        from azmm_magic.features.evaluation import evaluate_variants

        def run(prompt: str, images: Any, **chosen: Any) -> BatchResult:
            return self.batch(prompt, images, progress=progress, **chosen)

        return evaluate_variants(run, variants, images, truth=truth, prompt=prompt, field=field, match=match,
                                 tolerance=tolerance, prices=prices if prices is not None else self.ledger.prices,
                                 **options)

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
        ``~/.cache/azmm_magic/batches``) so results can be fetched from another session, and a job the service
        lost can be submitted again (``job.resubmit()``). ``max_file_lines`` / ``max_file_bytes`` split the input
        files sooner; images are prepared on every core, with a progress bar (``progress=False``: none).
        The same as ``batch(prompt, images, via="batch-api")``.
        """
        from azmm_magic.features.batch_api import submit_batch

        return submit_batch(self, prompt, images, deployment=deployment, manifest_dir=manifest_dir, **options)


__all__ = ["VisionClient", "VisionRequest"]
