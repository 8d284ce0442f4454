"""One ``%azure_vision NAME ...`` line subcommand: how it is written, its arguments and what it runs.

Each subcommand module declares one (or two) :class:`Subcommand`; the magic dispatches through a table of them,
and ``%azure_vision help`` lists them from the same table.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azmm_magic.frontends.command import LineParser

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.frontends.magics import AzureVision

_INDENT = " " * 34


def no_arguments(parser: LineParser) -> None:
    """For subcommands that take no arguments."""


@dataclass(frozen=True)
class Subcommand:
    """``forms``: how it is written after ``%azure_vision`` (``("usage", "usage --plot", "usage reset")``).
    ``summary``: one line for the help. ``arguments`` declares its arguments on a :class:`LineParser`;
    ``run(magics, args)`` does the work and returns what the cell shows."""

    name: str
    forms: tuple[str, ...]
    summary: str
    run: Callable[[AzureVision, argparse.Namespace], Any]
    arguments: Callable[[LineParser], None] = no_arguments

    def parser(self) -> LineParser:
        forms = [f"`%azure_vision {form}`" for form in self.forms]
        use = forms[0] if len(forms) == 1 else f"{', '.join(forms[:-1])} or {forms[-1]}"
        parser = LineParser(f"%azure_vision {self.name}", hint=f"Use {use}.")
        self.arguments(parser)
        return parser

    def __call__(self, magics: AzureVision, words: Sequence[str]) -> Any:
        return self.run(magics, self.parser().parse_args(list(words)))

    def help_line(self) -> str:
        """``%azure_vision FORM | FORM   summary`` for the magic's docstring."""
        usage = "%azure_vision " + " | ".join(self.forms)
        summary = textwrap.wrap(self.summary, 80)
        first = f"    {usage:<30}{summary[0]}" if len(usage) < 30 else f"    {usage}\n{_INDENT}{summary[0]}"
        return "\n".join([first, *(_INDENT + line for line in summary[1:])])
