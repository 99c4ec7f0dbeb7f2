"""A real HTTP server on 127.0.0.1 in a background thread, driven by a plain function.

The emulator serves WeCom's API and admin API through it, the local stack serves the
template's HTTP API through it, and tests use it for throw-away callback receivers.
It is the stdlib ``ThreadingHTTPServer``: no dependency, a real socket any client
(curl, requests, the project's code) can use. Request lines are not logged: their query
strings carry tokens and signatures.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["HOST", "BackgroundHTTPServer", "HttpRequest", "HttpResponse"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAX_BODY = 1024 * 1024

_HOP_BY_HOP = frozenset({"content-length", "connection", "transfer-encoding"})


@dataclass(frozen=True)
class HttpRequest:
    """A request as received: headers lower-cased, repeated ones joined with commas."""

    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes
    client_ip: str


@dataclass(frozen=True)
class HttpResponse:
    """``content_type`` None: only what ``headers`` says (pairs allow repeated names, e.g. Set-Cookie)."""

    status: int
    body: bytes = b""
    content_type: str | None = "text/plain; charset=utf-8"
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = field(default_factory=dict)


Handler = Callable[[HttpRequest], HttpResponse]
Reject = Callable[[int, str], HttpResponse]


def _plain_rejection(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, message.encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, owner: BackgroundHTTPServer) -> None:
        self.owner = owner
        super().__init__((HOST, port), _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "nginx"
    sys_version = ""

    def _dispatch(self) -> None:
        owner = self.server.owner
        path, _, query = self.path.partition("?")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._send(owner.reject(411, "Length Required"))
            return
        length = self.headers.get("Content-Length")
        try:
            size = int(length) if length else 0
        except ValueError:
            size = -1
        if size < 0 or size > owner.max_body:
            self._send(
                owner.reject(413 if size > 0 else 400, "Request Entity Too Large" if size > 0 else "Bad Request")
            )
            return
        body = self.rfile.read(size) if size else b""
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        request = HttpRequest(self.command, path, query, headers, body, self.client_address[0])
        try:
            response = owner.handler(request)
        except Exception as exc:
            log.exception("handler failed on %s %s (%s)", self.command, path, type(exc).__name__)
            response = owner.reject(500, "Internal Server Error")
        try:
            self._send(response)
        except (BrokenPipeError, ConnectionResetError):
            # The client stopped waiting (WeCom's 1 s deadline, a timeout): what API Gateway
            # does too -- the answer is dropped, the work is done. Not a server error.
            log.info("client gone before the answer to %s %s", self.command, path)
            self.close_connection = True

    def _send(self, response: HttpResponse) -> None:
        pairs = list(response.headers.items()) if isinstance(response.headers, Mapping) else list(response.headers)
        self.send_response(response.status)
        if response.content_type is not None and not any(n.lower() == "content-type" for n, _ in pairs):
            self.send_header("Content-Type", response.content_type)
        for name, value in pairs:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default writes request lines (with tokens in the query) to stderr."""


class BackgroundHTTPServer:
    """Serve ``handler`` on ``127.0.0.1:port`` (0 = ephemeral) until :meth:`stop`.

    The socket is bound on first need (:attr:`port`, :attr:`url` or :meth:`start`), so a
    caller can learn its URL before serving. ``reject`` builds the answers the server gives
    by itself (411, 413, 400, 500 for a handler that raised).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        port: int = 0,
        max_body: int = MAX_BODY,
        reject: Reject = _plain_rejection,
        name: str = "http",
    ) -> None:
        self.handler = handler
        self.max_body = max_body
        self.reject = reject
        self._requested_port = port
        self._name = name
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _bound(self) -> _Server:
        if self._server is None:
            self._server = _Server(self._requested_port, self)
        return self._server

    def start(self) -> BackgroundHTTPServer:
        if self._thread is not None:
            raise RuntimeError("already started")
        server = self._bound()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=self._name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        if thread is not None:
            server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def port(self) -> int:
        return int(self._bound().server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> BackgroundHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
