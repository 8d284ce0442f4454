"""A newcomer's first mistakes, each met with one line that says what to do, and the rough edges they found:
the demo without the notebooks extra, a question on the options line, a forgotten -i, a one-% line with a question
mark, video captions that keep their timestamp, a "did you mean" that keeps the folder, one table schema for
every batch, the session emulator's any-name deployments, a deployment in a pasted URL that another setting
overrides, the 11-image error, cost estimates with a currency, and the empty panel."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError

from azmm_magic import VisionClient
from azmm_magic.core.images import PreparedImage
from azmm_magic.display.thumbnails import thumbnails_html
from azmm_magic.features.rows import ANSWER_COLUMNS
from tests.conftest import make_png


def _usage_error(shell, line: str, body: str = "What is this?") -> str:
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("azure_vision", line, body)
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# ----- 1. the demo without pandas ------------------------------------------------------------------------------
def test_demo_needing_pandas_names_the_notebooks_extra(monkeypatch, capsys, tmp_path):
    from azmm_magic.frontends.cli import main

    monkeypatch.setitem(sys.modules, "pandas", None)  # as after a plain install: no pandas
    assert main(["demo", "--notebook", "documents", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "\x1b[" not in err
    assert "documents.ipynb needs pandas" in err and "azmm_magic[notebooks]" in err and "-e '.[notebooks]'" in err
    assert not list(tmp_path.iterdir())  # refused before a kernel started


def test_a_failing_cells_report_loses_its_colour_codes_and_names_the_extra():
    from azmm_magic.frontends.cli import failure_line

    error = RuntimeError("\x1b[0;31mModuleNotFoundError\x1b[0m: No module named 'pandas'")
    line = failure_line(error)
    assert "\x1b" not in line and "No module named 'pandas'" in line and "azmm_magic[notebooks]" in line


# ----- 2. the options line ---------------------------------------------------------------------------------------
def test_question_on_the_options_line_says_it_goes_in_the_body(shell, emulator):
    text = _usage_error(shell, "-i some.png What is this?")
    assert "unrecognized arguments: What is this?" in text and "the question goes in the cell body" in text
    assert emulator.count() == 0


@pytest.mark.parametrize("word", ["some.png", "imgs/img_1.png", "photo"])
def test_forgotten_i_suggests_it(shell, emulator, word):
    text = _usage_error(shell, word)
    assert f"(did you mean -i {word}?)" in text and emulator.count() == 0


def test_one_percent_line_with_a_question_mark_reaches_the_magic(shell, emulator):
    for source in ("%azure_vision -i some.png What is this?", "%azure_vision What is in this photo?"):
        result = shell.run_cell(source)
        error = result.error_in_exec
        assert isinstance(error, UsageError), (source, error)
        assert "%%azure_vision cell (two %)" in str(error) and "question in the cell body" in str(error)
    assert shell.run_cell("%azure_vision?").error_in_exec is None  # the magic's own help still works
    assert emulator.count() == 0


# ----- 3. video captions keep their timestamp --------------------------------------------------------------------
def test_thumbnail_caption_never_cuts_the_timestamp_or_page(red_png):
    png = red_png.read_bytes()
    frame = PreparedImage(data=png, media_type="image/png", width=32, height=24, sha256="0" * 64,
                          source="a_rather_long_folder_name/holiday_clip_2024.mp4 @ 00:01.5")
    page = PreparedImage(data=png, media_type="image/png", width=32, height=24, sha256="1" * 64,
                         source="reports/annual_report_final.pdf p.7")
    html = thumbnails_html([frame, page])
    # the file name may be cut with an ellipsis; the timestamp and the page sit in the part that never shrinks
    assert '<span style="flex: none;"> @ 00:01.5&nbsp;· 32×24</span>' in html
    assert '<span style="flex: none;"> p.7&nbsp;· 32×24</span>' in html
    assert "text-overflow: ellipsis; min-width: 0;\">holiday_clip_2024.mp4</span>" in html


# ----- 4. a missing file's suggestion keeps its folder -------------------------------------------------------------
def test_missing_file_suggestion_keeps_the_folder(shell, emulator, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imgs").mkdir()
    make_png(tmp_path / "imgs" / "img_01.png")
    text = _usage_error(shell, "-i imgs/img_1.png")
    assert "image file not found: imgs/img_1.png (did you mean imgs/img_01.png?)" in text


# ----- 5. one table schema for a folder batch and a DataFrame batch ---------------------------------------------------
def test_to_dataframe_has_one_schema_for_folders_and_dataframes(emulator, tmp_path):
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none")
    paths = [str(make_png(tmp_path / f"p{i}.png", color=(40 * i, 90, 90))) for i in range(2)]
    by_folder = client.batch("What colour?", str(tmp_path / "*.png"), progress=False).to_dataframe()
    by_rows = client.batch("What colour is {name}?", pd.DataFrame({"path": paths, "name": ["a", "b"]}),
                           progress=False).to_dataframe()
    assert list(by_folder.columns) == list(ANSWER_COLUMNS)
    assert list(by_rows.columns) == ["path", "name", *ANSWER_COLUMNS]
    for table in (by_folder, by_rows):
        assert list(table["status"]) == ["ok", "ok"] and table["answer"].str.contains("emulator").all()
        assert table["source"].str.endswith((".png")).all() and (table["prompt_tokens"] > 0).all()


# ----- 6. deployments ----------------------------------------------------------------------------------------------
def test_session_emulator_says_once_that_it_does_not_check_the_deployment(shell, red_png, capsys):
    shell.run_line_magic("config", "AzureVision.endpoint = None")
    shell.run_line_magic("config", "AzureVision.deployment = None")
    shell.run_line_magic("azure_vision", "emulator")
    try:
        shell.run_line_magic("config", "AzureVision.deployment = 'gtp-4o'")
        shell.user_ns["img"] = str(red_png)
        capsys.readouterr()
        shell.run_cell_magic("azure_vision", "-i img --no-stream", "What colour?")
        out = capsys.readouterr().out
        assert "the local emulator answers any deployment name, so 'gtp-4o' is not checked here" in out
        assert "DeploymentNotFound" in out
        shell.run_cell_magic("azure_vision", "-i img --no-stream", "What colour?")
        assert "gtp-4o" not in capsys.readouterr().out  # said once per session
        shell.run_line_magic("config", "AzureVision.deployment = 'emulator'")
        shell.run_cell_magic("azure_vision", "-i img --no-stream", "What colour now?")
        assert "not checked" not in capsys.readouterr().out  # its own name needs no note
    finally:
        shell.run_line_magic("azure_vision", "emulator stop")


def test_a_pasted_urls_deployment_overridden_by_config_is_said(shell, emulator, red_png, capsys):
    url = f"{emulator.url}/openai/deployments/from-url/chat/completions?api-version=2024-10-21"
    shell.run_line_magic("config", f"AzureVision.endpoint = {url!r}")
    shell.run_line_magic("config", "AzureVision.deployment = 'vision-test'")
    shell.user_ns["img"] = str(red_png)
    capsys.readouterr()
    result = shell.run_cell_magic("azure_vision", "-i img --no-stream", "What colour?")
    assert result.deployment == "vision-test"
    out = capsys.readouterr().out
    assert "Note: deployment 'vision-test' is used, not the one in the endpoint URL" in out
    assert "the endpoint URL says 'from-url'" in out and "%azure_vision config" in out


def test_eleven_images_suggest_each(shell, emulator, tmp_path):
    for i in range(11):
        make_png(tmp_path / f"{i:02d}.png", (8, 8))
    text = _usage_error(shell, f"-i '{tmp_path}/*.png'")
    assert "11 images given but at most 10" in text and "add --each" in text and emulator.count() == 0
    with pytest.raises(Exception, match=r"VisionClient\.batch"):
        VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none").ask("q", str(tmp_path / "*.png"))


# ----- 7. cost --------------------------------------------------------------------------------------------------------
def test_high_and_low_detail_cost_shows_input_and_output_apart_in_a_currency(shell, emulator, tmp_path):
    make_png(tmp_path / "big.png", (1600, 1200))
    shell.user_ns["img"] = str(tmp_path / "big.png")
    shell.run_line_magic("config", "AzureVision.prices = {'*': (2.5, 10.0), 'currency': 'USD'}")
    high = repr(shell.run_cell_magic("azure_vision", "-i img --detail high --dry-run", "Describe it."))
    low = repr(shell.run_cell_magic("azure_vision", "-i img --detail low --dry-run", "Describe it."))
    for shown in (high, low):
        assert "Estimated cost: input ≈ " in shown and " USD + output ≤ " in shown and "trait" not in shown

    (high_in, high_out), (low_in, low_out) = (
        re.search(r"input ≈ ([\d.]+) USD \+ output ≤ ([\d.]+) USD", shown).groups() for shown in (high, low))
    assert float(high_in) > 3 * float(low_in)  # the input is what detail changes
    assert high_out == low_out
    assert emulator.count() == 0
    shell.run_cell_magic("azure_vision", "-i img --detail low --no-stream", "Describe it.")
    table = shell.run_line_magic("azure_vision", "usage")._repr_mimebundle_()
    table = table[0] if isinstance(table, tuple) else table
    assert "(est. cost in USD)" in table["text/plain"]


# ----- 8. notebooks: HEIC cell, no empty outputs, no files left beside the notebooks -----------------------------------
def test_documents_notebook_has_a_heic_cell_and_quickstart_writes_to_a_scratch_folder():
    import nbformat

    root = Path(__file__).resolve().parent.parent / "notebooks"
    code = [c.source for c in nbformat.read(root / "documents.ipynb", as_version=4).cells if c.cell_type == "code"]
    assert any(".HEIC" in c for c in code) and any("-i {phone}" in c for c in code)
    quick = "\n".join(c.source for c in nbformat.read(root / "quickstart.ipynb", as_version=4).cells)
    assert "Path('swatches')" not in quick and "tempfile.mkdtemp" in quick
