"""Run the emulator on a loopback port: in a background thread (:class:`EmulatorServer`) or a subprocess.

The socket is bound here, before uvicorn starts, so the URL is known at once; ``port=0`` picks a free port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from .app import EmulatorConfig, RequestLog, create_app

__all__ = ["EmulatorConfig", "EmulatorServer", "bind_socket", "start_subprocess", "url_for"]


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free port chosen by the OS)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto is TCP (proto 0 kept Nagle on,
    # which cost ~40 ms of delayed-ACK wait per response)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # for a picked port too: the emulator can then be started again on the port it picked (its old
        # connections in TIME_WAIT would otherwise hold that port for a minute)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_for(sock: socket.socket) -> str:
    """``http://host:port`` for a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _wait_healthy(url: str, timeout: float) -> None:
    """Poll ``GET /_emulator/health`` (bypassing any proxy settings) until it answers 200."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with opener.open(f"{url}/_emulator/health", timeout=1.0) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.02)


class EmulatorServer:
    """The emulator served by uvicorn in a daemon thread on loopback.

    >>> with EmulatorServer(EmulatorConfig(api_key="k")) as server:   # doctest: +SKIP
    ...     client = AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version="2024-10-21")
    """

    def __init__(self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._config = config or EmulatorConfig()
        self._host = host
        self._requested_port = port
        self.app = create_app(self._config)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> str:
        """Start serving (idempotent) and return the base URL once the server answers."""
        if self._thread is not None and self._thread.is_alive():
            assert self._url is not None
            return self._url
        import uvicorn

        self._socket = bind_socket(self._host, self._requested_port)
        self._url = url_for(self._socket)
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            log_config=None,  # embedded: leave the host process's logging configuration alone
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        sock = self._socket
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="azmm-emulator", daemon=True
        )
        self._thread.start()
        try:
            _wait_healthy(self._url, timeout)
        except OSError as e:
            self.stop()
            raise RuntimeError(f"the emulator did not start on {self._url}") from e
        return self._url

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self._url if self.running else "stopped"
        return f"<EmulatorServer {state}>"

    # -- properties ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (pass it as ``azure_endpoint``)."""
        if self._url is None:
            raise RuntimeError("the emulator is not started; call start() first")
        return self._url

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self.url.rsplit(":", 1)[1])

    @property
    def config(self) -> EmulatorConfig:
        """The live configuration (changes apply to the next request)."""
        return self._config

    @property
    def log(self) -> RequestLog:
        """The request log and counters."""
        log: RequestLog = self.app.state.log
        return log

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Copies of the logged requests, oldest first."""
        return self.log.entries()

    @property
    def request_count(self) -> int:
        """Requests seen since start or the last :meth:`reset`."""
        return self.log.count

    def reset(self) -> None:
        """Clear the request log and counters."""
        self.log.reset()


def start_subprocess(
    args: Sequence[str] = (), *, env: dict[str, str] | None = None, timeout: float = 30.0
) -> tuple[subprocess.Popen[str], str]:
    """Run ``python -m azmm_magic.emulator --port 0 ARGS`` and return (process, base URL from its first line).

    The caller owns the process (``proc.terminate(); proc.wait()``). The package's parent directory is put on
    ``PYTHONPATH`` so this also works from a source checkout.
    """
    child_env = dict(os.environ if env is None else env)
    root = str(Path(__file__).resolve().parents[2])
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (root, child_env.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-m", "azmm_magic.emulator", "--port", "0", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=child_env)
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline() if proc.stdout else ""))
    reader.start()
    reader.join(timeout)
    line = first[0].strip() if first else ""
    prefix = "Listening on "
    if not line.startswith(prefix):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"the emulator subprocess did not start (first line: {line!r})")
    return proc, line[len(prefix) :]
