"""``%azure_vision usage``: calls, tokens, cache hits and seconds per deployment (and cost, with ``prices``)."""

from __future__ import annotations

import argparse
from typing import Any

from azmm_magic.frontends.command import LineParser
from azmm_magic.frontends.magics.subcommand import Session, Subcommand, in_terminal

NO_PRICES = " (set %config AzureVision.prices for cost estimates)"
NO_PLOT = "--plot: the chart is an image, shown in a notebook (JupyterLab, VS Code); a terminal shows the table."


def arguments(parser: LineParser) -> None:
    parser.add_argument("action", nargs="?", choices=("reset",))
    parser.add_argument("--plot", action="store_true", help="add a bar chart")


def run(magics: Session, args: argparse.Namespace) -> Any:
    from azmm_magic.store.ledger import UsageView

    if args.action == "reset":
        magics.ledger.reset()
        print("Usage ledger reset.")
        return None
    magics.ledger.prices = magics.price_table()
    if args.plot and in_terminal(magics.shell):
        print(NO_PLOT)
        return UsageView(magics.ledger, hint=NO_PRICES)
    return UsageView(magics.ledger, plot=args.plot, hint=NO_PRICES)


USAGE = Subcommand(
    "usage", ("usage", "usage --plot", "usage reset"),
    "calls, tokens, cache hits, seconds (and cost, with %config AzureVision.prices) per deployment", run, arguments,
)
