"""The emulator never rejects what Azure accepts: a table of valid requests taken from Microsoft's documentation
samples (each row cites its page in MicrosoftDocs/azure-ai-docs, under articles/ai-foundry/openai/), each sent
over real HTTP and answered 200; and round trips where every kind of emulator answer is appended back with the
``openai`` SDK exactly as user code does (``message.model_dump()``, or the message object itself) and sent again.

The table of invalid requests, answered with Azure's errors, is tests/test_emulator_strict.py."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pydantic
import pytest
from PIL import Image

from azmm_magic.emulator import EmulatorConfig, EmulatorServer
from azmm_magic.emulator.models import describe_deployments

LATEST = "2025-04-01-preview"
FC = "how-to/function-calling.md"
SO = "how-to/structured-outputs.md"
SO_REST = "includes/structured-outputs-rest.md"
JM = "how-to/json-mode.md"
VI = "how-to/gpt-with-vision.md"
RE = "how-to/reasoning.md"
SC = "how-to/stored-completions.md"
PO = "how-to/predicted-outputs.md"
LC = "api-version-lifecycle.md"

# deployment names as the samples call them, mapped to the models the samples were written for
MAPPED = {"o1-new": "o1-2024-12-17", "o3-mini": "o3-mini-2025-01-31", "vision": "gpt-4o",
          "MODEL-DEPLOYMENT-NAME": "gpt-4o-2024-11-20"}


def png_url() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 30, 30)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def fn(name: str, description: str, properties: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": required}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters,
                                             **extra}}


LOCATION = {"type": "string", "description": "The city name, e.g. San Francisco"}
TIME_TOOL = fn("get_current_time", "Get the current time in a given location", {"location": LOCATION}, ["location"])
WEATHER_TOOL = fn("get_current_weather", "Get the current weather in a given location",
                  {"location": LOCATION, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, ["location"])
TIME_QUESTION = {"role": "user", "content": "What's the current time in San Francisco"}
BOTH_QUESTION = {"role": "user", "content": "What's the weather and current time in San Francisco, Tokyo, and Paris?"}


def call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def assistant_calls(*calls: dict[str, Any]) -> dict[str, Any]:
    """The assistant turn as the function-calling sample appends it: ``messages.append(response_message)``
    (the SDK sends the message it parsed from Azure's answer, nulls included)."""
    return {"role": "assistant", "content": None, "refusal": None, "function_call": None, "tool_calls": list(calls)}


def tool_reply(call_id: str, name: str, content: dict[str, Any]) -> dict[str, Any]:
    """The tool message of the function-calling sample: it carries ``name``."""
    return {"tool_call_id": call_id, "role": "tool", "name": name, "content": json.dumps(content)}


CITIES = ("San Francisco", "Tokyo", "Paris")
PARALLEL_CALLS = [call(f"call_w{i}", "get_current_weather", {"location": c, "unit": "celsius"})
                  for i, c in enumerate(CITIES)] + [call(f"call_t{i}", "get_current_time", {"location": c})
                                                    for i, c in enumerate(CITIES)]
WEATHER_STRICT = {
    "name": "get_weather", "description": "Fetches the weather in the given location", "strict": True,
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "The location to get the weather for"},
        "unit": {"type": "string", "description": "The unit to return the temperature in", "enum": ["F", "C"]}},
        "additionalProperties": False, "required": ["location", "unit"]},
}
WEATHER_NULLABLE = json.loads(json.dumps(WEATHER_STRICT))
WEATHER_NULLABLE["parameters"]["properties"]["unit"]["type"] = ["string", "null"]


def so_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


