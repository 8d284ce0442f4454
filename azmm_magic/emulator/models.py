"""Deployments as models: ``--deployments gpt-4o=gpt-4o-2024-11-20,o4mini=o4-mini-2025-04-16``.

A deployment mapped to a model version takes its rules from the model (reasoning or not, which token-limit
parameter, how many images a request may carry) and answers with that version in ``model``, as Azure does. An
unmapped deployment is judged by its name (``o4-mini`` is a reasoning deployment, ``legacy-...`` knows only
``max_tokens``) and its answers echo the deployment name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_MAX_IMAGES", "ModelProfile", "parse_deployments", "profile_for"]

DEFAULT_MAX_IMAGES = 10  # the conservative documented limit (GPT-4 Turbo with Vision: 10 images per request)
LARGE_IMAGE_LIMIT_MODELS = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")  # documented up to 50
LARGE_MAX_IMAGES = 50


@dataclass(frozen=True)
class ModelProfile:
    """The rules a deployment follows."""

    deployment: str
    model: str  # the answers' ``model``: the mapped model version, else the deployment name
    reasoning: bool  # o-series / gpt-5: max_completion_tokens only, no sampling parameters
    legacy: bool  # knows only max_tokens
    max_images: int
    mapped: bool


def parse_deployments(items: Iterable[str] | Mapping[str, str] | str) -> tuple[list[str], dict[str, str]]:
    """``["gpt-4o=gpt-4o-2024-11-20", "vision"]`` (or a comma-separated string, or a dict) ->
    (deployment names, {deployment: model version})."""
    if isinstance(items, Mapping):
        pairs: list[tuple[str, str | None]] = [(str(k), str(v) if v else None) for k, v in items.items()]
    else:
        if isinstance(items, str):
            items = items.split(",")
        pairs = []
        for item in items:
            text = str(item).strip()
            if not text:
                continue
            name, sep, model = text.partition("=")
            if sep and (not name.strip() or not model.strip()):
                raise ValueError(f"deployment mapping {text!r}: expected NAME=MODEL-VERSION, e.g. gpt-4o=gpt-4o-2024-11-20")
            pairs.append((name.strip(), model.strip() if sep else None))
    names = [name for name, _ in pairs]
    models = {name: model for name, model in pairs if model}
    return names, models


def profile_for(config: Any, deployment: str) -> ModelProfile:
    """The :class:`ModelProfile` of ``deployment`` under ``config`` (an ``EmulatorConfig``)."""
    model = config.models.get(deployment)
    basis = (model or deployment).lower()
    reasoning = basis.startswith(tuple(config.reasoning_prefixes))
    legacy = deployment.lower().startswith(tuple(config.legacy_prefixes)) or basis.startswith(
        tuple(config.legacy_prefixes)
    )
    if config.max_images is not None:
        max_images = int(config.max_images)
    elif model is not None and basis.startswith(LARGE_IMAGE_LIMIT_MODELS):
        max_images = LARGE_MAX_IMAGES
    else:
        max_images = DEFAULT_MAX_IMAGES
    return ModelProfile(deployment, model or deployment, reasoning, legacy, max_images, model is not None)
