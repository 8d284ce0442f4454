"""The emulator's Starlette application: Azure OpenAI chat-completions routes, auth, errors, streaming, request log.

Routes (same paths, headers, auth and error bodies as Azure OpenAI):

- ``POST /openai/deployments/{deployment}/chat/completions?api-version=YYYY-MM-DD[-preview]`` (classic)
- ``POST /openai/v1/chat/completions`` (v1 / OpenAI-compatible; the deployment is the body's ``model``)
- ``GET /openai/v1/models`` (the configured deployments)
- ``POST /v1/chat/completions``, ``GET /v1/models`` (the same, for clients given a plain OpenAI-style ``.../v1``)
- the Batch API's Files and Batches routes under the same prefixes (see :mod:`.batches`)
- ``GET|DELETE /_emulator/requests``, ``GET /_emulator/health`` (control endpoints)
- ``GET|POST|DELETE /_emulator/faults`` and the ``x-emulator-fault`` request header: fault injection
  (:mod:`azmm_magic.emulator.faults`)

The control endpoints (but ``health``) answer clients on this machine only; from another machine (an emulator
bound to a non-loopback address) they need the ``api-key`` the emulator was started with, and without one they
answer 403. Every request body is limited (``max_request_bytes``; Files uploads ``max_upload_bytes``): a
larger one is answered 413 before it is read whole.

Requests are validated as strictly as Azure does (:mod:`.validation`: the spec-derived schema plus rules,
:mod:`.versions`, :mod:`.models`); optional RPM/TPM limits answer 429 with ``Retry-After`` like Azure (see
:mod:`.limits`). Shared pieces (errors, auth, api-version) live in :mod:`.protocol`, answer bodies in
:mod:`.answers`, so :mod:`.batches` needs nothing from this module.

The answer is :func:`azmm_magic.emulator.report.render_report`: deterministic facts about the request.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from functools import partial
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
from .answers import Answer, completion_body, stream_chunks
from .batches import BatchStore, batch_routes
from .model_table import DEFAULT_MODEL, find_model
from .models import parse_deployments
from .pipeline import make_answer, prepare
from .protocol import ENTRY_KEY, ApiError, authenticate, check_api_version, log_entry, read_json
from .report import RequestError, read_chat, usage_for
from .validation import MAX_IMAGE_BYTES, RULES

__all__ = ["Answer", "ApiError", "EmulatorConfig", "RequestLog", "completion_body", "create_app", "stream_chunks"]

RATE_LIMIT_REQUESTS = 1000
RATE_LIMIT_TOKENS = 1_000_000
LOGGED_DATA_URL_CHARS = 80
RULE_NAMES = tuple(rule.__name__ for rule in RULES)

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
    ``deployments``: the only deployment names that exist (``None``: every name exists); an entry
    ``NAME=MODEL-VERSION`` (e.g. ``gpt-4o=gpt-4o-2024-11-20``) also maps the deployment to a model, kept in
    ``models`` (the model decides the rules and the answers' ``model``; see :mod:`.models`); a bare known model
    (``gpt-4o``) means its current default version. ``default_model``: what a deployment whose name names no
    model is served as (a versioned model of :mod:`.model_table`, default ``gpt-4o-2024-11-20``).
    ``latency``: seconds slept before each answer; ``stream_chunk_delay``: seconds between streamed chunks.
    ``rpm`` / ``tpm``: per-deployment requests / tokens per minute, enforced over sliding ``rate_window``-second
    windows with Azure's 429 + ``Retry-After`` (see :mod:`.limits`). ``batch_delay``: seconds a Batch API job
    takes from ``validating`` to ``completed``; ``batch_expire_after``: jobs expire after that many lines;
    ``file_processing_delay``: seconds an uploaded file stays ``pending``.
    Strictness (see :mod:`.validation`): ``lenient_api_versions`` accepts any dated api-version, not only the
    known ones; ``lenient_rules`` names request rules to skip (e.g. ``("one_token_limit",)``);
    ``max_images`` (None: the model's documented limit) and ``max_image_bytes`` bound a request's images.
    ``async_content_filter``: streams carry Azure's asynchronous-filter annotation chunks (no ``delta``).
    ``decode_images=False``: answer from each image's header only (size, format), without decoding its pixels
    (the report leaves out colours and brightness), so the emulator takes almost no CPU in benchmarks.
    Secrets are left out of ``repr``.
    """

    api_key: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    deployments: list[str] | None = None
    models: dict[str, str] = field(default_factory=dict)
    default_model: str = DEFAULT_MODEL
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
    file_processing_delay: float = 0.3
    lenient_api_versions: bool = False
    lenient_rules: tuple[str, ...] = ()
    max_images: int | None = None
    max_image_bytes: int = MAX_IMAGE_BYTES
    async_content_filter: bool = False
    decode_images: bool = True
    max_request_bytes: int = 64 * 1024 * 1024
    max_upload_bytes: int = 201 * 1000 * 1000  # a Batch API input file is at most 200 MB

    def __post_init__(self) -> None:
        for assignment in self.faults:
            _faults.parse_assignment(assignment)  # ValueError early, with a readable message
        if self.latency < 0 or self.stream_chunk_delay < 0 or self.file_processing_delay < 0:
            raise ValueError("latency, stream_chunk_delay and file_processing_delay must be >= 0 seconds")
        if self.rate_window <= 0 or self.batch_delay < 0:
            raise ValueError("rate_window must be > 0 and batch_delay >= 0 seconds")
        if (self.rpm is not None and self.rpm < 1) or (self.tpm is not None and self.tpm < 1):
            raise ValueError("rpm and tpm must be at least 1")
        if self.max_images is not None and self.max_images < 1:
            raise ValueError("max_images must be at least 1")
        self.lenient_rules = tuple(self.lenient_rules)
        unknown = [name for name in self.lenient_rules if name not in RULE_NAMES]
        if unknown:
            raise ValueError(f"unknown request rule(s) {', '.join(unknown)}; known: {', '.join(RULE_NAMES)}")
        self.models = {str(k): str(v) for k, v in self.models.items()}
        spec = find_model(self.default_model)
        if spec is None or spec.id != self.default_model.lower():
            raise ValueError(f"default_model {self.default_model!r} is not a versioned model of the emulator's table "
                             f"(e.g. {DEFAULT_MODEL})")
        if self.deployments is not None:
            names, models = parse_deployments(self.deployments)
            self.deployments = names
            self.models = {**models, **self.models}


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