ANYOF_SCHEMA = {"type": "object", "properties": {"item": {"anyOf": [
    {"type": "object", "description": "The user object to insert into the database",
     "properties": {"name": {"type": "string", "description": "The name of the user"},
                    "age": {"type": "number", "description": "The age of the user"}},
     "additionalProperties": False, "required": ["name", "age"]},
    {"type": "object", "description": "The address object to insert into the database",
     "properties": {"number": {"type": "string"}, "street": {"type": "string"}, "city": {"type": "string"}},
     "additionalProperties": False, "required": ["number", "street", "city"]}]}},
    "additionalProperties": False, "required": ["item"]}
DEFS_SCHEMA = {"type": "object", "properties": {"steps": {"type": "array", "items": {"$ref": "#/$defs/step"}},
                                                "final_answer": {"type": "string"}},
               "$defs": {"step": {"type": "object", "properties": {"explanation": {"type": "string"},
                                                                   "output": {"type": "string"}},
                                  "required": ["explanation", "output"], "additionalProperties": False}},
               "required": ["steps", "final_answer"], "additionalProperties": False}
UI_SCHEMA = {"type": "object", "properties": {
    "type": {"type": "string", "description": "The type of the UI component",
             "enum": ["div", "button", "header", "section", "field", "form"]},
    "label": {"type": "string", "description": "The label of the UI component, used for buttons or form fields"},
    "children": {"type": "array", "description": "Nested UI components", "items": {"$ref": "#"}},
    "attributes": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                                               "value": {"type": "string"}},
                                              "additionalProperties": False, "required": ["name", "value"]}}},
    "required": ["type", "label", "children", "attributes"], "additionalProperties": False}
LINKED_LIST_SCHEMA = {"type": "object", "properties": {"linked_list": {"$ref": "#/$defs/linked_list_node"}},
                      "$defs": {"linked_list_node": {"type": "object", "properties": {
                          "value": {"type": "number"},
                          "next": {"anyOf": [{"$ref": "#/$defs/linked_list_node"}, {"type": "null"}]}},
                          "additionalProperties": False, "required": ["next", "value"]}},
                      "additionalProperties": False, "required": ["linked_list"]}
CALENDAR_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "date": {"type": "string"},
                                                    "participants": {"type": "array", "items": {"type": "string"}}},
                   "required": ["name", "date", "participants"], "additionalProperties": False}
EVENT_MESSAGES = [{"role": "system", "content": "Extract the event information."},
                  {"role": "user", "content": "Alice and Bob are going to a science fair on Friday."}]
QUERY_TOOL = {"type": "function", "function": {"name": "query", "description": "Execute a query.", "strict": True,
    "parameters": {"type": "object", "properties": {
        "table_name": {"type": "string", "enum": ["orders"]},
        "columns": {"type": "array", "items": {"type": "string", "enum": [
            "id", "status", "expected_delivery_date", "delivered_at", "shipped_at", "ordered_at", "canceled_at"]}},
        "conditions": {"type": "array", "items": {"type": "object", "properties": {
            "column": {"type": "string"},
            "operator": {"type": "string", "enum": ["=", ">", "<", ">=", "<=", "!="]},
            "value": {"anyOf": [{"type": "string"}, {"type": "number"},
                                {"type": "object", "properties": {"column_name": {"type": "string"}},
                                 "required": ["column_name"], "additionalProperties": False}]}},
            "required": ["column", "operator", "value"], "additionalProperties": False}},
        "order_by": {"type": "string", "enum": ["asc", "desc"]}},
        "required": ["table_name", "columns", "conditions", "order_by"], "additionalProperties": False}}}  # fmt: skip
ORDERS_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. The current date is August 6, 2024. You help users "
                                  "query for the data they are looking for by calling the query function."},
    {"role": "user", "content": "look up all my orders in may of last year that were fulfilled but not delivered on "
                                "time"},
]
FIZZBUZZ = ('\nfor number in range(1, 101):\n    if number % 3 == 0 and number % 5 == 0:\n        print("FizzBuzz")\n'
            '    elif number % 3 == 0:\n        print("Fizz")\n    elif number % 5 == 0:\n        print("Buzz")\n'
            '    else:\n        print(number)\n')
