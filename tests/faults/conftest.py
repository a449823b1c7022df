"""A Kafka broker and an Elasticsearch of their own, to kill and restart.

They run from ``.services-faults`` (``NEWSMON_SERVICES_HOME``), never touching the shared
instances the other tests use, and are stopped when the session ends. ``kill -9`` goes to the
pid the services script recorded; ``start`` brings the service back on the same port with its
data. A service that cannot be had FAILS the tests: fault tests never skip.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import ROOT, SERVICES

if TYPE_CHECKING:
    from tests.faults.cluster import ClusterServices

FAULTS_HOME = Path(os.environ.get("NEWSMON_FAULTS_SERVICES_HOME", ROOT / ".services-faults"))


@dataclass
class FaultServices:
    home: Path

    def script(self, command: str, *services: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "NEWSMON_ES_SECURITY"}
        env["NEWSMON_SERVICES_HOME"] = str(self.home)
        return subprocess.run(["bash", str(SERVICES), command, *services], env=env,
                              capture_output=True, text=True, timeout=600, check=False)

    def env_file(self) -> dict[str, str]:
        path = self.home / "env"
        if not path.exists():
            return {}
        pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        return {k.strip(): v.strip() for k, v in pairs}

    @property
    def kafka(self) -> str:
        return self.env_file()["NEWSMON_KAFKA_BOOTSTRAP"]

    @property
    def elasticsearch(self) -> str:
        return self.env_file()["NEWSMON_ELASTICSEARCH_URL"]

    def pid(self, service: str) -> int:
        path = {"kafka": self.home / "kafka" / "state" / "pid",
                "elasticsearch": self.home / "elasticsearch" / "run" / "elasticsearch.pid"}[service]
        return int(path.read_text().strip())

    def kill(self, service: str) -> float:
        """``kill -9`` the service; returns when the process is gone (seconds it took)."""
        pid = self.pid(service)
        started = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        while Path(f"/proc/{pid}").exists():
            status = Path(f"/proc/{pid}/status").read_text() if Path(
                f"/proc/{pid}/status").exists() else ""
            if "zombie" in status:
                break
            time.sleep(0.05)
        return time.monotonic() - started

    def start(self, service: str) -> float:
        """Start (again) on the same port and data; returns the seconds it took."""
        started = time.monotonic()
        proc = self.script("start", service)
        if proc.returncode != 0:
            pytest.fail(f"{service} did not come back:\n{proc.stderr[-3000:]}", pytrace=False)
        return time.monotonic() - started

    def stop(self, service: str) -> None:
        self.script("stop", service)


@pytest.fixture(scope="session")
def faults() -> Iterator[FaultServices]:
    services = FaultServices(FAULTS_HOME)
    proc = services.script("start", "kafka", "elasticsearch")
    env = services.env_file()
    if proc.returncode != 0 or not {"NEWSMON_KAFKA_BOOTSTRAP",
                                    "NEWSMON_ELASTICSEARCH_URL"} <= env.keys():
        services.script("stop", "kafka", "elasticsearch")
        pytest.fail(f"the fault-test services could not be started in {FAULTS_HOME}:\n"
                    f"{proc.stderr[-4000:]}", pytrace=False)
    yield services
    services.script("stop", "kafka", "elasticsearch")


def count(url: str, index: str, query: dict[str, object] | None = None) -> int:
    """Documents in ``index`` (after a refresh); 0 when the index does not exist."""
    httpx.post(f"{url}/{index}/_refresh", timeout=30)
    response = httpx.post(f"{url}/{index}/_count", json={"query": query or {"match_all": {}}},
                          timeout=30)
    if response.status_code == 404:
        return 0
    response.raise_for_status()
    return int(response.json()["count"])


# ----------------------------------------------------------------------------- clusters

#: How long the session may spend starting both clusters (services.sh's own limits are
#: 120 s for Kafka and 240 s for Elasticsearch, from their launch).
START_LIMIT_S = 420


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterServices]:
    """The clusters of their own: a three-broker Kafka and a three-node Elasticsearch, started
    for the session in ``.services-cluster`` (``NEWSMON_CLUSTER_SERVICES_HOME``) and stopped at
    its end (left running with ``NEWSMON_KEEP_CLUSTERS=1``, for a next run to reuse). Clusters
    that cannot be had FAIL the tests: fault tests never skip."""
    # Imported here: tests/faults/cluster.py builds on FaultServices above.
    from tests.faults.cluster import CLUSTER_HOME, KAFKA, SEARCH, ClusterServices

    services = ClusterServices(CLUSTER_HOME)
    started = time.monotonic()
    proc = services.script("start", KAFKA, SEARCH)
    env = services.env_file()
    if proc.returncode != 0 or not {"NEWSMON_KAFKA_CLUSTER_BOOTSTRAP",
                                    "NEWSMON_ELASTICSEARCH_CLUSTER_URLS"} <= env.keys():
        services.script("stop", KAFKA, SEARCH)
        pytest.fail(f"the clusters could not be started in {CLUSTER_HOME}:\n"
                    f"{proc.stderr[-4000:]}", pytrace=False)
    assert time.monotonic() - started < START_LIMIT_S
    yield services
    if os.environ.get("NEWSMON_KEEP_CLUSTERS") != "1":
        services.script("stop", KAFKA, SEARCH)
