"""Resolved settings: one :class:`Settings` object, and where each value came from.

Resolution order, highest first: explicit argument > ``%config AzureVision.<name>`` trait (or any other
"session" layer the caller passes) > environment variable > default. The API key is never a trait and never a
magic option: it comes from the environment, from ``%azure_vision login`` (getpass) or from an explicit Python
argument, and it is masked in every ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from azmm_magic.core.errors import ConfigError

AuthMode = Literal["auto", "key", "entra", "none"]
ApiStyle = Literal["auto", "azure", "azure-v1", "openai"]
Detail = Literal["low", "high", "auto"]
TokenParam = Literal["auto", "max_tokens", "max_completion_tokens"]

ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
DEFAULT_API_VERSION = "2024-10-21"


class Secret:
    """A string that never shows itself in ``repr``/``str``; call :meth:`reveal` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:  # never pickle a secret by accident
        raise TypeError("Secret values cannot be pickled")


@dataclass(frozen=True)
class Option:
    """Metadata of one setting: its environment variables and help text (shown by ``%azure_vision config``)."""

    env: tuple[str, ...]
    help: str


# name -> (environment variables, highest priority first; help)
OPTIONS: dict[str, Option] = {
    "endpoint": Option(
        ("AZURE_OPENAI_ENDPOINT",),
        "Azure resource endpoint (https://RESOURCE.openai.azure.com/), a .../openai/v1/ URL, or any "
        "OpenAI-compatible base URL.",
    ),
    "deployment": Option(
        ("AZURE_OPENAI_DEPLOYMENT", "AZURE_OPENAI_DEPLOYMENT_NAME", "AZURE_OPENAI_CHAT_DEPLOYMENT_NAME"),
        "Deployment name (Azure) or model name (OpenAI-compatible). Any name works: no allow-list.",
    ),
    "api_version": Option(("OPENAI_API_VERSION",), "api-version query parameter for the classic Azure URL style."),
    "api_key": Option(
        ("AZURE_OPENAI_API_KEY", "OPENAI_API_KEY"),
        "API key. Never a trait or magic option: set the environment variable or run %azure_vision login.",
    ),
    "auth": Option(
        ("AZMM_AUTH",),
        "auto | key | entra | none. auto: key if one is set, Entra ID for *.azure.com endpoints, else none.",
    ),
    "api_style": Option(
        ("AZMM_API_STYLE",),
        "auto | azure (deployments URL + api-version) | azure-v1 (/openai/v1/) | openai (any compatible server).",
    ),
    "detail": Option(("AZMM_DETAIL",), "Image detail: low | high | auto."),
    "max_tokens": Option(("AZMM_MAX_TOKENS",), "Output token limit (sent as max_completion_tokens or max_tokens)."),
    "temperature": Option(("AZMM_TEMPERATURE",), "Sampling temperature; unset = the service's default."),
    "system_prompt": Option(("AZMM_SYSTEM_PROMPT",), "System message sent before the prompt; unset = none."),
    "timeout": Option(("AZMM_TIMEOUT",), "Seconds to wait for an answer, per attempt."),
    "max_retries": Option(("AZMM_MAX_RETRIES",), "SDK retries on 408/409/429/5xx/timeouts (honours Retry-After)."),
    "token_rule": Option(
        ("AZMM_TOKEN_RULE",),
        "Image token rule used for estimates and downscaling: gpt-4o | gpt-4o-mini | gpt-4.1-mini | "
        "gpt-4.1-nano | o4-mini.",
    ),
    "token_param": Option(
        ("AZMM_TOKEN_PARAM",),
        "auto | max_tokens | max_completion_tokens. auto picks per API style and switches when a model "
        "rejects one.",
    ),
    "max_images": Option(("AZMM_MAX_IMAGES",), "Most images in one request."),
    "max_image_mb": Option(("AZMM_MAX_IMAGE_MB",), "Largest image payload in MB after preparation."),
    "inline_urls": Option(("AZMM_INLINE_URLS",), "Download http(s) images and send them inline instead of as URLs."),
    "stream": Option(("AZMM_STREAM",), "Stream answers while the model writes."),
    "cache": Option(
        ("AZMM_CACHE",),
        "memory (answers kept for this session) | sqlite (kept across sessions in cache_path) | replay (answers "
        "only from cache_path, never calls the service) | off.",
    ),
    "cache_path": Option(
        ("AZMM_CACHE_PATH",),
        "SQLite file for cache = sqlite | replay; default $XDG_CACHE_HOME/azmm_magic/cache.sqlite "
        "(~/.cache/azmm_magic/cache.sqlite).",
    ),
    "chat_turns": Option(("AZMM_CHAT_TURNS",), "Most earlier turns of a --chat conversation sent again (0 = none)."),
    "chat_image_turns": Option(
        ("AZMM_CHAT_IMAGE_TURNS",),
        "Earlier --chat turns whose images are sent again, counted from the newest; unset = all (older turns keep "
        "their text and a note that an image was dropped).",
    ),
    "concurrency": Option(
        ("AZMM_CONCURRENCY",),
        "Most requests in flight at once for --each / VisionClient.batch (halved on 429, then raised again).",
    ),
}

