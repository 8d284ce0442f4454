"""Writing a file so that it is either complete or absent: written to a temporary file beside it, renamed over it
at the end, and the temporary file removed on any failure (a full disk, an error while writing, Ctrl-C)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def replaced_atomically(path: str | os.PathLike[str], mode: str = "w", **open_options: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` (``mode`` "w" or "wb", ``open_options`` as for :func:`open`); when
    the block ends without an exception it replaces ``path``, otherwise it is removed. The file is readable by
    its owner only."""
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


__all__ = ["replaced_atomically"]
