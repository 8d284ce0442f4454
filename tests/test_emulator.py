"""The emulator over real HTTP on loopback, driven by the official ``openai`` SDK (and raw httpx for edge cases)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import subprocess
import sys
import threading
import time
import types
import uuid
from pathlib import Path

import httpx
import openai
import pytest
from openai import AzureOpenAI, OpenAI
from PIL import Image

from azmm_magic.emulator import EmulatorConfig, EmulatorServer, start_subprocess
from azmm_magic.emulator.report import (
    HEADER,
    RequestError,
    _tile_tokens,
    apply_token_cap,
    brightness_label,
    describe_image,
    read_chat,
    render_report,
    split_for_stream,
)

KEY = "emu-test-key-7f3a9c51"
TOKEN = "emu-test-token-42b1d0"
WRONG_KEY = "wrong-key-value-9e8d"
API_VERSION = "2024-10-21"
DEPLOYMENTS = ["gpt-4o", "o4-mini", "legacy-gpt-4v"]
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------- helpers


def image_bytes(
    colour: tuple[int, int, int] = (255, 0, 0), size: tuple[int, int] = (64, 48), fmt: str = "PNG"
) -> bytes:
    """A tiny solid-colour image."""
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, fmt)
    return buf.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


RED_PNG = data_url(image_bytes())


def vision_messages(url: str = RED_PNG, text: str = "What colour is this?", detail: str = "auto") -> list[dict]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": url, "detail": detail}},
            ],
        }
    ]


@pytest.fixture(autouse=True)
def _no_sdk_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's real Azure/OpenAI settings out of these tests."""
    for name in (
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_AD_TOKEN",
        "AZURE_OPENAI_ENDPOINT",
        "OPENAI_API_VERSION",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def server():
    config = EmulatorConfig(api_key=KEY, bearer_token=TOKEN, deployments=list(DEPLOYMENTS))
    with EmulatorServer(config) as running:
        yield running


@pytest.fixture
def emu(server: EmulatorServer) -> EmulatorServer:
    server.reset()
    return server


def azure(emu: EmulatorServer, **kwargs) -> AzureOpenAI:
    kwargs.setdefault("api_key", KEY)
    return AzureOpenAI(azure_endpoint=emu.url, api_version=API_VERSION, max_retries=0, **kwargs)


def v1(emu: EmulatorServer, api_key: str = KEY) -> OpenAI:
    return OpenAI(base_url=emu.url + "/openai/v1/", api_key=api_key, max_retries=0)


def raw() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10)


def classic_url(emu: EmulatorServer, deployment: str = "gpt-4o", version: str | None = API_VERSION) -> str:
    url = f"{emu.url}/openai/deployments/{deployment}/chat/completions"
    return url if version is None else f"{url}?api-version={version}"


# ----------------------------------------------------------------------------------------------- report.py


@pytest.mark.parametrize(
    ("width", "height", "detail", "tokens"),
    [
        (1024, 1024, "high", 765),
        (2048, 4096, "high", 1105),
        (4096, 4096, "auto", 765),
        (512, 512, "high", 255),
        (100, 30, "auto", 255),
        (1024, 1024, "low", 85),
        (5000, 200, "high", 85 + 170 * 4),  # fit 2048 wide → 2048×81: 4×1 tiles
    ],
)
def test_tile_tokens(width: int, height: int, detail: str, tokens: int) -> None:
    assert _tile_tokens(width, height, detail) == tokens


def test_describe_solid_red_png() -> None:
    facts = describe_image(image_bytes(), detail="high")
    assert (facts.width, facts.height, facts.format, facts.mode) == (64, 48, "PNG", "RGB")
    assert facts.colours == (("red", 100),)
    assert facts.brightness == 76 and brightness_label(76) == "dark"
    assert facts.tokens == 255


def test_describe_two_colours_and_alpha() -> None:
    img = Image.new("RGBA", (40, 20), (0, 0, 255, 255))
    img.paste((0, 0, 0, 0), (20, 0, 40, 20))  # right half fully transparent → counted as white
    buf = io.BytesIO()
    img.save(buf, "PNG")
    facts = describe_image(buf.getvalue())
    assert facts.has_alpha and facts.mode == "RGBA"
    assert dict(facts.colours) == {"blue": 50, "white": 50}


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "JPEG"), ("WEBP", "WEBP"), ("GIF", "GIF")])
def test_describe_supported_formats(fmt: str, name: str) -> None:
    assert describe_image(image_bytes((255, 255, 255), (16, 16), fmt)).format == name


