"""Fixtures of the connector tests (the service fixtures live in tests/conftest.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.connectors.server import LocalServer, serve


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A local HTTP server on 127.0.0.1 with no routes yet."""
    with serve() as local:
        yield local


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
