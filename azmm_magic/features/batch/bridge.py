"""The sync bridge: :func:`run_batch` runs a batch's event loop in a worker thread (so it also works inside
Jupyter, whose own loop is running), while progress, gallery and ``on_item`` run in the calling thread; Ctrl-C
cancels the requests in flight and raises :class:`~.result.BatchInterrupted` holding what finished."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from azmm_magic.features.batch.plan import BatchClient, Plan, new_run
from azmm_magic.features.batch.result import BatchInterrupted, BatchResult
from azmm_magic.features.batch.runner import run_plan
from azmm_magic.features.outcomes import Outcome
from azmm_magic.features.progress import ProgressBar

#: after Ctrl-C, how long a batch waits for its requests in flight to be cancelled (a second Ctrl-C stops waiting)
STOP_WAIT = 10.0
POLL = 0.05  # seconds between two looks at the worker thread (Ctrl-C is seen within this)

Deliver = Callable[[int, Outcome], None]


class _LoopThread:
    """A batch's event loop in a worker thread; its outcomes queued for the calling thread to :meth:`drain`."""

    def __init__(self, main: Callable[[Deliver], Coroutine[Any, Any, BatchResult]]) -> None:
        self._main = main
        self._events: queue.SimpleQueue[tuple[int, Outcome]] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._stop = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name="azmm-batch", daemon=True)

    def _work(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            self.error = e

    async def _run(self) -> BatchResult:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        if self._stop:  # Ctrl-C came before the loop started
            raise asyncio.CancelledError
        return await self._main(lambda index, outcome: self._events.put((index, outcome)))

    def drain(self, deliver: Deliver) -> None:
        """Hand every outcome queued so far to ``deliver`` (in the calling thread)."""
        while True:
            try:
                index, outcome = self._events.get_nowait()
            except queue.Empty:
                return
            deliver(index, outcome)

    def follow(self, deliver: Deliver, tick: Callable[[], None]) -> None:
        """Start the thread and deliver outcomes until it ends (``tick`` after each look)."""
        self.thread.start()
        while self.thread.is_alive():
            self.thread.join(POLL)
            self.drain(deliver)
            tick()
        self.drain(deliver)

    def stop(self) -> None:
        """Cancel the loop's task if it runs (no new request is sent; those in flight are cancelled), else make it
        stop as soon as it starts."""
        self._stop = True
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed meanwhile: nothing left to cancel
                pass

    def interrupt(self, deliver: Deliver) -> None:
        """After Ctrl-C: stop and wait, at most :data:`STOP_WAIT` seconds, for the thread (delivering what
        finishes meanwhile); a second Ctrl-C ends the wait (the result keeps what finished)."""
        try:
            self.stop()
            deadline = time.monotonic() + STOP_WAIT
            while self.thread.is_alive() and time.monotonic() < deadline:
                self.thread.join(POLL)
                self.drain(deliver)
        except KeyboardInterrupt:
            self.stop()
        self.drain(deliver)


def _open_view(plan: Plan, result: BatchResult, view_factory: Callable[[Sequence[str]], Any] | None,
               progress: bool) -> Any:
    """The view that follows the run: the caller's (``view_factory(labels)``), a progress bar, or None."""
    view: Any = None
    if view_factory is not None:
        view = view_factory(plan.labels)
        if plan.frame is not None and hasattr(view, "describe_rows"):
            view.describe_rows(result.rows, result.prompts)
    elif progress:
        view = ProgressBar(len(plan.labels))
    if view is not None:
        view.start()
    return view


def run_batch(client: BatchClient, prompt: str, images: Iterable[object] | object, *,
              on_item: Deliver | None = None, progress: bool = True,
              view_factory: Callable[[Sequence[str]], Any] | None = None, **plan_options: Any) -> BatchResult:
    """See :meth:`VisionClient.batch`. ``view_factory(labels)`` replaces the default progress bar (the magic passes
    one that also draws the gallery); ``plan_options`` as for :func:`~.plan.plan_batch` (``concurrency``,
    ``use_cache``, ``refresh``, item and request options)."""
    plan, result = new_run(client, prompt, images, **plan_options)
    view = _open_view(plan, result, view_factory, progress)
    pictures = bool(getattr(view, "pictures", False))
    run = _LoopThread(lambda deliver: run_plan(client, plan, result, on_item=deliver, thumbnails=pictures))

    def deliver(index: int, outcome: Outcome) -> None:
        if view is not None:
            view.add(index, outcome)
        if on_item is not None:
            on_item(index, outcome)

    def tick() -> None:
        if view is not None and hasattr(view, "status"):
            view.status(plan.stats.waiting)  # a pause the service asked for shows in the bar

    try:
        try:
            run.follow(deliver, tick)
        except KeyboardInterrupt:
            try:
                run.interrupt(deliver)
            except KeyboardInterrupt:  # a second Ctrl-C before the wait began
                run.stop()
                run.drain(deliver)
            result.interrupted = True
            view, shown = None, view
            if shown is not None:
                shown.close(keep=True)
            raise BatchInterrupted(result) from None
    finally:
        if view is not None:
            view.close(keep=result.interrupted)
    if isinstance(run.error, asyncio.CancelledError):
        result.interrupted = True
        raise BatchInterrupted(result) from None
    if run.error is not None:
        raise run.error
    return result


__all__ = ["STOP_WAIT", "run_batch"]
