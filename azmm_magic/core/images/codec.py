"""Decoding and encoding with Pillow: encoded bytes, a PIL image, a numpy array or a matplotlib figure become a
:class:`~azmm_magic.core.images.types.PreparedImage`.

Each decoded image gets its EXIF orientation applied, its first frame taken if animated, its mode converted when
needed, and is downscaled to :func:`~azmm_magic.core.tokens.max_useful_size`; a PNG/JPEG/WEBP/GIF that needs none of
that keeps its bytes. Pillow is imported on first use (:func:`pil`), which also registers pillow-heif's HEIF opener
with Pillow: a process-wide registration, made once. Pillow's pixel limit (``PIL.Image.MAX_IMAGE_PIXELS``) is read,
never changed, and no warning filter is touched: :func:`decode_guard` only turns the exceptions raised inside it into
one :class:`ImageInputError` naming the input.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from azmm_magic.core.errors import ImageInputError, library_text
from azmm_magic.core.images.types import ACCEPTED_FORMATS, ImageOptions, PreparedImage
from azmm_magic.core.photos import register_heif
from azmm_magic.core.tokens import max_useful_size

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image as PILImage

#: Formats the service accepts as they are; their bytes are sent untouched when no processing is needed.
SEND_AS_IS_MEDIA_TYPES: dict[str, str] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # camera/phone JPEGs with an appended preview: a plain JPEG to any decoder
    "WEBP": "image/webp",
    "GIF": "image/gif",
}

#: Pillow modes the service decodes fine in a PNG/JPEG/WEBP/GIF file (anything else is converted first).
_SENDABLE_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})

JPEG_QUALITY = 85
#: Qualities tried, in order, when an encoded image is over ``max_bytes``.
_FALLBACK_JPEG_QUALITIES = (75, 60, 45, 30)
#: An image with at most this many distinct colours (chart, screenshot, diagram) is encoded as PNG.
_FEW_COLOURS = 8192


def pil() -> Any:
    """``PIL.Image``, imported on first use; the first call also registers pillow-heif's HEIF opener with Pillow
    (process-wide, once: see :func:`~azmm_magic.core.photos.register_heif`)."""
    from PIL import Image

    register_heif()
    return Image


@contextmanager
def decode_guard(label: str, data: bytes | None) -> Iterator[None]:
    """Turn any exception Pillow raises inside the block into one :class:`ImageInputError` naming ``label`` (an
    :class:`ImageInputError` passes as it is). It changes no global state: the pixel limit is checked by
    :func:`check_opened_pixels`, not by a warning filter, which would be process-wide and not thread-safe."""
    try:
        yield
    except ImageInputError:
        raise
    except Exception as e:  # Pillow's plugins raise OSError, SyntaxError, ValueError, EOFError, struct.error...
        raise decode_error(label, data, e) from e


def check_opened_pixels(img: PILImage, label: str) -> None:
    """Refuse an opened (not yet decoded) image of more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels, a possible
    decompression bomb, before any work proportional to its size."""
    limit = pil().MAX_IMAGE_PIXELS
    if limit and img.width * img.height > limit:
        raise decode_error(label, None, pil().DecompressionBombError(f"{img.width}x{img.height}"))


def decode_error(label: str, data: bytes | None, exc: Exception) -> ImageInputError:
    """A one-line message naming the input, what looks wrong and the accepted formats."""
    Image = pil()
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return ImageInputError(
            f"{label} is too large to decode safely (over {Image.MAX_IMAGE_PIXELS} pixels, a possible "
            "decompression bomb); resize it first"
        )
    head = (data or b"")[:1024].lstrip()
    if data is not None and not data:
        reason = "the file is empty (0 bytes)"
    elif head.startswith(b"%PDF"):
        reason = "it is a PDF: give it as a file or bytes source (its pages are rendered), not as an image"
    elif b"<svg" in head.lower():
        reason = "it is an SVG (vector) image: render it to PNG first (e.g. with cairosvg)"
    elif head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypmsf1", b"ftyphevc", b"ftypavif"):
        reason = (f"it is HEIC/AVIF but its data is truncated or corrupt ({library_text(exc)})" if register_heif() else
                  "it is HEIC/AVIF, which this Pillow cannot open (pip install pillow-heif, or convert to JPEG)")
    elif isinstance(exc, Image.UnidentifiedImageError):
        reason = "Pillow does not recognise its format"
    else:
        reason = f"the image data is truncated or corrupt ({library_text(exc)})"
    return ImageInputError(f"cannot read {label} as an image: {reason}; {ACCEPTED_FORMATS}")


def exif_orientation(img: PILImage) -> int:
    """The EXIF orientation tag (1-8), 1 when absent or unreadable."""
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not make a good image unusable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def prepare_bytes(data: bytes, label: str, opts: ImageOptions) -> PreparedImage:
    """Decode encoded image bytes (a file, a data: URL, a download, a rendered figure) and prepare them."""
    if not data:
        raise ImageInputError(f"cannot read {label} as an image: it is empty (0 bytes); {ACCEPTED_FORMATS}")
    Image = pil()
    with decode_guard(label, data):
        img = Image.open(io.BytesIO(data))
        check_opened_pixels(img, label)
        png = img.format == "PNG"
        orientation = _checked_png_orientation(data) if png else exif_orientation(img)
        stored = img.size
        target = max_useful_size(stored[0], stored[1], opts.detail, opts.rule)
        if png and _sendable_as_is(img, "PNG", bool(getattr(img, "is_animated", False)), data, orientation, stored,
                                   target, opts):
            # every chunk read and its checksum checked (truncation, corruption): the pixels are not needed
            return _make(data, "image/png", stored, label, stored, [])
        if img.format in ("JPEG", "MPO"):
            # decode at 1/2, 1/4 or 1/8 scale, never below the target; a JPEG sent as it is is decoded only to
            # check its data (every byte is still read), so at the smallest scale
            animated = bool(getattr(img, "is_animated", False)) and getattr(img, "n_frames", 1) > 1
            if _sendable_as_is(img, img.format, animated, data, orientation, stored, target, opts):
                img.draft(img.mode, (1, 1))  # check only
            elif target[0] < stored[0] or target[1] < stored[1]:
                img.draft(img.mode, target)
        img.load()
    return _process(img, label, opts, original=data, orientation=orientation, stored_size=stored)


def _checked_png_orientation(data: bytes) -> int:
    """Check every chunk of a PNG (length, checksum, the end chunk: a truncated or corrupt file raises) without
    decompressing its pixels, and return its EXIF orientation (1-8; 1 when it has none)."""
    with pil().open(io.BytesIO(data)) as img:
        img.verify()
        exif = img.info.get("exif")
    if not exif:
        return 1
    try:
        tags = pil().Exif()
        tags.load(exif)
        value = tags.get(0x0112, 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not make a good image unusable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def prepare_pil(img: PILImage, label: str, opts: ImageOptions) -> PreparedImage:
    """Prepare an in-memory PIL image (the caller's object is not modified)."""
    with decode_guard(label, None):
        img.load()
    if img.width == 0 or img.height == 0:
        raise ImageInputError(f"{label} has no pixels")
    return _process(img, label, opts, original=None, orientation=exif_orientation(img), stored_size=img.size)


def _process(
    img: PILImage,
    label: str,
    opts: ImageOptions,
    *,
    original: bytes | None,
    orientation: int,
    stored_size: tuple[int, int],
) -> PreparedImage:
    """First frame, EXIF orientation, downscale, then keep the original bytes or encode anew."""
    notices: list[str] = []
    fmt = img.format
    animated = bool(getattr(img, "is_animated", False)) and getattr(img, "n_frames", 1) > 1
    if animated:
        notices.append(f"animated {fmt or 'image'}: first frame used")
        with decode_guard(label, original):
            img = _first_frame(img)
    display_size = stored_size[::-1] if orientation in (5, 6, 7, 8) else stored_size
    target = max_useful_size(*display_size, opts.detail, opts.rule)
    if _sendable_as_is(img, fmt, animated, original, orientation, display_size, target, opts):
        assert original is not None and fmt is not None  # _sendable_as_is checked both
        return _make(original, SEND_AS_IS_MEDIA_TYPES[fmt], display_size, label, display_size, notices)
    if orientation != 1:
        img = _apply_orientation(img, orientation)
        notices.append(f"applied EXIF orientation {orientation} (rotated/flipped upright)")
    img, converted = working_mode(img, fmt)
    if converted:
        notices.append(converted)
    if target != display_size:
        notices.append(
            f"downscaled {display_size[0]}x{display_size[1]} -> {target[0]}x{target[1]} (detail={opts.detail})"
        )
    if img.size != target:
        img = img.resize(target, pil().Resampling.LANCZOS, reducing_gap=3.0)
    data, media_type = _encode(img, fmt)
    if len(data) > opts.max_bytes:
        data, media_type, img = _shrink_to_fit(img, opts.max_bytes, label, notices)
    return _make(data, media_type, img.size, label, display_size, notices)


def _sendable_as_is(
    img: PILImage,
    fmt: str | None,
    animated: bool,
    original: bytes | None,
    orientation: int,
    display_size: tuple[int, int],
    target: tuple[int, int],
    opts: ImageOptions,
) -> bool:
    """Whether the original bytes can be sent untouched: an accepted format and mode, one frame, upright,
    no larger than the service keeps, and within the byte cap. (Decided before decoding, see :func:`prepare_bytes`.)"""
    return (
        original is not None
        and fmt in SEND_AS_IS_MEDIA_TYPES
        and not animated
        and orientation == 1
        and img.mode in _SENDABLE_MODES
        and target == display_size
        and len(original) <= opts.max_bytes
    )


def _make(
    data: bytes,
    media_type: str,
    size: tuple[int, int],
    label: str,
    original_size: tuple[int, int],
    notices: list[str],
) -> PreparedImage:
    return PreparedImage(
        data=data,
        media_type=media_type,
        width=size[0],
        height=size[1],
        sha256=hashlib.sha256(data).hexdigest(),
        source=label,
        original_size=original_size,
        notices=tuple(notices),
    )


def _first_frame(img: PILImage) -> PILImage:
    """A copy of frame 0 of an animation, leaving the caller's image on the frame it was on."""
    position = img.tell()
    try:
        img.seek(0)
        frame = img.copy()
        frame.info = dict(img.info)
    finally:
        img.seek(position)
    return frame


def _apply_orientation(img: PILImage, orientation: int) -> PILImage:
    """Rotate/flip to upright for an EXIF orientation 2-8 (the same mapping as ``ImageOps.exif_transpose``).

    The orientation is passed in, read before decoding, because a first-frame copy no longer carries EXIF.
    """
    Transpose = pil().Transpose
    method = {
        2: Transpose.FLIP_LEFT_RIGHT,
        3: Transpose.ROTATE_180,
        4: Transpose.FLIP_TOP_BOTTOM,
        5: Transpose.TRANSPOSE,
        6: Transpose.ROTATE_270,
        7: Transpose.TRANSVERSE,
        8: Transpose.ROTATE_90,
    }.get(orientation)
    return img.transpose(method) if method is not None else img


def working_mode(img: PILImage, fmt: str | None) -> tuple[PILImage, str]:
    """Convert to L, RGB or RGBA for resizing and encoding; returns the image and a notice ('' if routine)."""
    mode = img.mode
    kind = fmt or "image"
    if mode in ("L", "RGB", "RGBA"):
        return img, ""
    if mode == "1":
        return img.convert("L"), ""
    if mode in ("LA", "La", "PA", "RGBa"):
        return img.convert("RGBA"), ""
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB"), ""
    if mode == "CMYK":
        return img.convert("RGB"), f"converted CMYK {kind} to RGB"
    if mode.startswith("I") or mode == "F":
        return _to_8bit_gray(img), f"converted {_bit_depth(mode, fmt)} grayscale {kind} to 8-bit"
    target = "RGBA" if "A" in img.getbands() else "RGB"
    return img.convert(target), f"converted {mode} {kind} to {target}"


#: Formats whose integer grayscale holds at most 16 bits: older Pillow opens some of them (16-bit PNG in Pillow
#: 10.2) in mode ``I`` rather than ``I;16``, so the mode alone would call a 16-bit PNG "32-bit".
_MAX_16_BIT_FORMATS = frozenset({"PNG", "PPM", "JPEG2000", "SGI"})


def _bit_depth(mode: str, fmt: str | None = None) -> str:
    """The bit depth of a grayscale ``I``/``I;16``/``F`` image, from its format as well as its mode."""
    if mode == "F":
        return "32-bit float"
    return "16-bit" if mode.startswith("I;16") or fmt in _MAX_16_BIT_FORMATS else "32-bit"


def _to_8bit_gray(img: PILImage) -> PILImage:
    """16/32-bit integer or float grayscale -> 8-bit L (16-bit scaled by 1/257, other ranges stretched)."""
    if img.mode.startswith("I;16"):
        return img.convert("I").point(lambda v: v / 257 + 0.5).convert("L")
    low, high = cast("tuple[float, float]", img.getextrema())
    if img.mode == "I" and low >= 0 and high <= 255:
        return img.convert("L")
    if img.mode == "I" and low >= 0 and high <= 65535:
        return img.point(lambda v: v / 257 + 0.5).convert("L")
    span = (high - low) or 1
    return img.convert("F").point(lambda v: (v - low) * 255.0 / span + 0.5).convert("L")


def has_alpha(img: PILImage) -> bool:
    """True for RGBA images whose alpha channel is not fully opaque."""
    return img.mode == "RGBA" and img.getchannel("A").getextrema() != (255, 255)


def _encode(img: PILImage, fmt: str | None) -> tuple[bytes, str]:
    """PNG for transparency, or few colours unless the source was a JPEG (charts, screenshots); JPEG otherwise
    (photos). Returns (bytes, media type)."""
    if img.mode == "RGBA" and not has_alpha(img):
        img = img.convert("RGB")
    if img.mode == "RGBA" or (fmt not in ("JPEG", "MPO") and few_colours(img)):
        return encode_as(img, "PNG"), "image/png"
    return encode_as(img, "JPEG", quality=JPEG_QUALITY), "image/jpeg"


def few_colours(img: PILImage) -> bool:
    """Whether ``img`` has few distinct colours (a chart, a screenshot, a diagram): at most :data:`_FEW_COLOURS`,
    and at most one per 16 pixels (never fewer than 256)."""
    limit = min(_FEW_COLOURS, max(256, img.width * img.height // 16))
    return img.getcolors(limit) is not None


def encode_as(img: PILImage, fmt: str, *, quality: int = JPEG_QUALITY) -> bytes:
    """``img`` encoded as ``"PNG"`` or, for any other ``fmt``, as JPEG at ``quality``."""
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, "PNG", optimize=False)
    else:
        img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def flatten(img: PILImage) -> PILImage:
    """RGB or L version of ``img`` (alpha composited over white)."""
    if img.mode != "RGBA":
        return img
    Image = pil()
    background = Image.new("RGB", img.size, (255, 255, 255))
    background.paste(img, mask=img.getchannel("A"))
    return background


def _shrink_to_fit(img: PILImage, max_bytes: int, label: str, notices: list[str]) -> tuple[bytes, str, PILImage]:
    """Re-encode as JPEG at lower qualities, then smaller sizes, until under ``max_bytes``."""
    Image = pil()
    work = flatten(img)
    for quality in _FALLBACK_JPEG_QUALITIES:
        data = encode_as(work, "JPEG", quality=quality)
        if len(data) <= max_bytes:
            notices.append(f"re-encoded as JPEG quality {quality} to fit {max_bytes} bytes")
            return data, "image/jpeg", work
    quality = _FALLBACK_JPEG_QUALITIES[-1]
    while min(work.size) > 16:
        work = work.resize((max(1, work.width * 3 // 4), max(1, work.height * 3 // 4)), Image.Resampling.LANCZOS)
        data = encode_as(work, "JPEG", quality=quality)
        if len(data) <= max_bytes:
            notices.append(
                f"re-encoded as JPEG quality {quality} at {work.width}x{work.height} to fit {max_bytes} bytes"
            )
            return data, "image/jpeg", work
    raise ImageInputError(
        f"{label} cannot be made smaller than max_bytes={max_bytes} bytes; crop or resize it, or raise the "
        "max_image_mb setting"
    )



# ----- in-memory images: arrays and figures ----------------------------------------------------------------------


def figure_label(fig: Any) -> str:
    number = getattr(fig, "number", None)
    return f"<matplotlib Figure {number}>" if number is not None else "<matplotlib Figure>"


def check_pixels(width: int, height: int, what: str, fix: str) -> None:
    """Refuse an in-memory image over Pillow's pixel limit before a copy of it is made (hashing, converting,
    rendering): a view such as ``np.broadcast_to`` can claim gigabytes it does not hold."""
    limit = pil().MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise ImageInputError(f"{what} is too large to use ({width * height:,} pixels, over {limit:,}); {fix}")


def figure_png(fig: Any) -> bytes:
    """The figure as PNG at its own dpi, cropped to its content (``bbox_inches="tight"``)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi="figure", bbox_inches="tight")
    except Exception as e:  # any drawing error is the figure's: reported as an input error
        raise ImageInputError(f"could not render {figure_label(fig)} to PNG: {library_text(e)}") from e
    return buf.getvalue()


def array_to_pil(arr: Any, label: str) -> PILImage:
    """A uint8/float[0,1]/bool array, HxW, HxWx1, HxWx3 or HxWx4, as a PIL image (L, RGB or RGBA)."""
    import numpy as np

    Image = pil()
    accepted = (
        "accepted: HxW (gray), HxWx1, HxWx3 (RGB) or HxWx4 (RGBA) arrays of uint8 (0-255), float in [0, 1] or bool"
    )
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4))):
        raise ImageInputError(f"numpy array of shape {tuple(arr.shape)} is not an image; {accepted}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageInputError(f"numpy array of shape {tuple(arr.shape)} has no pixels; {accepted}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype.kind == "f":
        arr = _float_to_uint8(arr, label, accepted)
    elif arr.dtype != np.uint8:
        raise ImageInputError(
            f"{label}: dtype {arr.dtype} is not accepted ({accepted}); convert with arr.astype(np.uint8) "
            "or scale to [0, 1] floats"
        )
    return Image.fromarray(np.ascontiguousarray(arr))


def _float_to_uint8(arr: Any, label: str, accepted: str) -> Any:
    """Float [0, 1] -> uint8 0-255 (rounded); NaN/inf or values outside [0, 1] are errors."""
    import numpy as np

    values = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ImageInputError(f"{label} contains NaN or infinite values; {accepted}")
    low, high = float(values.min()), float(values.max())
    if low < -1e-6 or high > 1 + 1e-6:
        raise ImageInputError(
            f"{label} has float values in [{low:g}, {high:g}]; float images must be in [0, 1] "
            "(divide by 255, or use uint8)"
        )
    return (np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------------------------
# Decoding and processing (Pillow)
# --------------------------------------------------------------------------------------------------------------


__all__ = ["JPEG_QUALITY", "SEND_AS_IS_MEDIA_TYPES", "array_to_pil", "check_opened_pixels", "check_pixels", "decode_error",
           "decode_guard", "encode_as", "exif_orientation", "few_colours", "figure_label", "figure_png", "flatten",
           "has_alpha", "pil", "prepare_bytes", "prepare_pil", "working_mode"]
