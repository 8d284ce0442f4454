"""The throttle of a batch: a slot of the concurrency window, the budget's leave and a pause after a 429, for
every send; used from one event loop (no locks needed: nothing awaits between a check and its update)."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from typing import Any

from azmm_magic.service.limits import RateLimits
from azmm_magic.service.throttle.bucket import TokenBucket
from azmm_magic.service.throttle.pacer import READY, BudgetPacer, BudgetWait, SendRecord
from azmm_magic.service.throttle.window import ConcurrencyWindow

#: the record of the send this task is making (set by Throttle.acquire, read by the HTTP request hook and on a 429)
_SEND: contextvars.ContextVar[SendRecord | None] = contextvars.ContextVar("azmm_throttle_send", default=None)


class Throttle:
    """At most ``window`` requests in flight, and no more than the service's budget allows.

    **Window** (:class:`~.window.ConcurrencyWindow`): starts at ``initial`` (default: ``maximum``), or where
    :meth:`recall` puts it, grows quickly (slow start) up to ``maximum`` — at once to what the service says it
    still takes as soon as a response says so (silence is no sign: nothing grows before the first response) — and
    is halved by a 429, at most once per pause. A 429 also pauses every new acquisition until ``retry_after``
    seconds after its request was sent (the service said so).

    **Budget** (:class:`~.pacer.BudgetPacer`): :meth:`observe` reads each response's ``x-ratelimit-*`` headers;
    :meth:`sending` (the HTTP client's request hook) counts each send from when it really left; a 429 for a send
    the pacer made within the announced budget widens its margin instead of halving the window. ``tpm`` adds a
    tokens-per-minute :class:`~.bucket.TokenBucket`. ``clock`` is injectable (tests use a fake one).
    """

    def __init__(self, maximum: int, *, minimum: int = 1, initial: int | None = None, tpm: int | None = None,
                 on_wake: Callable[[], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.concurrency = ConcurrencyWindow(maximum, minimum=minimum, initial=initial)
        self.pacer = BudgetPacer()
        self.bucket = TokenBucket(tpm, clock()) if tpm is not None else None
        self.resume_at = 0.0
        self.throttles = 0
        self.paced = 0  # acquisitions that waited for the budget
        self._clock = clock
        self._waiters: list[asyncio.Future[None]] = []
        self._on_wake = on_wake  # told whenever a slot may have opened (the runner then starts more items)

    # the figures a run reports
    @property
    def window(self) -> int:
        """The current number of requests allowed in flight."""
        return self.concurrency.size

    @property
    def peak_in_flight(self) -> int:
        return self.concurrency.peak_in_flight

    @property
    def decreases(self) -> int:
        return self.concurrency.decreases

    async def acquire(self, tokens: int = 0) -> float:
        """Wait for a free slot, for any pause to end and for the budget to allow ``tokens`` more; returns the time
        the slot was taken."""
        paced = False
        while True:
            now = self._clock()
            if self.resume_at > now:
                await asyncio.sleep(self.resume_at - now)
                continue
            if self.concurrency.has_room():
                wait = self.budget_wait(now, tokens)
                if wait.for_news and self.concurrency.in_flight == 0:
                    wait = READY  # nothing in flight will bring news: one request finds out
                if wait.ready:
                    self._take(now, tokens)
                    self.paced += paced
                    return now
                paced = True
                if not wait.for_news:
                    await asyncio.sleep(wait.seconds)
                    continue
            await self._news()

    def budget_wait(self, now: float, tokens: int) -> BudgetWait:
        """What the token bucket and the pacer say of one more request of ``tokens`` at ``now``."""
        bucket = self.bucket.wait(now, tokens) if self.bucket is not None else 0.0
        budget = self.pacer.wait(now, tokens, self.concurrency.in_flight)
        if bucket > 0 or budget.seconds > 0:
            return BudgetWait(max(bucket, budget.seconds))
        return budget

    def _take(self, now: float, tokens: int) -> None:
        self.concurrency.take()
        if self.bucket is not None:
            self.bucket.spend(tokens)
        _SEND.set(self.pacer.record(now, tokens))

    async def _news(self) -> None:
        """Wait until something may have changed (a release, a response's headers, a 429)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def sending(self) -> None:
        """The request of the slot this task took is leaving now (the HTTP client's request hook)."""
        entry = _SEND.get()
        if entry is not None:
            self.pacer.resend(entry, self._clock())

    def observe(self, headers: Any) -> None:
        """Read a response's rate-limit headers (``x-ratelimit-remaining-*``, ``-limit-*``, ``-reset-*``)."""
        seen = RateLimits.from_headers(headers)
        if seen is None:
            return
        self._learn(seen, seen.remaining_requests)
        self._wake()

    def recall(self, known: RateLimits) -> None:
        """Start from what an earlier response of this deployment said (:func:`azmm_magic.service.limits.recall`):
        the announced allowance and window, and the service's count of sends still inside that window; the window
        opens at once to what the service most likely takes now, instead of round trip by round trip."""
        self.pacer.hold(known, self._clock())
        self._learn(known, known.room())

    def _learn(self, seen: RateLimits, room: int | None) -> None:
        self.pacer.learn(seen)
        room = self.pacer.room(room)
        if room is not None:
            self.concurrency.open_to(room)

    def release(self, *, success: bool) -> None:
        """Give the slot back; a success widens the window."""
        self.concurrency.release(success=success)
        if success:
            self.pacer.ease()
        self._wake()

    def throttled(self, retry_after: float, sent_at: float) -> None:
        """A 429 for a request sent at ``sent_at``: pause everyone, and halve the window once per pause (unless
        the pacer sent it within a budget the service had announced: then its margin widens instead). The refused
        request is not counted against the budget (the service did not count it)."""
        self.throttles += 1
        now = self._clock()
        refused = _SEND.get()
        _SEND.set(None)
        paced = refused is not None and self.pacer.refused(refused, retry_after)
        # The service measured the wait from when it refused the request, which is closer to when we sent it
        # than to when a busy event loop got round to reading the 429; count from the send time.
        self.resume_at = max(self.resume_at, min(now, sent_at) + max(0.0, retry_after))
        if not paced:
            self.concurrency.cut(sent_at, now)
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self._on_wake is not None:
            self._on_wake()


__all__ = ["Throttle"]
