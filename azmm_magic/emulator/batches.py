"""The Files and Batches endpoints of Azure OpenAI's Batch API, in memory.

Routes, under the classic prefix ``/openai`` (with ``?api-version=``) and under ``/openai/v1`` and ``/v1``:

- ``POST /files`` (multipart: ``file``, ``purpose``), ``GET /files``, ``GET|DELETE /files/{id}``,
  ``GET /files/{id}/content``
- ``POST /batches`` (``input_file_id``, ``endpoint``, ``completion_window="24h"``), ``GET /batches``,
  ``GET /batches/{id}``, ``POST /batches/{id}/cancel``

A job goes ``validating → in_progress → finalizing → completed`` over ``EmulatorConfig.batch_delay`` seconds.
Validation errors (``invalid_json_line``, ``duplicate_custom_id``, ``url_mismatch``, ``model_mismatch``,
``model_not_found``, ``empty_file``, ``too_many_tasks``) make the job ``failed``. Each line is answered like a
chat request (the same report); lines the service would reject (an undecodable image, a bad parameter) go to the
error file with their 4xx response. The output file lists lines in a shuffled order, as Azure does. A job can be
cancelled (unfinished lines get ``batch_cancelled`` in the error file), and with
``EmulatorConfig.batch_expire_after = N`` it expires after N lines (the rest get ``batch_expired``).
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import hashlib
import json
import time
import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .answers import completion_body
from .pipeline import make_answer, prepare
from .protocol import ApiError, authenticate, check_api_version, log_entry, read_json
from .report import RequestError, read_chat

__all__ = ["BatchStore", "batch_routes"]

MAX_LINES = 100_000
TERMINAL = ("completed", "failed", "expired", "cancelled")
CHAT_URLS = ("/chat/completions", "/v1/chat/completions")


class BatchStore:
    """Uploaded files and batch jobs of one emulator (plus the tasks that run the jobs)."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._ready_at: dict[str, float] = {}

    def add_file(self, content: bytes, filename: str, purpose: str, *, processing: float = 0.0) -> dict[str, Any]:
        """Store a file; with ``processing`` seconds it is ``pending`` that long, then ``processed`` (like an
        upload to Azure)."""
        file_id = "file-" + uuid.uuid4().hex
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "pending" if processing > 0 else "processed",
            "status_details": None,
        }
        self.files[file_id] = meta
        self.contents[file_id] = content
        if processing > 0:
            self._ready_at[file_id] = time.monotonic() + processing
        return meta

    def file(self, file_id: str) -> dict[str, Any] | None:
        """The file object (its status brought up to date), or None."""
        meta = self.files.get(file_id)
        ready_at = self._ready_at.get(file_id)
        if meta is not None and ready_at is not None and time.monotonic() >= ready_at:
            meta["status"] = "processed"
            self._ready_at.pop(file_id, None)
        return meta

    def seconds_to_ready(self, file_id: str) -> float:
        """How long until ``file_id`` is processed (0 when it is)."""
        ready_at = self._ready_at.get(file_id)
        return max(0.0, ready_at - time.monotonic()) if ready_at is not None else 0.0


# ----- helpers ---------------------------------------------------------------------------------------------------
def _not_found(kind: str, ident: str) -> Any:
    return ApiError(
        404,
        {"error": {"message": f"No such {kind} object: {ident}", "type": "invalid_request_error", "param": "id",
                   "code": None}},
    )


def _bad(message: str, param: str | None = None, code: str | None = "invalid_value") -> Any:
    return ApiError(
        400, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    )


def _begin(request: Request) -> tuple[Any, BatchStore]:
    """Authenticate like the chat routes (and require api-version on the classic prefix)."""
    config = request.app.state.config
    entry = log_entry(request)
    v1 = "/v1/" in request.url.path
    api_version = request.query_params.get("api-version")
    entry["api_version"] = api_version
    authenticate(request, config, entry, v1=v1)
    if not v1:
        check_api_version(api_version, lenient=config.lenient_api_versions)
    return config, request.app.state.batches


