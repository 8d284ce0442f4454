"""Shared fixtures: the emulator on a free loopback port, a real InteractiveShell with the extension loaded,
and an environment scrubbed of any real Azure settings so tests never reach a real service."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CANARY_KEY = "sk-CANARY-KEY-7f3a9c"
AZURE_ENV = [
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_VERSION",
    "AZURE_OPENAI_DEPLOYMENT",
    "AZURE_OPENAI_DEPLOYMENT_NAME",
    "AZURE_OPENAI_CHAT_DEPLOYMENT_NAME",
]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject.toml's addopts): two workers per CPU this process may run on, at most 8. Much of the
    suite waits (kernels and servers starting, subprocesses, the emulator's pauses), so a second worker per CPU
    uses the idle time: on 2 CPUs, 4 workers ran it in 171 s, 2 in 218 s. Beyond 8 nothing is gained: the longest
    test alone takes about 100 s. (xdist itself would count physical cores with psutil: half the CPUs with
    hyper-threading, and in a container the host's.)"""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(2 * cpus, 8)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first: the ``venv`` ones (a fresh environment, then every notebook in it: about 100 s),
    then the browser tests. xdist (``--dist worksteal``) gives each worker a run of consecutive tests and lets idle
    workers take the not yet started end of another's, so these start at once on the first worker (which builds
    the environment once for both) instead of being the tail of the run while the other workers have finished."""
    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("venv"):
            return 0
        return 1 if item.nodeid.startswith("tests/test_browser.py::") else 2

    items.sort(key=rank)  # stable: the rest keep pytest's order


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AZURE_ENV + [k for k in os.environ if k.startswith("AZMM_")]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    from azmm_magic.service.limits import forget_rate_limits
    from azmm_magic.service.send import ACCEPTED_TOKEN_PARAMS

    forget_rate_limits()  # what one test's answers said of a deployment's budget does not pace the next test
    ACCEPTED_TOKEN_PARAMS.clear()  # nor which output-token parameter it accepted (both are per process, by design)


class Emulator:
    """Handle on a running emulator: its URL and its request log (read over HTTP, like any client would)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url: str = server.url

    def log(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/_emulator/requests", timeout=10) as r:
            return json.loads(r.read())

    def count(self) -> int:
        return int(self.log()["count"])

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.log()["requests"] if r["path"].endswith("/chat/completions")]

    def reset(self) -> None:
        req = urllib.request.Request(self.url + "/_emulator/requests", method="DELETE")
        urllib.request.urlopen(req, timeout=10).close()

    def set_fault(self, deployment: str, spec: str) -> None:
        """Inject a fault (azmm_magic/emulator/faults.py) for a deployment ('*' = all) via the control endpoint."""
        data = json.dumps({"deployment": deployment, "fault": spec}).encode()
        req = urllib.request.Request(self.url + "/_emulator/faults", data=data, method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def clear_faults(self) -> None:
        req = urllib.request.Request(self.url + "/_emulator/faults", method="DELETE")
        urllib.request.urlopen(req, timeout=10).close()


def _start(**config: Any) -> Any:
    from azmm_magic.emulator.server import EmulatorConfig, EmulatorServer

    server = EmulatorServer(EmulatorConfig(**config))
    server.start()
    return server


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Any]:
    server = _start()
    yield server
    server.stop()


@pytest.fixture
def emulator(emulator_server: Any) -> Emulator:
    """The open emulator (no key needed), its log reset for this test."""
    emu = Emulator(emulator_server)
    emu.reset()
    return emu


@pytest.fixture(scope="session")
def keyed_emulator_server() -> Iterator[Any]:
    server = _start(api_key=CANARY_KEY, bearer_token="entra-CANARY-token", deployments=["vision", "o4-mini", "legacy-4o"])
    yield server
    server.stop()


@pytest.fixture
def keyed_emulator(keyed_emulator_server: Any) -> Emulator:
    """An emulator that checks the key/token and knows only three deployments."""
    emu = Emulator(keyed_emulator_server)
    emu.reset()
    return emu


@pytest.fixture
def shell(emulator: Emulator) -> Iterator[Any]:
    """A fresh InteractiveShell (fresh Config) with the extension loaded and pointed at the emulator."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    InteractiveShell.clear_instance()
    cfg = Config()
    cfg.HistoryManager.enabled = False
    cfg.AzureVision.endpoint = emulator.url
    cfg.AzureVision.deployment = "vision-test"
    sh = InteractiveShell.instance(config=cfg)
    assert sh.extension_manager.load_extension("azmm_magic") is None
    yield sh
    dispose_shell(sh)


def dispose_shell(sh: Any) -> None:
    """Unload the extension and forget the shell, including IPython's atexit hook: otherwise every shell a test
    created runs reset() + gc.collect() at interpreter exit, which takes minutes after a few hundred tests."""
    import atexit

    from IPython.core.interactiveshell import InteractiveShell

    sh.extension_manager.unload_extension("azmm_magic")
    atexit.unregister(sh.atexit_operations)
    InteractiveShell.clear_instance()


def write_video(path: Path | str, count: int, paint: Any, *, size: tuple[int, int] = (320, 240), fps: int = 10,
                codec: str = "libx264", options: dict[str, str] | None = None) -> Path:
    """A video of ``count`` frames written with PyAV; ``paint(i)`` gives frame i as an HxWx3 uint8 array."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        if options:
            stream.options = options
        for i in range(count):
            for packet in stream.encode(av.VideoFrame.from_ndarray(paint(i), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def make_png(path: Path, size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (220, 20, 20)) -> Path:
    from PIL import Image

    Image.new("RGB", size, color).save(path)
    return path


@pytest.fixture
def red_png(tmp_path: Path) -> Path:
    return make_png(tmp_path / "red.png")


def uploaded_bytes(upload) -> int:
    """How many bytes of chosen files a FileUpload widget still holds (and would sync back to the page)."""
    from azmm_magic.frontends.panel.compat import is_legacy

    if is_legacy(upload):
        return sum(len(d) for d in upload.data) + sum(len(v["content"]) for v in upload.value.values())
    return sum(len(bytes(f["content"])) for f in upload.value)


def choose_files(upload, *files: tuple[str, bytes]) -> None:
    """Choose ``files`` (name, bytes) in a FileUpload widget: the state its front end sends after a selection, on
    ipywidgets 8 (``value``: a list of files) and 7 (``metadata`` + ``data``, and ``_counter`` increased)."""
    from azmm_magic.frontends.panel.compat import is_legacy

    if is_legacy(upload):
        upload.set_state({
            "metadata": [{"name": name, "type": "image/png", "size": len(data), "lastModified": 0} for name, data in files],
            "data": [memoryview(data) for _, data in files],
            "_counter": upload._counter + len(files),
        })
        return
    upload.set_state({
        "value": [
            {"name": name, "type": "image/png", "size": len(data), "content": memoryview(data), "last_modified": 0}
            for name, data in files
        ]
    })
