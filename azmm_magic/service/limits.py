"""What each deployment's rate-limit headers said last, so that a batch starts at the budget the service announced.

Every answer from Azure (and from the emulator, and from OpenAI) carries ``x-ratelimit-remaining-requests`` /
``-tokens``, and often ``x-ratelimit-limit-*`` and ``x-ratelimit-reset-*`` (the allowance and the window it is
counted over). :func:`remember` keeps the latest of them per (endpoint host, deployment) for this process;
:func:`recall` gives them back to the next batch on that deployment, which can then open its window at once
instead of finding the budget round trip by round trip. Nothing is written to disk and nothing secret is kept:
only counts and durations.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

from azmm_magic.service.memory import MAX_DEPLOYMENTS, DeploymentMemory
from azmm_magic.service.retry import MAX_SERVER_WAIT, parse_duration

#: what is remembered is forgotten after this long (a quota can change; other clients share it)
KEEP_SECONDS = 15 * 60.0
#: with no announced window, a remaining count older than this says nothing (per-minute budgets refill)
MINUTE = 60.0


@dataclass(frozen=True)
class RateLimits:
    """One response's rate-limit headers (None: not sent), and when it arrived (``time.monotonic()``).

    ``window``: seconds the allowance is counted over (from ``x-ratelimit-reset-*`` of a response; 0 unknown)."""

    remaining_requests: int | None
    remaining_tokens: int | None
    limit_requests: int | None = None
    limit_tokens: int | None = None
    window: float = 0.0
    at: float = 0.0

    @classmethod
    def from_headers(cls, headers: Any, *, at: float | None = None) -> RateLimits | None:
        """The rate-limit headers of a response (any mapping with ``get``), or None when it has none."""

        def number(name: str) -> float | None:
            try:
                value = headers.get(name)
                parsed = None if value in (None, "") else float(str(value).strip())
            except (AttributeError, TypeError, ValueError):
                return None
            return parsed if parsed is not None and math.isfinite(parsed) and parsed >= 0 else None

        remaining_requests, remaining_tokens = number("x-ratelimit-remaining-requests"), number(
            "x-ratelimit-remaining-tokens")
        if remaining_requests is None and remaining_tokens is None:
            return None
        limit_requests, limit_tokens = number("x-ratelimit-limit-requests"), number("x-ratelimit-limit-tokens")
        resets = [parse_duration(headers.get(f"x-ratelimit-reset-{kind}")) for kind in ("requests", "tokens")]
        reset = max((r for r in resets if r is not None and r <= MAX_SERVER_WAIT), default=0.0)
        return cls(
            remaining_requests=None if remaining_requests is None else int(remaining_requests),
            remaining_tokens=None if remaining_tokens is None else int(remaining_tokens),
            limit_requests=None if limit_requests is None else int(limit_requests),
            limit_tokens=None if limit_tokens is None else int(limit_tokens),
            window=reset if (limit_requests or limit_tokens) else 0.0,
            at=time.monotonic() if at is None else at,
        )

    @property
    def announced(self) -> bool:
        """Whether the service said its allowance and window (then a pacer can keep its own count)."""
        return self.window > 0 and bool(self.limit_requests or self.limit_tokens)

    def age(self, now: float | None = None) -> float:
        """Seconds since the response arrived."""
        return (time.monotonic() if now is None else now) - self.at

    def room(self, now: float | None = None) -> int | None:
        """How many more requests the service most likely takes now: the whole allowance once its window has
        passed, else what remained then; None when nothing useful is known (or what is known is too old)."""
        age = self.age(now)
        if age > KEEP_SECONDS:
            return None
        if self.announced and self.limit_requests:
            if age >= self.window:
                return self.limit_requests
            return self.remaining_requests if self.remaining_requests is not None else self.limit_requests
        if self.remaining_requests is not None and age < MINUTE:
            return self.remaining_requests
        return None


#: the budget each deployment's last response announced; per process, shared by every client (a deployment's
#: budget is shared by every caller too)
_BUDGETS: DeploymentMemory[RateLimits] = DeploymentMemory()


def _keep_longest_window(before: RateLimits, seen: RateLimits) -> RateLimits:
    """A response late in a window says how long is left of it: the window itself is the longest seen."""
    if (seen.announced and before.announced and before.window > seen.window
            and (before.limit_requests, before.limit_tokens) == (seen.limit_requests, seen.limit_tokens)):
        return replace(seen, window=before.window)
    return seen


def remember(endpoint_host: str, deployment: str, headers: Any) -> RateLimits | None:
    """Keep what ``headers`` say of ``deployment``'s budget (when they say anything); returns it."""
    seen = RateLimits.from_headers(headers)
    if seen is not None and deployment:
        seen = _BUDGETS.put(endpoint_host, deployment, seen, merge=_keep_longest_window)
    return seen


def recall(endpoint_host: str, deployment: str) -> RateLimits | None:
    """What ``deployment``'s last response said of its budget, or None (never seen, or too long ago)."""
    seen = _BUDGETS.get(endpoint_host, deployment)
    if seen is None or seen.age() > KEEP_SECONDS:
        return None
    return seen


def forget_rate_limits() -> None:
    """Forget every deployment's remembered budget (for tests and benchmarks of a first contact)."""
    _BUDGETS.clear()


__all__ = ["KEEP_SECONDS", "MAX_DEPLOYMENTS", "RateLimits", "forget_rate_limits", "recall", "remember"]