def _check_deployment(config: EmulatorConfig, deployment: str) -> None:
    """404 ``DeploymentNotFound`` for names outside ``config.deployments`` (when that list is set)."""
    if config.deployments is not None and deployment not in config.deployments:
        raise ApiError(404, {"error": {"code": "DeploymentNotFound", "message": DEPLOYMENT_NOT_FOUND}})


def _model_of(body: Mapping[str, Any]) -> str:
    """The v1 route's deployment: the body's ``model``."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    return model


def _service_headers(tokens: int, config: EmulatorConfig) -> dict[str, str]:
    """Azure's rate-limit headers when no limit is configured (the budget stays near its top)."""
    window = f"{config.rate_window:g}s"
    return {
        "x-ratelimit-limit-requests": str(RATE_LIMIT_REQUESTS),
        "x-ratelimit-limit-tokens": str(RATE_LIMIT_TOKENS),
        "x-ratelimit-remaining-requests": str(RATE_LIMIT_REQUESTS - 1),
        "x-ratelimit-remaining-tokens": str(max(0, RATE_LIMIT_TOKENS - tokens)),
        "x-ratelimit-reset-requests": window,
        "x-ratelimit-reset-tokens": window,
    }


async def _sse(chunks: list[dict[str, Any]], delay: float) -> AsyncIterator[bytes]:
    """Server-sent events: one ``data:`` line per chunk, then ``data: [DONE]``."""
    for i, item in enumerate(chunks):
        if i and delay:
            await asyncio.sleep(delay)
        yield b"data: " + json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n\n"
    yield b"data: [DONE]\n\n"


