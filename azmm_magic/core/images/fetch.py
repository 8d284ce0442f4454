"""Images given by ``http(s)`` URL: sent as the URL (the service fetches it), or, with ``inline_urls=True``,
fetched here with a timeout and a size cap and sent inline.

A URL may carry a credential (a SAS query string): labels and messages show it redacted
(:func:`~azmm_magic.core.urls.redact_url`); only the request itself uses the full URL.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from azmm_magic.core.errors import ImageInputError, library_text
from azmm_magic.core.images.types import PreparedImage, shorten
from azmm_magic.core.urls import redact_url, redact_urls

#: Timeout (seconds) and size cap (bytes) for fetching an ``http(s)`` image with ``inline_urls=True``.
FETCH_TIMEOUT = 20.0
FETCH_MAX_BYTES = 50 * 1024 * 1024

_URL_MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


def url_image(url: str) -> PreparedImage:
    """An image the service fetches itself: no data, size unknown, media type guessed from the path."""
    import urllib.parse

    parsed = urllib.parse.urlsplit(url)
    if not parsed.netloc:
        raise ImageInputError(f"malformed image URL {shorten(url)!r} (no host)")
    suffix = os.path.splitext(parsed.path)[1].lower()
    return PreparedImage(
        data=None,
        media_type=_URL_MEDIA_TYPES.get(suffix, "image/*"),
        width=0,
        height=0,
        sha256=hashlib.sha256(url.encode("utf-8")).hexdigest(),
        source=redact_url(url),  # the label; the real URL (sent to the service) is ``url``
        url=url,
    )


def fetch_url(url: str, *, timeout: float = FETCH_TIMEOUT, max_size: int = FETCH_MAX_BYTES) -> bytes:
    """GET an http(s) image with a timeout and a size cap; redirects only to http(s)."""
    import urllib.error
    import urllib.request

    class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
            if not newurl.lower().startswith(("http://", "https://")):
                raise urllib.error.URLError(f"redirect to a non-http(s) URL {shorten(newurl)!r} refused")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    opener = urllib.request.build_opener(_HttpOnlyRedirects())
    request = urllib.request.Request(url, headers={"User-Agent": "azmm_magic", "Accept": "image/*"})
    try:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_size:
                raise ImageInputError(f"{url} is {int(length)} bytes, over the {max_size}-byte download cap")
            data = response.read(max_size + 1)
    except urllib.error.HTTPError as e:
        raise ImageInputError(f"could not fetch {url}: HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise ImageInputError(f"could not fetch {url}: {e.reason}") from e
    except (OSError, ValueError) as e:  # timeouts, resets, malformed URLs
        raise ImageInputError(f"could not fetch {url}: {library_text(e)}") from e
    if len(data) > max_size:
        raise ImageInputError(f"{url} is over the {max_size}-byte download cap")
    return data



def fetch_image(url: str) -> bytes:
    """:func:`fetch_url` with every URL in its error message redacted (a signature is never shown)."""
    try:
        return fetch_url(url)
    except ImageInputError as e:
        raise ImageInputError(redact_urls(str(e))) from None


__all__ = ["FETCH_MAX_BYTES", "FETCH_TIMEOUT", "fetch_image", "fetch_url", "url_image"]
