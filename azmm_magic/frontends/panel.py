"""`VisionPanel`: ask about images without writing code (ipywidgets).

``%azure_vision panel`` (or ``from azmm_magic import VisionPanel; VisionPanel()``) shows a panel with image inputs
(upload button, a drop zone, a path/glob/URL box, a picker of image variables), thumbnails with remove buttons,
a prompt, the request options, a live token estimate, Send / Stop, the answer streamed as Markdown with the same
footer as the magic, a history of this panel's exchanges, and "to variable" / "to new cell".

The panel is a frontend like the magic: it uses the session's client, cache and settings (``magics.client()``,
``magics.session_settings()``), so a question asked in the panel and then in a ``%%azure_vision`` cell with the
same prompt, images and options is a cache hit. Requests run in a worker thread so the kernel stays responsive
and Stop can end a stream between two chunks (the HTTP stream is closed; a stopped answer is never cached).
"""

from __future__ import annotations

import hashlib
import html
import keyword
import re
import shlex
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets as w
import traitlets

from azmm_magic.features.chat import Conversations, PendingTurn, start_turn
from azmm_magic.core.errors import AzureVisionError, ConfigError, IncompleteAnswerError

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.features.client import VisionClient, VisionRequest
    from azmm_magic.core.images import PreparedImage
    from azmm_magic.core.result import VisionResult

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
UPLOAD_DIR = "panel_uploads"
NO_CHAT = "(none)"
_REDRAW_INTERVAL = 0.12  # seconds between redraws of a streaming answer

_BORDER = "1px solid rgba(128,128,128,0.35)"
_NOTE = "font-size: 0.85em; opacity: 0.72;"


# ----- the drop zone (drag and drop files, and Ctrl/Cmd+Enter in the prompt) -------------------------------------
_DROP_ESM = r"""
function render({ model, el }) {
  el.classList.add("azmm-drop");
  const zone = document.createElement("div");
  zone.className = "azmm-drop-zone";
  zone.setAttribute("role", "button");
  zone.tabIndex = 0;
  zone.textContent = model.get("label");
  const input = document.createElement("input");
  input.type = "file";
  input.multiple = true;
  input.accept = "image/*";
  input.className = "azmm-drop-input";
  input.style.display = "none";
  async function sendFiles(files) {
    const list = Array.from(files || []);
    if (!list.length) return;
    const buffers = await Promise.all(list.map((f) => f.arrayBuffer()));
    const meta = list.map((f) => ({ name: f.name, type: f.type, size: f.size }));
    model.send({ type: "files", files: meta }, undefined, buffers);
  }
  zone.addEventListener("click", () => { input.value = ""; input.click(); });
  input.addEventListener("change", () => sendFiles(input.files));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); e.stopPropagation(); zone.classList.add("azmm-over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("azmm-over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    e.stopPropagation();
    zone.classList.remove("azmm-over");
    sendFiles(e.dataTransfer && e.dataTransfer.files);
  });
  // Ctrl/Cmd+Enter in this panel's prompt sends (caught before JupyterLab's own Ctrl+Enter, "run cell").
  const onKey = (e) => {
    if (e.key !== "Enter" || !(e.ctrlKey || e.metaKey)) return;
    const target = e.target;
    const prompt = target && target.closest ? target.closest(".azmm-prompt") : null;
    const panel = el.closest(".azmm-panel");
    if (!prompt || !panel || !panel.contains(prompt)) return;
    e.preventDefault();
    e.stopPropagation();
    e.stopImmediatePropagation();
    model.send({ type: "send" });
  };
  window.addEventListener("keydown", onKey, true);
  el.append(zone, input);
  return () => window.removeEventListener("keydown", onKey, true);
}
export default { render };
"""

_DROP_CSS = """
.azmm-drop-zone {
  box-sizing: border-box; min-height: 28px; padding: 4px 14px; border: 1.5px dashed rgba(128,128,128,0.55);
  border-radius: 4px; display: flex; align-items: center; justify-content: center; cursor: pointer;
  font-size: var(--jp-ui-font-size1, 13px); color: inherit; opacity: 0.85; user-select: none; white-space: nowrap;
}
.azmm-panel .widget-hbox { gap: 6px; }
.azmm-panel .azmm-thumbs { gap: 10px; }
.azmm-panel > .widget-vbox, .azmm-panel { gap: 6px; }
.azmm-drop-zone:hover, .azmm-drop-zone.azmm-over { border-color: var(--jp-brand-color1, #1976d2); opacity: 1;
  background: rgba(25,118,210,0.08); }
"""


