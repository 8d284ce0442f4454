"""Local files as inputs, bounded before they are read.

Every file a user names is checked with one ``stat`` before any of it is read: a directory, a FIFO, a device such
as ``/dev/zero`` or a socket is refused (reading one can block forever or never end), and so is a file over the
size limit. A read then takes at most ``limit + 1`` bytes, so a file that grows while it is read cannot exhaust
memory either. Messages are one line that names the file and says what to do.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from azmm_magic.core.errors import ImageInputError

#: The largest image file read into memory (a photo over it is almost surely not one: resize or convert it).
MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_regular(path: Path, label: str) -> os.stat_result:
    """The ``stat`` of ``path`` (symlinks followed) when it is a regular file, else one clear
    :class:`ImageInputError` (missing, unreadable, a directory, a pipe, a device)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageInputError(f"image file not found: {label}") from None
    except OSError as e:
        raise ImageInputError(f"cannot read {label}: {e.strerror or type(e).__name__}") from None
    kind = _kind(st.st_mode)
    if kind is not None:
        raise ImageInputError(f"cannot read {label}: it is {kind}, not a file; give an image, PDF or video file")
    return st


def size_error(label: str, size: int, limit: int) -> ImageInputError:
    mb = limit / (1024 * 1024)
    return ImageInputError(
        f"cannot read {label}: it is {size / (1024 * 1024):,.0f} MB, over the {mb:,.0f} MB an image file may be; "
        "resize or convert it first"
    )


def read_bounded(path: Path, label: str, limit: int = MAX_IMAGE_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``: refused before reading when it is not a regular file or its size is
    over ``limit``, and never more than ``limit + 1`` bytes read (a file growing meanwhile is refused too).

    The file is opened without blocking and checked with ``fstat`` on the open descriptor, so a path swapped for a
    pipe after the first check cannot make the read wait forever."""
    check_regular(path, label)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        raise ImageInputError(f"cannot read image file {label}: {e.strerror or type(e).__name__}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        kind = _kind(st.st_mode)
        if kind is not None:
            raise ImageInputError(f"cannot read {label}: it is {kind}, not a file; give an image, PDF or video file")
        if st.st_size > limit:
            raise size_error(label, st.st_size, limit)
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise ImageInputError(f"cannot read image file {label}: {e.strerror or type(e).__name__}") from None
    if len(data) > limit:
        raise size_error(label, len(data), limit)
    return data


__all__ = ["MAX_IMAGE_FILE_BYTES", "check_regular", "read_bounded", "size_error"]
