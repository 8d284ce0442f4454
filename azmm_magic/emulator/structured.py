"""Structured answers in the emulator: ``response_format`` ``json_object`` and ``json_schema``.

- ``json_object``: the messages must mention JSON (like the real service); the answer is a JSON object with the
  same facts the Markdown report gives.
- ``json_schema``: the answer is an instance of the schema built deterministically from it (types, enums,
  ``const``, arrays, nested objects, ``$ref``/``$defs``, ``anyOf``; every property filled), with strings and
  numbers taken from the request's facts where the property name suggests one (``width``, ``format``...).
  Fields that can be known from pixels are read from the first image (:mod:`.pixels`): a colour (among an enum's
  colour names, the one people would say), light/dark, portrait/landscape, the count of distinct solid blobs;
  the answer then says so in its ``x-emulator-note`` header and the request log. Everything else is a
  placeholder of the right type.
- The ``malformed_json`` fault (:mod:`azmm_magic.emulator.faults`: header ``x-emulator-fault: malformed-json``,
  the control endpoint or ``--fault``) makes the answer invalid JSON, so the client's error path is tested.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import pixels
from .report import HEADER, ChatFacts, RequestError, brightness_label

MALFORMED = '{"answer": "this JSON object is cut off on purpose by the emulator\'s malformed-json fault", "items": [1, 2'
_MAX_DEPTH = 12


def check_response_format(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The validated ``response_format`` (None or type ``text``: a normal answer); 400 like Azure otherwise."""
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, Mapping) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise RequestError(
            "Invalid value for 'response_format.type': expected one of 'text', 'json_object', 'json_schema'.",
            param="response_format.type",
        )
    if fmt["type"] == "json_schema":
        inner = fmt.get("json_schema")
        if not isinstance(inner, Mapping) or not isinstance(inner.get("name"), str) or not inner.get("name"):
            raise RequestError("Missing required parameter: 'response_format.json_schema.name'.",
                               param="response_format.json_schema.name", code="missing_required_parameter")
        if not isinstance(inner.get("schema"), Mapping):
            raise RequestError("Invalid 'response_format.json_schema.schema': expected an object.",
                               param="response_format.json_schema.schema")
    if fmt["type"] == "json_object":
        text = json.dumps(body.get("messages"), ensure_ascii=False).lower()
        if "json" not in text:
            raise RequestError(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                param="messages",
            )
    return fmt


def _facts_object(facts: ChatFacts, deployment: str) -> dict[str, Any]:
    return {
        "emulator": HEADER.replace("**", "").split(" —")[0] + " (a local test server, not a model)",
        "deployment": deployment,
        "messages": facts.message_count,
        "earlier_turns": facts.earlier_turns,
        "prompt": facts.last_user_text,
        "images": [
            {
                "index": i.index,
                "width": i.width,
                "height": i.height,
                "format": i.format,
                "dominant_colours": [name for name, _ in i.colours],
                "brightness": i.brightness,
                "tokens": i.tokens,
                **({"url": i.url} if i.url else {}),
            }
            for i in facts.images
        ],
    }


_COLOUR_WORDS = ("colour", "color")
_TONE_WORDS = ("light", "dark", "tone", "bright", "shade")
_ORIENTATION_WORDS = ("orientation", "portrait", "landscape", "aspect", "layout")
_BLOB_WORDS = ("count", "number", "blobs", "shapes", "objects", "regions", "spots", "items")


def _pixel_hint(name: str, facts: ChatFacts, options: list[Any] | None, kind: str) -> Any:
    """A value read from the first image's pixels for a property whose name asks for one (a colour, light/dark,
    portrait/landscape, a count of blobs), or None. With ``options`` (an enum), only one of them."""
    low = name.lower()
    first = next((i for i in facts.images if i.url is None and i.pixels is not None), None)
    if first is None or "image" in low:
        return None
    if any(w in low for w in _COLOUR_WORDS) and kind == "string":
        return pixels.object_colour(first.colours, options)
    if options is not None and any(w in low for w in _TONE_WORDS):
        wanted = pixels.tone(first.brightness or 0)
        return wanted if wanted in options else None
    if options is not None and any(w in low for w in _ORIENTATION_WORDS):
        wanted = pixels.orientation(first.width or 0, first.height or 0)
        if wanted not in options and wanted == "square":
            return None
        return wanted if wanted in options else None
    if kind == "integer" and any(w in low for w in _BLOB_WORDS):
        return pixels.blob_count(first.pixels)
    return None


def _hint(name: str, facts: ChatFacts, deployment: str) -> Any:
    """A value from the request's facts (not its pixels) for a property name, or None."""
    low = name.lower()
    first = next((i for i in facts.images if i.url is None), None)
    if first is not None:
        if "width" in low:
            return first.width
        if "height" in low:
            return first.height
        if "bright" in low:
            return brightness_label(first.brightness or 0)
        if "format" in low:
            return first.format
    if "count" in low or low in ("images", "n_images", "image_count"):
        return len(facts.images)
    if "deployment" in low or "model" in low:
        return deployment
    if "prompt" in low or "question" in low:
        return facts.last_user_text
    if "title" in low or "summary" in low or "description" in low or "caption" in low:
        return f"{len(facts.images)} image(s) received by the emulator"
    return None


