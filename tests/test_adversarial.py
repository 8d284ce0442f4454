"""Adversarial inputs, each in a fresh process under a memory cap and a time limit (the table is in
tests/adversarial_cases.py): none may hang, exhaust memory or end in a traceback; a refusal is one line that
names the input, and nothing refused is sent or cached. The memory cap (address space) and the time limit are
guards that turn a hang or a runaway allocation into a failure, not measurements."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.adversarial_cases import CASES

CHILD = Path(__file__).with_name("adversarial_cases.py")
ROOT = Path(__file__).resolve().parent.parent
MEMORY_CAP = 3 << 30  # address space: the interpreter with numpy, PyAV, pandas and IPython reserves ~1.2 GB
TIME_LIMIT = 120  # seconds; a case needs one or two on an idle machine


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def test_the_table_has_at_least_60_cases_with_unique_ids():
    ids = [c.id for c in CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)
    assert {c.mode for c in CASES} == {"api", "magic"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_adversarial_input(case, emulator, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", AZMM_WARMUP="off")
    before = emulator.count()
    try:
        proc = subprocess.run([sys.executable, str(CHILD), case.id, emulator.url], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=TIME_LIMIT, preexec_fn=_limits)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case.id}: still running after {TIME_LIMIT} s (a hang)")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "Traceback" not in report["output"], report["output"]
    sent = emulator.count() - before
    if case.expect is None:
        assert report["status"] == "ok", report
        assert sent == case.sends, f"{case.id}: {sent} requests sent, expected {case.sends}"
        return
    message = report["message"]
    assert report["status"] == "refused", report
    assert re.search(case.expect, message), message
    assert "\n" not in message and len(message) < 600, message
    assert sent == 0, f"{case.id}: {sent} requests sent for a refused input"
    assert report["cached"] == 0, f"{case.id}: a refused input left {report['cached']} cached answers"
    if case.mode == "magic":  # the notebook shows one UsageError line, no traceback
        assert report["output"].count("UsageError") == 1, report["output"]
