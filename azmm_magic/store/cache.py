"""Answer caches. The key is the sha256 of a canonical JSON of everything that decides the answer.

Only successful, complete answers are stored (the client never calls :meth:`put` for an error or a cut
stream). Entries are JSON-able dicts (see ``VisionResult.to_cache``); they never contain a secret, since no
secret is part of the request payload the key is computed from.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from azmm_magic.core.errors import AzureVisionError, ConfigError
from azmm_magic.core.files import replaced_atomically


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

    def entries(self) -> list[tuple[str, dict[str, Any]]]:
        """(key, entry) pairs, oldest first (used by ``cache export`` / ``cache list``)."""
        with self._lock:
            items = list(self._data.items())
        return [(key, json.loads(raw)) for key, raw in items]


# ----- persistent cache (SQLite) ----------------------------------------------------------------------------------
EXPORT_VERSION = 1
PROMPT_PREVIEW_CHARS = 200

# Numbered migrations: version -> SQL. Applied in order, each in its own transaction, recorded in `migrations`.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE entries (
            key        TEXT PRIMARY KEY,
            replay_key TEXT NOT NULL DEFAULT '',
            entry      TEXT NOT NULL,
            created    REAL NOT NULL,
            deployment TEXT NOT NULL DEFAULT '',
            endpoint   TEXT NOT NULL DEFAULT '',
            prompt     TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX entries_replay_key ON entries (replay_key);
        CREATE INDEX entries_created ON entries (created);
        """,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


class ReplayMissError(AzureVisionError):
    """Replay mode found no recorded answer for a request (it never calls the service)."""


