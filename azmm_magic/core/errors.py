"""The small exception hierarchy of azmm_magic.

Every error a user can cause or meet is an :class:`AzureVisionError` whose message is one line that says what
happened and what to do, in the terms of the Python API (setting names, keyword arguments, environment
variables): no notebook syntax. An error also says, as data, what would fix it: ``settings`` (the settings to
change) and ``remedy`` (one of :data:`REMEDIES`). Each frontend words its own hint from those (the magic: cell
options and ``%config``; the panel: its controls), never by rewording the message. No message contains a secret.
"""

from __future__ import annotations

import re
from typing import Literal

_BREAKS = re.compile(r"\s*[\r\n\v\f\x85\u2028\u2029]+\s*")

#: What, besides changing a setting, gets the user past an error:
#: ``retry`` (sending again may work), ``credentials`` (give a key or sign in), ``emulator`` (use the local
#: emulator instead), ``record`` (replay mode lacks a recorded answer: import recordings or leave replay mode),
#: ``each`` (too much for one request: ask about each image in its own request, a batch).
Remedy = Literal["retry", "credentials", "emulator", "record", "each"]
REMEDIES: tuple[Remedy, ...] = ("retry", "credentials", "emulator", "record", "each")


def one_line(text: str) -> str:
    """``text`` with its line breaks (and the spaces around them) made one space: a library's several-line message
    (libheif, FFmpeg, pandas) quoted in ours stays one line."""
    return _BREAKS.sub(" ", text).strip() if isinstance(text, str) else text


def library_text(error: BaseException, limit: int = 200) -> str:
    """A library's error message to quote inside ours: one line, at most ``limit`` characters (the cut marked)."""
    text = one_line(str(error)) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AzureVisionError(Exception):
    """Base class: a clear, one-line, secret-free message for the user.

    ``settings``: names of :class:`~azmm_magic.core.settings.Settings` fields whose change fixes the error.
    ``remedy``: one of :data:`REMEDIES`, or None.
    """

    def __init__(self, message: str = "", *, settings: tuple[str, ...] = (), remedy: Remedy | None = None) -> None:
        super().__init__(one_line(message))
        self.settings = tuple(settings)
        self.remedy: Remedy | None = remedy


class ConfigError(AzureVisionError):
    """A setting is missing or invalid (endpoint, deployment, auth, an option value)."""


class ImageInputError(AzureVisionError):
    """An image source could not be used (missing file, unsupported format, bad array, ...)."""


class ServiceError(AzureVisionError):
    """The service (Azure, an OpenAI-compatible server or the emulator) answered with an error.

    ``status`` is the HTTP status (``None`` for transport errors), ``code`` the service's error code,
    ``request_id`` the ``x-request-id`` the service gave (useful when asking Azure support) and ``attempts`` how
    many times the request was sent (retries included).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        settings: tuple[str, ...] = (),
        remedy: Remedy | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, settings=settings, remedy=remedy)
        self.attempts = attempts
        self.status = status
        self.code = code
        self.request_id = request_id


class AuthError(ServiceError):
    """401/403: the key, token or role is wrong."""


class DeploymentNotFoundError(ServiceError):
    """404: the endpoint has no such deployment (or the URL style is wrong)."""


class RateLimitError(ServiceError):
    """429 after the retries were used up (:mod:`azmm_magic.service.retry`). ``retry_after``: seconds the service
    asked to wait (or None); ``too_long``: it asked for a wait longer than is ever waited (the request is not sent again)."""

    def __init__(self, message: str, *, retry_after: float | None = None, too_long: bool = False,
                 **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after
        self.too_long = too_long


class ContentFilterError(ServiceError):
    """Azure's content filter blocked the prompt or the answer.

    ``categories`` names the filter categories Azure reported as filtered/detected.
    """

    def __init__(self, message: str, *, categories: tuple[str, ...] = (), **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.categories = categories


class BadRequestError(ServiceError):
    """400 other than the content filter: the service rejected a parameter."""


class ServiceTimeoutError(ServiceError):
    """No answer within the timeout, after retries."""


class ConnectionFailedError(ServiceError):
    """The endpoint could not be reached."""


class IncompleteAnswerError(ServiceError):
    """A streamed answer was cut off. ``partial_text`` holds what arrived before the cut."""

    def __init__(self, message: str, *, partial_text: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.partial_text = partial_text


__all__ = [
    "REMEDIES",
    "one_line",
    "library_text",
    "Remedy",
    "AzureVisionError",
    "ConfigError",
    "ImageInputError",
    "ServiceError",
    "AuthError",
    "DeploymentNotFoundError",
    "RateLimitError",
    "ContentFilterError",
    "BadRequestError",
    "ServiceTimeoutError",
    "ConnectionFailedError",
    "IncompleteAnswerError",
]
