"""The Azure OpenAI Batch API path (submit_batch, jobs wait/results, %azure_vision jobs) end to end against the
emulator's Files and Batches endpoints, over real HTTP with the real SDK."""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError

from azmm_magic import VisionClient
from azmm_magic.features.batch import BatchResult
from azmm_magic.features.batch_api import BatchJob, Manifest
from azmm_magic.core.result import VisionResult
from tests.conftest import Emulator, _start
from tests.test_batch import folder, garbage_image


@pytest.fixture(scope="module")
def batch_server():
    server = _start(batch_delay=0.3)
    yield server
    server.stop()


@pytest.fixture
def bemu(batch_server) -> Emulator:
    emu = Emulator(batch_server)
    emu.reset()
    batch_server.config.batch_expire_after = None
    batch_server.config.batch_delay = 0.3
    return emu


def make_client(emu: Emulator, v1: bool = False) -> VisionClient:
    endpoint = emu.url + "/openai/v1/" if v1 else emu.url
    return VisionClient(endpoint=endpoint, deployment="gpt-4o-batch", auth="none")


@pytest.mark.parametrize("v1", [False, True], ids=["classic", "v1"])
def test_round_trip_out_of_order_output_and_error_file(bemu, tmp_path, v1):
    d = folder(tmp_path, 8)
    (d / "zz-broken.png").write_bytes(b"not an image at all")
    client = make_client(bemu, v1)
    job = client.submit_batch("What colour?", [str(d / "img*.png"), garbage_image(), d / "zz-broken.png"],
                              manifest_dir=tmp_path / "manifests", detail="low")
    assert isinstance(job, BatchJob) and len(job.ids) == 1
    paths = [r["path"] for r in bemu.log()["requests"]]
    prefix = "/openai/v1" if v1 else "/openai"
    # upload, then poll the file until it is processed (Azure validates it first), then create the job
    assert paths[0] == f"{prefix}/files" and paths[-1] == f"{prefix}/batches"
    assert len(paths) > 2 and all(p.startswith(f"{prefix}/files/file-") for p in paths[1:-1])
    assert bemu.log()["requests"][0]["api_version"] == (None if v1 else "2024-10-21")

    # the uploaded JSONL: one line per image that could be prepared, same deployment on every line
    sdk = client.sdk_client()
    batch = sdk.batches.retrieve(job.ids[0])
    assert batch.endpoint == "/chat/completions" and batch.completion_window == "24h"
    lines = [json.loads(x) for x in sdk.files.content(batch.input_file_id).content.splitlines()]
    assert len(lines) == 9 and {x["body"]["model"] for x in lines} == {"gpt-4o-batch"}
    assert all(x["method"] == "POST" and x["url"] == "/chat/completions" for x in lines)
    assert lines[0]["body"]["messages"][0]["content"][1]["image_url"]["detail"] == "low"

    final = job.wait(interval=0.05, progress=False)
    assert [b.status for b in final] == ["completed"]
    assert (final[0].request_counts.completed, final[0].request_counts.failed) == (8, 1)
    out_ids = [json.loads(x)["custom_id"] for x in sdk.files.content(final[0].output_file_id).content.splitlines()]
    assert sorted(out_ids) == [f"item-{i:06d}" for i in range(8)] and out_ids != sorted(out_ids)  # out of order
    err = [json.loads(x) for x in sdk.files.content(final[0].error_file_id).content.splitlines()]
    assert err[0]["custom_id"] == "item-000008" and err[0]["response"]["status_code"] == 400

    result = job.results()
    assert isinstance(result, BatchResult) and len(result) == 10
    assert [type(o).__name__ for o in result] == ["VisionResult"] * 8 + ["BatchFailure"] * 2
    for i, r in enumerate(result.results):  # matched by custom_id back into input order
        assert r.images == () and f"{40 + i}×30" in r.text and r.deployment == "gpt-4o-batch"
    server_side, local = result.failures
    assert server_side.status == 400 and "Invalid image data" in server_side.error and server_side.source == "<garbage>"
    assert local.kind == "ImageInputError" and "zz-broken.png" in local.error

    # results filled the cache: the interactive batch of the same images sends nothing
    bemu.reset()
    again = client.batch("What colour?", str(d / "img*.png"), deployment="gpt-4o-batch", detail="low", progress=False)
    assert again.counts()["cached"] == 8 and bemu.count() == 0


def test_split_into_files_by_lines_and_bytes(bemu, tmp_path):
    d = folder(tmp_path, 7)
    client = make_client(bemu)
    job = client.submit_batch("Split", str(d / "*.png"), manifest_dir=tmp_path, max_file_lines=3)
    assert len(job.ids) == 3
    sizes = [Manifest.load(tmp_path, i).total for i in job.ids]
    assert sizes == [3, 3, 1]
    job.wait(interval=0.05, progress=False)
    result = job.results()
    assert len(result.results) == 7 and result.sources == [str(p) for p in sorted(d.glob("*.png"))]
    one_line = len(json.dumps(client.prepare("Split", [d / "img000.png"]).body()))
    job2 = client.submit_batch("Split", str(d / "*.png"), manifest_dir=tmp_path, max_file_bytes=2 * one_line + 400)
    assert len(job2.ids) >= 3