def test_describe_rejects_unsupported_and_garbage() -> None:
    with pytest.raises(RequestError) as bmp:
        describe_image(image_bytes(fmt="BMP"))
    assert bmp.value.code == "invalid_image_format"
    with pytest.raises(RequestError) as garbage:
        describe_image(b"definitely not an image")
    assert garbage.value.to_body() == {
        "error": {
            "message": "Invalid image data.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_image",
        }
    }


def test_report_is_deterministic_and_factual() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            *vision_messages(),
        ]
    }
    first = render_report(read_chat(body), deployment="gpt-4o")
    assert first == render_report(read_chat(json.loads(json.dumps(body))), deployment="gpt-4o")
    # the first line tells images apart (size, format, colours, brightness); the emulator's label comes once, after
    assert first.splitlines()[:3] == ["**64×48 PNG, red, dark (76/255).**", "", HEADER]
    assert first.count("Azure OpenAI emulator") == 1
    for fact in (
        "64×48 px",
        "PNG",
        "mode RGB",
        "red 100%",
        "76/255 (dark)",
        "> What colour is this?",
        "> You are terse.",
        "Earlier turns: 2 messages",
        "(message 4)",
    ):
        assert fact in first


def test_token_cap_and_stream_split() -> None:
    text = "abcdefghij" * 10
    assert apply_token_cap(text, None) == (text, "stop")
    assert apply_token_cap(text, 25) == (text, "stop")
    assert apply_token_cap(text, 5) == (text[:20], "length")
    sample = render_report(read_chat({"messages": vision_messages()}), deployment="d")
    pieces = split_for_stream(sample)
    assert "".join(pieces) == sample and len(pieces) > 10
    assert all(len(piece.strip()) <= 8 for piece in pieces)


def test_config_repr_hides_secrets() -> None:
    text = repr(EmulatorConfig(api_key=KEY, bearer_token=TOKEN))
    assert KEY not in text and TOKEN not in text


# ----------------------------------------------------------------------------------------------- SDK, happy paths


def test_classic_api_key_answer(emu: EmulatorServer) -> None:
    completion = azure(emu).chat.completions.create(
        model="gpt-4o", messages=vision_messages(), max_completion_tokens=1000
    )
    choice = completion.choices[0]
    content = choice.message.content or ""
    assert content.startswith("**64×48 PNG, red, dark (76/255).**\n\n" + HEADER)
    assert "64×48 px, PNG" in content and "red 100%" in content and "> What colour is this?" in content
    assert completion.model == "gpt-4o-2024-11-20" and completion.id.startswith("chatcmpl-emu-")  # versioned, as Azure
    assert completion.object == "chat.completion" and choice.finish_reason == "stop"
    prompt_filters = completion.model_extra["prompt_filter_results"]
    assert prompt_filters[0]["prompt_index"] == 0
    assert prompt_filters[0]["content_filter_results"]["hate"] == {"filtered": False, "severity": "safe"}
    assert set(choice.model_extra["content_filter_results"]) == {"hate", "self_harm", "sexual", "violence"}
    usage = completion.usage
    assert usage.prompt_tokens == math.ceil(len("What colour is this?") / 4) + 255
    assert usage.completion_tokens == math.ceil(len(content) / 4)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    entry = emu.requests[-1]
    assert (entry["auth"], entry["deployment"], entry["api_version"], entry["status"]) == (
        "api-key",
        "gpt-4o",
        API_VERSION,
        200,
    )


def test_response_headers(emu: EmulatorServer) -> None:
    response = azure(emu).chat.completions.with_raw_response.create(model="gpt-4o", messages=vision_messages())
    uuid.UUID(response.headers["x-request-id"])
    assert response.headers["apim-request-id"]
    assert int(response.headers["x-ratelimit-remaining-requests"]) > 0
    assert int(response.headers["x-ratelimit-remaining-tokens"]) > 0
    assert emu.requests[-1]["request_id"] == response.headers["x-request-id"]


