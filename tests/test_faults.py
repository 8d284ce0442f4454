"""Fault matrix: every emulator fault through every frontend (the magic streaming and not, ask, stream, aask,
the interactive batch through VisionClient.batch and ``--each``, and the panel streaming and not).

Each call either recovers by the retries (azmm_magic.service.retry) or fails with ONE clear line (our exception;
a UsageError in the magic); nothing partial is cached; a cut stream keeps the text received, marked incomplete; and the next call in
the same session works. Faults are switched per deployment through the emulator's control endpoint, so each
case uses its own deployment name. In a batch, a failed item records its own line and never stops the others,
and a re-run sends only the failed items; in the panel, the error is one line inside the panel and Send works again.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest
from IPython.core.error import UsageError

from azmm_magic import VisionClient
from azmm_magic.emulator.faults import KINDS, FaultTable, parse_assignment, parse_fault
from azmm_magic.core.errors import (
    AuthError,
    BadRequestError,
    ConnectionFailedError,
    ContentFilterError,
    DeploymentNotFoundError,
    IncompleteAnswerError,
    RateLimitError,
    ServiceError,
    ServiceTimeoutError,
)
from azmm_magic.core.result import VisionResult

PROMPT = "What is in this picture?"
RETRIES = 1
HANG_TIMEOUT = 0.6  # seconds; only the hang cases use a short client timeout


@dataclass(frozen=True)
class FaultCase:
    """A fault spec and what every frontend must do with it.

    ``error``/``needle``: the exception and message pattern when the call cannot recover (``None``: it recovers).
    ``stream_error``/``stream_needle``: override for streaming frontends (a cut stream cannot be retried).
    """

    spec: str
    error: type[Exception] | None = None
    needle: str = ""
    stream_error: type[Exception] | None = None
    stream_needle: str = ""
    min_requests: int = 1

    def expected(self, streaming: bool) -> tuple[type[Exception] | None, str]:
        if streaming and self.stream_error is not None:
            return self.stream_error, self.stream_needle
        return self.error, self.needle


FAULT_CASES = [
    FaultCase("429:0.01:times=1", min_requests=2),
    FaultCase("429:0.01", RateLimitError, r"rate limited \(429\) after 1 retry.*Wait and try again", min_requests=2),
    FaultCase("500:0.01:times=1", min_requests=2),
    FaultCase("500:0.01", ServiceError, r'answered 500 on all 2 attempts \(server: "The server had an error.*"\)\. '
              r"The same error every time points at the request.*may not accept images \(this request has 1",
              min_requests=2),
    FaultCase("503:0.01:times=1", min_requests=2),
    FaultCase("503:0.01", ServiceError, r'answered 503 on all 2 attempts \(server: "The service is temporarily.*"\)\. '
              r"The service is unavailable or overloaded: try again", min_requests=2),
    FaultCase("408:0.01:times=1", min_requests=2),
    FaultCase("408:0.01", ServiceError, r"answered 408 on all 2 attempts", min_requests=2),
    FaultCase("latency:0.2"),
    FaultCase("hang:times=1", min_requests=2),
    FaultCase("hang", ServiceTimeoutError, r"No answer from .* within 0.6 s \(tried 2 times\).*timeout",
              min_requests=2),
    FaultCase("drop:times=1", min_requests=2),
    FaultCase("drop", ConnectionFailedError, r"dropped the connection before the answer was complete.*try again",
              min_requests=2),
    FaultCase("cut:times=1", stream_error=IncompleteAnswerError, stream_needle=r"cut off after \d+ characters"),
    FaultCase("cut", ConnectionFailedError, r"dropped the connection", IncompleteAnswerError,
              r"cut off after \d+ characters.*not cached"),
    FaultCase("content_filter", ContentFilterError,
              r"content filter blocked the prompt \(categories: violence \(medium\)\)\. Rephrase"),
    FaultCase("content_filter_answer:self_harm", ContentFilterError,
              r"content filter blocked the answer \(categories: self_harm \(medium\)\)"),
    FaultCase("401", AuthError, r"rejected the credentials \(401\): check the API key \(AZURE_OPENAI_API_KEY\)"),
    FaultCase("404", DeploymentNotFoundError, r"Deployment 'f-.*' was not found at http://127\.0\.0\.1.*\(404\)"),
    FaultCase("api_version", BadRequestError, r"does not accept api-version '2024-10-21'.*OPENAI_API_VERSION"),
]
FRONTENDS = ["magic-stream", "magic-no-stream", "ask", "stream", "aask"]
STREAMING = {"magic-stream", "stream"}


def _deployment(case: FaultCase, frontend: str) -> str:
    return "f-" + "".join(c if c.isalnum() else "-" for c in case.spec) + "-" + frontend


def _timeout(case: FaultCase) -> float:
    return HANG_TIMEOUT if case.spec.startswith("hang") else 30.0


def _check_one_line(message: str) -> None:
    assert message and "\n" not in message, message
    assert "Traceback" not in message and "File \"" not in message, message
    assert len(message) < 400, message


class _Session:
    """One frontend in one session: the same shell / the same VisionClient for the faulted and the next call."""

    def __init__(self, frontend: str, emulator, shell, image: str, case: FaultCase, capsys) -> None:
        self.frontend = frontend
        self.deployment = _deployment(case, frontend)
        self.shell = shell
        self.image = image
        self.capsys = capsys
        self.streamed: list[str] = []
        if frontend.startswith("magic"):
            shell.run_line_magic("config", f"AzureVision.max_retries = {RETRIES}")
            shell.run_line_magic("config", f"AzureVision.timeout = {_timeout(case)}")
            shell.user_ns["img"] = image
            self.client = None
        else:
            self.client = VisionClient(
                endpoint=emulator.url, deployment=self.deployment, auth="none", max_retries=RETRIES,
                timeout=_timeout(case),
            )

    def call(self) -> VisionResult:
        if self.frontend.startswith("magic"):
            self.shell.user_ns.pop("answer", None)
            line = f"-i img --deployment {self.deployment} -o answer"
            if self.frontend == "magic-no-stream":
                line += " --no-stream"
            self.shell.run_cell_magic("azure_vision", line, PROMPT)
            return self.shell.user_ns["answer"]
        assert self.client is not None
        if self.frontend == "ask":
            return self.client.ask(PROMPT, images=[self.image])
        if self.frontend == "aask":
            return asyncio.run(self.client.aask(PROMPT, images=[self.image]))
        self.streamed = []
        final = None
        for item in self.client.stream(PROMPT, images=[self.image]):
            if isinstance(item, str):
                self.streamed.append(item)
            else:
                final = item
        assert isinstance(final, VisionResult)
        assert "".join(self.streamed) == final.text
        return final

    def cache_entries(self) -> int:
        if self.client is not None:
            assert self.client.cache is not None
            return self.client.cache.stats().entries
        return self.shell.magics_manager.registry["AzureVision"].answer_cache.stats().entries


@pytest.fixture
def faults(emulator):
    emulator.clear_faults()
    yield emulator
    emulator.clear_faults()


@pytest.mark.parametrize("frontend", FRONTENDS)
@pytest.mark.parametrize("case", FAULT_CASES, ids=[c.spec for c in FAULT_CASES])
def test_fault_matrix(case: FaultCase, frontend: str, faults, shell, red_png, capsys):
    emulator = faults
    session = _Session(frontend, emulator, shell, str(red_png), case, capsys)
    emulator.set_fault(session.deployment, case.spec)
    streaming = frontend in STREAMING
    expected, needle = case.expected(streaming)
    n0 = emulator.count()

    if expected is None:  # recovers (by the retries, or the fault only slows the answer)
        result = session.call()
        assert "Azure OpenAI emulator" in result.text and result.finish_reason == "stop"
        assert not result.incomplete
        assert emulator.count() - n0 >= case.min_requests
        assert session.cache_entries() == 1
        return

    capsys.readouterr()
    if frontend.startswith("magic"):
        with pytest.raises(UsageError) as info:
            session.call()
        error = info.value.__cause__
        assert isinstance(error, expected), repr(error)
        # the magic shows the core's neutral message, then its own hint (what to do in a notebook)
        assert str(info.value).startswith(str(error))
        assert "%config" not in str(error) and "the cell" not in str(error)
    else:
        with pytest.raises(expected) as info:
            session.call()
        error = info.value
    message = str(error)
    _check_one_line(message)
    assert __import__("re").search(needle, message), message
    assert emulator.count() - n0 >= case.min_requests
    assert session.cache_entries() == 0, "an error or a partial answer was cached"
    printed = capsys.readouterr().out
    streamed_at_error = "".join(session.streamed)

    # the next call in the same session works, and reaches the emulator (nothing was cached)
    emulator.clear_faults()
    n1 = emulator.count()
    result = session.call()
    assert "Azure OpenAI emulator" in result.text and not result.cached
    assert emulator.count() == n1 + 1
    assert session.cache_entries() == 1

    if expected is IncompleteAnswerError:  # the text received so far is kept, marked incomplete
        assert isinstance(error, IncompleteAnswerError)
        partial = error.partial_text
        assert partial and result.text.startswith(partial) and len(partial) < len(result.text)
        if frontend == "stream":  # every piece before the cut was yielded to the caller
            assert streamed_at_error == partial
        else:  # magic in a terminal shell: the partial text was printed live (less a line's trailing space),
            # then the INCOMPLETE mark
            assert partial.rstrip() in printed and "[INCOMPLETE: the answer was cut off (not cached)]" in printed


def test_cut_stream_yields_partial_text_before_the_error(faults, red_png):
    faults.set_fault("cut-gen", "cut:4")
    client = VisionClient(endpoint=faults.url, deployment="cut-gen", auth="none", max_retries=RETRIES)
    received: list[str] = []
    with pytest.raises(IncompleteAnswerError) as info:
        for item in client.stream(PROMPT, images=[red_png]):
            received.append(item)  # type: ignore[arg-type]
    assert len(received) == 4 and all(isinstance(t, str) for t in received)
    assert "".join(received) == info.value.partial_text
    assert client.cache is not None and client.cache.stats().entries == 0


def test_kernel_stream_view_marks_a_cut_answer_incomplete(monkeypatch):
    from azmm_magic.display.stream import StreamView

    shown: list[dict] = []

    class Handle:
        def update(self, bundle, raw=True):
            shown.append(bundle)

    monkeypatch.setattr("IPython.display.display", lambda *a, **k: Handle())
    view = StreamView(kernel=True, max_rate=0).start()
    view.add("The first words")
    view.close(keep=True, note="INCOMPLETE: the answer was cut off (not cached)")
    assert "The first words" in shown[-1]["text/html"] and "INCOMPLETE" in shown[-1]["text/html"]
    assert "writing…" not in shown[-1]["text/html"]


def test_retry_after_headers_and_azure_shapes(emulator):
    """The wire format of a few faults, read with plain urllib (no SDK in between)."""
    url = emulator.url + "/openai/deployments/shape/chat/completions?api-version=2024-10-21"
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()

    def post(fault: str) -> tuple[int, dict, dict]:
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"content-type": "application/json", "x-emulator-fault": fault})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.loads(e.read())

    status, headers, data = post("429:2.5")
    assert status == 429 and headers["retry-after"] == "3" and headers["retry-after-ms"] == "2500"
    assert data["error"]["code"] == "429"
    status, _, data = post("content_filter:hate")
    inner = data["error"]["innererror"]
    assert status == 400 and data["error"]["code"] == "content_filter" and data["error"]["param"] == "prompt"
    assert inner["code"] == "ResponsibleAIPolicyViolation"
    assert inner["content_filter_result"]["hate"] == {"filtered": True, "severity": "medium"}
    assert inner["content_filter_result"]["violence"] == {"filtered": False, "severity": "safe"}
    assert inner["content_filter_result"]["jailbreak"] == {"filtered": False, "detected": False}
    status, _, data = post("content_filter_answer")
    choice = data["choices"][0]
    assert status == 200 and choice["finish_reason"] == "content_filter"
    assert choice["content_filter_results"]["violence"]["filtered"] is True
    status, _, data = post("404")
    assert status == 404 and data["error"]["code"] == "DeploymentNotFound"
    status, _, data = post("nonsense")
    assert status == 400 and "unknown fault kind" in data["error"]["message"]
    logged = [r.get("fault") for r in emulator.chat_requests()]
    assert logged[:4] == ["429:2.5", "content_filter:hate", "content_filter_answer", "404"]


def test_header_fault_counts_per_value(emulator, red_png):
    """``x-emulator-fault`` with times=N: the first N requests carrying that value fail, then they pass."""
    import httpx

    emulator.clear_faults()
    http = httpx.Client(headers={"x-emulator-fault": "503:0.01:times=2:id=header-test"})
    client = VisionClient(endpoint=emulator.url, deployment="hdr", auth="none", max_retries=2, http_client=http)
    n0 = emulator.count()
    result = client.ask(PROMPT, images=[red_png])
    assert result.finish_reason == "stop" and emulator.count() - n0 == 3
    assert [r.get("fault") for r in emulator.chat_requests()][-3:] == ["503:0.01:times=2:id=header-test"] * 2 + [None]
    emulator.clear_faults()


def test_control_endpoint_lists_adds_and_clears(emulator):
    emulator.clear_faults()
    emulator.set_fault("a", "429:times=2")
    emulator.set_fault("*", "latency:0.01")
    with urllib.request.urlopen(emulator.url + "/_emulator/faults", timeout=10) as r:
        listed = json.loads(r.read())["faults"]
    assert {"deployment": "a", "fault": "429:times=2", "remaining": 2} in listed
    assert {"deployment": "*", "fault": "latency:0.01", "remaining": None} in listed
    req = urllib.request.Request(emulator.url + "/_emulator/faults", data=b'{"fault": "boom"}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 400 and "unknown fault kind" in json.loads(info.value.read())["error"]["message"]
    emulator.clear_faults()
    with urllib.request.urlopen(emulator.url + "/_emulator/faults", timeout=10) as r:
        assert json.loads(r.read())["faults"] == []


def test_fault_table_precedence_and_counts():
    table = FaultTable(["*=500", "x=429:times=1"])
    assert table.select("x", None).kind == "429"  # the deployment's own fault first
    assert table.select("x", None).kind == "500"  # used up: the '*' fault applies
    assert table.select("y", "drop").kind == "drop"  # a header wins
    assert table.select("y", "404:times=1").kind == "404"
    assert table.select("y", "404:times=1").kind == "500"  # header count used up
    assert table.clear() == 2 and table.select("x", None) is None


@pytest.mark.parametrize(
    "spec, message",
    [
        ("teapot", "unknown fault kind"),
        ("429:soon", "not a number"),
        ("latency", "needs seconds"),
        ("429:times=0", "at least 1"),
        ("drop:3", "takes no argument"),
        ("content_filter:rude", "category must be one of"),
        ("hang:-1", "finite and >= 0"),
    ],
)
def test_bad_fault_specs_are_rejected(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_fault(spec)


def test_every_kind_parses_and_is_documented():
    import azmm_magic.emulator.faults as faults_module

    for kind in KINDS:
        spec = {"latency": "latency:0.1", "stream_shape": "stream_shape:none"}.get(kind, kind)
        assert parse_fault(spec).kind == kind
        assert f"``{kind}" in faults_module.__doc__
    assert parse_assignment("vision=429:1:times=2")[1].times == 2
    with pytest.raises(ValueError, match="DEPLOYMENT=KIND"):
        parse_assignment("429")


def test_cli_fault_flag(tmp_path, red_png):
    from azmm_magic.emulator.server import start_subprocess

    proc, url = start_subprocess(["--fault", "vision=404", "--fault", "*=429:0.01:times=1"])
    try:
        client = VisionClient(endpoint=url, deployment="vision", auth="none", max_retries=0)
        with pytest.raises(DeploymentNotFoundError):
            client.ask(PROMPT, images=[red_png])
        other = VisionClient(endpoint=url, deployment="other", auth="none", max_retries=1)
        assert other.ask(PROMPT, images=[red_png]).finish_reason == "stop"  # 429 once, then recovered
    finally:
        proc.terminate()
        proc.wait(10)
    bad = subprocess.run([sys.executable, "-m", "azmm_magic.emulator", "--port", "0", "--fault", "vision=teapot"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown fault kind" in bad.stderr


def test_wrong_kind_of_http_client_is_one_clear_config_error(emulator):
    """The header route needs an http_client; giving the async API a sync client must not escape as TypeError."""
    import httpx

    from azmm_magic.core.errors import ConfigError

    client = VisionClient(endpoint=emulator.url, deployment="x", auth="none", http_client=httpx.Client())
    with pytest.raises(ConfigError, match=r"http_client.*aask an async one") as info:
        asyncio.run(client.aask(PROMPT))
    _check_one_line(str(info.value))
    assert emulator.count() == 0


# ----- the same faults through the interactive batch (VisionClient.batch and %%azure_vision --each) ----------------
BATCH_FRONTENDS = ["batch", "each"]
BATCH_IMAGES = 3


def _batch_needle(case: FaultCase) -> str:
    """The batch retries 429s itself (up to MAX_THROTTLED_ATTEMPTS, pausing as asked), so it says so."""
    from azmm_magic.features.batch import MAX_THROTTLED_ATTEMPTS

    if case.spec.startswith("429"):
        return rf"rate limited \(429\) after {MAX_THROTTLED_ATTEMPTS} retries.*Wait and try again"
    return case.needle


class _BatchSession:
    """One batch frontend in one session: the same shell (or the same cache, for VisionClient) for every run."""

    def __init__(self, frontend: str, emulator, shell, folder, case: FaultCase) -> None:
        self.frontend = frontend
        self.emulator = emulator
        self.shell = shell
        self.folder = folder
        self.case = case
        self.deployment = _deployment(case, frontend)
        self.cache = None

    def run(self, retries: int) -> object:
        from azmm_magic.features.batch import BatchResult

        if self.frontend == "each":
            self.shell.run_line_magic("config", f"AzureVision.max_retries = {retries}")
            self.shell.run_line_magic("config", f"AzureVision.timeout = {_timeout(self.case)}")
            self.shell.user_ns.pop("out", None)
            line = f'-i "{self.folder}/*.png" --each --deployment {self.deployment} -o out'
            returned = self.shell.run_cell_magic("azure_vision", line, PROMPT)
            assert returned is self.shell.user_ns["out"]
        else:
            client = VisionClient(endpoint=self.emulator.url, deployment=self.deployment, auth="none",
                                  max_retries=retries, timeout=_timeout(self.case), answer_cache=self.cache)
            self.cache = client.cache
            returned = client.batch(PROMPT, str(self.folder / "*.png"), progress=False)
        assert isinstance(returned, BatchResult) and len(returned) == returned.total == BATCH_IMAGES
        return returned

    def cache_entries(self) -> int:
        if self.frontend == "each":
            return self.shell.magics_manager.registry["AzureVision"].answer_cache.stats().entries
        assert self.cache is not None
        return self.cache.stats().entries


def _image_folder(tmp_path) -> object:
    from tests.conftest import make_png

    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(BATCH_IMAGES):
        make_png(folder / f"img{i}.png", size=(40 + i, 30), color=(30 * i, 90, 200))
    return folder


def _check_failures(result, expected: type[Exception], needle: str | None, printed: str | None) -> None:
    """Every failed item holds one clear line of its own; the --each output has one ✗ line per failed item."""
    for failure in result.failures:
        _check_one_line(failure.error)
        assert failure.kind == expected.__name__, failure
        if needle is not None:
            assert __import__("re").search(needle, failure.error), failure.error
    if printed is not None:
        marks = [line for line in printed.splitlines() if line.startswith("✗ #")]
        assert len(marks) == len(result.failures), printed
        assert all("[failed]: " in line for line in marks), printed


@pytest.mark.parametrize("frontend", BATCH_FRONTENDS)
@pytest.mark.parametrize("case", FAULT_CASES, ids=[c.spec for c in FAULT_CASES])
def test_fault_matrix_batch(case: FaultCase, frontend: str, faults, shell, tmp_path, capsys):
    """A batch of 3 images: the fault hits every request, then only one; failed items never stop the others,
    record one line each, are never cached, and a re-run sends only them (counted at the emulator)."""
    emulator = faults
    session = _BatchSession(frontend, emulator, shell, _image_folder(tmp_path), case)
    expected = case.error
    emulator.set_fault(session.deployment, case.spec)
    n0 = emulator.count()
    capsys.readouterr()
    result = session.run(RETRIES)
    printed = capsys.readouterr().out if frontend == "each" else None

    if expected is None:  # every item recovers (retried, or only slowed down) and is cached
        assert not result.failures and result.counts()["ok"] == BATCH_IMAGES, result.summary()
        assert all("Azure OpenAI emulator" in r.text and r.finish_reason == "stop" for r in result)
        assert emulator.count() - n0 >= BATCH_IMAGES + case.min_requests - 1
        assert session.cache_entries() == BATCH_IMAGES
        n1 = emulator.count()
        again = session.run(RETRIES)  # the next run is answered from the cache
        assert again.counts()["cached"] == BATCH_IMAGES and emulator.count() == n1
        return

    # 1. the fault hits every request: every item fails with its own clear line; nothing is cached
    assert len(result.failures) == BATCH_IMAGES, result.summary()
    _check_failures(result, expected, _batch_needle(case), printed)
    assert emulator.count() - n0 >= BATCH_IMAGES * case.min_requests
    assert session.cache_entries() == 0, "an error was cached"

    # 2. the fault hits one request only (no retries): that item fails, the others are answered and cached
    emulator.clear_faults()
    emulator.set_fault(session.deployment, case.spec + ":times=1")
    n1 = emulator.count()
    capsys.readouterr()
    result = session.run(0)
    printed = capsys.readouterr().out if frontend == "each" else None
    failed = len(result.failures)
    if case.spec.startswith("429"):  # the batch waits out a 429 by itself, whatever max_retries says
        assert failed == 0 and emulator.count() - n1 == BATCH_IMAGES + 1
    else:
        assert failed == 1 and emulator.count() - n1 == BATCH_IMAGES
    _check_failures(result, expected, None, printed)
    assert result.counts()["ok"] == BATCH_IMAGES - failed
    assert session.cache_entries() == BATCH_IMAGES - failed

    # 3. the next run in the same session sends only the failed items, and they are answered
    emulator.clear_faults()
    n2 = emulator.count()
    result = session.run(RETRIES)
    assert emulator.count() - n2 == failed
    assert not result.failures and result.counts() == {"ok": failed, "cached": BATCH_IMAGES - failed, "failed": 0,
                                                       "missing": 0}
    assert session.cache_entries() == BATCH_IMAGES


# ----- the same faults through the panel (VisionPanel driven from Python: Send button, wait) --------------------
PANEL_FRONTENDS = ["panel-stream", "panel-no-stream"]


def _plain(html_text: str) -> str:
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", html_text)).strip()


@pytest.mark.parametrize("frontend", PANEL_FRONTENDS)
@pytest.mark.parametrize("case", FAULT_CASES, ids=[c.spec for c in FAULT_CASES])
def test_fault_matrix_panel(case: FaultCase, frontend: str, faults, shell, red_png):
    """The panel shows one clear error line for an unrecovered fault, the partial text of a cut stream marked
    incomplete, re-enables Send, caches nothing partial, and the next Send works."""
    import re

    emulator = faults
    streaming = frontend == "panel-stream"
    shell.run_line_magic("config", f"AzureVision.max_retries = {RETRIES}")
    shell.run_line_magic("config", f"AzureVision.timeout = {_timeout(case)}")
    shell.run_line_magic("config", f"AzureVision.stream = {streaming}")
    panel = shell.run_line_magic("azure_vision", "panel")
    deployment = _deployment(case, frontend)
    panel.deployment.value = deployment
    panel.source_text.value = str(red_png)
    panel.add_source_button.click()
    panel.prompt.value = PROMPT
    magics = shell.magics_manager.registry["AzureVision"]

    def send() -> None:
        panel.send_button.click()
        assert panel.wait(60)
        assert not panel.send_button.disabled and panel.stop_button.disabled and not panel.busy

    emulator.set_fault(deployment, case.spec)
    expected, needle = case.expected(streaming)
    n0 = emulator.count()
    send()
    assert emulator.count() - n0 >= case.min_requests
    if expected is None:
        assert panel.result is not None and "Azure OpenAI emulator" in panel.result.text
        assert not panel.result.incomplete and panel.message.value == ""
        assert magics.answer_cache.stats().entries == 1
        return

    message = _plain(panel.message.value)
    _check_one_line(message)
    # the panel says "press Send again" where the magic says "re-run the cell"
    assert re.search(needle.replace("re-run the cell", "re-run").replace("re-run", "(?:re-run|[Pp]ress Send)"), message), message
    assert "re-run the cell" not in message.lower()
    assert magics.answer_cache.stats().entries == 0, "an error or a partial answer was cached"
    partial = None
    if expected is IncompleteAnswerError:  # the text received so far is shown, marked incomplete
        assert panel.result is not None and panel.result.incomplete and len(panel.history) == 1
        partial = panel.result.text
        assert partial and "INCOMPLETE" in panel.answer.value
        from azmm_magic.display.untrusted import markdown_html as markdown_to_html

        assert _plain(markdown_to_html(partial)) in _plain(panel.answer.value)
    else:  # no answer at all: nothing half-shown, nothing in the history
        assert panel.result is None and panel.history == [] and _plain(panel.answer.value) == ""

    # the next Send in the same panel works, reaches the emulator and clears the error line
    emulator.clear_faults()
    n1 = emulator.count()
    send()
    assert emulator.count() == n1 + 1
    assert panel.result is not None and "Azure OpenAI emulator" in panel.result.text and not panel.result.incomplete
    assert panel.message.value == "" and "Azure OpenAI emulator" in panel.answer.value
    assert magics.answer_cache.stats().entries == 1
    if partial is not None:
        assert panel.result.text.startswith(partial) and len(partial) < len(panel.result.text)
