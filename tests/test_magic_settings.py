"""The magic's settings and hints, derived from the one settings schema: traits, `%config`, the docs' settings table,
the hint wording, and line subcommands parsed like the cell (one clear line per mistake)."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError
from traitlets import Enum

from azmm_magic.core.errors import AzureVisionError, ConfigError, ServiceError
from azmm_magic.core.settings import SCHEMA, Settings
from azmm_magic.frontends.magics import SUBCOMMANDS, AzureVision
from azmm_magic.frontends.magics.config import settings_table_markdown
from azmm_magic.frontends.magics.hints import magic_hint, usage_error

SETTINGS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def test_every_setting_but_the_key_is_a_trait_with_its_help_env_and_choices():
    traits = AzureVision.class_traits(config=True)
    assert "api_key" not in traits  # a key typed into a cell would be saved with the notebook
    assert set(traits) == {name for name, info in SCHEMA.items() if info.trait} | {"prices"}
    for name, info in SCHEMA.items():
        if not info.trait:
            continue
        trait = traits[name]
        assert trait.default_value is None and trait.allow_none  # unset: the environment, then the default apply
        assert info.help in trait.help and all(var in trait.help for var in info.env)
        if info.choices:
            assert isinstance(trait, Enum) and tuple(trait.values) == info.choices


def test_config_traits_reach_the_settings_and_are_listed_with_help(shell, capsys, caplog):
    shell.run_line_magic("config", "AzureVision.max_tokens = 77")
    shell.run_line_magic("config", "AzureVision.token_rule = 'o4-mini'")
    magics = shell.magics_manager.registry["AzureVision"]
    settings = magics.session_settings()
    assert (settings.max_tokens, settings.token_rule) == (77, "o4-mini")
    assert settings.sources["max_tokens"] == "%config"
    shell.run_line_magic("config", "AzureVision.token_rule = 'gpt-99'")  # choices are checked when set
    assert magics.token_rule == "o4-mini" and "'token_rule' trait" in caplog.text and "gpt-4.1-nano" in caplog.text
    shell.run_line_magic("config", "AzureVision")
    listing = capsys.readouterr().out
    for name, info in SCHEMA.items():
        assert (f"AzureVision.{name}=" in listing) == info.trait, name
    assert SCHEMA["deployment"].help in " ".join(listing.split()) and "AzureVision.prices=" in listing
    config_view = repr(shell.run_line_magic("azure_vision", "config"))
    assert all(name in config_view for name in SCHEMA) and "77" in config_view


def test_docs_settings_table_is_the_rendered_schema():
    table = settings_table_markdown()
    assert table in SETTINGS_PAGE.read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| setting")]
    assert len(rows) == len(SCHEMA) + 1  # every setting, then prices
    for info in SCHEMA.values():
        assert any(info.label in row and f"`{info.env[0]}`" in row for row in rows), info.name


@pytest.mark.parametrize(
    "settings, remedy, hint",
    [
        (("deployment",), None,
         "In this notebook: --deployment NAME or %config AzureVision.deployment = 'NAME'."),
        (("detail",), None,
         "In this notebook: --detail low|high|auto or %config AzureVision.detail = 'low|high|auto'."),
        (("timeout",), "retry", "In this notebook: %config AzureVision.timeout = S; or re-run the cell."),
        (("stream",), None, "In this notebook: --no-stream or %config AzureVision.stream = True|False."),
        (("api_key",), "credentials", "In this notebook: %azure_vision login."),
        (("endpoint",), "emulator",
         "In this notebook: %config AzureVision.endpoint = 'URL'; or %azure_vision emulator."),
        ((), "record", "In this notebook: %azure_vision cache import FILE, or %config AzureVision.cache = 'sqlite'."),
        ((), "retry", "In this notebook: re-run the cell."),
        ((), None, ""),
    ],
)
def test_hint_wording(settings, remedy, hint):
    for error in (AzureVisionError("x", settings=settings, remedy=remedy),
                  ServiceError("y", status=500, settings=settings, remedy=remedy)):
        assert magic_hint(error) == hint
    assert magic_hint(ValueError("no fields")) == ""
    shown = str(usage_error(ConfigError("Something failed.", settings=settings, remedy=remedy)))
    assert shown == f"Something failed. {hint}".strip()


def test_the_magic_adds_its_hint_to_a_python_api_message(emulator):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from tests.conftest import dispose_shell

    InteractiveShell.clear_instance()
    cfg = Config()
    cfg.HistoryManager.enabled = False
    cfg.AzureVision.endpoint = emulator.url
    sh = InteractiveShell.instance(config=cfg)
    sh.extension_manager.load_extension("azmm_magic")
    try:
        with pytest.raises(UsageError) as info:
            sh.run_cell_magic("azure_vision", "--no-stream", "q")
    finally:
        dispose_shell(sh)
    with pytest.raises(ConfigError) as api:
        Settings.resolve({"endpoint": emulator.url}, env={}).require()
    assert str(info.value) == f"{api.value} In this notebook: --deployment NAME or %config AzureVision.deployment = 'NAME'."
    assert emulator.count() == 0


@pytest.mark.parametrize(
    "line, needle",
    [
        ("usage --bar", r"%azure_vision usage: unrecognized arguments: --bar\. Use %azure_vision usage, "
                        r"%azure_vision usage --plot or %azure_vision usage reset\."),
        ("cache frobnicate", "invalid choice: 'frobnicate'"),
        ("cache export", "give one file name"),
        ("cache stats extra.jsonl", "takes no file name"),
        ("chat forget", "invalid choice"),
        ("emulator restart", "invalid choice"),
        ("jobs --limit many", "invalid int value"),
        ("config --verbose", "%azure_vision config: unrecognized arguments: --verbose"),
        ("login now", "takes no arguments"),
        ("nosuch", "unknown subcommand 'nosuch'; use one of config, cache"),
    ],
)
def test_line_subcommand_mistakes_are_one_line(shell, emulator, line, needle):
    with pytest.raises(UsageError, match=needle) as info:
        shell.run_line_magic("azure_vision", line)
    assert "\n" not in str(info.value)
    assert emulator.count() == 0


def test_each_subcommand_is_in_the_help_and_dispatched_by_the_table(shell):
    doc = shell.find_line_magic("azure_vision").__doc__
    for name, sub in SUBCOMMANDS.items():
        assert sub.name == name and f"%azure_vision {sub.forms[0]}" in doc
    assert "--dry-run" in doc and "-i SRC" in doc  # the cell options, from the cell parser
    assert shell.run_line_magic("azure_vision", "").data == shell.run_line_magic("azure_vision", "help").data
