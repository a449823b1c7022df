"""A raw TCP listener on a loopback address for tests that speak below HTTP (a hostile web
server, a TLS handshake recorder): accepts until the block ends, each connection handled in
a thread of its own."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def tcp_listener(handle: Callable[[socket.socket], None], host: str = "127.0.0.1", *,
                 stopping: threading.Event | None = None) -> Iterator[int]:
    """Listen on ``host`` at a free port (yielded) and pass every connection to ``handle``,
    which owns it. On leaving the block, ``stopping`` is set (handlers that stream can watch
    it), the listener closed and every thread joined."""
    stopping = stopping or threading.Event()
    listener = socket.create_server((host, 0), backlog=32)
    listener.settimeout(0.1)
    threads: list[threading.Thread] = []

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=handle, args=(conn,), daemon=True)
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        acceptor.join(5)
        with contextlib.suppress(OSError):
            listener.close()
        for thread in threads:
            thread.join(5)
