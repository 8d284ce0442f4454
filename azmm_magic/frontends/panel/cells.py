"""The ``%%azure_vision`` cell equivalent to a panel question, and the uploads saved so that cell still works
after a restart (``panel_uploads/NAME-HASH.EXT``)."""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azmm_magic.core.files import replaced_atomically

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.settings import Settings
    from azmm_magic.frontends.panel.sources import ImageEntry

UPLOAD_DIR = "panel_uploads"


def cell_source(prompt: str, options: Mapping[str, Any], settings: Settings) -> str:
    """The cell asking ``prompt`` with the images ``options["entries"]`` and the options that differ from
    ``settings`` (``deployment``, ``detail``, ``max_tokens``, ``temperature``, ``chat``)."""
    words = ["%%azure_vision"]
    for entry in options["entries"]:
        words += ["-i", entry.cell_ref or shlex.quote(f"{UPLOAD_DIR}/{upload_filename(entry)}{entry.fragment}")]
    if options["detail"] != settings.detail:
        words += ["--detail", options["detail"]]
    if options["max_tokens"] != settings.max_tokens:
        words += ["--max-tokens", str(options["max_tokens"])]
    if options["temperature"] is not None and options["temperature"] != settings.temperature:
        words += ["--temperature", f"{options['temperature']:g}"]
    if options["deployment"] and options["deployment"] != settings.deployment:
        words += ["--deployment", shlex.quote(options["deployment"])]
    if options.get("chat"):
        words += ["--chat", options["chat"]]
    return " ".join(words) + "\n" + prompt


def upload_filename(entry: ImageEntry) -> str:
    """``name.png``, made safe; the content hash is added so two different uploads never share a file."""
    name = Path(entry.upload_name or "upload").name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, "png"
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "upload"
    digest = hashlib.sha256(entry.source).hexdigest()[:8]
    return f"{stem}-{digest}.{re.sub(r'[^A-Za-z0-9]+', '', ext) or 'png'}"


def save_uploads(entries: Iterable[ImageEntry]) -> int:
    """Write the uploaded images among ``entries`` to ``UPLOAD_DIR`` (once each); returns how many uploads."""
    count = 0
    for entry in entries:
        if entry.upload_name is None:
            continue
        target = Path(UPLOAD_DIR) / upload_filename(entry)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with replaced_atomically(target, "wb") as f:  # no partial file left on failure
                f.write(entry.source)
        count += 1
    return count


__all__ = ["UPLOAD_DIR", "cell_source", "save_uploads", "upload_filename"]
