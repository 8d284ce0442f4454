"""Settings in the magic, all derived from the one schema (:data:`azmm_magic.core.settings.SCHEMA`):

* :func:`setting_traits`: the configurable traits of ``AzureVision`` (``%config AzureVision.<name> = ...``,
  ``%config AzureVision`` lists them with their help); there is deliberately no ``api_key`` trait;
* ``%azure_vision config``: the resolved settings and where each came from (secrets masked), how a pasted
  endpoint was read and the URL requests go to; ``config --debug`` adds azure-identity's report of the latest
  Entra ID token requests (kept out of the cells that failed);
* :func:`settings_table_markdown`: the settings table of docs/settings.md (a test checks the page contains it).

``prices`` is the one setting of the magic alone (the cost column of ``usage`` and ``--dry-run``); it is
declared here, next to the traits derived from the schema.
"""

from __future__ import annotations

import argparse
from typing import Any

from traitlets import Bool, Dict, Enum, Float, Int, TraitType, Unicode

from azmm_magic.core.settings import SCHEMA, SettingInfo
from azmm_magic.frontends.command import LineParser
from azmm_magic.frontends.magics.hints import LOGIN
from azmm_magic.frontends.magics.subcommand import Session, Subcommand

PRICES_HELP = (
    "Price table for cost estimates: {deployment or '*': (input, output)} in your currency per 1M tokens, "
    "e.g. {'gpt-4o': (2.5, 10.0), 'currency': 'USD'} ('currency' names it in the estimates). Used by "
    "`%azure_vision usage` and --dry-run."
)
_TRAITS: dict[type, type[TraitType[Any, Any]]] = {str: Unicode, int: Int, float: Float, bool: Bool}


def trait_help(info: SettingInfo) -> str:
    return f"{info.help} Environment: {', '.join(info.env)}. Unset (None) = environment, then default."


def setting_trait(info: SettingInfo) -> TraitType[Any, Any]:
    """The ``%config`` trait of one setting: unset (None) by default, so the environment and default apply."""
    if info.choices:
        trait: TraitType[Any, Any] = Enum(info.choices, None, allow_none=True, help=trait_help(info))
    else:
        trait = _TRAITS[info.type](None, allow_none=True, help=trait_help(info))
    return trait.tag(config=True)


def setting_traits() -> dict[str, TraitType[Any, Any]]:
    """Every setting that may be a session setting, as a configurable trait, plus ``prices``."""
    traits = {name: setting_trait(info) for name, info in SCHEMA.items() if info.trait}
    traits["prices"] = Dict(help=PRICES_HELP).tag(config=True)
    return traits


# ----- the docs' settings table ---------------------------------------------------------------------------------
def _code(items: Any) -> str:
    return ", ".join(f"`{item}`" for item in items)


def _default(info: SettingInfo) -> str:
    if info.default is None:
        return info.unset
    value = f"{info.default:g}" if isinstance(info.default, float) else str(info.default)
    if info.note:
        return f"`{value}`: {info.note}" if info.choices else f"`{value}` ({info.note})"
    others = [c for c in info.choices if c != info.default]
    return f"`{value}` (or {_code(others)})" if others else f"`{value}`"


def settings_table_markdown() -> str:
    """The settings table of docs/settings.md, rendered from the schema (one row per setting, then ``prices``)."""
    rows = ["| setting | `%config` trait | cell option | environment | default |", "|---|---|---|---|---|"]
    for name, info in SCHEMA.items():
        trait = f"`AzureVision.{name}`" if info.trait else "none, on purpose"
        env = _code(info.env) + ("" if info.trait else f", or `{LOGIN}`")
        option = f"`{info.option}`" if info.option else ""
        rows.append(f"| {info.label} | {trait} | {option} | {env} | {_default(info)} |")
    rows.append("| price table | `AzureVision.prices` |  | none | none (no cost column) |")
    return "\n".join(rows) + "\n"


# ----- %azure_vision config -------------------------------------------------------------------------------------
def show_config(magics: Session, args: argparse.Namespace) -> Any:
    from azmm_magic.display.bundle import Bundle, table_bundle
    from azmm_magic.service.sdk import chat_url, identity_report

    settings = magics.session_settings()
    rows = [(name, value, source) for name, value, source in settings.describe()]
    url = chat_url(settings)
    if url:
        rows.append(("→ requests go to", url, f"{settings.resolved_api_style} URL style"))
    if args.debug:
        report = identity_report()
        if not report:
            rows.append(("azure-identity", "(no Entra ID token was requested in this session)", ""))
        for line in report:
            for part in line.splitlines():
                rows.append(("azure-identity", part.strip(), ""))
    return Bundle(table_bundle(rows, ("setting", "value", "from"), title="azmm_magic settings"))


def config_arguments(parser: LineParser) -> None:
    parser.add_argument("--debug", action="store_true",
                        help="also show azure-identity's report of the latest Entra ID token requests")


CONFIG = Subcommand(
    "config", ("config", "config --debug"),
    "show the resolved settings, where each came from (secrets masked) and how the endpoint was read; --debug "
    "adds azure-identity's report of the latest Entra ID sign-in", show_config, config_arguments,
)

__all__ = ["CONFIG", "PRICES_HELP", "setting_trait", "setting_traits", "settings_table_markdown"]
