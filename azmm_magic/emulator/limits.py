"""Rate limits like Azure OpenAI's: requests per minute (RPM) and tokens per minute (TPM) per deployment.

Azure enforces a deployment's RPM/TPM over short windows (1–10 s): with ``window`` seconds, at most
``rpm × window / 60`` requests (and ``tpm × window / 60`` tokens) are accepted in any sliding window of that
length. A request over the limit gets HTTP 429 with ``Retry-After`` (whole seconds, rounded up),
``retry-after-ms`` (the exact wait until enough of the window has expired) and the
``x-ratelimit-remaining-requests`` / ``x-ratelimit-remaining-tokens`` headers; rejected requests do not use
up the window. A request's token cost is its prompt estimate plus its output-token limit, as Azure counts it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Decision", "RateLimiter", "rate_limit_body"]


@dataclass(frozen=True)
class Decision:
    """The limiter's answer for one request."""

    allowed: bool
    retry_after: float  # seconds; 0 when allowed
    remaining_requests: int
    remaining_tokens: int
    which: str = ""  # "requests" or "tokens" when refused
    limit_requests: int | None = None  # the window's allowances (None: not limited)
    limit_tokens: int | None = None
    reset_requests: float = 0.0  # seconds until the request / token budget is whole again
    reset_tokens: float = 0.0

    def headers(self) -> dict[str, str]:
        """Azure's rate-limit headers for this decision (``Retry-After`` only on a refusal): remaining, limit and
        reset (``x-ratelimit-reset-*`` as a duration like ``6s`` / ``1.5s``)."""
        out = {
            "x-ratelimit-remaining-requests": str(max(0, self.remaining_requests)),
            "x-ratelimit-remaining-tokens": str(max(0, self.remaining_tokens)),
        }
        if self.limit_requests is not None:
            out["x-ratelimit-limit-requests"] = str(self.limit_requests)
            out["x-ratelimit-reset-requests"] = _duration(self.reset_requests)
        if self.limit_tokens is not None:
            out["x-ratelimit-limit-tokens"] = str(self.limit_tokens)
            out["x-ratelimit-reset-tokens"] = _duration(self.reset_tokens)
        if not self.allowed:
            out["retry-after"] = str(max(1, math.ceil(self.retry_after)))
            out["retry-after-ms"] = str(max(1, math.ceil(self.retry_after * 1000)))
        return out


class RateLimiter:
    """Sliding-window RPM/TPM limiter for one deployment (thread-safe). ``None`` limits are not enforced."""

    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window <= 0:
            raise ValueError("the rate-limit window must be > 0 seconds")
        self.rpm, self.tpm, self.window, self._clock = rpm, tpm, window, clock
        self._events: deque[tuple[float, int]] = deque()
        self._tokens = 0
        self._lock = threading.Lock()

    @property
    def request_allowance(self) -> int | None:
        """Requests accepted per window (at least 1)."""
        return None if self.rpm is None else max(1, int(self.rpm * self.window / 60))

    @property
    def token_allowance(self) -> int | None:
        """Tokens accepted per window."""
        return None if self.tpm is None else max(1, int(self.tpm * self.window / 60))

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.window:
            _, tokens = self._events.popleft()
            self._tokens -= tokens

    def check(self, tokens: int = 0) -> Decision:
        """Admit (and count) a request costing ``tokens``, or refuse it with the time to wait."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            req_cap, tok_cap = self.request_allowance, self.token_allowance
            count = len(self._events)
            wait, which = 0.0, ""
            if req_cap is not None and count >= req_cap:
                # the oldest request that must leave the window before one more fits
                oldest = self._events[count - req_cap][0]
                wait, which = oldest + self.window - now, "requests"
            if tok_cap is not None and self._tokens + tokens > tok_cap:
                if tokens > tok_cap:
                    wait_t = self.window  # can never fit; Azure still says "retry later"
                else:
                    needed, freed, wait_t = self._tokens + tokens - tok_cap, 0, 0.0
                    for at, cost in self._events:
                        freed += cost
                        if freed >= needed:
                            wait_t = at + self.window - now
                            break
                if wait_t > wait:
                    wait, which = wait_t, "tokens"
            remaining_req = (req_cap - count) if req_cap is not None else 1_000_000
            remaining_tok = (tok_cap - self._tokens) if tok_cap is not None else 10_000_000
            if which:
                return Decision(False, max(wait, 0.001), remaining_req, remaining_tok, which, req_cap, tok_cap,
                                self._reset(now), self._reset(now))
            self._events.append((now, tokens))
            self._tokens += tokens
            reset = self._reset(now)
            return Decision(True, 0.0, remaining_req - 1, remaining_tok - tokens, "", req_cap, tok_cap, reset, reset)

    def _reset(self, now: float) -> float:
        """Seconds until every request now in the window has left it."""
        return max(0.0, self._events[-1][0] + self.window - now) if self._events else 0.0


def _duration(seconds: float) -> str:
    """``x-ratelimit-reset-*`` style: ``0s``, ``1.5s``, ``6s``."""
    return f"{round(seconds, 3):g}s"


def rate_limit_body(decision: Decision, *, api_version: str | None) -> dict[str, Any]:
    """Azure's 429 body."""
    seconds = max(1, math.ceil(decision.retry_after))
    version = api_version or "v1"
    what = "call rate limit" if decision.which == "requests" else "token rate limit"
    return {
        "error": {
            "code": "429",
            "message": (
                f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {version} have "
                f"exceeded {what} of your current OpenAI S0 pricing tier. Please retry after {seconds} second"
                f"{'s' if seconds != 1 else ''}. Please go here: https://aka.ms/oai/quotaincrease if you would "
                "like to further increase the default rate limit."
            ),
        }
    }
