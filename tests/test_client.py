"""VisionClient over the real openai SDK and real HTTP to the emulator."""

from __future__ import annotations

import asyncio
import time

import pytest

from azmm_magic import VisionClient
from azmm_magic.core.errors import AuthError, BadRequestError, ConfigError, DeploymentNotFoundError, ImageInputError
from tests.conftest import CANARY_KEY


def test_ask_classic_azure_style(emulator, red_png):
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none")
    result = client.ask("What colour is this?", images=[red_png], detail="low")
    assert "emulator" in result.text.lower() and "64×48" in result.text.replace("x", "×")
    assert result.usage.prompt_tokens > 85 and result.usage.completion_tokens > 0
    assert result.finish_reason == "stop" and not result.cached and result.request_id
    (req,) = emulator.chat_requests()
    assert req["path"] == "/openai/deployments/vision-test/chat/completions"
    assert req["api_version"] == "2024-10-21"
    body = req["body"]
    assert body["max_completion_tokens"] == 2048 and "max_tokens" not in body
    parts = body["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "What colour is this?"}
    assert parts[1]["type"] == "image_url" and parts[1]["image_url"]["detail"] == "low"
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_ask_v1_style_uses_body_model(emulator, red_png):
    client = VisionClient(endpoint=emulator.url + "/openai/v1/", deployment="vision-test", auth="none")
    assert client.settings.resolved_api_style == "azure-v1"
    result = client.ask("Hi", images=[red_png])
    (req,) = emulator.chat_requests()
    assert req["path"] == "/openai/v1/chat/completions" and req["body"]["model"] == "vision-test"
    assert result.deployment == "vision-test"


def test_stream_yields_text_then_result_and_matches_plain_answer(emulator, red_png):
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none", cache="off")
    items = list(client.stream("Describe it.", images=[red_png]))
    *texts, final = items
    assert len(texts) > 3 and all(isinstance(t, str) for t in texts)
    assert "".join(texts) == final.text
    assert final.usage.completion_tokens > 0  # include_usage chunk was read
    plain = client.ask("Describe it.", images=[red_png])
    assert plain.text == final.text
    req = emulator.chat_requests()[0]
    assert req["body"]["stream"] is True and req["body"]["stream_options"] == {"include_usage": True}


def test_cache_hit_sends_nothing(emulator, red_png):
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none")
    first = client.ask("Same question", images=[red_png])
    n = emulator.count()
    again = client.ask("Same question", images=[red_png])
    assert emulator.count() == n
    assert again.cached and again.text == first.text and again.usage == first.usage
    other = client.ask("Same question", images=[red_png], detail="low")  # different options: a new request
    assert not other.cached and emulator.count() == n + 1
    fresh = client.ask("Same question", images=[red_png], refresh=True)
    assert not fresh.cached and emulator.count() == n + 2


def test_key_auth_and_wrong_key(keyed_emulator, red_png):
    ok = VisionClient(endpoint=keyed_emulator.url, deployment="vision", api_key=CANARY_KEY)
    ok.ask("hi", images=[red_png])
    assert keyed_emulator.chat_requests()[-1]["auth"] == "api-key"
    bad = VisionClient(endpoint=keyed_emulator.url, deployment="vision", api_key="wrong", max_retries=0)
    with pytest.raises(AuthError, match=r"rejected the credentials \(401\).*AZURE_OPENAI_API_KEY") as info:
        bad.ask("hi", images=[red_png])
    assert "wrong" not in str(info.value) and CANARY_KEY not in str(info.value)


def test_unknown_deployment_names_endpoint_and_deployment(keyed_emulator, red_png):
    client = VisionClient(endpoint=keyed_emulator.url, deployment="nope", api_key=CANARY_KEY, max_retries=0)
    with pytest.raises(DeploymentNotFoundError, match=r"Deployment 'nope' was not found at http://127\.0\.0\.1"):
        client.ask("hi", images=[red_png])


def test_bearer_provider_called_per_request(keyed_emulator, red_png):
    calls = []

    def provider() -> str:
        calls.append(time.monotonic())
        return "entra-CANARY-token"

    client = VisionClient(endpoint=keyed_emulator.url, deployment="vision", auth="entra", token_provider=provider,
                          cache="off")
    client.ask("one", images=[red_png])
    client.ask("two", images=[red_png])
    assert len(calls) == 2
    assert [r["auth"] for r in keyed_emulator.chat_requests()] == ["bearer", "bearer"]


def test_entra_token_is_refreshed_through_azure_identity(keyed_emulator, red_png):
    """The real azure-identity bearer-token provider over a credential whose tokens expire at once."""
    from azure.core.credentials import AccessToken
    from azure.identity import get_bearer_token_provider

    class ShortLivedCredential:
        def __init__(self) -> None:
            self.issued = 0

        def get_token(self, *scopes, **kwargs):
            self.issued += 1
            return AccessToken("entra-CANARY-token", int(time.time()) + 1)  # already inside the refresh window

    cred = ShortLivedCredential()
    provider = get_bearer_token_provider(cred, "https://cognitiveservices.azure.com/.default")
    client = VisionClient(endpoint=keyed_emulator.url, deployment="vision", auth="entra", token_provider=provider,
                          cache="off")
    for i in range(3):
        client.ask(f"q{i}", images=[red_png])
    assert cred.issued == 3  # a fresh token for each request once the old one is near expiry
    # the v1 style passes the provider as a callable api_key; same refresh behaviour
    v1 = VisionClient(endpoint=keyed_emulator.url + "/openai/v1/", deployment="vision", auth="entra",
                      token_provider=provider, cache="off")
    v1.ask("v1", images=[red_png])
    assert cred.issued == 4 and keyed_emulator.chat_requests()[-1]["auth"] == "bearer"


def test_token_param_switches_and_is_remembered(keyed_emulator, red_png):
    # classic Azure sends max_completion_tokens; a legacy deployment rejects it -> max_tokens, remembered
    legacy = VisionClient(endpoint=keyed_emulator.url, deployment="legacy-4o", api_key=CANARY_KEY, cache="off",
                          max_retries=0)
    r1 = legacy.ask("hi", images=[red_png])
    assert any("max_tokens" in n for n in r1.notices)
    legacy.ask("again", images=[red_png])
    bodies = [r["body"] for r in keyed_emulator.chat_requests()]
    assert "max_completion_tokens" in bodies[0] and "max_tokens" in bodies[1] and "max_tokens" in bodies[2]
    assert len(bodies) == 3
    # the OpenAI-compatible style sends max_tokens; a reasoning model rejects it -> max_completion_tokens
    keyed_emulator.reset()
    o4 = VisionClient(endpoint=keyed_emulator.url + "/v1", api_style="openai", deployment="o4-mini",
                      api_key=CANARY_KEY, cache="off", max_retries=0)
    o4.ask("hi", images=[red_png])
    bodies = [r["body"] for r in keyed_emulator.chat_requests()]
    assert "max_tokens" in bodies[0] and "max_completion_tokens" in bodies[1]


def test_bad_request_is_clear(emulator, red_png):
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none", max_retries=0,
                          api_version="not-a-version")
    with pytest.raises(BadRequestError, match=r"does not accept api-version 'not-a-version' \(400.*OPENAI_API_VERSION"):
        client.ask("hi", images=[red_png])


