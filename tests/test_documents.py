"""PDF pages, video frames, phone photos and DataFrame rows, with real files made here (a multi-page PDF from
matplotlib's PDF backend, an MP4 written with PyAV, a HEIC written with pillow-heif, a pandas DataFrame), through
the magic, the Python API, the panel and ``--each``, against the emulator; each bad input is one clear line and
sends nothing."""

from __future__ import annotations

import hashlib
import io
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from PIL import Image

from azmm_magic import VisionClient
from azmm_magic.core.errors import ConfigError, ImageInputError
from azmm_magic.core.images import caption, prepare_images
from azmm_magic.core.video import VideoFrames, format_time, parse_time
from azmm_magic.display.gallery import batch_bundle
from azmm_magic.features.batch import BatchResult
from tests.conftest import Emulator, choose_files, make_png, write_video

PAGES = 3
SECONDS = 5.0
FPS = 10


def _pdf(path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(path) as pdf:
        for k in range(PAGES):
            fig, ax = plt.subplots(figsize=(8.5, 11))  # US letter: 612 x 792 pt
            ax.plot(np.arange(10) * (k + 1))
            ax.set_title(f"page {k + 1}")
            pdf.savefig(fig)
            plt.close(fig)
    return path


_PDF_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def encrypted_pdf(path: Path, user_password: bytes = b"secret") -> Path:
    """A one-page PDF encrypted with the standard security handler (revision 2, 40-bit RC4) and a user password."""
    def padded(pw: bytes) -> bytes:
        return (pw + _PDF_PAD)[:32]

    file_id = hashlib.md5(b"azmm-test").digest()
    owner = _rc4(hashlib.md5(padded(b"owner")).digest()[:5], padded(user_password))
    permissions = -4
    key = hashlib.md5(padded(user_password) + owner + struct.pack("<i", permissions) + file_id).digest()[:5]
    user = _rc4(key, _PDF_PAD)
    content = _rc4(hashlib.md5(key + struct.pack("<i", 4)[:3] + b"\x00\x00").digest()[:10], b"0 0 1 rg 10 10 100 100 re f")
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]/Contents 4 0 R>>",
        b"<</Length %d>>stream\n" % len(content) + content + b"\nendstream",
        b"<</Filter/Standard/V 1/R 2/O<" + owner.hex().encode() + b">/U<" + user.hex().encode() + b">/P -4>>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += (b"trailer\n<</Size %d/Root 1 0 R/Encrypt 5 0 R/ID[<" % (len(objects) + 1) + file_id.hex().encode()
            + b"><" + file_id.hex().encode() + b">]>>\nstartxref\n%d\n%%%%EOF\n" % xref)
    path.write_bytes(bytes(out))
    return path


def _mp4(path: Path) -> Path:
    """5 s at 10 fps, 320x240; frame i is red level 5*i (so a frame's time can be read back from its colour)."""
    def paint(i: int) -> np.ndarray:
        arr = np.zeros((240, 320, 3), np.uint8)
        arr[:, :, 0] = i * 5
        return arr

    # a keyframe every 2 s: frames are found by seeking, then decoding forward
    return write_video(path, int(SECONDS * FPS), paint, fps=FPS, options={"g": "20"})


def _heic(path: Path) -> Path:
    """A 64x32 HEIC whose EXIF says "rotate 90° clockwise" (orientation 6), as phones write them."""
    from pillow_heif import register_heif_opener

    register_heif_opener()
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = Image.merge("RGB", [Image.effect_noise((64, 32), 40).point(lambda v, k=k: min(255, v + k)) for k in (120, 30, 30)])
    photo.save(path, exif=exif.tobytes())  # noise: a photo (sent as JPEG), not a flat chart (PNG)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    return {"pdf": _pdf(d / "paper.pdf"), "mp4": _mp4(d / "clip.mp4"), "heic": _heic(d / "IMG_0001.HEIC")}


@pytest.fixture
def frame(tmp_path: Path) -> pd.DataFrame:
    paths = [make_png(tmp_path / f"{n}.png", color=c) for n, c in (("a", (250, 0, 0)), ("b", (0, 250, 0)))]
    return pd.DataFrame({"path": [str(p) for p in paths], "label": ["red square", "green square"], "n": [1, 2]},
                        index=[10, 20])


