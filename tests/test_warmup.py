"""The background warm-up (azmm_magic.features.warmup): silent, offline, errors deferred to the first real call,
off by a setting, and safe against a main-thread import of a module it is importing."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from PIL import Image
from traitlets.config import Config

from azmm_magic import VisionClient
from azmm_magic.core.errors import ConfigError
from azmm_magic.core.settings import Settings
from azmm_magic.emulator import EmulatorConfig, EmulatorServer
from azmm_magic.features import warmup
from azmm_magic.service.sdk import SdkClients

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZMM_WARMUP", "AZMM_DEPLOYMENT", "AZMM_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert warmup.wait(30)


@pytest.fixture(scope="module")
def emu():
    with EmulatorServer(EmulatorConfig()) as running:
        yield running


def settings_for(url: str, **more: object) -> Settings:
    return Settings.resolve({"endpoint": url, "deployment": "d", "auth": "none", "api_style": "azure", **more})


def shell_for(url: str | None) -> InteractiveShell:
    InteractiveShell.clear_instance()
    cfg = Config()
    cfg.HistoryManager.enabled = False
    if url:
        cfg.AzureVision.endpoint = url
        cfg.AzureVision.deployment = "d"
        cfg.AzureVision.auth = "none"
        cfg.AzureVision.api_style = "azure"
    return InteractiveShell.instance(config=cfg)


def warm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "azmm-warmup"]


def test_load_ext_warms_up_silently_and_builds_the_session_client(emu, capfd, monkeypatch):
    builds: list[tuple[str, bool]] = []
    real_build = SdkClients.build

    def spy(self, *, asynchronous):  # noqa: ANN001
        builds.append((threading.current_thread().name, asynchronous))
        return real_build(self, asynchronous=asynchronous)

    monkeypatch.setattr(SdkClients, "build", spy)
    shell = shell_for(emu.url)
    emu.reset()
    shell.run_line_magic("load_ext", "azmm_magic")
    started = warmup.running()
    assert warmup.wait(60)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # never prints
    magics = shell.magics_manager.registry["AzureVision"]
    assert builds == [("azmm-warmup", False)]
    magics.client().sdk.sync()  # the session's client: the one the warm-up built
    assert builds == [("azmm-warmup", False)]
    assert all(not w.errors for w in started), [w.errors for w in started]
    assert emu.requests == []  # nothing sent
    shell.run_line_magic("unload_ext", "azmm_magic")


def test_warmup_opens_no_connection(emu, monkeypatch):
    connects: list[object] = []
    real_connect = socket.socket.connect

    def spy(self, address):  # noqa: ANN001
        if threading.current_thread().name == "azmm-warmup":
            connects.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", spy)
    client = VisionClient(settings_for(emu.url), cache="off")
    emu.reset()
    warm = warmup.start(client.settings, build=lambda: client.sdk)
    assert warm is not None and warm.wait(60)
    assert connects == [] and emu.requests == []
    assert not warm.errors, warm.errors
    assert "sdk round trip" in warm.timings  # the SDK's first-request work, done over an in-process transport


def test_the_offline_round_trip_uses_no_credential(emu):
    asked: list[str] = []

    def provider() -> str:
        asked.append(threading.current_thread().name)
        return "token"

    settings = settings_for(emu.url, auth="entra")
    emu.reset()
    warm = warmup.start(settings, build=lambda: SdkClients(settings, token_provider=provider))
    assert warm is not None and warm.wait(60)
    assert not warm.errors, warm.errors
    assert asked == [] and emu.requests == []  # no token requested, nothing sent


def test_an_error_is_deferred_to_the_first_call(emu, monkeypatch, capfd):
    def broken(self, *, asynchronous):  # noqa: ANN001
        raise ConfigError("The SDK refused the settings (test)", settings=("endpoint",))

    monkeypatch.setattr(SdkClients, "build", broken)
    client = VisionClient(settings_for(emu.url), cache="off")
    warm = warmup.start(client.settings, modules=("azmm_magic_no_such_module",), build=lambda: client.sdk)
    assert warm is not None and warm.wait(60)
    assert capfd.readouterr() == ("", "")
    assert {name for name, _ in warm.errors} == {"import azmm_magic_no_such_module", "sdk client"}
    with pytest.raises(ConfigError, match="refused the settings"):  # the first real call meets it itself
        client.ask("hi", [Image.new("RGB", (8, 8))])

    shell = shell_for(emu.url)
    shell.run_line_magic("load_ext", "azmm_magic")  # the warm-up fails silently, the cell reports it
    assert warmup.wait(60)
    assert capfd.readouterr() == ("", "")
    shell.user_ns["img"] = Image.new("RGB", (8, 8))
    with pytest.raises(UsageError, match="refused the settings"):
        shell.run_cell_magic("azure_vision", "-i {img}", "hi")
    shell.run_line_magic("unload_ext", "azmm_magic")


def test_incomplete_settings_are_not_an_error():
    warm = warmup.start(Settings.resolve({"endpoint": None}), build=lambda: SdkClients(Settings.resolve()))
    assert warm is not None and warm.wait(60)
    assert not warm.errors


def test_the_setting_turns_it_off(emu, monkeypatch):
    assert warmup.start(settings_for(emu.url, warmup=False)) is None
    monkeypatch.setenv("AZMM_WARMUP", "0")
    assert warmup.start() is None
    shell = shell_for(emu.url)
    shell.run_line_magic("load_ext", "azmm_magic")
    assert warm_threads() == [] and warmup.running() == []
    shell.run_line_magic("unload_ext", "azmm_magic")
    monkeypatch.delenv("AZMM_WARMUP")
    shell = shell_for(None)
    shell.run_line_magic("config", "AzureVision.warmup = False")
    shell.run_line_magic("load_ext", "azmm_magic")
    shell.run_line_magic("azure_vision", "emulator")
    try:
        assert warm_threads() == []
    finally:
        shell.run_line_magic("azure_vision", "emulator stop")
        shell.run_line_magic("unload_ext", "azmm_magic")


_CONCURRENT = """
import sys
sys.path[:0] = [{root!r}, {pkgs!r}]
import gate
from azmm_magic.core.settings import Settings
from azmm_magic.features import warmup

