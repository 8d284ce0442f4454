"""Where a batch's images are prepared: on the event loop (small ones), in a thread pool, or, for batches of big
image files on a machine with several cores, in worker processes; and how light a finished answer is kept."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azmm_magic.core.images import has_thumbnail, keeps_thumbnail, leaf_bytes, leaf_label, light_copy, probe_size
from azmm_magic.core.result import VisionResult
from azmm_magic.features.batch.plan import BatchItem

INLINE_BYTES = 64 * 1024  # images this small (in bytes and pixels) are prepared on the event loop (no thread hop)
INLINE_PIXELS = 512 * 512
BIG_IMAGE_PIXELS = 4_000_000  # image files this big are prepared in worker processes (decoding is the cost)


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


def is_big_item(item: BatchItem) -> bool:
    """Whether ``item`` is one big image file, best prepared in a worker process (see :func:`_is_big_file`)."""
    return len(item.leaves) == 1 and _is_big_file(item.leaves[0])


def is_small_item(item: BatchItem) -> bool:
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


def preparation_pools(items: Sequence[BatchItem | None], workers: int | None = None
                      ) -> tuple[ThreadPoolExecutor, Any, int]:
    """The thread pool that builds requests (and prepares small or in-memory images), and, for batches of big
    image files on a machine with several cores, a process pool that prepares those on every core (Pillow holds
    the GIL for part of each decode, so threads alone keep one core busy; else None), and the number of workers.
    Worker processes start fresh (``forkserver``/``spawn``: never a fork of a kernel's threads) and send back only
    the prepared JPEG. Shut both down after."""
    cpus = _cpus()
    count = workers or cpus
    threads = ThreadPoolExecutor(max_workers=max(2, count), thread_name_prefix="azmm-batch-prepare")
    big = sum(1 for item in items[: 4 * cpus] if item is not None and is_big_item(item))
    if cpus < 2 or big < min(len(items), 2 * cpus) or workers == 1:
        return threads, None, max(2, count)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    return threads, ProcessPoolExecutor(max_workers=count, mp_context=context), count


def light_enough(result: VisionResult, thumbnails: bool) -> bool:
    """Whether :func:`lighten` is quick enough for the event loop: small images, images whose render thumbnail
    exists (the batch's thumbnail is then made from it), or no thumbnail to make (files, nothing shown)."""
    return (sum(len(image.data or b"") for image in result.images) <= INLINE_BYTES
            or all(has_thumbnail(image) for image in result.images)
            or not any(keeps_thumbnail(i, thumbnail=thumbnails) for i in result.images))


def lighten(result: VisionResult, thumbnails: bool) -> VisionResult:
    """``result`` keeping at most a small thumbnail of each image (see :func:`~azmm_magic.core.images.light_copy`)."""
    return result.with_(images=tuple(light_copy(i, thumbnail=thumbnails) for i in result.images))


__all__ = ["is_big_item", "is_small_item", "light_enough", "lighten", "preparation_pools"]
