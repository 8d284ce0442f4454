"""`azmm demo`: execute the quickstart notebook headlessly and write it (and an HTML rendering) to a folder.

Without Azure settings the notebook starts the local emulator itself (and says so in its output); with
AZURE_OPENAI_ENDPOINT and a deployment set it asks that Azure deployment.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def find_notebook(name: str) -> Path:
    """A notebook shipped beside the package (source checkout) or inside it (wheel)."""
    for folder in (NOTEBOOKS, Path(__file__).resolve().parent / "notebooks"):
        path = folder / name
        if path.exists():
            return path
    raise FileNotFoundError(f"{name} not found; run the demo from a source checkout of azmm_magic.")


def uses_azure(env: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """True when the environment names an Azure endpoint and deployment (then the demo asks real Azure)."""
    from azmm_magic.core.settings import Settings

    settings = Settings.resolve(env=env)
    return bool(settings.endpoint and settings.deployment)


def execute_notebook(path: Path, out_dir: Path, *, timeout: int = 300, allow_errors: bool = False) -> tuple[Path, Path]:
    """Run ``path`` with nbclient (cwd = its folder) and write ``NAME.ipynb`` and ``NAME.html`` into ``out_dir``."""
    import tempfile

    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="azmm-kernel-") as sockets:
        # local IPC sockets instead of TCP on loopback (no unencrypted ports; Windows has only TCP)
        km = (
            KernelManager(kernel_name="python3")
            if os.name == "nt"
            else KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel"))
        )
        client = NotebookClient(
            nb, km=km, timeout=timeout, allow_errors=allow_errors, resources={"metadata": {"path": str(path.parent)}}
        )
        try:
            client.execute()
        finally:  # nbclient leaves a kernel it did not create running
            if km.has_kernel:
                km.shutdown_kernel(now=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    ipynb = out_dir / path.name
    nbformat.write(nb, ipynb)
    body, _ = HTMLExporter().from_notebook_node(nb)
    html = out_dir / (path.stem + ".html")
    html.write_text(body, encoding="utf-8")
    return ipynb, html


def run_demo(out_dir: str | Path = "demo-output", notebook: str = "quickstart.ipynb") -> int:
    """Execute the quickstart notebook and print where the results are. Returns a process exit code."""
    target = "Azure (AZURE_OPENAI_ENDPOINT is set)" if uses_azure() else "the local emulator (no Azure settings found)"
    print(f"azmm demo: running notebooks/{notebook} against {target} ...", flush=True)
    started = time.perf_counter()
    ipynb, html = execute_notebook(find_notebook(notebook), Path(out_dir))
    print(f"Executed in {time.perf_counter() - started:.1f} s")
    print(f"Notebook: {ipynb.resolve()}")
    print(f"HTML:     {html.resolve()}")
    return 0