warm = warmup.start(Settings.resolve(), modules=("slowpkg.sub",))
assert gate.importing.wait(30), "the warm-up never imported slowpkg"  # it is inside slowpkg's (slow) import now
import slowpkg.sub  # the main thread imports the same modules meanwhile
from slowpkg import VALUE
assert VALUE == 42 and slowpkg.sub.READY, "partially initialised module"
assert warm.wait(30) and not warm.errors, warm.errors
print("ok", flush=True)
"""


def test_a_main_thread_import_of_a_module_being_warmed_up_does_not_deadlock(tmp_path):
    pkg = tmp_path / "slowpkg"
    pkg.mkdir()
    (tmp_path / "gate.py").write_text("import threading\nimporting = threading.Event()\n")
    # a slow import (the sleeps stand for its work): the main thread arrives while the warm-up is inside it
    (pkg / "__init__.py").write_text("import time, gate\ngate.importing.set()\ntime.sleep(0.4)\nVALUE = 42\n")
    (pkg / "sub.py").write_text("import time\nfrom slowpkg import VALUE\ntime.sleep(0.2)\nREADY = VALUE == 42\n")
    code = textwrap.dedent(_CONCURRENT).format(root=str(ROOT), pkgs=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_in_process_emulator_is_warmed_up_too(capfd):
    shell = shell_for(None)
    shell.run_line_magic("load_ext", "azmm_magic")
    try:
        shell.run_line_magic("azure_vision", "emulator")
        started = warmup.running()
        assert warmup.wait(60)
        magics = shell.magics_manager.registry["AzureVision"]
        assert any("emulator" in w.timings for w in started)  # its first-request work ran in the background
        assert all(not w.errors for w in started), [w.errors for w in started]
        assert magics.emulator.requests == []  # nothing sent
        capfd.readouterr()
    finally:
        shell.run_line_magic("azure_vision", "emulator stop")
        shell.run_line_magic("unload_ext", "azmm_magic")


def test_a_waiting_first_call_skips_what_it_does_itself():
    """Run All: the first cell comes at once. The warm-up finishes the step under way, its imports and the
    session's client, and skips the steps that only do ahead of time what that cell is about to do."""
    under_way, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def first() -> None:
        under_way.set()
        release.wait(30)
        ran.append("import openai")

    warm = warmup.WarmUp([
        ("import openai", first),
        ("import PIL.Image", lambda: ran.append("import PIL.Image")),
        ("ssl context", lambda: ran.append("ssl context")),
        ("sdk client", lambda: ran.append("sdk client")),
        ("sdk round trip", lambda: ran.append("sdk round trip")),
        ("emulator", lambda: ran.append("emulator")),
    ]).start()
    assert under_way.wait(30)
    warm.hurry()
    release.set()
    assert warm.wait(30)
    assert ran == ["import openai", "import PIL.Image", "sdk client"]
    assert warm.skipped == ["ssl context", "sdk round trip", "emulator"]


def test_the_cell_magic_hurries_the_warm_up(monkeypatch, emu):
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(warmup, "wait", lambda *a, **k: calls.append(k) or True)
    InteractiveShell.clear_instance()
    cfg = Config()
    cfg.HistoryManager.enabled = False
    sh = InteractiveShell.instance(config=cfg)
    try:
        sh.run_line_magic("load_ext", "azmm_magic")
        sh.run_line_magic("config", f"AzureVision.endpoint = {emu.url!r}")
        sh.run_line_magic("config", "AzureVision.deployment = 'gpt-4o'")
        sh.run_line_magic("config", "AzureVision.auth = 'none'")
        sh.user_ns["img"] = Image.new("RGB", (16, 12), (200, 30, 30))
        sh.run_cell_magic("azure_vision", "-i img --no-stream", "Colour?")
        assert calls and calls[0] == {"hurry": True}
    finally:
        sh.run_line_magic("unload_ext", "azmm_magic") if "azmm_magic" in sh.extension_manager.loaded else None
        InteractiveShell.clear_instance()
