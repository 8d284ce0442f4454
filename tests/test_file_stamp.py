"""The one file-stat cache key (``core.files.file_stamp``/``content_stamp``) shared by prepared images, PDF pages,
video frames and thumbnails: it changes with the file's content and identity, never with how the path is spelt."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest

from azmm_magic.core.documents import pdf_pages
from azmm_magic.core.errors import ImageInputError
from azmm_magic.core.files import content_stamp, file_stamp, recently_changed
from azmm_magic.core.video import video_frames
from tests.conftest import write_video


def test_the_stamp_follows_the_content_not_the_spelling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"one")
    stamp = file_stamp(path)
    monkeypatch.chdir(tmp_path)
    assert file_stamp(Path("a.bin")) == stamp == file_stamp(tmp_path / "." / "a.bin")
    assert file_stamp(path, path.stat()) == stamp
    path.write_bytes(b"two")  # the same size: the mtime/ctime tell it apart
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000_000))
    assert file_stamp(path) != stamp
    other = tmp_path / "b.bin"
    other.write_bytes(b"two")
    before = file_stamp(path)
    os.replace(other, path)  # an atomic replace: another inode
    assert file_stamp(path) != before


def test_content_stamp_is_the_file_stamp_or_the_sha256_of_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"data")
    assert content_stamp(path, "a.bin") == file_stamp(path)
    assert content_stamp(b"data", "<bytes>") == hashlib.sha256(b"data").digest()
    with pytest.raises(ImageInputError, match=r"cannot read gone\.pdf"):
        content_stamp(tmp_path / "gone.pdf", "gone.pdf")


def test_recently_changed_is_true_only_for_a_fresh_file(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"x")
    assert recently_changed(path.stat())

    def stat(mtime: float, ctime: float) -> os.stat_result:
        return os.stat_result((0o100644, 1, 1, 1, 0, 0, 1, mtime, mtime, ctime))

    now, hour = time.time(), 3600.0
    assert not recently_changed(stat(now - hour, now - hour))
    assert recently_changed(stat(now - hour, now))  # a change of metadata (chmod, a rename) counts too
    assert recently_changed(stat(now, now - hour))


def test_pdf_pages_and_video_frames_are_keyed_by_the_same_stamp(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pdf = tmp_path / "one.pdf"
    fig = plt.figure(figsize=(2, 2))
    fig.savefig(pdf)
    plt.close(fig)
    clip = write_video(tmp_path / "clip.mp4", 10, lambda i: np.full((240, 320, 3), i * 20, np.uint8))
    [page] = pdf_pages(pdf, "one.pdf")
    frames = video_frames(clip, "clip.mp4", frames=2)
    assert page.stamp == file_stamp(pdf) and {f.stamp for f in frames} == {file_stamp(clip)}
    [from_bytes] = pdf_pages(pdf.read_bytes(), "<bytes>")
    assert from_bytes.stamp == hashlib.sha256(pdf.read_bytes()).digest()
