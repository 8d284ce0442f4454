"""A token bucket for a tokens-per-minute budget (the ``tpm`` setting): each request counts its estimated tokens
(prompt estimate plus ``max_tokens``, as Azure counts them) against a bucket refilled at ``tpm / 60`` per second."""

from __future__ import annotations


class TokenBucket:
    """Tokens refilled at ``per_minute / 60`` per second, starting empty at time ``now``; it holds at most a
    second's worth (or one request, when a request is bigger). Times are given by the caller (no clock here)."""

    def __init__(self, per_minute: int, now: float) -> None:
        self.rate = per_minute / 60.0
        self.level = 0.0
        self._at = now

    def wait(self, now: float, tokens: int) -> float:
        """Seconds until a request of ``tokens`` fits (0: it fits now)."""
        capacity = max(self.rate, float(tokens))
        self.level = min(capacity, self.level + (now - self._at) * self.rate)
        self._at = now
        return 0.0 if self.level >= tokens else (tokens - self.level) / self.rate

    def spend(self, tokens: int) -> None:
        """A request of ``tokens`` was sent."""
        self.level -= tokens


__all__ = ["TokenBucket"]
