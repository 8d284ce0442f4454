"""Request rules that depend on the deployment's model (its row of :mod:`.model_table`), plus the rules for
predicted outputs and for assistant turns sent back.

Each rule takes the body and the validator's ``Context`` and raises :class:`~.report.RequestError` with the
message, ``param`` and ``code`` Azure answers with (OpenAI-style bodies that Azure passes through). Where the
exact wording could not be confirmed from a captured answer, the rule says so next to it; the status (400) and
the ``param`` follow the documented pattern. A deployment whose model the table does not know (``spec`` None)
skips the model rules.

Answers confirmed from public captures of Azure/OpenAI errors:

- images to a text-only model: ``Invalid content type. image_url is only supported by certain models.``, param
  ``messages.[i].content.[j].type``, code null (Azure gpt-4, browser-use/web-ui#274);
- ``stream`` on o1: ``Unsupported value: 'stream' does not support true with this model. Only the default
  (false) value is supported.``, code ``unsupported_value`` (Azure o1, lobehub/lobehub#6125);
- a system message on o1-mini: ``Unsupported value: 'messages[0].role' does not support 'system' with this
  model.``, code ``unsupported_value`` (Azure o1-mini, microsoft/promptflow#3944);
- ``parallel_tool_calls`` on o-series: ``Unsupported parameter: 'parallel_tool_calls' is not supported with this
  model.``, code ``unsupported_parameter`` (Azure o3-mini, microsoft/semantic-kernel#10365);
- ``json_object`` on a model without JSON mode: ``Invalid parameter: 'response_format' of type 'json_object' is
  not supported with this model.``, param ``response_format``, code null (Azure gpt-4, mrwadams/stride-gpt#19);
- an output limit: ``max_tokens is too large: 8192. This model supports at most 4096 completion tokens, whereas
  you provided 8192.``, param ``max_tokens``, code null (ChatGPTNextWeb/NextChat#3195).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model_table import ModelSpec
from .report import RequestError
from .rulebook import Context, Rule, is_set, quoted

__all__ = ["MODEL_RULES"]

MODEL_RULES: list[Rule] = []  # run after validation.RULES, in this order


def _rule(fn: Rule) -> Rule:
    MODEL_RULES.append(fn)
    return fn


def _lacking(ctx: Context, feature: str) -> ModelSpec | None:
    """The deployment's model row when it lacks ``feature`` (a boolean column of the table), else None."""
    spec = ctx.profile.spec
    return spec if spec is not None and not getattr(spec, feature) else None


def _unsupported_parameter(key: str, what: str = "this model") -> RequestError:
    return RequestError(f"Unsupported parameter: '{key}' is not supported with {what}.", param=key,
                        code="unsupported_parameter")


@_rule
def model_serves_api_version(body: Mapping[str, Any], ctx: Context) -> None:
    """A model served only from some api-version on (o1-mini: 2024-09-01-preview; o1, o3-mini: 2024-12-01-preview).
    Message as Azure's version gates word it ("... is enabled only for api versions X and later", code
    BadRequest; seen for json_schema in dotnet/extensions#6130); its exact wording for models is unconfirmed."""
    spec = ctx.profile.spec
    if spec is None or spec.since is None or ctx.api_version is None:
        return
    if ctx.api_version[:10] < spec.since[:10]:
        raise RequestError(f"Model {spec.family} is enabled only for api versions {spec.since} and later",
                           param=None, code="BadRequest")


@_rule
def model_output_limit(body: Mapping[str, Any], ctx: Context) -> None:
    """``max_tokens`` / ``max_completion_tokens`` at most the model's output-token limit."""
    spec = ctx.profile.spec
    if spec is None or spec.max_output is None:
        return
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if isinstance(value, int) and value > spec.max_output:
            raise RequestError(f"{key} is too large: {value}. This model supports at most {spec.max_output} "
                               f"completion tokens, whereas you provided {value}.", param=key, code=None)


@_rule
def model_takes_images(body: Mapping[str, Any], ctx: Context) -> None:
    """Image parts only for vision models (vision how-to: o-series but o3-mini/o1-mini, GPT-5, 4.1, 4o)."""
    if _lacking(ctx, "vision") is None:
        return
    for i, message in enumerate(body.get("messages") or ()):
        content = message.get("content")
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, Mapping) and part.get("type") == "image_url":
                raise RequestError("Invalid content type. image_url is only supported by certain models.",
                                   param=f"messages.[{i}].content.[{j}].type", code=None)


@_rule
def model_streams(body: Mapping[str, Any], ctx: Context) -> None:
    """No ``stream`` on o1 and o1-mini (reasoning how-to, o-series tab: Streaming '-')."""
    if body.get("stream") is True and _lacking(ctx, "streaming"):
        raise RequestError("Unsupported value: 'stream' does not support true with this model. Only the default "
                           "(false) value is supported.", param="stream", code="unsupported_value")


