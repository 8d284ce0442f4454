"""``%load_ext azmm_magic`` in a fresh process: wall time beyond a bare IPython shell, and what it imports."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

from common import Context, Row, child_env, median, ms

HEAVY = ("openai", "PIL", "matplotlib", "numpy", "starlette", "uvicorn")

_SHELL = """
import sys, time
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
cfg = Config(); cfg.HistoryManager.enabled = False
sh = InteractiveShell.instance(config=cfg)
"""
_LOAD = """
import json, threading

class Recorder:  # sees every module imported for the first time, and by which thread (the warm-up runs beside)
    main = []
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if threading.current_thread() is threading.main_thread():
            cls.main.append(name)
        return None

sys.meta_path.insert(0, Recorder)
t = time.perf_counter()
sh.run_line_magic("load_ext", "azmm_magic")
took = time.perf_counter() - t
sys.meta_path.remove(Recorder)
print(json.dumps({"in_process": took, "new": sorted(set(Recorder.main))}), flush=True)
"""
# both end here, so interpreter teardown (longer with more modules loaded) is not counted as load time
_EXIT = """
import os
os._exit(0)
"""


def _wall(code: str, cwd: str) -> tuple[float, str]:
    # bytecode as an installed package has it (pip compiles on install); kept out of the checkout
    env = child_env(PYTHONPYCACHEPREFIX=f"{cwd}/pycache")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - started, out


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    runs = 3 if ctx.quick else 15
    bare, loaded, inside = [], [], []
    new: list[str] = []
    with tempfile.TemporaryDirectory() as cwd:
        _wall(_SHELL + _LOAD + _EXIT, cwd)  # warm the OS file cache and .pyc files
        for _ in range(runs):  # interleaved, so drift hits both sides alike
            bare.append(_wall(_SHELL + _EXIT, cwd)[0])
            took, out = _wall(_SHELL + _LOAD + _EXIT, cwd)
            loaded.append(took)
            report = json.loads(out.strip().splitlines()[-1])
            inside.append(report["in_process"])
            new = report["new"]
    own = median(loaded) - median(bare)
    heavy = sorted({m.split(".")[0] for m in new} & set(HEAVY))
    rows = [
        Row(
            "`%load_ext azmm_magic`, fresh process (median wall time minus a bare IPython shell)",
            f"{ms(own)} (in-process: {ms(median(inside))}; bare shell {ms(median(bare))})",
            "≤ 50 ms",
            own <= 0.050,
        ),
        Row(
            "modules imported by `%load_ext` on the main thread (the warm-up imports the rest in the background)",
            f"{len(new)} new; heavy: {', '.join(heavy) or 'none'}",
            f"none of {', '.join(HEAVY)}",
            not heavy,
        ),
    ]
    notes = [f"Modules new in sys.modules after `%load_ext azmm_magic`: {', '.join(new)}"]
    return rows, notes
