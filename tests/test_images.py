"""Tests for azmm_magic.core.images: every source type, processing, token rules and error messages.

All images are generated here (PIL/numpy) in ``tmp_path``; nothing is downloaded. The only network use is a
``http.server`` on 127.0.0.1 for the ``inline_urls=True`` path.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.server
import io
import os
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt

from azmm_magic.core.errors import ConfigError, ImageInputError
from azmm_magic.core.images import (
    TOKEN_RULES,
    PreparedImage,
    estimate_image_tokens,
    looks_like_image,
    max_useful_size,
    prepare_images,
    thumbnail,
)
from azmm_magic.core.images.fetch import fetch_url

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------------------- helpers


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save(img: Image.Image, path: Path, fmt: str | None = None, **kwargs: object) -> Path:
    img.save(path, fmt, **kwargs)
    return path


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like RGB image: smooth gradients plus noise (many distinct colours)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([x * 255 // max(1, width), y * 255 // max(1, height), (x + y) % 256], axis=-1)
    arr = arr + rng.integers(0, 24, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def chart(width: int, height: int) -> Image.Image:
    """A chart-like RGB image: white with two flat-coloured rectangles (few colours)."""
    img = Image.new("RGB", (width, height), "white")
    img.paste((200, 30, 30), (width // 10, height // 10, width // 2, height // 2))
    img.paste((30, 30, 200), (width // 2, height // 2, width - 1, height - 1))
    return img


def decode(prepared: PreparedImage) -> Image.Image:
    assert prepared.data is not None
    img = Image.open(io.BytesIO(prepared.data))
    img.load()
    return img


def close_to(pixel: tuple[int, ...], expected: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, expected))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def small_png(tmp_path: Path) -> Path:
    return save(chart(64, 48), tmp_path / "small.png")


# ------------------------------------------------------------------------------------------------------- token rules


def test_token_rule_names() -> None:
    assert set(TOKEN_RULES) == {"gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1-nano", "o4-mini"}


@pytest.mark.parametrize(
    ("width", "height", "detail", "rule", "tokens"),
    [
        (1024, 1024, "high", "gpt-4o", 765),
        (2048, 4096, "high", "gpt-4o", 1105),
        (4096, 2048, "high", "gpt-4o", 1105),
        (1024, 1024, "auto", "gpt-4o", 765),
        (1024, 1024, "low", "gpt-4o", 85),
        (6000, 4000, "low", "gpt-4o", 85),
        (512, 512, "high", "gpt-4o", 255),
        (100, 100, "high", "gpt-4o", 255),
        (6000, 4000, "high", "gpt-4o", 1105),  # 1152x768 -> 3x2 tiles
        (1024, 1024, "high", "gpt-4o-mini", 2833 + 5667 * 4),
        (1024, 1024, "low", "gpt-4o-mini", 2833),
        # patch rule: 1024x1024 = 32x32 = 1024 patches; 1800x2400 -> 1056x1408 = 33x44 = 1452 patches
        (1024, 1024, "high", "gpt-4.1-mini", 1659),  # 1024 * 1.62 = 1658.88
        (1800, 2400, "high", "gpt-4.1-mini", 2352),  # 1452 * 1.62 = 2352.24 (OpenAI's worked example)
        (1800, 2400, "low", "gpt-4.1-mini", 2352),  # low is treated like high under the patch rule
        (1800, 2400, "high", "gpt-4.1-nano", 3572),  # 1452 * 2.46 = 3571.92
        (1800, 2400, "auto", "o4-mini", 2497),  # 1452 * 1.72 = 2497.44
        (100, 100, "high", "o4-mini", 28),  # 4x4 = 16 patches * 1.72 = 27.52
    ],
)
def test_estimate_image_tokens(width: int, height: int, detail: str, rule: str, tokens: int) -> None:
    assert estimate_image_tokens(width, height, detail, rule) == tokens  # type: ignore[arg-type]


def test_max_useful_size_examples() -> None:
    assert max_useful_size(6000, 4000, "high") == (1152, 768)
    assert max_useful_size(6000, 4000, "auto") == (1152, 768)
    assert max_useful_size(6000, 4000, "low") == (512, 341)
    assert max_useful_size(4000, 6000, "low") == (341, 512)
    assert max_useful_size(2048, 4096, "high") == (768, 1536)
    assert max_useful_size(300, 200, "high") == (300, 200)  # never upscales
    assert max_useful_size(300, 200, "low") == (300, 200)
    assert max_useful_size(1800, 2400, "high", "gpt-4.1-mini") == (1056, 1408)
    assert max_useful_size(1024, 1536, "low", "gpt-4.1-nano") == (1024, 1536)  # exactly 1536 patches: kept
    w, h = max_useful_size(100_000, 10, "high", "o4-mini")  # very thin: still <= 1536 patches
    assert -(-w // 32) * -(-h // 32) <= 1536


def test_unknown_size_gives_an_upper_bound() -> None:
    assert estimate_image_tokens(0, 0, "high") == 85 + 170 * 8
    assert estimate_image_tokens(0, 0, "low") == 85
    assert estimate_image_tokens(0, 0, "high", "gpt-4.1-mini") == round(1536 * 1.62)


def test_bad_rule_and_detail() -> None:
    with pytest.raises(ConfigError, match="unknown token rule 'gpt-9'.*gpt-4o"):
        estimate_image_tokens(10, 10, "high", "gpt-9")
    with pytest.raises(ConfigError, match="detail"):
        estimate_image_tokens(10, 10, "medium")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="detail"):
        max_useful_size(10, 10, "ultra")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    width=st.integers(1, 20_000),
    height=st.integers(1, 20_000),
    detail=st.sampled_from(["low", "high", "auto"]),
    rule=st.sampled_from(sorted(TOKEN_RULES)),
)
def test_max_useful_size_properties(width: int, height: int, detail: str, rule: str) -> None:
    """Never upscales, is idempotent, and downscaling to it never changes the bill."""
    w, h = max_useful_size(width, height, detail, rule)  # type: ignore[arg-type]
    assert 1 <= w <= width and 1 <= h <= height
    assert max_useful_size(w, h, detail, rule) == (w, h)  # type: ignore[arg-type]
    billed = estimate_image_tokens(width, height, detail, rule)  # type: ignore[arg-type]
    assert estimate_image_tokens(w, h, detail, rule) == billed  # type: ignore[arg-type]
    if TOKEN_RULES[rule].kind == "patch":
        assert -(-w // 32) * -(-h // 32) <= 1536
    elif detail == "low":
        assert max(w, h) <= 512
    else:
        assert max(w, h) <= 2048 and min(w, h) <= 768


# --------------------------------------------------------------------------------------------------- files and globs


def test_small_png_is_sent_untouched(small_png: Path) -> None:
    [p] = prepare_images(str(small_png))
    assert p.data == small_png.read_bytes()
    assert p.sha256 == sha(small_png.read_bytes())
    assert (p.media_type, p.width, p.height, p.original_size) == ("image/png", 64, 48, (64, 48))
    assert p.source == str(small_png)
    assert p.notices == ()
    assert p.url is None


def test_small_jpeg_webp_gif_are_sent_untouched(tmp_path: Path) -> None:
    cases = [("a.jpg", "JPEG", "image/jpeg"), ("a.webp", "WEBP", "image/webp"), ("a.gif", "GIF", "image/gif")]
    for name, fmt, media in cases:
        path = save(photo(40, 30), tmp_path / name, fmt)
        [p] = prepare_images(path)
        assert p.data == path.read_bytes(), name
        assert p.media_type == media


def test_pathlib_path_and_tilde(tmp_path: Path, small_png: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    [a] = prepare_images(small_png)
    [b] = prepare_images("~/small.png")
    [c] = prepare_images(Path("~/small.png"))
    assert a.sha256 == b.sha256 == c.sha256
    assert b.source == "~/small.png"


def test_glob_sorted_and_question_mark_and_brackets(tmp_path: Path) -> None:
    for name in ["b.png", "a.png", "c.jpg", "notes.txt"]:
        if name.endswith("txt"):
            (tmp_path / name).write_text("hi")
        else:
            save(chart(20, 10), tmp_path / name)
    (tmp_path / "sub.png").mkdir()  # a directory matching the glob is skipped
    found = prepare_images(str(tmp_path / "*.png"))
    assert [Path(p.source).name for p in found] == ["a.png", "b.png"]
    assert [Path(p.source).name for p in prepare_images(str(tmp_path / "?.jpg"))] == ["c.jpg"]
    assert [Path(p.source).name for p in prepare_images(str(tmp_path / "[bc].*g"))] == ["b.png", "c.jpg"]


def test_recursive_glob(tmp_path: Path) -> None:
    (tmp_path / "x" / "y").mkdir(parents=True)
    save(chart(20, 10), tmp_path / "top.png")
    save(chart(20, 10), tmp_path / "x" / "mid.png")
    save(chart(20, 10), tmp_path / "x" / "y" / "deep.png")
    found = prepare_images(tmp_path / "**" / "*.png")
    assert sorted(Path(p.source).name for p in found) == ["deep.png", "mid.png", "top.png"]
    assert [p.source for p in found] == sorted(p.source for p in found)


def test_glob_matching_nothing_names_the_pattern(tmp_path: Path) -> None:
    pattern = str(tmp_path / "*.heic")
    with pytest.raises(ImageInputError, match="no image file matches") as err:
        prepare_images(pattern)
    assert pattern in str(err.value)


def test_prepare_images_limit_checked_before_decoding(tmp_path: Path) -> None:
    for i in range(4):
        (tmp_path / f"{i}.png").write_bytes(b"not decoded")  # would fail if decoded
    with pytest.raises(ImageInputError, match="4 images given but at most 3"):
        prepare_images(str(tmp_path / "*.png"), max_images=3)


def test_prepare_images_accepts_one_source_or_many(small_png: Path) -> None:
    assert len(prepare_images(small_png)) == 1
    assert len(prepare_images([small_png, str(small_png)])) == 2
    assert len(prepare_images(p for p in [small_png, small_png, small_png])) == 3
    assert len(prepare_images(np.zeros((4, 4), np.uint8))) == 1  # an array is one image, not rows
    assert prepare_images([]) == []


def test_lists_and_tuples_are_flattened(small_png: Path) -> None:
    arr = np.zeros((8, 8, 3), np.uint8)
    found = prepare_images([small_png, (arr, [str(small_png)])])
    assert [p.source for p in found] == [str(small_png), "<numpy (8, 8, 3) uint8>", str(small_png)]


# ------------------------------------------------------------------------------------------------------------ URLs


def test_http_url_is_passed_as_url() -> None:
    url = "https://example.com/pics/cat.PNG?x=1"
    [p] = prepare_images(url)
    assert p.data is None and p.url == url and p.source == "https://example.com/pics/cat.PNG?…"  # the label: no query
    assert p.sha256 == sha(url.encode())
    assert (p.width, p.height, p.media_type) == (0, 0, "image/png")
    assert p.data_url() == url
    assert p.content_part("low") == {"type": "image_url", "image_url": {"url": url, "detail": "low"}}
    assert thumbnail(p) is None  # no local pixels: the URL itself is shown
    assert p.estimate_tokens("high") == 85 + 170 * 8  # upper bound: size unknown
    [q] = prepare_images("http://example.com/photo")
    assert q.media_type == "image/*"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        targets = {"/to-file": "file:///etc/passwd", "/to-ftp": "ftp://127.0.0.1/x.png"}
        if self.path in targets:
            self.send_response(302)
            self.send_header("Location", targets[self.path])
            self.end_headers()
            return
        super().do_GET()


@pytest.fixture
def http_root(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_inline_urls_fetches_from_local_server(http_root: tuple[Path, str]) -> None:
    root, base = http_root
    path = save(chart(64, 48), root / "chart.png")
    [p] = prepare_images(f"{base}/chart.png", inline_urls=True)
    assert p.url is None and p.data == path.read_bytes() and p.source == f"{base}/chart.png"
    assert p.data_url().startswith("data:image/png;base64,")


def test_inline_urls_errors(http_root: tuple[Path, str]) -> None:
    root, base = http_root
    with pytest.raises(ImageInputError, match="HTTP 404") as err:
        prepare_images(f"{base}/missing.png", inline_urls=True)
    assert f"{base}/missing.png" in str(err.value)
    with pytest.raises(ImageInputError, match="to-file.*not allowed"):
        prepare_images(f"{base}/to-file", inline_urls=True)
    with pytest.raises(ImageInputError, match="non-http"):  # urllib itself would follow ftp://
        prepare_images(f"{base}/to-ftp", inline_urls=True)
    (root / "big.bin").write_bytes(b"x" * 5000)
    with pytest.raises(ImageInputError, match="cap"):
        fetch_url(f"{base}/big.bin", max_size=1000)
    (root / "page.png").write_text("<html>not an image</html>")
    with pytest.raises(ImageInputError, match="page.png"):
        prepare_images(f"{base}/page.png", inline_urls=True)


def test_unreachable_url_is_an_image_input_error() -> None:
    with pytest.raises(ImageInputError, match="could not fetch"):
        fetch_url("http://127.0.0.1:9/nothing.png", timeout=2)


def test_data_url(small_png: Path) -> None:
    raw = small_png.read_bytes()
    [p] = prepare_images("data:image/png;base64," + base64.b64encode(raw).decode())
    assert p.data == raw and p.source == f"<data URL {len(raw)} B>"
    with pytest.raises(ImageInputError, match="base64"):
        prepare_images("data:image/png;base64,@@@not-base64@@@")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "javascript:alert(1)", "ftp://example.com/a.png", "FILE:///tmp/x.png"]
)
def test_other_url_schemes_are_refused(url: str) -> None:
    with pytest.raises(ImageInputError, match="unsupported URL scheme") as err:
        prepare_images(url)
    assert url[:20] in str(err.value)


# ------------------------------------------------------------------------------------------ in-memory sources


def test_bytes_bytearray_memoryview(small_png: Path) -> None:
    raw = small_png.read_bytes()
    for source in (raw, bytearray(raw), memoryview(raw)):
        [p] = prepare_images(source)
        assert p.data == raw and p.source == f"<bytes {len(raw)} B>"


def test_pil_image_sources_and_caller_image_untouched() -> None:
    img = photo(640, 480)
    before = img.tobytes()
    [p] = prepare_images(img)
    assert p.source == "<PIL.Image 640x480>" and p.media_type == "image/jpeg"
    assert (p.width, p.height) == (640, 480)
    assert img.tobytes() == before and img.size == (640, 480)

    [c] = prepare_images(chart(640, 480))
    assert c.media_type == "image/png"  # few colours: lossless

    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    rgba.paste((0, 255, 0, 255), (0, 0, 16, 16))
    [a] = prepare_images(rgba)
    assert a.media_type == "image/png" and decode(a).mode == "RGBA"
    assert decode(a).getpixel((20, 20))[3] == 0

    opaque = photo(64, 64).convert("RGBA")  # alpha all 255: treated as a photo
    [o] = prepare_images(opaque)
    assert o.media_type == "image/jpeg"


def test_pil_image_from_file_keeps_caller_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "lime", "blue")]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as img:
        img.seek(2)
        [p] = prepare_images(img)
        assert img.tell() == 2
    assert close_to(decode(p).convert("RGB").getpixel((8, 8)), (255, 0, 0))


@pytest.mark.parametrize(
    ("arr", "mode"),
    [
        (np.full((12, 16), 200, np.uint8), "L"),
        (np.full((12, 16, 1), 200, np.uint8), "L"),
        (np.full((12, 16, 3), 200, np.uint8), "RGB"),
        (np.dstack([np.full((12, 16, 3), 200, np.uint8), np.full((12, 16), 100, np.uint8)]), "RGBA"),
        (np.full((12, 16, 3), 200 / 255, np.float32), "RGB"),
        (np.full((12, 16), 200 / 255, np.float64), "L"),
        (np.ones((12, 16), bool), "L"),
        (np.asfortranarray(np.full((12, 16, 3), 200, np.uint8)), "RGB"),
    ],
)
def test_numpy_arrays(arr: np.ndarray, mode: str) -> None:
    [p] = prepare_images(arr)
    img = decode(p)
    assert (p.width, p.height) == (16, 12)
    assert img.mode == mode
    assert p.source == f"<numpy {arr.shape} {arr.dtype}>"
    expected = 255 if arr.dtype == bool else 200
    first = img.getpixel((3, 3))
    assert (first if isinstance(first, int) else first[0]) == expected


def test_numpy_float_rounding() -> None:
    arr = np.array([[0.0, 0.5, 1.0]], np.float32)
    [p] = prepare_images(arr)
    assert [decode(p).getpixel((x, 0)) for x in range(3)] == [0, 128, 255]


@pytest.mark.parametrize(
    ("arr", "message"),
    [
        (np.zeros((4, 4), np.int64), "dtype int64"),
        (np.zeros((4, 4), np.uint16), "dtype uint16"),
        (np.zeros((4, 4), np.complex64), "dtype complex64"),
        (np.zeros((4, 4, 2), np.uint8), r"shape \(4, 4, 2\)"),
        (np.zeros((4,), np.uint8), r"shape \(4,\)"),
        (np.zeros((2, 4, 4, 3), np.uint8), r"shape \(2, 4, 4, 3\)"),
        (np.zeros((0, 4), np.uint8), "no pixels"),
        (np.array([[0.1, np.nan]]), "NaN"),
        (np.array([[0.1, np.inf]]), "NaN or infinite"),
        (np.array([[0.0, 255.0]]), r"\[0, 1\]"),
    ],
)
def test_numpy_errors_say_what_is_accepted(arr: np.ndarray, message: str) -> None:
    with pytest.raises(ImageInputError, match=message) as err:
        prepare_images(arr)
    text = str(err.value)
    assert "numpy" in text
    assert "uint8" in text or "[0, 1]" in text


def test_matplotlib_figure() -> None:
    fig, ax = plt.subplots(figsize=(4, 3), dpi=50)
    ax.plot([0, 1, 2], [2, 0, 1])
    [p] = prepare_images(fig)
    assert p.media_type == "image/png"
    assert p.source == f"<matplotlib Figure {fig.number}>"
    assert 100 <= p.width <= 200 and 75 <= p.height <= 150  # 200x150 at dpi 50, cropped tight
    assert p.notices == ()


def test_pyplot_current_figure() -> None:
    with pytest.raises(ImageInputError, match="no open matplotlib figure"):
        prepare_images("plt.gcf()")
    with pytest.raises(ImageInputError, match="no open matplotlib figure"):
        prepare_images(plt)
    fig = plt.figure(figsize=(2, 2), dpi=40)
    plt.plot([1, 2, 3])
    [a] = prepare_images("plt.gcf()")
    [b] = prepare_images(plt)
    assert a.source == b.source == f"<matplotlib Figure {fig.number}>"
    assert a.sha256 == b.sha256


def test_prepared_image_is_returned_as_is(small_png: Path) -> None:
    [p] = prepare_images(small_png)
    [q] = prepare_images(p)
    assert q is p
    assert prepare_images([p, p]) == [p, p]


def test_unsupported_type_names_it() -> None:
    class Gizmo:
        pass

    with pytest.raises(ImageInputError, match="Gizmo") as err:
        prepare_images(Gizmo())
    assert "file path" in str(err.value) and "numpy array" in str(err.value)
    with pytest.raises(ImageInputError, match="type int"):
        prepare_images(42)
    with pytest.raises(ImageInputError, match="type dict"):
        prepare_images({"a": 1})


# ------------------------------------------------------------------------------------------------------ processing


def test_exif_rotated_jpeg_comes_out_upright(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (20, 0, 40, 20))  # stored: left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = save(img, tmp_path / "rotated.jpg", "JPEG", exif=exif.tobytes(), quality=95)
    [p] = prepare_images(path)
    out = decode(p)
    assert (p.width, p.height) == (20, 40) and p.original_size == (20, 40)
    assert close_to(out.getpixel((10, 5)), (255, 0, 0))  # displayed: top half red
    assert close_to(out.getpixel((10, 35)), (0, 0, 255))  # bottom half blue
    assert out.getexif().get(0x0112, 1) == 1
    assert any("EXIF orientation 6" in n for n in p.notices)
    assert p.sha256 != sha(path.read_bytes())


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path: Path) -> None:
    path = save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", "JPEG")
    assert Image.open(path).mode == "CMYK"
    [p] = prepare_images(path)
    out = decode(p)
    assert out.mode == "RGB" and p.media_type == "image/jpeg"
    assert close_to(out.getpixel((16, 16)), (255, 0, 0))
    assert "converted CMYK JPEG to RGB" in p.notices


def test_16_bit_png_is_converted_to_8_bit(tmp_path: Path) -> None:
    arr = np.zeros((8, 12), np.uint16)
    arr[:, 4:8] = 32896
    arr[:, 8:] = 65535
    path = save(Image.fromarray(arr), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    [p] = prepare_images(path)
    out = decode(p)
    assert out.mode == "L" and p.media_type == "image/png"
    assert [out.getpixel((x, 0)) for x in (0, 5, 10)] == [0, 128, 255]
    assert any("16-bit" in n for n in p.notices)


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    def palette_image(size: tuple[int, int]) -> Image.Image:
        img = Image.new("P", size, 0)
        img.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
        img.paste(1, (0, 0, size[0] // 2, size[1]))  # left half red, right half transparent
        return img

    small = save(palette_image((32, 32)), tmp_path / "small.png", transparency=0)
    [p] = prepare_images(small)
    assert p.data == small.read_bytes()  # a valid PNG as it is: sent untouched

    big = save(palette_image((1200, 1200)), tmp_path / "big.png", transparency=0)
    [q] = prepare_images(big, detail="low")
    out = decode(q)
    assert (q.width, q.height) == (512, 512) and q.media_type == "image/png" and out.mode == "RGBA"
    assert out.getpixel((100, 256)) == (255, 0, 0, 255)
    assert out.getpixel((400, 256))[3] == 0


def test_la_png_is_converted_to_rgba(tmp_path: Path) -> None:
    img = Image.new("LA", (1000, 600), (128, 255))
    img.paste((0, 0), (500, 0, 1000, 600))
    [p] = prepare_images(save(img, tmp_path / "la.png"), detail="low")
    out = decode(p)
    assert out.mode == "RGBA" and (p.width, p.height) == (512, 307)
    assert out.getpixel((10, 10)) == (128, 128, 128, 255) and out.getpixel((500, 10))[3] == 0


def test_animated_gif_first_frame_with_notice(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "lime", "blue")]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    [p] = prepare_images(path)
    assert "animated GIF: first frame used" in p.notices
    assert p.data != path.read_bytes()
    out = decode(p)
    assert getattr(out, "n_frames", 1) == 1
    assert close_to(out.convert("RGB").getpixel((8, 8)), (255, 0, 0))


def test_downscaling_caps(tmp_path: Path) -> None:
    path = save(chart(3000, 2000), tmp_path / "chart.png")
    [high] = prepare_images(path, detail="high")
    assert (high.width, high.height) == (1152, 768) and high.original_size == (3000, 2000)
    assert high.media_type == "image/png"
    assert "downscaled 3000x2000 -> 1152x768 (detail=high)" in high.notices
    [low] = prepare_images(path, detail="low")
    assert (low.width, low.height) == (512, 341)
    assert max(decode(low).size) <= 512
    [patch] = prepare_images(path, detail="high", rule="gpt-4.1-mini")
    assert -(-patch.width // 32) * -(-patch.height // 32) <= 1536
    assert patch.estimate_tokens("high", "gpt-4.1-mini") == estimate_image_tokens(3000, 2000, "high", "gpt-4.1-mini")


def test_big_jpeg_is_capped(tmp_path: Path) -> None:  # its time: benchmarks/bench_prepare.py
    path = save(photo(6000, 4000), tmp_path / "big.jpg", "JPEG", quality=90)
    for detail, size in (("high", (1152, 768)), ("low", (512, 341))):
        [p] = prepare_images(path, detail=detail)
        assert (p.width, p.height) == size and p.media_type == "image/jpeg"
        assert p.original_size == (6000, 4000)


def test_max_bytes_reencodes_then_gives_up() -> None:
    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 256, (400, 400, 3), dtype=np.uint8))
    [p] = prepare_images(noisy, max_bytes=40_000)
    assert p.data is not None and len(p.data) <= 40_000 and p.media_type == "image/jpeg"
    assert any("to fit 40000 bytes" in n for n in p.notices)
    assert (p.width, p.height) == decode(p).size
    with pytest.raises(ImageInputError, match="max_bytes=10"):
        prepare_images(noisy, max_bytes=10)


def test_original_over_max_bytes_is_reencoded(tmp_path: Path) -> None:
    path = save(photo(300, 200), tmp_path / "p.png")
    size = path.stat().st_size
    [p] = prepare_images(path, max_bytes=size - 1)
    assert p.data is not None and len(p.data) < size and p.data != path.read_bytes()


def test_decompression_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    error_level = save(Image.new("L", (100, 100)), tmp_path / "bomb.png")  # 10000 px > 2 * 1000
    warning_level = save(Image.new("L", (40, 40)), tmp_path / "warn.png")  # 1600 px > 1000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for path in (error_level, warning_level):
        with pytest.raises(ImageInputError, match="decompression bomb") as err:
            prepare_images(path)
        assert str(path) in str(err.value)


# ----------------------------------------------------------------------------------------------------- file errors


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match="not found") as err:
        prepare_images(str(tmp_path / "nope.png"))
    assert str(tmp_path / "nope.png") in str(err.value)


def test_directory_suggests_a_glob(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match="directory") as err:
        prepare_images(tmp_path)
    assert os.path.join(str(tmp_path), "*.png") in str(err.value)


def _truncated(path: Path, keep: float) -> bytes:
    data = path.read_bytes()
    return data[: int(len(data) * keep)]


@pytest.mark.parametrize(
    ("name", "content", "hint"),
    [
        ("empty.png", lambda d: b"", "empty"),
        ("trunc.png", lambda d: _truncated(save(photo(64, 64), d / "full.png"), 0.5), "truncated"),
        ("trunc.jpg", lambda d: _truncated(save(photo(64, 64), d / "full.jpg", "JPEG"), 0.5), "truncated"),
        ("text.png", lambda d: b"hello, I am text\n" * 10, "does not recognise"),
        ("logo.svg", lambda d: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        ("phone.heic", lambda d: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "HEIC"),
    ],
)
def test_unreadable_files_name_the_file_and_formats(tmp_path: Path, name: str, content, hint: str) -> None:
    path = tmp_path / name
    path.write_bytes(content(tmp_path))
    with pytest.raises(ImageInputError, match=hint) as err:
        prepare_images(path)
    text = str(err.value)
    assert str(path) in text
    assert "PNG, JPEG, WEBP, GIF" in text


def test_empty_source_string() -> None:
    with pytest.raises(ImageInputError, match="empty image source"):
        prepare_images("   ")


def test_bad_options() -> None:
    with pytest.raises(ConfigError):
        prepare_images(np.zeros((2, 2), np.uint8), detail="medium")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        prepare_images(np.zeros((2, 2), np.uint8), rule="nope")
    with pytest.raises(ConfigError):
        prepare_images(np.zeros((2, 2), np.uint8), max_bytes=0)


# ------------------------------------------------------------------------------------------- PreparedImage methods


def test_content_part_and_data_url(small_png: Path) -> None:
    [p] = prepare_images(small_png)
    part = p.content_part("high")
    assert set(part) == {"type", "image_url"} and part["type"] == "image_url"
    assert set(part["image_url"]) == {"url", "detail"} and part["image_url"]["detail"] == "high"
    url = part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == small_png.read_bytes()
    assert p.content_part("auto")["image_url"]["detail"] == "auto"
    with pytest.raises(ConfigError):
        p.content_part("hi")  # type: ignore[arg-type]


def test_estimate_tokens_uses_the_sent_size(tmp_path: Path) -> None:
    [p] = prepare_images(save(chart(2048, 4096), tmp_path / "tall.png"), detail="high")
    assert (p.width, p.height) == (768, 1536)
    assert p.estimate_tokens("high") == 1105
    assert p.estimate_tokens("low") == 85
    assert p.estimate_tokens("high", "gpt-4o-mini") == 2833 + 5667 * 6


def test_thumbnail_is_small_and_cached(tmp_path: Path) -> None:
    [p] = prepare_images(photo(1000, 500))
    made = thumbnail(p, 160)
    assert made is not None
    img = Image.open(io.BytesIO(made.data))
    assert img.format == "JPEG" and made.media_type == "image/jpeg" and img.size == (160, 80)
    assert thumbnail(p, 160) is made
    small = thumbnail(p, max_side=50)
    assert small is not None and Image.open(io.BytesIO(small.data)).size == (50, 25)


def test_repr_does_not_dump_bytes(small_png: Path) -> None:
    [p] = prepare_images(small_png)
    text = repr(p)
    assert "small.png" in text and "64x48" in text and len(text) < 300


def test_prepared_image_equality_hash_and_dataclass_tools(small_png: Path) -> None:
    [a] = prepare_images(small_png)
    [b] = prepare_images(small_png)
    thumbnail(a)
    assert a == b and hash(a) == hash(b)
    assert [f.name for f in dataclasses.fields(a)] == [
        "data",
        "media_type",
        "width",
        "height",
        "sha256",
        "source",
        "url",
        "original_size",
        "notices",
        "text",
        "ref",
    ]
    renamed = dataclasses.replace(a, source="other")
    assert renamed.source == "other" and renamed.sha256 == a.sha256
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.width = 1  # type: ignore[misc]


def test_thumbnail_of_corrupt_data_is_no_picture() -> None:
    bad = PreparedImage(b"not an image", "image/png", 1, 1, sha(b"not an image"), "<bad>")
    assert thumbnail(bad) is None  # shown as a placeholder, never a traceback in place of the answer


# ----------------------------------------------------------------------------------------------- looks_like_image


def test_looks_like_image() -> None:
    fig = plt.figure()
    assert looks_like_image(photo(4, 4))
    assert looks_like_image(np.zeros((4, 4)))
    assert looks_like_image(np.zeros((4, 4, 3)))
    assert not looks_like_image(np.zeros(4))
    assert not looks_like_image(np.zeros((1, 4, 4, 3)))
    assert looks_like_image(fig)
    assert looks_like_image(b"\x89PNG")
    assert looks_like_image(PreparedImage(b"", "image/png", 1, 1, "0", "x"))
    assert not looks_like_image("cat.png")
    assert not looks_like_image(Path("cat.png"))
    assert not looks_like_image([b"x"])
    assert not looks_like_image(None)


# -------------------------------------------------------------------------------------------------- import cost


def test_import_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys, azmm_magic.core.images\n"
        "heavy = [m for m in ('PIL', 'numpy', 'matplotlib', 'urllib.request') if m in sys.modules]\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
