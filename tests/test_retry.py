"""THE retry policy (azmm_magic.service.retry): the SDK's rules, the 120-s cap on a server's wait, the budget;
the same decision for a single call and a batch (over real HTTP to a small loopback server that answers what
each case needs); errors that say, as data, how many attempts the request had."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from azmm_magic import VisionClient
from azmm_magic.core.errors import RateLimitError, ServiceError
from azmm_magic.service.retry import (
    MAX_RETRY_DELAY,
    MAX_SERVER_WAIT,
    RetryPolicy,
    RetryWait,
    backoff,
    retry_wait,
)
from azmm_magic.service.send import WaitEvent
from tests.conftest import make_png


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    """The SDK's exception for a response of ``status`` with ``headers`` (as its client would raise it)."""
    request = httpx.Request("POST", "http://127.0.0.1/openai/deployments/d/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request, json={"error": {"message": "no"}})
    classes = {400: openai.BadRequestError, 429: openai.RateLimitError}
    cls = classes.get(status, openai.InternalServerError if status >= 500 else openai.APIStatusError)
    return cls("no", response=response, body={"message": "no"})


# ----- the SDK's rules ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [408, 409, 429, 500, 501, 502, 503, 504, 505, 507, 599])
def test_the_statuses_the_sdk_retries_are_retried(status):
    assert retry_wait(status_error(status), 1, rand=lambda: 0.0) == RetryWait(0.5)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_statuses_are_not(status):
    assert retry_wait(status_error(status), 1) is None


def test_x_should_retry_overrides_the_status():
    assert retry_wait(status_error(500, {"x-should-retry": "false"}), 1) is None
    assert retry_wait(status_error(400, {"x-should-retry": "true"}), 1, rand=lambda: 0.0) == RetryWait(0.5)


def test_a_server_wait_is_honoured_up_to_the_cap_and_a_longer_one_is_never_waited():
    assert retry_wait(status_error(503, {"retry-after": "7"}), 1) == RetryWait(7.0, asked=True)
    assert retry_wait(status_error(503, {"retry-after-ms": "250", "retry-after": "9"}), 1) == RetryWait(0.25, asked=True)
    assert retry_wait(status_error(429, {"retry-after": str(int(MAX_SERVER_WAIT))}), 1) == RetryWait(120.0, asked=True)
    assert retry_wait(status_error(429, {"retry-after": str(int(MAX_SERVER_WAIT) + 1)}), 1) is None
    # a longer wait is not waited even when the server says to retry
    assert retry_wait(status_error(503, {"retry-after": "86400", "x-should-retry": "true"}), 1) is None
    # a wait of 0 or an unusable one falls back to backoff
    assert retry_wait(status_error(503, {"retry-after": "0"}), 1, rand=lambda: 0.0) == RetryWait(0.5)
    assert retry_wait(status_error(503, {"retry-after": "soon"}), 1, rand=lambda: 0.0) == RetryWait(0.5)


def test_timeouts_and_connection_errors_are_retried_and_nothing_else():
    request = httpx.Request("POST", "http://127.0.0.1/")
    assert retry_wait(openai.APITimeoutError(request), 1) is not None
    assert retry_wait(openai.APIConnectionError(request=request), 1) is not None
    assert retry_wait(ValueError("not the SDK's"), 1) is None


def test_backoff_doubles_to_eight_seconds_less_up_to_a_quarter():
    assert [backoff(n, rand=lambda: 0.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff(3, rand=lambda: 1.0) == 1.5 and backoff(10_000, rand=lambda: 0.0) == MAX_RETRY_DELAY


def test_the_budget_counts_retries_and_a_batch_counts_429s_apart():
    e500, e429 = status_error(500), status_error(429)
    single = RetryPolicy(2)
    assert single.decide(e500, retries=1) is not None and single.decide(e500, retries=2) is None
    wait = single.decide(e429, retries=1, throttled=1, rand=lambda: 0.0)
    assert wait == RetryWait(1.0, retry=2, retries=2)
    assert single.decide(e429, retries=2, throttled=2) is None  # a 429 is a retry like any other
    batch = RetryPolicy(1, max_throttled=30)
    wait = batch.decide(e429, retries=5, throttled=5)
    assert wait is not None and (wait.retry, wait.retries) == (6, 30)
    assert batch.decide(e429, retries=30, throttled=30) is None
    assert batch.decide(e500, retries=5, throttled=5) is not None  # the 429s do not spend the other retries
    assert batch.decide(e500, retries=6, throttled=5) is None


# ----- one decision for a single call and a batch (real HTTP) ---------------------------------------------------------
COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "loopback",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


class Scripted(ThreadingHTTPServer):
    """A loopback server: each deployment answers its script of ``(status, headers)`` in turn, then 200."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scripts: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def answer(self, deployment: str) -> tuple[int, dict[str, str]]:
        with self.lock:
            self.counts[deployment] = self.counts.get(deployment, 0) + 1
            script = self.scripts.get(deployment, [])
            return script.pop(0) if script else (200, {})


class _Handler(BaseHTTPRequestHandler):
    server: Scripted

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        deployment = self.path.split("/deployments/", 1)[-1].split("/", 1)[0]
        status, headers = self.server.answer(deployment)
        body = json.dumps(COMPLETION if status == 200 else {"error": {"message": f"status {status}", "code": None}})
        self.send_response(status)
        for name, value in {"content-type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


FAST = {"retry-after-ms": "1"}  # a retry waits 1 ms (the status decides whether it is retried)
CASES = {
    # name: (the script of one item's answers, requests it takes, failed?, what the error says)
    "x-should-retry-false": ([(500, {"x-should-retry": "false"})], 1, True, "answered 500"),
    "retry-after-503": ([(503, {"retry-after": "0.05"})], 2, False, ""),
    "retry-after-over-cap": ([(503, {"retry-after": "121"})], 1, True, "asked to wait 2.02 min"),
    "status-501": ([(501, FAST)], 2, False, ""),
    "status-507-twice": ([(507, FAST), (507, FAST)], 2, True, "answered 507 on all 2 attempts"),
}


def _ask(scripted: Scripted, deployment: str, image: Path) -> tuple[Any, list[WaitEvent]]:
    client = VisionClient(endpoint=scripted.url, deployment=deployment, auth="none", max_retries=1, cache="off")
    events: list[WaitEvent] = []
    try:
        return client.pipeline.run(client.prepare("hi", [image]), "off", on_wait=events.append), events
    except ServiceError as e:
        return e, events


def _batch(scripted: Scripted, deployment: str, image: Path) -> Any:
    client = VisionClient(endpoint=scripted.url, deployment=deployment, auth="none", max_retries=1, cache="off")
    return client.batch("hi", [image], progress=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_policy_decides_for_a_single_call_and_a_batch_alike(scripted, tmp_path, case):
    script, requests, fails, words = CASES[case]
    image = make_png(tmp_path / "a.png")
    outcomes = {}
    for how in ("ask", "batch"):
        deployment = f"{case}-{how}"
        scripted.scripts[deployment] = list(script)
        if how == "ask":
            outcome, events = _ask(scripted, deployment, image)
            if case == "retry-after-503":  # the server's wait, not backoff
                assert events[0].asked and events[0].delay == pytest.approx(0.05)
        else:
            outcome = _batch(scripted, deployment, image)
            outcome = outcome.failures[0] if outcome.failures else outcome.results[0]
        assert scripted.counts[deployment] == requests, (how, scripted.counts)
        message = getattr(outcome, "error", None) or (str(outcome) if isinstance(outcome, Exception) else "")
        assert (words in message) if fails else not message, (how, message)
        outcomes[how] = message
    assert outcomes["ask"] == outcomes["batch"]


def test_errors_carry_their_attempts(scripted, tmp_path, monkeypatch):
    image = make_png(tmp_path / "a.png")
    scripted.scripts["attempts"] = [(503, FAST)] * 3
    client = VisionClient(endpoint=scripted.url, deployment="attempts", auth="none", max_retries=2, cache="off")
    with pytest.raises(ServiceError) as info:
        client.pipeline.run(client.prepare("hi", [image]), "off")
    assert info.value.attempts == 3 and info.value.status == 503 and "all 3 attempts" in str(info.value)

    # a batch retries 429s apart from max_retries: its error counts every attempt, with no message rebuilt
    scripted.scripts["batch-429"] = [(429, {"retry-after-ms": "1"})] * 4
    batch = VisionClient(endpoint=scripted.url, deployment="batch-429", auth="none", max_retries=0, cache="off")
    from azmm_magic.features.batch import runner

    monkeypatch.setattr(runner, "MAX_THROTTLED_ATTEMPTS", 3)
    result = batch.batch("hi", [image], progress=False)
    [failure] = result.failures
    assert failure.kind == RateLimitError.__name__ and "after 3 retries" in failure.error and failure.attempts == 4
    assert scripted.counts["batch-429"] == 4
