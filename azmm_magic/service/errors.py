"""The one place where exceptions of the ``openai`` SDK become ours (sync, async, streaming and batch paths).

Messages say what happened and what to do in the Python API's terms (settings, environment variables); the
error's ``settings`` and ``remedy`` let each frontend add its own hint.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from azmm_magic.core.errors import (
    AuthError,
    AzureVisionError,
    BadRequestError,
    ConfigError,
    ConnectionFailedError,
    ContentFilterError,
    DeploymentNotFoundError,
    RateLimitError,
    ServiceError,
    ServiceTimeoutError,
)
from azmm_magic.core.settings import Settings

TOKEN_PARAMS = ("max_completion_tokens", "max_tokens")


def describe(e: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type name."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


def header(response: Any, name: str) -> str | None:
    """A response header, or None (for a missing response too)."""
    headers = getattr(response, "headers", None)
    return headers.get(name) if headers is not None else None


#: The longest wait a server may ask for that is waited (single calls and batches alike); a longer one fails the
#: item at once ("the service asked to wait 24 h") instead of pausing the kernel or a whole batch.
MAX_SERVER_WAIT = 120.0
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(raw: object, *, unit: float = 1.0) -> float | None:
    """Seconds in a header value: a number (times ``unit``: ``retry-after-ms`` is in milliseconds), an
    OpenAI-style duration (``20ms``, ``6m0s``, ``1h2m3.5s``) or an HTTP date; ``inf`` for an infinite number;
    None for anything else (text, NaN, a negative number, an empty value)."""
    text = str(raw).strip() if raw is not None else ""
    if not text or len(text) > 64:
        return None
    value: float | None
    try:
        value = float(text) * unit
    except ValueError:
        value = _duration_or_date(text)
    if value is None or math.isnan(value) or value < 0:
        return None
    return value


def _duration_or_date(text: str) -> float | None:
    parts = _DURATION_PART.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        return sum(float(n) * _UNITS[u] for n, u in parts)
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    import datetime

    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


def wait_words(seconds: float) -> str:
    """A wait in words: ``20 ms``, ``30 s``, ``6 min``, ``24 h``, ``forever``."""
    if math.isinf(seconds):
        return "forever"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


@dataclass(frozen=True)
class ServerWait:
    """A wait a server asked for: ``seconds`` (may be ``inf``); ``honoured`` when it is at most
    :data:`MAX_SERVER_WAIT` (else the request is not sent again: it fails at once)."""

    seconds: float

    @property
    def honoured(self) -> bool:
        return self.seconds <= MAX_SERVER_WAIT

    def words(self) -> str:
        """``the service asked to wait 24 h`` (and, when not honoured, that it is not waited)."""
        text = f"the service asked to wait {wait_words(self.seconds)}"
        if not self.honoured:
            text += f", longer than the {wait_words(MAX_SERVER_WAIT)} waited at most: try again later"
        return text


def server_wait(response: Any) -> ServerWait | None:
    """THE reading of a server-requested wait, used by single calls and batches alike: ``retry-after-ms``, then
    ``retry-after`` (seconds or an HTTP date), else the ``x-ratelimit-reset-*`` of an exhausted budget
    (``x-ratelimit-remaining-* == 0``; durations such as ``6m0s``). None: the server asked for nothing usable."""
    for name, unit in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = parse_duration(header(response, name), unit=unit)
        if value is not None:
            return ServerWait(value)
    resets = [parse_duration(header(response, f"x-ratelimit-reset-{kind}")) for kind in ("requests", "tokens")
              if (header(response, f"x-ratelimit-remaining-{kind}") or "").strip() == "0"]
    known = [r for r in resets if r is not None]
    return ServerWait(max(known)) if known else None


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _retries(n: int) -> str:
    return "1 retry" if n == 1 else f"{n} retries"


def is_retryable_status(status: int | None) -> bool:
    """The statuses the openai SDK retries (so "after N retries" is true)."""
    return status in (408, 409, 429) or (status is not None and status >= 500)


def _dropped(cause: BaseException | None) -> bool:
    """Whether a transport error means the server closed the connection (not: could not connect)."""
    names = {cls.__name__ for cls in type(cause).__mro__} if cause is not None else set()
    # by name: the SDK's transport is httpx or a fork of it (httpx2), with the same exception names
    return bool(names & {"RemoteProtocolError", "ReadError"}) and "ConnectError" not in names


def other_token_param(error: BaseException, sent: str) -> str | None:
    """When a 400 says the output-token parameter we sent is not accepted, the one to send instead."""
    if getattr(error, "status_code", None) != 400:
        return None
    body = getattr(error, "body", None)
    param = body.get("param") if isinstance(body, dict) else None
    message = str(body.get("message", "")) if isinstance(body, dict) else str(error)
    if param == sent or re.search(rf"\b{sent}\b", message):
        return next(p for p in TOKEN_PARAMS if p != sent)
    return None


def filtered_categories(results: Any) -> tuple[str, ...]:
    """Names of categories Azure marked filtered (or detected, for jailbreak/protected material)."""
    found: list[str] = []
    if isinstance(results, list):  # prompt_filter_results
        for item in results:
            found.extend(filtered_categories((item or {}).get("content_filter_results")))
        return tuple(dict.fromkeys(found))
    if not isinstance(results, dict):
        return ()
    for name, value in results.items():
        if isinstance(value, dict) and (value.get("filtered") or value.get("detected")):
            severity = value.get("severity")
            found.append(f"{name} ({severity})" if severity and severity != "safe" else name)
    return tuple(found)


def content_filter_error(results: Any, *, where: str, request_id: str | None = None) -> ContentFilterError:
    """The error for a prompt (``where="prompt"``) or an answer (``"answer"``) Azure's content filter blocked."""
    categories = filtered_categories(results)
    named = ", ".join(categories) if categories else "no category reported"
    return ContentFilterError(
        f"Azure's content filter blocked the {where} (categories: {named}). Rephrase the prompt or use other "
        f"images; filter settings are per deployment in the Azure AI Foundry portal.",
        categories=categories,
        status=400 if where == "prompt" else 200,
        code="content_filter",
        request_id=request_id,
    )


