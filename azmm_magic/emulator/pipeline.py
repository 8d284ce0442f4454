"""One chat request, from validated body to :class:`~.answers.Answer`: shared by the chat routes (:mod:`.app`)
and the Batch API's per-line answers (:mod:`.batches`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .answers import Answer, completion_id, forced_tool_calls, with_n
from .models import ModelProfile, profile_for
from .report import ChatFacts, apply_token_cap, check_messages, render_report, usage_for
from .structured import pixel_note, structured_content
from .validation import check_images, context_for, token_cap, validate_chat

__all__ = ["Prepared", "make_answer", "prepare"]


@dataclass(frozen=True)
class Prepared:
    """A request that passed validation."""

    profile: ModelProfile
    cap: int | None  # completion-token cap
    include_usage: bool


def prepare(config: Any, body: Mapping[str, Any], deployment: str, api_version: str | None) -> Prepared:
    """Validate ``body`` for ``deployment`` like Azure (raises ``RequestError``); nothing is decoded yet."""
    profile = profile_for(config, deployment)
    check_messages(body)
    validate_chat(body, context_for(profile, api_version), lenient_rules=frozenset(config.lenient_rules))
    check_images(body, profile, max_image_bytes=config.max_image_bytes)
    options = body.get("stream_options") or {}
    include_usage = bool(body.get("stream") and options.get("include_usage"))
    return Prepared(profile, token_cap(body), include_usage)


def make_answer(body: Mapping[str, Any], facts: ChatFacts, prepared: Prepared, *, malformed: bool = False) -> Answer:
    """The deterministic answer to a validated request."""
    deployment = prepared.profile.deployment
    answer_id = completion_id(deployment, body)
    n = int(body.get("n") or 1)
    forced = forced_tool_calls(body, facts, deployment, answer_id)
    if forced is not None:
        calls, finish = forced
        arguments = "".join(c["function"]["arguments"] for c in calls)
        usage = with_n(usage_for(facts, arguments), n)
        return Answer(answer_id, int(time.time()), prepared.profile.model, "", finish, usage, n=n, tool_calls=calls)
    from_pixels: list[str] = []
    content = structured_content(body, facts, deployment=deployment, malformed=malformed, from_pixels=from_pixels)
    if content is None:
        content = render_report(facts, deployment=deployment)
    content, finish = apply_token_cap(content, prepared.cap)
    logprobs = body.get("logprobs") is True
    return Answer(answer_id, int(time.time()), prepared.profile.model, content, finish,
                  with_n(usage_for(facts, content), n), n=n, logprobs=logprobs,
                  top_logprobs=int(body.get("top_logprobs") or 0) if logprobs else 0, note=pixel_note(from_pixels))
