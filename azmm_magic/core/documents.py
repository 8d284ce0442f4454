"""PDF pages as images: ``paper.pdf`` (every page), ``paper.pdf#page=7``, ``paper.pdf#page=2-5`` (the PDF
open-parameters convention; lists such as ``#page=1,3-4`` work too).

Expanding a PDF only reads its page count and page sizes; a page is rendered (with pypdfium2, a maintained wheel
that bundles PDFium) when its turn comes, at the scale that gives exactly the pixels the chosen ``detail`` and token
rule keep, never more. Import cost: pypdfium2 is imported inside the functions that need it.

This module sits below :mod:`azmm_magic.core.images`, which calls it from its expansion step and renders the leaves
(:class:`PdfPage`) through the same downscale/encode path as any image.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azmm_magic.core.errors import ImageInputError, library_text
from azmm_magic.core.files import content_stamp

#: Largest scale a page is rendered at (300 dpi); the token rule's size limit is usually far below it.
MAX_DPI = 300
_PAGE_SPEC = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
#: PDFium is not thread-safe: every call into it (open, size, render) holds this lock.
_LOCK = threading.Lock()


def looks_like_pdf(name: str = "", data: bytes | None = None) -> bool:
    """True for a ``.pdf`` file name or bytes starting with ``%PDF``."""
    if data is not None:
        return data[:1024].lstrip().startswith(b"%PDF")
    return name.lower().endswith(".pdf")


@dataclass(frozen=True)
class PdfPage:
    """One page of a PDF to render (a leaf of the expansion; nothing rendered yet).

    ``label`` is the caption (``paper.pdf p.7``), ``ref`` a source string that gives this page again
    (``paper.pdf#page=7``; None for a PDF given as bytes), ``size`` the page's size in pixels at :data:`MAX_DPI`.
    """

    path: Path | None
    data: bytes | None
    index: int  # 0-based
    label: str
    ref: str | None
    size: tuple[int, int]
    stamp: Hashable = None  # the file's identity and stat (or the bytes' sha256): part of the memo key

    text: str | None = None  # no text part with a page (the caption says which page it is)

    @property
    def fragment(self) -> str:
        """``page=7``: the fragment that selects this page."""
        return f"page={self.index + 1}"

    def key(self) -> Hashable:
        """What the rendered page depends on (the options are added by the caller)."""
        return ("pdf", self.stamp, self.index, self.label)

    def render(self, fit: Callable[[int, int], tuple[int, int]]) -> Any:
        """The page as a PIL image of the size ``fit(width, height)`` keeps of its :data:`MAX_DPI` size."""
        pdfium = _pdfium()
        width, height = fit(*self.size)
        with _LOCK:
            pdf = _open(self.path if self.path is not None else self.data, self.label.rsplit(" p.", 1)[0])
            try:
                page = pdf[self.index]
                try:
                    points_w, _ = page.get_size()
                    scale = max(width / max(points_w, 1e-6), 0.01)
                    bitmap = page.render(scale=scale, may_draw_forms=True)
                    try:
                        image = bitmap.to_pil()
                        image.load()
                        image = image.copy()  # detach from PDFium's buffer before it is closed
                    finally:
                        bitmap.close()
                finally:
                    page.close()
            except pdfium.PdfiumError as e:
                raise ImageInputError(f"cannot render {self.label}: {library_text(e)}") from e
            finally:
                pdf.close()
        return image


def _pdfium() -> Any:
    try:
        import pypdfium2 as pdfium  # type: ignore[import-untyped]
    except ImportError as e:  # pragma: no cover - a dependency
        raise ImageInputError("PDF pages need the pypdfium2 package: pip install pypdfium2") from e
    return pdfium


def _open(source: Path | bytes | None, label: str) -> Any:
    """A ``PdfDocument``; one clear line for an encrypted, empty or broken PDF. Call with :data:`_LOCK` held."""
    pdfium = _pdfium()
    if isinstance(source, bytes) and not source:
        raise ImageInputError(f"cannot read {label} as a PDF: it is empty (0 bytes)")
    try:
        if isinstance(source, Path) and source.stat().st_size == 0:
            raise ImageInputError(f"cannot read {label} as a PDF: it is empty (0 bytes)")
        return pdfium.PdfDocument(source)
    except pdfium.PdfiumError as e:
        text = str(e)
        if "password" in text.lower():
            raise ImageInputError(
                f"cannot read {label}: the PDF is encrypted (password-protected); save an unprotected copy first"
            ) from None
        reason = text.split("(PDFium: ", 1)[-1].rstrip(").") if "PDFium:" in text else text
        raise ImageInputError(f"cannot read {label} as a PDF: it is damaged or not a PDF ({reason})") from None
    except OSError as e:
        raise ImageInputError(f"cannot read {label}: {e.strerror or e}") from None


def parse_pages(spec: str, count: int, label: str) -> list[int]:
    """``7`` / ``2-5`` / ``1,3-4`` (1-based, as in ``#page=``) -> 0-based indices; a page past the end is an error."""
    indices: list[int] = []
    for part in spec.split(","):
        m = _PAGE_SPEC.match(part)
        if not m:
            raise ImageInputError(
                f"{label}#page={spec}: give a page number or a range, e.g. #page=7 or #page=2-5"
            )
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        if first < 1 or last < first:
            raise ImageInputError(f"{label}#page={spec}: pages are numbered from 1 and a range goes up (2-5)")
        if last > count:
            raise ImageInputError(
                f"{label}#page={spec}: the PDF has {count} page{'s' if count != 1 else ''} (pages 1-{count})"
            )
        indices.extend(range(first - 1, last))
    return indices


def pdf_pages(source: Path | bytes, label: str, fragment: str = "", *, ref: str | None = None) -> list[PdfPage]:
    """The pages of a PDF file (or bytes) selected by ``fragment`` (``page=7``, ``page=2-5``; empty: all)."""
    spec = _page_fragment(fragment, label)
    stamp = content_stamp(source, label)
    with _LOCK:
        pdf = _open(source, label)
        try:
            count = len(pdf)
            if count == 0:
                raise ImageInputError(f"{label} has no pages")
            indices = parse_pages(spec, count, label) if spec else list(range(count))
            sizes = [pdf.get_page_size(i) for i in indices]
        finally:
            pdf.close()
    scale = MAX_DPI / 72
    return [
        PdfPage(
            path=source if isinstance(source, Path) else None,
            data=source if isinstance(source, bytes) else None,
            index=i,
            label=f"{label} p.{i + 1}",
            ref=f"{ref}#page={i + 1}" if ref is not None else None,
            size=(max(1, round(w * scale)), max(1, round(h * scale))),
            stamp=stamp,
        )
        for i, (w, h) in zip(indices, sizes, strict=True)
    ]


def _page_fragment(fragment: str, label: str) -> str:
    if not fragment:
        return ""
    name, sep, value = fragment.partition("=")
    if name.strip().lower() != "page" or not sep:
        raise ImageInputError(f"{label}#{fragment}: a PDF takes #page=N or #page=A-B")
    return value


__all__ = ["MAX_DPI", "PdfPage", "looks_like_pdf", "parse_pages", "pdf_pages"]
