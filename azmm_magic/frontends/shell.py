"""The running IPython and this extension's magics in it: shared by the notebook accessor and the panel."""

from __future__ import annotations

from typing import Any

from azmm_magic.core.errors import ConfigError


def session_magics(shell: Any = None, *, outside: str) -> tuple[Any, Any]:
    """``(AzureVision magics, shell)`` of ``shell`` (default: the running IPython), loading the extension when
    needed. ``outside`` is the message when there is no IPython (what to do in a plain script instead)."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None:
        raise ConfigError(outside)
    magics = shell.magics_manager.registry.get("AzureVision")
    if magics is None:
        shell.extension_manager.load_extension("azmm_magic")
        magics = shell.magics_manager.registry["AzureVision"]
    return magics, shell


__all__ = ["session_magics"]
