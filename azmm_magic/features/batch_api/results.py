"""Results: a finished job's output and error files downloaded, their lines matched to the items by ``custom_id``
(they come back in any order), answers settled through the pipeline (answer cache, usage ledger) and one
:class:`~azmm_magic.features.batch.BatchResult` built in input order."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azmm_magic.core.errors import AzureVisionError
from azmm_magic.core.request import VisionRequest
from azmm_magic.features.batch import BatchResult
from azmm_magic.features.batch_api.jobs import (
    TERMINAL_STATUSES,
    JobError,
    call_service,
    expected_lines,
    request_counts,
    retrieve,
)
from azmm_magic.features.batch_api.manifest import Manifest, checked_id, is_server_id, manifest_directory, server_text
from azmm_magic.features.outcomes import BatchFailure, Outcome, failure_of
from azmm_magic.service.errors import content_filter_error
from azmm_magic.service.send import result_from_body

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.client import VisionClient


def _download(client: VisionClient, file_id: str | None) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``custom_id -> line`` of an output or error file, and what was said of the lines that were skipped (not
    a JSON object, or no usable ``custom_id``: no item to give them to; that item fails as "no line for it")."""
    skipped: list[str] = []
    if not file_id:
        return {}, skipped
    content = call_service(client, client.sdk_client().files.content, checked_id(file_id, "file id"))
    lines: dict[str, dict[str, Any]] = {}
    for number, raw in enumerate(content.content.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        custom_id = line.get("custom_id") if isinstance(line, dict) else None
        if isinstance(line, dict) and is_server_id(custom_id):
            lines[str(custom_id)] = line
        else:
            skipped.append(f"line {number} of file {file_id} was skipped: not a JSON object with a usable custom_id")
    return lines, skipped


def _outcome(client: VisionClient, line: dict[str, Any] | None, item: dict[str, Any], manifest: Manifest | None,
             job: Any) -> Outcome:
    """The outcome of one item from its output or error line (None: the job returned no line for it)."""
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
        return _answered(client, response, item, manifest, job)
    if response:
        return _rejected(index, source, response)
    err = error or {}
    code = err.get("code")
    kind = {"batch_expired": "expired", "batch_cancelled": "cancelled"}.get(str(code), "failed")
    message = str(err.get("message") or "no response").splitlines()[0][:300]
    return BatchFailure(index, source, f"{message} ({code})" if code else message, kind, None, code)


def _answered(client: VisionClient, response: dict[str, Any], item: dict[str, Any], manifest: Manifest | None,
              job: Any) -> Outcome:
    """An answered item: its result, counted in the usage ledger and cached under the key recorded at submission
    (no key: not cached); a malformed body fails that item only."""
    index, source = int(item["index"]), str(item["source"])
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
    policy = client.policy() if item.get("key") else "off"
    return client.pipeline.settle(request, result, policy, key=item.get("key"),
                                  count_once=f"batch-api {job.id} {item['custom_id']}")


def _rejected(index: int, source: str, response: dict[str, Any]) -> BatchFailure:
    """An item the service answered with an error status (a content filter block is a ``ContentFilterError``)."""
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


def _job_errors(job: Any) -> str:
    errors = getattr(getattr(job, "errors", None), "data", None) or []
    if not errors:
        return "the job failed"
    first = errors[0]
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"the job failed validation: {first.code}: {first.message}{more}"


def _finished(client: VisionClient, batch_id: str, where: Path) -> Any:
    """The SDK ``Batch`` of a job that is finished (one still running: a :class:`JobError` saying to wait)."""
    job = retrieve(client, batch_id, where)
    if job.status not in TERMINAL_STATUSES:
        _, completed, failed = request_counts(job)
        raise JobError(f"Batch {batch_id} is still {server_text(job.status, 20)} ({completed + failed}/"
                       f"{expected_lines(job)} lines done).", "wait", (batch_id,))
    return job


def _lines(client: VisionClient, job: Any, batch_id: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """A job's output and error lines by ``custom_id``, and notices about the lines that could not be read."""
    (output, bad_output), (errors, bad_errors) = _download(client, job.output_file_id), _download(
        client, job.error_file_id)
    skipped = bad_output + bad_errors
    notices = skipped[:3] + ([f"{len(skipped) - 3} more unreadable line(s) in batch {batch_id}"]
                             if len(skipped) > 3 else [])
    return {**output, **errors}, notices


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
        job = _finished(client, batch_id, where)
        manifest = Manifest.load(where, batch_id)
        lines, said = _lines(client, job, batch_id)
        notices += said
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


__all__ = ["fetch_results"]
