"""azmm_magic: ask Azure OpenAI vision deployments about images from Jupyter.

``%load_ext azmm_magic`` registers the ``%%azure_vision`` cell magic and the ``%azure_vision`` line magic.
The Python API (``VisionClient``, ``Settings``) is importable on its own. Importing this package is cheap:
the ``openai`` SDK, Pillow and matplotlib are imported on first use, never at load time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from azmm_magic.core import views
from azmm_magic.core.lazy import lazy_attributes

__version__ = "0.1.0"

_LAZY = {
    "VisionClient": "azmm_magic.features.client",
    "VisionResult": "azmm_magic.core.result",
    "Settings": "azmm_magic.core.settings",
    "PreparedImage": "azmm_magic.core.images",
    "prepare_images": "azmm_magic.core.images",
    "VideoFrames": "azmm_magic.core.video",
    "EmulatorServer": "azmm_magic.emulator.server",
    "Conversation": "azmm_magic.features.chat",
    "SQLiteCache": "azmm_magic.store.cache",
    "UsageLedger": "azmm_magic.store.ledger",
    "compare": "azmm_magic.features.compare",
    "VisionPanel": "azmm_magic.frontends.panel",
    "BatchResult": "azmm_magic.features.batch",
    "BatchFailure": "azmm_magic.features.batch",
    "BatchInterrupted": "azmm_magic.features.batch",
    "BatchJob": "azmm_magic.features.batch_api",
    "session": "azmm_magic.frontends.magics.notebook",
    "NotebookSession": "azmm_magic.frontends.magics.notebook",
}

if TYPE_CHECKING:  # pragma: no cover
    from .core.images import PreparedImage, prepare_images
    from .core.result import VisionResult
    from .core.settings import Settings
    from .core.video import VideoFrames
    from .emulator.server import EmulatorServer
    from .features.batch import BatchFailure, BatchInterrupted, BatchResult
    from .features.batch_api import BatchJob
    from .features.client import VisionClient
    from .frontends.magics.notebook import NotebookSession, session
    from .frontends.panel import VisionPanel


__getattr__ = lazy_attributes("azmm_magic", _LAZY)


def _load_display() -> None:
    """Import the display layer, which registers how the lower layers' objects render (see core/views.py)."""
    importlib.import_module("azmm_magic.display")


views.set_loader(_load_display)  # the composition root wires the layers: display is loaded on first render


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext azmm_magic``: registers the magics (nothing else happens at import), then starts
    the background warm-up (imports and builds what the first cell needs; the ``warmup`` setting turns it off)."""
    from .frontends.magics import AzureVision

    ipython.register_magics(AzureVision)
    magics = ipython.magics_manager.registry.get("AzureVision")
    if magics is not None:
        magics.start_warmup()


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext azmm_magic``."""
    from .frontends.magics import shutdown_session_emulator

    shutdown_session_emulator(ipython)


__all__ = ["VisionClient", "VisionResult", "Settings", "PreparedImage", "prepare_images", "EmulatorServer", "VisionPanel"]
__all__ += ["VideoFrames", "BatchResult", "BatchFailure", "BatchInterrupted", "BatchJob", "session", "NotebookSession"]
