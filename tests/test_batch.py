"""Interactive batch (VisionClient.batch / abatch, %%azure_vision --each) against the emulator over real HTTP."""

from __future__ import annotations

import io
import _thread
import asyncio
import hashlib
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from azmm_magic import VisionClient
from azmm_magic.features.batch import BatchFailure, BatchInterrupted, BatchResult
from azmm_magic.core.errors import ConfigError
from azmm_magic.core.images import PreparedImage
from azmm_magic.core.result import VisionResult
from PIL import Image
from tests.conftest import Emulator, _start, make_png


@pytest.fixture(scope="module")
def slow_server():
    server = _start(latency=0.15)
    yield server
    server.stop()


@pytest.fixture
def slow(slow_server) -> Emulator:
    """An emulator that takes 0.15 s per answer (so requests overlap), log reset."""
    emu = Emulator(slow_server)
    emu.reset()
    return emu


@pytest.fixture(scope="module")
def limited_server():
    server = _start(latency=0.05, rpm=240, rate_window=0.5)  # 2 requests per 0.5 s window
    yield server
    server.stop()


def folder(tmp_path: Path, n: int, name: str = "photos") -> Path:
    d = tmp_path / name
    d.mkdir()
    for i in range(n):
        make_png(d / f"img{i:03d}.png", size=(40 + i, 30), color=((i * 37) % 256, 90, 200))
    return d


def garbage_image() -> PreparedImage:
    """An image the client passes through but the service cannot decode (a server-side 400)."""
    data = b"definitely not a PNG"
    return PreparedImage(data=data, media_type="image/png", width=8, height=8,
                         sha256=hashlib.sha256(data).hexdigest(), source="<garbage>")


def client_for(emu: Emulator, **kw: Any) -> VisionClient:
    return VisionClient(endpoint=emu.url, deployment="vision-test", auth="none", **kw)


def test_concurrency_bound_is_respected_and_order_kept(slow, tmp_path):
    d = folder(tmp_path, 24)
    client = client_for(slow, concurrency=4)
    result = client.batch("What colour?", str(d / "*.png"), progress=False)
    log = slow.log()
    assert 3 <= log["peak_in_flight"] <= 4
    assert len(slow.chat_requests()) == 24
    assert len(result) == 24 and not result.failures and result.counts()["ok"] == 24
    assert result.sources == [str(p) for p in sorted(d.glob("*.png"))]
    for i, r in enumerate(result):
        assert isinstance(r, VisionResult) and f"{40 + i}×30" in r.text
        # nothing shown, images read from files: an item keeps no pixels (its record still says what was sent)
        assert r.images[0].data is None and r.images[0].width == 40 + i and len(r.images[0].sha256) == 64
    assert result.stats is not None and result.stats.peak_in_flight <= 4
    # shown later, each tile's thumbnail is made from its file
    assert result._repr_mimebundle_()["text/html"].count("data:image/png;base64,") == 24  # flat colours: PNG


def test_only_a_shown_gallery_makes_thumbnails(emulator, tmp_path, monkeypatch):
    """Python API without progress: no thumbnail made for an image read from a file; an in-memory image keeps a
    small one (it cannot be read again). A view that shows pictures gets a small thumbnail per item."""
    from azmm_magic.core.images import clear_thumbnails
    from azmm_magic.core.images.thumbnails import THUMBNAIL_CACHE

    clear_thumbnails()
    made = lambda: {key[1] for key in THUMBNAIL_CACHE.keys()}  # noqa: E731 - the content ids thumbnailed
    d = folder(tmp_path, 6)
    client = client_for(emulator, cache="off")
    files = sorted(str(p) for p in d.glob("*.png"))
    in_memory = Image.new("RGB", (50, 40), (200, 30, 30))
    result = client.batch("What colour?", [*files, in_memory], progress=False)
    assert len(result.results) == 7 and made() == {result.results[6].images[0].sha256}
    assert all(r.images[0].data is None for r in result.results[:6]) and result.results[6].images[0].data

    class Pictures:  # a view that shows each item's picture (the magic's live gallery in a kernel)
        pictures = True

        def __init__(self, labels): self.added: list[int] = []
        def start(self): return self
        def add(self, index, outcome): self.added.append(index)
        def close(self, *, keep=False): pass

    clear_thumbnails()
    shown = client.batch("What colour?", files, view_factory=Pictures)
    assert made() == {r.images[0].sha256 for r in shown.results} and all(r.images[0].data for r in shown.results)

    from azmm_magic.display.gallery import BatchProgress

    # the magic's view: a live gallery in a kernel shows pictures; a terminal prints lines
    assert BatchProgress(files, kernel=True).pictures and not BatchProgress(files, kernel=False).pictures


