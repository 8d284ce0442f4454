"""Settings: precedence, env aliases, masking, derived values, clear errors."""

from __future__ import annotations

import pytest

from azmm_magic.core.settings import Secret, Settings
from azmm_magic.core.errors import ConfigError
from azmm_magic.frontends.magics.hints import magic_hint

ENV = {
    "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com/",
    "AZURE_OPENAI_API_KEY": "sk-CANARY-123",
    "OPENAI_API_VERSION": "2025-01-01-preview",
    "AZURE_OPENAI_DEPLOYMENT_NAME": "gpt4o-prod",
}


def test_precedence_argument_over_session_over_env_over_default():
    s = Settings.resolve({"deployment": "arg"}, session={"deployment": "trait", "detail": "low"}, env=ENV)
    assert s.deployment == "arg" and s.sources["deployment"] == "argument"
    assert s.detail == "low" and s.sources["detail"] == "%config"
    assert s.endpoint == ENV["AZURE_OPENAI_ENDPOINT"] and s.sources["endpoint"] == "env AZURE_OPENAI_ENDPOINT"
    assert s.api_version == "2025-01-01-preview"
    assert s.max_tokens == 2048 and s.sources["max_tokens"] == "default"


def test_deployment_env_aliases_in_priority_order():
    env = {"AZURE_OPENAI_CHAT_DEPLOYMENT_NAME": "c", "AZURE_OPENAI_DEPLOYMENT_NAME": "b"}
    assert Settings.resolve(env=env).deployment == "b"
    assert Settings.resolve(env={**env, "AZURE_OPENAI_DEPLOYMENT": "a"}).deployment == "a"
    assert Settings.resolve(env={"AZURE_OPENAI_CHAT_DEPLOYMENT_NAME": "c"}).deployment == "c"


def test_secret_is_masked_everywhere():
    s = Settings.resolve(env=ENV)
    assert isinstance(s.api_key, Secret) and s.api_key.reveal() == "sk-CANARY-123"
    for text in (repr(s), str(s), repr(s.api_key), str(s.describe())):
        assert "CANARY" not in text
    assert ("api_key", "****", "env AZURE_OPENAI_API_KEY") in s.describe()


def test_auth_and_style_auto_resolution():
    assert Settings.resolve(env=ENV).resolved_auth == "key"
    no_key = {k: v for k, v in ENV.items() if k != "AZURE_OPENAI_API_KEY"}
    assert Settings.resolve(env=no_key).resolved_auth == "entra"
    assert Settings.resolve({"endpoint": "http://127.0.0.1:8000"}, env={}).resolved_auth == "none"
    assert Settings.resolve(env=ENV).resolved_api_style == "azure"
    assert Settings.resolve({"endpoint": "https://r.openai.azure.com/openai/v1/"}, env={}).resolved_api_style == "azure-v1"
    assert Settings.resolve({"endpoint": "http://localhost:11434/v1"}, env={}).resolved_api_style == "openai"
    assert Settings.resolve({"endpoint": "http://x/v1", "api_style": "azure"}, env={}).resolved_api_style == "azure"


@pytest.mark.parametrize(
    "args, needle",
    [
        ({"detail": "medium"}, "expected one of low, high, auto"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"max_tokens": 0}, "positive"),
        ({"timeout": -1}, "greater than 0"),
        ({"colour": "red"}, "Unknown setting"),
    ],
)
def test_invalid_values_name_the_setting(args, needle):
    with pytest.raises(ConfigError, match=needle):
        Settings.resolve(args, env={})


def test_invalid_env_value_names_the_variable():
    with pytest.raises(ConfigError, match="AZMM_DETAIL"):
        Settings.resolve(env={"AZMM_DETAIL": "ultra"})


def test_require_names_what_to_set():
    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
        Settings.resolve(env={}).require()
    with pytest.raises(ConfigError, match=r"deployment='NAME'.*AZURE_OPENAI_DEPLOYMENT") as info:
        Settings.resolve({"endpoint": "https://r.openai.azure.com"}, env={}).require()
    assert info.value.settings == ("deployment",)  # the magic words its own hint from this
    assert "%config AzureVision.deployment" in magic_hint(info.value)
    with pytest.raises(ConfigError, match="not an http"):
        Settings.resolve({"endpoint": "ftp://x", "deployment": "d"}, env={}).require()
    with pytest.raises(ConfigError, match="must not contain credentials"):
        Settings.resolve({"endpoint": "https://u:p@x.com", "deployment": "d"}, env={}).require()
    with pytest.raises(ConfigError, match="no API key"):
        Settings.resolve({"endpoint": "https://x.com", "deployment": "d", "auth": "key"}, env={}).require()


def test_with_overrides_ignores_none_and_marks_source():
    s = Settings.resolve(env=ENV)
    t = s.with_overrides(detail="high", temperature=None)
    assert t.detail == "high" and t.sources["detail"] == "argument" and t.temperature is None
    assert s.with_overrides() is s
    with pytest.raises(ConfigError, match="Unknown setting"):
        s.with_overrides(bogus=1)


def test_secret_cannot_be_pickled():
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(Secret("x"))


def _errors_of_the_python_api() -> list[ConfigError]:
    """Every kind of ConfigError the settings raise, as a script using the Python API meets them."""
    errors = []
    bad = [
        ({"detail": "medium"}, {}), ({"max_tokens": "many"}, {}), ({"max_tokens": 0}, {}), ({"timeout": -1}, {}),
        ({"temperature": 3}, {}), ({"chat_turns": -1}, {}), ({"stream": "maybe"}, {}), ({"colour": "red"}, {}),
        ({}, {"AZMM_CACHE": "disk"}), ({}, {"AZMM_MAX_IMAGES": "x"}),
    ]
    for arguments, env in bad:
        with pytest.raises(ConfigError) as info:
            Settings.resolve(arguments, env=env)
        errors.append(info.value)
    for arguments in ({}, {"endpoint": "https://r.openai.azure.com"}, {"endpoint": "ftp://x", "deployment": "d"},
                      {"endpoint": "https://u:p@x.com", "deployment": "d"},
                      {"endpoint": "https://x.com", "deployment": "d", "auth": "key"}):
        with pytest.raises(ConfigError) as info:
            Settings.resolve(arguments, env={}).require()
        errors.append(info.value)
    with pytest.raises(ConfigError) as info:
        Settings.resolve(env={}).with_overrides(detail="ultra")
    errors.append(info.value)
    return errors


def test_python_api_errors_contain_no_magic_syntax():
    errors = _errors_of_the_python_api()
    assert len(errors) == 16
    for error in errors:
        message = str(error)
        for magic in ("%config", "%azure_vision", "AzureVision.", "--", "re-run", "the cell", "notebook"):
            assert magic not in message, (magic, message)
        assert "\n" not in message


def test_settings_errors_say_which_setting_fixes_them():
    by_message = {str(e): e for e in _errors_of_the_python_api()}
    detail = next(e for m, e in by_message.items() if "'medium'" in m)
    assert detail.settings == ("detail",) and "detail='low|high|auto'" in str(detail) and "AZMM_DETAIL" in str(detail)
    endpoint = next(e for m, e in by_message.items() if m.startswith("No endpoint"))
    assert endpoint.settings == ("endpoint",) and endpoint.remedy == "emulator"
    key = next(e for m, e in by_message.items() if "no API key" in m)
    assert key.settings == ("api_key",) and key.remedy == "credentials" and "AZURE_OPENAI_API_KEY" in str(key)
