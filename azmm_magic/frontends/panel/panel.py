"""`VisionPanel`: the layout of the panel and the wiring between its parts.

The parts live beside this module: ``sources`` (image inputs and the chosen images), ``options`` (prompt,
request options, token estimate), ``worker`` (every client call, and the send thread with Stop), ``history``,
``keep`` (to variable / to new cell), ``cells`` (the equivalent cell source), ``hints`` (error hints worded for
the panel's controls) and ``dropzone`` (with ``dropzone.js``, ``dropzone.css`` and ``panel.css``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from azmm_magic.core.errors import AzureVisionError, ConfigError
from azmm_magic.features.chat import Conversations
from azmm_magic.frontends.panel.cells import cell_source
from azmm_magic.frontends.panel.compat import colab_widget_metadata
from azmm_magic.frontends.panel.hints import panel_message
from azmm_magic.frontends.panel.history import HistoryEntry, HistoryView
from azmm_magic.frontends.panel.keep import AnswerKeeper
from azmm_magic.frontends.panel.options import RequestOptions
from azmm_magic.frontends.panel.sources import ImageSources
from azmm_magic.frontends.panel.worker import Question, Worker
from azmm_magic.frontends.shell import session_magics

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.images import PreparedImage
    from azmm_magic.core.result import VisionResult
    from azmm_magic.features.client import VisionClient

BORDER = "1px solid rgba(128,128,128,0.35)"


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
    detail), ``result`` (the answer shown), ``history`` (list of :class:`HistoryEntry`), ``busy``,
    ``conversations`` (the session's, shared with ``--chat``; pass ``conversations=`` outside IPython).
    Methods: :meth:`ask`, :meth:`stop`, :meth:`wait`, :meth:`add_images`, :meth:`remove_image`,
    :meth:`follow_session` (run after each cell: the deployment box, variable picker and chat box catch up).

    The answer shows its images' thumbnails only when they are not the ones in the image row above it.
    "to new cell" inserts the equivalent cell right below the panel's cell where the front end allows it
    (JupyterLab 3 and 4, Notebook 6 and 7: ``dropzone.js``), and shows its source to copy in any case.
    """

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget's output (ipywidgets 8), with the metadata Colab needs to load the drop zone's front end."""
        base = getattr(super(), "_repr_mimebundle_", None)  # ipywidgets 7 displays through _ipython_display_
        if base is None:
            return None
        bundle = base(**kwargs)
        metadata = colab_widget_metadata()
        return (bundle, metadata) if metadata and isinstance(bundle, dict) else bundle

    def __init__(
        self,
        magics: Any = None,
        *,
        client: VisionClient | None = None,
        namespace: MutableMapping[str, Any] | None = None,
        shell: Any = None,
        conversations: Conversations | None = None,
    ) -> None:
        self._attach_session(magics, client, namespace, shell, conversations)
        self.result: VisionResult | None = None
        self._current: HistoryEntry | None = None
        self._shows_images: bool | None = None  # whether the answer shown carries its own thumbnails
        self._ui_lock = threading.RLock()
        self._worker = Worker(on_text=self._show_live, on_error=self._on_failure, on_idle=lambda: self._set_busy(False),
                              on_status=lambda text: self._show_message(text, kind="info"))  # e.g. a 429's pause
        self._add_inputs()
        self._add_answer_controls()
        self._wire()
        super().__init__(children=self._rows(),
                         layout=w.Layout(border=BORDER, padding="8px 12px", width="auto", max_width="980px"))
        self.add_class("azmm-panel")
        self.refresh_conversations()
        self._update_estimate()
        if self._shell is not None and hasattr(self._shell, "events"):
            follow_cells(self._shell, self)
        self._start_warmup()

    def _attach_session(self, magics: Any, client: VisionClient | None, namespace: MutableMapping[str, Any] | None,
                        shell: Any, conversations: Conversations | None) -> None:
        """The session the panel works in: the magics' (loaded if needed), or ``client`` outside IPython."""
        if magics is None and client is None:
            magics, shell = session_magics(shell, outside="VisionPanel needs IPython/Jupyter; outside it pass a "
                                                          "client: VisionPanel(client=VisionClient(...)).")
        self._magics = magics
        self._fixed_client = client
        self._shell = shell if shell is not None else getattr(magics, "shell", None)
        if namespace is None:
            namespace = self._shell.user_ns if self._shell is not None else {}
        self._ns: MutableMapping[str, Any] = namespace
        if conversations is None:
            conversations = getattr(magics, "conversations", None)
        self.conversations: Conversations = conversations if conversations is not None else Conversations()

    def _add_inputs(self) -> None:
        """The image inputs, the request options and the history (their controls become the panel's attributes,
        listed in the class docstring)."""
        self.sources = src = ImageSources(settings=lambda: self._client().settings, detail=lambda: self.detail.value,
                                          namespace=self._ns, guard=self._guard, changed=self._update_estimate)
        self.upload, self.drop, self.source_text, self.add_source_button = (
            src.upload, src.drop, src.source_text, src.add_source_button)
        self.variable_picker, self.refresh_variables_button, self.add_variable_button, self.thumbnails = (
            src.variable_picker, src.refresh_variables_button, src.add_variable_button, src.thumbnails)
        self.request_options = opts = RequestOptions(self._client().settings)
        self.prompt, self.deployment, self.detail, self.max_tokens, self.temperature, self.chat, self.estimate = (
            opts.prompt, opts.deployment, opts.detail, opts.max_tokens, opts.temperature, opts.chat, opts.estimate)
        self._history = HistoryView(reopen=self._show_entry)
        self.history_view = self._history.view

    def _add_answer_controls(self) -> None:
        """Send / Stop, the message line, the answer, and keeping the answer ("to variable" / "to new cell")."""
        self.send_button = w.Button(description="Send", button_style="primary", icon="paper-plane",
                                    tooltip="Send (Ctrl/Cmd+Enter in the prompt)", layout=w.Layout(width="96px"))
        self.send_button.add_class("azmm-send")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True, tooltip="Stop the answer",
                                    layout=w.Layout(width="96px"))
        self.stop_button.add_class("azmm-stop")
        self.message = w.HTML()
        self.message.add_class("azmm-message")
        self.answer = w.HTML()
        self.answer.add_class("azmm-answer-box")
        self._cell_id = creating_cell_id(self._shell)
        self.keeper = keep = AnswerKeeper(current=lambda: self._current, namespace=self._ns, guard=self._guard,
                                          inform=lambda text: self._show_message(text, kind="info"),
                                          insert=lambda source: self.drop.insert_cell(source, cell_id=self._cell_id,
                                                                                      widget_id=self.model_id))
        self.variable_name, self.to_variable_button, self.to_cell_button, self.cell_source, self.cell_note = (
            keep.variable_name, keep.to_variable_button, keep.to_cell_button, keep.cell_source, keep.cell_note)

    def _wire(self) -> None:
        self.drop.on_msg(self._on_front_end_msg)
        self.refresh_variables_button.on_click(lambda _: self.refresh_conversations())
        self.send_button.on_click(lambda _: self.ask())
        self.stop_button.on_click(lambda _: self.stop())
        for control in (self.prompt, self.detail, self.chat):
            control.observe(lambda _: self._update_estimate(), names="value")

    def _rows(self) -> list[w.Widget]:
        """The panel's children, top to bottom."""

        def row(*children: w.Widget) -> w.HBox:
            return w.HBox(list(children), layout=w.Layout(align_items="center", flex_flow="row wrap"))

        return [
            w.HTML("<b>Ask about images</b> <span style='opacity:0.65'>· azmm_magic</span>"),
            row(self.upload, self.drop, self.source_text, self.add_source_button),
            row(w.Label("or a variable:"), self.variable_picker, self.refresh_variables_button,
                self.add_variable_button, self.sources.variable_note),
            self.thumbnails,
            self.prompt,
            row(self.deployment, self.detail, self.max_tokens, self.temperature, self.chat),
            row(self.send_button, self.stop_button, self.estimate),
            self.message,
            self.answer,
            row(self.variable_name, self.to_variable_button, self.to_cell_button),
            self.cell_note,
            self.cell_source,
            self.history_view,
        ]

    def _start_warmup(self) -> None:
        """Import and build what the first Send needs in the background (see :mod:`azmm_magic.features.warmup`)."""
        starter = getattr(self._magics, "start_warmup", None) if self._fixed_client is None else None
        if starter is not None:
            starter()
            return
        from azmm_magic.features import warmup

        client = self._client()
        warmup.start(client.settings, modules=("azmm_magic.display",), build=lambda: client.sdk)

    # ----- state ---------------------------------------------------------------------------------------------------
    def _client(self) -> VisionClient:
        """The session's client for the current settings (re-resolved each time, so ``%config`` changes apply)."""
        if self._fixed_client is not None:
            return self._fixed_client
        return self._magics.client()

    @property
    def busy(self) -> bool:
        """True while a request runs."""
        return self._worker.busy

    @property
    def images(self) -> list[PreparedImage]:
        """The chosen images, prepared for the current detail (what Send will send)."""
        return self.sources.images()

    @property
    def history(self) -> list[HistoryEntry]:
        """This panel's questions and answers, oldest first."""
        return self._history.entries

    def add_images(self, source: Any, *, label: str | None = None, cell_ref: str | None = None) -> int:
        """Add images: a path, glob or URL string, an image object, or ``bytes`` (named by ``label``).

        Returns how many images were added. Raises :class:`AzureVisionError` with a clear message for bad input.
        """
        return self.sources.add_images(source, label=label, cell_ref=cell_ref)

    def remove_image(self, index: int) -> None:
        """Remove the chosen image at ``index``."""
        self.sources.remove_image(index)

    def refresh_variables(self) -> None:
        """List the image variables of the notebook (PIL images, arrays, figures, bytes) in the picker."""
        self.sources.refresh_variables()

    def refresh_conversations(self) -> None:
        """List the session's conversations in the ``chat`` box (the value typed or chosen stays)."""
        self.request_options.list_conversations(self.conversations)

    def _update_estimate(self) -> None:
        settings = lambda: self._client().settings  # noqa: E731 - read when the estimate is drawn
        self.request_options.update_estimate(self.sources.images, settings, self.conversations)
        if self._current is not None and self._shows_images is not None and not self.busy:
            self._show_entry(self._current, only_if_images_changed=True)  # the row changed: thumbnails?

    def follow_session(self) -> None:
        """Bring the panel up to date with the session after a cell ran: the deployment box follows the deployment
        setting (unless one was typed), the variable picker and the chat box list what exists now."""
        with self._ui_lock:
            self.request_options.follow_settings(self._client().settings)
            self.refresh_variables()
            self.refresh_conversations()
            self._update_estimate()

    def _on_front_end_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type")
        if kind == "send":
            if isinstance(content.get("prompt"), str):  # the text as typed (its own update may not have arrived yet)
                self.prompt.value = content["prompt"]
            self.ask()
        elif kind == "cell-inserted":
            self.keeper.inserted(content)

    # ----- asking ----------------------------------------------------------------------------------------------------
    def ask(self) -> None:
        """What Send does: prepare the request, answer from the cache or start a worker that streams the answer."""
        if self.busy:
            return
        self._show_message("")
        entries, typed = list(self.sources.entries), self.prompt.value.strip()
        try:
            question = self._question()
        except AzureVisionError as e:
            self._show_message(panel_message(e))
            return

        def done(result: VisionResult, error: BaseException | None = None) -> None:
            self._finish(question, result, entries, typed)
            if error is not None:
                self._show_message(panel_message(error))
            elif result.incomplete:
                self._show_message("Stopped: the partial answer is shown and was not cached.", kind="info")

        hit = question.cached()
        if hit is not None:
            done(hit)
            return
        self._set_busy(True)
        self._show_live(question, "")
        self._worker.start(question, done)

    def _question(self) -> Question:
        from azmm_magic.core.prompts import interpolate

        prompt = interpolate(self.prompt.value, self._ns).strip()
        if not prompt:
            raise ConfigError("The prompt is empty: type a question about the images, then press Send.")
        opts = self.request_options
        client = self._client()
        opts.follow_settings(client.settings)
        return Question(client, self.conversations, opts.chat_name(), prompt, self.images, opts.values())

    def stop(self) -> None:
        """Stop a running answer after the next chunk (the partial text is kept, marked incomplete, not cached)."""
        if self.busy:
            self._worker.stop()
            self.stop_button.disabled = True
            self.stop_button.description = "Stopping…"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running request (if any) ends; False if it is still running after ``timeout`` s."""
        return self._worker.wait(timeout)

    def _set_busy(self, busy: bool) -> None:
        with self._ui_lock:
            self.send_button.disabled = busy
            self.stop_button.disabled = not busy
            self.stop_button.description = "Stop"

    def _on_failure(self, error: BaseException) -> None:
        self.answer.value = ""
        self._show_message(panel_message(error))

    # ----- showing answers -------------------------------------------------------------------------------------------
    def _show_live(self, question: Question, text: str) -> None:
        from azmm_magic.display.thumbnails import thumbnails_html
        from azmm_magic.display.untrusted import markdown_html

        body = markdown_html(text) if text else "<p style='opacity:0.6'>waiting for the first words…</p>"
        images = question.request.images
        thumbs = "" if self._in_image_row(images) else thumbnails_html(images)
        self.answer.value = (f"<div class='azmm-result azmm-answer-frame'>{thumbs}<div class='azmm-answer'>{body}</div>"
                             f"<div class='azmm-note'>writing…</div></div>")

    def _in_image_row(self, images: Sequence[PreparedImage]) -> bool:
        """True when ``images`` are the chosen images shown in the image row (then the answer does not repeat
        their thumbnails)."""
        return self.sources.shows(images)

    def _finish(self, question: Question, result: VisionResult, entries: list[Any], typed: str) -> None:
        result = question.finish(result)  # footer notices; a complete answer becomes the conversation's turn
        request = question.request
        chat = question.chat
        options = {"deployment": request.deployment, "detail": request.detail, "max_tokens": request.max_tokens,
                   "temperature": request.temperature, "entries": entries, "chat": chat}
        shown = HistoryEntry(prompt=request.prompt, options=options, result=result,
                              cell_source=cell_source(typed, options, self._client().settings))
        with self._ui_lock:
            self._history.append(shown)
            self._show_entry(shown)
            if chat is not None:
                self.refresh_conversations()
                self._update_estimate()

    def _show_entry(self, entry: HistoryEntry, *, only_if_images_changed: bool = False) -> None:
        """Show ``entry``'s answer; its thumbnails only when its images are not the image row's (the row shows
        them already). ``only_if_images_changed``: redraw only when that changed (the row was edited)."""
        from azmm_magic.display.result import result_html

        with_images = not self._in_image_row(entry.result.images)
        if only_if_images_changed and with_images == self._shows_images:
            return
        self._current = entry
        self.result = entry.result
        self._shows_images = with_images
        self.answer.value = (f"<div class='azmm-answer-frame'>{result_html(entry.result, thumbnails=with_images)}"
                             "</div>")
        self.keeper.enable()

    def to_cell_source(self) -> str:
        """The ``%%azure_vision`` cell equivalent to the answer shown (uploads are named by their saved file)."""
        return self.keeper.to_cell_source()

    # ----- messages ----------------------------------------------------------------------------------------------------
    def _show_message(self, text: str, *, kind: str = "error") -> None:
        from azmm_magic.display.bundle import message_bundle

        self.message.value = message_bundle(text, kind=kind)["text/html"] if text else ""

    def _guard(self, action: Callable[[], Any]) -> None:
        """Run a UI action; a user mistake becomes one line in the panel (with its hint), which stays usable."""
        self._show_message("")
        try:
            action()
        except Exception as e:  # noqa: BLE001 - the panel must stay usable; one line, no traceback
            self._show_message(panel_message(e))


def creating_cell_id(shell: Any) -> str | None:
    """The id of the notebook cell running now (JupyterLab and Notebook 7 send it with each execute request), so
    "to new cell" can insert below the panel's cell; None outside a kernel."""
    get_parent = getattr(shell, "get_parent", None)
    try:
        parent = get_parent() if callable(get_parent) else None
    except Exception:  # noqa: BLE001 - no parent request: not in a kernel
        return None
    metadata = parent.get("metadata") if isinstance(parent, dict) else None
    cell_id = metadata.get("cellId") if isinstance(metadata, dict) else None
    return cell_id if isinstance(cell_id, str) else None


def follow_cells(shell: Any, panel: VisionPanel) -> None:
    """After each cell, bring ``panel`` up to date (:meth:`VisionPanel.follow_session`); the hook goes away with
    the panel (closed or collected)."""
    ref = weakref.ref(panel)

    def after_cell(*_args: Any) -> None:
        live = ref()
        if live is None or getattr(live, "comm", None) is None:
            shell.events.unregister("post_run_cell", after_cell)
            return
        try:
            live.follow_session()
        except Exception:  # noqa: BLE001 - a settings problem shows on Send; never in every cell's output
            pass

    shell.events.register("post_run_cell", after_cell)


__all__ = ["VisionPanel", "creating_cell_id", "follow_cells"]
