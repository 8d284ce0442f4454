"""Thumbnails: one function, :func:`thumbnail`, and one bounded cache for every small picture that is rendered
(the images shown with an answer, a gallery tile, the panel's chosen images) or kept (a batch's record of an
image it sent, :func:`light_copy`).

A thumbnail is a PNG when the image has transparency, or few colours and was not a JPEG (a chart or a screenshot
stays crisp), and a JPEG otherwise (a photo: ~10x smaller than a PNG of it and far quicker to encode). It is
decoded at reduced scale (a JPEG at 1/2..1/8 of its size, never below the thumbnail), reduced by whole factors,
then resampled. The cache is keyed by content (an image's content id and size in bytes, or a file's stat) and
side, and bounded by entries and bytes (:data:`THUMBNAIL_CACHE`).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Hashable
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from azmm_magic.core.errors import ImageInputError
from azmm_magic.core.files import file_stamp, read_bounded, recently_changed
from azmm_magic.core.images.codec import check_opened_pixels, decode_guard, encode_as, few_colours, has_alpha, pil, working_mode
from azmm_magic.core.images.memo import BoundedCache
from azmm_magic.core.images.types import PreparedImage
from azmm_magic.core.tokens import fit_within

#: Longest side of the thumbnail rendered with answers (128 CSS px at 2x).
THUMBNAIL_SIDE = 256
#: Longest side of the thumbnail a batch keeps per item (and a gallery tile shows).
SMALL_THUMBNAIL_SIDE = 160
#: An image file over this size gets no thumbnail.
MAX_THUMBNAIL_FILE_BYTES = 50 * 1024 * 1024


class Thumbnail(NamedTuple):
    """A small picture: its media type (``image/png`` or ``image/jpeg``) and its encoded bytes."""

    media_type: str
    data: bytes

    def data_url(self) -> str:
        """``data:<media type>;base64,...``"""
        import base64

        return f"data:{self.media_type};base64," + base64.b64encode(self.data).decode("ascii")


#: Every thumbnail made, per process: 2048 thumbnails and 32 MB at most, least recently used dropped.
THUMBNAIL_CACHE: BoundedCache[Thumbnail] = BoundedCache(2048, 32 * 1024 * 1024, lambda made: len(made.data))


def thumbnail(source: PreparedImage | str, max_side: int = THUMBNAIL_SIDE) -> Thumbnail | None:
    """A thumbnail of ``source`` whose longest side is at most ``max_side``, or None when there is no picture.

    ``source`` is a :class:`PreparedImage` (its pixels; for a record kept without pixels, the image file named by
    its ``source``) or the path of an image file. None for an image passed by URL (there are no local pixels:
    render the URL itself), a file that is missing, not an image or over :data:`MAX_THUMBNAIL_FILE_BYTES`, and
    data that does not decode. Made once, then taken from :data:`THUMBNAIL_CACHE`.
    """
    side = max(1, max_side)
    if isinstance(source, PreparedImage):
        if source.data is not None:
            return _of_bytes(source.data, _image_key(source), side, source.source)
        if source.url is not None:
            return None
        source = source.source
    return _of_file(source, side)


def has_thumbnail(image: PreparedImage, max_side: int = THUMBNAIL_SIDE) -> bool:
    """Whether the thumbnail of ``image`` at ``max_side`` is cached (the render thumbnail is, once the image was
    shown): then :func:`light_copy` only decodes that thumbnail."""
    return image.data is not None and THUMBNAIL_CACHE.get((*_image_key(image), max(1, max_side))) is not None


def clear_thumbnails() -> int:
    """Forget every cached thumbnail (returns how many there were). Only needed to free memory: the cache is keyed
    by content, so a changed image or file always gets a new thumbnail."""
    return THUMBNAIL_CACHE.clear()


def light_copy(image: PreparedImage, *, thumbnail: bool) -> PreparedImage:
    """The record a batch keeps of an image it sent. With ``thumbnail`` (a gallery shows it), or when its pixels
    cannot be read again (an in-memory image, a download, a PDF page, a video frame): the same record (size,
    content id, source, notices) with ``data`` replaced by its :data:`SMALL_THUMBNAIL_SIDE` thumbnail (no data when
    it does not decode). Otherwise an image read from a file keeps no pixels at all (nothing is decoded or encoded
    for it; a view makes its thumbnail from the file). An image passed by URL is returned as it is."""
    if keeps_thumbnail(image, thumbnail=thumbnail):
        return _small_copy(image)
    return image if image.data is None else replace(image, data=None)


def keeps_thumbnail(image: PreparedImage, *, thumbnail: bool) -> bool:
    """Whether :func:`light_copy` makes a thumbnail of ``image`` (else it only drops the pixels: no work)."""
    return image.data is not None and (thumbnail or image.ref is not None or not os.path.isfile(image.source))


def _small_copy(image: PreparedImage) -> PreparedImage:
    assert image.data is not None  # keeps_thumbnail checked it
    # from the render thumbnail when the image was shown already: far smaller to decode
    shown = THUMBNAIL_CACHE.get((*_image_key(image), THUMBNAIL_SIDE)) if SMALL_THUMBNAIL_SIDE <= THUMBNAIL_SIDE else None
    made = _of_bytes(shown.data if shown else image.data, _image_key(image), SMALL_THUMBNAIL_SIDE, image.source)
    if made is None:  # no thumbnail: the record (and the outcome holding it) still counts
        return replace(image, data=None)
    return replace(image, data=made.data, media_type=made.media_type)


def _image_key(image: PreparedImage) -> tuple[Hashable, ...]:
    """An image's content id and size: a batch's small copy keeps the content id of the image it was made from
    but holds other bytes, so the size tells them apart."""
    return ("image", image.sha256, len(image.data or b""))


def _of_bytes(data: bytes, key: tuple[Hashable, ...], side: int, label: str) -> Thumbnail | None:
    made = THUMBNAIL_CACHE.get((*key, side))
    if made is None:
        try:
            made = _encode_thumbnail(data, side, label)
        except ImageInputError:
            return None
        THUMBNAIL_CACHE.put((*key, side), made)
    return made


def _of_file(path: str, side: int) -> Thumbnail | None:
    """The thumbnail of an image file, cached by its stat (by its content while it may still be changing)."""
    if path.startswith(("<", "http://", "https://", "data:")):
        return None
    file = Path(path)
    try:
        st = file.stat()
        key = None if recently_changed(st) or not stat.S_ISREG(st.st_mode) else ("file", *file_stamp(file, st), side)
    except (OSError, ValueError):  # missing, unreadable, a name with a NUL
        return None
    made = THUMBNAIL_CACHE.get(key) if key is not None else None
    if made is None:
        try:  # a bounded read of a regular file (core/files.py): a pipe or a huge file is no thumbnail
            data = read_bounded(file, path, MAX_THUMBNAIL_FILE_BYTES)
        except ImageInputError:
            return None
        made = _of_bytes(data, ("image", hashlib.sha256(data).hexdigest(), len(data)), side, path)
        if made is not None and key is not None:
            THUMBNAIL_CACHE.put(key, made)
    return made


def _encode_thumbnail(data: bytes, side: int, label: str) -> Thumbnail:
    """Decode ``data`` at reduced scale and encode its thumbnail; :class:`ImageInputError` when it does not decode."""
    with decode_guard(label, data), pil().open(io.BytesIO(data)) as img:
        check_opened_pixels(img, label)
        jpeg = img.format in ("JPEG", "MPO")
        if jpeg:
            img.draft(img.mode, fit_within(img.width, img.height, side))  # decode at 1/2..1/8 scale, never below
        img.load()
        work, _ = working_mode(img, None)
        if work.mode == "RGBA" and not has_alpha(work):
            work = work.convert("RGB")
        fmt = "PNG" if work.mode == "RGBA" or (not jpeg and few_colours(work)) else "JPEG"
        factor = min(work.width // side, work.height // side)
        if factor >= 2:  # whole-factor box reduction first: far quicker than resampling the full image
            work = work.reduce(factor)
        size = fit_within(work.width, work.height, side)
        if size != work.size:
            work = work.resize(size, pil().Resampling.LANCZOS)
        return Thumbnail(f"image/{fmt.lower()}", encode_as(work, fmt))


__all__ = ["MAX_THUMBNAIL_FILE_BYTES", "SMALL_THUMBNAIL_SIDE", "THUMBNAIL_CACHE", "THUMBNAIL_SIDE", "Thumbnail",
           "clear_thumbnails", "has_thumbnail", "keeps_thumbnail", "light_copy", "thumbnail"]
