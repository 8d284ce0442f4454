"""Answer caches. The key is the sha256 of a canonical JSON of everything that decides the answer.

Only successful, complete answers are stored (the client never calls :meth:`put` for an error or a cut
stream). Entries are JSON-able dicts (see ``VisionResult.to_cache``); they never contain a secret, since no
secret is part of the request payload the key is computed from.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


def canonical_json(payload: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: equal payloads give equal strings."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def cache_key(payload: Mapping[str, Any]) -> str:
    """Hex sha256 of :func:`canonical_json` of ``payload``."""
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    entries: int
    kind: str


class Cache(Protocol):
    """What the client needs from a cache."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, entry: Mapping[str, Any]) -> None: ...

    def clear(self) -> int: ...

    def stats(self) -> CacheStats: ...


class MemoryCache:
    """Per-session cache in memory (LRU-bounded at ``max_entries``). Thread-safe."""

    kind = "memory"

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            raw = self._data.get(key)
            if raw is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
        return json.loads(raw)

    def put(self, key: str, entry: Mapping[str, Any]) -> None:
        raw = canonical_json(entry)  # stored serialised: callers cannot mutate a cached entry
        with self._lock:
            self._data[key] = raw
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> int:
        with self._lock:
            n = len(self._data)
            self._data.clear()
            self.hits = self.misses = 0
        return n

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self.hits, self.misses, len(self._data), self.kind)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data
