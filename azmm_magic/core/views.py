"""How objects of the lower layers render without importing the display layer.

A ``VisionResult``, ``BatchResult``, ``Comparison``, ``BatchJob`` or ``UsageView`` shows rich output in Jupyter
through its ``_repr_mimebundle_``, which calls :func:`mimebundle` here. The renderers live in
:mod:`azmm_magic.display`, which registers them with :func:`register` when it is imported; the composition root
(``azmm_magic/__init__.py``) tells this module how to import it with :func:`set_loader`, so the display layer is
loaded on first use, and a result returned by the Python API renders without ``%load_ext``.

A renderer is keyed by class (or its dotted name, ``"azmm_magic.core.result.VisionResult"``, so the display layer
need not import a class to register it) and by view: ``"mimebundle"`` (a dict of mimetype -> data, always with
``text/plain``), ``"plain"`` (plain text, when it is cheaper than the whole bundle) or another text view (e.g.
``"footer"``). Lookups follow the class's MRO, so subclasses render like their base.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Any

MIMEBUNDLE = "mimebundle"
PLAIN = "plain"

Renderer = Callable[[Any], Any]

_renderers: dict[tuple[str, str], Renderer] = {}
_loader: Callable[[], object] | None = None
_loaded = False
_lock = threading.RLock()


def type_key(kind: type | str) -> str:
    """The registry key of a class: ``module.QualName`` (a string is taken as it is)."""
    return kind if isinstance(kind, str) else f"{kind.__module__}.{kind.__qualname__}"


def register(kind: type | str, renderer: Renderer, *, view: str = MIMEBUNDLE) -> None:
    """Render objects of ``kind`` (a class or its dotted name) with ``renderer(obj)`` for ``view``."""
    with _lock:
        _renderers[(type_key(kind), view)] = renderer


def registered() -> list[tuple[str, str]]:
    """The ``(dotted class name, view)`` pairs that have a renderer (loads the display layer first)."""
    _load()
    with _lock:
        return sorted(_renderers)


def set_loader(loader: Callable[[], object] | None) -> None:
    """``loader()`` is called once, on the first lookup, to import the layer that registers the renderers."""
    global _loader, _loaded
    with _lock:
        _loader, _loaded = loader, False


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if not _loaded and _loader is not None:
            _loader()  # an import error propagates: a broken display layer should be seen, not hidden
        _loaded = True


def renderer(obj: object, view: str = MIMEBUNDLE) -> Renderer | None:
    """The renderer of ``obj`` for ``view`` (looked up along its class's MRO), or None."""
    _load()
    for cls in type(obj).__mro__:
        found = _renderers.get((type_key(cls), view))
        if found is not None:
            return found
    return None


def _fallback(obj: object) -> str:
    return f"<{type(obj).__qualname__}: no renderer registered>"


def mimebundle(
    obj: object, include: Collection[str] | None = None, exclude: Collection[str] | None = None
) -> dict[str, Any]:
    """``obj`` as a mimebundle (for ``_repr_mimebundle_``), limited to ``include`` and without ``exclude``."""
    render = renderer(obj)
    bundle: dict[str, Any] = dict(render(obj)) if render is not None else {"text/plain": _fallback(obj)}
    if include:
        bundle = {k: v for k, v in bundle.items() if k in include}
    if exclude:
        bundle = {k: v for k, v in bundle.items() if k not in exclude}
    return bundle


def plain(obj: object) -> str:
    """``obj`` as plain text: its ``"plain"`` view, else the ``text/plain`` of its mimebundle."""
    render = renderer(obj, PLAIN)
    if render is not None:
        return str(render(obj))
    return str(mimebundle(obj).get("text/plain", _fallback(obj)))


def text(obj: object, view: str) -> str:
    """A named text view of ``obj`` (e.g. ``"footer"`` of a result)."""
    render = renderer(obj, view)
    if render is None:
        raise LookupError(f"no {view!r} view is registered for {type_key(type(obj))}")
    return str(render(obj))


__all__ = ["MIMEBUNDLE", "PLAIN", "mimebundle", "plain", "register", "registered", "renderer", "set_loader",
           "text", "type_key"]