def _parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[bytes, str | None]]:
    """``name -> (payload, filename)`` of a multipart/form-data body (stdlib parser, no extra dependency)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        raise _bad("Expected a multipart/form-data body with 'file' and 'purpose'.")
    fields: dict[str, tuple[bytes, str | None]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = (payload if isinstance(payload, bytes) else b"", part.get_filename())
    return fields


# ----- files -----------------------------------------------------------------------------------------------------
async def create_file(request: Request) -> Response:
    """Upload: 201 Created with ``status: pending``; ``processed`` after ``file_processing_delay`` seconds."""
    config, store = _begin(request)
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise _bad("Expected a multipart/form-data body with 'file' and 'purpose'.")
    fields = _parse_multipart(content_type, await request.body())
    if "file" not in fields:
        raise _bad("Missing required parameter: 'file'.", "file", "missing_required_parameter")
    purpose = fields.get("purpose", (b"", None))[0].decode("utf-8", "replace").strip()
    if purpose not in ("batch", "fine-tune", "assistants", "vision", "user_data", "evals"):
        raise _bad(f"Invalid value for 'purpose': {purpose!r}.", "purpose")
    content, filename = fields["file"]
    if purpose == "batch" and content.startswith(b"\xef\xbb\xbf"):
        raise _bad("The batch input file must be UTF-8 without a byte order mark.", "file", "invalid_file_format")
    meta = store.add_file(content, filename or "upload.jsonl", purpose, processing=config.file_processing_delay)
    return JSONResponse(meta, status_code=201)


async def list_files(request: Request) -> Response:
    _, store = _begin(request)
    purpose = request.query_params.get("purpose")
    data = [store.file(i) for i, f in list(store.files.items()) if purpose in (None, f["purpose"])]
    return JSONResponse({"object": "list", "data": data[::-1], "has_more": False})


async def file_object(request: Request) -> Response:
    _, store = _begin(request)
    file_id = request.path_params["file_id"]
    if file_id not in store.files:
        raise _not_found("File", file_id)
    if request.method == "DELETE":
        store.files.pop(file_id)
        store.contents.pop(file_id, None)
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})
    return JSONResponse(store.file(file_id))


async def file_content(request: Request) -> Response:
    _, store = _begin(request)
    file_id = request.path_params["file_id"]
    if file_id not in store.contents:
        raise _not_found("File", file_id)
    return Response(store.contents[file_id], media_type="application/octet-stream")


# ----- batches ---------------------------------------------------------------------------------------------------
def _batch_object(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


async def create_batch(request: Request) -> Response:
    config, store = _begin(request)
    body = await read_json(request)
    input_file_id = body.get("input_file_id")
    if not isinstance(input_file_id, str) or input_file_id not in store.files:
        raise _bad(f"Invalid 'input_file_id': {input_file_id!r} is not an uploaded file.", "input_file_id")
    if store.files[input_file_id]["purpose"] != "batch":
        raise _bad("The input file must be uploaded with purpose 'batch'.", "input_file_id")
    endpoint = body.get("endpoint")
    if endpoint not in CHAT_URLS:
        raise _bad(f"Invalid 'endpoint': {endpoint!r}; this emulator supports '/chat/completions'.", "endpoint")
    if body.get("completion_window") != "24h":
        raise _bad("Invalid 'completion_window': only '24h' is supported.", "completion_window")
    now = int(time.time())
    batch_id = "batch_" + uuid.uuid4().hex
    job: dict[str, Any] = {
        "id": batch_id,
        "object": "batch",
        "endpoint": endpoint,
        "errors": None,
        "input_file_id": input_file_id,
        "completion_window": "24h",
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": None,
        "expires_at": now + 24 * 3600,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": body.get("metadata"),
        "_cancel": False,
        "_api_version": None if "/v1/" in request.url.path else request.query_params.get("api-version"),
    }
    store.batches[batch_id] = job
    task = asyncio.get_running_loop().create_task(_run_job(store, job, config))
    store.tasks.add(task)
    task.add_done_callback(store.tasks.discard)
    return JSONResponse(_batch_object(job))


async def list_batches(request: Request) -> Response:
    _, store = _begin(request)
    jobs = sorted(store.batches.values(), key=lambda j: (j["created_at"], j["id"]), reverse=True)
    after = request.query_params.get("after")
    if after:
        ids = [j["id"] for j in jobs]
        jobs = jobs[ids.index(after) + 1 :] if after in ids else []
    try:
        limit = max(1, min(100, int(request.query_params.get("limit", "20"))))
    except ValueError:
        raise _bad("Invalid 'limit': expected an integer.", "limit") from None
    page = jobs[:limit]
    return JSONResponse({
        "object": "list",
        "data": [_batch_object(j) for j in page],
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(jobs) > limit,
    })


async def batch_object(request: Request) -> Response:
    _, store = _begin(request)
    batch_id = request.path_params["batch_id"]
    if batch_id not in store.batches:
        raise _not_found("Batch", batch_id)
    return JSONResponse(_batch_object(store.batches[batch_id]))


async def cancel_batch(request: Request) -> Response:
    _, store = _begin(request)
    batch_id = request.path_params["batch_id"]
    job = store.batches.get(batch_id)
    if job is None:
        raise _not_found("Batch", batch_id)
    if job["status"] in TERMINAL:
        raise ApiError(409, {"error": {"message": f"Cannot cancel a batch with status '{job['status']}'.",
                                              "type": "invalid_request_error", "param": None, "code": None}})
    job["_cancel"] = True
    job["status"] = "cancelling"
    job["cancelling_at"] = int(time.time())
    return JSONResponse(_batch_object(job))


# ----- running a job ---------------------------------------------------------------------------------------------
def _validate(lines: list[bytes], config: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Parse the input lines; returns (tasks, validation errors) like Azure's ``errors.data``."""
    tasks: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    model: str | None = None

    def error(code: str, message: str, line: int, param: str | None = None) -> None:
        errors.append({"code": code, "message": message, "param": param, "line": line})

    if not lines:
        error("empty_file", "The input file is empty.", 0)
    if len(lines) > MAX_LINES:
        error("too_many_tasks", f"The input file has {len(lines)} lines; the limit is {MAX_LINES}.", 0)
    for number, raw in enumerate(lines, start=1):
        try:
            task = json.loads(raw)
            if not isinstance(task, dict):
                raise ValueError
        except ValueError:
            error("invalid_json_line", f"Line {number} is not a JSON object.", number)
            continue
        custom_id = task.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            error("invalid_request", f"Line {number} has no 'custom_id'.", number, "custom_id")
            continue
        if custom_id in seen:
            error("duplicate_custom_id", f"The custom_id {custom_id!r} appears more than once.", number, "custom_id")
            continue
        seen.add(custom_id)
        if task.get("method") != "POST" or task.get("url") not in CHAT_URLS:
            error("url_mismatch", f"Line {number}: method must be POST and url '/chat/completions'.", number, "url")
            continue
        body = task.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            error("invalid_request", f"Line {number}: 'body.model' is required.", number, "body.model")
            continue
        if model is None:
            model = body["model"]
            if config.deployments is not None and model not in config.deployments:
                error("model_not_found", f"The deployment {model!r} does not exist.", number, "body.model")
        elif body["model"] != model:
            error("model_mismatch", f"Line {number} uses {body['model']!r}; every line must use {model!r}.", number,
                  "body.model")
            continue
        tasks.append(task)
    return tasks, errors


