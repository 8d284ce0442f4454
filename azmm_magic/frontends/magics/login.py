"""``%azure_vision login`` / ``logout``: an API key typed with getpass, kept in memory for this session only.

Keys are never accepted on the magic line or as a trait: they would be saved with the notebook.
"""

from __future__ import annotations

import argparse
from typing import Any

from azmm_magic.core.errors import ConfigError
from azmm_magic.core.settings import Secret
from azmm_magic.frontends.magics.subcommand import Session, Subcommand


def login(magics: Session, args: argparse.Namespace) -> Any:
    import getpass

    key = getpass.getpass("Azure OpenAI API key (kept in memory for this session only): ").strip()
    if not key:
        raise ConfigError("No key entered; nothing changed.")
    magics.login_key = Secret(key)
    magics.auth = magics.auth if magics.auth not in (None, "none") else "key"
    print("API key set for this session (not saved anywhere). %azure_vision logout forgets it.")
    return None


def logout(magics: Session, args: argparse.Namespace) -> Any:
    magics.login_key = None
    print("API key forgotten for this session.")
    return None


LOGIN = Subcommand("login", ("login",), "type an API key (getpass; kept in memory only)", login)
LOGOUT = Subcommand("logout", ("logout",), "forget the key typed with login", logout)
