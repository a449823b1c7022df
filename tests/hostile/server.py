"""A hostile HTTP server on 127.0.0.1: routes write raw bytes to the socket, when and as slowly
as they like (bodies that never end, headers one byte at a time, 100 MB answers).

Every route gets a :class:`Wire`; writing to a client that gave up, or to any client once the
server is stopping, ends the route (``Gone``), so no thread outlives its test.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.listeners import tcp_listener


class Gone(Exception):
    """The client hung up, or the server is stopping."""


@dataclass
class Wire:
    conn: socket.socket
    stopping: threading.Event
    sent: int = 0

    def send(self, data: bytes) -> None:
        if self.stopping.is_set():
            raise Gone
        try:
            self.conn.sendall(data)
        except OSError as exc:
            raise Gone from exc
        self.sent += len(data)

    def pause(self, seconds: float) -> None:
        if self.stopping.wait(seconds):
            raise Gone


Route = Callable[[Wire], None]


@dataclass
class HostileServer:
    routes: dict[str, Route]
    host: str = "127.0.0.1"
    port: int = 0
    hits: list[str] = field(default_factory=list)
    #: The request heads (request line and headers) as received, in order.
    heads: list[bytes] = field(default_factory=list)
    #: Bytes each finished route managed to send (route path -> total).
    sent: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"


def _read_request(conn: socket.socket) -> tuple[str, bytes]:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    return (parts[1] if len(parts) > 1 else "/"), data.split(b"\r\n\r\n", 1)[0]


@contextmanager
def hostile_server(routes: dict[str, Route], host: str = "127.0.0.1"
                   ) -> Iterator[HostileServer]:
    """Serve ``routes`` on ``host`` (any 127.x.y.z: Linux routes the whole block to lo)."""
    state = HostileServer(routes, host)
    stopping = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            path = ""
            wire = Wire(conn, stopping)
            try:
                path, head = _read_request(conn)
                state.hits.append(path)
                state.heads.append(head)
                route = state.routes.get(path) or state.routes.get(path.split("?")[0])
                if route is None:
                    wire.send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                else:
                    route(wire)
            except (Gone, OSError):
                pass
            finally:
                state.sent[path] = state.sent.get(path, 0) + wire.sent

    with tcp_listener(handle, host, stopping=stopping) as port:
        state.port = port
        yield state


# --- routes ------------------------------------------------------------------------------


def respond(body: bytes, *, status: str = "200 OK", headers: dict[str, str] | None = None
            ) -> Route:
    """A plain, complete answer."""

    def route(wire: Wire) -> None:
        lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        wire.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    return route


def redirect(location: str, status: str = "302 Found") -> Route:
    return respond(b"", status=status, headers={"Location": location})


def huge(total: int, *, declare_length: bool, chunk: int = 64 * 1024) -> Route:
    """``total`` bytes of feed-looking data, with or without Content-Length."""

    def route(wire: Wire) -> None:
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
        head += f"Content-Length: {total}\r\n" if declare_length else "Connection: close\r\n"
        wire.send(head.encode() + b"\r\n")
        block = b"<rss><channel>" + b"x" * (chunk - 14)
        left = total
        while left > 0:
            wire.send(block[: min(chunk, left)])
            left -= chunk

    return route


def endless_chunks(*, every_s: float = 0.0, size: int = 64 * 1024) -> Route:
    """Transfer-Encoding: chunked that never sends the last chunk."""

    def route(wire: Wire) -> None:
        wire.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n" % size + b"<item>"[:size].ljust(size, b" ") + b"\r\n"
        while True:
            wire.send(piece)
            if every_s:
                wire.pause(every_s)

    return route


def drip(data: bytes, every_s: float) -> Route:
    """``data`` (a whole response) one byte at a time: each read succeeds, none finishes."""

    def route(wire: Wire) -> None:
        for byte in data:
            wire.send(bytes([byte]))
            wire.pause(every_s)

    return route


def slow_start(delay_s: float, route: Route) -> Route:
    """Accept, then say nothing for ``delay_s`` before answering as ``route``."""

    def slow(wire: Wire) -> None:
        wire.pause(delay_s)
        route(wire)

    return slow


def measure(fn: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


def raw(response: bytes) -> Route:
    """``response`` (status line, headers and body) exactly as given: header bytes no
    well-behaved server would send."""

    def route(wire: Wire) -> None:
        wire.send(response)

    return route


def chunked(body: bytes, *, headers: dict[str, str] | None = None, size: int = 16 * 1024
            ) -> Route:
    """``body`` with Transfer-Encoding: chunked, so no Content-Length says how long it is."""

    def route(wire: Wire) -> None:
        lines = ["HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        wire.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for start in range(0, len(body), size):
            piece = body[start:start + size]
            wire.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
        wire.send(b"0\r\n\r\n")

    return route


def until_close(body: bytes, *, headers: dict[str, str] | None = None) -> Route:
    """``body`` with neither Content-Length nor chunking: it ends when the connection does."""

    def route(wire: Wire) -> None:
        lines = ["HTTP/1.1 200 OK", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        wire.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    return route
