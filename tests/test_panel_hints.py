"""The panel words the fix for an error from the error's data (``settings``, ``remedy``) for its own controls,
and shows it after the core's message, which it never rewrites. Also: the drop zone's JS/CSS are files in the
package."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from azmm_magic.core.errors import (
    AuthError,
    ConfigError,
    DeploymentNotFoundError,
    ImageInputError,
    IncompleteAnswerError,
    ServiceError,
    ServiceTimeoutError,
)
from azmm_magic.frontends.panel import DropZone, VisionPanel, panel_hint, panel_message


def _plain(html_text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", html_text)).strip()


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (ServiceError("The service failed.", remedy="retry"), "Press Send again."),
        (DeploymentNotFoundError("Deployment 'x' was not found.", settings=("deployment",)),
         "Choose a deployment in the deployment box."),
        (ConfigError("Bad detail.", settings=("detail",)), "Pick another value in the detail box."),
        (ConfigError("Too long.", settings=("max_tokens",)), "Change the max tokens box."),
        (ConfigError("Too hot.", settings=("temperature",)),
         "Change the temperature box (empty for the service's default)."),
        (ServiceTimeoutError("No answer in 5 s.", settings=("timeout",), remedy="retry"),
         "Press Send again, or change the timeout setting in a cell (%config AzureVision.timeout = ...)."),
        (AuthError("Access denied.", settings=("api_key",), remedy="credentials"),
         "Set AZURE_OPENAI_API_KEY or run %azure_vision login in a cell."),
        (ConfigError("No endpoint is set.", settings=("endpoint",), remedy="emulator"),
         "Change the endpoint setting in a cell (%config AzureVision.endpoint = ...), or run %azure_vision emulator "
         "in a cell to use the local emulator."),
        (ServiceError("No recorded answer.", settings=("cache",), remedy="record"),
         "Change the cache setting in a cell (%config AzureVision.cache = ...), or import the recorded answers in a "
         "cell with %azure_vision cache import FILE, or leave replay mode there with "
         "%config AzureVision.cache = 'sqlite'."),
        (ConfigError("Endpoint and style disagree.", settings=("endpoint", "api_style")),
         "Change the endpoint and api_style settings in a cell (%config AzureVision.endpoint = ..., "
         "%config AzureVision.api_style = ...)."),
        (ImageInputError("image file not found: a.png"), ""),
        (ValueError("not ours"), ""),
    ],
)
def test_panel_hint_words_the_fix_for_the_panel(error, hint):
    assert panel_hint(error) == hint


def test_panel_message_is_the_core_message_then_the_hint():
    error = DeploymentNotFoundError("Deployment 'x' was not found at localhost", settings=("deployment",),
                                    remedy="retry")
    assert panel_message(error) == ("Deployment 'x' was not found at localhost. Press Send again, or choose a "
                                    "deployment in the deployment box.")
    assert panel_message(ConfigError("The prompt is empty.")) == "The prompt is empty."
    assert panel_message(KeyError("k")) == "Unexpected error: KeyError: 'k'"
    # the core's words are shown as they are: no rewording of the message itself
    old = ServiceError("The service failed; re-run the cell.", remedy="retry")
    assert panel_message(old) == "The service failed; re-run the cell. Press Send again."


def _panel(emulator, red_png) -> VisionPanel:
    from azmm_magic import VisionClient

    client = VisionClient(endpoint=emulator.url, deployment="plain", auth="none")
    panel = VisionPanel(client=client, namespace={})
    panel.add_images(Path(red_png).read_bytes(), label="r.png")
    return panel


def test_panel_shows_the_error_and_its_hint_then_recovers(emulator, red_png, monkeypatch):
    panel = _panel(emulator, red_png)
    from azmm_magic.features.pipeline import Pipeline

    def failing(self, request, *args, **kwargs):
        raise ServiceTimeoutError("No answer from localhost within 5 s.", settings=("timeout",), remedy="retry")

    monkeypatch.setattr(Pipeline, "stream", failing)  # the panel streams through the client's pipeline
    panel.prompt.value = "q"
    panel.send_button.click()
    assert panel.wait(60)
    assert _plain(panel.message.value) == ("No answer from localhost within 5 s. Press Send again, or change the "
                                           "timeout setting in a cell (%config AzureVision.timeout = ...).")
    assert panel.answer.value == "" and panel.history == [] and not panel.send_button.disabled
    monkeypatch.undo()
    panel.send_button.click()
    assert panel.wait(60)
    assert panel.message.value == "" and "Azure OpenAI emulator" in panel.result.text


def test_cut_stream_shows_the_partial_answer_and_the_hint(emulator, red_png, monkeypatch):
    panel = _panel(emulator, red_png)
    from azmm_magic.features.pipeline import Pipeline

    def cut(self, request, *args, **kwargs):
        yield "The square is "
        raise IncompleteAnswerError("The answer stream was cut off.", partial_text="The square is ", remedy="retry")

    monkeypatch.setattr(Pipeline, "stream", cut)
    panel.prompt.value = "q"
    panel.send_button.click()
    assert panel.wait(60)
    assert _plain(panel.message.value) == "The answer stream was cut off. Press Send again."
    assert panel.result.incomplete and panel.result.text == "The square is " and len(panel.history) == 1
    assert "INCOMPLETE" in panel.answer.value


def test_drop_zone_js_and_css_are_package_files():
    import azmm_magic.frontends.panel

    package = Path(azmm_magic.frontends.panel.__file__).parent  # hatch ships every file of the package folder
    js, css, look = (package / name for name in ("dropzone.js", "dropzone.css", "panel.css"))
    assert DropZone._esm == js.read_text(encoding="utf-8") and "export default { initialize, render }" in DropZone._esm
    assert DropZone._css == css.read_text(encoding="utf-8") + look.read_text(encoding="utf-8")
    # the classes the panel's HTML uses are styled there
    for name in (".azmm-drop-zone", ".azmm-note", ".azmm-answer-frame", ".azmm-chosen", ".azmm-chosen-caption"):
        assert name in DropZone._css
