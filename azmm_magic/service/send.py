"""Send a :class:`~azmm_magic.core.request.VisionRequest` with the ``openai`` SDK and read the answer.

One core, :class:`Exchange`, holds what the sync, async and streaming paths share: the body to send, the switch
of the output-token parameter when a deployment rejects the one sent (once, then remembered per deployment), the
mapping of SDK errors, and turning a completion or a stream into a :class:`VisionResult`. The three drivers
below only differ in how they call the SDK.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from azmm_magic.core.errors import IncompleteAnswerError, ServiceError
from azmm_magic.core.request import TokenParam, VisionRequest
from azmm_magic.core.result import Usage, VisionResult
from azmm_magic.core.settings import Settings
from azmm_magic.service.errors import content_filter_error, describe, header, map_sdk_error, other_token_param
from azmm_magic.service.sdk import SdkClients

# (endpoint host, deployment) -> the output-token parameter that deployment accepted; shared by all clients
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


def forget_token_params() -> None:
    """Forget which output-token parameter each deployment accepted (for tests and after a redeploy)."""
    with _MEMORY_LOCK:
        _TOKEN_PARAM_MEMORY.clear()


class Exchange:
    """One request's trip to the service, shared by every driver."""

    def __init__(self, request: VisionRequest, settings: Settings, *, stream: bool) -> None:
        self.request = request.with_(stream=stream) if request.stream != stream else request
        self.settings = settings
        self.notices: list[str] = []
        self.started = time.perf_counter()

    def body(self) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create``: exactly the request's body."""
        return self.request.body()

    def failed(self, error: Exception) -> None:
        """Switch the output-token parameter once if ``error`` says the one sent is not accepted; else raise ours."""
        other = other_token_param(error, self.request.token_param)
        if other and not self.notices and self.settings.token_param == "auto":
            with _MEMORY_LOCK:
                _TOKEN_PARAM_MEMORY[(self.settings.endpoint_host, self.request.deployment)] = other  # type: ignore[assignment]
            self.notices.append(f"sent {other} (this deployment rejects the other)")
            self.request = self.request.with_(token_param=other)
            return
        raise map_sdk_error(error, self.settings, self.request.deployment) from None

    def _result(self, text: str, finish_reason: str | None, usage: Any, model: str, request_id: str | None,
                filters: Mapping[str, Any]) -> VisionResult:
        if finish_reason == "content_filter":
            raise content_filter_error(filters, where="answer", request_id=request_id)
        r = self.request
        return VisionResult(
            text=text,
            images=r.images,
            usage=Usage.from_sdk(usage),
            deployment=r.deployment,
            model=model,
            finish_reason=finish_reason,
            elapsed=time.perf_counter() - self.started,
            request_id=request_id,
            prompt=r.prompt,
            endpoint_host=self.settings.endpoint_host,
            content_filter=filters,
            notices=tuple(self.notices),
        )

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
        if acc.finish_reason is None:
            raise IncompleteAnswerError(
                f"The answer stream from {self.settings.endpoint_host} ended without a finish reason after "
                f"{len(acc.text)} characters; the text received was not cached. Try again.",
                partial_text=acc.text, remedy="retry",
            )
        request_id = header(getattr(stream, "response", None), "x-request-id")
        yield self._result(acc.text, acc.finish_reason, acc.usage, acc.model, request_id, acc.filters)


def send(sdk: SdkClients, request: VisionRequest) -> VisionResult:
    """Send ``request`` and wait for the whole answer."""
    exchange = Exchange(request, sdk.settings, stream=False)
    while True:
        try:
            completion = sdk.sync().chat.completions.create(**exchange.body())
            break
        except Exception as e:  # noqa: BLE001 - Exchange.failed switches the parameter or raises ours
            exchange.failed(e)
    return exchange.completed(completion)


def send_stream(sdk: SdkClients, request: VisionRequest) -> Iterator[str | VisionResult]:
    """Send ``request`` streamed: yield the answer's text as it arrives, then the :class:`VisionResult`."""
    exchange = Exchange(request, sdk.settings, stream=True)
    while True:
        try:
            stream = sdk.sync().chat.completions.create(**exchange.body())
            break
        except Exception as e:  # noqa: BLE001 - as in send()
            exchange.failed(e)
    yield from exchange.read_stream(stream)


async def asend(sdk: SdkClients, request: VisionRequest) -> VisionResult:
    """Async :func:`send` on the SDK's async client."""
    exchange = Exchange(request, sdk.settings, stream=False)
    while True:
        try:
            completion = await sdk.async_().chat.completions.create(**exchange.body())
            break
        except Exception as e:  # noqa: BLE001 - as in send()
            exchange.failed(e)
    return exchange.completed(completion)


def result_from_body(body: Mapping[str, Any], request: VisionRequest, settings: Settings,
                     request_id: str | None = None) -> VisionResult:
    """The result of a chat-completion body read elsewhere (a Batch API output line)."""
    from openai.types.chat import ChatCompletion

    exchange = Exchange(request, settings, stream=False)
    result = exchange.completed(ChatCompletion.model_validate(dict(body)))
    return result.with_(elapsed=0.0, request_id=request_id or result.request_id,
                        deployment=str(body.get("model") or request.deployment))


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


__all__ = ["Exchange", "asend", "forget_token_params", "result_from_body", "send", "send_stream", "token_param_for"]
