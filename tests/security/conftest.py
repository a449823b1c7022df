"""A separate Elasticsearch with its security module on: TLS on HTTP (a CA and a node
certificate made by openssl), a file-realm superuser, API keys.

Started by ``deploy/local/services.sh`` with ``NEWSMON_ES_SECURITY=1`` in its own services
directory (``.services-secure``), beside the shared plain instances, and stopped at the end of
the session if this session started it. If it cannot be started the tests FAIL, with the
script's output: a security test never skips.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import uuid
from collections.abc import Iterator
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


def _services(command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEWSMON_SERVICES_HOME": str(SECURE_HOME), "NEWSMON_ES_SECURITY": "1"}
    return subprocess.run(["bash", str(SERVICES), command, "elasticsearch"], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="session")
def secure_es() -> Iterator[SecureElasticsearch]:
    already = _services("status").stdout
    proc = _services("start")
    values = _env_file()
    if proc.returncode != 0 or "NEWSMON_ELASTICSEARCH_SECURE_URL" not in values:
        pytest.fail(f"the secured Elasticsearch could not be started by {SERVICES} "
                    f"(NEWSMON_ES_SECURITY=1, NEWSMON_SERVICES_HOME={SECURE_HOME}):\n"
                    f"{proc.stderr[-4000:]}", pytrace=False)
    yield SecureElasticsearch(
        url=values["NEWSMON_ELASTICSEARCH_SECURE_URL"],
        ca=Path(values["NEWSMON_ELASTICSEARCH_SECURE_CA"]),
        user=values["NEWSMON_ELASTICSEARCH_SECURE_USER"],
        password=values["NEWSMON_ELASTICSEARCH_SECURE_PASSWORD"],
    )
    if "elasticsearch  ready" not in already:
        _services("stop")  # ours: free its memory for the rest of the suite


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