def test_classic_bearer_token_provider(emu: EmulatorServer) -> None:
    client = AzureOpenAI(
        azure_endpoint=emu.url, api_version=API_VERSION, azure_ad_token_provider=lambda: TOKEN, max_retries=0
    )
    completion = client.chat.completions.create(model="gpt-4o", messages=vision_messages())
    assert "red 100%" in (completion.choices[0].message.content or "")
    assert emu.requests[-1]["auth"] == "bearer"


@pytest.mark.parametrize("secret", [KEY, TOKEN])
def test_v1_openai_client(emu: EmulatorServer, secret: str) -> None:
    completion = v1(emu, secret).chat.completions.create(model="gpt-4o", messages=vision_messages())
    assert "64×48 px" in (completion.choices[0].message.content or "")
    entry = emu.requests[-1]
    assert (entry["path"], entry["deployment"], entry["auth"], entry["api_version"]) == (
        "/openai/v1/chat/completions",
        "gpt-4o",
        "bearer",
        None,
    )


def test_v1_models_list(emu: EmulatorServer) -> None:
    assert [model.id for model in v1(emu).models.list()] == DEPLOYMENTS


def test_same_answer_both_url_styles_and_deterministic(emu: EmulatorServer) -> None:
    ask = dict(model="gpt-4o", messages=vision_messages(), max_completion_tokens=800)
    a = azure(emu).chat.completions.create(**ask)
    b = azure(emu).chat.completions.create(**ask)
    c = v1(emu).chat.completions.create(**ask)
    assert a.choices[0].message.content == b.choices[0].message.content == c.choices[0].message.content
    assert a.id == b.id


def test_streaming_reassembles_to_the_answer(emu: EmulatorServer) -> None:
    client = azure(emu)
    ask = dict(model="gpt-4o", messages=vision_messages(), max_completion_tokens=800)
    whole = client.chat.completions.create(**ask)
    chunks = list(client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices == [] and "prompt_filter_results" in chunks[0].model_extra
    assert chunks[1].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == whole.choices[0].message.content
    assert len([chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]) > 10
    finals = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert chunks[2].choices[0].model_extra["content_filter_results"]["violence"]["severity"] == "safe"


def test_streaming_wire_format(emu: EmulatorServer) -> None:
    body = {"messages": vision_messages(), "stream": True}
    with raw() as http:
        response = http.post(classic_url(emu), json=body, headers={"api-key": KEY})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [block for block in response.text.split("\n\n") if block]
    assert all(event.startswith("data: ") for event in events)
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2][6:])["choices"][0]["finish_reason"] == "stop"  # no usage chunk unless asked
    assert json.loads(events[1][6:])["object"] == "chat.completion.chunk"


def test_token_cap_truncates_with_length(emu: EmulatorServer) -> None:
    completion = azure(emu).chat.completions.create(
        model="gpt-4o", messages=vision_messages(), max_completion_tokens=10
    )
    assert completion.choices[0].finish_reason == "length"
    assert len(completion.choices[0].message.content or "") == 40
    assert completion.usage.completion_tokens == 10


def test_http_image_url_is_reported_not_downloaded(emu: EmulatorServer) -> None:
    url = "https://example.invalid/cat.png"
    completion = azure(emu).chat.completions.create(model="gpt-4o", messages=vision_messages(url, detail="low"))
    content = completion.choices[0].message.content or ""
    assert url in content and "does not download" in content and "detail `low`" in content


def test_reasoning_deployment_accepts_max_completion_tokens(emu: EmulatorServer) -> None:
    completion = azure(emu).chat.completions.create(
        model="o4-mini", messages=vision_messages(), max_completion_tokens=2000
    )
    assert completion.model == "o4-mini-2025-04-16"


def test_legacy_deployment_accepts_max_tokens(emu: EmulatorServer) -> None:
    completion = azure(emu).chat.completions.create(model="legacy-gpt-4v", messages=vision_messages(), max_tokens=2000)
    assert completion.choices[0].finish_reason == "stop"


