"""What this process remembers per deployment (the budget its rate-limit headers announced, the output-token
parameter it accepted): a bounded, thread-safe map keyed by (endpoint host, deployment).

Such facts belong to the deployment, not to one client, so they are per process; each memory holds at most
:data:`MAX_DEPLOYMENTS` entries (the oldest goes first). Nothing secret is kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

#: (endpoint host, deployment) pairs one memory keeps at most
MAX_DEPLOYMENTS = 256

T = TypeVar("T")


class DeploymentMemory(Generic[T]):
    """A bounded, thread-safe map from (endpoint host, deployment) to what was learnt of that deployment."""

    def __init__(self, limit: int = MAX_DEPLOYMENTS) -> None:
        self.limit = limit
        self._items: dict[tuple[str, str], T] = {}
        self._lock = threading.Lock()

    def get(self, endpoint_host: str, deployment: str) -> T | None:
        with self._lock:
            return self._items.get((endpoint_host, deployment))

    def put(self, endpoint_host: str, deployment: str, value: T,
            merge: Callable[[T, T], T] | None = None) -> T:
        """Keep ``value`` as the newest entry (``merge(old, new)`` combines it with what was kept); returns what
        is kept."""
        key = (endpoint_host, deployment)
        with self._lock:
            before = self._items.pop(key, None)
            if before is not None and merge is not None:
                value = merge(before, value)
            self._items[key] = value  # the newest last: the oldest goes first past the bound
            while len(self._items) > self.limit:
                del self._items[next(iter(self._items))]
        return value

    def clear(self) -> None:
        """Forget everything (tests, and benchmarks of a first contact)."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


__all__ = ["MAX_DEPLOYMENTS", "DeploymentMemory"]
