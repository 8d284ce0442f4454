"""What the emulator can read from pixels, named the way people name it.

- **Colour names** come from hue, saturation and value (not from the nearest entry of an RGB table, which calls
  a medium blue such as (30, 144, 255) "cyan" and (30, 120, 200) "teal"): greys by lightness, then the hue
  wheel, darker and paler variants where people use another word (navy, dark red, brown, pink, olive, teal).
- **Blobs**: the number of distinct solid regions on the background (the colour that covers most of the
  border), counted as 4-connected regions of one colour name that cover at least :data:`MIN_BLOB_SHARE` of the
  image. A uniform image is one blob.
- **Light/dark** from mean brightness, **portrait/landscape/square** from the size.

:func:`enum_value` maps a measured colour name to the value of a schema's enum that people would agree with
("navy" → "blue" when the enum has no "navy"), or None when none fits.
"""

from __future__ import annotations

from typing import Any

__all__ = ["COLOUR_NAMES", "MIN_BLOB_SHARE", "blob_count", "colour_names", "dominant", "enum_value", "name_of",
           "object_colour", "orientation",
           "tone"]

#: The names :func:`colour_names` gives (and a typical RGB for each, used when an enum holds other names).
COLOUR_NAMES: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "dark grey": (64, 64, 64), "grey": (128, 128, 128), "light grey": (192, 192, 192),
    "white": (255, 255, 255), "red": (220, 20, 20), "dark red": (139, 0, 0), "orange": (255, 140, 0),
    "yellow": (255, 220, 0), "olive": (128, 128, 0), "green": (0, 180, 0), "dark green": (0, 100, 0),
    "cyan": (0, 230, 230), "teal": (0, 128, 128), "blue": (30, 100, 230), "navy": (0, 0, 128),
    "purple": (128, 0, 160), "magenta": (230, 0, 230), "pink": (255, 170, 200), "brown": (139, 69, 19),
    "tan": (210, 180, 140),
}
_NAMES = list(COLOUR_NAMES)

#: When an enum lacks the measured name: the names people would accept instead, best first.
_FAMILY: dict[str, tuple[str, ...]] = {
    "dark red": ("red", "maroon", "brown"), "navy": ("blue", "dark blue"), "teal": ("cyan", "blue", "green"),
    "cyan": ("light blue", "blue", "turquoise", "teal"), "dark green": ("green",), "olive": ("green", "yellow"),
    "brown": ("orange", "red"), "tan": ("brown", "beige", "orange"), "pink": ("magenta", "red", "purple"),
    "magenta": ("pink", "purple"), "purple": ("violet", "magenta", "blue"), "orange": ("red", "yellow"),
    "yellow": ("gold", "orange"), "dark grey": ("grey", "black"), "light grey": ("grey", "white", "silver"),
    "grey": ("silver",), "black": ("dark grey",), "white": ("light grey",), "red": ("crimson",),
    "green": ("lime",), "blue": ("dark blue", "light blue"),
}
_SPELLINGS = {"gray": "grey", "dark gray": "dark grey", "light gray": "light grey", "darkgrey": "dark grey",
              "lightgrey": "light grey", "darkred": "dark red", "darkgreen": "dark green", "violet": "purple"}

MIN_BLOB_SHARE = 0.004  # a region smaller than this share of the image is noise (anti-aliasing, JPEG edges)


def object_colour(colours: tuple[tuple[str, int], ...], options: list[Any] | None) -> Any:
    """The colour to answer from an image's dominant ``(name, percent)`` pairs: the first that an enum's options
    name (so a red mug on a white background is "red" when the enum has no "white"), else the nearest option to
    the first colour that is not a grey; without options, the most frequent name."""
    if not colours:
        return None
    if options is None:
        return colours[0][0]
    notable = [name for name, pct in colours if pct >= 5] or [colours[0][0]]
    for name in notable:
        found = enum_value(name, options, nearest=False)
        if found is not None:
            return found
    chromatic = [name for name in notable if name not in _ACHROMATIC]
    return enum_value(chromatic[0] if chromatic else notable[0], options)


