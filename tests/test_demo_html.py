"""The HTML `azmm demo` writes opens offline: no require.js, MathJax, Mermaid or widget manager from a CDN,
no console errors, no request leaving the page (checked in headless Chromium with the network off)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from azmm_magic.frontends import cli
from azmm_magic.frontends.demo import export_html, find_notebook, notebooks_folder
from tests.chromium import launch
from tests.conftest import make_png

ROOT = Path(__file__).resolve().parent.parent


def offline_page_report(html: Path) -> dict[str, list[str]]:
    """Open ``html`` in headless Chromium with the network off; return its console errors, page errors and
    every request for something other than the file itself or inline data."""
    from playwright.sync_api import sync_playwright

    report: dict[str, list[str]] = {"console_errors": [], "page_errors": [], "external_requests": []}
    page_url = html.resolve().as_uri()
    with sync_playwright() as p:
        browser = launch(p)
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and report["console_errors"].append(m.text))
            page.on("pageerror", lambda e: report["page_errors"].append(str(e)))
            page.on("request", lambda r: r.url != page_url and not r.url.startswith(("data:", "blob:", "about:"))
                    and report["external_requests"].append(r.url))
            page.goto(page_url, wait_until="load")
            page.wait_for_load_state("networkidle")  # late scripts and lazy images: no request for 500 ms
            assert page.locator(".jp-Notebook").count() == 1
        finally:
            browser.close()
    return report


def _external_refs(body: str) -> list[str]:
    """URLs the page would load: src attributes, <link href>, CSS url(...) and @import, ES module imports (a link
    a reader may follow, <a href>, loads nothing)."""
    patterns = [r'\bsrc\s*=\s*["\']?((?:https?:)?//[^"\'\s>]+)', r'<link\b[^>]*\bhref\s*=\s*["\']?((?:https?:)?//[^"\'\s>]+)', r"url\(\s*[\"']?((?:https?:)?//[^)\"']+)",
                r"@import\s+[\"']((?:https?:)?//[^\"']+)", r"\bimport\s*\(?\s*[\"']((?:https?:)?//[^\"']+)"]
    return [m for pattern in patterns for m in re.findall(pattern, body)]


def _rich_notebook(tmp_path: Path) -> nbformat.NotebookNode:
    """What would pull a CDN into nbconvert's lab template: math, a Mermaid block, widget state, an image."""
    png = base64.b64encode(make_png(tmp_path / "red.png", (40, 30), (200, 40, 40)).read_bytes()).decode()
    nb = new_notebook(cells=[
        new_markdown_cell("# Offline\n\nInline math $x^2 + y^2$ and display math:\n\n$$\\int_0^1 x\\,dx$$"),
        new_markdown_cell("```mermaid\ngraph TD; A-->B\n```"),
        new_code_cell("red", execution_count=1, outputs=[
            new_output("display_data", {"image/png": png, "text/plain": "<PIL.Image>"}),
            new_output("execute_result", {"text/plain": "'answer'"}, execution_count=1),
        ]),
    ])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2, "version_minor": 0}}
    return nb


def test_exported_html_references_no_cdn(tmp_path):
    body = export_html(_rich_notebook(tmp_path))
    assert _external_refs(body) == []
    for cdn in ("require.js", "require.min.js", "MathJax", "mermaid.esm", "html-manager", "unpkg.com", "cdnjs", "jsdelivr"):
        assert cdn not in body, cdn
    assert "data:image/png;base64," in body and "x^2 + y^2" in body


def test_exported_html_opens_offline_without_errors(tmp_path):
    html = tmp_path / "rich.html"
    html.write_text(export_html(_rich_notebook(tmp_path)), encoding="utf-8")
    report = offline_page_report(html)
    assert report == {"console_errors": [], "page_errors": [], "external_requests": []}


def test_shipped_notebooks_are_found_and_unknown_names_listed(capsys):
    assert find_notebook("teaching") == find_notebook("teaching.ipynb") == notebooks_folder() / "teaching.ipynb"
    assert (notebooks_folder() / "teaching-answers.jsonl").exists()
    assert cli.main(["demo", "--notebook", "nope.ipynb", "--out", "unused"]) == 1
    err = capsys.readouterr().err
    assert "nope.ipynb is not one of the shipped notebooks" in err and "quickstart.ipynb" in err and "teaching.ipynb" in err
