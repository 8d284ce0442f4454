"""Sending from the panel: every call the panel makes into the client (:class:`Question`) and the
background thread that waits for or streams the answer, with Stop (:class:`Worker`).

Requests run in a worker thread so the kernel stays responsive; Stop ends a stream between two chunks (the HTTP
stream is closed; a stopped answer is never cached) and ends a wait before a retry within a second. While a
request waits to be sent again (429, 5xx), ``on_status`` gets one line saying so ("rate limited (429): retrying in
59 s (1 of 3)"), then ``""`` when the wait is over.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from azmm_magic.core.errors import IncompleteAnswerError
from azmm_magic.features.cancel import CancelScope
from azmm_magic.features.chat import start_turn

if TYPE_CHECKING:  # pragma: no cover
    from azmm_magic.core.images import PreparedImage
    from azmm_magic.core.result import VisionResult
    from azmm_magic.features.chat import Conversations
    from azmm_magic.features.client import VisionClient

REDRAW_INTERVAL = 0.12  # seconds between redraws of a streaming answer


class Question:
    """One question sent from the panel. This class holds every call the panel makes into the client and the
    conversations: build the request (``prepare``, with the conversation's history), look in the cache, send
    (streaming or not), and record the finished turn.

    Building it raises :class:`~azmm_magic.core.errors.AzureVisionError` for a bad request.
    """

    def __init__(self, client: VisionClient, conversations: Conversations, chat: str | None, prompt: str,
                 images: Sequence[PreparedImage], options: Mapping[str, Any]) -> None:
        self.client = client
        self.turn = start_turn(conversations, chat, client.settings)
        self.request = client.prepare(prompt, list(images), history=self.turn.history,
                                      stream=bool(client.settings.stream), **options)

    @property
    def chat(self) -> str | None:
        """The name of the conversation this question continues, or None."""
        return self.turn.conversation.name if self.turn.conversation is not None else None

    @property
    def streams(self) -> bool:
        """True when the answer arrives in chunks (the stream setting, fixed when the request was built)."""
        return self.request.stream

    async def answer_async(self, on_wait: Callable[[Any], None] | None = None) -> VisionResult:
        """The whole answer (not streamed) through the client's pipeline on the running event loop: cancelling
        the task cancels the request in flight."""
        return await self.client.pipeline.arun(self.request, self.client.policy(), on_wait=on_wait)

    def cached(self) -> VisionResult | None:
        """The session cache's answer to this request, or None (shown at once, without the worker thread)."""
        return self.client.cached(self.request)

    def answer(self, on_wait: Callable[[Any], None] | None = None) -> Generator[str | VisionResult, None, None]:
        """Text chunks while streaming, then the :class:`VisionResult` (through the client's pipeline: cache policy,
        usage ledger); closing it closes the HTTP stream. ``on_wait`` gets each wait before a retry."""
        pipeline, policy = self.client.pipeline, self.client.policy()
        if not self.streams:
            yield pipeline.run(self.request, policy, on_wait=on_wait)
            return
        # closing this generator closes the pipeline's stream generator too (yield from), hence the HTTP stream
        yield from pipeline.stream(self.request, policy, on_wait=on_wait)

    def partial(self, text: str, elapsed: float) -> VisionResult:
        """The result of an answer stopped or cut off after ``text`` (marked incomplete, never cached)."""
        from azmm_magic.core.result import VisionResult

        r = self.request
        return VisionResult(text=text, images=r.images, deployment=r.deployment, elapsed=elapsed, prompt=r.prompt,
                            endpoint_host=self.client.settings.endpoint_host, incomplete=True)

    def finish(self, result: VisionResult) -> VisionResult:
        """``result`` with the conversation's footer notices; a complete answer becomes the conversation's turn."""
        return self.turn.finish(self.request, result)


class _Stopped(Exception):
    """Stop was pressed while the request waited to be sent again."""


class Worker:
    """The background thread of one panel.

    ``on_text(question, text)``: the text so far (streaming; at most one call per ``REDRAW_INTERVAL``).
    ``on_error(error)``: no answer at all. ``on_idle()``: always last. ``on_status(text)``: a wait before a retry,
    in one line, while it lasts (about once a second), then ``""``. The answer goes to the ``done`` given to
    :meth:`start`.
    """

    def __init__(self, *, on_text: Callable[[Question, str], None], on_error: Callable[[BaseException], None],
                 on_idle: Callable[[], None], on_status: Callable[[str], None] | None = None) -> None:
        self._on_text = on_text
        self._on_error = on_error
        self._on_idle = on_idle
        self._on_status = on_status
        self.status = ""  # the current wait, in one line ("" when not waiting)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._scope = CancelScope()  # cancels the request in flight of an answer that is not streamed

    @property
    def busy(self) -> bool:
        """True while a request runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, question: Question, done: Callable[[VisionResult, BaseException | None], None]) -> None:
        """Send ``question`` in a new thread; ``done(result, error)`` gets the answer: complete, incomplete after
        Stop (``error`` None) or cut off (``error`` the :class:`IncompleteAnswerError`)."""
        self._stop.clear()
        self._scope = CancelScope()
        self._thread = threading.Thread(target=self._run, args=(question, done), name="azmm-panel", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop a streaming answer after the next chunk, a wait before a retry within a second, and an answer that
        is not streamed at once (its request is cancelled)."""
        self._stop.set()
        self._scope.cancel()

    def _waiting(self, event: Any) -> None:
        """``on_wait`` of the pipeline: report the wait (a ``WaitEvent``); Stop ends it."""
        if self._stop.is_set():
            raise _Stopped
        self._set_status(event.message() if event.remaining > 0 else "")

    def _set_status(self, text: str) -> None:
        self.status = text
        if self._on_status is not None:
            self._on_status(text)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running request (if any) ends; False if it still runs after ``timeout`` s."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _read_stream(self, question: Question) -> tuple[VisionResult | None, str]:
        """(the result, or None when stopped; the text so far), redrawing at most every ``REDRAW_INTERVAL``."""
        text, result, last = "", None, 0.0
        answer = question.answer(on_wait=self._waiting)
        try:
            for item in answer:
                if self._stop.is_set():
                    break
                if isinstance(item, str):
                    text += item
                    now = time.perf_counter()
                    if now - last >= REDRAW_INTERVAL:
                        self._on_text(question, text)
                        last = now
                else:
                    result = item
        except IncompleteAnswerError as e:
            e.partial_text = e.partial_text or text
            raise
        finally:
            answer.close()  # closes the HTTP stream when stopped early
        return result, text

    def _run(self, question: Question, done: Callable[[VisionResult, BaseException | None], None]) -> None:
        started = time.perf_counter()
        text = ""
        try:
            if question.streams:
                result, text = self._read_stream(question)
            else:  # sent on an event loop, so that Stop cancels the request in flight
                try:
                    result = self._scope.run(lambda: question.answer_async(on_wait=self._waiting))
                except asyncio.CancelledError:
                    result = None
            if result is None:  # stopped
                result = question.partial(text, time.perf_counter() - started)
            done(result, None)
        except _Stopped:  # during a wait before a retry: nothing was answered
            done(question.partial(text, time.perf_counter() - started), None)
        except IncompleteAnswerError as e:
            partial = question.partial(e.partial_text or text, time.perf_counter() - started)
            done(partial, e)
        except Exception as e:  # noqa: BLE001 - the panel must stay usable; one line, no traceback
            self._on_error(e)
        finally:
            if self.status:
                self._set_status("")
            self._on_idle()


__all__ = ["Question", "Worker", "REDRAW_INTERVAL"]
