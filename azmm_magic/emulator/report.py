"""The emulator's answer: validate a chat request, decode its images, and write a factual Markdown report.

Everything here is a pure function of the request body (and the deployment name), so the same request always
gives the same bytes. The HTTP layer (:mod:`azmm_magic.emulator.app`) turns :class:`RequestError` into an
Azure-shaped HTTP 400 and the report into a ``chat.completion``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from azmm_magic.core.urls import redact_url

from .pixels import dominant

__all__ = [
    "ChatFacts",
    "ImageFacts",
    "RequestError",
    "check_messages",
    "apply_token_cap",
    "brightness_label",
    "describe_image",
    "read_chat",
    "render_report",
    "summary_line",
    "split_for_stream",
    "usage_for",
]

#: The label every answer carries once, on its second line (the first says what differs between images).
HEADER = "**Azure OpenAI emulator** — a local test server, not a model. What it received:"

SUPPORTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WEBP", "GIF": "GIF"}
DETAILS = ("low", "high", "auto")
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MAX_QUOTE_CHARS = 2000
REMOTE_IMAGE_TOKENS = 85  # a URL is never downloaded; usage counts it as one low-detail image

_DATA_URL = re.compile(r"^data:(?P<mime>[^;,]*)(?P<params>(?:;[^;,]*)*?);base64,(?P<data>.*)$", re.DOTALL | re.I)


class RequestError(ValueError):
    """A request the real service would reject with HTTP 400; carries the Azure-shaped ``error`` object."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = "messages",
        code: str | None = "invalid_value",
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.type = type_

    def to_body(self) -> dict[str, Any]:
        """The JSON body Azure sends for this error: ``{"error": {message, type, param, code}}``."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ImageFacts:
    """What the emulator learned about one ``image_url`` part (``url`` set and no pixels for http(s) URLs)."""

    index: int
    message_index: int
    detail: str
    width: int | None = None
    height: int | None = None
    format: str | None = None
    mode: str | None = None
    frames: int = 1
    has_alpha: bool = False
    declared_type: str | None = None
    colours: tuple[tuple[str, int], ...] = ()
    brightness: int | None = None
    tokens: int = REMOTE_IMAGE_TOKENS
    url: str | None = None
    #: the decoded image, at most 128 px a side (RGB array): what :mod:`.pixels` reads fields from
    pixels: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ChatFacts:
    """A validated chat request reduced to what the report and the usage need."""

    message_count: int
    last_user_text: str
    system_text: str
    earlier_turns: int
    text_chars: int
    images: tuple[ImageFacts, ...] = ()
    parameters: tuple[tuple[str, str], ...] = field(default=())

    @property
    def image_tokens(self) -> int:
        """Sum of the per-image token estimates."""
        return sum(image.tokens for image in self.images)


# --------------------------------------------------------------------------------------------- tokens


def _tile_tokens(width: int, height: int, detail: str) -> int:
    """Billed tokens of one image: the same gpt-4o tile rule the client uses for its estimates."""
    from azmm_magic.core.tokens import estimate_image_tokens

    return estimate_image_tokens(width, height, detail if detail in ("low", "high", "auto") else "auto")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- images


def brightness_label(mean: float) -> str:
    """``dark`` below 85, ``medium`` below 170, else ``bright`` (on a 0–255 scale)."""
    if mean < 85:
        return "dark"
    if mean < 170:
        return "medium"
    return "bright"


def describe_image(
    data: bytes, *, detail: str = "auto", index: int = 1, message_index: int = 0, decode: bool = True
) -> ImageFacts:
    """Decode image bytes with Pillow and measure them; :class:`RequestError` if Azure would refuse them.

    ``decode=False`` reads only the image's header (format, size, mode: what the usage needs) and leaves out
    the colours and brightness, so answering costs next to no CPU (for benchmarks of the client side)."""
    import numpy as np
    from PIL import Image, ImageStat

    try:
        with Image.open(io.BytesIO(data)) as img:
            if not decode:
                fmt, mode, (width, height) = img.format or "", img.mode, img.size
                if fmt in SUPPORTED_FORMATS:
                    return ImageFacts(index=index, message_index=message_index, detail=detail, width=width,
                                      height=height, format=SUPPORTED_FORMATS[fmt], mode=mode,
                                      has_alpha="A" in mode or "transparency" in img.info,
                                      tokens=_tile_tokens(width, height, detail))
            img.load()
            fmt = img.format or ""
            frames = int(getattr(img, "n_frames", 1))
            mode = img.mode
            width, height = img.size
            has_alpha = "A" in mode or "transparency" in img.info
            rgba = img.convert("RGBA")
    except Exception as e:  # Pillow raises many types (UnidentifiedImageError, OSError, DecompressionBomb...)
        raise RequestError("Invalid image data.", param=None, code="invalid_image") from e
    if fmt not in SUPPORTED_FORMATS:
        raise RequestError(
            f"You uploaded an unsupported image ({fmt or 'unknown'}). Please make sure your image is of one of "
            "the following formats: ['png', 'jpeg', 'gif', 'webp'].",
            param=None,
            code="invalid_image_format",
        )
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    rgb.thumbnail((128, 128), Image.Resampling.BOX)
    brightness = round(ImageStat.Stat(rgb.convert("L")).mean[0])
    return ImageFacts(
        index=index,
        message_index=message_index,
        detail=detail,
        width=width,
        height=height,
        format=SUPPORTED_FORMATS[fmt],
        mode=mode,
        frames=frames,
        has_alpha=has_alpha,
        colours=dominant(rgb),
        brightness=brightness,
        tokens=_tile_tokens(width, height, detail),
        pixels=np.asarray(rgb),
    )


def _decode_data_url(url: str, where: str) -> tuple[bytes, str]:
    """Split ``data:<type>;base64,<data>`` into bytes and the declared media type."""
    match = _DATA_URL.match(url)
    if match is None:
        raise RequestError(f"{where}: the image data URL must look like 'data:image/png;base64,<data>'.")
    try:
        raw = base64.b64decode("".join(match["data"].split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise RequestError(f"{where}: the image data URL does not contain valid base64 data.") from e
    if not raw:
        raise RequestError(f"{where}: the image data URL is empty.")
    return raw, match["mime"].lower()


# --------------------------------------------------------------------------------------------- request


def _text_of(content: Any) -> str:
    """The text of a message's content (a string, or the ``text`` parts of a list joined by newlines)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text") or part.get("refusal") or ""
            for part in content
            if isinstance(part, Mapping) and part.get("type") in ("text", "refusal")
        )
    return ""


