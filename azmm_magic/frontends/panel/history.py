"""The panel's history: one :class:`PanelExchange` per question, listed in an accordion whose "show above"
buttons bring an earlier answer back (for "to variable" / "to new cell")."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from azmm_magic.frontends.panel.compat import set_titles
from azmm_magic.frontends.panel.options import plural

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.result import VisionResult


@dataclass(frozen=True)
class PanelExchange:
    """One question asked in the panel: the prompt, the options, the result and the equivalent cell."""

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


class HistoryView:
    """The exchanges of one panel (``exchanges``) and their accordion (``view``); ``reopen(exchange)`` is called by
    an exchange's "show above" button."""

    def __init__(self, reopen: Callable[[PanelExchange], None]) -> None:
        self.exchanges: list[PanelExchange] = []
        self._reopen = reopen
        self.view = w.Accordion(children=[], layout=w.Layout(width="auto"))
        self.view.add_class("azmm-history")

    def append(self, exchange: PanelExchange) -> None:
        """Add ``exchange`` and redraw the accordion."""
        from azmm_magic.display.result import result_html

        self.exchanges.append(exchange)
        children = []
        for exchange in self.exchanges:
            reopen = w.Button(description="show above", icon="arrow-up", layout=w.Layout(width="auto"),
                              tooltip="Show this answer above (for 'to variable' / 'to new cell')")
            reopen.on_click(lambda _b, ex=exchange: self._reopen(ex))
            prompt_html = f"<div class='azmm-note'><b>Prompt:</b> {html.escape(exchange.prompt)}</div>"
            children.append(w.VBox([w.HTML(prompt_html + result_html(exchange.result)), reopen]))
        self.view.children = children
        set_titles(self.view, [exchange.title(i) for i, exchange in enumerate(self.exchanges, 1)])


__all__ = ["HistoryView", "PanelExchange"]
