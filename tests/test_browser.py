"""The panel in a real browser: JupyterLab and Notebook (each headless, loopback, token) + Playwright driving
Debian's Chromium. The same test runs in every front end installed (the server fixture is parametrized over them):
JupyterLab 4 and Notebook 7 in the dev environment; classic Notebook 6.5 with ipywidgets 7.7.1 (Colab's stack) and
JupyterLab 3.6 with ipywidgets 8.1.5 (Kaggle's) in the hosted-runtime environments (scripts/test-hosted.sh sets
AZMM_FRONT_ENDS to the one it checks).

A notebook that loads the extension, starts the emulator, asks a streamed %%azure_vision cell (its live view must
become the answer: one output with both thumbnails, none left empty) and shows the panel is opened and run; an image is
chosen through the upload button's file chooser (its label counts the files chosen) and another dropped on the
drop zone; the variable picker offers the image variable and says why the others are not offered; a prompt is
typed, Send clicked, and the emulator's answer must appear under the thumbnails (shown once, in the image row); a
second question goes with Ctrl+Enter; "to new cell" inserts the equivalent cell right below the panel's cell. The
panel never overflows sideways (no horizontal scrollbar), at two widths.
Screenshots go to test-artifacts/, named by front end and version (JupyterLab 4's without a prefix); with
AZMM_UPDATE_DOCS=1 JupyterLab 4's light one is also copied to docs/panel.png (the panel page's picture) and its
streamed cell to docs/quickstart-cell.png (the README's first picture).

Nothing here skips: a missing Chromium, JupyterLab, Notebook or Playwright fails the test (scripts/install-browser.sh
installs Chromium; the dev extra installs the rest).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.chromium import launch
from tests.conftest import AZURE_ENV, make_png

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
WAIT_MS = 180_000  # generous: kernel start and first import on a busy 2-core machine
# read at import: the autouse _clean_env fixture removes every AZMM_* variable before the test runs
UPDATE_DOCS = os.environ.get("AZMM_UPDATE_DOCS") == "1"
#: A streamed cell run in the browser before the panel (its picture is the README's first one).
CELL = "%%azure_vision -i red.png -i gradient --detail low\nWhat is in these two images? One line each."
FRONT_END_NAMES = [n for n in os.environ.get("AZMM_FRONT_ENDS", "jupyterlab,notebook").split(",") if n]


@dataclass(frozen=True)
class FrontEnd:
    """How to start one front end and drive it from the page: ``lab`` front ends (JupyterLab 3/4, Notebook 7)
    expose ``window.jupyterapp`` (a JupyterFrontEnd: commands, shell.currentWidget is the notebook panel) and share
    the notebook command ids; classic Notebook 6 has the global ``Jupyter.notebook``."""

    name: str
    version: str
    module: str
    prefix: str  # of the screenshots' names

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def lab(self) -> bool:
        return not (self.name == "notebook" and self.major < 7)

    def server_args(self, port: int, token: str, root: Path) -> list[str]:
        if not self.lab:  # classic Notebook 6: its own server and option names
            return ["--no-browser", "--NotebookApp.ip=127.0.0.1", f"--NotebookApp.port={port}",
                    "--NotebookApp.port_retries=0", f"--NotebookApp.token={token}", f"--NotebookApp.notebook_dir={root}",
                    "--NotebookApp.terminals_enabled=False", "--allow-root"]
        app = "LabApp" if self.name == "jupyterlab" else "JupyterNotebookApp"
        extra = ["--LabApp.news_url="] if self.name == "jupyterlab" else []
        if self.name == "jupyterlab" and self.major >= 4:
            extra.append("--LabApp.extension_manager=readonly")  # no news feed, no extension manager: no network
        return ["--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", f"--{app}.expose_app_in_browser=True",
                *extra, "--ServerApp.terminals_enabled=False", "--allow-root"]  # CI runs as root

    def notebook_url(self, base: str, token: str) -> str:
        path = "/lab/tree/" if self.name == "jupyterlab" else "/notebooks/"
        return f"{base}{path}panel-e2e.ipynb?token={token}"

    # the page's JavaScript for each step
    @property
    def cell_selector(self) -> str:
        return ".jp-Notebook .jp-Cell" if self.lab else "#notebook-container .cell"

    @property
    def output_selector(self) -> str:
        """One output of a cell."""
        return ".jp-OutputArea-output" if self.lab else ".output_subarea"

    @property
    def app_ready(self) -> str:
        if self.lab:
            return "() => window.jupyterapp && window.jupyterapp.commands.hasCommand('notebook:run-all-cells')"
        return "() => window.Jupyter && Jupyter.notebook && Jupyter.notebook._fully_loaded"

    @property
    def kernel_ready(self) -> str:
        if self.lab:
            return ("() => { const w = window.jupyterapp.shell.currentWidget;"
                    " return !!(w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
                    " && w.sessionContext.session.kernel.connectionStatus === 'connected'); }")
        return "() => !!(Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected())"

    @property
    def run_all(self) -> str:
        if self.lab:
            return "() => window.jupyterapp.commands.execute('notebook:run-all-cells')"
        return "() => Jupyter.notebook.execute_cell_range(1, Jupyter.notebook.ncells())"  # cell 0 ran in settle()

    def settle(self, page: Any) -> None:
        """Classic Notebook: its widget manager loads the kernel's widgets when the kernel connects (a comm round
        trip); widgets made while that runs can be lost. Run the first cell alone and wait for its answer: the
        kernel answers in order, so the manager's load is done by then. (JupyterLab and Notebook 7 have not shown
        this race.)"""
        if self.lab:
            return
        page.wait_for_function("() => !!(Jupyter.notebook.kernel && Jupyter.notebook.kernel.widget_manager)")
        page.evaluate("() => Jupyter.notebook.execute_cells([0])")
        page.wait_for_function("() => Jupyter.notebook.get_cell(0).input_prompt_number === 1")

    @property
    def cell_sources(self) -> str:
        if not self.lab:
            return "() => Jupyter.notebook.get_cells().map(c => [c.cell_type, c.get_text()])"
        # JupyterLab 4 / Notebook 7: the shared model's cells; JupyterLab 3: the model's observable list
        return ("() => { const m = window.jupyterapp.shell.currentWidget.content.model;"
                " if (!m.contentFactory) return m.sharedModel.cells.map(c => [c.cell_type, c.getSource()]);"
                " const out = []; for (let i = 0; i < m.cells.length; i++) { const c = m.cells.get(i);"
                " out.push([c.type, c.value.text]); } return out; }")


def front_end(name: str) -> FrontEnd:
    """The installed version of front end ``name``; a missing one fails the test (never skips)."""
    from importlib import metadata

    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{name} is not installed: the dev extra installs JupyterLab and Notebook")
    major = version.split(".")[0]
    prefix = "" if (name, major) == ("jupyterlab", "4") else ("notebook7-" if (name, major) == ("notebook", "7")
                                                              else f"{name}{major}-")
    return FrontEnd(name, version, name, prefix)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings_dir: Path) -> None:
    """No news/update checks (no network) and no toast that could cover the panel."""
    target = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}))


@pytest.fixture(params=FRONT_END_NAMES)
def jupyter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict]:
    """JupyterLab or Notebook on a free loopback port with a token, rooted in a temp dir holding the test notebook."""
    fe = front_end(request.param)
    module = fe.module
    root = tmp_path / "root"
    root.mkdir()
    nb = new_notebook(cells=[
        new_code_cell("%load_ext azmm_magic"),
        new_code_cell("%azure_vision emulator"),
        new_code_cell("import numpy as np\nimport matplotlib.pyplot as plt\n"
                      "gradient = np.linspace(0, 1, 64 * 96 * 3).reshape(64, 96, 3)\n"
                      "counts = np.zeros((20, 30), dtype=np.int64)"),
        new_code_cell(CELL),
        new_code_cell("%azure_vision panel"),
        new_markdown_cell("The end of the notebook."),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "panel-e2e.ipynb")
    make_png(root / "red.png", (160, 120), (220, 30, 30))
    make_png(root / "blue.png", (200, 100), (30, 60, 220))
    home = tmp_path / "home"
    _write_settings(home / "lab-settings")
    env = {k: v for k, v in os.environ.items() if k not in AZURE_ENV and not k.startswith("AZMM_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),  # this checkout's package
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        MPLBACKEND="Agg",
    )
    token = secrets.token_hex(16)
    port = _free_port()
    log_path = tmp_path / f"{module}.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *fe.server_args(port, token, root)],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{module} exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{module} did not start:\n{log_path.read_text()}")
            time.sleep(0.25)
        yield {"front_end": fe, "root": root, "log": log_path, "url": fe.notebook_url(base, token), "prefix": fe.prefix}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def test_panel_with_chromium(jupyter):
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    root = jupyter["root"]
    fe: FrontEnd = jupyter["front_end"]
    prefix = jupyter["prefix"]  # of the screenshots' names
    with sync_playwright() as p:
        browser = launch(p)  # Debian's Chromium where there is apt-get (a missing one fails), else Playwright's
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2400}, device_scale_factor=1)
            page.set_default_timeout(WAIT_MS)
            page.goto(jupyter["url"])
            page.wait_for_selector(fe.cell_selector)
            page.wait_for_function(fe.app_ready)
            page.wait_for_function(fe.kernel_ready)  # wait until the kernel is up, then run every cell
            fe.settle(page)
            page.evaluate(fe.run_all)
            # the streamed cell: its live view became the answer (one output, none left empty), with both thumbnails
            cell = page.locator(fe.cell_selector).nth(3)
            outputs = cell.locator(fe.output_selector)
            expect(outputs.first).to_contain_text("Azure OpenAI emulator")
            expect(outputs).to_have_count(1)
            expect(outputs.locator("figure img")).to_have_count(2)
            expect(outputs).to_contain_text("gradient")
            panel = page.locator(".azmm-panel")
            expect(panel).to_have_count(1)
            expect(panel.locator(".azmm-send")).to_be_visible()
            upload = panel.locator(".azmm-upload")
            expect(upload).to_have_text("Choose files (0)")
            page.wait_for_timeout(300)
            panel.screenshot(path=str(ARTIFACTS / f"{prefix}panel-empty.png"))

            # 1. an image through the upload button's file chooser
            with page.expect_file_chooser() as chooser:
                upload.click()
            chooser.value.set_files(str(root / "red.png"))
            expect(panel.locator(".azmm-thumb")).to_have_count(1)
            expect(upload).to_have_text("Choose files (1)")  # the label counts the files chosen
            # 2. another dropped on the drop zone (a real drop event carrying a File)
            blue = list((root / "blue.png").read_bytes())
            panel.locator(".azmm-drop-zone").evaluate(
                """(zone, bytes) => {
                    const dt = new DataTransfer();
                    dt.items.add(new File([new Uint8Array(bytes)], 'blue.png', {type: 'image/png'}));
                    zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
                    zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
                }""",
                blue,
            )
            expect(panel.locator(".azmm-thumb")).to_have_count(2)
            expect(upload).to_have_text("Choose files (2)")  # a dropped file counts too
            thumbs = panel.locator(".azmm-thumbs img")
            expect(thumbs).to_have_count(2)
            for i in range(2):
                thumbs.nth(i).wait_for(state="visible")
                assert thumbs.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), "thumbnail did not render"
            expect(panel.locator(".azmm-estimate")).to_contain_text("input tokens")
            # the image variable is offered; the int64 array and the pyplot module are not, and the panel says why
            expect(panel.locator(".azmm-variables select option")).to_have_text(["gradient"])
            expect(panel.locator(".azmm-variable-note")).to_contain_text("counts (int64 array")
            expect(panel.locator(".azmm-variable-note")).to_contain_text("plt (the pyplot module")

            # 3. a prompt, Send, and the emulator's answer streamed into the panel
            panel.locator(".azmm-prompt textarea").fill("What colours are these two images?")
            panel.locator(".azmm-send").click()
            answer = panel.locator(".azmm-answer-box")
            expect(answer).to_contain_text("Azure OpenAI emulator")
            expect(answer.locator(".azmm-footer")).to_contain_text("out tokens")
            expect(answer).to_contain_text("What colours are these two images?")
            expect(answer.locator("img")).to_have_count(0)  # the thumbnails are in the image row, shown once
            expect(panel.locator(".azmm-thumbs img")).to_have_count(2)
            expect(panel.locator(".azmm-send")).to_be_enabled()
            expect(panel.locator(".azmm-message")).to_have_text("")

            # 4. Ctrl+Enter in the prompt sends, without re-running the cell (the panel and its history stay)
            prompt = panel.locator(".azmm-prompt textarea")
            prompt.fill("And which one is wider?")
            prompt.press("Control+Enter")
            expect(answer).to_contain_text("And which one is wider?")
            expect(page.locator(".azmm-panel")).to_have_count(1)
            expect(panel.locator(".azmm-history")).to_contain_text("And which one is wider? (2 images)")

            # 5. "to new cell" inserts the equivalent cell right below the panel's cell, at once
            expected = ("%%azure_vision -i panel_uploads/red-" + _digest(root / "red.png") + ".png -i panel_uploads/blue-"
                        + _digest(root / "blue.png") + ".png\nAnd which one is wider?")
            panel.locator("button", has_text="to new cell").click()
            expect(panel.locator(".azmm-cell-source textarea")).to_have_value(expected)
            expect(panel.locator(".azmm-cell-note")).to_contain_text("Inserted the equivalent cell below the panel")
            sources = page.evaluate(fe.cell_sources)
            assert sources[4] == ["code", "%azure_vision panel"] and sources[5] == ["code", expected], sources
            assert sources[6] == ["markdown", "The end of the notebook."] and len(sources) == 7, sources
            assert len(list((root / "panel_uploads").glob("*.png"))) == 2

            # 6. no horizontal overflow (it showed a permanent scrollbar), wide and narrow
            for width in (1280, 760):
                page.set_viewport_size({"width": width, "height": 2400})
                try:  # the layout follows the resize on the page's next frames: wait until the panel fits
                    page.wait_for_function("el => el.scrollWidth === el.clientWidth", arg=panel.element_handle(),
                                           timeout=10_000)
                except PlaywrightTimeoutError:
                    pass  # it does not: the assertion says by how much
                overflow = panel.evaluate("el => el.scrollWidth - el.clientWidth")
                assert overflow == 0, f"the panel overflows by {overflow}px at a {width}px wide window"
            page.screenshot(path=str(ARTIFACTS / f"{prefix}panel-narrow.png"), full_page=True)
            page.set_viewport_size({"width": 1280, "height": 2400})

            page.wait_for_timeout(300)  # let the last layout settle before the picture (not an assertion)
            panel.screenshot(path=str(ARTIFACTS / f"{prefix}panel.png"))
            cell.screenshot(path=str(ARTIFACTS / f"{prefix}quickstart-cell.png"))
            page.screenshot(path=str(ARTIFACTS / f"{prefix}panel-page.png"), full_page=True)
            if fe.lab:  # the same panel in the dark theme (to check it reads well in both); classic Notebook has none
                page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
                page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
                page.wait_for_timeout(500)
                panel.screenshot(path=str(ARTIFACTS / f"{prefix}panel-dark.png"))
        except Exception:  # what the page showed when a step failed (CI keeps test-artifacts/)
            for context in browser.contexts:
                for open_page in context.pages:
                    open_page.screenshot(path=str(ARTIFACTS / f"{prefix}failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    if UPDATE_DOCS and not prefix:  # refresh the README's picture (JupyterLab's) on request only
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(ARTIFACTS / "panel.png", ROOT / "docs" / "panel.png")
        shutil.copyfile(ARTIFACTS / "quickstart-cell.png", ROOT / "docs" / "quickstart-cell.png")
    assert "Traceback" not in jupyter["log"].read_text()


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]
