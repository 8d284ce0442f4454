"""Data safety of the SQLite cache: kill -9 mid-batch, concurrent writers, owner-only file.

Figures are printed (run with ``-s`` to see them): kill rounds, corruptions, half-written entries, committed
entries lost, entries lost by concurrent writers.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

from azmm_magic.store.cache import SQLiteCache

ROOT = Path(__file__).resolve().parent.parent
KILL_ROUNDS = 50
WRITERS = 4
PUTS_PER_WRITER = 150
FIELDS = ("text", "usage", "deployment", "model", "finish_reason", "elapsed", "request_id", "content_filter",
          "notices", "prompt", "endpoint_host", "replay_key")

# Writes entries in a loop (one transaction each) and reports each key on stdout once its put returned.
_WRITER = r'''
import hashlib, sys
from azmm_magic.store.cache import SQLiteCache
path, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = SQLiteCache(path)
body = "x" * 20000  # large entries: a kill is likely to land inside a write
for i in range(count if count > 0 else 10**9):
    key = hashlib.sha256(f"{tag}-{i}".encode()).hexdigest()
    store.put(key, {"text": f"{tag} answer {i} " + body, "usage": {"prompt_tokens": i, "completion_tokens": 1,
              "total_tokens": i + 1, "reasoning_tokens": 0}, "deployment": "d", "model": "m",
              "finish_reason": "stop", "elapsed": 0.1, "request_id": None, "content_filter": {}, "notices": [],
              "prompt": f"prompt {i}", "endpoint_host": "h", "replay_key": key})
    print(key, flush=True)
'''


def _check_db(path: Path) -> tuple[bool, int, set[str]]:
    """(integrity ok, half-written entries, keys present) of the database after a crash."""
    with sqlite3.connect(path) as db:
        ok = db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT key, entry, created, deployment, endpoint, prompt FROM entries").fetchall()
    bad = 0
    for key, entry, created, deployment, endpoint, prompt in rows:
        try:
            parsed = json.loads(entry)
            complete = all(f in parsed for f in FIELDS) and parsed["text"].endswith("x" * 20000)
            complete = complete and created > 0 and deployment == "d" and endpoint == "h" and prompt.startswith("prompt")
        except ValueError:
            complete = False
        bad += not complete
    return ok, bad, {r[0] for r in rows}


def test_kill_9_mid_batch_never_corrupts_or_half_writes(tmp_path):
    path = tmp_path / "killed.sqlite"
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    corruptions = half_written = lost_committed = 0
    committed: set[str] = set()
    for round_ in range(KILL_ROUNDS):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"r{round_}", "0"],
                                stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the process is writing
        assert first.strip(), "the writer did not start"
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        committed |= {k for k in (first + rest).split() if len(k) == 64}
        ok, bad, present = _check_db(path)
        corruptions += not ok
        half_written += bad
        lost_committed = len(committed - present)
        SQLiteCache(path).close()  # and it opens through the cache API after every crash
    _, _, present = _check_db(path)
    print(f"\nSQLite cache kill -9: {KILL_ROUNDS} rounds, {corruptions} corruptions, {half_written} half-written "
          f"entries seen, {lost_committed} of {len(committed)} committed entries lost, {len(present)} entries kept")
    assert corruptions == 0 and half_written == 0 and lost_committed == 0
    assert len(committed) >= KILL_ROUNDS


def test_four_writers_at_once_lose_nothing(tmp_path):
    path = tmp_path / "shared.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"w{i}", str(PUTS_PER_WRITER)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(WRITERS)]
    reported: set[str] = set()
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        reported |= set(out.split())
    ok, bad, present = _check_db(path)
    lost = len(reported - present)
    print(f"\nSQLite cache concurrency: {WRITERS} processes × {PUTS_PER_WRITER} puts, {len(present)} entries stored, "
          f"{lost} lost, integrity {'ok' if ok else 'FAILED'}")
    assert ok and bad == 0 and lost == 0 and len(present) == WRITERS * PUTS_PER_WRITER


def test_cache_files_are_owner_only_even_with_a_lax_umask(tmp_path):
    old = os.umask(0o000)
    try:
        store = SQLiteCache(tmp_path / "new" / "c.sqlite")
        store.put("b" * 64, {"text": "t"})
        files = [tmp_path / "new" / n for n in ("c.sqlite", "c.sqlite-wal", "c.sqlite-shm")]
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files if f.exists()}
        store.close()
    finally:
        os.umask(old)
    assert modes["c.sqlite"] == 0o600 and all(m == 0o600 for m in modes.values()), modes
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
