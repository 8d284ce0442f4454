"""The parts every view is built from: safe Markdown, shared inline styles, tables, boxed messages, ``Bundle``.

Model output is rendered from Markdown with raw HTML disabled, so an answer can never inject markup or script
into the notebook. Styles are inline and theme-neutral (grey borders with alpha, inherited colours), so the
output reads well in light and dark themes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

BOX_STYLE = "font-family: var(--jp-content-font-family, inherit); line-height: 1.45;"
FOOTER_STYLE = (
    "font-size: 0.82em; opacity: 0.68; margin-top: 0.5em; font-family: var(--jp-ui-font-family, inherit);"
)
ERROR_BORDER = "rgba(220,50,50,0.85)"


def _image_as_link(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    """An image in an answer is never loaded (it could be a tracking pixel): a link to it (plain text for a
    ``data:`` image), labelled with its alt text."""
    token = tokens[idx]
    label = html.escape("image: " + (renderer.renderInlineAsText(token.children or [], options, env) or "untitled"))
    src = str(token.attrGet("src") or "")
    if not src.lower().startswith(("http://", "https://")):
        return f"[{label}]"
    return f'<a href="{html.escape(src, quote=True)}" rel="noopener noreferrer nofollow">[{label}]</a>'


@lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": False}).enable("table")
    md.add_render_rule("image", _image_as_link)
    return md


def markdown_to_html(text: str) -> str:
    """Markdown to inert HTML: raw HTML escaped, images shown as links (never loaded); markdown-it refuses
    ``javascript:``-style links. Answers are untrusted text."""
    return str(_markdown().render(text))


_CODE_SPAN = re.compile(r"(`+).+?(?<!`)\1(?!`)", re.DOTALL)
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_IMAGE_START = re.compile(r"(\\*)!\[")  # an even number of backslashes before it leaves the image syntax live


def _escape_prose(text: str) -> str:
    text = _TAG_START.sub("&lt;", text)
    return _IMAGE_START.sub(lambda m: m.group(1) + ("" if len(m.group(1)) % 2 else "\\") + "![", text)


def _inert_prose(text: str) -> str:
    """Outside code spans: ``<tag`` escaped (shown as text) and ``![`` escaped (a link, not an image)."""
    parts, pos = [], 0
    for span in _CODE_SPAN.finditer(text):
        parts += [_escape_prose(text[pos : span.start()]), span.group(0)]
        pos = span.end()
    return "".join(parts) + _escape_prose(text[pos:])


def inert_markdown(text: str) -> str:
    """The answer as Markdown for a Markdown-rendering frontend, made inert like :func:`markdown_to_html`: raw
    HTML and image syntax outside code are escaped; code blocks and code spans are kept as written."""
    lines = text.splitlines(keepends=True)
    code: set[int] = set()
    for token in _markdown().parse(text):
        if token.type in ("fence", "code_block") and token.map:
            code.update(range(*token.map))
    out: list[str] = []
    prose: list[str] = []
    for number, line in enumerate(lines):
        if number in code:
            out.append(_inert_prose("".join(prose)))
            prose.clear()
            out.append(line)
        else:
            prose.append(line)
    out.append(_inert_prose("".join(prose)))
    return "".join(out)


@lru_cache(maxsize=64)
def answer_html(text: str) -> str:
    """:func:`markdown_to_html` of a finished answer, memoized: re-displaying a result (a cache hit, a re-run
    cell, ``display(answer)``) does not parse the Markdown again. Live streams call the uncached function."""
    return markdown_to_html(text)


_JSON_TOKEN = re.compile(r'("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b')
#: Token colours readable on light and dark backgrounds.
JSON_COLOURS = {"key": "#3d7ab8", "string": "#3a8a3a", "number": "#b0612a", "literal": "#9a55b8"}


def json_text(text: str) -> str:
    """A JSON answer pretty-printed (2-space indent); text that is not JSON is returned as it is."""
    import json

    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def json_html(text: str) -> str:
    """A JSON answer as a highlighted, monospaced code block (keys, strings, numbers, literals), escaped."""
    pretty = json_text(text)
    out, pos = [], 0
    for m in _JSON_TOKEN.finditer(pretty):
        out.append(html.escape(pretty[pos : m.start()]))
        if m.group(1) is not None:
            kind = "key" if m.group(2) else "string"
            out.append(f'<span style="color:{JSON_COLOURS[kind]}">{html.escape(m.group(1))}</span>'
                       + html.escape(m.group(2) or ""))
        else:
            kind = "number" if m.group(3) is not None else "literal"
            out.append(f'<span style="color:{JSON_COLOURS[kind]}">{html.escape(m.group(0))}</span>')
        pos = m.end()
    out.append(html.escape(pretty[pos:]))
    return f'<pre class="azmm-json" style="{CODE_STYLE}"><code>{"".join(out)}</code></pre>'


def message_bundle(text: str, *, kind: str = "error") -> dict[str, str]:
    """A short boxed message (used by the panel and for notices)."""
    colour = ERROR_BORDER if kind == "error" else "rgba(128,128,128,0.6)"
    return {
        "text/plain": text,
        "text/html": f'<div style="border-left: 3px solid {colour}; padding: 4px 10px;">{html.escape(text)}</div>',
    }


CODE_STYLE = (
    "font-family: var(--jp-code-font-family, monospace); font-size: var(--jp-code-font-size, 0.85em); "
    "line-height: 1.4; white-space: pre-wrap; overflow-wrap: anywhere; margin: 0.3em 0;"
)


def text_bundle(text: str) -> dict[str, str]:
    """Preformatted plain text (help, listings): as it is in a terminal, monospaced and wrapped in a notebook."""
    return {"text/plain": text, "text/html": f'<pre style="{CODE_STYLE}">{html.escape(text)}</pre>'}


def join_lines(rows: Iterable[tuple[str, ...]], headers: tuple[str, ...]) -> str:
    """A plain-text table (for terminals) from rows of strings."""
    rows = [tuple(headers), *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip() for row in rows]
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

    @property
    def data(self) -> str:
        """The plain text (as IPython's display objects name it)."""
        return self.bundle["text/plain"]

    def __repr__(self) -> str:
        return self.bundle["text/plain"]


__all__ = [
    "BOX_STYLE", "CODE_STYLE", "ERROR_BORDER", "FOOTER_STYLE", "Bundle", "answer_html", "inert_markdown",
    "join_lines", "json_html", "json_text", "markdown_to_html", "message_bundle", "table_bundle",
    "text_bundle",
]
