"""Secrets: a canary API key and a canary Entra token go through the scenarios users run (key auth from the
environment, bearer auth via a token provider, `%azure_vision login`, errors 401/404/400/429, streaming, a cut
stream, dry-run, config display, the cache, an executed-and-saved notebook). Neither canary may appear in any
display output, repr, exception message or formatted traceback, log record (everything captured at DEBUG,
including the openai SDK's and httpx's loggers), cache entry, or the saved notebook.

Note on the SDK: openai (this version) logs request *metadata* at DEBUG ("Sending HTTP Request: POST", retry
decisions, the x-request-id), never the headers; its logger also carries ``SensitiveHeadersFilter`` which
redacts ``api-key``/``authorization`` should headers ever be logged. The test below checks the real records.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

from azmm_magic import VisionClient
from azmm_magic.core.errors import AzureVisionError, ContentFilterError, IncompleteAnswerError
from tests.conftest import CANARY_KEY

CANARY_TOKEN = "entra-CANARY-token"  # the keyed emulator's bearer token (tests/conftest.py)
CANARIES = (CANARY_KEY, CANARY_TOKEN)


class Evidence:
    """Every text a user or a log could see, labelled, checked at the end."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, label: str, value: Any) -> None:
        if isinstance(value, BaseException):
            self.items.append((label + " str", str(value)))
            self.items.append((label + " repr", repr(value)))
            self.items.append((label + " traceback", "".join(traceback.format_exception(value))))
            return
        if hasattr(value, "_repr_mimebundle_"):
            for mime, text in value._repr_mimebundle_().items():
                self.items.append((f"{label} {mime}", str(text)))
        self.items.append((label + " repr", value if isinstance(value, str) else repr(value)))

    def check(self) -> None:
        assert len(self.items) > 10
        for label, text in self.items:
            for canary in CANARIES:
                assert canary not in text, f"secret leaked in {label}: {text[:300]}"


def _logs(caplog: pytest.LogCaptureFixture, evidence: Evidence) -> None:
    records = caplog.records
    assert any(r.name.startswith("openai") for r in records), "the SDK's debug log was not captured"
    for r in records:
        evidence.add(f"log {r.name}", r.getMessage())
        evidence.add(f"log args {r.name}", repr(r.args))


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpcore", "azmm_magic"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _faults(emulator, **specs: str) -> None:
    emulator.clear_faults()
    for deployment, spec in specs.items():
        emulator.set_fault(deployment, spec)


def test_key_from_environment_through_the_magic(shell, keyed_emulator, red_png, monkeypatch, capsys, debug_logs):
    ev = Evidence()
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", CANARY_KEY)
    _faults(keyed_emulator, **{"s-401": "401", "s-filter": "content_filter", "s-429": "429:0.01", "o4-mini": "cut:2"})
    shell.run_line_magic("config", f"AzureVision.endpoint = '{keyed_emulator.url}'")
    shell.run_line_magic("config", "AzureVision.deployment = 'vision'")
    shell.run_line_magic("config", "AzureVision.max_retries = 0")
    shell.user_ns["img"] = str(red_png)
    try:
        shell.run_cell_magic("azure_vision", "-i img -o streamed", "Describe it")  # streaming, printed live
        ev.add("streamed result", shell.user_ns["streamed"])
        ev.add("no-stream result", shell.run_cell_magic("azure_vision", "-i img --no-stream --refresh", "Describe it"))
        ev.add("cached result", shell.run_cell_magic("azure_vision", "-i img --no-stream", "Describe it"))
        ev.add("dry run", shell.run_cell_magic("azure_vision", "-i img --dry-run", "Describe it"))
        ev.add("config", shell.run_line_magic("azure_vision", "config"))
        ev.add("cache stats", shell.run_line_magic("azure_vision", "cache"))
        shell.run_line_magic("config", "AzureVision")  # prints the traits
        magics = shell.magics_manager.registry["AzureVision"]
        ev.add("settings", magics.session_settings())
        ev.add("client", magics.client())
        for line in ("--deployment s-401", "--deployment missing", "--deployment s-filter", "--deployment s-429",
                     "--deployment o4-mini", "--deployment s-401 --no-stream", "--deployment missing --no-stream"):
            with pytest.raises(UsageError) as info:
                shell.run_cell_magic("azure_vision", f"-i img {line}", "Describe it")
            ev.add(f"error {line}", info.value)
        # what IPython itself shows for an error cell
        result = shell.run_cell("%%azure_vision -i img --deployment s-401 --no-stream\nDescribe it")
        assert isinstance(result.error_in_exec, UsageError)
        ev.add("run_cell error", result.error_in_exec)
        assert keyed_emulator.chat_requests()[0]["auth"] == "api-key"
    finally:
        keyed_emulator.clear_faults()
    out = capsys.readouterr()
    ev.add("stdout", out.out)
    ev.add("stderr", out.err)
    assert "Describe" not in out.err or "UsageError" in out.err
    for key, raw in magics.answer_cache._data.items():
        ev.add("cache entry", key + raw)
    ev.add("request log", json.dumps(keyed_emulator.log()))
    _logs(debug_logs, ev)
    ev.check()


