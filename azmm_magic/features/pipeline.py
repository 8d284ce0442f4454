"""The one request pipeline: cache policy, sending, usage, structured parsing. Every frontend and feature uses it.

A :class:`~azmm_magic.core.request.VisionRequest` goes through :meth:`Pipeline.run` (sync; streamed when the
request says so), :meth:`Pipeline.stream` (a generator of text pieces, then the result) or :meth:`Pipeline.arun`
(async). Each applies the cache policy, sends through :mod:`azmm_magic.service.send` when it must, counts the
call in the usage ledger, parses a structured answer and stores what is complete. Identical requests in flight
at the same time are sent once: the others wait for that answer. ``on_wait`` (a
:class:`~azmm_magic.service.send.WaitEvent` callback) is told about each wait before a retry while it happens,
so a frontend can show it (the result's notices then say how long the answer waited; a cached copy does not).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Literal

from azmm_magic.core.request import VisionRequest
from azmm_magic.core.result import VisionResult
from azmm_magic.core.settings import Settings
from azmm_magic.service import send as transport
from azmm_magic.service.sdk import SdkClients
from azmm_magic.service.send import OnWait, is_wait_notice
from azmm_magic.store.cache import Cache, ReplayMissError, cache_key
from azmm_magic.store.ledger import UsageLedger

#: ``use``: answer from the cache when it can, store new answers; ``refresh``: always send, store the answer;
#: ``off``: always send, store nothing; ``replay``: answer only from recorded answers, never send.
CachePolicy = Literal["use", "refresh", "off", "replay"]
AsyncSender = Callable[[VisionRequest], Awaitable[VisionResult]]
SHARED_NOTICE = "answered by an identical request in flight"


class Pipeline:
    """Cache policy, sending and usage for one client's settings, cache, ledger and SDK clients."""

    def __init__(self, settings: Settings, cache: Cache | None, ledger: UsageLedger, sdk: SdkClients) -> None:
        self.settings = settings
        self.cache = cache
        self.ledger = ledger
        self.sdk = sdk
        self._lock = threading.Lock()
        self._in_flight: dict[str, Future[VisionResult]] = {}

    def with_http_client(self, http_client: Any = None) -> Pipeline:
        """A pipeline sharing this one's settings, cache, ledger and credentials, with SDK clients of its own on
        ``http_client`` (default: this one's), e.g. a batch's connection pool; close them with ``sdk.aclose()``."""
        return Pipeline(self.settings, self.cache, self.ledger, self.sdk.derive(self.settings, http_client=http_client))

    # ----- policy and keys -------------------------------------------------------------------------------------
    def policy(self, *, use_cache: bool = True, refresh: bool = False) -> CachePolicy:
        """The policy for these flags: replay mode always wins; ``refresh`` sends and stores; no cache is ``off``."""
        if self.settings.cache == "replay":
            return "replay"
        if self.cache is None:
            return "off"
        if refresh:
            return "refresh"
        return "use" if use_cache else "off"

    def key(self, request: VisionRequest) -> str:
        """The cache key of ``request`` on this endpoint."""
        s = self.settings
        return cache_key(request.cache_payload(s.endpoint_host, s.resolved_api_style))

    def replay_key(self, request: VisionRequest) -> str:
        """The endpoint-free key replay mode looks answers up by (recorded on Azure, replayed anywhere)."""
        return cache_key(request.cache_payload("", ""))

    # ----- the steps --------------------------------------------------------------------------------------------
    def lookup(self, request: VisionRequest, policy: CachePolicy = "use") -> VisionResult | None:
        """The cached answer (counted in the ledger, parsed when structured), or None. Sends nothing."""
        if self.cache is None or policy not in ("use", "replay"):
            return None
        started = time.perf_counter()
        entry = self.cache.get(self.replay_key(request) if policy == "replay" else self.key(request))
        if entry is None:
            return None
        hit = VisionResult.from_cache(entry, images=request.images, prompt=request.prompt,
                                      endpoint_host=self.settings.endpoint_host, elapsed=time.perf_counter() - started)
        return self._count(request, hit)

    def check_may_send(self, request: VisionRequest, policy: CachePolicy) -> None:
        """Replay mode never calls the service: a miss is an error naming the prompt and what was recorded."""
        if policy != "replay":
            self.settings.require()
            return
        prompt = " ".join(request.prompt.split())
        prompt = prompt if len(prompt) <= 80 else prompt[:79] + "…"
        recorded: list[str] = getattr(self.cache, "deployments", lambda: [])()
        hint = f" (recorded deployments: {', '.join(recorded)})" if recorded else " (the replay cache is empty)"
        on = f"deployment '{request.deployment}'" if request.deployment else "no deployment (none is set)"
        raise ReplayMissError(
            f"Replay mode has no recorded answer for the prompt {prompt!r} on {on}{hint}. Import the recorded "
            f"answers, run the requests unchanged, or set the cache setting to 'sqlite' to call the service.",
            settings=("cache",), remedy="record",
        )

    def settle(self, request: VisionRequest, result: VisionResult, policy: CachePolicy, *,
               key: str | None = None, count_once: str | None = None) -> VisionResult:
        """Count a new answer, parse it when structured (a parse error is raised, nothing is cached), store it.

        ``key`` stores it under a key computed elsewhere (the Batch API's manifest); ``count_once`` counts it in
        the ledger only the first time (a Batch API line fetched twice)."""
        result = self._count(request, result, once=count_once)
        if policy in ("use", "refresh") and self.cache is not None and not result.incomplete:
            # how long this send waited is true of this send only: a later cache hit did not wait
            kept = tuple(n for n in result.notices if not is_wait_notice(n))
            entry = (result.with_(notices=kept) if kept != result.notices else result).to_cache()
            if key is None:
                key, entry = self.key(request), {**entry, "replay_key": self.replay_key(request)}
            self.cache.put(key, entry)
        return result

    def _count(self, request: VisionRequest, result: VisionResult, *, once: str | None = None) -> VisionResult:
        self.ledger.record(result, once=once)
        return request.response.apply(result) if request.response is not None else result

    # ----- drivers ------------------------------------------------------------------------------------------------
    def run(self, request: VisionRequest, policy: CachePolicy = "use", *,
            on_text: Callable[[str], None] | None = None, on_send: Callable[[], None] | None = None,
            on_wait: OnWait | None = None) -> VisionResult:
        """Answer ``request``: from the cache, or by sending it (streamed when ``request.stream``; each piece of
        text is passed to ``on_text``). ``on_send`` is called once, just before a request is really sent; a cache
        hit calls neither. ``on_wait`` gets each wait before a retry (see the module's docstring)."""
        if request.stream:
            final: VisionResult | None = None
            for item in self.stream(request, policy, cached_text=False, on_send=on_send, on_wait=on_wait):
                if isinstance(item, str):
                    if on_text is not None:
                        on_text(item)
                else:
                    final = item
            assert final is not None
            return final
        hit = self.lookup(request, policy)
        if hit is not None:
            return hit
        self.check_may_send(request, policy)
        if on_send is not None:
            on_send()
        if policy == "off":
            return self.settle(request, transport.send(self.sdk, request, on_wait=on_wait), policy)
        key = self.key(request)
        future, owner = self._claim(key)
        if not owner:
            return self._shared(request, future.result())
        with self._owning(key, future):
            result = transport.send(self.sdk, request, on_wait=on_wait)
            future.set_result(result)
        return self.settle(request, result, policy)

    def stream(self, request: VisionRequest, policy: CachePolicy = "use", *, cached_text: bool = True,
               on_send: Callable[[], None] | None = None, on_wait: OnWait | None = None
               ) -> Iterator[str | VisionResult]:
        """Yield the answer's text as it arrives, then the :class:`VisionResult`. A cache hit yields its text as one
        piece (unless ``cached_text=False``), then the result. Nothing incomplete is cached."""
        hit = self.lookup(request, policy)
        if hit is not None:
            if cached_text:
                yield hit.text
            yield hit
            return
        self.check_may_send(request, policy)
        if on_send is not None:
            on_send()
        for item in transport.send_stream(self.sdk, request, on_wait=on_wait):
            yield item if isinstance(item, str) else self.settle(request, item, policy)

    async def arun(self, request: VisionRequest, policy: CachePolicy = "use", *,
                   send: AsyncSender | None = None, on_wait: OnWait | None = None) -> VisionResult:
        """Async :meth:`run` without streaming. ``send`` replaces the plain async send (a batch passes its
        rate-adaptive sender, which reports its own waits); the cache policy, sharing of identical requests and
        usage stay here. ``on_wait`` gets each wait of the plain async send."""
        hit = self.lookup(request, policy)
        if hit is not None:
            return hit
        self.check_may_send(request, policy)
        sender = send or (lambda r: transport.asend(self.sdk, r, on_wait=on_wait))
        if policy == "off":
            return self.settle(request, await sender(request), policy)
        key = self.key(request)
        future, owner = self._claim(key)
        if not owner:
            return self._shared(request, await asyncio.wrap_future(future))
        with self._owning(key, future):
            result = await sender(request)
            future.set_result(result)
        return self.settle(request, result, policy)

    # ----- identical requests in flight share one send -------------------------------------------------------------
    def _claim(self, key: str) -> tuple[Future[VisionResult], bool]:
        """The future of the identical request in flight (and False), or a new one this caller owns (and True)."""
        with self._lock:
            shared = self._in_flight.get(key)
            if shared is not None:
                return shared, False
            future: Future[VisionResult] = Future()
            self._in_flight[key] = future
            return future, True

    @contextmanager
    def _owning(self, key: str, future: Future[VisionResult]) -> Iterator[None]:
        """While the owner sends: a failure reaches the waiters too; the slot is freed either way."""
        try:
            yield
        except BaseException as e:
            future.set_exception(e)
            raise
        finally:
            with self._lock:
                self._in_flight.pop(key, None)

    def _shared(self, request: VisionRequest, result: VisionResult) -> VisionResult:
        """An answer another identical request fetched: counted as a cache hit (no request was sent for it)."""
        hit = result.with_(cached=True, elapsed=0.0, images=request.images, prompt=request.prompt,
                           notices=(*result.notices, SHARED_NOTICE))
        return self._count(request, hit)


__all__ = ["CachePolicy", "Pipeline", "SHARED_NOTICE"]
