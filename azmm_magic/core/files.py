"""Local files: inputs bounded before they are read, globs bounded before they are walked, and outputs written so
that they are either complete or absent (:func:`replaced_atomically`).

Every file a user names is checked with one ``stat`` before any of it is read: a directory, a FIFO, a device such
as ``/dev/zero`` or a socket is refused (reading one can block forever or never end), and so is a file over the
size limit. A read then takes at most ``limit + 1`` bytes, so a file that grows while it is read cannot exhaust
memory either. Messages are one line that names the file and says what to do.
"""

from __future__ import annotations

import contextlib
import glob as _glob
import hashlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import IO, Any

from azmm_magic.core.errors import ImageInputError

#: Characters that make a path a glob.
GLOB_CHARS = frozenset("*?[")

#: A glob may match at most this many files and walk at most this many folders (``**``); past either it is
#: refused with a hint to narrow it, so a huge tree or a symlink cycle cannot make it run without end.
MAX_GLOB_MATCHES = 100_000
MAX_GLOB_FOLDERS = 10_000

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


#: A file changed less than this long ago cannot be told apart by its stat from a second write within the same
#: clock tick (same size, same mtime/ctime): see :func:`recently_changed`.
RACY_SECONDS = 2.0


def file_stamp(path: Path, st: os.stat_result | None = None) -> tuple[str, int, int, int, int, int]:
    """A file's identity and state, as a cache key: its resolved path, device, inode, size, and mtime and ctime in
    ns (``st``, the file's ``stat``, is taken when not given). A rewrite changes the mtime/ctime (an atomic replace
    the inode), so it changes the stamp. Raises :class:`OSError` when the file cannot be looked at."""
    st = path.stat() if st is None else st
    return (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def recently_changed(st: os.stat_result) -> bool:
    """Whether a file changed in the last :data:`RACY_SECONDS` (the rule git uses for "racily clean" files): its
    :func:`file_stamp` may then miss a second write, so a cache keyed by it should look at the content instead."""
    return time.time() - max(st.st_mtime, st.st_ctime) <= RACY_SECONDS


def content_stamp(source: Path | bytes, label: str) -> Hashable:
    """What a file or bytes source holds, as a cache key: a file's :func:`file_stamp`, or the sha256 of the bytes.
    A file that cannot be looked at is one :class:`ImageInputError` naming ``label``."""
    if not isinstance(source, Path):
        return hashlib.sha256(source).digest()
    try:
        return file_stamp(source)
    except OSError as e:
        raise ImageInputError(f"cannot read {label}: {e.strerror or type(e).__name__}") from None


def glob_files(pattern: str, label: str | None = None) -> list[str]:
    """The regular files matching ``pattern`` (``**`` as a whole path component: any depth of folders). Each real
    folder is walked once, however many symlinks lead to it (a symlink cycle ends), hidden folders are skipped as
    :func:`glob.glob` does, and at most :data:`MAX_GLOB_MATCHES` files and :data:`MAX_GLOB_FOLDERS` folders are
    looked at before :class:`ImageInputError` asks to narrow the pattern."""
    label = pattern if label is None else label
    found: list[str] = []
    _glob_into(pattern, label, found, [0])
    return found


def _glob_into(pattern: str, label: str, found: list[str], walked: list[int]) -> None:
    parts = re.split(r"[\\/]", pattern) if os.altsep else pattern.split(os.sep)
    if "**" not in parts:
        for match in _glob.iglob(pattern):
            if os.path.isfile(match):
                found.append(match)
                if len(found) > MAX_GLOB_MATCHES:
                    raise ImageInputError(
                        f"the pattern {label!r} matches over {MAX_GLOB_MATCHES:,} files; narrow it (a smaller "
                        "folder, a more specific name) or batch the folders one by one"
                    )
        return
    cut = parts.index("**")
    base = os.sep.join(parts[:cut]) or (os.sep if cut else "")
    rest = os.sep.join(p for p in parts[cut + 1:]) or "*"
    bases = [b for b in _glob.iglob(base) if os.path.isdir(b)] if GLOB_CHARS.intersection(base) else [base]
    for start in bases:
        for folder in _walk_folders(start, label, walked):
            _glob_into(os.path.join(_glob.escape(folder), rest) if folder else rest, label, found, walked)


def _walk_folders(start: str, label: str, walked: list[int]) -> Iterator[str]:
    """``start`` and every folder under it (symlinks followed, each real folder once, hidden ones skipped);
    ``walked[0]`` counts the folders of every walk of one pattern."""
    visited: set[tuple[int, int]] = set()
    stack = [start]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder or ".")
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in visited:
            continue
        visited.add(key)
        walked[0] += 1
        if walked[0] > MAX_GLOB_FOLDERS:
            raise ImageInputError(
                f"the pattern {label!r} walks over {MAX_GLOB_FOLDERS:,} folders; start it in a smaller folder or "
                "drop the ** (any depth)"
            )
        yield folder
        try:
            with os.scandir(folder or ".") as entries:
                subs = [os.path.join(folder, e.name) for e in entries if not e.name.startswith(".") and e.is_dir()]
        except OSError:
            continue
        stack.extend(sorted(subs, reverse=True))


@contextlib.contextmanager
def replaced_atomically(path: str | os.PathLike[str], mode: str = "w", **open_options: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` (``mode`` "w" or "wb", ``open_options`` as for :func:`open`); when
    the block ends without an exception it replaces ``path``, otherwise it is removed (a full disk, an error while
    writing, Ctrl-C). The file is readable by its owner only."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, **open_options) as f:
            yield f
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


__all__ = ["GLOB_CHARS", "MAX_GLOB_FOLDERS", "MAX_GLOB_MATCHES", "MAX_IMAGE_FILE_BYTES", "RACY_SECONDS", "check_regular",
           "content_stamp", "file_stamp", "glob_files", "read_bounded", "recently_changed", "replaced_atomically",
           "size_error"]
