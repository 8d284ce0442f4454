"""Issue 10's pipeline tests, end to end against the emulator over HTTP (real SDK, real InteractiveShell):

- for each option combination of the magic, the ``--dry-run`` body is the body the emulator receives for the same
  cell (data URLs aside: the preview shortens them; the placeholder states the right length);
- ``--each`` (and its re-run, as cache hits), the panel and Batch API results all reach ``%azure_vision usage``,
  a Batch API line counted once however often the results are fetched;
- identical requests in flight are sent once (40 files, 4 distinct contents: 4 requests, 40 answers);
- errors raised through the Python API speak Python, not notebook, and say what fixes them (``settings``/``remedy``).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from azmm_magic import VisionClient
from azmm_magic.core.errors import AzureVisionError
from azmm_magic.core.result import VisionResult
from azmm_magic.features.batch import BatchResult
from azmm_magic.features.batch_api import BatchJob
from azmm_magic.features.pipeline import SHARED_NOTICE
from tests.conftest import CANARY_KEY, Emulator, _start, make_png

PLACEHOLDER = re.compile(r"^(data:[^,]+),<([\d,]+) base64 chars>$")


class Picture(BaseModel):
    colour: str
    tags: list[str]


PICTURE_SCHEMA = {
    "type": "object",
    "title": "Shape",
    "properties": {"sides": {"type": "integer"}, "name": {"type": "string"}},
}


# ------------------------------------------------------------------------------------------------ helpers


def _without_data_urls(value: Any) -> Any:
    """``value`` with every data URL replaced by its prefix (``data:<type>;base64``): the preview shortens them,
    the emulator's log cuts them; both keep the prefix."""
    if isinstance(value, str):
        return value.split(",", 1)[0] if value.startswith("data:") else value
    if isinstance(value, dict):
        return {k: _without_data_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_data_urls(v) for v in value]
    return value


def _image_urls(body: dict[str, Any]) -> list[str]:
    return [
        part["image_url"]["url"]
        for message in body["messages"]
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]


def _check_preview_matches_sent(preview: Any, sent: dict[str, Any]) -> None:
    """The dry-run body equals the body received, data URLs aside; each shortened data URL states the length of
    the base64 that was really sent, and the sent data URL starts with that image's bytes."""
    assert _without_data_urls(preview.body) == _without_data_urls(sent)
    shown, received = _image_urls(preview.body), _image_urls(sent)
    assert len(shown) == len(received)
    # the images of the last user message are the request's own images; earlier ones (chat history) are checked
    # by the equality above and by their placeholder's form
    own = list(preview.request.images)
    own_urls = shown[len(shown) - len(own):]
    for url in shown:
        assert PLACEHOLDER.match(url), url
    for image, url, got in zip(own, own_urls, received[len(received) - len(own):], strict=True):
        full = f"data:{image.media_type};base64," + base64.b64encode(image.data).decode()
        head, count = PLACEHOLDER.match(url).groups()  # type: ignore[union-attr]
        assert head == f"data:{image.media_type};base64"
        assert int(count.replace(",", "")) == len(full) - len(head) - 1
        assert full.startswith(got) and len(got) >= 60  # the emulator logs the first 80 characters


def _folder(tmp_path: Path, n: int, name: str = "photos", distinct: int | None = None) -> Path:
    """``n`` small PNGs; with ``distinct``, only that many different contents (file i repeats content i % distinct)."""
    d = tmp_path / name
    d.mkdir()
    for i in range(n):
        k = i if distinct is None else i % distinct
        make_png(d / f"img{i:03d}.png", size=(40 + k, 30), color=((k * 37) % 256, 90, 200))
    return d


def _usage(shell) -> dict[str, Any]:
    view = shell.run_line_magic("azure_vision", "usage")
    assert "vision-test" in repr(view)
    return view.ledger.by_deployment()


# ------------------------------------------------------------------------------------------------ 1. dry run == sent