def default_cache_path(env: Mapping[str, str] | None = None) -> Path:
    """``$AZMM_CACHE_PATH``, else ``$XDG_CACHE_HOME/azmm_magic/cache.sqlite``, else ``~/.cache/azmm_magic/cache.sqlite``."""
    env = os.environ if env is None else env
    if env.get("AZMM_CACHE_PATH"):
        return Path(env["AZMM_CACHE_PATH"]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "azmm_magic" / "cache.sqlite"


def _meta(entry: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(replay_key, deployment, endpoint host, prompt preview) of an entry."""
    return (
        str(entry.get("replay_key") or ""),
        str(entry.get("deployment") or ""),
        str(entry.get("endpoint_host") or ""),
        str(entry.get("prompt") or "")[:PROMPT_PREVIEW_CHARS],
    )


#: What an imported entry may hold: field -> (types, longest text); anything else in an entry is dropped.
_TEXT_FIELDS: Mapping[str, tuple[int, bool]] = {  # field -> (longest, may be null)
    "text": (2_000_000, False), "deployment": (256, False), "model": (256, False), "finish_reason": (64, True),
    "request_id": (256, True), "prompt": (1_000, False), "endpoint_host": (512, False),
}
_USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens")
MAX_NOTICES, MAX_NOTICE_CHARS, MAX_FILTER_CHARS = 50, 1_000, 20_000
#: Timestamps an import accepts (1970 to 2100): ``cache list`` shows them as dates.
LATEST_CREATED = 4_102_444_800.0


def _finite_json(value: Any, depth: int = 0) -> bool:
    """Only JSON values with finite numbers, at most 8 levels deep."""
    if depth > 8:
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _finite_json(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_finite_json(v, depth + 1) for v in value)
    return value is None or isinstance(value, str | int | bool)


def _check_entry(key: Any, entry: Any) -> str | None:
    """Why ``(key, entry)`` is not a valid cache entry, or None: every field's type, size and range (an entry
    that passes can be shown and looked up; one that does not is never stored)."""
    if not isinstance(key, str) or len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        return "the key is not a 64-character hex sha256"
    if not isinstance(entry, Mapping) or not isinstance(entry.get("text"), str):
        return "the entry has no answer text"
    for name, (longest, nullable) in _TEXT_FIELDS.items():
        value = entry.get(name, "" if not nullable else None)
        if not (isinstance(value, str) or (nullable and value is None)):
            return f"the entry's {name} is not a string"
        if isinstance(value, str) and len(value) > longest:
            return f"the entry's {name} is longer than {longest:,} characters"
    usage = entry.get("usage", {})
    if not isinstance(usage, Mapping) or set(usage) - {*_USAGE_FIELDS, "reported"}:
        return "the entry's usage is not an object of token counts"
    if type(usage.get("reported", True)) is not bool:
        return "the entry's usage.reported is not true or false"
    if not all(type(v) is int and 0 <= v <= 10**9 for k, v in usage.items() if k != "reported"):
        return "the entry's usage counts are not whole numbers from 0 to 1e9"
    elapsed = entry.get("elapsed", 0.0)
    if type(elapsed) not in (int, float) or not math.isfinite(elapsed) or not 0 <= elapsed <= 86_400:
        return "the entry's elapsed is not a number of seconds from 0 to 86400"
    notices = entry.get("notices", [])
    if not isinstance(notices, list) or len(notices) > MAX_NOTICES or not all(
            isinstance(n, str) and len(n) <= MAX_NOTICE_CHARS for n in notices):
        return f"the entry's notices are not a list of at most {MAX_NOTICES} short strings"
    filters = entry.get("content_filter", {})
    if not isinstance(filters, Mapping) or not _finite_json(filters) or len(canonical_json(filters)) > MAX_FILTER_CHARS:
        return "the entry's content_filter is not a small JSON object"
    replay = entry.get("replay_key")
    if replay is not None and (not isinstance(replay, str) or len(replay) != 64
                               or any(c not in "0123456789abcdef" for c in replay)):
        return "the entry's replay_key is not a 64-character hex sha256"
    return None


def _check_created(created: Any) -> str | None:
    if created is None:
        return None
    if type(created) not in (int, float) or not math.isfinite(created) or not 0 <= created <= LATEST_CREATED:
        return "created is not a time from 1970 to 2100 (seconds)"
    return None


#: The fields an entry keeps (see VisionResult.to_cache); others in an imported entry are dropped.
ENTRY_FIELDS = (*_TEXT_FIELDS, "usage", "elapsed", "notices", "content_filter", "replay_key")


class SQLiteCache:
    """Answers kept across kernel restarts in one SQLite file.

    Versioned schema (numbered migrations recorded in the ``migrations`` table), WAL journal, one transaction per
    write (a crash never leaves a half-written entry visible), file created readable by its owner only (0600).
    Each entry records when it was stored, the deployment, the endpoint host and a prompt preview. Safe to use
    from several threads and several processes at once. ``replay=True`` marks a store used in replay mode:
    lookups also match entries recorded at another endpoint, and the pipeline stores nothing in it; the file is
    still opened for writing, so recorded answers can be imported into it (``cache import``, the way to fill it).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, replay: bool = False, timeout: float = 30.0) -> None:
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self.kind = "replay" if replay else "sqlite"
        self.replay = replay
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._conn = self._open(timeout)

    # ----- opening and migrating -------------------------------------------------------------------------------
    def _open(self, timeout: float) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # owner-only before SQLite ever touches it
            os.close(fd)
        except OSError as e:
            raise ConfigError(
                f"Cannot create the answer cache file {self.path} ({e.strerror or e}); set the cache_path setting "
                f"(or AZMM_CACHE_PATH) to a writable place.",
                settings=("cache_path",),
            ) from None
        try:
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: commits survive a process crash
            self._migrate(conn)
        except sqlite3.DatabaseError as e:
            raise ConfigError(
                f"The answer cache file {self.path} is not a usable SQLite database ({e}); move it away or set the "
                f"cache_path setting (or AZMM_CACHE_PATH) to another file.",
                settings=("cache_path",),
            ) from None
        return conn

    @staticmethod
    def _retry_locked(call: Any, attempts: int = 50) -> Any:
        for i in range(attempts):
            try:
                return call()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e) or i == attempts - 1:
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")  # pragma: no cover

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied REAL NOT NULL)")
        current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM migrations").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise ConfigError(
                f"The answer cache file {self.path} has schema version {current}, newer than this azmm_magic "
                f"understands ({SCHEMA_VERSION}); upgrade azmm_magic or use another cache_path."
            )
        for version, sql in MIGRATIONS:
            if version <= current:
                continue
            self._retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                # another process may have applied it while we waited for the lock
                if conn.execute("SELECT 1 FROM migrations WHERE version = ?", (version,)).fetchone() is None:
                    for statement in filter(str.strip, sql.split(";")):
                        conn.execute(statement)
                    conn.execute("INSERT INTO migrations (version, applied) VALUES (?, ?)", (version, time.time()))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # ----- the Cache protocol ----------------------------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        """The entry stored under ``key`` (in replay mode also an entry whose endpoint-free key is ``key``)."""
        sql = "SELECT entry FROM entries WHERE key = ?"
        args: tuple[str, ...] = (key,)
        if self.replay:
            sql = "SELECT entry FROM entries WHERE key = ? OR replay_key = ? ORDER BY created DESC LIMIT 1"
            args = (key, key)
        with self._lock:
            row = self._conn.execute(sql, args).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, entry: Mapping[str, Any]) -> None:
        """Store ``entry`` under ``key`` in one transaction (atomic: it is there whole, or not at all)."""
        self.put_many([(key, entry, None)])

    def put_many(self, items: Iterable[tuple[str, Mapping[str, Any], float | None]]) -> int:
        """Store several (key, entry, created or None = now) in ONE transaction; returns how many."""
        rows = []
        for key, entry, created in items:
            replay_key, deployment, endpoint, prompt = _meta(entry)
            rows.append((key, replay_key, canonical_json(entry), created or time.time(), deployment, endpoint, prompt))
        if not rows:
            return 0
        with self._lock:
            self._retry_locked(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO entries (key, replay_key, entry, created, deployment, endpoint, prompt) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return len(rows)

    def clear(self) -> int:
        with self._lock:
            n = self._conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            self._conn.execute("DELETE FROM entries")
            self.hits = self.misses = 0
        return int(n)

    def stats(self) -> CacheStats:
        with self._lock:
            n = self._conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            return CacheStats(self.hits, self.misses, int(n), self.kind)

    def __len__(self) -> int:
        return self.stats().entries

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return self._conn.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone() is not None

    # ----- listing -----------------------------------------------------------------------------------------------
    def rows(self) -> Iterator[dict[str, Any]]:
        """Every entry with its metadata, oldest first: key, created, deployment, endpoint, prompt, entry."""
        with self._lock:
            found = self._conn.execute(
                "SELECT key, created, deployment, endpoint, prompt, entry FROM entries ORDER BY created, key"
            ).fetchall()
        for key, created, deployment, endpoint, prompt, entry in found:
            yield {"key": key, "created": created, "deployment": deployment, "endpoint": endpoint,
                   "prompt": prompt, "entry": json.loads(entry)}

    def entries(self) -> list[tuple[str, dict[str, Any]]]:
        return [(row["key"], row["entry"]) for row in self.rows()]

    def deployments(self) -> list[str]:
        """Deployments that have recorded answers (named in replay-miss messages)."""
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT deployment FROM entries ORDER BY 1")]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SQLiteCache({str(self.path)!r}, kind={self.kind!r})"


# ----- export / import (JSON lines, portable between machines) -------------------------------------------------------
def cache_rows(cache: Any) -> list[dict[str, Any]]:
    """Rows (key, created, deployment, endpoint, prompt, entry) of a memory or SQLite cache."""
    if hasattr(cache, "rows"):
        return list(cache.rows())
    out = []
    for key, entry in cache.entries():
        replay_key, deployment, endpoint, prompt = _meta(entry)
        out.append({"key": key, "created": entry.get("created"), "deployment": deployment, "endpoint": endpoint,
                    "prompt": prompt, "entry": entry})
    return out


def export_jsonl(cache: Any, path: str | os.PathLike[str]) -> int:
    """Write every entry of ``cache`` to ``path`` as JSON lines (written to a temp file, then renamed; removed on failure)."""
    path = Path(path)
    rows = cache_rows(cache)
    # a temp file beside it, owner-only (answers are as private as the cache), never left behind on failure
    with replaced_atomically(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            record = {"v": EXPORT_VERSION, "key": row["key"], "created": row["created"], "entry": row["entry"]}
            f.write(canonical_json(record) + "\n")
    return len(rows)


@dataclass(frozen=True)
class ImportReport:
    """What ``cache import`` did: entries imported, lines skipped and why (first few)."""

    imported: int
    skipped: int
    problems: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"Imported {self.imported} answer(s)"
        if self.skipped:
            text += f"; skipped {self.skipped} unusable line(s): " + "; ".join(self.problems)
        return text + "."


def import_jsonl(cache: Any, path: str | os.PathLike[str]) -> ImportReport:
    """Read a ``cache export`` file into ``cache`` (one transaction for a SQLite cache). Bad lines are skipped
    and reported; good ones are kept."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"cache import: no file {str(path)!r}; give the path of a `cache export` file.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cache import: cannot read {str(path)!r} ({e}).") from None
    good: list[tuple[str, Mapping[str, Any], float | None]] = []
    problems: list[str] = []
    skipped = 0
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            why = None if isinstance(record, dict) else "not a JSON object"
        except ValueError:
            record, why = None, "not valid JSON"
        if why is None and record.get("v") != EXPORT_VERSION:
            why = f"unknown export version {record.get('v')!r}"
        if why is None:
            why = _check_entry(record.get("key"), record.get("entry")) or _check_created(record.get("created"))
        if why is not None:
            skipped += 1
            if len(problems) < 3:
                problems.append(f"line {n}: {why}")
            continue
        created = record.get("created")
        entry = {name: record["entry"][name] for name in ENTRY_FIELDS if name in record["entry"]}
        good.append((record["key"], entry, float(created) if created is not None else None))
    if hasattr(cache, "put_many"):
        imported = cache.put_many(good)
    else:
        for key, kept, _ in good:
            cache.put(key, kept)
        imported = len(good)
    if not good and skipped:
        raise ConfigError(f"cache import: {path} has no usable answers ({'; '.join(problems)}).")
    return ImportReport(imported, skipped, tuple(problems))


def open_cache(kind: str, path: str | os.PathLike[str] | None = None) -> Cache | None:
    """The cache for a ``cache`` setting: ``memory`` → a new :class:`MemoryCache`, ``sqlite``/``replay`` → a
    :class:`SQLiteCache` at ``path`` (default :func:`default_cache_path`), ``off`` → None."""
    if kind == "off":
        return None
    if kind == "memory":
        return MemoryCache()
    if kind in ("sqlite", "replay"):
        return SQLiteCache(path, replay=kind == "replay")
    raise ConfigError(f"Unknown cache kind {kind!r}; use memory, sqlite, replay or off.")