def instance_for(schema: Mapping[str, Any], facts: ChatFacts, deployment: str,
                 from_pixels: list[str] | None = None) -> Any:
    """A deterministic instance of ``schema`` (root of ``$ref`` lookups is ``schema`` itself). The names of the
    properties filled from the image's pixels (see :func:`_pixel_hint`) are appended to ``from_pixels``."""
    return _Instance(schema, facts, deployment, from_pixels).build(schema, "", 0)


class _Instance:
    """Builds one instance of a schema: :meth:`build` walks the nodes, one method per kind of node."""

    def __init__(self, root: Mapping[str, Any], facts: ChatFacts, deployment: str,
                 from_pixels: list[str] | None) -> None:
        self.root = root
        self.facts = facts
        self.deployment = deployment
        self.from_pixels = from_pixels

    def build(self, node: Any, name: str, depth: int) -> Any:
        """The value for ``node`` (the schema of property ``name``), None past :data:`_MAX_DEPTH`."""
        if not isinstance(node, Mapping) or depth > _MAX_DEPTH:
            return None
        node = self.resolve(node)
        if "const" in node:
            return node["const"]
        if isinstance(node.get("enum"), list) and node["enum"]:
            return self.choice(node["enum"], name)
        for key in ("anyOf", "oneOf", "allOf"):
            options = node.get(key)
            if isinstance(options, list) and options:
                non_null = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
                return self.build((non_null or options)[0], name, depth + 1)
        kind = _kind(node)
        if kind == "object":
            return {key: self.build(sub, key, depth + 1) for key, sub in (node.get("properties") or {}).items()}
        if kind == "array":
            return [self.build(node.get("items", {}), name, depth + 1) for _ in range(_item_count(node))]
        if kind == "string":
            hint = self.read(name, None, "string") or _hint(name, self.facts, self.deployment)
            return hint if isinstance(hint, str) else f"emulator {name or 'text'}"
        if kind in ("integer", "number"):
            return self.number(node, name, kind)
        if kind == "boolean":
            return bool(self.facts.images)
        return None

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        """``node``, or the node its local ``$ref`` (``#/$defs/...``) points to (``{}`` when there is none)."""
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, Mapping) else {}
            return target if isinstance(target, Mapping) else {}
        return node

    def read(self, name: str, options: list[Any] | None, kind: str) -> Any:
        """:func:`_pixel_hint`, recording ``name`` in ``from_pixels`` when the pixels gave the value."""
        value = _pixel_hint(name, self.facts, options, kind)
        if value is not None and self.from_pixels is not None and name not in self.from_pixels:
            self.from_pixels.append(name)
        return value

    def choice(self, options: list[Any], name: str) -> Any:
        """An enum's value: from the pixels, else from the request's facts, else its first option."""
        kind = "string" if all(isinstance(o, str) for o in options) else "other"
        value = self.read(name, options, kind)
        if value is not None:
            return value
        hint = _hint(name, self.facts, self.deployment)
        return hint if hint in options else options[0]

    def number(self, node: Mapping[str, Any], name: str, kind: str) -> int | float:
        """An integer (maybe a count of blobs in the pixels) or a number, within ``minimum``/``maximum``."""
        hint = self.read(name, None, "integer") if kind == "integer" else None
        hint = hint if hint is not None else _hint(name, self.facts, self.deployment)
        value = hint if isinstance(hint, int | float) and not isinstance(hint, bool) else 1
        if node.get("minimum") is not None:
            value = max(value, node["minimum"])
        if node.get("maximum") is not None:
            value = min(value, node["maximum"])
        return int(value) if kind == "integer" else float(value)


def _kind(node: Mapping[str, Any]) -> str:
    """The node's JSON type (the first non-null of a list; guessed from ``properties``/``items`` when absent)."""
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in node else "array" if "items" in node else "string"
    return str(kind)


def _item_count(node: Mapping[str, Any]) -> int:
    """How many items an array gets: ``minItems`` (at least 1), at most ``maxItems``."""
    count = max(1, int(node.get("minItems") or 1))
    if node.get("maxItems") is not None:
        count = min(count, int(node["maxItems"]))
    return count


def structured_content(
    body: Mapping[str, Any], facts: ChatFacts, *, deployment: str, malformed: bool = False,
    from_pixels: list[str] | None = None,
) -> str | None:
    """The answer text for a structured request, or None for a normal (Markdown report) answer.

    ``malformed`` (the ``malformed_json`` fault) answers with invalid JSON so the client's error path is tested.
    The names of the schema's properties read from the image's pixels are appended to ``from_pixels``.
    """
    fmt = check_response_format(body)
    if fmt is None or fmt.get("type") == "text":
        return None
    if malformed:
        return MALFORMED
    if fmt["type"] == "json_object":
        value = _facts_object(facts, deployment)
    else:
        value = instance_for(fmt["json_schema"]["schema"], facts, deployment, from_pixels)
    return json.dumps(value, ensure_ascii=False, indent=2)


def pixel_note(names: list[str]) -> str:
    """What the emulator says (header ``x-emulator-note``) when it filled schema fields from the pixels."""
    if not names:
        return ""
    return (f"fields read from the image's pixels: {', '.join(names)}; every other field is a placeholder "
            "(the emulator is not a model)")


__all__ = ["check_response_format", "instance_for", "pixel_note", "structured_content"]
