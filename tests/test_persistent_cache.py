"""The SQLite cache, replay mode, and cache export/import between separate processes."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from azmm_magic import VisionClient
from azmm_magic.store.cache import (
    SCHEMA_VERSION,
    ReplayMissError,
    SQLiteCache,
    default_cache_path,
    export_jsonl,
    import_jsonl,
)
from azmm_magic.core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_default_path_env_and_xdg(tmp_path):
    assert default_cache_path({"HOME": "/h"}) == Path.home() / ".cache" / "azmm_magic" / "cache.sqlite"
    assert default_cache_path({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "azmm_magic" / "cache.sqlite"
    assert default_cache_path({"AZMM_CACHE_PATH": str(tmp_path / "x.db"), "XDG_CACHE_HOME": "/nope"}) == tmp_path / "x.db"


def test_sqlite_cache_survives_a_new_session_and_records_metadata(shell, emulator, red_png, tmp_path, monkeypatch):
    path = tmp_path / "sub" / "answers.sqlite"
    monkeypatch.setenv("AZMM_CACHE_PATH", str(path))  # the environment variable moves the file
    shell.run_line_magic("config", "AzureVision.cache = 'sqlite'")
    shell.user_ns["img"] = str(red_png)
    first = shell.run_cell_magic("azure_vision", "-i img --no-stream", "Persist me")
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # a separate client (as after a kernel restart) opening the same file answers from it
    client = VisionClient(endpoint=emulator.url, deployment="vision-test", auth="none", cache="sqlite")
    assert client.cache.path == path
    n = emulator.count()
    again = client.ask("Persist me", images=[red_png])
    assert emulator.count() == n and again.cached and again.text == first.text
    (row,) = list(client.cache.rows())
    assert row["deployment"] == "vision-test" and row["endpoint"] == emulator.url.split("//")[1]
    assert row["prompt"] == "Persist me" and row["created"] > 0
    listing = repr(shell.run_line_magic("azure_vision", "cache list"))
    assert "vision-test" in listing and "Persist me" in listing and "1 cached answer(s) (sqlite" in listing
    stats = repr(shell.run_line_magic("azure_vision", "cache"))
    assert "sqlite" in stats and str(path) in stats
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[0] for r in db.execute("SELECT version FROM migrations")] == list(range(1, SCHEMA_VERSION + 1))


def test_cache_path_trait_wins_over_env(shell, emulator, red_png, tmp_path, monkeypatch):
    monkeypatch.setenv("AZMM_CACHE_PATH", str(tmp_path / "env.sqlite"))
    shell.run_line_magic("config", "AzureVision.cache = 'sqlite'")
    shell.run_line_magic("config", f"AzureVision.cache_path = '{tmp_path / 'trait.sqlite'}'")
    shell.user_ns["img"] = str(red_png)
    shell.run_cell_magic("azure_vision", "-i img --no-stream", "q")
    assert (tmp_path / "trait.sqlite").exists() and not (tmp_path / "env.sqlite").exists()


def test_replay_miss_is_a_clear_error_naming_the_prompt_and_needs_no_credentials(tmp_path, red_png):
    client = VisionClient(deployment="gpt-4o", cache="replay", cache_path=str(tmp_path / "r.sqlite"))
    assert client.settings.endpoint is None  # no endpoint, no key: replay never needs them
    with pytest.raises(ReplayMissError, match=r"no recorded answer for the prompt 'What is this chart\?'.*gpt-4o"):
        client.ask("What is this   chart?", images=[red_png])
    with pytest.raises(ReplayMissError):
        list(client.stream("What is this chart?", images=[red_png]))
    with pytest.raises(ReplayMissError):  # --refresh / --no-cache never reach the service either
        client.ask("x", refresh=True)


def test_replay_mode_in_the_magic(shell, emulator, red_png, tmp_path):
    shell.run_line_magic("config", "AzureVision.cache = 'sqlite'")
    shell.run_line_magic("config", f"AzureVision.cache_path = '{tmp_path / 'rec.sqlite'}'")
    shell.user_ns["img"] = str(red_png)
    recorded = shell.run_cell_magic("azure_vision", "-i img --no-stream", "Recorded question")
    shell.run_line_magic("config", "AzureVision.cache = 'replay'")
    shell.run_line_magic("config", "AzureVision.endpoint = 'http://127.0.0.1:9'")  # another endpoint: still replays
    n = emulator.count()
    hit = shell.run_cell_magic("azure_vision", "-i img", "Recorded question")
    assert hit.cached and hit.text == recorded.text
    with pytest.raises(UsageError, match="Replay mode has no recorded answer for the prompt 'Never asked'.*vision-test"):
        shell.run_cell_magic("azure_vision", "-i img", "Never asked")
    assert emulator.count() == n
    with sqlite3.connect(tmp_path / "rec.sqlite") as db:  # replay looks answers up and stores nothing
        assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 1


def test_import_skips_bad_lines_and_keeps_good_ones(tmp_path):
    good = {"v": 1, "key": "a" * 64, "created": 1.0, "entry": {"text": "hi", "deployment": "d"}}
    lines = [json.dumps(good), "not json", json.dumps({**good, "key": "zz"}), json.dumps({**good, "v": 9}), ""]
    (tmp_path / "in.jsonl").write_text("\n".join(lines), encoding="utf-8")
    store = SQLiteCache(tmp_path / "c.sqlite")
    report = import_jsonl(store, tmp_path / "in.jsonl")
    assert report.imported == 1 and report.skipped == 3 and "line 2: not valid JSON" in str(report)
    assert store.get("a" * 64)["text"] == "hi"
    (tmp_path / "bad.jsonl").write_text("garbage\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no usable answers"):
        import_jsonl(store, tmp_path / "bad.jsonl")
    with pytest.raises(ConfigError, match="no file"):
        import_jsonl(store, tmp_path / "missing.jsonl")
    export_jsonl(store, tmp_path / "out.jsonl")
    assert json.loads((tmp_path / "out.jsonl").read_text())["created"] == 1.0


def test_unusable_or_newer_files_give_clear_errors(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="not a usable SQLite database"):
        SQLiteCache(junk)
    newer = tmp_path / "newer.sqlite"
    SQLiteCache(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("INSERT INTO migrations VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(ConfigError, match="newer than this azmm_magic"):
        SQLiteCache(newer)


_PROCESS = textwrap.dedent('''
    import json, sys
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    mode, cache_path, answers_file, endpoint, image = sys.argv[1:6]
    cfg = Config()
    cfg.HistoryManager.enabled = False
    cfg.AzureVision.deployment = "vision-test"
    cfg.AzureVision.cache = mode
    cfg.AzureVision.cache_path = cache_path
    if endpoint != "-":
        cfg.AzureVision.endpoint = endpoint
    sh = InteractiveShell.instance(config=cfg)
    sh.extension_manager.load_extension("azmm_magic")
    sh.user_ns["img"] = image
    if mode == "replay":
        sh.run_line_magic("azure_vision", f"cache import {answers_file}")
    out = []
    out.append(sh.run_cell_magic("azure_vision", "-i img --no-stream", "What colour is the square?"))
    out.append(sh.run_cell_magic("azure_vision", "--chat -i img --no-stream", "Remember this image."))
    out.append(sh.run_cell_magic("azure_vision", "--chat --no-stream", "What did I show you?"))
    if mode == "sqlite":
        sh.run_line_magic("azure_vision", f"cache export {answers_file}")
    print(json.dumps([[r.text, r.cached] for r in out]))
''')


def _run(args, env):
    done = subprocess.run([sys.executable, "-c", _PROCESS, *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout


def test_export_import_round_trip_across_two_processes(emulator, red_png, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "OPENAI_", "AZMM_"))}
    answers = tmp_path / "answers.jsonl"
    recorded, _ = _run(["sqlite", str(tmp_path / "teacher.sqlite"), str(answers), emulator.url, str(red_png)], env)
    assert [cached for _, cached in recorded] == [False, False, False]
    sent = emulator.count()
    lines = answers.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and all(json.loads(line)["entry"]["text"] for line in lines)
    assert CANARY_NOT_IN(answers)
    # a second process: no endpoint, no key, replay only, a fresh cache file
    replayed, stdout = _run(["replay", str(tmp_path / "student.sqlite"), str(answers), "-", str(red_png)], env)
    assert "Imported 3 answer(s)" in stdout
    assert [text for text, _ in replayed] == [text for text, _ in recorded]
    assert all(cached for _, cached in replayed)
    assert emulator.count() == sent  # the replay sent nothing


def CANARY_NOT_IN(path: Path) -> bool:  # noqa: N802 - reads as an assertion
    text = path.read_text(encoding="utf-8")
    return "api-key" not in text.lower() and "sk-" not in text
