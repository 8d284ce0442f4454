"""Build the notebooks under notebooks/ from their text sources: notebooks/NAME.md (MyST Markdown, paired with
notebooks/NAME.ipynb by jupytext) is what you edit and review; notebooks/NAME.ipynb is generated from it.

    python scripts/build_notebooks.py                    # write every notebook (outputs stripped; the tests run them)
    python scripts/build_notebooks.py teaching.ipynb     # write one
    python scripts/build_notebooks.py --executed         # docs/quickstart.ipynb + docs/quickstart.html: the
                                                         # quickstart executed against the local emulator
    python scripts/build_notebooks.py --record-teaching  # re-record notebooks/teaching-answers.jsonl (teaching.ipynb
                                                         # with RECORD = True; the emulator unless Azure is configured)

The build adds what every shipped notebook has and its text source leaves out: an "Open in Colab" link in the first
Markdown cell and the install-where-missing lines above ``%load_ext azmm_magic``. It keeps the cell ids of the
notebook it replaces, so a rebuild changes only the cells that changed. jupytext is a dev dependency
(``pip install -e ".[dev]"``); importing this module for its constants does not need it.
"""

from __future__ import annotations

import difflib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

REPO = Path(__file__).resolve().parent.parent
ROOT = REPO / "notebooks"
DOCS = REPO / "docs"

#: The first code cell of every notebook's text source: load the extension (a Binder kernel does not preload it).
#: build() puts the install-where-missing lines of INSTALL above it.
LOAD = "%load_ext azmm_magic"

#: Where the notebooks are published: the "Open in Colab" links (README and each notebook's first cell) open them
#: from there. One place to change it (pyproject.toml's [project.urls] says the same).
REPOSITORY = "azmm-magic/azmm_magic"
BRANCH = "main"
#: the extra each notebook needs beyond the core install (the README's notebook table says the same)
EXTRAS = {"batch.ipynb": "[notebooks]", "documents.ipynb": "[notebooks]", "evaluate.ipynb": "[notebooks]"}
#: On Colab, Kaggle or any fresh environment the first cell installs the package where it is missing. Installing it
#: moves nothing the runtime already has (scripts/test-hosted.sh checks that), so no restart is needed.
INSTALL = """\
# Colab, Kaggle or a fresh environment: install azmm_magic where it is missing. It only adds what is missing
# (nothing the runtime has is upgraded), so the runtime needs no restart.
import importlib.util

if importlib.util.find_spec("azmm_magic") is None:
    %pip install -q "azmm_magic{extra}"
"""


def colab_url(name: str) -> str:
    """The "Open in Colab" address of notebooks/NAME."""
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/notebooks/{name}"


#: The shipped notebooks, in the README's order; each is built from notebooks/<stem>.md.
NOTEBOOKS = (
    "quickstart.ipynb",
    "teaching.ipynb",
    "explore.ipynb",
    "panel.ipynb",
    "batch.ipynb",
    "documents.ipynb",
    "evaluate.ipynb",
)


def text_source(name: str) -> Path:
    """The text file notebooks/NAME.ipynb is built from."""
    return ROOT / f"{Path(name).stem}.md"


def hosted_ready(name: str, cells: list[NotebookNode]) -> list[NotebookNode]:
    """``cells`` as shipped: an "Open in Colab" link in the first Markdown cell and the install-where-missing lines
    above ``%load_ext`` in the first code cell."""
    first_md = next(c for c in cells if c.cell_type == "markdown")
    first_code = next(c for c in cells if c.cell_type == "code")
    if not first_code.source.startswith(LOAD) or "[Open in Colab](" in first_md.source:
        raise SystemExit(f"{text_source(name)}: the first code cell must start with {LOAD} and the first Markdown "
                         "cell have no Colab link (this script adds both; remove them from the text file).")
    first_md.source += f"\n\n[Open in Colab]({colab_url(name)}) · runs here with no key, on the bundled emulator"
    first_code.source = INSTALL.format(extra=EXTRAS.get(name, "")) + first_code.source
    return cells


