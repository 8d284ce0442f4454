"""The drop zone: an anywidget whose front end (``dropzone.js``) takes dropped or chosen image files, turns
Ctrl/Cmd+Enter in the panel's prompt into Send, and inserts "to new cell"'s cell into the notebook.

The JavaScript and CSS are files beside this module (shipped in the wheel, read with importlib.resources).
``panel.css``, the look of the whole panel, rides along: the drop zone is in every panel, and anywidget's
``_css`` is how a stylesheet reaches the page.
"""

from __future__ import annotations

from importlib.resources import files

import anywidget
import traitlets


def asset(name: str) -> str:
    """The text of a file shipped beside this module (``dropzone.js``, ``dropzone.css``, ``panel.css``)."""
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


class DropZone(anywidget.AnyWidget):
    """A box that accepts dropped image files (and opens a file chooser when clicked).

    It also turns Ctrl/Cmd+Enter inside the panel's prompt into a ``{"type": "send", "prompt": TEXT}`` message. Dropped files
    arrive as a ``{"type": "files", "files": [{name, type, size}, ...]}`` message with one buffer per file.
    :meth:`insert_cell` asks the front end for a new notebook cell; it answers ``{"type": "cell-inserted", "ok":
    true, "index": i}`` or ``{"type": "cell-inserted", "ok": false, "reason": "..."}``.
    """

    _esm = asset("dropzone.js")
    _css = asset("dropzone.css") + asset("panel.css")
    label = traitlets.Unicode("Drop images here").tag(sync=True)

    def insert_cell(self, source: str, *, cell_id: str | None = None, widget_id: str | None = None) -> None:
        """Ask the front end to insert a code cell holding ``source`` below the notebook cell that shows the
        widget ``widget_id`` (the panel), or else below the cell ``cell_id`` (the one that created it)."""
        self.send({"type": "insert-cell", "source": source, "cell_id": cell_id, "widget_id": widget_id})


__all__ = ["DropZone", "asset"]
