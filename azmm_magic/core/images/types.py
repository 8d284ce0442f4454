"""Plain data: a prepared image (:class:`PreparedImage`), how images are prepared (:class:`ImageOptions`), the
leaves a source expands to before anything is read (:class:`FileRef`, :class:`BytesRef`, :class:`UrlRef`), and how
they are named in captions. Nothing here decodes or reads a file.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azmm_magic.core.errors import ConfigError, ImageInputError
from azmm_magic.core.settings import Detail
from azmm_magic.core.tokens import check_detail, estimate_image_tokens, token_rule
from azmm_magic.core.urls import redact_url

ACCEPTED_FORMATS = (
    "accepted formats: PNG, JPEG, WEBP, GIF (sent as they are), HEIC/HEIF, AVIF and anything else Pillow can open "
    "(BMP, TIFF, ICO, ...; converted), PDF (pages) and video (frames)"
)
ACCEPTED_SOURCES = (
    "a file path or glob (images, PDFs: 'paper.pdf#page=7', videos: 'clip.mp4#t=10,20'), an http(s):// or data: "
    "URL, bytes, a PIL image, a numpy array, a matplotlib Figure (or 'plt.gcf()'), a PreparedImage, or a list of these"
)


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


@dataclass(frozen=True)
class ImageOptions:
    """How to prepare images: the ``detail`` level, the token rule, whether URLs are inlined, the byte cap."""

    detail: Detail
    rule: str
    inline_urls: bool
    max_bytes: int


def image_options(detail: Detail, rule: str, inline_urls: bool, max_bytes: int) -> ImageOptions:
    """Checked :class:`ImageOptions` (an unknown detail or token rule raises :class:`ConfigError`)."""
    check_detail(detail)
    token_rule(rule)
    if max_bytes <= 0:
        raise ConfigError(f"max_bytes must be positive; got {max_bytes}")
    return ImageOptions(detail=detail, rule=rule, inline_urls=bool(inline_urls), max_bytes=int(max_bytes))


@dataclass(frozen=True)
class FileRef:
    """A leaf: an image file, read when it is prepared."""

    path: Path
    label: str


@dataclass(frozen=True)
class BytesRef:
    """A leaf: encoded image bytes (given as bytes or a ``data:`` URL)."""

    data: bytes
    label: str


@dataclass(frozen=True)
class UrlRef:
    """A leaf: an ``http(s)`` image URL (sent as it is, or fetched when URLs are inlined)."""

    url: str


def shorten(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters (ending in ``...``) for a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


__all__ = ["ACCEPTED_FORMATS", "ACCEPTED_SOURCES", "BytesRef", "FileRef", "ImageOptions", "PreparedImage", "UrlRef",
           "caption", "image_options", "short_source", "shorten"]
