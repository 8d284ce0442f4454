"""The emulator's Starlette application: Azure OpenAI chat-completions routes, auth, errors, streaming, request log.

Routes (same paths, headers, auth and error bodies as Azure OpenAI):

- ``POST /openai/deployments/{deployment}/chat/completions?api-version=YYYY-MM-DD[-preview]`` (classic)
- ``POST /openai/v1/chat/completions`` (v1 / OpenAI-compatible; the deployment is the body's ``model``)
- ``GET /openai/v1/models`` (the configured deployments)
- ``POST /v1/chat/completions``, ``GET /v1/models`` (the same, for clients given a plain OpenAI-style ``.../v1``)
- the Batch API's Files and Batches routes under the same prefixes (see :mod:`.batches`)
- ``GET|DELETE /_emulator/requests``, ``GET /_emulator/health`` (control endpoints, no auth)
- ``GET|POST|DELETE /_emulator/faults`` and the ``x-emulator-fault`` request header: fault injection
  (:mod:`azmm_magic.emulator.faults`)

Optional RPM/TPM limits answer 429 with ``Retry-After`` like Azure (see :mod:`.limits`).

The answer is :func:`azmm_magic.emulator.report.render_report`: deterministic facts about the request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import faults as _faults
from .batches import BatchStore, batch_routes
from .report import RequestError, apply_token_cap, read_chat, render_report, split_for_stream, usage_for
from .structured import structured_content

__all__ = ["ApiError", "EmulatorConfig", "RequestLog", "create_app"]

API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
RATE_LIMIT_REQUESTS = 1000
RATE_LIMIT_TOKENS = 1_000_000
LOGGED_DATA_URL_CHARS = 80
_ENTRY = "azmm_emulator.entry"

KEY_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)
TOKEN_DENIED = (
    "Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), "
    "or have expired."
)
DEPLOYMENT_NOT_FOUND = (
    "The API deployment for this resource does not exist. If you created the deployment within the last 5 "
    "minutes, please wait a moment and try again."
)


@dataclass
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour (one object, so later features add fields here).

    ``api_key`` / ``bearer_token``: when either is set, requests must authenticate (``api-key`` header equal to
    ``api_key``, or ``Authorization: Bearer`` equal to ``bearer_token``; on ``/openai/v1`` routes a Bearer
    equal to ``api_key`` is accepted too, like Azure's v1 API). Neither set: any or no auth is accepted.
    ``deployments``: the only deployment names that exist (``None``: every name exists).
    ``latency``: seconds slept before each answer; ``stream_chunk_delay``: seconds between streamed chunks.
    ``rpm`` / ``tpm``: per-deployment requests / tokens per minute, enforced over sliding ``rate_window``-second
    windows with Azure's 429 + ``Retry-After`` (see :mod:`.limits`). ``batch_delay``: seconds a Batch API job
    takes from ``validating`` to ``completed``; ``batch_expire_after``: jobs expire after that many lines.
    Secrets are left out of ``repr``.
    """

    api_key: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    deployments: list[str] | None = None
    latency: float = 0.0
    stream_chunk_delay: float = 0.0
    reasoning_prefixes: tuple[str, ...] = ("o1", "o3", "o4", "gpt-5")
    legacy_prefixes: tuple[str, ...] = ("legacy-",)
    max_logged_requests: int = 1000
    faults: list[str] = field(default_factory=list)  # "DEPLOYMENT=KIND[:ARG][:times=N]" (see faults.py)
    rpm: int | None = None
    tpm: int | None = None
    rate_window: float = 10.0
    batch_delay: float = 3.0
    batch_expire_after: int | None = None

    def __post_init__(self) -> None:
        for assignment in self.faults:
            _faults.parse_assignment(assignment)  # ValueError early, with a readable message
        if self.latency < 0 or self.stream_chunk_delay < 0:
            raise ValueError("latency and stream_chunk_delay must be >= 0 seconds")
        if self.rate_window <= 0 or self.batch_delay < 0:
            raise ValueError("rate_window must be > 0 and batch_delay >= 0 seconds")
        if (self.rpm is not None and self.rpm < 1) or (self.tpm is not None and self.tpm < 1):
            raise ValueError("rpm and tpm must be at least 1")
        if self.deployments is not None:
            self.deployments = [str(name) for name in self.deployments]


