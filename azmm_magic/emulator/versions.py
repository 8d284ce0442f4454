"""Azure OpenAI ``api-version`` values the emulator knows, and the request features each one has.

Azure answers an ``api-version`` it does not serve with HTTP 400 ``BadRequest`` "API version not supported";
a request feature newer than the version (``max_completion_tokens`` on ``2024-06-01``) gets the same 400 as an
unknown argument. Sources: the ``stable/`` and ``preview/`` folders of ``specification/cognitiveservices/
data-plane/AzureOpenAI/inference`` in Azure/azure-rest-api-specs, and the "API version lifecycle" page of the
Azure OpenAI docs (learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle).

``EmulatorConfig.lenient_api_versions = True`` (``--lenient-api-versions``) accepts any dated
``YYYY-MM-DD[-preview]`` and gives it the features of the nearest known version at or before it.
"""

from __future__ import annotations

import re

__all__ = ["FEATURES", "GA_VERSIONS", "KNOWN_VERSIONS", "PREVIEW_VERSIONS", "features_of", "is_known", "looks_dated"]

DATED = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(-preview)?$")

GA_VERSIONS = ("2022-12-01", "2023-05-15", "2024-02-01", "2024-06-01", "2024-10-21")
PREVIEW_VERSIONS = tuple(f"{v}-preview" for v in (
    "2023-03-15", "2023-06-01", "2023-07-01", "2023-08-01", "2023-09-01", "2023-10-01", "2023-12-01",
    "2024-02-15", "2024-03-01", "2024-04-01", "2024-05-01", "2024-07-01", "2024-08-01", "2024-09-01",
    "2024-10-01", "2024-12-01", "2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01",
))  # fmt: skip
KNOWN_VERSIONS = frozenset(GA_VERSIONS + PREVIEW_VERSIONS)

# feature -> the first api-version (by date; GA and preview alike) whose request schema has it
FEATURES: dict[str, str] = {
    "functions": "2023-07-01",  # functions / function_call (2023-07-01-preview)
    "tools": "2023-12-01",  # tools / tool_choice, image inputs, seed, response_format json_object, logprobs
    "image_input": "2023-12-01",
    "seed": "2023-12-01",
    "json_object": "2023-12-01",
    "logprobs": "2023-12-01",
    # the lifecycle page lists parallel_tool_calls under 2024-09-01-preview; kept at the earlier date (accepting)
    "parallel_tool_calls": "2024-07-01",
    "json_schema": "2024-08-01",  # Structured Outputs: 2024-08-01-preview, GA in 2024-10-21
    "max_completion_tokens": "2024-09-01",  # o1 support: 2024-09-01-preview, GA in 2024-10-21
    "stream_options": "2024-09-01",
    # lifecycle page, "Changes between 2024-12-01-preview and 2024-10-01-preview": store, metadata,
    # reasoning_effort, user_security_context (and o1's developer messages)
    "developer_role": "2024-12-01",
    "reasoning_effort": "2024-12-01",
    "store": "2024-12-01",
    "prediction": "2025-01-01",  # lifecycle page: prediction and gpt-4o-audio-preview in 2025-01-01-preview
    "audio": "2025-01-01",
    "user_security_context": "2024-12-01",
}


def looks_dated(version: str) -> bool:
    """Whether ``version`` has Azure's shape ``YYYY-MM-DD`` or ``YYYY-MM-DD-preview`` with a real date."""
    match = DATED.match(version)
    if match is None:
        return False
    month, day = int(match[2]), int(match[3])
    return 1 <= month <= 12 and 1 <= day <= 31


def is_known(version: str) -> bool:
    """Whether Azure serves ``version`` (an entry of :data:`KNOWN_VERSIONS`)."""
    return version in KNOWN_VERSIONS


def features_of(version: str | None) -> frozenset[str]:
    """The request features of ``version`` (``None``: the v1 API, which has them all)."""
    if version is None:
        return frozenset(FEATURES)
    day = version[:10]
    return frozenset(name for name, first in FEATURES.items() if day >= first)
