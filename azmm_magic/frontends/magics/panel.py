"""``%azure_vision panel``: the VisionPanel widget, on this session's client, cache and settings."""

from __future__ import annotations

import argparse
from typing import Any

from azmm_magic.frontends.magics.subcommand import Session, Subcommand


def run(magics: Session, args: argparse.Namespace) -> Any:
    from azmm_magic.frontends.panel import VisionPanel

    return VisionPanel(magics)


PANEL = Subcommand("panel", ("panel",), "a panel to ask about images without writing code (same session and cache)",
                   run)