PREDICT = {"messages": [{"role": "user", "content": "\nReplace string `FizzBuzz` with `MSFTBuzz`. Respond only \nwith "
                                                   "code, and with no markdown formatting.\n"},
                        {"role": "user", "content": FIZZBUZZ}],
           "prediction": {"type": "content", "content": FIZZBUZZ}}
API_QUESTION = {"role": "user", "content": "What steps should I think about when writing my first Python API?"}
ENSEMBLE = ("Ensemble methods combine multiple machine learning models to create a more robust and accurate "
            "predictor. Common techniques include bagging, boosting, and stacking.")
LARK_TOOL = {"type": "custom", "name": "custom_tool", "custom": {"name": "lark_tool", "format": {
    "type": "grammar", "grammar": {"syntax": "lark", "definition": "start: QUESTION NEWLINE ANSWER\n"
                                   "QUESTION: /[^\\n?]{1,200}\\?/\nNEWLINE: /\\n/\nANSWER: /[^\\n!]{1,200}!/"}}}}
VISION_PARTS = [{"type": "text", "text": "Describe this picture:"},
                {"type": "image_url", "image_url": {"url": "https://example.com/picture.png"}}]


@dataclass
class Valid:
    id: str
    body: dict[str, Any]
    source: str  # page (and section) of the sample
    deployment: str | None = None  # None: the v1 route, the body's model names the deployment
    version: str = LATEST


