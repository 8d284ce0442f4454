"""Send a :class:`~azmm_magic.core.request.VisionRequest` with the ``openai`` SDK and read the answer.

One core, :class:`SendingRequest`, holds what the sync, async and streaming paths share: the body to send, the
switch of the output-token parameter when a deployment rejects the one sent (once, then remembered per
deployment), the retries (THE policy of :mod:`azmm_magic.service.retry`, applied here rather than by the SDK so
that each wait is reported to an ``on_wait`` callback while it happens and the result says how long it waited),
the mapping of SDK errors (each error says how many ``attempts`` the request had), and turning a completion or a
stream into a :class:`VisionResult`. The three drivers below only differ in how they call the SDK and how they
sleep; the async one also takes a :class:`AttemptGate` (a batch's throttle) around each attempt.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from azmm_magic.core.errors import AzureVisionError, IncompleteAnswerError, ServiceError
from azmm_magic.core.request import TokenParam, VisionRequest
from azmm_magic.core.result import Usage, VisionResult
from azmm_magic.core.settings import Settings
from azmm_magic.service.errors import content_filter_error, describe, map_sdk_error, other_token_param
from azmm_magic.service.limits import remember
from azmm_magic.service.memory import DeploymentMemory
from azmm_magic.service.retry import RetryPolicy, RetryWait, header, is_throttle
from azmm_magic.service.sdk import SdkClients

log = logging.getLogger("azmm_magic")

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


OnWait = Callable[[WaitEvent], None]


def _event(reason: str, status: int | None, wait: RetryWait) -> WaitEvent:
    return WaitEvent(reason, status, wait.seconds, wait.seconds, wait.retry, wait.retries, wait.asked)


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


#: the output-token parameter each deployment accepted (a property of the deployment, not of a client)
ACCEPTED_TOKEN_PARAMS: DeploymentMemory[TokenParam] = DeploymentMemory()


def token_param_for(settings: Settings, deployment: str) -> TokenParam:
    """The output-token parameter to send first: the setting, else what this deployment accepted before, else
    ``max_completion_tokens`` on Azure (all current models take it) and ``max_tokens`` on OpenAI-compatible servers."""
    if settings.token_param != "auto":
        return settings.token_param
    remembered = ACCEPTED_TOKEN_PARAMS.get(settings.endpoint_host, deployment)
    if remembered:
        return remembered
    return "max_tokens" if settings.resolved_api_style == "openai" else "max_completion_tokens"


class AttemptGate(Protocol):
    """What a caller puts around each attempt of :func:`asend` (a batch: its throttle and counts): ``enter`` before
    the request is sent, ``leave`` when the attempt is over (with its error, or None), ``retrying`` before the
    wait of a retry (``delay`` seconds; 0 when the output-token parameter is switched)."""

    async def enter(self) -> None: ...

    def leave(self, error: BaseException | None) -> None: ...

    def retrying(self, error: BaseException, delay: float) -> None: ...


class _NoGate:
    """The gate of a single call: nothing around its attempts."""

    async def enter(self) -> None:
        return None

    def leave(self, error: BaseException | None) -> None:
        return None

    def retrying(self, error: BaseException, delay: float) -> None:
        return None


class SendingRequest:
    """A request being sent, shared by every driver: its attempts, retries and waits, and the answer read back.

    A driver sends :meth:`body`; on an exception it calls :meth:`failed`, which returns how many seconds to wait
    before sending again (0 after switching the output-token parameter) or raises our error; the driver then
    sleeps through :meth:`ticks` (which reports the wait to ``on_wait``). ``policy`` defaults to the
    ``max_retries`` setting (:class:`~azmm_magic.service.retry.RetryPolicy`)."""

    def __init__(self, request: VisionRequest, settings: Settings, *, stream: bool,
                 on_wait: OnWait | None = None, policy: RetryPolicy | None = None) -> None:
        self.request = request.with_(stream=stream) if request.stream != stream else request
        self.settings = settings
        self.on_wait = on_wait
        self.policy = policy or RetryPolicy(settings.max_retries)
        self.notices: list[str] = []
        self.started = time.perf_counter()
        self.attempts = 0  # requests sent (each retry and each parameter switch is one more)
        self.retries = 0  # retries after a retryable error (within the policy's budget)
        self.throttled = 0  # of those, retries after a 429
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
        accepted (returns 0), or plan a retry by the policy (returns the seconds to wait); else raise ours, which
        says how many attempts the request had."""
        if isinstance(error, AzureVisionError):  # e.g. our Entra ID error, raised by the token provider
            raise error
        remember(self.settings.endpoint_host, self.request.deployment,
                 getattr(getattr(error, "response", None), "headers", None))
        if self._switch_token_param(error):
            return 0.0
        status = getattr(error, "status_code", None)
        self.statuses.append(status)
        wait = self.policy.decide(error, retries=self.retries, throttled=self.throttled)
        if wait is None:
            raise map_sdk_error(error, self.settings, self.request.deployment, attempts=len(self.statuses),
                                statuses=tuple(self.statuses), request=self.request) from None
        self.retries += 1
        self.throttled += is_throttle(error)
        reason = reason_of(error)
        self.reasons.append(reason)
        self._pending = _event(reason, status, wait)
        return wait.seconds

    def _switch_token_param(self, error: Exception) -> bool:
        """Whether ``error`` says the output-token parameter sent is not accepted and the other one is sent next
        (once per request, and remembered for the deployment)."""
        other = other_token_param(error, self.request.token_param)
        if not other or self._switched or self.settings.token_param != "auto":
            return False
        ACCEPTED_TOKEN_PARAMS.put(self.settings.endpoint_host, self.request.deployment, other)  # type: ignore[arg-type]
        self._switched = True
        self.notices.append(f"sent {other} (this deployment rejects the other)")
        self.request = self.request.with_(token_param=other)
        return True

    def ticks(self, delay: float) -> Iterator[float]:
        """The pieces of a wait of ``delay`` seconds (at most :data:`TICK` each): before each piece, and once at
        the end, the wait is reported to ``on_wait``. The driver sleeps each piece (interruptible)."""
        event = self._pending or WaitEvent("retrying", None, delay, delay, self.retries, self.policy.max_retries)
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
    sending = SendingRequest(request, sdk.settings, stream=False, on_wait=on_wait)
    while True:
        try:
            completion = sending.answered(sdk.chat_sync().chat.completions.with_raw_response.create(**sending.body()))
            break
        except Exception as e:  # noqa: BLE001 - SendingRequest.failed switches the parameter, plans a retry or raises ours
            delay = sending.failed(e)
        sending.sleep(delay)
    return sending.completed(completion)


