"""Every surface next to the happy path: terminal IPython, help, messages, captions, JSON, the gallery, and
answers rendered as untrusted text everywhere (result, stream, gallery, compare grid, chat history)."""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError

from azmm_magic.core.result import Usage, VisionResult
from azmm_magic.display.bundle import table_bundle
from azmm_magic.display.compare import comparison_html
from azmm_magic.display.gallery import batch_bundle, tile_html
from azmm_magic.display.result import result_bundle
from azmm_magic.display.stream import StreamView
from azmm_magic.display.terminal import terminal_text
from azmm_magic.features.batch import BatchResult
from azmm_magic.features.compare import Comparison
from tests.conftest import dispose_shell, make_png

EVIL = ('**Done.** ![pixel](https://tracker.example/p.png) <img src=x onerror="alert(1)"> <script>alert(2)</script> '
        "[click](javascript:alert(3)) <iframe src=https://evil.example></iframe>\n\n- item\n")


def _inert(out: str) -> None:
    for bad in ("<img src=x", "<script", "<iframe", 'href="javascript', "src=\"https://tracker"):
        assert bad not in out, bad
    assert "https://tracker.example/p.png" in out  # a remote image is shown as a plain link, never loaded


# ----- answers are untrusted text, on every surface ---------------------------------------------------------------
def test_untrusted_answer_is_inert_on_every_surface():
    result = VisionResult(text=EVIL, deployment="d", usage=Usage(1, 1, 2))
    bundle = result_bundle(result)
    _inert(bundle["text/html"])
    from markdown_it import MarkdownIt

    markdown = MarkdownIt("commonmark", {"html": True}).render(bundle["text/markdown"])  # a renderer allowing HTML
    assert "<script" not in markdown and "<img" not in markdown and "<iframe" not in markdown
    _inert(tile_html(0, result, "a.png"))  # gallery tile, which now keeps the answer's Markdown
    assert "<ul" in tile_html(0, result, "a.png") and "<strong>Done.</strong>" in tile_html(0, result, "a.png")
    _inert(batch_bundle(BatchResult([result]))["text/html"])
    _inert(comparison_html(Comparison({"a": result}, {}, ["a"])))  # compare grid
    view = StreamView(kernel=True)
    view.text = EVIL
    _inert(view._bundle()["text/html"])  # the live stream
    chat = table_bundle([("1", "q", "0", EVIL, "d", "2")], ("turn", "prompt", "images", "answer", "deployment", "tokens"))
    assert "<script" not in chat["text/html"] and "<img" not in chat["text/html"]  # %azure_vision chat show
    plain = terminal_text(EVIL + "\x1b]52;c;ZXZpbA==\x07\x1b[2J")
    assert "\x1b" not in plain and "[image: pixel] (https://tracker.example/p.png)" in plain


# ----- help -------------------------------------------------------------------------------------------------------
def test_help_reads_as_plain_text(shell):
    helped = shell.run_line_magic("azure_vision", "help")
    text = repr(helped)
    assert "IPython.core.display" not in text and text == helped._repr_mimebundle_()["text/plain"]
    assert text == shell.find_cell_magic("azure_vision").__doc__  # %%azure_vision? shows the same text
    assert "``" not in text and "::" not in text and ":class:" not in text
    assert max(len(line) for line in text.splitlines()) <= 100
    groups = [line for line in text.splitlines() if line.startswith("Options, ")]
    assert groups == ["Options, images:", "Options, model:", "Options, output:", "Options, cache:", "Options, batch:"]
    assert text.count("    %%azure_vision -i ") == 2 and "Examples:" in text
    assert helped._repr_mimebundle_()["text/html"].startswith("<pre")


# ----- a real terminal IPython (simple prompt: no tty needed) -------------------------------------------------------
@pytest.fixture
def terminal(emulator) -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.terminal.interactiveshell import TerminalInteractiveShell
    from traitlets.config import Config

    InteractiveShell.clear_instance()
    cfg = Config()
    cfg.HistoryManager.enabled = False
    cfg.TerminalInteractiveShell.simple_prompt = True
    cfg.AzureVision.endpoint = emulator.url
    cfg.AzureVision.deployment = "vision-test"
    sh = TerminalInteractiveShell.instance(config=cfg)
    sh.extension_manager.load_extension("azmm_magic")
    yield sh
    dispose_shell(sh)


