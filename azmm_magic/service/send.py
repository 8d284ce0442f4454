"""Send a :class:`~azmm_magic.core.request.VisionRequest` with the ``openai`` SDK and read the answer.

One core, :class:`Exchange`, holds what the sync, async and streaming paths share: the body to send, the switch
of the output-token parameter when a deployment rejects the one sent (once, then remembered per deployment), the
retries (408/409/429/5xx, timeouts and connection errors, as the SDK would retry them, but here: so that each
wait is reported to an ``on_wait`` callback while it happens and the result says how long it waited), the mapping
of SDK errors, and turning a completion or a stream into a :class:`VisionResult`. The three drivers below only
differ in how they call the SDK and how they sleep.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from azmm_magic.core.errors import AzureVisionError, IncompleteAnswerError, ServiceError
from azmm_magic.core.request import TokenParam, VisionRequest
from azmm_magic.core.result import Usage, VisionResult
from azmm_magic.core.settings import Settings
from azmm_magic.service.errors import (
    content_filter_error,
    describe,
    header,
    is_retryable_status,
    map_sdk_error,
    other_token_param,
    server_wait,
)
from azmm_magic.service.limits import MAX_DEPLOYMENTS, remember
from azmm_magic.service.sdk import SdkClients

log = logging.getLogger("azmm_magic")

# the SDK's own backoff (openai/_constants.py): 0.5 s doubling to 8 s; a server-directed wait is capped by
# service.errors.MAX_SERVER_WAIT (server_wait: one reading for single calls and batches)
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
TICK = 1.0  # seconds between two on_wait calls during a wait
#: the footer notices that describe one send's waits (not kept with a cached answer)
WAIT_NOTICE_PREFIXES = ("throttled: waited", "retried: waited")
NO_FINISH_NOTICE = "the server did not say why the answer ended (no finish_reason)"


@dataclass(frozen=True)
class WaitEvent:
    """A wait before sending a request again, reported to ``on_wait`` when it starts, about every second while it
    lasts (``remaining`` counts down) and once more when it is over (``remaining == 0``).

    ``reason``: e.g. ``"rate limited (429)"``, ``"server error (503)"``, ``"timed out"``; ``status``: the HTTP
    status (None for a timeout or a connection error); ``delay``: the whole wait in seconds; ``retry``: which
    retry it precedes (1-based) of at most ``retries``; ``asked``: the server asked for this wait (Retry-After).
    """

    reason: str
    status: int | None
    delay: float
    remaining: float
    retry: int
    retries: int
    asked: bool = False

    def message(self) -> str:
        """``rate limited (429): retrying in 59 s (1 of 3)``; ``…: retrying now (1 of 3)`` when the wait is over."""
        when = f"in {math.ceil(self.remaining - 1e-9)} s" if self.remaining > 0 else "now"
        return f"{self.reason}: retrying {when} ({self.retry} of {self.retries})"

    @classmethod
    def for_error(cls, error: BaseException, delay: float, retry: int, retries: int, *,
                  remaining: float | None = None) -> WaitEvent:
        """The event for a wait after ``error`` (ours or the SDK's), e.g. for a batch that retries by itself."""
        status = getattr(error, "status", None) or getattr(error, "status_code", None)
        return cls(reason_of(error), status, delay, delay if remaining is None else remaining, retry, retries,
                   asked=status == 429)


OnWait = Callable[[WaitEvent], None]


def reason_of(error: BaseException) -> str:
    """Why a request is sent again, in a few words: ``rate limited (429)``, ``server error (500)``, ..."""
    status = getattr(error, "status", None) or getattr(error, "status_code", None)
    if status == 429:
        return "rate limited (429)"
    if isinstance(status, int) and status >= 500:
        return f"server error ({status})"
    if status is not None:
        return f"answered {status}"
    names = {c.__name__ for c in type(error).__mro__}
    if names & {"APITimeoutError", "ServiceTimeoutError", "TimeoutException"}:
        return "timed out"
    return "connection failed"


def is_wait_notice(notice: str) -> bool:
    """Whether a result notice describes how one send waited (true of that send only, so never cached)."""
    return notice.startswith(WAIT_NOTICE_PREFIXES)


def _retry_delay(error: BaseException, retry: int) -> tuple[float, bool] | None:
    """(seconds to wait, whether the server asked for them) before retry number ``retry`` after ``error``, or
    None when the SDK would not retry it: its rules (statuses 408/409/429/5xx, ``x-should-retry``, timeouts and
    connection errors) and bounds (a server-requested wait up to ``MAX_SERVER_WAIT``: a longer one is not waited,
    the error is raised at once; else 0.5 s doubling to 8 s)."""
    import openai

    if isinstance(error, openai.APIStatusError):
        response = getattr(error, "response", None)
        asked = server_wait(response)
        should = header(response, "x-should-retry")
        if asked is not None and not asked.honoured:
            return None
        if should == "false" or (should != "true" and not is_retryable_status(error.status_code)):
            return None
        if asked is not None and asked.seconds > 0:
            return asked.seconds, True
    elif not isinstance(error, (openai.APITimeoutError, openai.APIConnectionError)):
        return None
    backoff = min(INITIAL_RETRY_DELAY * 2.0 ** (retry - 1), MAX_RETRY_DELAY)
    return backoff * (1 - 0.25 * random.random()), False

# (endpoint host, deployment) -> the output-token parameter that deployment accepted; per process (a property of
# the deployment, not of a client), thread-safe, at most MAX_DEPLOYMENTS entries
_TOKEN_PARAM_MEMORY: dict[tuple[str, str], TokenParam] = {}
_MEMORY_LOCK = threading.Lock()


def token_param_for(settings: Settings, deployment: str) -> TokenParam:
    """The output-token parameter to send first: the setting, else what this deployment accepted before, else
    ``max_completion_tokens`` on Azure (all current models take it) and ``max_tokens`` on OpenAI-compatible servers."""
    if settings.token_param != "auto":
        return settings.token_param
    with _MEMORY_LOCK:
        remembered = _TOKEN_PARAM_MEMORY.get((settings.endpoint_host, deployment))
    if remembered:
        return remembered
    return "max_tokens" if settings.resolved_api_style == "openai" else "max_completion_tokens"


def remember_token_param(endpoint_host: str, deployment: str, param: TokenParam) -> None:
    """Keep the output-token parameter ``deployment`` accepted (the oldest of :data:`MAX_DEPLOYMENTS` goes first)."""
    key = (endpoint_host, deployment)
    with _MEMORY_LOCK:
        _TOKEN_PARAM_MEMORY.pop(key, None)
        _TOKEN_PARAM_MEMORY[key] = param
        while len(_TOKEN_PARAM_MEMORY) > MAX_DEPLOYMENTS:
            del _TOKEN_PARAM_MEMORY[next(iter(_TOKEN_PARAM_MEMORY))]


def forget_token_params() -> None:
    """Forget which output-token parameter each deployment accepted (for tests and after a redeploy)."""
    with _MEMORY_LOCK:
        _TOKEN_PARAM_MEMORY.clear()


class Exchange:
    """One request's trip to the service, shared by every driver.

    A driver sends :meth:`body`; on an exception it calls :meth:`failed`, which returns how many seconds to wait
    before sending again (0 after switching the output-token parameter) or raises our error; the driver then
    sleeps through :meth:`ticks` (which reports the wait to ``on_wait``)."""

    def __init__(self, request: VisionRequest, settings: Settings, *, stream: bool,
                 on_wait: OnWait | None = None) -> None:
        self.request = request.with_(stream=stream) if request.stream != stream else request
        self.settings = settings
        self.on_wait = on_wait
        self.notices: list[str] = []
        self.started = time.perf_counter()
        self.attempts = 0  # requests sent (each retry and each parameter switch is one more)
        self.retries = 0  # retries after a retryable error (at most the max_retries setting)
        self.waited = 0.0  # seconds slept before retries
        self.statuses: list[int | None] = []  # the HTTP status of each failed attempt (None: no response)
        self.reasons: list[str] = []  # why each retry was needed
        self._switched = False
        self._pending: WaitEvent | None = None

    def body(self) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create``: exactly the request's body. Counts an attempt."""
        self.attempts += 1
        return self.request.body()

    def failed(self, error: Exception) -> float:
        """After a failed attempt: switch the output-token parameter once if ``error`` says the one sent is not
        accepted (returns 0), or plan a retry as the SDK would (returns the seconds to wait); else raise ours."""
        if isinstance(error, AzureVisionError):  # e.g. our Entra ID error, raised by the token provider
            raise error
        remember(self.settings.endpoint_host, self.request.deployment,
                 getattr(getattr(error, "response", None), "headers", None))
        other = other_token_param(error, self.request.token_param)
        if other and not self._switched and self.settings.token_param == "auto":
            remember_token_param(self.settings.endpoint_host, self.request.deployment, other)  # type: ignore[arg-type]
            self._switched = True
            self.notices.append(f"sent {other} (this deployment rejects the other)")
            self.request = self.request.with_(token_param=other)
            return 0.0
        status = getattr(error, "status_code", None)
        self.statuses.append(status)
        plan = _retry_delay(error, self.retries + 1) if self.retries < self.settings.max_retries else None
        if plan is None:
            raise map_sdk_error(error, self.settings, self.request.deployment, attempts=len(self.statuses),
                                statuses=tuple(self.statuses), request=self.request) from None
        delay, asked = plan
        self.retries += 1
        reason = reason_of(error)
        self.reasons.append(reason)
        self._pending = WaitEvent(reason, status, delay, delay, self.retries, self.settings.max_retries, asked)
        return delay

    def ticks(self, delay: float) -> Iterator[float]:
        """The pieces of a wait of ``delay`` seconds (at most :data:`TICK` each): before each piece, and once at
        the end, the wait is reported to ``on_wait``. The driver sleeps each piece (interruptible)."""
        event = self._pending or WaitEvent("retrying", None, delay, delay, self.retries, self.settings.max_retries)
        self._pending = None
        if delay <= 0:
            return
        log.info("%s", event.message())
        end = time.monotonic() + delay
        remaining = delay  # the first report says the whole wait
        while True:
            if self.on_wait is not None:
                self.on_wait(WaitEvent(event.reason, event.status, delay, remaining, event.retry, event.retries,
                                       event.asked))
            if remaining <= 0:
                break
            yield min(TICK, remaining)
            remaining = max(0.0, end - time.monotonic())
        self.waited += delay

    def sleep(self, delay: float) -> None:
        """Wait ``delay`` seconds (sync drivers; Ctrl-C interrupts it), reporting to ``on_wait``."""
        for piece in self.ticks(delay):
            time.sleep(piece)

    async def asleep(self, delay: float) -> None:
        """Wait ``delay`` seconds (async drivers; cancelling the task interrupts it), reporting to ``on_wait``."""
        for piece in self.ticks(delay):
            await asyncio.sleep(piece)

    def _wait_notice(self) -> str | None:
        if not self.retries:
            return None
        kind = "throttled" if any("429" in r for r in self.reasons) else "retried"
        reasons = ", ".join(dict.fromkeys(self.reasons))
        waited = f"{self.waited:.2g}" if self.waited < 10 else f"{self.waited:.0f}"
        times = "1 retry" if self.retries == 1 else f"{self.retries} retries"
        return f"{kind}: waited {waited} s over {times} ({reasons})"

    def _result(self, text: str, finish_reason: str | None, usage: Any, model: str, request_id: str | None,
                filters: Mapping[str, Any]) -> VisionResult:
        if finish_reason == "content_filter":
            raise content_filter_error(filters, where="answer", request_id=request_id)
        r = self.request
        counted = Usage.from_sdk(usage)
        notices = list(self.notices)
        if counted.completion_tokens > r.max_tokens:
            notices.append(f"the server returned {counted.completion_tokens:,} output tokens for a limit of "
                           f"{r.max_tokens:,} (it ignores {r.token_param})")
        wait = self._wait_notice()
        if wait:
            notices.append(wait)
        return VisionResult(
            text=text,
            images=r.images,
            usage=counted,
            deployment=r.deployment,
            model=model,
            finish_reason=finish_reason,
            elapsed=time.perf_counter() - self.started,
            request_id=request_id,
            prompt=r.prompt,
            endpoint_host=self.settings.endpoint_host,
            content_filter=filters,
            notices=tuple(notices),
        )

    def answered(self, raw: Any) -> Any:
        """The SDK object of a raw response (``with_raw_response``), after keeping what its rate-limit headers say
        of the deployment's budget (:mod:`azmm_magic.service.limits`: a later batch starts from it)."""
        remember(self.settings.endpoint_host, self.request.deployment, getattr(raw, "headers", None))
        return raw.parse()

    def completed(self, completion: Any) -> VisionResult:
        """The result of a whole (non-streamed) completion."""
        choice = completion.choices[0] if completion.choices else None
        if choice is None:
            raise ServiceError(f"{self.settings.endpoint_host} answered without any choice; try again.", remedy="retry")
        filters = (getattr(choice, "model_extra", None) or {}).get("content_filter_results") or {}
        message = choice.message
        text = message.content or getattr(message, "refusal", None) or ""
        return self._result(text, choice.finish_reason, completion.usage, getattr(completion, "model", "") or "",
                            getattr(completion, "_request_id", None), filters)

    def read_stream(self, stream: Any) -> Iterator[str | VisionResult]:
        """Yield the text of each chunk, then the result. A cut stream raises :class:`IncompleteAnswerError`
        after the text that arrived was yielded; closing early (or an interrupt) closes the HTTP stream."""
        acc = _StreamAccumulator()
        try:
            for chunk in stream:
                text = acc.add(chunk)
                if text:
                    yield text
        except Exception as e:  # the connection dropped mid-answer, or the server sent garbage
            stream.close()
            raise IncompleteAnswerError(
                f"The answer stream from {self.settings.endpoint_host} was cut off after {len(acc.text)} characters "
                f"({describe(e.__cause__ or e)}); the text received was not cached. Try again.",
                partial_text=acc.text, remedy="retry",
            ) from None
        except BaseException:  # GeneratorExit, KeyboardInterrupt: stop reading and release the connection
            stream.close()
            raise
        # the stream ended normally ([DONE] or a clean end of the response): the answer is complete even when the
        # server (not Azure: some OpenAI-compatible ones) gave no finish reason; only a broken connection is a cut
        if acc.finish_reason is None:
            self.notices.append(NO_FINISH_NOTICE)
        request_id = header(getattr(stream, "response", None), "x-request-id")
        yield self._result(acc.text, acc.finish_reason, acc.usage, acc.model, request_id, acc.filters)


def send(sdk: SdkClients, request: VisionRequest, *, on_wait: OnWait | None = None) -> VisionResult:
    """Send ``request`` and wait for the whole answer; ``on_wait`` is told about each wait before a retry."""
    exchange = Exchange(request, sdk.settings, stream=False, on_wait=on_wait)
    while True:
        try:
            completion = exchange.answered(sdk.chat_sync().chat.completions.with_raw_response.create(**exchange.body()))
            break
        except Exception as e:  # noqa: BLE001 - Exchange.failed switches the parameter, plans a retry or raises ours
            delay = exchange.failed(e)
        exchange.sleep(delay)
    return exchange.completed(completion)


def send_stream(sdk: SdkClients, request: VisionRequest, *, on_wait: OnWait | None = None
                ) -> Iterator[str | VisionResult]:
    """Send ``request`` streamed: yield the answer's text as it arrives, then the :class:`VisionResult`. Retries
    happen before the first text only (a stream cut later is an :class:`IncompleteAnswerError`)."""
    exchange = Exchange(request, sdk.settings, stream=True, on_wait=on_wait)
    while True:
        try:
            stream = exchange.answered(sdk.chat_sync().chat.completions.with_raw_response.create(**exchange.body()))
            break
        except Exception as e:  # noqa: BLE001 - as in send()
            delay = exchange.failed(e)
        exchange.sleep(delay)
    yield from exchange.read_stream(stream)


async def asend(sdk: SdkClients, request: VisionRequest, *, on_wait: OnWait | None = None) -> VisionResult:
    """Async :func:`send` on the SDK's async client (cancelling the task interrupts a wait)."""
    exchange = Exchange(request, sdk.settings, stream=False, on_wait=on_wait)
    while True:
        try:
            raw = await sdk.chat_async().chat.completions.with_raw_response.create(**exchange.body())
            completion = exchange.answered(raw)
            break
        except Exception as e:  # noqa: BLE001 - as in send()
            delay = exchange.failed(e)
        await exchange.asleep(delay)
    return exchange.completed(completion)


def result_from_body(body: Mapping[str, Any], request: VisionRequest, settings: Settings,
                     request_id: str | None = None) -> VisionResult:
    """The result of a chat-completion body read elsewhere (a Batch API output line)."""
    from openai.types.chat import ChatCompletion

    exchange = Exchange(request, settings, stream=False)
    result = exchange.completed(ChatCompletion.model_validate(dict(body)))
    # the request's deployment: the body's ``model`` is the model version Azure ran it on (``gpt-4o-2024-11-20``)
    return result.with_(elapsed=0.0, request_id=request_id or result.request_id,
                        deployment=request.deployment or str(body.get("model") or ""))


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
            # vLLM, Ollama and LM Studio put finish_reason on the choice like Azure; some servers put it in the delta
            finish = choice.finish_reason or (getattr(delta, "model_extra", None) or {}).get("finish_reason")
            if finish:
                self.finish_reason = str(finish)
            results = (getattr(choice, "model_extra", None) or {}).get("content_filter_results")
            if results:
                self.filters = results
        return out


__all__ = [
    "NO_FINISH_NOTICE",
    "WAIT_NOTICE_PREFIXES",
    "Exchange",
    "OnWait",
    "WaitEvent",
    "asend",
    "forget_token_params",
    "is_wait_notice",
    "reason_of",
    "result_from_body",
    "send",
    "send_stream",
    "token_param_for",
]
