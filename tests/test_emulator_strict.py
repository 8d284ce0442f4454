"""The emulator is as strict as Azure OpenAI: a table of invalid requests, each sent over real HTTP, each answered
with the status, ``code`` and ``param`` Azure gives (issue 13). Each row cites where the rule comes from:
"spec" = Azure/azure-rest-api-specs specification/cognitiveservices/data-plane/AzureOpenAI/inference/
stable/2024-10-21/inference.json (components/schemas/...), "docs" = learn.microsoft.com Azure OpenAI pages,
"service" = the service's observed answer (OpenAI-style error bodies that Azure passes through)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from azmm_magic.emulator import EmulatorConfig, EmulatorServer
from azmm_magic.emulator.validation import RULES

V = "2024-10-21"


def png_url(size: tuple[int, int] = (8, 8)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def user(text: str = "What is in the picture? Answer in JSON.") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def images(count: int) -> list[dict[str, Any]]:
    url = png_url()
    parts: list[dict[str, Any]] = [{"type": "text", "text": "describe"}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for _ in range(count)]
    return [{"role": "user", "content": parts}]


def tool(name: str = "get_colour", **extra: Any) -> dict[str, Any]:
    params = {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"],
              "additionalProperties": False}
    return {"type": "function", "function": {"name": name, "parameters": params, **extra}}


def schema_format(schema: dict[str, Any], name: str = "Picture", strict: bool = True) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}


CLOSED = {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"],
          "additionalProperties": False}
PREDICTION = {"type": "content", "content": "The picture is green."}
MAPPED = {"fouro": "gpt-4o-2024-11-20", "fouro-may": "gpt-4o-2024-05-13", "gpt4-0613": "gpt-4-0613",
          "turbo35": "gpt-35-turbo-0125", "o1dep": "o1-2024-12-17", "o1mini": "o1-mini-2024-09-12",
          "o3mini": "o3-mini-2025-01-31", "o4mini": "o4-mini"}


def nested(levels: int) -> dict[str, Any]:
    """A strict schema with ``levels`` objects nested below the root object."""
    node: dict[str, Any] = CLOSED
    for _ in range(levels):
        node = {"type": "object", "properties": {"inner": node}, "required": ["inner"], "additionalProperties": False}
    return node
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_colour", "arguments": "{}"}}


@dataclass
class Case:
    id: str
    body: dict[str, Any]
    code: str | None
    param: str | None
    fragment: str
    deployment: str = "gpt-4o"
    version: str | None = V  # None: the v1 route
    status: int = 400
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    # --- unknown arguments: spec createChatCompletionRequest lists the properties; service: 400
    #     "Unrecognized request argument supplied: NAME", param null, code null
    Case("unknown-argument", {"messages": user(), "temprature": 0.2}, None, None,
         "Unrecognized request argument supplied: temprature"),
    Case("unknown-argument-v1", {"model": "gpt-4o", "messages": user(), "foo": 1}, None, None,
         "Unrecognized request argument supplied: foo", version=None),
    # --- types and ranges (spec chatCompletionsRequestCommon / createChatCompletionRequest)
    # spec: temperature "type": "number", "minimum": 0, "maximum": 2
    Case("temperature-string", {"messages": user(), "temperature": "hot"}, "invalid_type", "temperature",
         "expected a decimal"),
    Case("temperature-3", {"messages": user(), "temperature": 3}, "integer_above_max_value", "temperature",
         "Expected a value <= 2"),
    Case("temperature-negative", {"messages": user(), "temperature": -0.5}, "decimal_below_min_value",
         "temperature", "Expected a value >= 0"),
    # spec: top_p "minimum": 0, "maximum": 1
    Case("top-p-1.5", {"messages": user(), "top_p": 1.5}, "decimal_above_max_value", "top_p",
         "Expected a value <= 1"),
    # spec: n "minimum": 1, "maximum": 128
    Case("n-0", {"messages": user(), "n": 0}, "integer_below_min_value", "n", "Expected a value >= 1"),
    Case("n-129", {"messages": user(), "n": 129}, "integer_above_max_value", "n", "Expected a value <= 128"),
    # spec: stop array "minItems": 1, "maxItems": 4 ("Up to 4 sequences")
    Case("stop-five", {"messages": user(), "stop": ["a", "b", "c", "d", "e"]}, "array_above_max_length", "stop",
         "maximum length 4"),
    Case("stop-number", {"messages": user(), "stop": 5}, "invalid_type", "stop", "expected a string or an array"),
    # spec: top_logprobs "minimum": 0, "maximum": 20
    Case("top-logprobs-30", {"messages": user(), "logprobs": True, "top_logprobs": 30}, "integer_above_max_value",
         "top_logprobs", "Expected a value <= 20"),
    # spec: seed "type": "integer"
    Case("seed-string", {"messages": user(), "seed": "abc"}, "invalid_type", "seed", "expected an integer"),
    # spec: user "type": "string"
    Case("user-number", {"messages": user(), "user": 123}, "invalid_type", "user", "expected a string"),
    # spec: presence_penalty / frequency_penalty "minimum": -2, "maximum": 2
    Case("presence-penalty-3", {"messages": user(), "presence_penalty": 3}, "integer_above_max_value",
         "presence_penalty", "<= 2"),
    Case("frequency-penalty-low", {"messages": user(), "frequency_penalty": -2.5}, "decimal_below_min_value",
         "frequency_penalty", ">= -2"),
    # spec: logprobs "type": "boolean"
    Case("logprobs-string", {"messages": user(), "logprobs": "yes"}, "invalid_type", "logprobs",
         "expected a boolean"),
    # spec: stream "type": "boolean"
    Case("stream-string", {"messages": user(), "stream": "yes"}, "invalid_type", "stream", "expected a boolean"),
    # spec: max_tokens / max_completion_tokens "type": "integer"; service: a value below 1 is refused
    Case("max-tokens-string", {"messages": user(), "max_tokens": "100"}, "invalid_type", "max_tokens",
         "expected an integer"),
    Case("max-completion-tokens-0", {"messages": user(), "max_completion_tokens": 0}, "integer_below_min_value",
         "max_completion_tokens", ">= 1"),
    # spec: logit_bias values are integers; docs: "bias value from -100 to 100"
    Case("logit-bias-200", {"messages": user(), "logit_bias": {"50256": 200}}, "integer_above_max_value",
         "logit_bias.50256", "<= 100"),
    # --- tools (spec chatCompletionTool, FunctionObject "required": ["name"], name "a-z, A-Z, 0-9, _ and -, max 64")
    Case("tool-without-name", {"messages": user(), "tools": [{"type": "function", "function": {"parameters": {}}}]},
         "missing_required_parameter", "tools[0].function.name", "Missing required parameter"),
    Case("tool-bad-name", {"messages": user(), "tools": [tool("get colour!")]}, "invalid_value",
         "tools[0].function.name", "does not match pattern"),
    Case("tool-bad-type", {"messages": user(), "tools": [{"type": "retrieval", "function": {"name": "x"}}]},
         "invalid_value", "tools[0].type", "Supported values are: 'function'"),
    # spec tools description: "A max of 128 functions are supported."
    Case("tools-129", {"messages": user(), "tools": [tool(f"f{i}") for i in range(129)]}, "array_above_max_length",
         "tools", "maximum length 128"),
    # spec chatCompletionToolChoiceOption enum none/auto/required
    Case("tool-choice-bad", {"messages": user(), "tools": [tool()], "tool_choice": "always"}, "invalid_type",
         "tool_choice", "expected"),
    # service: tool_choice only with tools; a named function must be among the tools
    Case("tool-choice-without-tools", {"messages": user(), "tool_choice": "required"}, "invalid_value",
         "tool_choice", "only allowed when 'tools' are specified"),
    Case("tool-choice-unknown-function",
         {"messages": user(), "tools": [tool()], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
         "invalid_value", "tool_choice", "no function named 'nope'"),
    # service: function names in tools must be unique
    Case("tool-duplicate-name", {"messages": user(), "tools": [tool(), tool()]}, "invalid_value",
         "tools[1].function.name", "duplicate function name 'get_colour'"),
    Case("parallel-tool-calls-without-tools", {"messages": user(), "parallel_tool_calls": False}, "invalid_value",
         "parallel_tool_calls", "only allowed when 'tools'"),
    # --- messages (spec chatCompletionRequestToolMessage "required": ["role", "content", "tool_call_id"])
    Case("tool-message-without-id",
         {"messages": [*user(), {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "content": "red"}]},
         "missing_required_parameter", "messages[2].tool_call_id", "Missing required parameter"),
    # service: "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'"
    Case("tool-message-unprompted", {"messages": [*user(), {"role": "tool", "content": "red", "tool_call_id": "x"}]},
         None, "messages.[1].role", "must be a response to a preceeding message with 'tool_calls'"),
    # service: "An assistant message with 'tool_calls' must be followed by tool messages responding to each ..."
    Case("tool-calls-unanswered", {"messages": [*user(), {"role": "assistant", "tool_calls": [CALL]}, *user("and?")]},
         None, "messages.[1].role", "did not have response messages: call_1"),
    # spec chatCompletionRequestUserMessage "required": ["content", "role"]
    Case("user-without-content", {"messages": [{"role": "user"}]}, "invalid_value", "messages",
         "needs content"),
    # spec chatCompletionRequestMessageContentPartText "required": ["type", "text"]; no other keys
    Case("message-unknown-key", {"messages": [{"role": "user", "content": "hi", "mood": "happy"}]}, None,
         "messages[0]", "'mood' was unexpected"),
    # --- combinations
    # REFERENCE/service: max_tokens with max_completion_tokens -> invalid_parameter_combination
    Case("both-token-limits", {"messages": user(), "max_tokens": 10, "max_completion_tokens": 10},
         "invalid_parameter_combination", "max_tokens", "cannot both be set"),
    # spec top_logprobs: "`logprobs` must be set to `true` if this parameter is used"
    Case("top-logprobs-without-logprobs", {"messages": user(), "top_logprobs": 2}, "invalid_value", "top_logprobs",
         "'logprobs' must be set to true"),
    # spec chatCompletionStreamOptions: "Only set this when you set `stream: true`"
    Case("stream-options-without-stream", {"messages": user(), "stream_options": {"include_usage": True}},
         "invalid_value", "stream_options", "only allowed when 'stream' is enabled"),
    # docs (JSON mode): "you must also instruct the model to produce JSON yourself via a system or user message"
    Case("json-object-without-json", {"messages": user("hello"), "response_format": {"type": "json_object"}},
         "invalid_value", "messages", "must contain the word 'json'"),
    # --- structured outputs (docs "Structured outputs": supported schemas and limitations)
    # docs: "additionalProperties: false must always be set in objects"
    Case("strict-open-object",
         {"messages": user(), "response_format": schema_format({"type": "object", "properties": {"a": {"type": "string"}},
                                                                "required": ["a"]})},
         None, "response_format", "'additionalProperties' is required to be supplied and to be false"),
    # docs: "all fields must be required"
    Case("strict-optional-property",
         {"messages": user(), "response_format": schema_format({"type": "object", "properties": {"a": {"type": "string"},
                                                                "b": {"type": "string"}}, "required": ["a"],
                                                                "additionalProperties": False})},
         None, "response_format", "Missing 'b'"),
    # docs: "the root level object must be an object, not anyOf"
    Case("strict-root-anyof",
         {"messages": user(), "response_format": schema_format({"anyOf": [CLOSED, CLOSED]})},
         None, "response_format", "root schema must be an object"),
    # spec ResponseFormatJsonSchema json_schema.name: "a-z, A-Z, 0-9, or contain underscores and dashes, max 64"
    Case("json-schema-bad-name", {"messages": user(), "response_format": schema_format(CLOSED, name="my schema")},
         "invalid_value", "response_format.json_schema.name", "does not match pattern"),
    # spec ResponseFormatJsonSchema "required": ["name"] (inside json_schema)
    Case("json-schema-without-name",
         {"messages": user(), "response_format": {"type": "json_schema", "json_schema": {"schema": CLOSED}}},
         "missing_required_parameter", "response_format.json_schema.name", "Missing required parameter"),
    # spec response_format oneOf ResponseFormatText / JsonObject / JsonSchema
    Case("response-format-bad-type", {"messages": user(), "response_format": {"type": "yaml"}}, "invalid_value",
         "response_format.type", "Supported values are: 'text', 'json_object', and 'json_schema'"),
    # docs (function calling, strict mode) follow the Structured Outputs subset
    Case("strict-tool-open-object",
         {"messages": user(), "tools": [{"type": "function", "function": {"name": "f", "strict": True, "parameters": {
             "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}}]},
         "invalid_function_parameters", "tools[0].function.parameters", "additionalProperties"),
    # --- api-versions (docs "API version lifecycle"; service: 400 BadRequest "API version not supported")
    Case("version-2099", {"messages": user()}, "BadRequest", None, "API version not supported", version="2099-01-01"),
    Case("version-bad-date", {"messages": user()}, "BadRequest", None, "API version not supported",
         version="2024-13-45"),
    Case("version-unknown-preview", {"messages": user()}, "BadRequest", None, "API version not supported",
         version="2024-10-21-preview"),
    # spec stable/2024-06-01 has no max_completion_tokens (added in 2024-09-01-preview); service: unrecognized
    Case("max-completion-tokens-on-2024-06-01", {"messages": user(), "max_completion_tokens": 50}, None, None,
         "Unrecognized request argument supplied: max_completion_tokens", version="2024-06-01"),
    # spec stable/2024-06-01 ResponseFormat: text / json_object only (json_schema from 2024-08-01-preview);
    # service: 400 code BadRequest, no param (dotnet/extensions#6130, langgenius/dify#8994)
    Case("json-schema-on-2024-06-01", {"messages": user(), "response_format": schema_format(CLOSED)},
         "BadRequest", None, "json_schema is enabled only for api versions 2024-08-01-preview and later",
         version="2024-06-01"),
    # docs (reasoning models): developer messages from 2024-12-01-preview
    Case("developer-role-on-2024-10-21", {"messages": [{"role": "developer", "content": "be brief"}, *user()]},
         "invalid_value", "messages[0].role", "Supported values are"),
    # spec 2024-02-01 has no stream_options
    Case("stream-options-on-2024-02-01", {"messages": user(), "stream": True, "stream_options": {"include_usage": True}},
         None, None, "Unrecognized request argument supplied: stream_options", version="2024-02-01"),
    # --- reasoning deployments (docs "Azure OpenAI reasoning models": "not supported: temperature, top_p,
    #     presence_penalty, frequency_penalty, logprobs, top_logprobs, logit_bias, max_tokens")
    Case("reasoning-max-tokens", {"messages": user(), "max_tokens": 100}, "unsupported_parameter", "max_tokens",
         "Use 'max_completion_tokens' instead", deployment="o4-mini"),
    Case("reasoning-temperature", {"messages": user(), "temperature": 0.2}, "unsupported_value", "temperature",
         "Only the default (1) value is supported", deployment="o4-mini"),
    Case("reasoning-top-p", {"messages": user(), "top_p": 0.5}, "unsupported_value", "top_p", "Only the default",
         deployment="o3"),
    Case("reasoning-presence-penalty", {"messages": user(), "presence_penalty": 0.5}, "unsupported_parameter",
         "presence_penalty", "not supported with this model", deployment="o1"),
    Case("reasoning-logprobs", {"messages": user(), "logprobs": True}, "unsupported_parameter", "logprobs",
         "not supported with this model", deployment="gpt-5-mini"),
    Case("reasoning-logit-bias", {"messages": user(), "logit_bias": {"1": 1}}, "unsupported_parameter", "logit_bias",
         "not supported with this model", deployment="o4-mini"),
    # docs: reasoning_effort is a reasoning-model parameter
    Case("reasoning-effort-on-gpt-4o", {"messages": user(), "reasoning_effort": "low"}, "unsupported_parameter",
         "reasoning_effort", "not supported with this model", version="2024-12-01-preview"),
    # --- images (docs "quotas and limits": up to 10 images per request for GPT-4 Turbo with Vision, 20 MB each);
    #     a deployment named gpt-4 is GPT-4's default version, turbo-2024-04-09
    Case("eleven-images", {"messages": images(11)}, "BadRequest", "messages", "Too many images in request. Max is 10",
         deployment="gpt-4"),
    # spec image_url.detail enum auto/low/high
    Case("image-detail-bad", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": png_url(), "detail": "ultra"}}]}]}, "invalid_value", "messages",
        "'low', 'high' or 'auto'"),
    # --- v1 route: the body's model names the deployment (v1 spec CreateChatCompletionRequest "required": model)
    Case("v1-without-model", {"messages": user()}, "missing_required_parameter", "model", "'model'", version=None),
    # --- per-request quotas (docs quotas-limits: "Max number of messages per request 2,048", "Max size of a
    #     message 1,048,576 characters"); OpenAI's array/string length errors
    Case("messages-2049", {"messages": [{"role": "user", "content": "hi"}] * 2049}, "array_above_max_length",
         "messages", "maximum length 2048"),
    Case("message-too-long", {"messages": user("a" * 1_048_577)}, "string_above_max_length", "messages[0].content",
         "maximum length 1048576"),
    # --- assistant turns sent back (service: OpenAI's answers for a null content without tool calls, and for
    #     an empty tool_calls array)
    Case("assistant-without-content",
         {"messages": [*user(), {"role": "assistant", "content": None}, *user("and?")]}, None,
         "messages.[1].content", "expected a string, got null"),
    Case("assistant-empty-tool-calls",
         {"messages": [*user(), {"role": "assistant", "content": "red", "tool_calls": []}, *user("and?")]},
         "empty_array", "messages[1].tool_calls", "empty array"),
    # docs structured-outputs: "up to five levels of nesting" (here six objects below the root)
    Case("strict-nesting-6", {"messages": user(), "response_format": schema_format(nested(6))}, None,
         "response_format", "nested too deeply"),
    # --- model-dependent rules: deployments mapped to model versions (MAPPED below; rows of model_table.py)
    # docs models: gpt-4o 2024-11-20 "Output: 16,384"; service: "max_tokens is too large" (code null)
    Case("gpt-4o-max-tokens-16385", {"messages": user(), "max_tokens": 16_385}, None, "max_tokens",
         "This model supports at most 16384 completion tokens", deployment="fouro"),
    # docs reasoning: o4-mini "Output: 100,000"
    Case("o4-mini-max-completion-tokens", {"messages": user(), "max_completion_tokens": 100_001}, None,
         "max_completion_tokens", "at most 100000 completion tokens", deployment="o4mini"),
    # docs vision/models: gpt-35-turbo and o3-mini are text only; service: "Invalid content type" (code null)
    Case("image-to-gpt-35-turbo", {"messages": images(1)}, None, "messages.[0].content.[1].type",
         "image_url is only supported by certain models", deployment="turbo35"),
    Case("image-to-o3-mini", {"messages": images(1)}, None, "messages.[0].content.[1].type",
         "image_url is only supported by certain models", deployment="o3mini", version="2024-12-01-preview"),
    # docs reasoning (o-series tab): streaming '-' for o1; service: unsupported_value on 'stream'
    Case("stream-on-o1", {"messages": user(), "stream": True}, "unsupported_value", "stream",
         "'stream' does not support true with this model", deployment="o1dep", version="2024-12-01-preview"),
    # docs reasoning: o1-mini has no system/developer messages and no tools
    Case("system-on-o1-mini", {"messages": [{"role": "system", "content": "be brief"}, *user()]},
         "unsupported_value", "messages[0].role", "does not support 'system' with this model", deployment="o1mini"),
    Case("tools-on-o1-mini", {"messages": user(), "tools": [tool()]}, "unsupported_parameter", "tools",
         "'tools' is not supported with this model", deployment="o1mini"),
    # docs reasoning: parallel tool calls '-' on the o-series; service: unsupported_parameter
    Case("parallel-tool-calls-on-o3-mini", {"messages": user(), "tools": [tool()], "parallel_tool_calls": False},
         "unsupported_parameter", "parallel_tool_calls", "not supported with this model", deployment="o3mini",
         version="2024-12-01-preview"),
    # docs reasoning: "minimal" is a GPT-5 setting; o1-mini takes no reasoning_effort
    Case("reasoning-effort-minimal-on-o4-mini", {"messages": user(), "reasoning_effort": "minimal"},
         "unsupported_value", "reasoning_effort", "Supported values are: 'low', 'medium', and 'high'",
         deployment="o4mini", version="2025-04-01-preview"),
    Case("reasoning-effort-on-o1-mini", {"messages": user(), "reasoning_effort": "low"}, "unsupported_parameter",
         "reasoning_effort", "not supported with this model", deployment="o1mini", version="2024-12-01-preview"),
    # docs structured-outputs (supported models) and json-mode; service: "Invalid parameter: 'response_format'"
    Case("json-schema-on-gpt-4o-2024-05-13", {"messages": user(), "response_format": schema_format(CLOSED)}, None,
         "response_format", "of type 'json_schema' is not supported with this model", deployment="fouro-may"),
    Case("json-object-on-gpt-4-0613", {"messages": user(), "response_format": {"type": "json_object"}}, None,
         "response_format", "of type 'json_object' is not supported with this model", deployment="gpt4-0613"),
    # docs predicted-outputs: not with n > 1, tools, or a model outside its list (reasoning models)
    Case("prediction-with-n", {"messages": user(), "prediction": PREDICTION, "n": 2}, "unsupported_value", "n",
         "with predicted outputs", deployment="fouro", version="2025-01-01-preview"),
    Case("prediction-with-tools", {"messages": user(), "prediction": PREDICTION, "tools": [tool()]},
         "unsupported_parameter", "tools", "with predicted outputs", deployment="fouro",
         version="2025-01-01-preview"),
    Case("prediction-on-o4-mini", {"messages": user(), "prediction": PREDICTION}, "unsupported_parameter",
         "prediction", "not supported with this model", deployment="o4mini", version="2025-04-01-preview"),
    # docs reasoning: o1 came with 2024-12-01-preview; service: Azure's version gate (code BadRequest)
    Case("o1-on-2024-10-21", {"messages": user(), "max_completion_tokens": 100}, "BadRequest", None,
         "enabled only for api versions 2024-12-01-preview and later", deployment="o1dep"),
]


@pytest.fixture(scope="module")
def strict_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(models=MAPPED)) as server:  # any deployment exists; MAPPED ones are mapped
        yield server


def post(server: EmulatorServer, case_body: dict[str, Any], deployment: str, version: str | None) -> httpx.Response:
    if version is None:
        url = f"{server.url}/openai/v1/chat/completions"
    else:
        url = f"{server.url}/openai/deployments/{deployment}/chat/completions?api-version={version}"
    with httpx.Client(timeout=30, trust_env=False) as http:
        return http.post(url, json=case_body)


def test_table_has_at_least_40_rows() -> None:
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_request_gets_azures_answer(strict_server: EmulatorServer, case: Case) -> None:
    response = post(strict_server, case.body, case.deployment, case.version)
    assert response.status_code == case.status, response.text
    error = response.json()["error"]
    assert error.get("code") == case.code, error
    assert error.get("param") == case.param, error
    assert case.fragment in error["message"], error


def test_the_same_requests_pass_when_valid(strict_server: EmulatorServer) -> None:
    """Guard against a rule that refuses everything: the valid neighbours of the table's rows are answered."""
    valid = [
        ({"messages": user(), "temperature": 2, "top_p": 0, "n": 128, "stop": ["a", "b", "c", "d"], "seed": -5,
          "user": "u1", "logprobs": True, "top_logprobs": 20, "presence_penalty": -2, "logit_bias": {"1": -100}},
         "gpt-4o", V),
        ({"messages": user(), "max_completion_tokens": 50}, "o4-mini", V),
        ({"messages": user(), "temperature": 1, "reasoning_effort": "low"}, "o4-mini", "2024-12-01-preview"),
        ({"messages": [*user(), {"role": "assistant", "tool_calls": [CALL]},
                       {"role": "tool", "content": "red", "tool_call_id": "call_1"}], "tools": [tool()]}, "gpt-4o", V),
        ({"messages": user(), "response_format": schema_format(CLOSED)}, "gpt-4o", V),
        ({"messages": images(10)}, "gpt-4o", V),
        ({"messages": user(), "max_tokens": 20}, "gpt-4o", "2024-06-01"),
        ({"messages": [{"role": "developer", "content": "be brief"}, *user()]}, "o4-mini", "2025-04-01-preview"),
        # the model rows' limits, at their edge
        ({"messages": user(), "max_tokens": 16_384}, "fouro", V),
        ({"messages": user(), "max_completion_tokens": 100_000}, "o4mini", V),
        ({"messages": user(), "response_format": schema_format(nested(5))}, "gpt-4o", V),
        ({"messages": user(), "max_completion_tokens": 100}, "o1dep", "2024-12-01-preview"),
        ({"messages": user(), "max_completion_tokens": 100}, "o1mini", "2024-09-01-preview"),
        ({"messages": user(), "reasoning_effort": "minimal"}, "gpt-5", "2025-04-01-preview"),
        ({"messages": user(), "tools": [tool()], "parallel_tool_calls": False}, "gpt-5-mini", "2025-04-01-preview"),
        ({"messages": user(), "prediction": PREDICTION, "n": 1}, "fouro", "2025-01-01-preview"),
        ({"messages": user(), "response_format": {"type": "json_object"}}, "turbo35", V),
        ({"messages": [*user(), {"role": "assistant", "content": None, "refusal": "I can't."}, *user("ok")]},
         "gpt-4o", V),
        ({"messages": [{"role": "user", "content": "hi"}] * 2048}, "gpt-4o", V),
    ]
    for body, deployment, version in valid:
        response = post(strict_server, body, deployment, version)
        assert response.status_code == 200, (body, response.text)


