"""Session fixtures for the real services: a Kafka broker and the search servers.

They reuse services that are already up (their addresses in the environment or in
``.services/env``) and otherwise start them with ``deploy/local/services.sh``. A service that
cannot be had FAILS the tests that need it: integration tests never skip silently.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from newsmon.pipeline.config import KafkaSettings, SearchSettings

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SERVICES = ROOT / "deploy" / "local" / "services.sh"
ENV_KEYS = {
    "kafka": "NEWSMON_KAFKA_BOOTSTRAP",
    "elasticsearch": "NEWSMON_ELASTICSEARCH_URL",
    "opensearch": "NEWSMON_OPENSEARCH_URL",
}
SEARCH_SERVERS = ("elasticsearch", "opensearch")
_used: dict[str, str] = {}


def _env_file() -> dict[str, str]:
    home = Path(os.environ.get("NEWSMON_SERVICES_HOME", ROOT / ".services"))
    path = home / "env"
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _service(name: str) -> str:
    """The address of a running service, starting it if needed; fails the test otherwise."""
    key = ENV_KEYS[name]
    address = os.environ.get(key) or _env_file().get(key)
    if not address:
        proc = subprocess.run(
            ["bash", str(SERVICES), "start", name],
            capture_output=True, text=True, timeout=600, check=False,
        )
        address = _env_file().get(key)
        if proc.returncode != 0 or not address:
            pytest.fail(
                f"{name} is needed and could not be started by {SERVICES}:\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
                pytrace=False,
            )
    _used[name] = address
    return address


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return _service("kafka")


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Fresh topic and group names per test, on the shared broker."""
    tag = uuid.uuid4().hex[:8]
    return KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        raw_topic=f"test-raw-{tag}",
        dead_letter_topic=f"test-dead-{tag}",
        group_id=f"test-group-{tag}",
    )


@pytest.fixture(scope="session", params=SEARCH_SERVERS)
def search_server(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(backend, url) for every search server; each test using it runs once per server."""
    backend: str = request.param
    return backend, _service(backend)


@pytest.fixture
def search_settings(search_server: tuple[str, str]) -> Iterator[SearchSettings]:
    """Settings with a fresh index prefix; the test's indices are deleted afterwards."""
    backend, url = search_server
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield SearchSettings(backend=backend, url=url, index_prefix=prefix,  # type: ignore[arg-type]
                         bulk_batch_size=200)
    httpx.delete(f"{url}/{prefix}-*", timeout=30)
    httpx.delete(f"{url}/_index_template/{prefix}-*", timeout=30)


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the seed article and eval set live there",
                    pytrace=False)
    return SHARED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _used:
        terminalreporter.section("real services used")
        for name, address in sorted(_used.items()):
            version = ""
            if name in SEARCH_SERVERS:
                try:
                    info = httpx.get(f"{address}/_nodes/_local/info", timeout=5).json()
                    node = next(iter(info["nodes"].values()))
                    version = f" ({node.get('version')})"
                except (httpx.HTTPError, KeyError, ValueError, StopIteration):
                    version = " (version unknown)"
            terminalreporter.write_line(f"{name}: {address}{version}")
