"""Image inputs: every supported source becomes one :class:`PreparedImage`.

Everything here is a pure function of its input (no network unless asked for with ``inline_urls=True``); the only
state is a bounded memo of prepared images keyed by their content (see :func:`clear_prepared_memo`). Decoding, EXIF
orientation, mode conversion, downscaling to what the service would keep anyway, and encoding happen once, in
:func:`prepare_image`. :meth:`PreparedImage.content_part` is the one place that builds an ``image_url`` content
part, and the token estimates live here too.

Import cost: this module must stay cheap to import (``%load_ext azmm_magic`` imports it indirectly), so Pillow,
numpy, matplotlib and ``urllib.request`` are imported inside the functions that need them, never at module level.
Objects are recognised without importing their libraries: a PIL image can only exist if ``PIL.Image`` is already
in ``sys.modules``, and so on.

Accepted sources (see :func:`prepare_image`): a file path (``str`` or ``pathlib.Path``, ``~`` expanded), a glob
(``*``, ``?``, ``[``, recursive ``**``), an ``http(s)://`` URL, a ``data:`` URL, ``bytes``/``bytearray``/
``memoryview``, a ``PIL.Image.Image``, a numpy array, a matplotlib ``Figure``, the ``matplotlib.pyplot`` module
or the string ``"plt.gcf()"`` (the current figure), a :class:`PreparedImage`, and lists/tuples of these.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from azmm_magic.core.documents import PdfPage
from azmm_magic.core.errors import ConfigError, ImageInputError, library_text
from azmm_magic.core.files import GLOB_CHARS, check_regular, glob_files, read_bounded
from azmm_magic.core.media import media_leaves, split_fragment, too_many_images
from azmm_magic.core.photos import register_heif
from azmm_magic.core.settings import Detail
from azmm_magic.core.tokens import (
    TOKEN_RULES,
    TokenRule,
    check_detail,
    estimate_image_tokens,
    fit_within,
    max_useful_size,
    token_rule,
)
from azmm_magic.core.urls import redact_url, redact_urls
from azmm_magic.core.video import VideoFrame, VideoFrames

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image as PILImage

#: Formats the service accepts as they are; their bytes are sent untouched when no processing is needed.
SEND_AS_IS_MEDIA_TYPES: dict[str, str] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # camera/phone JPEGs with an appended preview: a plain JPEG to any decoder
    "WEBP": "image/webp",
    "GIF": "image/gif",
}

#: Pillow modes the service decodes fine in a PNG/JPEG/WEBP/GIF file (anything else is converted first).
_SENDABLE_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})

JPEG_QUALITY = 85
#: Qualities tried, in order, when an encoded image is over ``max_bytes``.
_FALLBACK_JPEG_QUALITIES = (75, 60, 45, 30)
#: An image with at most this many distinct colours (chart, screenshot, diagram) is encoded as PNG.
_FEW_COLOURS = 8192

#: Timeout (seconds) and size cap (bytes) for fetching an ``http(s)`` image with ``inline_urls=True``.
FETCH_TIMEOUT = 20.0
FETCH_MAX_BYTES = 50 * 1024 * 1024

ACCEPTED_FORMATS = (
    "accepted formats: PNG, JPEG, WEBP, GIF (sent as they are), HEIC/HEIF, AVIF and anything else Pillow can open "
    "(BMP, TIFF, ICO, ...; converted), PDF (pages) and video (frames)"
)
ACCEPTED_SOURCES = (
    "a file path or glob (images, PDFs: 'paper.pdf#page=7', videos: 'clip.mp4#t=10,20'), an http(s):// or data: "
    "URL, bytes, a PIL image, a numpy array, a matplotlib Figure (or 'plt.gcf()'), a PreparedImage, or a list of these"
)

# --------------------------------------------------------------------------------------------------------------
# PreparedImage
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedImage:
    """One image, ready to send: encoded bytes (or a URL), media type, size and a content id.

    ``width``/``height`` are the size sent (after downscaling; 0 for a URL image whose size is unknown),
    ``original_size`` the size before downscaling when known. ``sha256`` is the hex digest of ``data`` (of the URL
    string for a URL image) and is the image's content id for the cache. ``notices`` say what was done to the
    image (first frame of an animation used, EXIF rotation, mode conversion, downscaling, re-encoding to fit).
    ``text`` is a text part sent just before the image (a video frame's ``[clip.mp4 @ 01:02.5]``); ``ref`` a source
    string that gives this image again when ``source`` is only a caption (``paper.pdf#page=7`` for ``paper.pdf p.7``).
    """

    data: bytes | None
    media_type: str
    width: int
    height: int
    sha256: str
    source: str
    url: str | None = None
    original_size: tuple[int, int] | None = None
    notices: tuple[str, ...] = ()
    text: str | None = None
    ref: str | None = None

    def __repr__(self) -> str:
        size = f"{self.width}x{self.height}" if self.width else "size unknown"
        payload = f"url={redact_url(self.url or '')!r}" if self.data is None else f"{len(self.data)} B"
        return (
            f"PreparedImage(source={self.source!r}, {self.media_type}, {size}, {payload}, sha256={self.sha256[:12]}...)"
        )

    def _memo(self) -> dict[str, Any]:
        """Per-instance cache of thumbnails, kept outside the dataclass fields (so out of eq, asdict, replace)."""
        memo: dict[str, Any] | None = self.__dict__.get("_memo_cache")
        if memo is None:
            memo = {}
            object.__setattr__(self, "_memo_cache", memo)
        return memo

    def data_url(self) -> str:
        """``data:<media_type>;base64,...`` for inline images, or the URL for images passed by URL."""
        if self.data is None:
            if self.url is None:
                raise ImageInputError(f"{self.source}: image has neither data nor a URL")
            return self.url
        # Not cached: a 20 MB image would keep a 27 MB string alive for as long as the image lives.
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode('ascii')}"

    def content_part(self, detail: Detail) -> dict[str, Any]:
        """The chat-completions content part for this image (the only place one is built)."""
        check_detail(detail)
        return {"type": "image_url", "image_url": {"url": self.data_url(), "detail": detail}}

    def estimate_tokens(self, detail: Detail, rule: str = "gpt-4o") -> int:
        """Prompt tokens this image costs (see :func:`estimate_image_tokens`); an upper bound for a URL image."""
        return estimate_image_tokens(self.width, self.height, detail, rule)

    def has_thumbnail(self) -> bool:
        """Whether the render thumbnail was made already (it is, once the image was shown): then
        :func:`small_copy` only decodes that thumbnail."""
        return self._made_thumbnail() is not None

    def _made_thumbnail(self) -> bytes | None:
        """The render thumbnail (:data:`THUMBNAIL_SIDE`) if it was made already, else None."""
        made = self._memo().get(f"thumb:{THUMBNAIL_SIDE}:any")
        return made[1] if made else None

    def thumbnail_png(self, max_side: int = 160) -> bytes:
        """A small PNG (longest side <= ``max_side``) for rendering; cached on the instance.

        Returns ``b""`` for an image passed by URL (there are no local pixels: render the URL itself instead).
        """
        if self.data is None:
            return b""
        key = f"thumb:{max_side}"
        cached = self._memo().get(key)
        if cached is None:
            cached = _thumbnail(self.data, max_side, self.source)
            self._memo()[key] = cached
        return cached

    def thumbnail(self, max_side: int = 256) -> tuple[str, bytes]:
        """``(media type, bytes)`` of a small image for rendering (longest side <= ``max_side``); made when first
        asked for (a reduced decode), then cached.

        A PNG for an image with transparency or few colours (charts and screenshots stay crisp), a JPEG otherwise
        (a photo: ~10x smaller than a PNG of it and far quicker to encode). ``("", b"")`` for an image passed by
        URL or one that keeps no pixels.
        """
        if self.data is None:
            return "", b""
        key = f"thumb:{max_side}:any"
        cached = self._memo().get(key)
        if cached is None:
            data, media_type = small_thumbnail(self.data, max_side, label=self.source, crisp=True)
            cached = (media_type, data)
            self._memo()[key] = cached
        return cached


THUMBNAIL_SIDE = 256  # longest side of the thumbnail rendered with answers (128 CSS px at 2x)


def _thumbnail(data: bytes, max_side: int, label: str, *, fmt: str = "PNG") -> bytes:
    """Decode ``data`` and return a PNG (or JPEG) whose longest side is at most ``max_side``."""
    Image = _pil()
    side = max(1, max_side)
    with _decode_guard(label, data), Image.open(io.BytesIO(data)) as img:
        _check_opened_pixels(img, label)
        if img.format in ("JPEG", "MPO"):
            img.draft(img.mode, fit_within(img.width, img.height, side))  # decode at 1/2..1/8 scale, never below
        img.load()
        return _thumbnail_of(img, side, fmt)


def _thumbnail_of(img: PILImage, side: int, fmt: str) -> bytes:
    """Encode an already decoded image as a thumbnail (longest side <= ``side``)."""
    work, _ = _working_mode(img, None)
    size = fit_within(work.width, work.height, side)
    if size != work.size:  # a new image: the caller's pixels are never changed
        # reducing by a whole factor first, down to twice the size: 2.3x quicker than a gap of 3 on a photo, and
        # a thumbnail does not show the difference
        work = work.resize(size, _pil().Resampling.LANCZOS, reducing_gap=2.0)
    if fmt == "JPEG":
        return _save(_flatten(work), "JPEG", quality=JPEG_QUALITY)
    buf = io.BytesIO()
    work.save(buf, "PNG")
    return buf.getvalue()


SMALL_THUMBNAIL_SIDE = 160  # longest side of the thumbnail a batch keeps per item (and a gallery tile shows)


def small_thumbnail(data: bytes, max_side: int = SMALL_THUMBNAIL_SIDE, *, label: str = "image",
                    crisp: bool = False) -> tuple[bytes, str]:
    """``(bytes, media type)`` of a small thumbnail of encoded image ``data`` (longest side <= ``max_side``).

    Decoded at reduced scale (a JPEG at 1/2..1/8 of its size, never below ``max_side``), reduced by whole
    factors, then resampled. PNG when the image has transparency (or, with ``crisp``, few colours: a chart or a
    screenshot), JPEG otherwise. Raises :class:`ImageInputError` for data that does not decode.
    """
    side = max(1, max_side)
    with _decode_guard(label, data), _pil().open(io.BytesIO(data)) as img:
        _check_opened_pixels(img, label)
        if img.format in ("JPEG", "MPO"):
            img.draft(img.mode, fit_within(img.width, img.height, side))  # decode at 1/2..1/8 scale, never below
        img.load()
        work, _ = _working_mode(img, None)
        if work.mode == "RGBA" and not _has_alpha(work):
            work = work.convert("RGB")
        crisp = crisp and img.format not in ("JPEG", "MPO") and _few_colours(work)
        fmt = "PNG" if work.mode == "RGBA" or crisp else "JPEG"
        factor = min(work.width // side, work.height // side)
        if factor >= 2:  # whole-factor box reduction first: far quicker than resampling the full image
            work = work.reduce(factor)
        size = fit_within(work.width, work.height, side)
        if size != work.size:
            work = work.resize(size, _pil().Resampling.LANCZOS)
        return _save(work, fmt), f"image/{fmt.lower()}"


def small_copy(image: PreparedImage, max_side: int = SMALL_THUMBNAIL_SIDE) -> PreparedImage:
    """The same image record with ``data`` replaced by :func:`small_thumbnail` (size, content id, source and
    notices kept), to keep with a result without holding the image that was sent. An image passed by URL is
    returned as it is; one that does not decode keeps no data."""
    if image.data is None:
        return image
    source = image.data
    if max_side <= THUMBNAIL_SIDE:  # the render thumbnail, when the image was shown already: far smaller to decode
        source = image._made_thumbnail() or source
    try:
        thumb, media_type = small_thumbnail(source, max_side, label=image.source)
    except ImageInputError:  # no thumbnail: the record (and the outcome holding it) still counts
        thumb, media_type = b"", image.media_type
    return replace(image, data=thumb or None, media_type=media_type)


def light_copy(image: PreparedImage, *, thumbnail: bool) -> PreparedImage:
    """The record a batch keeps of an image it sent. With ``thumbnail`` (a gallery shows it), or when its pixels
    cannot be read again (an in-memory image, a download, a PDF page, a video frame): :func:`small_copy`.
    Otherwise, an image read from a file keeps no pixels at all (nothing is decoded or encoded for it; a view
    makes its thumbnail from the file, see :func:`file_thumbnail`)."""
    if keeps_thumbnail(image, thumbnail=thumbnail):
        return small_copy(image)
    return image if image.data is None else replace(image, data=None)


def keeps_thumbnail(image: PreparedImage, *, thumbnail: bool) -> bool:
    """Whether :func:`light_copy` makes a thumbnail of ``image`` (else it only drops the pixels: no work)."""
    return image.data is not None and (thumbnail or image.ref is not None or not os.path.isfile(image.source))


def file_thumbnail(path: str, max_side: int = SMALL_THUMBNAIL_SIDE) -> tuple[bytes, str] | None:
    """:func:`small_thumbnail` of the image file at ``path`` (the source of a record kept without pixels), or None
    when it is not a readable image file (or is over :data:`FETCH_MAX_BYTES`)."""
    if path.startswith(("<", "http://", "https://")) or not os.path.isfile(path):
        return None
    try:  # a bounded read of a regular file (core/files.py): a pipe or a huge file is no thumbnail
        return small_thumbnail(read_bounded(Path(path), path, FETCH_MAX_BYTES), max_side, label=path)
    except (OSError, ImageInputError):
        return None


def short_source(source: str) -> str:
    """A file path's base name; other sources (``<array>``, data URLs) as they are; a URL without its query
    string or userinfo (a SAS signature is a credential: see :mod:`azmm_magic.core.urls`)."""
    if source.startswith(("http://", "https://")):
        return redact_url(source)
    if source.startswith(("<", "data:")):
        return source
    return source.replace("\\", "/").rsplit("/", 1)[-1]


def caption(image: PreparedImage) -> str:
    """``name · W×H`` (a file path shows its base name; ``by URL`` when the size is unknown)."""
    size = f"{image.width}×{image.height}" if image.width else "by URL"
    return f"{short_source(image.source)} · {size}"


# --------------------------------------------------------------------------------------------------------------
# Recognising sources without importing their libraries
# --------------------------------------------------------------------------------------------------------------


def _module_class(name: str, attr: str) -> type | None:
    """``sys.modules[name].attr`` if that module is already imported (an instance can't exist otherwise)."""
    module = sys.modules.get(name)
    cls = getattr(module, attr, None) if module is not None else None
    return cls if isinstance(cls, type) else None


def _is_pil_image(obj: object) -> bool:
    cls = _module_class("PIL.Image", "Image")
    return cls is not None and isinstance(obj, cls)


def _is_ndarray(obj: object) -> bool:
    cls = _module_class("numpy", "ndarray")
    return cls is not None and isinstance(obj, cls)


def _is_dataframe(obj: object) -> bool:
    cls = _module_class("pandas", "DataFrame")
    return cls is not None and isinstance(obj, cls)


def _is_figure(obj: object) -> bool:
    cls = _module_class("matplotlib.figure", "Figure")
    return cls is not None and isinstance(obj, cls)


def _is_pyplot(obj: object) -> bool:
    return obj is not None and obj is sys.modules.get("matplotlib.pyplot")


def looks_like_image(obj: object) -> bool:
    """True for objects that are images in themselves (never imports PIL, numpy or matplotlib).

    PIL images, numpy arrays with 2 or 3 dimensions, matplotlib Figures, the ``matplotlib.pyplot`` module (its
    current figure), ``bytes``/``bytearray``/``memoryview`` and :class:`PreparedImage`. Paths, URLs and lists are
    not images in themselves and give ``False``.
    """
    if isinstance(obj, (PreparedImage, bytes, bytearray, memoryview)):
        return True
    if _is_ndarray(obj):
        return getattr(obj, "ndim", 0) in (2, 3)
    return _is_pil_image(obj) or _is_figure(obj) or _is_pyplot(obj)


def resolve_name(name: str, namespace: Mapping[str, object]) -> object:
    """What the magic's ``-i NAME`` refers to.

    If ``NAME`` is a variable in ``namespace`` its value is returned (a variable wins over a file of the same
    name); otherwise the string itself, to be treated as a path, glob or URL. ``{NAME}`` always means a variable:
    :class:`ImageInputError` if there is none.
    """
    text = name.strip()
    if len(text) >= 2 and text.startswith("{") and text.endswith("}"):
        inner = text[1:-1].strip()
        if inner in namespace:
            return namespace[inner]
        raise ImageInputError(f"-i {text}: there is no variable named {inner!r}")
    if text in namespace:
        return namespace[text]
    return text


# --------------------------------------------------------------------------------------------------------------
# Expansion: a source becomes a flat list of leaves (cheap: no decoding)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageOptions:
    """How to prepare images: the ``detail`` level, the token rule, whether URLs are inlined, the byte cap."""

    detail: Detail
    rule: str
    inline_urls: bool
    max_bytes: int


@dataclass(frozen=True)
class _FileRef:
    path: Path
    label: str


@dataclass(frozen=True)
class _BytesRef:
    data: bytes
    label: str


@dataclass(frozen=True)
class _UrlRef:
    url: str


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_CURRENT_FIGURE = {"plt.gcf()", "pyplot.gcf()", "matplotlib.pyplot.gcf()"}


#: At most this many sources in one list (or iterable), and lists nested at most this deep.
MAX_SOURCES = 100_000
MAX_NESTING = 16


def _expand(source: object, sampling: VideoFrames | None = None, depth: int = 0) -> list[object]:
    """Flatten ``source`` into leaves: PreparedImage, _FileRef, _BytesRef, _UrlRef, PdfPage, VideoFrame, PIL image,
    array, Figure. ``sampling`` says how many frames a video gives (:class:`VideoFrames`)."""
    if isinstance(source, VideoFrames):
        return _expand(source.source, source, depth)
    if isinstance(source, (list, tuple)):
        if depth >= MAX_NESTING:
            raise ImageInputError(f"image sources nested more than {MAX_NESTING} lists deep; give a flat list")
        if len(source) > MAX_SOURCES:
            raise ImageInputError(
                f"{len(source):,} sources given: over {MAX_SOURCES:,} sources; give a glob or fewer items per batch"
            )
        return [leaf for item in source for leaf in _expand(item, sampling, depth + 1)]
    if isinstance(source, (PreparedImage, PdfPage, VideoFrame)):
        return [source]
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return media_leaves(None, data, f"<bytes {len(data)} B>", "", sampling) or [_BytesRef(data, f"<bytes {len(data)} B>")]
    if isinstance(source, str):
        return _expand_string(source, sampling)
    if isinstance(source, os.PathLike):
        return _expand_path(os.fspath(source), str(source), "", sampling)
    if _is_pyplot(source):
        return [_current_figure()]
    if _is_pil_image(source) or _is_ndarray(source) or _is_figure(source):
        return [source]
    if _is_dataframe(source):
        raise ImageInputError(
            "a pandas DataFrame holds one image per row: ask about each row separately (VisionClient.batch, "
            "choosing the image column with column=)"
        )
    raise ImageInputError(
        f"cannot use an object of type {_type_name(source)} as an image; accepted: {ACCEPTED_SOURCES}"
    )


def _type_name(obj: object) -> str:
    cls = type(obj)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _expand_string(text: str, sampling: VideoFrames | None = None) -> list[object]:
    """A string: ``plt.gcf()``, a data: or http(s) URL, a path (``#page=``/``#t=`` fragment allowed), or a glob."""
    text = text.strip()
    if not text:
        raise ImageInputError(f"empty image source; accepted: {ACCEPTED_SOURCES}")
    if text in _CURRENT_FIGURE:
        return [_current_figure()]
    lower = text.lower()
    if lower.startswith("data:"):
        data = _decode_data_url(text)
        return [_BytesRef(data, f"<data URL {len(data)} B>")]
    if lower.startswith(("http://", "https://")):
        return [_UrlRef(text)]
    scheme = _SCHEME.match(text)
    if scheme and len(scheme.group(1)) > 1 and not os.path.exists(os.path.expanduser(text)):
        raise ImageInputError(
            f"unsupported URL scheme {scheme.group(1)!r} in {_short(text)!r}: only http://, https:// and data: "
            "URLs are accepted (give a local file as a plain path)"
        )
    raw, fragment = split_fragment(text)
    return _expand_path(raw, raw, fragment, sampling)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expand_path(raw: str, label: str, fragment: str = "", sampling: VideoFrames | None = None) -> list[object]:
    """A path (``~`` expanded) or, if it has glob characters and is no existing file, a glob."""
    if "\0" in raw:
        raise ImageInputError(f"{_short(label)!r}: a file name cannot contain a NUL character")
    expanded = os.path.expanduser(raw)
    if not os.path.lexists(expanded) and GLOB_CHARS.intersection(raw):
        return _expand_glob(expanded, label, fragment, sampling)
    path = Path(expanded)
    try:
        path.stat()
    except FileNotFoundError:
        pass
    except OSError as e:  # a name too long, a loop of links, no permission on a folder
        if not os.path.islink(expanded):
            raise ImageInputError(f"cannot read {_short(label)}: {e.strerror or type(e).__name__}") from None
    if path.is_dir():
        hint = os.path.join(label.rstrip("/\\") or label, "*.png")
        raise ImageInputError(
            f"{label} is a directory, not an image; to send the images in it use a glob like {hint!r}"
        )
    if not path.exists():
        if os.path.islink(expanded):
            raise ImageInputError(f"image file not found: {label} is a symbolic link whose target is missing or loops")
        raise ImageInputError(f"image file not found: {label}{_close_files(path, label)}")
    check_regular(path, label)  # a pipe or a device (/dev/zero) is refused before anything reads it
    return media_leaves(path, None, label, fragment, sampling) or [_FileRef(path, label)]


#: Names looked at in a folder for a "did you mean" suggestion (a huge folder is not listed whole).
_CLOSE_SCAN = 5000


def _close_files(path: Path, label: str = "") -> str:
    """`` (did you mean imgs/red.png?)``: up to two files in the same folder whose names are close to the missing
    one, given with the folder as it was written."""
    import difflib
    import itertools

    try:
        with os.scandir(path.parent) as entries:
            names = [e.name for e in itertools.islice(entries, _CLOSE_SCAN)
                     if not e.name.startswith(".") and e.is_file()]
    except OSError:
        return ""
    close = difflib.get_close_matches(path.name, names, n=2, cutoff=0.7)
    written = label or str(path)
    folder = written[: len(written) - len(os.path.basename(written))] if os.path.basename(written) == path.name else ""
    return f" (did you mean {' or '.join(folder + name for name in close)}?)" if close else ""


def _expand_glob(pattern: str, label: str, fragment: str = "", sampling: VideoFrames | None = None) -> list[object]:
    """Files matching ``pattern`` (``**`` recursive), sorted; directories, pipes and devices are skipped."""
    matches = sorted(glob_files(pattern, label))
    if not matches:
        raise ImageInputError(f"no image file matches the pattern {label!r}")
    return [leaf for m in matches for leaf in media_leaves(Path(m), None, m, fragment, sampling) or [_FileRef(Path(m), m)]]


def _decode_data_url(url: str) -> bytes:
    """The payload of a ``data:[<media type>][;base64],<data>`` URL."""
    import binascii
    import urllib.parse

    header, sep, payload = url.partition(",")
    if not sep:
        raise ImageInputError(f"malformed data: URL {_short(url)!r} (no comma before the data)")
    if header.lower().endswith(";base64"):
        try:
            return base64.b64decode(re.sub(r"\s+", "", payload), validate=True)
        except (binascii.Error, ValueError) as e:
            raise ImageInputError(f"data: URL {_short(url)!r} has invalid base64 data") from e
    return urllib.parse.unquote_to_bytes(payload)


def _current_figure() -> Any:
    """``matplotlib.pyplot.gcf()``, refusing to create an empty figure when none is open."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - matplotlib is a dependency
        raise ImageInputError("plt.gcf(): matplotlib is not installed") from e
    if not plt.get_fignums():
        raise ImageInputError(
            "plt.gcf(): there is no open matplotlib figure (the inline backend closes figures at the end of "
            "each cell: keep a reference, e.g. fig = plt.gcf(), and pass -i fig)"
        )
    return plt.gcf()


# --------------------------------------------------------------------------------------------------------------
# Leaves to PreparedImage
# --------------------------------------------------------------------------------------------------------------


def prepare_leaf(leaf: Any, opts: ImageOptions) -> PreparedImage:
    """Turn one leaf from :func:`_expand` into a :class:`PreparedImage` (memoized, see :class:`_PreparedMemo`)."""
    if isinstance(leaf, PreparedImage):
        return leaf
    if isinstance(leaf, (PdfPage, VideoFrame)):
        return _MEMO.get_or_build((leaf.key(), opts), lambda: _from_rendered(leaf, opts))
    if isinstance(leaf, _FileRef):
        return _from_file(leaf, opts)
    if isinstance(leaf, _BytesRef):
        return _from_bytes_memo(leaf.data, leaf.label, opts)
    if isinstance(leaf, _UrlRef):
        if opts.inline_urls:
            try:
                data = _fetch_url(leaf.url)
            except ImageInputError as e:  # its message names the URL: never with its signature
                raise ImageInputError(redact_urls(str(e))) from None
            return _from_bytes_memo(data, redact_url(leaf.url), opts)
        return _url_image(leaf.url)
    if _is_figure(leaf):
        width, height = (leaf.get_size_inches() * leaf.get_dpi()).tolist()
        _check_pixels(int(width), int(height), f"{_figure_label(leaf)} ({width:.0f}×{height:.0f} pixels)",
                      "use a smaller figsize or dpi")
        return _from_bytes_memo(_figure_png(leaf), _figure_label(leaf), opts)
    if _is_ndarray(leaf):
        label = f"<numpy {tuple(leaf.shape)} {leaf.dtype}>"
        if leaf.ndim >= 2:
            _check_pixels(int(leaf.shape[1]), int(leaf.shape[0]), f"numpy array of shape {tuple(leaf.shape)}",
                          "downscale it first")
        key = _array_key(leaf)
        build = lambda: _from_pil(_array_to_pil(leaf, label), label, opts)  # noqa: E731
        return build() if key is None else _MEMO.get_or_build(("array", key, label, opts), build)
    width, height = leaf.size
    label = f"<PIL.Image {width}x{height}>"
    key = _pil_key(leaf, label)
    build = lambda: _from_pil(leaf, label, opts)  # noqa: E731
    return build() if key is None else _MEMO.get_or_build(("pil", key, label, opts), build)


# --------------------------------------------------------------------------------------------------------------
# Memo: re-running a cell does not decode, resize and encode the same image again
# --------------------------------------------------------------------------------------------------------------


class _PreparedMemo:
    """A small LRU of prepared images, bounded by entry count and by the bytes it keeps alive. Thread-safe.

    Keys say everything the result depends on: the content (a file's identity and stat, or a sha256 of the
    bytes/pixels), the label (it becomes ``PreparedImage.source``) and the options (detail, token rule, inline
    flag, byte cap). A hit returns the same frozen :class:`PreparedImage`, so its rendered thumbnail is reused too.
    Failures are never stored (the builder raises).
    """

    def __init__(self, max_entries: int = 256, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data: OrderedDict[Hashable, PreparedImage] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> PreparedImage | None:
        with self._lock:
            image = self._data.get(key)
            if image is not None:
                self._data.move_to_end(key)
            return image

    def put(self, key: Hashable, image: PreparedImage) -> None:
        size = len(image.data or b"")
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= len(old.data or b"")
            self._data[key] = image
            self._bytes += size
            while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._data.popitem(last=False)
                self._bytes -= len(evicted.data or b"")

    def get_or_build(self, key: Hashable, build: Callable[[], PreparedImage]) -> PreparedImage:
        image = self.get(key)
        if image is None:
            image = build()
            self.put(key, image)
        return image

    def clear(self) -> int:
        with self._lock:
            n = len(self._data)
            self._data.clear()
            self._bytes = 0
            return n

    def __len__(self) -> int:
        return len(self._data)


_MEMO = _PreparedMemo()


def clear_prepared_memo() -> int:
    """Forget every memoized prepared image (returns how many there were). Only needed to free memory: the
    memo's keys include the content, so a changed file, array or image is always prepared again."""
    return _MEMO.clear()


#: A file changed less than this long ago is not memoized by its stat: a second write within the same clock tick
#: (same size, same mtime/ctime) would go unnoticed. Such a file is looked up by the hash of its bytes instead.
_RACY_SECONDS = 2.0


def _from_file(ref: _FileRef, opts: ImageOptions) -> PreparedImage:
    """A file, memoized on its identity and stat (path, inode, size, mtime and ctime in ns) and the options.

    A rewrite changes the mtime/ctime (or the inode, for an atomic replace), so it is prepared again. A file
    modified in the last :data:`_RACY_SECONDS` is read and looked up by the hash of its bytes instead (the same
    rule git uses for "racily clean" files), and so is any stat miss, so merely touching a file does not decode
    it again.
    """
    try:
        st = ref.path.stat()
        key: Hashable = ("file", str(ref.path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                         st.st_ctime_ns, ref.label, opts)
    except OSError:
        return _from_bytes(_read_file(ref), ref.label, opts)  # reports the error with the file's name
    image = _MEMO.get(key)
    if image is None:
        image = _from_bytes_memo(_read_file(ref), ref.label, opts)
        if time.time() - max(st.st_mtime, st.st_ctime) > _RACY_SECONDS:
            _MEMO.put(key, image)
    return image


def _from_bytes_memo(data: bytes, label: str, opts: ImageOptions) -> PreparedImage:
    """:func:`_from_bytes`, memoized on the sha256 of the bytes (cheap next to decoding them)."""
    key = ("bytes", hashlib.sha256(data).digest(), label, opts)
    return _MEMO.get_or_build(key, lambda: _from_bytes(data, label, opts))


def _array_key(arr: Any) -> Hashable | None:
    """Shape, dtype and a sha256 of the values of a numpy array (mutable: its content is the key, never its id).
    None for dtypes that are not images (those fail in :func:`_array_to_pil` with a clear message)."""
    if arr.dtype.kind not in "biuf" or arr.ndim not in (2, 3):
        return None
    import numpy as np

    return (tuple(arr.shape), arr.dtype.str, hashlib.sha256(np.ascontiguousarray(arr).tobytes()).digest())


def _pil_key(img: Any, label: str) -> Hashable | None:
    """Everything :func:`_from_pil` reads from a PIL image: mode, size, format, palette, transparency, EXIF
    orientation and a sha256 of the pixels. None (no memo) for animations, whose current frame is not frame 0."""
    if bool(getattr(img, "is_animated", False)) and getattr(img, "n_frames", 1) > 1:
        return None
    with _decode_guard(label, None):
        pixels = hashlib.sha256(img.tobytes()).digest()
        palette = img.getpalette() if img.mode in ("P", "PA") else None
    transparency = img.info.get("transparency")
    return (img.mode, img.size, img.format, tuple(palette or ()), repr(transparency), _exif_orientation(img), pixels)


def _read_file(ref: _FileRef) -> bytes:
    return read_bounded(ref.path, ref.label)


_URL_MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


def _url_image(url: str) -> PreparedImage:
    """An image the service fetches itself: no data, size unknown, media type guessed from the path."""
    import urllib.parse

    parsed = urllib.parse.urlsplit(url)
    if not parsed.netloc:
        raise ImageInputError(f"malformed image URL {_short(url)!r} (no host)")
    suffix = os.path.splitext(parsed.path)[1].lower()
    return PreparedImage(
        data=None,
        media_type=_URL_MEDIA_TYPES.get(suffix, "image/*"),
        width=0,
        height=0,
        sha256=hashlib.sha256(url.encode("utf-8")).hexdigest(),
        source=redact_url(url),  # the label; the real URL (sent to the service) is ``url``
        url=url,
    )


def _fetch_url(url: str, *, timeout: float = FETCH_TIMEOUT, max_size: int = FETCH_MAX_BYTES) -> bytes:
    """GET an http(s) image with a timeout and a size cap; redirects only to http(s)."""
    import urllib.error
    import urllib.request

    class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
            if not newurl.lower().startswith(("http://", "https://")):
                raise urllib.error.URLError(f"redirect to a non-http(s) URL {_short(newurl)!r} refused")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    opener = urllib.request.build_opener(_HttpOnlyRedirects())
    request = urllib.request.Request(url, headers={"User-Agent": "azmm_magic", "Accept": "image/*"})
    try:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_size:
                raise ImageInputError(f"{url} is {int(length)} bytes, over the {max_size}-byte download cap")
            data = response.read(max_size + 1)
    except urllib.error.HTTPError as e:
        raise ImageInputError(f"could not fetch {url}: HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise ImageInputError(f"could not fetch {url}: {e.reason}") from e
    except (OSError, ValueError) as e:  # timeouts, resets, malformed URLs
        raise ImageInputError(f"could not fetch {url}: {library_text(e)}") from e
    if len(data) > max_size:
        raise ImageInputError(f"{url} is over the {max_size}-byte download cap")
    return data


def _figure_label(fig: Any) -> str:
    number = getattr(fig, "number", None)
    return f"<matplotlib Figure {number}>" if number is not None else "<matplotlib Figure>"


def _check_pixels(width: int, height: int, what: str, fix: str) -> None:
    """Refuse an in-memory image over Pillow's pixel limit before a copy of it is made (hashing, converting,
    rendering): a view such as ``np.broadcast_to`` can claim gigabytes it does not hold."""
    limit = _pil().MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise ImageInputError(f"{what} is too large to use ({width * height:,} pixels, over {limit:,}); {fix}")


def _figure_png(fig: Any) -> bytes:
    """The figure as PNG at its own dpi, cropped to its content (``bbox_inches="tight"``)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi="figure", bbox_inches="tight")
    except Exception as e:  # any drawing error is the figure's: reported as an input error
        raise ImageInputError(f"could not render {_figure_label(fig)} to PNG: {library_text(e)}") from e
    return buf.getvalue()


def _array_to_pil(arr: Any, label: str) -> PILImage:
    """A uint8/float[0,1]/bool array, HxW, HxWx1, HxWx3 or HxWx4, as a PIL image (L, RGB or RGBA)."""
    import numpy as np

    Image = _pil()
    accepted = (
        "accepted: HxW (gray), HxWx1, HxWx3 (RGB) or HxWx4 (RGBA) arrays of uint8 (0-255), float in [0, 1] or bool"
    )
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4))):
        raise ImageInputError(f"numpy array of shape {tuple(arr.shape)} is not an image; {accepted}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageInputError(f"numpy array of shape {tuple(arr.shape)} has no pixels; {accepted}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype.kind == "f":
        arr = _float_to_uint8(arr, label, accepted)
    elif arr.dtype != np.uint8:
        raise ImageInputError(
            f"{label}: dtype {arr.dtype} is not accepted ({accepted}); convert with arr.astype(np.uint8) "
            "or scale to [0, 1] floats"
        )
    return Image.fromarray(np.ascontiguousarray(arr))


def _float_to_uint8(arr: Any, label: str, accepted: str) -> Any:
    """Float [0, 1] -> uint8 0-255 (rounded); NaN/inf or values outside [0, 1] are errors."""
    import numpy as np

    values = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ImageInputError(f"{label} contains NaN or infinite values; {accepted}")
    low, high = float(values.min()), float(values.max())
    if low < -1e-6 or high > 1 + 1e-6:
        raise ImageInputError(
            f"{label} has float values in [{low:g}, {high:g}]; float images must be in [0, 1] "
            "(divide by 255, or use uint8)"
        )
    return (np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------------------------
# Decoding and processing (Pillow)
# --------------------------------------------------------------------------------------------------------------


def _pil() -> Any:
    """``PIL.Image``, imported on first use."""
    from PIL import Image

    register_heif()
    return Image


@contextmanager
def _decode_guard(label: str, data: bytes | None) -> Iterator[None]:
    """Turn Pillow's decoding failures into :class:`ImageInputError` (the pixel count is checked by
    :func:`_check_opened_pixels`, not by a warning filter: those are process-wide and not thread-safe)."""
    try:
        yield
    except ImageInputError:
        raise
    except Exception as e:  # Pillow's plugins raise OSError, SyntaxError, ValueError, EOFError, struct.error...
        raise _decode_error(label, data, e) from e


def _check_opened_pixels(img: PILImage, label: str) -> None:
    """Refuse an opened (not yet decoded) image of more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels, a possible
    decompression bomb, before any work proportional to its size."""
    limit = _pil().MAX_IMAGE_PIXELS
    if limit and img.width * img.height > limit:
        raise _decode_error(label, None, _pil().DecompressionBombError(f"{img.width}x{img.height}"))


def _decode_error(label: str, data: bytes | None, exc: Exception) -> ImageInputError:
    """A one-line message naming the input, what looks wrong and the accepted formats."""
    Image = _pil()
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return ImageInputError(
            f"{label} is too large to decode safely (over {Image.MAX_IMAGE_PIXELS} pixels, a possible "
            "decompression bomb); resize it first"
        )
    head = (data or b"")[:1024].lstrip()
    if data is not None and not data:
        reason = "the file is empty (0 bytes)"
    elif head.startswith(b"%PDF"):
        reason = "it is a PDF: give it as a file or bytes source (its pages are rendered), not as an image"
    elif b"<svg" in head.lower():
        reason = "it is an SVG (vector) image: render it to PNG first (e.g. with cairosvg)"
    elif head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypmsf1", b"ftyphevc", b"ftypavif"):
        reason = (f"it is HEIC/AVIF but its data is truncated or corrupt ({library_text(exc)})" if register_heif() else
                  "it is HEIC/AVIF, which this Pillow cannot open (pip install pillow-heif, or convert to JPEG)")
    elif isinstance(exc, Image.UnidentifiedImageError):
        reason = "Pillow does not recognise its format"
    else:
        reason = f"the image data is truncated or corrupt ({library_text(exc)})"
    return ImageInputError(f"cannot read {label} as an image: {reason}; {ACCEPTED_FORMATS}")


def _exif_orientation(img: PILImage) -> int:
    """The EXIF orientation tag (1-8), 1 when absent or unreadable."""
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not make a good image unusable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _from_bytes(data: bytes, label: str, opts: ImageOptions) -> PreparedImage:
    """Decode encoded image bytes (a file, a data: URL, a download, a rendered figure) and prepare them."""
    if not data:
        raise ImageInputError(f"cannot read {label} as an image: it is empty (0 bytes); {ACCEPTED_FORMATS}")
    Image = _pil()
    with _decode_guard(label, data):
        img = Image.open(io.BytesIO(data))
        _check_opened_pixels(img, label)
        png = img.format == "PNG"
        orientation = _checked_png_orientation(data) if png else _exif_orientation(img)
        stored = img.size
        target = max_useful_size(stored[0], stored[1], opts.detail, opts.rule)
        if png and _sendable_as_is(img, "PNG", bool(getattr(img, "is_animated", False)), data, orientation, stored,
                                   target, opts):
            # every chunk read and its checksum checked (truncation, corruption): the pixels are not needed
            return _make(data, "image/png", stored, label, stored, [])
        if img.format in ("JPEG", "MPO"):
            # decode at 1/2, 1/4 or 1/8 scale, never below the target; a JPEG sent as it is is decoded only to
            # check its data (every byte is still read), so at the smallest scale
            animated = bool(getattr(img, "is_animated", False)) and getattr(img, "n_frames", 1) > 1
            if _sendable_as_is(img, img.format, animated, data, orientation, stored, target, opts):
                img.draft(img.mode, (1, 1))  # check only
            elif target[0] < stored[0] or target[1] < stored[1]:
                img.draft(img.mode, target)
        img.load()
    return _process(img, label, opts, original=data, orientation=orientation, stored_size=stored)


def _checked_png_orientation(data: bytes) -> int:
    """Check every chunk of a PNG (length, checksum, the end chunk: a truncated or corrupt file raises) without
    decompressing its pixels, and return its EXIF orientation (1-8; 1 when it has none)."""
    with _pil().open(io.BytesIO(data)) as img:
        img.verify()
        exif = img.info.get("exif")
    if not exif:
        return 1
    try:
        tags = _pil().Exif()
        tags.load(exif)
        value = tags.get(0x0112, 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not make a good image unusable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _from_rendered(leaf: PdfPage | VideoFrame, opts: ImageOptions) -> PreparedImage:
    """A PDF page or video frame, rendered at the size the detail and token rule keep, then prepared."""
    img = leaf.render(lambda w, h: max_useful_size(w, h, opts.detail, opts.rule))
    return replace(_from_pil(img, leaf.label, opts), text=leaf.text, ref=leaf.ref)


def _from_pil(img: PILImage, label: str, opts: ImageOptions) -> PreparedImage:
    """Prepare an in-memory PIL image (the caller's object is not modified)."""
    with _decode_guard(label, None):
        img.load()
    if img.width == 0 or img.height == 0:
        raise ImageInputError(f"{label} has no pixels")
    return _process(img, label, opts, original=None, orientation=_exif_orientation(img), stored_size=img.size)


def _process(
    img: PILImage,
    label: str,
    opts: ImageOptions,
    *,
    original: bytes | None,
    orientation: int,
    stored_size: tuple[int, int],
) -> PreparedImage:
    """First frame, EXIF orientation, downscale, then keep the original bytes or encode anew."""
    notices: list[str] = []
    fmt = img.format
    animated = bool(getattr(img, "is_animated", False)) and getattr(img, "n_frames", 1) > 1
    if animated:
        notices.append(f"animated {fmt or 'image'}: first frame used")
        with _decode_guard(label, original):
            img = _first_frame(img)
    display_size = stored_size[::-1] if orientation in (5, 6, 7, 8) else stored_size
    target = max_useful_size(*display_size, opts.detail, opts.rule)
    if _sendable_as_is(img, fmt, animated, original, orientation, display_size, target, opts):
        assert original is not None and fmt is not None  # _sendable_as_is checked both
        return _make(original, SEND_AS_IS_MEDIA_TYPES[fmt], display_size, label, display_size, notices)
    if orientation != 1:
        img = _apply_orientation(img, orientation)
        notices.append(f"applied EXIF orientation {orientation} (rotated/flipped upright)")
    img, converted = _working_mode(img, fmt)
    if converted:
        notices.append(converted)
    if target != display_size:
        notices.append(
            f"downscaled {display_size[0]}x{display_size[1]} -> {target[0]}x{target[1]} (detail={opts.detail})"
        )
    if img.size != target:
        img = img.resize(target, _pil().Resampling.LANCZOS, reducing_gap=3.0)
    data, media_type = _encode(img, fmt)
    if len(data) > opts.max_bytes:
        data, media_type, img = _shrink_to_fit(img, opts.max_bytes, label, notices)
    return _make(data, media_type, img.size, label, display_size, notices)


def _sendable_as_is(
    img: PILImage,
    fmt: str | None,
    animated: bool,
    original: bytes | None,
    orientation: int,
    display_size: tuple[int, int],
    target: tuple[int, int],
    opts: ImageOptions,
) -> bool:
    """Whether the original bytes can be sent untouched: an accepted format and mode, one frame, upright,
    no larger than the service keeps, and within the byte cap. (Decided before decoding, see :func:`_from_bytes`.)"""
    return (
        original is not None
        and fmt in SEND_AS_IS_MEDIA_TYPES
        and not animated
        and orientation == 1
        and img.mode in _SENDABLE_MODES
        and target == display_size
        and len(original) <= opts.max_bytes
    )


def _make(
    data: bytes,
    media_type: str,
    size: tuple[int, int],
    label: str,
    original_size: tuple[int, int],
    notices: list[str],
) -> PreparedImage:
    return PreparedImage(
        data=data,
        media_type=media_type,
        width=size[0],
        height=size[1],
        sha256=hashlib.sha256(data).hexdigest(),
        source=label,
        original_size=original_size,
        notices=tuple(notices),
    )


def _first_frame(img: PILImage) -> PILImage:
    """A copy of frame 0 of an animation, leaving the caller's image on the frame it was on."""
    position = img.tell()
    try:
        img.seek(0)
        frame = img.copy()
        frame.info = dict(img.info)
    finally:
        img.seek(position)
    return frame


def _apply_orientation(img: PILImage, orientation: int) -> PILImage:
    """Rotate/flip to upright for an EXIF orientation 2-8 (the same mapping as ``ImageOps.exif_transpose``).

    The orientation is passed in, read before decoding, because a first-frame copy no longer carries EXIF.
    """
    Transpose = _pil().Transpose
    method = {
        2: Transpose.FLIP_LEFT_RIGHT,
        3: Transpose.ROTATE_180,
        4: Transpose.FLIP_TOP_BOTTOM,
        5: Transpose.TRANSPOSE,
        6: Transpose.ROTATE_270,
        7: Transpose.TRANSVERSE,
        8: Transpose.ROTATE_90,
    }.get(orientation)
    return img.transpose(method) if method is not None else img


def _working_mode(img: PILImage, fmt: str | None) -> tuple[PILImage, str]:
    """Convert to L, RGB or RGBA for resizing and encoding; returns the image and a notice ('' if routine)."""
    mode = img.mode
    kind = fmt or "image"
    if mode in ("L", "RGB", "RGBA"):
        return img, ""
    if mode == "1":
        return img.convert("L"), ""
    if mode in ("LA", "La", "PA", "RGBa"):
        return img.convert("RGBA"), ""
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB"), ""
    if mode == "CMYK":
        return img.convert("RGB"), f"converted CMYK {kind} to RGB"
    if mode.startswith("I") or mode == "F":
        return _to_8bit_gray(img), f"converted {_bit_depth(mode, fmt)} grayscale {kind} to 8-bit"
    target = "RGBA" if "A" in img.getbands() else "RGB"
    return img.convert(target), f"converted {mode} {kind} to {target}"


#: Formats whose integer grayscale holds at most 16 bits: older Pillow opens some of them (16-bit PNG in Pillow
#: 10.2) in mode ``I`` rather than ``I;16``, so the mode alone would call a 16-bit PNG "32-bit".
_MAX_16_BIT_FORMATS = frozenset({"PNG", "PPM", "JPEG2000", "SGI"})


def _bit_depth(mode: str, fmt: str | None = None) -> str:
    """The bit depth of a grayscale ``I``/``I;16``/``F`` image, from its format as well as its mode."""
    if mode == "F":
        return "32-bit float"
    return "16-bit" if mode.startswith("I;16") or fmt in _MAX_16_BIT_FORMATS else "32-bit"


def _to_8bit_gray(img: PILImage) -> PILImage:
    """16/32-bit integer or float grayscale -> 8-bit L (16-bit scaled by 1/257, other ranges stretched)."""
    if img.mode.startswith("I;16"):
        return img.convert("I").point(lambda v: v / 257 + 0.5).convert("L")
    low, high = cast("tuple[float, float]", img.getextrema())
    if img.mode == "I" and low >= 0 and high <= 255:
        return img.convert("L")
    if img.mode == "I" and low >= 0 and high <= 65535:
        return img.point(lambda v: v / 257 + 0.5).convert("L")
    span = (high - low) or 1
    return img.convert("F").point(lambda v: (v - low) * 255.0 / span + 0.5).convert("L")


def _has_alpha(img: PILImage) -> bool:
    """True for RGBA images whose alpha channel is not fully opaque."""
    return img.mode == "RGBA" and img.getchannel("A").getextrema() != (255, 255)


def _encode(img: PILImage, fmt: str | None) -> tuple[bytes, str]:
    """PNG for alpha or few colours (charts, screenshots), JPEG for photos; returns (bytes, media type)."""
    if img.mode == "RGBA" and not _has_alpha(img):
        img = img.convert("RGB")
    if img.mode == "RGBA" or (fmt not in ("JPEG", "MPO") and _few_colours(img)):
        return _save(img, "PNG"), "image/png"
    return _save(img, "JPEG", quality=JPEG_QUALITY), "image/jpeg"


def _few_colours(img: PILImage) -> bool:
    limit = min(_FEW_COLOURS, max(256, img.width * img.height // 16))
    return img.getcolors(limit) is not None


def _save(img: PILImage, fmt: str, *, quality: int = JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, "PNG", optimize=False)
    else:
        img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _flatten(img: PILImage) -> PILImage:
    """RGB or L version of ``img`` (alpha composited over white)."""
    if img.mode != "RGBA":
        return img
    Image = _pil()
    background = Image.new("RGB", img.size, (255, 255, 255))
    background.paste(img, mask=img.getchannel("A"))
    return background


def _shrink_to_fit(img: PILImage, max_bytes: int, label: str, notices: list[str]) -> tuple[bytes, str, PILImage]:
    """Re-encode as JPEG at lower qualities, then smaller sizes, until under ``max_bytes``."""
    Image = _pil()
    work = _flatten(img)
    for quality in _FALLBACK_JPEG_QUALITIES:
        data = _save(work, "JPEG", quality=quality)
        if len(data) <= max_bytes:
            notices.append(f"re-encoded as JPEG quality {quality} to fit {max_bytes} bytes")
            return data, "image/jpeg", work
    quality = _FALLBACK_JPEG_QUALITIES[-1]
    while min(work.size) > 16:
        work = work.resize((max(1, work.width * 3 // 4), max(1, work.height * 3 // 4)), Image.Resampling.LANCZOS)
        data = _save(work, "JPEG", quality=quality)
        if len(data) <= max_bytes:
            notices.append(
                f"re-encoded as JPEG quality {quality} at {work.width}x{work.height} to fit {max_bytes} bytes"
            )
            return data, "image/jpeg", work
    raise ImageInputError(
        f"{label} cannot be made smaller than max_bytes={max_bytes} bytes; crop or resize it, or raise the "
        "max_image_mb setting"
    )


# --------------------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------------------


def image_options(detail: Detail, rule: str, inline_urls: bool, max_bytes: int) -> ImageOptions:
    """Checked :class:`ImageOptions` (an unknown detail or token rule raises :class:`ConfigError`)."""
    check_detail(detail)
    token_rule(rule)
    if max_bytes <= 0:
        raise ConfigError(f"max_bytes must be positive; got {max_bytes}")
    return ImageOptions(detail=detail, rule=rule, inline_urls=bool(inline_urls), max_bytes=int(max_bytes))


def prepare_image(
    source: object,
    *,
    detail: Detail = "auto",
    rule: str = "gpt-4o",
    inline_urls: bool = False,
    max_bytes: int = 20 * 1024 * 1024,
) -> list[PreparedImage]:
    """Turn one image source into prepared images (a glob or a list can expand to many).

    Accepted: a file path (``str``/``pathlib.Path``, ``~`` expanded); a glob (``*``, ``?``, ``[``, recursive
    ``**``; sorted); an ``http(s)`` URL (sent as a URL, or fetched and inlined when ``inline_urls``); a ``data:``
    URL; ``bytes``/``bytearray``/``memoryview``; a PIL image; a numpy array (uint8, float in [0, 1] or bool;
    HxW, HxWx1, HxWx3, HxWx4); a matplotlib Figure; ``matplotlib.pyplot`` or ``"plt.gcf()"`` (current figure);
    a :class:`PreparedImage` (returned as is); a list or tuple of these (flattened).

    Each decoded image gets its EXIF orientation applied, its first frame taken if animated, its mode converted
    when needed, and is downscaled to :func:`max_useful_size` for ``detail`` and ``rule``. A PNG/JPEG/WEBP/GIF
    file that needs none of that keeps its bytes (and so its sha256). Otherwise photos become JPEG (quality 85)
    and images with transparency or few colours PNG. Results over ``max_bytes`` are re-encoded smaller.

    Raises :class:`ImageInputError` (naming the input) for anything that cannot be used, and
    :class:`ConfigError` for an invalid ``detail``, ``rule`` or ``max_bytes``.
    """
    opts = image_options(detail, rule, inline_urls, max_bytes)
    return [prepare_leaf(leaf, opts) for leaf in _expand(source)]


def expand_sources(sources: Iterable[object] | object) -> list[object]:
    """Expand globs, lists and single sources into per-image leaves (cheap: nothing is read or decoded yet).

    A leaf is passed to :func:`prepare_leaf`; :func:`leaf_label` names it for messages and captions.
    """
    if looks_like_image(sources) or _is_ndarray(sources) or isinstance(sources, (str, os.PathLike, bytes, bytearray, list, tuple)):
        return _expand(sources)
    if isinstance(sources, Iterable) and not isinstance(sources, Mapping) and not _is_dataframe(sources):
        import itertools

        items = list(itertools.islice(sources, MAX_SOURCES + 1))  # an endless generator is cut, not exhausted
        if len(items) > MAX_SOURCES:
            raise ImageInputError(f"over {MAX_SOURCES:,} sources given; give a glob or fewer items per batch")
        return _expand(items)
    return _expand(sources)


def leaf_label(leaf: object) -> str:
    """A short name for a leaf of :func:`expand_sources` (file label, URL, or a description of the object)."""
    if isinstance(leaf, (_FileRef, _BytesRef, PdfPage, VideoFrame)):
        return leaf.label
    if isinstance(leaf, _UrlRef):
        return redact_url(leaf.url)
    if isinstance(leaf, PreparedImage):
        return leaf.source
    size = getattr(leaf, "size", None)
    if isinstance(size, tuple) and len(size) == 2:
        return f"<PIL.Image {size[0]}x{size[1]}>"
    shape = getattr(leaf, "shape", None)
    if shape is not None:
        return f"<numpy {tuple(shape)} {getattr(leaf, 'dtype', '')}>"
    return f"<{type(leaf).__name__}>"


def leaf_bytes(leaf: object) -> int | None:
    """The encoded size of a file or bytes leaf of :func:`expand_sources` (a ``stat`` for a file), else None (a
    URL, a PDF page, a video frame, an in-memory image: its cost is not told by a size)."""
    if isinstance(leaf, _BytesRef):
        return len(leaf.data)
    if isinstance(leaf, _FileRef):
        try:
            return leaf.path.stat().st_size
        except OSError:
            return None
    return None


def probe_size(leaf: object) -> tuple[int, int] | None:
    """The pixel size of a leaf of :func:`expand_sources` without decoding its pixels (file and bytes: read from
    the header, EXIF rotation applied), or None when it cannot be known cheaply (a URL, an unreadable file)."""
    if isinstance(leaf, PreparedImage):
        return leaf.original_size or ((leaf.width, leaf.height) if leaf.width else None)
    if isinstance(leaf, (PdfPage, VideoFrame)):
        return leaf.size
    if _is_pil_image(leaf):
        width, height = cast(Any, leaf).size
        return int(width), int(height)
    if _is_ndarray(leaf):
        shape = cast(Any, leaf).shape
        return (int(shape[1]), int(shape[0])) if len(shape) >= 2 else None
    if isinstance(leaf, (_FileRef, _BytesRef)):
        try:
            source = leaf.path if isinstance(leaf, _FileRef) else io.BytesIO(leaf.data)
            with _pil().open(source) as img:
                width, height = img.size
                return (height, width) if _exif_orientation(img) in (5, 6, 7, 8) else (width, height)
        except Exception:  # noqa: BLE001 - unknown here; preparing it later gives the real error
            return None
    return None


def prepare_images(
    sources: Iterable[object] | object,
    *,
    detail: Detail = "auto",
    rule: str = "gpt-4o",
    inline_urls: bool = False,
    max_bytes: int = 20 * 1024 * 1024,
    max_images: int = 10,
) -> list[PreparedImage]:
    """Prepare one source or an iterable of sources (see :func:`prepare_image`), at most ``max_images`` in all.

    The count is checked after globs and lists are expanded but before anything is decoded, so a glob that
    matches thousands of files fails fast with :class:`ImageInputError`.
    """
    opts = image_options(detail, rule, inline_urls, max_bytes)
    leaves = expand_sources(sources)
    if len(leaves) > max_images:
        raise ImageInputError(too_many_images(leaves, max_images), settings=("max_images",), remedy="each")
    return [prepare_leaf(leaf, opts) for leaf in leaves]


__all__ = [
    "MAX_NESTING",
    "MAX_SOURCES",
    "leaf_bytes",
    "probe_size",
    "ImageOptions",
    "expand_sources",
    "image_options",
    "leaf_label",
    "prepare_leaf",
    "TOKEN_RULES",
    "Detail",
    "PreparedImage",
    "TokenRule",
    "caption",
    "clear_prepared_memo",
    "estimate_image_tokens",
    "looks_like_image",
    "max_useful_size",
    "prepare_image",
    "prepare_images",
    "resolve_name",
    "short_source",
    "small_copy",
    "light_copy",
    "keeps_thumbnail",
    "file_thumbnail",
    "small_thumbnail",
]
