"""``%azure_vision help`` (and ``%azure_vision`` alone): the magic's help, which is also its docstring (``?``).

Written as plain text, for a terminal as much as a notebook: a synopsis, the cell options grouped (images,
model, output, cache, batch) from the option parser itself, two examples, then the line subcommands.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Iterable
from typing import Any

from azmm_magic.frontends.command import build_parser
from azmm_magic.frontends.magics.subcommand import Session, Subcommand

WIDTH = 100
_OPTION_WIDTH = 24

#: The groups of cell options, by argparse ``dest``; options not named here are listed under "other".
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("images", ("image", "detail", "frames", "frames_per_request", "column")),
    ("model", ("deployment", "system", "max_tokens", "temperature", "json", "schema", "chat")),
    ("output", ("out", "no_stream", "dry_run")),
    ("cache", ("no_cache", "refresh")),
    ("batch", ("each", "concurrency", "expect", "via")),
)

SYNOPSIS = """\
Ask an Azure OpenAI vision deployment about images.

    %%azure_vision [options]
    <the prompt: your question, on the lines below>

    %azure_vision SUBCOMMAND ...

The options on the first line name the images and tune the request; the cell body is the prompt.
{name} in the prompt is replaced by the value of the variable name when it is defined (anything else in
braces, such as JSON, is sent as written; {{name}} gives a literal {name}). Answers stream while the model
writes and are cached for the session: re-running a cell is instant and sends nothing. The answer is a
VisionResult: -o NAME keeps it in a variable (a streamed answer stays where it was written, as the cell's
output; an answer that did not stream is also the cell's value)."""

EXAMPLES = """\
Examples:

    %%azure_vision -i photos/cat.jpg -i chart_fig --detail high -o answer
    What is in these two images? Compare them in three bullet points.

    %%azure_vision -i 'receipts/*.png' --each --json
    Give the shop name and the total as JSON: {"shop": ..., "total": ...}"""

FOOTER = """\
More: --deployment a,b asks several deployments and shows the answers side by side (-o gets a dict).
%config AzureVision.cache = "sqlite" keeps answers in a file (cache_path, AZMM_CACHE_PATH); "replay"
answers only from that file and never calls the service.

Settings: %config AzureVision lists them, e.g. %config AzureVision.deployment = "gpt-4o". The endpoint,
key and API version also come from AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and OPENAI_API_VERSION.
Keys are never accepted on the magic line: use %azure_vision login. To try everything without Azure:
%azure_vision emulator (a local test server, not a model)."""


def _wrap(text: str, indent: int) -> list[str]:
    return textwrap.wrap(text, WIDTH - indent) or [""]


def _invocation(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or (("{" + ",".join(map(str, action.choices)) + "}") if action.choices else "X")
    value = f"[{metavar}]" if action.nargs == "?" else metavar
    return ", ".join(f"{name} {value}" for name in action.option_strings)


def _option_lines(action: argparse.Action) -> list[str]:
    head = "  " + _invocation(action)
    help_text = (action.help or "").replace("%%", "%")
    if action.choices and action.metavar:
        help_text += f" ({', '.join(map(str, action.choices))})"
    body = _wrap(help_text, _OPTION_WIDTH + 2)
    if len(head) <= _OPTION_WIDTH:
        lines = [f"{head:<{_OPTION_WIDTH}}  {body[0]}"]
    else:
        lines = [head, " " * (_OPTION_WIDTH + 2) + body[0]]
    return lines + [" " * (_OPTION_WIDTH + 2) + line for line in body[1:]]


def options_text(parser: argparse.ArgumentParser | None = None) -> str:
    """The cell options, grouped (images, model, output, cache, batch, then any other)."""
    actions = [a for a in (parser or build_parser())._actions if a.option_strings]
    by_dest = {a.dest: a for a in actions}
    named = {dest for _, dests in GROUPS for dest in dests}
    groups = [(title, [by_dest[d] for d in dests if d in by_dest]) for title, dests in GROUPS]
    groups.append(("other", [a for a in actions if a.dest not in named]))
    blocks = []
    for title, group in groups:
        if group:
            blocks.append("\n".join([f"Options, {title}:", *(line for a in group for line in _option_lines(a))]))
    return "\n\n".join(blocks)


def subcommands_text(subcommands: Iterable[Subcommand]) -> str:
    return "\n".join(["Line magic (%azure_vision SUBCOMMAND):", *(sub.help_line() for sub in subcommands)])


def _fill(text: str) -> str:
    """Re-wrap the prose paragraphs of ``text`` to :data:`WIDTH`; indented lines (examples) are kept."""
    out = []
    for block in text.split("\n\n"):
        prose = not block.startswith(" ") and "\n " not in block
        out.append(textwrap.fill(" ".join(block.split()), WIDTH - 4) if prose else block)
    return "\n\n".join(out)


def help_text(subcommands: Iterable[Subcommand]) -> str:
    """The whole help: synopsis, grouped options, examples, subcommands, settings."""
    return "\n\n".join([_fill(SYNOPSIS), options_text(), EXAMPLES, subcommands_text(subcommands), _fill(FOOTER)]) + "\n"


def run(magics: Session, args: argparse.Namespace) -> Any:
    from azmm_magic.display.bundle import Bundle, text_bundle

    return Bundle(text_bundle(magics.azure_vision.__doc__ or ""))


HELP = Subcommand("help", ("help",), "this text", run)

__all__ = ["GROUPS", "HELP", "help_text", "options_text", "subcommands_text"]
