"""Hosted notebooks (Colab, Kaggle): the dependency bounds admit the runtimes' own versions, the install check
catches a moved package, Colab's Secrets panel is a settings source, and the panel asks for Colab's custom widget
manager. scripts/test-hosted.sh runs this file inside the Colab- and Kaggle-pinned environments too."""

from __future__ import annotations

import json
import re
import sys
import tomllib
import types
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from azmm_magic.core import hosted
from azmm_magic.core.settings import Settings
from tests.envs import check

ROOT = Path(__file__).resolve().parent.parent
ENVS = {name: ROOT / "tests" / "envs" / f"{name}.txt" for name in ("colab", "kaggle")}
#: what each runtime has that made earlier bounds move it (the reason for tests/envs)
RUNTIME_FACTS = {
    "colab": {"ipython": "7.34.0", "ipykernel": "6.17.1", "ipywidgets": "7.7.1", "pillow": "11.3.0",
              "traitlets": "5.7.1", "jupyter-client": "7.4.9", "notebook": "6.5.7"},
    "kaggle": {"ipython": "7.34.0", "ipywidgets": "8.1.5", "nbconvert": "6.4.5", "jupyterlab": "3.6.8",
               "pillow": "11.3.0", "nbclient": "0.5.13"},
}


def _header(path: Path, key: str) -> str:
    match = re.search(rf"^# {key}: (.+)$", path.read_text(encoding="utf-8"), re.M)
    assert match, f"{path.name} has no '# {key}:' line"
    return match.group(1)


@pytest.mark.parametrize("name", list(ENVS))
def test_constraint_file_is_dated_sourced_and_pins_the_runtime(name):
    path = ENVS[name]
    pins = check.read_pins(path)
    for package, version in RUNTIME_FACTS[name].items():
        assert pins.get(package) == version, (name, package, pins.get(package))
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", _header(path, "refreshed"))
    assert "googlecolab/backend-info" in _header(path, "source")
    assert re.fullmatch(r"3\.\d+\.\d+", _header(path, "python"))
    assert _header(path, "front end") in {"notebook", "jupyterlab"}