class ApiError(Exception):
    """An HTTP error answered with an Azure-shaped JSON body."""

    def __init__(self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


class RequestLog:
    """Thread-safe log of the last requests (entries are dicts) plus total/in-flight/peak counters."""

    def __init__(self, limit: int = 1000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self.count = 0
        self.in_flight = 0
        self.peak_in_flight = 0

    def begin(self, method: str, path: str, request_id: str) -> dict[str, Any]:
        """Record a request as it arrives; the returned entry is filled in while it is handled."""
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "deployment": None,
            "api_version": None,
            "auth": "none",
            "status": None,
            "body": None,
            "time": time.time(),
            "request_id": request_id,
        }
        with self._lock:
            self._entries.append(entry)
            self.count += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return entry

    def end(self) -> None:
        """A request has been fully answered."""
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)

    def entries(self) -> list[dict[str, Any]]:
        """Copies of the logged entries, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def reset(self) -> None:
        """Forget the entries and the counters (requests still in flight stay counted as in flight)."""
        with self._lock:
            self._entries.clear()
            self.count = 0
            self.peak_in_flight = self.in_flight

    def to_json(self) -> dict[str, Any]:
        """The ``GET /_emulator/requests`` body."""
        entries = self.entries()
        with self._lock:
            return {
                "count": self.count,
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "requests": entries,
            }


# ------------------------------------------------------------------------------------------------ helpers


def _loggable(value: Any) -> Any:
    """A copy of a JSON value with every ``data:`` URL cut to 80 characters (keeps the log small)."""
    if isinstance(value, str):
        return value[:LOGGED_DATA_URL_CHARS] if value.startswith("data:") else value
    if isinstance(value, dict):
        return {key: _loggable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_loggable(item) for item in value]
    return value


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _authenticate(request: Request, config: EmulatorConfig, entry: dict[str, Any], *, v1: bool) -> None:
    """Record the auth scheme (never the secret) and raise a 401 :class:`ApiError` if it is not accepted."""
    key = request.headers.get("api-key")
    authorization = request.headers.get("authorization", "")
    token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else None
    entry["auth"] = "api-key" if key is not None else "bearer" if token is not None else "none"
    if config.api_key is None and config.bearer_token is None:
        return
    if key is not None:
        if config.api_key is not None and _same(key, config.api_key):
            return
        raise ApiError(401, {"error": {"code": "401", "message": KEY_DENIED}})
    if token is not None:
        if config.bearer_token is not None and _same(token, config.bearer_token):
            return
        if v1 and config.api_key is not None and _same(token, config.api_key):
            return
        raise ApiError(401, {"error": {"code": "401", "message": TOKEN_DENIED}})
    raise ApiError(401, {"error": {"code": "401", "message": KEY_DENIED}})


def _check_api_version(api_version: str | None) -> None:
    """Azure's classic routes require a dated ``api-version`` query parameter."""
    if api_version is None:
        raise ApiError(
            400, {"error": {"code": "BadRequest", "message": "Missing required query parameter: api-version"}}
        )
    if not API_VERSION.match(api_version):
        raise ApiError(400, {"error": {"code": "BadRequest", "message": "API version not supported"}})


def _check_deployment(config: EmulatorConfig, deployment: str) -> None:
    """404 ``DeploymentNotFound`` for names outside ``config.deployments`` (when that list is set)."""
    if config.deployments is not None and deployment not in config.deployments:
        raise ApiError(404, {"error": {"code": "DeploymentNotFound", "message": DEPLOYMENT_NOT_FOUND}})


async def _read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 like OpenAI's for unparsable bodies."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise RequestError(
            f"We could not parse the JSON body of your request ({e}). The API expects a JSON payload.",
            param=None,
            code=None,
        ) from e
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.", param=None, code=None)
    return body


