"""The throttle parts of azmm_magic.service.throttle, each on a fake clock (times passed in, or an injected
clock): the concurrency window, the budget pacer, the token bucket, and the throttle that puts them together.
No sleeps and no wall time: a send that must wait is read from the throttle's answer, not timed."""

from __future__ import annotations

import asyncio

import pytest

from azmm_magic.core.errors import ConfigError
from azmm_magic.service.limits import RateLimits
from azmm_magic.service.throttle import BudgetPacer, BudgetWait, ConcurrencyWindow, Throttle, TokenBucket
from azmm_magic.service.throttle.pacer import FOR_NEWS, READY, WINDOW_MARGIN


def headers(remaining: int, limit: int | None = None, reset: str | None = None,
            tokens: int | None = None) -> dict[str, str]:
    out = {"x-ratelimit-remaining-requests": str(remaining)}
    if limit is not None:
        out["x-ratelimit-limit-requests"] = str(limit)
    if reset is not None:
        out["x-ratelimit-reset-requests"] = reset
    if tokens is not None:
        out["x-ratelimit-remaining-tokens"] = str(tokens)
    return out


def seen(at: float = 0.0, **kw) -> RateLimits:
    found = RateLimits.from_headers(headers(**kw), at=at)
    assert found is not None
    return found


# ----- the concurrency window --------------------------------------------------------------------------------------
def test_the_window_doubles_in_slow_start_and_grows_by_one_per_round_trip_after_a_cut():
    window = ConcurrencyWindow(16, initial=2)
    for _ in range(2):
        window.take()
    assert not window.has_room() and window.peak_in_flight == 2
    for _ in range(2):
        window.release(success=True)
    assert window.size == 4  # one per success: doubled in a round trip
    for _ in range(4):
        window.take()
    assert window.cut(sent_at=1.0, now=1.5) and window.size == 2 and window.decreases == 1
    assert not window.cut(sent_at=1.2, now=1.6)  # sent before the last cut: the same pause
    assert window.cut(sent_at=1.7, now=2.0) and window.size == 1  # sent after it: halves again
    for _ in range(4):
        window.release(success=True)
    assert window.size == 3  # additive increase: +1/size per success
    assert window.size <= window.maximum


def test_the_window_opens_at_once_to_what_the_service_takes_but_only_in_slow_start():
    window = ConcurrencyWindow(256, initial=16)
    window.take()
    window.open_to(40)
    assert window.size == 41  # in flight plus room
    window.open_to(10_000)
    assert window.size == 256  # never beyond the cap
    after_cut = ConcurrencyWindow(256, initial=16)
    after_cut.cut(0.0, 0.0)
    after_cut.open_to(100)
    assert after_cut.size == 8  # after a cut, only successes widen it


def test_the_window_is_at_least_one():
    with pytest.raises(ConfigError, match="at least 1"):
        ConcurrencyWindow(0)
    window = ConcurrencyWindow(4, initial=1)
    window.cut(0.0, 0.0)
    assert window.size == 1


# ----- the budget pacer --------------------------------------------------------------------------------------------
def test_the_pacer_keeps_the_announced_allowance_over_its_window():
    pacer = BudgetPacer()
    pacer.learn(seen(remaining=4, limit=5, reset="1s"))  # 5 requests per 1-s window
    assert pacer.announced
    for t in (0.0, 0.1, 0.2, 0.3, 0.4):
        assert pacer.wait(t, 0, in_flight=0) == READY
        pacer.record(t, 0)
    wait = pacer.wait(0.5, 0, in_flight=0)  # a sixth: when the first leaves the window (plus the margin)
    assert wait.seconds == pytest.approx(0.0 + 1.0 + WINDOW_MARGIN - 0.5) and not wait.for_news
    assert pacer.wait(1.0 + WINDOW_MARGIN + 0.001, 0, in_flight=0) == READY


def test_a_send_counts_from_when_it_left_and_a_refused_one_not_at_all():
    pacer = BudgetPacer()
    pacer.learn(seen(remaining=1, limit=2, reset="1s"))
    first = pacer.record(0.0, 0)
    second = pacer.record(0.0, 0)
    pacer.resend(second, 0.4)  # it really left 0.4 s later
    assert pacer.wait(0.5, 0, in_flight=0).seconds == pytest.approx(1.0 + WINDOW_MARGIN - 0.5)  # the first
    assert pacer.refused(first, retry_after=0.05)  # paced within the budget: the margin widens
    assert pacer.margin == pytest.approx(WINDOW_MARGIN + 0.05)
    assert pacer.wait(0.5, 0, in_flight=0) == READY  # the refused send is not counted
    for _ in range(200):
        pacer.ease()
    assert pacer.margin == pytest.approx(WINDOW_MARGIN, abs=1e-3)


def test_with_only_what_remains_the_pacer_waits_for_news():
    pacer = BudgetPacer()
    assert pacer.wait(0.0, 100, in_flight=3) == READY  # nothing known: send
    pacer.learn(seen(remaining=2, tokens=1000))
    assert pacer.wait(0.0, 100, in_flight=1) == READY
    assert pacer.wait(0.0, 100, in_flight=2) == FOR_NEWS  # the requests still unanswered take what remains
    pacer.learn(seen(remaining=50, tokens=250))
    assert pacer.wait(0.0, 100, in_flight=2) == FOR_NEWS  # 250 tokens, 2 × 100 in flight: not one more
    pacer.record(0.0, 100)
    assert pacer.room(50) == 2  # requests of the latest size the tokens still take


