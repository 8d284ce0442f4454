"""Sources that are not one image: a PDF (its pages) or a video (its frames), recognised by name or content.

:mod:`azmm_magic.core.images.sources` calls :func:`media_leaves` from its expansion step for every file and bytes source;
the leaves it returns (:class:`~azmm_magic.core.documents.PdfPage`, :class:`~azmm_magic.core.video.VideoFrame`) are
rendered later, when their turn comes. A path may end with a fragment: ``#page=`` (PDF) or ``#t=`` (video).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from azmm_magic.core.documents import PdfPage, looks_like_pdf, pdf_pages
from azmm_magic.core.errors import ImageInputError
from azmm_magic.core.video import DEFAULT_FRAMES, VideoFrame, VideoFrames, looks_like_video, video_frames


def split_fragment(text: str) -> tuple[str, str]:
    """``paper.pdf#page=7`` -> (``paper.pdf``, ``page=7``); a name that exists as it is keeps its ``#``."""
    head, sep, fragment = text.rpartition("#")
    if not sep or not re.fullmatch(r"\s*[A-Za-z]+\s*=.*", fragment) or os.path.lexists(os.path.expanduser(text)):
        return text, ""
    return head, fragment.strip()


def media_leaves(
    path: Path | None, data: bytes | None, label: str, fragment: str, sampling: VideoFrames | None
) -> list[object] | None:
    """The pages of a PDF or the frames of a video (None for anything else: an image)."""
    name = "" if path is None else path.name
    head = data if data is not None else None
    if looks_like_pdf(name, head):
        return list(pdf_pages(path if path is not None else data or b"", label, fragment,
                              ref=label if path is not None else None))
    if looks_like_video(name, head):
        sampling = sampling or VideoFrames(None)
        return list(video_frames(path if path is not None else data or b"", label, fragment,
                                 frames=sampling.frames, per_request=sampling.per_request,
                                 ref=label if path is not None else None))
    if fragment:
        raise ImageInputError(f"{label}#{fragment}: #page= is for PDF files and #t= for videos, not images")
    return None


def too_many_images(leaves: list[object], max_images: int) -> str:
    """Too many images for one request: say how to narrow pages/frames, or the glob or list."""
    pages = [leaf for leaf in leaves if isinstance(leaf, PdfPage)]
    frames = [leaf for leaf in leaves if isinstance(leaf, VideoFrame)]
    if pages:
        name = pages[0].label.rsplit(" p.", 1)[0]
        return (f"{len(leaves)} images given ({len(pages)} PDF pages) but at most {max_images} go in one request; "
                f"pick pages with '{name}#page=2-5', send one request per page (a batch), or raise the max_images "
                "setting")
    if frames:
        return (f"{len(leaves)} images given ({len(frames)} video frames) but at most {max_images} go in one "
                f"request; sample fewer frames (VideoFrames(source, frames={min(max_images, DEFAULT_FRAMES)})), "
                "send one request per frame (a batch), or raise the max_images setting")
    return (f"{len(leaves)} images given but at most {max_images} are allowed per request; ask about each image "
            "in its own request (VisionClient.batch), narrow the glob or list, or raise the max_images setting")


__all__ = ["media_leaves", "split_fragment", "too_many_images"]
