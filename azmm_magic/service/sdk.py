"""Build the ``openai`` SDK clients for resolved settings: URL style, auth, timeouts, retries.

Three URL styles: classic Azure (``/openai/deployments/{deployment}/chat/completions?api-version=``), Azure's
``/openai/v1/`` API, and any OpenAI-compatible base URL. Three auth modes: API key, Microsoft Entra ID (a bearer
token provider the SDK calls on every request; azure-identity caches and refreshes the token), and none.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from azmm_magic.core.errors import AuthError, ConfigError
from azmm_magic.core.settings import ENTRA_SCOPE, Settings
from azmm_magic.service.errors import describe

TokenProvider = Callable[[], str]
IDENTITY_LOGGER = "azure.identity"
#: azure-identity's log records of the latest token requests (kept out of the notebook; see identity_report())
_IDENTITY_LOG: deque[str] = deque(maxlen=60)
_LAST_IDENTITY_ERROR: list[str] = []
_QUIET_LOCK = threading.Lock()
_QUIET_DEPTH = 0
_QUIET_SAVED: dict[str, Any] = {}


class _Keep(logging.Handler):
    """Keeps azure-identity's records (formatted) instead of letting them reach the notebook's stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _IDENTITY_LOG.append(f"{record.levelname} {record.name}: {record.getMessage()}")
        except Exception:  # noqa: BLE001 - a log record must never break a request
            pass


_KEEP = _Keep(logging.DEBUG)


@contextmanager
def quiet_identity() -> Iterator[None]:
    """While azure-identity looks for a credential, keep its log records (its per-credential attempts) out of
    the cell: they are stored for :func:`identity_report` instead. Safe across threads (nested uses count)."""
    global _QUIET_DEPTH
    logger = logging.getLogger(IDENTITY_LOGGER)
    with _QUIET_LOCK:
        if _QUIET_DEPTH == 0:
            _QUIET_SAVED.update(propagate=logger.propagate)
            logger.addHandler(_KEEP)
            logger.propagate = False
        _QUIET_DEPTH += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET_DEPTH -= 1
            if _QUIET_DEPTH == 0:
                logger.removeHandler(_KEEP)
                logger.propagate = _QUIET_SAVED.pop("propagate", True)


def identity_report() -> list[str]:
    """What azure-identity reported during the latest token requests: the last error's full text, then its log
    records (oldest first). Empty when Entra ID was not used."""
    return [*_LAST_IDENTITY_ERROR, *_IDENTITY_LOG]


def _identity_error(error: BaseException, host: str) -> AuthError | None:
    """Our one-line error for azure-identity's failure to get a token (None for any other exception)."""
    try:
        from azure.core.exceptions import ClientAuthenticationError
    except ImportError:  # pragma: no cover - a dependency of azure-identity
        return None
    if not isinstance(error, ClientAuthenticationError):
        return None
    text = str(error).strip()
    _LAST_IDENTITY_ERROR[:] = [f"{type(error).__name__}: {text}"]
    first = text.splitlines()[0] if text else type(error).__name__
    key = "set an API key (AZURE_OPENAI_API_KEY, or api_key=)"
    ways = f"{key}, {_sign_in_ways()}"
    report = "azure-identity's full report: %azure_vision config --debug (in Python: the error's __cause__)"
    unavailable = type(error).__name__ == "CredentialUnavailableError" or first.startswith(
        "DefaultAzureCredential failed to retrieve a token from the included credentials")
    if unavailable:
        message = (f"No Microsoft Entra ID credential was found to call {host} (no API key is set, so Entra ID is "
                   f"used): {ways}. {report}.")
    else:
        message = (f"Microsoft Entra ID sign-in failed for {host} ({first[:160].rstrip('.')}): sign in again (az "
                   f"login) or {key}. {report}.")
    return AuthError(message, settings=("api_key",), remedy="credentials", code="entra_credential")


def _sign_in_ways() -> str:
    """The Entra ID sign-ins azure-identity will try here: ``AZURE_TOKEN_CREDENTIALS=dev`` leaves only developer
    sign-ins (no managed identity), ``prod`` only deployed ones (environment, workload and managed identity)."""
    import os

    chosen = os.environ.get("AZURE_TOKEN_CREDENTIALS", "").strip().lower()
    if chosen == "dev":
        return "or sign in with the Azure CLI (az login)"
    if chosen == "prod":
        return "or run where a managed identity is available (AZURE_TOKEN_CREDENTIALS=prod rules out az login)"
    return "sign in with the Azure CLI (az login), or run where a managed identity is available"