def _image_part_url(part: Mapping[str, Any], where: str) -> tuple[str, str]:
    """The ``(url, detail)`` of an ``image_url`` part, checked without decoding anything."""
    image_url = part.get("image_url")
    if not isinstance(image_url, Mapping):
        raise RequestError(f"{where}.image_url: expected an object with a 'url' string.")
    url = image_url.get("url")
    if not isinstance(url, str) or not url:
        raise RequestError(f"{where}.image_url.url: expected a non-empty string.")
    detail = image_url.get("detail", "auto")
    if detail is None:
        detail = "auto"
    if detail not in DETAILS:
        raise RequestError(f"{where}.image_url.detail: expected 'low', 'high' or 'auto', got {detail!r}.")
    if url[:5].lower() != "data:" and not url.lower().startswith(("http://", "https://")):
        raise RequestError(f"{where}.image_url.url: expected an http(s) URL or a base64 'data:' URL.")
    return url, detail


def _read_image_part(
    part: Mapping[str, Any], where: str, index: int, message_index: int, decode: bool = True
) -> ImageFacts:
    """Validate one ``image_url`` part and describe it (decoding data URLs, never fetching http(s) URLs)."""
    url, detail = _image_part_url(part, where)
    if url[:5].lower() == "data:":
        raw, declared = _decode_data_url(url, f"{where}.image_url.url")
        facts = describe_image(raw, detail=detail, index=index, message_index=message_index, decode=decode)
        return replace(facts, declared_type=declared or None)
    if url.lower().startswith(("http://", "https://")):
        return ImageFacts(index=index, message_index=message_index, detail=detail, url=url)
    raise RequestError(f"{where}.image_url.url: expected an http(s) URL or a base64 'data:' URL.")


