"""Untrusted text for display: model answers, server messages, file names, URLs and DataFrame values, shown so
that none of it becomes a live tag, a loaded resource, a terminal escape sequence or a visible credential. Every
view renders such text through the functions below; Markdown is parsed by one parser (:func:`markdown_tree`:
markdown-it, CommonMark with tables, raw HTML off, links only with ``http``, ``https`` or ``mailto`` schemes).

- **HTML** (:func:`markdown_html`, :func:`html_text`): Markdown rendered from markdown-it tokens; raw HTML in the
  answer comes out as escaped text (an answer's ``<img onerror=…>`` shows as text), an image is never loaded (a
  link to it instead: it could be a tracking pixel), a link with any other scheme stays text; plain text is
  HTML-escaped, quotes included.
- **Markdown** (:func:`markdown_text`, :func:`markdown_label`): for frontends that render ``text/markdown``
  (some allow raw HTML), the answer is *rebuilt* from its tokens: every ASCII punctuation character of prose is
  backslash-escaped, code is re-fenced with a fence longer than any run inside it, raw HTML becomes escaped text
  and images become links. A renderer therefore gets no raw HTML from the answer, only escaped text.
- **Terminal text** (:func:`terminal`): escape sequences (colours, OSC 52 clipboard writes, screen clears,
  cursor moves), other control characters and bidirectional overrides removed; newlines and tabs kept.
  :mod:`azmm_magic.display.terminal` writes an answer's Markdown as terminal text from :func:`markdown_tree`.
- **One-line labels** (:func:`label`): terminal-safe, on one line, URL query strings and ``user:password@``
  redacted (a SAS signature is a credential), cut to a length.

Control characters are removed from every text before it is parsed or escaped.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

from azmm_magic.core.urls import redact_urls

# ESC [ … final byte (CSI), ESC ] … BEL/ST (OSC), ESC P/X/^/_ … ST (DCS and friends), any other ESC + one
# character; C0 controls but tab and newline; DEL; C1 controls; bidirectional embeddings/overrides/isolates
_CONTROLS = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b.?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]",
    re.DOTALL,
)
_SPACES = re.compile(r"\s+")
SAFE_SCHEMES = ("http://", "https://", "mailto:")


# ----- terminal text and labels --------------------------------------------------------------------------------
def terminal(text: str) -> str:
    """``text`` without escape sequences or control characters (newlines and tabs kept): safe to print."""
    return _CONTROLS.sub("", text)


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` on one line (whitespace runs become one space), terminal-safe, cut to ``limit`` with ``…``."""
    line = _SPACES.sub(" ", terminal(text)).strip()
    return line if limit is None or len(line) <= limit else line[: max(0, limit - 1)] + "…"


def label(text: str, limit: int | None = None) -> str:
    """A one-line label (a source, a file name, a server's message): :func:`one_line` with every URL's query
    string and userinfo redacted."""
    return one_line(redact_urls(text), limit)


# ----- HTML ------------------------------------------------------------------------------------------------------
def html_text(text: str) -> str:
    """Text as HTML element content or an attribute value (quotes escaped too); controls removed."""
    return html.escape(terminal(text), quote=True)


def html_label(text: str, limit: int | None = None) -> str:
    """:func:`label` escaped for HTML."""
    return html.escape(label(text, limit), quote=True)


def safe_href(url: str) -> str | None:
    """``url`` when its scheme is ``http``, ``https`` or ``mailto``, else None (no ``javascript:``, ``data:``,
    ``file:`` or relative links into the notebook server)."""
    url = url.strip()
    return url if url.lower().startswith(SAFE_SCHEMES) else None