def send_stream(sdk: SdkClients, request: VisionRequest, *, on_wait: OnWait | None = None
                ) -> Iterator[str | VisionResult]:
    """Send ``request`` streamed: yield the answer's text as it arrives, then the :class:`VisionResult`. Retries
    happen before the first text only (a stream cut later is an :class:`IncompleteAnswerError`)."""
    sending = SendingRequest(request, sdk.settings, stream=True, on_wait=on_wait)
    while True:
        try:
            stream = sending.answered(sdk.chat_sync().chat.completions.with_raw_response.create(**sending.body()))
            break
        except Exception as e:  # noqa: BLE001 - as in send()
            delay = sending.failed(e)
        sending.sleep(delay)
    yield from sending.read_stream(stream)


async def asend(sdk: SdkClients, request: VisionRequest, *, on_wait: OnWait | None = None,
                policy: RetryPolicy | None = None, gate: AttemptGate | None = None) -> VisionResult:
    """Async :func:`send` on the SDK's async client (cancelling the task interrupts a wait). ``policy`` replaces
    the ``max_retries`` setting's; ``gate`` is entered before each attempt and left after it (a batch's throttle)."""
    sending = SendingRequest(request, sdk.settings, stream=False, on_wait=on_wait, policy=policy)
    gate = gate or _NoGate()
    while True:
        await gate.enter()
        try:
            raw = await sdk.chat_async().chat.completions.with_raw_response.create(**sending.body())
            completion = sending.answered(raw)
        except BaseException as e:  # noqa: BLE001 - the gate is left whatever ended the attempt
            gate.leave(e)
            if not isinstance(e, Exception):  # cancelled, interrupted
                raise
            delay = sending.failed(e)  # as in send()
            gate.retrying(e, delay)
        else:
            gate.leave(None)
            break
        await sending.asleep(delay)
    return sending.completed(completion)


def result_from_body(body: Mapping[str, Any], request: VisionRequest, settings: Settings,
                     request_id: str | None = None) -> VisionResult:
    """The result of a chat-completion body read elsewhere (a Batch API output line)."""
    from openai.types.chat import ChatCompletion

    sending = SendingRequest(request, settings, stream=False)
    result = sending.completed(ChatCompletion.model_validate(dict(body)))
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
    "ACCEPTED_TOKEN_PARAMS",
    "AttemptGate",
    "OnWait",
    "SendingRequest",
    "WaitEvent",
    "asend",
    "is_wait_notice",
    "reason_of",
    "result_from_body",
    "send",
    "send_stream",
    "token_param_for",
]
