"""Installs as a new user makes them.

- The wheel carries the notebooks and the teaching recording, and `azmm demo` runs from a plain install of it
  (no -e, no source tree, dependencies from the registry); the HTML it writes opens offline.
- Binder: an environment built only from binder/ (runtime.txt's Python, postBuild) runs every notebook, and their
  first cells load the extension without an "already loaded" line.
- scripts/install-browser.sh falls back to Playwright's own Chromium where there is no apt-get, and still fails
  where apt-get is there but leaves no Chromium.

The two ``venv`` tests share one fresh virtual environment per run, built by Binder's steps; postBuild's
`pip install .` builds the wheel and installs it (the same files as the wheel built here, checked against its
RECORD); it installs the `notebooks` extra (pandas) too. They are slow (a full install from the registry, then
kernels): `pytest -m venv --durations=0`. In the whole suite they are handed out first, so they start at once
(tests/conftest.py); under xdist one worker builds the environment and another needing it waits for it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.conftest import AZURE_ENV
from tests.test_demo_html import offline_page_report

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


def _venv_env(venv: Path, home: Path) -> dict[str, str]:
    """The environment of a new user's shell with ``venv`` activated: no PYTHONPATH into this checkout, no Azure
    settings, a HOME of its own (postBuild writes ~/.ipython there)."""
    env = {k: v for k, v in os.environ.items()
           if k not in AZURE_ENV and not k.startswith(("AZMM_", "PYTHON", "IPYTHON", "JUPYTER", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", HOME=str(home), VIRTUAL_ENV=str(venv),
               MPLBACKEND="Agg")
    return env


def _run(args: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="session")
def binder_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A fresh virtual environment built only from binder/: runtime.txt's Python, requirements.txt (if there is
    one), then postBuild, run from the repository root as repo2docker does. Built once per run: under xdist the
    first worker that needs it builds it in the run's common temporary directory while the others wait on a lock."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's directory, the parent of every worker's own
    base = shared / "binder-env"
    venv, home = base / "venv", base / "home"
    with (shared / "binder-env.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / "built.json").exists():
            shutil.rmtree(base, ignore_errors=True)  # what a failed build left
            _build_binder_env(venv, home)
        built = json.loads((base / "built.json").read_text())
    yield {"venv": venv, "home": home, "env": _venv_env(venv, home), "python": str(venv / "bin" / "python"),
           "install_seconds": built["install_seconds"]}


def _build_binder_env(venv: Path, home: Path) -> None:
    version = (ROOT / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    python = shutil.which(f"python{version}")
    assert python, f"binder/runtime.txt asks for Python {version}: python{version} is not on PATH"
    home.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    env = _venv_env(venv, home)
    if (ROOT / "binder" / "requirements.txt").exists():
        _run(["python", "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"], env=env, cwd=ROOT, timeout=900)
    _run(["bash", "binder/postBuild"], env=env, cwd=ROOT, timeout=900)
    (venv.parent / "built.json").write_text(json.dumps({"install_seconds": time.perf_counter() - started}))


@pytest.mark.venv
def test_binder_environment_runs_every_notebook(binder_env, tmp_path):
    print(f"binder environment built in {binder_env['install_seconds']:.0f} s")
    # the package came from the wheel pip built (not an editable link to this checkout), with its notebooks
    code = ("import json, azmm_magic.frontends.demo as d; folder = d.notebooks_folder(); "
            "print(json.dumps([d.__file__, str(folder), sorted(p.name for p in folder.iterdir())]))")
    probe = _run([binder_env["python"], "-c", code], env=binder_env["env"], cwd=tmp_path, timeout=120)
    module, folder, shipped = json.loads(probe.stdout)
    assert module.startswith(str(binder_env["venv"])) and folder.startswith(str(binder_env["venv"]))
    assert shipped == sorted([*NOTEBOOKS, "teaching-answers.jsonl"])
    # every notebook, executed by the environment's own Python and kernel, in a scratch copy of the folder
    script = (
        "import shutil, sys; from pathlib import Path\n"
        "from azmm_magic.frontends.demo import execute_notebook, notebooks_folder\n"
        "work = Path(sys.argv[1]) / 'work'; shutil.copytree(notebooks_folder(), work)\n"
        "for name in sys.argv[2:]:\n"
        "    execute_notebook(work / name, Path(sys.argv[1]) / 'out', timeout=240)\n"
        "    print('ran', name, flush=True)\n"
    )
    started = time.perf_counter()
    _run([binder_env["python"], "-c", script, str(tmp_path), *NOTEBOOKS], env=binder_env["env"], cwd=tmp_path, timeout=1500)
    print(f"{len(NOTEBOOKS)} notebooks executed in {time.perf_counter() - started:.0f} s")
    for name in NOTEBOOKS:
        nb = nbformat.read(tmp_path / "out" / name, as_version=4)
        for cell in (c for c in nb.cells if c.cell_type == "code"):
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            assert not errors, (name, cell.source, errors)
            if "raises-exception" in cell.metadata.get("tags", []):
                stderr = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stderr")
                assert stderr.startswith("UsageError: ") and len(stderr.strip().splitlines()) == 1, (name, stderr)
        # the kernel does not preload the extension: the notebook's own %load_ext loads it, silently (no
        # "already loaded" line); batch.ipynb and documents.ipynb import pandas, which postBuild's extra installs
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert first.source.endswith("\n%load_ext azmm_magic") and not first.outputs, (name, first.outputs)
        assert "already loaded" not in json.dumps([o for c in nb.cells for o in c.get("outputs", [])]), name


@pytest.mark.venv
def test_wheel_carries_the_notebooks_and_azmm_demo_runs_from_it(binder_env, tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("azmm_magic-*.whl")
    print(f"wheel: {wheel.name}, {wheel.stat().st_size / 1024:.0f} KiB")
    assert wheel.stat().st_size < 2 * 1024 * 1024
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    for name in [*NOTEBOOKS, "teaching-answers.jsonl"]:
        assert f"azmm_magic/notebooks/{name}" in names, name
    assert {n for n in names if n.startswith("azmm_magic/notebooks/")} == {f"azmm_magic/notebooks/{n}" for n in
                                                                          [*NOTEBOOKS, "teaching-answers.jsonl"]}
    for data in ("frontends/panel/dropzone.js", "frontends/panel/panel.css", "emulator/chat_request.schema.json", "py.typed"):
        assert f"azmm_magic/{data}" in names, data
    assert not any(n.startswith(("tests/", "notebooks/", "scripts/")) for n in names)

    # the environment's install holds exactly the wheel's files (postBuild's `pip install .` built the same wheel)
    site = next((binder_env["venv"] / "lib").glob("python3*/site-packages"))
    (record,) = site.glob("azmm_magic-*.dist-info/RECORD")
    installed = {line.split(",")[0] for line in record.read_text().splitlines() if line}
    assert {n for n in names if not n.startswith("azmm_magic-")} == {n for n in installed if n.startswith("azmm_magic/")
                                                                    and "__pycache__" not in n}

    # `azmm demo` from that install, in a folder far from the source tree
    out = tmp_path / "demo-output"
    proc = _run([str(binder_env["venv"] / "bin" / "azmm"), "demo", "--out", str(out)], env=binder_env["env"],
                cwd=tmp_path, timeout=600)
    assert "against the local emulator" in proc.stdout and "Executed in" in proc.stdout, proc.stdout
    html = out / "quickstart.html"
    body = html.read_text(encoding="utf-8")
    assert (out / "quickstart.ipynb").exists() and "Azure OpenAI emulator" in body and "<img" in body
    assert not (site / "azmm_magic" / "notebooks" / "swatches").exists()  # the notebook ran in a scratch copy
    # the HTML opens offline: no CDN, no console error
    assert offline_page_report(html) == {"console_errors": [], "page_errors": [], "external_requests": []}

    # the teaching notebook replays its shipped recording from the install
    _run([str(binder_env["venv"] / "bin" / "azmm"), "demo", "--notebook", "teaching", "--out", str(out)],
         env=binder_env["env"], cwd=tmp_path, timeout=600)
    assert "answers replayed: 4" in (out / "teaching.ipynb").read_text(encoding="utf-8")


def _stub(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _script_env(tmp_path: Path, tools: dict[str, str]) -> dict[str, str]:
    """A PATH with only the given stub tools and the few utilities the script itself uses."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname",):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    for name, body in tools.items():
        _stub(bin_dir / name, body)
    return {"PATH": str(bin_dir), "HOME": str(tmp_path)}


