"""The cell path of ``%%azure_vision``: ask about images (one request, streamed or not; ``--deployment a,b``
compares; ``--each`` asks per image or submits a Batch API job; ``--dry-run`` previews).

Thin by design: parse (:mod:`azmm_magic.frontends.command`), call :class:`~azmm_magic.features.client.VisionClient`,
display. :class:`CellMagic` is mixed into :class:`~azmm_magic.frontends.magics.AzureVision`, which owns the
session state these methods use (``shell``, ``conversations``, ``client()``, ``price_table()``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from azmm_magic.core.errors import ConfigError, ImageInputError, IncompleteAnswerError
from azmm_magic.features.chat import start_turn
from azmm_magic.frontends.command import parse_cell


def _is_kernel(shell: Any) -> bool:
    return getattr(shell, "kernel", None) is not None


class CellMagic:
    """The ``%%azure_vision`` cell: :meth:`_cell` and the paths it takes."""

    if TYPE_CHECKING:  # provided by AzureVision
        shell: Any
        conversations: Any

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
        if command.each:
            if command.chat is not None or len(command.deployments) > 1:
                raise ConfigError("--each asks about each image on its own: drop --chat and give one --deployment.")
            return self._each(client, command, ns)
        if len(command.deployments) > 1:
            return self._compare(command, client, ns)
        turn = start_turn(self.conversations, command.chat, client.settings)
        request = _prepare(client, command, history=turn.history, **command.options())
        if command.dry_run:
            from azmm_magic.display.render import RequestPreview

            return RequestPreview(request, client.settings, self.price_table())
        hit = client.cached(request) if command.use_cache and not command.refresh else None
        streaming = command.stream and client.settings.stream and hit is None and client.settings.cache != "replay"
        if hit is not None:
            result = hit
        elif not streaming:
            result = client.send(request, use_cache=False, refresh=command.use_cache)
        else:
            result = self._stream(client, request, store=command.use_cache)
        result = turn.finish(request, result)
        if command.out:
            ns[command.out] = result
        if streaming and not _is_kernel(self.shell):
            print(f"— {result.footer()}")  # the text was printed live; do not print it twice
            return None
        return result

    def _compare(self, command: Any, client: Any, ns: dict[str, Any]) -> Any:
        """``--deployment a,b``: the same request to each deployment, answers side by side."""
        from azmm_magic.features.compare import compare_request

        if command.chat is not None:
            raise ConfigError("--chat continues one conversation with one deployment; drop --chat to compare deployments.")
        names = list(dict.fromkeys(command.deployments))
        options = {**command.options(), "deployment": names[0]}
        base = _prepare(client, command, **options)
        if command.dry_run:
            from dataclasses import replace

            from azmm_magic.display.render import RequestPreview

            return [RequestPreview(replace(base, deployment=d), client.settings, self.price_table()) for d in names]
        comparison = compare_request(client, base, names, use_cache=command.use_cache, refresh=command.refresh)
        if command.out:
            ns[command.out] = comparison
        return comparison

    def _stream(self, client: Any, request: Any, *, store: bool) -> Any:
        from azmm_magic.display.render import StreamView

        view = StreamView(request.images, kernel=_is_kernel(self.shell)).start()
        chunks = client.send_stream(request, use_cache=False, refresh=store)
        result = None
        try:
            for item in chunks:
                if isinstance(item, str):
                    view.add(item)
                else:
                    result = item
        except IncompleteAnswerError:
            view.close(keep=True, note="INCOMPLETE: the answer was cut off (not cached)")
            raise
        except KeyboardInterrupt:
            chunks.close()
            view.close(keep=True)
            print("Interrupted: the partial answer above was not cached.", file=sys.stderr)
            raise
        except BaseException:
            view.close()
            raise
        view.close()
        return result

    def _each(self, client: Any, command: Any, ns: dict[str, Any]) -> Any:
        """``--each``: one request per image (azmm_magic.features.batch), or a Batch API job with ``--via batch-api``."""
        from azmm_magic.features.batch import BatchInterrupted, run_batch
        from azmm_magic.display.gallery import BatchProgress

        if command.via == "batch-api":
            job = client.submit_batch(command.prompt, command.images, **command.options())
            if command.out:
                ns[command.out] = job
            return job
        if command.dry_run:
            from azmm_magic.features.batch import preview_first
            from azmm_magic.display.render import RequestPreview

            count, first = preview_first(client, command.prompt, command.images, **command.options())
            print(f"--each: {count} image(s), one request each; the first request:")
            return RequestPreview(first, client.settings)
        kernel = _is_kernel(self.shell)
        try:
            result = run_batch(client, command.prompt, command.images, concurrency=command.concurrency,
                               use_cache=command.use_cache, refresh=command.refresh,
                               view_factory=lambda labels: BatchProgress(labels, kernel=kernel),
                               **command.options())
        except BatchInterrupted as e:
            if command.out:
                ns[command.out] = e.result
            where = f" (in `{command.out}`)" if command.out else ""
            print(f"Interrupted: {e.result.summary()}{where}. Finished answers are cached: re-run the cell to send "
                  f"only the rest.", file=sys.stderr)
            raise KeyboardInterrupt from None
        if command.out:
            ns[command.out] = result
        return result


def _name_the_input(message: str, command: Any) -> str:
    """Prefix an image error with the ``-i`` argument it came from, unless the message already quotes that
    path/URL (a variable holding a bad array or object is otherwise only described by its type)."""
    pairs = list(zip(command.image_labels, command.images))
    culprit = pairs[0] if len(pairs) == 1 else None
    if culprit is None:
        from azmm_magic.core.images import prepare_image

        for label, source in pairs:
            try:
                prepare_image(source)
            except ImageInputError:
                culprit = (label, source)
                break
            except Exception:  # noqa: BLE001 - only used to find the culprit; the original error is raised
                continue
    if culprit is None or (isinstance(culprit[1], str) and culprit[1] in message):
        return message
    return f"-i {culprit[0]}: {message}"


def _prepare(client: Any, command: Any, **options: Any) -> Any:
    """``client.prepare`` for a parsed cell; image errors name the ``-i`` argument they came from."""
    try:
        return client.prepare(command.prompt, command.images, **options)
    except ImageInputError as e:
        raise ImageInputError(_name_the_input(str(e), command)) from None
