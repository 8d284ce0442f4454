"""The parts every view is built from: safe Markdown, shared inline styles, tables, boxed messages, ``Bundle``.

Model output is rendered from Markdown with raw HTML disabled, so an answer can never inject markup or script
into the notebook. Styles are inline and theme-neutral (grey borders with alpha, inherited colours), so the
output reads well in light and dark themes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

BOX_STYLE = "font-family: var(--jp-content-font-family, inherit); line-height: 1.45;"
FOOTER_STYLE = (
    "font-size: 0.82em; opacity: 0.68; margin-top: 0.5em; font-family: var(--jp-ui-font-family, inherit);"
)
ERROR_BORDER = "rgba(220,50,50,0.85)"


@lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": False}).enable("table")


def markdown_to_html(text: str) -> str:
    """Markdown to HTML with raw HTML escaped (answers cannot inject markup)."""
    return str(_markdown().render(text))


@lru_cache(maxsize=64)
def answer_html(text: str) -> str:
    """:func:`markdown_to_html` of a finished answer, memoized: re-displaying a result (a cache hit, a re-run
    cell, ``display(answer)``) does not parse the Markdown again. Live streams call the uncached function."""
    return markdown_to_html(text)


def message_bundle(text: str, *, kind: str = "error") -> dict[str, str]:
    """A short boxed message (used by the panel and for notices)."""
    colour = ERROR_BORDER if kind == "error" else "rgba(128,128,128,0.6)"
    return {
        "text/plain": text,
        "text/html": f'<div style="border-left: 3px solid {colour}; padding: 4px 10px;">{html.escape(text)}</div>',
    }


def join_lines(rows: Iterable[tuple[str, ...]], headers: tuple[str, ...]) -> str:
    """A plain-text table (for terminals) from rows of strings."""
    rows = [tuple(headers), *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table_bundle(rows: Sequence[tuple[str, ...]], headers: tuple[str, ...], *, title: str = "") -> dict[str, str]:
    """A small table as HTML and plain text."""
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    caption = f"<b>{html.escape(title)}</b>" if title else ""
    plain = (title + "\n" if title else "") + join_lines(rows, headers)
    return {"text/plain": plain, "text/html": f"{caption}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"}


class Bundle:
    """A ready mimebundle that displays itself (tables, notices); ``repr`` is its plain text."""

    def __init__(self, bundle: dict[str, str]) -> None:
        self.bundle = bundle

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.bundle

    def __repr__(self) -> str:
        return self.bundle["text/plain"]


__all__ = ["BOX_STYLE", "ERROR_BORDER", "FOOTER_STYLE", "Bundle", "answer_html", "join_lines",
           "markdown_to_html", "message_bundle", "table_bundle"]
