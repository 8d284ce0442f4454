"""The panel's history: one :class:`HistoryEntry` per question, listed in an accordion whose "show above"
buttons bring an earlier answer back (for "to variable" / "to new cell").

Bounded for a long session: the accordion keeps the last :data:`HISTORY_LIMIT` entries (the oldest one's
widgets are closed when a new one comes in), a new entry adds one accordion item instead of redrawing the others, and
only the last :data:`FULL_IMAGES` entries keep the images that were sent: older ones keep small copies
(thumbnails with the same size, content id and caption) and their chosen images without their prepared data.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from azmm_magic.frontends.panel.compat import close_tree, set_titles
from azmm_magic.frontends.panel.options import plural

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.result import VisionResult

#: entries listed in the panel's history (older ones are dropped, and their widgets closed)
HISTORY_LIMIT = 30
#: the newest entries that keep the images sent; older ones keep small copies
FULL_IMAGES = 3


@dataclass(frozen=True)
class HistoryEntry:
    """One question asked in the panel and its answer, as the history keeps it: the prompt, the options, the result
    and the equivalent cell."""

    prompt: str
    options: Mapping[str, Any]
    result: VisionResult
    cell_source: str

    def title(self, number: int) -> str:
        """The accordion title: number, short prompt, images, cached/incomplete and the chat name."""
        short = self.prompt if len(self.prompt) <= 70 else self.prompt[:67] + "…"
        marks = " · cached" if self.result.cached else (" · incomplete" if self.result.incomplete else "")
        if self.options.get("chat"):
            marks += f" · chat {self.options['chat']}"
        return f"{number}. {short} ({plural(len(self.result.images), 'image')}{marks})"

    def slim(self) -> HistoryEntry:
        """This entry holding small copies of its images, and its chosen images without their prepared data
        (the equivalent cell is kept, and an upload's bytes, which "to new cell" saves)."""
        from azmm_magic.core.images import light_copy

        result = self.result.with_(images=tuple(light_copy(image, thumbnail=True) for image in self.result.images))
        entries = [replace(entry, prepared={}, part=None) for entry in self.options.get("entries", ())]
        return replace(self, result=result, options={**self.options, "entries": entries})


class HistoryView:
    """The entries of one panel (``entries``, the last ``limit``) and their accordion (``view``);
    ``reopen(entry)`` is called by an entry's "show above" button."""

    def __init__(self, reopen: Callable[[HistoryEntry], None], *, limit: int = HISTORY_LIMIT) -> None:
        self.entries: list[HistoryEntry] = []
        self.limit = max(1, limit)
        self._reopen = reopen
        self._boxes: list[w.VBox] = []
        self._dropped = 0  # entries dropped from the front (the titles keep their numbers)
        self.view = w.Accordion(children=[], layout=w.Layout(width="auto"))
        self.view.add_class("azmm-history")

    def append(self, entry: HistoryEntry) -> None:
        """Add ``entry`` (one new entry in the accordion); the oldest beyond the limit goes, its widgets closed."""
        self.entries.append(entry)
        self._boxes.append(self._box(entry))
        if len(self.entries) > FULL_IMAGES:
            self.entries[-FULL_IMAGES - 1] = self.entries[-FULL_IMAGES - 1].slim()
        gone = []
        while len(self.entries) > self.limit:
            self.entries.pop(0)
            gone.append(self._boxes.pop(0))
            self._dropped += 1
        self.view.children = tuple(self._boxes)
        set_titles(self.view, [e.title(i) for i, e in enumerate(self.entries, self._dropped + 1)])
        for box in gone:
            close_tree(box)

    def _box(self, entry: HistoryEntry) -> w.VBox:
        from azmm_magic.display.result import result_html

        reopen = w.Button(description="show above", icon="arrow-up", layout=w.Layout(width="auto"),
                          tooltip="Show this answer above (for 'to variable' / 'to new cell')")
        prompt_html = f"<div class='azmm-note'><b>Prompt:</b> {html.escape(entry.prompt)}</div>"
        box = w.VBox([w.HTML(prompt_html + result_html(entry.result)), reopen])
        reopen.on_click(lambda _b: self._show(box))
        return box

    def _show(self, box: w.VBox) -> None:
        if box in self._boxes:  # the entry as kept now (its images may be small copies by then)
            self._reopen(self.entries[self._boxes.index(box)])

    def close(self) -> None:
        """Close every entry's widgets and forget the entries."""
        boxes, self._boxes, self.entries = self._boxes, [], []
        self.view.children = ()
        for box in boxes:
            close_tree(box)


__all__ = ["FULL_IMAGES", "HISTORY_LIMIT", "HistoryView", "HistoryEntry"]