def _model_of(body: Mapping[str, Any]) -> str:
    """The v1 route's deployment: the body's ``model``."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    return model


def _check_parameters(config: EmulatorConfig, body: Mapping[str, Any], deployment: str) -> tuple[int | None, bool]:
    """Token-limit and streaming parameters; returns (completion token cap, include_usage)."""
    name = deployment.lower()
    if body.get("max_tokens") is not None and name.startswith(config.reasoning_prefixes):
        raise RequestError(
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    if body.get("max_completion_tokens") is not None and name.startswith(config.legacy_prefixes):
        raise RequestError("Unrecognized request argument supplied: max_completion_tokens", param=None, code=None)
    caps = []
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise RequestError(
                f"Invalid type for '{key}': expected an integer, but got {type(value).__name__}.",
                param=key,
                code="invalid_type",
            )
        if value < 1:
            raise RequestError(
                f"Invalid '{key}': integer below minimum value. Expected a value >= 1, but got {value} instead.",
                param=key,
                code="integer_below_min_value",
            )
        caps.append(value)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise RequestError("Invalid type for 'stream': expected a boolean.", param="stream", code="invalid_type")
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise RequestError(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        if not isinstance(options, Mapping):
            raise RequestError("Invalid type for 'stream_options': expected an object.", param="stream_options")
    include_usage = bool(stream and options and options.get("include_usage"))
    return (min(caps) if caps else None), include_usage


def _filter_results() -> dict[str, Any]:
    """Azure's per-category content filter verdicts, all ``safe``."""
    return {name: {"filtered": False, "severity": "safe"} for name in ("hate", "self_harm", "sexual", "violence")}


def _prompt_filter_results() -> list[dict[str, Any]]:
    """Azure's top-level ``prompt_filter_results``."""
    results = {**_filter_results(), "jailbreak": {"filtered": False, "detected": False}}
    return [{"prompt_index": 0, "content_filter_results": results}]