def _image_as_link(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    """An image in an answer is never loaded (it could be a tracking pixel): a link to it, labelled with its alt
    text (plain text for any other scheme)."""
    token = tokens[idx]
    text = html.escape("image: " + (renderer.renderInlineAsText(token.children or [], options, env) or "untitled"))
    href = safe_href(str(token.attrGet("src") or ""))
    if href is None or href.startswith("mailto:"):
        return f"[{text}]"
    return f'<a href="{html.escape(href, quote=True)}" rel="noopener noreferrer nofollow">[{text}]</a>'


def _validate_link(url: str) -> bool:
    return safe_href(url) is not None


@lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": False}).enable("table")
    md.validateLink = _validate_link  # type: ignore[method-assign]
    md.add_render_rule("image", _image_as_link)
    return md


def markdown_tree(text: str) -> Any:
    """``text`` (control characters removed) parsed by the one Markdown parser, as markdown-it's syntax tree
    (a ``SyntaxTreeNode``): what every Markdown view of an answer walks."""
    from markdown_it.tree import SyntaxTreeNode

    return SyntaxTreeNode(_markdown().parse(terminal(text)))


def markdown_html(text: str) -> str:
    """Markdown as HTML with raw HTML escaped, images shown as links (never loaded), links only with http(s) or
    mailto schemes, control characters removed."""
    return str(_markdown().render(terminal(text)))


@lru_cache(maxsize=64)
def answer_html(text: str) -> str:
    """:func:`markdown_html` of a finished answer, memoized: re-displaying a result (a cache hit, a re-run cell,
    ``display(answer)``) does not parse the Markdown again. Live streams call the uncached function."""
    return markdown_html(text)


# ----- Markdown rebuilt from tokens --------------------------------------------------------------------------------
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def markdown_label(text: str) -> str:
    """A label as inline Markdown that shows as text: one line, every ASCII punctuation character
    backslash-escaped."""
    return _PUNCTUATION.sub(r"\\\1", label(text))


def _escape(text: str) -> str:
    return _PUNCTUATION.sub(r"\\\1", text)


def _destination(href: str) -> str:
    """A link destination in ``<…>`` (markdown-it already percent-encoded it; these never end it early)."""
    for char, code in (("\\", "%5C"), ("<", "%3C"), (">", "%3E"), ("\n", ""), ("\r", ""), (" ", "%20")):
        href = href.replace(char, code)
    return f"<{href}>"


def _code_span(code: str) -> str:
    code = code.replace("\n", " ")
    runs = [len(r) for r in re.findall(r"`+", code)]
    fence = "`" * (max(runs, default=0) + 1)
    return f"{fence} {code} {fence}"


def _inline(node: Any) -> str:
    out: list[str] = []
    for child in node.children:
        kind = child.type
        if kind == "text":
            out.append(_escape(child.content))
        elif kind == "code_inline":
            out.append(_code_span(child.content))
        elif kind in ("softbreak", "hardbreak"):
            out.append("\\\n" if kind == "hardbreak" else "\n")
        elif kind == "html_inline":
            out.append(_escape(child.content))
        elif kind in ("em", "strong"):
            mark = "*" if kind == "em" else "**"
            inner = _inline(child)
            out.append(f"{mark}{inner}{mark}" if inner.strip() else inner)
        elif kind == "link":
            href = safe_href(str(child.attrs.get("href") or ""))
            inner = _inline(child) or _escape(str(child.attrs.get("href") or ""))
            out.append(f"[{inner}]({_destination(href)})" if href else inner)
        elif kind == "image":
            alt = _escape("image: " + ("".join(t.content for t in child.children if t.type == "text") or "untitled"))
            href = safe_href(str(child.attrs.get("src") or ""))
            shown = f"\\[{alt}\\]"
            out.append(f"[{shown}]({_destination(href)})" if href and not href.startswith("mailto:") else shown)
        else:  # anything else markdown-it may add: its text, escaped
            out.append(_inline(child) if child.children else _escape(child.content))
    return "".join(out)


def _fenced(code: str, info: str = "") -> list[str]:
    runs = [len(r) for r in re.findall(r"^[ \t]*(`{3,}|~{3,})", code, re.MULTILINE)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    info = re.sub(r"[^A-Za-z0-9_+.#-]", "", info.split()[0]) if info.strip() else ""
    return [fence + info, *code.rstrip("\n").split("\n"), fence]


def _prefix(lines: list[str], first: str, rest: str) -> list[str]:
    return [(first if i == 0 else rest) + line if line else (first if i == 0 else rest).rstrip()
            for i, line in enumerate(lines)]


def _blocks(nodes: Any) -> list[str]:
    out: list[str] = []
    for node in nodes:
        lines = _block(node)
        if lines:
            if out:
                out.append("")
            out += lines
    return out


def _block(node: Any) -> list[str]:
    kind = node.type
    if kind == "paragraph":
        return _inline(node.children[0]).split("\n") if node.children else []
    if kind == "heading":
        level = int(node.tag[1:]) if node.tag[1:].isdigit() else 1
        return ["#" * level + " " + _inline(node.children[0]).replace("\n", " ")]
    if kind in ("fence", "code_block"):
        return _fenced(node.content, node.info if kind == "fence" else "")
    if kind == "html_block":
        return [_escape(line) for line in node.content.rstrip("\n").split("\n")]
    if kind == "hr":
        return ["---"]
    if kind == "blockquote":
        return _prefix(_blocks(node.children), "> ", "> ")
    if kind in ("bullet_list", "ordered_list"):
        start = int(node.attrs.get("start", 1)) if kind == "ordered_list" else 0
        out: list[str] = []
        for n, item in enumerate(node.children):
            marker = f"{start + n}. " if kind == "ordered_list" else "- "
            out += _prefix(_blocks(item.children) or [""], marker, " " * len(marker))
        return out
    if kind == "table":
        rows = [tr for section in node.children for tr in section.children]
        cells = [[_inline(cell.children[0]).replace("\n", " ") if cell.children else "" for cell in tr.children]
                 for tr in rows]
        if not cells:
            return []
        out = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
        return out + ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return _blocks(node.children) if node.children else [_escape(node.content)] if node.content else []


def markdown_text(text: str) -> str:
    """The answer as Markdown rebuilt from markdown-it's tokens, with no raw HTML for a renderer to run, even
    one that allows raw HTML (see the module's docstring)."""
    return "\n".join(_blocks(markdown_tree(text).children))


__all__ = [
    "SAFE_SCHEMES", "answer_html", "html_label", "html_text", "label", "markdown_html", "markdown_label",
    "markdown_text", "markdown_tree", "one_line", "safe_href", "terminal",
]
