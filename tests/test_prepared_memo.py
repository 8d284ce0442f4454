"""The image-preparation memo and the render caches behind fast re-runs: a hit is the same PreparedImage, and
any change to the content or the options prepares again."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from azmm_magic.core import files
from azmm_magic.frontends.command import parse_cell
from azmm_magic.core.errors import ImageInputError
from azmm_magic.core.images import (
    SMALL_THUMBNAIL_SIDE,
    PreparedImage,
    clear_prepared_memo,
    clear_thumbnails,
    has_thumbnail,
    light_copy,
    prepare_images,
    thumbnail,
)
from azmm_magic.core.images.memo import PREPARED_MEMO, BoundedCache


@pytest.fixture(autouse=True)
def _empty_memo() -> None:
    clear_prepared_memo()
    clear_thumbnails()


def photo(width: int = 320, height: int = 240, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1) + rng.integers(0, 24, (height, width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def write_jpeg(path: Path, img: Image.Image) -> Path:
    img.save(path, "JPEG", quality=90)
    return path


def test_same_file_twice_is_the_same_prepared_image(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "a.jpg", photo())
    [first] = prepare_images(path)
    [third] = prepare_images(str(path))
    assert third is first
    assert thumbnail(third, 64) is thumbnail(first, 64)  # so the rendered thumbnail is reused too
    [other] = prepare_images(f"{tmp_path}/./a.jpg")  # another spelling is another label (the source shown)
    assert other is not first and other.source.endswith("/./a.jpg") and other.sha256 == first.sha256


def test_rewritten_file_is_prepared_again(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "a.jpg", photo(seed=1))
    [before] = prepare_images(path)
    stat = path.stat()
    write_jpeg(path, photo(seed=2))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    [after] = prepare_images(path)
    assert after.sha256 != before.sha256
    assert Image.open(io.BytesIO(after.data)).tobytes() == Image.open(path).tobytes()


def test_options_are_part_of_the_key(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "big.jpg", photo(1200, 900))
    [high] = prepare_images(path, detail="high")
    [low] = prepare_images(path, detail="low")
    [small_cap] = prepare_images(path, detail="high", max_bytes=20_000)
    assert (high.width, low.width) == (1024, 512)
    assert small_cap is not high and len(small_cap.data) <= 20_000
    assert prepare_images(path, detail="high")[0] is high


def test_bytes_are_memoized_by_content() -> None:
    buf = io.BytesIO()
    photo().save(buf, "PNG")
    data = bytearray(buf.getvalue())
    [a] = prepare_images(data)
    assert prepare_images(bytes(data))[0] is a
    other = io.BytesIO()
    photo(seed=9).save(other, "PNG")
    data[:] = other.getvalue()  # the same bytearray object, new content
    [b] = prepare_images(data)
    assert b.sha256 != a.sha256


def test_numpy_array_changed_in_place_is_prepared_again() -> None:
    arr = np.zeros((40, 60, 3), dtype=np.uint8)
    [first] = prepare_images(arr)
    assert prepare_images(arr)[0] is first
    arr[10:20, 10:20] = 255  # same object, new pixels
    [second] = prepare_images(arr)
    assert second is not first and second.sha256 != first.sha256
    assert prepare_images(arr.astype(np.float64) / 255)[0].sha256 == second.sha256  # same pixels, other dtype


def test_pil_image_changed_in_place_is_prepared_again() -> None:
    img = Image.new("P", (30, 20), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    [first] = prepare_images(img)
    assert prepare_images(img)[0] is first
    img.putpixel((3, 3), 1)
    [second] = prepare_images(img)
    assert second.sha256 != first.sha256
    img.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)  # same pixel indices, other colours
    [third] = prepare_images(img)
    assert third.sha256 != second.sha256


def test_failures_are_not_memoized(tmp_path: Path) -> None:
    path = tmp_path / "late.jpg"
    good = io.BytesIO()
    photo().save(good, "JPEG")
    path.write_bytes(good.getvalue()[:200])
    with pytest.raises(ImageInputError, match="late.jpg"):
        prepare_images(path)
    assert len(PREPARED_MEMO) == 0
    path.write_bytes(good.getvalue())
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000_000))
    [ok] = prepare_images(path)
    assert ok.width == 320


def test_truncated_jpeg_sent_as_is_is_still_rejected(tmp_path: Path) -> None:
    data = io.BytesIO()
    photo().save(data, "JPEG", quality=90)
    cut = data.getvalue()[:-400]
    with pytest.raises(ImageInputError, match="truncated or corrupt"):
        prepare_images(cut)


def test_memo_is_bounded_by_entries_and_bytes() -> None:
    memo: BoundedCache[PreparedImage] = BoundedCache(2, 100, lambda image: len(image.data or b""))

    def img(n: int, size: int) -> PreparedImage:
        return PreparedImage(b"x" * size, "image/png", 1, 1, str(n), f"<{n}>")

    for n in range(3):
        memo.put(n, img(n, 10))
    assert len(memo) == 2 and memo.get(0) is None and memo.get(2) is not None
    memo.put("big", img(9, 101))  # larger than the whole budget: not kept
    assert memo.get("big") is None
    memo.put("a", img(4, 60))
    memo.put("b", img(5, 60))  # 120 bytes > 100: the older one goes
    assert memo.get("a") is None and memo.get("b") is not None
    assert memo.clear() == 1 and len(memo) == 0


def test_clear_prepared_memo(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "a.jpg", photo())
    [first] = prepare_images(path)
    assert clear_prepared_memo() >= 1
    [again] = prepare_images(path)
    assert again is not first and again == first


def test_thumbnail_is_jpeg_for_photos_png_otherwise_and_cached(tmp_path: Path) -> None:
    [jpeg] = prepare_images(write_jpeg(tmp_path / "p.jpg", photo(1000, 500)))
    made = thumbnail(jpeg, 256)
    assert made is not None and made.media_type == "image/jpeg"
    assert Image.open(io.BytesIO(made.data)).size == (256, 128)
    assert thumbnail(jpeg, 256) is made
    rgba = Image.new("RGBA", (100, 50), (255, 0, 0, 128))
    [png] = prepare_images(rgba)
    made = thumbnail(png, 40)
    assert made is not None
    thumb = Image.open(io.BytesIO(made.data))
    assert made.media_type == "image/png" and thumb.size == (40, 20) and thumb.mode == "RGBA"
    [url] = prepare_images("https://example.com/cat.png")
    assert thumbnail(url) is None


def test_rendered_result_uses_the_thumbnail_media_type(tmp_path: Path) -> None:
    from azmm_magic.display.result import result_bundle
    from azmm_magic.core.result import VisionResult

    [jpeg] = prepare_images(write_jpeg(tmp_path / "p.jpg", photo()))
    [png] = prepare_images(Image.new("RGB", (20, 20), (0, 200, 0)))
    bundle = result_bundle(VisionResult(text="**bold** answer", images=(jpeg, png), deployment="d"))
    assert "data:image/jpeg;base64," in bundle["text/html"] and "data:image/png;base64," in bundle["text/html"]
    assert "<strong>bold</strong>" in bundle["text/html"]
    assert result_bundle(VisionResult(text="**bold** answer", deployment="d"))["text/html"].count("<strong>") == 1


def test_reused_cell_parser_keeps_no_state_between_cells() -> None:
    first = parse_cell("-i a.png -i b.png --detail low", "q", {})
    second = parse_cell("", "q", {})
    assert first.images == ("a.png", "b.png") and first.detail == "low"
    assert second.images == () and second.detail is None


def test_cache_hit_in_the_magic_reuses_the_prepared_image(shell, emulator, red_png) -> None:
    shell.user_ns["img"] = str(red_png)
    first = shell.run_cell_magic("azure_vision", "-i img --no-stream", "Same")
    first._repr_mimebundle_()
    again = shell.run_cell_magic("azure_vision", "-i img --no-stream", "Same")
    assert again.cached and again.images[0] is first.images[0]
    assert len(emulator.chat_requests()) == 1


def test_a_file_written_just_now_is_checked_by_content_not_by_stat(tmp_path: Path, monkeypatch) -> None:
    path = write_jpeg(tmp_path / "fresh.jpg", photo())
    [first] = prepare_images(path)
    assert not [k for k in PREPARED_MEMO.keys() if k[0] == "file"]  # too recent to trust its stat
    assert prepare_images(path)[0] is first  # found by the hash of its bytes
    monkeypatch.setattr(files, "RACY_SECONDS", -1.0)  # as if the file had been written long ago
    assert prepare_images(path)[0] is first
    assert [k for k in PREPARED_MEMO.keys() if k[0] == "file"]


def test_preparing_makes_no_thumbnail_and_a_thumbnail_decodes_at_reduced_scale(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is rendered for an image until it is shown; when it is, the photo is decoded at a reduced scale
    (Pillow's draft) and the small copy a batch keeps is a JPEG of the thumbnail size."""
    path = write_jpeg(tmp_path / "big.jpg", photo(1600, 1200))
    [prepared] = prepare_images(path, detail="high")
    assert not has_thumbnail(prepared) and not has_thumbnail(prepared, SMALL_THUMBNAIL_SIDE)
    from PIL import JpegImagePlugin

    drafts: list[tuple[int, int]] = []
    original = JpegImagePlugin.JpegImageFile.draft

    def draft(self, mode, size):  # type: ignore[no-untyped-def]
        drafts.append(size)
        return original(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", draft)
    small = light_copy(prepared, thumbnail=True)
    assert drafts and max(drafts[-1]) <= SMALL_THUMBNAIL_SIDE
    with Image.open(io.BytesIO(small.data or b"")) as img:
        assert max(img.size) == SMALL_THUMBNAIL_SIDE and img.format == "JPEG"
    assert (small.width, small.height, small.sha256) == (prepared.width, prepared.height, prepared.sha256)
    made = thumbnail(prepared)
    assert made is not None and made.media_type == "image/jpeg" and has_thumbnail(prepared)


def test_an_opaque_png_thumbnail_is_a_jpeg_and_a_chart_stays_png(tmp_path: Path) -> None:
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8))
    [photo_png] = prepare_images(noisy)
    chart = Image.new("RGB", (300, 200), "white")
    chart.paste((30, 90, 200), (20, 20, 120, 180))
    [chart_png] = prepare_images(chart)
    assert [getattr(thumbnail(i), "media_type", None) for i in (photo_png, chart_png)] == ["image/jpeg", "image/png"]


def test_a_png_sent_as_it_is_is_checked_without_decoding_its_pixels(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, "PNG")
    data = buf.getvalue()
    from PIL import ImageFile

    loads: list[object] = []
    original = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: (loads.append(self), original(self))[1])
    [sent] = prepare_images(data)
    assert sent.data == data and sent.media_type == "image/png" and (sent.width, sent.height) == (64, 48)
    assert loads == []  # no pixel decoded
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0xFF  # inside the pixel data: its checksum no longer matches
    with pytest.raises(ImageInputError, match="truncated or corrupt"):
        prepare_images(bytes(corrupt))
    with pytest.raises(ImageInputError, match="truncated or corrupt"):
        prepare_images(data[:-12])
