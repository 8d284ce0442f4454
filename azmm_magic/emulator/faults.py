"""Fault injection for the emulator: make chosen requests fail the way Azure (or a network) fails.

A fault is written ``KIND[:ARG][:times=N][:id=TEXT]``:

=========================  ==============================================================================
``429[:S]``                HTTP 429 with ``Retry-After: ceil(S)`` and ``retry-after-ms: S*1000`` (default 1 s)
``500[:S]`` ``503[:S]``    HTTP 500 / 503 / 408 in Azure's error shape; with ``S``, also the Retry-After
``408[:S]``                headers (the SDK retries all four; small ``S`` keeps tests fast)
``latency:S``              sleep ``S`` seconds, then answer normally
``hang[:S]``               say nothing for ``S`` seconds (default 30: longer than a test client's timeout);
                           the handler returns early when the client gives up
``drop``                   close the connection before any response byte (client: "server disconnected")
``cut[:N]``                answer, but cut the connection mid-answer: a stream after ``N`` text chunks
                           (default 3) without a finish reason or ``[DONE]``; a plain answer after half its
                           body bytes
``content_filter[:CAT]``   Azure's prompt-filter HTTP 400 (``code: content_filter``, ``innererror.code:
                           ResponsibleAIPolicyViolation``, per-category results, ``CAT`` filtered;
                           default ``violence``)
``content_filter_answer``  HTTP 200 whose answer stops with ``finish_reason: content_filter`` (streamed or
``[:CAT]``                 not; the choice's ``content_filter_results`` has ``CAT`` filtered)
``401``                    Azure's "invalid subscription key" 401
``404``                    Azure's ``DeploymentNotFound`` 404
``api_version``            Azure's 400 "API version not supported"
``malformed_json``         a ``json_object``/``json_schema`` request is answered with invalid JSON
                           (see :mod:`azmm_magic.emulator.structured`); ``malformed-json`` also works
``stream_shape:SHAPE``     a streamed answer ends normally but shaped like some OpenAI-compatible servers,
                           not Azure: ``delta`` (``finish_reason`` inside ``delta``, null on the choice),
                           ``none`` (no ``finish_reason`` anywhere), ``no_done`` (no finish reason and no
                           ``[DONE]``: the response just ends cleanly), ``ollama`` (Ollama's ``/v1`` shape: no
                           Azure filter fields or prompt-filter chunk, the last text and ``finish_reason`` in
                           one chunk). A plain (non-streamed) answer is unchanged
``ignore_limit``           the usage reports ``2 × limit - 12`` output tokens (a server that ignores
                           ``max_tokens``/``max_completion_tokens``: 4,084 for a 2,048 limit)
=========================  ==============================================================================

``times=N`` applies the fault to the first ``N`` matching requests only (then requests pass), so
retry-then-recover is testable: ``429:0.05:times=2`` with the SDK's ``max_retries=2`` recovers on the third
attempt. Without ``times`` the fault applies to every matching request. ``id=`` only makes a spec unique.

Three ways to switch faults on (all apply to the chat-completions routes only):

* **Per request** — the request header ``x-emulator-fault: SPEC``. With ``times=N``, the count is kept per
  distinct header value (so give each test its own ``id=`` or deployment), and it is reset by
  ``DELETE /_emulator/faults``. The openai SDK sends a header on every retry; pass it with
  ``httpx.Client(headers={"x-emulator-fault": "429:0.05:times=1"})`` as the ``http_client``.
* **Per deployment** — ``POST /_emulator/faults`` with JSON ``{"deployment": "NAME", "fault": "SPEC"}``
  (``"*"`` means every deployment); ``GET`` lists the active faults, ``DELETE`` removes them all (or only
  those of ``?deployment=NAME``). The control endpoint needs no auth and answers loopback clients only.
* **At start** — ``python -m azmm_magic.emulator --fault NAME=SPEC`` (repeatable), or
  ``EmulatorConfig(faults=["NAME=SPEC"])``.

A header fault wins over a deployment fault; a deployment's own fault wins over a ``"*"`` fault. Faulted
requests are logged and counted like any other (``GET /_emulator/requests``), with ``"fault": SPEC``.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FAULT_HEADER",
    "KINDS",
    "STREAM_SHAPES",
    "reshape_stream",
    "Fault",
    "FaultTable",
    "parse_assignment",
    "parse_fault",
]

FAULT_HEADER = "x-emulator-fault"
TRANSPORT_KEY = "azmm_emulator.transport"
STATUS_KINDS = {"429": 429, "500": 500, "503": 503, "408": 408, "401": 401, "404": 404}
KINDS = (
    "429", "500", "503", "408", "latency", "hang", "drop", "cut",
    "content_filter", "content_filter_answer", "401", "404", "api_version", "malformed_json", "stream_shape",
    "ignore_limit",
)  # fmt: skip
STREAM_SHAPES = ("delta", "none", "no_done", "ollama")
FILTER_CATEGORIES = ("hate", "self_harm", "sexual", "violence", "jailbreak")
_NUMERIC_ARG = {"429": 1.0, "500": None, "503": None, "408": None, "latency": None, "hang": 30.0, "cut": 3}
_NO_ARG = ("drop", "401", "404", "api_version", "ignore_limit")

_MESSAGES = {
    429: "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {version} have "
    "exceeded token rate limit of your current AIServices S0 pricing tier. Please retry after {wait} seconds.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The service is temporarily unable to process your request. Please try again later.",
    408: "The operation was timeout.",
    401: "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource.",
    404: "The API deployment for this resource does not exist. If you created the deployment within the last 5 "
    "minutes, please wait a moment and try again.",
}
_CODES = {429: "429", 500: "InternalServerError", 503: "ServiceUnavailable", 408: "Timeout", 401: "401",
          404: "DeploymentNotFound"}  # fmt: skip
PROMPT_FILTERED = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please "
    "modify your prompt and retry. To learn more about our content filtering policies please read our "
    "documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)


@dataclass(frozen=True)
class Fault:
    """One parsed fault: ``kind`` (one of :data:`KINDS`), ``arg`` (seconds, a chunk count or a category),
    ``times`` (first N requests only; ``None`` = all) and the original ``spec`` text."""

    kind: str
    arg: float | str | None = None
    times: int | None = None
    spec: str = ""

    @property
    def seconds(self) -> float:
        return float(self.arg) if isinstance(self.arg, (int, float)) else 0.0

    @property
    def shapes_answer(self) -> bool:
        """Whether the fault changes the answer itself (applied when the response is built)."""
        return self.kind in ("cut", "content_filter_answer", "stream_shape", "ignore_limit")


def parse_fault(spec: str) -> Fault:
    """Parse ``KIND[:ARG][:times=N][:id=TEXT]``; raises ``ValueError`` with a readable message."""
    text = spec.strip()
    parts = [p.strip() for p in text.split(":")]
    kind = parts[0].lower().replace("-", "_")
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {parts[0]!r}; known: {', '.join(KINDS)}")
    arg: float | str | None = None
    times: int | None = None
    for part in parts[1:]:
        if part.startswith("times="):
            try:
                times = int(part[6:])
            except ValueError:
                raise ValueError(f"fault {spec!r}: times= needs a whole number") from None
            if times < 1:
                raise ValueError(f"fault {spec!r}: times= must be at least 1")
        elif part.startswith("id="):
            continue
        elif arg is None and part:
            arg = part
        else:
            raise ValueError(f"fault {spec!r}: unexpected part {part!r}")
    if kind in _NO_ARG and arg is not None:
        raise ValueError(f"fault {kind!r} takes no argument")
    if kind == "stream_shape":
        arg = str(arg or "").lower()
        if arg not in STREAM_SHAPES:
            raise ValueError(f"fault {spec!r}: the shape must be one of {', '.join(STREAM_SHAPES)}")
    elif kind in ("content_filter", "content_filter_answer"):
        arg = str(arg or "violence").lower()
        if arg not in FILTER_CATEGORIES:
            raise ValueError(f"fault {spec!r}: category must be one of {', '.join(FILTER_CATEGORIES)}")
    elif kind in _NUMERIC_ARG:
        if arg is None:
            arg = _NUMERIC_ARG[kind]
            if arg is None and kind == "latency":
                raise ValueError("fault 'latency' needs seconds, e.g. latency:0.5")
        else:
            try:
                arg = float(arg)
            except ValueError:
                raise ValueError(f"fault {spec!r}: {arg!r} is not a number") from None
            if not math.isfinite(arg) or arg < 0:
                raise ValueError(f"fault {spec!r}: the number must be finite and >= 0")
            if kind == "cut":
                arg = int(arg)
    return Fault(kind=kind, arg=arg, times=times, spec=text)


def parse_assignment(text: str) -> tuple[str, Fault]:
    """Parse the CLI form ``DEPLOYMENT=SPEC`` (``*=SPEC`` for every deployment)."""
    name, sep, spec = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"--fault {text!r}: expected DEPLOYMENT=KIND[:ARG][:times=N], e.g. vision=429:1:times=2")
    return name.strip(), parse_fault(spec)


class FaultTable:
    """Active faults: per deployment (``"*"`` = all) and the per-header-value counters. Thread-safe."""

    def __init__(self, assignments: Sequence[str] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, list[list[Any]]] = {}  # deployment -> [[Fault, remaining or None], ...]
        self._header_uses: dict[str, int] = {}
        for text in assignments:
            self.add(*parse_assignment(text))

    def add(self, deployment: str, fault: Fault) -> None:
        with self._lock:
            self._rules.setdefault(deployment, []).append([fault, fault.times])

    def clear(self, deployment: str | None = None) -> int:
        """Remove the faults of ``deployment`` (all, and the header counters, when ``None``)."""
        with self._lock:
            if deployment is None:
                n = sum(len(v) for v in self._rules.values())
                self._rules.clear()
                self._header_uses.clear()
                return n
            return len(self._rules.pop(deployment, []))

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "faults": [
                    {"deployment": name, "fault": fault.spec, "remaining": remaining}
                    for name, rules in self._rules.items()
                    for fault, remaining in rules
                ]
            }

    def select(self, deployment: str, header: str | None) -> Fault | None:
        """The fault for this request (consuming one use of a ``times=`` fault), or ``None``."""
        if header:
            fault = parse_fault(header)
            with self._lock:
                used = self._header_uses.get(fault.spec, 0)
                if fault.times is None or used < fault.times:
                    self._header_uses[fault.spec] = used + 1
                    return fault
        with self._lock:  # no header fault (or its count is used up): the deployment's, then '*'

            for name in (deployment, "*"):
                for rule in self._rules.get(name, []):
                    fault, remaining = rule
                    if remaining is None:
                        return fault
                    if remaining > 0:
                        rule[1] = remaining - 1
                        return fault
        return None


# ------------------------------------------------------------------------------------------------ responses


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=dict(headers or {}))


def _retry_headers(seconds: float) -> dict[str, str]:
    return {"retry-after": str(max(1, math.ceil(seconds))), "retry-after-ms": str(int(round(seconds * 1000)))}


def filter_results(category: str, *, prompt: bool) -> dict[str, Any]:
    """Azure's per-category verdicts with ``category`` filtered (severity medium, or jailbreak detected)."""
    results: dict[str, Any] = {}
    for name in FILTER_CATEGORIES:
        if name == "jailbreak":
            if prompt or category == "jailbreak":
                results[name] = {"filtered": category == name, "detected": category == name}
            continue
        hit = name == category
        results[name] = {"filtered": hit, "severity": "medium" if hit else "safe"}
    return results