# field name -> (type, default)
_DEFAULTS: dict[str, Any] = {
    "endpoint": None,
    "deployment": None,
    "api_version": DEFAULT_API_VERSION,
    "api_key": None,
    "auth": "auto",
    "api_style": "auto",
    "detail": "auto",
    "max_tokens": 2048,
    "temperature": None,
    "system_prompt": None,
    "timeout": 60.0,
    "max_retries": 3,
    "token_rule": "gpt-4o",
    "token_param": "auto",
    "max_images": 10,
    "max_image_mb": 20.0,
    "inline_urls": False,
    "stream": True,
    "cache": "memory",
    "cache_path": None,
    "chat_turns": 10,
    "chat_image_turns": None,
    "concurrency": 16,
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "auth": ("auto", "key", "entra", "none"),
    "api_style": ("auto", "azure", "azure-v1", "openai"),
    "detail": ("low", "high", "auto"),
    "token_param": ("auto", "max_tokens", "max_completion_tokens"),
    "token_rule": ("gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1-nano", "o4-mini"),
    "cache": ("memory", "off", "sqlite", "replay"),
}


def _to_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "max_tokens": int,
    "temperature": float,
    "timeout": float,
    "max_retries": int,
    "concurrency": int,
    "max_images": int,
    "max_image_mb": float,
    "inline_urls": lambda v: v if isinstance(v, bool) else _to_bool(str(v)),
    "stream": lambda v: v if isinstance(v, bool) else _to_bool(str(v)),
    "api_key": lambda v: v if isinstance(v, Secret) else Secret(str(v)),
    "chat_turns": int,
    "chat_image_turns": int,
}


def _coerce(name: str, value: Any, origin: str) -> Any:
    if value is None:
        return None
    try:
        value = _CONVERTERS.get(name, str)(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"Setting {name!r} from {origin} is invalid ({e}); {_how_to_set(name)}.") from None
    choices = _CHOICES.get(name)
    if choices and value not in choices:
        raise ConfigError(
            f"Setting {name!r} from {origin} is {value!r}; expected one of {', '.join(choices)}."
        )
    if name in ("max_tokens", "max_images", "max_retries", "concurrency") and value < (0 if name == "max_retries" else 1):
        raise ConfigError(f"Setting {name!r} from {origin} must be a positive number, got {value}.")
    if name in ("chat_turns", "chat_image_turns") and value < 0:
        raise ConfigError(f"Setting {name!r} from {origin} must be 0 or more, got {value}.")
    if name == "temperature" and not 0 <= value <= 2:  # also rejects NaN, which JSON cannot carry
        raise ConfigError(f"Setting 'temperature' from {origin} must be between 0 and 2, got {value}.")
    if name in ("timeout", "max_image_mb") and not value > 0:
        raise ConfigError(f"Setting {name!r} from {origin} must be greater than 0, got {value}.")
    return value


def _how_to_set(name: str) -> str:
    opt = OPTIONS[name]
    if name == "api_key":
        return f"set the environment variable {opt.env[0]} or run `%azure_vision login`"
    return f"run `%config AzureVision.{name} = ...` or set the environment variable {opt.env[0]}"


