"""The trust boundary: what a server, a file or a model sends never becomes a path, a credential sent elsewhere, a
live tag, a terminal command or an unbounded wait. Hostile replies come over real HTTP from a loopback server
(HostileServer below) to the real SDK; the emulator is the real one."""

from __future__ import annotations

import asyncio
import json
import math
import stat
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from azmm_magic import VisionClient
from azmm_magic.core.errors import AzureVisionError, ConfigError, RateLimitError
from azmm_magic.core.images import prepare_images
from azmm_magic.core.result import VisionResult
from azmm_magic.display.untrusted import label, markdown_html, markdown_text, terminal
from azmm_magic.features.batch_api import BatchJob
from azmm_magic.service.limits import RateLimits
from azmm_magic.store.cache import MemoryCache, SQLiteCache, export_jsonl, import_jsonl
from tests.conftest import CANARY_KEY, Emulator, _start, make_png

# ----- a hostile OpenAI-compatible server on loopback: answers each route with whatever a test sets -----------------
Reply = tuple[int, dict[str, str], bytes]


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return status, {"content-type": "application/json", **(headers or {})}, json.dumps(body).encode()


class HostileServer:
    """``routes``: ``(method, path prefix) -> reply or callable(path, body) -> reply``; first match wins.
    ``seen``: (method, path, headers) of every request."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, str, Reply | Callable[[str, bytes], Reply]]] = []
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                for method, prefix, reply in outer.routes:
                    if method == self.command and self.path.split("?")[0].startswith(prefix):
                        status, headers, data = reply(self.path, body) if callable(reply) else reply
                        break
                else:
                    status, headers, data = json_reply({"error": {"message": "no route"}}, 404)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def route(self, method: str, prefix: str, reply: Reply | Callable[[str, bytes], Reply]) -> None:
        self.routes.append((method, prefix, reply))

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(text: str, model: str = "gpt-4o") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}


SAS = "https://acct.blob.core.windows.net/photos/cat.png?sv=2024-08-04&se=2030-01-01&sp=r&sig=SECRETsig%3D"
EVIL = '<img src=x onerror="alert(1)">'
ESCAPES = "\x1b]52;c;ZXZpbA==\x07\x1b[2J\x1b[31m"


def _raw_html(text: str) -> str:
    """Render Markdown with a renderer that ALLOWS raw HTML (as some frontends do)."""
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark", {"html": True}).render(text))


class _Tags(HTMLParser):
    """Every tag and attribute in an HTML text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


SAFE_TAGS = {"p", "em", "strong", "code", "pre", "a", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li",
             "blockquote", "hr", "br", "table", "thead", "tbody", "tr", "th", "td"}


def _assert_inert(rendered: str) -> None:
    parser = _Tags()
    parser.feed(rendered)
    for tag, attrs in parser.tags:
        assert tag in SAFE_TAGS, (tag, rendered)
        for name, value in attrs:
            assert name in ("href", "class", "start", "rel", "title", "style"), (name, rendered)
            if name == "href":
                assert (value or "").startswith(("http://", "https://", "mailto:")), rendered


def _client(url: str, **kw) -> VisionClient:
    return VisionClient(endpoint=url + "/v1", deployment="gpt-4o", auth="none", cache="off", **kw)


# ----- 1. server-chosen ids ------------------------------------------------------------------------------------
def _batch_routes(server: HostileServer, batch_id: str) -> None:
    server.route("POST", "/v1/files", json_reply({"id": "file-in", "object": "file", "status": "processed",
                                                  "purpose": "batch", "bytes": 1, "created_at": 0, "filename": "x"}))
    server.route("POST", "/v1/batches", json_reply({
        "id": batch_id, "object": "batch", "status": "validating", "endpoint": "/chat/completions",
        "input_file_id": "file-in", "completion_window": "24h", "created_at": 0}))


def test_a_batch_id_that_is_a_path_is_refused_and_nothing_is_written(tmp_path, red_png):
    manifests = tmp_path / "a" / "b" / "manifests"
    with HostileServer() as server:
        _batch_routes(server, "../../pwn")
        with pytest.raises(AzureVisionError, match="Unusable batch id '../../pwn'"):
            _client(server.url).submit_batch("colour?", [str(red_png)], manifest_dir=str(manifests))
    assert not list(tmp_path.rglob("*.json")), "a file was written from the server's id"
    with pytest.raises(AzureVisionError, match="Unusable batch id"):  # a handle rebuilt from an id checks it too
        BatchJob(_client("http://127.0.0.1:9"), ["batch_1", "../../pwn"])


