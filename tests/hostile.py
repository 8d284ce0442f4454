"""A hostile OpenAI-compatible server on loopback for trust-boundary tests: it answers each route with whatever
the test sets (ids that are paths, malformed lines, huge Retry-After, terminal escapes), over real HTTP, so the
real SDK parses real replies."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, dict[str, str], bytes]


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return status, {"content-type": "application/json", **(headers or {})}, json.dumps(body).encode()


class HostileServer:
    """``routes``: ``(method, path prefix) -> reply or callable(path, body) -> reply``; first match wins.
    ``seen``: (method, path, headers) of every request."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, str, Reply | Callable[[str, bytes], Reply]]] = []
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                for method, prefix, reply in outer.routes:
                    if method == self.command and self.path.split("?")[0].startswith(prefix):
                        status, headers, data = reply(self.path, body) if callable(reply) else reply
                        break
                else:
                    status, headers, data = json_reply({"error": {"message": "no route"}}, 404)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def route(self, method: str, prefix: str, reply: Reply | Callable[[str, bytes], Reply]) -> None:
        self.routes.append((method, prefix, reply))

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(text: str, model: str = "gpt-4o") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}
