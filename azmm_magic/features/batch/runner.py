"""The async engine of a batch: each item prepared when its turn comes, sent through the client's pipeline inside
the batch's :class:`~azmm_magic.service.throttle.Throttle`, retried by THE retry policy
(:mod:`azmm_magic.service.retry`), and recorded in the :class:`~azmm_magic.features.batch.result.BatchResult` as
it finishes (in any order)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from azmm_magic.core.images import PreparedImage, image_options, prepare_leaf
from azmm_magic.core.request import VisionRequest
from azmm_magic.core.result import VisionResult
from azmm_magic.features.batch.plan import BatchClient, BatchItem, Plan, new_run
from azmm_magic.features.batch.preparation import (
    is_big_item,
    is_small_item,
    light_enough,
    lighten,
    preparation_pools,
)
from azmm_magic.features.batch.result import BatchResult, BatchStats
from azmm_magic.features.outcomes import Outcome, failure_of
from azmm_magic.features.progress import ProgressBar
from azmm_magic.service.limits import recall as recall_limits
from azmm_magic.service.retry import RetryPolicy, is_throttle
from azmm_magic.service.sdk import fresh_async_http_client
from azmm_magic.service.send import WaitEvent, asend
from azmm_magic.service.throttle import Throttle

INITIAL_WINDOW = 4  # requests in flight when a batch starts (slow start doubles it every round trip)
MAX_THROTTLED_ATTEMPTS = 30  # 429s one item may meet before it is recorded as failed (apart from max_retries)


class _ThrottleGate:
    """Around each attempt of one item's send: a slot of the batch's throttle (and the budget's leave) before it,
    the slot given back after it; a 429 the policy retries pauses every sender (and narrows the window)."""

    def __init__(self, throttle: Throttle, stats: BatchStats, tokens: int) -> None:
        self.throttle = throttle
        self.stats = stats
        self.tokens = tokens
        self.sent_at = 0.0

    async def enter(self) -> None:
        self.sent_at = await self.throttle.acquire(self.tokens)
        self.stats.sent += 1

    def leave(self, error: BaseException | None) -> None:
        self.throttle.release(success=error is None)
        if error is not None and is_throttle(error):
            self.stats.throttled += 1

    def retrying(self, error: BaseException, delay: float) -> None:
        if delay <= 0:  # the output-token parameter was switched: not a retry
            return
        if is_throttle(error):
            self.throttle.throttled(delay, self.sent_at)
        else:
            self.stats.retried += 1


class _Run:
    """One run of a planned batch on the running event loop (see :func:`run_plan`)."""

    def __init__(self, client: BatchClient, plan: Plan, result: BatchResult, *,
                 on_item: Callable[[int, Outcome], None] | None, prepare_workers: int | None,
                 thumbnails: bool) -> None:
        self.plan, self.result, self.on_item, self.thumbnails = plan, result, on_item, thumbnails
        s = client.settings.with_overrides(detail=plan.options.get("detail"))
        self.settings = s
        self.client = client
        self.changed = asyncio.Event()  # set whenever an item ends or a slot may have opened
        self.throttle = Throttle(plan.concurrency, initial=min(plan.concurrency, INITIAL_WINDOW), tpm=s.tpm,
                                 on_wake=self.changed.set)
        known = recall_limits(s.endpoint_host, s.deployment or "")
        if known is not None:  # an earlier answer of this deployment said its budget: start from it
            self.throttle.recall(known)
        # our own pool: see each request leave and read every response's rate-limit headers, to pace before a 429
        http = None if client.pipeline.sdk.http_client else fresh_async_http_client()
        if http is not None:
            http.event_hooks["request"].append(self._sending)
            http.event_hooks["response"].append(self._observe)
        self.pipeline = client.pipeline.with_http_client(http)
        self.cache_policy = self.pipeline.policy(use_cache=plan.use_cache, refresh=plan.refresh)
        self.retry = RetryPolicy(s.max_retries, max_throttled=MAX_THROTTLED_ATTEMPTS)
        self.opts = image_options(s.detail, s.token_rule, s.inline_urls, s.max_image_bytes)
        self.threads, self.processes, self.workers = preparation_pools(plan.items, prepare_workers)
        plan.stats.prepare_workers, plan.stats.prepare_processes = self.workers, self.processes is not None
        self.alive = 0  # items being prepared, waiting or in flight

    async def _sending(self, request: Any) -> None:
        self.throttle.sending()

    async def _observe(self, response: Any) -> None:
        self.throttle.observe(response.headers)

    async def run(self) -> BatchResult:
        started = time.perf_counter()
        tasks: set[asyncio.Task[None]] = set()
        try:
            for index in range(len(self.plan.items)):
                await self._room_for_one_more()
                task = asyncio.ensure_future(self._item(index, self._take(index)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            while tasks:
                await asyncio.gather(*list(tasks))
        except asyncio.CancelledError:
            self.result.interrupted = True
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*list(tasks), return_exceptions=True)
            raise
        finally:
            self.result.elapsed = time.perf_counter() - started
            await self._close()
        return self.result

    async def _room_for_one_more(self) -> None:
        """Wait until fewer than the window plus twice the preparing workers are alive (the preparers work that
        far ahead of the sends)."""
        while self.alive >= self.throttle.window + 2 * self.workers:
            self.changed.clear()
            await self.changed.wait()
        self.alive += 1

    def _take(self, index: int) -> BatchItem:
        """Item ``index``, which the plan no longer keeps alive from now on."""
        item = self.plan.items[index]
        self.plan.items[index] = None
        assert item is not None
        return item

    async def _item(self, index: int, item: BatchItem) -> None:
        label = self.plan.labels[index]
        try:
            request, tokens = await self._request(item)
            del item
            answer = await self.pipeline.arun(request, self.cache_policy,
                                              send=lambda r: self._send(r, tokens))
            del request
            try:
                outcome: Outcome = await self._lightened(answer)
            except asyncio.CancelledError:
                self.result.put(index, answer, label)  # answered (and cached) before the interrupt: keep it
                raise
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a failed item is recorded, never stops the others
            outcome = failure_of(index, label, e)
        finally:
            self.alive -= 1
            self.changed.set()
        self.result.put(index, outcome, label)
        if self.on_item is not None:
            self.on_item(index, outcome)

    def _build(self, item: BatchItem) -> tuple[VisionRequest, int]:
        """The item's request and the tokens it counts against a budget (prompt estimate plus ``max_tokens``)."""
        request = self.plan.request_for(self.client, item, self.opts)
        return request, request.estimate_prompt_tokens(self.settings.token_rule) + request.max_tokens

    async def _request(self, item: BatchItem) -> tuple[VisionRequest, int]:
        loop = asyncio.get_running_loop()
        if self.processes is not None and is_big_item(item):  # a camera photo: decoded on another core
            prepared = await loop.run_in_executor(self.processes, prepare_leaf, item.leaves[0], self.opts)
            item = replace(item, leaves=(prepared,))
        if is_small_item(item) or all(isinstance(one, PreparedImage) for one in item.leaves):
            # a thread hop (and the GIL handoffs it brings) costs more than the work: a small image, or one
            # prepared already (in a worker process)
            return self._build(item)
        return await loop.run_in_executor(self.threads, self._build, item)

    async def _send(self, request: VisionRequest, tokens: int) -> VisionResult:
        """Send through the throttle, retried by the policy; what this item made the batch say it waits for is
        cleared when the item is done (unless another item has said something since)."""
        stats = self.plan.stats
        said: list[str] = []

        def waiting(event: WaitEvent) -> None:
            stats.waiting = event.message()
            said.append(stats.waiting)

        try:
            return await asend(self.pipeline.sdk, request, on_wait=waiting, policy=self.retry,
                               gate=_ThrottleGate(self.throttle, stats, tokens))
        finally:
            if any(stats.waiting is s for s in said):
                stats.waiting = ""

    async def _lightened(self, answer: VisionResult) -> VisionResult:
        if light_enough(answer, self.thumbnails):
            return lighten(answer, self.thumbnails)
        return await asyncio.get_running_loop().run_in_executor(self.threads, lighten, answer, self.thumbnails)

    async def _close(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)
        if self.processes is not None:
            self.processes.shutdown(wait=False, cancel_futures=True)
        stats, throttle = self.plan.stats, self.throttle
        stats.decreases, stats.peak_in_flight = throttle.decreases, throttle.peak_in_flight
        stats.final_window, stats.paced = throttle.window, throttle.paced
        try:
            await asyncio.shield(self.pipeline.sdk.aclose())
        except BaseException:  # noqa: BLE001 - closing connections must not hide the outcome
            pass


async def run_plan(client: BatchClient, plan: Plan, result: BatchResult, *,
                   on_item: Callable[[int, Outcome], None] | None = None, prepare_workers: int | None = None,
                   thumbnails: bool = False) -> BatchResult:
    """Run a planned batch on the running event loop, filling ``result`` as items finish (in any order).

    Requests go through the client's pipeline (cache policy, usage ledger, identical requests sent once) with
    their own async HTTP pool, inside the batch's throttle. At most the window (up to ``concurrency``) plus twice
    the preparing workers are alive at once (being prepared, waiting or in flight). ``thumbnails``: a view shows
    each item's picture as it finishes, so each answer keeps a small thumbnail; otherwise an image read from a file
    keeps no pixels (see :func:`~azmm_magic.core.images.light_copy`)."""
    run = _Run(client, plan, result, on_item=on_item, prepare_workers=prepare_workers, thumbnails=thumbnails)
    return await run.run()


async def abatch(client: BatchClient, prompt: str, images: Iterable[object] | object, *,
                 on_item: Callable[[int, Outcome], None] | None = None, progress: bool = False,
                 **plan_options: Any) -> BatchResult:
    """See :meth:`VisionClient.abatch`; ``plan_options`` as for :func:`~.plan.plan_batch`."""
    plan, result = new_run(client, prompt, images, **plan_options)
    view = ProgressBar(len(plan.labels)).start() if progress else None

    def both(index: int, outcome: Outcome) -> None:
        if view is not None:
            view.add(index, outcome)
        if on_item is not None:
            on_item(index, outcome)

    try:
        return await run_plan(client, plan, result, on_item=both)
    finally:
        if view is not None:
            view.close(keep=result.interrupted)


__all__ = ["INITIAL_WINDOW", "MAX_THROTTLED_ATTEMPTS", "abatch", "run_plan"]
