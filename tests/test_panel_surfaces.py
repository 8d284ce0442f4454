"""The panel's rough edges from issue 12, without a browser (the layout ones are in test_browser.py): the upload
button's count, the variable picker offering only what can be sent, errors and captions naming the variable, the
deployment box following the session, plural wording, thumbnails shown once."""

from __future__ import annotations

import re

from azmm_magic.frontends.panel.compat import shown_count, titles_of
from tests.conftest import choose_files, make_png, uploaded_bytes


def _panel(shell):
    return shell.run_line_magic("azure_vision", "panel")


def _ask(panel, prompt: str):
    panel.prompt.value = prompt
    panel.send_button.click()
    assert panel.wait(60)
    assert panel.message.value == "", panel.message.value
    return panel.result


def test_choose_files_count_follows_the_uploads(shell, emulator, red_png, tmp_path):
    panel = _panel(shell)
    assert shown_count(panel.upload) == 0  # "Choose files (0)"
    blue = make_png(tmp_path / "blue.png", (30, 20), (0, 0, 255)).read_bytes()
    choose_files(panel.upload, ("red.png", red_png.read_bytes()), ("blue.png", blue))
    assert shown_count(panel.upload) == 2 and [i.source for i in panel.images] == ["red.png", "blue.png"]
    panel.drop._handle_custom_msg({"type": "files", "files": [{"name": "dropped.png"}]}, [memoryview(blue)])
    assert shown_count(panel.upload) == 3 and len(panel.images) == 3  # a dropped file is an upload too
    # choosing the same file again adds it again (the value is a count, not the last selection)
    choose_files(panel.upload, ("red.png", red_png.read_bytes()))
    assert shown_count(panel.upload) == 4 and [i.source for i in panel.images].count("red.png") == 2
    panel.source_text.value = str(red_png)  # a path is not an upload: not counted
    panel.add_source_button.click()
    assert len(panel.images) == 5 and shown_count(panel.upload) == 4
    panel.remove_image(0)
    assert shown_count(panel.upload) == 3 and [i.source for i in panel.images][:3] == ["blue.png", "dropped.png", "red.png"]
    assert not uploaded_bytes(panel.upload)  # the bytes are not sent back to the page
    bad = b"not an image"
    choose_files(panel.upload, ("notes.png", bad))
    assert "notes.png" in panel.message.value and shown_count(panel.upload) == 3


def test_variable_picker_offers_only_what_can_be_sent(shell, emulator):
    shell.run_cell(
        "import numpy as np\nimport matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "from PIL import Image\n"
        "ok_u8 = np.zeros((8, 8, 3), dtype=np.uint8)\nok_float = np.full((8, 8), 0.5)\n"
        "counts = np.zeros((20, 30), dtype=np.int64)\nhot = np.full((4, 4), 3.0)\nfive = np.zeros((4, 4, 5), np.uint8)\n"
        "pic = Image.new('RGB', (5, 5))\nblob = b'not an image'\n"
        "fig = plt.figure()\n"
    )
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 3)).save(buffer, "PNG")
    shell.user_ns["png_bytes"] = buffer.getvalue()
    panel = _panel(shell)
    assert set(panel.variable_picker.options) == {"ok_u8", "ok_float", "pic", "fig", "png_bytes"}
    note = re.sub(r"<[^>]+>", "", panel.sources.variable_note.value)
    assert note.startswith("not offered: ")
    assert "blob (bytes that are not an image file)" in note and "counts (int64 array: convert with .astype(np.uint8))" in note
    assert note.endswith(" and 2 more")  # hot and plt (three are named)
    from azmm_magic.frontends.panel.sources import not_sendable

    assert not_sendable(shell.user_ns["plt"]).startswith("the pyplot module")
    assert not_sendable(shell.user_ns["hot"]) == "float values in [3, 3]: scale to [0, 1]"
    assert "not an image" in not_sendable(shell.user_ns["five"])

    # the picker follows the notebook: a cell defining an image variable adds it (the selection stays)
    panel.variable_picker.value = "pic"
    shell.run_cell("later = np.zeros((6, 6), dtype=np.uint8)\ndel blob")
    assert "later" in panel.variable_picker.options and panel.variable_picker.value == "pic"
    assert "blob" not in panel.sources.variable_note.value


