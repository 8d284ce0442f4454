"""Resolved settings: one :class:`Settings` object, and where each value came from.

Each setting is defined once, as a field of :class:`Settings`: its type (the annotation; a ``Literal`` gives the
choices), its default, and a :class:`SettingSpec` (environment variables, check, help, label, cell option).
Everything else is derived from those fields through :data:`SCHEMA`: resolution and environment parsing,
validation, :meth:`Settings.describe`, and in the magic frontend the ``%config AzureVision`` traits, the
``%azure_vision config`` view and the settings table of docs/settings.md.

Resolution order, highest first: explicit argument > ``%config AzureVision.<name>`` trait (or any other
"session" layer the caller passes) > environment variable > default. The API key is never a trait and never a
magic option: it comes from the environment, from the frontend (the magic's ``login``) or from an explicit Python
argument, and it is masked in every ``repr``.

Messages here are frontend-neutral: they name keyword arguments and environment variables, and carry the
settings that fix them (``error.settings``) so each frontend can add its own hint.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from azmm_magic.core.endpoints import AZURE_KEY_HOST_SUFFIXES, FROM_URL, KEY_HOSTS, is_loopback_host, read_endpoint, safe_url
from azmm_magic.core.errors import ConfigError, Remedy
from azmm_magic.core.hosted import colab_secrets

AuthMode = Literal["auto", "key", "entra", "none"]
ApiStyle = Literal["auto", "azure", "azure-v1", "openai"]
Detail = Literal["low", "high", "auto"]
TokenParam = Literal["auto", "max_tokens", "max_completion_tokens"]
TokenRuleName = Literal["gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1-nano", "o4-mini"]
CacheMode = Literal["memory", "off", "sqlite", "replay"]

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


# ----- the schema -------------------------------------------------------------------------------------------------
Check = Callable[[Any], str | None]  # a value -> what is wrong with it ("must be ..."), or None


def at_least(low: float, words: str) -> Check:
    """A check: the value is ``>= low``; ``words`` says so to the user (e.g. "must be a positive number")."""
    return lambda value: None if value >= low else words


def between(low: float, high: float) -> Check:
    """A check: ``low <= value <= high`` (also rejects NaN)."""
    return lambda value: None if low <= value <= high else f"must be between {low:g} and {high:g}"


def greater_than_zero(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


@dataclass(frozen=True)
class SettingSpec:
    """What a setting is, besides its name, type and default (which are those of its :class:`Settings` field).

    ``env``: environment variables, highest priority first. ``help``: one or two sentences. ``label``: a short
    name for tables. ``check``: a further check of a converted value. ``trait``: whether frontends may offer it
    as a session setting (the API key may not). ``option``: the ``%%azure_vision`` cell option setting it, as
    written on the magic line (e.g. ``--detail``). ``metavar``: how to write a value in examples. ``unset``: what
    no value means (for settings whose default is None). ``note``: a short remark after the default in tables.
    """

    env: tuple[str, ...]
    help: str
    label: str
    check: Check | None = None
    trait: bool = True
    option: str | None = None
    metavar: str | None = None
    unset: str = "none"
    note: str = ""


def setting(default: Any, *env: str, help: str, label: str, **more: Any) -> Any:
    """A :class:`Settings` field: its default, and its :class:`SettingSpec` (env variables, help, ...)."""
    return field(default=default, metadata={"spec": SettingSpec(tuple(env), help, label, **more)})


@dataclass(frozen=True, kw_only=True)
class SettingInfo(SettingSpec):
    """One row of :data:`SCHEMA`: a setting's :class:`SettingSpec` plus its name, type, default and choices, all
    read from its :class:`Settings` field (``choices`` come from a ``Literal`` annotation; empty: any value)."""

    name: str
    type: type  # of a value: str, int, float, bool or Secret
    default: Any
    choices: tuple[str, ...] = ()

    def convert(self, value: Any) -> Any:
        """The value as ``type`` (text from an environment variable included); raises TypeError/ValueError."""
        if self.type is bool:
            return value if isinstance(value, bool) else _to_bool(str(value))
        if self.type is Secret:
            return value if isinstance(value, Secret) else Secret(str(value))
        return self.type(value)


def _to_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


@dataclass(frozen=True)
class Settings:
    """Everything needed to reach one service. Build it with :meth:`Settings.resolve`.

    ``sources`` maps each field to where its value came from (``"argument"``, ``"%config"``,
    ``"env AZURE_OPENAI_ENDPOINT"``, ``"default"``, ...). ``repr`` masks the API key.
    Each field is one setting; :data:`SCHEMA` describes them all.
    """

    endpoint: str | None = setting(
        None, "AZURE_OPENAI_ENDPOINT", label="endpoint", metavar="URL",
        help="Azure resource endpoint (https://RESOURCE.openai.azure.com/), a .../openai/v1/ URL, or any "
        "OpenAI-compatible base URL.",
    )
    deployment: str | None = setting(
        None, "AZURE_OPENAI_DEPLOYMENT", "AZURE_OPENAI_DEPLOYMENT_NAME", "AZURE_OPENAI_CHAT_DEPLOYMENT_NAME",
        label="deployment", option="--deployment", metavar="NAME",
        help="Deployment name (Azure) or model name (OpenAI-compatible). Any name works: no allow-list.",
    )
    api_version: str = setting(
        DEFAULT_API_VERSION, "OPENAI_API_VERSION", label="API version (classic URL style)", metavar="VERSION",
        help="api-version query parameter for the classic Azure URL style.",
    )
    api_key: Secret | None = setting(
        None, "AZURE_OPENAI_API_KEY", "OPENAI_API_KEY", label="API key", trait=False,
        help="API key. Never a session setting or a magic option (it would be saved with a notebook): set the "
        "environment variable, or pass api_key= in Python.",
    )
    auth: AuthMode = setting(
        "auto", "AZMM_AUTH", label="auth", note="a key if set, Entra ID for `*.azure.com`, else none",
        help="auto | key | entra | none. auto: key if one is set, Entra ID for *.azure.com endpoints, else none.",
    )
    api_style: ApiStyle = setting(
        "auto", "AZMM_API_STYLE", label="URL style",
        note="`…/openai/v1/` → azure-v1, `…/v1` → openai, else azure",
        help="auto | azure (deployments URL + api-version) | azure-v1 (/openai/v1/) | openai (any compatible "
        "server).",
    )
    detail: Detail = setting(
        "auto", "AZMM_DETAIL", label="image detail", option="--detail", help="Image detail: low | high | auto.",
    )
    max_tokens: int = setting(
        2048, "AZMM_MAX_TOKENS", label="output-token limit", option="--max-tokens",
        check=at_least(1, "must be a positive number"),
        help="Output token limit (sent as max_completion_tokens or max_tokens).",
    )
    temperature: float | None = setting(
        None, "AZMM_TEMPERATURE", label="temperature", option="--temperature", metavar="T", check=between(0, 2),
        unset="the service's", help="Sampling temperature; unset = the service's default.",
    )
    system_prompt: str | None = setting(
        None, "AZMM_SYSTEM_PROMPT", label="system prompt", option="--system", metavar="TEXT",
        help="System message sent before the prompt; unset = none.",
    )
    timeout: float = setting(
        60.0, "AZMM_TIMEOUT", label="timeout (s, per attempt)", metavar="S", check=greater_than_zero,
        help="Seconds to wait for an answer, per attempt.",
    )
    max_retries: int = setting(
        3, "AZMM_MAX_RETRIES", label="retries (SDK; honour Retry-After)",
        check=at_least(0, "must be a positive number"),
        help="SDK retries on 408/409/429/5xx/timeouts (honours Retry-After).",
    )
    token_rule: TokenRuleName = setting(
        "gpt-4o", "AZMM_TOKEN_RULE", label="image token rule",
        help="Image token rule used for estimates and downscaling: gpt-4o | gpt-4o-mini | gpt-4.1-mini | "
        "gpt-4.1-nano | o4-mini.",
    )
    token_param: TokenParam = setting(
        "auto", "AZMM_TOKEN_PARAM", label="token parameter",
        help="auto | max_tokens | max_completion_tokens. auto picks per API style and switches when a model "
        "rejects one.",
    )
    max_images: int = setting(
        10, "AZMM_MAX_IMAGES", label="images per request", check=at_least(1, "must be a positive number"),
        help="Most images in one request.",
    )
    max_image_mb: float = setting(
        20.0, "AZMM_MAX_IMAGE_MB", label="MB per image", metavar="MB", check=greater_than_zero,
        help="Largest image payload in MB after preparation.",
    )
    inline_urls: bool = setting(
        False, "AZMM_INLINE_URLS", label="inline URLs", note="URLs are passed as URLs",
        help="Download http(s) images and send them inline instead of as URLs.",
    )
    stream: bool = setting(
        True, "AZMM_STREAM", label="stream", option="--no-stream", help="Stream answers while the model writes.",
    )
    cache: CacheMode = setting(
        "memory", "AZMM_CACHE", label="cache",
        help="memory (answers kept for this session) | sqlite (kept across sessions in cache_path) | replay "
        "(answers only from cache_path, never calls the service) | off.",
    )
    cache_path: str | None = setting(
        None, "AZMM_CACHE_PATH", label="cache file", metavar="PATH",
        unset="`~/.cache/azmm_magic/cache.sqlite` (XDG)",
        help="SQLite file for cache = sqlite | replay; default $XDG_CACHE_HOME/azmm_magic/cache.sqlite "
        "(~/.cache/azmm_magic/cache.sqlite).",
    )
    chat_turns: int = setting(
        10, "AZMM_CHAT_TURNS", label="earlier chat turns sent", check=at_least(0, "must be 0 or more"),
        help="Most earlier turns of a conversation (--chat, Conversation) sent again (0 = none).",
    )
    chat_image_turns: int | None = setting(
        None, "AZMM_CHAT_IMAGE_TURNS", label="chat turns keeping images", check=at_least(0, "must be 0 or more"),
        unset="all",
        help="Earlier conversation turns whose images are sent again, counted from the newest; unset = all "
        "(older turns keep their text and a note that an image was dropped).",
    )
    concurrency: int = setting(
        256, "AZMM_CONCURRENCY", label="most requests in flight for a batch", option="--concurrency",
        check=at_least(1, "must be a positive number"),
        help="Most requests in flight at once for --each / VisionClient.batch: a cap; the batch starts lower, "
        "grows while the service keeps up and is cut on 429.",
    )
    tpm: int | None = setting(
        None, "AZMM_TPM", label="tokens per minute a batch may use", check=at_least(1, "must be a positive number"),
        unset="no budget", metavar="30000",
        help="Tokens per minute a batch paces itself to (each request counts its estimated prompt tokens plus "
        "max_tokens, as Azure does); unset = pace from the service's x-ratelimit headers and 429s only.",
    )
    warmup: bool = setting(
        True, "AZMM_WARMUP", label="warm up in the background",
        help="Import and build what the first request needs (SDK, HTTP client, image pipeline) in a background "
        "thread when the extension, the emulator or the panel starts; never prints or sends anything.",
    )
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: how a value was read when it was not used as given (e.g. the endpoint a user pasted): name -> words
    understood: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def resolve(
        cls,
        arguments: Mapping[str, Any] | None = None,
        *,
        session: Mapping[str, Any] | None = None,
        session_label: str | Mapping[str, str] = "%config",
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """Resolve every setting: ``arguments`` > ``session`` (traits) > ``env`` (default ``os.environ``, then
        Colab's Secrets panel for the service's variables: :mod:`azmm_magic.core.hosted`) > default.

        ``None`` values in ``arguments``/``session`` mean "not set here". Invalid values raise
        :class:`ConfigError` naming the setting and where the bad value came from.
        """
        arguments = arguments or {}
        session = session or {}
        hosted: Mapping[str, str] = {}
        if env is None:
            env = os.environ
            hosted = colab_secrets(SECRET_SOURCE_VARIABLES)
        _check_known(arguments)
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, info in SCHEMA.items():
            if arguments.get(name) is not None:
                values[name], sources[name] = _coerce(info, arguments[name], "argument"), "argument"
                continue
            if session.get(name) is not None:
                label = session_label if isinstance(session_label, str) else session_label.get(name, "session")
                values[name] = _coerce(info, session[name], label)
                sources[name] = label
                continue
            for raw, origin, source in _env_candidates(info.env, env, hosted):
                if raw not in (None, ""):
                    values[name], sources[name] = _coerce(info, raw, origin), source
                    break
            else:
                values[name], sources[name] = info.default, "default"
        understood = _apply_endpoint(values, sources)
        return cls(**values, sources=sources, understood=understood)

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some values replaced (marked as coming from ``argument``); ``None`` values are ignored."""
        _check_known(changes)
        changes = {k: _coerce(SCHEMA[k], v, "argument") for k, v in changes.items() if v is not None}
        if not changes:
            return self
        sources = {**self.sources, **{k: "argument" for k in changes}}
        understood = dict(self.understood)
        if "endpoint" in changes:  # read the new endpoint; what the old one's URL said no longer applies
            values = {name: getattr(self, name) for name in SCHEMA} | changes
            for name in ("deployment", "api_version"):
                if name not in changes and sources.get(name, "").endswith(FROM_URL):
                    values[name], sources[name] = SCHEMA[name].default, "default"
            understood = {k: v for k, v in understood.items() if k not in ("endpoint", "deployment", "api_version")}
            understood.update(_apply_endpoint(values, sources))
            changes.update({name: values[name] for name in ("endpoint", "deployment", "api_version")})
        return replace(self, **changes, sources=sources, understood=understood)

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
                "No endpoint is set: endpoint='https://RESOURCE.openai.azure.com/' or AZURE_OPENAI_ENDPOINT; or "
                "try the local emulator (python -m azmm_magic.emulator).",
                settings=("endpoint",), remedy="emulator",
            )
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"Endpoint {self.endpoint!r} is not an http(s) URL; expected e.g. https://RESOURCE.openai.azure.com/.",
                settings=("endpoint",),
            )
        if parts.username or parts.password:
            raise ConfigError(
                "The endpoint URL must not contain credentials; set AZURE_OPENAI_API_KEY instead.",
                settings=("endpoint",), remedy="credentials",
            )
        if not self.deployment:
            raise ConfigError(
                "Set the deployment: deployment='NAME' or AZURE_OPENAI_DEPLOYMENT.", settings=("deployment",)
            )
        if self.resolved_auth == "key" and not self.api_key:
            raise _invalid("auth is 'key' but no API key is set", SCHEMA["api_key"], remedy="credentials")
        self._check_credential_host()
        return self

    def _check_credential_host(self) -> None:
        """Credentials only where they belong: never over plain http to another machine; a key from the
        environment only to hosts of its own kind (Azure hosts for ``AZURE_OPENAI_API_KEY``, OpenAI's for
        ``OPENAI_API_KEY``; this machine for either) unless given for this endpoint (``api_key=``,
        ``%azure_vision login``) or sent on purpose (``auth='key'``)."""
        mode = self.resolved_auth
        if mode == "none":
            return
        parts = urlsplit(self.endpoint or "")
        host = (parts.hostname or "").lower()
        if is_loopback_host(host):
            return
        what = "API key" if mode == "key" else "Entra ID token"
        if parts.scheme != "https":
            raise ConfigError(
                f"Refusing to send the {what} over plain http to {host}: use an https:// endpoint, or auth='none' "
                "(AZMM_AUTH=none) for a server that needs no credential.",
                settings=("endpoint", "auth"), remedy="credentials",
            )
        source = self.sources.get("api_key", "")
        if mode != "key" or self.auth == "key" or not source.startswith("env "):
            return
        variable = source[len("env "):]
        kind, hosts = KEY_HOSTS.get(variable, ("Azure", AZURE_KEY_HOST_SUFFIXES))
        if host in hosts or host.endswith(hosts):
            return
        raise ConfigError(
            f"The key in {variable} is only sent to {kind} hosts, not to {host}: pass api_key= for this endpoint, "
            "set auth='key' (AZMM_AUTH=key) to send it anyway, or auth='none' if the server needs no key.",
            settings=("api_key", "auth"), remedy="credentials",
        )

    def describe(self) -> list[tuple[str, str, str]]:
        """Rows of (setting, value shown to the user, source) with secrets masked."""
        rows = []
        for name in SCHEMA:
            value = getattr(self, name)
            if name == "api_key":
                shown = "****" if value else "(not set)"
            else:
                shown = "(not set)" if value is None else str(value)
            if name == "auth" and value == "auto":
                shown = f"auto → {self.resolved_auth}"
            if name == "auth" and self.resolved_auth == "none":
                ignored = "; the API key set is not sent" if self.api_key else ""
                shown += f" (no credential: a placeholder api-key header is sent{ignored})"
            if name == "api_style" and value == "auto":
                shown = f"auto → {self.resolved_api_style}"
            if name in self.understood:
                shown = f"{shown} ({self.understood[name]})"
            rows.append((name, shown, self.sources.get(name, "default")))
        return rows

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={shown!r}" for name, shown, _ in self.describe())
        return f"Settings({inner})"


