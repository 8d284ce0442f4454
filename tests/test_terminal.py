"""Answers as terminal text, gallery captions and JSON blocks: each from a library's tokens (markdown-it, Pygments),
never a live tag or an escape sequence."""

from __future__ import annotations

import io

from azmm_magic.core.result import VisionResult
from azmm_magic.display.bundle import json_html
from azmm_magic.display.gallery import tile_html, tile_plain
from azmm_magic.display.stream import StreamView
from azmm_magic.display.terminal import BOLD, RESET, RULE, TerminalMarkdown, terminal_text
from azmm_magic.features.outcomes import BatchFailure

ANSWER = """# Colours *seen*

The image is **mostly red** with `#ff0000`, see [the docs](https://example.com/a?sig=SECRET) or <https://x.example>.
![chart](https://tracker.example/p.png)

- one
  - nested
- two

3) third
4) fourth

> quoted
>
> more

---

```python
x = 1

y = 2
```
| a | bb |
|---|----|
| 1 | 2 |
"""


def test_an_answer_is_tidy_terminal_text_from_its_tokens():
    text = terminal_text(ANSWER)
    assert text.split("\n") == [
        "Colours *seen*",
        "",
        "The image is mostly red with #ff0000, see the docs (https://example.com/a?sig=SECRET) or https://x.example.",
        "[image: chart] (https://tracker.example/p.png)",
        "",
        "• one",
        "  • nested",
        "• two",
        "",
        "3) third",
        "4) fourth",
        "",
        "│ quoted",
        "│",
        "│ more",
        "",
        RULE,
        "",
        "",
        "    x = 1",
        "",
        "    y = 2",
        "",
        "a | bb",
        "--+---",
        "1 | 2",
    ]


def test_ansi_bold_for_headings_and_strong_only_when_asked():
    assert terminal_text("# Title\n\n**bold** and *em*", ansi=True) == f"{BOLD}Title{RESET}\n\n{BOLD}bold{RESET} and *em*"
    assert BOLD not in terminal_text("# Title\n\n**bold**")


def test_markdown_that_only_looks_like_markup_is_not_rewritten():
    # a regex parser turned these into bullets, bold or links; markdown-it's tokens do not
    assert terminal_text("2 * 3 * 4 = 24, a*b*c and **not closed") == "2 * 3 * 4 = 24, a*b*c and **not closed"
    assert terminal_text("`**kept**` [not a link] (x)") == "**kept** [not a link] (x)"
    assert terminal_text("[run](javascript:alert(1))") == "[run](javascript:alert(1))"  # not a link: shown as text


def test_no_escape_sequence_reaches_the_terminal():
    hostile = ("**a\x1b[31m** \x1b]52;c;ZXZpbA==\x07[x](https://h/\x1b[2J) \x9b2J \u202eevil\n- \x1b[1Aitem\n"
               "```\n\x1b[2Jcode\n```")
    reader = TerminalMarkdown()
    streamed = [reader.line(line) for line in hostile.split("\n")]
    assert streamed[-2] == "    code"  # a code line of a stream too
    for text in (terminal_text(hostile, ansi=False), "\n".join(streamed)):
        assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text and "\u202e" not in text, text


def test_a_stream_line_by_line_reads_like_the_whole_answer():
    reader = TerminalMarkdown()
    lines = [reader.line(line) for line in ANSWER.split("\n")]
    assert lines[:13] == terminal_text(ANSWER).split("\n")[:13]  # the table needs its lines together
    assert not reader.in_code and lines[lines.index("    x = 1") - 1] == ""
    inside = TerminalMarkdown()
    assert [inside.line(x) for x in ["~~~~", "```", "# not a heading", "~~~~", "# heading"]] == [
        "", "    ```", "    # not a heading", "", "heading"]  # only a fence like the opening one closes it


def test_a_terminal_stream_keeps_the_answers_indentation_and_code():
    view = StreamView([], kernel=False, stream=io.StringIO(), max_rate=0)
    view.start()
    view.add("Steps:\n1. open\n   - nested\n```\n  two spaces\n```\n")
    view.close()
    assert view.stream.getvalue() == "Steps:\n1. open\n   • nested\n\n      two spaces\n\n"


def test_gallery_captions_drop_the_marks_and_redact_urls_errors_keep_their_characters():
    plain = tile_plain(0, VisionResult(ANSWER, deployment="d"), "a.png")
    assert plain.startswith("✓ #0 a.png: Colours *seen* The image is mostly red with #ff0000, see the docs")
    assert "**" not in plain and "#ff0000" in plain and "SECRET" not in plain
    failed = BatchFailure(1, "b.png", "No images match photos/*.png or shots/*.png", "ImageInputError")
    assert tile_plain(1, failed, "b.png").endswith(": No images match photos/*.png or shots/*.png")
    assert "photos/*.png or shots/*.png" in tile_html(1, failed, "b.png")


def test_json_is_highlighted_by_pygments_and_escaped():
    html = json_html('{"<b>key</b>": ["<script>alert(1)</script>", 1.5, true, null], "bidi": "\u202eevil"}')
    assert html.startswith('<pre class="azmm-json"') and "<script" not in html and "<b>" not in html
    spans = html.lower()  # Pygments writes the colours in upper case
    assert '<span style="color: #3d7ab8">"&lt;b&gt;key&lt;/b&gt;"</span>' in spans  # a key
    assert '<span style="color: #3a8a3a">"&lt;script&gt;' in spans  # a string
    assert '<span style="color: #b0612a">1.5</span>' in spans and '<span style="color: #9a55b8">null</span>' in spans
    assert "\u202e" not in html
    plain = json_html("not JSON <img src=x onerror=alert(1)>")
    assert "<span" not in plain and "&lt;img src=x" in plain and "<img" not in plain