def guard_provider(provider: TokenProvider, host: str) -> TokenProvider:
    """``provider`` with azure-identity's log kept out of the cell and its failure turned into one
    :class:`AuthError` line (the original error is the ``__cause__``)."""

    def guarded() -> str:
        with quiet_identity():
            try:
                return provider()
            except Exception as e:
                mapped = _identity_error(e, host)
                if mapped is None:
                    raise
                raise mapped from e

    guarded.__wrapped__ = provider  # type: ignore[attr-defined]
    return guarded


def _construct(cls: Any, **kwargs: Any) -> Any:
    """Build an SDK client; its refusals (e.g. a sync ``http_client`` given to the async client) become ours."""
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"The openai SDK refused the settings: {describe(e)} (ask/stream need a sync http_client, aask an "
            f"async one: use one VisionClient per kind)"
        ) from None


def entra_provider() -> TokenProvider:
    """A bearer-token provider over ``DefaultAzureCredential`` (azure-identity caches and refreshes the token)."""
    try:
        from azure.identity import DefaultAzureCredential, get_bearer_token_provider
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ConfigError("Entra ID needs the 'azure-identity' package: pip install azure-identity") from e
    with quiet_identity():
        return get_bearer_token_provider(DefaultAzureCredential(), ENTRA_SCOPE)


def chat_url(settings: Settings) -> str | None:
    """The URL chat completions are sent to with these settings (None without an endpoint), for the config view."""
    if not settings.endpoint:
        return None
    base = settings.endpoint.rstrip("/")
    deployment = settings.deployment or "{deployment}"
    if settings.resolved_api_style == "azure":
        return f"{base}/openai/deployments/{deployment}/chat/completions?api-version={settings.api_version}"
    return f"{base}/chat/completions (model {deployment})"


_SSL_CONTEXT: Any = None
_SSL_LOCK = threading.Lock()


def fresh_async_http_client() -> Any:
    """A new async HTTP client for the SDK, reusing one SSL context (building one costs ~0.1 s each time)."""
    global _SSL_CONTEXT
    try:
        import openai

        with _SSL_LOCK:
            if _SSL_CONTEXT is None:
                try:
                    import httpx2 as httpx_module  # the SDK's HTTP library in recent openai versions
                except ImportError:  # pragma: no cover - older openai versions use httpx
                    import httpx as httpx_module  # type: ignore[no-redef]
                _SSL_CONTEXT = httpx_module.create_ssl_context()
        return openai.DefaultAsyncHttpxClient(verify=_SSL_CONTEXT)
    except Exception:  # noqa: BLE001 - fall back to the SDK's own default client
        return None


