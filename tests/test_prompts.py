"""``{name}`` filling (azmm_magic.core.prompts), the one implementation the cell magic, the panel and DataFrame
rows use; and how a ``-i``/``--schema`` value names a variable (pure: no shell, no network)."""

from __future__ import annotations

import pandas as pd
import pytest

from azmm_magic.core.errors import ConfigError
from azmm_magic.core.prompts import interpolate, unresolved_names
from azmm_magic.features.rows import Rows, row_items
from azmm_magic.frontends.command import parse_cell, resolve_image_arg, variable_name
from tests.conftest import make_png


class _NoStr:
    def __str__(self) -> str:
        raise TypeError("no text for this")


def test_the_first_source_with_the_name_wins_and_none_is_skipped():
    row, ns = {"label": "cat"}, {"label": "NOTEBOOK", "where": "lab"}
    assert interpolate("{label} in the {where}, {missing}", row, None, ns) == "cat in the lab, {missing}"
    assert interpolate("{label}", None) == "{label}" and interpolate("{label}") == "{label}"
    assert unresolved_names("{label} {missing} {{lit}} {missing} {where}", row, None, ns) == ("missing",)


def test_braces_that_are_no_placeholder_are_sent_as_written():
    ns = {"a": 1}
    for text in ('{"a": {"b": 1}}', "{1, 2}", "\\frac{x}{y}", "{", "}", "{{", "}}", "{ a }", "{a.b}", "{0}"):
        assert interpolate(text, ns) == text, text
    assert interpolate("{{a}} is {a}", ns) == "{a} is 1"


def test_a_value_whose_str_fails_is_one_clear_line():
    with pytest.raises(ConfigError) as caught:
        interpolate("Is this {thing}?", {"thing": _NoStr()})
    message = str(caught.value)
    assert "{thing} in the prompt" in message and "TypeError" in message and "{{thing}}" in message
    assert "\n" not in message and caught.value.__cause__ is None


def test_dataframe_rows_fill_through_the_same_function(tmp_path):
    paths = [str(make_png(tmp_path / f"{n}.png")) for n in "ab"]
    frame = pd.DataFrame({"path": paths, "label": ["cat", _NoStr()]}, index=[10, 20])
    with pytest.raises(ConfigError, match=r"\{label\} in the prompt: str\(label\) failed \(TypeError\)"):
        row_items(Rows(frame, "path", {"where": "lab"}), "{label} from {where}")
    items = row_items(Rows(frame.iloc[:1], "path", {"where": "lab", "label": "NOTEBOOK"}), "{label} from {where}")
    assert [i.prompt for i in items] == ["cat from lab"]


def test_the_magic_names_unresolved_placeholders_once():
    command = parse_cell("", "Is {this} a {kind}? {this} {{that}}", {"kind": "cat"})
    assert command.prompt == "Is {this} a cat? {this} {that}"
    assert command.notices() == ("sent {this} as written: no such variable",)


@pytest.mark.parametrize("arg, name", [("img", "img"), (" {img} ", "img"), ("{img}", "img"), ("_x1", "_x1"),
                                       ("{{img}}", None), ("img.png", None), ("photos/*.jpg", None),
                                       ("https://h/x.png", None), ("{a}.png", None), ("1abc", None), ("", None)])
def test_variable_name(arg, name):
    assert variable_name(arg) == name


def test_resolve_image_arg_variable_file_or_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chart").write_bytes(b"x")
    fig, ns = object(), {"fig": object(), "kind": "cat"}
    ns["fig"] = fig
    assert resolve_image_arg("fig", ns) is fig and resolve_image_arg(" {fig} ", ns) is fig
    assert resolve_image_arg("chart", ns) == "chart"  # no such variable, but such a file
    assert resolve_image_arg("photos/{kind}.jpg", ns) == "photos/cat.jpg"
    with pytest.raises(ConfigError, match="-i {nope}: no variable named 'nope'"):
        resolve_image_arg("{nope}", ns)
    with pytest.raises(ConfigError, match=r"-i fgi: no file or variable named 'fgi' \(did you mean fig\?\)"):
        resolve_image_arg("fgi", ns)