def test_no_auth_configured_accepts_anything() -> None:
    with EmulatorServer() as open_server:
        AzureOpenAI(
            azure_endpoint=open_server.url, api_key="anything", api_version=API_VERSION, max_retries=0
        ).chat.completions.create(model="any-name", messages=vision_messages())
        with raw() as http:
            response = http.post(classic_url(open_server, "whatever"), json={"messages": vision_messages()})
        assert response.status_code == 200
        assert [entry["auth"] for entry in open_server.requests] == ["api-key", "none"]


# ----------------------------------------------------------------------------------------------- SDK, errors


def test_wrong_key_is_401(emu: EmulatorServer) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        azure(emu, api_key=WRONG_KEY).chat.completions.create(model="gpt-4o", messages=vision_messages())
    error = caught.value
    assert error.status_code == 401 and error.code == "401"
    assert error.body["message"].startswith("Access denied due to invalid subscription key")
    assert error.request_id == emu.requests[-1]["request_id"]
    assert WRONG_KEY not in error.response.text
    assert (emu.requests[-1]["auth"], emu.requests[-1]["status"]) == ("api-key", 401)


def test_missing_or_wrong_bearer_is_401(emu: EmulatorServer) -> None:
    with raw() as http:
        missing = http.post(classic_url(emu), json={"messages": vision_messages()})
        bearer = http.post(
            classic_url(emu), json={"messages": vision_messages()}, headers={"Authorization": f"Bearer {WRONG_KEY}"}
        )
        key_as_bearer_on_classic = http.post(
            classic_url(emu), json={"messages": vision_messages()}, headers={"Authorization": f"Bearer {KEY}"}
        )
    assert missing.status_code == bearer.status_code == key_as_bearer_on_classic.status_code == 401
    assert missing.json()["error"]["code"] == "401"
    assert [entry["auth"] for entry in emu.requests] == ["none", "bearer", "bearer"]
    with pytest.raises(openai.AuthenticationError):
        v1(emu, WRONG_KEY).chat.completions.create(model="gpt-4o", messages=vision_messages())


def test_unknown_deployment_is_404(emu: EmulatorServer) -> None:
    with pytest.raises(openai.NotFoundError) as classic:
        azure(emu).chat.completions.create(model="gpt-nope", messages=vision_messages())
    assert classic.value.code == "DeploymentNotFound"
    with pytest.raises(openai.NotFoundError):
        v1(emu).chat.completions.create(model="gpt-nope", messages=vision_messages())
    assert [entry["status"] for entry in emu.requests] == [404, 404]


def test_unknown_path_is_azure_404(emu: EmulatorServer) -> None:
    with raw() as http:
        response = http.get(f"{emu.url}/openai/nothing-here", headers={"api-key": KEY})
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "404", "message": "Resource not found"}}


def test_api_version_missing_or_unsupported(emu: EmulatorServer) -> None:
    with raw() as http:
        missing = http.post(
            classic_url(emu, version=None), json={"messages": vision_messages()}, headers={"api-key": KEY}
        )
        bad = http.post(
            classic_url(emu, version="2024-10"), json={"messages": vision_messages()}, headers={"api-key": KEY}
        )
    assert missing.status_code == 400
    assert missing.json() == {
        "error": {"code": "BadRequest", "message": "Missing required query parameter: api-version"}
    }
    assert bad.status_code == 400
    assert bad.json() == {"error": {"code": "BadRequest", "message": "API version not supported"}}
    assert emu.requests[-1]["api_version"] == "2024-10"


