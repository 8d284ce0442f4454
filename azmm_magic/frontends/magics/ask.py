"""The cell path of ``%%azure_vision``: ask about images (one request, streamed or not; ``--deployment a,b``
compares; ``--each`` asks per image or submits a Batch API job; ``--dry-run`` previews).

Thin by design: parse (:mod:`azmm_magic.frontends.command`), call :class:`~azmm_magic.features.client.VisionClient`,
display. :class:`CellMagic` is mixed into :class:`~azmm_magic.frontends.magics.AzureVision`, which owns the
session state these methods use (``shell``, ``conversations``, ``client()``, ``price_table()``).
"""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from azmm_magic.core.errors import ConfigError, ImageInputError, IncompleteAnswerError
from azmm_magic.frontends.command import parse_cell, variable_name
from azmm_magic.frontends.magics.subcommand import in_terminal


def _is_kernel(shell: Any) -> bool:
    return getattr(shell, "kernel", None) is not None


class CellMagic:
    """The ``%%azure_vision`` cell: :meth:`_cell` and the paths it takes."""

    if TYPE_CHECKING:  # provided by AzureVision
        shell: Any
        conversations: Any
        noted: set[str]

        def client(self, settings: Any = None) -> Any: ...

        def price_table(self) -> dict[str, Any] | None: ...

    @property
    def in_kernel(self) -> bool:
        """Whether the shell is a Jupyter kernel (live displays) rather than a terminal."""
        return _is_kernel(self.shell)

    def _cell(self, line: str, cell: str) -> Any:
        ns = self.shell.user_ns if self.shell is not None else {}
        command = parse_cell(line, cell, ns)
        client = self.client()
        self._note_once(deployment_notes(client.settings, command.deployments, getattr(self, "emulator", None)))
        if command.each:
            if command.chat is not None:
                raise ConfigError("--each asks about each image on its own: drop --chat.")
            if len(command.deployments) > 1:
                if command.expect is None or command.dry_run:
                    raise ConfigError("--each with several deployments compares them on labelled rows: add "
                                      "--expect COLUMN (and no --dry-run), or give one --deployment.")
                return self._evaluate_deployments(client, command, ns)
            return self._each(client, command, ns)
        if len(command.deployments) > 1:
            return self._compare(command, client, ns)
        from azmm_magic.features.chat import start_turn

        turn = start_turn(self.conversations, command.chat, client.settings)
        streaming = bool(command.stream and client.settings.stream)
        request = _prepare(client, command, history=turn.history, stream=streaming, **command.options())
        if command.dry_run:
            from azmm_magic.display.preview import RequestPreview

            return RequestPreview(request, client.settings, self.price_table())
        live = _LiveAnswer(request, kernel=self.in_kernel)
        try:
            result = live.run(client, request, client.policy(use_cache=command.use_cache, refresh=command.refresh))
            result = turn.finish(request, result)
            if command.notices():
                result = result.with_(notices=(*result.notices, *command.notices()))
        except BaseException:
            live.close()
            raise
        shown = live.finish(result)
        if command.out:
            ns[command.out] = result
        if shown:  # the live view became the answer: showing the returned value too would show it twice
            return None
        if live.printed:
            print(f"— {result.footer()}")  # the text was printed live in the terminal; do not print it twice
            return None
        return result

    def _note_once(self, notes: list[str]) -> None:
        """Print each note the first time this session meets it (a re-run cell does not repeat it)."""
        for note in notes:
            if note not in self.noted and len(self.noted) < 1000:
                self.noted.add(note)
                print(note)

    def _compare(self, command: Any, client: Any, ns: dict[str, Any]) -> Any:
        """``--deployment a,b``: the same request to each deployment, answers side by side."""
        from azmm_magic.features.compare import compare_request

        if command.chat is not None:
            raise ConfigError("--chat continues one conversation with one deployment; drop --chat to compare deployments.")
        names = list(dict.fromkeys(command.deployments))
        options = {**command.options(), "deployment": names[0]}
        base = _prepare(client, command, **options)
        if command.dry_run:
            from azmm_magic.display.preview import RequestPreview

            return [RequestPreview(client.retarget(base, d), client.settings, self.price_table()) for d in names]
        comparison = compare_request(client, base, names, use_cache=command.use_cache, refresh=command.refresh)
        if command.out:
            ns[command.out] = comparison
        return comparison

    def _each(self, client: Any, command: Any, ns: dict[str, Any]) -> Any:
        """``--each``: one request per image (azmm_magic.features.batch), or a Batch API job with ``--via batch-api``."""
        from azmm_magic.display.gallery import BatchProgress
        from azmm_magic.features.batch import BatchInterrupted, run_batch

        if command.via == "batch-api":
            return self._submit_job(client, command, ns)
        if command.dry_run:
            from azmm_magic.display.preview import BatchPreview
            from azmm_magic.features.batch import estimate_batch

            estimate = estimate_batch(client, command.prompt, command.images, **command.options())
            return BatchPreview(estimate, client.settings, self.price_table())
        kernel = _is_kernel(self.shell)
        views: list[BatchProgress] = []

        def progress(labels: Any) -> BatchProgress:
            views.append(BatchProgress(labels, kernel=kernel))
            return views[-1]

        try:
            result = run_batch(client, command.prompt, command.images, concurrency=command.concurrency,
                               use_cache=command.use_cache, refresh=command.refresh, view_factory=progress,
                               **command.options())
        except BatchInterrupted as e:
            if command.out:
                ns[command.out] = e.result
            where = f" (in {command.out})" if command.out else ""
            print(f"Interrupted: {e.result.summary()}{where}. Finished answers are cached: re-run the cell to send "
                  f"only the rest.", file=sys.stderr)
            raise KeyboardInterrupt from None
        except BaseException:
            for view in views:
                view.finish(None)
            raise
        if command.out:
            ns[command.out] = result
        return self._show_batch(result, command, views[-1] if views else None)

    def _submit_job(self, client: Any, command: Any, ns: dict[str, Any]) -> Any:
        """``--each --via batch-api``: submit a Batch API job; its handle is the cell's value (and ``-o``'s)."""
        from azmm_magic.features.batch_api import SubmitInterrupted
        from azmm_magic.frontends.magics.jobs import follow_session, magic_words

        try:
            job = client.submit_batch(command.prompt, command.images, kernel=_is_kernel(self.shell),
                                      **command.options())
        except SubmitInterrupted as e:
            if command.out:
                ns[command.out] = e.job
            print(f"{e}: %azure_vision jobs cancel {' '.join(e.job.ids)} stops them.", file=sys.stderr)
            raise KeyboardInterrupt from None
        job.follow = follow_session(self, client)
        job.next_step = magic_words(job)
        if command.out:
            ns[command.out] = job
        return job

    def _show_batch(self, result: Any, command: Any, view: Any) -> Any:
        """The cell's value after ``--each``: nothing when the live gallery (``view``) or the terminal lines already
        show the result, else the result; with ``--expect`` the evaluation under it."""
        if view is not None and view.finish(result._repr_mimebundle_()):
            return None  # the live gallery became the result: returning it too would show it twice
        if in_terminal(self.shell):  # each line was printed live: print the summary, not every line again
            keep = f"; the BatchResult is in {command.out}" if command.out else "; -o NAME keeps the BatchResult"
            print(f"{result.summary()}{keep}.")
            return None if command.expect is None else self._evaluation(result, command)
        if command.expect is not None:  # the gallery, then the evaluation under it
            from IPython.display import display

            display(result)
            return self._evaluation(result, command)
        return result

    def _evaluation(self, result: Any, command: Any) -> Any:
        """``--expect COLUMN[=FIELD]``: the batch scored against the column (prices from the prices trait)."""
        return result.evaluate(command.expect, field=command.expect_field, prices=self.price_table(),
                               name=result.results[0].deployment if result.results else "")

    def _evaluate_deployments(self, client: Any, command: Any, ns: dict[str, Any]) -> Any:
        """``--each --expect COLUMN --deployment a,b``: every deployment answers every row (the cache makes a
        re-run free); the evaluations side by side, with McNemar's test against the first."""
        from azmm_magic.features.evaluation import evaluate_variants

        names = list(dict.fromkeys(command.deployments))
        options = {k: v for k, v in command.options().items() if k != "deployment"}

        def run(prompt: str, images: Any, **chosen: Any) -> Any:
            return client.batch(prompt, images, progress=_is_kernel(self.shell), concurrency=command.concurrency,
                                use_cache=command.use_cache, refresh=command.refresh, **chosen)

        from azmm_magic.features.batch import BatchInterrupted

        try:
            table = evaluate_variants(run, [{"deployment": d, "name": d} for d in names], command.images,
                                      prompt=command.prompt, truth=command.expect, field=command.expect_field,
                                      prices=self.price_table(), **options)
        except BatchInterrupted as e:
            print(f"Interrupted: {e.result.summary()}. Finished answers are cached: re-run the cell to send only the "
                  "rest.", file=sys.stderr)
            raise KeyboardInterrupt from None
        if command.out:
            ns[command.out] = table
        return table


