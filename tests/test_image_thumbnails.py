"""One thumbnail API (``azmm_magic.core.images.thumbnail``) and its one bounded cache: sizes, PNG or JPEG, what the
cache is keyed by (content, a file's stat), its bounds, and the copy a batch keeps (``light_copy``)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from azmm_magic.core import files
from azmm_magic.core.images import (
    SMALL_THUMBNAIL_SIDE,
    THUMBNAIL_SIDE,
    PreparedImage,
    Thumbnail,
    clear_thumbnails,
    has_thumbnail,
    light_copy,
    prepare_images,
    thumbnail,
)
from azmm_magic.core.images import thumbnails as thumbnails_module
from azmm_magic.core.images.thumbnails import THUMBNAIL_CACHE


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    clear_thumbnails()


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def chart(width: int, height: int) -> Image.Image:
    img = Image.new("RGB", (width, height), "white")
    img.paste((30, 90, 200), (width // 8, height // 8, width // 2, height - height // 8))
    return img


def encoded(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def opened(made: Thumbnail | None) -> Image.Image:
    return Image.open(io.BytesIO(opened_data(made)))


def opened_data(made: Thumbnail | None) -> bytes:
    assert made is not None
    return made.data


@pytest.mark.parametrize("side", [1, 16, 100, SMALL_THUMBNAIL_SIDE, THUMBNAIL_SIDE, 999])
def test_the_longest_side_is_at_most_max_side_and_never_upscaled(side: int) -> None:
    [wide] = prepare_images(photo(1000, 500))
    [tall] = prepare_images(photo(30, 60, seed=1))
    for image in (wide, tall):
        size = opened(thumbnail(image, side)).size
        assert max(size) == min(side, max(image.width, image.height))
        assert abs(size[0] / size[1] - image.width / image.height) < 0.1 or min(size) == 1


def test_png_for_transparency_or_few_colours_jpeg_for_photos() -> None:
    transparent = Image.new("RGBA", (300, 200), (200, 10, 10, 100))
    cases = {
        "photo": (encoded(photo(300, 200), "PNG"), "image/jpeg", "JPEG"),
        "chart": (encoded(chart(300, 200), "PNG"), "image/png", "PNG"),
        "transparent": (encoded(transparent, "PNG"), "image/png", "PNG"),
        "chart saved as JPEG": (encoded(chart(300, 200), "JPEG"), "image/jpeg", "JPEG"),  # a JPEG stays a JPEG
    }
    for name, (data, media_type, fmt) in cases.items():
        [image] = prepare_images(data)
        made = thumbnail(image, 100)
        assert made is not None and made.media_type == media_type, name
        assert opened(made).format == fmt, name
    assert opened(thumbnail(prepare_images(encoded(transparent, "PNG"))[0])).mode == "RGBA"


def test_a_thumbnail_is_made_once_and_shared_by_equal_content() -> None:
    data = encoded(photo(400, 300), "JPEG")
    [image] = prepare_images(data)
    twin = PreparedImage(data, image.media_type, image.width, image.height, image.sha256, "<another label>")
    first = thumbnail(image)
    assert first is not None and thumbnail(image) is first and thumbnail(twin) is first
    assert thumbnail(image, 64) is not first and len(THUMBNAIL_CACHE) == 2
    assert first.data_url().startswith("data:image/jpeg;base64,/9j/")


def test_the_cache_is_bounded_by_entries_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    images = [prepare_images(photo(200, 100, seed=seed))[0] for seed in range(4)]
    sizes = [len(opened_data(thumbnail(image, 50))) for image in images]
    assert len(THUMBNAIL_CACHE) == 4 and THUMBNAIL_CACHE.total_bytes == sum(sizes)
    clear_thumbnails()
    monkeypatch.setattr(THUMBNAIL_CACHE, "max_entries", 2)
    for image in images:
        thumbnail(image, 50)
    assert len(THUMBNAIL_CACHE) == 2 and not has_thumbnail(images[0], 50) and has_thumbnail(images[3], 50)
    clear_thumbnails()
    monkeypatch.setattr(THUMBNAIL_CACHE, "max_entries", 100)
    monkeypatch.setattr(THUMBNAIL_CACHE, "max_bytes", 2 * max(sizes) - 1)  # room for one or two, never four
    for image in images:
        thumbnail(image, 50)
        assert THUMBNAIL_CACHE.total_bytes <= THUMBNAIL_CACHE.max_bytes
    assert 1 <= len(THUMBNAIL_CACHE) < 4 and has_thumbnail(images[3], 50)  # the least recently used went first
    kept = len(THUMBNAIL_CACHE)
    assert clear_thumbnails() == kept and len(THUMBNAIL_CACHE) == 0
    monkeypatch.setattr(THUMBNAIL_CACHE, "max_bytes", min(sizes) - 1)  # larger than the whole budget: not kept
    assert thumbnail(images[0], 50) is not None and len(THUMBNAIL_CACHE) == 0 and THUMBNAIL_CACHE.total_bytes == 0


def test_a_batch_copy_never_stands_in_for_the_image_it_was_made_from() -> None:
    """The small copy keeps the content id of the image it came from but holds other bytes: its thumbnails and the
    image's are kept apart, so the image still renders at full thumbnail size."""
    [image] = prepare_images(photo(1000, 500))
    copy = light_copy(image, thumbnail=True)
    assert copy.sha256 == image.sha256 and max(opened(thumbnail(copy, THUMBNAIL_SIDE)).size) == SMALL_THUMBNAIL_SIDE
    assert max(opened(thumbnail(image, THUMBNAIL_SIDE)).size) == THUMBNAIL_SIDE