VALID = [
    # --- function calling (FC: "Single tool/function calling example", "Parallel function calling ...")
    Valid("fc-single-first-call", {"model": "gpt-4o", "messages": [TIME_QUESTION], "tools": [TIME_TOOL],
                                   "tool_choice": "auto"}, f"{FC} single tool example, first call"),
    Valid("fc-single-second-call", {"model": "gpt-4o", "messages": [
        TIME_QUESTION, assistant_calls(call("call_pOsKdUlqvdyttYB67MOj434b", "get_current_time",
                                            {"location": "San Francisco"})),
        tool_reply("call_pOsKdUlqvdyttYB67MOj434b", "get_current_time",
                   {"location": "San Francisco", "current_time": "09:24 AM"})]},
          f"{FC} single tool example, second call (tool message with name, assistant turn appended back)"),
    Valid("fc-parallel-question", {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "What's the current time in San Francisco, Tokyo, and Paris?"}],
        "tools": [TIME_TOOL], "tool_choice": "auto"}, f"{FC} parallel calls with a single tool"),
    Valid("fc-two-tools-first-call", {"model": "gpt-4o", "messages": [BOTH_QUESTION],
                                      "tools": [WEATHER_TOOL, TIME_TOOL], "tool_choice": "auto"},
          f"{FC} parallel function calling with multiple functions, first call"),
    Valid("fc-two-tools-second-call", {"model": "gpt-4o", "messages": [
        BOTH_QUESTION, assistant_calls(*PARALLEL_CALLS),
        *(tool_reply(c["id"], c["function"]["name"], {"location": "x", "temperature": "10"}) for c in PARALLEL_CALLS)]},
          f"{FC} parallel function calling with multiple functions, second call (six tool messages)"),
    Valid("fc-tool-choice-none", {"model": "gpt-4o", "messages": [TIME_QUESTION], "tools": [TIME_TOOL],
                                  "tool_choice": "none"}, f"{FC} 'tool_choice: \"none\"'"),
    Valid("fc-tool-choice-named", {"model": "gpt-4o", "messages": [TIME_QUESTION], "tools": [TIME_TOOL],
                                   "tool_choice": {"type": "function", "function": {"name": "get_current_time"}}},
          f"{FC} 'force the model to call a specific function'"),
    Valid("fc-system-message-hotels", {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "You're an AI assistant designed to help users search for hotels. When a user "
                                      "asks for help finding a hotel, you should call the search_hotels function."},
        {"role": "user", "content": "Find me a hotel in Seattle, WA"}], "tools": [fn(
            "search_hotels", "Search hotels", {"location": {"type": "string", "description": "The location of the "
                                               "hotel. The location should include the city and the state's "
                                               "abbreviation (i.e. Seattle, WA or Miami, FL)"}}, ["location"])]},
          f"{FC} prompt engineering with functions"),
    # --- structured outputs (SO: supported schemas; SO_REST: getting started, function calling)
    Valid("so-strict-function", {"model": "gpt-4o", "messages": [TIME_QUESTION],
                                 "tools": [{"type": "function", "function": WEATHER_STRICT}]},
          f"{SO} 'All fields must be required'"),
    Valid("so-strict-function-nullable", {"model": "gpt-4o", "messages": [TIME_QUESTION],
                                          "tools": [{"type": "function", "function": WEATHER_NULLABLE}]},
          f"{SO} optional parameter as a union with null"),
    Valid("so-anyof", {"model": "gpt-4o", "messages": EVENT_MESSAGES, "response_format": so_format("item", ANYOF_SCHEMA)},
          f"{SO} 'Nested schemas using anyOf'"),
    Valid("so-defs", {"model": "gpt-4o", "messages": EVENT_MESSAGES, "response_format": so_format("steps", DEFS_SCHEMA)},
          f"{SO} 'Definitions are supported'"),
    Valid("so-recursive-root", {"model": "gpt-4o", "messages": EVENT_MESSAGES,
                                "response_format": so_format("ui", UI_SCHEMA)}, f"{SO} recursion with '#'"),
    Valid("so-recursive-defs", {"model": "gpt-4o", "messages": EVENT_MESSAGES,
                                "response_format": so_format("linked_list", LINKED_LIST_SCHEMA)},
          f"{SO} explicit recursion"),
    Valid("so-calendar-event", {"model": "YOUR_MODEL_DEPLOYMENT_NAME", "messages": EVENT_MESSAGES,
                                "response_format": so_format("CalendarEventResponse", CALENDAR_SCHEMA)},
          f"{SO_REST} getting started"),
    Valid("so-query-function", {"model": "YOUR_MODEL_DEPLOYMENT_NAME", "messages": ORDERS_MESSAGES,
                                "tools": [QUERY_TOOL]}, f"{SO_REST} function calling with structured outputs"),
    Valid("so-calendar-on-o3-mini", {"messages": EVENT_MESSAGES, "max_completion_tokens": 500,
                                     "response_format": so_format("CalendarEventResponse", CALENDAR_SCHEMA)},
          f"{SO} supported models: o3-mini 2025-01-31", deployment="o3-mini"),
    # --- JSON mode (JM: example)
    Valid("json-mode-python", {"model": "gpt-4o", "response_format": {"type": "json_object"}, "messages": [
        {"role": "system", "content": "You are a helpful assistant designed to output JSON."},
        {"role": "user", "content": "Who won the world series in 2020?"}]}, f"{JM} Python example"),
    Valid("json-mode-powershell", {"response_format": {"type": "json_object"}, "messages": [
        {"role": "system", "content": "You are a helpful assistant designed to output JSON."},
        {"role": "user", "content": "Who threw the final pitch during the world series each year from 1979 to 1989?"},
        {"role": "user", "content": "Respond using schema. response:{year, team, player, player_height}."}]},
          f"{JM} PowerShell example", deployment="gpt-35-turbo", version="2023-12-01-preview"),
    # --- vision (VI: REST body, Python call, local image, detail)
    Valid("vision-rest", {"model": "MODEL-DEPLOYMENT-NAME", "messages": [
        {"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": VISION_PARTS}],
        "max_tokens": 100, "stream": False}, f"{VI} REST sample body"),
    Valid("vision-python", {"model": "MODEL-DEPLOYMENT-NAME", "messages": [
        {"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": VISION_PARTS}],
        "max_tokens": 2000}, f"{VI} Python sample"),
    Valid("vision-local-image", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Describe this picture:"}, {"type": "image_url", "image_url": {"url": png_url()}}]}],
        "max_tokens": 2000}, f"{VI} 'Use a local image' (base64 data URL)", deployment="vision"),
    Valid("vision-detail-high", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Describe this picture:"},
        {"type": "image_url", "image_url": {"url": "https://example.com/picture.png", "detail": "high"}}]}],
        "max_completion_tokens": 2000}, f"{VI} 'Detail parameter settings'", deployment="vision",
          version="2024-10-21"),
    # --- reasoning (RE: usage, developer messages, C# samples, GPT-5 features)
    Valid("reasoning-o1-usage", {"messages": [API_QUESTION], "max_completion_tokens": 5000},
          f"{RE} Usage (Python, api-version 2025-03-01-preview)", deployment="o1-new", version="2025-03-01-preview"),
    Valid("reasoning-o1-developer", {"messages": [{"role": "developer", "content": "You are a helpful assistant."},
                                                  API_QUESTION], "max_completion_tokens": 5000,
                                     "reasoning_effort": "medium"},
          f"{RE} Developer messages (Python)", deployment="o1-new"),
    Valid("reasoning-o3-mini-csharp", {"messages": [{"role": "user", "content": "Testing 1,2,3"}],
                                       "max_completion_tokens": 100000}, f"{RE} Usage (C#, MaxOutputTokenCount)",
          deployment="o3-mini"),
    Valid("reasoning-o3-mini-effort-csharp", {"messages": [
        {"role": "developer", "content": "You are a helpful assistant."}, {"role": "user", "content": "Testing 1,2,3"}],
        "reasoning_effort": "low", "max_completion_tokens": 100000}, f"{RE} Developer messages (C#)",
          deployment="o3-mini"),
    Valid("reasoning-o4-mini-system", {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                                                    API_QUESTION], "max_completion_tokens": 5000, "stream": True},
          f"{RE} o-series table: system messages (treated as developer) and streaming on o4-mini", deployment="o4-mini"),
    Valid("reasoning-o1-output-appended", {"messages": [API_QUESTION, {
        "content": "Writing your first Python API is an exciting step...", "refusal": None, "role": "assistant",
        "function_call": None, "tool_calls": None}, {"role": "user", "content": "Go on."}],
        "max_completion_tokens": 5000}, f"{RE} Python output's message, appended back", deployment="o1-new"),
    Valid("reasoning-gpt-5-lark", {"model": "gpt-5-2025-08-07", "messages": [
        {"role": "user", "content": "Which one is larger, 42 or 0?"}], "tools": [LARK_TOOL], "tool_choice": "required"},
          f"{RE} Python lark, Chat Completions"),
    Valid("reasoning-gpt-5-minimal-verbosity", {"model": "gpt-5", "messages": [API_QUESTION],
                                                "reasoning_effort": "minimal", "verbosity": "low"},
          f"{RE} 'NEW GPT-5 reasoning features' (reasoning_effort minimal, verbosity)"),
    # --- stored completions (SC: configure stored completions)
    Valid("stored-python", {"model": "gpt-4o", "store": True, "metadata": {"user": "admin", "category": "docs-test"},
                            "messages": [{"role": "system", "content": "Provide a clear and concise summary of the "
                                          "technical content, highlighting key concepts and their relationships."},
                                         {"role": "user", "content": ENSEMBLE}]}, f"{SC} Python"),
    Valid("stored-rest", {"model": "gpt-4o", "store": True, "messages": [
        {"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello!"}]},
          f"{SC} REST API"),
    Valid("stored-on-2024-12-01-preview", {"store": True, "metadata": {"user": "admin"}, "messages": [
        {"role": "user", "content": "Hello!"}]}, f"{LC} 2024-12-01-preview: store and metadata",
          deployment="gpt-4o", version="2024-12-01-preview"),
    Valid("stored-output-appended", {"model": "gpt-4o", "messages": [
        {"role": "user", "content": ENSEMBLE},
        {"content": "Ensemble methods enhance machine learning performance...", "refusal": None, "role": "assistant",
         "audio": None, "function_call": None, "tool_calls": None}, {"role": "user", "content": "Shorter, please."}]},
          f"{SC} Output's message (audio, function_call, tool_calls null), appended back"),
    # --- predicted outputs (PO: getting started, streaming)
    Valid("predicted", {"model": "gpt-4o-mini", **PREDICT}, f"{PO} getting started"),
    Valid("predicted-stream", {"model": "gpt-4o-mini", **PREDICT, "stream": True}, f"{PO} Streaming"),
    Valid("predicted-on-2025-01-01-preview", PREDICT, f"{PO} 'First introduced in 2025-01-01-preview'",
          deployment="gpt-4o", version="2025-01-01-preview"),
    # --- api-versions (LC: "Changes between 2024-12-01-preview and 2024-10-01-preview")
    Valid("user-security-context-2024-12-01-preview", {"messages": [{"role": "user", "content": "Hello!"}],
                                                       "user_security_context": {
        "application_name": "Contoso", "end_user_id": "user-1", "end_user_tenant_id": "tenant-1",
        "source_ip": "203.0.113.7"}}, f"{LC} user_security_context added in 2024-12-01-preview",
          deployment="gpt-4o", version="2024-12-01-preview"),
    Valid("reasoning-effort-2024-12-01-preview", {"messages": [API_QUESTION], "reasoning_effort": "high",
                                                  "max_completion_tokens": 5000},
          f"{LC} reasoning_effort added in 2024-12-01-preview", deployment="o1-new", version="2024-12-01-preview"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(models=MAPPED)) as running:
        yield running