def _client(emu: Emulator, **kw) -> VisionClient:
    return VisionClient(endpoint=emu.url, deployment="vision-test", auth="none", **kw)


def _content(emu: Emulator, i: int = -1) -> list[dict]:
    return emu.chat_requests()[i]["body"]["messages"][-1]["content"]


def _red(image) -> int:
    """The red level of the middle of a prepared frame."""
    with Image.open(io.BytesIO(image.data)) as img:
        return img.convert("RGB").getpixel((img.width // 2, img.height // 2))[0]


# ----- PDF -------------------------------------------------------------------------------------------------------
def test_pdf_pages_through_the_magic(shell, emulator, media):
    shell.user_ns["doc"] = str(media["pdf"])
    result = shell.run_cell_magic("azure_vision", f"-i '{media['pdf']}#page=2' --no-stream", "What is plotted?")
    assert [caption(i) for i in result.images] == ["paper.pdf p.2 · 768×994"]  # rendered at what the tile rule keeps
    assert result.images[0].ref == f"{media['pdf']}#page=2"
    content = _content(emulator)
    assert [p["type"] for p in content] == ["text", "image_url"]

    every = shell.run_cell_magic("azure_vision", "-i doc --no-stream --detail low", "Summarise the pages.")
    assert [i.source.rsplit("/", 1)[-1] for i in every.images] == ["paper.pdf p.1", "paper.pdf p.2", "paper.pdf p.3"]
    assert max(every.images[0].width, every.images[0].height) <= 512  # detail=low: never more pixels than billed

    pages = shell.run_cell_magic("azure_vision", f"-i '{media['pdf']}#page=2-3' --each -o pages", "Describe the page.")
    assert len(pages) == 2 and pages.sources[0].endswith("paper.pdf p.2") and emulator.count() == 4


def test_pdf_pages_in_the_python_api(emulator, media):
    client = _client(emulator)
    result = client.ask("Which page is this?", images=[f"{media['pdf']}#page=3"])
    assert result.images[0].source.endswith("paper.pdf p.3") and emulator.count() == 1
    batch = client.batch("Describe the page.", str(media["pdf"]), progress=False)
    assert len(batch) == PAGES and not batch.failures and emulator.count() == 1 + PAGES


def test_too_many_pages_suggests_page_or_each(shell, emulator, media):
    shell.run_line_magic("config", "AzureVision.max_images = 2")
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("azure_vision", f"-i '{media['pdf']}' --no-stream", "q")
    message = str(info.value)
    assert "3 PDF pages" in message and "#page=2-5" in message and "\n" not in message.strip()
    assert emulator.count() == 0


# ----- video -----------------------------------------------------------------------------------------------------
def test_video_frames_in_time_order_with_timestamps(emulator, media):
    client = _client(emulator)
    result = client.ask("What happens?", images=[VideoFrames(str(media["mp4"]), frames=4)])
    assert [caption(i) for i in result.images] == [
        f"clip.mp4 @ {format_time(t)} · 320×240" for t in (0.625, 1.875, 3.125, 4.375)
    ]
    reds = [_red(i) for i in result.images]
    assert reds == sorted(reds) and abs(reds[0] - 5 * round(0.625 * FPS)) <= 8  # the frame at that time, decoded
    content = _content(emulator)
    assert [p["type"] for p in content] == ["text"] + ["text", "image_url"] * 4
    assert [p["text"] for p in content[1::2]] == [f"[clip.mp4 @ {format_time(t)}]" for t in (0.625, 1.875, 3.125, 4.375)]


def test_video_through_the_magic_range_frames_and_each(shell, emulator, media):
    clip = media["mp4"]
    default = shell.run_cell_magic("azure_vision", f"-i '{clip}' --no-stream", "What happens?")
    assert len(default.images) == 8  # --frames defaults to 8
    ranged = shell.run_cell_magic("azure_vision", f"-i '{clip}#t=00:01,2' --frames 2 --no-stream", "q")
    assert [i.source.rsplit("/", 1)[-1] for i in ranged.images] == ["clip.mp4 @ 00:01.3", "clip.mp4 @ 00:01.8"]
    n = emulator.count()
    each = shell.run_cell_magic("azure_vision", f"-i '{clip}' --each --frames 6 --frames-per-request 3 -o runs", "q")
    assert isinstance(each, BatchResult) and len(each) == 2 and emulator.count() == n + 2
    assert [len(r.images) for r in each.results] == [3, 3]
    one_each = shell.run_cell_magic("azure_vision", f"-i '{clip}' --each --frames 3", "q")
    assert len(one_each) == 3 and all(len(r.images) == 1 for r in one_each.results)


def test_time_parsing():
    assert parse_time("62.5", "x") == 62.5 and parse_time("01:02.5", "x") == 62.5 and parse_time("1:00:00", "x") == 3600
    assert format_time(62.5) == "01:02.5" and format_time(3723.5) == "1:02:03.5"


# ----- phone photos ------------------------------------------------------------------------------------------------
def test_heic_opens_like_a_photo(shell, emulator, media):
    result = shell.run_cell_magic("azure_vision", f"-i '{media['heic']}' --no-stream", "What colour?")
    image = result.images[0]
    assert image.media_type == "image/jpeg" and (image.width, image.height) == (32, 64)  # EXIF rotation applied
    assert _content(emulator)[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_avif_opens_like_a_photo(tmp_path):
    path = tmp_path / "photo.avif"
    Image.new("RGB", (40, 20), (10, 10, 200)).save(path)
    (image,) = prepare_images(str(path))
    assert (image.width, image.height) == (40, 20) and image.media_type in ("image/jpeg", "image/png")


# ----- DataFrame rows ------------------------------------------------------------------------------------------------
def test_dataframe_rows_through_the_magic(shell, emulator, frame):
    shell.user_ns.update(df=frame, label="NOTEBOOK VARIABLE", where="the lab")
    out = shell.run_cell_magic("azure_vision", "-i df --each -o res", "Is this a {label} from {where}? {{label}}")
    assert out is shell.user_ns["res"] and len(out) == 2 and emulator.count() == 2
    prompts = sorted(r["body"]["messages"][-1]["content"][0]["text"] for r in emulator.chat_requests())
    assert prompts == ["Is this a green square from the lab? {label}", "Is this a red square from the lab? {label}"]
    table = out.to_dataframe()
    assert list(table.index) == [10, 20] and list(table.columns[:3]) == ["path", "label", "n"]
    for column in ("answer", "error", "cached", "prompt_tokens", "completion_tokens"):
        assert column in table.columns
    assert table["answer"].str.contains("Azure OpenAI emulator").all() and table["error"].isna().all()
    html = batch_bundle(out)["text/html"]
    assert "row 10" in html and "Is this a red square from the lab?" in html


def test_dataframe_rows_in_the_python_api_with_schema_columns(emulator, frame):
    from pydantic import BaseModel

    class Verdict(BaseModel):
        answer_yes: bool
        colour: str

    client = _client(emulator)
    frame = frame.assign(other=["x.txt", "y.txt"])
    result = client.batch("Is this a {label}?", frame, column="path", progress=False, response_format=Verdict)
    assert len(result) == 2 and not result.failures
    table = result.to_dataframe()
    assert {"answer_yes", "colour"} <= set(table.columns) and list(table.index) == [10, 20]
    assert result.row_of(1) == 20 and result.prompt_of(0) == "Is this a red square?"


def test_dataframe_of_pil_images_and_bytes(emulator):
    client = _client(emulator)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(buf, "PNG")
    frame = pd.DataFrame({"picture": [Image.new("RGB", (9, 9), (1, 2, 3)), buf.getvalue()], "name": ["p", "b"]})
    result = client.batch("Describe {name}", frame, progress=False)
    assert len(result.results) == 2 and result.prompt_of(1) == "Describe b"


# ----- the panel ---------------------------------------------------------------------------------------------------
def test_panel_accepts_pdf_pages_video_frames_and_heic(shell, emulator, media):
    panel = shell.run_line_magic("azure_vision", "panel")
    assert ".pdf" in panel.upload.accept and "video/*" in panel.upload.accept and ".heic" in panel.upload.accept
    data = media["pdf"].read_bytes()
    choose_files(panel.upload, ("paper.pdf", data))
    assert [i.source for i in panel.images] == ["paper.pdf p.1", "paper.pdf p.2", "paper.pdf p.3"]
    panel.sources.remove_image(0)
    panel.sources.remove_image(0)
    panel.source_text.value = f"{media['mp4']}#t=1,1"
    panel.add_source_button.click()
    panel.source_text.value = str(media["heic"])
    panel.add_source_button.click()
    assert [i.source.rsplit("/", 1)[-1] for i in panel.images] == ["paper.pdf p.3", "clip.mp4 @ 00:01.0", "IMG_0001.HEIC"]
    panel.detail.value = "low"  # prepared again from each entry's own source
    assert len(panel.images) == 3
    panel.prompt.value = "Compare them."
    panel.send_button.click()
    assert panel.wait(60) and panel.message.value == ""
    content = _content(emulator)
    assert [p["type"] for p in content] == ["text", "image_url", "text", "image_url", "image_url"]
    assert content[2]["text"] == "[clip.mp4 @ 00:01.0]"


# ----- bad inputs: one clear line, nothing sent ------------------------------------------------------------------
def _bad_cases(tmp: Path, media: dict[str, Path]) -> list[tuple[str, str]]:
    (tmp / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n")
    (tmp / "empty.mp4").write_bytes(b"")
    encrypted_pdf(tmp / "locked.pdf")
    return [
        (f"-i '{tmp / 'broken.pdf'}'", r"broken\.pdf as a PDF: it is damaged or not a PDF"),
        (f"-i '{tmp / 'locked.pdf'}'", r"locked\.pdf: the PDF is encrypted \(password-protected\); save an unprotected copy"),
        (f"-i '{tmp / 'empty.mp4'}'", r"empty\.mp4 as a video: it is empty \(0 bytes\)"),
        (f"-i '{media['pdf']}#page=99'", r"paper\.pdf#page=99: the PDF has 3 pages \(pages 1-3\)"),
        (f"-i '{media['mp4']}#t=10'", r"clip\.mp4#t=10: starts at 00:10\.0 but the video is 00:05\.0 long"),
        (f"-i '{media['heic']}#page=2'", r"#page= is for PDF files and #t= for videos"),
        ("-i nocols --each", r"no column of the DataFrame holds images.*choose one with --column NAME"),
        ("-i df --each --column nope", r"--column 'nope': the DataFrame has no such column"),
        ("-i df", r"-i df is a pandas DataFrame: add --each"),
        ("-i df --via batch-api", r"its rows go through --each \(requests\), not --via batch-api"),
        (f"-i '{media['mp4']}' --frames 0", r"--frames 0: give a number from 1 to 1000"),
        (f"-i '{media['mp4']}' --frames-per-request 2", r"--frames-per-request K splits a video .*add --each"),
        (f"-i '{media['pdf']}' --column path --each", r"--column path: -i must name a pandas DataFrame"),
    ]


def test_bad_inputs_are_one_clear_line_and_send_nothing(shell, emulator, media, tmp_path, frame):
    shell.user_ns.update(df=frame, nocols=pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    for line, pattern in _bad_cases(tmp_path, media):
        with pytest.raises(UsageError) as info:
            shell.run_cell_magic("azure_vision", f"{line} --no-stream", "q {a}")
        message = str(info.value)
        assert re.search(pattern, message), (line, message)
        assert "\n" not in message.strip() and "Traceback" not in message, message
    assert emulator.count() == 0


def test_bad_inputs_in_the_python_api(emulator, media, tmp_path):
    client = _client(emulator)
    with pytest.raises(ImageInputError, match="one image per row"):
        client.ask("q", images=pd.DataFrame({"path": ["a.png"]}))
    with pytest.raises(ConfigError, match="no column of the DataFrame holds images"):
        client.batch("q", pd.DataFrame({"a": [1]}), progress=False)
    with pytest.raises(ConfigError, match="column='path' chooses the image column of a pandas DataFrame"):
        client.batch("q", str(media["pdf"]), column="path", progress=False)
    with pytest.raises(ImageInputError, match="3 PDF pages"):
        prepare_images(str(media["pdf"]), max_images=2)
    assert emulator.count() == 0


def test_an_encrypted_pdf_is_one_clear_line(tmp_path):
    import pypdfium2 as pdfium

    locked = encrypted_pdf(tmp_path / "locked.pdf")
    assert len(pdfium.PdfDocument(str(locked), password="secret")) == 1  # a real encrypted PDF, not a broken one
    with pytest.raises(ImageInputError) as info:
        prepare_images(str(locked))
    assert str(info.value) == (f"cannot read {locked}: the PDF is encrypted (password-protected); save an "
                               "unprotected copy first")
