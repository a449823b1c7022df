"""A tiny threaded HTTP server on 127.0.0.1 for tests: routes map a path to a response."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Response:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Route = Response | Callable[[BaseHTTPRequestHandler], Response]


@dataclass
class LocalServer:
    routes: dict[str, Route]
    port: int = 0
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def serve(routes: dict[str, Route]) -> Iterator[LocalServer]:
    server_state = LocalServer(routes)

    class Handler(BaseHTTPRequestHandler):
        def _respond(self) -> None:
            server_state.requests.append((self.command, self.path, dict(self.headers)))
            route = server_state.routes.get(self.path) or server_state.routes.get(
                self.path.split("?")[0]
            )
            if route is None:
                resp = Response(b"not found", 404)
            elif isinstance(route, Response):
                resp = route
            else:
                resp = route(self)
            self.send_response(resp.status)
            for key, value in resp.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            self.wfile.write(resp.body)

        do_GET = _respond
        do_POST = _respond

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
