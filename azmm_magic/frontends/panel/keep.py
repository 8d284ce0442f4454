"""Keeping the answer shown: "to variable" (the VisionResult in a notebook variable) and "to new cell" (the
equivalent ``%%azure_vision`` cell, with uploads saved so it works after a restart).

"to new cell" asks the front end to insert the cell right below the panel's cell (the drop zone's JavaScript does
it in JupyterLab 4 and Notebook 7, through the notebook model its widget manager holds) and shows the source in
a box, to copy where no front end can insert it. The kernel's ``set_next_input`` is not used: from a button it
only takes effect with the next cell run, under that cell.
"""

from __future__ import annotations

import html
import keyword
import re
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import ipywidgets as w

from azmm_magic.core.errors import ConfigError
from azmm_magic.frontends.panel.cells import UPLOAD_DIR, save_uploads
from azmm_magic.frontends.panel.history import HistoryEntry

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class AnswerKeeper:
    """The "to variable" / "to new cell" controls for the entry ``current()`` shows.

    ``guard(action)`` runs a button's action (a mistake shows as one line); ``inform(text)`` shows a note;
    ``insert(source)`` asks the front end to insert a cell below the panel's (it answers through :meth:`inserted`).
    """

    def __init__(self, *, current: Callable[[], HistoryEntry | None], namespace: MutableMapping[str, Any],
                 guard: Callable[[Callable[[], Any]], None], inform: Callable[[str], None],
                 insert: Callable[[str], None] | None = None) -> None:
        self._current = current
        self._ns = namespace
        self._inform = inform
        self._insert = insert
        self._notes: list[str] = []
        self.variable_name = w.Text(placeholder="variable name", layout=w.Layout(width="160px"))
        self.to_variable_button = w.Button(description="to variable", disabled=True, icon="download",
                                           tooltip="Store the VisionResult in a variable of this notebook")
        self.to_cell_button = w.Button(description="to new cell", disabled=True, icon="plus",
                                       tooltip="Insert the equivalent %%azure_vision cell below the panel")
        self.cell_source = w.Textarea(layout=w.Layout(width="auto", height="4.5em", display="none"))
        self.cell_source.add_class("azmm-cell-source")
        self.cell_note = w.HTML()
        self.to_variable_button.on_click(lambda _: guard(self.to_variable))
        self.to_cell_button.on_click(lambda _: guard(self.to_new_cell))

    def enable(self) -> None:
        """An answer is shown: the buttons can keep it."""
        self.to_variable_button.disabled = False
        self.to_cell_button.disabled = False

    def _shown(self) -> HistoryEntry:
        entry = self._current()
        if entry is None:
            raise ConfigError("There is no answer yet: ask a question first.")
        return entry

    def to_variable(self) -> None:
        """Store the answer shown in the variable named in ``variable_name``."""
        result = self._shown().result
        name = self.variable_name.value.strip()
        if not IDENTIFIER.fullmatch(name) or keyword.iskeyword(name):
            raise ConfigError(f"{name!r} is not a valid Python variable name; use letters, digits and _ (e.g. answer).")
        self._ns[name] = result
        self._inform(f"Stored the VisionResult in `{name}` ({name}.text is the answer).")

    def to_cell_source(self) -> str:
        """The ``%%azure_vision`` cell equivalent to the answer shown (uploads are named by their saved file)."""
        return self._shown().cell_source

    def to_new_cell(self) -> None:
        """Insert the equivalent cell below the panel's cell (where the front end can) and show its source,
        saving the uploads it names."""
        entry = self._shown()
        source = entry.cell_source
        saved = save_uploads(entry.options["entries"])
        self.cell_source.value = source
        self.cell_source.layout.display = None
        notes = []
        if saved:
            notes.append(f"Uploads were saved to {UPLOAD_DIR}/ so it works after a restart.")
        if entry.options.get("chat"):
            notes.append(f"Running it asks again, as the next turn of chat '{entry.options['chat']}'.")
        self._notes = notes
        self._show_note("The equivalent cell is below; copy it into a new cell if it does not appear under the "
                        "panel.")
        if self._insert is not None:
            self._insert(source)

    def inserted(self, content: Mapping[str, Any]) -> None:
        """The front end's answer to an insertion: ``{"ok": true, "index": i}`` or ``{"ok": false, "reason": ...}``."""
        if content.get("ok"):
            self.cell_source.layout.display = "none"  # it is in the notebook now
            self._show_note("Inserted the equivalent cell below the panel's cell: run it to ask from code.")
        else:
            reason = str(content.get("reason") or "this front end does not let a widget add cells")
            self._show_note(f"The equivalent cell is below: copy it into a new cell ({reason}).")

    def _show_note(self, first: str) -> None:
        note = " ".join([first, *self._notes])
        self.cell_note.value = f"<div class='azmm-note azmm-cell-note' style='line-height:1.4'>{html.escape(note)}</div>"


__all__ = ["AnswerKeeper"]
