"""Leaves to prepared images: :func:`prepare_leaf` turns one leaf of the expansion into a :class:`PreparedImage`,
through the memo; :func:`prepare_images` expands sources, checks their count, and prepares each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable
from dataclasses import replace
from typing import Any

from azmm_magic.core.documents import PdfPage
from azmm_magic.core.errors import ImageInputError
from azmm_magic.core.files import file_stamp, read_bounded, recently_changed
from azmm_magic.core.images.codec import array_to_pil, check_pixels, figure_label, figure_png, prepare_bytes, prepare_pil
from azmm_magic.core.images.fetch import fetch_image, url_image
from azmm_magic.core.images.memo import PREPARED_MEMO, array_key, pil_key
from azmm_magic.core.images.objects import is_figure, is_ndarray
from azmm_magic.core.images.sources import expand_sources
from azmm_magic.core.images.types import BytesRef, FileRef, ImageOptions, PreparedImage, UrlRef, image_options
from azmm_magic.core.media import too_many_images
from azmm_magic.core.settings import Detail
from azmm_magic.core.tokens import max_useful_size
from azmm_magic.core.urls import redact_url
from azmm_magic.core.video import VideoFrame


def prepare_leaf(leaf: Any, opts: ImageOptions) -> PreparedImage:
    """Turn one leaf of :func:`~azmm_magic.core.images.sources.expand_sources` into a :class:`PreparedImage`
    (memoized in :data:`~azmm_magic.core.images.memo.PREPARED_MEMO`; a URL image is not: nothing is decoded)."""
    if isinstance(leaf, PreparedImage):
        return leaf
    if isinstance(leaf, (PdfPage, VideoFrame)):
        return PREPARED_MEMO.get_or_build((leaf.key(), opts), lambda: _prepare_rendered(leaf, opts))
    if isinstance(leaf, FileRef):
        return _prepare_file(leaf, opts)
    if isinstance(leaf, BytesRef):
        return _prepare_bytes_memo(leaf.data, leaf.label, opts)
    if isinstance(leaf, UrlRef):
        if opts.inline_urls:
            return _prepare_bytes_memo(fetch_image(leaf.url), redact_url(leaf.url), opts)
        return url_image(leaf.url)
    if is_figure(leaf):
        return _prepare_figure(leaf, opts)
    if is_ndarray(leaf):
        return _prepare_array(leaf, opts)
    width, height = leaf.size
    label = f"<PIL.Image {width}x{height}>"
    key = pil_key(leaf, label)
    build = lambda: prepare_pil(leaf, label, opts)  # noqa: E731
    return build() if key is None else PREPARED_MEMO.get_or_build(("pil", key, label, opts), build)


def _prepare_figure(fig: Any, opts: ImageOptions) -> PreparedImage:
    """A matplotlib figure, rendered to PNG at its own size (refused first when over Pillow's pixel limit)."""
    width, height = (fig.get_size_inches() * fig.get_dpi()).tolist()
    check_pixels(int(width), int(height), f"{figure_label(fig)} ({width:.0f}×{height:.0f} pixels)",
                 "use a smaller figsize or dpi")
    return _prepare_bytes_memo(figure_png(fig), figure_label(fig), opts)


def _prepare_array(arr: Any, opts: ImageOptions) -> PreparedImage:
    """A numpy array, memoized on its content (refused first when over Pillow's pixel limit)."""
    label = f"<numpy {tuple(arr.shape)} {arr.dtype}>"
    if arr.ndim >= 2:
        check_pixels(int(arr.shape[1]), int(arr.shape[0]), f"numpy array of shape {tuple(arr.shape)}",
                     "downscale it first")
    key = array_key(arr)
    build = lambda: prepare_pil(array_to_pil(arr, label), label, opts)  # noqa: E731
    return build() if key is None else PREPARED_MEMO.get_or_build(("array", key, label, opts), build)


def _prepare_rendered(leaf: PdfPage | VideoFrame, opts: ImageOptions) -> PreparedImage:
    """A PDF page or video frame, rendered at the size the detail and token rule keep, then prepared."""
    img = leaf.render(lambda w, h: max_useful_size(w, h, opts.detail, opts.rule))
    return replace(prepare_pil(img, leaf.label, opts), text=leaf.text, ref=leaf.ref)


def _prepare_file(ref: FileRef, opts: ImageOptions) -> PreparedImage:
    """A file, memoized on its :func:`~azmm_magic.core.files.file_stamp` (path, inode, size, mtime and ctime) and
    the options.

    A rewrite changes the stamp, so it is prepared again. A file changed too recently for its stamp to be trusted
    (:func:`~azmm_magic.core.files.recently_changed`) is read and looked up by the hash of its bytes instead, and
    so is any stamp miss, so merely touching a file does not decode it again.
    """
    try:
        st = ref.path.stat()
        key: Hashable = ("file", *file_stamp(ref.path, st), ref.label, opts)
    except OSError:
        return prepare_bytes(read_bounded(ref.path, ref.label), ref.label, opts)  # reports the error with the name
    image = PREPARED_MEMO.get(key)
    if image is None:
        image = _prepare_bytes_memo(read_bounded(ref.path, ref.label), ref.label, opts)
        if not recently_changed(st):
            PREPARED_MEMO.put(key, image)
    return image


def _prepare_bytes_memo(data: bytes, label: str, opts: ImageOptions) -> PreparedImage:
    """:func:`~azmm_magic.core.images.codec.prepare_bytes`, memoized on the sha256 of the bytes (cheap next to
    decoding them)."""
    key = ("bytes", hashlib.sha256(data).digest(), label, opts)
    return PREPARED_MEMO.get_or_build(key, lambda: prepare_bytes(data, label, opts))


def prepare_images(
    sources: Iterable[object] | object,
    *,
    detail: Detail = "auto",
    rule: str = "gpt-4o",
    inline_urls: bool = False,
    max_bytes: int = 20 * 1024 * 1024,
    max_images: int | None = 10,
) -> list[PreparedImage]:
    """Prepare one source or an iterable of sources: a list with one :class:`PreparedImage` per image (a glob, a
    list, a PDF or a video gives several), at most ``max_images`` in all (None: no limit).

    Accepted: a file path (``str``/``pathlib.Path``, ``~`` expanded); a glob (``*``, ``?``, ``[``, recursive
    ``**``; sorted); an ``http(s)`` URL (sent as a URL, or fetched and inlined when ``inline_urls``); a ``data:``
    URL; ``bytes``/``bytearray``/``memoryview``; a PIL image; a numpy array (uint8, float in [0, 1] or bool;
    HxW, HxWx1, HxWx3, HxWx4); a matplotlib Figure; ``matplotlib.pyplot`` or ``"plt.gcf()"`` (current figure);
    a PDF (``paper.pdf#page=7``: its pages) or a video (``clip.mp4#t=10,20``: frames); a :class:`PreparedImage`
    (returned as is); a list, tuple or other iterable of these (flattened).

    Each decoded image gets its EXIF orientation applied, its first frame taken if animated, its mode converted
    when needed, and is downscaled to :func:`max_useful_size` for ``detail`` and ``rule``. A PNG/JPEG/WEBP/GIF
    file that needs none of that keeps its bytes (and so its sha256). Otherwise photos become JPEG (quality 85)
    and images with transparency or few colours PNG. Results over ``max_bytes`` are re-encoded smaller.

    The count is checked after globs and lists are expanded but before anything is decoded, so a glob that
    matches thousands of files fails fast. Raises :class:`ImageInputError` (naming the input) for anything that
    cannot be used, and :class:`ConfigError` for an invalid ``detail``, ``rule`` or ``max_bytes``.
    """
    opts = image_options(detail, rule, inline_urls, max_bytes)
    leaves = expand_sources(sources)
    if max_images is not None and len(leaves) > max_images:
        raise ImageInputError(too_many_images(leaves, max_images), settings=("max_images",), remedy="each")
    return [prepare_leaf(leaf, opts) for leaf in leaves]


__all__ = ["prepare_images", "prepare_leaf"]