def test_errors_and_captions_name_the_variable(shell, emulator):
    shell.run_cell("import numpy as np\narr = np.zeros((200, 300), dtype=np.uint8)\n")
    panel = _panel(shell)
    panel.variable_picker.value = "arr"
    panel.add_variable_button.click()
    assert panel.images[0].source == "arr" and "arr · 300×200" in panel.thumbnails.children[0].children[0].value
    assert "&lt;numpy" not in panel.thumbnails.children[0].children[0].value
    shell.user_ns["arr"] = shell.user_ns["np"].zeros((200, 300), dtype="int64")  # changed without running a cell
    panel.add_variable_button.click()
    message = panel.message.value
    assert "variable &#x27;arr&#x27;: dtype int64 is not accepted" in message and "&lt;numpy" not in message
    shell.user_ns["arr"] = shell.user_ns["np"].zeros((4, 4, 5), dtype="uint8")
    panel.add_variable_button.click()
    assert "variable &#x27;arr&#x27;: numpy array of shape (4, 4, 5) is not an image" in panel.message.value
    assert len(panel.images) == 1
    # the answer's caption names it too
    result = _ask(panel, "What is it?")
    assert result.images[0].source == "arr"


def test_deployment_box_follows_the_session(shell, emulator, red_png):
    panel = _panel(shell)
    assert panel.deployment.value == "vision-test"
    shell.run_cell("%config AzureVision.deployment = 'gpt-4o-mini'")
    assert panel.deployment.value == "gpt-4o-mini"
    # the emulator sets its deployment; stopping it and configuring another one: the box follows
    shell.run_cell("%config AzureVision.deployment = ''")
    shell.run_cell("%azure_vision emulator")
    assert panel.deployment.value == "emulator"
    shell.run_cell("%azure_vision emulator stop")
    shell.run_cell(f"%config AzureVision.endpoint = '{emulator.url}'\n%config AzureVision.deployment = 'vision'")
    assert panel.deployment.value == "vision"
    panel.source_text.value = str(red_png)
    panel.add_source_button.click()
    assert _ask(panel, "Which deployment?").deployment == "vision"
    # a setting changed without a cell run (e.g. from a thread) is picked up by Send
    shell.magics_manager.registry["AzureVision"].deployment = "other"
    assert _ask(panel, "And now?").deployment == "other" and panel.deployment.value == "other"
    # a deployment typed in the box wins over the setting, and stays
    panel.deployment.value = "typed"
    shell.run_cell("%config AzureVision.deployment = 'vision-test'")
    assert panel.deployment.value == "typed"
    panel.deployment.value = ""  # emptied: the setting applies again
    assert _ask(panel, "Empty box").deployment == "vision-test"


def test_plural_wording(shell, emulator, red_png, tmp_path):
    panel = _panel(shell)
    panel.source_text.value = str(red_png)
    panel.add_source_button.click()
    panel.chat.value = "talk"
    _ask(panel, "One image")
    assert titles_of(panel.history_view)[0] == "1. One image (1 image · chat talk)"
    assert "plus 1 earlier turn of chat &#x27;talk&#x27;" in panel.estimate.value
    panel.add_images(str(make_png(tmp_path / "blue.png", (30, 20), (0, 0, 255))))
    _ask(panel, "Two images")
    assert titles_of(panel.history_view)[1] == "2. Two images (2 images · chat talk)"
    assert "plus 2 earlier turns of chat" in panel.estimate.value
    assert "(s)" not in "".join(titles_of(panel.history_view)) + panel.estimate.value


def test_thumbnails_shown_once(shell, emulator, red_png, tmp_path):
    panel = _panel(shell)
    panel.source_text.value = str(red_png)
    panel.add_source_button.click()
    blue = make_png(tmp_path / "blue.png", (30, 20), (0, 0, 255))
    panel.add_images(str(blue))
    _ask(panel, "First")
    # the images are in the image row above: the answer does not repeat them
    assert "<img" not in panel.answer.value and "Azure OpenAI emulator" in panel.answer.value
    assert "azmm-footer" in panel.answer.value
    panel.detail.value = "low"  # the same images, prepared for another detail: still the row's
    assert "<img" not in panel.answer.value
    # the row changes: the answer now shows the images it is about
    panel.remove_image(1)
    assert panel.answer.value.count("<img") == 2
    _ask(panel, "Second")  # about the red one only, which the row shows
    assert "<img" not in panel.answer.value
    panel.history_view.children[0].children[-1].click()  # "show above" the first answer (two images)
    assert panel.answer.value.count("<img") == 2 and "First" in panel.to_cell_source()
    panel.add_images(str(blue))  # the row is the first answer's images again
    assert "<img" not in panel.answer.value
