"""``%azure_vision jobs``: Azure OpenAI Batch API jobs (from ``--via batch-api``): list, poll, fetch results,
submit again a job the service lost."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from IPython.core.error import UsageError

from azmm_magic.core.errors import ConfigError
from azmm_magic.display.untrusted import label
from azmm_magic.frontends.command import LineParser
from azmm_magic.frontends.magics.subcommand import Session, Subcommand

#: The next step of a Batch API job error, in the magic's words (``{ids}``: the job ids).
MAGIC_STEPS = {
    "wait": "%azure_vision jobs wait {ids}",
    "resubmit": "%azure_vision jobs resubmit {ids}",
    "list": "%azure_vision jobs",
}


def arguments(parser: LineParser) -> None:
    parser.add_argument("action", nargs="?", default="list",
                        choices=("list", "wait", "results", "cancel", "status", "resubmit"))
    parser.add_argument("ids", nargs="*", metavar="ID", help="job ids, or $name of a job handle, an id or a list of ids")
    parser.add_argument("--interval", type=float, default=None, metavar="S", help="seconds between polls (wait)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S", help="give up waiting after S seconds")
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="most jobs listed")
    parser.add_argument("--dir", default=None, help="where the job manifests are (results, resubmit)")


def expand_ids(words: Sequence[str], namespace: Mapping[str, Any]) -> list[str]:
    """The job ids of the words: ``$name`` (or ``{name}``) is the notebook variable ``name``: a job handle, an id,
    ids separated by spaces or a list of them; other words are ids."""
    ids: list[str] = []
    for word in words:
        name = word[1:] if word.startswith("$") else word[1:-1] if word.startswith("{") and word.endswith("}") else None
        if name is None:
            ids.append(word)
            continue
        if name not in namespace:
            raise ConfigError(f"%azure_vision jobs: there is no variable {name!r} in this notebook (give the job ids, "
                              "or $name of a job handle or of a list of ids).")
        value = namespace[name]
        value = getattr(value, "ids", value)  # a job handle
        if isinstance(value, str):
            ids += value.split()
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            ids += [w for v in value for w in v.split()]
        else:
            raise ConfigError(f"%azure_vision jobs: ${name} is a {type(value).__name__}, not a job handle, an id or a "
                              "list of ids.")
    return ids


def magic_words(job: Any) -> str:
    """What to do next with a submitted job, in the magic's words."""
    ids = " ".join(job.ids)
    return f"%azure_vision jobs wait {ids}, then %azure_vision jobs results {ids}"


def follow_session(magics: Any, client: Any) -> Callable[[], Any]:
    """For a job handle made in this session: the session's client for the job's settings, on the endpoint of the
    session's emulator when the job was sent to it (started again, it may be on another port). ``magics``: the
    magic's session (its ``emulator`` and ``client``)."""
    emulator = magics.emulator
    url = emulator.url if emulator is not None else None

    def current() -> Any:
        now = magics.emulator
        if url is None or client.settings.endpoint != url or now is None or now.url == url:
            return None
        return magics.client(client.settings.with_overrides(endpoint=now.url))

    return current


def run(magics: Session, args: argparse.Namespace) -> Any:
    from azmm_magic.features import batch_api

    try:
        return _run(magics, args)
    except batch_api.JobError as e:
        step = MAGIC_STEPS[e.step].format(ids=" ".join(e.ids))
        raise UsageError(label(f"{e.what} In this notebook: {step}")) from e


def _run(magics: Session, args: argparse.Namespace) -> Any:
    from azmm_magic.features import batch_api

    client = magics.client()
    if args.action == "list":
        jobs = batch_api.list_jobs(client, args.limit)
        if not jobs:
            print(f"No Batch API jobs at {client.settings.endpoint_host}. Submit one with a %%azure_vision cell: "
                  "-i IMAGES --each --via batch-api.")
            return None
        return batch_api.JobList(jobs)
    ids = expand_ids(args.ids, magics.shell.user_ns)
    if not ids:
        raise ConfigError(f"%azure_vision jobs {args.action}: give the job id(s), e.g. "
                          f"%azure_vision jobs {args.action} batch_abc123 or $job (list them with %azure_vision jobs).")
    if args.action == "status":
        return batch_api.JobList([batch_api.retrieve(client, i, args.dir) for i in ids])
    if args.action == "cancel":
        return batch_api.JobList(batch_api.cancel_jobs(client, ids))
    if args.action == "wait":
        jobs = batch_api.wait_jobs(client, ids, interval=args.interval, timeout=args.timeout,
                                   kernel=magics.in_kernel, directory=args.dir)
        return batch_api.JobList(jobs)
    if args.action == "resubmit":
        job = batch_api.resubmit_jobs(client, ids, directory=args.dir, kernel=magics.in_kernel)
        job.follow = follow_session(magics, client)
        job.next_step = magic_words(job)
        return job
    return batch_api.fetch_results(client, ids, directory=args.dir)


JOBS = Subcommand(
    "jobs", ("jobs [wait|results|cancel|status|resubmit ID...|$job] [--interval S]",),
    "Azure OpenAI Batch API jobs (from --via batch-api): list, poll, fetch results, submit again a job the service "
    "lost (from its manifest)", run, arguments,
)