def test_reasoning_deployment_rejects_max_tokens(emu: EmulatorServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        azure(emu).chat.completions.create(model="o4-mini", messages=vision_messages(), max_tokens=100)
    assert caught.value.code == "unsupported_parameter" and caught.value.param == "max_tokens"
    assert "Use 'max_completion_tokens' instead." in caught.value.body["message"]


def test_legacy_deployment_rejects_max_completion_tokens(emu: EmulatorServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        azure(emu).chat.completions.create(model="legacy-gpt-4v", messages=vision_messages(), max_completion_tokens=100)
    assert caught.value.body == {
        "message": "Unrecognized request argument supplied: max_completion_tokens",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_bad_image_data(emu: EmulatorServer) -> None:
    not_an_image = data_url(b"this is text, not pixels")
    with pytest.raises(openai.BadRequestError) as undecodable:
        azure(emu).chat.completions.create(model="gpt-4o", messages=vision_messages(not_an_image))
    assert undecodable.value.code == "invalid_image"
    with pytest.raises(openai.BadRequestError) as bad_base64:
        azure(emu).chat.completions.create(model="gpt-4o", messages=vision_messages("data:image/png;base64,@@@"))
    assert (bad_base64.value.code, bad_base64.value.param) == ("invalid_value", "messages")
    assert "base64" in bad_base64.value.body["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "Missing required parameter: 'messages'"),
        ({"messages": "hello"}, "must be an array"),
        ({"messages": []}, "at least one message"),
        ({"messages": [{"role": "user", "content": [{"type": "audio", "data": "x"}]}]}, "unsupported content part"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}, "'url' string"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]},
            "http(s) URL",
        ),
        ({"messages": vision_messages(detail="ultra")}, "'low', 'high' or 'auto'"),
        ({"messages": [{"role": "system", "content": vision_messages()[0]["content"]}]}, "only allowed"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "role"),
    ],
)
def test_invalid_messages_are_400(emu: EmulatorServer, body: dict, fragment: str) -> None:
    with raw() as http:
        response = http.post(classic_url(emu), json=body, headers={"api-key": KEY})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "messages", "invalid_value")
    assert fragment in error["message"]


