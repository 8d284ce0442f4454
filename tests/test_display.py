"""The display layer owns every mimebundle; lower layers render through the core.views registry."""

from __future__ import annotations

import ast
import importlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from azmm_magic.core import views
from azmm_magic.core.errors import ServiceError
from azmm_magic.core.images import light_copy, prepare_images, thumbnail
from azmm_magic.core.result import Usage, VisionResult
from azmm_magic.display.untrusted import markdown_html, markdown_text
from azmm_magic.features.batch import BatchFailure, BatchResult
from azmm_magic.features.batch_api import BatchJob, JobList
from azmm_magic.features.compare import Comparison
from azmm_magic.store.ledger import UsageLedger, UsageView

PACKAGE = Path(__file__).resolve().parents[1] / "azmm_magic"
LOWER_LAYERS = ("core", "service", "store", "features")


def _display_imports(path: Path) -> list[str]:
    """Every import of azmm_magic.display in a module, inside functions too (TYPE_CHECKING blocks aside)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(
        node.test) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("azmm_magic.display"):
            found.append(node.module or "")
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("azmm_magic.display")]
    return found


def test_lower_layers_never_import_the_display_layer():
    offenders = {}
    for layer in LOWER_LAYERS:
        for path in sorted((PACKAGE / layer).rglob("*.py")):  # packages inside a layer too
            module = ".".join(("azmm_magic", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
            if _display_imports(path):
                offenders[module] = _display_imports(path)
    assert offenders == {}


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_result_renders_in_a_fresh_process_without_the_extension():
    """The Python API in a notebook: no %load_ext, the display layer is loaded on the first render only."""
    got = _run("""
        import json, sys
        from azmm_magic.core.result import Usage, VisionResult
        before = "azmm_magic.display" in sys.modules
        r = VisionResult(text="**bold** <script>alert(1)</script>", deployment="d", usage=Usage(12, 3, 15))
        bundle = r._repr_mimebundle_()
        heavy = [m for m in ("openai", "PIL", "numpy", "matplotlib") if m in sys.modules]
        print(json.dumps({"before": before, "after": "azmm_magic.display" in sys.modules, "bundle": bundle,
                          "footer": r.footer(), "only_plain": r._repr_mimebundle_(include={"text/plain"}),
                          "heavy": heavy}))
    """)
    assert got["before"] is False and got["after"] is True and got["heavy"] == []
    bundle = got["bundle"]
    assert set(bundle) == {"text/plain", "text/markdown", "text/html"}
    assert "<strong>bold</strong>" in bundle["text/html"] and "<script>" not in bundle["text/html"]
    assert "&lt;script&gt;" in bundle["text/html"] and "<script>" not in bundle["text/markdown"]
    assert got["footer"].startswith("d · 12 in / 3 out tokens") and got["footer"] in bundle["text/plain"]
    assert list(got["only_plain"]) == ["text/plain"]


def test_every_lower_layer_object_renders_in_a_fresh_process():
    got = _run("""
        import json, sys
        from types import SimpleNamespace
        from azmm_magic.core.result import VisionResult
        from azmm_magic.features.batch import BatchResult
        from azmm_magic.features.batch_api import BatchJob, JobList
        from azmm_magic.features.compare import Comparison
        from azmm_magic.store.ledger import UsageLedger, UsageView
        assert "azmm_magic.display" not in sys.modules
        r = VisionResult(text="hi", deployment="a")
        ledger = UsageLedger()
        ledger.record(r)
        job = SimpleNamespace(id="batch_1", status="completed", created_at=0, request_counts=None)
        objects = [BatchResult([r]), Comparison({"a": r}, {}, ["a"]), BatchJob(None, ["batch_1"]),
                   JobList([job]), ledger, UsageView(ledger)]
        print(json.dumps([sorted(o._repr_mimebundle_()) for o in objects]))
    """)
    assert all({"text/plain", "text/html"} <= set(keys) for keys in got), got


def test_every_registered_class_exists():
    for kind, _view in views.registered():
        module, _, name = kind.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), type), kind


def test_the_registry_follows_the_mro_filters_and_falls_back():
    class Thing:
        def _repr_mimebundle_(self, include=None, exclude=None):
            return views.mimebundle(self, include, exclude)

    class Special(Thing):
        pass

    assert views.mimebundle(Thing()) == {"text/plain": "<test_the_registry_follows_the_mro_filters_and_falls_back."
                                                       "<locals>.Thing: no renderer registered>"}
    views.register(Thing, lambda t: {"text/plain": "a thing", "text/html": "<b>a thing</b>"})
    views.register(Thing, lambda t: "plainly a thing", view=views.PLAIN)
    assert views.mimebundle(Special(), include={"text/html"}) == {"text/html": "<b>a thing</b>"}
    assert views.mimebundle(Special(), exclude={"text/html"}) == {"text/plain": "a thing"}
    assert views.plain(Special()) == "plainly a thing"
    with pytest.raises(LookupError, match="no 'footer' view"):
        views.text(Special(), "footer")


def test_lower_layer_objects_render_through_their_display_module():
    from azmm_magic.display import compare, gallery, jobs, result, usage

    ok = VisionResult(text="# Yes", deployment="a", usage=Usage(5, 2, 7))
    assert ok._repr_mimebundle_() == result.result_bundle(ok) and ok.footer() == result.footer_text(ok)
    cmp = Comparison({"a": ok}, {"b": ServiceError("b was not found")}, ["a", "b"])
    assert cmp._repr_mimebundle_() == compare.comparison_bundle(cmp)
    assert repr(cmp).startswith("=== a ===\n# Yes\n— a · 5 in") and "FAILED: b was not found" in repr(cmp)
    batch = BatchResult([ok, BatchFailure(1, "x.png", "broken")])
    assert batch._repr_mimebundle_() == gallery.batch_bundle(batch)
    listing = JobList([SimpleNamespace(id="batch_1", status="completed", created_at=0,
                                          request_counts=SimpleNamespace(total=4, completed=3, failed=1))])
    assert isinstance(listing, JobList) and listing._repr_mimebundle_() == jobs.job_list_bundle(listing)
    assert "batch_1  completed" in repr(listing) and "4/4" in repr(listing)
    job = BatchJob(None, ["batch_1"], total=2)  # type: ignore[arg-type]
    assert job._repr_mimebundle_()["text/plain"] == job.summary()
    ledger = UsageLedger()
    ledger.record(ok)
    assert ledger.table() == usage.usage_table(ledger) and repr(UsageView(ledger)) == repr(ledger)
    assert UsageView(ledger)._repr_mimebundle_() == ledger.table()


def _raw_html_renderer(text: str) -> str:
    """A Markdown renderer that ALLOWS raw HTML (as some notebook frontends do)."""
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark", {"html": True}).render(text))


@pytest.mark.parametrize("render", [markdown_html, lambda t: _raw_html_renderer(markdown_text(t))])
def test_answers_render_inert(render):
    answer = ('![pixel](https://tracker.example/p.png) <img src=x onerror="alert(1)"> [j](javascript:alert(1)) '
              "`List<int>`\n\n```html\n<div>kept</div>\n```\n")
    out = render(answer)
    assert "<img" not in out and "<script" not in out and 'href="javascript' not in out
    assert "&lt;img src=x" in out and "https://tracker.example/p.png" in out  # the image is a link, not loaded
    assert "<code>List&lt;int&gt;</code>" in out and "&lt;div&gt;kept&lt;/div&gt;" in out


def test_inert_markdown_keeps_code_as_written():
    answer = "Use `a<b>` here\n\n    <i>indented</i> ![x](y)\n\n```\n![z](https://e/z.png)\n```\n<b>bold</b> \\![w](v)"
    out = _raw_html_renderer(markdown_text(answer))
    assert "<code>a&lt;b&gt;</code>" in out and "&lt;i&gt;indented&lt;/i&gt; ![x](y)" in out
    assert "![z](https://e/z.png)" in out and "&lt;b&gt;bold&lt;/b&gt;" in out and "![w](v)" in out
    assert "<b>" not in out and "<i>" not in out and "<img" not in out


def _png(size: tuple[int, int], mode: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, (200, 10, 10, 128) if mode == "RGBA" else (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


def test_file_thumbnail_is_jpeg_for_a_photo_png_for_transparency_or_few_colours(tmp_path):
    import numpy as np
    from PIL import Image

    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 256, (320, 640, 3), dtype=np.uint8))
    noisy.save(tmp_path / "photo.png")
    (tmp_path / "clear.png").write_bytes(_png((40, 30), "RGBA"))
    (tmp_path / "flat.png").write_bytes(_png((640, 320), "RGB"))
    made = {name: thumbnail(str(tmp_path / name), 160) for name in ("photo.png", "clear.png", "flat.png")}
    sizes = {name: Image.open(io.BytesIO(m.data)).size for name, m in made.items() if m is not None}
    assert {name: m.media_type for name, m in made.items() if m is not None} == {
        "photo.png": "image/jpeg", "clear.png": "image/png", "flat.png": "image/png"}
    assert sizes == {"photo.png": (160, 80), "clear.png": (40, 30), "flat.png": (160, 80)}
    assert thumbnail(str(tmp_path / "missing.png")) is None and thumbnail(str(tmp_path)) is None


def test_light_copy_with_thumbnail_keeps_the_record_and_drops_the_pixels(tmp_path):
    from PIL import Image

    path = tmp_path / "wide.png"
    path.write_bytes(_png((800, 400), "RGB"))
    [image] = prepare_images(str(path))
    copy = light_copy(image, thumbnail=True)
    kept = ("width", "height", "sha256", "source", "notices")
    assert [getattr(copy, k) for k in kept] == [getattr(image, k) for k in kept]
    assert copy.media_type == "image/png" and Image.open(io.BytesIO(copy.data or b"")).size == (160, 80)
    broken = light_copy(copy.__class__(b"not an image", "image/png", 1, 1, "0" * 64, "bad.png"), thumbnail=True)
    assert broken.data is None and broken.source == "bad.png"
