"""Scale-out through the Azure OpenAI Batch API: a Global Batch deployment, 24 h target, half the price.

``VisionClient.submit_batch(prompt, images)`` (and ``%%azure_vision -i ... --via batch-api``):

1. writes the JSONL input, one line per image: ``{"custom_id", "method": "POST", "url": "/chat/completions",
   "body": {"model": <batch deployment>, "messages": [...], ...}}`` (the same deployment on every line; images
   prepared in parallel and written in input order; a file is closed and a new one started before 200 MB or 100,000 lines);
2. uploads each file with ``client.files.create(file=..., purpose="batch")`` and creates a job with
   ``client.batches.create(input_file_id=..., endpoint="/chat/completions", completion_window="24h")``;
3. saves a small manifest per job (custom_id → input position, source, cache key; no image data, no secret)
   under ``$AZMM_BATCH_DIR`` or ``~/.cache/azmm_magic/batches``, and returns a :class:`BatchJob` handle.

``BatchJob.wait()`` polls (by default once a minute, as the service recommends) with a progress bar;
``BatchJob.results()`` downloads the output and error files, matches lines by ``custom_id`` (they come back in
any order), fills the answer cache and returns the same :class:`~azmm_magic.features.batch.BatchResult` as an
interactive batch. Items that failed, expired or were cancelled are :class:`~azmm_magic.features.batch.BatchFailure`.
The SDK builds the URLs: ``{endpoint}/openai/files?api-version=`` and ``/openai/batches`` on the classic style,
``.../openai/v1/files`` on the v1 style.

The package's modules: ``manifest`` (manifests, server ids), ``submit`` (JSONL files, upload, job creation),
``jobs`` (list, retrieve, wait, cancel; :class:`JobError`), ``results`` (output files to a ``BatchResult``) and
``handle`` (:func:`submit_batch`, :class:`BatchJob`, :class:`JobList`).
"""

from __future__ import annotations

from azmm_magic.features.batch_api.handle import (
    RESUBMITTED_OPTIONS,
    BatchJob,
    JobList,
    SubmitInterrupted,
    resubmit_jobs,
    submit_batch,
)
from azmm_magic.features.batch_api.jobs import (
    DEFAULT_POLL_INTERVAL,
    PYTHON_STEPS,
    TERMINAL_STATUSES,
    JobError,
    cancel_jobs,
    list_jobs,
    poll_interval,
    progress_bar,
    request_counts,
    retrieve,
    wait_jobs,
)
from azmm_magic.features.batch_api.manifest import Manifest, checked_id, manifest_directory, manifest_path
from azmm_magic.features.batch_api.results import fetch_results
from azmm_magic.features.batch_api.submit import CHAT_URL, FILE_PROCESSING_TIMEOUT, MAX_FILE_BYTES, MAX_FILE_LINES

__all__ = [
    "CHAT_URL", "DEFAULT_POLL_INTERVAL", "FILE_PROCESSING_TIMEOUT", "MAX_FILE_BYTES", "MAX_FILE_LINES", "PYTHON_STEPS",
    "RESUBMITTED_OPTIONS", "TERMINAL_STATUSES", "BatchJob", "JobError", "JobList", "Manifest", "SubmitInterrupted",
    "cancel_jobs", "checked_id", "fetch_results", "list_jobs", "manifest_directory", "manifest_path", "poll_interval",
    "progress_bar", "request_counts", "resubmit_jobs", "retrieve", "submit_batch", "wait_jobs",
]