def post(server: EmulatorServer, row: Valid) -> httpx.Response:
    if row.deployment is None:
        url = f"{server.url}/openai/v1/chat/completions"
    else:
        url = f"{server.url}/openai/deployments/{row.deployment}/chat/completions?api-version={row.version}"
    with httpx.Client(timeout=30, trust_env=False) as http:
        return http.post(url, json=row.body)


def test_table_has_at_least_30_rows_with_sources() -> None:
    assert len(VALID) >= 30 and len({r.id for r in VALID}) == len(VALID)
    assert all(r.source.split()[0].endswith(".md") for r in VALID)


@pytest.mark.parametrize("row", VALID, ids=[r.id for r in VALID])
def test_documented_request_is_accepted(server: EmulatorServer, row: Valid) -> None:
    response = post(server, row)
    assert response.status_code == 200, (row.source, response.text)
    if row.body.get("stream"):
        assert response.text.rstrip().endswith("data: [DONE]")
    else:
        model = response.json()["model"]
        assert re.search(r"-(\d{4}-\d{2}-\d{2}|\d{4})$", model), model  # a versioned name, as Azure answers


# ------------------------------------------------------------------------------------------------ round trips


class Colour(pydantic.BaseModel):
    colour: str
    width: int


COLOUR_SCHEMA = {"type": "object", "properties": {"colour": {"type": "string"}, "width": {"type": "integer"}},
                 "required": ["colour", "width"], "additionalProperties": False}
