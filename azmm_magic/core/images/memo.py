"""The memo: re-running a cell does not decode, resize and encode the same image again.

:class:`BoundedCache` is a small thread-safe LRU bounded by entry count and by the bytes it keeps alive (the
thumbnail cache is one too); :data:`PREPARED_MEMO` holds prepared images. Its keys say everything a prepared
image depends on: the content (a file's identity and stat, or a sha256 of the bytes/pixels), the label (it becomes
``PreparedImage.source``) and the options (detail, token rule, inline flag, byte cap). A hit returns the same
frozen :class:`PreparedImage`. Failures are never stored (the builder raises).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from azmm_magic.core.images.codec import decode_guard, exif_orientation
from azmm_magic.core.images.types import PreparedImage

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """A least-recently-used map holding at most ``max_entries`` values and ``max_bytes`` of them (each value's
    size is ``size(value)``; a value larger than ``max_bytes`` is not kept). Thread-safe."""

    def __init__(self, max_entries: int, max_bytes: int, size: Callable[[V], int]) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._size = size
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        size = self._size(value)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= self._size(old)
            self._data[key] = value
            self._bytes += size
            while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._data.popitem(last=False)
                self._bytes -= self._size(evicted)

    def get_or_build(self, key: Hashable, build: Callable[[], V]) -> V:
        """The value for ``key``, built (and kept) when missing; an exception from ``build`` keeps nothing."""
        value = self.get(key)
        if value is None:
            value = build()
            self.put(key, value)
        return value

    def keys(self) -> list[Hashable]:
        """The keys, least recently used first."""
        with self._lock:
            return list(self._data)

    @property
    def total_bytes(self) -> int:
        """The total size of the values kept."""
        return self._bytes

    def clear(self) -> int:
        """Forget every entry; returns how many there were."""
        with self._lock:
            n = len(self._data)
            self._data.clear()
            self._bytes = 0
            return n

    def __len__(self) -> int:
        return len(self._data)


#: Prepared images, per process: 256 images and 64 MB at most.
PREPARED_MEMO: BoundedCache[PreparedImage] = BoundedCache(256, 64 * 1024 * 1024, lambda image: len(image.data or b""))


def clear_prepared_memo() -> int:
    """Forget every memoized prepared image (returns how many there were). Only needed to free memory: the
    memo's keys include the content, so a changed file, array or image is always prepared again."""
    return PREPARED_MEMO.clear()


def array_key(arr: Any) -> Hashable | None:
    """Shape, dtype and a sha256 of the values of a numpy array (mutable: its content is the key, never its id).
    None for dtypes that are not images (those fail when converted, with a clear message)."""
    if arr.dtype.kind not in "biuf" or arr.ndim not in (2, 3):
        return None
    import numpy as np

    return (tuple(arr.shape), arr.dtype.str, hashlib.sha256(np.ascontiguousarray(arr).tobytes()).digest())


def pil_key(img: Any, label: str) -> Hashable | None:
    """Everything preparing a PIL image reads from it: mode, size, format, palette, transparency, EXIF
    orientation and a sha256 of the pixels. None (no memo) for animations, whose current frame is not frame 0."""
    if bool(getattr(img, "is_animated", False)) and getattr(img, "n_frames", 1) > 1:
        return None
    with decode_guard(label, None):
        pixels = hashlib.sha256(img.tobytes()).digest()
        palette = img.getpalette() if img.mode in ("P", "PA") else None
    transparency = img.info.get("transparency")
    return (img.mode, img.size, img.format, tuple(palette or ()), repr(transparency), exif_orientation(img), pixels)


__all__ = ["PREPARED_MEMO", "BoundedCache", "array_key", "clear_prepared_memo", "pil_key"]
