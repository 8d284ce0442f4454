"""Sources to leaves: a source (a path, a glob, a URL, bytes, an in-memory image, a list of these) becomes a flat
list of leaves, one per image, without reading or decoding anything but a PDF's page count or a video's header.

A leaf is a :class:`PreparedImage`, a :class:`FileRef`, :class:`BytesRef` or :class:`UrlRef`, a PDF page, a video
frame, a PIL image, a numpy array or a matplotlib Figure. :func:`leaf_label`, :func:`leaf_bytes` and
:func:`probe_size` tell what a leaf is, how large its file is and its pixel size, cheaply.
"""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from azmm_magic.core.documents import PdfPage
from azmm_magic.core.errors import ImageInputError
from azmm_magic.core.files import GLOB_CHARS, check_regular, glob_files
from azmm_magic.core.images.codec import exif_orientation, pil
from azmm_magic.core.images.objects import is_dataframe, is_figure, is_ndarray, is_pil_image, is_pyplot, looks_like_image
from azmm_magic.core.images.types import ACCEPTED_SOURCES, BytesRef, FileRef, PreparedImage, UrlRef, shorten
from azmm_magic.core.media import media_leaves, split_fragment
from azmm_magic.core.urls import redact_url
from azmm_magic.core.video import VideoFrame, VideoFrames

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_CURRENT_FIGURE = {"plt.gcf()", "pyplot.gcf()", "matplotlib.pyplot.gcf()"}


#: At most this many sources in one list (or iterable), and lists nested at most this deep.
MAX_SOURCES = 100_000
MAX_NESTING = 16


def _expand(source: object, sampling: VideoFrames | None = None, depth: int = 0) -> list[object]:
    """Flatten ``source`` into leaves: PreparedImage, FileRef, BytesRef, UrlRef, PdfPage, VideoFrame, PIL image,
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
        return media_leaves(None, data, f"<bytes {len(data)} B>", "", sampling) or [BytesRef(data, f"<bytes {len(data)} B>")]
    if isinstance(source, str):
        return _expand_string(source, sampling)
    if isinstance(source, os.PathLike):
        return _expand_path(os.fspath(source), str(source), "", sampling)
    if is_pyplot(source):
        return [_current_figure()]
    if is_pil_image(source) or is_ndarray(source) or is_figure(source):
        return [source]
    if is_dataframe(source):
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
        return [BytesRef(data, f"<data URL {len(data)} B>")]
    if lower.startswith(("http://", "https://")):
        return [UrlRef(text)]
    scheme = _SCHEME.match(text)
    if scheme and len(scheme.group(1)) > 1 and not os.path.exists(os.path.expanduser(text)):
        raise ImageInputError(
            f"unsupported URL scheme {scheme.group(1)!r} in {shorten(text)!r}: only http://, https:// and data: "
            "URLs are accepted (give a local file as a plain path)"
        )
    raw, fragment = split_fragment(text)
    return _expand_path(raw, raw, fragment, sampling)
def _expand_path(raw: str, label: str, fragment: str = "", sampling: VideoFrames | None = None) -> list[object]:
    """A path (``~`` expanded) or, if it has glob characters and is no existing file, a glob."""
    if "\0" in raw:
        raise ImageInputError(f"{shorten(label)!r}: a file name cannot contain a NUL character")
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
            raise ImageInputError(f"cannot read {shorten(label)}: {e.strerror or type(e).__name__}") from None
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
    return media_leaves(path, None, label, fragment, sampling) or [FileRef(path, label)]


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
    return [leaf for m in matches for leaf in media_leaves(Path(m), None, m, fragment, sampling) or [FileRef(Path(m), m)]]


def _decode_data_url(url: str) -> bytes:
    """The payload of a ``data:[<media type>][;base64],<data>`` URL."""
    import binascii
    import urllib.parse

    header, sep, payload = url.partition(",")
    if not sep:
        raise ImageInputError(f"malformed data: URL {shorten(url)!r} (no comma before the data)")
    if header.lower().endswith(";base64"):
        try:
            return base64.b64decode(re.sub(r"\s+", "", payload), validate=True)
        except (binascii.Error, ValueError) as e:
            raise ImageInputError(f"data: URL {shorten(url)!r} has invalid base64 data") from e
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




def expand_sources(sources: Iterable[object] | object) -> list[object]:
    """Expand globs, lists, other iterables (at most :data:`MAX_SOURCES`) and single sources into per-image
    leaves. Cheap: no image is read or decoded yet (only a PDF's page count and a video's header are read).

    A leaf is passed to :func:`~azmm_magic.core.images.prepare.prepare_leaf`; :func:`leaf_label` names it for
    messages and captions.
    """
    if looks_like_image(sources) or is_ndarray(sources) or isinstance(sources, (str, os.PathLike, bytes, bytearray, list, tuple)):
        return _expand(sources)
    if isinstance(sources, Iterable) and not isinstance(sources, Mapping) and not is_dataframe(sources):
        import itertools

        items = list(itertools.islice(sources, MAX_SOURCES + 1))  # an endless generator is cut, not exhausted
        if len(items) > MAX_SOURCES:
            raise ImageInputError(f"over {MAX_SOURCES:,} sources given; give a glob or fewer items per batch")
        return _expand(items)
    return _expand(sources)


def leaf_label(leaf: object) -> str:
    """A short name for a leaf of :func:`expand_sources` (file label, URL, or a description of the object)."""
    if isinstance(leaf, (FileRef, BytesRef, PdfPage, VideoFrame)):
        return leaf.label
    if isinstance(leaf, UrlRef):
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
    if isinstance(leaf, BytesRef):
        return len(leaf.data)
    if isinstance(leaf, FileRef):
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
    if is_pil_image(leaf):
        width, height = cast(Any, leaf).size
        return int(width), int(height)
    if is_ndarray(leaf):
        shape = cast(Any, leaf).shape
        return (int(shape[1]), int(shape[0])) if len(shape) >= 2 else None
    if isinstance(leaf, (FileRef, BytesRef)):
        try:
            source = leaf.path if isinstance(leaf, FileRef) else io.BytesIO(leaf.data)
            with pil().open(source) as img:
                width, height = img.size
                return (height, width) if exif_orientation(img) in (5, 6, 7, 8) else (width, height)
        except Exception:  # noqa: BLE001 - unknown here; preparing it later gives the real error
            return None
    return None



__all__ = ["MAX_NESTING", "MAX_SOURCES", "expand_sources", "leaf_bytes", "leaf_label", "probe_size"]
