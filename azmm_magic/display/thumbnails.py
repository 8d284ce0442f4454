"""The images sent with a request, as a row of captioned thumbnails (HTML) or Markdown images.

A thumbnail is an inline ``data:`` URL made locally from the prepared image; only an image the user passed by
URL is shown by that URL (it is the user's own input, not model output), and only when the URL carries no
query string or userinfo: a signed URL (an Azure Blob SAS) is a credential, so it is never written into the
notebook; a placeholder stands in for its thumbnail. Captions and tooltips are labels
(:func:`azmm_magic.display.untrusted.label`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from azmm_magic.core.images import caption as image_caption
from azmm_magic.core.images import thumbnail
from azmm_magic.core.urls import has_secret_parts
from azmm_magic.display.untrusted import html_label, label, markdown_label

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.images import PreparedImage

THUMB_SIDE = 128
_FIG = "margin: 0; display: inline-flex; flex-direction: column; align-items: center; max-width: 160px;"
_IMG = (
    "max-height: {side}px; max-width: 160px; border: 1px solid rgba(128,128,128,0.35); border-radius: 4px; "
    "object-fit: contain; background: repeating-conic-gradient(rgba(128,128,128,0.12) 0% 25%, transparent 0% 50%) "
    "50% / 12px 12px;"
)
# the name may be cut (with an ellipsis, full name in the tooltip), the size never is
_CAPTION = "font-size: 0.75em; opacity: 0.7; margin-top: 2px; max-width: 160px; display: flex; white-space: nowrap;"
_NAME = "overflow: hidden; text-overflow: ellipsis; min-width: 0;"
_SIZE = "flex: none;"
_PLACEHOLDER = (
    "width: 96px; height: 64px; display: flex; align-items: center; justify-content: center; text-align: center; "
    "font-size: 0.7em; opacity: 0.6; border: 1px dashed rgba(128,128,128,0.5); border-radius: 4px;"
)


#: What tells apart the images of one file: a video frame's `` @ 01:02.5`` or a PDF page's `` p.7``.
_MARK = re.compile(r"^(?P<name>.*?)(?P<mark> @ \d[\d:.]*(?: to \d[\d:.]*)?| p\.\d+)$")


def caption_parts(name: str) -> tuple[str, str]:
    """``clip.mp4 @ 00:01.5`` -> (``clip.mp4``, `` @ 00:01.5``): the part that may be cut with an ellipsis and
    the part always shown (the timestamp or page number is what differs between the images of one file)."""
    m = _MARK.match(name)
    return (m["name"], m["mark"]) if m else (name, "")


def caption_html(name: str, tail_html: str = "", style: str = "") -> str:
    """One line: ``name`` (a label: one line, URL query strings redacted) cut with an ellipsis when short of room,
    then its mark and ``tail_html`` (escaped already) always shown."""
    cut, mark = caption_parts(label(name))
    return (f'<div style="display: flex; white-space: nowrap; {style}"><span style="{_NAME}">{html.escape(cut)}</span>'
            f'<span style="{_SIZE}">{html.escape(mark)}{tail_html}</span></div>')


def thumbnail_src(image: PreparedImage) -> str | None:
    """The ``src`` of an image's thumbnail: a data URL (JPEG for photos, PNG otherwise), or the image's URL
    (None for a signed URL: it is never written into the notebook; None for a record kept without pixels whose
    file is gone)."""
    if image.url is not None and image.data is None:
        return None if has_secret_parts(image.url) else image.url
    made = thumbnail(image, 2 * THUMB_SIDE)  # a record kept without pixels: from its file, if it is there
    return None if made is None else made.data_url()


def thumbnails_html(images: Sequence[PreparedImage]) -> str:
    """A row of thumbnails with captions (source · size sent)."""
    if not images:
        return ""
    figs = []
    for image in images:
        cap = html_label(image_caption(image))
        tip = html_label(f"{image.source} · {image.width}×{image.height}" if image.width else image.source)
        name, _, size = image_caption(image).rpartition(" · ")
        src = thumbnail_src(image)
        picture = (
            f'<img src="{html.escape(src, quote=True)}" alt="{cap}" title="{tip}" '
            f'style="{_IMG.format(side=THUMB_SIDE)}"/>'
            if src is not None
            else f'<div title="{tip}" style="{_PLACEHOLDER}">{"signed URL<br/>not shown" if image.url else "no picture kept"}</div>'
        )
        cut, mark = caption_parts(label(name))
        figs.append(
            f'<figure style="{_FIG}">{picture}'
            f'<figcaption style="{_CAPTION}"><span style="{_NAME}">{html.escape(cut)}</span>'
            f'<span style="{_SIZE}">{html.escape(mark)}&nbsp;· {html_label(size)}</span></figcaption></figure>'
        )
    return f'<div style="display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 0.6em;">{"".join(figs)}</div>'


def images_line(images: Sequence[PreparedImage]) -> str:
    """The images sent, on one line for a terminal: ``sent 2 images: chart_fig · 640×480, cat.jpg · 512×384``."""
    count = "1 image" if len(images) == 1 else f"{len(images)} images"
    return f"[sent {count}: {', '.join(label(image_caption(i)) for i in images)}]"


def thumbnails_markdown(images: Sequence[PreparedImage]) -> str:
    """The images as Markdown: an image per data-URL thumbnail (a local copy, never a remote load), its caption
    escaped; a URL image is named, not shown."""
    parts = []
    for image in images:
        src = thumbnail_src(image)
        name = markdown_label(image_caption(image))
        parts.append(f"![{name}](<{src}>)" if src is not None and src.startswith("data:") else f"\\[{name}\\]")
    return " ".join(parts)


__all__ = ["THUMB_SIDE", "caption_html", "caption_parts", "image_caption", "images_line", "thumbnail_src",
           "thumbnails_html", "thumbnails_markdown"]
