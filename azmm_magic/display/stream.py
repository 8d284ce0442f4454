"""A live stream: the answer shown while it is written, in a kernel (one display handle) or a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from azmm_magic.display.bundle import BOX_STYLE
from azmm_magic.display.result import footer_html
from azmm_magic.display.terminal import TerminalMarkdown
from azmm_magic.display.thumbnails import images_line, thumbnails_html
from azmm_magic.display.untrusted import label, markdown_html

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.images import PreparedImage

WAITING_HTML = '<p style="opacity:0.6">waiting for the first words…</p>'


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
        isatty = getattr(self.stream, "isatty", None)
        self._markdown = TerminalMarkdown(ansi=bool(isatty and isatty()))
        self._pending = ""  # terminal: the text after the last newline, written once its line is complete

    def _bundle(self) -> dict[str, str]:
        body = markdown_html(self.text) if self.text else WAITING_HTML
        return {
            "text/plain": self.text or "…",
            "text/html": f'<div style="{BOX_STYLE}">{thumbnails_html(self.images)}<div>{body}</div>'
            f"{footer_html(self.status)}</div>",
        }

    def start(self) -> StreamView:
        if self.kernel:
            from IPython.display import display

            self._handle = display(self._bundle(), raw=True, display_id=True)
        elif self.images:
            self.stream.write(images_line(self.images) + "\n\n")
            self.stream.flush()
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
            self._write_lines(final=False)
        self.updates += 1

    def _write_lines(self, *, final: bool) -> None:
        """Terminal: write the complete new lines as tidy text (Markdown rendered line by line); the last,
        unfinished line waits for its newline (or for ``final``)."""
        new = self._pending + self.text[self._written :]
        self._written = len(self.text)
        *lines, self._pending = new.split("\n")
        if final and self._pending:
            lines, self._pending = [*lines, self._pending], ""
        if lines:
            self.stream.write("".join(self._markdown.line(line) + "\n" for line in lines))
            self.stream.flush()

    def close(self, *, keep: bool = False, note: str | None = None, final: dict[str, Any] | None = None) -> None:
        """End the live view. In a kernel it becomes ``final`` (the finished answer's mimebundle: a saved notebook
        then holds the answer once, and no empty output), is kept as it is with ``keep`` (e.g. after an
        interrupt), and is otherwise cleared; ``note`` replaces the "writing…" footer of a kept view (terminal:
        printed on its own line after the text)."""
        if note:
            self.status = note
        if self.kernel:
            if self._handle is not None:
                if final is not None:
                    self._handle.update(final, raw=True)
                elif keep:
                    self.flush()
                else:
                    self._handle.update({"text/plain": ""}, raw=True)
        else:
            self._write_lines(final=True)
            self.updates += 1
            self.stream.write(f"[{label(note)}]\n" if note and keep else "")
            self.stream.flush()


__all__ = ["StreamView"]