def test_expired_and_cancelled_items_are_reported_per_item(bemu, batch_server, tmp_path):
    d = folder(tmp_path, 5)
    client = make_client(bemu)
    batch_server.config.batch_expire_after = 2
    job = client.submit_batch("Expire", str(d / "*.png"), manifest_dir=tmp_path)
    assert job.wait(interval=0.05, progress=False)[0].status == "expired"
    result = job.results()
    assert [o.__class__.__name__ for o in result] == ["VisionResult"] * 2 + ["BatchFailure"] * 3
    assert {f.kind for f in result.failures} == {"expired"} and "batch_expired" in result.failures[0].error

    batch_server.config.batch_expire_after = None
    batch_server.config.batch_delay = 5.0
    job = client.submit_batch("Cancel", str(d / "*.png"), manifest_dir=tmp_path)
    assert [b.status for b in job.cancel()] == ["cancelling"]
    assert job.wait(interval=0.05, progress=False)[0].status == "cancelled"
    result = job.results()
    assert len(result) == 5 and {f.kind for f in result.failures} == {"cancelled"}
    assert result.counts()["failed"] == 5


def test_validation_failure_marks_every_item(bemu, tmp_path):
    """A job whose input breaks a rule (here two deployments in one file) fails; every item says why."""
    client = make_client(bemu)
    sdk = client.sdk_client()
    body = client.prepare("x", [garbage_image()]).body()
    rows = [{"custom_id": f"item-{i:06d}", "method": "POST", "url": "/chat/completions",
             "body": {**body, "model": "a" if i == 0 else "b"}} for i in range(2)]
    upload = sdk.files.create(file=("in.jsonl", "\n".join(json.dumps(r) for r in rows).encode()), purpose="batch")
    batch = sdk.batches.create(input_file_id=upload.id, endpoint="/chat/completions", completion_window="24h")
    Manifest("x", "a", "", upload.id, batch.id, 2, items=[
        {"custom_id": r["custom_id"], "index": i, "source": f"s{i}", "key": None} for i, r in enumerate(rows)
    ]).save(tmp_path)
    job = BatchJob(client, [batch.id], directory=tmp_path)
    assert job.wait(interval=0.05, progress=False)[0].status == "failed"
    result = job.results()
    assert len(result.failures) == 2 and all("model_mismatch" in f.error for f in result.failures)


def test_jobs_magic_list_wait_results(shell, bemu, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AZMM_BATCH_DIR", str(tmp_path / "m"))
    d = folder(tmp_path, 4)
    shell.run_line_magic("config", f"AzureVision.endpoint = {bemu.url!r}")
    job = shell.run_cell_magic("azure_vision", f'-i "{d}/*.png" --via batch-api -o job', "Each one?")
    assert isinstance(job, BatchJob) and shell.user_ns["job"] is job
    assert "Next: .wait(), then .results()" in job.summary()
    assert f"%azure_vision jobs wait {job.ids[0]}" in capsys.readouterr().out  # the magic words the next step
    (job_id,) = job.ids
    listing = shell.run_line_magic("azure_vision", "jobs")
    assert job_id in repr(listing)
    waited = shell.run_line_magic("azure_vision", f"jobs wait {job_id} --interval 0.05")
    assert "completed" in repr(waited) and "4/4" in repr(waited)
    result = shell.run_line_magic("azure_vision", f"jobs results {job_id}")
    assert isinstance(result, BatchResult) and len(result.results) == 4
    assert all(isinstance(r, VisionResult) for r in result)
    with pytest.raises(UsageError, match="No such batch job"):
        shell.run_line_magic("azure_vision", "jobs results batch_nope")
    with pytest.raises(UsageError, match="give the job id"):
        shell.run_line_magic("azure_vision", "jobs wait")


def test_results_before_completion_say_to_wait(bemu, batch_server, tmp_path):
    batch_server.config.batch_delay = 5.0
    d = folder(tmp_path, 2)
    client = make_client(bemu)
    job = client.submit_batch("Early", str(d / "*.png"), manifest_dir=tmp_path)
    with pytest.raises(Exception, match=r"still (validating|in_progress).*wait for it first"):
        job.results()
    job.cancel()


def test_poll_interval_is_at_least_a_minute_for_remote_endpoints(capsys):
    from azmm_magic.features.batch_api import poll_interval

    remote = VisionClient(endpoint="https://example.openai.azure.com/", deployment="d", auth="none")
    assert poll_interval(remote, None) == 60.0 and poll_interval(remote, 5) == 60.0
    assert "recommends about once a minute" in capsys.readouterr().err
    local = VisionClient(endpoint="http://127.0.0.1:9", deployment="d", auth="none")
    assert poll_interval(local, 0.05) == 0.05


def test_emulator_files_need_api_version_and_multipart(bemu):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(bemu.url + "/openai/files", data=b"x", method="POST"))
    assert info.value.code == 400 and "api-version" in info.value.read().decode()
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(bemu.url + "/openai/v1/files", data=b"{}", method="POST",
                                                      headers={"content-type": "application/json"}))
    assert info.value.code == 400 and "multipart" in info.value.read().decode()