class _StatusLine:
    """A one-line status under the cell while the request waits to be sent again (e.g. "rate limited (429):
    retrying in 59 s (1 of 3)"): one display handle in a kernel, updated as the wait counts down and, when the
    answer is there, left as a record of what happened ("rate limited (429): retried (1 of 3)"), so a saved
    notebook has no empty output; in a terminal one line on stderr per wait."""

    def __init__(self, *, kernel: bool) -> None:
        self.kernel = kernel
        self.handle: Any = None
        self.shown: set[int] = set()
        self.last = ""

    def show(self, text: str, retry: int) -> None:
        if not self.kernel:
            if retry not in self.shown:
                print(text, file=sys.stderr, flush=True)
            self.shown.add(retry)
            return
        from azmm_magic.display.result import footer_html

        self.last = text
        bundle = {"text/plain": text, "text/html": footer_html(text)}
        if self.handle is None:
            from IPython.display import display

            self.handle = display(bundle, raw=True, display_id=True)
        else:
            self.handle.update(bundle, raw=True)

    def clear(self) -> None:
        if self.handle is not None:
            from azmm_magic.display.result import footer_html

            done = re.sub(r"retrying (?:in [^(]*?|now) \(", "retried (", self.last)
            self.handle.update({"text/plain": done, "text/html": footer_html(done)}, raw=True)
            self.handle = None


