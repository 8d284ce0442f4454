"""Chat-completions request validation, as strict as Azure OpenAI.

Two layers, run before any image is decoded:

1. the request schema (``chat_request.schema.json``, derived from Azure's REST spec, see ``SPEC_LICENSE.txt``)
   checked with ``jsonschema`` (the validator is compiled once per process): unknown arguments, types, ranges,
   required fields, enums, name patterns;
2. :data:`RULES`, what a schema cannot say: api-version gating, parameter combinations, per-model rules for
   reasoning deployments, tool-call pairing, Structured Outputs' strict-schema rules, then the rules that read
   the deployment's model row (:mod:`.model_rules`: output-token limits, vision, streaming, system messages,
   tools, reasoning efforts, response formats, predicted outputs, assistant turns without content).

Image count and size limits need the decoded request and are checked by :func:`check_images`. Every failure is a
:class:`~azmm_magic.emulator.report.RequestError`, rendered as Azure's 400 ``{"error": {message, type, param,
code}}`` with the ``param`` and ``code`` the service sets (OpenAI-style messages, which Azure passes through).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from .model_rules import MODEL_RULES
from .models import ModelProfile
from .report import RequestError
from .rulebook import Context, Rule, is_set, quoted
from .versions import features_of

__all__ = ["RULES", "Context", "check_images", "check_schema", "token_cap", "validate_chat"]

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # "image size limit 20 MB" (Azure OpenAI quotas and limits page)
REASONING_UNSUPPORTED = ("presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias")
REASONING_DEFAULT_ONLY = {"temperature": 1, "top_p": 1}
# request fields that only exist from some api-version on (see versions.FEATURES)
GATED_FIELDS = {
    "max_completion_tokens": "max_completion_tokens",
    "stream_options": "stream_options",
    "tools": "tools",
    "tool_choice": "tools",
    "parallel_tool_calls": "parallel_tool_calls",
    "functions": "functions",
    "function_call": "functions",
    "seed": "seed",
    "logprobs": "logprobs",
    "top_logprobs": "logprobs",
    "reasoning_effort": "reasoning_effort",
    "store": "store",
    "metadata": "store",
    "prediction": "prediction",
    "modalities": "audio",
    "audio": "audio",
    "user_security_context": "user_security_context",
}
FORMAT_SINCE = {"json_object": "2023-12-01-preview", "json_schema": "2024-08-01-preview"}
MAX_STRICT_NESTING = 5  # structured-outputs how-to: "up to five levels of nesting" (below the root object)
_TYPE_NAMES = {"number": "a decimal", "integer": "an integer", "string": "a string", "boolean": "a boolean",
               "object": "an object", "array": "an array", "null": "null"}  # fmt: skip


# ------------------------------------------------------------------------------------------------ schema


@functools.cache
def _validator() -> Any:
    """The compiled request-schema validator (built once)."""
    from azmm_magic.core.lazy import import_jsonschema

    jsonschema = import_jsonschema()
    schema = json.loads(resources.files(__package__).joinpath("chat_request.schema.json").read_text("utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _path(parts: Any) -> str:
    """``['messages', 0, 'content']`` -> ``messages[0].content`` (OpenAI's ``param`` spelling)."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _fits(schema: Any, value: Any) -> bool:
    """Whether a branch of an ``anyOf`` is meant for ``value``'s JSON type."""
    if not isinstance(schema, Mapping):
        return False
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    got = _json_type(value)
    return got in kinds or (got == "integer" and "number" in kinds)


def _error_for(error: Any) -> RequestError:
    """Azure's 400 for one ``jsonschema`` error (one builder per kind of error, a generic message for the rest)."""
    where = _path(error.absolute_path)
    build = _ERRORS.get(error.validator)
    if build is None:
        return RequestError(f"Invalid '{where}': {error.message}", param=where or None, code="invalid_value")
    return build(error, where, error.instance, error.validator_value)


def _branch_error(error: Any, where: str, value: Any, branches: Any) -> RequestError:
    """``anyOf``/``oneOf``: the error of the branch meant for the value's JSON type, else a type error."""
    for sub in error.context or ():
        branch = branches[sub.schema_path[0]] if sub.schema_path else None
        if _fits(branch, value) and sub.validator != "type":
            return _error_for(sub)
    expected = sorted({t for b in branches for t in _types_of(b)}, key=list(_TYPE_NAMES).index)
    return _type_error(where, expected, value)


def _extra_error(error: Any, where: str, value: Any, _: Any) -> RequestError:
    extra = sorted(set(value) - set(error.schema.get("properties", {})))
    if not where:
        return RequestError(f"Unrecognized request argument supplied: {', '.join(extra)}", param=None, code=None)
    names = ", ".join(f"'{name}'" for name in extra)
    return RequestError(f"Additional properties are not allowed ({names} {'was' if len(extra) == 1 else 'were'} "
                        f"unexpected) - '{where}'", param=where, code=None)


def _required_error(error: Any, where: str, value: Any, required: Any) -> RequestError:
    missing = next(name for name in required if name not in value)
    param = f"{where}.{missing}" if where else missing
    return RequestError(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def _kind_error(error: Any, where: str, value: Any, kinds: Any) -> RequestError:
    return _type_error(where, [kinds] if isinstance(kinds, str) else list(kinds), value)


def _bound_error(error: Any, where: str, value: Any, bound: Any) -> RequestError:
    number = "integer" if isinstance(value, int) else "decimal"
    low = error.validator == "minimum"
    return RequestError(
        f"Invalid '{where}': {number} {'below minimum' if low else 'above maximum'} value. Expected a value "
        f"{'>=' if low else '<='} {bound}, but got {value} instead.",
        param=where, code=f"{number}_{'below_min' if low else 'above_max'}_value",
    )


def _size_error(error: Any, where: str, value: Any, length: Any) -> RequestError:
    """``minItems``/``maxItems``/``minLength``/``maxLength``: an array or a string too short or too long."""
    low = error.validator.startswith("min")
    kind = "array" if error.validator.endswith("Items") else "string"
    if kind == "array" and low and not value:
        return RequestError(f"Invalid '{where}': empty array. Expected an array with minimum length {length}, but "
                            "got an empty array instead.", param=where, code="empty_array")
    return RequestError(
        f"Invalid '{where}': {kind} too {'short' if low else 'long'}. Expected a{'n' if kind == 'array' else ''} "
        f"{kind} with {'minimum' if low else 'maximum'} length {length}, but got a{'n' if kind == 'array' else ''} "
        f"{kind} with length {len(value)} instead.",
        param=where, code=f"{kind}_{'below_min' if low else 'above_max'}_length",
    )


def _value_error(error: Any, where: str, value: Any, allowed: Any) -> RequestError:
    allowed = list(allowed) if error.validator == "enum" else [allowed]
    return RequestError(f"Invalid value: '{value}'. Supported values are: {quoted(allowed)}.", param=where,
                        code="invalid_value")


def _pattern_error(error: Any, where: str, value: Any, pattern: Any) -> RequestError:
    return RequestError(f"Invalid '{where}': string does not match pattern. Expected a string that matches the "
                        f"pattern '{pattern}'.", param=where, code="invalid_value")


def _properties_error(error: Any, where: str, value: Any, most: Any) -> RequestError:
    return RequestError(f"Invalid '{where}': too many properties. Expected an object with at most {most} "
                        f"properties, but got {len(value)}.", param=where, code="object_above_max_properties")


#: ``jsonschema`` validator -> builder of Azure's 400 (error, param path, the value, the validator's value)
_ERRORS: dict[str, Callable[[Any, str, Any, Any], RequestError]] = {
    "anyOf": _branch_error, "oneOf": _branch_error, "additionalProperties": _extra_error,
    "required": _required_error, "type": _kind_error, "minimum": _bound_error, "maximum": _bound_error,
    "minItems": _size_error, "maxItems": _size_error, "enum": _value_error, "const": _value_error,
    "pattern": _pattern_error, "minLength": _size_error, "maxLength": _size_error,
    "maxProperties": _properties_error,
}


def _types_of(branch: Any) -> list[str]:
    kinds = branch.get("type", []) if isinstance(branch, Mapping) else []
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    if isinstance(branch, Mapping) and "enum" in branch and not kinds:
        kinds = ["string"]
    if isinstance(branch, Mapping) and "$ref" in branch and not kinds:
        kinds = ["object"]
    return [k for k in kinds if k in _TYPE_NAMES]


def _type_error(where: str, expected: list[str], value: Any) -> RequestError:
    wanted = [t for t in expected if t != "null"] or expected
    names = " or ".join(_TYPE_NAMES[t] for t in wanted)
    got = _TYPE_NAMES[_json_type(value)]
    return RequestError(f"Invalid type for '{where}': expected {names}, but got {got} instead.", param=where,
                        code="invalid_type")


def _depth(error: Any) -> int:
    return len(error.absolute_path)


def check_schema(body: Mapping[str, Any]) -> None:
    """Raise Azure's 400 for the first schema violation (unknown top-level arguments first, like the service)."""
    errors = list(_validator().iter_errors(body))
    if not errors:
        return
    top_unknown = [e for e in errors if e.validator == "additionalProperties" and not e.absolute_path]
    if top_unknown:
        raise _error_for(top_unknown[0])
    # the first parameter in request order, its deepest error
    order = {name: i for i, name in enumerate(body)}
    errors.sort(key=lambda e: (order.get(e.absolute_path[0], -1) if e.absolute_path else -1, -_depth(e)))
    raise _error_for(errors[0])


# ------------------------------------------------------------------------------------------------ rules

RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    """Register a request rule (run in registration order)."""
    RULES.append(fn)
    return fn


@rule
def version_has_argument(body: Mapping[str, Any], ctx: Context) -> None:
    """An argument newer than the api-version is unknown to it."""
    for key in body:
        feature = GATED_FIELDS.get(key)
        if feature is not None and feature not in ctx.features:
            raise RequestError(f"Unrecognized request argument supplied: {key}", param=None, code=None)


@rule
def version_has_response_format(body: Mapping[str, Any], ctx: Context) -> None:
    """``json_schema`` came with 2024-08-01-preview, ``json_object`` with 2023-12-01-preview."""
    fmt = body.get("response_format")
    if not isinstance(fmt, Mapping):
        return
    kind = fmt.get("type")
    if kind in FORMAT_SINCE and kind not in ctx.features:
        # Azure's own gate (dotnet/extensions#6130, langgenius/dify#8994): 400, code BadRequest, no param
        raise RequestError(f"response_format value as {kind} is enabled only for api versions "
                           f"{FORMAT_SINCE[kind]} and later", param=None, code="BadRequest")


@rule
def version_has_roles_and_parts(body: Mapping[str, Any], ctx: Context) -> None:
    """``developer`` messages came with 2024-12-01-preview, image parts with 2023-12-01-preview."""
    roles = ["system", "assistant", "user", "function", "tool"] + (["developer"] if "developer_role" in ctx.features else [])
    for i, message in enumerate(body.get("messages") or ()):
        if message.get("role") not in roles:
            raise RequestError(f"Invalid value: '{message.get('role')}'. Supported values are: {quoted(roles)}.",
                               param=f"messages[{i}].role", code="invalid_value")
        content = message.get("content")
        if "image_input" not in ctx.features and isinstance(content, list):
            for j, part in enumerate(content):
                if part.get("type") == "image_url":
                    raise RequestError("Invalid value: 'image_url'. Supported values are: 'text'.",
                                       param=f"messages[{i}].content[{j}].type", code="invalid_value")


@rule
def one_token_limit(body: Mapping[str, Any], ctx: Context) -> None:
    """``max_tokens`` and ``max_completion_tokens`` are exclusive."""
    if is_set(body, "max_tokens") and is_set(body, "max_completion_tokens"):
        raise RequestError(
            "max_tokens and max_completion_tokens cannot both be set. Use max_completion_tokens.",
            param="max_tokens", code="invalid_parameter_combination",
        )


@rule
def reasoning_token_parameter(body: Mapping[str, Any], ctx: Context) -> None:
    """Reasoning models refuse ``max_tokens``; legacy deployments do not know ``max_completion_tokens``."""
    if is_set(body, "max_tokens") and ctx.profile.reasoning:
        raise RequestError(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' "
            "instead.", param="max_tokens", code="unsupported_parameter",
        )
    if is_set(body, "max_completion_tokens") and ctx.profile.legacy:
        raise RequestError("Unrecognized request argument supplied: max_completion_tokens", param=None, code=None)


@rule
def reasoning_sampling(body: Mapping[str, Any], ctx: Context) -> None:
    """Reasoning models take no sampling parameters (temperature/top_p only at their default 1)."""
    if not ctx.profile.reasoning:
        return
    for key, default in REASONING_DEFAULT_ONLY.items():
        if is_set(body, key) and body[key] != default:
            raise RequestError(
                f"Unsupported value: '{key}' does not support {body[key]} with this model. Only the default "
                f"({default}) value is supported.", param=key, code="unsupported_value",
            )
    for key in REASONING_UNSUPPORTED:
        if is_set(body, key) and not (key in ("presence_penalty", "frequency_penalty") and body[key] == 0):
            raise RequestError(f"Unsupported parameter: '{key}' is not supported with this model.", param=key,
                               code="unsupported_parameter")


@rule
def reasoning_effort_needs_reasoning_model(body: Mapping[str, Any], ctx: Context) -> None:
    """``reasoning_effort`` only on reasoning models."""
    if is_set(body, "reasoning_effort") and not ctx.profile.reasoning:
        raise RequestError("Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                           param="reasoning_effort", code="unsupported_parameter")


@rule
def top_logprobs_needs_logprobs(body: Mapping[str, Any], ctx: Context) -> None:
    """``top_logprobs`` requires ``logprobs: true`` (spec: "`logprobs` must be set to `true`")."""
    if is_set(body, "top_logprobs") and body.get("logprobs") is not True:
        raise RequestError("Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' "
                           "is used.", param="top_logprobs", code="invalid_value")


@rule
def stream_options_need_stream(body: Mapping[str, Any], ctx: Context) -> None:
    """``stream_options`` only with ``stream: true``."""
    if is_set(body, "stream_options") and body.get("stream") is not True:
        raise RequestError("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                           param="stream_options", code="invalid_value")


def _tool_names(body: Mapping[str, Any]) -> list[str]:
    """The names of the function tools (custom tools carry theirs elsewhere)."""
    return [t["function"]["name"] for t in body.get("tools") or () if t.get("type") == "function"]


@rule
def tool_choice_needs_tools(body: Mapping[str, Any], ctx: Context) -> None:
    """``tool_choice`` / ``parallel_tool_calls`` need ``tools``; a named tool must be one of them."""
    for key in ("tool_choice", "parallel_tool_calls"):
        if is_set(body, key) and not body.get("tools"):
            raise RequestError(f"Invalid value for '{key}': '{key}' is only allowed when 'tools' are specified.",
                               param=key, code="invalid_value")
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping):
        name = choice["function"]["name"]
        if name not in _tool_names(body):
            raise RequestError(f"Invalid value for 'tool_choice': no function named '{name}' was specified in the "
                               "'tools' parameter.", param="tool_choice", code="invalid_value")


@rule
def unique_tool_names(body: Mapping[str, Any], ctx: Context) -> None:
    """Function names in ``tools`` are unique."""
    seen: set[str] = set()
    for i, tool in enumerate(body.get("tools") or ()):
        if tool.get("type") != "function":
            continue
        name = tool["function"]["name"]
        if name in seen:
            raise RequestError(f"Invalid 'tools': duplicate function name '{name}'.", param=f"tools[{i}].function.name",
                               code="invalid_value")
        seen.add(name)


@rule
def tool_messages_pair_with_calls(body: Mapping[str, Any], ctx: Context) -> None:
    """Each assistant ``tool_calls`` is answered by ``tool`` messages right after it, and only then."""
    messages = list(body.get("messages") or ())
    pending: dict[str, int] = {}
    open_at: int | None = None
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                raise RequestError("Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                                   "message with 'tool_calls'.", param=f"messages.[{i}].role", code=None)
            pending.pop(message["tool_call_id"])
            continue
        if pending:
            break
        pending = {call["id"]: i for call in message.get("tool_calls") or ()} if role == "assistant" else {}
        open_at = i
    if pending:
        ids = ", ".join(pending)
        raise RequestError(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {ids}",
            param=f"messages.[{open_at}].role", code=None,
        )


def _strict_problem(node: Any, context: tuple[str, ...], defs: Mapping[str, Any], depth: int = 0,
                    nesting: int = 0) -> str | None:
    """The first Structured Outputs rule ``node`` breaks (objects closed, every property required, at most
    :data:`MAX_STRICT_NESTING` levels of objects below the root), or None. ``nesting``: objects above ``node``."""
    if not isinstance(node, Mapping) or depth > 40:
        return None
    where = f"In context=({', '.join(repr(c) for c in context)}{',' if len(context) == 1 else ''})"
    kinds = node.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    inner = nesting  # objects above this node's children
    if "object" in kinds or "properties" in node:
        if nesting > MAX_STRICT_NESTING:
            return (f"{where}, the schema is nested too deeply: objects may be nested at most "
                    f"{MAX_STRICT_NESTING} levels below the root object.")
        inner = nesting + 1
        if node.get("additionalProperties") is not False:
            return f"{where}, 'additionalProperties' is required to be supplied and to be false."
        props = node.get("properties") or {}
        missing = [name for name in props if name not in (node.get("required") or [])]
        if missing:
            return (f"{where}, 'required' is required to be supplied and to be an array including every key in "
                    f"properties. Missing '{missing[0]}'.")
        for name, sub in props.items():
            found = _strict_problem(sub, (*context, "properties", name), defs, depth + 1, inner)
            if found:
                return found
    if isinstance(node.get("items"), Mapping):
        found = _strict_problem(node["items"], (*context, "items"), defs, depth + 1, inner)
        if found:
            return found
    for key in ("anyOf", "$defs", "definitions"):
        value = node.get(key)
        subs = value.items() if isinstance(value, Mapping) else enumerate(value or [])
        # anyOf branches sit at this node's level; definitions count as roots of their own (the accepting reading)
        level = nesting if key == "anyOf" else 0
        for name, sub in subs:
            found = _strict_problem(sub, (*context, key, str(name)), defs, depth + 1, level)
            if found:
                return found
    return None


def _strict_schema_error(schema: Any) -> str | None:
    if not isinstance(schema, Mapping) or schema.get("type") != "object" or "anyOf" in schema:
        return "In context=(), the root schema must be an object (type 'object', not 'anyOf')."
    return _strict_problem(schema, (), schema.get("$defs") or {})


@rule
def strict_response_format(body: Mapping[str, Any], ctx: Context) -> None:
    """``json_schema`` with ``strict: true`` follows Structured Outputs' schema subset."""
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        inner = fmt["json_schema"]
        if inner.get("strict") is True:
            problem = _strict_schema_error(inner.get("schema"))
            if problem:
                raise RequestError(f"Invalid schema for response_format '{inner['name']}': {problem}",
                                   param="response_format", code=None)


@rule
def strict_tools(body: Mapping[str, Any], ctx: Context) -> None:
    """A tool with ``strict: true`` follows the same schema subset."""
    for i, tool in enumerate(body.get("tools") or ()):
        function = tool.get("function")
        if isinstance(function, Mapping) and function.get("strict") is True:
            problem = _strict_schema_error(function.get("parameters", {"type": "object", "properties": {},
                                                                       "additionalProperties": False}))
            if problem:
                raise RequestError(f"Invalid schema for function '{function['name']}': {problem}",
                                   param=f"tools[{i}].function.parameters", code="invalid_function_parameters")


RULES.extend(MODEL_RULES)


def validate_chat(body: Mapping[str, Any], ctx: Context, *, lenient_rules: frozenset[str] = frozenset()) -> None:
    """Schema, then every rule not named in ``lenient_rules``; raises :class:`RequestError`."""
    check_schema(body)
    for check in RULES:
        if check.__name__ not in lenient_rules:
            check(body, ctx)


def context_for(profile: ModelProfile, api_version: str | None) -> Context:
    """The rules' :class:`Context` (``api_version`` None: the v1 API, every feature)."""
    return Context(profile, api_version, features_of(api_version))


def token_cap(body: Mapping[str, Any]) -> int | None:
    """The completion-token cap the request sets (validated already)."""
    caps = [body[k] for k in ("max_tokens", "max_completion_tokens") if body.get(k) is not None]
    return min(caps) if caps else None


def _image_urls(body: Mapping[str, Any]) -> list[str]:
    urls = []
    for message in body.get("messages") or ():
        content = message.get("content")
        if isinstance(content, list):
            urls += [part["image_url"]["url"] for part in content if part.get("type") == "image_url"]
    return urls


def check_images(body: Mapping[str, Any], profile: ModelProfile, *, max_image_bytes: int = MAX_IMAGE_BYTES) -> None:
    """The per-request image count and per-image size limits (sizes from the base64 length: nothing decoded)."""
    urls = _image_urls(body)
    if len(urls) > profile.max_images:
        raise RequestError(f"Too many images in request. Max is {profile.max_images}.", param="messages",
                           code="BadRequest")
    for i, url in enumerate(urls):
        if url[:5].lower() != "data:":
            continue
        payload = len(url) - url.find(",") - 1
        size = payload * 3 // 4
        if size > max_image_bytes:
            raise RequestError(
                f"Image {i + 1} is {size / 1_048_576:.1f} MB; the limit is {max_image_bytes / 1_048_576:g} MB per "
                "image.", param="messages", code="image_too_large",
            )
