"""Evaluation against labels: a batch scored on the emulator (real HTTP), the statistics checked against values
computed by hand, the magic's --expect and the side-by-side table, the views, and the emulator's pixel fields."""

from __future__ import annotations

import io
import re
from typing import Literal

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from PIL import Image, ImageDraw
from pydantic import BaseModel

from azmm_magic import VisionClient
from azmm_magic.core.errors import ConfigError
from azmm_magic.core.result import Usage, VisionResult
from azmm_magic.emulator import pixels
from azmm_magic.emulator.report import describe_image
from azmm_magic.features.batch import BatchFailure, BatchResult
from azmm_magic.features.evaluation import mcnemar_p, normalise, wilson
from tests.test_surfaces import terminal  # noqa: F401 - the terminal IPython fixture

COLOURS = {"red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 120, 200)}
WRONG = {3: "green", 14: "blue", 25: "red"}  # rows whose label is deliberately wrong
SWATCH = {"type": "object", "properties": {"colour": {"enum": ["red", "green", "blue"]}}, "required": ["colour"],
          "additionalProperties": False}


class Swatch(BaseModel):
    colour: Literal["red", "green", "blue"]


def swatches() -> pd.DataFrame:
    """30 colour swatches (10 red, 10 green, 10 blue; each a little different), 3 labels deliberately wrong."""
    rows = []
    for i in range(30):
        name = list(COLOURS)[i // 10]
        rows.append({"image": Image.new("RGB", (40 + i, 32), COLOURS[name]), "label": name, "true": name})
    frame = pd.DataFrame(rows, index=[f"s{i:02d}" for i in range(30)])
    for i, label in WRONG.items():
        frame.iloc[i, frame.columns.get_loc("label")] = label
    return frame


@pytest.fixture
def client(emulator):
    c = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none")
    yield c
    c.close()


def test_done_when_27_of_30_with_exactly_the_three_mislabelled_rows(client, emulator):
    df = swatches()
    batch = client.batch("Which colour is the swatch?", df, response_format=SWATCH, progress=False)
    ev = batch.evaluate("label")
    assert (ev.correct, ev.n, len(ev.failures)) == (27, 30, 0)
    assert ev.accuracy == pytest.approx(0.9) and ev.target == "colour"  # the field named like the column
    assert [s.row for s in ev.mistake_items] == ["s03", "s14", "s25"]
    assert [(s.expected, s.answer) for s in ev.mistake_items] == [("green", "red"), ("blue", "green"), ("red", "blue")]
    confusion = ev.confusion
    assert list(confusion.index) == ["blue", "green", "red"] and list(confusion.columns) == ["blue", "green", "red"]
    off = {(t, p): int(confusion.loc[t, p]) for t in confusion.index for p in confusion.columns if t != p}
    assert {k: v for k, v in off.items() if v} == {("green", "red"): 1, ("blue", "green"): 1, ("red", "blue"): 1}
    assert [int(confusion.loc[c, c]) for c in confusion.index] == [9, 9, 9]
    mistakes = ev.mistakes
    assert list(mistakes.index) == ["s03", "s14", "s25"] and list(mistakes["answer"]) == ["red", "green", "blue"]
    assert list(mistakes["true"]) == ["red", "green", "blue"]  # the input rows, all columns
    # against the right labels, every answer is right (the emulator reads the colour from the pixels)
    assert batch.evaluate("true").accuracy == 1.0
    # the emulator said which fields it read from pixels
    notes = [r.get("note") for r in emulator.chat_requests()]
    assert notes and all(n and n.startswith("fields read from the image's pixels: colour") for n in notes)


def test_per_class_table_interval_and_dataframe(client):
    df = swatches()
    ev = client.batch("Which colour?", df, response_format=Swatch, progress=False).evaluate("label", field="colour")
    per = ev.per_class
    assert list(per.columns) == ["precision", "recall", "support"]
    assert per.loc["red", "support"] == 10 and per.loc["red", "recall"] == pytest.approx(0.9)
    assert per.loc["red", "precision"] == pytest.approx(0.9)  # 9 of the 10 answered "red" are labelled red
    low, high = ev.interval
    assert (round(100 * low, 1), round(100 * high, 1)) == (74.4, 96.5)
    assert ev.headline().startswith("27/30 correct: accuracy 90.0 % (95 % CI 74.4–96.5 %), n = 30")
    table = ev.to_dataframe()
    assert len(table) == 30 and table.loc["s03", "correct"] == False and table.loc["s03", "predicted"] == "red"  # noqa: E712
    assert set(table["status"]) == {"ok"}


def test_failures_are_counted_apart_and_labels_may_be_a_sequence(client, tmp_path):
    good = tmp_path / "red.png"
    Image.new("RGB", (30, 20), (220, 30, 30)).save(good)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    batch = client.batch("What colour? One word.", [str(good), str(bad), str(good)], progress=False)
    ev = batch.evaluate(["red", "red", None], match="contains")
    assert (ev.n, ev.correct, len(ev.failures), len(ev.unlabelled)) == (1, 1, 1, 1)
    assert "1 failed (not scored)" in ev.headline() and "1 without a label" in ev.headline()
    with pytest.raises(ConfigError, match="2 labels for a batch of 3 items"):
        batch.evaluate(["red", "red"])
    with pytest.raises(ConfigError, match="not over DataFrame rows"):
        batch.evaluate("label")
    with pytest.raises(ConfigError, match="answers are not structured"):
        batch.evaluate(["red"] * 3, field="colour")


def _result(text: str, **kw) -> VisionResult:
    return VisionResult(text=text, deployment=kw.pop("deployment", "d"), usage=Usage(1000, 10, 1010), **kw)


@pytest.mark.parametrize(("match", "answers", "labels", "right"), [
    ("exact", [" Dark-Blue. ", "RED", "red car"], ["dark blue", "red", "red"], [True, True, False]),
    ("contains", ["It is a red car.", "reddish", "Blue!"], ["red", "red", "blue"], [True, False, True]),
    ("number", ["About 3.5 cm", "7 apples", "none"], ["3.6", "7", "1"], [True, True, False]),
])
def test_match_modes(match, answers, labels, right):
    batch = BatchResult([_result(a) for a in answers])
    ev = batch.evaluate(labels, match=match, tolerance=0.2)
    assert [s.correct for s in ev.items] == right


def test_match_function_and_bad_match():
    batch = BatchResult([_result("7"), _result("8")])
    ev = batch.evaluate([7, 7], match=lambda answer, truth: int(answer) == truth)
    assert [s.correct for s in ev.items] == [True, False]
    with pytest.raises(ConfigError, match="'exact', 'contains', 'number'"):
        batch.evaluate([7, 7], match="fuzzy")
    with pytest.raises(ConfigError, match="match= raised ValueError"):
        BatchResult([_result("x")]).evaluate([1], match=lambda a, t: int(a) == t)


def test_wilson_and_mcnemar_against_hand_computed_values():
    # Wilson 95 % for 27/30: 0.7438..0.9654 (Newcombe 1998's formula); 0/10: 0..0.2775
    low, high = wilson(27, 30)
    assert (round(low, 4), round(high, 4)) == (0.7438, 0.9654)
    assert wilson(0, 10)[0] == 0.0 and round(wilson(0, 10)[1], 4) == 0.2775
    assert wilson(0, 0) == (0.0, 1.0)
    # exact McNemar: b=1, c=6 -> 2 * (1 + 7) / 128 = 0.125; b=0, c=10 -> 2 / 1024
    assert mcnemar_p(1, 6) == pytest.approx(0.125)
    assert mcnemar_p(0, 10) == pytest.approx(2 / 1024)
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(5, 5) == 1.0
    assert mcnemar_p(400, 600) == pytest.approx(2.6e-10, rel=0.2)  # large n: no overflow
    assert normalise("  Light   Grey!! ") == "light grey"


def test_cost_and_time_from_prices():
    results = [_result("red"), _result("blue").with_(cached=True), _result("red")]
    batch = BatchResult(results)
    batch.elapsed = 2.0
    ev = batch.evaluate(["red", "red", "red"], prices={"d": (2.5, 10.0)})
    per_item = 1000 / 1e6 * 2.5 + 10 / 1e6 * 10.0
    assert ev.cost == pytest.approx(2 * per_item)  # the cached answer cost nothing
    assert ev.cost_per_1000 == pytest.approx(1000 * per_item)
    assert ev.cost_per_correct == pytest.approx(3 * per_item / 2)
    assert ev.elapsed == 2.0 and ev.cached == 1
    assert "est. cost 0.0052" in ev.run_line()
    no_prices = batch.evaluate(["red"] * 3)
    assert no_prices.cost is None and no_prices.cost_per_1000 is None and "tokens per image" in no_prices.run_line()


def test_variants_side_by_side_with_mcnemar(client, emulator):
    df = swatches()
    table = client.evaluate([{"deployment": "gpt-4o"}, {"deployment": "gpt-4o-mini"}], df, truth="label",
                            prompt="Which colour is the swatch?", response_format=Swatch)
    assert [e.name for e in table] == ["gpt-4o", "gpt-4o-mini"] and [e.correct for e in table] == [27, 27]
    (test,) = table.tests()
    assert (test.pairs, test.only_first, test.only_second, test.p) == (30, 0, 0, 1.0)
    sent = emulator.count()
    again = client.evaluate([{"deployment": "gpt-4o"}, {"deployment": "gpt-4o-mini"}], df, truth="label",
                            prompt="Which colour is the swatch?", response_format=Swatch)
    assert emulator.count() == sent and [e.cached for e in again] == [30, 30]  # the cache makes a re-run free
    # two prompts on the same rows, free-text answers scored with "contains"
    prompts = client.evaluate(["Name the colour.", "Which colour dominates?"], df, truth="label", match="contains")
    assert [e.name for e in prompts] == ["prompt 1", "prompt 2"] and [e.correct for e in prompts] == [27, 27]
    frame = prompts.to_dataframe()
    assert list(frame.index) == ["prompt 1", "prompt 2"] and frame.loc["prompt 1", "n"] == 30
    text = repr(table)
    assert "gpt-4o-mini" in text and "90.0 % (27/30)" in text and "McNemar exact p = 1" in text
    with pytest.raises(ConfigError, match="list of variants"):
        client.evaluate("Name the colour.", df, truth="label")


def test_mcnemar_sees_a_real_difference():
    a = BatchResult([_result("red")] * 20)
    b = BatchResult([_result("red")] * 8 + [_result("blue")] * 12)
    from azmm_magic.features.evaluation import EvaluationTable

    table = EvaluationTable([a.evaluate(["red"] * 20, name="A"), b.evaluate(["red"] * 20, name="B")])
    (test,) = table.tests()
    assert (test.only_first, test.only_second) == (12, 0) and test.p == pytest.approx(2 / 4096)
    assert "is more than chance" in test.sentence()


def test_views_headline_table_matrix_gallery_and_text(client):
    df = swatches()
    ev = client.batch("Which colour?", df, response_format=SWATCH, progress=False).evaluate("label")
    bundle = ev._repr_mimebundle_()
    page = bundle["text/html"]
    assert "27/30 correct" in page and "n = 30" in page
    assert page.count("<tr>") == 4 and page.count("</th>") == 4  # the per-class table: a head and 3 rows
    assert 'alt="confusion matrix of 30 rows"' in page and "data:image/png;base64," in page
    assert "Mistakes (3)" in page and page.count("expected <b>") == 3
    assert page.count("data:image/") >= 4  # the matrix and one thumbnail per mistake
    plain = bundle["text/plain"]
    assert plain.splitlines()[0].startswith("27/30 correct") and "row s03" in plain and "answered red" in plain
    fig = ev.plot()
    assert fig.axes[0].get_xlabel() == "predicted" and len(fig.axes[0].patches) == 3  # the 3 wrong cells framed


def test_untrusted_answers_and_labels_are_inert_in_the_views():
    evil = '<img src=x onerror=alert(1)>\x1b[31m'
    batch = BatchResult([_result(evil), _result("ok")])
    ev = batch.evaluate(["<b>label</b>", "ok"])
    page = ev._repr_mimebundle_()["text/html"]
    assert "<img src=x" not in page and "<b>label</b>" not in page and "&lt;img src=x" in page
    assert "\x1b" not in repr(ev)


def test_the_magic_expect_shows_the_evaluation_and_compares_deployments(shell, emulator):
    shell.user_ns.update(df=swatches(), Swatch=Swatch)
    ev = shell.run_cell_magic("azure_vision", "-i df --each --schema Swatch --expect label=colour -o run",
                              "Which colour is the swatch?")
    assert ev.correct == 27 and [s.row for s in ev.mistake_items] == ["s03", "s14", "s25"]
    assert isinstance(shell.user_ns["run"], BatchResult)
    # without =FIELD the field named like the column is compared; free text needs a match on the text
    assert shell.run_cell_magic("azure_vision", "-i df --each --schema Swatch --expect label", "Which colour?").n == 30
    table = shell.run_cell_magic("azure_vision", "-i df --each --schema Swatch --expect label "
                                 "--deployment gpt-4o,gpt-4o-mini -o side", "Which colour is the swatch?")
    assert [e.name for e in table] == ["gpt-4o", "gpt-4o-mini"] and shell.user_ns["side"] is table
    assert all(e.correct == 27 for e in table)


def test_the_magic_expect_in_a_terminal_prints_the_evaluation_as_text(terminal, emulator, capsys):
    terminal.user_ns.update(df=swatches(), Swatch=Swatch)
    ev = terminal.run_cell_magic("azure_vision", "-i df --each --schema Swatch --expect label -o run", "Which colour?")
    printed = capsys.readouterr().out
    assert printed.count("✓ #") == 30 and "the BatchResult is in run" in printed  # each line once, then the summary
    text = repr(ev)
    assert text.startswith("vision-test: 27/30 correct") and "confusion (rows: truth, columns: predicted)" in text
    assert "<" not in text.split("mistakes")[0]  # text, not HTML


@pytest.mark.parametrize(("line", "needle"), [
    ("-i df --each --expect nope", "no such column; its columns: image, label, true"),
    ("-i df --each --expect label=colour", "add --schema NAME"),
    ("-i img --each --expect label", "use -i DATAFRAME --each"),
    ("-i df --each --deployment a,b", "add --expect COLUMN"),
])
def test_magic_expect_mistakes_send_nothing(shell, emulator, red_png, line, needle):
    shell.user_ns.update(df=swatches(), img=str(red_png))
    with pytest.raises(UsageError, match=re.escape(needle)):
        shell.run_cell_magic("azure_vision", line, "Which colour?")
    assert emulator.count() == 0


def test_missing_pandas_is_one_clear_line(monkeypatch):
    import builtins

    batch = BatchResult([_result("red"), BatchFailure(1, "x.png", "boom")])
    ev = batch.evaluate(["red", "blue"])
    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    assert ev.accuracy == 1.0 and ev.confusion_counts()[2] == {("red", "red"): 1}  # works on sequences
    with pytest.raises(ConfigError, match=re.escape('pip install "azmm_magic[notebooks]"')) as info:
        ev.confusion  # noqa: B018
    assert len(str(info.value).splitlines()) == 1


# ----- the emulator reads fields from pixels -------------------------------------------------------------------------
@pytest.mark.parametrize(("rgb", "name"), [
    ((30, 144, 255), "blue"), ((30, 120, 200), "blue"), ((70, 130, 180), "blue"), ((0, 0, 255), "blue"),
    ((255, 0, 0), "red"), ((220, 20, 60), "red"), ((0, 200, 0), "green"), ((46, 139, 87), "green"),
    ((0, 255, 255), "cyan"), ((0, 128, 128), "teal"), ((0, 0, 128), "navy"), ((255, 140, 0), "orange"),
    ((255, 215, 0), "yellow"), ((128, 0, 128), "purple"), ((255, 182, 193), "pink"), ((139, 69, 19), "brown"),
    ((128, 128, 128), "grey"), ((250, 250, 250), "white"), ((15, 15, 15), "black"),
])
def test_colour_names_agree_with_people(rgb, name):
    assert pixels.name_of(rgb) == name


def test_report_names_a_medium_blue_blue():
    buf = io.BytesIO()
    Image.new("RGB", (60, 40), (30, 144, 255)).save(buf, "PNG")
    assert describe_image(buf.getvalue()).colours == (("blue", 100),)


def test_enum_values_and_blob_counts():
    assert pixels.enum_value("navy", ["red", "green", "blue"]) == "blue"
    assert pixels.enum_value("dark red", ["Red", "Blue"]) == "Red"
    assert pixels.enum_value("grey", ["gray", "black"]) == "gray"
    assert pixels.enum_value("red", ["cat", "dog"]) is None
    img = Image.new("RGB", (120, 90), "white")
    draw = ImageDraw.Draw(img)
    for box in ((5, 5, 30, 30), (50, 10, 80, 40), (20, 55, 60, 85), (90, 60, 110, 80)):
        draw.rectangle(box, fill=(200, 30, 30))
    draw.ellipse((85, 5, 115, 35), fill=(30, 120, 200))
    assert pixels.blob_count(np.asarray(img)) == 5
    assert pixels.blob_count(np.zeros((10, 10, 3), dtype=np.uint8)) == 1
    assert pixels.orientation(30, 60) == "portrait" and pixels.orientation(60, 30) == "landscape"


def test_schema_fields_from_pixels_and_placeholders(client, emulator):
    img = Image.new("RGB", (60, 100), (20, 20, 60))  # dark, portrait
    draw = ImageDraw.Draw(img)
    draw.rectangle((5, 5, 25, 25), fill=(250, 250, 250))
    draw.rectangle((35, 60, 55, 90), fill=(250, 250, 250))
    schema = {"type": "object", "additionalProperties": False, "properties": {
        "colour": {"enum": ["red", "green", "blue", "white"]}, "tone": {"enum": ["light", "dark"]},
        "orientation": {"enum": ["portrait", "landscape"]}, "shapes": {"type": "integer"},
        "caption": {"type": "string"}, "mood": {"type": "string"}}}
    out = client.ask("Describe.", images=[img], response_format=schema).parsed
    assert out["colour"] == "blue" and out["tone"] == "dark" and out["orientation"] == "portrait"
    assert out["shapes"] == 2 and out["mood"] == "emulator mood"  # not knowable from pixels: a placeholder
    (entry,) = emulator.chat_requests()
    assert entry["note"] == ("fields read from the image's pixels: colour, tone, orientation, shapes; every other "
                             "field is a placeholder (the emulator is not a model)")