def _env_candidates(names: tuple[str, ...], env: Mapping[str, str],
                    hosted: Mapping[str, str]) -> list[tuple[str | None, str, str]]:
    """Where a setting may come from, in order, as (value, origin for an error message, source for the config
    view): each environment variable, then each Colab secret of that name."""
    return ([(env.get(var), f"environment variable {var}", f"env {var}") for var in names]
            + [(hosted[var], f"Colab secret {var}", f"Colab secret {var}") for var in names if var in hosted])


def _apply_endpoint(values: dict[str, Any], sources: dict[str, str]) -> dict[str, str]:
    """Normalise ``values['endpoint']`` in place; fill the deployment and api-version from it when they are not
    set elsewhere. Returns what was understood, per setting, in words (for the config view)."""
    raw = values.get("endpoint")
    if not raw:
        return {}
    reading = read_endpoint(raw, values.get("api_style") or "auto")
    if not reading.changes:
        return {}
    values["endpoint"] = reading.endpoint
    notes = {"endpoint": f"read from {safe_url(raw)!r}: {'; '.join(reading.changes)}"}
    for name, found in (("deployment", reading.deployment), ("api_version", reading.api_version)):
        if not found:
            continue
        if sources.get(name, "default") == "default":
            values[name] = found
            sources[name] = sources.get("endpoint", "argument") + FROM_URL
        elif values.get(name) != found:
            notes[name] = f"the endpoint URL says {found!r}; this value wins ({sources[name]})"
    return notes


