"""The package's static checks, run by the test command (and so by CI): ruff (with the private-import rule),
mypy, and the import contract (layers point down, the emulator stands beside them, no cycles)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "ruff"), "check", "azmm_magic"],
        [sys.executable, "-m", "mypy"],
        [str(BIN / "lint-imports")],
    ],
    ids=["ruff", "mypy", "import-contract"],
)
def test_static_check_passes(command):
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command[-2:])} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"


def test_the_package_is_typed():
    assert (ROOT / "azmm_magic" / "py.typed").is_file()
