"""The handles: :func:`submit_batch` returns a :class:`BatchJob` (status, wait, results, cancel, resubmit);
:class:`JobList` is a list of jobs that shows itself as a table."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azmm_magic.core import views
from azmm_magic.core.errors import AzureVisionError, ConfigError
from azmm_magic.features.batch import BatchResult
from azmm_magic.features.batch_api.jobs import JobError, cancel_jobs, retrieve, wait_jobs
from azmm_magic.features.batch_api.manifest import Manifest, checked_id, manifest_directory, server_text
from azmm_magic.features.batch_api.results import fetch_results
from azmm_magic.features.batch_api.submit import MAX_FILE_BYTES, MAX_FILE_LINES, Submission

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.client import VisionClient

#: the request options a manifest keeps and a resubmission passes on
RESUBMITTED_OPTIONS = ("detail", "max_tokens", "temperature", "system")


def submit_batch(
    client: VisionClient,
    prompt: str,
    images: Iterable[object] | object,
    *,
    deployment: str | None = None,
    manifest_dir: str | os.PathLike[str] | None = None,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_file_lines: int = MAX_FILE_LINES,
    progress: bool = True,
    kernel: bool = False,
    workers: int | None = None,
    **options: Any,
) -> BatchJob:
    """See :meth:`VisionClient.submit_batch`. Images are prepared on every core (threads, and worker processes for
    big image files), written in input order; ``progress`` shows a bar while they are prepared and uploaded
    (``kernel``: the notebook's widget bar)."""
    submission = Submission(client, prompt, images, deployment=deployment, manifest_dir=manifest_dir,
                            max_file_bytes=max_file_bytes, max_file_lines=max_file_lines, options=options)
    try:
        submission.run(progress=progress, kernel=kernel, workers=workers)
    except KeyboardInterrupt:
        if submission.jobs:  # jobs already created run (and bill): keep their ids
            raise SubmitInterrupted(BatchJob(client, submission.jobs, directory=submission.directory,
                                             total=submission.total)) from None
        raise
    except AzureVisionError as e:
        if submission.jobs:
            e.add_note(f"Batch API job(s) already submitted: {' '.join(submission.jobs)} (%azure_vision jobs lists "
                       "them).")
        raise
    return BatchJob(client, submission.jobs, directory=submission.directory, total=submission.total)


def resubmit_jobs(client: VisionClient, ids: Sequence[str], *, directory: str | os.PathLike[str] | None = None,
                  progress: bool = True, kernel: bool = False) -> BatchJob:
    """Submit again what the manifests of jobs ``ids`` say was submitted (a job the service lost: the emulator
    forgets its jobs when it stops): the same prompt, deployment and options, the images read again from their
    files, in the same order. An image that was not a file (in memory, a URL) cannot be read again: one line."""
    where = manifest_directory(directory)
    manifests = []
    for batch_id in ids:
        manifest = Manifest.load(where, checked_id(batch_id))
        if manifest is None:
            raise JobError(f"There is no manifest of batch {batch_id} in {where}.", "list", ())
        manifests.append(manifest)
    entries = sorted((int(e["index"]), e) for m in manifests for e in [*m.items, *m.local_failures])
    paths = [e.get("path") for _, e in entries]
    missing = [str(e.get("source")) for (_, e), p in zip(entries, paths, strict=True) if not p or not os.path.isfile(p)]
    if missing:
        raise ConfigError(f"{len(missing)} of the {len(entries)} images cannot be read again (not a file, or gone), "
                          f"e.g. {server_text(missing[0], 80)}: submit them anew instead.")
    first = manifests[0]
    options = {k: v for k, v in first.options.items() if k in RESUBMITTED_OPTIONS}
    return submit_batch(client, first.prompt, paths, deployment=first.deployment or None, manifest_dir=where,
                        progress=progress, kernel=kernel, **options)


class SubmitInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`submit_batch` after some jobs were created: ``job`` is the :class:`BatchJob` of those
    (they run and bill; ``job.cancel()`` stops them, ``job.wait()`` / ``job.results()`` collect them)."""

    def __init__(self, job: BatchJob) -> None:
        super().__init__(f"Interrupted after submitting {len(job.ids)} Batch API job(s): {' '.join(job.ids)}")
        self.job = job


class BatchJob:
    """A handle on submitted Batch API job(s) (one per input file). ``ids``: the batch ids.

    ``status()`` (SDK ``Batch`` objects), ``wait(interval=60, timeout=None)``, ``results()`` (a ``BatchResult``),
    ``cancel()``. Rebuild a handle later with ``BatchJob(client, ["batch_..."])``.
    """

    def __init__(self, client: VisionClient, ids: Sequence[str], *, directory: Path | None = None,
                 total: int | None = None, follow: Callable[[], VisionClient | None] | None = None) -> None:
        self._client = client
        self.ids = [checked_id(i) for i in ids]  # an id goes into URLs and a manifest's file name
        self.directory = directory or manifest_directory()
        self.total = total
        self.follow = follow  # the client of a session that may move (its emulator started again elsewhere)
        self.next_step = ""  # what to do next in the words of the frontend that made it ("": Python's)

    @property
    def client(self) -> VisionClient:
        """The client the jobs are asked about: the session's current one when this handle follows a session."""
        current = self.follow() if self.follow is not None else None
        return current if current is not None else self._client

    def status(self) -> list[Any]:
        return [retrieve(self.client, i, self.directory) for i in self.ids]

    def wait(self, *, interval: float | None = None, timeout: float | None = None, progress: bool = True,
             kernel: bool = False) -> list[Any]:
        """Poll until every job is finished (``interval`` default 60 s); returns the final ``Batch`` objects."""
        return wait_jobs(self.client, self.ids, interval=interval, timeout=timeout, progress=progress,
                         kernel=kernel, total=self.total, directory=self.directory)

    def results(self) -> BatchResult:
        """Download, match by ``custom_id``, fill the cache, return the per-image :class:`BatchResult`."""
        return fetch_results(self.client, self.ids, directory=self.directory)

    def cancel(self) -> list[Any]:
        return cancel_jobs(self.client, self.ids)

    def resubmit(self, *, progress: bool = True) -> BatchJob:
        """Submit these jobs again from their manifests (a job the service lost; see :func:`resubmit_jobs`);
        returns the new handle."""
        job = resubmit_jobs(self.client, self.ids, directory=self.directory, progress=progress)
        job.follow = self.follow
        return job

    def summary(self) -> str:
        n = f"{self.total} image(s) in " if self.total is not None else ""
        ids = " ".join(self.ids)
        return f"Submitted {n}{len(self.ids)} Batch API job(s): {ids}. Next: {self.next_step or '.wait(), then .results()'}."

    def __repr__(self) -> str:
        return f"BatchJob({self.ids!r})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(views.plain(self))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)


class JobList(list[Any]):
    """SDK ``Batch`` objects that render as a table (id, status, created, done, failed) in a notebook and a
    terminal (through :mod:`azmm_magic.core.views`); a sentence when there are none."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)

    def __repr__(self) -> str:
        return views.plain(self)


__all__ = ["BatchJob", "JobList", "RESUBMITTED_OPTIONS", "SubmitInterrupted", "resubmit_jobs", "submit_batch"]
