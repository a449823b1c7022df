"""A tiny threaded HTTP server on 127.0.0.1 for connector tests.

Routes map a path (with or without its query) to a fixed :class:`Reply` or to a function of
the :class:`Request`; every request is recorded, so a test can assert what was (not) asked.
"""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names


@dataclass(frozen=True)
class Reply:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering (timeouts).
    delay_s: float = 0.0
    #: Gzip the body when the client accepts it.
    gzip: bool = False
    #: Send no Content-Length and close the connection to end the body.
    no_length: bool = False


Route = Reply | Callable[[Request], Reply]


class LocalServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.port = 0
        self._lock = threading.Lock()

    def route(self, path: str, reply: Route) -> None:
        self.routes[path] = reply

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> list[Request]:
        """Requests whose path (query ignored) is ``path``."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _reply(self, request: Request, raw_path: str) -> Reply:
        with self._lock:
            self.requests.append(request)
        route = self.routes.get(raw_path) or self.routes.get(request.path)
        if route is None:
            return Reply(b"not found", 404)
        return route if isinstance(route, Reply) else route(request)


@contextmanager
def serve() -> Iterator[LocalServer]:
    state = LocalServer()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query)),
                headers={k.lower(): v for k, v in self.headers.items()},
            )
            reply = state._reply(request, self.path)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            body = reply.body
            headers = dict(reply.headers)
            if reply.gzip and "gzip" in request.headers.get("accept-encoding", ""):
                body = gzip.compress(body)
                headers["Content-Encoding"] = "gzip"
            self.send_response(reply.status)
            for key, value in headers.items():
                self.send_header(key, value)
            if reply.no_length:
                self.send_header("Connection", "close")
                self.close_connection = True
            elif reply.status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if reply.status != 304:
                # The client may give up (size limit, timeout): what the test wanted.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    # A short poll interval: shutdown() waits for it, once per test.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
