"""URLs as labels: a signed URL's query string (an Azure Blob SAS ``sig=…`` is a credential) and any
``user:password@`` are never shown, saved or copied; only the address the user can recognise is kept.

The real URL is still what is fetched (``PreparedImage.url``); only what is shown or written down is redacted.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "…"
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s<>\"'`]+")


def has_secret_parts(url: str) -> bool:
    """Whether ``url`` carries a query string or userinfo (either may be a credential)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return True
    return bool(parts.query or "@" in parts.netloc)


def redact_url(url: str) -> str:
    """``url`` with its query string replaced by ``?…`` and any ``user:password@`` removed (fragment kept:
    ``#page=2`` names a page, not a secret). Text that is not a URL is returned as it is."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0] + REDACTED
    if not parts.query and "@" not in parts.netloc:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, REDACTED if parts.query else "", parts.fragment))


def redact_urls(text: str) -> str:
    """Every URL inside free text (an error message, a label) redacted like :func:`redact_url`."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


__all__ = ["REDACTED", "has_secret_parts", "redact_url", "redact_urls"]
