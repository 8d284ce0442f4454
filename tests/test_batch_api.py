"""The Azure OpenAI Batch API path (submit_batch, jobs wait/results, %azure_vision jobs) end to end against the
emulator's Files and Batches endpoints, over real HTTP with the real SDK."""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError

from azmm_magic import VisionClient
from azmm_magic.features.batch import BatchResult
from azmm_magic.features.batch_api import BatchJob, Manifest
from azmm_magic.core.errors import ConfigError
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
    # the magic words the next step itself, never as a Python call
    assert f"Next: %azure_vision jobs wait {job.ids[0]}" in job.summary() and ".wait()" not in job.summary()
    (job_id,) = job.ids
    listing = shell.run_line_magic("azure_vision", "jobs")
    assert job_id in repr(listing)
    waited = shell.run_line_magic("azure_vision", f"jobs wait {job_id} --interval 0.05")
    assert "completed" in repr(waited) and "4/4" in repr(waited)
    result = shell.run_line_magic("azure_vision", f"jobs results {job_id}")
    assert isinstance(result, BatchResult) and len(result.results) == 4
    assert all(isinstance(r, VisionResult) for r in result)
    with pytest.raises(UsageError, match="No batch job batch_nope") as info:
        shell.run_line_magic("azure_vision", "jobs results batch_nope")
    assert "In this notebook: %azure_vision jobs" in str(info.value) and "(client)" not in str(info.value)
    with pytest.raises(UsageError, match="give the job id"):
        shell.run_line_magic("azure_vision", "jobs wait")


def test_results_before_completion_say_to_wait(bemu, batch_server, tmp_path):
    batch_server.config.batch_delay = 5.0
    d = folder(tmp_path, 2)
    client = make_client(bemu)
    job = client.submit_batch("Early", str(d / "*.png"), manifest_dir=tmp_path)
    with pytest.raises(Exception, match=r"still (validating|in_progress).*Wait for it to finish: job.wait\(\)"):
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


# ----- one Python entry, preparation, progress, lost jobs ----------------------------------------------------------
def test_batch_via_batch_api_returns_the_job_and_splits_files(bemu, tmp_path):
    d = folder(tmp_path, 5)
    client = make_client(bemu)
    job = client.batch("Via?", str(d / "*.png"), via="batch-api", max_file_lines=2, manifest_dir=tmp_path / "m",
                       progress=False)
    assert isinstance(job, BatchJob) and len(job.ids) == 3 and job.total == 5
    assert "Next: .wait(), then .results()" in job.summary()
    job.wait(interval=0.05, progress=False)
    result = job.results()
    assert len(result.results) == 5 and result.sources == [str(p) for p in sorted(d.glob("*.png"))]
    with pytest.raises(ConfigError, match="via must be 'requests' or 'batch-api'"):
        client.batch("Via?", str(d / "*.png"), via="batch")
    with pytest.raises(ConfigError, match="must be positive"):
        client.batch("Via?", str(d / "*.png"), via="batch-api", max_file_bytes=0)


def test_submitting_prepares_off_the_calling_thread_in_order_with_a_progress_bar(bemu, tmp_path, monkeypatch, capsys):
    import threading

    from azmm_magic.features.batch_api import submit as batch_api  # where images are prepared

    d = folder(tmp_path, 12)
    threads: set[str] = set()
    original = batch_api.prepare_leaf

    def prepare(leaf, opts):  # type: ignore[no-untyped-def]
        threads.add(threading.current_thread().name)
        return original(leaf, opts)

    monkeypatch.setattr(batch_api, "prepare_leaf", prepare)
    client = make_client(bemu)
    job = client.submit_batch("Order?", str(d / "*.png"), manifest_dir=tmp_path / "m", workers=3)
    err = capsys.readouterr().err
    assert "preparing" in err and "12/12" in err and "1 job(s) created" in err
    assert threads and all(name.startswith("azmm-batch-prepare") for name in threads)
    manifest = Manifest.load(tmp_path / "m", job.ids[0])
    assert [i["index"] for i in manifest.items] == list(range(12))
    assert [i["path"] for i in manifest.items] == [str(p) for p in sorted(d.glob("*.png"))]
    sdk = client.sdk_client()
    lines = sdk.files.content(sdk.batches.retrieve(job.ids[0]).input_file_id).content.splitlines()
    assert [json.loads(x)["custom_id"] for x in lines] == [f"item-{i:06d}" for i in range(12)]


class _Bar:
    """Records what a progress bar is told (its totals and counts over time)."""

    made: list[_Bar] = []

    def __init__(self, total, desc, unit, kernel):  # type: ignore[no-untyped-def]
        self.total, self.n, self.seen = total, 0, [(total, 0)]
        _Bar.made.append(self)

    def update(self, k):  # type: ignore[no-untyped-def]
        self.n += k
        self.seen.append((self.total, self.n))

    def set_postfix_str(self, text):  # type: ignore[no-untyped-def]
        self.seen.append((self.total, self.n))

    def close(self):  # type: ignore[no-untyped-def]
        pass


