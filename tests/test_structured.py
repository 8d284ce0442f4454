"""Structured answers: --json and --schema (pydantic or JSON Schema) against the emulator's structured outputs."""

from __future__ import annotations

from typing import Literal

import httpx
import pytest
from IPython.core.error import UsageError
from pydantic import BaseModel

from azmm_magic import VisionClient
from azmm_magic.core.structured import StructuredOutputError, response_spec, strict_schema


class Size(BaseModel):
    width: int
    height: int


class Picture(BaseModel):
    colour: str
    brightness: Literal["dark", "medium", "bright"]
    size: Size
    tags: list[str]
    note: str | None = None


def test_strict_schema_closes_objects_and_requires_everything():
    spec = response_spec(Picture)
    fmt = spec.response_format()
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True and fmt["json_schema"]["name"] == "Picture"
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"colour", "brightness", "size", "tags", "note"}
    size = schema["$defs"]["Size"]
    assert size["additionalProperties"] is False and size["required"] == ["width", "height"]
    assert "default" not in schema["properties"]["note"]
    assert strict_schema({"type": "object", "properties": {"a": {"type": "string"}}})["required"] == ["a"]


def test_schema_round_trip_pydantic_through_the_magic(shell, emulator, red_png):
    shell.user_ns.update(img=str(red_png), Picture=Picture)
    out = shell.run_cell_magic("azure_vision", "-i img --schema Picture -o pic --no-stream", "Describe the picture.")
    assert isinstance(out.parsed, Picture)
    assert out.parsed.colour == "red" and out.parsed.size == Size(width=64, height=48)
    assert out.parsed.brightness in ("dark", "medium", "bright") and out.parsed.tags
    assert shell.user_ns["pic"] is out
    sent = emulator.chat_requests()[0]["body"]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"]["additionalProperties"] is False
    # a cache hit is re-parsed from the text (and streaming does not change the key)
    n = emulator.count()
    again = shell.run_cell_magic("azure_vision", "-i img --schema Picture", "Describe the picture.")
    assert emulator.count() == n and again.cached and again.parsed == out.parsed and again.parsed is not out.parsed


def test_json_schema_dict_gives_a_plain_dict(shell, emulator, red_png):
    shell.user_ns["img"] = str(red_png)
    shell.user_ns["schema"] = {
        "type": "object",
        "properties": {
            "colours": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "count": {"type": "integer", "minimum": 0},
            "kind": {"enum": ["photo", "chart", "drawing"]},
            "flags": {"type": "object", "properties": {"transparent": {"type": "boolean"}}},
        },
    }
    shell.run_cell_magic("azure_vision", "-i img --schema {schema} -o out", "What is in it?")  # streamed
    out = shell.user_ns["out"]
    assert type(out.parsed) is dict
    assert out.parsed["count"] == 1 and len(out.parsed["colours"]) == 2 and out.parsed["kind"] == "photo"
    assert isinstance(out.parsed["flags"]["transparent"], bool)


def test_json_object_mode(shell, emulator, red_png):
    shell.user_ns["img"] = str(red_png)
    out = shell.run_cell_magic("azure_vision", "-i img --json --no-stream", "Reply in JSON: what is it?")
    assert emulator.chat_requests()[0]["body"]["response_format"] == {"type": "json_object"}
    assert out.parsed["images"][0]["width"] == 64 and out.parsed["prompt"] == "Reply in JSON: what is it?"
    # like the real service, json_object needs the word JSON in the messages: one clear line
    with pytest.raises(UsageError, match="must contain the word 'json'"):
        shell.run_cell_magic("azure_vision", "-i img --json --no-stream", "What is it?")


def test_malformed_json_is_a_clear_error_with_the_raw_text_and_not_cached(emulator, red_png):
    http = httpx.Client(headers={"x-emulator-fault": "malformed-json"})
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none", http_client=http)
    with pytest.raises(StructuredOutputError) as info:
        client.ask("Describe.", images=[red_png], response_format=Picture)
    message = str(info.value)
    assert "not valid JSON" in message and "cut off on purpose" in message and len(message.splitlines()) == 1
    assert info.value.raw_text.startswith('{"answer"')
    assert len(client.cache) == 0  # the unparsable answer was not cached
    with pytest.raises(StructuredOutputError):  # streamed too
        list(client.stream("Describe as JSON.", images=[red_png], response_format="json"))
    http.close()


def test_malformed_json_through_the_magic_is_a_usage_error(shell, emulator, red_png):
    magics = shell.magics_manager.registry["AzureVision"]
    settings = magics.session_settings()
    http = httpx.Client(headers={"x-emulator-fault": "malformed-json"})
    magics._clients[settings] = VisionClient(settings, answer_cache=magics.cache_for(settings), ledger=magics.ledger,
                                             http_client=http)
    shell.user_ns.update(img=str(red_png), Picture=Picture)
    with pytest.raises(UsageError, match="Raw answer: '\\{\"answer\""):
        shell.run_cell_magic("azure_vision", "-i img --schema Picture --no-stream", "q")
    assert magics.answer_cache.stats().entries == 0
    http.close()


def test_answer_that_does_not_validate(emulator, red_png):
    class Strict(BaseModel):
        colour: Literal["blue"]

    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none")
    with pytest.raises(StructuredOutputError, match=r"does not match Strict \(colour"):
        # the emulator answers for the schema it was SENT; validate against a stricter model than the one sent
        request = client.prepare("q", [red_png], response_format={"type": "object", "properties": {"colour": {"type": "string"}}})
        from dataclasses import replace

        client.send(replace(request, response=response_spec(Strict)))


@pytest.mark.parametrize(
    "line, needle",
    [
        ("--schema Nope", "no variable named 'Nope'"),
        ("--schema number", "give a pydantic model class or a JSON Schema dict"),
        ("--json --schema Picture", "not both"),
        ("--schema baddict", "not a JSON Schema of an object"),
    ],
)
def test_schema_mistakes_send_nothing(shell, emulator, line, needle):
    shell.user_ns.update(number=3, Picture=Picture, baddict={"a": 1})
    with pytest.raises(UsageError, match=needle):
        shell.run_cell_magic("azure_vision", line, "q json")
    assert emulator.count() == 0


def test_emulator_instance_for_refs_anyof_const_and_bad_formats(emulator):
    import json as _json
    import urllib.error
    import urllib.request

    from azmm_magic.emulator.report import ChatFacts
    from azmm_magic.emulator.structured import instance_for

    facts = ChatFacts(message_count=1, last_user_text="q", system_text="", earlier_turns=0, text_chars=1)
    schema = {
        "type": "object",
        "properties": {
            "kind": {"const": "fixed"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "number", "minimum": 5}]},
            "item": {"$ref": "#/$defs/Item"},
            "list": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 2, "maxItems": 3},
        },
        "$defs": {"Item": {"type": "object", "properties": {"n": {"type": ["integer", "null"]}}}},
    }
    value = instance_for(schema, facts, "d")
    assert value == {"kind": "fixed", "maybe": 5.0, "item": {"n": 1}, "list": [{"n": 1}, {"n": 1}]}
    import jsonschema

    jsonschema.validate(value, schema)
    body = {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", "json_schema": {}}}
    req = urllib.request.Request(emulator.url + "/openai/deployments/d/chat/completions?api-version=2024-10-21",
                                 data=_json.dumps(body).encode(), headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 400 and "json_schema.name" in info.value.read().decode()