def test_manifests_are_private(emulator, tmp_path, red_png):
    client = VisionClient(endpoint=emulator.url, deployment="gpt-4o-batch", auth="none")
    job = client.submit_batch("colour?", [str(red_png)], manifest_dir=str(tmp_path / "m"))
    (path,) = (tmp_path / "m").iterdir()
    assert path.name == f"{job.ids[0]}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o700


def test_malformed_output_lines_fail_alone_and_custom_ids_are_never_paths(tmp_path, monkeypatch):
    make_png(tmp_path / "item-3.png").rename(tmp_path / "item-3")  # a local file named like a custom_id: never opened for a thumbnail
    monkeypatch.chdir(tmp_path)
    lines = [
        b"{not json at all",
        json.dumps({"custom_id": "/etc/hostname", "response": {"status_code": 200, "body": completion("x")}}).encode(),
        json.dumps({"custom_id": "item-1", "response": "not an object"}).encode(),
        json.dumps({"custom_id": "item-2", "response": {"status_code": 200, "body": completion(f"ok {EVIL}")}}).encode(),
        json.dumps({"custom_id": "item-3", "response": {"status_code": 200, "body": completion("three")}}).encode(),
    ]
    with HostileServer() as server:
        server.route("GET", "/v1/batches/batch_1", json_reply({
            "id": "batch_1", "object": "batch", "status": "completed", "endpoint": "/chat/completions",
            "input_file_id": "file-in", "completion_window": "24h", "created_at": 0, "output_file_id": "file-out",
            "request_counts": {"total": 5, "completed": 5, "failed": 0}}))
        server.route("GET", "/v1/files/file-out/content", (200, {"content-type": "application/octet-stream"},
                                                           b"\n".join(lines)))
        result = BatchJob(_client(server.url), ["batch_1"], directory=tmp_path / "m").results()
    kinds = {result.source_of(i): type(o).__name__ for i, o in zip(result.indices(), result, strict=True)}
    assert kinds == {"<custom_id item-1>": "BatchFailure", "<custom_id item-2>": "VisionResult",
                     "<custom_id item-3>": "VisionResult"}
    assert "Unreadable output line" in result.failures[0].error
    assert sum("was skipped" in n for n in result.notices) == 2
    page = result._repr_mimebundle_()["text/html"]
    assert "data:image" not in page and "/etc/hostname" not in page and "<img src=x" not in page


# ----- 2. keys only to their own hosts ---------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["http://192.168.1.50:11434/v1", "https://example.com/v1"])
def test_an_environment_key_is_not_sent_to_another_kind_of_host(monkeypatch, endpoint):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", CANARY_KEY)
    with pytest.raises(ConfigError) as caught:
        VisionClient(endpoint=endpoint, deployment="d").sdk_client()
    message = str(caught.value)
    assert "\n" not in message and CANARY_KEY not in message and ("https://" in message or "api_key=" in message)


def test_keys_go_where_they_belong(monkeypatch, keyed_emulator, red_png):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", CANARY_KEY)
    VisionClient(endpoint="https://res.openai.azure.com/", deployment="d").sdk_client()  # its own kind: built
    VisionClient(endpoint="https://example.com/v1", deployment="d", auth="key").sdk_client()  # sent on purpose
    VisionClient(endpoint="https://example.com/v1", deployment="d", api_key="other").sdk_client()  # given for it
    with pytest.raises(ConfigError, match="plain http"):  # never over plain http to another machine
        VisionClient(endpoint="http://192.168.1.50/v1", deployment="d", api_key="given").sdk_client()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    with pytest.raises(ConfigError, match="only sent to OpenAI hosts"):
        VisionClient(endpoint="https://res.openai.azure.com/", deployment="d").sdk_client()
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", CANARY_KEY)
    answer = VisionClient(endpoint=keyed_emulator.url, deployment="vision").ask("colour?", str(red_png))
    assert answer.text  # loopback: the environment key is sent


