"""Interactive batch: one prompt over many images, one request per image, concurrently and resumably.

``VisionClient.batch(prompt, images)`` / ``abatch`` (and ``%%azure_vision -i "photos/**/*.jpg" --each``) land here:

- **Lazy and bounded.** Globs and lists are expanded to a list of sources first (cheap: paths, not pixels); each
  image is read, decoded and prepared only when its turn comes, in a small thread pool. At most
  ``2 × concurrency`` items are alive at once (being prepared, waiting, or in flight), and a finished item keeps
  only a small JPEG thumbnail, so memory does not grow with the number of images.
- **Concurrent at the quota.** Requests go out on the SDK's async client, at most ``concurrency`` at a time. The
  SDK's own retries are switched off for batch requests (``max_retries=0``) so that a 429 reaches this module:
  every sender then pauses for the ``retry-after-ms`` / ``Retry-After`` the service gave, and the window is
  halved (multiplicative decrease, at most once per pause); each success widens it again by ``1/window``
  (additive increase: about +1 per round trip), up to ``concurrency``. Timeouts, connection errors and 5xx are
  retried with exponential backoff up to the ``max_retries`` setting.
- **Every outcome kept.** A failed item becomes a :class:`BatchFailure` (our one-line message) and never stops the
  others. Answers go into the answer cache as they arrive, so an interrupted run keeps what finished, and a
  re-run sends only what is missing.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from azmm_magic.core import views
from azmm_magic.core.errors import (
    AzureVisionError,
    ConfigError,
    ConnectionFailedError,
    RateLimitError,
    ServiceError,
    ServiceTimeoutError,
)
from azmm_magic.core.images import ImageOptions, image_options, leaf_label, prepare_leaf, small_copy
from azmm_magic.core.images import expand_sources as expand_leaves
from azmm_magic.core.request import VisionRequest
from azmm_magic.core.result import VisionResult
from azmm_magic.core.video import DEFAULT_FRAMES, VideoFrame, VideoFrames
from azmm_magic.features.outcomes import BatchFailure, Outcome, failure_of, item_source, item_status
from azmm_magic.features.progress import ProgressBar
from azmm_magic.features.rows import as_rows, row_items
from azmm_magic.service.errors import map_sdk_error
from azmm_magic.service.sdk import fresh_async_http_client
from azmm_magic.service.send import asend

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.client import VisionClient

MAX_THROTTLED_ATTEMPTS = 30  # 429s one item may meet before it is recorded as failed
_RETRYABLE_STATUS = frozenset({408, 409, 500, 502, 503, 504})


class BatchResult(Sequence[Outcome]):
    """The outcome of a batch, in input order: a :class:`VisionResult` per answered image and a
    :class:`BatchFailure` per image that got none.

    ``results`` (answers only), ``failures``, ``sources``, ``to_records()`` (list of dicts), ``to_dataframe()``
    (needs pandas). ``interrupted`` is True when the run was stopped early: then it holds what finished, and
    ``total`` says how many items the run had. ``elapsed`` is the wall time in seconds.

    To keep memory bounded, each result's ``images`` hold a small JPEG thumbnail in ``data``; ``width``,
    ``height`` and ``sha256`` still describe the image that was sent.
    """

    def __init__(self, outcomes: Iterable[Outcome] = (), *, total: int | None = None, prompt: str = "") -> None:
        self._by_index: dict[int, Outcome] = {}
        self._sources: dict[int, str] = {}
        self._lock = threading.Lock()
        self.prompt = prompt
        self.interrupted = False
        self.elapsed = 0.0
        self.notices: list[str] = []
        self.stats: BatchStats | None = None
        self.frame: Any = None  # the input DataFrame of a batch over its rows
        self.rows: list[Any] | None = None  # each item's row index label (a batch over DataFrame rows)
        self.prompts: list[str] | None = None  # each item's prompt, when it differs per item
        for i, outcome in enumerate(outcomes):
            self.put(i, outcome)
        self.total = total if total is not None else len(self._by_index)

    # filled while the batch runs (from one thread at a time, under a lock)
    def put(self, index: int, outcome: Outcome, source: str | None = None) -> None:
        """Record the outcome of item ``index`` (``source`` defaults to the outcome's own label)."""
        with self._lock:
            self._by_index[index] = outcome
            self._sources[index] = source if source is not None else item_source(outcome)

    def source_of(self, index: int) -> str:
        """The source label of the item at input position ``index``."""
        with self._lock:
            return self._sources.get(index) or item_source(self._by_index[index])

    def row_of(self, index: int) -> Any:
        """The DataFrame row index label of item ``index`` (None for a batch that is not over rows)."""
        return self.rows[index] if self.rows is not None and index < len(self.rows) else None

    def prompt_of(self, index: int) -> str:
        """The prompt item ``index`` was asked (filled in from its row for a batch over DataFrame rows)."""
        return self.prompts[index] if self.prompts is not None and index < len(self.prompts) else self.prompt

    def _items(self) -> list[Outcome]:
        with self._lock:
            return [self._by_index[i] for i in sorted(self._by_index)]

    def indices(self) -> list[int]:
        """Input positions of the items held (all of ``range(total)`` unless interrupted)."""
        with self._lock:
            return sorted(self._by_index)

    def __len__(self) -> int:
        return len(self._by_index)

    @overload
    def __getitem__(self, i: int) -> Outcome: ...

    @overload
    def __getitem__(self, i: slice) -> list[Outcome]: ...

    def __getitem__(self, i: int | slice) -> Outcome | list[Outcome]:
        return self._items()[i]

    def __iter__(self) -> Iterator[Outcome]:
        return iter(self._items())

    @property
    def results(self) -> list[VisionResult]:
        """The answers (fresh and cached), in input order."""
        return [o for o in self._items() if isinstance(o, VisionResult)]

    @property
    def failures(self) -> list[BatchFailure]:
        """The items that got no answer, in input order."""
        return [o for o in self._items() if isinstance(o, BatchFailure)]

    @property
    def sources(self) -> list[str]:
        """The source label (path, URL, ``<PIL.Image ...>``) of each item held, in input order."""
        return [self.source_of(i) for i in self.indices()]

    @property
    def missing(self) -> int:
        """Items of the run that have no outcome (only after an interrupt)."""
        return max(0, self.total - len(self))

    def counts(self) -> dict[str, int]:
        """``{"ok": n, "cached": n, "failed": n, "missing": n}`` (expired/cancelled count as failed)."""
        out = {"ok": 0, "cached": 0, "failed": 0}
        for o in self._items():
            status = item_status(o)
            out[status if status in out else "failed"] += 1
        out["missing"] = self.missing
        return out

    def summary(self) -> str:
        """One line: ``200 images · 150 answered · 48 cached · 2 failed · 12.3 s``."""
        c = self.counts()
        parts = [f"{self.total} image{'s' if self.total != 1 else ''}", f"{c['ok']} answered", f"{c['cached']} cached",
                 f"{c['failed']} failed"]
        if c["missing"]:
            parts.append(f"{c['missing']} not run (interrupted: re-run to send only those)")
        if self.elapsed:
            parts.append(f"{self.elapsed:.1f} s")
        return " · ".join(parts + self.notices)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per item: index, source, status, text, error, finish_reason, tokens, elapsed, deployment..."""
        records = []
        with self._lock:
            pairs = sorted(self._by_index.items())
        for index, o in pairs:
            record: dict[str, Any] = {"index": index, "source": self.source_of(index), "status": item_status(o)}
            if isinstance(o, BatchFailure):
                record.update(text=None, error=o.error, error_kind=o.kind, finish_reason=None, prompt_tokens=None,
                              completion_tokens=None, elapsed=None, deployment=None, request_id=None, cached=False)
            else:
                record.update(
                    text=o.text, error=None, error_kind=None, finish_reason=o.finish_reason,
                    prompt_tokens=o.usage.prompt_tokens, completion_tokens=o.usage.completion_tokens,
                    elapsed=o.elapsed, deployment=o.deployment, request_id=o.request_id, cached=o.cached,
                )
                record.update(_record_extra(o))
            records.append(record)
        return records

    def to_dataframe(self) -> Any:
        """A pandas DataFrame of :meth:`to_records` (pandas is an optional dependency).

        For a batch over DataFrame rows: the input rows (same index, all input columns) plus ``answer``, the
        structured answer's fields as columns (``--schema`` / ``response_format=``), ``error``, ``cached``,
        ``prompt_tokens`` and ``completion_tokens`` (a row not run, after an interrupt, has empty cells). An output
        name that is already an input column gets an ``answer_`` prefix.
        """
        try:
            import pandas as pd  # type: ignore[import-untyped]
        except ImportError as e:
            raise ConfigError("to_dataframe() needs pandas: pip install pandas (or use to_records()).") from e
        if self.frame is None:
            return pd.DataFrame.from_records(self.to_records())
        from azmm_magic.features.rows import answer_columns

        return answer_columns(self.frame, {i: o for i, o in zip(self.indices(), self, strict=True)})

    # ----- display ---------------------------------------------------------------------------------------------
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(views.plain(self))

    def __repr__(self) -> str:
        return f"BatchResult({self.summary()})"


def _record_extra(result: VisionResult) -> dict[str, Any]:
    """Per-item fields other features add to a result (e.g. parsed JSON as ``data``), when present."""
    extra: dict[str, Any] = {}
    for name in ("data", "parsed"):
        value = getattr(result, name, None)
        if value is not None:
            extra[name] = value
    return extra


class BatchInterrupted(KeyboardInterrupt):
    """Raised by :meth:`VisionClient.batch` on Ctrl-C / a kernel interrupt. ``result`` is the partial
    :class:`BatchResult` (everything that finished is also in the cache: re-running sends only the rest)."""

    def __init__(self, result: BatchResult) -> None:
        super().__init__(f"batch interrupted: {result.summary()}")
        self.result = result


# ----- the adaptive concurrency window (AIMD) ---------------------------------------------------------------------
class AdaptiveLimit:
    """At most ``window`` holders at once; the window halves on a throttle and grows by ``1/window`` per success.

    A throttle also pauses every new acquisition until ``retry_after`` seconds have passed (the service said so).
    The window shrinks at most once per pause: 429s for requests sent before the last decrease do not count again.
    Used from one event loop (no locks needed: nothing awaits between a check and its update).
    """

    def __init__(self, maximum: int, *, minimum: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        if maximum < 1:
            raise ConfigError(f"concurrency must be at least 1, got {maximum}")
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.limit = float(maximum)
        self.in_flight = 0
        self.peak_in_flight = 0
        self.throttles = 0
        self.decreases = 0
        self.resume_at = 0.0
        self._last_decrease = float("-inf")
        self._clock = clock
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def window(self) -> int:
        """The current number of requests allowed in flight."""
        return max(self.minimum, int(self.limit))

    async def acquire(self) -> float:
        """Wait for a free slot (and for any pause to end); returns the time the slot was taken."""
        while True:
            pause = self.resume_at - self._clock()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            if self.in_flight < self.window:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                return self._clock()
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self, *, success: bool) -> None:
        """Give the slot back; a success widens the window by ``1/window`` (about +1 per round trip)."""
        self.in_flight -= 1
        if success:
            self.limit = min(float(self.maximum), self.limit + 1.0 / max(1.0, self.limit))
        self._wake()

    def throttled(self, retry_after: float, sent_at: float) -> None:
        """A 429 for a request sent at ``sent_at``: pause everyone, and halve the window once per pause."""
        self.throttles += 1
        now = self._clock()
        # The service measured the wait from when it refused the request, which is closer to when we sent it
        # than to when a busy event loop got round to reading the 429; count from the send time.
        self.resume_at = max(self.resume_at, min(now, sent_at) + max(0.0, retry_after))
        if sent_at > self._last_decrease:
            self.limit = max(float(self.minimum), self.limit / 2)
            self._last_decrease = now
            self.decreases += 1
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


# ----- the engine ----------------------------------------------------------------------------------------------
@dataclass
class BatchStats:
    """What a run did, for benchmarks and the footer: requests sent, 429s met, window changes, peak in flight."""

    sent: int = 0
    throttled: int = 0
    retried: int = 0
    decreases: int = 0
    peak_in_flight: int = 0
    final_window: int = 0


@dataclass(frozen=True)
class BatchItem:
    """One request of a batch: its image leaves (one image; a window of video frames; a DataFrame row's images),
    its label, and its own prompt when it has one (a DataFrame row's filled-in prompt)."""

    leaves: tuple[Any, ...]
    label: str
    prompt: str | None = None
    row: Any = None


@dataclass
class _Plan:
    prompt: str
    leaves: list[Any]  # one BatchItem per request (the runner hands each to request_for)
    labels: list[str]
    options: dict[str, Any]
    concurrency: int
    use_cache: bool
    refresh: bool
    stats: BatchStats = field(default_factory=BatchStats)
    frame: Any = None  # the input DataFrame of a batch over its rows

    def request_for(self, client: VisionClient, item: BatchItem, opts: ImageOptions) -> VisionRequest:
        """The request of one item: its images prepared now, its own prompt if it has one."""
        images = [prepare_leaf(leaf, opts) for leaf in item.leaves]
        return client.prepare(item.prompt if item.prompt is not None else self.prompt, images, **self.options)

    @property
    def rows(self) -> list[Any] | None:
        return [item.row for item in self.leaves] if self.frame is not None else None

    @property
    def prompts(self) -> list[str] | None:
        return [item.prompt for item in self.leaves] if self.frame is not None else None


def expand_sources(images: Iterable[object] | object) -> tuple[list[Any], list[str]]:
    """Expand globs, lists and single sources into per-image leaves and their labels (nothing is decoded yet)."""
    leaves = expand_leaves(images)
    return leaves, [leaf_label(leaf) for leaf in leaves]


def batch_items(
    prompt: str,
    images: Iterable[object] | object,
    *,
    column: str | None = None,
    frames: int | None = None,
    frames_per_request: int | None = None,
) -> tuple[list[BatchItem], Any]:
    """The requests of a batch and the input DataFrame (None unless ``images`` is one): one item per image, per
    DataFrame row (its prompt filled in from the row), or per window of ``frames_per_request`` video frames."""
    rows = as_rows(images, column)
    if rows is not None:
        return [BatchItem(r.leaves, r.label, r.prompt, r.row) for r in row_items(rows, prompt)], rows.frame
    if frames is not None or frames_per_request is not None:
        images = VideoFrames(images, frames or DEFAULT_FRAMES, frames_per_request)
    items: list[BatchItem] = []
    window: list[Any] = []
    for leaf in expand_leaves(images):
        if window and not (isinstance(leaf, VideoFrame) and leaf.group == window[0].group
                           and len(window) < (leaf.per_request or 1)):
            items.append(_window(window))
            window = []
        if isinstance(leaf, VideoFrame) and (leaf.per_request or 1) > 1:
            window.append(leaf)
        else:
            items.append(BatchItem((leaf,), leaf_label(leaf)))
    if window:
        items.append(_window(window))
    return items, None


def _window(frames: list[Any]) -> BatchItem:
    label = frames[0].label if len(frames) == 1 else f"{frames[0].label} to {frames[-1].label.rsplit(' @ ', 1)[-1]}"
    return BatchItem(tuple(frames), label)


_ITEM_OPTIONS = ("column", "frames", "frames_per_request")


def plan_batch(
    client: VisionClient,
    prompt: str,
    images: Iterable[object] | object,
    *,
    concurrency: int | None = None,
    use_cache: bool = True,
    refresh: bool = False,
    **options: Any,
) -> _Plan:
    """Validate everything that would make every item fail (prompt, options, settings), then expand sources.

    ``column``, ``frames`` and ``frames_per_request`` (see :func:`batch_items`) may be among ``options``."""
    item_options = {k: options.pop(k) for k in _ITEM_OPTIONS if k in options}
    client.prepare(prompt, (), **options)  # prompt and option checks, no images
    client.settings.with_overrides(deployment=options.get("deployment")).require()
    conc = int(concurrency if concurrency is not None else client.settings.concurrency)
    if conc < 1:
        raise ConfigError(f"concurrency must be at least 1, got {conc}.")
    items, frame = batch_items(prompt, images, **item_options)
    if not items:
        raise ConfigError("No images to send: give at least one image (a path, glob, URL or object).")
    return _Plan(prompt, list(items), [item.label for item in items], dict(options), conc, use_cache, refresh,
                 frame=frame)


@dataclass(frozen=True)
class BatchEstimate:
    """What a batch would send (``--each --dry-run``): one request per image, nothing sent.

    ``first`` is the first item's request (its body is what every item's looks like); ``input_tokens`` the
    estimated input tokens of all items (images whose size cannot be known without fetching, e.g. URLs, are
    counted as unknown); ``output_ceiling`` the most output tokens the batch can be billed (items × max_tokens).
    """

    count: int
    first: VisionRequest
    input_tokens: int
    unknown: int
    output_ceiling: int


def estimate_batch(client: VisionClient, prompt: str, images: Iterable[object] | object, **options: Any) -> BatchEstimate:
    """Build the first item's request and estimate the whole batch from the images' sizes (read from file headers
    where possible: no image is decoded but the first)."""
    from azmm_magic.core.images import estimate_image_tokens, probe_size

    item_options = {k: options.pop(k) for k in _ITEM_OPTIONS if k in options}
    items, _ = batch_items(prompt, images, **item_options)
    if not items:
        raise ConfigError("No images to send: give at least one image (a path, glob, URL or object).")
    s = client.settings.with_overrides(detail=options.get("detail"))
    opts = image_options(s.detail, s.token_rule, s.inline_urls, s.max_image_bytes)
    plan = _Plan(prompt, items, [], dict(options), 1, True, False)
    first = plan.request_for(client, items[0], opts)
    images_tokens = sum(i.estimate_tokens(s.detail, s.token_rule) for i in first.images)
    text_tokens = first.estimate_prompt_tokens(s.token_rule) - images_tokens
    tokens, unknown = first.estimate_prompt_tokens(s.token_rule), 0
    for item in items[1:]:
        tokens += text_tokens
        if item.prompt is not None:  # a row's own prompt: its length differs from the first row's
            tokens += (len(item.prompt) - len(first.prompt)) // 4
        for leaf in item.leaves:
            size = probe_size(leaf)
            if size is None:
                unknown += 1
                continue
            tokens += estimate_image_tokens(size[0], size[1], s.detail, s.token_rule)
    return BatchEstimate(len(items), first, tokens, unknown, len(items) * first.max_tokens)


def _lighten(result: VisionResult) -> VisionResult:
    return result.with_(images=tuple(small_copy(i) for i in result.images))


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, (ServiceTimeoutError, ConnectionFailedError)):
        return True
    return isinstance(error, ServiceError) and not isinstance(error, RateLimitError) and error.status in _RETRYABLE_STATUS


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: ~0.5, 1, 2, 4 ... s, at most 20 s."""
    return min(20.0, 0.5 * 2 ** (attempt - 1)) * (0.75 + random.random() / 2)


async def _send_adaptive(
    twin: VisionClient, request: VisionRequest, limit: AdaptiveLimit, plan: _Plan, max_retries: int
) -> VisionResult:
    """Send one request inside the adaptive window; 429s pause and shrink the window, then the item is retried."""
    throttled = retried = 0
    while True:
        sent_at = await limit.acquire()
        plan.stats.sent += 1
        try:
            result = await asend(twin.sdk, request)
        except RateLimitError as e:
            limit.release(success=False)
            throttled += 1
            plan.stats.throttled += 1
            if throttled > MAX_THROTTLED_ATTEMPTS:
                raise _recount(e, twin, request, throttled + retried - 1) from None
            limit.throttled(e.retry_after if e.retry_after is not None else _backoff(throttled), sent_at)
        except AzureVisionError as e:
            limit.release(success=False)
            if not _is_retryable(e) or retried >= max_retries:
                raise _recount(e, twin, request, throttled + retried) from None
            retried += 1
            plan.stats.retried += 1
            await asyncio.sleep(_backoff(retried))
        except BaseException:
            limit.release(success=False)
            raise
        else:
            limit.release(success=True)
            return result


def _recount(error: AzureVisionError, twin: VisionClient, request: VisionRequest, retries: int) -> AzureVisionError:
    """The final error of an item, its message rebuilt with the retries the item really had.

    The batch retries by itself (the twin's SDK retries are off), so the twin's message would say "after 0
    retries" / "tried once" even after several attempts; the SDK error it was mapped from is its ``__context__``.
    """
    if retries <= 0:
        return error
    import openai

    sdk_error = error.__context__
    if not isinstance(sdk_error, openai.APIError):
        return error
    return map_sdk_error(sdk_error, twin.settings.with_overrides(max_retries=retries), request.deployment)


async def run_plan(
    client: VisionClient,
    plan: _Plan,
    result: BatchResult,
    *,
    on_item: Callable[[int, Outcome], None] | None = None,
    prepare_workers: int | None = None,
) -> BatchResult:
    """Run a planned batch on the running event loop, filling ``result`` as items finish (in any order).

    Requests go through the client's pipeline (cache policy, usage ledger, identical requests sent once) on a
    twin client with the SDK's retries off and its own async HTTP pool; this module adds the adaptive window."""
    started = time.perf_counter()
    twin = client.derive(max_retries=0, http_client=None if client.sdk.http_client else fresh_async_http_client())
    policy = twin.policy(use_cache=plan.use_cache, refresh=plan.refresh)
    s = twin.settings.with_overrides(detail=plan.options.get("detail"))
    opts = image_options(s.detail, s.token_rule, s.inline_urls, s.max_image_bytes)
    limit = AdaptiveLimit(plan.concurrency)
    slots = asyncio.Semaphore(2 * plan.concurrency)
    workers = prepare_workers or max(1, min(plan.concurrency, os.cpu_count() or 2, 4))
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="azmm-batch-prepare")
    loop = asyncio.get_running_loop()
    max_retries = client.settings.max_retries

    def build(item: BatchItem) -> VisionRequest:
        return plan.request_for(twin, item, opts)

    async def adaptive(request: VisionRequest) -> VisionResult:
        return await _send_adaptive(twin, request, limit, plan, max_retries)

    async def item(index: int, leaf: Any) -> None:
        label = plan.labels[index]
        try:
            request = await loop.run_in_executor(executor, build, leaf)
            answer = await twin.pipeline.arun(request, policy, send=adaptive)
            del request
            try:
                outcome: Outcome = await loop.run_in_executor(executor, _lighten, answer)
            except asyncio.CancelledError:
                result.put(index, answer, label)  # answered (and cached) before the interrupt: keep it
                raise
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a failed item is recorded, never stops the others
            outcome = failure_of(index, label, e)
        finally:
            slots.release()
        result.put(index, outcome, label)
        if on_item is not None:
            on_item(index, outcome)

    tasks: set[asyncio.Task[None]] = set()
    try:
        for index, leaf in enumerate(plan.leaves):
            await slots.acquire()
            task = asyncio.ensure_future(item(index, leaf))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            plan.leaves[index] = None  # the plan no longer keeps the source alive
        while tasks:
            await asyncio.gather(*list(tasks))
    except asyncio.CancelledError:
        result.interrupted = True
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*list(tasks), return_exceptions=True)
        raise
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        result.elapsed = time.perf_counter() - started
        plan.stats.decreases = limit.decreases
        plan.stats.peak_in_flight = limit.peak_in_flight
        plan.stats.final_window = limit.window
        try:
            await asyncio.shield(twin.aclose())
        except BaseException:  # noqa: BLE001 - closing connections must not hide the outcome
            pass
    return result


# ----- sync and async entry points ------------------------------------------------------------------------------
def _new_run(client: VisionClient, prompt: str, images: Iterable[object] | object, **plan_options: Any) -> tuple[Any, BatchResult]:
    """The plan of a run and its empty result (shared by :func:`abatch` and :func:`run_batch`)."""
    plan = plan_batch(client, prompt, images, **plan_options)
    result = BatchResult(total=len(plan.leaves), prompt=prompt)
    result.stats = plan.stats
    result.frame, result.rows, result.prompts = plan.frame, plan.rows, plan.prompts
    return plan, result


async def abatch(
    client: VisionClient,
    prompt: str,
    images: Iterable[object] | object,
    *,
    concurrency: int | None = None,
    use_cache: bool = True,
    refresh: bool = False,
    on_item: Callable[[int, Outcome], None] | None = None,
    progress: bool = False,
    **options: Any,
) -> BatchResult:
    """See :meth:`VisionClient.abatch`."""
    plan, result = _new_run(client, prompt, images, concurrency=concurrency, use_cache=use_cache, refresh=refresh,
                            **options)
    view = ProgressBar(len(plan.labels)).start() if progress else None
    user = on_item

    def both(index: int, outcome: Outcome) -> None:
        if view is not None:
            view.add(index, outcome)
        if user is not None:
            user(index, outcome)

    try:
        return await run_plan(client, plan, result, on_item=both)
    finally:
        if view is not None:
            view.close(keep=result.interrupted)


def run_batch(
    client: VisionClient,
    prompt: str,
    images: Iterable[object] | object,
    *,
    concurrency: int | None = None,
    use_cache: bool = True,
    refresh: bool = False,
    on_item: Callable[[int, Outcome], None] | None = None,
    progress: bool = True,
    view_factory: Callable[[Sequence[str]], Any] | None = None,
    **options: Any,
) -> BatchResult:
    """See :meth:`VisionClient.batch`. The event loop runs in a worker thread (so this also works inside Jupyter,
    whose own loop is running); progress, gallery and ``on_item`` run in the calling thread. Ctrl-C cancels the
    requests in flight and raises :class:`BatchInterrupted` holding what finished. ``view_factory(labels)``
    replaces the default progress bar (the magic passes one that also draws the gallery)."""
    import queue

    plan, result = _new_run(client, prompt, images, concurrency=concurrency, use_cache=use_cache, refresh=refresh,
                            **options)
    view: Any = None
    if view_factory is not None:
        view = view_factory(plan.labels)
        if plan.frame is not None and hasattr(view, "describe_rows"):
            view.describe_rows(result.rows, result.prompts)
    elif progress:
        view = ProgressBar(len(plan.labels))
    if view is not None:
        view.start()
    events: queue.SimpleQueue[tuple[int, Outcome]] = queue.SimpleQueue()
    state: dict[str, Any] = {}
    ready = threading.Event()

    async def main() -> BatchResult:
        state["loop"] = asyncio.get_running_loop()
        state["task"] = asyncio.current_task()
        ready.set()
        return await run_plan(client, plan, result, on_item=lambda i, o: events.put((i, o)))

    def worker() -> None:
        try:
            asyncio.run(main())
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            state["error"] = e
        finally:
            ready.set()

    def drain() -> None:
        while True:
            try:
                index, outcome = events.get_nowait()
            except queue.Empty:
                return
            if view is not None:
                view.add(index, outcome)
            if on_item is not None:
                on_item(index, outcome)

    thread = threading.Thread(target=worker, name="azmm-batch", daemon=True)
    thread.start()
    try:
        try:
            while thread.is_alive():
                thread.join(0.05)
                drain()
        except KeyboardInterrupt:
            ready.wait(5)
            loop, task = state.get("loop"), state.get("task")
            if loop is not None and task is not None and not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
            thread.join()
            drain()
            result.interrupted = True
            if view is not None:
                view.close(keep=True)
                view = None
            raise BatchInterrupted(result) from None
        drain()
    finally:
        if view is not None:
            view.close(keep=result.interrupted)
    error = state.get("error")
    if error is not None:
        if isinstance(error, asyncio.CancelledError):
            result.interrupted = True
            raise BatchInterrupted(result) from None
        raise error
    return result


__all__ = [
    "AdaptiveLimit",
    "Outcome",
    "item_source",
    "item_status",
    "BatchFailure",
    "BatchInterrupted",
    "BatchResult",
    "BatchEstimate",
    "BatchItem",
    "batch_items",
    "BatchStats",
    "estimate_batch",
    "abatch",
    "expand_sources",
    "run_batch",
]
