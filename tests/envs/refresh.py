"""Refresh the hosted-runtime constraint files (tests/envs/colab.txt, tests/envs/kaggle.txt) from the runtimes'
published package lists.

Each file is the part of a hosted runtime that matters to azmm_magic: the runtime's own Jupyter stack (kernel,
IPython, widgets, the notebook UI) and every package of the runtime that installing azmm_magic or its test tools
could touch, each pinned at the runtime's version. scripts/test-hosted.sh builds an environment from the file,
checks that ``pip install azmm_magic`` there upgrades or downgrades nothing, and runs the suite's core subset.

Sources (give them as files or URLs; this machine has no network but the package registries, so a developer
downloads them and passes the paths):
- Colab: ``pip-freeze.txt`` of https://github.com/googlecolab/backend-info (its ``os-info.txt`` names Python).
- Kaggle: Kaggle/docker-python builds FROM a Colab runtime image (the tag in its ``Dockerfile.tmpl``), so its
  base is the Colab freeze of that date, and ``kaggle_requirements.txt`` pins a few packages on top
  (ipywidgets, nbconvert, jupyter_server, ...). Pass the base freeze with ``--freeze`` and the pins that win with
  ``--override`` (``--override-file`` reads ``NAME==VERSION`` lines of kaggle_requirements.txt).

    python tests/envs/refresh.py colab --python python3.13 --freeze pip-freeze.txt --front-end notebook \\
        --source "googlecolab/backend-info pip-freeze.txt @ a724079 (2026-08-19)"
    python tests/envs/refresh.py kaggle --python python3.12 --freeze colab-2026-05-08-pip-freeze.txt --front-end jupyterlab \\
        --override-file kaggle_requirements.txt --override jupyterlab==3.6.8 --seed jupyterlab \\
        --release widgetsnbextension --release jupyterlab_widgets --release nbclient --release mistune --source "..."

The resolution runs ``pip install --dry-run --ignore-installed --report`` in a throwaway venv of that Python, so
the file lists exactly what pip would pick under the runtime's pins.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
#: The runtime's own Jupyter stack: present in the runtime whatever is installed on top.
RUNTIME_SEEDS = ["ipython", "ipykernel", "ipywidgets", "jupyter_client", "jupyter_core", "jupyter_server",
                 "traitlets", "notebook", "widgetsnbextension", "jupyterlab_widgets"]
#: What the core subset of the suite needs beyond the package (tests/envs/README.md).
TEST_TOOLS = ["pytest", "pytest-timeout", "pytest-xdist", "hypothesis", "httpx", "pydantic", "pandas", "playwright"]
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_text(where: str) -> str:
    if re.match(r"^https?://", where):
        with urllib.request.urlopen(where, timeout=60) as reply:  # noqa: S310 - a developer's own download
            return reply.read().decode("utf-8")
    return Path(where).read_text(encoding="utf-8")


def pins(text: str) -> dict[str, tuple[str, str]]:
    """``{canonical name: (name as written, version)}`` for each ``NAME==VERSION`` line."""
    found = {}
    for line in text.splitlines():
        m = PIN.match(line)
        if m:
            found[canonical(m.group(1))] = (m.group(1), m.group(2))
    return found


def dependency_names() -> list[str]:
    """The package's direct dependencies, by name only: the closure is what the runtime's pins pick."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = project["dependencies"] + project["optional-dependencies"].get("notebooks", [])
    return [re.split(r"[<>=!~ ;\[]", spec, maxsplit=1)[0] for spec in names]


def resolve(python: str, requirements: list[str], constraints: Path) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        report = Path(tmp) / "report.json"
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--dry-run", "--ignore-installed", "--report", str(report), "-c", str(constraints),
                        *requirements], check=True)
        data = json.loads(report.read_text(encoding="utf-8"))
        py = subprocess.run([str(venv / "bin" / "python"), "-c", "import platform; print(platform.python_version())"],
                            check=True, capture_output=True, text=True).stdout.strip()
    found = [(item["metadata"]["name"], item["metadata"]["version"]) for item in data["install"]]
    return [("python", py), *found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="the file to write: tests/envs/NAME.txt (colab, kaggle)")
    parser.add_argument("--freeze", required=True, help="the runtime's pip freeze (path or URL)")
    parser.add_argument("--override-file", action="append", default=[], help="NAME==VERSION lines that win")
    parser.add_argument("--override", action="append", default=[], help="one NAME==VERSION that wins")
    parser.add_argument("--release", action="append", default=[],
                        help="a runtime package that installing the overrides moves (pip/uv pick its version)")
    parser.add_argument("--seed", action="append", default=[], help="another package of the runtime to keep")
    parser.add_argument("--python", default=sys.executable, help="the runtime's Python (its os-info says which)")
    parser.add_argument("--front-end", required=True, choices=["notebook", "jupyterlab"],
                        help="the notebook UI the browser test drives in this runtime")
    parser.add_argument("--source", required=True, help="where the lists came from (repository, file, commit, date)")
    args = parser.parse_args(argv)

    runtime = pins(read_text(args.freeze))
    overrides = {}
    for where in args.override_file:
        overrides.update(pins(read_text(where)))
    overrides.update(pins("\n".join(args.override)))
    runtime.update(overrides)
    released = {canonical(name): name for name in args.release}
    for name in released:
        runtime.pop(name, None)

    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in runtime.values()), encoding="utf-8")
        seeds = RUNTIME_SEEDS + [s for s in args.seed if s not in RUNTIME_SEEDS]
        resolved = resolve(args.python, seeds + dependency_names() + TEST_TOOLS, constraints)

    python_version, packages = resolved[0][1], resolved[1:]
    in_runtime = set(runtime) | set(released)
    kept = sorted(((n, v) for n, v in packages if canonical(n) in in_runtime), key=lambda p: canonical(p[0]))
    missing = sorted(n for n, _ in packages if canonical(n) not in in_runtime)
    seed_names = {canonical(s) for s in seeds}
    lines = [
        f"# The {args.name} runtime's packages that matter to azmm_magic, at the runtime's versions "
        "(written by tests/envs/refresh.py; do not edit by hand).",
        f"# source: {args.source}",
        *(f"# override: {n}=={v}" for n, v in overrides.values()),
        *(f"# released (the overrides move it): {n}" for n in released.values()),
        f"# python: {python_version}",
        f"# front end: {args.front_end}",
        f"# refreshed: {datetime.date.today().isoformat()}",
        f"# runtime seeds (its Jupyter stack): {', '.join(sorted(seed_names))}",
        f"# not in the runtime (installing azmm_magic or the test tools adds them): {', '.join(missing)}",
        *(f"{n}=={v}" for n, v in kept),
    ]
    out = HERE / f"{args.name}.txt"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}: {len(kept)} pins, Python {python_version}, {len(missing)} packages added on top")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
