"""What a batch will send: one :class:`BatchItem` per request (an image; a window of video frames; a DataFrame
row's images and prompt), checked before anything is sent (:func:`plan_batch`), or estimated without sending
(:func:`estimate_batch`, for ``--each --dry-run``).

A batch takes what it needs of its caller as a :class:`BatchClient` (the settings, the pipeline and a request
builder); :class:`~azmm_magic.features.client.VisionClient` is one, and the batch never imports it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from azmm_magic.core.errors import ConfigError
from azmm_magic.core.images import ImageOptions, image_options, leaf_label, prepare_leaf, probe_size
from azmm_magic.core.images import expand_sources as expand_leaves
from azmm_magic.core.request import VisionRequest
from azmm_magic.core.settings import Settings
from azmm_magic.core.video import DEFAULT_FRAMES, VideoFrame, VideoFrames
from azmm_magic.features.batch.result import BatchResult, BatchStats
from azmm_magic.features.pipeline import Pipeline
from azmm_magic.features.rows import as_rows, row_items


class BatchClient(Protocol):
    """What a batch takes of the client that runs it: its settings, its pipeline (cache policy, sending, usage)
    and its request builder (``prepare(prompt, images, **options)``)."""

    settings: Settings
    pipeline: Pipeline

    def prepare(self, *args: Any, **kwargs: Any) -> VisionRequest: ...


@dataclass(frozen=True)
class BatchItem:
    """One request of a batch: its image leaves (one image; a window of video frames; a DataFrame row's images),
    its label, and its own prompt when it has one (a DataFrame row's filled-in prompt)."""

    leaves: tuple[Any, ...]
    label: str
    prompt: str | None = None
    row: Any = None


@dataclass
class Plan:
    """A checked batch: its items (the runner lets go of each one, ``None``, once its task has it), their labels,
    the request options and how to run them."""

    prompt: str
    items: list[BatchItem | None]
    labels: list[str]
    options: dict[str, Any]
    concurrency: int
    use_cache: bool
    refresh: bool
    stats: BatchStats = field(default_factory=BatchStats)
    frame: Any = None  # the input DataFrame of a batch over its rows

    def request_for(self, client: BatchClient, item: BatchItem, opts: ImageOptions) -> VisionRequest:
        """The request of one item: its images prepared now, its own prompt if it has one."""
        images = [prepare_leaf(leaf, opts) for leaf in item.leaves]
        return client.prepare(item.prompt if item.prompt is not None else self.prompt, images, **self.options)

    @property
    def rows(self) -> list[Any] | None:
        """Each item's DataFrame row label (a batch over rows; read before the run lets go of the items)."""
        return [item.row for item in self.items if item is not None] if self.frame is not None else None

    @property
    def prompts(self) -> list[str] | None:
        """Each item's own prompt (a batch over rows)."""
        if self.frame is None:
            return None
        return [item.prompt if item.prompt is not None else self.prompt for item in self.items if item is not None]


def leaves_and_labels(images: Iterable[object] | object) -> tuple[list[Any], list[str]]:
    """The image leaves of globs, lists and single sources, and their labels (nothing is decoded yet)."""
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
            items.append(_frames_item(window))
            window = []
        if isinstance(leaf, VideoFrame) and (leaf.per_request or 1) > 1:
            window.append(leaf)
        else:
            items.append(BatchItem((leaf,), leaf_label(leaf)))
    if window:
        items.append(_frames_item(window))
    return items, None


def _frames_item(frames: list[Any]) -> BatchItem:
    """One request for a window of video frames, labelled from its first to its last frame."""
    label = frames[0].label if len(frames) == 1 else f"{frames[0].label} to {frames[-1].label.rsplit(' @ ', 1)[-1]}"
    return BatchItem(tuple(frames), label)


_ITEM_OPTIONS = ("column", "frames", "frames_per_request")


def _items_of(prompt: str, images: Iterable[object] | object, options: dict[str, Any]) -> tuple[list[BatchItem], Any]:
    """The items of a batch (the item options taken out of ``options``); none is an error."""
    item_options = {k: options.pop(k) for k in _ITEM_OPTIONS if k in options}
    items, frame = batch_items(prompt, images, **item_options)
    if not items:
        raise ConfigError("No images to send: give at least one image (a path, glob, URL or object).")
    return items, frame


def plan_batch(
    client: BatchClient,
    prompt: str,
    images: Iterable[object] | object,
    *,
    concurrency: int | None = None,
    use_cache: bool = True,
    refresh: bool = False,
    **options: Any,
) -> Plan:
    """Validate everything that would make every item fail (prompt, options, settings), then expand sources.

    ``column``, ``frames`` and ``frames_per_request`` (see :func:`batch_items`) may be among ``options``."""
    item_options = {k: options.pop(k) for k in _ITEM_OPTIONS if k in options}
    client.prepare(prompt, (), **options)  # prompt and option checks, no images
    client.settings.with_overrides(deployment=options.get("deployment")).require()
    conc = int(concurrency if concurrency is not None else client.settings.concurrency)
    if conc < 1:
        raise ConfigError(f"concurrency must be at least 1, got {conc}.")
    items, frame = _items_of(prompt, images, item_options)
    return Plan(prompt, list(items), [item.label for item in items], dict(options), conc, use_cache, refresh,
                frame=frame)


def new_run(client: BatchClient, prompt: str, images: Iterable[object] | object,
            **plan_options: Any) -> tuple[Plan, BatchResult]:
    """The plan of a run and its empty result (for the async runner and the sync bridge alike)."""
    plan = plan_batch(client, prompt, images, **plan_options)
    result = BatchResult(total=len(plan.items), prompt=prompt)
    result.stats = plan.stats
    result.frame, result.rows, result.prompts = plan.frame, plan.rows, plan.prompts
    result.prices = client.pipeline.ledger.prices
    return plan, result


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


def estimate_batch(client: BatchClient, prompt: str, images: Iterable[object] | object,
                   **options: Any) -> BatchEstimate:
    """Build the first item's request and estimate the whole batch from the images' sizes (read from file headers
    where possible: no image is decoded but the first)."""
    from azmm_magic.core.tokens import estimate_image_tokens

    items, _ = _items_of(prompt, images, options)
    s = client.settings.with_overrides(detail=options.get("detail"))
    opts = image_options(s.detail, s.token_rule, s.inline_urls, s.max_image_bytes)
    plan = Plan(prompt, list(items), [], dict(options), 1, True, False)
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


__all__ = [
    "BatchClient",
    "BatchEstimate",
    "BatchItem",
    "Plan",
    "batch_items",
    "estimate_batch",
    "leaves_and_labels",
    "new_run",
    "plan_batch",
]
