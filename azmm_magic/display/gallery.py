"""How a batch looks while it runs and when it is done: a progress bar and a gallery that fills in.

- Progress: ``tqdm`` (the ipywidgets bar in a notebook via ``tqdm.auto``, text on stderr in a terminal) with
  answered / cached / failed counts and the ETA.
- Gallery: in a kernel, one display handle redrawn at most ``max_rate`` times a second with the latest tiles
  (thumbnail, the answer's first words, failures marked); in a terminal, one plain line per finished item.
- :func:`batch_bundle` renders a finished :class:`~azmm_magic.features.batch.BatchResult` (summary, tiles, plain text).
"""

from __future__ import annotations

import base64
import html
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from azmm_magic.core.images import SMALL_THUMBNAIL_SIDE, short_source, thumbnail
from azmm_magic.core.result import VisionResult
from azmm_magic.core.urls import has_secret_parts
from azmm_magic.display.bundle import ERROR_BORDER
from azmm_magic.display.terminal import terminal_text
from azmm_magic.display.thumbnails import caption_html
from azmm_magic.display.untrusted import html_label, html_text, label, markdown_html
from azmm_magic.features.outcomes import item_source, item_status
from azmm_magic.features.progress import ProgressBar

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.batch import BatchResult
    from azmm_magic.features.outcomes import Outcome

LIVE_TILES = 24
RESULT_TILES = 48
PLAIN_LINES = 50
SNIPPET = 160

_GRID = "display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px; margin: 0.4em 0;"
_TILE = (
    "border: 1px solid {border}; border-radius: 6px; padding: 4px; font-size: 0.78em; line-height: 1.3; "
    "overflow: hidden; font-family: var(--jp-ui-font-family, inherit);"
)
_THUMB = "width: 100%; height: 96px; object-fit: contain; background: rgba(128,128,128,0.08); border-radius: 3px;"
_OK_BORDER = "rgba(128,128,128,0.35)"
_FAIL_BORDER = ERROR_BORDER


def _answer_line(text: str, limit: int = SNIPPET) -> str:
    """The start of an answer on one line (``limit`` characters): its Markdown written as terminal text
    (:func:`~azmm_magic.display.terminal.terminal_text`: no ``**``, code fences or heading marks), then made a
    :func:`~azmm_magic.display.untrusted.label` (URL query strings redacted)."""
    return label(terminal_text(text[: 4 * limit]), limit)


#: A failed item's tile reads its file for a picture only when it is at most this large.
_TILE_FILE_BYTES = 32 * 1024 * 1024


def _thumb_src(outcome: Outcome, source: str) -> str | None:
    """A data URL for the tile: the result's kept thumbnail, else a thumbnail of the source file if it exists."""
    if isinstance(outcome, VisionResult) and outcome.images:
        image = outcome.images[0]
        if image.data:
            return f"data:{image.media_type};base64," + base64.b64encode(image.data).decode("ascii")
        if image.url and not has_secret_parts(image.url):
            return image.url
    made = thumbnail(source, SMALL_THUMBNAIL_SIDE) if source else None  # a tile without a picture is fine
    return None if made is None else made.data_url()


def thumbnail_src(outcome: Outcome, source: str) -> str | None:
    """The data URL of an item's thumbnail (the kept thumbnail, else one made from the source file), or None."""
    return _thumb_src(outcome, source)


_ANSWER = "max-height: 9.5em; overflow: hidden;"
_COMPACT = (("<p>", '<p style="margin: 0.15em 0;">'), ("<ul>", '<ul style="margin: 0.15em 0; padding-left: 1.1em;">'),
            ("<ol>", '<ol style="margin: 0.15em 0; padding-left: 1.3em;">'),
            ("<blockquote>", '<blockquote style="margin: 0.15em 0; padding-left: 0.5em; border-left: 2px solid '
                             'rgba(128,128,128,0.5);">'),
            ("<pre>", '<pre style="margin: 0.15em 0; white-space: pre-wrap; font-size: 0.95em;">'))
TILE_CHARS = 600


