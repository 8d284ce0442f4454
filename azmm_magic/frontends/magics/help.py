"""``%azure_vision help`` (and ``%azure_vision`` alone): the magic's docstring, which is also its ``?`` help."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from azmm_magic.frontends.magics.subcommand import Subcommand

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.frontends.magics import AzureVision


def run(magics: AzureVision, args: argparse.Namespace) -> Any:
    from IPython.display import Markdown

    return Markdown(f"```\n{type(magics).azure_vision.__doc__}\n```")


HELP = Subcommand("help", ("help",), "this text", run)
