"""Session fixtures for the real services: a Kafka broker and the search servers.

They reuse services that are already up (their addresses in the environment or in
``.services/env``) and otherwise start them with ``deploy/local/services.sh``. A service that
cannot be had FAILS the tests that need it: integration tests never skip silently.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from newsmon.config import KafkaSettings, SearchSettings
from newsmon.pipeline.store import DocumentStore, open_store

ROOT = Path(__file__).resolve().parents[1]


def _find_shared() -> Path:
    """The seed article and the eval set live beside the repository (``../shared``). A clone
    made elsewhere (a temporary directory) finds them beside the repository it was cloned
    from; NEWSMON_SHARED_DIR overrides both."""
    if os.environ.get("NEWSMON_SHARED_DIR"):
        return Path(os.environ["NEWSMON_SHARED_DIR"])
    beside = ROOT.parent / "shared"
    if beside.is_dir():
        return beside
    origin = subprocess.run(["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
                            capture_output=True, text=True, check=False).stdout.strip()
    if origin and (candidate := Path(origin).resolve().parent / "shared").is_dir():
        return candidate
    return beside  # missing: the tests that need it fail and say where they looked


SHARED = _find_shared()

SERVICES = ROOT / "deploy" / "local" / "services.sh"
ES8_VERSION = "8.19.9"


@dataclass(frozen=True)
class Service:
    """How to find or start one service: ``services.sh start <name>`` in ``home``."""

    name: str
    env_key: str
    #: Where an already-running instance's address may be given instead.
    override_key: str
    home: Path = ROOT / ".services"
    extra_env: tuple[tuple[str, str], ...] = ()


SERVICES_BY_NAME = {
    "kafka": Service("kafka", "NEWSMON_KAFKA_BOOTSTRAP", "NEWSMON_KAFKA_BOOTSTRAP"),
    "elasticsearch": Service("elasticsearch", "NEWSMON_ELASTICSEARCH_URL",
                             "NEWSMON_ELASTICSEARCH_URL"),
    "opensearch": Service("opensearch", "NEWSMON_OPENSEARCH_URL", "NEWSMON_OPENSEARCH_URL"),
    # The `elasticsearch` 8.x client must serve both server majors: an 8.x server runs
    # beside the 9.x one, from its own services directory.
    "elasticsearch8": Service("elasticsearch", "NEWSMON_ELASTICSEARCH_URL",
                              "NEWSMON_ELASTICSEARCH8_URL", ROOT / ".services-es8",
                              (("NEWSMON_ES_VERSION", ES8_VERSION),)),
}
#: Test parameter -> backend; every search-server test runs once on each.
SEARCH_SERVERS = {"elasticsearch": "elasticsearch", "elasticsearch8": "elasticsearch",
                  "opensearch": "opensearch"}
_used: dict[str, str] = {}


def _env_file(home: Path) -> dict[str, str]:
    path = home / "env"
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def services_home() -> Path:
    """The services directory of the shared instances (services.sh's default)."""
    return Path(os.environ.get("NEWSMON_SERVICES_HOME") or ROOT / ".services")


@functools.cache
def local_helpers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("newsmonlocal_helpers",
                                                  ROOT / "deploy" / "local" / "helpers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def elasticsearch_files(home: Path, version: str) -> Path:
    """Where the Elasticsearch of services directory ``home`` keeps its files, with
    distribution ``version`` fetched and unpacked there (``services.sh prepare``), by a path
    the user Elasticsearch runs as can reach: the relocation of deploy/local/helpers.py
    (es_base), the one definition services.sh uses too. For tests that start an
    Elasticsearch of their own; fails the test when it cannot be had."""
    env = {**os.environ, "NEWSMON_SERVICES_HOME": str(home), "NEWSMON_ES_VERSION": version,
           "NEWSMON_ES_SECURITY": "0"}
    proc = subprocess.run(["bash", str(SERVICES), "prepare", "elasticsearch"], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        pytest.fail(f"Elasticsearch {version} could not be prepared by {SERVICES} in {home}:\n"
                    f"{proc.stderr[-3000:]}", pytrace=False)
    files: Path = local_helpers().es_base(home)
    return files


def _service(name: str) -> str:
    """The address of a running service, starting it if needed; fails the test otherwise."""
    spec = SERVICES_BY_NAME[name]
    home = spec.home
    if spec.home == ROOT / ".services":
        home = services_home()
    address = os.environ.get(spec.override_key) or _env_file(home).get(spec.env_key)
    if not address:
        env = {**os.environ, "NEWSMON_SERVICES_HOME": str(home), **dict(spec.extra_env)}
        proc = subprocess.run(
            ["bash", str(SERVICES), "start", spec.name],
            capture_output=True, text=True, timeout=600, check=False, env=env,
        )
        address = _env_file(home).get(spec.env_key)
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


@pytest.fixture(scope="session", params=sorted(SEARCH_SERVERS))
def search_server(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(backend, url) for every search server; each test using it runs once per server."""
    server: str = request.param
    return SEARCH_SERVERS[server], _service(server)


@pytest.fixture
def search_settings(search_server: tuple[str, str]) -> Iterator[SearchSettings]:
    """Settings with a fresh index prefix; the test's indices are deleted afterwards."""
    backend, url = search_server
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield SearchSettings(backend=backend, url=url, index_prefix=prefix,  # type: ignore[arg-type]
                         bulk_batch_size=200)
    httpx.delete(f"{url}/{prefix}-*", timeout=30)
    httpx.delete(f"{url}/_index_template/{prefix}-*", timeout=30)


def produce(kafka: KafkaSettings, payloads: Sequence[tuple[str, bytes]]) -> None:
    """Publish ``(key, value)`` records to the raw topic and wait until the broker has them."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    for key, value in payloads:
        producer.send(kafka.raw_topic, key=key.encode(), value=value)
    producer.flush()
    producer.close()


@pytest.fixture
def server_store(search_settings: SearchSettings) -> Iterator[DocumentStore]:
    """The document store on each real search server, under the test's own index prefix."""
    store = open_store(search_settings, Path("unused"))
    yield store
    store.close()


@pytest.fixture
def no_newsmon_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No NEWSMON_* variable of the shell that runs the tests reaches the test's settings."""
    for var in list(os.environ):
        if var.startswith("NEWSMON_"):
            monkeypatch.delenv(var)


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
