"""Endpoints as people paste them (:func:`read_endpoint`), and which hosts a credential may go to.

The Azure portal, Foundry and servers' docs show an endpoint in several forms (a resource URL, a full target URI
with the deployment and api-version in it, a v1 base, a Foundry project path); :func:`read_endpoint` says what one
means and what was changed, in words. :data:`KEY_HOSTS` and :func:`is_loopback_host` say where a key from the
environment may be sent (:meth:`~azmm_magic.core.settings.Settings.require` checks it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

#: hosts of Azure resources (Azure OpenAI, AI Services / Foundry), in the public and the sovereign clouds
AZURE_HOST_SUFFIXES = tuple(
    f".{service}.{cloud}"
    for service in ("openai.azure", "cognitiveservices.azure", "services.ai.azure")
    for cloud in ("com", "us", "cn")
)
_DEPLOYMENT_PATH = re.compile(r"^(?P<base>.*?)/openai/deployments/(?P<name>[^/]+)(?:/.*)?$")
_V1_PATH = re.compile(r"^(?P<base>.*?/openai/v1)(?:/.*)?$")
_FOUNDRY_PATH = re.compile(r"^/(?:models|api/projects)(?:/.*)?$")
_QUOTES = "'\"`<>\u2018\u2019\u201c\u201d"
FROM_URL = " (from the endpoint URL)"


@dataclass(frozen=True)
class EndpointReading:
    """What an endpoint as pasted means: the base URL to use, the deployment and api-version found in it, and
    what was changed, in words (empty when the text was used as given)."""

    endpoint: str
    deployment: str | None = None
    api_version: str | None = None
    changes: tuple[str, ...] = ()


def read_endpoint(raw: str, api_style: str = "auto") -> EndpointReading:
    """Read an endpoint the way the Azure portal, Foundry or a server's docs show it.

    Accepted: the resource URL (``https://R.openai.azure.com/``, ``https://R.cognitiveservices.azure.com/``,
    ``https://R.services.ai.azure.com/``), the same with a trailing ``/openai``, the full chat-completions target
    URI (``…/openai/deployments/NAME/chat/completions?api-version=V``: deployment and api-version are taken from
    it), Azure's v1 base (``…/openai/v1/``, also with ``/chat/completions``), Foundry's ``/models`` and project
    paths on an Azure host (the resource root is used), an OpenAI-compatible base URL (``…/v1``, also with
    ``/chat/completions``); around any of them stray spaces and quotes, and no scheme (``https://`` is added,
    ``http://`` for this machine). Anything else is used as given (:meth:`Settings.require` checks it)."""
    changes: list[str] = []
    text = raw.strip().strip(_QUOTES).strip()
    if text != raw:
        changes.append("removed spaces/quotes")
    if text and "://" not in text:
        hostname = urlsplit("//" + text).hostname
        scheme = "http" if is_loopback_host(hostname) else "https"
        text = f"{scheme}://{text}"
        changes.append(f"added {scheme}://")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return EndpointReading(text, changes=tuple(changes))
    path, deployment = parts.path, None
    query = parse_qsl(parts.query, keep_blank_values=True)
    api_version = next((v for k, v in query if k == "api-version" and v), None)
    azure_host = (parts.hostname or "").lower().endswith(AZURE_HOST_SUFFIXES)
    azure_style = api_style in ("auto", "azure")
    if azure_style and (m := _DEPLOYMENT_PATH.match(path)):
        deployment = unquote(m["name"])
        path = m["base"] + "/"
        changes.append(f"took deployment {deployment!r} from the URL")
    elif api_style in ("auto", "azure-v1") and (m := _V1_PATH.match(path)) and path.rstrip("/") != m["base"]:
        path = m["base"] + "/"
        changes.append(f"dropped {parts.path[len(m['base']):]}")
    elif azure_style and path.rstrip("/").endswith("/openai"):
        path = path.rstrip("/")[: -len("/openai")] + "/"
        changes.append("dropped /openai (it is added to every request)")
    elif azure_host and azure_style and _FOUNDRY_PATH.match(path):
        changes.append(f"dropped {path} (Azure OpenAI deployments are served at the resource root)")
        path = "/"
    elif path.rstrip("/").endswith("/chat/completions"):
        path = path.rstrip("/")[: -len("/chat/completions")]
        changes.append("dropped /chat/completions")
    if query:
        if api_version:
            changes.append(f"took api-version {api_version!r} from the URL")
        others = sorted({k for k, _ in query if k != "api-version"})
        if others:
            changes.append(f"dropped the query parameter(s) {', '.join(others)}")
    if not changes:
        return EndpointReading(raw)
    endpoint = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return EndpointReading(endpoint, deployment, api_version, tuple(changes))


def safe_url(raw: str) -> str:
    """``raw`` without query values other than ``api-version`` and without a password (for messages)."""
    parts = urlsplit(raw.strip())
    if not parts.query and not parts.password:
        return raw.strip()
    query = "&".join(f"{k}={v if k == 'api-version' else '…'}" for k, v in parse_qsl(parts.query, keep_blank_values=True))
    netloc = parts.netloc.rsplit("@", 1)[-1] if parts.password else parts.netloc
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


#: Hosts an environment key is sent to without being told: Azure OpenAI / AI Services / AI Foundry / Azure ML /
#: API Management hosts for the Azure key, OpenAI's API host for the OpenAI key (loopback always).
AZURE_KEY_HOST_SUFFIXES = (
    *AZURE_HOST_SUFFIXES, ".models.ai.azure.com", ".inference.ml.azure.com", ".azure-api.net",
    ".cognitive.microsoft.com",
)
KEY_HOSTS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "AZURE_OPENAI_API_KEY": ("Azure", AZURE_KEY_HOST_SUFFIXES),
    "OPENAI_API_KEY": ("OpenAI", ("api.openai.com",)),
}


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


__all__ = ["AZURE_HOST_SUFFIXES", "AZURE_KEY_HOST_SUFFIXES", "FROM_URL", "KEY_HOSTS", "EndpointReading", "is_loopback_host",
           "read_endpoint", "safe_url"]
