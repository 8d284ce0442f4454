"""How results, requests and live streams look: mimebundles for JupyterLab / VS Code, plain text for terminals.

Model output is rendered from Markdown with raw HTML disabled, so an answer can never inject markup or script
into the notebook. Styles are inline and theme-neutral (grey borders with alpha, inherited colours), so the
output reads well in light and dark themes.
"""

from __future__ import annotations

import base64
import html
import sys
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.images import PreparedImage
    from azmm_magic.core.result import VisionResult

THUMB_SIDE = 128
_BOX = "font-family: var(--jp-content-font-family, inherit); line-height: 1.45;"
_FOOTER = "font-size: 0.82em; opacity: 0.68; margin-top: 0.5em; font-family: var(--jp-ui-font-family, inherit);"
_FIG = "margin: 0; display: inline-flex; flex-direction: column; align-items: center; max-width: 160px;"
_IMG = (
    "max-height: {side}px; max-width: 160px; border: 1px solid rgba(128,128,128,0.35); border-radius: 4px; "
    "object-fit: contain; background: repeating-conic-gradient(rgba(128,128,128,0.12) 0% 25%, transparent 0% 50%) "
    "50% / 12px 12px;"
)
_CAPTION = "font-size: 0.75em; opacity: 0.7; margin-top: 2px; max-width: 160px; overflow: hidden; " \
    "text-overflow: ellipsis; white-space: nowrap;"


@lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": False}).enable("table")


def markdown_to_html(text: str) -> str:
    """Markdown to HTML with raw HTML escaped (answers cannot inject markup)."""
    return _markdown().render(text)


@lru_cache(maxsize=64)
def _answer_html(text: str) -> str:
    """:func:`markdown_to_html` of a finished answer, memoized: re-displaying a result (a cache hit, a re-run
    cell, ``display(answer)``) does not parse the Markdown again. Live streams call the uncached function."""
    return markdown_to_html(text)


# ----- footer ----------------------------------------------------------------------------------------------------
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


# ----- images ----------------------------------------------------------------------------------------------------
def _thumb_src(image: PreparedImage) -> str:
    if image.url is not None and image.data is None:
        return image.url
    media_type, data = image.thumbnail()  # JPEG for photos, PNG otherwise; made with the image, cached on it
    return f"data:{media_type};base64," + base64.b64encode(data).decode("ascii")


def image_caption(image: PreparedImage) -> str:
    """``name · W×H`` (a file path shows its base name; the full source is in the tooltip)."""
    size = f"{image.width}×{image.height}" if image.width else "by URL"
    source = image.source
    if not source.startswith(("<", "http://", "https://", "data:")):
        source = source.replace("\\", "/").rsplit("/", 1)[-1]
    return f"{source} · {size}"


def thumbnails_html(images: Sequence[PreparedImage]) -> str:
    """A row of thumbnails with captions (source · size sent)."""
    if not images:
        return ""
    figs = []
    for image in images:
        cap = html.escape(image_caption(image))
        tip = html.escape(f"{image.source} · {image.width}×{image.height}" if image.width else image.source)
        figs.append(
            f'<figure style="{_FIG}"><img src="{html.escape(_thumb_src(image), quote=True)}" alt="{cap}" '
            f'title="{tip}" style="{_IMG.format(side=THUMB_SIDE)}"/>'
            f'<figcaption style="{_CAPTION}">{cap}</figcaption></figure>'
        )
    return f'<div style="display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 0.6em;">{"".join(figs)}</div>'


def thumbnails_markdown(images: Sequence[PreparedImage]) -> str:
    return " ".join(f"![{image_caption(i)}]({_thumb_src(i)})" for i in images)


# ----- results ---------------------------------------------------------------------------------------------------
def result_html(result: VisionResult, *, live: bool = False) -> str:
    body = _answer_html(result.text) if result.text else '<p style="opacity:0.6">(no text in the answer)</p>'
    footer = "writing…" if live else footer_text(result)
    return (
        f'<div class="azmm-result" style="{_BOX}">{thumbnails_html(result.images)}'
        f'<div class="azmm-answer">{body}</div>'
        f'<div class="azmm-footer" style="{_FOOTER}">{html.escape(footer)}</div></div>'
    )


def result_plain(result: VisionResult) -> str:
    return f"{result.text}\n— {footer_text(result)}"


def result_markdown(result: VisionResult) -> str:
    thumbs = thumbnails_markdown(result.images)
    head = f"{thumbs}\n\n" if thumbs else ""
    return f"{head}{result.text}\n\n*{footer_text(result)}*"


def result_bundle(result: VisionResult) -> dict[str, str]:
    """text/html for JupyterLab/VS Code, text/markdown for Markdown-only frontends, text/plain for terminals."""
    return {
        "text/plain": result_plain(result),
        "text/markdown": result_markdown(result),
        "text/html": result_html(result),
    }


def message_bundle(text: str, *, kind: str = "error") -> dict[str, str]:
    """A short boxed message (used by the panel and for notices)."""
    colour = "rgba(220,50,50,0.85)" if kind == "error" else "rgba(128,128,128,0.6)"
    return {
        "text/plain": text,
        "text/html": f'<div style="border-left: 3px solid {colour}; padding: 4px 10px;">{html.escape(text)}</div>',
    }


