"""Interactive batch: one prompt over many images, one request per image, concurrently and resumably.

``VisionClient.batch(prompt, images)`` / ``abatch`` (and ``%%azure_vision -i "photos/**/*.jpg" --each``) land here:

- **Lazy and bounded.** Globs and lists are expanded to a list of sources first (cheap: paths, not pixels); each
  image is read, decoded and prepared only when its turn comes, in a small thread pool. At most
  ``2 × concurrency`` items are alive at once (being prepared, waiting, or in flight), and a finished item keeps
  at most a small thumbnail (made only when a gallery shows it, or for an image that is not a file), so memory
  and work do not grow with what is not shown.
- **Concurrent at the quota.** Requests go out on the SDK's async client, at most ``concurrency`` at a time. The
  SDK's own retries are switched off for batch requests (``max_retries=0``) so that a 429 reaches this module:
  every sender then pauses for the ``retry-after-ms`` / ``Retry-After`` the service gave, and the window is
  halved (multiplicative decrease, at most once per pause); each success widens it again by ``1/window``
  (additive increase: about +1 per round trip), up to ``concurrency``. Timeouts, connection errors and 5xx are
  retried with exponential backoff up to the ``max_retries`` setting. A deployment whose budget an earlier answer
  announced (:mod:`azmm_magic.service.limits`) is paced from that budget from the first send.
- **Every outcome kept.** A failed item becomes a :class:`BatchFailure` (our one-line message) and never stops the
  others. Answers go into the answer cache as they arrive, so an interrupted run keeps what finished, and a
  re-run sends only what is missing.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, overload

from azmm_magic.core import views
from azmm_magic.core.errors import ConfigError
from azmm_magic.core.images import (
    ImageOptions,
    PreparedImage,
    image_options,
    keeps_thumbnail,
    leaf_bytes,
    leaf_label,
    light_copy,
    prepare_leaf,
    probe_size,
)
from azmm_magic.core.images import expand_sources as expand_leaves
from azmm_magic.core.request import VisionRequest
from azmm_magic.core.result import VisionResult
from azmm_magic.core.video import DEFAULT_FRAMES, VideoFrame, VideoFrames
from azmm_magic.features.outcomes import BatchFailure, Outcome, failure_of, item_source, item_status
from azmm_magic.features.progress import ProgressBar
from azmm_magic.features.rows import as_rows, row_items
from azmm_magic.service.limits import recall as recall_limits
from azmm_magic.service.retry import RetryPolicy, is_throttle
from azmm_magic.service.sdk import fresh_async_http_client
from azmm_magic.service.send import WaitEvent, asend
from azmm_magic.service.throttle import Throttle

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.client import VisionClient
    from azmm_magic.features.evaluation import Evaluation

INITIAL_WINDOW = 4  # requests in flight when a batch starts (slow start doubles it every round trip)
INLINE_BYTES = 64 * 1024  # images this small (in bytes and pixels) are prepared on the event loop (no thread hop)
INLINE_PIXELS = 512 * 512
BIG_IMAGE_PIXELS = 4_000_000  # image files this big are prepared in worker processes (decoding is the cost)
MAX_THROTTLED_ATTEMPTS = 30  # 429s one item may meet before it is recorded as failed


class BatchResult(Sequence[Outcome]):
    """The outcome of a batch, in input order: a :class:`VisionResult` per answered image and a
    :class:`BatchFailure` per image that got none.

    ``results`` (answers only), ``failures``, ``sources``, ``to_records()`` (list of dicts), ``to_dataframe()``
    (needs pandas). ``interrupted`` is True when the run was stopped early: then it holds what finished, and
    ``total`` says how many items the run had. ``elapsed`` is the wall time in seconds.

    To keep memory bounded, each result's ``images`` hold at most a small thumbnail in ``data`` (none for an
    image read from a file when no gallery showed it: its thumbnail is made from the file when the result is
    shown); ``width``, ``height`` and ``sha256`` still describe the image that was sent.
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
        self.prices: Any = None  # the client ledger's price table when the batch ran (for evaluate's cost)
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

        One schema for every batch: ``source``, ``status``, ``answer``, the structured answer's fields as columns
        (``--schema`` / ``response_format=``), ``error``, ``cached``, ``prompt_tokens``, ``completion_tokens``,
        ``finish_reason``, ``deployment`` and ``elapsed`` (:data:`~azmm_magic.features.rows.ANSWER_COLUMNS`). Over a
        folder, a glob or a list: one row per item, indexed by its position. Over DataFrame rows: the input rows
        (same index, all input columns) with those columns added (an item not run, after an interrupt, has empty
        cells; a name that is already an input column gets an ``answer_`` prefix).
        """
        try:
            import pandas  # type: ignore[import-untyped]  # noqa: F401
        except ImportError as e:
            raise ConfigError("to_dataframe() needs pandas: pip install pandas (or use to_records()).") from e
        from azmm_magic.features.rows import answer_columns, answer_table

        outcomes = dict(zip(self.indices(), self, strict=True))
        sources = {i: self.source_of(i) for i in outcomes}
        if self.frame is None:
            return answer_table(outcomes, sources)
        return answer_columns(self.frame, outcomes, sources)

    def evaluate(self, truth: Any, *, field: str | None = None, match: Any = None, tolerance: float = 0.0,
                 prices: Any = None, name: str = "") -> Evaluation:
        """Score the answers against labels: an :class:`~azmm_magic.features.evaluation.Evaluation` (accuracy with
        a 95 % Wilson interval, confusion matrix, per-class precision/recall, mistakes, failures apart, cost).

        ``truth``: a column of the input DataFrame (by name), or a sequence of labels in input order. ``field``: a
        field of a structured answer to compare (``--schema``/``--json``; dotted for nested), else the answer text
        (or the structured answer's field named like the truth column). ``match``: ``"exact"`` after normalising
        case, spacing and punctuation (default), ``"contains"``, ``"number"`` (within ``tolerance``) or a function
        ``match(answer, truth) -> bool``. ``prices`` (per 1M tokens, as for the usage ledger) defaults to the
        client's ledger prices.
        """
        from azmm_magic.features.evaluation import evaluate_batch

        return evaluate_batch(self, truth, field=field, match=match, tolerance=tolerance, prices=prices, name=name)

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
    paced: int = 0  # sends that waited for the service's budget (headers or the tpm setting)
    prepare_workers: int = 0
    prepare_processes: bool = False
    waiting: str = ""  # what the batch is waiting for now, e.g. "rate limited (429): retrying in 3 s (1 of 30)"


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
        images = VideoFrames(images, DEFAULT_FRAMES if frames is None else frames, frames_per_request)
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
    from azmm_magic.core.tokens import estimate_image_tokens

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


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _is_big_file(leaf: Any) -> bool:
    """An image file worth preparing in another process (a camera photo: decoding it is the cost), judged from
    its header; not an icon, a screenshot or an in-memory image."""
    label = leaf_label(leaf)
    try:
        if not (isinstance(label, str) and os.path.isfile(label)):
            return False
        size = probe_size(leaf)
    except Exception:  # noqa: BLE001 - unreadable here: prepared (and reported) the ordinary way
        return False
    return size is not None and size[0] * size[1] >= BIG_IMAGE_PIXELS


def _is_big_item(item: BatchItem) -> bool:
    """A one-image item whose image is a big file (see :func:`_is_big_file`)."""
    return len(item.leaves) == 1 and _is_big_file(item.leaves[0])


def _preparers(leaves: Sequence[BatchItem], workers: int | None) -> tuple[ThreadPoolExecutor, Any, int]:
    """The thread pool that builds requests (and prepares small or in-memory images), and, for batches of big
    image files on a machine with several cores, a process pool that prepares those on every core (Pillow
    holds the GIL for part of each decode, so threads alone keep one core busy). Worker processes start fresh
    (``forkserver``/``spawn``: never a fork of a kernel's threads) and send back only the prepared JPEG."""
    cpus = _cpus()
    count = workers or cpus
    threads = ThreadPoolExecutor(max_workers=max(2, count), thread_name_prefix="azmm-batch-prepare")
    big = sum(1 for item in leaves[: 4 * cpus] if _is_big_item(item))
    if cpus < 2 or big < min(len(leaves), 2 * cpus) or workers == 1:
        return threads, None, max(2, count)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    return threads, ProcessPoolExecutor(max_workers=count, mp_context=context), count


def preparation_pools(items: Sequence[BatchItem], workers: int | None = None) -> tuple[ThreadPoolExecutor, Any, int]:
    """The pools that prepare a batch's images (see :func:`_preparers`): a thread pool, a process pool for big
    image files on a machine with several cores (else None), and the number of workers. Shut both down after."""
    return _preparers(items, workers)


def is_big_item(item: BatchItem) -> bool:
    """Whether ``item`` is one big image file, best prepared in a worker process (see :func:`_is_big_file`)."""
    return _is_big_item(item)


def _is_small_item(item: BatchItem) -> bool:
    """An item whose images are small files or bytes of few pixels (an icon, a swatch, a small chart): prepared on
    the event loop, where it takes well under a millisecond. A small file of many pixels (a flat screenshot) is
    not: its resize would hold the loop, while in a thread Pillow releases the GIL for it."""
    total = 0
    for leaf in item.leaves:
        size = leaf_bytes(leaf)
        if size is None:
            return False
        total += size
        if total > INLINE_BYTES:
            return False
        pixels = probe_size(leaf)
        if pixels is None or pixels[0] * pixels[1] > INLINE_PIXELS:
            return False
    return True


def _light_enough(result: VisionResult, thumbnails: bool) -> bool:
    """Whether :func:`_lighten` is quick enough for the event loop: small images, images whose render thumbnail
    exists (the batch's thumbnail is then made from it), or no thumbnail to make (files, nothing shown)."""
    return (sum(len(image.data or b"") for image in result.images) <= INLINE_BYTES
            or all(image.has_thumbnail() for image in result.images)
            or not any(keeps_thumbnail(i, thumbnail=thumbnails) for i in result.images))


def _lighten(result: VisionResult, thumbnails: bool) -> VisionResult:
    return result.with_(images=tuple(light_copy(i, thumbnail=thumbnails) for i in result.images))


class _ThrottleGate:
    """Around each attempt of one item's send: a slot of the batch's window (and the budget's leave) before it, the
    slot given back after it; a 429 the policy retries pauses every sender (and narrows the window)."""

    def __init__(self, limit: Throttle, stats: BatchStats, tokens: int) -> None:
        self.limit = limit
        self.stats = stats
        self.tokens = tokens
        self.sent_at = 0.0

    async def enter(self) -> None:
        self.sent_at = await self.limit.acquire(self.tokens)
        self.stats.sent += 1

    def leave(self, error: BaseException | None) -> None:
        self.limit.release(success=error is None)
        if error is not None and is_throttle(error):
            self.stats.throttled += 1

    def retrying(self, error: BaseException, delay: float) -> None:
        if delay <= 0:  # the output-token parameter was switched: not a retry
            return
        if is_throttle(error):
            self.limit.throttled(delay, self.sent_at)
        else:
            self.stats.retried += 1


async def _send_adaptive(
    twin: VisionClient, request: VisionRequest, limit: Throttle, plan: _Plan, policy: RetryPolicy, tokens: int = 0
) -> VisionResult:
    """Send one request through the batch's throttle, retried by THE retry policy (a 429 pauses every sender);
    what the item made the batch say it waits for is cleared when the item is done (unless another item has said
    something since)."""
    said: list[str] = []

    def waiting(event: WaitEvent) -> None:
        plan.stats.waiting = event.message()
        said.append(plan.stats.waiting)

    try:
        return await asend(twin.sdk, request, on_wait=waiting, policy=policy,
                           gate=_ThrottleGate(limit, plan.stats, tokens))
    finally:
        if any(plan.stats.waiting is s for s in said):
            plan.stats.waiting = ""


async def run_plan(
    client: VisionClient,
    plan: _Plan,
    result: BatchResult,
    *,
    on_item: Callable[[int, Outcome], None] | None = None,
    prepare_workers: int | None = None,
    thumbnails: bool = False,
) -> BatchResult:
    """Run a planned batch on the running event loop, filling ``result`` as items finish (in any order).

    Requests go through the client's pipeline (cache policy, usage ledger, identical requests sent once) on a
    twin client with the SDK's retries off and its own async HTTP pool; this module adds the adaptive window.
    ``thumbnails``: a view shows each item's picture as it finishes, so each answer keeps a small thumbnail;
    otherwise an image read from a file keeps no pixels (see :func:`~azmm_magic.core.images.light_copy`)."""
    started = time.perf_counter()
    s = client.settings.with_overrides(detail=plan.options.get("detail"))
    http = None if client.sdk.http_client else fresh_async_http_client()
    changed = asyncio.Event()
    limit = Throttle(plan.concurrency, initial=min(plan.concurrency, INITIAL_WINDOW), tpm=s.tpm,
                          on_wake=changed.set)
    known = recall_limits(s.endpoint_host, s.deployment or "")
    if known is not None:  # an earlier answer of this deployment said its budget: start from it
        limit.recall(known)
    # our own pool: see each request leave and read every response's rate-limit headers, to pace before a 429
    if http is not None:
        async def sending(request: Any) -> None:
            limit.sending()

        async def observe(response: Any) -> None:
            limit.observe(response.headers)

        http.event_hooks["request"].append(sending)
        http.event_hooks["response"].append(observe)
    twin = client.derive(http_client=http)
    policy = twin.policy(use_cache=plan.use_cache, refresh=plan.refresh)
    opts = image_options(s.detail, s.token_rule, s.inline_urls, s.max_image_bytes)
    executor, processes, workers = _preparers(plan.leaves, prepare_workers)
    plan.stats.prepare_workers, plan.stats.prepare_processes = workers, processes is not None
    loop = asyncio.get_running_loop()
    retry = RetryPolicy(client.settings.max_retries, max_throttled=MAX_THROTTLED_ATTEMPTS)
    alive = 0

    def build(item: BatchItem) -> tuple[VisionRequest, int]:
        request = plan.request_for(twin, item, opts)
        return request, request.estimate_prompt_tokens(s.token_rule) + request.max_tokens

    async def item(index: int, leaf: Any) -> None:
        nonlocal alive
        label = plan.labels[index]
        try:
            if processes is not None and _is_big_item(leaf):  # a camera photo: decoded on another core
                prepared = await loop.run_in_executor(processes, prepare_leaf, leaf.leaves[0], opts)
                leaf = replace(leaf, leaves=(prepared,))
            if _is_small_item(leaf) or all(isinstance(one, PreparedImage) for one in leaf.leaves):
                # a thread hop (and the GIL handoffs it brings) costs more than the work: a small image, or one
                # prepared already (in a worker process)
                request, tokens = build(leaf)
            else:
                request, tokens = await loop.run_in_executor(executor, build, leaf)
            del leaf

            async def adaptive(request: VisionRequest) -> VisionResult:
                return await _send_adaptive(twin, request, limit, plan, retry, tokens)

            answer = await twin.pipeline.arun(request, policy, send=adaptive)
            del request
            try:
                outcome: Outcome = (_lighten(answer, thumbnails) if _light_enough(answer, thumbnails)
                                    else await loop.run_in_executor(executor, _lighten, answer, thumbnails))
            except asyncio.CancelledError:
                result.put(index, answer, label)  # answered (and cached) before the interrupt: keep it
                raise
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a failed item is recorded, never stops the others
            outcome = failure_of(index, label, e)
        finally:
            alive -= 1
            changed.set()
        result.put(index, outcome, label)
        if on_item is not None:
            on_item(index, outcome)

    tasks: set[asyncio.Task[None]] = set()
    try:
        for index, leaf in enumerate(plan.leaves):
            # items alive (being prepared, waiting or in flight): the window plus what the preparers work ahead
            while alive >= limit.window + 2 * workers:
                changed.clear()
                await changed.wait()
            alive += 1
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
        if processes is not None:
            processes.shutdown(wait=False, cancel_futures=True)
        result.elapsed = time.perf_counter() - started
        plan.stats.decreases = limit.decreases
        plan.stats.peak_in_flight = limit.peak_in_flight
        plan.stats.final_window = limit.window
        plan.stats.paced = limit.paced
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
    result.prices = client.ledger.prices
    return plan, result


async def abatch(client: VisionClient, prompt: str, images: Iterable[object] | object, *,
                 on_item: Callable[[int, Outcome], None] | None = None, progress: bool = False,
                 **plan_options: Any) -> BatchResult:
    """See :meth:`VisionClient.abatch`; ``plan_options`` as for :func:`plan_batch`."""
    plan, result = _new_run(client, prompt, images, **plan_options)
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


#: after Ctrl-C, how long a batch waits for its requests in flight to be cancelled (a second Ctrl-C stops waiting)
STOP_WAIT = 10.0


def _stop_run(state: dict[str, Any]) -> None:
    """Stop a batch's event loop task: cancel it if it runs (no new request is sent; those in flight are
    cancelled), else make it stop as soon as it starts (``main`` checks ``state["stop"]``)."""
    state["stop"] = True
    loop, task = state.get("loop"), state.get("task")
    if loop is not None and task is not None and not loop.is_closed():
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:  # the loop closed meanwhile: nothing left to cancel
            pass


def _cancel_run(state: dict[str, Any], thread: threading.Thread, drain: Callable[[], None]) -> None:
    """After Ctrl-C: stop the batch and wait, at most :data:`STOP_WAIT` seconds, for its thread (drawing what
    finishes meanwhile); a second Ctrl-C ends the wait (the result keeps what finished)."""
    try:
        _stop_run(state)
        deadline = time.monotonic() + STOP_WAIT
        while thread.is_alive() and time.monotonic() < deadline:
            thread.join(0.05)
            drain()
    except KeyboardInterrupt:
        _stop_run(state)


def run_batch(client: VisionClient, prompt: str, images: Iterable[object] | object, *,
              on_item: Callable[[int, Outcome], None] | None = None, progress: bool = True,
              view_factory: Callable[[Sequence[str]], Any] | None = None, **plan_options: Any) -> BatchResult:
    """See :meth:`VisionClient.batch`. The event loop runs in a worker thread (so this also works inside Jupyter,
    whose own loop is running); progress, gallery and ``on_item`` run in the calling thread. Ctrl-C cancels the
    requests in flight and raises :class:`BatchInterrupted` holding what finished. ``view_factory(labels)``
    replaces the default progress bar (the magic passes one that also draws the gallery); ``plan_options`` as for
    :func:`plan_batch` (``concurrency``, ``use_cache``, ``refresh``, item and request options)."""
    import queue

    plan, result = _new_run(client, prompt, images, **plan_options)
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

    async def main() -> BatchResult:
        state["loop"] = asyncio.get_running_loop()
        state["task"] = asyncio.current_task()
        if state.get("stop"):  # Ctrl-C came before the loop started
            raise asyncio.CancelledError
        return await run_plan(client, plan, result, on_item=lambda i, o: events.put((i, o)),
                              thumbnails=bool(getattr(view, "pictures", False)))

    def worker() -> None:
        try:
            asyncio.run(main())
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            state["error"] = e

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
                if view is not None and hasattr(view, "status"):
                    view.status(plan.stats.waiting)  # a pause the service asked for shows in the bar
        except KeyboardInterrupt:
            try:
                _cancel_run(state, thread, drain)
            except KeyboardInterrupt:  # a second Ctrl-C before the wait began
                _stop_run(state)
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