def _transport(request: Any) -> Any:
    return request.scope.get(TRANSPORT_KEY)


async def _drop(request: Any) -> None:
    """Abort the TCP connection (no response byte is sent); fall back to an exception the server logs."""
    transport = _transport(request)
    if transport is None:
        raise ConnectionAbortedError("emulator fault: connection dropped")
    transport.abort()
    await asyncio.sleep(0.01)  # let the server notice the connection is gone before the handler returns


async def before_answer(fault: Fault, request: Any) -> Any:
    """Apply a fault that happens before the answer; returns a Response to send instead, or ``None``."""
    from starlette.responses import JSONResponse, Response

    kind = fault.kind
    if kind in ("429", "500", "503", "408"):
        status = STATUS_KINDS[kind]
        headers = _retry_headers(fault.seconds) if fault.arg is not None else {}
        version = request.query_params.get("api-version") or "v1"
        message = _MESSAGES[status].format(wait=headers.get("retry-after", "1"), version=version)
        return _error(status, _CODES[status], message, headers)
    if kind in ("401", "404"):
        status = STATUS_KINDS[kind]
        return _error(status, _CODES[status], _MESSAGES[status])
    if kind == "api_version":
        return _error(400, "BadRequest", "API version not supported")
    if kind == "content_filter":
        body = {
            "error": {
                "message": PROMPT_FILTERED,
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": filter_results(str(fault.arg), prompt=True),
                },
            }
        }
        return JSONResponse(body, status_code=400)
    if kind == "latency":
        await asyncio.sleep(fault.seconds)
        return None
    if kind == "hang":
        loop = asyncio.get_running_loop()
        deadline = loop.time() + fault.seconds
        while loop.time() < deadline:
            if await request.is_disconnected():
                break
            await asyncio.sleep(0.05)
        return Response(status_code=504)
    if kind == "drop":
        await _drop(request)
        return Response(status_code=204)
    return None


