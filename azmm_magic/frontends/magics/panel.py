"""``%azure_vision panel``: the VisionPanel widget, on this session's client, cache and settings."""

from __future__ import annotations

import argparse
from typing import Any

from IPython.core.error import UsageError

from azmm_magic.frontends.magics.subcommand import Session, Subcommand, in_terminal

TERMINAL_HINT = (
    "%azure_vision panel is a widget: it needs Jupyter (JupyterLab, Notebook 7 or VS Code), not a terminal. "
    "Here, ask with the cell magic: %%azure_vision -i IMAGE, then your question on the next line "
    "(%azure_vision help)."
)


def run(magics: Session, args: argparse.Namespace) -> Any:
    if in_terminal(magics.shell):
        raise UsageError(TERMINAL_HINT)
    from azmm_magic.frontends.panel import VisionPanel

    return VisionPanel(magics)


PANEL = Subcommand("panel", ("panel",), "a panel to ask about images without writing code (same session and cache)",
                   run)
