"""Token rules: how many input tokens an image costs at a detail level, and the largest size worth sending.

The tile rule (gpt-4o, gpt-4-turbo): ``high`` fits the image in 2048×2048, scales the shortest side to 768 and
counts 512-px tiles (85 + 170 per tile; gpt-4o-mini: 2833 + 5667 per tile); ``low`` is 85 (2833). The patch rule
(gpt-4.1-mini/nano, o4-mini): 32-px patches, scaled down to fit 1536 patches, times a per-model multiplier. Pure
arithmetic: no Pillow, shared with the emulator, which bills by the same rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from azmm_magic.core.errors import ConfigError, ImageInputError
from azmm_magic.core.settings import Detail

DETAILS: tuple[str, ...] = ("low", "high", "auto")

_TILE = 512
_PATCH = 32
_PATCH_LIMIT = 1536


@dataclass(frozen=True)
class TokenRule:
    """How a model family bills an image.

    ``kind="tile"`` (gpt-4o family): ``base + per_tile * tiles`` with 512-px tiles after fitting the image within
    2048x2048 and scaling its shortest side down to 768; ``detail="low"`` costs ``base`` flat.
    ``kind="patch"`` (gpt-4.1-mini/nano, o4-mini): 32-px patches, at most 1536, times ``multiplier``.
    """

    kind: Literal["tile", "patch"]
    base: int = 0
    per_tile: int = 0
    multiplier: float = 1.0


TOKEN_RULES: dict[str, TokenRule] = {
    "gpt-4o": TokenRule("tile", base=85, per_tile=170),
    "gpt-4o-mini": TokenRule("tile", base=2833, per_tile=5667),
    "gpt-4.1-mini": TokenRule("patch", multiplier=1.62),
    "gpt-4.1-nano": TokenRule("patch", multiplier=2.46),
    "o4-mini": TokenRule("patch", multiplier=1.72),
}


def token_rule(rule: str) -> TokenRule:
    """The :class:`TokenRule` called ``rule``; :class:`ConfigError` naming the known rules otherwise."""
    try:
        return TOKEN_RULES[rule]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown token rule {rule!r}; known rules: {', '.join(TOKEN_RULES)}") from None


def check_detail(detail: str) -> None:
    """Raise :class:`ConfigError` unless ``detail`` is ``low``, ``high`` or ``auto``."""
    if detail not in DETAILS:
        raise ConfigError(f"image detail must be one of {', '.join(DETAILS)}; got {detail!r}")


def fit_within(width: int, height: int, limit: int) -> tuple[int, int]:
    """Scale down (never up) so both sides are <= ``limit``; integer arithmetic, sides floored, at least 1."""
    if width <= limit and height <= limit:
        return width, height
    if width >= height:
        return limit, max(1, height * limit // width)
    return max(1, width * limit // height), limit


def _shortest_side_to(width: int, height: int, side: int) -> tuple[int, int]:
    """Scale down (never up) so the shortest side is ``side``; the other side floored."""
    if min(width, height) <= side:
        return width, height
    if width >= height:
        return max(1, width * side // height), side
    return side, max(1, height * side // width)


def _tile_high_size(width: int, height: int) -> tuple[int, int]:
    """The size the tile rule bills at ``detail=high``: fit within 2048x2048, then shortest side to 768."""
    w, h = fit_within(width, height, 2048)
    return _shortest_side_to(w, h, 768)


def _patches(width: int, height: int) -> int:
    """Number of 32x32 patches covering ``width`` x ``height``."""
    return math.ceil(width / _PATCH) * math.ceil(height / _PATCH)


def _patch_size(width: int, height: int) -> tuple[int, int]:
    """The size the patch rule bills: unchanged when it needs <= 1536 patches, else scaled down to fit.

    Follows OpenAI's published algorithm (shrink by ``sqrt(32*32*1536 / (w*h))``, then a little more so one side
    is a whole number of patches), then shrinks further while the patch count is still over 1536 (which the
    published formula alone does not guarantee, e.g. for very thin images).
    """
    if _patches(width, height) <= _PATCH_LIMIT:
        return width, height
    r = min(1.0, math.sqrt(_PATCH * _PATCH * _PATCH_LIMIT / (width * height)))
    fw, fh = width * r / _PATCH, height * r / _PATCH
    r *= min(math.floor(fw) / fw if fw >= 1 else 1.0, math.floor(fh) / fh if fh >= 1 else 1.0)
    w, h = max(1, math.floor(width * r + 1e-6)), max(1, math.floor(height * r + 1e-6))
    while _patches(w, h) > _PATCH_LIMIT:
        cols, rows = math.ceil(w / _PATCH), math.ceil(h / _PATCH)
        if cols >= rows:
            scale = max(1, _PATCH_LIMIT // rows) * _PATCH / w
        else:
            scale = max(1, _PATCH_LIMIT // cols) * _PATCH / h
        w, h = max(1, math.floor(w * scale)), max(1, math.floor(h * scale))
    return w, h


def max_useful_size(width: int, height: int, detail: Detail, rule: str = "gpt-4o") -> tuple[int, int]:
    """The largest size the service keeps of a ``width`` x ``height`` image: the downscale target.

    Never larger than the input (no upscaling). Tile rule: ``low`` fits within 512x512; ``high`` and ``auto`` fit
    within 2048x2048 then scale the shortest side down to 768. Patch rule: the size the model scales the image to
    so it needs at most 1536 patches, so downscaling to it never drops a pixel the model would have used;
    ``detail`` does not change the patch rule (``low`` is treated like ``high``).
    """
    check_detail(detail)
    spec = token_rule(rule)
    if width <= 0 or height <= 0:
        raise ImageInputError(f"image size must be positive; got {width}x{height}")
    if spec.kind == "patch":
        return _patch_size(width, height)
    if detail == "low":
        return fit_within(width, height, _TILE)
    return _tile_high_size(width, height)


def estimate_image_tokens(width: int, height: int, detail: Detail, rule: str = "gpt-4o") -> int:
    """Prompt tokens the service bills for one ``width`` x ``height`` image.

    Tile rule (``gpt-4o``: 85 + 170/tile; ``gpt-4o-mini``: 2833 + 5667/tile): ``low`` costs the base flat;
    ``high`` and ``auto`` (estimated as ``high``) count 512-px tiles of :func:`max_useful_size`, e.g.
    1024x1024 -> 765 and 2048x4096 -> 1105 for gpt-4o. Patch rule: 32-px patches of :func:`max_useful_size`
    (at most 1536) times the model's multiplier, rounded; ``low`` is treated like ``high``.
    A size of 0 (a URL image whose size is unknown) gives the largest possible cost for that detail.
    """
    check_detail(detail)
    spec = token_rule(rule)
    if spec.kind == "tile":
        if detail == "low":
            return spec.base
        if width <= 0 or height <= 0:
            tiles = math.ceil(768 / _TILE) * math.ceil(2048 / _TILE)
        else:
            w, h = _tile_high_size(width, height)
            tiles = math.ceil(w / _TILE) * math.ceil(h / _TILE)
        return spec.base + spec.per_tile * tiles
    patches = _PATCH_LIMIT if width <= 0 or height <= 0 else _patches(*_patch_size(width, height))
    return math.floor(patches * spec.multiplier + 0.5)


__all__ = ["DETAILS", "TOKEN_RULES", "TokenRule", "check_detail", "estimate_image_tokens", "fit_within",
           "max_useful_size", "token_rule"]