def test_errors_are_not_cached(keyed_emulator, red_png):
    client = VisionClient(endpoint=keyed_emulator.url, deployment="vision", api_key="wrong", max_retries=0)
    with pytest.raises(AuthError):
        client.ask("hi", images=[red_png])
    assert client.cache.stats().entries == 0


def test_async_ask(emulator, red_png):
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none")

    async def main():
        return await asyncio.gather(*(client.aask(f"q{i}", images=[red_png]) for i in range(3)))

    results = asyncio.run(main())
    assert [r.prompt for r in results] == ["q0", "q1", "q2"] and all("emulator" in r.text.lower() for r in results)
    assert len(emulator.chat_requests()) == 3


def test_unreachable_endpoint(red_png):
    client = VisionClient(endpoint="http://127.0.0.1:9", deployment="d", auth="none", max_retries=0, timeout=5)
    with pytest.raises(Exception, match=r"Cannot reach http://127\.0\.0\.1:9.*emulator"):
        client.ask("hi", images=[red_png])


def test_empty_prompt_and_bad_image_send_nothing(emulator, tmp_path):
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none")
    with pytest.raises(ConfigError, match="prompt is empty"):
        client.ask("  ", images=[])
    with pytest.raises(ImageInputError, match="missing.png"):
        client.ask("hi", images=[tmp_path / "missing.png"])
    assert emulator.count() == 0