@pytest.mark.parametrize("name", list(ENVS))
def test_every_dependency_bound_admits_the_runtime_version(name):
    """pip keeps an installed package that satisfies the bound: a bound above the runtime's version would move it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = check.read_pins(ENVS[name])
    refused = []
    for spec in project["dependencies"]:
        req = Requirement(spec)
        have = pins.get(check.canonical(req.name))
        if have is not None and not req.specifier.contains(Version(have), prereleases=True):
            refused.append(f"{req} excludes {name}'s {have}")
    assert not refused, refused


def _report(*items: tuple[str, str, bool]) -> dict:
    return {"install": [{"metadata": {"name": n, "version": v}, "is_direct": d} for n, v, d in items]}


def test_install_check_names_a_moved_package(tmp_path, capsys):
    spec = tmp_path / "colab.txt"
    spec.write_text("# python: 3.13.0\nipython==7.34.0\npillow==11.3.0\n", encoding="utf-8")
    report = tmp_path / "report.json"
    report.write_text(json.dumps(_report(("azmm_magic", "0.1.0", True), ("av", "19.0.2", False))))
    assert check.main([str(spec), "--report", str(report)]) == 0
    assert "moves nothing" in capsys.readouterr().out
    report.write_text(json.dumps(_report(("azmm_magic", "0.1.0", True), ("Pillow", "13.0.0", False),
                                         ("ipython", "9.19.1", False))))
    assert check.main([str(spec), "--report", str(report)]) == 1
    out = capsys.readouterr().out
    assert "Pillow 11.3.0 -> 13.0.0" in out and "ipython 7.34.0 -> 9.19.1" in out


# ----- Colab's Secrets panel -----------------------------------------------------------------------------------------
class _NotFound(Exception):
    pass


@pytest.fixture
def colab(monkeypatch):
    """A stand-in for Colab's ``google.colab`` package: ``userdata.get`` raises for a missing secret, as Colab's does."""
    secrets: dict[str, str] = {}
    asked: list[str] = []

    def get(name: str) -> str:
        asked.append(name)
        if name == "AZURE_OPENAI_DEPLOYMENT":
            raise PermissionError("this notebook was not granted access")  # Colab's NotebookAccessError
        if name not in secrets:
            raise _NotFound(name)
        return secrets[name]

    google, colab_pkg = types.ModuleType("google"), types.ModuleType("google.colab")
    userdata = types.ModuleType("google.colab.userdata")
    userdata.get = get  # type: ignore[attr-defined]
    colab_pkg.userdata = userdata  # type: ignore[attr-defined]
    google.colab = colab_pkg  # type: ignore[attr-defined]
    for name, module in (("google", google), ("google.colab", colab_pkg), ("google.colab.userdata", userdata)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(hosted, "_asked", {})
    yield types.SimpleNamespace(secrets=secrets, asked=asked)


def test_colab_secrets_are_a_settings_source(colab, monkeypatch):
    for var in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_KEY", "AZURE_OPENAI_DEPLOYMENT",
                "AZURE_OPENAI_DEPLOYMENT_NAME", "AZURE_OPENAI_CHAT_DEPLOYMENT_NAME", "OPENAI_API_VERSION"):
        monkeypatch.delenv(var, raising=False)
    colab.secrets.update(AZURE_OPENAI_ENDPOINT="https://myres.openai.azure.com/", AZURE_OPENAI_API_KEY="sk-colab-secret",
                         AZURE_OPENAI_DEPLOYMENT_NAME="gpt-4o-vision")
    s = Settings.resolve()
    assert s.endpoint == "https://myres.openai.azure.com/" and s.deployment == "gpt-4o-vision"
    assert s.api_key is not None and s.api_key.reveal() == "sk-colab-secret"
    assert s.sources["api_key"] == "Colab secret AZURE_OPENAI_API_KEY"
    assert "sk-colab-secret" not in repr(s)
    asked = len(colab.asked)
    Settings.resolve()
    assert len(colab.asked) == asked, "Colab's secrets are read once per process"
    colab.secrets["OPENAI_API_VERSION"] = "2025-04-01-preview"  # added later: read again on request only
    assert "OPENAI_API_VERSION" not in hosted.colab_secrets(["OPENAI_API_VERSION"])
    assert hosted.colab_secrets(["OPENAI_API_VERSION"], refresh=True) == {"OPENAI_API_VERSION": "2025-04-01-preview"}
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://fromenv.openai.azure.com/")  # the environment wins
    assert Settings.resolve().sources["endpoint"] == "env AZURE_OPENAI_ENDPOINT"


def test_colab_secrets_shown_by_config_without_the_key(colab, monkeypatch):
    """What ``%azure_vision config`` lists (Settings.describe): where each value came from, never the key."""
    for var in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    colab.secrets.update(AZURE_OPENAI_ENDPOINT="https://myres.openai.azure.com/", AZURE_OPENAI_API_KEY="sk-colab-secret")
    text = repr(Settings.resolve().describe())
    assert "Colab secret AZURE_OPENAI_ENDPOINT" in text and "Colab secret AZURE_OPENAI_API_KEY" in text
    assert "sk-colab-secret" not in text


def test_no_colab_no_secrets_asked(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(hosted, "_asked", {})
    assert hosted.colab_secrets(["AZURE_OPENAI_API_KEY"]) == {} and hosted._asked == {}


# ----- Colab's custom widget manager ---------------------------------------------------------------------------------
def test_panel_turns_on_colabs_custom_widget_manager(shell, emulator, monkeypatch):
    """Colab renders third-party widgets (the drop zone) only with its custom widget manager: anywidget turns it on
    when the drop zone is made, and the panel's output carries the manager's URL (ipywidgets 8's cell result) or is
    displayed after it is on (ipywidgets 7, whose display Colab's hook marks)."""
    from anywidget import _util

    calls: list[str] = []
    output = types.ModuleType("google.colab.output")
    widgets_state = types.SimpleNamespace(_installed_url=None)

    def enable_custom_widget_manager() -> None:
        calls.append("enable")
        widgets_state._installed_url = "https://colab.example/manager.min.js"

    output.enable_custom_widget_manager = enable_custom_widget_manager  # type: ignore[attr-defined]
    output._widgets = widgets_state  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    _util.enable_custom_widget_manager_once.cache_clear()
    try:
        panel = shell.run_line_magic("azure_vision", "panel")
        assert calls == ["enable"]  # on before the panel is shown
        from azmm_magic.frontends.panel.compat import colab_widget_metadata, is_legacy

        meta = colab_widget_metadata()["application/vnd.jupyter.widget-view+json"]["colab"]
        assert meta == {"custom_widget_manager": {"url": "https://colab.example/manager.min.js"}}
        if not is_legacy(panel.upload):
            bundle, metadata = panel._repr_mimebundle_()
            assert "application/vnd.jupyter.widget-view+json" in bundle
            assert metadata["application/vnd.jupyter.widget-view+json"]["colab"] == meta
    finally:
        _util.enable_custom_widget_manager_once.cache_clear()


# ----- VS Code -------------------------------------------------------------------------------------------------------
#: what VS Code's notebook renderers show without an extension (its built-in renderers and the Jupyter extension's
#: widget renderer); application/javascript is not among them.
VSCODE_MIMETYPES = {"text/plain", "text/html", "text/markdown", "image/png", "image/jpeg", "image/gif", "image/svg+xml",
                    "application/json", "application/vnd.jupyter.widget-view+json"}


def test_outputs_use_only_what_vscode_renders(shell, emulator, red_png, tmp_path, monkeypatch):
    published: list[dict] = []
    original = shell.display_pub.publish

    def publish(data, metadata=None, **kwargs):
        published.append(data)
        return original(data, metadata=metadata, **kwargs)

    monkeypatch.setattr(shell.display_pub, "publish", publish)
    shown = [
        shell.run_cell_magic("azure_vision", f"-i {red_png}", "What colour is it?"),
        shell.run_cell_magic("azure_vision", f"-i {red_png} --no-stream", "And now?"),
        shell.run_cell_magic("azure_vision", f"-i {tmp_path}/*.png --each", "Describe"),
        shell.run_line_magic("azure_vision", "config"),
        shell.run_line_magic("azure_vision", "usage"),
    ]
    bundles = [b for b in published if isinstance(b, dict)]
    for obj in shown:
        bundle = obj._repr_mimebundle_() if hasattr(obj, "_repr_mimebundle_") else None
        if isinstance(bundle, tuple):
            bundle = bundle[0]
        if bundle:
            bundles.append(bundle)
    assert len(bundles) >= 4  # the streamed answer, the gallery, the settings and usage tables (at least)
    mimetypes = {m for b in bundles for m in b}
    assert mimetypes <= VSCODE_MIMETYPES, mimetypes - VSCODE_MIMETYPES
    html = "".join(str(b.get("text/html", "")) for b in bundles)
    assert "<script" not in html.lower() and "text/html" in mimetypes  # VS Code runs no scripts in outputs


def test_panel_front_end_touches_page_globals_only_behind_checks():
    """dropzone.js runs in VS Code and Colab too: the only page globals it reads (window.Jupyter, the widget
    manager's context) are looked up defensively, and the drop zone's own code needs nothing else."""
    js = (ROOT / "azmm_magic" / "frontends" / "panel" / "dropzone.js").read_text(encoding="utf-8")
    assert "window.jupyterapp" not in js and "require(" not in js and "define(" not in js
    assert 'typeof window !== "undefined" && window.Jupyter && window.Jupyter.notebook' in js
    assert "manager && manager.context" in js and 'reason: "this front end does not let the panel add cells"' in js


@pytest.mark.parametrize("nbconvert, mistune, refused", [
    ("6.4.5", "0.8.4", False),  # Kaggle's pin
    ("7.16.4", "3.1.0", True),  # parse_axt_heading: one line instead of a traceback
    ("7.16.4", "3.0.2", False),
    ("7.16.5", "3.3.4", False),
])
def test_demo_says_which_nbconvert_cannot_export(monkeypatch, nbconvert, mistune, refused):
    from importlib import metadata

    from azmm_magic.core.errors import ConfigError
    from azmm_magic.frontends import demo

    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: {"nbconvert": nbconvert, "mistune": mistune}.get(name) or real(name))
    if refused:
        with pytest.raises(ConfigError, match=r"nbconvert 7\.16\.4 cannot export HTML with mistune 3\.1\.0: pip install"):
            demo.check_nbconvert()
    else:
        demo.check_nbconvert()


def test_every_notebook_opens_in_colab_and_installs_where_missing():
    """Each shipped notebook: an "Open in Colab" link to itself (README too), and a first code cell that installs
    the package (with the extra it needs) only where it is missing, then loads the extension."""
    import nbformat

    from scripts.build_notebooks import EXTRAS, NOTEBOOKS, colab_url

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in NOTEBOOKS:
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        first_md = next(c for c in nb.cells if c.cell_type == "markdown")
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert f"[Open in Colab]({colab_url(name)})" in first_md.source, name
        assert colab_url(name) in readme, f"README has no Colab link for {name}"
        assert 'if importlib.util.find_spec("azmm_magic") is None:' in first_code.source, name
        assert f'%pip install -q "azmm_magic{EXTRAS.get(name, "")}"' in first_code.source, name
        assert first_code.source.rstrip().endswith("%load_ext azmm_magic"), name
    with_pandas = [n for n in NOTEBOOKS if "pandas" in (ROOT / "notebooks" / n).read_text(encoding="utf-8")]
    assert sorted(n for n in with_pandas if "import pandas" in (ROOT / "notebooks" / n).read_text(encoding="utf-8")) \
        == sorted(n for n, extra in EXTRAS.items() if extra == "[notebooks]")
