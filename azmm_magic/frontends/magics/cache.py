"""``%azure_vision cache``: the answer cache of the current settings: stats, clear, list, export, import."""

from __future__ import annotations

import argparse
from typing import Any

from azmm_magic.core.errors import ConfigError
from azmm_magic.frontends.command import LineParser
from azmm_magic.frontends.magics.subcommand import Session, Subcommand


def arguments(parser: LineParser) -> None:
    parser.add_argument("action", nargs="?", default="stats",
                        choices=("stats", "show", "clear", "list", "export", "import"))
    parser.add_argument("file", nargs="?", help="JSON-lines file for export / import")


def run(magics: Session, args: argparse.Namespace) -> Any:
    if args.action in ("export", "import"):
        return _move(magics, args.action, args.file)
    if args.file is not None:
        raise ConfigError(f"%azure_vision cache {args.action} takes no file name; "
                          f"did you mean %azure_vision cache export {args.file} or cache import {args.file}?")
    if args.action == "list":
        return _listing(magics.answer_cache)
    if args.action == "clear":
        n = magics.answer_cache.clear()
        print(f"Cleared {n} cached answer(s).")
        return None
    from azmm_magic.display.bundle import Bundle, table_bundle
    from azmm_magic.store.cache import SQLiteCache

    store = magics.answer_cache
    s = store.stats()
    rows = [("kind", s.kind), ("entries", str(s.entries)), ("hits", str(s.hits)), ("misses", str(s.misses))]
    if isinstance(store, SQLiteCache):
        rows.append(("file", str(store.path)))
    return Bundle(table_bundle(rows, ("cache", "value"), title="azmm_magic answer cache"))


def _listing(store: Any) -> Any:
    """``cache list``: when, deployment, endpoint, prompt and key of each cached answer."""
    import datetime

    from azmm_magic.display.bundle import Bundle, table_bundle
    from azmm_magic.store.cache import cache_rows

    rows = []
    for row in cache_rows(store):
        when = (datetime.datetime.fromtimestamp(row["created"]).isoformat(sep=" ", timespec="seconds")
                if row["created"] else "")
        prompt = " ".join(str(row["prompt"]).split())
        rows.append((when, row["deployment"], row["endpoint"], prompt[:60] + ("…" if len(prompt) > 60 else ""),
                     row["key"][:12]))
    title = f"{len(rows)} cached answer(s) ({store.kind}{', ' + str(store.path) if hasattr(store, 'path') else ''})"
    return Bundle(table_bundle(rows, ("stored", "deployment", "endpoint", "prompt", "key"), title=title))


def _move(magics: Session, action: str, file: str | None) -> None:
    """``cache export FILE`` / ``cache import FILE`` (JSON lines: record on Azure, replay anywhere)."""
    from azmm_magic.store.cache import export_jsonl, import_jsonl

    if file is None:
        raise ConfigError(f"%azure_vision cache {action}: give one file name, e.g. %azure_vision cache {action} answers.jsonl.")
    store = magics.answer_cache
    if action == "export":
        n = export_jsonl(store, file)
        print(f"Exported {n} cached answer(s) to {file}.")
        return None
    report = import_jsonl(store, file)
    print(f"{report} ({store.kind} cache)")
    return None


CACHE = Subcommand(
    "cache", ("cache [clear]", "cache list", "cache export FILE", "cache import FILE"),
    "the answer cache: hits / misses / entries, clear it, list its answers, or move them as JSON lines "
    "(record on Azure, replay anywhere)",
    run, arguments,
)