def _asks(request: Any, settings: Settings) -> tuple[list[str], tuple[str, ...]]:
    """What in ``request`` a server that speaks only part of the chat API may refuse: (words, settings)."""
    if request is None:
        return [], ()
    words: list[str] = []
    names: tuple[str, ...] = ()
    images = len(getattr(request, "images", ()) or ())
    if images:
        words.append(f"images (this request has {images}; try without)")
    extra = getattr(request, "extra", None) or {}
    if "response_format" in extra:
        words.append("structured answers (response_format)")
    if getattr(request, "stream", False) and settings.resolved_api_style == "openai":
        words.append("streaming with usage (stream_options; the stream setting)")
        names += ("stream",)
    if settings.resolved_api_style == "openai" and getattr(request, "token_param", "") == "max_completion_tokens":
        words.append("max_completion_tokens (the token_param setting)")
        names += ("token_param",)
    return words, names


def _status_error(settings: Settings, host: str, status: int | None, message: str, rid: str,
                  attempts: int, same: bool, request: Any, common: dict[str, Any]) -> ServiceError:
    """A status the SDK has no class for (5xx, 408, 409, ...): how many times, what the server said, what to do."""
    quoted = f' (server: "{message.rstrip()}")' if message else ""
    transient = status in (408, 409, 502, 503, 504)
    if attempts > 1 and same:
        head = f"{host} answered {status} on all {attempts} attempts{quoted}"
    elif attempts > 1:
        head = f"{host} answered {status} after {_retries(attempts - 1)}{quoted}"
    else:
        head = f"{host} answered {status}{quoted}"
    if transient or status is None or status < 500:
        what = "the service is unavailable or overloaded: try again in a few minutes" if transient else "try again"
        return ServiceError(f"{head}. {what[0].upper()}{what[1:]}{rid}.", remedy="retry", **common)
    words, names = _asks(request, settings)
    differs = (f"this server may not accept {' or '.join(words)}" if words
               else "check the server's log, or try again later")
    if attempts > 1 and same:
        return ServiceError(
            f"{head}. The same error every time points at the request, not at load: {differs}{rid}.",
            settings=names, **common,
        )
    return ServiceError(f"{head}. Try again; if it fails every time, {differs}{rid}.", settings=names,
                        remedy="retry", **common)


