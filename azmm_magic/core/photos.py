"""Phone photos: HEIC/HEIF (iPhone) open like any other photo once pillow-heif's opener is registered with Pillow.

AVIF is read by Pillow itself (its wheels include libavif since Pillow 11.3). :func:`register_heif` is called by
:mod:`azmm_magic.core.images.codec` the first time it imports Pillow (never at ``%load_ext`` time); EXIF orientation is then
applied by the same path as for JPEGs.
"""

from __future__ import annotations

import threading

_LOCK = threading.Lock()
_DONE = False


def register_heif() -> bool:
    """Register pillow-heif's HEIF opener with Pillow once; False when pillow-heif is not installed."""
    global _DONE
    if _DONE:
        return True
    with _LOCK:
        if _DONE:
            return True
        try:
            from pillow_heif import register_heif_opener
        except ImportError:  # pragma: no cover - a dependency; without it HEIC gets a clear error
            return False
        register_heif_opener()
        _DONE = True
    return True


__all__ = ["register_heif"]
