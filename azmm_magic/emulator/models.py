"""Deployments as models: ``--deployments gpt-4o=gpt-4o-2024-11-20,o4mini=o4-mini-2025-04-16``.

A deployment's model decides its rules (the row of :mod:`.model_table`: vision or not, reasoning or not, the
output-token limit, the parameters and response formats it takes) and the versioned name its answers carry in
``model``, as Azure does. The model is, in order:

1. the mapping ``NAME=MODEL-VERSION`` (a bare known model, ``x=gpt-4o``, means its current default version);
2. the deployment's name when it names a known model (``gpt-4o``, ``o4-mini-prod``, ``gpt-4o-2024-08-06``);
3. otherwise :data:`~.model_table.DEFAULT_MODEL` (``EmulatorConfig.default_model``), except that a name starting
   with a reasoning prefix (``o1``, ``gpt-5``...) keeps the reasoning rules without a row.

A mapped model the table does not know keeps the rules its name implies and answers with that name.
:func:`describe_deployments` says at start-up which model each configured deployment is served as.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .model_table import DEFAULT_MODEL, ModelSpec, family_of_name, find_model

__all__ = ["DEFAULT_MAX_IMAGES", "ModelProfile", "describe_deployments", "parse_deployments", "profile_for"]

DEFAULT_MAX_IMAGES = 10  # the conservative documented limit (GPT-4 Turbo with Vision: 10 images per request)
LARGE_IMAGE_LIMIT_MODELS = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")  # documented up to 50
LARGE_MAX_IMAGES = 50


@dataclass(frozen=True)
class ModelProfile:
    """The rules a deployment follows."""

    deployment: str
    model: str  # the answers' ``model``: the model's versioned name (the given name for a model the table lacks)
    reasoning: bool  # o-series / gpt-5: max_completion_tokens only, no sampling parameters
    legacy: bool  # knows only max_tokens
    max_images: int
    mapped: bool  # the model came from a NAME=MODEL-VERSION mapping
    spec: ModelSpec | None = None  # the model's row (None: a model the table does not know)


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


def _model_for(config: Any, deployment: str) -> tuple[str | None, ModelSpec | None, str]:
    """(given model name or None, its row or None, how it was chosen) for ``deployment``."""
    given = config.models.get(deployment)
    if given is not None:
        spec = find_model(given)
        return given, spec, "mapped" if spec is None or spec.id == given.lower() else "default version"
    spec = family_of_name(deployment)
    if spec is not None:
        return None, spec, "named"
    if deployment.lower().startswith(tuple(config.reasoning_prefixes)):
        return None, None, "reasoning name"
    default = getattr(config, "default_model", DEFAULT_MODEL)
    return None, find_model(default), "default"


def profile_for(config: Any, deployment: str) -> ModelProfile:
    """The :class:`ModelProfile` of ``deployment`` under ``config`` (an ``EmulatorConfig``)."""
    given, spec, _how = _model_for(config, deployment)
    basis = (given or deployment).lower()
    legacy = deployment.lower().startswith(tuple(config.legacy_prefixes)) or basis.startswith(
        tuple(config.legacy_prefixes)
    )
    if spec is not None:
        reasoning, model = spec.reasoning, spec.id
        max_images = spec.max_images
    else:
        reasoning = basis.startswith(tuple(config.reasoning_prefixes))
        model = given or deployment
        max_images = LARGE_MAX_IMAGES if given is not None and basis.startswith(LARGE_IMAGE_LIMIT_MODELS) else (
            DEFAULT_MAX_IMAGES)
    if config.max_images is not None:
        max_images = int(config.max_images)
    return ModelProfile(deployment, model, reasoning, legacy, max_images, given is not None, spec)


def describe_deployments(config: Any) -> list[str]:
    """One line per configured deployment: the model it is served as and why (said at start-up)."""
    lines = []
    for name in config.deployments or ():
        given, spec, how = _model_for(config, name)
        if spec is None:
            lines.append(f"deployment {name}: model {given or name} is not in the emulator's model table; "
                         "rules follow its name")
        elif how == "mapped":
            lines.append(f"deployment {name}: model {spec.id}")
        elif how == "default version":
            lines.append(f"deployment {name}: {given} is served as {spec.id}, its current default version "
                         f"(map {name}={spec.family}-VERSION to choose another)")
        elif how == "named":
            lines.append(f"deployment {name}: served as {spec.id} (the name names that model; map "
                         f"{name}=MODEL-VERSION to choose another)")
        else:
            lines.append(f"deployment {name}: no model in its name, served as {spec.id} (map {name}=MODEL-VERSION "
                         "to choose another)")
    return lines
