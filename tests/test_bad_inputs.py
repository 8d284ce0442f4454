"""Bad input matrix through the magic: each mistake is ONE clear UsageError naming the offending input, sends
no request (counted at the emulator) and leaves the session usable; odd-but-valid images just work. Plus
property-based tests (hypothesis) of the magic-line parser and prompt interpolation."""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from PIL import Image

from azmm_magic.frontends.command import VisionCommand, interpolate, parse_cell
from azmm_magic.core.errors import ConfigError
from azmm_magic.core.result import VisionResult


# ----- files and objects ------------------------------------------------------------------------------------
def _png_bytes(size=(40, 30), colour=(200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((60, 40), 60).convert("RGB").save(buf, "JPEG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb_png() -> bytes:
    """A 100 000 x 100 000 PNG header (10 gigapixels) in a few bytes: Pillow must refuse to decode it."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


Setup = Callable[[Path, dict[str, Any], Any], str]  # (tmp_path, user_ns, shell) -> magic line


def _file(name: str, data: bytes | str) -> Setup:
    def setup(tmp: Path, ns: dict[str, Any], shell: Any) -> str:
        path = tmp / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return f"-i {path}"

    return setup


def _var(value: Any, name: str = "thing") -> Setup:
    def setup(tmp: Path, ns: dict[str, Any], shell: Any) -> str:
        ns[name] = value() if callable(value) else value
        return f"-i {name}"

    return setup


def _prompt_var(value: Any, name: str) -> Setup:
    def setup(tmp: Path, ns: dict[str, Any], shell: Any) -> str:
        ns[name] = value
        return ""

    return setup


def _line(text: str) -> Setup:
    return lambda tmp, ns, shell: text


def _directory(tmp: Path, ns: dict[str, Any], shell: Any) -> str:
    (tmp / "photos").mkdir()
    return f"-i {tmp / 'photos'}"


def _oversize(tmp: Path, ns: dict[str, Any], shell: Any) -> str:
    Image.effect_noise((300, 300), 100).convert("RGB").save(tmp / "noise.png")
    shell.run_line_magic("config", "AzureVision.max_image_mb = 0.0001")  # ~100 bytes: no recompression fits
    return f"-i {tmp / 'noise.png'}"


def _too_many(tmp: Path, ns: dict[str, Any], shell: Any) -> str:
    (tmp / "many").mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(tmp / "many" / f"{i}.png")
    shell.run_line_magic("config", "AzureVision.max_images = 3")
    return f"-i '{tmp / 'many'}/*.png'"


TEXT_SVG = '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect width="9" height="9"/></svg>'
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64

# (id, setup, cell body, regex the one-line message must match: it names the offending input)
ERROR_CASES: list[tuple[str, Setup, str, str]] = [
    ("missing-file", _line("-i nothere/cat.png"), "q", r"image file not found: nothere/cat\.png"),
    ("directory", _directory, "q", r"photos is a directory, not an image.*glob"),
    ("empty-file", _file("empty.png", b""), "q", r"empty\.png as an image: it is empty \(0 bytes\)"),
    ("truncated-png", _file("cut.png", _png_bytes()[:60]), "q", r"cut\.png as an image: .*(truncated|corrupt)"),
    ("truncated-jpeg", _file("cut.jpg", _jpeg_bytes()[:400]), "q", r"cut\.jpg as an image: .*(truncated|corrupt)"),
    ("text-named-png", _file("notes.png", "shopping list\n"), "q", r"notes\.png as an image: Pillow does not recognise"),
    ("svg", _file("logo.svg", TEXT_SVG), "q", r"logo\.svg as an image: it is an SVG .*render it to PNG"),
    ("pdf", _file("paper.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n"), "q", r"paper\.pdf as a PDF: it is damaged or not a PDF"),
    ("heic", _file("IMG_0001.HEIC", HEIC), "q", r"IMG_0001\.HEIC as an image: it is HEIC"),
    ("decompression-bomb", _file("bomb.png", _bomb_png()), "q", r"bomb\.png is too large to decode safely"),
    ("over-size-limit", _oversize, "q", r"noise\.png cannot be made smaller than max_bytes=.*max_image_mb"),
    ("numpy-wrong-shape", _var(lambda: np.zeros((2, 3, 4, 5), np.uint8), "arr4d"), "q",
     r"-i arr4d: numpy array of shape \(2, 3, 4, 5\) is not an image"),
    ("numpy-wrong-dtype", _var(lambda: np.zeros((4, 4), np.complex64), "carr"), "q",
     r"-i carr: .*dtype complex64 is not accepted"),
    ("numpy-string-dtype", _var(lambda: np.array([["a", "b"]]), "sarr"), "q", r"-i sarr: .*dtype <U1 is not accepted"),
    ("numpy-nan", _var(lambda: np.full((4, 4, 3), np.nan), "nanarr"), "q", r"-i nanarr: .*contains NaN"),
    ("numpy-no-pixels", _var(lambda: np.zeros((0, 5, 3), np.uint8), "emptyarr"), "q", r"-i emptyarr: .*has no pixels"),
    ("unknown-variable", _line("-i {nosuchvar}"), "q", r"no variable named 'nosuchvar'"),
    ("unsupported-object", _var(object, "widget"), "q", r"-i widget: cannot use an object of type object"),
    ("unsupported-dict", _var({"a": 1}, "conf"), "q", r"-i conf: cannot use an object of type dict"),
    ("file-url", _line("-i file:///etc/passwd"), "q", r"unsupported URL scheme 'file' in 'file:///etc/passwd'"),
    ("javascript-url", _line("-i javascript:alert(1)"), "q", r"unsupported URL scheme 'javascript'"),
    ("ftp-url", _line("-i ftp://example.org/a.png"), "q", r"unsupported URL scheme 'ftp'"),
    ("bad-data-url", _line("-i data:image/png;base64,@@@@"), "q", r"data: URL .* invalid base64"),
    ("glob-matches-nothing", _line("-i 'nowhere/*.webp'"), "q", r"no image file matches the pattern 'nowhere/\*\.webp'"),
    ("too-many-images", _too_many, "q", r"4 images given but at most 3 .*max_images"),
    ("empty-prompt", _line(""), "  \n\t ", r"prompt is empty"),
    ("unknown-option", _line("--frobnicate"), "q", r"unrecognized arguments: --frobnicate"),
    ("invalid-detail", _line("--detail ultra"), "q", r"--detail: invalid choice: 'ultra'"),
    ("bad-max-tokens", _line("--max-tokens lots"), "q", r"--max-tokens: invalid int value: 'lots'"),
    ("zero-max-tokens", _line("--max-tokens 0"), "q", r"max_tokens.*positive number, got 0"),
    ("nan-temperature", _line("--temperature nan"), "q", r"temperature.*between 0 and 2, got nan"),
    ("unbalanced-quote", _line("-i 'my photo.png"), "q", r"No closing quotation.*quotes"),
    ("bad-out-variable", _line("-o 1st"), "q", r"-o '1st': not a valid Python variable name"),
    ("key-on-magic-line", _line("--api-key=sk-123"), "q", r"Keys are never accepted on the magic line"),
    ("unprintable-prompt-variable", _prompt_var(_Unprintable(), "weird"), "Describe {weird}", r"\{weird\} in the prompt: str"),
]


@pytest.mark.parametrize("setup, cell, pattern", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_bad_input_is_one_clear_usage_error(setup, cell, pattern, shell, emulator, red_png, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = setup(tmp_path, shell.user_ns, shell)
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("azure_vision", f"{line} --no-stream", cell)
    message = str(info.value)
    assert re.search(pattern, message), message
    assert "\n" not in message and "Traceback" not in message and len(message) < 500, message
    assert emulator.count() == 0, "a request was sent for a bad input"
    # the session is still usable
    shell.run_line_magic("config", "AzureVision.max_image_mb = 20")
    shell.run_line_magic("config", "AzureVision.max_images = 10")
    shell.user_ns["good"] = str(red_png)
    ok = shell.run_cell_magic("azure_vision", "-i good --no-stream", "What colour is it?")
    assert isinstance(ok, VisionResult) and "64×48" in ok.text and emulator.count() == 1


def test_the_matrix_has_at_least_25_cases():
    assert len(ERROR_CASES) >= 25 and len(VALID_ODD_CASES) >= 7


# ----- valid but odd: these succeed ----------------------------------------------------------------------------
def _animated_gif(path: Path) -> None:
    frames = [Image.new("RGB", (24, 16), c) for c in ((255, 0, 0), (0, 200, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=80, loop=0)


def _cmyk(path: Path) -> None:
    Image.new("CMYK", (24, 16), (0, 255, 255, 0)).save(path, "JPEG")


def _png16(path: Path) -> None:
    Image.fromarray((np.arange(24 * 16, dtype=np.uint16) * 150).reshape(16, 24)).save(path)


def _palette_alpha(path: Path) -> None:
    img = Image.new("P", (24, 16), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(1, (0, 0, 12, 16))
    img.save(path, transparency=0)


def _exif_rotated(path: Path) -> None:
    """Stored 60x40 landscape, left half red / right half blue, EXIF orientation 6 (display rotated 90° CW)."""
    img = Image.new("RGB", (60, 40), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 30, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, "JPEG", exif=exif.tobytes(), quality=95)


def _one_pixel(path: Path) -> None:
    Image.new("RGB", (1, 1), (10, 200, 10)).save(path)


def _panorama(path: Path) -> None:
    Image.new("RGB", (50_000, 10), (0, 128, 255)).save(path)


VALID_ODD_CASES: list[tuple[str, str, Callable[[Path], None], str]] = [
    # (id, file name, writer, text the answer's footer or report must contain)
    ("animated-gif", "anim.gif", _animated_gif, "anim.gif: animated GIF: first frame used"),
    ("cmyk-jpeg", "cmyk.jpg", _cmyk, "converted CMYK JPEG to RGB"),
    ("png-16-bit", "deep.png", _png16, "converted 16-bit grayscale PNG to 8-bit"),
    ("palette-transparency", "pal.png", _palette_alpha, "24×16"),
    ("exif-rotated", "phone.jpg", _exif_rotated, "40×60"),
    ("one-pixel", "dot.png", _one_pixel, "1×1"),
    ("panorama-50000x10", "pano.png", _panorama, "Azure OpenAI emulator"),
]


@pytest.mark.parametrize("name, writer, expected", [c[1:] for c in VALID_ODD_CASES], ids=[c[0] for c in VALID_ODD_CASES])
def test_odd_but_valid_images_succeed(name, writer, expected, shell, emulator, tmp_path):
    writer(tmp_path / name)
    shell.user_ns["pic"] = str(tmp_path / name)
    out = shell.run_cell_magic("azure_vision", "-i pic --no-stream", "What is it?")
    assert isinstance(out, VisionResult) and "Azure OpenAI emulator" in out.text
    shown = out._repr_mimebundle_()["text/plain"]
    assert expected in shown, shown
    assert emulator.count() == 1
    (image,) = out.images
    sent = Image.open(io.BytesIO(image.data))
    assert f"{sent.width}×{sent.height}" in out.text  # the emulator decoded exactly what was sent
    if name == "anim.gif":
        assert getattr(sent, "n_frames", 1) == 1 and sent.convert("RGB").getpixel((5, 5)) == (255, 0, 0)
    if name == "phone.jpg":  # sent upright: the red half (stored left) is now on top
        assert sent.size == (40, 60)
        top, bottom = sent.convert("RGB").getpixel((20, 5)), sent.convert("RGB").getpixel((20, 55))
        assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60
    if name == "pal.png":
        assert "A" in sent.mode or "transparency" in sent.info
    if name == "pano.png":
        assert sent.width <= 2048 and sent.height >= 1


# ----- property-based: the parser and interpolation never raise anything but our errors -------------------------
WORDS = [
    "-i", "--image", "--detail", "low", "high", "auto", "ultra", "--max-tokens", "5", "-1", "abc", "1e9",
    "--temperature", "nan", "0.5", "inf", "--deployment", "--system", "-o", "out", "1x", "None", "--no-stream",
    "--no-cache", "--refresh", "--dry-run", "--api-key", "--key=x", "--token", "{x}", "{y}", "{{x}}", "{bad}",
    "{nosuch}", "'", '"', "=", "--", "-", "--help", "-h", "x", "img", "\\", "{", "}", "--max-tokens={x}",
]
NAMESPACE = {"x": 3, "y": "{x}", "img": "nothere.png", "bad": _Unprintable(), "arr": np.zeros((2, 2, 3), np.uint8)}
lines = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=10)), max_size=8).map(" ".join)
bodies = st.one_of(
    st.text(max_size=80),
    st.lists(st.one_of(st.sampled_from(["{x}", "{y}", "{{x}}", "{bad}", "{", "}", "{nosuch}", "{{", "}}", '{"a": {"b": 1}}']),
                       st.text(max_size=6)), max_size=10).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(line=lines, cell=bodies)
def test_parser_yields_a_command_or_a_config_error(line, cell):
    try:
        command = parse_cell(line, cell, NAMESPACE)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e).strip()
        return
    assert isinstance(command, VisionCommand) and command.prompt.strip()


@settings(max_examples=300, deadline=None)
@given(text=bodies, value=st.one_of(st.integers(), st.text(max_size=8), st.floats(allow_nan=True)))
def test_interpolation_is_total_and_keeps_braces(text, value):
    ns = {"x": value, "y": "{x}"}
    out = interpolate(text, ns)
    assert isinstance(out, str)
    if "{" not in text:
        assert out == text
    assert interpolate("{{x}}", ns) == "{x}" and interpolate("{x}", ns) == str(value)
    assert interpolate('{"a": {"b": 1}}', ns) == '{"a": {"b": 1}}'


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=lines, cell=bodies)
def test_magic_yields_a_preview_or_a_usage_error(line, cell, shell, emulator):
    shell.user_ns.update(NAMESPACE)
    try:
        out = shell.run_cell_magic("azure_vision", f"{line} --dry-run", cell)
    except UsageError as e:
        assert str(e).strip() and "Traceback" not in str(e)
    else:
        assert out is None or hasattr(out, "_repr_mimebundle_") or out.__class__.__name__ == "Markdown"
    assert emulator.count() == 0
