"""The models the emulator knows: per model version, what Azure OpenAI's chat completions accept.

One :class:`ModelSpec` per row; every row names the Microsoft documentation it comes from (paths in the public
``MicrosoftDocs/azure-ai-docs`` repository, under ``articles/ai-foundry/openai/``; they are the pages of
learn.microsoft.com/azure/ai-foundry/openai/). The validator (:mod:`.validation`) reads a deployment's row to
refuse what that model refuses, with the status, ``code`` and ``param`` Azure answers with. Where the pages
disagree or say nothing, the row takes the side that accepts (a false rejection is the worse bug).

Sources (short names used in the rows):

- ``models``: ``concepts/models.md`` (capabilities and "Max Request" output-token limits)
- ``reasoning``: ``how-to/reasoning.md`` ("API & feature support" tables of the GPT-5 and o-series models)
- ``structured``: ``how-to/structured-outputs.md`` ("Supported models")
- ``predicted``: ``how-to/predicted-outputs.md`` ("Model support", "Unsupported features")
- ``vision``: ``how-to/gpt-with-vision.md`` (the vision-enabled model families)
- ``json-mode``: ``how-to/json-mode.md`` (JSON mode from ``2023-12-01-preview``; GPT-4 ``0613`` has none)
- ``retired``: ``concepts/legacy-models.md`` (retired models; their rows keep deployments named after them from
  being taken for a newer model of the same prefix)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_MODEL", "MODELS", "ModelSpec", "find_model", "family_of_name"]

EFFORTS = ("low", "medium", "high")
GPT5_EFFORTS = ("minimal", "low", "medium", "high")


@dataclass(frozen=True)
class ModelSpec:
    """What one model version accepts on the chat completions API."""

    family: str  # the model name Azure deploys, e.g. ``gpt-4o``
    version: str  # e.g. ``2024-11-20``
    vision: bool  # image_url parts accepted
    reasoning: bool  # max_completion_tokens only, no sampling parameters
    max_output: int | None  # output-token limit (None: only the context window bounds it)
    json_object: bool = True
    json_schema: bool = True
    tools: bool = True
    parallel_tool_calls: bool = True  # the ``parallel_tool_calls`` parameter is accepted
    system_message: bool = True  # system and developer messages
    streaming: bool = True
    efforts: tuple[str, ...] = ()  # reasoning_effort values taken (empty: the parameter is refused)
    prediction: bool = False  # predicted outputs
    max_images: int = 50
    since: str | None = None  # first api-version that serves the model (None: any the emulator knows)
    default: bool = False  # the family's current default version (what a bare family name maps to)
    source: str = ""

    @property
    def id(self) -> str:
        """The versioned name Azure answers with in ``model``, e.g. ``gpt-4o-2024-11-20``."""
        return f"{self.family}-{self.version}"


def _gpt4o(version: str, max_output: int, **kw: Any) -> ModelSpec:
    return ModelSpec("gpt-4o", version, True, False, max_output, **kw)


def _reasoning(family: str, version: str, max_output: int, *, vision: bool = True, parallel_tool_calls: bool = False,
               efforts: tuple[str, ...] = EFFORTS, **kw: Any) -> ModelSpec:
    return ModelSpec(family, version, vision, True, max_output, parallel_tool_calls=parallel_tool_calls,
                     efforts=efforts, default=True, **kw)


MODELS: tuple[ModelSpec, ...] = (
    # --- GPT-4o / GPT-4o mini (models: "Input: 128,000 Output: 16,384"; 2024-05-13 "Output: 4,096")
    _gpt4o("2024-11-20", 16_384, prediction=True, default=True,
           source="models (16,384 out); structured; predicted; vision"),
    _gpt4o("2024-08-06", 16_384, prediction=True, source="models (16,384 out); structured; predicted; vision"),
    _gpt4o("2024-05-13", 4_096, json_schema=False,
           source="models (4,096 out); not in structured's or predicted's supported models; vision"),
    ModelSpec("gpt-4o-mini", "2024-07-18", True, False, 16_384, prediction=True, default=True,
              source="models (16,384 out); structured; predicted; vision"),
    # --- GPT-4.1 series (models: "Max Output Tokens 32,768"; text & image input; structured outputs)
    *(ModelSpec(name, "2025-04-14", True, False, 32_768, prediction=True, default=True,
                source="models (32,768 out); structured; predicted; vision")
      for name in ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano")),
    # --- GPT-4 Turbo with Vision and GPT-4 (models: turbo-2024-04-09 "Output: 4,096"; 10 images per request)
    ModelSpec("gpt-4", "turbo-2024-04-09", True, False, 4_096, json_schema=False, max_images=10, default=True,
              source="models (4,096 out, text and image); not in structured's supported models; vision (10 images)"),
    ModelSpec("gpt-4", "0613", False, False, None, json_object=False, json_schema=False,
              source="json-mode (JSON mode needs a newer model); models (text only; 8,192-token context)"),
    ModelSpec("gpt-4-32k", "0613", False, False, None, json_object=False, json_schema=False, default=True,
              source="retired (gpt-4-32k 0613, retired June 6, 2025); text only, context-bound output"),
    ModelSpec("gpt-35-turbo-16k", "0613", False, False, None, json_object=False, json_schema=False, default=True,
              source="retired (gpt-35-turbo-16k 0613, retired April 30, 2025); text only, context-bound output"),
    # --- GPT-3.5 Turbo (models: "Input: 16,385 Output: 4,096"; JSON mode; parallel function calling; text only)
    ModelSpec("gpt-35-turbo", "0125", False, False, 4_096, json_schema=False, default=True,
              source="models (4,096 out, JSON mode, text only); not in structured's supported models"),
    ModelSpec("gpt-35-turbo", "1106", False, False, 4_096, json_schema=False,
              source="models (4,096 out, JSON mode, text only); not in structured's supported models"),
    # --- o-series (reasoning, o-series tab: parallel tool calls "-" for all; streaming "-" for o1 and o1-mini;
    #     o1-mini: no developer/system messages, structured outputs, reasoning effort, image input, tools)
    _reasoning("o4-mini", "2025-04-16", 100_000, source="reasoning (o-series tab); models (100,000 out); structured"),
    # models lists "Parallel tool calling" for o3 while reasoning says "-": the row accepts the parameter
    _reasoning("o3", "2025-04-16", 100_000, parallel_tool_calls=True,
               source="reasoning (o-series tab); models (100,000 out, parallel tool calling); structured"),
    _reasoning("o3-mini", "2025-01-31", 100_000, vision=False, since="2024-12-01-preview",
               source="reasoning (o-series tab: image input '-'); models (100,000 out, text-only); structured"),
    _reasoning("o1", "2024-12-17", 100_000, streaming=False, since="2024-12-01-preview",
               source="reasoning (o-series tab: streaming '-'); models (100,000 out); structured"),
    _reasoning("o1-mini", "2024-09-12", 65_536, vision=False, tools=False, system_message=False, streaming=False,
               efforts=(), json_schema=False, since="2024-09-01-preview",
               source="reasoning (o-series tab: o1-mini column); models (65,536 out)"),
    # models: "o1-preview (2024-09-12) Older preview version, Output: 32,768"; retired July 28, 2025. Not in the
    # reasoning tables: only the output limit and the api-version are checked
    _reasoning("o1-preview", "2024-09-12", 32_768, parallel_tool_calls=True, since="2024-09-01-preview",
               source="models (o1-preview, 32,768 out); retired"),
    # --- GPT-5 series (reasoning, GPT-5 tab: output 128,000; reasoning_effort adds 'minimal'; parallel tool calls)
    *(_reasoning(name, "2025-08-07", 128_000, parallel_tool_calls=True, efforts=GPT5_EFFORTS,
                 source="reasoning (GPT-5 tab: 128,000 out, image input, parallel tool calls); structured")
      for name in ("gpt-5", "gpt-5-mini", "gpt-5-nano")),
)

#: what a deployment whose name names no model is served as
DEFAULT_MODEL = "gpt-4o-2024-11-20"

_BY_ID = {spec.id: spec for spec in MODELS}
_DEFAULTS = {spec.family: spec for spec in MODELS if spec.default}
# longest first: gpt-4o-2024-08-06 before gpt-4o-mini before gpt-4o before gpt-4
_PREFIXES = sorted([*_BY_ID, *_DEFAULTS], key=len, reverse=True)


def find_model(name: str) -> ModelSpec | None:
    """The row of ``name``: a versioned id (``gpt-4o-2024-08-06``) or a bare family (``gpt-4o``, its default
    version); case-insensitive; None when the table has no such model."""
    key = name.strip().lower()
    return _BY_ID.get(key) or _DEFAULTS.get(key)


def family_of_name(name: str) -> ModelSpec | None:
    """The row a deployment name starts with, followed by ``-`` or ``_`` (``o4-mini-prod`` -> o4-mini's default
    version, ``gpt-4o-2024-08-06-eu`` -> that version), or None (``gpt-4.5-preview``, ``vision``)."""
    key = name.strip().lower()
    exact = find_model(key)
    if exact is not None:
        return exact
    for prefix in _PREFIXES:
        if key.startswith(prefix) and key[len(prefix)] in "-_":
            return _BY_ID.get(prefix) or _DEFAULTS[prefix]
    return None
