"""A separate Elasticsearch with its security module on: TLS on HTTP (a CA and a node
certificate made by openssl), a file-realm superuser, API keys; and a separate Kafka broker
whose client listener is SASL_SSL (PLAIN and SCRAM-SHA-512 over TLS).

Started by ``deploy/local/services.sh`` with ``NEWSMON_ES_SECURITY=1`` (and
``NEWSMON_KAFKA_SECURITY=1``) in their own services
directory (``.services-secure``), beside the shared plain instances, and stopped at the end of
the session if this session started it. If it cannot be started the tests FAIL, with the
script's output: a security test never skips.
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, SERVICES

SECURE_HOME = Path(os.environ.get("NEWSMON_SECURE_SERVICES_HOME", ROOT / ".services-secure"))


@dataclass(frozen=True)
class SecureElasticsearch:
    url: str
    ca: Path
    user: str
    password: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=ssl.create_default_context(cafile=self.ca),
                            timeout=30, auth=(self.user, self.password))


def _env_file() -> dict[str, str]:
    path = SECURE_HOME / "env"
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _services(command: str, service: str,
              extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEWSMON_SERVICES_HOME": str(SECURE_HOME), **extra}
    return subprocess.run(["bash", str(SERVICES), command, service], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


@contextmanager
def _secure_instance(service: str, switch: str, url_key: str) -> Iterator[dict[str, str]]:
    """Start ``service`` with ``switch``=1 in the secure services directory and yield its env
    lines; stop it afterwards if it was not running before. Fails, never skips."""
    extra = {switch: "1"}
    already = _services("status", service, extra).stdout
    proc = _services("start", service, extra)
    values = _env_file()
    if proc.returncode != 0 or url_key not in values:
        pytest.fail(f"{service} with {switch}=1 could not be started by {SERVICES} "
                    f"(NEWSMON_SERVICES_HOME={SECURE_HOME}):\n{proc.stderr[-4000:]}",
                    pytrace=False)
    yield values
    if not re.search(rf"^{service}\s+ready", already, re.MULTILINE):
        _services("stop", service, extra)  # ours: free its memory for the rest of the suite


def _credentials(values: dict[str, str], prefix: str) -> tuple[Path, str, str]:
    """The CA file, user and password services.sh wrote for a secure instance (``prefix``)."""
    return Path(values[f"{prefix}_CA"]), values[f"{prefix}_USER"], values[f"{prefix}_PASSWORD"]


@pytest.fixture(scope="session")
def secure_es() -> Iterator[SecureElasticsearch]:
    with _secure_instance("elasticsearch", "NEWSMON_ES_SECURITY",
                          "NEWSMON_ELASTICSEARCH_SECURE_URL") as values:
        yield SecureElasticsearch(values["NEWSMON_ELASTICSEARCH_SECURE_URL"],
                                  *_credentials(values, "NEWSMON_ELASTICSEARCH_SECURE"))


@pytest.fixture(scope="session")
def api_key(secure_es: SecureElasticsearch) -> str:
    """An API key (the encoded form clients send), created through the REST API."""
    with secure_es.client() as client:
        response = client.post("/_security/api_key", json={"name": "newsmon-tests"})
    assert response.status_code == 200, response.text
    return str(response.json()["encoded"])


@pytest.fixture
def index_prefix(secure_es: SecureElasticsearch) -> Iterator[str]:
    prefix = f"sec{uuid.uuid4().hex[:10]}"
    yield prefix
    with secure_es.client() as client:
        client.delete(f"/{prefix}-*")


@dataclass(frozen=True)
class SecureKafka:
    bootstrap: str
    ca: Path
    user: str
    password: str

    def env(self, **overrides: str) -> dict[str, str]:
        """newsmon's settings for this broker, as an operator would set them."""
        return {"NEWSMON_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
                "NEWSMON_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
                "NEWSMON_KAFKA__SASL_MECHANISM": "PLAIN",
                "NEWSMON_KAFKA__SASL_USERNAME": self.user,
                "NEWSMON_KAFKA__SASL_PASSWORD": self.password,
                "NEWSMON_KAFKA__SSL_CAFILE": str(self.ca),
                "NEWSMON_KAFKA__REQUEST_TIMEOUT_MS": "10000",
                **overrides}


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[SecureKafka]:
    """A Kafka broker whose one client listener is SASL_SSL (PLAIN and SCRAM-SHA-512), started
    by services.sh with NEWSMON_KAFKA_SECURITY=1 in the same services directory."""
    with _secure_instance("kafka", "NEWSMON_KAFKA_SECURITY",
                          "NEWSMON_KAFKA_SECURE_BOOTSTRAP") as values:
        yield SecureKafka(values["NEWSMON_KAFKA_SECURE_BOOTSTRAP"],
                          *_credentials(values, "NEWSMON_KAFKA_SECURE"))