def test_terminal_panel_and_plot_say_what_a_terminal_cannot_show(terminal, capsys):
    with pytest.raises(UsageError, match="needs Jupyter"):
        terminal.run_line_magic("azure_vision", "panel")
    view = terminal.run_line_magic("azure_vision", "usage --plot")
    assert "shown in a notebook" in capsys.readouterr().out and "image/png" not in view._repr_mimebundle_()


def test_terminal_each_prints_each_line_once(terminal, emulator, tmp_path, capsys):
    for i, colour in enumerate([(200, 0, 0), (0, 0, 200), (250, 250, 250)]):
        make_png(tmp_path / f"{i}.png", (40 + 10 * i, 30), colour)
    out = terminal.run_cell_magic("azure_vision", f'-i "{tmp_path}/*.png" --each -o res', "Describe")
    printed = capsys.readouterr().out
    assert out is None and terminal.user_ns["res"].counts()["ok"] == 3
    assert printed.count("✓ #") == 3 and "the BatchResult is in res" in printed
    firsts = [line.split(": ", 1)[1][:30] for line in printed.splitlines() if line.startswith("✓ #")]
    assert len(set(firsts)) == 3, firsts  # the emulator's first words differ between images


def test_terminal_empty_body_and_options_on_the_line_magic(terminal, emulator, red_png):
    with pytest.raises(UsageError, match="go on a %%azure_vision cell"):
        terminal.run_line_magic("azure_vision", f"-i {red_png}")
    result = terminal.run_cell(f"%%azure_vision -i {red_png}")  # a notebook cell with no body
    assert isinstance(result.error_in_exec, UsageError)
    assert "prompt is empty" in str(result.error_in_exec) and "line magic" not in str(result.error_in_exec)
    # typing the options line in a terminal still asks for the prompt on the next line
    assert terminal.input_transformer_manager.check_complete(f"%%azure_vision -i {red_png}\n")[0] == "incomplete"
    assert emulator.count() == 0