COMBINATIONS = {
    "stream": "-i img",
    "no-stream": "-i img --no-stream",
    "json": "-i img --json",
    "json-no-stream": "-i img --json --no-stream",
    "schema-pydantic": "-i img --schema Picture --no-stream",
    "schema-dict": "-i img --schema shape",
    "detail-low": "-i img --detail low",
    "max-tokens": "-i img --max-tokens 100 --no-stream",
    "temperature": "-i img --temperature 0.3",
    "chat": "-i img --chat trip",
    "deployment": "-i img --deployment other-deployment",
    "system": '-i img --system "Answer in one word."',
    "two-images": "-i img -i img2 --detail high --no-stream",
    "no-image": "--no-stream",
    "everything": '-i img --no-stream --detail high --max-tokens 900 --temperature 0.3 --deployment other-deployment '
                  '--system "Be brief." --json',
}


@pytest.mark.parametrize("line", list(COMBINATIONS.values()), ids=list(COMBINATIONS))
def test_dry_run_body_is_the_body_sent(shell, emulator, tmp_path, line):
    shell.user_ns.update(
        img=str(make_png(tmp_path / "red.png")),
        img2=str(make_png(tmp_path / "blue.png", size=(90, 70), color=(10, 20, 230))),
        Picture=Picture,
        shape=PICTURE_SCHEMA,
    )
    prompt = f"What is in the picture? ({line})"
    if "--chat" in line:  # a second turn: the history (with the first turn's image) is part of the body
        shell.run_cell_magic("azure_vision", "-i img2 --chat trip --no-stream", "And the first picture?")
        emulator.reset()
    preview = shell.run_cell_magic("azure_vision", f"{line} --dry-run", prompt)
    assert emulator.count() == 0 and "DRY RUN" in repr(preview)
    shell.run_cell_magic("azure_vision", f"{line} -o answer", prompt)
    (sent,) = emulator.chat_requests()
    assert sent["status"] == 200 and isinstance(shell.user_ns["answer"], VisionResult)
    _check_preview_matches_sent(preview, sent["body"])
    assert ("stream" in sent["body"]) == ("--no-stream" not in line)


def test_dry_run_bodies_when_comparing_deployments(shell, emulator, red_png):
    shell.user_ns["img"] = str(red_png)
    previews = shell.run_cell_magic("azure_vision", "-i img --deployment dep-a,dep-b --dry-run", "Compare")
    assert emulator.count() == 0 and [p.body["model"] for p in previews] == ["dep-a", "dep-b"]
    shell.run_cell_magic("azure_vision", "-i img --deployment dep-a,dep-b", "Compare")
    sent = {r["body"]["model"]: r["body"] for r in emulator.chat_requests()}
    assert sorted(sent) == ["dep-a", "dep-b"]
    for preview in previews:
        _check_preview_matches_sent(preview, sent[preview.body["model"]])


def test_each_dry_run_first_body_is_the_body_sent(shell, emulator, tmp_path):
    d = _folder(tmp_path, 1)
    preview = shell.run_cell_magic("azure_vision", f'-i "{d}/*.png" --each --detail low --max-tokens 64 --dry-run',
                                   "Each?")
    assert emulator.count() == 0 and "1 image(s)" in repr(preview)
    result = shell.run_cell_magic("azure_vision", f'-i "{d}/*.png" --each --detail low --max-tokens 64', "Each?")
    assert isinstance(result, BatchResult) and len(result.results) == 1
    (sent,) = emulator.chat_requests()
    _check_preview_matches_sent(preview.first, sent["body"])


# ------------------------------------------------------------------------------------------------ 2. usage ledger


