"""The budget pacer: no more requests than the service's rate-limit headers say it takes, before it refuses any.

With ``x-ratelimit-limit-*`` and ``x-ratelimit-reset-*`` (the allowance and the window it is counted over, as a
response announced them or :func:`azmm_magic.service.limits.recall` remembers them) the pacer keeps its own sliding
record of what was sent and never sends beyond the allowance. A send is counted from when the request really left
(:meth:`BudgetPacer.resend`: a burst of sends can leave well after their slots were taken); a refused request is
not counted (the service does not count it either), and a 429 met while the pacer believed the budget allowed the
send widens the margin by what the service said was missing (its clock counts a request a little after ours).
With only ``x-ratelimit-remaining-requests`` / ``-tokens`` it sends no more than what remains, minus the requests
still unanswered, and otherwise waits for news (a response's headers).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from azmm_magic.service.limits import RateLimits

WINDOW_MARGIN = 0.03  # seconds added to the service's rate-limit window (clock jitter)
#: and this share of a long window: a burst of sends reaches the service over a few hundred milliseconds (new
#: connections, its queue), so it counts them later than we do, and the sends it frees come back at once
WINDOW_MARGIN_SHARE = 0.02
#: with no window announced, sends are kept this long (a per-minute budget)
MINUTE = 60.0


@dataclass(eq=False)
class SendRecord:
    """One send as the pacer counts it: when it left, its estimated tokens, and whether it was paced within an
    announced window (compared by identity: each send is its own record)."""

    at: float
    tokens: float
    paced: bool


@dataclass(frozen=True)
class BudgetWait:
    """What the budget says of one more send: ``ready`` (send now), wait ``seconds``, or wait ``for_news`` (no
    time helps: only a response's headers, or a request in flight ending, can say the budget has room)."""

    seconds: float = 0.0
    for_news: bool = False

    @property
    def ready(self) -> bool:
        return self.seconds <= 0 and not self.for_news


READY = BudgetWait()
FOR_NEWS = BudgetWait(for_news=True)


class BudgetPacer:
    """The service's budget as its headers tell it, and the record of what was sent against it. Times are given
    by the caller (no clock here)."""

    def __init__(self) -> None:
        self.margin = WINDOW_MARGIN  # seconds added to the service's window (its clock counts a send later)
        self.tokens_per_request = 0  # the latest request's estimated tokens
        self.allow_requests: int | None = None
        self.allow_tokens: int | None = None
        self.window_seconds = 0.0
        self.remaining_requests: int | None = None
        self.remaining_tokens: int | None = None
        self._sent: deque[SendRecord] = deque()  # recent sends, oldest first
        self._sent_tokens = 0.0  # the tokens of those sends

    @property
    def announced(self) -> bool:
        """Whether the service said its allowance and the window it is counted over."""
        return self.window_seconds > 0 and (self.allow_requests is not None or self.allow_tokens is not None)

    def wait(self, now: float, tokens: int, in_flight: int) -> BudgetWait:
        """Whether a request of ``tokens`` may be sent at ``now`` with ``in_flight`` requests unanswered."""
        if self.announced:
            return BudgetWait(max(0.0, self._window_wait(now, tokens)))
        if self.remaining_requests is not None and self.remaining_requests - in_flight < 1:
            return FOR_NEWS
        if self.remaining_tokens is not None and tokens and self.remaining_tokens - in_flight * tokens < tokens:
            return FOR_NEWS
        return READY

    def _window_wait(self, now: float, tokens: int) -> float:
        """Seconds until the announced allowance takes one more request of ``tokens`` (0 or less: now)."""
        span = self.window_seconds + max(self.margin, WINDOW_MARGIN_SHARE * self.window_seconds)
        self._drop_before(now - span)
        waits = [0.0]
        if self.allow_requests is not None and len(self._sent) >= self.allow_requests:
            oldest = self._sent[len(self._sent) - self.allow_requests].at
            waits.append(oldest + span - now)
        if self.allow_tokens is not None and tokens <= self.allow_tokens:
            needed = self._sent_tokens + tokens - self.allow_tokens
            freed = 0.0
            for entry in self._sent if needed > 0 else ():
                freed += entry.tokens
                if freed >= needed:
                    waits.append(entry.at + span - now)
                    break
        return max(waits)

    def _drop_before(self, cutoff: float) -> None:
        while self._sent and self._sent[0].at <= cutoff:
            self._sent_tokens -= self._sent.popleft().tokens

    def record(self, now: float, tokens: int) -> SendRecord:
        """Count a send of ``tokens`` taken at ``now``; returns its record (for :meth:`resend` and
        :meth:`refused`)."""
        self.tokens_per_request = tokens
        if self.window_seconds <= 0:  # the service's window is not known yet: keep the last minute's sends
            self._drop_before(now - MINUTE)
        entry = SendRecord(now, float(tokens), self.window_seconds > 0)
        self._append(entry)
        return entry

    def _append(self, entry: SendRecord) -> None:
        self._sent.append(entry)
        self._sent_tokens += entry.tokens

    def resend(self, entry: SendRecord, now: float) -> None:
        """The request of ``entry`` is leaving at ``now``: count it from then (which keeps the record in time
        order: every other send was counted at or before now)."""
        if self._forget(entry):
            entry.at = now
            self._append(entry)

    def _forget(self, entry: SendRecord) -> bool:
        """Take ``entry`` out of the record (searched from the newest end, where it usually is)."""
        for i in range(len(self._sent) - 1, -1, -1):
            if self._sent[i] is entry:
                del self._sent[i]
                self._sent_tokens -= entry.tokens
                return True
        return False

    def refused(self, entry: SendRecord, retry_after: float) -> bool:
        """The send of ``entry`` met a 429: it is not counted. Returns whether it was paced within the announced
        budget (a pacing error: the service counted our sends a little later than we did), in which case the
        margin widens by what the service said was missing."""
        if not self._forget(entry):
            return False
        paced = entry.paced and self.window_seconds > 0
        if paced:
            self.margin = min(max(self.margin, WINDOW_MARGIN + retry_after), 0.1 * self.window_seconds)
        return paced

    def ease(self) -> None:
        """A success: a widened margin eases back towards :data:`WINDOW_MARGIN`."""
        self.margin = WINDOW_MARGIN + (self.margin - WINDOW_MARGIN) * 0.97

    def learn(self, seen: RateLimits) -> None:
        """Take in what a response (or the memory) says of the budget."""
        self.remaining_requests, self.remaining_tokens = seen.remaining_requests, seen.remaining_tokens
        if seen.announced:  # a fresh admission's reset is the whole window
            self.window_seconds = max(self.window_seconds, seen.window)
            self.allow_requests, self.allow_tokens = seen.limit_requests, seen.limit_tokens

    def room(self, room: int | None) -> int | None:
        """``room`` (requests the service takes now) limited by the tokens that remain, in requests of the
        latest size."""
        if room is not None and self.remaining_tokens is not None and self.tokens_per_request > 0:
            return min(room, self.remaining_tokens // self.tokens_per_request)
        return room

    def hold(self, known: RateLimits, now: float) -> None:
        """Count the sends the service still held in its window when ``known`` was said (``known.age()`` seconds
        ago): they stay counted until the window has passed them."""
        age = known.age()
        if not (known.announced and age < known.window and known.limit_requests
                and known.remaining_requests is not None):
            return
        used = max(0, known.limit_requests - known.remaining_requests)
        used_tokens = 0.0
        if known.limit_tokens and known.remaining_tokens is not None:
            used_tokens = max(0.0, float(known.limit_tokens - known.remaining_tokens))
        for _ in range(used):
            self._append(SendRecord(now - age, used_tokens / used, True))


__all__ = ["FOR_NEWS", "READY", "WINDOW_MARGIN", "WINDOW_MARGIN_SHARE", "BudgetPacer", "BudgetWait", "SendRecord"]