def test_429_backs_off_and_recovers_with_no_failures(limited_server, tmp_path):
    emu = Emulator(limited_server)
    emu.reset()
    d = folder(tmp_path, 12)
    client = client_for(emu, concurrency=8)
    result = client.batch("Describe", str(d / "*.png"), progress=False)
    assert not result.failures and len(result.results) == 12
    statuses = [r["status"] for r in emu.log()["requests"]]
    assert statuses.count(200) == 12 and statuses.count(429) >= 1
    assert result.stats.throttled == statuses.count(429)
    assert result.stats.decreases >= 1


def test_emulator_429_carries_azure_headers(limited_server, red_png):
    emu = Emulator(limited_server)
    emu.reset()
    client = VisionClient(endpoint=emu.url, deployment="hdr", auth="none")
    body = client.prepare("hi", [red_png]).body()
    url = emu.url + "/openai/deployments/hdr/chat/completions?api-version=2024-10-21"
    seen = []
    for _ in range(3):
        req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                seen.append((r.status, dict(r.headers)))
        except urllib.error.HTTPError as e:
            seen.append((e.code, dict(e.headers), json.loads(e.read())))
    assert [s[0] for s in seen] == [200, 200, 429]
    assert seen[0][1]["x-ratelimit-remaining-requests"] == "1"
    headers = {k.lower(): v for k, v in seen[2][1].items()}
    assert int(headers["retry-after"]) >= 1 and 0 < int(headers["retry-after-ms"]) <= 500
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert "exceeded call rate limit" in seen[2][2]["error"]["message"]


def test_a_failed_item_never_stops_the_others(emulator, tmp_path):
    d = folder(tmp_path, 4)
    (d / "broken.png").write_bytes(b"\x89PNG not really")
    client = client_for(emulator)
    result = client.batch("What?", [str(d / "img*.png"), garbage_image(), d / "broken.png"], progress=False)
    assert len(result) == 6 and len(result.results) == 4 and len(result.failures) == 2
    server_side, local = result.failures
    assert server_side.index == 4 and server_side.status == 400 and "Invalid image data" in server_side.error
    assert local.index == 5 and local.kind == "ImageInputError" and "broken.png" in local.error
    assert server_side.attempts == 1 and local.attempts is None and "\n" not in local.error
    # errors are never cached: a re-run sends only the one that reached the service and failed again
    emulator.reset()
    again = client.batch("What?", [str(d / "img*.png"), garbage_image(), d / "broken.png"], progress=False)
    assert again.counts() == {"ok": 0, "cached": 4, "failed": 2, "missing": 0}
    assert len(emulator.chat_requests()) == 1


def test_interrupt_keeps_finished_and_rerun_sends_only_missing(slow, tmp_path):
    d = folder(tmp_path, 20)
    client = client_for(slow, concurrency=2)
    seen = []

    def on_item(index, outcome):
        seen.append(index)
        if len(seen) == 5:
            _thread.interrupt_main()  # what a kernel interrupt does: SIGINT in the main thread

    with pytest.raises(BatchInterrupted) as info:
        client.batch("Count", str(d / "*.png"), on_item=on_item, progress=False)
    partial = info.value.result
    assert isinstance(info.value, KeyboardInterrupt) and partial.interrupted
    assert 5 <= len(partial) < 20 and partial.missing == 20 - len(partial)
    assert all(isinstance(o, VisionResult) for o in partial)
    assert "interrupted" in partial.summary()
    slow.reset()
    full = client.batch("Count", str(d / "*.png"), progress=False)
    assert len(slow.chat_requests()) == 20 - len(partial)
    assert full.counts()["cached"] == len(partial) and not full.failures and len(full) == 20