def test_the_magic_refuses_an_environment_key_for_another_host(shell, monkeypatch, red_png):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", CANARY_KEY)
    shell.run_line_magic("config", "AzureVision.endpoint = 'http://192.168.1.50:11434/v1'")
    with pytest.raises(UsageError, match="plain http"):
        shell.run_cell_magic("azure_vision", f"-i {red_png}", "What colour?")


# ----- 3. signed URLs in labels ----------------------------------------------------------------------------------
def test_a_sas_url_is_sent_but_never_shown(emulator):
    client = VisionClient(endpoint=emulator.url, deployment="vision", auth="none", cache="off")
    answer = client.ask("What is it?", SAS)
    sent = emulator.chat_requests()[-1]["body"]["messages"][-1]["content"][1]["image_url"]["url"]
    assert "sig=" in sent  # the real URL is what the service fetches
    bundle = answer._repr_mimebundle_()
    for mimetype, text in bundle.items():
        assert "SECRETsig" not in text and "sig=" not in text, mimetype
    assert "acct.blob.core.windows.net/photos/cat.png?…" in bundle["text/html"]


def test_a_sas_url_is_redacted_in_batch_galleries_manifests_and_new_cells(emulator, tmp_path):
    client = VisionClient(endpoint=emulator.url, deployment="vision", auth="none", cache="off")
    result = client.batch("What is it?", [SAS], progress=False)
    assert "sig=" not in json.dumps(result._repr_mimebundle_()) and "sig=" not in str(result.to_records())
    client.submit_batch("What is it?", [SAS], manifest_dir=str(tmp_path))
    assert "sig=" not in "".join(p.read_text() for p in tmp_path.iterdir())
    from azmm_magic.frontends.panel.cells import cell_source
    from azmm_magic.frontends.panel.panel import VisionPanel

    panel = VisionPanel(client=client, namespace={})
    panel.add_images(SAS)
    options = {"entries": panel.sources.entries, "detail": "auto", "max_tokens": client.settings.max_tokens,
               "temperature": None, "deployment": None}
    source = cell_source("What is it?", options, client.settings)
    assert "sig=" not in source and "acct.blob.core.windows.net/photos/cat.png" in source


def test_labels_redact_query_strings_and_userinfo():
    assert label(f"fetching {SAS} failed") == "fetching https://acct.blob.core.windows.net/photos/cat.png?… failed"
    assert label("https://user:pw@host/x.png#page=2") == "https://host/x.png#page=2"
    (image,) = prepare_images(SAS)
    assert image.url == SAS and "SECRETsig" not in image.source and "SECRETsig" not in repr(image)


# ----- 4. terminal control sequences -----------------------------------------------------------------------------
def test_terminal_text_has_no_control_sequences():
    assert terminal(f"a{ESCAPES}b\rc\x9b2Jd\u202ee\tf\ng") == "abc2Jde\tf\ng"


def test_no_surface_prints_control_sequences(emulator, red_png, capsys):
    hostile = f"answer{ESCAPES} done"
    result = VisionResult(hostile, deployment=f"d{ESCAPES}", notices=(f"notice{ESCAPES}",))
    from azmm_magic.features.batch import BatchResult
    from azmm_magic.features.compare import Comparison
    from azmm_magic.features.outcomes import BatchFailure

    batch = BatchResult(total=2, prompt="p")
    batch.put(0, result, f"img{ESCAPES}.png")
    batch.put(1, BatchFailure(1, "b.png", f"server said {ESCAPES}no", "ServiceError"), "b.png")
    batch.notices.append(f"notice {ESCAPES}")
    comparison = Comparison({"d1": result}, {"d2": AzureVisionError(f"quoted server text {ESCAPES}")}, ["d1", "d2"])
    from azmm_magic.display.gallery import tile_plain

    texts = [repr(result), batch._repr_mimebundle_()["text/plain"], repr(comparison), tile_plain(0, result, f"x{ESCAPES}")]
    for text in texts:
        assert "\x1b" not in text and "\x07" not in text, text