class DropZone(anywidget.AnyWidget):
    """A box that accepts dropped image files (and opens a file chooser when clicked).

    It also turns Ctrl/Cmd+Enter inside the panel's prompt into a ``send`` message. Dropped files arrive as a
    ``{"type": "files", "files": [{name, type, size}, ...]}`` message with one buffer per file.
    """

    _esm = _DROP_ESM
    _css = _DROP_CSS
    label = traitlets.Unicode("Drop images here").tag(sync=True)


# ----- one chosen image --------------------------------------------------------------------------------------------
@dataclass(eq=False)
class _Entry:
    """An image chosen in the panel: what to prepare, and how a ``%%azure_vision`` cell would name it."""

    label: str
    source: Any  # a path or URL string, bytes (an upload), or an image object from a variable
    cell_ref: str | None  # the -i value for the equivalent cell; None for an upload (saved on "to new cell")
    upload_name: str | None = None
    prepared: dict[tuple[str, str], PreparedImage] = field(default_factory=dict)


@dataclass(frozen=True)
class PanelExchange:
    """One question asked in the panel: the prompt, the options, the result and the equivalent cell."""

    prompt: str
    options: Mapping[str, Any]
    result: VisionResult
    cell_source: str


def panel_wording(text: str) -> str:
    """The core's messages speak of cells; in the panel the same advice is to send again."""
    text = re.sub(r"\bre-run the cell\b", "press Send again", text)
    text = re.sub(r"\bRe-run to retry\b", "Press Send to retry", text)
    return re.sub(r"\bWait and re-run\b", "Wait and press Send again", text)