async def _answer(config: Any, body: dict[str, Any], api_version: str | None) -> tuple[int, dict[str, Any]]:
    """Answer one line's body like ``POST /chat/completions`` (no streaming): (status code, JSON body)."""
    deployment = body["model"]
    try:
        if body.get("stream"):
            raise RequestError("Streaming is not supported in the Batch API.", param="stream")
        prepared = prepare(config, body, deployment, api_version)
        facts = await run_in_threadpool(read_chat, body)
    except RequestError as e:
        return 400, e.to_body()
    except ApiError as e:
        return e.status, e.body
    return 200, completion_body(make_answer(body, facts, prepared))


def _jsonl(items: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(i, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n" for i in items)


async def _run_job(store: BatchStore, job: dict[str, Any], config: Any) -> None:
    delay = max(0.0, float(config.batch_delay))
    await asyncio.sleep(delay * 0.15 + store.seconds_to_ready(job["input_file_id"]))  # the upload is processed first
    lines = [line for line in store.contents.get(job["input_file_id"], b"").splitlines() if line.strip()]
    tasks, errors = _validate(lines, config)
    if errors:
        job.update(status="failed", failed_at=int(time.time()), errors={"object": "list", "data": errors})
        return
    if job["_cancel"]:
        tasks_left = tasks
        done: list[tuple[dict[str, Any], int, dict[str, Any]]] = []
    else:
        job.update(status="in_progress", in_progress_at=int(time.time()))
        job["request_counts"]["total"] = len(tasks)
        step = delay * 0.6 / max(1, len(tasks))
        done = []
        tasks_left = []
        for number, task in enumerate(tasks):
            if job["_cancel"] or (config.batch_expire_after is not None and number >= config.batch_expire_after):
                tasks_left = tasks[number:]
                break
            status, body = await _answer(config, task["body"], job["_api_version"])
            done.append((task, status, body))
            job["request_counts"]["completed" if status == 200 else "failed"] += 1
            if step:
                await asyncio.sleep(step)
    expired = not job["_cancel"] and bool(tasks_left)
    if not job["_cancel"]:
        job.update(status="finalizing", finalizing_at=int(time.time()))
    await asyncio.sleep(delay * 0.25)
    outputs: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for task, status, body in done:
        line = {"id": "batch_req_" + uuid.uuid4().hex, "custom_id": task["custom_id"],
                "response": {"status_code": status, "request_id": str(uuid.uuid4()), "body": body}, "error": None}
        (outputs if status == 200 else failures).append(line)
    code = "batch_expired" if expired else "batch_cancelled"
    message = ("This line could not be executed before the completion window expired." if expired
               else "This line was not executed because the batch was cancelled.")
    for task in tasks_left:
        failures.append({"id": "batch_req_" + uuid.uuid4().hex, "custom_id": task["custom_id"], "response": None,
                         "error": {"code": code, "message": message}})
    # Azure does not keep input order: shuffle deterministically (by a hash of the batch and custom ids)
    def order(line: dict[str, Any]) -> str:
        return hashlib.sha256(f"{job['id']}:{line['custom_id']}".encode()).hexdigest()

    outputs.sort(key=order)
    failures.sort(key=order)
    if outputs:
        job["output_file_id"] = store.add_file(_jsonl(outputs), f"{job['id']}_output.jsonl", "batch_output")["id"]
    if failures:
        job["error_file_id"] = store.add_file(_jsonl(failures), f"{job['id']}_error.jsonl", "batch_output")["id"]
    now = int(time.time())
    if job["_cancel"]:
        job.update(status="cancelled", cancelled_at=now)
    elif expired:
        job.update(status="expired", expired_at=now)
    else:
        job.update(status="completed", completed_at=now)


def batch_routes() -> list[Route]:
    """The Files and Batches routes under ``/openai`` (classic, api-version), ``/openai/v1`` and ``/v1``."""
    routes = []
    for prefix in ("/openai", "/openai/v1", "/v1"):
        routes += [
            Route(f"{prefix}/files", create_file, methods=["POST"]),
            Route(f"{prefix}/files", list_files, methods=["GET"]),
            Route(f"{prefix}/files/{{file_id}}", file_object, methods=["GET", "DELETE"]),
            Route(f"{prefix}/files/{{file_id}}/content", file_content, methods=["GET"]),
            Route(f"{prefix}/batches", create_batch, methods=["POST"]),
            Route(f"{prefix}/batches", list_batches, methods=["GET"]),
            Route(f"{prefix}/batches/{{batch_id}}", batch_object, methods=["GET"]),
            Route(f"{prefix}/batches/{{batch_id}}/cancel", cancel_batch, methods=["POST"]),
        ]
    return routes