# ----- messages ---------------------------------------------------------------------------------------------------
def test_messages_name_what_went_wrong(shell, emulator, red_png, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_png(tmp_path / "chart.png")
    shell.user_ns.update(chart_fig=object(), bad="nope.png")
    with pytest.raises(UsageError, match=r"no file or variable named 'chart_fi' \(did you mean chart_fig, or the "
                                         r"file chart\.png\?\)"):
        shell.run_cell_magic("azure_vision", "-i chart_fi", "q")
    with pytest.raises(UsageError, match=r"-i bad \(a variable holding 'nope\.png'\): image file not found"):
        shell.run_cell_magic("azure_vision", "-i bad", "q")
    with pytest.raises(UsageError, match=r"--detial high \(did you mean --detail\?\)"):
        shell.run_cell_magic("azure_vision", f"--detial high -i {red_png}", "q")
    with pytest.raises(UsageError, match=r"unknown subcommand 'confg' \(did you mean config\?\)"):
        shell.run_line_magic("azure_vision", "confg")
    assert emulator.count() == 0
    out = shell.run_cell_magic("azure_vision", f"-i {red_png} --no-stream", "Say {undefined_name} please")
    assert "sent {undefined_name} as written: no such variable" in out.footer()
    sent = emulator.chat_requests()[0]["body"]["messages"][-1]["content"][0]["text"]
    assert sent == "Say {undefined_name} please"


def test_plain_messages_have_no_markdown_backticks(shell, capsys):
    shell.run_line_magic("azure_vision", "emulator")
    try:
        assert "`" not in capsys.readouterr().out
        rows = {name: source for name, _value, source in shell.magics_manager.registry["AzureVision"]
                .session_settings().describe()}
        assert rows["endpoint"] == "%azure_vision emulator"  # not "%config"
    finally:
        shell.run_line_magic("azure_vision", "emulator stop")


# ----- rendering --------------------------------------------------------------------------------------------------
def test_captions_name_the_variable_and_keep_the_size(shell, emulator):
    shell.run_cell(textwrap.dedent("""
        import numpy as np
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        arr = np.zeros((200, 300, 3))
        chart_fig = plt.figure(figsize=(6.4, 4.8), dpi=100)
    """))
    out = shell.run_cell_magic("azure_vision", "-i arr -i {chart_fig} --no-stream", "Compare")
    html = out._repr_mimebundle_()["text/html"]
    assert "arr</span><span style=\"flex: none;\">&nbsp;· 300×200</span>" in html
    assert re.search(r"chart_fig</span><span style=\"flex: none;\">&nbsp;· \d+×\d+</span>", html)
    assert "&lt;numpy" not in html and "&lt;matplotlib" not in html


def test_json_answer_is_a_code_block_and_the_parsed_repr(shell, emulator, red_png):
    out = shell.run_cell_magic("azure_vision", f"-i {red_png} --json --no-stream", "as json")
    bundle = out._repr_mimebundle_()
    assert '<pre class="azmm-json"' in bundle["text/html"] and "<span style=\"color:" in bundle["text/html"]
    assert bundle["text/plain"].startswith("{'emulator': ") and "```json" in bundle["text/markdown"]


def test_dry_run_json_is_monospaced_and_not_clipped(shell, emulator, red_png):
    html = shell.run_cell_magic("azure_vision", f"-i {red_png} --dry-run", "q")._repr_mimebundle_()["text/html"]
    assert "monospace" in html and "24em" not in html


def test_gallery_tiles_lead_with_what_differs(shell, emulator, tmp_path):
    make_png(tmp_path / "a.png", (64, 48), (220, 20, 20))
    make_png(tmp_path / "b.png", (300, 200), (250, 250, 250))
    out = shell.run_cell_magic("azure_vision", f'-i "{tmp_path}/*.png" --each', "Describe")
    html = out._repr_mimebundle_()["text/html"]
    assert "64×48 PNG, red, dark" in html and "300×200 PNG, white, bright" in html
    assert html.count("<strong>Azure OpenAI emulator</strong>") == 2 and "<ul" in html  # label once per answer; lists kept


def test_terminal_stream_is_tidy_text_after_the_images():
    view = StreamView([], kernel=False, stream=io.StringIO(), max_rate=0)
    view.start()
    for piece in ["# Ti", "tle\n**bo", "ld** and `code`\n- one\n", "```\nx = 1\n```\nend"]:
        view.add(piece)
    view.close()
    assert view.stream.getvalue() == "Title\nbold and code\n• one\n\n    x = 1\n\nend\n"


def test_config_says_what_auth_none_sends():
    """`auth none` is not silent about the header that goes out, nor about a key that is set but not sent."""
    from azmm_magic.core.settings import Secret, Settings

    rows = dict((n, v) for n, v, _ in Settings(endpoint="http://127.0.0.1:1/", auth="none").describe())
    assert rows["auth"] == "none (no credential: a placeholder api-key header is sent)"
    keyed = Settings(endpoint="http://127.0.0.1:1/", auth="none", api_key=Secret("k-123"))
    shown = dict((n, v) for n, v, _ in keyed.describe())["auth"]
    assert "the API key set is not sent" in shown and "k-123" not in shown


def test_a_missing_file_suggests_close_names(tmp_path, monkeypatch):
    """A typo in a file name is answered with the files it probably meant (Python API and magic alike)."""
    from azmm_magic.core.errors import ImageInputError
    from azmm_magic.core.images import prepare_images

    (tmp_path / "red.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImageInputError, match=r"image file not found: redd\.png \(did you mean red\.png\?\)$"):
        prepare_images("redd.png")
    with pytest.raises(ImageInputError, match=r"image file not found: zebra\.png$"):
        prepare_images("zebra.png")
