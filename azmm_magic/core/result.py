"""`VisionResult`: one answer, with everything a user wants to keep about it.

It renders itself in notebooks (``text/markdown``, ``text/html``) and terminals (``text/plain``) through
:mod:`azmm_magic.core.views` (the display layer draws it); ``str(result)`` is the answer text, so ``answer.text``
and f-strings just work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from azmm_magic.core import views

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.images import PreparedImage


@dataclass(frozen=True)
class Usage:
    """Token usage as the service reported it; ``reported`` is False (and the counts 0) when the answer carried
    no usage (a stream from a server that sends none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    reported: bool = True

    @classmethod
    def from_sdk(cls, usage: Any) -> Usage:
        if usage is None:
            return cls(reported=False)
        details = getattr(usage, "completion_tokens_details", None)
        reasoning = getattr(details, "reasoning_tokens", None) or 0
        prompt = getattr(usage, "prompt_tokens", 0) or 0
        completion = getattr(usage, "completion_tokens", 0) or 0
        total = getattr(usage, "total_tokens", 0) or prompt + completion
        return cls(int(prompt), int(completion), int(total), int(reasoning))


@dataclass(frozen=True)
class VisionResult:
    """The answer to one vision request.

    Attributes: ``text`` (the answer), ``images`` (the ``PreparedImage`` objects that were sent), ``usage``
    (:class:`Usage`), ``deployment``, ``model`` (as the service named it), ``finish_reason`` (``stop``,
    ``length``, ``content_filter``...), ``elapsed`` (seconds, wall time of this call), ``cached`` (True when
    it came from the cache and no request was made), ``request_id`` (``x-request-id``), ``prompt``,
    ``endpoint_host``, ``content_filter`` (Azure's per-category results when present), ``notices`` (things
    worth knowing, e.g. "switched to max_completion_tokens"), ``incomplete`` (a stream that was cut or
    interrupted: ``text`` is what arrived), ``parsed`` (with ``--json`` / ``--schema`` / ``response_format=``: the
    answer parsed into a dict or a pydantic model instance; never cached as an object, re-parsed from ``text``).
    """

    text: str
    images: tuple[PreparedImage, ...] = ()
    usage: Usage = field(default_factory=Usage)
    deployment: str = ""
    model: str = ""
    finish_reason: str | None = None
    elapsed: float = 0.0
    cached: bool = False
    request_id: str | None = None
    prompt: str = ""
    endpoint_host: str = ""
    content_filter: Mapping[str, Any] = field(default_factory=dict)
    notices: tuple[str, ...] = ()
    incomplete: bool = False
    parsed: Any = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.text

    @property
    def truncated(self) -> bool:
        """True when the answer stopped at the output-token limit (``finish_reason == "length"``)."""
        return self.finish_reason == "length"

    # ----- cache round trip (no images: they belong to the request) ---------------------------------------
    def to_cache(self) -> dict[str, Any]:
        """The JSON-able part stored in a cache entry."""
        return {
            "text": self.text,
            "usage": asdict(self.usage),
            "deployment": self.deployment,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "elapsed": self.elapsed,
            "request_id": self.request_id,
            "content_filter": dict(self.content_filter),
            "notices": list(self.notices),
            "prompt": self.prompt[:200],  # a preview, shown by `cache list`
            "endpoint_host": self.endpoint_host,
        }

    @classmethod
    def from_cache(
        cls, entry: Mapping[str, Any], *, images: tuple[PreparedImage, ...], prompt: str, endpoint_host: str, elapsed: float
    ) -> VisionResult:
        """Rebuild a result from a cache entry; ``cached`` is True and ``elapsed`` is the lookup time."""
        return cls(
            text=entry["text"],
            images=images,
            usage=Usage(**entry.get("usage", {})),
            deployment=entry.get("deployment", ""),
            model=entry.get("model", ""),
            finish_reason=entry.get("finish_reason"),
            elapsed=elapsed,
            cached=True,
            request_id=entry.get("request_id"),
            prompt=prompt,
            endpoint_host=endpoint_host,
            content_filter=entry.get("content_filter", {}),
            notices=tuple(entry.get("notices", ())),
        )

    def with_(self, **changes: Any) -> VisionResult:
        """A copy with some fields changed."""
        return replace(self, **changes)

    # ----- display (rendered by the display layer, found through core.views) -----------------------------
    def footer(self) -> str:
        """One line: deployment · tokens · seconds · cached/truncated/incomplete."""
        return views.text(self, "footer")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return views.mimebundle(self, include, exclude)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(views.plain(self))

    def __repr__(self) -> str:
        preview = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return (
            f"VisionResult(text={preview!r}, deployment={self.deployment!r}, images={len(self.images)}, "
            f"usage={self.usage.prompt_tokens}+{self.usage.completion_tokens}, cached={self.cached})"
        )
