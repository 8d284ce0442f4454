"""Parsing a ``%%azure_vision`` cell into a typed :class:`VisionCommand` (no IPython import, no network).

* The magic line is split with :mod:`shlex` (quotes work, ``line.split(" ")`` is never used) and parsed with
  :mod:`argparse`; every mistake becomes a :class:`~azmm_magic.core.errors.ConfigError` with one clear line.
* The cell body is the prompt: ``{name}`` is filled from the notebook's variables by
  :func:`azmm_magic.core.prompts.interpolate` (``{{name}}`` is a literal ``{name}``, other braces stay as written).
* ``-i NAME`` / ``-i {NAME}`` and ``--schema NAME`` name a variable: :func:`variable_name` reads the name and
  :func:`resolve_image_arg` decides between a variable and a path.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NoReturn

from azmm_magic.core.errors import ConfigError
from azmm_magic.core.prompts import interpolate, unresolved_names
from azmm_magic.core.settings import SCHEMA

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY_OPTIONS = ("--api-key", "--key", "--api_key", "--token", "--azure-ad-token")


class LineParser(argparse.ArgumentParser):
    """argparse for a magic line (the cell's options, or a line subcommand's arguments): it raises one clear
    :class:`~azmm_magic.core.errors.ConfigError` line instead of printing and exiting.

    ``hint``: appended to every error, e.g. the forms of a subcommand (``use `%azure_vision usage` or ...``).
    """

    def __init__(self, prog: str, *, hint: str = "See %azure_vision help.", **kwargs: Any) -> None:
        super().__init__(prog=prog, add_help=False, allow_abbrev=False, **kwargs)
        self.hint = hint

    def error(self, message: str) -> NoReturn:
        message = message.replace("\r", "\\r").replace("\n", "\\n")  # a quoted newline: still one line
        if not self._actions and message.startswith("unrecognized arguments"):
            message = f"takes no arguments ({message})"
        elif message.startswith("unrecognized arguments: "):
            words = message.split(": ", 1)[1].split()
            message += did_you_mean(words, self.option_names())
            if self.prog == "%%azure_vision":
                message += stray_words_hint(words)
        raise ConfigError(f"{self.prog}: {message}. {self.hint}".strip())

    def option_names(self) -> list[str]:
        """Every option string this parser knows (``-i``, ``--image``, ``--detail``...)."""
        return [name for action in self._actions for name in action.option_strings]

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise ConfigError((message or f"{self.prog}: invalid options").strip())


def did_you_mean(words: Sequence[str], known: Sequence[str]) -> str:
    """``" (did you mean --detail?)"`` for the misspelt options among ``words``, or ""."""
    guesses = []
    for word in words:
        if word.startswith("-"):
            close = difflib.get_close_matches(word.split("=", 1)[0], [k for k in known if k.startswith("--")] or known,
                                              n=1, cutoff=0.75)
            guesses += [f"{close[0]} for {word.split('=', 1)[0]}"] if close else []
    if not guesses:
        return ""
    if len(guesses) == 1:
        return f" (did you mean {guesses[0].split(' for ')[0]}?)"
    return f" (did you mean {', '.join(guesses)}?)"


_PATHLIKE = re.compile(r"^[\w.~{}*?\[\]/\\:-]+$")


def stray_words_hint(words: Sequence[str]) -> str:
    """For words on the cell's options line that are no options: one word that looks like a file or a variable is
    probably a forgotten ``-i``; several words are probably the question, which goes in the cell body."""
    plain = [w for w in words if not w.startswith("-")]
    if not plain or len(plain) != len(words):
        return ""
    if len(plain) == 1 and _PATHLIKE.match(plain[0]) and not plain[0].endswith("?"):
        return f" (did you mean -i {plain[0]}?)"
    return (" (the question goes in the cell body, on the lines below the %%azure_vision options line, "
            "not on the options line)")


def build_parser() -> argparse.ArgumentParser:
    """The option parser of ``%%azure_vision`` (its help text is part of the magic's docstring)."""
    p = LineParser("%%azure_vision",
                   description="The cell body is the prompt; the options name the images and tune the request.")
    p.add_argument("-i", "--image", action="append", default=[], metavar="SRC",
                   help="image: path, glob ('photos/*.jpg'), http(s) URL, PDF ('paper.pdf#page=2-5': its pages), "
                        "video ('clip.mp4#t=10,20': sampled frames), HEIC/AVIF photo, or a variable name / {name} "
                        "holding a PIL image, numpy array, matplotlib figure, bytes, a list of these, or a pandas "
                        "DataFrame (with --each: one request per row). Repeatable.")
    p.add_argument("--detail", choices=SCHEMA["detail"].choices, help="image detail (default: the detail setting)")
    p.add_argument("--max-tokens", type=int, metavar="N", help="output token limit")
    p.add_argument("--temperature", type=float, metavar="T", help="sampling temperature")
    p.add_argument("--deployment", metavar="NAME", help="deployment to ask (default: the deployment setting)")
    p.add_argument("--system", metavar="TEXT", help="system message")
    p.add_argument("-o", "--out", metavar="VAR", help="store the VisionResult in this variable")
    p.add_argument("--no-stream", action="store_true", help="wait for the whole answer instead of streaming it")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the answer cache")
    p.add_argument("--refresh", action="store_true", help="ask again and replace the cached answer")
    p.add_argument("--dry-run", action="store_true",
                   help="show the request that would be sent (images, token and cost estimate) and send nothing")
    p.add_argument("--chat", nargs="?", const="default", metavar="NAME",
                   help="continue the conversation NAME (default: 'default'): earlier turns and their images are "
                        "sent again (budget: chat_turns, chat_image_turns)")
    p.add_argument("--json", action="store_true", help="ask for a JSON object; the parsed dict is result.parsed")
    p.add_argument("--schema", metavar="NAME",
                   help="ask for JSON matching the pydantic model class or JSON Schema dict in variable NAME "
                        "(structured outputs); the parsed value is result.parsed")
    p.add_argument("--each", action="store_true",
                   help="ask the prompt about each image separately (one request per image, concurrently); "
                        "the value is a BatchResult")
    p.add_argument("--concurrency", type=int, metavar="N", help="with --each: most requests in flight at once")
    p.add_argument("--frames", type=int, metavar="N",
                   help="frames sampled evenly from each video (default 8), in time order with their timestamps")
    p.add_argument("--frames-per-request", type=int, metavar="K",
                   help="with --each over a video: K consecutive frames per request (default 1: one per frame)")
    p.add_argument("--column", metavar="NAME",
                   help="with -i DATAFRAME --each: the column holding the images (default: found). {name} in the "
                        "prompt is filled per row from the row's column name; columns win over notebook variables")
    p.add_argument("--expect", metavar="COLUMN[=FIELD]",
                   help="with -i DATAFRAME --each: score each answer against the label in column COLUMN (with "
                        "--schema/--json: =FIELD compares that field) and show the evaluation under the gallery; "
                        "with --deployment a,b every deployment answers every row, side by side")
    p.add_argument("--via", choices=("requests", "batch-api"),
                   help="with --each: 'batch-api' submits an Azure OpenAI Batch API job (24 h, half price) instead")
    return p


@lru_cache(maxsize=1)
def _cell_parser() -> argparse.ArgumentParser:
    """The parser :func:`parse_cell` uses, built once (building it costs more than a cached answer lookup)."""
    return build_parser()


@dataclass(frozen=True)
class VisionCommand:
    """A parsed ``%%azure_vision`` cell."""

    prompt: str
    images: tuple[Any, ...] = ()
    detail: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    deployment: str | None = None
    system: str | None = None
    out: str | None = None
    stream: bool = True
    use_cache: bool = True
    refresh: bool = False
    dry_run: bool = False
    each: bool = False
    concurrency: int | None = None
    via: str | None = None
    image_labels: tuple[str, ...] = field(default=(), compare=False)
    chat: str | None = None
    response_format: Any = field(default=None, compare=False)  # "json", a pydantic class or a JSON Schema dict
    schema_name: str | None = None
    expect: str | None = None  # --expect COLUMN: the DataFrame column holding each row's label
    expect_field: str | None = None  # --expect COLUMN=FIELD: the structured answer's field to compare
    unresolved: tuple[str, ...] = field(default=(), compare=False)  # {name}s in the prompt with no such variable

    def object_names(self) -> tuple[str | None, ...]:
        """Per image, the variable it came from when ``-i NAME`` held an image object (a figure, an array, a
        PIL image, bytes) so captions can name it; None for files and URLs. Empty when no image came from such a
        variable, or when that cannot be told (a ``-i`` that expands to several images)."""
        names: list[str | None] = []
        for label, value in zip(self.image_labels, self.images, strict=False):
            if isinstance(value, (list, tuple)):
                return ()
            name = variable_name(label)
            names.append(name if name is not None and not isinstance(value, (str, os.PathLike)) else None)
        return tuple(names) if any(names) else ()

    def notices(self) -> tuple[str, ...]:
        """What the footer should say about the prompt: ``{name}`` sent as written because no variable has that name."""
        return tuple(f"sent {{{name}}} as written: no such variable" for name in self.unresolved)

    @property
    def deployments(self) -> tuple[str, ...]:
        """``--deployment a,b`` names several deployments to compare; otherwise one (or none)."""
        if not self.deployment:
            return ()
        return tuple(d.strip() for d in self.deployment.split(",") if d.strip())

    def options(self) -> dict[str, Any]:
        """Keyword options for :meth:`VisionClient.prepare`."""
        return {
            "deployment": self.deployment,
            "detail": self.detail,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "system": self.system,
            "response_format": self.response_format,
        }


def split_line(line: str) -> list[str]:
    """shlex-split a magic line; unbalanced quotes become a clear error."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as e:
        raise ConfigError(f"%%azure_vision: cannot read the options ({e}); check the quotes on the magic line.") from None


def variable_name(arg: str) -> str | None:
    """The variable an option value names: ``name`` or ``{name}`` (spaces around ignored) gives ``name``; anything
    else (a path, a glob, a URL, ``{{name}}``) gives None."""
    text = arg.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    return text if _IDENTIFIER.fullmatch(text) else None


def resolve_image_arg(arg: str, namespace: Mapping[str, Any]) -> Any:
    """What one ``-i`` value stands for; the one place an image argument is looked up in the notebook's variables.

    * ``{name}``: the variable's value; no such variable is an error.
    * ``name``: the variable's value when there is one (a variable wins over a file of that name), else the text
      when such a file exists, else an error suggesting close variable and file names.
    * anything else: the text (a path, glob or URL) with its ``{name}`` placeholders filled (``photos/{kind}.jpg``).
    """
    name = variable_name(arg)
    if name is None:
        return interpolate(arg, namespace)
    if name in namespace:
        return namespace[name]
    if arg.strip().startswith("{"):
        raise ConfigError(f"-i {arg}: no variable named {name!r} in this notebook; define it or give a path.")
    if not os.path.exists(os.path.expanduser(name)):
        raise ConfigError(f"-i {name}: no file or variable named {name!r}{_close_names(name, namespace)}.")
    return interpolate(arg, namespace)


def _close_names(word: str, namespace: Mapping[str, Any]) -> str:
    """`` (did you mean chart_fig, or the file chart.png?)``: close variable names and files in the folder; when
    none is close, what to give instead."""
    names = [n for n, v in namespace.items() if not n.startswith("_") and not isinstance(v, type(os))
             and not callable(v)]
    variables = difflib.get_close_matches(word, names, n=2, cutoff=0.6)
    try:
        files = sorted(f for f in os.listdir(".") if not f.startswith("."))
    except OSError:
        files = []
    by_stem = {os.path.splitext(f)[0]: f for f in files}
    close = difflib.get_close_matches(word, list(by_stem) + files, n=2, cutoff=0.6)
    found = list(dict.fromkeys(by_stem.get(c, c) for c in close))
    guesses = [", ".join(variables)] if variables else []
    guesses += [("the file " if len(found) == 1 else "the files ") + ", ".join(found)] if found else []
    return f" (did you mean {', or '.join(guesses)}?)" if guesses else "; give a path, a glob or the name of a variable"


def parse_cell(line: str, cell: str, namespace: Mapping[str, Any]) -> VisionCommand:
    """Parse the magic line and body into a :class:`VisionCommand` (images are resolved, not yet prepared)."""
    tokens = split_line(line)
    for token in tokens:
        if token.split("=", 1)[0].lower() in _KEY_OPTIONS:
            raise ConfigError(
                "Keys are never accepted on the magic line (they would be saved in the notebook): set "
                "AZURE_OPENAI_API_KEY in the environment or run %azure_vision login."
            )
    # values such as --max-tokens {n} may use variables; -i values are resolved separately (they may be objects)
    expanded = [
        t if i and tokens[i - 1] in ("-i", "--image", "--schema") or t.startswith(("-i", "--image=", "--schema="))
        else interpolate(t, namespace)
        for i, t in enumerate(tokens)
    ]
    args = _cell_parser().parse_args(expanded)
    images = tuple(resolve_image_arg(a, namespace) for a in args.image)
    images, by_row = _sources(images, args, namespace)
    # a batch over DataFrame rows fills {name} per row (columns first, then notebook variables) in one pass
    prompt = (cell if by_row else interpolate(cell, namespace)).strip()
    if not prompt:
        raise ConfigError("The prompt is empty: write your question in the cell body, below the %%azure_vision line.")
    if args.out is not None and (not _IDENTIFIER.fullmatch(args.out) or args.out in ("True", "False", "None")):
        raise ConfigError(f"-o {args.out!r}: not a valid Python variable name.")
    response_format, schema_name = _response_format(args, namespace)
    if args.chat is not None:
        from azmm_magic.features.chat import check_name

        check_name(args.chat, "--chat")
    if args.concurrency is not None and args.concurrency < 1:
        raise ConfigError(f"--concurrency {args.concurrency}: give a number of requests of at least 1.")
    expect, expect_field = _expectation(args, images, by_row, response_format)
    return VisionCommand(
        prompt=prompt,
        images=images,
        detail=args.detail,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        deployment=interpolate(args.deployment, namespace) if args.deployment else None,
        system=interpolate(args.system, namespace) if args.system else None,
        out=args.out,
        stream=not args.no_stream,
        use_cache=not args.no_cache,
        refresh=args.refresh,
        dry_run=args.dry_run,
        each=args.each or args.via is not None,
        concurrency=args.concurrency,
        via=args.via,
        image_labels=tuple(args.image),
        chat=args.chat,
        response_format=response_format,
        schema_name=schema_name,
        expect=expect,
        expect_field=expect_field,
        unresolved=unresolved_names(cell, namespace),
    )


def _sources(images: tuple[Any, ...], args: argparse.Namespace, namespace: Mapping[str, Any]) -> tuple[tuple[Any, ...], bool]:
    """``--column`` wraps a DataFrame as rows (checked now, with --option hints), ``--frames``/``--frames-per-request``
    say how videos are sampled; returns the sources and whether the batch goes over DataFrame rows."""
    from azmm_magic.features.rows import Rows, image_column, is_dataframe

    each = args.each or args.via is not None
    from azmm_magic.core.video import DEFAULT_FRAMES, MAX_FRAMES, VideoFrames

    if args.frames is not None and not 1 <= args.frames <= MAX_FRAMES:
        raise ConfigError(f"--frames {args.frames}: give a number from 1 to {MAX_FRAMES}.")
    if args.frames_per_request is not None and args.frames_per_request < 1:
        raise ConfigError(f"--frames-per-request {args.frames_per_request}: give a number of at least 1.")
    if args.frames_per_request is not None and not each:
        raise ConfigError("--frames-per-request K splits a video over several requests: add --each.")
    frames = [i for i, image in enumerate(images) if is_dataframe(image)]
    if not frames:
        if args.column is not None:
            raise ConfigError(f"--column {args.column}: -i must name a pandas DataFrame (one request per row).")
        if args.frames is not None or args.frames_per_request is not None:
            count = DEFAULT_FRAMES if args.frames is None else args.frames
            images = tuple(VideoFrames(i, count, args.frames_per_request) for i in images)
        return images, False
    label = args.image[frames[0]]
    if not each:
        raise ConfigError(f"-i {label} is a pandas DataFrame: add --each to ask about each row (one request per row).")
    if len(images) > 1:
        raise ConfigError(f"-i {label} is a pandas DataFrame: give it as the only -i (one request per row).")
    if args.via == "batch-api":
        raise ConfigError(f"-i {label} is a pandas DataFrame: its rows go through --each (requests), not --via batch-api.")
    try:
        image_column(images[0], args.column)
    except ConfigError as e:
        message = str(e).replace("choose one with column=", "choose one with --column NAME")
        raise ConfigError(message.replace("column=", "--column ") + ".") from None
    return (Rows(images[0], args.column, namespace),), True


def _expectation(args: argparse.Namespace, images: tuple[Any, ...], by_row: bool,
                 response_format: Any) -> tuple[str | None, str | None]:
    """``--expect COLUMN[=FIELD]``: checked against the DataFrame (its column must exist) and the answer format."""
    if args.expect is None:
        return None, None
    column, _, field_name = args.expect.partition("=")
    column, field_name = column.strip(), field_name.strip()
    if not column:
        raise ConfigError("--expect COLUMN: give the DataFrame column that holds each row's label, e.g. --expect label.")
    if not by_row:
        raise ConfigError(f"--expect {args.expect}: compares each row's answer with a column of a DataFrame; use "
                          "-i DATAFRAME --each.")
    if args.via == "batch-api":
        raise ConfigError(f"--expect {args.expect}: score a Batch API job's results with job.results().evaluate(...).")
    frame = images[0].frame
    if column not in [str(c) for c in frame.columns]:
        raise ConfigError(f"--expect {column}: the DataFrame has no such column; its columns: "
                          f"{', '.join(map(str, frame.columns))}.")
    if field_name and response_format is None:
        raise ConfigError(f"--expect {column}={field_name}: FIELD is a field of a structured answer; add --schema NAME "
                          "(or --json), or give only --expect COLUMN to compare the answer text.")
    return column, field_name or None


def _response_format(args: argparse.Namespace, namespace: Mapping[str, Any]) -> tuple[Any, str | None]:
    """``--json`` → "json"; ``--schema NAME`` → the pydantic class / JSON Schema dict held by variable NAME."""
    if args.json and args.schema:
        raise ConfigError("Use either --json (any JSON object) or --schema NAME (JSON matching a schema), not both.")
    if args.json:
        return "json", None
    if not args.schema:
        return None, None
    name = variable_name(args.schema)
    if name is None:
        raise ConfigError(f"--schema {args.schema!r}: give the name of a variable holding a pydantic model or a JSON Schema dict.")
    if name not in namespace:
        raise ConfigError(f"--schema {name}: no variable named {name!r}; define a pydantic model class or a JSON Schema dict.")
    from azmm_magic.core.structured import response_spec

    return response_spec(namespace[name], name=name), name
