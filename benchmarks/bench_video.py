"""Sampling frames from a 1-hour 1080p video (``-i clip.mp4 --frames 16``): time to prepare and peak memory.

    python benchmarks/bench_video.py            # 1 hour, 1920x1080, 25 fps, a keyframe every 10 s
    python benchmarks/bench_video.py --quick    # 2 minutes (a smoke run)

The video is made here with PyAV (libx264, small bitrate): one minute is encoded, then its packets are muxed
again with shifted timestamps until the hour is full, so making it takes seconds, not an hour of encoding. It is
cached under /tmp. The measurement runs in a fresh process (so its peak RSS is the preparation's, with Python,
Pillow and PyAV loaded): expand the source (read the header), then decode and prepare the 16 frames.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Context, Row, child_env

FPS = 25
GOP = 250  # a keyframe every 10 s, as many encoders default to
WIDTH, HEIGHT = 1920, 1080


def make_video(path: Path, minutes: int) -> Path:
    """A ``minutes``-long 1080p H.264 MP4 (cached: made once per length)."""
    if path.exists() and path.stat().st_size > 0:
        return path
    import av
    import numpy as np

    part = path.with_suffix(".part.mp4")
    with av.open(str(part), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(GOP), "keyint_min": str(GOP), "sc_threshold": "0",
                          "crf": "32"}
        base = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        base[:, :, 2] = 90
        stills = []
        for k in range(12):  # a bar that moves across the picture, so frames differ
            arr = base.copy()
            arr[:, k * 160:(k + 1) * 160, 0] = 220
            arr[k * 90:(k + 1) * 90, :, 1] = 200
            stills.append(av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p"))
        packets = []
        per_minute = 60 * FPS
        for i in range(per_minute):
            frame = stills[(i // FPS) % len(stills)]
            frame.pts = i
            for p in stream.encode(frame):
                packets.append((bytes(p), p.pts, p.dts, p.is_keyframe))
                time_base = p.time_base
                container.mux(p)
        for p in stream.encode():
            packets.append((bytes(p), p.pts, p.dts, p.is_keyframe))
            container.mux(p)
        shift = int(round(60 / time_base))
        for minute in range(1, minutes):  # the same minute again, later: no encoding
            for data, pts, dts, key in packets:
                packet = av.Packet(data)
                packet.stream = stream
                packet.time_base = time_base
                packet.pts = pts + minute * shift
                packet.dts = dts + minute * shift
                packet.is_keyframe = key
                container.mux(packet)
    part.replace(path)
    return path


_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
started = time.perf_counter()
from azmm_magic.core.images import expand_sources, image_options, prepare_leaf
from azmm_magic.core.video import VideoFrames
leaves = expand_sources(VideoFrames(sys.argv[2], frames=int(sys.argv[3])))
opts = image_options(sys.argv[4], "gpt-4o", False, 20 * 1024 * 1024)
images = [prepare_leaf(leaf, opts) for leaf in leaves]
took = time.perf_counter() - started
print(json.dumps({"seconds": took, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "frames": len(images), "size": [images[0].width, images[0].height],
                  "payload": sum(len(i.data or b"") for i in images), "first": images[0].source,
                  "last": images[-1].source}))
"""


def measure(path: Path, frames: int, detail: str) -> dict:
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", _CHILD, root, str(path), str(frames), detail], env=child_env(),
                         capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    minutes = 2 if ctx.quick else 60
    path = make_video(Path(tempfile.gettempdir()) / f"azmm-bench-{minutes}min-1080p.mp4", minutes)
    rows, notes = [], []
    for detail in ("high", "low"):
        m = measure(path, 16, detail)
        rows.append(Row(
            f"{minutes} min 1080p video, 16 frames, detail={detail}: prepare time; peak RSS",
            f"{m['seconds']:.2f} s; {m['rss_mb']:.0f} MB ({m['size'][0]}×{m['size'][1]} each, "
            f"{m['payload'] / 1024:.0f} KiB in all)",
            "< 10 s; < 300 MB",
            m["seconds"] < 10 and m["rss_mb"] < 300,
        ))
        notes.append(f"detail={detail}: frames {m['first']} … {m['last']}")
    notes.append(f"video: {path} ({path.stat().st_size / 1e6:.1f} MB, {FPS} fps, keyframe every {GOP // FPS} s)")
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 2-minute video (a smoke run)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows, notes = run(Context(quick=args.quick, tmp=Path(tmp), url=""))
    print("| benchmark | measured | goal | met |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row.name} | {row.measured} | {row.goal} | {'yes' if row.met else '**no**'} |")
    for note in notes:
        print(f"- {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
