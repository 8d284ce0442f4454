"""A local Azure-OpenAI-compatible server for demos, notebooks and tests (Starlette + uvicorn).

Same paths, headers, auth, error bodies and streaming format as Azure OpenAI; the answer is a deterministic,
factual Markdown report about the request (image sizes, colours, brightness, token estimates, the prompt).

- :class:`EmulatorServer` runs it in a background thread on loopback: ``with EmulatorServer() as s: s.url``.
- ``python -m azmm_magic.emulator --port 0`` runs it in the foreground.
- :func:`create_app` / :class:`EmulatorConfig` build the ASGI app for other servers.

Names are imported lazily so that importing this package does not import Starlette, uvicorn or Pillow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from azmm_magic.core.lazy import lazy_attributes

_LAZY = {
    "EmulatorConfig": "azmm_magic.emulator.app",
    "create_app": "azmm_magic.emulator.app",
    "EmulatorServer": "azmm_magic.emulator.server",
    "start_subprocess": "azmm_magic.emulator.server",
    "main": "azmm_magic.emulator.__main__",
}

if TYPE_CHECKING:  # pragma: no cover
    from .__main__ import main
    from .app import EmulatorConfig, create_app
    from .server import EmulatorServer, start_subprocess


__getattr__ = lazy_attributes("azmm_magic.emulator", _LAZY)


__all__ = ["EmulatorConfig", "EmulatorServer", "create_app", "main", "start_subprocess"]
