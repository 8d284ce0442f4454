"""The shipped notebooks run top to bottom under nbclient against the emulator (they start it themselves)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from azmm_magic.frontends.demo import execute_notebook, find_notebook

NOTEBOOKS = sorted(p.name for p in (Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def _outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, tmp_path):
    ipynb, html = execute_notebook(find_notebook(name), tmp_path, timeout=240)
    nb = nbformat.read(ipynb, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if "raises-exception" in cell.metadata.get("tags", []):
            # IPython shows a UsageError as one stderr line, without a traceback
            stderr = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stderr")
            assert stderr.startswith("UsageError: ") and len(stderr.strip().splitlines()) == 1, (cell.source, stderr)
            assert not errors
        else:
            assert not errors, (cell.source, errors)
    assert html.exists() and html.stat().st_size > 10_000


def test_quickstart_shows_images_answer_and_cache(tmp_path):
    ipynb, html = execute_notebook(find_notebook("quickstart.ipynb"), tmp_path, timeout=240)
    nb = nbformat.read(ipynb, as_version=4)
    text = json.dumps(_outputs(nb), ensure_ascii=False)
    assert "starting the local emulator" in text
    assert "Azure OpenAI emulator" in text and "not a model" in text
    assert "data:image/png;base64" in text  # thumbnails rendered
    assert "· cached" in text and "DRY RUN" in text
    body = html.read_text(encoding="utf-8")
    assert "Azure OpenAI emulator" in body and "<img" in body
