"""Scale-out through the Azure OpenAI Batch API: a Global Batch deployment, 24 h target, half the price.

``VisionClient.submit_batch(prompt, images)`` (and ``%%azure_vision -i ... --via batch-api``):

1. writes the JSONL input, one line per image: ``{"custom_id", "method": "POST", "url": "/chat/completions",
   "body": {"model": <batch deployment>, "messages": [...], ...}}`` (the same deployment on every line; images
   prepared one at a time; a file is closed and a new one started before 200 MB or 100,000 lines);
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
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from azmm_magic.core import views
from azmm_magic.core.errors import AzureVisionError, ConfigError, ServiceError
from azmm_magic.core.files import replaced_atomically
from azmm_magic.core.images import image_options, prepare_leaf
from azmm_magic.core.request import VisionRequest
from azmm_magic.core.settings import is_loopback_host
from azmm_magic.core.urls import redact_urls
from azmm_magic.features.batch import BatchResult, leaves_and_labels
from azmm_magic.features.outcomes import BatchFailure, Outcome, failure_of
from azmm_magic.service.errors import content_filter_error
from azmm_magic.service.send import result_from_body

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.client import VisionClient

MAX_FILE_BYTES = 200 * 1000 * 1000
MAX_FILE_LINES = 100_000
DEFAULT_POLL_INTERVAL = 60.0
TERMINAL_STATUSES = ("completed", "failed", "expired", "cancelled")
CHAT_URL = "/chat/completions"
FILE_PROCESSING_TIMEOUT = 600.0  # seconds to wait for an uploaded input file to be processed


# ----- server ids ------------------------------------------------------------------------------------------------
_SERVER_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def checked_id(value: object, what: str = "batch id") -> str:
    """A server-chosen id (a batch id, a file id, a ``custom_id``) checked before any use as a file name or a
    label: 1 to 128 letters, digits, ``_`` or ``-``; anything else is one clear line, never a path."""
    text = value if isinstance(value, str) else ""
    if not _SERVER_ID.fullmatch(text):
        shown = repr(value)[:60]
        raise ServiceError(f"Unusable {what} {shown}: an id is 1-128 letters, digits, _ or - (ids come from the "
                           "service; this one is never used as a file name).")
    return text


def manifest_path(directory: Path, batch_id: str) -> Path:
    """``directory/<batch_id>.json`` for a checked id, and never outside ``directory``."""
    path = directory / f"{checked_id(batch_id)}.json"
    if path.resolve().parent != directory.resolve():
        raise ServiceError(f"The manifest of batch {batch_id} would not be inside {directory}.")
    return path


def _said(value: object, limit: int) -> str:
    """A server's text as a short single line of printable characters, URL query strings redacted."""
    text = redact_urls(" ".join(str(value).split()))
    return "".join(ch for ch in text if ch.isprintable())[:limit]


