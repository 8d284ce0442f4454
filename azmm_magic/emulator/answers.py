"""The emulator's answer bodies: ``chat.completion`` and the ``chat.completion.chunk`` stream, as Azure sends them.

Acts on what Azure acts on: ``n`` choices, ``logprobs`` / ``top_logprobs`` (deterministic token log
probabilities), a forced tool (``tool_choice`` naming a function, or ``"required"``) answered with a
``tool_calls`` message whose arguments are built from the tool's parameter schema, and, when
``EmulatorConfig.async_content_filter`` is on, the delta-less content-filter annotation chunks Azure's
asynchronous filter mode puts into streams.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .report import ChatFacts, split_for_stream
from .structured import instance_for

__all__ = [
    "Answer",
    "completion_body",
    "completion_id",
    "filter_results",
    "forced_tool_calls",
    "prompt_filter_results",
    "stream_chunks",
    "with_n",
]

_TOKEN = re.compile(r"\s*\S+|\s+")
FINGERPRINT = "fp_azmm_emulator"


@dataclass(frozen=True)
class Answer:
    """A finished answer, ready to be sent whole or streamed."""

    id: str
    created: int
    model: str  # the ``model`` field: the deployment's model version (or the deployment name when unmapped)
    content: str
    finish_reason: str
    usage: dict[str, Any]
    n: int = 1
    logprobs: bool = False
    top_logprobs: int = 0
    tool_calls: tuple[dict[str, Any], ...] = field(default=())
    note: str = ""  # what the answer is made of, when worth saying (sent as the ``x-emulator-note`` header)

    @property
    def deployment(self) -> str:
        """Older name of :attr:`model`."""
        return self.model


def filter_results() -> dict[str, Any]:
    """Azure's per-category content filter verdicts, all ``safe``."""
    return {name: {"filtered": False, "severity": "safe"} for name in ("hate", "self_harm", "sexual", "violence")}


def prompt_filter_results() -> list[dict[str, Any]]:
    """Azure's top-level ``prompt_filter_results``."""
    results = {**filter_results(), "jailbreak": {"filtered": False, "detected": False}}
    return [{"prompt_index": 0, "content_filter_results": results}]


