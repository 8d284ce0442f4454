"""THE retry policy, for single calls and batches alike: which failures are sent again, how long to wait first,
and how a wait the server asks for is read and bounded.

The rules are the ``openai`` SDK's (``openai/_base_client.py``: ``_should_retry``, ``_calculate_retry_timeout``):

- a timeout or a connection error is retried;
- a response is retried when ``x-should-retry`` says ``true``, never when it says ``false``, else when its status
  is 408, 409, 429 or any 5xx (501 included);
- the wait is what the server asked for (``retry-after-ms``, then ``retry-after``; here also the reset of an
  exhausted ``x-ratelimit-*`` budget) when it is over 0 and at most :data:`MAX_SERVER_WAIT` seconds; a longer
  wait is never waited: the request fails at once, saying so; otherwise exponential backoff, 0.5 s doubling up to
  8 s, less up to 25 % jitter.

The SDK's own retries are off for chat calls (:meth:`~azmm_magic.service.sdk.SdkClients.chat_sync`): they are
applied here, by :mod:`azmm_magic.service.send`, so that each wait is reported while it happens and a batch can
pause every sender on a 429. :class:`RetryPolicy` adds the budget: ``max_retries`` retries, and for a batch a
separate budget of 429s (a batch waits out throttling by itself, whatever ``max_retries`` says).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

#: The longest wait a server may ask for that is waited (the SDK's ``MAX_RETRY_AFTER_DELAY``); a longer one fails
#: the request at once ("the service asked to wait 24 h") instead of pausing the kernel or a whole batch.
MAX_SERVER_WAIT = 120.0
#: the SDK's backoff (``openai/_constants.py``): 0.5 s doubling up to 8 s
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
RETRYABLE_STATUSES = frozenset({408, 409, 429})  # and every status from 500 up

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def header(response: Any, name: str) -> str | None:
    """A response header, or None (for a missing response too)."""
    headers = getattr(response, "headers", None)
    return headers.get(name) if headers is not None else None


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
    """THE reading of a server-requested wait: ``retry-after-ms``, then ``retry-after`` (seconds or an HTTP date),
    else the ``x-ratelimit-reset-*`` of an exhausted budget (``x-ratelimit-remaining-* == 0``; durations such as
    ``6m0s``). None: the server asked for nothing usable."""
    for name, unit in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = parse_duration(header(response, name), unit=unit)
        if value is not None:
            return ServerWait(value)
    resets = [parse_duration(header(response, f"x-ratelimit-reset-{kind}")) for kind in ("requests", "tokens")
              if (header(response, f"x-ratelimit-remaining-{kind}") or "").strip() == "0"]
    known = [r for r in resets if r is not None]
    return ServerWait(max(known)) if known else None


def is_retryable_status(status: int | None) -> bool:
    """The statuses the SDK retries when the server says nothing (``x-should-retry``): 408, 409, 429, 5xx."""
    return status in RETRYABLE_STATUSES or (status is not None and status >= 500)


def backoff(retry: int, *, rand: Callable[[], float] = random.random) -> float:
    """The SDK's wait before retry number ``retry`` (1-based) when the server asked for none: 0.5 s doubling up to
    8 s, less up to 25 % jitter."""
    return min(INITIAL_RETRY_DELAY * 2.0 ** min(retry - 1, 1000), MAX_RETRY_DELAY) * (1 - 0.25 * rand())


@dataclass(frozen=True)
class RetryWait:
    """The wait before sending again: ``seconds``, whether the server ``asked`` for it (Retry-After), and which
    ``retry`` (1-based) of at most ``retries`` it precedes (of its kind: see :class:`RetryPolicy`)."""

    seconds: float
    asked: bool = False
    retry: int = 1
    retries: int = 1


def retry_wait(error: BaseException, retry: int, *, rand: Callable[[], float] = random.random) -> RetryWait | None:
    """The wait before retry number ``retry`` (1-based) after ``error`` (an exception of the SDK), or None when the
    SDK's rules say it is not sent again (see the module's docstring)."""
    import openai

    if isinstance(error, openai.APIStatusError):
        response = getattr(error, "response", None)
        asked = server_wait(response)
        if asked is not None and not asked.honoured:
            return None
        should = header(response, "x-should-retry")
        if should == "false" or (should != "true" and not is_retryable_status(error.status_code)):
            return None
        if asked is not None and asked.seconds > 0:
            return RetryWait(asked.seconds, asked=True)
    elif not isinstance(error, (openai.APITimeoutError, openai.APIConnectionError)):
        return None
    return RetryWait(backoff(retry, rand=rand))


def is_throttle(error: BaseException) -> bool:
    """Whether ``error`` is a 429 (the service's "too many requests")."""
    return (getattr(error, "status_code", None) or getattr(error, "status", None)) == 429


@dataclass(frozen=True)
class RetryPolicy:
    """The budget of retries around :func:`retry_wait`: at most ``max_retries`` retries; with ``max_throttled``,
    429s have their own budget of that many (a batch: each 429 pauses every sender, see
    :mod:`azmm_magic.service.throttle`), else they count as retries like any other."""

    max_retries: int
    max_throttled: int | None = None

    def budget(self, error: BaseException) -> int:
        """How many retries ``error``'s kind may have in all."""
        return self.max_throttled if self.max_throttled is not None and is_throttle(error) else self.max_retries

    def decide(self, error: BaseException, *, retries: int, throttled: int = 0,
               rand: Callable[[], float] = random.random) -> RetryWait | None:
        """The wait before sending again after ``error``, given the ``retries`` made so far (``throttled`` of
        them after a 429), or None: not sent again (the SDK's rules say so, or the budget is spent)."""
        if self.max_throttled is not None and is_throttle(error):
            done = throttled
        else:
            done = retries - (throttled if self.max_throttled is not None else 0)
        budget = self.budget(error)
        if done >= budget:
            return None
        wait = retry_wait(error, done + 1, rand=rand)
        return None if wait is None else replace(wait, retry=done + 1, retries=budget)


__all__ = [
    "INITIAL_RETRY_DELAY",
    "MAX_RETRY_DELAY",
    "MAX_SERVER_WAIT",
    "RetryPolicy",
    "RetryWait",
    "ServerWait",
    "backoff",
    "header",
    "is_retryable_status",
    "is_throttle",
    "parse_duration",
    "retry_wait",
    "server_wait",
    "wait_words",
]
