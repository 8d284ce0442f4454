"""Lazy imports: package attributes (PEP 562) imported on first use, and ``jsonschema`` without its slowest part.

:func:`import_jsonschema`: jsonschema's format module imports ``rfc3987_syntax`` when it is installed (it comes
with ``jsonschema[format-nongpl]``, which the Jupyter stack pulls in through jupyter-events), and that package
compiles about 35 Lark parsers when imported: about 1.5 s of CPU and 140,000 objects that stay alive, which the
interpreter then collects and frees when the process exits (``python -c "import jsonschema"`` exits 0.3 s later
than ``python -c pass``; a kernel that imported jsonschema shuts down 0.4 s later). Only jsonschema's ``iri`` and
``iri-reference`` format checks use it, and nothing here checks formats, so it is imported on the first such check
instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` that imports ``table[name]`` (a module path) on first access of ``name``."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__


_JSONSCHEMA_LOCK = threading.Lock()


def _is_valid_syntax(*args: Any, **kwargs: Any) -> Any:
    """``rfc3987_syntax.is_valid_syntax``, importing the package on the first call."""
    real = importlib.import_module("rfc3987_syntax")  # the real package: the stand-in left sys.modules already
    return real.is_valid_syntax(*args, **kwargs)


def import_jsonschema() -> types.ModuleType:
    """``import jsonschema``, deferring ``rfc3987_syntax`` to jsonschema's first ``iri`` format check.

    When jsonschema is not imported yet and ``rfc3987_syntax`` is installed but not imported, jsonschema is
    imported while ``sys.modules`` holds a stand-in for ``rfc3987_syntax`` whose ``is_valid_syntax`` imports the
    real package when first called; the stand-in is removed right after, so any later ``import rfc3987_syntax``
    gets the real package. Format checking behaves as with a plain import."""
    with _JSONSCHEMA_LOCK:
        if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
            return importlib.import_module("jsonschema")
        try:
            installed = importlib.util.find_spec("rfc3987_syntax") is not None
        except (ImportError, ValueError):
            installed = False
        if not installed:
            return importlib.import_module("jsonschema")
        stand_in = types.ModuleType("rfc3987_syntax", "Stand-in while jsonschema is imported (azmm_magic.core.lazy).")
        stand_in.__dict__["is_valid_syntax"] = _is_valid_syntax
        sys.modules["rfc3987_syntax"] = stand_in
        try:
            return importlib.import_module("jsonschema")
        finally:
            if sys.modules.get("rfc3987_syntax") is stand_in:
                del sys.modules["rfc3987_syntax"]


__all__ = ["import_jsonschema", "lazy_attributes"]
