"""deploy/compose, validated offline: the Compose specification's JSON schema, Debian's
docker-compose `config` (when installed), and the wiring between services."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest

from tests.deploy import files


def test_the_compose_file_is_valid_against_the_compose_specification_schema() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_cls(schema).iter_errors(files.compose()), key=str)
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_check_jsonschema_accepts_it_as_an_operator_would_run_it() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(files.COMPOSE)],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


DOCKER_COMPOSE = shutil.which("docker-compose")


@pytest.mark.skipif(DOCKER_COMPOSE is None,
                    reason="Debian's docker-compose is not installed (apt-get install "
                    "docker-compose); the JSON-schema test above still validates the file")
def test_docker_compose_config_accepts_it_without_an_engine() -> None:
    assert DOCKER_COMPOSE is not None
    proc = subprocess.run(
        [DOCKER_COMPOSE, "-f", str(files.COMPOSE), "--env-file", str(files.COMPOSE_ENV),
         "config", "--quiet"],
        capture_output=True, text=True, timeout=120, check=False, cwd=files.COMPOSE.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="Debian's docker-compose is not installed")
def test_without_passwords_the_stack_refuses_to_start(tmp_path: Path) -> None:
    """Security cannot be left off by accident: no passwords in .env, no stack."""
    assert DOCKER_COMPOSE is not None
    empty = tmp_path / "empty.env"
    empty.write_text("")
    proc = subprocess.run([DOCKER_COMPOSE, "-f", str(files.COMPOSE), "--env-file", str(empty),
                           "config", "--quiet"], capture_output=True, text=True, timeout=120,
                          check=False, env={"PATH": "/usr/bin:/bin"}, cwd=files.COMPOSE.parent)
    assert proc.returncode != 0
    assert "set ELASTIC_PASSWORD in .env" in proc.stderr, proc.stderr


def test_security_is_on_and_every_password_comes_from_the_env_file() -> None:
    doc = files.compose()
    es = doc["services"]["elasticsearch"]["environment"]
    assert es["xpack.security.enabled"] == "true"
    dotenv = files.env_file(files.COMPOSE_ENV)
    for name in ("ELASTIC_PASSWORD", "KIBANA_PASSWORD", "ES_NEWSMON_PASSWORD"):
        assert name in dotenv
        assert f"${{{name}:?" in files.COMPOSE.read_text()  # required, never defaulted
    for name, svc in files.newsmon_services(doc).items():
        env = svc["environment"]
        assert env["NEWSMON_SEARCH__PASSWORD"].startswith("${ES_NEWSMON_PASSWORD:?"), name
        assert env["NEWSMON_SEARCH__USERNAME"] == "newsmon", name


def test_services_are_wired_to_each_other_on_the_right_ports() -> None:
    doc = files.compose()
    services = doc["services"]
    dotenv = files.env_file(files.COMPOSE_ENV)
    for name, svc in files.newsmon_services(doc).items():
        env = {k: files.interpolate(str(v), dotenv) for k, v in svc["environment"].items()}
        kafka_host, kafka_port = env["NEWSMON_KAFKA__BOOTSTRAP_SERVERS"].split(":")
        kafka = services[kafka_host]["environment"]
        assert f"PLAINTEXT://{kafka_host}:{kafka_port}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
        assert f"PLAINTEXT://:{kafka_port}" in kafka["KAFKA_LISTENERS"]
        search = urlsplit(env["NEWSMON_SEARCH__URL"])
        assert search.hostname in services, name
        assert f"localhost:{search.port}/" in str(services[search.hostname]["healthcheck"])
        assert services["kibana"]["environment"]["ELASTICSEARCH_HOSTS"] == (
            f'["{env["NEWSMON_SEARCH__URL"]}"]')
        assert services["es-setup"]["environment"]["ES_URL"] == env["NEWSMON_SEARCH__URL"]
        # The role es-setup creates covers exactly the indices newsmon writes.
        role = json.loads((files.COMPOSE.parent / "newsmon-writer-role.json").read_text())
        assert role["indices"][0]["names"] == [env["NEWSMON_SEARCH__INDEX_PREFIX"] + "-*"]
        assert "./newsmon-writer-role.json:/newsmon-writer-role.json:ro" in (
            services["es-setup"]["volumes"])
    for name, svc in services.items():
        for dependency in svc.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for published in svc.get("ports", []):
            assert published.startswith("127.0.0.1:"), f"{name}: {published} beyond loopback"


def test_continuous_newsmon_services_publish_and_health_check_their_metrics_port() -> None:
    doc = files.compose()
    for line in files.compose_commands(doc):
        name = line.where.rsplit(" ", 1)[1]
        svc = files.newsmon_services(doc)[name]
        port = line.option("--metrics-port")
        if port is None:
            assert "--once" in line.argv or line.argv[:2] == ("search", "setup"), line
            continue
        assert svc["ports"] == [f"127.0.0.1:{port}:{port}"]
        assert f"http://127.0.0.1:{port}/metrics" in " ".join(svc["healthcheck"]["test"])
        assert svc["restart"] == "unless-stopped"
        assert "newsmon-state:/var/lib/newsmon" in svc["volumes"]


def test_every_service_has_a_health_check_or_is_a_one_shot() -> None:
    for name, svc in files.compose()["services"].items():
        assert "healthcheck" in svc or svc.get("restart") == "no", name
