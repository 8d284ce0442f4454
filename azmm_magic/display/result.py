"""How a :class:`~azmm_magic.core.result.VisionResult` looks: HTML, Markdown and plain text, with its footer.

Registered for ``VisionResult`` by :func:`azmm_magic.display.install`, so a result renders in Jupyter without
the extension loaded.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from azmm_magic.display.bundle import BOX_STYLE, FOOTER_STYLE, answer_html, inert_markdown
from azmm_magic.display.thumbnails import image_caption, thumbnails_html, thumbnails_markdown

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.images import PreparedImage
    from azmm_magic.core.result import VisionResult

NO_TEXT_HTML = '<p style="opacity:0.6">(no text in the answer)</p>'


def _seconds(elapsed: float) -> str:
    if elapsed < 0.01:
        return f"{elapsed * 1000:.1f} ms"
    return f"{elapsed:.2f} s"


def footer_text(result: VisionResult) -> str:
    """``deployment · 812 in / 154 out tokens · 1.23 s · cached`` plus truncation/incomplete/notice marks."""
    parts = [result.deployment or "?"]
    u = result.usage
    tokens = f"{u.prompt_tokens:,} in / {u.completion_tokens:,} out tokens"
    if u.reasoning_tokens:
        tokens += f" ({u.reasoning_tokens:,} reasoning)"
    parts.append(tokens)
    parts.append(_seconds(result.elapsed))
    if result.cached:
        parts.append("cached")
    if result.incomplete:
        parts.append("INCOMPLETE: the answer was cut off (not cached)")
    elif result.finish_reason == "length":
        parts.append("truncated at the output-token limit: raise --max-tokens")
    elif result.finish_reason == "content_filter":
        parts.append("stopped by Azure's content filter")
    parts.extend(result.notices)
    parts.extend(_image_notices(result.images))
    return " · ".join(parts)


def _image_notices(images: Sequence[PreparedImage]) -> list[str]:
    """What was done to an image that a user should know (first frame of an animation, colour conversion,
    recompression to fit the size limit...); routine downscaling to the billed size is left out."""
    return [
        f"{image_caption(image).split(' · ')[0]}: {notice}"
        for image in images
        for notice in image.notices
        if not notice.startswith("downscaled")
    ]


def footer_html(text: str) -> str:
    """The small grey line under an answer."""
    return f'<div class="azmm-footer" style="{FOOTER_STYLE}">{html.escape(text)}</div>'


def result_html(result: VisionResult, *, live: bool = False) -> str:
    body = answer_html(result.text) if result.text else NO_TEXT_HTML
    footer = "writing…" if live else footer_text(result)
    return (
        f'<div class="azmm-result" style="{BOX_STYLE}">{thumbnails_html(result.images)}'
        f'<div class="azmm-answer">{body}</div>{footer_html(footer)}</div>'
    )


def result_plain(result: VisionResult) -> str:
    return f"{result.text}\n— {footer_text(result)}"


def result_markdown(result: VisionResult) -> str:
    thumbs = thumbnails_markdown(result.images)
    head = f"{thumbs}\n\n" if thumbs else ""
    return f"{head}{inert_markdown(result.text)}\n\n*{footer_text(result)}*"


def result_bundle(result: VisionResult) -> dict[str, str]:
    """text/html for JupyterLab/VS Code, text/markdown for Markdown-only frontends, text/plain for terminals."""
    return {
        "text/plain": result_plain(result),
        "text/markdown": result_markdown(result),
        "text/html": result_html(result),
    }


__all__ = ["footer_html", "footer_text", "result_bundle", "result_html", "result_markdown", "result_plain"]
