"""A real HTTP server on 127.0.0.1 in a background thread, driven by a plain function.

The emulator serves WeCom's API and its admin API through it, and tests use it for
throw-away callback receivers. It is the stdlib ``ThreadingHTTPServer``: no
dependency, a real socket any client (curl, requests, the project's code) can use.
Request lines are not logged: their query strings carry tokens.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["HOST", "BackgroundHTTPServer", "HttpRequest", "HttpResponse"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes
    client_ip: str


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[HttpRequest], HttpResponse]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, handler: Handler, max_body: int) -> None:
        self.app = handler
        self.max_body = max_body
        super().__init__((HOST, port), _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "nginx"
    sys_version = ""

    def _dispatch(self) -> None:
        path, _, query = self.path.partition("?")
        length = self.headers.get("Content-Length")
        try:
            size = int(length) if length else 0
        except ValueError:
            size = -1
        if size < 0 or size > self.server.max_body:
            self._send(HttpResponse(413 if size > 0 else 400, b"bad request body"))
            return
        body = self.rfile.read(size) if size else b""
        request = HttpRequest(
            method=self.command,
            path=path,
            query_string=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_ip=self.client_address[0],
        )
        try:
            response = self.server.app(request)
        except Exception as exc:
            log.exception("handler failed on %s %s (%s)", self.command, path, type(exc).__name__)
            response = HttpResponse(500, b"internal error")
        self._send(response)

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default writes request lines (with tokens in the query) to stderr."""


class BackgroundHTTPServer:
    """Serve ``handler`` on ``127.0.0.1:port`` (0 = ephemeral) until :meth:`stop`."""

    def __init__(self, handler: Handler, *, port: int = 0, max_body: int = MAX_BODY) -> None:
        self._handler = handler
        self._requested_port = port
        self._max_body = max_body
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> BackgroundHTTPServer:
        if self._server is not None:
            raise RuntimeError("already started")
        self._server = _Server(self._requested_port, self._handler, self._max_body)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> BackgroundHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
