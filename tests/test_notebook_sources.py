"""The notebooks' text sources: every notebooks/NAME.ipynb is exactly what scripts/build_notebooks.py builds from
notebooks/NAME.md (a MyST Markdown file paired with it by jupytext), text shared between notebooks is the same in
each copy, and a rebuild keeps the cell ids of the cells it keeps."""

from __future__ import annotations

import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest

from scripts import build_notebooks as build

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "notebooks"

#: Text that several notebooks show word for word: (first words, last words, the notebooks that have it).
WITH_SETUP = ("quickstart", "explore", "panel", "batch", "documents", "evaluate")
SHARED = [
    ("# Which service?", "%azure_vision emulator", WITH_SETUP),
    ("**What the emulator can and cannot show.**", "that needs a real deployment.", ("teaching", "explore", "batch")),
    # the Azure guide; its point 4 ends differently in the lab (its setup is the RECORD switch)
    ("Everything above runs the same against", "(Microsoft Entra ID).", ("quickstart", "teaching")),
    ("5. **Mini models count images differently.**", "within 24 hours.", ("quickstart", "teaching")),
]


def test_the_notebooks_are_the_text_sources_and_nothing_else():
    assert sorted(p.name for p in FOLDER.glob("*.ipynb")) == sorted(build.NOTEBOOKS)
    assert sorted(p.name for p in FOLDER.glob("*.md")) == sorted(build.text_source(n).name for n in build.NOTEBOOKS)


@pytest.mark.parametrize("name", build.NOTEBOOKS)
def test_notebook_is_built_from_its_text_source(name):
    """The committed notebook is byte for byte what the script writes: edit notebooks/NAME.md, then run the script."""
    assert build.render(name) == (FOLDER / name).read_text(encoding="utf-8"), (
        f"notebooks/{name} is not built from {build.text_source(name).name}: python scripts/build_notebooks.py"
    )


@pytest.mark.parametrize("name", build.NOTEBOOKS)
def test_text_source_is_paired_and_carries_no_generated_lines(name):
    """Jupyter (with jupytext) opens the text file as a notebook paired with the .ipynb; the Colab link and install
    lines are the script's to add, not the text's."""
    text = jupytext.read(build.text_source(name))
    assert text.metadata["jupytext"]["formats"] == "ipynb,md:myst"
    assert text.metadata["jupytext"]["text_representation"]["format_name"] == "myst"
    assert text.metadata["kernelspec"]["name"] == "python3"
    raw = build.text_source(name).read_text(encoding="utf-8")
    assert "Open in Colab" not in raw and "find_spec(\"azmm_magic\")" not in raw
    assert "jupytext_version:" not in raw  # saving from another jupytext version changes nothing


@pytest.mark.parametrize("first, last, notebooks", SHARED, ids=[s[0][:24] for s in SHARED])
def test_shared_text_is_the_same_in_every_copy(first, last, notebooks):
    copies = {}
    for name in build.NOTEBOOKS:
        text = build.text_source(name).read_text(encoding="utf-8")
        if first in text:
            start = text.index(first)
            copies[Path(name).stem] = text[start : text.index(last, start) + len(last)]
    assert sorted(copies) == sorted(notebooks)
    reference = copies[notebooks[0]]
    for stem, copy in copies.items():
        assert copy == reference, f"notebooks/{stem}.md: {first!r} differs from notebooks/{notebooks[0]}.md's copy"


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A copy of the quickstart's text source and notebook, built there."""
    for suffix in (".md", ".ipynb"):
        shutil.copy2(FOLDER / f"quickstart{suffix}", tmp_path)
    monkeypatch.setattr(build, "ROOT", tmp_path)
    return tmp_path


def test_rebuild_keeps_the_ids_of_the_cells_it_keeps(scratch):
    before = nbformat.read(scratch / "quickstart.ipynb", as_version=4).cells
    source = scratch / "quickstart.md"
    text = source.read_text(encoding="utf-8")
    anchor = "## Images from anywhere"
    source.write_text(text.replace(anchor, "A new paragraph.\n\n+++\n\n" + anchor, 1), encoding="utf-8")
    cells = nbformat.read(build.write("quickstart.ipynb"), as_version=4).cells
    assert len(cells) == len(before) + 1
    new = [c for c in cells if c.source == "A new paragraph."]
    assert len(new) == 1 and new[0].id not in {c.id for c in before}
    assert [c.id for c in cells if c is not new[0]] == [c.id for c in before]
    assert [c.source for c in cells if c is not new[0]] == [c.source for c in before]
    # an edited cell keeps its id too
    shutil.copy2(FOLDER / "quickstart.ipynb", scratch)
    source.write_text(text.replace(anchor, "## Images from everywhere", 1), encoding="utf-8")
    cells = nbformat.read(build.write("quickstart.ipynb"), as_version=4).cells
    assert [c.id for c in cells] == [c.id for c in before]
    assert [c.source for c in cells] != [c.source for c in before]


def test_text_saved_from_the_notebook_is_refused_with_what_to_do(scratch):
    """The .ipynb opened in Jupyter and saved as text would carry the install lines: the build says to remove them
    instead of adding them twice."""
    shipped = nbformat.read(scratch / "quickstart.ipynb", as_version=4)
    jupytext.write(shipped, scratch / "quickstart.md", fmt="md:myst")
    with pytest.raises(SystemExit, match=r"quickstart\.md: the first code cell must start with %load_ext azmm_magic"):
        build.build("quickstart.ipynb")