class _LiveAnswer:
    """Shows a streamed answer while it is written (started when the request is really sent: a cache hit shows
    nothing live), and remembers whether the text went to a terminal (then the result is not printed again).
    A wait before a retry is shown while it lasts: in the live view's footer, else on a status line."""

    def __init__(self, request: Any, *, kernel: bool) -> None:
        self.request = request
        self.kernel = kernel
        self.view: Any = None
        self.printed = False
        self.status = _StatusLine(kernel=kernel)

    def waiting(self, event: Any) -> None:
        """``on_wait``: show the wait (a :class:`~azmm_magic.service.send.WaitEvent`) while it happens."""
        text = event.message()
        if self.view is not None and self.kernel:
            self.view.status = text if event.remaining > 0 else "writing…"
            self.view.flush()
            return
        self.status.show(text, event.retry)

    def start(self) -> None:
        from azmm_magic.display.stream import StreamView

        self.view = StreamView(self.request.images, kernel=self.kernel).start()
        self.printed = self.request.stream and not self.kernel

    def run(self, client: Any, request: Any, policy: str) -> Any:
        on_send = self.start if request.stream else None
        try:
            result = client.pipeline.run(request, policy, on_text=self.add, on_send=on_send, on_wait=self.waiting)
        except IncompleteAnswerError:
            self.close(keep=True, note="INCOMPLETE: the answer was cut off (not cached)")
            raise
        except KeyboardInterrupt:
            if self.view is not None:
                self.close(keep=True)
                print("Interrupted: the partial answer above was not cached.", file=sys.stderr)
            raise
        except BaseException:
            self.close()
            raise
        return result  # the live view stays until finish(): it becomes the answer

    def add(self, text: str) -> None:
        if self.view is not None:
            self.view.add(text)

    def finish(self, result: Any) -> bool:
        """End the live view; in a kernel it becomes ``result``'s display. True when it did (the cell then
        returns nothing, so the answer is not shown twice)."""
        shown = self.view is not None and self.kernel and result is not None
        self.close(final=result._repr_mimebundle_() if shown else None)
        return shown

    def close(self, **kwargs: Any) -> None:
        self.status.clear()
        if self.view is not None:
            self.view.close(**kwargs)
            self.view = None


def deployment_notes(settings: Any, deployments: Any, emulator: Any) -> list[str]:
    """What the user may not expect about the deployment a cell asks: the session's emulator answers any name (a
    typo is not caught there), and a deployment named in a pasted endpoint URL that another setting overrides."""
    notes = []
    if emulator is not None and settings.endpoint == getattr(emulator, "url", None):
        for name in list(deployments) or [settings.deployment]:
            if name and name != "emulator":
                notes.append(f"Note: the local emulator answers any deployment name, so {name!r} is not checked here; "
                             "on Azure only a deployment you created answers (a misspelt name gives DeploymentNotFound).")
    conflict = settings.understood.get("deployment")
    if conflict and not deployments:
        notes.append(f"Note: deployment {settings.deployment!r} is used, not the one in the endpoint URL ({conflict}); "
                     "%azure_vision config shows where each setting comes from.")
    return notes


def _name_the_input(message: str, command: Any) -> str:
    """Prefix an image error with the ``-i`` argument it came from, unless the message already quotes that
    path/URL (a variable holding a bad array or object is otherwise only described by its type)."""
    pairs = list(zip(command.image_labels, command.images, strict=False))
    culprit = pairs[0] if len(pairs) == 1 else None
    if culprit is None:
        from azmm_magic.core.images import prepare_images

        for label, source in pairs:
            try:
                prepare_images(source, max_images=None)
            except ImageInputError:
                culprit = (label, source)
                break
            except Exception:  # noqa: BLE001 - only used to find the culprit; the original error is raised
                continue
    if culprit is None:
        return message
    label, source = culprit
    if isinstance(source, str) and source in message:
        name = variable_name(label)
        if name is not None and name != source:  # name the variable, not only the path it holds
            return f"-i {label} (a variable holding {source!r}): {message}"
        return message  # the path or URL as typed is quoted already
    return f"-i {culprit[0]}: {message}"


def _prepare(client: Any, command: Any, **options: Any) -> Any:
    """``client.prepare`` for a parsed cell; image errors name the ``-i`` argument they came from, and images
    from variables are captioned with the variable's name (``chart_fig · 640×480``, not the object's repr)."""
    try:
        request = client.prepare(command.prompt, command.images, **options)
    except ImageInputError as e:
        raise ImageInputError(_name_the_input(str(e), command), settings=e.settings, remedy=e.remedy) from None
    names = command.object_names()
    if names and len(names) == len(request.images):
        request = request.with_(images=tuple(
            replace(image, source=name) if name else image for image, name in zip(request.images, names, strict=True)
        ))
    return request
