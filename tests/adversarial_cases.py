"""The adversarial input table of tests/test_adversarial.py, and the child process that runs one case.

Run as ``python tests/adversarial_cases.py CASE EMULATOR_URL`` in an empty folder: it builds the case's input
there, runs it through the Python API (``api``) or the magic in a real InteractiveShell (``magic``) with a SQLite
answer cache in that folder, and prints one JSON line: ``{"status": "refused"|"ok", "message": ..., "output":
..., "cached": rows in the cache}``. Anything but our own errors escapes as a traceback (and a non-zero exit).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import sqlite3
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Case:
    id: str
    mode: str  # "api" | "magic"
    run: Callable[[Any], Any]  # api: client -> result; magic: shell -> None (runs cells itself)
    expect: str | None  # regex the one-line message must match; None: it succeeds
    sends: int = 0  # requests the emulator must see


CASES: list[Case] = []


def case(id: str, mode: str, expect: str | None, sends: int = 0) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    def add(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        CASES.append(Case(id, mode, fn, expect, sends))
        return fn

    return add


# ----- input makers (run in the child, in its own empty folder) ------------------------------------------------------
def png(name: str = "ok.png", size: tuple[int, int] = (32, 24)) -> str:
    from PIL import Image

    Image.new("RGB", size, (200, 30, 30)).save(name)
    return name


def sparse(name: str, size: int) -> str:
    with open(name, "wb") as f:
        f.truncate(size)  # no disk, no memory: the size is only in the inode
    return name


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_chunk(name: str, kind: bytes, data: bytes) -> str:
    raw = Path(png("base.png")).read_bytes()
    Path(name).write_bytes(raw[:33] + chunk(kind, data) + raw[33:])
    return name


def pdf(name: str, pages: int = 1, size: tuple[float, float] = (200, 100)) -> str:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument.new()
    for _ in range(pages):
        doc.new_page(*size)
    doc.save(name)
    return name


def video(name: str, frames: int = 1) -> str:
    import numpy as np

    from tests.conftest import write_video

    write_video(name, frames, lambda i: np.full((32, 32, 3), (i * 40) % 255, np.uint8), size=(32, 32), codec="mpeg4")
    return name


def sound(name: str) -> str:
    """An MP4 with one AAC audio stream and no video."""
    import av
    import numpy as np

    with av.open(name, "w") as out:
        stream = out.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    return name


def heic(name: str) -> str:
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    Image.new("RGB", (64, 64), (0, 120, 240)).save("full.heic")
    data = Path("full.heic").read_bytes()
    Path(name).write_bytes(data[: len(data) // 2])
    return name


def frame(**columns: Any) -> Any:
    import pandas as pd

    return pd.DataFrame(columns)


def cell(shell: Any, line: str, body: str = "What is it?") -> None:
    shell.run_cell(f"%%azure_vision {line}\n{body}")


# ----- local files: size, kind, links -------------------------------------------------------------------------------
@case("8gb-sparse-png", "api", r"huge\.png: it is 8,192 MB, over the 256 MB")
def _(c): return c.ask("q", sparse("huge.png", 8 << 30))
@case("8gb-sparse-png-magic", "magic", r"huge\.png: it is 8,192 MB")
def _(s): cell(s, f"-i {sparse('huge.png', 8 << 30)}")
@case("dev-zero", "api", r"/dev/zero: it is a device, not a file")
def _(c): return c.ask("q", "/dev/zero")
@case("dev-zero-magic", "magic", r"/dev/zero: it is a device")
def _(s): cell(s, "-i /dev/zero")
@case("dev-urandom-batch", "api", r"/dev/urandom: it is a device")
def _(c): return c.batch("q", ["/dev/urandom"], progress=False)
@case("fifo-named-png", "api", r"pipe\.png: it is a named pipe \(FIFO\)")
def _(c): os.mkfifo("pipe.png"); return c.ask("q", "pipe.png")
@case("fifo-named-pdf", "api", r"pipe\.pdf: it is a named pipe")
def _(c): os.mkfifo("pipe.pdf"); return c.ask("q", "pipe.pdf")
@case("fifo-named-mp4", "magic", r"pipe\.mp4: it is a named pipe")
def _(s): os.mkfifo("pipe.mp4"); cell(s, "-i pipe.mp4")
@case("fifo-only-in-glob", "api", r"no image file matches the pattern '\*\.png'")
def _(c): os.mkfifo("a.png"); return c.ask("q", "*.png")
@case("symlink-to-dev-zero", "api", r"z\.png: it is a device")
def _(c): os.symlink("/dev/zero", "z.png"); return c.ask("q", "z.png")
@case("symlink-to-itself", "api", r"loop\.png is a symbolic link whose target is missing or loops")
def _(c): os.symlink("loop.png", "loop.png"); return c.ask("q", "loop.png")
@case("dangling-symlink", "api", r"image file not found: gone\.png")
def _(c): os.symlink("nowhere.png", "gone.png"); return c.ask("q", "gone.png")
@case("directory-named-png", "api", r"dir\.png is a directory")
def _(c): os.mkdir("dir.png"); return c.ask("q", "dir.png")
@case("name-too-long", "api", r"cannot read x{20}x*\.\.\.: File name too long")
def _(c): return c.ask("q", "x" * 5000 + ".png")
@case("nul-in-path", "api", r"'a\\x00b\.png': a file name cannot contain a NUL character")
def _(c): return c.ask("q", "a\0b.png")
@case("newline-in-missing-name", "magic", r"image file not found: \{?bad name")
def _(s): s.user_ns["p"] = "bad name\n2.png"; cell(s, "-i p")
@case("empty-png-file", "api", r"empty\.png as an image: it is empty")
def _(c): Path("empty.png").write_bytes(b""); return c.ask("q", "empty.png")
@case("text-named-png-in-batch", "api", r"notes\.png as an image: Pillow does not recognise")
def _(c): Path("notes.png").write_text("hello\n"); return c.batch("q", ["notes.png"], progress=False)


# ----- globs ---------------------------------------------------------------------------------------------------------
def _cycle() -> None:
    os.makedirs("tree/a/b")
    png("tree/a/b/one.png")
    for i in range(3):
        os.symlink("../..", f"tree/a/b/up{i}")
        os.symlink("..", f"tree/a/b/back{i}")


@case("glob-symlink-cycle", "api", None, sends=1)
def _(c): _cycle(); return c.ask("q", "tree/**/*.png")
@case("glob-symlink-cycle-magic-dry-run", "magic", None)
def _(s): _cycle(); cell(s, "-i 'tree/**/*.png' --dry-run")
@case("glob-symlink-cycle-no-match", "api", r"no image file matches the pattern 'tree/\*\*/\*\.webp'")
def _(c): _cycle(); return c.ask("q", "tree/**/*.webp")
@case("glob-over-100000-files", "api", r"matches over 100,000 files; narrow it")
def _(c):
    os.mkdir("many")
    for i in range(100_001):
        open(f"many/{i}.png", "wb").close()
    return c.batch("q", "many/*.png", progress=False)
@case("glob-over-10000-folders", "api", r"walks over 10,000 folders")
def _(c):
    for i in range(10_001):
        os.makedirs(f"deep/{i // 100}/{i}")
    return c.batch("q", "deep/**/*.png", progress=False)
@case("glob-dev-zero-match", "api", r"no image file matches")
def _(c): os.symlink("/dev/zero", "zero.png"); return c.ask("q", "zero*.png")
@case("glob-too-many-for-one-request", "magic", r"12 images given but at most 10.*--each")
def _(s):
    for i in range(12):
        png(f"p{i}.png", (8, 8))
    cell(s, "-i '*.png'")


# ----- PDFs ----------------------------------------------------------------------------------------------------------
@case("pdf-8gb-sparse", "api", r"big\.pdf: it is 8,192 MB|big\.pdf as a PDF")
def _(c): return c.ask("q", sparse("big.pdf", 8 << 30))
@case("pdf-truncated", "api", r"cut\.pdf as a PDF: it is damaged")
def _(c): Path("cut.pdf").write_bytes(Path(pdf("full.pdf", 3)).read_bytes()[:200]); return c.ask("q", "cut.pdf")
@case("pdf-3000-pages-magic", "magic", r"3000 images given \(3000 PDF pages\).*#page=2-5")
def _(s): cell(s, f"-i {pdf('long.pdf', 3000)}")
@case("pdf-page-zero", "api", r"#page=0: pages are numbered from 1")
def _(c): return c.ask("q", pdf("one.pdf") + "#page=0")
@case("pdf-page-huge-number", "api", r"#page=9{30}: the PDF has 1 page")
def _(c): return c.ask("q", pdf("one.pdf") + "#page=" + "9" * 30)
@case("pdf-page-range-past-end", "api", r"#page=1-100000000: the PDF has 2 pages")
def _(c): return c.ask("q", pdf("two.pdf", 2) + "#page=1-100000000")
@case("pdf-page-junk", "magic", r"#page=x: give a page number or a range")
def _(s): cell(s, f"-i {pdf('one.pdf')}#page=x")
@case("pdf-huge-mediabox", "api", None, sends=1)
def _(c): return c.ask("q", pdf("wide.pdf", 1, (14_000, 14_000)))
@case("pdf-bytes-garbage", "api", r"cannot read <bytes 15 B> as a PDF: it is damaged or not a PDF")
def _(c): return c.ask("q", b"%PDF-1.7\n\x00\x01junk")
@case("pdf-fragment-on-image", "api", r"#page= is for PDF files")
def _(c): return c.ask("q", png() + "#page=2")


# ----- videos --------------------------------------------------------------------------------------------------------
@case("frames-zero-api-batch", "api", r"frames must be a whole number from 1 to 1000; got 0")
def _(c): return c.batch("q", video("v.mp4", 3), frames=0, progress=False)
@case("frames-zero-magic", "magic", r"--frames 0: give a number from 1 to 1000")
def _(s): cell(s, f"-i {video('v.mp4', 3)} --frames 0 --each")
@case("frames-million-api", "api", r"frames must be a whole number from 1 to 1000; got 1000000")
def _(c): return c.batch("q", video("v.mp4", 3), frames=1_000_000, progress=False)
@case("frames-million-magic", "magic", r"--frames 1000000: give a number from 1 to 1000")
def _(s): cell(s, f"-i {video('v.mp4', 3)} --frames 1000000 --each")
@case("frames-negative-videoframes", "api", r"frames must be a whole number from 1 to 1000; got -3")
def _(c):
    from azmm_magic import VideoFrames
    return c.ask("q", VideoFrames(video("v.mp4", 3), -3))
@case("frames-bool", "api", r"got True")
def _(c): return c.batch("q", video("v.mp4", 3), frames=True, progress=False)
@case("frames-per-request-zero", "api", r"frames_per_request must be a whole number of at least 1; got 0")
def _(c): return c.batch("q", video("v.mp4", 3), frames_per_request=0, progress=False)
@case("one-frame-video-sent-once", "api", None, sends=1)
def _(c): return c.batch("q", video("one.mp4", 1), frames=8, progress=False)
@case("three-frame-video-in-one-request", "api", None, sends=1)
def _(c): return c.ask("q", video("three.mp4", 3))
@case("video-truncated", "api", r"cut\.mp4 as a video: it is damaged or not a video")
def _(c): Path("cut.mp4").write_bytes(Path(video("v.mp4", 3)).read_bytes()[:64]); return c.ask("q", "cut.mp4")
@case("video-random-bytes", "api", r"noise\.webm as a video")
def _(c): Path("noise.webm").write_bytes(os.urandom(4096)); return c.ask("q", "noise.webm")
@case("video-8gb-sparse", "api", r"big\.mp4 as a video|big\.mp4: it is")
def _(c): return c.ask("q", sparse("big.mp4", 8 << 30))
@case("video-audio-only", "api", r"sound\.mp4 has no video stream")
def _(c): return c.ask("q", sound("sound.mp4"))
@case("video-time-past-end", "api", r"#t=99999: starts at 27:46:39.0 but the video")
def _(c): return c.ask("q", video("v.mp4", 3) + "#t=99999")
@case("video-time-junk", "magic", r"cannot read the time 'abc'")
def _(s): cell(s, f"-i {video('v.mp4', 3)}#t=abc")
@case("video-time-backwards", "api", r"the end comes before the start")
def _(c): return c.ask("q", video("v.mp4", 3) + "#t=0.2,0.1")


# ----- HEIC ------------------------------------------------------------------------------------------------------------
@case("heic-truncated", "api", r"half\.heic as an image: it is HEIC/AVIF but its data is truncated or corrupt")
def _(c): return c.ask("q", heic("half.heic"))
@case("heic-truncated-magic", "magic", r"half\.heic as an image: it is HEIC/AVIF")
def _(s): cell(s, f"-i {heic('half.heic')}")
@case("heic-header-only", "api", r"stub\.heic as an image")
def _(c): Path("stub.heic").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"); return c.ask("q", "stub.heic")


# ----- Pillow ----------------------------------------------------------------------------------------------------------
@case("png-decompression-bomb", "api", r"bomb\.png is too large to decode safely")
def _(c):
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 1, 0, 0, 0, 0)
    Path("bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                                 + chunk(b"IEND", b""))
    return c.ask("q", "bomb.png")
@case("png-ztxt-bomb", "api", r"text\.png as an image: .*(Too Large|truncated|corrupt)")
def _(c): return c.ask("q", png_with_chunk("text.png", b"zTXt", b"k\0\0" + zlib.compress(b"a" * 50_000_000)))
@case("png-bad-crc", "api", r"crc\.png as an image")
def _(c):
    data = bytearray(Path(png()).read_bytes())
    data[29] ^= 0xFF
    Path("crc.png").write_bytes(bytes(data))
    return c.ask("q", "crc.png")
@case("gif-many-frames", "api", None, sends=1)
def _(c):
    from PIL import Image
    frames = [Image.new("P", (4, 4), i % 256) for i in range(3000)]
    frames[0].save("many.gif", save_all=True, append_images=frames[1:])
    return c.ask("q", "many.gif")
@case("tiff-huge-declared", "api", r"huge\.tif (is too large to decode safely|as an image)")
def _(c):
    ifd = [(256, 4, 1, 200_000), (257, 4, 1, 200_000), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
           (273, 4, 1, 8), (277, 3, 1, 1), (279, 4, 1, 4)]
    body = struct.pack("<2sHI", b"II", 42, 12) + b"\0" * 4 + struct.pack("<H", len(ifd))
    body += b"".join(struct.pack("<HHII", *e) for e in ifd) + b"\0\0\0\0"
    Path("huge.tif").write_bytes(body)
    return c.ask("q", "huge.tif")


# ----- in-memory objects ----------------------------------------------------------------------------------------------
@case("numpy-broadcast-30gb", "api", r"numpy array of shape \(100000, 100000, 3\).*too large")
def _(c):
    import numpy as np
    return c.ask("q", np.broadcast_to(np.zeros((1, 1, 1), np.uint8), (100_000, 100_000, 3)))
@case("numpy-broadcast-batch", "api", r"too large")
def _(c):
    import numpy as np
    return c.batch("q", [np.broadcast_to(np.zeros((1, 1), np.float32), (90_000, 90_000))], progress=False)
@case("figure-huge", "api", r"<matplotlib Figure> \(200000×200000 pixels\) is too large to use.*smaller figsize")
def _(c):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    return c.ask("q", Figure(figsize=(2000, 2000), dpi=100))
@case("nested-list-deep", "api", r"nested more than")
def _(c):
    nest: Any = png()
    for _ in range(5000):
        nest = [nest]
    return c.ask("q", nest)
@case("list-of-a-million", "api", r"over 100,000 sources")
def _(c): return c.batch("q", [png()] * 1_000_000, progress=False)
@case("endless-generator", "api", r"over 100,000 sources")
def _(c): return c.batch("q", itertools.repeat(png()), progress=False)
@case("empty-bytes", "api", r"<bytes 0 B>.*empty")
def _(c): return c.ask("q", b"")
@case("data-url-text", "api", r"<data URL 5 B> as an image: Pillow does not recognise")
def _(c): return c.ask("q", "data:image/png;base64,aGVsbG8=")
@case("url-unreachable-inline", "api", r"127\.0\.0\.1:9/x\.png")
def _(c): return c.derive(inline_urls=True).ask("q", "http://127.0.0.1:9/x.png")
@case("dict-source", "api", r"cannot use an object of type dict")
def _(c): return c.ask("q", {"path": "a.png"})


# ----- DataFrames -----------------------------------------------------------------------------------------------------
@case("dataframe-duplicate-columns", "api", r"duplicate column names \(path\)")
def _(c):
    import pandas as pd
    df = pd.concat([frame(path=[png()]), frame(path=[png()])], axis=1)
    return c.batch("q", df, progress=False)
@case("dataframe-duplicate-columns-magic", "magic", r"duplicate column names \(label\)")
def _(s):
    import pandas as pd
    s.user_ns["df"] = pd.concat([frame(path=[png()], label=["a"]), frame(label=["b"])], axis=1)
    cell(s, "-i df --each")
@case("dataframe-no-rows", "api", r"no column of the DataFrame holds images|has no rows")
def _(c): return c.batch("q", frame(path=[]), progress=False)
@case("dataframe-no-image-column", "api", r"no column of the DataFrame holds images.*its columns: n")
def _(c): return c.batch("q", frame(n=[1, 2]), progress=False)
@case("dataframe-unknown-column", "api", r"column='pic': the DataFrame has no such column")
def _(c): return c.batch("q", frame(path=[png()]), column="pic", progress=False)
@case("dataframe-multiindex-columns", "api", None, sends=1)
def _(c):
    import pandas as pd
    df = pd.DataFrame([[png(), 1]], columns=pd.MultiIndex.from_tuples([("a", "path"), ("a", "n")]))
    return c.batch("q", df, progress=False)
@case("dataframe-row-is-dev-zero", "api", r"row 1 \(column 'path'\): cannot read zero\.png: it is a device")
def _(c): os.symlink("/dev/zero", "zero.png"); return c.batch("q", frame(path=[png(), "zero.png"]), progress=False)
@case("dataframe-to-ask", "api", r"a pandas DataFrame holds one image per row")
def _(c): return c.ask("q", frame(path=[png()]))
@case("dataframe-200000-rows", "api", r"the DataFrame has 200,000 rows, over the 100,000 one batch takes")
def _(c): return c.batch("q", frame(path=[png()] * 200_000), progress=False)
@case("dataframe-missing-value", "api", r"row 0 \(column 'path'\) has no image")
def _(c): return c.batch("q", frame(path=[None, png()]), column="path", progress=False)


# ----- options the magic refuses, refused by the Python API too --------------------------------------------------------
@case("max-tokens-zero-api", "api", r"max_tokens.*positive number, got 0")
def _(c): return c.ask("q", png(), max_tokens=0)
@case("detail-ultra-api", "api", r"detail.*'ultra'")
def _(c): return c.ask("q", png(), detail="ultra")
@case("temperature-nan-api", "api", r"temperature.*between 0 and 2, got nan")
def _(c): return c.ask("q", png(), temperature=float("nan"))
@case("concurrency-zero-api", "api", r"concurrency must be at least 1")
def _(c): return c.batch("q", png(), concurrency=0, progress=False)
@case("system-not-text-api", "api", r"system must be text.*got int")
def _(c): return c.ask("q", png(), system=5)
@case("empty-prompt-api", "api", r"prompt is empty")
def _(c): return c.ask("   ", png())
@case("eleven-images-api", "api", r"11 images given but at most 10.*batch")
def _(c): return c.ask("q", [png(f"{i}.png", (8, 8)) for i in range(11)])


# ----- the child -------------------------------------------------------------------------------------------------------
def _cached_rows() -> int:
    if not os.path.exists("cache.sqlite"):
        return 0
    with contextlib.closing(sqlite3.connect("cache.sqlite")) as conn:
        return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])


def _message_of(result: Any) -> tuple[str, str | None]:
    failures = getattr(result, "failures", None)
    if failures:
        return "refused", str(failures[0].error)
    return "ok", None


def main(case_id: str, url: str) -> None:
    (chosen,) = [c for c in CASES if c.id == case_id]
    out = io.StringIO()
    status, message = "ok", None
    if chosen.mode == "api":
        from azmm_magic import VisionClient
        from azmm_magic.core.errors import AzureVisionError

        client = VisionClient(endpoint=url, deployment="vision-test", auth="none", cache="sqlite",
                              cache_path="cache.sqlite")
        try:
            status, message = _message_of(chosen.run(client))
        except AzureVisionError as e:
            status, message = "refused", str(e)
    else:
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        cfg = Config()
        cfg.HistoryManager.enabled = False
        cfg.AzureVision.endpoint = url
        cfg.AzureVision.deployment = "vision-test"
        cfg.AzureVision.cache = "sqlite"
        cfg.AzureVision.cache_path = "cache.sqlite"
        shell = InteractiveShell.instance(config=cfg)
        shell.extension_manager.load_extension("azmm_magic")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            shell.last_execution_result = None
            chosen.run(shell)
        result = shell.last_execution_result
        error = result.error_in_exec if result is not None else None
        if error is not None:
            status, message = "refused", str(error)
    print(json.dumps({"status": status, "message": message, "output": out.getvalue(), "cached": _cached_rows()}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