def _schema() -> dict[str, SettingInfo]:
    hints = get_type_hints(Settings)
    schema = {}
    for f in fields(Settings):
        spec = f.metadata.get("spec")
        if spec is None:  # `sources`
            continue
        kind = hints[f.name]
        if get_origin(kind) in (Union, types.UnionType):  # X | None
            (kind,) = [a for a in get_args(kind) if a is not type(None)]
        choices: tuple[str, ...] = ()
        if get_origin(kind) is Literal:
            choices, kind = get_args(kind), str
        base = {g.name: getattr(spec, g.name) for g in fields(SettingSpec)}
        schema[f.name] = SettingInfo(**base, name=f.name, type=kind, default=f.default, choices=choices)
    return schema


#: Every setting, in display order: name -> :class:`SettingInfo`.
SCHEMA: Mapping[str, SettingInfo] = _schema()
#: the variables also read from Colab's Secrets panel: how to reach the service (endpoint, deployment, version, key)
SECRET_SOURCE_VARIABLES: tuple[str, ...] = tuple(
    var for name in ("endpoint", "deployment", "api_version", "api_key") for var in SCHEMA[name].env)


def _invalid(what: str, info: SettingInfo, *, remedy: Remedy | None = None) -> ConfigError:
    """``what`` went wrong with a setting: say how to set it in Python (keyword, environment variable)."""
    value = "..." if info.type is Secret else example_value(info)
    return ConfigError(f"{what}; set {info.name}={value} or the environment variable {info.env[0]}.",
                       settings=(info.name,), remedy=remedy)


def example_value(info: SettingInfo) -> str:
    """How a value of this setting is written in Python, for examples: ``'NAME'``, ``'low|high|auto'``, ``N``."""
    if info.choices:
        return repr("|".join(info.choices))
    if info.type is bool:
        return "True|False"
    if info.type is str:
        return repr(info.metavar or "VALUE")
    return info.metavar or ("N" if info.type is int else "X")


def _check_known(names: Mapping[str, Any]) -> None:
    unknown = set(names) - set(SCHEMA)
    if unknown:
        raise ConfigError(f"Unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(SCHEMA)}.")


def _coerce(info: SettingInfo, value: Any, origin: str) -> Any:
    if value is None:
        return None
    where = f"Setting {info.name!r} from {origin}"
    try:
        value = info.convert(value)
    except (TypeError, ValueError) as e:
        raise _invalid(f"{where} is invalid ({e})", info) from None
    if info.choices and value not in info.choices:
        raise _invalid(f"{where} is {value!r}; expected one of {', '.join(info.choices)}", info)
    problem = info.check(value) if info.check else None
    if problem:
        raise ConfigError(f"{where} {problem}, got {value}.", settings=(info.name,))
    return value
