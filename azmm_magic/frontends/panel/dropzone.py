"""The drop zone: an anywidget whose front end (``dropzone.js``) takes dropped or chosen image files and turns
Ctrl/Cmd+Enter in the panel's prompt into Send.

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

    It also turns Ctrl/Cmd+Enter inside the panel's prompt into a ``{"type": "send"}`` message. Dropped files
    arrive as a ``{"type": "files", "files": [{name, type, size}, ...]}`` message with one buffer per file.
    """

    _esm = asset("dropzone.js")
    _css = asset("dropzone.css") + asset("panel.css")
    label = traitlets.Unicode("Drop images here").tag(sync=True)


__all__ = ["DropZone", "asset"]
