"""``%azure_vision jobs``: Azure OpenAI Batch API jobs (from ``--via batch-api``): list, poll, fetch results."""

from __future__ import annotations

import argparse
from typing import Any

from azmm_magic.core.errors import ConfigError
from azmm_magic.frontends.command import LineParser
from azmm_magic.frontends.magics.subcommand import Session, Subcommand


def arguments(parser: LineParser) -> None:
    parser.add_argument("action", nargs="?", default="list", choices=("list", "wait", "results", "cancel", "status"))
    parser.add_argument("ids", nargs="*", metavar="ID")
    parser.add_argument("--interval", type=float, default=None, metavar="S", help="seconds between polls (wait)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S", help="give up waiting after S seconds")
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="most jobs listed")
    parser.add_argument("--dir", default=None, help="where the job manifests are (results)")


def run(magics: Session, args: argparse.Namespace) -> Any:
    from azmm_magic.features import batch_api

    client = magics.client()
    if args.action == "list":
        return batch_api.jobs_table(batch_api.list_jobs(client, args.limit))
    if not args.ids:
        raise ConfigError(f"%azure_vision jobs {args.action}: give the job id(s), e.g. "
                          f"%azure_vision jobs {args.action} batch_abc123 (list them with %azure_vision jobs).")
    if args.action == "status":
        return batch_api.jobs_table([batch_api.retrieve(client, i) for i in args.ids])
    if args.action == "cancel":
        return batch_api.jobs_table(batch_api.cancel_jobs(client, args.ids))
    if args.action == "wait":
        jobs = batch_api.wait_jobs(client, args.ids, interval=args.interval, timeout=args.timeout,
                                   kernel=magics.in_kernel)
        return batch_api.jobs_table(jobs)
    return batch_api.fetch_results(client, args.ids, directory=args.dir)


JOBS = Subcommand(
    "jobs", ("jobs [wait|results|cancel|status ID...] [--interval S]",),
    "Azure OpenAI Batch API jobs (from --via batch-api): list, poll, fetch results", run, arguments,
)