# ----- manifests -----------------------------------------------------------------------------------------------
def manifest_directory(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where job manifests live: ``explicit`` > ``$AZMM_BATCH_DIR`` > ``$XDG_CACHE_HOME/azmm_magic/batches``."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("AZMM_BATCH_DIR"):
        return Path(os.environ["AZMM_BATCH_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "azmm_magic" / "batches"


@dataclass
class Manifest:
    """What is needed to turn a job's output back into per-image results (no image data, no secret)."""

    prompt: str
    deployment: str
    endpoint_host: str
    input_file_id: str = ""
    batch_id: str = ""
    total: int = 0
    created: float = field(default_factory=time.time)
    items: list[dict[str, Any]] = field(default_factory=list)  # custom_id, index, source, key, path (a file's)
    local_failures: list[dict[str, Any]] = field(default_factory=list)  # index, source, error, kind, path
    options: dict[str, Any] = field(default_factory=dict)  # the request options to submit again with (plain values)

    def save(self, directory: Path) -> Path:
        """Write the manifest (0600, in a 0700 folder) as ``<batch id>.json``; the id is checked first, and no
        temp file is left on failure."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if stat.S_IMODE(directory.stat().st_mode) & 0o077:
            directory.chmod(0o700)
        path = manifest_path(directory, self.batch_id)
        with replaced_atomically(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(asdict(self), ensure_ascii=False))
        return path

    @classmethod
    def load(cls, directory: Path, batch_id: str) -> Manifest | None:
        """The manifest saved for ``batch_id`` (None when there is none; an unreadable one is one clear line)."""
        path = manifest_path(directory, batch_id)
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as e:
            raise ConfigError(f"The manifest {path} cannot be read ({type(e).__name__}); delete it to fetch the "
                              "results without it (items are then named by custom_id).") from None


# ----- submitting ------------------------------------------------------------------------------------------------
class _Chunk:
    """One JSONL input file being written (spooled to disk past 16 MB)."""

    def __init__(self, manifest: Manifest) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)
        self.manifest = manifest
        self.lines = 0
        self.bytes = 0

    def fits(self, size: int, max_bytes: int, max_lines: int) -> bool:
        return self.lines + 1 <= max_lines and self.bytes + size <= max_bytes

    def write(self, line: bytes, item: dict[str, Any]) -> None:
        self.file.write(line)
        self.lines += 1
        self.bytes += len(line)
        self.manifest.items.append(item)


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
    from azmm_magic.features.batch import BatchItem, is_big_item, preparation_pools

    if max_file_bytes < 1 or max_file_lines < 1:
        raise ConfigError(f"max_file_bytes and max_file_lines must be positive, got {max_file_bytes} and "
                          f"{max_file_lines}.")
    directory = manifest_directory(manifest_dir)
    options = {**options, "deployment": deployment}
    client.prepare(prompt, (), **options)  # prompt and option checks
    settings = client.settings.with_overrides(deployment=deployment, detail=options.get("detail")).require()
    leaves, labels = leaves_and_labels(images)
    if not leaves:
        raise ConfigError("No images to send: give at least one image (a path, glob, URL or object).")
    opts = image_options(settings.detail, settings.token_rule, settings.inline_urls, settings.max_image_bytes)
    plain = {k: v for k, v in options.items() if k != "deployment" and (v is None or type(v) in (str, int, float, bool))}
    sdk = client.sdk_client()
    jobs: list[str] = []
    manifests: list[Manifest] = []
    bar = progress_bar(len(leaves), "preparing", "img", kernel) if progress else None

    def new_chunk() -> _Chunk:
        return _Chunk(Manifest(prompt, settings.deployment or "", settings.endpoint_host, options=plain))

    def flush(chunk: _Chunk) -> None:
        if chunk.lines == 0:
            if chunk.manifest.local_failures and manifests:  # nothing to send: attach to the previous job
                manifests[-1].local_failures += chunk.manifest.local_failures
                manifests[-1].save(directory)
            elif chunk.manifest.local_failures:
                raise ConfigError(
                    f"None of the {len(leaves)} images could be prepared; the first error: "
                    f"{chunk.manifest.local_failures[0]['error']}"
                )
            return
        if bar is not None:
            bar.set_postfix_str(f"uploading file {len(jobs) + 1} ({chunk.lines:,} lines)")
        chunk.file.seek(0)
        try:
            uploaded = sdk.files.create(file=(f"azmm-batch-{len(jobs) + 1}.jsonl", chunk.file, "application/jsonl"),
                                        purpose="batch")
            _wait_processed(sdk, uploaded)
            job = sdk.batches.create(
                input_file_id=uploaded.id,
                endpoint=CHAT_URL,
                completion_window="24h",
                metadata={"created_by": "azmm_magic", "items": str(chunk.lines)},
            )
        except Exception as e:  # noqa: BLE001 - mapped to our one-line errors
            raise client.map_error(e) from None
        finally:
            chunk.file.close()
        chunk.manifest.input_file_id = checked_id(uploaded.id, "file id")
        chunk.manifest.batch_id = checked_id(job.id)
        chunk.manifest.total = chunk.lines + len(chunk.manifest.local_failures)
        chunk.manifest.save(directory)
        jobs.append(job.id)
        manifests.append(chunk.manifest)
        if bar is not None:
            bar.set_postfix_str(f"{len(jobs)} job(s) created")

    def line_for(index: int, leaf: Any, processes: Any) -> tuple[bytes, str | None]:
        image = processes.submit(prepare_leaf, leaf, opts).result() if processes is not None else prepare_leaf(leaf, opts)
        request = client.prepare(prompt, [image], **options)
        line = json.dumps({"custom_id": f"item-{index:06d}", "method": "POST", "url": CHAT_URL, "body": request.body()},
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        if len(line) > max_file_bytes:
            raise ConfigError(f"this image's request is {len(line):,} bytes, over the {max_file_bytes:,}-byte "
                              "batch file limit; use a lower detail", settings=("detail",))
        return line, client.key_for(request)

    items: list[BatchItem | None] = [BatchItem((leaf,), label) for leaf, label in zip(leaves, labels, strict=False)]
    threads, processes, count = preparation_pools([i for i in items if i is not None], workers)
    pending: deque[tuple[int, Any]] = deque()
    chunk = new_chunk()
    try:
        for index in range(len(items) + 1):
            if index < len(items):  # up to 2 × workers images prepared ahead of the one written
                item, leaves[index], items[index] = items[index], None, None  # nothing kept once written
                assert item is not None
                big = processes if processes is not None and is_big_item(item) else None
                pending.append((index, threads.submit(line_for, index, item.leaves[0], big)))
                if len(pending) < 2 * count:
                    continue
            while pending and (index == len(items) or len(pending) >= 2 * count):
                done, future = pending.popleft()
                label, path = labels[done], _file_path(labels[done])
                try:
                    line, key = future.result()
                except AzureVisionError as e:
                    chunk.manifest.local_failures.append({"index": done, "source": label, "error": redact_urls(str(e)),
                                                          "kind": type(e).__name__, "path": path})
                else:
                    if not chunk.fits(len(line), max_file_bytes, max_file_lines):
                        flush(chunk)
                        chunk = new_chunk()
                    chunk.write(line, {"custom_id": f"item-{done:06d}", "index": done, "source": label, "key": key,
                                       "path": path})
                    del line
                if bar is not None:
                    bar.update(1)
        flush(chunk)
    except KeyboardInterrupt:
        if jobs:  # jobs already created run (and bill): keep their ids
            raise SubmitInterrupted(BatchJob(client, jobs, directory=directory, total=len(labels))) from None
        raise
    except AzureVisionError as e:
        if jobs:
            e.add_note(f"Batch API job(s) already submitted: {' '.join(jobs)} (%azure_vision jobs lists them).")
        raise
    finally:
        for future in (f for _, f in pending):
            future.cancel()
        threads.shutdown(wait=False, cancel_futures=True)
        if processes is not None:
            processes.shutdown(wait=False, cancel_futures=True)
        if bar is not None:
            bar.close()
    return BatchJob(client, jobs, directory=directory, total=len(labels))


class SubmitInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`submit_batch` after some jobs were created: ``job`` is the :class:`BatchJob` of those
    (they run and bill; ``job.cancel()`` stops them, ``job.wait()`` / ``job.results()`` collect them)."""

    def __init__(self, job: BatchJob) -> None:
        super().__init__(f"Interrupted after submitting {len(job.ids)} Batch API job(s): {' '.join(job.ids)}")
        self.job = job


def _file_path(label: str) -> str | None:
    """The absolute path of an image given as a file (so that a lost job can be submitted again), else None."""
    if label.startswith(("<", "http://", "https://", "data:")) or not os.path.isfile(label):
        return None
    return os.path.abspath(label)


def progress_bar(total: int | None, desc: str, unit: str, kernel: bool) -> Any:
    """A tqdm bar on stderr (the widget bar in a notebook kernel), its rate averaged over the whole run."""
    if kernel:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, smoothing=0, dynamic_ncols=True)


def _wait_processed(sdk: Any, uploaded: Any, timeout: float = FILE_PROCESSING_TIMEOUT) -> None:
    """Wait until an uploaded input file is ``processed`` (Azure validates it first; a job on a ``pending`` file
    may fail), polling every half second; a file the service rejects is one clear line."""
    deadline = time.monotonic() + timeout
    status = getattr(uploaded, "status", None)
    while status in ("pending", "uploaded", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        uploaded = sdk.files.retrieve(uploaded.id)
        status = getattr(uploaded, "status", None)
    if status == "error":
        detail = getattr(uploaded, "status_details", None) or "no detail given"
        raise ConfigError(f"The service rejected the batch input file {uploaded.id}: {detail}")


# ----- jobs ------------------------------------------------------------------------------------------------------
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


def _is_loopback(endpoint: str | None) -> bool:
    return is_loopback_host(urlsplit(endpoint or "").hostname)


def poll_interval(client: VisionClient, interval: float | None) -> float:
    """The polling interval: ``interval`` (default 60 s); below 60 s only against a loopback endpoint (the
    emulator), since the service recommends polling about once a minute."""
    value = DEFAULT_POLL_INTERVAL if interval is None else float(interval)
    if value <= 0:
        raise ConfigError(f"The polling interval must be positive, got {value:g} s.")
    if value < DEFAULT_POLL_INTERVAL and not _is_loopback(client.settings.endpoint):
        print(f"Polling every {DEFAULT_POLL_INTERVAL:g} s (the Batch API recommends about once a minute), "
              f"not every {value:g} s.", file=sys.stderr)
        value = DEFAULT_POLL_INTERVAL
    return value


def _counts(job: Any) -> tuple[int, int, int]:
    rc = getattr(job, "request_counts", None)
    if rc is None:
        return 0, 0, 0
    return int(rc.total or 0), int(rc.completed or 0), int(rc.failed or 0)


def _call(client: VisionClient, fn: Any, *args: Any, job: str | None = None,
          directory: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with the SDK's errors as ours; a job the service does not know (``job``: its id) is
    a :class:`JobError` that says whether it can be submitted again from its manifest (in ``directory``)."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - one-line errors for the user
        if getattr(e, "status_code", None) == 404:
            body = getattr(e, "body", None)
            said = _said(body.get("message"), 120) if isinstance(body, dict) and body.get("message") else "not found"
            host = client.settings.endpoint_host
            if job is None:
                raise JobError(f"No such batch job or file at {host}: {said}.", "list", ()) from None
            lost = (f"No batch job {job} at {host} ({said})."
                    + (" The emulator keeps jobs in memory only: a job it had before it last stopped is gone."
                       if _is_loopback(client.settings.endpoint) else ""))
            if Manifest.load(manifest_directory(directory), job) is not None:
                raise JobError(f"{lost} Its manifest says what was submitted.", "resubmit", (job,)) from None
            raise JobError(f"{lost} There is no manifest of it here to submit it again from.", "list", ()) from None
        raise client.map_error(e) from None


def list_jobs(client: VisionClient, limit: int = 20) -> list[Any]:
    """The most recent Batch API jobs (SDK ``Batch`` objects), newest first."""
    page = _call(client, client.sdk_client().batches.list, limit=limit)
    return list(page.data)


def retrieve(client: VisionClient, batch_id: str, directory: str | os.PathLike[str] | None = None) -> Any:
    """The SDK ``Batch`` of ``batch_id`` (a job the service does not know: a :class:`JobError`)."""
    return _call(client, client.sdk_client().batches.retrieve, checked_id(batch_id), job=batch_id,
                 directory=directory)


def _expected_lines(job: Any) -> int:
    """The lines of a job: the service's count once it has one, else the count we wrote into its metadata at
    submission (a job still validating says 0). A number from a server, so checked and bounded."""
    total = _counts(job)[0]
    metadata = getattr(job, "metadata", None)
    items = metadata.get("items") if isinstance(metadata, dict) else None
    written = int(items) if isinstance(items, str) and items.isdigit() and len(items) <= 7 else 0
    return max(total, written)


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
    bar = None
    shown = 0
    try:
        while True:
            jobs = [retrieve(client, i, directory) for i in ids]
            lines = max(total or 0, sum(_expected_lines(j) for j in jobs))
            done = min(lines, sum(_counts(j)[1] + _counts(j)[2] for j in jobs))
            failed = sum(_counts(j)[2] for j in jobs)
            states = ", ".join(sorted({_said(j.status, 20) for j in jobs}))
            if progress:
                if bar is None:
                    bar = progress_bar(lines or None, "batch job" if len(ids) == 1 else f"{len(ids)} batch jobs",
                                       "line", kernel)
                if lines > (bar.total or 0):
                    bar.total = lines
                if done > shown:
                    bar.update(done - shown)
                    shown = done
                bar.set_postfix_str(f"{states} · failed {failed}")
            if all(j.status in TERMINAL_STATUSES for j in jobs):
                return jobs
            if timeout is not None and time.monotonic() - started + every > timeout:
                raise JobError(f"Batch job(s) {', '.join(ids)} still {states} after {timeout:g} s.", "wait", ids)
            time.sleep(every)
    finally:
        if bar is not None:
            bar.close()


def cancel_jobs(client: VisionClient, ids: Sequence[str]) -> list[Any]:
    return [_call(client, client.sdk_client().batches.cancel, checked_id(i), job=i) for i in ids]


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
                          f"e.g. {_said(missing[0], 80)}: submit them anew instead.")
    first = manifests[0]
    options = {k: v for k, v in first.options.items() if k in _RESUBMITTED_OPTIONS}
    return submit_batch(client, first.prompt, paths, deployment=first.deployment or None, manifest_dir=where,
                        progress=progress, kernel=kernel, **options)


#: the request options a manifest keeps and a resubmission passes on
_RESUBMITTED_OPTIONS = ("detail", "max_tokens", "temperature", "system")


def _download(client: VisionClient, file_id: str | None) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``custom_id -> line`` of an output or error file, and what was said of the lines that were skipped (not
    a JSON object, or no usable ``custom_id``: no item to give them to; that item fails as "no line for it")."""
    skipped: list[str] = []
    if not file_id:
        return {}, skipped
    content = _call(client, client.sdk_client().files.content, checked_id(file_id, "file id"))
    lines: dict[str, dict[str, Any]] = {}
    for number, raw in enumerate(content.content.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        custom_id = line.get("custom_id") if isinstance(line, dict) else None
        if isinstance(custom_id, str) and _SERVER_ID.fullmatch(custom_id):
            lines[custom_id] = line
        else:
            skipped.append(f"line {number} of file {file_id} was skipped: not a JSON object with a usable custom_id")
    return lines, skipped


def _outcome(client: VisionClient, line: dict[str, Any] | None, item: dict[str, Any], manifest: Manifest | None,
             job: Any) -> Outcome:
    index, source = int(item["index"]), str(item["source"])
    if line is None:
        status = job.status
        kind = status if status in ("expired", "cancelled") else "failed"
        reason = _job_errors(job) if status == "failed" else f"the job is {status} and returned no line for it"
        return BatchFailure(index, source, f"No result from batch {job.id}: {reason}.", kind)
    response, error = line.get("response"), line.get("error")
    if not isinstance(response, dict | None) or not isinstance(error, dict | None):
        return BatchFailure(index, source, "Unreadable output line: response/error is not an object.", "failed")
    if response and response.get("status_code") == 200:
        body = response.get("body") or {}
        if not isinstance(body, dict):
            return BatchFailure(index, source, "Unreadable output line: its body is not an object.", "failed")
        # the deployment is the one the job was sent to: Azure's ``model`` names the model version behind it
        deployment = manifest.deployment if manifest and manifest.deployment else str(body.get("model", ""))
        request = VisionRequest(prompt=manifest.prompt if manifest else "", deployment=deployment)
        try:
            result = result_from_body(body, request, client.settings, response.get("request_id"))
        except AzureVisionError as e:
            return failure_of(index, source, e)
        except Exception as e:  # noqa: BLE001 - a malformed line fails that item only
            return BatchFailure(index, source, f"Unreadable output line: {type(e).__name__}: {e}"[:300], "failed")
        # counted in the usage ledger and cached under the key recorded at submission (no key: not cached)
        policy = client.policy() if item.get("key") else "off"
        return client.pipeline.settle(request, result, policy, key=item.get("key"),
                                      count_once=f"batch-api {job.id} {item['custom_id']}")
    if response:
        status = response.get("status_code") if type(response.get("status_code")) is int else None
        body = response.get("body")
        err = body.get("error") if isinstance(body, dict) else None
        err = err if isinstance(err, dict) else {}
        code, message = err.get("code"), str(err.get("message") or "request failed").splitlines()[0][:300]
        if code == "content_filter":
            inner = err.get("innererror")
            blocked = content_filter_error(inner.get("content_filter_result") if isinstance(inner, dict) else None,
                                           where="prompt")
            return BatchFailure(index, source, str(blocked), "ContentFilterError", status, code)
        return BatchFailure(index, source, f"The service rejected this item ({status}): {message}",
                            "BadRequestError" if status == 400 else "ServiceError", status, code)
    err = error or {}
    code = err.get("code")
    kind = {"batch_expired": "expired", "batch_cancelled": "cancelled"}.get(str(code), "failed")
    message = str(err.get("message") or "no response").splitlines()[0][:300]
    return BatchFailure(index, source, f"{message} ({code})" if code else message, kind, None, code)


def _job_errors(job: Any) -> str:
    errors = getattr(getattr(job, "errors", None), "data", None) or []
    if not errors:
        return "the job failed"
    first = errors[0]
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"the job failed validation: {first.code}: {first.message}{more}"


def fetch_results(
    client: VisionClient, ids: Sequence[str], *, directory: str | os.PathLike[str] | None = None
) -> BatchResult:
    """Download the output and error files of finished jobs and build one :class:`BatchResult` (input order)."""
    where = manifest_directory(directory)
    outcomes: dict[int, Outcome] = {}
    sources: dict[int, str] = {}
    total = 0
    notices: list[str] = []
    prompt = ""
    for batch_id in ids:
        job = retrieve(client, batch_id, where)
        if job.status not in TERMINAL_STATUSES:
            _, c, f = _counts(job)
            raise JobError(f"Batch {batch_id} is still {_said(job.status, 20)} ({c + f}/{_expected_lines(job)} "
                           "lines done).", "wait", (batch_id,))
        manifest = Manifest.load(where, batch_id)
        (output, bad_output), (errors, bad_errors) = _download(client, job.output_file_id), _download(
            client, job.error_file_id)
        lines, skipped = {**output, **errors}, bad_output + bad_errors
        notices += skipped[:3] + ([f"{len(skipped) - 3} more unreadable line(s) in batch {batch_id}"]
                                  if len(skipped) > 3 else [])
        if manifest is None:
            notices.append(f"no manifest for {batch_id} in {where}: items named by custom_id, answers not cached")
            # a label, never a path: the gallery opens no file for a source in <...>
            items: list[dict[str, Any]] = [{"custom_id": cid, "index": total + n, "source": f"<custom_id {cid}>",
                                            "key": None} for n, cid in enumerate(sorted(lines))]
        else:
            items = manifest.items
            prompt = prompt or manifest.prompt
            for lf in manifest.local_failures:
                outcomes[int(lf["index"])] = BatchFailure(int(lf["index"]), lf["source"], lf["error"], lf["kind"])
                sources[int(lf["index"])] = str(lf["source"])
        for item in items:
            outcomes[int(item["index"])] = _outcome(client, lines.get(item["custom_id"]), item, manifest, job)
            sources[int(item["index"])] = str(item["source"])
        total += manifest.total if manifest else len(items)
    result = BatchResult(total=max(total, len(outcomes)), prompt=prompt)
    for i in sorted(outcomes):
        result.put(i, outcomes[i], sources[i])
    result.notices.extend(notices)
    return result


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


# ----- the `%azure_vision jobs` line magic -----------------------------------------------------------------------
class JobList(list[Any]):
    """SDK ``Batch`` objects that render as a table (id, status, created, done, failed) in a notebook and a
    terminal (through :mod:`azmm_magic.core.views`); a sentence when there are none."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)

    def __repr__(self) -> str:
        return views.plain(self)


def jobs_table(jobs: Sequence[Any]) -> JobList:
    """The jobs as a :class:`JobList` (a list that shows itself as a table)."""
    return JobList(jobs)


__all__ = ["BatchJob", "JobError", "JobList", "Manifest", "PYTHON_STEPS", "SubmitInterrupted", "fetch_results", "jobs_table",
           "list_jobs", "manifest_directory", "progress_bar", "resubmit_jobs", "submit_batch", "wait_jobs"]
