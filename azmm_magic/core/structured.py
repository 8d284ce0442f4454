"""Structured answers: ask for a JSON object (``--json``) or for JSON matching a schema (``--schema NAME``).

A schema is a pydantic model class or a JSON Schema dict. It is sent with the service's structured outputs
(``response_format={"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}``) after being made
strict-compatible (every object closed with ``additionalProperties: false`` and every property required). The
answer is parsed back (a model instance or a dict) into ``VisionResult.parsed``; an answer that does not parse or
validate raises :class:`StructuredOutputError` showing the raw text. pydantic is optional and imported lazily.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from azmm_magic.core.errors import AzureVisionError, ConfigError, Remedy

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.result import VisionResult

RAW_PREVIEW_CHARS = 300
_NAME = re.compile(r"[^A-Za-z0-9_-]+")


class StructuredOutputError(AzureVisionError):
    """The answer is not the JSON that was asked for. ``raw_text`` is the whole answer. Asking again (a fresh
    answer, not the cache's) may give valid JSON; a cut-off answer needs a higher ``max_tokens``."""

    def __init__(self, message: str, *, raw_text: str = "", settings: tuple[str, ...] = ("max_tokens",),
                 remedy: Remedy | None = "retry") -> None:
        super().__init__(message, settings=settings, remedy=remedy)
        self.raw_text = raw_text


@dataclass(frozen=True)
class ResponseSpec:
    """What kind of JSON answer to ask for, and how to parse it.

    ``kind`` is ``json_object`` or ``json_schema``; ``schema`` the strict JSON Schema sent; ``model`` the pydantic
    class the answer is validated into (None: a dict is returned, validated against ``schema`` with jsonschema).
    """

    kind: Literal["json_object", "json_schema"]
    name: str = "answer"
    schema: Mapping[str, Any] | None = None
    model: Any = None

    def response_format(self) -> dict[str, Any]:
        """The ``response_format`` request parameter."""
        if self.kind == "json_object":
            return {"type": "json_object"}
        return {"type": "json_schema", "json_schema": {"name": self.name, "schema": dict(self.schema or {}), "strict": True}}

    def parse(self, text: str) -> Any:
        """The answer as a dict (or model instance); :class:`StructuredOutputError` with the raw text if it is not."""
        try:
            value = json.loads(text)
        except ValueError as e:
            raise StructuredOutputError(
                f"The answer is not valid JSON ({e}). Raw answer: {_preview(text)}. Ask again with refresh=True, or "
                f"raise max_tokens if it was cut off.",
                raw_text=text,
            ) from None
        if not isinstance(value, dict):
            raise StructuredOutputError(
                f"The answer is JSON but not an object (got {type(value).__name__}). Raw answer: {_preview(text)}.",
                raw_text=text,
            )
        if self.kind == "json_object":
            return value
        if self.model is not None:
            from pydantic import ValidationError

            try:
                return self.model.model_validate(value)
            except ValidationError as e:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in e.errors()[:3]
                )
                raise StructuredOutputError(
                    f"The answer does not match {self.model.__name__} ({problems}). Raw answer: {_preview(text)}.",
                    raw_text=text,
                ) from None
        from azmm_magic.core.lazy import import_jsonschema

        jsonschema = import_jsonschema()
        try:
            jsonschema.validate(value, dict(self.schema or {}))
        except jsonschema.ValidationError as e:
            where = "/".join(str(p) for p in e.absolute_path) or "(root)"
            raise StructuredOutputError(
                f"The answer does not match the schema {self.name!r} (at {where}: {e.message}). "
                f"Raw answer: {_preview(text)}.",
                raw_text=text,
            ) from None
        except jsonschema.SchemaError as e:
            raise ConfigError(f"The JSON Schema {self.name!r} is invalid: {e.message}") from None
        return value

    def apply(self, result: VisionResult) -> VisionResult:
        """``result`` with ``parsed`` filled in (raises :class:`StructuredOutputError` if the text does not parse)."""
        if result.finish_reason == "length":
            raise StructuredOutputError(
                f"The JSON answer was cut off at the output-token limit ({result.usage.completion_tokens} tokens); "
                f"raise max_tokens. Raw answer: {_preview(result.text)}.",
                raw_text=result.text,
            )
        return result.with_(parsed=self.parse(result.text))


def _preview(text: str) -> str:
    text = text if len(text) <= RAW_PREVIEW_CHARS else text[:RAW_PREVIEW_CHARS] + f"… ({len(text)} characters)"
    return repr(text)


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` that structured outputs accept in strict mode: every object schema gets
    ``additionalProperties: false`` and lists all its properties as required (also inside ``$defs``)."""
    out = copy.deepcopy(dict(schema))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if node.get("type") == "object" or isinstance(props, dict):
                node["additionalProperties"] = False
                if isinstance(props, dict):
                    node["required"] = list(props)
                    for prop in props.values():  # defaults are meaningless when everything is required
                        if isinstance(prop, dict):
                            prop.pop("default", None)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(out)
    return out


def _is_pydantic_model(obj: Any) -> bool:
    return isinstance(obj, type) and callable(getattr(obj, "model_json_schema", None)) and hasattr(obj, "model_validate")


def response_spec(value: Any, *, name: str | None = None) -> ResponseSpec | None:
    """A :class:`ResponseSpec` from what a user gives: ``None``; ``"json"`` or ``{"type": "json_object"}``; a
    pydantic model class; a JSON Schema dict; a ready ``{"type": "json_schema", ...}``; or a ResponseSpec."""
    if value is None or isinstance(value, ResponseSpec):
        return value
    if value == "json" or value is dict:
        return ResponseSpec("json_object")
    if _is_pydantic_model(value):
        schema = value.model_json_schema()
        return ResponseSpec("json_schema", _clean_name(name or value.__name__), strict_schema(schema), value)
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind == "json_object":
            return ResponseSpec("json_object")
        if kind == "json_schema":
            inner = value.get("json_schema")
            if not isinstance(inner, Mapping) or not isinstance(inner.get("schema"), Mapping):
                raise ConfigError("response_format of type json_schema needs json_schema={'name': ..., 'schema': {...}}.")
            return ResponseSpec("json_schema", _clean_name(str(inner.get("name") or name or "answer")),
                                strict_schema(inner["schema"]))
        if kind == "object" or "properties" in value:
            return ResponseSpec("json_schema", _clean_name(name or str(value.get("title") or "answer")),
                                strict_schema(value))
        raise ConfigError(
            f"{name or 'The schema'} is a dict but not a JSON Schema of an object (expected \"type\": \"object\" "
            f"and \"properties\")."
        )
    what = f"{name!r} is a {type(value).__name__}" if name else f"a {type(value).__name__}"
    raise ConfigError(f"The response format {what}; give a pydantic model class or a JSON Schema dict.")


def _clean_name(name: str) -> str:
    """Structured outputs want a name of letters, digits, '_' and '-' (at most 64)."""
    return (_NAME.sub("_", name).strip("_") or "answer")[:64]


__all__ = ["ResponseSpec", "StructuredOutputError", "response_spec", "strict_schema"]
