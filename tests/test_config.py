"""Settings: precedence, env aliases, masking, derived values, clear errors."""

from __future__ import annotations

import pytest

from azmm_magic.core.settings import Secret, Settings
from azmm_magic.core.errors import ConfigError

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
    with pytest.raises(ConfigError, match=r"AZURE_OPENAI_DEPLOYMENT.*%config AzureVision.deployment"):
        Settings.resolve({"endpoint": "https://r.openai.azure.com"}, env={}).require()
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