def tile_markdown_html(text: str, limit: int = TILE_CHARS) -> str:
    """The start of an answer (whole lines, about ``limit`` characters) as HTML with compact margins, rendered by
    :func:`~azmm_magic.display.untrusted.markdown_html` (raw HTML escaped, images as links): a tile keeps the
    answer's lists and emphasis; the whole answer is in the tile's tooltip and the result."""
    if len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        text = (text[:cut] if cut > limit // 3 else text[:limit]) + " …"
    out = markdown_html(text)
    for tag, styled in _COMPACT:  # tags made by the renderer: raw HTML in the answer is escaped, never matched
        out = out.replace(tag, styled)
    return out


def tile_html(index: int, outcome: Outcome, source: str | None = None, *, row: Any = None,
              prompt: str | None = None) -> str:
    """One gallery tile: thumbnail, ``#index name`` (a DataFrame row's index label as ``row``), the answer's first
    words or the error in red, and the prompt filled in for that row when ``prompt`` is given."""

    source = source if source is not None else item_source(outcome)
    status = item_status(outcome)
    failed = not isinstance(outcome, VisionResult)
    src = _thumb_src(outcome, source)
    img = (
        f'<img src="{html.escape(src, quote=True)}" alt="{html_label(short_source(source))}" style="{_THUMB}"/>'
        if src
        else f'<div style="{_THUMB}"></div>'
    )
    if not isinstance(outcome, VisionResult):
        body = f'<div style="color: rgb(200,40,40);">✗ {html_label(outcome.error, SNIPPET)}</div>'
        tip = label(outcome.error)
    else:
        body = f'<div class="azmm-tile-answer" style="{_ANSWER}">{tile_markdown_html(outcome.text)}</div>'
        tip = outcome.text[:1000]
    mark = {"cached": " · cached", "ok": ""}.get(status, f" · {status}")
    head = caption_html(f"{f'row {row}' if row is not None else f'#{index}'} {short_source(source)}",
                        html.escape(mark), "opacity: 0.7;")
    asked = (
        f'<div style="opacity: 0.6; font-style: italic;" title="{html_text(prompt)}">'
        f"{html_label(prompt, 100)}</div>"
        if prompt
        else ""
    )
    return (
        f'<div style="{_TILE.format(border=_FAIL_BORDER if failed else _OK_BORDER)}" title="{html_text(tip)}">'
        f"{img}{head}{body}{asked}</div>"
    )


def tile_plain(index: int, outcome: Outcome, source: str | None = None) -> str:

    source = label(short_source(source if source is not None else item_source(outcome)))
    if isinstance(outcome, VisionResult):
        mark = " (cached)" if outcome.cached else ""
        return f"✓ #{index} {source}{mark}: {_answer_line(outcome.text, 100)}"
    return f"✗ #{index} {source} [{item_status(outcome)}]: {label(outcome.error, 200)}"


class BatchProgress:
    """Progress bar plus live gallery for a running batch (call :meth:`start`, :meth:`add` per item, :meth:`close`).

    ``kernel``: draw widgets/HTML (True) or text (False). ``gallery``: show the tiles (kernel) or one line per
    item (terminal). The gallery is redrawn at most ``max_rate`` times per second. The bar itself is the batch's
    own :class:`~azmm_magic.features.progress.ProgressBar`.
    """

    def __init__(
        self,
        labels: Sequence[str],
        *,
        kernel: bool,
        gallery: bool = True,
        max_rate: float = 2.0,
        stream: TextIO | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.total = len(labels)
        self.kernel = kernel
        self.gallery = gallery
        self.min_interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self.clock = clock
        self.bar = ProgressBar(self.total, notebook=kernel, stream=stream)
        self.tiles: deque[str] = deque(maxlen=LIVE_TILES)
        self.redraws = 0
        self._handle: Any = None
        self._last = float("-inf")
        self._dirty = False
        self.labels = list(labels)
        self.rows: Sequence[Any] | None = None
        self.prompts: Sequence[str] | None = None

    @property
    def pictures(self) -> bool:
        """Whether each finished item's picture is shown (a live gallery in a kernel): the batch then keeps a small
        thumbnail per item."""
        return self.kernel and self.gallery

    def describe_rows(self, rows: Sequence[Any] | None, prompts: Sequence[str] | None) -> None:
        """A batch over DataFrame rows: tiles show each row's index label and its filled-in prompt."""
        self.rows, self.prompts = rows, prompts

    def _tile(self, index: int, outcome: Outcome) -> str:
        source = self.labels[index] if index < len(self.labels) else None
        row = self.rows[index] if self.rows is not None else None
        prompt = self.prompts[index] if self.prompts is not None else None
        return tile_html(index, outcome, source, row=row, prompt=prompt)

    @property
    def counts(self) -> dict[str, int]:
        """Items answered (``ok``), answered from the cache, and failed so far."""
        return self.bar.counts

    def start(self) -> BatchProgress:
        if self.bar.bar is not None:
            return self
        self.bar.start()
        if self.kernel and self.gallery:
            from IPython.display import display

            self._handle = display(self._bundle(), raw=True, display_id=True)
        return self

    def status(self, waiting: str) -> None:
        """What the batch waits for now, shown in the bar's postfix."""
        self.bar.status(label(waiting))

    def add(self, index: int, outcome: Outcome) -> None:
        self.bar.add(index, outcome)
        if not self.gallery:
            return
        if self.kernel:
            self.tiles.append(self._tile(index, outcome))
            self._dirty = True
            now = self.clock()
            if now - self._last >= self.min_interval:
                self.flush()
                self._last = now
        else:
            self.bar.write(tile_plain(index, outcome))

    def _bundle(self) -> dict[str, str]:
        done = sum(self.counts.values())
        head = f"{done} of {self.total} done · {self.bar.postfix()}"
        tiles = "".join(reversed(self.tiles))
        more = f" (latest {len(self.tiles)} shown)" if done > len(self.tiles) else ""
        return {
            "text/plain": label(head),
            "text/html": f'<div style="font-size: 0.85em; opacity: 0.75;">{html_label(head + more)}</div>'
            f'<div style="{_GRID}">{tiles}</div>',
        }

    def flush(self) -> None:
        if self._handle is not None and self._dirty:
            self._handle.update(self._bundle(), raw=True)
            self.redraws += 1
            self._dirty = False

    def close(self, *, keep: bool = False) -> None:
        """Close the bar. In a kernel, with ``keep`` (an interrupt) the live gallery is drawn one last time and
        kept; otherwise it waits for :meth:`finish` to become the finished batch's display."""
        self.bar.close()
        if self._handle is not None and keep:
            self._dirty = True
            self.flush()
            self._handle = None

    def finish(self, bundle: dict[str, Any] | None) -> bool:
        """The live gallery becomes ``bundle`` (the finished batch's display: a saved notebook then holds it once,
        and no empty output); None removes it. True when a live gallery became ``bundle``."""
        handle, self._handle = self._handle, None
        if handle is None:
            return False
        handle.update(bundle if bundle is not None else {"text/plain": ""}, raw=True)
        return bundle is not None


# ----- a finished batch ------------------------------------------------------------------------------------------
def batch_plain(result: BatchResult) -> str:
    pairs = list(zip(result.indices(), result, strict=False))
    lines = [label(result.summary())]
    lines += [tile_plain(i, o, result.source_of(i)) for i, o in pairs[:PLAIN_LINES]]
    if len(pairs) > PLAIN_LINES:
        lines.append(f"… {len(pairs) - PLAIN_LINES} more (see .to_records() or .to_dataframe())")
    return "\n".join(lines)


def batch_bundle(result: BatchResult) -> dict[str, str]:
    """``text/html`` (summary and up to 48 tiles, failures first) and ``text/plain``."""
    pairs = list(zip(result.indices(), result, strict=False))
    failed = [p for p in pairs if not isinstance(p[1], VisionResult)]
    shown = (failed + [p for p in pairs if isinstance(p[1], VisionResult)])[:RESULT_TILES]
    shown.sort(key=lambda p: p[0])
    tiles = "".join(tile_html(i, o, result.source_of(i), row=result.row_of(i),
                              prompt=result.prompt_of(i) if result.prompts is not None else None) for i, o in shown)
    more = (
        f'<div style="font-size: 0.8em; opacity: 0.7;">{len(pairs) - len(shown)} more not shown: '
        f"use .to_dataframe() or .to_records().</div>"
        if len(pairs) > len(shown)
        else ""
    )
    return {
        "text/plain": batch_plain(result),
        "text/html": f'<div class="azmm-batch"><div style="font-size: 0.9em;">{html_label(result.summary())}</div>'
        f'<div style="{_GRID}">{tiles}</div>{more}</div>',
    }


__all__ = ["BatchProgress", "batch_bundle", "batch_plain", "thumbnail_src", "tile_html", "tile_markdown_html",
           "tile_plain"]
