"""`azmm demo`: execute a shipped notebook headlessly and write it (and an HTML rendering) to a folder.

Without Azure settings the notebook starts the local emulator itself (and says so in its output); with
AZURE_OPENAI_ENDPOINT and a deployment set it asks that Azure deployment.

The notebooks live in ``notebooks/`` of the source tree (the one source of truth); the wheel carries the same
files as ``azmm_magic/notebooks/`` (hatch ``force-include``), so the demo runs from a plain ``pip install``.
The HTML it writes opens offline: no require.js, MathJax, Mermaid or widget manager from a CDN.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from azmm_magic.core.errors import ConfigError

#: ``notebooks/`` of a source checkout (an editable install imports the package from there).
SOURCE_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

#: The lab template without anything fetched from the network: it inlines its CSS already; the blocks below
#: would add <script src=...> tags pointing at CDNs (require.js, MathJax, Mermaid, the widget manager).
OFFLINE_TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def notebooks_folder() -> Path:
    """The folder of the shipped notebooks: inside the installed package (wheel) or the source checkout's."""
    packaged = Path(__file__).resolve().parents[1] / "notebooks"
    if (packaged / "quickstart.ipynb").exists():
        return packaged
    return SOURCE_NOTEBOOKS


def find_notebook(name: str) -> Path:
    """A shipped notebook by file name (``quickstart.ipynb``; the ``.ipynb`` may be left out)."""
    folder = notebooks_folder()
    path = folder / (name if name.endswith(".ipynb") else name + ".ipynb")
    if path.exists():
        return path
    shipped = ", ".join(sorted(p.name for p in folder.glob("*.ipynb"))) or "none found"
    raise FileNotFoundError(f"{name} is not one of the shipped notebooks ({shipped}).")


#: Modules a shipped notebook may import that a plain install does not bring, and the extra that brings them.
EXTRAS = {"pandas": "notebooks"}


class DemoError(Exception):
    """A demo that cannot run as asked; its message is one line that says what to do."""


def missing_modules(path: Path) -> list[str]:
    """The modules of :data:`EXTRAS` that the notebook at ``path`` imports and this Python cannot import."""
    import importlib.util

    import nbformat

    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    needed = [m for m in EXTRAS if re.search(rf"^\s*(?:import|from)\s+{m}\b", code, re.M)]
    return [m for m in needed if importlib.util.find_spec(m) is None]


def require_modules(path: Path) -> None:
    """Refuse, before a kernel starts, a notebook that needs a module this install lacks (naming the extra)."""
    missing = missing_modules(path)
    if missing:
        extras = ",".join(sorted({EXTRAS[m] for m in missing}))
        raise DemoError(
            f"{path.name} needs {', '.join(missing)}, which is not installed: pip install 'azmm_magic[{extras}]' "
            f"(in a source checkout: .venv/bin/pip install -e '.[{extras}]'), then run the demo again."
        )


def uses_azure(env: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """True when the environment names an Azure endpoint and deployment (then the demo asks real Azure)."""
    from azmm_magic.core.settings import Settings

    settings = Settings.resolve(env=env)
    return bool(settings.endpoint and settings.deployment)


def execute_notebook(path: Path, out_dir: Path, *, timeout: int = 300, allow_errors: bool = False) -> tuple[Path, Path]:
    """Run ``path`` with nbclient (cwd = its folder) and write ``NAME.ipynb`` and ``NAME.html`` into ``out_dir``."""
    import tempfile

    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="azmm-kernel-") as sockets:
        # local IPC sockets instead of TCP on loopback (no unencrypted ports; Windows has only TCP)
        km = (
            AsyncKernelManager(kernel_name="python3")
            if os.name == "nt"
            else AsyncKernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel"))
        )
        # once the last cell has answered, its outputs are in hand and the kernel has nothing left to save (it ran
        # in a scratch copy): it is stopped at once rather than asked to exit, which would wait ~0.6 s while the
        # interpreter tears down the modules of the SDK, matplotlib and numpy
        client = NotebookClient(
            nb, km=km, timeout=timeout, allow_errors=allow_errors, resources={"metadata": {"path": str(path.parent)}},
            shutdown_kernel="immediate",
        )

        async def run() -> None:
            try:
                await client.async_execute()
            finally:  # nbclient leaves a kernel it did not create running, and its client's sockets open
                if client.kc is not None:
                    client.kc.stop_channels()
                if km.has_kernel:
                    await km.shutdown_kernel(now=True)

        _run_in_own_loop(run)
    out_dir.mkdir(parents=True, exist_ok=True)
    ipynb = out_dir / path.name
    nbformat.write(nb, ipynb)
    html = out_dir / (path.stem + ".html")
    html.write_text(export_html(nb), encoding="utf-8")
    return ipynb, html


def _run_in_own_loop(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``main()`` in an event loop of its own, closed afterwards, so that no loop is left behind as this
    thread's current one (nbclient's ``execute()`` would leave one, with the kernel's sockets); in a thread whose
    loop is running (a notebook), in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(main())
        return
    with ThreadPoolExecutor(1, thread_name_prefix="azmm-nbclient") as pool:
        pool.submit(asyncio.run, main()).result()


def export_html(nb: Any) -> str:
    """The notebook as one self-contained HTML page (JupyterLab's look) that loads nothing from the network."""
    import jinja2
    from nbconvert import HTMLExporter

    check_nbconvert()

    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"azmm_offline.html.j2": OFFLINE_TEMPLATE})],
        template_file="azmm_offline.html.j2",
    )
    body, _ = exporter.from_notebook_node(nb)
    return body


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def check_nbconvert() -> None:
    """nbconvert 7.0 to 7.16.4 cannot render Markdown with mistune 3.1 or later (``parse_axt_heading``); older
    (6.4.5, Kaggle's pin, with mistune < 2) and newer nbconvert can. Say so in one line instead of failing deep
    inside nbconvert."""
    from importlib.metadata import version

    nbconvert, mistune = version("nbconvert"), version("mistune")
    if (7,) <= _release(nbconvert) < (7, 16, 5) and _release(mistune) >= (3, 1):
        raise ConfigError(f"nbconvert {nbconvert} cannot export HTML with mistune {mistune}: "
                          "pip install 'nbconvert>=7.16.5' (or 'mistune<3.1').")


def run_demo(out_dir: str | Path = "demo-output", notebook: str = "quickstart.ipynb") -> int:
    """Execute a shipped notebook and print where the results are. Returns a process exit code.

    The notebook runs in a scratch copy of the notebooks folder (with ``teaching-answers.jsonl``), so files it
    writes land neither in the installed package nor in the source tree.
    """
    import tempfile

    source = find_notebook(notebook)
    require_modules(source)
    target = "Azure (AZURE_OPENAI_ENDPOINT is set)" if uses_azure() else "the local emulator (no Azure settings found)"
    print(f"azmm demo: running {source.name} against {target} ...", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="azmm-demo-") as scratch:
        for item in source.parent.iterdir():
            if item.is_file() and item.suffix in (".ipynb", ".jsonl"):
                shutil.copy2(item, scratch)
        ipynb, html = execute_notebook(Path(scratch) / source.name, Path(out_dir))
    print(f"Executed in {time.perf_counter() - started:.1f} s")
    print(f"Notebook: {ipynb.resolve()}")
    print(f"HTML:     {html.resolve()}")
    return 0