def test_malformed_json_is_400(emu: EmulatorServer) -> None:
    with raw() as http:
        response = http.post(
            classic_url(emu), content=b"{not json", headers={"api-key": KEY, "content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert emu.requests[-1]["body"] is None and emu.requests[-1]["status"] == 400


# ----------------------------------------------------------------------------------------------- log and counters


def test_request_log_and_control_endpoints(emu: EmulatorServer) -> None:
    azure(emu).chat.completions.create(model="gpt-4o", messages=vision_messages())
    with pytest.raises(openai.AuthenticationError):
        azure(emu, api_key=WRONG_KEY).chat.completions.create(model="gpt-4o", messages=vision_messages())
    AzureOpenAI(
        azure_endpoint=emu.url, api_version=API_VERSION, azure_ad_token_provider=lambda: TOKEN, max_retries=0
    ).chat.completions.create(model="gpt-4o", messages=vision_messages())
    v1(emu).chat.completions.create(model="gpt-4o", messages=vision_messages())
    with raw() as http:
        assert http.get(f"{emu.url}/_emulator/health").json() == {"status": "ok"}
        log = http.get(f"{emu.url}/_emulator/requests").json()
        dumped = json.dumps(log) + json.dumps(emu.requests)
        assert http.delete(f"{emu.url}/_emulator/requests").status_code == 200
        assert http.get(f"{emu.url}/_emulator/requests").json()["count"] == 0
    assert log["count"] == 4 and emu.request_count == 0
    assert [entry["status"] for entry in log["requests"]] == [200, 401, 200, 200]
    assert [entry["auth"] for entry in log["requests"]] == ["api-key", "api-key", "bearer", "bearer"]
    first = log["requests"][0]
    assert set(first) >= {"method", "path", "deployment", "api_version", "auth", "status", "body", "time"}
    logged_url = first["body"]["messages"][0]["content"][1]["image_url"]["url"]
    assert len(logged_url) == 80 and RED_PNG.startswith(logged_url)
    for secret in (KEY, TOKEN, WRONG_KEY):
        assert secret not in dumped


def test_log_is_capped() -> None:
    with EmulatorServer(EmulatorConfig(max_logged_requests=3)) as small, raw() as http:
        for _ in range(5):
            http.get(f"{small.url}/openai/v1/models")
        assert small.request_count == 5 and len(small.requests) == 3


@pytest.fixture
def emulator_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the emulator's routes take (``latency`` before an answer, ``stream_chunk_delay`` between chunks),
    in seconds, recorded as each starts; the pause itself still happens."""
    from azmm_magic.emulator import app

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(seconds)

    monkeypatch.setattr(app, "asyncio", types.SimpleNamespace(sleep=sleep))
    return slept


def test_in_flight_counters_with_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    from azmm_magic.emulator import app

    # each answer's latency pause waits until all four requests are inside theirs: served one after another, the
    # first would never see the other three (its wait ends in a 500 after 30 s and the test fails)
    paused: list[float] = []
    all_in = asyncio.Event()

    async def sleep(seconds: float) -> None:
        paused.append(seconds)
        if len(paused) == 4:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), 30)
        await asyncio.sleep(seconds)

    monkeypatch.setattr(app, "asyncio", types.SimpleNamespace(sleep=sleep))
    with EmulatorServer(EmulatorConfig(latency=0.05)) as slow:
        client = AzureOpenAI(azure_endpoint=slow.url, api_key="x", api_version=API_VERSION, max_retries=0)
        errors: list[BaseException] = []

        def ask() -> None:
            try:
                client.chat.completions.create(model="gpt-4o", messages=vision_messages())
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors and not any(t.is_alive() for t in threads), errors
        assert paused == [0.05] * 4 and slow.log.peak_in_flight == 4  # answered concurrently
        # the counter drops once each response is fully sent, which can be just after the client has read it; the
        # log has no event for that, so wait on the counter itself (bounded)
        deadline = time.monotonic() + 10
        while slow.log.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert slow.log.in_flight == 0 and slow.request_count == 4


# ----------------------------------------------------------------------------------------------- subprocess


def test_subprocess_cli_with_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZMM_EMULATOR_API_KEY", KEY)
    proc, url = start_subprocess(["--deployments", "gpt-4o,o4-mini"])
    try:
        assert url.startswith("http://127.0.0.1:") and int(url.rsplit(":", 1)[1]) > 0
        client = AzureOpenAI(azure_endpoint=url, api_key=KEY, api_version=API_VERSION, max_retries=0)
        completion = client.chat.completions.create(model="gpt-4o", messages=vision_messages())
        assert "red 100%" in (completion.choices[0].message.content or "")
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="gpt-35", messages=vision_messages())
        with pytest.raises(openai.AuthenticationError):
            AzureOpenAI(
                azure_endpoint=url, api_key=WRONG_KEY, api_version=API_VERSION, max_retries=0
            ).chat.completions.create(model="gpt-4o", messages=vision_messages())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_stream_chunk_delay_spaces_chunks(emulator_sleeps: list[float]) -> None:
    with EmulatorServer(EmulatorConfig(stream_chunk_delay=0.01)) as slow:
        client = AzureOpenAI(azure_endpoint=slow.url, api_key="x", api_version=API_VERSION, max_retries=0)
        chunks = list(client.chat.completions.create(model="gpt-4o", messages=vision_messages(), stream=True))
    assert len(chunks) > 2 and emulator_sleeps == [0.01] * (len(chunks) - 1)  # one pause between two chunks


def test_main_rejects_bad_port() -> None:
    from azmm_magic.emulator import main

    with pytest.raises(SystemExit):
        main(["--port", "70000"])


def test_importing_the_package_is_cheap() -> None:
    code = "import sys, azmm_magic.emulator; sys.exit(any(m in sys.modules for m in ('starlette', 'uvicorn', 'PIL')))"
    assert subprocess.run([sys.executable, "-c", code], cwd=str(ROOT)).returncode == 0


def test_plain_openai_compatible_base_url(emu: EmulatorServer) -> None:
    client = OpenAI(base_url=emu.url + "/v1", api_key=KEY, max_retries=0)
    completion = client.chat.completions.create(model="o4-mini", messages=vision_messages())
    assert "red 100%" in (completion.choices[0].message.content or "")
    assert [model.id for model in client.models.list()] == DEPLOYMENTS
    assert emu.requests[0]["path"] == "/v1/chat/completions" and emu.requests[0]["deployment"] == "o4-mini"


def test_read_chat_without_decoding_reads_only_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    """``decode_images=False`` (``--no-decode``): size, format and tokens from the header, no pixel decoding."""
    body = {"messages": vision_messages(data_url(image_bytes(size=(1024, 768))), detail="high")}
    full = read_chat(body)
    from PIL import ImageFile

    loads: list[object] = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self))
    light = read_chat(body, decode_images=False)
    assert loads == []  # no pixels decoded
    (a,), (b,) = full.images, light.images
    assert (b.width, b.height, b.format, b.tokens) == (a.width, a.height, a.format, a.tokens)
    assert b.colours == () and b.brightness is None
    with pytest.raises(RequestError):
        read_chat({"messages": vision_messages(data_url(b"not an image"))}, decode_images=False)
