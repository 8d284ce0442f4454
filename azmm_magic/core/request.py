"""`VisionRequest`: one request, built once, holding the exact body that will be sent.

Every path (the magic, the panel, the Python API, batches, the Batch API, chat, compare and ``--dry-run``) builds
its request with :func:`build_request` and sends or shows :meth:`VisionRequest.body`, so what is previewed is what
goes out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from azmm_magic.core.errors import ConfigError
from azmm_magic.core.images import PreparedImage, prepare_images
from azmm_magic.core.result import VisionResult
from azmm_magic.core.settings import Detail, Settings

TokenParam = Literal["max_completion_tokens", "max_tokens"]
STREAM_OPTIONS = {"include_usage": True}


class ResponseParser(Protocol):
    """How a structured answer is asked for and read (see :mod:`azmm_magic.core.structured`)."""

    def response_format(self) -> dict[str, Any]: ...

    def apply(self, result: VisionResult) -> VisionResult: ...


def user_parts(prompt: str, images: Sequence[PreparedImage], detail: Detail,
               image_note: Callable[[PreparedImage], str] | None = None) -> list[dict[str, Any]]:
    """A user message's content parts: ``prompt``, then each image's text (a video frame's timestamp) and its
    image part, or with ``image_note`` a text part ``image_note(image)`` in its place (an image not sent again)."""
    parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    for image in images:
        if image.text:
            parts.append({"type": "text", "text": image.text})
        parts.append(image.content_part(detail) if image_note is None else {"type": "text", "text": image_note(image)})
    return parts


@dataclass(frozen=True)
class VisionRequest:
    """Everything that decides an answer, and how it is sent. ``images`` are prepared already (hashes known).

    ``token_param`` is the name the output-token limit is sent under; ``stream`` whether the answer is streamed.
    Neither changes the answer, so neither is part of the cache key.
    """

    prompt: str
    images: tuple[PreparedImage, ...] = ()
    deployment: str = ""
    detail: Detail = "auto"
    max_tokens: int = 2048
    temperature: float | None = None
    system: str | None = None
    history: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    response: ResponseParser | None = field(default=None, compare=False)
    token_param: TokenParam = "max_completion_tokens"
    stream: bool = False

    def with_(self, **changes: Any) -> VisionRequest:
        """A copy with some fields changed (e.g. ``deployment=``, ``token_param=``, ``stream=``)."""
        return replace(self, **changes)

    def user_content(self) -> list[dict[str, Any]]:
        """The user message's content parts: the prompt, then each image (data URL or URL), a video frame preceded by
        its timestamp as a text part (``[clip.mp4 @ 01:02.5]``) so the model can reason about time."""
        return user_parts(self.prompt, self.images, self.detail)

    def wire_content(self) -> str | list[dict[str, Any]]:
        """The user message's ``content`` as sent: the prompt as a plain string when there is no image (some
        servers that speak the chat API take only a string there), else :meth:`user_content`'s parts."""
        return self.user_content() if self.images else self.prompt

    def messages(self) -> list[dict[str, Any]]:
        """The ``messages`` list as sent on the wire (text-only user messages, earlier turns too, as strings)."""
        out: list[dict[str, Any]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        out.extend(_plain_text(m) for m in self.history)
        out.append({"role": "user", "content": self.wire_content()})
        return out

    def body(self) -> dict[str, Any]:
        """The exact JSON body of the chat-completions call (the SDK adds nothing to it)."""
        body: dict[str, Any] = {"model": self.deployment, "messages": self.messages(), self.token_param: self.max_tokens}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        body.update(self.extra)
        if self.stream:
            body["stream"] = True
            body["stream_options"] = dict(STREAM_OPTIONS)
        return body

    def preview(self) -> dict[str, Any]:
        """:meth:`body` with each data URL shortened to its media type and length: what ``--dry-run`` shows."""
        body = self.body()
        for message in body["messages"]:
            content = message.get("content")
            if isinstance(content, list):
                message["content"] = [_shorten(part) for part in content]
        return body

    def cache_payload(self, endpoint_host: str, api_style: str) -> dict[str, Any]:
        """What the cache key is computed from: images by content hash, never by bytes; no secret."""
        user = [{"type": "text", "text": self.prompt}] + [
            {"type": "image", "sha256": i.sha256, "detail": self.detail, **({"text": i.text} if i.text else {})}
            for i in self.images
        ]
        return {
            "v": 1,
            "endpoint": endpoint_host,
            "style": api_style,
            "deployment": self.deployment,
            "system": self.system,
            "history": [dict(m) for m in self.history],
            "user": user,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "extra": dict(self.extra),
        }

    def estimate_prompt_tokens(self, rule: str = "gpt-4o") -> int:
        """Rough input-token estimate: text at ~4 characters per token plus each image's billed tokens."""
        chars = len(self.prompt) + len(self.system or "") + sum(len(i.text or "") for i in self.images)
        chars += sum(len(str(m.get("content", ""))) for m in self.history)
        text_tokens = (chars + 3) // 4 + 4 * (len(self.history) + 1 + bool(self.system))
        return text_tokens + sum(i.estimate_tokens(self.detail, rule) for i in self.images)


def _plain_text(message: Mapping[str, Any]) -> dict[str, Any]:
    """``message`` with a content made only of one text part sent as that text (the same meaning to every
    server, and the only form some accept)."""
    out = dict(message)
    content = out.get("content")
    if isinstance(content, list) and len(content) == 1 and isinstance(content[0], Mapping):
        part = content[0]
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            out["content"] = part["text"]
    return out


def _shorten(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") != "image_url":
        return part
    url = part["image_url"]["url"]
    if url.startswith("data:"):
        head = url.split(",", 1)[0]
        url = f"{head},<{(len(url) - len(head) - 1):,} base64 chars>"
    return {"type": "image_url", "image_url": {**part["image_url"], "url": url}}


def build_request(
    settings: Settings,
    prompt: str,
    images: Iterable[object] | object = (),
    *,
    system: str | None = None,
    history: Sequence[Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
    response: ResponseParser | None = None,
    token_param: TokenParam = "max_completion_tokens",
    stream: bool = False,
) -> VisionRequest:
    """Check the prompt, prepare the images (decode, orient, downscale, hash) and build the request. Sends nothing.

    ``settings`` give the deployment, detail, token limit, temperature, system prompt and image limits.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError("The prompt is empty: write the question (prompt='...').")
    if system is not None and not isinstance(system, str):
        raise ConfigError(f"system must be text (system='You are ...'); got {type(system).__name__}.")
    s = settings
    prepared = prepare_images(
        images,
        detail=s.detail,
        rule=s.token_rule,
        inline_urls=s.inline_urls,
        max_bytes=s.max_image_bytes,
        max_images=s.max_images,
    )
    if response is not None:
        extra = {**(extra or {}), "response_format": response.response_format()}
    return VisionRequest(
        prompt=prompt,
        images=tuple(prepared),
        deployment=s.deployment or "",
        detail=s.detail,
        max_tokens=s.max_tokens,
        temperature=s.temperature,
        system=system if system is not None else s.system_prompt,
        history=tuple(history),
        extra=dict(extra or {}),
        response=response,
        token_param=token_param,
        stream=stream,
    )


__all__ = ["ResponseParser", "TokenParam", "VisionRequest", "build_request", "user_parts"]
