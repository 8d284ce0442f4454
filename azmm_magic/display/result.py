"""How a :class:`~azmm_magic.core.result.VisionResult` looks: HTML, Markdown and plain text, with its footer.

Registered for ``VisionResult`` by :func:`azmm_magic.display.install`, so a result renders in Jupyter without
the extension loaded.
"""

from __future__ import annotations

import pprint
from collections.abc import Sequence
from typing import TYPE_CHECKING

from azmm_magic.display.bundle import BOX_STYLE, FOOTER_STYLE, json_html, json_text
from azmm_magic.display.terminal import terminal_text
from azmm_magic.display.thumbnails import image_caption, thumbnails_html, thumbnails_markdown
from azmm_magic.display.untrusted import answer_html, html_label, label, markdown_label, markdown_text, terminal

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.images import PreparedImage
    from azmm_magic.core.result import VisionResult

UNREPORTED = "usage not reported by the server"
NO_TEXT_HTML = '<p style="opacity:0.6">(no text in the answer)</p>'


def _seconds(elapsed: float) -> str:
    if elapsed < 0.01:
        return f"{elapsed * 1000:.1f} ms"
    return f"{elapsed:.2f} s"


def footer_text(result: VisionResult) -> str:
    """``deployment · 812 in / 154 out tokens · 1.23 s · cached`` plus truncation/incomplete/notice marks."""
    parts = [result.deployment or "?"]
    u = result.usage
    tokens = f"{u.prompt_tokens:,} in / {u.completion_tokens:,} out tokens" if u.reported else UNREPORTED
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
    return label(" · ".join(parts))


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
    return f'<div class="azmm-footer" style="{FOOTER_STYLE}">{html_label(text)}</div>'


def answer_body_html(result: VisionResult) -> str:
    """The answer as HTML: its Markdown rendered by :func:`~azmm_magic.display.untrusted.answer_html` (raw HTML
    escaped, images as links, only http(s)/mailto links), or a JSON answer (``--json`` / ``--schema``) as a
    highlighted code block."""
    if not result.text:
        return NO_TEXT_HTML
    if result.parsed is not None:
        return json_html(result.text)
    return answer_html(result.text)


def result_html(result: VisionResult, *, live: bool = False, thumbnails: bool = True) -> str:
    """The result as the magic shows it: its images' thumbnails (unless ``thumbnails`` is False), the answer and
    the footer ("writing…" while ``live``)."""
    body = answer_body_html(result)
    footer = "writing…" if live else footer_text(result)
    thumbs = thumbnails_html(result.images) if thumbnails else ""
    return (
        f'<div class="azmm-result" style="{BOX_STYLE}">{thumbs}'
        f'<div class="azmm-answer">{body}</div>{footer_html(footer)}</div>'
    )


def answer_plain(result: VisionResult) -> str:
    """The answer as text for a terminal: the parsed value's repr for a JSON answer, else tidy text."""
    if result.parsed is not None:
        return terminal(pprint.pformat(result.parsed, width=100, sort_dicts=False))
    return terminal_text(result.text).rstrip("\n")


def result_plain(result: VisionResult) -> str:
    return f"{answer_plain(result)}\n— {footer_text(result)}"


def result_markdown(result: VisionResult) -> str:
    thumbs = thumbnails_markdown(result.images)
    head = f"{thumbs}\n\n" if thumbs else ""
    body = markdown_text(f"```json\n{json_text(result.text)}\n```" if result.parsed is not None else result.text)
    return f"{head}{body}\n\n*{markdown_label(footer_text(result))}*"


def result_bundle(result: VisionResult) -> dict[str, str]:
    """text/html for JupyterLab/VS Code, text/markdown for Markdown-only frontends, text/plain for terminals."""
    return {
        "text/plain": result_plain(result),
        "text/markdown": result_markdown(result),
        "text/html": result_html(result),
    }


__all__ = [
    "answer_body_html", "answer_plain", "footer_html", "footer_text", "result_bundle", "result_html",
    "result_markdown", "result_plain",
]