COLOUR_TOOL = {"type": "function", "function": {"name": "get_colour", "strict": True, "parameters": COLOUR_SCHEMA}}


def question() -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": [
        {"type": "text", "text": "What colour is this picture?"}, {"type": "image_url", "image_url": {"url": png_url()}}]}]


def clients(server: EmulatorServer) -> list[tuple[str, openai.OpenAI]]:
    classic = openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version=LATEST, max_retries=0)
    v1 = openai.OpenAI(base_url=f"{server.url}/openai/v1/", api_key="k", max_retries=0)
    return [("classic", classic), ("v1", v1)]


def send_back(sdk: openai.OpenAI, messages: list[Any], **kwargs: Any) -> None:
    """The next turn, as user code sends it: the appended assistant turn, any tool replies, one more question."""
    follow = sdk.chat.completions.create(model="gpt-4o", messages=[*messages, {"role": "user", "content": "Thanks."}],
                                         **kwargs)
    assert follow.choices[0].message.content


def tool_replies(message: Any) -> list[dict[str, Any]]:
    return [{"role": "tool", "tool_call_id": c.id, "name": c.function.name, "content": '{"ok": true}'}
            for c in message.tool_calls or ()]


def every_answer(sdk: openai.OpenAI) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(kind, the SDK's assistant message, the request's extra arguments for the next turn) for every kind of
    emulator answer."""
    base: dict[str, Any] = {"model": "gpt-4o", "messages": question()}
    yield "plain", sdk.chat.completions.create(**base).choices[0].message, {}
    forced = sdk.chat.completions.create(**base, tools=[COLOUR_TOOL], tool_choice="required")
    yield "tool calls", forced.choices[0].message, {"tools": [COLOUR_TOOL]}
    structured = sdk.chat.completions.create(**base, response_format=so_format("Colour", COLOUR_SCHEMA))
    yield "structured", structured.choices[0].message, {}
    parsed = sdk.chat.completions.parse(**base, response_format=Colour)
    assert isinstance(parsed.choices[0].message.parsed, Colour)
    yield "parsed", parsed.choices[0].message, {}
    parsed_tool = sdk.chat.completions.parse(**base, tools=[openai.pydantic_function_tool(Colour)],
                                             tool_choice="required")
    yield "parsed tool calls", parsed_tool.choices[0].message, {"tools": [openai.pydantic_function_tool(Colour)]}
    two = sdk.chat.completions.create(**base, n=2)
    yield "n=2 (second choice)", two.choices[1].message, {}
    probs = sdk.chat.completions.create(**base, logprobs=True, top_logprobs=2)
    assert probs.choices[0].logprobs is not None
    yield "logprobs", probs.choices[0].message, {}
    reasoning = sdk.chat.completions.create(model="o4-mini", messages=question(), max_completion_tokens=500)
    yield "reasoning", reasoning.choices[0].message, {}
    with sdk.chat.completions.stream(**base) as stream:
        yield "streamed (stream helper)", stream.get_final_completion().choices[0].message, {}
    with sdk.chat.completions.stream(**base, tools=[COLOUR_TOOL], tool_choice="required") as stream:
        yield "streamed tool calls", stream.get_final_completion().choices[0].message, {"tools": [COLOUR_TOOL]}


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # the SDK's own, dumping a parsed message
def test_every_answer_appended_back_with_model_dump_is_accepted(server: EmulatorServer) -> None:
    """``messages.append(response.choices[0].message.model_dump())``: nulls, refusal, annotations, parsed..."""
    for name, sdk in clients(server):
        kinds = []
        for kind, message, extra in every_answer(sdk):
            dumped = message.model_dump()
            assert "tool_calls" in dumped and "refusal" in dumped and "annotations" in dumped  # as the SDK dumps it
            send_back(sdk, [*question(), dumped, *tool_replies(message)], **extra)
            kinds.append(kind)
        assert len(kinds) == 10, (name, kinds)


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_every_answer_appended_back_as_the_sdk_object_is_accepted(server: EmulatorServer) -> None:
    """``messages.append(response_message)`` (the function-calling sample): the SDK serialises the object."""
    sdk = clients(server)[0][1]
    for _kind, message, extra in every_answer(sdk):
        send_back(sdk, [*question(), message, *tool_replies(message)], **extra)


def test_a_stream_reassembled_by_hand_is_accepted(server: EmulatorServer) -> None:
    """Deltas joined into ``{"role": "assistant", "content": text}``, tool-call deltas into ``tool_calls``."""
    for _name, sdk in clients(server):
        text = "".join(c.choices[0].delta.content or "" for c in sdk.chat.completions.create(
            model="gpt-4o", messages=question(), stream=True, stream_options={"include_usage": True}) if c.choices)
        send_back(sdk, [*question(), {"role": "assistant", "content": text}])
        calls: dict[int, dict[str, Any]] = {}
        for chunk in sdk.chat.completions.create(model="gpt-4o", messages=question(), stream=True,
                                                 tools=[COLOUR_TOOL], tool_choice="required"):
            for delta in (chunk.choices[0].delta.tool_calls or ()) if chunk.choices and chunk.choices[0].delta else ():
                entry = calls.setdefault(delta.index, {"id": "", "type": "function",
                                                       "function": {"name": "", "arguments": ""}})
                entry["id"] += delta.id or ""
                entry["function"]["name"] += (delta.function.name or "") if delta.function else ""
                entry["function"]["arguments"] += (delta.function.arguments or "") if delta.function else ""
        assistant = {"role": "assistant", "content": None, "tool_calls": list(calls.values())}
        replies = [{"role": "tool", "tool_call_id": c["id"], "content": "{}"} for c in calls.values()]
        send_back(sdk, [*question(), assistant, *replies], tools=[COLOUR_TOOL])


# ------------------------------------------------------------------------------------------------ deployments


def test_unmapped_deployments_answer_with_a_versioned_model(server: EmulatorServer) -> None:
    sdk = clients(server)[0][1]
    assert sdk.chat.completions.create(model="gpt-4o", messages=question()).model == "gpt-4o-2024-11-20"
    assert sdk.chat.completions.create(model="gpt-4o-mini-eu", messages=question()).model == "gpt-4o-mini-2024-07-18"
    assert sdk.chat.completions.create(model="o4-mini", messages=question(),
                                       max_completion_tokens=100).model == "o4-mini-2025-04-16"
    assert sdk.chat.completions.create(model="team-vision", messages=question()).model == "gpt-4o-2024-11-20"


def test_start_up_says_what_each_deployment_is_served_as() -> None:
    config = EmulatorConfig(deployments=["gpt-4o", "x=o4-mini", "y=gpt-4.1-mini-2025-04-14", "plain", "z=my-ft-1"],
                            default_model="gpt-4.1-2025-04-14")
    lines = describe_deployments(config)
    assert lines[0].startswith("deployment gpt-4o: served as gpt-4o-2024-11-20")
    assert "x: o4-mini is served as o4-mini-2025-04-16, its current default version" in lines[1]
    assert lines[2] == "deployment y: model gpt-4.1-mini-2025-04-14"
    assert "plain: no model in its name, served as gpt-4.1-2025-04-14" in lines[3]
    assert "my-ft-1 is not in the emulator's model table" in lines[4]
    with pytest.raises(ValueError, match="default_model"):
        EmulatorConfig(default_model="gpt-4o")  # a versioned model, not a family


def test_command_line_maps_a_bare_model_and_says_so() -> None:
    from azmm_magic.emulator.__main__ import build_parser, config_from_args

    args = build_parser().parse_args(["--deployments", "chat=gpt-4o-mini", "--default-model", "gpt-4.1-2025-04-14"])
    config = config_from_args(args)
    assert config.default_model == "gpt-4.1-2025-04-14"
    assert describe_deployments(config) == [
        "deployment chat: gpt-4o-mini is served as gpt-4o-mini-2024-07-18, its current default version (map "
        "chat=gpt-4o-mini-VERSION to choose another)"]


def test_the_user_page_lists_every_model_of_the_table() -> None:
    from pathlib import Path

    from azmm_magic.emulator.model_table import MODELS

    page = (Path(__file__).parent.parent / "docs" / "emulator-models.md").read_text("utf-8")
    assert all(f"| `{spec.id}`" in page for spec in MODELS)
    assert all(spec.source for spec in MODELS)  # every row says where it comes from
