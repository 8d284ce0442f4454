"""``%azure_vision chat``: the conversations continued with ``--chat [NAME]`` in this session."""

from __future__ import annotations

import argparse
from typing import Any

from azmm_magic.frontends.command import LineParser
from azmm_magic.frontends.magics.subcommand import Session, Subcommand


def arguments(parser: LineParser) -> None:
    parser.add_argument("action", nargs="?", default="list", choices=("list", "show", "reset"))
    parser.add_argument("name", nargs="?")


def run(magics: Session, args: argparse.Namespace) -> Any:
    from azmm_magic.display.bundle import Bundle, table_bundle

    conversations = magics.conversations
    if args.action == "list":
        rows = [(n, str(len(conversations.get(n)))) for n in conversations.names()]
        return Bundle(table_bundle(rows, ("conversation", "turns"), title="Conversations in this session"))
    if args.action == "show":
        conv = conversations.find(args.name)
        rows = conv.rows()
        return Bundle(table_bundle(rows, ("turn", "prompt", "images", "answer", "deployment", "tokens"),
                                    title=f"Conversation '{conv.name}': {len(rows)} turn(s)"))
    n = conversations.reset(args.name)
    print(f"Conversation '{args.name or 'default'}' reset ({n} turn(s) forgotten).")
    return None


CHAT = Subcommand(
    "chat", ("chat list", "chat show [NAME]", "chat reset [NAME]"),
    "the conversations continued with --chat [NAME]", run, arguments,
)