@dataclass(frozen=True)
class Settings:
    """Everything needed to reach one service. Build it with :meth:`Settings.resolve`.

    ``sources`` maps each field to where its value came from (``"argument"``, ``"%config"``,
    ``"env AZURE_OPENAI_ENDPOINT"``, ``"default"``, ...). ``repr`` masks the API key.
    """

    endpoint: str | None = None
    deployment: str | None = None
    api_version: str = DEFAULT_API_VERSION
    api_key: Secret | None = None
    auth: AuthMode = "auto"
    api_style: ApiStyle = "auto"
    detail: Detail = "auto"
    max_tokens: int = 2048
    temperature: float | None = None
    system_prompt: str | None = None
    timeout: float = 60.0
    max_retries: int = 3
    token_rule: str = "gpt-4o"
    token_param: TokenParam = "auto"
    max_images: int = 10
    max_image_mb: float = 20.0
    inline_urls: bool = False
    stream: bool = True
    cache: str = "memory"
    cache_path: str | None = None
    chat_turns: int = 10
    chat_image_turns: int | None = None
    concurrency: int = 16
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def resolve(
        cls,
        arguments: Mapping[str, Any] | None = None,
        *,
        session: Mapping[str, Any] | None = None,
        session_label: str | Mapping[str, str] = "%config",
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """Resolve every setting: ``arguments`` > ``session`` (traits) > ``env`` (default ``os.environ``) > default.

        ``None`` values in ``arguments``/``session`` mean "not set here". Invalid values raise
        :class:`ConfigError` naming the setting and where the bad value came from.
        """
        arguments = arguments or {}
        session = session or {}
        env = os.environ if env is None else env
        unknown = set(arguments) - set(_DEFAULTS)
        if unknown:
            raise ConfigError(f"Unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(_DEFAULTS)}.")
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, default in _DEFAULTS.items():
            if arguments.get(name) is not None:
                values[name], sources[name] = _coerce(name, arguments[name], "argument"), "argument"
                continue
            if session.get(name) is not None:
                label = session_label if isinstance(session_label, str) else session_label.get(name, "session")
                values[name] = _coerce(name, session[name], label)
                sources[name] = label
                continue
            for var in OPTIONS[name].env:
                raw = env.get(var)
                if raw not in (None, ""):
                    values[name] = _coerce(name, raw, f"environment variable {var}")
                    sources[name] = f"env {var}"
                    break
            else:
                values[name], sources[name] = default, "default"
        return cls(**values, sources=sources)

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some values replaced (marked as coming from ``argument``); ``None`` values are ignored."""
        unknown = set(changes) - set(_DEFAULTS)
        if unknown:
            raise ConfigError(f"Unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(_DEFAULTS)}.")
        changes = {k: _coerce(k, v, "argument") for k, v in changes.items() if v is not None}
        if not changes:
            return self
        sources = {**self.sources, **{k: "argument" for k in changes}}
        return replace(self, **changes, sources=sources)

    # ----- derived values -------------------------------------------------------------------------------------
    @property
    def resolved_api_style(self) -> Literal["azure", "azure-v1", "openai"]:
        """The URL style actually used: ``auto`` is decided from the endpoint."""
        if self.api_style != "auto":
            return self.api_style
        path = urlsplit(self.endpoint or "").path.rstrip("/")
        if path.endswith("/openai/v1"):
            return "azure-v1"
        if path.endswith("/v1"):
            return "openai"
        return "azure"

    @property
    def resolved_auth(self) -> Literal["key", "entra", "none"]:
        """The auth mode actually used: ``auto`` is a key when one is set, Entra ID for Azure hosts, else none."""
        if self.auth != "auto":
            return self.auth
        if self.api_key:
            return "key"
        host = (urlsplit(self.endpoint or "").hostname or "").lower()
        if host.endswith((".azure.com", ".azure.us", ".azure.cn", ".microsoft.com")):
            return "entra"
        return "none"

    @property
    def endpoint_host(self) -> str:
        """Host (and port) of the endpoint, used in messages and cache keys; never contains credentials."""
        parts = urlsplit(self.endpoint or "")
        host = parts.hostname or ""
        return f"{host}:{parts.port}" if parts.port else host

    @property
    def max_image_bytes(self) -> int:
        return int(self.max_image_mb * 1024 * 1024)

    def require(self) -> Settings:
        """Raise :class:`ConfigError` naming what to set when the service cannot be reached with these settings."""
        if not self.endpoint:
            raise ConfigError(
                "No endpoint is set: set AZURE_OPENAI_ENDPOINT (https://RESOURCE.openai.azure.com/), run "
                "`%config AzureVision.endpoint = '...'`, or run `%azure_vision emulator` to try the local emulator."
            )
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"Endpoint {self.endpoint!r} is not an http(s) URL; expected e.g. https://RESOURCE.openai.azure.com/."
            )
        if parts.username or parts.password:
            raise ConfigError("The endpoint URL must not contain credentials; set AZURE_OPENAI_API_KEY instead.")
        if not self.deployment:
            raise ConfigError(
                "No deployment is set: set AZURE_OPENAI_DEPLOYMENT, run `%config AzureVision.deployment = 'NAME'`, "
                "or pass --deployment NAME."
            )
        if self.resolved_auth == "key" and not self.api_key:
            raise ConfigError(f"auth is 'key' but no API key is set: {_how_to_set('api_key')}.")
        return self

    def describe(self) -> list[tuple[str, str, str]]:
        """Rows of (setting, value shown to the user, source) with secrets masked."""
        rows = []
        for f in fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            if f.name == "api_key":
                shown = "****" if value else "(not set)"
            else:
                shown = "(not set)" if value is None else str(value)
            if f.name == "auth" and value == "auto":
                shown = f"auto → {self.resolved_auth}"
            if f.name == "api_style" and value == "auto":
                shown = f"auto → {self.resolved_api_style}"
            rows.append((f.name, shown, self.sources.get(f.name, "default")))
        return rows

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={shown!r}" for name, shown, _ in self.describe())
        return f"Settings({inner})"


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` (a name or an IP address, no port) is this machine: ``localhost`` or a loopback address."""
    import ipaddress

    host = (host or "").strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def setting_names() -> tuple[str, ...]:
    """All setting names, in display order."""
    return tuple(_DEFAULTS)