# ----- live streams ----------------------------------------------------------------------------------------------
class StreamView:
    """Shows an answer while it is written, redrawn at most ``max_rate`` times per second.

    In a kernel it updates one display handle (so the notebook is not flooded); in a terminal it writes the new
    text to ``stream``. ``close()`` removes the live view in a kernel (the final result is displayed by the
    caller), and ends the line in a terminal.
    """

    def __init__(
        self,
        images: Sequence[PreparedImage] = (),
        *,
        kernel: bool = True,
        max_rate: float = 8.0,
        stream: TextIO | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.images = tuple(images)
        self.kernel = kernel
        self.min_interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self.stream = stream or sys.stdout
        self.clock = clock
        self.text = ""
        self.updates = 0
        self._written = 0
        self._last = float("-inf")
        self._handle: Any = None
        self.status = "writing…"

    def _bundle(self) -> dict[str, str]:
        body = markdown_to_html(self.text) if self.text else '<p style="opacity:0.6">waiting for the first words…</p>'
        return {
            "text/plain": self.text or "…",
            "text/html": f'<div style="{_BOX}">{thumbnails_html(self.images)}<div>{body}</div>'
            f'<div style="{_FOOTER}">{html.escape(self.status)}</div></div>',
        }

    def start(self) -> StreamView:
        if self.kernel:
            from IPython.display import display

            self._handle = display(self._bundle(), raw=True, display_id=True)
        self._last = self.clock()
        return self

    def add(self, chunk: str) -> None:
        self.text += chunk
        now = self.clock()
        if now - self._last >= self.min_interval:
            self.flush()
            self._last = now

    def flush(self) -> None:
        if self.kernel:
            if self._handle is not None:
                self._handle.update(self._bundle(), raw=True)
        else:
            self.stream.write(self.text[self._written :])
            self.stream.flush()
            self._written = len(self.text)
        self.updates += 1

    def close(self, *, keep: bool = False, note: str | None = None) -> None:
        """End the live view. In a kernel it is cleared unless ``keep`` (e.g. after an interrupt); ``note``
        replaces the "writing…" footer of a kept view (terminal: printed on its own line after the text)."""
        if note:
            self.status = note
        if self.kernel:
            if self._handle is not None:
                if keep:
                    self.flush()
                else:
                    self._handle.update({"text/plain": ""}, raw=True)
        else:
            self.flush()
            self.stream.write("\n" + (f"[{note}]\n" if note and keep else ""))
            self.stream.flush()


def join_lines(rows: Iterable[tuple[str, ...]], headers: tuple[str, ...]) -> str:
    """A plain-text table (for terminals) from rows of strings."""
    rows = [tuple(headers), *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class Bundle:
    """A ready mimebundle that displays itself (tables, notices); ``repr`` is its plain text."""

    def __init__(self, bundle: dict[str, str]) -> None:
        self.bundle = bundle

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.bundle

    def __repr__(self) -> str:
        return self.bundle["text/plain"]


def table_bundle(rows: Sequence[tuple[str, ...]], headers: tuple[str, ...], *, title: str = "") -> dict[str, str]:
    """A small table as HTML and plain text."""
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    caption = f"<b>{html.escape(title)}</b>" if title else ""
    plain = (title + "\n" if title else "") + join_lines(rows, headers)
    return {"text/plain": plain, "text/html": f"{caption}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"}


class RequestPreview:
    """What ``--dry-run`` shows: the images, the request body (data URLs shortened) and the token estimate.

    Nothing is sent. ``body`` is the request as a dict; ``estimated_prompt_tokens`` the input estimate;
    ``estimated_cost`` (with a price table) the cost of that input plus the whole output-token limit (a ceiling).
    """

    def __init__(self, request: Any, settings: Any, prices: Any = None) -> None:
        from azmm_magic.store.ledger import cost

        self.request = request
        self.settings = settings
        self.body = request.preview()
        self.estimated_prompt_tokens = request.estimate_prompt_tokens(settings.token_rule)
        self.estimated_cost = cost(prices, request.deployment, self.estimated_prompt_tokens, request.max_tokens)

    def summary(self) -> str:
        r, s = self.request, self.settings
        per_image = ", ".join(str(i.estimate_tokens(r.detail, s.token_rule)) for i in r.images) or "none"
        return (
            f"DRY RUN — nothing sent. {r.deployment} at {s.endpoint_host or '(no endpoint set)'} "
            f"({s.resolved_api_style}): ≈ {self.estimated_prompt_tokens:,} input tokens "
            f"(image tokens: {per_image}; detail={r.detail}, rule={s.token_rule}), up to {r.max_tokens:,} output tokens."
        ) + (f" Estimated cost ≤ {self.estimated_cost:.4f} (prices trait)." if self.estimated_cost is not None else "")

    def _json(self) -> str:
        import json

        return json.dumps(self.body, indent=2, ensure_ascii=False)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        summary = self.summary()
        return {
            "text/plain": f"{summary}\n{self._json()}",
            "text/html": (
                f'<div style="{_BOX}">{thumbnails_html(self.request.images)}'
                f'<div style="{_FOOTER}">{html.escape(summary)}</div>'
                f'<pre style="font-size: 0.85em; max-height: 24em; overflow: auto;">{html.escape(self._json())}</pre></div>'
            ),
        }

    def __repr__(self) -> str:
        return self.summary()