def test_install_browser_uses_playwright_where_there_is_no_apt_get(tmp_path):
    calls = tmp_path / "calls"
    env = _script_env(tmp_path, {})
    _stub(tmp_path / "python", f'echo "python $*" >> {calls}')
    env["AZMM_PYTHON"] = str(tmp_path / "python")
    proc = subprocess.run(["/bin/bash", str(ROOT / "scripts" / "install-browser.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text() == "python -m playwright install chromium\n"
    assert "apt-get not found; installing Playwright's own Chromium" in proc.stderr


def test_install_browser_uses_apt_get_and_fails_without_a_browser(tmp_path):
    calls = tmp_path / "calls"
    env = _script_env(tmp_path, {"apt-get": f'echo "apt-get $*" >> {calls}', "id": "echo 0"})
    _stub(tmp_path / "python", f'echo "python $*" >> {calls}')
    env["AZMM_PYTHON"] = str(tmp_path / "python")
    proc = subprocess.run(["/bin/bash", str(ROOT / "scripts" / "install-browser.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    # apt-get "installed" nothing: the script fails instead of leaving the browser tests to skip
    assert proc.returncode != 0
    lines = calls.read_text().splitlines()
    assert lines[0] == "apt-get update -qq"
    assert lines[1].startswith("apt-get install -y -qq --no-install-recommends chromium chromium-driver")
    assert not any(line.startswith("python") for line in lines)