# ----- 5. inert Markdown -----------------------------------------------------------------------------------------
def test_markdown_output_is_inert_in_a_renderer_that_allows_raw_html(tmp_path):
    named = make_png(tmp_path / "x<img src=x onerror=alert(1)>.png")  # a file name is untrusted text too
    answer = (f"`{EVIL}` and ``spans\n\nacross`` <b>x</b> {EVIL}\n\n<div onclick=x>block</div>\n\n"
              "[a](javascript:alert(1)) ![t](https://tracker.example/p.png) <https://auto.link>")
    assert "<img" in _raw_html(answer)  # the identity sanitiser would fail this test
    result = VisionResult(answer, images=(*prepare_images(_png_bytes()), *prepare_images(str(named))),
                          notices=(EVIL,))
    for mimetype, text in result._repr_mimebundle_().items():
        if mimetype == "text/markdown":
            text = _raw_html(text)
        if mimetype in ("text/markdown", "text/html"):
            assert "<img src=x" not in text and "<b>x" not in text and "<div onclick" not in text, mimetype


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


_PIECES = [*"<>/`*_[]()!#&;:=\"' \n\tabcimgsrcdivx-.|\\~1", "\x1b", "javascript:", "https://", "<img ", "<script>",
           "```", "    ", "> ", "- ", "1. ", "&lt;", "<!--", "-->", "onerror=", "![", "](", "`` ", "\n\n"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(st.sampled_from(_PIECES), max_size=60).map("".join), st.text(max_size=80)))
def test_fuzz_markdown_and_html_stay_inert(text):
    _assert_inert(_raw_html(markdown_text(text)))
    _assert_inert(markdown_html(text))


# ----- 6. cache import -------------------------------------------------------------------------------------------
def _line(entry: dict, created: object = 1.0, key: str = "a" * 64) -> str:
    return json.dumps({"v": 1, "key": key, "created": created, "entry": entry}, allow_nan=True)


@pytest.mark.parametrize(("entry", "created", "why"), [
    ({"text": "t", "usage": {"prompt_tokens": "many"}}, 1.0, "usage"),
    ({"text": "t", "usage": {"prompt_tokens": 1, "reported": "yes"}}, 1.0, "usage.reported"),
    ({"text": "t", "notices": [{"x": 1}]}, 1.0, "notices"),
    ({"text": "t", "notices": "abc"}, 1.0, "notices"),
    ({"text": "t"}, 1e300, "created"),
    ({"text": "t"}, float("nan"), "created"),
    ({"text": "t", "elapsed": float("inf")}, 1.0, "elapsed"),
    ({"text": "t", "model": 5}, 1.0, "model"),
    ({"text": "t" * 3_000_000}, 1.0, "text"),
    ({"text": "t", "content_filter": {"a": float("nan")}}, 1.0, "content_filter"),
])
def test_a_crafted_cache_export_is_rejected_by_line(tmp_path, entry, created, why):
    path = tmp_path / "crafted.jsonl"
    path.write_text(_line({"text": "fine"}, key="b" * 64) + "\n" + _line(entry, created) + "\n")
    cache = SQLiteCache(tmp_path / "c.sqlite")
    report = import_jsonl(cache, path)
    assert report.imported == 1 and report.skipped == 1
    assert report.problems[0].startswith("line 2:") and why in report.problems[0]
    assert cache.get("a" * 64) is None and cache.get("b" * 64)["text"] == "fine"
    from azmm_magic.store.cache import cache_rows

    assert len(cache_rows(cache)) == 1  # `cache list` reads every row without error


def test_exports_are_private(tmp_path):
    cache = MemoryCache()
    cache.put("c" * 64, {"text": "t"})
    export_jsonl(cache, tmp_path / "out.jsonl")
    assert stat.S_IMODE((tmp_path / "out.jsonl").stat().st_mode) == 0o600


# ----- 7. server-requested waits ---------------------------------------------------------------------------------
def _limited(wait_headers: dict[str, str], then_ok: bool = False):
    calls = []

    def reply(path: str, body: bytes):
        calls.append(path)
        if then_ok and len(calls) > 1:
            return json_reply(completion("fine"))
        return json_reply({"error": {"code": "429", "message": "Rate limit"}}, 429, wait_headers)

    return reply, calls


@pytest.mark.parametrize(("header", "value", "words"), [
    ("retry-after", "86400", "24 h"), ("retry-after", "inf", "forever"), ("retry-after-ms", "86400000", "24 h")])
