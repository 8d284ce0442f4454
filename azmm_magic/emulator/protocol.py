"""What every emulator route shares: Azure's error type, authentication, ``api-version`` checks, JSON bodies and
the per-request log entry. The chat routes (:mod:`.app`) and the Batch API routes (:mod:`.batches`) both import
this module; it imports neither of them."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from .report import RequestError
from .versions import is_known, looks_dated

__all__ = [
    "ENTRY_KEY",
    "ApiError",
    "authenticate",
    "check_api_version",
    "log_entry",
    "read_json",
]

ENTRY_KEY = "azmm_emulator.entry"
KEY_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)
TOKEN_DENIED = (
    "Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), "
    "or have expired."
)


class ApiError(Exception):
    """An HTTP error answered with an Azure-shaped JSON body."""

    def __init__(self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def log_entry(request: Request) -> dict[str, Any]:
    """The request-log entry the recording middleware opened for this request (a throwaway dict otherwise)."""
    entry: dict[str, Any] = request.scope.get(ENTRY_KEY, {})
    return entry


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def authenticate(request: Request, config: Any, entry: dict[str, Any], *, v1: bool) -> None:
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


def check_api_version(api_version: str | None, *, lenient: bool = False) -> None:
    """Azure's classic routes require a known ``api-version`` (``lenient``: any dated one)."""
    if api_version is None:
        raise ApiError(
            400, {"error": {"code": "BadRequest", "message": "Missing required query parameter: api-version"}}
        )
    if not (looks_dated(api_version) if lenient else is_known(api_version)):
        raise ApiError(400, {"error": {"code": "BadRequest", "message": "API version not supported"}})


async def read_json(request: Request) -> dict[str, Any]:
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
