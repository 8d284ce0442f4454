"""The one place where exceptions of the ``openai`` SDK become ours (sync, async, streaming and batch paths).

Messages say what happened and what to do in the Python API's terms (settings, environment variables); the
error's ``settings`` and ``remedy`` let each frontend add its own hint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
from azmm_magic.service.retry import is_retryable_status, server_wait

TOKEN_PARAMS = ("max_completion_tokens", "max_tokens")


def describe(e: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type name."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _retries(n: int) -> str:
    return "1 retry" if n == 1 else f"{n} retries"


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


@dataclass(frozen=True)
class _Failure:
    """What an SDK exception says, read once for the functions that word our error."""

    error: BaseException
    settings: Settings
    deployment: str | None
    attempts: int  # how many times the request was sent
    statuses: tuple[int | None, ...]  # the HTTP status of each attempt
    request: Any
    status: int | None
    code: str | None
    request_id: str | None
    message: str  # the server's message, first line

    @classmethod
    def read(cls, error: BaseException, settings: Settings, deployment: str | None, attempts: int | None,
             statuses: tuple[int | None, ...], request: Any) -> _Failure:
        raw_body = getattr(error, "body", None)
        body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
        message = str(body.get("message") or getattr(error, "message", "") or describe(error)).strip()
        return cls(
            error, settings, deployment, attempts if attempts is not None else settings.max_retries + 1, statuses,
            request, getattr(error, "status_code", None), getattr(error, "code", None) or body.get("code"),
            getattr(error, "request_id", None), message.splitlines()[0][:300] if message else "",
        )

    @property
    def host(self) -> str:
        return self.settings.endpoint_host or "the endpoint"

    @property
    def rid(self) -> str:
        return f" (request id {self.request_id})" if self.request_id else ""

    @property
    def body(self) -> dict[str, Any]:
        raw = getattr(self.error, "body", None)
        return raw if isinstance(raw, dict) else {}

    def common(self, attempts: int | None = None) -> dict[str, Any]:
        """The data every :class:`ServiceError` of this failure carries."""
        return {"status": self.status, "code": self.code, "request_id": self.request_id,
                "attempts": self.attempts if attempts is None else attempts}


def _timed_out(f: _Failure) -> AzureVisionError:
    timeout = f.settings.timeout
    return ServiceTimeoutError(
        f"No answer from {f.host} within {timeout:g} s (tried {_times(f.attempts)}). Try again, or raise the "
        f"timeout setting (e.g. timeout={int(timeout * 2)}).",
        settings=("timeout",), remedy="retry", **f.common(),
    )


def _unreachable(f: _Failure) -> AzureVisionError:
    cause = f.error.__cause__ or f.error.__context__
    reason = describe(cause) if cause else "connection failed"
    if _dropped(cause):  # the server was reached but closed the connection before the answer was complete
        return ConnectionFailedError(
            f"{f.host} dropped the connection before the answer was complete ({reason.rstrip('.')}; tried "
            f"{_times(f.attempts)}). This is usually temporary: try again.",
            remedy="retry", **f.common(),
        )
    source = f.settings.sources.get("endpoint", "")
    where = f" (set by {source})" if source and source not in ("default", "argument") else ""
    return ConnectionFailedError(
        f"Cannot reach {f.settings.endpoint}{where} ({reason}). Check the endpoint setting and your network, "
        f"or use the local emulator.",
        settings=("endpoint",), remedy="emulator", **f.common(),
    )


def _unauthenticated(f: _Failure) -> AzureVisionError:
    if f.settings.resolved_auth == "entra":
        how = "sign in again (az login) or check the credential DefaultAzureCredential picks up"
    else:
        how = "check the API key (AZURE_OPENAI_API_KEY) and that it belongs to this resource"
    return AuthError(f"{f.host} rejected the credentials (401): {how}{f.rid}.", remedy="credentials", **f.common())


def _forbidden(f: _Failure) -> AzureVisionError:
    return AuthError(
        f"{f.host} denied access (403): {f.message or 'permission denied'}. With Entra ID your identity needs the "
        f"'Cognitive Services OpenAI User' role on the resource{f.rid}.",
        remedy="credentials", **f.common(),
    )


def _not_found(f: _Failure) -> AzureVisionError:
    style = f.settings.resolved_api_style
    hint = (
        "Check the deployment name in the Azure AI Foundry portal (a new deployment can take ~5 minutes), "
        "or set the deployment setting (AZURE_OPENAI_DEPLOYMENT)"
    )
    names: tuple[str, ...] = ("deployment",)
    if style != "azure":
        hint += f"; the URL style is '{style}' (the api_style setting)"
        names += ("api_style",)
    return DeploymentNotFoundError(
        f"Deployment '{f.deployment}' was not found at {f.settings.endpoint} (404). {hint}{f.rid}.",
        settings=names, **f.common(),
    )


def _rate_limited(f: _Failure) -> AzureVisionError:
    wait = server_wait(getattr(f.error, "response", None))
    wait_text = f"; {wait.words()}" if wait is not None else ""
    return RateLimitError(
        f"Deployment '{f.deployment}' is rate limited (429) after {_retries(f.attempts - 1)}{wait_text}. "
        f"Wait and try again, send fewer/smaller images, or raise the deployment's quota{f.rid}.",
        retry_after=wait.seconds if wait is not None and wait.honoured else None,
        too_long=wait is not None and not wait.honoured, remedy="retry", **f.common(),
    )


def _bad_request(f: _Failure) -> AzureVisionError:
    if f.code == "content_filter":
        inner = f.body.get("innererror") or {}
        return content_filter_error(inner.get("content_filter_result"), where="prompt", request_id=f.request_id)
    if re.search(r"api[- ]?version", f.message, re.IGNORECASE):
        return BadRequestError(
            f"{f.host} does not accept api-version '{f.settings.api_version}' (400: {f.message.rstrip('.')}). Set a "
            f"version this resource supports: the api_version setting or OPENAI_API_VERSION, e.g. "
            f"'2024-10-21'{f.rid}.",
            settings=("api_version",), **f.common(),
        )
    return BadRequestError(f"The service rejected the request (400): {f.message}{f.rid}", **f.common())


def _other_status(f: _Failure) -> AzureVisionError:
    """A status the SDK has no class for (5xx, 408, 409, ...): how many times, what the server said, what to do."""
    status = f.status
    wait = server_wait(getattr(f.error, "response", None))
    if wait is not None and not wait.honoured and is_retryable_status(status):  # not sent again: say why
        return ServiceError(f"{f.host} answered {status}; {wait.words()}{f.rid}.", remedy="retry", **f.common())
    attempts = f.attempts if is_retryable_status(status) else 1
    same = not f.statuses or all(s == status for s in f.statuses)
    quoted = f' (server: "{f.message.rstrip()}")' if f.message else ""
    if attempts > 1 and same:
        head = f"{f.host} answered {status} on all {attempts} attempts{quoted}"
    elif attempts > 1:
        head = f"{f.host} answered {status} after {_retries(attempts - 1)}{quoted}"
    else:
        head = f"{f.host} answered {status}{quoted}"
    if status in (408, 409, 502, 503, 504):
        return ServiceError(f"{head}. The service is unavailable or overloaded: try again in a few minutes{f.rid}.",
                            remedy="retry", **f.common(attempts))
    if status is None or status < 500:
        return ServiceError(f"{head}. Try again{f.rid}.", remedy="retry", **f.common(attempts))
    words, names = _asks(f.request, f.settings)
    differs = (f"this server may not accept {' or '.join(words)}" if words
               else "check the server's log, or try again later")
    if attempts > 1 and same:
        return ServiceError(
            f"{head}. The same error every time points at the request, not at load: {differs}{f.rid}.",
            settings=names, **f.common(attempts),
        )
    return ServiceError(f"{head}. Try again; if it fails every time, {differs}{f.rid}.", settings=names,
                        remedy="retry", **f.common(attempts))


#: the SDK's exception classes (by name, most specific first) and the function that words ours
_WORDING: tuple[tuple[str, Callable[[_Failure], AzureVisionError]], ...] = (
    ("APITimeoutError", _timed_out),
    ("APIConnectionError", _unreachable),
    ("AuthenticationError", _unauthenticated),
    ("PermissionDeniedError", _forbidden),
    ("NotFoundError", _not_found),
    ("RateLimitError", _rate_limited),
    ("BadRequestError", _bad_request),
    ("APIStatusError", _other_status),
)


def map_sdk_error(error: BaseException, settings: Settings, deployment: str | None, *, attempts: int | None = None,
                  statuses: tuple[int | None, ...] = (), request: Any = None) -> AzureVisionError:
    """Turn an SDK (or transport) exception into one of ours, with a message that says what to do.

    ``attempts``: how many times the request was sent (default: once plus the ``max_retries`` setting), kept as
    the error's ``attempts``; ``statuses``: the HTTP status of each attempt (to say "on all N attempts" only when
    it is true); ``request``: the :class:`~azmm_magic.core.request.VisionRequest` (to suggest what a server may
    refuse)."""
    if isinstance(error, AzureVisionError):
        return error
    try:
        import openai
    except ImportError:  # pragma: no cover
        return ServiceError(describe(error))
    failure = _Failure.read(error, settings, deployment, attempts, statuses, request)
    for name, word in _WORDING:
        if isinstance(error, getattr(openai, name)):
            return word(failure)
    if isinstance(error, openai.OpenAIError):
        return ConfigError(f"The openai SDK refused the settings: {describe(error)}")
    return ServiceError(f"Unexpected error talking to {failure.host}: {type(error).__name__}: {describe(error)}")


__all__ = [
    "TOKEN_PARAMS",
    "content_filter_error",
    "describe",
    "filtered_categories",
    "map_sdk_error",
    "other_token_param",
]
