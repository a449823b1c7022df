"""`newsmon doctor` against the running services and against stopped ones.

"Stopped" is a free port on 127.0.0.1 that nothing listens on: the shared services stay up for
the other tests, and a refused connection is exactly what a stopped service gives.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from tests.localhttp import Response, serve

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp: Path, *, kafka: str, backend: str, search_url: str, hook_url: str,
                 topic: str) -> Path:
    config = tmp / "newsmon.yaml"
    config.write_text(
        f"state_dir: {tmp / 'state'}\n"
        f"feeds: {ROOT / 'config' / 'demo' / 'feeds.yaml'}\n"
        f"topics: {ROOT / 'config' / 'topics.yaml'}\n"
        "alerts: alerts.yaml\n"
        f"kafka: {{bootstrap_servers: '{kafka}', raw_topic: {topic}, group_id: {topic}-g}}\n"
        f"search: {{backend: {backend}, url: '{search_url}', index_prefix: {topic}}}\n"
    )
    (tmp / "alerts.yaml").write_text(
        "channels:\n"
        "  console: {type: console}\n"
        f"  hook: {{type: webhook, url: '{hook_url}'}}\n"
        "rules:\n  - {name: r, topic: long_range_strike, channels: [console, hook]}\n"
    )
    return config


def doctor(config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    return subprocess.run(
        [sys.executable, "-m", "newsmon.cli", "doctor", "--config", str(config)],
        capture_output=True, text=True, timeout=120, env=env, check=False, cwd=config.parent,
    )


def lines(proc: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    """check name -> its lines, e.g. {"kafka": ["ok   kafka: broker at ..."]}."""
    out: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        out.setdefault(line[5:].split(":", 1)[0], []).append(line)
    return out


@pytest.mark.integration
def test_doctor_passes_against_running_services(
    tmp_path: Path, kafka_bootstrap: str, search_server: tuple[str, str]
) -> None:
    backend, url = search_server
    topic = f"doctor-{uuid.uuid4().hex[:8]}"
    # The broker auto-creates the topic with its default of 3 partitions (deploy/local).
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(topic, key=b"k", value=b"{}").get(timeout=30)
    producer.close()
    with serve({"/hook": Response(b"ok")}) as hook:
        config = write_config(tmp_path, kafka=kafka_bootstrap, backend=backend,
                              search_url=url, hook_url=hook.url("/hook"), topic=topic)
        proc = doctor(config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = lines(proc)
    assert found["config"] == ["ok   config: " + f"{config}, feeds, topics and alert rules "
                               "are valid"]
    assert found["kafka"][0] == (f"ok   kafka: broker at {kafka_bootstrap} answers; topic "
                                 f"{topic} has 3 partitions; group {topic}-g has 1 records "
                                 "to process")
    assert found["search"][0].startswith(f"ok   search: {backend} at {url} answers, cluster ")
    # Indices not created yet: a warning with what to do, not a failure.
    assert found["search"][1].startswith("WARN search: no index templates for prefix")
    assert "`newsmon search setup`" in found["search"][1]
    assert found["channel console"] == ["ok   channel console: console (standard output)"]
    assert found["channel hook"] == [
        f"ok   channel hook: webhook endpoint http://127.0.0.1:{hook.port} is reachable"]
    assert "doctor: no problem, 1 warning(s)" in proc.stderr


def test_doctor_names_each_stopped_service_with_what_to_do(tmp_path: Path) -> None:
    kafka, search, hook = closed_port(), closed_port(), closed_port()
    config = write_config(tmp_path, kafka=f"127.0.0.1:{kafka}", backend="elasticsearch",
                          search_url=f"http://127.0.0.1:{search}",
                          hook_url=f"http://127.0.0.1:{hook}/secret-path-abc", topic="t")
    proc = doctor(config)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = lines(proc)
    assert found["config"][0].startswith("ok   config:")
    assert found["kafka"] == [
        f"FAIL kafka: cannot connect to 127.0.0.1:{kafka} (Connection refused) -> start Kafka, "
        "or point kafka.bootstrap_servers (NEWSMON_KAFKA__BOOTSTRAP_SERVERS) at a running "
        "broker"]
    assert found["search"] == [
        f"FAIL search: cannot connect to elasticsearch at http://127.0.0.1:{search} "
        "(Connection refused) -> start it, or point search.url (NEWSMON_SEARCH__URL) at a "
        "running elasticsearch"]
    assert found["channel hook"] == [
        f"FAIL channel hook: webhook endpoint http://127.0.0.1:{hook} is not reachable "
        "(Connection refused) -> check the channel's url in alerts.yaml and the network "
        "(alerts to it stay pending and are retried)"]
    assert "secret-path-abc" not in proc.stdout  # a webhook path may be its secret
    assert "doctor: 3 problem(s) found" in proc.stderr


def test_doctor_reports_an_invalid_config_with_status_2(tmp_path: Path) -> None:
    config = tmp_path / "newsmon.yaml"
    config.write_text("search:\n  backend: solr\n")
    proc = doctor(config)
    assert proc.returncode == 2
    assert proc.stdout.startswith(f"FAIL config: {config}: search.backend: Input should be")
    assert "-> fix the file or the NEWSMON_* variable" in proc.stdout


def test_doctor_on_the_embedded_default_only_warns_about_kafka(tmp_path: Path) -> None:
    config = write_config(tmp_path, kafka=f"127.0.0.1:{closed_port()}", backend="embedded",
                          search_url="http://unused", hook_url="http://127.0.0.1:9/x",
                          topic="t")
    (tmp_path / "alerts.yaml").write_text("channels:\n  console: {type: console}\n")
    proc = doctor(config)
    assert proc.returncode == 0, proc.stdout
    found = lines(proc)
    assert found["kafka"][0].startswith("WARN kafka: cannot connect to")
    assert found["search"] == [f"ok   search: embedded store in {tmp_path / 'state'} "
                               "(no server)"]


def test_doctor_checks_smtp_greetings_and_channel_secrets(tmp_path: Path) -> None:
    from tests.alertservers import smtp_server

    closed = closed_port()
    with smtp_server() as inbox:
        config = write_config(tmp_path, kafka=f"127.0.0.1:{closed_port()}", backend="embedded",
                              search_url="http://unused", hook_url="http://127.0.0.1:9/x",
                              topic="t")
        (tmp_path / "alerts.yaml").write_text(
            "channels:\n"
            f"  mail: {{type: smtp, host: 127.0.0.1, port: {inbox.port}, tls: none, "
            "sender: newsmon@example.org, to: [desk@example.org]}\n"
            f"  mail-down: {{type: smtp, host: 127.0.0.1, port: {closed}, tls: none, "
            "sender: newsmon@example.org, to: [desk@example.org]}\n"
            "  hook: {type: webhook, url: 'http://127.0.0.1:9/x', "
            "secret_env: DOCTOR_TEST_UNSET_TOKEN}\n"
        )
        proc = doctor(config)
    assert proc.returncode == 1, proc.stdout
    found = lines(proc)
    assert found["channel mail"] == [
        f"ok   channel mail: smtp endpoint smtp://127.0.0.1:{inbox.port} is reachable"]
    assert found["channel mail-down"][0].startswith(
        f"FAIL channel mail-down: smtp endpoint smtp://127.0.0.1:{closed} is not reachable "
        "(Connection refused) -> check the channel's host and port in alerts.yaml")
    assert found["channel hook"] == [
        "FAIL channel hook: environment variable DOCTOR_TEST_UNSET_TOKEN "
        "(channels.hook.secret_env) is not set -> export it with the channel's token or "
        "password"]
    assert not inbox.messages  # doctor never sends mail
