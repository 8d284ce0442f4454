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
from azmm_magic.features.batch import BatchResult, expand_sources
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
    items: list[dict[str, Any]] = field(default_factory=list)  # custom_id, index, source, key
    local_failures: list[dict[str, Any]] = field(default_factory=list)  # index, source, error, kind

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
    **options: Any,
) -> BatchJob:
    """See :meth:`VisionClient.submit_batch`."""
    directory = manifest_directory(manifest_dir)
    options = {**options, "deployment": deployment}
    client.prepare(prompt, (), **options)  # prompt and option checks
    settings = client.settings.with_overrides(deployment=deployment, detail=options.get("detail")).require()
    leaves, labels = expand_sources(images)
    if not leaves:
        raise ConfigError("No images to send: give at least one image (a path, glob, URL or object).")
    opts = image_options(settings.detail, settings.token_rule, settings.inline_urls, settings.max_image_bytes)
    sdk = client.sdk_client()
    jobs: list[str] = []
    manifests: list[Manifest] = []

    def new_chunk() -> _Chunk:
        return _Chunk(Manifest(prompt, settings.deployment or "", settings.endpoint_host))

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

    try:
        _write_chunks(client, prompt, leaves, labels, opts, options, new_chunk, flush, max_file_bytes, max_file_lines)
    except KeyboardInterrupt:
        if jobs:  # jobs already created run (and bill): keep their ids
            raise SubmitInterrupted(BatchJob(client, jobs, directory=directory, total=len(labels))) from None
        raise
    except AzureVisionError as e:
        if jobs:
            e.add_note(f"Batch API job(s) already submitted: {' '.join(jobs)} (%azure_vision jobs lists them).")
        raise
    return BatchJob(client, jobs, directory=directory, total=len(labels))


class SubmitInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`submit_batch` after some jobs were created: ``job`` is the :class:`BatchJob` of those
    (they run and bill; ``job.cancel()`` stops them, ``job.wait()`` / ``job.results()`` collect them)."""

    def __init__(self, job: BatchJob) -> None:
        super().__init__(f"Interrupted after submitting {len(job.ids)} Batch API job(s): {' '.join(job.ids)}")
        self.job = job


def _write_chunks(client: VisionClient, prompt: str, leaves: list[Any], labels: list[str], opts: Any,
                  options: dict[str, Any], new_chunk: Callable[[], _Chunk], flush: Callable[[_Chunk], None],
                  max_file_bytes: int, max_file_lines: int) -> None:
    """Prepare each image into a JSONL line, ``flush`` each full chunk (one job each) and the last one."""
    chunk = new_chunk()
    for index, (leaf, label) in enumerate(zip(leaves, labels, strict=False)):
        leaves[index] = None  # prepared one at a time; nothing kept once written
        try:
            request = client.prepare(prompt, [prepare_leaf(leaf, opts)], **options)
            body = request.body()
            custom_id = f"item-{index:06d}"
            line = json.dumps({"custom_id": custom_id, "method": "POST", "url": CHAT_URL, "body": body},
                              ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
            key = client.key_for(request)
            del request, body
            if len(line) > max_file_bytes:
                raise ConfigError(f"this image's request is {len(line):,} bytes, over the {max_file_bytes:,}-byte "
                                  "batch file limit; use a lower detail", settings=("detail",))
        except AzureVisionError as e:
            chunk.manifest.local_failures.append({"index": index, "source": label, "error": redact_urls(str(e)),
                                                  "kind": type(e).__name__})
            continue
        if not chunk.fits(len(line), max_file_bytes, max_file_lines):
            flush(chunk)
            chunk = new_chunk()
        chunk.write(line, {"custom_id": custom_id, "index": index, "source": label, "key": key})
        del line
    flush(chunk)


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


def _call(client: VisionClient, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - one-line errors for the user
        if getattr(e, "status_code", None) == 404:
            body = getattr(e, "body", None)
            what = str(body.get("message")) if isinstance(body, dict) and body.get("message") else "not found"
            raise ConfigError(
                f"No such batch job or file at {client.settings.endpoint_host}: {what}. "
                "List the jobs with list_jobs(client)."
            ) from None
        raise client.map_error(e) from None


def list_jobs(client: VisionClient, limit: int = 20) -> list[Any]:
    """The most recent Batch API jobs (SDK ``Batch`` objects), newest first."""
    page = _call(client, client.sdk_client().batches.list, limit=limit)
    return list(page.data)


def retrieve(client: VisionClient, batch_id: str) -> Any:
    return _call(client, client.sdk_client().batches.retrieve, batch_id)


def wait_jobs(
    client: VisionClient,
    ids: Sequence[str],
    *,
    interval: float | None = None,
    timeout: float | None = None,
    progress: bool = True,
    kernel: bool = False,
) -> list[Any]:
    """Poll until every job is completed, failed, expired or cancelled; a progress bar counts finished lines."""
    every = poll_interval(client, interval)
    started = time.monotonic()
    bar = None
    try:
        while True:
            jobs = [retrieve(client, i) for i in ids]
            total = sum(_counts(j)[0] for j in jobs)
            done = sum(_counts(j)[1] + _counts(j)[2] for j in jobs)
            failed = sum(_counts(j)[2] for j in jobs)
            states = ", ".join(sorted({j.status for j in jobs}))
            if progress:
                if bar is None:
                    if kernel:
                        from tqdm.auto import tqdm
                    else:
                        from tqdm import tqdm
                    bar = tqdm(total=total or None, desc="batch job", unit="line", file=sys.stderr)
                if total and bar.total != total:
                    bar.total = total
                bar.n = done
                bar.set_postfix_str(f"{states} · failed {failed}", refresh=False)
                bar.refresh()
            if all(j.status in TERMINAL_STATUSES for j in jobs):
                return jobs
            if timeout is not None and time.monotonic() - started + every > timeout:
                raise ServiceError(
                    f"Batch job(s) {', '.join(ids)} still {states} after {timeout:g} s; wait again later."
                )
            time.sleep(every)
    finally:
        if bar is not None:
            bar.close()


def cancel_jobs(client: VisionClient, ids: Sequence[str]) -> list[Any]:
    return [_call(client, client.sdk_client().batches.cancel, i) for i in ids]


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
        job = retrieve(client, batch_id)
        if job.status not in TERMINAL_STATUSES:
            t, c, f = _counts(job)
            raise ConfigError(
                f"Batch {batch_id} is still {job.status} ({c + f}/{t} lines done); wait for it first "
                f"(BatchJob.wait())."
            )
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
                 total: int | None = None) -> None:
        self.client = client
        self.ids = [checked_id(i) for i in ids]  # an id goes into URLs and a manifest's file name
        self.directory = directory or manifest_directory()
        self.total = total

    def status(self) -> list[Any]:
        return [retrieve(self.client, i) for i in self.ids]

    def wait(self, *, interval: float | None = None, timeout: float | None = None, progress: bool = True) -> list[Any]:
        """Poll until every job is finished (``interval`` default 60 s); returns the final ``Batch`` objects."""
        return wait_jobs(self.client, self.ids, interval=interval, timeout=timeout, progress=progress)

    def results(self) -> BatchResult:
        """Download, match by ``custom_id``, fill the cache, return the per-image :class:`BatchResult`."""
        return fetch_results(self.client, self.ids, directory=self.directory)

    def cancel(self) -> list[Any]:
        return cancel_jobs(self.client, self.ids)

    def summary(self) -> str:
        n = f"{self.total} image(s) in " if self.total is not None else ""
        ids = " ".join(self.ids)
        return f"Submitted {n}{len(self.ids)} Batch API job(s): {ids}. Next: .wait(), then .results()."

    def __repr__(self) -> str:
        return f"BatchJob({self.ids!r})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(views.plain(self))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)


# ----- the `%azure_vision jobs` line magic -----------------------------------------------------------------------
class JobList(list[Any]):
    """SDK ``Batch`` objects that render as a table (id, status, created, done, failed) in a notebook and a
    terminal (through :mod:`azmm_magic.core.views`)."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)

    def __repr__(self) -> str:
        return views.plain(self)


def jobs_table(jobs: Sequence[Any]) -> JobList:
    """The jobs as a :class:`JobList` (a list that shows itself as a table)."""
    return JobList(jobs)


__all__ = ["BatchJob", "JobList", "Manifest", "SubmitInterrupted", "fetch_results", "jobs_table", "list_jobs", "manifest_directory",
           "submit_batch", "wait_jobs"]