@_rule
def model_takes_system_messages(body: Mapping[str, Any], ctx: Context) -> None:
    """No system or developer messages on o1-mini (reasoning how-to: Developer Messages and System Messages '-')."""
    if not _lacking(ctx, "system_message"):
        return
    roles = [message.get("role") for message in body.get("messages") or ()]
    for i, role in enumerate(roles):
        if role in ("system", "developer"):
            raise RequestError(f"Unsupported value: 'messages[{i}].role' does not support '{role}' with this model.",
                               param=f"messages[{i}].role", code="unsupported_value")


@_rule
def model_takes_tools(body: Mapping[str, Any], ctx: Context) -> None:
    """No tools on o1-mini (reasoning how-to: Functions/Tools '-'); wording as OpenAI's unsupported parameters
    (unconfirmed for tools)."""
    for key in ("tools", "functions"):
        if body.get(key) and _lacking(ctx, "tools"):
            raise _unsupported_parameter(key)


@_rule
def model_takes_parallel_tool_calls(body: Mapping[str, Any], ctx: Context) -> None:
    """``parallel_tool_calls`` is refused by the o-series (reasoning how-to: Parallel Tool Calls '-')."""
    if is_set(body, "parallel_tool_calls") and _lacking(ctx, "parallel_tool_calls"):
        raise _unsupported_parameter("parallel_tool_calls")


@_rule
def model_reasoning_effort(body: Mapping[str, Any], ctx: Context) -> None:
    """The ``reasoning_effort`` values the model takes: low/medium/high on the o-series, plus minimal on GPT-5,
    none on o1-mini (reasoning how-to, "Reasoning effort")."""
    spec = ctx.profile.spec
    value = body.get("reasoning_effort")
    if spec is None or value is None or not spec.reasoning:
        return
    if not spec.efforts:
        raise _unsupported_parameter("reasoning_effort")
    if value not in spec.efforts:
        raise RequestError(f"Unsupported value: 'reasoning_effort' does not support '{value}' with this model. "
                           f"Supported values are: {quoted(spec.efforts)}.", param="reasoning_effort",
                           code="unsupported_value")


@_rule
def model_response_format(body: Mapping[str, Any], ctx: Context) -> None:
    """JSON mode and Structured Outputs only on the models that have them (json-mode, structured-outputs how-tos)."""
    spec = ctx.profile.spec
    fmt = body.get("response_format")
    if spec is None or not isinstance(fmt, Mapping):
        return
    kind = fmt.get("type")
    if (kind == "json_object" and not spec.json_object) or (kind == "json_schema" and not spec.json_schema):
        raise RequestError(f"Invalid parameter: 'response_format' of type '{kind}' is not supported with this model.",
                           param="response_format", code=None)


@_rule
def predicted_outputs(body: Mapping[str, Any], ctx: Context) -> None:
    """``prediction`` only on the models the predicted-outputs how-to lists (not reasoning models), and not with
    ``n`` > 1, tools, ``logprobs`` or positive penalties ("Unsupported features"). Messages follow OpenAI's
    unsupported-parameter wording (unconfirmed for predicted outputs). The page also lists
    ``max_completion_tokens``; that is accepted (OpenAI takes it with predictions), a doubt resolved towards 200."""
    if not is_set(body, "prediction"):
        return
    spec = ctx.profile.spec
    if (spec is not None and not spec.prediction) or (spec is None and ctx.profile.reasoning):
        raise _unsupported_parameter("prediction")
    what = "predicted outputs"
    if isinstance(body.get("n"), int) and body["n"] > 1:
        raise RequestError(f"Unsupported value: 'n' does not support {body['n']} with {what}. Only the default (1) "
                           "value is supported.", param="n", code="unsupported_value")
    for key in ("tools", "functions"):
        if body.get(key):
            raise _unsupported_parameter(key, what)
    if body.get("logprobs") is True:
        raise _unsupported_parameter("logprobs", what)
    for key in ("presence_penalty", "frequency_penalty"):
        value = body.get(key)
        if isinstance(value, int | float) and value > 0:
            raise RequestError(f"Unsupported value: '{key}' does not support {value} with {what}. Only values up "
                               "to 0 are supported.", param=key, code="unsupported_value")


@_rule
def assistant_has_content(body: Mapping[str, Any], ctx: Context) -> None:
    """An assistant turn carries content, tool calls, a function call, a refusal or an audio reference:
    OpenAI's ``Invalid value for 'content': expected a string, got null.`` otherwise."""
    for i, message in enumerate(body.get("messages") or ()):
        if message.get("role") != "assistant":
            continue
        if any(message.get(key) is not None for key in ("content", "tool_calls", "function_call", "refusal", "audio")):
            continue
        raise RequestError("Invalid value for 'content': expected a string, got null.",
                           param=f"messages.[{i}].content", code=None)
