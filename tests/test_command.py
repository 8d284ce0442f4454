"""The magic-line parser and prompt interpolation (pure: no shell, no network)."""

from __future__ import annotations

import pytest

from azmm_magic.frontends.command import interpolate, parse_cell
from azmm_magic.core.errors import ConfigError


def test_interpolation_replaces_defined_names_only():
    ns = {"animal": "cat", "n": 3}
    assert interpolate("Is this a {animal}? Count {n}.", ns) == "Is this a cat? Count 3."
    assert interpolate("Reply as {\"label\": str, \"score\": float}", ns) == "Reply as {\"label\": str, \"score\": float}"
    assert interpolate("{undefined} stays", ns) == "{undefined} stays"
    assert interpolate("{{animal}} is literal", ns) == "{animal} is literal"
    assert interpolate("set {1, 2} and \\frac{a}{b}", ns) == "set {1, 2} and \\frac{a}{b}"
    assert interpolate("{", ns) == "{" and interpolate("}", ns) == "}"
    assert interpolate('{"a": {"b": {animal}}}', ns) == '{"a": {"b": cat}}'
    assert interpolate("{{", ns) == "{{" and interpolate("}}", ns) == "}}"


def test_parse_full_line():
    fig = object()
    cmd = parse_cell(
        '-i photos/cat.jpg -i {fig} -i "my photos/*.png" --detail high --max-tokens 500 --temperature 0.2 '
        "--deployment gpt4o --system 'Be brief.' -o answer --no-stream --no-cache --refresh --dry-run",
        "What is in {what}?\n",
        {"fig": fig, "what": "these"},
    )
    assert cmd.images == ("photos/cat.jpg", fig, "my photos/*.png")
    assert cmd.prompt == "What is in these?"
    assert (cmd.detail, cmd.max_tokens, cmd.temperature, cmd.deployment) == ("high", 500, 0.2, "gpt4o")
    assert cmd.system == "Be brief." and cmd.out == "answer"
    assert not cmd.stream and not cmd.use_cache and cmd.refresh and cmd.dry_run


def test_bare_variable_name_is_used_when_defined():
    arr = [1]
    assert parse_cell("-i arr", "q", {"arr": arr}).images == (arr,)
    assert parse_cell("-i cat.jpg", "q", {}).images == ("cat.jpg",)


def test_option_values_may_use_variables():
    cmd = parse_cell("--max-tokens {n} --deployment {dep}", "q", {"n": 77, "dep": "d1"})
    assert cmd.max_tokens == 77 and cmd.deployment == "d1"


@pytest.mark.parametrize(
    "line, cell, needle",
    [
        ("", "   \n ", "prompt is empty"),
        ("--detail ultra", "q", "invalid choice"),
        ("--bogus", "q", "unrecognized arguments"),
        ("--max-tokens many", "q", "invalid int value"),
        ("-i 'unclosed", "q", "quotes"),
        ("-i {nope}", "q", "no variable named 'nope'"),
        ("-o 1abc", "q", "not a valid Python variable"),
        ("--api-key sk-123", "q", "Keys are never accepted"),
        ("--key=sk-123", "q", "Keys are never accepted"),
    ],
)
def test_bad_lines_raise_one_clear_error(line, cell, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        parse_cell(line, cell, {})
    assert "\n" not in str(info.value)
    assert "sk-123" not in str(info.value)


def test_line_parser_raises_one_line_naming_the_command_and_its_forms():
    from azmm_magic.frontends.command import LineParser

    parser = LineParser("%azure_vision demo", hint="Use `%azure_vision demo [--fast]`.")
    parser.add_argument("--fast", action="store_true")
    assert parser.parse_args(["--fast"]).fast
    with pytest.raises(ConfigError, match=r"^%azure_vision demo: unrecognized arguments: --slow\. Use `%azure_vision "
                                          r"demo \[--fast\]`\.$"):
        parser.parse_args(["--slow"])
    with pytest.raises(ConfigError, match=r"^%azure_vision bare: takes no arguments \(unrecognized arguments: x\)"):
        LineParser("%azure_vision bare").parse_args(["x"])
