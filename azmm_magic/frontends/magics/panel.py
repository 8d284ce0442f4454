"""``%azure_vision panel``: the VisionPanel widget, on this session's client, cache and settings."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from azmm_magic.frontends.magics.subcommand import Subcommand

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.frontends.magics import AzureVision


def run(magics: AzureVision, args: argparse.Namespace) -> Any:
    from azmm_magic.frontends.panel import VisionPanel

    return VisionPanel(magics)


PANEL = Subcommand("panel", ("panel",), "a panel to ask about images without writing code (same session and cache)",
                   run)