def test_one_bar_over_several_jobs_has_its_total_from_the_start_and_never_goes_back(bemu, batch_server, tmp_path,
                                                                                   monkeypatch):
    from azmm_magic.features.batch_api import jobs as batch_api  # where jobs are waited for

    batch_server.config.batch_delay = 2.0  # each job validates for 0.3 s (its request_counts.total is 0 meanwhile)
    d = folder(tmp_path, 5)
    client = make_client(bemu)
    job = client.submit_batch("Bar?", str(d / "*.png"), manifest_dir=tmp_path / "m", max_file_lines=2, progress=False)
    assert len(job.ids) == 3
    last = client.sdk_client().batches.retrieve(job.ids[-1])
    assert last.metadata["items"] == "1"  # the lines written, known while the job validates
    _Bar.made = []
    monkeypatch.setattr(batch_api, "progress_bar", _Bar)
    # the ids alone (another session, no total given): the lines come from the jobs' own metadata
    BatchJob(client, job.ids, directory=tmp_path / "m").wait(interval=0.05)
    (bar,) = _Bar.made
    assert {total for total, _ in bar.seen} == {5}
    counts = [n for _, n in bar.seen]
    assert counts == sorted(counts) and counts[-1] == 5


def test_a_lost_job_is_explained_and_submitted_again_from_its_manifest(bemu, tmp_path):
    from azmm_magic.features.batch_api import JobError

    d = folder(tmp_path, 4)
    job = make_client(bemu).submit_batch("Lost?", str(d / "*.png"), manifest_dir=tmp_path / "m", progress=False,
                                         detail="low")
    restarted = _start(batch_delay=0.3)  # an emulator that has never seen the job (as after a restart)
    try:
        client = VisionClient(endpoint=restarted.url, deployment="gpt-4o-batch", auth="none")
        lost = BatchJob(client, job.ids, directory=tmp_path / "m")
        with pytest.raises(JobError) as info:
            lost.wait(interval=0.05, progress=False)
        message = str(info.value)
        assert f"No batch job {job.ids[0]}" in message and "a job it had before it last stopped is gone" in message
        assert f"BatchJob(client, ['{job.ids[0]}']).resubmit()" in message and "\n" not in message
        again = lost.resubmit(progress=False)
        assert again.ids != job.ids
        again.wait(interval=0.05, progress=False)
        result = again.results()
        assert len(result.results) == 4 and result.sources == [str(p) for p in sorted(d.glob("*.png"))]
        assert Manifest.load(tmp_path / "m", again.ids[0]).options.get("detail") == "low"  # submitted as before
    finally:
        restarted.stop()


def test_a_picked_port_can_be_bound_again_at_once():
    import socket

    from azmm_magic.emulator.server import bind_socket

    listener = bind_socket("127.0.0.1", 0)
    port = listener.getsockname()[1]
    peer = socket.create_connection(("127.0.0.1", port))
    conn, _ = listener.accept()
    conn.close()  # the server side closes first: its end of the connection waits in TIME_WAIT
    peer.close()
    listener.close()
    again = bind_socket("127.0.0.1", port)
    assert again.getsockname()[1] == port
    again.close()


def test_jobs_magic_after_the_emulator_restarts(shell, tmp_path, monkeypatch, capsys):
    """The session's emulator stopped and started again: on the port it had (a job handle still reaches it), the
    job it forgot is explained in the magic's words and submitted again with $job; on another port (the old one
    taken meanwhile), a kept handle follows the session."""
    import socket

    from azmm_magic.features.batch_api import JobError

    monkeypatch.setenv("AZMM_BATCH_DIR", str(tmp_path / "m"))
    d = folder(tmp_path, 3)
    shell.run_line_magic("azure_vision", "emulator")
    shell.run_line_magic("config", "AzureVision.deployment = 'gpt-4o-batch'")
    url = shell.run_line_magic("config", "AzureVision.endpoint")
    assert shell.run_line_magic("azure_vision", "jobs") is None
    assert "No Batch API jobs at 127.0.0.1:" in capsys.readouterr().out

    job = shell.run_cell_magic("azure_vision", f'-i "{d}/*.png" --via batch-api -o job', "Restart?")
    shell.run_line_magic("azure_vision", "emulator stop")
    shell.run_line_magic("azure_vision", "emulator")
    assert shell.run_line_magic("config", "AzureVision.endpoint") == url  # the port it picked, at once
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("azure_vision", "jobs wait $job --interval 0.05")
    message = str(info.value)
    assert "a job it had before it last stopped is gone" in message
    assert message.endswith(f"In this notebook: %azure_vision jobs resubmit {job.ids[0]}")
    assert "resubmit()" not in message and "(client" not in message
    again = shell.run_line_magic("azure_vision", "jobs resubmit $job")
    assert isinstance(again, BatchJob) and again.ids != job.ids and "%azure_vision jobs wait" in again.summary()
    shell.user_ns["ids"] = " ".join(again.ids)
    shell.run_line_magic("azure_vision", "jobs wait $ids --interval 0.05")
    result = shell.run_line_magic("azure_vision", "jobs results $ids")
    assert len(result.results) == 3

    # the old port taken while the emulator is stopped: it starts elsewhere, and the handle follows the session
    shell.run_line_magic("azure_vision", "emulator stop")
    port = int(url.rsplit(":", 1)[1])
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", port))
    squatter.listen(1)
    try:
        shell.run_line_magic("azure_vision", "emulator")
        moved = shell.run_line_magic("config", "AzureVision.endpoint")
        assert moved != url
        assert again.client.settings.endpoint == moved
        with pytest.raises(JobError, match="a job it had before it last stopped is gone"):  # not a connection error
            again.wait(interval=0.05, progress=False)
    finally:
        squatter.close()
        shell.run_line_magic("azure_vision", "emulator stop")