def shaped_response(
    fault: Fault,
    body: dict[str, Any] | None,
    chunks: list[dict[str, Any]] | None,
    headers: Mapping[str, str],
    request: Any,
    chunk_delay: float = 0.0,
    cap: int | None = None,
) -> Any:
    """The answer changed by a ``cut``, ``content_filter_answer``, ``stream_shape`` or ``ignore_limit`` fault
    (``chunks`` when streaming; ``cap`` is the request's output-token limit)."""
    from starlette.responses import JSONResponse, StreamingResponse

    sse_headers = {**headers, "cache-control": "no-cache"}
    if fault.kind == "ignore_limit":
        over = 2 * (cap or 2048) - 12
        for usage in [body.get("usage") if body else None, *[c.get("usage") for c in chunks or ()]]:
            if usage:
                usage["total_tokens"] = usage["prompt_tokens"] + over
                usage["completion_tokens"] = over
        if chunks is not None:
            return StreamingResponse(_events(chunks, chunk_delay, request, cut_after=None),
                                     media_type="text/event-stream", headers=sse_headers)
        return JSONResponse(body, headers=dict(headers))
    if fault.kind == "stream_shape":
        if chunks is None:
            return JSONResponse(body, headers=dict(headers))
        shape = str(fault.arg)
        return StreamingResponse(_events(reshape_stream(chunks, shape), chunk_delay, request, cut_after=None,
                                         done=shape != "no_done"),
                                 media_type="text/event-stream", headers=sse_headers)
    if fault.kind == "content_filter_answer":
        results = filter_results(str(fault.arg), prompt=False)
        if chunks is not None:
            chunks = _filter_stream(chunks, results)
            return StreamingResponse(_events(chunks, chunk_delay, request, cut_after=None), media_type="text/event-stream",
                                     headers={**headers, "cache-control": "no-cache"})
        assert body is not None
        choice = body["choices"][0]
        content = choice["message"]["content"] or ""
        choice["message"]["content"] = content[: len(content) // 3]
        choice["finish_reason"] = "content_filter"
        choice["content_filter_results"] = results
        return JSONResponse(body, headers=dict(headers))
    # cut
    if chunks is not None:
        return StreamingResponse(_events(chunks, chunk_delay, request, cut_after=int(fault.seconds)),
                                 media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"})
    assert body is not None
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return _CutBody(raw, dict(headers), request)


def reshape_stream(chunks: list[dict[str, Any]], shape: str) -> list[dict[str, Any]]:
    """Azure's chunks as another server would send them (see ``stream_shape`` in the module's docstring)."""
    out: list[dict[str, Any]] = []
    for chunk in chunks:
        choices = chunk.get("choices") or []
        if shape == "ollama":
            if not choices and "prompt_filter_results" in chunk:
                continue  # Azure's first chunk
            choices = [{k: v for k, v in c.items() if not k.startswith("content_filter")} for c in choices]
            chunk = {**chunk, "system_fingerprint": "fp_ollama", "choices": choices}
            if choices and choices[0].get("finish_reason") and not choices[0].get("delta") and out:
                last = out[-1]  # Ollama sends the last text and the finish reason in one chunk
                if last.get("choices"):
                    last["choices"][0]["finish_reason"] = choices[0]["finish_reason"]
                    continue
            out.append(chunk)
            continue
        new_choices = []
        for choice in choices:
            finish = choice.get("finish_reason")
            choice = {k: v for k, v in choice.items() if k != "finish_reason"}
            if shape == "delta":
                choice["finish_reason"] = None
                if finish:
                    choice["delta"] = {**choice.get("delta", {}), "finish_reason": finish}
            new_choices.append(choice)
        out.append({**chunk, "choices": new_choices})
    return out


def _filter_stream(chunks: list[dict[str, Any]], results: dict[str, Any]) -> list[dict[str, Any]]:
    """Keep the first third of the text chunks, then a last chunk with ``finish_reason: content_filter``."""
    text_idx = [i for i, c in enumerate(chunks) if c.get("choices") and c["choices"][0].get("delta", {}).get("content")]
    keep = set(text_idx[: max(1, len(text_idx) // 3)])
    out: list[dict[str, Any]] = []
    for i, chunk in enumerate(chunks):
        choices = chunk.get("choices") or []
        if i in text_idx and i not in keep:
            continue
        if choices and choices[0].get("finish_reason"):
            chunk = {**chunk, "choices": [{**choices[0], "finish_reason": "content_filter",
                                           "content_filter_results": results}]}
        out.append(chunk)
    return out


async def _events(
    chunks: list[dict[str, Any]], delay: float, request: Any, *, cut_after: int | None, done: bool = True
) -> AsyncIterator[bytes]:
    """SSE events; with ``cut_after``, the connection is aborted after that many text chunks; ``done=False``
    ends the response cleanly without ``[DONE]``."""
    sent_text = 0
    for i, item in enumerate(chunks):
        if i and delay:
            await asyncio.sleep(delay)
        choices = item.get("choices") or []
        has_text = bool(choices and choices[0].get("delta", {}).get("content"))
        if cut_after is not None and has_text and sent_text >= cut_after:
            await _drop(request)
            return
        yield b"data: " + json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n\n"
        sent_text += has_text
    if cut_after is not None:  # fewer text chunks than the cut point: cut before the finish reason
        await _drop(request)
        return
    if done:
        yield b"data: [DONE]\n\n"


class _CutBody:
    """An ASGI response that announces the whole body (content-length) but sends half, then drops."""

    def __init__(self, raw: bytes, headers: dict[str, str], request: Any) -> None:
        self.raw = raw
        self.headers = headers
        self.request = request

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(self.raw)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.raw[: len(self.raw) // 2], "more_body": True})
        await asyncio.sleep(0.01)
        await _drop(self.request)


def is_loopback_client(request: Any) -> bool:
    """Whether the control request comes from this machine."""
    from azmm_magic.core.endpoints import is_loopback_host

    host = request.client.host if request.client else ""
    return host == "testclient" or is_loopback_host(host)


async def control(request: Any) -> Any:
    """``GET|POST|DELETE /_emulator/faults``: list, add (``{"deployment", "fault"}``) or clear faults."""
    from starlette.responses import JSONResponse

    table: FaultTable = request.app.state.faults
    if not is_loopback_client(request):
        return JSONResponse({"error": {"code": "403", "message": "fault control is for loopback clients"}}, 403)
    if request.method == "POST":
        try:
            data = json.loads(await request.body())
            deployment = str(data.get("deployment") or "*")
            fault = parse_fault(str(data["fault"]))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            message = str(e) if isinstance(e, ValueError) else 'expected JSON {"deployment": "NAME", "fault": "SPEC"}'
            return JSONResponse({"error": {"code": "BadRequest", "message": message}}, 400)
        table.add(deployment, fault)
    elif request.method == "DELETE":
        table.clear(request.query_params.get("deployment"))
    return JSONResponse(table.to_json())