def keep_ids(cells: list[NotebookNode], before: list[NotebookNode]) -> None:
    """Give ``cells`` the ids of the cells they replace in ``before`` (unchanged cells, and changed cells where as
    many replace as were there), so a rebuild changes only the cells that changed."""
    matcher = difflib.SequenceMatcher(a=[c.source for c in before], b=[c.source for c in cells], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            for old, cell in zip(before[i1:i2], cells[j1:j2], strict=True):
                cell.id = old.get("id", cell.id)


def build(name: str) -> NotebookNode:
    """notebooks/NAME.ipynb as built from its text source (cell ids from the notebook there now, if any)."""
    import jupytext  # a dev dependency: the tests import this module's constants without it

    text = jupytext.read(text_source(name), fmt="md:myst")
    make = {"code": new_code_cell, "markdown": new_markdown_cell, "raw": new_raw_cell}
    cells = [make[c.cell_type](c.source, metadata=dict(c.metadata)) for c in text.cells]
    nb = new_notebook(cells=hosted_ready(name, cells))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    path = ROOT / name
    if path.exists():
        keep_ids(nb.cells, nbformat.read(path, as_version=4).cells)
    return nb


def render(name: str) -> str:
    """The text of notebooks/NAME.ipynb as built (tests/test_notebook_sources.py compares it with the file)."""
    return nbformat.writes(build(name)) + "\n"


def write(name: str) -> Path:
    path = ROOT / name
    path.write_text(render(name), encoding="utf-8")
    return path


#: The label the executed quickstart opens with (tests/test_notebooks.py checks it is there).
EXECUTED_LABEL = (
    "> **Executed against the local emulator, not a model.** This is `notebooks/quickstart.ipynb` run by "
    "`python scripts/build_notebooks.py --executed` with no Azure settings: every answer below is the bundled "
    "emulator's factual report about the images it received. Token counts, image sizes and the request bodies are "
    "what Azure would get. Run the notebook with your own deployment to see a model's answers."
)


def _azure_settings() -> list[str]:
    """The environment variables that could point a run at a real service (the executed copy must use the emulator)."""
    return [k for k in os.environ if k.startswith(("AZURE_OPENAI_", "OPENAI_", "AZMM_"))]


def build_executed() -> tuple[Path, Path]:
    """Execute the quickstart against the emulator; write docs/quickstart.ipynb and docs/quickstart.html."""
    from azmm_magic.frontends.demo import execute_notebook

    saved = {k: os.environ.pop(k) for k in _azure_settings()}  # the kernel inherits this environment
    try:
        with tempfile.TemporaryDirectory(prefix="azmm-executed-") as scratch:
            nb = nbformat.read(ROOT / "quickstart.ipynb", as_version=4)
            nb.cells.insert(0, new_markdown_cell(EXECUTED_LABEL))
            source = Path(scratch) / "quickstart.ipynb"
            nbformat.write(nb, source)
            ipynb, html = execute_notebook(source, Path(scratch) / "out", timeout=300)
            DOCS.mkdir(exist_ok=True)
            shutil.copy2(ipynb, DOCS / "quickstart.ipynb")
            shutil.copy2(html, DOCS / "quickstart.html")
    finally:
        os.environ.update(saved)
    return DOCS / "quickstart.ipynb", DOCS / "quickstart.html"


def record_teaching() -> Path:
    """Run teaching.ipynb with RECORD = True (Azure when this environment configures it, else the emulator) and
    copy the teaching-answers.jsonl it exports into notebooks/."""
    from azmm_magic.frontends.demo import execute_notebook

    nb = nbformat.read(ROOT / "teaching.ipynb", as_version=4)
    (switch,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("RECORD = False")]
    switch.source = switch.source.replace("RECORD = False", "RECORD = True", 1)
    with tempfile.TemporaryDirectory(prefix="azmm-record-") as scratch:
        shutil.copy2(ROOT / "teaching-answers.jsonl", scratch)  # the provenance cell reads the old one
        source = Path(scratch) / "teaching.ipynb"
        nbformat.write(nb, source)
        execute_notebook(source, Path(scratch) / "out", timeout=300)
        shutil.copy2(Path(scratch) / "teaching-answers.jsonl", ROOT / "teaching-answers.jsonl")
    return ROOT / "teaching-answers.jsonl"


if __name__ == "__main__":
    args = sys.argv[1:]
    if args == ["--executed"]:
        for path in build_executed():
            print(path)
    elif args == ["--record-teaching"]:
        print(record_teaching())
    else:
        for name in args or NOTEBOOKS:
            print(write(name))