RULE_ROWS = {
    "version_has_argument": "max-completion-tokens-on-2024-06-01",
    "version_has_response_format": "json-schema-on-2024-06-01",
    "version_has_roles_and_parts": "developer-role-on-2024-10-21",
    "one_token_limit": "both-token-limits",
    "reasoning_token_parameter": "reasoning-max-tokens",
    "reasoning_sampling": "reasoning-temperature",
    "reasoning_effort_needs_reasoning_model": "reasoning-effort-on-gpt-4o",
    "top_logprobs_needs_logprobs": "top-logprobs-without-logprobs",
    "stream_options_need_stream": "stream-options-without-stream",
    "tool_choice_needs_tools": "tool-choice-without-tools",
    "unique_tool_names": "tool-duplicate-name",
    "tool_messages_pair_with_calls": "tool-calls-unanswered",
    "strict_response_format": "strict-open-object",
    "strict_tools": "strict-tool-open-object",
    "model_serves_api_version": "o1-on-2024-10-21",
    "model_output_limit": "gpt-4o-max-tokens-16385",
    "model_takes_images": "image-to-gpt-35-turbo",
    "model_streams": "stream-on-o1",
    "model_takes_system_messages": "system-on-o1-mini",
    "model_takes_tools": "tools-on-o1-mini",
    "model_takes_parallel_tool_calls": "parallel-tool-calls-on-o3-mini",
    "model_reasoning_effort": "reasoning-effort-minimal-on-o4-mini",
    "model_response_format": "json-schema-on-gpt-4o-2024-05-13",
    "predicted_outputs": "prediction-with-n",
    "assistant_has_content": "assistant-without-content",
}