def test_abatch_cancel_keeps_finished_answers_in_cache(slow, tmp_path):
    d = folder(tmp_path, 12)
    client = client_for(slow, concurrency=2)
    finished: list[int] = []

    async def main() -> None:
        done = asyncio.Event()

        def on_item(index, outcome):
            finished.append(index)
            if len(finished) == 3:
                done.set()

        task = asyncio.create_task(client.abatch("Async", str(d / "*.png"), on_item=on_item))
        await done.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    slow.reset()
    result = client.batch("Async", str(d / "*.png"), progress=False)
    assert result.counts()["cached"] >= 3
    assert len(slow.chat_requests()) == 12 - result.counts()["cached"]


def test_results_records_and_dataframe(emulator, tmp_path, monkeypatch):
    d = folder(tmp_path, 3)
    result = client_for(emulator).batch("Rows", [str(d / "*.png"), garbage_image()], progress=False)
    records = result.to_records()
    assert [r["status"] for r in records] == ["ok", "ok", "ok", "failed"]
    assert records[0]["source"].endswith("img000.png") and records[0]["prompt_tokens"] > 0
    assert records[3]["error"] and records[3]["text"] is None
    df = result.to_dataframe()
    assert list(df["status"]) == ["ok", "ok", "ok", "failed"] and df.loc[0, "completion_tokens"] > 0
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ConfigError, match="needs pandas: pip install pandas"):
        result.to_dataframe()
    bundle = result._repr_mimebundle_()
    assert "data:image/png;base64" in bundle["text/html"] and "✗" in bundle["text/html"]
    assert bundle["text/plain"].startswith("4 images · 3 answered · 0 cached · 1 failed")


def test_batch_checks_settings_before_sending(emulator, tmp_path):
    client = client_for(emulator)
    with pytest.raises(ConfigError, match="prompt is empty"):
        client.batch("   ", [tmp_path], progress=False)
    with pytest.raises(Exception, match="no image file matches"):
        client.batch("hi", str(tmp_path / "*.png"), progress=False)
    with pytest.raises(ConfigError, match="concurrency"):
        client.batch("hi", [garbage_image()], concurrency=0, progress=False)
    assert emulator.count() == 0


def test_magic_each_fills_gallery_and_reruns_from_cache(shell, emulator, tmp_path, capsys):
    d = folder(tmp_path, 5)
    shell.user_ns["pattern"] = str(d / "*.png")
    out = shell.run_cell_magic("azure_vision", '-i "{}" --each -o results'.format(d / "*.png"), "What colour?")
    assert isinstance(out, BatchResult) and shell.user_ns["results"] is out
    assert len(out.results) == 5 and len(emulator.chat_requests()) == 5
    printed = capsys.readouterr()
    assert printed.out.count("✓ #") == 5  # terminal gallery: one line per item
    assert "answered 5 · cached 0 · failed 0" in printed.err  # the tqdm bar on stderr
    again = shell.run_cell_magic("azure_vision", "-i {pattern} --each --concurrency 2", "What colour?")
    assert again.counts()["cached"] == 5 and len(emulator.chat_requests()) == 5
    dry = shell.run_cell_magic("azure_vision", "-i {pattern} --each --dry-run", "What colour?")
    assert "DRY RUN" in repr(dry) and "5 image(s)" in repr(dry) and "at most 10,240 output tokens" in repr(dry)
    assert dry.estimate.input_tokens == 5 * dry.first.estimated_prompt_tokens  # five same-size images
    assert len(emulator.chat_requests()) == 5


def test_magic_each_interrupt_stores_partial_and_reraises(shell, slow, tmp_path, capsys):
    d = folder(tmp_path, 12)
    shell.run_line_magic("config", f"AzureVision.endpoint = {slow.url!r}")
    shell.run_line_magic("config", "AzureVision.concurrency = 2")
    import azmm_magic.display.gallery as view

    original = view.BatchProgress.add
    calls = []

    def add(self, index, outcome):
        original(self, index, outcome)
        calls.append(index)
        if len(calls) == 3:
            _thread.interrupt_main()

    view.BatchProgress.add = add
    try:
        with pytest.raises(KeyboardInterrupt):
            shell.run_cell_magic("azure_vision", f'-i "{d}/*.png" --each -o partial', "Stop me")
    finally:
        view.BatchProgress.add = original
    partial = shell.user_ns["partial"]
    assert partial.interrupted and 3 <= len(partial) < 12
    assert "Interrupted:" in capsys.readouterr().err
    assert slow.log()["peak_in_flight"] <= 2


