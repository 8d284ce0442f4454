"""Submitting: images prepared in parallel and written in input order as JSONL input files (a new file before
200 MB or 100,000 lines), each uploaded and made a job, with a manifest saved per job."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from azmm_magic.core.errors import AzureVisionError, ConfigError
from azmm_magic.core.images import image_options, prepare_leaf
from azmm_magic.core.urls import redact_urls
from azmm_magic.features.batch import BatchItem, is_big_item, leaves_and_labels, preparation_pools
from azmm_magic.features.batch_api.jobs import progress_bar
from azmm_magic.features.batch_api.manifest import Manifest, checked_id, manifest_directory

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.client import VisionClient

MAX_FILE_BYTES = 200 * 1000 * 1000
MAX_FILE_LINES = 100_000
CHAT_URL = "/chat/completions"
FILE_PROCESSING_TIMEOUT = 600.0  # seconds to wait for an uploaded input file to be processed


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


def file_path(label: str) -> str | None:
    """The absolute path of an image given as a file (so that a lost job can be submitted again), else None."""
    if label.startswith(("<", "http://", "https://", "data:")) or not os.path.isfile(label):
        return None
    return os.path.abspath(label)


def wait_processed(sdk: Any, uploaded: Any, timeout: float = FILE_PROCESSING_TIMEOUT) -> None:
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


class Submission:
    """One submission: the request checked up front, then (:meth:`run`) every image's line written in input order
    into JSONL files, each file uploaded and made a job. ``jobs`` holds the ids of the jobs created so far (they
    run and bill even if a later step fails), ``directory`` their manifests, ``total`` the number of images."""

    def __init__(self, client: VisionClient, prompt: str, images: Iterable[object] | object, *,
                 deployment: str | None, manifest_dir: str | os.PathLike[str] | None, max_file_bytes: int,
                 max_file_lines: int, options: dict[str, Any]) -> None:
        if max_file_bytes < 1 or max_file_lines < 1:
            raise ConfigError(f"max_file_bytes and max_file_lines must be positive, got {max_file_bytes} and "
                              f"{max_file_lines}.")
        self.client, self.prompt = client, prompt
        self.max_file_bytes, self.max_file_lines = max_file_bytes, max_file_lines
        self.directory = manifest_directory(manifest_dir)
        self.options = {**options, "deployment": deployment}
        client.prepare(prompt, (), **self.options)  # prompt and option checks
        self.settings = settings = client.settings.with_overrides(deployment=deployment,
                                                                  detail=options.get("detail")).require()
        self.leaves, self.labels = leaves_and_labels(images)
        if not self.leaves:
            raise ConfigError("No images to send: give at least one image (a path, glob, URL or object).")
        self.image_options = image_options(settings.detail, settings.token_rule, settings.inline_urls,
                                           settings.max_image_bytes)
        self.sdk = client.sdk_client()
        self.plain = {k: v for k, v in self.options.items()
                      if k != "deployment" and (v is None or type(v) in (str, int, float, bool))}
        self.jobs: list[str] = []
        self.manifests: list[Manifest] = []
        self.bar: Any = None
        self.chunk = self._new_chunk()

    @property
    def total(self) -> int:
        """The number of images."""
        return len(self.labels)

    def run(self, *, progress: bool, kernel: bool, workers: int | None) -> None:
        """Prepare, write, upload and create the jobs; ``progress`` shows a bar (``kernel``: the widget bar)."""
        self.bar = progress_bar(self.total, "preparing", "img", kernel) if progress else None
        try:
            self._write_all(workers)
            self._flush()
        finally:
            if self.bar is not None:
                self.bar.close()

    def _new_chunk(self) -> _Chunk:
        return _Chunk(Manifest(self.prompt, self.settings.deployment or "", self.settings.endpoint_host,
                               options=self.plain))

    def _write_all(self, workers: int | None) -> None:
        """Every image's line, prepared on every core (threads, and worker processes for big image files) up to
        2 × workers images ahead of the one written, written in input order."""
        items: list[BatchItem | None] = [BatchItem((leaf,), label)
                                         for leaf, label in zip(self.leaves, self.labels, strict=False)]
        threads, processes, count = preparation_pools([i for i in items if i is not None], workers)
        pending: deque[tuple[int, Future[tuple[bytes, str | None]]]] = deque()
        try:
            for index in range(len(items)):
                item, self.leaves[index], items[index] = items[index], None, None  # nothing kept once written
                assert item is not None
                big = processes if processes is not None and is_big_item(item) else None
                pending.append((index, threads.submit(self._line_for, index, item.leaves[0], big)))
                while len(pending) >= 2 * count:
                    self._write(*pending.popleft())
            while pending:
                self._write(*pending.popleft())
        finally:
            for _, future in pending:
                future.cancel()
            threads.shutdown(wait=False, cancel_futures=True)
            if processes is not None:
                processes.shutdown(wait=False, cancel_futures=True)

    def _line_for(self, index: int, leaf: Any, processes: Any) -> tuple[bytes, str | None]:
        """The JSONL line of one image and its cache key (worker thread)."""
        opts = self.image_options
        image = processes.submit(prepare_leaf, leaf, opts).result() if processes is not None else prepare_leaf(leaf, opts)
        request = self.client.prepare(self.prompt, [image], **self.options)
        line = json.dumps({"custom_id": f"item-{index:06d}", "method": "POST", "url": CHAT_URL, "body": request.body()},
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        if len(line) > self.max_file_bytes:
            raise ConfigError(f"this image's request is {len(line):,} bytes, over the {self.max_file_bytes:,}-byte "
                              "batch file limit; use a lower detail", settings=("detail",))
        return line, self.client.key_for(request)

    def _write(self, index: int, future: Future[tuple[bytes, str | None]]) -> None:
        """Write image ``index``'s line (a new file first when it does not fit), or record why it failed."""
        label, path = self.labels[index], file_path(self.labels[index])
        try:
            line, key = future.result()
        except AzureVisionError as e:
            self.chunk.manifest.local_failures.append({"index": index, "source": label, "error": redact_urls(str(e)),
                                                       "kind": type(e).__name__, "path": path})
        else:
            if not self.chunk.fits(len(line), self.max_file_bytes, self.max_file_lines):
                self._flush()
                self.chunk = self._new_chunk()
            self.chunk.write(line, {"custom_id": f"item-{index:06d}", "index": index, "source": label, "key": key,
                                    "path": path})
        if self.bar is not None:
            self.bar.update(1)

    def _flush(self) -> None:
        """Upload the current file and create its job; a file with no line gives its failures to the previous job
        (none at all prepared: one clear line)."""
        chunk = self.chunk
        if chunk.lines == 0:
            failures = chunk.manifest.local_failures
            if failures and self.manifests:  # nothing to send: attach to the previous job
                self.manifests[-1].local_failures += failures
                self.manifests[-1].save(self.directory)
            elif failures:
                raise ConfigError(f"None of the {self.total} images could be prepared; the first error: "
                                  f"{failures[0]['error']}")
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"uploading file {len(self.jobs) + 1} ({chunk.lines:,} lines)")
        file_id, batch_id = self._upload(chunk)
        chunk.manifest.input_file_id = checked_id(file_id, "file id")
        chunk.manifest.batch_id = checked_id(batch_id)
        chunk.manifest.total = chunk.lines + len(chunk.manifest.local_failures)
        chunk.manifest.save(self.directory)
        self.jobs.append(batch_id)
        self.manifests.append(chunk.manifest)
        if self.bar is not None:
            self.bar.set_postfix_str(f"{len(self.jobs)} job(s) created")

    def _upload(self, chunk: _Chunk) -> tuple[Any, Any]:
        """Upload ``chunk`` and create its job: (the input file's id, the batch id), as the service sent them."""
        sdk = self.sdk
        chunk.file.seek(0)
        try:
            uploaded = sdk.files.create(file=(f"azmm-batch-{len(self.jobs) + 1}.jsonl", chunk.file, "application/jsonl"),
                                        purpose="batch")
            wait_processed(sdk, uploaded)
            job = sdk.batches.create(
                input_file_id=uploaded.id,
                endpoint=CHAT_URL,
                completion_window="24h",
                metadata={"created_by": "azmm_magic", "items": str(chunk.lines)},
            )
        except Exception as e:  # noqa: BLE001 - mapped to our one-line errors
            raise self.client.map_error(e) from None
        finally:
            chunk.file.close()
        return uploaded.id, job.id


__all__ = ["CHAT_URL", "FILE_PROCESSING_TIMEOUT", "MAX_FILE_BYTES", "MAX_FILE_LINES", "Submission", "file_path",
           "wait_processed"]