def test_every_rule_is_exercised_by_the_table() -> None:
    """Each hand-written rule has a row (so the count in the README is backed by tests)."""
    assert set(RULE_ROWS) == {rule.__name__ for rule in RULES}
    assert set(RULE_ROWS.values()) <= {case.id for case in CASES}


# ------------------------------------------------------------------------------------------------ switches


def test_lenient_api_versions_switch() -> None:
    with EmulatorServer(EmulatorConfig(lenient_api_versions=True)) as server:
        assert post(server, {"messages": user()}, "gpt-4o", "2099-01-01").status_code == 200
        assert post(server, {"messages": user()}, "gpt-4o", "2024-13-45").status_code == 400  # not a date


def test_lenient_rule_switch() -> None:
    body = {"messages": user(), "max_tokens": 10, "max_completion_tokens": 10}
    with EmulatorServer(EmulatorConfig(lenient_rules=("one_token_limit",))) as server:
        assert post(server, body, "gpt-4o", V).status_code == 200
    with pytest.raises(ValueError, match="unknown request rule"):
        EmulatorConfig(lenient_rules=("no_such_rule",))


def test_image_size_limit() -> None:
    big = "data:image/png;base64," + "A" * (2 * 1024 * 1024)  # 1.5 MB of payload
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": big}}]}]}
    with EmulatorServer(EmulatorConfig(max_image_bytes=1024 * 1024)) as server:
        error = post(server, body, "gpt-4o", V).json()["error"]
    assert (error["code"], error["param"]) == ("image_too_large", "messages") and "limit is 1 MB" in error["message"]