def test_bearer_token_provider_through_the_python_api(keyed_emulator, red_png, debug_logs):
    ev = Evidence()
    # answer-shaping faults (cut, content_filter_answer) need a deployment that exists on the keyed emulator
    _faults(keyed_emulator, **{"t-401": "401", "legacy-4o": "content_filter_answer", "t-429": "429:0.01",
                               "o4-mini": "cut:2"})

    def make(deployment: str) -> VisionClient:
        return VisionClient(endpoint=keyed_emulator.url, deployment=deployment, token_provider=lambda: CANARY_TOKEN,
                            max_retries=0)

    try:
        client = make("vision")
        ev.add("client", client)
        ev.add("settings", client.settings)
        ev.add("ask", client.ask("Describe it", images=[red_png]))
        ev.add("stream", list(client.stream("Describe it", images=[red_png], refresh=True))[-1])
        ev.add("aask", asyncio.run(client.aask("Describe it", images=[red_png], refresh=True)))
        assert {r["auth"] for r in keyed_emulator.chat_requests()} == {"bearer"}
        for deployment in ("t-401", "missing", "legacy-4o", "t-429", "o4-mini"):
            for how in ("ask", "stream", "aask"):
                c = make(deployment)
                with pytest.raises(AzureVisionError) as info:
                    if how == "ask":
                        c.ask("q", images=[red_png])
                    elif how == "stream":
                        list(c.stream("q", images=[red_png]))
                    else:
                        asyncio.run(c.aask("q", images=[red_png]))
                ev.add(f"error {deployment} {how}", info.value)
                if deployment == "legacy-4o":
                    assert isinstance(info.value, ContentFilterError)
                if deployment == "o4-mini" and how == "stream":
                    assert isinstance(info.value, IncompleteAnswerError) and info.value.partial_text
        for key, raw in client.cache._data.items():  # type: ignore[union-attr]
            ev.add("cache entry", key + raw)
    finally:
        keyed_emulator.clear_faults()
    _logs(debug_logs, ev)
    ev.check()


