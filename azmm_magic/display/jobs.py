"""How Batch API jobs look: a submitted :class:`~azmm_magic.features.batch_api.BatchJob` and a table of jobs."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from azmm_magic.display.bundle import table_bundle

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.batch_api import BatchJob

HEADERS = ("job", "status", "created", "done", "failed")


def _created(value: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(value)) if value else ""
    except (TypeError, ValueError, OverflowError, OSError):  # a server's number that is no time
        return ""


def job_list_bundle(jobs: Sequence[Any]) -> dict[str, str]:
    """SDK ``Batch`` objects (a :class:`~azmm_magic.features.batch_api.JobList`) as a table: id, status, created,
    done/total, failed (a sentence when there are none)."""
    from azmm_magic.features.batch_api.jobs import request_counts

    if not jobs:
        return {"text/plain": "No Batch API jobs.", "text/html": "<div>No Batch API jobs.</div>"}
    rows = []
    for j in jobs:
        total, completed, failed = request_counts(j)
        rows.append((str(j.id), str(j.status), _created(j.created_at), f"{completed + failed}/{total}", str(failed)))
    return table_bundle(rows, HEADERS, title="Azure OpenAI Batch API jobs")


def job_bundle(job: BatchJob) -> dict[str, str]:
    """A submitted job: its summary (ids and what to do next)."""
    summary = job.summary()
    return {"text/plain": summary, "text/html": f"<div>{html.escape(summary)}</div>"}


__all__ = ["job_bundle", "job_list_bundle"]