def test_each_batch_and_its_rerun_are_in_usage(shell, emulator, tmp_path):
    d = _folder(tmp_path, 10)
    first = shell.run_cell_magic("azure_vision", f'-i "{d}/*.png" --each', "What colour?")
    assert isinstance(first, BatchResult) and len(first.results) == 10 and len(emulator.chat_requests()) == 10
    row = _usage(shell)["vision-test"]
    assert (row.calls, row.requests, row.cache_hits) == (10, 10, 0)
    assert row.input_tokens > 0 and row.output_tokens > 0

    again = shell.run_cell_magic("azure_vision", f'-i "{d}/*.png" --each', "What colour?")
    assert again.counts()["cached"] == 10 and len(emulator.chat_requests()) == 10
    row = _usage(shell)["vision-test"]
    assert (row.calls, row.requests, row.cache_hits) == (20, 10, 10)
    assert row.saved_input_tokens == row.input_tokens


def _ask_panel(panel, prompt: str) -> VisionResult:
    panel.prompt.value = prompt
    panel.send_button.click()
    assert panel.wait(60)
    assert isinstance(panel.result, VisionResult)
    return panel.result


def test_panel_answers_are_in_usage(shell, emulator, red_png):
    panel = shell.run_line_magic("azure_vision", "panel")
    panel.source_text.value = str(red_png)
    panel.add_source_button.click()
    asked = _ask_panel(panel, "Describe it")
    assert not asked.cached and len(emulator.chat_requests()) == 1
    row = _usage(shell)["vision-test"]
    assert (row.calls, row.requests, row.cache_hits) == (1, 1, 0) and row.input_tokens == asked.usage.prompt_tokens

    again = _ask_panel(panel, "Describe it")
    assert again.cached and len(emulator.chat_requests()) == 1
    row = _usage(shell)["vision-test"]
    assert (row.calls, row.requests, row.cache_hits) == (2, 1, 1)


@pytest.fixture(scope="module")
def batch_server():
    server = _start(batch_delay=0.2)
    yield server
    server.stop()


def test_batch_api_results_are_in_usage_once(shell, batch_server, tmp_path, monkeypatch):
    bemu = Emulator(batch_server)
    bemu.reset()
    monkeypatch.setenv("AZMM_BATCH_DIR", str(tmp_path / "manifests"))
    d = _folder(tmp_path, 4)
    shell.run_line_magic("config", f"AzureVision.endpoint = {bemu.url!r}")
    job = shell.run_cell_magic("azure_vision", f'-i "{d}/*.png" --each --via batch-api -o job', "Each one?")
    assert isinstance(job, BatchJob)
    (job_id,) = job.ids
    assert _usage_rows(shell) == {}  # nothing answered yet
    shell.run_line_magic("azure_vision", f"jobs wait {job_id} --interval 0.05")

    result = shell.run_line_magic("azure_vision", f"jobs results {job_id}")
    assert isinstance(result, BatchResult) and len(result.results) == 4
    row = _usage(shell)["vision-test"]
    assert (row.calls, row.requests, row.cache_hits) == (4, 4, 0)
    billed = (row.input_tokens, row.output_tokens)
    assert billed == (sum(r.usage.prompt_tokens for r in result.results),
                      sum(r.usage.completion_tokens for r in result.results))

    # fetched again, by the magic and by the Python API: the same lines are not counted again
    again = shell.run_line_magic("azure_vision", f"jobs results {job_id}")
    assert len(again.results) == 4
    assert len(job.results().results) == 4
    row = _usage(shell)["vision-test"]
    assert (row.calls, row.requests, row.cache_hits) == (4, 4, 0)
    assert (row.input_tokens, row.output_tokens) == billed
    assert bemu.chat_requests() == []  # no chat request was sent: the answers came from the job


def _usage_rows(shell) -> dict[str, Any]:
    return shell.run_line_magic("azure_vision", "usage").ledger.by_deployment()


# ------------------------------------------------------------------------------------------------ 3. in flight once


@pytest.fixture(scope="module")
def slow_server():
    server = _start(latency=0.3)
    yield server
    server.stop()