def test_login_reads_the_key_with_getpass(shell, keyed_emulator, red_png, monkeypatch, capsys, debug_logs):
    ev = Evidence()
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return CANARY_KEY + "  \n"

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    shell.run_line_magic("config", f"AzureVision.endpoint = '{keyed_emulator.url}'")
    shell.run_line_magic("config", "AzureVision.deployment = 'vision'")
    shell.run_line_magic("azure_vision", "login")
    assert prompts and "API key" in prompts[0]
    config = shell.run_line_magic("azure_vision", "config")
    assert "****" in repr(config) and "%azure_vision login" in repr(config)
    ev.add("config", config)
    shell.user_ns["img"] = str(red_png)
    ev.add("result", shell.run_cell_magic("azure_vision", "-i img --no-stream", "q"))
    assert keyed_emulator.chat_requests()[-1]["auth"] == "api-key"
    shell.run_line_magic("azure_vision", "logout")
    shell.run_line_magic("config", "AzureVision.max_retries = 0")
    with pytest.raises(UsageError) as info:  # no key any more: the emulator refuses
        shell.run_cell_magic("azure_vision", "-i img --no-stream --refresh", "q")
    ev.add("after logout", info.value)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "   ")
    with pytest.raises(UsageError, match="No key entered"):
        shell.run_line_magic("azure_vision", "login")
    out = capsys.readouterr()
    ev.add("stdout", out.out)
    ev.add("stderr", out.err)
    _logs(debug_logs, ev)
    ev.check()


@pytest.mark.parametrize("line", ["--api-key sk-1", "--key=sk-1", "--API-KEY sk-1", "--token t", "--azure-ad-token t",
                                  "-i x.png --api_key=sk-1"])
def test_keys_are_never_accepted_on_the_magic_line(shell, emulator, line):
    with pytest.raises(UsageError, match="Keys are never accepted on the magic line"):
        shell.run_cell_magic("azure_vision", line, "q")
    assert emulator.count() == 0


NOTEBOOK_CELLS = [
    "%load_ext azmm_magic\n%config AzureVision.deployment = 'vision'\n%config AzureVision.max_retries = 0",
    "from PIL import Image\nImage.new('RGB', (32, 24), (255, 0, 0)).save('red.png')",
    "%%azure_vision -i red.png -o answer\nWhat colour is it?",
    "%%azure_vision -i red.png --no-stream --refresh\nWhat colour is it?",
    "%%azure_vision -i red.png\nWhat colour is it?",
    "%%azure_vision -i red.png --dry-run\nWhat colour is it?",
    "%azure_vision config",
    "%azure_vision cache",
    "%config AzureVision",
    "%%azure_vision -i red.png --deployment missing --no-stream\nq",
    "%%azure_vision -i red.png --deployment nb-401\nq",
    "%%azure_vision -i red.png --deployment o4-mini\nq",
    "from azmm_magic import VisionClient\nclient = VisionClient(deployment='vision')\nprint(client, client.settings)\nanswer",
    "client.ask('Describe', images=['red.png'], refresh=True)",
]


def test_executed_and_saved_notebook_has_no_secret(keyed_emulator, tmp_path, monkeypatch):
    import nbformat

    from azmm_magic.frontends.demo import execute_notebook

    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", keyed_emulator.url)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", CANARY_KEY)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))  # this checkout's azmm_magic
    _faults(keyed_emulator, **{"nb-401": "401", "o4-mini": "cut:2"})
    src = tmp_path / "src"
    src.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in NOTEBOOK_CELLS]
    nbformat.write(nb, src / "secrets.ipynb")
    try:
        ipynb, html = execute_notebook(src / "secrets.ipynb", tmp_path / "out", timeout=120, allow_errors=True)
    finally:
        keyed_emulator.clear_faults()
    saved = ipynb.read_text(encoding="utf-8")
    executed = nbformat.read(ipynb, as_version=4)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])]
    text = json.dumps(outputs)
    assert "Azure OpenAI emulator" in text and "DRY RUN" in text and "****" in text
    assert text.count("UsageError") >= 3 and "INCOMPLETE" in text  # the three error cells ran and failed cleanly
    assert not [o for o in outputs if o.get("output_type") == "error"], "an error showed a traceback"
    assert {r["auth"] for r in keyed_emulator.chat_requests()} == {"api-key"}
    for canary in CANARIES:
        assert canary not in saved
        assert canary not in html.read_text(encoding="utf-8")
