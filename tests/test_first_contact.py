"""First contact with real services (issue 11, points 1-7), over real HTTP to the emulator:

1. Entra ID without a credential: one AuthError line (a real DefaultAzureCredential made to fail locally: developer
   credentials only, no `az` on PATH, an empty HOME; the instance-metadata address is never contacted), the
   azure-identity log kept out of the cell, the full report as ``__cause__`` and in ``config --debug``;
2. endpoints as people paste them, normalised, with the deployment and api-version taken from a full URL;
3. a text-only prompt sent as a plain string;
4. waits before retries reported while they happen and said in the footer (not kept with the cached copy);
5. a 5xx on every attempt said as such, quoting the server, suggesting what the server may not accept;
6. streams that end normally without Azure's finish_reason are complete (and cached), cut streams are not;
7. a server that ignores the output-token limit gets a footer note.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from IPython.core.error import UsageError

from azmm_magic import VisionClient
from azmm_magic.core.endpoints import read_endpoint
from azmm_magic.core.errors import AuthError, IncompleteAnswerError, ServiceError
from azmm_magic.core.result import VisionResult
from azmm_magic.core.settings import Settings
from azmm_magic.emulator.faults import STREAM_SHAPES
from azmm_magic.service.send import NO_FINISH_NOTICE, WaitEvent, is_wait_notice

PROMPT = "What is in this picture?"


# ----- 1. Entra ID with no credential ---------------------------------------------------------------------------
@pytest.fixture
def no_credential(monkeypatch, tmp_path):
    """An environment where DefaultAzureCredential finds nothing, quickly and locally."""
    import os

    for name in [k for k in os.environ if k.startswith(("AZURE_", "IDENTITY_", "MSI_", "IMDS_"))]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "dev")  # developer credentials only: no managed-identity probe
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no az, azd, pwsh
    monkeypatch.setenv("HOME", str(tmp_path))  # no shared token cache, no VS Code sign-in
    monkeypatch.setenv("USERPROFILE", str(tmp_path))


def test_entra_without_credential_is_one_line_with_the_ways_out(no_credential, keyed_emulator, red_png, capsys,
                                                                caplog):
    from azure.core.exceptions import ClientAuthenticationError

    from azmm_magic.service.sdk import identity_report

    caplog.set_level(logging.DEBUG)
    client = VisionClient(endpoint=keyed_emulator.url, deployment="vision", auth="entra", max_retries=0)
    with pytest.raises(AuthError) as info:
        client.ask(PROMPT, images=[red_png])
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    assert message.startswith("No Microsoft Entra ID credential was found to call 127.0.0.1:")
    for way in ("AZURE_OPENAI_API_KEY", "az login", "%azure_vision config --debug"):
        assert way in message
    assert "managed identity" not in message  # AZURE_TOKEN_CREDENTIALS=dev rules it out
    assert info.value.remedy == "credentials" and info.value.settings == ("api_key",)
    assert isinstance(info.value.__cause__, ClientAuthenticationError)  # the full detail, on request
    assert "AzureCliCredential" in str(info.value.__cause__)
    # azure-identity's own log records stayed out of the output, and are kept for `config --debug`
    captured = capsys.readouterr()
    assert "DefaultAzureCredential" not in captured.err + captured.out
    assert not [r for r in caplog.records if r.name.startswith("azure.identity")]
    assert any("AzureCliCredential" in line for line in identity_report())
    assert keyed_emulator.count() == 0  # no request was sent without a token


def test_entra_without_credential_in_the_magic(no_credential, shell, keyed_emulator, red_png, capsys):
    shell.run_line_magic("config", f"AzureVision.endpoint = '{keyed_emulator.url}'")
    shell.run_line_magic("config", "AzureVision.deployment = 'vision'")
    shell.run_line_magic("config", "AzureVision.auth = 'entra'")
    shell.run_line_magic("config", "AzureVision.max_retries = 0")
    shell.user_ns["img"] = str(red_png)
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("azure_vision", "-i img --no-stream", PROMPT)
    text = str(info.value)
    assert "\n" not in text and "No Microsoft Entra ID credential was found" in text
    assert "AZURE_OPENAI_API_KEY" in text and "az login" in text and "%azure_vision login" in text
    assert "DefaultAzureCredential" not in capsys.readouterr().err
    debug = repr(shell.run_line_magic("azure_vision", "config --debug"))
    assert "azure-identity" in debug and "AzureCliCredential" in debug
    assert "azure-identity" not in repr(shell.run_line_magic("azure_vision", "config"))


# ----- 2. endpoints as people paste them ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, endpoint, deployment, api_version",
    [
        ("https://res.openai.azure.com/", "https://res.openai.azure.com/", None, None),
        ("https://res.openai.azure.com/openai", "https://res.openai.azure.com/", None, None),
        ("https://res.openai.azure.com/openai/", "https://res.openai.azure.com/", None, None),
        ("https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2025-01-01-preview",
         "https://res.openai.azure.com/", "gpt-4o", "2025-01-01-preview"),
        ("https://res.cognitiveservices.azure.com/", "https://res.cognitiveservices.azure.com/", None, None),
        ("https://res.services.ai.azure.com/", "https://res.services.ai.azure.com/", None, None),
        ("https://res.services.ai.azure.com/models", "https://res.services.ai.azure.com/", None, None),
        ("https://res.services.ai.azure.com/api/projects/demo", "https://res.services.ai.azure.com/", None, None),
        ("https://res.openai.azure.com/openai/v1/", "https://res.openai.azure.com/openai/v1/", None, None),
        ("https://res.openai.azure.com/openai/v1/chat/completions", "https://res.openai.azure.com/openai/v1/", None,
         None),
        ("  'https://res.openai.azure.com/'  ", "https://res.openai.azure.com/", None, None),
        ('"https://res.openai.azure.com/openai"', "https://res.openai.azure.com/", None, None),
        ("res.openai.azure.com", "https://res.openai.azure.com", None, None),
        ("localhost:11434/v1", "http://localhost:11434/v1", None, None),
        ("http://localhost:11434/v1/chat/completions", "http://localhost:11434/v1", None, None),
    ],
)
def test_endpoint_forms_are_understood(raw, endpoint, deployment, api_version):
    reading = read_endpoint(raw)
    assert (reading.endpoint, reading.deployment, reading.api_version) == (endpoint, deployment, api_version)
    s = Settings.resolve({"endpoint": raw}, env={})
    assert s.endpoint == endpoint and s.resolved_api_style == Settings.resolve({"endpoint": endpoint}, env={}).resolved_api_style
    assert s.deployment == deployment


def test_values_set_elsewhere_win_over_the_url_and_the_view_says_so():
    url = "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2025-01-01-preview&api-key=SECRET"
    s = Settings.resolve({"endpoint": url}, env={"AZURE_OPENAI_DEPLOYMENT": "prod"})
    assert s.deployment == "prod" and s.api_version == "2025-01-01-preview"
    assert s.sources["api_version"] == "argument (from the endpoint URL)"
    shown = dict((name, value) for name, value, _ in s.describe())
    assert "took deployment 'gpt-4o' from the URL" in shown["endpoint"] and "SECRET" not in repr(s.describe())
    assert "the endpoint URL says 'gpt-4o'; this value wins (env AZURE_OPENAI_DEPLOYMENT)" in shown["deployment"]


def test_pasted_chat_completions_url_reaches_the_deployment(shell, emulator, red_png):
    url = f"  '{emulator.url}/openai/deployments/pasted-dep/chat/completions?api-version=2024-10-21'  "
    shell.run_line_magic("config", f"AzureVision.endpoint = {url!r}")
    shell.run_line_magic("config", "AzureVision.deployment = None")
    shell.user_ns["img"] = str(red_png)
    result = shell.run_cell_magic("azure_vision", "-i img --no-stream", PROMPT)
    assert result.deployment == "pasted-dep" and emulator.chat_requests()[-1]["deployment"] == "pasted-dep"
    view = repr(shell.run_line_magic("azure_vision", "config"))
    assert "took deployment 'pasted-dep' from the URL" in view and "%config (from the endpoint URL)" in view
    assert f"{emulator.url}/openai/deployments/pasted-dep/chat/completions?api-version=2024-10-21" in view


def test_trailing_openai_is_not_doubled(emulator, red_png):
    client = VisionClient(endpoint=emulator.url + "/openai", deployment="trailing", auth="none", max_retries=0)
    assert client.ask(PROMPT, images=[red_png]).finish_reason == "stop"
    assert emulator.chat_requests()[-1]["path"] == "/openai/deployments/trailing/chat/completions"


def test_unreachable_endpoint_set_with_config_says_so(shell):
    shell.run_line_magic("config", "AzureVision.endpoint = 'http://127.0.0.1:9'")
    shell.run_line_magic("config", "AzureVision.max_retries = 0")
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("azure_vision", "--no-stream", "hello")
    assert "(set by %config)" in str(info.value) and "AZURE_OPENAI_ENDPOINT" not in str(info.value)


# ----- 3. text-only prompts ----------------------------------------------------------------------------------------------
def test_text_only_prompt_is_a_string_and_images_are_parts(emulator, red_png):
    client = VisionClient(endpoint=emulator.url, deployment="text-only", auth="none", max_retries=0)
    request = client.prepare("Just text, please")
    assert request.body()["messages"][-1]["content"] == "Just text, please"
    client.send(request)
    assert emulator.chat_requests()[-1]["body"]["messages"][-1]["content"] == "Just text, please"
    client.ask(PROMPT, images=[red_png])
    parts = emulator.chat_requests()[-1]["body"]["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": PROMPT} and parts[1]["type"] == "image_url"


def test_earlier_text_only_turns_are_strings_too(shell, emulator):
    shell.run_cell_magic("azure_vision", "--chat plain --no-stream", "first question")
    shell.run_cell_magic("azure_vision", "--chat plain --no-stream", "second question")
    messages = emulator.chat_requests()[-1]["body"]["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["first question", "second question"]


# ----- 4. visible waits ----------------------------------------------------------------------------------------------------
def _run_with_waits(client: VisionClient, request, events: list[WaitEvent]) -> VisionResult:
    return client.pipeline.run(request, client.policy(), on_wait=events.append)


def test_429_wait_is_reported_while_it_happens_and_in_the_footer(emulator, red_png):
    emulator.set_fault("wait-429", "429:1.2:times=1")
    client = VisionClient(endpoint=emulator.url, deployment="wait-429", auth="none", max_retries=3)
    events: list[WaitEvent] = []
    sent: list[int] = []  # requests the emulator had received at each report

    def on_wait(event: WaitEvent) -> None:
        events.append(event)
        sent.append(len(emulator.chat_requests()))

    result = client.pipeline.run(client.prepare(PROMPT, [red_png]), client.policy(), on_wait=on_wait)
    assert events[0].message() == "rate limited (429): retrying in 2 s (1 of 3)"
    assert events[0].asked and events[0].status == 429 and events[0].delay == pytest.approx(1.2)
    assert events[-1].remaining == 0 and events[-1].message() == "rate limited (429): retrying now (1 of 3)"
    assert len(events) >= 3  # about one a second while it lasts
    # Retry-After (retry-after-ms: 1200) honoured: the wait counted down to its end before the retry was sent
    remaining = [e.remaining for e in events]
    assert remaining == sorted(remaining, reverse=True) and sent == [1] * len(events)
    assert len(emulator.chat_requests()) == 2
    assert "throttled: waited 1.2 s over 1 retry (rate limited (429))" in result.notices
    assert "throttled: waited 1.2 s" in result.footer()
    again = client.ask(PROMPT, images=[red_png])  # the cached copy did not wait
    assert again.cached and not any(is_wait_notice(n) for n in again.notices)


def test_5xx_retries_are_reported_too(emulator, red_png):
    emulator.set_fault("wait-503", "503:0.05:times=2")
    client = VisionClient(endpoint=emulator.url, deployment="wait-503", auth="none", max_retries=3)
    events: list[WaitEvent] = []
    result = _run_with_waits(client, client.prepare(PROMPT, [red_png], stream=True), events)
    firsts = [e for e in events if e.remaining == e.delay]
    assert [e.message() for e in firsts] == ["server error (503): retrying in 1 s (1 of 3)",
                                              "server error (503): retrying in 1 s (2 of 3)"]
    assert any(n.startswith("retried: waited 0.1 s over 2 retries (server error (503))") for n in result.notices)


def test_the_cell_shows_the_wait_on_a_status_line(shell, emulator, red_png, capsys, monkeypatch):
    emulator.set_fault("cell-wait", "429:0.3:times=1")
    shell.user_ns["img"] = str(red_png)
    result = shell.run_cell_magic("azure_vision", "-i img --no-stream --deployment cell-wait", PROMPT)
    assert "rate limited (429): retrying in 1 s (1 of 3)" in capsys.readouterr().err  # a terminal: stderr
    assert "throttled: waited 0.3 s" in result.footer()

    shown: list[dict] = []

    class Handle:
        def update(self, bundle, raw=True):
            shown.append(bundle)

    def display(bundle, raw=True, display_id=False):
        shown.append(bundle)
        return Handle()

    monkeypatch.setattr("IPython.display.display", display)
    monkeypatch.setattr(shell, "kernel", object(), raising=False)
    emulator.set_fault("cell-wait-2", "500:0.3:times=1")
    shell.run_cell_magic("azure_vision", "-i img --no-stream --deployment cell-wait-2", PROMPT)
    texts = [b.get("text/plain") for b in shown]
    assert "server error (500): retrying in 1 s (1 of 3)" in texts
    # once the answer is there the status line says what happened (a saved notebook keeps no empty output)
    assert texts[-1] == "server error (500): retried (1 of 3)" and all(texts), texts


def test_a_wait_is_interruptible(emulator, red_png):
    emulator.set_fault("long-wait", "429:30")
    client = VisionClient(endpoint=emulator.url, deployment="long-wait", auth="none", max_retries=3)
    events: list[WaitEvent] = []

    async def ask() -> None:
        task = asyncio.current_task()
        assert task is not None

        def on_wait(event: WaitEvent) -> None:
            events.append(event)
            task.cancel()  # as asyncio.wait_for's timeout or a stopped kernel would, as the 30 s wait begins

        await client.pipeline.arun(client.prepare(PROMPT, [red_png]), client.policy(), on_wait=on_wait)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(ask())
    # the wait ended at once: reported once (a wait that ran on reports about every second), no retry sent
    assert [e.remaining for e in events] == [30] and len(emulator.chat_requests()) == 1


def test_the_panel_stops_a_wait(shell, emulator, red_png):
    emulator.set_fault("panel-wait", "429:30")
    shell.run_line_magic("config", "AzureVision.stream = False")
    panel = shell.run_line_magic("azure_vision", "panel")
    panel.deployment.value = "panel-wait"
    panel.source_text.value = str(red_png)
    panel.add_source_button.click()
    panel.prompt.value = PROMPT
    waiting = threading.Event()
    panel.message.observe(lambda change: "retrying in 30 s" in change["new"] and waiting.set(), "value")
    panel.send_button.click()
    assert waiting.wait(30), panel.message.value  # the panel shows the wait
    assert panel._worker.status == "rate limited (429): retrying in 30 s (1 of 3)"
    panel.stop()
    assert panel.wait(20)  # stopped: it did not wait its 30 s
    assert panel._worker.status == "" and not panel.busy and len(emulator.chat_requests()) == 1


# ----- 5. persistent server errors ---------------------------------------------------------------------------------------
def test_a_500_on_every_attempt_is_not_called_temporary(emulator, red_png):
    emulator.set_fault("always-500", "500:0.01")
    client = VisionClient(endpoint=emulator.url, deployment="always-500", auth="none", max_retries=3)
    with pytest.raises(ServiceError) as info:
        client.ask(PROMPT, images=[red_png])
    message = str(info.value)
    assert message.startswith(f"{client.settings.endpoint_host} answered 500 on all 4 attempts (server: \"The server "
                              "had an error while processing your request. Sorry about that!\"). The same error every "
                              "time points at the request, not at load: this server may not accept images (this "
                              "request has 1; try without)")
    assert "temporary" not in message and info.value.remedy is None
    with pytest.raises(ServiceError, match="on all 1 attempts|answered 500 \\(server"):
        VisionClient(endpoint=emulator.url, deployment="always-500", auth="none", max_retries=0).ask("text only")


def test_persistent_500_in_the_magic_does_not_say_rerun(shell, emulator, red_png):
    emulator.set_fault("magic-500", "500:0.01")
    shell.run_line_magic("config", "AzureVision.max_retries = 1")
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("azure_vision", "--no-stream --deployment magic-500", "text only")
    assert "answered 500 on all 2 attempts" in str(info.value) and "check the server's log" in str(info.value)
    assert "re-run" not in str(info.value)


# ----- 6. streams from non-Azure servers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", STREAM_SHAPES)
def test_streams_that_end_normally_are_complete(emulator, red_png, shape):
    deployment = f"shape-{shape}"
    emulator.set_fault(deployment, f"stream_shape:{shape}")
    client = VisionClient(endpoint=emulator.url, deployment=deployment, auth="none", max_retries=0)
    pieces = list(client.stream(PROMPT, images=[red_png]))
    result = pieces[-1]
    assert isinstance(result, VisionResult) and not result.incomplete
    assert "".join(p for p in pieces[:-1] if isinstance(p, str)) == result.text and "Azure OpenAI emulator" in result.text
    if shape in ("delta", "ollama"):
        assert result.finish_reason == "stop" and NO_FINISH_NOTICE not in result.notices
    else:
        assert result.finish_reason is None and NO_FINISH_NOTICE in result.notices
        assert NO_FINISH_NOTICE in result.footer()
    assert client.cache is not None and client.cache.stats().entries == 1  # complete, so cached
    n = emulator.count()
    assert client.ask(PROMPT, images=[red_png]).cached and emulator.count() == n


def test_a_cut_stream_is_still_incomplete(emulator, red_png):
    emulator.set_fault("shape-cut", "cut:2")
    client = VisionClient(endpoint=emulator.url, deployment="shape-cut", auth="none", max_retries=0)
    with pytest.raises(IncompleteAnswerError):
        list(client.stream(PROMPT, images=[red_png]))
    assert client.cache is not None and client.cache.stats().entries == 0


# ----- 7. a server that ignores the output-token limit -----------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_a_server_that_ignores_the_token_limit_gets_a_note(emulator, red_png, stream):
    emulator.set_fault("no-limit", "ignore_limit")
    client = VisionClient(endpoint=emulator.url, deployment="no-limit", auth="none", max_retries=0, cache="off")
    result = client.send(client.prepare(PROMPT, [red_png], stream=stream))
    assert result.usage.completion_tokens == 4084
    note = "the server returned 4,084 output tokens for a limit of 2,048 (it ignores max_completion_tokens)"
    assert note in result.notices and note in result.footer()
