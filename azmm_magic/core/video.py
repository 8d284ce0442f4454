"""Video frames as images: ``clip.mp4`` gives N frames sampled evenly (8 by default; ``VideoFrames(src, 16)`` or
the magic's ``--frames 16`` for another count), ``clip.mp4#t=10,20`` restricts them to a time range (media-fragment
syntax: seconds, ``mm:ss`` or ``hh:mm:ss``, ``#t=10`` from 10 s to the end, ``#t=,20`` up to 20 s).

Expanding a video only reads its header (duration and frame size). Each frame is decoded when its turn comes with
PyAV (a wheel that bundles FFmpeg): the decoder seeks to the keyframe before the frame's time and decodes forward to
it, never the whole file, and scales the frame straight to the size the token rule keeps. Frames carry their
timestamp in their caption (``clip.mp4 @ 01:02.5``) and in a text part sent just before them, so a model can reason
about time. Import cost: PyAV is imported inside the functions that need it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azmm_magic.core.errors import ConfigError, ImageInputError, library_text
from azmm_magic.core.files import content_stamp

DEFAULT_FRAMES = 8
#: The most frames sampled from one video (one request per frame in a batch: more is never what was meant).
MAX_FRAMES = 1000
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".3gp", ".ogv"})
#: ISO-BMFF brands of still images (HEIC/HEIF/AVIF): an ``ftyp`` file with any other brand is a video.
_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"hevc", b"hevx", b"avif", b"avis"})
_CLOCK = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?)$")


def looks_like_video(name: str = "", data: bytes | None = None) -> bool:
    """True for a video file name (``.mp4``, ``.mov``, ``.webm``, ...) or bytes that start like one."""
    if data is not None:
        head = data[:16]
        if head[4:8] == b"ftyp":
            return head[8:12] not in _IMAGE_BRANDS
        return head.startswith(b"\x1a\x45\xdf\xa3") or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
    return Path(name).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoFrames:
    """A source whose videos give ``frames`` frames each (evenly sampled); with a batch, ``per_request`` frames
    go in each request (default: one request per frame). Anything else in ``source`` is used as usual."""

    source: object
    frames: int = DEFAULT_FRAMES
    per_request: int | None = None

    def __post_init__(self) -> None:
        check_frames(self.frames, self.per_request)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_frames(frames: object, per_request: object = None) -> None:
    """Refuse a frame count outside 1..:data:`MAX_FRAMES` (and a ``frames_per_request`` below 1) before any work."""
    if not _whole(frames) or not 1 <= frames <= MAX_FRAMES:  # type: ignore[operator]
        raise ConfigError(f"frames must be a whole number from 1 to {MAX_FRAMES}; got {frames!r}")
    if per_request is not None and (not _whole(per_request) or per_request < 1):  # type: ignore[operator]
        raise ConfigError(f"frames_per_request must be a whole number of at least 1; got {per_request!r}")


def format_time(seconds: float) -> str:
    """``62.5`` -> ``01:02.5``; an hour or more -> ``1:02:03.5``."""
    tenths = int(max(0.0, seconds) * 10 + 0.5)
    minutes, rest = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    clock = f"{minutes:02d}:{rest // 10:02d}.{rest % 10}"
    return f"{hours}:{clock}" if hours else clock


def parse_time(text: str, label: str) -> float:
    """Seconds from ``12.5``, ``mm:ss`` or ``hh:mm:ss`` (``npt:`` prefix allowed)."""
    value = text.strip()
    if value.lower().startswith("npt:"):
        value = value[4:]
    m = _CLOCK.match(value)
    if not m:
        raise ImageInputError(f"{label}: cannot read the time {text!r}; give seconds (62.5), mm:ss or hh:mm:ss")
    first, second, secs = m.groups()
    if second is not None:  # hh:mm:ss
        return int(first) * 3600 + int(second) * 60 + float(secs)
    if first is not None:  # mm:ss
        return int(first) * 60 + float(secs)
    return float(secs)


def _time_range(fragment: str, label: str) -> tuple[float | None, float | None]:
    if not fragment:
        return None, None
    name, sep, value = fragment.partition("=")
    if name.strip().lower() != "t" or not sep:
        raise ImageInputError(f"{label}#{fragment}: a video takes #t=START,END (seconds or mm:ss)")
    start_text, _, end_text = value.partition(",")
    start = parse_time(start_text, f"{label}#{fragment}") if start_text.strip() else None
    end = parse_time(end_text, f"{label}#{fragment}") if end_text.strip() else None
    if start is not None and end is not None and end < start:
        raise ImageInputError(f"{label}#{fragment}: the end comes before the start")
    return start, end


@dataclass(frozen=True)
class VideoFrame:
    """One frame to decode (a leaf of the expansion): the frame at or just after ``time`` seconds.

    ``label`` is the caption (``clip.mp4 @ 01:02.5``), ``text`` the text part sent before it, ``ref`` a source
    string that gives this frame again, ``group`` which video (and how many frames per request) it belongs to.
    """

    path: Path | None
    data: bytes | None
    time: float
    label: str
    ref: str | None
    size: tuple[int, int]
    stamp: Hashable = None
    group: Hashable = None
    per_request: int | None = None

    @property
    def text(self) -> str:
        return "[" + self.label.replace("\\", "/").rsplit("/", 1)[-1] + "]"

    @property
    def fragment(self) -> str:
        """``t=62.500,62.500``: the fragment that selects this one frame."""
        return f"t={self.time:.3f},{self.time:.3f}"

    def key(self) -> Hashable:
        return ("video", self.stamp, round(self.time, 4), self.label)

    def render(self, fit: Callable[[int, int], tuple[int, int]]) -> Any:
        """Decode the frame (seek to the keyframe before it, decode forward) scaled to ``fit(width, height)``."""
        av = _av()
        width, height = fit(*self.size)
        try:
            with av.open(_source(self.path, self.data)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                base = _start_time(stream)
                if stream.time_base:
                    container.seek(int((base + self.time) / stream.time_base), stream=stream, backward=True)
                chosen = None
                for frame in container.decode(stream):
                    if frame.time is None:
                        continue
                    chosen = frame
                    if frame.time - base >= self.time - 1e-3:
                        break
        except (av.FFmpegError, OSError) as e:
            raise ImageInputError(f"cannot decode {self.label}: {library_text(e)}") from None
        if chosen is None:
            raise ImageInputError(f"cannot decode {self.label}: no frame at that time")
        return chosen.to_image(width=width, height=height)


def _av() -> Any:
    try:
        import av
    except ImportError as e:  # pragma: no cover - a dependency
        raise ImageInputError("video frames need the av (PyAV) package: pip install av") from e
    return av


def _source(path: Path | None, data: bytes | None) -> Any:
    import io

    return str(path) if path is not None else io.BytesIO(data or b"")


def _start_time(stream: Any) -> float:
    start = stream.start_time
    return float(start * stream.time_base) if start is not None and stream.time_base else 0.0


def _duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return 0.0


def _snap(container: Any, stream: Any, time: float, tolerance: float) -> float:
    """The time of the keyframe at or before ``time`` when it is within ``tolerance`` (a quarter of the spacing
    between samples, so they stay evenly spread and distinct): that frame decodes alone, with nothing to decode
    forward. Otherwise ``time`` itself. Only packets are read here (a seek and one packet), nothing is decoded."""
    if tolerance <= 0 or not stream.time_base:
        return time
    base = _start_time(stream)
    try:
        container.seek(int((base + time) / stream.time_base), stream=stream, backward=True)
        for packet in container.demux(stream):
            if packet.pts is not None:
                key = float(packet.pts * stream.time_base) - base
                return key if 0 <= time - key <= tolerance else time
    except Exception:  # noqa: BLE001 - an unseekable stream is decoded forward instead
        return time
    return time


def _distinct_frames(times: list[float], stream: Any) -> list[float]:
    """The times that fall on different frames (a one-frame video, or more samples than a short range has frames,
    would otherwise send the same picture several times, each billed)."""
    rate = stream.average_rate or stream.guessed_rate
    if not rate or rate <= 0:
        return times
    seen: set[int] = set()
    kept = []
    for t in times:
        index = int(t * float(rate) + 1e-6)
        if index not in seen:
            seen.add(index)
            kept.append(t)
    return kept


def video_frames(
    source: Path | bytes,
    label: str,
    fragment: str = "",
    *,
    frames: int = DEFAULT_FRAMES,
    per_request: int | None = None,
    ref: str | None = None,
) -> list[VideoFrame]:
    """``frames`` frames sampled evenly (the middles of ``frames`` equal slices) over the video or ``#t=`` range."""
    check_frames(frames, per_request)
    av = _av()
    start, end = _time_range(fragment, label)
    data = source if isinstance(source, bytes) else None
    path = source if isinstance(source, Path) else None
    if (data is not None and not data) or (path is not None and path.stat().st_size == 0):
        raise ImageInputError(f"cannot read {label} as a video: it is empty (0 bytes)")
    try:
        with av.open(_source(path, data)) as container:
            if not container.streams.video:
                raise ImageInputError(f"{label} has no video stream")
            stream = container.streams.video[0]
            duration = _duration(container, stream)
            size = (int(stream.codec_context.width or 0), int(stream.codec_context.height or 0))
            if duration <= 0 or min(size) <= 0:
                raise ImageInputError(f"{label} has no video frames")
            first = start or 0.0
            last = duration if end is None else min(end, duration)
            if first >= duration:
                raise ImageInputError(
                    f"{label}#{fragment}: starts at {format_time(first)} but the video is {format_time(duration)} long"
                )
            if end is not None and start is not None and end == start:
                times = [first]
            else:
                step = (last - first) / frames
                times = _distinct_frames(
                    [_snap(container, stream, first + (i + 0.5) * step, step / 4) for i in range(frames)], stream)
    except (av.FFmpegError, OSError) as e:
        raise ImageInputError(f"cannot read {label} as a video: it is damaged or not a video ({library_text(e)})") from None
    stamp = content_stamp(source, label)
    group = (stamp, fragment, frames)
    return [
        VideoFrame(
            path=path, data=data, time=t, label=f"{label} @ {format_time(t)}",
            ref=f"{ref}#t={t:.3f},{t:.3f}" if ref is not None else None, size=size, stamp=stamp, group=group,
            per_request=per_request,
        )
        for t in times
    ]


__all__ = ["DEFAULT_FRAMES", "MAX_FRAMES", "check_frames", "VideoFrame", "VideoFrames", "format_time", "looks_like_video",
           "parse_time",
           "video_frames"]
