"""Answers in a terminal: Markdown made tidy text (optionally with ANSI bold), line by line so a stream can use it.

A terminal shows no HTML, so an answer's Markdown would otherwise come out raw (``**bold**``, ``- item``, code
fences). Here headings and bold become bold (ANSI, only on a real terminal) or plain text, list markers become
bullets, code blocks are indented, links show their address after the text and images are never loaded: they
show as ``[image: alt] (url)``. Answers are untrusted text, so escape sequences and control characters in the answer
itself are removed (:func:`azmm_magic.display.untrusted.terminal`).
"""

from __future__ import annotations

import re

from azmm_magic.display.untrusted import terminal

BOLD, RESET = "\x1b[1m", "\x1b[0m"

_FENCE = re.compile(r"^\s*(```+|~~~+)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+")
_QUOTE = re.compile(r"^\s{0,3}>\s?")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_CODE = re.compile(r"`([^`]+)`")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]*)[^)]*\)")


def _bold(text: str, ansi: bool) -> str:
    return f"{BOLD}{text}{RESET}" if ansi and text else text


def _inline(line: str, ansi: bool) -> str:
    line = _IMAGE.sub(lambda m: f"[image: {m.group(1) or 'untitled'}]" + (f" ({m.group(2)})" if m.group(2) else ""),
                      line)
    line = _LINK.sub(lambda m: m.group(1) if m.group(2) in ("", m.group(1)) else f"{m.group(1)} ({m.group(2)})", line)
    line = _STRONG.sub(lambda m: _bold(m.group(1) or m.group(2), ansi), line)
    return _CODE.sub(lambda m: m.group(1), line)


class TerminalMarkdown:
    """Turns Markdown into terminal text one line at a time (it remembers whether it is inside a code block)."""

    def __init__(self, *, ansi: bool = False) -> None:
        self.ansi = ansi
        self.in_code = False

    def line(self, raw: str) -> str:
        """One line of Markdown (without its newline) as terminal text; a code fence line becomes ''."""
        raw = terminal(raw)
        if _FENCE.match(raw):
            self.in_code = not self.in_code
            return ""
        if self.in_code:
            return "    " + raw
        heading = _HEADING.match(raw)
        if heading:
            return _bold(_inline(heading.group(2), False), self.ansi) or heading.group(2)
        if _RULE.match(raw):
            return "─" * 40
        quote = _QUOTE.match(raw)
        if quote:
            return "│ " + _inline(raw[quote.end():], self.ansi)
        bullet = _BULLET.match(raw)
        if bullet:
            return f"{bullet.group(1)}• " + _inline(raw[bullet.end():], self.ansi)
        return _inline(raw, self.ansi)


def terminal_text(markdown: str, *, ansi: bool = False) -> str:
    """A whole answer as terminal text (see :class:`TerminalMarkdown`)."""
    reader = TerminalMarkdown(ansi=ansi)
    return "\n".join(reader.line(line) for line in markdown.split("\n"))


__all__ = ["TerminalMarkdown", "terminal_text"]