# ------------------------------------------------------------------------------------------------ deployments as models


@pytest.fixture(scope="module")
def mapped() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(deployments=["gpt-4o=gpt-4o-2024-11-20", "o4mini=o4-mini-2025-04-16", "plain"])
    with EmulatorServer(config) as server:
        yield server


def test_deployments_map_to_models(mapped: EmulatorServer) -> None:
    assert mapped.config.deployments == ["gpt-4o", "o4mini", "plain"]
    answer = post(mapped, {"messages": user()}, "gpt-4o", V).json()
    assert answer["model"] == "gpt-4o-2024-11-20"
    # a name that names no model is served as the default model, and answers with its versioned name
    assert post(mapped, {"messages": user()}, "plain", V).json()["model"] == "gpt-4o-2024-11-20"
    # the model decides the rules: "o4mini" does not look like a reasoning name, its model does
    error = post(mapped, {"messages": user(), "max_tokens": 5}, "o4mini", V).json()["error"]
    assert error["code"] == "unsupported_parameter"
    assert post(mapped, {"messages": user(), "max_completion_tokens": 500}, "o4mini", V).json()["model"] == (
        "o4-mini-2025-04-16"
    )
    # gpt-4o's documented image limit is higher than GPT-4 Turbo with Vision's 10
    assert post(mapped, {"messages": images(11)}, "gpt-4o", V).status_code == 200


