"""Calls on existing Batch API jobs: list, retrieve, wait (polling with a progress bar), cancel; a job the service
does not know is a :class:`JobError` that says what to do next."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from azmm_magic.core.endpoints import is_loopback_host
from azmm_magic.core.errors import ConfigError
from azmm_magic.features.batch_api.manifest import Manifest, checked_id, manifest_directory, server_text

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.client import VisionClient

DEFAULT_POLL_INTERVAL = 60.0
TERMINAL_STATUSES = ("completed", "failed", "expired", "cancelled")

#: The next step of a :class:`JobError`, in Python-API words (the magic words its own, from ``step`` and ``ids``).
PYTHON_STEPS = {
    "wait": "Wait for it to finish: job.wait().",
    "resubmit": "Submit it again from its manifest: BatchJob(client, [{ids}]).resubmit().",
    "list": "List the jobs with list_jobs(client).",
}


class JobError(ConfigError):
    """A Batch API job that cannot be used as asked. ``what`` says what happened (no frontend's words); ``step``
    is what to do next (``"wait"``, ``"resubmit"`` or ``"list"``) for the jobs ``ids``; the message adds the step
    in Python-API words (:data:`PYTHON_STEPS`), each other frontend words it itself."""

    def __init__(self, what: str, step: str, ids: Sequence[str]) -> None:
        self.what, self.step, self.ids = what, step, tuple(ids)
        quoted = ", ".join(repr(i) for i in self.ids)
        super().__init__(f"{what} {PYTHON_STEPS[step].format(ids=quoted)}")


def progress_bar(total: int | None, desc: str, unit: str, kernel: bool) -> Any:
    """A tqdm bar on stderr (the widget bar in a notebook kernel), its rate averaged over the whole run."""
    if kernel:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, smoothing=0, dynamic_ncols=True)


def is_loopback(endpoint: str | None) -> bool:
    """True when ``endpoint`` is on this machine (the emulator)."""
    return is_loopback_host(urlsplit(endpoint or "").hostname)


def poll_interval(client: VisionClient, interval: float | None) -> float:
    """The polling interval: ``interval`` (default 60 s); below 60 s only against a loopback endpoint (the
    emulator), since the service recommends polling about once a minute."""
    value = DEFAULT_POLL_INTERVAL if interval is None else float(interval)
    if value <= 0:
        raise ConfigError(f"The polling interval must be positive, got {value:g} s.")
    if value < DEFAULT_POLL_INTERVAL and not is_loopback(client.settings.endpoint):
        print(f"Polling every {DEFAULT_POLL_INTERVAL:g} s (the Batch API recommends about once a minute), "
              f"not every {value:g} s.", file=sys.stderr)
        value = DEFAULT_POLL_INTERVAL
    return value


def _count(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


def request_counts(job: Any) -> tuple[int, int, int]:
    """(total, completed, failed) lines of an SDK ``Batch``, from its ``request_counts`` (zeros when it has none,
    and for any value a server sent that is not a count)."""
    counts = getattr(job, "request_counts", None)
    return (_count(getattr(counts, "total", 0)), _count(getattr(counts, "completed", 0)),
            _count(getattr(counts, "failed", 0)))


def expected_lines(job: Any) -> int:
    """The lines of a job: the service's count once it has one, else the count we wrote into its metadata at
    submission (a job still validating says 0). A number from a server, so checked and bounded."""
    total = request_counts(job)[0]
    metadata = getattr(job, "metadata", None)
    items = metadata.get("items") if isinstance(metadata, dict) else None
    written = int(items) if isinstance(items, str) and items.isdigit() and len(items) <= 7 else 0
    return max(total, written)


def call_service(client: VisionClient, fn: Any, *args: Any, job: str | None = None,
                 directory: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with the SDK's errors as ours; a job the service does not know (``job``: its id) is
    a :class:`JobError` that says whether it can be submitted again from its manifest (in ``directory``)."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - one-line errors for the user
        if getattr(e, "status_code", None) == 404:
            raise _not_found(client, e, job, directory) from None
        raise client.map_error(e) from None


def _not_found(client: VisionClient, error: Exception, job: str | None,
               directory: str | os.PathLike[str] | None) -> JobError:
    body = getattr(error, "body", None)
    said = server_text(body.get("message"), 120) if isinstance(body, dict) and body.get("message") else "not found"
    host = client.settings.endpoint_host
    if job is None:
        return JobError(f"No such batch job or file at {host}: {said}.", "list", ())
    lost = (f"No batch job {job} at {host} ({said})."
            + (" The emulator keeps jobs in memory only: a job it had before it last stopped is gone."
               if is_loopback(client.settings.endpoint) else ""))
    if Manifest.load(manifest_directory(directory), job) is not None:
        return JobError(f"{lost} Its manifest says what was submitted.", "resubmit", (job,))
    return JobError(f"{lost} There is no manifest of it here to submit it again from.", "list", ())


def list_jobs(client: VisionClient, limit: int = 20) -> list[Any]:
    """The most recent Batch API jobs (SDK ``Batch`` objects), newest first."""
    page = call_service(client, client.sdk_client().batches.list, limit=limit)
    return list(page.data)


def retrieve(client: VisionClient, batch_id: str, directory: str | os.PathLike[str] | None = None) -> Any:
    """The SDK ``Batch`` of ``batch_id`` (a job the service does not know: a :class:`JobError`)."""
    return call_service(client, client.sdk_client().batches.retrieve, checked_id(batch_id), job=batch_id,
                        directory=directory)


def cancel_jobs(client: VisionClient, ids: Sequence[str]) -> list[Any]:
    """Cancel the jobs ``ids``; returns their SDK ``Batch`` objects."""
    return [call_service(client, client.sdk_client().batches.cancel, checked_id(i), job=i) for i in ids]


def wait_jobs(
    client: VisionClient,
    ids: Sequence[str],
    *,
    interval: float | None = None,
    timeout: float | None = None,
    progress: bool = True,
    kernel: bool = False,
    total: int | None = None,
    directory: str | os.PathLike[str] | None = None,
) -> list[Any]:
    """Poll until every job is completed, failed, expired or cancelled. One progress bar counts the finished lines
    of all the jobs; its total is right from the first poll (``total``, else each job's line count, known at
    submission even while a job validates) and it never goes back."""
    every = poll_interval(client, interval)
    started = time.monotonic()
    bar = _JobsBar(len(ids), kernel) if progress else None
    try:
        while True:
            jobs = [retrieve(client, i, directory) for i in ids]
            states = ", ".join(sorted({server_text(j.status, 20) for j in jobs}))
            if bar is not None:
                bar.show(jobs, total, states)
            if all(j.status in TERMINAL_STATUSES for j in jobs):
                return jobs
            if timeout is not None and time.monotonic() - started + every > timeout:
                raise JobError(f"Batch job(s) {', '.join(ids)} still {states} after {timeout:g} s.", "wait", ids)
            time.sleep(every)
    finally:
        if bar is not None:
            bar.close()


class _JobsBar:
    """The progress bar of :func:`wait_jobs`: finished lines of all the jobs; the total only grows, and so does
    the count."""

    def __init__(self, jobs: int, kernel: bool) -> None:
        self.desc = "batch job" if jobs == 1 else f"{jobs} batch jobs"
        self.kernel = kernel
        self.bar: Any = None
        self.shown = 0

    def show(self, jobs: Sequence[Any], total: int | None, states: str) -> None:
        lines = max(total or 0, sum(expected_lines(j) for j in jobs))
        counts = [request_counts(j) for j in jobs]
        done = min(lines, sum(c[1] + c[2] for c in counts))
        if self.bar is None:
            self.bar = progress_bar(lines or None, self.desc, "line", self.kernel)
        if lines > (self.bar.total or 0):
            self.bar.total = lines
        if done > self.shown:
            self.bar.update(done - self.shown)
            self.shown = done
        self.bar.set_postfix_str(f"{states} · failed {sum(c[2] for c in counts)}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


__all__ = [
    "DEFAULT_POLL_INTERVAL", "PYTHON_STEPS", "TERMINAL_STATUSES", "JobError", "call_service", "cancel_jobs",
    "expected_lines", "is_loopback", "list_jobs", "poll_interval", "progress_bar", "request_counts", "retrieve",
    "wait_jobs",
]