def test_a_batch_copy_of_a_shown_image_decodes_only_the_render_thumbnail(monkeypatch: pytest.MonkeyPatch) -> None:
    [image] = prepare_images(photo(1000, 500))
    assert not has_thumbnail(image)
    thumbnail(image)  # shown with its answer
    assert has_thumbnail(image)
    opened_sizes: list[tuple[int, int]] = []
    check = thumbnails_module.check_opened_pixels
    monkeypatch.setattr(thumbnails_module, "check_opened_pixels",
                        lambda img, label: (opened_sizes.append(img.size), check(img, label))[1])
    copy = light_copy(image, thumbnail=True)
    assert opened_sizes == [(THUMBNAIL_SIDE, THUMBNAIL_SIDE // 2)]
    assert opened(Thumbnail(copy.media_type, copy.data or b"")).size == (SMALL_THUMBNAIL_SIDE, SMALL_THUMBNAIL_SIDE // 2)


def test_a_file_thumbnail_is_cached_by_the_files_stat_and_made_again_when_it_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.png"
    photo(320, 240).save(path)
    made = thumbnail(str(path), 100)
    assert not [key for key in THUMBNAIL_CACHE.keys() if key[0] == "file"]  # just written: its stat is not trusted
    monkeypatch.setattr(files, "RACY_SECONDS", -1.0)  # as if written long ago
    assert thumbnail(str(path), 100) == made
    assert [key for key in THUMBNAIL_CACHE.keys() if key[0] == "file"]
    kept = thumbnail(str(path), 100)
    with monkeypatch.context() as patch:
        patch.setattr(thumbnails_module, "read_bounded", lambda *a, **k: pytest.fail("the file was read again"))
        assert thumbnail(str(path), 100) is kept  # found by the stat
    chart(600, 300).save(path)  # rewritten: a new stat, a new thumbnail
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000_000))
    assert opened(thumbnail(str(path), 100)).size == (100, 50)


def test_no_thumbnail_for_a_url_a_missing_or_unreadable_file_or_data_that_does_not_decode(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [by_url] = prepare_images("https://example.com/cat.png")
    (tmp_path / "notes.txt").write_text("not an image")
    photo(64, 48).save(tmp_path / "big.png")
    for source in (by_url, "https://example.com/cat.png", "<numpy (2, 2) uint8>", str(tmp_path / "missing.png"),
                   str(tmp_path), str(tmp_path / "notes.txt"), "bad\0name.png"):
        assert thumbnail(source) is None, source
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.png")
        assert thumbnail(str(tmp_path / "pipe.png")) is None  # never read: it could block forever
    monkeypatch.setattr(thumbnails_module, "MAX_THUMBNAIL_FILE_BYTES", 100)
    assert thumbnail(str(tmp_path / "big.png")) is None
    record = PreparedImage(None, "image/png", 64, 48, "0" * 64, str(tmp_path / "gone.png"))  # kept without pixels
    assert thumbnail(record) is None and light_copy(record, thumbnail=True) is record