def test_the_pacer_holds_the_sends_the_service_still_counts():
    import time

    pacer = BudgetPacer()
    known = RateLimits(remaining_requests=3, remaining_tokens=None, limit_requests=5, window=1.0,
                       at=time.monotonic() - 0.2)
    pacer.learn(known)
    now = 100.0
    pacer.hold(known, now)
    for _ in range(3):
        assert pacer.wait(now, 0, in_flight=0) == READY
        pacer.record(now, 0)
    assert pacer.wait(now, 0, in_flight=0).seconds > 0  # the 2 sends it held are still in its window


def test_a_budget_wait_says_which_of_three_things_it_means():
    assert READY.ready and not FOR_NEWS.ready and FOR_NEWS.for_news
    assert not BudgetWait(0.5).ready and BudgetWait(0.5).seconds == 0.5


# ----- the token bucket --------------------------------------------------------------------------------------------
def test_the_bucket_refills_at_the_rate_and_holds_a_second_or_one_request():
    bucket = TokenBucket(6000, now=0.0)  # 100 tokens per second, starting empty
    assert bucket.wait(0.0, 50) == pytest.approx(0.5)
    assert bucket.wait(0.5, 50) == 0.0
    bucket.spend(50)
    assert bucket.wait(0.5, 100) == pytest.approx(1.0)
    assert bucket.wait(100.0, 100) == 0.0 and bucket.level == 100  # capacity: a second's worth
    assert bucket.wait(100.0, 300) == pytest.approx(2.0)  # a bigger request: it may fill to that size
    assert bucket.wait(103.0, 300) == 0.0


# ----- the throttle, on an injected clock ---------------------------------------------------------------------------
def test_the_throttle_halves_once_per_pause_and_climbs_back():
    now = [0.0]
    limit = Throttle(8, clock=lambda: now[0])

    async def scenario() -> None:
        sent = [await limit.acquire() for _ in range(8)]
        assert limit.concurrency.in_flight == 8 and limit.peak_in_flight == 8
        for t in sent[:3]:  # three 429s from the same burst: one decrease
            limit.release(success=False)
            limit.throttled(2.0, t)
        assert limit.window == 4 and limit.decreases == 1 and limit.resume_at == 2.0
        now[0] = 5.0
        for _ in range(5):
            limit.release(success=True)
        assert limit.concurrency.in_flight == 0
        assert limit.window == 5  # 4 + 5 × 1/window: additive increase
        t = await limit.acquire()
        limit.release(success=False)
        limit.throttled(1.0, t)  # a request sent after the last decrease: halves again
        assert limit.window == 2 and limit.decreases == 2

    asyncio.run(scenario())


def test_slow_start_opens_the_window_to_what_the_service_says_it_takes():
    limit = Throttle(256, initial=16, clock=lambda: 0.0)

    async def scenario() -> None:
        for _ in range(16):
            await limit.acquire(100)
        assert limit.window == 16
        limit.observe({"x-ratelimit-remaining-requests": "999", "x-ratelimit-remaining-tokens": "9000"})
        assert limit.window == 16 + 90  # what remains, in requests of this size, on top of those in flight
        limit.observe({"x-ratelimit-remaining-requests": "5000", "x-ratelimit-remaining-tokens": "10000000"})
        assert limit.window == 256  # never beyond the cap

    asyncio.run(scenario())


def test_a_paced_refusal_is_not_counted_and_widens_the_margin_instead_of_the_window():
    now = [0.0]
    limit = Throttle(8, initial=8, clock=lambda: now[0])

    async def scenario() -> None:
        await limit.acquire()
        now[0] = 0.5
        limit.observe(headers(4, limit=5, reset="1s"))  # the service's budget: 5 requests per 1-s window
        limit.release(success=True)
        sent = [await limit.acquire() for _ in range(4)]  # the rest of the budget
        assert limit.budget_wait(now[0], 0).seconds > 0  # a sixth would go beyond the window's allowance
        limit.release(success=False)
        limit.throttled(0.05, sent[-1])  # the service counted us later than we did
        assert limit.window == 8 and limit.decreases == 0  # a pacing error, not too many in flight
        assert limit.pacer.margin == pytest.approx(0.08)
        assert limit.concurrency.in_flight == 3
        now[0] = 2.0
        assert await limit.acquire() == 2.0  # the refused send was not counted: a slot is free

    asyncio.run(scenario())


def test_recall_counts_the_sends_the_service_still_holds_and_opens_the_window():
    import time as clock

    limit = Throttle(256, initial=16, clock=lambda: 50.0)
    limit.recall(RateLimits(remaining_requests=3, remaining_tokens=None, limit_requests=5, window=1.0,
                            at=clock.monotonic() - 0.2))

    async def scenario() -> None:
        for _ in range(3):  # what remained of the window 0.2 s ago
            await limit.acquire()
        assert limit.budget_wait(50.0, 0).seconds > 0  # the 2 sends the service counted then are still held

    asyncio.run(scenario())

    roomy = Throttle(256, initial=16, clock=lambda: 50.0)
    roomy.recall(RateLimits(remaining_requests=999, remaining_tokens=None, limit_requests=1000, window=1.0,
                            at=clock.monotonic() - 5.0))
    assert roomy.window == 256  # a whole window has passed: the allowance is whole again, the cap applies


def test_a_tpm_budget_paces_and_news_alone_frees_a_budget_that_is_spent():
    limit = Throttle(8, tpm=6000, clock=lambda: 10.0)  # the bucket started at 10.0, empty
    assert limit.budget_wait(10.0, 50).seconds == pytest.approx(0.5)
    limit.pacer.learn(seen(remaining=1))
    limit.concurrency.take()
    assert limit.budget_wait(11.0, 50) == FOR_NEWS  # one remaining, one in flight: only news helps
