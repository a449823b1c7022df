"""Security on, for real: an Elasticsearch with x-pack security enabled (the distribution the
local services use), a `newsmon` user holding exactly the role the Compose stack creates
(deploy/compose/newsmon-writer-role.json), and newsmon run the way operators run it, with the
password from the environment.

Checks: `search setup`, `poll --once` and `pipeline run` work with that least-privilege role;
`newsmon doctor` says what is wrong with wrong, missing and insufficient credentials; no
command prints the password.

The minimal distribution has no analysis-common module, so its `.security` index (users,
roles and API keys created through the API, as es-setup.sh does on the real image) cannot be
created: the user and the role are given through the file realm instead, from the same role
file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from newsmon.config import KafkaSettings
from tests.conftest import elasticsearch_files, local_helpers, services_home

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "deploy" / "compose" / "newsmon-writer-role.json"
ELASTIC_PASSWORD = "elastic-e2e-Pq4"
NEWSMON_PASSWORD = "newsmon-e2e-Vx8-never-printed"
READER_PASSWORD = "reader-e2e-Jm3"


@dataclass(frozen=True)
class SecuredSearch:
    url: str

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=("elastic", ELASTIC_PASSWORD), timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _java_home(minimum: int) -> str:
    if os.environ.get("NEWSMON_ES_JAVA_HOME"):
        return os.environ["NEWSMON_ES_JAVA_HOME"]
    for release in sorted(Path("/usr/lib/jvm").glob("*/release"), reverse=True):
        version = next((line.split("=", 1)[1].strip('"') for line in
                        release.read_text().splitlines() if line.startswith("JAVA_VERSION=")), "0")
        if int(version.split(".")[0]) >= minimum:
            return str(release.parent)
    pytest.fail(f"no JDK {minimum}+ in /usr/lib/jvm for Elasticsearch", pytrace=False)


@pytest.fixture(scope="module")
def secured_search() -> Iterator[SecuredSearch]:
    version = os.environ.get("NEWSMON_ES_VERSION", "9.2.0")
    # The distribution of the local services, and this instance's files beside it: where the
    # user Elasticsearch runs as (as root) can reach them, also from a clone in a private
    # directory (elasticsearch_files relocates as services.sh does).
    files = elasticsearch_files(services_home(), version)
    home = files / f"dist-{version}" / f"elasticsearch-{version}"
    assert (home / "bin" / "elasticsearch").exists(), home
    user = os.environ.get("NEWSMON_ES_USER", "newsmon-es") if os.getuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="secured-e2e.", dir=files))
    base.chmod(0o755)
    conf = base / "conf"
    conf.mkdir()
    for name in ("jvm.options", "log4j2.properties"):
        shutil.copy(home / "config" / name, conf / name)
    port, transport = _free_port(), _free_port()
    (conf / "elasticsearch.yml").write_text(yaml.safe_dump({
        "cluster.name": "newsmon-secured", "discovery.type": "single-node",
        "network.host": "127.0.0.1", "http.port": port, "transport.port": transport,
        "path.data": str(base / "data"), "path.logs": str(base / "logs"),
        "cluster.routing.allocation.disk.threshold_enabled": False,
        "xpack.security.enabled": True,
        "xpack.security.http.ssl.enabled": False,
        "xpack.security.transport.ssl.enabled": False,
    }))
    role = json.loads(ROLE.read_text())
    reader = {"cluster": [], "indices": [{"names": ["newsmon-*"], "privileges": ["read"]}]}
    (conf / "roles.yml").write_text(yaml.safe_dump({"newsmon_writer": role,
                                                    "newsmon_reader": reader}))
    (conf / "users").touch()
    (conf / "users_roles").touch()
    for sub in ("data", "logs", "tmp"):
        (base / sub).mkdir()
    if user:
        subprocess.run(["chown", "-R", f"{user}:", str(base)], check=True)
    env = {"PATH": os.environ["PATH"], "ES_JAVA_HOME": _java_home(21 if version >= "9" else 17),
           "ES_PATH_CONF": str(conf), "ES_JAVA_OPTS": "-Xms512m -Xmx512m",
           "ES_TMPDIR": str(base / "tmp")}
    as_user = ["runuser", "-u", user, "--"] if user else []

    def es_tool(*args: str, stdin: str | None = None) -> None:
        proc = subprocess.run([*as_user, "env", *[f"{k}={v}" for k, v in env.items()], *args],
                              input=stdin, text=True, capture_output=True, timeout=120)
        if proc.returncode != 0:  # 126: the user cannot reach the distribution
            pytest.fail(f"{Path(args[0]).name} {args[1]} exited {proc.returncode} (as "
                        f"{user or 'this user'}): {proc.stderr[-2000:]}", pytrace=False)

    es_tool(str(home / "bin" / "elasticsearch-keystore"), "create")
    es_tool(str(home / "bin" / "elasticsearch-keystore"), "add", "-x", "bootstrap.password",
            stdin=ELASTIC_PASSWORD)
    es_tool(str(home / "bin" / "elasticsearch-users"), "useradd", "newsmon", "-p",
            NEWSMON_PASSWORD, "-r", "newsmon_writer")
    es_tool(str(home / "bin" / "elasticsearch-users"), "useradd", "reader", "-p",
            READER_PASSWORD, "-r", "newsmon_reader")
    pid_file = base / "pid"
    subprocess.run([*as_user, "env", *[f"{k}={v}" for k, v in env.items()],
                    str(home / "bin" / "elasticsearch"), "-d", "-p", str(pid_file)],
                   check=True, capture_output=True, timeout=300, cwd=base / "logs")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_cluster/health", auth=("newsmon", NEWSMON_PASSWORD),
                         timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    else:
        logs = "\n".join(p.read_text()[-3000:] for p in (base / "logs").glob("*.log"))
        pytest.fail(f"secured Elasticsearch did not come up:\n{logs}", pytrace=False)
    try:
        yield SecuredSearch(url)
    finally:
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            for _ in range(60):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(1)
        shutil.rmtree(base, ignore_errors=True)


def _config(tmp: Path, search_url: str, kafka: KafkaSettings) -> Path:
    config = tmp / "newsmon.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(tmp / "state"),
        "feeds": str(ROOT / "config" / "demo" / "feeds.yaml"),
        "topics": str(ROOT / "config" / "topics.yaml"),
        "alerts": str(ROOT / "config" / "alerts.yaml"),
        "kafka": kafka.model_dump(exclude_none=True),
        "search": {"backend": "elasticsearch", "url": search_url, "username": "newsmon",
                   "index_prefix": "newsmon"},
    }))
    return config


def _newsmon(config: Path, *args: str, password: str | None = NEWSMON_PASSWORD,
             username: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    if password is not None:
        env["NEWSMON_SEARCH__PASSWORD"] = password
    if username is not None:
        env["NEWSMON_SEARCH__USERNAME"] = username
    return subprocess.run([sys.executable, "-m", "newsmon.cli", *args, "--config",
                           str(config)], capture_output=True, text=True, timeout=300, env=env,
                          check=False, cwd=config.parent)


def _search_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line[5:].startswith("search:")]


@pytest.mark.integration
def test_newsmon_works_with_the_least_privilege_role_of_the_compose_stack(
    tmp_path: Path, secured_search: SecuredSearch, kafka_settings: KafkaSettings
) -> None:
    config = _config(tmp_path, secured_search.url, kafka_settings)
    runs = [_newsmon(config, "--verbose", "search", "setup"),
            _newsmon(config, "--verbose", "poll", "--once", "--force"),
            _newsmon(config, "--verbose", "pipeline", "run"),
            _newsmon(config, "--verbose", "doctor")]
    for proc in runs:
        assert proc.returncode == 0, [*proc.args[3:], proc.stdout[-2000:], proc.stderr[-3000:]]
        assert NEWSMON_PASSWORD not in proc.stdout + proc.stderr
    assert "processed" in runs[2].stdout
    assert _search_lines(runs[3]) == [
        f"ok   search: elasticsearch at {secured_search.url} answers, cluster green"]
    with secured_search.admin() as es:
        es.post("/newsmon-articles/_refresh")
        count = es.get("/newsmon-articles/_count").json()["count"]
    assert count > 0


@pytest.mark.integration
def test_doctor_names_rejected_missing_and_insufficient_credentials(
    tmp_path: Path, secured_search: SecuredSearch, kafka_settings: KafkaSettings
) -> None:
    config = _config(tmp_path, secured_search.url, kafka_settings)
    rejected = (f"FAIL search: elasticsearch at {secured_search.url} rejected the credentials "
                "(HTTP 401) -> set NEWSMON_SEARCH__API_KEY, or search.username and "
                "NEWSMON_SEARCH__PASSWORD")
    wrong = _newsmon(config, "doctor", password="not-the-password")
    assert wrong.returncode == 1 and _search_lines(wrong) == [rejected]
    missing = _newsmon(config, "doctor", password=None)
    assert missing.returncode == 1 and _search_lines(missing) == [rejected]
    reader = _newsmon(config, "doctor", password=READER_PASSWORD, username="reader")
    assert reader.returncode == 1
    assert _search_lines(reader) == [
        f"FAIL search: elasticsearch at {secured_search.url}: the user may not read cluster "
        "health (HTTP 403) -> grant the monitor cluster privilege and write privileges on "
        "newsmon-* indices"]
    for proc in (wrong, reader):
        assert "not-the-password" not in proc.stdout + proc.stderr
        assert READER_PASSWORD not in proc.stdout + proc.stderr


def test_the_elasticsearch_files_of_a_private_clone_are_reachable(tmp_path: Path) -> None:
    """A clone in a directory only root may enter (``mktemp -d``): its Elasticsearch files go
    where the user Elasticsearch runs as can reach them, by a path without a link through the
    private directory, and services.sh finds the same place again."""
    private = tmp_path / "clone"
    private.mkdir(mode=0o700)
    home = private / ".services"
    helpers = local_helpers()
    files = Path(helpers.es_base(home, create=True))
    try:
        if os.getuid() == 0:
            assert private not in files.parents and files.is_dir()
            assert helpers.others_can_enter(files)
            assert (home / "elasticsearch").resolve() == files  # the link services.sh follows
        else:  # Elasticsearch runs as this user, who can enter its own directories
            assert files == home / "elasticsearch"
        assert Path(helpers.es_base(home)) == files  # found again, not made again
        shown = subprocess.run(["python3", str(ROOT / "deploy" / "local" / "helpers.py"),
                                "es-base", str(home)], capture_output=True, text=True,
                               check=True).stdout.strip()
        assert shown == str(files)
    finally:
        if files.parent == helpers.RELOCATED:
            shutil.rmtree(files)
