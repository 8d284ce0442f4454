"""Stopping requests in flight from another thread: the panel's Stop, Ctrl-C during :func:`compare`.

A blocking SDK call cannot be interrupted from outside its thread, so these requests are sent on an event loop
(:class:`CancelScope`): cancelling its task cancels every request in flight (the SDK closes their connections)
and any wait before a retry. :func:`run_interruptible` runs one from a caller that must stay responsive to
Ctrl-C: the caller waits in short joins, and a Ctrl-C cancels the requests, waits at most :data:`STOP_WAIT`
seconds for them to end (a second Ctrl-C ends the wait) and is raised again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: after Ctrl-C, how long the caller waits for the cancelled requests to end
STOP_WAIT = 10.0


class CancelScope:
    """Runs coroutines with ``asyncio.run`` in the calling thread; :meth:`cancel`, from any thread, cancels the
    one running (and any run after it: a cancelled scope stays cancelled)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self.cancelled = False

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """``asyncio.run(make())``; raises :class:`asyncio.CancelledError` when cancelled."""

        async def main() -> T:
            with self._lock:
                if self.cancelled:
                    raise asyncio.CancelledError
                self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
            try:
                return await make()
            finally:
                with self._lock:
                    self._loop = self._task = None

        return asyncio.run(main())

    def cancel(self) -> None:
        """Cancel the coroutine running (its requests in flight and waits), and any run later."""
        with self._lock:
            self.cancelled = True
            loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed meanwhile: nothing left to cancel
                pass


def run_interruptible(make: Callable[[], Awaitable[T]], *, name: str = "azmm-requests") -> T:
    """``make()`` run to its end on its own event loop in a daemon thread (so this also works where a loop is
    running, as in Jupyter). Ctrl-C cancels it, waits at most :data:`STOP_WAIT` s (a second Ctrl-C stops the
    wait) and raises ``KeyboardInterrupt``; what ``make()`` raised is raised here."""
    scope = CancelScope()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = scope.run(make)
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            outcome["error"] = e

    thread = threading.Thread(target=target, name=name, daemon=True)
    try:
        thread.start()  # inside: on a busy machine the requests may be sent, and Ctrl-C come, before start() returns
        while thread.is_alive():
            thread.join(0.05)
    except KeyboardInterrupt:
        try:
            scope.cancel()
            deadline = time.monotonic() + STOP_WAIT
            while thread.is_alive() and time.monotonic() < deadline:
                thread.join(0.05)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            scope.cancel()
        raise
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


__all__ = ["STOP_WAIT", "CancelScope", "run_interruptible"]
