"""Answers in a terminal: an answer's Markdown as tidy text (optionally with ANSI bold), from markdown-it's tokens.

A terminal shows no HTML, so an answer's Markdown would otherwise come out raw (``**bold**``, ``- item``, code
fences). The answer is parsed by the one Markdown parser (:func:`azmm_magic.display.untrusted.markdown_tree`,
which removes escape sequences and control characters first) and its syntax tree is written as text: headings
and strong emphasis bold (ANSI, only on a real terminal) or plain, list items after ``•`` (ordered ones keep their
number), quotes after ``│``, rules as a line, code blocks indented by four spaces (a fence line becomes an empty
line), links as ``text (address)``, and images, never loaded, as ``[image: alt] (address)``. Blank lines between
blocks are the answer's own.

:func:`terminal_text` parses a whole answer once; :class:`TerminalMarkdown` writes a stream line by line (each
complete line parsed on its own; an open code fence is remembered across lines).
"""

from __future__ import annotations

from typing import Any

from azmm_magic.display.untrusted import markdown_tree, terminal

BOLD, RESET = "\x1b[1m", "\x1b[0m"
RULE = "─" * 40
CODE_INDENT = "    "


def _bold(text: str, ansi: bool) -> str:
    return f"{BOLD}{text}{RESET}" if ansi and text else text


def _url(node: Any, name: str) -> str:
    """A link's or image's address as written (markdown-it percent-encodes it; shown decoded), one line."""
    from markdown_it.common.normalize_url import normalizeLinkText

    return " ".join(normalizeLinkText(str(node.attrs.get(name) or "")).split())


def _inline(node: Any, ansi: bool) -> str:
    out: list[str] = []
    for child in node.children:
        kind = child.type
        if kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "strong":
            out.append(_bold(_inline(child, ansi), ansi))
        elif kind == "em":  # kept as written: a terminal has no italics to rely on
            out.append(f"{child.markup}{_inline(child, ansi)}{child.markup}")
        elif kind == "link":
            text, href = _inline(child, ansi), _url(child, "href")
            out.append(text if child.markup == "autolink" or href in ("", text) else f"{text} ({href})")
        elif kind == "image":
            alt, src = _inline(child, False) or "untitled", _url(child, "src")
            out.append(f"[image: {alt}]" + (f" ({src})" if src else ""))
        else:  # text, code spans and anything else: its text
            out.append(_inline(child, ansi) if child.children else child.content)
    return "".join(out)


def _prefixed(lines: list[str], first: str, rest: str) -> list[str]:
    return [((first if i == 0 else rest) + line).rstrip(" ") if not line else (first if i == 0 else rest) + line
            for i, line in enumerate(lines)]


def _item(node: Any, item: Any, ansi: bool) -> list[str]:
    marker = f"{item.info}{item.markup} " if node.type == "ordered_list" else "• "
    return _prefixed(_blocks(item.children, ansi) or [""], marker, " " * len(marker))


def _table(node: Any, ansi: bool) -> list[str]:
    rows = [[" ".join(_inline(cell.children[0], ansi).split()) if cell.children else "" for cell in tr.children]
            for section in node.children for tr in section.children]
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows), default=0))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip() for row in rows]
    return lines[:1] + ["-+-".join("-" * w for w in widths)] + lines[1:] if lines else []


def _block(node: Any, ansi: bool) -> list[str]:
    kind = node.type
    if kind in ("paragraph", "heading"):
        text = _inline(node.children[0], ansi and kind == "paragraph") if node.children else ""
        return [_bold(text, ansi)] if kind == "heading" else text.split("\n")
    if kind == "fence":
        return ["", *_block_code(node.content), ""]
    if kind == "code_block":
        return _block_code(node.content)
    if kind == "hr":
        return [RULE]
    if kind == "blockquote":
        return _prefixed(_blocks(node.children, ansi), "│ ", "│ ")
    if kind in ("bullet_list", "ordered_list"):
        return _blocks(node.children, ansi, parent=node)
    if kind == "table":
        return _table(node, ansi)
    if node.children:
        return _blocks(node.children, ansi)
    return node.content.rstrip("\n").split("\n") if node.content else []


def _block_code(code: str) -> list[str]:
    return [CODE_INDENT + line if line else "" for line in code.rstrip("\n").split("\n")]


def _end(node: Any) -> int | None:
    """The line after a block's last line (a list's or quote's own range runs on over the blank lines after it)."""
    while node.type in ("bullet_list", "ordered_list", "list_item", "blockquote") and node.children:
        node = node.children[-1]
    return node.map[1] if node.map is not None else None


def _blocks(nodes: Any, ansi: bool, parent: Any = None) -> list[str]:
    """Blocks (or a list's items, ``parent`` the list) one after the other, with a blank line where the answer
    has one between them."""
    out: list[str] = []
    end = None
    for node in nodes:
        if out and end is not None and node.map is not None and node.map[0] > end:
            out.append("")
        out += _item(parent, node, ansi) if parent is not None else _block(node, ansi)
        end = _end(node)
    return out


def terminal_text(markdown: str, *, ansi: bool = False) -> str:
    """A whole answer as terminal text (one parse; see the module's docstring)."""
    return "\n".join(_blocks(markdown_tree(markdown).children, ansi))


class TerminalMarkdown:
    """Writes Markdown as terminal text one line at a time, for a stream (it remembers an open code fence)."""

    def __init__(self, *, ansi: bool = False) -> None:
        self.ansi = ansi
        self.fence = ""  # the fence of the code block the stream is in ("" outside one)

    @property
    def in_code(self) -> bool:
        """True inside a fenced code block."""
        return bool(self.fence)

    def _closes(self, line: str) -> bool:
        mark = line.strip()
        return len(line) - len(line.lstrip(" ")) <= 3 and len(mark) >= len(self.fence) and not mark.strip(self.fence[0])

    def line(self, raw: str) -> str:
        """One line of Markdown (without its newline) as terminal text; a code fence line becomes ''."""
        raw = terminal(raw)
        if self.fence:
            if self._closes(raw):
                self.fence = ""
                return ""
            return CODE_INDENT + raw if raw else ""
        text = raw.lstrip(" \t")
        nodes = markdown_tree(text).children
        if nodes and nodes[0].type == "fence":  # a fence opened on this line (a fence alone never closes itself)
            self.fence = nodes[0].markup
            return ""
        return "\n".join(raw[: len(raw) - len(text)] + line for line in _blocks(nodes, self.ansi))


__all__ = ["BOLD", "RESET", "RULE", "TerminalMarkdown", "terminal_text"]
