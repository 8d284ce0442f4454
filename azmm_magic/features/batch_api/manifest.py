"""Job manifests (what turns a job's output back into per-image results) and the checks on server-chosen ids."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from azmm_magic.core.errors import ConfigError, ServiceError
from azmm_magic.core.files import replaced_atomically
from azmm_magic.core.urls import redact_urls

_SERVER_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def is_server_id(value: object) -> bool:
    """True for a usable server-chosen id: 1 to 128 letters, digits, ``_`` or ``-``."""
    return isinstance(value, str) and _SERVER_ID.fullmatch(value) is not None


def checked_id(value: object, what: str = "batch id") -> str:
    """A server-chosen id (a batch id, a file id, a ``custom_id``) checked before any use as a file name or a
    label: 1 to 128 letters, digits, ``_`` or ``-``; anything else is one clear line, never a path."""
    if not is_server_id(value):
        shown = repr(value)[:60]
        raise ServiceError(f"Unusable {what} {shown}: an id is 1-128 letters, digits, _ or - (ids come from the "
                           "service; this one is never used as a file name).")
    return str(value)


def server_text(value: object, limit: int) -> str:
    """A server's text as a short single line of printable characters, URL query strings redacted."""
    text = redact_urls(" ".join(str(value).split()))
    return "".join(ch for ch in text if ch.isprintable())[:limit]


def manifest_directory(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where job manifests live: ``explicit`` > ``$AZMM_BATCH_DIR`` > ``$XDG_CACHE_HOME/azmm_magic/batches``."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("AZMM_BATCH_DIR"):
        return Path(os.environ["AZMM_BATCH_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "azmm_magic" / "batches"


def manifest_path(directory: Path, batch_id: str) -> Path:
    """``directory/<batch_id>.json`` for a checked id, and never outside ``directory``."""
    path = directory / f"{checked_id(batch_id)}.json"
    if path.resolve().parent != directory.resolve():
        raise ServiceError(f"The manifest of batch {batch_id} would not be inside {directory}.")
    return path


@dataclass
class Manifest:
    """What is needed to turn a job's output back into per-image results (no image data, no secret)."""

    prompt: str
    deployment: str
    endpoint_host: str
    input_file_id: str = ""
    batch_id: str = ""
    total: int = 0
    created: float = field(default_factory=time.time)
    items: list[dict[str, Any]] = field(default_factory=list)  # custom_id, index, source, key, path (a file's)
    local_failures: list[dict[str, Any]] = field(default_factory=list)  # index, source, error, kind, path
    options: dict[str, Any] = field(default_factory=dict)  # the request options to submit again with (plain values)

    def save(self, directory: Path) -> Path:
        """Write the manifest (0600, in a 0700 folder) as ``<batch id>.json``; the id is checked first, and no
        temp file is left on failure."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if stat.S_IMODE(directory.stat().st_mode) & 0o077:
            directory.chmod(0o700)
        path = manifest_path(directory, self.batch_id)
        with replaced_atomically(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(asdict(self), ensure_ascii=False))
        return path

    @classmethod
    def load(cls, directory: Path, batch_id: str) -> Manifest | None:
        """The manifest saved for ``batch_id`` (None when there is none; an unreadable one is one clear line)."""
        path = manifest_path(directory, batch_id)
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as e:
            raise ConfigError(f"The manifest {path} cannot be read ({type(e).__name__}); delete it to fetch the "
                              "results without it (items are then named by custom_id).") from None


__all__ = ["Manifest", "checked_id", "is_server_id", "manifest_directory", "manifest_path", "server_text"]