class SdkClients:
    """The sync client and the async client (one per event loop) for one set of settings, built on first use."""

    def __init__(self, settings: Settings, *, token_provider: TokenProvider | None = None, http_client: Any = None):
        self.settings = settings
        self.token_provider = token_provider
        self.http_client = http_client
        self._sync: Any = None
        self._async: Any = None
        self._async_loop: Any = None
        self._chat_sync: Any = None
        self._chat_async: Any = None
        self._closer: Any = None  # the async generator that closes the async client when its loop shuts down
        self._lock = threading.Lock()

    def derive(self, settings: Settings, *, http_client: Any = None) -> SdkClients:
        """Clients for other settings with the same credentials; ``http_client`` replaces
        this one's (an async pool belongs to one event loop, so a batch run brings its own)."""
        return SdkClients(settings, token_provider=self.token_provider, http_client=http_client or self.http_client)

    def auth(self) -> tuple[str, Any]:
        """``('key', key)`` | ``('entra', provider)`` | ``('none', placeholder)``."""
        s = self.settings
        mode = s.resolved_auth
        if mode == "key":
            assert s.api_key is not None
            return "key", s.api_key.reveal()
        if mode == "entra" or self.token_provider is not None:
            return "entra", guard_provider(self.token_provider or entra_provider(), s.endpoint_host or "the endpoint")
        return "none", "no-auth"  # a placeholder so the SDK never falls back to a key from the environment

    def build(self, *, asynchronous: bool) -> Any:
        """A new SDK client (``AzureOpenAI`` for the classic style, else ``OpenAI``; async twins on request)."""
        try:
            import openai
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise ConfigError("The 'openai' package is missing: pip install azmm_magic") from e
        s = self.settings.require()
        kwargs: dict[str, Any] = {"timeout": s.timeout, "max_retries": s.max_retries}
        if self.http_client is not None:
            kwargs["http_client"] = self.http_client
        mode, credential = self.auth()
        if s.resolved_api_style == "azure":
            cls: Any = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
            auth = {"azure_ad_token_provider": credential} if mode == "entra" else {"api_key": credential}
            return _construct(cls, azure_endpoint=s.endpoint, api_version=s.api_version, **auth, **kwargs)
        cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        base_url = (s.endpoint or "").rstrip("/") + "/"
        if asynchronous and mode == "entra":
            sync_provider = credential

            async def async_provider() -> str:
                return await asyncio.to_thread(sync_provider)

            credential = async_provider
        return _construct(cls, base_url=base_url, api_key=credential, **kwargs)

    def sync(self) -> Any:
        """The sync SDK client (built once)."""
        with self._lock:
            if self._sync is None:
                self._sync = self.build(asynchronous=False)
            return self._sync

    def async_(self) -> Any:
        """The async SDK client of the running event loop (a new loop, e.g. a second ``asyncio.run``, gets its own).

        Its connections belong to that loop, so it is closed there: when the loop shuts down (``asyncio.run``
        closes its async generators, one of which closes the client) or, for a loop still running elsewhere, on
        that loop when another loop takes over. A client built on an ``http_client`` you passed is left open."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._async is None or self._async_loop is not loop:
                old, old_loop = self._async, self._async_loop
                self._async = self.build(asynchronous=True)
                self._async_loop = loop
                self._chat_async = None
                # an http_client given by the caller is theirs to close
                self._closer = _close_with_loop(self._async) if self.http_client is None else None
                if old is not None and self.http_client is None:
                    _close_on(old, old_loop)
            return self._async

    def chat_sync(self) -> Any:
        """The sync client for chat completions: :meth:`sync` with the SDK's own retries off (sending retries
        itself, so that each wait can be shown and counted; the Files and Batches calls keep the SDK's)."""
        client = self.sync()
        with self._lock:
            if self._chat_sync is None or self._chat_sync[0] is not client:
                self._chat_sync = (client, client.with_options(max_retries=0))
            return self._chat_sync[1]

    def chat_async(self) -> Any:
        """:meth:`async_` with the SDK's own retries off (see :meth:`chat_sync`)."""
        client = self.async_()
        with self._lock:
            if self._chat_async is None or self._chat_async[0] is not client:
                self._chat_async = (client, client.with_options(max_retries=0))
            return self._chat_async[1]

    def close(self) -> None:
        """Close the sync client's connections."""
        with self._lock:
            client, self._sync = self._sync, None
            self._chat_sync = None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the async client's connections (on the loop that owns them)."""
        with self._lock:
            client, closer, self._async = self._async, self._closer, None
            self._chat_async = self._closer = self._async_loop = None
        if closer is not None:
            await closer.aclose()  # its ``finally`` closes the client
        elif client is not None:
            await client.close()


def _close_with_loop(client: Any) -> Any:
    """Close ``client`` when the running loop shuts down: an async generator started here is closed by the loop's
    ``shutdown_asyncgens()`` (which ``asyncio.run`` calls), and its ``finally`` runs on that loop. Returns the
    generator, to be kept while the client is in use."""

    async def closer() -> Any:
        try:
            yield
        finally:
            try:
                await client.close()
            except Exception:  # noqa: BLE001 - closing connections must never raise into the loop's shutdown
                pass

    generator = closer()
    step = generator.__anext__()  # the loop's first-iteration hook registers it for shutdown_asyncgens()
    try:
        step.send(None)  # runs to the yield without suspending
    except StopIteration:
        pass
    return generator


def _close_on(client: Any, loop: Any) -> None:
    """Close an async client of another loop: on that loop while it runs; a loop that is closed already closed
    it when it shut down (see :func:`_close_with_loop`)."""
    if loop is None or loop.is_closed() or not loop.is_running():
        return
    try:
        asyncio.run_coroutine_threadsafe(client.close(), loop)
    except RuntimeError:  # the loop closed meanwhile
        pass


__all__ = ["SdkClients", "TokenProvider", "chat_url", "entra_provider", "fresh_async_http_client", "guard_provider",
           "identity_report", "quiet_identity"]
