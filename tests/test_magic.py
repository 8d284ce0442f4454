"""%%azure_vision end to end: a real InteractiveShell, the real SDK, real HTTP to the emulator."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest
from IPython.core.error import UsageError

from azmm_magic.core.result import VisionResult
from azmm_magic.display.terminal import terminal_text
from tests.conftest import CANARY_KEY, dispose_shell


def test_cell_magic_returns_result_and_stores_variable(shell, emulator, red_png):
    shell.user_ns["img"] = str(red_png)
    out = shell.run_cell_magic("azure_vision", "-i {img} --no-stream -o answer", "What colour is it?")
    assert isinstance(out, VisionResult)
    assert shell.user_ns["answer"] is out
    assert "emulator" in out.text.lower() and "What colour is it?" in out.text
    bundle = out._repr_mimebundle_()
    assert {"text/plain", "text/markdown", "text/html"} <= set(bundle)
    assert "<img" in bundle["text/html"] and "vision-test" in bundle["text/html"]
    assert len(emulator.chat_requests()) == 1


def test_streaming_in_terminal_prints_live_and_stores(shell, emulator, red_png, capsys):
    shell.user_ns["img"] = str(red_png)
    out = shell.run_cell_magic("azure_vision", "-i img -o answer", "Describe")
    printed = capsys.readouterr().out
    answer = shell.user_ns["answer"]
    assert out is None  # terminal: text already printed live, not printed twice
    # the answer as terminal text (Markdown rendered line by line), after the images that were sent
    assert terminal_text(answer.text) in printed and "— vision-test" in printed
    assert printed.startswith("[sent 1 image: red.png · 64×48]\n") and "**" not in printed
    assert emulator.chat_requests()[0]["body"]["stream"] is True


def test_rerun_is_a_cache_hit_with_no_request(shell, emulator, red_png):
    shell.user_ns["img"] = str(red_png)
    first = shell.run_cell_magic("azure_vision", "-i img --no-stream", "Same")
    n = emulator.count()
    second = shell.run_cell_magic("azure_vision", "-i img", "Same")  # streaming flag does not change the key
    assert emulator.count() == n
    assert second.cached and second.text == first.text and "cached" in second.footer()
    shell.run_cell_magic("azure_vision", "-i img --no-stream --refresh", "Same")
    assert emulator.count() == n + 1
    shell.run_cell_magic("azure_vision", "-i img --no-stream --no-cache", "Same")
    assert emulator.count() == n + 2
    stats = shell.run_line_magic("azure_vision", "cache")
    assert "entries  1" in repr(stats) and "hits     1" in repr(stats), repr(stats)
    shell.run_line_magic("azure_vision", "cache clear")
    assert "entries  0" in repr(shell.run_line_magic("azure_vision", "cache"))


def test_dry_run_sends_nothing(shell, emulator, red_png):
    shell.user_ns["img"] = str(red_png)
    preview = shell.run_cell_magic("azure_vision", "-i img --detail high --dry-run", "What is it?")
    assert emulator.count() == 0
    text = repr(preview)
    assert "DRY RUN" in text and "input tokens" in text
    plain = preview._repr_mimebundle_()["text/plain"]
    assert "base64 chars>" in plain and '"detail": "high"' in plain


def test_braces_in_prompt_survive(shell, emulator, red_png):
    shell.user_ns.update(img=str(red_png), thing="the square")
    prompt = 'Describe {thing}. Answer as {"colour": "...", "shape": {"sides": 4}} and keep {unknown} and {{x}}.'
    shell.run_cell_magic("azure_vision", "-i img --no-stream", prompt)
    sent = emulator.chat_requests()[0]["body"]["messages"][-1]["content"][0]["text"]
    assert sent == 'Describe the square. Answer as {"colour": "...", "shape": {"sides": 4}} and keep {unknown} and {x}.'


def test_variable_sources_numpy_pil_figure(shell, emulator):
    shell.run_cell(textwrap.dedent("""
        import numpy as np
        from PIL import Image
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        arr = np.zeros((20, 30, 3), dtype=np.uint8); arr[..., 2] = 255
        pil = Image.new("RGB", (10, 10), (0, 255, 0))
        fig, ax = plt.subplots(figsize=(2, 1)); ax.plot([1, 2, 3])
    """))
    out = shell.run_cell_magic("azure_vision", "-i arr -i {pil} -i fig --no-stream", "Compare")
    assert len(out.images) == 3
    parts = emulator.chat_requests()[0]["body"]["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "image_url", "image_url"]


@pytest.mark.parametrize(
    "line, cell, needle",
    [
        ("-i nothere.png --no-stream", "q", "nothere.png"),
        ("--detail ultra", "q", "invalid choice"),
        ("-i {undefined_var}", "q", "undefined_var"),
        ("", "", "empty"),
        ("--api-key abc", "q", "never accepted"),
    ],
)
def test_user_mistakes_are_usage_errors_and_send_nothing(shell, emulator, line, cell, needle):
    with pytest.raises(UsageError, match=needle):
        shell.run_cell_magic("azure_vision", line, cell)
    assert emulator.count() == 0


def test_service_errors_are_usage_errors(shell, keyed_emulator, red_png, monkeypatch):
    shell.run_line_magic("config", f"AzureVision.endpoint = '{keyed_emulator.url}'")
    shell.run_line_magic("config", "AzureVision.max_retries = 0")
    shell.user_ns["img"] = str(red_png)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "wrong-key")
    with pytest.raises(UsageError, match=r"401"):
        shell.run_cell_magic("azure_vision", "-i img --no-stream --deployment vision", "q")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", CANARY_KEY)
    with pytest.raises(UsageError, match=r"Deployment 'missing' was not found"):
        shell.run_cell_magic("azure_vision", "-i img --no-stream --deployment missing", "q")
    with pytest.raises(UsageError, match=r"Deployment 'missing' was not found"):
        shell.run_cell_magic("azure_vision", "-i img --deployment missing", "q")  # streaming path too
    ok = shell.run_cell_magic("azure_vision", "-i img --no-stream --deployment vision", "q")
    assert ok.text and keyed_emulator.chat_requests()[-1]["auth"] == "api-key"


def test_line_subcommands(shell, emulator):
    cfg = shell.run_line_magic("azure_vision", "config")
    text = repr(cfg)
    assert "endpoint" in text and emulator.url in text and "%config" in text
    with pytest.raises(UsageError, match="unknown subcommand"):
        shell.run_line_magic("azure_vision", "frobnicate")
    helptext = shell.run_line_magic("azure_vision", "help")
    assert "--dry-run" in helptext.data


def test_emulator_subcommand_starts_and_points_session(emulator, red_png, caplog):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    InteractiveShell.clear_instance()
    cfg = Config()
    cfg.HistoryManager.enabled = False
    sh = InteractiveShell.instance(config=cfg)
    sh.extension_manager.load_extension("azmm_magic")
    try:
        with pytest.raises(UsageError, match="AZURE_OPENAI_ENDPOINT.*%azure_vision emulator"):
            sh.run_cell_magic("azure_vision", "--no-stream", "q")
        sh.run_line_magic("azure_vision", "emulator")
        sh.user_ns["img"] = str(red_png)
        out = sh.run_cell_magic("azure_vision", "-i img --no-stream", "hello")
        assert out.deployment == "emulator" and "emulator" in out.text.lower()
        # stopping it forgets what it set (endpoint, auth, style and its placeholder deployment) and closes the
        # session's connections first, so the server stops at once instead of waiting for a kept-alive one
        magics = sh.magics_manager.registry["AzureVision"]
        caplog.set_level(logging.INFO, logger="uvicorn.error")  # after the start, which set it to warnings
        sh.run_line_magic("azure_vision", "emulator stop")
        shutdown = [r.getMessage() for r in caplog.records if r.name == "uvicorn.error"]
        assert "Shutting down" in shutdown, shutdown
        assert not any("Waiting for" in m or "graceful shutdown exceeded" in m for m in shutdown), shutdown
        assert (magics.endpoint, magics.deployment, magics.auth) == (None, None, None)
    finally:
        dispose_shell(sh)


def test_magic_help_is_the_docstring(shell):
    doc = shell.find_cell_magic("azure_vision").__doc__
    assert "--dry-run" in doc and "%azure_vision config" in doc and "{name}" in doc


def test_loading_the_extension_is_cheap():
    code = textwrap.dedent("""
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        sh = InteractiveShell.instance()
        sh.extension_manager.load_extension("azmm_magic")
        heavy = [m for m in ("openai", "PIL", "matplotlib", "numpy", "starlette", "uvicorn", "httpx") if m in sys.modules]
        print(heavy)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_v1_style_with_entra_through_the_magic(shell, keyed_emulator, red_png, monkeypatch):
    """auth=entra on the /openai/v1/ URL style: azure-identity's provider (over a test credential) is used."""
    import time as _time

    from azure.core.credentials import AccessToken
    from azure.identity import get_bearer_token_provider

    import azmm_magic.service.sdk as sdk_module

    class TestCredential:
        issued = 0

        def get_token(self, *scopes, **kwargs):
            TestCredential.issued += 1
            assert scopes == ("https://cognitiveservices.azure.com/.default",)
            return AccessToken("entra-CANARY-token", int(_time.time()) + 3600)

    monkeypatch.setattr(
        sdk_module, "entra_provider",
        lambda: get_bearer_token_provider(TestCredential(), "https://cognitiveservices.azure.com/.default"),
    )
    shell.run_line_magic("config", f"AzureVision.endpoint = '{keyed_emulator.url}/openai/v1/'")
    shell.run_line_magic("config", "AzureVision.auth = 'entra'")
    shell.user_ns["img"] = str(red_png)
    out = shell.run_cell_magic("azure_vision", "-i img --no-stream --deployment vision", "q1")
    shell.run_cell_magic("azure_vision", "-i img --deployment vision -o second", "q2")
    reqs = keyed_emulator.chat_requests()
    assert [r["path"] for r in reqs] == ["/openai/v1/chat/completions"] * 2
    assert [r["auth"] for r in reqs] == ["bearer", "bearer"]
    assert out.text and shell.user_ns["second"].text
    assert TestCredential.issued == 1  # a valid token is reused by azure-identity, not fetched per request
