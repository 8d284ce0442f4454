"""`VisionPanel`: ask about images without writing code (ipywidgets).

``%azure_vision panel`` (or ``from azmm_magic import VisionPanel; VisionPanel()``) shows a panel with image inputs
(upload button, a drop zone, a path/glob/URL box, a picker of image variables), thumbnails with remove buttons,
a prompt, the request options, a live token estimate, Send / Stop, the answer streamed as Markdown with the same
footer as the magic, a history of this panel's questions and answers, and "to variable" / "to new cell".

The panel is a frontend like the magic: it uses the session's client, cache and settings (``magics.client()``,
``magics.session_settings()``), so a question asked in the panel and then in a ``%%azure_vision`` cell with the
same prompt, images and options is a cache hit.

Where things are:

    panel.py      VisionPanel: the layout and the wiring between the parts below
    sources.py    image inputs (upload, drop zone, path box, variable picker) and the chosen images' thumbnails
    options.py    the prompt, deployment / detail / max tokens / temperature / chat boxes, the token estimate
    worker.py     every call into the client for one question (Question) and the send thread with Stop (Worker)
    history.py    the questions asked in this panel and their answers (HistoryEntry), in an accordion
    keep.py       "to variable" and "to new cell"
    cells.py      the equivalent %%azure_vision cell source; uploads saved for it
    hints.py      panel_hint(error): what to do, worded for the panel's controls
    dropzone.py   the drop zone widget; its front end is dropzone.js + dropzone.css (+ panel.css, the panel's look);
                  dropzone.js also inserts "to new cell"'s cell into the notebook
"""

from __future__ import annotations

from azmm_magic.frontends.panel.dropzone import DropZone
from azmm_magic.frontends.panel.hints import panel_hint, panel_message
from azmm_magic.frontends.panel.history import HistoryEntry
from azmm_magic.frontends.panel.panel import VisionPanel

__all__ = ["VisionPanel", "HistoryEntry", "DropZone", "panel_hint", "panel_message"]
