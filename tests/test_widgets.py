"""The panel's logic without a browser: widgets driven with set_state, .value and .click(), against the emulator
(real SDK, real HTTP); the request the emulator received, the history, the variable, errors, Stop, and the cache
shared with the magic."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from azmm_magic.core.result import VisionResult
from azmm_magic.frontends.panel.compat import shown_count, titles_of
from tests.conftest import CANARY_KEY, _start, choose_files, make_png, uploaded_bytes


def _panel(shell):
    panel = shell.run_line_magic("azure_vision", "panel")
    assert panel.__class__.__name__ == "VisionPanel"
    return panel


def _ask(panel, prompt: str) -> VisionResult:
    panel.prompt.value = prompt
    panel.send_button.click()
    assert panel.wait(60)
    assert not panel.send_button.disabled and panel.stop_button.disabled
    return panel.result


def test_upload_send_history_and_variable(shell, emulator, red_png):
    panel = _panel(shell)
    assert "input tokens" not in panel.estimate.value and "add images and a question" in panel.estimate.value
    choose_files(panel.upload, ("red.png", red_png.read_bytes()))
    assert len(panel.images) == 1 and panel.images[0].source == "red.png"
    # the button reads "Choose files (1)"; the widget keeps no bytes (they are not sent back to the page)
    assert shown_count(panel.upload) == 1 and not uploaded_bytes(panel.upload)
    assert len(panel.thumbnails.children) == 1
    assert "data:image/png;base64" in panel.thumbnails.children[0].children[0].value
    assert "input tokens" in panel.estimate.value and "(images: " in panel.estimate.value

    result = _ask(panel, "What colour is the square?")
    sent = emulator.chat_requests()
    assert len(sent) == 1
    body = sent[0]["body"]
    assert body["model"] == "vision-test" and body["stream"] is True
    content = body["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "What colour is the square?"}
    assert content[1]["type"] == "image_url" and content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert isinstance(result, VisionResult) and "Azure OpenAI emulator" in result.text
    assert "Azure OpenAI emulator" in panel.answer.value and result.footer() in panel.answer.value.replace("&#x27;", "'")
    assert len(panel.history) == 1 and panel.history[0].prompt == "What colour is the square?"
    assert len(panel.history_view.children) == 1 and "What colour" in titles_of(panel.history_view)[0]
    assert panel.message.value == ""

    panel.variable_name.value = "my answer"
    panel.to_variable_button.click()
    assert "not a valid Python variable name" in panel.message.value and "my answer" not in shell.user_ns
    panel.variable_name.value = "answer"
    panel.to_variable_button.click()
    assert shell.user_ns["answer"] is result and "Stored" in panel.message.value


def test_history_reopens_earlier_answers(shell, emulator, red_png):
    panel = _panel(shell)
    panel.source_text.value = str(red_png)
    panel.add_source_button.click()
    first = _ask(panel, "First question")
    second = _ask(panel, "Second question")
    assert [h.prompt for h in panel.history] == ["First question", "Second question"]
    assert panel.result is second
    reopen = panel.history_view.children[0].children[-1]
    reopen.click()
    assert panel.result is first and "First question" in panel.to_cell_source()


def test_panel_and_magic_share_the_cache(shell, emulator, red_png):
    panel = _panel(shell)
    panel.source_text.value = str(red_png)
    panel.add_source_button.click()
    asked = _ask(panel, "Describe it")
    assert not asked.cached and len(emulator.chat_requests()) == 1
    # the same question in a cell is a cache hit: no new request
    out = shell.run_cell_magic("azure_vision", f"-i {red_png}", "Describe it")
    assert out.cached and out.text == asked.text and len(emulator.chat_requests()) == 1
    # and the other way round: asked in a cell first, then in the panel
    shell.run_cell_magic("azure_vision", f"-i {red_png} --no-stream", "Another question")
    assert len(emulator.chat_requests()) == 2
    again = _ask(panel, "Another question")
    assert again.cached and len(emulator.chat_requests()) == 2 and "cached" in panel.answer.value


def test_to_new_cell_reproduces_the_question(shell, emulator, red_png, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    panel = _panel(shell)
    choose_files(panel.upload, ("holiday photo.png", red_png.read_bytes()))
    shell.user_ns["pic"] = __import__("PIL.Image", fromlist=["Image"]).new("RGB", (30, 20), (0, 0, 255))
    panel.refresh_variables()
    assert "pic" in panel.variable_picker.options
    panel.variable_picker.value = "pic"
    panel.add_variable_button.click()
    panel.detail.value = "low"
    panel.temperature.value = "0.3"
    _ask(panel, "Compare {thing} and the other one. Reply as {\"a\": 1}.")
    shell.user_ns["thing"] = "x"  # defined only now: the panel sent the braces as written
    sent = emulator.chat_requests()[-1]["body"]
    assert sent["temperature"] == 0.3 and sent["messages"][-1]["content"][1]["image_url"]["detail"] == "low"

    asked = []  # what the panel asks the front end (dropzone.js inserts the cell; see test_browser.py)
    panel.drop.send = lambda content, buffers=None: asked.append(content)
    panel.to_cell_button.click()
    source = panel.cell_source.value
    first, body = source.split("\n", 1)
    assert first.startswith("%%azure_vision -i panel_uploads/holiday_photo-") and "-i {pic}" in first
    assert "--detail low" in first and "--temperature 0.3" in first
    saved = list((tmp_path / "panel_uploads").glob("holiday_photo-*.png"))
    assert len(saved) == 1 and saved[0].read_bytes() == red_png.read_bytes()
    assert panel.cell_source.layout.display is None and "panel_uploads" in panel.cell_note.value
    # the front end is asked to insert it below the panel's cell at once; set_next_input is not used (from a
    # button it lands under whichever cell runs next)
    assert asked == [{"type": "insert-cell", "source": source, "cell_id": None, "widget_id": panel.model_id}]
    assert not hasattr(shell, "rl_next_input")
    assert "copy it into a new cell if it does not appear" in panel.cell_note.value
    panel.drop._handle_custom_msg({"type": "cell-inserted", "ok": False, "reason": "no notebook here"}, [])
    assert "copy it into a new cell (no notebook here)" in panel.cell_note.value and "panel_uploads" in panel.cell_note.value
    assert panel.cell_source.layout.display is None
    panel.drop._handle_custom_msg({"type": "cell-inserted", "ok": True, "index": 5}, [])
    assert "Inserted the equivalent cell below the panel" in panel.cell_note.value
    assert panel.cell_source.layout.display == "none" and panel.cell_source.value == source

    del shell.user_ns["thing"]  # the cell interpolates like the panel did: with no variable `thing`
    n = len(emulator.chat_requests())
    out = shell.run_cell(source).result
    assert isinstance(out, VisionResult) and out.cached and len(emulator.chat_requests()) == n


def test_user_mistakes_show_one_line_and_panel_stays_usable(shell, emulator, red_png):
    panel = _panel(shell)
    panel.source_text.value = "no/such/photo.png"
    panel.add_source_button.click()
    assert "image file not found: no/such/photo.png" in panel.message.value and panel.images == []
    panel.source_text.value = ""
    panel.add_source_button.click()
    assert "Type a path" in panel.message.value

    panel.prompt.value = "   "
    panel.send_button.click()
    assert "prompt is empty" in panel.message.value and emulator.count() == 0

    panel.temperature.value = "warm"
    panel.prompt.value = "q"
    panel.send_button.click()
    assert "not a number" in panel.message.value and emulator.count() == 0
    panel.temperature.value = ""

    bad = b"this is not an image"
    choose_files(panel.upload, ("notes.png", bad), ("red.png", red_png.read_bytes()))
    assert "notes.png" in panel.message.value and [i.source for i in panel.images] == ["red.png"]  # the good one kept

    result = _ask(panel, "Still works?")
    assert "Azure OpenAI emulator" in result.text and panel.message.value == ""


def test_service_error_in_panel_then_recovers(shell, keyed_emulator, red_png, monkeypatch):
    shell.run_line_magic("config", f"AzureVision.endpoint = '{keyed_emulator.url}'")
    shell.run_line_magic("config", "AzureVision.max_retries = 0")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", CANARY_KEY)
    panel = _panel(shell)
    panel.source_text.value = str(red_png)
    panel.add_source_button.click()
    panel.deployment.value = "missing"
    panel.prompt.value = "q"
    panel.send_button.click()
    assert panel.wait(60)
    assert "Deployment &#x27;missing&#x27; was not found" in panel.message.value
    assert CANARY_KEY not in panel.message.value and panel.history == [] and panel.answer.value == ""
    assert not panel.send_button.disabled and panel.stop_button.disabled
    panel.deployment.value = "vision"
    result = _ask(panel, "q")
    assert result.deployment == "vision" and panel.message.value == ""
    assert keyed_emulator.chat_requests()[-1]["auth"] == "api-key"
    # the panel's cache is the session's: nothing was cached for the failed request
    assert "entries  1" in repr(shell.run_line_magic("azure_vision", "cache"))


def test_stop_cancels_the_stream_cleanly(shell, red_png):
    slow = _start(stream_chunk_delay=0.05)
    try:
        shell.run_line_magic("config", f"AzureVision.endpoint = '{slow.url}'")
        panel = _panel(shell)
        panel.source_text.value = str(red_png)
        panel.add_source_button.click()
        panel.prompt.value = "Tell me everything"
        streaming = threading.Event()  # the live view shows the first words

        def shown(change: dict) -> None:
            if "writing…" in change["new"] and "waiting for the first words" not in change["new"]:
                streaming.set()

        panel.answer.observe(shown, "value")
        panel.send_button.click()
        assert panel.send_button.disabled and not panel.stop_button.disabled
        assert streaming.wait(60), panel.answer.value
        panel.stop_button.click()
        assert panel.wait(60)
        result = panel.result
        assert result.incomplete and "Stopped" in panel.message.value and "INCOMPLETE" in panel.answer.value
        assert not panel.send_button.disabled and panel.stop_button.disabled and panel.stop_button.description == "Stop"
        assert "entries  0" in repr(shell.run_line_magic("azure_vision", "cache"))  # a stopped answer is not cached
        panel.stop_button.click()  # nothing running: harmless
        complete = _ask(panel, "Tell me everything")
        assert not complete.incomplete and complete.text.startswith(result.text[:20])
    finally:
        slow.stop()


def test_drop_zone_files_and_shortcut_messages(shell, emulator, red_png, tmp_path):
    panel = _panel(shell)
    blue = make_png(tmp_path / "blue.png", (300, 200), (0, 0, 255)).read_bytes()
    panel.drop._handle_custom_msg(
        {"type": "files", "files": [{"name": "red.png"}, {"name": "blue.png"}]},
        [memoryview(red_png.read_bytes()), memoryview(blue)],
    )
    assert [i.source for i in panel.images] == ["red.png", "blue.png"]
    shown = {}
    for detail in ("low", "high"):
        panel.detail.value = detail  # the estimate follows the detail control
        shown[detail] = panel.estimate.value
        per_image = " + ".join(str(i.estimate_tokens(detail)) for i in panel.images)
        assert f"(images: {per_image})" in shown[detail]
    assert "(images: 85 + 85)" in shown["low"] and shown["high"] != shown["low"]
    panel.thumbnails.children[0].children[-1].click()  # remove red.png
    assert [i.source for i in panel.images] == ["blue.png"]
    panel.prompt.value = "Sent with Ctrl+Enter"
    panel.drop._handle_custom_msg({"type": "send"}, [])  # what the browser sends on Ctrl/Cmd+Enter
    assert panel.wait(60)
    assert emulator.chat_requests()[-1]["body"]["messages"][-1]["content"][0]["text"] == "Sent with Ctrl+Enter"
    # the browser sends the text as typed with it: the prompt widget's own update may arrive later (ipywidgets 7)
    panel.prompt.value = "an older value, still on its way"
    panel.drop._handle_custom_msg({"type": "send", "prompt": "Typed just before Ctrl+Enter"}, [])
    assert panel.wait(60)
    assert emulator.chat_requests()[-1]["body"]["messages"][-1]["content"][0]["text"] == "Typed just before Ctrl+Enter"
    assert panel.prompt.value == "Typed just before Ctrl+Enter"
    assert emulator.chat_requests()[-1]["body"]["messages"][-1]["content"][1]["image_url"]["detail"] == "high"


def test_variable_picker_lists_image_variables_only(shell, emulator):
    shell.run_cell(
        "import numpy as np\nfrom PIL import Image\n"
        "arr = np.zeros((8, 8, 3), dtype=np.uint8)\nimg = Image.new('RGB', (5, 5))\nname = 'not an image'\n"
        "vec = np.zeros(5)\n"
    )
    panel = _panel(shell)
    options = set(panel.variable_picker.options)
    assert {"arr", "img"} <= options and not {"name", "vec", "np", "Image"} & options
    del shell.user_ns["arr"]
    panel.variable_picker.value = "arr"
    panel.add_variable_button.click()
    assert "no longer exists" in panel.message.value and "arr" not in panel.variable_picker.options


def test_visionpanel_import_uses_the_session(shell, emulator, red_png):
    from azmm_magic import VisionPanel

    panel = VisionPanel()  # finds the running shell and its AzureVision magics
    assert panel.deployment.value == "vision-test" and panel.detail.value == "auto"
    assert panel.max_tokens.value == 2048 and panel.temperature.value == ""
    panel.source_text.value = str(red_png)
    panel.add_source_button.click()
    _ask(panel, "From the import")
    assert emulator.chat_requests()[-1]["body"]["model"] == "vision-test"
    with pytest.raises(Exception, match="takes no arguments"):
        shell.run_line_magic("azure_vision", "panel extra")


def test_panel_outside_ipython_needs_a_client(emulator, red_png):
    from IPython.core.interactiveshell import InteractiveShell

    from azmm_magic import VisionClient, VisionPanel
    from azmm_magic.core.errors import ConfigError

    InteractiveShell.clear_instance()
    with pytest.raises(ConfigError, match="pass a client"):
        VisionPanel()
    ns: dict = {}
    panel = VisionPanel(client=VisionClient(endpoint=emulator.url, deployment="plain", auth="none"), namespace=ns)
    panel.add_images(Path(red_png).read_bytes(), label="r.png")
    result = _ask(panel, "Without IPython")
    assert result.deployment == "plain" and "Azure OpenAI emulator" in result.text
    panel.variable_name.value = "kept"
    panel.to_variable_button.click()
    assert ns["kept"] is result


def _conversation(shell, name):
    return shell.magics_manager.registry["AzureVision"].conversations.get(name)


def test_panel_and_magic_continue_the_same_conversation(shell, emulator, red_png):
    panel = _panel(shell)
    assert panel.chat.options == ("(none)",) and panel.chat.value == ""
    panel.source_text.value = str(red_png)
    panel.add_source_button.click()
    panel.chat.value = "lesson"
    first = _ask(panel, "What colour is the square?")
    assert [m["role"] for m in emulator.chat_requests()[-1]["body"]["messages"]] == ["user"]
    assert len(_conversation(shell, "lesson")) == 1 and "lesson" in panel.chat.options

    # a cell continuing the conversation sends the panel's turn (with its image) on the wire
    shell.run_cell_magic("azure_vision", "--chat lesson --no-stream", "And its size?")
    messages = emulator.chat_requests()[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"][0]["text"] == "What colour is the square?"
    assert messages[0]["content"][1]["type"] == "image_url" and messages[1]["content"] == first.text
    assert len(_conversation(shell, "lesson")) == 2

    # and the panel's next turn sends the cell's turn, under the chat_turns budget, saying so in the footer
    shell.run_line_magic("config", "AzureVision.chat_turns = 1")
    panel.remove_image(0)
    third = _ask(panel, "Thanks")
    messages = emulator.chat_requests()[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "And its size?"  # a text-only turn is sent as a plain string
    assert "chat 'lesson': sent the last 1 of 2 earlier turns (chat_turns = 1)" in third.notices
    assert "sent the last 1 of 2 earlier turns" in panel.answer.value
    assert [t.prompt for t in _conversation(shell, "lesson").turns] == ["What colour is the square?",
                                                                        "And its size?", "Thanks"]
    assert "chat lesson" in titles_of(panel.history_view)[-1]
    assert "3 turn(s)" in repr(shell.run_line_magic("azure_vision", "chat show lesson"))

    panel.chat.value = "(none)"  # no conversation: no history
    _ask(panel, "Alone")
    assert [m["role"] for m in emulator.chat_requests()[-1]["body"]["messages"]] == ["user"]
    assert len(_conversation(shell, "lesson")) == 3


def test_failed_or_cut_panel_send_records_no_turn(shell, emulator, red_png):
    panel = _panel(shell)
    panel.source_text.value = str(red_png)
    panel.add_source_button.click()
    panel.chat.value = "trial"
    try:
        emulator.set_fault("chat-missing", "404")
        emulator.set_fault("chat-cut", "cut:2")
        panel.deployment.value = "chat-missing"
        panel.prompt.value = "q"
        panel.send_button.click()
        assert panel.wait(60)
        assert "not found" in panel.message.value and len(_conversation(shell, "trial")) == 0
        panel.deployment.value = "chat-cut"
        cut = _ask(panel, "q")
        assert cut.incomplete and len(_conversation(shell, "trial")) == 0
    finally:
        emulator.clear_faults()
    panel.deployment.value = "vision-test"
    _ask(panel, "q")
    assert len(_conversation(shell, "trial")) == 1
    # only the successful turn is sent as history by the next cell
    shell.run_cell_magic("azure_vision", "--chat trial --no-stream", "next")
    assert [m["role"] for m in emulator.chat_requests()[-1]["body"]["messages"]] == ["user", "assistant", "user"]

    panel.chat.value = "bad name"
    panel.send_button.click()
    assert "a conversation name is letters, digits" in panel.message.value


def test_to_new_cell_continues_the_conversation(shell, emulator, red_png):
    panel = _panel(shell)
    panel.source_text.value = str(red_png)
    panel.add_source_button.click()
    panel.chat.value = "notes"
    _ask(panel, "Describe it")
    panel.to_cell_button.click()
    first = panel.cell_source.value.split("\n", 1)[0]
    assert first == f"%%azure_vision -i {red_png} --chat notes" and panel.to_cell_source() == panel.cell_source.value
    assert "next turn of chat" in panel.cell_note.value
    n = len(emulator.chat_requests())
    assert shell.run_cell(panel.cell_source.value).success
    # a new turn (not a cache hit): the panel's turn and its image went as history
    assert len(emulator.chat_requests()) == n + 1 and len(_conversation(shell, "notes")) == 2
    messages = emulator.chat_requests()[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"][0]["text"] == "Describe it" and messages[0]["content"][1]["type"] == "image_url"
