"""azmm_magic: ask Azure OpenAI vision deployments about images from Jupyter.

``%load_ext azmm_magic`` registers the ``%%azure_vision`` cell magic and the ``%azure_vision`` line magic.
The Python API (``VisionClient``, ``Settings``) is importable on its own. Importing this package is cheap:
the ``openai`` SDK, Pillow and matplotlib are imported on first use, never at load time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "VisionClient": "azmm_magic.client",
    "VisionResult": "azmm_magic.result",
    "Settings": "azmm_magic.config",
    "PreparedImage": "azmm_magic.images",
    "prepare_images": "azmm_magic.images",
    "EmulatorServer": "azmm_magic.emulator.server",
    "Conversation": "azmm_magic.conversation",
    "SQLiteCache": "azmm_magic.cache",
    "UsageLedger": "azmm_magic.ledger",
    "compare": "azmm_magic.compare",
    "VisionPanel": "azmm_magic.widgets",
    "BatchResult": "azmm_magic.batch",
    "BatchFailure": "azmm_magic.batch",
    "BatchInterrupted": "azmm_magic.batch",
    "BatchJob": "azmm_magic.batch_api",
}

if TYPE_CHECKING:  # pragma: no cover
    from .batch import BatchFailure, BatchInterrupted, BatchResult
    from .batch_api import BatchJob
    from .client import VisionClient
    from .config import Settings
    from .emulator.server import EmulatorServer
    from .images import PreparedImage, prepare_images
    from .result import VisionResult
    from .widgets import VisionPanel


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'azmm_magic' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext azmm_magic``: registers the magics (nothing else happens at import)."""
    from .magics import AzureVision

    ipython.register_magics(AzureVision)


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext azmm_magic``."""
    from .magics import shutdown_session_emulator

    shutdown_session_emulator(ipython)


__all__ = ["VisionClient", "VisionResult", "Settings", "PreparedImage", "prepare_images", "EmulatorServer", "VisionPanel"]
__all__ += ["BatchResult", "BatchFailure", "BatchInterrupted", "BatchJob"]
