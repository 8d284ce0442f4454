"""The shipped notebooks run top to bottom under nbclient against the emulator (they start it themselves); their
setup cells keep a configured service; the executed quickstart in docs/ is there, labelled and up to date."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from azmm_magic.frontends.demo import execute_notebook, find_notebook
from tests.conftest import dispose_shell
from tests.test_demo_html import _external_refs

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
#: Notebooks whose setup cell picks the service (the lab replays a recording instead; its own setup is tested too).
WITH_SETUP = [name for name in NOTEBOOKS if name != "teaching.ipynb"]


def _outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _code(name: str) -> list[str]:
    return [c.source for c in nbformat.read(ROOT / "notebooks" / name, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, tmp_path):
    ipynb, html = execute_notebook(find_notebook(name), tmp_path, timeout=240)
    nb = nbformat.read(ipynb, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if "raises-exception" in cell.metadata.get("tags", []):
            # IPython shows a UsageError as one stderr line, without a traceback
            stderr = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stderr")
            assert stderr.startswith("UsageError: ") and len(stderr.strip().splitlines()) == 1, (cell.source, stderr)
            assert not errors
        else:
            assert not errors, (cell.source, errors)
        for o in cell.outputs:  # a figure shows as a chart, never as its repr alone
            data = o.get("data", {})
            if data.get("text/plain", "").startswith("<Figure size"):
                assert "image/png" in data, (name, cell.source)
            if o.get("output_type") in ("display_data", "execute_result"):  # no empty output (a live stream view
                assert any(str(v).strip() for v in data.values()), (name, cell.source)  # becomes the answer)
    # the failing-on-purpose cell is the last code cell (VS Code's Run All stops at it, ignoring the tag)
    tagged = [i for i, c in enumerate(code) if "raises-exception" in c.metadata.get("tags", [])]
    assert tagged in ([], [len(code) - 1]), (name, tagged)
    # the first cell installs the package where it is missing (not here), loads the extension and says nothing
    assert code[0].source.endswith("\n%load_ext azmm_magic") and not code[0].outputs, (name, code[0].outputs)
    assert "already loaded" not in json.dumps(_outputs(nb))
    assert html.exists() and html.stat().st_size > 10_000
    assert not (ROOT / "notebooks" / "swatches").exists()  # nothing written next to the notebooks


def test_quickstart_shows_images_answer_and_cache(tmp_path):
    ipynb, html = execute_notebook(find_notebook("quickstart.ipynb"), tmp_path, timeout=240)
    nb = nbformat.read(ipynb, as_version=4)
    text = json.dumps(_outputs(nb), ensure_ascii=False)
    assert "Azure OpenAI emulator (local, not a model) running at" in text
    assert "Azure OpenAI emulator" in text and "not a model" in text
    assert "data:image/png;base64" in text  # thumbnails rendered
    assert "· cached" in text and "DRY RUN" in text and "Estimated cost" in text
    body = html.read_text(encoding="utf-8")
    assert "Azure OpenAI emulator" in body and "<img" in body


def test_explore_shows_the_chart(tmp_path):
    ipynb, _ = execute_notebook(find_notebook("explore.ipynb"), tmp_path, timeout=240)
    nb = nbformat.read(ipynb, as_version=4)
    (chart_cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.rstrip().endswith("\nchart")]
    assert any("image/png" in o.get("data", {}) for o in chart_cell.outputs), chart_cell.outputs


def test_lab_has_objectives_timings_exercises_and_a_record_switch():
    nb = nbformat.read(ROOT / "notebooks" / "teaching.ipynb", as_version=4)
    intro = nb.cells[0].source
    assert "By the end of this lab you can" in intro
    minutes = [int(m) for m in re.findall(r"^\| \d\. [^|]+\| (\d+) \|", intro, re.M)]
    assert len(minutes) == 8 and sum(minutes) == 90, minutes
    code = _code("teaching.ipynb")
    assert any(s.startswith("RECORD = False") for s in code)  # the switch is in the notebook, no env var
    assert not any("AZMM_TEACHING_RECORD" in s or "os.environ" in s for s in code)
    exercises = sorted(set(re.findall(r"^(my_\w+) = None", "\n".join(code), re.M)))
    checker = next(s for s in code if "def check(" in s)
    assert len(exercises) >= 5 and all(name in checker for name in exercises), exercises
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for needed in ("reviewing AI output", "uploading photos to a cloud service", "For instructors",
                   "Deployment name, not model name", "token_rule", "What it costs", "az login"):
        assert needed in markdown, needed


def _fresh_shell(monkeypatch, env: dict[str, str], config: dict[str, str]):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AZMM_WARMUP", "0")
    InteractiveShell.clear_instance()
    cfg = Config()
    cfg.HistoryManager.enabled = False
    for key, value in config.items():
        setattr(cfg.AzureVision, key, value)
    sh = InteractiveShell.instance(config=cfg)
    return sh


AZURE = "https://my-resource.openai.azure.com/"
CONFIGURED = {
    "%config": ({}, {"endpoint": AZURE, "deployment": "vision"}, False),
    "environment, chat deployment name": (
        {"AZURE_OPENAI_ENDPOINT": AZURE, "AZURE_OPENAI_CHAT_DEPLOYMENT_NAME": "vision", "AZURE_OPENAI_API_KEY": "k"}, {},
        False),
    "%config endpoint, login key, env deployment": ({"AZURE_OPENAI_DEPLOYMENT_NAME": "vision"}, {"endpoint": AZURE}, True),
}


@pytest.mark.parametrize("name", WITH_SETUP)
@pytest.mark.parametrize("how", list(CONFIGURED))
def test_setup_cell_keeps_a_configured_endpoint(name, how, monkeypatch, capsys):
    env, config, login = CONFIGURED[how]
    (setup,) = [s for s in _code(name) if "%azure_vision emulator" in s]
    sh = _fresh_shell(monkeypatch, env, config)
    try:
        assert sh.run_cell("%load_ext azmm_magic").success
        if login:
            monkeypatch.setattr("getpass.getpass", lambda prompt="": "typed-key")
            assert sh.run_cell("%azure_vision login").success
        assert sh.run_cell(setup).success
        from azmm_magic import session

        state = session(sh)
        assert state.emulator_url is None and not state.uses_emulator
        assert state.settings.endpoint == AZURE and state.settings.deployment == "vision"
        assert "Using my-resource.openai.azure.com" in capsys.readouterr().out
    finally:
        dispose_shell(sh)


@pytest.mark.parametrize("name", WITH_SETUP)
def test_setup_cell_starts_the_emulator_when_nothing_is_configured(name, monkeypatch):
    (setup,) = [s for s in _code(name) if "%azure_vision emulator" in s]
    sh = _fresh_shell(monkeypatch, {}, {})
    try:
        assert sh.run_cell("%load_ext azmm_magic").success and sh.run_cell(setup).success
        from azmm_magic import session

        assert session(sh).uses_emulator and session(sh).settings.deployment == "emulator"
    finally:
        dispose_shell(sh)


def test_lab_records_against_a_configured_endpoint_not_the_emulator(monkeypatch, tmp_path):
    code = _code("teaching.ipynb")
    switch = next(s for s in code if s.startswith("RECORD = False"))
    setup = next(s for s in code if "if RECORD:" in s and "%azure_vision emulator" in s)
    monkeypatch.chdir(tmp_path)
    sh = _fresh_shell(monkeypatch, {"AZURE_OPENAI_ENDPOINT": AZURE, "AZURE_OPENAI_API_KEY": "k"}, {})
    try:
        assert sh.run_cell("%load_ext azmm_magic").success
        assert sh.run_cell(switch.replace("RECORD = False", "RECORD = True").replace("'emulator'", "'vision'")).success
        assert sh.run_cell(setup).success
        from azmm_magic import session

        state = session(sh)
        assert state.emulator_url is None
        assert state.settings.endpoint == AZURE and state.settings.deployment == "vision"
        assert state.settings.cache == "sqlite"
    finally:
        dispose_shell(sh)


def test_executed_quickstart_in_docs_is_labelled_offline_and_up_to_date():
    """docs/quickstart.ipynb and .html are the quickstart executed against the emulator by
    `python scripts/build_notebooks.py --executed` (the README links them); they must match the notebook."""
    executed = nbformat.read(ROOT / "docs" / "quickstart.ipynb", as_version=4)
    assert executed.cells[0].cell_type == "markdown"
    assert "Executed against the local emulator, not a model" in executed.cells[0].source
    assert [c.source for c in executed.cells[1:]] == [
        c.source for c in nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4).cells
    ], "docs/quickstart.ipynb is out of date: python scripts/build_notebooks.py --executed"
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code)
    text = json.dumps(_outputs(executed), ensure_ascii=False)
    assert "Azure OpenAI emulator" in text and "data:image" in text and "DRY RUN" in text
    body = (ROOT / "docs" / "quickstart.html").read_text(encoding="utf-8")
    assert "Executed against the local emulator, not a model" in body and "<img" in body
    assert "Azure OpenAI emulator" in body
    assert _external_refs(body) == []  # opens offline: nothing loaded from the network
