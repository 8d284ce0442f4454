"""The parts every view is built from: shared inline styles, tables, boxed messages, JSON, ``Bundle``.

Untrusted text (answers, server messages, file names, URLs) goes through :mod:`azmm_magic.display.untrusted`.
Styles are inline and theme-neutral (grey borders with alpha, inherited colours), so the output reads well in
light and dark themes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from azmm_magic.display.untrusted import html_text, one_line, terminal

BOX_STYLE = "font-family: var(--jp-content-font-family, inherit); line-height: 1.45;"
FOOTER_STYLE = (
    "font-size: 0.82em; opacity: 0.68; margin-top: 0.5em; font-family: var(--jp-ui-font-family, inherit);"
)
ERROR_BORDER = "rgba(220,50,50,0.85)"


#: Token colours readable on light and dark backgrounds (JSON keys, strings, numbers, true/false/null).
JSON_COLOURS = {"key": "#3d7ab8", "string": "#3a8a3a", "number": "#b0612a", "literal": "#9a55b8"}


def _pretty_json(text: str) -> str | None:
    """``text`` pretty-printed (2-space indent) when it is JSON, else None."""
    import json

    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return None


def json_text(text: str) -> str:
    """A JSON answer pretty-printed (2-space indent); text that is not JSON is returned as it is."""
    pretty = _pretty_json(text)
    return text if pretty is None else pretty


@lru_cache(maxsize=1)
def _json_formatter() -> Any:
    """Pygments' HTML formatter with inline colours (:data:`JSON_COLOURS`), without its own ``<pre>`` wrapper."""
    from pygments.formatters import HtmlFormatter
    from pygments.style import Style
    from pygments.token import Keyword, Name, Number, String

    class JsonColours(Style):
        background_color = ""
        styles = {Name.Tag: JSON_COLOURS["key"], String: JSON_COLOURS["string"], Number: JSON_COLOURS["number"],
                  Keyword.Constant: JSON_COLOURS["literal"]}

    return HtmlFormatter(style=JsonColours, noclasses=True, nowrap=True)


def json_html(text: str) -> str:
    """A JSON answer (pretty-printed) as a monospaced code block highlighted by Pygments' JSON lexer (keys,
    strings, numbers, literals in colours readable on light and dark themes); text that is not JSON is shown
    plain. Control characters are removed and every character is HTML-escaped (by Pygments' formatter or
    :func:`html_text`)."""
    pretty = _pretty_json(text)
    if pretty is None:
        code = html_text(text)
    else:
        from pygments import highlight
        from pygments.lexers.data import JsonLexer

        code = highlight(terminal(pretty), JsonLexer(), _json_formatter()).rstrip("\n")
    return f'<pre class="azmm-json" style="{CODE_STYLE}"><code>{code}</code></pre>'


def message_bundle(text: str, *, kind: str = "error") -> dict[str, str]:
    """A short boxed message (used by the panel and for notices)."""
    colour = ERROR_BORDER if kind == "error" else "rgba(128,128,128,0.6)"
    return {
        "text/plain": terminal(text),
        "text/html": f'<div style="border-left: 3px solid {colour}; padding: 4px 10px;">{html_text(text)}</div>',
    }


CODE_STYLE = (
    "font-family: var(--jp-code-font-family, monospace); font-size: var(--jp-code-font-size, 0.85em); "
    "line-height: 1.4; white-space: pre-wrap; overflow-wrap: anywhere; margin: 0.3em 0;"
)


def text_bundle(text: str) -> dict[str, str]:
    """Preformatted plain text (help, listings): as it is in a terminal, monospaced and wrapped in a notebook."""
    return {"text/plain": terminal(text), "text/html": f'<pre style="{CODE_STYLE}">{html_text(text)}</pre>'}


def join_lines(rows: Iterable[tuple[str, ...]], headers: tuple[str, ...]) -> str:
    """A plain-text table (for terminals) from rows of strings."""
    rows = [tuple(headers), *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table_bundle(rows: Sequence[tuple[str, ...]], headers: tuple[str, ...], *, title: str = "") -> dict[str, str]:
    """A small table as HTML and plain text (cells are one line each, terminal-safe)."""
    rows = [tuple(one_line(c) for c in row) for row in rows]
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

    @property
    def data(self) -> str:
        """The plain text (as IPython's display objects name it)."""
        return self.bundle["text/plain"]

    def __repr__(self) -> str:
        return self.bundle["text/plain"]


__all__ = [
    "BOX_STYLE", "CODE_STYLE", "ERROR_BORDER", "FOOTER_STYLE", "Bundle", "join_lines", "json_html", "json_text",
    "message_bundle", "table_bundle", "text_bundle",
]
