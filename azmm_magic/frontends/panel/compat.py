"""The panel on ipywidgets 7 and 8 and in Colab: the upload button ("Choose files (N)"), tooltips, accordion
titles, closing and counting widgets, and Colab's custom widget manager.

ipywidgets 8 (JupyterLab 4, Notebook 7, VS Code, Kaggle): ``FileUpload.value`` is a tuple of
``{name, type, size, content, last_modified}`` and the label counts ``len(value)``. ipywidgets 7 (Colab, classic
Notebook 6): ``value`` is a read-only dict keyed by file name (two files of one name collapse), the chosen files
arrive as the lists ``metadata`` and ``data``, and the label counts ``_counter``. These functions are the only
places that know the difference, with :func:`tooltip` (ipywidgets 7 names a control's tooltip
``description_tooltip`` on everything but buttons) and :func:`set_titles` (an Accordion's section titles).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

EPOCH = datetime.datetime.fromtimestamp(0, tz=datetime.UTC)


def is_legacy(upload: Any) -> bool:
    """True for ipywidgets 7's FileUpload (its label counts ``_counter``)."""
    return "_counter" in upload.trait_names()


def chosen_files(upload: Any, change: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """The files of a new selection, as ``(name, bytes)``, from the ``value`` change it caused."""
    if is_legacy(upload):
        return [(str(meta.get("name") or "upload"), bytes(data))
                for meta, data in zip(upload.metadata, upload.data, strict=False)]
    return [(str(f["name"] or "upload"), bytes(f["content"])) for f in change["new"] or ()]


def shown_count(upload: Any) -> int:
    """The N of "Choose files (N)"."""
    return int(upload._counter) if is_legacy(upload) else len(upload.value)


def show_uploads(upload: Any, uploads: Sequence[tuple[str, int]]) -> None:
    """Make the label count ``uploads`` (name, size) and drop the chosen files' bytes from the widget (they are
    kept by the panel, not sent back to the page). Changes ``value``: callers ignore the change it causes."""
    if is_legacy(upload):
        with upload.hold_sync():
            upload.metadata = []
            upload.data = []
            upload.set_trait("value", {})
            upload._counter = len(uploads)
        return
    upload.value = tuple({"name": name, "type": "", "size": size, "content": memoryview(b""), "last_modified": EPOCH}
                         for name, size in uploads)


def tooltip(widget: Any, text: str) -> Any:
    """Give ``widget`` the hover text ``text`` (``tooltip`` on ipywidgets 8, ``description_tooltip`` on 7's
    controls); returns the widget."""
    if "tooltip" in widget.trait_names():
        widget.tooltip = text
    else:
        widget.description_tooltip = text
    return widget


def titles_of(accordion: Any) -> tuple[str, ...]:
    """An Accordion's section titles, on ipywidgets 7 and 8."""
    if "titles" in accordion.trait_names():
        return tuple(accordion.titles)
    return tuple(accordion.get_title(index) or "" for index in range(len(accordion.children)))


def colab_widget_metadata() -> dict[str, Any]:
    """The output metadata that makes Colab render a widget with its custom widget manager (the one that loads
    third-party widgets such as the drop zone), when that manager is on; ``{}`` elsewhere.

    Colab adds it to widgets shown with ``display()`` (a hook on its display publisher, which ipywidgets 7 uses);
    a panel that is a cell's result on ipywidgets 8 goes through ``_repr_mimebundle_``, which adds this. anywidget
    turns the manager on when the drop zone is created, and reads the same URL for its own widgets.
    """
    import sys

    output = sys.modules.get("google.colab.output")
    url = getattr(getattr(output, "_widgets", None), "_installed_url", None)
    return {"application/vnd.jupyter.widget-view+json": {"colab": {"custom_widget_manager": {"url": url}}}} if url else {}


def set_titles(container: Any, titles: Sequence[str]) -> None:
    """Give an Accordion's (or Tab's) pages ``titles`` in one update (``titles`` on ipywidgets 8; on 7 ``_titles``,
    keyed by the page index as a string, as its ``set_title`` keys it)."""
    if "titles" in container.trait_names():
        container.titles = tuple(titles)
    else:
        container._titles = {str(index): title for index, title in enumerate(titles)}


def close_tree(widget: Any) -> None:
    """Close ``widget``, the boxes' children under it and each one's ``layout`` and ``style`` (widgets too): a
    widget that is only taken out of a box stays alive in the kernel (and in the page's widget manager)."""
    from ipywidgets import Widget

    for child in getattr(widget, "children", ()) or ():
        close_tree(child)
    for name in ("layout", "style"):
        part = getattr(widget, name, None)
        if isinstance(part, Widget):
            part.close()
    widget.close()


def live_widget_count() -> int:
    """How many widgets are open in this kernel (``Widget.widgets`` on ipywidgets 7, the module's
    ``_instances`` on 8)."""
    from ipywidgets.widgets import widget as module

    instances = getattr(module, "_instances", None)
    if instances is None:
        instances = module.Widget.widgets
    return len(instances)


__all__ = ["chosen_files", "close_tree", "colab_widget_metadata", "is_legacy", "live_widget_count", "set_titles",
           "show_uploads", "shown_count", "titles_of", "tooltip"]