def test_deployments_option_parses_mappings() -> None:
    from azmm_magic.emulator.__main__ import build_parser, config_from_args

    args = build_parser().parse_args(["--deployments", "gpt-4o=gpt-4o-2024-11-20,o4mini=o4-mini-2025-04-16"])
    config = config_from_args(args)
    assert config.deployments == ["gpt-4o", "o4mini"]
    assert config.models == {"gpt-4o": "gpt-4o-2024-11-20", "o4mini": "o4-mini-2025-04-16"}
    with pytest.raises(ValueError, match="NAME=MODEL-VERSION"):
        EmulatorConfig(deployments=["=gpt-4o"])


# ------------------------------------------------------------------------------------------------ acting on requests


def client(server: EmulatorServer) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version=V, max_retries=0)


def test_n_choices_and_usage(strict_server: EmulatorServer) -> None:
    three = client(strict_server).chat.completions.create(model="gpt-4o", messages=user(), n=3)
    assert [c.index for c in three.choices] == [0, 1, 2]
    (content,) = {c.message.content for c in three.choices}
    assert three.usage.completion_tokens == 3 * -(-len(content) // 4)
    assert three.usage.total_tokens == three.usage.prompt_tokens + three.usage.completion_tokens


def test_logprobs(strict_server: EmulatorServer) -> None:
    done = client(strict_server).chat.completions.create(model="gpt-4o", messages=user(), logprobs=True,
                                                          top_logprobs=3)
    content = done.choices[0].logprobs.content
    assert "".join(t.token for t in content) == done.choices[0].message.content
    assert all(len(t.top_logprobs) == 3 and t.top_logprobs[0].token == t.token and t.logprob <= 0 for t in content)
    plain = client(strict_server).chat.completions.create(model="gpt-4o", messages=user())
    assert plain.choices[0].logprobs is None


def test_forced_tool_call(strict_server: EmulatorServer) -> None:
    named = client(strict_server).chat.completions.create(
        model="gpt-4o", messages=user(), tools=[tool("other"), tool()],
        tool_choice={"type": "function", "function": {"name": "get_colour"}},
    )
    choice = named.choices[0]
    assert choice.message.content is None and choice.finish_reason == "stop"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_colour" and set(json.loads(call.function.arguments)) == {"colour"}
    required = client(strict_server).chat.completions.create(model="gpt-4o", messages=user(), tools=[tool()],
                                                             tool_choice="required")
    assert required.choices[0].finish_reason == "tool_calls"
    auto = client(strict_server).chat.completions.create(model="gpt-4o", messages=user(), tools=[tool()])
    assert auto.choices[0].message.tool_calls is None and auto.choices[0].message.content
    stream = client(strict_server).chat.completions.create(model="gpt-4o", messages=user(), tools=[tool()],
                                                           tool_choice="required", stream=True)
    arguments, names = "", []
    for chunk in stream:
        for c in chunk.choices:
            for delta in c.delta.tool_calls or ():
                arguments += delta.function.arguments or ""
                names += [delta.function.name] if delta.function.name else []
    assert names == ["get_colour"] and json.loads(arguments) == json.loads(required.choices[0].message.tool_calls[0]
                                                                            .function.arguments)


def test_async_content_filter_chunks() -> None:
    with EmulatorServer(EmulatorConfig(async_content_filter=True)) as server:
        stream = client(server).chat.completions.create(model="gpt-4o", messages=user(), stream=True)
        chunks = list(stream)
    annotations = [c for c in chunks if c.choices and c.choices[0].delta is None]
    assert annotations, "no delta-less annotation chunk"
    offsets = [c.choices[0].model_extra["content_filter_offsets"] for c in annotations]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].delta)
    assert offsets[-1]["end_offset"] == len(text) and offsets[0]["start_offset"] == 0


