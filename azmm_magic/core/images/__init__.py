"""Image inputs: every supported source becomes one or more :class:`PreparedImage` (the one public entry point of
this package; import from here, not from its modules).

- :mod:`.types`: plain data (:class:`PreparedImage`, :class:`ImageOptions`, the leaves, captions);
- :mod:`.objects`: in-memory objects recognised without importing their libraries;
- :mod:`.sources`: sources expanded to leaves (globs, lists, PDFs' pages, videos' frames), nothing decoded;
- :mod:`.fetch`: ``http(s)`` images, sent by URL or fetched with a timeout and a size cap;
- :mod:`.codec`: decoding and encoding with Pillow (EXIF orientation, first frame, mode, downscale, byte cap);
- :mod:`.memo`: the bounded memo of prepared images; :mod:`.prepare`: leaves to prepared images;
- :mod:`.thumbnails`: one :func:`thumbnail` function and one bounded cache for every small picture.

State: two per-process caches, both bounded and thread-safe (prepared images, :func:`clear_prepared_memo`;
thumbnails, :func:`clear_thumbnails`), both keyed by content. The first decode registers pillow-heif's HEIF opener
with Pillow (process-wide, once). Nothing touches the network unless asked for with ``inline_urls=True``.

Import cost: this package must stay cheap to import (``%load_ext azmm_magic`` imports it indirectly), so Pillow,
numpy, matplotlib and ``urllib.request`` are imported inside the functions that need them, never at module level.

Accepted sources (see :func:`prepare_images`): a file path (``str`` or ``pathlib.Path``, ``~`` expanded), a glob
(``*``, ``?``, ``[``, recursive ``**``), a PDF or a video, an ``http(s)://`` URL, a ``data:`` URL,
``bytes``/``bytearray``/``memoryview``, a ``PIL.Image.Image``, a numpy array, a matplotlib ``Figure``, the
``matplotlib.pyplot`` module or the string ``"plt.gcf()"`` (the current figure), a :class:`PreparedImage`, and
lists/tuples of these.
"""

from __future__ import annotations

from azmm_magic.core.images.memo import clear_prepared_memo
from azmm_magic.core.images.objects import is_dataframe, looks_like_image
from azmm_magic.core.images.prepare import prepare_images, prepare_leaf
from azmm_magic.core.images.sources import MAX_NESTING, MAX_SOURCES, expand_sources, leaf_bytes, leaf_label, probe_size
from azmm_magic.core.images.thumbnails import (
    SMALL_THUMBNAIL_SIDE,
    THUMBNAIL_SIDE,
    Thumbnail,
    clear_thumbnails,
    has_thumbnail,
    keeps_thumbnail,
    light_copy,
    thumbnail,
)
from azmm_magic.core.images.types import ImageOptions, PreparedImage, caption, image_options, short_source
from azmm_magic.core.settings import Detail
from azmm_magic.core.tokens import TOKEN_RULES, TokenRule, estimate_image_tokens, max_useful_size

__all__ = [
    "MAX_NESTING",
    "MAX_SOURCES",
    "SMALL_THUMBNAIL_SIDE",
    "THUMBNAIL_SIDE",
    "TOKEN_RULES",
    "Detail",
    "ImageOptions",
    "PreparedImage",
    "Thumbnail",
    "TokenRule",
    "caption",
    "clear_prepared_memo",
    "clear_thumbnails",
    "estimate_image_tokens",
    "expand_sources",
    "has_thumbnail",
    "image_options",
    "is_dataframe",
    "keeps_thumbnail",
    "leaf_bytes",
    "leaf_label",
    "light_copy",
    "looks_like_image",
    "max_useful_size",
    "prepare_images",
    "prepare_leaf",
    "probe_size",
    "short_source",
    "thumbnail",
]