# ------------------------------------------------------------------------------------------------ routes


async def _chat(request: Request, deployment: str | None, *, v1: bool) -> Response:
    """Shared chat-completions handler for both URL styles."""
    config: EmulatorConfig = request.app.state.config
    entry = log_entry(request)
    api_version = request.query_params.get("api-version")
    entry["deployment"], entry["api_version"] = deployment, api_version
    authenticate(request, config, entry, v1=v1)
    if not v1:
        check_api_version(api_version, lenient=config.lenient_api_versions)
    body = await read_json(request)
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
    prepared = prepare(config, body, deployment, None if v1 else api_version)
    cap, include_usage = prepared.cap, prepared.include_usage
    # like Azure, a limit refuses a request on arrival, before any work: a TPM limit needs the token estimate,
    # which reads only the images' headers (not waiting behind the decoding of a burst of requests)
    estimate = read_chat(body, decode_images=False) if config.tpm is not None else None
    limited = _rate_limit(request, config, deployment, estimate, cap, api_version)
    facts = (estimate if estimate is not None and not config.decode_images
             else await run_in_threadpool(partial(read_chat, decode_images=config.decode_images), body))
    if config.latency:
        await asyncio.sleep(config.latency)
    malformed = fault is not None and fault.kind == "malformed_json"
    answer = make_answer(body, facts, prepared, malformed=malformed)
    headers = limited or _service_headers(answer.usage["total_tokens"], config)
    if answer.note:
        headers = {**headers, "x-emulator-note": answer.note}
        entry["note"] = answer.note
    streamed = bool(body.get("stream"))
    chunks = (
        stream_chunks(answer, include_usage=include_usage, async_filter=config.async_content_filter)
        if streamed
        else None
    )
    if fault is not None and fault.shapes_answer:
        return _faults.shaped_response(
            fault, None if streamed else completion_body(answer), chunks, headers, request, config.stream_chunk_delay,
            cap=cap,
        )
    if chunks is not None:
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
    authenticate(request, config, log_entry(request), v1=True)
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
        apim_request_id = str(uuid.uuid4())  # Azure's gateway id differs from the service's x-request-id
        entry = self.log.begin(scope["method"], scope["path"], request_id)
        entry["apim_request_id"] = apim_request_id
        scope[ENTRY_KEY] = entry

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                headers["apim-request-id"] = apim_request_id
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


def _too_large(limit: int) -> ApiError:
    return ApiError(413, {"error": {"code": "RequestEntityTooLarge",
                                    "message": f"The request body is larger than {limit:,} bytes."}})


class _Guard:
    """Control endpoints for this machine's clients (or the emulator's key); a size limit on every body."""

    def __init__(self, app: ASGIApp, config: EmulatorConfig) -> None:
        self.app = app
        self.config = config

    def _control_allowed(self, scope: Scope) -> bool:
        from azmm_magic.core.endpoints import is_loopback_host

        client = scope.get("client") or ("", 0)
        if is_loopback_host(str(client[0])):
            return True
        key = self.config.api_key
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        return bool(key) and headers.get("api-key") == key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith("/_emulator/") and path != "/_emulator/health" and not self._control_allowed(scope):
            body = {"error": {"code": "Forbidden", "message": "The emulator's control endpoints answer clients on "
                              "its own machine only (or with its api-key)."}}
            await JSONResponse(body, status_code=403)(scope, receive, send)
            return
        limit = self.config.max_upload_bytes if path.rstrip("/").endswith("/files") else self.config.max_request_bytes
        length = dict(scope.get("headers", [])).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            error = _too_large(limit)
            await JSONResponse(error.body, status_code=error.status)(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(limit)
            return message

        await self.app(scope, bounded, send)


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
        middleware=[Middleware(_Guard, config=config), Middleware(_RecordingMiddleware, log=log)],
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