def test_headers_and_ids(strict_server: EmulatorServer) -> None:
    response = post(strict_server, {"messages": user()}, "gpt-4o", V)
    h = response.headers
    assert h["x-request-id"] != h["apim-request-id"]
    for name in ("limit-requests", "limit-tokens", "remaining-requests", "remaining-tokens", "reset-requests",
                 "reset-tokens"):
        assert h[f"x-ratelimit-{name}"]
    with EmulatorServer(EmulatorConfig(rpm=60, rate_window=1.0)) as limited:
        first = post(limited, {"messages": user()}, "gpt-4o", V).headers
        refused = post(limited, {"messages": user()}, "gpt-4o", "2024-06-01")
    assert first["x-ratelimit-limit-requests"] == "1" and first["x-ratelimit-reset-requests"].endswith("s")
    assert refused.status_code == 429 and "API version 2024-06-01" in refused.json()["error"]["message"]


def test_fault_429_names_the_request_api_version(strict_server: EmulatorServer) -> None:
    url = f"{strict_server.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-06-01"
    with httpx.Client(timeout=30, trust_env=False) as http:
        response = http.post(url, json={"messages": user()}, headers={"x-emulator-fault": "429"})
    assert response.status_code == 429 and "API version 2024-06-01" in response.json()["error"]["message"]


def test_file_upload_is_201_then_pending_then_processed() -> None:
    with EmulatorServer(EmulatorConfig(file_processing_delay=0.3)) as server:
        sdk = client(server)
        raw = sdk.files.with_raw_response.create(file=("in.jsonl", b'{"a": 1}\n', "application/jsonl"),
                                                 purpose="batch")
        assert raw.status_code == 201
        uploaded = raw.parse()
        assert uploaded.status == "pending"
        # the SDK's own poll (what a user's code calls), until the emulator's processing delay is over
        assert sdk.files.wait_for_processing(uploaded.id, poll_interval=0.05, max_wait_seconds=30).status == "processed"