def test_identical_requests_in_flight_are_sent_once(slow_server, tmp_path):
    slow = Emulator(slow_server)
    slow.reset()
    d = _folder(tmp_path, 40, distinct=4)
    client = VisionClient(endpoint=slow.url, deployment="vision-test", auth="none")
    result = client.batch("What colour?", str(d / "*.png"), concurrency=16, progress=False)
    assert len(result) == 40 and len(result.results) == 40 and not result.failures
    assert len(slow.chat_requests()) == 4
    fresh = [r for r in result.results if not r.cached]
    shared = [r for r in result.results if r.cached]
    assert len(fresh) == 4 and len(shared) == 36
    assert any(SHARED_NOTICE in r.notices for r in shared)  # 16 in flight at once: some waited for a twin
    assert all(SHARED_NOTICE not in r.notices for r in fresh)
    # answers are matched to their own image: the 4 contents answered 4 different texts, each 10 times
    by_text: dict[str, int] = {}
    for r in result.results:
        by_text[r.text] = by_text.get(r.text, 0) + 1
    assert sorted(by_text.values()) == [10, 10, 10, 10]
    usage = client.ledger.by_deployment()["vision-test"]
    assert (usage.calls, usage.requests, usage.cache_hits) == (40, 4, 36)
    client.close()


# ------------------------------------------------------------------------------------------------ 4. neutral errors


MAGIC_SYNTAX = [
    re.compile(r"%config"),
    re.compile(r"%azure_vision"),
    re.compile(r"(^|\s|\()--[a-z]"),  # a command-line option such as --deployment, --refresh, --max-tokens
    re.compile(r"the cell", re.IGNORECASE),
    re.compile(r"press Send", re.IGNORECASE),
]


def _check_neutral(error: AzureVisionError, *, settings: tuple[str, ...] = (), remedy: str | None = None,
                   has_fix: bool = True) -> None:
    message = str(error)
    for pattern in MAGIC_SYNTAX:
        assert not pattern.search(message), f"{pattern.pattern!r} in: {message}"
    assert set(settings) <= set(error.settings), (error.settings, message)
    if remedy is not None:
        assert error.remedy == remedy, (error.remedy, message)
    if has_fix:
        assert error.settings or error.remedy, f"no settings/remedy on: {message}"


@pytest.fixture
def faulty(emulator):
    emulator.clear_faults()
    yield emulator
    emulator.clear_faults()


def _client(emu: Emulator, deployment: str, **kw: Any) -> VisionClient:
    return VisionClient(endpoint=emu.url, deployment=deployment, auth="none", max_retries=1, **kw)


def test_error_no_endpoint(red_png):
    client = VisionClient(deployment="vision-test", auth="none")
    with pytest.raises(AzureVisionError) as info:
        client.ask("What is it?", images=[red_png])
    _check_neutral(info.value, settings=("endpoint",))


def test_error_no_deployment(emulator, red_png):
    client = VisionClient(endpoint=emulator.url, auth="none")
    with pytest.raises(AzureVisionError) as info:
        client.ask("What is it?", images=[red_png])
    _check_neutral(info.value, settings=("deployment",))
    assert emulator.count() == 0


def test_error_unknown_deployment_404(keyed_emulator, red_png):
    client = VisionClient(endpoint=keyed_emulator.url, deployment="no-such-deployment", api_key=CANARY_KEY)
    with pytest.raises(AzureVisionError) as info:
        client.ask("What is it?", images=[red_png])
    assert getattr(info.value, "status", None) == 404
    _check_neutral(info.value, settings=("deployment",))