def map_sdk_error(error: BaseException, settings: Settings, deployment: str | None, *, attempts: int | None = None,
                  statuses: tuple[int | None, ...] = (), request: Any = None) -> AzureVisionError:
    """Turn an SDK (or transport) exception into one of ours, with a message that says what to do.

    ``attempts``: how many times the request was sent (default: once plus the ``max_retries`` setting);
    ``statuses``: the HTTP status of each attempt (to say "on all N attempts" only when it is true);
    ``request``: the :class:`~azmm_magic.core.request.VisionRequest` (to suggest what a server may refuse)."""
    if isinstance(error, AzureVisionError):
        return error
    try:
        import openai
    except ImportError:  # pragma: no cover
        return ServiceError(describe(error))
    host = settings.endpoint_host or "the endpoint"
    status = getattr(error, "status_code", None)
    request_id = getattr(error, "request_id", None)
    raw_body = getattr(error, "body", None)
    body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
    code = getattr(error, "code", None) or body.get("code")
    message = str(body.get("message") or getattr(error, "message", "") or describe(error)).strip()
    message = message.splitlines()[0][:300] if message else ""
    rid = f" (request id {request_id})" if request_id else ""
    common: dict[str, Any] = {"status": status, "code": code, "request_id": request_id}
    attempts = attempts if attempts is not None else settings.max_retries + 1
    tries = _times(attempts)
    if isinstance(error, openai.APITimeoutError):
        return ServiceTimeoutError(
            f"No answer from {host} within {settings.timeout:g} s (tried {tries}). Try again, or raise the "
            f"timeout setting (e.g. timeout={int(settings.timeout * 2)}).",
            settings=("timeout",), remedy="retry", **common,
        )
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error.__context__
        reason = describe(cause) if cause else "connection failed"
        if _dropped(cause):  # the server was reached but closed the connection before the answer was complete
            return ConnectionFailedError(
                f"{host} dropped the connection before the answer was complete ({reason.rstrip('.')}; tried "
                f"{tries}). This is usually temporary: try again.",
                remedy="retry", **common,
            )
        source = settings.sources.get("endpoint", "")
        where = f" (set by {source})" if source and source not in ("default", "argument") else ""
        return ConnectionFailedError(
            f"Cannot reach {settings.endpoint}{where} ({reason}). Check the endpoint setting and your network, "
            f"or use the local emulator.",
            settings=("endpoint",), remedy="emulator", **common,
        )
    if isinstance(error, openai.AuthenticationError):
        if settings.resolved_auth == "entra":
            how = "sign in again (az login) or check the credential DefaultAzureCredential picks up"
        else:
            how = "check the API key (AZURE_OPENAI_API_KEY) and that it belongs to this resource"
        return AuthError(f"{host} rejected the credentials (401): {how}{rid}.", remedy="credentials", **common)
    if isinstance(error, openai.PermissionDeniedError):
        return AuthError(
            f"{host} denied access (403): {message or 'permission denied'}. With Entra ID your identity needs the "
            f"'Cognitive Services OpenAI User' role on the resource{rid}.",
            remedy="credentials", **common,
        )
    if isinstance(error, openai.NotFoundError):
        style = settings.resolved_api_style
        hint = (
            "Check the deployment name in the Azure AI Foundry portal (a new deployment can take ~5 minutes), "
            "or set the deployment setting (AZURE_OPENAI_DEPLOYMENT)"
        )
        names: tuple[str, ...] = ("deployment",)
        if style != "azure":
            hint += f"; the URL style is '{style}' (the api_style setting)"
            names += ("api_style",)
        return DeploymentNotFoundError(
            f"Deployment '{deployment}' was not found at {settings.endpoint} (404). {hint}{rid}.",
            settings=names, **common,
        )
    if isinstance(error, openai.RateLimitError):
        wait = server_wait(getattr(error, "response", None))
        wait_text = f"; {wait.words()}" if wait is not None else ""
        return RateLimitError(
            f"Deployment '{deployment}' is rate limited (429) after {_retries(attempts - 1)}{wait_text}. "
            f"Wait and try again, send fewer/smaller images, or raise the deployment's quota{rid}.",
            retry_after=wait.seconds if wait is not None and wait.honoured else None,
            too_long=wait is not None and not wait.honoured, remedy="retry", **common,
        )
    if isinstance(error, openai.BadRequestError):
        if code == "content_filter":
            inner = body.get("innererror") or {}
            return content_filter_error(inner.get("content_filter_result"), where="prompt", request_id=request_id)
        if re.search(r"api[- ]?version", message, re.IGNORECASE):
            return BadRequestError(
                f"{host} does not accept api-version '{settings.api_version}' (400: {message.rstrip('.')}). Set a "
                f"version this resource supports: the api_version setting or OPENAI_API_VERSION, e.g. "
                f"'2024-10-21'{rid}.",
                settings=("api_version",), **common,
            )
        return BadRequestError(f"The service rejected the request (400): {message}{rid}", **common)
    if isinstance(error, openai.APIStatusError):
        tried = attempts if is_retryable_status(status) else 1
        same = not statuses or all(s == status for s in statuses)
        wait = server_wait(getattr(error, "response", None))
        if wait is not None and not wait.honoured and is_retryable_status(status):  # not sent again: say why
            return ServiceError(f"{host} answered {status}; {wait.words()}{rid}.", remedy="retry", **common)
        return _status_error(settings, host, status, message, rid, tried, same, request, common)
    if isinstance(error, openai.OpenAIError):
        return ConfigError(f"The openai SDK refused the settings: {describe(error)}")
    return ServiceError(f"Unexpected error talking to {host}: {type(error).__name__}: {describe(error)}")


__all__ = [
    "MAX_SERVER_WAIT",
    "TOKEN_PARAMS",
    "ServerWait",
    "content_filter_error",
    "describe",
    "filtered_categories",
    "header",
    "is_retryable_status",
    "map_sdk_error",
    "other_token_param",
    "parse_duration",
    "server_wait",
    "wait_words",
]
