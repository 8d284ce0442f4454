"""``%azure_vision help`` (and ``%azure_vision`` alone): the magic's docstring, which is also its ``?`` help."""

from __future__ import annotations

import argparse
from typing import Any

from azmm_magic.frontends.magics.subcommand import Session, Subcommand


def run(magics: Session, args: argparse.Namespace) -> Any:
    from IPython.display import Markdown

    return Markdown(f"```\n{magics.azure_vision.__doc__}\n```")


HELP = Subcommand("help", ("help",), "this text", run)