def _completion_id(deployment: str, body: Mapping[str, Any]) -> str:
    """A deterministic id: the same request always gets the same ``chatcmpl-emu-...``."""
    canonical = json.dumps([deployment, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "chatcmpl-emu-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


def _service_headers(tokens: int) -> dict[str, str]:
    """Azure's rate-limit headers (no limits are enforced yet, so they stay near the limit)."""
    return {
        "x-ratelimit-remaining-requests": str(RATE_LIMIT_REQUESTS - 1),
        "x-ratelimit-remaining-tokens": str(max(0, RATE_LIMIT_TOKENS - tokens)),
    }


@dataclass(frozen=True)
class _Answer:
    """A finished answer, ready to be sent whole or streamed."""

    id: str
    created: int
    deployment: str
    content: str
    finish_reason: str
    usage: dict[str, Any]


def completion_body(answer: _Answer) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` JSON body."""
    return {
        "id": answer.id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.deployment,
        "system_fingerprint": "fp_azmm_emulator",
        "prompt_filter_results": _prompt_filter_results(),
        "choices": [
            {
                "index": 0,
                "finish_reason": answer.finish_reason,
                "logprobs": None,
                "message": {"role": "assistant", "content": answer.content, "refusal": None},
                "content_filter_results": _filter_results(),
            }
        ],
        "usage": answer.usage,
    }


def stream_chunks(answer: _Answer, *, include_usage: bool) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` sequence Azure sends for a streamed answer (without ``[DONE]``)."""
    base = {
        "id": answer.id,
        "object": "chat.completion.chunk",
        "created": answer.created,
        "model": answer.deployment,
        "system_fingerprint": "fp_azmm_emulator",
    }
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None, filters: dict[str, Any]) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {**base, "choices": [{**choice, "content_filter_results": filters}]}

    chunks: list[dict[str, Any]] = [
        {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "choices": [],
            "prompt_filter_results": _prompt_filter_results(),
        },
        chunk({"role": "assistant", "content": "", "refusal": None}, None, {}),
    ]
    chunks += [chunk({"content": piece}, None, _filter_results()) for piece in split_for_stream(answer.content)]
    chunks.append(chunk({}, answer.finish_reason, {}))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": answer.usage})
    return chunks


async def _sse(chunks: list[dict[str, Any]], delay: float) -> AsyncIterator[bytes]:
    """Server-sent events: one ``data:`` line per chunk, then ``data: [DONE]``."""
    for i, item in enumerate(chunks):
        if i and delay:
            await asyncio.sleep(delay)
        yield b"data: " + json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n\n"
    yield b"data: [DONE]\n\n"


# ------------------------------------------------------------------------------------------------ routes


def _entry(request: Request) -> dict[str, Any]:
    """The request-log entry the recording middleware opened for this request."""
    entry: dict[str, Any] = request.scope.get(_ENTRY, {})
    return entry


async def _chat(request: Request, deployment: str | None, *, v1: bool) -> Response:
    """Shared chat-completions handler for both URL styles."""
    config: EmulatorConfig = request.app.state.config
    entry = _entry(request)
    api_version = request.query_params.get("api-version")
    entry["deployment"], entry["api_version"] = deployment, api_version
    _authenticate(request, config, entry, v1=v1)
    if not v1:
        _check_api_version(api_version)
    body = await _read_json(request)
    entry["body"] = _loggable(body)
    if deployment is None:
        deployment = entry["deployment"] = _model_of(body)
    try:
        fault = request.app.state.faults.select(deployment, request.headers.get(_faults.FAULT_HEADER))
    except ValueError as e:
        raise ApiError(400, {"error": {"code": "BadRequest", "message": f"{_faults.FAULT_HEADER}: {e}"}}) from e
    if fault is not None:
        entry["fault"] = fault.spec
        early = await _faults.before_answer(fault, request)
        if early is not None:
            return early
    _check_deployment(config, deployment)
    cap, include_usage = _check_parameters(config, body, deployment)
    # like Azure, an RPM-only limit refuses a request on arrival, before any work; a TPM limit needs the token
    # estimate, so it is checked once the images are read
    limited = _rate_limit(request, config, deployment, None, cap, api_version) if config.tpm is None else None
    facts = await run_in_threadpool(read_chat, body)
    if config.tpm is not None:
        limited = _rate_limit(request, config, deployment, facts, cap, api_version)
    if config.latency:
        await asyncio.sleep(config.latency)
    malformed = fault is not None and fault.kind == "malformed_json"
    content = structured_content(body, facts, deployment=deployment, malformed=malformed)
    if content is None:
        content = render_report(facts, deployment=deployment)
    content, finish = apply_token_cap(content, cap)
    usage = usage_for(facts, content)
    answer = _Answer(_completion_id(deployment, body), int(time.time()), deployment, content, finish, usage)
    headers = limited or _service_headers(usage["total_tokens"])
    if fault is not None and fault.shapes_answer:
        streamed = bool(body.get("stream"))
        return _faults.shaped_response(
            fault,
            None if streamed else completion_body(answer),
            stream_chunks(answer, include_usage=include_usage) if streamed else None,
            headers,
            request,
            config.stream_chunk_delay,
        )
    if body.get("stream"):
        chunks = stream_chunks(answer, include_usage=include_usage)
        return StreamingResponse(
            _sse(chunks, config.stream_chunk_delay),
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )
    return JSONResponse(completion_body(answer), headers=headers)


def _rate_limit(
    request: Request, config: EmulatorConfig, deployment: str, facts: Any, cap: int | None, api_version: str | None
) -> dict[str, str] | None:
    """Enforce ``config.rpm``/``tpm`` for ``deployment``: None when unlimited, else the rate-limit headers (a
    refused request raises Azure's 429 with ``Retry-After``)."""
    if config.rpm is None and config.tpm is None:
        return None
    from .limits import RateLimiter, rate_limit_body

    limiters: dict[str, RateLimiter] = request.app.state.limiters
    limiter = limiters.get(deployment)
    if limiter is None:
        limiter = limiters[deployment] = RateLimiter(config.rpm, config.tpm, window=config.rate_window)
    tokens = int(usage_for(facts, "")["prompt_tokens"]) + (cap or 0) if facts is not None else 0
    decision = limiter.check(tokens)
    if not decision.allowed:
        raise ApiError(429, rate_limit_body(decision, api_version=api_version), decision.headers())
    return decision.headers()


async def chat_classic(request: Request) -> Response:
    """``POST /openai/deployments/{deployment}/chat/completions?api-version=...``."""
    return await _chat(request, request.path_params["deployment"], v1=False)


async def chat_v1(request: Request) -> Response:
    """``POST /openai/v1/chat/completions`` or ``/v1/chat/completions`` (deployment = body ``model``)."""
    return await _chat(request, None, v1=True)


async def list_models(request: Request) -> Response:
    """``GET /openai/v1/models`` or ``/v1/models``: the configured deployments, for OpenAI-compatible clients."""
    config: EmulatorConfig = request.app.state.config
    _authenticate(request, config, _entry(request), v1=True)
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "azmm-emulator"} for name in config.deployments or []
    ]
    return JSONResponse({"object": "list", "data": data})


async def requests_log(request: Request) -> Response:
    """``GET /_emulator/requests`` (the log) and ``DELETE /_emulator/requests`` (reset it)."""
    log: RequestLog = request.app.state.log
    if request.method == "DELETE":
        log.reset()
        return JSONResponse({"status": "reset"})
    return JSONResponse(log.to_json())


async def health(request: Request) -> Response:
    """``GET /_emulator/health``."""
    return JSONResponse({"status": "ok"})


# ------------------------------------------------------------------------------------------------ plumbing


class _RecordingMiddleware:
    """Opens a log entry per service request, adds request-id headers, and tracks requests in flight."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        entry = self.log.begin(scope["method"], scope["path"], request_id)
        scope[_ENTRY] = entry

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                headers["apim-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        except BaseException:
            if entry["status"] is None:
                entry["status"] = 500
            raise
        finally:
            self.log.end()


async def _on_api_error(request: Request, exc: Exception) -> Response:
    """Render :class:`ApiError`."""
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers or None)


async def _on_request_error(request: Request, exc: Exception) -> Response:
    """Render :class:`~azmm_magic.emulator.report.RequestError` as Azure's 400."""
    assert isinstance(exc, RequestError)
    return JSONResponse(exc.to_body(), status_code=400)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, Azure-style."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    message = "Resource not found" if status == 404 else "Method not allowed"
    return JSONResponse({"error": {"code": str(status), "message": message}}, status_code=status)


async def _on_crash(request: Request, exc: Exception) -> Response:
    """A bug in the emulator: answer 500 in Azure's shape (the traceback goes to the server log)."""
    body = {"error": {"code": "InternalServerError", "message": f"The emulator failed: {type(exc).__name__}"}}
    return JSONResponse(body, status_code=500)


class _EmulatorApp(Starlette):
    """Starlette that remembers the server's transport for the request (so a fault can drop the connection)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_faults.TRANSPORT_KEY] = getattr(getattr(send, "__self__", None), "transport", None)
        await super().__call__(scope, receive, send)


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build the emulator app; ``app.state.config`` and ``app.state.log`` (a :class:`RequestLog`) are public."""
    config = config or EmulatorConfig()
    log = RequestLog(config.max_logged_requests)
    routes = [
        Route("/openai/deployments/{deployment}/chat/completions", chat_classic, methods=["POST"]),
        Route("/openai/v1/chat/completions", chat_v1, methods=["POST"]),
        Route("/openai/v1/models", list_models, methods=["GET"]),
        Route("/v1/chat/completions", chat_v1, methods=["POST"]),  # plain OpenAI-compatible base URL .../v1
        Route("/v1/models", list_models, methods=["GET"]),
        *batch_routes(),
        Route("/_emulator/requests", requests_log, methods=["GET", "DELETE"]),
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/_emulator/faults", _faults.control, methods=["GET", "POST", "DELETE"]),
    ]
    app = _EmulatorApp(
        routes=routes,
        middleware=[Middleware(_RecordingMiddleware, log=log)],
        exception_handlers={
            ApiError: _on_api_error,
            RequestError: _on_request_error,
            404: _on_http_error,
            405: _on_http_error,
            Exception: _on_crash,
        },
    )
    app.state.config = config
    app.state.log = log
    app.state.faults = _faults.FaultTable(config.faults)
    app.state.limiters = {}
    app.state.batches = BatchStore()
    return app