class VisionPanel(w.VBox):
    """Ask an Azure OpenAI vision deployment about images without writing code.

    ``VisionPanel()`` in a notebook uses the session of ``%load_ext azmm_magic`` (loading it if needed): the same
    settings, client and answer cache as ``%%azure_vision``. Pass ``client=`` (a :class:`VisionClient`) and
    ``namespace=`` to use it outside IPython.

    Parts (attributes, useful in scripts and tests): ``upload`` (FileUpload), ``drop`` (drop zone), ``source_text``
    + ``add_source_button`` (path, glob or URL), ``variable_picker`` + ``add_variable_button`` (image variables),
    ``thumbnails``, ``prompt``, ``deployment``, ``detail``, ``max_tokens``, ``temperature``, ``chat`` (a
    conversation name, as ``--chat NAME``; empty or "(none)" for none), ``estimate``,
    ``send_button``, ``stop_button``, ``message``, ``answer``, ``variable_name`` + ``to_variable_button``,
    ``to_cell_button`` + ``cell_source``, ``history_view``. State: ``images`` (prepared images for the current
    detail), ``result`` (the answer shown), ``history`` (list of :class:`PanelExchange`), ``busy``,
    ``conversations`` (the session's, shared with ``--chat``; pass ``conversations=`` outside IPython).
    Methods: :meth:`ask`, :meth:`stop`, :meth:`wait`, :meth:`add_images`, :meth:`remove_image`.
    """

    def __init__(
        self,
        magics: Any = None,
        *,
        client: VisionClient | None = None,
        namespace: MutableMapping[str, Any] | None = None,
        shell: Any = None,
        conversations: Conversations | None = None,
    ) -> None:
        if magics is None and client is None:
            magics, shell = _session_magics(shell)
        self._magics = magics
        self._fixed_client = client
        self._shell = shell if shell is not None else getattr(magics, "shell", None)
        if namespace is None:
            namespace = self._shell.user_ns if self._shell is not None else {}
        self._ns: MutableMapping[str, Any] = namespace
        if conversations is None:
            conversations = getattr(magics, "conversations", None)
        self.conversations: Conversations = conversations if conversations is not None else Conversations()
        self._entries: list[_Entry] = []
        self.history: list[PanelExchange] = []
        self.result: VisionResult | None = None
        self._current: PanelExchange | None = None
        self._worker: threading.Thread | None = None
        self._stop_flag = threading.Event()
        self._ui_lock = threading.RLock()
        settings = self._client().settings

        # image inputs
        self.upload = w.FileUpload(accept="image/*", multiple=True, description="Choose files", icon="upload",
                                   layout=w.Layout(width="auto", flex="0 0 auto"))
        self.upload.add_class("azmm-upload")
        self.drop = DropZone(layout=w.Layout(width="auto", flex="0 0 auto"))
        self.source_text = w.Text(placeholder="path, glob (photos/*.jpg) or https:// URL",
                                  layout=w.Layout(flex="1 1 220px", width="auto", min_width="160px"))
        self.source_text.add_class("azmm-source")
        self.add_source_button = w.Button(description="Add", tooltip="Add the images at this path, glob or URL",
                                          layout=w.Layout(width="auto"))
        self.variable_picker = w.Dropdown(options=[], layout=w.Layout(width="auto", min_width="150px"),
                                          tooltip="Image variables in this notebook")
        self.variable_picker.add_class("azmm-variables")
        self.refresh_variables_button = w.Button(icon="refresh", tooltip="Look for image variables again",
                                                 layout=w.Layout(width="36px"))
        self.add_variable_button = w.Button(description="Add variable", layout=w.Layout(width="auto"))
        self.thumbnails = w.HBox(layout=w.Layout(flex_flow="row wrap", align_items="flex-start"))
        self.thumbnails.add_class("azmm-thumbs")

        # prompt and options
        self.prompt = w.Textarea(placeholder="Ask about the images…  (Ctrl/Cmd+Enter sends)",
                                 layout=w.Layout(width="100%", height="5.5em"))
        self.prompt.add_class("azmm-prompt")
        small = {"style": {"description_width": "initial"}}
        self.deployment = w.Text(value=settings.deployment or "", description="deployment",
                                 placeholder="(setting)", layout=w.Layout(width="210px"), **small)
        self.detail = w.Dropdown(options=["auto", "low", "high"], value=settings.detail, description="detail",
                                 layout=w.Layout(width="120px"), **small)
        self.max_tokens = w.BoundedIntText(value=settings.max_tokens, min=1, max=1_000_000, description="max tokens",
                                           layout=w.Layout(width="155px"), **small)
        self.temperature = w.Text(value="" if settings.temperature is None else f"{settings.temperature:g}",
                                  description="temperature", placeholder="default", layout=w.Layout(width="175px"),
                                  **small)
        self.chat = w.Combobox(value="", options=[NO_CHAT], ensure_option=False, description="chat",
                               placeholder=NO_CHAT, layout=w.Layout(width="190px"),
                               tooltip="Continue a conversation (like --chat NAME): pick one or type a new name",
                               **small)
        self.chat.add_class("azmm-chat")
        self.estimate = w.HTML()
        self.estimate.add_class("azmm-estimate")
        self.send_button = w.Button(description="Send", button_style="primary", icon="paper-plane",
                                    tooltip="Send (Ctrl/Cmd+Enter in the prompt)",
                                    layout=w.Layout(width="96px"))
        self.send_button.add_class("azmm-send")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True, tooltip="Stop the answer",
                                    layout=w.Layout(width="96px"))
        self.stop_button.add_class("azmm-stop")
        self.message = w.HTML()
        self.message.add_class("azmm-message")
        self.answer = w.HTML()
        self.answer.add_class("azmm-answer-box")

        # keeping the answer
        self.variable_name = w.Text(placeholder="variable name", layout=w.Layout(width="160px"))
        self.to_variable_button = w.Button(description="to variable", disabled=True, icon="download",
                                           tooltip="Store the VisionResult in a variable of this notebook")
        self.to_cell_button = w.Button(description="to new cell", disabled=True, icon="plus",
                                       tooltip="The equivalent %%azure_vision cell")
        self.cell_source = w.Textarea(layout=w.Layout(width="100%", height="4.5em", display="none"))
        self.cell_source.add_class("azmm-cell-source")
        self.cell_note = w.HTML()
        self.history_view = w.Accordion(children=[], layout=w.Layout(width="100%"))
        self.history_view.add_class("azmm-history")

        self.upload.observe(self._on_upload, names="value")
        self.drop.on_msg(self._on_drop_msg)
        self.add_source_button.on_click(lambda _: self._guard(self._add_source))
        self.add_variable_button.on_click(lambda _: self._guard(self._add_variable))
        self.refresh_variables_button.on_click(lambda _: (self.refresh_variables(), self.refresh_conversations()))
        self.send_button.on_click(lambda _: self.ask())
        self.stop_button.on_click(lambda _: self.stop())
        self.to_variable_button.on_click(lambda _: self._guard(self._to_variable))
        self.to_cell_button.on_click(lambda _: self._guard(self._to_new_cell))
        for control in (self.prompt, self.detail, self.chat):
            control.observe(lambda _: self._update_estimate(), names="value")

        row = {"align_items": "center", "flex_flow": "row wrap"}
        title = w.HTML("<b>Ask about images</b> <span style='opacity:0.65'>· azmm_magic</span>")
        super().__init__(
            children=[
                title,
                w.HBox([self.upload, self.drop, self.source_text, self.add_source_button], layout=w.Layout(**row)),
                w.HBox([w.Label("or a variable:"), self.variable_picker, self.refresh_variables_button,
                        self.add_variable_button], layout=w.Layout(**row)),
                self.thumbnails,
                self.prompt,
                w.HBox([self.deployment, self.detail, self.max_tokens, self.temperature, self.chat],
                       layout=w.Layout(**row)),
                w.HBox([self.send_button, self.stop_button, self.estimate], layout=w.Layout(**row)),
                self.message,
                self.answer,
                w.HBox([self.variable_name, self.to_variable_button, self.to_cell_button], layout=w.Layout(**row)),
                self.cell_note,
                self.cell_source,
                self.history_view,
            ],
            layout=w.Layout(border=_BORDER, padding="8px 12px", width="auto", max_width="980px"),
        )
        self.add_class("azmm-panel")
        self.refresh_variables()
        self.refresh_conversations()
        self._update_estimate()

    # ----- session --------------------------------------------------------------------------------------------
    def _client(self) -> VisionClient:
        """The session's client for the current settings (re-resolved each time, so ``%config`` changes apply)."""
        if self._fixed_client is not None:
            return self._fixed_client
        return self._magics.client()

    @property
    def busy(self) -> bool:
        """True while a request runs."""
        return self._worker is not None and self._worker.is_alive()

    @property
    def images(self) -> list[PreparedImage]:
        """The chosen images, prepared for the current detail (what Send will send)."""
        return [self._prepared(e) for e in self._entries]

    # ----- adding and removing images ---------------------------------------------------------------------------
    def add_images(self, source: Any, *, label: str | None = None, cell_ref: str | None = None) -> int:
        """Add images: a path, glob or URL string, an image object, or ``bytes`` (named by ``label``).

        Returns how many images were added. Raises :class:`AzureVisionError` with a clear message for bad input.
        """
        from azmm_magic.core.images import looks_like_image, prepare_images

        s = self._client().settings
        detail = self.detail.value
        opts = {"detail": detail, "rule": s.token_rule, "inline_urls": s.inline_urls, "max_bytes": s.max_image_bytes}
        prepared = prepare_images(source, max_images=s.max_images, **opts)
        if len(self._entries) + len(prepared) > s.max_images:
            raise ConfigError(
                f"At most {s.max_images} images per request (the image limit setting); remove some first."
            )
        new: list[_Entry] = []
        if isinstance(source, (bytes, bytearray, memoryview)):
            name = label or prepared[0].source
            image = replace(prepared[0], source=name)
            new.append(_Entry(name, bytes(source), None, upload_name=name, prepared={(detail, s.token_rule): image}))
        elif isinstance(source, str) and not looks_like_image(source):
            for image in prepared:  # a glob becomes one entry per file
                ref = image.url or image.source
                new.append(_Entry(image.source, ref, shlex.quote(ref), prepared={(detail, s.token_rule): image}))
        else:
            image = prepared[0] if len(prepared) == 1 else None
            if image is None:
                raise ConfigError("Add one image at a time from a variable (this one holds several).")
            name = label or image.source
            new.append(_Entry(name, source, cell_ref, prepared={(detail, s.token_rule): image}))
        self._entries.extend(new)
        self._redraw_thumbnails()
        self._update_estimate()
        return len(new)

    def remove_image(self, index: int) -> None:
        """Remove the chosen image at ``index``."""
        del self._entries[index]
        self._redraw_thumbnails()
        self._update_estimate()

    def refresh_variables(self) -> None:
        """List the image variables of the notebook (PIL images, arrays, figures, bytes) in the picker."""
        from azmm_magic.core.images import looks_like_image

        names = sorted(
            name for name, value in list(self._ns.items())
            if not name.startswith("_") and not isinstance(value, type) and _safe_looks_like_image(looks_like_image, value)
        )
        self.variable_picker.options = names
        self.variable_picker.value = names[0] if names else None
        self.add_variable_button.disabled = not names

    def refresh_conversations(self) -> None:
        """List the session's conversations in the ``chat`` box (the value typed or chosen stays)."""
        self.chat.options = [NO_CHAT, *self.conversations.names()]

    def _chat_name(self) -> str | None:
        name = self.chat.value.strip()
        return None if name in ("", NO_CHAT) else name

    def _on_upload(self, change: Mapping[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        self._guard(lambda: self._add_files([(f["name"], bytes(f["content"])) for f in files]))
        self.upload.value = ()  # so choosing the same file again adds it again

    def _on_drop_msg(self, _widget: Any, content: Mapping[str, Any], buffers: list[Any]) -> None:
        kind = content.get("type")
        if kind == "send":
            self.ask()
        elif kind == "files":
            meta = content.get("files") or []
            self._guard(lambda: self._add_files([(m.get("name") or "upload", bytes(b)) for m, b in zip(meta, buffers)]))

    def _add_files(self, files: list[tuple[str, bytes]]) -> None:
        problems = []
        for name, data in files:  # a bad file never loses the others
            try:
                self.add_images(data, label=name)
            except AzureVisionError as e:
                problems.append(f"{name}: {e}")
        if problems:
            raise ConfigError("; ".join(problems))

    def _add_source(self) -> None:
        text = self.source_text.value.strip()
        if not text:
            raise ConfigError("Type a path, a glob such as photos/*.jpg, or an https:// URL, then press Add.")
        self.add_images(text)
        self.source_text.value = ""

    def _add_variable(self) -> None:
        name = self.variable_picker.value
        if not name:
            raise ConfigError("No image variable is selected; define one (a PIL image, array or figure) and refresh.")
        if name not in self._ns:
            self.refresh_variables()
            raise ConfigError(f"The variable {name!r} no longer exists; the list was refreshed.")
        self.add_images(self._ns[name], label=name, cell_ref="{" + name + "}")

    def _prepared(self, entry: _Entry) -> PreparedImage:
        from azmm_magic.core.images import prepare_images

        s = self._client().settings
        key = (self.detail.value, s.token_rule)
        image = entry.prepared.get(key)
        if image is None:
            image = prepare_images(entry.source, detail=key[0], rule=key[1], inline_urls=s.inline_urls,
                                   max_bytes=s.max_image_bytes, max_images=1)[0]
            if entry.upload_name:
                image = replace(image, source=entry.upload_name)
            entry.prepared[key] = image
        return image

    def _redraw_thumbnails(self) -> None:
        items = []
        for entry in self._entries:
            try:
                pic = _chooser_thumb(self._prepared(entry))
            except AzureVisionError as e:
                pic = f"<div style='{_NOTE} width: {_THUMB_W}px'>{html.escape(entry.label)}: {html.escape(str(e))}</div>"
            remove = w.Button(description="remove", icon="times", tooltip=f"Remove {entry.label}",
                              layout=w.Layout(width=f"{_THUMB_W}px", height="24px", margin="0"))
            remove.add_class("azmm-remove")
            remove.on_click(lambda _b, e=entry: self._remove_entry(e))
            box = w.VBox([w.HTML(pic, layout=w.Layout(margin="0")), remove],
                         layout=w.Layout(align_items="center", width="auto"))
            box.add_class("azmm-thumb")
            items.append(box)
        self.thumbnails.children = items

    def _remove_entry(self, entry: _Entry) -> None:
        if entry in self._entries:
            self.remove_image(self._entries.index(entry))

    # ----- estimate ----------------------------------------------------------------------------------------------
    def _update_estimate(self) -> None:
        from azmm_magic.features.client import VisionRequest

        try:
            s = self._client().settings
            images = self.images
            request = VisionRequest(prompt=self.prompt.value, images=tuple(images), detail=self.detail.value,
                                    system=s.system_prompt)
            total = request.estimate_prompt_tokens(s.token_rule)
            per = " + ".join(str(i.estimate_tokens(self.detail.value, s.token_rule)) for i in images)
            per = f" (images: {per})" if per else ""
            text = (f"≈ {total:,} input tokens{per} · up to {self.max_tokens.value:,} output tokens "
                    f"· rule {s.token_rule}")
            name = self._chat_name()
            if name is not None and name in self.conversations and len(self.conversations.get(name)):
                earlier = min(len(self.conversations.get(name)), s.chat_turns)
                text += f" · plus {earlier} earlier turn(s) of chat '{name}'" if earlier else ""
        except AzureVisionError as e:
            text = f"no estimate: {e}"
        self.estimate.value = f"<span style='{_NOTE}'>{html.escape(text)}</span>"

    # ----- asking -------------------------------------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        temperature_text = self.temperature.value.strip()
        temperature: float | None = None
        if temperature_text:
            try:
                temperature = float(temperature_text)
            except ValueError:
                raise ConfigError(
                    f"temperature {temperature_text!r} is not a number; use e.g. 0.2, or leave it empty for the default."
                ) from None
        return {
            "deployment": self.deployment.value.strip() or None,
            "detail": self.detail.value,
            "max_tokens": int(self.max_tokens.value),
            "temperature": temperature,
        }

    def ask(self) -> None:
        """What Send does: prepare the request, answer from the cache or start a worker that streams the answer."""
        if self.busy:
            return
        self._show_message("")
        try:
            request, client, turn = self._build_request()
        except AzureVisionError as e:
            self._show_message(str(e))
            return
        entries = (list(self._entries), self.prompt.value.strip(), turn)
        hit = client.cached(request)
        if hit is not None:
            self._finish(request, hit, entries)
            return
        self._stop_flag.clear()
        self._set_busy(True)
        self.answer.value = self._live_html(request, "")
        self._worker = threading.Thread(target=self._run, args=(client, request, entries), name="azmm-panel",
                                        daemon=True)
        self._worker.start()

    def _build_request(self) -> tuple[VisionRequest, VisionClient, PendingTurn]:
        from azmm_magic.frontends.command import interpolate

        prompt = interpolate(self.prompt.value, self._ns).strip()
        if not prompt:
            raise ConfigError("The prompt is empty: type a question about the images, then press Send.")
        options = self._options()
        client = self._client()
        turn = start_turn(self.conversations, self._chat_name(), client.settings)
        request = client.prepare(prompt, self.images, history=turn.history, **options)
        return request, client, turn

    def _run(self, client: VisionClient, request: VisionRequest,
             entries: tuple[list[_Entry], str, PendingTurn]) -> None:
        """The worker: stream (or wait for) the answer, checking the stop flag between chunks."""
        started = time.perf_counter()
        text = ""
        try:
            if not client.settings.stream:
                result = client.send(request, use_cache=False, refresh=True)
            else:
                chunks = client.send_stream(request, use_cache=False, refresh=True)
                result = None
                last = 0.0
                try:
                    for item in chunks:
                        if self._stop_flag.is_set():
                            break
                        if isinstance(item, str):
                            text += item
                            now = time.perf_counter()
                            if now - last >= _REDRAW_INTERVAL:
                                self.answer.value = self._live_html(request, text)
                                last = now
                        else:
                            result = item
                finally:
                    chunks.close()  # closes the HTTP stream when stopped early
                if result is None:  # stopped
                    result = _stopped_result(request, client, text, time.perf_counter() - started)
                    self._show_message("Stopped: the partial answer is shown and was not cached.", kind="info")
            self._finish(request, result, entries)
        except IncompleteAnswerError as e:
            partial = _stopped_result(request, client, e.partial_text or text, time.perf_counter() - started)
            self._finish(request, partial, entries)
            self._show_message(str(e))
        except AzureVisionError as e:
            self.answer.value = ""
            self._show_message(str(e))
        except Exception as e:  # noqa: BLE001 - the panel must stay usable; one line, no traceback
            self.answer.value = ""
            self._show_message(f"Unexpected error: {type(e).__name__}: {e}")
        finally:
            self._set_busy(False)

    def stop(self) -> None:
        """Stop a running answer after the next chunk (the partial text is kept, marked incomplete, not cached)."""
        if self.busy:
            self._stop_flag.set()
            self.stop_button.disabled = True
            self.stop_button.description = "Stopping…"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running request (if any) ends; False if it is still running after ``timeout`` s."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True

    def _set_busy(self, busy: bool) -> None:
        with self._ui_lock:
            self.send_button.disabled = busy
            self.stop_button.disabled = not busy
            self.stop_button.description = "Stop"

    def _live_html(self, request: VisionRequest, text: str) -> str:
        from azmm_magic.display.render import markdown_to_html, thumbnails_html

        body = markdown_to_html(text) if text else "<p style='opacity:0.6'>waiting for the first words…</p>"
        return (f"<div class='azmm-result' style='{_ANSWER_BOX}'>{thumbnails_html(request.images)}"
                f"<div class='azmm-answer'>{body}</div><div style='{_NOTE}'>writing…</div></div>")

    def _finish(self, request: VisionRequest, result: VisionResult,
                asked: tuple[list[_Entry], str, PendingTurn]) -> None:
        entries, raw_prompt, turn = asked
        result = turn.finish(request, result)  # footer notices; a complete answer becomes the conversation's turn
        chat = turn.conversation.name if turn.conversation is not None else None
        options = {"deployment": request.deployment, "detail": request.detail, "max_tokens": request.max_tokens,
                   "temperature": request.temperature, "entries": entries, "chat": chat}
        exchange = PanelExchange(prompt=request.prompt, options=options, result=result,
                                 cell_source=self._cell_source(raw_prompt, options))
        with self._ui_lock:
            self.history.append(exchange)
            self._show_exchange(exchange)
            self._redraw_history()
            if chat is not None:
                self.refresh_conversations()
                self._update_estimate()

    def _show_exchange(self, exchange: PanelExchange) -> None:
        from azmm_magic.display.render import result_html

        self._current = exchange
        self.result = exchange.result
        self.answer.value = f"<div style='{_ANSWER_BOX}'>{result_html(exchange.result)}</div>"
        self.to_variable_button.disabled = False
        self.to_cell_button.disabled = False

    def _redraw_history(self) -> None:
        from azmm_magic.display.render import result_html

        children = []
        titles = []
        for i, exchange in enumerate(self.history):
            reopen = w.Button(description="show above", icon="arrow-up", layout=w.Layout(width="auto"),
                              tooltip="Show this answer above (for 'to variable' / 'to new cell')")
            reopen.on_click(lambda _b, ex=exchange: self._show_exchange(ex))
            prompt_html = f"<div style='{_NOTE}'><b>Prompt:</b> {html.escape(exchange.prompt)}</div>"
            children.append(w.VBox([w.HTML(prompt_html + result_html(exchange.result)), reopen]))
            short = exchange.prompt if len(exchange.prompt) <= 70 else exchange.prompt[:67] + "…"
            marks = " · cached" if exchange.result.cached else (" · incomplete" if exchange.result.incomplete else "")
            if exchange.options.get("chat"):
                marks += f" · chat {exchange.options['chat']}"
            titles.append(f"{i + 1}. {short} ({len(exchange.result.images)} image(s){marks})")
        self.history_view.children = children
        self.history_view.titles = tuple(titles)

    # ----- keeping the answer --------------------------------------------------------------------------------------
    def _to_variable(self) -> None:
        if self.result is None:
            raise ConfigError("There is no answer yet: ask a question first.")
        name = self.variable_name.value.strip()
        if not _IDENTIFIER.fullmatch(name) or keyword.iskeyword(name):
            raise ConfigError(f"{name!r} is not a valid Python variable name; use letters, digits and _ (e.g. answer).")
        self._ns[name] = self.result
        self._show_message(f"Stored the VisionResult in `{name}` ({name}.text is the answer).", kind="info")

    def to_cell_source(self) -> str:
        """The ``%%azure_vision`` cell equivalent to the answer shown (uploads are named by their saved file)."""
        if self._current is None:
            raise ConfigError("There is no answer yet: ask a question first.")
        return self._current.cell_source

    def _cell_source(self, prompt: str, opts: Mapping[str, Any]) -> str:
        s = self._client().settings
        words = ["%%azure_vision"]
        for entry in opts["entries"]:
            words += ["-i", entry.cell_ref or shlex.quote(f"{UPLOAD_DIR}/{_upload_filename(entry)}")]
        if opts["detail"] != s.detail:
            words += ["--detail", opts["detail"]]
        if opts["max_tokens"] != s.max_tokens:
            words += ["--max-tokens", str(opts["max_tokens"])]
        if opts["temperature"] is not None and opts["temperature"] != s.temperature:
            words += ["--temperature", f"{opts['temperature']:g}"]
        if opts["deployment"] and opts["deployment"] != s.deployment:
            words += ["--deployment", shlex.quote(opts["deployment"])]
        if opts.get("chat"):
            words += ["--chat", opts["chat"]]
        return " ".join(words) + "\n" + prompt

    def _to_new_cell(self) -> None:
        source = self.to_cell_source()
        saved = self._save_uploads(self._current.options["entries"] if self._current else [])
        self.cell_source.value = source
        self.cell_source.layout.display = None
        note = "The equivalent cell: copy it into a new cell."
        if saved:
            note += f" Uploads were saved to {UPLOAD_DIR}/ so it works after a restart."
        if self._current is not None and self._current.options.get("chat"):
            note += f" Running it asks again, as the next turn of chat '{self._current.options['chat']}'."
        if self._shell is not None and hasattr(self._shell, "set_next_input"):
            self._shell.set_next_input(source, replace=False)
            note += (" JupyterLab also inserts it below the next cell you run (a widget button cannot add a cell "
                     "at once).")
        self.cell_note.value = f"<div style='{_NOTE} line-height:1.4'>{html.escape(note)}</div>"

    def _save_uploads(self, entries: list[_Entry]) -> int:
        count = 0
        for entry in entries:
            if entry.upload_name is None:
                continue
            target = Path(UPLOAD_DIR) / _upload_filename(entry)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".part")
                tmp.write_bytes(entry.source)
                tmp.replace(target)
            count += 1
        return count

    # ----- messages --------------------------------------------------------------------------------------------------
    def _show_message(self, text: str, *, kind: str = "error") -> None:
        from azmm_magic.display.render import message_bundle

        text = panel_wording(text)
        self.message.value = message_bundle(text, kind=kind)["text/html"] if text else ""

    def _guard(self, action: Callable[[], Any]) -> None:
        """Run a UI action; a user mistake becomes one line in the panel, which stays usable."""
        self._show_message("")
        try:
            action()
        except AzureVisionError as e:
            self._show_message(str(e))
        except Exception as e:  # noqa: BLE001
            self._show_message(f"Unexpected error: {type(e).__name__}: {e}")


_THUMB_W = 112
_THUMB_H = 76


def _chooser_thumb(image: PreparedImage) -> str:
    """A small fixed-size thumbnail with its caption (so the remove buttons line up)."""
    import base64

    from azmm_magic.display.render import image_caption

    if image.data is None and image.url:
        src = image.url
    else:
        src = "data:image/png;base64," + base64.b64encode(image.thumbnail_png(2 * _THUMB_W)).decode("ascii")
    cap = html.escape(image_caption(image))
    return (
        f"<div style='display:flex; flex-direction:column; align-items:center; width:{_THUMB_W}px; line-height:1.3'>"
        f"<div style='height:{_THUMB_H}px; width:{_THUMB_W}px; display:flex; align-items:center; "
        f"justify-content:center'><img src='{html.escape(src, quote=True)}' alt='{cap}' title='{cap}' "
        f"style='max-height:{_THUMB_H}px; max-width:{_THUMB_W}px; border:{_BORDER}; border-radius:4px; "
        f"object-fit:contain'/></div>"
        f"<div style='{_NOTE} font-size:0.75em; max-width:{_THUMB_W}px; overflow:hidden; text-overflow:ellipsis; "
        f"white-space:nowrap'>{cap}</div></div>"
    )


_ANSWER_BOX = "border-top: 1px solid rgba(128,128,128,0.25); padding-top: 6px; margin-top: 2px;"


def _safe_looks_like_image(check: Callable[[object], bool], value: object) -> bool:
    try:
        return bool(check(value))
    except Exception:  # noqa: BLE001 - an odd object in the namespace must not break the picker
        return False


def _upload_filename(entry: _Entry) -> str:
    """``name.png``, made safe; the content hash is added so two different uploads never share a file."""
    name = Path(entry.upload_name or "upload").name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, "png"
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "upload"
    digest = hashlib.sha256(entry.source).hexdigest()[:8]
    return f"{stem}-{digest}.{re.sub(r'[^A-Za-z0-9]+', '', ext) or 'png'}"


def _stopped_result(request: VisionRequest, client: VisionClient, text: str, elapsed: float) -> VisionResult:
    from azmm_magic.core.result import VisionResult

    return VisionResult(text=text, images=request.images, deployment=request.deployment, elapsed=elapsed,
                        prompt=request.prompt, endpoint_host=client.settings.endpoint_host, incomplete=True)


def _session_magics(shell: Any) -> tuple[Any, Any]:
    """The ``AzureVision`` magics of the running IPython (loading the extension when needed)."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None:
        raise ConfigError(
            "VisionPanel needs IPython/Jupyter; outside it pass a client: VisionPanel(client=VisionClient(...))."
        )
    magics = shell.magics_manager.registry.get("AzureVision")
    if magics is None:
        shell.extension_manager.load_extension("azmm_magic")
        magics = shell.magics_manager.registry["AzureVision"]
    return magics, shell


__all__ = ["VisionPanel", "PanelExchange", "DropZone"]