def colour_names(rgb: Any) -> Any:
    """An index into :data:`COLOUR_NAMES` (in order) for each pixel of an ``(..., 3)`` uint8 array."""
    import numpy as np

    px = np.asarray(rgb, dtype=np.float32) / 255.0
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    high, low = px.max(axis=-1), px.min(axis=-1)
    chroma = high - low
    sat = np.where(high > 0, chroma / np.maximum(high, 1e-6), 0.0)
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(high == r, ((g - b) / safe) % 6, np.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4)) * 60
    out = np.empty(px.shape[:-1], dtype=np.int16)
    idx = {name: i for i, name in enumerate(_NAMES)}
    # greys by value
    grey = (sat < 0.18) | (chroma < 0.09)
    out[:] = idx["grey"]
    out[grey & (high < 0.16)] = idx["black"]
    out[grey & (high >= 0.16) & (high < 0.38)] = idx["dark grey"]
    out[grey & (high >= 0.62) & (high < 0.88)] = idx["light grey"]
    out[grey & (high >= 0.88)] = idx["white"]
    black = ~grey & (high < 0.16)
    out[black] = idx["black"]
    col = ~grey & ~black
    dark = high < 0.55
    pale = (sat < 0.45) & (high > 0.75)

    def put(mask: Any, name: str) -> None:
        out[col & mask] = idx[name]

    red = (hue >= 345) | (hue < 15)
    orange = (hue >= 15) & (hue < 42)
    yellow = (hue >= 42) & (hue < 70)
    green = (hue >= 70) & (hue < 165)
    cyan = (hue >= 165) & (hue < 195)
    blue = (hue >= 195) & (hue < 255)
    purple = (hue >= 255) & (hue < 290)
    magenta = (hue >= 290) & (hue < 345)
    put(red, "red")
    put(red & dark, "dark red")
    put((red | magenta) & pale, "pink")
    put(orange, "orange")
    put(orange & dark, "brown")
    put(orange & pale, "tan")
    put(yellow, "yellow")
    put(yellow & dark, "olive")
    put(green, "green")
    put(green & (high < 0.45), "dark green")
    put(cyan, "cyan")
    put(cyan & dark, "teal")
    put(blue, "blue")
    put(blue & dark, "navy")
    put(purple, "purple")
    put(magenta, "magenta")
    put(magenta & dark, "purple")
    return out


def name_of(rgb: tuple[int, int, int]) -> str:
    """The name of one colour, e.g. ``name_of((30, 144, 255)) == "blue"``."""
    import numpy as np

    return _NAMES[int(colour_names(np.array([rgb], dtype=np.uint8))[0])]


def dominant(rgb: Any, top: int = 3) -> tuple[tuple[str, int], ...]:
    """The ``top`` most frequent colour names of an RGB image (array or PIL) with whole percentages (≥ 1 %)."""
    import numpy as np

    counts = np.bincount(colour_names(np.asarray(rgb)).reshape(-1), minlength=len(_NAMES))
    total = int(counts.sum()) or 1
    order = sorted(range(len(_NAMES)), key=lambda i: (-int(counts[i]), i))[:top]
    return tuple((_NAMES[i], round(100 * int(counts[i]) / total)) for i in order if round(100 * int(counts[i]) / total) >= 1)


def blob_count(rgb: Any) -> int:
    """Distinct solid regions on the background (see the module docstring); 1 for a uniform image."""
    import numpy as np

    names = colour_names(np.asarray(rgb))
    h, w = names.shape
    border = np.concatenate([names[0], names[-1], names[:, 0], names[:, -1]])
    background = int(np.bincount(border).argmax())
    if not (names != background).any():
        return 1
    seen = np.zeros((h, w), dtype=bool)
    seen[names == background] = True
    minimum = max(1, int(MIN_BLOB_SHARE * h * w))
    flat = names.tolist()
    visited = seen.tolist()
    count = 0
    for y in range(h):
        row = visited[y]
        for x in range(w):
            if row[x]:
                continue
            colour, size, stack = flat[y][x], 0, [(y, x)]
            row[x] = True
            while stack:
                cy, cx = stack.pop()
                size += 1
                for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                    if 0 <= ny < h and 0 <= nx < w and not visited[ny][nx] and flat[ny][nx] == colour:
                        visited[ny][nx] = True
                        stack.append((ny, nx))
            count += size >= minimum
    return count


def tone(brightness: float) -> str:
    """``light`` or ``dark`` (mean brightness on a 0–255 scale, split at the middle)."""
    return "dark" if brightness < 128 else "light"


def orientation(width: int, height: int) -> str:
    """``portrait``, ``landscape`` or ``square`` (within 2 %)."""
    if abs(width - height) <= 0.02 * max(width, height):
        return "square"
    return "portrait" if height > width else "landscape"


def _canonical(value: str) -> str:
    text = " ".join(value.lower().replace("_", " ").replace("-", " ").split())
    return _SPELLINGS.get(text, text)


_ACHROMATIC = ("black", "dark grey", "grey", "light grey", "white")


def enum_value(measured: str, options: list[Any], *, nearest: bool = True) -> Any:
    """The enum option people would agree names the colour ``measured`` (the same name, or a broader one:
    "navy" → "blue"), else with ``nearest`` the option whose colour is closest (a grey only to a grey), or None."""
    strings = {_canonical(o): o for o in options if isinstance(o, str)}
    if measured in strings:
        return strings[measured]
    for other in _FAMILY.get(measured, ()):
        if other in strings:
            return strings[other]
    if not nearest:
        return None
    grey = measured in _ACHROMATIC
    known = [(name, o) for name, o in strings.items() if name in COLOUR_NAMES and (name in _ACHROMATIC) == grey]
    if not known:
        return None
    target = COLOUR_NAMES[measured]

    def distance(name: str) -> int:
        return sum((a - b) ** 2 for a, b in zip(COLOUR_NAMES[name], target, strict=True))

    best = min(known, key=lambda pair: distance(pair[0]))
    return best[1]