def completion_id(deployment: str, body: Mapping[str, Any]) -> str:
    """A deterministic id: the same request always gets the same ``chatcmpl-emu-...``."""
    canonical = json.dumps([deployment, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "chatcmpl-emu-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


def forced_tool_calls(body: Mapping[str, Any], facts: ChatFacts, deployment: str, answer_id: str
                      ) -> tuple[tuple[dict[str, Any], ...], str] | None:
    """The ``tool_calls`` (and finish reason) when ``tool_choice`` forces a tool, else None.

    A named function gets ``finish_reason: "stop"`` (OpenAI's documented behaviour for a forced named function),
    ``"required"`` calls the first tool and finishes with ``"tool_calls"``."""
    choice = body.get("tool_choice")
    tools = [t["function"] for t in body.get("tools") or () if t.get("type") == "function"]  # custom tools: no call
    if not tools or choice in (None, "none", "auto"):
        return None
    if isinstance(choice, Mapping):
        function = next(f for f in tools if f["name"] == choice["function"]["name"])
        finish = "stop"
    else:
        function, finish = tools[0], "tool_calls"
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    arguments = json.dumps(instance_for(parameters, facts, deployment), ensure_ascii=False, separators=(",", ":"))
    call_id = "call_" + hashlib.sha256(f"{answer_id}:{function['name']}".encode()).hexdigest()[:24]
    call = {"id": call_id, "type": "function", "function": {"name": function["name"], "arguments": arguments}}
    return (call,), finish


def _token_logprobs(text: str, top: int) -> list[dict[str, Any]]:
    """Deterministic per-token log probabilities for ``text`` (``top`` alternatives each)."""
    out = []
    for token in _TOKEN.findall(text):
        chosen = -round(0.001 * (1 + sum(token.encode()) % 97), 6)
        alternatives = [{"token": token, "logprob": chosen, "bytes": list(token.encode("utf-8"))}]
        for k in range(1, top):
            alt = f"{token}{'·' * k}"
            alternatives.append({"token": alt, "logprob": round(chosen - 1.5 * k, 6), "bytes": list(alt.encode("utf-8"))})
        out.append({"token": token, "logprob": chosen, "bytes": list(token.encode("utf-8")),
                    "top_logprobs": alternatives[:top]})
    return out


def _logprobs(answer: Answer, text: str) -> dict[str, Any] | None:
    if not answer.logprobs:
        return None
    return {"content": _token_logprobs(text, answer.top_logprobs), "refusal": None}


def completion_body(answer: Answer) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` JSON body."""
    choices = []
    for index in range(answer.n):
        message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": None}
        if answer.tool_calls:
            message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": list(answer.tool_calls)}
        choices.append({
            "index": index,
            "finish_reason": answer.finish_reason,
            "logprobs": None if answer.tool_calls else _logprobs(answer, answer.content),
            "message": message,
            "content_filter_results": filter_results(),
        })
    return {
        "id": answer.id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "system_fingerprint": FINGERPRINT,
        "prompt_filter_results": prompt_filter_results(),
        "choices": choices,
        "usage": answer.usage,
    }


def _annotation(index: int, start: int, end: int) -> dict[str, Any]:
    """Azure's asynchronous-filter annotation chunk (no ``delta``): the verdict for ``start..end`` of the text."""
    return {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [{
            "index": index,
            "finish_reason": None,
            "content_filter_results": filter_results(),
            "content_filter_offsets": {"check_offset": start, "start_offset": start, "end_offset": end},
        }],
    }


def stream_chunks(answer: Answer, *, include_usage: bool, async_filter: bool = False) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` sequence Azure sends for a streamed answer (without ``[DONE]``)."""
    base = {
        "id": answer.id,
        "object": "chat.completion.chunk",
        "created": answer.created,
        "model": answer.model,
        "system_fingerprint": FINGERPRINT,
    }
    if include_usage:
        base["usage"] = None

    def chunk(index: int, delta: dict[str, Any], finish: str | None, filters: dict[str, Any] | None,
              logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": logprobs}
        if filters is not None:
            choice["content_filter_results"] = filters
        return {**base, "choices": [choice]}

    chunks: list[dict[str, Any]] = [
        {"id": "", "object": "", "created": 0, "model": "", "choices": [], "prompt_filter_results": prompt_filter_results()}
    ]
    pieces = [] if answer.tool_calls else split_for_stream(answer.content)
    for index in range(answer.n):
        if answer.tool_calls:
            calls = [{"index": i, "id": c["id"], "type": "function", "function": {"name": c["function"]["name"],
                      "arguments": ""}} for i, c in enumerate(answer.tool_calls)]  # fmt: skip
            chunks.append(chunk(index, {"role": "assistant", "content": None, "tool_calls": calls, "refusal": None},
                                None, {}))
            for i, call in enumerate(answer.tool_calls):
                chunks.append(chunk(index, {"tool_calls": [{"index": i, "function": {"arguments": call["function"]["arguments"]}}]},
                                    None, {}))  # fmt: skip
            chunks.append(chunk(index, {}, answer.finish_reason, {}))
            continue
        chunks.append(chunk(index, {"role": "assistant", "content": "", "refusal": None}, None, {}))
        offset = checked = 0
        for number, piece in enumerate(pieces):
            logprobs = _logprobs(answer, piece)
            chunks.append(chunk(index, {"content": piece}, None, None if async_filter else filter_results(), logprobs))
            offset += len(piece)
            if async_filter and number % 4 == 3:
                chunks.append(_annotation(index, checked, offset))
                checked = offset
        chunks.append(chunk(index, {}, answer.finish_reason, None if async_filter else {}))
        if async_filter:
            chunks.append(_annotation(index, checked, offset))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": answer.usage})
    return chunks


def with_n(usage: dict[str, Any], n: int) -> dict[str, Any]:
    """``usage`` for ``n`` choices (the completion is counted once per choice)."""
    if n <= 1:
        return usage
    completion = usage["completion_tokens"] * n
    out = dict(usage, completion_tokens=completion, total_tokens=usage["prompt_tokens"] + completion)
    return out