def _check_content(content: Any, role: str, where: str) -> None:
    """Validate a message's ``content`` shape (images are read separately)."""
    if content is None:
        if role in ("user", "system", "developer"):
            raise RequestError(f"{where}.content: a '{role}' message needs content (a string or a list of parts).")
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise RequestError(f"{where}.content: expected a string or a list of content parts.")
    for j, part in enumerate(content):
        pwhere = f"{where}.content[{j}]"
        if not isinstance(part, Mapping):
            raise RequestError(f"{pwhere}: expected an object with a 'type'.")
        kind = part.get("type")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise RequestError(f"{pwhere}.text: expected a string.")
        elif kind == "image_url":
            _image_part_url(part, pwhere)
            if role != "user":
                raise RequestError(
                    f"{pwhere}: image URLs are only allowed for messages with role 'user', "
                    f"but this message has role '{role}'."
                )
        elif kind == "refusal" and role == "assistant":
            continue
        else:
            raise RequestError(f"{pwhere}.type: unsupported content part type {kind!r} (use 'text' or 'image_url').")


def _parameters(body: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Scalar request parameters worth echoing (sorted), e.g. ``max_completion_tokens``, ``temperature``."""
    skip = {"model", "messages", "stream", "stream_options"}
    found = []
    for key in sorted(body):
        value = body[key]
        if key in skip or value is None or not isinstance(value, str | int | float | bool):
            continue
        text = json.dumps(value, ensure_ascii=False)
        found.append((str(key), text if len(text) <= 40 else text[:39] + "…"))
    return tuple(found)


def check_messages(body: Mapping[str, Any]) -> None:
    """The shape of ``messages`` (roles, content parts), without decoding any image; raises :class:`RequestError`."""
    if "messages" not in body or body.get("messages") is None:
        raise RequestError("Missing required parameter: 'messages'.")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise RequestError(f"'messages' must be an array of message objects, got {type(messages).__name__}.")
    if not messages:
        raise RequestError("'messages' must contain at least one message.")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise RequestError(f"{where}: expected an object with 'role' and 'content'.")
        role = message.get("role")
        if role not in ROLES:
            raise RequestError(f"{where}.role: expected one of {', '.join(ROLES)}; got {role!r}.")
        _check_content(message.get("content"), role, where)


def read_chat(body: Mapping[str, Any], *, decode_images: bool = True) -> ChatFacts:
    """Validate ``messages`` like Azure does (:func:`check_messages`), decode the images and collect the facts;
    raises :class:`RequestError`. ``decode_images=False``: read only each image's header (see
    :func:`describe_image`)."""
    check_messages(body)
    messages = body["messages"]

    images: list[ImageFacts] = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if part.get("type") == "image_url":
                    images.append(
                        _read_image_part(part, f"messages[{i}].content[{j}]", len(images) + 1, i, decode_images)
                    )

    user_indexes = [i for i, m in enumerate(messages) if m["role"] == "user"]
    last_user = user_indexes[-1] if user_indexes else None
    system = [_text_of(m.get("content")) for m in messages if m["role"] in ("system", "developer")]
    earlier = 0
    if last_user is not None:
        earlier = sum(1 for m in messages[:last_user] if m["role"] not in ("system", "developer"))
    return ChatFacts(
        message_count=len(messages),
        last_user_text=_text_of(messages[last_user].get("content")) if last_user is not None else "",
        system_text="\n\n".join(text for text in system if text),
        earlier_turns=earlier,
        text_chars=sum(len(_text_of(m.get("content"))) for m in messages),
        images=tuple(images),
        parameters=_parameters(body),
    )


# --------------------------------------------------------------------------------------------- report


def _quote(text: str) -> str:
    """A Markdown block quote of ``text`` (shortened beyond :data:`MAX_QUOTE_CHARS`)."""
    if not text.strip():
        return "> (no text)"
    if len(text) > MAX_QUOTE_CHARS:
        text = f"{text[:MAX_QUOTE_CHARS]}… ({len(text) - MAX_QUOTE_CHARS} more characters)"
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _image_lines(image: ImageFacts, message_count: int) -> list[str]:
    """The report lines for one image."""
    where = f" (message {image.message_index + 1})" if message_count > 1 else ""
    if image.url is not None:
        return [
            f"**Image {image.index}**{where} — a URL, received as given (the emulator does not download it): "
            f"`{redact_url(image.url)}`, detail `{image.detail}` requested"
            + (" (its query string is not repeated: it may be a signature)" if redact_url(image.url) != image.url else ""),
            f"- Estimated image tokens: {image.tokens} (size unknown; counted as one low-detail image)",
        ]
    head = f"**Image {image.index}**{where} — {image.width}×{image.height} px, {image.format}, mode {image.mode}"
    if image.frames > 1:
        head += f", {image.frames} frames (the first is used)"
    head += f", detail `{image.detail}` requested"
    lines = [head]
    if image.declared_type and image.declared_type != f"image/{(image.format or '').lower()}":
        lines.append(f"- Declared media type: `{image.declared_type}` (the bytes are {image.format})")
    colours = ", ".join(f"{name} {pct}%" for name, pct in image.colours)
    alpha = " (transparent areas counted as white)" if image.has_alpha else ""
    lines.append(f"- Dominant colours: {colours}{alpha}")
    lines.append(f"- Mean brightness: {image.brightness}/255 ({brightness_label(image.brightness or 0)})")
    lines.append(f"- Estimated image tokens: {image.tokens} (gpt-4o tile rule)")
    return lines


def _image_summary(image: ImageFacts) -> str:
    """``64×48 PNG, red, dark``: what tells one image from another (size, format, main colours, brightness)."""
    if image.url is not None:
        return "an image by URL (not downloaded)"
    colours = [name for name, pct in image.colours if pct >= 10][:2]
    parts = [f"{image.width}×{image.height} {image.format}"]
    if colours:
        parts.append(" and ".join(colours))
    parts.append(f"{brightness_label(image.brightness or 0)} ({image.brightness}/255)")
    return ", ".join(parts)


def summary_line(facts: ChatFacts) -> str:
    """The answer's first line: the images in a few words each, so that answers about different images differ
    from their first words (a gallery tile shows little more)."""
    if not facts.images:
        return "No image received."
    if len(facts.images) == 1:
        return _image_summary(facts.images[0]) + "."
    return f"{len(facts.images)} images: " + "; ".join(_image_summary(i) for i in facts.images) + "."


def render_report(facts: ChatFacts, *, deployment: str) -> str:
    """The deterministic Markdown answer for a validated request: a one-line summary of the images, the
    emulator's label, then the facts as lists."""
    lines = [f"**{summary_line(facts)}**", "", HEADER, "", f"- Deployment: `{deployment}`",
             f"- Messages: {facts.message_count}"]
    if facts.parameters:
        lines.append("- Parameters: " + ", ".join(f"`{key}={value}`" for key, value in facts.parameters))
    lines.append(f"- Images: {len(facts.images)}")
    for image in facts.images:
        lines += ["", *_image_lines(image, facts.message_count)]
    lines += ["", "Prompt received:", "", _quote(facts.last_user_text)]
    if facts.system_text:
        lines += ["", "System prompt:", "", _quote(facts.system_text)]
    if facts.earlier_turns:
        turns = "message" if facts.earlier_turns == 1 else "messages"
        lines += ["", f"Earlier turns: {facts.earlier_turns} {turns} before the last user message."]
    return "\n".join(lines) + "\n"


def apply_token_cap(answer: str, cap: int | None) -> tuple[str, str]:
    """Cut ``answer`` to ``cap`` completion tokens (4 characters each); returns (text, finish_reason)."""
    if cap is not None and math.ceil(len(answer) / 4) > cap:
        return answer[: cap * 4], "length"
    return answer, "stop"


def usage_for(facts: ChatFacts, answer: str) -> dict[str, Any]:
    """Azure-shaped ``usage``: text at 4 characters a token plus the per-image estimates."""
    prompt = math.ceil(facts.text_chars / 4) + facts.image_tokens
    completion = math.ceil(len(answer) / 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def split_for_stream(text: str) -> list[str]:
    """Word-ish pieces of at most 8 visible characters (plus trailing spaces) that join back to ``text``."""
    return re.findall(r"\S{1,8}\s*|\s+", text)
