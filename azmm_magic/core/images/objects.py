"""Recognising in-memory objects without importing their libraries.

A PIL image can only exist if ``PIL.Image`` is already in ``sys.modules``, a numpy array if ``numpy`` is, and so
on: each check looks there and never imports anything (``%load_ext azmm_magic`` stays cheap).
"""

from __future__ import annotations

import sys

from azmm_magic.core.images.types import PreparedImage


def _module_class(name: str, attr: str) -> type | None:
    """``sys.modules[name].attr`` if that module is already imported (an instance can't exist otherwise)."""
    module = sys.modules.get(name)
    cls = getattr(module, attr, None) if module is not None else None
    return cls if isinstance(cls, type) else None


def is_pil_image(obj: object) -> bool:
    """True for a ``PIL.Image.Image``."""
    cls = _module_class("PIL.Image", "Image")
    return cls is not None and isinstance(obj, cls)


def is_ndarray(obj: object) -> bool:
    """True for a numpy array."""
    cls = _module_class("numpy", "ndarray")
    return cls is not None and isinstance(obj, cls)


def is_dataframe(obj: object) -> bool:
    """True for a pandas DataFrame."""
    cls = _module_class("pandas", "DataFrame")
    return cls is not None and isinstance(obj, cls)


def is_figure(obj: object) -> bool:
    """True for a matplotlib ``Figure``."""
    cls = _module_class("matplotlib.figure", "Figure")
    return cls is not None and isinstance(obj, cls)


def is_pyplot(obj: object) -> bool:
    """True for the ``matplotlib.pyplot`` module itself (it stands for its current figure)."""
    return obj is not None and obj is sys.modules.get("matplotlib.pyplot")


def looks_like_image(obj: object) -> bool:
    """True for objects that are images in themselves (never imports PIL, numpy or matplotlib).

    PIL images, numpy arrays with 2 or 3 dimensions, matplotlib Figures, the ``matplotlib.pyplot`` module (its
    current figure), ``bytes``/``bytearray``/``memoryview`` and :class:`PreparedImage`. Paths, URLs and lists are
    not images in themselves and give ``False``.
    """
    if isinstance(obj, (PreparedImage, bytes, bytearray, memoryview)):
        return True
    if is_ndarray(obj):
        return getattr(obj, "ndim", 0) in (2, 3)
    return is_pil_image(obj) or is_figure(obj) or is_pyplot(obj)


__all__ = ["is_dataframe", "is_figure", "is_ndarray", "is_pil_image", "is_pyplot", "looks_like_image"]