def test_each_rejects_bad_concurrency(shell, tmp_path):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="--concurrency 0"):
        shell.run_cell_magic("azure_vision", f'-i "{tmp_path}/*.png" --each --concurrency 0', "x")


def test_failure_record_is_readable_and_an_ordinary_object():
    f = BatchFailure(3, "a.png", "boom", "ServiceError", 500, None, attempts=2)
    assert str(f) == "FAILED a.png: boom" and f.attempts == 2
    assert bool(f)  # an outcome is told apart by its type, not by its truth value


def test_a_pause_the_service_asks_for_shows_in_the_progress_bar(emulator, tmp_path):
    """A 429 with Retry-After: the bar's postfix says what the batch waits for while it waits, then clears it."""
    from azmm_magic.features.progress import ProgressBar

    class Bar(ProgressBar):
        seen: list[str] = []

        def status(self, waiting: str) -> None:
            if waiting:
                Bar.seen.append(waiting)
            super().status(waiting)

    d = folder(tmp_path, 2)
    emulator.set_fault("vision-test", "429:0.6:times=1")
    try:
        client = client_for(emulator, concurrency=2)
        bars: list[Bar] = []

        def view(labels):
            bars.append(Bar(len(labels), stream=io.StringIO()))
            return bars[0]

        result = client.batch("Wait?", str(d / "*.png"), view_factory=view)
    finally:
        emulator.clear_faults()
    assert len(result.results) == 2 and not result.failures
    assert any(s.startswith("rate limited (429): retrying in 1 s (1 of 30)") for s in Bar.seen), Bar.seen
    assert bars[0].waiting == "" and "rate limited" not in bars[0].postfix()


def test_an_answer_remembers_the_budget_and_the_next_batch_starts_from_it(limited_server, tmp_path):
    """The limited emulator takes 2 requests per 0.5-s window. A batch on a deployment never seen starts with 4 in
    flight and 2 are refused; after one answer from the deployment, the batch knows the allowance from its first
    send."""
    from azmm_magic.service.limits import recall

    emu = Emulator(limited_server)
    emu.reset()
    d = folder(tmp_path, 8)
    cold = VisionClient(endpoint=emu.url, deployment="cold", auth="none", cache="off")
    first = cold.batch("Describe", str(d / "*.png"), progress=False)
    assert not first.failures and first.stats.throttled >= 2  # 4 sent at once, 2 taken

    warm = VisionClient(endpoint=emu.url, deployment="warm", auth="none", cache="off")
    warm.ask("Describe", [d / "img000.png"])
    known = recall(warm.settings.endpoint_host, "warm")
    assert known is not None and (known.limit_requests, known.window, known.remaining_requests) == (2, 0.5, 1)
    second = warm.batch("Describe", str(d / "*.png"), progress=False)
    assert not second.failures and len(second.results) == 8
    assert second.stats.throttled <= 2 <= first.stats.throttled  # paced from the start (a late send may slip)
    assert second.stats.paced >= 5


def test_rate_limit_headers_are_read_and_the_longest_window_kept():
    from azmm_magic.service.limits import RateLimits, recall, remember

    assert RateLimits.from_headers({"content-type": "application/json"}) is None
    seen = RateLimits.from_headers({"x-ratelimit-remaining-requests": "7"})
    assert seen is not None and not seen.announced and seen.room() == 7
    full = {"x-ratelimit-remaining-requests": "4", "x-ratelimit-limit-requests": "5", "x-ratelimit-reset-requests": "10s"}
    remember("h", "d", full)
    remember("h", "d", {**full, "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2.5s"})
    known = recall("h", "d")
    assert known is not None and known.window == 10.0 and known.remaining_requests == 0 and known.room() == 0
    assert recall("h", "other") is None