@pytest.mark.parametrize(
    ("fault", "status", "remedy"),
    # a 500 on every attempt is not called temporary (no "retry"): its message says what differs instead
    [("401", 401, "credentials"), ("429:0.01", 429, "retry"), ("500:0.01", 500, None)],
)
@pytest.mark.parametrize("how", ["ask", "stream", "batch"])
def test_error_from_service_faults(faulty, red_png, fault, status, remedy, how):
    deployment = f"neutral-{fault.split(':')[0]}-{how}"
    faulty.set_fault(deployment, fault)
    client = _client(faulty, deployment)
    if how == "batch":
        result = client.batch("What is it?", [red_png], progress=False)
        (failure,) = result.failures
        assert failure.status == status
        for pattern in MAGIC_SYNTAX:
            assert not pattern.search(failure.error), f"{pattern.pattern!r} in: {failure.error}"
        return
    with pytest.raises(AzureVisionError) as info:
        if how == "ask":
            client.ask("What is it?", images=[red_png])
        else:
            list(client.stream("What is it?", images=[red_png]))
    assert getattr(info.value, "status", None) == status
    _check_neutral(info.value, remedy=remedy, has_fix=remedy is not None)
    if remedy is None:
        assert error_says_what_differs(info.value)


def error_says_what_differs(error: AzureVisionError) -> bool:
    """A persistent server error names the attempts and what in the request may be the cause."""
    message = str(error)
    return "on all" in message and "attempts" in message and "may not accept images" in message


def test_error_through_the_header_fault(emulator, red_png):
    http = httpx.Client(headers={"x-emulator-fault": "500:0.01"})
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none", max_retries=0,
                          http_client=http)
    with pytest.raises(AzureVisionError) as info:
        client.ask("Header fault?", images=[red_png])
    assert getattr(info.value, "status", None) == 500
    _check_neutral(info.value, remedy="retry")
    http.close()


def test_error_replay_miss(tmp_path, red_png):
    client = VisionClient(endpoint="https://example.invalid/", deployment="vision-test", auth="none",
                          cache="replay", cache_path=str(tmp_path / "replay.sqlite"))
    with pytest.raises(AzureVisionError) as info:
        client.ask("Never recorded", images=[red_png])
    _check_neutral(info.value, settings=("cache",), remedy="record")


@pytest.mark.parametrize("response_format", [Picture, "json"], ids=["schema", "json"])
def test_error_structured_output_parse_failure(emulator, red_png, response_format):
    http = httpx.Client(headers={"x-emulator-fault": "malformed-json"})
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none", http_client=http)
    with pytest.raises(AzureVisionError) as info:
        client.ask("Describe as JSON.", images=[red_png], response_format=response_format)
    assert "Raw answer" in str(info.value)
    _check_neutral(info.value)
    http.close()


def test_error_for_a_bad_response_format(emulator, red_png):
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none")
    with pytest.raises(AzureVisionError) as info:
        client.ask("Describe.", images=[red_png], response_format=42)
    message = str(info.value)
    for pattern in MAGIC_SYNTAX:
        assert not pattern.search(message), f"{pattern.pattern!r} in: {message}"
    assert emulator.count() == 0


@pytest.mark.parametrize("case", ["results-too-early", "wait-timeout", "unknown-job"])
def test_error_from_batch_api_handles(batch_server, tmp_path, red_png, case):
    bemu = Emulator(batch_server)
    client = VisionClient(endpoint=bemu.url, deployment="vision-test", auth="none")
    batch_server.config.batch_delay = 5.0
    try:
        if case == "unknown-job":
            job = BatchJob(client, ["batch_nope"], directory=tmp_path)
        else:
            job = client.submit_batch("Too early?", [red_png], manifest_dir=tmp_path)
        with pytest.raises(AzureVisionError) as info:
            if case == "wait-timeout":
                job.wait(interval=0.05, timeout=0.2, progress=False)
            else:
                job.results()
        message = str(info.value)
        for pattern in MAGIC_SYNTAX:
            assert not pattern.search(message), f"{pattern.pattern!r} in: {message}"
        if case != "unknown-job":
            job.cancel()
    finally:
        batch_server.config.batch_delay = 0.2
