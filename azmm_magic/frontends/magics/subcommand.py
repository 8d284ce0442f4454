"""One ``%azure_vision NAME ...`` line subcommand: how it is written, its arguments and what it runs.

Each subcommand module declares one (or two) :class:`Subcommand`; the magic dispatches through a table of them,
and ``%azure_vision help`` lists them from the same table.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from azmm_magic.core.settings import Secret, Settings
from azmm_magic.frontends.command import LineParser

_INDENT = " " * 34


class Session(Protocol):
    """What a subcommand may use of the magic's session (:class:`~azmm_magic.frontends.magics.AzureVision`);
    a protocol, so that subcommand modules need not import the package that imports them."""

    shell: Any
    conversations: Any
    ledger: Any
    emulator: Any
    emulator_port: int  # the port the session's emulator last ran on (0: none yet); a restart takes it again
    login_key: Secret | None
    set_by: dict[str, tuple[Any, str]]  # trait -> (value, the subcommand that set it)
    endpoint: str | None  # the traits a subcommand changes
    deployment: str | None
    auth: str | None
    api_style: str | None

    def azure_vision(self, line: str, cell: str | None = None) -> Any: ...  # its docstring is the help

    def session_settings(self) -> Settings: ...

    def client(self, settings: Settings | None = None) -> Any: ...

    def close_clients(self) -> None: ...

    def price_table(self) -> dict[str, Any] | None: ...

    @property
    def answer_cache(self) -> Any: ...

    @property
    def in_kernel(self) -> bool: ...


def in_terminal(shell: Any) -> bool:
    """Whether ``shell`` is terminal IPython (no widgets, no images: text only), by class name so that a kernel
    does not import prompt_toolkit to find out."""
    return any(cls.__name__ == "TerminalInteractiveShell" for cls in type(shell).__mro__)


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
    run: Callable[[Session, argparse.Namespace], Any]
    arguments: Callable[[LineParser], None] = no_arguments

    def parser(self) -> LineParser:
        forms = [f"%azure_vision {form}" for form in self.forms]
        use = forms[0] if len(forms) == 1 else f"{', '.join(forms[:-1])} or {forms[-1]}"
        parser = LineParser(f"%azure_vision {self.name}", hint=f"Use {use}.")
        self.arguments(parser)
        return parser

    def __call__(self, magics: Session, words: Sequence[str]) -> Any:
        return self.run(magics, self.parser().parse_args(list(words)))

    def help_line(self) -> str:
        """``%azure_vision FORM | FORM   summary`` for the magic's docstring."""
        usage = "%azure_vision " + " | ".join(self.forms)
        summary = textwrap.wrap(self.summary, 64)
        first = f"    {usage:<30}{summary[0]}" if len(usage) < 30 else f"    {usage}\n{_INDENT}{summary[0]}"
        return "\n".join([first, *(_INDENT + line for line in summary[1:])])