def test_a_long_server_wait_fails_at_once(red_png, header, value, words):
    reply, calls = _limited({header: value})
    with HostileServer() as server:
        server.route("POST", "/v1/chat/completions", reply)
        with pytest.raises(RateLimitError, match=f"the service asked to wait {words}"):
            _client(server.url, max_retries=3).ask("colour?", str(red_png))
        assert len(calls) == 1  # not waited, not retried
        reply, calls = _limited({header: value})
        server.routes.clear()
        server.route("POST", "/v1/chat/completions", reply)
        result = _client(server.url, max_retries=3).batch("colour?", [str(red_png)], progress=False)
    (failure,) = result.failures
    assert f"the service asked to wait {words}" in failure.error and len(calls) == 1


def test_a_long_wait_on_a_server_error_is_not_waited_either(red_png):
    calls = []

    def reply(path: str, body: bytes):
        calls.append(path)
        return json_reply({"error": {"code": "503", "message": "busy"}}, 503, {"retry-after": "1h0m0s"})

    with HostileServer() as server:
        server.route("POST", "/v1/chat/completions", reply)
        with pytest.raises(AzureVisionError, match="answered 503; the service asked to wait 1 h"):
            _client(server.url, max_retries=3).ask("colour?", str(red_png))
    assert len(calls) == 1


@pytest.mark.parametrize("value", ["nan", "-5", "soon"])
def test_unusable_waits_fall_back_to_backoff(red_png, value):
    reply, calls = _limited({"retry-after": value}, then_ok=True)
    with HostileServer() as server:
        server.route("POST", "/v1/chat/completions", reply)
        assert _client(server.url, max_retries=2).ask("colour?", str(red_png)).text == "fine"
    assert len(calls) == 2


def test_openai_durations_are_understood(red_png):
    from azmm_magic.service.retry import parse_duration

    assert parse_duration("20ms") == pytest.approx(0.02) and parse_duration("6m0s") == 360
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5) and parse_duration("inf") == math.inf
    assert parse_duration("nan") is None and parse_duration("-1") is None and parse_duration("6 minutes") is None
    limits = RateLimits.from_headers({"x-ratelimit-remaining-requests": "0", "x-ratelimit-limit-requests": "60",
                                      "x-ratelimit-reset-requests": "1m0s"})
    assert limits is not None and limits.window == 60
    assert RateLimits.from_headers({"x-ratelimit-remaining-requests": "inf"}) is None
    reply, calls = _limited({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20ms"},
                            then_ok=True)
    with HostileServer() as server:
        server.route("POST", "/v1/chat/completions", reply)
        answer = _client(server.url, max_retries=2).ask("colour?", str(red_png))
    assert answer.text == "fine" and any("waited" in n for n in answer.notices)


# ----- 8. emulator control endpoints -----------------------------------------------------------------------------
def _asgi_get(app, path: str, client: tuple[str, int], headers: list[tuple[bytes, bytes]] = ()) -> int:
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": list(headers), "client": client, "server": ("10.0.0.1", 8000), "scheme": "http",
             "http_version": "1.1", "root_path": "", "app": app}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_control_endpoints_answer_this_machine_only():
    from azmm_magic.emulator.app import EmulatorConfig, create_app

    app = create_app(EmulatorConfig(api_key="k"))
    assert _asgi_get(app, "/_emulator/requests", ("127.0.0.1", 5000)) == 200
    assert _asgi_get(app, "/_emulator/requests", ("192.168.1.50", 5000)) == 403
    assert _asgi_get(app, "/_emulator/faults", ("192.168.1.50", 5000)) == 403
    assert _asgi_get(app, "/_emulator/requests", ("192.168.1.50", 5000), [(b"api-key", b"k")]) == 200
    assert _asgi_get(create_app(), "/_emulator/requests", ("192.168.1.50", 5000)) == 403  # no key: never
    assert _asgi_get(app, "/_emulator/health", ("192.168.1.50", 5000)) == 200


def test_request_bodies_are_limited():
    server = _start(max_request_bytes=4096)
    try:
        url = server.url + "/openai/deployments/d/chat/completions?api-version=2024-10-21"
        request = urllib.request.Request(url, data=b"{" + b" " * 10_000 + b"}", method="POST",
                                         headers={"content-type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 413 and "larger than 4,096 bytes" in caught.value.read().decode()
        assert Emulator(server).count() == 0
    finally:
        server.stop()
